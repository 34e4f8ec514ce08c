// The agent's Prometheus metrics, served by common/health-server.ts with
// /healthz and /readyz (caches synced). API request counts come from
// common/api-metrics.ts.
//
//   const metrics = agentMetrics(() => agent);   // pass metrics.reportWritten as NodeAgentOptions.onReportWritten
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
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
  new Gauge({
    name: "netservice_agent_report_age_seconds",
    help: "Seconds since this agent last wrote its node's report (a report that needs no change is not rewritten, so a quiet node's age grows).",
    registers: [registry],
    collect() {
      const written = agent()?.stats.lastWriteTime;
      if (written !== undefined) this.set(Math.max(0, Date.now() - written) / 1000);
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
