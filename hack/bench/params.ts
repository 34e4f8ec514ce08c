// The benchmark's parameters: presets, and the command line that picks one
// and overrides any field. Pure, so a mistyped flag fails at once with a
// message that says what to fix.
//
//   parseBenchArgs(argv): {help: true} | {help: false, params, json}
//   presets.tiny | presets.quick | presets.scale
import { parseArgs } from "node:util";

export type Churn = {
  /** New pods per second (each on a random node, selected by a random NetService). */
  creations: number;
  /** Graceful deletions per second. */
  deletions: number;
  /** Readiness flips per second (the fake kubelet writes the pod's Ready condition). */
  readinessFlips: number;
  /** Secondary-address changes per second (the fake Multus rewrites network-status). */
  addressChanges: number;
};

export type BenchParams = {
  preset: string;
  nodes: number;
  podsPerNode: number;
  netServices: number;
  churn: Churn;
  /** Length of the churn phase. */
  durationSeconds: number;
  /** The node agents' debounce window (NodeAgentOptions.debounceMs; the program's --debounce-ms). */
  agentDebounceMs: number;
  /** The node agents' heartbeat Lease renewal interval (the program's --heartbeat-interval-seconds). */
  agentHeartbeatSeconds: number;
  /** The aggregator's concurrent reconciles (--workers). */
  aggregatorWorkers: number;
  /** Status writes the fake kubelet, and annotation writes the fake Multus, keep in flight at once; 0: the simulation's defaults (16 and 8). */
  simWorkers: number;
  /** Writes per second of the plain ConfigMap that measures the floor. */
  floorWritesPerSecond: number;
  /** An event not seen on a side within this time counts as missed there. */
  eventTimeoutSeconds: number;
  /** Deleted pods' grace period, as their terminationGracePeriodSeconds. */
  gracePeriodSeconds: number;
  /** Log every request to an audit log, for the API server's own count of requests by user agent. */
  audit: boolean;
  /**
   * API Priority and Fairness for our programs' service accounts:
   * "same-level" (a FlowSchema puts them in kube-controller-manager's
   * controllers' priority level, workload-high; see apf.ts), or "as-deployed"
   * (the cluster's defaults: the service-accounts FlowSchema, workload-low).
   */
  apf: ApfMode;
  /**
   * What the two program processes run: "bundled" (dist/*.mjs built by
   * hack/bundle.ts, as the image runs them) or "sources" (the TypeScript
   * sources through Node's type stripping).
   */
  programs: ProgramsMode;
  /** Extra kube-controller-manager flags, e.g. --kube-api-qps=100. */
  kcmFlags: string[];
  /** Extra aggregator flags, e.g. --min-write-interval-ms=200. */
  aggregatorFlags: string[];
  /** Node.js flags for both program processes, before the program, e.g. --max-semi-space-size=2. */
  nodeOptions: string[];
  /** Ports the agent and aggregator processes serve /metrics on, so that a Prometheus can scrape them; 0: a free port. */
  metricsPorts: { agent: number; aggregator: number };
  /** Where the chart goes. */
  outDir: string;
  /** Keep the working directory (control-plane and program logs, the audit log) and print where it is. */
  keep: boolean;
};

export const apfModes = ["same-level", "as-deployed"] as const;
export type ApfMode = (typeof apfModes)[number];
export const programsModes = ["bundled", "sources"] as const;
export type ProgramsMode = (typeof programsModes)[number];

const common = {
  agentDebounceMs: 0,
  agentHeartbeatSeconds: 10,
  simWorkers: 0,
  aggregatorWorkers: 4,
  eventTimeoutSeconds: 30,
  gracePeriodSeconds: 1,
  audit: true,
  apf: "same-level" as ApfMode,
  programs: "bundled" as ProgramsMode,
  kcmFlags: [] as string[],
  aggregatorFlags: [] as string[],
  nodeOptions: [] as string[],
  metricsPorts: { agent: 0, aggregator: 0 },
  outDir: "bench-results",
  keep: false,
};

export const presets: Record<string, BenchParams> = {
  /** Seconds, for the test that checks the output is well-formed. */
  tiny: {
    ...common,
    preset: "tiny",
    nodes: 2,
    podsPerNode: 3,
    netServices: 1,
    churn: { creations: 0.5, deletions: 0.5, readinessFlips: 2, addressChanges: 1 },
    durationSeconds: 10,
    floorWritesPerSecond: 5,
  },
  quick: {
    ...common,
    preset: "quick",
    nodes: 10,
    podsPerNode: 10,
    netServices: 5,
    churn: { creations: 2, deletions: 2, readinessFlips: 10, addressChanges: 4 },
    durationSeconds: 30,
    floorWritesPerSecond: 10,
  },
  scale: {
    ...common,
    preset: "scale",
    nodes: 1000,
    podsPerNode: 10,
    netServices: 100,
    churn: { creations: 2, deletions: 2, readinessFlips: 10, addressChanges: 4 },
    durationSeconds: 60,
    floorWritesPerSecond: 10,
    eventTimeoutSeconds: 120,
    // 10,000 pods each need an annotation write and a status write before they run.
    simWorkers: 64,
  },
};

