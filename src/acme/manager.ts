/**
 * The ACME manager: what the http listener holds. It keeps the certificate
 * store, answers the CA's validation requests (HTTP-01 on the plain listener,
 * TLS-ALPN-01 on the HTTPS listener), issues on first use for allowed names
 * through the issuance guard, and renews on the scheduler's plan.
 */
import { type FetchFn, fetchWithCa, wallMs } from "../runtime/mod.ts";
import { AcmeClient, AcmeError, type ChallengeSolver, type ChallengeType } from "./client.ts";
import { type GuardVerdict, IssuanceGuard } from "./guard.ts";
import { generateP256, importPrivateJwk, keyAuthorizationDigest } from "./jose.ts";
import { DEFAULT_POLICY, planRenewals, type RenewalEntry, type RenewalPolicy } from "./scheduler.ts";
import { type AccountRecord, CertStore, isIssuableName, type StoredCert } from "./store.ts";
import { toPem } from "./der.ts";
import { buildTlsAlpnCert, newCertKey } from "./x509.ts";

/** The ALPN protocol of TLS-ALPN-01 (RFC 8737 §6.2). */
export const ACME_TLS_ALPN = "acme-tls/1";

/** What listeners call to answer validation requests. */
export interface ChallengeResponder {
  /**
   * HTTP-01: the body to answer `GET /.well-known/acme-challenge/<token>` with
   * (content type text/plain or application/octet-stream), or null for 404.
   */
  httpChallengeResponse(token: string): string | null;
  /**
   * TLS-ALPN-01: when a ClientHello offers ALPN `acme-tls/1` for `serverName`,
   * complete the handshake with this certificate and key (PEM), negotiate
   * `acme-tls/1`, then close (RFC 8737 §3). Null: no validation is pending.
   */
  tlsAlpnChallengeCertificate(serverName: string): { cert: string; key: string } | null;
}

/** A challenge appearing or going away, for a supervisor that forwards them to workers. */
export type ChallengeEvent =
  | { kind: "http-01"; present: true; token: string; keyAuth: string }
  | { kind: "http-01"; present: false; token: string }
  | { kind: "tls-alpn-01"; present: true; name: string; cert: string; key: string }
  | { kind: "tls-alpn-01"; present: false; name: string };

/** A responder fed by ChallengeEvents: one per worker, or the manager's own. */
export class ChallengeTable implements ChallengeResponder {
  private readonly http = new Map<string, string>();
  private readonly alpn = new Map<string, { cert: string; key: string }>();

  apply(ev: ChallengeEvent): void {
    if (ev.kind === "http-01") {
      if (ev.present) this.http.set(ev.token, ev.keyAuth);
      else this.http.delete(ev.token);
    } else if (ev.present) this.alpn.set(ev.name, { cert: ev.cert, key: ev.key });
    else this.alpn.delete(ev.name);
  }

  httpChallengeResponse(token: string): string | null {
    return this.http.get(token) ?? null;
  }

  tlsAlpnChallengeCertificate(serverName: string): { cert: string; key: string } | null {
    return this.alpn.get(serverName.toLowerCase()) ?? null;
  }
}

export interface AcmeLog {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}

export interface AcmeManagerOptions {
  directoryUrl: string;
  /** Contact emails (mailto: added when absent). */
  contact?: string[];
  /** Agree to the CA's terms of service (RFC 8555 termsOfServiceAgreed). */
  acceptTerms: boolean;
  stateDir: string;
  /** Only names this allows are ever sent to the CA (the http listener: "matches a configured route"). */
  allow(name: string): boolean;
  /** Challenge types in order of preference. Default http-01, then tls-alpn-01. */
  challenges?: ChallengeType[];
  /** PEM CA to trust for the directory's own TLS (a private or test CA); ignored when `fetch` is given. */
  caPem?: string;
  fetch?: FetchFn;
  maxConcurrent?: number;
  newNamesPerHour?: number;
  policy?: Partial<RenewalPolicy>;
  requestTimeoutMs?: number;
  pollTimeoutMs?: number;
  /** Longest sleep between scheduler runs. Default 1 hour. */
  maxSleepMs?: number;
  now?: () => number;
  random?: () => number;
  log?: AcmeLog;
  /** A certificate was issued or renewed (reload the TLS context). */
  onCertificate?(cert: StoredCert): void;
  /** Every challenge change, for forwarding to other threads. */
  onChallenge?(ev: ChallengeEvent): void;
}

const NO_LOG: AcmeLog = { info() {}, warn() {} };

