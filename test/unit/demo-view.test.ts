import t from "tap";
import { netServiceView, renderTables } from "../../hack/demo/view.ts";

const netService = { metadata: { namespace: "default", name: "corens" }, spec: { netAttachDef: "core" } };

t.test("groups Endpoints addresses by pod, ready and not ready", async (t) => {
  const view = netServiceView(netService, {
    subsets: [{
      addresses: [
        { ip: "fd00:10:10::11", nodeName: "n1", targetRef: { kind: "Pod", name: "b" } },
        { ip: "10.10.0.11", nodeName: "n1", targetRef: { kind: "Pod", name: "b" } },
      ],
      notReadyAddresses: [{ ip: "10.10.0.12", nodeName: "n2", targetRef: { kind: "Pod", name: "a" } }],
    }],
  });
  t.same(view, {
    namespace: "default",
    name: "corens",
    network: "core",
    endpoints: [
      { pod: "a", node: "n2", addresses: ["10.10.0.12"], ready: false },
      { pod: "b", node: "n1", addresses: ["10.10.0.11", "fd00:10:10::11"], ready: true },
    ],
  });
});

t.test("a NetService without Endpoints shows no endpoints", async (t) => {
  t.same(netServiceView(netService, undefined).endpoints, []);
  t.match(renderTables([netServiceView(netService, undefined)]), /no endpoints/);
});

t.test("the table has one row per address with aligned columns", async (t) => {
  const text = renderTables([{ namespace: "default", name: "corens", network: "core", endpoints: [
    { pod: "utils-1", node: "sim-node-0", addresses: ["10.10.0.11", "fd00:10:10::11"], ready: true },
  ] }]);
  t.equal(text, [
    "NetService default/corens (network core)",
    "  POD      NODE        ADDRESS         READY",
    "  utils-1  sim-node-0  10.10.0.11      yes",
    "  utils-1  sim-node-0  fd00:10:10::11  yes",
    "",
  ].join("\n"));
});
