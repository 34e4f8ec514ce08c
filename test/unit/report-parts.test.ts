import fc from "fast-check";
import t from "tap";
import type { ReportSpec } from "../../common/api.ts";
import { legacyReportName, partWriteOrder, reportPartIndex, reportPartName, splitReport } from "../../common/report-parts.ts";
import { propertyRuns } from "./objects.ts";

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
  t.equal(reportPartName("node-1", 0), "node-1.0");
  t.equal(reportPartName("node-1", 2), "node-1.2");
  t.equal(legacyReportName("node-1"), "node-1", "before parts were numbered from 0, the first part was named after the node alone");
});

/**
 * Carries a write order out on the stored parts, as the agent does (each
 * write replaces one part, then the parts past the new last one are deleted
 * from the end), and returns the first intermediate state in which an entry
 * that is in the report before and after is in no part.
 */
function firstGap(before: string[][], after: string[][], order: number[]): string | undefined {
  const state = before.map((keys) => new Set(keys));
  const kept = new Set(before.flat().filter((key) => after.flat().includes(key)));
  const check = (step: string) => {
    const present = new Set(state.flatMap((keys) => [...keys]));
    const missing = [...kept].filter((key) => !present.has(key));
    return missing.length > 0 ? `after ${step}: ${missing.join(",")} in no part` : undefined;
  };
  for (const part of order) {
    state[part] = new Set(after[part]);
    const gap = check(`writing part ${part}`);
    if (gap) return gap;
  }
  while (state.length > after.length) {
    state.pop();
    const gap = check(`deleting part ${state.length}`);
    if (gap) return gap;
  }
  const final = state.map((keys) => [...keys].sort().join(""));
  if (JSON.stringify(final) !== JSON.stringify(after.map((keys) => [...keys].sort().join("")))) return "the final state is not the desired layout";
  return undefined;
}

function changedParts(before: string[][], after: string[][]): number[] {
  return after.map((_, part) => part).filter((part) => JSON.stringify(before[part] ?? null) !== JSON.stringify(after[part]));
}

t.test("the issue's example: ABC|DEF|GHI where A grows becomes AB|CDE|FGH|I; no entry is ever in no part", async (t) => {
  const before = [["A", "B", "C"], ["D", "E", "F"], ["G", "H", "I"]];
  const after = [["A", "B"], ["C", "D", "E"], ["F", "G", "H"], ["I"]];
  t.equal(firstGap(before, after, [1, 2, 3, 0]), "after writing part 1: F in no part", "the old order, largest gains first, loses F");
  const order = partWriteOrder(before, after, changedParts(before, after));
  t.same(order, [3, 2, 1, 0]);
  t.equal(firstGap(before, after, order), undefined);
});

t.test("property: for any report before and after (entries added, removed, grown, shrunk), every intermediate state holds every kept entry", async (t) => {
  // An entry is a NetService with some endpoints; its size decides the split. Sorted by name, as reports are.
  const entry = fc.record({ id: fc.integer({ min: 0, max: 40 }), size: fc.integer({ min: 0, max: 6 }) });
  const layout = (entries: { id: number; size: number }[], limits: { maxBytes: number; maxNetServices: number }) => {
    const unique = [...new Map(entries.map((each) => [each.id, each])).values()].sort((a, b) => a.id - b.id);
    const pods = Array.from({ length: 6 }, (_, i) => ({ namespace: "default", name: `pod-${i}`, uid: `uid-${i}`, serving: true, terminating: false }));
    const spec: ReportSpec = {
      nodeName: "node-1",
      pods,
      netServices: unique.map(({ id, size }) => ({
        namespace: "default",
        name: `ns-${String(id).padStart(3, "0")}`,
        uid: `e${String(id).padStart(3, "0")}`,
        generation: 1,
        endpoints: Array.from({ length: size }, (_, p) => ({ pod: p, addresses: [`10.0.${id}.${p}`] })),
      })),
    };
    return splitReport(spec, limits).map((part) => part.netServices.map((each) => each.uid));
  };
  fc.assert(
    fc.property(
      fc.array(entry, { maxLength: 30 }),
      fc.array(entry, { maxLength: 30 }),
      fc.integer({ min: 300, max: 1500 }),
      fc.integer({ min: 1, max: 6 }),
      (first, second, maxBytes, maxNetServices) => {
        const limits = { maxBytes, maxNetServices };
        const before = layout(first, limits);
        // The after-report keeps some of the entries (resized), drops the others, adds new ones.
        const after = layout([...first.filter((_, i) => i % 3 !== 0).map((each, i) => ({ ...each, size: second[i]?.size ?? each.size })), ...second], limits);
        const gap = firstGap(before, after, partWriteOrder(before, after, changedParts(before, after)));
        if (gap) throw new Error(`${JSON.stringify(before)} -> ${JSON.stringify(after)}: ${gap}`);
      },
    ),
    { numRuns: propertyRuns },
  );
  t.pass("no gap in any generated layout change");
});

t.test("a report object's part number comes from its name: the node's name and .0 to .64", async (t) => {
  const cases: [string, string, number | undefined][] = [
    ["node-1", "node-1.0", 0],
    ["node-1", "node-1.1", 1],
    ["node-1", "node-1.64", 64],
    ["node-1", "node-1", undefined],
    ["node-1", "node-1.65", undefined],
    ["node-1", "node-1.01", undefined],
    ["node-1", "node-1.x", undefined],
    ["node-1", "node-10.0", undefined],
    ["node-1", "node-1.1.2", undefined],
    ["a", "a.1", 1],
  ];
  for (const [node, name, index] of cases) t.equal(reportPartIndex(node, name), index, `${name} of ${node}`);
  for (let index = 0; index < 65; index++) t.equal(reportPartIndex("n", reportPartName("n", index)), index);
});

t.test("no report name of one node is a report name of another, whatever the nodes are called", async (t) => {
  // Node names that are other node names plus a part suffix, as IP-named nodes can be.
  const nodes = ["a", "a.1", "a.1.0", "a.0", "10.0.0", "10.0.0.1", "10.0.0.1.2"];
  const owners = new Map<string, string>();
  for (const node of nodes) {
    for (let index = 0; index < 65; index++) {
      const name = reportPartName(node, index);
      t.equal(owners.get(name) ?? node, node, `${name}: one node's only`);
      owners.set(name, node);
      for (const other of nodes) if (other !== node) t.equal(reportPartIndex(other, name), undefined, `${name} is no part of ${other}`);
    }
  }
});

t.test("whatever the byte budget, every part fits it, and a report within 2 bytes of it stays whole", async (t) => {
  const spec = report(4, 3, 5);
  const bytes = Buffer.byteLength(JSON.stringify(spec));
  for (let maxBytes = bytes - 60; maxBytes <= bytes + 2; maxBytes++) {
    const parts = splitReport(spec, { maxBytes, maxNetServices: 10 });
    const sizes = parts.map((part) => Buffer.byteLength(JSON.stringify(part)));
    t.ok(sizes.every((size) => size <= maxBytes), `budget ${maxBytes}: parts of ${sizes.join(", ")} bytes`);
    t.same(published(parts), published([spec]));
  }
  // The estimate counts a comma before the first pod and the first entry too.
  t.same(splitReport(spec, { maxBytes: bytes + 2, maxNetServices: 10 }), [spec]);
});
