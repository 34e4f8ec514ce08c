// What belongs to whom, with pods churning throughout: someone edits or
// deletes the Services, Endpoints and EndpointSlices a NetService owns (they
// come back as they should be); a user's own objects carry the names a
// NetService wants (they are never modified).
import { setTimeout as delay } from "node:timers/promises";
import t from "tap";
import type { KubeObject } from "../../common/kube/object.ts";
import { eventually, expect } from "../helpers/eventually.ts";
import { aggregatorUser, appliesByUid, leadershipReport } from "./support/audit.ts";
import type { EndpointsJson, ServiceJson, SliceJson } from "./support/checker.ts";
import { assertCompared, assertHoldsExact, churnNamespace, FaultEnvironment } from "./support/environment.ts";
import type { Program } from "./support/programs.ts";
import { recordResult, seconds } from "./support/results.ts";

const usersNamespace = "users";
const mergePatch = "application/merge-patch+json";

const env = await FaultEnvironment.start(t);
const { agents, aggregator } = await env.startPrograms();
const programs: Program[] = [...agents, aggregator];
await env.populateAndConverge(24);

const core = `/api/v1/namespaces/${churnNamespace}`;
const discovery = `/apis/discovery.k8s.io/v1/namespaces/${churnNamespace}`;

type Vandalism = {
  what: string;
  path: string;
  act: () => Promise<unknown>;
  /** Throws (via expect) until the object is as the NetService wants it again. */
  restored: (object: KubeObject | undefined) => void;
};

const vandalisms: Vandalism[] = [
  {
    what: "Endpoints core-all deleted",
    path: `${core}/endpoints/core-all`,
    act: () => env.admin.http.request({ method: "DELETE", path: `${core}/endpoints/core-all` }),
    restored: (o) => expect(o !== undefined, "not recreated"),
  },
  {
    what: "Endpoints web-access edited to hold a stranger's address",
    path: `${core}/endpoints/web-access`,
    act: () => patch(`${core}/endpoints/web-access`, { subsets: [{ addresses: [{ ip: "10.250.0.1" }], ports: [{ name: "http", port: 80 }] }] }),
    restored: (o) => expect(!JSON.stringify((o as EndpointsJson | undefined)?.subsets ?? []).includes("10.250.0.1"), "the stranger's address is still there"),
  },
  {
    what: "EndpointSlice core-all-ipv4-0 deleted",
    path: `${discovery}/endpointslices/core-all-ipv4-0`,
    act: () => env.admin.http.request({ method: "DELETE", path: `${discovery}/endpointslices/core-all-ipv4-0` }),
    restored: (o) => expect(o !== undefined, "not recreated"),
  },
  {
    what: "EndpointSlice db-core-v6-ipv6-0 edited: every endpoint not ready",
    path: `${discovery}/endpointslices/db-core-v6-ipv6-0`,
    act: async () => {
      const slice = await env.admin.http.request<SliceJson>({ method: "GET", path: `${discovery}/endpointslices/db-core-v6-ipv6-0` });
      const endpoints = (slice.endpoints ?? []).map((e) => ({ ...e, conditions: { ready: false, serving: false, terminating: false } }));
      return patch(`${discovery}/endpointslices/db-core-v6-ipv6-0`, { endpoints });
    },
    restored: (o) => expect(((o as SliceJson | undefined)?.endpoints ?? []).some((e) => e.conditions?.ready), "every endpoint still not ready"),
  },
  {
    what: "EndpointSlice core-all-ipv6-0 relabelled (managed-by removed)",
    path: `${discovery}/endpointslices/core-all-ipv6-0`,
    act: () => patch(`${discovery}/endpointslices/core-all-ipv6-0`, { metadata: { labels: { "endpointslice.kubernetes.io/managed-by": null } } }),
    restored: (o) => expect(o?.metadata?.labels?.["endpointslice.kubernetes.io/managed-by"] === "netservice-aggregator.svcctl.metaswitch.com", "label not restored"),
  },
  {
    what: "Service core-all deleted",
    path: `${core}/services/core-all`,
    act: () => env.admin.http.request({ method: "DELETE", path: `${core}/services/core-all` }),
    restored: (o) => expect(o !== undefined, "not recreated"),
  },
  {
    what: "template Service core-all-template deleted",
    path: `${core}/services/core-all-template`,
    act: () => env.admin.http.request({ method: "DELETE", path: `${core}/services/core-all-template` }),
    restored: (o) => expect(o !== undefined, "not recreated"),
  },
  {
    what: "Service web-access edited: port 8080",
    path: `${core}/services/web-access`,
    act: () => patch(`${core}/services/web-access`, { spec: { ports: [{ name: "http", port: 8080 }] } }),
    restored: (o) => expect((o as ServiceJson | undefined)?.spec.ports?.[0]?.port === 80, "port not restored"),
  },
  {
    what: "template Service db-core-v6-pods edited: selector changed",
    path: `${core}/services/db-core-v6-pods`,
    act: () => patch(`${core}/services/db-core-v6-pods`, { spec: { selector: { app: "someone-else" } } }),
    restored: (o) => expect((o as ServiceJson | undefined)?.spec.selector?.app === "churn" && (o as ServiceJson | undefined)?.spec.selector?.tier === "db", "selector not restored"),
  },
];

