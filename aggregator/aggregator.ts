// The aggregator's controller: node reports + NetServices -> each NetService's
// Services, Endpoints, EndpointSlices and status.
//
//   new Aggregator(clients, {identity, systemNamespace?, leaderElection = true, lease?, workers = 4, logger?, clock?, ...})
//     start(): Promise<void>   starts the informers, resolves once they are synced; leads (or waits to) in the background
//     stop(): Promise<void>    stops writing, releases the lease, stops the informers
//     ready, leading           accessors for health checks
//     metrics(): AggregatorMetrics   counters: writes by kind and verb, reconciles, durations, queue depth
//
// As upstream's controllers (docs/aggregator.md): this controller turns
// informer events into NetService keys (keys.ts) and runs the work queue
// while it leads; the reconciler (reconciler.ts) reads the caches
// (caches.ts), plans, and returns when to look again; the writer (writer.ts)
// makes every request; the status writer (status-writer.ts) writes the
// status each reconcile hands it, and its events, on a lane of its own.
// Informers run on every replica, so a standby holds warm caches; only the
// leader runs the queues and writes.
import type { V1Service } from "@kubernetes/client-node";
import { apiVersion, defaultSystemNamespace, netServiceKind } from "../common/api.ts";
import type { KubeClients } from "../common/kube/client.ts";
import { realClock, type Clock, type Timer } from "../common/kube/clock.ts";
import { EventRecorder } from "../common/kube/events.ts";
import type { KubeHttp } from "../common/kube/http.ts";
import { LeaderElector } from "../common/kube/leader.ts";
import type { KubeObject } from "../common/kube/object.ts";
import { WorkQueue, type ProcessedEvent } from "../common/kube/workqueue.ts";
import { createLogger, type Logger } from "../common/log.ts";
import type { NodeProblem } from "../common/merge.ts";
import { Caches } from "./caches.ts";
import { LeadershipLostError } from "./errors.ts";
import { Expectations } from "./expectations.ts";
import { netServiceKey, ownerKeyOf } from "./keys.ts";
import { ownedKinds } from "./plan.ts";
import { ReportVerifier } from "./pod-placement.ts";
import { Reconciler } from "./reconciler.ts";
import { readyState, StatusWriter, type ReadyState } from "./status-writer.ts";
import { Writer, type Term } from "./writer.ts";


export const defaultLeaseName = "netservice-aggregator";

export interface LeaseOptions {
  /** Default "netservice-aggregator". */
  name?: string;
  /** Default the system namespace. */
  namespace?: string;
  leaseDurationSeconds?: number;
  renewDeadlineSeconds?: number;
  retryPeriodSeconds?: number;
}

export interface AggregatorOptions {
  /** This replica, unique among replicas (the pod name): the lease holder and the events' reportingInstance. */
  identity: string;
  /** Where the reports (and by default the lease) live. Default netservice-system. */
  systemNamespace?: string;
  /** Default true. Without it, this replica writes as soon as its caches are synced: run exactly one. */
  leaderElection?: boolean;
  lease?: LeaseOptions;
  /** Concurrent reconciles (never two for the same NetService). Default 4. */
  workers?: number;
  logger?: Logger;
  clock?: Clock;
  /** How long a reconcile waits at most for the caches to show the aggregator's own writes. Default 60 s. */
  staleCacheTimeoutMs?: number;
  /** Delay before looking again when the caches have not caught up yet. Default 250 ms. */
  staleRequeueMs?: number;
  /** How often a NetService whose names are taken by other objects looks again. Default 30 s. */
  takenRecheckMs?: number;
  /** Status writes that change only the endpoint counts wait until this long after the NetService's last status write (pacing.ts). Default 1 s; 0 writes every change at once. */
  statusCountsIntervalMs?: number;
  /** A NetService's Endpoints and EndpointSlices are written at most once per this interval; a change after a quiet interval goes at once (pacing.ts). Default 0: every change at once. */
  minWriteIntervalMs?: number;
  /** At most one event per NetService and reason in this window. Default 5 min. */
  eventWindowMs?: number;
  /**
   * A node whose agent has not renewed its heartbeat Lease for this long has its endpoints published
   * not ready (node-liveness.ts). Default 40 s; 0 ignores heartbeats (the Node's own readiness still counts).
   */
  heartbeatTimeoutMs?: number;
  /** How often heartbeats are checked for staleness. Default 1 s. */
  livenessCheckMs?: number;
  /**
   * Publish a reported pod only once the API server confirms it runs on the reporting node (pod-placement.ts).
   * Default true; false only for tests that feed hand-written reports of pods that do not exist.
   */
  verifyPodPlacement?: boolean;
  /** Called after every reconcile (for a duration histogram). */
  onReconciled?: (event: Reconciled) => void;
  /** Passed to every informer (tests shorten them). */
  informer?: { staleAfterMs?: number; backoff?: { initialMs?: number; maxMs?: number } };
}

