/**
 * `edgemux cp LOCAL AGENT:PATH` and `edgemux cp AGENT:PATH LOCAL`: files and
 * directory trees through the edge, to or from an agent's file roots.
 *
 * - Every file is SHA-256 verified end to end: the receiver hashes the whole
 *   file (its earlier bytes included) and compares with the sender's hash.
 * - Resuming: an interrupted copy leaves a part file (on the agent for a
 *   put, beside LOCAL for a get); copying the same file again continues from
 *   the byte it reached. A mismatch discards the part (copy again to start over).
 * - Backpressure: reads wait for the stream to drain; writes to disk are
 *   awaited before the next frame is taken (the stream pauses meanwhile).
 * - `AGENT:` names an agent; a local path with a colon is written `./a:b`.
 */
import { createHash } from "node:crypto";
import { constants, createReadStream, type Stats } from "node:fs";
import { chmod, mkdir, open, readdir, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { AGENT_NAME, TunnelErrorCode, tunnelErrorInfo } from "../proto/tunnel_control.ts";
import { type OperatorClient, RemoteFailure } from "./client.ts";
import type { FrameStream } from "./frame_stream.ts";
import { msgString, msgUint } from "./frames.ts";
import { pathSegments } from "./paths.ts";
import { wallMs } from "../runtime/clock.ts";

const READ_CHUNK = 256 * 1024;

export type CopyEnd = { agent: string; path: string } | { local: string };

/** `AGENT:PATH` or a local path. */
export function parseCopyEnd(text: string): CopyEnd {
  const colon = text.indexOf(":");
  if (colon > 0 && !text.slice(0, colon).includes("/") && AGENT_NAME.test(text.slice(0, colon))) {
    return { agent: text.slice(0, colon), path: text.slice(colon + 1) };
  }
  return { local: text };
}

export interface CopyOptions {
  /** Bytes per second the file data may move at (0 = unlimited). */
  bwlimit: number;
  /** One line per file copied. */
  out: (line: string) => void;
}

export interface CopyTotals {
  files: number;
  bytes: number;
}

/** Paces writes to `bwlimit` bytes per second (a limiter's wait is the point of it). */
class Pacer {
  private readonly start = wallMs();
  private sent = 0;
  constructor(private readonly rate: number) {}
  async take(n: number): Promise<void> {
    if (this.rate <= 0) return;
    this.sent += n;
    const due = this.start + (this.sent / this.rate) * 1000;
    const wait = due - wallMs();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}

async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) h.update(chunk as Uint8Array);
  return h.digest("hex");
}

function remoteJoin(base: string, rel: string): string {
  if (rel === "") return base;
  return base === "" || base.endsWith("/") ? `${base}${rel}` : `${base}/${rel}`;
}

/** The agent's MSG after the data: done, or a failure it found (checksum, I/O). */
function checkDone(m: Record<string, unknown>, what: string): Record<string, unknown> {
  if (m.done === true) return m;
  const code = msgUint(m, "error") ?? TunnelErrorCode.FILE_FAILED;
  throw new RemoteFailure(code, tunnelErrorInfo(code).name, `${what}: ${msgString(m, "message") ?? "failed"}`);
}

// ---------------------------------------------------------------- upload

export async function upload(client: OperatorClient, local: string, agent: string, remote: string, o: CopyOptions): Promise<CopyTotals> {
  const st = await stat(local);
  const totals = { files: 0, bytes: 0 };
  if (st.isDirectory()) {
    // The tree's contents land in `remote` (created), depth first; symlinks are skipped.
    await mkdirRemote(client, agent, remote);
    const walk = async (rel: string) => {
      for (const d of await readdir(join(local, rel), { withFileTypes: true })) {
        const r = rel === "" ? d.name : `${rel}/${d.name}`;
        if (d.isDirectory()) {
          await mkdirRemote(client, agent, remoteJoin(remote, r));
          await walk(r);
        } else if (d.isFile()) {
          totals.bytes += await putFile(client, join(local, r), agent, remoteJoin(remote, r), o);
          totals.files++;
        }
      }
    };
    await walk("");
    return totals;
  }
  if (!st.isFile()) throw new Error(`${local}: not a regular file or directory`);
  const target = remote === "" || remote.endsWith("/") ? `${remote}${basename(local)}` : remote;
  totals.bytes = await putFile(client, local, agent, target, o, st);
  totals.files = 1;
  return totals;
}

async function mkdirRemote(client: OperatorClient, agent: string, path: string): Promise<void> {
  const fs = await client.open({ kind: "mkdir", agent, path });
  checkDone(await fs.nextMsg("mkdir's answer"), `mkdir ${path}`);
}

async function putFile(client: OperatorClient, local: string, agent: string, remote: string, o: CopyOptions, known?: Stats): Promise<number> {
  const st = known ?? await stat(local);
  const sha256 = await sha256File(local);
  const fs = await client.open({ kind: "put", agent, path: remote, size: st.size, sha256, mode: st.mode & 0o777 });
  const ready = await fs.nextMsg("the agent's ready");
  const offset = msgUint(ready, "offset");
  if (ready.ready !== true || offset === null || offset > st.size) throw new RemoteFailure(TunnelErrorCode.PROTOCOL, "PROTOCOL", `put ${remote}: unexpected answer ${JSON.stringify(ready)}`);
  const fh = await open(local, "r");
  const pacer = new Pacer(o.bwlimit);
  try {
    for (let pos = offset; pos < st.size;) {
      // A fresh buffer per read: the stream keeps a view of it until the bytes are framed.
      const buf = new Uint8Array(Math.min(READ_CHUNK, st.size - pos));
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) throw new Error(`${local} shrank while it was copied`);
      if (!fs.writeData(buf.subarray(0, bytesRead))) await fs.drained();
      if (fs.closed) throw new Error(`put ${remote}: the stream closed after ${pos} bytes`);
      pos += bytesRead;
      await pacer.take(bytesRead);
    }
  } finally {
    await fh.close();
  }
  checkDone(await fs.nextMsg("the agent's verdict"), `put ${remote}`);
  fs.end();
  o.out(`${local} -> ${agent}:${remote}: ${st.size} bytes${offset > 0 ? ` (resumed at byte ${offset})` : ""}, sha256 ${sha256}`);
  return st.size - offset;
}

