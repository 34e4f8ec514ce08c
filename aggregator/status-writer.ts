// What a user sees of a NetService's reconcile: its status, written when it
// changed (a change of the counts alone paced: pacing.ts), and the Events of
// its transitions (events.ts), at most one per NetService and reason per window.
//
// The status goes out on a lane of its own, off the reconcile path: a
// reconcile hands over what it published (submit) and is done once its
// Endpoints and EndpointSlices are written, so the NetService's next pod
// change need not wait for a status write, its pacing or an Event
// (docs/performance.md). The lane keeps only the latest submission per
// NetService, decides against the freshest status it knows (the cache, or
// what its own last write returned while the cache lags it), and retries a
// failed write with the work queue's backoff.
//
//   new StatusWriter({writer, events, eventWindowMs, countsIntervalMs, clock, logger, current})
//     run(term, workers): Promise<void>                                     the lane, for one leadership term
//     submit(key, netService, merged, problems)                              the status a reconcile ends with
//     submitInvalid(raw, issues, log)                                        the status of a NetService that does not parse
//     recordEvent(regarding, type, reason, note, signal)                      limited; failures logged, never thrown
//     forget(key)
//   readyState(netService): {namespace, name, ready, reason}                 its Ready condition as written, for the gauge
import { apiVersion, netServiceConditionReasons, netServiceKind, type NetService } from "../common/api.ts";
import {
  desiredStatus,
  readyConditionType,
  statusNeedsWrite,
  type Condition,
  type NetServiceStatus,
  type StatusProblem,
} from "../common/desired-status.ts";
import type { Clock } from "../common/kube/clock.ts";
import type { EventSink, EventType, Regarding } from "../common/kube/events.ts";
import { metaTime } from "../common/kube/time.ts";
import { WorkQueue } from "../common/kube/workqueue.ts";
import { reconcileLogger, type Logger } from "../common/log.ts";
import type { MergedNetService } from "../common/merge.ts";
import type { NetServiceObject } from "./caches.ts";
import { LeadershipLostError } from "./errors.ts";
import { EventLimiter, nodesTransitionEvent, readyTransitionEvent } from "./events.ts";
import { netServiceKey } from "./keys.ts";
import { countsOnly, Pacer } from "./pacing.ts";
import type { Term, Writer } from "./writer.ts";

export interface StatusWriterOptions {
  writer: Writer;
  events: EventSink;
  /** At most one event per NetService and reason in this window. */
  eventWindowMs: number;
  /** Status writes that change only the counts wait until this long after the NetService's last status write. */
  countsIntervalMs: number;
  clock: Clock;
  logger: Logger;
  /** The NetService as last known: the cache, or what our last status write returned while the cache lags it. */
  current: (key: string) => NetServiceObject | undefined;
}

/** What a reconcile published, from which the lane computes the status. */
/**
 * What a reconcile handed over: the uid of the NetService it reconciled, and
 * how to compute the status from the freshest one known when the lane writes.
 */
type Submission = { uid: string | undefined; status: (current: NetServiceObject, now: number) => NetServiceStatus };

export class StatusWriter {
  private readonly writer: Writer;
  private readonly events: EventSink;
  private readonly eventLimiter: EventLimiter;
  private readonly pacer: Pacer;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly current: (key: string) => NetServiceObject | undefined;
  private readonly submitted = new Map<string, Submission>();
  private lane: WorkQueue | undefined;

  constructor(options: StatusWriterOptions) {
    this.writer = options.writer;
    this.events = options.events;
    this.eventLimiter = new EventLimiter({ windowMs: options.eventWindowMs });
    this.pacer = new Pacer(options.countsIntervalMs);
    this.clock = options.clock;
    this.log = options.logger;
    this.current = options.current;
  }

