// The two programs as they run in a cluster: separate processes
// (node-agent/main.ts, aggregator/main.ts) with the service accounts of
// deploy/ and tokens bound to a pod on a node, exactly as the kubelet mounts
// them, so the node-report admission policy and RBAC apply and the audit log
// can tell replicas apart. A test can SIGKILL, SIGSTOP and restart them.
//
//   const programs = new Programs({ admin, server, caCert, dir, systemNamespace });
//   const agent = await programs.agent("sim-node-0");          // started, /readyz answered
//   const aggregator = await programs.aggregator("netservice-aggregator-a");
//   await aggregator.kill();                                  // SIGKILL, waits for the exit
//   await aggregator.start();                                 // the same program again
//   aggregator.pause(); aggregator.resume();                  // SIGSTOP / SIGCONT
//   await programs.stopAll();
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import type { KubeClients } from "../../../common/kube/client.ts";
import type { KubeObject } from "../../../common/kube/object.ts";
import { freePort, startProcess, type ManagedProcess } from "../../../hack/cluster/process.ts";
import { repoRoot } from "../../../hack/local-system.ts";
import { loadManifests } from "../../../hack/manifests.ts";

export type ProgramKind = "agent" | "aggregator";

export type ProgramsOptions = {
  admin: KubeClients;
  /** The API server URL programs use unless given a proxy. */
  server: string;
  caCert: string;
  /** Kubeconfigs and logs go here. */
  dir: string;
  systemNamespace: string;
  /** The node placeholder pods of aggregators are bound to. */
  aggregatorNode: string;
};

export class Programs {
  readonly #options: ProgramsOptions;
  readonly #running = new Set<Program>();
  #templates: Promise<KubeObject[]> | undefined;

  constructor(options: ProgramsOptions) {
    this.#options = options;
  }

