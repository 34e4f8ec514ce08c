// The one logger module. Configured from the environment:
//   LOG_LEVEL   trace | debug | info (default) | warn | error | fatal | silent
//   LOG_FORMAT  json (default: one JSON object per line, for log collectors)
//               | text (one readable line per entry, for a terminal)
//
//   createLogger(name, bindings?): Logger           child of the process-wide root logger
//   reconcileLogger(log, key): Logger                child with {key, reconcileId} for one reconcile
//   createRootLogger({env?, destination?}): Logger  a fresh root, for tests and embedding
//   type Logger                                      pino's Logger
//
//   const log = createLogger("aggregator", { node: nodeName });
//   reconcileLogger(log, "default/corens").info({ slices: 2 }, "reconciled");
import { randomBytes } from "node:crypto";
import { pino, type DestinationStream, type Logger } from "pino";

export type { Logger };

const levels = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];
const formats = ["json", "text"];

export interface RootLoggerOptions {
  env?: Record<string, string | undefined>;
  /** Where lines go. Default standard output. */
  destination?: DestinationStream;
}

/** Builds a root logger; throws at start-up on a LOG_LEVEL or LOG_FORMAT nobody can use. */
export function createRootLogger(options: RootLoggerOptions = {}): Logger {
  const env = options.env ?? process.env;
  const level = (env.LOG_LEVEL ?? "info").toLowerCase();
  const format = (env.LOG_FORMAT ?? "json").toLowerCase();
  if (!levels.includes(level)) {
    throw new Error(`LOG_LEVEL=${env.LOG_LEVEL} is not a log level; use one of ${levels.join(", ")}`);
  }
  if (!formats.includes(format)) {
    throw new Error(`LOG_FORMAT=${env.LOG_FORMAT} is not a log format; use one of ${formats.join(", ")}`);
  }
  const out = options.destination ?? pino.destination({ dest: 1, sync: false });
  return pino(
    {
      level,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    format === "text" ? textDestination(out) : out,
  );
}

let root: Logger | undefined;

/** A named child of the process-wide root logger, which is built from the environment on first use. */
export function createLogger(name: string, bindings: Record<string, unknown> = {}): Logger {
  root ??= createRootLogger();
  return root.child({ name, ...bindings });
}

/** One child per reconcile, so that one line of a log leads to all the others of the same pass. */
export function reconcileLogger(log: Logger, key: string): Logger {
  return log.child({ key, reconcileId: randomBytes(4).toString("hex") });
}

const omittedFromText = new Set(["time", "level", "name", "msg", "pid", "hostname", "err"]);

/** Rewrites pino's JSON lines as `time LEVEL name: msg k=v ...`, with an error's stack underneath. */
function textDestination(out: DestinationStream): DestinationStream {
  return {
    write(line: string) {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        out.write(line);
        return;
      }
      const fields = Object.entries(entry)
        .filter(([k]) => !omittedFromText.has(k))
        .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`);
      const name = typeof entry.name === "string" ? `${entry.name}: ` : "";
      const head = `${String(entry.time)} ${String(entry.level).toUpperCase().padEnd(5)} ${name}${String(entry.msg ?? "")}`;
      const err = entry.err as { stack?: string; message?: string } | undefined;
      const tail = err ? `\n    ${(err.stack ?? err.message ?? "").replaceAll("\n", "\n    ")}` : "";
      out.write(`${[head, ...fields].join(" ")}${tail}\n`);
    },
  };
}
