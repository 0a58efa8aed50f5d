/**
 * The relay over in-memory connection pairs:
 *   far client ⇄ [client | Relay | upstream] ⇄ far upstream
 */
import { describe, expect, test } from "bun:test";
import { memoryPair, type MemoryConn } from "../runtime/memory.ts";
import type { Conn, ConnHandler } from "../runtime/types.ts";
import type { ErrorCode } from "../errors/mod.ts";
import { Relay, type RelayOwner } from "./relay.ts";

class Far implements ConnHandler {
  got: Uint8Array[] = [];
  bytes = 0;
  ended = false;
  closed = false;
  onData(_c: Conn, chunk: Uint8Array) {
    this.got.push(chunk);
    this.bytes += chunk.length;
  }
  onDrain() {}
  onEnd() {
    this.ended = true;
  }
  onClose() {
    this.closed = true;
  }
  text() {
    return Buffer.concat(this.got).toString();
  }
}

class Owner implements RelayOwner {
  toUpstream = 0;
  toClient = 0;
  closedWith: ErrorCode | null | undefined = undefined;
  relayBytes(_r: Relay, up: number, down: number) {
    this.toUpstream += up;
    this.toClient += down;
  }
  relayClosed(_r: Relay, code: ErrorCode | null) {
    this.closedWith = code;
  }
}

function setup(highWater = 64 * 1024) {
  const [farClient, client] = memoryPair({ highWater });
  const [upstream, farUpstream] = memoryPair({ highWater });
  const fc = new Far();
  const fu = new Far();
  farClient.setHandler(fc);
  farUpstream.setHandler(fu);
  const owner = new Owner();
  const relay = new Relay(client, upstream, owner);
  return { farClient, farUpstream, client, upstream, fc, fu, owner, relay };
}

async function until(pred: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

describe("Relay", () => {
  test("replays the preamble first, then moves bytes both ways and counts them", async () => {
    const s = setup();
    s.relay.start([new TextEncoder().encode("hello:")]);
    s.farClient.write(new TextEncoder().encode("up"));
    s.farUpstream.write(new TextEncoder().encode("down"));
    await until(() => s.fu.bytes === 8 && s.fc.bytes === 4, "both directions");
    expect(s.fu.text()).toBe("hello:up");
    expect(s.fc.text()).toBe("down");
    expect(s.owner.toUpstream).toBe(8);
    expect(s.owner.toClient).toBe(4);
  });

  test("a slow reader pauses the source; nothing is lost, nothing piles up", async () => {
    const s = setup(16 * 1024);
    s.relay.start([]);
    s.farUpstream.pause(); // the backend stops reading
    const chunk = new Uint8Array(8 * 1024).fill(7);
    for (let i = 0; i < 64; i++) s.farClient.write(chunk); // 512 KiB offered
    await until(() => (s.client as MemoryConn).paused, "client side paused by backpressure");
    // The relay holds no more than the upstream's high-water mark plus one chunk in flight.
    expect(s.upstream.writableLength).toBeLessThanOrEqual(16 * 1024 + chunk.length);
    s.farUpstream.resume();
    await until(() => s.fu.bytes === 64 * chunk.length, "everything arrives after resume");
  });

  test("FIN passes on as a half-close; the other direction keeps flowing; both FINs finish", async () => {
    const s = setup();
    s.relay.start([]);
    s.farClient.write(new TextEncoder().encode("req"));
    s.farClient.end();
    await until(() => s.fu.ended, "upstream sees FIN");
    expect(s.fu.text()).toBe("req");
    expect(s.owner.closedWith).toBeUndefined();
    s.farUpstream.write(new TextEncoder().encode("resp"));
    s.farUpstream.end();
    await until(() => s.fc.ended && s.owner.closedWith !== undefined, "client gets the response then FIN; relay finished");
    expect(s.fc.text()).toBe("resp");
    expect(s.owner.closedWith).toBeNull();
  });

  test("a side that goes away closes the other once it has flushed", async () => {
    const s = setup();
    s.relay.start([]);
    s.farUpstream.write(new TextEncoder().encode("last words"));
    await until(() => s.fc.bytes === 10, "delivered");
    s.farUpstream.close();
    await until(() => s.fc.closed && s.owner.closedWith !== undefined, "client side closed, relay finished");
  });

  test("abort closes both sides and reports the code", async () => {
    const s = setup();
    s.relay.start([]);
    s.relay.abort("IDLE_TIMEOUT");
    await until(() => s.fc.closed && s.fu.closed, "both far ends closed");
    expect(s.owner.closedWith).toBe("IDLE_TIMEOUT");
  });
});