  /** Writes submitted statuses while the term lasts; resolves once it has ended and the writes in flight are done. */
  async run(term: Term, workers: number): Promise<void> {
    const lane = new WorkQueue({ clock: this.clock, logger: this.log });
    this.lane = lane;
    for (const key of this.submitted.keys()) lane.add(key);
    const running = lane.run(workers, (key) => this.writeSubmitted(key, term));
    await new Promise<void>((resolve) => {
      if (term.signal.aborted) resolve();
      else term.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    if (this.lane === lane) this.lane = undefined;
    await lane.shutdown();
    await running;
  }

  /** The status a reconcile ends with: written by the lane, at once or when its pacing allows. */
  submit(key: string, netService: NetService, merged: MergedNetService, problems: StatusProblem[]): void {
    this.enqueue(key, {
      uid: netService.metadata.uid,
      status: (current, now) => desiredStatus(netService, merged, problems, current.status?.conditions, new Date(now)),
    });
  }

  /**
   * The status of a NetService that does not parse: Ready=False with the
   * parse errors; the counts stay as they were. On the lane too, so that an
   * earlier submission still waiting there cannot overwrite it.
   */
  submitInvalid(raw: NetServiceObject, issues: string[], log: Logger): void {
    log.warn({ issues }, "NetService does not parse");
    const { namespace = "", name = "", uid } = raw.metadata ?? {};
    this.enqueue(netServiceKey(namespace, name), { uid, status: (current, now) => invalidStatus(current, issues, now) });
  }

  /** Creates the event unless the limiter holds it back; failures are logged, never thrown. */
  async recordEvent(regarding: Regarding, type: EventType, reason: string, note: string, signal: AbortSignal): Promise<void> {
    if (!this.eventLimiter.allow(`${regarding.namespace}/${regarding.name}`, reason, this.clock.now())) return;
    try {
      await this.events.record({ regarding, type, reason, note }, signal);
      this.writer.countWrite("Event", "create");
    } catch (err) {
      // Aborted: the term ended (leadership lost or the program stopping), not a failure worth a warning.
      if (!signal.aborted) this.log.warn({ err, reason }, "could not create an event");
    }
  }

  private enqueue(key: string, submission: Submission): void {
    this.submitted.set(key, submission);
    this.lane?.add(key);
  }

  forget(key: string): void {
    this.eventLimiter.forget(key);
    this.pacer.forget(key);
    this.submitted.delete(key);
  }

  /** The lane's work for one NetService: its latest submission, written if it changes the status and its pacing allows. */
  private async writeSubmitted(key: string, term: Term): Promise<void> {
    const submission = this.submitted.get(key);
    const raw = this.current(key);
    if (!submission || !raw || term.signal.aborted) return;
    // Submitted for an earlier NetService of this name: the reconcile of the new one submits its own.
    if (raw.metadata?.uid !== submission.uid || raw.metadata?.deletionTimestamp) return;
    const status = submission.status(raw, this.clock.now());
    try {
      const waitMs = await this.apply(raw, status, term, reconcileLogger(this.log, key));
      if (waitMs > 0) this.lane?.addAfter(key, waitMs);
    } catch (err) {
      // The term ended (leadership lost, or stop()): the next term's reconciles submit again.
      if (term.over() || err instanceof LeadershipLostError) return;
      throw err;
    }
  }

  /** Writes the status if it changed, and an event if a condition made a transition. */
  private async apply(raw: NetServiceObject, status: NetServiceStatus, term: Term, log: Logger): Promise<number> {
    const previous = raw.status;
    if (!statusNeedsWrite(status, previous)) return 0;
    const { namespace = "", name = "", uid = "" } = raw.metadata ?? {};
    const key = netServiceKey(namespace, name);
    const waitMs = countsOnly(status, previous) ? this.pacer.delay(key, this.clock.now()) : 0;
    if (waitMs > 0) return waitMs;
    await this.writer.applyStatus({ apiVersion, kind: netServiceKind, metadata: { namespace, name, uid }, status }, term);
    this.pacer.wrote(key, this.clock.now());
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
    return 0;
  }
}

/** A NetService's Ready condition as its status shows it (what kubectl shows). */
export type ReadyState = { namespace: string; name: string; ready: boolean; reason: string };

/** Before the aggregator wrote a first status, the reason is "NotObserved". */
export function readyState(netService: NetServiceObject): ReadyState {
  const { namespace = "", name = "" } = netService.metadata ?? {};
  const condition = netService.status?.conditions?.find((each) => each.type === readyConditionType);
  return { namespace, name, ready: condition?.status === "True", reason: condition?.reason || notObservedReason };
}

export const notObservedReason = "NotObserved";

/** Ready=False with the parse errors, the counts as they were. */
function invalidStatus(current: NetServiceObject, issues: string[], now: number): NetServiceStatus {
  const previous = current.status;
  const generation = current.metadata?.generation ?? 0;
  const before = previous?.conditions?.find((condition) => condition.type === readyConditionType);
  const condition: Condition = {
    type: readyConditionType,
    status: "False",
    observedGeneration: generation,
    lastTransitionTime: before?.status === "False" ? before.lastTransitionTime : metaTime(now),
    // The CRD's schema normally keeps such a spec out.
    reason: netServiceConditionReasons.invalidSpec,
    message:
      `the NetService does not parse (${issues.slice(0, 5).join("; ")}), so its objects are left as they are; ` +
      "correct the spec (kubectl edit netservice)",
  };
  return {
    observedGeneration: generation,
    conditions: [condition],
    readyEndpoints: previous?.readyEndpoints ?? 0,
    notReadyEndpoints: previous?.notReadyEndpoints ?? 0,
    nodesReporting: previous?.nodesReporting ?? 0,
  };
}
