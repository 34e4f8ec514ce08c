// Leader election on a coordination.k8s.io/v1 Lease, as client-go does it:
// optimistic concurrency on the Lease's resourceVersion, expiry judged by the
// local clock from when this replica last saw the record change (so clock skew
// between replicas does not matter), and a renew deadline shorter than the
// lease duration so that a leader that cannot renew stops working before
// anyone else may start.
//
//   new LeaderElector({client | store, namespace, name, identity, leaseDurationSeconds = 15,
//                      renewDeadlineSeconds = 10, retryPeriodSeconds = 2, clock?, random?, logger?})
//     run(onStartedLeading(signal), onStoppedLeading?): Promise<void>
//         campaigns; on winning calls onStartedLeading with a signal that aborts when leadership ends;
//         renews every retry period; if renewal fails for renewDeadline, or another holder shows up,
//         aborts the signal, waits for onStartedLeading to settle, calls onStoppedLeading and campaigns
//         again. Resolves after stop(); rejects (after releasing) if onStartedLeading rejects.
//     stop(): Promise<void>   ends leadership, waits for onStartedLeading to settle, then releases the
//                             Lease (empty holder) so another replica takes over at its next retry
//     isLeader: boolean       leading, and the last renewal started less than renewDeadline ago by this
//                             replica's clock (false at once in a process that wakes from a pause)
//     holder: string | undefined (last holder seen)
//   decideLease({lease, observedAt, now, identity, defaultLeaseDurationSeconds}): LeaseDecision   pure
//   nextLeaseRecord(action, current, now, identity, leaseDurationSeconds): LeaseRecord            pure
//   releasedLeaseRecord(current, now): LeaseRecord                                                pure
//   class KubeLeaseStore implements LeaseStore   (the Lease object through KubeHttp)
//
//   const elector = new LeaderElector({ client: clients.http, namespace, name: "netservice-aggregator", identity: podName });
//   await elector.run(async (signal) => runAggregator(signal), () => log.info("no longer leading"));
import type { Logger } from "../log.ts";
import { type Clock, realClock, sleep } from "./clock.ts";
import { isConflict, isNotFound, type KubeHttp } from "./http.ts";
import { resourcePath } from "./resources.ts";
import { microTime } from "./time.ts";

export interface LeaseRecord {
  /** "" when nobody holds the lease (released). */
  holderIdentity: string;
  leaseDurationSeconds: number;
  /** Milliseconds since the epoch. */
  acquireTime?: number;
  renewTime?: number;
  leaseTransitions: number;
}

export type LeaseDecision =
  | { action: "create" }
  | { action: "acquire" }
  | { action: "renew" }
  | { action: "wait"; holder: string; expiresInMs: number };

export interface LeaseDecisionInput {
  lease: LeaseRecord | undefined;
  /** When this replica first saw the current version of the lease (its own clock). */
  observedAt: number;
  now: number;
  identity: string;
  /** Used when the lease names no duration. */
  defaultLeaseDurationSeconds: number;
}

/** What to do with the lease as it stands: take it only if it is ours, released, or expired. */
export function decideLease(input: LeaseDecisionInput): LeaseDecision {
  const { lease, observedAt, now, identity } = input;
  if (lease === undefined) return { action: "create" };
  if (lease.holderIdentity === identity) return { action: "renew" };
  if (lease.holderIdentity === "") return { action: "acquire" };
  const durationSeconds = lease.leaseDurationSeconds > 0 ? lease.leaseDurationSeconds : input.defaultLeaseDurationSeconds;
  const expiresAt = observedAt + durationSeconds * 1000;
  if (now >= expiresAt) return { action: "acquire" };
  return { action: "wait", holder: lease.holderIdentity, expiresInMs: expiresAt - now };
}

/** The record to write for a create, acquire or renew decision. */
export function nextLeaseRecord(
  action: "create" | "acquire" | "renew",
  current: LeaseRecord | undefined,
  now: number,
  identity: string,
  leaseDurationSeconds: number,
): LeaseRecord {
  const transitions = current?.leaseTransitions ?? 0;
  if (action === "renew" && current !== undefined) {
    return {
      holderIdentity: identity,
      leaseDurationSeconds,
      acquireTime: current.acquireTime ?? now,
      renewTime: now,
      leaseTransitions: transitions,
    };
  }
  return {
    holderIdentity: identity,
    leaseDurationSeconds,
    acquireTime: now,
    renewTime: now,
    leaseTransitions: action === "acquire" && current !== undefined ? transitions + 1 : transitions,
  };
}

