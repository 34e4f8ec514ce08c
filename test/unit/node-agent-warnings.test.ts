import t from "tap";
import { annotations } from "../../common/api.ts";
import { annotationProblem, maxWarningMessageLength, podWarning, warningReasons } from "../../node-agent/pod-warnings.ts";
import { WarningLimiter } from "../../node-agent/warning-limiter.ts";
import type { PodWarning } from "../../node-agent/pod-warnings.ts";
import { attachment, netService, pod } from "./objects.ts";

const corens = netService({ name: "corens", netAttachDef: "core" });
const accessns = netService({ name: "accessns", netAttachDef: "access" });
const elsewhere = netService({ name: "other-ns", namespace: "other", netAttachDef: "core" });

const broken = (value: string, extra = {}) => pod({ extraAnnotations: { [annotations.networkStatus]: value }, ...extra });

t.test("a malformed network-status is a problem that leaves the pod out of the NetServices selecting it", async (t) => {
  const p = broken('[{"name": "default/core", "ips": "10.0.0.1"}]');
  const problem = annotationProblem(p);
  t.equal(problem?.reason, warningReasons.malformedNetworkStatus);
  t.equal(problem?.value, '[{"name": "default/core", "ips": "10.0.0.1"}]', "keyed by the value, verbatim");
  const warning = podWarning(p, problem!, [corens, accessns, elsewhere]);
  t.same(warning?.pod, { namespace: "default", name: "utils-1", uid: "uid-utils-1" });
  t.match(warning?.message, /^k8s\.v1\.cni\.cncf\.io\/network-status: entry 0 field ips: .*: the pod is left out of NetServices accessns, corens until/);
  t.notMatch(warning?.message, /other-ns/, "a NetService of another namespace does not select the pod");
});

t.test("the legacy annotation is reported when it is the one in use", async (t) => {
  const p = pod({ extraAnnotations: { [annotations.legacyNetworkStatus]: "not json" } });
  t.same(annotationProblem(p), {
    reason: warningReasons.malformedNetworkStatus,
    error: `${annotations.legacyNetworkStatus}: not valid JSON`,
    value: "not json",
  });
});

t.test("a malformed networks request is its own, milder problem", async (t) => {
  const p = pod({ networks: "[{oops", networkStatus: [attachment("default/core", ["10.0.0.1"])] });
  const problem = annotationProblem(p);
  t.equal(problem?.reason, warningReasons.malformedNetworksRequest);
  t.equal(problem?.value, "[{oops");
  t.match(podWarning(p, problem!, [corens])?.message, /still count for NetService corens/);
});

t.test("more addresses on one network than an endpoint may hold: a warning that says what is left out", async (t) => {
  const ips = Array.from({ length: 120 }, (_, i) => `10.0.${Math.floor(i / 100)}.${(i % 100) + 1}/24`);
  const crowded = pod({ networkStatus: [attachment("default/core", ips.slice(0, 70)), attachment("default/core", [...ips.slice(60), "10.0.0.1"], { interface: "net2" }), attachment("default/access", ["10.1.0.1"])] });
  const problem = annotationProblem(crowded);
  t.equal(problem?.reason, warningReasons.tooManyAddresses);
  t.match(problem?.error, /lists 120 addresses on network default\/core/, "distinct addresses over all its attachments");
  t.match(podWarning(crowded, problem!, [corens, accessns])?.message, /NetServices accessns, corens publish only the first 100 of them on that network/);
  t.match(podWarning(crowded, problem!, [corens])?.message, /NetService corens publishes only the first 100/);
  const hundred = pod({ networkStatus: [attachment("default/core", ips.slice(0, 100)), attachment("default/access", ips.slice(0, 100))] });
  t.equal(annotationProblem(hundred), undefined, "100 on each network are all published");
});

