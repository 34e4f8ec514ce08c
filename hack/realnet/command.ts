// Runs the short-lived commands of the real-network mode (iproute2, nsenter,
// CNI plugins) and says exactly what failed when one does.
import { spawn, spawnSync } from "node:child_process";

export type CommandResult = { code: number | string; stdout: string; stderr: string };

export type CommandOptions = {
  input?: string;
  env?: NodeJS.ProcessEnv;
  /** Killed (by its pid) after this long. Default 60 s. */
  timeoutMs?: number;
};

export class CommandError extends Error {
  readonly result: CommandResult;
  constructor(argv: readonly string[], result: CommandResult) {
    super(`${argv.join(" ")} failed (${result.code}): ${(result.stderr.trim() || result.stdout.trim()).slice(-2000)}`);
    this.name = "CommandError";
    this.result = result;
  }
}

/** Runs argv[0] with the rest as arguments; resolves with its output whatever the exit code. */
export function runCommand(argv: readonly string[], options: CommandOptions = {}): Promise<CommandResult> {
  const [file, ...args] = argv;
  if (!file) throw new Error("runCommand: empty argv");
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"], env: options.env ?? process.env });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    child.on("error", (error) => {
      clearTimeout(timer);
      resolve({ code: "spawn-error", stdout, stderr: `${stderr}${error.message}` });
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal ?? "unknown", stdout, stderr });
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
  const result = spawnSync(file ?? "", args, { encoding: "utf8", timeout: 10_000 });
  return { code: result.status ?? result.signal ?? "spawn-error", stdout: result.stdout ?? "", stderr: result.stderr ?? String(result.error ?? "") };
}
