// The Helm chart (deploy/helm/netservice) installs what deploy/ installs: with
// default values `helm template` renders exactly deploy/'s objects, object by
// object, apart from Helm's own labels and the keep annotation of the CRDs
// and the Namespace; its
// monitoring objects are deploy/monitoring/'s; every value reaches the
// objects it names, the programs accept the flags it renders, and the README
// lists every value. helm comes from the binary cache (hack/cluster/binaries.ts).
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import t, { type Test } from "tap";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import { parseCommandLine as parseAgentCommandLine, usage as agentUsage } from "../../node-agent/config.ts";
import { parseCommandLine as parseAggregatorCommandLine, usage as aggregatorUsage } from "../../aggregator/config.ts";
import type { KubeObject } from "../../common/kube/object.ts";
import { ensureHelm, repoRoot } from "../../hack/cluster/binaries.ts";
import { loadManifests } from "../../hack/manifests.ts";

const run = promisify(execFile);
const chart = path.join(repoRoot, "deploy", "helm", "netservice");
const everyOption = path.join(chart, "ci", "every-option-values.yaml");
const release = "netservice";
const systemNamespace = "netservice-system";

/** What the chart adds to every object's labels, beyond deploy/'s: Helm's own, and nothing else. */
const helmLabels = ["app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "app.kubernetes.io/version", "helm.sh/chart"];
/**
 * Cluster-scoped kinds that kustomize's namespace transformer does not know,
 * so deploy/netservice.yaml gives them the namespace; the API server ignores
 * it, and the chart leaves it out.
 */
const namespacedByKustomize = new Set(["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]);
/**
 * The one annotation the chart adds, on the CRDs and the Namespace only:
 * uninstalling keeps the CRDs and with them every NetService, and the
 * namespace, which holds Helm's own release records.
 */
const keepAnnotation = { "helm.sh/resource-policy": "keep" };
const keptKinds = new Set(["CustomResourceDefinition", "Namespace"]);

const helm = await ensureHelm((line) => t.comment(line));
const chartYaml = parseYaml(await readFile(path.join(chart, "Chart.yaml"), "utf8")) as { version: string; appVersion: string };
const values = parseYaml(await readFile(path.join(chart, "values.yaml"), "utf8")) as Record<string, unknown>;

type Workload = KubeObject & {
  spec: {
    replicas?: number;
    updateStrategy?: { rollingUpdate?: { maxUnavailable?: unknown } };
    template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec };
  };
};
type Container = { image: string; imagePullPolicy?: string; args: string[]; env: { name: string; value?: string }[]; ports: { containerPort: number }[]; resources: unknown };
type PodSpec = {
  containers: Container[];
  tolerations?: unknown; nodeSelector?: unknown; affinity?: unknown; priorityClassName?: string;
  topologySpreadConstraints?: unknown; imagePullSecrets?: unknown;
};

async function template(options: { namespace?: string; valuesFile?: string; set?: string[] } = {}): Promise<KubeObject[]> {
  const args = ["template", release, chart, "--namespace", options.namespace ?? systemNamespace];
  if (options.valuesFile) args.push("--values", options.valuesFile);
  for (const value of options.set ?? []) args.push("--set", value);
  const { stdout } = await run(helm, args, { maxBuffer: 64 * 1024 * 1024 });
  return parseAllDocuments(stdout).map((document) => document.toJS() as KubeObject | null).filter((o): o is KubeObject => o !== null);
}

/** helm's error for values the chart refuses, or undefined if it renders. */
async function templateError(...set: string[]): Promise<string | undefined> {
  try {
    await template({ set });
    return undefined;
  } catch (error) {
    return (error as { stderr?: string }).stderr ?? String(error);
  }
}

const key = (o: KubeObject) => `${o.kind}/${o.metadata?.namespace ?? ""}/${o.metadata?.name}`;
const find = <T extends KubeObject = KubeObject>(objects: KubeObject[], kind: string, name: string) => {
  const found = objects.find((o) => o.kind === kind && o.metadata?.name === name);
  if (!found) throw new Error(`no ${kind}/${name} rendered`);
  return found as T;
};

/** The object without what Helm adds, after checking that Helm added it. */
function withoutHelmMetadata(t: Test, object: KubeObject): KubeObject {
  const labels = { ...object.metadata?.labels };
  t.strictSame(
    Object.fromEntries(helmLabels.map((label) => [label, labels[label]])),
    {
      "app.kubernetes.io/managed-by": "Helm",
      "app.kubernetes.io/instance": release,
      "app.kubernetes.io/version": chartYaml.appVersion,
      "helm.sh/chart": `netservice-${chartYaml.version}`,
    },
    `${key(object)} carries Helm's labels`,
  );
  for (const label of helmLabels) delete labels[label];
  const metadata: Record<string, unknown> = { ...object.metadata, labels };
  if (keptKinds.has(object.kind!)) {
    t.strictSame(object.metadata?.annotations, keepAnnotation, `${key(object)}: kept by helm uninstall`);
    delete metadata.annotations;
  }
  return { ...object, metadata } as KubeObject;
}

t.test("with default values the chart renders deploy/'s objects, with Helm's labels and nothing else added", async (t) => {
  const deployed = (await loadManifests(path.join(repoRoot, "deploy", "netservice.yaml"))).map(withoutKustomizeNamespace);
  const rendered = await template();
  t.strictSame(rendered.map(key).sort(), deployed.map(key).sort(), "the same objects");
  const byKey = new Map(rendered.map((o) => [key(o), o]));
  for (const object of deployed) {
    const chartObject = byKey.get(key(object));
    if (chartObject) t.strictSame(withoutHelmMetadata(t, chartObject), object, `${key(object)} is deploy/'s`);
  }
});

t.test("the chart's appVersion is the image tag deploy/ installs", async (t) => {
  const kustomization = parseYaml(await readFile(path.join(repoRoot, "deploy", "kustomization.yaml"), "utf8")) as { images: { name: string; newTag: string }[] };
  const image = kustomization.images.find((i) => i.name === "ghcr.io/metaswitch/netservice");
  t.equal(chartYaml.appVersion, image?.newTag);
});

t.test("the chart installs into the release's namespace, the admission policy's user name included", async (t) => {
  const rendered = await template({ namespace: "secondary-dns" });
  const text = JSON.stringify(rendered);
  t.notMatch(text, /netservice-system/, "no object names netservice-system");
  t.equal(find(rendered, "Namespace", "secondary-dns").kind, "Namespace");
  for (const o of rendered) if (o.metadata?.namespace !== undefined) t.equal(o.metadata.namespace, "secondary-dns", `${key(o)}`);
  const policies = rendered.filter((o) => o.kind === "ValidatingAdmissionPolicy") as (KubeObject & { spec: { matchConditions: { expression: string }[] } })[];
  t.equal(policies.length, 2);
  for (const policy of policies) {
    t.strictSame(policy.spec.matchConditions.map((c) => c.expression), [`request.userInfo.username == "system:serviceaccount:secondary-dns:netservice-agent"`], `${policy.metadata?.name}`);
  }
  const bindings = rendered.filter((o) => o.kind === "ClusterRoleBinding" || o.kind === "RoleBinding") as (KubeObject & { subjects: { namespace: string }[] })[];
  for (const binding of bindings) t.strictSame(binding.subjects.map((s) => s.namespace), ["secondary-dns"], `${key(binding)} subjects`);
});

t.test("with monitoring enabled the ServiceMonitor and the PrometheusRule are deploy/monitoring/'s", async (t) => {
  const rendered = await template({ set: ["monitoring.serviceMonitor.enabled=true", "monitoring.prometheusRule.enabled=true"] });
  for (const [kind, file] of [["ServiceMonitor", "service-monitor.yaml"], ["PrometheusRule", "alerts.yaml"]] as const) {
    const [deployed] = await loadManifests(path.join(repoRoot, "deploy", "monitoring", file));
    const chartObject = find(rendered, kind, deployed!.metadata!.name!);
    t.equal(chartObject.metadata?.namespace, deployed!.metadata?.namespace, `${kind} namespace`);
    t.strictSame(chartObject.spec, deployed!.spec, `${kind} spec is ${file}'s`);
    withoutHelmMetadata(t, chartObject);
  }
  const defaults = await template();
  t.notOk(defaults.some((o) => o.kind === "ServiceMonitor" || o.kind === "PrometheusRule" || o.kind === "ConfigMap"), "none by default: their CRDs may be absent");
});

t.test("the dashboard ConfigMap holds dashboards/netservice.json under Grafana's sidecar label", async (t) => {
  const dashboard = await readFile(path.join(chart, "dashboards", "netservice.json"), "utf8");
  const configMap = find<KubeObject & { data: Record<string, string> }>(await template({ set: ["dashboard.enabled=true"] }), "ConfigMap", "netservice-dashboard");
  t.equal(configMap.data["netservice.json"], dashboard.trimEnd());
  t.equal(configMap.metadata?.labels?.grafana_dashboard, "1");
  t.equal(configMap.metadata?.namespace, systemNamespace);
  t.doesNotThrow(() => JSON.parse(configMap.data["netservice.json"]!), "valid JSON");
});

t.test("helm lint --strict passes with default values and with every option set", async (t) => {
  for (const args of [[], ["--values", everyOption]]) {
    const { stdout } = await run(helm, ["lint", "--strict", chart, ...args]);
    t.match(stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/, `helm lint --strict ${args.join(" ")}`);
  }
});

t.test("every option reaches the objects it names", async (t) => {
  const rendered = await template({ valuesFile: everyOption });
  const kinds = rendered.map((o) => o.kind);
  t.notOk(kinds.includes("Namespace"), "namespace.create false: no Namespace");
  t.notOk(kinds.includes("CustomResourceDefinition"), "crds.install false: no CRDs");
  t.strictSame((find<KubeObject & { spec: { hard: Record<string, string> } }>(rendered, "ResourceQuota", "netservice-reports")).spec.hard, { "count/leases.coordination.k8s.io": "20000" });

  const agent = find<Workload>(rendered, "DaemonSet", "netservice-agent");
  const aggregator = find<Workload>(rendered, "Deployment", "netservice-aggregator");
  for (const [workload, name] of [[agent, "agent"], [aggregator, "aggregator"]] as const) {
    const pod = workload.spec.template;
    const container = pod.spec.containers[0]!;
    t.equal(container.image, "registry.example/netservice:9.9.9", `${name} image`);
    t.equal(container.imagePullPolicy, "Always", `${name} pull policy`);
    t.strictSame(pod.spec.imagePullSecrets, [{ name: "registry-credentials" }], `${name} pull secrets`);
    t.equal(pod.spec.priorityClassName, `${name}-priority`, `${name} priority class`);
    t.equal(pod.metadata.labels[`example.com/${name}`], "labelled", `${name} pod label`);
    t.equal(pod.metadata.annotations?.[`example.com/${name}`], "annotated", `${name} pod annotation`);
    t.equal(env(container, "LOG_FORMAT"), "text", `${name} LOG_FORMAT`);
    t.equal(container.args.at(-1), "--namespace=other-system", `${name} extraArgs come last`);
  }
  t.equal(env(agent.spec.template.spec.containers[0]!, "LOG_LEVEL"), "warn", "agent.logLevel wins over logLevel");
  t.equal(env(aggregator.spec.template.spec.containers[0]!, "LOG_LEVEL"), "trace", "aggregator.logLevel wins over logLevel");
  t.equal(env(aggregator.spec.template.spec.containers[0]!, "NODE_OPTIONS"), "--max-semi-space-size=4 --max-old-space-size=768", "aggregator.nodeOptions");
  t.equal(env((await workloads(["aggregator.nodeOptions="])).aggregator.spec.template.spec.containers[0]!, "NODE_OPTIONS"), undefined, "empty: no NODE_OPTIONS at all");
  t.equal(env((await workloads(["logLevel=debug"])).agent.spec.template.spec.containers[0]!, "LOG_LEVEL"), "debug", "logLevel alone sets both");

  const agentPod = agent.spec.template.spec;
  t.strictSame(agentPod.containers[0]!.resources, { requests: { cpu: "30m", memory: "100Mi" }, limits: { cpu: "2", memory: "300Mi" } });
  t.strictSame(agentPod.tolerations, [{ key: "example.com/dedicated", operator: "Equal", value: "telco", effect: "NoSchedule" }]);
  t.strictSame(agentPod.nodeSelector, { "example.com/multus": "true" });
  t.match(agentPod.affinity, { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: {} } });
  t.equal(agent.spec.updateStrategy?.rollingUpdate?.maxUnavailable, 1);
  t.strictSame(agentPod.containers[0]!.ports.map((p) => p.containerPort), [9090]);

  const aggregatorPod = aggregator.spec.template.spec;
  t.equal(aggregator.spec.replicas, 3);
  t.strictSame(aggregatorPod.containers[0]!.resources, { requests: { cpu: "200m", memory: "256Mi" }, limits: { cpu: "4", memory: "2Gi" } });
  t.strictSame(aggregatorPod.tolerations, [{ key: "node-role.kubernetes.io/control-plane", operator: "Exists", effect: "NoSchedule" }]);
  t.strictSame(aggregatorPod.nodeSelector, { "node-role.kubernetes.io/control-plane": "" });
  t.match(aggregatorPod.affinity, { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [] } });
  t.match(aggregatorPod.topologySpreadConstraints, [{ topologyKey: "topology.kubernetes.io/zone", whenUnsatisfiable: "DoNotSchedule" }]);
  t.strictSame(aggregatorPod.containers[0]!.ports.map((p) => p.containerPort), [9091]);
  t.equal((find<KubeObject & { spec: { minAvailable: number } }>(rendered, "PodDisruptionBudget", "netservice-aggregator")).spec.minAvailable, 2);
  const role = find<KubeObject & { rules: { resourceNames?: string[] }[] }>(rendered, "Role", "netservice-aggregator");
  t.strictSame(role.rules.flatMap((r) => r.resourceNames ?? []), ["netservice-leader"], "the Role lets the aggregator use the lease it is told to");

  const serviceMonitor = find<KubeObject & { spec: { endpoints: { interval: string }[] } }>(rendered, "ServiceMonitor", "netservice");
  t.equal(serviceMonitor.spec.endpoints[0]!.interval, "15s");
  t.equal(serviceMonitor.metadata?.labels?.release, "prometheus");
  t.equal(find(rendered, "PrometheusRule", "netservice").metadata?.labels?.role, "alert-rules");
  const dashboard = find(rendered, "ConfigMap", "netservice-dashboard");
  t.equal(dashboard.metadata?.labels?.["example.com/dashboard"], "yes");
  t.notOk("grafana_dashboard" in (dashboard.metadata?.labels ?? {}), "the default label key is replaced, not added to");
  t.equal(dashboard.metadata?.namespace, "monitoring");
  t.strictSame(dashboard.metadata?.annotations, { grafana_folder: "Networking" });
});

