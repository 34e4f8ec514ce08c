// A de-duplicating, rate-limited work queue in the manner of client-go's:
// event handlers add keys, workers reconcile them.
//
//   new WorkQueue({clock?, baseDelayMs = 1000, maxDelayMs = 1_000_000, qps = 10, burst = 100, logger?, onProcessed?})
//     add(key)             queue key unless it is already waiting; a key being processed is queued again after it
//     addAfter(key, ms)    add once ms have passed (the earliest of several pending times wins)
//     addRateLimited(key)  addAfter with the key's backoff (baseDelay doubling per failure, up to maxDelay)
//                          and no sooner than the global token bucket (qps, burst) allows
//     forget(key)          reset the key's backoff
//     numRequeues(key)     failures since the last forget
//     run(workers, handler): Promise<void>
//                          workers call handler(key) concurrently, never two for the same key; a throw
//                          re-adds the key rate-limited, a success forgets it; resolves after shutdown
//     shutdown(): Promise<void>
//                          stops taking keys (pending and delayed ones are dropped: reconciles are level-based,
//                          so whoever runs next starts from a full resync) and resolves once in-flight handlers finish
//     depth, delayed, processing   gauges for metrics; processingKeys, the keys in flight
//     get(): Promise<string | undefined>, done(key)   the primitives run() uses, for custom loops
//
//   const queue = new WorkQueue({ logger: log });
//   informer.onChange((e) => queue.add(e.key)); void queue.run(2, (key) => reconcile(key));
import type { Logger } from "../log.ts";
import { type Clock, realClock, type Timer } from "./clock.ts";

export interface ProcessedEvent {
  key: string;
  /** From the add that made the key pending to the moment a worker took it. */
  queuedMs: number;
  workMs: number;
  error?: unknown;
}

export interface WorkQueueOptions {
  clock?: Clock;
  /** First retry delay of a failing key. Default 1 s (as the EndpointSlice controller). */
  baseDelayMs?: number;
  /** Cap of a failing key's retry delay. Default 1000 s. */
  maxDelayMs?: number;
  /** Global retry rate (token bucket refill per second); 0 disables the bucket. Default 10. */
  qps?: number;
  /** Token bucket size. Default 100. */
  burst?: number;
  /** Where handler failures are logged (warn). */
  logger?: Logger;
  onProcessed?: (event: ProcessedEvent) => void;
}

export type Handler = (key: string) => Promise<void>;

export class WorkQueue {
  private readonly clock: Clock;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly bucket: TokenBucket | undefined;
  private readonly logger: Logger | undefined;
  private readonly onProcessed: ((event: ProcessedEvent) => void) | undefined;

  private readonly queue = new Fifo();
  /** Keys that need processing: queued, or re-added while being processed. */
  private readonly dirty = new Set<string>();
  private readonly inFlight = new Set<string>();
  /** When each dirty key became dirty. */
  private readonly pendingSince = new Map<string, number>();
  /** How long each in-flight key was pending before a worker took it. */
  private readonly queueLatency = new Map<string, number>();
  private readonly waiting = new Map<string, { at: number; timer: Timer }>();
  private readonly failures = new Map<string, number>();
  private readonly workers: ((key: string | undefined) => void)[] = [];
  private shuttingDown = false;
  private running: Promise<void> | undefined;
  private drained: Promise<void> | undefined;
  private idle: (() => void) | undefined;

  constructor(options: WorkQueueOptions = {}) {
    this.clock = options.clock ?? realClock;
    this.baseDelayMs = options.baseDelayMs ?? 1000;
    this.maxDelayMs = options.maxDelayMs ?? 1_000_000;
    const qps = options.qps ?? 10;
    this.bucket = qps > 0 ? new TokenBucket(qps, options.burst ?? 100, this.clock.now()) : undefined;
    this.logger = options.logger;
    this.onProcessed = options.onProcessed;
  }

  /** Keys ready to be processed. */
  get depth(): number {
    return this.queue.size;
  }

  /** Keys waiting for a delay (addAfter, addRateLimited) to pass. */
  get delayed(): number {
    return this.waiting.size;
  }

  /** Keys a worker is processing now. */
  get processing(): number {
    return this.inFlight.size;
  }

