// Events on a NetService (events.k8s.io/v1), for condition transitions only,
// and at most one per NetService and reason per window, so a flapping
// condition cannot flood the API server or the user's `kubectl describe`.
import { netServiceConditionReasons } from "../common/api.ts";
import { nodesHealthyConditionType, readyConditionType, type Condition } from "../common/desired-status.ts";
import type { Clock } from "../common/kube/clock.ts";
import type { KubeHttp } from "../common/kube/http.ts";
import { resourcePath } from "../common/kube/resources.ts";
import type { Logger } from "../common/log.ts";

/**
 * The event a new Ready condition deserves, if it is a transition: another
 * status or another reason than before (or no condition before). Problems a
 * user must fix are warnings; being published, or having no pods, is normal.
 */
export function readyTransitionEvent(
  previous: readonly Condition[] | undefined,
  next: Condition,
): { type: EventType; reason: string; note: string } | undefined {
  const before = previous?.find((condition) => condition.type === readyConditionType);
  if (before && before.status === next.status && before.reason === next.reason) return undefined;
  const normal: string[] = [netServiceConditionReasons.ready, netServiceConditionReasons.noMatchingPods];
  return { type: normal.includes(next.reason) ? "Normal" : "Warning", reason: next.reason, note: next.message };
}

/**
 * A Warning when nodes with endpoints of the NetService stop serving (or the
 * set of such nodes changes), a Normal event when they all serve again.
 */
export function nodesTransitionEvent(
  previous: readonly Condition[] | undefined,
  next: readonly Condition[],
): { type: EventType; reason: string; note: string } | undefined {
  const before = previous?.find((condition) => condition.type === nodesHealthyConditionType);
  const after = next.find((condition) => condition.type === nodesHealthyConditionType);
  if (!after) return undefined;
  if (after.status === "True") {
    return before?.status === "False" ? { type: "Normal", reason: after.reason, note: after.message } : undefined;
  }
  if (before?.status === after.status && before.message === after.message) return undefined;
  return { type: "Warning", reason: after.reason, note: after.message };
}

export class EventLimiter {
  private readonly windowMs: number;
  private readonly last = new Map<string, number>();

  constructor(options: { windowMs: number }) {
    this.windowMs = options.windowMs;
  }

  /** Whether an event for this key and reason may go out now; if so, the window starts again. */
  allow(key: string, reason: string, now: number): boolean {
    const id = `${key} ${reason}`;
    const previous = this.last.get(id);
    if (previous !== undefined && now - previous < this.windowMs) return false;
    this.last.set(id, now);
    return true;
  }

  forget(key: string): void {
    for (const id of this.last.keys()) {
      if (id.startsWith(`${key} `)) this.last.delete(id);
    }
  }
}

export type Regarding = { apiVersion: string; kind: string; namespace: string; name: string; uid: string };

export type EventType = "Normal" | "Warning";

export interface EventRecorderOptions {
  http: KubeHttp;
  /** reportingController of every event. */
  controller: string;
  /** reportingInstance: this replica. */
  instance: string;
  clock: Clock;
  logger: Logger;
  limiter: EventLimiter;
  /** Called after an event was created. */
  onCreated?: () => void;
}

export class EventRecorder {
  private readonly options: EventRecorderOptions;

  constructor(options: EventRecorderOptions) {
    this.options = options;
  }

  /** Creates the event unless the limiter holds it back; failures are logged, never thrown. */
  async record(
    regarding: Regarding,
    type: EventType,
    reason: string,
    note: string,
    signal?: AbortSignal,
  ): Promise<void> {
    const { http, clock, limiter, logger } = this.options;
    const now = clock.now();
    if (!limiter.allow(`${regarding.namespace}/${regarding.name}`, reason, now)) return;
    try {
      await http.request({
        method: "POST",
        path: resourcePath({ apiVersion: "events.k8s.io/v1", plural: "events", namespace: regarding.namespace }),
        body: {
          apiVersion: "events.k8s.io/v1",
          kind: "Event",
          metadata: { name: eventName(regarding.name, now), namespace: regarding.namespace },
          eventTime: microTime(now),
          reportingController: this.options.controller,
          reportingInstance: this.options.instance,
          action: "Reconcile",
          type,
          reason,
          // The API server refuses notes over 1 kB.
          note: note.length > 1024 ? `${note.slice(0, 1021)}...` : note,
          regarding,
        },
        ...(signal ? { signal } : {}),
      });
      this.options.onCreated?.();
    } catch (err) {
      logger.warn({ err, reason }, "could not create an event");
    }
  }
}

// As client-go names events: the object's name and the time in hexadecimal
// nanoseconds (here milliseconds plus a random sub-millisecond part, so two
// events in one millisecond do not collide).
function eventName(name: string, ms: number): string {
  const nanoseconds = BigInt(ms) * 1_000_000n + BigInt(Math.floor(Math.random() * 1_000_000));
  return `${name}.${nanoseconds.toString(16)}`;
}

/** metav1.MicroTime: RFC 3339 with six fractional digits. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, "000Z");
}
