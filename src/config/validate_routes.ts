/**
 * [[routes]]: which backend a TLS connection goes to, by server name (and
 * optionally ALPN and listener). Either a list of targets, a tunnel service
 * (`tunnel:NAME`) or a sniproxy-style directory of unix sockets.
 */

import { isAbsolute, resolve } from "node:path";
import type { Address, BalanceMode, HboneRouteConfig, ListenerConfig, RouteConfig } from "./types.ts";
import { addressFrom, formatAddress } from "./address.ts";
import * as D from "./defaults.ts";
import { readDuration, readEnum, readInt, readString, readStringArray, readTable, readTableArray, reportDuplicates, type Entry } from "./fields.ts";
import { checkKeyPair, parseCertificate, readPemFile } from "./validate_tls.ts";
import { canonicalHostname, canonicalPattern } from "./hostname.ts";
import { OVERFLOW_NAME } from "../stats/mod.ts";
import { checkKeys, describe, didYouMean, type Issues, type RawTable } from "./issues.ts";

export const ROUTE_KEYS = [
  "name",
  "match",
  "alpn",
  "listeners",
  "targets",
  "balance",
  "connect_timeout",
  "proxy_protocol",
  "directory",
  "hbone",
  "path_prefix",
  "response_headers",
  "basic_auth",
] as const;

/** Route keys that only http listeners read. */
const HTTP_ROUTE_KEYS = ["path_prefix", "response_headers", "basic_auth"] as const;
/** RFC 9110 §5.6.2 token: a field name. */
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}$/;
/** Fields an operator may not set on responses: framing and hop-by-hop fields are the proxy's. */
const RESERVED_RESPONSE_FIELDS = ["connection", "content-length", "transfer-encoding", "keep-alive", "upgrade", "proxy-connection", "te", "trailer"];

export const HBONE_KEYS = ["cert", "key", "ca", "servername", "authority", "port"] as const;
const HBONE_SCHEME = "hbone://";
/** "tunnel:NAME": the route reaches the service NAME through the agent that exposes it. */
const TUNNEL_SCHEME = "tunnel:";

const PRINTABLE_ASCII = /^[\x21-\x7e]+$/;

export function readRoutes(is: Issues, raw: RawTable, listeners: readonly ListenerConfig[], baseDir: string): RouteConfig[] {
  // Deduplicated: a duplicate listener name is reported by the listener check, not once per route.
  const namesOf = (kind: ListenerConfig["kind"]) => [...new Set(listeners.filter((l) => l.kind === kind).map((l) => l.name))];
  const sniNames = namesOf("sni");
  const streamNames = namesOf("tcp");
  const udpNames = namesOf("udp");
  const httpNames = namesOf("http");
  const routable = [...sniNames, ...streamNames, ...udpNames, ...httpNames];
  const out: RouteConfig[] = [];
  const indexOf: number[] = [];
  for (const { value: t, index } of readTableArray(is, raw, "routes", "routes", D.MAX_ROUTES)) {
    const at = `routes[${index}]`;
    const r = readRoute(is, t, at, routable, baseDir);
    if (r === null) continue;
    const plain = r.listeners.filter((n) => streamNames.includes(n) || udpNames.includes(n));
    if (plain.length > 0) checkPlainRoute(is, r, at, plain, r.listeners.some((n) => udpNames.includes(n)));
    const http = r.listeners.filter((n) => httpNames.includes(n));
    if (http.length > 0) readHttpRoute(is, t, r, at, http, r.listeners.length > http.length);
    else for (const k of HTTP_ROUTE_KEYS) if (t[k] !== undefined) is.add(`${at}.${k}`, `only applies to routes of http listeners (name one in listeners)`);
    out.push(r);
    indexOf.push(index);
  }
  for (const name of [...streamNames, ...udpNames]) {
    if (!out.some((r) => r.listeners.includes(name))) {
      const i = listeners.findIndex((l) => l.name === name);
      is.add(`listeners[${i}]`, `a ${listeners[i]!.kind} listener forwards to the targets of a [[routes]] entry that names it: add one with match = "*" and listeners = ["${name}"]`);
    }
  }
  checkRouteNames(is, out, indexOf);
  checkShadowed(is, out, indexOf, sniNames);
  return out;
}

