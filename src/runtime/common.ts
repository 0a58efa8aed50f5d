/** Pieces both runtime adapters share: web-standard Worker glue and certificate fields. */
import type { ConnHandler, PeerCertificate, WorkerHandle } from "./types.ts";

/** A handler that ignores every event: a connection nobody owns (yet, or any more). */
export const NULL_HANDLER: ConnHandler = Object.freeze({ onData() {}, onDrain() {}, onEnd() {}, onClose() {} });

let nextThreadId = 1;

/**
 * Wraps a web `Worker`. `exitEvent` is the event the runtime fires when the
 * thread ends ("close" in Bun); an uncaught error ends the worker in both.
 */
export class WorkerAdapter implements WorkerHandle {
  private exited = false;
  private exitFns: ((reason: string) => void)[] = [];
  readonly threadId: number;

  constructor(private readonly worker: Worker, exitEvent: string | null) {
    // deno-lint-ignore no-explicit-any
    this.threadId = (worker as any).threadId ?? nextThreadId++;
    worker.addEventListener("error", (e: Event) => {
      // deno-lint-ignore no-explicit-any
      const ev = e as any;
      ev.preventDefault?.();
      const reason = `uncaught error: ${ev.message ?? ev.error?.message ?? "unknown"}`;
      try {
        worker.terminate();
      } catch { /* already gone */ }
      this.fireExit(reason);
    });
    if (exitEvent) worker.addEventListener(exitEvent, () => this.fireExit("exited"));
  }

  private fireExit(reason: string): void {
    if (this.exited) return;
    this.exited = true;
    for (const fn of this.exitFns) fn(reason);
  }

  postMessage(msg: unknown, transfer?: ArrayBuffer[]): void {
    if (this.exited) return;
    this.worker.postMessage(msg, (transfer ?? []) as never);
  }

  terminate(): void {
    this.worker.terminate();
    this.fireExit("terminated");
  }

  onExit(fn: (reason: string) => void): void {
    this.exitFns.push(fn);
  }

  onMessage(fn: (msg: unknown) => void): void {
    this.worker.addEventListener("message", (e: Event) => fn((e as MessageEvent).data));
  }
}

/** Node-style certificate object (Bun's getPeerCertificate) to our plain record. */
// deno-lint-ignore no-explicit-any
export function parsePeerCertificate(raw: any): PeerCertificate {
  const san: string = typeof raw.subjectaltname === "string" ? raw.subjectaltname : "";
  const uris: string[] = [];
  const dnsNames: string[] = [];
  for (const part of san.split(/,\s*/)) {
    if (part.startsWith("URI:")) uris.push(part.slice(4));
    else if (part.startsWith("DNS:")) dnsNames.push(part.slice(4));
  }
  const cn = raw.subject?.CN;
  return {
    uris,
    dnsNames,
    subjectCN: typeof cn === "string" ? cn : null,
    raw: raw.raw instanceof Uint8Array ? raw.raw : null,
  };
}