export const usage = `Usage: npm run bench -- [options]

Times netservice against Kubernetes' own EndpointSlice controller on the local
control plane with simulated nodes and Multus (see docs/performance.md).

Options:
  --preset NAME              tiny | quick (default) | scale
  --nodes N                  simulated nodes
  --pods-per-node N          pods created in bulk on each node
  --netservices N            NetServices; pods are spread evenly over them
  --creations R              churn: pod creations per second
  --deletions R              churn: pod deletions per second
  --readiness-flips R        churn: readiness flips per second
  --address-changes R        churn: secondary-address changes per second
  --duration S               seconds of churn
  --agent-debounce-ms MS     the node agents' debounce window
  --agent-heartbeat-seconds S
                             the node agents' heartbeat Lease renewal interval (default 10, the program's);
                             keep it well below the aggregator's --agent-heartbeat-timeout-seconds (40)
  --aggregator-workers N     the aggregator's concurrent reconciles
  --sim-workers N            writes in flight of the fake kubelet, and of the fake Multus
  --floor-writes R           ConfigMap writes per second for the floor
  --event-timeout S          an event not seen within S seconds counts as missed
  --grace-period S           deleted pods' terminationGracePeriodSeconds
  --no-audit                 no API server audit log (no server-side request counts)
  --apf MODE                 our service accounts' API priority: same-level (default: kube-controller-manager's
                             controllers' level, workload-high) or as-deployed (the defaults: workload-low)
  --programs MODE            what the agent and aggregator processes run: bundled (default: dist/*.mjs from
                             hack/bundle.ts, as the image runs them) or sources (the TypeScript sources)
  --kcm-flag FLAG            extra kube-controller-manager flag (repeatable), e.g. --kcm-flag=--kube-api-qps=100
  --aggregator-flag FLAG     extra aggregator flag (repeatable), e.g. --aggregator-flag=--workers=8
  --node-option FLAG         Node.js flag for the agent and aggregator processes (repeatable),
                             e.g. --node-option=--max-semi-space-size=2
  --agent-metrics-port P     the agent process serves /metrics on this port (default: a free port)
  --aggregator-metrics-port P
                             the aggregator process serves /metrics on this port (default: a free port)
  --out DIR                  where the chart goes (default bench-results)
  --keep                     keep the logs and the audit log, and say where they are
  --json                     print one JSON document instead of tables
  -h, --help                 this text
`;

export type ParsedBenchArgs = { help: true } | { help: false; params: BenchParams; json: boolean };

export class BenchArgsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BenchArgsError";
  }
}

