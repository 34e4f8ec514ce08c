// The aggregator's command line and environment -> its configuration, or an
// error that says what to fix. Pure, so start-up mistakes are caught by tests
// and crash at once, never later.
import { parseArgs } from "node:util";
import { defaultSystemNamespace } from "../common/api.ts";
import { isDnsLabel, isDnsSubdomain } from "../common/kube/names.ts";
import { ConfigError, integerOption } from "../common/program.ts";

export { ConfigError };
import { defaultLeaseName } from "./aggregator.ts";

export interface AggregatorConfig {
  /** An explicit kubeconfig; otherwise KUBECONFIG, in-cluster, ~/.kube/config (common/kube/client.ts). */
  kubeconfig?: string;
  systemNamespace: string;
  identity: string;
  leaderElect: boolean;
  leaseName: string;
  workers: number;
  /** AggregatorOptions.statusCountsIntervalMs and minWriteIntervalMs (aggregator/pacing.ts). */
  statusCountsIntervalMs: number;
  minWriteIntervalMs: number;
  /** Port of /healthz, /readyz and /metrics; 0 serves none. */
  metricsPort: number;
  /** AggregatorOptions.heartbeatTimeoutMs. */
  heartbeatTimeoutMs: number;
}

export type ParsedCommandLine = { help: true } | { help: false; config: AggregatorConfig };

export const usage = `Usage: node aggregator/main.ts [options]

Merges the nodes' NetServiceNodeReports into each NetService's Services,
Endpoints, EndpointSlices and status.

Options:
  --kubeconfig PATH         kubeconfig file (default: $KUBECONFIG, else in-cluster, else ~/.kube/config)
  --namespace NS            system namespace, where reports and the Lease live
                            (default: $POD_NAMESPACE, else ${defaultSystemNamespace})
  --identity ID             this replica's name in the Lease and in Events
                            (default: $POD_NAME, else <hostname>_<pid>)
  --leader-elect[=BOOL]     take part in leader election, so that only one replica writes (default true);
  --no-leader-elect         without it, run exactly one replica
  --lease-name NAME         the Lease to elect a leader with (default ${defaultLeaseName})
  --workers N               NetServices reconciled concurrently (default 4)
  --status-counts-interval-ms MS
                            write a NetService's status at most this often while only its endpoint
                            counts change (a condition change is written at once; default 1000)
  --min-write-interval-ms MS
                            write a NetService's Endpoints and EndpointSlices at most this often; a
                            change after a quiet interval goes at once (default 0: every change at once)
  --agent-heartbeat-timeout-seconds S
                            publish a node's endpoints not ready once its agent has not renewed its
                            heartbeat Lease for this long (default 40; 0 ignores heartbeats, leaving only
                            the Node's own Ready condition and unreachable taint)
  --metrics-port PORT       serve /healthz, /readyz and /metrics on this port; 0 disables (default 8080)
  -h, --help                show this help

Environment: LOG_LEVEL (trace..fatal, silent; default info), LOG_FORMAT (json or text).
`;

export function parseCommandLine(
  argv: readonly string[],
  env: Record<string, string | undefined>,
  host: { hostname: string; pid: number },
): ParsedCommandLine {
  let values;
  try {
    ({ values } = parseArgs({
      args: normaliseBooleanFlags(argv),
      strict: true,
      allowPositionals: false,
      allowNegative: true,
      options: {
        kubeconfig: { type: "string" },
        namespace: { type: "string" },
        identity: { type: "string" },
        "leader-elect": { type: "boolean", default: true },
        "lease-name": { type: "string" },
        workers: { type: "string" },
        "status-counts-interval-ms": { type: "string" },
        "min-write-interval-ms": { type: "string" },
        "metrics-port": { type: "string" },
        "agent-heartbeat-timeout-seconds": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (err) {
    throw new ConfigError(`${err instanceof Error ? err.message : String(err)} (see --help)`);
  }
  if (values.help) return { help: true };

  const systemNamespace = values.namespace ?? (env.POD_NAMESPACE || defaultSystemNamespace);
  if (!isDnsLabel(systemNamespace)) {
    throw new ConfigError(`namespace "${systemNamespace}" is not a namespace name (at most 63 lowercase letters, digits and "-")`);
  }
  const identity = values.identity ?? (env.POD_NAME || `${host.hostname}_${host.pid}`);
  if (identity === "" || identity.length > 128) {
    throw new ConfigError(`identity "${identity}" must be 1 to 128 characters (it names this replica in the Lease and in Events)`);
  }
  const leaseName = values["lease-name"] ?? defaultLeaseName;
  if (!isDnsSubdomain(leaseName)) {
    throw new ConfigError(`lease name "${leaseName}" is not an object name (a DNS subdomain: lowercase letters, digits, "-" and ".")`);
  }
  const kubeconfig = values.kubeconfig;
  if (kubeconfig === "") throw new ConfigError("--kubeconfig needs a file path");
  return {
    help: false,
    config: {
      ...(kubeconfig !== undefined ? { kubeconfig } : {}),
      systemNamespace,
      identity,
      leaderElect: values["leader-elect"],
      leaseName,
      workers: integerOption("--workers", values.workers, 4, 1, 64),
      statusCountsIntervalMs: integerOption("--status-counts-interval-ms", values["status-counts-interval-ms"], 1000, 0, 600_000),
      minWriteIntervalMs: integerOption("--min-write-interval-ms", values["min-write-interval-ms"], 0, 0, 60_000),
      metricsPort: integerOption("--metrics-port", values["metrics-port"], 8080, 0, 65_535),
      heartbeatTimeoutMs: 1000 * integerOption("--agent-heartbeat-timeout-seconds", values["agent-heartbeat-timeout-seconds"], 40, 0, 3600),
    },
  };
}

// Kubernetes components spell booleans --flag=false; parseArgs knows only
// --flag and --no-flag.
function normaliseBooleanFlags(argv: readonly string[]): string[] {
  return argv.map((arg) => {
    const match = /^--leader-elect=(.*)$/.exec(arg);
    if (!match) return arg;
    const value = (match[1] ?? "").toLowerCase();
    if (value === "true" || value === "1") return "--leader-elect";
    if (value === "false" || value === "0") return "--no-leader-elect";
    throw new ConfigError(`--leader-elect takes true or false, got "${match[1]}"`);
  });
}
