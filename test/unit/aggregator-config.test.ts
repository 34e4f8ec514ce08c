// The aggregator's command line: defaults from the pod's environment, the
// spellings Kubernetes components use, and errors that say what to fix.
import t from "tap";
import { ConfigError, parseCommandLine, type AggregatorConfig } from "../../aggregator/config.ts";

const host = { hostname: "box", pid: 42 };
const defaults: AggregatorConfig = {
  systemNamespace: "netservice-system",
  identity: "box_42",
  leaderElect: true,
  leaseName: "netservice-aggregator",
  workers: 4,
  statusCountsIntervalMs: 1000,
  minWriteIntervalMs: 0,
  metricsPort: 8080,
  heartbeatTimeoutMs: 40_000,
};

t.test("flags and environment become a configuration", async (t) => {
  const cases: { name: string; argv: string[]; env?: Record<string, string>; expect: Partial<AggregatorConfig> }[] = [
    { name: "defaults", argv: [], expect: {} },
    { name: "the Deployment's environment", argv: [], env: { POD_NAME: "agg-7d9-x", POD_NAMESPACE: "kube-net" }, expect: { identity: "agg-7d9-x", systemNamespace: "kube-net" } },
    { name: "flags win over the environment", argv: ["--identity", "me", "--namespace", "ns1"], env: { POD_NAME: "p", POD_NAMESPACE: "q" }, expect: { identity: "me", systemNamespace: "ns1" } },
    { name: "--leader-elect alone", argv: ["--leader-elect"], expect: { leaderElect: true } },
    { name: "--leader-elect=false", argv: ["--leader-elect=false"], expect: { leaderElect: false } },
    { name: "--leader-elect=true", argv: ["--leader-elect=true"], expect: { leaderElect: true } },
    { name: "--no-leader-elect", argv: ["--no-leader-elect"], expect: { leaderElect: false } },
    { name: "pacing of writes", argv: ["--status-counts-interval-ms", "0", "--min-write-interval-ms", "250"], expect: { statusCountsIntervalMs: 0, minWriteIntervalMs: 250 } },
    { name: "heartbeats ignored", argv: ["--agent-heartbeat-timeout-seconds", "0"], expect: { heartbeatTimeoutMs: 0 } },
    { name: "workers, lease, port, kubeconfig", argv: ["--workers", "8", "--lease-name", "agg", "--metrics-port", "0", "--kubeconfig", "/k"], expect: { workers: 8, leaseName: "agg", metricsPort: 0, kubeconfig: "/k" } },
  ];
  for (const c of cases) {
    t.same(parseCommandLine(c.argv, c.env ?? {}, host), { help: false, config: { ...defaults, ...c.expect } }, c.name);
  }
  t.same(parseCommandLine(["-h"], {}, host), { help: true });
});

t.test("mistakes are refused at start with what to do", async (t) => {
  const cases: { argv: string[]; message: RegExp }[] = [
    { argv: ["--workers", "0"], message: /--workers must be a whole number from 1 to 64, got "0"/ },
    { argv: ["--workers", "two"], message: /--workers must be a whole number/ },
    { argv: ["--leader-elect=maybe"], message: /--leader-elect takes true or false/ },
    { argv: ["--namespace", "Not_A_Namespace"], message: /is not a namespace name/ },
    { argv: ["--lease-name", "Bad Name"], message: /is not an object name/ },
    { argv: ["--identity", ""], message: /identity "" must be 1 to 128 characters/ },
    { argv: ["--kubeconfig", ""], message: /--kubeconfig needs a file path/ },
    { argv: ["--frobnicate"], message: /Unknown option '--frobnicate'.*see --help/ },
    { argv: ["--min-write-interval-ms", "90000"], message: /--min-write-interval-ms must be a whole number from 0 to 60000/ },
    { argv: ["--metrics-port", "70000"], message: /--metrics-port must be a whole number from 0 to 65535/ },
  ];
  for (const c of cases) t.throws(() => parseCommandLine(c.argv, {}, host), { name: ConfigError.name, message: c.message }, c.argv.join(" "));
});