t.test("someone edits or deletes what a NetService owns: restored", async (t) => {
  const churn = env.churn();
  await churn.start();
  await delay(3000);
  const restoreTimes: string[] = [];
  for (const vandalism of vandalisms) {
    const at = Date.now();
    await vandalism.act();
    try {
      await eventually(async () => vandalism.restored(await get(vandalism.path)), { timeoutMs: 30_000, intervalMs: 100 });
      const took = seconds((Date.now() - at) / 1000);
      t.pass(`${vandalism.what}: restored in ${took} s`);
      restoreTimes.push(`${vandalism.what.split(" (")[0]} ${took} s`);
    } catch (err) {
      t.fail(`${vandalism.what}: not restored (${(err as Error).message})`);
      restoreTimes.push(`${vandalism.what.split(" (")[0]}: NOT restored`);
    }
    await delay(1000);
  }
  await churn.stop();
  const converged = await env.checker.waitForConvergence({ timeoutMs: 120_000 });
  assertCompared(t, converged.compared, "after convergence");
  await assertHoldsExact(t, env.checker);
  recordResult(t, {
    scenario: "owned Services, Endpoints and EndpointSlices edited or deleted",
    load: churn.describe(),
    outcome: restoreTimes.join("; "),
    convergeSeconds: converged.seconds,
    from: "churn stopped",
  });
});

t.test("a selector added by hand to the selectorless Service: removed, and what Kubernetes published meanwhile deleted", async (t) => {
  const churn = env.churn();
  await churn.start();
  await delay(3000);
  const at = Date.now();
  await patch(`${core}/services/web-access`, { spec: { selector: { app: "churn" } } });
  await eventually(async () => {
    const service = (await get(`${core}/services/web-access`)) as ServiceJson | undefined;
    expect(Object.keys(service?.spec.selector ?? {}).length === 0, `selector still ${JSON.stringify(service?.spec.selector)}`);
  }, { timeoutMs: 30_000, intervalMs: 100 });
  const removed = seconds((Date.now() - at) / 1000);
  t.pass(`the selector was removed ${removed} s after it was added`);
  // In the moment the selector existed, Kubernetes' EndpointSlice controller published the pods' primary
  // addresses under the NetService's name, and it never deletes those slices when a selector goes away:
  // the aggregator must.
  const swept = await eventually(async () => {
    const leftovers = await kubeSlicesOf("web-access");
    expect(leftovers.length === 0, `Kubernetes' slices still there: ${leftovers.join(", ")}`);
    return seconds((Date.now() - at) / 1000);
  }, { timeoutMs: 60_000, intervalMs: 200 });
  t.pass(`no EndpointSlice of Kubernetes' own controller publishes under the NetService's name ${swept} s after the selector was added`);
  await delay(5000);
  t.same(await kubeSlicesOf("web-access"), [], "and none came back");
  await churn.stop();
  const converged = await env.checker.waitForConvergence({ timeoutMs: 120_000 });
  assertCompared(t, converged.compared, "after convergence");
  await assertHoldsExact(t, env.checker);
  recordResult(t, {
    scenario: "a selector added by hand to the NetService's selectorless Service",
    load: churn.describe(),
    outcome:
      `selector removed in ${removed} s; the EndpointSlices Kubernetes' controller wrote meanwhile (primary addresses ` +
      `under the NetService's name) deleted by the aggregator ${swept} s after the selector was added`,
    convergeSeconds: converged.seconds,
    from: "churn stopped",
  });
});

