// netservice installed by its Helm chart, upgraded as an operator would:
// hack/kind/e2e.sh has replaced deploy/'s install by `helm install` of
// deploy/helm/netservice (keeping the CRDs, the namespace and every
// NetService) and run the end-to-end file against it. Here `helm upgrade`
// changes the log level and a pod annotation, which rolls every agent and
// aggregator pod, while a pod on the core network asks the cluster's CoreDNS
// for corens without pause and this file reads corens' Endpoints and
// EndpointSlices as fast: every answer and every read must be the whole
// address set, ready. CoreDNS caches answers for up to 30 s (kubeadm's
// Corefile), so the reads are what would see a short loss first.
// NETSERVICE_HELM names the helm binary; run by hack/kind/e2e.sh.
import path from "node:path";
import t from "tap";
import { repoRoot } from "../../hack/cluster/binaries.ts";
import { attachmentAddresses, listPods, slicesByIp, slicesOf, sorted, type Pod } from "../e2e/cluster-state.ts";
import { eventually, expect } from "../helpers/eventually.ts";
import { endpointLines, kubectl, openKindCluster, run, runningPods, systemNamespace, type KindCluster } from "./support.ts";

const release = "netservice";
const chart = path.join(repoRoot, "deploy", "helm", "netservice");
const fqdn = "corens.default.svc.cluster.local.";
const querier = "helm-upgrade-dns";
// About four times a second, one line: "query <unix seconds>" and the
// addresses of the A and AAAA answers (busybox's nslookup prints the server's
// "Address:" before the answer's "Name:"), or "error" for a failed query.
const queryLoop = `while true; do
  echo "query $(date +%s) $({ nslookup -type=a ${fqdn}; nslookup -type=aaaa ${fqdn}; } 2>&1 |
    awk '/^Server:/ { a = 0 } /^Name:/ { a = 1 } a && /^Address/ { print $NF } /can.t find|timed out|SERVFAIL|REFUSED/ { print "error" }' | tr '\\n' ' ')"
  sleep 0.2
done`;

const cluster = openKindCluster(t);
const helmBinary = process.env.NETSERVICE_HELM;
if (cluster && !helmBinary) t.fail("NETSERVICE_HELM must name the helm binary (hack/kind/e2e.sh sets it)");
if (cluster && helmBinary) await helmTests(cluster, (...args) => run(helmBinary, [...args, "--namespace", systemNamespace], { KUBECONFIG: cluster.kubeconfig }, 900_000));

