// The writer: the one place the aggregator's requests to the API server are
// made. It carries a plan out (create, apply, repair, delete), sweeps
// Kubernetes' own slices from a NetService's name, applies the status; it
// remembers what it wrote (the stale-cache expectations) and which names it
// found taken, and counts every write.
//
//   new Writer(http, {expectations, clock, takenRecheckMs})
//     execute(netService, actions, term, log): Promise<ExecuteOutcome>
//     sweepKubeSlices(netService, serviceUid, term, log): Promise<void>
//     applyStatus(object, term): Promise<void>
//     taken(kind, namespace, name, now)      an object found holding a name we need, which the caches do not show
//     pending(key, lookup, now)              our writes the caches do not show yet: what they returned, and what to wait for
//     ownWrite(key, ref, event)              an informer event that shows only our own write
//     forget(key), countWrite(kind, verb), writes(), writeFailures
//
// Every request goes through write(): only while the term lasts, and counted.
import type { V1Service } from "@kubernetes/client-node";
import { aggregatorFieldManager, labels, netServiceConditionReasons, netServiceKind, type NetService } from "../common/api.ts";
import { serviceRepairPatch } from "../common/desired-services.ts";
import type { StatusProblem } from "../common/desired-status.ts";
import { Applier } from "../common/kube/apply.ts";
import type { Clock } from "../common/kube/clock.ts";
import { isConflict, type KubeHttp } from "../common/kube/http.ts";
import { objectKey, type KubeObject } from "../common/kube/object.ts";
import type { Logger } from "../common/log.ts";
import { describe } from "../common/program.ts";
import { isNamespaceTerminating, isRefusal, LeadershipLostError } from "./errors.ts";
import type { CacheView, Expectations, ObjectRef, PendingExpectation, PendingView } from "./expectations.ts";
import { kubeSlicesSelector } from "./foreign-slices.ts";
import { netServiceKey } from "./keys.ts";
import { controls } from "./ownership.ts";
import type { Action, OwnedKind } from "./plan.ts";
import { creationSkeleton, ownedPath } from "./skeleton.ts";

/** One leadership term, as the writer sees it. */
export interface Term {
  readonly signal: AbortSignal;
  /** The term has ended: its signal aborted, or another term (or none) is current. */
  over(): boolean;
  /** A write may go out: the term lasts and the elector still holds the lease. */
  mayWrite(): boolean;
}

export type ExecuteOutcome = {
  refused: StatusProblem[];
  /** The first failure a retry should fix; the status waits for a pass that completes. */
  retry?: unknown;
  /** A create found the name taken by an object the caches do not hold; plan again with it known. */
  discoveredTaken: boolean;
  /** The namespace is being deleted: the NetService goes with it, nothing more to do. */
  namespaceTerminating?: boolean;
};

export interface WriterOptions {
  expectations: Expectations;
  clock: Clock;
  /** How often a NetService whose names are taken looks again; a name found taken is remembered half as long. */
  takenRecheckMs: number;
}

export class Writer {
  private readonly http: KubeHttp;
  readonly applier: Applier;
  private readonly expectations: Expectations;
  private readonly clock: Clock;
  private readonly takenRecheckMs: number;
  /** Objects found (by a refused create) to hold a name we need, which the label-selected caches do not show. */
  private readonly takenNames = new Map<string, { object: KubeObject; until: number; wantedBy: string }>();
  private readonly writeCounts = new Map<string, number>();
  private failures = 0;

  constructor(http: KubeHttp, options: WriterOptions) {
    this.http = http;
    this.applier = new Applier(http, { fieldManager: aggregatorFieldManager });
    this.expectations = options.expectations;
    this.clock = options.clock;
    this.takenRecheckMs = options.takenRecheckMs;
  }

  /** Successful writes, by kind and verb. */
  writes(): { kind: string; verb: string; count: number }[] {
    return [...this.writeCounts]
      .map(([id, count]) => {
        const [kind = "", verb = ""] = id.split(" ");
        return { kind, verb, count };
      })
      .sort((a, b) => (a.kind + a.verb < b.kind + b.verb ? -1 : 1));
  }

  get writeFailures(): number {
    return this.failures;
  }

  countWrite(kind: string, verb: string): void {
    const id = `${kind} ${verb}`;
    this.writeCounts.set(id, (this.writeCounts.get(id) ?? 0) + 1);
  }

