import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileRoot, pathSegments, resolveRemotePath } from "./paths.ts";

describe("remote paths stay inside the agent's roots", () => {
  const base = mkdtempSync(join(tmpdir(), "edgemux-paths-"));
  mkdirSync(join(base, "root/sub"), { recursive: true });
  mkdirSync(join(base, "other"));
  writeFileSync(join(base, "root/sub/a.txt"), "a");
  writeFileSync(join(base, "other/secret"), "s");
  symlinkSync(join(base, "other"), join(base, "root/out")); // escapes
  symlinkSync(join(base, "root/sub"), join(base, "root/in")); // stays inside
  const root = fileRoot(join(base, "root"), "/");

  test("segments: absolute, .., backslash and NUL refused", () => {
    expect(pathSegments("a/./b//c")).toEqual(["a", "b", "c"]);
    expect(pathSegments("")).toEqual([]);
    for (const p of ["/etc/passwd", "../x", "a/../../b", "a\\b", "a\0b", "C:/x"]) expect(pathSegments(p)).toHaveProperty("error");
  });

  test("inside, new files and symlinks that stay inside resolve", () => {
    expect(resolveRemotePath([root], "sub/a.txt")).toMatchObject({ full: join(root.dir, "sub/a.txt") });
    expect(resolveRemotePath([root], "new/dir/file")).toMatchObject({ full: join(root.dir, "new/dir/file") });
    expect(resolveRemotePath([root], "in/a.txt")).toMatchObject({ full: join(root.dir, "sub/a.txt") });
    expect(resolveRemotePath([root], "")).toMatchObject({ full: root.dir });
  });

  test("a symlink out of the root is refused, also for paths below it that do not exist", () => {
    expect(resolveRemotePath([root], "out/secret")).toHaveProperty("error");
    expect(resolveRemotePath([root], "out")).toHaveProperty("error");
    expect(resolveRemotePath([root], "out/new/file")).toHaveProperty("error");
    expect(resolveRemotePath([root], "../other/secret")).toHaveProperty("error");
  });

  test("several roots: the first segment names one", () => {
    const other = fileRoot(`o=${join(base, "other")}`, "/");
    expect(other.name).toBe("o");
    expect(resolveRemotePath([root, other], "o/secret")).toMatchObject({ full: join(other.dir, "secret") });
    expect(resolveRemotePath([root, other], "root/sub/a.txt")).toMatchObject({ full: join(root.dir, "sub/a.txt") });
    expect(resolveRemotePath([root, other], "nope/x")).toHaveProperty("error");
  });
});
