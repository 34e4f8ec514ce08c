// Which pod warnings become Events: one per pod per distinct annotation value
// (every recompute sees the same broken annotation again), and no more than
// a token bucket allows (a node whose Multus breaks every pod must not flood
// the API server). A warning refused for want of a token is not remembered,
// so a later recompute records it once tokens are back.
//
//   new WarningLimiter({burst = 20, perMinute = 10, valuesPerPod = 16, now})
//     admit(warning, now): boolean   true: record it now (it is remembered as recorded)
//     forget(warning): void          the Event could not be written; admit it again later
//     retain(podUids): void          forget pods that are gone
import { createHash } from "node:crypto";
import type { PodWarning } from "./pod-warnings.ts";

export interface WarningLimiterOptions {
  /** Warnings that may be recorded at once. Default 20. */
  burst?: number;
  /** Sustained rate. Default 10 per minute. */
  perMinute?: number;
  /** Distinct values remembered per pod (oldest forgotten first). Default 16. */
  valuesPerPod?: number;
  /** Clock reading (ms) when the bucket starts full. */
  now: number;
}

export class WarningLimiter {
  readonly #burst: number;
  readonly #perMs: number;
  readonly #valuesPerPod: number;
  readonly #recorded = new Map<string, string[]>();
  #tokens: number;
  #last: number;

  constructor(options: WarningLimiterOptions) {
    this.#burst = Math.max(1, options.burst ?? 20);
    this.#perMs = Math.max(0, options.perMinute ?? 10) / 60_000;
    this.#valuesPerPod = Math.max(1, options.valuesPerPod ?? 16);
    this.#tokens = this.#burst;
    this.#last = options.now;
  }

  admit(warning: PodWarning, now: number): boolean {
    const fingerprint = fingerprintOf(warning);
    const seen = this.#recorded.get(warning.pod.uid);
    if (seen?.includes(fingerprint)) return false;
    this.#refill(now);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    const values = seen ?? [];
    values.push(fingerprint);
    if (values.length > this.#valuesPerPod) values.shift();
    this.#recorded.set(warning.pod.uid, values);
    return true;
  }

  forget(warning: PodWarning): void {
    const seen = this.#recorded.get(warning.pod.uid);
    if (!seen) return;
    const fingerprint = fingerprintOf(warning);
    const kept = seen.filter((value) => value !== fingerprint);
    if (kept.length > 0) this.#recorded.set(warning.pod.uid, kept);
    else this.#recorded.delete(warning.pod.uid);
  }

  retain(podUids: ReadonlySet<string>): void {
    for (const uid of this.#recorded.keys()) {
      if (!podUids.has(uid)) this.#recorded.delete(uid);
    }
  }

  #refill(now: number): void {
    this.#tokens = Math.min(this.#burst, this.#tokens + Math.max(0, now - this.#last) * this.#perMs);
    this.#last = now;
  }
}

// Annotations can be large; a digest keeps the memory per pod bounded.
function fingerprintOf(warning: PodWarning): string {
  return `${warning.reason}:${createHash("sha256").update(warning.value).digest("base64url")}`;
}
