// The result as tables for a terminal.
import { eventKinds, type Side } from "./latency.ts";
import type { BenchResult, LatencyFigures } from "./result.ts";

export function renderReport(result: BenchResult): string {
  const p = result.parameters;
  const env = result.environment;
  const lines: string[] = [];
  const churn = p.churn;
  lines.push(
    `netservice benchmark, preset ${p.preset}: ${p.nodes} nodes x ${p.podsPerNode} pods, ${p.netServices} NetServices; ` +
      `churn per second: ${churn.creations} creations, ${churn.deletions} deletions, ${churn.readinessFlips} readiness flips, ` +
      `${churn.addressChanges} address changes, for ${p.durationSeconds} s`,
    `programs ${p.programs}; agent debounce ${p.agentDebounceMs} ms, heartbeat ${p.agentHeartbeatSeconds} s, aggregator workers ${p.aggregatorWorkers}${p.aggregatorFlags.length ? ` ${p.aggregatorFlags.join(" ")}` : ""}; kube-controller-manager flags: ${env.kubeControllerManagerFlags.join(" ") || "defaults"}`,
    `${env.cpus} CPUs, load average ${env.loadAverageBefore[0]} before and ${env.loadAverageAfter[0]} after; Node ${env.node}, Kubernetes ${env.kubernetes}; ${env.wallSeconds} s in all`,
    `API priority (--apf ${result.apf.mode}): ${
      result.apf.classes
        ? Object.entries(result.apf.classes).map(([name, c]) => `${name} ${c.priorityLevel} (FlowSchema ${c.flowSchema})`).join(", ")
        : "not classified"
    }`,
    "",
  );

  lines.push("Latency from the write to the watch event showing it, churn phase (ms)");
  const head = ["", "events", "p50", "p90", "p99", "max", "missed", "x floor p50"];
  const row = (label: string, figures: LatencyFigures, floorP50: number) => [
    label,
    String(figures.count),
    ms(figures.p50Ms),
    ms(figures.p90Ms),
    ms(figures.p99Ms),
    ms(figures.maxMs),
    String(figures.missed),
    figures.count > 0 && floorP50 > 0 ? (figures.p50Ms / floorP50).toFixed(1) : "-",
  ];
  const floorP50 = result.floor.p50Ms;
  lines.push(
    ...table([
      head,
      row("ours: EndpointSlices", result.ours, floorP50),
      row("ours: Endpoints", result.oursEndpoints, floorP50),
      row("  ours, first hop: node reports, every agent", result.oursReports, floorP50),
      row(`  ours, first hop: agent process (${result.agentProcess.node})`, result.agentProcess.reports, floorP50),
      row(`  ours: EndpointSlices, pods on ${result.agentProcess.node}`, result.agentProcess.slices, floorP50),
      row("kube: template Service's EndpointSlice", result.kube, floorP50),
      row("floor: ConfigMap write -> watch", result.floor, floorP50),
      row(`floor: report-sized custom resource (${result.floorReport.bytes} B, apply) -> watch`, result.floorReport, floorP50),
      row("ours, address changes: EndpointSlices", result.addressChanges.slices, floorP50),
      row("ours, address changes: Endpoints", result.addressChanges.endpoints, floorP50),
    ]),
    "",
  );

  lines.push("By event (p50 / p99 ms; events)");
  const sides: [Side, string][] = [["reports", "ours: reports"], ["slices", "ours: slices"], ["endpoints", "ours: Endpoints"], ["kube", "kube: slices"]];
  lines.push(
    ...table([
      ["event", "count", ...sides.map(([, label]) => label)],
      ...eventKinds.map((kind) => [
        kind,
        String(result.podChanges.byKind[kind]),
        ...sides.map(([side]) => {
          const figures = result.byKind[kind][side];
          return figures.count === 0 ? "-" : `${ms(figures.p50Ms)} / ${ms(figures.p99Ms)}${figures.missed ? ` (${figures.missed} missed)` : ""}`;
        }),
      ]),
    ]),
    "",
  );

  const changes = result.podChanges;
  const apiServer = result.writes.apiServer;
  lines.push(
    `Cost during churn: ${changes.total} pod changes (${changes.kubeVisible} that Kubernetes' controllers show; ${changes.skipped} skipped for want of an idle pod, ${changes.failed} failed)`,
    ...table([
      ["", "writes", "per pod change", "watch events per change", "API server's count"],
      [
        "ours: agents' reports",
        String(result.writes.agents),
        per(result.writes.agents, changes.total),
        "",
        apiServer ? String(apiServer.agents) : "-",
      ],
      [
        "ours: aggregator",
        String(result.writes.aggregator),
        per(result.writes.aggregator, changes.total),
        `${result.revisionsPerPodChange.slices} slices, ${result.revisionsPerPodChange.endpoints} Endpoints`,
        apiServer ? String(apiServer.aggregator) : "-",
      ],
      ["ours: total", String(result.writes.agents + result.writes.aggregator), String(result.writesPerPodChange), "", ""],
      [
        "kube: endpointslice + endpoints controllers",
        apiServer ? String((apiServer["kube-endpointslice"] ?? 0) + (apiServer["kube-endpoints"] ?? 0)) : "-",
        result.kubeWritesPerPodChange === null ? "-" : String(result.kubeWritesPerPodChange),
        `${result.revisionsPerPodChange.kube} slices`,
        "",
      ],
    ]),
    `  aggregator writes by kind: ${Object.entries(result.writes.aggregatorByKind).map(([kind, count]) => `${kind} ${count}`).join(", ") || "none"}`,
    `  agents' heartbeat Lease renewals (per node, not per change; in no figure above): ${result.writes.agentHeartbeats}`,
    `  agents' requests by verb (client-side): ${formatCounts(result.requests.agentsClientSide)}`,
    `  aggregator's requests by verb (client-side): ${formatCounts(result.requests.aggregatorClientSide)}`,
    `  aggregator: ${result.aggregatorWork.reconciles} reconciles (${result.aggregatorWork.podChangesPerReconcile} pod changes each), ` +
      `${result.aggregatorWork.meanReconcileMs} ms each on average after ${result.aggregatorWork.meanQueueWaitMs} ms in the queue; ` +
      `${result.aggregatorWork.staleCacheRequeues} put off until the caches showed its own writes`,
  );
  if (result.requests.apiServer) {
    for (const [program, verbs] of Object.entries(result.requests.apiServer)) {
      if (Object.keys(verbs).length > 0) lines.push(`  API server, ${program}: ${formatCounts(verbs)}`);
    }
  }
  lines.push("");

  lines.push("Processes (peak RSS; CPU seconds in the bulk phase and in the churn phase)");
  const describe: Record<string, string> = {
    agent: "node agent of sim-node-0 (own process)",
    aggregator: "aggregator (own process)",
    main: `harness: ${p.nodes - 1} agents, simulation, observer`,
  };
  lines.push(
    ...table([
      ["", "peak RSS MB", "CPU s bulk", "CPU s churn"],
      ...Object.entries(result.processes).map(([name, figures]) => [
        describe[name] ?? name,
        String(figures.peakRssMb),
        String(figures.cpuSecondsBulk),
        String(figures.cpuSecondsChurn),
      ]),
    ]),
    "",
  );

  const bulk = result.bulk;
  lines.push(
    `Bulk creation of ${bulk.pods} pods: created in ${bulk.createSeconds} s, all running after ${bulk.allRunningSeconds ?? "-"} s; ` +
      `shown ready on our EndpointSlices after ${result.convergeSeconds ?? "- (missed some)"} s, on Kubernetes' after ${result.kubeConvergeSeconds ?? "- (missed some)"} s`,
    `Chart: ${result.chart}`,
  );
  return lines.join("\n") + "\n";
}

function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => "  " + row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join("  ").trimEnd());
}

function ms(value: number): string {
  return value >= 100 ? String(Math.round(value)) : value.toFixed(value >= 10 ? 0 : 1).replace(/\.0$/, "");
}

function per(value: number, changes: number): string {
  return changes > 0 ? (value / changes).toFixed(2) : "-";
}

function formatCounts(counts: Record<string, number>): string {
  return Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)).map(([verb, count]) => `${verb} ${count}`).join(", ") || "none";
}