/**
 * A route of a tcp or udp listener: nothing on the connection names a host, so
 * the route matches everything ("*"), has no ALPN condition and no directory;
 * a udp route's targets are host:port or a tunnel service (datagrams go
 * neither to unix stream sockets nor through HBONE hops).
 */
function checkPlainRoute(is: Issues, r: RouteConfig, at: string, plain: readonly string[], udp: boolean): void {
  const which = plain.map((n) => describe(n)).join(", ");
  if (r.match !== "*") is.add(`${at}.match`, `must be "*" on a route of tcp/udp listener ${which}: plain TCP and UDP carry no server name to match`);
  if (r.alpn.length > 0) is.add(`${at}.alpn`, `does not apply to tcp/udp listener ${which}: there is no TLS ClientHello to read it from`);
  if (r.directory !== null) is.add(`${at}.directory`, `does not apply to tcp/udp listener ${which}: directory mode looks up the server name`);
  if (!udp) return;
  if (r.hbone !== undefined) is.add(`${at}.targets`, `a udp listener cannot forward through hbone:// hops (HTTP CONNECT carries streams, not datagrams)`);
  if (r.targets.some((a) => a.kind === "unix")) is.add(`${at}.targets`, `a udp listener forwards to host:port or tunnel:NAME targets, not unix sockets`);
  if (r.proxyProtocol !== "none") is.add(`${at}.proxy_protocol`, `does not apply to a udp listener (a PROXY header precedes a stream)`);
}

/**
 * A route of an http listener: matched by Host (match) and path_prefix, with
 * targets host:port, unix or tunnel:NAME spoken to in HTTP/1.1. What a TLS
 * ClientHello or a raw stream would need (alpn, directory, a PROXY header on
 * pooled connections shared by many clients, HBONE hops) does not apply.
 */
function readHttpRoute(is: Issues, t: RawTable, r: RouteConfig, at: string, http: readonly string[], mixed: boolean): void {
  const which = http.map((n) => describe(n)).join(", ");
  if (mixed) is.add(`${at}.listeners`, `a route of http listener ${which} cannot also name sni, tcp or udp listeners: give each its own route`);
  if (r.alpn.length > 0) is.add(`${at}.alpn`, `does not apply to http listener ${which}: routes match Host and path_prefix`);
  if (r.directory !== null) is.add(`${at}.directory`, `does not apply to http listener ${which}: use targets`);
  if (r.hbone !== undefined) is.add(`${at}.targets`, `http listener ${which} does not forward through hbone:// hops yet: use host:port, unix or tunnel:NAME targets`);
  if (r.proxyProtocol !== "none") {
    is.add(`${at}.proxy_protocol`, `does not apply to http listener ${which}: upstream connections are reused across clients, so the client travels in X-Forwarded-For and Forwarded instead`);
  }
  let pathPrefix = "/";
  const p = readString(is, t, "path_prefix", `${at}.path_prefix`);
  if (p !== null) {
    // RFC 3986 §3.3 path characters, percent-encoded as sent on the wire; no query or fragment.
    if (!p.startsWith("/") || p.length > D.MAX_PATH_PREFIX || !/^\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*$/.test(p)) {
      is.add(`${at}.path_prefix`, `must start with "/" and hold at most ${D.MAX_PATH_PREFIX} URL path characters (no "?" or "#"), got ${describe(p)}`);
    } else pathPrefix = p;
  }
  const responseHeaders: [string, string][] = [];
  if (t["response_headers"] !== undefined) {
    const h = readTable(is, t, "response_headers", `${at}.response_headers`);
    const names = Object.keys(h);
    if (names.length > D.MAX_RESPONSE_HEADERS) is.add(`${at}.response_headers`, `at most ${D.MAX_RESPONSE_HEADERS} fields, got ${names.length}`);
    for (const name of names.slice(0, D.MAX_RESPONSE_HEADERS)) {
      const field = `${at}.response_headers.${name}`;
      const v = h[name];
      if (!FIELD_NAME.test(name)) is.add(field, `a field name is a token (letters, digits, !#$%&'*+-.^_\`|~), got ${describe(name)}`);
      else if (RESERVED_RESPONSE_FIELDS.includes(name.toLowerCase())) is.add(field, `is set by the proxy (framing or hop-by-hop), not by a route`);
      else if (typeof v !== "string" || v.length > 4096 || !/^[\x20-\x7e]*$/.test(v) || v !== v.trim()) {
        is.add(field, `must be a string of at most 4096 printable ASCII characters without surrounding spaces, got ${describe(v)}`);
      } else responseHeaders.push([name, v]);
    }
  }
  let basicAuth: null | "any" | string[] = null;
  const b = t["basic_auth"];
  if (b === true) basicAuth = "any";
  else if (b === false || b === undefined) basicAuth = null;
  else if (Array.isArray(b)) {
    const names = readStringArray(is, t, "basic_auth", `${at}.basic_auth`, D.MAX_TOKENS);
    if (names.length === 0) is.add(`${at}.basic_auth`, "an empty list would refuse everyone: name [[tokens]] entries, or use true for any with role \"http\"");
    reportDuplicates(is, names, `${at}.basic_auth`);
    basicAuth = names.map((e) => e.value);
  } else is.add(`${at}.basic_auth`, `must be true, false or a list of [[tokens]] names, got ${describe(b)}`);
  r.http = { pathPrefix, responseHeaders, basicAuth };
}

