import t from "tap";
import { PodPlacements, podsToPlace, trustedReports, type Placement } from "../../aggregator/pod-placement.ts";
import type { NodeReport } from "../../common/merge.ts";

function report(nodeName: string, pods: { name: string; uid: string }[]): NodeReport {
  return {
    nodeName,
    nodeUid: `uid-${nodeName}`,
    spec: {
      nodeName,
      pods: pods.map((pod) => ({ namespace: "default", ...pod, serving: true, terminating: false })),
      netServices: [
        { namespace: "default", name: "corens", uid: "ns", generation: 1, endpoints: pods.map((_, index) => ({ pod: index, addresses: [`10.0.0.${index + 1}`] })) },
      ],
    },
  };
}

t.test("only endpoints of pods that run on the reporting node are trusted", async (t) => {
  const placements = new Map<string, Placement>([
    ["uid-a", { nodeName: "n1" }],
    ["uid-b", { nodeName: "n2" }],
    ["uid-gone", { absent: true }],
    ["uid-pending", { unscheduled: true, at: 0 }],
  ]);
  const reports = [
    report("n1", [
      { name: "a", uid: "uid-a" },
      { name: "b", uid: "uid-b" },
      { name: "gone", uid: "uid-gone" },
      { name: "pending", uid: "uid-pending" },
      { name: "unread", uid: "uid-unread" },
    ]),
    report("n2", [{ name: "b", uid: "uid-b" }]),
  ];
  const { trusted, rejected } = trustedReports(reports, (uid) => placements.get(uid));
  t.same(
    trusted.map((each) => each.spec.netServices[0]?.endpoints.map((endpoint) => each.spec.pods[endpoint.pod]?.name)),
    [["a"], ["b"]],
  );
  t.same(rejected, [
    { reportingNode: "n1", pod: { namespace: "default", name: "b", uid: "uid-b" }, runsOn: "n2" },
    { reportingNode: "n1", pod: { namespace: "default", name: "gone", uid: "uid-gone" } },
    { reportingNode: "n1", pod: { namespace: "default", name: "pending", uid: "uid-pending" } },
    { reportingNode: "n1", pod: { namespace: "default", name: "unread", uid: "uid-unread" } },
  ]);
  t.equal(trusted[1], reports[1], "an untouched report is passed through as it is");
});

t.test("one read per pod lifetime: a pod seen before costs nothing, a pod not scheduled is read again only after a while", async (t) => {
  let now = 0;
  const pods: Record<string, { uid: string; nodeName?: string }> = {
    a: { uid: "uid-a", nodeName: "n1" },
    b: { uid: "uid-b-new", nodeName: "n1" },
    p: { uid: "uid-p" },
  };
  const reads: string[] = [];
  const placements = new PodPlacements({
    read: async (pod) => {
      reads.push(pod.name);
      return pods[pod.name];
    },
    now: () => now,
    concurrency: 2,
  });
  const signal = new AbortController().signal;
  const wanted = podsToPlace([
    report("n1", [
      { name: "a", uid: "uid-a" },
      { name: "b", uid: "uid-b-old" },
      { name: "p", uid: "uid-p" },
      { name: "x", uid: "uid-x" },
    ]),
    report("n2", [{ name: "a", uid: "uid-a" }]),
  ]);
  t.equal(wanted.length, 4, "a pod named by two reports is read once");
  await placements.place(wanted, signal);
  t.same(reads.sort(), ["a", "b", "p", "x"]);
  t.same(placements.placementOf("uid-a"), { nodeName: "n1" });
  t.same(placements.placementOf("uid-b-old"), { absent: true }, "the name now belongs to another pod");
  t.same(placements.placementOf("uid-x"), { absent: true }, "no such pod");
  t.same(placements.placementOf("uid-p"), { unscheduled: true, at: 0 });
  await placements.place(wanted, signal);
  t.equal(placements.reads, 4, "nothing read again");
  now = 30_000;
  pods.p = { uid: "uid-p", nodeName: "n2" };
  await placements.place(wanted, signal);
  t.equal(placements.reads, 5, "the unscheduled pod is looked at again");
  t.same(placements.placementOf("uid-p"), { nodeName: "n2" });
  placements.retain(new Set(["uid-a"]));
  t.equal(placements.size, 1, "pods no report names are forgotten");
});

t.test("a failed read throws and leaves the pod unknown, to be read again", async (t) => {
  let fail = true;
  let now = 0;
  const placements = new PodPlacements({
    read: async () => {
      if (fail) throw new Error("connection reset");
      return { uid: "uid-a", nodeName: "n1" };
    },
    now: () => now,
  });
  const pods = [{ namespace: "default", name: "a", uid: "uid-a" }];
  await t.rejects(placements.place(pods, new AbortController().signal), /connection reset/);
  t.equal(placements.placementOf("uid-a"), undefined);
  fail = false;
  now = 1000;
  await placements.place(pods, new AbortController().signal);
  t.same(placements.placementOf("uid-a"), { nodeName: "n1" });
});

// An API server refusing reads (429 from API Priority and Fairness, 503)
// while reports keep changing: every change is a reconcile, and each one
// retrying its reads at once was a hot loop (971 requests in 40 s, 590 of
// them refused, in a fault run). Reads wait out one backoff for all pods.
t.test("after a failed read no pod is read until a backoff has passed; it doubles per failed wave and resets on success", async (t) => {
  let now = 0;
  let refuse = true;
  const reads: string[] = [];
  const placements = new PodPlacements({
    read: async (pod) => {
      reads.push(pod.name);
      if (refuse) throw new Error("429 TooManyRequests");
      return { uid: pod.uid, nodeName: "n1" };
    },
    now: () => now,
    concurrency: 4,
  });
  const signal = new AbortController().signal;
  const pods = ["a", "b", "c"].map((name) => ({ namespace: "default", name, uid: `uid-${name}` }));
  await t.rejects(placements.place(pods, signal), /429/);
  t.equal(reads.length, 3, "one wave of reads");
  for (const at of [1, 500, 999]) {
    now = at;
    await t.rejects(placements.place(pods, signal), { name: "PlacementBackoffError" }, `at ${at} ms: refused without a read`);
  }
  t.equal(reads.length, 3, "no read during the backoff, however many reconciles ask");
  now = 1000;
  await t.rejects(placements.place(pods, signal), /429/);
  t.equal(reads.length, 6, "one more wave once the backoff has passed");
  now = 2999;
  await t.rejects(placements.place(pods, signal), { name: "PlacementBackoffError" }, "the second backoff is 2 s");
  t.equal(reads.length, 6);
  now = 3000;
  refuse = false;
  await placements.place(pods, signal);
  t.equal(reads.length, 9);
  t.same(placements.placementOf("uid-c"), { nodeName: "n1" });
  refuse = true;
  await t.rejects(placements.place([{ namespace: "default", name: "d", uid: "uid-d" }], signal), /429/);
  now = 4000;
  await t.rejects(placements.place([{ namespace: "default", name: "d", uid: "uid-d" }], signal), /429/, "after a success the backoff starts again at 1 s");
  await placements.place(pods, signal);
  t.pass("pods already known need no read, backoff or not");
});