t.test("no problem, no warning", async (t) => {
  t.equal(annotationProblem(pod({ networkStatus: [attachment("default/core", ["10.0.0.1"])] })), undefined);
  t.equal(annotationProblem(pod()), undefined, "no annotation at all");
  t.equal(annotationProblem(broken("")), undefined, "an emptied annotation");
});

t.test("no warning when nothing selects the pod or it has finished", async (t) => {
  const p = broken("not json", { labels: { app: "nobody" } });
  t.equal(podWarning(p, annotationProblem(p)!, [corens]), undefined, "not selected");
  const done = broken("not json", { phase: "Succeeded" });
  t.equal(podWarning(done, annotationProblem(done)!, [corens]), undefined, "finished");
});

t.test("the message fits an Event note however many NetServices select the pod", async (t) => {
  const many = Array.from({ length: 400 }, (_, i) => netService({ name: `service-with-a-long-name-${i}` }));
  const p = broken("not json");
  const message = podWarning(p, annotationProblem(p)!, many)?.message ?? "";
  t.ok(message.length <= maxWarningMessageLength, `${message.length} characters`);
  t.match(message, /and 395 more/);
});

function warning(uid: string, value: string): PodWarning {
  return { pod: { namespace: "default", name: uid, uid }, reason: warningReasons.malformedNetworkStatus, message: "m", value };
}

t.test("one Event per pod and distinct value", async (t) => {
  const limiter = new WarningLimiter({ now: 0 });
  t.ok(limiter.admit(warning("a", "x"), 0), "first time");
  t.notOk(limiter.admit(warning("a", "x"), 10), "same value again");
  t.ok(limiter.admit(warning("a", "y"), 20), "another value");
  t.ok(limiter.admit(warning("b", "x"), 30), "another pod with the same value");
});

t.test("a failed Event write can be retried", async (t) => {
  const limiter = new WarningLimiter({ now: 0 });
  t.ok(limiter.admit(warning("a", "x"), 0));
  limiter.forget(warning("a", "x"));
  t.ok(limiter.admit(warning("a", "x"), 1));
});

t.test("a pod that is gone is forgotten", async (t) => {
  const limiter = new WarningLimiter({ now: 0 });
  limiter.admit(warning("a", "x"), 0);
  limiter.admit(warning("b", "x"), 0);
  limiter.retain(new Set(["b"]));
  t.ok(limiter.admit(warning("a", "x"), 1), "a recreated pod with the old uid would warn again");
  t.notOk(limiter.admit(warning("b", "x"), 1), "b is remembered");
});

t.test("the token bucket caps the rate across pods, and refused warnings come back later", async (t) => {
  const limiter = new WarningLimiter({ now: 0, burst: 3, perMinute: 6 });
  const admitted = ["a", "b", "c", "d", "e"].filter((uid) => limiter.admit(warning(uid, "x"), 0));
  t.same(admitted, ["a", "b", "c"], "a burst of 3");
  t.notOk(limiter.admit(warning("d", "x"), 5_000), "no token 5 s later at 6 per minute");
  t.ok(limiter.admit(warning("d", "x"), 10_000), "one token after 10 s, for the warning refused before");
  t.notOk(limiter.admit(warning("e", "x"), 10_000));
});

t.test("memory per pod is bounded", async (t) => {
  const limiter = new WarningLimiter({ now: 0, burst: 100, valuesPerPod: 2 });
  limiter.admit(warning("a", "1"), 0);
  limiter.admit(warning("a", "2"), 0);
  limiter.admit(warning("a", "3"), 0);
  t.ok(limiter.admit(warning("a", "1"), 0), "the oldest value was forgotten");
  t.notOk(limiter.admit(warning("a", "3"), 0), "recent ones are remembered");
});

