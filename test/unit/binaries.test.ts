// How a Go build names each command's binary, which decides whether the
// commands of a tool can share one `go build -o <folder>/`.
import t from "tap";
import { goBinaryName } from "../../hack/cluster/binaries.ts";

t.test("goBinaryName: the last element of the import path, or the one before a major version suffix", async (t) => {
  const cases: [string, string][] = [
    ["k8s.io/kubernetes/cmd/kube-apiserver", "kube-apiserver"],
    ["go.etcd.io/etcd/server/v3", "server"],
    ["github.com/k8snetworkplumbingwg/whereabouts/cmd", "cmd"],
    ["github.com/k8snetworkplumbingwg/whereabouts/cmd/controlloop", "controlloop"],
    ["gopkg.in/k8snetworkplumbingwg/multus-cni.v4/cmd/passthru-cni", "passthru-cni"],
    ["example.com/v2", "example.com"],
    ["v2", "v2"],
  ];
  for (const [importPath, name] of cases) t.equal(goBinaryName(importPath), name, importPath);
});
