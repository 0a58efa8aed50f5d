/**
 * HBONE identity policy: which workload (the SPIFFE ID in its client
 * certificate) may open a tunnel to which destination.
 *
 * - No `[[connect_rules]]` for the listener: the client must be in the
 *   listener's own trust domain and namespace (Istio's default for a
 *   workload's waypoint: same namespace).
 * - With rules: allowed when one rule matches the identity and the
 *   destination. A rule's identity pattern globs within path segments
 *   ("spiffe://td/ns/<any>/sa/<any>" written with "*"); its destinations
 *   are "host-pattern:port" or CIDRs (matched against the address dialled).
 */
import type { ConnectRuleConfig } from "../config/types.ts";
import { CidrSet, parseAddressInto } from "./cidr.ts";

export interface SpiffeId {
  uri: string;
  trustDomain: string;
  /** From a /ns/<ns>/... path; null for other path shapes. */
  namespace: string | null;
  serviceAccount: string | null;
}

/** spiffe://<trust-domain>/<path> (SPIFFE-ID spec §2); null for anything else. */
export function parseSpiffeId(uri: string): SpiffeId | null {
  if (!uri.startsWith("spiffe://") || uri.length > 2048) return null;
  const rest = uri.slice(9);
  const slash = rest.indexOf("/");
  const trustDomain = slash < 0 ? rest : rest.slice(0, slash);
  if (!/^[a-z0-9._-]+$/.test(trustDomain)) return null;
  const path = slash < 0 ? "" : rest.slice(slash);
  const m = /^\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(path) ?? /^\/ns\/([^/]+)(?:\/.*)?$/.exec(path);
  return { uri, trustDomain, namespace: m?.[1] ?? null, serviceAccount: m?.[2] ?? null };
}

/** First SPIFFE URI SAN of a certificate's URIs. */
export function spiffeFromUris(uris: readonly string[]): SpiffeId | null {
  for (const u of uris) {
    const id = parseSpiffeId(u);
    if (id) return id;
  }
  return null;
}

interface CompiledRule {
  identity: RegExp;
  any: boolean;
  hosts: { pattern: string; port: number | null }[];
  cidrs: CidrSet;
}

const scratch = new Uint32Array(4);

export type IdentityDecision = { ok: true } | { ok: false; reason: string };

export class IdentityPolicy {
  private readonly rules: CompiledRule[];

  /** `rules`: those for this listener; `own`: the listener's trust domain and namespace (null when unknown). */
  constructor(rules: readonly ConnectRuleConfig[], private readonly own: { trustDomain: string | null; namespace: string | null }) {
    this.rules = rules.map(compileRule);
  }

  get hasRules(): boolean {
    return this.rules.length > 0;
  }

  /** Before resolution: could any rule (or the default) let this identity through at all? */
  identityMayPass(id: SpiffeId): IdentityDecision {
    if (this.rules.length === 0) return this.defaultDecision(id);
    if (this.rules.some((r) => r.identity.test(id.uri))) return { ok: true };
    return { ok: false, reason: `${id.uri} matches no [[connect_rules]] identity` };
  }

  /** The full decision, with the address that will be dialled. */
  allows(id: SpiffeId, host: string, port: number, address: string): IdentityDecision {
    if (this.rules.length === 0) return this.defaultDecision(id);
    const haveAddr = parseAddressInto(address, scratch);
    for (const r of this.rules) {
      if (!r.identity.test(id.uri)) continue;
      if (r.any) return { ok: true };
      for (const h of r.hosts) if ((h.port === null || h.port === port) && hostMatch(h.pattern, host)) return { ok: true };
      if (haveAddr && r.cidrs.containsWords(scratch)) return { ok: true };
    }
    return { ok: false, reason: `no [[connect_rules]] lets ${id.uri} reach ${host}:${port}` };
  }

  private defaultDecision(id: SpiffeId): IdentityDecision {
    const { trustDomain, namespace } = this.own;
    if (trustDomain === null || namespace === null) return { ok: false, reason: "the listener has no trust domain and namespace, and no [[connect_rules]]" };
    if (id.trustDomain !== trustDomain) return { ok: false, reason: `trust domain ${id.trustDomain} is not ${trustDomain}` };
    if (id.namespace !== namespace) return { ok: false, reason: `namespace ${id.namespace ?? "(none)"} is not ${namespace}` };
    return { ok: true };
  }
}

function compileRule(r: ConnectRuleConfig): CompiledRule {
  // "*" alone: any identity. Otherwise "*" matches within one segment (no "/").
  const identity = r.identity === "*" ? /^spiffe:\/\// : new RegExp("^" + r.identity.split("*").map(escapeRe).join("[^/]*") + "$");
  const hosts: CompiledRule["hosts"] = [];
  const cidrs: string[] = [];
  for (const d of r.destinations) {
    if (d.includes("/")) {
      cidrs.push(d);
      continue;
    }
    const colon = d.lastIndexOf(":");
    let host = d.slice(0, colon);
    if (host.startsWith("[")) host = host.slice(1, -1);
    const port = d.slice(colon + 1);
    hosts.push({ pattern: host, port: port === "*" ? null : Number(port) });
  }
  return { identity, any: r.destinations.length === 0, hosts, cidrs: CidrSet.parse(cidrs, "connect_rules.destinations") };
}

function hostMatch(pattern: string, host: string): boolean {
  if (pattern === "*") return true;
  if (pattern.startsWith("*.")) return host.length > pattern.length - 1 && host.endsWith(pattern.slice(1));
  return pattern === host;
}

function escapeRe(s: string): string {
  return s.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
}
