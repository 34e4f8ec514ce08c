// Peak memory of the two programs under the quick benchmark's load, without
// the benchmark's latency machinery: a local control plane, 10 simulated
// nodes, 5 NetServices and 100 pods, then 30 s of churn at the quick preset's
// rates (per second: 2 creations, 2 deletions, 10 readiness flips, 4 address
// changes). The aggregator and sim-node-0's agent run as processes of their
// own (the admin kubeconfig, a client certificate); the other agents run in
// this process. Prints one JSON line: VmHWM, VmRSS and CPU seconds (since
// start) of both at the end, and the API writes each made that succeeded
// (from its /metrics, read after the memory), which shows that it worked.
//
//   node hack/mem/load.ts
//   node hack/mem/load.ts --node-option=--max-semi-space-size=1      Node flags for both programs
//   node hack/mem/load.ts --agent=dist/node-agent.js --aggregator=dist/aggregator.js   other entry points
import path from "node:path";
import { parseArgs } from "node:util";
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
  },
});

const namespace = "mem";
const nodes = 10;
const netServices = 5;
const pods = 100;
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
  const create = async () => {
    const name = `pod-${serial++}`;
    live.push(name);
    await applier.apply(podManifest(namespace, { name, nodeName: `sim-node-${serial % nodes}`, netService: serial % netServices, gracePeriodSeconds: 1 }));
  };
  say(`creating ${pods} pods`);
  for (let i = 0; i < pods; i += 10) await Promise.all(Array.from({ length: 10 }, create));
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
  const figures = (stats: ProcStats | undefined) => ({ peakRssMb: stats?.peakRssMb, rssMb: stats?.rssMb, cpuSeconds: stats?.cpuSeconds });
  const memory = { agent: figures(readProcStats(agent.process.pid)), aggregator: figures(readProcStats(aggregator.process.pid)) };
  process.stdout.write(`${JSON.stringify({
    agent: { ...memory.agent, writes: await successfulWrites(agent) },
    aggregator: { ...memory.aggregator, writes: await successfulWrites(aggregator) },
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

/** API writes (create, apply, update, patch, delete) answered with 2xx, from the program's netservice_api_requests_total. */
async function successfulWrites(program: Program): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${program.metricsPort}/metrics`)).text();
  let writes = 0;
  for (const [, labels, value] of text.matchAll(/^netservice_api_requests_total\{([^}]*)\} (\S+)$/gm)) {
    if (/verb="(create|apply|update|patch|delete)"/.test(labels!) && /code="2\d\d"/.test(labels!)) writes += Number(value);
  }
  return writes;
}
