// What the aggregator writes, deletes and reports for one NetService, given
// what exists: above all, that it never touches an object it does not own.
import t from "tap";
import { desiredEndpoints } from "../../common/desired-endpoints.ts";
import { desiredServices } from "../../common/desired-services.ts";
import { desiredEndpointSlices } from "../../common/desired-slices.ts";
import type { KubeObject } from "../../common/kube/object.ts";
import type { MergedEndpoint, MergedNetService } from "../../common/merge.ts";
import { decideObject } from "../../aggregator/ownership.ts";
import { planNetService, type Action, type Observed, type OwnedKind } from "../../aggregator/plan.ts";
import { creationSkeleton } from "../../aggregator/skeleton.ts";
import { netService } from "./objects.ts";

const corens = netService({ name: "corens", uid: "uid-corens", ports: [{ name: "sip", port: 5060, protocol: "UDP" }] });
const ownerRef = (name: string, uid: string, kind = "NetService", apiVersion = "svcctl.metaswitch.com/v1alpha1") => ({
  apiVersion,
  kind,
  name,
  uid,
  controller: true,
  blockOwnerDeletion: true,
});

function endpoint(name: string, addresses: string[]): MergedEndpoint {
  return { pod: { namespace: "default", name, uid: `uid-${name}` }, nodeName: "node-1", addresses, serving: true, terminating: false, ready: true };
}
function merged(endpoints: MergedEndpoint[]): MergedNetService {
  return { endpoints, readyEndpoints: endpoints.length, notReadyEndpoints: 0, nodesReporting: 1, agents: { reporting: 1, liveNodes: 1 }, staleNodes: [], unservedNodes: [] };
}
const twoPods = merged([endpoint("a", ["10.0.0.1", "fd00::1"]), endpoint("b", ["10.0.0.2"])]);

/** What the API server would hold after the aggregator wrote everything for this view. */
function published(view: MergedNetService, ns = corens): { kind: OwnedKind; object: KubeObject }[] {
  const services = desiredServices(ns);
  const withUid = (object: object, i: string): KubeObject => {
    const o = structuredClone(object) as KubeObject;
    return { ...o, metadata: { ...o.metadata, uid: `obj-${i}`, resourceVersion: "7" } };
  };
  return [
    { kind: "Service", object: withUid(services.headless, "headless") },
    { kind: "Service", object: withUid(services.template, "template") },
    { kind: "Endpoints", object: withUid(desiredEndpoints(ns, view), "endpoints") },
    ...desiredEndpointSlices(ns, view).slices.map((slice, i) => ({ kind: "EndpointSlice" as const, object: withUid(slice, `slice-${i}`) })),
  ];
}

/** The caches: objects by kind and name; the index holds those labelled for or controlled by corens. */
function observed(objects: { kind: OwnedKind; object: KubeObject }[], ns = corens): Observed {
  return {
    get: (kind, name) => objects.find((o) => o.kind === kind && o.object.metadata?.name === name)?.object,
    indexed: (kind) =>
      objects
        .filter((o) => o.kind === kind)
        .map((o) => o.object)
        .filter(
          (o) =>
            o.metadata?.labels?.["svcctl.metaswitch.com/netservice"] === ns.metadata.name ||
            o.metadata?.ownerReferences?.some((r) => r.controller && r.name === ns.metadata.name && r.kind === "NetService"),
        ),
  };
}

const summary = (actions: Action[]) =>
  actions.map((a) => `${a.verb} ${a.kind} ${(a.verb === "delete" ? a.existing : a.desired).metadata?.name}${a.verb === "delete" ? ` (${a.why})` : ""}`);

function foreign(kind: OwnedKind, name: string, metadata: KubeObject["metadata"] = {}): { kind: OwnedKind; object: KubeObject } {
  return { kind, object: { apiVersion: "v1", kind, metadata: { namespace: "default", name, uid: `foreign-${name}`, ...metadata } } };
}

