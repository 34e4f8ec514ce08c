// The aggregator: node reports + NetServices -> each NetService's Services,
// Endpoints, EndpointSlices and status.
//
//   new Aggregator(clients, {identity, systemNamespace?, leaderElection = true, lease?, workers = 4, logger?, clock?, ...})
//     start(): Promise<void>   starts the informers, resolves once they are synced; leads (or waits to) in the background
//     stop(): Promise<void>    stops writing, releases the lease, stops the informers
//     ready, leading           accessors for health checks
//     metrics(): AggregatorMetrics   counters: writes by kind and verb, reconciles, durations, queue depth
//
// Informers run on every replica, so a standby holds warm caches; only the
// leader runs the work queue and writes. Handlers only turn events into
// NetService keys (keys.ts); a reconcile reads the caches, keeps only the
// report entries whose pods run on the reporting node (pod-placement.ts),
// merges them with each node's health (node-liveness.ts: a NotReady or
// unreachable Node, or a stale agent heartbeat, publishes its endpoints not
// ready), plans with pure functions (plan.ts) and carries the plan out.
import type { V1Service } from "@kubernetes/client-node";
import {
  aggregatorFieldManager,
  apiVersion,
  defaultSystemNamespace,
  labels,
  netServiceConditionReasons,
  netServiceKind,
  netServicePlural,
  netServiceSchema,
  reportPlural,
  sliceManagedBy,
  type NetService,
} from "../common/api.ts";
import {
  desiredStatus,
  readyConditionType,
  statusNeedsWrite,
  type Condition,
  type NetServiceStatus,
  type StatusProblem,
} from "../common/desired-status.ts";
import { serviceRepairPatch } from "../common/desired-services.ts";
import { Applier } from "../common/kube/apply.ts";
import type { KubeClients } from "../common/kube/client.ts";
import { EventRecorder, type EventType, type Regarding } from "../common/kube/events.ts";
import { realClock, type Clock, type Timer } from "../common/kube/clock.ts";
import { isConflict, type KubeHttp } from "../common/kube/http.ts";
import { Informer } from "../common/kube/informer.ts";
import { LeaderElector } from "../common/kube/leader.ts";
import { objectKey, type KubeObject } from "../common/kube/object.ts";
import { resourcePath } from "../common/kube/resources.ts";
import { metaTime } from "../common/kube/time.ts";
import { WorkQueue, type ProcessedEvent } from "../common/kube/workqueue.ts";
import { createLogger, reconcileLogger, type Logger } from "../common/log.ts";
import { mergeReports, type MergedNetService, type NodeLookup, type NodeProblem, type NodeReport } from "../common/merge.ts";
import { isNamespaceTerminating, isRefusal, LeadershipLostError } from "./errors.ts";
import { EventLimiter, nodesTransitionEvent, readyTransitionEvent } from "./events.ts";
import { NodeLiveness, slimHeartbeat, slimNode, type HeartbeatView, type NodeView } from "./node-liveness.ts";
import { ReportVerifier, type RejectedEndpoint } from "./pod-placement.ts";
import { countsOnly, Pacer } from "./pacing.ts";
import { Expectations, type CacheView, type ObjectRef } from "./expectations.ts";
import { netServiceKey, ownerKeyOf } from "./keys.ts";
import { OwnerIndex } from "./owner-index.ts";
import { controls } from "./ownership.ts";
import { ownedKinds, planNetService, type Action, type Observed, type OwnedKind } from "./plan.ts";
import { parseReport, ReportIndex, type CachedReport } from "./report-index.ts";
import { creationSkeleton, ownedCollectionPath, ownedPath } from "./skeleton.ts";
import { kubeSlicesSelector, SweepSchedule } from "./foreign-slices.ts";

/** Reason of the Ready condition while the NetService does not parse (the CRD normally prevents it). */
export const invalidSpecReason = netServiceConditionReasons.invalidSpec;

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
};

/** One finished reconcile. */
export type Reconciled = { key: string; queuedMs: number; workMs: number; failed: boolean };

type Term = { queue: WorkQueue; signal: AbortSignal };

/** What start() and stop() need of an informer, whatever it caches. */
type SyncedSource = { start(): unknown; stop(): Promise<void>; readonly synced: Promise<void>; readonly hasSynced: boolean };

