// Real networking for the simulated cluster: the sandbox runtime
// (hack/sim/sandbox.ts) that gives every pod bound to a simulated node a
// network namespace and calls the real Multus thin plugin on it (CNI ADD,
// then CNI DEL when the pod goes; see sandboxes.ts). Multus writes
// network-status; the default network's real addresses become the pod's
// podIP/podIPs. Every simulated node is a network namespace on one fabric
// (fabric.ts); everything is created inside the run's scope (run-scope.ts).
//
//   const network = new RealNetwork({ kubeconfig: plane.kubeconfig });
//   const sim = new SimulatedCluster({ kubeConfig, sandbox: network });
//   await sim.start();                // checks the machine, builds/caches binaries, fabric, watches
//   await sim.addNodes(3);            // sim-node-0..2, each a network namespace on the fabric
//   ... create NADs and pods ...
//   await network.exec("default", "utils-x", [network.binaries.netprobe, "ping", "10.10.0.11"]);
//   await sim.stop();                 // CNI DEL for every pod, then every namespace and file of the run
//
// Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN + CAP_NET_RAW), iproute2,
// nsenter/unshare/mount (util-linux) and a kernel with netns, veth, bridge,
// macvlan and vxlan; preflight.ts says which is missing.
import path from "node:path";
import { startProcess, type ManagedProcess } from "../cluster/process.ts";
import { runTeardown, type TeardownStep } from "../teardown.ts";
import type { Logger, PodJson } from "../sim/kube.ts";
import type { SimNode } from "../sim/nodes.ts";
import type { SandboxRuntime } from "../sim/sandbox.ts";
import { ensureRealnetBinaries, type RealnetBinaries } from "./binaries.ts";
import type { CommandOptions, CommandResult } from "./command.ts";
import { Fabric, type NodeNetwork } from "./fabric.ts";
import { checkRealNetworking } from "./preflight.ts";
import { RunScope } from "./run-scope.ts";
import { PodSandboxes, type Sandbox } from "./sandboxes.ts";

export type RealNetworkOptions = {
  /** The kubeconfig file Multus reads pods and NADs with and writes network-status with (the control plane's admin kubeconfig). */
  kubeconfig: string;
  /** Name of the default network in network-status. Default "podnet". */
  defaultNetworkName?: string;
  logger?: Logger;
  /** Build progress and clean-up notes. */
  report?: (line: string) => void;
};

export class RealNetwork implements SandboxRuntime {
  readonly #options: RealNetworkOptions;
  readonly #log: Logger | undefined;
  readonly #report: (line: string) => void;
  /** Each node's namespace on the fabric, made once, whoever asks first (addNodes or a pod's set-up). */
  readonly #nodes = new Map<string, Promise<NodeNetwork>>();
  /** Long-running processes started in pods' namespaces, by pod uid: stopped before the sandbox goes. */
  readonly #podProcesses = new Map<string, ManagedProcess[]>();
  #scope: RunScope | undefined;
  #fabric: Fabric | undefined;
  #sandboxes: PodSandboxes | undefined;
  #binaries: RealnetBinaries | undefined;
  #started: Promise<void> | undefined;
  #stopped = false;

  constructor(options: RealNetworkOptions) {
    this.#options = options;
    this.#log = options.logger?.child({ component: "real-network" });
    this.#report = options.report ?? ((line) => process.stderr.write(`[netservice] ${line}\n`));
  }

  get binaries(): RealnetBinaries {
    return started(this.#binaries);
  }

  /** The run's namespaces and working directory. */
  get scope(): RunScope {
    return started(this.#scope);
  }

  get fabric(): Fabric {
    return started(this.#fabric);
  }

  get sandboxes(): PodSandboxes {
    return started(this.#sandboxes);
  }

  /** Checks the machine (throws naming everything missing), builds or finds the binaries, makes the fabric. */
  start(): Promise<void> {
    this.#started ??= this.#start();
    return this.#started;
  }

  async addNodes(nodes: SimNode[]): Promise<void> {
    for (const node of nodes) await this.#nodeNetwork(node);
  }

  /** CNI ADD through Multus in a new network namespace; resolves with the default network's addresses, IPv4 first. */
  async setUpSandbox(pod: PodJson, node: SimNode): Promise<string[]> {
    if (this.#stopped) throw new Error("the real network has stopped");
    await this.#nodeNetwork(node);
    return this.sandboxes.setUp(pod);
  }

  /** Stops the pod's test servers, runs CNI DEL through Multus and deletes the namespace (once: later calls find nothing). */
  async tearDownSandbox(pod: PodJson): Promise<void> {
    const uid = pod.metadata?.uid ?? "";
    await this.#stopPodProcesses(uid);
    await this.#sandboxes?.tearDown(uid);
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
   * sandbox is torn down or the network stops. Output goes to a log file in
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

  /**
   * Tears every sandbox down with CNI DEL (Multus still needs the API
   * server) and removes everything the run created: namespaces, links,
   * IPAM state, files. Throws, after trying all of it, if anything could not
   * be removed.
   */
  async stop(): Promise<void> {
    await runTeardown(this.teardownSteps(), { report: this.#report });
  }

  /**
   * stop() as bounded steps: the pods' test servers, CNI DEL of every
   * sandbox, then the run's namespaces and directory. A CNI DEL that hangs
   * is named with its pod; the namespaces are deleted after it regardless.
   */
  teardownSteps(): TeardownStep[] {
    if (this.#stopped) return [];
    this.#stopped = true;
    return [
      {
        name: "real network start-up",
        timeoutMs: 30_000,
        run: async () => void (await this.#started?.catch(() => undefined)),
        waitingFor: () => ["the binaries, the fabric or the preflight"],
      },
      {
        name: "pods' test servers",
        timeoutMs: 10_000,
        run: async () => void (await Promise.all([...this.#podProcesses.keys()].map((uid) => this.#stopPodProcesses(uid)))),
        waitingFor: () => [...this.#podProcesses.values()].flat().filter((proc) => proc.running()).map((proc) => `${proc.name} (pid ${proc.pid}) to exit`),
      },
      {
        name: "pod sandboxes (CNI DEL)",
        // Each CNI call is killed after 90 s; the sandboxes go in parallel.
        timeoutMs: 120_000,
        run: async () => await this.#sandboxes?.tearDownAll(),
        waitingFor: () => this.#sandboxes?.inFlight() ?? [],
      },
      {
        name: "network namespaces and run directory",
        timeoutMs: 60_000,
        run: async () => await this.#scope?.release(),
        waitingFor: () => this.#scope?.netnsList().map((name) => `ip netns delete ${name}`) ?? [],
      },
    ];
  }

  async #start(): Promise<void> {
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
    this.#log?.info({ run: this.#scope.id, dir: this.#scope.dir }, "real network started");
  }

  #nodeNetwork(node: SimNode): Promise<NodeNetwork> {
    let network = this.#nodes.get(node.name);
    if (!network) {
      network = this.fabric.addNode(node);
      this.#nodes.set(node.name, network);
    }
    return network;
  }

  async #stopPodProcesses(uid: string) {
    const processes = this.#podProcesses.get(uid) ?? [];
    this.#podProcesses.delete(uid);
    await Promise.all(processes.map((proc) => proc.stop(2000)));
  }
}

/** What start() sets up, or a clear error when it has not run. */
function started<T>(value: T | undefined): T {
  if (value === undefined) throw new Error("RealNetwork.start() first");
  return value;
}
