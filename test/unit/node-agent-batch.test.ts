import t from "tap";
import { Backoff } from "../../common/kube/backoff.ts";
import { ReportBatch } from "../../node-agent/batch.ts";

function batch(debounceMs = 100) {
  return new ReportBatch({ debounceMs, backoff: new Backoff({ initialMs: 1000, maxMs: 8000, jitter: 0 }) });
}

t.test("a burst of changes is one batch whose trigger time is its first change", async (t) => {
  const b = batch();
  t.equal(b.changeSeen(1000), 100, "the first change waits the debounce");
  t.equal(b.changeSeen(1040), 100, "later changes ask for the same delay (the queue keeps the earliest time)");
  t.equal(b.changeSeen(1090), 100);
  t.ok(b.pending);
  t.equal(b.begin(), 1000, "the batch publishes as of its first change");
  t.notOk(b.pending, "nothing pending once a recompute took the batch");
  t.equal(b.begin(), undefined, "a recompute without a change (start, verification) has no trigger of its own");
});

t.test("a change seen during a recompute starts the next batch", async (t) => {
  const b = batch();
  b.changeSeen(1000);
  const trigger = b.begin();
  b.changeSeen(1150);
  b.succeeded();
  t.equal(trigger, 1000);
  t.equal(b.begin(), 1150, "the next batch keeps its own first change");
});

t.test("a failed recompute keeps its changes pending, with the earliest trigger", async (t) => {
  const b = batch();
  b.changeSeen(1000);
  const trigger = b.begin();
  b.changeSeen(1200);
  b.failed(1300, trigger);
  t.ok(b.pending);
  t.equal(b.begin(), 1000, "the retry publishes as of the first unpublished change");
});

t.test("failures back off, and new changes do not bring the retry forward", async (t) => {
  const b = batch();
  b.changeSeen(0);
  t.equal(b.failed(100, b.begin()), 1000, "first retry after 1 s");
  t.equal(b.changeSeen(200), 900, "a change during the backoff waits for the retry time, not the debounce");
  t.equal(b.delay(1050), 100, "past the retry time, the debounce again");
  t.equal(b.failed(1100, b.begin()), 2000, "then 2 s");
  t.equal(b.failed(3100, b.begin()), 4000, "then 4 s");
  t.equal(b.failed(7100, b.begin()), 8000, "up to the cap");
  t.equal(b.failed(15100, b.begin()), 8000, "and no further");
  b.succeeded();
  t.equal(b.changeSeen(15200), 100, "a success resets the backoff");
  t.equal(b.failed(15300, b.begin()), 1000, "the next failure starts from 1 s again");
});

t.test("a zero debounce recomputes at once; a negative one is refused", async (t) => {
  t.equal(batch(0).changeSeen(5), 0);
  t.throws(() => batch(-1), /debounceMs must be >= 0/);
});

t.test("a failed recompute with no change since keeps its own trigger; one that had none leaves nothing pending", async (t) => {
  const b = batch();
  b.changeSeen(1000);
  b.failed(1300, b.begin());
  t.equal(b.begin(), 1000, "the retry still publishes as of the first change");
  const verification = batch();
  verification.failed(500, verification.begin());
  t.notOk(verification.pending, "a failed verification is no change");
  t.equal(verification.begin(), undefined);
});
