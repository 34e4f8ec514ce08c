// Peak memory of the two programs under the quick benchmark's load, without
// the benchmark's latency machinery: a local control plane, 10 simulated
// nodes, 5 NetServices and 100 pods (or the sizes given), created 10 at a
// time; once our EndpointSlices show every pod, 10 s to settle, then 30 s of
// churn at the quick preset's rates (per second: 2 creations, 2 deletions, 10
// readiness flips, 4 address changes). The aggregator and sim-node-0's agent
// run as processes of their own (the admin kubeconfig, a client
// certificate); the other agents run in this process. sim-node-0 gets
// --agent-pods of the bulk pods (default: an even share), the other nodes
// the rest, so the agent's figure can stay per node as the cluster grows;
// the churn's creations go round the nodes. Prints one JSON line: VmHWM,
// VmRSS and CPU seconds (since start) of both once the bulk pods are shown
// and at the end, the V8 heap in use at the end and the API writes that
// succeeded (from each one's /metrics, read after the memory; they show that
// it worked), the sizes, the reports' size and the load average.
//
//   node hack/mem/load.ts
//   node hack/mem/load.ts --nodes=100 --pods=3000 --netservices=5 --agent-pods=10   other sizes
//   node hack/mem/load.ts --node-option=--max-semi-space-size=1      Node flags for both programs
//   node hack/mem/load.ts --agent=dist/node-agent.mjs --aggregator=dist/aggregator.mjs   other entry points (the bundles: npm run bundle)
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { defaultSystemNamespace, group, labels, reportPlural, sliceManagedBy, version } from "../../common/api.ts";
import { Applier } from "../../common/kube/apply.ts";
import { createRootLogger } from "../../common/log.ts";
import { readProcStats, type ProcStats } from "../bench/proc-stats.ts";
import { netServiceManifest, podManifest } from "../bench/workload.ts";
import { freePort, startProcess, type ManagedProcess } from "../cluster/process.ts";
import { LocalSystem, repoRoot } from "../local-system.ts";
import { applyManifests, loadManifests } from "../manifests.ts";

const { values: args } = parseArgs({
  options: {
    agent: { type: "string", default: "node-agent/main.ts" },
    aggregator: { type: "string", default: "aggregator/main.ts" },
    "node-option": { type: "string", multiple: true, default: [] },
    "churn-seconds": { type: "string", default: "30" },
    nodes: { type: "string", default: "10" },
    pods: { type: "string", default: "100" },
    netservices: { type: "string", default: "5" },
    "agent-pods": { type: "string" },
    "converge-timeout-seconds": { type: "string", default: "1200" },
  },
});

const namespace = "mem";
const nodes = count("nodes", args.nodes, 1);
const pods = count("pods", args.pods, 0);
const netServices = count("netservices", args.netservices, 1);
const agentPods = args["agent-pods"] === undefined ? Math.round(pods / nodes) : count("agent-pods", args["agent-pods"], 0);
if (agentPods > pods || (nodes === 1 && agentPods !== pods)) throw new Error(`--agent-pods=${agentPods} does not fit ${pods} pods on ${nodes} nodes`);
const say = (line: string) => process.stderr.write(`[mem] ${line}\n`);
const random = (n: number) => Math.floor(Math.random() * n);

