// CI's log keeps only its end: .ci/run prints a failing suite's failures with
// the subtests that lead to them. The TAP below is tap 21's own output for a
// failed assertion, a thrown error and a file whose process died.
import t from "tap";
import { formatFailures, tapFailures, tapSummary } from "../../hack/ci/tap-failures.ts";

const log = `TAP version 14
1..2
# Subtest: test/unit/a.test.ts
    # Subtest: outer
        # Subtest: sub
            ok 1 - should be equal
            not ok 2 - bad
              ---
              compare: ===
              diff: |
                -2
                +1
              ...
            
            1..2
        not ok 1 - sub # time=24.644ms
          ---
          at:
            fileName: test/unit/a.test.ts
          ...
        
        # Subtest: throws
            not ok 1 - boom
              ---
              tapCaught: returnedPromiseRejection
              ...
            
            1..1
        not ok 2 - throws # time=9.624ms
        
        1..2
    not ok 1 - outer # time=40ms
    
    # Subtest: passes
        ok 1 - fine
        1..1
    ok 2 - passes # time=1ms
    
    1..2
not ok 1 - test/unit/a.test.ts # time=100ms

# Subtest: test/real/dies.test.ts
    # Subtest: first
        ok 1 - fine
        1..1
    ok 1 - first # time=1ms
    
    1..4
not ok 2 - test/real/dies.test.ts # time=259550.431ms
  ---
  signal: SIGABRT
  ...

# No coverage generated
# { total: 6, pass: 3, fail: 3 }
# time=439548.099ms
`;

t.test("each failing point is named with the subtests that lead to it, with its diagnostic", async (t) => {
  const failures = tapFailures(log);
  t.same(failures.map((failure) => [...failure.path, failure.description]), [
    ["test/unit/a.test.ts", "outer", "sub", "bad"],
    ["test/unit/a.test.ts", "outer", "throws", "boom"],
    ["test/real/dies.test.ts"],
  ]);
  t.same(failures[0]!.details, ["compare: ===", "diff: |", "  -2", "  +1"]);
  t.same(failures[1]!.details, ["tapCaught: returnedPromiseRejection"]);
});

t.test("a file that fails with no failing point inside it is a failure itself, with why", async (t) => {
  const [dies] = tapFailures(log).slice(-1);
  t.same([...dies!.path, dies!.description], ["test/real/dies.test.ts"]);
  t.same(dies!.details, ["signal: SIGABRT"]);
});

// tap 21's output for a file whose teardown threw after its tests passed,
// stdout and stderr in one log as CI keeps them: the runner prints each
// file's TAP whole, but the error goes to stderr at once, outside that TAP,
// here in the middle of the file that ran beside it.
const teardownLog = `TAP version 14
1..2
# Subtest: test/unit/other.test.ts
    ok 1 - fine
Error: teardown incomplete: aggregator failed: 401 Unauthorized
  ---
  stack: |
    runTeardown (hack/teardown.ts:70:30)
  at:
    fileName: test/integration/stops.test.ts
    lineNumber: 2
  test: TAP
  ...

    1..1
ok 1 - test/unit/other.test.ts # time=1ms

# Subtest: test/integration/stops.test.ts
    # Subtest: a
        ok 1 - fine
        1..1
    ok 1 - a # time=4.808ms
    
    1..1
    # stopping: aggregator failed: 401 Unauthorized
    # error thrown in teardown
    # time=33.763ms
not ok 2 - test/integration/stops.test.ts # time=33.763ms
  ---
  exitCode: 1
  signal: null
  ...

# { total: 3, pass: 2, fail: 1 }
`;

t.test("a file that fails in its teardown is listed with what it said and the error it threw", async (t) => {
  const failures = tapFailures(teardownLog);
  t.same(failures.map((failure) => [...failure.path, failure.description]), [["test/integration/stops.test.ts"]]);
  t.same(failures[0]!.details, [
    "exitCode: 1",
    "signal: null",
    "comments:",
    "  stopping: aggregator failed: 401 Unauthorized",
    "  error thrown in teardown",
    "thrown:",
    "  Error: teardown incomplete: aggregator failed: 401 Unauthorized",
  ]);
  t.same(tapFailures(log).at(-1)!.details, ["signal: SIGABRT"], "a file that said nothing has its diagnostic only");
});

// tap 21's output when the file's process crashed in its teardown (stop 21's
// CI failure, shortened): Node's report of the uncaught error goes to stderr
// and, the file's TAP being printed as it ran, lands inside it.
const crashLog = `TAP version 14
1..1
# Subtest: test/integration/least-privilege.test.ts
    # control plane ready at https://127.0.0.1:41859 in 3.4 s
    # Subtest: publishes
        ok 1 - fine
        1..1
    ok 1 - publishes # time=810.504ms
    
    1..1
    {"level":"info","msg":"released the lease"}
    # error thrown in teardown
Error: test unfinished
  ---
  test: TAP
  ...

    # time=6263.884ms
node:events:505
    throw er; // Unhandled 'error' event
    ^

ClientDestroyedError: The client is destroyed
    at Client.destroy (node_modules/undici/lib/dispatcher/dispatcher-base.js:143:13)
Emitted 'error' event on ClientHttp2Stream instance at:
    at emitErrorNT (node:internal/streams/destroy:170:8) {
  code: 'UND_ERR_DESTROYED'
}

Node.js v24.21.0
not ok 1 - test/integration/least-privilege.test.ts # time=6263.884ms
  ---
  exitCode: 1
  ...

# { total: 2, pass: 1, fail: 1 }
`;

t.test("a file whose process crashed is listed with the stderr that landed in its output", async (t) => {
  const [crashed] = tapFailures(crashLog);
  t.same(crashed!.details, [
    "exitCode: 1",
    "comments:",
    "  control plane ready at https://127.0.0.1:41859 in 3.4 s",
    "  error thrown in teardown",
    "stderr among its output (maybe another file's):",
    "  Error: test unfinished",
    "  node:events:505",
    "  ClientDestroyedError: The client is destroyed",
    "  Emitted 'error' event on ClientHttp2Stream instance at:",
    "  }",
    "  Node.js v24.21.0",
  ]);
});

t.test("a passing log has no failures", async (t) => {
  t.same(tapFailures("TAP version 14\n1..1\n# Subtest: x\n    ok 1 - fine\n    1..1\nok 1 - x # time=1ms\n"), []);
});

t.test("long diagnostics and many failures are cut, saying how much", async (t) => {
  const long = ["not ok 1 - long", "  ---", ...Array.from({ length: 50 }, (_, i) => `  line ${i}`), "  ..."].join("\n");
  const [failure] = tapFailures(long, 3);
  t.same(failure!.details, ["line 0", "line 1", "line 2", "(47 more lines)"]);
  const many = Array.from({ length: 5 }, () => ({ path: ["f"], description: "d", details: [] }));
  t.same(formatFailures(many, 2), ["--- f > d", "--- f > d", "(3 more failures: see the whole log)"]);
});

t.test("the summary is the runner's last lines, from its totals on", async (t) => {
  t.same(tapSummary(log), ["# { total: 6, pass: 3, fail: 3 }", "# time=439548.099ms"]);
  t.same(tapSummary("no summary"), []);
});
