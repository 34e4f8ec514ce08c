// The secondary network as a user meets it on a real cluster: the
// NetService's name resolves through the cluster's own CoreDNS to exactly
// the ready addresses netservice published, and those addresses answer
// (ping, TCP) from a pod on another node; scaling the Deployment up and down
// moves the published addresses with it. Run by hack/kind/e2e.sh.
import t from "tap";
import { eventually, expect } from "../helpers/eventually.ts";
import { attachmentAddresses, getOrUndefined, listPods, slicesByIp, slicesOf, sorted, type Pod } from "../e2e/cluster-state.ts";
import { endpointLines, execIn, kubectl, openKindCluster, runningPods, workers, type KindCluster } from "./support.ts";

const cluster = openKindCluster(t);
if (cluster) await networkTests(cluster);

async function networkTests(cluster: KindCluster) {
  const { applier, clients } = cluster;
  const timeout = { timeoutMs: 180_000, intervalMs: 1_000 };
  const [workerA, workerB] = await workers(cluster);
  if (!workerA || !workerB) throw new Error("the kind cluster needs two workers (hack/kind/kind-config.yaml)");
  const busybox = cluster.image("busybox:1.37");

  // An echo service on the core network: one pod on each worker answers TCP
  // port 7000 with its own name; the client runs on the first worker.
  const echoPod = (name: string, node: string) => ({
    apiVersion: "v1", kind: "Pod",
    metadata: {
      name, namespace: "default", labels: { app: "kind-echo" },
      annotations: { "k8s.v1.cni.cncf.io/networks": JSON.stringify([{ name: "core", namespace: "networks", interface: "core" }]) },
    },
    spec: {
      nodeName: node,
      terminationGracePeriodSeconds: 1,
      containers: [{ name: "echo", image: busybox, command: ["sh", "-c", "while true; do echo \"hello from $(hostname)\" | nc -l -p 7000; done"] }],
    },
  });
  const names = { echoA: "kind-echo-a", echoB: "kind-echo-b", client: "kind-client" };
  await applier.apply(echoPod(names.echoA, workerA));
  await applier.apply(echoPod(names.echoB, workerB));
  await applier.apply({
    apiVersion: "v1", kind: "Pod",
    metadata: { name: names.client, namespace: "default", annotations: { "k8s.v1.cni.cncf.io/networks": JSON.stringify([{ name: "core", namespace: "networks", interface: "core" }]) } },
    spec: { nodeName: workerA, terminationGracePeriodSeconds: 1, containers: [{ name: "client", image: busybox, command: ["sleep", "86400"] }] },
  });
  await applier.apply({
    apiVersion: "svcctl.metaswitch.com/v1alpha1", kind: "NetService", metadata: { name: "kind-echo", namespace: "default" },
    spec: { netAttachDef: "core", selector: { app: "kind-echo" }, ports: [{ name: "echo", port: 7000, protocol: "TCP" }] },
  });
  t.teardown(async () => {
    for (const path of [
      "/apis/svcctl.metaswitch.com/v1alpha1/namespaces/default/netservices/kind-echo",
      ...Object.values(names).map((name) => `/api/v1/namespaces/default/pods/${name}`),
    ]) await clients.http.request({ method: "DELETE", path }).catch(() => undefined);
  });

  /** The echo pods' core addresses, from their network-status, once both are running and published ready. */
  const published = await eventually(async () => {
    const pods = runningPods(await listPods(clients, "default", "app=kind-echo"));
    expect(pods.length === 2, `${pods.length} echo pods running`);
    const want = pods.flatMap((pod) => attachmentAddresses(pod, "networks/core").map((ip) => `${ip} ready ${pod.metadata.name}`));
    expect(want.length === 4, `echo pods' core addresses: ${want.join(", ")} (one IPv4 and one IPv6 each)`);
    const got = await endpointLines(cluster, "kind-echo");
    expect(JSON.stringify(got) === JSON.stringify(sorted(want)), `kind-echo publishes [${got.join("; ")}], want [${sorted(want).join("; ")}]`);
    return new Map(pods.map((pod) => [pod.metadata.name, attachmentAddresses(pod, "networks/core")]));
  }, timeout);
  await eventually(async () => {
    const pod = await getOrUndefined<Pod>(clients, `/api/v1/namespaces/default/pods/${names.client}`);
    expect(pod?.status?.phase === "Running", `client pod ${pod?.status?.phase ?? "missing"}`);
  }, timeout);

  t.test("the NetService's name resolves through the cluster's CoreDNS, from a pod on the secondary network", async (t) => {
    const fqdn = "kind-echo.default.svc.cluster.local";
    const want = sorted([...published.values()].flat());
    const answer = await eventually(async () => {
      const answer = sorted([...parseNslookup(await execIn(cluster, names.client, ["nslookup", "-type=a", fqdn]).catch(() => "")),
        ...parseNslookup(await execIn(cluster, names.client, ["nslookup", "-type=aaaa", fqdn]).catch(() => ""))]);
      expect(JSON.stringify(answer) === JSON.stringify(want), `${fqdn} answers [${answer.join(" ")}], want [${want.join(" ")}]`);
      return answer;
    }, timeout);
    t.same(answer, want, `${fqdn}: A and AAAA are the echo pods' core addresses`);
    t.comment(`${fqdn}: ${answer.join(" ")}`);
    const resolvConf = await execIn(cluster, names.client, ["cat", "/etc/resolv.conf"]);
    const service = await kubectl(cluster, "-n", "kube-system", "get", "service", "kube-dns", "-o", "jsonpath={.spec.clusterIP}");
    t.match(resolvConf, new RegExp(`nameserver ${service.trim().replaceAll(".", "\\.")}`), "the answer came from the cluster's kube-dns Service");
  });

  t.test("ping and TCP reach a pod on the other node over the secondary network", async (t) => {
    const remote = published.get(names.echoB)!;
    const local = published.get(names.echoA)!;
    for (const ip of remote) {
      const ping = await execIn(cluster, names.client, ["ping", "-c", "2", "-W", "3", ip]);
      t.match(ping, /2 packets transmitted, 2 (packets )?received/, `ping ${ip} (${names.echoB} on ${workerB}) from ${workerA}`);
      const answer = await eventually(() => execIn(cluster, names.client, ["nc", "-w", "3", ip, "7000"]), { timeoutMs: 30_000, intervalMs: 1_000 });
      t.equal(answer.trim(), `hello from ${names.echoB}`, `TCP ${ip}:7000 answers as ${names.echoB}`);
    }
    const answer = await eventually(() => execIn(cluster, names.client, ["nc", "-w", "3", local[0]!, "7000"]), { timeoutMs: 30_000, intervalMs: 1_000 });
    t.equal(answer.trim(), `hello from ${names.echoA}`, "and the pod on the same node");
  });

  t.test("scaling the Deployment up and down moves the published addresses with it", async (t) => {
    const expectCorens = (replicas: number) => eventually(async () => {
      const pods = runningPods(await listPods(clients, "default", "app=utils"));
      expect(pods.length === replicas, `${pods.length} utils pods running, want ${replicas}`);
      const want = sorted(pods.flatMap((pod) => attachmentAddresses(pod, "networks/core").map((ip) => `${ip} ready ${pod.metadata.name}`)));
      const got = await endpointLines(cluster, "corens");
      expect(JSON.stringify(got) === JSON.stringify(want), `corens publishes [${got.join("; ")}], want [${want.join("; ")}]`);
      const slices = slicesByIp(await slicesOf(clients, "default", "corens"));
      expect(slices.size === want.length, `slices hold ${slices.size} addresses, want ${want.length}`);
      return pods;
    }, timeout);
    const scale = (replicas: number) => kubectl(cluster, "-n", "default", "scale", "deployment/utils", `--replicas=${replicas}`);
    const before = (await expectCorens(3)).length;
    await scale(6);
    const up = await expectCorens(6);
    t.ok(new Set(up.map((pod) => pod.spec.nodeName)).size >= 2, "the pods spread over both workers");
    await scale(1);
    await expectCorens(1);
    await scale(before);
    await expectCorens(before);
    t.pass("3 -> 6 -> 1 -> 3 pods: corens held exactly the running pods' core addresses at each step");
  });
}

/** The addresses of an nslookup answer (busybox's format: "Name: ..." then "Address: ..."). */
function parseNslookup(output: string): string[] {
  const lines = output.split("\n");
  const start = lines.findIndex((line) => line.startsWith("Name:"));
  if (start < 0) return [];
  return lines.slice(start).flatMap((line) => /^Address(?: \d+)?:\s*(\S+)/.exec(line)?.[1] ?? []);
}
