// The benchmark's pure parts: what a side shows of a pod, matching events
// with what the watches saw, percentiles, the command line, /proc and audit
// parsing, the chart. Timings of a real run are never asserted anywhere.
import path from "node:path";
import t from "tap";
import { controllersFlowSchema, nameClasses, unfairness, type ApfClasses } from "../../hack/bench/apf.ts";
import { addAuditLine, auditProgram, auditWrites, type AuditCounts } from "../../hack/bench/audit.ts";
import { latencyChartSvg } from "../../hack/bench/chart.ts";
import { LatencyMatcher, summarise, type Settled } from "../../hack/bench/latency.ts";
import { BenchArgsError, parseBenchArgs, presets } from "../../hack/bench/params.ts";
import { entriesOfEndpoints, entriesOfReport, entriesOfSlice, PodViews } from "../../hack/bench/pod-views.ts";
import { parseProcStats } from "../../hack/bench/proc-stats.ts";
import { writesOf } from "../../hack/bench/request-counter.ts";
import { PodPool } from "../../hack/bench/workload.ts";
import { median, runsTable } from "../../hack/bench/runs.ts";
import type { BenchResult } from "../../hack/bench/result.ts";
import { seededRandom } from "../../hack/sim/random.ts";
import { deployedNodeOptions, type DeployedPod } from "../../hack/credentials.ts";
import { loadManifests } from "../../hack/manifests.ts";
import { repoRoot } from "../../hack/cluster/binaries.ts";

const pod = (uid: string) => ({ kind: "Pod", uid });

t.test("a pod's view merges every object of a side that lists it", async (t) => {
  const views = new PodViews();
  const v4 = { endpoints: [{ addresses: ["10.0.0.1"], conditions: { ready: false }, targetRef: pod("a") }] };
  const v6 = { endpoints: [{ addresses: ["fd00::1"], conditions: { ready: true }, targetRef: pod("a") }] };
  t.same(views.update("ns/s4", entriesOfSlice(v4)), [{ uid: "a", view: { present: true, ready: false, addresses: ["10.0.0.1"] } }]);
  t.same(views.update("ns/s6", entriesOfSlice(v6)), [{ uid: "a", view: { present: true, ready: true, addresses: ["10.0.0.1", "fd00::1"] } }]);
  t.same(views.update("ns/s6", entriesOfSlice(v6)), [], "an update that changes nothing for the pod is no observation");
  t.same(views.update("ns/s4", undefined), [{ uid: "a", view: { present: true, ready: true, addresses: ["fd00::1"] } }]);
  t.same(views.update("ns/s6", entriesOfSlice({ endpoints: null })), [{ uid: "a", view: { present: false } }], "a slice with no endpoints lists nobody");
});

t.test("a pod that moves from one slice to another never looks absent", async (t) => {
  const views = new PodViews();
  const entry = { endpoints: [{ addresses: ["10.0.0.1"], targetRef: pod("a") }] };
  views.update("ns/one", entriesOfSlice(entry));
  t.same(views.update("ns/two", entriesOfSlice(entry)), [], "listed twice: same view");
  t.same(views.update("ns/one", entriesOfSlice({ endpoints: [] })), []);
  t.same(views.update("ns/two", undefined), [{ uid: "a", view: { present: false } }]);
});

t.test("Endpoints: addresses are ready, notReadyAddresses not; endpoints without a pod are ignored", async (t) => {
  const entries = entriesOfEndpoints({
    subsets: [
      { addresses: [{ ip: "10.0.0.1", targetRef: pod("a") }, { ip: "10.0.0.9" }], notReadyAddresses: [{ ip: "10.0.0.2", targetRef: pod("b") }] },
      { addresses: [{ ip: "10.0.1.1", targetRef: pod("a") }] },
    ],
  });
  t.same([...entries], [["a", { ready: true, addresses: ["10.0.0.1", "10.0.1.1"] }], ["b", { ready: false, addresses: ["10.0.0.2"] }]]);
  t.same([...entriesOfSlice({ endpoints: [{ addresses: ["10.0.0.3"], targetRef: pod("c") }] })], [["c", { ready: true, addresses: ["10.0.0.3"] }]], "a missing ready condition means ready");
});

