import { expect, test } from "bun:test";
import { fmt, median, medianRatio, percentile, spread } from "./stats.ts";

test("median of odd, even, empty and non-finite lists", () => {
  expect(median([3, 1, 2])).toBe(2);
  expect(median([4, 1, 3, 2])).toBe(2.5);
  expect(median([])).toBeNaN();
  expect(median([Number.NaN, 5, Number.POSITIVE_INFINITY])).toBe(5);
  const xs = [3, 1, 2];
  median(xs);
  expect(xs).toEqual([3, 1, 2]); // not sorted in place
});

test("percentile uses nearest rank", () => {
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);
  expect(percentile(xs, 50)).toBe(50);
  expect(percentile(xs, 99)).toBe(99);
  expect(percentile(xs, 100)).toBe(100);
  expect(percentile([7], 0)).toBe(7);
  expect(percentile([], 50)).toBeNaN();
});

test("medianRatio pairs rounds and skips incomplete ones", () => {
  const a = new Map([[1, 10], [2, 30], [3, 20], [4, 5]]);
  const b = new Map([[1, 10], [2, 10], [3, 10], [5, 1]]);
  // rounds 1..3 pair: ratios 1, 3, 2 → median 2; round 4 and 5 have no partner
  expect(medianRatio(a, b)).toBe(2);
  expect(medianRatio(new Map([[1, 1]]), new Map([[1, 0]]))).toBeNaN();
  expect(medianRatio(new Map(), b)).toBeNaN();
});

test("spread and fmt", () => {
  expect(spread([2, Number.NaN, 9, 4])).toEqual({ min: 2, max: 9 });
  expect(fmt(Number.NaN)).toBe("n/a");
  expect(fmt(1.23456)).toBe("1.23");
  expect(fmt(12345.6)).toBe("12,346");
  expect(fmt(0)).toBe("0");
});
