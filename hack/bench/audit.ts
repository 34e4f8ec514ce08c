// The API server's own count of requests, by program: kube-apiserver's
// request metrics carry no user agent, so the benchmark turns on an audit log
// (one line per finished request, at Metadata level) and counts its lines by
// user agent (ours) or service account (kube-controller-manager's
// controllers) within a time window. It cross-checks the programs'
// client-side counters.
//
//   auditFlags(dir): string[]                      kube-apiserver flags (writes the policy file)
//   await countAudit(logFile, {from, to}): AuditCounts
//   auditProgram(userAgent, username): Program     which program sent a request
import { createReadStream } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";

export const benchUserAgents = {
  /** The in-process node agents (the representative agent process sends the program's own). */
  agents: "netservice-agent/0.1.0 (in-process)",
  harness: "netservice-bench/0.1.0",
} as const;

export const programs = ["agents", "aggregator", "kube-endpointslice", "kube-endpoints", "sim", "harness", "other"] as const;
export type Program = (typeof programs)[number];

/** requests[program][verb][resource] = count; verbs as the API server names them (apply is a patch). */
export type AuditCounts = { requests: Record<string, Record<string, Record<string, number>>>; lines: number };

const writeVerbs = new Set(["create", "update", "patch", "delete", "deletecollection"]);

const policy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived", "ResponseStarted"]
rules:
  - level: None
    nonResourceURLs: ["*"]
  - level: None
    resources: [{group: "coordination.k8s.io", resources: ["leases"]}, {group: "authentication.k8s.io"}, {group: "authorization.k8s.io"}]
  - level: Metadata
`;

export async function auditFlags(dir: string): Promise<{ flags: string[]; logFile: string }> {
  const policyFile = path.join(dir, "bench-audit-policy.yaml");
  const logFile = path.join(dir, "bench-audit.log");
  await writeFile(policyFile, policy);
  return {
    logFile,
    flags: [
      `--audit-policy-file=${policyFile}`,
      `--audit-log-path=${logFile}`,
      "--audit-log-format=json",
      // Buffered, so that logging never holds up a response.
      "--audit-log-mode=batch",
      "--audit-log-batch-max-wait=1s",
      "--audit-log-batch-max-size=500",
      "--audit-log-maxsize=2000",
    ],
  };
}

export function auditProgram(userAgent: string, username: string): Program {
  if (userAgent.startsWith("netservice-aggregator/")) return "aggregator";
  if (userAgent.startsWith("netservice-agent/")) return "agents";
  if (username === "system:serviceaccount:kube-system:endpointslice-controller") return "kube-endpointslice";
  if (username === "system:serviceaccount:kube-system:endpoint-controller") return "kube-endpoints";
  // LocalSystem's own clients: the fake kubelet and Multus, and the NetService watch the in-process agents share.
  if (userAgent.startsWith("netservice-local/")) return "sim";
  if (userAgent.startsWith("netservice-bench")) return "harness";
  return "other";
}

/** The fields of an audit event (Metadata level) the benchmark reads. */
export type AuditLine = {
  stage?: string;
  verb?: string;
  userAgent?: string;
  user?: { username?: string };
  objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string };
  requestReceivedTimestamp?: string;
  stageTimestamp?: string;
};

/** One line of the audit log, if it is a finished request (ResponseComplete). */
export function finishedRequest(text: string): AuditLine | undefined {
  let line: AuditLine;
  try {
    line = JSON.parse(text) as AuditLine;
  } catch {
    return undefined;
  }
  return line.stage === "ResponseComplete" ? line : undefined;
}

/** Counts requests received within [from, to] (ms since the epoch). */
export async function countAudit(logFile: string, window: { from: number; to: number }): Promise<AuditCounts> {
  const counts: AuditCounts = { requests: {}, lines: 0 };
  const lines = createInterface({ input: createReadStream(logFile, "utf8"), crlfDelay: Infinity });
  for await (const text of lines) {
    if (text === "") continue;
    counts.lines++;
    addAuditLine(counts, text, window);
  }
  return counts;
}

export function addAuditLine(counts: AuditCounts, text: string, window: { from: number; to: number }): void {
  const line = finishedRequest(text);
  if (!line?.verb || !line.requestReceivedTimestamp) return;
  const at = Date.parse(line.requestReceivedTimestamp);
  if (!(at >= window.from && at <= window.to)) return;
  const program = auditProgram(line.userAgent ?? "", line.user?.username ?? "");
  const resource = line.objectRef?.subresource ? `${line.objectRef.resource}/${line.objectRef.subresource}` : (line.objectRef?.resource ?? "");
  const byVerb = (counts.requests[program] ??= {});
  const byResource = (byVerb[line.verb] ??= {});
  byResource[resource] = (byResource[resource] ?? 0) + 1;
}

/** Writes (create, update, patch, delete) of one program, optionally only to some resources. */
export function auditWrites(counts: AuditCounts, program: Program, resources?: readonly string[]): number {
  let total = 0;
  for (const [verb, byResource] of Object.entries(counts.requests[program] ?? {})) {
    if (!writeVerbs.has(verb)) continue;
    for (const [resource, count] of Object.entries(byResource)) {
      if (!resources || resources.includes(resource)) total += count;
    }
  }
  return total;
}

/** Requests of one program by verb (all resources). */
export function auditByVerb(counts: AuditCounts, program: Program): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [verb, byResource] of Object.entries(counts.requests[program] ?? {})) {
    out[verb] = Object.values(byResource).reduce((a, b) => a + b, 0);
  }
  return out;
}
