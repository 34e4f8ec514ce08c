// A throwaway Prometheus on 127.0.0.1 for the dashboard's check: Debian's
// prometheus binary as a child process, with a generated configuration that
// scrapes fixed loopback ports, its TSDB in a temporary directory removed on
// stop, and the two HTTP API calls the check makes.
//
//   const prometheus = await startPrometheus({ job: "netservice-metrics", targets, scrapeIntervalSeconds: 3 });
//   await prometheus.queryRange("up", { start, end, stepSeconds: 3 });
//   await prometheus.stop();
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { stringify } from "yaml";
import { z } from "zod";
import { freePort, startProcess } from "../cluster/process.ts";

export type ScrapeTarget = { port: number; /** Target labels, as a ServiceMonitor's relabelings would add them. */ labels: Record<string, string> };
export type TimeRange = { start: number; end: number; stepSeconds: number };
export type RangeSeries = { labels: Record<string, string>; /** [unix seconds, value] */ points: [number, number][] };

export interface LocalPrometheus {
  readonly url: string;
  readonly pid: number;
  queryRange(expr: string, range: TimeRange): Promise<RangeSeries[]>;
  /** The values of a label on series matching the selector within the range. */
  labelValues(label: string, selector: string, range: TimeRange): Promise<string[]>;
  stop(): Promise<void>;
}

/** The configuration: one job, a static target per port on 127.0.0.1, and nothing else. */
export function prometheusConfig(job: string, targets: readonly ScrapeTarget[], scrapeIntervalSeconds: number): string {
  return stringify({
    global: { scrape_interval: `${scrapeIntervalSeconds}s`, scrape_timeout: `${scrapeIntervalSeconds}s`, evaluation_interval: `${scrapeIntervalSeconds}s` },
    scrape_configs: [
      {
        job_name: job,
        metrics_path: "/metrics",
        static_configs: targets.map((target) => ({ targets: [`127.0.0.1:${target.port}`], labels: target.labels })),
      },
    ],
  });
}

export async function startPrometheus(options: { job: string; targets: readonly ScrapeTarget[]; scrapeIntervalSeconds: number }): Promise<LocalPrometheus> {
  const directory = await mkdtemp(path.join(os.tmpdir(), "netservice-prometheus-"));
  try {
    const config = path.join(directory, "prometheus.yml");
    await writeFile(config, prometheusConfig(options.job, options.targets, options.scrapeIntervalSeconds));
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const child = startProcess(
      "prometheus",
      "prometheus",
      [`--config.file=${config}`, `--storage.tsdb.path=${path.join(directory, "data")}`, `--web.listen-address=127.0.0.1:${port}`, "--log.level=warn"],
      path.join(directory, "prometheus.log"),
    );
    const stop = async () => {
      await child.stop();
      await rm(directory, { recursive: true, force: true });
    };
    try {
      await waitUntilReady(url, child);
    } catch (err) {
      await stop();
      throw err;
    }
    return {
      url,
      pid: child.pid,
      stop,
      async queryRange(expr, range) {
        const data = await api(url, "/api/v1/query_range", { query: expr, start: String(range.start), end: String(range.end), step: `${range.stepSeconds}s` }, matrixSchema);
        return data.result.map(({ metric, values }) => ({ labels: metric, points: values.map(([time, value]): [number, number] => [time, Number(value)]) }));
      },
      labelValues: (label, selector, range) => api(url, `/api/v1/label/${encodeURIComponent(label)}/values`, { "match[]": selector, start: String(range.start), end: String(range.end) }, z.array(z.string())),
    };
  } catch (err) {
    await rm(directory, { recursive: true, force: true });
    throw err;
  }
}

const matrixSchema = z.object({
  resultType: z.literal("matrix"),
  result: z.array(z.object({ metric: z.record(z.string(), z.string()), values: z.array(z.tuple([z.number(), z.string()])) })),
});

/** Prometheus' answer on success, its own error text otherwise (a PromQL error comes back as 400 with errorType bad_data). */
async function api<T>(url: string, endpoint: string, params: Record<string, string>, schema: z.ZodType<T>): Promise<T> {
  const response = await fetch(`${url}${endpoint}?${new URLSearchParams(params)}`);
  const body = (await response.json().catch(() => ({}))) as { status?: string; data?: unknown; errorType?: string; error?: string };
  if (body.status !== "success") throw new Error(`${endpoint} answered ${response.status}: ${body.errorType ?? "?"}: ${body.error ?? "no error text"}`);
  return schema.parse(body.data);
}

async function waitUntilReady(url: string, child: { running(): boolean; logTail(): string }): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (!child.running()) throw new Error(`prometheus exited during start-up:\n${child.logTail()}`);
    const ready = await fetch(`${url}/-/ready`).then((response) => response.ok, () => false);
    if (ready) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`prometheus was not ready within 60 s:\n${child.logTail()}`);
}
