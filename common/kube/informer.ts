// The one place that lists and watches. An Informer keeps an in-memory copy
// of one collection (optionally narrowed by a label and/or field selector,
// the same for list and watch) and tells its handlers what changed.
//
//   new Informer<T>({http, path, labelSelector?, fieldSelector?, staleAfterMs = 180 s, resyncPeriodMs = 0,
//                    minWatchTimeoutSeconds = 300, pageSize = 500, backoff?, clock?, random?, logger?, transform?})
//     start(): this                 list, then watch; relist whenever needed, until stop()
//     stop(): Promise<void>         aborts requests and timers; resolves when the loop has ended
//     synced: Promise<void>         resolves after the first successful list (rejects if stopped first)
//     hasSynced: boolean
//     onChange(handler): () => void handler({type: "add" | "update" | "delete", key, object, old?}); returns unsubscribe
//     get(key): T | undefined       key "namespace/name" ("name" if cluster-scoped)
//     list(): T[], keys(): string[], size
//     health(): InformerHealth      synced, lastSyncTime, lastEventTime, watching, failures, lastError, resourceVersion
//
//   const pods = new Informer({ http: clients.http, path: "/api/v1/pods", fieldSelector: `spec.nodeName=${node}` });
//   pods.onChange((e) => queue.add(e.key)); pods.start(); await pods.synced;
//
// Behaviour:
// - The watch starts at the list's resourceVersion, with bookmarks and a
//   timeout (random in [min, 2*min) s, as client-go, so replicas do not
//   reconnect together). When the server ends a healthy watch, it is resumed
//   from the last resourceVersion seen (event or bookmark).
// - Any failure (410 Gone, an ERROR event, a refused or broken connection, a
//   watch that ends at once without an event) leads to a full relist after a
//   capped, jittered exponential backoff; the relist replaces the cache and
//   emits deletes for vanished keys, updates for changed ones and adds for new
//   ones. The backoff resets once a watch has delivered something.
// - Staleness guard: the API server sends a bookmark about every minute; if
//   neither an event nor a bookmark arrives for staleAfterMs, the watch is
//   presumed dead (half-open connection, stuck server) and the informer relists.
// - Handlers run synchronously after the cache has changed, so get() inside a
//   handler sees the new state. They should only enqueue keys; a throw is logged.
// - Objects are plain JSON (managedFields dropped by default to save memory;
//   kind and apiVersion filled in on listed items); parse them at the edge.
// - Register handlers before start(): events are not replayed.
import type { Logger } from "../log.ts";
import { Backoff } from "./backoff.ts";
import { type Clock, realClock, sleep, type Timer } from "./clock.ts";
import { KubeApiError, type KubeHttp } from "./http.ts";
import { type KubeObject, objectKey, stripManagedFields } from "./object.ts";

export type InformerEvent<T> =
  | { type: "add"; key: string; object: T }
  | { type: "update"; key: string; object: T; old: T }
  /** object is the last state the informer knew. */
  | { type: "delete"; key: string; object: T };

export type InformerHandler<T> = (event: InformerEvent<T>) => void;

export interface InformerOptions<T extends KubeObject> {
  http: KubeHttp;
  /** Collection path, e.g. "/api/v1/pods" or "/apis/svcctl.metaswitch.com/v1alpha1/namespaces/ns/netservices". */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Relist when the watch is silent (no event, no bookmark) this long; 0 disables. Default 180 s. */
  staleAfterMs?: number;
  /** Relist this often even when all is well; 0 (default) never. */
  resyncPeriodMs?: number;
  /** Lower bound of the random watch timeout. Default 300 s. */
  minWatchTimeoutSeconds?: number;
  /** Items per list page. Default 500. */
  pageSize?: number;
  /** Relist backoff. Default 800 ms doubling to 30 s. */
  backoff?: { initialMs?: number; maxMs?: number };
  clock?: Clock;
  random?: () => number;
  logger?: Logger;
  /** Applied to every object before it is cached. Default: drop metadata.managedFields. */
  transform?: (obj: KubeObject) => T;
}

export interface InformerHealth {
  synced: boolean;
  /** When the last successful list completed (clock ms). */
  lastSyncTime?: number;
  /** When the last watch event or bookmark arrived (clock ms). */
  lastEventTime?: number;
  watching: boolean;
  /** Failures since the last healthy watch. */
  failures: number;
  lastError?: string;
  resourceVersion?: string;
}

interface ListResponse {
  apiVersion?: string;
  kind?: string;
  metadata?: { resourceVersion?: string; continue?: string };
  items?: KubeObject[];
}

// Abort reasons, told apart by identity.
const stopRequested = new Error("informer stopped");
const resyncDue = new Error("periodic relist");

