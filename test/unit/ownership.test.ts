// The never-adopt rule: only the object this incarnation of the NetService
// controls is ours, whatever else its owner references or labels say.
import t from "tap";
import { desiredServices } from "../../common/desired-services.ts";
import type { KubeObject, OwnerReference } from "../../common/kube/object.ts";
import { controls } from "../../aggregator/ownership.ts";
import { netService } from "./objects.ts";

const corens = netService({ name: "corens", uid: "uid-corens" });
const group = "svcctl.metaswitch.com/v1alpha1";
const ours: OwnerReference = { apiVersion: group, kind: "NetService", name: "corens", uid: "uid-corens", controller: true, blockOwnerDeletion: true };
const held = (...ownerReferences: OwnerReference[]): KubeObject => ({ metadata: { name: "corens", ownerReferences } });

t.test("controls: an object is the NetService's only through this incarnation's controller reference", async (t) => {
  const rows: { name: string; object: KubeObject; ours: boolean }[] = [
    { name: "our controller reference", object: held(ours), ours: true },
    { name: "ours among others (a non-controller reference first)", object: held({ ...ours, kind: "Deployment", controller: false }, ours), ours: true },
    { name: "what the aggregator writes for it", object: desiredServices(corens).headless as KubeObject, ours: true },
    { name: "what it writes for another incarnation of the same name", object: desiredServices(netService({ name: "corens", uid: "another-incarnation" })).headless as KubeObject, ours: false },
    { name: "no owner references (a user's object)", object: { metadata: { name: "corens" } }, ours: false },
    { name: "no metadata at all", object: {}, ours: false },
    { name: "our uid, but not as controller", object: held({ ...ours, controller: false }), ours: false },
    { name: "our uid, controller unset", object: held({ apiVersion: group, kind: "NetService", name: "corens", uid: "uid-corens" }), ours: false },
    { name: "an earlier NetService of the same name (other uid)", object: held({ ...ours, uid: "uid-old" }), ours: false },
    { name: "our uid under another kind", object: held({ ...ours, kind: "Service" }), ours: false },
    { name: "our uid under another group's NetService", object: held({ ...ours, apiVersion: "example.com/v1" }), ours: false },
    { name: "only labelled for us", object: { metadata: { name: "corens", labels: { "svcctl.metaswitch.com/netservice": "corens" } } }, ours: false },
  ];
  for (const row of rows) t.equal(controls(corens, row.object), row.ours, row.name);
});
