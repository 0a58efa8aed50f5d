/**
 * The built-in static file server behind `--expose NAME=file:./dir`: an HTTP
 * server on 127.0.0.1 (kernel-chosen port) that the destination role connects
 * to like any other local service. GET and HEAD; a directory serves its
 * index.html; paths are confined to the directory (no `..`, no symlink
 * escape); files stream in 64 KiB reads.
 */
import { createReadStream, realpathSync, statSync } from "node:fs";
import { extname, join, sep } from "node:path";
import { Readable } from "node:stream";
import type { HttpServer, Runtime } from "../runtime/types.ts";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".htm": "text/html; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".ico": "image/x-icon",
  ".wasm": "application/wasm",
  ".pdf": "application/pdf",
};

function text(status: number, body: string): Response {
  return new Response(`${body}\n`, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}

/** Resolves a request path inside `root` (already a real path), or null when it would leave it. */
export function resolveInside(root: string, urlPath: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes("\0")) return null;
  const parts = decoded.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.some((p) => p === ".." || p.includes("\\"))) return null;
  const full = join(root, ...parts);
  let real: string;
  try {
    real = realpathSync(full);
  } catch {
    return full; // does not exist: the caller answers 404
  }
  return real === root || real.startsWith(root + sep) ? real : null;
}

export function fileHandler(dir: string): (req: Request) => Response {
  const root = realpathSync(dir);
  return (req) => {
    if (req.method !== "GET" && req.method !== "HEAD") return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    const path = resolveInside(root, new URL(req.url).pathname);
    if (path === null) return text(403, "forbidden");
    let file = path;
    let st;
    try {
      st = statSync(file);
      if (st.isDirectory()) {
        file = join(file, "index.html");
        st = statSync(file);
      }
    } catch {
      return text(404, "not found");
    }
    if (!st.isFile()) return text(404, "not found");
    const headers = {
      "content-type": TYPES[extname(file).toLowerCase()] ?? "application/octet-stream",
      "content-length": String(st.size),
      "last-modified": st.mtime.toUTCString(),
    };
    if (req.method === "HEAD") return new Response(null, { status: 200, headers });
    const body = Readable.toWeb(createReadStream(file, { highWaterMark: 64 * 1024 })) as unknown as ReadableStream<Uint8Array>;
    return new Response(body, { status: 200, headers });
  };
}

export async function startFileServer(rt: Runtime, dir: string): Promise<HttpServer> {
  return await rt.serveHttp({ hostname: "127.0.0.1", port: 0, fetch: fileHandler(dir) });
}