type ExecuteOutcome = {
  refused: StatusProblem[];
  /** The first failure a retry should fix; the status waits for a pass that completes. */
  retry?: unknown;
  /** A create found the name taken by an object the caches do not hold; plan again with it known. */
  discoveredTaken: boolean;
  /** The namespace is being deleted: the NetService goes with it, nothing more to do. */
  namespaceTerminating?: boolean;
};

type NetServiceObject = KubeObject & { status?: Partial<NetServiceStatus> };

export class Aggregator {
  private readonly http: KubeHttp;
  private readonly applier: Applier;
  private readonly identity: string;
  private readonly systemNamespace: string;
  private readonly leaderElection: boolean;
  private readonly lease: LeaseOptions;
  private readonly workers: number;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly staleRequeueMs: number;
  private readonly takenRecheckMs: number;
  private readonly statusPacer: Pacer;
  private readonly writePacer: Pacer;
  /** NetServices whose selectorless Service just lost a hand-added selector: Kubernetes' slices to delete (foreign-slices.ts). */
  private readonly sweeps = new SweepSchedule();
  private readonly onReconciled: ((event: Reconciled) => void) | undefined;

  private readonly netServices: Informer<NetServiceObject>;
  private readonly reports: Informer<CachedReport>;
  private readonly nodes: Informer<NodeView>;
  private readonly heartbeats: Informer<HeartbeatView>;
  private readonly liveness: NodeLiveness;
  private readonly livenessCheckMs: number;
  private livenessTimer: Timer | undefined;
  /** Checks that reported pods run on the reporting node (pod-placement.ts); undefined: trust the reports. */
  private readonly verifier: ReportVerifier | undefined;
  private readonly owned: Record<OwnedKind, Informer<KubeObject>>;
  private readonly informers: SyncedSource[];
  /** What each NetService's last reconcile published, for the endpoints gauge. */
  private readonly published = new Map<string, { ready: number; notReady: number }>();

  private readonly reportIndex = new ReportIndex();
  private readonly ownerIndex: Record<OwnedKind, OwnerIndex> = {
    Service: new OwnerIndex(),
    Endpoints: new OwnerIndex(),
    EndpointSlice: new OwnerIndex(),
  };
  private readonly expectations: Expectations;
  /** Objects found (by a refused create) to hold a name we need, which the label-selected caches do not show. */
  private readonly taken = new Map<string, { object: KubeObject; until: number; wantedBy: string }>();
  private readonly events: EventRecorder;
  private readonly eventLimiter: EventLimiter;

  private readonly stopController = new AbortController();
  private elector: LeaderElector | undefined;
  private running: Promise<void> | undefined;
  private term: Term | undefined;

  private readonly writeCounts = new Map<string, number>();
  private counters = {
    writeFailures: 0,
    reconciles: 0,
    reconcileErrors: 0,
    staleCacheRequeues: 0,
    durationCount: 0,
    durationSum: 0,
    durationMax: 0,
  };

