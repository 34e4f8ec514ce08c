// The whole pure pipeline, as the agent and the aggregator run it, against an
// independent model (model.ts) on generated clusters: per node buildNodeReport
// and splitReport, the parts read back through JSON and the report schema,
// the pod-placement check, the Node and heartbeat views of NodeLiveness,
// mergeReports, desiredEndpoints and desiredEndpointSlices. The model shares
// no code with the product beyond the types, so a rule broken in the product
// is not broken in the expectation too (test/unit/properties.test.ts computes
// its expectations with the product's own helpers).
//
// Generated inputs stay in the region where the model is simple: at most 16
// addresses per pod and a dozen pods, so neither the 100-address cap per pod
// nor the 1000-address cap of the Endpoints is reached; every pod name is
// unique in its namespace, so no two reports claim one pod and triggerTime
// never decides; no address is an IPv4-mapped IPv6 or has octets with leading
// zeros (rules of the address code, not of the documents).
import t from "tap";
import fc from "fast-check";
import type { V1EndpointSlice, V1Endpoints, V1Pod } from "@kubernetes/client-node";
import { reportSpecSchema, type NetService } from "../../common/api.ts";
import { desiredEndpoints } from "../../common/desired-endpoints.ts";
import { desiredEndpointSlices } from "../../common/desired-slices.ts";
import { mergeReports, type MergedNetService, type NodeLookup, type NodeReport } from "../../common/merge.ts";
import { buildNodeReport } from "../../common/node-report.ts";
import { splitReport, type PartLimits } from "../../common/report-parts.ts";
import { NodeLiveness, slimHeartbeat, slimNode } from "../../aggregator/node-liveness.ts";
import { trustedReports } from "../../aggregator/pod-placement.ts";
import {
  familyOf,
  modelPublication,
  type ModelAddress,
  type ModelAttachment,
  type ModelEndpoint,
  type ModelNetService,
  type ModelNode,
  type ModelPod,
  type ModelRequest,
  type ModelStatus,
  type ModelWorld,
} from "./model.ts";
import { netService, propertyRuns } from "./objects.ts";

const nodeNames = ["n1", "n2", "n3"];
const now = Date.parse("2026-06-01T12:00:00Z");
const heartbeatTimeoutMs = 40_000;

// ---- generators: every address with the text the model expects, written by hand ----

const ipv4 = fc
  .tuple(fc.integer({ min: 0, max: 1 }), fc.integer({ min: 1, max: 3 }), fc.constantFrom("", "/24", "/32"))
  .map(([third, fourth, prefix]): ModelAddress => ({ text: `10.0.${third}.${fourth}${prefix}`, canonical: `10.0.${third}.${fourth}` }));

const ipv6 = fc.oneof(
  fc
    .tuple(fc.constantFrom("1", "2", "a"), fc.constantFrom("short", "upper", "zeros", "padded"), fc.constantFrom("", "/64", "/128"))
    .map(([last, form, prefix]): ModelAddress => {
      const text = {
        short: `fd00::${last}`,
        upper: `FD00::${last.toUpperCase()}`,
        zeros: `fd00:0:0:0:0:0:0:${last}`,
        padded: `fd00:0000:0000:0000:0000:0000:0000:000${last}`,
      }[form];
      return { text: `${text}${prefix}`, canonical: `fd00::${last}` };
    }),
  // RFC 5952: the first of two equal runs of zeros is compressed, a single zero group is not.
  fc.constantFrom<ModelAddress>(
    { text: "2001:db8:0:0:1:0:0:1", canonical: "2001:db8::1:0:0:1" },
    { text: "2001:DB8:0:1:1:1:1:1/64", canonical: "2001:db8:0:1:1:1:1:1" },
  ),
);

// Loopback, link-local, multicast, unspecified and unparsable: never published.
const unpublishable = fc.constantFrom<ModelAddress>(
  ...[
    "127.0.0.1", "127.0.0.5/8", "169.254.10.1", "169.254.10.1/16", "224.0.0.251", "0.0.0.0",
    "::1", "fe80::1", "fe80::1/64", "fe80::1%net1", "ff02::1", "::",
    "10.0.0.256", "not-an-address", "",
  ].map((text) => ({ text })),
);

