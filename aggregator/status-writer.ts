// What a user sees of a NetService's reconcile: its status, written when it
// changed (a change of the counts alone paced: pacing.ts), and the Events of
// its transitions (events.ts), at most one per NetService and reason per window.
//
//   new StatusWriter({writer, events, eventWindowMs, countsIntervalMs, clock, logger})
//     write(raw, netService, merged, problems, term, log): Promise<number>   ms until a paced write is due; 0 when none waits
//     writeInvalid(raw, issues, term, log): Promise<number>                  the status of a NetService that does not parse
//     recordEvent(regarding, type, reason, note, signal)                      limited; failures logged, never thrown
//     forget(key)
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
import type { Logger } from "../common/log.ts";
import type { MergedNetService } from "../common/merge.ts";
import type { NetServiceObject } from "./caches.ts";
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
}

export class StatusWriter {
  private readonly writer: Writer;
  private readonly events: EventSink;
  private readonly eventLimiter: EventLimiter;
  private readonly pacer: Pacer;
  private readonly clock: Clock;
  private readonly log: Logger;

  constructor(options: StatusWriterOptions) {
    this.writer = options.writer;
    this.events = options.events;
    this.eventLimiter = new EventLimiter({ windowMs: options.eventWindowMs });
    this.pacer = new Pacer(options.countsIntervalMs);
    this.clock = options.clock;
    this.log = options.logger;
  }

  /** The status a reconcile ends with. Returns how long a paced write waits (0: written, or nothing to write). */
  async write(
    raw: NetServiceObject,
    netService: NetService,
    merged: MergedNetService,
    problems: StatusProblem[],
    term: Term,
    log: Logger,
  ): Promise<number> {
    const status = desiredStatus(netService, merged, problems, raw.status?.conditions, new Date(this.clock.now()));
    return this.apply(raw, status, term, log);
  }

  /** Ready=False with the parse errors; the counts stay as they were. */
  async writeInvalid(raw: NetServiceObject, issues: string[], term: Term, log: Logger): Promise<number> {
    const previous = raw.status;
    const generation = raw.metadata?.generation ?? 0;
    const before = previous?.conditions?.find((condition) => condition.type === readyConditionType);
    const condition: Condition = {
      type: readyConditionType,
      status: "False",
      observedGeneration: generation,
      lastTransitionTime: before?.status === "False" ? before.lastTransitionTime : metaTime(this.clock.now()),
      // The CRD's schema normally keeps such a spec out.
      reason: netServiceConditionReasons.invalidSpec,
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
    return this.apply(raw, status, term, log);
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

  forget(key: string): void {
    this.eventLimiter.forget(key);
    this.pacer.forget(key);
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
