import t from "tap";
import type { V1EndpointSlice } from "@kubernetes/client-node";
import { annotations, labels, sliceManagedBy } from "../../common/api.ts";
import { desiredEndpoints, endpointsNeedsWrite } from "../../common/desired-endpoints.ts";
import { comparablePorts, metadataNeedsWrite } from "../../common/desired.ts";
import { desiredServices, serviceNeedsWrite } from "../../common/desired-services.ts";
import { desiredEndpointSlices, sliceNeedsWrite } from "../../common/desired-slices.ts";
import { desiredStatus, statusNeedsWrite, type Condition } from "../../common/desired-status.ts";
import type { MergedEndpoint, MergedNetService } from "../../common/merge.ts";
import { netService } from "./objects.ts";

const ports = [
  { name: "sip", port: 5060, protocol: "UDP" },
  { name: "sips", port: 5061, appProtocol: "sips" },
];
const corens = netService({ name: "corens", uid: "uid-corens", generation: 4, ports });
const owner = {
  apiVersion: "svcctl.metaswitch.com/v1alpha1",
  kind: "NetService",
  name: "corens",
  uid: "uid-corens",
  controller: true,
  blockOwnerDeletion: true,
};
const trigger = "2026-01-01T00:00:00.000Z";
const podRef = (name: string) => ({ kind: "Pod", namespace: "default", name, uid: `uid-${name}` });

function endpoint(name: string, addresses: string[], state: Partial<MergedEndpoint> = {}): MergedEndpoint {
  const serving = state.serving ?? true;
  const terminating = state.terminating ?? false;
  return {
    pod: { namespace: "default", name, uid: `uid-${name}` },
    nodeName: "node-1",
    addresses,
    serving,
    terminating,
    ready: serving && !terminating,
    ...state,
  };
}

function merged(endpoints: MergedEndpoint[], nodesReporting = 1): MergedNetService {
  const ready = endpoints.filter((each) => each.ready).length;
  return {
    endpoints,
    readyEndpoints: ready,
    notReadyEndpoints: endpoints.length - ready,
    nodesReporting,
    agents: { reporting: 2, liveNodes: 3 },
    staleNodes: [],
    unservedNodes: [],
  };
}

function manyEndpoints(count: number, readyEvery = 1, offset = 0): MergedEndpoint[] {
  return Array.from({ length: count }, (_, i) => {
    const n = i + offset;
    return endpoint(`pod-${String(n).padStart(5, "0")}`, [`10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`], {
      serving: n % readyEvery === 0,
    });
  });
}

t.test("desired Services: a headless template with the selector and a selectorless headless Service", async (t) => {
  const { template, headless } = desiredServices(corens);
  const expectedPorts = [
    { name: "sip", port: 5060, protocol: "UDP" },
    { name: "sips", port: 5061, protocol: "TCP", appProtocol: "sips" },
  ];
  t.same(template, {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name: "corens-template",
      namespace: "default",
      labels: { [labels.netService]: "corens" },
      ownerReferences: [owner],
    },
    spec: { clusterIP: "None", publishNotReadyAddresses: false, ports: expectedPorts, selector: { app: "utils" } },
  });
  t.same(headless, {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name: "corens",
      namespace: "default",
      labels: { [labels.netService]: "corens" },
      ownerReferences: [owner],
    },
    spec: { clusterIP: "None", publishNotReadyAddresses: false, ports: expectedPorts },
  });
});

t.test("Services without ports, with a template name and publishNotReadyAddresses", async (t) => {
  const ns = netService({ templateServiceName: "corens-pods", publishNotReadyAddresses: true });
  const { template, headless } = desiredServices(ns);
  t.equal(template.metadata?.name, "corens-pods");
  t.notOk("ports" in (template.spec ?? {}), "no ports field at all");
  t.notOk("ports" in (headless.spec ?? {}));
  t.equal(template.spec?.publishNotReadyAddresses, true);
  t.equal(headless.spec?.publishNotReadyAddresses, true);
});

t.test("the selectorless Service's IP families follow spec.ipFamilies", async (t) => {
  const table: [families: string[] | undefined, policy: string | undefined, expected: string[] | undefined][] = [
    [undefined, undefined, undefined],
    [[], undefined, undefined],
    [["IPv4"], "SingleStack", ["IPv4"]],
    [["IPv6"], "SingleStack", ["IPv6"]],
    [["IPv6", "IPv4"], "RequireDualStack", ["IPv6", "IPv4"]],
    [["IPv4", "IPv4"], "SingleStack", ["IPv4"]],
  ];
  for (const [families, policy, expected] of table) {
    const { headless, template } = desiredServices(netService(families ? { ipFamilies: families } : {}));
    t.equal(headless.spec?.ipFamilyPolicy, policy, JSON.stringify(families));
    t.same(headless.spec?.ipFamilies, expected, JSON.stringify(families));
    t.equal(template.spec?.ipFamilyPolicy, undefined, "the template keeps the cluster's default");
  }
});

t.test("a Service is rewritten only when a field we own changed", async (t) => {
  const { headless, template } = desiredServices(corens);
  const asStored = structuredClone(template);
  asStored.metadata = {
    ...asStored.metadata,
    resourceVersion: "7",
    labels: { ...asStored.metadata?.labels, extra: "x" },
  };
  asStored.spec = {
    ...asStored.spec,
    type: "ClusterIP",
    clusterIPs: ["None"],
    sessionAffinity: "None",
    ipFamilies: ["IPv4"],
    ipFamilyPolicy: "SingleStack",
    internalTrafficPolicy: "Cluster",
    ports: [
      { name: "sip", port: 5060, protocol: "UDP", targetPort: 5060 },
      { name: "sips", port: 5061, protocol: "TCP", appProtocol: "sips", targetPort: 5061 },
    ],
  };
  t.notOk(serviceNeedsWrite(template, asStored), "server defaults are not differences");
  t.ok(serviceNeedsWrite(template, undefined), "a missing Service is written");
  const edited = desiredServices(netService({ name: "corens", uid: "uid-corens", ports, selector: { app: "v2" } }));
  t.ok(serviceNeedsWrite(edited.template, asStored), "a changed selector is written");
  const fewerPorts = desiredServices(netService({ name: "corens", uid: "uid-corens", ports: [ports[0]] }));
  t.ok(serviceNeedsWrite(fewerPorts.template, asStored), "a removed port is written");
  t.ok(serviceNeedsWrite(template, { ...asStored, metadata: { ...asStored.metadata, ownerReferences: [] } }));
  const withSelector = { ...structuredClone(headless), spec: { ...headless.spec, selector: { a: "b" } } };
  t.ok(serviceNeedsWrite(headless, withSelector), "a selector on the selectorless Service is removed");
  const v6 = desiredServices(netService({ name: "corens", uid: "uid-corens", ports, ipFamilies: ["IPv6"] })).headless;
  const storedV4 = {
    ...structuredClone(headless),
    spec: { ...headless.spec, ipFamilyPolicy: "SingleStack", ipFamilies: ["IPv4"] },
  };
  t.ok(serviceNeedsWrite(v6, storedV4), "a changed family is written");
});

