import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DirectoryResolver, isSafeHostEntry, resolveDirectory, type DirectoryBackend } from "./directory.ts";

let root: string; // holds `hosts/` and, outside it, `elsewhere/`
let hosts: string;
const servers: Server[] = [];

function listenUnix(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    servers.push(s);
    s.once("error", reject);
    s.listen(path, () => resolve());
  });
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "edgemux-dir-"));
  hosts = join(root, "hosts");
  mkdirSync(hosts);
  const elsewhere = join(root, "elsewhere");
  mkdirSync(elsewhere);

  // plain.test: a socket, no PROXY.
  mkdirSync(join(hosts, "plain.test"));
  await listenUnix(join(hosts, "plain.test", "tls-socket"));

  // proxy.test: a socket and the send-proxy-v1 marker.
  mkdirSync(join(hosts, "proxy.test"));
  await listenUnix(join(hosts, "proxy.test", "tls-socket"));
  writeFileSync(join(hosts, "proxy.test", "send-proxy-v1"), "");

  // empty.test: directory without tls-socket.
  mkdirSync(join(hosts, "empty.test"));

  // file.test: tls-socket is a regular file, not a socket.
  mkdirSync(join(hosts, "file.test"));
  writeFileSync(join(hosts, "file.test", "tls-socket"), "");

  // notdir.test: the host entry is a file.
  writeFileSync(join(hosts, "notdir.test"), "");

  // alias.test -> plain.test (symlinked host directory, relative link).
  symlinkSync("plain.test", join(hosts, "alias.test"));

  // outside.test -> ../elsewhere (a link leaving the directory: allowed, operator's choice).
  await listenUnix(join(elsewhere, "real.sock"));
  writeFileSync(join(elsewhere, "send-proxy-v1"), "");
  symlinkSync(elsewhere, join(hosts, "outside.test"));

  // linked-socket.test/tls-socket -> ../../elsewhere/real.sock (symlinked socket).
  mkdirSync(join(hosts, "linked-socket.test"));
  symlinkSync(join(elsewhere, "real.sock"), join(hosts, "linked-socket.test", "tls-socket"));

  // dangling.test/tls-socket -> a missing file.
  mkdirSync(join(hosts, "dangling.test"));
  symlinkSync(join(elsewhere, "missing.sock"), join(hosts, "dangling.test", "tls-socket"));

  // A socket one level above `hosts`, to check that ".." style names are refused.
  await listenUnix(join(root, "tls-socket"));
});

afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  rmSync(root, { recursive: true, force: true });
});

describe("resolveDirectory", () => {
  test("tls-socket present", () => {
    expect(resolveDirectory(hosts, "plain.test")).toEqual({ socketPath: join(hosts, "plain.test", "tls-socket"), proxyV1: false });
    expect(resolveDirectory(hosts + "/", "plain.test")!.socketPath).toBe(join(hosts, "plain.test", "tls-socket"));
  });

  test("send-proxy-v1 turns on PROXY v1", () => {
    expect(resolveDirectory(hosts, "proxy.test")).toEqual({ socketPath: join(hosts, "proxy.test", "tls-socket"), proxyV1: true });
  });

  test("missing entries are null", () => {
    expect(resolveDirectory(hosts, "nope.test")).toBeNull();
    expect(resolveDirectory(hosts, "empty.test")).toBeNull();
    expect(resolveDirectory(hosts, "file.test")).toBeNull();
    expect(resolveDirectory(hosts, "notdir.test")).toBeNull();
    expect(resolveDirectory(hosts, "dangling.test")).toBeNull();
    expect(resolveDirectory(join(root, "no-such-dir"), "plain.test")).toBeNull();
  });

  test("symlinked host directory and symlinked socket are followed; the path is not resolved", () => {
    expect(resolveDirectory(hosts, "alias.test")).toEqual({ socketPath: join(hosts, "alias.test", "tls-socket"), proxyV1: false });
    expect(resolveDirectory(hosts, "linked-socket.test")).toEqual({
      socketPath: join(hosts, "linked-socket.test", "tls-socket"),
      proxyV1: false,
    });
  });

  test("an operator's symlink may point outside the directory", () => {
    // outside.test -> ../elsewhere, which has real.sock but no tls-socket.
    expect(resolveDirectory(hosts, "outside.test")).toBeNull();
    symlinkSync("real.sock", join(root, "elsewhere", "tls-socket"));
    expect(resolveDirectory(hosts, "outside.test")).toEqual({ socketPath: join(hosts, "outside.test", "tls-socket"), proxyV1: true });
  });

  test("a socket path too long for sun_path is replaced by its realpath", () => {
    const long = "l".repeat(120) + ".test";
    mkdirSync(join(hosts, long));
    symlinkSync(join(root, "elsewhere", "real.sock"), join(hosts, long, "tls-socket"));
    expect(join(hosts, long, "tls-socket").length).toBeGreaterThan(107);
    expect(resolveDirectory(hosts, long)).toEqual({ socketPath: realpathSync(join(root, "elsewhere", "real.sock")), proxyV1: false });
  });

  test("traversal and unsafe names are refused before touching the disk", () => {
    // `root/tls-socket` exists, so ".." or "" would find it if the name were trusted.
    for (const bad of ["", ".", "..", "../hosts/plain.test", "plain.test/..", ".hidden", "a/b", "PLAIN.TEST", "a\0b", "é.test", "a b"]) {
      expect({ bad, r: resolveDirectory(hosts, bad) }).toEqual({ bad, r: null });
      expect(isSafeHostEntry(bad)).toBe(false);
    }
    expect(isSafeHostEntry("a-b_c.0.test")).toBe(true);
    expect(isSafeHostEntry("x".repeat(254))).toBe(false);
  });
});

