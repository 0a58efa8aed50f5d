import { describe, expect, test } from "bun:test";
import { AcmeClient, AcmeError, retryAfterMs } from "./client.ts";
import { b64urlDecode, generateP256, verifyJws } from "./jose.ts";
import type { FetchFn } from "../runtime/mod.ts";

const DIR = "https://ca.test/dir";
const directory = { newNonce: "https://ca.test/nonce", newAccount: "https://ca.test/acct", newOrder: "https://ca.test/order", meta: { termsOfService: "https://ca.test/tos" } };

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  const type = status >= 400 ? "application/problem+json" : "application/json";
  return new Response(JSON.stringify(body), { status, headers: { "content-type": type, ...headers } });
}

/** A scripted CA: answers by URL, hands out nonces n1, n2, ...; records signed requests. */
function fakeCa(onPost: (url: string, header: Record<string, unknown>, payload: unknown, n: number) => Response) {
  let nonce = 0;
  const posts: { url: string; header: Record<string, unknown>; jws: { protected: string; payload: string; signature: string } }[] = [];
  const fetch: FetchFn = async (input, init) => {
    const url = String(input);
    if (url === DIR) return json(200, directory);
    if (url === directory.newNonce) return new Response(null, { status: 200, headers: { "replay-nonce": `n${++nonce}` } });
    const jws = JSON.parse(String(init!.body));
    const header = JSON.parse(new TextDecoder().decode(b64urlDecode(jws.protected)));
    const payload = jws.payload === "" ? null : JSON.parse(new TextDecoder().decode(b64urlDecode(jws.payload)));
    posts.push({ url, header, jws });
    const res = onPost(url, header, payload, posts.length);
    res.headers.set("replay-nonce", `n${++nonce}`);
    return res;
  };
  return { fetch, posts };
}

describe("AcmeClient against a scripted CA", () => {
  test("badNonce is retried with the nonce from the error answer; the JWS verifies", async () => {
    const keys = await generateP256();
    const ca = fakeCa((_url, _h, _p, n) =>
      n <= 2 ? json(400, { type: "urn:ietf:params:acme:error:badNonce", detail: "stale" }) : json(201, { status: "valid" }, { location: "https://ca.test/acct/7" })
    );
    const c = new AcmeClient({ directoryUrl: DIR, accountKey: keys, fetch: ca.fetch });
    expect(await c.account(["ops@example.test"], true)).toBe("https://ca.test/acct/7");
    expect(ca.posts.length).toBe(3);
    // The retry used the nonce the error answer carried (the pool's newest), not a new HEAD.
    expect(ca.posts.map((p) => p.header.nonce)).toEqual(["n1", "n2", "n3"]);
    for (const p of ca.posts) expect(await verifyJws(keys.publicKey, p.jws)).toBe(true);
    expect(ca.posts[0]!.header.jwk).toBeDefined();
    expect(ca.posts[0]!.header.kid).toBeUndefined();
  });

  test("badNonce forever ends with the problem, bounded", async () => {
    const ca = fakeCa(() => json(400, { type: "urn:ietf:params:acme:error:badNonce" }));
    const c = new AcmeClient({ directoryUrl: DIR, accountKey: await generateP256(), fetch: ca.fetch });
    const err = await c.account([], true).catch((e) => e);
    expect(err).toBeInstanceOf(AcmeError);
    expect(err.problem.type).toContain("badNonce");
    expect(ca.posts.length).toBe(6);
  });

  test("terms of service must be accepted", async () => {
    const ca = fakeCa(() => json(201, {}, { location: "x" }));
    const c = new AcmeClient({ directoryUrl: DIR, accountKey: await generateP256(), fetch: ca.fetch });
    await expect(c.account([], false)).rejects.toThrow(/accept_terms/);
    expect(ca.posts.length).toBe(0);
  });

  test("polling honours Retry-After up to its bound and gives up at the poll deadline", async () => {
    let clock = 0;
    const slept: number[] = [];
    const ca = fakeCa(() => json(200, { status: "processing" }, { "retry-after": "3600" }));
    const c = new AcmeClient({
      directoryUrl: DIR,
      accountKey: await generateP256(),
      fetch: ca.fetch,
      now: () => clock,
      sleep: async (ms) => {
        slept.push(ms);
        clock += ms;
      },
      maxRetryAfterMs: 5_000,
      pollTimeoutMs: 20_000,
    });
    c.accountUrl = "https://ca.test/acct/1";
    const err = await c.poll("https://ca.test/order/1", (o: { status: string }) => o.status === "valid", "order").catch((e) => e);
    expect(err.code).toBe("ACME_TIMEOUT");
    expect(slept).toEqual([5_000, 5_000, 5_000, 5_000]);
    expect(ca.posts.every((p) => p.header.kid === "https://ca.test/acct/1" && p.jws.payload === "")).toBe(true);
  });

  test("a request that does not answer is cut off at requestTimeoutMs", async () => {
    const hang: FetchFn = (_input, init) =>
      new Promise((_resolve, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal!.reason)));
    const c = new AcmeClient({ directoryUrl: DIR, accountKey: await generateP256(), fetch: hang, requestTimeoutMs: 50 });
    const err = await c.directory().catch((e) => e);
    expect(err.code).toBe("ACME_TIMEOUT");
  });

  test("Retry-After: seconds or an HTTP date", () => {
    expect(retryAfterMs("7", 0)).toBe(7_000);
    expect(retryAfterMs("Thu, 01 Jan 1970 00:00:10 GMT", 4_000)).toBe(6_000);
    expect(retryAfterMs("soon", 0)).toBeNull();
    expect(retryAfterMs(null, 0)).toBeNull();
  });
});