t.test("desired Endpoints: ready addresses, then not-ready ones, with references and ports", async (t) => {
  const view = merged([
    endpoint("a", ["10.0.0.10", "fd00::a"], { hostname: "aye" }),
    endpoint("b", ["10.0.0.9"], { serving: false }),
    endpoint("c", ["10.0.0.2"], { terminating: true }),
  ]);
  const endpoints = desiredEndpoints(corens, view, trigger);
  t.same(endpoints, {
    apiVersion: "v1",
    kind: "Endpoints",
    metadata: {
      name: "corens",
      namespace: "default",
      labels: { [labels.netService]: "corens", [labels.serviceName]: "corens", [labels.skipMirror]: "true", [labels.headless]: "" },
      annotations: { [annotations.triggerTime]: trigger },
      ownerReferences: [owner],
    },
    subsets: [
      {
        addresses: [
          { ip: "10.0.0.10", hostname: "aye", nodeName: "node-1", targetRef: podRef("a") },
          { ip: "fd00::a", hostname: "aye", nodeName: "node-1", targetRef: podRef("a") },
        ],
        // The terminating pod c is left out, as upstream's Endpoints controller does.
        notReadyAddresses: [{ ip: "10.0.0.9", nodeName: "node-1", targetRef: podRef("b") }],
        ports: [
          { name: "sip", port: 5060, protocol: "UDP" },
          { name: "sips", port: 5061, protocol: "TCP", appProtocol: "sips" },
        ],
      },
    ],
  });
});

t.test("terminating pods are in the Endpoints only when the NetService publishes not-ready addresses (then ready)", async (t) => {
  const view = (publish: boolean) =>
    merged([endpoint("c", ["10.0.0.2"], { terminating: true, ready: publish })]);
  t.same(desiredEndpoints(corens, view(false), trigger).subsets, [], "left out");
  const publishing = netService({ name: "corens", uid: "uid-corens", generation: 4, publishNotReadyAddresses: true });
  t.same(desiredEndpoints(publishing, view(true), trigger).subsets?.[0]?.addresses?.map((address) => address.ip), ["10.0.0.2"], "listed ready");
});

t.test("Endpoints without any endpoint have no subsets and no trigger time when none is given", async (t) => {
  const endpoints = desiredEndpoints(netService(), merged([]));
  t.same(endpoints.subsets, []);
  t.equal(endpoints.metadata?.annotations, undefined);
});

t.test("Endpoints stop at 1000 addresses, ready first, and say they were truncated", async (t) => {
  const readyOnly = desiredEndpoints(corens, merged(manyEndpoints(1200)), trigger);
  t.equal(readyOnly.subsets?.[0]?.addresses?.length, 1000);
  t.equal(readyOnly.subsets?.[0]?.notReadyAddresses, undefined);
  t.equal(readyOnly.metadata?.annotations?.[annotations.overCapacity], "truncated");

  // 400 ready of 1200: all 400 ready kept, 600 of the 800 not ready.
  const mixed = desiredEndpoints(corens, merged(manyEndpoints(1200, 3)), trigger);
  t.equal(mixed.subsets?.[0]?.addresses?.length, 400);
  t.equal(mixed.subsets?.[0]?.notReadyAddresses?.length, 600);
  t.equal(mixed.metadata?.annotations?.[annotations.overCapacity], "truncated");

  const exactly = desiredEndpoints(corens, merged(manyEndpoints(1000, 2)), trigger);
  const [subset] = exactly.subsets ?? [];
  t.equal((subset?.addresses?.length ?? 0) + (subset?.notReadyAddresses?.length ?? 0), 1000);
  t.equal(exactly.metadata?.annotations?.[annotations.overCapacity], undefined, "1000 is not over capacity");

  const again = desiredEndpoints(corens, merged(manyEndpoints(1200, 3).reverse()), trigger);
  t.same(again, mixed, "the same addresses survive whatever the input order");
});

t.test("Endpoints are rewritten for changes, not for a new trigger time alone", async (t) => {
  const view = merged(manyEndpoints(3));
  const stored = structuredClone(desiredEndpoints(corens, view, trigger));
  t.notOk(endpointsNeedsWrite(desiredEndpoints(corens, view, "2026-02-02T00:00:00.000Z"), stored));
  t.notOk(endpointsNeedsWrite(desiredEndpoints(corens, view), stored));
  t.ok(endpointsNeedsWrite(desiredEndpoints(corens, merged(manyEndpoints(4)), trigger), stored));
  const readinessChanged = desiredEndpoints(corens, merged(manyEndpoints(3, 2)), trigger);
  t.ok(endpointsNeedsWrite(readinessChanged, stored), "readiness change");
  const truncatedBefore = structuredClone(desiredEndpoints(corens, merged(manyEndpoints(1001)), trigger));
  t.ok(
    endpointsNeedsWrite(desiredEndpoints(corens, merged(manyEndpoints(1000)), trigger), truncatedBefore),
    "the over-capacity annotation must go away",
  );
});

t.test("two pods with the same address are listed in pod uid order, whatever order they come in", async (t) => {
  const x = endpoint("x", ["10.0.0.5"]);
  const w = endpoint("w", ["10.0.0.5"]);
  const names = (endpoints: MergedEndpoint[]) =>
    desiredEndpoints(corens, merged(endpoints), trigger).subsets?.[0]?.addresses?.map((address) => address.targetRef?.name);
  t.same(names([x, w]), ["w", "x"]);
  t.same(names([w, x]), ["w", "x"]);
});

