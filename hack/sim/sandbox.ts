// What the fake kubelet asks of a container runtime for a pod's network: a
// sandbox set up (CNI ADD) before the pod runs, whose addresses become
// podIP/podIPs, and torn down (CNI DEL) when the pod goes away. The
// simulated cluster plugs one in; the default is the fake Multus below, the
// real-network mode plugs in real Multus (hack/realnet/network.ts).
//
//   const sim = new SimulatedCluster({ kubeConfig });                    // FakeMultusSandboxes
//   const sim = new SimulatedCluster({ kubeConfig, sandbox: network });  // any SandboxRuntime
import { IpamError, parseNetworkConfig, type IpamAllocator, type IpamConfig } from "./ipam.ts";
import { podKey, type Logger, type PodJson } from "./kube.ts";
import type { FakeMultus } from "./multus.ts";
import type { SimNode } from "./nodes.ts";
import type { TeardownStep } from "../teardown.ts";

/**
 * The kubelet calls, for one pod, setUpSandbox until it resolves with
 * addresses, and tearDownSandbox only after any set-up of that pod has
 * finished; never both at once, and never a set-up after a tear-down.
 * Pods with hostNetwork get no sandbox.
 */
export interface SandboxRuntime {
  /**
   * Makes the pod's network (RunPodSandbox, CNI ADD) and resolves with the
   * pod's IPs, IPv4 first. Undefined: no address can be had now (the kubelet
   * tries again on the pod's next event). A throw is retried with backoff,
   * so a failed attempt must leave nothing behind.
   */
  setUpSandbox(pod: PodJson, node: SimNode): Promise<string[] | undefined>;
  /**
   * Removes the pod's network (StopPodSandbox, CNI DEL). Called when the
   * pod's grace period has run out, just before the kubelet deletes it for
   * good (`removed: false`), and again once the pod has left the API server
   * (`removed: true`; also the only call for a pod deleted without grace or
   * by someone else). The first call does the work; the second finds nothing.
   */
  tearDownSandbox(pod: PodJson, stage: { removed: boolean }): Promise<void>;
  /** A pod that already runs when the simulation starts (an earlier run's) keeps these addresses. */
  adoptSandbox?(pod: PodJson, podIPs: string[]): void;
  /** Before the pod watch starts. */
  start?(): Promise<void>;
  /** Nodes just joined the simulation, before the kubelet looks at their pods. */
  addNodes?(nodes: SimNode[]): Promise<void>;
  /** After the kubelet stopped: whatever the runtime still holds goes. */
  stop?(): Promise<void>;
  /**
   * The same stop as named steps, each with its bound (see hack/teardown.ts),
   * for a runtime whose stop can hang on something outside this process
   * (a CNI plugin, `ip netns delete`); stop() then runs these.
   */
  teardownSteps?(): TeardownStep[];
}

export type FakeMultusSandboxesOptions = {
  multus: FakeMultus;
  allocator: IpamAllocator;
  logger?: Logger;
  /** Lifecycle of what feeds the fake Multus (its NAD watch), run with the runtime's own. */
  start?: () => Promise<void>;
  stop?: () => Promise<void>;
};

/**
 * The default runtime: pod IPs from host-local over the node's pod CIDRs
 * (like kindnet and the bridge plugin: gateway .1 never handed out), then the
 * fake Multus as the CNI ADD, which writes network-status with those IPs.
 * Addresses go back to the pool once the pod has left the API server, so no
 * two pods the API holds ever share one; the fake Multus frees its own
 * attachments on the same event.
 */
export class FakeMultusSandboxes implements SandboxRuntime {
  readonly multus: FakeMultus;
  readonly #options: FakeMultusSandboxesOptions;
  readonly #log: Logger | undefined;
  readonly #nodePools = new Map<string, IpamConfig>();

  constructor(options: FakeMultusSandboxesOptions) {
    this.#options = options;
    this.multus = options.multus;
    this.#log = options.logger?.child({ component: "fake-kubelet" });
  }

  async start(): Promise<void> {
    this.multus.start();
    await this.#options.start?.();
  }

  async addNodes(): Promise<void> {
    this.multus.resync();
  }

  async setUpSandbox(pod: PodJson, node: SimNode): Promise<string[] | undefined> {
    let podIPs: string[];
    try {
      podIPs = this.#options.allocator.allocate(owner(pod), "eth0", this.#nodePool(node)).map((a) => a.address);
    } catch (error) {
      if (!(error instanceof IpamError)) throw error;
      this.#log?.error({ key: podKey(pod), node: node.name, err: error }, "no pod address left on the node");
      return undefined;
    }
    await this.multus.setUpPod(pod, podIPs);
    return podIPs;
  }

  async tearDownSandbox(pod: PodJson, stage: { removed: boolean }): Promise<void> {
    if (stage.removed) this.#options.allocator.release(owner(pod));
  }

  adoptSandbox(pod: PodJson, podIPs: string[]): void {
    this.#options.allocator.reserve(owner(pod), "eth0", podIPs.map((address) => ({ address })));
  }

  async stop(): Promise<void> {
    await this.multus.stop();
    await this.#options.stop?.();
  }

  #nodePool(node: SimNode): IpamConfig {
    let pool = this.#nodePools.get(node.name);
    if (!pool) {
      pool = parseNetworkConfig(JSON.stringify({ type: "ptp", ipam: { type: "host-local", ranges: node.podCIDRs.map((subnet) => [{ subnet }]) } })).ipam;
      this.#nodePools.set(node.name, pool);
    }
    return pool;
  }
}

function owner(pod: PodJson): string {
  return `kubelet/${pod.metadata?.uid ?? ""}`;
}
