/**
 * An RFC 8555 ACME client: directory, nonces, account, order, authorizations,
 * challenges, finalize, polling and certificate download.
 *
 * Why not an npm ACME package: the well-kept ones (acme-client, node-acme)
 * lean on node:crypto, node:https and their own dependency trees; this one
 * needs only WebCrypto and `fetch`, which Bun and Deno both have natively,
 * so it runs unchanged on either. It is a few hundred lines a reviewer can
 * read against the RFC in one sitting, and it is the code that holds the
 * account key.
 *
 * Every network wait is bounded: each request by `requestTimeoutMs` (the
 * body read included: the abort signal covers it), every poll loop by
 * `pollTimeoutMs`, each Retry-After by `maxRetryAfterMs`.
 */
import { type FetchFn, wallMs } from "../runtime/mod.ts";
import { buildCsr, newCertKey } from "./x509.ts";
import { b64url, type EcPublicJwk, jwkThumbprint, keyAuthorization, publicJwk, signJws } from "./jose.ts";

export type AcmeErrorCode =
  | "ACME_PROBLEM" // the server answered with an RFC 7807 problem document
  | "ACME_HTTP" // an unexpected status or body, or the request failed
  | "ACME_TIMEOUT" // a request or a poll ran past its bound
  | "ACME_TERMS" // the CA has terms of service and accept_terms is false
  | "ACME_CHALLENGE" // no supported challenge, or validation failed
  | "ACME_DENIED" // the issuance guard refused (not allowed, rate limit, back-off)
  | "ACME_STORE"; // the state directory could not be read or written

export interface AcmeProblem {
  type?: string;
  detail?: string;
  status?: number;
  subproblems?: unknown[];
}

export class AcmeError extends Error {
  constructor(
    readonly code: AcmeErrorCode,
    message: string,
    readonly problem?: AcmeProblem,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "AcmeError";
  }
}

export interface AcmeDirectory {
  newNonce: string;
  newAccount: string;
  newOrder: string;
  revokeCert?: string;
  keyChange?: string;
  meta?: { termsOfService?: string; website?: string; externalAccountRequired?: boolean };
}

export interface AcmeOrder {
  status: "pending" | "ready" | "processing" | "valid" | "invalid";
  expires?: string;
  identifiers: { type: string; value: string }[];
  authorizations: string[];
  finalize: string;
  certificate?: string;
  error?: AcmeProblem;
}

export interface AcmeChallenge {
  type: string;
  url: string;
  status: "pending" | "processing" | "valid" | "invalid";
  token?: string;
  error?: AcmeProblem;
}

export interface AcmeAuthorization {
  identifier: { type: string; value: string };
  status: "pending" | "valid" | "invalid" | "deactivated" | "expired" | "revoked";
  challenges: AcmeChallenge[];
  wildcard?: boolean;
}

export type ChallengeType = "http-01" | "tls-alpn-01";

/** What the client asks of whoever can answer the CA's validation requests. */
export interface ChallengeSolver {
  /** Make the answer available before the CA is told to validate. */
  present(type: ChallengeType, name: string, token: string, keyAuth: string): Promise<void>;
  /** Take it away again (validation finished either way). */
  cleanup(type: ChallengeType, name: string, token: string): Promise<void> | void;
}

export interface AcmeClientOptions {
  directoryUrl: string;
  accountKey: CryptoKeyPair;
  fetch: FetchFn;
  /** Bound on each HTTP request, body included. Default 30 s. */
  requestTimeoutMs?: number;
  /** Bound on each poll loop (authorization, order). Default 120 s. */
  pollTimeoutMs?: number;
  /** Retry-After is honoured up to this. Default 10 s. */
  maxRetryAfterMs?: number;
  /** Poll interval when the server gives no Retry-After. Default 1 s. */
  pollIntervalMs?: number;
  /** Injected for tests; a timer by default. */
  sleep?: (ms: number) => Promise<void>;
  /** Wall clock for the poll deadlines. */
  now?: () => number;
}

interface Reply<T> {
  status: number;
  headers: Headers;
  body: T;
}

