/**
 * Where an operator's path lands on the agent: inside one of the roots it
 * allows (`--allow-files DIR`, `[files] roots`), never outside.
 *
 * A path is relative and `/`-separated. Refused (PATH_DENIED): an absolute
 * path, a `..` segment, a backslash or NUL, and any path whose existing part
 * resolves (symlinks followed) outside its root. With one root, paths are
 * relative to it; with several, the first segment names the root (its
 * `NAME=` or, by default, its directory's base name).
 *
 * What this cannot close: a race in which something on the agent swaps a
 * directory for a symlink between this check and the open. The roots are
 * the operator's to trust, as with any file server.
 */
import { realpathSync } from "node:fs";
import { basename, join, sep } from "node:path";

export interface FileRoot {
  name: string;
  /** The directory, as a real path (symlinks resolved at start-up). */
  dir: string;
}

export type Resolved = { root: FileRoot; full: string; rel: string[] } | { error: string };

/** The segments of an operator path, or why it is refused. `""` and `.` name the root itself. */
export function pathSegments(path: string): string[] | { error: string } {
  if (path.includes("\0")) return { error: "a path must not contain NUL" };
  if (path.includes("\\")) return { error: "a path must not contain a backslash" };
  if (path.startsWith("/") || /^[A-Za-z]:/.test(path)) return { error: `absolute paths are refused (${JSON.stringify(path)}): give a path relative to the agent's file root` };
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) return { error: `".." is refused (${JSON.stringify(path)}): paths stay inside the agent's file roots` };
  return parts;
}

/** Resolves `path` against `roots` (already real paths), following symlinks of its existing part. */
export function resolveRemotePath(roots: readonly FileRoot[], path: string): Resolved {
  if (roots.length === 0) return { error: "this agent allows no file roots" };
  const parts = pathSegments(path);
  if ("error" in parts) return parts;
  let root = roots[0]!;
  let rel = parts;
  if (roots.length > 1) {
    if (parts.length === 0) return { error: `name a root first: ${roots.map((r) => r.name).join(", ")}` };
    const r = roots.find((x) => x.name === parts[0]);
    if (r === undefined) return { error: `no file root named ${JSON.stringify(parts[0])} (roots: ${roots.map((x) => x.name).join(", ")})` };
    root = r;
    rel = parts.slice(1);
  }
  const full = join(root.dir, ...rel);
  // The deepest part of the path that exists, with every symlink resolved, must stay inside the root.
  let existing = full;
  let tail: string[] = [];
  for (;;) {
    try {
      const real = realpathSync(existing);
      if (real !== root.dir && !real.startsWith(root.dir + sep)) return { error: `${JSON.stringify(path)} leaves the file root through a symlink` };
      return { root, full: join(real, ...tail), rel };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT" && (e as NodeJS.ErrnoException).code !== "ENOTDIR") return { error: `${JSON.stringify(path)}: ${(e as Error).message}` };
      if (existing === root.dir) return { error: `the file root ${root.dir} is gone` };
      tail = [basename(existing), ...tail];
      existing = join(existing, "..");
    }
  }
}

/** `NAME=DIR` or `DIR` (named by its base name), as a real path; throws when DIR does not exist. */
export function fileRoot(spec: string, base: string): FileRoot {
  const eq = spec.indexOf("=");
  const named = eq > 0 && /^[A-Za-z0-9_.-]+$/.test(spec.slice(0, eq));
  const dirText = named ? spec.slice(eq + 1) : spec;
  const dir = realpathSync(join(dirText.startsWith("/") ? "/" : base, dirText));
  return { name: named ? spec.slice(0, eq) : basename(dir) || "root", dir };
}
