/**
 * The runtime conformance suite against Bun's adapter in-process, and against
 * Deno's adapter in a `deno run` child (test/runtime_conformance_deno.ts).
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { bunRuntime } from "../src/runtime/bun.ts";
import { conformance } from "./support/conformance.ts";
import { ROOT, run } from "./support/edgemux.ts";

describe("Bun adapter", () => {
  for (const [name, fn] of Object.entries(conformance)) test(name, () => fn(bunRuntime), 30_000);
});

describe("Deno adapter", () => {
  test("passes the same conformance cases", async () => {
    const r = await run("deno", ["run", "--allow-all", "--unstable-net", join(ROOT, "test/runtime_conformance_deno.ts")], { timeoutMs: 90_000 });
    const results = r.stdout.split("\n").filter((l) => l.startsWith("ok ") || l.startsWith("FAIL "));
    expect(results.filter((l) => l.startsWith("FAIL "))).toEqual([]);
    expect(results.length).toBe(Object.keys(conformance).length);
    expect(r.code).toBe(0);
  }, 100_000);
});
