// Checks the Grafana dashboard (deploy/helm/netservice/dashboards/netservice.json)
// against a real Prometheus and real data, and draws what it shows:
//
//   1. Starts Debian's Prometheus (installed when missing, as root) on
//      127.0.0.1, scraping the two program processes of a benchmark run on
//      fixed ports every 3 s, with the target labels deploy/monitoring's
//      ServiceMonitor adds (job, namespace, pod, node, component).
//   2. Runs the benchmark (npm run bench; preset quick unless told), whose
//      sim-node-0 agent and aggregator serve /metrics on those ports.
//   3. Fills the dashboard's variables as Grafana would ($job from its
//      label_values query, $__rate_interval = 4 x the scrape interval) and
//      evaluates every query of every panel over the run with query_range;
//      prints each one's series count and fails if a query errors, returns
//      no series, or no value.
//   4. Draws the panels from that data (dashboard-chart.ts) and writes the
//      PNG with rsvg-convert (Debian's librsvg2-bin, installed when missing).
//
//   npm run monitoring:dashboard [-- --preset tiny|quick] [--png docs/dashboard.png]
import { execFileSync, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { freePort } from "../cluster/process.ts";
import { presets } from "../bench/params.ts";
import { dashboardSvg, type ChartPanel } from "./dashboard-chart.ts";
import { allPanels, dashboardFile, dashboardProblems, labelValuesVariables, panelQueries, parseDashboard, seriesName, type Dashboard } from "./dashboard-model.ts";
import { startPrometheus, type LocalPrometheus, type RangeSeries, type TimeRange } from "./dashboard-prometheus.ts";
import { ensureDebianCommand } from "./packages.ts";

const repoRoot = new URL("../../", import.meta.url).pathname;
const job = "netservice-metrics";
const scrapeIntervalSeconds = 3;

process.exitCode = await main(process.argv.slice(2));

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { preset: { type: "string", default: "quick" }, png: { type: "string", default: path.join(repoRoot, "docs", "dashboard.png") } } });
  const preset = presets[values.preset];
  if (!preset) throw new Error(`--preset ${values.preset}: choose one of ${Object.keys(presets).join(", ")}`);
  const dashboard = parseDashboard(JSON.parse(await readFile(dashboardFile, "utf8")));
  const problems = dashboardProblems(dashboard);
  if (problems.length > 0) throw new Error(`the dashboard is not well-formed:\n  ${problems.join("\n  ")}`);
  ensureDebianCommand({ command: "prometheus", package: "prometheus" });
  ensureDebianCommand({ command: "rsvg-convert", package: "librsvg2-bin" });

  const ports = { agent: await freePort(), aggregator: await freePort() };
  const prometheus = await startPrometheus({
    job,
    scrapeIntervalSeconds,
    targets: [
      { port: ports.agent, labels: { namespace: "netservice-system", pod: "netservice-agent-sim-node-0", node: "sim-node-0", component: "node-agent" } },
      { port: ports.aggregator, labels: { namespace: "netservice-system", pod: "netservice-aggregator-bench", component: "aggregator" } },
    ],
  });
  log(`prometheus (pid ${prometheus.pid}) on ${prometheus.url} scrapes 127.0.0.1:${ports.agent} (agent) and 127.0.0.1:${ports.aggregator} (aggregator) every ${scrapeIntervalSeconds} s`);
  const scratch = await mkdtemp(path.join(os.tmpdir(), "netservice-dashboard-"));
  try {
    const benchStart = Date.now() / 1000;
    await runBench(values.preset, ports, scratch);
    const benchEnd = Date.now() / 1000;
    const range = await scrapedWindow(prometheus, benchStart, benchEnd);
    const variables = await variableValues(dashboard, prometheus, range);
    log(`run scraped from ${new Date(range.start * 1000).toISOString()} to ${new Date(range.end * 1000).toISOString()}; variables: ${JSON.stringify(variables)}`);
    const { panels, failures } = await evaluate(dashboard, prometheus, range, variables);
    const run = `npm run bench -- --preset ${preset.preset} (${preset.nodes} nodes, ${preset.nodes * preset.podsPerNode} pods, ${preset.netServices} NetServices, ${preset.durationSeconds} s of churn)`;
    const svg = dashboardSvg({
      title: `${dashboard.title}: the Grafana dashboard's queries on a benchmark run`,
      subtitle: `${run}, commit ${commit()}, ${new Date(range.start * 1000).toISOString().slice(0, 10)}; Prometheus 2.42 scraping the sim-node-0 agent and the aggregator every ${scrapeIntervalSeconds} s; $__rate_interval=${variables.__rate_interval}; times UTC`,
      start: range.start,
      end: range.end,
      panels,
    });
    const svgFile = path.join(scratch, "dashboard.svg");
    await writeFile(svgFile, svg);
    execFileSync("rsvg-convert", ["--format=png", `--output=${values.png}`, svgFile]);
    log(`wrote ${values.png} (${Math.round((await stat(values.png)).size / 1024)} KiB)`);
    if (failures.length > 0) {
      process.stdout.write(`\nFAIL: ${failures.length} quer${failures.length === 1 ? "y" : "ies"} would show nothing:\n  ${failures.join("\n  ")}\n`);
      return 1;
    }
    process.stdout.write(`\nok: every query of every panel returned data\n`);
    return 0;
  } finally {
    await prometheus.stop();
    await rm(scratch, { recursive: true, force: true });
  }
}

