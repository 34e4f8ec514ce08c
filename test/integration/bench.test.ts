// The benchmark runs end to end on the local control plane (its smallest
// preset) and prints one well-formed JSON document. Its timings are never
// asserted: this machine is shared and noisy; docs/performance.md holds
// figures measured with care.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import t from "tap";
import { repoRoot } from "../../hack/cluster/binaries.ts";

const run = promisify(execFile);

t.test("npm run bench -- --preset tiny --json prints the figures the issue asks for", async (t) => {
  const out = await mkdtemp(path.join(tmpdir(), "netservice-bench-test-"));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  const { stdout, stderr } = await run(
    process.execPath,
    [path.join(repoRoot, "hack", "bench", "main.ts"), "--preset", "tiny", "--duration", "8", "--json", "--out", out],
    { cwd: repoRoot, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, LOG_LEVEL: "error" } },
  );
  t.comment(stderr.split("\n").filter((line) => line.startsWith("[bench]")).join("\n"));
  const result = JSON.parse(stdout) as Record<string, unknown>;

  const finite = (value: unknown, name: string) => t.ok(typeof value === "number" && Number.isFinite(value), `${name} is a finite number (${String(value)})`);
  const at = (dotted: string) => dotted.split(".").reduce<unknown>((obj, key) => (obj as Record<string, unknown> | undefined)?.[key], result);
  for (const key of [
    "ours.p50Ms",
    "ours.p99Ms",
    "kube.p50Ms",
    "kube.p99Ms",
    "floor.p50Ms",
    "floorReport.p50Ms",
    "floorReport.bytes",
    "agentProcess.reports.p50Ms",
    "oursEndpoints.p50Ms",
    "writesPerPodChange",
    "agentRssMb",
    "aggregatorRssMb",
    "convergeSeconds",
    "kubeConvergeSeconds",
    "podChanges.total",
  ]) {
    finite(at(key), key);
  }
  t.ok((at("ours.count") as number) > 0, "our side showed events");
  t.ok((at("kube.count") as number) > 0, "Kubernetes' side showed events");
  t.ok((at("floorReport.count") as number) > 0, "the report-sized floor was timed");
  t.ok((at("floorReport.bytes") as number) > 200, "the report-sized floor copies a real report");
  t.ok((at("agentProcess.reports.count") as number) > 0, "the agent process's hop is timed on its own");
  const apf = at("apf.classes") as Record<string, { priorityLevel: string }>;
  t.equal(apf.agent?.priorityLevel, apf["kube-endpointslice"]?.priorityLevel, "our agents queue where kube-controller-manager's controllers do");
  t.equal(apf.aggregator?.priorityLevel, apf["kube-endpointslice"]?.priorityLevel, "so does our aggregator");
  t.match(result.parameters, { preset: "tiny", nodes: 2, podsPerNode: 3, netServices: 1, durationSeconds: 8 });
  t.match(result.parameters, { churn: { creations: Number, deletions: Number, readinessFlips: Number, addressChanges: Number } });
  const chart = await readFile(result.chart as string, "utf8");
  t.match(chart, /<svg[^>]*>[\s\S]*<polyline[\s\S]*<\/svg>/, "the chart is an SVG with curves");
});
