/**
 * The agent's status endpoint (`--status 127.0.0.1:9902`): `GET /status` is
 * JSON (connection state, session, services and forwards with their streams
 * and bytes, the last error); `GET /metrics` the same in Prometheus text
 * format with the process_* metrics (metrics.ts); `GET /healthz` is 200
 * while a session is up, 503 otherwise.
 */
import type { HttpServer, Runtime } from "../runtime/types.ts";
import type { Agent } from "./agent.ts";
import { AgentMetrics, PROMETHEUS_CONTENT_TYPE } from "./metrics.ts";

export function statusHandler(agent: Agent): (req: Request) => Response {
  const metrics = new AgentMetrics(agent);
  return (req) => {
    const path = new URL(req.url).pathname;
    if (req.method !== "GET") return new Response("method not allowed\n", { status: 405 });
    if (path === "/status") return Response.json(agent.status());
    if (path === "/metrics") return new Response(metrics.render(), { headers: { "content-type": PROMETHEUS_CONTENT_TYPE } });
    if (path === "/healthz") {
      const up = agent.state === "connected";
      return new Response(up ? "ok\n" : `${agent.state}\n`, { status: up ? 200 : 503 });
    }
    return new Response("not found: try /status, /metrics or /healthz\n", { status: 404 });
  };
}

export async function startStatus(rt: Runtime, agent: Agent, address: { hostname: string; port: number }): Promise<HttpServer> {
  return await rt.serveHttp({ hostname: address.hostname, port: address.port, fetch: statusHandler(agent) });
}
