// Where the end-to-end tests run. By default: the local system (control
// plane, simulated nodes with the fake Multus, agents and aggregator in this
// process). With NETSERVICE_E2E_NETWORK=real: the same local system on real
// networking (every pod a network namespace set up by the real Multus and CNI
// plugins, CoreDNS answering; needs root, docs/real-network.md); where this
// machine cannot, the file fails when CI is set and is skipped otherwise,
// saying what is missing. With NETSERVICE_E2E_KUBECONFIG: a real cluster
// where deploy/ is installed and Multus runs (hack/kind/e2e.sh); tests that
// need to steer the simulation (flip readiness, restart an agent) are skipped
// there, and NETSERVICE_E2E_IMAGES names the local stand-ins of the samples'
// public images where the cluster reaches no registry.
import type { Test } from "tap";
import { KubeConfig } from "@kubernetes/client-node";
import { Applier } from "../../common/kube/apply.ts";
import { makeClients, type KubeClients } from "../../common/kube/client.ts";
import { createRootLogger } from "../../common/log.ts";
import { LocalSystem, type LocalSystemOptions } from "../../hack/local-system.ts";
import { parseImageMap } from "../../hack/manifests.ts";
import { realNetworkingAvailable } from "../helpers/real-network.ts";
import { boundedTeardown } from "../helpers/teardown.ts";

export type E2eEnvironment = {
  clients: KubeClients;
  applier: Applier;
  /** Present when the test steers a local simulated cluster (its `network` is set on real networking). */
  local?: LocalSystem;
  /** Public image -> its local stand-in, on a cluster that reaches no registry (NETSERVICE_E2E_IMAGES); empty otherwise. */
  images: Map<string, string>;
};

/** The local system's pods' networks, from NETSERVICE_E2E_NETWORK: "simulated" (default) or "real". */
export function e2eNetwork(): "simulated" | "real" {
  const value = process.env.NETSERVICE_E2E_NETWORK ?? "";
  if (value === "" || value === "simulated") return "simulated";
  if (value === "real") return "real";
  throw new Error(`NETSERVICE_E2E_NETWORK=${value}: say "real" or "simulated" (the default)`);
}

/** The environment, or undefined when real networking was asked for and this machine cannot (the file is then skipped, or failed in CI). */
export async function openEnvironment(t: Test, options: LocalSystemOptions = {}): Promise<E2eEnvironment | undefined> {
  const kubeconfig = process.env.NETSERVICE_E2E_KUBECONFIG;
  if (kubeconfig) return openCluster(t, kubeconfig, "netservice-e2e");
  const network = e2eNetwork();
  if (network === "real" && !(await realNetworkingAvailable(t))) return undefined;
  const logger = createRootLogger({ env: { LOG_LEVEL: process.env.LOG_LEVEL ?? "warn", LOG_FORMAT: "text" }, destination: process.stderr });
  const local = await LocalSystem.start({ report: (line) => t.comment(line), logger, network, ...options });
  t.teardown(() => local.stop());
  return { clients: local.clients, applier: new Applier(local.clients.http, { fieldManager: "netservice-e2e" }), local, images: new Map() };
}

/** Clients of a real cluster's kubeconfig (closed at the end of the test), and the images' stand-ins from NETSERVICE_E2E_IMAGES. */
export function openCluster(t: Test, kubeconfig: string, agent: string): E2eEnvironment {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfig);
  const clients = makeClients(kubeConfig, { userAgent: `${agent}/0.1.0` });
  boundedTeardown(t, { name: "clients", timeoutMs: 10_000, run: () => clients.close() });
  const images = parseImageMap(process.env.NETSERVICE_E2E_IMAGES ?? "");
  return { clients, applier: new Applier(clients.http, { fieldManager: agent }), images };
}
