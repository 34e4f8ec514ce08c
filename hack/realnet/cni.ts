// Calling a CNI plugin the way a container runtime does (CNI spec 1.x:
// configuration on stdin, CNI_* environment, result or error on stdout).
//
// A simulated node is split in two. Its control side is this machine's own
// network namespace, where the API server listens on loopback: Multus runs
// there, as it runs beside the kubelet on a real node. Its data side is the
// node's network namespace: every plugin that touches links (bridge,
// macvlan, loopback, and host-local for its state) runs there through a
// per-node wrapper in CNI_PATH, which enters the node's namespace and binds
// the node's own directory over /var/lib in a private mount namespace, so
// host-local and libcni keep per-node state inside the run's directory and
// never under the machine's /var/lib.
import { chmod, mkdir, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { runCommand, type CommandResult } from "./command.ts";
import type { NodeNetwork } from "./fabric.ts";

export type CniCommand = "ADD" | "DEL" | "CHECK";

export type CniCall = {
  command: CniCommand;
  /** The plugin binary (or a node wrapper). */
  plugin: string;
  /** CNI_PATH: where the plugin finds its delegates and IPAM plugins. */
  binDir: string;
  containerId: string;
  netnsPath: string;
  ifName: string;
  /** CNI_ARGS, e.g. K8S_POD_NAMESPACE. */
  args: Record<string, string>;
  config: Record<string, unknown>;
};

/** The parts of a CNI 1.x result this mode reads. */
export type CniResult = {
  cniVersion?: string;
  interfaces?: { name: string; mac?: string; sandbox?: string }[];
  ips?: { address: string; gateway?: string; interface?: number }[];
};

/** Runs one CNI command; resolves with the result of an ADD, throws a CniError with the plugin's message on failure. */
export async function callCni(call: CniCall): Promise<CniResult | undefined> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    CNI_COMMAND: call.command,
    CNI_CONTAINERID: call.containerId,
    CNI_NETNS: call.netnsPath,
    CNI_IFNAME: call.ifName,
    CNI_PATH: call.binDir,
    CNI_ARGS: Object.entries(call.args).map(([key, value]) => `${key}=${value}`).join(";"),
  };
  const result = await runCommand([call.plugin], { env, input: JSON.stringify(call.config), timeoutMs: 90_000 });
  if (result.code !== 0) throw new CniError(call, result);
  if (call.command !== "ADD") return undefined;
  return JSON.parse(result.stdout) as CniResult;
}

/**
 * Writes, for every plugin in binDir, a wrapper of the same name into
 * `dir` that runs it on the node's data side (see the top of this file).
 * `dir` then serves as the node's CNI_PATH.
 */
export async function writeNodePluginWrappers(node: NodeNetwork, binDir: string, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const plugin of await readdir(binDir)) {
    const script = [
      "#!/bin/sh",
      `# CNI plugin ${plugin} on simulated node ${node.node.name}: its network namespace, its /var/lib.`,
      `exec nsenter --net=${quote(node.netnsPath)} -- unshare --mount --propagation private -- \\`,
      `  /bin/sh -c 'mount --bind "$1" /var/lib && shift && exec "$@"' sh ${quote(node.varLibDir)} ${quote(path.join(binDir, plugin))} "$@"`,
      "",
    ].join("\n");
    const file = path.join(dir, plugin);
    await writeFile(file, script);
    await chmod(file, 0o755);
  }
  return dir;
}

/** The addresses (without prefix length) the result puts on the container's interface `ifName`, IPv4 first. */
export function addressesOn(result: CniResult, ifName: string): string[] {
  const interfaces = result.interfaces ?? [];
  const addresses = (result.ips ?? [])
    .filter((ip) => ip.interface === undefined || (interfaces[ip.interface]?.name === ifName && interfaces[ip.interface]?.sandbox))
    .map((ip) => ip.address.split("/")[0] ?? ip.address);
  return [...addresses.filter((a) => !a.includes(":")), ...addresses.filter((a) => a.includes(":"))];
}

/** A failed CNI command, with the plugin's own error message (CNI error JSON on stdout) and its stderr. */
export class CniError extends Error {
  readonly code: number | undefined;
  readonly stderr: string;
  constructor(call: CniCall, result: CommandResult) {
    const reported = parseCniError(result.stdout);
    const what = `CNI ${call.command} of ${path.basename(call.plugin)} (container ${call.containerId.slice(0, 12)}, ${call.ifName})`;
    super(`${what} failed (exit ${result.code}): ${reported?.msg ?? "no error reported"}${reported?.details ? `: ${reported.details}` : ""}` +
      (result.stderr.trim() ? `\n${result.stderr.trim().slice(-2000)}` : ""));
    this.name = "CniError";
    this.code = reported?.code;
    this.stderr = result.stderr;
  }
}

function parseCniError(stdout: string): { code?: number; msg?: string; details?: string } | undefined {
  try {
    return JSON.parse(stdout) as { code?: number; msg?: string; details?: string };
  } catch {
    return stdout.trim() ? { msg: stdout.trim().slice(-2000) } : undefined;
  }
}

function quote(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}