t.test("the programs accept the flags the chart renders, and read the values from them", async (t) => {
  const rendered = await template({ valuesFile: everyOption });
  const agentArgs = find<Workload>(rendered, "DaemonSet", "netservice-agent").spec.template.spec.containers[0]!.args;
  const aggregatorArgs = find<Workload>(rendered, "Deployment", "netservice-aggregator").spec.template.spec.containers[0]!.args;
  t.equal(agentArgs[0], "dist/node-agent.mjs");
  t.equal(aggregatorArgs[0], "dist/aggregator.mjs");
  const agent = parseAgentCommandLine(agentArgs.slice(1), { NODE_NAME: "node-1", POD_NAMESPACE: systemNamespace });
  t.match(agent, {
    help: false,
    config: { debounceMs: 50, deleteReportOnExit: true, heartbeatIntervalMs: 5_000, stallAfterMs: 300_000, metricsPort: 9090, systemNamespace: "other-system" },
  });
  const aggregator = parseAggregatorCommandLine(aggregatorArgs.slice(1), { POD_NAME: "p", POD_NAMESPACE: systemNamespace }, { hostname: "h", pid: 1 });
  t.match(aggregator, {
    help: false,
    config: { leaderElect: true, leaseName: "netservice-leader", workers: 8, statusCountsIntervalMs: 0, minWriteIntervalMs: 250, heartbeatTimeoutMs: 60_000, metricsPort: 9091, systemNamespace: "other-system" },
  });
  const single = await workloads(["aggregator.leaderElect=false", "aggregator.replicas=1"]);
  const singleArgs = single.aggregator.spec.template.spec.containers[0]!.args;
  t.match(parseAggregatorCommandLine(singleArgs.slice(1), {}, { hostname: "h", pid: 1 }), { config: { leaderElect: false } }, "leaderElect false");
  t.notOk(single.rendered.some((o) => o.kind === "PodDisruptionBudget"), "one replica: no PodDisruptionBudget, which would block every drain");
});

