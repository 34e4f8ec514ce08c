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
 * the exit code. Memory stays bounded whatever the command prints: stdout up
 * to maxStdoutBytes (past that the command is killed and its code is
 * "stdout-overflow"), and the last 64 KiB of stderr.
 */
export function runCommand(argv: readonly string[], options: CommandOptions = {}): Promise<CommandResult> {
  const [file, ...args] = argv;
  if (!file) throw new Error("runCommand: empty argv");
  const maxStdoutBytes = options.maxStdoutBytes ?? 4 * 2 ** 20;
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"], env: options.env ?? process.env });
    const stdout = new OutputHead(maxStdoutBytes);
    const stderr = new OutputTail(stderrTailBytes);
    child.stdout.on("data", (chunk: Buffer) => {
      if (!stdout.push(chunk)) child.kill("SIGKILL");
    });
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    child.on("error", (error) => {
      clearTimeout(timer);
      resolve({ code: "spawn-error", stdout: stdout.text(), stderr: `${stderr.text()}${error.message}` });
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const overflow = stdout.overflowed ? `\n[netservice] ${file} printed more than ${maxStdoutBytes} bytes on stdout; killed` : "";
      resolve({ code: stdout.overflowed ? "stdout-overflow" : code ?? signal ?? "unknown", stdout: stdout.text(), stderr: `${stderr.text()}${overflow}` });
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(options.input ?? "");
  });
}

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