export function parseBenchArgs(argv: readonly string[]): ParsedBenchArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      allowNegative: true,
      options: {
        preset: { type: "string", default: "quick" },
        nodes: { type: "string" },
        "pods-per-node": { type: "string" },
        netservices: { type: "string" },
        creations: { type: "string" },
        deletions: { type: "string" },
        "readiness-flips": { type: "string" },
        "address-changes": { type: "string" },
        duration: { type: "string" },
        "agent-debounce-ms": { type: "string" },
        "aggregator-workers": { type: "string" },
        "agent-heartbeat-seconds": { type: "string" },
        "floor-writes": { type: "string" },
        "sim-workers": { type: "string" },
        "event-timeout": { type: "string" },
        "grace-period": { type: "string" },
        audit: { type: "boolean" },
        apf: { type: "string" },
        programs: { type: "string" },
        "kcm-flag": { type: "string", multiple: true },
        "aggregator-flag": { type: "string", multiple: true },
        "node-option": { type: "string", multiple: true },
        "agent-metrics-port": { type: "string" },
        "aggregator-metrics-port": { type: "string" },
        out: { type: "string" },
        keep: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (err) {
    throw new BenchArgsError(`${err instanceof Error ? err.message : String(err)} (see --help)`);
  }
  if (values.help) return { help: true };
  const base = presets[values.preset];
  if (!base) throw new BenchArgsError(`--preset ${values.preset}: choose one of ${Object.keys(presets).join(", ")}`);
  const int = (flag: string, text: string | undefined, fallback: number, min: number, max: number) =>
    number(flag, text, fallback, min, max, true);
  const rate = (flag: string, text: string | undefined, fallback: number) => number(flag, text, fallback, 0, 1000, false);
  const params: BenchParams = {
    preset: base.preset,
    nodes: int("--nodes", values.nodes, base.nodes, 1, 1000),
    podsPerNode: int("--pods-per-node", values["pods-per-node"], base.podsPerNode, 1, 110),
    netServices: int("--netservices", values.netservices, base.netServices, 1, 1000),
    churn: {
      creations: rate("--creations", values.creations, base.churn.creations),
      deletions: rate("--deletions", values.deletions, base.churn.deletions),
      readinessFlips: rate("--readiness-flips", values["readiness-flips"], base.churn.readinessFlips),
      addressChanges: rate("--address-changes", values["address-changes"], base.churn.addressChanges),
    },
    durationSeconds: int("--duration", values.duration, base.durationSeconds, 1, 3600),
    agentDebounceMs: int("--agent-debounce-ms", values["agent-debounce-ms"], base.agentDebounceMs, 0, 60_000),
    agentHeartbeatSeconds: int("--agent-heartbeat-seconds", values["agent-heartbeat-seconds"], base.agentHeartbeatSeconds, 1, 3600),
    aggregatorWorkers: int("--aggregator-workers", values["aggregator-workers"], base.aggregatorWorkers, 1, 64),
    simWorkers: int("--sim-workers", values["sim-workers"], base.simWorkers, 0, 512),
    floorWritesPerSecond: number("--floor-writes", values["floor-writes"], base.floorWritesPerSecond, 0.1, 100, false),
    eventTimeoutSeconds: int("--event-timeout", values["event-timeout"], base.eventTimeoutSeconds, 1, 3600),
    gracePeriodSeconds: int("--grace-period", values["grace-period"], base.gracePeriodSeconds, 0, 300),
    audit: values.audit ?? base.audit,
    apf: apfMode(values.apf, base.apf),
    programs: programsMode(values.programs, base.programs),
    kcmFlags: [...base.kcmFlags, ...(values["kcm-flag"] ?? [])],
    aggregatorFlags: [...base.aggregatorFlags, ...(values["aggregator-flag"] ?? [])],
    nodeOptions: [...base.nodeOptions, ...(values["node-option"] ?? [])],
    metricsPorts: {
      agent: int("--agent-metrics-port", values["agent-metrics-port"], base.metricsPorts.agent, 0, 65_535),
      aggregator: int("--aggregator-metrics-port", values["aggregator-metrics-port"], base.metricsPorts.aggregator, 0, 65_535),
    },
    outDir: values.out ?? base.outDir,
    keep: values.keep,
  };
  const flagLists = [["--kcm-flag", params.kcmFlags, "--workers=8"], ["--aggregator-flag", params.aggregatorFlags, "--workers=8"], ["--node-option", params.nodeOptions, "--max-semi-space-size=2"]] as const;
  for (const [option, flags, example] of flagLists) {
    for (const flag of flags) {
      if (!flag.startsWith("--")) throw new BenchArgsError(`${option} ${flag}: give the flag with its dashes, e.g. ${option}=${example}`);
    }
  }
  if (params.nodes * params.podsPerNode < params.netServices) {
    throw new BenchArgsError(`${params.nodes * params.podsPerNode} pods cannot give each of ${params.netServices} NetServices a pod; add nodes or pods per node`);
  }
  return { help: false, params, json: values.json };
}

function programsMode(text: string | undefined, fallback: ProgramsMode): ProgramsMode {
  if (text === undefined) return fallback;
  const mode = programsModes.find((m) => m === text);
  if (!mode) throw new BenchArgsError(`--programs must be one of ${programsModes.join(", ")}, got "${text}"`);
  return mode;
}

function apfMode(text: string | undefined, fallback: ApfMode): ApfMode {
  if (text === undefined) return fallback;
  const mode = apfModes.find((m) => m === text);
  if (!mode) throw new BenchArgsError(`--apf must be one of ${apfModes.join(", ")}, got "${text}"`);
  return mode;
}

function number(flag: string, text: string | undefined, fallback: number, min: number, max: number, integer: boolean): number {
  if (text === undefined) return fallback;
  const value = Number(text.trim());
  if (text.trim() === "" || !Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < min || value > max) {
    throw new BenchArgsError(`${flag} must be ${integer ? "a whole number" : "a number"} from ${min} to ${max}, got "${text}"`);
  }
  return value;
}
