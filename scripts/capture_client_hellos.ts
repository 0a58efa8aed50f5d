/**
 * One-off: capture real ClientHellos from real TLS clients as test fixtures.
 *
 *   bun scripts/capture_client_hellos.ts [outDir]   (default src/proto/testdata)
 *
 * Listens on 127.0.0.1:0 (plain TCP, no TLS), runs each client against it,
 * and saves the bytes the client sent up to the end of its first handshake
 * message as `<name>.bin`. The record framing here is deliberately separate
 * from src/proto/tls_client_hello.ts so the fixtures do not depend on the
 * parser they test. Each client gets a bounded time; a client that is missing
 * or fails is reported and skipped, never waited for forever.
 *
 * Needs: openssl, curl, bun, deno on PATH.
 */
import { createServer, type Socket } from "node:net";
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const outDir = process.argv[2] ?? join(import.meta.dirname, "..", "src", "proto", "testdata");
const CLIENT_TIMEOUT_MS = 15_000;

/** Returns how many bytes of `buf` make up the first handshake message's records, or 0 if incomplete. */
function helloEnd(buf: Uint8Array): number {
  let pos = 0;
  let payload = 0; // handshake bytes seen so far
  let want = -1; // 4 + handshake length, once known
  const hs: number[] = [];
  while (pos + 5 <= buf.length) {
    if (buf[pos] !== 22) throw new Error(`record at ${pos} has content type ${buf[pos]}, not handshake`);
    const len = (buf[pos + 3]! << 8) | buf[pos + 4]!;
    if (pos + 5 + len > buf.length) return 0;
    for (let i = 0; i < len && hs.length < 4; i++) hs.push(buf[pos + 5 + i]!);
    payload += len;
    pos += 5 + len;
    if (want < 0 && hs.length === 4) want = 4 + ((hs[1]! << 16) | (hs[2]! << 8) | hs[3]!);
    if (want >= 0 && payload >= want) return pos;
  }
  return 0;
}

interface Client {
  name: string;
  cmd: string[];
  note: string;
}

function clients(port: number): Client[] {
  const at = `127.0.0.1:${port}`;
  // Bun's and Deno's own TLS stacks: node:tls in each runtime, and each runtime's fetch().
  const nodeTls = (sni: string | null, alpn: string[], extra = "") =>
    `import tls from "node:tls";` +
    `const s = tls.connect({ host: "127.0.0.1", port: ${port}, rejectUnauthorized: false,${extra}` +
    (sni === null ? "" : ` servername: ${JSON.stringify(sni)},`) +
    ` ALPNProtocols: ${JSON.stringify(alpn)} });` +
    `s.on("error", () => {}); s.on("close", () => process.exit(0));`;
  const fetchLocal = `await fetch("https://localhost:${port}/").catch(() => {});`;
  return [
    {
      name: "openssl_tls13_sni_alpn",
      cmd: ["openssl", "s_client", "-connect", at, "-servername", "openssl.example.com", "-alpn", "h2,http/1.1"],
      note: "OpenSSL 3.0 s_client, TLS 1.3 default, SNI + ALPN",
    },
    {
      name: "openssl_tls12_sni_upper",
      cmd: ["openssl", "s_client", "-connect", at, "-tls1_2", "-servername", "Mixed.Case.EXAMPLE.org"],
      note: "OpenSSL 3.0 s_client, TLS 1.2 only, SNI in mixed case, no ALPN",
    },
    {
      name: "openssl_tls13_nosni",
      cmd: ["openssl", "s_client", "-connect", at, "-noservername"],
      note: "OpenSSL 3.0 s_client, TLS 1.3, no SNI",
    },
    {
      // OpenSSL 3.0 has no ML-KEM (`openssl list -kem-algorithms` shows RSA only), so
      // the big hello is made another real way: many ALPN ids push it past 1500 bytes.
      name: "openssl_big_alpn",
      cmd: [
        "openssl", "s_client", "-connect", at, "-servername", "big.example.net",
        "-alpn", Array.from({ length: 150 }, (_, i) => `proto-${i}`).join(","),
      ],
      note: "OpenSSL 3.0 s_client with 150 ALPN ids (hello > 1500 bytes)",
    },
    {
      name: "curl_tls13_h2",
      cmd: ["curl", "-sk", "--max-time", "10", "--resolve", `curl.example.com:${port}:127.0.0.1`, `https://curl.example.com:${port}/`],
      note: "curl 7.88 (OpenSSL 3.0), TLS 1.3, ALPN h2,http/1.1",
    },
    {
      name: "curl_tls12_http11",
      cmd: [
        "curl", "-sk", "--max-time", "10", "--tlsv1.2", "--tls-max", "1.2", "--http1.1",
        "--resolve", `www.curl.example.com:${port}:127.0.0.1`, `https://www.curl.example.com:${port}/`,
      ],
      note: "curl 7.88 (OpenSSL 3.0), TLS 1.2 only, ALPN http/1.1",
    },
    {
      name: "bun_tls_sni_alpn",
      cmd: ["bun", "-e", nodeTls("bun.example.com", ["h2", "http/1.1"])],
      note: "Bun node:tls (BoringSSL), SNI + ALPN",
    },
    {
      name: "bun_tls_nosni",
      cmd: ["bun", "-e", nodeTls(null, ["http/1.1"])],
      note: "Bun node:tls (BoringSSL) to an IP address: no SNI",
    },
    {
      // BoringSSL in Bun offers X25519MLKEM768 (a 1216-byte key share); a longer
      // name and a third ALPN id take this real post-quantum hello past 1500 bytes.
      name: "bun_tls_pq_big",
      cmd: ["bun", "-e", nodeTls("a-rather-long-service-name.eu-west.pq.bun.example.com", ["h2", "http/1.1", "acme-tls/1"])],
      note: "Bun node:tls, X25519MLKEM768 key share, hello > 1500 bytes",
    },
    {
      name: "bun_tls12_only",
      cmd: ["bun", "-e", nodeTls("tls12.bun.example.com", ["http/1.1"], ` maxVersion: "TLSv1.2",`)],
      note: "Bun node:tls limited to TLS 1.2",
    },
    {
      name: "bun_fetch",
      cmd: ["bun", "-e", fetchLocal],
      note: "Bun fetch() to https://localhost",
    },
    {
      name: "deno_tls_sni_alpn",
      cmd: ["deno", "eval", nodeTls("deno.example.com", ["h2", "http/1.1"])],
      note: "Deno node:tls (rustls), SNI + ALPN",
    },
    {
      name: "deno_fetch",
      cmd: ["deno", "eval", fetchLocal],
      note: "Deno fetch() to https://localhost (rustls)",
    },
  ];
}

