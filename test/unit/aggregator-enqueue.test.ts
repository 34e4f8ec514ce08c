// Which NetServices an event wakes up: report changes, node comings and
// goings, and changes of owned objects.
import t from "tap";
import type { ReportSpec } from "../../common/api.ts";
import type { KubeObject } from "../../common/kube/object.ts";
import { changedNetServiceKeys, ownerKeyOf } from "../../aggregator/keys.ts";
import { parseReport, ReportIndex } from "../../aggregator/report-index.ts";

const pod = (name: string, serving = true) => ({ namespace: "default", name, uid: `uid-${name}`, serving, terminating: false });
const entry = (name: string, endpoints: { pod: number; addresses: string[] }[], extra: { uid?: string; generation?: number; namespace?: string } = {}) => ({
  namespace: extra.namespace ?? "default",
  name,
  uid: extra.uid ?? `uid-${name}`,
  generation: extra.generation ?? 1,
  endpoints,
});
function report(nodeName: string, pods: ReturnType<typeof pod>[], netServices: ReturnType<typeof entry>[], triggerTime = "2026-01-01T00:00:00.000Z"): ReportSpec {
  return { nodeName, triggerTime, pods, netServices };
}

const base = report("node-1", [pod("a"), pod("b")], [
  entry("corens", [{ pod: 0, addresses: ["10.0.0.1"] }, { pod: 1, addresses: ["10.0.0.2"] }]),
  entry("accessns", [{ pod: 1, addresses: ["10.1.0.2"] }]),
  entry("idle", []),
]);

t.test("a report change wakes exactly the NetServices whose part of it changed", async (t) => {
  const cases: { name: string; previous: ReportSpec | undefined; next: ReportSpec | undefined; expect: string[] }[] = [
    { name: "a new report wakes every NetService it names", previous: undefined, next: base, expect: ["default/accessns", "default/corens", "default/idle"] },
    { name: "a deleted report wakes every NetService it named", previous: base, next: undefined, expect: ["default/accessns", "default/corens", "default/idle"] },
    { name: "the same report wakes nobody", previous: base, next: structuredClone(base), expect: [] },
    {
      name: "a new triggerTime alone wakes nobody",
      previous: base,
      next: { ...structuredClone(base), triggerTime: "2026-01-01T00:00:09.000Z" },
      expect: [],
    },
    {
      name: "a pod's readiness wakes the NetServices that pod is an endpoint of",
      previous: base,
      next: { ...structuredClone(base), pods: [pod("a"), pod("b", false)] },
      expect: ["default/accessns", "default/corens"],
    },
    {
      name: "an address change wakes only its NetService",
      previous: base,
      next: report("node-1", [pod("a"), pod("b")], [
        entry("corens", [{ pod: 0, addresses: ["10.0.0.1"] }, { pod: 1, addresses: ["10.0.0.2"] }]),
        entry("accessns", [{ pod: 1, addresses: ["10.1.0.3"] }]),
        entry("idle", []),
      ]),
      expect: ["default/accessns"],
    },
    {
      name: "pods renumbered but the same endpoints wake nobody",
      previous: base,
      next: report("node-1", [pod("b"), pod("a")], [
        entry("corens", [{ pod: 1, addresses: ["10.0.0.1"] }, { pod: 0, addresses: ["10.0.0.2"] }]),
        entry("accessns", [{ pod: 0, addresses: ["10.1.0.2"] }]),
        entry("idle", []),
      ]),
      expect: [],
    },
    {
      name: "a dropped entry and a new generation wake their NetServices",
      previous: base,
      next: report("node-1", [pod("a"), pod("b")], [
        entry("corens", [{ pod: 0, addresses: ["10.0.0.1"] }, { pod: 1, addresses: ["10.0.0.2"] }], { generation: 2 }),
        entry("accessns", [{ pod: 1, addresses: ["10.1.0.2"] }]),
      ]),
      expect: ["default/corens", "default/idle"],
    },
    {
      name: "a recreated NetService of the same name (new uid) wakes it",
      previous: base,
      next: report("node-1", [pod("a"), pod("b")], [
        entry("corens", [{ pod: 0, addresses: ["10.0.0.1"] }, { pod: 1, addresses: ["10.0.0.2"] }], { uid: "uid-new" }),
        entry("accessns", [{ pod: 1, addresses: ["10.1.0.2"] }]),
        entry("idle", []),
      ]),
      expect: ["default/corens"],
    },
  ];
  for (const c of cases) t.same(changedNetServiceKeys(c.previous, c.next), c.expect, c.name);
});

