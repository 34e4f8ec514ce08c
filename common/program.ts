// What both programs share around their controller: configuration errors
// with a message saying what to fix, flag value checks, and the life cycle
// of a long-running process - health and metrics endpoints, start, run until
// SIGTERM or SIGINT, stop cleanly (a second signal exits at once).
//
//   process.exitCode = await runUntilSignalled({ programName, log, clients, metricsPort, registry, controller, ... });
import type { Registry } from "prom-client";
import { serveHealth } from "./health-server.ts";
import type { Logger } from "./log.ts";

/** A mistake in flags or environment: the program exits with code 2 and this message. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Prints a configuration error the way both programs do and returns the exit code for it. */
export function configurationError(programName: string, err: unknown): number {
  process.stderr.write(`${programName}: ${describe(err)}\n`);
  return 2;
}

export function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function integerOption(flag: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const value = /^\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(`${flag} must be a whole number from ${min} to ${max}, got "${text}"`);
  }
  return value;
}

export type Controller = {
  readonly ready: boolean;
  /** For /healthz: a reason when the process is alive but stuck, so the kubelet restarts it. */
  readonly stalled?: () => string | undefined;
  start(): Promise<void>;
  stop(): Promise<void>;
};

export type RunOptions = {
  programName: string;
  log: Logger;
  clients: { close(): Promise<void> };
  /** 0: no health/metrics endpoint. */
  metricsPort: number;
  registry: Registry;
  controller: Controller;
  /** Logged when the program starts, e.g. its configuration. */
  startingFields: Record<string, unknown>;
  /** Called once start() resolved. */
  onStarted: () => void;
  /** Called after a clean stop, before the process exits. */
  onStopped?: () => void;
};

/** Serves /healthz, /readyz and /metrics, starts the controller and stops it on the first SIGTERM or SIGINT. */
export async function runUntilSignalled(options: RunOptions): Promise<number> {
  const { log, clients, controller } = options;
  let health;
  try {
    health = options.metricsPort > 0
      ? await serveHealth({ port: options.metricsPort, ready: () => controller.ready, ...(controller.stalled ? { stalled: controller.stalled } : {}), notReadyMessage: "caches not synced", registry: options.registry, logger: log })
      : undefined;
  } catch (err) {
    await clients.close();
    return configurationError(options.programName, new ConfigError(`cannot serve probes on port ${options.metricsPort}: ${describe(err)}; pass another --metrics-port`));
  }

  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    let received = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (received) {
        log.warn({ signal }, "second signal: exiting without finishing the stop");
        process.exit(130);
      }
      received = true;
      resolve(signal);
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });

  log.info(options.startingFields, "starting");
  // start() rejects only when a signal stops the controller before it has started.
  const started = controller.start().then(options.onStarted, () => {});
  const signal = await signalled;
  log.info({ signal }, "stopping");
  let code = 0;
  try {
    await controller.stop();
  } catch (err) {
    log.error({ err }, "stop failed");
    code = 1;
  }
  await started;
  await health?.close();
  await clients.close();
  options.onStopped?.();
  return code;
}
