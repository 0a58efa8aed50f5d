/**
 * The byte queue under the length-prefixed push decoders (tunnel control
 * messages, UDP records): chunks are kept by reference; a read returns a view
 * of one chunk when it fits in it and copies only when it spans chunks.
 */
export class ChunkQueue {
  private chunks: Uint8Array[] = [];
  private pos = 0;
  /** Bytes held. */
  length = 0;

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /**
   * The next `n` bytes (n <= length) without consuming them: a view of the
   * head chunk, or a copy (into `scratch` when given) when they span chunks.
   */
  peek(n: number, scratch?: Uint8Array): Uint8Array {
    const head = this.chunks[0]!;
    if (head.length - this.pos >= n) return head.subarray(this.pos, this.pos + n);
    const out = scratch ?? new Uint8Array(n);
    let filled = 0;
    for (let i = 0, p = this.pos; filled < n; i++, p = 0) {
      const c = this.chunks[i]!;
      const m = Math.min(n - filled, c.length - p);
      out.set(c.subarray(p, p + m), filled);
      filled += m;
    }
    return out;
  }

  /** Consumes `n` bytes (n <= length) and returns them: a view, or the one copy when they span chunks. */
  take(n: number): Uint8Array {
    const out = this.peek(n);
    this.skip(n);
    return out;
  }

  /**
   * Up to `max` bytes (length > 0) from the head chunk only, consumed: always a
   * view, never a copy (a payload handed on in pieces as they arrived).
   */
  takeHead(max: number): Uint8Array {
    const head = this.chunks[0]!;
    const n = Math.min(max, head.length - this.pos);
    const out = head.subarray(this.pos, this.pos + n);
    this.skip(n);
    return out;
  }

  /** Consumes `n` bytes (n <= length). */
  skip(n: number): void {
    this.length -= n;
    while (n > 0) {
      const c = this.chunks[0]!;
      const m = Math.min(n, c.length - this.pos);
      this.pos += m;
      n -= m;
      if (this.pos === c.length) {
        this.chunks.shift();
        this.pos = 0;
      }
    }
  }

  /** Everything held, as views (the head chunk from the read position); the queue is empty after. */
  drain(): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let i = 0; i < this.chunks.length; i++) {
      const c = i === 0 ? this.chunks[0]!.subarray(this.pos) : this.chunks[i]!;
      if (c.length > 0) out.push(c);
    }
    this.clear();
    return out;
  }

  clear(): void {
    this.chunks = [];
    this.pos = 0;
    this.length = 0;
  }
}