export type AggregatorMetrics = {
  leading: boolean;
  ready: boolean;
  /** Successful writes, by kind ("Service", ..., "NetService/status", "Event") and verb ("create", "apply", "delete"). */
  writes: { kind: string; verb: string; count: number }[];
  writeFailures: number;
  reconciles: number;
  reconcileErrors: number;
  /** Reconciles postponed because the caches did not show our own writes yet. */
  staleCacheRequeues: number;
  reconcileDurationMs: { count: number; sum: number; max: number };
  queueDepth: number;
  queueDelayed: number;
  /** Pods in the Endpoints of every NetService, ready and not ready (a pod with several addresses counts once). */
  endpointsPublished: { ready: number; notReady: number };
  /** Nodes whose endpoints are published not serving, by why (node-liveness.ts). */
  unhealthyNodes: { problem: NodeProblem; count: number }[];
  /** Reported endpoints not published: the pod runs on another node than the one reporting it, or does not exist (counted once per node and pod). */
  rejectedEndpoints: { otherNode: number; notFound: number };
  /** GETs of pods to check where they run: at most one per pod lifetime. */
  podReads: number;
  /** Every NetService's Ready condition, while leading (a standby exports none, so that each is counted once). */
  netServices: ReadyState[];
};

/** One finished reconcile. */
export type Reconciled = { key: string; queuedMs: number; workMs: number; failed: boolean };

export class Aggregator {
  private readonly http: KubeHttp;
  private readonly identity: string;
  private readonly systemNamespace: string;
  private readonly leaderElection: boolean;
  private readonly lease: LeaseOptions;
  private readonly workers: number;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly onReconciled: ((event: Reconciled) => void) | undefined;
  private readonly livenessCheckMs: number;
  private livenessTimer: Timer | undefined;

  private readonly caches: Caches;
  private readonly writer: Writer;
  private readonly reconciler: Reconciler;
  /** Writes each NetService's status on a lane of its own, off the reconcile path. */
  private readonly status: StatusWriter;
  /** Checks that reported pods run on the reporting node (pod-placement.ts); undefined: trust the reports. */
  private readonly verifier: ReportVerifier | undefined;

  private readonly stopController = new AbortController();
  private elector: LeaderElector | undefined;
  private running: Promise<void> | undefined;
  private term: (Term & { queue: WorkQueue }) | undefined;

  private counters = {
    reconciles: 0,
    reconcileErrors: 0,
    durationCount: 0,
    durationSum: 0,
    durationMax: 0,
  };

