// Whether this machine can run the real-network mode, and if not, exactly
// what is missing: privileges, commands, or kernel features. It tries each
// feature for real, inside a throw-away namespace of its own.
import { existsSync, readFileSync } from "node:fs";
import { CommandError, runCommand } from "./command.ts";
import { RunScope } from "./run-scope.ts";

/** Capabilities the mode uses: namespaces and mounts (SYS_ADMIN), links and addresses (NET_ADMIN), ping (NET_RAW). */
const capabilities = { CAP_NET_ADMIN: 12, CAP_SYS_ADMIN: 21, CAP_NET_RAW: 13 } as const;

/** Every reason the real-network mode cannot run here; empty when it can. */
export async function checkRealNetworking(): Promise<string[]> {
  if (process.platform !== "linux") return [`needs Linux network namespaces; this is ${process.platform}`];
  const problems: string[] = [];
  const missingCaps = missingCapabilities();
  if (missingCaps.length > 0) {
    problems.push(`needs root or the capabilities ${missingCaps.join(", ")} (this process runs as uid ${process.getuid?.()} without them)`);
  }
  for (const [command, from] of [["ip", "iproute2"], ["nsenter", "util-linux"], ["unshare", "util-linux"], ["mount", "util-linux"]] as const) {
    const found = await runCommand(["sh", "-c", `command -v ${command}`]);
    if (found.code !== 0) problems.push(`needs the command ${command} (${from}) on PATH`);
  }
  if (problems.length > 0) return problems;
  return kernelProblems();
}

async function kernelProblems(): Promise<string[]> {
  const problems: string[] = [];
  let scope: RunScope;
  let netns: string;
  try {
    scope = await RunScope.create();
    netns = await scope.addNetns("preflight");
  } catch (error) {
    return [`cannot create a network namespace (ip netns add): ${message(error)}`];
  }
  const ip = (...args: string[]) => runCommand(["ip", "-n", netns, ...args]);
  const feature = async (what: string, ...args: string[]) => {
    const result = await ip(...args);
    if (result.code !== 0) problems.push(`the kernel cannot create ${what} (ip ${args.join(" ")}): ${result.stderr.trim()}`);
    return result.code === 0;
  };
  try {
    const veth = await feature("veth pairs", "link", "add", "pf0", "type", "veth", "peer", "name", "pf1");
    await feature("bridges", "link", "add", "pfbr", "type", "bridge");
    if (veth) {
      await ip("link", "set", "pf0", "up");
      await feature("macvlan links (for macvlan NADs)", "link", "add", "pfmv", "link", "pf0", "type", "macvlan", "mode", "bridge");
      await feature("vxlan links (joining the nodes' bridges)", "link", "add", "pfvx", "type", "vxlan", "id", "42", "group", "239.1.1.1", "dev", "pf0", "dstport", "4789");
    }
    const mountNs = await runCommand(["nsenter", `--net=/run/netns/${netns}`, "--", "unshare", "--mount", "--propagation", "private", "--", "true"]);
    if (mountNs.code !== 0) problems.push(`cannot enter a network namespace with a private mount namespace (nsenter/unshare): ${mountNs.stderr.trim()}`);
  } finally {
    await scope.release().catch((error: unknown) => problems.push(`could not remove the preflight namespace ${netns}: ${message(error)}`));
  }
  return problems;
}

function missingCapabilities(): string[] {
  if (process.getuid?.() === 0 && !existsSync("/proc/self/status")) return [];
  let effective = 0n;
  try {
    const line = readFileSync("/proc/self/status", "utf8").split("\n").find((l) => l.startsWith("CapEff:"));
    effective = BigInt(`0x${line?.split(/\s+/)[1] ?? "0"}`);
  } catch {
    return process.getuid?.() === 0 ? [] : Object.keys(capabilities);
  }
  return Object.entries(capabilities).filter(([, bit]) => (effective & (1n << BigInt(bit))) === 0n).map(([name]) => name);
}

function message(error: unknown): string {
  return error instanceof CommandError ? error.result.stderr.trim() || error.message : (error as Error).message;
}