  /** The object a create found holding this name, while it is remembered. */
  taken(kind: OwnedKind, namespace: string, name: string, now: number): KubeObject | undefined {
    const id = `${kind} ${namespace}/${name}`;
    const taken = this.takenNames.get(id);
    if (taken && taken.until <= now) this.takenNames.delete(id);
    return taken && taken.until > now ? taken.object : undefined;
  }

  /**
   * Our writes for this NetService that the caches do not show yet: the
   * objects they returned, to plan against, and those whose result is not
   * known, to wait for (expectations.ts).
   */
  pending(key: string, lookup: (ref: ObjectRef) => CacheView, now: number): { objects: Map<string, PendingView>; waitFor: PendingExpectation[] } {
    return this.expectations.overlay(key, lookup, now);
  }

  /** An informer event that shows only our own write, which the reconcile that made it already planned with. */
  ownWrite(key: string, ref: ObjectRef, event: { type: "add" | "update" | "delete"; object: KubeObject }): boolean {
    return this.expectations.ownWrite(key, ref, event);
  }

  forget(key: string): void {
    this.expectations.forget(key);
    for (const [id, entry] of this.takenNames) {
      if (entry.wantedBy === key) this.takenNames.delete(id);
    }
  }

  /**
   * Carries a plan out. Updates of different objects do not depend on each
   * other, so a run of them is sent at once: a pod change reaches the
   * Endpoints and every EndpointSlice after one round trip rather than one per
   * object (docs/performance.md). Creates (which may find a name taken) and
   * deletes (after everything else, so nothing published blinks out) go one by
   * one, in the plan's order.
   */
  async execute(netService: NetService, actions: Action[], term: Term, log: Logger): Promise<ExecuteOutcome> {
    const outcome: ExecuteOutcome = { refused: [], discoveredTaken: false };
    for (let i = 0; i < actions.length; ) {
      const updates: Action[] = [];
      while (actions[i]?.verb === "update") updates.push(actions[i++] as Action);
      if (updates.length > 0) {
        await Promise.all(updates.map((action) => this.executeAction(netService, action, term, log, outcome)));
        continue;
      }
      await this.executeAction(netService, actions[i++] as Action, term, log, outcome);
      if (outcome.discoveredTaken) return outcome;
    }
    return outcome;
  }