const logger = createRootLogger({ env: { LOG_LEVEL: "warn", LOG_FORMAT: "text" }, destination: process.stderr });
const system = await LocalSystem.start({ nodes, inProcessAggregator: false, report: say, logger });
type Program = { process: ManagedProcess; metricsPort: number };
const children: ManagedProcess[] = [];
try {
  const applier = new Applier(system.clients.http, { fieldManager: "netservice-mem" });
  await applyManifests(applier, system.clients.http, [
    ...(await loadManifests(path.join(repoRoot, "hack", "demo", "networks.yaml"))),
    { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } },
    ...Array.from({ length: netServices }, (_, i) => netServiceManifest(namespace, i)),
  ]);
  await system.stopAgent("sim-node-0");
  const agent = await start("agent", args.agent, ["--node-name=sim-node-0"]);
  const aggregator = await start("aggregator", args.aggregator, ["--no-leader-elect", "--identity=mem"]);

  let serial = 0;
  const live: string[] = [];
  const create = async (node = serial % nodes) => {
    const name = `pod-${serial++}`;
    live.push(name);
    await applier.apply(podManifest(namespace, { name, nodeName: `sim-node-${node}`, netService: serial % netServices, gracePeriodSeconds: 1 }));
  };
  // The first agentPods on sim-node-0, the rest round the other nodes.
  const bulkNode = (i: number) => (i < agentPods ? 0 : 1 + ((i - agentPods) % (nodes - 1)));
  const loadAverageAtStart = os.loadavg().map(round2);
  say(`creating ${pods} pods on ${nodes} nodes (${agentPods} on sim-node-0) for ${netServices} NetServices`);
  const bulkStart = Date.now();
  for (let i = 0; i < pods; i += 10) await Promise.all(Array.from({ length: Math.min(10, pods - i) }, (_, j) => create(bulkNode(i + j))));
  const createSeconds = (Date.now() - bulkStart) / 1000;
  say(`created in ${createSeconds.toFixed(1)} s; waiting until our EndpointSlices show all ${pods}`);
  await waitUntilShown(pods, Number(args["converge-timeout-seconds"]) * 1000);
  const shownSeconds = (Date.now() - bulkStart) / 1000;
  const afterBulk = { agent: figures(readProcStats(agent.process.pid)), aggregator: figures(readProcStats(aggregator.process.pid)) };
  const loadAverageAfterBulk = os.loadavg().map(round2);
  say(`shown after ${shownSeconds.toFixed(1)} s; aggregator peak ${afterBulk.aggregator.peakRssMb} MB so far`);
  await new Promise((resolve) => setTimeout(resolve, 10_000));

  const churnSeconds = Number(args["churn-seconds"]);
  say(`churn for ${churnSeconds} s`);
  const pick = () => live[random(live.length)]!;
  const actions: Array<[perSecond: number, act: () => Promise<unknown>]> = [
    [2, create],
    [2, async () => {
      const name = live.splice(random(live.length), 1)[0]!;
      await system.clients.http.request({ method: "DELETE", path: `/api/v1/namespaces/${namespace}/pods/${name}` });
    }],
    [10, () => system.sim.kubelet.setReady(namespace, pick(), Math.random() < 0.5)],
    [4, () => system.sim.multus.changeAddress(namespace, pick())],
  ];
  const failures: unknown[] = [];
  const timers = actions.map(([perSecond, act]) => setInterval(() => void act().catch((err: unknown) => failures.push(err)), 1000 / perSecond));
  await new Promise((resolve) => setTimeout(resolve, churnSeconds * 1000));
  timers.forEach(clearInterval);
  await new Promise((resolve) => setTimeout(resolve, 5_000));
  const memory = { agent: figures(readProcStats(agent.process.pid)), aggregator: figures(readProcStats(aggregator.process.pid)) };
  const loadAverageAtEnd = os.loadavg().map(round2);
  const [agentMetrics, aggregatorMetrics] = await Promise.all([metricsOf(agent), metricsOf(aggregator)]);
  process.stdout.write(`${JSON.stringify({
    size: { nodes, pods, netServices, agentPods, livePodsAtEnd: live.length },
    agent: { ...memory.agent, afterBulk: afterBulk.agent, heap: heapMb(agentMetrics), writes: successfulWrites(agentMetrics) },
    aggregator: { ...memory.aggregator, afterBulk: afterBulk.aggregator, heap: heapMb(aggregatorMetrics), writes: successfulWrites(aggregatorMetrics) },
    held: await heldObjects(),
    seconds: { create: round2(createSeconds), shown: round2(shownSeconds) },
    loadAverage: { atStart: loadAverageAtStart, afterBulk: loadAverageAfterBulk, atEnd: loadAverageAtEnd },
    nodeOptions: args["node-option"],
    churnFailures: failures.length,
  })}\n`);
} finally {
  await Promise.all(children.map((child) => child.stop()));
  await system.stop();
}

