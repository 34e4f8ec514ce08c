// Nodes and agents that die, and a node that lies, against a real control
// plane with kube-controller-manager's node lifecycle controller running
// (grace period shortened to 8 s), deploy/ installed, each agent holding a
// service-account token bound to a pod on its node, and the aggregator its
// own. The simulated kubelets post Node heartbeats every second; a node is
// "powered off" by stopping its heartbeats and its agent.
//
// Latencies are recorded (t.comment), never asserted.
import path from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import t from "tap";
import { Aggregator } from "../../aggregator/aggregator.ts";
import { agentFieldManager, apiVersion, labels, reportKind } from "../../common/api.ts";
import { Applier } from "../../common/kube/apply.ts";
import type { KubeClients } from "../../common/kube/client.ts";
import type { KubeObject } from "../../common/kube/object.ts";
import { createRootLogger } from "../../common/log.ts";
import { repoRoot } from "../../hack/cluster/binaries.ts";
import { applyManifests, loadManifests } from "../../hack/manifests.ts";
import { SimulatedCluster } from "../../hack/sim/cluster.ts";
import { NodeAgent } from "../../node-agent/agent.ts";
import { listPods } from "../e2e/cluster-state.ts";
import type { SliceJson } from "../helpers/aggregator-fixtures.ts";
import { startControlPlane } from "../helpers/control-plane.ts";
import { agentAsDeployed, aggregatorAsDeployed, clientsFor, installDeploy } from "../helpers/credentials.ts";
import { eventually, expect } from "../helpers/eventually.ts";
import { boundedTeardown } from "../helpers/teardown.ts";

const systemNamespace = "netservice-system";
const ns = "nf";
const wait = { timeoutMs: 90_000, intervalMs: 50 };
const logger = createRootLogger({ env: { LOG_LEVEL: process.env.LOG_LEVEL ?? "error", LOG_FORMAT: "text" }, destination: process.stderr });

const plane = await startControlPlane(t, {
  extraFlags: {
    "kube-controller-manager": ["--controllers=node-lifecycle-controller", "--node-monitor-period=1s", "--node-monitor-grace-period=8s"],
  },
});
await installDeploy(plane);
const admin = clientsFor(plane.kubeconfig);
boundedTeardown(t, { name: "admin clients", timeoutMs: 10_000, run: () => admin.close() });
const user = new Applier(admin.http, { fieldManager: "netservice-test" });
const kubeConfig = new KubeConfig();
kubeConfig.loadFromFile(plane.kubeconfig);
const sim = new SimulatedCluster({ kubeConfig, clients: admin, heartbeatIntervalMs: 1000, maxGracePeriodMs: 1000 });
t.teardown(() => sim.stop((line) => t.comment(line)));
await sim.start();
const [up, down] = (await sim.addNodes(2)).map((node) => node.name) as [string, string];
await applyManifests(user, admin.http, await loadManifests(path.join(repoRoot, "hack", "demo", "networks.yaml")));
await user.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns } });

/** Clients holding the token the kubelet would mount into the agent's pod on the node. */
const agentClients = new Map<string, KubeClients>();
for (const node of [up, down]) {
  const { clients } = await agentAsDeployed(admin, plane.kubeconfig, systemNamespace, node);
  agentClients.set(node, clients);
  boundedTeardown(t, { name: `agent clients of ${node}`, timeoutMs: 10_000, run: () => clients.close() });
}
const agents = new Map<string, NodeAgent>();
async function startAgent(node: string): Promise<NodeAgent> {
  const agent = new NodeAgent(node, agentClients.get(node)!, { systemNamespace, heartbeatIntervalMs: 1000, logger: logger.child({ node }) });
  agents.set(node, agent);
  await agent.start();
  return agent;
}
boundedTeardown(t, { name: "agents", timeoutMs: 30_000, run: async () => { await Promise.all([...agents.values()].map((agent) => agent.stop())); } });
await startAgent(up);
await startAgent(down);

const { pod: aggregatorPod, clients: aggregatorClients } = await aggregatorAsDeployed(admin, plane.kubeconfig, systemNamespace);
boundedTeardown(t, { name: "aggregator clients", timeoutMs: 10_000, run: () => aggregatorClients.close() });
// Longer than the Node grace period (8 s), so that a powered-off node is caught by its Node first.
const heartbeatTimeoutMs = 20_000;
const aggregator = new Aggregator(aggregatorClients, { identity: aggregatorPod.metadata.name, systemNamespace, heartbeatTimeoutMs, logger });
boundedTeardown(t, { name: "aggregator", timeoutMs: 30_000, run: () => aggregator.stop() });
await aggregator.start();