const address = fc.oneof({ weight: 3, arbitrary: ipv4 }, { weight: 3, arbitrary: ipv6 }, { weight: 1, arbitrary: unpublishable });

const attachment: fc.Arbitrary<ModelAttachment> = fc.record({
  name: fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom("networks/core", "default/core", "core", "networks/access", "default/access") },
    { weight: 1, arbitrary: fc.constantFrom("other/core", "access", "", "kube-system/k8s-pod-network", "corex", "default/xcore") },
  ),
  ips: fc.option(fc.array(address, { maxLength: 4 }), { nil: undefined, freq: 6 }),
  isDefault: fc.boolean(),
});

const status: fc.Arbitrary<ModelStatus> = fc.oneof(
  { weight: 8, arbitrary: fc.array(attachment, { minLength: 1, maxLength: 4 }).map((attachments) => ({ malformed: false as const, attachments })) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom("[{", '[{"name":"default/core","ips":[1]}]', '{"name":"core"}')
      .map((text) => ({ malformed: true as const, text })),
  },
);

const request: fc.Arbitrary<ModelRequest> = fc.oneof(
  { weight: 2, arbitrary: fc.constant({ form: "none" as const }) },
  {
    weight: 4,
    arbitrary: fc.record({
      form: fc.constantFrom("short" as const, "json" as const),
      networks: fc.array(
        fc.record(
          { namespace: fc.constantFrom("networks", "default", "other"), name: fc.constantFrom("core", "access") },
          { requiredKeys: ["name"] },
        ),
        { maxLength: 3 },
      ),
    }),
  },
  { weight: 1, arbitrary: fc.constantFrom("[{", "a/b/c", "bad name!").map((text) => ({ form: "malformed" as const, text })) },
);

const modelPod: fc.Arbitrary<ModelPod> = fc
  .record({
    namespace: fc.constantFrom("default", "default", "other"),
    name: fc.constantFrom("p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"),
    app: fc.constantFrom("a", "a", "a", "b"),
    tier: fc.constantFrom(undefined, "x", "x", "y"),
    node: fc.constantFrom(...nodeNames),
    phase: fc.oneof(
      { weight: 6, arbitrary: fc.constant("Running" as const) },
      { weight: 1, arbitrary: fc.constantFrom("Pending" as const, "Succeeded" as const, "Failed" as const) },
    ),
    readyCondition: fc.constantFrom("True" as const, "True" as const, "False" as const, "Unknown" as const, undefined),
    deleting: fc.boolean(),
    hostname: fc.constantFrom(undefined, "host-a"),
    subdomain: fc.constantFrom(undefined, "s1", "s2"),
    request,
    status: fc.option(status, { nil: undefined, freq: 8 }),
    legacyStatus: fc.option(status, { nil: undefined, freq: 2 }),
  })
  .map(({ app, tier, readyCondition, hostname, subdomain, status: current, legacyStatus, ...rest }): ModelPod => ({
    ...rest,
    labels: { app, ...(tier ? { tier } : {}) },
    ...(readyCondition ? { readyCondition } : {}),
    ...(hostname ? { hostname } : {}),
    ...(subdomain ? { subdomain } : {}),
    ...(current ? { status: current } : {}),
    ...(legacyStatus ? { legacyStatus } : {}),
  }));

