// One fault-test file's world: a local control plane with an audit log,
// deploy/'s CRDs, RBAC and admission policy, simulated nodes with the fake
// kubelet and Multus, the demo networks, three NetServices over churned pods,
// and the programs as separate processes. Everything is stopped when the
// file's tests end, pass or fail.
//
//   const env = await FaultEnvironment.start(t, { nodes: 3 });
//   const aggregator = await env.programs.aggregator("netservice-aggregator-a");
//   const churn = env.churn();  await churn.populate(24);  churn.start();
//   ... fault ...
//   await churn.stop();
//   const { seconds } = await env.checker.waitForConvergence();
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { KubeConfig } from "@kubernetes/client-node";
import type { Test } from "tap";
import { defaultSystemNamespace } from "../../../common/api.ts";
import { Applier } from "../../../common/kube/apply.ts";
import { makeClients, type KubeClients } from "../../../common/kube/client.ts";
import type { KubeObject } from "../../../common/kube/object.ts";
import { createRootLogger } from "../../../common/log.ts";
import { ControlPlane } from "../../../hack/cluster/control-plane.ts";
import { repoRoot } from "../../../hack/local-system.ts";
import { applyManifests, loadManifests } from "../../../hack/manifests.ts";
import { SimulatedCluster } from "../../../hack/sim/cluster.ts";
import { runTeardown } from "../../../hack/teardown.ts";
import { boundedTeardown } from "../../helpers/teardown.ts";
import { AuditLog, auditPolicy } from "./audit.ts";
import { Checker, describeCompared, shortfalls, type Compared, type Minimum } from "./checker.ts";
import { Churn, type ChurnOptions } from "./churn.ts";
import { Programs, type Program } from "./programs.ts";
import { ApiProxy } from "./proxy.ts";

export const churnNamespace = "churn";

/** Three NetServices over the churned pods: every option of the spec is in play somewhere. */
export const churnNetServices = [
  { name: "core-all", spec: { netAttachDef: "core", selector: { app: "churn" } } },
  { name: "web-access", spec: { netAttachDef: "networks/access", selector: { app: "churn", tier: "web" }, ports: [{ name: "http", port: 80, appProtocol: "http" }] } },
  {
    name: "db-core-v6",
    spec: {
      netAttachDef: "core",
      selector: { app: "churn", tier: "db" },
      ipFamilies: ["IPv6"],
      publishNotReadyAddresses: true,
      templateServiceName: "db-core-v6-pods",
      ports: [{ name: "sql", port: 5432 }],
    },
  },
];

/**
 * The least a check over the churned pods must have compared for a scenario
 * to pass: every churned NetService with addresses of each family it
 * publishes (the core network is dual-stack, access IPv4 only, db-core-v6
 * IPv6 only), and hostnames. The churn keeps the last pod of each kind, so
 * this holds whatever the seed. A typical check compares 12 to 36 pods.
 */
export const churnMinimum: Minimum = {
  netServicesWithEndpoints: churnNetServices.length,
  addresses: { IPv4: 8, IPv6: 8 },
  hostnames: 1,
  byNetService: {
    [`${churnNamespace}/core-all`]: { IPv4: 4, IPv6: 4 },
    [`${churnNamespace}/web-access`]: { IPv4: 1 },
    [`${churnNamespace}/db-core-v6`]: { IPv6: 1 },
  },
};

/** Fails the test when a check compared less than `minimum`, naming every count. */
export function assertCompared(t: Test, compared: Compared, what: string, minimum: Minimum = churnMinimum): void {
  const short = shortfalls(compared, minimum);
  t.ok(short.length === 0, `${what} compared ${describeCompared(compared)}${short.length > 0 ? `; too little: ${short.join("; ")}` : ""}`);
}

/** Fails the test unless the cluster stays exact for `seconds` after convergence (checked every 250 ms; a later change of the pods must be followed, see Checker.holdsExact). */
export async function assertHoldsExact(t: Test, checker: Checker, seconds = 5): Promise<void> {
  const held = await checker.holdsExact({ seconds });
  t.ok(
    held.differences.length === 0 && held.exactChecks >= 3,
    held.differences.length > 0
      ? `not exact ${held.afterSeconds} s after convergence:\n  ${held.differences.slice(0, 20).join("\n  ")}`
      : `stayed exact for ${seconds} s after convergence (${held.exactChecks} exact checks, ${held.moving} while it moved, ${held.changes} later changes of the pods followed)`,
  );
}

