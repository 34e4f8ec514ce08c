// Steady churn on the simulated nodes while a fault happens: pod creations,
// deletions (graceful), readiness flips and secondary-address changes at a
// fixed rate, bounded in count and in time, from a seeded random source so a
// failing run can be replayed.
//
//   const churn = new Churn({ http, sim, namespace: "churn", nodes: () => ["sim-node-0", "sim-node-1"] });
//   await churn.populate(24);          // pods to churn, spread over the nodes, running
//   await churn.start();                // takes over the churned pods there; 3 operations a second by default
//   ... the fault ...
//   const stats = await churn.stop();   // waits for operations in flight
//   churn.describe()                    // "3 ops/s for 40 s: 30 created, ..."
import { setTimeout as delay } from "node:timers/promises";
import type { KubeHttp } from "../../../common/kube/http.ts";
import type { SimulatedCluster } from "../../../hack/sim/cluster.ts";
import { seededRandom } from "../../../hack/sim/random.ts";

export type ChurnOptions = {
  http: KubeHttp;
  sim: SimulatedCluster;
  namespace: string;
  /** Nodes whose pods are created, deleted, flipped and re-addressed; read before every operation. */
  nodes: () => readonly string[];
  opsPerSecond?: number;
  /** Stop after this many operations... */
  maxOps?: number;
  /** ...or this long after start(), whichever comes first. */
  maxDurationMs?: number;
  /** Creations win below minPods, deletions above maxPods. */
  minPods?: number;
  maxPods?: number;
  /** Operations in flight at once; a tick finding this many skips. Default 4. */
  maxInFlight?: number;
  seed?: number;
};

export type ChurnStats = {
  operations: number;
  created: number;
  deleted: number;
  readinessFlips: number;
  addressChanges: number;
  /** Operations the API server or the simulation refused (during a fault, many). */
  failed: number;
  skippedBusy: number;
  seconds: number;
};