t.test("an event is timed by the first observation at or after its write that reaches the target", async (t) => {
  const settled: Settled[] = [];
  const matcher = new LatencyMatcher({ timeoutMs: 1000, onSettled: (s) => settled.push(s) });
  const ready = { present: true as const, ready: true, addresses: ["10.0.0.1"] };
  const unready = { ...ready, ready: false };
  matcher.observe({ side: "kube", uid: "a", view: unready, at: 90 });
  // The watch delivered before the write's caller got its answer: the observation is already there.
  matcher.observe({ side: "kube", uid: "a", view: ready, at: 130 });
  matcher.expect({ kind: "ready", uid: "a", t0: 100, targets: { kube: { kind: "ready" }, slices: { kind: "ready", addresses: ["10.0.0.1"] } } });
  t.ok(matcher.isPending("a"), "still waiting for our side");
  matcher.observe({ side: "slices", uid: "a", view: { ...ready, addresses: ["10.0.0.2"] }, at: 150 });
  t.ok(matcher.isPending("a"), "the wrong address does not count");
  matcher.observe({ side: "slices", uid: "a", view: ready, at: 180 });
  t.notOk(matcher.isPending("a"));
  t.same(matcher.samples("kube"), [30]);
  t.same(matcher.samples("slices", "ready"), [80]);
  t.same(settled.map((s) => s.latencies), [{ kube: 30, slices: 80 }]);
});

t.test("a side that never shows the event counts as missed after the timeout", async (t) => {
  const settled: Settled[] = [];
  const matcher = new LatencyMatcher({ timeoutMs: 1000, onSettled: (s) => settled.push(s) });
  matcher.expect({ kind: "remove", uid: "a", t0: 0, targets: { kube: { kind: "absent" }, endpoints: { kind: "absent" } } });
  matcher.observe({ side: "kube", uid: "a", view: { present: false }, at: 20 });
  matcher.expire(999);
  t.equal(matcher.pendingCount, 1);
  matcher.expire(1000);
  t.equal(matcher.pendingCount, 0);
  t.equal(matcher.missed("endpoints"), 1);
  t.equal(matcher.missed("kube"), 0);
  t.same(settled[0]?.missed, ["endpoints"]);
  t.equal(matcher.events(), 1);
});

t.test("an event with a group counts in its side's figures and in its group's, a missed one too", async (t) => {
  const matcher = new LatencyMatcher({ timeoutMs: 1000 });
  const ready = { present: true as const, ready: true, addresses: [] };
  matcher.expect({ kind: "ready", uid: "a", t0: 0, targets: { reports: { kind: "ready" } }, group: "agent-process" });
  matcher.expect({ kind: "ready", uid: "b", t0: 0, targets: { reports: { kind: "ready" } } });
  matcher.expect({ kind: "unready", uid: "c", t0: 0, targets: { reports: { kind: "unready" } }, group: "agent-process" });
  matcher.observe({ side: "reports", uid: "a", view: ready, at: 40 });
  matcher.observe({ side: "reports", uid: "b", view: ready, at: 70 });
  matcher.expire(1000);
  t.same(matcher.samples("reports").sort(), [40, 70]);
  t.same(matcher.samples("reports", "ready", "agent-process"), [40]);
  t.same(matcher.samples("reports", undefined, "agent-process"), [40]);
  t.equal(matcher.missed("reports", undefined, "agent-process"), 1);
  t.equal(matcher.missed("reports"), 1);
  t.same(matcher.samples("reports", "ready", "other"), [], "no event of an unknown group");
});

t.test("the bench's FlowSchema puts both our service accounts, for every request, in kube-controller-manager's priority level", async (t) => {
  const schema = controllersFlowSchema("netservice-system") as { spec: Record<string, any> };
  t.equal(schema.spec.priorityLevelConfiguration.name, "workload-high");
  t.ok(schema.spec.matchingPrecedence < 9000, "matched before the service-accounts FlowSchema (9000) that puts them in workload-low");
  t.same(schema.spec.distinguisherMethod, { type: "ByUser" }, "each program a flow of its own, as kube-system-service-accounts does");
  t.same(schema.spec.rules[0].subjects.map((s: { serviceAccount: unknown }) => s.serviceAccount), [
    { name: "netservice-agent", namespace: "netservice-system" },
    { name: "netservice-aggregator", namespace: "netservice-system" },
  ]);
  t.same(schema.spec.rules[0].resourceRules[0], { verbs: ["*"], apiGroups: ["*"], resources: ["*"], clusterScope: true, namespaces: ["*"] });
});

