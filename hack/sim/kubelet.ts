// A fake kubelet for every simulated node at once: one cluster-wide pod
// watch (shared, filtered by spec.nodeName), one de-duplicating queue with a
// bounded number of status writes in flight. A pod bound to a simulated node
// (by kube-scheduler or spec.nodeName) gets a sandbox from the pluggable
// runtime (sandbox.ts: the fake Multus by default, or real Multus), whose
// addresses become its pod IPs, then one status write: Running, Ready,
// container statuses. Readiness can be flipped; a deleted pod's sandbox is
// torn down once its grace period has passed, then the pod is removed for
// good.
//
//   const kubelet = new FakeKubelet({ clients, pods, nodes, sandbox });
//   kubelet.start();
//   await kubelet.setReady("default", "utils-0", false);
//   kubelet.powerOff("sim-node-1"); kubelet.powerOn("sim-node-1");
//   await kubelet.stop();
//
// Node heartbeats are off unless heartbeatIntervalMs is set: the local
// control plane runs no node-lifecycle controller, so nothing reads them, and
// 1,000 nodes would add 100 writes a second to every benchmark.
import {
  AwaitableQueue,
  isConflict,
  isNotFound,
  podKey,
  realClock,
  rfc3339,
  strategicMergePatch,
  type Clock,
  type SimClients,
  type Logger,
  type ObjectSource,
  type PodJson,
  type Timer,
} from "./kube.ts";
import type { NodeRegistry, SimNode } from "./nodes.ts";
import { isReady, readinessStatus, runningStatus } from "./pod-status.ts";
import type { SandboxRuntime } from "./sandbox.ts";

export type StatusWritten = {
  namespace: string;
  name: string;
  uid: string;
  nodeName: string;
  /** True for the write that made the pod Running, false for a readiness change. */
  started: boolean;
  ready: boolean;
  podIPs: string[];
  /** Clock milliseconds when the write was sent and when the API server confirmed it. */
  startedAt: number;
  writtenAt: number;
};

export type PodRemoved = { namespace: string; name: string; uid: string; startedAt: number; writtenAt: number };

export type FakeKubeletOptions = {
  clients: Pick<SimClients, "core">;
  pods: ObjectSource<PodJson>;
  nodes: NodeRegistry;
  /** Sets up and tears down the pods' networks; its addresses are the pod IPs. */
  sandbox: SandboxRuntime;
  /** Readiness of a pod when it starts. Default: ready. */
  initialReady?: (pod: PodJson) => boolean;
  clock?: Clock;
  logger?: Logger;
  /** Status writes and deletions in flight at once. Default 16. */
  workers?: number;
  /** Wait at most this long for a deleted pod's grace period (tests and benchmarks that churn pods). Default: the full period. */
  maxGracePeriodMs?: number;
  /** Update each node's Ready condition heartbeat this often; 0 (default) never. */
  heartbeatIntervalMs?: number;
  onStatusWritten?: (event: StatusWritten) => void;
  onPodRemoved?: (event: PodRemoved) => void;
};

type PodState = {
  uid: string;
  podIPs?: string[];
  /** The sandbox's set-up, once started (or adopted): a tear-down waits for it. */
  sandbox?: Promise<unknown>;
  /** The tear-down, once started: it happens once per pod. */
  tornDown?: Promise<void>;
  ready: boolean;
  /** What the API server last confirmed from us; undefined until the pod runs. */
  written?: { ready: boolean; startTime: string };
  deletion?: { deadline: number; timer: Timer };
  removed?: boolean;
  /** Compare the pod's readiness on the API server with ours on the next reconcile (after a power-off). */
  recheck?: boolean;
};

