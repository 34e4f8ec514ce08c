// npm run cluster -- up|down|status|build
//   up     starts a local control plane in the background; the last line printed is `export KUBECONFIG=<path>`
//   down   stops it and removes its files
//   status says whether one is running
//   build  only builds (or finds cached) binaries: the control plane's, and helm for the chart's tests
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { cacheRoot, ensureBinaries, ensureHelm } from "./binaries.ts";
import { fileTail } from "./output.ts";
import { ControlPlane } from "./control-plane.ts";

type State = { pid: number; kubeconfig: string; server: string; dir: string };

const stateDir = path.join(cacheRoot(), "run");
const stateFile = path.join(stateDir, "cluster.json");
const daemonLog = path.join(stateDir, "cluster.log");

const commands: Record<string, () => Promise<void>> = { up, down, status, build, serve };

const command = process.argv[2] ?? "";
const handler = commands[command];
if (!handler || command === "serve" && process.env.NETSERVICE_CLUSTER_DAEMON !== "1") {
  process.stderr.write("usage: npm run cluster -- up|down|status|build\n");
  process.exit(2);
}
handler().catch((error: Error) => {
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
});

async function up() {
  const running = await readState();
  if (running) {
    process.stdout.write(`a local control plane is already running (pid ${running.pid})\nexport KUBECONFIG=${running.kubeconfig}\n`);
    return;
  }
  // Build in the foreground so the progress shows; the daemon then finds the binaries cached.
  await ensureBinaries();
  await mkdir(stateDir, { recursive: true });
  const log = openSync(daemonLog, "w");
  const daemon = spawn(process.execPath, [import.meta.filename, "serve"], {
    detached: true,
    stdio: ["ignore", log, log],
    env: { ...process.env, NETSERVICE_CLUSTER_DAEMON: "1" },
  });
  closeSync(log);
  daemon.unref();
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline) {
    const state = await readState();
    if (state) {
      process.stdout.write(`local control plane running at ${state.server} (pid ${state.pid}); stop it with: npm run cluster -- down\n`);
      process.stdout.write(`export KUBECONFIG=${state.kubeconfig}\n`);
      return;
    }
    if (daemon.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  let tail = "";
  try {
    tail = fileTail(daemonLog, 3000);
  } catch {
    // No log at all: the message still names where it would be.
  }
  throw new Error(`the control plane did not start; see ${daemonLog}:\n${tail}`);
}

async function down() {
  const state = await readState();
  if (!state) {
    process.stdout.write("no local control plane is running\n");
    return;
  }
  process.kill(state.pid, "SIGTERM");
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && isAlive(state.pid)) await new Promise((resolve) => setTimeout(resolve, 200));
  if (isAlive(state.pid)) process.kill(state.pid, "SIGKILL");
  await rm(stateFile, { force: true });
  await rm(state.dir, { recursive: true, force: true });
  process.stdout.write(`stopped the local control plane (pid ${state.pid})\n`);
}

async function status() {
  const state = await readState();
  process.stdout.write(state ? `running at ${state.server} (pid ${state.pid})\nexport KUBECONFIG=${state.kubeconfig}\n` : "not running\n");
}

async function build() {
  const binaries = { ...(await ensureBinaries()), helm: await ensureHelm() };
  for (const [name, file] of Object.entries(binaries)) process.stdout.write(`${name}\t${file}\n`);
}

/** The background process behind `up`: owns the control plane until SIGTERM. */
async function serve() {
  const plane = await ControlPlane.start();
  const state: State = { pid: process.pid, kubeconfig: plane.kubeconfig, server: plane.server, dir: plane.dir };
  await writeFile(stateFile, JSON.stringify(state));
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await plane.stop();
    await rm(stateFile, { force: true });
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop());
  process.on("SIGINT", () => void stop());
  for (const proc of plane.processes.values()) {
    void proc.exited.then(async (code) => {
      process.stderr.write(`${proc.name} exited (${code}); stopping the control plane\n`);
      await stop();
    });
  }
}

async function readState(): Promise<State | undefined> {
  try {
    const state = JSON.parse(await readFile(stateFile, "utf8")) as State;
    return isAlive(state.pid) ? state : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
