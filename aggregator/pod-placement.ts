// A report is a node's claim, not the truth: before an endpoint is published,
// the pod it names must exist with that uid and run on the reporting node.
// Kubernetes' NodeRestriction holds kubelets to the same rule. A pod's
// spec.nodeName never changes once set and a uid is never reused, so one
// GET per pod lifetime settles it for good; a pod change that keeps its uid
// (readiness, addresses) costs no read at all.
//
//   trustedReports(reports, placementOf)  -> { trusted, rejected }      the pure check
//   podsToPlace(reports)                  the pods a set of reports names, once each
//   new PodPlacements({ read, now, concurrency, recheckUnscheduledMs, backoff })
//     place(pods, signal)   reads the placements not known yet (at most `concurrency` GETs at once);
//                           after a failed read, no read at all until a backoff (1 s doubling to 30 s) has passed
//     placementOf(uid)      what the API server said, or undefined when not read yet
//     retain(uids)          forgets the pods no report names any more
//     reads                 GETs sent, for the metric and the benchmark
//   new ReportVerifier({ http, now, podUids })   what the aggregator holds: the above over the API
//     verify(reports, signal) -> { trusted, forged }   forged: pods on other nodes not told about before
//     counts, reads
import type { NodeReport } from "../common/merge.ts";
import { isNotFound, type KubeHttp } from "../common/kube/http.ts";
import type { KubeObject } from "../common/kube/object.ts";

/**
 * Where the API server says a pod uid runs: a node name; nowhere (no pod of
 * that name has that uid, for good); or not yet (the pod is not scheduled,
 * so no agent can honestly report it; looked at again later).
 */
export type Placement = { nodeName: string } | { absent: true } | { unscheduled: true; at: number };

export type ReportedPod = { namespace: string; name: string; uid: string };

/** An endpoint dropped because its pod does not run on the node that reported it. */
export type RejectedEndpoint = { reportingNode: string; pod: ReportedPod; runsOn?: string };

/**
 * The reports with every endpoint whose pod is not known to run on the
 * reporting node removed (unknown placements count as not: call place()
 * first), and what was removed.
 */
export function trustedReports(
  reports: readonly NodeReport[],
  placementOf: (uid: string) => Placement | undefined,
): { trusted: NodeReport[]; rejected: RejectedEndpoint[] } {
  const rejected: RejectedEndpoint[] = [];
  const trusted = reports.map((report) => {
    const netServices = report.spec.netServices.map((entry) => {
      const endpoints = entry.endpoints.filter((endpoint) => {
        const pod = report.spec.pods[endpoint.pod];
        if (!pod) return false;
        const placement = placementOf(pod.uid);
        if (placement && "nodeName" in placement && placement.nodeName === report.nodeName) return true;
        const runsOn = placement && "nodeName" in placement ? placement.nodeName : undefined;
        rejected.push({ reportingNode: report.nodeName, pod: { namespace: pod.namespace, name: pod.name, uid: pod.uid }, ...(runsOn ? { runsOn } : {}) });
        return false;
      });
      return endpoints.length === entry.endpoints.length ? entry : { ...entry, endpoints };
    });
    return netServices.every((entry, index) => entry === report.spec.netServices[index]) ? report : { ...report, spec: { ...report.spec, netServices } };
  });
  return { trusted, rejected: dedupe(rejected) };
}

/** Every pod an endpoint of the reports refers to, once. */
export function podsToPlace(reports: readonly NodeReport[]): ReportedPod[] {
  const pods = new Map<string, ReportedPod>();
  for (const report of reports) {
    for (const entry of report.spec.netServices) {
      for (const endpoint of entry.endpoints) {
        const pod = report.spec.pods[endpoint.pod];
        if (pod && !pods.has(pod.uid)) pods.set(pod.uid, { namespace: pod.namespace, name: pod.name, uid: pod.uid });
      }
    }
  }
  return [...pods.values()];
}

/** The pod of that name as the API server has it now (uid and spec.nodeName), or undefined when there is none. */
export type ReadPod = (pod: ReportedPod, signal: AbortSignal) => Promise<{ uid: string; nodeName?: string } | undefined>;

export class PodPlacements {
  private readonly read: ReadPod;
  private readonly now: () => number;
  private readonly concurrency: number;
  private readonly recheckUnscheduledMs: number;
  private readonly known = new Map<string, Placement>();
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly backoff: { initialMs: number; maxMs: number };
  private readCount = 0;
  /** After failed reads: when reading may start again, how many waves failed in a row, and the last error. */
  private failing: { retryAt: number; failures: number; error: unknown } | undefined;

  constructor(options: { read: ReadPod; now: () => number; concurrency?: number; recheckUnscheduledMs?: number; backoff?: { initialMs: number; maxMs: number } }) {
    this.read = options.read;
    this.now = options.now;
    this.concurrency = options.concurrency ?? 16;
    this.recheckUnscheduledMs = options.recheckUnscheduledMs ?? 30_000;
    this.backoff = options.backoff ?? { initialMs: 1000, maxMs: 30_000 };
  }

  get reads(): number {
    return this.readCount;
  }

  get size(): number {
    return this.known.size;
  }

  placementOf(uid: string): Placement | undefined {
    return this.known.get(uid);
  }

