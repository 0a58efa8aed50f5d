import { describe, expect, test } from "bun:test";
import { type FlagSpec, nearestName, parseFlags } from "./flags.ts";

const flags: Record<string, FlagSpec> = {
  config: { type: "string", placeholder: "FILE", short: "c", default: "none", help: "" },
  "log-level": { type: "string", placeholder: "LEVEL", default: "info", help: "" },
  expose: { type: "string", placeholder: "NAME=TARGET", multiple: true, default: "none", help: "" },
  quiet: { type: "boolean", short: "q", default: "off", help: "" },
};

describe("parseFlags", () => {
  test("values, repeats, short clusters and positionals after --", () => {
    expect(parseFlags(flags, ["-qc", "a.toml", "--expose", "a=1", "--expose=b=2", "x", "--", "--config"])).toEqual({
      values: { quiet: true, config: "a.toml", expose: ["a=1", "b=2"] },
      positionals: ["x", "--config"],
    });
  });

  test("the first problem in argument order, named as typed", () => {
    expect(parseFlags(flags, ["--confg", "x", "--config"])).toEqual({ unknown: "--confg" });
    expect(parseFlags(flags, ["-qx"])).toEqual({ unknown: "-x" });
    expect(parseFlags(flags, ["-c"])).toEqual({ error: "-c needs a value (--config FILE)" });
    expect(parseFlags(flags, ["--quiet=yes"])).toEqual({ error: '--quiet takes no value, got "yes"' });
    expect(parseFlags(flags, ["--help=1"])).toEqual({ error: '--help takes no value, got "1"' });
    expect(parseFlags(flags, ["--log-level", "-q"])).toEqual({ error: '--log-level needs a value (--log-level LEVEL), got the flag "-q" (write --log-level=-q if that is the value)' });
    expect(parseFlags(flags, ["--log-level=-q"])).toEqual({ values: { "log-level": "-q" }, positionals: [] });
  });

  test("nearestName folds - and _ and keeps the name as declared", () => {
    expect(nearestName("--log-levl", Object.keys(flags))).toBe("log-level");
    expect(nearestName("--LOG_LEVEL", Object.keys(flags))).toBe("log-level");
    expect(nearestName("chek-config", ["serve", "check-config"])).toBe("check-config");
    expect(nearestName("--zzz", Object.keys(flags))).toBeNull();
  });
});
