import t from "tap";
import type { NetServiceStatus } from "../../common/desired-status.ts";
import { countsOnly, Pacer } from "../../aggregator/pacing.ts";

function status(ready: number, overrides: { status?: "True" | "False"; reason?: string; generation?: number } = {}): NetServiceStatus {
  const generation = overrides.generation ?? 1;
  return {
    observedGeneration: generation,
    conditions: [
      {
        type: "Ready",
        status: overrides.status ?? "True",
        observedGeneration: generation,
        lastTransitionTime: "2026-01-01T00:00:00Z",
        reason: overrides.reason ?? "EndpointsPublished",
        message: `${ready} ready and 0 not ready pods published from 1 nodes`,
      },
    ],
    readyEndpoints: ready,
    notReadyEndpoints: 0,
    nodesReporting: 1,
  };
}

t.test("a write after a quiet interval goes at once; the ones that follow wait for the interval", async (t) => {
  const pacer = new Pacer(1000);
  t.equal(pacer.delay("ns/a", 5000), 0, "nothing written yet");
  pacer.wrote("ns/a", 5000);
  t.equal(pacer.delay("ns/a", 5200), 800, "200 ms after the last write");
  t.equal(pacer.delay("ns/a", 6000), 0, "the interval is over");
  t.equal(pacer.delay("ns/b", 5200), 0, "each NetService has its own interval");
  pacer.forget("ns/a");
  t.equal(pacer.delay("ns/a", 5200), 0, "a forgotten NetService starts afresh");
  const off = new Pacer(0);
  off.wrote("ns/a", 5000);
  t.equal(off.delay("ns/a", 5001), 0, "interval 0 never holds a write back");
});

t.test("a status change a user acts on is no mere count change", async (t) => {
  t.ok(countsOnly(status(2), status(1)), "new counts (and the message stating them)");
  t.notOk(countsOnly(status(0, { status: "False", reason: "NoMatchingPods" }), status(1)), "Ready turns False");
  t.notOk(countsOnly(status(1, { generation: 2 }), status(1)), "a new generation is observed");
  t.notOk(countsOnly(status(1, { reason: "ServiceNameTaken", status: "False" }), status(1, { reason: "ApplyFailed", status: "False" })), "another reason");
  t.notOk(countsOnly(status(1), undefined), "no status yet");
  t.notOk(countsOnly({ ...status(1), conditions: [] }, status(1)), "no Ready condition");
});
