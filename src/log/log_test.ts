import { expect, test } from "bun:test";
import { Logger, logfmtValue } from "./mod.ts";

function lines(format: "text" | "json", fields: Record<string, unknown>): string {
  const out: string[] = [];
  new Logger("info", format, { agent: "a1" }, (l) => out.push(l)).info("ready", fields);
  return out.join("\n");
}

/**
 * A small, strict logfmt reader (the grammar of go-logfmt): `key=value`
 * pairs separated by one space; a key is bare (no space, `=`, `"`); a value
 * is bare (no space, `=`, `"`) or a double-quoted JSON string. Throws on
 * anything else, so a test that parses a line also proves it is logfmt.
 */
function parseLogfmt(line: string): [string, string][] {
  const pairs: [string, string][] = [];
  let i = 0;
  while (i < line.length) {
    if (pairs.length > 0) {
      if (line[i] !== " ") throw new Error(`expected a space at ${i}: ${line}`);
      i++;
    }
    const key = /^[^\s="\p{Cc}]+/u.exec(line.slice(i))?.[0];
    if (key === undefined) throw new Error(`expected a key at ${i}: ${line}`);
    i += key.length;
    if (line[i] !== "=") throw new Error(`expected = after ${key} at ${i}: ${line}`);
    i++;
    if (line[i] === '"') {
      const q = /^"(?:[^"\\\p{Cc}]|\\["\\/bfnrt]|\\u[0-9a-f]{4})*"/u.exec(line.slice(i))?.[0];
      if (q === undefined) throw new Error(`bad quoted value at ${i}: ${line}`);
      pairs.push([key, JSON.parse(q) as string]);
      i += q.length;
    } else {
      const v = /^[^\s="\p{Cc}]+/u.exec(line.slice(i))?.[0];
      if (v === undefined) throw new Error(`empty bare value at ${i}: ${line}`);
      pairs.push([key, v]);
      i += v.length;
    }
  }
  return pairs;
}

const forwards = [
  { listen: "127.0.0.1:5433", service: "db", proto: "tcp" },
  { listen: "[::1]:5353", service: "dns", proto: "udp" },
];

test("text is logfmt: ts, level and msg first, then the fields", () => {
  const l = lines("text", { n: 3, services: ["web", "db"], limits: { max: 2 }, reason: "no route", empty: "", gone: null, absent: undefined });
  expect(l).toMatch(/^ts=\d{4}-\d\d-\d\dT[\d:.]+Z level=info msg=ready agent=a1 n=3 services=web,db limits\.max=2 reason="no route" empty=""$/);
  const pairs = parseLogfmt(l);
  expect(pairs.map(([k]) => k)).toEqual(["ts", "level", "msg", "agent", "n", "services", "limits.max", "reason", "empty"]);
  expect(Object.fromEntries(pairs)).toMatchObject({ level: "info", msg: "ready", reason: "no route", empty: "" });
});

test("text: levels are lower case, a msg with spaces is quoted", () => {
  const out: string[] = [];
  const log = new Logger("debug", "text", {}, (l) => out.push(l));
  log.debug("a b");
  log.warn("c");
  log.error("worker exited; restarting", { worker: 1 });
  log.always("ready");
  expect(out.map((l) => Object.fromEntries(parseLogfmt(l)))).toMatchObject([
    { level: "debug", msg: "a b" },
    { level: "warn", msg: "c" },
    { level: "error", msg: "worker exited; restarting", worker: "1" },
    { level: "info", msg: "ready" },
  ]);
  expect(out[0]).toContain(' msg="a b"');
});

test("text: quoting and escaping, only when needed", () => {
  expect(logfmtValue("plain")).toBe("plain");
  expect(logfmtValue("127.0.0.1:5000")).toBe("127.0.0.1:5000");
  expect(logfmtValue("a\\b")).toBe("a\\b"); // a backslash alone needs no quotes
  expect(logfmtValue("")).toBe('""');
  expect(logfmtValue("a b")).toBe('"a b"');
  expect(logfmtValue("k=v")).toBe('"k=v"');
  expect(logfmtValue('say "hi"')).toBe('"say \\"hi\\""');
  expect(logfmtValue('x"\\y')).toBe('"x\\"\\\\y"');
  expect(logfmtValue("two\nlines\r\tand\u0000")).toBe('"two\\nlines\\r\\tand\\u0000"');
  expect(logfmtValue("nel\u0085ls\u2028")).toBe('"nel\\u0085ls\\u2028"');
});

test("text: keys stay bare", () => {
  const l = lines("text", { "a b": 1, "c=d": 2, 'e"f': 3, "g\nh": 4 });
  expect(l).toEndWith(" a_b=1 c_d=2 e_f=3 g_h=4");
  parseLogfmt(l);
});

test("text: a list of objects flattens with its indices instead of printing [object Object]", () => {
  const l = lines("text", { forwards, status: "127.0.0.1:9902" });
  expect(l).not.toContain("[object Object]");
  expect(l).toEndWith(
    " level=info msg=ready agent=a1 forwards.0.listen=127.0.0.1:5433 forwards.0.service=db forwards.0.proto=tcp" +
      " forwards.1.listen=[::1]:5353 forwards.1.service=dns forwards.1.proto=udp status=127.0.0.1:9902",
  );
  // A mixed list flattens too; an empty one stays visible.
  expect(lines("text", { mixed: [1, { a: "x y" }], none: [] })).toEndWith(` mixed.0=1 mixed.1.a="x y" none=""`);
});

test("text: the serve ready line keeps every fact", () => {
  const l = lines("text", {
    version: "0.1.0", runtime: "bun 1.4.5", pid: 12572, workers: 2, admin: "127.0.0.1:9901",
    listeners: { sni: "127.0.0.1:8443", socks: "[::1]:1080", local: "unix:/run/edgemux/a b.sock" },
  });
  expect(Object.fromEntries(parseLogfmt(l))).toMatchObject({
    msg: "ready", version: "0.1.0", runtime: "bun 1.4.5", pid: "12572", workers: "2", admin: "127.0.0.1:9901",
    "listeners.sni": "127.0.0.1:8443", "listeners.socks": "[::1]:1080", "listeners.local": "unix:/run/edgemux/a b.sock",
  });
});

test("property: every text line is one line of key=value pairs that round-trips", () => {
  let seed = 12345;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const alphabet = ['a', 'Z', '0', ' ', '=', '"', '\\', '\n', '\r', '\t', '\u0000', '\u001b', '\u007f', '\u0085', '\u00e9', '\u2028', '\u{1F600}', ':', '.', ','];
  const str = () => {
    let s = "";
    const n = Math.floor(rand() * 8);
    for (let i = 0; i < n; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
    return s;
  };
  for (let i = 0; i < 2000; i++) {
    const out: string[] = [];
    const fields: Record<string, unknown> = { s: str(), n: Math.floor(rand() * 1e6), b: rand() < 0.5 };
    const msg = str();
    new Logger("info", "text", { worker: 1 }, (l) => out.push(l)).info(msg, fields);
    const line = out[0]!;
    expect(line).not.toMatch(/[\n\r\u0085\u2028\u2029]/);
    const got = Object.fromEntries(parseLogfmt(line));
    expect(got).toEqual({ ts: got.ts!, level: "info", msg, worker: "1", s: fields.s as string, n: String(fields.n), b: String(fields.b) });
  }
});

test("json: a list of objects stays a list of objects", () => {
  const o = JSON.parse(lines("json", { forwards }));
  expect(o).toMatchObject({ level: "info", msg: "ready", agent: "a1", forwards });
});

test("json is unchanged: ts, level, msg, then base and fields, nulls kept", () => {
  const l = lines("json", { reason: "a b", error: null });
  expect(l).toMatch(/^\{"ts":"[^"]+","level":"info","msg":"ready","agent":"a1","reason":"a b","error":null\}$/);
});
