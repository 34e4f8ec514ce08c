// The stale-cache guard, as the EndpointSlice controller has one: after a
// write, the aggregator remembers what it wrote. Deciding from a cache that
// does not yet show our own write would write the same thing again, or
// delete what we just created. Until the informers have seen a write, the
// next reconcile of that NetService plans against what the write returned
// (the object as stored, or its absence after a delete) instead of waiting
// for the watch (docs/performance.md); and the watch event of our own write
// wakes nobody, since the reconcile that wrote already knew its outcome
// (upstream's EndpointSlice tracker does the same).
import { stripManagedFields, type KubeObject } from "../common/kube/object.ts";

export type Expectation =
  /**
   * We wrote the object; the cache must hold it at this resourceVersion or a
   * later one. `object`: the object as the write returned it, to plan against
   * meanwhile.
   */
  | { type: "written"; resourceVersion: string; since: number; object?: KubeObject }
  /** We deleted the object with this uid; the cache must no longer hold it. */
  | { type: "deleted"; uid: string; since: number };

/** What a cache knows about one object: the object if it holds it, and how far its watch has come. */
export type CacheView = {
  object: KubeObject | undefined;
  /** The last resourceVersion the informer saw on its list or watch (any object, or a bookmark). */
  collectionVersion: string | undefined;
};

/**
 * Whether the cache shows our write: it holds the object at that version, or
 * its watch has passed that version (so whatever happened to the object
 * since, a later change or someone deleting it, is in the cache too).
 *
 * resourceVersions are opaque: equal means seen; beyond that, every storage
 * Kubernetes ships (etcd) issues them as increasing integers, and only then
 * is a greater one taken as "later".
 */
export function expectationMet(expectation: Expectation, cache: CacheView): boolean {
  if (expectation.type === "deleted") return cache.object?.metadata?.uid !== expectation.uid;
  const wanted = expectation.resourceVersion;
  const seen = cache.object?.metadata?.resourceVersion;
  return seen === wanted || atOrAfter(seen, wanted) || atOrAfter(cache.collectionVersion, wanted);
}

/**
 * The object a reconcile plans against: the cache's when it shows our write
 * (or has watched past it); otherwise what the write returned, or nothing
 * after our delete. "unknown": a write whose result we did not keep, so the
 * reconcile must wait for the cache.
 */
export function planningView(expectation: Expectation, cache: CacheView): { object: KubeObject | undefined } | "unknown" {
  if (expectationMet(expectation, cache)) return { object: cache.object };
  if (expectation.type === "deleted") return { object: undefined };
  return expectation.object ? { object: expectation.object } : "unknown";
}

/**
 * Whether an informer event shows nothing but our own write: the object at
 * exactly the version we wrote, or the deletion of the object we deleted.
 * Such an event need wake no reconcile.
 */
export function isOwnWrite(expectation: Expectation, event: { type: "add" | "update" | "delete"; object: KubeObject }): boolean {
  const { uid, resourceVersion } = event.object.metadata ?? {};
  if (expectation.type === "deleted") return event.type === "delete" && uid === expectation.uid;
  return event.type !== "delete" && resourceVersion !== undefined && resourceVersion === expectation.resourceVersion;
}

function atOrAfter(seen: string | undefined, wanted: string): boolean {
  const integer = /^[1-9][0-9]*$/;
  if (seen === undefined || !integer.test(seen) || !integer.test(wanted)) return false;
  return BigInt(seen) >= BigInt(wanted);
}

/** An object the expectations are about: its kind and cache key. */
export type ObjectRef = { kind: string; key: string };

export type PendingExpectation = ObjectRef & { expectation: Expectation };

/** An object as a reconcile plans against it while the cache lags our write: undefined when we deleted it. */
export type PendingView = ObjectRef & { object: KubeObject | undefined };

export class Expectations {
  private readonly ttlMs: number;
  private readonly byOwner = new Map<string, Map<string, PendingExpectation>>();

  /**
   * ttlMs: how long to wait for the cache at most. A watch that silently
   * stopped is the informer's to repair (it relists); past this the
   * aggregator reconciles anyway, which is safe because every write carries
   * the target's uid and every delete its uid and resourceVersion.
   */
  constructor(options: { ttlMs: number }) {
    this.ttlMs = options.ttlMs;
  }

  /** We wrote `stored` (as the API server returned it); without a resourceVersion nothing can be expected. */
  written(owner: string, ref: ObjectRef, stored: KubeObject | undefined, now: number): void {
    const resourceVersion = stored?.metadata?.resourceVersion;
    if (!stored || !resourceVersion) return;
    this.set(owner, { ...ref, expectation: { type: "written", resourceVersion, since: now, object: stripManagedFields(stored) } });
  }

  deleted(owner: string, ref: ObjectRef, uid: string | undefined, now: number): void {
    if (!uid) return;
    this.set(owner, { ...ref, expectation: { type: "deleted", uid, since: now } });
  }

  /**
   * The expectations of an owner that the caches do not meet yet; met and
   * expired ones are dropped. `lookup` reads the cache of the ref's kind.
   */
  pending(owner: string, lookup: (ref: ObjectRef) => CacheView, now: number): PendingExpectation[] {
    const mine = this.byOwner.get(owner);
    if (!mine) return [];
    const pending: PendingExpectation[] = [];
    for (const [id, item] of mine) {
      if (expectationMet(item.expectation, lookup(item)) || now - item.expectation.since >= this.ttlMs) {
        mine.delete(id);
      } else {
        pending.push(item);
      }
    }
    if (mine.size === 0) this.byOwner.delete(owner);
    return pending;
  }

  /**
   * What the owner's next reconcile plans against where the caches do not
   * show its writes yet: by "kind key", the object each write returned (or
   * undefined after a delete). `waitFor`: the writes whose result is not
   * known, for which the reconcile must wait as before.
   */
  overlay(owner: string, lookup: (ref: ObjectRef) => CacheView, now: number): { objects: Map<string, PendingView>; waitFor: PendingExpectation[] } {
    const objects = new Map<string, PendingView>();
    const waitFor: PendingExpectation[] = [];
    for (const item of this.pending(owner, lookup, now)) {
      const view = planningView(item.expectation, lookup(item));
      if (view === "unknown") waitFor.push(item);
      else objects.set(`${item.kind} ${item.key}`, { kind: item.kind, key: item.key, object: view.object });
    }
    return { objects, waitFor };
  }

  /** Whether an informer event of this owner's object shows only our own pending write (isOwnWrite). */
  ownWrite(owner: string, ref: ObjectRef, event: { type: "add" | "update" | "delete"; object: KubeObject }): boolean {
    const item = this.byOwner.get(owner)?.get(`${ref.kind} ${ref.key}`);
    return item !== undefined && isOwnWrite(item.expectation, event);
  }

  forget(owner: string): void {
    this.byOwner.delete(owner);
  }

  private set(owner: string, item: PendingExpectation): void {
    let mine = this.byOwner.get(owner);
    if (!mine) {
      mine = new Map();
      this.byOwner.set(owner, mine);
    }
    mine.set(`${item.kind} ${item.key}`, item);
  }
}