t.test("every flag of the programs is a named value, or one the chart sets itself", async (t) => {
  // Set from the pod (env) or meaningless in a pod; everything else must have a value.
  const setByChart = new Set(["--kubeconfig", "--namespace", "--identity", "--node-name", "--help", "--no-leader-elect"]);
  const named: Record<string, Record<string, string>> = {
    agent: { "--debounce-ms": "debounceMs", "--delete-report-on-exit": "deleteReportOnExit", "--heartbeat-interval-seconds": "heartbeatIntervalSeconds", "--stall-timeout-seconds": "stallTimeoutSeconds", "--metrics-port": "metricsPort" },
    aggregator: { "--leader-elect": "leaderElect", "--lease-name": "leaseName", "--workers": "workers", "--status-counts-interval-ms": "statusCountsIntervalMs", "--min-write-interval-ms": "minWriteIntervalMs", "--agent-heartbeat-timeout-seconds": "agentHeartbeatTimeoutSeconds", "--metrics-port": "metricsPort" },
  };
  for (const [program, usage] of [["agent", agentUsage], ["aggregator", aggregatorUsage]] as const) {
    const flags = [...new Set(usage.match(/--[a-z][a-z-]*/g) ?? [])].filter((flag) => !setByChart.has(flag));
    t.strictSame(flags.sort(), Object.keys(named[program]!).sort(), `${program}: the flags of its --help`);
    for (const value of Object.values(named[program]!)) t.ok(value in (values[program] as object), `${program}.${value} is in values.yaml`);
  }
});

