// The aggregator never decides from a cache that does not show its own
// writes, so it never writes twice from stale data: until the cache shows a
// write, it plans against what the write returned.
import t from "tap";
import type { KubeObject } from "../../common/kube/object.ts";
import { Expectations, expectationMet, isOwnWrite, planningView, type CacheView, type Expectation } from "../../aggregator/expectations.ts";

const cached = (resourceVersion: string, uid = "u1"): KubeObject => ({ metadata: { name: "x", uid, resourceVersion } });
const written = (resourceVersion: string): Expectation & { type: "written" } => ({ type: "written", resourceVersion, since: 0 });
const deleted = (uid: string): Expectation => ({ type: "deleted", uid, since: 0 });

t.test("whether the cache shows a write or a delete", async (t) => {
  const cases: { name: string; expectation: Expectation; cached: KubeObject | undefined; watched?: string; met: boolean }[] = [
    { name: "written, not cached yet", expectation: written("100"), cached: undefined, met: false },
    { name: "written, cache holds an older version", expectation: written("100"), cached: cached("99"), met: false },
    { name: "written, cache holds exactly it", expectation: written("100"), cached: cached("100"), met: true },
    { name: "written, cache holds a later change", expectation: written("100"), cached: cached("101"), met: true },
    { name: "numbers compared as numbers, not text", expectation: written("99"), cached: cached("100"), met: true },
    { name: "older by text order but larger number", expectation: written("1000"), cached: cached("999"), met: false },
    { name: "opaque versions: only equality counts", expectation: written("abc"), cached: cached("abd"), met: false },
    { name: "opaque versions, equal", expectation: written("abc"), cached: cached("abc"), met: true },
    { name: "cached object without a version", expectation: written("5"), cached: { metadata: { name: "x" } }, met: false },
    { name: "written, then deleted by someone else: the watch has passed the write", expectation: written("100"), cached: undefined, watched: "103", met: true },
    { name: "written, watch not there yet", expectation: written("100"), cached: undefined, watched: "99", met: false },
    { name: "written, watch at exactly the write", expectation: written("100"), cached: cached("98"), watched: "100", met: true },
    { name: "opaque collection versions do not count", expectation: written("100"), cached: undefined, watched: "x200", met: false },
    { name: "deleted, still cached", expectation: deleted("u1"), cached: cached("5", "u1"), met: false },
    { name: "deleted, gone from the cache", expectation: deleted("u1"), cached: undefined, met: true },
    { name: "deleted, a new object of that name is cached", expectation: deleted("u1"), cached: cached("6", "u2"), met: true },
  ];
  for (const c of cases) t.equal(expectationMet(c.expectation, { object: c.cached, collectionVersion: c.watched }), c.met, c.name);
});

t.test("pending expectations are per NetService, dropped once met or after the timeout", async (t) => {
  const expectations = new Expectations({ ttlMs: 1000 });
  const cache = new Map<string, KubeObject>();
  const lookup = (ref: { kind: string; key: string }): CacheView => ({ object: cache.get(`${ref.kind} ${ref.key}`), collectionVersion: "1" });
  const slice = { kind: "EndpointSlice", key: "default/corens-ipv4-0" };
  const service = { kind: "Service", key: "default/corens-template" };

  expectations.written("default/corens", slice, cached("10"), 0);
  expectations.deleted("default/corens", service, "old-uid", 0);
  expectations.written("default/corens", { kind: "Endpoints", key: "default/corens" }, undefined, 0);
  cache.set("Service default/corens-template", cached("3", "old-uid"));

  t.same(expectations.pending("default/other", lookup, 10), [], "another NetService is not held up");
  t.same(
    expectations.pending("default/corens", lookup, 10).map((p) => p.key),
    ["default/corens-ipv4-0", "default/corens-template"],
    "both wait; a write without a version sets no expectation",
  );
  cache.set("EndpointSlice default/corens-ipv4-0", cached("10"));
  t.same(expectations.pending("default/corens", lookup, 20).map((p) => p.key), ["default/corens-template"], "the seen write is done");
  t.same(expectations.pending("default/corens", lookup, 1000), [], "past the timeout the reconcile goes ahead");
  cache.delete("EndpointSlice default/corens-ipv4-0");
  t.same(expectations.pending("default/corens", lookup, 1001), [], "a met expectation is not asked about again");

  expectations.written("default/corens", slice, cached("11"), 2000);
  expectations.written("default/corens", slice, cached("12"), 2001);
  cache.set("EndpointSlice default/corens-ipv4-0", cached("11"));
  t.same(expectations.pending("default/corens", lookup, 2002).map((p) => p.key), ["default/corens-ipv4-0"], "the latest write is what counts");
  expectations.forget("default/corens");
  t.same(expectations.pending("default/corens", lookup, 2003), [], "a deleted NetService waits for nothing");
});

