// The Grafana dashboard (deploy/helm/netservice/dashboards/netservice.json)
// as its check (dashboard.ts) and its test read it: the panels, their PromQL
// with the template variables filled in, and what makes the file one that
// Grafana loads into any installation. Pure: the caller reads the file.
//
//   const dashboard = parseDashboard(JSON.parse(text));
//   dashboardProblems(dashboard)                                   // [] when well-formed
//   panelQueries(dashboard, { job: "netservice-metrics", __rate_interval: "12s" })
import { z } from "zod";

export const dashboardFile = new URL("../../deploy/helm/netservice/dashboards/netservice.json", import.meta.url);

/** The classic JSON model of Grafana 12 (the latest schemaVersion is 42); older versions are migrated on load, but a new file should not need it. */
export const minimumSchemaVersion = 41;

/** How every query names its data source: the `datasource` variable, so the file names no installation's uid. */
export const datasourceVariable = "datasource";

const datasourceRefSchema = z.object({ type: z.string(), uid: z.string() });

const targetSchema = z.object({
  refId: z.string().min(1),
  expr: z.string().min(1),
  legendFormat: z.string().optional(),
  datasource: datasourceRefSchema.optional(),
});

const gridPosSchema = z.object({ x: z.number().int().min(0), y: z.number().int().min(0), w: z.number().int().min(1), h: z.number().int().min(1) });

const basePanelSchema = z.object({
  id: z.number().int().positive(),
  type: z.string().min(1),
  title: z.string().min(1),
  gridPos: gridPosSchema,
  datasource: datasourceRefSchema.optional(),
  targets: z.array(targetSchema).optional(),
  fieldConfig: z.object({ defaults: z.object({ unit: z.string().optional(), decimals: z.number().int().optional() }).optional() }).optional(),
});

/** A row holds the panels it hides when collapsed; an open row's panels follow it in the dashboard's list. */
const panelSchema = basePanelSchema.extend({ panels: z.array(basePanelSchema).optional() });

const variableSchema = z.object({
  name: z.string().min(1),
  type: z.string(),
  query: z.union([z.string(), z.object({ query: z.string() })]).optional(),
  datasource: datasourceRefSchema.optional(),
});

const dashboardSchema = z.object({
  uid: z.string().min(1),
  title: z.string().min(1),
  schemaVersion: z.number().int(),
  panels: z.array(panelSchema),
  templating: z.object({ list: z.array(variableSchema) }),
});

export type Dashboard = z.infer<typeof dashboardSchema> & { readonly raw: unknown };
export type Panel = z.infer<typeof basePanelSchema>;

/** One query of one panel, ready to send to Prometheus. */
export type PanelQuery = { panel: Panel; refId: string; legend: string; expr: string };

/** A query variable of the form label_values(selector, label). */
export type LabelValuesVariable = { name: string; selector: string; label: string };

/** Throws with the path of the first field that is not what Grafana and the check expect. */
export function parseDashboard(json: unknown): Dashboard {
  const parsed = dashboardSchema.safeParse(json);
  if (!parsed.success) throw new Error(`not a Grafana dashboard: ${z.prettifyError(parsed.error)}`);
  return { ...parsed.data, raw: json };
}

/** Every panel, rows' hidden panels included, in the file's order. */
export function allPanels(dashboard: Dashboard): Panel[] {
  return dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
}

/** What would make Grafana refuse the file, show an empty panel, or tie it to one installation; [] when none. */
export function dashboardProblems(dashboard: Dashboard): string[] {
  const problems: string[] = [];
  if (dashboard.schemaVersion < minimumSchemaVersion) problems.push(`schemaVersion ${dashboard.schemaVersion} is older than ${minimumSchemaVersion}`);
  const variable = dashboard.templating.list.find((each) => each.name === datasourceVariable);
  if (variable?.type !== "datasource" || variable.query !== "prometheus") {
    problems.push(`no template variable "${datasourceVariable}" of type datasource with query "prometheus"`);
  }
  for (const [where, ref] of datasourceRefs(dashboard.raw, "dashboard")) {
    if (!isVariableRef(ref)) problems.push(`${where}: datasource ${JSON.stringify(ref)} is not {"type":"prometheus","uid":"\${${datasourceVariable}}"}`);
  }
  const seen = new Map<number, string>();
  for (const panel of allPanels(dashboard)) {
    const other = seen.get(panel.id);
    if (other !== undefined) problems.push(`panels "${other}" and "${panel.title}" share id ${panel.id}`);
    seen.set(panel.id, panel.title);
    if (panel.gridPos.x + panel.gridPos.w > 24) problems.push(`panel "${panel.title}" is wider than the 24 columns of the grid`);
    if (panel.type === "row") continue;
    if ((panel.targets ?? []).length === 0) problems.push(`panel "${panel.title}" has no query`);
    if (panel.datasource === undefined) problems.push(`panel "${panel.title}" names no datasource`);
  }
  const defined = new Set([...dashboard.templating.list.map((each) => each.name), ...builtinVariables]);
  for (const { panel, refId, expr } of rawQueries(dashboard)) {
    for (const name of variablesIn(expr)) if (!defined.has(name)) problems.push(`panel "${panel.title}" query ${refId} uses $${name}, which is not defined`);
  }
  for (const each of dashboard.templating.list) {
    if (each.type === "query" && labelValuesOf(each.query) === undefined) problems.push(`variable ${each.name}: its query is not label_values(selector, label)`);
  }
  return problems;
}