t.test("Endpoints compare as the API server returns them: empty fields and extra reference fields are no change, every published field is", async (t) => {
  const desired = desiredEndpoints(corens, merged([endpoint("a", ["10.0.0.1"], { hostname: "aye" }), endpoint("b", ["10.0.0.2"], { nodeName: "" })]), trigger);
  const stored = () => {
    const copy = structuredClone(desired);
    for (const address of copy.subsets?.[0]?.addresses ?? []) {
      if (address.targetRef) address.targetRef.resourceVersion = "42";
      if (address.nodeName === "") delete address.nodeName;
    }
    return copy;
  };
  t.notOk(endpointsNeedsWrite(desired, stored()), "a resourceVersion in the reference and an empty nodeName left out are no change");
  const withEmptyHostname = stored();
  const second = withEmptyHostname.subsets?.[0]?.addresses?.[1];
  if (second) second.hostname = "";
  t.notOk(endpointsNeedsWrite(desired, withEmptyHostname), "an empty hostname is no hostname");

  const changes: [string, (address: NonNullable<NonNullable<typeof desired.subsets>[number]["addresses"]>[number]) => void][] = [
    ["hostname", (address) => { address.hostname = "bee"; }],
    ["nodeName", (address) => { address.nodeName = "node-2"; }],
    ["targetRef kind", (address) => { if (address.targetRef) address.targetRef.kind = "Node"; }],
    ["targetRef namespace", (address) => { if (address.targetRef) address.targetRef.namespace = "other"; }],
    ["targetRef name", (address) => { if (address.targetRef) address.targetRef.name = "z"; }],
    ["targetRef uid", (address) => { if (address.targetRef) address.targetRef.uid = "uid-z"; }],
    ["ip", (address) => { address.ip = "10.0.0.9"; }],
  ];
  for (const [field, change] of changes) {
    const changed = stored();
    const first = changed.subsets?.[0]?.addresses?.[0];
    if (first) change(first);
    t.ok(endpointsNeedsWrite(desired, changed), `a different ${field} is written`);
  }
});

t.test("Endpoints carry no empty lists: a NetService without ports and only not-ready pods has a subset of notReadyAddresses alone", async (t) => {
  const portless = netService({ name: "corens", uid: "uid-corens" });
  const endpoints = desiredEndpoints(portless, merged([endpoint("b", ["10.0.0.9"], { serving: false })]), trigger);
  t.same(endpoints.subsets, [{ notReadyAddresses: [{ ip: "10.0.0.9", nodeName: "node-1", targetRef: podRef("b") }] }]);
  t.ok(endpointsNeedsWrite(endpoints, undefined), "an Endpoints not stored yet is written");
  const stored = structuredClone(endpoints);
  const [subset] = stored.subsets ?? [];
  if (subset) subset.addresses = [];
  t.notOk(endpointsNeedsWrite(endpoints, stored), "an empty list of ready addresses is the same as none");
  const empty = desiredEndpoints(portless, merged([]), trigger);
  const storedEmpty = structuredClone(empty);
  delete storedEmpty.subsets;
  t.notOk(endpointsNeedsWrite(empty, storedEmpty), "no subsets stored is the same as an empty list");
});

function sliceNames(slices: V1EndpointSlice[]): (string | undefined)[] {
  return slices.map((slice) => slice.metadata?.name);
}

function sliceKeys(slice: V1EndpointSlice): string[] {
  return (slice.endpoints ?? []).map((each) => `${each.addresses[0]} ${each.targetRef?.uid}`);
}

t.test("EndpointSlices: one family each, one address per endpoint, conditions, references, ports", async (t) => {
  const view = merged([
    endpoint("a", ["10.0.0.1", "10.0.0.2", "fd00::1"], { hostname: "aye" }),
    endpoint("b", ["fd00::2"], { serving: false, terminating: true, ready: false }),
  ]);
  const { slices } = desiredEndpointSlices(corens, view, trigger);
  t.same(sliceNames(slices), ["corens-ipv4-0", "corens-ipv6-0"]);
  const [v4, v6] = slices;
  const metadata = (name: string) => ({
    name,
    namespace: "default",
    labels: { [labels.netService]: "corens", [labels.serviceName]: "corens", [labels.managedBy]: sliceManagedBy, [labels.headless]: "" },
    annotations: { [annotations.triggerTime]: trigger },
    ownerReferences: [owner],
  });
  const podA = podRef("a");
  const readyNow = { ready: true, serving: true, terminating: false };
  const slicePorts = [
    { name: "sip", port: 5060, protocol: "UDP" },
    { name: "sips", port: 5061, protocol: "TCP", appProtocol: "sips" },
  ];
  t.same(v4, {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: metadata("corens-ipv4-0"),
    addressType: "IPv4",
    endpoints: [
      { addresses: ["10.0.0.1"], conditions: readyNow, targetRef: podA, nodeName: "node-1", hostname: "aye" },
      { addresses: ["10.0.0.2"], conditions: readyNow, targetRef: podA, nodeName: "node-1", hostname: "aye" },
    ],
    ports: slicePorts,
  });
  t.same(v6?.addressType, "IPv6");
  t.same(
    v6?.endpoints?.map((each) => [each.addresses, each.conditions, each.targetRef?.name]),
    [
      [["fd00::1"], { ready: true, serving: true, terminating: false }, "a"],
      [["fd00::2"], { ready: false, serving: false, terminating: true }, "b"],
    ],
  );
});

t.test("EndpointSlices hold at most 100 endpoints and carry every address exactly once", async (t) => {
  const view = merged([...manyEndpoints(250), endpoint("v6", ["fd00::1", "fd00::2"])]);
  const { slices } = desiredEndpointSlices(corens, view, trigger);
  t.same(sliceNames(slices), ["corens-ipv4-0", "corens-ipv4-1", "corens-ipv4-2", "corens-ipv6-0"]);
  t.same(
    slices.map((slice) => slice.endpoints?.length),
    [100, 100, 50, 2],
  );
  const all = slices.flatMap(sliceKeys);
  t.equal(new Set(all).size, 252);
  for (const slice of slices) {
    const family = slice.addressType === "IPv4" ? /^\d/ : /:/;
    const sameFamily = (slice.endpoints ?? []).every((each) => family.test(each.addresses[0] ?? ""));
    t.ok(sameFamily, `${slice.metadata?.name} has one family`);
  }
  t.same(desiredEndpointSlices(corens, merged([])), { slices: [] }, "no endpoints, no slices");
});

t.test("a small change rewrites few slices when the existing slices are given", async (t) => {
  const before = desiredEndpointSlices(corens, merged(manyEndpoints(300, 1, 1)), trigger);
  // A pod sorting before all others arrives, one in the middle leaves.
  const changed = [
    ...manyEndpoints(1, 1, 0),
    ...manyEndpoints(300, 1, 1).filter((each) => each.pod.name !== "pod-00150"),
  ];
  const after = desiredEndpointSlices(corens, merged(changed), trigger, before.slices);
  t.same(sliceNames(after.slices), sliceNames(before.slices), "same slices");
  const rewritten = after.slices.filter((slice, i) => sliceNeedsWrite(slice, before.slices[i]));
  t.equal(rewritten.length, 1, "only the slice that lost a pod takes the new one");

  const partial = desiredEndpointSlices(corens, merged(manyEndpoints(250, 1, 1)), trigger);
  const arrived = [...manyEndpoints(1, 1, 0), ...manyEndpoints(250, 1, 1)];
  const stable = desiredEndpointSlices(corens, merged(arrived), trigger, partial.slices);
  t.same(
    stable.slices.map((slice, i) => sliceNeedsWrite(slice, partial.slices[i])),
    [false, false, true],
    "a newcomer fills the free room of the last slice",
  );
  const unstable = desiredEndpointSlices(corens, merged(arrived), trigger);
  t.same(
    unstable.slices.map((slice, i) => sliceNeedsWrite(slice, partial.slices[i])),
    [true, true, true],
    "without the existing slices every slice after the newcomer would shift",
  );
});