t.test("an owned object wakes the NetService that controls it, else the one its label names", async (t) => {
  const controller = { apiVersion: "svcctl.metaswitch.com/v1alpha1", kind: "NetService", name: "corens", uid: "u", controller: true };
  const object = (metadata: KubeObject["metadata"]): KubeObject => ({ metadata: { namespace: "default", name: "x", ...metadata } });
  const cases: { name: string; object: KubeObject; expect: string | undefined }[] = [
    { name: "controlled by a NetService", object: object({ ownerReferences: [controller] }), expect: "default/corens" },
    {
      name: "controller wins over the label",
      object: object({ ownerReferences: [controller], labels: { "svcctl.metaswitch.com/netservice": "other" } }),
      expect: "default/corens",
    },
    { name: "labelled only (someone's copy in the way)", object: object({ labels: { "svcctl.metaswitch.com/netservice": "other" } }), expect: "default/other" },
    {
      name: "controlled by a Service, labelled (Kubernetes' slice of the template Service)",
      object: object({
        ownerReferences: [{ apiVersion: "v1", kind: "Service", name: "corens-template", uid: "s", controller: true }],
        labels: { "svcctl.metaswitch.com/netservice": "corens" },
      }),
      expect: "default/corens",
    },
    {
      name: "a non-controller NetService reference does not count",
      object: object({ ownerReferences: [{ ...controller, controller: false }] }),
      expect: undefined,
    },
    { name: "neither", object: object({}), expect: undefined },
  ];
  for (const c of cases) t.equal(ownerKeyOf(c.object), c.expect, c.name);
});

t.test("the report index narrows each report to one NetService's entries and knows each node's NetServices", async (t) => {
  const index = new ReportIndex();
  t.same(index.update("netservice-system/node-1", base), ["default/accessns", "default/corens", "default/idle"]);
  const other = report("node-2", [pod("c")], [entry("corens", [{ pod: 0, addresses: ["10.0.0.3"] }]), entry("other", [], { namespace: "prod" })]);
  t.same(index.update("netservice-system/node-2", other), ["default/corens", "prod/other"]);

  const views = index.reportsFor("default/corens");
  t.same(views.map((view) => view.nodeName).sort(), ["node-1", "node-2"]);
  for (const view of views) {
    t.same(view.spec.netServices.map((e) => e.name), ["corens"], `${view.nodeName}: only corens's entries`);
    t.ok(view.spec.pods.length > 0, "pods kept, endpoints index into them");
  }
  t.same(index.reportsFor("prod/other").map((view) => view.nodeName), ["node-2"]);
  t.same(index.reportsFor("default/nothing"), []);
  t.same(index.netServiceKeysOfNode("node-2"), ["default/corens", "prod/other"]);
  t.same(index.netServiceKeysOfNode("node-9"), []);

  t.same(index.update("netservice-system/node-2", undefined), ["default/corens", "prod/other"], "deletion wakes what it named");
  t.same(index.reportsFor("default/corens").map((view) => view.nodeName), ["node-1"]);
  t.same(index.reportsFor("prod/other"), []);
  t.same(index.netServiceKeysOfNode("node-2"), []);
});

t.test("a report that does not parse is cached without a spec, so it contributes nothing", async (t) => {
  const raw = {
    apiVersion: "svcctl.metaswitch.com/v1alpha1",
    kind: "NetServiceNodeReport",
    metadata: { namespace: "netservice-system", name: "node-1", resourceVersion: "5", managedFields: [{}] },
    spec: { nodeName: "node-1", pods: "not a list", netServices: [] },
  };
  const cached = parseReport(raw);
  t.equal(cached.spec, undefined);
  t.match(cached.invalid, /pods/);
  t.equal(cached.metadata?.managedFields, undefined, "managedFields dropped from the cache");
  const good = parseReport({ ...raw, spec: base });
  t.same(good.spec, base);
  t.equal(good.invalid, undefined);
});

t.test("a node's report in parts (<node>, <node>.1) is indexed as one node's reports", async (t) => {
  const index = new ReportIndex();
  index.update("netservice-system/node-1", report("node-1", [pod("a")], [entry("corens", [{ pod: 0, addresses: ["10.0.0.1"] }])]));
  index.update("netservice-system/node-1.1", report("node-1", [pod("b")], [entry("accessns", [{ pod: 0, addresses: ["10.1.0.2"] }])]));
  t.same(index.netServiceKeysOfNode("node-1"), ["default/accessns", "default/corens"], "a Node's coming or going wakes the NetServices of every part");
  t.same(index.reportsFor("default/accessns").map((view) => [view.nodeName, view.spec.pods[0]?.name]), [["node-1", "b"]]);

  // The agent moves an entry: the gaining part is written first, the losing part after.
  t.same(
    index.update("netservice-system/node-1.1", report("node-1", [pod("b"), pod("a")], [
      entry("accessns", [{ pod: 0, addresses: ["10.1.0.2"] }]),
      entry("corens", [{ pod: 1, addresses: ["10.0.0.1"] }]),
    ])),
    ["default/corens"],
  );
  t.equal(index.reportsFor("default/corens").length, 2, "meanwhile in both parts; the merge lists each pod once");
  t.same(index.update("netservice-system/node-1", undefined), ["default/corens"]);
  t.same(index.reportsFor("default/corens").map((view) => view.spec.netServices.length), [1]);
});
