// Per pod event, the latency from the write that caused it to each side
// showing it. Observations (a pod's view on a side changed, with the time the
// harness saw it) and events (a write at t0 and the view each side should
// reach) may arrive in either order: the write's hook runs only after the API
// server answered, and the watch may have delivered the change before that.
// So each event is matched against the pod's recent observations as well as
// later ones: the first observation at or after t0 that reaches the target.
//
//   const matcher = new LatencyMatcher({ timeoutMs: 30_000, onSettled });
//   matcher.observe({ side: "kube", uid, view, at });
//   matcher.expect({ kind: "ready", uid, t0, targets: { slices: {kind: "ready"}, kube: {kind: "ready"} } });
//   matcher.expire(Date.now());       // sides still waiting after timeoutMs count as missed
//   matcher.samples("slices", "ready") // latencies in ms
//   matcher.samples("reports", "ready", "agent-process")   // of the events expected with that group
import type { PodView } from "./pod-views.ts";

/**
 * slices and endpoints: ours; reports: the agents' node reports, our first hop (so that
 * the latency splits into agent and aggregator); kube: kube-controller-manager's
 * EndpointSlice of the template Service.
 */
export const sides = ["slices", "endpoints", "reports", "kube"] as const;
export type Side = (typeof sides)[number];

export const eventKinds = ["create", "ready", "unready", "address", "delete", "remove"] as const;
export type EventKind = (typeof eventKinds)[number];

/** The view a side must reach for the event to count as shown there. */
export type Target =
  | { kind: "ready"; addresses?: string[] }
  | { kind: "unready" }
  /** Not ready, or gone: what a terminating pod looks like on every side. */
  | { kind: "notServing" }
  | { kind: "absent" }
  | { kind: "addresses"; addresses: string[] };

export type PodEvent = {
  kind: EventKind;
  uid: string;
  /** Milliseconds (wall clock) when the write that caused it was sent. */
  t0: number;
  targets: Partial<Record<Side, Target>>;
  /** A subset this event's figures are also kept under, e.g. the events of the agent that runs as a process of its own. */
  group?: string;
};

export type Observation = { side: Side; uid: string; view: PodView; at: number };

export type Settled = { event: PodEvent; latencies: Partial<Record<Side, number>>; missed: Side[] };

type Pending = { event: PodEvent; waiting: Set<Side>; latencies: Partial<Record<Side, number>>; missed: Side[] };

const historyLength = 16;

export class LatencyMatcher {
  readonly #timeoutMs: number;
  readonly #onSettled: ((settled: Settled) => void) | undefined;
  readonly #history = new Map<string, Observation[]>();
  readonly #pending = new Map<string, Pending[]>();
  readonly #samples = new Map<string, number[]>();
  readonly #missed = new Map<string, number>();
  readonly #events = new Map<EventKind, number>();

  constructor(options: { timeoutMs: number; onSettled?: (settled: Settled) => void }) {
    this.#timeoutMs = options.timeoutMs;
    this.#onSettled = options.onSettled;
  }

  observe(observation: Observation): void {
    const key = historyKey(observation.uid, observation.side);
    let history = this.#history.get(key);
    if (!history) this.#history.set(key, (history = []));
    history.push(observation);
    if (history.length > historyLength) history.shift();
    const pending = this.#pending.get(observation.uid);
    if (!pending) return;
    for (const entry of [...pending]) {
      if (!entry.waiting.has(observation.side)) continue;
      const target = entry.event.targets[observation.side];
      if (target && observation.at >= entry.event.t0 && reaches(observation.view, target)) {
        this.#record(entry, observation.side, observation.at - entry.event.t0);
      }
    }
  }

  expect(event: PodEvent): void {
    this.#events.set(event.kind, (this.#events.get(event.kind) ?? 0) + 1);
    const entry: Pending = { event, waiting: new Set(), latencies: {}, missed: [] };
    for (const side of sides) if (event.targets[side]) entry.waiting.add(side);
    let pending = this.#pending.get(event.uid);
    if (!pending) this.#pending.set(event.uid, (pending = []));
    pending.push(entry);
    for (const side of [...entry.waiting]) {
      const target = event.targets[side];
      const seen = this.#history.get(historyKey(event.uid, side))?.find((o) => o.at >= event.t0 && target && reaches(o.view, target));
      if (seen) this.#record(entry, side, seen.at - event.t0);
    }
    if (entry.waiting.size === 0) this.#settle(entry);
  }

