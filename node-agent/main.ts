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
import { loadKubeConfig, makeClients } from "../common/kube/client.ts";
import { NodeAgent } from "./agent.ts";
import { ConfigError, parseCommandLine, usage, type AgentConfig } from "./config.ts";
import { apiRequestMetrics } from "../common/api-metrics.ts";
import { serveHealth } from "../common/health-server.ts";
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
    logger: log,
    onReportWritten: metrics.reportWritten,
  });
  const running = agent;

  let probes;
  try {
    probes = config.metricsPort > 0 ? await serveHealth({ port: config.metricsPort, ready: () => agent?.ready ?? false, notReadyMessage: "caches not synced", registry: metrics.registry, logger: log }) : undefined;
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
    { namespace: config.systemNamespace, debounceMs: config.debounceMs, server: kubeConfig.getCurrentCluster()?.server },
    "starting",
  );
  // start() rejects only when a signal stops the agent before its first report.
  const started = running.start().then(
    () => log.info({ ...running.stats }, "caches synced and the node's report published"),
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
  return code;
}

function configurationError(err: unknown): number {
  process.stderr.write(`${programName}: ${describe(err)}\n`);
  return 2;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