await user.apply({ apiVersion, kind: "NetService", metadata: { name: "nfs", namespace: ns }, spec: { netAttachDef: "networks/core", selector: { app: "nf" } } });
for (const [name, node] of [["nf-up-0", up], ["nf-up-1", up], ["nf-down-0", down], ["nf-down-1", down]] as const) {
  await user.apply({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: ns, labels: { app: "nf" }, annotations: { "k8s.v1.cni.cncf.io/networks": "networks/core" } },
    spec: { nodeName: node, terminationGracePeriodSeconds: 1, containers: [{ name: "app", image: "registry.k8s.io/pause:3.10" }] },
  });
}

type Condition = { type: string; status: string; reason?: string; message?: string };

async function slices(): Promise<SliceJson[]> {
  const list = await admin.http.request<{ items: SliceJson[] }>({
    method: "GET",
    path: `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`,
    query: { labelSelector: `${labels.serviceName}=nfs,${labels.managedBy}` },
  });
  return list.items.filter((slice) => slice.metadata?.labels?.[labels.managedBy]?.startsWith("netservice"));
}

/** node -> [pod, ready, serving] of every published IPv4 endpoint. */
async function endpointsByNode(): Promise<Map<string, [string, boolean, boolean][]>> {
  const byNode = new Map<string, [string, boolean, boolean][]>();
  for (const slice of await slices()) {
    if (slice.addressType !== "IPv4") continue;
    for (const endpoint of slice.endpoints ?? []) {
      const node = endpoint.nodeName ?? "";
      byNode.set(node, [...(byNode.get(node) ?? []), [endpoint.targetRef?.name ?? "", endpoint.conditions?.ready ?? false, endpoint.conditions?.serving ?? false]]);
    }
  }
  return byNode;
}

const allReady = (entries: [string, boolean, boolean][] | undefined) => entries?.length === 2 && entries.every(([, ready, serving]) => ready && serving);
const noneServing = (entries: [string, boolean, boolean][] | undefined) => entries?.length === 2 && entries.every(([, ready, serving]) => !ready && !serving);

async function nodeReady(node: string): Promise<string | undefined> {
  const object = await admin.http.request<KubeObject & { status?: { conditions?: Condition[] } }>({ method: "GET", path: `/api/v1/nodes/${node}` });
  return object.status?.conditions?.find((condition) => condition.type === "Ready")?.status;
}

async function netServiceConditions(): Promise<Condition[]> {
  const object = await admin.http.request<KubeObject & { status?: { conditions?: Condition[] } }>({
    method: "GET",
    path: `/apis/${apiVersion}/namespaces/${ns}/netservices/nfs`,
  });
  return object.status?.conditions ?? [];
}

async function eventsOf(reason: string): Promise<{ type?: string; note?: string }[]> {
  const list = await admin.http.request<{ items: { reason?: string; type?: string; note?: string; regarding?: { name?: string } }[] }>({
    method: "GET",
    path: `/apis/events.k8s.io/v1/namespaces/${ns}/events`,
  });
  return list.items.filter((event) => event.reason === reason && event.regarding?.name === "nfs");
}

t.test("every pod's endpoint is published ready while both nodes and agents are alive", async (t) => {
  const byNode = await eventually(async () => {
    const found = await endpointsByNode();
    expect(allReady(found.get(up)) && allReady(found.get(down)), `all four ready: ${JSON.stringify([...found])}`);
    return found;
  }, wait);
  t.equal(byNode.size, 2);
  const zones = new Map(sim.nodes.list().map((node) => [node.name, node.zone]));
  for (const slice of await slices()) {
    t.equal(slice.metadata?.labels?.[labels.headless], "", `${slice.metadata?.name}: service.kubernetes.io/headless, so kube-proxy leaves it alone`);
    for (const endpoint of slice.endpoints ?? []) {
      t.equal((endpoint as { zone?: string }).zone, zones.get(endpoint.nodeName ?? ""), `${endpoint.addresses[0]}: the zone of its node`);
    }
  }
});

