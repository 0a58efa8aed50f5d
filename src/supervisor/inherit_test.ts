import { describe, expect, test } from "bun:test";
import { parseConfig } from "../config/mod.ts";
import { ProxyError } from "../errors/mod.ts";
import { Logger } from "../log/mod.ts";
import type { ListenAddress, Runtime } from "../runtime/types.ts";
import { adoptPassedSockets, passedSockets } from "./inherit.ts";
import { workerEntryUrl } from "./mod.ts";

const env = (vars: Record<string, string>) => (name: string) => vars[name];

describe("passedSockets", () => {
  test("systemd: descriptors from 3, named by LISTEN_FDNAMES, only for our pid", () => {
    const vars = { LISTEN_FDS: "3", LISTEN_PID: "42", LISTEN_FDNAMES: "public:unknown:admin" };
    expect(passedSockets(env(vars), 42)).toEqual([
      { fd: 3, name: "public", source: "LISTEN_FDS" },
      { fd: 4, name: null, source: "LISTEN_FDS" },
      { fd: 5, name: "admin", source: "LISTEN_FDS" },
    ]);
    // sd_listen_fds(3): meant for another process (we inherited the variables): ignored.
    expect(passedSockets(env(vars), 43)).toEqual([]);
    expect(passedSockets(env({ LISTEN_FDS: "1" }), 42)).toEqual([]);
    expect(passedSockets(env({ LISTEN_FDS: "1", LISTEN_PID: "42" }), 42)).toEqual([{ fd: 3, name: null, source: "LISTEN_FDS" }]);
  });

  test("--listen-fd NAME=FD, checked", () => {
    expect(passedSockets(env({}), 1, ["public=0", "local=7"])).toEqual([
      { fd: 0, name: "public", source: "--listen-fd" },
      { fd: 7, name: "local", source: "--listen-fd" },
    ]);
    for (const bad of ["public", "=3", "Public=3", "public=-1", "public=3x", "public=123456"]) {
      expect(() => passedSockets(env({}), 1, [bad])).toThrow("--listen-fd: must be NAME=FD");
    }
    expect(() => passedSockets(env({}), 1, ["a=3", "b=3"])).toThrow("descriptor 3 is given twice");
    expect(() => passedSockets(env({ LISTEN_FDS: "1", LISTEN_PID: "1" }), 1, ["b=3"])).toThrow("descriptor 3 is given twice");
  });

  test("a malformed or absurd LISTEN_FDS is an error, not a guess", () => {
    expect(() => passedSockets(env({ LISTEN_FDS: "x", LISTEN_PID: "1" }), 1)).toThrow("LISTEN_FDS: must be a count 0..64");
    expect(() => passedSockets(env({ LISTEN_FDS: "500", LISTEN_PID: "1" }), 1)).toThrow("LISTEN_FDS: must be a count 0..64");
  });
});

/** A runtime whose descriptors are a table; records what was adopted. */
function fakeRuntime(fds: Record<number, string>, canAdopt = true): Runtime & { adopted: [number, ListenAddress][] } {
  const adopted: [number, ListenAddress][] = [];
  const rt = {
    name: canAdopt ? "bun" : "deno",
    adopted,
    inherit: canAdopt
      ? {
        inspect: (fd: number) => (fds[fd] ? { address: fds[fd]! } : { error: `descriptor ${fd} is not open` }),
        adopt: (fd: number, a: ListenAddress) => void adopted.push([fd, a]),
      }
      : undefined,
  };
  return rt as unknown as Runtime & { adopted: [number, ListenAddress][] };
}

const config = parseConfig(`
[[listeners]]
name = "public"
kind = "sni"
address = "[::]:0"
[[listeners]]
name = "local"
kind = "sni"
address = "127.0.0.1:8443"
[[listeners]]
name = "sock"
kind = "sni"
address = "unix:/run/edgemux/sni.sock"
[[routes]]
match = "*"
targets = ["127.0.0.1:9"]
`);
const log = new Logger("error", "json", {});

