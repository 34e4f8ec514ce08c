// The foundation every other test stands on: a real control plane with
// simulated nodes and the fake Multus runs the original sample Deployment the
// way a kind cluster with Multus would.
import path from "node:path";
import t from "tap";
import { Applier } from "../../common/kube/apply.ts";
import { makeClients } from "../../common/kube/client.ts";
import type { KubeObject } from "../../common/kube/object.ts";
import { kubernetesVersion } from "../../hack/cluster/binaries.ts";
import { applyManifests, loadManifests } from "../../hack/manifests.ts";
import { SimulatedCluster } from "../../hack/sim/cluster.ts";
import { startControlPlane } from "../helpers/control-plane.ts";
import { eventually, expect } from "../helpers/eventually.ts";
import { KubeConfig } from "@kubernetes/client-node";
import { boundedTeardown } from "../helpers/teardown.ts";

const demo = path.resolve(import.meta.dirname, "..", "..", "hack", "demo");

type Pod = KubeObject & {
  spec: { nodeName?: string };
  status?: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[] };
};

const plane = await startControlPlane(t);
const kubeConfig = new KubeConfig();
kubeConfig.loadFromFile(plane.kubeconfig);
const clients = makeClients(kubeConfig, { userAgent: "netservice-test/0.1.0" });
boundedTeardown(t, { name: "clients", timeoutMs: 10_000, run: () => clients.close() });
const applier = new Applier(clients.http, { fieldManager: "netservice-test" });
// Pods stop within 2 s of their deletion: the tests here are about the
// controllers, and a 30 s grace period on top of the garbage collector's own
// backoff (it retries a dependent whose owner is still in its graph with
// exponential backoff) once left a pod behind the 60 s limit on a fresh machine.
const sim = new SimulatedCluster({ kubeConfig, clients, maxGracePeriodMs: 2000 });
t.teardown(() => sim.stop((line) => t.comment(line)));
await sim.start();
await sim.addNodes(3);

t.test("the API server reports the Kubernetes version it was built from", async (t) => {
  const version = JSON.parse((await plane.get("/version")).body) as { gitVersion: string };
  t.equal(version.gitVersion, kubernetesVersion());
});

t.test("the sample Deployment runs 3 pods on simulated nodes with core and access addresses", async (t) => {
  await applyManifests(applier, clients.http, await loadManifests(path.join(demo, "networks.yaml"), path.join(demo, "samples", "multi.yaml")));
  const pods = await eventually(async () => {
    const list = await clients.http.request<{ items: Pod[] }>({ method: "GET", path: "/api/v1/namespaces/default/pods", query: { labelSelector: "app=utils" } });
    expect(list.items.length === 3, `${list.items.length} pods`);
    for (const pod of list.items) {
      expect(pod.status?.phase === "Running", `${pod.metadata?.name} is ${pod.status?.phase}`);
      expect(pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true, `${pod.metadata?.name} not ready`);
      expect(pod.metadata?.annotations?.["k8s.v1.cni.cncf.io/network-status"] !== undefined, `${pod.metadata?.name} has no network-status`);
    }
    return list.items;
  }, { timeoutMs: 60_000 });
  const nodes = new Set(pods.map((pod) => pod.spec.nodeName));
  t.ok([...nodes].every((node) => node?.startsWith("sim-node-")), `scheduled onto simulated nodes: ${[...nodes].join(", ")}`);
  const seen = new Set<string>();
  for (const pod of pods) {
    const status = JSON.parse(pod.metadata!.annotations!["k8s.v1.cni.cncf.io/network-status"]!) as { name: string; interface?: string; ips?: string[]; default?: boolean }[];
    t.equal(status[0]?.default, true, "the cluster network comes first");
    t.ok(status[0]?.ips?.includes(pod.status!.podIP!), "with the pod IP");
    const core = status.find((entry) => entry.name === "networks/core");
    const access = status.find((entry) => entry.name === "networks/access");
    t.equal(core?.interface, "core", "interface named as requested");
    t.equal(access?.interface, "access");
    t.equal(core?.ips?.length, 2, "core is dual-stack");
    t.equal(access?.ips?.length, 1);
    for (const ip of [...(core?.ips ?? []), ...(access?.ips ?? [])]) {
      t.notOk(seen.has(ip), `${ip} is given to one pod only`);
      seen.add(ip);
    }
  }
});

t.test("kube-controller-manager publishes a selector Service's endpoints", async (t) => {
  await applier.apply({
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: "utils-primary", namespace: "default" },
    spec: { selector: { app: "utils" }, ports: [{ name: "http", port: 80 }] },
  });
  const slice = await eventually(async () => {
    const slices = await clients.http.request<{ items: { endpoints?: { addresses: string[]; conditions?: { ready?: boolean } }[] }[] }>({
      method: "GET",
      path: "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
      query: { labelSelector: "kubernetes.io/service-name=utils-primary" },
    });
    const endpoints = slices.items.flatMap((s) => s.endpoints ?? []);
    expect(endpoints.length === 3 && endpoints.every((e) => e.conditions?.ready === true), `${endpoints.length} ready endpoints`);
    return endpoints;
  }, { timeoutMs: 60_000 });
  t.equal(slice.length, 3);
});

t.test("deleting an owner garbage-collects its dependents", async (t) => {
  await clients.http.request({ method: "DELETE", path: "/apis/apps/v1/namespaces/default/deployments/utils", body: { propagationPolicy: "Background" } });
  await eventually(async () => {
    const sets = await clients.http.request<{ items: KubeObject[] }>({ method: "GET", path: "/apis/apps/v1/namespaces/default/replicasets" });
    const pods = await clients.http.request<{ items: Pod[] }>({ method: "GET", path: "/api/v1/namespaces/default/pods" });
    // What is left, as a reader of a failure needs it: who owns it, whether its deletion has started, where it runs.
    const left = pods.items.map((pod) => `${pod.metadata?.name} (${pod.status?.phase} on ${pod.spec.nodeName ?? "no node"}, ` +
      `owner ${pod.metadata?.ownerReferences?.map((o) => `${o.kind}/${o.name}`).join(",") || "none"}, ` +
      `${pod.metadata?.deletionTimestamp ? `deleted at ${pod.metadata.deletionTimestamp}` : "not deleted"})`);
    expect(sets.items.length === 0 && pods.items.length === 0, `${sets.items.length} replicasets, ${pods.items.length} pods left: ${left.join("; ")}`);
  }, { timeoutMs: 120_000 });
  t.pass("replica set and pods are gone");
});

t.test("deleting a namespace completes", async (t) => {
  await applier.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: "doomed" } });
  await applier.apply({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x", namespace: "doomed" }, data: { a: "b" } });
  await clients.http.request({ method: "DELETE", path: "/api/v1/namespaces/doomed" });
  await eventually(async () => {
    try {
      await clients.http.request({ method: "GET", path: "/api/v1/namespaces/doomed" });
    } catch (error) {
      if ((error as { code?: number }).code === 404) return;
      throw error;
    }
    throw new Error("namespace doomed still exists");
  }, { timeoutMs: 60_000 });
  t.pass("namespace gone");
});