  constructor(clients: KubeClients, options: AggregatorOptions) {
    if (!options.identity) throw new Error("the aggregator needs an identity (e.g. the pod name)");
    const workers = options.workers ?? 4;
    if (!Number.isInteger(workers) || workers < 1) throw new Error(`workers must be a positive integer, got ${workers}`);
    this.http = clients.http;
    this.applier = new Applier(clients.http, { fieldManager: aggregatorFieldManager });
    this.identity = options.identity;
    this.systemNamespace = options.systemNamespace ?? defaultSystemNamespace;
    this.leaderElection = options.leaderElection ?? true;
    this.lease = options.lease ?? {};
    this.workers = workers;
    this.log = options.logger ?? createLogger("aggregator", { identity: options.identity });
    this.clock = options.clock ?? realClock;
    this.staleRequeueMs = options.staleRequeueMs ?? 250;
    this.takenRecheckMs = options.takenRecheckMs ?? 30_000;
    this.statusPacer = new Pacer(options.statusCountsIntervalMs ?? 1000);
    this.writePacer = new Pacer(options.minWriteIntervalMs ?? 0);
    this.onReconciled = options.onReconciled;
    this.expectations = new Expectations({ ttlMs: options.staleCacheTimeoutMs ?? 60_000 });
    this.eventLimiter = new EventLimiter({ windowMs: options.eventWindowMs ?? 5 * 60_000 });
    this.events = new EventRecorder(this.applier, {
      controller: `${apiVersion.split("/")[0]}/netservice-aggregator`,
      instance: options.identity,
      action: "Reconcile",
      clock: this.clock,
    });

    const common = { http: clients.http, clock: this.clock, logger: this.log, ...options.informer };
    this.netServices = new Informer<NetServiceObject>({
      ...common,
      path: resourcePath({ apiVersion, plural: netServicePlural }),
    });
    this.reports = new Informer<CachedReport>({
      ...common,
      path: resourcePath({ apiVersion, plural: reportPlural, namespace: this.systemNamespace }),
      transform: parseReport,
    });
    // Of a Node, only what decides whether its endpoints serve, and its zone (node-liveness.ts).
    this.nodes = new Informer<NodeView>({ ...common, path: "/api/v1/nodes", transform: slimNode });
    this.heartbeats = new Informer<HeartbeatView>({
      ...common,
      path: resourcePath({ apiVersion: "coordination.k8s.io/v1", plural: "leases", namespace: this.systemNamespace }),
      labelSelector: `${labels.agentHeartbeat}=true`,
      transform: slimHeartbeat,
    });
    this.liveness = new NodeLiveness({ heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? 40_000, startedAt: this.clock.now() });
    this.livenessCheckMs = options.livenessCheckMs ?? 1000;
    this.verifier =
      options.verifyPodPlacement === false
        ? undefined
        : new ReportVerifier({ http: clients.http, now: () => this.clock.now(), podUids: () => this.reportIndex.podUids() });
    // Kubernetes copies a Service's labels to the Endpoints and EndpointSlices
    // it makes for it, so the template Service's own objects carry our label
    // too: the second label picks out the ones the aggregator writes.
    this.owned = {
      Service: new Informer({ ...common, path: ownedCollectionPath("Service"), labelSelector: labels.netService }),
      Endpoints: new Informer({
        ...common,
        path: ownedCollectionPath("Endpoints"),
        labelSelector: `${labels.netService},${labels.skipMirror}=true`,
      }),
      EndpointSlice: new Informer({
        ...common,
        path: ownedCollectionPath("EndpointSlice"),
        labelSelector: `${labels.netService},${labels.managedBy}=${sliceManagedBy}`,
      }),
    };
    this.informers = [this.netServices, this.reports, this.nodes, this.heartbeats, ...Object.values(this.owned)];
    this.registerHandlers();
  }

