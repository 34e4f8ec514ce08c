// deploy/ installs on a real API server with one command, and deploy/netservice.yaml
// is exactly what kustomize renders from it. Nothing runs the workloads (the
// control plane has no kubelet), but the Deployment's pods are created by the
// real ReplicaSet controller, so Pod Security admission judges them.
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import t from "tap";
import type { KubeObject } from "../../common/kube/object.ts";
import { ResourceResolver } from "../../common/kube/resources.ts";
import { selectorMatches } from "../../common/selector.ts";
import { ensureBinaries, repoRoot } from "../../hack/cluster/binaries.ts";
import { clientsFor } from "../../hack/credentials.ts";
import { loadManifests } from "../../hack/manifests.ts";
import { startControlPlane } from "../helpers/control-plane.ts";
import { eventually, expect } from "../helpers/eventually.ts";
import { boundedTeardown } from "../helpers/teardown.ts";

const run = promisify(execFile);
const deployDir = path.join(repoRoot, "deploy");
const rendered = path.join(deployDir, "netservice.yaml");
const systemNamespace = "netservice-system";

type PodTemplate = { metadata?: { labels?: Record<string, string> }; spec: Record<string, unknown> };
type Workload = KubeObject & { spec: { selector: { matchLabels: Record<string, string> }; template: PodTemplate } };

const { kubectl } = await ensureBinaries((line) => t.comment(line));
const objects = await loadManifests(rendered);
const byKind = (kind: string) => objects.filter((o) => o.kind === kind);
const named = <T extends KubeObject>(kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata?.name === name) as T;

t.test("deploy/netservice.yaml is what kustomize renders from deploy/", async (t) => {
  const { stdout } = await run(kubectl, ["kustomize", deployDir], { maxBuffer: 64 * 1024 * 1024 });
  const committed = await readFile(rendered, "utf8");
  t.ok(committed === stdout, "re-render with: kubectl kustomize deploy/ > deploy/netservice.yaml");
});

t.test("deploy/ holds the whole installation", async (t) => {
  const kinds = objects.map((o) => `${o.kind}/${o.metadata?.name}`).sort();
  t.same(kinds, [
    "ClusterRole/netservice-agent",
    "ClusterRole/netservice-aggregator",
    "ClusterRoleBinding/netservice-agent",
    "ClusterRoleBinding/netservice-aggregator",
    "CustomResourceDefinition/netservicenodereports.svcctl.metaswitch.com",
    "CustomResourceDefinition/netservices.svcctl.metaswitch.com",
    "DaemonSet/netservice-agent",
    "Deployment/netservice-aggregator",
    "Namespace/netservice-system",
    "PodDisruptionBudget/netservice-aggregator",
    "ResourceQuota/netservice-reports",
    "Role/netservice-agent",
    "Role/netservice-aggregator",
    "RoleBinding/netservice-agent",
    "RoleBinding/netservice-aggregator",
    "Service/netservice-metrics",
    "ServiceAccount/netservice-agent",
    "ServiceAccount/netservice-aggregator",
    "ValidatingAdmissionPolicy/netservice-agent-own-node-heartbeat",
    "ValidatingAdmissionPolicy/netservice-agent-own-node-report",
    "ValidatingAdmissionPolicyBinding/netservice-agent-own-node-heartbeat",
    "ValidatingAdmissionPolicyBinding/netservice-agent-own-node-report",
  ]);
  for (const o of objects) {
    if (o.kind !== "Namespace" && o.metadata?.namespace !== undefined) t.equal(o.metadata.namespace, systemNamespace, `${o.kind}/${o.metadata.name} namespace`);
  }
});

t.test("no role grants a wildcard or any access to Secrets", async (t) => {
  const rules = [...byKind("ClusterRole"), ...byKind("Role")].flatMap(
    (role) => ((role as { rules?: { apiGroups?: string[]; resources?: string[]; verbs: string[] }[] }).rules ?? []).map((rule) => ({ role: `${role.kind}/${role.metadata?.name}`, rule })),
  );
  t.ok(rules.length > 0);
  for (const { role, rule } of rules) {
    t.notOk([...(rule.apiGroups ?? []), ...(rule.resources ?? []), ...rule.verbs].includes("*"), `${role}: no wildcard`);
    t.notOk((rule.resources ?? []).some((r) => r === "secrets" || r.startsWith("secrets/")), `${role}: no secrets`);
  }
});

