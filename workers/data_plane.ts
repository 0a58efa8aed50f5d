/**
 * Worker thread entry: one data plane per thread. The supervisor spawns this
 * file; everything it does lives in src/worker/.
 */
import { detectRuntime } from "../src/runtime/mod.ts";
import { DataPlane, type FromWorker, type ToWorker } from "../src/worker/mod.ts";

const runtime = detectRuntime();

declare const self: {
  postMessage(msg: unknown): void;
  addEventListener(type: "message", fn: (e: MessageEvent) => void): void;
};

new DataPlane(runtime, {
  post: (msg: FromWorker) => self.postMessage(msg),
  onMessage: (fn: (msg: ToWorker) => void) => self.addEventListener("message", (e) => fn(e.data as ToWorker)),
});