  /** Starts the agent of `node` and waits until it is ready. */
  async agent(node: string, options: { server?: string; extraArgs?: string[] } = {}): Promise<Program> {
    const pod = await this.#placeholderPod("DaemonSet", "netservice-agent", `netservice-agent-${node}`, node);
    const kubeconfig = await this.#kubeconfig("netservice-agent", pod, options.server);
    const port = await freePort();
    const program = new Program(this, {
      kind: "agent",
      name: `agent-${node}`,
      args: [path.join(repoRoot, "node-agent", "main.ts"), "--node-name", node, "--kubeconfig", kubeconfig,
        "--namespace", this.#options.systemNamespace, "--metrics-port", String(port), ...(options.extraArgs ?? [])],
      port,
      logFile: path.join(this.#options.dir, `agent-${node}.log`),
    });
    await program.start();
    return program;
  }

  /** A kubeconfig holding the agent of `node`'s credentials (a token bound to its pod), for a test that acts as that agent. */
  async agentKubeconfig(node: string): Promise<string> {
    const pod = await this.#placeholderPod("DaemonSet", "netservice-agent", `netservice-agent-${node}`, node);
    return this.#kubeconfig("netservice-agent", pod);
  }

  /** Starts one aggregator replica (leader election on, as deployed) and waits until its caches are synced. */
  async aggregator(identity: string, options: { server?: string; extraArgs?: string[] } = {}): Promise<Program> {
    const pod = await this.#placeholderPod("Deployment", "netservice-aggregator", identity, this.#options.aggregatorNode);
    const kubeconfig = await this.#kubeconfig("netservice-aggregator", pod, options.server);
    const port = await freePort();
    const program = new Program(this, {
      kind: "aggregator",
      name: identity,
      args: [path.join(repoRoot, "aggregator", "main.ts"), "--kubeconfig", kubeconfig, "--namespace", this.#options.systemNamespace,
        "--identity", identity, "--metrics-port", String(port), ...(options.extraArgs ?? [])],
      port,
      logFile: path.join(this.#options.dir, `${identity}.log`),
    });
    await program.start();
    return program;
  }

  /** Stops every program still running (a paused one is resumed first), cleanly, then by force. */
  async stopAll(): Promise<void> {
    await Promise.allSettled([...this.#running].map((program) => program.stop()));
  }

  /** The programs still running, for a stop that waits: "agent sim-node-1 (pid 1234)". */
  running(): string[] {
    return [...this.#running].map((program) => `${program.kind} ${program.name}${program.pid ? ` (pid ${program.pid})` : ""}`);
  }

  /** @internal */
  track(program: Program, running: boolean): void {
    if (running) this.#running.add(program);
    else this.#running.delete(program);
  }

  // A pod on `node` made from deploy/'s own template, so that the token bound
  // to it carries the node name the admission policy checks.
  async #placeholderPod(kind: string, workload: string, name: string, node: string): Promise<KubeObject> {
    const http = this.#options.admin.http;
    const podPath = `/api/v1/namespaces/${this.#options.systemNamespace}/pods`;
    try {
      return await http.request<KubeObject>({ method: "GET", path: `${podPath}/${name}` });
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
    }
    this.#templates ??= loadManifests(path.join(repoRoot, "deploy", "netservice.yaml"));
    const template = (await this.#templates).find((o) => o.kind === kind && o.metadata?.name === workload) as
      | (KubeObject & { spec: { template: { metadata?: { labels?: Record<string, string> }; spec: Record<string, unknown> } } })
      | undefined;
    if (!template) throw new Error(`deploy/netservice.yaml has no ${kind} ${workload}`);
    return http.request<KubeObject>({
      method: "POST",
      path: podPath,
      body: { apiVersion: "v1", kind: "Pod", metadata: { name, labels: template.spec.template.metadata?.labels }, spec: { ...template.spec.template.spec, nodeName: node } },
    });
  }

  async #kubeconfig(serviceAccount: string, pod: KubeObject, server = this.#options.server): Promise<string> {
    const response = await this.#options.admin.http.request<{ status: { token: string } }>({
      method: "POST",
      path: `/api/v1/namespaces/${this.#options.systemNamespace}/serviceaccounts/${serviceAccount}/token`,
      body: {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenRequest",
        spec: { expirationSeconds: 7200, boundObjectRef: { kind: "Pod", apiVersion: "v1", name: pod.metadata?.name, uid: pod.metadata?.uid } },
      },
    });
    const name = `${pod.metadata?.name}${server === this.#options.server ? "" : "-proxied"}`;
    const file = path.join(this.#options.dir, `${name}.kubeconfig`);
    writeFileSync(file, JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "faults", cluster: { server, "certificate-authority-data": readFileSync(this.#options.caCert).toString("base64") } }],
      users: [{ name, user: { token: response.status.token } }],
      contexts: [{ name: "faults", context: { cluster: "faults", user: name } }],
      "current-context": "faults",
    }), { mode: 0o600 });
    return file;
  }
}

type ProgramSpec = { kind: ProgramKind; name: string; args: string[]; port: number; logFile: string };

export class Program {
  readonly kind: ProgramKind;
  readonly name: string;
  readonly logFile: string;
  readonly #programs: Programs;
  readonly #spec: ProgramSpec;
  #process: ManagedProcess | undefined;
  #paused = false;
  #starts = 0;

  constructor(programs: Programs, spec: ProgramSpec) {
    this.#programs = programs;
    this.#spec = spec;
    this.kind = spec.kind;
    this.name = spec.name;
    this.logFile = spec.logFile;
  }

  get pid(): number | undefined {
    return this.#process?.pid;
  }

  get running(): boolean {
    return this.#process?.running() ?? false;
  }

  /** How often this program was started: a crash loop shows here. */
  get starts(): number {
    return this.#starts;
  }

  /** Starts the process and waits until /readyz answers 200. */
  async start(timeoutMs = 120_000): Promise<void> {
    if (this.running) throw new Error(`${this.name} is already running (pid ${this.pid})`);
    this.#starts++;
    this.#paused = false;
    const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: process.env.NETSERVICE_FAULTS_LOG_LEVEL ?? "info", LOG_FORMAT: "json" };
    delete env.NODE_NAME;
    delete env.KUBECONFIG;
    this.#process = startProcess(this.name, process.execPath, this.#spec.args, this.#spec.logFile, env);
    this.#programs.track(this, true);
    const exited = this.#process.exited;
    void exited.then(() => this.#programs.track(this, false));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.running) throw new Error(`${this.name} exited during start-up; log:\n${this.#process.logTail(20)}`);
      if ((await this.#get("/readyz").catch(() => undefined))?.status === 200) return;
      if (Date.now() > deadline) throw new Error(`${this.name} not ready after ${timeoutMs / 1000} s; log:\n${this.#process.logTail(20)}`);
      await delay(250);
    }
  }

  /** Sends `signal` (SIGKILL by default) and, unless it is SIGSTOP or SIGCONT, waits for the exit. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const proc = this.#process;
    if (!proc?.running()) return;
    if (this.#paused && signal !== "SIGKILL") proc.kill("SIGCONT");
    proc.kill(signal);
    await proc.exited;
    this.#paused = false;
  }

  /** SIGSTOP: the process hangs with its connections open, as a stuck program does. */
  pause(): void {
    if (!this.#process?.running()) throw new Error(`${this.name} is not running`);
    this.#process.kill("SIGSTOP");
    this.#paused = true;
  }

  resume(): void {
    this.#process?.kill("SIGCONT");
    this.#paused = false;
  }

  /** SIGTERM (after SIGCONT if paused), SIGKILL after 10 s. */
  async stop(): Promise<void> {
    if (this.#paused) this.resume();
    await this.#process?.stop(10_000);
  }

  /** The value of a Prometheus metric (summed over label sets matching `labels`), or undefined if it is not there. */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
    const response = await this.#get("/metrics");
    let sum: number | undefined;
    for (const line of response.body.split("\n")) {
      const match = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)$/.exec(line);
      if (!match || match[1] !== name) continue;
      const present = Object.fromEntries([...(match[3] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
      if (Object.entries(labels).every(([key, value]) => present[key] === value)) sum = (sum ?? 0) + Number(match[4]);
    }
    return sum;
  }

  /** The program's log lines (pino JSON), parsed; lines that are not JSON are skipped. */
  logs(): Record<string, unknown>[] {
    let text = "";
    try {
      text = readFileSync(this.logFile, "utf8");
    } catch {
      return [];
    }
    const out: Record<string, unknown>[] = [];
    for (const line of text.split("\n")) {
      if (!line.startsWith("{")) continue;
      try {
        out.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // A line cut by SIGKILL.
      }
    }
    return out;
  }

  /** Log lines whose msg matches, optionally only those logged at or after `since`. */
  logged(msg: RegExp, since = 0): Record<string, unknown>[] {
    return this.logs().filter((line) => msg.test(String(line.msg ?? "")) && Date.parse(String(line.time ?? "")) >= since);
  }

  /** Log lines at error or fatal level (pino "level" label). */
  errors(since = 0): Record<string, unknown>[] {
    return this.logs().filter((line) => (line.level === "error" || line.level === "fatal") && Date.parse(String(line.time ?? "")) >= since);
  }

  async #get(urlPath: string): Promise<{ status: number; body: string }> {
    const response = await fetch(`http://127.0.0.1:${this.#spec.port}${urlPath}`, { signal: AbortSignal.timeout(5000) });
    return { status: response.status, body: await response.text() };
  }
}