t.test("a user's own objects with the names a NetService wants are never modified", async (t) => {
  await env.applier.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: usersNamespace } });
  await eventually(() => env.admin.http.request({ method: "GET", path: `/api/v1/namespaces/${usersNamespace}/serviceaccounts/default` }), { timeoutMs: 60_000 });
  const users = `/api/v1/namespaces/${usersNamespace}`;
  const userObjects: KubeObject[] = [
    { apiVersion: "v1", kind: "Service", metadata: { name: "taken", namespace: usersNamespace }, spec: { selector: { app: "user" }, ports: [{ port: 80 }] } },
    { apiVersion: "v1", kind: "Service", metadata: { name: "users-svc", namespace: usersNamespace }, spec: { clusterIP: "None", ports: [{ port: 81 }] } },
    {
      apiVersion: "v1",
      kind: "Endpoints",
      metadata: { name: "borrowed", namespace: usersNamespace },
      subsets: [{ addresses: [{ ip: "10.250.0.2" }], ports: [{ port: 82 }] }],
    },
    {
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: {
        name: "borrowed-ipv4-0",
        namespace: usersNamespace,
        // Claims to be the aggregator's, but no NetService owns it.
        labels: { "kubernetes.io/service-name": "borrowed", "endpointslice.kubernetes.io/managed-by": "netservice-aggregator.svcctl.metaswitch.com" },
      },
      addressType: "IPv4",
      endpoints: [{ addresses: ["10.250.0.3"] }],
    },
  ];
  const created = [];
  for (const object of userObjects) created.push(await env.applier.apply(object, { fieldManager: "a-user" }));
  for (const name of ["user-pod-0", "user-pod-1"]) {
    await env.admin.http.request({
      method: "POST",
      path: `${users}/pods`,
      body: {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name, labels: { app: "user" }, annotations: { "k8s.v1.cni.cncf.io/networks": "networks/core@core" } },
        spec: { nodeName: env.nodes[0], containers: [{ name: "app", image: "registry.k8s.io/pause:3.10" }] },
      },
    });
  }
  await env.netService("taken", { netAttachDef: "core", selector: { app: "user" } }, usersNamespace);
  await env.netService("borrowed", { netAttachDef: "core", selector: { app: "user" }, templateServiceName: "users-svc" }, usersNamespace);
  const churn = env.churn();
  await churn.start();
  const conditions = await eventually(async () => {
    const reasons: Record<string, string> = {};
    for (const name of ["taken", "borrowed"]) {
      const ns = await env.admin.http.request<{ status?: { conditions?: { type: string; status: string; reason: string; message: string }[] } }>({
        method: "GET",
        path: `/apis/svcctl.metaswitch.com/v1alpha1/namespaces/${usersNamespace}/netservices/${name}`,
      });
      const ready = ns.status?.conditions?.find((c) => c.type === "Ready");
      expect(ready?.status === "False", `${name}: Ready is ${JSON.stringify(ready)}`);
      reasons[name] = `${ready?.reason}: ${ready?.message}`;
    }
    return reasons;
  }, { timeoutMs: 60_000 });
  await delay(30_000);
  await churn.stop();
  const converged = await env.checker.waitForConvergence({ timeoutMs: 120_000 });
  assertCompared(t, converged.compared, "after convergence");
  await assertHoldsExact(t, env.checker);
  for (const [name, text] of Object.entries(conditions)) t.comment(`${name}: ${text}`);

  for (const before of created) {
    const kind = before.kind ?? "";
    const name = before.metadata?.name ?? "";
    const path = kind === "EndpointSlice"
      ? `/apis/discovery.k8s.io/v1/namespaces/${usersNamespace}/endpointslices/${name}`
      : `${users}/${kind === "Service" ? "services" : "endpoints"}/${name}`;
    const after = await get(path);
    t.ok(after, `${kind} ${name} still exists`);
    t.equal(after?.metadata?.resourceVersion, before.metadata?.resourceVersion, `${kind} ${name} unchanged`);
    t.notOk(after?.metadata?.ownerReferences, `${kind} ${name} not adopted`);
  }
  // The user's objects, and the Endpoints Kubernetes makes for the user's Service "taken".
  const notOurs = new Set([
    `services ${usersNamespace}/taken`,
    `services ${usersNamespace}/users-svc`,
    `endpoints ${usersNamespace}/taken`,
    `endpoints ${usersNamespace}/borrowed`,
    `endpointslices ${usersNamespace}/borrowed-ipv4-0`,
  ]);
  const writes = leadershipReport(env.audit.read(), { namespace: env.systemNamespace, leaseName: "netservice-aggregator" }).writes
    .filter((w) => notOurs.has(w.what.split(" ").slice(1).join(" ")));
  t.same(writes.map((w) => w.what), [], "the audit log shows no write of the aggregator to any of the user's objects");
  recordResult(t, {
    scenario: "a user's own Service, template Service name, Endpoints and a look-alike EndpointSlice take a NetService's names",
    load: churn.describe(),
    outcome: `none modified or adopted (resourceVersions unchanged, no write in the audit log); status says ${Object.values(conditions).map((c) => c.split(":")[0]).join(" / ")}`,
    convergeSeconds: converged.seconds,
    from: "churn stopped",
  });
});

