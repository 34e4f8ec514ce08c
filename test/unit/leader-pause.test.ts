// A leader whose process was paused past its lease (SIGSTOP, a frozen VM, a
// long GC) must know it is no longer leader the moment it wakes, before any
// of its timers has had a chance to run: the fault tests caught an aggregator
// writing three objects in that gap while the other replica held the lease.
import t from "tap";
import { type Clock, ManualClock } from "../../common/kube/clock.ts";
import { LeaderElector, LeaseConflictError, type LeaseRecord, type LeaseStore, type StoredLease } from "../../common/kube/leader.ts";

class OneLease implements LeaseStore {
  stored: StoredLease | undefined;
  #version = 0;

  async get(): Promise<StoredLease | undefined> {
    return this.stored;
  }

  async create(record: LeaseRecord): Promise<StoredLease> {
    if (this.stored) throw new LeaseConflictError("exists");
    this.stored = { record, version: String(++this.#version) };
    return this.stored;
  }

  async update(record: LeaseRecord, version: string): Promise<StoredLease> {
    if (this.stored?.version !== version) throw new LeaseConflictError("changed");
    this.stored = { record, version: String(++this.#version) };
    return this.stored;
  }
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

t.test("a leader that wakes from a pause past its renew deadline is not leader, before any timer runs", async (t) => {
  const timers = new ManualClock(1_000_000);
  let paused = 0;
  // The pause moves time on without firing a single timer, as SIGSTOP does.
  const clock: Clock = { now: () => timers.now() + paused, setTimer: (callback, ms) => timers.setTimer(callback, ms) };
  const elector = new LeaderElector({ store: new OneLease(), namespace: "ns", name: "lease", identity: "a", clock, random: () => 0 });
  let term: AbortSignal | undefined;
  const running = elector.run((signal) => {
    term = signal;
    return new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
  });
  for (let i = 0; i < 5 && !elector.isLeader; i++) await settle();
  t.ok(elector.isLeader, "leads after acquiring");

  paused = 9_000;
  t.ok(elector.isLeader, "still leader 9 s after the renewal was sent (renew deadline 10 s)");
  paused = 10_000;
  t.notOk(elector.isLeader, "no longer leader once the renew deadline has passed by its own clock");
  t.equal(term?.aborted, false, "while the term's signal is still not aborted: no timer has run yet");

  await elector.stop();
  await running;
});