t.test("slices packed sparsely by deletions are packed afresh", async (t) => {
  const before = desiredEndpointSlices(corens, merged(manyEndpoints(500)), trigger);
  const survivors = manyEndpoints(500).filter((_, i) => i % 100 === 0);
  const after = desiredEndpointSlices(corens, merged(survivors), trigger, before.slices);
  t.same(sliceNames(after.slices), ["corens-ipv4-0"], "five nearly empty slices become one");
  t.equal(after.slices[0]?.endpoints?.length, 5);
  const fewer = manyEndpoints(500).filter((_, i) => i < 100 || i >= 400);
  const kept = desiredEndpointSlices(corens, merged(fewer), trigger, before.slices);
  t.same(sliceNames(kept.slices), ["corens-ipv4-0", "corens-ipv4-4"], "full slices that were emptied simply go away");
});

t.test("a slice is rewritten only when something we own changed", async (t) => {
  const view = merged(manyEndpoints(3));
  const [slice] = desiredEndpointSlices(corens, view, trigger).slices;
  if (!slice) throw new Error("no slice");
  const stored = structuredClone(slice);
  stored.metadata = {
    ...stored.metadata,
    generation: 3,
    annotations: { [annotations.triggerTime]: "2025-12-31T00:00:00Z" },
  };
  t.notOk(sliceNeedsWrite(slice, stored), "a different trigger time alone is no change");
  const noPorts = desiredEndpointSlices(netService({ uid: "uid-corens" }), view).slices[0];
  if (!noPorts) throw new Error("no slice");
  const absentPorts = { ...structuredClone(noPorts), ports: undefined };
  t.notOk(sliceNeedsWrite(noPorts, absentPorts), "empty and absent ports agree");
  const port80 = netService({ uid: "uid-corens", ports: [{ port: 80 }] });
  const defaultedPorts = desiredEndpointSlices(port80, view).slices[0];
  if (!defaultedPorts) throw new Error("no slice");
  const serverDefaulted = { ...structuredClone(defaultedPorts), ports: [{ name: "", port: 80, protocol: "TCP" }] };
  t.notOk(sliceNeedsWrite(defaultedPorts, serverDefaulted), "server-defaulted port fields agree");
  const unready = desiredEndpointSlices(corens, merged(manyEndpoints(3, 2)), trigger).slices[0];
  if (!unready) throw new Error("no slice");
  t.ok(sliceNeedsWrite(unready, stored), "a condition change is written");
});

const ready = (status: Condition["status"], time: string, reason = "EndpointsPublished"): Condition => ({
  type: "Ready",
  status,
  observedGeneration: 4,
  lastTransitionTime: time,
  reason,
  message: "",
});

t.test("status: Ready when endpoints are published, with counts", async (t) => {
  const now = new Date("2026-03-01T10:00:00.123Z");
  const view = merged([endpoint("a", ["10.0.0.1"]), endpoint("b", ["10.0.0.2"], { serving: false })], 3);
  const status = desiredStatus(corens, view, [], undefined, now);
  t.same(status, {
    observedGeneration: 4,
    conditions: [
      {
        type: "Ready",
        status: "True",
        observedGeneration: 4,
        lastTransitionTime: "2026-03-01T10:00:00Z",
        reason: "EndpointsPublished",
        message: "1 ready and 1 not ready pods published from 3 nodes",
      },
      {
        type: "NodesHealthy",
        status: "True",
        observedGeneration: 4,
        lastTransitionTime: "2026-03-01T10:00:00Z",
        reason: "AllNodesHealthy",
        message: "every node with endpoints of this NetService is Ready and its agent alive",
      },
    ],
    readyEndpoints: 1,
    notReadyEndpoints: 1,
    nodesReporting: 3,
  });
});

t.test("status: NodesHealthy is False, naming the nodes and why, while some node's endpoints are published not ready", async (t) => {
  const now = new Date("2026-03-01T10:00:00Z");
  const view = {
    ...merged([endpoint("a", ["10.0.0.1"], { serving: false })], 2),
    unservedNodes: [
      { name: "n1", problem: "NodeNotReady" as const },
      { name: "n2", problem: "AgentHeartbeatStale" as const },
    ],
  };
  const status = desiredStatus(corens, view, [], undefined, now);
  t.match(status.conditions[1], {
    type: "NodesHealthy",
    status: "False",
    reason: "NodesUnhealthy",
    message: /on 2 nodes are published not ready: n1 \(its Node is not Ready\), n2 \(its netservice-agent stopped renewing its heartbeat\)/,
  });
  const back = desiredStatus(corens, merged([endpoint("a", ["10.0.0.1"])], 2), [], status.conditions, new Date("2026-03-01T10:05:00Z"));
  t.match(back.conditions[1], { status: "True", lastTransitionTime: "2026-03-01T10:05:00Z" });
  t.ok(statusNeedsWrite(back, status), "the recovery is written");
});

t.test("status: no convergence claimed while some node publishes from an older generation", async (t) => {
  const now = new Date("2026-03-01T10:00:00Z");
  const behind = { ...merged([endpoint("a", ["10.0.0.1"])], 2), staleNodes: ["n2"], oldestGeneration: 3 };
  const status = desiredStatus(corens, behind, [], undefined, now);
  t.equal(status.observedGeneration, 3, "the oldest generation still published, not the NetService's 4");
  t.same(status.conditions.map((condition) => condition.observedGeneration), [3, 3]);
  t.match(status.conditions[0]?.message, /1 nodes \(n2\) still publish from generation 3, not 4/);
  const caughtUp = desiredStatus(corens, merged([endpoint("a", ["10.0.0.1"])], 2), [], status.conditions, now);
  t.equal(caughtUp.observedGeneration, 4);
  t.ok(statusNeedsWrite(caughtUp, status));
});