  constructor(clients: KubeClients, options: AggregatorOptions) {
    if (!options.identity) throw new Error("the aggregator needs an identity (e.g. the pod name)");
    const workers = options.workers ?? 4;
    if (!Number.isInteger(workers) || workers < 1) throw new Error(`workers must be a positive integer, got ${workers}`);
    this.http = clients.http;
    this.identity = options.identity;
    this.systemNamespace = options.systemNamespace ?? defaultSystemNamespace;
    this.leaderElection = options.leaderElection ?? true;
    this.lease = options.lease ?? {};
    this.workers = workers;
    this.log = options.logger ?? createLogger("aggregator", { identity: options.identity });
    this.clock = options.clock ?? realClock;
    this.onReconciled = options.onReconciled;
    this.livenessCheckMs = options.livenessCheckMs ?? 1000;

    this.caches = new Caches(clients.http, {
      systemNamespace: this.systemNamespace,
      clock: this.clock,
      logger: this.log,
      heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? 40_000,
      ...(options.informer ? { informer: options.informer } : {}),
    });
    const takenRecheckMs = options.takenRecheckMs ?? 30_000;
    this.writer = new Writer(clients.http, {
      expectations: new Expectations({ ttlMs: options.staleCacheTimeoutMs ?? 60_000 }),
      clock: this.clock,
      takenRecheckMs,
    });
    const status = new StatusWriter({
      writer: this.writer,
      current: (key) => this.caches.netService(key, this.writer.pending(key, (ref) => this.caches.lookup(ref), this.clock.now()).objects),
      events: new EventRecorder(this.writer.applier, {
        controller: `${apiVersion.split("/")[0]}/netservice-aggregator`,
        instance: options.identity,
        action: "Reconcile",
        clock: this.clock,
      }),
      eventWindowMs: options.eventWindowMs ?? 5 * 60_000,
      countsIntervalMs: options.statusCountsIntervalMs ?? 1000,
      clock: this.clock,
      logger: this.log,
    });
    this.verifier =
      options.verifyPodPlacement === false
        ? undefined
        : new ReportVerifier({ http: clients.http, now: () => this.clock.now(), podUids: () => this.caches.reportIndex.podUids() });
    this.status = status;
    this.reconciler = new Reconciler({
      caches: this.caches,
      writer: this.writer,
      status,
      verifier: this.verifier,
      clock: this.clock,
      logger: this.log,
      staleRequeueMs: options.staleRequeueMs ?? 250,
      takenRecheckMs,
      minWriteIntervalMs: options.minWriteIntervalMs ?? 0,
    });
    this.registerHandlers();
  }

  /** Every informer has listed once. */
  get ready(): boolean {
    return this.caches.ready;
  }

  /** This replica runs the work queue and may write. */
  get leading(): boolean {
    return this.term !== undefined;
  }

  metrics(): AggregatorMetrics {
    const c = this.counters;
    return {
      leading: this.leading,
      ready: this.ready,
      writes: this.writer.writes(),
      writeFailures: this.writer.writeFailures,
      reconciles: c.reconciles,
      reconcileErrors: c.reconcileErrors,
      staleCacheRequeues: this.reconciler.staleCacheRequeues,
      reconcileDurationMs: { count: c.durationCount, sum: c.durationSum, max: c.durationMax },
      queueDepth: this.term?.queue.depth ?? 0,
      queueDelayed: this.term?.queue.delayed ?? 0,
      endpointsPublished: this.reconciler.published(),
      unhealthyNodes: countProblems(this.caches.liveness.unhealthy(this.clock.now())),
      rejectedEndpoints: { ...(this.verifier?.counts ?? { otherNode: 0, notFound: 0 }) },
      podReads: this.verifier?.reads ?? 0,
      netServices: this.leading ? this.caches.netServices.list().map(readyState) : [],
    };
  }