t.test("values the programs or the cluster would refuse fail at render, saying why", async (t) => {
  t.match(await templateError("aggregator.leaderElect=false"), /needs aggregator.replicas 1/);
  t.match(await templateError("agent.metricsPort=0"), /metricsPort/);
  t.match(await templateError("aggregator.wokers=3"), /additional properties 'wokers' not allowed/, "a misspelt key");
  t.match(await templateError("aggregator.workers=100"), /workers/, "beyond what --workers accepts");
  t.match(await templateError("logLevel=loud"), /logLevel/);
});

t.test("every key of values.yaml is set by ci/every-option-values.yaml and listed in README.md's values table", async (t) => {
  const readme = await readFile(path.join(chart, "README.md"), "utf8");
  const tableKeys = new Set([...readme.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!));
  const every = parseYaml(await readFile(everyOption, "utf8")) as Record<string, unknown>;
  const keys = leafKeys(values);
  t.ok(keys.length > 40, `${keys.length} keys`);
  for (const k of keys) {
    t.ok(tableKeys.has(k), `README lists ${k}`);
    t.ok(leafKeys(every).some((e) => e === k || e.startsWith(`${k}.`)), `every-option-values sets ${k}`);
  }
  for (const k of tableKeys) t.ok(keys.includes(k), `README's ${k} is a key of values.yaml`);
});

