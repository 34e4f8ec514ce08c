// netservice end to end on real networking: the seed samples' pods get their
// core and access addresses from the real Multus and CNI plugins, the node
// agents and the aggregator publish them, and CoreDNS, reading the
// EndpointSlices like in any cluster, answers corens.default.svc.cluster.local
// with exactly those addresses. A client in one pod's namespace then reaches
// what the name resolves to over the core network.
import path from "node:path";
import t from "tap";
import type { V1Pod } from "@kubernetes/client-node";
import { applyManifests, loadManifests } from "../../hack/manifests.ts";
import { createRootLogger } from "../../common/log.ts";
import { LocalSystem } from "../../hack/local-system.ts";
import { eventually, expect } from "../helpers/eventually.ts";
import { addressesOn, dnsAt, networkStatus, ping, realNetworkingAvailable, routeDevice, runningPods, sorted, tcpConnect } from "../helpers/real-network.ts";

const demo = path.resolve(import.meta.dirname, "..", "..", "hack", "demo");
const slow = { timeoutMs: 120_000 };
const corens = "corens.default.svc.cluster.local";

if (await realNetworkingAvailable(t)) await main();

async function main() {
  const logger = createRootLogger({ env: { LOG_LEVEL: process.env.LOG_LEVEL ?? "warn", LOG_FORMAT: "text" }, destination: process.stderr });
  const system = await LocalSystem.start({ network: "real", report: (line) => t.comment(line), logger, sim: { maxGracePeriodMs: 1000 } });
  t.teardown(() => system.stop());
  const { applier, clients } = system;
  const network = system.network!;
  const resolve = dnsAt(system.dns!.address);
  await applyManifests(applier, clients.http, await loadManifests(
    path.join(demo, "networks.yaml"),
    ...["multi.yaml", "core.yaml", "access.yaml"].map((file) => path.join(demo, "samples", file)),
  ));
  const name = (pod: V1Pod) => pod.metadata?.name ?? "";
  const attachedPods = () => eventually(async () => {
    const pods = await runningPods(clients, "default", "app=utils");
    expect(pods.length === 3, `${pods.length} of 3 pods running`);
    expect(pods.every((pod) => networkStatus(pod).length === 3), "network-status incomplete");
    return pods;
  }, slow);
  const coreAddresses = (pods: V1Pod[]) => pods.flatMap((pod) => addressesOn(pod, "networks/core"));
  /** Waits until the name's A and AAAA answers are exactly `want`. */
  const expectAnswers = (fqdn: string, want: string[]) => eventually(async () => {
    const [a, aaaa] = [await resolve.a(fqdn), await resolve.aaaa(fqdn)];
    expect(JSON.stringify(sorted([...a, ...aaaa])) === JSON.stringify(sorted(want)), `${fqdn}: A ${a} AAAA ${aaaa}, want ${sorted(want)}`);
    return { a, aaaa };
  }, slow);
  const pods = await attachedPods();

  t.test("corens and accessns resolve at CoreDNS to exactly the addresses Multus assigned on core and access", async (t) => {
    const { a, aaaa } = await expectAnswers(corens, coreAddresses(pods));
    t.pass(`${corens} answers the pods' core addresses, both families`);
    t.comment(`${corens}  A ${a.join(" ")}  AAAA ${aaaa.join(" ")}`);
    const primary = pods.flatMap((pod) => pod.status?.podIPs?.map((p) => p.ip) ?? []);
    t.notOk([...a, ...aaaa].some((ip) => primary.includes(ip)), "never a primary address");
    await expectAnswers("accessns.default.svc.cluster.local", pods.flatMap((pod) => addressesOn(pod, "networks/access")));
    t.pass("accessns.default.svc.cluster.local answers the pods' access addresses");
  });

  t.test("every address corens resolves to answers ping from a pod, over the core network", async (t) => {
    const client = pods[0]!;
    const own = addressesOn(client, "networks/core");
    const answers = [...(await resolve.a(corens)), ...(await resolve.aaaa(corens))].filter((ip) => !own.includes(ip));
    t.equal(answers.length, 4, "two other pods, two addresses each");
    for (const address of answers) {
      t.equal(await routeDevice(network, "default", name(client), address), "core", `${address} is routed over core`);
      const echo = await ping(network, "default", name(client), address);
      t.ok(echo.ok, `${name(client)} pings ${address}`);
      t.comment(echo.transcript);
    }
  });

  t.test("with a port, corens gets SRV records whose targets are the core addresses, and a client connects to each", async (t) => {
    await clients.http.request({
      method: "PATCH",
      path: "/apis/svcctl.metaswitch.com/v1alpha1/namespaces/default/netservices/corens",
      body: { spec: { ports: [{ name: "sip", port: 5060, protocol: "TCP" }] } },
      contentType: "application/merge-patch+json",
    });
    const srvName = `_sip._tcp.${corens}`;
    const want = coreAddresses(pods);
    const records = await eventually(async () => {
      const srv = await resolve.srv(srvName);
      expect(srv.length === want.length, `${srv.length} SRV records, want ${want.length}`);
      return srv;
    }, slow);
    t.ok(records.every((r) => r.port === 5060), "every SRV record names port 5060");
    t.comment(`SRV ${srvName}: ${records.map((r) => `${r.name}:${r.port}`).join(", ")}`);
    const targets = (await Promise.all(records.map(async (r) => [...(await resolve.a(r.name)), ...(await resolve.aaaa(r.name))]))).flat();
    t.same(sorted(targets), sorted(want), "the SRV targets resolve to exactly the core addresses");

    const [client, ...servers] = pods as [V1Pod, ...V1Pod[]];
    for (const server of servers) {
      for (const address of addressesOn(server, "networks/core")) {
        network.startInPod("default", name(server), `sip-${address.includes(":") ? "v6" : "v4"}`, [
          network.binaries.netprobe, "serve", address.includes(":") ? `[${address}]:5060` : `${address}:5060`, `sip at ${name(server)}`,
        ]);
        const connected = await eventually(async () => {
          const result = await tcpConnect(network, "default", name(client), address, 5060);
          expect(result.ok, result.transcript);
          return result;
        }, { timeoutMs: 10_000 });
        t.match(connected.transcript, `sip at ${name(server)}`, `${address}:5060 (from SRV) reaches ${name(server)}`);
        t.comment(connected.transcript);
      }
    }
  });

  t.test("a deleted pod's core addresses leave DNS, and its replacement's arrive", async (t) => {
    const victim = pods[2]!;
    const gone = addressesOn(victim, "networks/core");
    await clients.core.deleteNamespacedPod({ namespace: "default", name: name(victim) });
    const now = await eventually(async () => {
      const current = await attachedPods();
      expect(!current.some((pod) => name(pod) === name(victim)), "the victim still runs");
      return current;
    }, slow);
    const { a, aaaa } = await expectAnswers(corens, coreAddresses(now));
    t.same([...a, ...aaaa].filter((ip) => gone.includes(ip)), [], `${gone.join(", ")} left DNS`);
    t.comment(`${corens} after deleting ${name(victim)}:  A ${a.join(" ")}  AAAA ${aaaa.join(" ")}`);
  });
}