  /** Every informer has listed once. */
  get ready(): boolean {
    return this.informers.every((informer) => informer.hasSynced);
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
      writes: [...this.writeCounts]
        .map(([id, count]) => {
          const [kind = "", verb = ""] = id.split(" ");
          return { kind, verb, count };
        })
        .sort((a, b) => (a.kind + a.verb < b.kind + b.verb ? -1 : 1)),
      writeFailures: c.writeFailures,
      reconciles: c.reconciles,
      reconcileErrors: c.reconcileErrors,
      staleCacheRequeues: c.staleCacheRequeues,
      reconcileDurationMs: { count: c.durationCount, sum: c.durationSum, max: c.durationMax },
      queueDepth: this.term?.queue.depth ?? 0,
      queueDelayed: this.term?.queue.delayed ?? 0,
      endpointsPublished: this.endpointsPublished(),
      unhealthyNodes: countProblems(this.liveness.unhealthy(this.clock.now())),
      rejectedEndpoints: { ...(this.verifier?.counts ?? { otherNode: 0, notFound: 0 }) },
      podReads: this.verifier?.reads ?? 0,
    };
  }

  /** Pods published by the NetServices that still exist, as of their last reconcile. */
  private endpointsPublished(): { ready: number; notReady: number } {
    const total = { ready: 0, notReady: 0 };
    for (const [key, counts] of this.published) {
      if (this.netServices.get(key) === undefined) {
        this.published.delete(key);
        continue;
      }
      total.ready += counts.ready;
      total.notReady += counts.notReady;
    }
    return total;
  }

  async start(): Promise<void> {
    if (this.running || this.stopController.signal.aborted) throw new Error("an aggregator starts once");
    for (const informer of this.informers) informer.start();
    await Promise.all(this.informers.map((informer) => informer.synced));
    this.log.info(
      { netServices: this.netServices.size, reports: this.reports.size, nodes: this.nodes.size },
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
    await Promise.all(this.informers.map((informer) => informer.stop()));
  }

  private registerHandlers(): void {
    this.netServices.onChange((event) => {
      if (event.type === "delete") this.forget(event.key);
      this.enqueue(event.key);
    });
    this.reports.onChange((event) => {
      const report = event.type === "delete" ? undefined : event.object;
      if (report?.invalid) this.log.warn({ report: event.key, problems: report.invalid }, "ignoring a report that does not parse");
      for (const key of this.reportIndex.update(event.key, report?.spec, report ? nodeOwnerUid(report) : undefined)) this.enqueue(key);
    });
    this.nodes.onChange((event) => {
      if (this.liveness.node(event.key, event.type === "delete" ? undefined : event.object, this.clock.now())) {
        this.enqueueNode(event.key);
      }
    });
    this.heartbeats.onChange((event) => {
      if (this.liveness.heartbeat(event.key, event.type === "delete" ? undefined : event.object, this.clock.now())) {
        this.enqueueNode(event.key);
      }
    });
    for (const kind of ownedKinds) {
      this.owned[kind].onChange((event) => {
        const owner = ownerKeyOf(event.object);
        if (event.type === "delete") this.ownerIndex[kind].delete(event.key);
        else this.ownerIndex[kind].set(event.key, owner);
        if (owner && kind === "Service" && event.type !== "delete" && hasSelectorByHand(event.object, owner)) {
          // Kubernetes' controller is publishing primary addresses under the NetService's name; see foreign-slices.ts.
          this.sweeps.repaired(owner, this.clock.now());
        }
        if (owner) this.enqueue(owner);
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
    for (const key of this.reportIndex.netServiceKeysOfNode(nodeName)) this.enqueue(key);
  }

  /** Heartbeats go stale with time alone, with no event to say so: look every livenessCheckMs. */
  private scheduleLivenessCheck(): void {
    if (this.stopController.signal.aborted) return;
    this.livenessTimer = this.clock.setTimer(() => {
      for (const nodeName of this.liveness.expire(this.clock.now())) {
        const health = this.liveness.health(nodeName, this.clock.now());
        this.log.info({ node: nodeName, serving: health?.serving, problem: health?.problem }, "node health changed");
        this.enqueueNode(nodeName);
      }
      this.scheduleLivenessCheck();
    }, this.livenessCheckMs);
  }

  /**
   * The reports with every endpoint removed whose pod does not run on the
   * node reporting it (pod-placement.ts): one GET per pod the aggregator has
   * not seen before, none for a pod it has. A pod on another node is a
   * forgery (or a bug) worth a Warning Event; a pod that no longer exists is
   * the ordinary lag of a report behind a deletion.
   */
  private async trustedReports(netService: NetService, reports: NodeReport[], term: Term, log: Logger): Promise<NodeReport[]> {
    if (!this.verifier) return reports;
    const { trusted, forged } = await this.verifier.verify(reports, term.signal);
    if (forged.length > 0) {
      log.warn({ forged: forged.slice(0, 10) }, "dropped endpoints that a node reported for pods running on another node");
      const { namespace, name, uid } = netService.metadata;
      await this.recordEvent({ apiVersion, kind: netServiceKind, namespace, name, uid }, "Warning", "ForgedEndpoints", describeForged(forged), term.signal);
    }
    return trusted;
  }

  private nodeLookup(now: number): NodeLookup {
    return { get: (nodeName) => this.liveness.health(nodeName, now), size: this.nodes.size };
  }

  private forget(key: string): void {
    this.expectations.forget(key);
    this.eventLimiter.forget(key);
    this.statusPacer.forget(key);
    this.writePacer.forget(key);
    this.sweeps.forget(key);
    for (const [id, entry] of this.taken) {
      if (entry.wantedBy === key) this.taken.delete(id);
    }
  }

  /** One leadership term: a fresh queue with every NetService in it, until the signal aborts. */
  private async lead(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const queue = new WorkQueue({
      clock: this.clock,
      logger: this.log,
      onProcessed: (event) => this.observeProcessed(event),
    });
    const term: Term = { queue, signal };
    this.term = term;
    this.log.info({ netServices: this.netServices.size, workers: this.workers }, "leading: reconciling every NetService");
    for (const key of this.netServices.keys()) queue.add(key);
    const workers = queue.run(this.workers, (key) => this.reconcile(key, term));
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener("abort", () => resolve(), { once: true });
    });
    this.term = undefined;
    this.log.info("no longer leading: writes stopped");
    await queue.shutdown();
    await workers;
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

  private async reconcile(key: string, term: Term): Promise<void> {
    try {
      await this.reconcileNetService(key, term);
    } catch (err) {
      // A reconcile cut short by the end of the term (leadership lost, or stop()) is no failure of the
      // NetService: this term's queue is dropped, and the next term starts with every NetService in it.
      if (term.signal.aborted || this.term !== term) {
        this.log.debug({ key }, "reconcile cut short: no longer leading");
        return;
      }
      throw err;
    }
  }

  private async reconcileNetService(key: string, term: Term): Promise<void> {
    if (term.signal.aborted) return;
    const log = reconcileLogger(this.log, key);
    const raw = this.netServices.get(key);
    if (!raw) {
      this.forget(key);
      log.debug("NetService gone; the garbage collector removes what it owned");
      return;
    }
    if (raw.metadata?.deletionTimestamp) {
      log.debug("NetService is being deleted");
      return;
    }
    const pending = this.expectations.pending(key, (ref) => this.lookup(ref), this.clock.now());
    if (pending.length > 0) {
      this.counters.staleCacheRequeues++;
      log.debug({ waitingFor: pending.map((item) => `${item.kind} ${item.key}`) }, "caches do not show our last writes yet; looking again shortly");
      term.queue.addAfter(key, this.staleRequeueMs);
      return;
    }

    const parsed = netServiceSchema.safeParse(raw);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
      await this.writeInvalidStatus(raw, issues, term, log);
      return;
    }
    const netService = parsed.data;
    const writeWaitMs = this.writePacer.delay(key, this.clock.now());
    if (writeWaitMs > 0) {
      term.queue.addAfter(key, writeWaitMs);
      return;
    }
    const reports = await this.trustedReports(netService, this.reportIndex.reportsFor(key), term, log);
    const now = this.clock.now();
    const merged = mergeReports(netService, reports, this.nodeLookup(now), now);

    let plan = planNetService(netService, merged, this.observe(netService));
    let outcome = await this.execute(netService, plan.actions, term, log);
    for (let pass = 1; outcome.discoveredTaken && pass < 3; pass++) {
      plan = planNetService(netService, merged, this.observe(netService));
      outcome = await this.execute(netService, plan.actions, term, log);
    }
    if (plan.actions.length > 0) this.writePacer.wrote(key, this.clock.now());
    if (outcome.namespaceTerminating) return;
    if (outcome.retry !== undefined) throw outcome.retry;
    if (this.sweeps.due(key, this.clock.now())) {
      await this.sweepKubeSlices(netService, term, log);
      const nextSweepMs = this.sweeps.swept(key, this.clock.now());
      if (nextSweepMs !== undefined) term.queue.addAfter(key, nextSweepMs);
    }

    const problems = [...plan.problems, ...outcome.refused];
    // The counts say what is published, which is nothing while the Service's name is someone else's.
    const shown = plan.publishing ? merged : { ...merged, endpoints: [], readyEndpoints: 0, notReadyEndpoints: 0 };
    await this.writeStatus(raw, netService, shown, problems, term, log);
    this.published.set(key, { ready: shown.readyEndpoints, notReady: shown.notReadyEndpoints });
    if (plan.problems.some((problem) => problem.reason === netServiceConditionReasons.serviceNameTaken)) {
      term.queue.addAfter(key, this.takenRecheckMs);
    }
    if (outcome.refused.length > 0) {
      throw new Error(`the API server refused ${outcome.refused.length} writes: ${outcome.refused[0]?.message}`);
    }
    log.debug(
      { actions: plan.actions.length, ready: merged.readyEndpoints, notReady: merged.notReadyEndpoints, nodes: merged.nodesReporting },
      "reconciled",
    );
  }

  private observe(netService: NetService): Observed {
    const { namespace } = netService.metadata;
    const key = netServiceKey(namespace, netService.metadata.name);
    const now = this.clock.now();
    return {
      get: (kind, name) => {
        const objectKeyText = `${namespace}/${name}`;
        const cached = this.owned[kind].get(objectKeyText);
        if (cached) return cached;
        const id = `${kind} ${objectKeyText}`;
        const taken = this.taken.get(id);
        if (taken && taken.until <= now) this.taken.delete(id);
        return taken && taken.until > now ? taken.object : undefined;
      },
      indexed: (kind) =>
        this.ownerIndex[kind]
          .objectsOf(key)
          .map((objectKeyText) => this.owned[kind].get(objectKeyText))
          .filter((object): object is KubeObject => object !== undefined),
    };
  }

  private lookup(ref: ObjectRef): CacheView {
    const informer: Informer<KubeObject> | undefined =
      ref.kind === netServiceKind ? this.netServices : this.owned[ref.kind as OwnedKind];
    return { object: informer?.get(ref.key), collectionVersion: informer?.health().resourceVersion };
  }

  /**
   * Carries a plan out. Updates of different objects do not depend on each
   * other, so a run of them is sent at once: a pod change reaches the
   * Endpoints and every EndpointSlice after one round trip rather than one per
   * object (docs/performance.md). Creates (which may find a name taken) and
   * deletes (after everything else, so nothing published blinks out) go one by
   * one, in the plan's order.
   */
  private async execute(netService: NetService, actions: Action[], term: Term, log: Logger): Promise<ExecuteOutcome> {
    const outcome: ExecuteOutcome = { refused: [], discoveredTaken: false };
    for (let i = 0; i < actions.length; ) {
      const updates: Action[] = [];
      while (actions[i]?.verb === "update") updates.push(actions[i++] as Action);
      if (updates.length > 0) {
        await Promise.all(updates.map((action) => this.executeAction(netService, action, term, log, outcome)));
        continue;
      }
      await this.executeAction(netService, actions[i++] as Action, term, log, outcome);
      if (outcome.discoveredTaken) return outcome;
    }
    return outcome;
  }

  /** One action; a failure is recorded in the outcome (refused, or to retry), except the end of leadership, which is thrown. */
  private async executeAction(netService: NetService, action: Action, term: Term, log: Logger, outcome: ExecuteOutcome): Promise<void> {
    const target = action.verb === "delete" ? action.existing : action.desired;
    const name = target.metadata?.name ?? "";
    try {
      if (action.verb === "create") {
        if ((await this.create(netService, action.kind, action.desired, term, log)) === "taken") outcome.discoveredTaken = true;
      } else if (action.verb === "update") {
        await this.apply(netService, action.kind, action.desired, action.existing, term);
      } else {
        await this.remove(netService, action.kind, action.existing, action.ownerUid, term);
        log.info({ kind: action.kind, object: name, why: action.why }, "deleted");
      }
    } catch (err) {
      if (err instanceof LeadershipLostError || term.signal.aborted) throw new LeadershipLostError();
      if (isNamespaceTerminating(err)) {
        log.debug({ kind: action.kind, object: name }, "the namespace is being deleted; nothing to write");
        outcome.namespaceTerminating = true;
      } else if (isRefusal(err)) {
        log.warn({ err, kind: action.kind, object: name, verb: action.verb }, "the API server refused a write");
        outcome.refused.push({
          reason: netServiceConditionReasons.applyFailed,
          message: `${action.verb} of ${action.kind} ${netService.metadata.namespace}/${name} failed: ${errorMessage(err)}`,
        });
      } else {
        log.info({ err, kind: action.kind, object: name, verb: action.verb }, "write failed; retrying");
        outcome.retry ??= err;
      }
    }
  }

  /** Creates a skeleton (which fails if the name is taken), then applies the full object to it. */
  private async create(
    netService: NetService,
    kind: OwnedKind,
    desired: KubeObject,
    term: Term,
    log: Logger,
  ): Promise<"created" | "taken"> {
    const { namespace } = netService.metadata;
    const name = desired.metadata?.name ?? "";
    let created: KubeObject;
    try {
      created = await this.write(term, kind, "create", () => this.applier.create(creationSkeleton(kind, desired), { signal: term.signal }));
    } catch (err) {
      if (!isConflict(err)) throw err;
      const live = await this.http.request<KubeObject>({ method: "GET", path: ownedPath(kind, namespace, name), signal: term.signal });
      if (controls(netService, live)) {
        // Ours, but not in the caches: they lag, or someone removed the labels they select by.
        await this.apply(netService, kind, desired, live, term);
        return "created";
      }
      this.taken.set(`${kind} ${namespace}/${name}`, {
        object: live,
        until: this.clock.now() + this.takenRecheckMs / 2,
        wantedBy: netServiceKey(namespace, netService.metadata.name),
      });
      log.info({ kind, object: name }, "name taken by an object the NetService does not own");
      return "taken";
    }
    const key = netServiceKey(namespace, netService.metadata.name);
    this.expectations.written(key, { kind, key: objectKey(created) }, created.metadata?.resourceVersion, this.clock.now());
    await this.apply(netService, kind, desired, created, term, { fresh: true });
    return "created";
  }

  /** Server-side apply to exactly the object we decided about: its uid is part of the request. */
  private async apply(
    netService: NetService,
    kind: OwnedKind,
    desired: KubeObject,
    existing: KubeObject,
    term: Term,
    { fresh = false } = {},
  ): Promise<void> {
    // A skeleton just created has no selector or ports yet: the apply gives them.
    const repair = kind === "Service" && !fresh ? serviceRepairPatch(desired as V1Service, existing as V1Service) : undefined;
    if (repair) {
      // What someone changed by hand in our selector or ports, which the apply alone cannot undo.
      await this.write(term, kind, "patch", () => this.applier.mergePatch(desired, repair, { signal: term.signal }));
    }
    const body = { ...desired, metadata: { ...desired.metadata, uid: existing.metadata?.uid } };
    const stored = await this.write(term, kind, "apply", () => this.applier.apply(body, { signal: term.signal }));
    const key = netServiceKey(netService.metadata.namespace, netService.metadata.name);
    this.expectations.written(key, { kind, key: objectKey(stored) }, stored.metadata?.resourceVersion, this.clock.now());
  }

  /**
   * Deletes the EndpointSlices that Kubernetes' controllers wrote for the
   * NetService's selectorless Service while someone had given it a selector
   * (foreign-slices.ts). Only slices that the Service controls: they are ours
   * through it, and nothing else is touched.
   */
  private async sweepKubeSlices(netService: NetService, term: Term, log: Logger): Promise<void> {
    const { namespace, name } = netService.metadata;
    const service = this.owned.Service.get(`${namespace}/${name}`);
    const serviceUid = service && controls(netService, service) ? service.metadata?.uid : undefined;
    if (!serviceUid) return;
    const list = await this.http.request<{ items?: KubeObject[] }>({
      method: "GET",
      path: ownedPath("EndpointSlice", namespace),
      query: { labelSelector: kubeSlicesSelector(name) },
      signal: term.signal,
    });
    for (const item of list.items ?? []) {
      const slice: KubeObject = { ...item, apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice" };
      const outcome = await this.write(term, "EndpointSlice", "delete", () =>
        this.applier.deleteIfOwned(slice, serviceUid, { signal: term.signal }),
      );
      if (outcome === "deleted") {
        log.info(
          { object: slice.metadata?.name, managedBy: slice.metadata?.labels?.[labels.managedBy] },
          "deleted an EndpointSlice that Kubernetes' controller wrote while the Service had a selector",
        );
      }
    }
  }

  private async remove(netService: NetService, kind: OwnedKind, existing: KubeObject, ownerUid: string, term: Term): Promise<void> {
    const outcome = await this.write(term, kind, "delete", () =>
      this.applier.deleteIfOwned(existing, ownerUid, { signal: term.signal }),
    );
    if (outcome === "deleted") {
      const key = netServiceKey(netService.metadata.namespace, netService.metadata.name);
      this.expectations.deleted(key, { kind, key: objectKey(existing) }, existing.metadata?.uid, this.clock.now());
    }
  }

  private async writeStatus(
    raw: NetServiceObject,
    netService: NetService,
    merged: MergedNetService,
    problems: StatusProblem[],
    term: Term,
    log: Logger,
  ): Promise<void> {
    const previous = raw.status;
    const status = desiredStatus(netService, merged, problems, previous?.conditions, new Date(this.clock.now()));
    await this.applyStatus(raw, status, term, log);
  }

  private async writeInvalidStatus(raw: NetServiceObject, issues: string[], term: Term, log: Logger): Promise<void> {
    const previous = raw.status;
    const generation = raw.metadata?.generation ?? 0;
    const before = previous?.conditions?.find((condition) => condition.type === readyConditionType);
    const condition: Condition = {
      type: readyConditionType,
      status: "False",
      observedGeneration: generation,
      lastTransitionTime: before?.status === "False" ? before.lastTransitionTime : metaTime(this.clock.now()),
      reason: invalidSpecReason,
      message:
        `the NetService does not parse (${issues.slice(0, 5).join("; ")}), so its objects are left as they are; ` +
        "correct the spec (kubectl edit netservice)",
    };
    const status: NetServiceStatus = {
      observedGeneration: generation,
      conditions: [condition],
      readyEndpoints: previous?.readyEndpoints ?? 0,
      notReadyEndpoints: previous?.notReadyEndpoints ?? 0,
      nodesReporting: previous?.nodesReporting ?? 0,
    };
    log.warn({ issues }, "NetService does not parse");
    await this.applyStatus(raw, status, term, log);
  }

  /** Writes the status if it changed, and an event if the Ready condition made a transition. */
  private async applyStatus(raw: NetServiceObject, status: NetServiceStatus, term: Term, log: Logger): Promise<void> {
    const previous = raw.status;
    if (!statusNeedsWrite(status, previous)) return;
    const { namespace = "", name = "", uid = "" } = raw.metadata ?? {};
    const key = netServiceKey(namespace, name);
    const waitMs = countsOnly(status, previous) ? this.statusPacer.delay(key, this.clock.now()) : 0;
    if (waitMs > 0) {
      term.queue.addAfter(key, waitMs);
      return;
    }
    const stored = await this.write(term, `${netServiceKind}/status`, "apply", () =>
      this.applier.applyStatus(
        { apiVersion, kind: netServiceKind, metadata: { namespace, name, uid }, status },
        { signal: term.signal },
      ),
    );
    this.statusPacer.wrote(key, this.clock.now());
    this.expectations.written(key, { kind: netServiceKind, key }, stored.metadata?.resourceVersion, this.clock.now());
    const [ready] = status.conditions;
    if (ready) log.debug({ status: ready.status, reason: ready.reason }, "status written");
    const events = [
      ready ? readyTransitionEvent(previous?.conditions, ready) : undefined,
      nodesTransitionEvent(previous?.conditions, status.conditions),
    ];
    for (const event of events) {
      if (!event) continue;
      await this.recordEvent({ apiVersion, kind: netServiceKind, namespace, name, uid }, event.type, event.reason, event.note, term.signal);
    }
  }

  /** Creates the event unless the limiter holds it back; failures are logged, never thrown. */
  private async recordEvent(regarding: Regarding, type: EventType, reason: string, note: string, signal: AbortSignal): Promise<void> {
    if (!this.eventLimiter.allow(`${regarding.namespace}/${regarding.name}`, reason, this.clock.now())) return;
    try {
      await this.events.record({ regarding, type, reason, note }, signal);
      this.countWrite("Event", "create");
    } catch (err) {
      this.log.warn({ err, reason }, "could not create an event");
    }
  }

  /** Every write goes through here: only while leading, and counted. */
  private async write<T>(term: Term, kind: string, verb: string, request: () => Promise<T>): Promise<T> {
    // The elector is asked too: after a pause past the lease, this runs before the term's signal can abort.
    if (term.signal.aborted || this.term !== term || this.elector?.isLeader === false) throw new LeadershipLostError();
    try {
      const result = await request();
      this.countWrite(kind, verb);
      return result;
    } catch (err) {
      this.counters.writeFailures++;
      throw err;
    }
  }

  private countWrite(kind: string, verb: string): void {
    const id = `${kind} ${verb}`;
    this.writeCounts.set(id, (this.writeCounts.get(id) ?? 0) + 1);
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

function describeForged(forged: RejectedEndpoint[]): string {
  const shown = forged
    .slice(0, 5)
    .map((each) => `node ${each.reportingNode} reported pod ${each.pod.namespace}/${each.pod.name}, which runs on node ${each.runsOn}`);
  const more = forged.length > shown.length ? `, and ${forged.length - shown.length} more` : "";
  return `${shown.join("; ")}${more}; not published. A node's agent may publish only its own node's pods: check that node's netservice-agent`;
}

function countProblems(nodes: { problem: NodeProblem }[]): { problem: NodeProblem; count: number }[] {
  const counts = new Map<NodeProblem, number>();
  for (const { problem } of nodes) counts.set(problem, (counts.get(problem) ?? 0) + 1);
  return [...counts].map(([problem, count]) => ({ problem, count }));
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
