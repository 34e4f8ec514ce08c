// Bounded memory for what child processes print. A child that prints
// without end (a retry loop, a crash loop, a chatty server) must not grow the
// test process: keep the last bytes for an error message, or a capped amount
// of a result, and say how much was left out.
//
//   const tail = new OutputTail(64 * 1024);
//   child.stderr.on("data", (chunk) => tail.push(chunk));
//   throw new Error(`failed: ${tail.text()}`);       // "[... 12345 earlier bytes left out ...]\n<last 64 KiB>"
//
//   const head = new OutputHead(4 * 2 ** 20);         // a result that must be whole, or an error
//   child.stdout.on("data", (chunk) => { if (!head.push(chunk)) child.kill("SIGKILL"); });
import { openSync, readSync, closeSync, fstatSync } from "node:fs";

/** The last `limitBytes` bytes of a stream. */
export class OutputTail {
  readonly limitBytes: number;
  #chunks: Buffer[] = [];
  #size = 0;
  #dropped = 0;

  constructor(limitBytes = 64 * 1024) {
    this.limitBytes = limitBytes;
  }

  push(chunk: Buffer | string): void {
    let buffer = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    if (buffer.length > this.limitBytes) {
      this.#dropped += buffer.length - this.limitBytes;
      buffer = buffer.subarray(buffer.length - this.limitBytes);
    }
    this.#chunks.push(buffer);
    this.#size += buffer.length;
    while (this.#size > this.limitBytes) {
      const first = this.#chunks[0]!;
      const excess = this.#size - this.limitBytes;
      if (first.length <= excess) {
        this.#chunks.shift();
        this.#size -= first.length;
        this.#dropped += first.length;
      } else {
        // Copied, so the kept part does not pin the whole chunk it came from.
        this.#chunks[0] = Buffer.from(first.subarray(excess));
        this.#size -= excess;
        this.#dropped += excess;
      }
    }
  }

  /** Bytes kept now (at most limitBytes). */
  get size(): number {
    return this.#size;
  }

  /** Bytes left out so far. */
  get droppedBytes(): number {
    return this.#dropped;
  }

  /** The kept text, with a first line saying how much came before it. */
  text(): string {
    const kept = Buffer.concat(this.#chunks).toString("utf8");
    return this.#dropped > 0 ? `[... ${this.#dropped} earlier bytes left out ...]\n${kept}` : kept;
  }
}

/** The first `limitBytes` bytes of a stream; push says false once more came than that. */
export class OutputHead {
  readonly limitBytes: number;
  #chunks: Buffer[] = [];
  #size = 0;
  #overflowed = false;

  constructor(limitBytes: number) {
    this.limitBytes = limitBytes;
  }

  /** False once the stream has gone past the limit (what is past it is dropped). */
  push(chunk: Buffer | string): boolean {
    if (this.#overflowed) return false;
    const buffer = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    const room = this.limitBytes - this.#size;
    if (buffer.length > room) {
      this.#chunks.push(Buffer.from(buffer.subarray(0, room)));
      this.#size += room;
      this.#overflowed = true;
      return false;
    }
    this.#chunks.push(buffer);
    this.#size += buffer.length;
    return true;
  }

  get overflowed(): boolean {
    return this.#overflowed;
  }

  text(): string {
    return Buffer.concat(this.#chunks).toString("utf8");
  }
}

/** The last `limitBytes` of a file (a process log), read without loading the whole file. */
export function fileTail(file: string, limitBytes = 64 * 1024): string {
  const fd = openSync(file, "r");
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, limitBytes);
    const buffer = Buffer.alloc(length);
    const read = readSync(fd, buffer, 0, length, size - length);
    const text = buffer.subarray(0, read).toString("utf8");
    return size > length ? `[... ${size - length} earlier bytes left out ...]\n${text}` : text;
  } finally {
    closeSync(fd);
  }
}
