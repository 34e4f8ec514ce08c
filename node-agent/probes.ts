// The agent's HTTP endpoints for the kubelet and Prometheus: /healthz (the
// process serves), /readyz (caches synced), /metrics.
//
//   const probes = await serveProbes({ port: 8080, agent, logger });
//   ... await probes.close();
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Logger } from "../common/log.ts";
import type { NodeAgentStats, ReportWritten } from "./agent.ts";

/** What the endpoints read of the agent. */
export interface ProbedAgent {
  readonly ready: boolean;
  readonly stats: NodeAgentStats;
}

export interface AgentMetrics {
  readonly registry: Registry;
  /** Pass as NodeAgentOptions.onReportWritten. */
  reportWritten(event: ReportWritten): void;
}

/** Metrics of one agent. Counters are read from agent.stats at scrape time. */
export function agentMetrics(agent: () => ProbedAgent | undefined): AgentMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const counter = (name: string, help: string, read: (stats: NodeAgentStats) => number) => {
    let reported = 0;
    return new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const stats = agent()?.stats;
        if (stats === undefined) return;
        const value = read(stats);
        if (value > reported) this.inc(value - reported);
        reported = value;
      },
    });
  };
  counter("netservice_agent_recomputes_total", "Recomputes of the node's report.", (s) => s.recomputes);
  counter("netservice_agent_report_writes_total", "Writes of the node's report that the API server accepted.", (s) => s.reportsWritten);
  counter("netservice_agent_failures_total", "Recomputes that failed and were retried after a backoff.", (s) => s.failures);
  counter("netservice_agent_warning_events_total", "Warning Events recorded on pods with malformed Multus annotations.", (s) => s.warningsRecorded);
  new Gauge({
    name: "netservice_agent_ready",
    help: "1 when the agent's caches are synced.",
    registers: [registry],
    collect() {
      this.set(agent()?.ready ? 1 : 0);
    },
  });
  const latency = new Histogram({
    name: "netservice_agent_report_latency_seconds",
    help: "From the first change a report write publishes to the API server accepting it.",
    buckets: [0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60],
    registers: [registry],
  });
  return {
    registry,
    reportWritten: (event) => latency.observe(Math.max(0, event.writtenAt - event.triggeredAt) / 1000),
  };
}

export interface ProbeServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function serveProbes(options: {
  port: number;
  agent: () => ProbedAgent | undefined;
  metrics: AgentMetrics;
  logger: Logger;
}): Promise<ProbeServer> {
  const { agent, metrics, logger } = options;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const reply = (code: number, body: string, type = "text/plain; charset=utf-8") => {
      res.writeHead(code, { "content-type": type });
      res.end(body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return reply(405, "method not allowed\n");
    if (path === "/healthz" || path === "/livez") return reply(200, "ok\n");
    if (path === "/readyz") {
      return agent()?.ready ? reply(200, "ok\n") : reply(503, "caches not synced\n");
    }
    if (path === "/metrics") {
      metrics.registry
        .metrics()
        .then((text) => reply(200, text, metrics.registry.contentType))
        .catch((err: unknown) => {
          logger.warn({ err }, "could not collect metrics");
          reply(500, "could not collect metrics\n");
        });
      return;
    }
    reply(404, "not found\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
