// Pod sandboxes as a container runtime makes them: a network namespace per
// pod, the loopback plugin for lo, then the Multus thin plugin for eth0 with
// the pod's identity in CNI_ARGS. Multus reads the pod and its
// NetworkAttachmentDefinitions from the API server, runs the default network
// (bridge + host-local on the node's pod CIDR) and every requested secondary
// network, and writes the pod's network-status annotation itself. Removing a
// sandbox runs CNI DEL through Multus (which frees every address) and deletes
// the namespace.
//
//   const sandboxes = new PodSandboxes({ scope, fabric, binaries, kubeconfig, defaultNetworkName: "podnet" });
//   const podIPs = await sandboxes.setUp(pod);   // the default network's real addresses
//   await sandboxes.exec("default", "utils-x", ["ip", "-br", "addr"]);
//   await sandboxes.tearDown(pod.metadata.uid);
import { randomBytes } from "node:crypto";
import path from "node:path";
import { formatIp, parseCidr } from "../sim/ip.ts";
import type { PodJson } from "../sim/kube.ts";
import type { RealnetBinaries } from "./binaries.ts";
import { addressesOn, callCni, writeNodePluginWrappers, type CniCall } from "./cni.ts";
import { runCommand, type CommandOptions, type CommandResult } from "./command.ts";
import { defaultBridge, type Fabric, type NodeNetwork } from "./fabric.ts";
import type { RunScope } from "./run-scope.ts";

export type Sandbox = {
  namespace: string;
  name: string;
  uid: string;
  nodeName: string;
  /** CNI_CONTAINERID: a fresh id per sandbox, as containerd's pause container has. */
  id: string;
  netns: string;
  netnsPath: string;
  podIPs: string[];
};

export type PodSandboxesOptions = {
  scope: RunScope;
  fabric: Fabric;
  binaries: Pick<RealnetBinaries, "cniBinDir" | "multus">;
  /** The kubeconfig Multus uses to read pods and NADs and write network-status. */
  kubeconfig: string;
  /** Name of the default network (the network-status entry with default: true). */
  defaultNetworkName: string;
  /** Multus' log level: error, verbose or debug. Default verbose (its log is in the node's directory). */
  multusLogLevel?: string;
};

export class PodSandboxes {
  readonly #options: PodSandboxesOptions;
  readonly #byUid = new Map<string, Sandbox>();
  /** One operation per pod at a time: a deletion waits for a set-up in flight. */
  readonly #pending = new Map<string, Promise<unknown>>();
  /** Per node: the directory of plugin wrappers that serves as its CNI_PATH. */
  readonly #nodeBinDirs = new Map<string, Promise<string>>();
  /** CNI calls running now, so a teardown that hangs can say which one. */
  readonly #calls = new Set<{ what: string; since: number }>();
  #next = 0;

  constructor(options: PodSandboxesOptions) {
    this.#options = options;
  }

  /** Creates the pod's sandbox (once per pod uid) and returns its pod IPs, IPv4 first. */
  setUp(pod: PodJson): Promise<string[]> {
    const uid = pod.metadata?.uid ?? "";
    return this.#serialised(uid, async () => (this.#byUid.get(uid) ?? (await this.#create(pod))).podIPs);
  }