t.test("decideObject: only an object this NetService controls is ever written", async (t) => {
  const mine = { metadata: { name: "corens", ownerReferences: [ownerRef("corens", "uid-corens")] } };
  const cases: { name: string; existing: KubeObject | undefined; needsWrite: boolean; expect: unknown }[] = [
    { name: "nothing there: create", existing: undefined, needsWrite: true, expect: { decision: "create" } },
    { name: "ours and different: update", existing: mine, needsWrite: true, expect: { decision: "update" } },
    { name: "ours and the same: nothing", existing: mine, needsWrite: false, expect: { decision: "unchanged" } },
    { name: "no owner: taken", existing: { metadata: { name: "corens" } }, needsWrite: true, expect: { decision: "taken" } },
    {
      name: "owned by a Deployment: taken, saying whose",
      existing: { metadata: { name: "corens", ownerReferences: [ownerRef("web", "d", "Deployment", "apps/v1")] } },
      needsWrite: true,
      expect: { decision: "taken", holder: "Deployment web" },
    },
    {
      name: "another NetService's: taken, saying whose",
      existing: { metadata: { name: "corens", ownerReferences: [ownerRef("other", "uid-other")] } },
      needsWrite: true,
      expect: { decision: "taken", holder: "NetService other" },
    },
    {
      name: "a deleted NetService of the same name (other uid): replaced",
      existing: { metadata: { name: "corens", ownerReferences: [ownerRef("corens", "uid-old")] } },
      needsWrite: true,
      expect: { decision: "replacePredecessor", predecessorUid: "uid-old" },
    },
    {
      name: "a NetService of another group with our name (other uid): taken, never deleted as a predecessor",
      existing: { metadata: { name: "corens", ownerReferences: [ownerRef("corens", "uid-old", "NetService", "example.com/v1")] } },
      needsWrite: true,
      expect: { decision: "taken", holder: "NetService corens" },
    },
    {
      name: "our uid but a non-controller reference: taken",
      existing: { metadata: { name: "corens", ownerReferences: [{ ...ownerRef("corens", "uid-corens"), controller: false }] } },
      needsWrite: true,
      expect: { decision: "taken" },
    },
    {
      name: "same name and uid but another group's kind: taken",
      existing: { metadata: { name: "corens", ownerReferences: [ownerRef("corens", "uid-corens", "NetService", "example.com/v1")] } },
      needsWrite: true,
      expect: { decision: "taken", holder: "NetService corens" },
    },
  ];
  for (const c of cases) t.same(decideObject(corens, c.existing, () => c.needsWrite), c.expect, c.name);
});

t.test("planNetService: from nothing to everything, then nothing to do", async (t) => {
  const first = planNetService(corens, twoPods, observed([]));
  t.same(summary(first.actions), [
    "create Service corens",
    "create Service corens-template",
    "create Endpoints corens",
    "create EndpointSlice corens-ipv4-0",
    "create EndpointSlice corens-ipv6-0",
  ]);
  t.same(first.problems, []);
  t.equal(first.publishing, true);
  const again = planNetService(corens, twoPods, observed(published(twoPods)));
  t.same(summary(again.actions), [], "what exists is what is wanted: no write");
});

t.test("planNetService: changes are updates of exactly the objects that differ, and obsolete ones go", async (t) => {
  const cases: { name: string; ns?: typeof corens; view: MergedNetService; expect: string[] }[] = [
    {
      name: "an address changes: the Endpoints and that family's slice",
      view: merged([endpoint("a", ["10.0.0.9", "fd00::1"]), endpoint("b", ["10.0.0.2"])]),
      expect: ["update Endpoints corens", "update EndpointSlice corens-ipv4-0"],
    },
    {
      name: "the last IPv6 address goes: its slice is deleted",
      view: merged([endpoint("a", ["10.0.0.1"]), endpoint("b", ["10.0.0.2"])]),
      expect: ["update Endpoints corens", "delete EndpointSlice corens-ipv6-0 (obsolete)"],
    },
    {
      name: "templateServiceName edited: the new template is created, the old one deleted",
      ns: netService({ name: "corens", uid: "uid-corens", templateServiceName: "corens-primary", ports: [{ name: "sip", port: 5060, protocol: "UDP" }] }),
      view: twoPods,
      expect: ["create Service corens-primary", "delete Service corens-template (obsolete)"],
    },
    {
      name: "selector edited: only the template Service",
      ns: netService({ name: "corens", uid: "uid-corens", selector: { app: "other" }, ports: [{ name: "sip", port: 5060, protocol: "UDP" }] }),
      view: twoPods,
      expect: ["update Service corens-template"],
    },
    {
      name: "ports edited: both Services, the Endpoints and every slice",
      ns: netService({ name: "corens", uid: "uid-corens", ports: [{ name: "sips", port: 5061 }] }),
      view: twoPods,
      expect: [
        "update Service corens",
        "update Service corens-template",
        "update Endpoints corens",
        "update EndpointSlice corens-ipv4-0",
        "update EndpointSlice corens-ipv6-0",
      ],
    },
  ];
  for (const c of cases) {
    t.same(summary(planNetService(c.ns ?? corens, c.view, observed(published(twoPods))).actions), c.expect, c.name);
  }
});

