// What the monitoring files (alerts, dashboard) may name: the metrics the
// programs register, read from their own registries, so a renamed metric
// breaks the tests that read those files.
//
//   exportedMetricNames().has("netservice_aggregator_leading")
//   metricNames('rate(netservice_api_requests_total[5m])')   // ["netservice_api_requests_total"]
import { Registry } from "prom-client";
import { agentMetrics } from "../../node-agent/probes.ts";
import { aggregatorMetrics } from "../../aggregator/probes.ts";
import { apiRequestMetrics } from "../../common/api-metrics.ts";

/** The names a scrape of either program can show, histograms with their _bucket, _sum and _count series. */
export function exportedMetricNames(): Set<string> {
  const agent = agentMetrics(() => undefined).registry;
  const aggregator = aggregatorMetrics(() => undefined).registry;
  const api = new Registry();
  apiRequestMetrics(api);
  const names = new Set<string>();
  for (const registry of [agent, aggregator, api]) {
    for (const metric of registry.getMetricsAsArray()) {
      if (String(metric.type) === "histogram") for (const suffix of ["_bucket", "_sum", "_count"]) names.add(metric.name + suffix);
      else names.add(metric.name);
    }
  }
  return names;
}

/** The netservice metrics a PromQL expression or series reads, each once: label names (in matchers and in by/on lists) are not metrics. */
export function metricNames(text: string): string[] {
  const withoutLabels = text
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  return [...new Set(withoutLabels.match(/\bnetservice_[a-z0-9_]+/g) ?? [])];
}
