export { Relay, type RelayOwner } from "./relay.ts";
export { coarseClock, tickClock } from "./clock.ts";
