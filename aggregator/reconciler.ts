// One NetService's reconcile: read the caches, keep only the report entries
// whose pods run on the reporting node (pod-placement.ts), merge them with
// each node's health (node-liveness.ts), plan with pure functions (plan.ts),
// have the writer carry the plan out, hand the status to its own lane
// (status-writer.ts), and say when to look again. It never touches the
// queue: the controller does what it returns.
//
//   new Reconciler({caches, writer, status, verifier?, clock, logger, staleRequeueMs, takenRecheckMs, minWriteIntervalMs})
//     reconcile(key, term): Promise<Result>   throws what a retry should fix
//     forget(key)                             the NetService is gone
//     published(): {ready, notReady}          pods published, for the endpoints gauge
//     staleCacheRequeues                      reconciles postponed until the caches show our writes (only those
//                                             whose result the writer did not keep: expectations.ts)
import type { V1Service } from "@kubernetes/client-node";
import { apiVersion, netServiceConditionReasons, netServiceKind, netServiceSchema, type NetService } from "../common/api.ts";
import type { Clock } from "../common/kube/clock.ts";
import type { KubeObject } from "../common/kube/object.ts";
import { reconcileLogger, type Logger } from "../common/log.ts";
import { mergeReports, type NodeReport } from "../common/merge.ts";
import type { Caches } from "./caches.ts";
import type { PendingView } from "./expectations.ts";
import { SweepSchedule } from "./foreign-slices.ts";
import { controls } from "./ownership.ts";
import { Pacer } from "./pacing.ts";
import { planNetService } from "./plan.ts";
import type { RejectedEndpoint, ReportVerifier } from "./pod-placement.ts";
import type { StatusWriter } from "./status-writer.ts";
import type { Term, Writer } from "./writer.ts";

/**
 * What a reconcile asks of the queue, as controller-runtime's (Result, error):
 * look again after requeueAfterMs; and a failure the user must fix (the
 * status says what), retried with backoff. Both may be set.
 */
export type Result = { requeueAfterMs?: number; error?: Error };

export interface ReconcilerOptions {
  caches: Caches;
  writer: Writer;
  status: StatusWriter;
  /** Checks that reported pods run on the reporting node (pod-placement.ts); undefined: trust the reports. */
  verifier: ReportVerifier | undefined;
  clock: Clock;
  logger: Logger;
  /** Delay before looking again when the caches have not caught up yet. */
  staleRequeueMs: number;
  /** How often a NetService whose names are taken by other objects looks again. */
  takenRecheckMs: number;
  /** A NetService's Endpoints and EndpointSlices are written at most once per this interval (pacing.ts). */
  minWriteIntervalMs: number;
}

export class Reconciler {
  /** NetServices whose selectorless Service just lost a hand-added selector: Kubernetes' slices to delete (foreign-slices.ts). */
  readonly sweeps = new SweepSchedule();
  private readonly caches: Caches;
  private readonly writer: Writer;
  private readonly status: StatusWriter;
  private readonly verifier: ReportVerifier | undefined;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly staleRequeueMs: number;
  private readonly takenRecheckMs: number;
  private readonly writePacer: Pacer;
  /** What each NetService's last reconcile published, for the endpoints gauge. */
  private readonly publishedCounts = new Map<string, { ready: number; notReady: number }>();
  private staleRequeues = 0;

  constructor(options: ReconcilerOptions) {
    this.caches = options.caches;
    this.writer = options.writer;
    this.status = options.status;
    this.verifier = options.verifier;
    this.clock = options.clock;
    this.log = options.logger;
    this.staleRequeueMs = options.staleRequeueMs;
    this.takenRecheckMs = options.takenRecheckMs;
    this.writePacer = new Pacer(options.minWriteIntervalMs);
  }

  /** Reconciles postponed because the caches did not show our own writes yet. */
  get staleCacheRequeues(): number {
    return this.staleRequeues;
  }

  /** Pods published by the NetServices that still exist, as of their last reconcile. */
  published(): { ready: number; notReady: number } {
    const total = { ready: 0, notReady: 0 };
    for (const [key, counts] of this.publishedCounts) {
      if (this.caches.netServices.get(key) === undefined) {
        this.publishedCounts.delete(key);
        continue;
      }
      total.ready += counts.ready;
      total.notReady += counts.notReady;
    }
    return total;
  }

  forget(key: string): void {
    this.writer.forget(key);
    this.status.forget(key);
    this.writePacer.forget(key);
    this.sweeps.forget(key);
  }

