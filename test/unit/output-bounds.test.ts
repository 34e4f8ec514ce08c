// What child processes print costs bounded memory: the tail kept for error
// messages, the head kept for a result, the end of a log file read without
// the rest, and a real command that prints without end is killed at the cap
// instead of growing the test process. A command always comes back, even when
// a process it started holds its output open or it overruns its timeout.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import t from "tap";
import { fileTail, OutputHead, OutputTail } from "../../hack/cluster/output.ts";
import { runCommand } from "../../hack/realnet/command.ts";
import { eventually, expect } from "../helpers/eventually.ts";

t.test("OutputTail keeps the last bytes and counts what it left out", async (t) => {
  const tail = new OutputTail(10);
  tail.push("abc");
  t.equal(tail.text(), "abc", "below the limit everything is kept");
  tail.push("defghij");
  tail.push("KLM");
  t.equal(tail.size, 10);
  t.equal(tail.droppedBytes, 3);
  t.equal(tail.text(), "[... 3 earlier bytes left out ...]\ndefghijKLM");
  tail.push(Buffer.from("0123456789abcdefghijklmnopqrstuvwxyz"));
  t.equal(tail.text(), "[... 39 earlier bytes left out ...]\nqrstuvwxyz", "one chunk larger than the limit keeps its own end");
  for (let i = 0; i < 10_000; i++) tail.push("x".repeat(100));
  t.equal(tail.size, 10, "a million bytes later it still holds 10");
});

t.test("OutputHead keeps the first bytes and says when more came", async (t) => {
  const head = new OutputHead(8);
  t.ok(head.push("{\"ok\":"));
  t.notOk(head.overflowed);
  t.notOk(head.push("true}\n"), "past the limit push says false");
  t.ok(head.overflowed);
  t.equal(head.text(), "{\"ok\":tr");
  t.notOk(head.push("more"), "and keeps saying it");
  t.equal(head.text(), "{\"ok\":tr");
});

t.test("fileTail reads only the end of a large file", async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), "netservice-output-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, "big.log");
  await writeFile(file, `${"old line\n".repeat(100_000)}the last line\n`);
  const text = fileTail(file, 1024);
  t.ok(text.length < 1100, `${text.length} characters come back for a 900 KB file`);
  t.match(text, /^\[\.\.\. \d+ earlier bytes left out \.\.\.\]\n/);
  t.match(text, /the last line\n$/);
  const small = path.join(dir, "small.log");
  await writeFile(small, "one\ntwo\n");
  t.equal(fileTail(small), "one\ntwo\n", "a small file comes back whole");
});

t.test("runCommand kills a command whose stdout passes the cap, and keeps only the end of its stderr", async (t) => {
  // `yes` prints "y\n" forever: without the cap this test would not end.
  const flood = await runCommand(["yes"], { maxStdoutBytes: 64 * 1024, timeoutMs: 20_000 });
  t.equal(flood.code, "stdout-overflow", "the command was stopped for its output, not by the timeout");
  t.equal(flood.stdout.length, 64 * 1024, "stdout holds exactly the cap");
  t.match(flood.stderr, /printed more than 65536 bytes on stdout; killed/);

  const noisy = await runCommand(["sh", "-c", "head -c 1000000 /dev/zero | tr '\\0' e >&2; echo the-end >&2; exit 3"]);
  t.equal(noisy.code, 3);
  t.ok(noisy.stderr.length < 70 * 1024, `stderr kept: ${noisy.stderr.length} characters of 1000008`);
  t.match(noisy.stderr, /^\[\.\.\. \d+ earlier bytes left out \.\.\.\]\n/);
  t.match(noisy.stderr, /the-end\n$/, "with its very end");

  const ok = await runCommand(["sh", "-c", "echo out; echo err >&2"]);
  t.same(ok, { code: 0, stdout: "out\n", stderr: "err\n" }, "ordinary output is untouched");
});

t.test("runCommand comes back when a process the command started keeps its output open, and that process is killed", async (t) => {
  // The shell exits at once; the sleep it started holds stdout and stderr, as a CNI plugin's delegate holds the plugin's stderr.
  const result = await runCommand(["sh", "-c", "sleep 600 & echo $!; exit 0"]);
  t.equal(result.code, 0, "the command's own exit code");
  t.match(result.stderr, /exited, but a process it started kept its output open; killed its process group/);
  const straggler = Number(result.stdout.trim());
  t.ok(straggler > 0, `the straggler was pid ${straggler}`);
  await eventually(() => expect(!alive(straggler), `pid ${straggler} still runs`), { timeoutMs: 10_000 });
});

t.test("200 MiB on stderr from a command that leaves its output held open costs the test process bytes kept, not bytes printed", async (t) => {
  // Issue 16 (docs/testing.md): runCommand at 5a0fbd5 appended all of stderr to one string and waited for the
  // pipe to close, so this command hung it for good while it grew by everything printed (rss +364 MB, measured).
  const printed = 200 * 2 ** 20;
  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 20);
  t.teardown(() => clearInterval(sampler));
  const deadline = new Promise<string>((resolve) => setTimeout(() => resolve("no result within 60 s"), 60_000).unref());
  const result = await Promise.race([
    runCommand(["sh", "-c", `head -c ${printed} /dev/zero | tr '\\0' e >&2; sleep 600 & echo $!; exit 0`]),
    deadline,
  ]);
  clearInterval(sampler);
  const growthMiB = (rssPeak - rssBefore) / 2 ** 20;
  // The bound leaves room for 64 KiB chunks that await collection (the peak grew by 61 MB when measured).
  t.ok(growthMiB < 150, `rss grew by ${growthMiB.toFixed(0)} MiB while ${printed / 2 ** 20} MiB went through`);
  if (typeof result === "string") return t.fail(result);
  t.equal(result.code, 0, "the command's own exit code");
  const received = Number(/^\[\.\.\. (\d+) earlier bytes left out/.exec(result.stderr)?.[1] ?? 0) + 64 * 1024;
  t.equal(received, printed, "every byte printed was read");
  t.ok(result.stderr.length < 70 * 1024, `kept ${result.stderr.length} characters of stderr`);
  const straggler = Number(/^\d+/.exec(result.stdout)?.[0]);
  await eventually(() => expect(!alive(straggler), `pid ${straggler} still runs`), { timeoutMs: 10_000 });
});

t.test("runCommand's timeout kills the command's whole process group, so the result comes", async (t) => {
  const result = await runCommand(["sh", "-c", "sleep 600 & echo $!; sleep 600"], { timeoutMs: 500 });
  t.equal(result.code, "SIGKILL");
  t.match(result.stderr, /did not finish within 0\.5 s; killed with its process group/);
  const child = Number(result.stdout.trim());
  await eventually(() => expect(!alive(child), `pid ${child} still runs`), { timeoutMs: 10_000 });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