  async start(): Promise<void> {
    if (this.running || this.stopController.signal.aborted) throw new Error("an aggregator starts once");
    const { informers } = this.caches;
    for (const informer of informers) informer.start();
    await Promise.all(informers.map((informer) => informer.synced));
    this.log.info(
      { netServices: this.caches.netServices.size, reports: this.caches.reports.size, nodes: this.caches.nodes.size },
      "caches synced",
    );
    if (this.stopController.signal.aborted) return;
    this.scheduleLivenessCheck();
    if (!this.leaderElection) {
      this.running = this.lead(this.stopController.signal);
      return;
    }
    this.elector = new LeaderElector({
      client: this.http,
      namespace: this.lease.namespace ?? this.systemNamespace,
      name: this.lease.name ?? defaultLeaseName,
      identity: this.identity,
      clock: this.clock,
      logger: this.log,
      ...(this.lease.leaseDurationSeconds !== undefined ? { leaseDurationSeconds: this.lease.leaseDurationSeconds } : {}),
      ...(this.lease.renewDeadlineSeconds !== undefined ? { renewDeadlineSeconds: this.lease.renewDeadlineSeconds } : {}),
      ...(this.lease.retryPeriodSeconds !== undefined ? { retryPeriodSeconds: this.lease.retryPeriodSeconds } : {}),
    });
    this.running = this.elector
      .run((signal) => this.lead(signal))
      .catch((err: unknown) => this.log.error({ err }, "leader election ended with an error"));
  }

  /** Stops writing at once, releases the lease (so the other replica takes over without waiting), stops the informers. */
  async stop(): Promise<void> {
    this.stopController.abort();
    this.livenessTimer?.cancel();
    await this.elector?.stop();
    await this.running;
    await Promise.all(this.caches.informers.map((informer) => informer.stop()));
  }

  /** Each handler keeps its index current and enqueues the NetServices the event concerns; nothing more. */
  private registerHandlers(): void {
    const { netServices, reports, nodes, heartbeats, owned, reportIndex, ownerIndex, liveness } = this.caches;
    netServices.onChange((event) => {
      if (event.type === "delete") this.reconciler.forget(event.key);
      // Our own status write: the reconcile that wrote it planned with what it returned (expectations.ts).
      if (this.writer.ownWrite(event.key, { kind: netServiceKind, key: event.key }, event)) return;
      this.enqueue(event.key);
    });
    reports.onChange((event) => {
      const report = event.type === "delete" ? undefined : event.object;
      if (report?.invalid) this.log.warn({ report: event.key, problems: report.invalid }, "ignoring a report that does not parse");
      for (const key of reportIndex.update(event.key, report?.spec, report ? nodeOwnerUid(report) : undefined)) this.enqueue(key);
    });
    nodes.onChange((event) => {
      if (liveness.node(event.key, event.type === "delete" ? undefined : event.object, this.clock.now())) {
        this.enqueueNode(event.key);
      }
    });
    heartbeats.onChange((event) => {
      if (liveness.heartbeat(event.key, event.type === "delete" ? undefined : event.object, this.clock.now())) {
        this.enqueueNode(event.key);
      }
    });
    for (const kind of ownedKinds) {
      owned[kind].onChange((event) => {
        const owner = ownerKeyOf(event.object);
        if (event.type === "delete") ownerIndex[kind].delete(event.key);
        else ownerIndex[kind].set(event.key, owner);
        if (owner && kind === "Service" && event.type !== "delete" && hasSelectorByHand(event.object, owner)) {
          // Kubernetes' controller is publishing primary addresses under the NetService's name; see foreign-slices.ts.
          this.reconciler.sweeps.repaired(owner, this.clock.now());
        }
        if (owner && !this.writer.ownWrite(owner, { kind, key: event.key }, event)) this.enqueue(owner);
        if (event.type === "update") {
          const previousOwner = ownerKeyOf(event.old);
          if (previousOwner && previousOwner !== owner) this.enqueue(previousOwner);
        }
      });
    }
  }

  private enqueue(key: string): void {
    this.term?.queue.add(key);
  }

  /** The NetServices with endpoints on a node whose health or existence changed. */
  private enqueueNode(nodeName: string): void {
    for (const key of this.caches.reportIndex.netServiceKeysOfNode(nodeName)) this.enqueue(key);
  }

