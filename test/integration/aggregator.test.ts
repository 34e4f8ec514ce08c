// The aggregator against a real control plane (API server, garbage collector,
// Kubernetes' own endpoint controllers). The test writes the node reports
// itself, as agents would, so it controls the aggregator's input exactly, and
// checks what the aggregator publishes.
import { spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import t, { type Test } from "tap";
import { agentFieldManager, aggregatorFieldManager, apiVersion, labels, sliceManagedBy } from "../../common/api.ts";
import { Applier } from "../../common/kube/apply.ts";
import { makeClients } from "../../common/kube/client.ts";
import { loadKubeConfig } from "../../common/kube/kubeconfig.ts";
import type { KubeObject } from "../../common/kube/object.ts";
import { resourcePath } from "../../common/kube/resources.ts";
import { createRootLogger } from "../../common/log.ts";
import { freePort } from "../../hack/cluster/process.ts";
import { applyManifests, loadManifests } from "../../hack/manifests.ts";
import { Aggregator, type AggregatorOptions } from "../../aggregator/aggregator.ts";
import {
  endpointIps,
  NodeReports,
  podUid,
  Published,
  readyCondition,
  type SliceJson,
} from "../helpers/aggregator-fixtures.ts";
import { startControlPlane } from "../helpers/control-plane.ts";
import { eventually, expect } from "../helpers/eventually.ts";
import { applyNamespaces, applyNodes, getObject, netServiceObject } from "../helpers/objects.ts";
import { boundedTeardown } from "../helpers/teardown.ts";

const repoRoot = path.resolve(import.meta.dirname, "..", "..");
const systemNamespace = "netservice-system";
const ns = "agg";
const wait = { timeoutMs: 60_000, intervalMs: 200 };

const plane = await startControlPlane(t);
const clients = makeClients(loadKubeConfig({ kubeconfig: plane.kubeconfig, env: {} }), { userAgent: "netservice-test/0.1.0" });
boundedTeardown(t, { name: "clients", timeoutMs: 10_000, run: () => clients.close() });
const { http } = clients;
const user = new Applier(http, { fieldManager: "netservice-test" });
const logger = createRootLogger({
  env: { LOG_LEVEL: process.env.LOG_LEVEL ?? "warn", LOG_FORMAT: "text" },
  destination: { write: (line: string) => process.stderr.write(line) },
});

await applyManifests(user, http, await loadManifests(path.join(repoRoot, "crds", "netservice.yaml"), path.join(repoRoot, "crds", "netservicenodereport.yaml")));
await applyNamespaces(user, systemNamespace, ns);
await applyNodes(user, "node-1", "node-2");

const reports = new NodeReports(http, systemNamespace);
const published = new Published(http, ns);

function startAggregator(identity: string, options: Partial<AggregatorOptions> = {}): Aggregator {
  const aggregator = new Aggregator(clients, {
    identity,
    systemNamespace,
    // Short enough that a test sees a takeover quickly, long enough for a loaded machine.
    lease: { leaseDurationSeconds: 8, renewDeadlineSeconds: 6, retryPeriodSeconds: 1 },
    takenRecheckMs: 1000,
    // The reports here are written by the test, for pods that do not exist and nodes without agents:
    // node-liveness.test.ts and pod-placement.test.ts check those rules with agents and pods.
    verifyPodPlacement: false,
    heartbeatTimeoutMs: 0,
    logger: logger.child({ name: identity }),
    ...options,
  });
  boundedTeardown(t, { name: "aggregator", timeoutMs: 30_000, run: () => aggregator.stop() });
  return aggregator;
}

const first = startAggregator("aggregator-a");
/** The standby of the two-replica test. */
const second = startAggregator("aggregator-b");
await first.start();
await eventually(() => expect(first.leading, "aggregator-a leads"), wait);

/** Applies a NetService as a user would and returns it as stored (uid, generation). */
async function applyNetService(name: string, spec: Record<string, unknown>): Promise<KubeObject> {
  return user.apply(netServiceObject(ns, name, { netAttachDef: "core", selector: { app: name }, ...spec }));
}

function writesOf(aggregator: Aggregator): number {
  return aggregator.metrics().writes.reduce((sum, write) => sum + write.count, 0);
}

/** Ours: controlled by the NetService, labelled for it. */
function assertOwned(t: Test, object: KubeObject | undefined, netService: KubeObject, what: string): void {
  t.same(
    object?.metadata?.ownerReferences,
    [{ apiVersion, kind: "NetService", name: netService.metadata?.name, uid: netService.metadata?.uid, controller: true, blockOwnerDeletion: true }],
    `${what}: controlled by the NetService`,
  );
  t.equal(object?.metadata?.labels?.[labels.netService], netService.metadata?.name, `${what}: labelled`);
}

const sliceIps = (slices: SliceJson[], family: string) =>
  slices
    .filter((slice) => slice.addressType === family && slice.metadata?.labels?.[labels.managedBy] === sliceManagedBy)
    .flatMap((slice) => slice.endpoints ?? [])
    .flatMap((endpoint) => endpoint.addresses)
    .sort();

let corens: KubeObject = await applyNetService("corens", { ports: [{ name: "sip", port: 5060, protocol: "UDP" }] });
const trigger1 = "2026-03-01T10:00:00.100Z";
const trigger2 = "2026-03-01T10:00:00.200Z";

t.test("publishes both Services, the Endpoints and the slices from the nodes' reports, and a status", async (t) => {
  // node-2's report goes first. Its one pod is terminating, so it adds
  // nothing to the Endpoints, and a write that changes nothing else does not
  // move their trigger time (as upstream's Endpoints controller): had node-1's
  // report been reconciled alone first, the Endpoints would keep trigger1.
  // In this order, whichever reconciles see them, the Endpoints holding
  // node-1's pods have both reports merged (one informer delivers them in
  // order) and the newest trigger time.
  await reports.set("node-2", corens, [{ name: "utils-c", addresses: ["10.10.0.3"], serving: true, terminating: true }], trigger2);
  await reports.set("node-1", corens, [
    { name: "utils-a", addresses: ["10.10.0.1", "fd00:10::1"], hostname: "utils-a" },
    { name: "utils-b", addresses: ["10.10.0.2"], serving: false },
  ], trigger1);

  const endpoints = await eventually(async () => {
    const found = await published.endpoints("corens");
    const ips = endpointIps(found);
    expect(ips.ready.length === 2 && ips.notReady.length === 1, `Endpoints: ${JSON.stringify(ips)}`);
    return found;
  }, wait);
  t.same(
    endpointIps(endpoints),
    { ready: ["10.10.0.1", "fd00:10::1"], notReady: ["10.10.0.2"] },
    "ready in addresses, not Ready in notReadyAddresses, terminating left out (as upstream's Endpoints controller)",
  );
  const subset = endpoints?.subsets?.[0];
  t.same(
    subset?.addresses?.find((a) => a.ip === "10.10.0.1"),
    { ip: "10.10.0.1", hostname: "utils-a", nodeName: "node-1", targetRef: { kind: "Pod", namespace: ns, name: "utils-a", uid: podUid(ns, "utils-a") } },
    "targetRef, nodeName and hostname",
  );
  t.equal(subset?.notReadyAddresses?.find((a) => a.ip === "10.10.0.2")?.nodeName, "node-1");
  t.equal(endpoints?.metadata?.labels?.[labels.headless], "", "service.kubernetes.io/headless, as upstream's");
  t.same(subset?.ports, [{ name: "sip", port: 5060, protocol: "UDP" }]);
  t.equal(endpoints?.metadata?.labels?.[labels.skipMirror], "true", "skip-mirror");
  t.equal(endpoints?.metadata?.labels?.[labels.serviceName], "corens");
  t.equal(endpoints?.metadata?.annotations?.["endpoints.kubernetes.io/last-change-trigger-time"], trigger2, "the newest trigger time");
  assertOwned(t, endpoints, corens, "Endpoints");

  const headless = await published.service("corens");
  t.equal(headless?.spec?.clusterIP, "None", "headless");
  t.equal(headless?.spec?.selector, undefined, "no selector");
  t.same(headless?.spec?.ports?.map((p) => [p.name, p.port, p.protocol]), [["sip", 5060, "UDP"]]);
  assertOwned(t, headless, corens, "Service corens");
  const template = await published.service("corens-template");
  t.equal(template?.spec?.clusterIP, "None");
  t.same(template?.spec?.selector, { app: "corens" });
  assertOwned(t, template, corens, "Service corens-template");

  const slices = await eventually(async () => {
    const found = (await published.slices("corens")).filter((s) => s.metadata?.labels?.[labels.managedBy] === sliceManagedBy);
    expect(sliceIps(found, "IPv4").length === 3 && sliceIps(found, "IPv6").length === 1, `slices: ${found.length}`);
    return found;
  }, wait);
  t.same(slices.map((s) => [s.metadata?.name, s.addressType]), [["corens-ipv4-0", "IPv4"], ["corens-ipv6-0", "IPv6"]], "one family per slice");
  for (const slice of slices) {
    t.ok((slice.endpoints?.length ?? 0) <= 100, "at most 100 endpoints");
    t.same(slice.ports, [{ name: "sip", port: 5060, protocol: "UDP" }]);
    assertOwned(t, slice, corens, `slice ${slice.metadata?.name}`);
  }
  const v4 = slices[0]?.endpoints ?? [];
  t.same(v4.find((e) => e.addresses[0] === "10.10.0.1")?.conditions, { ready: true, serving: true, terminating: false });
  t.same(v4.find((e) => e.addresses[0] === "10.10.0.2")?.conditions, { ready: false, serving: false, terminating: false });
  t.same(v4.find((e) => e.addresses[0] === "10.10.0.3")?.conditions, { ready: false, serving: true, terminating: true });
  t.equal(v4.find((e) => e.addresses[0] === "10.10.0.1")?.hostname, "utils-a");
  t.equal(v4.find((e) => e.addresses[0] === "10.10.0.3")?.nodeName, "node-2");
  t.equal(v4.find((e) => e.addresses[0] === "10.10.0.1")?.targetRef?.uid, podUid(ns, "utils-a"));
  const mirrored = (await published.slices("corens")).filter((s) => s.metadata?.labels?.[labels.managedBy] !== sliceManagedBy);
  t.same(mirrored.map((s) => s.metadata?.name), [], "Kubernetes mirrors nothing");

  const status = await eventually(async () => {
    const found = await published.netService("corens");
    expect(found?.status?.readyEndpoints === 1, `status ${JSON.stringify(found?.status)}`);
    return found?.status;
  }, wait);
  t.match(status, { observedGeneration: corens.metadata?.generation, readyEndpoints: 1, notReadyEndpoints: 2, nodesReporting: 2 });
  t.match(readyCondition({ status }), { status: "True", reason: "EndpointsPublished" });
  await eventually(async () => expect((await published.events("corens")).some((e) => e.reason === "EndpointsPublished" && e.type === "Normal"), "an event for the transition"), wait);

  const managers = (endpoints?.metadata?.managedFields ?? []) as { manager?: string; operation?: string }[];
  t.ok(managers.some((m) => m.manager === aggregatorFieldManager && m.operation === "Apply"), "server-side apply under the aggregator's field manager");
});

t.test("a report change is followed; a report that changes nothing writes nothing", async (t) => {
  const before = {
    endpoints: (await published.endpoints("corens"))?.metadata?.resourceVersion,
    slices: (await published.slices("corens")).map((s) => s.metadata?.resourceVersion),
    services: [(await published.service("corens"))?.metadata?.resourceVersion, (await published.service("corens-template"))?.metadata?.resourceVersion],
  };
  const writes = writesOf(first);
  const reconciles = first.metrics().reconciles;
  await reports.rewrite("node-1", "2026-03-01T10:00:05.000Z");
  // Make the aggregator look at corens for sure: an annotation changes the NetService but not its spec.
  await http.request({
    method: "PATCH",
    path: resourcePath({ apiVersion, plural: "netservices", namespace: ns, name: "corens" }),
    contentType: "application/merge-patch+json",
    body: { metadata: { annotations: { "example.com/touched": "yes" } } },
  });
  await eventually(() => expect(first.metrics().reconciles > reconciles, "reconciled since"), wait);
  await eventually(() => expect(first.metrics().queueDepth === 0 && first.metrics().queueDelayed === 0, "queue drained"), wait);
  t.equal(writesOf(first), writes, "no write at all");
  t.same(
    {
      endpoints: (await published.endpoints("corens"))?.metadata?.resourceVersion,
      slices: (await published.slices("corens")).map((s) => s.metadata?.resourceVersion),
      services: [(await published.service("corens"))?.metadata?.resourceVersion, (await published.service("corens-template"))?.metadata?.resourceVersion],
    },
    before,
    "every resourceVersion unchanged",
  );

  await reports.set("node-1", corens, [
    { name: "utils-a", addresses: ["10.10.0.1", "fd00:10::1"], hostname: "utils-a" },
    { name: "utils-b", addresses: ["10.10.0.2"], serving: true },
  ]);
  await eventually(async () => {
    const ips = endpointIps(await published.endpoints("corens"));
    expect(ips.ready.includes("10.10.0.2"), `10.10.0.2 ready: ${JSON.stringify(ips)}`);
  }, wait);
  const slice = (await published.slices("corens")).find((s) => s.metadata?.name === "corens-ipv4-0");
  t.same(slice?.endpoints?.find((e) => e.addresses[0] === "10.10.0.2")?.conditions, { ready: true, serving: true, terminating: false });
  await eventually(async () => expect((await published.netService("corens"))?.status?.readyEndpoints === 2, "status counts 2 ready"), wait);
  t.equal((await published.service("corens"))?.metadata?.resourceVersion, before.services[0], "the Services were not touched");
});

t.test("reports of nodes that do not exist are ignored; deleting a Node removes its endpoints", async (t) => {
  await reports.set("node-ghost", corens, [{ name: "utils-g", addresses: ["10.10.0.9"] }]);
  // A change on a live node after the ghost's report: once it shows, the ghost's report was seen too.
  await reports.set("node-2", corens, [{ name: "utils-c", addresses: ["10.10.0.3", "10.10.0.4"], serving: true, terminating: true }]);
  await eventually(async () => expect(sliceIps(await published.slices("corens"), "IPv4").includes("10.10.0.4"), "node-2's change published"), wait);
  t.notOk(endpointIps(await published.endpoints("corens")).ready.includes("10.10.0.9"), "the ghost node's address is not published");
  t.equal((await published.netService("corens"))?.status?.nodesReporting, 2, "the ghost node does not count");

  await applyNodes(user, "node-ghost");
  // A report written before its Node existed names no owner: only the agent's next write, owned by the Node, counts.
  await reports.rewrite("node-ghost");
  await eventually(async () => expect(endpointIps(await published.endpoints("corens")).ready.includes("10.10.0.9"), "published once the Node exists"), wait);

  // The Node is deleted and re-created under its name: the old report never comes back (and the garbage collector removes it).
  await http.request({ method: "DELETE", path: resourcePath({ apiVersion: "v1", plural: "nodes", name: "node-ghost" }) });
  await eventually(async () => expect(!endpointIps(await published.endpoints("corens")).ready.includes("10.10.0.9"), "gone with its Node"), wait);
  await applyNodes(user, "node-ghost");
  const node1 = [{ name: "utils-a", addresses: ["10.10.0.1", "fd00:10::1"], hostname: "utils-a" }, { name: "utils-b", addresses: ["10.10.0.2"], serving: true }];
  await reports.set("node-1", corens, [...node1, { name: "utils-s", addresses: ["10.10.0.8"] }]);
  await eventually(async () => expect(endpointIps(await published.endpoints("corens")).ready.includes("10.10.0.8"), "node-1's change published"), wait);
  t.notOk(endpointIps(await published.endpoints("corens")).ready.includes("10.10.0.9"), "the re-created Node does not revive the old Node's report");
  await reports.set("node-1", corens, node1);
  await eventually(async () => expect(!endpointIps(await published.endpoints("corens")).ready.includes("10.10.0.8"), "node-1 back as it was"), wait);
  await eventually(async () => expect((await reports.get("node-ghost")) === undefined, "the garbage collector deleted the old Node's report"), wait);

  await http.request({ method: "DELETE", path: resourcePath({ apiVersion: "v1", plural: "nodes", name: "node-ghost" }) });
  await http.request({ method: "DELETE", path: resourcePath({ apiVersion: "v1", plural: "nodes", name: "node-2" }) });
  await eventually(async () => {
    const ips = endpointIps(await published.endpoints("corens"));
    const slices = sliceIps(await published.slices("corens"), "IPv4");
    expect(!ips.ready.includes("10.10.0.9") && !slices.includes("10.10.0.3"), `deleted nodes' endpoints gone: ${JSON.stringify(ips)} ${JSON.stringify(slices)}`);
  }, wait);
  t.same(sliceIps(await published.slices("corens"), "IPv4"), ["10.10.0.1", "10.10.0.2"]);
  await eventually(async () => expect((await published.netService("corens"))?.status?.nodesReporting === 1, "one node reporting"), wait);
  await reports.delete("node-ghost");
});

t.test("follows edits of the selector, ports, templateServiceName and ipFamilies", async (t) => {
  const edit = async (spec: Record<string, unknown>, { agentsCatchUp = true } = {}) => {
    corens = await user.apply(netServiceObject(ns, "corens", { netAttachDef: "core", selector: { app: "corens" }, ports: [{ name: "sip", port: 5060, protocol: "UDP" }], ...spec }));
    // The agents see the edit and report from the new generation: until then the status claims the old one.
    if (agentsCatchUp) await reports.regenerate(corens);
    return corens.metadata?.generation;
  };

  let generation = await edit({ selector: { app: "corens", tier: "edge" } }, { agentsCatchUp: false });
  await eventually(async () => expect((await published.service("corens-template"))?.spec?.selector?.tier === "edge", "template selector follows"), wait);
  await eventually(async () => {
    const status = (await published.netService("corens"))?.status;
    expect(/still publish from generation/.test(readyCondition(await published.netService("corens"))?.message ?? ""), `the message says the nodes are behind: ${JSON.stringify(status)}`);
    expect((status?.observedGeneration ?? 0) < (generation ?? 0), "observedGeneration stays behind while the node's entry is");
  }, wait);
  t.pass("no convergence claimed while node-1 still publishes from the old generation");
  await reports.regenerate(corens);
  await eventually(async () => expect((await published.service("corens-template"))?.spec?.selector?.tier === "edge", "template selector follows"), wait);
  await eventually(async () => expect((await published.netService("corens"))?.status?.observedGeneration === generation, "observedGeneration follows"), wait);

  generation = await edit({ selector: { app: "corens", tier: "edge" }, ports: [{ name: "sips", port: 5061 }, { name: "diameter", port: 3868, protocol: "SCTP" }] });
  const wanted = [["diameter", 3868, "SCTP"], ["sips", 5061, "TCP"]];
  await eventually(async () => {
    const portsOf = (ports: { name?: string; port?: number; protocol?: string }[] | undefined) =>
      (ports ?? []).map((p) => [p.name, p.port, p.protocol]).sort((a, b) => String(a[0]).localeCompare(String(b[0])));
    expect(JSON.stringify(portsOf((await published.service("corens"))?.spec?.ports)) === JSON.stringify(wanted), "headless Service ports");
    expect(JSON.stringify(portsOf((await published.service("corens-template"))?.spec?.ports)) === JSON.stringify(wanted), "template ports (the removed sip port is gone)");
    expect(JSON.stringify(portsOf((await published.endpoints("corens"))?.subsets?.[0]?.ports)) === JSON.stringify(wanted), "Endpoints ports");
    for (const slice of await published.slices("corens")) {
      if (slice.metadata?.labels?.[labels.managedBy] !== sliceManagedBy) continue;
      expect(JSON.stringify(portsOf(slice.ports)) === JSON.stringify(wanted), `ports of ${slice.metadata?.name}`);
    }
  }, wait);

  const oldTemplate = await published.service("corens-template");
  generation = await edit({ selector: { app: "corens", tier: "edge" }, ports: [{ name: "sips", port: 5061 }], templateServiceName: "corens-primary" });
  await eventually(async () => {
    expect((await published.service("corens-primary"))?.spec?.selector?.tier === "edge", "the new template Service exists");
    expect((await published.service("corens-template")) === undefined, "the old template Service is deleted");
  }, wait);
  assertOwned(t, await published.service("corens-primary"), corens, "new template");
  t.ok(oldTemplate, "there was an old template to delete");

  generation = await edit({ selector: { app: "corens", tier: "edge" }, ports: [{ name: "sips", port: 5061 }], templateServiceName: "corens-primary", ipFamilies: ["IPv6"] });
  await eventually(async () => {
    const ips = endpointIps(await published.endpoints("corens"));
    expect(JSON.stringify(ips) === JSON.stringify({ ready: ["fd00:10::1"], notReady: [] }), `IPv6 only: ${JSON.stringify(ips)}`);
    const slices = (await published.slices("corens")).filter((s) => s.metadata?.labels?.[labels.managedBy] === sliceManagedBy);
    expect(slices.length === 1 && slices[0]?.addressType === "IPv6", `only the IPv6 slice: ${slices.map((s) => s.metadata?.name).join(",")}`);
  }, wait);
  const headless = await published.service("corens");
  t.same([headless?.spec?.ipFamilyPolicy, headless?.spec?.ipFamilies], ["SingleStack", ["IPv6"]], "the headless Service is IPv6 only");
  await eventually(async () => expect((await published.netService("corens"))?.status?.observedGeneration === generation, "status caught up"), wait);
  t.match(readyCondition(await published.netService("corens")), { status: "True", reason: "EndpointsPublished" });
});

t.test("a user's own Service named like the NetService is never touched, and the status says so", async (t) => {
  const mine = await user.apply({
    apiVersion: "v1",
    kind: "Service",
    metadata: { namespace: ns, name: "taken", labels: { owner: "me" } },
    spec: { selector: { app: "mine" }, ports: [{ port: 80 }] },
  });
  const taken = await applyNetService("taken", {});
  await reports.set("node-1", taken, [{ name: "taken-a", addresses: ["10.20.0.1"] }]);

  const condition = await eventually(async () => {
    const found = readyCondition(await published.netService("taken"));
    expect(found?.reason === "ServiceNameTaken", `condition: ${JSON.stringify(found)}`);
    return found;
  }, wait);
  t.equal(condition?.status, "False");
  t.match(condition?.message, /Service agg\/taken already exists and is not owned by this NetService/);
  t.equal((await published.netService("taken"))?.status?.readyEndpoints, 0, "nothing counted as published");
  await eventually(async () => expect((await published.events("taken")).some((e) => e.reason === "ServiceNameTaken" && e.type === "Warning"), "a warning event"), wait);

  const after = await published.service("taken");
  t.equal(after?.metadata?.resourceVersion, mine.metadata?.resourceVersion, "the user's Service was not written");
  t.equal(after?.metadata?.ownerReferences, undefined);
  t.same(after?.metadata?.labels, { owner: "me" });
  t.notOk(
    ((after?.metadata?.managedFields ?? []) as { manager?: string }[]).some((m) => m.manager === aggregatorFieldManager),
    "no field of it is ours",
  );
  t.same(sliceIps(await published.slices("taken"), "IPv4"), [], "no addresses published as that Service's endpoints");
  const endpoints = await published.endpoints("taken");
  t.notOk(endpoints?.metadata?.labels?.[labels.netService], "its Endpoints (Kubernetes') untouched");
  assertOwned(t, await published.service("taken-template"), taken, "the template Service");

  await user.delete(mine);
  await eventually(async () => {
    expect(readyCondition(await published.netService("taken"))?.reason === "EndpointsPublished", "published once the name is free");
    expect(JSON.stringify(endpointIps(await published.endpoints("taken")).ready) === '["10.20.0.1"]', "endpoints published");
  }, wait);
  assertOwned(t, await published.service("taken"), taken, "now ours");
});

t.test("an owned object that someone edits or deletes is restored", async (t) => {
  const endpoints = await published.endpoints("corens");
  await user.delete(endpoints as KubeObject);
  await eventually(async () => {
    const restored = await published.endpoints("corens");
    expect(restored !== undefined && restored.metadata?.uid !== endpoints?.metadata?.uid, "a new Endpoints object");
    expect(JSON.stringify(endpointIps(restored).ready) === '["fd00:10::1"]', "with its addresses");
  }, wait);

  const slicePath = resourcePath({ apiVersion: "discovery.k8s.io/v1", plural: "endpointslices", namespace: ns, name: "corens-ipv6-0" });
  await http.request({
    method: "PATCH",
    path: slicePath,
    contentType: "application/merge-patch+json",
    body: { endpoints: [{ addresses: ["fd00:66::1"] }], metadata: { labels: { [labels.managedBy]: "someone-else" } } },
  });
  await eventually(async () => {
    const slice = await getObject<SliceJson>(http, slicePath);
    expect(slice?.metadata?.labels?.[labels.managedBy] === sliceManagedBy, "its managed-by label is back");
    expect(JSON.stringify(slice?.endpoints?.map((e) => e.addresses)) === '[["fd00:10::1"]]', `its endpoints are back: ${JSON.stringify(slice?.endpoints)}`);
  }, wait);

  const headless = await published.service("corens");
  await user.delete(headless as KubeObject);
  await eventually(async () => {
    const restored = await published.service("corens");
    expect(restored !== undefined && restored.metadata?.uid !== headless?.metadata?.uid, "the headless Service is back");
  }, wait);
  assertOwned(t, await published.service("corens"), corens, "restored Service");
});

t.test("a selector put on the selectorless Service: removed, and the slices Kubernetes wrote for it meanwhile deleted", async (t) => {
  const service = await published.service("corens");
  const servicePath = resourcePath({ apiVersion: "v1", plural: "services", namespace: ns, name: "corens" });
  const slicesPath = resourcePath({ apiVersion: "discovery.k8s.io/v1", plural: "endpointslices", namespace: ns });
  const slice = (name: string, managedBy: string, owned: boolean): KubeObject => ({
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name,
      namespace: ns,
      labels: { "kubernetes.io/service-name": "corens", [labels.managedBy]: managedBy },
      ...(owned ? { ownerReferences: [{ apiVersion: "v1", kind: "Service", name: "corens", uid: service?.metadata?.uid ?? "", controller: true }] } : {}),
    },
    addressType: "IPv4",
    endpoints: [{ addresses: ["10.99.0.1"] }],
  });
  // What kube-controller-manager leaves when it wrote a slice for the selector (it never removes it), and a user's own slice.
  await user.apply(slice("corens-left-by-kube", "endpointslice-controller.k8s.io", true));
  await user.apply(slice("corens-users-own", "someone-else.example.com", false));
  await http.request({ method: "PATCH", path: servicePath, contentType: "application/merge-patch+json", body: { spec: { selector: { app: "primary" } } } });

  await eventually(async () => {
    const restored = await getObject<{ spec?: { selector?: Record<string, string> } }>(http, servicePath);
    expect(Object.keys(restored?.spec?.selector ?? {}).length === 0, `selector still ${JSON.stringify(restored?.spec?.selector)}`);
  }, wait);
  const kubeSlices = async () => {
    const list = await http.request<{ items: SliceJson[] }>({
      method: "GET",
      path: slicesPath,
      query: { labelSelector: `kubernetes.io/service-name=corens,${labels.managedBy}=endpointslice-controller.k8s.io` },
    });
    return list.items.map((item) => item.metadata?.name);
  };
  await eventually(async () => {
    const left = await kubeSlices();
    expect(left.length === 0, `Kubernetes' slices still there: ${left.join(", ")}`);
  }, wait);
  t.pass("no slice of Kubernetes' controller is left under the NetService's name");
  t.ok(await getObject(http, `${slicesPath}/corens-users-own`), "a slice the Service does not control is left alone");
  t.same(sliceIps(await published.slices("corens"), "IPv6"), ["fd00:10::1"], "ours still publish");
  await http.request({ method: "DELETE", path: `${slicesPath}/corens-users-own` });
});