/** badNonce is retried this many times (RFC 8555 §6.5: clients should retry with the fresh nonce). */
const BAD_NONCE_RETRIES = 5;
/** Nonces kept from responses; a bound so a chatty server cannot grow us. */
const NONCE_POOL_MAX = 16;

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class AcmeClient {
  private dir: AcmeDirectory | null = null;
  private nonces: string[] = [];
  private jwk: EcPublicJwk | null = null;
  private thumb: string | null = null;
  /** The account URL (the JWS `kid`), once known. */
  accountUrl: string | null = null;
  private readonly requestTimeoutMs: number;
  private readonly pollTimeoutMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly pollIntervalMs: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly now: () => number;

  constructor(private readonly opts: AcmeClientOptions) {
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.pollTimeoutMs = opts.pollTimeoutMs ?? 120_000;
    this.maxRetryAfterMs = opts.maxRetryAfterMs ?? 10_000;
    this.pollIntervalMs = opts.pollIntervalMs ?? 1_000;
    this.sleep = opts.sleep ?? defaultSleep;
    this.now = opts.now ?? wallMs;
  }

  private async request(url: string, init: RequestInit): Promise<Response> {
    try {
      return await this.opts.fetch(url, { ...init, signal: AbortSignal.timeout(this.requestTimeoutMs) });
    } catch (e) {
      const timedOut = e instanceof Error && (e.name === "TimeoutError" || e.name === "AbortError");
      throw new AcmeError(
        timedOut ? "ACME_TIMEOUT" : "ACME_HTTP",
        timedOut ? `ACME request to ${url} took longer than ${this.requestTimeoutMs} ms` : `ACME request to ${url} failed: ${(e as Error).message}`,
        undefined,
        { cause: e },
      );
    }
  }

  private keepNonce(res: Response): void {
    const n = res.headers.get("replay-nonce");
    if (n && /^[A-Za-z0-9_-]+$/.test(n)) {
      this.nonces.push(n);
      if (this.nonces.length > NONCE_POOL_MAX) this.nonces.shift();
    }
  }

  async directory(): Promise<AcmeDirectory> {
    if (this.dir) return this.dir;
    const res = await this.request(this.opts.directoryUrl, { method: "GET" });
    const body = await readBody(res, this.opts.directoryUrl);
    if (res.status !== 200 || typeof body !== "object" || body === null) {
      throw new AcmeError("ACME_HTTP", `ACME directory ${this.opts.directoryUrl} answered ${res.status}`);
    }
    const d = body as AcmeDirectory;
    for (const k of ["newNonce", "newAccount", "newOrder"] as const) {
      if (typeof d[k] !== "string") throw new AcmeError("ACME_HTTP", `ACME directory ${this.opts.directoryUrl} has no '${k}'`);
    }
    this.dir = d;
    return d;
  }

  private async nonce(): Promise<string> {
    const kept = this.nonces.pop();
    if (kept) return kept;
    const { newNonce } = await this.directory();
    // RFC 8555 §7.2: HEAD newNonce answers 200 with a Replay-Nonce header.
    const res = await this.request(newNonce, { method: "HEAD" });
    await res.body?.cancel();
    const n = res.headers.get("replay-nonce");
    if (!n) throw new AcmeError("ACME_HTTP", `ACME newNonce ${newNonce} gave no Replay-Nonce (status ${res.status})`);
    return n;
  }

  async accountJwk(): Promise<EcPublicJwk> {
    this.jwk ??= await publicJwk(this.opts.accountKey.publicKey);
    return this.jwk;
  }

  async thumbprint(): Promise<string> {
    this.thumb ??= await jwkThumbprint(await this.accountJwk());
    return this.thumb;
  }

  /**
   * A signed POST (payload null = POST-as-GET). RFC 8555 §6.5: "When a
   * server rejects a request because its nonce value was unacceptable ... it
   * MUST include a Replay-Nonce header field with a fresh nonce ... On
   * receiving such an error, the client SHOULD retry the request using the
   * new nonce." Other problems become an AcmeError.
   */
  async post<T = unknown>(url: string, payload: unknown | null, opts: { useJwk?: boolean; accept?: string } = {}): Promise<Reply<T>> {
    for (let attempt = 0;; attempt++) {
      const nonce = await this.nonce();
      let header;
      if (opts.useJwk) header = { nonce, url, jwk: await this.accountJwk() };
      else {
        if (!this.accountUrl) throw new AcmeError("ACME_HTTP", "ACME request before the account is known");
        header = { nonce, url, kid: this.accountUrl };
      }
      const jws = await signJws(this.opts.accountKey.privateKey, header, payload);
      const res = await this.request(url, {
        method: "POST",
        headers: { "content-type": "application/jose+json", ...(opts.accept ? { accept: opts.accept } : {}) },
        body: JSON.stringify(jws),
      });
      this.keepNonce(res);
      const body = await readBody(res, url);
      if (res.status >= 200 && res.status < 300) return { status: res.status, headers: res.headers, body: body as T };
      const problem = (typeof body === "object" && body !== null ? body : { detail: String(body) }) as AcmeProblem;
      if (problem.type === "urn:ietf:params:acme:error:badNonce" && attempt < BAD_NONCE_RETRIES) continue;
      throw new AcmeError("ACME_PROBLEM", `ACME ${url} answered ${res.status}: ${problem.type ?? "?"}: ${problem.detail ?? ""}`, problem);
    }
  }

  /**
   * newAccount (RFC 8555 §7.3): creates the account, or finds the existing
   * one for this key (the server answers 200 with its Location).
   */
  async account(contact: readonly string[], termsOfServiceAgreed: boolean): Promise<string> {
    const dir = await this.directory();
    if (dir.meta?.termsOfService && !termsOfServiceAgreed) {
      throw new AcmeError("ACME_TERMS", `The CA requires agreeing to its terms (${dir.meta.termsOfService}): set accept_terms = true in [acme]`);
    }
    const payload: Record<string, unknown> = { termsOfServiceAgreed };
    if (contact.length > 0) payload.contact = contact.map((c) => (c.includes(":") ? c : `mailto:${c}`));
    const res = await this.post<{ status?: string }>(dir.newAccount, payload, { useJwk: true });
    const loc = res.headers.get("location");
    if (!loc) throw new AcmeError("ACME_HTTP", `ACME newAccount answered ${res.status} without a Location`);
    if (res.body?.status && res.body.status !== "valid") throw new AcmeError("ACME_HTTP", `ACME account ${loc} is ${res.body.status}`);
    this.accountUrl = loc;
    return loc;
  }

  async newOrder(names: readonly string[]): Promise<{ url: string; order: AcmeOrder }> {
    const dir = await this.directory();
    const res = await this.post<AcmeOrder>(dir.newOrder, { identifiers: names.map((value) => ({ type: "dns", value })) });
    const url = res.headers.get("location");
    if (!url) throw new AcmeError("ACME_HTTP", `ACME newOrder answered ${res.status} without a Location`);
    return { url, order: res.body };
  }

  async get<T>(url: string): Promise<Reply<T>> {
    return this.post<T>(url, null);
  }

  /**
   * POST-as-GET `url` until `done(body)`, waiting Retry-After (bounded) or the
   * poll interval between tries, for at most `pollTimeoutMs` in all.
   */
  async poll<T>(url: string, done: (body: T) => boolean, what: string): Promise<T> {
    const deadline = this.now() + this.pollTimeoutMs;
    for (;;) {
      const res = await this.get<T>(url);
      if (done(res.body)) return res.body;
      const wait = Math.min(retryAfterMs(res.headers.get("retry-after"), this.now()) ?? this.pollIntervalMs, this.maxRetryAfterMs);
      if (this.now() + wait > deadline) throw new AcmeError("ACME_TIMEOUT", `ACME ${what} ${url} not done after ${this.pollTimeoutMs} ms`);
      await this.sleep(wait);
    }
  }

  /**
   * The whole issuance for `names` (RFC 8555 §7.4 order → §7.5 authorizations
   * → §7.5.1 respond → finalize → download). `prefer` orders the challenge
   * types tried for each name. Returns the PEM chain and the new key's PEM.
   */
  async issue(names: readonly string[], solver: ChallengeSolver, prefer: readonly ChallengeType[]): Promise<{ chainPem: string; keyPem: string }> {
    const { url: orderUrl, order } = await this.newOrder(names);
    const thumb = await this.thumbprint();
    for (const authzUrl of order.authorizations) {
      const authz = (await this.get<AcmeAuthorization>(authzUrl)).body;
      if (authz.status === "valid") continue;
      if (authz.status !== "pending") throw new AcmeError("ACME_CHALLENGE", `authorization for ${authz.identifier.value} is ${authz.status}`);
      const ch = prefer.map((t) => authz.challenges.find((c) => c.type === t)).find((c) => c !== undefined);
      if (!ch || !ch.token) {
        throw new AcmeError("ACME_CHALLENGE", `the CA offers ${authz.challenges.map((c) => c.type).join(", ")} for ${authz.identifier.value}; edgemux answers ${prefer.join(", ")}`);
      }
      const type = ch.type as ChallengeType;
      const name = authz.identifier.value;
      await solver.present(type, name, ch.token, keyAuthorization(ch.token, thumb));
      try {
        // RFC 8555 §7.5.1: "The client indicates to the server that it is ready for
        // the challenge validation by sending an empty JSON body ("{}")".
        await this.post(ch.url, {});
        const final = await this.poll<AcmeAuthorization>(authzUrl, (a) => a.status !== "pending", "authorization");
        if (final.status !== "valid") {
          const err = final.challenges.find((c) => c.type === type)?.error;
          throw new AcmeError("ACME_CHALLENGE", `${type} for ${name} failed: ${err?.type ?? final.status}: ${err?.detail ?? ""}`, err);
        }
      } finally {
        await solver.cleanup(type, name, ch.token);
      }
    }
    const ready = await this.poll<AcmeOrder>(orderUrl, (o) => o.status !== "pending", "order");
    if (ready.status !== "ready" && ready.status !== "valid") throw new AcmeError("ACME_PROBLEM", `order ${orderUrl} is ${ready.status}`, ready.error);
    const { keys, pem: keyPem } = await newCertKey();
    let final = ready;
    if (ready.status === "ready") {
      const csr = await buildCsr(names, keys);
      final = (await this.post<AcmeOrder>(ready.finalize, { csr: b64url(csr) })).body;
    }
    if (final.status !== "valid") final = await this.poll<AcmeOrder>(orderUrl, (o) => o.status === "valid" || o.status === "invalid", "order");
    if (final.status !== "valid" || !final.certificate) throw new AcmeError("ACME_PROBLEM", `order ${orderUrl} ended ${final.status}`, final.error);
    const chain = await this.post<string>(final.certificate, null, { accept: "application/pem-certificate-chain" });
    if (typeof chain.body !== "string" || !chain.body.includes("-----BEGIN CERTIFICATE-----")) {
      throw new AcmeError("ACME_HTTP", `certificate ${final.certificate} is not a PEM chain`);
    }
    return { chainPem: chain.body, keyPem };
  }
}

/** JSON for JSON content types (application/json, application/problem+json), text otherwise. */
async function readBody(res: Response, url: string): Promise<unknown> {
  let text: string;
  try {
    text = await res.text();
  } catch (e) {
    const timedOut = e instanceof Error && (e.name === "TimeoutError" || e.name === "AbortError");
    throw new AcmeError(timedOut ? "ACME_TIMEOUT" : "ACME_HTTP", `reading the answer of ${url} failed: ${(e as Error).message}`, undefined, { cause: e });
  }
  const type = res.headers.get("content-type") ?? "";
  if (/json/.test(type) && text !== "") {
    try {
      return JSON.parse(text);
    } catch {
      throw new AcmeError("ACME_HTTP", `${url} sent malformed JSON (status ${res.status})`);
    }
  }
  return text;
}

/** Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date; ms from now, or null. */
export function retryAfterMs(value: string | null, nowMs: number): number | null {
  if (value === null) return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : Math.max(0, t - nowMs);
}
