// node hack/kind/build.ts: builds (or finds cached) the binaries of the kind
// setup (hack/kind/binaries.ts) and says where they are, with their versions
// as the binaries themselves report them.
import { execFileSync } from "node:child_process";
import path from "node:path";
import { ensureBinaries } from "../cluster/binaries.ts";
import { ensureKindBinaries } from "./binaries.ts";

const binaries = await ensureKindBinaries();
const say = (line: string) => process.stderr.write(`[netservice] ${line}\n`);
const firstLine = (file: string, ...args: string[]) => execFileSync(file, args, { encoding: "utf8" }).trim().split("\n")[0];

const kubelet = path.join(binaries.kubernetesDir, "kubelet");
const apiServerVersion = firstLine((await ensureBinaries()).kubeApiserver, "--version");
const kubeletVersion = firstLine(kubelet, "--version");
// Kubernetes... both print "Kubernetes v1.36.3": the node and the control plane must agree.
if (kubeletVersion !== apiServerVersion) {
  throw new Error(`kubelet says "${kubeletVersion}", the control plane's API server "${apiServerVersion}": build them with the same version flags`);
}
say(`kind: ${firstLine(binaries.kind, "version")} (${binaries.kind})`);
say(`kubelet, kubeadm, kube-proxy: ${kubeletVersion}; kubeadm ${firstLine(path.join(binaries.kubernetesDir, "kubeadm"), "version", "-o", "short")} (${binaries.kubernetesDir})`);
say(`containerd: ${firstLine(path.join(binaries.containerdDir, "containerd"), "--version")} (${binaries.containerdDir})`);
say(`runc: ${firstLine(binaries.runc, "--version")} (${binaries.runc})`);
say(`crictl: ${firstLine(binaries.crictl, "--version")} (${binaries.crictl})`);
say(`CNI plugins: ${binaries.cniBinDir}`);