const modelNode = (name: string): fc.Arbitrary<ModelNode> =>
  fc
    .record({
      exists: fc.oneof({ weight: 9, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
      ready: fc.constantFrom("True" as const, "True" as const, "True" as const, "False" as const, "Unknown" as const, undefined),
      unreachable: fc.constantFrom(false, false, false, true),
      zone: fc.constantFrom(undefined, "z1", "z2"),
      heartbeat: fc.constantFrom("fresh" as const, "fresh" as const, "fresh" as const, "stale" as const, "missing" as const),
      reportsOwnedByCurrentNode: fc.oneof({ weight: 9, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    })
    .map(({ ready, zone, ...rest }) => ({ name, ...rest, ...(ready ? { ready } : {}), ...(zone ? { zone } : {}) }));

const modelNetService: fc.Arbitrary<ModelNetService> = fc
  .record({
    namespace: fc.constantFrom("default", "default", "other"),
    name: fc.constantFrom("s1", "s2", "s3"),
    netAttachDef: fc.constantFrom("core", "core", "core", "access", "networks/core", "default/core", "other/core"),
    app: fc.constantFrom("a", "a", "b"),
    tier: fc.constantFrom(undefined, undefined, "x"),
    ipFamilies: fc.constantFrom(undefined, ["IPv4" as const], ["IPv6" as const], ["IPv4" as const, "IPv6" as const], ["IPv6" as const, "IPv4" as const]),
    publishNotReadyAddresses: fc.boolean(),
  })
  .map(({ app, tier, ipFamilies, ...rest }) => ({
    ...rest,
    selector: { app, ...(tier ? { tier } : {}) },
    ...(ipFamilies ? { ipFamilies } : {}),
  }));

const world: fc.Arbitrary<ModelWorld> = fc.record({
  nodes: fc.tuple(...nodeNames.map(modelNode)),
  pods: fc.uniqueArray(modelPod, { selector: (pod) => `${pod.namespace}/${pod.name}`, minLength: 3, maxLength: 12, size: "medium" }),
  netServices: fc.uniqueArray(modelNetService, { selector: (each) => `${each.namespace}/${each.name}`, minLength: 1, maxLength: 4, size: "medium" }),
});

// One object per report, one NetService per part, or parts of a few hundred bytes.
const partLimits = fc.constantFrom<PartLimits>(
  { maxBytes: 1_000_000, maxNetServices: 10_000 },
  { maxBytes: 1_000_000, maxNetServices: 1 },
  { maxBytes: 400, maxNetServices: 10_000 },
);

// ---- the product's pipeline ----

type Published = { merged: MergedNetService; endpoints: V1Endpoints; slices: V1EndpointSlice[] };

function publish(cluster: ModelWorld, limits: PartLimits): Map<ModelNetService, Published> {
  const pods = cluster.pods.map(toPod);
  const netServices = new Map(cluster.netServices.map((each) => [each, toNetService(each)]));
  const reports = cluster.nodes.flatMap(({ name, reportsOwnedByCurrentNode }, index): NodeReport[] => {
    const onNode = pods.filter((pod) => pod.spec?.nodeName === name);
    const spec = buildNodeReport(name, onNode, [...netServices.values()]);
    const triggerTime = new Date(now - 1000 * (index + 1)).toISOString();
    return splitReport(spec, limits).map((part) => ({
      nodeName: name,
      nodeUid: reportsOwnedByCurrentNode ? nodeUid(name) : `earlier-${nodeUid(name)}`,
      // Through JSON and the schema, as the aggregator reads it back from the API.
      spec: reportSpecSchema.parse(JSON.parse(JSON.stringify({ ...part, triggerTime }))),
    }));
  });
  const placements = new Map(pods.map((pod) => [pod.metadata?.uid ?? "", { nodeName: pod.spec?.nodeName ?? "" }]));
  const { trusted } = trustedReports(reports, (uid) => placements.get(uid));
  const nodes = nodeLookup(cluster.nodes);

  const published = new Map<ModelNetService, Published>();
  for (const [model, owner] of netServices) {
    const merged = mergeReports(owner, trusted, nodes, now);
    published.set(model, {
      merged,
      endpoints: desiredEndpoints(owner, merged, merged.triggerTime),
      slices: desiredEndpointSlices(owner, merged, merged.triggerTime).slices,
    });
  }
  return published;
}

/** The aggregator's node views: NodeLiveness fed the Node and heartbeat Lease objects through their informer transforms. */
function nodeLookup(nodes: readonly ModelNode[]): NodeLookup {
  const liveness = new NodeLiveness({ heartbeatTimeoutMs, startedAt: now - 2.5 * heartbeatTimeoutMs });
  const existing = nodes.filter((node) => node.exists);
  for (const node of existing) {
    liveness.node(node.name, slimNode(rawNode(node)), now);
    if (node.heartbeat === "missing") continue;
    const seenAt = node.heartbeat === "fresh" ? now - heartbeatTimeoutMs / 40 : now - 1.5 * heartbeatTimeoutMs;
    liveness.heartbeat(node.name, slimHeartbeat(rawHeartbeat(node.name)), seenAt);
  }
  return { get: (name) => liveness.health(name, now), size: existing.length };
}

function rawNode(node: ModelNode) {
  const labels: Record<string, string> = node.zone ? { "topology.kubernetes.io/zone": node.zone } : {};
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: node.name, uid: nodeUid(node.name), labels },
    spec: { taints: node.unreachable ? [{ key: "node.kubernetes.io/unreachable", effect: "NoExecute" }] : [] },
    status: { conditions: node.ready ? [{ type: "Ready", status: node.ready }] : [] },
  };
}

function rawHeartbeat(name: string) {
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: {
      namespace: "netservice-system",
      name,
      uid: `lease-${name}`,
      ownerReferences: [{ apiVersion: "v1", kind: "Node", name, uid: nodeUid(name) }],
    },
    spec: { renewTime: "2026-06-01T11:59:59.000000Z" },
  };
}

function nodeUid(name: string): string {
  return `node-uid-${name}`;
}

function podUid(namespace: string, name: string): string {
  return `pod-uid-${namespace}-${name}`;
}

// The annotation names are written out here rather than imported, so a typo in the product's constants shows.
function toPod(model: ModelPod): V1Pod {
  const annotations: Record<string, string> = {};
  if (model.status) annotations["k8s.v1.cni.cncf.io/network-status"] = statusText(model.status);
  if (model.legacyStatus) annotations["k8s.v1.cni.cncf.io/networks-status"] = statusText(model.legacyStatus);
  const requestText = requestTextOf(model.request);
  if (requestText !== undefined) annotations["k8s.v1.cni.cncf.io/networks"] = requestText;
  return {
    metadata: {
      namespace: model.namespace,
      name: model.name,
      uid: podUid(model.namespace, model.name),
      labels: model.labels,
      annotations,
      ...(model.deleting ? { deletionTimestamp: new Date(now - 5000) } : {}),
    },
    spec: {
      containers: [],
      nodeName: model.node,
      ...(model.hostname ? { hostname: model.hostname } : {}),
      ...(model.subdomain ? { subdomain: model.subdomain } : {}),
    },
    status: {
      phase: model.phase,
      conditions: model.readyCondition ? [{ type: "Ready", status: model.readyCondition }] : [],
    },
  };
}

function statusText(model: ModelStatus): string {
  if (model.malformed) return model.text;
  return JSON.stringify(
    model.attachments.map((each, index) => ({
      name: each.name,
      interface: each.isDefault ? "eth0" : `net${index + 1}`,
      ...(each.ips ? { ips: each.ips.map((ip) => ip.text) } : {}),
      mac: "02:00:00:00:00:01",
      ...(each.isDefault ? { default: true } : {}),
      dns: {},
    })),
  );
}

function requestTextOf(model: ModelRequest): string | undefined {
  switch (model.form) {
    case "none":
      return undefined;
    case "malformed":
      return model.text;
    case "short":
      return model.networks.map((each, index) => `${each.namespace ? `${each.namespace}/` : ""}${each.name}@net${index + 1}`).join(", ");
    case "json":
      return JSON.stringify(model.networks.map((each, index) => ({ ...each, interface: `net${index + 1}` })));
  }
}

function toNetService(model: ModelNetService): NetService {
  return netService({ ...model, uid: `netservice-uid-${model.namespace}-${model.name}` });
}

// ---- comparison ----

function sliceKey(endpoint: ModelEndpoint): string {
  const [namespace = "", name = ""] = endpoint.pod.split("/");
  return [
    endpoint.pod, podUid(namespace, name), endpoint.address, `node=${endpoint.nodeName}`, `zone=${endpoint.zone ?? "-"}`,
    `hostname=${endpoint.hostname ?? "-"}`, `ready=${endpoint.ready}`, `serving=${endpoint.serving}`, `terminating=${endpoint.terminating}`,
  ].join(" ");
}

function endpointsKey(endpoint: ModelEndpoint): string {
  const [namespace = "", name = ""] = endpoint.pod.split("/");
  return [endpoint.pod, podUid(namespace, name), endpoint.address, `node=${endpoint.nodeName}`, `hostname=${endpoint.hostname ?? "-"}`].join(" ");
}

function actualSliceKeys(slices: readonly V1EndpointSlice[]): string[] {
  const keys: string[] = [];
  for (const slice of slices) {
    for (const endpoint of slice.endpoints ?? []) {
      const [ip, ...others] = endpoint.addresses;
      if (ip === undefined || others.length > 0) throw new Error(`${slice.metadata?.name}: an endpoint with ${endpoint.addresses.length} addresses`);
      if (familyOf(ip) !== slice.addressType) throw new Error(`${slice.metadata?.name}: ${ip} in a slice of ${slice.addressType}`);
      const ref = endpoint.targetRef;
      keys.push(
        [
          `${ref?.namespace}/${ref?.name}`, ref?.uid ?? "-", ip, `node=${endpoint.nodeName}`, `zone=${endpoint.zone ?? "-"}`,
          `hostname=${endpoint.hostname ?? "-"}`, `ready=${endpoint.conditions?.ready}`, `serving=${endpoint.conditions?.serving}`,
          `terminating=${endpoint.conditions?.terminating}`,
        ].join(" "),
      );
    }
  }
  return keys;
}

function actualEndpointsKeys(endpoints: V1Endpoints, field: "addresses" | "notReadyAddresses"): string[] {
  const subsets = endpoints.subsets ?? [];
  if (subsets.length > 1) throw new Error(`${subsets.length} subsets`);
  return (subsets[0]?.[field] ?? []).map((each) =>
    [`${each.targetRef?.namespace}/${each.targetRef?.name}`, each.targetRef?.uid ?? "-", each.ip, `node=${each.nodeName}`, `hostname=${each.hostname ?? "-"}`].join(" "),
  );
}

function assertSame(what: string, expected: readonly string[], actual: readonly string[]): void {
  const want = [...expected].sort();
  const got = [...actual].sort();
  if (JSON.stringify(want) === JSON.stringify(got)) return;
  const missing = want.filter((each) => !got.includes(each));
  const extra = got.filter((each) => !want.includes(each));
  throw new Error(`${what}:\n  missing ${JSON.stringify(missing)}\n  extra ${JSON.stringify(extra)}`);
}

t.test("every NetService publishes exactly what the model of the documented rules says", async (t) => {
  let compared = { sliceEndpoints: 0, notReady: 0, terminating: 0, ipv6: 0 };
  let runsPublishing = 0;
  fc.assert(
    fc.property(world, partLimits, (cluster, limits) => {
      const published = publish(cluster, limits);
      if ([...published.values()].some(({ slices }) => slices.length > 0)) runsPublishing++;
      for (const model of cluster.netServices) {
        const actual = published.get(model);
        if (!actual) throw new Error("nothing published");
        const expected = modelPublication(cluster, model);
        const name = `${model.namespace}/${model.name}`;
        assertSame(`${name} EndpointSlices`, expected.sliceEndpoints.map(sliceKey), actualSliceKeys(actual.slices));
        assertSame(`${name} Endpoints addresses`, expected.ready.map(endpointsKey), actualEndpointsKeys(actual.endpoints, "addresses"));
        assertSame(`${name} Endpoints notReadyAddresses`, expected.notReady.map(endpointsKey), actualEndpointsKeys(actual.endpoints, "notReadyAddresses"));
        assertSame(
          `${name} counts`,
          [`ready=${expected.readyPods} notReady=${expected.notReadyPods}`],
          [`ready=${actual.merged.readyEndpoints} notReady=${actual.merged.notReadyEndpoints}`],
        );
        compared = {
          sliceEndpoints: compared.sliceEndpoints + expected.sliceEndpoints.length,
          notReady: compared.notReady + expected.notReady.length,
          terminating: compared.terminating + expected.sliceEndpoints.filter((each) => each.terminating).length,
          ipv6: compared.ipv6 + expected.sliceEndpoints.filter((each) => familyOf(each.address) === "IPv6").length,
        };
      }
    }),
    { numRuns: propertyRuns },
  );
  // A model and a product that both publish nothing would agree; show that the runs compared something of each kind.
  t.ok(compared.sliceEndpoints > 0, `${compared.sliceEndpoints} slice endpoints compared, in ${runsPublishing} runs that published some`);
  t.ok(compared.notReady > 0, `${compared.notReady} not-ready Endpoints addresses compared`);
  t.ok(compared.terminating > 0, `${compared.terminating} terminating endpoints compared`);
  t.ok(compared.ipv6 > 0, `${compared.ipv6} IPv6 endpoints compared`);
});
