// Events only on transitions and never a flood; which failures go into the
// status and which are just retried.
import t from "tap";
import type { Condition } from "../../common/desired-status.ts";
import { KubeApiError } from "../../common/kube/http.ts";
import { isNamespaceTerminating, isRefusal } from "../../aggregator/errors.ts";
import { EventLimiter, readyTransitionEvent } from "../../aggregator/events.ts";

const ready = (status: Condition["status"], reason: string, message = "m"): Condition => ({
  type: "Ready",
  status,
  reason,
  message,
  lastTransitionTime: "2026-01-01T00:00:00Z",
});

t.test("an event for a transition of the Ready condition, and only then", async (t) => {
  const cases: { name: string; previous: Condition[] | undefined; next: Condition; expect: unknown }[] = [
    { name: "first status", previous: undefined, next: ready("True", "EndpointsPublished", "2 ready"), expect: { type: "Normal", reason: "EndpointsPublished", note: "2 ready" } },
    { name: "no change", previous: [ready("True", "EndpointsPublished")], next: ready("True", "EndpointsPublished", "3 ready"), expect: undefined },
    { name: "same reason, new message", previous: [ready("False", "ServiceNameTaken", "a")], next: ready("False", "ServiceNameTaken", "b"), expect: undefined },
    { name: "problem appears: warning", previous: [ready("True", "EndpointsPublished")], next: ready("False", "ServiceNameTaken", "fix it"), expect: { type: "Warning", reason: "ServiceNameTaken", note: "fix it" } },
    { name: "another problem: warning", previous: [ready("False", "ServiceNameTaken")], next: ready("False", "ApplyFailed"), expect: { type: "Warning", reason: "ApplyFailed", note: "m" } },
    { name: "no pods is normal", previous: [ready("True", "EndpointsPublished")], next: ready("False", "NoMatchingPods"), expect: { type: "Normal", reason: "NoMatchingPods", note: "m" } },
    { name: "an invalid spec is a warning", previous: undefined, next: ready("False", "InvalidSpec"), expect: { type: "Warning", reason: "InvalidSpec", note: "m" } },
    { name: "other condition types do not count", previous: [{ ...ready("True", "X"), type: "Other" }], next: ready("True", "EndpointsPublished"), expect: { type: "Normal", reason: "EndpointsPublished", note: "m" } },
  ];
  for (const c of cases) t.same(readyTransitionEvent(c.previous, c.next), c.expect, c.name);
});

t.test("at most one event per NetService and reason per window", async (t) => {
  const limiter = new EventLimiter({ windowMs: 1000 });
  t.equal(limiter.allow("default/a", "ServiceNameTaken", 0), true);
  t.equal(limiter.allow("default/a", "ServiceNameTaken", 999), false, "flapping back within the window");
  t.equal(limiter.allow("default/a", "EndpointsPublished", 10), true, "another reason");
  t.equal(limiter.allow("default/b", "ServiceNameTaken", 10), true, "another NetService");
  t.equal(limiter.allow("default/a", "ServiceNameTaken", 1000), true, "after the window");
  t.equal(limiter.allow("default/a", "ServiceNameTaken", 1500), false);
  limiter.forget("default/a");
  t.equal(limiter.allow("default/a", "ServiceNameTaken", 1600), true, "a deleted and recreated NetService starts afresh");
  t.equal(limiter.allow("default/ab", "ServiceNameTaken", 1600), true, "forget does not touch a longer name with the same prefix");
});

t.test("refusals go into the status as ApplyFailed; the rest is retried quietly", async (t) => {
  const api = (code: number, message = "x") => new KubeApiError("PATCH", "/p", code, JSON.stringify({ kind: "Status", code, message, reason: "R" }));
  const cases: { name: string; err: unknown; refusal: boolean }[] = [
    { name: "422 invalid object", err: api(422, "spec.ports[0].port: Invalid value"), refusal: true },
    { name: "403 forbidden (RBAC, admission)", err: api(403), refusal: true },
    { name: "400 bad request", err: api(400), refusal: true },
    { name: "422 because the target was replaced (uid immutable)", err: api(422, 'metadata.uid: Invalid value: "x": field is immutable'), refusal: false },
    { name: "409 conflict", err: api(409), refusal: false },
    { name: "404 gone meanwhile", err: api(404), refusal: false },
    { name: "429 too many requests", err: api(429), refusal: false },
    { name: "500", err: api(500), refusal: false },
    { name: "503", err: api(503), refusal: false },
    { name: "connection refused", err: new Error("connect ECONNREFUSED"), refusal: false },
  ];
  for (const c of cases) t.equal(isRefusal(c.err), c.refusal, c.name);
});

t.test("a create refused because the namespace is being deleted is neither a refusal for the status nor a failure", async (t) => {
  // As kube-apiserver's NamespaceLifecycle admission answers.
  const terminating = new KubeApiError("POST", "/api/v1/namespaces/gone/services", 403, JSON.stringify({
    kind: "Status",
    code: 403,
    reason: "Forbidden",
    message: 'services "corens" is forbidden: unable to create new content in namespace gone because it is being terminated',
    details: { name: "corens", kind: "services", causes: [{ reason: "NamespaceTerminating", message: "namespace gone is being terminated", field: "metadata.namespace", type: "NamespaceTerminating" }] },
  }));
  t.equal(isNamespaceTerminating(terminating), true);
  t.equal(isRefusal(terminating), false, "no ApplyFailed, no Warning Event");
  const rbac = new KubeApiError("POST", "/p", 403, JSON.stringify({ kind: "Status", code: 403, reason: "Forbidden", message: "cannot create resource" }));
  t.equal(isNamespaceTerminating(rbac), false, "any other 403 still is one");
});
