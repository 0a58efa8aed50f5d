/**
 * Connection ids: one compact id per client connection (or tunnel stream that
 * starts one), logged as `conn` by every process the connection passes
 * through. The edge puts it in the tunnel open request so the agent's record
 * of the stream carries the same id (DESIGN.md "Tunnel session").
 *
 *   <tag>.<boot>.<n>     e.g. w1.k3f9.2s   (edge worker 1)   a.0q7x.1 (an agent)
 *
 * `tag` names the process role (`w<worker id>` on the edge, `a` in an agent),
 * `boot` is four base36 characters drawn once when this module loads (per
 * worker thread: ids stay distinct across worker restarts and process
 * restarts without a clock or crypto call per connection), `n` a base36
 * counter. Per connection: one increment, one toString, one concatenation.
 *
 * Module state, one per JavaScript realm: each worker thread is one realm. Tests
 * that run several data planes in one realm share the counter (ids stay unique).
 */

const BOOT = Math.floor(Math.random() * 36 ** 4).toString(36).padStart(4, "0");

let prefix = `x.${BOOT}.`;
let counter = 0;

/** Names this realm's ids: `w<id>` for an edge worker, `a` for an agent. */
export function setConnIdTag(tag: string): void {
  prefix = `${tag}.${BOOT}.`;
}

/** A new connection id. */
export function nextConnId(): string {
  counter++;
  return prefix + counter.toString(36);
}

/**
 * A new connection's number only: the hot accept path takes this and builds
 * the text with `connIdText` when a log record or a tunnel open needs it
 * (most connections are never logged when connection logging is off).
 */
export function nextConnSeq(): number {
  return ++counter;
}

/** The id text for a number from `nextConnSeq` (the tag in force now: it is set once, before any connection). */
export function connIdText(seq: number): string {
  return prefix + seq.toString(36);
}
