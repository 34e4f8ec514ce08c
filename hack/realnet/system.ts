// netservice on real networking, all in this process: a local control plane,
// simulated nodes whose pods get real sandboxes from real Multus (cluster.ts),
// one NodeAgent per node, the aggregator, and CoreDNS answering for
// cluster.local. The same composition and agent/aggregator controls as
// hack/local-system.ts, with the real network in place of the fake Multus and
// a DNS server to ask.
//
//   const system = await RealNetworkSystem.start({ nodes: 3 });
//   ... apply NADs, pods, NetServices; resolve at system.dns.address ...
//   await system.stop();
import { KubeConfig } from "@kubernetes/client-node";
import { Aggregator } from "../../aggregator/aggregator.ts";
import { defaultSystemNamespace } from "../../common/api.ts";
import { Applier } from "../../common/kube/apply.ts";
import { makeClients, type KubeClients } from "../../common/kube/client.ts";
import type { Logger } from "../../common/log.ts";
import { NodeAgent, netServiceInformer } from "../../node-agent/agent.ts";
import { ControlPlane } from "../cluster/control-plane.ts";
import { crdFiles } from "../local-system.ts";
import { applyManifests, loadManifests } from "../manifests.ts";
import { RealNetworkCluster, type RealNetworkClusterOptions } from "./cluster.ts";
import { CoreDns } from "./coredns.ts";

export type RealNetworkSystemOptions = {
  nodes?: number;
  report?: (line: string) => void;
  logger?: Logger;
  cluster?: Partial<Omit<RealNetworkClusterOptions, "kubeConfig" | "kubeconfig" | "clients">>;
};

export class RealNetworkSystem {
  readonly plane: ControlPlane;
  readonly kubeConfig: KubeConfig;
  readonly clients: KubeClients;
  readonly applier: Applier;
  readonly cluster: RealNetworkCluster;
  readonly agents = new Map<string, NodeAgent>();
  aggregator: Aggregator | undefined;
  dns: CoreDns | undefined;
  readonly #options: RealNetworkSystemOptions;
  readonly #netServices: ReturnType<typeof netServiceInformer>;

  private constructor(plane: ControlPlane, options: RealNetworkSystemOptions) {
    this.plane = plane;
    this.#options = options;
    this.kubeConfig = new KubeConfig();
    this.kubeConfig.loadFromFile(plane.kubeconfig);
    this.clients = makeClients(this.kubeConfig, { userAgent: "netservice-realnet/0.1.0", maxConnections: 32 });
    this.applier = new Applier(this.clients.http, { fieldManager: "netservice-realnet" });
    this.cluster = new RealNetworkCluster({
      kubeConfig: this.kubeConfig,
      kubeconfig: plane.kubeconfig,
      clients: this.clients,
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.report ? { report: options.report } : {}),
      ...options.cluster,
    });
    this.#netServices = netServiceInformer(this.clients.http, options.logger ? { logger: options.logger } : {});
  }

  /** Starts everything; on failure stops what already runs and rethrows. */
  static async start(options: RealNetworkSystemOptions = {}): Promise<RealNetworkSystem> {
    const plane = await ControlPlane.start(options.report ? { report: options.report } : {});
    const system = new RealNetworkSystem(plane, options);
    try {
      await system.#start(options.nodes ?? 3);
      return system;
    } catch (error) {
      await system.stop().catch(() => undefined);
      throw error;
    }
  }

  async #start(nodes: number) {
    await applyManifests(this.applier, this.clients.http, [
      ...(await loadManifests(...crdFiles)),
      { apiVersion: "v1", kind: "Namespace", metadata: { name: defaultSystemNamespace } },
    ]);
    await this.cluster.start();
    this.dns = await CoreDns.start({ binary: this.cluster.binaries.coredns, kubeconfig: this.plane.kubeconfig, dir: this.cluster.scope.dir });
    const simNodes = await this.cluster.addNodes(nodes);
    this.#netServices.start();
    await this.#netServices.synced;
    for (const node of simNodes) await this.startAgent(node.name);
    await this.startAggregator();
  }

  async startAgent(nodeName: string): Promise<NodeAgent> {
    const agent = new NodeAgent(nodeName, this.clients, {
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
      identity: `realnet-${process.pid}`,
      leaderElection: false,
      ...(this.#options.logger ? { logger: this.#options.logger.child({ component: "aggregator" }) } : {}),
    });
    this.aggregator = aggregator;
    await aggregator.start();
    return aggregator;
  }

  async stopAggregator(): Promise<void> {
    await this.aggregator?.stop();
    this.aggregator = undefined;
  }

  /** Stops DNS, agents, aggregator, the real network (CNI DEL for every pod) and the control plane. */
  async stop(): Promise<void> {
    const errors: unknown[] = [];
    await this.dns?.stop().catch((error: unknown) => errors.push(error));
    await Promise.allSettled([...this.agents.keys()].map((node) => this.stopAgent(node)));
    await this.stopAggregator().catch(() => undefined);
    await this.#netServices.stop();
    await this.cluster.stop().catch((error: unknown) => errors.push(error));
    await this.clients.close();
    await this.plane.stop();
    if (errors.length > 0) throw new AggregateError(errors, `stopping the real-network system: ${errors.map(String).join("; ")}`);
  }
}