export class Informer<T extends KubeObject = KubeObject> {
  readonly synced: Promise<void>;
  private readonly http: KubeHttp;
  private readonly path: string;
  private readonly selectors: { labelSelector?: string; fieldSelector?: string };
  private readonly staleAfterMs: number;
  private readonly resyncPeriodMs: number;
  private readonly minWatchTimeoutSeconds: number;
  private readonly pageSize: number;
  private readonly backoff: Backoff;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly logger: Logger | undefined;
  private readonly transform: (obj: KubeObject) => T;
  private readonly handlers = new Set<InformerHandler<T>>();
  private cache = new Map<string, T>();
  private resourceVersion: string | undefined;
  private resolveSynced: () => void = () => {};
  private rejectSynced: (err: Error) => void = () => {};
  private syncedOnce = false;
  private lastSyncTime: number | undefined;
  private lastEventTime: number | undefined;
  private watching = false;
  private failures = 0;
  private lastError: string | undefined;
  private running: Promise<void> | undefined;
  private stopping = false;
  private readonly stopController = new AbortController();
  private current: AbortController | undefined;
  private resyncTimer: Timer | undefined;

  constructor(options: InformerOptions<T>) {
    this.http = options.http;
    this.path = options.path;
    this.selectors = { labelSelector: options.labelSelector, fieldSelector: options.fieldSelector };
    this.staleAfterMs = options.staleAfterMs ?? 180_000;
    this.resyncPeriodMs = options.resyncPeriodMs ?? 0;
    this.minWatchTimeoutSeconds = options.minWatchTimeoutSeconds ?? 300;
    this.pageSize = options.pageSize ?? 500;
    this.clock = options.clock ?? realClock;
    this.random = options.random ?? Math.random;
    this.backoff = new Backoff({
      initialMs: options.backoff?.initialMs ?? 800,
      maxMs: options.backoff?.maxMs ?? 30_000,
      random: this.random,
    });
    this.logger = options.logger?.child({ informer: this.describe() });
    this.transform = options.transform ?? ((obj) => stripManagedFields(obj) as T);
    this.synced = new Promise<void>((resolve, reject) => {
      this.resolveSynced = resolve;
      this.rejectSynced = reject;
    });
    // Whoever awaits synced sees the rejection; nobody awaiting it is not a crash.
    this.synced.catch(() => {});
  }

  get hasSynced(): boolean {
    return this.syncedOnce;
  }

