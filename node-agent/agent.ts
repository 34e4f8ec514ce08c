// The node agent: its node's pods and every NetService in, exactly one report
// for its node (in parts if it must) and a heartbeat out.
//
//   new NodeAgent(nodeName, clients, {systemNamespace?, debounceMs = 0, logger?, clock?, netServices?,
//                 deleteReportOnStop = false, eventRecorder?, retry?, verifyPeriodMs?, flushTimeoutMs?,
//                 warnings?, onReportWritten?, heartbeatIntervalMs = 10 s, stallAfterMs = 120 s})
//     start(): Promise<void>   lists and watches; resolves once both caches synced and the first
//                              recompute published (or found the stored report current)
//     stop({deleteReport?}): Promise<void>
//                              stops watching; publishes a pending batch first (bounded by
//                              flushTimeoutMs); deletes the report only if asked (or deleteReportOnStop)
//     ready: boolean           both caches synced and not stopping: for a readiness probe
//     stalled(): string | undefined   why the work queue makes no progress: for a liveness probe
//     stats: NodeAgentStats    counters for metrics
//   netServiceInformer(http, {clock?, logger?}): Informer   one cluster-wide NetService watch, to share
//
//   const agent = new NodeAgent("node-1", clients, { logger });
//   await agent.start();
//   process.once("SIGTERM", () => void agent.stop());
//
// How it works, as the controllers of STYLE.md: informer events only put the
// single key "report" on a work queue, after the debounce (ReportBatch); the
// one worker recomputes the whole report from the caches (level-triggered:
// it never looks at the event that woke it), compares it with the stored
// report and applies it only when it differs. The stored report is read once
// at start (so a restarted agent with nothing new writes nothing), then known
// from the agent's own writes, and read again after a failed write and every
// verifyPeriodMs (so a report someone deleted or edited comes back). While
// healthy, the agent renews its node's heartbeat Lease (heartbeat.ts); the
// aggregator publishes the node's endpoints not ready once it goes stale.
import type { V1Pod } from "@kubernetes/client-node";
import {
  apiVersion,
  defaultSystemNamespace,
  agentFieldManager,
  labels,
  netServicePlural,
  netServiceSchema,
  reportKind,
  reportPlural,
  type NetService,
  type ReportSpec,
} from "../common/api.ts";
import { buildNodeReport, maxReportBytes } from "../common/node-report.ts";
import { legacyReportName, maxReportParts, partWriteOrder, reportPartIndex, reportPartName, splitReport, type PartLimits } from "../common/report-parts.ts";
import { createLogger, reconcileLogger, type Logger } from "../common/log.ts";
import { Applier } from "../common/kube/apply.ts";
import { Backoff } from "../common/kube/backoff.ts";
import { EventRecorder, type EventSink } from "../common/kube/events.ts";
import type { KubeClients } from "../common/kube/client.ts";
import { type Clock, realClock, type Timer } from "../common/kube/clock.ts";
import { isNotFound, type KubeHttp } from "../common/kube/http.ts";
import { Informer, type InformerEvent, type InformerHandler } from "../common/kube/informer.ts";
import { type KubeObject, objectKey, stripManagedFields } from "../common/kube/object.ts";
import { resourcePath } from "../common/kube/resources.ts";
import { WorkQueue } from "../common/kube/workqueue.ts";
import { ReportBatch } from "./batch.ts";
import { podChangeMatters, slimPod } from "./pod-cache.ts";
import { annotationProblem, type AnnotationProblem, podWarning, type PodWarning } from "./pod-warnings.ts";
import { formatTriggerTime, nodeNameLabel, reportNeedsWrite, reportObject, storedReport, type StoredReport } from "./report-object.ts";
import { WarningLimiter } from "./warning-limiter.ts";
import { defaultHeartbeatIntervalMs, heartbeatLease } from "./heartbeat.ts";
import { ProgressMonitor, type ProgressVerdict } from "./progress.ts";

/** What the agent needs of a NetService informer; an Informer is one, and can be shared by many agents. */
export interface NetServiceSource {
  readonly synced: Promise<void>;
  readonly hasSynced: boolean;
  list(): KubeObject[];
  onChange(handler: InformerHandler<KubeObject>): () => void;
}