t.test("API priority classes are named from their uids and compared: ours must share kube-controller-manager's level", async (t) => {
  const object = (uid: string, name: string) => ({ metadata: { uid, name } });
  const named = nameClasses(
    { agent: { flowSchema: "f1", priorityLevel: "p1" }, other: { flowSchema: "gone", priorityLevel: "" } },
    [object("f1", "service-accounts")],
    [object("p1", "workload-low")],
  );
  t.same(named, { agent: { flowSchema: "service-accounts", priorityLevel: "workload-low" }, other: { flowSchema: "uid gone", priorityLevel: "uid (none)" } });
  const high = { flowSchema: "kube-system-service-accounts", priorityLevel: "workload-high" };
  const ours = { flowSchema: "netservice-controllers", priorityLevel: "workload-high" };
  const fair: ApfClasses = { agent: ours, aggregator: ours, "kube-endpointslice": high, "kube-endpoints": high };
  t.equal(unfairness(fair), undefined);
  const asDeployed = { ...fair, agent: { flowSchema: "service-accounts", priorityLevel: "workload-low" } };
  t.match(unfairness(asDeployed), /agent in workload-low \(FlowSchema service-accounts\)/);
  t.match(unfairness({ ...fair, "kube-endpoints": { flowSchema: "endpoint-controller", priorityLevel: "exempt" } }), /not the same/, "kube's two controllers in two levels leave no one level to share");
});

t.test("percentiles are nearest-rank; no samples give zeros with count 0", async (t) => {
  const samples = Array.from({ length: 100 }, (_, i) => 100 - i);
  t.match(summarise(samples), { count: 100, p50Ms: 50, p90Ms: 90, p99Ms: 99, maxMs: 100, meanMs: 50.5 });
  t.match(summarise([7]), { count: 1, p50Ms: 7, p99Ms: 7 });
  t.same(summarise([]), { count: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, maxMs: 0, meanMs: 0 });
});

t.test("the command line picks a preset and overrides any field", async (t) => {
  const quick = parseBenchArgs([]);
  t.ok(!quick.help && quick.params.preset === "quick" && !quick.json);
  const parsed = parseBenchArgs(["--preset", "scale", "--nodes", "20", "--readiness-flips", "2.5", "--kcm-flag=--kube-api-qps=100", "--json", "--no-audit"]);
  if (parsed.help) throw new Error("unexpected help");
  t.equal(parsed.params.nodes, 20);
  t.equal(parsed.params.netServices, presets.scale?.netServices);
  t.equal(parsed.params.churn.readinessFlips, 2.5);
  t.same(parsed.params.kcmFlags, ["--kube-api-qps=100"]);
  t.equal(parsed.params.audit, false);
  t.ok(parsed.json);
  t.same(parseBenchArgs(["-h"]), { help: true });
  t.equal(quick.help ? undefined : quick.params.agentHeartbeatSeconds, 10, "the agents renew their heartbeat as the program does by default");
  const slowBeat = parseBenchArgs(["--agent-heartbeat-seconds", "30"]);
  t.equal(slowBeat.help ? undefined : slowBeat.params.agentHeartbeatSeconds, 30);
  t.throws(() => parseBenchArgs(["--agent-heartbeat-seconds", "0"]), BenchArgsError);
  const v8 = parseBenchArgs(["--node-option=--max-semi-space-size=2", "--node-option=--max-old-space-size=512"]);
  t.same(v8.help ? undefined : v8.params.nodeOptions, ["--max-semi-space-size=2", "--max-old-space-size=512"], "Node flags for both program processes, in order");
  t.same(quick.help ? undefined : quick.params.nodeOptions, [], "none by default: the programs run as deployed");
  t.throws(() => parseBenchArgs(["--node-option", "max-semi-space-size=2"]), BenchArgsError, "a flag without its dashes is refused");
  t.throws(() => parseBenchArgs(["--preset", "huge"]), BenchArgsError);
  t.throws(() => parseBenchArgs(["--nodes", "1.5"]), /whole number/);
  t.throws(() => parseBenchArgs(["--kcm-flag", "kube-api-qps=5"]), /dashes/);
  t.throws(() => parseBenchArgs(["--nodes", "1", "--pods-per-node", "1", "--netservices", "2"]), /cannot give each/);
  t.throws(() => parseBenchArgs(["--bogus"]), BenchArgsError);
  t.equal(quick.help ? undefined : quick.params.apf, "same-level", "ours queue where kube-controller-manager's controllers do unless asked otherwise");
  const deployed = parseBenchArgs(["--apf", "as-deployed"]);
  t.equal(deployed.help ? undefined : deployed.params.apf, "as-deployed");
  t.throws(() => parseBenchArgs(["--apf", "exempt"]), /--apf must be one of same-level, as-deployed/);
  t.equal(quick.help ? undefined : quick.params.programs, "bundled", "the programs run bundled, as the image runs them, unless asked otherwise");
  const sources = parseBenchArgs(["--programs", "sources"]);
  t.equal(sources.help ? undefined : sources.params.programs, "sources");
  t.throws(() => parseBenchArgs(["--programs", "ts"]), /--programs must be one of bundled, sources/);
  t.same(quick.help ? undefined : quick.params.metricsPorts, { agent: 0, aggregator: 0 }, "free ports unless asked");
  const ports = parseBenchArgs(["--agent-metrics-port", "9101", "--aggregator-metrics-port=9102"]);
  t.same(ports.help ? undefined : ports.params.metricsPorts, { agent: 9101, aggregator: 9102 });
  t.throws(() => parseBenchArgs(["--agent-metrics-port", "70000"]), /--agent-metrics-port must be a whole number from 0 to 65535/);
});

