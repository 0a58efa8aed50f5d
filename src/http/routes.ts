/**
 * The http listener's route table (pure): Host + path → route.
 *
 * Host precedence is the SNI table's (router/route_table.ts): the exact name,
 * then the longest matching `*.suffix` wildcard (one or more labels before the
 * suffix, never the bare suffix), then `*`. Within one host pattern the route
 * with the longest `path_prefix` that the path starts with wins; when none of
 * a pattern's prefixes matches, lookup goes on to the next less specific
 * pattern, so `*` with path_prefix "/" catches what the named hosts leave.
 *
 * A path prefix matches on segment boundaries when it does not end in "/":
 * "/api" takes "/api", "/api/x" and "/api?q" but not "/apix" (nginx's
 * `location /api/` habit, without the trailing-slash trap).
 *
 * A Host that is an IP literal, or absent (HTTP/1.0), matches only `*`.
 */
import type { RouteBackends, RouteMatch } from "../router/mod.ts";
import type { RouteConfig } from "../config/types.ts";

/** One host pattern's routes, longest path_prefix first. */
type ByPrefix = RouteMatch[];

export class HttpRouteTable {
  private readonly exact = new Map<string, ByPrefix>();
  /** Wildcards, longest suffix first: [".example.com", routes]. */
  private readonly wild: [string, ByPrefix][] = [];
  private readonly any: ByPrefix = [];
  readonly size: number;

  constructor(matches: readonly RouteMatch[]) {
    this.size = matches.length;
    const wild = new Map<string, ByPrefix>();
    for (const m of matches) {
      const p = m.route.match;
      let list: ByPrefix;
      if (p === "*") list = this.any;
      else if (p.startsWith("*.")) {
        const suffix = p.slice(1);
        list = wild.get(suffix) ?? [];
        wild.set(suffix, list);
      } else {
        list = this.exact.get(p) ?? [];
        this.exact.set(p, list);
      }
      list.push(m);
    }
    const byLength = (a: RouteMatch, b: RouteMatch) => prefixOf(b).length - prefixOf(a).length;
    for (const l of this.exact.values()) l.sort(byLength);
    for (const [suffix, l] of wild) this.wild.push([suffix, l.sort(byLength)]);
    this.wild.sort((a, b) => b[0].length - a[0].length);
    this.any.sort(byLength);
  }

  /** `host`: canonical name without port, or null (IP literal, none). `path`: the request target's path (query allowed). */
  lookup(host: string | null, path: string): RouteMatch | null {
    if (host !== null) {
      const e = this.exact.get(host);
      if (e !== undefined) {
        const m = pick(e, path);
        if (m !== null) return m;
      }
      for (const [suffix, list] of this.wild) {
        if (host.length > suffix.length && host.endsWith(suffix)) {
          const m = pick(list, path);
          if (m !== null) return m;
        }
      }
    }
    return pick(this.any, path);
  }
}

function prefixOf(m: RouteMatch): string {
  return m.route.http?.pathPrefix ?? "/";
}

function pick(list: ByPrefix, path: string): RouteMatch | null {
  for (const m of list) if (pathMatches(prefixOf(m), path)) return m;
  return null;
}

/** Whether `path` (possibly with a query) falls under `prefix` on a segment boundary. */
export function pathMatches(prefix: string, path: string): boolean {
  if (!path.startsWith(prefix)) return false;
  if (prefix.endsWith("/") || path.length === prefix.length) return true;
  const next = path.charCodeAt(prefix.length);
  return next === 0x2f || next === 0x3f; // "/" or "?"
}

/** The table of one http listener: the routes that name it, in config order. */
export function compileHttpRoutes(routes: readonly RouteConfig[], listenerName: string, backends: readonly RouteBackends[]): HttpRouteTable {
  const matches: RouteMatch[] = [];
  routes.forEach((route, index) => {
    if (route.listeners.includes(listenerName)) matches.push({ route, index, backends: backends[index]! });
  });
  return new HttpRouteTable(matches);
}