export class AcmeManager implements ChallengeResponder {
  readonly store: CertStore;
  private readonly certs = new Map<string, StoredCert>();
  /** Names kept issued and renewed: those asked for with `manage`, and every name issued once. */
  private readonly wanted = new Set<string>();
  private readonly pending = new Map<string, Promise<StoredCert>>();
  /** When this process last obtained each name's certificate (the scheduler's minimum renewal interval). */
  private readonly obtainedAt = new Map<string, number>();
  private readonly guard: IssuanceGuard;
  private readonly table = new ChallengeTable();
  private readonly policy: RenewalPolicy;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly log: AcmeLog;
  private readonly fetch: FetchFn;
  private account: AccountRecord | null = null;
  private accountKeys: CryptoKeyPair | null = null;
  private client: AcmeClient | null = null;
  private registering: Promise<AcmeClient> | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private running = false;

  constructor(private readonly opts: AcmeManagerOptions) {
    this.store = new CertStore(opts.stateDir);
    this.policy = { ...DEFAULT_POLICY, ...opts.policy };
    this.guard = new IssuanceGuard({
      allow: (n) => isIssuableName(n) && opts.allow(n),
      maxConcurrent: opts.maxConcurrent,
      newNamesPerHour: opts.newNamesPerHour,
      policy: this.policy,
    });
    this.now = opts.now ?? wallMs;
    this.random = opts.random ?? Math.random;
    this.log = opts.log ?? NO_LOG;
    this.fetch = opts.fetch ?? fetchWithCa(opts.caPem);
  }

  /**
   * Loads the account key (made and saved on first start) and every stored
   * certificate. Does not talk to the CA: a CA that is down at start only
   * delays issuance, it never stops the listener.
   */
  async start(): Promise<void> {
    await this.store.init();
    this.account = await this.store.loadAccount();
    if (this.account) {
      this.accountKeys = await importPrivateJwk(this.account.key);
    } else {
      this.accountKeys = await generateP256();
      this.account = { key: await crypto.subtle.exportKey("jwk", this.accountKeys.privateKey), accounts: {} };
      await this.store.saveAccount(this.account);
      this.log.info("acme account key created", { state_dir: this.opts.stateDir });
    }
    for (const c of await this.store.loadCerts((name, err) => this.log.warn("acme stored certificate unreadable", { name, reason: err.message }))) {
      this.certs.set(c.name, c);
      this.wanted.add(c.name);
    }
    this.running = true;
    this.schedule();
  }

