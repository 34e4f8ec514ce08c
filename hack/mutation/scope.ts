// What mutation testing covers: the pure code, the arrows of the pipeline
// (docs/testing.md), and the unit tests that reach it.
//
//   pureFiles                       the files Stryker mutates
//   unitTestsOfPureFiles            the test files it runs (each mutant: only those that executed it)
//   sampleFiles(files, n, seed)     n of them, the same n for the same seed
import { createHash } from "node:crypto";

/**
 * No I/O, no Kubernetes client, no clock of their own. Left out of common/:
 * kube/ (the client side), health-server.ts (an HTTP server), log.ts (pino,
 * random ids), api-metrics.ts (prom-client wiring) and program.ts (signals and
 * the process's life cycle). Left out of node-agent/: agent.ts (the informers,
 * queue and writes), main.ts and probes.ts.
 */
export const pureFiles: string[] = [
  "common/addresses.ts",
  "common/api.ts",
  "common/desired.ts",
  "common/desired-endpoints.ts",
  "common/desired-services.ts",
  "common/desired-slices.ts",
  "common/desired-status.ts",
  "common/endpoints-for-pod.ts",
  "common/json-equal.ts",
  "common/merge.ts",
  "common/network-status.ts",
  "common/networks.ts",
  "common/node-report.ts",
  "common/order.ts",
  "common/readiness.ts",
  "common/report-parts.ts",
  "common/selector.ts",
  "aggregator/ownership.ts",
  "aggregator/plan.ts",
  "node-agent/batch.ts",
  "node-agent/config.ts",
  "node-agent/heartbeat.ts",
  "node-agent/pod-cache.ts",
  "node-agent/pod-warnings.ts",
  "node-agent/progress.ts",
  "node-agent/report-object.ts",
  "node-agent/warning-limiter.ts",
];

/**
 * The unit tests that import a pure file, directly or through the module they
 * test. The rest (the simulator's, the kube plumbing's, the benchmark's, the
 * child-process ones) never execute a pure file and would only slow the dry run.
 */
export const unitTestsOfPureFiles: string[] = [
  "addresses",
  "aggregator-config",
  "aggregator-enqueue",
  "aggregator-events",
  "aggregator-pacing",
  "aggregator-plan",
  "desired",
  "endpoints-for-pod",
  "foreign-slices",
  "json-equal",
  "merge",
  "model",
  "network-status",
  "networks",
  "node-agent-batch",
  "node-agent-config",
  "node-agent-liveness",
  "node-agent-report",
  "node-agent-warnings",
  "node-liveness",
  "node-report",
  "order",
  "ownership",
  "pod-placement",
  "properties",
  "report-parts",
  "selector-readiness",
  "service-repair",
].map((name) => `test/unit/${name}.test.ts`);

/** n files chosen by the seed: a different sample for each commit, the same one when it is run again. */
export function sampleFiles(files: readonly string[], n: number, seed: string): string[] {
  const rank = (file: string) => createHash("sha256").update(`${seed}\0${file}`).digest("hex");
  return [...files]
    .sort((a, b) => (rank(a) < rank(b) ? -1 : 1))
    .slice(0, n)
    .sort();
}