export interface NodeAgentOptions {
  /** Where the report lives. Default netservice-system. */
  systemNamespace?: string;
  /**
   * How long a batch of changes collects before one recompute, from its first change. Default 0:
   * at once; changes that arrive while a write is in flight still become one next write
   * (docs/performance.md has the measurements behind the default).
   */
  debounceMs?: number;
  /** Default: the process-wide logger named "node-agent". Lines carry {node}. */
  logger?: Logger;
  clock?: Clock;
  /** A NetService informer to share (not started or stopped by the agent); default: the agent's own. */
  netServices?: NetServiceSource;
  /** Delete the report on stop() when stop() does not say. Default false: a restart must not blank the node's endpoints. */
  deleteReportOnStop?: boolean;
  /** Where warnings about pods go; default Events (events.k8s.io/v1) through the agent's client. */
  eventRecorder?: EventSink;
  /** Delays between failed recomputes. Default 1 s doubling to 60 s, with jitter. */
  retry?: { initialMs?: number; maxMs?: number };
  /** Re-read the stored report this often (jittered) and restore it if it differs; 0 disables. Default 5 min. */
  verifyPeriodMs?: number;
  /** How long stop() may spend publishing a batch still waiting for its debounce; 0 drops it. Default 2 s. */
  flushTimeoutMs?: number;
  /** Size budget of one report object; a larger report is published in parts. Default maxReportBytes. */
  reportPartBytes?: number;
  /** Warning Events: burst and sustained rate per agent. Default 20 and 10 per minute. */
  warnings?: { burst?: number; perMinute?: number };
  /**
   * Renew the node's heartbeat Lease this often while the agent makes progress (heartbeat.ts); 0 sends none.
   * Default 10 s.
   */
  heartbeatIntervalMs?: number;
  /** /healthz fails when one recompute runs, or due work waits for one, longer than this. Default 120 s. */
  stallAfterMs?: number;
  /** After each write of the report (benchmarks measure latency with it). */
  onReportWritten?: (event: ReportWritten) => void;
  random?: () => number;
}

export interface ReportWritten {
  nodeName: string;
  /** Clock time of the first change the write publishes. */
  triggeredAt: number;
  writtenAt: number;
}

export interface NodeAgentStats {
  /** Recomputes of the report (each a full one). */
  recomputes: number;
  /** Writes of the report that the API server accepted. */
  reportsWritten: number;
  /** Recomputes that failed (reading or writing the report); each was retried after a backoff. */
  failures: number;
  /** Warning Events handed to the recorder. */
  warningsRecorded: number;
  /** Clock time of the last accepted write. */
  lastWriteTime?: number;
  /** Heartbeat renewals the API server accepted, and those that failed. */
  heartbeats: number;
  heartbeatFailures: number;
}

const reportKey = "report";

/** Who reports the agent's Events: the component, as events.k8s.io/v1 wants it (a qualified name). */
const agentReportingController = "svcctl.metaswitch.com/netservice-agent";

/** What the agent was doing when it found the problem. */
const agentEventAction = "PublishEndpoints";

export class NodeAgent {
  readonly nodeName: string;
  readonly systemNamespace: string;
  readonly #http: KubeHttp;
  readonly #applier: Applier;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #pods: Informer;
  readonly #netServices: NetServiceSource;
  readonly #ownNetServices: Informer | undefined;
  readonly #queue: WorkQueue;
  readonly #batch: ReportBatch;
  readonly #recorder: EventSink;
  readonly #limiter: WarningLimiter;
  readonly #deleteReportOnStop: boolean;
  readonly #verifyPeriodMs: number;
  readonly #flushTimeoutMs: number;
  readonly #partLimits: PartLimits;
  readonly #onReportWritten: ((event: ReportWritten) => void) | undefined;
  readonly #stats: NodeAgentStats = { recomputes: 0, reportsWritten: 0, failures: 0, warningsRecorded: 0, heartbeats: 0, heartbeatFailures: 0 };
  readonly #heartbeatIntervalMs: number;
  readonly #progress: ProgressMonitor;
  #heartbeatTimer: Timer | undefined;
  #heartbeatWrite: Promise<void> | undefined;
  /** When the recompute in flight started. */
  #inFlightSince: number | undefined;
  /** The uid of this agent's Node: the owner of its reports and heartbeat. Read with the stored report. */
  #nodeUid: string | undefined;
  /** Aborts requests that may be abandoned at stop: Event writes, and recomputes after the flush. */
  readonly #abort = new AbortController();
  readonly #firstReport = deferred();
  readonly #stopRequested = deferred();
  readonly #unsubscribe: (() => void)[] = [];
  readonly #eventWrites = new Set<Promise<void>>();
  /** The report on the server: undefined until read, null when there is none. */
  /** The parts of the node's report on the server, by part number; undefined: to be read. */
  #stored: (StoredReport | undefined)[] | undefined;
  /** The uid of a report named after the node alone, as agents wrote the first part before parts were numbered from 0. */
  #legacyUid: string | undefined;
  #parsedNetServices = new Map<string, { version: string | undefined; netService: NetService | undefined }>();
  #podProblems = new Map<string, { version: string | undefined; problem: AnnotationProblem | undefined }>();
  #verifyTimer: Timer | undefined;
  #worker: Promise<void> | undefined;
  #started = false;
  #accepting = false;
  #stopping: Promise<void> | undefined;

