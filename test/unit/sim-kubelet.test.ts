import t from "tap";
import { rfc3339, type PodJson } from "../../hack/sim/kube.ts";
import { defaultLayout, nodeManifest, nodeStatus, simNode } from "../../hack/sim/nodes.ts";
import { isReady, readinessStatus, runningStatus } from "../../hack/sim/pod-status.ts";

const rfc3339Pattern = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
const now = Date.UTC(2026, 10, 28, 9, 30, 15, 678);

t.test("API times are RFC 3339 in UTC with whole seconds, as metav1.Time writes them", async (t) => {
  t.equal(rfc3339(now), "2026-11-28T09:30:15Z");
});

t.test("node i gets the i-th /24 and /64 of the pod ranges and its own addresses", async (t) => {
  t.same(simNode(3), { name: "sim-node-3", index: 3, podCIDRs: ["10.244.3.0/24", "fd00:10:244:3::/64"], addresses: ["172.20.0.4", "fd00:172:20::4"], zone: "zone-a" });
  t.same(simNode(300).podCIDRs, ["10.245.44.0/24", "fd00:10:244:12c::/64"], "past 255 the IPv4 ranges carry into the next /16");
  t.equal(simNode(1023).podCIDRs[0], "10.247.255.0/24", "room for 1,024 nodes");
  t.throws(() => simNode(1024), /no \/24 left/);
  t.same(simNode(5, { ...defaultLayout, ipFamilies: ["IPv4"] }).podCIDRs, ["10.244.5.0/24"], "single-stack layout");
  const manifest = nodeManifest(simNode(3));
  t.equal(manifest.spec?.podCIDR, "10.244.3.0/24");
  t.same(manifest.spec?.podCIDRs, ["10.244.3.0/24", "fd00:10:244:3::/64"]);
  t.equal(manifest.spec?.taints, undefined, "no taints");
});

t.test("node status: Ready, no pressure, room for 110 pods, API time format", async (t) => {
  const status = nodeStatus(simNode(0), defaultLayout, now) as {
    conditions: { type: string; status: string; lastHeartbeatTime: string; lastTransitionTime: string }[];
    capacity: Record<string, string>;
    addresses: { type: string; address: string }[];
  };
  t.same(status.conditions.map((c) => `${c.type}=${c.status}`), ["MemoryPressure=False", "DiskPressure=False", "PIDPressure=False", "Ready=True"]);
  t.ok(status.conditions.every((c) => rfc3339Pattern.test(c.lastHeartbeatTime) && rfc3339Pattern.test(c.lastTransitionTime)));
  t.equal(status.capacity.pods, "110");
  t.same(status.addresses, [{ type: "InternalIP", address: "172.20.0.1" }, { type: "InternalIP", address: "fd00:172:20::1" }, { type: "Hostname", address: "sim-node-0" }]);
});

const pod: PodJson = {
  metadata: { namespace: "default", name: "utils-0", uid: "u1", generation: 1 },
  spec: {
    nodeName: "sim-node-0",
    containers: [{ name: "utils", image: "ubuntu:latest" }, { name: "sidecar", image: "busybox:1" }],
    initContainers: [{ name: "init", image: "busybox:1" }],
  },
  status: { phase: "Pending", conditions: [{ type: "PodScheduled", status: "True" }] },
};

type Status = {
  phase: string;
  podIP: string;
  podIPs: { ip: string }[];
  hostIP: string;
  startTime: string;
  conditions: { type: string; status: string; reason?: string; message?: string; lastTransitionTime: string }[];
  containerStatuses: { name: string; ready: boolean; started: boolean; state: { running?: { startedAt: string } }; containerID: string }[];
  initContainerStatuses: { name: string; state: { terminated?: { exitCode: number; reason: string } } }[];
};

t.test("a started pod is Running, Ready, with its addresses and running containers", async (t) => {
  const status = runningStatus(pod, { podIPs: ["10.244.0.2", "fd00:10:244::2"], hostIPs: ["172.20.0.1"], ready: true, now }) as unknown as Status;
  t.equal(status.phase, "Running");
  t.equal(status.podIP, "10.244.0.2");
  t.same(status.podIPs, [{ ip: "10.244.0.2" }, { ip: "fd00:10:244::2" }]);
  t.equal(status.hostIP, "172.20.0.1");
  t.equal(status.startTime, "2026-11-28T09:30:15Z");
  t.same(status.conditions.map((c) => `${c.type}=${c.status}`), ["PodReadyToStartContainers=True", "Initialized=True", "Ready=True", "ContainersReady=True"], "the scheduler's PodScheduled is left alone");
  t.ok(isReady({ status: { conditions: status.conditions } }));
  t.same(status.containerStatuses.map((c) => [c.name, c.ready, c.started, c.state.running?.startedAt]), [
    ["utils", true, true, "2026-11-28T09:30:15Z"],
    ["sidecar", true, true, "2026-11-28T09:30:15Z"],
  ]);
  t.match(status.containerStatuses[0]?.containerID, /^containerd:\/\/[0-9a-f]{64}$/);
  t.same(status.initContainerStatuses.map((c) => c.state.terminated?.reason), ["Completed"]);

  const bound = runningStatus({ ...pod, status: {} }, { podIPs: ["10.244.0.3"], hostIPs: ["172.20.0.1"], ready: true, now }) as unknown as Status;
  t.ok(bound.conditions.some((c) => c.type === "PodScheduled" && c.status === "True"), "a pod created with nodeName gets PodScheduled from the kubelet");
});

t.test("an unready pod says which containers are not ready; a readiness flip keeps the start time", async (t) => {
  const status = runningStatus(pod, { podIPs: ["10.244.0.2"], hostIPs: ["172.20.0.1"], ready: false, now }) as unknown as Status;
  const ready = status.conditions.find((c) => c.type === "Ready");
  t.same([ready?.status, ready?.reason, ready?.message], ["False", "ContainersNotReady", "containers with unready status: [utils sidecar]"]);
  t.notOk(isReady({ status: { conditions: status.conditions } }));

  const flip = readinessStatus(pod, true, now + 60_000, "2026-11-28T09:30:15Z") as unknown as Status;
  t.same(flip.conditions.map((c) => [c.type, c.status, c.lastTransitionTime]), [["Ready", "True", "2026-11-28T09:31:15Z"], ["ContainersReady", "True", "2026-11-28T09:31:15Z"]]);
  t.same(flip.containerStatuses.map((c) => [c.ready, c.state.running?.startedAt]), [[true, "2026-11-28T09:30:15Z"], [true, "2026-11-28T09:30:15Z"]]);
  t.equal(Object.hasOwn(flip, "phase"), false, "only readiness changes");
});