function withoutKustomizeNamespace(object: KubeObject): KubeObject {
  if (!namespacedByKustomize.has(object.kind!)) return object;
  const { namespace: _, ...metadata } = object.metadata ?? {};
  return { ...object, metadata };
}

async function workloads(set: string[]) {
  const rendered = await template({ set });
  return { rendered, agent: find<Workload>(rendered, "DaemonSet", "netservice-agent"), aggregator: find<Workload>(rendered, "Deployment", "netservice-aggregator") };
}

function env(container: Container, name: string): string | undefined {
  return container.env.find((e) => e.name === name)?.value;
}

/**
 * Dotted paths of values.yaml's settings: a map's keys, down to maps that are
 * values themselves (empty, or holding user data such as resources).
 */
function leafKeys(object: Record<string, unknown>, prefix = ""): string[] {
  const opaque = /(^|\.)(resources|nodeSelector|affinity|podAnnotations|podLabels|labels|annotations)$/;
  return Object.entries(object).flatMap(([k, v]) => {
    const dotted = prefix + k;
    return v !== null && typeof v === "object" && !Array.isArray(v) && !opaque.test(dotted) && Object.keys(v).length > 0
      ? leafKeys(v as Record<string, unknown>, `${dotted}.`)
      : [dotted];
  });
}
