/**
 * A headless Chromium driven over the Chrome DevTools Protocol, with no
 * library: Debian's /usr/bin/chromium started with --remote-debugging-port=0
 * (the port it chose is read from its "DevTools listening on ws://…" line),
 * one WebSocket, flat sessions. Enough for end-to-end tests of the admin
 * dashboard: open a page, evaluate expressions, wait for conditions, take
 * PNG screenshots. It never downloads a browser.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const CHROMIUM = process.env.EDGEMUX_CHROMIUM ?? "/usr/bin/chromium";

export function hasChromium(): boolean {
  return existsSync(CHROMIUM);
}

interface Pending {
  resolve: (v: Record<string, unknown>) => void;
  reject: (e: Error) => void;
  method: string;
}

export class Chromium {
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private readonly eventWaiters: { method: string; sessionId?: string; resolve: (p: Record<string, unknown>) => void }[] = [];
  readonly consoleErrors: string[] = [];

  private constructor(private readonly proc: ChildProcess, private readonly ws: WebSocket, private readonly profile: string) {
    ws.onmessage = (ev) => this.onMessage(JSON.parse(String(ev.data)));
  }

  /** Starts Chromium headless with a fresh profile; resolves once the DevTools socket is open. */
  static async launch(opts: { width?: number; height?: number; timeoutMs?: number; args?: string[] } = {}): Promise<Chromium> {
    const profile = mkdtempSync(join(tmpdir(), "edgemux-chromium-"));
    const args = [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
      "--hide-scrollbars",
      "--mute-audio",
      `--user-data-dir=${profile}`,
      `--window-size=${opts.width ?? 1400},${opts.height ?? 1000}`,
      "--remote-debugging-address=127.0.0.1",
      "--remote-debugging-port=0",
      ...(opts.args ?? []),
      "about:blank",
    ];
    const proc = spawn(CHROMIUM, args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    const url = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`chromium did not print its DevTools address in time; stderr: ${stderr}`)), opts.timeoutMs ?? 30_000);
      proc.stderr!.setEncoding("utf8");
      proc.stderr!.on("data", (d: string) => {
        stderr += d;
        const m = /DevTools listening on (ws:\/\/\S+)/.exec(stderr);
        if (m) {
          clearTimeout(t);
          resolve(m[1]!);
        }
      });
      proc.on("exit", (code) => {
        clearTimeout(t);
        reject(new Error(`chromium exited with ${code}: ${stderr}`));
      });
    });
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error(`cannot open ${url}`));
    });
    return new Chromium(proc, ws, profile);
  }

  /** One CDP command; `sessionId` addresses a page attached with flatten. */
  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    const id = ++this.seq;
    this.ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject, method }));
  }

  /** The next event `method` (on `sessionId`, when given). */
  waitEvent(method: string, sessionId?: string, timeoutMs = 15_000): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ${method} event within ${timeoutMs} ms`)), timeoutMs);
      this.eventWaiters.push({
        method,
        sessionId,
        resolve: (p) => {
          clearTimeout(t);
          resolve(p);
        },
      });
    });
  }

  /** A new tab, attached; `headers` go with every request it makes (fetch included). */
  async newPage(headers: Record<string, string> = {}): Promise<CdpPage> {
    const { targetId } = (await this.send("Target.createTarget", { url: "about:blank" })) as { targetId: string };
    const { sessionId } = (await this.send("Target.attachToTarget", { targetId, flatten: true })) as { sessionId: string };
    await this.send("Page.enable", {}, sessionId);
    await this.send("Runtime.enable", {}, sessionId);
    await this.send("Network.enable", {}, sessionId);
    if (Object.keys(headers).length > 0) await this.send("Network.setExtraHTTPHeaders", { headers }, sessionId);
    return new CdpPage(this, sessionId);
  }

  async close(): Promise<void> {
    try {
      await Promise.race([this.send("Browser.close"), new Promise((r) => setTimeout(r, 3000))]);
    } catch {
      // already gone
    }
    this.ws.close();
    if (this.proc.exitCode === null) {
      const exited = new Promise<void>((r) => this.proc.once("exit", () => r()));
      this.proc.kill("SIGKILL");
      await exited;
    }
    rmSync(this.profile, { recursive: true, force: true });
  }

  private onMessage(m: { id?: number; result?: Record<string, unknown>; error?: { message: string }; method?: string; params?: Record<string, unknown>; sessionId?: string }): void {
    if (m.id !== undefined) {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error) p.reject(new Error(`${p.method}: ${m.error.message}`));
      else p.resolve(m.result ?? {});
      return;
    }
    if (m.method === "Runtime.exceptionThrown") {
      const d = (m.params as { exceptionDetails?: { text?: string; exception?: { description?: string } } }).exceptionDetails;
      this.consoleErrors.push(d?.exception?.description ?? d?.text ?? "exception");
    }
    if (m.method === "Runtime.consoleAPICalled" && (m.params as { type?: string }).type === "error") {
      this.consoleErrors.push(JSON.stringify((m.params as { args?: unknown }).args));
    }
    for (let i = 0; i < this.eventWaiters.length; i++) {
      const w = this.eventWaiters[i]!;
      if (w.method === m.method && (w.sessionId === undefined || w.sessionId === m.sessionId)) {
        this.eventWaiters.splice(i, 1);
        w.resolve(m.params ?? {});
        return;
      }
    }
  }
}

export class CdpPage {
  constructor(private readonly browser: Chromium, readonly sessionId: string) {}

  /** Navigates and waits for the load event; throws on an HTTP error status. */
  async goto(url: string): Promise<void> {
    const loaded = this.browser.waitEvent("Page.loadEventFired", this.sessionId, 30_000);
    const r = (await this.browser.send("Page.navigate", { url }, this.sessionId)) as { errorText?: string };
    if (r.errorText) throw new Error(`navigate ${url}: ${r.errorText}`);
    await loaded;
  }

  /** Evaluates an expression in the page (promises awaited) and returns its JSON value. */
  async eval<T>(expression: string): Promise<T> {
    const r = (await this.browser.send("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true }, this.sessionId)) as {
      result: { value?: T };
      exceptionDetails?: { text: string; exception?: { description?: string } };
    };
    if (r.exceptionDetails) throw new Error(`in page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value as T;
  }

  /** Polls `expression` in the page until it is truthy; returns its value. */
  async waitFor<T>(expression: string, what: string, timeoutMs = 20_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown = null;
    for (;;) {
      last = await this.eval<T>(expression);
      if (last) return last as T;
      if (Date.now() > deadline) throw new Error(`timed out waiting in the page for ${what}; last value ${JSON.stringify(last)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** A PNG of the whole page (beyond the viewport), written to `path`. */
  async screenshot(path: string): Promise<void> {
    const m = (await this.browser.send("Page.getLayoutMetrics", {}, this.sessionId)) as { cssContentSize: { width: number; height: number } };
    const { width, height } = m.cssContentSize;
    const r = (await this.browser.send(
      "Page.captureScreenshot",
      { format: "png", captureBeyondViewport: true, clip: { x: 0, y: 0, width: Math.ceil(width), height: Math.ceil(height), scale: 1 } },
      this.sessionId,
    )) as { data: string };
    writeFileSync(path, Buffer.from(r.data, "base64"));
  }
}
