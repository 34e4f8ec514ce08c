import t from "tap";
import { kubeSlicesSelector, SweepSchedule } from "../../aggregator/foreign-slices.ts";

t.test("the selector names the Service and both of Kubernetes' slice writers", async (t) => {
  t.equal(
    kubeSlicesSelector("corens"),
    "kubernetes.io/service-name=corens,endpointslice.kubernetes.io/managed-by in (endpointslice-controller.k8s.io,endpointslicemirroring-controller.k8s.io)",
  );
});

t.test("sweeps at once after a repair, then at each offset, then stops", async (t) => {
  const schedule = new SweepSchedule([0, 2000, 10_000]);
  t.notOk(schedule.due("ns/a", 0), "nothing is due before a repair");
  schedule.repaired("ns/a", 1000);
  t.ok(schedule.due("ns/a", 1000), "due at once");
  t.equal(schedule.swept("ns/a", 1000), 2000, "next in 2 s");
  t.notOk(schedule.due("ns/a", 2999), "not before the next offset");
  t.ok(schedule.due("ns/a", 3000));
  // A late reconcile skips offsets already passed.
  t.equal(schedule.swept("ns/a", 3500), 7500, "the 10 s offset is next");
  t.ok(schedule.due("ns/a", 11_000));
  t.equal(schedule.swept("ns/a", 11_000), undefined, "done after the last offset");
  t.notOk(schedule.due("ns/a", 60_000));
});

t.test("a sweep that comes late past every offset ends the schedule", async (t) => {
  const schedule = new SweepSchedule([0, 2000]);
  schedule.repaired("k", 0);
  t.equal(schedule.swept("k", 5000), undefined);
  t.notOk(schedule.due("k", 5000));
});

t.test("a new repair starts the schedule again; forget drops it; keys are independent", async (t) => {
  const schedule = new SweepSchedule([0, 2000]);
  schedule.repaired("a", 0);
  schedule.repaired("b", 0);
  schedule.swept("a", 0);
  schedule.repaired("a", 1000);
  t.ok(schedule.due("a", 1000), "due at once again");
  schedule.forget("b");
  t.notOk(schedule.due("b", 5000));
  t.ok(schedule.due("a", 3000));
  t.throws(() => new SweepSchedule([]), /at least one offset/);
});
