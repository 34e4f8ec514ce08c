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
      `[{"name": "sriov", "namespace": "", "ips": ["10.0.0.1/24"], "mac": "02:00:00:00:00:01",
         "default-route": ["10.0.0.254"], "cni-args": {"a": 1}}]`,
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
  `[{"name": "core", "namespace": "networks", "interface": "core"},
    {"name": "access", "namespace": "networks", "interface": "access"}]`,
  "default",
).networks;

t.test("network-status entries match a NetService's netAttachDef by the documented rule", async (t) => {
  const inNetworks = (name: string): RequestedNetwork[] => [{ namespace: "networks", name }];
  // [why, entry name, netAttachDef, matches, the pod's request, pod namespace, NetService namespace]
  type Row = [string, string, string, boolean, RequestedNetwork[]?, string?, string?];
  const table: Row[] = [
    ["seed samples: pods ask for networks/core", "networks/core", "core", true, seedRequest],
    ["seed samples: the other network of the same pods", "networks/access", "core", false, seedRequest],
    ["seed samples: access", "networks/access", "access", true, seedRequest],
    ["bare name, entry in the pod's namespace", "default/core", "core", true],
    ["bare name, pod's namespace while the pod asked elsewhere", "default/core", "core", true, seedRequest],
    ["bare name, a namespace the pod did not ask for", "networks/core", "core", false],
    ["bare name, pod asked for another network there", "networks/core", "core", false, inNetworks("access")],
    ["bare name, pod asked for it there", "networks/core", "core", true, inNetworks("core")],
    ["bare name, pod asked for it in another namespace", "other/core", "core", false, inNetworks("core")],
    ["bare name, a one-letter namespace is the pod's", "a/core", "core", true, [], "a"],
    ["Multus before v3.6 wrote the bare name", "core", "core", true],
    ["Multus before v3.6, another network", "corex", "core", false],
    ["namespaced netAttachDef, exact entry", "networks/core", "networks/core", true],
    ["namespaced netAttachDef, other namespace", "default/core", "networks/core", false],
    ["namespaced netAttachDef never matches a bare entry", "core", "networks/core", false],
    ["namespaced netAttachDef needs no request", "networks/core", "networks/core", true, []],
    ["name is compared whole, not as a suffix", "default/xcore", "core", false],
    ["name is compared whole, not as a prefix", "default/core", "cor", false],
    ["the default entry with an empty name matches nothing", "", "core", false],
    ["the default entry matches when its name really does", "cbr0", "cbr0", true],
    ["the default entry is not matched by another name", "kube-system/k8s-pod-network", "core", false],
    ["a pod outside the NetService's namespace never matches", "default/core", "core", false, [], "default", "other"],
    ["not even exactly", "networks/core", "networks/core", false, [], "default", "other"],
  ];
  for (const [why, entry, netAttachDef, matches, request = [], podNamespace = "default", ownNamespace] of table) {
    const result = matchesNetAttachDef(entry, netAttachDef, ownNamespace ?? podNamespace, request, podNamespace);
    t.equal(result, matches, `${why}: ${JSON.stringify(entry)} vs ${netAttachDef}`);
  }
});

t.test("a malformed networks request's error says where and what, and quotes at most 60 characters of a bad item", async (t) => {
  const table: [value: string, error: string][] = [
    ["[{", "networks request: not valid JSON"],
    ['"core"', "networks request: Invalid input: expected array, received string"],
    ['[{"name": "a"}, {"name": "b", "interface": 1}]', "networks request at 1.interface: Invalid input: expected string, received number"],
    ['[{"namespace": "x"}]', "networks request at 0.name: Invalid input: expected string, received undefined"],
    ["core, a b", 'networks request: "a b" is not [namespace/]name[@interface]'],
    [`core,${"x".repeat(60)} y`, `networks request: "${"x".repeat(57)}..." is not [namespace/]name[@interface]`],
    [`${"x".repeat(59)}@`, `networks request: "${"x".repeat(59)}@" is not [namespace/]name[@interface]`],
  ];
  for (const [value, error] of table) t.same(parseNetworksRequest(value, "default"), { networks: [], error }, value);
});

t.test("null or empty namespace and interface in the JSON form are absent", async (t) => {
  t.same(parseNetworksRequest('[{"name": "a", "namespace": null, "interface": null}, {"name": "b", "interface": ""}]', "pods"), {
    networks: [
      { namespace: "pods", name: "a" },
      { namespace: "pods", name: "b" },
    ],
  });
});
