import t from "tap";
import { labels } from "../../common/api.ts";
import { heartbeatLease } from "../../node-agent/heartbeat.ts";
import { ProgressMonitor } from "../../node-agent/progress.ts";

t.test("the heartbeat is a Lease named after the node, labelled, owned by the Node, renewed now", async (t) => {
  t.same(heartbeatLease("node-1", "netservice-system", "uid-1", Date.UTC(2026, 0, 2, 3, 4, 5, 6), 40), {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: {
      name: "node-1",
      namespace: "netservice-system",
      labels: { [labels.agentHeartbeat]: "true", [labels.nodeName]: "node-1" },
      ownerReferences: [{ apiVersion: "v1", kind: "Node", name: "node-1", uid: "uid-1" }],
    },
    spec: { holderIdentity: "netservice-agent-node-1", leaseDurationSeconds: 40, renewTime: "2026-01-02T03:04:05.006000Z" },
  });
});

t.test("the agent is stalled when work waits, or one recompute runs, longer than the limit; never when idle or in backoff", async (t) => {
  // Each row is a sequence of samples from one monitor; `stalled` is the verdict of the last.
  const rows: { name: string; samples: { now: number; queued: number; inFlightSince?: number }[]; stalled: boolean; reason?: string }[] = [
    { name: "idle for ever", samples: [{ now: 0, queued: 0 }, { now: 1e9, queued: 0 }], stalled: false },
    { name: "work due, just seen", samples: [{ now: 1e9, queued: 1 }], stalled: false },
    { name: "work due for 120 s", samples: [{ now: 0, queued: 1 }, { now: 120_000, queued: 1 }], stalled: false },
    { name: "work due for longer, nothing started", samples: [{ now: 0, queued: 1 }, { now: 120_001, queued: 1 }], stalled: true },
    {
      name: "work due for 130 s, on a clock far from zero",
      samples: [{ now: 5e9, queued: 1 }, { now: 5e9 + 130_400, queued: 2 }],
      stalled: true,
      reason: "work has waited 130 s with no recompute started",
    },
    {
      name: "work due, then taken, then due again",
      samples: [{ now: 0, queued: 1 }, { now: 60_000, queued: 0, inFlightSince: 59_000 }, { now: 150_000, queued: 1 }],
      stalled: false,
    },
    { name: "a recompute running 2 min", samples: [{ now: 120_000, queued: 0, inFlightSince: 0 }], stalled: false },
    { name: "a recompute hung", samples: [{ now: 120_001, queued: 1, inFlightSince: 0 }], stalled: true },
    { name: "a recompute running 100 s, on a clock far from zero", samples: [{ now: 5e9 + 100_000, queued: 0, inFlightSince: 5e9 }], stalled: false },
    {
      name: "a recompute running 150 s, on a clock far from zero",
      samples: [{ now: 5e9 + 150_000, queued: 0, inFlightSince: 5e9 }],
      stalled: true,
      reason: "one recompute of the node's report has run for 150 s",
    },
    { name: "queue emptied (work waits out a backoff, not counted as due)", samples: [{ now: 0, queued: 1 }, { now: 200_000, queued: 0 }], stalled: false },
  ];
  for (const row of rows) {
    const monitor = new ProgressMonitor({ stallAfterMs: 120_000 });
    let verdict = monitor.sample(row.samples[0]!);
    for (const sample of row.samples.slice(1)) verdict = monitor.sample(sample);
    t.equal(verdict.stalled, row.stalled, row.name);
    if (verdict.stalled) t.match(verdict.reason, /\d+ s/, `${row.name}: says for how long`);
    if (row.reason !== undefined) t.same(verdict, { stalled: true, reason: row.reason }, `${row.name}: the reason`);
  }
});

t.test("/healthz answers 503 with the reason while the program says it is stalled, /readyz is unaffected", async (t) => {
  const { Registry } = await import("prom-client");
  const { serveHealth } = await import("../../common/health-server.ts");
  const { createLogger } = await import("../../common/log.ts");
  let stalled: string | undefined;
  const server = await serveHealth({ port: 0, ready: () => true, stalled: () => stalled, registry: new Registry(), logger: createLogger("test") });
  t.teardown(() => server.close());
  const get = async (path: string) => {
    const response = await fetch(`http://127.0.0.1:${server.port}${path}`);
    return [response.status, await response.text()];
  };
  t.same(await get("/healthz"), [200, "ok\n"]);
  stalled = "work has waited 130 s with no recompute started";
  t.same(await get("/healthz"), [503, "stalled: work has waited 130 s with no recompute started\n"]);
  t.same(await get("/readyz"), [200, "ok\n"]);
});
