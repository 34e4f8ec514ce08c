// The binaries of the kind setup on a machine that reaches no image registry
// and no release download: kind itself, and what goes into a locally built
// kind node image (kubelet, kubeadm, kube-proxy, containerd, runc, crictl,
// the CNI reference plugins), and the binaries of the images kubeadm runs
// (CoreDNS, pause; etcd comes from the control plane's cache). Each is built from a Go module under
// hack/tools/ into the same per-version cache as the control plane
// (~/.cache/netservice/bin/<name>-<version>), so a second run builds nothing.
//
// The node's Kubernetes binaries come from hack/tools/kube-node/, a module of
// their own: adding them to hack/tools/kube/ would leave the control plane's
// cache folder as it is but rebuild nothing there, and keeping them apart
// lets the control-plane build stay exactly what the other test modes use.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { cacheRoot, ensureTool, kubernetesVersionFlags, repoRoot, toolVersion, type Tool } from "../cluster/binaries.ts";
import { OutputHead, OutputTail } from "../cluster/output.ts";

export type KindBinaries = {
  kind: string;
  /** kubelet, kubeadm, kube-proxy. */
  kubernetesDir: string;
  /** containerd, containerd-shim-runc-v2, ctr. */
  containerdDir: string;
  runc: string;
  crictl: string;
  /** Every CNI reference plugin, for the node's /opt/cni/bin. */
  cniBinDir: string;
  coredns: string;
  pause: string;
  /** multus-daemon, multus-shim, install_multus, passthru: the thick plugin's image. */
  multusDir: string;
  /** whereabouts (the IPAM plugin) and ip-control-loop: the whereabouts image. */
  whereaboutsDir: string;
};

const kind: Tool = {
  name: "kind",
  module: "kind",
  versionOf: "sigs.k8s.io/kind",
  commands: { kind: "sigs.k8s.io/kind" },
  ldflags: () => "-s -w",
};

const kubernetesNode: Tool = {
  name: "kubernetes-node",
  module: "kube-node",
  versionOf: "k8s.io/kubernetes",
  commands: {
    kubelet: "k8s.io/kubernetes/cmd/kubelet",
    kubeadm: "k8s.io/kubernetes/cmd/kubeadm",
    "kube-proxy": "k8s.io/kubernetes/cmd/kube-proxy",
  },
  // kubeadm derives the control plane's image tags and its checks from its own version.
  ldflags: kubernetesVersionFlags,
};

const containerdModule = "github.com/containerd/containerd/v2";
const containerd: Tool = {
  name: "containerd",
  module: "containerd",
  versionOf: containerdModule,
  commands: {
    containerd: `${containerdModule}/cmd/containerd`,
    "containerd-shim-runc-v2": `${containerdModule}/cmd/containerd-shim-runc-v2`,
    ctr: `${containerdModule}/cmd/ctr`,
  },
  ldflags: (version) =>
    `-s -w -X ${containerdModule}/version.Version=${version} -X ${containerdModule}/version.Package=${containerdModule}`,
};

const crictl: Tool = {
  name: "cri-tools",
  module: "cri-tools",
  versionOf: "sigs.k8s.io/cri-tools",
  commands: { crictl: "sigs.k8s.io/cri-tools/cmd/crictl" },
  ldflags: (version) => `-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=${version}`,
};

const cniPluginsModule = "github.com/containernetworking/plugins";
const cniPluginNames = [
  "ipam/dhcp", "ipam/host-local", "ipam/static",
  "main/bridge", "main/dummy", "main/host-device", "main/ipvlan", "main/loopback", "main/macvlan", "main/ptp", "main/tap", "main/vlan",
  "meta/bandwidth", "meta/firewall", "meta/portmap", "meta/sbr", "meta/tuning", "meta/vrf",
];
const cniPlugins: Tool = {
  // Not "cni-plugins": that folder holds the real-network mode's five plugins.
  name: "cni-plugins-node",
  module: "cni-node",
  versionOf: cniPluginsModule,
  commands: Object.fromEntries(cniPluginNames.map((name) => [path.basename(name), `${cniPluginsModule}/plugins/${name}`])),
  ldflags: (version) => `-s -w -X ${cniPluginsModule}/pkg/utils/buildversion.BuildVersion=${version}`,
};

