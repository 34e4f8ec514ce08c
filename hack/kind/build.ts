// node hack/kind/build.ts: builds (or finds cached) the binaries of the kind
// setup (hack/kind/binaries.ts), reports their versions as the binaries
// themselves print them (on stderr), and prints their paths on stdout as
// shell assignments for hack/kind/images.sh:
//
//   eval "$(node hack/kind/build.ts)"; echo "${KIND}"
import { execFileSync } from "node:child_process";
import path from "node:path";
import { ensureBinaries, ensureHelm } from "../cluster/binaries.ts";
import { ensureKindBinaries } from "./binaries.ts";

const binaries = await ensureKindBinaries();
const controlPlane = await ensureBinaries();
// e2e.sh replaces deploy/'s install by the Helm chart's after the first tests.
const helm = await ensureHelm();
const say = (line: string) => process.stderr.write(`[netservice] ${line}\n`);
const firstLine = (file: string, ...args: string[]) => execFileSync(file, args, { encoding: "utf8" }).trim().split("\n")[0] ?? "";

const kubelet = path.join(binaries.kubernetesDir, "kubelet");
const apiServerVersion = firstLine(controlPlane.kubeApiserver, "--version");
const kubeletVersion = firstLine(kubelet, "--version");
// Both print "Kubernetes v1.36.3": the nodes and the control plane must agree.
if (kubeletVersion !== apiServerVersion) {
  throw new Error(`kubelet says "${kubeletVersion}", the control plane's API server "${apiServerVersion}": build them with the same version flags`);
}
say(`kind: ${firstLine(binaries.kind, "version")}`);
say(`kubelet, kubeadm, kube-proxy: ${kubeletVersion}; kubeadm ${firstLine(path.join(binaries.kubernetesDir, "kubeadm"), "version", "-o", "short")}`);
say(`containerd: ${firstLine(path.join(binaries.containerdDir, "containerd"), "--version")}`);
say(`runc: ${firstLine(binaries.runc, "--version")}`);
say(`crictl: ${firstLine(binaries.crictl, "--version")}`);
say(`coredns: ${firstLine(binaries.coredns, "-version")}`);
say(`helm: ${firstLine(helm, "version", "--short")}`);

const paths: Record<string, string> = {
  KIND: binaries.kind,
  KUBERNETES_NODE_DIR: binaries.kubernetesDir,
  KUBERNETES_DIR: path.dirname(controlPlane.kubeApiserver),
  ETCD: controlPlane.etcd,
  CONTAINERD_DIR: binaries.containerdDir,
  RUNC: binaries.runc,
  CRICTL: binaries.crictl,
  CNI_BIN_DIR: binaries.cniBinDir,
  COREDNS: binaries.coredns,
  PAUSE: binaries.pause,
  MULTUS_DIR: binaries.multusDir,
  WHEREABOUTS_DIR: binaries.whereaboutsDir,
  HELM: helm,
};
const shellQuote = (value: string) => `'${value.replaceAll("'", `'\\''`)}'`;
for (const [name, value] of Object.entries(paths)) process.stdout.write(`${name}=${shellQuote(value)}\n`);