type ProgramPod = Pod & {
  metadata: Pod["metadata"] & { uid: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: Pod["spec"] & { containers: { env?: { name: string; value?: string }[] }[] };
  status?: Pod["status"] & { containerStatuses?: { ready: boolean }[] };
};

async function helmTests(cluster: KindCluster, helm: (...args: string[]) => Promise<string>) {
  const { clients, applier } = cluster;
  const timeout = { timeoutMs: 180_000, intervalMs: 1_000 };

  t.test("the chart's release runs netservice, with deploy/'s CRDs adopted and kept on uninstall", async (t) => {
    const status = JSON.parse(await helm("status", release, "--output", "json")) as { version: number; info: { status: string } };
    t.equal(status.info.status, "deployed");
    for (const path of [
      `/apis/apps/v1/namespaces/${systemNamespace}/daemonsets/netservice-agent`,
      `/apis/apps/v1/namespaces/${systemNamespace}/deployments/netservice-aggregator`,
      "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/netservices.svcctl.metaswitch.com",
    ]) {
      const object = await clients.http.request<{ metadata: { labels?: Record<string, string>; annotations?: Record<string, string> } }>({ method: "GET", path });
      t.equal(object.metadata.labels?.["app.kubernetes.io/managed-by"], "Helm", `${path}: managed by Helm`);
      t.equal(object.metadata.annotations?.["meta.helm.sh/release-name"], release, `${path}: release ${release}`);
    }
    const crd = await clients.http.request<{ metadata: { annotations?: Record<string, string> } }>({ method: "GET", path: "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/netservices.svcctl.metaswitch.com" });
    t.equal(crd.metadata.annotations?.["helm.sh/resource-policy"], "keep");
  });

  t.test("helm upgrade rolls both programs; no DNS answer and no read of corens misses an address meanwhile", async (t) => {
    const utils = runningPods(await listPods(clients, "default", "app=utils"));
    const want = sorted(utils.flatMap((pod) => attachmentAddresses(pod, "networks/core")));
    t.equal(want.length, 2 * utils.length, `${utils.length} utils pods, an IPv4 and an IPv6 address each on core`);
    const wantLines = sorted(utils.flatMap((pod) => attachmentAddresses(pod, "networks/core").map((ip) => `${ip} ready ${pod.metadata.name}`)));

    await applier.apply({
      apiVersion: "v1", kind: "Pod",
      metadata: { name: querier, namespace: "default", annotations: { "k8s.v1.cni.cncf.io/networks": JSON.stringify([{ name: "core", namespace: "networks", interface: "core" }]) } },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [{
          name: "dns", image: cluster.image("busybox:1.37"),
          command: ["sh", "-c", queryLoop],
        }],
      },
    });
    t.teardown(() => clients.http.request({ method: "DELETE", path: `/api/v1/namespaces/default/pods/${querier}` }).catch(() => undefined));
    await eventually(async () => {
      const answers = parseQueries(await kubectl(cluster, "-n", "default", "logs", querier).catch(() => ""));
      expect(answers.length >= 5 && answers.slice(-3).every((a) => JSON.stringify(a.addresses) === JSON.stringify(want)), `${querier} answers ${JSON.stringify(answers.at(-1))}, want [${want.join(" ")}]`);
    }, timeout);

    const before = {
      agents: await programPods("app.kubernetes.io/name=netservice-agent"),
      aggregators: await programPods("app.kubernetes.io/name=netservice-aggregator"),
    };
    const watched = Date.now();
    const reads: { at: number; lines: string[]; slices: string[] }[] = [];
    let rolling = true;
    const reader = (async () => {
      while (rolling) {
        const [lines, slices] = await Promise.all([endpointLines(cluster, "corens"), slicesOf(clients, "default", "corens")]);
        reads.push({ at: Date.now(), lines, slices: [...slicesByIp(slices)].map(([ip, e]) => `${ip} ${e.ready ? "ready" : "notReady"}`).sort() });
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    })();

    const started = Date.now();
    const mark = `${started}`;
    await helm("upgrade", release, chart, "--reuse-values", "--set", "logLevel=debug",
      "--set-string", `agent.podAnnotations.netservice-test/upgrade=${mark}`, "--set-string", `aggregator.podAnnotations.netservice-test/upgrade=${mark}`,
      "--wait", "--timeout", "10m");
    await kubectl(cluster, "-n", systemNamespace, "rollout", "status", "daemonset/netservice-agent", "--timeout=300s");
    await kubectl(cluster, "-n", systemNamespace, "rollout", "status", "deployment/netservice-aggregator", "--timeout=300s");
    const rolled = Date.now();
    // A few more seconds of answers and reads after the last pod is ready.
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    rolling = false;
    await reader;
    t.comment(`helm upgrade and both rollouts took ${((rolled - started) / 1000).toFixed(1)} s`);

    const after = {
      agents: await programPods("app.kubernetes.io/name=netservice-agent"),
      aggregators: await programPods("app.kubernetes.io/name=netservice-aggregator"),
    };
    for (const [program, old, now, hashLabel] of [
      ["agent", before.agents, after.agents, "controller-revision-hash"],
      ["aggregator", before.aggregators, after.aggregators, "pod-template-hash"],
    ] as const) {
      t.equal(now.length, old.length, `${program}: as many pods as before (${old.length})`);
      const oldUids = new Set(old.map((pod) => pod.metadata.uid));
      t.notOk(now.some((pod) => oldUids.has(pod.metadata.uid)), `${program}: every pod was replaced`);
      const oldHashes = new Set(old.map((pod) => pod.metadata.labels?.[hashLabel]));
      t.notOk(now.some((pod) => oldHashes.has(pod.metadata.labels?.[hashLabel])), `${program}: a new ${hashLabel}`);
      for (const pod of now) {
        t.equal(pod.metadata.annotations?.["netservice-test/upgrade"], mark, `${pod.metadata.name}: the upgrade's annotation`);
        t.equal(pod.spec.containers[0]!.env?.find((e) => e.name === "LOG_LEVEL")?.value, "debug", `${pod.metadata.name}: LOG_LEVEL=debug`);
        t.ok(pod.status?.containerStatuses?.every((c) => c.ready), `${pod.metadata.name}: ready`);
      }
    }
    const lease = await clients.http.request<{ spec: { holderIdentity?: string } }>({ method: "GET", path: `/apis/coordination.k8s.io/v1/namespaces/${systemNamespace}/leases/netservice-aggregator` });
    t.ok(after.aggregators.some((pod) => pod.metadata.name === lease.spec.holderIdentity), `a new aggregator leads (${lease.spec.holderIdentity})`);
    const history = JSON.parse(await helm("history", release, "--output", "json")) as { revision: number; status: string }[];
    t.equal(history.at(-1)?.status, "deployed", `revision ${history.at(-1)?.revision} deployed`);

    const wantSlices = sorted(want.map((ip) => `${ip} ready`));
    const badReads = reads.filter((read) => JSON.stringify(read.lines) !== JSON.stringify(wantLines) || JSON.stringify(read.slices) !== JSON.stringify(wantSlices));
    const readsDuringRoll = reads.filter((read) => read.at >= started && read.at <= rolled).length;
    t.ok(readsDuringRoll >= 20, `${reads.length} reads of corens' Endpoints and EndpointSlices, ${readsDuringRoll} during the roll`);
    t.strictSame(badReads.slice(0, 3), [], `every read holds the ${want.length} addresses, ready (want [${wantLines.join("; ")}])`);

    const answers = parseQueries(await kubectl(cluster, "-n", "default", "logs", querier)).filter((a) => a.at >= Math.ceil(watched / 1000));
    const during = answers.filter((a) => a.at >= Math.floor(started / 1000) && a.at <= Math.ceil(rolled / 1000));
    const wrong = answers.filter((a) => JSON.stringify(a.addresses) !== JSON.stringify(want));
    t.ok(during.length >= 20, `${answers.length} DNS queries (A and AAAA) in all, ${during.length} during the roll`);
    t.strictSame(wrong.slice(0, 3), [], `every answer for ${fqdn} is [${want.join(" ")}]`);
    t.comment(`${answers.length} DNS queries (A and AAAA), ${during.length} during the roll, ${wrong.length} wrong; ${reads.length} reads of corens, ${readsDuringRoll} during the roll, ${badReads.length} wrong`);
  });

  async function programPods(selector: string): Promise<ProgramPod[]> {
    return runningPods(await listPods(clients, systemNamespace, selector)) as ProgramPod[];
  }
}

/** The querier's log: each query's time and answers, sorted ("error" for a failed one). The last line may be unfinished. */
function parseQueries(log: string): { at: number; addresses: string[] }[] {
  const lines = log.split("\n").slice(0, -2);
  return lines.flatMap((line) => {
    const [word, at, ...addresses] = line.trim().split(/\s+/);
    return word === "query" && at ? [{ at: Number(at), addresses: sorted(addresses) }] : [];
  });
}