  /** Sides that have not shown their event within the timeout count as missed. */
  expire(now: number): void {
    for (const pending of [...this.#pending.values()]) {
      for (const entry of [...pending]) {
        if (now - entry.event.t0 < this.#timeoutMs) continue;
        for (const side of entry.waiting) {
          entry.missed.push(side);
          for (const key of sampleKeys(side, entry.event)) this.#missed.set(key, (this.#missed.get(key) ?? 0) + 1);
        }
        entry.waiting.clear();
        this.#settle(entry);
      }
    }
  }

  /** Events still waiting for some side. */
  get pendingCount(): number {
    let count = 0;
    for (const pending of this.#pending.values()) count += pending.length;
    return count;
  }

  isPending(uid: string): boolean {
    return (this.#pending.get(uid)?.length ?? 0) > 0;
  }

  /** Latencies (ms) of one side, for one kind of event or all of them, of every event or of one group's. */
  samples(side: Side, kind?: EventKind, group?: string): number[] {
    if (kind) return [...(this.#samples.get(sampleKey(side, kind, group)) ?? [])];
    return eventKinds.flatMap((k) => this.#samples.get(sampleKey(side, k, group)) ?? []);
  }

  missed(side: Side, kind?: EventKind, group?: string): number {
    if (kind) return this.#missed.get(sampleKey(side, kind, group)) ?? 0;
    return eventKinds.reduce((sum, k) => sum + (this.#missed.get(sampleKey(side, k, group)) ?? 0), 0);
  }

  events(kind?: EventKind): number {
    if (kind) return this.#events.get(kind) ?? 0;
    return [...this.#events.values()].reduce((a, b) => a + b, 0);
  }

  /** Forgets a pod that is gone for good once nothing waits for it. */
  forget(uid: string): void {
    if (this.isPending(uid)) return;
    for (const side of sides) this.#history.delete(historyKey(uid, side));
  }

  #record(entry: Pending, side: Side, latencyMs: number) {
    entry.waiting.delete(side);
    entry.latencies[side] = latencyMs;
    for (const key of sampleKeys(side, entry.event)) {
      let samples = this.#samples.get(key);
      if (!samples) this.#samples.set(key, (samples = []));
      samples.push(latencyMs);
    }
    if (entry.waiting.size === 0) this.#settle(entry);
  }

  #settle(entry: Pending) {
    const pending = this.#pending.get(entry.event.uid);
    if (pending) {
      const index = pending.indexOf(entry);
      if (index < 0) return;
      pending.splice(index, 1);
      if (pending.length === 0) this.#pending.delete(entry.event.uid);
    }
    this.#onSettled?.({ event: entry.event, latencies: entry.latencies, missed: entry.missed });
  }
}

export function reaches(view: PodView, target: Target): boolean {
  switch (target.kind) {
    case "absent":
      return !view.present;
    case "notServing":
      return !view.present || !view.ready;
    case "unready":
      return view.present && !view.ready;
    case "ready":
      return view.present && view.ready && (target.addresses === undefined || sameSet(view.addresses, target.addresses));
    case "addresses":
      return view.present && sameSet(view.addresses, target.addresses);
  }
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((item) => set.has(item));
}

function historyKey(uid: string, side: Side) {
  return `${side} ${uid}`;
}

function sampleKey(side: Side, kind: EventKind, group?: string) {
  return group === undefined ? `${side} ${kind}` : `${side} ${kind} ${group}`;
}

/** Every event counts in its side and kind, and in its group's too. */
function sampleKeys(side: Side, event: PodEvent): string[] {
  const all = sampleKey(side, event.kind);
  return event.group === undefined ? [all] : [all, sampleKey(side, event.kind, event.group)];
}

export type Summary = { count: number; p50Ms: number; p90Ms: number; p99Ms: number; maxMs: number; meanMs: number };

/** Nearest-rank percentiles; all zero for no samples (count says so). */
export function summarise(samples: readonly number[]): Summary {
  if (samples.length === 0) return { count: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, maxMs: 0, meanMs: 0 };
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    count: sorted.length,
    p50Ms: rank(50),
    p90Ms: rank(90),
    p99Ms: rank(99),
    maxMs: sorted[sorted.length - 1] ?? 0,
    meanMs: Math.round((sum / sorted.length) * 10) / 10,
  };
}
