// The node agent program (the DaemonSet's container): configuration from flags
// and the environment, then one NodeAgent until SIGTERM or SIGINT.
//
//   NODE_NAME=node-1 node node-agent/main.ts [--kubeconfig PATH] [--namespace NS] [--debounce-ms MS]
//                                            [--delete-report-on-exit] [--metrics-port PORT]
//
// Exit codes: 0 after a clean stop, 2 for a configuration error (with a
// message saying what to fix), 1 for anything else.
import packageJson from "../package.json" with { type: "json" };
import { createLogger, type Logger } from "../common/log.ts";
import { makeClients } from "../common/kube/client.ts";
import { loadKubeConfig } from "../common/kube/kubeconfig.ts";
import { NodeAgent } from "./agent.ts";
import { parseCommandLine, usage, type AgentConfig } from "./config.ts";
import { apiRequestMetrics } from "../common/api-metrics.ts";
import { configurationError as reportConfigurationError, runUntilSignalled } from "../common/program.ts";
import { agentMetrics } from "./probes.ts";

const programName = "netservice-agent";

process.exitCode = await main(process.argv.slice(2), process.env);

async function main(argv: string[], env: Record<string, string | undefined>): Promise<number> {
  let config: AgentConfig;
  let log: Logger;
  try {
    const parsed = parseCommandLine(argv, env);
    if (parsed.help) {
      process.stdout.write(usage);
      return 0;
    }
    config = parsed.config;
    log = createLogger("node-agent");
  } catch (err) {
    return configurationError(err);
  }

  let kubeConfig;
  try {
    kubeConfig = loadKubeConfig({ ...(config.kubeconfig !== undefined ? { kubeconfig: config.kubeconfig } : {}), env });
  } catch (err) {
    return configurationError(err);
  }
  let agent: NodeAgent | undefined;
  const metrics = agentMetrics(() => agent);
  const clients = makeClients(kubeConfig, { userAgent: `${programName}/${packageJson.version}`, observer: apiRequestMetrics(metrics.registry) });
  agent = new NodeAgent(config.nodeName, clients, {
    systemNamespace: config.systemNamespace,
    debounceMs: config.debounceMs,
    deleteReportOnStop: config.deleteReportOnExit,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    stallAfterMs: config.stallAfterMs,
    logger: log,
    onReportWritten: metrics.reportWritten,
  });
  const running = agent;

  return runUntilSignalled({
    programName,
    log,
    clients,
    metricsPort: config.metricsPort,
    registry: metrics.registry,
    controller: agent,
    startingFields: { namespace: config.systemNamespace, debounceMs: config.debounceMs, server: kubeConfig.getCurrentCluster()?.server },
    onStarted: () => log.info({ ...running.stats }, "caches synced and the node's report published"),
  });
}

function configurationError(err: unknown): number {
  return reportConfigurationError(programName, err);
}
