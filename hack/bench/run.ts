// One benchmark run, start to finish:
//
//   1. The local system (control plane, simulated nodes with the fake kubelet
//      and Multus, one node agent per node in this process), with the API
//      server's audit log on, and deploy/ installed; the aggregator and the
//      agent of sim-node-0 run as processes of their own, as deployed, so
//      their CPU and memory are theirs alone. Every agent and the aggregator
//      hold their own service account's token, bound to their pod as the
//      kubelet mounts it, and queue in API Priority and Fairness where
//      kube-controller-manager's controllers do (apf.ts).
//   2. The observer thread watches both sides; NetServices are created.
//   3. Bulk: nodes x podsPerNode pods at once; converged when every pod is
//      ready on our EndpointSlices (and, separately, on Kubernetes').
//   4. Churn: creations, deletions, readiness flips and address changes at
//      the configured rates for durationSeconds, while a ConfigMap and a
//      report-sized custom resource are written for the floor; then every
//      event is waited for (or times out).
//   5. Counters, /proc figures and the audit log are read; everything stops.
//
// Every event's t0 is the moment the harness (deletions) or the fake
// kubelet/Multus (everything else) sent the write, taken just before the
// request; every arrival is taken by the observer thread as the watch event
// is decoded. Both are Date.now(), the same clock.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Applier } from "../../common/kube/apply.ts";
import { makeClients, type KubeClients } from "../../common/kube/client.ts";
import { isNotFound } from "../../common/kube/http.ts";
import { createRootLogger } from "../../common/log.ts";
import { freePort, startProcess, type ManagedProcess } from "../cluster/process.ts";
import { LocalSystem, repoRoot } from "../local-system.ts";
import { agentAsDeployed, aggregatorAsDeployed, deployedNodeOptions, installDeploy, writeTokenKubeconfig } from "../credentials.ts";
import { applyManifests, loadManifests } from "../manifests.ts";
import { classify, controllersFlowSchema, unfairness, type ApfClasses } from "./apf.ts";
import { auditByVerb, auditFlags, auditWrites, countAudit, benchUserAgents, programs, type AuditCounts } from "./audit.ts";
import { eventKinds, LatencyMatcher, sides, summarise, type EventKind, type PodEvent, type Settled, type Side, type Target } from "./latency.ts";
import { startObserver, floorLabel, floorSeqAnnotation, type FloorProbe, type Observer, type ObserverMessage } from "./observer.ts";
import type { BenchParams, ProgramsMode } from "./params.ts";
import { bundlePrograms } from "../bundle.ts";
import { cpuSecondsBetween, readProcStats, type ProcStats } from "./proc-stats.ts";
import { byVerb, RequestCounter, writesOf, type RequestCounts } from "./request-counter.ts";
import { agentProcessGroup, type BenchResult, type LatencyFigures, type ProcessFigures } from "./result.ts";
import { benchNetworkKey, netServiceManifest, netServiceName, podManifest, PodPool, type BenchPod } from "./workload.ts";
import { seededRandom } from "../sim/random.ts";
import { apiVersion, defaultSystemNamespace, labels, reportKind, reportPlural } from "../../common/api.ts";

export const benchNamespace = "bench";
const representativeNode = "sim-node-0";
const kubernetesVersion = "v1.36.3";
const systemNamespace = defaultSystemNamespace;
/** Tokens outlive the longest run; a kubelet would refresh them hourly instead. */
const tokenSeconds = 6 * 3600;

export type Progress = (line: string) => void;

/** The result without the chart's file name, and the latencies the chart draws. */
export type BenchRunOutput = { result: Omit<BenchResult, "chart">; samples: Record<"slices" | "endpoints" | "kube" | "floor", number[]> };

