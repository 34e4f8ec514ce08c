// What each program may do once deploy/ is installed, tried with the
// programs' real credentials: service-account tokens from the TokenRequest
// API, bound to a pod on a node exactly as the kubelet mounts them, so the
// node name in the agent's token is real. Each allowance is a call the
// program makes; each denial is something a compromised pod must not do.
import path from "node:path";
import t, { type Test } from "tap";
import { Applier } from "../../common/kube/apply.ts";
import { KubeApiError, type KubeHttp, type KubeRequest } from "../../common/kube/http.ts";
import type { KubeObject } from "../../common/kube/object.ts";
import { repoRoot } from "../../hack/cluster/binaries.ts";
import { loadManifests } from "../../hack/manifests.ts";
import { startControlPlane } from "../helpers/control-plane.ts";
import { clientsFor, installDeploy, podRef, serviceAccountToken } from "../helpers/credentials.ts";
import { boundedTeardown } from "../helpers/teardown.ts";

const systemNamespace = "netservice-system";
const reports = `/apis/svcctl.metaswitch.com/v1alpha1/namespaces/${systemNamespace}/netservicenodereports`;
const agentUser = `system:serviceaccount:${systemNamespace}:netservice-agent`;

// OwnerReferencesPermissionEnforcement (on in OpenShift, off upstream by
// default) checks the aggregator's blockOwnerDeletion owner references.
const plane = await startControlPlane(t, {
  extraFlags: { "kube-apiserver": ["--enable-admission-plugins=OwnerReferencesPermissionEnforcement"] },
});
const admin = clientsFor(plane.kubeconfig);
boundedTeardown(t, { name: "admin clients", timeoutMs: 10_000, run: () => admin.close() });
await installDeploy(plane);

const manifests = await loadManifests(path.join(repoRoot, "deploy", "netservice.yaml"));
await createNode("node-a");
await createNode("node-b");
const agentPod = await createPodFrom("DaemonSet", "netservice-agent", "node-a");
const aggregatorPod = await createPodFrom("Deployment", "netservice-aggregator", "node-b");

const agent = clientsFor(plane.kubeconfig, await podBoundToken("netservice-agent", agentPod));
const unboundAgent = clientsFor(plane.kubeconfig, await token("netservice-agent"));
const aggregator = clientsFor(plane.kubeconfig, await podBoundToken("netservice-aggregator", aggregatorPod));
boundedTeardown(t, { name: "the identities' clients", timeoutMs: 10_000, run: async () => void (await Promise.all([agent.close(), unboundAgent.close(), aggregator.close()])) });
const asAgent = new Applier(agent.http, { fieldManager: "netservice-agent" });
const asAggregator = new Applier(aggregator.http, { fieldManager: "netservice-aggregator" });

const netService = await admin.http.request<KubeObject>({
  method: "POST",
  path: "/apis/svcctl.metaswitch.com/v1alpha1/namespaces/default/netservices",
  body: { apiVersion: "svcctl.metaswitch.com/v1alpha1", kind: "NetService", metadata: { name: "corens" }, spec: { netAttachDef: "core", selector: { app: "utils" } } },
});

