import { expect, test } from "bun:test";
import { parseConfig, reloadProblems } from "./mod.ts";

const base = (o: {
  workers?: number;
  admin?: string;
  maxRoutes?: number;
  listeners?: string;
  routes?: string;
  extra?: string;
} = {}) => `
workers = ${o.workers ?? 2}
${o.extra ?? ""}
[admin]
address = "${o.admin ?? "127.0.0.1:9901"}"
[stats]
max_routes = ${o.maxRoutes ?? 100}
${
  o.listeners ??
  `[[listeners]]
name = "a"
kind = "sni"
address = "127.0.0.1:8443"
[[listeners]]
name = "b"
kind = "sni"
address = "[::1]:8443"
accept_proxy = "v1"`
}
${o.routes ?? `[[routes]]\nmatch = "a.example"\ntargets = ["127.0.0.1:1"]`}
`;

const problems = (a: string, b: string) => reloadProblems(parseConfig(a), parseConfig(b));

test("an identical config reloads", () => {
  expect(problems(base(), base())).toEqual([]);
});

test("routes, access lists, listener limits, drain and log settings reload", () => {
  const next = base({
    extra: `drain_timeout = "5s"\n[log]\nlevel = "debug"\nformat = "json"\nconnections = false\n[access]\ndeny = ["10.0.0.0/8"]`,
    listeners: `[[listeners]]
name = "a"
kind = "sni"
address = "127.0.0.1:8443"
handshake_timeout = "1s"
idle_timeout = "0s"
max_client_hello = 4096
max_connections = 10
[[listeners]]
name = "b"
kind = "sni"
address = "[::1]:8443"
accept_proxy = "v1"`,
    routes: `[[routes]]\nmatch = "b.example"\ndirectory = "/srv"\n[[routes]]\nmatch = "*"\ntargets = ["x.internal:443"]`,
  });
  expect(problems(base(), next)).toEqual([]);
});

test("listener order may change: listeners are matched by name", () => {
  const swapped = base({
    listeners: `[[listeners]]\nname = "b"\nkind = "sni"\naddress = "[::1]:8443"\naccept_proxy = "v1"\n[[listeners]]\nname = "a"\nkind = "sni"\naddress = "127.0.0.1:8443"`,
  });
  expect(problems(base(), swapped)).toEqual([]);
});

test("each change that needs a restart is named", () => {
  const next = base({
    workers: 4,
    admin: "127.0.0.1:9902",
    maxRoutes: 200,
    listeners: `[[listeners]]
name = "a"
kind = "sni"
address = "127.0.0.1:8444"
accept_proxy = "any"
[[listeners]]
name = "c"
kind = "sni"
address = "127.0.0.1:8445"`,
  });
  expect(problems(base(), next)).toEqual([
    "workers: changing the worker count needs a restart (2 -> 4)",
    "admin.address: changing the admin address needs a restart (127.0.0.1:9901 -> 127.0.0.1:9902)",
    "stats.max_routes: resizing the stats slabs needs a restart (100 -> 200)",
    "listeners[0].address: changing a bound address needs a restart (127.0.0.1:8443 -> 127.0.0.1:8444)",
    "listeners[0].accept_proxy: changing accept_proxy needs a restart (none -> any)",
    `listeners: removing or renaming listener "b" needs a restart`,
    `listeners[1]: adding listener "c" needs a restart`,
  ]);
});

test("turning the admin API off needs a restart", () => {
  expect(problems(base(), base({ admin: "off" }))).toEqual([
    "admin.address: changing the admin address needs a restart (127.0.0.1:9901 -> off)",
  ]);
});

test("a kind change is caught (only one kind exists today, so the config is edited directly)", () => {
  const old = parseConfig(base());
  const next = structuredClone(old);
  (next.listeners[0] as { kind: string }).kind = "connect";
  expect(reloadProblems(old, next)).toEqual(["listeners[0].kind: changing a listener's kind needs a restart (sni -> connect)"]);
});
