/**
 * Which certificate an HTTPS handshake gets (pure, synchronous: asked at
 * every handshake by the runtime's SNI callback).
 *
 * Per listener, from its config: the file certificates by the names they
 * serve (SAN DNS names). Per worker, shared by its listeners: the `[acme]`
 * certificates and pending challenges the supervisor posts (AcmeState).
 *
 * Order for an SNI name: a file certificate naming it exactly, an ACME
 * certificate for it (listeners with `tls.acme`), a file certificate whose
 * `*.suffix` covers it (one label), then the default: the first file
 * certificate, or with none the first ACME certificate by name. No SNI: the
 * default.
 */
import { ChallengeTable, type ChallengeEvent } from "../acme/mod.ts";
import type { CertificateFile, HttpTlsConfig } from "../config/types.ts";
import type { TlsCertificate } from "../runtime/types.ts";

/** One certificate as the worker holds it; the same object until it changes (the runtime caches its TLS context by identity). */
export interface HeldCertificate extends TlsCertificate {
  name: string;
  notAfter: number;
}

/** The worker's ACME certificates and challenges, fed by the supervisor's messages. */
export class AcmeState {
  readonly certs = new Map<string, HeldCertificate>();
  readonly challenges = new ChallengeTable();
  private readonly listeners = new Set<() => void>();

  setCertificate(c: HeldCertificate): void {
    this.certs.set(c.name, c);
    for (const fn of this.listeners) fn();
  }

  applyChallenge(ev: ChallengeEvent): void {
    this.challenges.apply(ev);
  }

  /** TLS-ALPN-01: the pending challenge's certificate for `name` (the same object while it is pending), or null. */
  alpnChallenge(name: string): TlsCertificate | null {
    return this.challenges.tlsAlpnChallengeCertificate(name);
  }

  /** `fn` runs after every certificate change (a listener refreshes its default). Returns the unsubscribe. */
  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** The first certificate by name, for a listener with no file certificate. */
  first(): HeldCertificate | null {
    let best: HeldCertificate | null = null;
    for (const c of this.certs.values()) if (best === null || c.name < best.name) best = c;
    return best;
  }
}

export class CertificateSet {
  private readonly exact = new Map<string, TlsCertificate>();
  private readonly wild = new Map<string, TlsCertificate>();
  private readonly fallback: TlsCertificate | null;

  constructor(files: readonly CertificateFile[], private readonly acme: AcmeState | null) {
    const objs = files.map((f): TlsCertificate => ({ cert: f.cert, key: f.key }));
    files.forEach((f, i) => {
      for (const n of f.names) {
        const wild = n.startsWith("*.");
        const map = wild ? this.wild : this.exact;
        const k = wild ? n.slice(1) : n;
        if (!map.has(k)) map.set(k, objs[i]!); // the first file naming a name wins
      }
    });
    this.fallback = objs[0] ?? null;
  }

  static of(tls: HttpTlsConfig, acme: AcmeState | null): CertificateSet {
    return new CertificateSet(tls.certificates, tls.acme ? acme : null);
  }

  /** The default certificate: clients without SNI, names nothing else serves. */
  get defaultCertificate(): TlsCertificate | null {
    return this.fallback ?? this.acme?.first() ?? null;
  }

  select(servername: string | null): TlsCertificate | null {
    if (servername === null) return this.defaultCertificate;
    const e = this.exact.get(servername);
    if (e !== undefined) return e;
    const a = this.acme?.certs.get(servername);
    if (a !== undefined) return a;
    const dot = servername.indexOf(".");
    if (dot > 0) {
      const w = this.wild.get(servername.slice(dot));
      if (w !== undefined) return w;
    }
    return this.defaultCertificate;
  }
}
