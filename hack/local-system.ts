// The whole system on this machine: a local control plane, simulated nodes
// with the fake Multus, one NodeAgent per node and the aggregator, all in one
// process. The run command, the end-to-end tests and the benchmarks start it.
//
// With `network: "real"` the simulated nodes' pods get real sandboxes instead
// (network namespaces, the real Multus and CNI plugins; hack/realnet/), and
// CoreDNS answers for cluster.local from the control plane, as in a cluster:
//
//   const system = await LocalSystem.start({ network: "real" });   // root; preflight names what is missing
//   await system.network!.exec("default", pod, [system.network!.binaries.netprobe, "ping", "10.10.0.11"]);
//   resolver.setServers([system.dns!.address]);
//   await system.stop();                                            // CNI DEL for every pod, every namespace removed
import path from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { Aggregator, type AggregatorOptions } from "../aggregator/aggregator.ts";
import { defaultSystemNamespace } from "../common/api.ts";
import { Applier } from "../common/kube/apply.ts";
import { makeClients, type ClientOptions, type KubeClients } from "../common/kube/client.ts";
import type { Logger } from "../common/log.ts";
import { NodeAgent, netServiceInformer, type NodeAgentOptions } from "../node-agent/agent.ts";
import { ControlPlane, type ControlPlaneOptions } from "./cluster/control-plane.ts";
import { applyManifests, loadManifests } from "./manifests.ts";
import { CoreDns } from "./realnet/coredns.ts";
import { RealNetwork } from "./realnet/network.ts";
import { SimulatedCluster, type SimulatedClusterOptions } from "./sim/cluster.ts";
import { makeSimClients, type SimClients } from "./sim/kube.ts";
import { runTeardown, type TeardownStep } from "./teardown.ts";

export const repoRoot = path.resolve(import.meta.dirname, "..");
export const crdFiles = [path.join(repoRoot, "crds", "netservice.yaml"), path.join(repoRoot, "crds", "netservicenodereport.yaml")];

export type LocalSystemOptions = {
  nodes?: number;
  /**
   * The pods' networks: "simulated" (default) is the fake Multus; "real"
   * gives every pod a network namespace set up by the real Multus and CNI
   * plugins, and starts CoreDNS (needs root; see docs/real-network.md).
   */
  network?: "simulated" | "real";
  /** Progress lines (control-plane build and start). */
  report?: (line: string) => void;
  logger?: Logger;
  sim?: Partial<Omit<SimulatedClusterOptions, "kubeConfig" | "clients" | "sandbox">>;
  agent?: Omit<NodeAgentOptions, "netServices" | "logger">;
  aggregator?: Partial<AggregatorOptions>;
  /** Control-plane settings, e.g. extra component flags (the benchmark's audit log and kube-controller-manager flags). */
  plane?: Omit<ControlPlaneOptions, "report">;
  /** Agents get clients of their own (a user agent, a request observer) instead of the system's; closed at stop. */
  agentClients?: Pick<ClientOptions, "userAgent" | "observer" | "maxConnections">;
  /**
   * Each agent's own clients instead (the benchmark's: a service-account
   * token bound to the agent's pod on that node, as deployed). Such agents
   * watch NetServices themselves, one watch per node as in a cluster, instead
   * of sharing one. Closed when the agent stops.
   */
  agentClientsFor?: (nodeName: string) => Promise<KubeClients>;
  /** Start the aggregator in this process (default true); false when it runs elsewhere, e.g. as a process of its own. */
  inProcessAggregator?: boolean;
};

export class LocalSystem {
  readonly plane: ControlPlane;
  readonly kubeConfig: KubeConfig;
  readonly clients: SimClients;
  readonly applier: Applier;
  readonly sim: SimulatedCluster;
  /** The real network (network: "real"): pods' namespaces, exec in them, the binaries. */
  readonly network: RealNetwork | undefined;
  /** CoreDNS answering for cluster.local (network: "real"). */
  dns: CoreDns | undefined;
  readonly agents = new Map<string, NodeAgent>();
  aggregator: Aggregator | undefined;
  readonly #options: LocalSystemOptions;
  /** One NetService watch that every agent of this process shares (unless each has clients of its own). */
  readonly #netServices: ReturnType<typeof netServiceInformer> | undefined;
  readonly #agentClients: KubeClients;
  readonly #ownAgentClients = new Map<string, KubeClients>();

  private constructor(plane: ControlPlane, options: LocalSystemOptions) {
    this.plane = plane;
    this.#options = options;
    this.kubeConfig = new KubeConfig();
    this.kubeConfig.loadFromFile(plane.kubeconfig);
    this.clients = makeSimClients(this.kubeConfig, { userAgent: "netservice-local/0.1.0", maxConnections: 32 });
    this.applier = new Applier(this.clients.http, { fieldManager: "netservice-local" });
    this.#agentClients = options.agentClients ? makeClients(this.kubeConfig, { maxConnections: 32, ...options.agentClients }) : this.clients;
    const logger = options.logger ? { logger: options.logger } : {};
    this.network = options.network === "real"
      ? new RealNetwork({ kubeconfig: plane.kubeconfig, ...logger, ...(options.report ? { report: options.report } : {}) })
      : undefined;
    this.sim = new SimulatedCluster({
      kubeConfig: this.kubeConfig,
      clients: this.clients,
      ...logger,
      ...options.sim,
      ...(this.network ? { sandbox: this.network } : {}),
    });
    // One NetService watch serves every agent of this process, as one per node would in a cluster.
    this.#netServices = options.agentClientsFor ? undefined : netServiceInformer(this.clients.http, logger);
  }

