// The Grafana dashboard (deploy/helm/netservice/dashboards/netservice.json)
// loads into any Grafana and names only metrics the programs export: a
// renamed metric must break this test, not leave a panel empty. Whether its
// queries return data from real programs is `npm run monitoring:dashboard`.
import t from "tap";
import { readFile } from "node:fs/promises";
import { dashboardSvg, formatValue, yAxis } from "../../hack/monitoring/dashboard-chart.ts";
import {
  allPanels,
  dashboardFile,
  dashboardProblems,
  labelValuesVariables,
  panelQueries,
  parseDashboard,
  seriesName,
} from "../../hack/monitoring/dashboard-model.ts";
import { exportedMetricNames, metricNames } from "../helpers/exported-metrics.ts";

const fileJson = async () => JSON.parse(await readFile(dashboardFile, "utf8")) as Record<string, unknown>;
const grafanaValues = { job: "netservice-metrics", __rate_interval: "1m", __interval: "15s", __range: "1h" };

t.test("every metric the dashboard's queries and variables read is one the programs export", async (t) => {
  const dashboard = parseDashboard(await fileJson());
  const exported = exportedMetricNames();
  const places: [string, string][] = [
    ...panelQueries(dashboard, grafanaValues).map((query): [string, string] => [`"${query.panel.title}" ${query.refId}`, query.expr]),
    ...labelValuesVariables(dashboard).map((variable): [string, string] => [`variable ${variable.name}`, variable.selector]),
  ];
  t.ok(places.length >= 10, "the queries are read");
  for (const [place, text] of places) {
    const names = metricNames(text);
    t.ok(names.length > 0, `${place} reads a netservice metric`);
    for (const name of names) t.ok(exported.has(name), `${place}: ${name} is exported`);
  }
});

t.test("the dashboard is well-formed Grafana that names no installation's data source", async (t) => {
  const json = await fileJson();
  const dashboard = parseDashboard(json);
  t.same(dashboardProblems(dashboard), []);
  t.ok(dashboard.schemaVersion >= 41, "the current classic schema");
  const panels = allPanels(dashboard);
  t.equal(new Set(panels.map((panel) => panel.id)).size, panels.length, "panel ids are unique");
  for (const panel of panels.filter((each) => each.type !== "row")) {
    t.ok((panel.targets ?? []).length > 0, `"${panel.title}" has a query`);
    t.same(panel.datasource, { type: "prometheus", uid: "${datasource}" }, `"${panel.title}" uses the datasource variable`);
  }
  const uids = new Set([...JSON.stringify(json).matchAll(/"uid":"([^"]*)"/g)].map((match) => match[1]));
  t.same([...uids].sort(), ["${datasource}", "netservice"], "no uid but the dashboard's own and the variable");
});

t.test("the checks find what would break the dashboard", async (t) => {
  const problemsOf = async (edit: (json: any) => void) => {
    const json = await fileJson();
    edit(json);
    return dashboardProblems(parseDashboard(json));
  };
  const cases: [string, (json: any) => void, RegExp][] = [
    ["a duplicate panel id", (json) => (json.panels[2].id = json.panels[1].id), /share id/],
    ["a hard-coded data source uid", (json) => (json.panels[1].targets[0].datasource = { type: "prometheus", uid: "P1809F7CD0C75ACF3" }), /panel "NetServices by state" query A: datasource \{"type":"prometheus","uid":"P1809F7CD0C75ACF3"\}/],
    ["a panel without a query", (json) => (json.panels[1].targets = []), /has no query/],
    ["no datasource variable", (json) => (json.templating.list = json.templating.list.filter((each: { name: string }) => each.name !== "datasource")), /no template variable "datasource"/],
    ["an undefined variable", (json) => (json.panels[1].targets[0].expr = 'up{cluster="$cluster"}'), /uses \$cluster, which is not defined/],
    ["an old schema", (json) => (json.schemaVersion = 27), /schemaVersion 27 is older/],
    ["a panel off the grid", (json) => (json.panels[1].gridPos.x = 20), /wider than the 24 columns/],
  ];
  for (const [name, edit, expected] of cases) t.match((await problemsOf(edit)).join("\n"), expected, name);
  t.throws(() => parseDashboard({ title: "x" }), /not a Grafana dashboard/, "not a dashboard at all");

  const json = await fileJson();
  (json.panels as any[])[1].targets[0].expr = "sum(netservice_aggregator_reconciles_totl)";
  const [edited] = panelQueries(parseDashboard(json), grafanaValues);
  t.same(metricNames(edited?.expr ?? "").filter((name) => !exportedMetricNames().has(name)), ["netservice_aggregator_reconciles_totl"], "a misspelt metric name is not exported");
});

t.test("queries get the variables' values as Grafana substitutes them, and an unknown one is refused", async (t) => {
  const json = await fileJson();
  (json.panels as any[])[1].targets = [{ refId: "A", expr: 'rate(x{job="$job", a="${job}", b="[[job]]", c="${job:raw}"}[$__rate_interval])', datasource: { type: "prometheus", uid: "${datasource}" } }];
  const dashboard = parseDashboard(json);
  t.equal(panelQueries(dashboard, grafanaValues)[0]?.expr, 'rate(x{job="netservice-metrics", a="netservice-metrics", b="netservice-metrics", c="netservice-metrics"}[1m])');
  t.throws(() => panelQueries(dashboard, { job: "j" }), /no value for \$__rate_interval/);
  t.same(labelValuesVariables(dashboard), [{ name: "job", selector: "netservice_aggregator_leading", label: "job" }]);
});

t.test("series are named by the legend format, or by their labels without one", async (t) => {
  t.equal(seriesName("{{component}} {{verb}} {{ code }}", { component: "aggregator", verb: "apply", code: "200" }), "aggregator apply 200");
  t.equal(seriesName("p99", { le: "x" }), "p99");
  t.equal(seriesName("", { __name__: "up", job: "j" }), 'up{job="j"}');
});

t.test("the picture draws each series, breaks lines at NaN, and says when a panel has no data", async (t) => {
  const panel = (series: { name: string; points: [number, number][] }[]) => ({ title: "P", unit: "s", gridPos: { x: 0, y: 0, w: 12, h: 8 }, series });
  const svg = dashboardSvg({
    title: "T & <t>",
    subtitle: "s",
    start: 0,
    end: 10,
    panels: [
      panel([{ name: "p99", points: [[0, 0.1], [2, 0.2], [4, Number.NaN], [6, 0.3], [8, 0.2]] }]),
      { ...panel([]), title: "Empty", gridPos: { x: 12, y: 0, w: 12, h: 8 } },
    ],
  });
  t.equal(svg.match(/<path /g)?.length, 2, "two runs of finite values");
  t.match(svg, /No data/);
  t.match(svg, /T &amp; &lt;t&gt;/, "text is escaped");
  t.match(svg, />300 ms</, "the top gridline is at or above the largest value");
  t.same(yAxis(0.21), { top: 0.3, step: 0.1 });
  t.same(yAxis(10, true), { top: 12, step: 3 }, "counts get whole-number gridlines");
  t.same(yAxis(0), { top: 1, step: 1 });
  t.same([formatValue(0.0123, "s"), formatValue(2.5, "s"), formatValue(1500, "reqps"), formatValue(3, "short")], ["12.3 ms", "2.5 s", "1.5k/s", "3"]);
});