function readRoute(is: Issues, t: RawTable, at: string, routable: readonly string[], baseDir: string): RouteConfig | null {
  checkKeys(is, t, at, ROUTE_KEYS);

  let match: string | null = null;
  const matchText = readString(is, t, "match", `${at}.match`, true);
  if (matchText !== null) {
    const r = canonicalPattern(matchText);
    if ("error" in r) is.add(`${at}.match`, r.error);
    else match = r.pattern;
  }

  const nameText = readString(is, t, "name", `${at}.name`);
  if (nameText !== null && !D.ROUTE_NAME.test(nameText)) {
    is.add(`${at}.name`, `must be 1..${D.MAX_ROUTE_NAME} of [A-Za-z0-9_.*:@/-], got ${describe(nameText)}`);
  } else if (nameText === OVERFLOW_NAME) {
    // Metric series past stats.max_routes share this label.
    is.add(`${at}.name`, `${describe(OVERFLOW_NAME)} is reserved for the metrics of routes past stats.max_routes`);
  }

  const alpn = readStringArray(is, t, "alpn", `${at}.alpn`, D.MAX_ALPN).filter(({ value, index }) => {
    // RFC 7301 §3.1: "opaque ProtocolName<1..2^8-1>"; ids in use are printable ASCII.
    if (value.length <= D.MAX_ALPN_BYTES && PRINTABLE_ASCII.test(value)) return true;
    is.add(`${at}.alpn[${index}]`, `must be 1..${D.MAX_ALPN_BYTES} printable ASCII characters, got ${describe(value)}`);
    return false;
  });
  reportDuplicates(is, alpn, `${at}.alpn`);

  const routeListeners = readStringArray(is, t, "listeners", `${at}.listeners`, D.MAX_LISTENERS).filter(({ value, index }) => {
    if (routable.includes(value)) return true;
    is.add(`${at}.listeners[${index}]`, `no sni, tcp, udp or http listener named ${describe(value)}${didYouMean(value, routable)}`);
    return false;
  });
  reportDuplicates(is, routeListeners, `${at}.listeners`);

  const targets: Entry<Address>[] = [];
  let hboneTargets = 0;
  let tunnel: string | null = null;
  let tunnelTargets = 0;
  const targetEntries = readStringArray(is, t, "targets", `${at}.targets`, D.MAX_TARGETS);
  for (const { value, index } of targetEntries) {
    if (value.startsWith(TUNNEL_SCHEME)) {
      tunnelTargets++;
      const service = value.slice(TUNNEL_SCHEME.length);
      if (D.TUNNEL_SERVICE.test(service)) tunnel = service;
      else is.add(`${at}.targets[${index}]`, `a tunnel target is "tunnel:NAME" with NAME of [a-z0-9][a-z0-9_.-]{0,62}, got ${describe(value)}`);
      continue;
    }
    // "hbone://host:port": an HBONE hop (HTTP/2 CONNECT over mTLS) rather than the backend itself.
    const hbone = value.startsWith(HBONE_SCHEME);
    if (hbone) hboneTargets++;
    const r = addressFrom(hbone ? value.slice(HBONE_SCHEME.length) : value, { allowPortZero: false, allowHostnames: true, allowUnix: !hbone });
    if ("error" in r) is.add(`${at}.targets[${index}]`, r.error);
    else targets.push({ value: r.address, index });
  }
  if (tunnelTargets > 0 && targetEntries.length > 1) {
    // The edge spreads a service's streams over every agent that exposes it: one target says it all.
    is.add(`${at}.targets`, `a "tunnel:NAME" target must be the route's only target`);
  }
  if (tunnelTargets > 0 && t["balance"] !== undefined) {
    is.add(`${at}.balance`, `does not apply to a tunnel target: streams are spread over the agents exposing the service`);
  }
  if (hboneTargets > 0 && hboneTargets < targetEntries.length) {
    is.add(`${at}.targets`, `mixes hbone:// hops with plain targets; a route's targets are all HBONE hops or none`);
  }
  let hbone: HboneRouteConfig | null = null;
  if (t["hbone"] !== undefined) {
    if (hboneTargets === 0) is.add(`${at}.hbone`, `only applies to a route whose targets are "hbone://host:port" hops`);
    hbone = readHbone(is, readTable(is, t, "hbone", `${at}.hbone`), `${at}.hbone`, baseDir);
  } else if (hboneTargets > 0) {
    is.add(`${at}.hbone`, `hbone:// targets need [routes.hbone] with cert, key and ca (the client certificate for the hop and the CA that signs the hop's)`);
  }
  reportDuplicates(is, targets.map((e) => ({ value: formatAddress(e.value), index: e.index })), `${at}.targets`);

  const directory = readDirectory(is, t, at, baseDir);
  // Presence, not validity: a bad entry is reported on its own, not as "missing".
  const hasTargets = t["targets"] !== undefined && !(Array.isArray(t["targets"]) && t["targets"].length === 0);
  const hasDirectory = t["directory"] !== undefined && t["directory"] !== "";
  if (hasTargets && hasDirectory) {
    is.add(at, "set either targets or directory, not both");
  } else if (!hasTargets && !hasDirectory) {
    is.add(at, `needs a non-empty targets list or a directory`);
  }
  // A knob that does nothing is a trap: balance picks among targets only.
  if (hasDirectory && !hasTargets && t["balance"] !== undefined) {
    is.add(`${at}.balance`, "only applies to targets, not to directory mode");
  }

  const balance: BalanceMode = readEnum(is, t, "balance", `${at}.balance`, D.BALANCE_MODES, "round_robin");
  const connectTimeoutMs = readDuration(is, t, "connect_timeout", `${at}.connect_timeout`, D.CONNECT_TIMEOUT);
  const proxyProtocol = readEnum(is, t, "proxy_protocol", `${at}.proxy_protocol`, D.PROXY_PROTOCOL_MODES, "none");

  if (match === null) return null;
  const route: RouteConfig = {
    name: nameText ?? match,
    match,
    alpn: alpn.map((e) => e.value),
    listeners: routeListeners.map((e) => e.value),
    targets: targets.map((e) => e.value),
    balance,
    connectTimeoutMs,
    proxyProtocol,
    directory,
  };
  if (hbone !== null) route.hbone = hbone;
  if (tunnel !== null) route.tunnel = tunnel;
  return route;
}

