// What separate lanes for Endpoints and EndpointSlices could give at most
// (issue 13): a reconcile sends its Endpoints and slice writes together and
// waits for the slower, so the next change of the same NetService can start
// its slice write only when both have returned. A lane per kind would let it
// start when the slices have. From a benchmark's kept audit log (`--keep`),
// this finds the aggregator's write batches (one NetService's applies sent
// within a few milliseconds of each other) and measures, for each batch that
// wrote both kinds, how long after its slices the Endpoints write ended: the
// most a slice lane could save the next change, if it was waiting.
//
//   node hack/bench/lanes.ts AUDIT_LOG [--from ISO --to ISO]
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { finishedRequest } from "./audit.ts";
import { summarise, type Summary } from "./latency.ts";

/** One aggregator write as the API server saw it. */
export type AuditWrite = { key: string; kind: "Endpoints" | "EndpointSlice"; receivedUs: number; doneUs: number };

export type LaneBound = {
  batches: number;
  /** Batches that wrote Endpoints and slices together. */
  both: number;
  /** Of those, how many ended with the Endpoints write after every slice write. */
  endpointsLast: number;
  /** How long after the batch's last slice write its Endpoints write ended (0 when it ended first), ms. */
  slicesWaited: Summary;
  /** How long the batch took, first request received to last one done, ms. */
  batchMs: Summary;
};

/** Requests of one NetService received within this of the batch's first belong to it. */
const batchWindowUs = 5_000;

export function laneBound(writes: AuditWrite[]): LaneBound {
  const byKey = new Map<string, AuditWrite[]>();
  for (const write of writes) {
    const list = byKey.get(write.key) ?? [];
    list.push(write);
    byKey.set(write.key, list);
  }
  const waited: number[] = [];
  const durations: number[] = [];
  let batches = 0;
  let endpointsLast = 0;
  for (const list of byKey.values()) {
    list.sort((a, b) => a.receivedUs - b.receivedUs);
    for (let i = 0; i < list.length; ) {
      const first = list[i]!;
      const batch: AuditWrite[] = [];
      while (i < list.length && list[i]!.receivedUs - first.receivedUs <= batchWindowUs) batch.push(list[i++]!);
      batches++;
      durations.push((Math.max(...batch.map((write) => write.doneUs)) - first.receivedUs) / 1000);
      const endpoints = batch.filter((write) => write.kind === "Endpoints");
      const slices = batch.filter((write) => write.kind === "EndpointSlice");
      if (endpoints.length === 0 || slices.length === 0) continue;
      const slicesDone = Math.max(...slices.map((write) => write.doneUs));
      const endpointsDone = Math.max(...endpoints.map((write) => write.doneUs));
      if (endpointsDone > slicesDone) endpointsLast++;
      waited.push(Math.max(0, endpointsDone - slicesDone) / 1000);
    }
  }
  return { batches, both: waited.length, endpointsLast, slicesWaited: summarise(waited), batchMs: summarise(durations) };
}

/** The aggregator's Endpoints and slice writes in an audit line, if it is one. */
export function auditWrite(text: string): AuditWrite | undefined {
  const line = finishedRequest(text);
  if (line?.verb !== "patch" || !line.userAgent?.startsWith("netservice-aggregator/")) return undefined;
  const ref = line.objectRef;
  if (!ref?.name || !ref.namespace || ref.subresource) return undefined;
  const kind = ref.resource === "endpoints" ? "Endpoints" : ref.resource === "endpointslices" ? "EndpointSlice" : undefined;
  if (!kind || !line.requestReceivedTimestamp || !line.stageTimestamp) return undefined;
  // A slice is named <netservice>-<family>-<index> (common/desired-slices.ts).
  const netService = kind === "Endpoints" ? ref.name : ref.name.split("-").slice(0, -2).join("-");
  return { key: `${ref.namespace}/${netService}`, kind, receivedUs: microseconds(line.requestReceivedTimestamp), doneUs: microseconds(line.stageTimestamp) };
}

/** An RFC 3339 time with up to microseconds, as microseconds since the epoch. */
export function microseconds(time: string): number {
  const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(time);
  if (!match) return Number.NaN;
  const fraction = (match[2] ?? "").padEnd(6, "0").slice(0, 6);
  return Date.parse(`${match[1]}${match[3]}`) * 1000 + Number(fraction);
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({ allowPositionals: true, options: { from: { type: "string" }, to: { type: "string" } } });
  const [file] = positionals;
  if (!file) throw new Error("usage: node hack/bench/lanes.ts AUDIT_LOG [--from ISO --to ISO]");
  const from = values.from ? Date.parse(values.from) * 1000 : -Infinity;
  const to = values.to ? Date.parse(values.to) * 1000 : Infinity;
  const writes: AuditWrite[] = [];
  for await (const text of createInterface({ input: createReadStream(file, "utf8"), crlfDelay: Infinity })) {
    const write = auditWrite(text);
    if (write && write.receivedUs >= from && write.receivedUs <= to) writes.push(write);
  }
  console.log(JSON.stringify(laneBound(writes), null, 2));
}

if (import.meta.main) await main();
