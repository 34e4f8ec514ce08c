import t from "tap";
import { ManualClock } from "../../common/kube/clock.ts";
import {
  decideLease,
  LeaderElector,
  LeaseConflictError,
  type LeaseDecision,
  type LeaseRecord,
  type LeaseStore,
  nextLeaseRecord,
  releasedLeaseRecord,
  type StoredLease,
} from "../../common/kube/leader.ts";

const held = (holderIdentity: string, extra: Partial<LeaseRecord> = {}): LeaseRecord => ({
  holderIdentity,
  leaseDurationSeconds: 15,
  acquireTime: 0,
  renewTime: 0,
  leaseTransitions: 3,
  ...extra,
});

t.test("a replica takes the lease only when it is missing, released, expired or its own", async (t) => {
  const table: [name: string, lease: LeaseRecord | undefined, observedAt: number, now: number, want: LeaseDecision][] = [
    ["no lease yet", undefined, 0, 0, { action: "create" }],
    ["held by us", held("me"), 0, 60_000, { action: "renew" }],
    ["released by the last leader", held(""), 0, 0, { action: "acquire" }],
    ["held by another, just seen", held("other"), 1000, 1000, { action: "wait", holder: "other", expiresInMs: 15_000 }],
    ["held by another, 1 ms before expiry", held("other"), 1000, 15_999, { action: "wait", holder: "other", expiresInMs: 1 }],
    ["held by another, expired", held("other"), 1000, 16_000, { action: "acquire" }],
    [
      "expiry counts from when we saw it change, not from its renewTime (clock skew)",
      held("other", { renewTime: -3_600_000 }),
      50_000,
      50_001,
      { action: "wait", holder: "other", expiresInMs: 14_999 },
    ],
    [
      "the holder's own lease duration applies",
      held("other", { leaseDurationSeconds: 60 }),
      0,
      30_000,
      { action: "wait", holder: "other", expiresInMs: 30_000 },
    ],
    ["a lease naming no duration uses ours", held("other", { leaseDurationSeconds: 0 }), 0, 20_000, { action: "acquire" }],
  ];
  for (const [name, lease, observedAt, now, want] of table) {
    t.same(decideLease({ lease, observedAt, now, identity: "me", defaultLeaseDurationSeconds: 15 }), want, name);
  }
});

t.test("the record written for each decision", async (t) => {
  const previous = held("other", { acquireTime: 100, renewTime: 200, leaseTransitions: 3 });
  t.same(nextLeaseRecord("create", undefined, 5000, "me", 15), {
    holderIdentity: "me",
    leaseDurationSeconds: 15,
    acquireTime: 5000,
    renewTime: 5000,
    leaseTransitions: 0,
  });
  t.same(
    nextLeaseRecord("acquire", previous, 5000, "me", 15),
    { holderIdentity: "me", leaseDurationSeconds: 15, acquireTime: 5000, renewTime: 5000, leaseTransitions: 4 },
    "taking over counts a transition",
  );
  const mine = held("me", { acquireTime: 100, renewTime: 200, leaseTransitions: 4 });
  t.same(
    nextLeaseRecord("renew", mine, 5000, "me", 15),
    { holderIdentity: "me", leaseDurationSeconds: 15, acquireTime: 100, renewTime: 5000, leaseTransitions: 4 },
    "renewing keeps acquireTime and the transition count",
  );
  t.same(
    releasedLeaseRecord(mine, 9000),
    { holderIdentity: "", leaseDurationSeconds: 1, acquireTime: 9000, renewTime: 9000, leaseTransitions: 4 },
    "releasing empties the holder",
  );
});

t.test("lease timings that would let two leaders overlap are refused", async (t) => {
  const store = new MemoryLeaseStore().as("a");
  t.throws(() => new LeaderElector({ store, namespace: "ns", name: "l", identity: "a", leaseDurationSeconds: 10, renewDeadlineSeconds: 10 }));
  t.throws(() => new LeaderElector({ store, namespace: "ns", name: "l", identity: "a", renewDeadlineSeconds: 2, retryPeriodSeconds: 2 }));
  t.throws(() => new LeaderElector({ store, namespace: "ns", name: "l", identity: "" }));
});

/** A lease kept in memory with the API server's compare-and-swap semantics; a replica can be cut off. */
class MemoryLeaseStore {
  lease: StoredLease | undefined;
  readonly unreachable = new Set<string>();
  private version = 0;

