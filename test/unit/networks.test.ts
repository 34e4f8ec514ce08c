import t from "tap";
import { matchesNetAttachDef, parseNetworksRequest, type RequestedNetwork } from "../../common/networks.ts";

t.test("the networks request is read in both of Multus' forms", async (t) => {
  const table: [value: string | undefined, expected: RequestedNetwork[]][] = [
    [undefined, []],
    ["", []],
    ["core", [{ namespace: "default", name: "core" }]],
    ["networks/core", [{ namespace: "networks", name: "core" }]],
    [
      " networks/core@core , access@net2,other/x ,",
      [
        { namespace: "networks", name: "core", interface: "core" },
        { namespace: "default", name: "access", interface: "net2" },
        { namespace: "other", name: "x" },
      ],
    ],
    [
      '[{"name": "core", "namespace": "networks", "interface": "core"},\n {"name": "access"}]',
      [
        { namespace: "networks", name: "core", interface: "core" },
        { namespace: "default", name: "access" },
      ],
    ],
    [
      '[{"name": "sriov", "namespace": "", "ips": ["10.0.0.1/24"], "mac": "02:00:00:00:00:01", "default-route": ["10.0.0.254"], "cni-args": {"a": 1}}]',
      [{ namespace: "default", name: "sriov" }],
    ],
    ["[]", []],
  ];
  for (const [value, expected] of table) {
    t.same(parseNetworksRequest(value, "default"), { networks: expected }, String(value));
  }
});

t.test("a malformed networks request gives no networks and an error", async (t) => {
  for (const value of [
    "a/b/c",
    "a@b@c",
    "a b",
    "/core",
    "core@",
    "[{",
    '{"name": "core"}',
    '[{"namespace": "x"}]',
    '[{"name": ""}]',
    '[{"name": "a", "interface": 1}]',
    '"core"',
  ]) {
    const result = parseNetworksRequest(value, "default");
    t.same(result.networks, [], value);
    t.match(result.error, /^networks request/, value);
  }
});

const seedRequest = parseNetworksRequest(
  '[{"name": "core", "namespace": "networks", "interface": "core"}, {"name": "access", "namespace": "networks", "interface": "access"}]',
  "default",
).networks;

t.test("network-status entries match a NetService's netAttachDef by the documented rule", async (t) => {
  type Row = {
    why: string;
    entry: string;
    netAttachDef: string;
    request?: RequestedNetwork[];
    podNamespace?: string;
    netServiceNamespace?: string;
    matches: boolean;
  };
  const table: Row[] = [
    { why: "seed samples: pods ask for networks/core", entry: "networks/core", netAttachDef: "core", request: seedRequest, matches: true },
    { why: "seed samples: the other network of the same pods", entry: "networks/access", netAttachDef: "core", request: seedRequest, matches: false },
    { why: "seed samples: access", entry: "networks/access", netAttachDef: "access", request: seedRequest, matches: true },
    { why: "bare name, entry in the pod's namespace", entry: "default/core", netAttachDef: "core", matches: true },
    { why: "bare name, entry in the pod's namespace while the pod asked elsewhere", entry: "default/core", netAttachDef: "core", request: seedRequest, matches: true },
    { why: "bare name, entry in a namespace the pod did not ask for", entry: "networks/core", netAttachDef: "core", matches: false },
    { why: "bare name, pod asked for another network in that namespace", entry: "networks/core", netAttachDef: "core", request: [{ namespace: "networks", name: "access" }], matches: false },
    { why: "Multus before v3.6 wrote the bare name", entry: "core", netAttachDef: "core", matches: true },
    { why: "Multus before v3.6, another network", entry: "corex", netAttachDef: "core", matches: false },
    { why: "namespaced netAttachDef, exact entry", entry: "networks/core", netAttachDef: "networks/core", matches: true },
    { why: "namespaced netAttachDef, other namespace", entry: "default/core", netAttachDef: "networks/core", matches: false },
    { why: "namespaced netAttachDef never matches a bare entry", entry: "core", netAttachDef: "networks/core", matches: false },
    { why: "namespaced netAttachDef needs no request", entry: "networks/core", netAttachDef: "networks/core", request: [], matches: true },
    { why: "name is compared whole, not as a suffix", entry: "default/xcore", netAttachDef: "core", matches: false },
    { why: "name is compared whole, not as a prefix", entry: "default/core", netAttachDef: "cor", matches: false },
    { why: "the default entry with an empty name matches nothing", entry: "", netAttachDef: "core", matches: false },
    { why: "the default entry matches when its name really does", entry: "cbr0", netAttachDef: "cbr0", matches: true },
    { why: "the default entry is not matched through the pod's namespace by another name", entry: "kube-system/k8s-pod-network", netAttachDef: "core", matches: false },
    { why: "a pod outside the NetService's namespace never matches", entry: "default/core", netAttachDef: "core", podNamespace: "default", netServiceNamespace: "other", matches: false },
    { why: "not even exactly", entry: "networks/core", netAttachDef: "networks/core", podNamespace: "default", netServiceNamespace: "other", matches: false },
  ];
  for (const row of table) {
    const podNamespace = row.podNamespace ?? "default";
    const result = matchesNetAttachDef(
      row.entry,
      row.netAttachDef,
      row.netServiceNamespace ?? podNamespace,
      row.request ?? [],
      podNamespace,
    );
    t.equal(result, row.matches, `${row.why}: ${JSON.stringify(row.entry)} vs ${row.netAttachDef}`);
  }
});