  /** The keys a worker is processing now (what a stop waits for). */
  get processingKeys(): string[] {
    return [...this.inFlight];
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    this.pendingSince.set(key, this.clock.now());
    if (!this.inFlight.has(key)) this.enqueue(key);
  }

  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = this.clock.now() + delayMs;
    const existing = this.waiting.get(key);
    if (existing && existing.at <= at) return;
    existing?.timer.cancel();
    const timer = this.clock.setTimer(() => {
      this.waiting.delete(key);
      this.add(key);
    }, delayMs);
    this.waiting.set(key, { at, timer });
  }

  addRateLimited(key: string): void {
    if (this.shuttingDown) return;
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    const backoff = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(failures, 60));
    const global = this.bucket?.reserve(this.clock.now()) ?? 0;
    this.addAfter(key, Math.max(backoff, global));
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Waits for a key and marks it in flight; undefined once the queue shuts down. Call done(key) after. */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    if (this.queue.size > 0) return Promise.resolve(this.take());
    return new Promise((resolve) => this.workers.push(resolve));
  }

  done(key: string): void {
    this.inFlight.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) this.enqueue(key);
    if (this.inFlight.size === 0) this.idle?.();
  }

  run(workers: number, handler: Handler): Promise<void> {
    if (this.running) throw new Error("the work queue is already running");
    if (!(workers >= 1)) throw new Error(`a work queue needs at least one worker, got ${workers}`);
    const loops = Array.from({ length: workers }, () => this.work(handler));
    this.running = Promise.all(loops).then(() => undefined);
    return this.running;
  }

  shutdown(): Promise<void> {
    if (this.drained) return this.drained;
    this.shuttingDown = true;
    for (const { timer } of this.waiting.values()) timer.cancel();
    this.waiting.clear();
    this.queue.clear();
    this.dirty.clear();
    this.pendingSince.clear();
    for (const worker of this.workers.splice(0)) worker(undefined);
    const inFlightDone =
      this.inFlight.size === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            this.idle = resolve;
          });
    this.drained = inFlightDone.then(() => this.running);
    return this.drained;
  }

  private async work(handler: Handler): Promise<void> {
    for (;;) {
      const key = await this.get();
      if (key === undefined) return;
      const queuedMs = this.queueLatency.get(key) ?? 0;
      this.queueLatency.delete(key);
      const started = this.clock.now();
      let error: unknown;
      try {
        await handler(key);
        this.forget(key);
      } catch (err) {
        error = err ?? new Error("handler threw a nullish value");
        this.logger?.warn({ key, err, requeues: this.numRequeues(key) }, "reconcile failed; retrying with backoff");
        this.addRateLimited(key);
      } finally {
        this.done(key);
      }
      this.report({ key, queuedMs, workMs: this.clock.now() - started, error });
    }
  }

  private report(event: ProcessedEvent): void {
    try {
      this.onProcessed?.(event);
    } catch {
      // A broken metrics hook must not stop a worker.
    }
  }

  private enqueue(key: string): void {
    this.queue.push(key);
    while (this.workers.length > 0 && this.queue.size > 0) {
      const worker = this.workers.shift();
      worker?.(this.take());
    }
  }

  private take(): string {
    const key = this.queue.shift();
    if (key === undefined) throw new Error("work queue is empty");
    this.dirty.delete(key);
    this.inFlight.add(key);
    const now = this.clock.now();
    this.queueLatency.set(key, now - (this.pendingSince.get(key) ?? now));
    this.pendingSince.delete(key);
    return key;
  }
}

/** Allows burst events at once, then qps per second; reserve() says how long the caller must wait for its token. */
class TokenBucket {
  private readonly qps: number;
  private readonly burst: number;
  private tokens: number;
  private last: number;

  constructor(qps: number, burst: number, now: number) {
    this.qps = qps;
    this.burst = Math.max(1, burst);
    this.tokens = this.burst;
    this.last = now;
  }

  reserve(now: number): number {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.qps) / 1000);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.qps);
  }
}

/** A queue of strings with O(1) push and shift. */
class Fifo {
  private items: string[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(item: string): void {
    this.items.push(item);
  }

  shift(): string | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head++];
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}
