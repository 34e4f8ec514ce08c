// What the real-network tests (test/real/) share: the machine check that
// fails loudly in CI and skips locally, DNS questions to CoreDNS, Multus'
// network-status, host-local's state, and reachability probes run inside
// pods' network namespaces.
import { Resolver } from "node:dns/promises";
import { readdir } from "node:fs/promises";
import path from "node:path";
import type { Test } from "tap";
import type { V1Pod } from "@kubernetes/client-node";
import type { SimClients } from "../../hack/sim/kube.ts";
import type { RealNetwork } from "../../hack/realnet/network.ts";
import { checkRealNetworking } from "../../hack/realnet/preflight.ts";

/**
 * True if this machine can run real networking. Otherwise says exactly what
 * is missing: a failure when CI is set (a CI machine must be able to), a
 * skip of the whole file locally.
 */
export async function realNetworkingAvailable(t: Test): Promise<boolean> {
  const problems = await checkRealNetworking();
  if (problems.length === 0) return true;
  const message = `real networking is not possible on this machine:\n- ${problems.join("\n- ")}`;
  if (process.env.CI && process.env.CI !== "false") {
    t.fail(`${message}\n(CI is set, so this fails instead of skipping)`);
  } else {
    t.comment(message);
    t.plan(0, "real networking unavailable (set CI=true to make this a failure)");
  }
  return false;
}

export type NetworkStatusEntry = { name: string; interface?: string; ips?: string[]; mac?: string; default?: boolean };

/** Multus' network-status annotation of the pod ([] while it has none). */
export function networkStatus(pod: V1Pod): NetworkStatusEntry[] {
  const text = pod.metadata?.annotations?.["k8s.v1.cni.cncf.io/network-status"];
  return text ? (JSON.parse(text) as NetworkStatusEntry[]) : [];
}

/** The pod's addresses on one network as Multus recorded them. */
export function addressesOn(pod: V1Pod, network: string): string[] {
  return networkStatus(pod).filter((entry) => entry.name === network).flatMap((entry) => entry.ips ?? []);
}

/** Running, not terminating pods with the label selector, by name. */
export async function runningPods(clients: Pick<SimClients, "core">, namespace: string, labelSelector: string): Promise<V1Pod[]> {
  const list = await clients.core.listNamespacedPod({ namespace, labelSelector });
  return list.items
    .filter((pod) => pod.status?.phase === "Running" && !pod.metadata?.deletionTimestamp)
    .sort((a, b) => (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? ""));
}

/** Addresses host-local holds for a network that spans the nodes (its state directory, one file per address). */
export async function ipamAllocations(realNetwork: RealNetwork, network: string): Promise<string[]> {
  try {
    const files = await readdir(path.join(realNetwork.fabric.sharedIpamDir, network));
    return files.filter((file) => file !== "lock" && !file.startsWith("last_reserved_ip")).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}

/** A resolver that asks only the given server (host:port) and never retries: every answer is fresh. */
export function dnsAt(address: string) {
  const resolver = new Resolver({ timeout: 2000, tries: 1 });
  resolver.setServers([address]);
  const orNone = async <T>(query: Promise<T[]>): Promise<T[]> => {
    try {
      return await query;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOTFOUND" || code === "ENODATA") return [];
      throw error;
    }
  };
  return {
    a: async (name: string) => (await orNone(resolver.resolve4(name))).sort(),
    aaaa: async (name: string) => (await orNone(resolver.resolve6(name))).sort(),
    srv: async (name: string) => (await orNone(resolver.resolveSrv(name))).sort((x, y) => x.name.localeCompare(y.name)),
  };
}

export type ProbeResult = { ok: boolean; transcript: string };

/** ICMP echo from inside the pod's network namespace (netprobe ping). */
export async function ping(network: RealNetwork, namespace: string, pod: string, address: string, count = 2): Promise<ProbeResult> {
  const result = await network.exec(namespace, pod, [network.binaries.netprobe, "ping", "-c", String(count), "-W", "1", address]);
  return { ok: result.code === 0, transcript: `${result.stdout}${result.stderr}`.trim() };
}

/** A TCP connection from inside the pod's network namespace, reading the server's greeting (netprobe connect). */
export async function tcpConnect(network: RealNetwork, namespace: string, pod: string, address: string, port: number): Promise<ProbeResult> {
  const target = address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
  const result = await network.exec(namespace, pod, [network.binaries.netprobe, "connect", "-W", "2", target]);
  return { ok: result.code === 0, transcript: `${result.stdout}${result.stderr}`.trim() };
}

/** The route the kernel of the pod's namespace takes to an address: "dev core", "dev access", ... */
export async function routeDevice(network: RealNetwork, namespace: string, pod: string, address: string): Promise<string> {
  const result = await network.exec(namespace, pod, ["ip", "-j", "route", "get", address]);
  const routes = JSON.parse(result.stdout || "[]") as { dev?: string }[];
  return routes[0]?.dev ?? "";
}

export function sorted(values: Iterable<string>): string[] {
  return [...values].sort();
}
