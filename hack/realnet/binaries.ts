// The binaries of the real-network mode, built from the Go modules under
// hack/tools/ into the same per-version cache as the control plane (see
// hack/cluster/binaries.ts): the Multus thin plugin, the CNI reference
// plugins it delegates to, a CoreDNS with the kubernetes plugin, and netprobe
// (ping and TCP from inside a network namespace; this machine has no ping).
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { ensureTool, repoRoot, toolVersion, type Tool } from "../cluster/binaries.ts";

export type RealnetBinaries = {
  /** CNI_PATH: bridge, macvlan, host-local, static, loopback. */
  cniBinDir: string;
  multus: string;
  coredns: string;
  netprobe: string;
};

const cniPluginsModule = "github.com/containernetworking/plugins";
const multusModule = "gopkg.in/k8snetworkplumbingwg/multus-cni.v4";

/** The reference plugins the tests' networks use, built in one `go build`. */
const cniPlugins: Tool = {
  name: "cni-plugins",
  module: "cni",
  versionOf: cniPluginsModule,
  commands: {
    bridge: `${cniPluginsModule}/plugins/main/bridge`,
    macvlan: `${cniPluginsModule}/plugins/main/macvlan`,
    loopback: `${cniPluginsModule}/plugins/main/loopback`,
    "host-local": `${cniPluginsModule}/plugins/ipam/host-local`,
    static: `${cniPluginsModule}/plugins/ipam/static`,
  },
  ldflags: (version) => `-s -w -X ${cniPluginsModule}/pkg/utils/buildversion.BuildVersion=${version}`,
};

const multus: Tool = {
  name: "multus",
  module: "cni",
  versionOf: multusModule,
  commands: { multus: `${multusModule}/cmd/multus` },
  ldflags: (version) => `-s -w -X ${multusModule}/pkg/multus.version=${version} -X ${multusModule}/pkg/multus.gitTreeState=clean`,
};

// Our own code names its cache folder by a hash of its sources as well, so an edit rebuilds it.
const coredns = (): Tool => ({
  name: `coredns-${sourceHash("coredns", ["main.go", "go.mod", "go.sum"])}`,
  module: "coredns",
  versionOf: "github.com/coredns/coredns",
  commands: { coredns: "netservice.local/hack/tools/coredns" },
  ldflags: () => "-s -w",
});

const netprobe = (): Tool => ({
  name: `netprobe-${sourceHash("cni", ["netprobe/main.go"])}`,
  module: "cni",
  versionOf: cniPluginsModule,
  commands: { netprobe: "netservice.local/hack/tools/cni/netprobe" },
  ldflags: () => "-s -w",
});

/** Returns the real-network binaries, building what the cache lacks (a cold build takes 10-25 minutes on 2 cores). */
export async function ensureRealnetBinaries(report: (line: string) => void = defaultReport): Promise<RealnetBinaries> {
  const pluginsDir = await ensureTool(cniPlugins, report);
  const multusDir = await ensureTool(multus, report);
  const netprobeDir = await ensureTool(netprobe(), report);
  const corednsDir = await ensureTool(coredns(), report);
  return {
    cniBinDir: pluginsDir,
    multus: path.join(multusDir, "multus"),
    coredns: path.join(corednsDir, "coredns"),
    netprobe: path.join(netprobeDir, "netprobe"),
  };
}

/** Component, version and source of every binary, as the README's table lists them. */
export function realnetVersions(): { component: string; version: string; module: string }[] {
  return [
    { component: "multus (thin plugin)", version: toolVersion(multus), module: multusModule },
    { component: "bridge, macvlan, host-local, static, loopback", version: toolVersion(cniPlugins), module: cniPluginsModule },
    { component: "coredns", version: toolVersion(coredns()), module: "github.com/coredns/coredns" },
  ];
}

function sourceHash(module: string, files: string[]): string {
  const hash = createHash("sha256");
  for (const file of files) hash.update(readFileSync(path.join(repoRoot, "hack", "tools", module, file)));
  return hash.digest("hex").slice(0, 8);
}

function defaultReport(line: string) {
  process.stderr.write(`[netservice] ${line}\n`);
}