t.test("a powered-off node: its endpoints are not ready soon after the node lifecycle controller marks it, and come back with it", async (t) => {
  await agents.get(down)?.stop();
  agents.delete(down);
  sim.kubelet.powerOff(down);
  const offAt = Date.now();

  // Polled every 50 ms: each figure is the time until a poll first saw it.
  await eventually(async () => expect((await nodeReady(down)) === "Unknown", "node marked Unknown"), wait);
  const unknownAt = Date.now();
  const byNode = await eventually(async () => {
    const found = await endpointsByNode();
    expect(noneServing(found.get(down)), `the dead node's endpoints not serving: ${JSON.stringify([...found])}`);
    return found;
  }, wait);
  const notServingAt = Date.now();
  t.comment(`node powered off -> Node Ready=Unknown: ${unknownAt - offAt} ms; Node Unknown -> endpoints not ready: ${notServingAt - unknownAt} ms`);
  t.ok(allReady(byNode.get(up)), "the live node's endpoints stay ready");

  const endpoints = await admin.http.request<{ subsets?: { addresses?: { targetRef?: { name?: string } }[]; notReadyAddresses?: { targetRef?: { name?: string } }[] }[] }>({
    method: "GET",
    path: `/api/v1/namespaces/${ns}/endpoints/nfs`,
  });
  const names = (list: { targetRef?: { name?: string } }[] | undefined) => [...new Set((list ?? []).map((address) => address.targetRef?.name))].sort();
  await eventually(async () => {
    const current = await admin.http.request<typeof endpoints>({ method: "GET", path: `/api/v1/namespaces/${ns}/endpoints/nfs` });
    const notReady = names(current.subsets?.[0]?.notReadyAddresses);
    expect(JSON.stringify(notReady) === JSON.stringify(["nf-down-0", "nf-down-1"]), `in notReadyAddresses: ${JSON.stringify(notReady)}`);
  }, wait);
  await eventually(async () => {
    const nodes = (await netServiceConditions()).find((condition) => condition.type === "NodesHealthy");
    expect(nodes?.status === "False" && (nodes.message ?? "").includes(down), `NodesHealthy False naming ${down}: ${JSON.stringify(nodes)}`);
  }, wait);
  await eventually(async () => expect((await eventsOf("NodesUnhealthy")).some((event) => event.type === "Warning"), "a Warning Event"), wait);
  t.pass("status condition and Warning Event name the node");

  sim.kubelet.powerOn(down);
  await startAgent(down);
  const onAt = Date.now();
  await eventually(async () => {
    const found = await endpointsByNode();
    expect(allReady(found.get(down)), `back: ${JSON.stringify([...found])}`);
  }, wait);
  t.comment(`node powered on -> its endpoints ready again: ${Date.now() - onAt} ms`);
  await eventually(async () => expect((await netServiceConditions()).find((condition) => condition.type === "NodesHealthy")?.status === "True", "NodesHealthy True"), wait);
  t.pass("the condition reverses");
});

t.test("an agent that stops on a live node: its endpoints are not ready once its heartbeat is older than the timeout, and come back", async (t) => {
  const agent = agents.get(down)!;
  const lastBeat = agent.stats.heartbeats;
  await agent.stop();
  agents.delete(down);
  const stoppedAt = Date.now();
  await eventually(async () => {
    const found = await endpointsByNode();
    expect(noneServing(found.get(down)), `not serving: ${JSON.stringify([...found])}`);
  }, wait);
  t.comment(`agent stopped (heartbeat timeout ${heartbeatTimeoutMs} ms, renewals every 1000 ms) -> endpoints not ready: ${Date.now() - stoppedAt} ms`);
  t.ok(lastBeat > 0, "it had renewed its heartbeat");
  t.equal(await nodeReady(down), "True", "the Node itself stayed Ready");
  await eventually(async () => {
    const nodes = (await netServiceConditions()).find((condition) => condition.type === "NodesHealthy");
    expect((nodes?.message ?? "").includes("stopped renewing its heartbeat"), `says why: ${JSON.stringify(nodes)}`);
  }, wait);
  const metrics = aggregator.metrics().unhealthyNodes;
  t.same(metrics, [{ problem: "AgentHeartbeatStale", count: 1 }], "the metric counts it");

  await startAgent(down);
  await eventually(async () => expect(allReady((await endpointsByNode()).get(down)), "back"), wait);
  t.same(aggregator.metrics().unhealthyNodes, [], "and no longer");
});

