// Simulated nodes, a fake kubelet and a fake Multus on top of a real API
// server, in one process: what the demo, the integration tests and the
// benchmarks run pods on. The pods' networks come from a pluggable sandbox
// runtime (sandbox.ts): the fake Multus unless `sandbox` says otherwise, e.g.
// real Multus in network namespaces (hack/realnet/network.ts).
//
//   const sim = new SimulatedCluster({ kubeConfig });
//   await sim.start();                  // NAD CRD, pod and NAD watches, kubelet, Multus
//   await sim.addNodes(3);              // sim-node-0..2, Ready, with pod CIDRs
//   ... create NADs and pods; they run on the simulated nodes ...
//   await sim.setReady("default", "utils-0", false);
//   await sim.multus.changeAddress("default", "utils-0", "networks/core");
//   await sim.stop();                   // every watch, worker and timer; the process can exit
import type { KubeConfig } from "@kubernetes/client-node";
import { IpamAllocator } from "./ipam.ts";
import { FakeKubelet, type PodRemoved, type StatusWritten } from "./kubelet.ts";
import { Informer, makeSimClients, nadPath, realClock, withCoreApi, type Clock, type KubeClients, type Logger, type NadJson, type PodJson, type SimClients } from "./kube.ts";
import { FakeMultus, defaultNetworkName, type AnnotationWritten, type AttachmentError } from "./multus.ts";
import { ensureNadCrd } from "./nad-crd.ts";
import { defaultLayout, NodeRegistry, registerNode, simNode, type NodeLayout, type SimNode } from "./nodes.ts";
import { FakeMultusSandboxes, type SandboxRuntime } from "./sandbox.ts";
import { runTeardown, type TeardownStep } from "../teardown.ts";

export type SimulatedClusterOptions = {
  kubeConfig: KubeConfig;
  /** Clients to share (and close yourself); by default the cluster makes and closes its own. */
  clients?: KubeClients;
  layout?: Partial<NodeLayout>;
  /**
   * The pods' networks. Default: the fake Multus (FakeMultusSandboxes), which
   * the options legacyMultus, defaultNetworkName, multusWorkers,
   * onAnnotationWritten and onAttachmentError configure.
   */
  sandbox?: SandboxRuntime;
  /** Multus before v3.6: `networks-status` with bare names. */
  legacyMultus?: boolean;
  /** Name of the cluster network in network-status. Default "kindnet". */
  defaultNetworkName?: string;
  /** Readiness of a pod when it starts. Default: ready. */
  initialReady?: (pod: PodJson) => boolean;
  /** Status writes in flight (kubelet) and annotation writes in flight (Multus). Default 16 and 8. */
  kubeletWorkers?: number;
  multusWorkers?: number;
  /** Cap on the grace period of deleted pods; default: the pod's own. */
  maxGracePeriodMs?: number;
  /** Node Ready heartbeats; 0 (default) sends none, see kubelet.ts. */
  heartbeatIntervalMs?: number;
  /** Install the NAD CRD from hack/crds/ if missing. Default true. */
  installNadCrd?: boolean;
  clock?: Clock;
  logger?: Logger;
  onStatusWritten?: (event: StatusWritten) => void;
  onPodRemoved?: (event: PodRemoved) => void;
  onAnnotationWritten?: (event: AnnotationWritten) => void;
  onAttachmentError?: (event: AttachmentError) => void;
};

export class SimulatedCluster {
  readonly clients: SimClients;
  readonly layout: NodeLayout;
  readonly nodes = new NodeRegistry();
  readonly allocator = new IpamAllocator();
  readonly kubelet: FakeKubelet;
  readonly sandbox: SandboxRuntime;
  readonly #options: SimulatedClusterOptions;
  readonly #clock: Clock;
  readonly #pods: Informer<PodJson>;
  readonly #ownsClients: boolean;
  #started = false;
  #stopped = false;

