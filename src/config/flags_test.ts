import { expect, test } from "bun:test";
import { parse } from "smol-toml";
import { applyFlags } from "./flags.ts";
import { loadDefaultConfig, parseConfig } from "./mod.ts";
import { issuesOf, LISTENER } from "./test_util.ts";

const FILE = `
workers = 2
drain_timeout = "10s"
[log]
level = "warn"
format = "text"
[admin]
address = "127.0.0.1:9999"
${LISTENER}
`;

test("flags win over the file", () => {
  const c = parseConfig(FILE, {
    flags: { workers: "8", admin: "[::1]:0", logLevel: "debug", logFormat: "json", drainTimeout: "1m30s" },
  });
  expect(c.workers).toBe(8);
  expect(c.admin.address).toEqual({ hostname: "::1", port: 0 });
  expect(c.log).toEqual({ level: "debug", format: "json", connections: true });
  expect(c.drainTimeoutMs).toBe(90_000);
});

test("flags absent leave the file's values", () => {
  const c = parseConfig(FILE, { flags: { logLevel: "error" } });
  expect(c.workers).toBe(2);
  expect(c.admin.address).toEqual({ hostname: "127.0.0.1", port: 9999 });
  expect(c.log.level).toBe("error");
  expect(c.log.format).toBe("text");
  expect(c.drainTimeoutMs).toBe(10_000);
});

test("--admin off disables the admin API", () => {
  expect(parseConfig(FILE, { flags: { admin: "off" } }).admin.address).toBeNull();
  expect(loadDefaultConfig({ admin: "off" }).admin.address).toBeNull();
});

test("flags apply to the built-in config too", () => {
  const c = loadDefaultConfig({ workers: "3", drainTimeout: "0s" });
  expect(c.workers).toBe(3);
  expect(c.drainTimeoutMs).toBe(0);
});

test("flag values meet the same checks, reported under the flag's name", () => {
  expect(
    issuesOf(FILE, { flags: { workers: "four", admin: "localhost:1", logLevel: "loud", logFormat: "xml", drainTimeout: "2h" } }),
  ).toEqual([
    `--workers: must be an integer 0..256, got "four"`,
    `--drain-timeout: must be 0s..1h, got "2h"`,
    `--log-level: must be one of debug | info | warn | error, got "loud"`,
    `--log-format: must be one of text | json, got "xml"`,
    `--admin: must be an IP address to listen on (127.0.0.1, 0.0.0.0, [::1], [::]), got "localhost"; "off" disables the admin API`,
  ]);
  expect(issuesOf(FILE, { flags: { workers: "300" } })).toEqual(["--workers: must be 0..256, got 300"]);
  expect(issuesOf(FILE, { flags: { workers: "-1" } })).toEqual([`--workers: must be an integer 0..256, got "-1"`]);
  expect(issuesOf(FILE, { flags: { workers: "" } })).toEqual([`--workers: must be an integer 0..256, got ""`]);
  // A field not overridden keeps its file name in messages.
  expect(issuesOf(`workers = 999\n${LISTENER}`, { flags: { logLevel: "debug" } })).toEqual(["workers: must be 0..256, got 999"]);
});

test("a flag replaces a bad file value rather than adding to it", () => {
  expect(parseConfig(`workers = "lots"\n${LISTENER}`, { flags: { workers: "1" } }).workers).toBe(1);
});

test("applyFlags does not modify the raw table it is given", () => {
  const raw = parse(FILE);
  const before = JSON.stringify(raw);
  const { raw: out, labels } = applyFlags(raw, { workers: "5", logLevel: "debug" });
  expect(JSON.stringify(raw)).toBe(before);
  expect(out["workers"]).toBe(5);
  expect((out["log"] as Record<string, unknown>)["level"]).toBe("debug");
  expect((out["log"] as Record<string, unknown>)["format"]).toBe("text");
  expect([...labels]).toEqual([
    ["workers", "--workers"],
    ["log.level", "--log-level"],
  ]);
});

test("a flag creates its table when the file has none", () => {
  const { raw } = applyFlags({}, { admin: "off", logFormat: "json" });
  expect(raw).toEqual({ admin: { address: "off" }, log: { format: "json" } });
});
