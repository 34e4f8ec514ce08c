// Warning Events on pods, through events.k8s.io/v1 (what `kubectl describe pod`
// and `kubectl events` show). Behind an interface so that an embedding
// program (the benchmark, a test) can count or drop them instead.
//
//   interface EventRecorder { podWarning(warning, signal?): Promise<void> }
//   new KubeEventRecorder(http, {reportingInstance, clock?})
//
//   const recorder = new KubeEventRecorder(clients.http, { reportingInstance: `netservice-agent-${nodeName}` });
//   await recorder.podWarning(warning);
import { randomBytes } from "node:crypto";
import { type Clock, realClock } from "../common/kube/clock.ts";
import type { KubeHttp } from "../common/kube/http.ts";
import { resourcePath } from "../common/kube/resources.ts";
import type { PodWarning } from "./pod-warnings.ts";

export interface EventRecorder {
  /** Records a Warning Event about the pod; rejects when the API server refuses it. */
  podWarning(warning: PodWarning, signal?: AbortSignal): Promise<void>;
}

/** Who reports: the component, as events.k8s.io/v1 wants it (a qualified name). */
export const agentReportingController = "svcctl.metaswitch.com/netservice-agent";

/** What the agent was doing when it found the problem. */
export const agentEventAction = "PublishEndpoints";

export interface KubeEventRecorderOptions {
  /** Which instance reports, e.g. "netservice-agent-node-1" (at most 128 characters). */
  reportingInstance: string;
  reportingController?: string;
  clock?: Clock;
}

export class KubeEventRecorder implements EventRecorder {
  readonly #http: KubeHttp;
  readonly #reportingInstance: string;
  readonly #reportingController: string;
  readonly #clock: Clock;

  constructor(http: KubeHttp, options: KubeEventRecorderOptions) {
    this.#http = http;
    this.#reportingInstance = options.reportingInstance.slice(0, 128);
    this.#reportingController = options.reportingController ?? agentReportingController;
    this.#clock = options.clock ?? realClock;
  }

  async podWarning(warning: PodWarning, signal?: AbortSignal): Promise<void> {
    const { namespace, name, uid } = warning.pod;
    const now = this.#clock.now();
    await this.#http.request({
      method: "POST",
      path: resourcePath({ apiVersion: "events.k8s.io/v1", plural: "events", namespace }),
      body: {
        apiVersion: "events.k8s.io/v1",
        kind: "Event",
        metadata: { name: eventName(name), namespace },
        eventTime: microTime(now),
        reportingController: this.#reportingController,
        reportingInstance: this.#reportingInstance,
        action: agentEventAction,
        reason: warning.reason,
        type: "Warning",
        note: warning.message,
        regarding: { apiVersion: "v1", kind: "Pod", namespace, name, uid },
      },
      ...(signal ? { signal } : {}),
    });
  }
}

// As client-go names events: the object's name and a unique suffix, within
// the 253 characters an object name may have.
function eventName(podName: string): string {
  const suffix = randomBytes(8).toString("hex");
  return `${podName.slice(0, 253 - suffix.length - 1)}.${suffix}`;
}

/** metav1.MicroTime: RFC 3339 with exactly six fractional digits. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, "000Z");
}
