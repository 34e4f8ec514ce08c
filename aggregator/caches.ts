// What the aggregator watches, and the indexes its event handlers keep: the
// state a reconcile reads. Informers run on every replica, so a standby
// holds warm caches.
//
//   new Caches(http, {systemNamespace, clock, logger, heartbeatTimeoutMs, informer?})
//     netServices, reports, nodes, heartbeats, owned[kind]   the informers
//     reportIndex, ownerIndex[kind], liveness                kept by the controller's handlers
//     informers, ready                                       for start, stop and health
//     lookup(ref)                                            one object as a cache shows it (expectations.ts)
//     netService(key, written)                               the NetService, or our status write the cache lags
//     observe(netService, taken, written?)                   what plan.ts sees of the NetService's namespace
//     nodeLookup(now)                                        each node's health, for mergeReports
import { apiVersion, labels, netServiceKind, netServicePlural, reportPlural, sliceManagedBy, type NetService } from "../common/api.ts";
import type { NetServiceStatus } from "../common/desired-status.ts";
import type { Clock } from "../common/kube/clock.ts";
import type { KubeHttp } from "../common/kube/http.ts";
import { Informer } from "../common/kube/informer.ts";
import type { KubeObject } from "../common/kube/object.ts";
import { resourcePath } from "../common/kube/resources.ts";
import type { Logger } from "../common/log.ts";
import type { NodeLookup } from "../common/merge.ts";
import type { CacheView, ObjectRef, PendingView } from "./expectations.ts";
import { netServiceKey } from "./keys.ts";
import { NodeLiveness, slimHeartbeat, slimNode, type HeartbeatView, type NodeView } from "./node-liveness.ts";
import { OwnerIndex } from "./owner-index.ts";
import type { Observed, OwnedKind } from "./plan.ts";
import { parseReport, ReportIndex, type CachedReport } from "./report-index.ts";
import { ownedCollectionPath } from "./skeleton.ts";

export interface CachesOptions {
  systemNamespace: string;
  clock: Clock;
  logger: Logger;
  /** A heartbeat older than this publishes its node's endpoints not ready (node-liveness.ts); 0 ignores heartbeats. */
  heartbeatTimeoutMs: number;
  /** Passed to every informer (tests shorten them). */
  informer?: { staleAfterMs?: number; backoff?: { initialMs?: number; maxMs?: number } };
}

/** A NetService as cached: not parsed yet (a reconcile parses it), with the status last written. */
export type NetServiceObject = KubeObject & { status?: Partial<NetServiceStatus> };

/** What start() and stop() need of an informer, whatever it caches. */
type SyncedSource = { start(): unknown; stop(): Promise<void>; readonly synced: Promise<void>; readonly hasSynced: boolean };

export class Caches {
  readonly netServices: Informer<NetServiceObject>;
  readonly reports: Informer<CachedReport>;
  readonly nodes: Informer<NodeView>;
  readonly heartbeats: Informer<HeartbeatView>;
  readonly owned: Record<OwnedKind, Informer<KubeObject>>;
  readonly informers: SyncedSource[];

  readonly reportIndex = new ReportIndex();
  readonly ownerIndex: Record<OwnedKind, OwnerIndex> = {
    Service: new OwnerIndex(),
    Endpoints: new OwnerIndex(),
    EndpointSlice: new OwnerIndex(),
  };
  readonly liveness: NodeLiveness;