// ---------------------------------------------------------------- download

interface ListEntry {
  p: string;
  t: "f" | "d";
  s: number;
  m: number;
}

async function listRemote(client: OperatorClient, agent: string, path: string): Promise<{ dir: boolean; entries: ListEntry[] }> {
  const fs = await client.open({ kind: "list", agent, path });
  const entries: ListEntry[] = [];
  for (;;) {
    const m = await fs.nextMsg("the listing");
    if (Array.isArray(m.entries)) {
      for (const e of m.entries as ListEntry[]) {
        // The agent's names are not trusted either: nothing may land outside LOCAL.
        const seg = pathSegments(String(e?.p ?? ""));
        if ("error" in seg || seg.join("/") !== e.p || (e.t !== "f" && e.t !== "d")) throw new Error(`the agent listed a bad entry ${JSON.stringify(e)}`);
        entries.push(e);
      }
      continue;
    }
    checkDone(m, `list ${path}`);
    return { dir: m.dir === true, entries };
  }
}

export async function download(client: OperatorClient, agent: string, remote: string, local: string, o: CopyOptions): Promise<CopyTotals> {
  const { dir, entries } = await listRemote(client, agent, remote);
  const totals = { files: 0, bytes: 0 };
  const localIsDir = await stat(local).then((s) => s.isDirectory(), () => false);
  if (!dir) {
    const target = localIsDir || local.endsWith("/") ? join(local, basename(remote) || "file") : local;
    totals.bytes = await getFile(client, agent, remote, target, o);
    totals.files = 1;
    return totals;
  }
  await mkdir(local, { recursive: true });
  for (const e of entries) {
    const target = join(local, ...e.p.split("/"));
    if (e.t === "d") await mkdir(target, { recursive: true });
    else {
      await mkdir(dirname(target), { recursive: true });
      totals.bytes += await getFile(client, agent, remoteJoin(remote, e.p), target, o);
      totals.files++;
    }
  }
  return totals;
}

export function localPartName(target: string): string {
  return join(dirname(target), `.${basename(target)}.edgemux-part`);
}

async function getFile(client: OperatorClient, agent: string, remote: string, target: string, o: CopyOptions): Promise<number> {
  const part = localPartName(target);
  const fh = await open(part, constants.O_RDWR | constants.O_CREAT, 0o600);
  let received = 0;
  try {
    let offset = (await fh.stat()).size;
    const fs = await client.open({ kind: "get", agent, path: remote, offset });
    const ready = await fs.nextMsg("the agent's ready");
    const size = msgUint(ready, "size");
    const from = msgUint(ready, "offset");
    if (ready.ready !== true || size === null || from === null || from > offset) throw new Error(`get ${remote}: unexpected answer ${JSON.stringify(ready)}`);
    if (from < offset) {
      // The agent starts earlier (our part is longer than its file): drop what we had past it.
      await fh.truncate(from);
      offset = from;
    }
    const hash = createHash("sha256");
    const buf = new Uint8Array(READ_CHUNK);
    for (let pos = 0; pos < offset;) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(READ_CHUNK, offset - pos), pos);
      if (bytesRead === 0) throw new Error(`${part} shrank while it was read`);
      hash.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    const want = size - offset;
    const pacer = new Pacer(o.bwlimit);
    await pipeData(fs, want, async (data) => {
      hash.update(data);
      await fh.write(data, 0, data.length, offset + received);
      received += data.length;
      await pacer.take(data.length);
    }, remote);
    const done = checkDone(await fs.nextMsg("the agent's hash"), `get ${remote}`);
    await fh.sync();
    await fh.close();
    const got = hash.digest("hex");
    if (msgString(done, "sha256") !== got) {
      await unlink(part).catch(() => {});
      throw new RemoteFailure(TunnelErrorCode.CHECKSUM_MISMATCH, "CHECKSUM_MISMATCH", `get ${remote}: the bytes received have SHA-256 ${got}, the agent's file ${msgString(done, "sha256")}; the partial copy was discarded (copy again to start over)`);
    }
    const mode = msgUint(ready, "mode");
    if (mode !== null) await chmod(part, mode & 0o777);
    await rename(part, target);
    o.out(`${agent}:${remote} -> ${target}: ${size} bytes${offset > 0 ? ` (resumed at byte ${offset})` : ""}, sha256 ${got}`);
    return received;
  } finally {
    await fh.close().catch(() => {});
  }
}

/** Takes exactly `want` bytes of DATA frames, awaiting `sink` for each piece (the stream pauses meanwhile). */
async function pipeData(fs: FrameStream, want: number, sink: (d: Uint8Array) => Promise<void>, what: string): Promise<void> {
  let got = 0;
  while (got < want) {
    const f = await fs.next();
    if (f === null) throw new Error(`${what}: the stream ended after ${got} of ${want} bytes (copy again to resume)`);
    if (f.type !== 0) throw new Error(`${what}: expected file data, got a frame of type ${f.type}`);
    if (got + f.data.length > want) throw new Error(`${what}: more bytes than announced`);
    await sink(f.data);
    got += f.data.length;
  }
}
