// The aggregator waits for its caches to show its own writes before it
// decides again, so it never writes twice from stale data.
import t from "tap";
import type { KubeObject } from "../../common/kube/object.ts";
import { Expectations, expectationMet, type CacheView, type Expectation } from "../../aggregator/expectations.ts";

const cached = (resourceVersion: string, uid = "u1"): KubeObject => ({ metadata: { name: "x", uid, resourceVersion } });
const written = (resourceVersion: string): Expectation => ({ type: "written", resourceVersion, since: 0 });
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

  expectations.written("default/corens", slice, "10", 0);
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

  expectations.written("default/corens", slice, "11", 2000);
  expectations.written("default/corens", slice, "12", 2001);
  cache.set("EndpointSlice default/corens-ipv4-0", cached("11"));
  t.same(expectations.pending("default/corens", lookup, 2002).map((p) => p.key), ["default/corens-ipv4-0"], "the latest write is what counts");
  expectations.forget("default/corens");
  t.same(expectations.pending("default/corens", lookup, 2003), [], "a deleted NetService waits for nothing");
});
