// The bound on what separate Endpoints and slice lanes could save, measured
// from the API server's audit log: batches found per NetService, and how
// long each batch's Endpoints write ran past its slices.
import t from "tap";
import { auditWrite, laneBound, microseconds, type AuditWrite } from "../../hack/bench/lanes.ts";

const write = (key: string, kind: AuditWrite["kind"], receivedUs: number, doneUs: number): AuditWrite => ({ key, kind, receivedUs, doneUs });

t.test("a batch is one NetService's writes sent together; the slices wait only for an Endpoints write that ends after them", async (t) => {
  const bound = laneBound([
    // ns/a: a batch where Endpoints ends 3 ms after the slice, then one where it ends first.
    write("ns/a", "Endpoints", 0, 10_000),
    write("ns/a", "EndpointSlice", 500, 7_000),
    write("ns/a", "EndpointSlice", 100_000, 110_000),
    write("ns/a", "Endpoints", 100_200, 105_000),
    // ns/b: slices only; a second NetService's writes never join ns/a's batch.
    write("ns/b", "EndpointSlice", 0, 4_000),
  ]);
  t.equal(bound.batches, 3);
  t.equal(bound.both, 2, "two batches wrote both kinds");
  t.equal(bound.endpointsLast, 1);
  t.same([bound.slicesWaited.maxMs, bound.slicesWaited.p50Ms], [3, 0], "3 ms in the first batch, none in the second");
  t.same([bound.batchMs.count, bound.batchMs.maxMs], [3, 10]);
});

t.test("writes more than 5 ms apart are separate batches", async (t) => {
  const bound = laneBound([write("ns/a", "Endpoints", 0, 1_000), write("ns/a", "EndpointSlice", 6_000, 7_000)]);
  t.equal(bound.batches, 2);
  t.equal(bound.both, 0);
});

t.test("only the aggregator's applies of Endpoints and slices are read, with microseconds", async (t) => {
  const line = (extra: object) =>
    JSON.stringify({
      stage: "ResponseComplete",
      verb: "patch",
      userAgent: "netservice-aggregator/0.1.0",
      objectRef: { resource: "endpointslices", namespace: "bench", name: "bench-12-ipv4-0" },
      requestReceivedTimestamp: "2026-12-07T17:00:00.000100Z",
      stageTimestamp: "2026-12-07T17:00:00.012345Z",
      ...extra,
    });
  const parsed = auditWrite(line({}));
  t.same(parsed && { key: parsed.key, kind: parsed.kind, us: parsed.doneUs - parsed.receivedUs }, { key: "bench/bench-12", kind: "EndpointSlice", us: 12_245 });
  t.equal(auditWrite(line({ objectRef: { resource: "endpoints", namespace: "bench", name: "bench-12" } }))?.key, "bench/bench-12");
  t.equal(auditWrite(line({ userAgent: "kube-controller-manager/v1.35" })), undefined, "not ours");
  t.equal(auditWrite(line({ verb: "get" })), undefined, "not a write");
  t.equal(auditWrite(line({ stage: "ResponseStarted" })), undefined);
  t.equal(auditWrite(line({ objectRef: { resource: "netservices", subresource: "status", namespace: "bench", name: "bench-12" } })), undefined);
  t.equal(auditWrite("not json"), undefined);
  t.equal(microseconds("2026-12-07T17:00:01Z") - microseconds("2026-12-07T17:00:00.5Z"), 500_000);
});
