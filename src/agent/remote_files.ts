/**
 * Remote files on the agent (`--allow-files DIR`, `[files]`): the operator
 * streams `put`, `get`, `list` and `mkdir`, confined to the roots
 * (remote/paths.ts). Everything that can be checked before a byte moves is
 * checked before the `ok` (a numbered refusal otherwise); then, over
 * remote/frames.ts frames:
 *
 *   put:   agent → ready {offset}   operator → DATA (size - offset bytes)   agent → done {size, sha256} | fail {code, message}
 *   get:   agent → ready {size, offset, mode}, DATA (size - offset bytes), done {size, sha256}
 *   list:  agent → entries {entries: [{p, t, s, m}]}..., done {count}
 *   mkdir: agent → done {}
 *
 * Resuming: a put writes `.<name>.<sha256 prefix>.edgemux-part` beside the
 * target and renames it once the whole file's SHA-256 matches; a put of the
 * same file (same hash) that finds the part file continues after its last
 * byte (`ready.offset`). A get starts at the operator's `offset` (its own
 * part file); the hash in `done` is always over the whole file, so either
 * side verifies every byte, including those of the first attempt.
 *
 * Loaded only when an operator stream asks for files (node:crypto and
 * node:fs/promises stay out of an agent that never serves one).
 */
import { createHash } from "node:crypto";
import { constants, type Stats } from "node:fs";
import { chmod, lstat, mkdir, open, opendir, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Logger } from "../log/mod.ts";
import { type RemoteMessage, TunnelErrorCode } from "../proto/tunnel_control.ts";
import type { Conn } from "../runtime/types.ts";
import { encodeMsg } from "../remote/frames.ts";
import { FrameStream } from "../remote/frame_stream.ts";
import { resolveRemotePath } from "../remote/paths.ts";
import type { FilesConfig } from "./config.ts";

/** How many bytes one read or prefix-hash step takes. */
const READ_CHUNK = 256 * 1024;
/** Entries in one listing (a tree bigger than this is refused). */
export const MAX_LIST_ENTRIES = 100_000;
const ENTRIES_PER_FRAME = 1000;

/** What the agent gives a file stream: answer ok or a numbered refusal, and the log. */
export interface RemoteReply {
  ok(): void;
  refuse(code: number, reason: string): void;
  /** The stream is over (counted, logged with the outcome). */
  finished(outcome: { bytes: number; error: string | null }): void;
  readonly log: Logger;
}

export function partName(target: string, sha256: string): string {
  return join(dirname(target), `.${basename(target)}.${sha256.slice(0, 16)}.edgemux-part`);
}

export async function serveFiles(cfg: FilesConfig, stream: Conn, m: RemoteMessage, reply: RemoteReply): Promise<void> {
  const r = resolveRemotePath(cfg.roots, m.path ?? "");
  if ("error" in r) return reply.refuse(TunnelErrorCode.PATH_DENIED, r.error);
  if ((m.kind === "put" || m.kind === "mkdir") && cfg.readOnly) return reply.refuse(TunnelErrorCode.REMOTE_DISABLED, "this agent's file roots are read-only ([files] read_only)");
  switch (m.kind) {
    case "put":
      return await put(cfg, stream, m, r.full, reply);
    case "get":
      return await get(cfg, stream, m, r.full, reply);
    case "list":
      return await list(stream, r.full, reply);
    case "mkdir": {
      try {
        await mkdir(r.full, { recursive: true, mode: 0o755 });
      } catch (e) {
        return reply.refuse(TunnelErrorCode.FILE_FAILED, `cannot create ${JSON.stringify(m.path)}: ${(e as Error).message}`);
      }
      reply.ok();
      const fs = new FrameStream(stream);
      fs.write(encodeMsg({ done: true }));
      fs.end();
      reply.finished({ bytes: 0, error: null });
      return;
    }
  }
}

async function statOrNull(path: string): Promise<Stats | null> {
  try {
    return await stat(path);
  } catch {
    return null;
  }
}

