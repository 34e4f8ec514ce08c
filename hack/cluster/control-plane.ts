// A real Kubernetes control plane on loopback: etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler, with generated certificates and
// an admin kubeconfig, on free ports so several can run at once.
import { readFile, mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import { ensureBinaries, type Binaries } from "./binaries.ts";
import { generatePki, type ClientName, type Pki } from "./certs.ts";
import { freePort, removeOnExit, startProcess, type ManagedProcess } from "./process.ts";

export const podCidr = "10.244.0.0/16";
export const podCidrV6 = "fd00:10:244::/56";
export const serviceCidr = "10.96.0.0/16";
export const serviceCidrV6 = "fd00:10:96::/112";

/** The controllers the simulated cluster needs; node-lifecycle is left out because simulated nodes send no leases. */
export const controllers = [
  "garbage-collector-controller",
  "namespace-controller",
  "endpoints-controller",
  "endpointslice-controller",
  "endpointslice-mirroring-controller",
  "deployment-controller",
  "replicaset-controller",
  "serviceaccount-controller",
  "serviceaccount-token-controller",
  "root-ca-certificate-publisher-controller",
];

export type ControlPlaneOptions = {
  /** Progress and diagnostics; default: stderr. */
  report?: (line: string) => void;
  /** Extra flags, e.g. {"kube-apiserver": ["--max-requests-inflight=800"]}. */
  extraFlags?: Partial<Record<Component, string[]>>;
  /** Keep the working directory (certificates, logs, etcd data) after stop. */
  keepDir?: boolean;
};

export type Component = "etcd" | "kube-apiserver" | "kube-controller-manager" | "kube-scheduler";

export class ControlPlane {
  readonly dir: string;
  readonly kubeconfig: string;
  readonly server: string;
  readonly binaries: Binaries;
  readonly pki: Pki;
  readonly processes: Map<Component, ManagedProcess>;
  readonly #options: ControlPlaneOptions;
  readonly #ports: { etcd: number; etcdPeer: number; apiserver: number };
  readonly #forgetDir: () => void;
  #stopping = false;

  private constructor(init: {
    dir: string;
    binaries: Binaries;
    pki: Pki;
    ports: { etcd: number; etcdPeer: number; apiserver: number };
    options: ControlPlaneOptions;
  }) {
    this.dir = init.dir;
    this.binaries = init.binaries;
    this.pki = init.pki;
    this.#ports = init.ports;
    this.#options = init.options;
    this.server = `https://127.0.0.1:${init.ports.apiserver}`;
    this.kubeconfig = path.join(init.dir, "admin.kubeconfig");
    this.processes = new Map();
    this.#forgetDir = init.options.keepDir ? () => true : removeOnExit(init.dir);
  }

  static async start(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
    const report = options.report ?? ((line: string) => process.stderr.write(`[netservice] ${line}\n`));
    const binaries = await ensureBinaries(report);
    const dir = await mkdtemp(path.join(tmpdir(), "netservice-cp-"));
    try {
      await mkdir(path.join(dir, "logs"));
      const pki = await generatePki(dir);
      const ports = { etcd: await freePort(), etcdPeer: await freePort(), apiserver: await freePort() };
      const plane = new ControlPlane({ dir, binaries, pki, ports, options: { ...options, report } });
      await plane.#writeKubeconfigs();
      await plane.#startAll();
      return plane;
    } catch (error) {
      if (!options.keepDir) await rm(dir, { recursive: true, force: true });
      throw error;
    }
  }

  /** Stops every component (reverse start order) and removes the working directory. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    for (const component of ["kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"] as const) {
      await this.processes.get(component)?.stop();
    }
    if (!this.#options.keepDir) {
      await rm(this.dir, { recursive: true, force: true });
      this.#forgetDir();
    }
  }

  /** Kills one component (e.g. for fault tests) and starts it again with the same flags and data. */
  async restart(component: Component, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const proc = this.processes.get(component);
    if (proc) {
      proc.kill(signal);
      await proc.exited;
    }
    await this.#start(component);
  }

  async #startAll() {
    const started = Date.now();
    await this.#start("etcd");
    await this.#start("kube-apiserver");
    await Promise.all([this.#start("kube-controller-manager"), this.#start("kube-scheduler")]);
    await this.#waitForDefaultServiceAccount();
    this.#options.report?.(`control plane ready at ${this.server} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }

  async #start(component: Component) {
    const [binary, args] = this.#command(component);
    const proc = startProcess(component, binary, [...args, ...(this.#options.extraFlags?.[component] ?? [])], path.join(this.dir, "logs", `${component}.log`));
    this.processes.set(component, proc);
    const ready = component === "etcd" ? this.#waitForEtcd() : component === "kube-apiserver" ? this.#waitForApiserver() : Promise.resolve();
    const died = proc.exited.then((code) => {
      throw new Error(`${component} exited (${code}) during start-up; last log lines:\n${proc.logTail()}`);
    });
    await Promise.race([ready, died]);
    died.catch(() => undefined);
  }

  #command(component: Component): [string, string[]] {
    const { pki, dir } = this;
    const { etcd, etcdPeer, apiserver } = this.#ports;
    switch (component) {
      case "etcd":
        return [this.binaries.etcd, [
          "--name=default",
          `--data-dir=${path.join(dir, "etcd")}`,
          `--listen-client-urls=http://127.0.0.1:${etcd}`,
          `--advertise-client-urls=http://127.0.0.1:${etcd}`,
          `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
          `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
          `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
          // A throw-away test cluster: durability across power loss buys nothing and costs every write an fsync.
          "--unsafe-no-fsync",
          "--log-level=warn",
        ]];
      case "kube-apiserver":
        return [this.binaries.kubeApiserver, [
          `--etcd-servers=http://127.0.0.1:${etcd}`,
          "--bind-address=127.0.0.1",
          "--advertise-address=127.0.0.1",
          `--secure-port=${apiserver}`,
          `--cert-dir=${path.join(dir, "apiserver-certs")}`,
          `--tls-cert-file=${pki.serverCert}`,
          `--tls-private-key-file=${pki.serverKey}`,
          `--client-ca-file=${pki.caCert}`,
          `--service-account-key-file=${pki.serviceAccountPub}`,
          `--service-account-signing-key-file=${pki.serviceAccountKey}`,
          "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
          "--api-audiences=https://kubernetes.default.svc.cluster.local",
          "--authorization-mode=Node,RBAC",
          "--enable-admission-plugins=NodeRestriction",
          // Without the node-lifecycle controller nothing would ever remove the not-ready taint it adds to new Nodes.
          "--disable-admission-plugins=TaintNodesByCondition",
          `--service-cluster-ip-range=${serviceCidr},${serviceCidrV6}`,
          "--allow-privileged=true",
          // The only address is loopback, which Endpoints reject; nothing here reaches the API through the kubernetes Service.
          "--endpoint-reconciler-type=none",
          "--profiling=false",
          "--v=1",
        ]];
      case "kube-controller-manager":
        return [this.binaries.kubeControllerManager, [
          `--kubeconfig=${this.#componentKubeconfig("kube-controller-manager")}`,
          `--controllers=${controllers.join(",")}`,
          `--service-account-private-key-file=${pki.serviceAccountKey}`,
          `--root-ca-file=${pki.caCert}`,
          // Each controller acts as its own service account with the bootstrap roles, as in a real cluster.
          "--use-service-account-credentials=true",
          "--leader-elect=false",
          "--secure-port=0",
          "--v=1",
        ]];
      case "kube-scheduler":
        return [this.binaries.kubeScheduler, [
          `--kubeconfig=${this.#componentKubeconfig("kube-scheduler")}`,
          "--leader-elect=false",
          "--secure-port=0",
          "--v=1",
        ]];
    }
  }

  #componentKubeconfig(name: ClientName): string {
    return name === "admin" ? this.kubeconfig : path.join(this.dir, `${name}.kubeconfig`);
  }

  async #writeKubeconfigs() {
    const ca = await readFile(this.pki.caCert);
    for (const name of ["admin", "kube-controller-manager", "kube-scheduler"] as const) {
      const { cert, key } = this.pki.clients[name];
      const config = {
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "netservice-local", cluster: { server: this.server, "certificate-authority-data": ca.toString("base64") } }],
        users: [{ name, user: {
          "client-certificate-data": (await readFile(cert)).toString("base64"),
          "client-key-data": (await readFile(key)).toString("base64"),
        } }],
        contexts: [{ name: "netservice-local", context: { cluster: "netservice-local", user: name } }],
        "current-context": "netservice-local",
      };
      await writeFile(this.#componentKubeconfig(name), JSON.stringify(config, null, 2), { mode: 0o600 });
    }
  }

  async #waitForEtcd() {
    await poll("etcd /health", 60_000, async () => {
      const response = await fetch(`http://127.0.0.1:${this.#ports.etcd}/health`);
      return response.ok;
    });
  }

  async #waitForApiserver() {
    await poll("kube-apiserver /readyz", 120_000, async () => (await this.get("/readyz")).status === 200);
  }

  async #waitForDefaultServiceAccount() {
    // The ServiceAccount admission plugin rejects pods until the serviceaccount controller has created "default".
    await poll("service account default/default", 60_000, async () => (await this.get("/api/v1/namespaces/default/serviceaccounts/default")).status === 200);
  }

  /** A GET as the admin, for readiness checks and tests that need raw responses. */
  async get(urlPath: string): Promise<{ status: number; body: string }> {
    const [ca, cert, key] = await Promise.all([readFile(this.pki.caCert), readFile(this.pki.clients.admin.cert), readFile(this.pki.clients.admin.key)]);
    return new Promise((resolve, reject) => {
      const req = request(`${this.server}${urlPath}`, { ca, cert, key, timeout: 5000 }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", reject);
      req.end();
    });
  }
}

async function poll(what: string, timeoutMs: number, check: () => Promise<boolean>) {
  const deadline = Date.now() + timeoutMs;
  let lastError = "";
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      lastError = (error as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${lastError ? `: ${lastError}` : ""}`);
}
