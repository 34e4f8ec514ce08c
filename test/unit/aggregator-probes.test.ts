// The per-NetService Ready gauge: what the leader's scrape shows of each
// NetService's Ready condition, and that a changed reason or a deleted
// NetService leaves no series behind.
import t from "tap";
import type { AggregatorMetrics } from "../../aggregator/aggregator.ts";
import { aggregatorMetrics, type ProbedAggregator } from "../../aggregator/probes.ts";
import type { NetServiceObject } from "../../aggregator/caches.ts";
import { readyState, type ReadyState } from "../../aggregator/status-writer.ts";
import type { Condition } from "../../common/desired-status.ts";

const quiet: AggregatorMetrics = {
  leading: true,
  ready: true,
  writes: [],
  writeFailures: 0,
  reconciles: 0,
  reconcileErrors: 0,
  staleCacheRequeues: 0,
  reconcileDurationMs: { count: 0, sum: 0, max: 0 },
  queueDepth: 0,
  queueDelayed: 0,
  endpointsPublished: { ready: 0, notReady: 0 },
  unhealthyNodes: [],
  rejectedEndpoints: { otherNode: 0, notFound: 0 },
  podReads: 0,
  netServices: [],
};

/** The gauge's samples of one scrape, as "namespace/name reason value". */
async function readyLines(netServices: ReadyState[], registry = aggregatorMetrics(() => probed(netServices)).registry): Promise<string[]> {
  const text = await registry.metrics();
  return text
    .split("\n")
    .filter((line) => line.startsWith("netservice_aggregator_netservice_ready{"))
    .map((line) => {
      const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map(([, key, value]) => [key, value]));
      return `${labels.netservice_namespace}/${labels.netservice} ${labels.reason} ${line.split(" ").at(-1)}`;
    })
    .sort();
}

function probed(netServices: ReadyState[]): ProbedAggregator {
  return { ready: true, metrics: () => ({ ...quiet, netServices }) };
}

t.test("one series per NetService: 1 when Ready, 0 otherwise, with the condition's reason", async (t) => {
  t.same(
    await readyLines([
      { namespace: "ns-a", name: "corens", ready: true, reason: "EndpointsPublished" },
      { namespace: "ns-a", name: "empty", ready: false, reason: "NoMatchingPods" },
      { namespace: "ns-b", name: "corens", ready: false, reason: "NotObserved" },
    ]),
    ["ns-a/corens EndpointsPublished 1", "ns-a/empty NoMatchingPods 0", "ns-b/corens NotObserved 0"],
  );
  t.same(await readyLines([]), [], "no NetService (or a standby): no series");
});

t.test("a scrape shows only the current reason and the NetServices that still exist", async (t) => {
  let states: ReadyState[] = [
    { namespace: "ns", name: "a", ready: false, reason: "NoMatchingPods" },
    { namespace: "ns", name: "b", ready: true, reason: "EndpointsPublished" },
  ];
  const { registry } = aggregatorMetrics(() => ({ ready: true, metrics: () => ({ ...quiet, netServices: states }) }));
  t.same(await readyLines([], registry), ["ns/a NoMatchingPods 0", "ns/b EndpointsPublished 1"]);
  states = [{ namespace: "ns", name: "a", ready: true, reason: "EndpointsPublished" }];
  t.same(await readyLines([], registry), ["ns/a EndpointsPublished 1"], "a's old reason and the deleted b are gone");
});

t.test("readyState reads the Ready condition as written", async (t) => {
  const object = (conditions?: Pick<Condition, "type" | "status" | "reason">[]): NetServiceObject => ({
    apiVersion: "svcctl.metaswitch.com/v1alpha1",
    kind: "NetService",
    metadata: { namespace: "ns", name: "corens" },
    ...(conditions ? { status: { conditions: conditions.map((each) => ({ ...each, message: "", lastTransitionTime: "2026-12-07T06:00:00Z" })) } } : {}),
  });
  t.same(readyState(object()), { namespace: "ns", name: "corens", ready: false, reason: "NotObserved" }, "no status yet");
  t.same(readyState(object([{ type: "Ready", status: "True", reason: "EndpointsPublished" }])), {
    namespace: "ns",
    name: "corens",
    ready: true,
    reason: "EndpointsPublished",
  });
  t.same(
    readyState(
      object([
        { type: "NodesReporting", status: "True", reason: "AllNodesReporting" },
        { type: "Ready", status: "False", reason: "ServiceNameTaken" },
      ]),
    ),
    { namespace: "ns", name: "corens", ready: false, reason: "ServiceNameTaken" },
    "the Ready condition, wherever it is in the list",
  );
  t.same(readyState(object([{ type: "Ready", status: "Unknown", reason: "" }])).ready, false, "Unknown is not ready");
  t.same(readyState(object([{ type: "Ready", status: "Unknown", reason: "" }])).reason, "NotObserved", "an empty reason");
});
