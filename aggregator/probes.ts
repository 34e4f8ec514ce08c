// The aggregator's Prometheus metrics, served by common/health-server.ts with
// /healthz and /readyz (caches synced; a standby is ready too, so that a
// rolling update proceeds). API request counts come from common/api-metrics.ts.
//
//   const metrics = aggregatorMetrics(() => aggregator);   // pass metrics.reconciled as AggregatorOptions.onReconciled
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { AggregatorMetrics, Reconciled } from "./aggregator.ts";

/** What the endpoints read of the aggregator. */
export interface ProbedAggregator {
  readonly ready: boolean;
  metrics(): AggregatorMetrics;
}

export interface AggregatorRegistry {
  readonly registry: Registry;
  /** Pass as AggregatorOptions.onReconciled. */
  reconciled(event: Reconciled): void;
}

/** Metrics of one aggregator: counters and gauges read from aggregator.metrics() at scrape time, and a histogram. */
export function aggregatorMetrics(aggregator: () => ProbedAggregator | undefined): AggregatorRegistry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const read = () => aggregator()?.metrics();
  // Counters only go up: each scrape adds what the aggregator counted since the last.
  const reported = new Map<string, number>();
  const advance = (counter: Counter<string>, id: string, value: number, labels: Record<string, string> = {}) => {
    const before = reported.get(id) ?? 0;
    if (value > before) counter.inc(labels, value - before);
    reported.set(id, value);
  };
  new Counter({
    name: "netservice_aggregator_writes_total",
    help: "Writes the API server accepted, by kind (Service, Endpoints, EndpointSlice, NetService/status, Event) and verb.",
    labelNames: ["kind", "verb"],
    registers: [registry],
    collect() {
      for (const { kind, verb, count } of read()?.writes ?? []) advance(this, `${kind} ${verb}`, count, { kind, verb });
    },
  });
  const simple = (name: string, help: string, pick: (m: AggregatorMetrics) => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const metrics = read();
        if (metrics) advance(this, name, pick(metrics));
      },
    });
  simple("netservice_aggregator_write_failures_total", "Writes that failed.", (m) => m.writeFailures);
  simple("netservice_aggregator_reconciles_total", "Reconciles of a NetService.", (m) => m.reconciles);
  simple("netservice_aggregator_reconcile_errors_total", "Reconciles that failed and were retried with backoff.", (m) => m.reconcileErrors);
  simple(
    "netservice_aggregator_stale_cache_requeues_total",
    "Reconciles postponed because the caches did not show the aggregator's own writes yet.",
    (m) => m.staleCacheRequeues,
  );
  const gauge = (name: string, help: string, pick: (m: AggregatorMetrics) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        const metrics = read();
        this.set(metrics ? pick(metrics) : 0);
      },
    });
  gauge("netservice_aggregator_leading", "1 while this replica is the leader and writes.", (m) => (m.leading ? 1 : 0));
  gauge("netservice_aggregator_ready", "1 when the caches are synced.", (m) => (m.ready ? 1 : 0));
  gauge("netservice_aggregator_queue_depth", "NetServices waiting to be reconciled.", (m) => m.queueDepth);
  gauge("netservice_aggregator_queue_delayed", "NetServices waiting for a retry or recheck delay.", (m) => m.queueDelayed);
  gauge("netservice_aggregator_endpoints_ready", "Pods published as ready by all NetServices (a pod counts once per NetService).", (m) => m.endpointsPublished.ready);
  gauge("netservice_aggregator_endpoints_not_ready", "Pods published as not ready by all NetServices.", (m) => m.endpointsPublished.notReady);
  const rejected = new Counter({
    name: "netservice_aggregator_rejected_endpoints_total",
    help: "Reported endpoints not published because the pod runs on another node than the reporting one (reason other-node) or does not exist (reason not-found); once per node and pod.",
    labelNames: ["reason"],
    registers: [registry],
    collect() {
      const metrics = read();
      if (!metrics) return;
      advance(rejected, "rejected other-node", metrics.rejectedEndpoints.otherNode, { reason: "other-node" });
      advance(rejected, "rejected not-found", metrics.rejectedEndpoints.notFound, { reason: "not-found" });
    },
  });
  simple("netservice_aggregator_pod_reads_total", "GETs of pods to check that they run on the node reporting them (one per pod lifetime at most).", (m) => m.podReads);
  const problems = ["NodeNotReady", "NodeUnreachable", "AgentHeartbeatStale", "AgentHeartbeatMissing"] as const;
  new Gauge({
    name: "netservice_aggregator_unhealthy_nodes",
    help: "Nodes whose endpoints are published not ready, by problem (NodeNotReady, NodeUnreachable, AgentHeartbeatStale, AgentHeartbeatMissing).",
    labelNames: ["problem"],
    registers: [registry],
    collect() {
      const counts = new Map((read()?.unhealthyNodes ?? []).map(({ problem, count }) => [problem, count]));
      for (const problem of problems) this.set({ problem }, counts.get(problem) ?? 0);
    },
  });
  new Gauge({
    name: "netservice_aggregator_netservice_ready",
    help:
      "Per NetService, exported by the leader: 1 while its Ready condition is True, else 0; reason is the condition's reason (NotObserved before the first status).",
    // Not "namespace": Prometheus' target label of that name is the aggregator's own namespace.
    labelNames: ["netservice_namespace", "netservice", "reason"],
    registers: [registry],
    collect() {
      // Each scrape shows the NetServices that exist now, with their current reason only.
      this.reset();
      for (const { namespace, name, ready, reason } of read()?.netServices ?? []) {
        this.set({ netservice_namespace: namespace, netservice: name, reason }, ready ? 1 : 0);
      }
    },
  });
  const duration = new Histogram({
    name: "netservice_aggregator_reconcile_duration_seconds",
    help: "Time of one reconcile of a NetService, writes included.",
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const queued = new Histogram({
    name: "netservice_aggregator_queue_wait_seconds",
    help: "From a NetService becoming due to a worker taking it.",
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  return {
    registry,
    reconciled(event) {
      duration.observe(event.workMs / 1000);
      queued.observe(event.queuedMs / 1000);
    },
  };
}
