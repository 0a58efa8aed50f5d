/** Command line of `bun run bench [-- options]`. Pure. */
import { HTTP_SCENARIO_IDS, PLANS, type Plan, SNI_SCENARIO_IDS, type ScenarioId, TCP_SCENARIO_IDS } from "./scenarios.ts";

export interface Options {
  plan: Plan;
  scenarios: ScenarioId[] | null;
  peers: string[] | null;
  micro: boolean;
  deps: boolean;
  outDir: string | null;
  keepTmp: boolean;
  help: boolean;
  /** Standalone suites run after the SNI scenarios (bench/<suite>_bench.ts ...). */
  suites: SuiteId[];
  /** Another checkout whose src/cli/main.ts runs as "edgemux-before" in the SNI scenarios. */
  baseline: string | null;
  /** Measure memory at rest (scripts/idle_rss.ts): the idle edge's and agent's RSS. */
  idleRss: boolean;
}

export type SuiteId = "connect" | "mux" | "tunnel";
export const SUITE_IDS: readonly SuiteId[] = ["connect", "mux", "tunnel"];

export const USAGE = `usage: bun run bench [-- options]
  --full               long run (5 rounds × 8 s, < 45 min); default is quick (3 rounds × 3 s, ~10 min)
  --only a,b           scenarios (default: all): the SNI section newconn, keepalive, bulk1, bulk4, idle;
                       the tcp section tcp_newconn, tcp_keepalive, tcp_bulk1, tcp_bulk4; the http section
                       http_keepalive, http_newconn; "sni", "tcp" and "http" stand for a whole section
  --tcp                only the tcp section (same as --only tcp)
  --http               only the http section (same as --only http): HTTPS reverse proxy routing by Host,
                       edgemux kind = "http" vs nginx proxy_pass and HAProxy mode http
  --peers a,b          entries: direct, edgemux, naive_bun, haproxy, nginx, sniproxy (default: all available)
  --baseline DIR       also run DIR's src/cli/main.ts as "edgemux-before" in the SNI scenarios, beside this
                       tree's edgemux (a checkout of an older commit, with node_modules); adds the
                       before/after table
  --rounds N           rounds per scenario (≥ 1; the targets want ≥ 3)
  --seconds S          length of one measurement (wrk scenarios round it to whole seconds)
  --idle-conns N       idle connections per proxy (≤ 9,500: 2 fds each under the 20,000 limit)
  --no-micro           skip bench/micro/*_bench.ts
  --no-deps            do not run scripts/bench_deps.sh (check/install the Debian peers)
  --suites a,b         standalone suites after the SNI scenarios: connect (CONNECT/SOCKS/HBONE vs squid,
                       tinyproxy, Go), mux (smux vs Go smux), tunnel (edge relay); default: all
  --no-suites          only the SNI scenarios
  --no-idle-rss        skip memory at rest (scripts/idle_rss.ts: idle edge and agent RSS)
  --out DIR            where <timestamp>.json/.md/.svg go (default bench/results)
  --keep-tmp           keep the scratch directory (configs, logs of every process)
  --help`;

const SCENARIO_IDS: readonly ScenarioId[] = [...SNI_SCENARIO_IDS, ...TCP_SCENARIO_IDS, ...HTTP_SCENARIO_IDS];
const SECTION_IDS = { sni: SNI_SCENARIO_IDS, tcp: TCP_SCENARIO_IDS, http: HTTP_SCENARIO_IDS } as const;
const PEER_NAMES = ["direct", "edgemux", "naive_bun", "haproxy", "nginx", "sniproxy", "edgemux-before"];

/** Scenario ids, with the section names "sni", "tcp" and "http" expanded, in run order and without repeats. */
function scenarioList(raw: string | undefined, flag: string): ScenarioId[] {
  const items = list(raw, [...SCENARIO_IDS, "sni", "tcp", "http"] as const, flag);
  const want = new Set(items.flatMap((i) => (i === "sni" || i === "tcp" || i === "http" ? SECTION_IDS[i] : [i as ScenarioId])));
  return SCENARIO_IDS.filter((id) => want.has(id));
}

function list<T extends string>(raw: string | undefined, allowed: readonly T[], flag: string): T[] {
  if (!raw) throw new Error(`${flag} needs a value`);
  const items = raw.split(",").map((s) => s.trim()).filter(Boolean);
  for (const i of items) if (!allowed.includes(i as T)) throw new Error(`${flag}: unknown '${i}' (one of ${allowed.join(", ")})`);
  return items as T[];
}

function num(raw: string | undefined, flag: string, lo: number, hi: number): number {
  const v = Number(raw);
  if (raw === undefined || !Number.isFinite(v) || v < lo || v > hi) throw new Error(`${flag}: must be ${lo}..${hi}, got ${raw}`);
  return v;
}

export function parseArgs(argv: readonly string[]): Options {
  const o: Options = { plan: { ...PLANS.quick }, scenarios: null, peers: null, micro: true, deps: true, outDir: null, keepTmp: false, help: false, suites: [...SUITE_IDS], baseline: null, idleRss: true };
  const overrides: Partial<Plan> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = () => argv[++i];
    switch (a) {
      case "--":
        break;
      case "--full":
        o.plan = { ...PLANS.full };
        break;
      case "--quick":
        o.plan = { ...PLANS.quick };
        break;
      case "--only":
        o.scenarios = scenarioList(next(), a);
        break;
      case "--tcp":
      case "--http": {
        // Sections add up: `--tcp --http` runs both.
        const want = new Set([...(o.scenarios ?? []), ...SECTION_IDS[a === "--tcp" ? "tcp" : "http"]]);
        o.scenarios = SCENARIO_IDS.filter((id) => want.has(id));
        break;
      }
      case "--baseline":
        o.baseline = next() ?? null;
        if (!o.baseline) throw new Error("--baseline needs a directory");
        break;
      case "--peers":
        o.peers = list(next(), PEER_NAMES, a);
        break;
      case "--rounds":
        overrides.rounds = num(next(), a, 1, 50);
        break;
      case "--seconds":
        overrides.seconds = num(next(), a, 0.5, 120);
        break;
      case "--idle-conns":
        overrides.idleConns = num(next(), a, 1, 9500);
        break;
      case "--suites":
        o.suites = list(next(), SUITE_IDS, a);
        break;
      case "--no-suites":
        o.suites = [];
        break;
      case "--no-micro":
        o.micro = false;
        break;
      case "--no-idle-rss":
        o.idleRss = false;
        break;
      case "--no-deps":
        o.deps = false;
        break;
      case "--out":
        o.outDir = next() ?? null;
        if (!o.outDir) throw new Error("--out needs a directory");
        break;
      case "--keep-tmp":
        o.keepTmp = true;
        break;
      case "--help":
      case "-h":
        o.help = true;
        break;
      default:
        throw new Error(`unknown option '${a}'\n${USAGE}`);
    }
  }
  o.plan = { ...o.plan, ...overrides, micro: o.micro };
  return o;
}