  constructor(nodeName: string, clients: Pick<KubeClients, "http">, options: NodeAgentOptions = {}) {
    if (!nodeName) throw new Error("the node agent needs a node name");
    this.nodeName = nodeName;
    this.systemNamespace = options.systemNamespace ?? defaultSystemNamespace;
    this.#http = clients.http;
    this.#applier = new Applier(clients.http, { fieldManager: agentFieldManager });
    this.#log = (options.logger ?? createLogger("node-agent")).child({ node: nodeName });
    this.#clock = options.clock ?? realClock;
    this.#random = options.random ?? Math.random;
    this.#pods = new Informer({
      http: clients.http,
      path: "/api/v1/pods",
      fieldSelector: `spec.nodeName=${nodeName}`,
      clock: this.#clock,
      random: this.#random,
      logger: this.#log,
      transform: slimPod,
    });
    this.#ownNetServices = options.netServices
      ? undefined
      : netServiceInformer(clients.http, { clock: this.#clock, logger: this.#log, random: this.#random });
    this.#netServices = options.netServices ?? (this.#ownNetServices as Informer);
    this.#queue = new WorkQueue({ clock: this.#clock, qps: 0, logger: this.#log });
    this.#batch = new ReportBatch({
      debounceMs: options.debounceMs ?? 0,
      backoff: new Backoff({
        initialMs: options.retry?.initialMs ?? 1000,
        maxMs: options.retry?.maxMs ?? 60_000,
        random: this.#random,
      }),
    });
    this.#recorder =
      options.eventRecorder ??
      new EventRecorder(this.#applier, {
        controller: agentReportingController,
        instance: `netservice-agent-${nodeName}`,
        action: agentEventAction,
        clock: this.#clock,
      });
    this.#limiter = new WarningLimiter({ ...options.warnings, now: this.#clock.now() });
    this.#deleteReportOnStop = options.deleteReportOnStop ?? false;
    this.#verifyPeriodMs = options.verifyPeriodMs ?? 300_000;
    this.#flushTimeoutMs = options.flushTimeoutMs ?? 2000;
    this.#partLimits = { maxBytes: options.reportPartBytes ?? maxReportBytes, maxNetServices: maxReportNetServices };
    this.#onReportWritten = options.onReportWritten;
    this.#heartbeatIntervalMs = options.heartbeatIntervalMs ?? defaultHeartbeatIntervalMs;
    this.#progress = new ProgressMonitor({ stallAfterMs: options.stallAfterMs ?? 120_000 });
    // Nobody need be waiting for these when they reject.
    this.#firstReport.promise.catch(() => {});
    this.#stopRequested.promise.catch(() => {});
  }

  get ready(): boolean {
    return this.#cachesSynced() && this.#stopping === undefined;
  }

  get stats(): NodeAgentStats {
    return { ...this.#stats };
  }

  /** For /healthz (common/program.ts): why the agent is stuck, if it is. */
  readonly stalled = (): string | undefined => {
    const verdict = this.progress;
    return verdict.stalled ? verdict.reason : undefined;
  };

  /** Stalled when the work queue has work but makes no progress (progress.ts). */
  get progress(): ProgressVerdict {
    return this.#progress.sample({
      now: this.#clock.now(),
      queued: this.#queue.depth,
      ...(this.#inFlightSince !== undefined ? { inFlightSince: this.#inFlightSince } : {}),
    });
  }

  async start(): Promise<void> {
    if (this.#started) throw new Error("a node agent starts once; create a new one");
    if (this.#stopping) throw new Error("a stopped node agent cannot start");
    this.#started = true;
    this.#unsubscribe.push(
      this.#pods.onChange((event) => this.#podChanged(event)),
      this.#netServices.onChange((event) => this.#netServiceChanged(event)),
    );
    this.#pods.start();
    this.#ownNetServices?.start();
    await Promise.race([Promise.all([this.#pods.synced, this.#netServices.synced]), this.#stopRequested.promise]);
    if (this.#stopping) throw new Error("the node agent was stopped before it started");
    this.#log.info({ pods: this.#pods.size, netServices: this.#netServices.list().length }, "caches synced");

    // Everything before this point is in the caches, and the first recompute
    // reads the caches whole: a full resync, as after any restart.
    this.#accepting = true;
    this.#batch.changeSeen(this.#clock.now());
    this.#queue.add(reportKey);
    this.#worker = this.#queue.run(1, () => this.#process(this.#abort.signal));
    this.#scheduleVerify();
    await this.#firstReport.promise;
    this.#beat();
  }

  stop(options: { deleteReport?: boolean } = {}): Promise<void> {
    this.#stopping ??= this.#shutdown(options.deleteReport ?? this.#deleteReportOnStop);
    return this.#stopping;
  }

  async #shutdown(deleteReport: boolean): Promise<void> {
    this.#accepting = false;
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
    this.#verifyTimer?.cancel();
    this.#heartbeatTimer?.cancel();
    this.#stopRequested.reject(new Error("stopped"));
    this.#firstReport.reject(new Error("the node agent was stopped before it published its first report"));

    // Waits for a recompute in flight: its write is what the node should publish.
    await this.#queue.shutdown();
    await this.#worker;
    if (!deleteReport && this.#started && this.#batch.pending && this.#flushTimeoutMs > 0 && this.#cachesSynced()) {
      await this.#flush();
    }
    this.#abort.abort(new Error("the node agent is stopping"));
    await Promise.allSettled([...this.#eventWrites, this.#heartbeatWrite]);
    await Promise.all([this.#pods.stop(), this.#ownNetServices?.stop()]);
    if (deleteReport) {
      await this.#deleteReport();
      await this.#deleteHeartbeat();
    }
    this.#log.info({ deletedReport: deleteReport, ...this.#stats }, "stopped");
  }

  #cachesSynced(): boolean {
    return this.#pods.hasSynced && this.#netServices.hasSynced;
  }

  async #flush(): Promise<void> {
    const deadline = new AbortController();
    const timer = this.#clock.setTimer(
      () => deadline.abort(new Error(`no report written within ${this.#flushTimeoutMs} ms of stopping`)),
      this.#flushTimeoutMs,
    );
    try {
      await this.#process(deadline.signal);
    } finally {
      timer.cancel();
    }
  }

  #podChanged(event: InformerEvent<KubeObject>): void {
    if (event.type === "update" && !podChangeMatters(event.old, event.object)) return;
    this.#changed();
  }

  // The aggregator writes NetService status often; only spec changes (a new
  // generation), creations and deletions change a report.
  #netServiceChanged(event: InformerEvent<KubeObject>): void {
    if (event.type === "update" && event.old.metadata?.generation === event.object.metadata?.generation) return;
    this.#changed();
  }

  #changed(): void {
    if (!this.#accepting) return;
    this.#queue.addAfter(reportKey, this.#batch.changeSeen(this.#clock.now()));
  }

  #scheduleVerify(): void {
    if (this.#verifyPeriodMs <= 0 || this.#stopping) return;
    const delayMs = Math.round(this.#verifyPeriodMs * (1 - 0.2 * this.#random()));
    this.#verifyTimer = this.#clock.setTimer(() => {
      if (!this.#accepting) return;
      this.#stored = undefined;
      this.#queue.addAfter(reportKey, this.#batch.delay(this.#clock.now()));
      this.#scheduleVerify();
    }, delayMs);
  }

  /**
   * Renews the heartbeat now and every heartbeatIntervalMs, but only while the
   * agent is healthy: caches synced, the queue making progress, the node's uid
   * known. A hung agent so stops vouching for its node's endpoints.
   */
  #beat(): void {
    if (this.#heartbeatIntervalMs <= 0 || this.#stopping) return;
    if (this.ready && !this.progress.stalled && this.#nodeUid !== undefined && this.#heartbeatWrite === undefined) {
      const lease = heartbeatLease(this.nodeName, this.systemNamespace, this.#nodeUid, this.#clock.now(), Math.ceil((4 * this.#heartbeatIntervalMs) / 1000));
      this.#heartbeatWrite = this.#applier
        .apply(lease, { signal: this.#abort.signal })
        .then(() => {
          this.#stats.heartbeats++;
        })
        .catch((err: unknown) => {
          this.#stats.heartbeatFailures++;
          if (!this.#abort.signal.aborted) this.#log.warn({ err }, "could not renew the node's heartbeat Lease");
        })
        .finally(() => {
          this.#heartbeatWrite = undefined;
        });
    }
    this.#heartbeatTimer = this.#clock.setTimer(() => this.#beat(), this.#heartbeatIntervalMs);
  }

  async #deleteHeartbeat(): Promise<void> {
    const lease = { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name: this.nodeName, namespace: this.systemNamespace } };
    try {
      const stored = await this.#http.request<KubeObject>({ method: "GET", path: resourcePath({ apiVersion: "coordination.k8s.io/v1", plural: "leases", namespace: this.systemNamespace, name: this.nodeName }) });
      await this.#applier.delete(lease, { uid: stored.metadata?.uid ?? "" });
    } catch (err) {
      if (!isNotFound(err)) this.#log.warn({ err }, "could not delete the node's heartbeat Lease");
    }
  }

  /** One recompute; never throws: a failure keeps the batch pending and retries after a backoff. */
  async #process(signal: AbortSignal): Promise<void> {
    this.#inFlightSince = this.#clock.now();
    try {
      await this.#processOnce(signal);
    } finally {
      this.#inFlightSince = undefined;
    }
  }

  async #processOnce(signal: AbortSignal): Promise<void> {
    const trigger = this.#batch.begin();
    const log = reconcileLogger(this.#log, reportKey);
    try {
      await this.#publish(trigger, log, signal);
      this.#batch.succeeded();
      this.#firstReport.resolve();
    } catch (err) {
      this.#stats.failures++;
      // The write may or may not have landed: read the stored report again first.
      this.#stored = undefined;
      const delayMs = this.#batch.failed(this.#clock.now(), trigger);
      if (this.#stopping) {
        log.warn({ err }, "could not publish the node's report before stopping; the next agent will");
        return;
      }
      log.warn({ err, retryInMs: delayMs, failures: this.#stats.failures }, "could not publish the node's report; retrying");
      this.#queue.addAfter(reportKey, delayMs);
    }
  }

  async #publish(trigger: number | undefined, log: Logger, signal: AbortSignal): Promise<void> {
    this.#stats.recomputes++;
    if (this.#stored === undefined) {
      this.#nodeUid = await this.#readNodeUid(signal);
      this.#stored = await this.#readStored(signal);
    }
    const nodeUid = this.#nodeUid as string;
    const pods = this.#pods.list() as unknown as V1Pod[];
    const netServices = this.#currentNetServices(log);
    const spec = buildNodeReport(this.nodeName, pods, netServices);
    this.#warnAboutPods(pods, netServices, log);
    const stored = this.#stored;
    const parts = splitReport(spec, this.#partLimits);
    if (parts.length > maxReportParts) {
      log.error({ parts: parts.length, max: maxReportParts }, "the node's report needs more parts than allowed; publishing the first ones only");
      parts.length = maxReportParts;
    }
    const changed = parts.map((part, index) => index).filter((index) => reportNeedsWrite(parts[index]!, stored[index] ?? null, nodeUid));
    if (changed.length === 0 && stored.length === parts.length) {
      log.debug({ pods: spec.pods.length, netServices: spec.netServices.length }, "report unchanged");
      return;
    }

    const triggeredAt = trigger ?? this.#clock.now();
    const triggerTime = formatTriggerTime(triggeredAt);
    // A part that gains an entry is written before the part that loses it: an entry moving between parts is never in none.
    const order = partWriteOrder(
      Array.from(stored, (part) => part?.spec?.netServices.map((entry) => entry.uid) ?? []),
      parts.map((part) => part.netServices.map((entry) => entry.uid)),
      changed,
    );
    for (const index of order) {
      const written = await this.#applier.apply(reportObject(this.nodeName, this.systemNamespace, { ...parts[index]!, triggerTime }, index, nodeUid), { signal });
      stored[index] = storedReport(written, this.nodeName);
    }
    while (stored.length > parts.length) {
      const index = stored.length - 1;
      const part = stored[index];
      if (part) await this.#deletePart(index, part, signal);
      stored.pop();
    }
    await this.#deleteLegacy(signal);
    const writtenAt = this.#clock.now();
    this.#stats.reportsWritten++;
    this.#stats.lastWriteTime = writtenAt;
    log.info(
      {
        pods: spec.pods.length,
        netServices: spec.netServices.length,
        endpoints: spec.netServices.reduce((sum, entry) => sum + entry.endpoints.length, 0),
        parts: parts.length,
        partsWritten: changed.length,
        triggerTime,
        latencyMs: writtenAt - triggeredAt,
      },
      "report written",
    );
    this.#notifyWritten({ nodeName: this.nodeName, triggeredAt, writtenAt });
  }

  /** The uid of this agent's Node; a missing Node is an error to retry (the aggregator ignores a node that does not exist). */
  async #readNodeUid(signal: AbortSignal): Promise<string> {
    const node = await this.#http.request<KubeObject>({ method: "GET", path: `/api/v1/nodes/${encodeURIComponent(this.nodeName)}`, signal });
    const uid = node.metadata?.uid;
    if (!uid) throw new Error(`Node ${this.nodeName} has no uid`);
    return uid;
  }

  /**
   * Every stored part of the node's report, by part number, gaps included:
   * when someone deletes `node.1`, `node.2` is still found (and rewritten or
   * deleted), never orphaned. One list by the node-name label; a node whose
   * name cannot be a label value reads every possible part by name.
   */
  async #readStored(signal: AbortSignal): Promise<(StoredReport | undefined)[]> {
    const parts: (StoredReport | undefined)[] = [];
    const label = nodeNameLabel(this.nodeName);
    if (label !== undefined) {
      const list = await this.#http.request<{ items?: KubeObject[] }>({
        method: "GET",
        path: resourcePath({ apiVersion, plural: reportPlural, namespace: this.systemNamespace }),
        query: { labelSelector: `${labels.nodeName}=${label}` },
        signal,
      });
      for (const item of list.items ?? []) {
        const name = item.metadata?.name ?? "";
        const index = reportPartIndex(this.nodeName, name);
        if (index !== undefined) parts[index] = storedReport({ ...item, apiVersion, kind: reportKind }, this.nodeName);
        if (name === legacyReportName(this.nodeName)) this.#legacyUid = item.metadata?.uid;
      }
      return parts;
    }
    try {
      const legacy = await this.#http.request<KubeObject>({ method: "GET", path: resourcePath({ apiVersion, plural: reportPlural, namespace: this.systemNamespace, name: legacyReportName(this.nodeName) }), signal });
      this.#legacyUid = legacy.metadata?.uid;
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    for (let index = 0; index < maxReportParts; index++) {
      try {
        const obj = await this.#http.request<KubeObject>({ method: "GET", path: this.#reportPath(index), signal });
        parts[index] = storedReport(obj, this.nodeName);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    return parts;
  }

  /** The first part as older agents named it, once the numbered parts are written. */
  async #deleteLegacy(signal?: AbortSignal): Promise<void> {
    if (this.#legacyUid === undefined) return;
    const name = legacyReportName(this.nodeName);
    const report = { apiVersion, kind: reportKind, metadata: { name, namespace: this.systemNamespace } };
    const outcome = await this.#applier.delete(report, { uid: this.#legacyUid, ...(signal ? { signal } : {}) });
    this.#legacyUid = undefined;
    this.#log.info({ report: name, outcome }, "report of an older agent deleted (parts are numbered from 0 now)");
  }

  async #deletePart(index: number, stored: StoredReport, signal?: AbortSignal): Promise<void> {
    const name = reportPartName(this.nodeName, index);
    const report = { apiVersion, kind: reportKind, metadata: { name, namespace: this.systemNamespace } };
    const outcome = await this.#applier.delete(report, { uid: stored.uid, ...(signal ? { signal } : {}) });
    this.#log.info({ report: name, outcome }, "report part deleted");
  }

  /** The cached NetServices, parsed at the edge; each version is parsed (and an invalid one logged) once. */
  #currentNetServices(log: Logger): NetService[] {
    const parsed = new Map<string, { version: string | undefined; netService: NetService | undefined }>();
    const valid: NetService[] = [];
    for (const obj of this.#netServices.list()) {
      const key = objectKey(obj);
      const version = obj.metadata?.resourceVersion;
      let entry = this.#parsedNetServices.get(key);
      if (entry === undefined || entry.version !== version) {
        const result = netServiceSchema.safeParse(obj);
        entry = { version, netService: result.success ? result.data : undefined };
        if (!result.success) {
          const issue = result.error.issues[0];
          log.warn(
            { netService: key, field: issue?.path.map(String).join("."), problem: issue?.message },
            "skipping a NetService that does not parse; this node reports nothing for it",
          );
        }
      }
      parsed.set(key, entry);
      if (entry.netService) valid.push(entry.netService);
    }
    this.#parsedNetServices = parsed;
    return valid;
  }

  /** One warning Event per pod and broken annotation value, for pods some NetService selects. */
  #warnAboutPods(pods: readonly V1Pod[], netServices: readonly NetService[], log: Logger): void {
    const problems = new Map<string, { version: string | undefined; problem: AnnotationProblem | undefined }>();
    const uids = new Set<string>();
    const now = this.#clock.now();
    for (const pod of pods) {
      const key = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
      const version = pod.metadata?.resourceVersion;
      uids.add(pod.metadata?.uid ?? "");
      let entry = this.#podProblems.get(key);
      if (entry === undefined || entry.version !== version) entry = { version, problem: annotationProblem(pod) };
      problems.set(key, entry);
      if (entry.problem === undefined) continue;
      const warning = podWarning(pod, entry.problem, netServices);
      if (warning === undefined || !this.#limiter.admit(warning, now)) continue;
      log.warn({ pod: key, reason: warning.reason, problem: warning.message }, "warning the pod's owner about its Multus annotation");
      this.#record(warning, log);
    }
    this.#podProblems = problems;
    this.#limiter.retain(uids);
  }

  #record(warning: PodWarning, log: Logger): void {
    this.#stats.warningsRecorded++;
    const write = this.#recorder
      .record(
        { regarding: { apiVersion: "v1", kind: "Pod", ...warning.pod }, type: "Warning", reason: warning.reason, note: warning.message },
        this.#abort.signal,
      )
      .catch((err: unknown) => {
        this.#limiter.forget(warning);
        if (!this.#abort.signal.aborted) log.warn({ err, pod: warning.pod }, "could not record a warning Event");
      })
      .finally(() => this.#eventWrites.delete(write));
    this.#eventWrites.add(write);
  }

  #notifyWritten(event: ReportWritten): void {
    try {
      this.#onReportWritten?.(event);
    } catch (err) {
      this.#log.warn({ err }, "onReportWritten threw");
    }
  }

  async #deleteReport(): Promise<void> {
    const stored = this.#stored ?? (await this.#readStored(new AbortController().signal));
    await this.#deleteLegacy();
    if (stored.length === 0) {
      this.#log.info("no report to delete");
      return;
    }
    for (let index = stored.length - 1; index >= 0; index--) {
      const part = stored[index];
      if (part) await this.#deletePart(index, part);
    }
  }

  #reportPath(part: number): string {
    return resourcePath({ apiVersion, plural: reportPlural, namespace: this.systemNamespace, name: reportPartName(this.nodeName, part) });
  }
}

/**
 * The cluster-wide NetService informer an agent uses; one can be shared by
 * any number of agents (pass it as options.netServices and start it yourself).
 */
export function netServiceInformer(
  http: KubeHttp,
  options: { clock?: Clock; logger?: Logger; random?: () => number } = {},
): Informer {
  return new Informer({
    http,
    path: resourcePath({ apiVersion, plural: netServicePlural }),
    ...options,
    // Agents read metadata and spec; status is the aggregator's and changes often.
    transform: (obj) => {
      const { status: _, ...rest } = stripManagedFields(obj);
      return rest;
    },
  });
}

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (err: Error) => void } {
  let resolve: () => void = () => {};
  let reject: (err: Error) => void = () => {};
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** The report CRD's maxItems for spec.netServices; the byte budget is the tighter bound in practice. */
const maxReportNetServices = 10_000;

