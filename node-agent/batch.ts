// When the agent recomputes its node's report. A burst of changes becomes one
// recompute and at most one write: the delay runs from the FIRST change of a
// batch (later changes join it rather than postpone it, so a steady stream of
// pod events cannot starve the report), and after a failed write nothing,
// not even a new change, brings the retry forward past its backoff.
//
//   new ReportBatch({debounceMs, backoff})
//     changeSeen(now): number     a change was seen; the delay before the recompute
//     delay(now): number          the delay for a recompute that is not a change (start, verification)
//     begin(): number | undefined a recompute starts: takes the batch's trigger time (its first change)
//     succeeded(): void           published (or nothing to publish): the backoff resets
//     failed(now, trigger): number the recompute failed: its changes stay pending; the retry delay
//     pending: boolean            changes seen and not yet published
//
//   const delay = batch.changeSeen(clock.now()); queue.addAfter("report", delay);
import type { Backoff } from "../common/kube/backoff.ts";

export interface ReportBatchOptions {
  /** How long a batch collects changes, from its first one. */
  debounceMs: number;
  /** Delays between failed attempts. */
  backoff: Backoff;
}

export class ReportBatch {
  readonly #debounceMs: number;
  readonly #backoff: Backoff;
  #firstChangeAt: number | undefined;
  #retryAt: number | undefined;

  constructor(options: ReportBatchOptions) {
    if (!(options.debounceMs >= 0)) throw new Error(`debounceMs must be >= 0, got ${options.debounceMs}`);
    this.#debounceMs = options.debounceMs;
    this.#backoff = options.backoff;
  }

  get pending(): boolean {
    return this.#firstChangeAt !== undefined;
  }

  changeSeen(now: number): number {
    this.#firstChangeAt ??= now;
    return this.delay(now);
  }

  delay(now: number): number {
    const untilRetry = this.#retryAt === undefined ? 0 : this.#retryAt - now;
    return Math.max(this.#debounceMs, untilRetry);
  }

  begin(): number | undefined {
    const trigger = this.#firstChangeAt;
    this.#firstChangeAt = undefined;
    return trigger;
  }

  succeeded(): void {
    this.#retryAt = undefined;
    this.#backoff.reset();
  }

  failed(now: number, trigger: number | undefined): number {
    if (trigger !== undefined) this.#firstChangeAt = Math.min(trigger, this.#firstChangeAt ?? trigger);
    const delayMs = this.#backoff.next();
    this.#retryAt = now + delayMs;
    return delayMs;
  }
}
