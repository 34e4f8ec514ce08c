// Which Events a NetService gets (written by common/kube/events.ts): for
// condition transitions only, and at most one per NetService and reason per
// window, so a flapping condition cannot flood the API server or the user's
// `kubectl describe`.
import { netServiceConditionReasons } from "../common/api.ts";
import { nodesHealthyConditionType, readyConditionType, type Condition } from "../common/desired-status.ts";
import type { EventType } from "../common/kube/events.ts";

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