  /** Starts everything; on failure stops what already runs and rethrows. */
  static async start(options: LocalSystemOptions = {}): Promise<LocalSystem> {
    const plane = await ControlPlane.start({ ...options.plane, ...(options.report ? { report: options.report } : {}) });
    const system = new LocalSystem(plane, options);
    try {
      await system.#start(options.nodes ?? 3);
      return system;
    } catch (error) {
      await system.stop().catch((stopError: unknown) => options.report?.(`stopping after a failed start: ${String(stopError)}`));
      throw error;
    }
  }

  async #start(nodes: number) {
    await applyManifests(this.applier, this.clients.http, [
      ...(await loadManifests(...crdFiles)),
      { apiVersion: "v1", kind: "Namespace", metadata: { name: defaultSystemNamespace } },
    ]);
    await this.sim.start();
    if (this.network) this.dns = await CoreDns.start({ binary: this.network.binaries.coredns, kubeconfig: this.plane.kubeconfig, dir: this.network.scope.dir });
    const simNodes = await this.sim.addNodes(nodes);
    this.#netServices?.start();
    await this.#netServices?.synced;
    await Promise.all(simNodes.map((node) => this.startAgent(node.name)));
    if (this.#options.inProcessAggregator ?? true) await this.startAggregator();
  }

  async startAgent(nodeName: string): Promise<NodeAgent> {
    const own = this.#options.agentClientsFor ? await this.#options.agentClientsFor(nodeName) : undefined;
    if (own) this.#ownAgentClients.set(nodeName, own);
    const agent = new NodeAgent(nodeName, own ?? this.#agentClients, {
      ...this.#options.agent,
      ...(this.#netServices ? { netServices: this.#netServices } : {}),
      ...(this.#options.logger ? { logger: this.#options.logger.child({ node: nodeName }) } : {}),
    });
    this.agents.set(nodeName, agent);
    await agent.start();
    return agent;
  }

  async stopAgent(nodeName: string, options: { deleteReport?: boolean } = {}): Promise<void> {
    await this.agents.get(nodeName)?.stop(options);
    this.agents.delete(nodeName);
    await this.#ownAgentClients.get(nodeName)?.close();
    this.#ownAgentClients.delete(nodeName);
  }

  async startAggregator(): Promise<Aggregator> {
    const aggregator = new Aggregator(this.clients, {
      identity: `local-${process.pid}`,
      leaderElection: false,
      ...(this.#options.logger ? { logger: this.#options.logger.child({ component: "aggregator" }) } : {}),
      ...this.#options.aggregator,
    });
    this.aggregator = aggregator;
    await aggregator.start();
    return aggregator;
  }

  async stopAggregator(): Promise<void> {
    await this.aggregator?.stop();
    this.aggregator = undefined;
  }

  /**
   * Stops DNS, agents, aggregator, simulation (a real network tears every
   * sandbox down while the API server still answers Multus) and control
   * plane, in that order. Each step has a bound: one that overruns it is
   * reported with what it waits for (which agent, the CNI DEL of which pod,
   * which component) and the rest still stop. Throws a TeardownError naming
   * every step that failed or overran, once all of them have run.
   */
  async stop(): Promise<void> {
    const report = this.#options.report ?? ((line: string) => process.stderr.write(`[netservice] ${line}\n`));
    await runTeardown(this.#teardownSteps(), { report });
  }

  #teardownSteps(): TeardownStep[] {
    const dns = this.dns;
    const agents = new Set(this.agents.keys());
    const netServices = this.#netServices;
    return [
      ...(dns ? [{ name: "DNS (CoreDNS)", timeoutMs: 10_000, run: () => dns.stop(), waitingFor: () => [`coredns pid ${dns.process.pid} to exit`] }] : []),
      {
        name: "node agents",
        timeoutMs: 30_000,
        run: async () => {
          const stops = [...agents].map((node) => this.stopAgent(node).finally(() => agents.delete(node)));
          const failed = (await Promise.allSettled(stops)).filter((result) => result.status === "rejected");
          if (failed.length > 0) throw new AggregateError(failed.map((f) => f.reason), `${failed.length} agents failed to stop`);
        },
        waitingFor: () => [...agents].map((node) => `the agent of ${node}`),
      },
      { name: "aggregator", timeoutMs: 30_000, run: () => this.stopAggregator() },
      ...(netServices ? [{ name: "agents' NetService watch", timeoutMs: 10_000, run: () => netServices.stop() }] : []),
      ...this.sim.teardownSteps(),
      ...(this.#agentClients === this.clients ? [] : [{ name: "agents' clients", timeoutMs: 10_000, run: () => this.#agentClients.close() }]),
      { name: "system clients", timeoutMs: 10_000, run: () => this.clients.close() },
      {
        name: "control plane",
        // Four components, each SIGTERM then SIGKILL after 10 s.
        timeoutMs: 60_000,
        run: () => this.plane.stop(),
        waitingFor: () => [...this.plane.processes.values()].filter((proc) => proc.running()).map((proc) => `${proc.name} (pid ${proc.pid}) to exit`),
      },
    ];
  }
}
