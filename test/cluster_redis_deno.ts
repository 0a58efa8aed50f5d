/**
 * The cluster registry cases on Deno (its Redis client is the npm
 * @redis/client): `deno run -A test/cluster_redis_deno.ts <redis://...> <unix:/...> [<rediss://...> <ca.pem>]`.
 * One "ok"/"FAIL" line per case.
 */
import { denoRuntime } from "../src/runtime/deno.ts";
import { redisCases } from "./cluster_redis_cases.ts";

const [tcpUrl, unixUrl, tlsUrl, caPath] = denoRuntime.args;
if (tcpUrl === undefined || unixUrl === undefined) throw new Error("usage: cluster_redis_deno.ts <redis://host:port> <unix:/path> [<rediss://host:port> <ca.pem>]");
const tls = tlsUrl !== undefined && caPath !== undefined ? { url: tlsUrl, caPath } : undefined;
let failed = 0;
for (const [name, fn] of Object.entries(redisCases)) {
  try {
    await fn({ tcpUrl, unixUrl, ...(tls !== undefined ? { tls } : {}) });
    console.log(`ok ${name}`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}: ${(err as Error).stack ?? err}`);
  }
}
denoRuntime.exit(failed === 0 ? 0 : 1);
