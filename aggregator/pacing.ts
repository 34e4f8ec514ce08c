// How often the aggregator writes for one NetService under steady pod churn.
// Each write pass (Endpoints, EndpointSlices) and each status write costs the
// API server a write and every watcher an event, and a NetService is not
// reconciled again until the caches show the previous pass. A Pacer lets a
// NetService's first change after a quiet interval through at once (no added
// latency) and holds the ones that follow until the interval since the last
// write has passed, so that a burst becomes one write.
//
//   const pacer = new Pacer(1000);
//   const waitMs = pacer.delay(key, now);   // 0: go ahead
//   if (waitMs > 0) queue.addAfter(key, waitMs); else { await write(); pacer.wrote(key, now); }
//   pacer.forget(key)                       // the NetService is gone
//
// Status: a change of condition (Ready, its reason) or of observedGeneration
// is written at once; when only the counts of endpoints and nodes change
// (countsOnly), the write is paced, and the reconcile that holds it back asks
// to run again when the interval is over, so the last counts are always written.
import { readyConditionType, type NetServiceStatus } from "../common/desired-status.ts";

export class Pacer {
  readonly #intervalMs: number;
  readonly #lastWrite = new Map<string, number>();

  constructor(intervalMs: number) {
    this.#intervalMs = intervalMs;
  }

  /** Milliseconds to hold the key's next write back (0: write now). */
  delay(key: string, now: number): number {
    if (this.#intervalMs <= 0) return 0;
    const last = this.#lastWrite.get(key);
    return last === undefined ? 0 : Math.max(0, last + this.#intervalMs - now);
  }

  wrote(key: string, now: number): void {
    if (this.#intervalMs > 0) this.#lastWrite.set(key, now);
  }

  forget(key: string): void {
    this.#lastWrite.delete(key);
  }
}

/** Whether two statuses differ at most in the counts of endpoints and nodes (numbers, and the Ready message that states them). */
export function countsOnly(desired: NetServiceStatus, existing: Partial<NetServiceStatus> | undefined): boolean {
  if (!existing) return false;
  const condition = (status: Partial<NetServiceStatus>) => {
    const ready = status.conditions?.find((c) => c.type === readyConditionType);
    return ready && { status: ready.status, reason: ready.reason, observedGeneration: ready.observedGeneration };
  };
  const a = condition(desired);
  const b = condition(existing);
  return (
    desired.observedGeneration === existing.observedGeneration &&
    a !== undefined &&
    b !== undefined &&
    a.status === b.status &&
    a.reason === b.reason &&
    a.observedGeneration === b.observedGeneration
  );
}