  get size(): number {
    return this.cache.size;
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  keys(): string[] {
    return [...this.cache.keys()];
  }

  onChange(handler: InformerHandler<T>): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  health(): InformerHealth {
    return {
      synced: this.syncedOnce,
      watching: this.watching,
      failures: this.failures,
      lastSyncTime: this.lastSyncTime,
      lastEventTime: this.lastEventTime,
      lastError: this.lastError,
      resourceVersion: this.resourceVersion,
    };
  }

  start(): this {
    if (this.stopping) throw new Error("a stopped informer cannot start again; create a new one");
    this.running ??= this.run();
    return this;
  }

  async stop(): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      this.stopController.abort(stopRequested);
      this.current?.abort(stopRequested);
      this.resyncTimer?.cancel();
      if (!this.syncedOnce) this.rejectSynced(new Error(`informer for ${this.describe()} stopped before its first list`));
    }
    await this.running;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      try {
        await this.relist();
        await this.watchUntilRelistNeeded();
      } catch (err) {
        if (this.stopping) break;
        this.failures++;
        this.lastError = err instanceof Error ? err.message : String(err);
        const delayMs = this.backoff.next();
        const gone = err instanceof KubeApiError && (err.code === 410 || err.reason === "Expired" || err.reason === "Gone");
        this.logger?.[gone ? "info" : "warn"](
          { err, failures: this.failures, retryInMs: delayMs },
          gone ? "watch history expired; relisting" : "list/watch failed; relisting after backoff",
        );
        await sleep(this.clock, delayMs, this.stopController.signal);
      }
    }
    this.watching = false;
  }

  private async relist(): Promise<void> {
    const controller = this.newAttempt();
    const items: T[] = [];
    let continueToken: string | undefined;
    let resourceVersion: string | undefined;
    try {
      do {
        const page = await this.http.request<ListResponse>({
          method: "GET",
          path: this.path,
          query: { ...this.selectors, limit: this.pageSize, continue: continueToken },
          signal: controller.signal,
        });
        const kind = page.kind?.replace(/List$/, "");
        for (const item of page.items ?? []) {
          items.push(this.transform({ ...(kind ? { kind } : {}), ...(page.apiVersion ? { apiVersion: page.apiVersion } : {}), ...item }));
        }
        continueToken = page.metadata?.continue || undefined;
        resourceVersion = page.metadata?.resourceVersion;
      } while (continueToken);
    } finally {
      this.current = undefined;
    }
    if (this.stopping) return;
    if (!resourceVersion) throw new Error(`list of ${this.path} returned no resourceVersion`);

    const { cache, events } = diffRelist(this.cache, items);
    this.cache = cache;
    this.resourceVersion = resourceVersion;
    this.lastSyncTime = this.clock.now();
    this.logger?.debug({ items: items.length, changes: events.length, resourceVersion }, "listed");
    for (const event of events) this.emit(event);
    if (!this.syncedOnce) {
      this.syncedOnce = true;
      this.resolveSynced();
    }
    this.scheduleResync();
  }

  /** Watches, resuming after each healthy end, until a relist is due (returns) or something failed (throws). */
  private async watchUntilRelistNeeded(): Promise<void> {
    while (!this.stopping) {
      const ended = await this.watchOnce();
      if (ended === "relist") return;
    }
  }

  private async watchOnce(): Promise<"resume" | "relist"> {
    const controller = this.newAttempt();
    const started = this.clock.now();
    let received = 0;
    let stale: Timer | undefined;
    const armStalenessGuard = () => {
      stale?.cancel();
      if (this.staleAfterMs > 0) {
        stale = this.clock.setTimer(() => controller.abort(new StaleWatchError(this.staleAfterMs)), this.staleAfterMs);
      }
    };
    const timeoutSeconds = Math.floor(this.minWatchTimeoutSeconds * (1 + this.random()));
    this.watching = true;
    armStalenessGuard();
    try {
      const events = this.http.watch(
        this.path,
        { ...this.selectors, resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds },
        controller.signal,
      );
      for await (const event of events) {
        received++;
        this.lastEventTime = this.clock.now();
        armStalenessGuard();
        this.apply(event.type, event.object);
        if (this.failures > 0 || this.backoff.attempts > 0) {
          this.failures = 0;
          this.backoff.reset();
        }
      }
    } catch (err) {
      const reason: unknown = controller.signal.reason;
      if (controller.signal.aborted) {
        if (reason === stopRequested || reason === resyncDue) return "relist";
        if (reason instanceof StaleWatchError) throw reason;
      }
      throw err;
    } finally {
      stale?.cancel();
      this.watching = false;
      this.current = undefined;
    }
    if (received === 0 && this.clock.now() - started < 1000) {
      throw new Error("the watch ended at once without an event");
    }
    return "resume";
  }

  private apply(type: string, raw: Record<string, unknown>): void {
    if (type === "ERROR") {
      const code = typeof raw.code === "number" ? raw.code : 500;
      throw new KubeApiError("WATCH", this.path, code, JSON.stringify(raw));
    }
    const rv = (raw.metadata as { resourceVersion?: unknown } | undefined)?.resourceVersion;
    if (typeof rv === "string" && rv !== "") this.resourceVersion = rv;
    if (type === "BOOKMARK") return;
    const object = this.transform(raw as KubeObject);
    const key = objectKey(object);
    const old = this.cache.get(key);
    if (type === "DELETED") {
      this.cache.delete(key);
      this.emit({ type: "delete", key, object });
    } else if (type === "ADDED" || type === "MODIFIED") {
      this.cache.set(key, object);
      this.emit(old === undefined ? { type: "add", key, object } : { type: "update", key, object, old });
    } else {
      throw new Error(`unknown watch event type ${type}`);
    }
  }

  private emit(event: InformerEvent<T>): void {
    for (const handler of this.handlers) {
      try {
        handler(event);
      } catch (err) {
        this.logger?.error({ err, key: event.key, event: event.type }, "informer handler threw");
      }
    }
  }

  private newAttempt(): AbortController {
    const controller = new AbortController();
    this.current = controller;
    if (this.stopping) controller.abort(stopRequested);
    return controller;
  }

  private scheduleResync(): void {
    this.resyncTimer?.cancel();
    if (this.resyncPeriodMs <= 0 || this.stopping) return;
    this.resyncTimer = this.clock.setTimer(() => {
      this.logger?.debug("periodic relist");
      // Not during a relist: the next successful one schedules the timer again.
      if (this.watching) this.current?.abort(resyncDue);
    }, this.resyncPeriodMs);
  }

  private describe(): string {
    const selectors = Object.values(this.selectors).filter(Boolean).join(",");
    return selectors ? `${this.path}?${selectors}` : this.path;
  }
}

class StaleWatchError extends Error {
  constructor(staleAfterMs: number) {
    super(`no watch event or bookmark for ${staleAfterMs / 1000} s; presuming the watch dead`);
    this.name = "StaleWatchError";
  }
}

/**
 * The cache after a relist, and what changed: adds for new keys, updates for
 * keys whose resourceVersion changed, deletes (with the last known object)
 * for keys that are gone.
 */
export function diffRelist<T extends KubeObject>(
  previous: ReadonlyMap<string, T>,
  items: readonly T[],
): { cache: Map<string, T>; events: InformerEvent<T>[] } {
  const cache = new Map<string, T>();
  const events: InformerEvent<T>[] = [];
  for (const object of items) {
    const key = objectKey(object);
    cache.set(key, object);
    const old = previous.get(key);
    if (old === undefined) {
      events.push({ type: "add", key, object });
    } else if (old.metadata?.resourceVersion !== object.metadata?.resourceVersion) {
      events.push({ type: "update", key, object, old });
    }
  }
  for (const [key, object] of previous) {
    if (!cache.has(key)) events.push({ type: "delete", key, object });
  }
  return { cache, events };
}
