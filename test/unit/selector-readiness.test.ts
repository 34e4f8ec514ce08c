import t from "tap";
import type { V1Pod } from "@kubernetes/client-node";
import { endpointReady, isPodFinished, podReadiness } from "../../common/readiness.ts";
import { selectorMatches } from "../../common/selector.ts";
import { pod } from "./objects.ts";

t.test("a selector matches when every key is present with an equal value", async (t) => {
  const table: [selector: Record<string, string>, labels: Record<string, string> | undefined, matches: boolean][] = [
    [{ app: "utils" }, { app: "utils" }, true],
    [{ app: "utils" }, { app: "utils", tier: "core" }, true],
    [{ app: "utils", tier: "core" }, { app: "utils" }, false],
    [{ app: "utils" }, { app: "Utils" }, false],
    [{ app: "" }, { app: "" }, true],
    [{ app: "" }, {}, false],
    [{ app: "utils" }, undefined, false],
    [{ toString: "x" }, {}, false],
    [{}, { app: "utils" }, false],
    [{}, {}, false],
    [{}, undefined, false],
  ];
  for (const [selector, labels, matches] of table) {
    t.equal(selectorMatches(selector, labels), matches, `${JSON.stringify(selector)} on ${JSON.stringify(labels)}`);
  }
});

t.test("pod readiness follows the Ready condition and deletionTimestamp", async (t) => {
  t.same(podReadiness(pod({ ready: true })), { serving: true, terminating: false });
  t.same(podReadiness(pod({ ready: false })), { serving: false, terminating: false });
  t.same(podReadiness(pod({ ready: true, deleting: true })), { serving: true, terminating: true });
  const noConditions: V1Pod = { metadata: { name: "p" }, status: { phase: "Pending" } };
  t.same(podReadiness(noConditions), { serving: false, terminating: false });
  const unknown: V1Pod = { status: { conditions: [{ type: "Ready", status: "Unknown" }] } };
  t.same(podReadiness(unknown), { serving: false, terminating: false });
  const scheduledNotReady: V1Pod = {
    status: {
      conditions: [
        { type: "PodScheduled", status: "True" },
        { type: "Initialized", status: "True" },
        { type: "Ready", status: "False" },
      ],
    },
  };
  t.same(podReadiness(scheduledNotReady), { serving: false, terminating: false }, "only the Ready condition counts, not the first True one");
});

t.test("an endpoint is ready as the EndpointSlice controller decides", async (t) => {
  const table: [serving: boolean, terminating: boolean, publishNotReady: boolean, ready: boolean][] = [
    [true, false, false, true],
    [false, false, false, false],
    [true, true, false, false],
    [false, true, false, false],
    [true, false, true, true],
    [false, false, true, true],
    [true, true, true, true],
    [false, true, true, true],
  ];
  for (const [serving, terminating, publishNotReady, ready] of table) {
    t.equal(
      endpointReady(serving, terminating, publishNotReady),
      ready,
      `serving=${serving} terminating=${terminating} publishNotReadyAddresses=${publishNotReady}`,
    );
  }
});

t.test("pods that ran to completion are finished", async (t) => {
  for (const [phase, finished] of [
    ["Running", false],
    ["Pending", false],
    ["Unknown", false],
    ["Succeeded", true],
    ["Failed", true],
  ] as const) {
    t.equal(isPodFinished(pod({ phase })), finished, phase);
  }
});
