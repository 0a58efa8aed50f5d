import { expect, test } from "bun:test";
import { Logger } from "./mod.ts";

function lines(format: "text" | "json", fields: Record<string, unknown>): string {
  const out: string[] = [];
  new Logger("info", format, { agent: "a1" }, (l) => out.push(l)).info("ready", fields);
  return out.join("\n");
}

const forwards = [
  { listen: "127.0.0.1:5433", service: "db", proto: "tcp" },
  { listen: "[::1]:5353", service: "dns", proto: "udp" },
];

test("text: scalars, lists of scalars, objects as dotted keys, quoting", () => {
  const l = lines("text", { n: 3, services: ["web", "db"], limits: { max: 2 }, reason: "no route", empty: "", gone: null, absent: undefined });
  expect(l).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z INFO ready agent=a1 n=3 services=web,db limits\.max=2 reason="no route" empty=""$/);
});

test("text: a list of objects flattens with its indices instead of printing [object Object]", () => {
  const l = lines("text", { forwards, status: "127.0.0.1:9902" });
  expect(l).not.toContain("[object Object]");
  expect(l).toEndWith(
    " INFO ready agent=a1 forwards.0.listen=127.0.0.1:5433 forwards.0.service=db forwards.0.proto=tcp" +
      " forwards.1.listen=[::1]:5353 forwards.1.service=dns forwards.1.proto=udp status=127.0.0.1:9902",
  );
  // A mixed list flattens too; an empty one stays visible.
  expect(lines("text", { mixed: [1, { a: "x y" }], none: [] })).toEndWith(` mixed.0=1 mixed.1.a="x y" none=""`);
});

test("json: a list of objects stays a list of objects", () => {
  const o = JSON.parse(lines("json", { forwards }));
  expect(o).toMatchObject({ level: "info", msg: "ready", agent: "a1", forwards });
});