  as(replica: string): LeaseStore {
    const check = () => {
      if (this.unreachable.has(replica)) throw new Error(`${replica}: connection refused`);
    };
    return {
      get: async () => {
        check();
        return this.lease && structuredClone(this.lease);
      },
      create: async (record) => {
        check();
        if (this.lease) throw new LeaseConflictError("exists");
        this.lease = { record: { ...record }, version: String(++this.version) };
        return structuredClone(this.lease);
      },
      update: async (record, version) => {
        check();
        if (this.lease?.version !== version) throw new LeaseConflictError("changed");
        this.lease = { record: { ...record }, version: String(++this.version) };
        return structuredClone(this.lease);
      },
    };
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Advances the clock in small steps until cond() holds; returns the time it took. */
async function advanceUntil(clock: ManualClock, cond: () => boolean, limitMs: number, stepMs = 100): Promise<number> {
  const start = clock.now();
  await settle();
  while (!cond()) {
    if (clock.now() - start > limitMs) throw new Error(`condition not met within ${limitMs} ms`);
    clock.advance(stepMs);
    await settle();
  }
  return clock.now() - start;
}

interface Replica {
  elector: LeaderElector;
  started: number[];
  stopped: number[];
  signals: AbortSignal[];
  done: Promise<void>;
}

function replica(store: MemoryLeaseStore, clock: ManualClock, identity: string, random: () => number = () => 0): Replica {
  const elector = new LeaderElector({
    store: store.as(identity),
    namespace: "ns",
    name: "aggregator",
    identity,
    clock,
    random,
  });
  const r: Replica = { elector, started: [], stopped: [], signals: [], done: Promise.resolve() };
  r.done = elector.run(
    (signal) => {
      r.started.push(clock.now());
      r.signals.push(signal);
    },
    () => r.stopped.push(clock.now()),
  );
  return r;
}

t.test("one replica leads, the other waits; a graceful stop hands over at once", async (t) => {
  const clock = new ManualClock(1_000_000);
  const store = new MemoryLeaseStore();
  const a = replica(store, clock, "a");
  await settle();
  t.ok(a.elector.isLeader, "the first candidate creates the lease and leads");
  const b = replica(store, clock, "b");
  await advanceUntil(clock, () => false, 60_000).catch(() => {});
  t.ok(a.elector.isLeader, "a keeps leading by renewing");
  t.notOk(b.elector.isLeader);
  t.equal(b.elector.holder, "a");
  t.ok(clock.now() - (store.lease?.record.renewTime ?? 0) <= 2000, "renewed every retry period");

  const stopping = a.elector.stop();
  await settle();
  await stopping;
  t.ok(a.signals[0]?.aborted, "a's work was told to stop");
  t.equal(a.stopped.length, 1);
  t.equal(store.lease?.record.holderIdentity, "", "a released the lease");
  const handover = await advanceUntil(clock, () => b.elector.isLeader, 10_000);
  t.ok(handover <= 2000, `b took over within one retry period, not after expiry (${handover} ms)`);
  t.equal(store.lease?.record.leaseTransitions, 1);
  await a.done;
  await b.elector.stop();
  await b.done;
});

t.test("a leader cut off from the API server stops before anyone else can start", async (t) => {
  const clock = new ManualClock(1_000_000);
  const store = new MemoryLeaseStore();
  const a = replica(store, clock, "a");
  await settle();
  const b = replica(store, clock, "b");
  await advanceUntil(clock, () => false, 5000).catch(() => {});
  t.ok(a.elector.isLeader);

  const lastRenewal = store.lease?.record.renewTime ?? 0;
  store.unreachable.add("a");
  await advanceUntil(clock, () => a.stopped.length > 0, 20_000);
  const aStoppedAfter = (a.stopped[0] ?? 0) - lastRenewal;
  t.ok(aStoppedAfter >= 10_000 && aStoppedAfter <= 12_000, `a stopped renewDeadline (10 s) after its last renewal (${aStoppedAfter} ms)`);
  t.ok(a.signals[0]?.aborted);
  t.notOk(a.elector.isLeader);

  await advanceUntil(clock, () => b.elector.isLeader, 30_000);
  const bStarted = b.started[0] ?? 0;
  t.ok(bStarted - lastRenewal >= 15_000, `b waited for the lease to expire (${bStarted - lastRenewal} ms)`);
  t.ok((a.stopped[0] ?? Infinity) < bStarted, "leadership never overlapped");

  store.unreachable.delete("a");
  await advanceUntil(clock, () => false, 10_000).catch(() => {});
  t.notOk(a.elector.isLeader, "a, reconnected, finds b's lease and waits");
  t.equal(a.started.length, 1);
  await Promise.all([a.elector.stop(), b.elector.stop()]);
  await Promise.all([a.done, b.done]);
});

// The bound the fault test's leader kill lives under: a standby sees the
// holder's last renewal at its next poll (at most one retry interval later,
// 2 s x (1 + 1.2 x jitter) < 4.4 s), judges expiry a lease duration (15 s)
// after that, and acquires at its first poll after expiry (one more
// interval). So takeover comes no later than 15 + 2 x 4.4 = 23.8 s after the
// last renewal, and never before 15 s; plus the API server's latency, which
// only a figure from a real run can show (docs/reliability.md).
t.test("a standby takes over a dead holder's lease at most 23.8 s after its last renewal, whatever its jitter", async (t) => {
  for (const jitter of [0, 0.5, 0.9999]) {
    const clock = new ManualClock(1_000_000);
    const store = new MemoryLeaseStore();
    const a = replica(store, clock, "a");
    await settle();
    const b = replica(store, clock, "b", () => jitter);
    await advanceUntil(clock, () => false, 7000).catch(() => {});
    t.ok(a.elector.isLeader, "a leads");
    const lastRenewal = store.lease?.record.renewTime ?? 0;
    store.unreachable.add("a");
    await advanceUntil(clock, () => b.elector.isLeader, 40_000);
    const takeover = (b.started[0] ?? 0) - lastRenewal;
    t.ok(takeover >= 15_000 && takeover <= 23_800, `jitter ${jitter}: b led ${takeover} ms after a's last renewal`);
    store.unreachable.delete("a");
    await Promise.all([a.elector.stop(), b.elector.stop()]);
    await Promise.all([a.done, b.done]);
  }
});

t.test("work that fails while leading releases the lease and fails run()", async (t) => {
  const clock = new ManualClock(0);
  const store = new MemoryLeaseStore();
  const elector = new LeaderElector({ store: store.as("a"), namespace: "ns", name: "l", identity: "a", clock, random: () => 0 });
  let stoppedLeading = false;
  const run = elector.run(
    async () => {
      throw new Error("informer never synced");
    },
    () => {
      stoppedLeading = true;
    },
  );
  await t.rejects(run, /informer never synced/);
  t.ok(stoppedLeading);
  t.equal(store.lease?.record.holderIdentity, "", "released for the other replica");
  t.notOk(elector.isLeader);
});
