// Everything one real-network run creates on this machine, by exact name, so
// that all of it is removed again: network namespaces (deleting one removes
// every link, bridge, macvlan and vxlan inside it) and one working directory
// (CNI state, IPAM state, configuration, logs). Nothing is ever created in
// the machine's own network namespace.
//
//   const scope = await RunScope.create();       // ns-<id>-..., /tmp/netservice-realnet-<id>
//   const name = await scope.addNetns("fabric"); // "ns-<id>-fabric", recorded before it exists
//   await scope.release();                       // deletes exactly what was recorded
//
// The record is a file in the working directory, written before each
// namespace is created. A run whose process died without releasing (SIGKILL)
// is released by the next RunScope.create() on this machine, once its owner
// process is verifiably gone. A normal exit or Ctrl-C releases synchronously.
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { removeOnExit } from "../cluster/process.ts";
import { mustRun, runCommandSync } from "./command.ts";

const dirPrefix = "netservice-realnet-";
const ownerFile = "owner.json";

type Owner = { pid: number; startTime: string; netns: string[] };

export class RunScope {
  readonly id: string;
  /** The run's working directory. */
  readonly dir: string;
  readonly #netns: string[] = [];
  /** Names whose `ip netns add` has not finished: an exit handler must wait for them. */
  readonly #creating = new Set<string>();
  readonly #forgetDir: () => void;
  readonly #onExit = () => this.#releaseSync();
  #released = false;

  private constructor(id: string, dir: string) {
    this.id = id;
    this.dir = dir;
    this.#forgetDir = removeOnExit(dir);
    // Registered after removeOnExit's hooks, so it runs after the processes of this run were killed.
    process.on("exit", this.#onExit);
  }

  /** Releases what dead earlier runs left behind, then starts a run with a fresh id. */
  static async create(report: (line: string) => void = () => undefined): Promise<RunScope> {
    releaseOrphans(report);
    const id = randomBytes(4).toString("hex");
    const dir = path.join(tmpdir(), `${dirPrefix}${id}`);
    await mkdir(dir, { mode: 0o700 });
    const scope = new RunScope(id, dir);
    scope.#writeOwner();
    return scope;
  }

  /** The namespace name this run uses for `suffix`: ns-<id>-<suffix>. */
  netnsName(suffix: string): string {
    return `ns-${this.id}-${suffix}`;
  }

  /** Creates the network namespace ns-<id>-<suffix> and returns its name. */
  async addNetns(suffix: string): Promise<string> {
    if (this.#released) throw new Error(`real-network run ${this.id} was released`);
    const name = this.netnsName(suffix);
    this.#netns.push(name);
    this.#writeOwner();
    this.#creating.add(name);
    try {
      await mustRun(["ip", "netns", "add", name]);
    } finally {
      this.#creating.delete(name);
    }
    return name;
  }

  /** Deletes one namespace of this run (a pod sandbox going away). */
  async deleteNetns(name: string): Promise<void> {
    if (!this.#netns.includes(name)) throw new Error(`network namespace ${name} does not belong to run ${this.id}`);
    await deleteNetnsIfPresent(name);
    // Looked up again: other namespaces may have gone while this one was deleted.
    const index = this.#netns.indexOf(name);
    if (index >= 0) this.#netns.splice(index, 1);
    this.#writeOwner();
  }

  netnsList(): string[] {
    return [...this.#netns];
  }

  /** Deletes every namespace of the run, newest first, and the working directory. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    const failures: string[] = [];
    for (const name of [...this.#netns].reverse()) {
      try {
        await deleteNetnsIfPresent(name);
      } catch (error) {
        failures.push((error as Error).message);
      }
    }
    this.#netns.length = 0;
    process.off("exit", this.#onExit);
    if (failures.length > 0) {
      // Keep the record, so the next run retries by name.
      throw new Error(`real-network run ${this.id}: could not delete ${failures.length} namespaces:\n${failures.join("\n")}`);
    }
    await rm(this.dir, { recursive: true, force: true });
    this.#forgetDir();
  }

  #releaseSync() {
    if (this.#released) return;
    this.#released = true;
    for (const name of [...this.#netns].reverse()) runCommandSync(["ip", "netns", "delete", name]);
    // An `ip netns add` started just before the exit outlives this process; give it a moment to finish, then delete.
    const deadline = Date.now() + 2000;
    for (const name of this.#creating) {
      while (!existsSync(path.join("/run/netns", name)) && Date.now() < deadline) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
      runCommandSync(["ip", "netns", "delete", name]);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  #writeOwner() {
    const owner: Owner = { pid: process.pid, startTime: processStartTime(process.pid) ?? "", netns: this.#netns };
    writeFileSync(path.join(this.dir, ownerFile), JSON.stringify(owner));
  }
}

async function deleteNetnsIfPresent(name: string): Promise<void> {
  if (!existsSync(path.join("/run/netns", name))) return;
  await mustRun(["ip", "netns", "delete", name]);
}

/** Runs whose owner process is gone: their recorded namespaces and their directory. */
function releaseOrphans(report: (line: string) => void) {
  let entries: string[];
  try {
    entries = readdirSync(tmpdir()).filter((entry) => /^netservice-realnet-[0-9a-f]{8}$/.test(entry));
  } catch {
    return;
  }
  for (const entry of entries) {
    const dir = path.join(tmpdir(), entry);
    let owner: Owner;
    try {
      owner = JSON.parse(readFileSync(path.join(dir, ownerFile), "utf8")) as Owner;
    } catch {
      continue; // Being created right now, or not ours to judge.
    }
    if (processStartTime(owner.pid) === owner.startTime) continue; // Still running.
    for (const name of owner.netns) {
      if (name.startsWith(`ns-${entry.slice(dirPrefix.length)}-`)) runCommandSync(["ip", "netns", "delete", name]);
    }
    rmSync(dir, { recursive: true, force: true });
    report(`released ${owner.netns.length} network namespaces and ${dir} of an earlier run whose process ${owner.pid} is gone`);
  }
}

/** Field 22 of /proc/<pid>/stat: tells a live process from a later one that reuses its pid. */
function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}