t.test("status: not Ready without endpoints or with a problem, with the fix in the message", async (t) => {
  const now = new Date("2026-03-01T10:00:00Z");
  const empty = desiredStatus(corens, merged([], 2), [], undefined, now);
  t.match(empty.conditions[0], {
    status: "False",
    reason: "NoMatchingPods",
    message: /app=utils.*network core.*agents on 2 of 3 nodes have reported/,
  });
  const taken = desiredStatus(
    corens,
    merged([endpoint("a", ["10.0.0.1"])]),
    [
      {
        reason: "ServiceNameTaken",
        message: "Service default/corens exists and is not owned by this NetService; rename one of them",
      },
    ],
    undefined,
    now,
  );
  t.match(taken.conditions[0], { status: "False", reason: "ServiceNameTaken", message: /rename/ });
  t.equal(taken.readyEndpoints, 1, "counts are reported whatever the condition");
});

t.test("status: lastTransitionTime changes only when the condition's status does", async (t) => {
  const view = merged([endpoint("a", ["10.0.0.1"])]);
  const later = new Date("2026-03-02T00:00:00Z");
  const kept = desiredStatus(corens, view, [], [ready("True", "2026-01-01T00:00:00Z", "SomethingElse")], later);
  t.equal(kept.conditions[0]?.lastTransitionTime, "2026-01-01T00:00:00Z");
  t.equal(kept.conditions[0]?.reason, "EndpointsPublished");
  const flipped = desiredStatus(corens, view, [], [ready("False", "2026-01-01T00:00:00Z", "NoMatchingPods")], later);
  t.equal(flipped.conditions[0]?.lastTransitionTime, "2026-03-02T00:00:00Z");
});

t.test("status is rewritten only when something but the clock changed", async (t) => {
  const view = merged([endpoint("a", ["10.0.0.1"])]);
  const first = desiredStatus(corens, view, [], undefined, new Date("2026-01-01T00:00:00Z"));
  const second = desiredStatus(corens, view, [], undefined, new Date("2026-01-02T00:00:00Z"));
  t.notOk(statusNeedsWrite(second, first));
  t.ok(statusNeedsWrite(second, undefined));
  const grown = merged([endpoint("a", ["10.0.0.1"]), endpoint("b", ["10.0.0.2"])]);
  t.ok(statusNeedsWrite(desiredStatus(corens, grown, [], undefined, new Date()), first), "a count changed");
  const newGeneration = netService({ name: "corens", uid: "uid-corens", generation: 5 });
  t.ok(statusNeedsWrite(desiredStatus(newGeneration, view, [], first.conditions, new Date()), first));
});

t.test("status: every problem is in the Ready message, the first one gives the reason", async (t) => {
  const status = desiredStatus(
    corens,
    merged([endpoint("a", ["10.0.0.1"])]),
    [
      { reason: "ServiceNameTaken", message: "Service default/corens is not ours; rename one of them" },
      { reason: "InvalidSpec", message: "port 70000 is out of range" },
    ],
    undefined,
    new Date("2026-03-01T10:00:00Z"),
  );
  t.match(status.conditions[0], {
    status: "False",
    reason: "ServiceNameTaken",
    message: "Service default/corens is not ours; rename one of them; port 70000 is out of range",
  });
});

t.test("status: no matching pods names the selector's terms in order, or says that an empty selector selects nothing", async (t) => {
  const now = new Date("2026-03-01T10:00:00Z");
  const selective = netService({ uid: "uid-corens", selector: { tier: "edge", app: "utils" } });
  t.match(desiredStatus(selective, merged([], 2), [], undefined, now).conditions[0]?.message, /^no pod selected by app=utils,tier=edge has an address on network core /);
  const everything = netService({ uid: "uid-corens", selector: {} });
  t.match(
    desiredStatus(everything, merged([], 2), [], undefined, now).conditions[0]?.message,
    /^no pod selected by an empty selector \(which selects nothing\) has an address/,
  );
});

t.test("status: long lists of nodes are cut short, saying how many more there are", async (t) => {
  const now = new Date("2026-03-01T10:00:00Z");
  const names = (count: number) => Array.from({ length: count }, (_, i) => `n${i + 1}`);
  const fiveBehind = { ...merged([endpoint("a", ["10.0.0.1"])], 5), staleNodes: names(5), oldestGeneration: 2 };
  t.match(desiredStatus(corens, fiveBehind, [], undefined, now).conditions[0]?.message, /; 5 nodes \(n1, n2, n3, n4, n5\) still publish from generation 2, not 4$/);
  const sixBehind = { ...merged([endpoint("a", ["10.0.0.1"])], 6), staleNodes: names(6), oldestGeneration: 2 };
  t.match(desiredStatus(corens, sixBehind, [], undefined, now).conditions[0]?.message, /; 6 nodes \(n1, n2, n3, n4, n5, \.\.\.\) still publish/);

  const unserved = (count: number) => ({
    ...merged([endpoint("a", ["10.0.0.1"], { serving: false })], count),
    unservedNodes: names(count).map((name) => ({ name, problem: "NodeUnreachable" as const })),
  });
  const ten = desiredStatus(corens, unserved(10), [], undefined, now).conditions[1]?.message ?? "";
  t.match(ten, /^the endpoints on 10 nodes are published not ready: n1 \(its Node is unreachable\), .*, n10 \(its Node is unreachable\); they return/);
  t.notMatch(ten, /more/);
  const twelve = desiredStatus(corens, unserved(12), [], undefined, now).conditions[1]?.message ?? "";
  t.match(twelve, /^the endpoints on 12 nodes are published not ready: n1 .*, n10 \(its Node is unreachable\) and 2 more; they return/);
  t.notMatch(twelve, /n11/);
});

t.test("status: each condition keeps its own lastTransitionTime", async (t) => {
  const view = merged([endpoint("a", ["10.0.0.1"])]);
  const previous: Condition[] = [
    ready("True", "2026-01-01T00:00:00Z", "EndpointsPublished"),
    { type: "NodesHealthy", status: "False", observedGeneration: 4, lastTransitionTime: "2026-01-05T00:00:00Z", reason: "NodesUnhealthy", message: "" },
  ];
  const status = desiredStatus(corens, view, [], previous, new Date("2026-03-02T00:00:00Z"));
  t.same(
    status.conditions.map((condition) => [condition.type, condition.status, condition.lastTransitionTime]),
    [
      ["Ready", "True", "2026-01-01T00:00:00Z"],
      ["NodesHealthy", "True", "2026-03-02T00:00:00Z"],
    ],
    "NodesHealthy turned True now; Ready has been True since January",
  );
});