const coredns: Tool = {
  name: "coredns-kube",
  module: "coredns-kube",
  versionOf: "github.com/coredns/coredns",
  commands: { coredns: "netservice.local/hack/tools/coredns-kube" },
  ldflags: () => "-s -w",
};

const multusModule = "gopkg.in/k8snetworkplumbingwg/multus-cni.v4";
const multusThick: Tool = {
  name: "multus-thick",
  module: "multus-thick",
  versionOf: multusModule,
  commands: {
    "multus-daemon": `${multusModule}/cmd/multus-daemon`,
    "multus-shim": `${multusModule}/cmd/multus-shim`,
    install_multus: `${multusModule}/cmd/install_multus`,
    // install_multus copies it to the node beside the shim, as "passthru".
    passthru: `${multusModule}/cmd/passthru-cni`,
  },
  ldflags: (version) => `-s -w -X ${multusModule}/pkg/multus.version=${version} -X ${multusModule}/pkg/multus.gitTreeState=clean`,
};

const whereaboutsModule = "github.com/k8snetworkplumbingwg/whereabouts";
const whereabouts: Tool = {
  name: "whereabouts",
  module: "whereabouts",
  versionOf: whereaboutsModule,
  commands: {
    // The plugin's main package is cmd/ itself (hack/build-go.sh builds ./cmd/ as "whereabouts").
    whereabouts: `${whereaboutsModule}/cmd`,
    "ip-control-loop": `${whereaboutsModule}/cmd/controlloop`,
  },
  ldflags: (version) => `-s -w -X ${whereaboutsModule}/pkg/version.Version=${version} -X ${whereaboutsModule}/pkg/version.GitTreeState=clean -X ${whereaboutsModule}/pkg/version.ReleaseStatus=released`,
};

const runcModule = "github.com/opencontainers/runc";

/** Returns every binary of the kind setup, building what the cache lacks. */
export async function ensureKindBinaries(report: (line: string) => void = defaultReport): Promise<KindBinaries> {
  const kindDir = await ensureTool(kind, report);
  const crictlDir = await ensureTool(crictl, report);
  const cniBinDir = await ensureTool(cniPlugins, report);
  const runc = await ensureRunc(report);
  const containerdDir = await ensureTool(containerd, report);
  const kubernetesDir = await ensureTool(kubernetesNode, report);
  const corednsDir = await ensureTool(coredns, report);
  const pause = await ensurePause(report);
  const multusDir = await ensureTool(multusThick, report);
  const whereaboutsDir = await ensureTool(whereabouts, report);
  return {
    kind: path.join(kindDir, "kind"),
    kubernetesDir,
    containerdDir,
    runc,
    crictl: path.join(crictlDir, "crictl"),
    cniBinDir,
    coredns: path.join(corednsDir, "coredns"),
    pause,
    multusDir,
    whereaboutsDir,
  };
}

/** Just kind, for the user's path (public images). */
export async function ensureKind(report: (line: string) => void = defaultReport): Promise<string> {
  return path.join(await ensureTool(kind, report), "kind");
}

/** Component, version and module of every binary, as the README's table lists them. */
export function kindVersions(): { component: string; version: string; module: string }[] {
  return [kind, kubernetesNode, containerd, crictl, cniPlugins, coredns, multusThick, whereabouts].map((tool) => ({
    component: Object.keys(tool.commands).join(", "),
    version: toolVersion(tool),
    module: tool.versionOf,
  })).concat([{ component: "runc", version: toolVersion({ module: "runc", versionOf: runcModule }), module: runcModule }]);
}