export type FaultEnvironmentOptions = {
  nodes?: number;
  /** Extra kube-apiserver flags. */
  apiserverFlags?: string[];
  /** More users whose requests the audit log records (Metadata level). */
  auditUsers?: string[];
  /** Extra kube-controller-manager flags (e.g. more --controllers). */
  controllerManagerFlags?: string[];
  /** The simulated kubelets' Node heartbeats; default none (see hack/sim/kubelet.ts). */
  nodeHeartbeatIntervalMs?: number;
};

export class FaultEnvironment {
  readonly plane: ControlPlane;
  readonly admin: KubeClients;
  readonly applier: Applier;
  readonly sim: SimulatedCluster;
  readonly programs: Programs;
  readonly audit: AuditLog;
  readonly checker: Checker;
  readonly dir: string;
  readonly nodes: string[];
  readonly systemNamespace = defaultSystemNamespace;
  readonly #t: Test;
  readonly #proxies: ApiProxy[] = [];
  readonly #churns: Churn[] = [];
  #churnSeed = 0;

  private constructor(init: { t: Test; plane: ControlPlane; admin: KubeClients; sim: SimulatedCluster; dir: string; nodes: string[] }) {
    this.#t = init.t;
    this.plane = init.plane;
    this.admin = init.admin;
    this.sim = init.sim;
    this.dir = init.dir;
    this.nodes = init.nodes;
    this.applier = new Applier(init.admin.http, { fieldManager: "netservice-faults" });
    this.audit = new AuditLog(path.join(init.dir, "audit.log"));
    this.checker = new Checker(init.admin.http, [churnNamespace]);
    this.programs = new Programs({
      admin: init.admin,
      server: init.plane.server,
      caCert: init.plane.pki.caCert,
      dir: init.dir,
      systemNamespace: defaultSystemNamespace,
      aggregatorNode: init.nodes[0] ?? "",
    });
  }