async function put(cfg: FilesConfig, stream: Conn, m: RemoteMessage, target: string, reply: RemoteReply): Promise<void> {
  const size = m.size!;
  const sha = m.sha256!;
  if (size > cfg.maxSize) return reply.refuse(TunnelErrorCode.FILE_TOO_LARGE, `${size} bytes is over this agent's limit of ${cfg.maxSize} bytes ([files] max_size)`);
  const existing = await statOrNull(target);
  if (existing?.isDirectory()) return reply.refuse(TunnelErrorCode.FILE_FAILED, `${JSON.stringify(m.path)} is a directory (end the destination with / to copy into it)`);
  try {
    await mkdir(dirname(target), { recursive: true, mode: 0o755 });
  } catch (e) {
    return reply.refuse(TunnelErrorCode.FILE_FAILED, `cannot create the directory of ${JSON.stringify(m.path)}: ${(e as Error).message}`);
  }
  const part = partName(target, sha);
  let fh;
  try {
    // O_NOFOLLOW: a symlink planted as the part file is not followed out of the root.
    fh = await open(part, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  } catch (e) {
    return reply.refuse(TunnelErrorCode.FILE_FAILED, `cannot write beside ${JSON.stringify(m.path)}: ${(e as Error).message}`);
  }
  reply.ok();
  const fs = new FrameStream(stream);
  let received = 0;
  let offset = 0;
  const hash = createHash("sha256");
  try {
    // Resume: a part file of this same content (same hash in its name) continues after its last byte.
    offset = (await fh.stat()).size;
    if (offset > size) {
      await fh.truncate(0);
      offset = 0;
    }
    const buf = new Uint8Array(READ_CHUNK);
    for (let pos = 0; pos < offset;) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(READ_CHUNK, offset - pos), pos);
      if (bytesRead === 0) throw new Error("the part file shrank while it was read");
      hash.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    fs.write(encodeMsg({ ready: true, offset }));
    const want = size - offset;
    while (received < want) {
      const f = await fs.next();
      if (f === null) throw new Error(`the operator's stream ended after ${offset + received} of ${size} bytes (the part file is kept: copy again to resume)`);
      if (f.type !== 0) throw new Error(`expected file data, got a frame of type ${f.type}`);
      if (received + f.data.length > want) throw new Error(`more than the ${size} bytes announced`);
      hash.update(f.data);
      await fh.write(f.data, 0, f.data.length, offset + received);
      received += f.data.length;
    }
    await fh.sync();
    await fh.close();
    const got = hash.digest("hex");
    if (got !== sha) {
      await unlink(part).catch(() => {});
      fs.write(encodeMsg({ error: TunnelErrorCode.CHECKSUM_MISMATCH, message: `the ${size} bytes received have SHA-256 ${got}, not ${sha}; the partial copy was discarded` }));
      fs.end();
      reply.finished({ bytes: received, error: "CHECKSUM_MISMATCH" });
      return;
    }
    await chmod(part, (m.mode ?? 0o644) & 0o777);
    await rename(part, target);
    fs.write(encodeMsg({ done: true, size, sha256: got, offset }));
    fs.end();
    reply.finished({ bytes: received, error: null });
  } catch (e) {
    await fh.close().catch(() => {});
    if (!fs.closed) {
      fs.write(encodeMsg({ error: TunnelErrorCode.FILE_FAILED, message: (e as Error).message }));
      fs.end();
    }
    reply.finished({ bytes: received, error: (e as Error).message });
  }
}

