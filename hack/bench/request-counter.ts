// Client-side request counts, by verb and resource: a RequestObserver for
// makeClients, and snapshots so that a phase's requests are a difference.
//
//   const counter = new RequestCounter();
//   makeClients(kubeConfig, { userAgent, observer: counter.observer });
//   const before = counter.snapshot(); ... const requests = counter.since(before);   // {"apply netservicenodereports": 12, ...}
import type { RequestObserver } from "../../common/kube/http.ts";

export type RequestCounts = Record<string, number>;

const writeVerbs = new Set(["create", "update", "patch", "apply", "delete", "deletecollection"]);

export class RequestCounter {
  readonly #counts = new Map<string, number>();

  /** Counts every request that got an answer (any status code); connection failures (code 0) are not requests the server saw. */
  readonly observer: RequestObserver = (event) => {
    if (event.code === 0) return;
    const key = `${event.verb} ${event.resource}`;
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
  };

  snapshot(): RequestCounts {
    return Object.fromEntries(this.#counts);
  }

  since(before: RequestCounts): RequestCounts {
    const out: RequestCounts = {};
    for (const [key, count] of this.#counts) {
      const delta = count - (before[key] ?? 0);
      if (delta > 0) out[key] = delta;
    }
    return out;
  }
}

/** "verb resource" counts -> counts by verb. */
export function byVerb(counts: RequestCounts): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, count] of Object.entries(counts)) {
    const verb = key.split(" ")[0] ?? "";
    out[verb] = (out[verb] ?? 0) + count;
  }
  return out;
}

/** Write requests among the counts; with resource, only those of that resource (its plural, e.g. "leases"). */
export function writesOf(counts: RequestCounts, resource?: string): number {
  return Object.entries(counts).reduce((sum, [key, count]) => {
    const [verb = "", counted = ""] = key.split(" ");
    return sum + (writeVerbs.has(verb) && (resource === undefined || counted === resource) ? count : 0);
  }, 0);
}
