import { describe, expect, test } from "bun:test";
import { durationMs, formatDuration, parseDuration } from "./durations.ts";
import { ConfigError } from "./issues.ts";

describe("durationMs", () => {
  test.each([
    ["250ms", 250],
    ["10s", 10_000],
    ["1.5s", 1_500],
    ["0.25s", 250],
    ["1m30s", 90_000],
    ["1h", 3_600_000],
    ["7d", 604_800_000],
    ["1d2h3m4s5ms", 93_784_005],
    ["0", 0],
    ["0s", 0],
    ["0ms", 0],
  ] as const)("%s = %d ms", (text, ms) => {
    expect(durationMs(text)).toEqual({ ms });
  });

  test.each(["", "10", "s", "10 s", " 10s", "-1s", "1e3s", "10S", "1.s", ".5s", "10sec", "1m30", "0x10s", "9".repeat(40) + "s"])(
    "%p is not a duration",
    (text) => {
      const r = durationMs(text);
      expect("error" in r && r.error).toContain("must be a duration");
    },
  );

  test("fractions must add up to whole milliseconds", () => {
    expect(durationMs("1.5ms")).toEqual({ error: `must be a whole number of milliseconds, got "1.5ms"` });
    expect(durationMs("0.0001s")).toEqual({ error: `must be a whole number of milliseconds, got "0.0001s"` });
    expect(durationMs("0.001s")).toEqual({ ms: 1 });
  });
});

test("formatDuration spells the shortest exact form", () => {
  expect(formatDuration(0)).toBe("0s");
  expect(formatDuration(100)).toBe("100ms");
  expect(formatDuration(1_500)).toBe("1s500ms");
  expect(formatDuration(90_000)).toBe("1m30s");
  expect(formatDuration(300_000)).toBe("5m");
  expect(formatDuration(7 * 86_400_000)).toBe("7d");
  for (const ms of [1, 999, 1_000, 61_001, 3_600_000, 90_061_001]) expect(durationMs(formatDuration(ms))).toEqual({ ms });
});

test("parseDuration throws a ConfigError naming the field", () => {
  expect(parseDuration("3s", "x")).toBe(3_000);
  try {
    parseDuration("3 seconds", "--drain-timeout");
    throw new Error("expected a ConfigError");
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).code).toBe("CONFIG");
    expect((e as ConfigError).issues).toEqual([
      `--drain-timeout: must be a duration like "250ms", "10s", "1m30s" (units ms, s, m, h, d), got "3 seconds"`,
    ]);
  }
});