  /** Heartbeats go stale with time alone, with no event to say so: look every livenessCheckMs. */
  private scheduleLivenessCheck(): void {
    if (this.stopController.signal.aborted) return;
    this.livenessTimer = this.clock.setTimer(() => {
      const { liveness } = this.caches;
      for (const nodeName of liveness.expire(this.clock.now())) {
        const health = liveness.health(nodeName, this.clock.now());
        this.log.info({ node: nodeName, serving: health?.serving, problem: health?.problem }, "node health changed");
        this.enqueueNode(nodeName);
      }
      this.scheduleLivenessCheck();
    }, this.livenessCheckMs);
  }

  /** One leadership term: a fresh queue with every NetService in it, until the signal aborts. */
  private async lead(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const queue = new WorkQueue({
      clock: this.clock,
      logger: this.log,
      onProcessed: (event) => this.observeProcessed(event),
    });
    const term: Term & { queue: WorkQueue } = {
      queue,
      signal,
      over: () => signal.aborted || this.term !== term,
      // The elector is asked too: after a pause past the lease, a write runs before the term's signal can abort.
      mayWrite: () => !term.over() && this.elector?.isLeader !== false,
    };
    this.term = term;
    this.log.info({ netServices: this.caches.netServices.size, workers: this.workers }, "leading: reconciling every NetService");
    for (const key of this.caches.netServices.keys()) queue.add(key);
    const workers = queue.run(this.workers, (key) => this.reconcile(key, term));
    const statusLane = this.status.run(term, this.workers);
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener("abort", () => resolve(), { once: true });
    });
    this.term = undefined;
    this.log.info("no longer leading: writes stopped");
    await queue.shutdown();
    await workers;
    await statusLane;
  }

  /** The one place a reconcile's result reaches the queue: look again when it asks; a throw retries with backoff. */
  private async reconcile(key: string, term: Term & { queue: WorkQueue }): Promise<void> {
    try {
      const result = await this.reconciler.reconcile(key, term);
      if (result.requeueAfterMs !== undefined) term.queue.addAfter(key, result.requeueAfterMs);
      if (result.error) throw result.error;
    } catch (err) {
      // A reconcile cut short by the end of the term (leadership lost, or stop()) is no failure of the
      // NetService: this term's queue is dropped, and the next term starts with every NetService in it.
      if (term.over()) {
        this.log.debug({ key }, "reconcile cut short: no longer leading");
        return;
      }
      throw err;
    }
  }

  private observeProcessed(event: ProcessedEvent): void {
    if (event.error instanceof LeadershipLostError) return;
    const c = this.counters;
    c.reconciles++;
    if (event.error !== undefined) c.reconcileErrors++;
    c.durationCount++;
    c.durationSum += event.workMs;
    c.durationMax = Math.max(c.durationMax, event.workMs);
    this.onReconciled?.({ key: event.key, queuedMs: event.queuedMs, workMs: event.workMs, failed: event.error !== undefined });
  }
}

/** The Service named like its NetService (the selectorless one) has a selector: someone put it there. */
function hasSelectorByHand(service: KubeObject, ownerKey: string): boolean {
  const { namespace, name } = service.metadata ?? {};
  return (
    netServiceKey(namespace ?? "", name ?? "") === ownerKey &&
    Object.keys((service as V1Service).spec?.selector ?? {}).length > 0
  );
}

/** The uid of the Node a report names as its owner. */
function nodeOwnerUid(report: KubeObject): string | undefined {
  return report.metadata?.ownerReferences?.find((ref) => ref.kind === "Node" && ref.apiVersion === "v1")?.uid;
}

function countProblems(nodes: { problem: NodeProblem }[]): { problem: NodeProblem; count: number }[] {
  const counts = new Map<NodeProblem, number>();
  for (const { problem } of nodes) counts.set(problem, (counts.get(problem) ?? 0) + 1);
  return [...counts].map(([problem, count]) => ({ problem, count }));
}
