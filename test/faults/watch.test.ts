// Watches and answers going wrong between the programs and the API server,
// with pods churning throughout. Each program talks to the API server through
// its own proxy (support/proxy.ts), which can hold watches silent, end them,
// or answer 503.
//   - etcd compacted and the API server restarted: resuming watches get 410 Gone and relist;
//   - 503 for 40 s: backoff without a hot loop;
//   - watches silent without closing: the staleness guard (180 s) notices and relists.
import { setTimeout as delay } from "node:timers/promises";
import t from "tap";
import { eventually, expect } from "../helpers/eventually.ts";
import { assertCompared, assertHoldsExact, churnNamespace, FaultEnvironment } from "./support/environment.ts";
import type { Program } from "./support/programs.ts";
import type { ApiProxy } from "./support/proxy.ts";
import { recordResult, seconds } from "./support/results.ts";

const staleAfterSeconds = 180;

const env = await FaultEnvironment.start(t);
const proxied: { program: Program; proxy: ApiProxy }[] = [];
for (const node of env.nodes) {
  const proxy = await env.proxy();
  proxied.push({ program: await env.programs.agent(node, { server: proxy.url }), proxy });
}
const aggregatorProxy = await env.proxy();
const aggregator = await env.programs.aggregator("netservice-aggregator-a", { server: aggregatorProxy.url });
proxied.push({ program: aggregator, proxy: aggregatorProxy });
await env.populateAndConverge(24);

t.test("etcd compacted, the API server restarted: resumed watches get 410 Gone, relist and converge", async (t) => {
  const before = await env.admin.http.request<{ metadata: { resourceVersion: string } }>({ method: "GET", path: `/api/v1/namespaces/${churnNamespace}/pods` });
  const churn = env.churn();
  await churn.start();
  await delay(5000);
  const faultStart = Date.now();
  // Held open across the restart, then ended cleanly: each program resumes from its last resourceVersion.
  // Frozen before the compaction, and a write after the freeze, so that every resourceVersion a program
  // can resume from is older than the compacted revision (otherwise one that saw the newest event would
  // rightly resume without a 410).
  const held = proxied.reduce((sum, { proxy }) => sum + proxy.freezeOpenWatches(), 0);
  await env.applier.apply({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "compaction-marker", namespace: churnNamespace }, data: { at: String(Date.now()) } });
  const revision = await compactEtcd();
  await env.plane.restart("kube-apiserver", "SIGKILL");
  const gone = await directWatch(before.metadata.resourceVersion);
  t.match(gone, /410.*too old resource version/, `a watch from resourceVersion ${before.metadata.resourceVersion} now gets: ${gone}`);
  const ended = proxied.reduce((sum, { proxy }) => sum + proxy.endOpenWatches(), 0);
  const expired = await eventually(() => {
    const counts = proxied.map(({ program }) => ({ name: program.name, count: program.logged(/watch history expired/, faultStart).length }));
    expect(counts.every((c) => c.count > 0), `not every program saw 410: ${JSON.stringify(counts)}`);
    return counts;
  }, { timeoutMs: 60_000 });
  await delay(10_000);
  await churn.stop();
  const converged = await env.checker.waitForConvergence({ timeoutMs: 120_000 });
  assertCompared(t, converged.compared, "after convergence");
  await assertHoldsExact(t, env.checker);
  const total = expired.reduce((sum, c) => sum + c.count, 0);
  t.pass(`${held} watches held, ${ended} ended; 410 Gone seen by every program (${total} watches)`);
  recordResult(t, {
    scenario: "etcd compacted (to its current revision) and the API server restarted; watches resumed from old resourceVersions",
    load: churn.describe(),
    outcome: `compacted at revision ${revision}; ${ended} watches ended and resumed, ${total} answered 410 Gone ("too old resource version") and relisted; exact convergence`,
    convergeSeconds: converged.seconds,
    from: "churn stopped (10 s after the watches ended)",
  });
});

