// A node whose report outgrows one object publishes it in parts; the
// aggregator publishes everything the parts carry, and parts that are no
// longer needed go away. The part budget is lowered here so that twenty
// NetServices need several parts, as thousands would at the real budget.
import path from "node:path";
import t from "tap";
import { LocalSystem } from "../../hack/local-system.ts";
import { applyManifests, loadManifests } from "../../hack/manifests.ts";
import { attachmentAddresses, endpointsByIp, endpointsOf, listPods, sorted } from "../e2e/cluster-state.ts";
import { eventually, expect } from "../helpers/eventually.ts";

const demo = path.resolve(import.meta.dirname, "..", "..", "hack", "demo");
const system = await LocalSystem.start({ nodes: 1, report: (line) => t.comment(line), agent: { reportPartBytes: 3000 } });
t.teardown(() => system.stop());
const { clients, applier } = system;
await applyManifests(applier, clients.http, await loadManifests(path.join(demo, "networks.yaml"), path.join(demo, "samples", "multi.yaml")));
const names = Array.from({ length: 20 }, (_, i) => `many-${String(i).padStart(2, "0")}`);

async function reportNames(): Promise<string[]> {
  const list = await clients.http.request<{ items: { metadata: { name: string } }[] }>({
    method: "GET", path: "/apis/svcctl.metaswitch.com/v1alpha1/namespaces/netservice-system/netservicenodereports",
  });
  return sorted(list.items.map((item) => item.metadata.name));
}

async function expectAllPublished(netServices: string[]) {
  await eventually(async () => {
    const pods = await listPods(clients, "default", "app=utils");
    const want = sorted(pods.flatMap((pod) => attachmentAddresses(pod, "networks/core")));
    expect(want.length === 6, `${want.length} core addresses so far`);
    for (const name of netServices) {
      const got = sorted(endpointsByIp(await endpointsOf(clients, "default", name)).keys());
      expect(JSON.stringify(got) === JSON.stringify(want), `${name}: ${got.length} of ${want.length} addresses`);
    }
  }, { timeoutMs: 120_000 });
}

t.test("twenty NetServices over one node's pods are published from several report parts", async (t) => {
  for (const name of names) {
    await applier.apply({ apiVersion: "svcctl.metaswitch.com/v1alpha1", kind: "NetService", metadata: { name, namespace: "default" }, spec: { netAttachDef: "core", selector: { app: "utils" } } });
  }
  await expectAllPublished(names);
  const reports = await reportNames();
  t.ok(reports.length > 2, `parts: ${reports.join(", ")}`);
  t.same(reports, sorted(reports.map((_, i) => `sim-node-0.${i}`)), "numbered from 0 without gaps");
});

t.test("parts no longer needed are deleted and the rest stays published", async (t) => {
  for (const name of names.slice(2)) {
    await clients.http.request({ method: "DELETE", path: `/apis/svcctl.metaswitch.com/v1alpha1/namespaces/default/netservices/${name}` });
  }
  await eventually(async () => {
    const reports = await reportNames();
    expect(reports.length === 1, `reports: ${reports.join(", ")}`);
  }, { timeoutMs: 60_000 });
  await expectAllPublished(names.slice(0, 2));
  t.pass("one part left, two NetServices published");
});
