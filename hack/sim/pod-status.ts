// The pod status a kubelet reports, as strategic-merge patches of
// pods/status: one when the pod starts running, one per readiness change.
import { createHash } from "node:crypto";
import { rfc3339, type ContainerJson, type PodJson } from "./kube.ts";

export type RunningInput = {
  podIPs: readonly string[];
  hostIPs: readonly string[];
  ready: boolean;
  /** Clock milliseconds. */
  now: number;
};

/** Phase Running, addresses, start time, every condition, and a running status per container. */
export function runningStatus(pod: PodJson, input: RunningInput): Record<string, unknown> {
  const time = rfc3339(input.now);
  const containers = pod.spec?.containers ?? [];
  const initContainers = pod.spec?.initContainers ?? [];
  const scheduled = pod.status?.conditions?.some((condition) => condition.type === "PodScheduled") ?? false;
  return {
    ...(pod.metadata?.generation === undefined ? {} : { observedGeneration: pod.metadata.generation }),
    phase: "Running",
    conditions: [
      condition("PodReadyToStartContainers", true, time),
      condition("Initialized", true, time),
      readyCondition("Ready", input.ready, containers, time),
      readyCondition("ContainersReady", input.ready, containers, time),
      // Pods created with spec.nodeName never went through the scheduler.
      ...(scheduled ? [] : [condition("PodScheduled", true, time)]),
    ],
    hostIP: input.hostIPs[0],
    hostIPs: input.hostIPs.map((ip) => ({ ip })),
    podIP: input.podIPs[0],
    podIPs: input.podIPs.map((ip) => ({ ip })),
    startTime: time,
    ...(initContainers.length === 0 ? {} : { initContainerStatuses: initContainers.map((c) => initContainerStatus(pod, c, time)) }),
    containerStatuses: containers.map((c) => containerStatus(pod, c, input.ready, time)),
  };
}

/** The Ready and ContainersReady conditions and container readiness, for a pod that already runs since `startTime`. */
export function readinessStatus(pod: PodJson, ready: boolean, now: number, startTime: string): Record<string, unknown> {
  const time = rfc3339(now);
  const containers = pod.spec?.containers ?? [];
  return {
    conditions: [readyCondition("Ready", ready, containers, time), readyCondition("ContainersReady", ready, containers, time)],
    containerStatuses: containers.map((c) => containerStatus(pod, c, ready, startTime)),
  };
}

/** Whether the pod's Ready condition is True. */
export function isReady(pod: PodJson): boolean {
  return pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

function condition(type: string, status: boolean, time: string) {
  return { type, status: status ? "True" : "False", lastTransitionTime: time };
}

function readyCondition(type: string, ready: boolean, containers: ContainerJson[], time: string) {
  if (ready) return condition(type, true, time);
  return {
    ...condition(type, false, time),
    reason: "ContainersNotReady",
    message: `containers with unready status: [${containers.map((c) => c.name).join(" ")}]`,
  };
}

function containerStatus(pod: PodJson, container: ContainerJson, ready: boolean, startedAt: string) {
  return {
    name: container.name,
    state: { running: { startedAt } },
    lastState: {},
    ready,
    restartCount: 0,
    image: container.image ?? "",
    imageID: imageId(container.image ?? ""),
    containerID: containerId(pod, container),
    started: true,
  };
}

// Sidecars (restartPolicy Always) keep running; other init containers have completed.
function initContainerStatus(pod: PodJson, container: ContainerJson, time: string) {
  const sidecar = container.restartPolicy === "Always";
  return {
    name: container.name,
    state: sidecar
      ? { running: { startedAt: time } }
      : { terminated: { exitCode: 0, reason: "Completed", startedAt: time, finishedAt: time, containerID: containerId(pod, container) } },
    lastState: {},
    ready: sidecar,
    restartCount: 0,
    image: container.image ?? "",
    imageID: imageId(container.image ?? ""),
    containerID: containerId(pod, container),
    started: sidecar,
  };
}

function containerId(pod: PodJson, container: ContainerJson): string {
  return `containerd://${sha256(`${pod.metadata?.uid ?? ""}/${container.name}`)}`;
}

function imageId(image: string): string {
  return `${image.split(":")[0] ?? image}@sha256:${sha256(image)}`;
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
