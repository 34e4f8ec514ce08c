// Faults of the real parts, as a cluster meets them: the kubelet restarting
// a killed agent, a Deployment replacing the aggregator's leader, the API
// server refusing a real agent's token for another node's report, and a
// worker that stops. Run by hack/kind/e2e.sh, after the end-to-end file and
// cluster-network.test.ts (tap runs the files in name order); the last test stops a worker and starts it again.
import t from "tap";
import { KubeConfig } from "@kubernetes/client-node";
import { makeClients } from "../../common/kube/client.ts";
import { KubeApiError } from "../../common/kube/http.ts";
import { eventually, expect } from "../helpers/eventually.ts";
import { attachmentAddresses, getOrUndefined, listPods, sorted, type Pod } from "../e2e/cluster-state.ts";
import { agentPodOn, endpointLines, kubectl, openKindCluster, run, runningPods, systemNamespace, workers, type KindCluster } from "./support.ts";

const cluster = openKindCluster(t);
if (cluster) await faultTests(cluster);

async function faultTests(cluster: KindCluster) {
  const { clients } = cluster;
  const timeout = { timeoutMs: 180_000, intervalMs: 1_000 };
  const [workerA, workerB] = await workers(cluster);
  if (!workerA || !workerB) throw new Error("the kind cluster needs two workers (hack/kind/kind-config.yaml)");

  /** corens must hold exactly the running utils pods' core addresses, all ready (or as `ready` says). */
  const truth = async (ready: (pod: Pod) => boolean = () => true) => {
    const pods = runningPods(await listPods(clients, "default", "app=utils"));
    return sorted(pods.flatMap((pod) => attachmentAddresses(pod, "networks/core").map((ip) => `${ip} ${ready(pod) ? "ready" : "notReady"} ${pod.metadata.name}`)));
  };
  const expectExact = (ready?: (pod: Pod) => boolean) => eventually(async () => {
    const [want, got] = [await truth(ready), await endpointLines(cluster, "corens")];
    expect(want.length > 0, "no utils pod has a core address");
    expect(JSON.stringify(got) === JSON.stringify(want), `corens publishes [${got.join("; ")}], want [${want.join("; ")}]`);
    return got;
  }, timeout);
  const utilsNodes = async () => runningPods(await listPods(clients, "default", "app=utils")).map((pod) => pod.spec.nodeName!);

  t.test("kill the agent's container: endpoints stay as they are, the kubelet restarts it, and it follows changes again", async (t) => {
    const before = await expectExact();
    const node = (await utilsNodes()).find((name) => name === workerA || name === workerB)!;
    const agent = await agentPodOn(cluster, node);
    const status = agent.status?.containerStatuses?.find((c) => c.name === "agent");
    const containerId = status?.containerID?.replace(/^containerd:\/\//, "");
    if (!status || !containerId) throw new Error(`agent on ${node} has no running container: ${JSON.stringify(agent.status)}`);
    const pid = (await run("docker", ["exec", node, "crictl", "inspect", "--output", "go-template", "--template", "{{.info.pid}}", containerId])).trim();
    await run("docker", ["exec", node, "kill", "-KILL", pid]);
    t.comment(`SIGKILL to the agent's process ${pid} (container ${containerId.slice(0, 12)}) on ${node}`);
    // Until the kubelet has it running and ready again, corens must not move.
    const seen = new Set<string>();
    let polls = 0;
    const restarted = await eventually(async () => {
      seen.add(JSON.stringify(await endpointLines(cluster, "corens")));
      polls++;
      const now = (await agentPodOn(cluster, node)).status?.containerStatuses?.find((c) => c.name === "agent");
      expect(Boolean(now && now.restartCount > status.restartCount && now.ready), `agent container: restarts ${now?.restartCount}, ready ${now?.ready}`);
      return now!;
    }, { timeoutMs: 180_000, intervalMs: 500 });
    t.equal(restarted.restartCount, status.restartCount + 1, "the kubelet restarted the container once");
    t.same([...seen], [JSON.stringify(before)], `corens unchanged in all ${polls} reads while the agent was down and restarting`);
    t.same(await expectExact(), before, "and exact after it returned");
    // The restarted agent works: a utils pod on its node goes, and its replacement is published.
    const victim = runningPods(await listPods(clients, "default", "app=utils")).find((pod) => pod.spec.nodeName === node)!;
    await clients.http.request({ method: "DELETE", path: `/api/v1/namespaces/default/pods/${victim.metadata.name}`, body: { gracePeriodSeconds: 1 } });
    await eventually(async () => {
      expect(!(await endpointLines(cluster, "corens")).some((line) => line.endsWith(` ${victim.metadata.name}`)), `${victim.metadata.name} still published`);
      expect((await truth()).length === before.length, "replacement not running yet");
    }, timeout);
    await expectExact();
    t.pass(`after the restart, ${victim.metadata.name}'s deletion and its replacement were followed`);
  });

  t.test("delete the aggregator leader's pod: the standby takes over and keeps corens right", async (t) => {
    const leasePath = `/apis/coordination.k8s.io/v1/namespaces/${systemNamespace}/leases/netservice-aggregator`;
    type Lease = { spec: { holderIdentity?: string; leaseTransitions?: number } };
    const aggregatorPods = async () => runningPods(await listPods(clients, systemNamespace, "app.kubernetes.io/name=netservice-aggregator"));
    const aggregators = async () => (await aggregatorPods()).map((pod) => pod.metadata.name);
    const lease = await clients.http.request<Lease>({ method: "GET", path: leasePath });
    const leader = lease.spec.holderIdentity;
    const replicas = await aggregators();
    t.ok(leader && replicas.includes(leader), `the Lease names a running replica (${leader} of ${replicas.join(", ")})`);
    const standby = replicas.find((name) => name !== leader);
    t.ok(standby, "a standby replica runs");
    // Every node cordoned, so the Deployment's replacement stays Pending and
    // the standby is the only candidate, as when no node has room for a new
    // pod. (Otherwise the replacement may win: the leader releases the Lease
    // as it stops and every candidate polls it every 2 to 4.4 s, as
    // client-go's do; seen 2.2 s after the deletion.)
    const nodes = (await kubectl(cluster, "get", "nodes", "-o", "jsonpath={.items[*].metadata.name}")).split(" ").filter(Boolean);
    // The standby's node last: the Pending replacement is placed as soon as a
    // node opens, and with nodeTaintsPolicy Honor a node still cordoned does
    // not count in the spread, so opening the standby's node first would put
    // both replicas on it (seen in a CI run), and the node-stop test below
    // would then take no aggregator down with its worker.
    const standbyNode = (await aggregatorPods()).find((pod) => pod.metadata.name === standby)?.spec.nodeName;
    const uncordon = async () => {
      await kubectl(cluster, "uncordon", ...nodes.filter((name) => name !== standbyNode));
      if (standbyNode) await kubectl(cluster, "uncordon", standbyNode);
    };
    t.teardown(() => uncordon().then(() => undefined, () => undefined));
    await kubectl(cluster, "cordon", ...nodes);
    const started = Date.now();
    await clients.http.request({ method: "DELETE", path: `/api/v1/namespaces/${systemNamespace}/pods/${leader}` });
    const holder = await eventually(async () => {
      const now = await clients.http.request<Lease>({ method: "GET", path: leasePath });
      expect(Boolean(now.spec.holderIdentity) && now.spec.holderIdentity !== leader, `holder still ${now.spec.holderIdentity}`);
      return now.spec.holderIdentity!;
    }, { timeoutMs: 120_000, intervalMs: 250 });
    t.equal(holder, standby, "the standby holds the Lease");
    t.comment(`takeover ${((Date.now() - started) / 1000).toFixed(1)} s after the leader's pod was deleted (graceful: it releases the Lease)`);
    await uncordon();
    await eventually(async () => expect((await aggregators()).length === 2, "the replacement replica runs"), timeout);
    const spread = (await aggregatorPods()).map((pod) => pod.spec.nodeName);
    t.equal(new Set(spread).size, 2, `the replacement runs on another node than the standby (${spread.join(", ")}), as deploy/'s spread requires`);
    await kubectl(cluster, "-n", "default", "scale", "deployment/utils", "--replicas=4");
    await eventually(async () => expect((await truth()).length >= 4 * 2, "4 pods with two core addresses each"), timeout);
    await expectExact();
    await kubectl(cluster, "-n", "default", "scale", "deployment/utils", "--replicas=3");
    await eventually(async () => expect((await truth()).length === 3 * 2, "back to 3 pods"), timeout);
    await expectExact();
    t.pass("the new leader followed a scale up and down");
  });

  t.test("a real agent pod's own token may write its node's report and is denied another node's", async (t) => {
    const agent = await agentPodOn(cluster, workerA);
    // The token the kubelet projected into the agent's pod, read from the node
    // (the image has no shell): the file behind the volume's token symlink,
    // which the kernel's protected_symlinks would not let root follow in
    // that sticky folder.
    const token = (await run("docker", ["exec", workerA, "sh", "-c",
      `cat /var/lib/kubelet/pods/${agent.metadata.uid}/volumes/kubernetes.io~projected/*/..data/token`])).trim();
    t.ok(token.split(".").length === 3, "a JWT");
    const admin = new KubeConfig();
    admin.loadFromFile(cluster.kubeconfig);
    const server = admin.getCurrentCluster()!;
    const asAgent = new KubeConfig();
    asAgent.loadFromOptions({
      clusters: [{ name: "kind", server: server.server, caData: server.caData, skipTLSVerify: false }],
      users: [{ name: "agent", token }],
      contexts: [{ name: "agent", cluster: "kind", user: "agent" }],
      currentContext: "agent",
    });
    const agentClients = makeClients(asAgent, { userAgent: "netservice-kind-test/agent-token" });
    t.teardown(() => agentClients.close());
    const reports = "/apis/svcctl.metaswitch.com/v1alpha1/namespaces/netservice-system/netservicenodereports";
    type Report = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string>; ownerReferences?: unknown[] }; spec: { nodeName: string } & Record<string, unknown> };
    const own = await getOrUndefined<Report>(clients, `${reports}/${workerA}.0`);
    const other = await getOrUndefined<Report>(clients, `${reports}/${workerB}.0`);
    if (!own || !other) throw new Error(`reports ${workerA}.0 and ${workerB}.0 must exist: ${Boolean(own)} ${Boolean(other)}`);
    const applyAs = (report: Report) => agentClients.http.request({
      method: "PATCH", path: `${reports}/${report.metadata.name}`, body: { apiVersion: report.apiVersion, kind: report.kind, metadata: { name: report.metadata.name, labels: report.metadata.labels }, spec: report.spec },
      contentType: "application/apply-patch+yaml", query: { fieldManager: "netservice-kind-test", force: "true", dryRun: "All" },
    });
    await applyAs(own);
    t.pass(`the token of the agent on ${workerA} may apply ${own.metadata.name} (dry run)`);
    const denied = await applyAs(other).then(() => undefined, (error: unknown) => error);
    t.ok(denied instanceof KubeApiError && denied.code === 403, `applying ${other.metadata.name} is refused: ${(denied as Error | undefined)?.message}`);
    t.match((denied as Error).message, /netservice-agent on node/, "by the admission policy, naming the node");
    const forged = await applyAs({ ...own, metadata: { ...own.metadata, name: `${workerB}.0` }, spec: { ...own.spec, nodeName: workerB } }).then(() => undefined, (error: unknown) => error);
    t.ok(forged instanceof KubeApiError && forged.code === 403, "and so is a report it forges with the other node's name and spec.nodeName");
  });

  t.test("docker stop a worker: its endpoints stop being ready within the node monitor grace period plus 10 s, then come back", async (t) => {
    await expectExact();
    const nodes = await utilsNodes();
    // The worker with the most utils pods.
    const node = [workerA, workerB].sort((a, b) => nodes.filter((n) => n === b).length - nodes.filter((n) => n === a).length)[0]!;
    const onNode = runningPods(await listPods(clients, "default", "app=utils")).filter((pod) => pod.spec.nodeName === node);
    t.ok(onNode.length > 0, `${node} runs ${onNode.length} utils pod(s)`);
    // What deploy/'s spread constraint guarantees: a node's failure never takes every aggregator with it.
    const aggregatorNodes = runningPods(await listPods(clients, systemNamespace, "app.kubernetes.io/name=netservice-aggregator")).map((pod) => pod.spec.nodeName);
    t.ok(aggregatorNodes.some((name) => name !== node), `an aggregator runs off ${node} (replicas on ${aggregatorNodes.join(", ")})`);
    const graceSeconds = await nodeMonitorGracePeriodSeconds(cluster);
    await run("docker", ["stop", node], {}, 120_000);
    const stopped = Date.now();
    t.teardown(() => run("docker", ["start", node]).then(() => undefined, () => undefined));
    const gone = new Set(onNode.map((pod) => pod.metadata.name));
    const lines = await eventually(async () => {
      const lines = await endpointLines(cluster, "corens");
      const stale = lines.filter((line) => gone.has(line.split(" ")[2]!) && line.includes(" ready "));
      expect(stale.length === 0, `still ready: ${stale.join("; ")}`);
      return lines;
    }, { timeoutMs: (graceSeconds + 60) * 1000, intervalMs: 500 });
    const seconds = (Date.now() - stopped) / 1000;
    t.comment(`${node}'s endpoints not ready ${seconds.toFixed(1)} s after docker stop (node monitor grace period ${graceSeconds} s)`);
    t.ok(seconds <= graceSeconds + 10, `within the grace period plus 10 s (${seconds.toFixed(1)} s <= ${graceSeconds + 10} s)`);
    t.ok(lines.filter((line) => !gone.has(line.split(" ")[2]!)).every((line) => line.includes(" ready ")), "the other nodes' endpoints stay ready");
    await run("docker", ["start", node]);
    await eventually(async () => {
      const status = await getOrUndefined<{ status?: { conditions?: { type: string; status: string }[] } }>(clients, `/api/v1/nodes/${node}`);
      expect(Boolean(status?.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")), `${node} not Ready yet`);
    }, { timeoutMs: 300_000, intervalMs: 2_000 });
    t.comment(`${node} Ready again ${((Date.now() - stopped) / 1000).toFixed(0)} s after the stop`);
    await eventually(async () => {
      const [want, got] = [await truth(), await endpointLines(cluster, "corens")];
      expect(want.length === 6 && JSON.stringify(got) === JSON.stringify(want), `corens publishes [${got.join("; ")}], want [${want.join("; ")}]`);
    }, { timeoutMs: 300_000, intervalMs: 2_000 });
    t.pass("back: corens exact and every endpoint ready once the worker and its pods returned");
  });
}

/** kube-controller-manager's --node-monitor-grace-period in seconds, from its static pod; Kubernetes' default (50 s since 1.32) when unset. */
async function nodeMonitorGracePeriodSeconds(cluster: KindCluster): Promise<number> {
  const pods = await listPods(cluster.clients, "kube-system", "component=kube-controller-manager") as (Pod & { spec: { containers?: { command?: string[] }[] } })[];
  const flag = pods[0]?.spec.containers?.[0]?.command?.find((arg) => arg.startsWith("--node-monitor-grace-period="));
  if (!flag) return 50;
  const match = /^(\d+)s$/.exec(flag.split("=")[1]!);
  if (!match) throw new Error(`cannot read ${flag}`);
  return Number(match[1]);
}