t.test("status is rewritten when any count, the generation or a condition's status, reason or message changed", async (t) => {
  const first = desiredStatus(corens, merged([endpoint("a", ["10.0.0.1"])]), [], undefined, new Date("2026-01-01T00:00:00Z"));
  const changes: [string, (status: typeof first) => void][] = [
    ["observedGeneration", (status) => (status.observedGeneration = 3)],
    ["readyEndpoints", (status) => (status.readyEndpoints = 0)],
    ["notReadyEndpoints", (status) => (status.notReadyEndpoints = 1)],
    ["nodesReporting", (status) => (status.nodesReporting = 2)],
    ["a condition's type", (status) => (status.conditions[1]!.type = "Other")],
    ["a condition's status", (status) => (status.conditions[1]!.status = "False")],
    ["a condition's observedGeneration", (status) => (status.conditions[1]!.observedGeneration = 3)],
    ["a condition's reason", (status) => (status.conditions[1]!.reason = "NodesUnhealthy")],
    ["a condition's message", (status) => (status.conditions[1]!.message = "n1 is down")],
    ["a condition fewer", (status) => status.conditions.pop()],
  ];
  for (const [what, change] of changes) {
    const existing = structuredClone(first);
    change(existing);
    t.ok(statusNeedsWrite(first, existing), what);
  }
  t.ok(statusNeedsWrite(first, { ...first, conditions: undefined }), "no conditions at all");
  t.notOk(statusNeedsWrite(first, structuredClone(first)));
});

t.test("EndpointSlice endpoints carry their node's zone; no trigger time, no annotation", async (t) => {
  const view = merged([endpoint("a", ["10.0.0.1"], { zone: "zone-a" }), endpoint("b", ["10.0.0.2"])]);
  const [slice] = desiredEndpointSlices(corens, view).slices;
  t.same(
    slice?.endpoints?.map((each) => [each.targetRef?.name, each.zone]),
    [
      ["a", "zone-a"],
      ["b", undefined],
    ],
  );
  t.notOk("zone" in (slice?.endpoints?.[1] ?? {}), "no empty zone");
  t.notOk(slice?.metadata && "annotations" in slice.metadata);
});

t.test("only our own slices of the family guide the packing: others' names, numbers we never write and other families are fresh", async (t) => {
  const view = merged(manyEndpoints(3));
  const ours = desiredEndpointSlices(corens, view, trigger).slices[0];
  if (!ours) throw new Error("no slice");
  const renamed = (name: string, addressType = "IPv4"): V1EndpointSlice => ({ ...structuredClone(ours), addressType, metadata: { ...ours.metadata, name } });
  for (const existing of [
    renamed("corens-ipv4-01"),
    renamed("corens-ipv4-1000000"),
    renamed("corens-ipv4-x"),
    renamed("corens-ipv4-ipv4-3"),
    renamed("corens-ipv6-3"),
    renamed("corens-ipv4-3", "IPv6"),
    renamed("other-ipv4-3"),
    { ...renamed("corens-ipv4-3"), metadata: undefined },
  ]) {
    t.same(
      sliceNames(desiredEndpointSlices(corens, view, trigger, [existing]).slices),
      ["corens-ipv4-0"],
      existing.metadata?.name ?? "a slice without metadata",
    );
  }
  t.same(sliceNames(desiredEndpointSlices(corens, view, trigger, [renamed("corens-ipv4-3")]).slices), ["corens-ipv4-3"], "ours: kept where it is");
  t.same(sliceNames(desiredEndpointSlices(corens, view, trigger, [renamed("corens-ipv4-123456")]).slices), ["corens-ipv4-123456"], "up to six digits");
});

t.test("an existing slice that holds too many endpoints, or an endpoint another slice holds too, is trimmed to one place each", async (t) => {
  const all = desiredEndpointSlices(corens, merged(manyEndpoints(150)), trigger).slices;
  const [first, second] = all;
  if (!first || !second) throw new Error("two slices");
  const overfull = { ...structuredClone(first), endpoints: [...(first.endpoints ?? []), ...(second.endpoints ?? [])] };
  const fixed = desiredEndpointSlices(corens, merged(manyEndpoints(150)), trigger, [overfull, second]).slices;
  t.same(
    fixed.map((slice) => slice.endpoints?.length),
    [100, 50],
  );
  t.equal(new Set(fixed.flatMap(sliceKeys)).size, 150, "every endpoint once");
  t.same(fixed[0]?.endpoints?.map((each) => each.targetRef?.name), first.endpoints?.map((each) => each.targetRef?.name), "the first slice keeps its first hundred");
  const doubled = { ...structuredClone(second), endpoints: [...(first.endpoints ?? []).slice(0, 10), ...(second.endpoints ?? [])] };
  const once = desiredEndpointSlices(corens, merged(manyEndpoints(150)), trigger, [first, doubled]).slices;
  t.same(
    once.map((slice) => slice.endpoints?.length),
    [100, 50],
    "an endpoint in two slices stays in the first",
  );
  t.equal(new Set(once.flatMap(sliceKeys)).size, 150);
});

t.test("slices of a NetService with a pod of two addresses of a family stay packed by address, then by pod", async (t) => {
  const view = merged([endpoint("b", ["10.0.0.1"]), endpoint("a", ["10.0.0.1", "10.0.0.2"])]);
  t.same(
    desiredEndpointSlices(corens, view).slices[0]?.endpoints?.map((each) => [each.addresses[0], each.targetRef?.name]),
    [
      ["10.0.0.1", "a"],
      ["10.0.0.1", "b"],
      ["10.0.0.2", "a"],
    ],
  );
});

t.test("a slice is rewritten for a new address type, new ports, lost labels or a missing owner, and an absent slice is created", async (t) => {
  const [slice] = desiredEndpointSlices(corens, merged(manyEndpoints(3)), trigger).slices;
  if (!slice) throw new Error("no slice");
  t.ok(sliceNeedsWrite(slice, undefined));
  t.ok(sliceNeedsWrite(slice, { ...structuredClone(slice), addressType: "FQDN" }), "address type");
  t.ok(sliceNeedsWrite(slice, { ...structuredClone(slice), ports: [{ name: "sip", port: 5070, protocol: "UDP" }] }), "ports");
  t.ok(sliceNeedsWrite(slice, { ...structuredClone(slice), metadata: { ...slice.metadata, labels: {} } }), "labels");
  t.ok(sliceNeedsWrite(slice, { ...structuredClone(slice), metadata: { ...slice.metadata, ownerReferences: [] } }), "owner");
  const asServed = structuredClone(slice);
  for (const each of asServed.endpoints ?? []) {
    each.zone = "";
    each.hostname = "";
    if (each.targetRef) each.targetRef.resourceVersion = "17";
  }
  t.notOk(sliceNeedsWrite(slice, asServed), "empty zone and hostname, and a reference's resourceVersion, are no change");
  const moved = structuredClone(slice);
  for (const each of moved.endpoints ?? []) each.nodeName = "node-2";
  t.ok(sliceNeedsWrite(slice, moved), "nodeName");
  const zoned = structuredClone(slice);
  for (const each of zoned.endpoints ?? []) each.zone = "zone-b";
  t.ok(sliceNeedsWrite(slice, zoned), "zone");
  const named = structuredClone(slice);
  for (const each of named.endpoints ?? []) each.hostname = "h";
  t.ok(sliceNeedsWrite(slice, named), "hostname");
  const otherPod = structuredClone(slice);
  for (const each of otherPod.endpoints ?? []) if (each.targetRef) each.targetRef.uid = "uid-successor";
  t.ok(sliceNeedsWrite(slice, otherPod), "the pod's uid");
  const stopping = structuredClone(slice);
  for (const each of stopping.endpoints ?? []) each.conditions = { ...each.conditions, terminating: true };
  t.ok(sliceNeedsWrite(slice, stopping), "terminating");
  t.ok(sliceNeedsWrite(slice, { ...structuredClone(slice), endpoints: undefined }), "no endpoints");
});