async function get(cfg: FilesConfig, stream: Conn, m: RemoteMessage, target: string, reply: RemoteReply): Promise<void> {
  let fh;
  let st: Stats;
  try {
    fh = await open(target, constants.O_RDONLY | constants.O_NOFOLLOW);
    st = await fh.stat();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return reply.refuse(TunnelErrorCode.FILE_FAILED, code === "ENOENT" ? `no such file: ${JSON.stringify(m.path)}` : `cannot read ${JSON.stringify(m.path)}: ${(e as Error).message}`);
  }
  if (!st.isFile()) {
    await fh.close();
    return reply.refuse(TunnelErrorCode.FILE_FAILED, `${JSON.stringify(m.path)} is not a regular file`);
  }
  if (st.size > cfg.maxSize) {
    await fh.close();
    return reply.refuse(TunnelErrorCode.FILE_TOO_LARGE, `${st.size} bytes is over this agent's limit of ${cfg.maxSize} bytes ([files] max_size)`);
  }
  reply.ok();
  const fs = new FrameStream(stream);
  const size = st.size;
  // An offset past the end means the operator's part file is not of this file: start over.
  const offset = (m.offset ?? 0) <= size ? (m.offset ?? 0) : 0;
  const hash = createHash("sha256");
  let sent = 0;
  try {
    fs.write(encodeMsg({ ready: true, size, offset, mode: st.mode & 0o777 }));
    for (let pos = 0; pos < size;) {
      // A fresh buffer per read: the stream keeps a view of it until the bytes are framed.
      const buf = new Uint8Array(Math.min(READ_CHUNK, size - pos));
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) throw new Error(`${JSON.stringify(m.path)} shrank while it was read`);
      const piece = buf.subarray(0, bytesRead);
      hash.update(piece);
      if (pos >= offset) {
        if (!fs.writeData(piece)) await fs.drained();
        if (fs.closed) throw new Error("the operator's stream closed");
        sent += bytesRead;
      } else if (pos + bytesRead > offset) {
        // The read straddles the offset (offsets need not be chunk-aligned).
        const tail = piece.subarray(offset - pos);
        if (!fs.writeData(tail)) await fs.drained();
        sent += tail.length;
      }
      pos += bytesRead;
    }
    fs.write(encodeMsg({ done: true, size, sha256: hash.digest("hex") }));
    fs.end();
    reply.finished({ bytes: sent, error: null });
  } catch (e) {
    // The operator sees a short copy: its part file keeps what arrived.
    fs.close();
    reply.finished({ bytes: sent, error: (e as Error).message });
  } finally {
    await fh.close().catch(() => {});
  }
}

interface Entry {
  /** Path relative to the listed directory, `/`-separated ("" = the listed file itself). */
  p: string;
  t: "f" | "d";
  s: number;
  m: number;
}

async function list(stream: Conn, target: string, reply: RemoteReply): Promise<void> {
  let top: Stats;
  try {
    top = await stat(target);
  } catch {
    return reply.refuse(TunnelErrorCode.FILE_FAILED, `no such file or directory`);
  }
  const entries: Entry[] = [];
  if (top.isFile()) entries.push({ p: "", t: "f", s: top.size, m: top.mode & 0o777 });
  else if (top.isDirectory()) {
    // Breadth-first; symlinks are not followed (one inside could lead out of the root).
    const dirs = [""];
    while (dirs.length > 0) {
      const rel = dirs.shift()!;
      try {
        for await (const d of await opendir(join(target, rel))) {
          const p = rel === "" ? d.name : `${rel}/${d.name}`;
          if (d.name.endsWith(".edgemux-part")) continue;
          if (d.isDirectory()) {
            const st = await lstat(join(target, p));
            entries.push({ p, t: "d", s: 0, m: st.mode & 0o777 });
            dirs.push(p);
          } else if (d.isFile()) {
            const st = await lstat(join(target, p));
            entries.push({ p, t: "f", s: st.size, m: st.mode & 0o777 });
          }
          if (entries.length > MAX_LIST_ENTRIES) return reply.refuse(TunnelErrorCode.FILE_FAILED, `more than ${MAX_LIST_ENTRIES} entries: copy a smaller tree`);
        }
      } catch (e) {
        return reply.refuse(TunnelErrorCode.FILE_FAILED, `cannot list ${rel || "."}: ${(e as Error).message}`);
      }
    }
  } else return reply.refuse(TunnelErrorCode.FILE_FAILED, "not a regular file or directory");
  reply.ok();
  const fs = new FrameStream(stream);
  for (let i = 0; i < entries.length; i += ENTRIES_PER_FRAME) {
    if (!fs.write(encodeMsg({ entries: entries.slice(i, i + ENTRIES_PER_FRAME), dir: top.isDirectory() }))) await fs.drained();
  }
  fs.write(encodeMsg({ done: true, count: entries.length, dir: top.isDirectory() }));
  fs.end();
  reply.finished({ bytes: 0, error: null });
}
