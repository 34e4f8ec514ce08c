// The agent's command line and environment -> its configuration, or an error
// that says what to fix. Pure, so start-up mistakes are caught by tests and
// crash at once, never later.
import { parseArgs } from "node:util";
import { defaultSystemNamespace } from "../common/api.ts";
import { isDnsLabel, isDnsSubdomain } from "../common/kube/names.ts";
import { ConfigError, integerOption } from "../common/program.ts";

export { ConfigError };

export interface AgentConfig {
  nodeName: string;
  /** An explicit kubeconfig; otherwise KUBECONFIG, in-cluster, ~/.kube/config (common/kube/client.ts). */
  kubeconfig?: string;
  systemNamespace: string;
  debounceMs: number;
  deleteReportOnExit: boolean;
  /** Port of /healthz, /readyz and /metrics; 0 serves none. */
  metricsPort: number;
  /** NodeAgentOptions.heartbeatIntervalMs and stallAfterMs. */
  heartbeatIntervalMs: number;
  stallAfterMs: number;
}

export type ParsedCommandLine = { help: true } | { help: false; config: AgentConfig };

export const usage = `Usage: node node-agent/main.ts [options]

Publishes this node's pods' secondary-network addresses for NetServices, as
one NetServiceNodeReport named <node>.0 (and <node>.1, ... if it needs parts),
and renews the node's heartbeat Lease.

Options:
  --node-name NAME          the node this agent runs on (default: $NODE_NAME; required)
  --kubeconfig PATH         kubeconfig file (default: $KUBECONFIG, else in-cluster, else ~/.kube/config)
  --namespace NS            system namespace, where reports live (default: $POD_NAMESPACE, else ${defaultSystemNamespace})
  --debounce-ms MS          collect changes this long before one recompute (default 0: at once;
                            changes that arrive while a write is in flight still go out together)
  --delete-report-on-exit   delete the node's report on SIGTERM/SIGINT (default: keep it, so a
                            restart does not blank the node's endpoints; use when removing the agent)
  --heartbeat-interval-seconds S
                            renew the node's heartbeat Lease this often while the agent makes progress
                            (default 10; the aggregator's timeout, default 40 s, must be several times it)
  --stall-timeout-seconds S /healthz fails once due work, or one recompute, has waited this long (default 120)
  --metrics-port PORT       serve /healthz, /readyz and /metrics on this port; 0 disables (default 8080)
  -h, --help                show this help

Environment: LOG_LEVEL (trace..fatal, silent; default info), LOG_FORMAT (json or text).
`;

export function parseCommandLine(argv: readonly string[], env: Record<string, string | undefined>): ParsedCommandLine {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        "node-name": { type: "string" },
        kubeconfig: { type: "string" },
        namespace: { type: "string" },
        "debounce-ms": { type: "string" },
        "delete-report-on-exit": { type: "boolean", default: false },
        "metrics-port": { type: "string" },
        "heartbeat-interval-seconds": { type: "string" },
        "stall-timeout-seconds": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (err) {
    throw new ConfigError(`${err instanceof Error ? err.message : String(err)} (see --help)`);
  }
  if (values.help) return { help: true };

  const nodeName = values["node-name"] ?? env.NODE_NAME ?? "";
  if (nodeName === "") {
    throw new ConfigError(
      "no node name: pass --node-name NAME or set NODE_NAME (in a DaemonSet, from the downward API: " +
        "env NODE_NAME valueFrom fieldRef fieldPath spec.nodeName)",
    );
  }
  if (!isDnsSubdomain(nodeName)) {
    throw new ConfigError(`node name "${nodeName}" is not a Kubernetes node name (a DNS subdomain: lowercase letters, digits, "-" and ".")`);
  }
  if (nodeName.length > 250) {
    throw new ConfigError(`node name "${nodeName.slice(0, 40)}..." is ${nodeName.length} characters: report parts are named <node>.<0-64>, which fits object names (253) only for node names of at most 250`);
  }
  const systemNamespace = values.namespace ?? (env.POD_NAMESPACE || defaultSystemNamespace);
  if (!isDnsLabel(systemNamespace)) {
    throw new ConfigError(`namespace "${systemNamespace}" is not a namespace name (at most 63 lowercase letters, digits and "-")`);
  }
  const debounceMs = integerOption("--debounce-ms", values["debounce-ms"], 0, 0, 60_000);
  const metricsPort = integerOption("--metrics-port", values["metrics-port"], 8080, 0, 65_535);
  const kubeconfig = values.kubeconfig;
  if (kubeconfig === "") throw new ConfigError("--kubeconfig needs a file path");
  return {
    help: false,
    config: {
      nodeName,
      ...(kubeconfig !== undefined ? { kubeconfig } : {}),
      systemNamespace,
      debounceMs,
      deleteReportOnExit: values["delete-report-on-exit"],
      metricsPort,
      heartbeatIntervalMs: 1000 * integerOption("--heartbeat-interval-seconds", values["heartbeat-interval-seconds"], 10, 1, 600),
      stallAfterMs: 1000 * integerOption("--stall-timeout-seconds", values["stall-timeout-seconds"], 120, 10, 3600),
    },
  };
}
