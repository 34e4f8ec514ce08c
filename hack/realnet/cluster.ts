// The simulated cluster with real networking: the same simulated nodes and
// fake kubelet as hack/sim/cluster.ts, but every pod bound to a simulated
// node gets a real sandbox (network namespace, real Multus, real CNI
// plugins; see sandboxes.ts) instead of the fake Multus. Multus writes
// network-status; the kubelet reports the default network's real addresses
// as podIP/podIPs; deleting a pod runs CNI DEL.
//
//   const cluster = new RealNetworkCluster({ kubeConfig, kubeconfig: plane.kubeconfig });
//   await cluster.start();           // checks the machine, builds/caches binaries, fabric, watches
//   await cluster.addNodes(3);       // sim-node-0..2, each a network namespace on the fabric
//   ... create NADs and pods ...
//   await cluster.exec("default", "utils-x", [netprobe, "ping", "10.10.0.11"]);
//   await cluster.stop();            // CNI DEL for every pod, then every namespace and file of the run
//
// Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN), iproute2, nsenter/unshare
// (util-linux) and a kernel with netns, veth, bridge, macvlan and vxlan;
// preflight.ts says which is missing.
import path from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import { startProcess, type ManagedProcess } from "../cluster/process.ts";
import { IpamAllocator } from "../sim/ipam.ts";
import { FakeKubelet, type PodRemoved, type StatusWritten } from "../sim/kubelet.ts";
import { Informer, makeClients, realClock, type Clock, type KubeClients, type Logger, type PodJson } from "../sim/kube.ts";
import { ensureNadCrd } from "../sim/nad-crd.ts";
import { defaultLayout, NodeRegistry, registerNode, simNode, type NodeLayout, type SimNode } from "../sim/nodes.ts";
import { ensureRealnetBinaries, type RealnetBinaries } from "./binaries.ts";
import type { CommandOptions, CommandResult } from "./command.ts";
import { Fabric } from "./fabric.ts";
import { checkRealNetworking } from "./preflight.ts";
import { RunScope } from "./run-scope.ts";
import { PodSandboxes, type Sandbox } from "./sandboxes.ts";

export type RealNetworkClusterOptions = {
  kubeConfig: KubeConfig;
  /** The same configuration as a file: Multus reads it (the control plane's admin kubeconfig). */
  kubeconfig: string;
  /** Clients to share (and close yourself); by default the cluster makes and closes its own. */
  clients?: KubeClients;
  layout?: Partial<NodeLayout>;
  /** Name of the default network in network-status. Default "podnet". */
  defaultNetworkName?: string;
  initialReady?: (pod: PodJson) => boolean;
  maxGracePeriodMs?: number;
  /** Install the NAD CRD from hack/crds/ if missing. Default true. */
  installNadCrd?: boolean;
  clock?: Clock;
  logger?: Logger;
  /** Build progress and clean-up notes. */
  report?: (line: string) => void;
  onStatusWritten?: (event: StatusWritten) => void;
  onPodRemoved?: (event: PodRemoved) => void;
  /** Called after a pod's sandbox was torn down (CNI DEL done, namespace deleted), or failed to. */
  onSandboxRemoved?: (event: { sandbox: Sandbox; error?: unknown }) => void;
};

export class RealNetworkCluster {
  readonly clients: KubeClients;
  readonly layout: NodeLayout;
  readonly nodes = new NodeRegistry();
  /** The fake kubelet's pool; its node-CIDR picks are replaced by the real ones (see #setUpSandbox). */
  readonly allocator = new IpamAllocator();
  readonly kubelet: FakeKubelet;
  readonly #options: RealNetworkClusterOptions;
  readonly #clock: Clock;
  readonly #pods: Informer<PodJson>;
  readonly #ownsClients: boolean;
  /** Long-running processes started in pods' namespaces, by pod uid: stopped before the sandbox goes. */
  readonly #podProcesses = new Map<string, ManagedProcess[]>();
  #scope: RunScope | undefined;
  #fabric: Fabric | undefined;
  #sandboxes: PodSandboxes | undefined;
  #binaries: RealnetBinaries | undefined;
  #started = false;
  #stopped = false;

