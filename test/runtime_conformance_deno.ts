/** Runs the conformance cases against the Deno adapter; one "ok"/"FAIL" line per case. */
import { denoRuntime } from "../src/runtime/deno.ts";
import { conformance } from "./support/conformance.ts";

let failed = 0;
for (const [name, fn] of Object.entries(conformance)) {
  try {
    await fn(denoRuntime);
    console.log(`ok ${name}`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}: ${(err as Error).message}`);
  }
}
denoRuntime.exit(failed === 0 ? 0 : 1);