  constructor(options: SimulatedClusterOptions) {
    this.#options = options;
    this.#clock = options.clock ?? realClock;
    this.#ownsClients = options.clients === undefined;
    this.clients = options.clients ? withCoreApi(options.clients) : makeSimClients(options.kubeConfig, { userAgent: "netservice-sim/0.1.0", maxConnections: 16 });
    this.layout = { ...defaultLayout, ...options.layout };
    const logger = options.logger?.child({ component: "simulated-cluster" });
    const common = { clock: this.#clock, ...(logger ? { logger } : {}) };
    // One pod watch for the whole cluster, shared by kubelet and Multus: what 1,000 real kubelets would do with 1,000 watches.
    this.#pods = new Informer<PodJson>({ http: this.clients.http, path: "/api/v1/pods", ...common });
    this.sandbox = options.sandbox ?? this.#fakeMultus(common);
    this.kubelet = new FakeKubelet({
      clients: this.clients,
      pods: this.#pods,
      nodes: this.nodes,
      sandbox: this.sandbox,
      ...common,
      ...(options.initialReady ? { initialReady: options.initialReady } : {}),
      ...(options.kubeletWorkers === undefined ? {} : { workers: options.kubeletWorkers }),
      ...(options.heartbeatIntervalMs === undefined ? {} : { heartbeatIntervalMs: options.heartbeatIntervalMs }),
      ...(options.maxGracePeriodMs === undefined ? {} : { maxGracePeriodMs: options.maxGracePeriodMs }),
      ...(options.onStatusWritten ? { onStatusWritten: options.onStatusWritten } : {}),
      ...(options.onPodRemoved ? { onPodRemoved: options.onPodRemoved } : {}),
    });
  }

  /** The fake Multus, when the pods' networks are the default fake ones. */
  get multus(): FakeMultus {
    if (this.sandbox instanceof FakeMultusSandboxes) return this.sandbox.multus;
    throw new Error("this simulated cluster's pods get their networks from its own sandbox runtime, not from the fake Multus");
  }

  /** Installs the NAD CRD if needed, starts the sandbox runtime (the fake Multus and its NAD watch), the pod watch and the fake kubelet; resolves once the caches are filled. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    if (this.#options.installNadCrd ?? true) await ensureNadCrd(this.clients, this.#clock);
    // The runtime first: the fake Multus' NADs are known before pods attached by an earlier run are adopted.
    await this.sandbox.start?.();
    this.kubelet.start();
    this.#pods.start();
    await this.#pods.synced;
  }

  /** Registers `count` more nodes (sim-node-<n>, sim-node-<n+1>, ...), eight at a time; resolves once all are Ready. */
  async addNodes(count: number): Promise<SimNode[]> {
    const first = this.nodes.size;
    const added = Array.from({ length: count }, (_, i) => simNode(first + i, this.layout));
    for (let i = 0; i < added.length; i += 8) {
      await Promise.all(added.slice(i, i + 8).map((node) => registerNode(this.clients, node, this.layout, this.#clock.now())));
    }
    for (const node of added) this.nodes.add(node);
    await this.sandbox.addNodes?.(added);
    // Pods on these nodes that are already there: left by an earlier run, or created with spec.nodeName before the node.
    this.kubelet.resync();
    return added;
  }

  setReady(namespace: string, name: string, ready: boolean): Promise<void> {
    return this.kubelet.setReady(namespace, name, ready);
  }

  /**
   * Stops the kubelet, then the sandbox runtime (the fake Multus; a real
   * network tears its sandboxes down), the watches and every timer; closes
   * the clients it made. Pods and nodes stay. Every step is bounded and runs
   * even if one before it failed or hung; throws a TeardownError naming
   * those, once all have run.
   */
  async stop(report?: (line: string) => void): Promise<void> {
    await runTeardown(this.teardownSteps(), report ? { report } : {});
  }

  /** stop() as bounded steps, for a caller that stops more around it (LocalSystem). */
  teardownSteps(): TeardownStep[] {
    if (this.#stopped) return [];
    this.#stopped = true;
    const sandbox = this.sandbox;
    return [
      {
        name: "fake kubelet",
        // A sandbox set-up in flight (a CNI ADD is killed after 90 s) is waited for.
        timeoutMs: 100_000,
        run: () => this.kubelet.stop(),
        waitingFor: () => this.kubelet.inFlight(),
      },
      ...(sandbox.teardownSteps?.() ?? [{ name: "sandbox runtime", timeoutMs: 30_000, run: async () => await sandbox.stop?.() }]),
      { name: "pod watch", timeoutMs: 10_000, run: () => this.#pods.stop() },
      ...(this.#ownsClients ? [{ name: "simulation clients", timeoutMs: 10_000, run: () => this.clients.close() }] : []),
    ];
  }

  #fakeMultus(common: { clock: Clock; logger?: Logger }): FakeMultusSandboxes {
    const options = this.#options;
    const nads = new Informer<NadJson>({ http: this.clients.http, path: nadPath, ...common });
    const multus = new FakeMultus({
      clients: this.clients,
      pods: this.#pods,
      nads,
      isSimulatedNode: (name) => this.nodes.has(name),
      allocator: this.allocator,
      legacy: options.legacyMultus ?? false,
      defaultNetworkName: options.defaultNetworkName ?? defaultNetworkName,
      ...common,
      ...(options.multusWorkers === undefined ? {} : { workers: options.multusWorkers }),
      ...(options.onAnnotationWritten ? { onAnnotationWritten: options.onAnnotationWritten } : {}),
      ...(options.onAttachmentError ? { onAttachmentError: options.onAttachmentError } : {}),
    });
    return new FakeMultusSandboxes({
      multus,
      allocator: this.allocator,
      ...(common.logger ? { logger: common.logger } : {}),
      start: async () => {
        nads.start();
        await nads.synced;
      },
      stop: () => nads.stop(),
    });
  }
}