  /**
   * Reads what is not known yet. A pod found unscheduled is read again after
   * recheckUnscheduledMs at the earliest; a failed read throws, so the
   * reconcile is retried rather than an honest pod dropped. After a failure
   * every read waits out a backoff shared by all pods: reconciles come with
   * every report change, and each retrying its reads at once would be a hot
   * loop against an API server that is refusing them (429, 503).
   */
  async place(pods: readonly ReportedPod[], signal: AbortSignal): Promise<void> {
    const waiting: Promise<void>[] = [];
    const now = this.now();
    if (this.failing && now < this.failing.retryAt && pods.some((pod) => this.known.get(pod.uid) === undefined)) {
      throw new PlacementBackoffError(this.failing.retryAt - now, this.failing.error);
    }
    const toRead = pods.filter((pod) => {
      const pending = this.inFlight.get(pod.uid);
      if (pending) waiting.push(pending);
      const known = this.known.get(pod.uid);
      const due = known === undefined || ("unscheduled" in known && now - known.at >= this.recheckUnscheduledMs);
      return !pending && due;
    });
    try {
      for (let start = 0; start < toRead.length; start += this.concurrency) {
        await Promise.all(toRead.slice(start, start + this.concurrency).map((pod) => this.readOne(pod, signal)));
      }
    } catch (error) {
      if (signal.aborted) throw error;
      const failures = (this.failing?.failures ?? 0) + 1;
      const delayMs = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** (failures - 1));
      this.failing = { retryAt: this.now() + delayMs, failures, error };
      throw error;
    }
    if (toRead.length > 0) this.failing = undefined;
    await Promise.all(waiting);
  }

  /** Forgets every pod not in `uids` (the pods the reports still name). */
  retain(uids: ReadonlySet<string>): void {
    for (const uid of this.known.keys()) {
      if (!uids.has(uid)) this.known.delete(uid);
    }
  }

  private readOne(pod: ReportedPod, signal: AbortSignal): Promise<void> {
    const reading = (async () => {
      this.readCount++;
      const live = await this.read(pod, signal);
      if (!live || live.uid !== pod.uid) this.known.set(pod.uid, { absent: true });
      else if (live.nodeName) this.known.set(pod.uid, { nodeName: live.nodeName });
      else this.known.set(pod.uid, { unscheduled: true, at: this.now() });
    })().finally(() => this.inFlight.delete(pod.uid));
    this.inFlight.set(pod.uid, reading);
    return reading;
  }
}

/** Reads of pods are waiting out the backoff after a failure; the reconcile is retried later. */
export class PlacementBackoffError extends Error {
  override readonly cause: unknown;
  constructor(remainingMs: number, cause: unknown) {
    super(`pod reads are backing off for ${Math.ceil(remainingMs)} ms after a failed read: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = "PlacementBackoffError";
    this.cause = cause;
  }
}

function dedupe(rejected: RejectedEndpoint[]): RejectedEndpoint[] {
  const seen = new Set<string>();
  return rejected.filter((each) => {
    const id = `${each.reportingNode} ${each.pod.uid}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/**
 * The check as the aggregator runs it: placements read over the API and
 * cached, every rejected (node, pod) counted once, and the ones worth a
 * Warning Event (a pod running on another node) handed back once. A pod
 * that does not exist is the ordinary lag of an honest report behind a
 * deletion, so it is counted but not told about.
 */
export class ReportVerifier {
  readonly counts = { otherNode: 0, notFound: 0 };
  private readonly placements: PodPlacements;
  private readonly podUids: () => ReadonlySet<string>;
  private readonly seen = new Set<string>();
  private retainedAt = 0;

  constructor(options: { http: KubeHttp; now: () => number; podUids: () => ReadonlySet<string> }) {
    this.placements = new PodPlacements({ read: (pod, signal) => readPod(options.http, pod, signal), now: options.now });
    this.podUids = options.podUids;
  }

  get reads(): number {
    return this.placements.reads;
  }

  async verify(reports: readonly NodeReport[], signal: AbortSignal): Promise<{ trusted: NodeReport[]; forged: RejectedEndpoint[] }> {
    await this.placements.place(podsToPlace(reports), signal);
    const { trusted, rejected } = trustedReports(reports, (uid) => this.placements.placementOf(uid));
    const forged: RejectedEndpoint[] = [];
    for (const each of rejected) {
      const id = `${each.reportingNode} ${each.pod.uid}`;
      if (this.seen.has(id)) continue;
      this.seen.add(id);
      if (each.runsOn === undefined) {
        this.counts.notFound++;
      } else {
        this.counts.otherNode++;
        forged.push(each);
      }
    }
    this.retain();
    return { trusted, forged };
  }

  /** Forgets pods no report names any more, whenever the cache has doubled since the last time. */
  private retain(): void {
    if (this.placements.size < 2 * this.retainedAt + 1000) return;
    const uids = this.podUids();
    this.placements.retain(uids);
    for (const id of this.seen) {
      if (!uids.has(id.slice(id.indexOf(" ") + 1))) this.seen.delete(id);
    }
    this.retainedAt = this.placements.size;
  }
}

async function readPod(http: KubeHttp, pod: ReportedPod, signal: AbortSignal): Promise<{ uid: string; nodeName?: string } | undefined> {
  try {
    const live = await http.request<KubeObject & { spec?: { nodeName?: string } }>({
      method: "GET",
      path: `/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/pods/${encodeURIComponent(pod.name)}`,
      signal,
    });
    return { uid: live.metadata?.uid ?? "", ...(live.spec?.nodeName ? { nodeName: live.spec.nodeName } : {}) };
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}