/**
 * runc needs cgo and the `seccomp` build tag (libseccomp-dev): without it
 * every pod with `seccompProfile: RuntimeDefault`, as deploy/ asks for,
 * fails to start. ensureTool passes neither tags nor cgo settings, so runc
 * has its own small build; it is linked statically (as runc's `make static`
 * does), so the node image needs no libseccomp of a matching version.
 */
async function ensureRunc(report: (line: string) => void): Promise<string> {
  const version = toolVersion({ module: "runc", versionOf: runcModule });
  const dir = path.join(cacheRoot(), "bin", `runc-${version}`);
  const binary = path.join(dir, "runc");
  if (existsSync(binary)) return binary;
  if (!existsSync("/usr/include/seccomp.h")) {
    throw new Error("building runc needs libseccomp's headers and static library: apt-get install libseccomp-dev");
  }
  await mkdir(dir, { recursive: true });
  // A staging folder per build, renamed into place: two builds at once waste time but never leave half a binary.
  const staging = await mkdtemp(path.join(dir, ".build-"));
  const started = Date.now();
  report(`building runc ${version} from the Go module proxy (cgo, seccomp, static)`);
  try {
    await runGo(
      [
        "build", "-trimpath", "-buildmode=pie",
        "-tags", "seccomp urfave_cli_no_docs netgo osusergo",
        "-ldflags", `-s -w -X main.gitCommit=${version} -linkmode external -extldflags -static-pie`,
        "-o", path.join(staging, "runc"), runcModule,
      ],
      path.join(repoRoot, "hack", "tools", "runc"),
    );
    await rename(path.join(staging, "runc"), binary);
    const size = (await stat(binary)).size / 2 ** 20;
    report(`built runc ${size.toFixed(0)} MiB in ${Math.round((Date.now() - started) / 1000)} s into ${dir}`);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return binary;
}

/**
 * The pod sandbox's pause process: Kubernetes' own pause.c, from the
 * k8s.io/kubernetes module that kube-node builds, compiled statically with
 * the machine's gcc (upstream's image does the same in a build container).
 */
async function ensurePause(report: (line: string) => void): Promise<string> {
  const version = toolVersion(kubernetesNode);
  const dir = path.join(cacheRoot(), "bin", `pause-${version}`);
  const binary = path.join(dir, "pause");
  if (existsSync(binary)) return binary;
  const moduleDir = (await run("go", ["list", "-m", "-f", "{{.Dir}}", kubernetesNode.versionOf], path.join(repoRoot, "hack", "tools", kubernetesNode.module))).trim();
  await mkdir(dir, { recursive: true });
  const staging = await mkdtemp(path.join(dir, ".build-"));
  try {
    await run("gcc", ["-Os", "-Wall", "-Werror", "-static", `-DVERSION=${version}`, "-o", path.join(staging, "pause"), path.join(moduleDir, "build", "pause", "linux", "pause.c")], staging);
    await run("strip", [path.join(staging, "pause")], staging);
    await rename(path.join(staging, "pause"), binary);
    report(`built pause (Kubernetes ${version}) into ${dir}`);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return binary;
}

function runGo(args: string[], cwd: string): Promise<string> {
  return run("go", args, cwd, { GOFLAGS: "-mod=readonly", CGO_ENABLED: "1" });
}

/** Runs a command to its end; resolves with its stdout, rejects with the end of its stderr. */
function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
    const stdout = new OutputHead(64 * 1024);
    const stderr = new OutputTail(4000);
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    child.on("error", (error) => reject(new Error(`cannot run ${command}: ${error.message}`)));
    child.on("close", (code) => {
      if (code === 0 && !stdout.overflowed) resolve(stdout.text());
      else if (code === 0) reject(new Error(`${command} ${args.slice(0, 2).join(" ")} printed more than 64 KiB`));
      else reject(new Error(`${command} ${args.slice(0, 2).join(" ")} in ${cwd} failed with exit code ${code}:\n${stderr.text()}`));
    });
  });
}

function defaultReport(line: string) {
  process.stderr.write(`[netservice] ${line}\n`);
}