t.test("/proc figures: CPU ticks after the command name, memory in kB", async (t) => {
  const stat = "42 (node main (x)) S 1 42 42 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 11 0 100 1000 2000";
  const status = "Name:\tnode\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
  t.same(parseProcStats(42, stat, status), { pid: 42, cpuSeconds: 3, rssMb: 100, peakRssMb: 200 });
});

t.test("audit lines are counted by program, verb and resource within the window", async (t) => {
  const counts: AuditCounts = { requests: {}, lines: 0 };
  const line = (fields: Record<string, unknown>) =>
    JSON.stringify({ stage: "ResponseComplete", verb: "patch", requestReceivedTimestamp: "2026-01-01T00:00:01.500000Z", userAgent: "netservice-aggregator/0.1.0", user: { username: "admin" }, objectRef: { resource: "endpointslices" }, ...fields });
  const window = { from: Date.parse("2026-01-01T00:00:01Z"), to: Date.parse("2026-01-01T00:00:02Z") };
  addAuditLine(counts, line({}), window);
  addAuditLine(counts, line({ objectRef: { resource: "netservices", subresource: "status" } }), window);
  addAuditLine(counts, line({ stage: "ResponseStarted" }), window);
  addAuditLine(counts, line({ requestReceivedTimestamp: "2026-01-01T00:00:03Z" }), window);
  addAuditLine(counts, line({ verb: "update", userAgent: "kube-controller-manager/v1.36.3", user: { username: "system:serviceaccount:kube-system:endpointslice-controller" } }), window);
  addAuditLine(counts, line({ verb: "watch" }), window);
  addAuditLine(counts, "not json", window);
  t.same(counts.requests.aggregator, { patch: { endpointslices: 1, "netservices/status": 1 }, watch: { endpointslices: 1 } });
  t.equal(auditWrites(counts, "aggregator"), 2);
  t.equal(auditWrites(counts, "aggregator", ["endpointslices"]), 1);
  t.equal(auditWrites(counts, "kube-endpointslice"), 1);
  t.equal(auditProgram("netservice-agent/0.1.0 (in-process)", "admin"), "agents");
  t.equal(auditProgram("netservice-local/0.1.0", "admin"), "sim");
});

t.test("the chart draws one curve per series with samples and names every series", async (t) => {
  const svg = latencyChartSvg({
    title: "a <title>",
    series: [
      { label: "ours", color: "red", samples: [5, 12, 40, 3000] },
      { label: "kube", color: "blue", samples: [2, 4] },
      { label: "floor", color: "gray", samples: [] },
    ],
  });
  t.match(svg, /^<\?xml/);
  t.equal(svg.match(/<polyline/g)?.length, 2);
  t.match(svg, /a &lt;title&gt;/);
  t.match(svg, /floor \(no samples\)/);
  t.match(svg, />10 s</, "the axis reaches past the slowest sample");
});