describe("adoptPassedSockets", () => {
  test("by name (port 0 takes the socket's port), by address, unix", () => {
    const rt = fakeRuntime({ 3: "[::]:443", 4: "127.0.0.1:8443", 5: "unix:/run/edgemux/sni.sock" });
    const got = adoptPassedSockets(rt, config, [
      { fd: 3, name: "public", source: "LISTEN_FDS" },
      { fd: 4, name: null, source: "LISTEN_FDS" },
      { fd: 5, name: "sock", source: "LISTEN_FDS" },
    ], log);
    expect(got).toEqual([
      { listener: "public", fd: 3, address: "[::]:443", port: 443 },
      { listener: "local", fd: 4, address: "127.0.0.1:8443", port: 8443 },
      { listener: "sock", fd: 5, address: "unix:/run/edgemux/sni.sock", port: 0 },
    ]);
    expect(rt.adopted).toEqual([[3, { hostname: "::", port: 443 }], [4, { hostname: "127.0.0.1", port: 8443 }], [5, { unix: "/run/edgemux/sni.sock" }]]);
  });

  test("nothing passed: nothing adopted, also on a runtime that cannot adopt", () => {
    expect(adoptPassedSockets(fakeRuntime({}, false), config, [], log)).toEqual([]);
  });

  test("refusals name the socket, the listener and the fix", () => {
    const refuse = (fds: Record<number, string>, sockets: Parameters<typeof adoptPassedSockets>[2], canAdopt = true) => {
      try {
        adoptPassedSockets(fakeRuntime(fds, canAdopt), config, sockets, log);
      } catch (e) {
        expect(e).toBeInstanceOf(ProxyError);
        expect((e as ProxyError).code).toBe("CONFIG");
        return (e as Error).message;
      }
      throw new Error("not refused");
    };
    expect(refuse({ 3: "[::]:443" }, [{ fd: 3, name: "public", source: "LISTEN_FDS" }], false)).toContain("edgemux on deno cannot adopt an inherited listening socket");
    expect(refuse({}, [{ fd: 3, name: "public", source: "LISTEN_FDS" }])).toContain('inherited socket "public" (descriptor 3, from LISTEN_FDS): descriptor 3 is not open');
    expect(refuse({ 3: "10.0.0.1:443" }, [{ fd: 3, name: null, source: "LISTEN_FDS" }])).toContain("is bound to 10.0.0.1:443, and no listener has that name or address");
    expect(refuse({ 3: "127.0.0.1:9443" }, [{ fd: 3, name: "local", source: "LISTEN_FDS" }])).toContain('but listener "local" has address 127.0.0.1:8443');
    expect(refuse({ 3: "127.0.0.1:443" }, [{ fd: 3, name: "public", source: "LISTEN_FDS" }])).toContain('but listener "public" has address [::]:0');
    expect(refuse({ 3: "[::]:443" }, [{ fd: 3, name: "sock", source: "LISTEN_FDS" }])).toContain('but listener "sock" has address unix:/run/edgemux/sni.sock');
    expect(refuse({ 0: "[::]:443" }, [{ fd: 0, name: "web", source: "--listen-fd" }])).toContain('--listen-fd web=0: no listener is named "web"');
    expect(refuse({ 3: "127.0.0.1:8443", 4: "127.0.0.1:8443" }, [
      { fd: 3, name: "local", source: "LISTEN_FDS" },
      { fd: 4, name: null, source: "LISTEN_FDS" },
    ])).toContain('listener "local" is given two inherited sockets: descriptors 3 and 4');
  });
});

describe("workerEntryUrl", () => {
  test("from the sources (and deno compile): <root>/workers/data_plane.ts", () => {
    expect(workerEntryUrl("file:///srv/edgemux/src/supervisor/mod.ts").href).toBe("file:///srv/edgemux/workers/data_plane.ts");
    expect(workerEntryUrl().href).toEndWith("/workers/data_plane.ts");
  });

  test("from a bun --compile binary: beside the bundle at the embedded root", () => {
    expect(workerEntryUrl("file:///$bunfs/root/edgemux").href).toBe("file:///$bunfs/root/workers/data_plane.ts");
  });
});
