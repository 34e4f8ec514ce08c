import type { V1Pod } from "@kubernetes/client-node";
import fc from "fast-check";
import t from "tap";
import { annotations, labels, type ReportSpec } from "../../common/api.ts";
import type { KubeObject } from "../../common/kube/object.ts";
import { buildNodeReport } from "../../common/node-report.ts";
import { podChangeMatters, slimPod } from "../../node-agent/pod-cache.ts";
import { annotationProblem } from "../../node-agent/pod-warnings.ts";
import { formatTriggerTime, nodeNameLabel, reportNeedsWrite, reportObject, storedReport } from "../../node-agent/report-object.ts";
import { attachment, netService, pod, propertyRuns } from "./objects.ts";

const spec: ReportSpec = {
  nodeName: "node-1",
  triggerTime: "2026-01-02T03:04:05.678Z",
  pods: [{ namespace: "default", name: "a", uid: "u", serving: true, terminating: false }],
  netServices: [{ namespace: "default", name: "corens", uid: "n", generation: 1, endpoints: [{ pod: 0, addresses: ["10.0.0.1"] }] }],
};

const nodeOwner = { apiVersion: "v1", kind: "Node", name: "node-1", uid: "node-uid" };

t.test("the report object is named after the node and its part, labelled with the node, owned by the Node, in the system namespace", async (t) => {
  t.same(reportObject("node-1", "netservice-system", spec, 0, "node-uid"), {
    apiVersion: "svcctl.metaswitch.com/v1alpha1",
    kind: "NetServiceNodeReport",
    metadata: { name: "node-1.0", namespace: "netservice-system", labels: { [labels.nodeName]: "node-1" }, ownerReferences: [nodeOwner] },
    spec,
  });
  t.equal(reportObject("node-1", "netservice-system", spec, 2, "node-uid").metadata?.name, "node-1.2");
});

t.test("a node name too long for a label value gets no label", async (t) => {
  const long = `${"a".repeat(60)}.example.com`;
  t.equal(nodeNameLabel(long), undefined);
  t.notOk(reportObject(long, "ns", { ...spec, nodeName: long }, 0, "u").metadata?.labels);
  t.ok(storedReport({ metadata: { uid: "x" }, spec: { ...spec, nodeName: long } }, long).labelled, "and none is expected");
});

t.test("write only when the stored report publishes something else", async (t) => {
  const stored = storedReport({ metadata: { uid: "x", labels: { [labels.nodeName]: "node-1" }, ownerReferences: [nodeOwner] }, spec }, "node-1");
  t.equal(stored.uid, "x");
  t.equal(stored.nodeUid, "node-uid");
  t.notOk(reportNeedsWrite({ ...spec, triggerTime: "2030-01-01T00:00:00.000Z" }, stored, "node-uid"), "a newer triggerTime alone is no change");
  t.notOk(reportNeedsWrite({ ...spec, triggerTime: undefined }, stored, "node-uid"));
  t.ok(reportNeedsWrite({ ...spec, pods: [{ ...spec.pods[0]!, serving: false }] }, stored, "node-uid"), "readiness changed");
  t.ok(reportNeedsWrite(spec, null, "node-uid"), "no report on the server");
  t.ok(reportNeedsWrite(spec, stored, "another-node-uid"), "the Node was re-created: the report must name the new one as owner");
  const ownerless = storedReport({ metadata: { uid: "x", labels: { [labels.nodeName]: "node-1" } }, spec }, "node-1");
  t.ok(reportNeedsWrite(spec, ownerless, "node-uid"), "a report without its owner is rewritten with it");
  const unlabelled = storedReport({ metadata: { uid: "x" }, spec }, "node-1");
  t.ok(reportNeedsWrite(spec, unlabelled, "node-uid"), "the label is missing");
  const garbage = storedReport({ metadata: { uid: "x", labels: { [labels.nodeName]: "node-1" } }, spec: { nodeName: 5 } }, "node-1");
  t.equal(garbage.spec, undefined);
  t.ok(reportNeedsWrite(spec, garbage, "node-uid"), "a stored spec that does not parse is overwritten");
});

t.test("trigger times are RFC 3339 with milliseconds", async (t) => {
  t.equal(formatTriggerTime(Date.UTC(2026, 0, 2, 3, 4, 5, 6)), "2026-01-02T03:04:05.006Z");
});

function fullPod(base: V1Pod): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    ...base,
    metadata: {
      ...(base.metadata as KubeObject["metadata"]),
      resourceVersion: "17",
      deletionTimestamp: base.metadata?.deletionTimestamp ? "2026-01-01T00:00:00Z" : undefined,
      annotations: { ...base.metadata?.annotations, "kubectl.kubernetes.io/last-applied-configuration": "{...}".repeat(100) },
      managedFields: [{ manager: "kubectl" }],
    },
    spec: { ...base.spec, nodeName: "node-1", containers: [{ name: "c", image: "busybox", env: [{ name: "A", value: "b" }] }], volumes: [] },
    status: { ...base.status, containerStatuses: [{ name: "c", ready: true, restartCount: 3 }], podIP: "10.244.0.5" },
  };
}

t.test("the slimmed pod keeps identity, labels, Multus annotations, readiness and hostname, and drops the rest", async (t) => {
  const slim = slimPod(fullPod(pod({ hostname: "h", deleting: true, networks: "core" })));
  t.same(Object.keys(slim.metadata?.annotations ?? {}).sort(), [annotations.networksRequest], "only Multus annotations");
  t.equal(slim.metadata?.managedFields, undefined);
  t.equal(slim.metadata?.resourceVersion, "17", "the informer needs the version");
  t.ok(slim.metadata?.deletionTimestamp);
  t.same(slim.spec, { nodeName: "node-1", hostname: "h" });
  t.same(Object.keys(slim.status as object).sort(), ["conditions", "phase", "podIP"]);
});