t.test("the metrics Service reaches both programs, and the disruption budget the aggregator", async (t) => {
  const agent = named<Workload>("DaemonSet", "netservice-agent");
  const aggregator = named<Workload>("Deployment", "netservice-aggregator");
  const metrics = named<KubeObject & { spec: { selector: Record<string, string>; ports: { name: string; port: number }[] } }>("Service", "netservice-metrics");
  const budget = named<KubeObject & { spec: { selector: { matchLabels: Record<string, string> } } }>("PodDisruptionBudget", "netservice-aggregator");
  for (const workload of [agent, aggregator]) {
    const podLabels = workload.spec.template.metadata?.labels;
    t.ok(selectorMatches(metrics.spec.selector, podLabels), `metrics Service selects ${workload.kind} pods`);
    t.ok(selectorMatches(workload.spec.selector.matchLabels, podLabels), `${workload.kind} selects its own pods`);
    const container = (workload.spec.template.spec as { containers: { ports: { name: string; containerPort: number }[] }[] }).containers[0]!;
    t.same(container.ports, [{ name: "http-metrics", containerPort: 8080, protocol: "TCP" }]);
  }
  t.same(metrics.spec.ports.map((p) => [p.name, p.port]), [["http-metrics", 8080]]);
  t.ok(selectorMatches(budget.spec.selector.matchLabels, aggregator.spec.template.metadata?.labels), "budget selects aggregator pods");
  t.notOk(selectorMatches(budget.spec.selector.matchLabels, agent.spec.template.metadata?.labels), "and not agents");
});

t.test("the aggregator's replicas are never placed on one node while another can take one", async (t) => {
  type Spread = { topologyKey: string; whenUnsatisfiable: string; nodeTaintsPolicy?: string; matchLabelKeys?: string[]; labelSelector: { matchLabels: Record<string, string> } };
  const aggregator = named<Workload>("Deployment", "netservice-aggregator");
  const spreads = (aggregator.spec.template.spec as { topologySpreadConstraints?: Spread[] }).topologySpreadConstraints ?? [];
  const byNode = spreads.filter((spread) => spread.topologyKey === "kubernetes.io/hostname");
  t.equal(byNode.length, 1, "one constraint over nodes");
  const [spread] = byNode;
  t.equal(spread?.whenUnsatisfiable, "DoNotSchedule", "enforced: a preference let a rolling update put both on the node that then failed");
  t.equal(spread?.nodeTaintsPolicy, "Honor", "nodes the replicas cannot run on (cordoned, not ready, control plane) do not count, so a single node still runs both");
  t.same(spread?.matchLabelKeys, ["pod-template-hash"], "each revision spreads on its own during a rolling update");
  t.ok(selectorMatches(spread?.labelSelector.matchLabels ?? {}, aggregator.spec.template.metadata?.labels), "it counts the aggregator's own pods");
});

t.test("on a real API server", async (t) => {
  const plane = await startControlPlane(t);
  const clients = clientsFor(plane.kubeconfig);
  boundedTeardown(t, { name: "clients", timeoutMs: 10_000, run: () => clients.close() });
  const resolver = new ResourceResolver(clients.http);
  const kubectlOn = (...args: string[]) => run(kubectl, ["--kubeconfig", plane.kubeconfig, ...args], { maxBuffer: 64 * 1024 * 1024 });

  await t.test("kubectl apply --server-side -k deploy/ installs every object", async (t) => {
    const { stdout } = await kubectlOn("apply", "--server-side", "-k", deployDir);
    t.equal(stdout.trim().split("\n").length, objects.length, "one line per object");
    for (const o of objects) {
      const stored = await clients.http.request<KubeObject>({ method: "GET", path: await resolver.pathOf(o) });
      t.ok(stored.metadata?.uid, `${o.kind}/${o.metadata?.name} exists`);
    }
  });

  await t.test("a second apply changes nothing", async (t) => {
    const diff = await kubectlOn("diff", "--server-side", "-k", deployDir).then(
      (r) => ({ code: 0, out: r.stdout }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
    );
    t.equal(diff.code, 0, diff.out);
  });

  await t.test("the CRDs are established", async (t) => {
    for (const crd of byKind("CustomResourceDefinition")) {
      await eventually(async () => {
        const stored = await clients.http.request<{ status?: { conditions?: { type: string; status: string }[] } }>({ method: "GET", path: await resolver.pathOf(crd) });
        expect(stored.status?.conditions?.some((c) => c.type === "Established" && c.status === "True") === true, `${crd.metadata?.name} not established`);
      });
      t.pass(`${crd.metadata?.name} established`);
    }
  });

  await t.test("the aggregator's pods pass restricted Pod Security admission", async (t) => {
    const pods = await eventually(async () => {
      const list = await clients.http.request<{ items: KubeObject[] }>({
        method: "GET",
        path: `/api/v1/namespaces/${systemNamespace}/pods`,
        query: { labelSelector: "app.kubernetes.io/name=netservice-aggregator" },
      });
      expect(list.items.length === 2, `${list.items.length} aggregator pods`);
      return list.items;
    });
    t.equal(pods.length, 2, "the ReplicaSet controller created both replicas");
  });

  await t.test("the agent's pods pass restricted Pod Security admission", async (t) => {
    // No DaemonSet controller runs here: create its pod as it would, dry run.
    const agent = named<Workload>("DaemonSet", "netservice-agent");
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "netservice-agent-dry-run", namespace: systemNamespace, labels: agent.spec.template.metadata?.labels },
      spec: agent.spec.template.spec,
    };
    const created = await clients.http.request<KubeObject & { spec: { priority?: number } }>({
      method: "POST",
      path: `/api/v1/namespaces/${systemNamespace}/pods`,
      query: { dryRun: "All" },
      body: pod,
    });
    t.equal(created.spec.priority, 2000001000, "system-node-critical priority");
  });
});
