/**
 * `bun run build`: compile edgemux into one executable, dist/edgemux (Bun's
 * runtime, the CLI, the supervisor, the admin dashboard, which is inline in
 * src/admin/dashboard.ts, and the worker thread entry).
 *
 * The worker file is a second entry point: Bun bundles each entry point on
 * its own into the executable's embedded tree, the CLI as `/$bunfs/root/edgemux`
 * and the worker as `/$bunfs/root/workers/data_plane.js`, and
 * src/supervisor/mod.ts `workerEntryUrl()` spawns it from there.
 *
 *   bun scripts/build.ts [--outfile PATH] [--target bun-linux-x64|bun-linux-arm64|...]
 *
 * After building, the executable is run once (`--version`) so a broken build
 * fails here rather than in production. A cross-compiled binary is not run.
 */
import { chmodSync, mkdirSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { VERSION } from "../src/version.ts";

const ROOT = resolve(import.meta.dir, "..");
const ENTRY = join(ROOT, "src/cli/main.ts");
const WORKER = join(ROOT, "workers/data_plane.ts");

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    outfile: { type: "string", default: join(ROOT, "dist/edgemux") },
    target: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
  strict: true,
});
if (values.help) {
  console.log("bun scripts/build.ts [--outfile PATH (default dist/edgemux)] [--target bun-linux-x64|bun-linux-arm64|... (default: this machine)]");
  process.exit(0);
}

const outfile = resolve(values.outfile!);
mkdirSync(dirname(outfile), { recursive: true });
const started = performance.now();
const result = await Bun.build({
  entrypoints: [ENTRY, WORKER],
  root: ROOT,
  compile: values.target ? { outfile, target: values.target as never } : { outfile },
  minify: { whitespace: true, syntax: true, identifiers: false },
  // Embedded in the executable (zstd), so stack traces name the .ts sources.
  sourcemap: "linked",
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  console.error("build failed");
  process.exit(1);
}
for (const log of result.logs) console.warn(log);
chmodSync(outfile, 0o755);
// The executable carries its own source maps; Bun also writes them beside it. One file ships.
for (const o of result.outputs) if (o.kind === "sourcemap") rmSync(o.path, { force: true });
const size = statSync(outfile).size;
console.log(`built ${outfile} (${(size / 1024 / 1024).toFixed(1)} MiB) in ${Math.round(performance.now() - started)} ms`);

if (!values.target) {
  const p = Bun.spawnSync([outfile, "--version"], { cwd: "/", stdout: "pipe", stderr: "pipe" });
  const line = p.stdout.toString().trim();
  const want = `edgemux ${VERSION} (bun ${Bun.version})`;
  if (p.exitCode !== 0 || line !== want) {
    console.error(`${outfile} --version printed ${JSON.stringify(line)} (exit ${p.exitCode}), expected ${JSON.stringify(want)}; stderr: ${p.stderr.toString()}`);
    process.exit(1);
  }
  console.log(line);
}
