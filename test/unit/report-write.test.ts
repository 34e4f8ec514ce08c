// The report-write benchmark's patches (hack/bench/report-write.ts): what
// each way sends for a change. The benchmark itself checks every write
// against the API server (the stored spec must be the one meant).
import t from "tap";
import { netServiceSchema } from "../../common/api.ts";
import { buildNodeReport } from "../../common/node-report.ts";
import { flipReadiness, jsonPatchOf, mergePatchOf, nodePods } from "../../hack/bench/report-write.ts";
import { netServiceManifest } from "../../hack/bench/workload.ts";

t.test("a json patch names only the fields that changed", async (t) => {
  const cases: { name: string; before: unknown; after: unknown; patch: unknown[] }[] = [
    { name: "nothing changed", before: { a: [1, { b: 2 }] }, after: { a: [1, { b: 2 }] }, patch: [] },
    { name: "a member of a list", before: { pods: [{ serving: true }, { serving: true }] }, after: { pods: [{ serving: true }, { serving: false }] }, patch: [{ op: "replace", path: "/pods/1/serving", value: false }] },
    { name: "a list of another length, whole", before: { a: [1] }, after: { a: [1, 2] }, patch: [{ op: "replace", path: "/a", value: [1, 2] }] },
    { name: "a key added and one removed", before: { a: 1 }, after: { b: 2 }, patch: [{ op: "remove", path: "/a" }, { op: "add", path: "/b", value: 2 }] },
    { name: "a key with / and ~, escaped", before: { "x/~y": 1 }, after: { "x/~y": 2 }, patch: [{ op: "replace", path: "/x~1~0y", value: 2 }] },
  ];
  for (const c of cases) t.same(jsonPatchOf(c.before, c.after), c.patch, c.name);
});

t.test("a merge patch sends a changed list whole and a removed key as null", async (t) => {
  t.same(mergePatchOf({ a: { b: 1, c: 2 }, d: [1, 2], e: 1 }, { a: { b: 1, c: 3 }, d: [1, 3] }), { e: null, a: { c: 3 }, d: [1, 3] });
  t.same(mergePatchOf({ a: [1] }, { a: [1] }), {}, "nothing changed, nothing sent");
});

t.test("a readiness flip changes one pod's serving in the agent's report", async (t) => {
  const netServices = [0, 1].map((i) => {
    const manifest = netServiceManifest("bench", i);
    return netServiceSchema.parse({ ...manifest, metadata: { ...manifest.metadata, uid: `uid-${i}`, generation: 1 } });
  });
  const pods = nodePods("node-a", 4, netServices);
  const before = buildNodeReport("node-a", pods, netServices);
  t.equal(before.pods.length, 4);
  t.same(before.netServices.map((entry) => entry.endpoints.length), [2, 2], "every pod contributes to its NetService");
  pods[2] = flipReadiness(pods[2]!);
  const after = buildNodeReport("node-a", pods, netServices);
  t.same(jsonPatchOf(before, after), [{ op: "replace", path: "/pods/2/serving", value: false }]);
});
