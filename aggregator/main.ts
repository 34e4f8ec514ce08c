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
import { loadKubeConfig, makeClients } from "../common/kube/client.ts";
import { createLogger, type Logger } from "../common/log.ts";
import { Aggregator } from "./aggregator.ts";
import { ConfigError, parseCommandLine, usage, type AggregatorConfig } from "./config.ts";
import { apiRequestMetrics } from "../common/api-metrics.ts";
import { serveHealth } from "../common/health-server.ts";
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
    logger: log,
    onReconciled: metrics.reconciled,
  });
  const running = aggregator;

  let probes;
  try {
    probes =
      config.metricsPort > 0
        ? await serveHealth({ port: config.metricsPort, ready: () => aggregator?.ready ?? false, notReadyMessage: "caches not synced", registry: metrics.registry, logger: log })
        : undefined;
  } catch (err) {
    await clients.close();
    return configurationError(new ConfigError(`cannot serve probes on port ${config.metricsPort}: ${describe(err)}; pass another --metrics-port`));
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

  log.info(
    {
      namespace: config.systemNamespace,
      leaderElect: config.leaderElect,
      workers: config.workers,
      server: kubeConfig.getCurrentCluster()?.server,
    },
    "starting",
  );
  // start() rejects only when a signal stops the aggregator before its caches synced.
  const started = running.start().then(
    () => log.info(config.leaderElect ? "caches synced; campaigning for the lease" : "caches synced; leading"),
    () => {},
  );
  const signal = await signalled;
  log.info({ signal }, "stopping");
  let code = 0;
  try {
    await running.stop();
  } catch (err) {
    log.error({ err }, "stop failed");
    code = 1;
  }
  await started;
  await probes?.close();
  await clients.close();
  log.info({ writes: running.metrics().writes }, "stopped");
  return code;
}

function configurationError(err: unknown): number {
  process.stderr.write(`${programName}: ${describe(err)}\n`);
  return 2;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