/** `[routes.hbone]`: the client side of an HBONE hop. */
function readHbone(is: Issues, t: RawTable, at: string, baseDir: string): HboneRouteConfig | null {
  checkKeys(is, t, at, HBONE_KEYS);
  const certFile = readPemFile(is, t, "cert", `${at}.cert`, baseDir, true);
  const keyFile = readPemFile(is, t, "key", `${at}.key`, baseDir, true);
  const caFile = readPemFile(is, t, "ca", `${at}.ca`, baseDir, true);
  const cert = certFile ? parseCertificate(is, `${at}.cert`, certFile) : null;
  if (keyFile) checkKeyPair(is, at, cert, keyFile);
  if (caFile) parseCertificate(is, `${at}.ca`, caFile);
  let servername = readString(is, t, "servername", `${at}.servername`);
  if (servername !== null) {
    const r = canonicalHostname(servername);
    if ("error" in r) {
      is.add(`${at}.servername`, r.error);
      servername = null;
    } else servername = r.name;
  }
  let authority = readString(is, t, "authority", `${at}.authority`);
  if (authority !== null) {
    const r = addressFrom(authority, { allowPortZero: false, allowHostnames: true, allowUnix: false });
    if ("error" in r) {
      is.add(`${at}.authority`, r.error);
      authority = null;
    } else authority = formatAddress(r.address);
  }
  const port = readInt(is, t, "port", `${at}.port`, D.HBONE_PORT);
  if (authority !== null && t["port"] !== undefined) is.add(`${at}.port`, "only applies when authority is not set (it is the port used with the SNI name)");
  if (certFile === null || keyFile === null || caFile === null) return null;
  return {
    certPath: certFile.path,
    keyPath: keyFile.path,
    caPath: caFile.path,
    cert: certFile.pem,
    key: keyFile.pem,
    ca: caFile.pem,
    servername,
    authority,
    port,
  };
}