t.test("by default 20 warnings at once, then 10 a minute", async (t) => {
  const limiter = new WarningLimiter({ now: 0 });
  const uids = Array.from({ length: 21 }, (_, i) => `p${i}`);
  t.equal(uids.filter((uid) => limiter.admit(warning(uid, "x"), 0)).length, 20);
  t.notOk(limiter.admit(warning("late", "x"), 5_999), "no token before 6 s");
  t.ok(limiter.admit(warning("late", "x"), 6_000), "one token every 6 s");
});

t.test("forgetting a failed Event forgets that value only, and a pod never seen is no error", async (t) => {
  const limiter = new WarningLimiter({ now: 0 });
  limiter.admit(warning("a", "x"), 0);
  limiter.admit(warning("a", "y"), 0);
  limiter.forget(warning("a", "x"));
  t.notOk(limiter.admit(warning("a", "y"), 1), "y was recorded and stays so");
  t.ok(limiter.admit(warning("a", "x"), 1), "x can be recorded again");
  limiter.forget(warning("never-seen", "x"));
  t.ok(limiter.admit(warning("never-seen", "x"), 2));
});

t.test("up to five NetServices are named, more are counted", async (t) => {
  const p = broken("not json");
  const named = (count: number) => Array.from({ length: count }, (_, i) => netService({ name: `s${i}` }));
  t.match(podWarning(p, annotationProblem(p)!, named(5))?.message, /the pod is left out of NetServices s0, s1, s2, s3, s4 until/);
  t.match(podWarning(p, annotationProblem(p)!, named(6))?.message, /the pod is left out of NetServices s0, s1, s2, s3, s4 and 1 more until/);
});

t.test("a message longer than an Event note allows is cut to fit, and says so", async (t) => {
  const p = broken("not json");
  const long = Array.from({ length: 5 }, (_, i) => netService({ name: `${"n".repeat(240)}-${i}` }));
  const message = podWarning(p, annotationProblem(p)!, long)?.message ?? "";
  t.equal(message.length, maxWarningMessageLength);
  t.ok(message.endsWith("..."), message.slice(-20));
  const short = podWarning(p, annotationProblem(p)!, [corens])?.message ?? "";
  t.notOk(short.endsWith("..."), "a message that fits is whole");
});

t.test("a pod without any annotation has no problem", async (t) => {
  t.equal(annotationProblem({ metadata: { namespace: "default", name: "a", uid: "u" } }), undefined);
});

t.test("the crowded network is the one with the most addresses, wherever it is listed", async (t) => {
  const ips = Array.from({ length: 120 }, (_, i) => `10.0.${Math.floor(i / 100)}.${(i % 100) + 1}`);
  const crowded = pod({ networkStatus: [attachment("default/access", ["10.1.0.1"]), attachment("default/core", ips)] });
  t.match(annotationProblem(crowded)?.error, /lists 120 addresses on network default\/core/);
});

t.test("a malformed networks request's warning says how to fix it", async (t) => {
  const p = pod({ networks: "[{oops", networkStatus: [attachment("default/core", ["10.0.0.1"])] });
  t.match(
    podWarning(p, annotationProblem(p)!, [corens])?.message,
    'its attachments still count for NetService corens, but a bare netAttachDef matches them only in the pod\'s own namespace until the annotation is fixed (a JSON list of {name, namespace} or "ns/name@if, ...")',
  );
});

t.test("a message of exactly the limit is not cut", async (t) => {
  const p = broken("not json");
  const message = (names: string[]) => podWarning(p, annotationProblem(p)!, names.map((name) => netService({ name })))?.message ?? "";
  const names = Array.from({ length: 5 }, (_, i) => `${i}`.padEnd(150, "n"));
  const shortBy = maxWarningMessageLength - message(names).length;
  t.ok(shortBy > 0 && shortBy < 100, `${shortBy} characters short`);
  const exact = message([...names.slice(0, 4), `4`.padEnd(150 + shortBy, "n")]);
  t.equal(exact.length, maxWarningMessageLength);
  t.notOk(exact.endsWith("..."), "whole");
});
