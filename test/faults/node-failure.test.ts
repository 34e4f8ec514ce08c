// A node that dies under churn, with kube-controller-manager's node
// lifecycle controller running (grace period 8 s, checked every second) and
// the simulated kubelets posting Node heartbeats every second: the node is
// powered off (its heartbeats and its agent stop), the lifecycle controller
// marks it Unknown and taints it unreachable, and its endpoints must be
// published not ready without any word from the dead agent; then it comes
// back. Then a node that lies, with its agent's own token.
import { setTimeout as delay } from "node:timers/promises";
import { KubeConfig } from "@kubernetes/client-node";
import t from "tap";
import { agentFieldManager, apiVersion, reportKind, type ReportSpec } from "../../common/api.ts";
import { Applier } from "../../common/kube/apply.ts";
import { makeClients } from "../../common/kube/client.ts";
import type { KubeObject } from "../../common/kube/object.ts";
import { eventually, expect } from "../helpers/eventually.ts";
import { boundedTeardown } from "../helpers/teardown.ts";
import type { SliceJson } from "./support/checker.ts";
import { assertCompared, assertHoldsExact, churnNamespace, FaultEnvironment } from "./support/environment.ts";
import { recordResult, seconds } from "./support/results.ts";

const env = await FaultEnvironment.start(t, {
  controllerManagerFlags: ["--controllers=node-lifecycle-controller", "--node-monitor-period=1s", "--node-monitor-grace-period=8s"],
  nodeHeartbeatIntervalMs: 1000,
});
const started = await env.startPrograms();
const agents = new Map(env.nodes.map((node, i) => [node, started.agents[i]!]));
await env.populateAndConverge(24);
const victim = env.nodes[1] ?? "";
const survivors = env.nodes.filter((node) => node !== victim);

t.test("a node powered off mid-churn: its endpoints not ready within a second of the Node turning Unknown, back when it returns", async (t) => {
  const churn = env.churn({ nodes: () => survivors });
  await churn.start();
  await delay(3000);
  const onVictim = await publishedOn(victim);
  t.ok(onVictim.total > 0 && onVictim.serving === onVictim.total, `${victim} publishes ${onVictim.total} serving endpoints`);

  await agents.get(victim)!.kill("SIGKILL");
  env.sim.kubelet.powerOff(victim);
  const offAt = Date.now();
  const unknownAt = await eventually(async () => {
    expect((await nodeReady(victim)) === "Unknown", "the lifecycle controller marks the Node Unknown");
    return Date.now();
  }, { timeoutMs: 60_000, intervalMs: 50 });
  const notServingAt = await eventually(async () => {
    const now = await publishedOn(victim);
    expect(now.total > 0 && now.serving === 0, `${now.serving} of ${now.total} endpoints on ${victim} still serving`);
    return Date.now();
  }, { timeoutMs: 60_000, intervalMs: 50 });
  const latency = notServingAt - unknownAt;
  t.pass(`Node Unknown ${seconds((unknownAt - offAt) / 1000)} s after the power-off; its endpoints not ready ${latency} ms later`);

  await delay(5000);
  await churn.stop();
  const held = await env.checker.waitForConvergence({ timeoutMs: 60_000 });
  t.pass(`exact while the node is down: ${held.addresses} addresses, the dead node's not serving`);
  assertCompared(t, held.compared, "while the node was down, the check");

  env.sim.kubelet.powerOn(victim);
  await agents.get(victim)!.start();
  const backAt = Date.now();
  const converged = await env.checker.waitForConvergence({ since: backAt, timeoutMs: 120_000 });
  assertCompared(t, converged.compared, "after convergence");
  await assertHoldsExact(t, env.checker);
  recordResult(t, {
    scenario: `${victim} powered off (Node heartbeats and agent stopped), node lifecycle controller running (grace 8 s)`,
    load: churn.describe(),
    outcome:
      `Node Unknown and tainted unreachable ${seconds((unknownAt - offAt) / 1000)} s after the power-off; its ${onVictim.total} endpoints ` +
      `published not ready ${latency} ms after the Node turned Unknown (polled every 50 ms), with no word from its agent; the other ` +
      `nodes exact throughout (${held.seconds} s after the churn stopped); powered on with its agent: exact again`,
    convergeSeconds: converged.seconds,
    from: "power-on and agent start",
  });
});

