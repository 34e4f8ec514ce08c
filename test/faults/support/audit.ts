// The API server's audit log as the fault tests' write log: every request the
// two programs make, with the pod their token is bound to (so two replicas of
// the aggregator, which share a ServiceAccount, a User-Agent and a field
// manager, are told apart), the status code, and for the aggregator's writes
// the stored object with its resourceVersion.
//
//   auditPolicy(systemNamespace)       YAML for --audit-policy-file
//   const log = new AuditLog(file);   log.read() re-reads what was appended
//   leadershipReport(log.read(), { leaseName, namespace })   writes by replica against lease holders
//   requestsBy(log.read(), user, since, until)              counts during a fault
import { readFileSync } from "node:fs";

export const agentUser = (namespace: string) => `system:serviceaccount:${namespace}:netservice-agent`;
export const aggregatorUser = (namespace: string) => `system:serviceaccount:${namespace}:netservice-aggregator`;
const podNameKey = "authentication.kubernetes.io/pod-name";

export function auditPolicy(systemNamespace: string, extraUsers: readonly string[] = []): string {
  return [
    "apiVersion: audit.k8s.io/v1",
    "kind: Policy",
    "omitStages: [RequestReceived]",
    "rules:",
    // The aggregator's writes with the stored object: its resourceVersion orders them against the Lease's.
    "  - level: RequestResponse",
    `    users: ["${aggregatorUser(systemNamespace)}"]`,
    "    verbs: [create, update, patch, delete]",
    "  - level: Metadata",
    `    users: [${[agentUser(systemNamespace), aggregatorUser(systemNamespace), ...extraUsers].map((u) => `"${u}"`).join(", ")}]`,
    "  - level: None",
    "",
  ].join("\n");
}

export type AuditEvent = {
  auditID: string;
  stage: string;
  verb: string;
  requestURI: string;
  user: { username: string; extra?: Record<string, string[]> };
  userAgent?: string;
  objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string; apiGroup?: string };
  responseStatus?: { code?: number };
  /** The request body, for the aggregator's writes (audited at RequestResponse). */
  requestObject?: { apiVersion?: string; kind?: string; metadata?: { name?: string; uid?: string } };
  responseObject?: { kind?: string; metadata?: { resourceVersion?: string; name?: string }; spec?: { holderIdentity?: string } };
  requestReceivedTimestamp: string;
  stageTimestamp: string;
};

export class AuditLog {
  readonly file: string;
  #events: AuditEvent[] = [];
  #offset = 0;

  constructor(file: string) {
    this.file = file;
  }