  /**
   * Deletes the EndpointSlices that Kubernetes' controllers wrote for the
   * NetService's selectorless Service (of uid serviceUid) while someone had
   * given it a selector (foreign-slices.ts). Only slices that the Service
   * controls: they are ours through it, and nothing else is touched.
   */
  async sweepKubeSlices(netService: NetService, serviceUid: string, term: Term, log: Logger): Promise<void> {
    const { namespace, name } = netService.metadata;
    const list = await this.http.request<{ items?: KubeObject[] }>({
      method: "GET",
      path: ownedPath("EndpointSlice", namespace),
      query: { labelSelector: kubeSlicesSelector(name) },
      signal: term.signal,
    });
    for (const item of list.items ?? []) {
      const slice: KubeObject = { ...item, apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice" };
      const outcome = await this.write(term, "EndpointSlice", "delete", () =>
        this.applier.deleteIfOwned(slice, serviceUid, { signal: term.signal }),
      );
      if (outcome === "deleted") {
        log.info(
          { object: slice.metadata?.name, managedBy: slice.metadata?.labels?.[labels.managedBy] },
          "deleted an EndpointSlice that Kubernetes' controller wrote while the Service had a selector",
        );
      }
    }
  }

  /** Applies a NetService's status (object: apiVersion, kind, namespace, name, uid and status). */
  async applyStatus(object: KubeObject, term: Term): Promise<void> {
    const stored = await this.write(term, `${netServiceKind}/status`, "apply", () =>
      this.applier.applyStatus(object, { signal: term.signal }),
    );
    const key = objectKey(object);
    this.expectations.written(key, { kind: netServiceKind, key }, stored, this.clock.now());
  }

  /** One action; a failure is recorded in the outcome (refused, or to retry), except the end of leadership, which is thrown. */
  private async executeAction(netService: NetService, action: Action, term: Term, log: Logger, outcome: ExecuteOutcome): Promise<void> {
    const target = action.verb === "delete" ? action.existing : action.desired;
    const name = target.metadata?.name ?? "";
    try {
      if (action.verb === "create") {
        if ((await this.create(netService, action.kind, action.desired, term, log)) === "taken") outcome.discoveredTaken = true;
      } else if (action.verb === "update") {
        await this.apply(netService, action.kind, action.desired, action.existing, term);
      } else {
        await this.remove(netService, action.kind, action.existing, action.ownerUid, term);
        log.info({ kind: action.kind, object: name, why: action.why }, "deleted");
      }
    } catch (err) {
      if (err instanceof LeadershipLostError || term.signal.aborted) throw new LeadershipLostError();
      if (isNamespaceTerminating(err)) {
        log.debug({ kind: action.kind, object: name }, "the namespace is being deleted; nothing to write");
        outcome.namespaceTerminating = true;
      } else if (isRefusal(err)) {
        log.warn({ err, kind: action.kind, object: name, verb: action.verb }, "the API server refused a write");
        outcome.refused.push({
          reason: netServiceConditionReasons.applyFailed,
          message: `${action.verb} of ${action.kind} ${netService.metadata.namespace}/${name} failed: ${describe(err)}`,
        });
      } else {
        log.info({ err, kind: action.kind, object: name, verb: action.verb }, "write failed; retrying");
        outcome.retry ??= err;
      }
    }
  }

  /** Creates a skeleton (which fails if the name is taken: skeleton.ts), then applies the full object to it. */
  private async create(
    netService: NetService,
    kind: OwnedKind,
    desired: KubeObject,
    term: Term,
    log: Logger,
  ): Promise<"created" | "taken"> {
    const { namespace } = netService.metadata;
    const name = desired.metadata?.name ?? "";
    let created: KubeObject;
    try {
      created = await this.write(term, kind, "create", () => this.applier.create(creationSkeleton(kind, desired), { signal: term.signal }));
    } catch (err) {
      if (!isConflict(err)) throw err;
      const live = await this.http.request<KubeObject>({ method: "GET", path: ownedPath(kind, namespace, name), signal: term.signal });
      if (controls(netService, live)) {
        // Ours, but not in the caches: they lag, or someone removed the labels they select by.
        await this.apply(netService, kind, desired, live, term);
        return "created";
      }
      this.takenNames.set(`${kind} ${namespace}/${name}`, {
        object: live,
        until: this.clock.now() + this.takenRecheckMs / 2,
        wantedBy: netServiceKey(namespace, netService.metadata.name),
      });
      log.info({ kind, object: name }, "name taken by an object the NetService does not own");
      return "taken";
    }
    const key = netServiceKey(namespace, netService.metadata.name);
    this.expectations.written(key, { kind, key: objectKey(created) }, created, this.clock.now());
    await this.apply(netService, kind, desired, created, term, { fresh: true });
    return "created";
  }

  /** Server-side apply to exactly the object we decided about: its uid is part of the request. */
  private async apply(
    netService: NetService,
    kind: OwnedKind,
    desired: KubeObject,
    existing: KubeObject,
    term: Term,
    { fresh = false } = {},
  ): Promise<void> {
    // A skeleton just created has no selector or ports yet: the apply gives them.
    const repair = kind === "Service" && !fresh ? serviceRepairPatch(desired as V1Service, existing as V1Service) : undefined;
    if (repair) {
      // What someone changed by hand in our selector or ports, which the apply alone cannot undo.
      await this.write(term, kind, "patch", () => this.applier.mergePatch(desired, repair, { signal: term.signal }));
    }
    const body = { ...desired, metadata: { ...desired.metadata, uid: existing.metadata?.uid } };
    const stored = await this.write(term, kind, "apply", () => this.applier.apply(body, { signal: term.signal }));
    const key = netServiceKey(netService.metadata.namespace, netService.metadata.name);
    this.expectations.written(key, { kind, key: objectKey(stored) }, stored, this.clock.now());
  }

  private async remove(netService: NetService, kind: OwnedKind, existing: KubeObject, ownerUid: string, term: Term): Promise<void> {
    const outcome = await this.write(term, kind, "delete", () =>
      this.applier.deleteIfOwned(existing, ownerUid, { signal: term.signal }),
    );
    if (outcome === "deleted") {
      const key = netServiceKey(netService.metadata.namespace, netService.metadata.name);
      this.expectations.deleted(key, { kind, key: objectKey(existing) }, existing.metadata?.uid, this.clock.now());
    }
  }

  /** Every write goes through here: only while the term lasts, and counted. */
  private async write<T>(term: Term, kind: string, verb: string, request: () => Promise<T>): Promise<T> {
    if (!term.mayWrite()) throw new LeadershipLostError();
    try {
      const result = await request();
      this.countWrite(kind, verb);
      return result;
    } catch (err) {
      this.failures++;
      throw err;
    }
  }
}
