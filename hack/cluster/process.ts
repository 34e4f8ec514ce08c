// Child processes of the local control plane. Each is started under
// `setpriv --pdeathsig KILL`, so the kernel kills it if the Node process that
// started it dies without cleaning up (SIGKILL, a crashed test runner), and
// every live one is stopped on a normal exit or Ctrl-C.
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { fileTail } from "./output.ts";

export type ManagedProcess = {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL after graceMs; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
  kill(signal: NodeJS.Signals): void;
  running(): boolean;
  logTail(lines?: number): string;
};

const live = new Set<ChildProcess>();
const dirsToRemove = new Set<string>();
let hooksInstalled = false;

/** Removes dir when the process exits, if nobody removed it before. */
export function removeOnExit(dir: string): () => void {
  installExitHooks();
  dirsToRemove.add(dir);
  return () => dirsToRemove.delete(dir);
}

export function startProcess(name: string, binary: string, args: string[], logFile: string, env: NodeJS.ProcessEnv = process.env): ManagedProcess {
  installExitHooks();
  const log = createWriteStream(logFile, { flags: "a" });
  const usePdeathsig = existsSync("/usr/bin/setpriv");
  const child = usePdeathsig
    ? spawn("/usr/bin/setpriv", ["--pdeathsig", "KILL", "--", binary, ...args], { stdio: ["ignore", "pipe", "pipe"], env })
    : spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"], env });
  if (child.pid === undefined) throw new Error(`could not start ${name} (${binary})`);
  live.add(child);
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  const exited = new Promise<number | string>((resolve) => {
    child.on("exit", (code, signal) => {
      live.delete(child);
      resolve(code ?? signal ?? "unknown");
    });
    child.on("error", (error) => {
      live.delete(child);
      log.write(`\n[netservice] could not start ${binary}: ${error.message}\n`);
      resolve("spawn-error");
    });
  });
  void exited.then(() => log.end());
  const pid = child.pid;
  return {
    name,
    pid,
    logFile,
    exited,
    running: () => child.exitCode === null && child.signalCode === null,
    kill: (signal) => {
      child.kill(signal);
    },
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
    logTail(lines = 30) {
      try {
        // Only the file's end is read: a log can be gigabytes after a crash loop.
        return fileTail(logFile).split("\n").slice(-lines).join("\n");
      } catch {
        return "";
      }
    },
  };
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/**
 * Process-wide by necessity: exit and signal handlers belong to the process.
 * On SIGINT/SIGTERM the children are killed and the process exits with the
 * signal's usual code. A program with its own handler for the signal (a
 * graceful stop) gets time to finish first; if the process is still alive
 * after that - some libraries, such as tap's signal-exit, also listen and
 * step aside for other listeners - this handler ends it.
 */
function installExitHooks() {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", killAll);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(signal, () => {
      const exit = () => {
        killAll();
        process.exit(128 + (signal === "SIGINT" ? 2 : signal === "SIGTERM" ? 15 : 1));
      };
      if (process.listenerCount(signal) > 1) setTimeout(exit, gracefulStopMs).unref();
      else exit();
    });
  }
}

/** How long a program's own signal handler may take to stop before the children are killed anyway. */
const gracefulStopMs = 30_000;

function killAll() {
  for (const child of live) child.kill("SIGKILL");
  for (const dir of dirsToRemove) rmSync(dir, { recursive: true, force: true });
}
