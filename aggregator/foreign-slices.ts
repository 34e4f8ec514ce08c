// Kubernetes' own EndpointSlices left behind under a NetService's name.
//
// Someone adds a selector to the NetService's selectorless Service `<name>`.
// Until the aggregator takes it out again, kube-controller-manager's
// EndpointSlice controller publishes the selected pods' primary addresses in
// slices labelled kubernetes.io/service-name=<name> and controlled by that
// Service. Once the selector is gone that controller never looks at them
// again (a Service without a selector is left to whoever writes its slices),
// so they would stay as long as the Service does, mixing primary addresses
// into the NetService's name for every DNS server and proxy. The Service is
// the NetService's, so the slices it controls are too: the aggregator deletes
// them. The controller may still be writing one it started while the
// selector existed, so the sweep is repeated a few times after the repair.

/** kube-controller-manager's values of endpointslice.kubernetes.io/managed-by. */
export const kubeSliceManagers = ["endpointslice-controller.k8s.io", "endpointslicemirroring-controller.k8s.io"] as const;

/** Label selector for the slices of Service `serviceName` that Kubernetes' controllers wrote. */
export function kubeSlicesSelector(serviceName: string): string {
  return `kubernetes.io/service-name=${serviceName},endpointslice.kubernetes.io/managed-by in (${kubeSliceManagers.join(",")})`;
}

/** When to sweep after a repair, in ms after it: at once, then while a late write may still land. */
export const defaultSweepOffsetsMs: readonly number[] = [0, 2_000, 10_000, 30_000];

/**
 * Which NetServices have sweeps due. Keyed by NetService key; a new repair
 * starts the schedule again.
 */
export class SweepSchedule {
  private readonly pending = new Map<string, { repairedAt: number; next: number }>();
  private readonly offsetsMs: readonly number[];

  constructor(offsetsMs: readonly number[] = defaultSweepOffsetsMs) {
    if (offsetsMs.length === 0) throw new Error("a sweep schedule needs at least one offset");
    this.offsetsMs = offsetsMs;
  }

  /** The Service's selector was just taken out. */
  repaired(key: string, now: number): void {
    this.pending.set(key, { repairedAt: now, next: 0 });
  }

  /** Whether a sweep is due now. */
  due(key: string, now: number): boolean {
    const entry = this.pending.get(key);
    const offset = entry ? this.offsetsMs[entry.next] : undefined;
    return entry !== undefined && offset !== undefined && now >= entry.repairedAt + offset;
  }

  /** A sweep ran at `now`; returns the delay until the next one, or undefined when the schedule is done. */
  swept(key: string, now: number): number | undefined {
    const entry = this.pending.get(key);
    if (!entry) return undefined;
    const elapsed = now - entry.repairedAt;
    let next = entry.next;
    while (next < this.offsetsMs.length && (this.offsetsMs[next] ?? 0) <= elapsed) next++;
    const offset = this.offsetsMs[next];
    if (offset === undefined) {
      this.pending.delete(key);
      return undefined;
    }
    entry.next = next;
    return entry.repairedAt + offset - now;
  }

  /** The delay until the next sweep after the last one ran, or undefined when none is scheduled (or one is due now). */
  untilNext(key: string, now: number): number | undefined {
    const entry = this.pending.get(key);
    const offset = entry ? this.offsetsMs[entry.next] : undefined;
    if (entry === undefined || offset === undefined) return undefined;
    const delay = entry.repairedAt + offset - now;
    return delay > 0 ? delay : undefined;
  }

  forget(key: string): void {
    this.pending.delete(key);
  }
}
