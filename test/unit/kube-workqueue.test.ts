import t from "tap";
import { ManualClock } from "../../common/kube/clock.ts";
import { WorkQueue } from "../../common/kube/workqueue.ts";

/** Lets workers' promise chains run to their next await. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

t.test("a burst of adds for one key becomes one reconcile", async (t) => {
  const queue = new WorkQueue({ clock: new ManualClock() });
  for (const key of ["a", "b", "a", "a", "b", "c"]) queue.add(key);
  t.equal(queue.depth, 3);
  const seen: string[] = [];
  const running = queue.run(1, async (key) => {
    seen.push(key);
  });
  await settle();
  t.same(seen, ["a", "b", "c"], "each key once, in the order first added");
  await queue.shutdown();
  await running;
});

t.test("a key is never processed by two workers at once, and a re-add during processing runs once more after", async (t) => {
  const queue = new WorkQueue({ clock: new ManualClock() });
  const release = deferred();
  let concurrent = 0;
  let maxConcurrent = 0;
  const calls: string[] = [];
  void queue.run(4, async (key) => {
    calls.push(key);
    concurrent++;
    maxConcurrent = Math.max(maxConcurrent, concurrent);
    if (calls.length === 1) await release.promise;
    concurrent--;
  });
  queue.add("a");
  await settle();
  t.equal(queue.processing, 1);
  for (let i = 0; i < 3; i++) queue.add("a");
  await settle();
  t.equal(queue.depth, 0, "the re-added key waits outside the queue while in flight");
  t.same(calls, ["a"], "three idle workers did not take it");
  release.resolve();
  await settle();
  t.same(calls, ["a", "a"], "processed exactly once more after the first pass finished");
  t.equal(maxConcurrent, 1);
  await queue.shutdown();
});

t.test("different keys are processed concurrently up to the number of workers", async (t) => {
  const queue = new WorkQueue({ clock: new ManualClock() });
  const release = deferred();
  let concurrent = 0;
  let maxConcurrent = 0;
  void queue.run(2, async () => {
    concurrent++;
    maxConcurrent = Math.max(maxConcurrent, concurrent);
    await release.promise;
    concurrent--;
  });
  for (const key of ["a", "b", "c"]) queue.add(key);
  await settle();
  t.equal(maxConcurrent, 2);
  t.equal(queue.depth, 1, "the third key waits for a free worker");
  release.resolve();
  await queue.shutdown();
});

t.test("a failing key is retried after 1 s, 2 s, 4 s, ... up to the cap, and success resets it", async (t) => {
  const clock = new ManualClock();
  const queue = new WorkQueue({ clock, baseDelayMs: 1000, maxDelayMs: 8000, qps: 0 });
  const attempts: number[] = [];
  let failUntil = 6;
  void queue.run(1, async () => {
    attempts.push(clock.now());
    if (attempts.length <= failUntil) throw new Error("API server said no");
  });
  queue.add("a");
  for (let ms = 0; ms < 40_000; ms += 250) {
    await settle();
    clock.advance(250);
  }
  await settle();
  t.same(attempts, [0, 1000, 3000, 7000, 15_000, 23_000, 31_000], "delays 1, 2, 4, 8 (cap), 8, 8 s");
  t.equal(queue.numRequeues("a"), 0, "the success forgot the failures");

  failUntil = attempts.length + 1;
  const before = clock.now();
  queue.add("a");
  await settle();
  clock.advance(999);
  await settle();
  t.equal(attempts.length, 8, "failed once more");
  clock.advance(1);
  await settle();
  t.same(attempts.slice(-2).map((a) => a - before), [0, 1000], "the next failure starts again from 1 s");
  await queue.shutdown();
});

t.test("the global token bucket spaces out retries of many keys", async (t) => {
  const clock = new ManualClock();
  const queue = new WorkQueue({ clock, baseDelayMs: 1, maxDelayMs: 1000, qps: 1, burst: 2 });
  for (const key of ["k1", "k2", "k3", "k4"]) queue.addRateLimited(key);
  t.equal(queue.delayed, 4);
  clock.advance(1);
  t.equal(queue.depth, 2, "the burst of two goes after the per-key delay");
  clock.advance(998);
  t.equal(queue.depth, 2);
  clock.advance(1);
  t.equal(queue.depth, 3, "then one per second");
  clock.advance(1000);
  t.equal(queue.depth, 4);
  t.equal(queue.delayed, 0);
});

t.test("addAfter keeps the earliest time a key was asked for", async (t) => {
  const clock = new ManualClock();
  const queue = new WorkQueue({ clock });
  queue.addAfter("a", 5000);
  queue.addAfter("a", 1000);
  queue.addAfter("a", 3000);
  t.equal(queue.delayed, 1);
  clock.advance(999);
  t.equal(queue.depth, 0);
  clock.advance(1);
  t.equal(queue.depth, 1);
  t.equal(clock.pending, 0, "the later timers are gone, so no second add follows");
  queue.addAfter("b", 0);
  t.equal(queue.depth, 2, "no delay means add now");
});

t.test("the time a key waited in the queue is reported", async (t) => {
  const clock = new ManualClock();
  const reports: { key: string; queuedMs: number; failed: boolean }[] = [];
  const queue = new WorkQueue({
    clock,
    onProcessed: (e) => reports.push({ key: e.key, queuedMs: e.queuedMs, failed: e.error !== undefined }),
  });
  queue.add("a");
  clock.advance(500);
  queue.add("a");
  clock.advance(250);
  void queue.run(1, async () => {
    throw new Error("boom");
  });
  await settle();
  t.same(reports, [{ key: "a", queuedMs: 750, failed: true }], "measured from the first add");
  await queue.shutdown();
});

t.test("shutdown lets in-flight work finish, drops the rest and ignores new adds", async (t) => {
  const clock = new ManualClock();
  const queue = new WorkQueue({ clock });
  const release = deferred();
  const started: string[] = [];
  const finished: string[] = [];
  const running = queue.run(1, async (key) => {
    started.push(key);
    await release.promise;
    finished.push(key);
  });
  queue.add("a");
  queue.add("b");
  queue.addAfter("c", 1000);
  await settle();
  t.same(started, ["a"]);

  let drained = false;
  const shutdown = queue.shutdown().then(() => {
    drained = true;
  });
  await settle();
  t.notOk(drained, "waits for the in-flight reconcile");
  queue.add("d");
  queue.addRateLimited("e");
  t.equal(queue.depth, 0);
  t.equal(queue.delayed, 0);
  t.equal(clock.pending, 0, "delay timers are cancelled so the process can exit");

  release.resolve();
  await shutdown;
  await running;
  t.ok(drained);
  t.same(finished, ["a"], "only the in-flight key was processed");
  t.equal(await queue.get(), undefined, "get() after shutdown says the queue is done");
  await queue.shutdown();
});

t.test("shutdown of a queue that never ran resolves at once", async (t) => {
  const queue = new WorkQueue({ clock: new ManualClock() });
  queue.add("a");
  await queue.shutdown();
  t.equal(queue.depth, 0);
});