  constructor(options: RealNetworkClusterOptions) {
    this.#options = options;
    this.#clock = options.clock ?? realClock;
    this.#ownsClients = options.clients === undefined;
    this.clients = options.clients ?? makeClients(options.kubeConfig, { userAgent: "netservice-realnet/0.1.0", maxConnections: 16 });
    this.layout = { ...defaultLayout, ...options.layout };
    const logger = options.logger?.child({ component: "real-network-cluster" });
    const common = { clock: this.#clock, ...(logger ? { logger } : {}) };
    this.#pods = new Informer<PodJson>({ http: this.clients.http, path: "/api/v1/pods", ...common });
    this.kubelet = new FakeKubelet({
      clients: this.clients,
      pods: this.#pods,
      nodes: this.nodes,
      allocator: this.allocator,
      setUpSandbox: (pod, podIPs) => this.#setUpSandbox(pod, podIPs),
      ...common,
      ...(options.initialReady ? { initialReady: options.initialReady } : {}),
      ...(options.maxGracePeriodMs === undefined ? {} : { maxGracePeriodMs: options.maxGracePeriodMs }),
      ...(options.onStatusWritten ? { onStatusWritten: options.onStatusWritten } : {}),
      ...(options.onPodRemoved ? { onPodRemoved: options.onPodRemoved } : {}),
    });
    // The kubelet's own watch has no hook for a pod that is gone: a real
    // kubelet stops the sandbox (CNI DEL) when the pod's containers stop, so
    // this runs CNI DEL as soon as the pod leaves the API server.
    this.#pods.onChange((event) => {
      const uid = event.object.metadata?.uid;
      if (event.type === "delete" && uid) void this.#tearDown(uid);
    });
  }

  get binaries(): RealnetBinaries {
    if (!this.#binaries) throw new Error("RealNetworkCluster.start() first");
    return this.#binaries;
  }

  /** The run's namespaces and working directory (names, for diagnostics). */
  get scope(): RunScope {
    if (!this.#scope) throw new Error("RealNetworkCluster.start() first");
    return this.#scope;
  }

  get fabric(): Fabric {
    if (!this.#fabric) throw new Error("RealNetworkCluster.start() first");
    return this.#fabric;
  }

  get sandboxes(): PodSandboxes {
    if (!this.#sandboxes) throw new Error("RealNetworkCluster.start() first");
    return this.#sandboxes;
  }

  /** Checks the machine (throws with every missing privilege or kernel feature), builds or finds the binaries, then starts like SimulatedCluster. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const problems = await checkRealNetworking();
    if (problems.length > 0) throw new Error(`real networking is not possible on this machine:\n- ${problems.join("\n- ")}`);
    const report = this.#options.report ?? (() => undefined);
    this.#binaries = await ensureRealnetBinaries(report);
    this.#scope = await RunScope.create(report);
    this.#fabric = new Fabric(this.#scope);
    await this.#fabric.start();
    this.#sandboxes = new PodSandboxes({
      scope: this.#scope,
      fabric: this.#fabric,
      binaries: this.#binaries,
      kubeconfig: this.#options.kubeconfig,
      defaultNetworkName: this.#options.defaultNetworkName ?? "podnet",
    });
    if (this.#options.installNadCrd ?? true) await ensureNadCrd(this.clients, this.#clock);
    this.kubelet.start();
    this.#pods.start();
    await this.#pods.synced;
  }

  /** Registers `count` more nodes, each with its network namespace on the fabric; resolves once all are Ready. */
  async addNodes(count: number): Promise<SimNode[]> {
    const first = this.nodes.size;
    const added = Array.from({ length: count }, (_, i) => simNode(first + i, this.layout));
    for (const node of added) await this.fabric.addNode(node);
    await Promise.all(added.map((node) => registerNode(this.clients, node, this.layout, this.#clock.now())));
    for (const node of added) this.nodes.add(node);
    this.kubelet.resync();
    return added;
  }

  setReady(namespace: string, name: string, ready: boolean): Promise<void> {
    return this.kubelet.setReady(namespace, name, ready);
  }

  /** The pod's sandbox: namespace, container id, pod IPs. */
  sandbox(namespace: string, name: string): Sandbox | undefined {
    return this.#sandboxes?.get(namespace, name);
  }

  /** Runs a command in the pod's network namespace. */
  exec(namespace: string, name: string, argv: string[], options?: CommandOptions): Promise<CommandResult> {
    return this.sandboxes.exec(namespace, name, argv, options);
  }

  /**
   * Starts a long-running command in the pod's network namespace (a server
   * for a reachability test); it is stopped, by its pid, when the pod's
   * sandbox is torn down or the cluster stops. Output goes to a log file in
   * the run's directory.
   */
  startInPod(namespace: string, name: string, label: string, argv: string[]): ManagedProcess {
    const sandbox = this.sandbox(namespace, name);
    if (!sandbox) throw new Error(`pod ${namespace}/${name} has no sandbox`);
    const logFile = path.join(this.scope.dir, `${sandbox.netns}-${label}.log`);
    const started = startProcess(`${label} in ${namespace}/${name}`, "nsenter", [`--net=${sandbox.netnsPath}`, "--", ...argv], logFile);
    this.#podProcesses.set(sandbox.uid, [...(this.#podProcesses.get(sandbox.uid) ?? []), started]);
    return started;
  }

  /** Stops the kubelet and the watch, tears every sandbox down with CNI DEL, and removes everything the run created. Pods and nodes stay in the API. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.kubelet.stop();
    await this.#pods.stop();
    await Promise.all([...this.#podProcesses.keys()].map((uid) => this.#stopPodProcesses(uid)));
    const errors: unknown[] = [];
    await this.#sandboxes?.tearDownAll().catch((error: unknown) => errors.push(error));
    await this.#scope?.release().catch((error: unknown) => errors.push(error));
    if (this.#ownsClients) await this.clients.close();
    if (errors.length > 0) throw new AggregateError(errors, `real-network clean-up failed: ${errors.map(String).join("; ")}`);
  }

  // The kubelet picked podIPs from its own pool of the node's CIDR before
  // this call; the pod's real addresses come from the default network's
  // host-local, so they replace them in place (the kubelet reports the array
  // it passed here).
  async #setUpSandbox(pod: PodJson, podIPs: string[]): Promise<void> {
    if (pod.spec?.hostNetwork || this.#stopped) return;
    const real = await this.sandboxes.setUp(pod);
    podIPs.splice(0, podIPs.length, ...real);
    // Deleted while its sandbox was being made: the delete event has come and gone.
    const uid = pod.metadata?.uid ?? "";
    if (this.#pods.get(`${pod.metadata?.namespace}/${pod.metadata?.name}`)?.metadata?.uid !== uid) await this.#tearDown(uid);
  }

  async #stopPodProcesses(uid: string) {
    const processes = this.#podProcesses.get(uid) ?? [];
    this.#podProcesses.delete(uid);
    await Promise.all(processes.map((proc) => proc.stop(2000)));
  }

  async #tearDown(uid: string) {
    const sandbox = this.#sandboxes?.byUid(uid);
    if (!sandbox || this.#stopped) return;
    try {
      await this.#stopPodProcesses(uid);
      await this.sandboxes.tearDown(uid);
      this.#options.onSandboxRemoved?.({ sandbox });
    } catch (error) {
      this.#options.logger?.error({ pod: `${sandbox.namespace}/${sandbox.name}`, err: error }, "sandbox tear-down failed");
      this.#options.onSandboxRemoved?.({ sandbox, error });
    }
  }
}