  /** Every event so far (reads only what was appended since the last call). */
  read(): AuditEvent[] {
    let text: string;
    try {
      text = readFileSync(this.file, "utf8");
    } catch {
      return this.#events;
    }
    const fresh = text.slice(this.#offset);
    const complete = fresh.lastIndexOf("\n") + 1;
    for (const line of fresh.slice(0, complete).split("\n")) {
      if (line.trim() !== "") this.#events.push(JSON.parse(line) as AuditEvent);
    }
    this.#offset += complete;
    return this.#events;
  }
}

/** The pod a request's token was bound to: the replica that made it. */
export function podOf(event: AuditEvent): string {
  return event.user.extra?.[podNameKey]?.[0] ?? "";
}

/** Requests (by audit id, so a watch counts once) by `user` received in [since, until). */
export function requestsBy(events: readonly AuditEvent[], user: string, since: number, until = Number.POSITIVE_INFINITY): AuditEvent[] {
  const seen = new Map<string, AuditEvent>();
  for (const event of events) {
    if (event.user.username !== user) continue;
    const at = Date.parse(event.requestReceivedTimestamp);
    if (at < since || at >= until) continue;
    const previous = seen.get(event.auditID);
    if (!previous || event.stage === "ResponseComplete") seen.set(event.auditID, event);
  }
  return [...seen.values()];
}

/**
 * The server-side applies (a PATCH whose body is a whole object, with kind)
 * that `user` sent to Services, Endpoints, EndpointSlices and NetService
 * status, split by whether the body named the target's uid. An apply
 * without one would, after its target was deleted and re-created by
 * someone else, write to that other object.
 */
export function appliesByUid(events: readonly AuditEvent[], user: string): { withUid: AuditEvent[]; withoutUid: AuditEvent[] } {
  const applies = requestsBy(events, user, 0).filter((event) =>
    event.verb === "patch" &&
    event.requestObject?.kind !== undefined &&
    ["services", "endpoints", "endpointslices", "netservices"].includes(event.objectRef?.resource ?? ""));
  return {
    withUid: applies.filter((event) => event.requestObject?.metadata?.uid),
    withoutUid: applies.filter((event) => !event.requestObject?.metadata?.uid),
  };
}

/** Counts of requests by status code, e.g. {"200": 12, "429": 40}. */
export function byCode(events: readonly AuditEvent[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const event of events) {
    const code = String(event.responseStatus?.code ?? "open");
    counts[code] = (counts[code] ?? 0) + 1;
  }
  return counts;
}

export type LeaseVersion = { rv: number; holder: string; writer: string; at: number };
export type AggregatorWrite = { rv: number | undefined; writer: string; what: string; received: number; completed: number };

export type LeadershipReport = {
  leaseVersions: LeaseVersion[];
  writes: AggregatorWrite[];
  /** Writes made by a replica that did not hold the lease when the write was stored. */
  violations: string[];
  /** Writes by each replica. */
  writesBy: Record<string, number>;
};

/**
 * Holds every successful write of the aggregator against the Lease's history.
 * A write with a resourceVersion was stored between two Lease versions (one
 * etcd, one revision counter), and the holder of the earlier one must be the
 * writer. A delete carries no new resourceVersion; it must have been received
 * and answered while the writer held the lease.
 */
export function leadershipReport(
  events: readonly AuditEvent[],
  options: { namespace: string; leaseName: string },
): LeadershipReport {
  const user = aggregatorUser(options.namespace);
  const complete = events.filter(
    (e) => e.user.username === user && e.stage === "ResponseComplete" && (e.responseStatus?.code ?? 0) >= 200 && (e.responseStatus?.code ?? 0) < 300,
  );
  const leaseVersions: LeaseVersion[] = [];
  const writes: AggregatorWrite[] = [];
  for (const e of complete) {
    if (!["create", "update", "patch", "delete"].includes(e.verb)) continue;
    const rvText = e.responseObject?.metadata?.resourceVersion;
    const rv = rvText && e.verb !== "delete" ? Number(rvText) : undefined;
    if (e.objectRef?.resource === "leases") {
      if (e.objectRef.name === options.leaseName && rv !== undefined) {
        leaseVersions.push({ rv, holder: e.responseObject?.spec?.holderIdentity ?? "", writer: podOf(e), at: Date.parse(e.stageTimestamp) });
      }
      continue;
    }
    const ref = e.objectRef;
    writes.push({
      rv,
      writer: podOf(e),
      what: `${e.verb} ${ref?.resource}${ref?.subresource ? `/${ref.subresource}` : ""} ${ref?.namespace}/${ref?.name ?? e.responseObject?.metadata?.name ?? ""}`,
      received: Date.parse(e.requestReceivedTimestamp),
      completed: Date.parse(e.stageTimestamp),
    });
  }
  leaseVersions.sort((a, b) => a.rv - b.rv);
  const violations: string[] = [];
  const writesBy: Record<string, number> = {};
  for (const write of writes) {
    writesBy[write.writer] = (writesBy[write.writer] ?? 0) + 1;
    if (write.rv !== undefined) {
      const holder = lastBefore(leaseVersions, (v) => v.rv < (write.rv ?? 0))?.holder;
      if (holder !== write.writer) violations.push(`${write.writer} wrote (${write.what}, rv ${write.rv}) while the lease was held by "${holder ?? "nobody"}"`);
    } else {
      const atReceipt = lastBefore(leaseVersions, (v) => v.at <= write.received)?.holder;
      const changed = leaseVersions.some((v) => v.at > write.received && v.at < write.completed && v.holder !== write.writer);
      if (atReceipt !== write.writer || changed) {
        violations.push(`${write.writer} deleted (${write.what}) while the lease was held by "${atReceipt ?? "nobody"}"${changed ? " or changed hands" : ""}`);
      }
    }
  }
  return { leaseVersions, writes, violations, writesBy };
}

function lastBefore<T>(sorted: readonly T[], before: (item: T) => boolean): T | undefined {
  let found: T | undefined;
  for (const item of sorted) {
    if (before(item)) found = item;
    else break;
  }
  return found;
}

/** Lease versions where the holder changed: [{holder, at}], in order. */
export function leaseTransitions(versions: readonly LeaseVersion[]): { holder: string; at: number; rv: number }[] {
  const out: { holder: string; at: number; rv: number }[] = [];
  for (const version of versions) {
    if (out.at(-1)?.holder !== version.holder) out.push({ holder: version.holder, at: version.at, rv: version.rv });
  }
  return out;
}