t.test("planNetService: a Service named like the NetService that is someone else's blocks every endpoint", async (t) => {
  const ours = published(twoPods).filter((o) => !(o.kind === "Service" && o.object.metadata?.name === "corens"));
  const plan = planNetService(corens, twoPods, observed([foreign("Service", "corens"), ...ours]));
  t.same(
    summary(plan.actions),
    ["delete Endpoints corens (obsolete)", "delete EndpointSlice corens-ipv4-0 (obsolete)", "delete EndpointSlice corens-ipv6-0 (obsolete)"],
    "no write to the user's Service; our endpoints would become its endpoints, so they go",
  );
  t.equal(plan.problems.length, 1);
  t.equal(plan.problems[0]?.reason, "ServiceNameTaken");
  t.match(plan.problems[0]?.message, /Service default\/corens already exists and is not owned by this NetService/);
  t.match(plan.problems[0]?.message, /create the NetService under another name/);
  t.equal(plan.publishing, false, "the status counts nothing as published");

  const fresh = planNetService(corens, twoPods, observed([foreign("Service", "corens")]));
  t.same(summary(fresh.actions), ["create Service corens-template"], "from nothing: only the template Service");
});

t.test("planNetService: a taken template name is reported and everything else still published", async (t) => {
  const byOther = foreign("Service", "corens-template", { ownerReferences: [ownerRef("other", "uid-other")], labels: { "svcctl.metaswitch.com/netservice": "other" } });
  const plan = planNetService(corens, twoPods, observed([byOther]));
  t.same(summary(plan.actions), [
    "create Service corens",
    "create Endpoints corens",
    "create EndpointSlice corens-ipv4-0",
    "create EndpointSlice corens-ipv6-0",
  ]);
  t.equal(plan.problems[0]?.reason, "ServiceNameTaken");
  t.match(plan.problems[0]?.message, /Service default\/corens-template .*\(it belongs to NetService other\)/);
  t.match(plan.problems[0]?.message, /spec\.templateServiceName/);
});

t.test("planNetService: a taken Endpoints or slice name is reported, never written", async (t) => {
  const plan = planNetService(corens, twoPods, observed([foreign("Endpoints", "corens"), foreign("EndpointSlice", "corens-ipv6-0")]));
  t.same(summary(plan.actions), ["create Service corens", "create Service corens-template", "create EndpointSlice corens-ipv4-0"]);
  t.same(plan.problems.map((p) => p.message.split(" already")[0]), ["Endpoints default/corens", "EndpointSlice default/corens-ipv6-0"]);
});

t.test("planNetService: each taken name's problem says what is lost and how to fix it", async (t) => {
  const head = (object: string, whose = "") => `${object} already exists and is not owned by this NetService${whose}, so it is left untouched; `;
  const rows: { taken: { kind: OwnedKind; object: KubeObject }; message: string }[] = [
    {
      taken: foreign("Service", "corens"),
      message:
        head("Service default/corens") +
        "no addresses are published, since they would become that Service's endpoints. Delete or rename that Service, or create the NetService under another name",
    },
    {
      taken: foreign("Service", "corens-template", { ownerReferences: [ownerRef("web", "d", "Deployment", "apps/v1")] }),
      message:
        head("Service default/corens-template", " (it belongs to Deployment web)") +
        "the template Service (selector and primary addresses) is missing. Set spec.templateServiceName to an unused name, or delete or rename that Service",
    },
    {
      taken: foreign("Endpoints", "corens"),
      message:
        head("Endpoints default/corens") +
        "clients of the Endpoints API do not see the addresses (EndpointSlices are published). Delete that Endpoints object so that the aggregator can publish its own",
    },
    {
      taken: foreign("EndpointSlice", "corens-ipv4-0"),
      message: head("EndpointSlice default/corens-ipv4-0") + "the endpoints that belong in it are not published. Delete or rename that EndpointSlice",
    },
  ];
  for (const row of rows) {
    const plan = planNetService(corens, twoPods, observed([row.taken]));
    t.same(plan.problems, [{ reason: "ServiceNameTaken", message: row.message }], `${row.taken.kind} ${row.taken.object.metadata?.name}`);
  }
});

