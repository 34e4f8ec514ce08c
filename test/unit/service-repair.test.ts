// Selectors and ports someone else changed on a NetService's Services, which
// server-side apply cannot put back alone, are replaced by a merge patch
// (found by the fault tests: a selector added to the selectorless Service by
// hand stayed; a port renumbered by hand made every apply fail).
import t from "tap";
import type { V1Service } from "@kubernetes/client-node";
import { desiredServices, serviceNeedsWrite, serviceRepairPatch } from "../../common/desired-services.ts";
import type { NetService } from "../../common/api.ts";

const netService: NetService = {
  metadata: { namespace: "default", name: "corens", uid: "uid-1", generation: 1 },
  spec: { netAttachDef: "core", selector: { app: "utils" }, ports: [{ name: "sip", port: 5060, protocol: "UDP" }], publishNotReadyAddresses: false },
};
const { headless, template } = desiredServices(netService);

function stored(desired: V1Service, spec: Partial<NonNullable<V1Service["spec"]>>): V1Service {
  return { ...desired, metadata: { ...desired.metadata, resourceVersion: "42" }, spec: { ...desired.spec, ...spec } };
}

t.test("a selector added to the selectorless Service is removed", async (t) => {
  const vandalised = stored(headless, { selector: { app: "utils" } });
  t.ok(serviceNeedsWrite(headless, vandalised), "the difference is seen");
  t.same(serviceRepairPatch(headless, vandalised), {
    metadata: { resourceVersion: "42" },
    spec: { selector: null, ports: [{ name: "sip", port: 5060, protocol: "UDP" }] },
  });
});

t.test("an extra selector key on the template is removed, the wanted ones kept", async (t) => {
  const vandalised = stored(template, { selector: { app: "utils", extra: "x" } });
  t.ok(serviceNeedsWrite(template, vandalised));
  t.same(serviceRepairPatch(template, vandalised), {
    metadata: { resourceVersion: "42" },
    spec: { selector: { app: "utils", extra: null }, ports: [{ name: "sip", port: 5060, protocol: "UDP" }] },
  });
});

t.test("an extra port is removed: the list is replaced", async (t) => {
  const vandalised = stored(headless, { ports: [{ name: "sip", port: 5060, protocol: "UDP" }, { name: "x", port: 8080, protocol: "TCP" }] });
  t.ok(serviceNeedsWrite(headless, vandalised));
  t.same((serviceRepairPatch(headless, vandalised) as { spec: { ports: unknown } }).spec.ports, [{ name: "sip", port: 5060, protocol: "UDP" }]);
});

t.test("nothing to repair when selector and ports are as desired, whatever else differs", async (t) => {
  t.equal(serviceRepairPatch(headless, stored(headless, { sessionAffinity: "None", type: "ClusterIP" })), undefined);
  t.equal(serviceRepairPatch(template, stored(template, {})), undefined);
});

t.test("a port renumbered by hand (the apply alone fails: two ports named sip) is put back", async (t) => {
  const vandalised = stored(headless, { ports: [{ name: "sip", port: 5061, protocol: "UDP" }] });
  t.same((serviceRepairPatch(headless, vandalised) as { spec: { ports: unknown } }).spec.ports, [{ name: "sip", port: 5060, protocol: "UDP" }]);
});

t.test("without ports, ports someone added go", async (t) => {
  const bare = desiredServices({ ...netService, spec: { ...netService.spec, ports: [] } }).headless;
  t.same((serviceRepairPatch(bare, stored(bare, { ports: [{ port: 80 }] })) as { spec: { ports: unknown } }).spec.ports, null);
});