t.test("a node publishes only its own pods: a forged report under a real agent token", async (t) => {
  const liar = agentClients.get(down)!;
  const liarApplier = new Applier(liar.http, { fieldManager: agentFieldManager });
  // The liar's agent is stopped so that its own writes do not race the forgery.
  await agents.get(down)?.stop();
  agents.delete(down);
  const node = await admin.http.request<KubeObject>({ method: "GET", path: `/api/v1/nodes/${down}` });
  const ns1 = (await admin.http.request<KubeObject>({ method: "GET", path: `/apis/${apiVersion}/namespaces/${ns}/netservices/nfs` })).metadata!;
  const upPod = (await listPods(admin, ns, "app=nf")).find((pod) => pod.metadata.name === "nf-up-0")!;
  const downPod = (await listPods(admin, ns, "app=nf")).find((pod) => pod.metadata.name === "nf-down-0")!;
  const forged = {
    apiVersion,
    kind: reportKind,
    metadata: {
      name: `${down}.0`,
      namespace: systemNamespace,
      labels: { [labels.nodeName]: down },
      ownerReferences: [{ apiVersion: "v1", kind: "Node", name: down, uid: node.metadata!.uid! }],
    },
    spec: {
      nodeName: down,
      triggerTime: "2099-01-01T00:00:00.000Z",
      pods: [
        { namespace: ns, name: "nf-up-0", uid: upPod.metadata.uid, serving: true, terminating: false },
        { namespace: ns, name: "nf-ghost", uid: "00000000-0000-0000-0000-000000000000", serving: true, terminating: false },
        { namespace: ns, name: "nf-down-0", uid: downPod.metadata.uid, serving: true, terminating: false },
      ],
      netServices: [
        {
          namespace: ns,
          name: "nfs",
          uid: ns1.uid,
          generation: ns1.generation ?? 1,
          endpoints: [
            { pod: 0, addresses: ["10.10.66.1"] },
            { pod: 1, addresses: ["10.10.66.2"] },
            { pod: 2, addresses: ["10.10.66.3"] },
          ],
        },
      ],
    },
  };
  await liarApplier.apply(forged);
  t.comment(`forged: ${down} claims nf-up-0 (runs on ${up}) at 10.10.66.1, a pod that does not exist at 10.10.66.2, its own nf-down-0 at 10.10.66.3, triggerTime 2099`);

  const published = await eventually(async () => {
    const ips = (await slices()).flatMap((slice) => (slice.endpoints ?? []).map((endpoint) => [endpoint.addresses[0], endpoint.targetRef?.name, endpoint.nodeName]));
    expect(ips.some(([ip]) => ip === "10.10.66.3"), `the node's own pod's claimed address is published (as its kubelet could): ${JSON.stringify(ips)}`);
    return ips;
  }, wait);
  t.comment(`published: ${JSON.stringify(published.filter(([, name]) => name !== undefined).sort())}`);
  t.notOk(published.some(([ip]) => ip === "10.10.66.1" || ip === "10.10.66.2"), "neither the other node's pod nor the ghost");
  t.ok(published.some(([, name, nodeName]) => name === "nf-up-0" && nodeName === up), "nf-up-0 is still published from its own node");
  await eventually(async () => expect((await eventsOf("ForgedEndpoints")).some((event) => event.type === "Warning" && (event.note ?? "").includes("nf-up-0")), "a Warning Event"), wait);
  t.ok(aggregator.metrics().rejectedEndpoints.otherNode >= 1, "counted");
  const endpoints = await admin.http.request<{ metadata?: { annotations?: Record<string, string> } }>({ method: "GET", path: `/api/v1/namespaces/${ns}/endpoints/nfs` });
  const trigger = endpoints.metadata?.annotations?.["endpoints.kubernetes.io/last-change-trigger-time"] ?? "";
  t.ok(Date.parse(trigger) <= Date.now(), `the trigger time published is not the future (${trigger})`);

  const otherNodesPart = { ...forged, metadata: { ...forged.metadata, name: `${up}.1` } };
  await t.rejects(liarApplier.apply(otherNodesPart), /may write only the reports named/, "another node's report name is refused");
  await t.rejects(liarApplier.apply({ ...forged, metadata: { ...forged.metadata, name: `${down}.65` } }), /0 to 64/, "part numbers are bounded");

  await startAgent(down);
  await eventually(async () => {
    const ips = (await slices()).flatMap((slice) => (slice.endpoints ?? []).map((endpoint) => endpoint.addresses[0]));
    expect(!ips.includes("10.10.66.3"), "the agent's next write restores the truth");
  }, wait);
  t.comment(`pod reads by the aggregator so far: ${aggregator.metrics().podReads} for ${(await listPods(admin, ns, "app=nf")).length} pods and 2 forged entries`);
});
