// deploy/monitoring's alerts and their promtool tests name only metrics the
// programs export: a renamed metric must break this test, not silently turn an
// alert into one that never fires.
import t from "tap";
import { readFile } from "node:fs/promises";
import { parse, parseAllDocuments } from "yaml";
import { exportedMetricNames, metricNames } from "../helpers/exported-metrics.ts";

const root = new URL("../../", import.meta.url);

t.test("every netservice metric in the alerts and their tests is one the programs export", async (t) => {
  const exported = exportedMetricNames();
  const rules = await alertRules();
  const tests = parse(await readFile(new URL("deploy/monitoring/alerts.test.yaml", root), "utf8")) as AlertTests;
  const places: [string, string][] = [
    ...rules.map((rule): [string, string] => [`alert ${rule.alert}`, rule.expr]),
    ...tests.tests.flatMap((group) => [
      ...(group.input_series ?? []).map((input): [string, string] => [`input of "${group.name}"`, input.series]),
      ...(group.promql_expr_test ?? []).map((test): [string, string] => [`promql test of "${group.name}"`, test.expr]),
    ]),
  ];
  t.ok(rules.length >= 6, "the alerts are read");
  for (const [place, text] of places) {
    const names = metricNames(text);
    if (place.startsWith("alert")) t.ok(names.length > 0, `${place} reads a netservice metric`);
    for (const name of names) t.ok(exported.has(name), `${place}: ${name} is exported`);
  }
});

t.test("the check finds a metric that is not exported, and histogram series by their suffix", async (t) => {
  const exported = exportedMetricNames();
  t.notOk(exported.has("netservice_aggregator_leader"), "a misspelt name");
  t.ok(exported.has("netservice_agent_report_age_seconds"), "a gauge with no value until the first write is still registered");
  t.ok(exported.has("netservice_aggregator_reconcile_duration_seconds_bucket"));
  t.ok(exported.has("netservice_api_request_duration_seconds_count"));
  t.notOk(exported.has("netservice_aggregator_reconcile_duration_seconds_total"));
  t.same(metricNames('rate(netservice_api_requests_total{code="429"}[5m]) and on (pod) netservice_aggregator_leading == 1'), [
    "netservice_api_requests_total",
    "netservice_aggregator_leading",
  ]);
  t.same(
    metricNames('min by (netservice_namespace, netservice) (netservice_aggregator_netservice_ready{netservice_namespace="apps"}) == 0'),
    ["netservice_aggregator_netservice_ready"],
    "label names are not metrics",
  );
  t.same(metricNames('sum by (netservice_namespace) (netservice_aggregator_leader)'), ["netservice_aggregator_leader"], "an unknown metric is still found");
});

t.test("every alert has a severity and a runbook in docs/operations.md", async (t) => {
  const operations = await readFile(new URL("docs/operations.md", root), "utf8");
  const anchors = new Set([...operations.matchAll(/^#+ (.+)$/gm)].map(([, heading]) => githubAnchor(heading!)));
  for (const rule of await alertRules()) {
    t.match(rule.labels?.severity, /^(warning|critical)$/, `${rule.alert}: severity`);
    const url = rule.annotations?.runbook_url ?? "";
    t.match(url, /\/docs\/operations\.md#/, `${rule.alert}: runbook_url`);
    t.ok(anchors.has(url.replace(/.*#/, "")), `${rule.alert}: ${url} is a heading of docs/operations.md`);
  }
});

type AlertRule = { alert: string; expr: string; labels?: Record<string, string>; annotations?: Record<string, string> };
type AlertTests = { tests: { name: string; input_series?: { series: string }[]; promql_expr_test?: { expr: string }[] }[] };

async function alertRules(): Promise<AlertRule[]> {
  const documents = parseAllDocuments(await readFile(new URL("deploy/monitoring/alerts.yaml", root), "utf8"));
  const rule = documents.map((document) => document.toJS() as { kind?: string; spec?: { groups?: { rules: AlertRule[] }[] } }).find((each) => each.kind === "PrometheusRule");
  return (rule?.spec?.groups ?? []).flatMap((group) => group.rules);
}

function githubAnchor(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\w\- ]/g, "").replace(/ /g, "-");
}