  constructor(http: KubeHttp, options: CachesOptions) {
    const { systemNamespace, clock } = options;
    const common = { http, clock, logger: options.logger, ...options.informer };
    this.netServices = new Informer<NetServiceObject>({ ...common, path: resourcePath({ apiVersion, plural: netServicePlural }) });
    this.reports = new Informer<CachedReport>({
      ...common,
      path: resourcePath({ apiVersion, plural: reportPlural, namespace: systemNamespace }),
      transform: parseReport,
    });
    // Of a Node, only what decides whether its endpoints serve, and its zone (node-liveness.ts).
    this.nodes = new Informer<NodeView>({ ...common, path: "/api/v1/nodes", transform: slimNode });
    this.heartbeats = new Informer<HeartbeatView>({
      ...common,
      path: resourcePath({ apiVersion: "coordination.k8s.io/v1", plural: "leases", namespace: systemNamespace }),
      labelSelector: `${labels.agentHeartbeat}=true`,
      transform: slimHeartbeat,
    });
    this.liveness = new NodeLiveness({ heartbeatTimeoutMs: options.heartbeatTimeoutMs, startedAt: clock.now() });
    // Kubernetes copies a Service's labels to the Endpoints and EndpointSlices
    // it makes for it, so the template Service's own objects carry our label
    // too: the second label picks out the ones the aggregator writes.
    this.owned = {
      Service: new Informer({ ...common, path: ownedCollectionPath("Service"), labelSelector: labels.netService }),
      Endpoints: new Informer({
        ...common,
        path: ownedCollectionPath("Endpoints"),
        labelSelector: `${labels.netService},${labels.skipMirror}=true`,
      }),
      EndpointSlice: new Informer({
        ...common,
        path: ownedCollectionPath("EndpointSlice"),
        labelSelector: `${labels.netService},${labels.managedBy}=${sliceManagedBy}`,
      }),
    };
    this.informers = [this.netServices, this.reports, this.nodes, this.heartbeats, ...Object.values(this.owned)];
  }

  /** Every informer has listed once. */
  get ready(): boolean {
    return this.informers.every((informer) => informer.hasSynced);
  }

  lookup(ref: ObjectRef): CacheView {
    const informer: Informer<KubeObject> | undefined =
      ref.kind === netServiceKind ? this.netServices : this.owned[ref.kind as OwnedKind];
    return { object: informer?.get(ref.key), collectionVersion: informer?.health().resourceVersion };
  }

  /**
   * The NetService as last known: the cache, or what our own status write
   * returned while the cache does not show it yet (`written`, by "kind key":
   * expectations.ts). Undefined once the cache has seen it deleted.
   */
  netService(key: string, written: ReadonlyMap<string, PendingView>): NetServiceObject | undefined {
    const cached = this.netServices.get(key);
    const ownWrite = written.get(`${netServiceKind} ${key}`)?.object as NetServiceObject | undefined;
    return cached && (ownWrite ?? cached);
  }

  /**
   * The NetService's namespace as the plan sees it: the caches, overlaid with
   * what our writes returned where the caches do not show them yet (`written`,
   * by "kind key": expectations.ts), and the names a create found taken.
   */
  observe(
    netService: NetService,
    taken: (kind: OwnedKind, namespace: string, name: string) => KubeObject | undefined,
    written: ReadonlyMap<string, PendingView> = new Map(),
  ): Observed {
    const { namespace } = netService.metadata;
    const key = netServiceKey(namespace, netService.metadata.name);
    return {
      get: (kind, name) => {
        const objectKeyText = `${namespace}/${name}`;
        const pending = written.get(`${kind} ${objectKeyText}`);
        if (pending) return pending.object;
        return this.owned[kind].get(objectKeyText) ?? taken(kind, namespace, name);
      },
      indexed: (kind) => {
        const keys = new Set(this.ownerIndex[kind].objectsOf(key));
        for (const pending of written.values()) if (pending.kind === kind) keys.add(pending.key);
        return [...keys]
          .sort()
          .map((objectKeyText) => {
            const pending = written.get(`${kind} ${objectKeyText}`);
            return pending ? pending.object : this.owned[kind].get(objectKeyText);
          })
          .filter((object): object is KubeObject => object !== undefined);
      },
    };
  }

  nodeLookup(now: number): NodeLookup {
    return { get: (nodeName) => this.liveness.health(nodeName, now), size: this.nodes.size };
  }
}
