// Builds the control-plane binaries from the Go tools modules under
// hack/tools/ and caches them per version outside the repo, rebuilding only
// what is missing. A cold build compiles a few thousand Go packages and
// takes many minutes on two cores, so it reports progress as it goes.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, rename, rm, stat, mkdtemp } from "node:fs/promises";
import { homedir } from "node:os";
import path from "node:path";
import { OutputTail } from "./output.ts";

export const repoRoot = path.resolve(import.meta.dirname, "..", "..");

export type Binaries = {
  etcd: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  kubectl: string;
};

export type Tool = {
  /** Names the cache folder, with the version. */
  name: string;
  /** Folder of the Go module under hack/tools/. */
  module: string;
  /** The module whose version names the cache folder, as required in go.mod. */
  versionOf: string;
  /** Binary name -> package to build. */
  commands: Record<string, string>;
  ldflags: (version: string) => string;
};

const kubernetes: Tool = {
  name: "kubernetes",
  module: "kube",
  versionOf: "k8s.io/kubernetes",
  commands: {
    "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
    "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
    "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
    kubectl: "k8s.io/kubernetes/cmd/kubectl",
  },
  ldflags: kubernetesVersionFlags,
};

const etcd: Tool = {
  name: "etcd",
  module: "etcd",
  versionOf: "go.etcd.io/etcd/server/v3",
  commands: { etcd: "go.etcd.io/etcd/server/v3" },
  ldflags: () => "-s -w",
};

// Renders, lints and installs the chart in deploy/helm/netservice: the unit
// tests compare its objects with deploy/'s, and the kind run installs it.
const helm: Tool = {
  name: "helm",
  module: "helm",
  versionOf: "helm.sh/helm/v4",
  commands: { helm: "helm.sh/helm/v4/cmd/helm" },
  // What helm's own release build stamps, so `helm version` names the release.
  ldflags: (version) => `-s -w -X helm.sh/helm/v4/internal/version.version=${version} -X helm.sh/helm/v4/internal/version.gitTreeState=clean`,
};

export function cacheRoot(): string {
  return process.env.NETSERVICE_CACHE ?? path.join(homedir(), ".cache", "netservice");
}

/** Returns the paths of every control-plane binary, building what the cache lacks. */
export async function ensureBinaries(report: (line: string) => void = defaultReport): Promise<Binaries> {
  const etcdDir = await ensureTool(etcd, report);
  const kubeDir = await ensureTool(kubernetes, report);
  return {
    etcd: path.join(etcdDir, "etcd"),
    kubeApiserver: path.join(kubeDir, "kube-apiserver"),
    kubeControllerManager: path.join(kubeDir, "kube-controller-manager"),
    kubeScheduler: path.join(kubeDir, "kube-scheduler"),
    kubectl: path.join(kubeDir, "kubectl"),
  };
}

/** Returns the path of the helm binary, building it when the cache lacks it. */
export async function ensureHelm(report: (line: string) => void = defaultReport): Promise<string> {
  return path.join(await ensureTool(helm, report), "helm");
}

export function toolVersion(tool: Pick<Tool, "module" | "versionOf">): string {
  const goMod = readFileSync(path.join(repoRoot, "hack", "tools", tool.module, "go.mod"), "utf8");
  const escaped = tool.versionOf.replaceAll(".", "\\.").replaceAll("/", "\\/");
  const match = new RegExp(`^\\s*(?:require\\s+)?${escaped}\\s+(v\\S+)`, "m").exec(goMod);
  if (!match?.[1]) throw new Error(`hack/tools/${tool.module}/go.mod does not require ${tool.versionOf}`);
  return match[1];
}

export const kubernetesVersion = (): string => toolVersion(kubernetes);
export const etcdVersion = (): string => toolVersion(etcd);
export const helmVersion = (): string => toolVersion(helm);

export async function ensureTool(tool: Tool, report: (line: string) => void): Promise<string> {
  const version = toolVersion(tool);
  const dir = path.join(cacheRoot(), "bin", `${tool.name}-${version}`);
  const missing = Object.keys(tool.commands).filter((name) => !existsSync(path.join(dir, name)));
  if (missing.length === 0) return dir;
  await withBuildLock(dir, report, async () => {
    const stillMissing = missing.filter((name) => !existsSync(path.join(dir, name)));
    if (stillMissing.length > 0) await build(tool, version, dir, stillMissing, report);
  });
  return dir;
}

