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

/**
 * Whether the cached object shows our write. resourceVersions are opaque:
 * equal means seen; beyond that, every storage Kubernetes ships (etcd)
 * issues them as increasing integers, and only then is a greater one
 * taken as "seen, and changed again since".
 */
export function expectationMet(expectation: Expectation, cached: KubeObject | undefined): boolean {
  if (expectation.type === "deleted") return cached?.metadata?.uid !== expectation.uid;
  const seen = cached?.metadata?.resourceVersion;
  if (seen === undefined) return false;
  if (seen === expectation.resourceVersion) return true;
  const integer = /^[1-9][0-9]*$/;
  return integer.test(seen) && integer.test(expectation.resourceVersion) && BigInt(seen) > BigInt(expectation.resourceVersion);
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
  pending(owner: string, lookup: (ref: ObjectRef) => KubeObject | undefined, now: number): PendingExpectation[] {
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
