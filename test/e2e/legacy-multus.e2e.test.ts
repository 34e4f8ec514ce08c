// Multus before v3.6 wrote `k8s.v1.cni.cncf.io/networks-status` with bare
// network names; the original samples must work there too.
import path from "node:path";
import t from "tap";
import { applyManifests, loadManifests } from "../../hack/manifests.ts";
import { eventually, expect } from "../helpers/eventually.ts";
import { attachmentAddresses, endpointsByIp, endpointsOf, listPods, sorted } from "./cluster-state.ts";
import { e2eNetwork, openEnvironment } from "./environment.ts";

if (process.env.NETSERVICE_E2E_KUBECONFIG) {
  t.plan(0, "old-Multus mode needs the local simulated cluster; skipped on a real cluster");
} else if (e2eNetwork() === "real") {
  t.plan(0, "old-Multus mode needs the fake Multus; real Multus v4 writes only network-status");
} else {
  const demo = path.resolve(import.meta.dirname, "..", "..", "hack", "demo");
  const { clients, applier } = (await openEnvironment(t, { sim: { legacyMultus: true } }))!;
  await applyManifests(applier, clients.http, await loadManifests(
    path.join(demo, "networks.yaml"),
    ...["multi.yaml", "core.yaml", "access.yaml"].map((file) => path.join(demo, "samples", file)),
  ));

  t.test("pods annotated the old way (networks-status, bare names) are published", async (t) => {
    for (const [name, network] of [["corens", "core"], ["accessns", "access"]] as const) {
      await eventually(async () => {
        const pods = await listPods(clients, "default", "app=utils");
        expect(pods.every((pod) => pod.metadata.annotations?.["k8s.v1.cni.cncf.io/network-status"] === undefined), "the new annotation must be absent");
        const want = pods.flatMap((pod) => attachmentAddresses(pod, network, "k8s.v1.cni.cncf.io/networks-status"));
        const got = [...endpointsByIp(await endpointsOf(clients, "default", name)).keys()];
        expect(want.length >= 3 && JSON.stringify(sorted(want)) === JSON.stringify(sorted(got)), `${name}: want ${want}, got ${got}`);
      }, { timeoutMs: 90_000 });
      t.pass(`${name} publishes the ${network} addresses`);
    }
  });
}
