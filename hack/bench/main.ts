// npm run bench -- [--preset tiny|quick|scale] [overrides] [--json]
//
// Runs one benchmark (hack/bench/run.ts) and prints a table, or with --json
// one JSON document on stdout; progress goes to stderr. The latency chart is
// written to <out>/latency-<preset>.svg. See docs/performance.md.
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { latencyChartSvg } from "./chart.ts";
import { BenchArgsError, parseBenchArgs, usage } from "./params.ts";
import { renderReport } from "./report.ts";
import type { BenchResult } from "./result.ts";
import { runBench } from "./run.ts";

process.exitCode = await main(process.argv.slice(2));

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseBenchArgs(argv);
  } catch (err) {
    if (!(err instanceof BenchArgsError)) throw err;
    process.stderr.write(`bench: ${err.message}\n`);
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(usage);
    return 0;
  }
  const { params, json } = parsed;
  const progress = (line: string) => process.stderr.write(`[bench] ${line}\n`);
  const { result: measured, samples } = await runBench(params, progress);

  await mkdir(params.outDir, { recursive: true });
  const chart = path.join(params.outDir, `latency-${params.preset}.svg`);
  const svg = latencyChartSvg({
    title: "Pod change to endpoint published: netservice vs Kubernetes",
    subtitle: `preset ${params.preset}: ${params.nodes} nodes, ${params.nodes * params.podsPerNode} pods, ${params.netServices} NetServices, ${params.durationSeconds} s of churn`,
    series: [
      { label: "ours: EndpointSlices", color: "#d62728", samples: samples.slices },
      { label: "ours: Endpoints", color: "#ff9896", samples: samples.endpoints },
      { label: "kube: template Service's EndpointSlice", color: "#1f77b4", samples: samples.kube },
      { label: "floor: ConfigMap write to watch", color: "#7f7f7f", samples: samples.floor },
    ],
  });
  await writeFile(chart, svg);
  const result: BenchResult = { ...measured, chart };
  process.stdout.write(json ? JSON.stringify(result, null, 2) + "\n" : renderReport(result));
  return 0;
}
