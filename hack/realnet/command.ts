// Runs the short-lived commands of the real-network mode (iproute2, nsenter,
// CNI plugins) and says exactly what failed when one does.
import { spawn, spawnSync } from "node:child_process";
import { OutputHead, OutputTail } from "../cluster/output.ts";

export type CommandResult = { code: number | string; stdout: string; stderr: string };

export type CommandOptions = {
  input?: string;
  env?: NodeJS.ProcessEnv;
  /** Killed (by its pid) after this long. Default 60 s. */
  timeoutMs?: number;
  /** Killed (by its pid) once stdout passes this size; the result then says so. Default 4 MiB. */
  maxStdoutBytes?: number;
};

/** Of stderr only the end is kept: it is for error messages. */
const stderrTailBytes = 64 * 1024;

export class CommandError extends Error {
  readonly result: CommandResult;
  constructor(argv: readonly string[], result: CommandResult) {
    super(`${argv.join(" ")} failed (${result.code}): ${(result.stderr.trim() || result.stdout.trim()).slice(-2000)}`);
    this.name = "CommandError";
    this.result = result;
  }
}

/**
 * Runs argv[0] with the rest as arguments; resolves with its output whatever
 * the exit code. It always resolves within the timeout (plus a moment):
 *
 * - The command runs in a process group of its own, and a timeout kills the
 *   whole group. A CNI plugin's delegates (Multus runs bridge, host-local,
 *   ...) share its stderr; killing only the plugin would leave them holding
 *   the pipe, and the result would never come.
 * - Once the command has exited, output still held open by a process it
 *   left behind is waited for only briefly; then that group is killed too.
 * - Memory stays bounded whatever it prints: stdout up to maxStdoutBytes
 *   (past that it is killed and its code is "stdout-overflow"), and the last
 *   64 KiB of stderr.
 */
export function runCommand(argv: readonly string[], options: CommandOptions = {}): Promise<CommandResult> {
  const [file, ...args] = argv;
  if (!file) throw new Error("runCommand: empty argv");
  const maxStdoutBytes = options.maxStdoutBytes ?? 4 * 2 ** 20;
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"], env: options.env ?? process.env, detached: true });
    const stdout = new OutputHead(maxStdoutBytes);
    const stderr = new OutputTail(stderrTailBytes);
    const notes: string[] = [];
    let exit: { code: number | string } | undefined;
    let drain: NodeJS.Timeout | undefined;
    const killGroup = () => {
      // The group's id is the command's pid: only what this command started is in it.
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
      } catch {
        child.kill("SIGKILL");
      }
    };
    const finish = (code: number | string) => {
      clearTimeout(timer);
      clearTimeout(drain);
      if (stdout.overflowed) notes.push(`printed more than ${maxStdoutBytes} bytes on stdout; killed`);
      const suffix = notes.map((note) => `\n[netservice] ${file} ${note}`).join("");
      resolve({ code: stdout.overflowed ? "stdout-overflow" : code, stdout: stdout.text(), stderr: `${stderr.text()}${suffix}` });
    };
    child.stdout.on("data", (chunk: Buffer) => {
      if (!stdout.push(chunk)) killGroup();
    });
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    const timer = setTimeout(() => {
      notes.push(`did not finish within ${timeoutMs / 1000} s; killed with its process group`);
      killGroup();
    }, timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      clearTimeout(drain);
      resolve({ code: "spawn-error", stdout: stdout.text(), stderr: `${stderr.text()}${error.message}` });
    });
    child.on("exit", (code, signal) => {
      exit = { code: code ?? signal ?? "unknown" };
      drain = setTimeout(() => {
        notes.push("exited, but a process it started kept its output open; killed its process group");
        killGroup();
        child.stdout.destroy();
        child.stderr.destroy();
        finish(exit?.code ?? "unknown");
      }, outputDrainMs);
    });
    child.on("close", (code, signal) => finish(exit?.code ?? code ?? signal ?? "unknown"));
    child.stdin.on("error", () => undefined);
    child.stdin.end(options.input ?? "");
  });
}

/** How long output may stay open after the command exited. */
const outputDrainMs = 2000;

/** Like runCommand, but a non-zero exit is a CommandError. Resolves with stdout. */
export async function mustRun(argv: readonly string[], options: CommandOptions = {}): Promise<string> {
  const result = await runCommand(argv, options);
  if (result.code !== 0) throw new CommandError(argv, result);
  return result.stdout;
}

/** For process exit handlers, where nothing asynchronous runs any more. */
export function runCommandSync(argv: readonly string[]): CommandResult {
  const [file, ...args] = argv;
  const result = spawnSync(file ?? "", args, { encoding: "utf8", timeout: 10_000, maxBuffer: 1024 * 1024 });
  return { code: result.status ?? result.signal ?? "spawn-error", stdout: result.stdout ?? "", stderr: result.stderr ?? String(result.error ?? "") };
}