async function build(tool: Tool, version: string, dir: string, names: string[], report: (line: string) => void) {
  await mkdir(dir, { recursive: true });
  const staging = await mkdtemp(path.join(dir, ".build-"));
  const started = Date.now();
  report(`building ${names.join(", ")} ${version} from the Go module proxy (a cold build takes 15-30 minutes on 2 cores)`);
  try {
    // One go build for the commands go names as we do (-o into the folder),
    // and one each, with -o naming the file, for those it names otherwise
    // (go.etcd.io/etcd/server/v3 would be "server", whereabouts/cmd "cmd");
    // the later builds reuse the packages the first compiled.
    const together = names.filter((name) => goBinaryName(tool.commands[name]!) === name);
    const builds = [
      ...(together.length > 1 ? [{ output: staging + path.sep, packages: together.map((name) => tool.commands[name]!) }] : []),
      ...names.filter((name) => together.length <= 1 || !together.includes(name)).map((name) => ({ output: path.join(staging, name), packages: [tool.commands[name]!] })),
    ];
    for (const { output, packages } of builds) {
      await runGo(
        ["build", "-v", "-ldflags", tool.ldflags(version), "-o", output, ...packages],
        path.join(repoRoot, "hack", "tools", tool.module),
        (compiled) => report(`  ${tool.module}: ${compiled} packages compiled, ${Math.round((Date.now() - started) / 1000)} s`),
      );
    }
    for (const name of names) await rename(path.join(staging, name), path.join(dir, name));
    const sizes = await Promise.all(names.map(async (name) => `${name} ${((await stat(path.join(dir, name))).size / 2 ** 20).toFixed(0)} MiB`));
    report(`built ${sizes.join(", ")} in ${Math.round((Date.now() - started) / 1000)} s into ${dir}`);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** The file name go build gives a command's binary when -o names a folder: the import path's last element, or the one before a major version suffix. */
export function goBinaryName(importPath: string): string {
  const elements = importPath.split("/");
  const last = elements.at(-1)!;
  return /^v\d+$/.test(last) && elements.length > 1 ? elements.at(-2)! : last;
}

function runGo(args: string[], cwd: string, progress: (compiled: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("go", args, { cwd, stdio: ["ignore", "inherit", "pipe"], env: { ...process.env, GOFLAGS: "-mod=readonly" } });
    let compiled = 0;
    const tail = new OutputTail(4000);
    const timer = setInterval(() => progress(compiled), 20_000);
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      compiled += chunk.split("\n").filter((line) => /^[\w.-]+(\/[\w.@~-]+)*$/.test(line.trim())).length;
      tail.push(chunk);
    });
    child.on("error", (error) => {
      clearInterval(timer);
      reject(new Error(`cannot run go (is Go 1.26 installed and on PATH?): ${error.message}`));
    });
    child.on("close", (code) => {
      clearInterval(timer);
      if (code === 0) resolve();
      else reject(new Error(`go ${args.slice(0, 2).join(" ")} failed with exit code ${code}:\n${tail.text()}`));
    });
  });
}

/** Several test processes may start at once on a cold cache; only one builds. */
async function withBuildLock(dir: string, report: (line: string) => void, work: () => Promise<void>) {
  const lock = `${dir}.lock`;
  await mkdir(path.dirname(lock), { recursive: true });
  let waited = false;
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      if (await lockIsStale(lock)) {
        await rm(lock, { recursive: true, force: true });
        continue;
      }
      if (!waited) report(`waiting for another process building into ${dir}`);
      waited = true;
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
  try {
    await work();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

/** A lock left by a build that was killed would block every later run. */
async function lockIsStale(lock: string): Promise<boolean> {
  try {
    const { mtimeMs } = await stat(lock);
    return Date.now() - mtimeMs > 90 * 60_000;
  } catch {
    return false;
  }
}

/** The version stamp Kubernetes' own release build sets, so every binary built here reports `version` (kubeadm derives image tags from it). */
export function kubernetesVersionFlags(version: string): string {
  const [major, minor] = version.replace(/^v/, "").split(".");
  const stamp = (pkg: string) =>
    [
      `-X ${pkg}.gitVersion=${version}`,
      `-X ${pkg}.gitMajor=${major}`,
      `-X ${pkg}.gitMinor=${minor}`,
      `-X ${pkg}.gitTreeState=clean`,
      `-X ${pkg}.buildDate=1970-01-01T00:00:00Z`,
    ].join(" ");
  return ["-s -w", stamp("k8s.io/component-base/version"), stamp("k8s.io/client-go/pkg/version")].join(" ");
}

function defaultReport(line: string) {
  process.stderr.write(`[netservice] ${line}\n`);
}
