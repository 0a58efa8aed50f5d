/**
 * The registry's Lua scripts (run with EVALSHA, loaded with SCRIPT LOAD on
 * every connection). Each is one atomic step; key names are built inside
 * from the cluster prefix `P` = `edgemux:{<cluster>}`, whose hash tag puts
 * every key of one cluster in one slot, so the scripts also run on Redis
 * Cluster or Valkey cluster (one shard per edgemux cluster). The key layout
 * is in registry.ts.
 *
 * Every script that writes an edge's keys first checks the edge key's
 * `instance` field: 0 = the edge is not registered (its key expired, or
 * Redis restarted empty), -1 = another live process holds this edge_id.
 * Neither writes anything; the caller registers again or reports.
 */
import { createHash } from "node:crypto";

export interface Script {
  readonly name: string;
  readonly body: string;
  readonly sha: string;
}

function script(name: string, body: string): Script {
  return { name, body, sha: createHash("sha1").update(body).digest("hex") };
}

/** Shared Lua: the instance check, and space-separated session-id lists. */
const HEAD = `
local P, E, INST, TTL = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local EK = P .. ':edge:' .. E
local function owner()
  local cur = redis.call('HGET', EK, 'instance')
  if not cur then return 0 end
  if cur ~= INST then return -1 end
  return 1
end
local function drop(list, id)
  local out = {}
  for x in string.gmatch(list or '', '%S+') do if x ~= id then out[#out + 1] = x end end
  return table.concat(out, ' ')
end
local function add(list, id)
  for x in string.gmatch(list or '', '%S+') do if x == id then return list end end
  if list and list ~= '' then return list .. ' ' .. id end
  return id
end
local function expire_edge()
  for _, k in ipairs({EK, EK .. ':sess', EK .. ':svc', EK .. ':tok'}) do redis.call('PEXPIRE', k, TTL) end
end
`;

/**
 * REGISTER P E INST TTL advertise started version state → 1 | -1.
 * Replaces everything the edge had with `state`, JSON
 * `{"s": [[session_id, session_json, "svc1 svc2"], ...], "t": [[token, count], ...]}`.
 * An edge key held by another instance is left alone (-1).
 */
export const REGISTER = script(
  "register",
  HEAD +
    `
if owner() == -1 then return -1 end
local svk = EK .. ':svc'
for _, s in ipairs(redis.call('HKEYS', svk)) do redis.call('SREM', P .. ':svc:' .. s, E) end
redis.call('DEL', EK, EK .. ':sess', svk, EK .. ':tok')
redis.call('HSET', EK, 'instance', INST, 'advertise', ARGV[5], 'started', ARGV[6], 'version', ARGV[7])
local st = cjson.decode(ARGV[8])
local holders = {}
for _, s in ipairs(st.s) do
  redis.call('HSET', EK .. ':sess', s[1], s[2])
  for name in string.gmatch(s[3], '%S+') do holders[name] = add(holders[name], s[1]) end
end
for name, ids in pairs(holders) do
  redis.call('HSET', svk, name, ids)
  redis.call('SADD', P .. ':svc:' .. name, E)
end
for _, t in ipairs(st.t) do
  if t[2] > 0 then redis.call('HSET', EK .. ':tok', t[1], t[2]) end
end
expire_edge()
redis.call('SADD', P .. ':edges', E)
return 1
`,
);

/** HEARTBEAT P E INST TTL → 1 (renewed) | 0 (not registered) | -1 (another instance). */
export const HEARTBEAT = script(
  "heartbeat",
  HEAD +
    `
local o = owner()
if o ~= 1 then return o end
expire_edge()
redis.call('SADD', P .. ':edges', E)
return 1
`,
);

/**
 * SESSION P E INST TTL session_id session_json new_services old_services → 1 | 0 | -1.
 * Moves a session from `old_services` to `new_services` (space-separated);
 * an empty `session_json` removes the session.
 */