/** Every query of every panel with the variables replaced by values; throws when one is left without a value. */
export function panelQueries(dashboard: Dashboard, values: Readonly<Record<string, string>>): PanelQuery[] {
  return rawQueries(dashboard).map(({ panel, refId, legend, expr }) => {
    const filled = expr.replace(variablePattern, (_match, ...groups: (string | undefined)[]) => {
      const name = groups.slice(0, 3).find((group) => group !== undefined) as string;
      const value = values[name];
      if (value === undefined) throw new Error(`panel "${panel.title}" query ${refId}: no value for $${name}`);
      return value;
    });
    return { panel, refId, legend, expr: filled };
  });
}

/** The dashboard's query variables, each of the form label_values(selector, label). */
export function labelValuesVariables(dashboard: Dashboard): LabelValuesVariable[] {
  return dashboard.templating.list.flatMap((each) => {
    const parsed = each.type === "query" ? labelValuesOf(each.query) : undefined;
    return parsed ? [{ name: each.name, ...parsed }] : [];
  });
}

/** Grafana's name for a series: legendFormat with {{label}} replaced, or the series' labels. */
export function seriesName(legend: string, labels: Readonly<Record<string, string>>): string {
  if (legend.trim() === "" || legend === "__auto") {
    const { __name__: name = "", ...rest } = labels;
    return `${name}{${Object.entries(rest).map(([key, value]) => `${key}="${value}"`).join(", ")}}`;
  }
  return legend.replace(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g, (_match, label: string) => labels[label] ?? "");
}

/** Grafana's own variables that the dashboard's queries may use. */
const builtinVariables = ["__rate_interval", "__interval", "__range"];

/** $name, ${name} (also ${name:format}) and the deprecated [[name]]. */
const variablePattern = /\$\{([a-zA-Z_][a-zA-Z0-9_]*)(?::[^}]*)?\}|\$([a-zA-Z_][a-zA-Z0-9_]*)|\[\[([a-zA-Z_][a-zA-Z0-9_]*)\]\]/g;

function variablesIn(text: string): string[] {
  return [...text.matchAll(variablePattern)].map((match) => (match[1] ?? match[2] ?? match[3]) as string);
}

function rawQueries(dashboard: Dashboard): { panel: Panel; refId: string; legend: string; expr: string }[] {
  return allPanels(dashboard).flatMap((panel) =>
    (panel.targets ?? []).map((target) => ({ panel, refId: target.refId, legend: target.legendFormat ?? "", expr: target.expr })),
  );
}

function labelValuesOf(query: string | { query: string } | undefined): { selector: string; label: string } | undefined {
  const text = typeof query === "string" ? query : query?.query;
  const match = /^\s*label_values\(\s*(.+?)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$/.exec(text ?? "");
  return match ? { selector: match[1] as string, label: match[2] as string } : undefined;
}

function isVariableRef(ref: unknown): boolean {
  if (typeof ref !== "object" || ref === null) return false;
  const { type, uid } = ref as { type?: unknown; uid?: unknown };
  return type === "prometheus" && (uid === `\${${datasourceVariable}}` || uid === `$${datasourceVariable}`);
}

/** Every "datasource" field anywhere in the file, with where it is, except the variable that picks the data source. */
function datasourceRefs(node: unknown, where: string): [string, unknown][] {
  if (Array.isArray(node)) return node.flatMap((item) => datasourceRefs(item, where));
  if (typeof node !== "object" || node === null) return [];
  const object = node as Record<string, unknown>;
  const here = describe(object, where);
  return Object.entries(object).flatMap(([key, value]): [string, unknown][] => {
    if (key === "datasource") return [[here, value]];
    return datasourceRefs(value, here);
  });
}

function describe(object: Record<string, unknown>, where: string): string {
  if (typeof object.title === "string") return `panel "${object.title}"`;
  if (typeof object.name === "string") return `variable ${object.name}`;
  if (typeof object.refId === "string") return `${where} query ${object.refId}`;
  return where;
}