/** Clients run one at a time; this receives the hello of the one running now. */
let deliver: ((bytes: Uint8Array | null) => void) | null = null;

const server = createServer((sock: Socket) => {
  let buf = new Uint8Array(0);
  let done = false;
  sock.on("data", (chunk: Buffer) => {
    if (done) return;
    const merged = new Uint8Array(buf.length + chunk.length);
    merged.set(buf);
    merged.set(chunk, buf.length);
    buf = merged;
    let end = 0;
    try {
      end = helloEnd(buf);
    } catch (e) {
      console.error(`  ${(e as Error).message}`);
      done = true;
      sock.destroy();
      return;
    }
    if (end === 0) return;
    done = true;
    sock.destroy();
    deliver?.(buf.slice(0, end));
  });
  sock.on("error", () => {});
});

await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
const port = (server.address() as { port: number }).port;
mkdirSync(outDir, { recursive: true });

const manifest: Record<string, { note: string; bytes: number; command: string }> = {};
for (const c of clients(port)) {
  const got = new Promise<Uint8Array | null>((resolve) => {
    deliver = (bytes) => {
      deliver = null;
      resolve(bytes);
    };
  });
  const giveUp = () => deliver?.(null);
  const timer = setTimeout(giveUp, CLIENT_TIMEOUT_MS);
  const child = spawn(c.cmd[0]!, c.cmd.slice(1), { stdio: ["pipe", "ignore", "ignore"] });
  child.on("error", (e) => {
    console.error(`  ${c.name}: ${e.message}`);
    giveUp();
  });
  const bytes = await got;
  clearTimeout(timer);
  child.kill("SIGKILL");
  if (bytes === null) {
    console.error(`${c.name}: no ClientHello captured`);
    continue;
  }
  writeFileSync(join(outDir, `${c.name}.bin`), bytes);
  manifest[c.name] = { note: c.note, bytes: bytes.length, command: c.cmd.map((a) => (a.length > 60 ? a.slice(0, 57) + "..." : a)).join(" ").replaceAll(String(port), "PORT") };
  console.log(`${c.name}: ${bytes.length} bytes`);
}
writeFileSync(join(outDir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
server.close();
process.exit(0);