/** "" means unset; a relative path is taken from the config file's directory and stored absolute. */
function readDirectory(is: Issues, t: RawTable, at: string, baseDir: string): string | null {
  const text = readString(is, t, "directory", `${at}.directory`);
  if (text === null || text === "") return null;
  if (text.length > D.MAX_DIRECTORY || text.includes("\0")) {
    is.add(`${at}.directory`, `must be a path of at most ${D.MAX_DIRECTORY} characters without NUL`);
    return null;
  }
  return isAbsolute(text) ? resolve(text) : resolve(baseDir, text);
}

function checkRouteNames(is: Issues, routes: readonly RouteConfig[], indexOf: readonly number[]): void {
  const seen = new Map<string, number>();
  routes.forEach((r, i) => {
    const prev = seen.get(r.name);
    if (prev === undefined) {
      seen.set(r.name, indexOf[i]!);
      return;
    }
    const hint = r.name === r.match ? " (name defaults to match; give one of them a name)" : "";
    is.add(`routes[${indexOf[i]}].name`, `${describe(r.name)} is already used by routes[${prev}]${hint}`);
  });
}

/**
 * Two routes with the same match, the same ALPN set and a listener in common:
 * the later one could never be chosen.
 */
function checkShadowed(is: Issues, routes: readonly RouteConfig[], indexOf: readonly number[], sniNames: readonly string[]): void {
  const seen = new Map<string, number>();
  routes.forEach((r, i) => {
    const alpnKey = [...r.alpn].sort().join("\n");
    const on = new Set(r.listeners.length > 0 ? r.listeners : sniNames);
    for (const listener of on) {
      const key = `${r.match}\0${alpnKey}\0${listener}\0${r.http?.pathPrefix ?? ""}`;
      const prev = seen.get(key);
      if (prev !== undefined) {
        const alpn = r.alpn.length === 0 ? "any alpn" : `alpn ${JSON.stringify([...r.alpn].sort())}`;
        is.add(
          `routes[${indexOf[i]}]`,
          `same match ${describe(r.match)}, ${alpn} and listener ${describe(listener)} as routes[${prev}]; it could never be chosen`,
        );
        return;
      }
      seen.set(key, indexOf[i]!);
    }
  });
}