  /** Runs CNI DEL for the pod's sandbox and deletes its namespace; nothing if it has none. */
  tearDown(uid: string): Promise<void> {
    return this.#serialised(uid, async () => {
      const sandbox = this.#byUid.get(uid);
      if (!sandbox) return;
      try {
        await this.#remove(sandbox);
      } finally {
        this.#byUid.delete(uid);
      }
    });
  }

  /** Tears every sandbox down (CNI DEL included), e.g. when the simulation stops. */
  async tearDownAll(): Promise<void> {
    const results = await Promise.allSettled([...this.#byUid.keys()].map((uid) => this.tearDown(uid)));
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed.length > 0) throw new Error(`${failed.length} sandboxes failed to tear down: ${failed.map((f) => String(f.reason)).join("; ")}`);
  }

  get(namespace: string, name: string): Sandbox | undefined {
    return [...this.#byUid.values()].find((s) => s.namespace === namespace && s.name === name);
  }

  byUid(uid: string): Sandbox | undefined {
    return this.#byUid.get(uid);
  }

  list(): Sandbox[] {
    return [...this.#byUid.values()];
  }

  /** The CNI calls running now, oldest first: "CNI DEL of default/utils-x (multus, eth0), 42 s". */
  inFlight(now = Date.now()): string[] {
    return [...this.#calls].map((call) => `${call.what}, ${Math.round((now - call.since) / 1000)} s`);
  }

  /** Runs a command inside the pod's network namespace (only there: the mount and pid namespaces stay the machine's). */
  async exec(namespace: string, name: string, argv: string[], options: CommandOptions = {}): Promise<CommandResult> {
    const sandbox = this.get(namespace, name);
    if (!sandbox) throw new Error(`pod ${namespace}/${name} has no sandbox`);
    return runCommand(["nsenter", `--net=${sandbox.netnsPath}`, "--", ...argv], options);
  }

  /** The Multus configuration of a node, as the runtime would read it from /etc/cni/net.d/00-multus.conf. */
  multusConfig(node: NodeNetwork, binDir: string): Record<string, unknown> {
    return {
      cniVersion: "1.0.0",
      name: "multus-cni-network",
      type: "multus",
      kubeconfig: this.#options.kubeconfig,
      binDir,
      // Multus runs on the node's control side (see cni.ts): its cache goes to the node's /var/lib by full path.
      cniDir: path.join(node.varLibDir, "cni", "multus"),
      logFile: path.join(this.#nodeDir(node), "multus.log"),
      logLevel: this.#options.multusLogLevel ?? "verbose",
      logToStderr: false,
      delegates: [defaultNetwork(node, this.#options.defaultNetworkName)],
    };
  }

  async #create(pod: PodJson): Promise<Sandbox> {
    const namespace = pod.metadata?.namespace ?? "";
    const name = pod.metadata?.name ?? "";
    const uid = pod.metadata?.uid ?? "";
    const nodeName = pod.spec?.nodeName ?? "";
    const node = this.#options.fabric.node(nodeName);
    if (!node) throw new Error(`pod ${namespace}/${name}: node ${nodeName} has no network (not added to the fabric)`);
    const netns = await this.#options.scope.addNetns(`p${this.#next++}`);
    const sandbox: Sandbox = { namespace, name, uid, nodeName, id: randomBytes(32).toString("hex"), netns, netnsPath: path.join("/run/netns", netns), podIPs: [] };
    try {
      const binDir = await this.#nodeBinDir(node);
      await this.#call(sandbox, this.#loopbackCall("ADD", sandbox, binDir));
      const result = await this.#call(sandbox, this.#multusCall("ADD", sandbox, node, binDir));
      sandbox.podIPs = result ? addressesOn(result, "eth0") : [];
      if (sandbox.podIPs.length === 0) throw new Error(`pod ${namespace}/${name}: Multus returned no address for eth0: ${JSON.stringify(result)}`);
      await this.#options.fabric.connectBridges(nodeName);
    } catch (error) {
      // As a runtime does when RunPodSandbox fails: release what was made, and let the kubelet retry with a new sandbox.
      await this.#remove(sandbox).catch(() => undefined);
      throw error;
    }
    this.#byUid.set(uid, sandbox);
    return sandbox;
  }

  async #remove(sandbox: Sandbox) {
    const node = this.#options.fabric.node(sandbox.nodeName);
    let failure: unknown;
    if (node) {
      try {
        const binDir = await this.#nodeBinDir(node);
        await this.#call(sandbox, this.#multusCall("DEL", sandbox, node, binDir));
        await this.#call(sandbox, this.#loopbackCall("DEL", sandbox, binDir));
      } catch (error) {
        failure = error;
      }
    }
    await this.#options.scope.deleteNetns(sandbox.netns);
    if (failure) throw failure;
  }

  async #call(sandbox: Sandbox, call: CniCall) {
    const entry = { what: `CNI ${call.command} of ${sandbox.namespace}/${sandbox.name} (${path.basename(call.plugin)}, ${call.ifName})`, since: Date.now() };
    this.#calls.add(entry);
    try {
      return await callCni(call);
    } finally {
      this.#calls.delete(entry);
    }
  }

  #multusCall(command: "ADD" | "DEL", sandbox: Sandbox, node: NodeNetwork, binDir: string): CniCall {
    return {
      command,
      plugin: this.#options.binaries.multus,
      binDir,
      containerId: sandbox.id,
      netnsPath: sandbox.netnsPath,
      ifName: "eth0",
      // What the kubelet passes through the CRI to the runtime, and the runtime to CNI.
      args: {
        IgnoreUnknown: "1",
        K8S_POD_NAMESPACE: sandbox.namespace,
        K8S_POD_NAME: sandbox.name,
        K8S_POD_INFRA_CONTAINER_ID: sandbox.id,
        K8S_POD_UID: sandbox.uid,
      },
      config: this.multusConfig(node, binDir),
    };
  }

  #loopbackCall(command: "ADD" | "DEL", sandbox: Sandbox, binDir: string): CniCall {
    return {
      command,
      plugin: path.join(binDir, "loopback"),
      binDir,
      containerId: sandbox.id,
      netnsPath: sandbox.netnsPath,
      ifName: "lo",
      args: {},
      config: { cniVersion: "1.0.0", name: "cni-loopback", type: "loopback" },
    };
  }

  #nodeDir(node: NodeNetwork): string {
    return path.join(this.#options.scope.dir, "nodes", node.node.name);
  }

  #nodeBinDir(node: NodeNetwork): Promise<string> {
    let dir = this.#nodeBinDirs.get(node.node.name);
    if (!dir) {
      dir = writeNodePluginWrappers(node, this.#options.binaries.cniBinDir, path.join(this.#nodeDir(node), "cni-bin"));
      this.#nodeBinDirs.set(node.node.name, dir);
    }
    return dir;
  }

  #serialised<T>(uid: string, operation: () => Promise<T>): Promise<T> {
    const previous = this.#pending.get(uid) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(operation);
    this.#pending.set(uid, next);
    const forget = () => {
      if (this.#pending.get(uid) === next) this.#pending.delete(uid);
    };
    next.then(forget, forget);
    return next;
  }
}

/** The node's default pod network: a bridge with the node as gateway (.1), host-local over the node's pod CIDRs. */
function defaultNetwork(node: NodeNetwork, name: string): Record<string, unknown> {
  const gateway = (subnet: string) => {
    const cidr = parseCidr(subnet);
    if (!cidr) throw new Error(`node ${node.node.name}: pod CIDR ${subnet} does not parse`);
    return formatIp({ family: cidr.family, value: cidr.network + 1n });
  };
  return {
    cniVersion: "1.0.0",
    name,
    type: "bridge",
    bridge: defaultBridge,
    isGateway: true,
    ipMasq: false,
    ipam: {
      type: "host-local",
      // Per node (the shared /var/lib/cni/networks is for networks that span nodes).
      dataDir: "/var/lib/cni/pod-network",
      ranges: node.node.podCIDRs.map((subnet) => [{ subnet, gateway: gateway(subnet) }]),
      // With the gateway named, Multus records it in the default entry of network-status, as on a kind node.
      routes: node.node.podCIDRs.map((subnet) => ({ dst: subnet.includes(":") ? "::/0" : "0.0.0.0/0", gw: gateway(subnet) })),
    },
  };
}