  /** Stops the renewal timer; resolves once the orders in flight have ended (each on its own bounds). */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await Promise.allSettled([...this.pending.values()]);
  }

  /** Keep these names issued (the exact hostnames of configured routes), starting now. */
  manage(names: Iterable<string>): void {
    for (const n of names) if (isIssuableName(n) && this.opts.allow(n)) this.wanted.add(n);
    this.schedule();
  }

  /**
   * The certificate to serve for `name` (SNI), or null. Issuance on first
   * use: with none held (or an expired one), an order starts in the
   * background when the guard allows it; the next handshake gets the result.
   */
  certificateFor(name: string): StoredCert | null {
    const held = this.certs.get(name);
    if (held && held.notAfter > this.now()) return held;
    if (this.pending.has(name)) return null;
    const v = this.guard.check(name, this.now(), held === undefined);
    if (v.ok) this.obtain(name).catch(() => {}); // logged in issue()
    return null;
  }

  /** Issues (or joins the order in flight for) `name`; refuses with ACME_DENIED when the guard says no. */
  obtain(name: string): Promise<StoredCert> {
    const inFlight = this.pending.get(name);
    if (inFlight) return inFlight;
    const isNew = !this.certs.has(name);
    const v: GuardVerdict = this.guard.check(name, this.now(), isNew);
    if (!v.ok) {
      const when = v.retryAt ? ` until ${new Date(v.retryAt).toISOString()}` : "";
      return Promise.reject(new AcmeError("ACME_DENIED", `Not ordering a certificate for '${name}': ${v.reason}${when}`));
    }
    this.guard.begin(name, this.now(), isNew);
    const p = this.issue(name).finally(() => {
      this.pending.delete(name);
      this.schedule();
    });
    this.pending.set(name, p);
    return p;
  }

  private async issue(name: string): Promise<StoredCert> {
    const started = this.now();
    try {
      const client = await this.registeredClient();
      const { chainPem, keyPem } = await this.withAccountRetry(() => client.issue([name], this.solver, this.opts.challenges ?? ["http-01", "tls-alpn-01"]));
      const stored = await this.store.saveCert(name, chainPem, keyPem);
      this.certs.set(name, stored);
      this.obtainedAt.set(name, this.now());
      this.wanted.add(name);
      this.guard.finish(name, this.now(), true);
      this.log.info("acme certificate issued", { name, not_after: new Date(stored.notAfter).toISOString(), ms: this.now() - started });
      this.opts.onCertificate?.(stored);
      return stored;
    } catch (e) {
      this.guard.finish(name, this.now(), false, this.random());
      const f = this.guard.failure(name);
      this.log.warn("acme order failed", {
        name,
        code: (e as AcmeError).code ?? "INTERNAL",
        reason: (e as Error).message,
        failures: f?.count,
        retry_at: f ? new Date(f.retryAt).toISOString() : undefined,
      });
      throw e;
    }
  }

  /** The client with its account: the URL stored for this directory, or newAccount (which also finds an existing one). */
  private registeredClient(): Promise<AcmeClient> {
    if (this.client?.accountUrl) return Promise.resolve(this.client);
    this.registering ??= (async () => {
      if (!this.accountKeys || !this.account) throw new AcmeError("ACME_STORE", "AcmeManager.start() was not called");
      const client = new AcmeClient({
        directoryUrl: this.opts.directoryUrl,
        accountKey: this.accountKeys,
        fetch: this.fetch,
        requestTimeoutMs: this.opts.requestTimeoutMs,
        pollTimeoutMs: this.opts.pollTimeoutMs,
        now: this.now,
      });
      const known = this.account.accounts[this.opts.directoryUrl];
      if (known) client.accountUrl = known;
      else await this.register(client);
      this.client = client;
      return client;
    })().finally(() => (this.registering = null));
    return this.registering;
  }

  private async register(client: AcmeClient): Promise<void> {
    const url = await client.account(this.opts.contact ?? [], this.opts.acceptTerms);
    this.account!.accounts[this.opts.directoryUrl] = url;
    await this.store.saveAccount(this.account!);
    this.log.info("acme account ready", { url });
  }

  /** A stored account URL the CA no longer knows (a test CA restarted): register again, once. */
  private async withAccountRetry<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof AcmeError) || e.problem?.type !== "urn:ietf:params:acme:error:accountDoesNotExist" || !this.client) throw e;
      this.log.warn("acme account unknown to the CA; registering again", { url: this.client.accountUrl });
      await this.register(this.client);
      return fn();
    }
  }

  private readonly solver: ChallengeSolver = {
    present: async (type, name, token, keyAuth) => {
      let ev: ChallengeEvent;
      if (type === "http-01") ev = { kind: "http-01", present: true, token, keyAuth };
      else {
        const { keys, pem } = await newCertKey();
        const der = await buildTlsAlpnCert(name, await keyAuthorizationDigest(keyAuth), keys, this.now());
        ev = { kind: "tls-alpn-01", present: true, name, cert: toPem("CERTIFICATE", der), key: pem };
      }
      this.table.apply(ev);
      this.opts.onChallenge?.(ev);
    },
    cleanup: (type, name, token) => {
      const ev: ChallengeEvent = type === "http-01" ? { kind: "http-01", present: false, token } : { kind: "tls-alpn-01", present: false, name };
      this.table.apply(ev);
      this.opts.onChallenge?.(ev);
    },
  };

  httpChallengeResponse(token: string): string | null {
    return this.table.httpChallengeResponse(token);
  }

  tlsAlpnChallengeCertificate(serverName: string): { cert: string; key: string } | null {
    return this.table.tlsAlpnChallengeCertificate(serverName);
  }

  /** {name, notAfter (epoch ms)} for every held certificate: `edgemux_tls_certificate_expiry_timestamp_seconds{name}`. */
  expiries(): { name: string; notAfter: number }[] {
    return [...this.certs.values()].map((c) => ({ name: c.name, notAfter: c.notAfter })).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Every held certificate (for building the TLS context at start). */
  certificates(): StoredCert[] {
    return [...this.certs.values()];
  }

  /**
   * One scheduler run: starts what is due (as far as the guard allows) and
   * sets the timer for the next due moment, at most `maxSleepMs` away.
   * Called at start, after every order, and by the timer.
   */
  schedule(): void {
    if (!this.running) return;
    const now = this.now();
    const entries: RenewalEntry[] = [];
    for (const name of this.wanted) {
      if (this.pending.has(name)) continue;
      const c = this.certs.get(name);
      entries.push({ name, cert: c ? { notBefore: c.notBefore, notAfter: c.notAfter, obtainedAt: this.obtainedAt.get(name) } : null, failure: this.guard.failure(name) });
    }
    const plan = planRenewals(now, entries, this.policy);
    let nextWake = plan.nextWakeMs;
    for (const name of plan.due) {
      const v = this.guard.check(name, now, !this.certs.has(name));
      if (v.ok) this.obtain(name).catch(() => {});
      else if (v.retryAt !== undefined) nextWake = Math.min(nextWake, v.retryAt); // rate-limited; "busy" resumes when an order ends
    }
    if (this.timer !== null) clearTimeout(this.timer);
    const wait = Math.max(1_000, Math.min(nextWake - now, this.opts.maxSleepMs ?? 3_600_000));
    this.timer = setTimeout(() => {
      this.timer = null;
      this.schedule();
    }, wait);
  }
}
