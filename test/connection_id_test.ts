/**
 * One connection id per connection, the same in every process it passes
 * through (issue 14): real `edgemux serve` (two workers, JSON logs) with a
 * tunnel listener and a tcp listener whose route targets `tunnel:echo`, and
 * real `edgemux agent` processes.
 *
 * - A client of the public route: the edge's "connection" record and the
 *   destination agent's "tunnel stream" record carry the same `conn` (the
 *   edge made it: `w<worker>.<boot>.<n>`; it travels in the open request).
 * - A source agent's local connection: the source agent makes the id
 *   (`a.<boot>.<n>`); the edge's "tunnel stream" record and the destination
 *   agent's record carry it too.
 *
 * Runs on Bun, and on Deno with EDGEMUX_RUNTIME=deno.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { type EdgemuxProcess, type LogLine, startEdgemux } from "./support/edgemux.ts";
import { echoServer, edgeTls, roundTrip, startAgentProcess } from "./support/tunnel.ts";

const hex = (s: string) => createHash("sha256").update(s).digest("hex");
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const SECRET = { dest: "cid-dest-secret", src: "cid-src-secret" };

const children = new Set<EdgemuxProcess>();
let edge: EdgemuxProcess;
let dest: EdgemuxProcess;
let src: EdgemuxProcess;
let echo: ReturnType<typeof echoServer>;

function edgeToml(tls: { cert: string; key: string }): string {
  return `
workers = 2
[log]
format = "json"
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "tunnel"
kind = "tunnel"
address = "127.0.0.1:0"
[listeners.tls]
cert = "${tls.cert}"
key = "${tls.key}"

[[listeners]]
name = "public"
kind = "tcp"
address = "127.0.0.1:0"

[[routes]]
match = "*"
listeners = ["public"]
targets = ["tunnel:echo"]

[[tokens]]
name = "dest"
sha256 = "${hex(SECRET.dest)}"
roles = ["destination"]

[[tokens]]
name = "src"
sha256 = "${hex(SECRET.src)}"
roles = ["source"]
`;
}

async function agent(secret: string, ca: string, extra: string[]): Promise<EdgemuxProcess> {
  const { port } = edge.hostPort("tunnel");
  const p = await startAgentProcess(["--edge", `localhost:${port}`, "--ca", ca, "--token", secret, "--reconnect-min", "50ms", ...extra]);
  children.add(p);
  await p.waitForLine((l) => l.msg === "connected to the edge", 15_000);
  return p;
}

beforeAll(async () => {
  const tls = edgeTls();
  echo = echoServer();
  edge = await startEdgemux(edgeToml(tls), { workers: 2 });
  children.add(edge);
  dest = await agent(SECRET.dest, tls.ca, ["--name", "cid-dest", "--expose", `echo=127.0.0.1:${echo.port}`]);
  src = await agent(SECRET.src, tls.ca, ["--name", "cid-src", "--forward", "127.0.0.1:0=echo"]);
}, 60_000);

afterAll(async () => {
  await Promise.all([...children].map((c) => c.stop()));
  echo?.close();
});

/** The one record of `msg` whose conn is `id`, in `p`'s log. */
function recordOf(p: EdgemuxProcess, msg: string, id: string): Promise<LogLine> {
  return p.waitForLine((l) => l.msg === msg && l.conn === id, 10_000);
}

describe("connection ids", () => {
  test("a client of a tunnel route: the edge's id is in the edge's record and the destination agent's", async () => {
    const seen = new Set(edge.lines.filter((l) => l.msg === "connection").map((l) => l.conn));
    const data = randomBytes(50_000);
    expect(sha(await roundTrip(edge.hostPort("public").port, data, 10_000))).toBe(sha(data));
    const rec = await edge.waitForLine((l) => l.msg === "connection" && l.listener === "public" && !seen.has(l.conn), 10_000);
    const id = String(rec.conn);
    expect(id).toMatch(/^w[01]\.[0-9a-z]{4}\.[0-9a-z]+$/);
    expect(rec.backend).toBe("tunnel:echo");
    expect(rec.error).toBeNull();
    const at = await recordOf(dest, "tunnel stream", id);
    expect(at).toMatchObject({ role: "destination", service: "echo", agent: "cid-dest", bytes_in: 50_000, bytes_out: 50_000, error: null });
  }, 30_000);

  test("ids differ per connection", async () => {
    const before = edge.lines.filter((l) => l.msg === "connection").length;
    for (let i = 0; i < 3; i++) await roundTrip(edge.hostPort("public").port, new TextEncoder().encode(`c${i}`), 10_000);
    await edge.waitForLine(() => edge.lines.filter((l) => l.msg === "connection").length >= before + 3, 10_000);
    const ids = edge.lines.filter((l) => l.msg === "connection").map((l) => l.conn);
    expect(new Set(ids).size).toBe(ids.length);
  }, 30_000);

  test("a source agent's connection: the agent's id is in its record, the edge's and the destination agent's", async () => {
    const port = Number(src.listeners["tcp:echo"]!.split(":").pop());
    const data = randomBytes(20_000);
    expect(sha(await roundTrip(port, data, 10_000))).toBe(sha(data));
    const mine = await src.waitForLine((l) => l.msg === "tunnel stream" && l.role === "source", 10_000);
    const id = String(mine.conn);
    expect(id).toMatch(/^a\.[0-9a-z]{4}\.[0-9a-z]+$/);
    expect(mine).toMatchObject({ service: "echo", agent: "cid-src", bytes_out: 20_000, bytes_in: 20_000, error: null });
    const atEdge = await recordOf(edge, "tunnel stream", id);
    expect(atEdge).toMatchObject({ listener: "tunnel", agent: "cid-src", service: "echo" });
    const atDest = await recordOf(dest, "tunnel stream", id);
    expect(atDest).toMatchObject({ role: "destination", service: "echo" });
  }, 30_000);
});
