import t from "tap";
import { NodeLiveness, nodeHealth, slimHeartbeat, slimNode, type NodeView } from "../../aggregator/node-liveness.ts";

const rawNode = (options: { ready?: string; taints?: string[]; zone?: string; uid?: string } = {}) => ({
  apiVersion: "v1",
  kind: "Node",
  metadata: {
    name: "n1",
    uid: options.uid ?? "uid-n1",
    resourceVersion: "7",
    labels: { "kubernetes.io/hostname": "n1", ...(options.zone ? { "topology.kubernetes.io/zone": options.zone } : {}) },
    annotations: { "node.alpha.kubernetes.io/ttl": "0" },
  },
  spec: { podCIDR: "10.244.1.0/24", taints: (options.taints ?? []).map((key) => ({ key, effect: "NoExecute" })) },
  status: {
    conditions: options.ready ? [{ type: "MemoryPressure", status: "False" }, { type: "Ready", status: options.ready }] : [],
    images: [{ names: ["a-large-image"], sizeBytes: 1 }],
    capacity: { cpu: "8" },
  },
});

t.test("a Node is kept as name, uid, readiness, unreachable taint and zone only", async (t) => {
  t.same(slimNode(rawNode({ ready: "True", zone: "z1" })), {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: "n1", uid: "uid-n1", resourceVersion: "7" },
    ready: "True",
    unreachable: false,
    zone: "z1",
  });
  t.same(slimNode(rawNode({ taints: ["node.kubernetes.io/unreachable"] })), {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: "n1", uid: "uid-n1", resourceVersion: "7" },
    unreachable: true,
  });
});

t.test("a heartbeat Lease is kept as its renew time and the uid of the Node that owns it", async (t) => {
  const lease = {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: { name: "n1", uid: "l1", ownerReferences: [{ apiVersion: "v1", kind: "Node", name: "n1", uid: "uid-n1" }] },
    spec: { holderIdentity: "netservice-agent-n1", renewTime: "2026-01-01T00:00:00.000000Z", leaseDurationSeconds: 40 },
  };
  t.same(slimHeartbeat(lease), {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: { name: "n1", uid: "l1" },
    renewTime: "2026-01-01T00:00:00.000000Z",
    nodeUid: "uid-n1",
  });
});

t.test("node health: which Node and heartbeat states serve", async (t) => {
  const options = { heartbeatTimeoutMs: 40_000, startedAt: 0 };
  const fresh = { renewTime: "r", nodeUid: "uid-n1", observedAt: 100_000 };
  const cases: { name: string; node: NodeView; heartbeat?: typeof fresh; now: number; problem?: string; heartbeatTimeoutMs?: number }[] = [
    { name: "Ready with a fresh heartbeat", node: slimNode(rawNode({ ready: "True" })), heartbeat: fresh, now: 139_999 },
    { name: "no Ready condition yet (as the lifecycle controller, the benefit of the doubt)", node: slimNode(rawNode()), heartbeat: fresh, now: 100_000 },
    { name: "NotReady", node: slimNode(rawNode({ ready: "False" })), heartbeat: fresh, now: 100_000, problem: "NodeNotReady" },
    { name: "Unknown", node: slimNode(rawNode({ ready: "Unknown" })), heartbeat: fresh, now: 100_000, problem: "NodeNotReady" },
    {
      name: "Ready but tainted unreachable",
      node: slimNode(rawNode({ ready: "True", taints: ["node.kubernetes.io/unreachable"] })),
      heartbeat: fresh,
      now: 100_000,
      problem: "NodeUnreachable",
    },
    { name: "heartbeat 40 s old", node: slimNode(rawNode({ ready: "True" })), heartbeat: fresh, now: 140_000, problem: "AgentHeartbeatStale" },
    { name: "heartbeat of an earlier Node of the name", node: slimNode(rawNode({ ready: "True" })), heartbeat: { ...fresh, nodeUid: "uid-old" }, now: 100_000, problem: "AgentHeartbeatMissing" },
    { name: "no heartbeat within the timeout of starting", node: slimNode(rawNode({ ready: "True" })), now: 39_999 },
    { name: "no heartbeat since starting", node: slimNode(rawNode({ ready: "True" })), now: 40_000, problem: "AgentHeartbeatMissing" },
    { name: "heartbeats ignored (timeout 0)", node: slimNode(rawNode({ ready: "True" })), now: 1e9, heartbeatTimeoutMs: 0 },
  ];
  for (const each of cases) {
    const health = nodeHealth(each.node, each.heartbeat, each.now, { ...options, ...(each.heartbeatTimeoutMs !== undefined ? { heartbeatTimeoutMs: each.heartbeatTimeoutMs } : {}) });
    t.equal(health.serving, each.problem === undefined, each.name);
    t.equal(health.problem, each.problem, each.name);
    t.equal(health.uid, "uid-n1");
  }
});

t.test("the tracker reports a change of health once, from events and from time passing, and measures staleness on its own clock", async (t) => {
  const liveness = new NodeLiveness({ heartbeatTimeoutMs: 40_000, startedAt: 0 });
  const lease = (renewTime: string) => slimHeartbeat({ apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name: "n1", uid: "l", ownerReferences: [{ apiVersion: "v1", kind: "Node", name: "n1", uid: "uid-n1" }] }, spec: { renewTime } });
  t.ok(liveness.node("n1", slimNode(rawNode({ ready: "True", zone: "z" })), 0), "a new node is a change");
  t.notOk(liveness.node("n1", slimNode(rawNode({ ready: "True", zone: "z" })), 1000), "a heartbeat of the kubelet changes nothing we keep");
  t.notOk(liveness.heartbeat("n1", lease("2099-01-01T00:00:00.000000Z"), 5000), "the first heartbeat: still serving");
  t.same(liveness.expire(44_999), [], "fresh until 40 s after it was seen, whatever renewTime claims");
  t.same(liveness.expire(45_000), ["n1"], "stale");
  t.equal(liveness.health("n1", 45_000)?.problem, "AgentHeartbeatStale");
  t.same(liveness.unhealthy(45_000), [{ name: "n1", problem: "AgentHeartbeatStale" }]);
  t.same(liveness.expire(46_000), [], "reported once");
  t.notOk(liveness.heartbeat("n1", lease("2099-01-01T00:00:00.000000Z"), 50_000), "the same renewTime again is no renewal");
  t.ok(liveness.heartbeat("n1", lease("2026-01-01T00:00:10.000000Z"), 50_000), "renewed: serving again");
  t.equal(liveness.health("n1", 50_000)?.serving, true);
  t.ok(liveness.node("n1", slimNode(rawNode({ ready: "Unknown", zone: "z" })), 51_000), "NotReady is a change at once");
  t.ok(liveness.node("n1", slimNode(rawNode({ ready: "True", zone: "z" })), 52_000), "and back");
  t.ok(liveness.node("n1", undefined, 53_000), "deleted");
  t.equal(liveness.health("n1", 53_000), undefined);
});