describe("DirectoryResolver cache", () => {
  function counting(answer: (name: string) => DirectoryBackend | null) {
    const calls: string[] = [];
    const lookup = (_dir: string, name: string) => {
      calls.push(name);
      return answer(name);
    };
    return { calls, lookup };
  }

  test("positive and negative answers are reused for ttlMs, then looked up again", () => {
    const { calls, lookup } = counting((n) => (n === "a.test" ? { socketPath: "/s", proxyV1: false } : null));
    const r = new DirectoryResolver("/d", { ttlMs: 1000, lookup });
    expect(r.resolve("a.test", 0)).toEqual({ socketPath: "/s", proxyV1: false });
    expect(r.resolve("b.test", 0)).toBeNull();
    for (let t = 1; t < 1000; t += 111) {
      r.resolve("a.test", t);
      r.resolve("b.test", t);
    }
    expect(calls).toEqual(["a.test", "b.test"]);
    r.resolve("a.test", 1000); // expired
    r.resolve("b.test", 1500);
    expect(calls).toEqual(["a.test", "b.test", "a.test", "b.test"]);
    r.resolve("a.test", 1999);
    expect(calls.length).toBe(4);
  });

  test("the cache is bounded: the oldest entry goes first", () => {
    const { calls, lookup } = counting(() => null);
    const r = new DirectoryResolver("/d", { ttlMs: 1000, maxEntries: 3, lookup });
    for (const n of ["n1.test", "n2.test", "n3.test", "n4.test"]) r.resolve(n, 0);
    expect(r.size).toBe(3);
    r.resolve("n4.test", 1);
    r.resolve("n2.test", 1);
    expect(calls.length).toBe(4); // n2..n4 still cached
    r.resolve("n1.test", 1); // evicted earlier: looked up again
    expect(calls.length).toBe(5);
    expect(r.size).toBe(3);
  });

  test("a flood of distinct names stays within the bound", () => {
    const { calls, lookup } = counting(() => null);
    const r = new DirectoryResolver("/d", { maxEntries: 100, lookup });
    for (let i = 0; i < 5000; i++) r.resolve(`r${i}.test`, i % 1000);
    expect(r.size).toBe(100);
    expect(calls.length).toBe(5000);
  });

  test("no SNI and unsafe names never reach the lookup", () => {
    const { calls, lookup } = counting(() => ({ socketPath: "/s", proxyV1: false }));
    const r = new DirectoryResolver("/d", { lookup });
    expect(r.resolve(null, 0)).toBeNull();
    expect(r.resolve("..", 0)).toBeNull();
    expect(r.resolve("a/b", 0)).toBeNull();
    expect(calls).toEqual([]);
  });

  test("a new hostname is picked up after the negative entry expires, without reload", () => {
    const r = new DirectoryResolver(hosts, { ttlMs: 1000 });
    expect(r.resolve("late.test", 10_000)).toBeNull();
    mkdirSync(join(hosts, "late.test"));
    symlinkSync(join(hosts, "plain.test", "tls-socket"), join(hosts, "late.test", "tls-socket"));
    expect(r.resolve("late.test", 10_500)).toBeNull(); // still the cached negative answer
    expect(r.resolve("late.test", 11_000)).toEqual({ socketPath: join(hosts, "late.test", "tls-socket"), proxyV1: false });
  });
});