/** What a leader writes when it steps down: no holder, so the next candidate need not wait for expiry. */
export function releasedLeaseRecord(current: LeaseRecord, now: number): LeaseRecord {
  return {
    holderIdentity: "",
    leaseDurationSeconds: 1,
    acquireTime: now,
    renewTime: now,
    leaseTransitions: current.leaseTransitions,
  };
}

export interface StoredLease {
  record: LeaseRecord;
  /** Opaque; the resourceVersion for a Lease object. */
  version: string;
}

/** Thrown by a LeaseStore when the lease exists (create) or changed (update). */
export class LeaseConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LeaseConflictError";
  }
}

export interface LeaseStore {
  get(signal: AbortSignal): Promise<StoredLease | undefined>;
  create(record: LeaseRecord, signal: AbortSignal): Promise<StoredLease>;
  update(record: LeaseRecord, version: string, signal: AbortSignal): Promise<StoredLease>;
}

interface LeaseObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; [field: string]: unknown };
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
    [field: string]: unknown;
  };
}

/** One Lease object, read and written with plain JSON so that MicroTime fields keep their exact format. */
export class KubeLeaseStore implements LeaseStore {
  private readonly http: KubeHttp;
  private readonly namespace: string;
  private readonly name: string;
  /** The last object seen, so that updates keep fields this code does not know. */
  private last: LeaseObject | undefined;

  constructor(http: KubeHttp, namespace: string, name: string) {
    this.http = http;
    this.namespace = namespace;
    this.name = name;
  }

