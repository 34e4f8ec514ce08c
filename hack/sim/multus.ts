// A fake Multus for the simulated nodes. For every pod on a simulated node
// that asks for networks in `k8s.v1.cni.cncf.io/networks`, it reads each
// NetworkAttachmentDefinition, allocates addresses from its IPAM config and
// writes network-status exactly as Multus v4 does (or `networks-status` with
// bare names, as Multus before v3.6 did). Addresses are released when the pod
// is deleted.
//
//   const multus = new FakeMultus({ clients, pods, nads, isSimulatedNode, allocator });
//   multus.start();
//   await multus.setUpPod(pod, ["10.244.1.2"]);            // the CNI ADD a kubelet runtime would make
//   await multus.changeAddress("default", "utils-0", "networks/core");
//   await multus.writeAnnotation("default", "utils-0", "not json");
//   await multus.stop();
//
// Deviations from Multus, on purpose: a missing NAD, an unusable config or an
// exhausted range leaves that attachment out instead of failing the whole
// sandbox (so a test sees the pod run without it), and a NAD created later is
// attached at the next pass, as a sandbox retry would.
import { IpamError, type AllocatedAddress, type IpamAllocator, type IpamConfig } from "./ipam.ts";
import { IpamConfigError, parseNetworkConfig } from "./ipam-config.ts";
import {
  AwaitableQueue,
  isConflict,
  isNotFound,
  mergePatch,
  podKey,
  realClock,
  type Clock,
  type SimClients,
  type Logger,
  type NadJson,
  type ObjectSource,
  type PodJson,
} from "./kube.ts";
import {
  attachmentSlot,
  defaultNetworkName,
  legacyNetworkStatusAnnotation,
  nadKey,
  networksAnnotation,
  NetworksRequestError,
  networkStatusAnnotation,
  networkStatusFor,
  parseNetworksRequest,
  type NadSummary,
  type NetworkSelection,
} from "./network-status.ts";

export * from "./network-status.ts";

export type AnnotationWritten = {
  namespace: string;
  name: string;
  uid: string;
  annotation: string;
  value: string;
  /** Clock milliseconds when the write was sent and when the API server confirmed it. */
  startedAt: number;
  writtenAt: number;
};

export type AttachmentErrorReason = "InvalidRequest" | "NetworkNotFound" | "InvalidConfig" | "AllocationFailed";

export type AttachmentError = {
  namespace: string;
  name: string;
  /** `ns/name` of the network, or "" when the whole request is unreadable. */
  network: string;
  reason: AttachmentErrorReason;
  message: string;
};

export type FakeMultusOptions = {
  clients: Pick<SimClients, "core">;
  pods: ObjectSource<PodJson>;
  nads: ObjectSource<NadJson>;
  isSimulatedNode: (nodeName: string) => boolean;
  allocator: IpamAllocator;
  /** Write `networks-status` with bare names, as Multus before v3.6. */
  legacy?: boolean;
  /** Name of the cluster network's entry. Default "kindnet". */
  defaultNetworkName?: string;
  clock?: Clock;
  logger?: Logger;
  /** Annotation writes in flight at once. Default 8. */
  workers?: number;
  onAnnotationWritten?: (event: AnnotationWritten) => void;
  onAttachmentError?: (event: AttachmentError) => void;
};

type Attachment = { nad: string; summary: NadSummary; ipam: IpamConfig; addresses: AllocatedAddress[] };

type PodState = {
  uid: string;
  /** Pod IPs handed over by a CNI ADD before the kubelet reports them. */
  sandboxIPs?: string[];
  attachments: Map<string, Attachment>;
  /** NADs the pod asked for that do not exist (yet). */
  missing: Set<string>;
  /** Annotation name and value last written, so a stale cache never causes a second write. */
  written?: string;
  override?: { annotation: string; value: string };
  /** A pod found attached by an earlier run keeps the format and cluster-network name it was written with. */
  legacy?: boolean;
  defaultNetworkName?: string;
  reported: Set<string>;
};

type ParsedNad = { resourceVersion: string | undefined; summary: NadSummary; ipam: IpamConfig } | { resourceVersion: string | undefined; error: string };

export class FakeMultus {
  readonly #options: FakeMultusOptions;
  readonly #clock: Clock;
  readonly #log: Logger | undefined;
  readonly #queue: AwaitableQueue;
  readonly #states = new Map<string, PodState>();
  readonly #parsedNads = new Map<string, ParsedNad>();
  #unsubscribe: (() => void)[] = [];