t.test("503 for 40 s from the API server's address: backoff without a hot loop, convergence afterwards", async (t) => {
  const failing = [proxied[0], proxied.at(-1)].filter((p): p is { program: Program; proxy: ApiProxy } => p !== undefined);
  const churn = env.churn();
  await churn.start();
  await delay(5000);
  const faultStart = Date.now();
  for (const { proxy } of failing) proxy.failWith(503);
  await delay(40_000);
  const faultEnd = Date.now();
  for (const { proxy } of failing) proxy.heal();
  await delay(5000);
  await churn.stop();
  const converged = await env.checker.waitForConvergence({ timeoutMs: 180_000 });
  assertCompared(t, converged.compared, "after convergence");
  await assertHoldsExact(t, env.checker);
  const faultSeconds = (faultEnd - faultStart) / 1000;
  const lines: string[] = [];
  for (const { program, proxy } of failing) {
    const requests = proxy.requests(faultStart, faultEnd);
    const rate = requests.length / faultSeconds;
    // Both ways: a program that went silent would make no request at all.
    t.ok(requests.length >= 2, `${program.name} kept trying: ${requests.length} requests during the fault`);
    t.same(requests.filter((r) => r.status !== 503), [], `${program.name}: every one was answered 503`);
    t.ok(rate <= 3, `${program.name} made ${requests.length} requests in ${seconds(faultSeconds)} s (${seconds(rate)}/s): no hot loop`);
    lines.push(`${program.name} ${requests.length}`);
  }
  recordResult(t, {
    scenario: `API server answers 503 for 40 s (to ${failing.map((f) => f.program.name).join(" and ")}; open watches cut)`,
    load: churn.describe(),
    outcome: `requests during the fault: ${lines.join(", ")} (all 503); no hot loop; exact convergence afterwards`,
    convergeSeconds: converged.seconds,
    from: "churn stopped (5 s after the fault ended)",
  });
});

t.test("watches that go silent without closing: the staleness guard notices and the programs converge", async (t) => {
  const silenced = [proxied[1], proxied.at(-1)].filter((p): p is { program: Program; proxy: ApiProxy } => p !== undefined);
  const churn = env.churn({ opsPerSecond: 1 });
  await churn.start();
  await delay(3000);
  const frozenAt = Date.now();
  const frozen = silenced.reduce((sum, { proxy }) => sum + proxy.freezeOpenWatches(), 0);
  t.ok(frozen >= 3, `${frozen} open watches went silent`);
  await delay(60_000);
  t.ok(await diverged(), "a minute into the silence, what is published differs from the pods");
  const detected = await eventually(() => {
    const seen = silenced.map(({ program }) => program.logged(/list\/watch failed/, frozenAt).filter((line) => /no watch event or bookmark/.test(JSON.stringify(line.err ?? ""))));
    expect(seen.every((lines) => lines.length > 0), "the staleness guard has not fired in every silenced program yet");
    return seconds((Math.max(...seen.map((lines) => Date.parse(String(lines[0]?.time)))) - frozenAt) / 1000);
  }, { timeoutMs: (staleAfterSeconds + 60) * 1000, intervalMs: 1000 });
  t.ok(detected <= staleAfterSeconds + 10, `every silenced program noticed within ${detected} s (guard: ${staleAfterSeconds} s)`);
  await delay(5000);
  await churn.stop();
  const converged = await env.checker.waitForConvergence({ since: frozenAt, timeoutMs: 120_000 });
  assertCompared(t, converged.compared, "after convergence");
  await assertHoldsExact(t, env.checker);
  recordResult(t, {
    scenario: `watches of ${silenced.map((s) => s.program.name).join(" and ")} silent without closing (half-open)`,
    load: churn.describe(),
    outcome: `published objects went stale; the staleness guard fired after ${detected} s in both (no event or bookmark for ${staleAfterSeconds} s), relisted over new connections; exact convergence`,
    convergeSeconds: seconds(converged.seconds),
    from: "the watches went silent",
  });
});

t.test("no program crashed", async (t) => {
  for (const { program } of proxied) t.ok(program.running && program.starts === 1, `${program.name} runs, never restarted`);
});

/** Compacts etcd to its current revision (etcd's JSON gateway) and returns it. */
async function compactEtcd(): Promise<number> {
  const url = env.etcdUrl();
  const range = (await (await fetch(`${url}/v3/kv/range`, { method: "POST", body: JSON.stringify({ key: Buffer.from("/").toString("base64") }) })).json()) as {
    header: { revision: string };
  };
  const revision = Number(range.header.revision);
  const response = await fetch(`${url}/v3/kv/compaction`, { method: "POST", body: JSON.stringify({ revision, physical: true }) });
  if (!response.ok) throw new Error(`etcd compaction failed: ${response.status} ${await response.text()}`);
  return revision;
}

/** What a watch from `resourceVersion` gets first: an event type, or the error. */
async function directWatch(resourceVersion: string): Promise<string> {
  try {
    for await (const event of env.admin.http.watch(`/api/v1/namespaces/${churnNamespace}/pods`, { resourceVersion }, AbortSignal.timeout(10_000))) {
      const status = event.object as { code?: number; message?: string };
      return event.type === "ERROR" ? `${status.code} ${status.message}` : event.type;
    }
    return "no event";
  } catch (err) {
    return (err as Error).message;
  }
}

/** Whether a check (retried while the cluster moves) finds differences. */
async function diverged(): Promise<boolean> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const result = await env.checker.check();
    if (!result.moving) return result.differences.length > 0;
    await delay(200);
  }
  return false;
}
