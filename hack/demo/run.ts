// npm start [-- --once] [-- --json] [-- --nodes N] [-- --kubeconfig PATH]
//
// With no cluster given: starts the local control plane, 3 simulated nodes
// with the fake Multus, one node agent per node and the aggregator; applies
// the NADs core and access (namespace networks), the sample Deployment and
// the sample NetServices corens and accessns; then prints a table per
// NetService, read back from the Endpoints objects, and keeps it current
// until Ctrl-C. --once prints once when the samples have converged and
// exits; --json prints one JSON document instead of tables.
//
// With --kubeconfig: shows the NetServices of that cluster, where the agents
// and the aggregator run as deployed (deploy/); nothing is applied to it.
import path from "node:path";
import { parseArgs } from "node:util";
import { KubeConfig } from "@kubernetes/client-node";
import { apiVersion, labels, netServicePlural } from "../../common/api.ts";
import { makeClients, type KubeClients } from "../../common/kube/client.ts";
import { Informer } from "../../common/kube/informer.ts";
import { createRootLogger } from "../../common/log.ts";
import { LocalSystem } from "../local-system.ts";
import { applyManifests, loadManifests } from "../manifests.ts";
import { netServiceView, renderTables, type EndpointsJson, type NetServiceJson, type NetServiceView } from "./view.ts";

const { values: args } = parseArgs({
  options: {
    once: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    nodes: { type: "string", default: "3" },
    kubeconfig: { type: "string" },
    "timeout-seconds": { type: "string", default: "180" },
  },
});

const samples = path.join(import.meta.dirname, "samples");
const sampleFiles = [path.join(import.meta.dirname, "networks.yaml"), ...["multi.yaml", "core.yaml", "access.yaml"].map((f) => path.join(samples, f))];
const say = (line: string) => process.stderr.write(`[netservice] ${line}\n`);

async function main() {
  // Program logs go to stderr at warn level so that stdout holds only the tables (or the JSON).
  const logger = createRootLogger({ env: { LOG_LEVEL: process.env.LOG_LEVEL ?? "warn", LOG_FORMAT: process.env.LOG_FORMAT ?? "text" }, destination: process.stderr });
  let system: LocalSystem | undefined;
  let clients: KubeClients;
  if (args.kubeconfig) {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(args.kubeconfig);
    clients = makeClients(kubeConfig, { userAgent: "netservice-run/0.1.0" });
  } else {
    say("starting the local control plane, 3 simulated nodes, the node agents and the aggregator");
    system = await LocalSystem.start({ nodes: Number(args.nodes), report: say, logger });
    clients = system.clients;
    await applyManifests(system.applier, clients.http, await loadManifests(...sampleFiles));
    say(`applied ${sampleFiles.map((f) => path.basename(f)).join(", ")}; KUBECONFIG=${system.plane.kubeconfig}`);
  }
  const view = new LiveView(clients);
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    await view.stop();
    if (system) await system.stop();
    else await clients.close();
    process.exit(code);
  };
  process.on("SIGINT", () => void stop(0));
  process.on("SIGTERM", () => void stop(0));
  await view.start();
  if (args.once) {
    const views = system ? await view.waitForSamples(Number(args["timeout-seconds"]) * 1000) : view.views();
    process.stdout.write(args.json ? JSON.stringify({ netservices: views }, null, 2) + "\n" : renderTables(views));
    await stop(0);
    return;
  }
  view.onChange((views) => {
    const text = args.json ? JSON.stringify({ netservices: views }) + "\n" : `--- ${new Date().toISOString()} (Ctrl-C stops)\n${renderTables(views)}`;
    process.stdout.write(text);
  });
}

/** NetServices and their Endpoints as a cache, re-rendered after each burst of changes. */
class LiveView {
  readonly #netServices: Informer<NetServiceJson & { metadata: { name: string } }>;
  readonly #endpoints: Informer<EndpointsJson & { metadata: { namespace: string; name: string } }>;
  #timer: NodeJS.Timeout | undefined;
  #listener: ((views: NetServiceView[]) => void) | undefined;
  #last = "";

  constructor(clients: KubeClients) {
    this.#netServices = new Informer({ http: clients.http, path: `/apis/${apiVersion}/${netServicePlural}` });
    this.#endpoints = new Informer({ http: clients.http, path: "/api/v1/endpoints", labelSelector: labels.netService });
    for (const informer of [this.#netServices, this.#endpoints]) informer.onChange(() => this.#schedule());
  }

  async start() {
    this.#netServices.start();
    this.#endpoints.start();
    await Promise.all([this.#netServices.synced, this.#endpoints.synced]);
  }

  async stop() {
    clearTimeout(this.#timer);
    await Promise.all([this.#netServices.stop(), this.#endpoints.stop()]);
  }

  views(): NetServiceView[] {
    return this.#netServices
      .list()
      .map((ns) => netServiceView(ns, this.#endpoints.get(`${ns.metadata.namespace}/${ns.metadata.name}`)))
      .sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  }

  onChange(listener: (views: NetServiceView[]) => void) {
    this.#listener = listener;
    this.#schedule();
  }

  /** The sample NetServices each select the 3 pods of the sample Deployment; wait until both show all 3 ready. */
  async waitForSamples(timeoutMs: number): Promise<NetServiceView[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const views = this.views();
      const converged = ["corens", "accessns"].every((name) => {
        const view = views.find((v) => v.name === name);
        return view?.endpoints.length === 3 && view.endpoints.every((e) => e.ready);
      });
      if (converged) return views;
      if (Date.now() > deadline) {
        say(`the samples did not converge within ${timeoutMs / 1000} s; printing what the cluster has`);
        return views;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  #schedule() {
    if (!this.#listener) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      const views = this.views();
      const text = JSON.stringify(views);
      if (text === this.#last) return;
      this.#last = text;
      this.#listener?.(views);
    }, 200);
  }
}

try {
  await main();
} catch (error) {
  say(`error: ${(error as Error).message}`);
  process.exit(1);
}
