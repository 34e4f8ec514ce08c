// Whether the agent's work queue makes progress, for /healthz: a liveness
// probe that only proves the event loop answers cannot see a worker that
// hangs on a request or a queue that nobody takes work from. Sampled at
// probe time and when a recompute starts or ends; time comes from the caller.
//
//   const progress = new ProgressMonitor({ stallAfterMs: 120_000 });
//   progress.sample({ now, queued: queue.depth, inFlightSince })  -> { stalled: false } | { stalled: true, reason }

export type ProgressSample = {
  now: number;
  /** Keys due and waiting for a worker (not those waiting for a delay or backoff). */
  queued: number;
  /** When the recompute in flight started; undefined when none is. */
  inFlightSince?: number;
};

export type ProgressVerdict = { stalled: false } | { stalled: true; reason: string };

export class ProgressMonitor {
  private readonly stallAfterMs: number;
  /** Since when work has been waiting with no recompute in flight, as far as the samples tell. */
  private waitingSince: number | undefined;

  constructor(options: { stallAfterMs: number }) {
    this.stallAfterMs = options.stallAfterMs;
  }

  /**
   * Stalled when one recompute has run longer than stallAfterMs, or when work
   * has been due for that long without a recompute starting. An idle queue,
   * or work waiting out a retry backoff, is no stall.
   */
  sample({ now, queued, inFlightSince }: ProgressSample): ProgressVerdict {
    if (inFlightSince !== undefined) {
      this.waitingSince = undefined;
      const runningMs = now - inFlightSince;
      return runningMs > this.stallAfterMs
        ? { stalled: true, reason: `one recompute of the node's report has run for ${Math.round(runningMs / 1000)} s` }
        : { stalled: false };
    }
    if (queued === 0) {
      this.waitingSince = undefined;
      return { stalled: false };
    }
    this.waitingSince ??= now;
    const waitingMs = now - this.waitingSince;
    return waitingMs > this.stallAfterMs
      ? { stalled: true, reason: `work has waited ${Math.round(waitingMs / 1000)} s with no recompute started` }
      : { stalled: false };
  }
}
