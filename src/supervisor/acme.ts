/**
 * `[acme]` on the supervisor. Decision: the supervisor, not a worker, runs
 * the one AcmeManager. Only one process may talk to the CA (one account,
 * one order per name, the CA's rate limits), the state directory has one
 * writer, and the supervisor outlives any worker: a crashed or restarted
 * worker loses nothing and cannot leave an order half done. It is control
 * plane work (a few requests a day), so it adds nothing to the traffic path.
 *
 * Certificates and challenges reach the workers as messages: every issued or
 * renewed certificate, and every challenge (HTTP-01 for the plain listeners,
 * TLS-ALPN-01 for the acme https listeners) appearing or going, is
 * posted to all workers; a worker that (re)starts gets every held
 * certificate and every pending challenge right after its start message.
 * Workers serve them from their AcmeState (http/certificates.ts).
 *
 * Only names that are the exact `match` of a route of an http listener with
 * `tls.acme` (narrowed by `acme.names`) are ever sent to the CA; they are
 * ordered at start (the CA being down only delays that) and on reload, and
 * renewed at two thirds of their lifetime. Orders use the one challenge type
 * of `acme.challenge` (`auto` resolved by the config: HTTP-01 with a plain
 * http listener, else TLS-ALPN-01).
 */
import { AcmeManager, type ChallengeEvent, type StoredCert } from "../acme/mod.ts";
import { acmeNames } from "../config/mod.ts";
import type { AcmeConfig, Config } from "../config/types.ts";
import type { Logger } from "../log/mod.ts";
import { wallMs } from "../runtime/mod.ts";
import type { ToWorker } from "../worker/mod.ts";

export class AcmeService {
  private readonly manager: AcmeManager;
  /** Names allowed now (the config's); a reload changes it. */
  private allowed = new Set<string>();
  /** Pending challenges, by token or name, for workers that start while they are pending. */
  private readonly pending = new Map<string, ChallengeEvent>();

  /**
   * `clockOffsetMs` shifts the manager's clock (renewal times, back-off), for
   * tests that make a renewal come due: `EDGEMUX_ACME_CLOCK_OFFSET_MS`.
   */
  constructor(private readonly cfg: AcmeConfig, config: Config, private readonly log: Logger, private readonly broadcast: (msg: ToWorker) => void, private readonly clockOffsetMs = 0) {
    this.allowed = new Set(acmeNames(cfg, config.listeners, config.routes));
    this.manager = new AcmeManager({
      directoryUrl: cfg.directory,
      contact: cfg.contact,
      acceptTerms: true,
      stateDir: cfg.stateDir,
      allow: (n) => this.allowed.has(n),
      challenges: [cfg.challengeType],
      ...(clockOffsetMs !== 0 ? { now: () => wallMs() + clockOffsetMs } : {}),
      ...(cfg.ca !== null ? { caPem: cfg.ca } : {}),
      maxConcurrent: cfg.maxConcurrent,
      newNamesPerHour: cfg.newNamesPerHour,
      policy: { backoffBaseMs: cfg.retryBaseMs },
      log: { info: (m, f) => log.info(m, f), warn: (m, f) => log.warn(m, f) },
      onCertificate: (c) => this.broadcast(certificateMessage(c)),
      onChallenge: (ev) => {
        log.info("acme challenge", { challenge: ev.kind, present: ev.present, ...(ev.kind === "http-01" ? { token: ev.token } : { name: ev.name }) });
        const key = ev.kind === "http-01" ? `h:${ev.token}` : `t:${ev.name}`;
        if (ev.present) this.pending.set(key, ev);
        else this.pending.delete(key);
        this.broadcast({ type: "acme-challenge", event: ev });
      },
    });
  }

  /** Loads the account and the stored certificates (no word to the CA), then starts ordering what is missing or due. */
  async start(): Promise<void> {
    await this.manager.start();
    this.log.info("acme started", { challenge: this.cfg.challengeType, names: this.allowed.size, ...(this.clockOffsetMs !== 0 ? { clock_offset_ms: this.clockOffsetMs } : {}) });
    this.manager.manage(this.allowed);
  }

  /** SIGHUP: the routes (and `acme.names`) decide the names from now on. */
  reload(config: Config): void {
    if (config.acme === null) return;
    this.allowed = new Set(acmeNames(config.acme, config.listeners, config.routes));
    this.manager.manage(this.allowed);
  }

  /** What a worker that just started must know: every certificate held and every pending challenge. */
  replay(post: (msg: ToWorker) => void): void {
    for (const c of this.manager.certificates()) post(certificateMessage(c));
    for (const ev of this.pending.values()) post({ type: "acme-challenge", event: ev });
  }

  expiries(): { name: string; notAfter: number }[] {
    return this.manager.expiries();
  }

  stop(): Promise<void> {
    return this.manager.stop();
  }
}

function certificateMessage(c: StoredCert): ToWorker {
  return { type: "acme-certificate", name: c.name, cert: c.chainPem, key: c.keyPem, notAfter: c.notAfter };
}
