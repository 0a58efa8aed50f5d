/**
 * The ACME state directory (`[acme] state_dir`), readable by its owner only:
 *
 *   state_dir/                 0700
 *     account.json             0600  {"key": <private JWK>, "accounts": {<directory URL>: <account URL>}}
 *     certs/                   0700
 *       <name>.crt             0600  the PEM chain, leaf first
 *       <name>.key             0600  the certificate's private key, PKCS#8 PEM
 *
 * Files are written to a temporary name and renamed, so a crash never leaves
 * half a key. Names are canonical hostnames, checked before they become paths.
 */
import { chmod, mkdir, readdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AcmeError } from "./client.ts";
import type { PrivateJwk } from "./jose.ts";
import { leafOfPem, readCertInfo } from "./x509.ts";

export interface StoredCert {
  name: string;
  chainPem: string;
  keyPem: string;
  notBefore: number;
  notAfter: number;
  dnsNames: string[];
}

export interface AccountRecord {
  key: PrivateJwk;
  /** Account URL per directory URL. */
  accounts: Record<string, string>;
}

/** A canonical DNS name (lowercase LDH labels, no wildcard): safe as a file name. */
const NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

export function isIssuableName(name: string): boolean {
  return NAME.test(name);
}

export class CertStore {
  readonly certDir: string;
  constructor(readonly dir: string) {
    this.certDir = join(dir, "certs");
  }

  /** Creates the directories (0700), tightening them if they already exist. */
  async init(): Promise<void> {
    try {
      for (const d of [this.dir, this.certDir]) {
        await mkdir(d, { recursive: true, mode: 0o700 });
        await chmod(d, 0o700);
      }
    } catch (e) {
      throw new AcmeError("ACME_STORE", `Cannot create the ACME state_dir ${this.dir}: ${(e as Error).message}`, undefined, { cause: e });
    }
  }

  private async write(path: string, text: string): Promise<void> {
    const tmp = `${path}.tmp-${crypto.randomUUID()}`;
    try {
      await writeFile(tmp, text, { mode: 0o600 });
      await chmod(tmp, 0o600); // the umask may have taken bits off; never more than 0600
      await rename(tmp, path);
    } catch (e) {
      throw new AcmeError("ACME_STORE", `Cannot write ${path}: ${(e as Error).message}`, undefined, { cause: e });
    }
  }

  async loadAccount(): Promise<AccountRecord | null> {
    let text: string;
    try {
      text = await readFile(join(this.dir, "account.json"), "utf8");
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT") return null;
      throw new AcmeError("ACME_STORE", `Cannot read ${join(this.dir, "account.json")}: ${(e as Error).message}`, undefined, { cause: e });
    }
    const rec = JSON.parse(text) as AccountRecord;
    if (typeof rec !== "object" || rec === null || typeof rec.key !== "object") {
      throw new AcmeError("ACME_STORE", `${join(this.dir, "account.json")} has no account key`);
    }
    rec.accounts ??= {};
    return rec;
  }

  async saveAccount(rec: AccountRecord): Promise<void> {
    await this.write(join(this.dir, "account.json"), `${JSON.stringify(rec, null, 2)}\n`);
  }

  async saveCert(name: string, chainPem: string, keyPem: string): Promise<StoredCert> {
    if (!isIssuableName(name)) throw new AcmeError("ACME_STORE", `'${name}' is not a hostname the store keeps`);
    const info = readCertInfo(leafOfPem(chainPem));
    // Key first: a reader that sees the new chain finds its key already in place.
    await this.write(join(this.certDir, `${name}.key`), keyPem);
    await this.write(join(this.certDir, `${name}.crt`), chainPem);
    return { name, chainPem, keyPem, ...info };
  }

  /** Every complete (chain + key) certificate in the store; unreadable ones are reported to `onBad` and skipped. */
  async loadCerts(onBad: (name: string, err: Error) => void = () => {}): Promise<StoredCert[]> {
    let entries: string[];
    try {
      entries = await readdir(this.certDir);
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT") return [];
      throw new AcmeError("ACME_STORE", `Cannot list ${this.certDir}: ${(e as Error).message}`, undefined, { cause: e });
    }
    const out: StoredCert[] = [];
    for (const f of entries.sort()) {
      if (!f.endsWith(".crt")) continue;
      const name = f.slice(0, -4);
      if (!isIssuableName(name)) continue;
      try {
        const chainPem = await readFile(join(this.certDir, f), "utf8");
        const keyPem = await readFile(join(this.certDir, `${name}.key`), "utf8");
        out.push({ name, chainPem, keyPem, ...readCertInfo(leafOfPem(chainPem)) });
      } catch (e) {
        onBad(name, e as Error);
      }
    }
    return out;
  }
}