t.test("property: the report and the warnings are the same from slimmed pods", async (t) => {
  const netServices = [
    netService({ name: "corens", netAttachDef: "core" }),
    netService({ name: "accessns", netAttachDef: "networks/access", publishNotReadyAddresses: true }),
  ];
  const podArb = fc.record({
    name: fc.constantFrom("a", "b", "c", "d"),
    labels: fc.constantFrom({ app: "utils" }, { app: "other" }),
    ready: fc.boolean(),
    deleting: fc.boolean(),
    phase: fc.constantFrom("Running", "Pending", "Succeeded"),
    hostname: fc.option(fc.constantFrom("h1", "h2"), { nil: undefined }),
    networkStatus: fc.option(
      fc.array(
        fc.record({
          name: fc.constantFrom("default/core", "core", "networks/access", "other/core", ""),
          ips: fc.array(fc.constantFrom("10.0.0.1", "10.0.0.2/24", "fd00::1", "127.0.0.1", "nonsense"), { maxLength: 3 }),
        }),
        { maxLength: 3 },
      ),
      { nil: undefined },
    ),
    networks: fc.option(fc.constantFrom("core", "networks/access", "[{oops", "networks/core@net1"), { nil: undefined }),
  });
  fc.assert(
    fc.property(fc.uniqueArray(podArb, { selector: (p) => p.name, maxLength: 4 }), (specs) => {
      const pods = specs.map((p) =>
        pod({
          ...p,
          ...(p.networkStatus ? { networkStatus: p.networkStatus.map((a) => attachment(a.name, a.ips)) } : {}),
        }),
      );
      const full = pods.map(fullPod);
      const slim = full.map(slimPod);
      const fromFull = buildNodeReport("node-1", full as unknown as V1Pod[], netServices);
      const fromSlim = buildNodeReport("node-1", slim as unknown as V1Pod[], netServices);
      return (
        JSON.stringify(fromFull) === JSON.stringify(fromSlim) &&
        full.every((p, i) => JSON.stringify(annotationProblem(p as V1Pod)) === JSON.stringify(annotationProblem(slim[i] as V1Pod)))
      );
    }),
    { numRuns: Math.min(propertyRuns, 500) },
  );
  t.pass();
});

t.test("pod updates that change nothing the agent keeps do not trigger a recompute", async (t) => {
  const before = slimPod(fullPod(pod()));
  const restarted = fullPod(pod());
  (restarted.status as { containerStatuses: { restartCount: number }[] }).containerStatuses[0]!.restartCount = 4;
  t.notOk(podChangeMatters(before, { ...slimPod(restarted), metadata: { ...slimPod(restarted).metadata, resourceVersion: "18" } }));
  t.ok(podChangeMatters(before, slimPod(fullPod(pod({ ready: false })))), "readiness");
  t.ok(podChangeMatters(before, slimPod(fullPod(pod({ labels: { app: "x" } })))), "labels");
  t.ok(podChangeMatters(before, slimPod(fullPod(pod({ networks: "core" })))), "annotations");
});

t.test("the stored report's owner is the v1 Node among its owners, and a missing or wrong label means a write", async (t) => {
  const owners = [
    { apiVersion: "v1", kind: "Pod", name: "p", uid: "pod-uid" },
    { apiVersion: "example.com/v1", kind: "Node", name: "node-1", uid: "other-node-uid" },
    nodeOwner,
  ];
  const stored = (nodeLabel?: string) =>
    storedReport({ metadata: { uid: "x", ownerReferences: owners, ...(nodeLabel ? { labels: { [labels.nodeName]: nodeLabel } } : {}) }, spec }, "node-1");
  t.equal(stored("node-1").nodeUid, "node-uid");
  t.same([stored("node-1").labelled, stored("node-2").labelled, stored().labelled], [true, false, false]);
  t.notOk(reportNeedsWrite(spec, stored("node-1"), "node-uid"), "owned, labelled, the same: nothing to write");
  t.ok(reportNeedsWrite(spec, stored("node-2"), "node-uid"), "labelled for another node");
  t.ok(reportNeedsWrite(spec, stored(), "node-uid"), "not labelled");
});

t.test("a node name of 63 characters is still a label value", async (t) => {
  const name = "n".repeat(63);
  t.equal(nodeNameLabel(name), name);
  t.equal(nodeNameLabel(`${name}x`), undefined);
});

t.test("a pod with no annotations, spec or status slims to what it has, its kind included", async (t) => {
  const bare: KubeObject = { apiVersion: "v1", kind: "Pod", metadata: { namespace: "default", name: "a", uid: "u" } };
  t.same(slimPod(bare), { apiVersion: "v1", kind: "Pod", metadata: { namespace: "default", name: "a", uid: "u" }, spec: {}, status: {} });
});

t.test("a stored report owned by something other than a Node has no node owner: it is written again", async (t) => {
  const podOwned = storedReport(
    { metadata: { uid: "x", labels: { [labels.nodeName]: "node-1" }, ownerReferences: [{ apiVersion: "v1", kind: "Pod", name: "p", uid: "pod-uid" }] }, spec },
    "node-1",
  );
  t.equal(podOwned.nodeUid, undefined);
  t.ok(reportNeedsWrite(spec, podOwned, "node-uid"));
});
