export { Relay, type RelayOwner } from "./relay.ts";
export { coarseClock, tickClock } from "./clock.ts";
export { type InboundProxyResult, readInboundProxy } from "./inbound_proxy.ts";
