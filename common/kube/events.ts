// Events (events.k8s.io/v1), as both programs write them: what `kubectl
// describe` and `kubectl events` show about a NetService or a pod. Which
// events are worth writing, and how often, is each program's own decision;
// this only writes them, and never for less than a whole event.
//
//   interface EventSink { record(event, signal?): Promise<void> }
//   new EventRecorder(applier, {controller, instance, action, clock?})
//
//   const events = new EventRecorder(applier, { controller: "svcctl.metaswitch.com/netservice-agent", instance, action: "PublishEndpoints" });
//   await events.record({ regarding: { apiVersion: "v1", kind: "Pod", namespace, name, uid }, type: "Warning", reason, note });
import type { Applier } from "./apply.ts";
import { type Clock, realClock } from "./clock.ts";
import { microTime } from "./time.ts";

export type Regarding = { apiVersion: string; kind: string; namespace: string; name: string; uid: string };

export type EventType = "Normal" | "Warning";

export type KubeEvent = { regarding: Regarding; type: EventType; reason: string; note: string };

/** Where a program sends its events; a test or the benchmark may count or drop them instead. */
export interface EventSink {
  /** Creates the event; rejects when the API server refuses it. */
  record(event: KubeEvent, signal?: AbortSignal): Promise<void>;
}

export interface EventRecorderOptions {
  /** reportingController: the component, as a qualified name ("svcctl.metaswitch.com/netservice-agent"). */
  controller: string;
  /** reportingInstance: this replica or node's agent (at most 128 characters). */
  instance: string;
  /** What the program was doing ("Reconcile", "PublishEndpoints"). */
  action: string;
  clock?: Clock;
}

/** The API server refuses notes over 1 kB. */
const maxNoteLength = 1024;

export class EventRecorder implements EventSink {
  readonly #applier: Applier;
  readonly #controller: string;
  readonly #instance: string;
  readonly #action: string;
  readonly #clock: Clock;

  constructor(applier: Applier, options: EventRecorderOptions) {
    this.#applier = applier;
    this.#controller = options.controller;
    this.#instance = options.instance.slice(0, 128);
    this.#action = options.action;
    this.#clock = options.clock ?? realClock;
  }

  async record(event: KubeEvent, signal?: AbortSignal): Promise<void> {
    const { regarding, note } = event;
    const now = this.#clock.now();
    await this.#applier.create(
      {
        apiVersion: "events.k8s.io/v1",
        kind: "Event",
        metadata: { name: eventName(regarding.name, now), namespace: regarding.namespace },
        eventTime: microTime(now),
        reportingController: this.#controller,
        reportingInstance: this.#instance,
        action: this.#action,
        type: event.type,
        reason: event.reason,
        note: note.length > maxNoteLength ? `${note.slice(0, maxNoteLength - 3)}...` : note,
        regarding,
      },
      signal ? { signal } : {},
    );
  }
}

// As client-go names events: the object's name and the time in hexadecimal
// nanoseconds (here milliseconds plus a random sub-millisecond part, so two
// events in one millisecond do not collide), within the 253 characters an
// object name may have.
function eventName(name: string, ms: number): string {
  const nanoseconds = BigInt(ms) * 1_000_000n + BigInt(Math.floor(Math.random() * 1_000_000));
  const suffix = nanoseconds.toString(16);
  return `${name.slice(0, 253 - suffix.length - 1)}.${suffix}`;
}
