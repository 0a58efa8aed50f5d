/** shared_ports.ts with a fake runtime: which listeners are probed, where, and the message. Nothing is bound. */
import { describe, expect, test } from "bun:test";
import { parseConfig } from "../config/mod.ts";
import type { Conn, ConnectOptions, Runtime } from "../runtime/types.ts";
import { adoptingListeners, sharedPortProblem } from "./shared_ports.ts";

/** A runtime whose connect succeeds only for `answering` ("host:port"); records every probe. */
function fakeRuntime(answering: string[], inspect: Record<number, string> = {}) {
  const probes: string[] = [];
  const rt = {
    connect(opts: ConnectOptions): Promise<Conn> {
      const a = opts.address as { hostname: string; port: number };
      const key = `${a.hostname}:${a.port}`;
      probes.push(key);
      if (!answering.includes(key)) return Promise.reject(new Error("refused"));
      return Promise.resolve({ close() {} } as unknown as Conn);
    },
    inherit: { inspect: (fd: number) => (inspect[fd] ? { address: inspect[fd]! } : { error: "not open" }), adopt() {} },
  } as unknown as Runtime;
  return { rt, probes };
}

const listener = (name: string, kind: string, address: string) => `[[listeners]]\nname = "${name}"\nkind = "${kind}"\naddress = "${address}"\n`;
const ROUTES = `[[routes]]\nmatch = "*"\ntargets = ["127.0.0.1:8443"]\n[[routes]]\nname = "t"\nmatch = "*"\nlisteners = ["t"]\ntargets = ["127.0.0.1:9"]\n[[routes]]\nname = "u"\nmatch = "*"\nlisteners = ["u"]\ntargets = ["127.0.0.1:53"]\n`;
const config = parseConfig(
  listener("a", "sni", "0.0.0.0:8443") + listener("b", "sni", "[::]:8443") + listener("c", "sni", "127.0.0.2:443") + listener("z", "sni", "127.0.0.1:0") +
    listener("t", "tcp", "127.0.0.1:7000") + listener("u", "udp", "127.0.0.1:5353") + listener("x", "sni", "unix:/run/x.sock") + ROUTES,
);

describe("shared ports", () => {
  test("probes TCP listeners with a port, wildcards on loopback; not port 0, udp or unix", async () => {
    const { rt, probes } = fakeRuntime([]);
    expect(await sharedPortProblem(rt, config, new Set())).toBeNull();
    expect(probes.sort()).toEqual(["127.0.0.1:7000", "127.0.0.1:8443", "127.0.0.2:443", "::1:8443"]);
  });

  test("the first listener answered names its field and address", async () => {
    const { rt } = fakeRuntime(["::1:8443", "127.0.0.1:7000"]);
    expect(await sharedPortProblem(rt, config, new Set())).toBe(
      "listeners[1].address: [::]:8443 is already in use by another process (edgemux would share it through SO_REUSEPORT and split its traffic); stop it or pass --allow-shared-ports",
    );
  });

  test("listeners that adopt an inherited socket are not probed (the socket answering is their own)", async () => {
    const { rt, probes } = fakeRuntime(["::1:8443", "127.0.0.1:8443"], { 3: "[::]:8443" });
    // Matched by name, and by address, as the supervisor matches them.
    const skip = adoptingListeners(rt, config, [{ fd: 9, name: "a" }, { fd: 3, name: null }])!;
    expect([...skip].sort()).toEqual(["a", "b"]);
    expect(await sharedPortProblem(rt, config, skip)).toBeNull();
    expect(probes).not.toContain("::1:8443");
    // A socket that cannot be inspected: the start fails on its own, with its reason.
    expect(adoptingListeners(rt, config, [{ fd: 7, name: null }])).toBeNull();
    expect(adoptingListeners({ ...rt, inherit: undefined } as Runtime, config, [{ fd: 3, name: null }])).toBeNull();
  });
});
