// Capped exponential backoff with jitter, for retry loops (informer relists,
// leader-election retries). Pure apart from the injectable random source.
//
//   new Backoff({initialMs, maxMs, factor = 2, jitter = 0.2, random = Math.random})
//   next(): number   the delay before the next attempt; each call doubles the base up to maxMs
//   reset(): void    after a success
//   attempts: number delays handed out since the last reset
//
//   const backoff = new Backoff({ initialMs: 500, maxMs: 30_000 });
//   await sleep(clock, backoff.next(), signal);

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /**
   * Fraction of the delay taken away at random, so that replicas that failed
   * together do not retry together. 0 disables it. Default 0.2.
   */
  jitter?: number;
  /** Uniform in [0, 1). Default Math.random. */
  random?: () => number;
}

export class Backoff {
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly factor: number;
  private readonly jitter: number;
  private readonly random: () => number;
  private failures = 0;

  constructor(options: BackoffOptions) {
    if (!(options.initialMs > 0) || !(options.maxMs >= options.initialMs)) {
      throw new Error(`backoff needs 0 < initialMs <= maxMs, got ${options.initialMs} and ${options.maxMs}`);
    }
    this.initialMs = options.initialMs;
    this.maxMs = options.maxMs;
    this.factor = options.factor ?? 2;
    this.jitter = Math.min(1, Math.max(0, options.jitter ?? 0.2));
    this.random = options.random ?? Math.random;
  }

  get attempts(): number {
    return this.failures;
  }

  next(): number {
    const base = Math.min(this.maxMs, this.initialMs * this.factor ** this.failures);
    this.failures++;
    return Math.round(base * (1 - this.jitter * this.random()));
  }

  reset(): void {
    this.failures = 0;
  }
}
