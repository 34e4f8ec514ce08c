// The node reports as the aggregator reads them: parsed once when they enter
// the cache, and indexed by the NetServices they mention and by node, so that
// a reconcile touches only the entries of its own NetService.
import { reportSpecSchema, type ReportNetService, type ReportSpec } from "../common/api.ts";
import type { KubeObject } from "../common/kube/object.ts";
import type { NodeReport } from "../common/merge.ts";
import { changedNetServiceKeys, netServiceKey } from "./keys.ts";

/** A report as the informer caches it: metadata and the parsed spec, or why it did not parse. */
export type CachedReport = KubeObject & { spec?: ReportSpec; invalid?: string };

/**
 * Informer transform for reports: parse at the edge, keep one copy. A report
 * that does not parse (an agent bug, or a writer that is no agent) is kept
 * without a spec and so contributes nothing.
 */
export function parseReport(raw: KubeObject): CachedReport {
  const { managedFields: _, ...metadata } = raw.metadata ?? {};
  const base = { apiVersion: raw.apiVersion, kind: raw.kind, metadata };
  const parsed = reportSpecSchema.safeParse(raw.spec);
  if (parsed.success) return { ...base, spec: parsed.data };
  const issues = parsed.error.issues.map((issue) => `${issue.path.join(".") || "spec"}: ${issue.message}`);
  return { ...base, invalid: issues.slice(0, 5).join("; ") };
}

type Indexed = { nodeName: string; nodeUid: string | undefined; spec: ReportSpec; entries: Map<string, ReportNetService[]> };

export class ReportIndex {
  private readonly reports = new Map<string, Indexed>();
  private readonly byNetService = new Map<string, Set<string>>();
  private readonly byNode = new Map<string, Set<string>>();

  /**
   * Records the current state of one report (undefined: deleted, or no valid
   * spec) and the uid of the Node that owns it, and returns the NetService
   * keys whose part of it changed.
   */
  update(reportKey: string, spec: ReportSpec | undefined, nodeUid?: string): string[] {
    const previous = this.reports.get(reportKey);
    if (previous) {
      for (const key of previous.entries.keys()) removeFrom(this.byNetService, key, reportKey);
      removeFrom(this.byNode, previous.nodeName, reportKey);
      this.reports.delete(reportKey);
    }
    if (spec) {
      const entries = new Map<string, ReportNetService[]>();
      for (const entry of spec.netServices) {
        const key = netServiceKey(entry.namespace, entry.name);
        const group = entries.get(key);
        if (group) group.push(entry);
        else entries.set(key, [entry]);
      }
      this.reports.set(reportKey, { nodeName: spec.nodeName, nodeUid, spec, entries });
      for (const key of entries.keys()) addTo(this.byNetService, key, reportKey);
      addTo(this.byNode, spec.nodeName, reportKey);
    }
    if (previous && spec && previous.nodeUid !== nodeUid) {
      return [...new Set([...previous.entries.keys(), ...changedNetServiceKeys(undefined, spec)])].sort();
    }
    return changedNetServiceKeys(previous?.spec, spec);
  }

  /**
   * The reports that mention a NetService, each narrowed to the entries of
   * that NetService (pods and triggerTime kept), which is what mergeReports
   * reads.
   */
  reportsFor(netServiceKeyText: string): NodeReport[] {
    const views: NodeReport[] = [];
    for (const reportKey of this.byNetService.get(netServiceKeyText) ?? []) {
      const indexed = this.reports.get(reportKey);
      const entries = indexed?.entries.get(netServiceKeyText);
      if (!indexed || !entries) continue;
      views.push({
        nodeName: indexed.nodeName,
        ...(indexed.nodeUid ? { nodeUid: indexed.nodeUid } : {}),
        spec: { ...indexed.spec, netServices: entries },
      });
    }
    return views;
  }

  /** The uid of every pod any report lists. */
  podUids(): Set<string> {
    const uids = new Set<string>();
    for (const { spec } of this.reports.values()) {
      for (const pod of spec.pods) uids.add(pod.uid);
    }
    return uids;
  }

  /** NetServices with an entry in any report of the node. */
  netServiceKeysOfNode(nodeName: string): string[] {
    const keys = new Set<string>();
    for (const reportKey of this.byNode.get(nodeName) ?? []) {
      for (const key of this.reports.get(reportKey)?.entries.keys() ?? []) keys.add(key);
    }
    return [...keys].sort();
  }
}

function addTo(index: Map<string, Set<string>>, key: string, member: string): void {
  const members = index.get(key);
  if (members) members.add(member);
  else index.set(key, new Set([member]));
}

function removeFrom(index: Map<string, Set<string>>, key: string, member: string): void {
  const members = index.get(key);
  if (!members) return;
  members.delete(member);
  if (members.size === 0) index.delete(key);
}
