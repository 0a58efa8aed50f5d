/**
 * TLS-ALPN-01 (RFC 8737) on the SNI-selecting TLS listener (runtime
 * node_tls.ts, Bun): a ClientHello offering only `acme-tls/1` gets the
 * challenge certificate and ALPN `acme-tls/1`, then the connection closes;
 * every other ClientHello gets the certificate for its SNI, reaches onAccept
 * and carries data both ways, whatever is pending. The listener reads each
 * hello itself and puts it back (the hello split over many writes too).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect as netConnect } from "node:net";
import { connect as tlsConnect, type PeerCertificate } from "node:tls";
import { buildTlsAlpnCert, newCertKey } from "../src/acme/x509.ts";
import { toPem } from "../src/acme/der.ts";
import { detectRuntime } from "../src/runtime/mod.ts";
import type { Conn, Listener, TlsCertificate } from "../src/runtime/types.ts";
import { testPki } from "./support/tls.ts";

const rt = detectRuntime();

describe.skipIf(rt.listenSelectingTls === undefined)("TLS-ALPN-01 on the SNI-selecting listener", () => {
  let listener: Listener;
  let a: TlsCertificate;
  let b: TlsCertificate;
  const challenges = new Map<string, TlsCertificate>();
  const accepted: Conn[] = [];

  beforeAll(async () => {
    const pki = testPki();
    a = pki.issue("a.alpn.test");
    b = pki.issue("b.alpn.test");
    const { keys, pem } = await newCertKey();
    const der = await buildTlsAlpnCert("a.alpn.test", new Uint8Array(32).fill(7), keys, Date.now());
    challenges.set("a.alpn.test", { cert: toPem("CERTIFICATE", der), key: pem });
    listener = await rt.listenSelectingTls!({
      address: { hostname: "127.0.0.1", port: 0 },
      tls: {
        cert: a.cert,
        key: a.key,
        alpn: ["h2", "http/1.1"],
        selectCertificate: (n) => (n === "b.alpn.test" ? b : a),
        acmeTlsAlpnCertificate: (n) => challenges.get(n) ?? null,
        helloTimeoutMs: 2_000,
      },
      onAccept(conn) {
        accepted.push(conn);
        return {
          onData: (c, chunk) => void c.write(chunk),
          onDrain() {},
          onEnd: (c) => c.end(),
          onClose() {},
        };
      },
    });
  });

  afterAll(() => listener?.close());

  function hello(opts: { servername?: string; alpn: string[]; version?: "TLSv1.2" | "TLSv1.3"; echo?: boolean }): Promise<{ alpn: string | false; cert: PeerCertificate; echoed: string | null; ended: boolean }> {
    return new Promise((resolve, reject) => {
      const v = opts.version ?? "TLSv1.3";
      const c = tlsConnect({ port: listener.port, host: "127.0.0.1", servername: opts.servername, ALPNProtocols: opts.alpn, minVersion: v, maxVersion: v, rejectUnauthorized: false }, () => {
        const res = { alpn: c.alpnProtocol ?? false, cert: c.getPeerCertificate(), echoed: null as string | null, ended: false };
        if (!opts.echo) {
          c.once("end", () => {
            res.ended = true;
            c.end();
            resolve(res);
          });
          return;
        }
        c.write("ping");
        c.once("data", (d) => {
          res.echoed = String(d);
          c.end();
          resolve(res);
        });
      });
      c.on("error", reject);
    });
  }

  for (const version of ["TLSv1.3", "TLSv1.2"] as const) {
    test(`${version}: acme-tls/1 alone gets the challenge certificate and is closed; others get the SNI's certificate`, async () => {
      const ch = await hello({ servername: "a.alpn.test", alpn: ["acme-tls/1"], version });
      expect(ch.alpn).toBe("acme-tls/1");
      expect(ch.cert.subject.CN).toBe("a.alpn.test");
      expect(ch.cert.issuer.CN).toBe("a.alpn.test"); // self-signed: the challenge certificate, not the CA's
      expect(ch.ended).toBe(true);
      const before = accepted.length;
      const normal = await hello({ servername: "a.alpn.test", alpn: ["h2", "http/1.1"], version, echo: true });
      expect(normal.alpn).toBe("h2"); // the listener's own ALPN list, as on the node:tls server
      expect(normal.cert.issuer.CN).toBe("edgemux test CA");
      expect(normal.echoed).toBe("ping");
      const other = await hello({ servername: "b.alpn.test", alpn: ["http/1.1"], version, echo: true });
      expect(other.cert.subject.CN).toBe("b.alpn.test");
      expect(other.alpn).toBe("http/1.1");
      expect(accepted.length).toBe(before + 2); // the challenge connection never reached onAccept
      const conn = accepted.at(-1)!;
      expect(conn.remoteAddress).toBe("127.0.0.1");
      expect(conn.tls()?.servername).toBe("b.alpn.test");
    });
  }

  test("no SNI: the default certificate; acme-tls/1 for a name with no challenge pending is refused", async () => {
    const d = await hello({ alpn: ["http/1.1"], echo: true });
    expect(d.cert.subject.CN).toBe("a.alpn.test");
    await expect(hello({ servername: "b.alpn.test", alpn: ["acme-tls/1"] })).rejects.toThrow();
  });

  /** A real ClientHello, captured through a plain socket. */
  async function capturedHello(servername: string, alpn: string[]): Promise<Buffer> {
    const { createServer } = await import("node:net");
    const grab = createServer();
    await new Promise<void>((r) => grab.listen(0, "127.0.0.1", () => r()));
    const captured = new Promise<Buffer>((resolve) => grab.once("connection", (s) => s.once("data", (d: Buffer) => (resolve(d), s.destroy()))));
    const probe = tlsConnect({ port: (grab.address() as { port: number }).port, host: "127.0.0.1", servername, ALPNProtocols: alpn });
    probe.on("error", () => {});
    const bytes = await captured;
    grab.close();
    return bytes;
  }

  /** Sends `bytes` one byte per write; resolves with the server's first answer. */
  function sendBytewise(bytes: Uint8Array): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      const s = netConnect(listener.port, "127.0.0.1", async () => {
        s.setNoDelay(true);
        for (const byte of bytes) {
          if (s.destroyed) return;
          s.write(Buffer.of(byte));
          await new Promise((r) => setImmediate(r));
        }
      });
      s.once("data", (d: Buffer) => (resolve(d), s.destroy()));
      s.on("error", reject);
    });
  }

  test("a hello split over many writes is put back whole; refusals and garbage get an alert", async () => {
    const normal = await capturedHello("a.alpn.test", ["http/1.1"]);
    expect(normal[0]).toBe(22);
    // Parsed from 1-byte reads, then replayed to TLS in as many chunks: the answer is the ServerHello (a handshake record).
    const answer = await sendBytewise(normal);
    expect(answer[0]).toBe(22);
    // b.alpn.test has no challenge pending: unrecognized_name (112) as a fatal alert.
    const refused = await sendBytewise(await capturedHello("b.alpn.test", ["acme-tls/1"]));
    expect([...refused.subarray(0, 7)]).toEqual([21, 3, 3, 0, 2, 2, 112]);
    const g = await sendBytewise(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"));
    expect(g[0]).toBe(21); // an alert record
  });

  test("a client that sends nothing is cut off after helloTimeoutMs", async () => {
    const t0 = Date.now();
    await new Promise<void>((resolve) => {
      const s = netConnect(listener.port, "127.0.0.1");
      s.on("close", () => resolve());
      s.on("error", () => {});
    });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_900);
  }, 10_000);
});