  static async start(t: Test, options: FaultEnvironmentOptions = {}): Promise<FaultEnvironment> {
    const dir = await mkdtemp(path.join(tmpdir(), "netservice-faults-"));
    const keep = process.env.NETSERVICE_FAULTS_KEEP === "1";
    t.teardown(async () => {
      if (keep) t.comment(`kept ${dir} (audit log, program logs, kubeconfigs)`);
      else await rm(dir, { recursive: true, force: true });
    });
    await writeFile(path.join(dir, "audit-policy.yaml"), auditPolicy(defaultSystemNamespace, options.auditUsers));
    const plane = await ControlPlane.start({
      report: (line) => t.comment(line),
      extraFlags: {
        "kube-apiserver": [
          `--audit-policy-file=${path.join(dir, "audit-policy.yaml")}`,
          `--audit-log-path=${path.join(dir, "audit.log")}`,
          "--audit-log-maxsize=2000",
          ...(options.apiserverFlags ?? []),
        ],
        ...(options.controllerManagerFlags ? { "kube-controller-manager": options.controllerManagerFlags } : {}),
      },
    });
    boundedTeardown(t, { name: "control plane", timeoutMs: 60_000, run: () => plane.stop() });
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(plane.kubeconfig);
    const admin = makeClients(kubeConfig, { userAgent: "netservice-faults/0.1.0", maxConnections: 16 });
    boundedTeardown(t, { name: "admin clients", timeoutMs: 10_000, run: () => admin.close() });
    const logger = createRootLogger({ env: { LOG_LEVEL: "error", LOG_FORMAT: "text" }, destination: process.stderr });
    const sim = new SimulatedCluster({
      kubeConfig,
      clients: admin,
      maxGracePeriodMs: 3000,
      logger,
      ...(options.nodeHeartbeatIntervalMs !== undefined ? { heartbeatIntervalMs: options.nodeHeartbeatIntervalMs } : {}),
    });
    t.teardown(() => sim.stop((line) => t.comment(line)));

    const applier = new Applier(admin.http, { fieldManager: "netservice-faults" });
    const deployed = (await loadManifests(path.join(repoRoot, "deploy", "netservice.yaml")))
      .filter((o) => !["Deployment", "DaemonSet", "PodDisruptionBudget", "Service"].includes(o.kind ?? ""));
    await applyManifests(applier, admin.http, deployed, defaultSystemNamespace);
    await sim.start();
    const nodes = (await sim.addNodes(options.nodes ?? 3)).map((node) => node.name);
    await applyManifests(applier, admin.http, await loadManifests(path.join(repoRoot, "hack", "demo", "networks.yaml")));
    await applier.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: churnNamespace } });
    await waitForDefaultServiceAccount(admin, churnNamespace);
    for (const { name, spec } of churnNetServices) {
      await applier.apply({ apiVersion: "svcctl.metaswitch.com/v1alpha1", kind: "NetService", metadata: { name, namespace: churnNamespace }, spec });
    }

    const env = new FaultEnvironment({ t, plane, admin, sim, dir, nodes });
    // Registered last, so it runs first: programs and churn stop before the cluster under them.
    t.teardown(() => env.#stop());
    return env;
  }

  /** One agent per node, then the aggregator "netservice-aggregator-a", each a process of its own. */
  async startPrograms(): Promise<{ agents: Program[]; aggregator: Program }> {
    const agents: Program[] = [];
    for (const node of this.nodes) agents.push(await this.programs.agent(node));
    return { agents, aggregator: await this.programs.aggregator("netservice-aggregator-a") };
  }

  /** Pods to churn, created and running, and everything published exactly before the first scenario. */
  async populateAndConverge(pods: number): Promise<void> {
    await this.churn().populate(pods);
    await this.checker.waitForConvergence({ timeoutMs: 120_000 });
  }

  /** A churn driver over the given nodes (default all), stopped at teardown if the test does not. */
  churn(options: Partial<Omit<ChurnOptions, "http" | "sim" | "namespace">> = {}): Churn {
    const churn = new Churn({
      http: this.admin.http,
      sim: this.sim,
      namespace: churnNamespace,
      nodes: () => this.nodes,
      seed: ++this.#churnSeed,
      ...options,
    });
    this.#churns.push(churn);
    return churn;
  }

  /** A proxy between one program and the API server (proxy.ts). */
  async proxy(): Promise<ApiProxy> {
    const [ca, cert, key] = await Promise.all([readFile(this.plane.pki.caCert), readFile(this.plane.pki.serverCert), readFile(this.plane.pki.serverKey)]);
    const proxy = await ApiProxy.start({ upstream: this.plane.server, ca, cert, key });
    this.#proxies.push(proxy);
    return proxy;
  }

  /** etcd's client URL, from the etcd process's own command line (the control plane keeps its ports private). */
  etcdUrl(): string {
    const pid = this.plane.processes.get("etcd")?.pid;
    // /proc is Linux-only, as is the rest of the local control plane.
    const args = pid ? readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0") : [];
    const flag = args.find((arg) => arg.startsWith("--listen-client-urls="));
    if (!flag) throw new Error("cannot find etcd's client URL");
    return flag.slice("--listen-client-urls=".length).split(",")[0] ?? "";
  }

  /** Applies a NetService in the churn namespace. */
  netService(name: string, spec: Record<string, unknown>, namespace = churnNamespace): Promise<KubeObject> {
    return this.applier.apply({ apiVersion: "svcctl.metaswitch.com/v1alpha1", kind: "NetService", metadata: { name, namespace }, spec });
  }

  async #stop(): Promise<void> {
    await runTeardown([
      { name: "churn", timeoutMs: 30_000, run: async () => void (await Promise.allSettled(this.#churns.map((churn) => churn.stop()))) },
      // Each program gets SIGTERM, then SIGKILL after 10 s.
      { name: "programs", timeoutMs: 30_000, run: () => this.programs.stopAll(), waitingFor: () => this.programs.running() },
      { name: "API proxies", timeoutMs: 10_000, run: async () => void (await Promise.allSettled(this.#proxies.map((proxy) => proxy.close()))) },
    ], { report: (line) => this.#t.comment(line) });
    if (process.env.NETSERVICE_FAULTS_KEEP !== "1") return;
    this.#t.comment(`programs' logs are in ${this.dir}`);
  }
}

async function waitForDefaultServiceAccount(admin: KubeClients, namespace: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await admin.http.request({ method: "GET", path: `/api/v1/namespaces/${namespace}/serviceaccounts/default` });
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await delay(200);
    }
  }
}