async function start(name: string, program: string, extra: string[]): Promise<Program> {
  const metricsPort = await freePort();
  const child = startProcess(
    name,
    process.execPath,
    [...args["node-option"], path.resolve(repoRoot, program), `--kubeconfig=${system.plane.kubeconfig}`, `--metrics-port=${metricsPort}`, ...extra],
    path.join(system.plane.dir, `mem-${name}.log`),
    { ...process.env, NODE_OPTIONS: "", LOG_LEVEL: "warn" },
  );
  children.push(child);
  for (let i = 0; i < 240; i++) {
    const ready = await fetch(`http://127.0.0.1:${metricsPort}/readyz`).then((r) => r.ok, () => false);
    if (ready) return { process: child, metricsPort };
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${name} not ready after 60 s:\n${child.logTail()}`);
}

/** Waits until the aggregator's EndpointSlices in the namespace list `expected` pods. */
async function waitUntilShown(expected: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let shown = 0;
  while (Date.now() < deadline) {
    const slices = await system.clients.http.request<{ items: { endpoints?: { targetRef?: { uid?: string } }[] | null }[] }>({
      method: "GET",
      path: `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`,
      query: { labelSelector: `${labels.managedBy}=${sliceManagedBy}` },
    });
    shown = new Set(slices.items.flatMap((slice) => (slice.endpoints ?? []).map((endpoint) => endpoint.targetRef?.uid))).size;
    if (shown >= expected) return;
    await new Promise((resolve) => setTimeout(resolve, 2_000));
  }
  throw new Error(`our EndpointSlices showed ${shown} of ${expected} pods after ${timeoutMs / 1000} s`);
}

/** What the aggregator holds that grows with the cluster: reports (count, JSON size of their specs) and its own slices. */
async function heldObjects() {
  const reports = await system.clients.http.request<{ items: { spec?: unknown }[] }>({
    method: "GET",
    path: `/apis/${group}/${version}/namespaces/${defaultSystemNamespace}/${reportPlural}`,
  });
  const slices = await system.clients.http.request<{ items: unknown[] }>({
    method: "GET",
    path: `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`,
    query: { labelSelector: `${labels.managedBy}=${sliceManagedBy}` },
  });
  return {
    reports: reports.items.length,
    reportSpecsKb: Math.round(reports.items.reduce((sum, report) => sum + JSON.stringify(report.spec ?? {}).length, 0) / 1024),
    endpointSlices: slices.items.length,
  };
}

function figures(stats: ProcStats | undefined) {
  return { peakRssMb: stats?.peakRssMb, rssMb: stats?.rssMb, cpuSeconds: stats?.cpuSeconds };
}

async function metricsOf(program: Program): Promise<string> {
  return (await fetch(`http://127.0.0.1:${program.metricsPort}/metrics`)).text();
}

/**
 * V8's heap at the end, from prom-client's gauges: in use (what the program
 * holds and garbage not yet collected), its total size, and memory outside
 * it (buffers).
 */
function heapMb(metrics: string) {
  const mb = (name: string) => {
    const bytes = new RegExp(`^${name} (\\S+)$`, "m").exec(metrics)?.[1];
    return bytes === undefined ? undefined : round2(Number(bytes) / 2 ** 20);
  };
  return { usedMb: mb("nodejs_heap_size_used_bytes"), totalMb: mb("nodejs_heap_size_total_bytes"), externalMb: mb("nodejs_external_memory_bytes") };
}

/** API writes (create, apply, update, patch, delete) answered with 2xx, from the program's netservice_api_requests_total. */
function successfulWrites(text: string): number {
  let writes = 0;
  for (const [, labels, value] of text.matchAll(/^netservice_api_requests_total\{([^}]*)\} (\S+)$/gm)) {
    if (/verb="(create|apply|update|patch|delete)"/.test(labels!) && /code="2\d\d"/.test(labels!)) writes += Number(value);
  }
  return writes;
}

function count(name: string, value: string | undefined, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer of at least ${min}, not ${value}`);
  return n;
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