t.test("the pod pool picks only pods that pass the filter, and forgets removed ones", async (t) => {
  const pool = new PodPool(seededRandom(7));
  for (const uid of ["a", "b", "c"]) pool.add({ namespace: "n", name: uid, uid, nodeName: "x", ready: true, busy: uid !== "b", deleting: false });
  for (let i = 0; i < 20; i++) t.equal(pool.pick((p) => !p.busy)?.uid, "b");
  pool.remove("b");
  t.equal(pool.pick((p) => !p.busy), undefined);
  t.equal(pool.size, 2);
  t.ok(pool.get("c"));
});

t.test("a node report publishes a pod once, ready when serving and not terminating", async (t) => {
  const report = {
    spec: {
      pods: [
        { uid: "a", serving: true, terminating: false },
        { uid: "b", serving: true, terminating: true },
      ],
      netServices: [
        { endpoints: [{ pod: 0, addresses: ["10.0.0.1"] }, { pod: 1, addresses: ["10.0.0.2"] }] },
        { endpoints: [{ pod: 0, addresses: ["10.0.0.1"] }] },
        { endpoints: [{ pod: 7, addresses: ["10.0.0.9"] }] },
      ],
    },
  };
  t.same([...entriesOfReport(report)], [["a", { ready: true, addresses: ["10.0.0.1"] }], ["b", { ready: false, addresses: ["10.0.0.2"] }]]);
});

t.test("several runs make one table: ratios within each run, then the median of each row", async (t) => {
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 2, 3]), 2.5);
  t.equal(median([null, 5, Number.NaN]), 5, "missing values are left out");
  t.equal(median([]), null);
  const run = (ours: number, kube: number) => ({
    environment: { loadAverageBefore: [1] },
    ours: { p50Ms: ours, p99Ms: ours, missed: 0 },
    kube: { p50Ms: kube, p99Ms: kube, missed: 0 },
    oursEndpoints: { p50Ms: 0 },
    oursReports: { p50Ms: 0, p99Ms: 0 },
    floor: { p50Ms: 0, p99Ms: 0 },
    addressChanges: { slices: { p50Ms: 0 } },
    writesPerPodChange: 3,
    kubeWritesPerPodChange: null,
    agentRssMb: 100,
    aggregatorRssMb: 200,
    convergeSeconds: 1,
    kubeConvergeSeconds: 1,
  }) as unknown as BenchResult;
  // The median of the ratios (2, 1, 4) is 2, where the ratio of the medians would be 100 / 60.
  const table = runsTable([run(100, 50), run(60, 60), run(400, 100)]);
  t.match(table, /\| ours \/ kube, p50 \| 2\.00 \| 1\.00 \| 4\.00 \| 2\.00 \|/);
  t.match(table, /\| first hop, agent process: p50 \(ms\) \| - \| - \| - \| - \|/, "a run from before agentProcess existed shows a dash");
  t.match(table, /\| writes per pod change: kube \| - \| - \| - \| - \|/, "no audit log, no figure");
});

t.test("writes are counted by verb, and by resource when one is named", async (t) => {
  const counts = { "apply netservicenodereports": 7, "apply leases": 40, "get netservicenodereports": 3, "delete netservicenodereports": 1, "create leases": 1, "watch pods": 2 };
  t.equal(writesOf(counts), 49, "every write, whatever its resource");
  t.equal(writesOf(counts, "netservicenodereports"), 8, "the reports' writes only: heartbeats are not a pod change's cost");
  t.equal(writesOf(counts, "leases"), 41);
  t.equal(writesOf(counts, "pods"), 0, "a watch is no write");
  t.equal(writesOf({}), 0);
});

t.test("the program processes get the Node.js flags deploy/ gives them: the aggregator its NODE_OPTIONS, the agent none", async (t) => {
  const objects = await loadManifests(path.join(repoRoot, "deploy", "netservice.yaml"));
  const podOf = (kind: string) => {
    const workload = objects.find((object) => object.kind === kind) as { spec: { template: { spec: DeployedPod["spec"] } } } | undefined;
    return { metadata: { name: kind, uid: "" }, spec: workload?.spec.template.spec };
  };
  t.same(deployedNodeOptions(podOf("Deployment")), ["--max-semi-space-size=2"]);
  t.same(deployedNodeOptions(podOf("DaemonSet")), []);
  t.same(deployedNodeOptions({ metadata: { name: "p", uid: "" }, spec: { containers: [{ env: [{ name: "NODE_OPTIONS", value: " --a=1  --b " }] }] } }), ["--a=1", "--b"], "split on spaces");
});