/** The benchmark as its own process, as `npm run bench` runs it; its table and progress go to stderr. */
async function runBench(preset: string, ports: { agent: number; aggregator: number }, outDir: string): Promise<void> {
  const args = [path.join(repoRoot, "hack", "bench", "main.ts"), `--preset=${preset}`, `--agent-metrics-port=${ports.agent}`, `--aggregator-metrics-port=${ports.aggregator}`, `--out=${outDir}`];
  log(`running ${path.basename(process.execPath)} ${args.map((arg) => path.relative(repoRoot, arg) || arg).join(" ")}`);
  const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: ["ignore", 2, 2] });
  const code = await new Promise<number | string>((resolve) => child.on("exit", (exitCode, signal) => resolve(exitCode ?? signal ?? "unknown")));
  if (code !== 0) throw new Error(`the benchmark (pid ${child.pid}) exited with ${code}`);
}

/** From the first to the last successful scrape of any target within the run. */
async function scrapedWindow(prometheus: LocalPrometheus, start: number, end: number): Promise<TimeRange> {
  const up = await prometheus.queryRange(`up{job="${job}"} == 1`, { start, end, stepSeconds: scrapeIntervalSeconds });
  const times = up.flatMap((series) => series.points.map(([time]) => time));
  if (times.length === 0) throw new Error(`Prometheus never scraped the benchmark's programs (no up{job="${job}"} == 1 between ${start} and ${end})`);
  return { start: Math.min(...times), end: Math.max(...times), stepSeconds: scrapeIntervalSeconds };
}

/** As Grafana fills them: each label_values variable with its first value (sorted), and the interval variables for this range and scrape interval. */
async function variableValues(dashboard: Dashboard, prometheus: LocalPrometheus, range: TimeRange): Promise<Record<string, string>> {
  const values: Record<string, string> = {
    __interval: `${range.stepSeconds}s`,
    __rate_interval: `${Math.max(range.stepSeconds + scrapeIntervalSeconds, 4 * scrapeIntervalSeconds)}s`,
    __range: `${Math.round(range.end - range.start)}s`,
  };
  for (const variable of labelValuesVariables(dashboard)) {
    const found = (await prometheus.labelValues(variable.label, variable.selector, range)).sort();
    if (found.length === 0) throw new Error(`variable ${variable.name}: label_values(${variable.selector}, ${variable.label}) found nothing`);
    values[variable.name] = found[0] as string;
  }
  return values;
}

async function evaluate(dashboard: Dashboard, prometheus: LocalPrometheus, range: TimeRange, variables: Record<string, string>): Promise<{ panels: ChartPanel[]; failures: string[] }> {
  const failures: string[] = [];
  const results = new Map<number, { name: string; points: [number, number][] }[]>();
  for (const query of panelQueries(dashboard, variables)) {
    let series: RangeSeries[] = [];
    let outcome: string;
    try {
      series = await prometheus.queryRange(query.expr, range);
      const finite = series.some((each) => each.points.some(([, value]) => Number.isFinite(value)));
      outcome = `${series.length} series`;
      if (series.length === 0) failures.push(`"${query.panel.title}" ${query.refId}: no series`);
      else if (!finite) failures.push(`"${query.panel.title}" ${query.refId}: no value in ${series.length} series (all NaN)`);
      if (series.length > 0 && !finite) outcome += ", all NaN";
    } catch (err) {
      outcome = `error: ${err instanceof Error ? err.message : String(err)}`;
      failures.push(`"${query.panel.title}" ${query.refId}: ${outcome}`);
    }
    process.stdout.write(`${query.panel.title} [${query.refId}]: ${outcome}\n    ${query.expr}\n`);
    const drawn = results.get(query.panel.id) ?? [];
    drawn.push(...series.map((each) => ({ name: seriesName(query.legend, each.labels), points: each.points })));
    results.set(query.panel.id, drawn);
  }
  const panels = allPanels(dashboard).map((panel): ChartPanel => ({
    title: panel.title,
    unit: panel.fieldConfig?.defaults?.unit ?? "short",
    integer: panel.fieldConfig?.defaults?.decimals === 0,
    gridPos: panel.gridPos,
    row: panel.type === "row",
    series: results.get(panel.id) ?? [],
  }));
  return { panels, failures };
}

function commit(): string {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: repoRoot, encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

function log(line: string): void {
  process.stderr.write(`[dashboard] ${line}\n`);
}