t.test("the agent's pod-bound token names the agent's node", async (t) => {
  const review = await agent.http.request<{ status: { userInfo: { username: string; extra?: Record<string, string[]> } } }>({
    method: "POST",
    path: "/apis/authentication.k8s.io/v1/selfsubjectreviews",
    body: { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" },
  });
  t.equal(review.status.userInfo.username, agentUser);
  t.same(review.status.userInfo.extra?.["authentication.kubernetes.io/node-name"], ["node-a"]);
});

t.test("the agent may do what it does", async (t) => {
  await allowed(t, agent.http, "list its node's pods", { method: "GET", path: "/api/v1/pods", query: { fieldSelector: "spec.nodeName=node-a" } });
  await watchAllowed(t, agent.http, "watch its node's pods", "/api/v1/pods", { fieldSelector: "spec.nodeName=node-a" });
  await allowed(t, agent.http, "list NetServices", { method: "GET", path: "/apis/svcctl.metaswitch.com/v1alpha1/netservices" });
  await watchAllowed(t, agent.http, "watch NetServices", "/apis/svcctl.metaswitch.com/v1alpha1/netservices", {});
  await allowed(t, agent.http, "record a warning Event on a pod", { method: "POST", path: "/apis/events.k8s.io/v1/namespaces/default/events", body: event("svcctl.metaswitch.com/netservice-agent", { apiVersion: "v1", kind: "Pod", namespace: "default", name: "utils-0" }) });
  await allowed(t, agent.http, "get its report (none yet)", { method: "GET", path: `${reports}/node-a.0` }, 404);
  await allowed(t, agent.http, "list its report's parts", { method: "GET", path: reports, query: { labelSelector: "svcctl.metaswitch.com/node-name=node-a" } });
  await allowed(t, agent.http, "get its Node (the owner of its reports)", { method: "GET", path: "/api/v1/nodes/node-a" });
  const node = await admin.http.request<KubeObject>({ method: "GET", path: "/api/v1/nodes/node-a" });
  const beat = await asAgent.apply(heartbeat("node-a", node.metadata!.uid!));
  t.ok(beat.metadata?.uid, "apply its heartbeat Lease, owned by its Node");
  await asAgent.apply(heartbeat("node-a", node.metadata!.uid!));
  t.pass("renew it");
});

t.test("the agent cannot renew another node's heartbeat, nor touch other Leases", async (t) => {
  const leases = `/apis/coordination.k8s.io/v1/namespaces/${systemNamespace}/leases`;
  const nodeB = await admin.http.request<KubeObject>({ method: "GET", path: "/api/v1/nodes/node-b" });
  await denied(t, () => asAgent.apply(heartbeat("node-b", nodeB.metadata!.uid!)), "apply node-b's heartbeat", /only the heartbeat Lease named after its node/);
  const unlabelled = heartbeat("node-a", "x");
  delete unlabelled.metadata!.labels;
  await denied(t, () => asAgent.apply(unlabelled), "apply a Lease without the heartbeat label", /labelled svcctl.metaswitch.com\/agent-heartbeat=true/);
  await denied(t, () => asAgent.apply({ ...heartbeat("node-a", nodeB.metadata!.uid!), metadata: { ...heartbeat("node-a", "").metadata, ownerReferences: [{ apiVersion: "v1", kind: "Node", name: "node-b", uid: nodeB.metadata!.uid! }] } }), "make its heartbeat owned by node-b", /owned by its own Node only/);
  await denied(t, () => agent.http.request({ method: "POST", path: leases, body: lease("node-a") }), "create the Lease of its node's name without the label");
});

t.test("the agent writes its own node's report, and its parts", async (t) => {
  for (const name of ["node-a.0", "node-a.1", "node-a.64"]) {
    const stored = await asAgent.apply(report(name, "node-a"));
    t.ok(stored.metadata?.uid, `applied ${name} (created)`);
    await asAgent.apply(report(name, "node-a", { [name]: "updated" }));
    t.pass(`applied ${name} again (updated)`);
    await allowed(t, agent.http, `get ${name}`, { method: "GET", path: `${reports}/${name}` });
  }
  t.equal(await asAgent.delete(await admin.http.request<KubeObject>({ method: "GET", path: `${reports}/node-a.1` })), "deleted", "deleted node-a.1");
  // What older agents named the first part: the agent deletes it, and may do nothing else with it.
  await admin.http.request({ method: "PATCH", path: `${reports}/node-a`, query: { fieldManager: "test" }, contentType: "application/apply-patch+yaml", body: report("node-a", "node-a") });
  await denied(t, () => asAgent.apply(report("node-a", "node-a", { changed: "yes" })), "update node-a (the old name of its first part)", /may write only the reports named node-a\.<0 to 64>, not node-a/);
  t.equal(await asAgent.delete(await admin.http.request<KubeObject>({ method: "GET", path: `${reports}/node-a` })), "deleted", "deleted node-a");
});

t.test("the agent cannot write another node's report", async (t) => {
  await admin.http.request({ method: "PATCH", path: `${reports}/node-b.0`, query: { fieldManager: "test" }, contentType: "application/apply-patch+yaml", body: report("node-b.0", "node-b") });
  const other = /may write only the reports named node-a\.<0 to 64>, not /;
  await denied(t, () => asAgent.apply(report("node-b.0", "node-b")), "apply node-b's report", other);
  await denied(t, () => asAgent.apply(report("node-c", "node-a")), "apply a report named node-c about node-a", other);
  await denied(t, () => asAgent.apply(report("node-a.x", "node-a")), "apply node-a.x", other);
  await denied(t, () => asAgent.apply(report("node-a.1.2", "node-a")), "apply node-a.1.2", other);
  await denied(t, () => asAgent.apply(report("node-ab", "node-a")), "apply node-ab", other);
  await denied(t, () => asAgent.apply(report("node-a.2", "node-b")), "apply its own part with spec.nodeName node-b", /may write only reports with spec.nodeName node-a/);
  await denied(t, () => asAgent.apply(report("node-a.0", "node-a", {}, "node-b")), "label its report as node-b's", /may label reports svcctl.metaswitch.com\/node-name=node-a only/);
  const theirs = await admin.http.request<KubeObject>({ method: "GET", path: `${reports}/node-b.0` });
  await denied(t, () => asAgent.delete(theirs), "delete node-b's report", other);
  await denied(t, () => agent.http.request({ method: "DELETE", path: reports }), "delete all reports");
  await denied(t, () => agent.http.request({ method: "PUT", path: `${reports}/node-b.0`, body: theirs }), "replace node-b's report");
  await denied(t, () => asAgent.apply(report("node-a.65", "node-a")), "apply part 65", other);
  await denied(t, () => asAgent.apply(report("node-a.01", "node-a")), "apply part 01", other);
  const nodeB = await admin.http.request<KubeObject>({ method: "GET", path: "/api/v1/nodes/node-b" });
  await denied(t, () => asAgent.apply({ ...report("node-a.3", "node-a"), metadata: { ...report("node-a.3", "node-a").metadata, ownerReferences: [{ apiVersion: "v1", kind: "Node", name: "node-b", uid: nodeB.metadata!.uid! }] } }), "make its report owned by node-b", /owned by its own Node only/);
  // A node named like one of node-a's parts has reports of other names (node-a.2.0, ...): node-a cannot write those.
  await denied(t, () => asAgent.apply(report("node-a.2.0", "node-a")), "apply node-a.2.0, the report of a node named node-a.2", other);
  // A report of node-a's part name that an administrator wrote for another node: node-a cannot change or delete it.
  await admin.http.request({ method: "PATCH", path: `${reports}/node-a.2`, query: { fieldManager: "test" }, contentType: "application/apply-patch+yaml", body: report("node-a.2", "node-z") });
  const foreign = await admin.http.request<KubeObject>({ method: "GET", path: `${reports}/node-a.2` });
  await denied(t, () => asAgent.delete(foreign), "delete node-a.2 holding another node's report", /the report of another node/);
});

t.test("the agent cannot write what the aggregator writes, nor read Secrets", async (t) => {
  const service = { apiVersion: "v1", kind: "Service", metadata: { name: "corens", namespace: "default" }, spec: { clusterIP: "None" } };
  await denied(t, () => asAgent.apply(service), "apply a Service");
  await denied(t, () => agent.http.request({ method: "POST", path: "/api/v1/namespaces/default/services", body: service }), "create a Service");
  await denied(t, () => asAgent.apply({ apiVersion: "v1", kind: "Endpoints", metadata: { name: "corens", namespace: "default" } }), "apply Endpoints");
  await denied(t, () => asAgent.apply({ apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice", metadata: { name: "corens-x", namespace: "default" }, addressType: "IPv4", endpoints: [] }), "apply an EndpointSlice");
  await denied(t, () => agent.http.request({ method: "PATCH", path: "/apis/svcctl.metaswitch.com/v1alpha1/namespaces/default/netservices/corens", contentType: "application/merge-patch+json", body: { spec: { netAttachDef: "access" } } }), "edit a NetService");
  await denied(t, () => agent.http.request({ method: "PATCH", path: "/apis/svcctl.metaswitch.com/v1alpha1/namespaces/default/netservices/corens/status", contentType: "application/merge-patch+json", body: { status: { readyEndpoints: 1 } } }), "write NetService status");
  await denied(t, () => agent.http.request({ method: "PATCH", path: "/apis/svcctl.metaswitch.com/v1alpha1/namespaces/default/netservicenodereports/node-a", query: { fieldManager: "netservice-agent" }, contentType: "application/apply-patch+yaml", body: { ...report("node-a", "node-a"), metadata: { name: "node-a", namespace: "default" } } }), "write a report outside the system namespace");
  await denied(t, () => agent.http.request({ method: "GET", path: "/api/v1/namespaces/default/secrets" }), "list Secrets");
  await denied(t, () => agent.http.request({ method: "GET", path: `/api/v1/namespaces/${systemNamespace}/secrets/anything` }), "get a Secret");
  await denied(t, () => agent.http.request({ method: "GET", path: "/api/v1/nodes" }), "list Nodes");
  await denied(t, () => agent.http.request({ method: "POST", path: `/apis/coordination.k8s.io/v1/namespaces/${systemNamespace}/leases`, body: lease("netservice-aggregator") }), "take the aggregator's Lease");
});

t.test("an agent token not bound to a pod on a node cannot write reports", async (t) => {
  await denied(t, () => new Applier(unboundAgent.http, { fieldManager: "netservice-agent" }).apply(report("node-a", "node-a")), "apply node-a's report", /only with a service-account token bound to its pod on a node/);
  await allowed(t, unboundAgent.http, "still read its node's pods", { method: "GET", path: "/api/v1/pods", query: { fieldSelector: "spec.nodeName=node-a" } });
});

t.test("the aggregator may do what it does", async (t) => {
  for (const collection of ["/apis/svcctl.metaswitch.com/v1alpha1/netservices", reports, "/api/v1/nodes", "/api/v1/services", "/api/v1/endpoints", "/apis/discovery.k8s.io/v1/endpointslices", `/apis/coordination.k8s.io/v1/namespaces/${systemNamespace}/leases`]) {
    await allowed(t, aggregator.http, `list ${collection}`, { method: "GET", path: collection, query: { labelSelector: "svcctl.metaswitch.com/netservice" } });
    await watchAllowed(t, aggregator.http, `watch ${collection}`, collection, { labelSelector: "svcctl.metaswitch.com/netservice" });
  }
  await allowed(t, aggregator.http, "get a pod (where it runs)", { method: "GET", path: "/api/v1/namespaces/default/pods/utils-0" }, 404);
  const owner = { apiVersion: "svcctl.metaswitch.com/v1alpha1", kind: "NetService", name: "corens", uid: netService.metadata!.uid!, controller: true, blockOwnerDeletion: true };
  const owned: KubeObject[] = [
    { apiVersion: "v1", kind: "Service", metadata: { name: "corens", namespace: "default", ownerReferences: [owner] }, spec: { clusterIP: "None" } },
    { apiVersion: "v1", kind: "Endpoints", metadata: { name: "corens", namespace: "default", ownerReferences: [owner] } },
    { apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice", metadata: { name: "corens-ipv4", namespace: "default", ownerReferences: [owner] }, addressType: "IPv4", endpoints: [] },
  ];
  const collection = (object: KubeObject) =>
    object.kind === "EndpointSlice" ? "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices" : `/api/v1/namespaces/default/${object.kind === "Service" ? "services" : "endpoints"}`;
  // All first, the Service last to go: the endpoints controller removes Endpoints whose Service is gone.
  for (const object of owned) {
    const created = await aggregator.http.request<KubeObject>({ method: "POST", path: collection(object), query: { fieldManager: "netservice-aggregator" }, body: object });
    t.ok(created.metadata?.uid, `create ${object.kind} owned by the NetService (blockOwnerDeletion)`);
  }
  for (const object of owned) {
    await allowed(t, aggregator.http, `get ${object.kind}`, { method: "GET", path: `${collection(object)}/${object.metadata!.name}` });
    await asAggregator.apply({ ...object, metadata: { ...object.metadata, labels: { "svcctl.metaswitch.com/netservice": "corens", "endpointslice.kubernetes.io/skip-mirror": "true" } } });
    t.pass(`apply ${object.kind}`);
  }
  for (const object of owned.toReversed()) {
    const live = await aggregator.http.request<KubeObject>({ method: "GET", path: `${collection(object)}/${object.metadata!.name}` });
    t.equal(await asAggregator.deleteIfOwned(live, netService.metadata!.uid!), "deleted", `delete ${object.kind}`);
  }
  await asAggregator.applyStatus({ apiVersion: "svcctl.metaswitch.com/v1alpha1", kind: "NetService", metadata: { name: "corens", namespace: "default" }, status: { observedGeneration: 1 } });
  t.pass("apply NetService status");
  await allowed(t, aggregator.http, "record an Event on a NetService", { method: "POST", path: "/apis/events.k8s.io/v1/namespaces/default/events", body: event("svcctl.metaswitch.com/netservice-aggregator", { apiVersion: "svcctl.metaswitch.com/v1alpha1", kind: "NetService", namespace: "default", name: "corens" }) });
  const leases = `/apis/coordination.k8s.io/v1/namespaces/${systemNamespace}/leases`;
  await allowed(t, aggregator.http, "get its Lease (none yet)", { method: "GET", path: `${leases}/netservice-aggregator` }, 404);
  const created = await aggregator.http.request<KubeObject>({ method: "POST", path: leases, body: lease("netservice-aggregator") });
  t.ok(created.metadata?.resourceVersion, "create its Lease");
  await allowed(t, aggregator.http, "renew its Lease", { method: "PUT", path: `${leases}/netservice-aggregator`, body: { ...created, spec: { holderIdentity: "aggregator-1", leaseDurationSeconds: 15 } } });
});

t.test("the aggregator cannot read Secrets, write reports, edit NetServices or touch other Leases", async (t) => {
  await denied(t, () => aggregator.http.request({ method: "GET", path: "/api/v1/secrets" }), "list Secrets");
  await denied(t, () => aggregator.http.request({ method: "GET", path: `/api/v1/namespaces/${systemNamespace}/secrets/anything` }), "get a Secret");
  await denied(t, () => asAggregator.apply(report("node-a", "node-a")), "write a report");
  await denied(t, () => aggregator.http.request({ method: "DELETE", path: `${reports}/node-b.0` }), "delete a report");
  await denied(t, () => aggregator.http.request({ method: "PATCH", path: "/apis/svcctl.metaswitch.com/v1alpha1/namespaces/default/netservices/corens", contentType: "application/merge-patch+json", body: { spec: { netAttachDef: "access" } } }), "edit a NetService's spec");
  await denied(t, () => aggregator.http.request({ method: "DELETE", path: "/apis/svcctl.metaswitch.com/v1alpha1/namespaces/default/netservices/corens" }), "delete a NetService");
  await denied(t, () => aggregator.http.request({ method: "GET", path: "/api/v1/pods" }), "list pods");
  await denied(t, () => aggregator.http.request({ method: "PATCH", path: "/api/v1/nodes/node-a", contentType: "application/merge-patch+json", body: { metadata: { labels: { x: "y" } } } }), "label a Node");
  await admin.http.request({ method: "POST", path: "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases", body: lease("kube-controller-manager-test") });
  await denied(t, () => aggregator.http.request({ method: "GET", path: "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-controller-manager-test" }), "read another namespace's Lease");
  await admin.http.request({ method: "POST", path: `/apis/coordination.k8s.io/v1/namespaces/${systemNamespace}/leases`, body: lease("other") });
  await denied(t, () => aggregator.http.request({ method: "GET", path: `/apis/coordination.k8s.io/v1/namespaces/${systemNamespace}/leases/other` }), "read another Lease in its namespace");
  await denied(t, () => aggregator.http.request({ method: "PUT", path: `/apis/coordination.k8s.io/v1/namespaces/${systemNamespace}/leases/other`, body: lease("other") }), "write another Lease in its namespace");
});

t.test("the admission policy leaves everyone but the agent alone", async (t) => {
  const stored = await new Applier(admin.http, { fieldManager: "test" }).apply(report("anything", "node-z"));
  t.ok(stored.metadata?.uid, "an administrator writes any report");
});

function heartbeat(node: string, nodeUid: string): KubeObject {
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: {
      name: node,
      namespace: systemNamespace,
      labels: { "svcctl.metaswitch.com/agent-heartbeat": "true" },
      ownerReferences: [{ apiVersion: "v1", kind: "Node", name: node, uid: nodeUid }],
    },
    spec: { holderIdentity: `netservice-agent-${node}`, leaseDurationSeconds: 40, renewTime: new Date().toISOString().replace(/Z$/, "000Z") },
  } as KubeObject;
}

async function allowed(t: Test, http: KubeHttp, what: string, req: KubeRequest, acceptedError?: number): Promise<void> {
  try {
    await http.request(req);
    t.pass(what);
  } catch (err) {
    if (err instanceof KubeApiError && err.code === acceptedError) t.pass(`${what} (${err.code})`);
    else t.fail(`${what}: ${(err as Error).message}`);
  }
}

/** A watch the server accepts, ended by the server after a second. */
async function watchAllowed(t: Test, http: KubeHttp, what: string, path: string, query: Record<string, string>): Promise<void> {
  try {
    for await (const _ of http.watch(path, { ...query, timeoutSeconds: 1 }, AbortSignal.timeout(30_000)));
    t.pass(what);
  } catch (err) {
    t.fail(`${what}: ${(err as Error).message}`);
  }
}

async function denied(t: Test, action: () => Promise<unknown>, what: string, message?: RegExp): Promise<void> {
  try {
    await action();
    t.fail(`${what}: allowed`);
  } catch (err) {
    if (!(err instanceof KubeApiError) || err.code !== 403) {
      t.fail(`${what}: ${(err as Error).message}`);
      return;
    }
    if (message) t.match(err.message, message, `${what}: denied with a reason`);
    else t.pass(`${what}: denied`);
  }
}

async function createNode(name: string): Promise<void> {
  await admin.http.request({ method: "POST", path: "/api/v1/nodes", body: { apiVersion: "v1", kind: "Node", metadata: { name, labels: { "kubernetes.io/hostname": name } } } });
}

/** A pod of the workload's template, placed on a node (nothing runs it; tokens only need it to exist). */
async function createPodFrom(kind: string, name: string, node: string): Promise<KubeObject> {
  const workload = manifests.find((o) => o.kind === kind && o.metadata?.name === name) as KubeObject & { spec: { template: { metadata: KubeObject["metadata"]; spec: Record<string, unknown> } } };
  return admin.http.request<KubeObject>({
    method: "POST",
    path: `/api/v1/namespaces/${systemNamespace}/pods`,
    body: { apiVersion: "v1", kind: "Pod", metadata: { name: `${name}-${node}`, labels: workload.spec.template.metadata?.labels }, spec: { ...workload.spec.template.spec, nodeName: node } },
  });
}

async function podBoundToken(serviceAccount: string, pod: KubeObject): Promise<string> {
  return serviceAccountToken(admin, systemNamespace, serviceAccount, podRef(pod));
}

async function token(serviceAccount: string): Promise<string> {
  return serviceAccountToken(admin, systemNamespace, serviceAccount);
}

function report(name: string, nodeName: string, annotations: Record<string, string> = {}, nodeLabel = nodeName): KubeObject {
  return {
    apiVersion: "svcctl.metaswitch.com/v1alpha1",
    kind: "NetServiceNodeReport",
    metadata: { name, namespace: systemNamespace, annotations, labels: { "svcctl.metaswitch.com/node-name": nodeLabel } },
    spec: { nodeName, netServices: [], pods: [] },
  };
}

function event(controller: string, regarding: Record<string, string>): KubeObject & Record<string, unknown> {
  return {
    apiVersion: "events.k8s.io/v1",
    kind: "Event",
    metadata: { generateName: "test-", namespace: "default" },
    eventTime: new Date().toISOString().replace(/Z$/, "000Z"),
    reportingController: controller,
    reportingInstance: "test",
    action: "Test",
    reason: "Test",
    type: "Warning",
    note: "permission test",
    regarding,
  };
}

function lease(name: string): KubeObject {
  return { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name }, spec: { holderIdentity: "aggregator-1", leaseDurationSeconds: 15 } };
}