t.test("slices at least half full on average are kept as they are; a new slice takes the lowest free number; slices and their endpoints come in order", async (t) => {
  const one = (name: string, address: string) => desiredEndpointSlices(corens, merged([endpoint(name, [address])]), trigger).slices[0]!;
  const at = (slice: V1EndpointSlice, index: number): V1EndpointSlice => ({ ...slice, metadata: { ...slice.metadata, name: `corens-ipv4-${index}` } });
  const existing = [at(one("b", "10.0.0.2"), 1), at(one("a", "10.0.0.1"), 0)];
  const both = desiredEndpointSlices(corens, merged([endpoint("a", ["10.0.0.1"]), endpoint("b", ["10.0.0.2"])]), trigger, existing);
  t.same(
    both.slices.map((slice) => [slice.metadata?.name, sliceKeys(slice)]),
    [
      ["corens-ipv4-0", ["10.0.0.1 uid-a"]],
      ["corens-ipv4-1", ["10.0.0.2 uid-b"]],
    ],
    "two slices for two endpoints are not repacked into one",
  );

  const full = desiredEndpointSlices(corens, merged(manyEndpoints(100, 1, 10)), trigger).slices[0]!;
  const third = at(full, 3);
  const grown = desiredEndpointSlices(corens, merged([...manyEndpoints(100, 1, 10), ...manyEndpoints(3, 1, 0)]), trigger, [third]);
  t.same(sliceNames(grown.slices), ["corens-ipv4-0", "corens-ipv4-3"], "the newcomers start slice 0, listed before slice 3");
  t.same(grown.slices[0]?.endpoints?.map((each) => each.addresses[0]), ["10.0.0.0", "10.0.0.1", "10.0.0.2"]);

  const reversed = { ...structuredClone(full), endpoints: [...(full.endpoints ?? [])].reverse() };
  const shrunk = desiredEndpointSlices(corens, merged([...manyEndpoints(99, 1, 10), ...manyEndpoints(1, 1, 0)]), trigger, [reversed]);
  t.same(
    shrunk.slices[0]?.endpoints?.slice(0, 3).map((each) => each.addresses[0]),
    ["10.0.0.0", "10.0.0.10", "10.0.0.11"],
    "a slice's endpoints are sorted by address, the newcomer among them",
  );
});

t.test("status: the NoMatchingPods message ends with the fix, and every node problem is named in words", async (t) => {
  const now = new Date("2026-03-01T10:00:00Z");
  t.equal(
    desiredStatus(corens, merged([], 2), [], undefined, now).conditions[0]?.message,
    "no pod selected by app=utils has an address on network core (agents on 2 of 3 nodes have reported); " +
      "check the selector and that the pods request core in k8s.v1.cni.cncf.io/networks",
  );
  const problems = [
    ["NodeNotReady", "its Node is not Ready"],
    ["NodeUnreachable", "its Node is unreachable"],
    ["AgentHeartbeatStale", "its netservice-agent stopped renewing its heartbeat"],
    ["AgentHeartbeatMissing", "no netservice-agent heartbeat from it"],
  ] as const;
  for (const [problem, words] of problems) {
    const view = { ...merged([endpoint("a", ["10.0.0.1"], { serving: false })]), unservedNodes: [{ name: "n1", problem }] };
    t.match(desiredStatus(corens, view, [], undefined, now).conditions[1]?.message, `: n1 (${words}); they return`, problem);
  }
});

t.test("EndpointSlices are packed in address order, not in the order of the pods' names", async (t) => {
  // Pod names run the other way round from their addresses.
  const view = merged(Array.from({ length: 150 }, (_, i) => endpoint(`pod-${String(i).padStart(3, "0")}`, [`10.0.${Math.floor((149 - i) / 100)}.${(149 - i) % 100}`])));
  const { slices } = desiredEndpointSlices(corens, view);
  t.same(slices.map((slice) => slice.endpoints?.length), [100, 50]);
  t.same([slices[0]?.endpoints?.[0]?.addresses[0], slices[0]?.endpoints?.[99]?.addresses[0], slices[1]?.endpoints?.[0]?.addresses[0]], ["10.0.0.0", "10.0.0.99", "10.0.1.0"]);
});

t.test("two pods sharing an address both keep their endpoint when the existing slices are given", async (t) => {
  const view = merged([endpoint("old", ["10.0.0.1"], { serving: false }), endpoint("new", ["10.0.0.1"])]);
  const first = desiredEndpointSlices(corens, view, trigger).slices;
  const again = desiredEndpointSlices(corens, view, trigger, first).slices;
  t.same(again.flatMap(sliceKeys), ["10.0.0.1 uid-new", "10.0.0.1 uid-old"]);
  t.notOk(sliceNeedsWrite(again[0]!, first[0]), "and nothing to write");
});

t.test("existing slices edited by hand (no endpoints, an endpoint without a reference) are read without failing and put right", async (t) => {
  const view = merged(manyEndpoints(3));
  const [ours] = desiredEndpointSlices(corens, view, trigger).slices;
  if (!ours) throw new Error("no slice");
  const emptied = { ...structuredClone(ours), endpoints: undefined };
  t.same(sliceKeys(desiredEndpointSlices(corens, view, trigger, [emptied]).slices[0]!), sliceKeys(ours));
  const unreferenced = structuredClone(ours);
  for (const each of unreferenced.endpoints ?? []) delete each.targetRef;
  const [fixed] = desiredEndpointSlices(corens, view, trigger, [unreferenced]).slices;
  t.same(fixed, ours);
  t.ok(sliceNeedsWrite(fixed!, unreferenced));
});

