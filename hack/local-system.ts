// The whole system on this machine: a local control plane, simulated nodes
// with the fake Multus, one NodeAgent per node and the aggregator, all in one
// process. The run command, the end-to-end tests and the benchmarks start it.
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
import { SimulatedCluster, type SimulatedClusterOptions } from "./sim/cluster.ts";

export const repoRoot = path.resolve(import.meta.dirname, "..");
export const crdFiles = [path.join(repoRoot, "crds", "netservice.yaml"), path.join(repoRoot, "crds", "netservicenodereport.yaml")];

export type LocalSystemOptions = {
  nodes?: number;
  /** Progress lines (control-plane build and start). */
  report?: (line: string) => void;
  logger?: Logger;
  sim?: Partial<Omit<SimulatedClusterOptions, "kubeConfig" | "clients">>;
  agent?: Omit<NodeAgentOptions, "netServices" | "logger">;
  aggregator?: Partial<AggregatorOptions>;
  /** Control-plane settings, e.g. extra component flags (the benchmark's audit log and kube-controller-manager flags). */
  plane?: Omit<ControlPlaneOptions, "report">;
  /** Agents get clients of their own (a user agent, a request observer) instead of the system's; closed at stop. */
  agentClients?: Pick<ClientOptions, "userAgent" | "observer" | "maxConnections">;
  /** Start the aggregator in this process (default true); false when it runs elsewhere, e.g. as a process of its own. */
  inProcessAggregator?: boolean;
};

export class LocalSystem {
  readonly plane: ControlPlane;
  readonly kubeConfig: KubeConfig;
  readonly clients: KubeClients;
  readonly applier: Applier;
  readonly sim: SimulatedCluster;
  readonly agents = new Map<string, NodeAgent>();
  aggregator: Aggregator | undefined;
  readonly #options: LocalSystemOptions;
  readonly #netServices: ReturnType<typeof netServiceInformer>;
  readonly #agentClients: KubeClients;

  private constructor(plane: ControlPlane, options: LocalSystemOptions) {
    this.plane = plane;
    this.#options = options;
    this.kubeConfig = new KubeConfig();
    this.kubeConfig.loadFromFile(plane.kubeconfig);
    this.clients = makeClients(this.kubeConfig, { userAgent: "netservice-local/0.1.0", maxConnections: 32 });
    this.applier = new Applier(this.clients.http, { fieldManager: "netservice-local" });
    this.#agentClients = options.agentClients ? makeClients(this.kubeConfig, { maxConnections: 32, ...options.agentClients }) : this.clients;
    this.sim = new SimulatedCluster({ kubeConfig: this.kubeConfig, clients: this.clients, ...(options.logger ? { logger: options.logger } : {}), ...options.sim });
    // One NetService watch serves every agent of this process, as one per node would in a cluster.
    this.#netServices = netServiceInformer(this.clients.http, options.logger ? { logger: options.logger } : {});
  }

  /** Starts everything; on failure stops what already runs and rethrows. */
  static async start(options: LocalSystemOptions = {}): Promise<LocalSystem> {
    const plane = await ControlPlane.start({ ...options.plane, ...(options.report ? { report: options.report } : {}) });
    const system = new LocalSystem(plane, options);
    try {
      await system.#start(options.nodes ?? 3);
      return system;
    } catch (error) {
      await system.stop();
      throw error;
    }
  }

  async #start(nodes: number) {
    await applyManifests(this.applier, this.clients.http, [
      ...(await loadManifests(...crdFiles)),
      { apiVersion: "v1", kind: "Namespace", metadata: { name: defaultSystemNamespace } },
    ]);
    await this.sim.start();
    const simNodes = await this.sim.addNodes(nodes);
    this.#netServices.start();
    await this.#netServices.synced;
    await Promise.all(simNodes.map((node) => this.startAgent(node.name)));
    if (this.#options.inProcessAggregator ?? true) await this.startAggregator();
  }

  async startAgent(nodeName: string): Promise<NodeAgent> {
    const agent = new NodeAgent(nodeName, this.#agentClients, {
      ...this.#options.agent,
      netServices: this.#netServices,
      ...(this.#options.logger ? { logger: this.#options.logger.child({ node: nodeName }) } : {}),
    });
    this.agents.set(nodeName, agent);
    await agent.start();
    return agent;
  }

  async stopAgent(nodeName: string, options: { deleteReport?: boolean } = {}): Promise<void> {
    await this.agents.get(nodeName)?.stop(options);
    this.agents.delete(nodeName);
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

  /** Stops agents, aggregator, simulation and control plane, in that order. */
  async stop(): Promise<void> {
    await Promise.allSettled([...this.agents.keys()].map((node) => this.stopAgent(node)));
    await this.stopAggregator().catch(() => undefined);
    await this.#netServices.stop();
    await this.sim.stop().catch(() => undefined);
    if (this.#agentClients !== this.clients) await this.#agentClients.close();
    await this.clients.close();
    await this.plane.stop();
  }
}
