// The fake kubelet and its pluggable sandbox runtime: the pod IPs are the
// sandbox's, a sandbox goes when the pod's grace period ends and the runtime
// hears again once the pod has left the API server, and set-up and
// tear-down of one pod never overlap. In memory: a pod cache the test
// drives, a recording runtime, a fake API that only records writes.
import t, { type Test } from "tap";
import { FakeKubelet } from "../../hack/sim/kubelet.ts";
import type { ObjectSource, PodJson } from "../../hack/sim/kube.ts";
import { NodeRegistry, simNode, type SimNode } from "../../hack/sim/nodes.ts";
import type { SandboxRuntime } from "../../hack/sim/sandbox.ts";
import { eventually, expect } from "../helpers/eventually.ts";

type Event = { type: "add" | "update" | "delete"; key: string; object: PodJson };

/** The informer's part the kubelet reads: a cache the test writes, with change events. */
class Pods implements ObjectSource<PodJson> {
  readonly synced = Promise.resolve();
  readonly #pods = new Map<string, PodJson>();
  readonly #handlers = new Set<(event: Event) => void>();
  get(key: string) {
    return this.#pods.get(key);
  }
  list() {
    return [...this.#pods.values()];
  }
  onChange(handler: (event: Event) => void) {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }
  set(pod: PodJson) {
    const key = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
    const type = this.#pods.has(key) ? "update" : "add";
    this.#pods.set(key, pod);
    for (const handler of this.#handlers) handler({ type, key, object: pod });
  }
  delete(pod: PodJson) {
    const key = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
    this.#pods.delete(key);
    for (const handler of this.#handlers) handler({ type: "delete", key, object: pod });
  }
}

/** A runtime that records every call; set-ups wait for `release` when `hold` is set. */
class RecordingRuntime implements SandboxRuntime {
  readonly calls: string[] = [];
  hold = false;
  failures = 0;
  #waiting: (() => void)[] = [];
  async setUpSandbox(pod: PodJson, node: SimNode): Promise<string[]> {
    this.calls.push(`setUp ${pod.metadata?.uid} on ${node.name}`);
    if (this.hold) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    if (this.failures > 0) {
      this.failures--;
      this.calls.push(`setUp ${pod.metadata?.uid} failed`);
      throw new Error("CNI ADD failed");
    }
    this.calls.push(`setUp ${pod.metadata?.uid} done`);
    return ["10.99.0.7", "fd00:99::7"];
  }
  async tearDownSandbox(pod: PodJson, stage: { removed: boolean }): Promise<void> {
    this.calls.push(`tearDown ${pod.metadata?.uid}${stage.removed ? " removed" : ""}`);
  }
  release() {
    for (const resolve of this.#waiting.splice(0)) resolve();
  }
}

function setUp(t: Test) {
  const pods = new Pods();
  const runtime = new RecordingRuntime();
  const nodes = new NodeRegistry();
  nodes.add(simNode(0));
  const statuses: { uid: string; podIPs: string[] }[] = [];
  const deletes: string[] = [];
  const core = {
    patchNamespacedPodStatus: async (request: { body: { metadata: { uid: string }; status: { podIPs?: { ip: string }[] } } }) => {
      if (request.body.status.podIPs) statuses.push({ uid: request.body.metadata.uid, podIPs: request.body.status.podIPs.map((p) => p.ip) });
      return {};
    },
    deleteNamespacedPod: async (request: { body: { preconditions: { uid: string } } }) => {
      runtime.calls.push(`delete ${request.body.preconditions.uid}`);
      deletes.push(request.body.preconditions.uid);
      return {};
    },
  };
  const kubelet = new FakeKubelet({ clients: { core } as never, pods, nodes, sandbox: runtime, maxGracePeriodMs: 0 });
  kubelet.start();
  t.teardown(() => kubelet.stop());
  return { pods, runtime, statuses, deletes, kubelet };
}

const pod = (uid: string, extra: Partial<NonNullable<PodJson["metadata"]>> = {}, spec: Partial<NonNullable<PodJson["spec"]>> = {}): PodJson => ({
  metadata: { namespace: "default", name: "utils-0", uid, ...extra },
  spec: { nodeName: "sim-node-0", containers: [{ name: "utils" }], ...spec },
  status: { phase: "Pending" },
});

t.test("a pod's IPs are the ones its sandbox set-up returned", async (t) => {
  const { pods, runtime, statuses } = setUp(t);
  pods.set(pod("u1"));
  await eventually(() => expect(statuses.length === 1, "no status written"));
  t.same(statuses[0], { uid: "u1", podIPs: ["10.99.0.7", "fd00:99::7"] });
  t.same(runtime.calls, ["setUp u1 on sim-node-0", "setUp u1 done"], "one set-up, on the pod's node");
});

t.test("a deleted pod's sandbox is torn down when its grace period ends, before the pod object goes, and again once it has left", async (t) => {
  const { pods, runtime } = setUp(t);
  pods.set(pod("u1"));
  await eventually(() => expect(runtime.calls.includes("setUp u1 done"), "not set up"));
  pods.set(pod("u1", { deletionTimestamp: "2026-11-28T09:30:15Z", deletionGracePeriodSeconds: 30 }));
  await eventually(() => expect(runtime.calls.includes("delete u1"), "not deleted"));
  pods.delete(pod("u1"));
  await eventually(() => expect(runtime.calls.includes("tearDown u1 removed"), "not told of the removal"));
  t.same(runtime.calls, ["setUp u1 on sim-node-0", "setUp u1 done", "tearDown u1", "delete u1", "tearDown u1 removed"]);
});

t.test("a pod deleted while its sandbox is being set up is torn down after the set-up, never during it", async (t) => {
  const { pods, runtime, kubelet } = setUp(t);
  runtime.hold = true;
  pods.set(pod("u1"));
  await eventually(() => expect(runtime.calls.length === 1, "set-up not started"));
  pods.delete(pod("u1"));
  // The tear-down is scheduled at once (the delete event) and waits on the set-up: no sleep decides this.
  t.ok(kubelet.inFlight().includes("sandbox tear-down of pod default/utils-0"), "the tear-down is pending");
  for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
  t.same(runtime.calls, ["setUp u1 on sim-node-0"], "no tear-down while the set-up runs");
  runtime.release();
  await eventually(() => expect(runtime.calls.includes("tearDown u1 removed"), "not torn down"));
  t.same(runtime.calls, ["setUp u1 on sim-node-0", "setUp u1 done", "tearDown u1 removed"]);
});

t.test("a failed set-up is tried again; a pod that never had a sandbox is not torn down", async (t) => {
  const { pods, runtime, statuses, kubelet } = setUp(t);
  runtime.failures = 1;
  pods.set(pod("u1"));
  await eventually(() => expect(statuses.length === 1, "no status written"));
  t.same(runtime.calls, ["setUp u1 on sim-node-0", "setUp u1 failed", "setUp u1 on sim-node-0", "setUp u1 done"]);

  pods.set(pod("h1", { name: "host" }, { hostNetwork: true }));
  await eventually(() => expect(statuses.length === 2, "host-network pod has no status"));
  t.same(statuses[1], { uid: "h1", podIPs: ["172.20.0.1", "fd00:172:20::1"] }, "a host-network pod has its node's addresses");
  pods.delete(pod("h1", { name: "host" }, { hostNetwork: true }));
  // The delete event is handled synchronously: a tear-down would be in flight now.
  t.notOk(kubelet.inFlight().some((what) => what.includes("default/host")), "nothing is torn down for it");
  t.notOk(runtime.calls.some((call) => call.includes("h1")), "and no sandbox at all");
});
