// A NetService's status goes out on a lane of its own: a reconcile hands it
// over and is done, the lane writes it at once when a condition changes,
// holds count-only changes for the pacing interval, and always ends with the
// last counts submitted.
import t from "tap";
import { StatusWriter } from "../../aggregator/status-writer.ts";
import type { NetServiceObject } from "../../aggregator/caches.ts";
import type { Term, Writer } from "../../aggregator/writer.ts";
import type { NetService } from "../../common/api.ts";
import { ManualClock } from "../../common/kube/clock.ts";
import type { KubeObject } from "../../common/kube/object.ts";
import { createRootLogger } from "../../common/log.ts";
import type { MergedNetService } from "../../common/merge.ts";
import { netService } from "./objects.ts";

const key = "default/corens";

function published(ready: number): MergedNetService {
  return {
    endpoints: Array.from({ length: ready }, () => ({}) as MergedNetService["endpoints"][number]),
    readyEndpoints: ready,
    notReadyEndpoints: 0,
    nodesReporting: ready > 0 ? 1 : 0,
    agents: { reporting: 1, liveNodes: 1 },
    staleNodes: [],
    unservedNodes: [],
  };
}

/** The lane with a writer that stores what it applies, as the API server would. */
function lane(ns: NetService) {
  const clock = new ManualClock(0);
  const applied: { at: number; ready: number | undefined; reason: string | undefined }[] = [];
  let stored: NetServiceObject = { apiVersion: "svcctl.metaswitch.com/v1alpha1", kind: "NetService", metadata: { ...ns.metadata } };
  const writer = {
    applyStatus: async (object: KubeObject & { status?: NetServiceObject["status"] }) => {
      stored = { ...stored, status: object.status };
      applied.push({ at: clock.now(), ready: object.status?.readyEndpoints, reason: object.status?.conditions?.[0]?.reason });
    },
    countWrite: () => {},
  } as unknown as Writer;
  const status = new StatusWriter({
    writer,
    events: { record: async () => {} },
    eventWindowMs: 300_000,
    countsIntervalMs: 1000,
    clock,
    logger: createRootLogger({ env: { LOG_LEVEL: "silent" } }),
    current: () => stored,
  });
  const controller = new AbortController();
  const term: Term = { signal: controller.signal, over: () => controller.signal.aborted, mayWrite: () => !controller.signal.aborted };
  const running = status.run(term, 2);
  return { clock, applied, status, stored: () => stored, end: async () => (controller.abort(), await running) };
}

const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
};

t.test("the lane writes a condition change at once and paces count-only changes, ending with the last counts", async (t) => {
  const ns = netService();
  const { clock, applied, status, end } = lane(ns);

  status.submit(key, ns, published(1), []);
  await settle();
  t.same(applied, [{ at: 0, ready: 1, reason: "EndpointsPublished" }], "the first status is written at once");

  clock.advance(100);
  status.submit(key, ns, published(2), []);
  await settle();
  clock.advance(400);
  status.submit(key, ns, published(3), []);
  await settle();
  t.equal(applied.length, 1, "count-only changes within the interval wait");

  clock.advance(500);
  await settle();
  t.same(applied.at(-1), { at: 1000, ready: 3, reason: "EndpointsPublished" }, "one write when the interval is over, with the last counts");

  clock.advance(100);
  status.submit(key, ns, published(0), []);
  await settle();
  t.same(applied.at(-1), { at: 1100, ready: 0, reason: "NoMatchingPods" }, "a change of the Ready condition is not held back");
  t.equal(applied.length, 3);
  await end();
});

t.test("nothing is written once the term is over, nor for an earlier NetService of the same name", async (t) => {
  const ns = netService();
  const { clock, applied, status, end } = lane(ns);
  status.submit(key, netService({ uid: "uid-of-a-deleted-one" }), published(1), []);
  await settle();
  t.same(applied, [], "a submission for another uid is dropped");
  await end();
  status.submit(key, ns, published(1), []);
  clock.advance(5000);
  await settle();
  t.same(applied, [], "no lane, no write");
});

t.test("a NetService that stops parsing gets InvalidSpec, which no earlier submission waiting on the lane overwrites", async (t) => {
  const ns = netService();
  const { clock, applied, status, stored, end } = lane(ns);
  status.submit(key, ns, published(1), []);
  await settle();
  clock.advance(100);
  status.submit(key, ns, published(2), []);
  await settle();
  t.equal(applied.length, 1, "a count-only change waits for its interval");

  clock.advance(100);
  status.submitInvalid(stored(), ["spec.selector: Required"], createRootLogger({ env: { LOG_LEVEL: "silent" } }));
  await settle();
  t.same(applied.at(-1), { at: 200, ready: 1, reason: "InvalidSpec" }, "written at once, with the counts as they were");

  clock.advance(2000);
  await settle();
  t.equal(applied.length, 2, "the earlier submission is gone, not written when its interval is over");
  t.equal(stored().status?.conditions?.[0]?.reason, "InvalidSpec");
  await end();
});