export class FakeKubelet {
  readonly #options: FakeKubeletOptions;
  readonly #clock: Clock;
  readonly #log: Logger | undefined;
  readonly #queue: AwaitableQueue;
  readonly #states = new Map<string, PodState>();
  /** Tear-downs in flight, by pod key, so that stop() waits for them. */
  readonly #tearDowns = new Map<Promise<void>, string>();
  #unsubscribe: (() => void) | undefined;
  #heartbeat: Timer | undefined;
  #beating = false;
  /** Nodes powered off: no heartbeats, no pod status writes. */
  readonly #off = new Set<string>();

  constructor(options: FakeKubeletOptions) {
    this.#options = options;
    this.#clock = options.clock ?? realClock;
    this.#log = options.logger?.child({ component: "fake-kubelet" });
    this.#queue = new AwaitableQueue({
      workers: options.workers ?? 16,
      handler: (key) => this.#reconcile(key),
      clock: this.#clock,
      ...(this.#log ? { logger: this.#log } : {}),
    });
  }

  /** Subscribes to pod events and starts the workers (and heartbeats, if asked for). */
  start(): void {
    if (this.#unsubscribe) return;
    this.#unsubscribe = this.#options.pods.onChange((event) => {
      if (event.type === "delete") this.#forget(event.key, event.object);
      else if (this.#node(event.object)) this.#admit(event.key, event.object);
    });
    this.#queue.start();
    this.resync();
    this.#scheduleHeartbeat();
  }

  /** Stops watching, writing and every timer, and waits for tear-downs in flight; pods keep the status they have. */
  async stop(): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#heartbeat?.cancel();
    this.#heartbeat = undefined;
    for (const state of this.#states.values()) state.deletion?.timer.cancel();
    await this.#queue.stop();
    await Promise.all(this.#tearDowns.keys());
  }

  /** What a stop waits for: pods being reconciled (a sandbox set-up, a status write) and sandbox tear-downs. */
  inFlight(): string[] {
    return [
      ...this.#queue.inFlight().map((key) => `reconcile of pod ${key}`),
      ...[...this.#tearDowns.values()].map((key) => `sandbox tear-down of pod ${key}`),
    ];
  }

  /** Pods of nodes added after start() are picked up on their next event; this catches the ones already there. */
  resync(): void {
    for (const pod of this.#options.pods.list()) if (this.#node(pod)) this.#admit(podKey(pod), pod);
  }

  /**
   * The node goes dark, as if powered off: its heartbeats stop (so the node
   * lifecycle controller, if it runs, marks it Unknown and its pods not
   * ready) and its pods' status is no longer written.
   */
  powerOff(nodeName: string): void {
    this.#off.add(nodeName);
  }

  /** The node is back: heartbeats say Ready again, and its pods' status is written as the kubelet sees it. */
  powerOn(nodeName: string): void {
    this.#off.delete(nodeName);
    for (const pod of this.#options.pods.list()) {
      if (pod.spec?.nodeName === nodeName) this.#state(podKey(pod), pod).recheck = true;
    }
    this.resync();
  }

  /** Makes the pod's containers (and so the pod) ready or not; resolves once the API server has the new status. */
  async setReady(namespace: string, name: string, ready: boolean): Promise<void> {
    const key = `${namespace}/${name}`;
    const pod = this.#options.pods.get(key);
    if (!pod || !this.#node(pod)) throw new Error(`pod ${key} is not on a simulated node`);
    this.#state(key, pod).ready = ready;
    await this.#queue.addAndWait(key);
  }

  // In the informer's event handler: a pod that already runs holds its addresses before any new pod is given one.
  #admit(key: string, pod: PodJson) {
    this.#state(key, pod);
    this.#queue.add(key);
  }

  async #reconcile(key: string): Promise<void> {
    const pod = this.#options.pods.get(key);
    const node = pod && this.#node(pod);
    if (!pod || !node || pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed") return;
    if (this.#off.has(node.name)) return;
    const state = this.#state(key, pod);
    if (state.removed) return;
    if (pod.metadata?.deletionTimestamp) {
      await this.#terminate(key, pod, state);
      return;
    }
    if (state.tornDown) return;
    if (!state.podIPs) {
      const podIPs = await this.#setUpSandbox(pod, node, state);
      if (!podIPs) return;
      state.podIPs = podIPs;
    }
    // After a power-off the node lifecycle controller may have marked the pod not ready: the kubelet puts its own status back.
    const overwritten = state.recheck === true && isReady(pod) !== state.ready;
    state.recheck = false;
    if (state.written?.ready === state.ready && !overwritten) return;
    const starting = state.written === undefined;
    const now = this.#clock.now();
    const status = starting
      ? runningStatus(pod, { podIPs: state.podIPs, hostIPs: node.addresses, ready: state.ready, now })
      : readinessStatus(pod, state.ready, now, state.written?.startTime ?? "");
    const ready = state.ready;
    if (!(await this.#patchStatus(pod, status))) return;
    state.written = { ready, startTime: starting ? String(status.startTime) : state.written?.startTime ?? "" };
    this.#options.onStatusWritten?.({
      namespace: pod.metadata?.namespace ?? "",
      name: pod.metadata?.name ?? "",
      uid: state.uid,
      nodeName: node.name,
      started: starting,
      ready,
      podIPs: state.podIPs,
      startedAt: now,
      writtenAt: this.#clock.now(),
    });
  }

  async #patchStatus(pod: PodJson, status: Record<string, unknown>): Promise<boolean> {
    try {
      // The uid makes a pod recreated under the same name refuse a status meant for its predecessor.
      await this.#options.clients.core.patchNamespacedPodStatus(
        { namespace: pod.metadata?.namespace ?? "", name: pod.metadata?.name ?? "", body: { metadata: { uid: pod.metadata?.uid }, status } },
        strategicMergePatch,
      );
      return true;
    } catch (error) {
      if (isNotFound(error) || isConflict(error)) return false;
      throw error;
    }
  }

  // Graceful deletion: the containers get deletionGracePeriodSeconds to stop,
  // then the kubelet removes the pod for good (grace 0, only this very pod).
  async #terminate(key: string, pod: PodJson, state: PodState) {
    const now = this.#clock.now();
    // Fixed when first seen; a second delete with a shorter grace period brings it forward.
    const grace = Math.min((pod.metadata?.deletionGracePeriodSeconds ?? 0) * 1000, this.#options.maxGracePeriodMs ?? Infinity);
    const deadline = Math.min(state.deletion?.deadline ?? Infinity, now + grace);
    if (now < deadline) {
      if (state.deletion?.deadline !== deadline) {
        state.deletion?.timer.cancel();
        state.deletion = { deadline, timer: this.#clock.setTimer(() => this.#queue.add(key), deadline - now) };
      }
      return;
    }
    // The containers have stopped: the runtime stops the sandbox (CNI DEL) before the pod object goes.
    await this.#tearDown(pod, state, false);
    const namespace = pod.metadata?.namespace ?? "";
    const name = pod.metadata?.name ?? "";
    const startedAt = this.#clock.now();
    try {
      await this.#options.clients.core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0, body: { gracePeriodSeconds: 0, preconditions: { uid: state.uid } } });
    } catch (error) {
      if (!isNotFound(error) && !isConflict(error)) throw error;
    }
    state.removed = true;
    this.#options.onPodRemoved?.({ namespace, name, uid: state.uid, startedAt, writtenAt: this.#clock.now() });
  }

  // No await before the runtime's call: a delete event seen after the pod was
  // read from the cache finds the set-up started and tears down after it.
  async #setUpSandbox(pod: PodJson, node: SimNode, state: PodState): Promise<string[] | undefined> {
    if (pod.spec?.hostNetwork) return [...node.addresses];
    const setUp = this.#options.sandbox.setUpSandbox(pod, node);
    state.sandbox = setUp;
    return setUp;
  }

  // After the pod's set-up (if one is in flight) has finished: once when its
  // grace period ends, and once more when it has left the API server. A
  // failure is logged: the pod goes anyway, as a kubelet's would once the
  // runtime gives up, and the runtime removes what is left when it stops.
  #tearDown(pod: PodJson, state: PodState, removed: boolean): Promise<void> {
    if (!state.sandbox) return Promise.resolve();
    if (state.tornDown && !removed) return state.tornDown;
    const previous = state.tornDown ?? state.sandbox.catch(() => undefined);
    const tearDown = previous
      .then(() => this.#options.sandbox.tearDownSandbox(pod, { removed }))
      .catch((error: unknown) => this.#log?.error({ key: podKey(pod), err: error }, "sandbox tear-down failed"));
    state.tornDown = tearDown;
    this.#tearDowns.set(tearDown, podKey(pod));
    void tearDown.finally(() => this.#tearDowns.delete(tearDown));
    return tearDown;
  }

  #state(key: string, pod: PodJson): PodState {
    const uid = pod.metadata?.uid ?? "";
    let state = this.#states.get(key);
    if (state?.uid === uid) return state;
    // A pod of the same name replaced the one we knew, whose delete event was missed: that one is gone.
    if (state) this.#forget(key, { metadata: { namespace: pod.metadata?.namespace ?? "", name: pod.metadata?.name ?? "", uid: state.uid } });
    state = { uid, ready: this.#options.initialReady?.(pod) ?? true };
    this.#adopt(pod, state);
    this.#states.set(key, state);
    return state;
  }

  // A pod that already runs (started by an earlier simulation process) keeps its addresses and status.
  #adopt(pod: PodJson, state: PodState) {
    const podIPs = pod.status?.podIPs?.map((entry) => entry.ip) ?? [];
    if (pod.status?.phase !== "Running" || podIPs.length === 0) return;
    if (!pod.spec?.hostNetwork) {
      this.#options.sandbox.adoptSandbox?.(pod, podIPs);
      state.sandbox = Promise.resolve();
    }
    state.podIPs = podIPs;
    state.ready = isReady(pod);
    state.written = { ready: state.ready, startTime: pod.status?.startTime ?? "" };
  }

  // The pod has left the API server (or a pod of the same name replaced it).
  #forget(key: string, pod: PodJson) {
    const state = this.#states.get(key);
    const uid = pod.metadata?.uid;
    if (!state || (uid !== undefined && state.uid !== uid)) return;
    state.deletion?.timer.cancel();
    this.#states.delete(key);
    void this.#tearDown(pod, state, true);
  }

  #node(pod: PodJson): SimNode | undefined {
    const nodeName = pod.spec?.nodeName;
    return nodeName === undefined ? undefined : this.#options.nodes.get(nodeName);
  }

  #scheduleHeartbeat() {
    const interval = this.#options.heartbeatIntervalMs ?? 0;
    if (interval <= 0 || !this.#unsubscribe) return;
    this.#heartbeat = this.#clock.setTimer(() => {
      void this.#beat().finally(() => this.#scheduleHeartbeat());
    }, interval);
  }

  // Only the Ready condition moves (its heartbeat, and its status back to True
  // after the node lifecycle controller set Unknown); strategic merge keys
  // conditions by type.
  async #beat() {
    if (this.#beating) return;
    this.#beating = true;
    try {
      const heartbeat = rfc3339(this.#clock.now());
      const nodes = this.#options.nodes.list().filter((node) => !this.#off.has(node.name));
      for (let i = 0; i < nodes.length && this.#unsubscribe; i += 8) {
        await Promise.all(nodes.slice(i, i + 8).map((node) =>
          this.#options.clients.core
            .patchNodeStatus({ name: node.name, body: { status: { conditions: [{ type: "Ready", status: "True", reason: "KubeletReady", lastHeartbeatTime: heartbeat }] } } }, strategicMergePatch)
            .catch((err: unknown) => this.#log?.warn({ node: node.name, err }, "heartbeat failed")),
        ));
      }
    } finally {
      this.#beating = false;
    }
  }
}
