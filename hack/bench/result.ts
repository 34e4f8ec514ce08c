// The benchmark's result: one JSON document (what --json prints), from which
// the table and the chart are drawn.
import type { ApfClasses } from "./apf.ts";
import type { EventKind, Side, Summary } from "./latency.ts";
import type { ApfMode, BenchParams } from "./params.ts";

/** The events of the pods on the node whose agent runs as a process of its own. */
export const agentProcessGroup = "agent-process";

export type LatencyFigures = Summary & { missed: number };

export type ProcessFigures = {
  /** VmHWM at the end of the run: the most resident memory the process ever had. */
  peakRssMb: number;
  rssMb: number;
  cpuSecondsBulk: number;
  cpuSecondsChurn: number;
};

export type BenchResult = {
  parameters: BenchParams;
  environment: {
    cpus: number;
    loadAverageBefore: number[];
    loadAverageAfter: number[];
    node: string;
    kubernetes: string;
    kubeControllerManagerFlags: string[];
    startedAt: string;
    wallSeconds: number;
  };
  /** Our EndpointSlices, over the churn events Kubernetes' controller also shows (all but address changes). */
  ours: LatencyFigures & { multipleOfFloorP50: number };
  /** Our Endpoints, same events. */
  oursEndpoints: LatencyFigures;
  /** Every agent's node reports (our first hop), same events: the rest of ours is the aggregator's hop. */
  oursReports: LatencyFigures;
  /** The same events on the node of the agent that runs as a process of its own, with its own informers and clients. */
  agentProcess: { node: string; reports: LatencyFigures; slices: LatencyFigures };
  /** kube-controller-manager's EndpointSlice of the template Service, same events. */
  kube: LatencyFigures & { multipleOfFloorP50: number };
  /** A plain ConfigMap: write sent to watch event received. */
  floor: LatencyFigures;
  /** A NetServiceNodeReport the size of a real one (bytes of JSON), server-side applied: write sent to watch event received. */
  floorReport: LatencyFigures & { bytes: number };
  /** Where API Priority and Fairness put each side, as the API server classified a request of each (null if it was not asked). */
  apf: { mode: ApfMode; classes: ApfClasses | null };
  /** Secondary-address changes, which only our side shows. */
  addressChanges: { slices: LatencyFigures; endpoints: LatencyFigures; reports: LatencyFigures };
  byKind: Record<EventKind, Record<Side, LatencyFigures>>;
  podChanges: { total: number; kubeVisible: number; byKind: Record<EventKind, number>; skipped: number; failed: number };
  /** Our API writes (agents' reports + the aggregator's Services, Endpoints, slices, status, Events) per pod change, client-side counts. */
  writesPerPodChange: number;
  /** kube-controller-manager's endpointslice + endpoints controllers' writes per pod change they show, from the audit log (null without it). */
  kubeWritesPerPodChange: number | null;
  writes: {
    /** The agents' report writes (creates, applies, deletes of NetServiceNodeReports). */
    agents: number;
    /** The agents' heartbeat Lease renewals: per node and interval, not per pod change, so in no per-change figure. */
    agentHeartbeats: number;
    aggregator: number;
    aggregatorByKind: Record<string, number>;
    /** From the audit log: the same programs as the API server counted them. */
    apiServer: Record<string, number> | null;
  };
  /** The aggregator during churn, from its metrics: how much each reconcile carried and what held it up. */
  aggregatorWork: {
    reconciles: number;
    podChangesPerReconcile: number;
    /** Reconciles put off because the caches did not show the aggregator's previous writes yet. */
    staleCacheRequeues: number;
    meanReconcileMs: number;
    meanQueueWaitMs: number;
  };
  /** Object revisions each side's watchers received per pod change (what kube-proxy or DNS would process). */
  revisionsPerPodChange: Record<Side, number>;
  requests: {
    /** Every agent's requests by verb, client-side, churn phase. */
    agentsClientSide: Record<string, number>;
    /** The aggregator's requests by verb, client-side (its netservice_api_requests_total), churn phase. */
    aggregatorClientSide: Record<string, number>;
    /** Requests by program and verb as the API server logged them, churn phase (null without the audit log). */
    apiServer: Record<string, Record<string, number>> | null;
  };
  /** Peak RSS of the representative agent, a process of its own. */
  agentRssMb: number;
  agentCpuSeconds: number;
  aggregatorRssMb: number;
  processes: Record<string, ProcessFigures>;
  /** From the first pod created in bulk to every one shown ready on the side. */
  convergeSeconds: number | null;
  kubeConvergeSeconds: number | null;
  bulk: { pods: number; createSeconds: number; allRunningSeconds: number | null; missed: Record<Side, number> };
  chart: string;
};