  async get(signal: AbortSignal): Promise<StoredLease | undefined> {
    try {
      return this.stored(await this.http.request<LeaseObject>({ method: "GET", path: this.path(this.name), signal }));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async create(record: LeaseRecord, signal: AbortSignal): Promise<StoredLease> {
    const body: LeaseObject = {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { name: this.name, namespace: this.namespace },
      spec: leaseSpec(record),
    };
    try {
      return this.stored(await this.http.request<LeaseObject>({ method: "POST", path: this.path(), body, signal }));
    } catch (err) {
      if (isConflict(err)) throw new LeaseConflictError(`lease ${this.namespace}/${this.name} already exists`);
      throw err;
    }
  }

  async update(record: LeaseRecord, version: string, signal: AbortSignal): Promise<StoredLease> {
    const base = this.last ?? {};
    const body: LeaseObject = {
      ...base,
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { ...base.metadata, name: this.name, namespace: this.namespace, resourceVersion: version },
      spec: { ...base.spec, ...leaseSpec(record) },
    };
    try {
      return this.stored(await this.http.request<LeaseObject>({ method: "PUT", path: this.path(this.name), body, signal }));
    } catch (err) {
      if (isConflict(err)) throw new LeaseConflictError(`lease ${this.namespace}/${this.name} changed meanwhile`);
      throw err;
    }
  }

  private stored(obj: LeaseObject): StoredLease {
    this.last = obj;
    const spec = obj.spec ?? {};
    return {
      version: obj.metadata?.resourceVersion ?? "",
      record: {
        holderIdentity: spec.holderIdentity ?? "",
        leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
        leaseTransitions: spec.leaseTransitions ?? 0,
        acquireTime: parseTime(spec.acquireTime),
        renewTime: parseTime(spec.renewTime),
      },
    };
  }

  private path(name?: string): string {
    return resourcePath({ apiVersion: "coordination.k8s.io/v1", plural: "leases", namespace: this.namespace, name });
  }
}

function leaseSpec(record: LeaseRecord): LeaseObject["spec"] {
  return {
    holderIdentity: record.holderIdentity,
    leaseDurationSeconds: record.leaseDurationSeconds,
    leaseTransitions: record.leaseTransitions,
    acquireTime: record.acquireTime === undefined ? undefined : microTime(record.acquireTime),
    renewTime: record.renewTime === undefined ? undefined : microTime(record.renewTime),
  };
}

function parseTime(text: string | undefined): number | undefined {
  const ms = text ? Date.parse(text) : Number.NaN;
  return Number.isNaN(ms) ? undefined : ms;
}

export interface LeaderElectorOptions {
  /** The Lease is read and written through this client... */
  client?: KubeHttp;
  /** ...or through this store (tests, or a lease kept elsewhere). */
  store?: LeaseStore;
  namespace: string;
  name: string;
  /** Unique per replica, e.g. the pod name. */
  identity: string;
  leaseDurationSeconds?: number;
  renewDeadlineSeconds?: number;
  retryPeriodSeconds?: number;
  clock?: Clock;
  random?: () => number;
  logger?: Logger;
}

/** client-go's: a candidate retries after retryPeriod * [1, 2.2). */
const jitterFactor = 1.2;

export class LeaderElector {
  private readonly store: LeaseStore;
  private readonly identity: string;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly logger: Logger | undefined;
  private readonly stopController = new AbortController();
  private observed: StoredLease | undefined;
  private observedAt = 0;
  private leading = false;
  /** When the last successful acquire or renew was sent: the lease is surely ours until renewDeadline after it. */
  private renewedAt = 0;
  private running: Promise<void> | undefined;

  constructor(options: LeaderElectorOptions) {
    const leaseDuration = options.leaseDurationSeconds ?? 15;
    const renewDeadline = options.renewDeadlineSeconds ?? 10;
    const retryPeriod = options.retryPeriodSeconds ?? 2;
    if (!(leaseDuration > renewDeadline)) {
      throw new Error(`leaseDurationSeconds (${leaseDuration}) must be greater than renewDeadlineSeconds (${renewDeadline})`);
    }
    if (!(renewDeadline > retryPeriod * jitterFactor)) {
      throw new Error(`renewDeadlineSeconds (${renewDeadline}) must be greater than ${jitterFactor} x retryPeriodSeconds (${retryPeriod})`);
    }
    if (!options.identity) throw new Error("leader election needs a non-empty identity (e.g. the pod name)");
    if (options.store) {
      this.store = options.store;
    } else if (options.client) {
      this.store = new KubeLeaseStore(options.client, options.namespace, options.name);
    } else {
      throw new Error("LeaderElector needs a client or a store");
    }
    this.identity = options.identity;
    this.leaseDurationMs = leaseDuration * 1000;
    this.renewDeadlineMs = renewDeadline * 1000;
    this.retryPeriodMs = retryPeriod * 1000;
    this.clock = options.clock ?? realClock;
    this.random = options.random ?? Math.random;
    this.logger = options.logger?.child({ lease: `${options.namespace}/${options.name}`, identity: options.identity });
  }

  /**
   * Whether this replica may act as leader now. Judged by its own clock at
   * the moment of asking, not only by the term's signal: a process that was
   * paused (SIGSTOP, a frozen VM, a long GC) past its lease runs I/O callbacks
   * before the timer that would end its term, and must not write in between.
   * The last renewal was sent before the server stored it, so another
   * replica cannot take over before renewDeadline (< leaseDuration) from then.
   */
  get isLeader(): boolean {
    return this.leading && this.clock.now() - this.renewedAt < this.renewDeadlineMs;
  }

  /** The holder of the lease when this replica last looked ("" if released). */
  get holder(): string | undefined {
    return this.observed?.record.holderIdentity;
  }

  run(onStartedLeading: (signal: AbortSignal) => Promise<void> | void, onStoppedLeading?: () => void): Promise<void> {
    if (this.running) throw new Error("the leader elector is already running");
    this.running = this.campaign(onStartedLeading, onStoppedLeading);
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopController.abort();
    await this.running?.catch(() => {});
  }

  private get stopping(): boolean {
    return this.stopController.signal.aborted;
  }

  private async campaign(
    onStartedLeading: (signal: AbortSignal) => Promise<void> | void,
    onStoppedLeading: (() => void) | undefined,
  ): Promise<void> {
    while (!this.stopping) {
      const attempted = this.clock.now();
      if (await this.tryAcquireOrRenew()) {
        this.renewedAt = attempted;
        await this.lead(onStartedLeading, onStoppedLeading);
      } else {
        const delay = this.retryPeriodMs * (1 + jitterFactor * this.random());
        await sleep(this.clock, delay, this.stopController.signal);
      }
    }
  }

  private async lead(
    onStartedLeading: (signal: AbortSignal) => Promise<void> | void,
    onStoppedLeading: (() => void) | undefined,
  ): Promise<void> {
    this.leading = true;
    this.logger?.info("became leader");
    const term = new AbortController();
    const wake = new AbortController();
    const wakeOnStop = () => wake.abort();
    this.stopController.signal.addEventListener("abort", wakeOnStop, { once: true });
    let failure: { error: unknown } | undefined;
    const task = (async () => onStartedLeading(term.signal))().catch((error: unknown) => {
      failure = { error };
      wake.abort();
    });

    for (;;) {
      await sleep(this.clock, this.retryPeriodMs, wake.signal);
      if (this.stopping || failure) break;
      const attempted = this.clock.now();
      const remaining = this.renewedAt + this.renewDeadlineMs - attempted;
      if (await this.tryAcquireOrRenew(remaining)) {
        this.renewedAt = attempted;
        continue;
      }
      if (this.observed && this.observed.record.holderIdentity !== this.identity) {
        this.logger?.warn({ holder: this.observed.record.holderIdentity }, "another replica holds the lease; stopping leading");
        break;
      }
      if (this.clock.now() - this.renewedAt >= this.renewDeadlineMs) {
        this.logger?.error({ renewDeadlineMs: this.renewDeadlineMs }, "could not renew the lease in time; stopping leading");
        break;
      }
    }

    this.stopController.signal.removeEventListener("abort", wakeOnStop);
    this.leading = false;
    term.abort(new Error("leadership ended"));
    await task;
    if (this.stopping || failure) await this.release();
    this.logger?.info("stopped leading");
    onStoppedLeading?.();
    if (failure) {
      this.stopController.abort();
      throw failure.error;
    }
  }

  /**
   * One attempt to become or stay leader; false when someone else holds the
   * lease or the attempt failed. A candidate's attempt ends at stop(); a
   * leader's renewal is left to finish (within its timeout), so that the
   * release that follows starts from the version the server really has.
   */
  private async tryAcquireOrRenew(timeoutMs = this.renewDeadlineMs): Promise<boolean> {
    const attempt = new AbortController();
    const timer = this.clock.setTimer(() => attempt.abort(new Error("lease request timed out")), Math.max(0, timeoutMs));
    const signal = this.leading ? attempt.signal : AbortSignal.any([attempt.signal, this.stopController.signal]);
    const leaseDurationSeconds = this.leaseDurationMs / 1000;
    try {
      const now = this.clock.now();
      const mine = this.observed;
      if (mine && mine.record.holderIdentity === this.identity) {
        // Renewing a lease we hold needs no read first; a conflict means someone else wrote it.
        try {
          const renewed = nextLeaseRecord("renew", mine.record, now, this.identity, leaseDurationSeconds);
          this.observe(await this.store.update(renewed, mine.version, signal));
          return true;
        } catch (err) {
          if (!(err instanceof LeaseConflictError)) throw err;
        }
      }
      const current = await this.store.get(signal);
      if (current) this.observe(current);
      const decision = decideLease({
        lease: current?.record,
        observedAt: this.observedAt,
        now: this.clock.now(),
        identity: this.identity,
        defaultLeaseDurationSeconds: leaseDurationSeconds,
      });
      if (decision.action === "wait") return false;
      const record = nextLeaseRecord(decision.action, current?.record, this.clock.now(), this.identity, leaseDurationSeconds);
      const written =
        current === undefined
          ? await this.store.create(record, signal)
          : await this.store.update(record, current.version, signal);
      this.observe(written);
      return true;
    } catch (err) {
      if (err instanceof LeaseConflictError) {
        this.logger?.debug({ err }, "lease changed under us");
      } else if (!this.stopping) {
        this.logger?.warn({ err }, "lease request failed");
      }
      return false;
    } finally {
      timer.cancel();
    }
  }

  private async release(): Promise<void> {
    if (this.observed?.record.holderIdentity !== this.identity) return;
    const attempt = new AbortController();
    const timer = this.clock.setTimer(() => attempt.abort(new Error("lease release timed out")), this.renewDeadlineMs);
    try {
      // A renewal whose answer was lost leaves us a version behind: read once more and retry.
      for (let tries = 0; ; tries++) {
        const mine = tries === 0 ? this.observed : await this.store.get(attempt.signal);
        if (!mine || mine.record.holderIdentity !== this.identity) return;
        try {
          this.observe(await this.store.update(releasedLeaseRecord(mine.record, this.clock.now()), mine.version, attempt.signal));
          this.logger?.info("released the lease");
          return;
        } catch (err) {
          if (!(err instanceof LeaseConflictError) || tries > 0) throw err;
        }
      }
    } catch (err) {
      this.logger?.warn({ err }, "could not release the lease; another replica takes over once it expires");
    } finally {
      timer.cancel();
    }
  }

  private observe(lease: StoredLease): void {
    if (this.observed?.version !== lease.version) {
      this.observed = lease;
      this.observedAt = this.clock.now();
    }
  }
}