t.test("a node that lies mid-churn, with its agent's own token: another node's pod, a pod that does not exist, a future triggerTime", async (t) => {
  const liar = env.nodes[2] ?? "";
  const honest = env.nodes[0] ?? "";
  const churn = env.churn();
  await churn.start();
  await delay(3000);
  // The liar's own agent would overwrite the forgery at its next write: it is held while the forgery stands.
  const agent = agents.get(liar)!;
  agent.pause();
  t.teardown(() => agent.resume());
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(await env.programs.agentKubeconfig(liar));
  const clients = makeClients(kubeConfig, { userAgent: "netservice-faults-liar/0.1.0" });
  boundedTeardown(t, { name: "the liar's clients", timeoutMs: 10_000, run: () => clients.close() });

  const reportPath = `/apis/${apiVersion}/namespaces/${env.systemNamespace}/netservicenodereports/${liar}.0`;
  const stored = await env.admin.http.request<KubeObject & { spec: ReportSpec }>({ method: "GET", path: reportPath });
  const coreAll = await env.admin.http.request<KubeObject>({ method: "GET", path: `/apis/${apiVersion}/namespaces/${churnNamespace}/netservices/core-all` });
  // A pod of the honest node that the churn leaves alone (and no NetService selects), so that it exists throughout.
  const victim = await env.applier.apply({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "bystander", namespace: churnNamespace },
    spec: { nodeName: honest, containers: [{ name: "app", image: "registry.k8s.io/pause:3.10" }] },
  }) as KubeObject & { metadata: { name: string; uid: string } };
  const forgedPods = [
    { namespace: churnNamespace, name: victim.metadata.name, uid: victim.metadata.uid, serving: true, terminating: false },
    { namespace: churnNamespace, name: "ghost", uid: "00000000-0000-0000-0000-00000000dead", serving: true, terminating: false },
  ];
  const first = stored.spec.pods.length;
  const forgedEndpoints = [{ pod: first, addresses: ["10.10.66.1"] }, { pod: first + 1, addresses: ["10.10.66.2"] }];
  const entry = stored.spec.netServices.find((each) => each.name === "core-all");
  const netServices = entry
    ? stored.spec.netServices.map((each) => (each === entry ? { ...each, endpoints: [...each.endpoints, ...forgedEndpoints] } : each))
    : [...stored.spec.netServices, { namespace: churnNamespace, name: "core-all", uid: coreAll.metadata!.uid!, generation: coreAll.metadata!.generation ?? 1, endpoints: forgedEndpoints }];
  const forged = {
    apiVersion,
    kind: reportKind,
    metadata: { name: `${liar}.0`, namespace: env.systemNamespace, labels: stored.metadata?.labels, ownerReferences: stored.metadata?.ownerReferences },
    spec: { ...stored.spec, triggerTime: "2099-01-01T00:00:00.000Z", pods: [...stored.spec.pods, ...forgedPods], netServices },
  };
  const forgedAt = Date.now();
  await new Applier(clients.http, { fieldManager: agentFieldManager }).apply(forged);
  await t.rejects(
    new Applier(clients.http, { fieldManager: agentFieldManager }).apply({ ...forged, metadata: { ...forged.metadata, name: `${honest}.1` } }),
    /may write only the reports named/,
    "the liar cannot write a report part of the honest node",
  );

  // While the forgery stands: never a forged address, the trigger time never the future.
  let polls = 0;
  while (Date.now() - forgedAt < 12_000) {
    const slices = await env.admin.http.request<{ items: SliceJson[] }>({
      method: "GET",
      path: `/apis/discovery.k8s.io/v1/namespaces/${churnNamespace}/endpointslices`,
      query: { labelSelector: "kubernetes.io/service-name=core-all,endpointslice.kubernetes.io/managed-by=netservice-aggregator.svcctl.metaswitch.com" },
    });
    const endpoints = slices.items.flatMap((slice) => slice.endpoints ?? []);
    const leaked = endpoints.filter((endpoint) => endpoint.addresses.some((address) => address.startsWith("10.10.66.")));
    if (leaked.length > 0) t.fail(`forged addresses published: ${JSON.stringify(leaked)}`);
    const trigger = (await env.admin.http.request<KubeObject>({ method: "GET", path: `/api/v1/namespaces/${churnNamespace}/endpoints/core-all` })).metadata?.annotations?.["endpoints.kubernetes.io/last-change-trigger-time"];
    if (trigger && Date.parse(trigger) > Date.now() + 1000) t.fail(`the future published as the trigger time: ${trigger}`);
    polls++;
    await delay(200);
  }
  t.pass(`${polls} polls over 12 s: no forged address, no future trigger time`);
  const rejected = { otherNode: await started.aggregator.metric("netservice_aggregator_rejected_endpoints_total", { reason: "other-node" }), notFound: await started.aggregator.metric("netservice_aggregator_rejected_endpoints_total", { reason: "not-found" }) };
  t.ok((rejected.otherNode ?? 0) >= 1 && (rejected.notFound ?? 0) >= 1, `counted: ${JSON.stringify(rejected)}`);
  const events = await env.admin.http.request<{ items: { reason?: string; type?: string; note?: string }[] }>({ method: "GET", path: `/apis/events.k8s.io/v1/namespaces/${churnNamespace}/events` });
  const warning = events.items.find((event) => event.reason === "ForgedEndpoints" && event.type === "Warning");
  t.match(warning?.note, new RegExp(`node ${liar} reported pod ${churnNamespace}/${victim.metadata.name}, which runs on node ${honest}`), "a Warning Event names the liar and the pod");

  agent.resume();
  const resumedAt = Date.now();
  await delay(3000);
  await churn.stop();
  const converged = await env.checker.waitForConvergence({ since: resumedAt, timeoutMs: 120_000 });
  assertCompared(t, converged.compared, "after convergence");
  await assertHoldsExact(t, env.checker);
  recordResult(t, {
    scenario: `${liar}'s agent token writes a forged report: ${honest}'s pod ${victim.metadata.name} at 10.10.66.1, a pod that does not exist at 10.10.66.2, triggerTime 2099 (its own agent held meanwhile)`,
    load: churn.describe(),
    outcome:
      `neither forged address published in ${polls} polls over 12 s, the trigger time never in the future; rejected endpoints counted ` +
      `(other node ${rejected.otherNode}, not found ${rejected.notFound}), a ForgedEndpoints Warning Event naming ${liar} and the pod; ` +
      `a part of the honest node's report refused to the liar's token; exact convergence once its agent resumed`,
    convergeSeconds: converged.seconds,
    from: "the liar's agent resumed",
  });
});

t.test("no program crashed", async (t) => {
  t.ok(started.aggregator.running, "the aggregator runs");
  t.equal(started.aggregator.starts, 1, "the aggregator never restarted");
});

async function nodeReady(node: string): Promise<string | undefined> {
  const object = await env.admin.http.request<{ status?: { conditions?: { type: string; status: string }[] } }>({ method: "GET", path: `/api/v1/nodes/${node}` });
  return object.status?.conditions?.find((condition) => condition.type === "Ready")?.status;
}

/** Our EndpointSlices' endpoints on the node, and how many of them serve. */
async function publishedOn(node: string): Promise<{ total: number; serving: number }> {
  const list = await env.admin.http.request<{ items: SliceJson[] }>({
    method: "GET",
    path: `/apis/discovery.k8s.io/v1/namespaces/${churnNamespace}/endpointslices`,
    query: { labelSelector: "endpointslice.kubernetes.io/managed-by=netservice-aggregator.svcctl.metaswitch.com" },
  });
  const endpoints = list.items.flatMap((slice) => slice.endpoints ?? []).filter((endpoint) => endpoint.nodeName === node);
  return { total: endpoints.length, serving: endpoints.filter((endpoint) => endpoint.conditions?.serving === true).length };
}
