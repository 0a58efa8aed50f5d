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
 *   bun scripts/build.ts                          → dist/edgemux, for this machine
 *   bun scripts/build.ts --target linux-x64       → dist/edgemux-linux-x64
 *   bun scripts/build.ts --target linux-arm64     → dist/edgemux-linux-arm64
 *   bun scripts/build.ts --target all             → both
 *   bun scripts/build.ts [--target T] --outfile PATH   (one target only)
 *
 * Each executable gets a `.sha256` beside it, in `sha256sum -c` format. For
 * another platform Bun needs that platform's runtime, which it fetches once
 * from the npm registry (@oven/bun-linux-aarch64) into ~/.bun/install/cache;
 * when that fails the build says so. After building, an executable for this
 * machine is run once (`--version`) so a broken build fails here rather than
 * in production; a cross-compiled one is not run.
 */
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { VERSION } from "../src/version.ts";

const ROOT = resolve(import.meta.dir, "..");
const ENTRY = join(ROOT, "src/cli/main.ts");
const WORKER = join(ROOT, "workers/data_plane.ts");

/** `--target` names → Bun's compile targets. */
const TARGETS = { "linux-x64": "bun-linux-x64", "linux-arm64": "bun-linux-arm64" } as const;
type Target = keyof typeof TARGETS;
const USAGE = "bun scripts/build.ts [--target linux-x64|linux-arm64|all (default: this machine, dist/edgemux)] [--outfile PATH (one target only)]";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    outfile: { type: "string" },
    target: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
  strict: true,
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

const targets: (Target | null)[] = values.target === undefined ? [null] : values.target === "all" ? ["linux-x64", "linux-arm64"] : [values.target as Target];
for (const t of targets) {
  if (t !== null && !Object.hasOwn(TARGETS, t)) {
    console.error(`--target: must be linux-x64, linux-arm64 or all, got ${JSON.stringify(values.target)}\n${USAGE}`);
    process.exit(2);
  }
}
if (values.outfile !== undefined && targets.length > 1) {
  console.error(`--outfile names one file, but --target all builds ${targets.length}; leave --outfile out (they go to dist/edgemux-<target>)`);
  process.exit(2);
}

/** This machine's target, whose executables can be run here. */
const HOST: Target | null = process.platform === "linux" && process.arch === "x64" ? "linux-x64" : process.platform === "linux" && process.arch === "arm64" ? "linux-arm64" : null;

for (const t of targets) {
  const outfile = resolve(values.outfile ?? join(ROOT, t === null ? "dist/edgemux" : `dist/edgemux-${t}`));
  await build(outfile, t);
  if (t === null || t === HOST) checkVersion(outfile);
}

async function build(outfile: string, target: Target | null): Promise<void> {
  mkdirSync(dirname(outfile), { recursive: true });
  const started = performance.now();
  let result;
  try {
    result = await Bun.build({
      entrypoints: [ENTRY, WORKER],
      root: ROOT,
      compile: target ? { outfile, target: TARGETS[target] as never } : { outfile },
      minify: { whitespace: true, syntax: true, identifiers: false },
      // Embedded in the executable (zstd), so stack traces name the .ts sources.
      sourcemap: "linked",
    });
  } catch (e) {
    result = { success: false, logs: [e], outputs: [] };
  }
  if (!result.success) {
    for (const log of result.logs) console.error(log);
    const fetchHint = target !== null && target !== HOST
      ? ` (cross-compiling needs Bun's ${TARGETS[target]} runtime, v${Bun.version}: Bun downloads it once from the npm registry into ~/.bun/install/cache; without network access to it, build on a ${target} machine)`
      : "";
    console.error(`build of ${outfile} failed${fetchHint}`);
    process.exit(1);
  }
  for (const log of result.logs) console.warn(log);
  chmodSync(outfile, 0o755);
  // The executable carries its own source maps; Bun also writes them beside it. One file ships.
  for (const o of result.outputs) if (o.kind === "sourcemap") rmSync(o.path, { force: true });
  const bytes = readFileSync(outfile);
  const digest = createHash("sha256").update(bytes).digest("hex");
  // `sha256sum -c edgemux-linux-x64.sha256` in the file's directory checks it.
  writeFileSync(`${outfile}.sha256`, `${digest}  ${basename(outfile)}\n`);
  console.log(`built ${outfile} (${target ?? "this machine"}, ${(bytes.length / 1024 / 1024).toFixed(1)} MiB, sha256 ${digest}) in ${Math.round(performance.now() - started)} ms`);
}

function checkVersion(outfile: string): void {
  const p = Bun.spawnSync([outfile, "--version"], { cwd: "/", stdout: "pipe", stderr: "pipe" });
  const line = p.stdout.toString().trim();
  const want = `edgemux ${VERSION} (bun ${Bun.version})`;
  if (p.exitCode !== 0 || line !== want) {
    console.error(`${outfile} --version printed ${JSON.stringify(line)} (exit ${p.exitCode}), expected ${JSON.stringify(want)}; stderr: ${p.stderr.toString()}`);
    process.exit(1);
  }
  console.log(line);
}
