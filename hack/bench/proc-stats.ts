// CPU time and memory of a process, from /proc (Linux): what the benchmark
// reports for the aggregator, the representative node agent and the control
// plane's components, each a process of its own.
//
//   const before = readProcStats(pid); ... const after = readProcStats(pid);
//   cpuSecondsBetween(before, after)   user + system CPU seconds spent in between
//   after.peakRssMb                    VmHWM: the most resident memory the process ever had
import { readFileSync } from "node:fs";

export type ProcStats = {
  pid: number;
  /** User + system CPU seconds since the process started. */
  cpuSeconds: number;
  rssMb: number;
  peakRssMb: number;
};

// USER_HZ is 100 on every Linux architecture Node supports (times() in /proc/<pid>/stat are in these ticks).
const ticksPerSecond = 100;

/** Undefined when the process is gone. */
export function readProcStats(pid: number): ProcStats | undefined {
  try {
    return parseProcStats(pid, readFileSync(`/proc/${pid}/stat`, "utf8"), readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return undefined;
  }
}

export function parseProcStats(pid: number, stat: string, status: string): ProcStats {
  // The command name (field 2) is in parentheses and may hold spaces: count fields after its closing one.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN);
  return {
    pid,
    cpuSeconds: (utime + stime) / ticksPerSecond,
    rssMb: round(kb("VmRSS") / 1024),
    peakRssMb: round(kb("VmHWM") / 1024),
  };
}

export function cpuSecondsBetween(before: ProcStats | undefined, after: ProcStats | undefined): number {
  if (!before || !after) return Number.NaN;
  return round(after.cpuSeconds - before.cpuSeconds);
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
