// The aggregator program (the Deployment's container): configuration from
// flags and the environment, then one Aggregator until SIGTERM or SIGINT,
// which stop writing, release the Lease (so the other replica takes over at
// once) and exit.
//
//   node aggregator/main.ts [--kubeconfig PATH] [--namespace NS] [--identity ID] [--leader-elect[=false]]
//                           [--lease-name NAME] [--workers N] [--metrics-port PORT]
//
// Exit codes: 0 after a clean stop, 2 for a configuration error (with a
// message saying what to fix), 1 for anything else.
import { hostname } from "node:os";
import packageJson from "../package.json" with { type: "json" };
import { makeClients } from "../common/kube/client.ts";
import { loadKubeConfig } from "../common/kube/kubeconfig.ts";
import { createLogger, type Logger } from "../common/log.ts";
import { Aggregator } from "./aggregator.ts";
import { parseCommandLine, usage, type AggregatorConfig } from "./config.ts";
import { apiRequestMetrics } from "../common/api-metrics.ts";
import { configurationError as reportConfigurationError, runUntilSignalled } from "../common/program.ts";
import { aggregatorMetrics } from "./probes.ts";

const programName = "netservice-aggregator";

process.exitCode = await main(process.argv.slice(2), process.env);

async function main(argv: string[], env: Record<string, string | undefined>): Promise<number> {
  let config: AggregatorConfig;
  let log: Logger;
  try {
    const parsed = parseCommandLine(argv, env, { hostname: hostname(), pid: process.pid });
    if (parsed.help) {
      process.stdout.write(usage);
      return 0;
    }
    config = parsed.config;
    log = createLogger("aggregator", { identity: config.identity });
  } catch (err) {
    return configurationError(err);
  }

  let kubeConfig;
  try {
    kubeConfig = loadKubeConfig({ ...(config.kubeconfig !== undefined ? { kubeconfig: config.kubeconfig } : {}), env });
  } catch (err) {
    return configurationError(err);
  }
  let aggregator: Aggregator | undefined;
  const metrics = aggregatorMetrics(() => aggregator);
  const clients = makeClients(kubeConfig, { userAgent: `${programName}/${packageJson.version}`, observer: apiRequestMetrics(metrics.registry) });
  aggregator = new Aggregator(clients, {
    identity: config.identity,
    systemNamespace: config.systemNamespace,
    leaderElection: config.leaderElect,
    lease: { name: config.leaseName },
    workers: config.workers,
    statusCountsIntervalMs: config.statusCountsIntervalMs,
    minWriteIntervalMs: config.minWriteIntervalMs,
    heartbeatTimeoutMs: config.heartbeatTimeoutMs,
    logger: log,
    onReconciled: metrics.reconciled,
  });
  const running = aggregator;

  return runUntilSignalled({
    programName,
    log,
    clients,
    metricsPort: config.metricsPort,
    registry: metrics.registry,
    controller: aggregator,
    startingFields: {
      namespace: config.systemNamespace,
      leaderElect: config.leaderElect,
      workers: config.workers,
      server: kubeConfig.getCurrentCluster()?.server,
    },
    onStarted: () => log.info(config.leaderElect ? "caches synced; campaigning for the lease" : "caches synced; leading"),
    onStopped: () => log.info({ writes: running.metrics().writes }, "stopped"),
  });
}

function configurationError(err: unknown): number {
  return reportConfigurationError(programName, err);
}
