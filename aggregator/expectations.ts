// The stale-cache guard, as the EndpointSlice controller has one: after a
// write, the aggregator remembers what it wrote, and does not reconcile that
// NetService again until its informers have seen that write. Deciding from a
// cache that does not yet show our own write would write the same thing
// again, or delete what we just created.
import type { KubeObject } from "../common/kube/object.ts";

export type Expectation =
  /** We wrote the object; the cache must hold it at this resourceVersion or a later one. */
  | { type: "written"; resourceVersion: string; since: number }
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

function atOrAfter(seen: string | undefined, wanted: string): boolean {
  const integer = /^[1-9][0-9]*$/;
  if (seen === undefined || !integer.test(seen) || !integer.test(wanted)) return false;
  return BigInt(seen) >= BigInt(wanted);
}

/** An object the expectations are about: its kind and cache key. */
export type ObjectRef = { kind: string; key: string };

export type PendingExpectation = ObjectRef & { expectation: Expectation };

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

  written(owner: string, ref: ObjectRef, resourceVersion: string | undefined, now: number): void {
    if (!resourceVersion) return;
    this.set(owner, { ...ref, expectation: { type: "written", resourceVersion, since: now } });
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