t.test("a full slice keeps its endpoints when newcomers need a slice of their own, and slices are kept in number order whatever order they are listed in", async (t) => {
  const full = desiredEndpointSlices(corens, merged(manyEndpoints(100, 1, 10)), trigger).slices[0]!;
  const grown = desiredEndpointSlices(corens, merged([...manyEndpoints(100, 1, 10), ...manyEndpoints(3, 1, 0)]), trigger, [full]);
  t.same(sliceNames(grown.slices), ["corens-ipv4-0", "corens-ipv4-1"]);
  t.same(grown.slices[0], full, "slice 0 is unchanged");
  t.same(grown.slices[1]?.endpoints?.map((each) => each.addresses[0]), ["10.0.0.0", "10.0.0.1", "10.0.0.2"]);

  const all = desiredEndpointSlices(corens, merged(manyEndpoints(250)), trigger).slices;
  // Each slice also lists the last endpoint of the one before it: that endpoint stays in the lower-numbered slice.
  const overlapping = all.map((slice, i) => ({ ...structuredClone(slice), endpoints: [...(all[i - 1]?.endpoints ?? []).slice(-1), ...(slice.endpoints ?? [])] }));
  const expected = [100, 100, 50];
  for (const listed of [overlapping, [...overlapping].reverse(), [overlapping[1]!, overlapping[2]!, overlapping[0]!]]) {
    const slices = desiredEndpointSlices(corens, merged(manyEndpoints(250)), trigger, listed).slices;
    t.same(slices.map((slice) => slice.endpoints?.length), expected, listed.map((slice) => slice.metadata?.name).join(","));
    t.same(slices.map((slice) => slice.endpoints?.[0]?.targetRef?.name), ["pod-00000", "pod-00100", "pod-00200"]);
  }
});

t.test("packed afresh, the slices hold 100 each and none is empty", async (t) => {
  const before = desiredEndpointSlices(corens, merged(manyEndpoints(700)), trigger).slices;
  for (const [kept, sizes] of [
    [100, [100]],
    [150, [100, 50]],
  ] as const) {
    const survivors = manyEndpoints(700).filter((_, i) => i % 7 === 0).slice(0, kept);
    const extra = kept > 100 ? manyEndpoints(700).filter((_, i) => i % 7 === 1).slice(0, kept - 100) : [];
    const { slices } = desiredEndpointSlices(corens, merged([...survivors, ...extra]), trigger, before);
    t.same(slices.map((slice) => slice.endpoints?.length), sizes, `${kept} endpoints left in 7 slices`);
    t.same(sliceNames(slices), sizes.map((_, i) => `corens-ipv4-${i}`));
  }
});

t.test("metadata is rewritten when one of our labels, owned annotations or our controller reference differs, not for others' additions", async (t) => {
  const desired = desiredServices(corens).headless.metadata!;
  const same = { ...structuredClone(desired), labels: { ...desired.labels, extra: "x" }, annotations: { other: "y" }, ownerReferences: [{ ...owner, name: "x", uid: "uid-other", controller: false }, owner] };
  t.notOk(metadataNeedsWrite(desired, same, []), "extra labels, annotations and owners are others'");
  const owners = (change: object) => ({ ...structuredClone(desired), ownerReferences: [{ ...owner, ...change }] });
  t.ok(metadataNeedsWrite(desired, owners({ uid: "uid-other" }), []), "another uid");
  t.ok(metadataNeedsWrite(desired, owners({ controller: false }), []), "not the controller");
  t.ok(metadataNeedsWrite(desired, owners({ blockOwnerDeletion: false }), []), "deletion not blocked");
  t.ok(metadataNeedsWrite(desired, { ...structuredClone(desired), labels: { [labels.netService]: "other" } }, []), "a label value");
  t.ok(metadataNeedsWrite(desired, { ...structuredClone(desired), labels: undefined }, []), "no labels");
  t.ok(metadataNeedsWrite(desired, { ...structuredClone(desired), ownerReferences: undefined }, []), "no owners");
  t.ok(metadataNeedsWrite(desired, undefined, []), "no metadata");
  const annotated = { ...desired, annotations: { [annotations.overCapacity]: "truncated" } };
  t.ok(metadataNeedsWrite(annotated, desired, [annotations.overCapacity]), "an owned annotation to add");
  t.ok(metadataNeedsWrite(desired, annotated, [annotations.overCapacity]), "an owned annotation to remove");
  t.notOk(metadataNeedsWrite(desired, annotated, []), "an annotation we do not own");
  t.ok(metadataNeedsWrite(annotated, undefined, [annotations.overCapacity]), "no metadata, an owned annotation");
  const slice = desiredEndpointSlices(corens, merged(manyEndpoints(1))).slices[0]!.metadata!;
  t.ok(metadataNeedsWrite(slice, { ...structuredClone(slice), labels: { ...slice.labels, [labels.managedBy]: "endpointslice-controller.k8s.io" } }, []), "one label of four");
});

t.test("ports compare with the API server's defaults: no protocol is TCP, an empty name or appProtocol is none", async (t) => {
  const desired = [{ name: "sip", port: 5060, protocol: "TCP", appProtocol: "sip" }];
  t.same(comparablePorts([{ name: "sip", port: 5060, appProtocol: "sip" }]), comparablePorts(desired), "no protocol");
  t.same(comparablePorts([{ name: "", port: 80, appProtocol: "" }]), comparablePorts([{ port: 80, protocol: "TCP" }]), "empty name and appProtocol");
  t.notSame(comparablePorts([{ name: "sip", port: 5060, protocol: "UDP", appProtocol: "sip" }]), comparablePorts(desired), "another protocol");
  t.notSame(comparablePorts([{ name: "sips", port: 5060, protocol: "TCP", appProtocol: "sip" }]), comparablePorts(desired), "another name");
  t.notSame(comparablePorts([{ name: "sip", port: 5060, protocol: "TCP", appProtocol: "sips" }]), comparablePorts(desired), "another appProtocol");
  t.notSame(comparablePorts([{ name: "sip", port: 5060, protocol: "TCP" }]), comparablePorts(desired), "no appProtocol");
  t.notSame(comparablePorts([{ port: 5060, protocol: "TCP", appProtocol: "sip" }]), comparablePorts(desired), "no name");
  t.same(comparablePorts(undefined), []);
});

t.test("a Service is rewritten when publishNotReadyAddresses was turned on by hand, and an empty selector is no selector", async (t) => {
  const { headless } = desiredServices(corens);
  t.ok(serviceNeedsWrite(headless, { ...structuredClone(headless), spec: { ...headless.spec, publishNotReadyAddresses: true } }));
  t.notOk(serviceNeedsWrite(headless, { ...structuredClone(headless), spec: { ...headless.spec, selector: {} } }));
});