t.test("two replicas: only the leader writes; stopping it hands over to the other", async (t) => {
  await second.start();
  t.ok(second.ready, "the standby's caches are synced");
  t.notOk(second.leading, "the standby does not lead");
  const lease = await getObject<KubeObject & { spec?: { holderIdentity?: string } }>(
    http,
    resourcePath({ apiVersion: "coordination.k8s.io/v1", plural: "leases", namespace: systemNamespace, name: "netservice-aggregator" }),
  );
  t.equal(lease?.spec?.holderIdentity, "aggregator-a");

  const handover = await applyNetService("handover", {});
  await reports.set("node-1", handover, [{ name: "handover-a", addresses: ["10.30.0.1"] }]);
  await eventually(async () => expect(endpointIps(await published.endpoints("handover")).ready.length === 1, "published by the leader"), wait);
  t.same(second.metrics().writes, [], "the standby wrote nothing");
  t.equal(second.metrics().reconciles, 0, "the standby reconciled nothing");
  // The per-NetService Ready gauge: the leader exports each NetService once, as its status shows it; the standby none.
  t.same(second.metrics().netServices, [], "the standby exports no NetService's readiness");
  await eventually(() => {
    const state = first.metrics().netServices.find((each) => each.name === "handover");
    expect(state?.ready === true && state.reason === "EndpointsPublished", `the leader's gauge for handover: ${JSON.stringify(state)}`);
  }, wait);

  const writesOfFirst = writesOf(first);
  await first.stop();
  t.notOk(first.leading);
  await eventually(() => expect(second.leading, "the standby took over"), wait);
  t.equal(writesOf(first), writesOfFirst, "the stopped replica writes no more");

  await reports.set("node-1", handover, [{ name: "handover-a", addresses: ["10.30.0.1"] }, { name: "handover-b", addresses: ["10.30.0.2"] }]);
  await eventually(async () => expect(endpointIps(await published.endpoints("handover")).ready.length === 2, "published by the new leader"), wait);
  t.ok(writesOf(second) > 0, "the new leader wrote");
  t.same(first.metrics().netServices, [], "a replica that stopped leading exports no NetService's readiness");
  t.ok(second.metrics().netServices.some((each) => each.name === "handover"), "the new leader exports it");
  const managers = ((await published.endpoints("handover"))?.metadata?.managedFields ?? []) as { manager?: string; operation?: string }[];
  t.same(
    [...new Set(managers.map((m) => m.manager))].sort(),
    [aggregatorFieldManager],
    "one field manager whichever replica wrote",
  );
  t.notOk(managers.some((m) => m.manager === agentFieldManager), "the agent's manager never appears on published objects");
});