t.test("every apply the aggregator sent named its target's uid", async (t) => {
  const { withUid, withoutUid } = appliesByUid(env.audit.read(), aggregatorUser(env.systemNamespace));
  // Both ways: a scenario that applied nothing would prove nothing.
  t.ok(withUid.length >= 20, `${withUid.length} applies to Services, Endpoints, EndpointSlices and NetService status named the uid`);
  t.same(withoutUid.map((e) => `${e.objectRef?.resource}/${e.objectRef?.subresource ?? ""} ${e.objectRef?.namespace}/${e.objectRef?.name}`), [], "none went without one");
});

t.test("no program crashed", async (t) => {
  for (const program of programs) t.ok(program.running && program.starts === 1, `${program.name} runs, never restarted`);
});

async function kubeSlicesOf(service: string): Promise<string[]> {
  const slices = await env.admin.http.request<{ items: SliceJson[] }>({
    method: "GET",
    path: `${discovery}/endpointslices`,
    query: { labelSelector: `kubernetes.io/service-name=${service},endpointslice.kubernetes.io/managed-by=endpointslice-controller.k8s.io` },
  });
  return slices.items.map((slice) => slice.metadata.name);
}

function patch(path: string, body: unknown): Promise<unknown> {
  return env.admin.http.request({ method: "PATCH", path, body, contentType: mergePatch });
}

async function get(path: string): Promise<KubeObject | undefined> {
  try {
    return await env.admin.http.request<KubeObject>({ method: "GET", path });
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}