type ListedPod = {
  metadata: { name: string; deletionTimestamp?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: { nodeName?: string };
  status?: { conditions?: { type: string; status: string }[] };
};

/** `kind` is the tier and the networks asked for: what decides which NetServices publish the pod. */
type ChurnPod = { name: string; node: string; ready: boolean; createdAt: number; kind: string };

/** What the churned pods ask Multus for: two networks, one, the same one twice, the other one. */
const networkRequests = [
  JSON.stringify([
    { name: "core", namespace: "networks", interface: "core" },
    { name: "access", namespace: "networks", interface: "access" },
  ]),
  "networks/core@core",
  JSON.stringify([
    { name: "core", namespace: "networks", interface: "core1" },
    { name: "core", namespace: "networks", interface: "core2" },
  ]),
  "networks/access@access",
];

export const churnLabel = { app: "churn" };

/**
 * Hostname and subdomain by creation number, so that the checker compares
 * hostnames (published only where the subdomain names the NetService, as
 * upstream): a hostname under each churned NetService's name, a subdomain
 * without a hostname, a hostname under a name no NetService has, and none.
 */
const namings: ((name: string, tier: string) => { hostname?: string; subdomain?: string })[] = [
  () => ({}),
  (name) => ({ hostname: `h-${name}`, subdomain: "core-all" }),
  (name, tier) => ({ hostname: `h-${name}`, subdomain: tier === "web" ? "web-access" : "db-core-v6" }),
  () => ({ subdomain: "core-all" }),
  (name) => ({ hostname: `h-${name}`, subdomain: "elsewhere" }),
];

export class Churn {
  readonly #options: Required<Omit<ChurnOptions, "http" | "sim" | "nodes" | "namespace">> & Pick<ChurnOptions, "http" | "sim" | "nodes" | "namespace">;
  readonly #random: () => number;
  readonly #pods = new Map<string, ChurnPod>();
  readonly #inFlight = new Set<Promise<void>>();
  #stats: ChurnStats = { operations: 0, created: 0, deleted: 0, readinessFlips: 0, addressChanges: 0, failed: 0, skippedBusy: 0, seconds: 0 };
  #timer: NodeJS.Timeout | undefined;
  #startedAt = 0;
  #stoppedAt = 0;
  #sequence = 0;
  #lastErrors: string[] = [];

  constructor(options: ChurnOptions) {
    this.#options = {
      opsPerSecond: 3,
      maxOps: 2000,
      maxDurationMs: 10 * 60_000,
      minPods: 12,
      maxPods: 36,
      maxInFlight: 4,
      seed: 1,
      ...options,
    };
    this.#random = seededRandom(this.#options.seed);
  }

  get stats(): ChurnStats {
    const end = this.#timer ? Date.now() : this.#stoppedAt;
    return { ...this.#stats, seconds: this.#startedAt ? Math.round((end - this.#startedAt) / 100) / 10 : 0 };
  }

  /** The last few failures, for a test's diagnostics. */
  get lastErrors(): readonly string[] {
    return this.#lastErrors;
  }

  /** Creates `count` pods over the nodes and waits until the simulated kubelet runs them all. */
  async populate(count: number): Promise<void> {
    const names: string[] = [];
    for (let i = 0; i < count; i++) {
      const node = this.#options.nodes()[i % this.#options.nodes().length];
      if (node) names.push(await this.#create(node));
    }
    const deadline = Date.now() + 120_000;
    for (;;) {
      const list = await this.#options.http.request<{ items: { metadata: { name: string }; status?: { phase?: string } }[] }>({
        method: "GET",
        path: `/api/v1/namespaces/${this.#options.namespace}/pods`,
        query: { labelSelector: "app=churn" },
      });
      const running = new Set(list.items.filter((p) => p.status?.phase === "Running").map((p) => p.metadata.name));
      if (names.every((name) => running.has(name))) return;
      if (Date.now() > deadline) throw new Error(`churn pods not running after 120 s: ${names.filter((n) => !running.has(n)).join(", ")}`);
      await delay(250);
    }
  }

  /** Takes over the churned pods already there (from populate or an earlier churn), then operates at the set rate. */
  async start(): Promise<void> {
    if (this.#timer) return;
    const list = await this.#options.http.request<{ items: ListedPod[] }>({
      method: "GET",
      path: `/api/v1/namespaces/${this.#options.namespace}/pods`,
      query: { labelSelector: "app=churn" },
    });
    for (const pod of list.items) {
      if (pod.metadata.deletionTimestamp || this.#pods.has(pod.metadata.name) || !pod.spec?.nodeName) continue;
      const ready = pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
      const kind = `${pod.metadata.labels?.tier}/${pod.metadata.annotations?.["k8s.v1.cni.cncf.io/networks"]}`;
      this.#pods.set(pod.metadata.name, { name: pod.metadata.name, node: pod.spec.nodeName, ready, createdAt: 0, kind });
    }
    this.#startedAt = Date.now();
    this.#timer = setInterval(() => this.#tick(), 1000 / this.#options.opsPerSecond);
  }

  /** Stops issuing operations and waits for those in flight. */
  async stop(): Promise<ChurnStats> {
    if (this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      this.#stoppedAt = Date.now();
    }
    await Promise.allSettled([...this.#inFlight]);
    return this.stats;
  }

  /** One line for the results table. */
  describe(): string {
    const s = this.stats;
    return (
      `churn ${this.#options.opsPerSecond}/s for ${s.seconds} s on ${this.#options.nodes().length} nodes: ` +
      `${s.created} pods created, ${s.deleted} deleted, ${s.readinessFlips} readiness flips, ${s.addressChanges} address changes` +
      (s.failed > 0 ? ` (${s.failed} operations refused during the fault)` : "")
    );
  }

  #tick(): void {
    const elapsed = Date.now() - this.#startedAt;
    if (this.#stats.operations >= this.#options.maxOps || elapsed >= this.#options.maxDurationMs) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      this.#stoppedAt = Date.now();
      return;
    }
    if (this.#inFlight.size >= this.#options.maxInFlight) {
      this.#stats.skippedBusy++;
      return;
    }
    this.#stats.operations++;
    const operation = this.#operate().catch((err: unknown) => {
      this.#stats.failed++;
      this.#lastErrors = [...this.#lastErrors.slice(-4), (err as Error).message?.slice(0, 300) ?? String(err)];
    });
    const tracked = operation.finally(() => this.#inFlight.delete(tracked));
    this.#inFlight.add(tracked);
  }

  async #operate(): Promise<void> {
    const nodes = new Set(this.#options.nodes());
    const candidates = [...this.#pods.values()].filter((pod) => nodes.has(pod.node));
    const settled = candidates.filter((pod) => Date.now() - pod.createdAt > 3000);
    const roll = this.#random();
    if (candidates.length < this.#options.minPods || (roll < 0.25 && candidates.length < this.#options.maxPods) || settled.length === 0) {
      const node = this.#pick([...nodes]);
      if (!node) return;
      await this.#create(node);
      this.#stats.created++;
      return;
    }
    const pod = this.#pick(settled);
    if (!pod) return;
    // The last pod of its kind is kept (flipped instead), so that every NetService keeps endpoints to compare.
    const lastOfItsKind = candidates.every((other) => other === pod || other.kind !== pod.kind);
    if ((candidates.length > this.#options.maxPods || roll < 0.45) && !lastOfItsKind) {
      this.#pods.delete(pod.name);
      await this.#options.http.request({
        method: "DELETE",
        path: `/api/v1/namespaces/${this.#options.namespace}/pods/${pod.name}`,
        body: { gracePeriodSeconds: Math.floor(this.#random() * 3) },
      });
      this.#stats.deleted++;
    } else if (roll < 0.75) {
      await this.#options.sim.setReady(this.#options.namespace, pod.name, !pod.ready);
      pod.ready = !pod.ready;
      this.#stats.readinessFlips++;
    } else {
      await this.#options.sim.multus.changeAddress(this.#options.namespace, pod.name);
      this.#stats.addressChanges++;
    }
  }

  async #create(node: string): Promise<string> {
    const variant = Math.floor(this.#random() * networkRequests.length);
    const name = `churn-${this.#options.seed}-${++this.#sequence}`;
    const tier = this.#random() < 0.5 ? "web" : "db";
    const naming = namings[this.#sequence % namings.length]?.(name, tier) ?? {};
    await this.#options.http.request({
      method: "POST",
      path: `/api/v1/namespaces/${this.#options.namespace}/pods`,
      body: {
        apiVersion: "v1",
        kind: "Pod",
        metadata: {
          name,
          labels: { ...churnLabel, tier },
          annotations: { "k8s.v1.cni.cncf.io/networks": networkRequests[variant] },
        },
        spec: {
          ...naming,
          nodeName: node,
          terminationGracePeriodSeconds: 2,
          containers: [{ name: "app", image: "registry.k8s.io/pause:3.10" }],
        },
      },
    });
    this.#pods.set(name, { name, node, ready: true, createdAt: Date.now(), kind: `${tier}/${networkRequests[variant]}` });
    return name;
  }

  #pick<T>(items: readonly T[]): T | undefined {
    return items[Math.floor(this.#random() * items.length)];
  }
}