t.test("planNetService: one pod replaced among 150 rewrites the one slice it was in, not every slice after it", async (t) => {
  const pods = (numbers: number[]) => merged(numbers.map((n) => endpoint(`p${n}`, [`10.0.0.${n}`])));
  const before = Array.from({ length: 150 }, (_, i) => i + 1);
  const after = [...before.slice(1), 200];
  const plan = planNetService(corens, pods(after), observed(published(pods(before))));
  t.same(summary(plan.actions), ["update Endpoints corens", "update EndpointSlice corens-ipv4-0"], "the newcomer takes the free place in slice 0");
});

t.test("planNetService: a slice merely labelled for the NetService never decides where its endpoints go", async (t) => {
  const pods = merged(Array.from({ length: 150 }, (_, i) => endpoint(`p${i}`, [`10.0.0.${i + 1}`])));
  const placement = published(pods).find((o) => o.object.metadata?.name === "corens-ipv4-0")!.object;
  const labelled = foreign("EndpointSlice", "corens-ipv4-5", { labels: { "svcctl.metaswitch.com/netservice": "corens" } });
  const copied = { ...labelled, object: { ...labelled.object, addressType: "IPv4", endpoints: (placement as { endpoints?: unknown }).endpoints } as KubeObject };
  const plan = planNetService(corens, pods, observed([copied]));
  t.same(
    summary(plan.actions).filter((line) => line.includes("EndpointSlice")),
    ["create EndpointSlice corens-ipv4-0", "create EndpointSlice corens-ipv4-1"],
    "packed as if the labelled slice were not there",
  );
  t.same(plan.problems, []);
});

t.test("planNetService: what a deleted NetService of the same name left behind is deleted, not adopted", async (t) => {
  const predecessor = published(twoPods, netService({ name: "corens", uid: "uid-old", ports: [{ name: "sip", port: 5060, protocol: "UDP" }] }));
  const plan = planNetService(corens, twoPods, observed(predecessor));
  t.same(summary(plan.actions), [
    "delete Service corens (predecessor)",
    "delete Service corens-template (predecessor)",
    "delete Endpoints corens (predecessor)",
    "delete EndpointSlice corens-ipv4-0 (predecessor)",
    "delete EndpointSlice corens-ipv6-0 (predecessor)",
  ]);
  t.same(plan.actions.map((a) => (a.verb === "delete" ? a.ownerUid : "")), Array(5).fill("uid-old"), "deleted only if still owned by the old uid");
  t.same(plan.problems, [], "a transient state, not the user's problem");
});

t.test("planNetService: an object merely labelled for the NetService is never deleted", async (t) => {
  const labelled = foreign("EndpointSlice", "corens-extra", { labels: { "svcctl.metaswitch.com/netservice": "corens" } });
  const plan = planNetService(corens, twoPods, observed([...published(twoPods), labelled]));
  t.same(summary(plan.actions), []);
});

t.test("creation skeletons hold only what is never removed later", async (t) => {
  const services = desiredServices(corens);
  const skeleton = creationSkeleton("Service", services.template as KubeObject);
  t.same(skeleton.spec, { clusterIP: "None", selector: { app: "utils" } },
    "the template has its selector from the start (the API server picks the families at creation), no ports or families");
  t.same(creationSkeleton("Service", services.headless as KubeObject).spec, { clusterIP: "None" }, "the named Service: no selector, ports or families");
  t.same(skeleton.metadata?.ownerReferences, [ownerRef("corens", "uid-corens")], "controlled from its first moment, so it is never orphaned");
  const endpoints = creationSkeleton("Endpoints", desiredEndpoints(corens, twoPods, "2026-01-01T00:00:00.000Z") as KubeObject);
  t.equal(endpoints.metadata?.labels?.["endpointslice.kubernetes.io/skip-mirror"], "true", "never mirrored, even for a moment");
  t.equal(endpoints.metadata?.annotations, undefined, "annotations (trigger time, over-capacity) come and go, so only applies set them");
  t.equal(endpoints.subsets, undefined);
  const slice = creationSkeleton("EndpointSlice", desiredEndpointSlices(corens, twoPods).slices[1] as unknown as KubeObject);
  t.same([slice.addressType, slice.endpoints], ["IPv6", []]);
  t.equal(slice.metadata?.labels?.["endpointslice.kubernetes.io/managed-by"], "netservice-aggregator.svcctl.metaswitch.com");
});
