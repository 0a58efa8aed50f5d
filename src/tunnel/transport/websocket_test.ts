import { describe, expect, test } from "bun:test";
import { encodeWsFrame, WsFrameDecoder, WsOpcode, WsProtocolError } from "../../proto/mod.ts";
import { memoryPair } from "../../runtime/memory.ts";
import type { Conn, ConnHandler } from "../../runtime/types.ts";
import { WsConn } from "./websocket.ts";

describe("WsConn", () => {
  test("bytes both ways, ping answered, close ends both sides", async () => {
    const [a, b] = memoryPair();
    const client = new WsConn(a, "client");
    const server = new WsConn(b, "server");
    const rc = new Rec();
    const rs = new Rec();
    client.setHandler(rc);
    server.setHandler(rs);
    client.write(Uint8Array.of(1, 2, 3));
    server.write(Uint8Array.of(4, 5));
    await until(() => rs.bytes.length === 3 && rc.bytes.length === 2, "data");
    expect(rs.bytes).toEqual([1, 2, 3]);
    expect(rc.bytes).toEqual([4, 5]);
    // A raw ping from the client side's transport is answered by the server adapter with a pong.
    const seen: number[] = [];
    const spy = new WsFrameDecoder("client");
    const orig = client.onData.bind(client);
    client.onData = (c, chunk) => {
      spy.push(chunk.slice());
      for (let e = spy.next(); e; e = spy.next()) seen.push(e.type === "pong" ? 10 : 0);
      orig(c, chunk);
    };
    a.write(encodeWsFrame(WsOpcode.PING, Uint8Array.of(1), true));
    await until(() => seen.includes(10), "pong");
    client.end();
    await until(() => rs.ended, "server saw the close");
    await until(() => rs.closed && rc.closed, "both closed");
  });

  test("garbage from the peer closes only that connection with a protocol error", async () => {
    const [a, b] = memoryPair();
    const server = new WsConn(b, "server");
    const rs = new Rec();
    server.setHandler(rs);
    a.write(Uint8Array.of(0x82, 0x01, 0x41)); // unmasked from a client
    await until(() => rs.closed, "closed");
    expect(rs.err).toBeInstanceOf(WsProtocolError);
  });
});

class Rec implements ConnHandler {
  bytes: number[] = [];
  ended = false;
  closed = false;
  err: Error | undefined;
  onData(_c: Conn, chunk: Uint8Array): void {
    this.bytes.push(...chunk);
  }
  onDrain(): void {}
  onEnd(): void {
    this.ended = true;
  }
  onClose(_c: Conn, err?: Error): void {
    this.closed = true;
    this.err = err;
  }
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setTimeout(r, 0));
  if (!cond()) throw new Error(`timed out: ${what}`);
}
