// Time as a dependency: everything in common/kube that waits takes a Clock, so
// tests advance time instead of sleeping.
//
//   interface Clock { now(): number; setTimer(fn, ms): Timer }
//   realClock: Clock                         wall clock and Node timers
//   sleep(clock, ms, signal?): Promise<void> resolves after ms or when signal aborts
//   class ManualClock implements Clock       for tests and simulations
//     advance(ms): void                      fires due timers in time order, synchronously
//     pending: number                        timers not yet fired or cancelled
//
//   const clock = new ManualClock(0);
//   clock.setTimer(() => fired = true, 1000); clock.advance(1000); // fired === true

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the epoch (or since any fixed origin, for a ManualClock). */
  now(): number;
  setTimer(callback: () => void, delayMs: number): Timer;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimer(callback, delayMs) {
    const handle = setTimeout(callback, Math.max(0, delayMs));
    return { cancel: () => clearTimeout(handle) };
  },
};

/** Resolves after delayMs on the clock, or as soon as signal aborts (never rejects). */
export function sleep(clock: Clock, delayMs: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const onAbort = () => {
      timer.cancel();
      resolve();
    };
    const timer = clock.setTimer(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, delayMs);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

interface ScheduledTimer {
  at: number;
  seq: number;
  callback: () => void;
  cancelled: boolean;
}

/** A clock that moves only when told to. */
export class ManualClock implements Clock {
  private current: number;
  private timers: ScheduledTimer[] = [];
  private seq = 0;

  constructor(start = 0) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimer(callback: () => void, delayMs: number): Timer {
    const timer: ScheduledTimer = {
      at: this.current + Math.max(0, delayMs),
      seq: this.seq++,
      callback,
      cancelled: false,
    };
    this.timers.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
      },
    };
  }

  get pending(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }

  /** Moves time forward, firing every timer that falls due on the way (including ones set by callbacks). */
  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      this.timers = this.timers.filter((t) => !t.cancelled);
      const next = this.timers
        .filter((t) => t.at <= target)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (next === undefined) break;
      this.current = Math.max(this.current, next.at);
      next.cancelled = true;
      next.callback();
    }
    this.current = target;
  }
}