  constructor(options: FakeMultusOptions) {
    this.#options = options;
    this.#clock = options.clock ?? realClock;
    this.#log = options.logger?.child({ component: "fake-multus" });
    this.#queue = new AwaitableQueue({
      workers: options.workers ?? 8,
      handler: (key) => this.#reconcile(key),
      clock: this.#clock,
      ...(this.#log ? { logger: this.#log } : {}),
    });
  }

  /** Subscribes to pod and NAD events and starts the workers. Register before the informers start to see every pod. */
  start(): void {
    if (this.#unsubscribe.length > 0) return;
    this.#unsubscribe = [
      this.#options.pods.onChange((event) => {
        if (event.type === "delete") this.#forget(event.key, event.object.metadata?.uid);
        else if (this.#concerns(event.key, event.object)) this.#admit(event.key, event.object);
      }),
      this.#options.nads.onChange((event) => {
        this.#parsedNads.delete(event.key);
        if (event.type !== "delete") this.#retryPodsWaitingFor(event.key);
      }),
    ];
    this.#queue.start();
    this.resync();
  }

  /** Takes in the pods of nodes added since their last event (SimulatedCluster.addNodes calls it). */
  resync(): void {
    for (const pod of this.#options.pods.list()) if (this.#concerns(podKey(pod), pod)) this.#admit(podKey(pod), pod);
  }

  async stop(): Promise<void> {
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
    await this.#queue.stop();
  }

  /**
   * The CNI ADD of the pod's sandbox: attaches its networks and writes
   * network-status with `podIPs` as the cluster-network addresses. Resolves
   * once written (at once for a pod that asks for no networks).
   */
  async setUpPod(pod: PodJson, podIPs: readonly string[]): Promise<void> {
    const key = podKey(pod);
    const uid = pod.metadata?.uid;
    if (!uid || !pod.metadata?.annotations?.[networksAnnotation]) return;
    this.#state(key, uid).sandboxIPs = [...podIPs];
    await this.#queue.addAndWait(key);
  }

  /**
   * Gives the pod new addresses on its attachments to `network` (`ns/name`,
   * or a bare name; every attachment when omitted) and rewrites
   * network-status. Resolves with the new addresses once written.
   */
  async changeAddress(namespace: string, name: string, network?: string): Promise<string[]> {
    const key = `${namespace}/${name}`;
    const state = this.#states.get(key);
    if (!state || state.attachments.size === 0) throw new Error(`pod ${key} has no attachments to change`);
    const changed: string[] = [];
    for (const [slot, attachment] of state.attachments) {
      if (network !== undefined && attachment.nad !== network && attachment.nad !== `${namespace}/${network}`) continue;
      attachment.addresses = this.#options.allocator.reallocate(owner(state.uid), slot, attachment.ipam);
      changed.push(...attachment.addresses.map((a) => a.address));
    }
    if (changed.length === 0) throw new Error(`pod ${key} has no attachment to ${network ?? "any network"} with addresses`);
    await this.#queue.addAndWait(key);
    return changed;
  }

  /**
   * Writes `value` (anything: a custom list, malformed JSON) as the pod's
   * network-status (or `annotation`) and keeps it there instead of the
   * computed one until clearOverride.
   */
  async writeAnnotation(namespace: string, name: string, value: string, annotation?: string): Promise<void> {
    const key = `${namespace}/${name}`;
    const uid = this.#options.pods.get(key)?.metadata?.uid;
    if (!uid) throw new Error(`pod ${key} is not in the cache`);
    const state = this.#state(key, uid);
    state.override = { annotation: annotation ?? ((state.legacy ?? this.#options.legacy) ? legacyNetworkStatusAnnotation : networkStatusAnnotation), value };
    await this.#queue.addAndWait(key);
  }

  async clearOverride(namespace: string, name: string): Promise<void> {
    const key = `${namespace}/${name}`;
    const state = this.#states.get(key);
    if (!state) return;
    delete state.override;
    delete state.written;
    await this.#queue.addAndWait(key);
  }

  /** The addresses the pod has on its attachments, by `ns/name` of the network. */
  addressesOf(namespace: string, name: string): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const attachment of this.#states.get(`${namespace}/${name}`)?.attachments.values() ?? []) {
      out.set(attachment.nad, [...(out.get(attachment.nad) ?? []), ...attachment.addresses.map((a) => a.address)]);
    }
    return out;
  }

  // Runs in the informer's event handler, so that every pod already attached
  // (by an earlier simulation process) holds its addresses before any new
  // pod is given one.
  #admit(key: string, pod: PodJson) {
    const uid = pod.metadata?.uid;
    if (uid && this.#states.get(key)?.uid !== uid && pod.metadata?.annotations?.[networksAnnotation]) this.#adopt(pod, this.#state(key, uid));
    this.#queue.add(key);
  }

  #adopt(pod: PodJson, state: PodState) {
    const annotations = pod.metadata?.annotations ?? {};
    const annotation = [networkStatusAnnotation, legacyNetworkStatusAnnotation].find((name) => annotations[name] !== undefined);
    if (!annotation) return;
    const value = annotations[annotation] ?? "";
    let entries: { name?: unknown; interface?: unknown; ips?: unknown; default?: unknown }[];
    let selections: NetworkSelection[];
    try {
      const parsed: unknown = JSON.parse(value);
      if (!Array.isArray(parsed)) return;
      entries = parsed as typeof entries;
      selections = parseNetworksRequest(annotations[networksAnnotation], pod.metadata?.namespace ?? "");
    } catch {
      return;
    }
    for (const [index, selection] of selections.entries()) {
      const ifname = selection.interface ?? `net${index + 1}`;
      const entry = entries.find((e) => e.interface === ifname && e.default !== true);
      if (!entry) continue;
      const slot = attachmentSlot(index, selection);
      const key = nadKey(selection.namespace, selection.name);
      const ips = Array.isArray(entry.ips) ? entry.ips.filter((ip): ip is string => typeof ip === "string") : [];
      const addresses = this.#options.allocator.reserve(owner(state.uid), slot, ips.map((address) => ({ address })));
      const nad = this.#nad(key);
      const known = nad && !("error" in nad) ? nad : { summary: {}, ipam: { kind: "none" } as const };
      state.attachments.set(slot, { nad: key, summary: known.summary, ipam: known.ipam, addresses });
    }
    state.written = `${annotation}\n${value}`;
    state.legacy = annotation === legacyNetworkStatusAnnotation;
    const clusterNetwork = entries.find((e) => e.default === true)?.name;
    if (typeof clusterNetwork === "string") state.defaultNetworkName = clusterNetwork;
  }

  async #reconcile(key: string): Promise<void> {
    const pod = this.#options.pods.get(key);
    const uid = pod?.metadata?.uid;
    if (!pod || !uid || !this.#onSimulatedNode(pod)) return;
    const existing = this.#states.get(key);
    if (existing && existing.uid !== uid) this.#forget(key, existing.uid);
    if (!pod.metadata?.annotations?.[networksAnnotation] && !this.#states.get(key)?.override) return;
    const state = this.#state(key, uid);

    let desired = state.override;
    if (!desired) {
      const podIPs = state.sandboxIPs ?? podIPsOf(pod);
      // Multus runs inside the sandbox set-up, which hands it the pod IPs; without them there is nothing to write yet.
      if (podIPs.length === 0) return;
      let selections: NetworkSelection[];
      try {
        selections = parseNetworksRequest(pod.metadata?.annotations?.[networksAnnotation], pod.metadata?.namespace ?? "");
      } catch (error) {
        if (!(error instanceof NetworksRequestError)) throw error;
        this.#report(pod, state, { network: "", reason: "InvalidRequest", message: error.message });
        return;
      }
      this.#attach(pod, state, selections);
      const nads = new Map<string, NadSummary>();
      const allocations = new Map<string, AllocatedAddress[]>();
      for (const [slot, attachment] of state.attachments) {
        nads.set(attachment.nad, attachment.summary);
        allocations.set(slot, attachment.addresses);
      }
      const status = networkStatusFor(pod, nads, allocations, {
        legacy: state.legacy ?? this.#options.legacy ?? false,
        defaultNetworkName: state.defaultNetworkName ?? this.#options.defaultNetworkName ?? defaultNetworkName,
        podIPs,
      });
      desired = { annotation: status.annotation, value: status.value };
    }
    const fingerprint = `${desired.annotation}\n${desired.value}`;
    if (state.written === fingerprint) return;
    await this.#write(pod, uid, desired.annotation, desired.value);
    state.written = fingerprint;
  }

  #attach(pod: PodJson, state: PodState, selections: NetworkSelection[]) {
    const wanted = new Set<string>();
    state.missing.clear();
    for (const [index, selection] of selections.entries()) {
      const slot = attachmentSlot(index, selection);
      wanted.add(slot);
      if (state.attachments.has(slot)) continue;
      const key = nadKey(selection.namespace, selection.name);
      const nad = this.#nad(key);
      if (!nad) {
        state.missing.add(key);
        this.#report(pod, state, { network: key, reason: "NetworkNotFound", message: `cannot find a network-attachment-definition (${selection.name}) in namespace (${selection.namespace})` });
        continue;
      }
      if ("error" in nad) {
        this.#report(pod, state, { network: key, reason: "InvalidConfig", message: nad.error });
        continue;
      }
      try {
        const addresses = this.#options.allocator.allocate(owner(state.uid), slot, nad.ipam, selection.ips ?? []);
        state.attachments.set(slot, { nad: key, summary: nad.summary, ipam: nad.ipam, addresses });
      } catch (error) {
        if (!(error instanceof IpamError)) throw error;
        this.#report(pod, state, { network: key, reason: "AllocationFailed", message: error.message });
      }
    }
    for (const slot of state.attachments.keys()) {
      if (wanted.has(slot)) continue;
      this.#options.allocator.release(owner(state.uid), slot);
      state.attachments.delete(slot);
    }
  }

  async #write(pod: PodJson, uid: string, annotation: string, value: string) {
    const namespace = pod.metadata?.namespace ?? "";
    const name = pod.metadata?.name ?? "";
    const startedAt = this.#clock.now();
    try {
      // Multus updates the pod through its status subresource; the uid makes a pod recreated under the same name refuse the patch.
      await this.#options.clients.core.patchNamespacedPodStatus(
        { namespace, name, body: { metadata: { uid, annotations: { [annotation]: value } } } },
        mergePatch,
      );
    } catch (error) {
      if (isNotFound(error) || isConflict(error)) return;
      throw error;
    }
    const writtenAt = this.#clock.now();
    this.#log?.debug({ key: `${namespace}/${name}`, annotation, ms: writtenAt - startedAt }, "network-status written");
    this.#options.onAnnotationWritten?.({ namespace, name, uid, annotation, value, startedAt, writtenAt });
  }

  #nad(key: string): { summary: NadSummary; ipam: IpamConfig } | { error: string } | undefined {
    const object = this.#options.nads.get(key);
    if (!object) return undefined;
    const resourceVersion = object.metadata?.resourceVersion;
    const cached = this.#parsedNads.get(key);
    if (cached && cached.resourceVersion === resourceVersion) return cached;
    let parsed: ParsedNad;
    try {
      if (!object.spec?.config) throw new IpamConfigError("spec.config is empty");
      const config = parseNetworkConfig(object.spec.config);
      parsed = { resourceVersion, summary: config.name === undefined ? {} : { cniName: config.name }, ipam: config.ipam };
    } catch (error) {
      if (!(error instanceof IpamConfigError)) throw error;
      parsed = { resourceVersion, error: `network-attachment-definition ${key}: ${error.message}` };
    }
    this.#parsedNads.set(key, parsed);
    return parsed;
  }

  #report(pod: PodJson, state: PodState, error: Omit<AttachmentError, "namespace" | "name">) {
    const seen = `${error.reason}/${error.network}/${error.message}`;
    if (state.reported.has(seen)) return;
    state.reported.add(seen);
    const event = { namespace: pod.metadata?.namespace ?? "", name: pod.metadata?.name ?? "", ...error };
    this.#log?.warn(event, "attachment left out");
    this.#options.onAttachmentError?.(event);
  }

  #retryPodsWaitingFor(nad: string) {
    for (const [key, state] of this.#states) if (state.missing.has(nad)) this.#queue.add(key);
  }

  #concerns(key: string, pod: PodJson): boolean {
    return this.#onSimulatedNode(pod) && (pod.metadata?.annotations?.[networksAnnotation] !== undefined || this.#states.has(key));
  }

  #onSimulatedNode(pod: PodJson): boolean {
    const nodeName = pod.spec?.nodeName;
    return nodeName !== undefined && this.#options.isSimulatedNode(nodeName);
  }

  #state(key: string, uid: string): PodState {
    let state = this.#states.get(key);
    if (state?.uid !== uid) {
      if (state) this.#forget(key, state.uid);
      state = { uid, attachments: new Map(), missing: new Set(), reported: new Set() };
      this.#states.set(key, state);
    }
    return state;
  }

  // The CNI DEL: addresses go back to the pool once the pod is gone.
  #forget(key: string, uid: string | undefined) {
    const state = this.#states.get(key);
    if (!state || (uid !== undefined && state.uid !== uid)) return;
    this.#options.allocator.release(owner(state.uid));
    this.#states.delete(key);
  }
}

function owner(uid: string): string {
  return `multus/${uid}`;
}

function podIPsOf(pod: PodJson): string[] {
  const ips = pod.status?.podIPs?.map((entry) => entry.ip) ?? [];
  return ips.length > 0 ? ips : pod.status?.podIP ? [pod.status.podIP] : [];
}
