// The whole system end to end, as a user sees it: the original samples go in,
// Services, Endpoints and EndpointSlices with the pods' secondary addresses
// come out, and they follow every change. Runs on the local simulated
// cluster (npm test), on the local cluster with real networking
// (NETSERVICE_E2E_NETWORK=real, part of npm run test:real: real Multus, CNI
// plugins and CoreDNS) and, unchanged, on a kind cluster with real Multus
// (hack/kind/e2e.sh sets NETSERVICE_E2E_KUBECONFIG).
import path from "node:path";
import t from "tap";
import { loadManifests, applyManifests, withLocalImages } from "../../hack/manifests.ts";
import { eventually, expect } from "../helpers/eventually.ts";
import { dnsAt } from "../helpers/real-network.ts";
import {
  attachmentAddresses, endpointsByIp, endpointsOf, getOrUndefined, listPods, serviceOf, slicesByIp, slicesOf, sorted, statusOf,
  type Pod,
} from "./cluster-state.ts";
import { openEnvironment, type E2eEnvironment } from "./environment.ts";

const demo = path.resolve(import.meta.dirname, "..", "..", "hack", "demo");
const timeout = { timeoutMs: 90_000 };

const env = await openEnvironment(t);
if (env) await endToEnd(env);

async function endToEnd({ clients, applier, local, images }: E2eEnvironment) {
  const localOnly = local ? {} : { skip: "needs the local simulated cluster" };
  // Real Multus attaches a pod once, in its sandbox's CNI ADD: nothing gives a running pod a new address.
  const fakeMultusOnly = local?.network ? { skip: "needs the fake Multus: real Multus (CNI) has no way to change a running pod's address" } : localOnly;

  // On a real cluster the networks are the cluster's own (hack/kind/networks.yaml); the simulation gets the demo's.
  await applyManifests(applier, clients.http, withLocalImages(await loadManifests(
    ...(local ? [path.join(demo, "networks.yaml")] : []),
    ...["multi.yaml", "core.yaml", "access.yaml"].map((file) => path.join(demo, "samples", file)),
  ), images));

  const netServicePath = (name: string, namespace = "default") => `/apis/svcctl.metaswitch.com/v1alpha1/namespaces/${namespace}/netservices/${name}`;
  const patchNetService = (name: string, patch: unknown) =>
    clients.http.request({ method: "PATCH", path: netServicePath(name), body: patch, contentType: "application/merge-patch+json" });

  function runningPods(pods: Pod[]): Pod[] {
    return pods.filter((pod) => pod.status?.phase === "Running" && !pod.metadata.deletionTimestamp);
  }

  /** Waits until the NetService's Endpoints hold exactly the given pods' addresses on the network, with the given readiness. */
  async function expectEndpoints(name: string, network: string, expectReady: (pod: Pod) => boolean = () => true, selector = "app=utils") {
    return eventually(async () => {
      const pods = runningPods(await listPods(clients, "default", selector));
      const endpoints = endpointsByIp(await endpointsOf(clients, "default", name));
      const want = new Map(pods.flatMap((pod) => attachmentAddresses(pod, network).map((ip) => [ip, { pod: pod.metadata.name, ready: expectReady(pod) }] as const)));
      expect(want.size > 0, `no pod has an address on ${network} yet`);
      const got = new Map([...endpoints].map(([ip, e]) => [ip, { pod: e.pod, ready: e.ready }]));
      expect(JSON.stringify(sorted([...got].map((e) => JSON.stringify(e)))) === JSON.stringify(sorted([...want].map((e) => JSON.stringify(e)))),
        `${name}: want ${JSON.stringify([...want])}, got ${JSON.stringify([...got])}`);
      return { pods, endpoints };
    }, timeout);
  }

  t.test("the seed samples give corens and accessns the pods' core and access addresses", async (t) => {
    const core = await expectEndpoints("corens", "networks/core");
    t.equal(core.pods.length, 3, "three pods");
    t.equal(new Set([...core.endpoints.values()].map((e) => e.pod)).size, 3, "corens has 3 pods");
    const primary = new Set(core.pods.flatMap((pod) => (pod.status?.podIPs ?? []).map((p) => p.ip)));
    t.notOk([...core.endpoints.keys()].some((ip) => primary.has(ip)), "never a primary address");
    t.ok([...core.endpoints.keys()].some((ip) => ip.includes(":")) && [...core.endpoints.keys()].some((ip) => !ip.includes(":")), "dual stack: IPv4 and IPv6");
    for (const [, e] of core.endpoints) t.ok(e.node, "each address names its node");
    const access = await expectEndpoints("accessns", "networks/access");
    t.equal(access.endpoints.size, 3, "accessns has 3 addresses");
    if (local?.dns) {
      // On real networking CoreDNS reads the same EndpointSlices as in any cluster.
      const fqdn = "corens.default.svc.cluster.local";
      const resolve = dnsAt(local.dns.address);
      const answer = await eventually(async () => {
        const answer = [...(await resolve.a(fqdn)), ...(await resolve.aaaa(fqdn))];
        expect(JSON.stringify(sorted(answer)) === JSON.stringify(sorted(core.endpoints.keys())), `${fqdn} answers ${answer.join(" ")}`);
        return answer;
      }, timeout);
      t.pass(`${fqdn} resolves at CoreDNS to exactly corens' addresses`);
      t.comment(`${fqdn}: ${answer.join(" ")}`);
    }
  });

  t.test("the Services: a template with the selector, a headless one without", async (t) => {
    const template = await serviceOf(clients, "default", "corens-template");
    const named = await serviceOf(clients, "default", "corens");
    t.same(template?.spec.selector, { app: "utils" });
    t.equal(template?.spec.clusterIP, "None");
    t.equal(named?.spec.clusterIP, "None");
    t.notOk(named?.spec.selector, "the named Service has no selector");
    const endpoints = await endpointsOf(clients, "default", "corens");
    t.equal(endpoints?.metadata.labels?.["endpointslice.kubernetes.io/skip-mirror"], "true");
    t.ok(endpoints?.metadata.annotations?.["endpoints.kubernetes.io/last-change-trigger-time"], "trigger time stamped");
  });

  t.test("EndpointSlices hold the same endpoints, one address family per slice", async (t) => {
    await eventually(async () => {
      const endpoints = endpointsByIp(await endpointsOf(clients, "default", "corens"));
      const slices = await slicesOf(clients, "default", "corens");
      const bySlice = slicesByIp(slices);
      expect(JSON.stringify(sorted(bySlice.keys())) === JSON.stringify(sorted(endpoints.keys())), "slices and Endpoints differ");
      for (const slice of slices) {
        const families = new Set(slice.endpoints?.flatMap((e) => e.addresses.map((ip) => (ip.includes(":") ? "IPv6" : "IPv4"))));
        expect(families.size <= 1 && (families.size === 0 || families.has(slice.addressType as "IPv4" | "IPv6")), `${slice.metadata.name} mixes families`);
        expect(slice.metadata.labels?.["endpointslice.kubernetes.io/managed-by"] !== "endpointslice-controller.k8s.io", "not kube's own");
      }
    }, timeout);
    t.pass("slices match Endpoints");
  });

  t.test("status counts ready endpoints and reporting nodes", async (t) => {
    const status = await eventually(async () => {
      const status = await statusOf(clients, "default", "corens");
      expect(status?.readyEndpoints === 3 && status.notReadyEndpoints === 0, `status ${JSON.stringify(status)}`);
      return status;
    }, timeout);
    t.equal(status.conditions?.find((c) => c.type === "Ready")?.status, "True");
    t.ok((status.nodesReporting ?? 0) >= 1);
  });

  t.test("a readiness flip moves the address to notReadyAddresses and clears slice conditions", localOnly, async (t) => {
    const [pod] = runningPods(await listPods(clients, "default", "app=utils"));
    const name = pod!.metadata.name;
    await local!.sim.setReady("default", name, false);
    await expectEndpoints("corens", "networks/core", (p) => p.metadata.name !== name);
    await eventually(async () => {
      const slices = slicesByIp(await slicesOf(clients, "default", "corens"));
      for (const ip of attachmentAddresses(pod!, "networks/core")) {
        const e = slices.get(ip);
        expect(e?.ready === false && e.serving === false && e.terminating === false, `${ip}: ${JSON.stringify(e)}`);
      }
    }, timeout);
    await local!.sim.setReady("default", name, true);
    await expectEndpoints("corens", "networks/core");
    t.pass("readiness followed both ways");
  });

  t.test("a changed secondary address is followed", fakeMultusOnly, async (t) => {
    const [pod] = runningPods(await listPods(clients, "default", "app=utils"));
    const before = attachmentAddresses(pod!, "networks/core");
    const after = await local!.sim.multus.changeAddress("default", pod!.metadata.name, "networks/core");
    t.notSame(sorted(after), sorted(before), "Multus gave new addresses");
    await eventually(async () => {
      const endpoints = endpointsByIp(await endpointsOf(clients, "default", "corens"));
      expect(after.every((ip) => endpoints.has(ip)) && before.every((ip) => !endpoints.has(ip)), `endpoints ${JSON.stringify([...endpoints.keys()])}`);
    }, timeout);
  });

  /** For a failure message: the pod as the API server has it, and what the local kubelet and sandboxes still work on. */
  const whereIs = async (name: string): Promise<string> => {
    const current = await getOrUndefined<Pod>(clients, `/api/v1/namespaces/default/pods/${name}`);
    const api = current
      ? `the pod is still in the API (phase ${current.status?.phase}, deletionTimestamp ${current.metadata.deletionTimestamp ?? "none"}, node ${current.spec?.nodeName})`
      : "the pod has left the API";
    const kubelet = local ? `; kubelet in flight: [${local.sim.kubelet.inFlight().join(", ")}]` : "";
    const sandboxes = local?.network ? `; CNI calls in flight: [${local.network.sandboxes.inFlight().join(", ")}]` : "";
    return `${api}${kubelet}${sandboxes}`;
  };

  t.test("a deleted pod is terminating, then gone; its replacement appears", async (t) => {
    const [pod] = runningPods(await listPods(clients, "default", "app=utils"));
    const addresses = attachmentAddresses(pod!, "networks/core");
    await clients.http.request({ method: "DELETE", path: `/api/v1/namespaces/default/pods/${pod!.metadata.name}`, body: { gracePeriodSeconds: 5 } });
    if (local) {
      await eventually(async () => {
        const slices = slicesByIp(await slicesOf(clients, "default", "corens"));
        const e = slices.get(addresses[0]!);
        expect(e?.terminating === true && e.ready === false, `${addresses[0]} while terminating: ${JSON.stringify(e)}`);
      }, timeout);
    }
    // Gone from the slices too, where a terminating pod stays until it has left the API server.
    await eventually(async () => {
      const endpoints = endpointsByIp(await endpointsOf(clients, "default", "corens"));
      const slices = slicesByIp(await slicesOf(clients, "default", "corens"));
      if (addresses.some((ip) => endpoints.has(ip) || slices.has(ip))) {
        throw new Error(`${addresses.join(",")} still published; ${await whereIs(pod!.metadata.name)}`);
      }
    }, timeout);
    const { pods } = await expectEndpoints("corens", "networks/core");
    t.equal(pods.length, 3, "the replacement pod is published");
  });

  t.test("an attachment without ips contributes nothing and breaks nothing", async (t) => {
    await applier.apply({
      apiVersion: "k8s.cni.cncf.io/v1", kind: "NetworkAttachmentDefinition", metadata: { name: "noipam", namespace: "networks" },
      spec: { config: JSON.stringify({ cniVersion: "1.0.0", name: "noipam", type: "bridge", bridge: "br-noipam" }) },
    });
    await applier.apply({
      apiVersion: "v1", kind: "Pod",
      metadata: { name: "solo", namespace: "default", labels: { app: "solo" }, annotations: { "k8s.v1.cni.cncf.io/networks": "networks/noipam,networks/core" } },
      spec: { containers: [{ name: "solo", image: images.get("ubuntu:latest") ?? "ubuntu:latest", command: ["tail", "-f", "/dev/null"] }], terminationGracePeriodSeconds: 0 },
    });
    for (const [name, netAttachDef] of [["solo-noipam", "networks/noipam"], ["solo-core", "networks/core"]]) {
      await applier.apply({ apiVersion: "svcctl.metaswitch.com/v1alpha1", kind: "NetService", metadata: { name, namespace: "default" }, spec: { netAttachDef, selector: { app: "solo" } } });
    }
    await expectEndpoints("solo-core", "networks/core", () => true, "app=solo");
    const status = await eventually(async () => {
      const status = await statusOf(clients, "default", "solo-noipam");
      expect(status?.observedGeneration === 1, "not reconciled yet");
      return status;
    }, timeout);
    t.equal(status.readyEndpoints ?? 0, 0, "no endpoint from an attachment without addresses");
    t.equal(endpointsByIp(await endpointsOf(clients, "default", "solo-noipam")).size, 0);
    await expectEndpoints("corens", "networks/core");
  });

  t.test("selector and netAttachDef edits are followed", async (t) => {
    await patchNetService("corens", { spec: { selector: { app: "nothing-selects-this" } } });
    await eventually(async () => {
      const template = await serviceOf(clients, "default", "corens-template");
      expect(template?.spec.selector?.app === "nothing-selects-this", "template selector not updated");
      expect(endpointsByIp(await endpointsOf(clients, "default", "corens")).size === 0, "endpoints not emptied");
    }, timeout);
    await patchNetService("corens", { spec: { selector: { app: "utils" }, netAttachDef: "access" } });
    await expectEndpoints("corens", "networks/access");
    await patchNetService("corens", { spec: { netAttachDef: "core" } });
    await expectEndpoints("corens", "networks/core");
    t.pass("selector and network edits followed");
  });

  t.test("ports and templateServiceName edits are followed; the obsolete template goes", async (t) => {
    await patchNetService("corens", { spec: { ports: [{ name: "sip", port: 5060, protocol: "UDP" }], templateServiceName: "corens-pods" } });
    await eventually(async () => {
      const endpoints = await endpointsOf(clients, "default", "corens");
      expect(endpoints?.subsets?.[0]?.ports?.[0]?.port === 5060, "Endpoints ports");
      expect((await slicesOf(clients, "default", "corens")).every((s) => s.ports?.[0]?.port === 5060), "slice ports");
      expect((await serviceOf(clients, "default", "corens"))?.spec.ports?.[0]?.port === 5060, "Service ports");
      expect((await serviceOf(clients, "default", "corens-pods"))?.spec.selector?.app === "utils", "new template");
      expect((await serviceOf(clients, "default", "corens-template")) === undefined, "old template still there");
    }, timeout);
    t.pass("edits followed");
    // Back to the sample's spec, so the file can run again on the same cluster (hack/kind/e2e.sh runs it three times).
    await patchNetService("corens", { spec: { ports: null, templateServiceName: null } });
    await eventually(async () => {
      expect((await serviceOf(clients, "default", "corens-template"))?.spec.selector?.app === "utils", "the default template is back");
      expect((await serviceOf(clients, "default", "corens-pods")) === undefined, "the custom template is gone");
    }, timeout);
  });

  t.test("a user's own Service named like a NetService is left alone and reported", async (t) => {
    const user = await applier.apply({
      apiVersion: "v1", kind: "Service", metadata: { name: "taken", namespace: "default" },
      spec: { selector: { app: "user" }, ports: [{ port: 80 }] },
    }, { fieldManager: "a-user" });
    await applier.apply({ apiVersion: "svcctl.metaswitch.com/v1alpha1", kind: "NetService", metadata: { name: "taken", namespace: "default" }, spec: { netAttachDef: "core", selector: { app: "utils" } } });
    const condition = await eventually(async () => {
      const ready = (await statusOf(clients, "default", "taken"))?.conditions?.find((c) => c.type === "Ready");
      expect(ready?.status === "False" && ready.reason === "ServiceNameTaken", `condition ${JSON.stringify(ready)}`);
      return ready;
    }, timeout);
    t.match(condition.message, /taken/);
    const after = await serviceOf(clients, "default", "taken");
    t.equal(after?.metadata.resourceVersion, user.metadata?.resourceVersion, "the user's Service was not modified");
    t.notOk(after?.metadata.ownerReferences, "and not adopted");
    await clients.http.request({ method: "DELETE", path: netServicePath("taken") });
  });

  t.test("restarting an agent and the aggregator converges to the same objects", localOnly, async (t) => {
    const before = await endpointsOf(clients, "default", "corens");
    const [node] = local!.agents.keys();
    await local!.stopAgent(node!);
    await local!.startAgent(node!);
    await local!.stopAggregator();
    await local!.startAggregator();
    await expectEndpoints("corens", "networks/core");
    const after = await endpointsOf(clients, "default", "corens");
    t.equal(after?.metadata.resourceVersion, before?.metadata.resourceVersion, "nothing was rewritten");
  });

  t.test("an agent that was down while a pod changed catches up when it returns", localOnly, async (t) => {
    const pods = runningPods(await listPods(clients, "default", "app=utils"));
    const pod = pods[0]!;
    const node = pod.spec.nodeName!;
    await local!.stopAgent(node);
    await local!.sim.setReady("default", pod.metadata.name, false);
    await local!.startAgent(node);
    await expectEndpoints("corens", "networks/core", (p) => p.metadata.name !== pod.metadata.name);
    await local!.sim.setReady("default", pod.metadata.name, true);
    await expectEndpoints("corens", "networks/core");
    t.pass("converged");
  });

  t.test("deleting a Node removes its pods' endpoints", localOnly, async (t) => {
    const pods = runningPods(await listPods(clients, "default", "app=utils"));
    const node = pods[0]!.spec.nodeName!;
    const gone = pods.filter((p) => p.spec.nodeName === node).flatMap((p) => attachmentAddresses(p, "networks/core"));
    await local!.stopAgent(node);
    await clients.http.request({ method: "DELETE", path: `/api/v1/nodes/${node}` });
    await eventually(async () => {
      const endpoints = endpointsByIp(await endpointsOf(clients, "default", "corens"));
      expect(gone.every((ip) => !endpoints.has(ip)), `${gone.join(",")} still published`);
      expect(endpoints.size > 0, "other nodes' endpoints stay");
    }, timeout);
    t.pass("node's endpoints removed");
  });

  t.test("deleting the NetService removes every object it owns", async (t) => {
    await clients.http.request({ method: "DELETE", path: netServicePath("accessns") });
    await eventually(async () => {
      expect((await serviceOf(clients, "default", "accessns")) === undefined, "Service accessns");
      expect((await serviceOf(clients, "default", "accessns-template")) === undefined, "Service accessns-template");
      expect((await endpointsOf(clients, "default", "accessns")) === undefined, "Endpoints accessns");
      expect((await slicesOf(clients, "default", "accessns")).length === 0, "EndpointSlices accessns");
    }, timeout);
    t.ok(await getOrUndefined(clients, "/api/v1/namespaces/default/services/corens"), "other NetServices keep theirs");
  });
}
