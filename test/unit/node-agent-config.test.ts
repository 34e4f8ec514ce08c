import t from "tap";
import { ConfigError, parseCommandLine, usage } from "../../node-agent/config.ts";

function config(argv: string[], env: Record<string, string> = {}) {
  const parsed = parseCommandLine(argv, env);
  if (parsed.help) throw new Error("unexpected --help");
  return parsed.config;
}

t.test("the node name comes from --node-name, else NODE_NAME", async (t) => {
  t.equal(config(["--node-name", "node-1"], { NODE_NAME: "node-2" }).nodeName, "node-1");
  t.equal(config([], { NODE_NAME: "node-2" }).nodeName, "node-2");
  t.throws(() => config([]), ConfigError, "required");
  t.throws(() => config([]), /no node name: pass --node-name NAME or set NODE_NAME/);
  t.throws(() => config([], { NODE_NAME: "Node_1" }), /"Node_1" is not a Kubernetes node name/);
  t.equal(config([], { NODE_NAME: "ip-10-0-0-1.eu-west-1.compute.internal" }).nodeName, "ip-10-0-0-1.eu-west-1.compute.internal");
});

t.test("defaults: the pod's namespace, no debounce, keep the report, probes on 8080", async (t) => {
  t.same(config([], { NODE_NAME: "n" }), {
    nodeName: "n",
    systemNamespace: "netservice-system",
    debounceMs: 0,
    deleteReportOnExit: false,
    metricsPort: 8080,
    heartbeatIntervalMs: 10_000,
    stallAfterMs: 120_000,
  });
  t.equal(config([], { NODE_NAME: "n", POD_NAMESPACE: "infra" }).systemNamespace, "infra");
  t.equal(config(["--namespace", "ops"], { NODE_NAME: "n", POD_NAMESPACE: "infra" }).systemNamespace, "ops");
});

t.test("every flag", async (t) => {
  t.same(
    config(["--node-name=n", "--kubeconfig", "/k", "--namespace", "ns", "--debounce-ms", "50", "--delete-report-on-exit", "--metrics-port", "0", "--heartbeat-interval-seconds", "5", "--stall-timeout-seconds", "60"]),
    { nodeName: "n", kubeconfig: "/k", systemNamespace: "ns", debounceMs: 50, deleteReportOnExit: true, metricsPort: 0, heartbeatIntervalMs: 5000, stallAfterMs: 60_000 },
  );
});

t.test("mistakes are refused with what to fix", async (t) => {
  const env = { NODE_NAME: "n" };
  t.throws(() => config(["--debounce-ms", "fast"], env), /--debounce-ms must be a whole number from 0 to 60000, got "fast"/);
  t.throws(() => config(["--debounce-ms", "-5"], env), /--debounce-ms/);
  t.throws(() => config(["--metrics-port", "70000"], env), /--metrics-port must be a whole number from 0 to 65535/);
  t.throws(() => config(["--namespace", "Bad NS"], env), /namespace "Bad NS" is not a namespace name/);
  t.throws(() => config(["--kubeconfig="], env), /--kubeconfig needs a file path/);
  t.throws(() => config(["--heartbeat-interval-seconds", "0"], env), /--heartbeat-interval-seconds must be a whole number from 1 to 600/);
  t.throws(() => config([], { NODE_NAME: `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(60)}` }), /report parts are named <node>.<0-64>/);
  t.throws(() => config(["--nodename", "n"], env), /Unknown option '--nodename' \(see --help\)/);
  t.throws(() => config(["extra"], env), ConfigError, "no positional arguments");
});

t.test("--help", async (t) => {
  t.same(parseCommandLine(["--help"], {}), { help: true }, "even without a node name");
  t.same(parseCommandLine(["-h"], {}), { help: true });
});

t.test("node names of up to 250 characters are accepted; a longer one is quoted by its first 40", async (t) => {
  const name = (length: number) => `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(length - 192)}`;
  t.equal(config([], { NODE_NAME: name(250) }).nodeName, name(250));
  t.throws(() => config([], { NODE_NAME: name(251) }), {
    message: `node name "${name(251).slice(0, 40)}..." is 251 characters: report parts are named <node>.<0-64>, which fits object names (253) only for node names of at most 250`,
  });
});

t.test("each mistake's message names the flag or variable to fix", async (t) => {
  t.throws(() => config([]), {
    message:
      "no node name: pass --node-name NAME or set NODE_NAME (in a DaemonSet, from the downward API: env NODE_NAME valueFrom fieldRef fieldPath spec.nodeName)",
  });
  t.throws(() => config(["--stall-timeout-seconds", "5"], { NODE_NAME: "n" }), {
    message: '--stall-timeout-seconds must be a whole number from 10 to 3600, got "5"',
  });
});

t.test("--help describes every option the agent accepts", async (t) => {
  for (const flag of [
    "--node-name",
    "--kubeconfig",
    "--namespace",
    "--debounce-ms",
    "--delete-report-on-exit",
    "--heartbeat-interval-seconds",
    "--stall-timeout-seconds",
    "--metrics-port",
    "--help",
  ]) {
    t.match(usage, new RegExp(`^  (-h, )?${flag}\\b`, "m"), flag);
  }
});
