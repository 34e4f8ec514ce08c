// The failures of a TAP log, each with the path of subtests that leads to it
// and its diagnostic, and the runner's summary: what .ci/run prints when a
// suite fails, since CI keeps only the end of a log and a failure deep in a
// 6,000-assertion run is otherwise out of sight.

export interface TapFailure {
  /** The file, then each subtest down to the failing point (empty for a file). */
  path: string[];
  /** The failing point's description ("should be equal", "timeout!"). */
  description: string;
  /** Its YAML diagnostic, unindented, at most maxDetailLines lines. */
  details: string[];
}

interface OpenSubtest {
  indent: number;
  name: string;
  childFailed: boolean;
  /** The comments written straight into it ("# error thrown in teardown", a teardown's "# stopping: ..."). */
  comments: string[];
  /** The line its `# Subtest:` is on. */
  start: number;
}

const subtestLine = /^# Subtest: (.*)$/;
const commentLine = /^# (?!Subtest: |time=)(.*)$/;
/** What starts a line of TAP's own at the left margin. */
const tapSyntax = /^(?:(?:not )?ok \d|TAP version |1\.\.\d|Bail out!|pragma )/;
/** A line a process wrote to stderr: tap passes it through unindented, where TAP's own lines at the margin are its syntax or comments. */
const isStderrLine = (line: string): boolean => /^[^\s#]/.test(line) && !tapSyntax.test(line);
/** How many of a failed subtest's last comments are kept. */
const maxComments = 20;
const pointLine = /^(not )?ok \d+(?: - (.*?))?(?: # (?:time=|SKIP|TODO).*)?$/;

/**
 * Every failing point of a TAP log. A subtest that fails without a failing
 * point inside it (a file whose process died, a subtest that timed out) is a
 * failure itself; one that fails because of a point inside it is not
 * repeated.
 */
export function tapFailures(log: string, maxDetailLines = 40): TapFailure[] {
  const lines = log.split("\n");
  const open: OpenSubtest[] = [];
  const failures: TapFailure[] = [];
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!;
    const indent = line.length - line.trimStart().length;
    const text = line.trim();
    const subtest = subtestLine.exec(text);
    if (subtest) {
      open.push({ indent, name: subtest[1]!, childFailed: false, comments: [], start: index });
      continue;
    }
    const comment = commentLine.exec(text);
    if (comment) {
      const owner = open.findLast((subtest) => subtest.indent < indent);
      if (owner && owner.indent + 4 === indent) owner.comments.push(comment[1]!);
      continue;
    }
    const point = pointLine.exec(text);
    if (!point) continue;
    while (open.length > 0 && open[open.length - 1]!.indent > indent) open.pop();
    const closing = open.length > 0 && open[open.length - 1]!.indent === indent ? open.pop() : undefined;
    const failed = point[1] !== undefined;
    if (!failed) continue;
    const parent = open[open.length - 1];
    if (parent) parent.childFailed = true;
    if (closing?.childFailed) continue;
    const path = open.map((subtest) => subtest.name);
    const details = diagnostic(lines, index + 1, indent + 2, maxDetailLines);
    if (closing) details.push(...said(closing, lines.slice(closing.start, index), lines));
    failures.push({ path, description: point[2] ?? closing?.name ?? "", details });
  }
  return failures;
}

/**
 * What a subtest that failed with no failing point said: its own comments (a
 * teardown's), and, for a file, what its process wrote to stderr, which tap
 * passes through unindented: an error its teardown threw, a crash. Other
 * files' stderr can land there too, so the lines are headed as such.
 */
function said(subtest: OpenSubtest, block: string[], lines: string[]): string[] {
  const comments = subtest.comments.slice(-maxComments);
  const out = comments.length > 0 ? ["comments:", ...comments.map((comment) => `  ${comment}`)] : [];
  if (subtest.indent !== 0) return out;
  // A teardown's error carries the file in its stack, wherever in the log it landed.
  const thrown = subtest.comments.includes("error thrown in teardown") ? thrownErrors(lines, subtest.name) : [];
  if (thrown.length > 0) out.push("thrown:", ...thrown.map((error) => `  ${error}`));
  const unindented = block.filter((line) => isStderrLine(line) && !thrown.includes(line));
  if (unindented.length > 0) {
    const shown = unindented.slice(-maxComments);
    out.push("stderr among its output (maybe another file's):", ...shown.map((line) => `  ${line}`));
  }
  return out;
}

/** The first lines of the errors tap printed unindented with a YAML block whose `fileName:` is the file. */
function thrownErrors(lines: string[], file: string): string[] {
  const errors: string[] = [];
  for (let index = 1; index < lines.length; index++) {
    if (lines[index] !== "  ---" || !isStderrLine(lines[index - 1]!)) continue;
    const end = lines.indexOf("  ...", index);
    const block = lines.slice(index, end < 0 ? undefined : end);
    if (block.some((line) => line.trim() === `fileName: ${file}`)) errors.push(lines[index - 1]!);
  }
  return errors;
}

/** The YAML block starting at lines[start] (`---` to `...` at the given indent), unindented. */
function diagnostic(lines: string[], start: number, indent: number, maxLines: number): string[] {
  const pad = " ".repeat(indent);
  if (lines[start] !== `${pad}---`) return [];
  const block: string[] = [];
  for (let index = start + 1; index < lines.length && lines[index] !== `${pad}...`; index++) block.push(lines[index]!.slice(indent));
  if (block.length <= maxLines) return block;
  return [...block.slice(0, maxLines), `(${block.length - maxLines} more lines)`];
}

/** The runner's summary: the last `# { total: ... }` line and what follows it. */
export function tapSummary(log: string): string[] {
  const lines = log.trimEnd().split("\n");
  const at = lines.findLastIndex((line) => line.startsWith("# { total:"));
  return at < 0 ? [] : lines.slice(at);
}

/** The failures as text for a reader of CI's log. */
export function formatFailures(failures: TapFailure[], maxFailures = 20): string[] {
  const shown = failures.slice(0, maxFailures);
  const out = shown.flatMap((failure) => [
    `--- ${[...failure.path, failure.description].join(" > ")}`,
    ...failure.details.map((line) => `    ${line}`),
  ]);
  if (failures.length > shown.length) out.push(`(${failures.length - shown.length} more failures: see the whole log)`);
  return out;
}