t.test("what a reconcile plans against while the cache lags our write", async (t) => {
  const stored = cached("100");
  const cases: { name: string; expectation: Expectation; cached: KubeObject | undefined; plan: KubeObject | undefined | "unknown" }[] = [
    { name: "written, cache behind: what the write returned", expectation: { ...written("100"), object: stored }, cached: cached("99"), plan: stored },
    { name: "written, not cached yet (a create): what the write returned", expectation: { ...written("100"), object: stored }, cached: undefined, plan: stored },
    { name: "written, cache caught up: the cache", expectation: { ...written("100"), object: stored }, cached: cached("100"), plan: cached("100") },
    { name: "written, someone changed it since: the cache", expectation: { ...written("100"), object: stored }, cached: cached("104"), plan: cached("104") },
    { name: "written, result not kept: wait for the cache", expectation: written("100"), cached: cached("99"), plan: "unknown" },
    { name: "deleted, still cached: nothing", expectation: deleted("u1"), cached: cached("5", "u1"), plan: undefined },
    { name: "deleted, a new object of that name: the new one", expectation: deleted("u1"), cached: cached("6", "u2"), plan: cached("6", "u2") },
  ];
  for (const c of cases) {
    const view = planningView(c.expectation, { object: c.cached, collectionVersion: "1" });
    t.same(view === "unknown" ? "unknown" : view.object, c.plan, c.name);
  }
});

t.test("an informer event that shows only our own write", async (t) => {
  const cases: { name: string; expectation: Expectation; event: { type: "add" | "update" | "delete"; object: KubeObject }; own: boolean }[] = [
    { name: "the version we wrote", expectation: written("100"), event: { type: "update", object: cached("100") }, own: true },
    { name: "the version we created", expectation: written("100"), event: { type: "add", object: cached("100") }, own: true },
    { name: "a later version: someone else's change", expectation: written("100"), event: { type: "update", object: cached("101") }, own: false },
    { name: "an earlier version", expectation: written("100"), event: { type: "update", object: cached("99") }, own: false },
    { name: "deleted after our write: someone else's delete", expectation: written("100"), event: { type: "delete", object: cached("100") }, own: false },
    { name: "the deletion we made", expectation: deleted("u1"), event: { type: "delete", object: cached("5", "u1") }, own: true },
    { name: "a new object under the name we deleted", expectation: deleted("u1"), event: { type: "add", object: cached("6", "u2") }, own: false },
    { name: "an update of the object we deleted, before its deletion shows", expectation: deleted("u1"), event: { type: "update", object: cached("6", "u1") }, own: false },
  ];
  for (const c of cases) t.equal(isOwnWrite(c.expectation, c.event), c.own, c.name);
});

t.test("the overlay a NetService's next reconcile plans against", async (t) => {
  const expectations = new Expectations({ ttlMs: 1000 });
  const cache = new Map<string, KubeObject>();
  const lookup = (ref: { kind: string; key: string }): CacheView => ({ object: cache.get(`${ref.kind} ${ref.key}`), collectionVersion: "1" });
  const slice = { kind: "EndpointSlice", key: "default/corens-ipv4-0" };
  const endpoints = { kind: "Endpoints", key: "default/corens" };
  const oldSlice = { kind: "EndpointSlice", key: "default/corens-ipv4-1" };
  cache.set("EndpointSlice default/corens-ipv4-0", cached("9"));
  cache.set("Endpoints default/corens", cached("8"));
  cache.set("EndpointSlice default/corens-ipv4-1", cached("7", "u7"));

  expectations.written("default/corens", slice, { ...cached("10"), metadata: { ...cached("10").metadata, managedFields: [{ manager: "x" }] } }, 0);
  expectations.written("default/corens", endpoints, cached("11"), 0);
  expectations.deleted("default/corens", oldSlice, "u7", 0);
  cache.set("Endpoints default/corens", cached("11"));

  const { objects, waitFor } = expectations.overlay("default/corens", lookup, 10);
  t.same(waitFor, [], "every write's result is known: nothing to wait for");
  t.same(
    [...objects.values()].map((view) => [view.kind, view.key, view.object?.metadata?.resourceVersion]),
    [
      ["EndpointSlice", "default/corens-ipv4-0", "10"],
      ["EndpointSlice", "default/corens-ipv4-1", undefined],
    ],
    "the slice as written (the cache holds 9), the deleted slice as gone; the Endpoints the cache shows already are not overlaid",
  );
  t.equal(objects.get("EndpointSlice default/corens-ipv4-0")?.object?.metadata?.managedFields, undefined, "managedFields are not kept");
  t.ok(expectations.ownWrite("default/corens", slice, { type: "update", object: cached("10") }), "the slice's watch event is our own write");
  t.notOk(expectations.ownWrite("default/other", slice, { type: "update", object: cached("10") }), "for its NetService only");
  t.same(expectations.overlay("default/other", lookup, 10).objects.size, 0, "another NetService sees the plain caches");
});
