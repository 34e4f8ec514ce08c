// Real Multus, real CNI plugins and real CoreDNS on the local control plane.
// The seed samples' pods get network namespaces on simulated nodes; the
// Multus thin plugin, called as a runtime calls it, attaches them to the
// default network and to networks/core (bridge) and networks/access
// (macvlan) and writes their network-status. These tests check what only
// real networking can show: the annotation matches the interfaces in the
// namespaces, the addresses answer across nodes, CoreDNS serves the API's
// records, and deleting a pod runs CNI DEL and frees its addresses.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import t from "tap";
import { KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { Applier } from "../../common/kube/apply.ts";
import { createRootLogger } from "../../common/log.ts";
import { ControlPlane } from "../../hack/cluster/control-plane.ts";
import { applyManifests, loadManifests } from "../../hack/manifests.ts";
import { CoreDns } from "../../hack/realnet/coredns.ts";
import { RealNetwork } from "../../hack/realnet/network.ts";
import { SimulatedCluster } from "../../hack/sim/cluster.ts";
import { eventually, expect } from "../helpers/eventually.ts";
import { runTeardown } from "../../hack/teardown.ts";
import {
  addressesOn, dnsAt, ipamAllocations, networkStatus, ping, realNetworkingAvailable, routeDevice, runningPods, sorted, tcpConnect,
} from "../helpers/real-network.ts";

const demo = path.resolve(import.meta.dirname, "..", "..", "hack", "demo");
const slow = { timeoutMs: 120_000 };

if (await realNetworkingAvailable(t)) await main();

async function main() {
  const plane = await ControlPlane.start({ report: (line) => t.comment(line) });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(plane.kubeconfig);
  // Warnings and errors of the fake kubelet and the real network (a failed CNI DEL, say) reach the test's output.
  const logger = createRootLogger({ env: { LOG_LEVEL: "warn", LOG_FORMAT: "text" }, destination: process.stderr });
  const network = new RealNetwork({ kubeconfig: plane.kubeconfig, report: (line) => t.comment(line), logger });
  /** Whether the pod's sandbox still existed when the kubelet deleted the pod object for good, by pod name. */
  const sandboxAtRemoval = new Map<string, boolean>();
  const cluster = new SimulatedCluster({
    kubeConfig,
    sandbox: network,
    maxGracePeriodMs: 1000,
    logger,
    onPodRemoved: (event) => sandboxAtRemoval.set(event.name, network.sandbox(event.namespace, event.name) !== undefined),
  });
  let dns: CoreDns | undefined;
  // In this order: CNI DEL needs Multus' API server until the last sandbox is gone.
  t.teardown(() => runTeardown([
    { name: "DNS (CoreDNS)", timeoutMs: 10_000, run: async () => await dns?.stop() },
    ...cluster.teardownSteps(),
    { name: "control plane", timeoutMs: 60_000, run: () => plane.stop() },
  ], { report: (line) => t.comment(line) }));
  await cluster.start();
  await cluster.addNodes(3);
  dns = await CoreDns.start({ binary: network.binaries.coredns, kubeconfig: plane.kubeconfig, dir: network.scope.dir });
  const resolve = dnsAt(dns.address);
  const applier = new Applier(cluster.clients.http, { fieldManager: "realnet-test" });
  await applyManifests(applier, cluster.clients.http, await loadManifests(path.join(demo, "networks.yaml"), path.join(demo, "samples", "multi.yaml")));

  const attachedPods = () => eventually(async () => {
    const pods = await runningPods(cluster.clients, "default", "app=utils");
    expect(pods.length === 3, `${pods.length} of 3 pods running`);
    expect(pods.every((pod) => networkStatus(pod).length === 3), "network-status incomplete");
    return pods;
  }, slow);
  const pods = await attachedPods();
  const name = (pod: V1Pod) => pod.metadata?.name ?? "";
  /**
   * Waits until the pod's sandbox is gone (CNI DEL done); if it never goes,
   * the failure names the kubelet's work and the CNI calls in flight and shows
   * the end of the pod's node's Multus log.
   */
  const sandboxGone = (pod: V1Pod) =>
    eventually(() => {
      const running = [...cluster.kubelet.inFlight(), ...network.sandboxes.inFlight()];
      expect(!network.sandbox("default", name(pod)), `sandbox still there; the kubelet's work and CNI calls in flight: ${running.length > 0 ? running.join("; ") : "none"}`);
    }, slow).catch(async (error: unknown) => {
      const log = path.join(network.scope.dir, "nodes", pod.spec?.nodeName ?? "", "multus.log");
      const tail = await readFile(log, "utf8").then((text) => text.split("\n").slice(-40).join("\n"), (readError: Error) => readError.message);
      t.comment(`the end of ${log}:\n${tail}`);
      throw error;
    });

  t.test("Multus writes each pod's network-status: the default network on eth0, networks/core on core, networks/access on access", async (t) => {
    for (const pod of pods) {
      const status = networkStatus(pod);
      t.same(status.map((e) => [e.name, e.interface, e.default === true]), [["podnet", "eth0", true], ["networks/core", "core", false], ["networks/access", "access", false]], `${name(pod)}: entries`);
      t.same(pod.status?.podIPs?.map((p) => p.ip), status[0]?.ips, `${name(pod)}: podIPs are the default network's real addresses`);
      const core = addressesOn(pod, "networks/core");
      t.ok(core.length === 2 && /^10\.10\.\d+\.\d+$/.test(core[0] ?? "") && /^fd00:10:10::/.test(core[1] ?? ""), `${name(pod)}: core is dual-stack from the NAD's ranges: ${core}`);
      const access = addressesOn(pod, "networks/access");
      t.ok(access.length === 1 && /^10\.20\.\d+\.\d+$/.test(access[0] ?? ""), `${name(pod)}: access from its range: ${access}`);
      // What the kernel says is in the pod's namespace, interface by interface.
      const links = JSON.parse((await network.exec("default", name(pod), ["ip", "-j", "address", "show"])).stdout) as IpAddressLink[];
      for (const entry of status) {
        const link = links.find((l) => l.ifname === entry.interface);
        t.ok(link, `${name(pod)}: interface ${entry.interface} exists`);
        t.same(sorted(globalAddresses(link)), sorted(entry.ips ?? []), `${name(pod)}: ${entry.interface} holds exactly the annotated addresses`);
        t.equal(link?.address, entry.mac, `${name(pod)}: ${entry.interface} has the annotated MAC`);
      }
    }
    const secondary = pods.flatMap((pod) => [...addressesOn(pod, "networks/core"), ...addressesOn(pod, "networks/access")]);
    t.equal(new Set(secondary).size, 9, "nine distinct secondary addresses");
    t.ok(new Set(pods.map((pod) => pod.spec?.nodeName)).size > 1, "pods on more than one node, so traffic crosses the fabric");
  });

  t.test("host-local holds exactly the addresses Multus reported", async (t) => {
    t.same(await ipamAllocations(network, "core"), sorted(pods.flatMap((pod) => addressesOn(pod, "networks/core"))));
    t.same(await ipamAllocations(network, "access"), sorted(pods.flatMap((pod) => addressesOn(pod, "networks/access"))));
  });

  t.test("from one pod, every other pod's core and access addresses answer over the secondary networks", async (t) => {
    const [client, ...servers] = pods as [V1Pod, ...V1Pod[]];
    for (const server of servers) {
      for (const [attachment, device] of [["networks/core", "core"], ["networks/access", "access"]] as const) {
        for (const address of addressesOn(server, attachment)) {
          t.equal(await routeDevice(network, "default", name(client), address), device, `${address} is routed over ${device}`);
          const echo = await ping(network, "default", name(client), address);
          t.ok(echo.ok, `${name(client)} pings ${name(server)} at ${address}`);
          t.comment(echo.transcript);
        }
      }
      const coreAddresses = addressesOn(server, "networks/core");
      for (const address of coreAddresses) {
        const listener = network.startInPod("default", name(server), `serve-${address.includes(":") ? "v6" : "v4"}`, [
          network.binaries.netprobe, "serve", address.includes(":") ? `[${address}]:7000` : `${address}:7000`, `hello from ${name(server)}`,
        ]);
        const connected = await eventually(async () => {
          const result = await tcpConnect(network, "default", name(client), address, 7000);
          expect(result.ok, result.transcript);
          return result;
        }, { timeoutMs: 10_000 });
        t.match(connected.transcript, `hello from ${name(server)}`, `TCP to ${address}:7000 reaches ${name(server)}`);
        t.comment(connected.transcript);
        await listener.stop(2000);
      }
    }
  });

  t.test("CoreDNS answers from the API server: A, AAAA and SRV records of a headless Service", async (t) => {
    await applier.apply({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "utils-headless", namespace: "default" },
      spec: { clusterIP: "None", ipFamilyPolicy: "PreferDualStack", selector: { app: "utils" }, ports: [{ name: "probe", port: 7000, protocol: "TCP" }] },
    });
    const want = pods.flatMap((pod) => pod.status?.podIPs?.map((p) => p.ip) ?? []);
    const fqdn = "utils-headless.default.svc.cluster.local";
    await eventually(async () => {
      const [a, aaaa] = [await resolve.a(fqdn), await resolve.aaaa(fqdn)];
      expect(JSON.stringify([...a, ...aaaa]) === JSON.stringify([...sorted(want.filter((ip) => !ip.includes(":"))), ...sorted(want.filter((ip) => ip.includes(":")))]),
        `A ${a} AAAA ${aaaa}, want ${want}`);
    }, slow);
    t.pass(`${fqdn} resolves to the pods' real podIPs`);
    const srv = await resolve.srv(`_probe._tcp.${fqdn}`);
    t.equal(srv.length, want.length, "one SRV record per endpoint address");
    t.ok(srv.every((record) => record.port === 7000 && record.name.endsWith(`.${fqdn}`)), "SRV records name port 7000 and a host under the Service");
    t.comment(`SRV _probe._tcp.${fqdn}: ${srv.map((r) => `${r.name}:${r.port}`).join(", ")}`);
  });

  t.test("a pod asking for a network that does not exist gets no sandbox, and nothing of its attempts is left", async (t) => {
    const sandboxesBefore = network.sandboxes.list().length;
    const netnsBefore = network.scope.netnsList();
    await cluster.clients.core.createNamespacedPod({
      namespace: "default",
      body: {
        metadata: { name: "lost", annotations: { "k8s.v1.cni.cncf.io/networks": "networks/nosuch" } },
        spec: { nodeName: "sim-node-0", containers: [{ name: "main", image: "busybox" }] },
      },
    });
    // The kubelet retries the sandbox with backoff; give it a few attempts.
    await new Promise((resolve) => setTimeout(resolve, 4000));
    const lost = await cluster.clients.core.readNamespacedPod({ namespace: "default", name: "lost" });
    t.not(lost.status?.phase, "Running", "the pod does not run");
    t.same(networkStatus(lost), [], "Multus wrote no network-status");
    t.equal(network.sandboxes.list().length, sandboxesBefore, "no sandbox kept");
    await cluster.clients.core.deleteNamespacedPod({ namespace: "default", name: "lost", gracePeriodSeconds: 0 });
    // An attempt may be in flight when the pod goes; it cleans up after itself.
    await eventually(() => expect(JSON.stringify(network.scope.netnsList()) === JSON.stringify(netnsBefore), `namespaces ${network.scope.netnsList()}`), slow);
    t.pass("every failed attempt's namespace removed");
    t.same(await ipamAllocations(network, "core"), sorted(pods.flatMap((pod) => addressesOn(pod, "networks/core"))), "no core address leaked");
    t.same(await ipamAllocations(network, "access"), sorted(pods.flatMap((pod) => addressesOn(pod, "networks/access"))), "no access address leaked");
  });

  t.test("deleting a pod runs CNI DEL: its namespace and addresses are gone, DNS drops it, its replacement is attached", async (t) => {
    const victim = pods[1]!;
    const sandbox = network.sandbox("default", name(victim));
    t.ok(sandbox, "the victim has a sandbox");
    const secondary = [...addressesOn(victim, "networks/core"), ...addressesOn(victim, "networks/access")];
    await cluster.clients.core.deleteNamespacedPod({ namespace: "default", name: name(victim) });
    await sandboxGone(victim);
    t.notOk(existsSync(`/run/netns/${sandbox?.netns}`), `network namespace ${sandbox?.netns} deleted`);
    await eventually(() => expect(sandboxAtRemoval.has(name(victim)), "the kubelet has not removed the pod yet"), slow);
    t.equal(sandboxAtRemoval.get(name(victim)), false, "CNI DEL ran when the grace period ended, before the kubelet deleted the pod object");
    const allocated = [...(await ipamAllocations(network, "core")), ...(await ipamAllocations(network, "access"))];
    t.same(secondary.filter((address) => allocated.includes(address)), [], "host-local freed its core and access addresses");
    await eventually(async () => {
      const a = await resolve.a("utils-headless.default.svc.cluster.local");
      expect(!a.includes(victim.status?.podIP ?? ""), `DNS still answers ${victim.status?.podIP}`);
    }, slow);
    t.pass("its podIP left DNS");
    const unanswered = await ping(network, "default", name(pods[0]!), addressesOn(victim, "networks/core")[0]!, 1);
    t.notOk(unanswered.ok, "its old core address no longer answers");

    const now = await attachedPods();
    t.notOk(now.some((pod) => name(pod) === name(victim)), "a new pod replaced it");
    t.same(await ipamAllocations(network, "core"), sorted(now.flatMap((pod) => addressesOn(pod, "networks/core"))), "core allocations: exactly the running pods'");
    t.same(await ipamAllocations(network, "access"), sorted(now.flatMap((pod) => addressesOn(pod, "networks/access"))), "access allocations: exactly the running pods'");
  });

  // The kubelet may see the pod terminating with grace 0 and tear down first, or only see it gone: either way CNI DEL runs.
  t.test("a pod deleted with grace period 0 (kubectl delete --force) gets its CNI DEL too", async (t) => {
    const [victim] = await attachedPods();
    const sandbox = network.sandbox("default", name(victim!));
    t.ok(sandbox, "the victim has a sandbox");
    const secondary = [...addressesOn(victim!, "networks/core"), ...addressesOn(victim!, "networks/access")];
    await cluster.clients.core.deleteNamespacedPod({ namespace: "default", name: name(victim!), gracePeriodSeconds: 0 });
    await sandboxGone(victim!);
    t.notOk(existsSync(`/run/netns/${sandbox?.netns}`), `network namespace ${sandbox?.netns} deleted`);
    const allocated = [...(await ipamAllocations(network, "core")), ...(await ipamAllocations(network, "access"))];
    t.same(secondary.filter((address) => allocated.includes(address)), [], "host-local freed its core and access addresses");
    const now = await attachedPods();
    t.same(await ipamAllocations(network, "core"), sorted(now.flatMap((pod) => addressesOn(pod, "networks/core"))), "core allocations: exactly the running pods'");
  });
}

type IpAddressLink = { ifname: string; address?: string; addr_info?: { local: string; scope: string }[] };

function globalAddresses(link: IpAddressLink | undefined): string[] {
  return (link?.addr_info ?? []).filter((info) => info.scope === "global").map((info) => info.local);
}