export const SESSION = script(
  "session",
  HEAD +
    `
local o = owner()
if o ~= 1 then return o end
local sk, svk, sid = EK .. ':sess', EK .. ':svc', ARGV[5]
for name in string.gmatch(ARGV[8], '%S+') do
  local rest = drop(redis.call('HGET', svk, name) or '', sid)
  if rest == '' then
    redis.call('HDEL', svk, name)
    redis.call('SREM', P .. ':svc:' .. name, E)
  else
    redis.call('HSET', svk, name, rest)
  end
end
if ARGV[6] == '' then
  redis.call('HDEL', sk, sid)
else
  redis.call('HSET', sk, sid, ARGV[6])
  for name in string.gmatch(ARGV[7], '%S+') do
    redis.call('HSET', svk, name, add(redis.call('HGET', svk, name) or '', sid))
    redis.call('SADD', P .. ':svc:' .. name, E)
  end
end
redis.call('PEXPIRE', sk, TTL)
redis.call('PEXPIRE', svk, TTL)
return 1
`,
);

/**
 * ACQUIRE P E INST TTL token max → 1 (taken) | 2 (refused: max reached) | 0 | -1.
 * Sums the token's sessions over live edges (dead edges' keys have expired,
 * and the edges index forgets them), then takes one on this edge.
 */
export const ACQUIRE = script(
  "acquire",
  HEAD +
    `
local o = owner()
if o ~= 1 then return o end
local tok, max = ARGV[5], tonumber(ARGV[6])
if max > 0 then
  local total = 0
  for _, x in ipairs(redis.call('SMEMBERS', P .. ':edges')) do
    local xk = P .. ':edge:' .. x
    if redis.call('EXISTS', xk) == 1 then
      total = total + tonumber(redis.call('HGET', xk .. ':tok', tok) or '0')
    else
      redis.call('SREM', P .. ':edges', x)
    end
  end
  if total >= max then return 2 end
end
redis.call('HINCRBY', EK .. ':tok', tok, 1)
redis.call('PEXPIRE', EK .. ':tok', TTL)
return 1
`,
);

/** RELEASE P E INST TTL token → 1 | 0 | -1. */
export const RELEASE = script(
  "release",
  HEAD +
    `
local o = owner()
if o ~= 1 then return o end
if redis.call('HINCRBY', EK .. ':tok', ARGV[5], -1) <= 0 then redis.call('HDEL', EK .. ':tok', ARGV[5]) end
return 1
`,
);

/** UNREGISTER P E INST TTL → 1 | 0 | -1: the edge's keys and index entries are removed. */
export const UNREGISTER = script(
  "unregister",
  HEAD +
    `
local o = owner()
if o ~= 1 then return o end
local svk = EK .. ':svc'
for _, s in ipairs(redis.call('HKEYS', svk)) do redis.call('SREM', P .. ':svc:' .. s, E) end
redis.call('DEL', EK, EK .. ':sess', svk, EK .. ':tok')
redis.call('SREM', P .. ':edges', E)
return 1
`,
);

/**
 * WHO_HOLDS P service → [edge_id, advertise, "sid1 sid2", ...] over live
 * edges; members of the service's index whose edge has expired are removed.
 */
export const WHO_HOLDS = script(
  "who_holds",
  `
local P, S = ARGV[1], ARGV[2]
local ik = P .. ':svc:' .. S
local out = {}
for _, e in ipairs(redis.call('SMEMBERS', ik)) do
  local ek = P .. ':edge:' .. e
  local adv = redis.call('HGET', ek, 'advertise')
  if not adv then
    redis.call('SREM', ik, e)
  else
    local ids = redis.call('HGET', ek .. ':svc', S)
    if ids then
      out[#out + 1] = e
      out[#out + 1] = adv
      out[#out + 1] = ids
    end
  end
end
return out
`,
);

/**
 * LIVE_EDGES P → [edge_id, advertise, started, version, sessions, ...];
 * members of the edges index whose key has expired are removed.
 */
export const LIVE_EDGES = script(
  "live_edges",
  `
local P = ARGV[1]
local out = {}
for _, e in ipairs(redis.call('SMEMBERS', P .. ':edges')) do
  local ek = P .. ':edge:' .. e
  local f = redis.call('HMGET', ek, 'advertise', 'started', 'version')
  if not f[1] then
    redis.call('SREM', P .. ':edges', e)
  else
    out[#out + 1] = e
    out[#out + 1] = f[1]
    out[#out + 1] = f[2] or ''
    out[#out + 1] = f[3] or ''
    out[#out + 1] = redis.call('HLEN', ek .. ':sess')
  end
end
return out
`,
);

export const SCRIPTS: readonly Script[] = [REGISTER, HEARTBEAT, SESSION, ACQUIRE, RELEASE, UNREGISTER, WHO_HOLDS, LIVE_EDGES];