  async reconcile(key: string, term: Term): Promise<Result> {
    if (term.signal.aborted) return {};
    const log = reconcileLogger(this.log, key);
    const pending = this.writer.pending(key, (ref) => this.caches.lookup(ref), this.clock.now());
    if (pending.waitFor.length > 0) {
      this.staleRequeues++;
      log.debug({ waitingFor: pending.waitFor.map((item) => `${item.kind} ${item.key}`) }, "caches do not show our last writes yet; looking again shortly");
      return { requeueAfterMs: this.staleRequeueMs };
    }
    const raw = this.caches.netService(key, pending.objects);
    if (!raw) {
      this.forget(key);
      log.debug("NetService gone; the garbage collector removes what it owned");
      return {};
    }
    if (raw.metadata?.deletionTimestamp) {
      log.debug("NetService is being deleted");
      return {};
    }

    const parsed = netServiceSchema.safeParse(raw);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
      this.status.submitInvalid(raw, issues, log);
      return {};
    }
    const netService = parsed.data;
    const writeWaitMs = this.writePacer.delay(key, this.clock.now());
    if (writeWaitMs > 0) return { requeueAfterMs: writeWaitMs };
    const reports = await this.trustedReports(netService, this.caches.reportIndex.reportsFor(key), term, log);
    const now = this.clock.now();
    const merged = mergeReports(netService, reports, this.caches.nodeLookup(now), now);

    let plan = planNetService(netService, merged, this.observe(netService, pending.objects));
    let outcome = await this.writer.execute(netService, plan.actions, term, log);
    for (let pass = 1; outcome.discoveredTaken && pass < 3; pass++) {
      plan = planNetService(netService, merged, this.observe(netService, this.writer.pending(key, (ref) => this.caches.lookup(ref), this.clock.now()).objects));
      outcome = await this.writer.execute(netService, plan.actions, term, log);
    }
    if (plan.actions.length > 0) this.writePacer.wrote(key, this.clock.now());
    if (outcome.namespaceTerminating) return {};
    if (outcome.retry !== undefined) throw outcome.retry;
    if (this.sweeps.due(key, this.clock.now())) {
      await this.sweepKubeSlices(netService, term, log);
      this.sweeps.swept(key, this.clock.now());
    }

    const problems = [...plan.problems, ...outcome.refused];
    // The counts say what is published, which is nothing while the Service's name is someone else's.
    const shown = plan.publishing ? merged : { ...merged, endpoints: [], readyEndpoints: 0, notReadyEndpoints: 0 };
    this.status.submit(key, netService, shown, problems);
    this.publishedCounts.set(key, { ready: shown.readyEndpoints, notReady: shown.notReadyEndpoints });
    const nameTaken = plan.problems.some((problem) => problem.reason === netServiceConditionReasons.serviceNameTaken);
    const result = after(this.sweeps.untilNext(key, this.clock.now()), nameTaken ? this.takenRecheckMs : 0);
    if (outcome.refused.length > 0) {
      return { ...result, error: new Error(`the API server refused ${outcome.refused.length} writes: ${outcome.refused[0]?.message}`) };
    }
    log.debug(
      { actions: plan.actions.length, ready: merged.readyEndpoints, notReady: merged.notReadyEndpoints, nodes: merged.nodesReporting },
      "reconciled",
    );
    return result;
  }

  /** The namespace as the plan sees it, with our writes the caches do not show yet and the names a create found taken. */
  private observe(netService: NetService, written: ReadonlyMap<string, PendingView>) {
    const now = this.clock.now();
    return this.caches.observe(netService, (kind, namespace, name) => this.writer.taken(kind, namespace, name, now), written);
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
      await this.status.recordEvent({ apiVersion, kind: netServiceKind, namespace, name, uid }, "Warning", "ForgedEndpoints", describeForged(forged), term.signal);
    }
    return trusted;
  }

  /** Kubernetes' slices under the selectorless Service's name, if that Service is the NetService's (foreign-slices.ts). */
  private async sweepKubeSlices(netService: NetService, term: Term, log: Logger): Promise<void> {
    const { namespace, name } = netService.metadata;
    const service: KubeObject | undefined = this.caches.owned.Service.get(`${namespace}/${name}`);
    const serviceUid = service && controls(netService, service) ? (service as V1Service).metadata?.uid : undefined;
    if (serviceUid) await this.writer.sweepKubeSlices(netService, serviceUid, term, log);
  }
}

/** Look again after the earliest of the delays asked for (0 or undefined: not asked). */
function after(...delaysMs: (number | undefined)[]): Result {
  const asked = delaysMs.filter((ms): ms is number => ms !== undefined && ms > 0);
  return asked.length > 0 ? { requeueAfterMs: Math.min(...asked) } : {};
}

function describeForged(forged: RejectedEndpoint[]): string {
  const shown = forged
    .slice(0, 5)
    .map((each) => `node ${each.reportingNode} reported pod ${each.pod.namespace}/${each.pod.name}, which runs on node ${each.runsOn}`);
  const more = forged.length > shown.length ? `, and ${forged.length - shown.length} more` : "";
  return `${shown.join("; ")}${more}; not published. A node's agent may publish only its own node's pods: check that node's netservice-agent`;
}