export async function runBench(params: BenchParams, progress: Progress): Promise<BenchRunOutput> {
  const run = new BenchRun(params, progress);
  try {
    return await run.execute();
  } catch (err) {
    progress(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    throw err;
  } finally {
    await run.stop();
  }
}

type Snapshot = {
  at: number;
  procs: Map<string, ProcStats | undefined>;
  agentRequests: RequestCounts;
  /** The programs' own metrics (client-side request counts and more), as flat "name labels" -> value. */
  aggregatorMetrics: Map<string, number>;
  agentMetrics: Map<string, number>;
  revisions: Record<Side, number>;
};

type Child = { process: ManagedProcess; metricsPort: number };

class BenchRun {
  readonly #params: BenchParams;
  readonly #progress: Progress;
  readonly #random = seededRandom(1);
  readonly #agentCounter = new RequestCounter();
  readonly #pool: PodPool;
  readonly #bulk: LatencyMatcher;
  readonly #churn: LatencyMatcher;
  /** Which phase created a pod (by name), so its creation is timed in that phase. */
  readonly #createdIn = new Map<string, "bulk" | "churn">();
  readonly #awaitingCreate = new Set<string>();
  readonly #createSettled = new Set<string>();
  /** Per side, when the last bulk pod was shown ready there. */
  readonly #bulkConvergedAt = new Map<Side, number>();
  readonly #actionsInFlight = new Set<string>();
  readonly #addressChangeRequested = new Set<string>();
  readonly #floorSent: Record<FloorProbe, Map<number, number>> = { configmap: new Map(), report: new Map() };
  readonly #floorSamples: Record<FloorProbe, number[]> = { configmap: [], report: [] };
  #floorReportBytes = 0;
  #apf: ApfClasses | undefined;
  readonly #revisions: Record<Side, number> = { slices: 0, endpoints: 0, reports: 0, kube: 0 };
  readonly #issued = Object.fromEntries(eventKinds.map((kind) => [kind, 0])) as Record<EventKind, number>;
  #skipped = 0;
  #failed = 0;
  #bulkRunningAt = 0;
  #bulkRunning = 0;
  #workDir = "";
  #auditLog: string | undefined;
  #system: LocalSystem | undefined;
  #clients: KubeClients | undefined;
  #aggregator: Child | undefined;
  #agent: Child | undefined;
  #observer: Observer | undefined;
  #expiry: NodeJS.Timeout | undefined;

  constructor(params: BenchParams, progress: Progress) {
    this.#params = params;
    this.#progress = progress;
    this.#pool = new PodPool(this.#random);
    // Bulk events wait as long as convergence may take; churn events as long as the parameters say.
    this.#bulk = new LatencyMatcher({
      timeoutMs: Math.max(600, params.eventTimeoutSeconds) * 1000,
      onSettled: (settled) => {
        this.#bulkSettled(settled);
        this.#settled(settled);
      },
    });
    this.#churn = new LatencyMatcher({ timeoutMs: params.eventTimeoutSeconds * 1000, onSettled: (settled) => this.#settled(settled) });
  }

  async execute(): Promise<BenchRunOutput> {
    const params = this.#params;
    const startedAt = Date.now();
    const loadAverageBefore = os.loadavg().map(round2);
    await this.#startSystem();
    const system = this.#system as LocalSystem;
    const clients = this.#clients as KubeClients;
    await waitFor("every NetService's Endpoints", 300_000, async () => {
      const list = await clients.http.request<{ items: unknown[] }>({
        method: "GET",
        path: `/api/v1/namespaces/${benchNamespace}/endpoints`,
        query: { labelSelector: "endpointslice.kubernetes.io/skip-mirror=true" },
      });
      return list.items.length >= params.netServices;
    });

    const nodeNames = system.sim.nodes.list().map((node) => node.name);
    this.#nodeNames = nodeNames;
    const total = params.nodes * params.podsPerNode;
    this.#progress(`bulk: creating ${total} pods on ${params.nodes} nodes for ${params.netServices} NetServices`);
    const bulkStart = await this.#snapshot();
    await forEachLimit(total, 32, async (i) => {
      // Round r puts one pod on every node; successive rounds shift the NetService, so each spans many nodes.
      const node = i % params.nodes;
      const netService = (i + Math.floor(i / params.nodes)) % params.netServices;
      await this.#createPod(`bench-${i}`, nodeNames[node] as string, netService, "bulk");
    });
    const createSeconds = (Date.now() - bulkStart.at) / 1000;
    this.#progress(`bulk: ${total} pods created in ${createSeconds.toFixed(1)} s; waiting until both sides show them`);
    await waitFor("the bulk pods on both sides", Math.max(600, params.eventTimeoutSeconds) * 1000 + 30_000, async () => {
      this.#bulk.expire(Date.now());
      return this.#bulk.events("create") >= total && this.#bulk.pendingCount === 0;
    }, 250);
    const bulkEnd = await this.#snapshot();
    const convergedAt = (side: Side) => this.#bulkConvergedAt.get(side);
    const converge = (side: Side) => {
      const at = convergedAt(side);
      return this.#bulk.missed(side) > 0 || at === undefined ? null : round2((at - bulkStart.at) / 1000);
    };
    this.#progress(
      `bulk: ours converged in ${converge("slices") ?? "(missed)"} s, Kubernetes' in ${converge("kube") ?? "(missed)"} s`,
    );

    this.#progress(`churn: ${describeChurn(params)} for ${params.durationSeconds} s`);
    const churnStart = await this.#snapshot();
    const floorWriters = [this.#writeFloor("configmap", this.#configMapFloor()), this.#writeFloor("report", await this.#reportFloor())];
    await this.#churnFor(params.durationSeconds * 1000);
    for (const writer of floorWriters) writer.stop();
    await Promise.all(floorWriters.map((writer) => writer.done));
    this.#progress(`churn: waiting for ${this.#churn.pendingCount} events still in flight`);
    await waitFor("the churn events", params.eventTimeoutSeconds * 1000 + 30_000, async () => {
      this.#churn.expire(Date.now());
      return this.#churn.pendingCount === 0 && this.#actionsInFlight.size === 0;
    }, 250);
    // Late watch events of the last writes (a relist, a second slice) still count as the churn's cost.
    await sleep(1000);
    const churnEnd = await this.#snapshot();
    const audit = await this.#readAudit(churnStart.at, churnEnd.at);
    const loadAverageAfter = os.loadavg().map(round2);

    const result = await this.#result({
      startedAt,
      loadAverageBefore,
      loadAverageAfter,
      snapshots: { bulkStart, bulkEnd, churnStart, churnEnd },
      bulk: { pods: total, createSeconds: round2(createSeconds), converge },
      audit,
    });
    const kubeVisible = eventKinds.filter((kind) => kind !== "address");
    const samples = (side: Side) => kubeVisible.flatMap((kind) => this.#churn.samples(side, kind));
    return { result, samples: { slices: samples("slices"), endpoints: samples("endpoints"), kube: samples("kube"), floor: [...this.#floorSamples.configmap] } };
  }

  async stop(): Promise<void> {
    if (this.#expiry) clearInterval(this.#expiry);
    await this.#observer?.stop().catch(() => undefined);
    await Promise.all([this.#aggregator?.process.stop(), this.#agent?.process.stop()]);
    await this.#system?.stop().catch((err: unknown) => this.#progress(`stopping the local system failed: ${String(err)}`));
    await this.#clients?.close();
    if (this.#params.keep) this.#progress(`kept ${this.#workDir} (program logs, audit log) and ${this.#system?.plane.dir} (control-plane logs)`);
    else if (this.#workDir) await rm(this.#workDir, { recursive: true, force: true });
  }

  async #startSystem() {
    const params = this.#params;
    this.#workDir = await mkdtemp(path.join(os.tmpdir(), "netservice-bench-"));
    const audit = params.audit ? await auditFlags(this.#workDir) : undefined;
    this.#auditLog = audit?.logFile;
    const logger = createRootLogger({ env: { LOG_LEVEL: process.env.LOG_LEVEL ?? "warn", LOG_FORMAT: "text" }, destination: process.stderr });
    this.#progress("starting the control plane");
    // Nodes and agents come after the NetServices (see below), so the system starts with none.
    const system = await LocalSystem.start({
      nodes: 0,
      report: this.#progress,
      logger,
      plane: {
        keepDir: params.keep,
        extraFlags: {
          ...(audit ? { "kube-apiserver": audit.flags } : {}),
          ...(params.kcmFlags.length > 0 ? { "kube-controller-manager": params.kcmFlags } : {}),
        },
      },
      agent: { debounceMs: params.agentDebounceMs, heartbeatIntervalMs: params.agentHeartbeatSeconds * 1000 },
      inProcessAggregator: false,
      // Each agent as deployed: its own clients, with a token bound to its pod on its node.
      agentClientsFor: async (nodeName) => (await this.#agentCredentials(nodeName, benchUserAgents.agents)).clients,
      sim: {
        // IPv4 pods, as the benchmark's network: Kubernetes' side then publishes one slice per 100 pods, like ours.
        layout: { ipFamilies: ["IPv4"] },
        ...(params.simWorkers > 0 ? { kubeletWorkers: params.simWorkers, multusWorkers: params.simWorkers } : {}),
        maxGracePeriodMs: params.gracePeriodSeconds * 1000,
        onStatusWritten: (event) => {
          if (event.namespace !== benchNamespace) return;
          if (event.started) this.#podStarted(event.namespace, event.name, event.uid, event.startedAt, event.nodeName);
          else this.#expectChurn({ kind: event.ready ? "ready" : "unready", uid: event.uid, t0: event.startedAt, targets: readinessTargets(event.ready) }, event.nodeName);
        },
        onAnnotationWritten: (event) => {
          if (event.namespace !== benchNamespace || !this.#addressChangeRequested.delete(event.uid)) return;
          const addresses = this.#secondaryAddresses(event.namespace, event.name);
          this.#expectChurn({ kind: "address", uid: event.uid, t0: event.startedAt, targets: ours({ kind: "addresses", addresses }) });
        },
        onPodRemoved: (event) => {
          if (event.namespace !== benchNamespace) return;
          // The Endpoints left the pod out when it began terminating, as upstream's Endpoints controller does: nothing to show there now.
          const { endpoints: _, ...removed } = everySide({ kind: "absent" });
          this.#expectChurn({ kind: "remove", uid: event.uid, t0: event.startedAt, targets: removed });
        },
      },
    });
    this.#system = system;
    const clients = makeClients(system.kubeConfig, { userAgent: benchUserAgents.harness, maxConnections: 16 });
    this.#clients = clients;

    this.#progress(`installing deploy/ (RBAC, admission policies, the aggregator's Deployment)${params.apf === "same-level" ? " and a FlowSchema putting our service accounts in kube-controller-manager's priority level" : ""}`);
    await installDeploy(system.plane);
    if (params.apf === "same-level") await new Applier(clients.http, { fieldManager: "netservice-bench" }).apply(controllersFlowSchema(systemNamespace));

    // Every NetService gets an entry in every node's report, so NetServices
    // created while a thousand agents run would make each agent rewrite its
    // report once per NetService (see docs/performance.md): they come first.
    this.#progress(`creating the namespace and ${params.netServices} NetServices`);
    const applier = new Applier(clients.http, { fieldManager: "netservice-bench" });
    await applyManifests(applier, clients.http, [
      ...(await loadManifests(path.join(repoRoot, "hack", "demo", "networks.yaml"))),
      { apiVersion: "v1", kind: "Namespace", metadata: { name: benchNamespace } },
    ]);
    await waitFor("the namespace's default ServiceAccount", 60_000, async () =>
      exists(clients, `/api/v1/namespaces/${benchNamespace}/serviceaccounts/default`),
    );
    await forEachLimit(params.netServices, 16, async (i) => {
      await applier.apply(netServiceManifest(benchNamespace, i));
    });

    this.#progress(`adding ${params.nodes} simulated nodes and their agents (sim-node-0's and the aggregator in processes of their own, as deployed)`);
    const nodes = await system.sim.addNodes(params.nodes);
    const kubeconfig = system.plane.kubeconfig;
    const agentKubeconfig = path.join(this.#workDir, "agent.kubeconfig");
    const agentCredentials = await this.#agentCredentials(representativeNode);
    await writeTokenKubeconfig(kubeconfig, agentCredentials.token, agentKubeconfig);
    const programs = await programFiles(params.programs, this.#workDir);
    this.#agent = await this.#startChild("agent", programs.agent, [
      `--kubeconfig=${agentKubeconfig}`,
      `--node-name=${representativeNode}`,
      `--debounce-ms=${params.agentDebounceMs}`,
      `--heartbeat-interval-seconds=${params.agentHeartbeatSeconds}`,
    ], deployedNodeOptions(agentCredentials.pod));
    const inProcess = nodes.filter((node) => node.name !== representativeNode);
    await forEachLimit(inProcess.length, 16, async (i) => {
      await system.startAgent((inProcess[i] as { name: string }).name);
    });
    const aggregator = await aggregatorAsDeployed(clients, kubeconfig, systemNamespace, { expirationSeconds: tokenSeconds });
    await aggregator.clients.close();
    const aggregatorKubeconfig = path.join(this.#workDir, "aggregator.kubeconfig");
    await writeTokenKubeconfig(kubeconfig, aggregator.token, aggregatorKubeconfig);
    this.#aggregator = await this.#startChild("aggregator", programs.aggregator, [
      `--kubeconfig=${aggregatorKubeconfig}`,
      "--no-leader-elect",
      `--identity=${aggregator.pod.metadata.name}`,
      `--workers=${params.aggregatorWorkers}`,
      ...params.aggregatorFlags,
    ], deployedNodeOptions(aggregator.pod));

    this.#apf = await this.#classify(agentCredentials.token, aggregator.token);

    this.#observer = startObserver({ kubeconfig, namespace: benchNamespace });
    this.#observer.onMessage((message) => this.#observed(message));
    await this.#observer.synced;
    this.#expiry = setInterval(() => {
      const now = Date.now();
      this.#bulk.expire(now);
      this.#churn.expire(now);
    }, 1000);
  }

  /** A program process as deployed: deploy/'s Node.js flags (deployedNodeOptions), then --node-option's, which win. */
  async #startChild(name: "agent" | "aggregator", program: string, args: string[], deployedFlags: string[]): Promise<Child> {
    const metricsPort = this.#params.metricsPorts[name] || (await freePort());
    const child = startProcess(
      name,
      process.execPath,
      [...deployedFlags, ...this.#params.nodeOptions, program, ...args, `--metrics-port=${metricsPort}`],
      path.join(this.#workDir, `${name}.log`),
      // As deployed: without the NODE_OPTIONS of whatever started the benchmark (a test runner's loaders, say).
      { ...process.env, NODE_OPTIONS: "", LOG_LEVEL: process.env.LOG_LEVEL ?? "warn" },
    );
    const died = child.exited.then((code) => {
      throw new Error(`the ${name} process exited (${code}) during start-up:\n${child.logTail()}`);
    });
    died.catch(() => undefined);
    await Promise.race([
      waitFor(`the ${name} process to be ready`, 120_000, async () => (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).ok),
      died,
    ]);
    return { process: child, metricsPort };
  }

  /** The agent's pod on the node, as the DaemonSet would place it, and a token bound to it; clients count their requests. */
  async #agentCredentials(nodeName: string, userAgent?: string) {
    const credentials = await agentAsDeployed(this.#clients as KubeClients, (this.#system as LocalSystem).plane.kubeconfig, systemNamespace, nodeName, {
      expirationSeconds: tokenSeconds,
      ...(userAgent ? { userAgent } : {}),
      clients: { observer: this.#agentCounter.observer },
    });
    if (!userAgent) await credentials.clients.close();
    return credentials;
  }

  /** Where APF puts each side, as the API server says; with --apf same-level, a run where they differ is refused. */
  async #classify(agentToken: string, aggregatorToken: string): Promise<ApfClasses> {
    const plane = (this.#system as LocalSystem).plane;
    const [ca, cert, key] = await Promise.all([plane.pki.caCert, plane.pki.clients.admin.cert, plane.pki.clients.admin.key].map((file) => readFile(file)));
    const asKube = (serviceAccount: string) => ({ impersonate: `system:serviceaccount:kube-system:${serviceAccount}`, cert: cert as Buffer, key: key as Buffer });
    const classes = await classify(plane.server, ca as Buffer, {
      agent: { token: agentToken },
      aggregator: { token: aggregatorToken },
      "kube-endpointslice": asKube("endpointslice-controller"),
      "kube-endpoints": asKube("endpoint-controller"),
    }, (this.#clients as KubeClients).http);
    const problem = unfairness(classes);
    this.#progress(`API priority: ${Object.entries(classes).map(([name, c]) => `${name} ${c.priorityLevel} (${c.flowSchema})`).join(", ")}`);
    if (problem && this.#params.apf === "same-level") throw new Error(problem);
    return classes;
  }

  #observed(message: ObserverMessage) {
    switch (message.type) {
      case "pod":
        this.#bulk.observe(message);
        this.#churn.observe(message);
        return;
      case "revision":
        this.#revisions[message.side]++;
        return;
      case "floor": {
        const sent = this.#floorSent[message.probe].get(message.seq);
        if (sent === undefined) return;
        this.#floorSent[message.probe].delete(message.seq);
        this.#floorSamples[message.probe].push(message.at - sent);
        return;
      }
      default:
        return;
    }
  }

  #podStarted(namespace: string, name: string, uid: string, t0: number, nodeName: string) {
    const phase = this.#createdIn.get(name);
    if (!phase) return;
    const addresses = this.#secondaryAddresses(namespace, name);
    const event: PodEvent = {
      kind: "create",
      uid,
      t0,
      targets: { ...ours({ kind: "ready", addresses }), kube: { kind: "ready" } },
    };
    if (phase === "bulk") {
      this.#bulkRunning++;
      this.#bulkRunningAt = Math.max(this.#bulkRunningAt, Date.now());
      this.#bulk.expect(event);
    } else {
      this.#expectChurn(event, nodeName);
    }
  }

  /** Events on the node of the agent process are also counted on their own: its hop, apart from the in-process agents'. */
  #expectChurn(event: PodEvent, nodeName = this.#pool.get(event.uid)?.nodeName) {
    this.#issued[event.kind]++;
    this.#churn.expect(nodeName === representativeNode ? { ...event, group: agentProcessGroup } : event);
  }

  #bulkSettled({ event, latencies }: Settled) {
    for (const side of sides) {
      const latency = latencies[side];
      if (latency !== undefined) this.#bulkConvergedAt.set(side, Math.max(this.#bulkConvergedAt.get(side) ?? 0, event.t0 + latency));
    }
  }

  #settled({ event }: Settled) {
    if (event.kind === "create") {
      this.#awaitingCreate.delete(event.uid);
      this.#createSettled.add(event.uid);
    }
    if (event.kind === "remove") {
      this.#pool.remove(event.uid);
      this.#bulk.forget(event.uid);
      this.#churn.forget(event.uid);
      return;
    }
    this.#maybeFree(event.uid);
  }

  #maybeFree(uid: string) {
    const pod = this.#pool.get(uid);
    if (!pod || pod.deleting) return;
    if (this.#actionsInFlight.has(uid) || this.#awaitingCreate.has(uid) || this.#bulk.isPending(uid) || this.#churn.isPending(uid)) return;
    pod.busy = false;
  }

  #secondaryAddresses(namespace: string, name: string): string[] {
    return this.#system?.sim.multus.addressesOf(namespace, name).get(benchNetworkKey) ?? [];
  }

  async #createPod(name: string, nodeName: string, netService: number, phase: "bulk" | "churn") {
    const clients = this.#clients as KubeClients;
    this.#createdIn.set(name, phase);
    const created = await clients.http.request<{ metadata: { uid: string } }>({
      method: "POST",
      path: `/api/v1/namespaces/${benchNamespace}/pods`,
      body: podManifest(benchNamespace, { name, nodeName, netService, gracePeriodSeconds: this.#params.gracePeriodSeconds }),
    });
    const uid = created.metadata.uid;
    // Until its creation is seen on every side, no other event may touch it (it may, rarely, have been seen already).
    if (!this.#createSettled.has(uid)) this.#awaitingCreate.add(uid);
    this.#pool.add({ namespace: benchNamespace, name, uid, nodeName, ready: true, busy: true, deleting: false });
    this.#maybeFree(uid);
  }

  async #churnFor(durationMs: number) {
    const { churn } = this.#params;
    const rates: [keyof typeof churn, () => void][] = [
      ["creations", () => this.#churnCreate()],
      ["deletions", () => this.#churnDelete()],
      ["readinessFlips", () => this.#churnFlip()],
      ["addressChanges", () => this.#churnAddress()],
    ];
    const credit = new Map<string, number>();
    const start = Date.now();
    let last = start;
    while (Date.now() - start < durationMs) {
      await sleep(10);
      const now = Date.now();
      const seconds = (now - last) / 1000;
      last = now;
      for (const [name, launch] of rates) {
        let due = (credit.get(name) ?? 0) + churn[name] * seconds;
        for (; due >= 1; due--) launch();
        credit.set(name, due);
      }
    }
  }

  #nodeNames: string[] = [];
  #churnCreated = 0;

  #churnCreate() {
    const name = `bench-c${this.#churnCreated++}`;
    const node = this.#nodeNames[Math.floor(this.#random() * this.#nodeNames.length)] as string;
    const netService = Math.floor(this.#random() * this.#params.netServices);
    this.#track(name, this.#createPod(name, node, netService, "churn"));
  }

  #churnDelete() {
    // A ready pod, so that each side has a change to show: an unready one looks the same while it terminates.
    const pod = this.#pickIdle((candidate) => candidate.ready);
    if (!pod) return;
    pod.deleting = true;
    pod.busy = true;
    const clients = this.#clients as KubeClients;
    const t0 = Date.now();
    this.#expectChurn({ kind: "delete", uid: pod.uid, t0, targets: everySide({ kind: "notServing" }) });
    this.#track(pod.uid, clients.http.request({
      method: "DELETE",
      path: `/api/v1/namespaces/${pod.namespace}/pods/${pod.name}`,
      body: { preconditions: { uid: pod.uid } },
    }));
  }

  #churnFlip() {
    const pod = this.#pickIdle();
    if (!pod) return;
    pod.busy = true;
    const ready = !pod.ready;
    this.#track(pod.uid, (this.#system as LocalSystem).sim.setReady(pod.namespace, pod.name, ready).then(() => {
      pod.ready = ready;
    }));
  }

  #churnAddress() {
    const pod = this.#pickIdle();
    if (!pod) return;
    pod.busy = true;
    this.#addressChangeRequested.add(pod.uid);
    this.#track(pod.uid, (this.#system as LocalSystem).sim.multus.changeAddress(pod.namespace, pod.name, benchNetworkKey).then(() => undefined));
  }

  #pickIdle(also: (pod: BenchPod) => boolean = () => true): BenchPod | undefined {
    const pod = this.#pool.pick((candidate) => !candidate.busy && !candidate.deleting && also(candidate));
    if (!pod) this.#skipped++;
    return pod;
  }

  #track(id: string, action: Promise<unknown>) {
    this.#actionsInFlight.add(id);
    action
      .catch((err: unknown) => {
        this.#failed++;
        this.#progress(`churn action on ${id} failed: ${err instanceof Error ? err.message : String(err)}`);
      })
      .finally(() => {
        this.#actionsInFlight.delete(id);
        this.#maybeFree(id);
      });
  }

  /**
   * Writes one floor probe's object every 1/floorWritesPerSecond s, one write
   * at a time, and notes when each was sent: the observer times its watch event.
   */
  #writeFloor(probe: FloorProbe, write: (seq: number) => Promise<unknown>): { stop(): void; done: Promise<void> } {
    const intervalMs = 1000 / this.#params.floorWritesPerSecond;
    const sent = this.#floorSent[probe];
    let stopped = false;
    const done = (async () => {
      for (let seq = 0; !stopped; seq++) {
        if (seq > 0) await sleep(intervalMs);
        sent.set(seq, Date.now());
        await write(seq).catch(() => sent.delete(seq));
      }
    })();
    return { stop: () => (stopped = true), done };
  }

  /** A plain ConfigMap, created and then replaced. */
  #configMapFloor(): (seq: number) => Promise<unknown> {
    const http = (this.#clients as KubeClients).http;
    const path = `/api/v1/namespaces/${benchNamespace}/configmaps`;
    const body = (n: number) => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "bench-floor", namespace: benchNamespace, labels: { [floorLabel]: "true" } }, data: { seq: String(n) } });
    return (seq) => (seq === 0 ? http.request({ method: "POST", path, body: body(seq) }) : http.request({ method: "PUT", path: `${path}/bench-floor`, body: body(seq) }));
  }

  /**
   * A NetServiceNodeReport the size of the agent process's report (its spec
   * copied now, after the bulk phase), in the benchmark's namespace where no
   * agent or aggregator looks, written with server-side apply as the agents
   * write theirs: each write changes the trigger time, as theirs do.
   */
  async #reportFloor(): Promise<(seq: number) => Promise<unknown>> {
    const clients = this.#clients as KubeClients;
    const stored = await clients.http.request<{ items: { spec: Record<string, unknown> }[] }>({
      method: "GET",
      path: `/apis/${apiVersion}/namespaces/${systemNamespace}/${reportPlural}`,
      query: { labelSelector: `${labels.nodeName}=${representativeNode}` },
    });
    const spec = stored.items.map((item) => item.spec).sort((a, b) => JSON.stringify(b).length - JSON.stringify(a).length)[0];
    if (!spec) throw new Error(`no report of ${representativeNode} to copy for the report floor`);
    const applier = new Applier(clients.http, { fieldManager: "netservice-bench-floor" });
    const body = (seq: number) => ({
      apiVersion,
      kind: reportKind,
      metadata: { name: "bench-floor.0", namespace: benchNamespace, labels: { [floorLabel]: "true" }, annotations: { [floorSeqAnnotation]: String(seq) } },
      spec: { ...spec, nodeName: "bench-floor", triggerTime: new Date().toISOString() },
    });
    this.#floorReportBytes = JSON.stringify(body(0)).length;
    return (seq) => applier.apply(body(seq));
  }

  async #snapshot(): Promise<Snapshot> {
    const plane = (this.#system as LocalSystem).plane;
    const procs = new Map<string, ProcStats | undefined>();
    procs.set("aggregator", this.#aggregator && readProcStats(this.#aggregator.process.pid));
    procs.set("agent", this.#agent && readProcStats(this.#agent.process.pid));
    for (const [name, proc] of plane.processes) procs.set(name, readProcStats(proc.pid));
    procs.set("main", readProcStats(process.pid));
    const snapshot: Snapshot = {
      at: Date.now(),
      procs,
      agentRequests: this.#agentCounter.snapshot(),
      aggregatorMetrics: this.#aggregator ? flatten(await scrape(this.#aggregator.metricsPort)) : new Map(),
      agentMetrics: this.#agent ? flatten(await scrape(this.#agent.metricsPort)) : new Map(),
      revisions: { ...this.#revisions },
    };
    return snapshot;
  }

  async #readAudit(from: number, to: number): Promise<AuditCounts | undefined> {
    if (!this.#auditLog) return undefined;
    // The log is written in batches at most a second apart.
    await sleep(2500);
    return countAudit(this.#auditLog, { from, to });
  }

  async #result(input: {
    startedAt: number;
    loadAverageBefore: number[];
    loadAverageAfter: number[];
    snapshots: { bulkStart: Snapshot; bulkEnd: Snapshot; churnStart: Snapshot; churnEnd: Snapshot };
    bulk: { pods: number; createSeconds: number; converge: (side: Side) => number | null };
    audit: AuditCounts | undefined;
  }): Promise<Omit<BenchResult, "chart">> {
    const params = this.#params;
    const { bulkStart, bulkEnd, churnStart, churnEnd } = input.snapshots;
    const matcher = this.#churn;
    const kubeVisibleKinds = eventKinds.filter((kind) => kind !== "address");
    const figures = (side: Side, kinds: readonly EventKind[]): LatencyFigures => ({
      ...summarise(kinds.flatMap((kind) => matcher.samples(side, kind))),
      missed: kinds.reduce((sum, kind) => sum + matcher.missed(side, kind), 0),
    });
    const floorOf = (probe: FloorProbe): LatencyFigures => ({ ...summarise(this.#floorSamples[probe]), missed: this.#floorSent[probe].size });
    const floor = floorOf("configmap");
    const inGroup = (side: Side): LatencyFigures => ({
      ...summarise(kubeVisibleKinds.flatMap((kind) => matcher.samples(side, kind, agentProcessGroup))),
      missed: kubeVisibleKinds.reduce((sum, kind) => sum + matcher.missed(side, kind, agentProcessGroup), 0),
    });
    const ours = figures("slices", kubeVisibleKinds);
    const kube = figures("kube", kubeVisibleKinds);
    const byKind = Object.fromEntries(
      eventKinds.map((kind) => [kind, Object.fromEntries(sides.map((side) => [side, figures(side, [kind])]))]),
    ) as BenchResult["byKind"];

    const podChanges = eventKinds.reduce((sum, kind) => sum + this.#issued[kind], 0);
    const kubeVisible = kubeVisibleKinds.reduce((sum, kind) => sum + this.#issued[kind], 0);
    // The same counters, read at both ends of the churn phase (scraped now for the end, earlier for the start).
    const agentRequests = this.#agentCounter.since(churnStart.agentRequests);
    const aggregatorByKind: Record<string, number> = {};
    const aggregatorDelta = (key: string) => (churnEnd.aggregatorMetrics.get(key) ?? 0) - (churnStart.aggregatorMetrics.get(key) ?? 0);
    for (const key of churnEnd.aggregatorMetrics.keys()) {
      const match = /^netservice_aggregator_writes_total kind=(\S+) verb=(\S+)$/.exec(key);
      if (match && aggregatorDelta(key) > 0) aggregatorByKind[`${match[1]} ${match[2]}`] = aggregatorDelta(key);
    }
    const aggregatorWrites = Object.values(aggregatorByKind).reduce((a, b) => a + b, 0);
    const aggregatorRequests = requestsBetween(churnStart.aggregatorMetrics, churnEnd.aggregatorMetrics);
    const childAgentRequests = requestsBetween(churnStart.agentMetrics, churnEnd.agentMetrics);
    // The reports are what a pod change costs; the heartbeat Leases are a steady cost per node, whatever the
    // churn (as the kubelet's node Lease, which kube's figure leaves out too), so they are counted apart.
    const allAgentRequests = mergeCounts(agentRequests, childAgentRequests);
    const agentWrites = writesOf(allAgentRequests, "netservicenodereports");
    const agentHeartbeatWrites = writesOf(allAgentRequests, "leases");
    const reconciles = aggregatorDelta("netservice_aggregator_reconciles_total");
    const audit = input.audit;
    const apiServerWrites = audit
      ? Object.fromEntries(programs.map((program) => [program, auditWrites(audit, program)]))
      : null;
    const kubeWrites = audit ? auditWrites(audit, "kube-endpointslice") + auditWrites(audit, "kube-endpoints") : null;

    const processes: Record<string, ProcessFigures> = {};
    for (const [name, end] of churnEnd.procs) {
      if (!end) continue;
      processes[name] = {
        peakRssMb: end.peakRssMb,
        rssMb: end.rssMb,
        cpuSecondsBulk: cpuSecondsBetween(bulkStart.procs.get(name), bulkEnd.procs.get(name)),
        cpuSecondsChurn: cpuSecondsBetween(churnStart.procs.get(name), end),
      };
    }
    const perChange = (value: number, changes: number) => (changes > 0 ? round2(value / changes) : 0);
    return {
      parameters: params,
      environment: {
        cpus: os.cpus().length,
        loadAverageBefore: input.loadAverageBefore,
        loadAverageAfter: input.loadAverageAfter,
        node: process.version,
        kubernetes: kubernetesVersion,
        kubeControllerManagerFlags: params.kcmFlags,
        startedAt: new Date(input.startedAt).toISOString(),
        wallSeconds: round2((Date.now() - input.startedAt) / 1000),
      },
      ours: { ...ours, multipleOfFloorP50: ratio(ours.p50Ms, floor.p50Ms) },
      oursEndpoints: figures("endpoints", kubeVisibleKinds),
      oursReports: figures("reports", kubeVisibleKinds),
      kube: { ...kube, multipleOfFloorP50: ratio(kube.p50Ms, floor.p50Ms) },
      floor,
      floorReport: { ...floorOf("report"), bytes: this.#floorReportBytes },
      agentProcess: { node: representativeNode, reports: inGroup("reports"), slices: inGroup("slices") },
      apf: { mode: params.apf, classes: this.#apf ?? null },
      addressChanges: { slices: figures("slices", ["address"]), endpoints: figures("endpoints", ["address"]), reports: figures("reports", ["address"]) },
      byKind,
      podChanges: { total: podChanges, kubeVisible, byKind: { ...this.#issued }, skipped: this.#skipped, failed: this.#failed },
      writesPerPodChange: perChange(agentWrites + aggregatorWrites, podChanges),
      kubeWritesPerPodChange: kubeWrites === null ? null : perChange(kubeWrites, kubeVisible),
      writes: { agents: agentWrites, agentHeartbeats: agentHeartbeatWrites, aggregator: aggregatorWrites, aggregatorByKind, apiServer: apiServerWrites },
      aggregatorWork: {
        reconciles,
        podChangesPerReconcile: reconciles > 0 ? round2(podChanges / reconciles) : 0,
        staleCacheRequeues: aggregatorDelta("netservice_aggregator_stale_cache_requeues_total"),
        meanReconcileMs: meanMs(aggregatorDelta("netservice_aggregator_reconcile_duration_seconds_sum"), aggregatorDelta("netservice_aggregator_reconcile_duration_seconds_count")),
        meanQueueWaitMs: meanMs(aggregatorDelta("netservice_aggregator_queue_wait_seconds_sum"), aggregatorDelta("netservice_aggregator_queue_wait_seconds_count")),
      },
      revisionsPerPodChange: {
        slices: perChange(churnEnd.revisions.slices - churnStart.revisions.slices, podChanges),
        endpoints: perChange(churnEnd.revisions.endpoints - churnStart.revisions.endpoints, podChanges),
        reports: perChange(churnEnd.revisions.reports - churnStart.revisions.reports, podChanges),
        kube: perChange(churnEnd.revisions.kube - churnStart.revisions.kube, kubeVisible),
      },
      requests: {
        agentsClientSide: byVerb(allAgentRequests),
        aggregatorClientSide: byVerb(aggregatorRequests),
        apiServer: audit ? Object.fromEntries(programs.map((program) => [program, auditByVerb(audit, program)])) : null,
      },
      agentRssMb: processes.agent?.peakRssMb ?? Number.NaN,
      agentCpuSeconds: round2((processes.agent?.cpuSecondsBulk ?? 0) + (processes.agent?.cpuSecondsChurn ?? 0)),
      aggregatorRssMb: processes.aggregator?.peakRssMb ?? Number.NaN,
      processes,
      convergeSeconds: input.bulk.converge("slices"),
      kubeConvergeSeconds: input.bulk.converge("kube"),
      bulk: {
        pods: input.bulk.pods,
        createSeconds: input.bulk.createSeconds,
        allRunningSeconds: this.#bulkRunning >= input.bulk.pods ? round2((this.#bulkRunningAt - bulkStart.at) / 1000) : null,
        missed: Object.fromEntries(sides.map((side) => [side, this.#bulk.missed(side)])) as Record<Side, number>,
      },
    };
  }
}

function readinessTargets(ready: boolean): PodEvent["targets"] {
  return everySide(ready ? { kind: "ready" } : { kind: "unready" });
}

/** What our side (both hops) must show. */
function ours(target: Target): PodEvent["targets"] {
  return { reports: target, slices: target, endpoints: target };
}

function everySide(target: Target): PodEvent["targets"] {
  return { ...ours(target), kube: target };
}

function describeChurn(params: BenchParams): string {
  const { creations, deletions, readinessFlips, addressChanges } = params.churn;
  return `${creations} creations, ${deletions} deletions, ${readinessFlips} readiness flips and ${addressChanges} address changes per second`;
}

type Sample = { name: string; labels: Record<string, string>; value: number };

/** "name label=value ..." (labels sorted) -> value. */
function flatten(samples: Sample[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const { name, labels, value } of samples) {
    const labelText = Object.keys(labels).sort().map((label) => ` ${label}=${labels[label]}`).join("");
    out.set(`${name}${labelText}`, value);
  }
  return out;
}

/** Client-side requests (netservice_api_requests_total, answered ones) between two scrapes, as "verb resource" -> count. */
function requestsBetween(before: Map<string, number>, after: Map<string, number>): RequestCounts {
  const out: RequestCounts = {};
  for (const [key, value] of after) {
    const match = /^netservice_api_requests_total code=(\d+) resource=(\S*) verb=(\S+)$/.exec(key);
    if (!match || match[1] === "0") continue;
    const delta = value - (before.get(key) ?? 0);
    if (delta > 0) out[`${match[3]} ${match[2]}`] = (out[`${match[3]} ${match[2]}`] ?? 0) + delta;
  }
  return out;
}

function mergeCounts(a: RequestCounts, b: RequestCounts): RequestCounts {
  const out: RequestCounts = { ...a };
  for (const [key, count] of Object.entries(b)) out[key] = (out[key] ?? 0) + count;
  return out;
}

function meanMs(sumSeconds: number, count: number): number {
  return count > 0 ? round2((sumSeconds / count) * 1000) : 0;
}

async function scrape(port: number): Promise<Sample[]> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1] as string] = pair[2] as string;
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  return samples;
}

async function exists(clients: KubeClients, path: string): Promise<boolean> {
  try {
    await clients.http.request({ method: "GET", path });
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>, intervalMs = 200): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${lastError ? `: ${String(lastError)}` : ""}`);
}

async function forEachLimit(count: number, limit: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function ratio(value: number, floor: number): number {
  return floor > 0 ? round2(value / floor) : Number.NaN;
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

/** The files the two program processes run: bundled into the working directory (as the image runs them), or the sources. */
async function programFiles(mode: ProgramsMode, workDir: string): Promise<{ agent: string; aggregator: string }> {
  if (mode === "sources") {
    return { agent: path.join(repoRoot, "node-agent", "main.ts"), aggregator: path.join(repoRoot, "aggregator", "main.ts") };
  }
  const outdir = path.join(workDir, "dist");
  await bundlePrograms(outdir);
  return { agent: path.join(outdir, "node-agent.mjs"), aggregator: path.join(outdir, "aggregator.mjs") };
}
