// Several runs of `npm run bench -- --json` as one Markdown table: each run's
// figures, ratios taken within each run, and the median of every row, which
// is how docs/performance.md and issue 13's targets state results.
//
//   node hack/bench/runs.ts run1.json run2.json run3.json
import { readFile } from "node:fs/promises";
import type { BenchResult } from "./result.ts";

type Row = { label: string; values: (result: BenchResult) => number | null; digits?: number };

/** The rows, in the order the targets name them. */
export const rows: Row[] = [
  { label: "load average (1 min) at start", values: (r) => r.environment.loadAverageBefore[0] ?? null, digits: 1 },
  { label: "ours: EndpointSlices p50 (ms)", values: (r) => r.ours.p50Ms },
  { label: "ours: EndpointSlices p99 (ms)", values: (r) => r.ours.p99Ms },
  { label: "kube: EndpointSlice p50 (ms)", values: (r) => r.kube.p50Ms },
  { label: "kube: EndpointSlice p99 (ms)", values: (r) => r.kube.p99Ms },
  { label: "ours / kube, p50", values: (r) => ratio(r.ours.p50Ms, r.kube.p50Ms), digits: 2 },
  { label: "ours / kube, p99", values: (r) => ratio(r.ours.p99Ms, r.kube.p99Ms), digits: 2 },
  { label: "ours: Endpoints p50 (ms)", values: (r) => r.oursEndpoints.p50Ms },
  { label: "first hop, every agent: p50 (ms)", values: (r) => r.oursReports.p50Ms },
  { label: "first hop, every agent: p99 (ms)", values: (r) => r.oursReports.p99Ms },
  { label: "first hop, agent process: p50 (ms)", values: (r) => r.agentProcess?.reports.p50Ms ?? null },
  { label: "first hop, agent process: p99 (ms)", values: (r) => r.agentProcess?.reports.p99Ms ?? null },
  { label: "floor, ConfigMap: p50 (ms)", values: (r) => r.floor.p50Ms },
  { label: "floor, ConfigMap: p99 (ms)", values: (r) => r.floor.p99Ms },
  { label: "floor, report-sized CR (apply): p50 (ms)", values: (r) => r.floorReport?.p50Ms ?? null },
  { label: "floor, report-sized CR (apply): p99 (ms)", values: (r) => r.floorReport?.p99Ms ?? null },
  { label: "ours p50 / ConfigMap floor p50", values: (r) => ratio(r.ours.p50Ms, r.floor.p50Ms), digits: 1 },
  { label: "kube p50 / ConfigMap floor p50", values: (r) => ratio(r.kube.p50Ms, r.floor.p50Ms), digits: 1 },
  { label: "address changes, ours p50 (ms)", values: (r) => r.addressChanges.slices.p50Ms },
  { label: "writes per pod change: ours", values: (r) => r.writesPerPodChange, digits: 2 },
  { label: "writes per pod change: kube", values: (r) => r.kubeWritesPerPodChange, digits: 2 },
  { label: "peak RSS, agent process (MB)", values: (r) => r.agentRssMb, digits: 0 },
  { label: "peak RSS, aggregator (MB)", values: (r) => r.aggregatorRssMb, digits: 0 },
  { label: "converged after bulk: ours (s)", values: (r) => r.convergeSeconds, digits: 1 },
  { label: "converged after bulk: kube (s)", values: (r) => r.kubeConvergeSeconds, digits: 1 },
  { label: "events missed: ours", values: (r) => r.ours.missed, digits: 0 },
  { label: "events missed: kube", values: (r) => r.kube.missed, digits: 0 },
];

export function runsTable(results: readonly BenchResult[]): string {
  const header = ["", ...results.map((_, i) => `run ${i + 1}`), "median"];
  const lines = [`| ${header.join(" | ")} |`, `|${header.map(() => "---").join("|")}|`];
  for (const row of rows) {
    const values = results.map(row.values);
    const cells = [...values, median(values)].map((value) => format(value, row.digits));
    lines.push(`| ${row.label} | ${cells.join(" | ")} |`);
  }
  return lines.join("\n") + "\n";
}

/** The middle value (mean of the two middle ones for an even count), ignoring missing values; null if none. */
export function median(values: readonly (number | null)[]): number | null {
  const sorted = values.filter((v): v is number => v !== null && Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function ratio(value: number, of: number): number | null {
  return of > 0 ? value / of : null;
}

function format(value: number | null, digits = 0): string {
  return value === null ? "-" : value.toFixed(digits);
}

if (import.meta.main) {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    process.stderr.write("usage: node hack/bench/runs.ts RESULT.json...\n");
    process.exitCode = 2;
  } else {
    const results = await Promise.all(files.map(async (file) => JSON.parse(await readFile(file, "utf8")) as BenchResult));
    process.stdout.write(runsTable(results));
  }
}