t.test("deleting the NetService removes everything it owned (garbage collector)", async (t) => {
  const netService = await published.netService("corens");
  await user.delete(netService as KubeObject);
  await eventually(async () => {
    expect((await published.service("corens")) === undefined, "Service corens gone");
    expect((await published.service("corens-primary")) === undefined, "template Service gone");
    expect((await published.endpoints("corens")) === undefined, "Endpoints gone");
    const ours = (await published.slices("corens")).filter((s) => s.metadata?.labels?.[labels.managedBy] === sliceManagedBy);
    expect(ours.length === 0, `slices gone: ${ours.map((s) => s.metadata?.name).join(",")}`);
  }, { timeoutMs: 120_000, intervalMs: 500 });
  t.pass("everything collected");
});

t.test("the program publishes, serves probes and metrics, and on SIGTERM stops and releases the Lease", async (t) => {
  await second.stop();
  const leasePath = resourcePath({ apiVersion: "coordination.k8s.io/v1", plural: "leases", namespace: systemNamespace, name: "netservice-aggregator" });
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [path.join(repoRoot, "aggregator", "main.ts"), "--kubeconfig", plane.kubeconfig, "--metrics-port", String(port), "--agent-heartbeat-timeout-seconds", "0"],
    { env: { ...process.env, POD_NAME: "aggregator-program", POD_NAMESPACE: systemNamespace, LOG_LEVEL: "info" }, stdio: ["ignore", "pipe", "inherit"] },
  );
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(child, "exit");
  t.teardown(() => void child.kill("SIGKILL"));

  const program = await applyNetService("program", {});
  // The program checks that a reported pod runs on the reporting node: this one does.
  const pod = await user.apply({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "program-a", namespace: ns },
    spec: { nodeName: "node-1", containers: [{ name: "app", image: "registry.k8s.io/pause:3.10" }] },
  });
  await reports.set("node-1", program, [{ name: "program-a", addresses: ["10.40.0.1"], uid: pod.metadata?.uid ?? "" }]);
  await eventually(async () => expect(endpointIps(await published.endpoints("program")).ready.length === 1, "published by the program"), wait);
  const lease = await getObject<KubeObject & { spec?: { holderIdentity?: string } }>(http, leasePath);
  t.equal(lease?.spec?.holderIdentity, "aggregator-program", "identity from POD_NAME, Lease in POD_NAMESPACE");
  await eventually(async () => expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, "readyz"), wait);
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  t.match(metrics, /^netservice_aggregator_writes_total\{kind="Endpoints",verb="apply"\} [1-9]/m, "/metrics counts writes by kind and verb");
  t.match(metrics, /^netservice_api_requests_total\{verb="watch",resource="netservices",code="200"\} [1-9]/m, "/metrics counts API requests by verb and result");
  t.match(metrics, /^netservice_aggregator_endpoints_(not_)?ready \d/m, "/metrics has the published endpoints");
  t.match(metrics, /^netservice_aggregator_leading 1$/m);
  t.match(metrics, /^netservice_aggregator_pod_reads_total [1-9]/m, "/metrics counts the pod reads");
  t.match(metrics, /^netservice_aggregator_unhealthy_nodes\{problem="NodeNotReady"\} 0$/m, "/metrics has the unhealthy nodes by problem");

  child.kill("SIGTERM");
  const [code] = await exited;
  t.equal(code, 0, "exit code 0");
  t.equal((await getObject<KubeObject & { spec?: { holderIdentity?: string } }>(http, leasePath))?.spec?.holderIdentity, "", "the Lease is released");
  t.match(output, /"msg":"stopped"/, "logged its stop");
});
