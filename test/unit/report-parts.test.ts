import t from "tap";
import type { ReportSpec } from "../../common/api.ts";
import { reportPartName, splitReport } from "../../common/report-parts.ts";

function report(netServices: number, podsPerService: number, pods = podsPerService): ReportSpec {
  return {
    nodeName: "node-1",
    triggerTime: "2026-11-28T10:00:00.000Z",
    pods: Array.from({ length: pods }, (_, i) => ({ namespace: "default", name: `pod-${i}`, uid: `uid-${i}`, serving: true, terminating: false })),
    netServices: Array.from({ length: netServices }, (_, s) => ({
      namespace: "default",
      name: `ns-${String(s).padStart(5, "0")}`,
      uid: `ns-uid-${s}`,
      generation: 1,
      endpoints: Array.from({ length: podsPerService }, (_, p) => ({ pod: (s + p) % pods, addresses: [`10.1.${p}.${s % 250}`] })),
    })),
  };
}

/** (NetService, pod name, address) triples: what a report publishes, independent of indexing. */
function published(parts: ReportSpec[]): string[] {
  return parts.flatMap((part) => part.netServices.flatMap((entry) =>
    entry.endpoints.map((e) => `${entry.name} ${part.pods[e.pod]!.name} ${e.addresses.join(",")}`))).sort();
}

t.test("a report within the limits stays one part, unchanged", async (t) => {
  const spec = report(3, 2);
  t.same(splitReport(spec, { maxBytes: 1_000_000, maxNetServices: 10_000 }), [spec]);
});

t.test("an empty report is still one part: the node's presence", async (t) => {
  const spec = report(0, 0);
  t.same(splitReport(spec, { maxBytes: 100, maxNetServices: 10 }), [spec]);
});

t.test("thousands of NetServices selecting the same pods split into parts that each fit", async (t) => {
  const spec = report(3000, 110, 110);
  const limits = { maxBytes: 1_000_000, maxNetServices: 10_000 };
  const whole = Buffer.byteLength(JSON.stringify(spec));
  const parts = splitReport(spec, limits);
  t.ok(whole > limits.maxBytes, `the whole report is ${whole} bytes`);
  t.ok(parts.length > 1, `${parts.length} parts`);
  for (const part of parts) {
    t.ok(Buffer.byteLength(JSON.stringify(part)) <= limits.maxBytes, "each part fits");
    t.equal(part.nodeName, "node-1");
    t.equal(part.triggerTime, spec.triggerTime);
    t.ok(part.netServices.every((entry) => entry.endpoints.every((e) => e.pod < part.pods.length)), "pod indexes point into the part");
  }
  t.same(published(parts), published([spec]), "the parts publish exactly what the report does");
});

t.test("the entry count limit of the CRD is respected", async (t) => {
  const parts = splitReport(report(25, 1, 5), { maxBytes: 1_000_000, maxNetServices: 10 });
  t.same(parts.map((p) => p.netServices.length), [10, 10, 5]);
  t.ok(parts.every((p) => p.pods.length <= 5), "each part lists only the pods it refers to");
});

t.test("an entry larger than a part gets a part of its own", async (t) => {
  const parts = splitReport(report(3, 50, 50), { maxBytes: 500, maxNetServices: 10 });
  t.equal(parts.length, 3);
  t.same(published(parts), published([report(3, 50, 50)]));
});

t.test("parts are named after the node", async (t) => {
  t.equal(reportPartName("node-1", 0), "node-1");
  t.equal(reportPartName("node-1", 2), "node-1.2");
});
