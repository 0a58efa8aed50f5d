/**
 * What SIGHUP may change. Routes, access lists, tokens (and tokens_file),
 * admin tokens, egress policy, connect rules, per-listener limits and logging
 * are swapped in place; anything bound to a socket or a thread count
 * (listeners' identity, address, kind, accept_proxy, TLS settings; workers;
 * the admin address and [admin.tls]) or sized at start-up (stats.max_routes)
 * needs a restart.
 */

import type { Config } from "./types.ts";
import { formatAddress, formatHostPort } from "./address.ts";

/** Every change that a reload cannot apply; empty means `next` can replace `old` live. */
export function reloadProblems(old: Config, next: Config): string[] {
  const problems: string[] = [];
  if (old.workers !== next.workers) {
    problems.push(`workers: changing the worker count needs a restart (${old.workers} -> ${next.workers})`);
  }
  const adminOf = (c: Config) => (c.admin.address === null ? "off" : formatHostPort(c.admin.address.hostname, c.admin.address.port));
  if (adminOf(old) !== adminOf(next)) {
    problems.push(`admin.address: changing the admin address needs a restart (${adminOf(old)} -> ${adminOf(next)})`);
  }
  // [[admin.tokens]] and admin.insecure apply to the next request; the certificate is handed to the server at bind time.
  const adminTlsOf = (c: Config) => (c.admin.tls === null ? "" : `${c.admin.tls.cert}\0${c.admin.tls.key}`);
  if (adminTlsOf(old) !== adminTlsOf(next)) problems.push("admin.tls: changing the admin API's certificate or key needs a restart");

  // The shared-memory stats slabs are sized by max_routes when workers start.
  if (old.stats.maxRoutes !== next.stats.maxRoutes) {
    problems.push(`stats.max_routes: resizing the stats slabs needs a restart (${old.stats.maxRoutes} -> ${next.stats.maxRoutes})`);
  }

  // The kernel relay's loop and pipe pool are set up when a worker starts.
  // One ACME manager runs in the supervisor from start to exit.
  const acmeOf = (c: Config) => (c.acme === null ? "off" : JSON.stringify({ ...c.acme, names: [] }));
  if (acmeOf(old) !== acmeOf(next)) problems.push("acme: changing [acme] (other than names) needs a restart");
  // The cluster registry connects and registers this edge once, at start.
  const clusterOf = (c: Config) => (c.cluster === null ? "off" : JSON.stringify(c.cluster));
  if (clusterOf(old) !== clusterOf(next)) problems.push("cluster: changing [cluster] needs a restart");
  const relayOf = (c: Config) => `mode ${c.relay.mode}, max_pipes ${c.relay.maxPipes}, promote_after ${c.relay.promoteAfter}`;
  if (relayOf(old) !== relayOf(next)) problems.push(`relay: changing [relay] needs a restart (${relayOf(old)} -> ${relayOf(next)})`);

  const nextByName = new Map(next.listeners.map((l, i) => [l.name, { l, i }]));
  const oldNames = new Set(old.listeners.map((l) => l.name));
  for (const o of old.listeners) {
    const n = nextByName.get(o.name);
    if (n === undefined) {
      problems.push(`listeners: removing or renaming listener "${o.name}" needs a restart`);
      continue;
    }
    const at = `listeners[${n.i}]`;
    const oa = formatAddress(o.address);
    const na = formatAddress(n.l.address);
    if (oa !== na) problems.push(`${at}.address: changing a bound address needs a restart (${oa} -> ${na})`);
    if (o.kind !== n.l.kind) problems.push(`${at}.kind: changing a listener's kind needs a restart (${o.kind} -> ${n.l.kind})`);
    if (o.acceptProxy !== n.l.acceptProxy) {
      problems.push(`${at}.accept_proxy: changing accept_proxy needs a restart (${o.acceptProxy} -> ${n.l.acceptProxy})`);
    }
    // TLS settings are handed to the socket at bind time: a new certificate, key or client CA needs a restart.
    // (An http listener's certificates are chosen per handshake and change on reload; only plain <-> TLS needs a restart.)
    const tlsOf = (l: typeof o) => ((l.kind === "connect" || l.kind === "tunnel") && l.tls ? [l.tls.cert, l.tls.key, l.tls.clientCa ?? "", l.tls.clientCert].join("\0") : "");
    if (tlsOf(o) !== tlsOf(n.l)) problems.push(`${at}.tls: changing a listener's certificate, key, client_ca or client_cert needs a restart`);
    const httpTlsOf = (l: typeof o) => (l.kind === "http" ? (l.tls === null ? "plain" : l.tls.acme ? "tls+acme" : "tls") : "");
    if (httpTlsOf(o) !== httpTlsOf(n.l)) problems.push(`${at}.tls: adding or removing [listeners.tls] or its acme on an http listener needs a restart (${httpTlsOf(o)} -> ${httpTlsOf(n.l)})`);
  }
  next.listeners.forEach((l, i) => {
    if (!oldNames.has(l.name)) problems.push(`listeners[${i}]: adding listener "${l.name}" needs a restart`);
  });
  return problems;
}
