// CoreDNS as a process, answering for cluster.local from the local API
// server through its kubernetes plugin (Services, EndpointSlices), on a free
// loopback port: what a pod's resolver would ask in a cluster.
//
//   const dns = await CoreDns.start({ binary, kubeconfig, dir });
//   const resolver = new Resolver(); resolver.setServers([dns.address]);
//   await resolver.resolve4("corens.default.svc.cluster.local");
//   await dns.stop();
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { freePort, startProcess, type ManagedProcess } from "../cluster/process.ts";

export type CoreDnsOptions = {
  binary: string;
  /** The kubeconfig the kubernetes plugin uses (the control plane's admin kubeconfig). */
  kubeconfig: string;
  /** Where the Corefile and the log go; the caller removes it. */
  dir: string;
  /** Default cluster.local. */
  zone?: string;
  /** Seconds; how long resolvers may cache an answer. Default 5 (the plugin's default). */
  ttl?: number;
  /** Wait this long for the plugin's first sync with the API server. Default 60 s. */
  readyTimeoutMs?: number;
};

export class CoreDns {
  readonly process: ManagedProcess;
  /** host:port, for dns.Resolver#setServers. */
  readonly address: string;
  readonly port: number;
  readonly corefile: string;

  private constructor(process: ManagedProcess, port: number, corefile: string) {
    this.process = process;
    this.port = port;
    this.address = `127.0.0.1:${port}`;
    this.corefile = corefile;
  }

  /** Starts CoreDNS and resolves once its kubernetes plugin has synced (the ready plugin says 200). */
  static async start(options: CoreDnsOptions): Promise<CoreDns> {
    const [port, readyPort] = [await freePort(), await freePort()];
    const corefile = path.join(options.dir, "Corefile");
    await writeFile(corefile, corefileText({ ...options, port, readyPort }));
    const proc = startProcess("coredns", options.binary, ["-conf", corefile], path.join(options.dir, "coredns.log"));
    const dns = new CoreDns(proc, port, corefile);
    try {
      await waitReady(proc, readyPort, options.readyTimeoutMs ?? 60_000);
    } catch (error) {
      await proc.stop(2000);
      throw error;
    }
    return dns;
  }

  async stop(): Promise<void> {
    await this.process.stop(5000);
  }

  logTail(lines = 40): string {
    return this.process.logTail(lines);
  }
}

/** Only loopback: bind keeps CoreDNS off every other address of the machine. */
export function corefileText(options: { kubeconfig: string; port: number; readyPort: number; zone?: string; ttl?: number }): string {
  const zone = options.zone ?? "cluster.local";
  return [
    `${zone}:${options.port} {`,
    "    bind 127.0.0.1",
    `    ready 127.0.0.1:${options.readyPort}`,
    "    errors",
    "    log",
    `    kubernetes ${zone} {`,
    `        kubeconfig ${options.kubeconfig}`,
    `        ttl ${options.ttl ?? 5}`,
    "    }",
    "}",
    "",
  ].join("\n");
}

async function waitReady(proc: ManagedProcess, readyPort: number, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    if (!proc.running()) throw new Error(`coredns exited during start-up; last log lines:\n${proc.logTail()}`);
    try {
      const response = await fetch(`http://127.0.0.1:${readyPort}/ready`, { signal: AbortSignal.timeout(2000) });
      if (response.ok) return;
      last = `ready says ${response.status}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`coredns not ready after ${timeoutMs / 1000} s (${last}); last log lines:\n${proc.logTail()}`);
}
