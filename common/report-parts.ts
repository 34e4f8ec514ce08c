// One node's report -> the report objects that carry it. A node whose report
// would outgrow one object (thousands of NetServices selecting its pods)
// publishes it in parts named `<node>.0`, `<node>.1`, `<node>.2`, ..., each a
// complete report in itself: whole NetService entries plus the pods those
// entries refer to, re-indexed. The aggregator merges parts like any other
// reports of the node, so nothing downstream knows about parts.
//
// Every part, the first included, carries its number, so that no report name
// of one node is a report name of another: node `a`'s part 1 is `a.1`, node
// `a.1`'s first part is `a.1.0`. (Were the first part named `<node>`, node `a`
// could take the name of node `a.1`'s report.)
import type { ReportNetService, ReportPod, ReportSpec } from "./api.ts";

export type PartLimits = {
  /** Serialized spec size a part should stay under. */
  maxBytes: number;
  /** The report CRD's maxItems for spec.netServices. */
  maxNetServices: number;
};

/**
 * Splits a report into parts that each fit the limits, filling parts in the
 * report's own (sorted) order so that a small change moves few entries
 * between parts. The first part always exists: it carries the node's
 * presence even when no NetService selects anything there. A single entry
 * larger than maxBytes (impossible at a node's pod limit) gets a part of its
 * own rather than being dropped.
 */
export function splitReport(spec: ReportSpec, limits: PartLimits): ReportSpec[] {
  const parts: ReportSpec[] = [];
  let current = newPart(spec);
  let currentBytes = baseBytes(spec);
  for (const entry of spec.netServices) {
    const entryBytes = entryCost(entry, spec.pods, current);
    const full = current.spec.netServices.length >= limits.maxNetServices || currentBytes + entryBytes > limits.maxBytes;
    if (full && current.spec.netServices.length > 0) {
      parts.push(current.spec);
      current = newPart(spec);
      currentBytes = baseBytes(spec);
    }
    currentBytes += entryCost(entry, spec.pods, current);
    add(current, entry, spec.pods);
  }
  parts.push(current.spec);
  return parts;
}

/** A node's report has at most this many parts (0 to 64); the admission policy refuses higher part numbers. */
export const maxReportParts = 65;

/** The part number of a report object of the node, from its name; undefined when the name is no part of that node's report. */
export function reportPartIndex(nodeName: string, objectName: string): number | undefined {
  if (!objectName.startsWith(`${nodeName}.`)) return undefined;
  const suffix = objectName.slice(nodeName.length + 1);
  if (!/^(0|[1-9][0-9]?)$/.test(suffix)) return undefined;
  const index = Number(suffix);
  return index < maxReportParts ? index : undefined;
}

/** The object name of part `index` of a node's report. */
export function reportPartName(nodeName: string, index: number): string {
  return `${nodeName}.${index}`;
}

/** What agents before parts were numbered from 0 called a node's first part; deleted by the agent when found. */
export function legacyReportName(nodeName: string): string {
  return nodeName;
}

type Building = { spec: ReportSpec; podIndex: Map<number, number> };

function newPart(spec: ReportSpec): Building {
  const { pods: _pods, netServices: _netServices, ...rest } = spec;
  return { spec: { ...rest, pods: [], netServices: [] }, podIndex: new Map() };
}

function add(part: Building, entry: ReportNetService, pods: readonly ReportPod[]): void {
  const endpoints = entry.endpoints.map((endpoint) => {
    let index = part.podIndex.get(endpoint.pod);
    if (index === undefined) {
      index = part.spec.pods.length;
      part.spec.pods.push(pods[endpoint.pod]!);
      part.podIndex.set(endpoint.pod, index);
    }
    return { ...endpoint, pod: index };
  });
  part.spec.netServices.push({ ...entry, endpoints });
}

/** Bytes an entry adds to a part: the entry itself plus the pods the part does not list yet. */
function entryCost(entry: ReportNetService, pods: readonly ReportPod[], part: Building): number {
  let bytes = jsonBytes(entry) + 1;
  const counted = new Set<number>();
  for (const endpoint of entry.endpoints) {
    if (part.podIndex.has(endpoint.pod) || counted.has(endpoint.pod)) continue;
    counted.add(endpoint.pod);
    bytes += jsonBytes(pods[endpoint.pod]) + 1;
  }
  return bytes;
}

function baseBytes(spec: ReportSpec): number {
  return jsonBytes({ ...spec, pods: [], netServices: [] });
}

function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value), "utf8");
}

/**
 * The order to write the changed parts of a report in, so that no entry that
 * is in the report both before and after is ever in no part: a part that
 * gains an entry is written before the part that loses it. Parts are filled
 * in the report's own order, so entries move between parts monotonically and
 * these constraints never form a cycle. (Writing the parts that gain the most
 * first does not do it: ABC|DEF|GHI -> AB|CDE|FGH|I written [1,2,3,0] loses F,
 * then I.) Parts beyond the new last one are deleted after all writes.
 *
 * `before[i]` and `after[i]` are the entry keys (NetService uids) of part i
 * as stored and as desired; `changed` the parts to write.
 */
export function partWriteOrder(before: readonly (readonly string[])[], after: readonly (readonly string[])[], changed: readonly number[]): number[] {
  const partBefore = new Map<string, number>();
  before.forEach((keys, part) => keys.forEach((key) => partBefore.set(key, part)));
  const writing = new Set(changed);
  // mustFollow.get(i): parts to write before part i (they gain an entry that part i loses).
  const mustFollow = new Map<number, Set<number>>(changed.map((part) => [part, new Set<number>()]));
  after.forEach((keys, part) => {
    for (const key of keys) {
      const from = partBefore.get(key);
      if (from === undefined || from === part || !writing.has(from)) continue;
      mustFollow.get(from)?.add(part);
    }
  });
  const order: number[] = [];
  const done = new Set<number>();
  const visiting = new Set<number>();
  const visit = (part: number): void => {
    if (done.has(part) || visiting.has(part)) return;
    visiting.add(part);
    for (const first of [...(mustFollow.get(part) ?? [])].sort((a, b) => b - a)) visit(first);
    visiting.delete(part);
    done.add(part);
    order.push(part);
  };
  for (const part of [...changed].sort((a, b) => b - a)) visit(part);
  return order;
}
