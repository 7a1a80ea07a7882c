/**
 * Structured JSON logs: one object per line with `ts`, `level`, `component`, `node`, `subsystem`, `msg`
 * and the figures behind each decision, so that a test's logs explain what happened.
 *
 * Lines go out once per turn of the event loop (`TurnBufferedDestination`): a keeper answering thousands of
 * requests a second logs many lines per turn, and writes them with one write(2) instead of one each.
 */
import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import path from "node:path";
import { pino, type Logger, type DestinationStream } from "pino";

export type { Logger } from "pino";

export type Subsystem =
  | "Startup"
  | "Cluster"
  | "Chain"
  | "Http"
  | "Registration"
  | "Validation"
  | "Onboarding"
  | "Heartbeat"
  | "Tasks"
  | "Storage"
  | "Epochs"
  | "PoC"
  | "Power"
  | "Work"
  | "TaskValidation"
  | "Disputes"
  | "Claims"
  | "Rewards"
  | "Dashboard";

/** Lines waiting in a destination beyond which they are written at once, not at the end of the turn (bytes, about). */
const MAX_BUFFERED = 64 * 1024;
/** Wait before writing again to a full pipe or terminal (EAGAIN), ms. */
const RETRY_MS = 10;
/** Longest a write waits for a full pipe or terminal before it drops its lines (and says so later), ms. */
const MAX_BLOCK_MS = 1000;
const sleeper = new Int32Array(new SharedArrayBuffer(4));
/** Destinations with lines waiting: written out when the process exits (process.exit, an uncaught exception). */
const unwritten = new Set<TurnBufferedDestination>();
let exitHookInstalled = false;
/** Set by the exit hook: from then on every line is written at once (no turn will end to write it). */
let exiting = false;

/**
 * A log destination that writes the lines logged during one turn of the event loop together, with one
 * synchronous write at the end of that turn (setImmediate), or at once when 64 KiB are waiting. Nothing is
 * handed to another thread, so nothing is left behind when the process exits: `process.exit`, an uncaught
 * exception and `logger.fatal` write what is waiting, and so does a failpoint before its kill
 * (`flushLogs`); only a real kill (SIGKILL) loses the current turn's lines. Lines go out in order, but
 * together at the end of the turn: a `console.log` of the same turn may come before them.
 *
 * The writes are synchronous, on the keeper's own thread. A full pipe or terminal (EAGAIN: its reader
 * does not keep up) is waited for, 1 s at most per write: then the write's lines are dropped rather than
 * the keeper stalled with its reader (the keeper serves on; memory stays bounded). Dropped lines (a full
 * pipe, a closed one, a failing disk) are counted, and the next write that succeeds begins with a warning
 * line saying how many and why.
 */
export class TurnBufferedDestination {
  private lines: string[] = [];
  private size = 0;
  private scheduled = false;
  private closed = false;
  /** Lines dropped since the last successful write, and the reason of the last drop. */
  private dropped = 0;
  private dropReason = "";
  /** A failed write left a partial line: the next one starts on a new line. */
  private partialLine = false;

  constructor(
    /** An open file descriptor (1: stdout). */
    readonly fd: number,
    private readonly ownsFd = false,
  ) {
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on("exit", () => {
        exiting = true;
        flushLogs();
      });
    }
  }

  /** Appends to `file` (its directory created if missing); `close` closes it. */
  static toFile(file: string): TurnBufferedDestination {
    mkdirSync(path.dirname(file), { recursive: true });
    return new TurnBufferedDestination(openSync(file, "a"), true);
  }

  /** Lines dropped and not reported yet (see the class' comment). */
  get droppedLines(): number {
    return this.dropped;
  }

  write(line: string): boolean {
    if (this.closed) return false;
    if (this.lines.length === 0) unwritten.add(this);
    this.lines.push(line);
    this.size += line.length;
    if (exiting || this.size >= MAX_BUFFERED) this.flushSync();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.endOfTurn);
    }
    return true;
  }

  private readonly endOfTurn = (): void => {
    this.scheduled = false;
    this.flushSync();
  };

  /** Writes what is waiting, now. Never throws: lines that cannot be written are counted (see the class' comment). */
  flushSync(): void {
    unwritten.delete(this);
    if (this.lines.length === 0) return;
    const count = this.lines.length;
    let text = count === 1 ? this.lines[0] : this.lines.join("");
    this.lines = [];
    this.size = 0;
    if (this.dropped > 0) {
      const warning = { level: "warn", ts: new Date().toISOString(), msg: "log lines dropped", dropped: this.dropped, reason: this.dropReason };
      text = `${this.partialLine ? "\n" : ""}${JSON.stringify(warning)}\n${text}`;
    }
    const bytes = Buffer.from(text, "utf8");
    const { written, failure } = writeAll(this.fd, bytes);
    if (failure === undefined) {
      this.dropped = 0;
      this.partialLine = false;
      return;
    }
    this.dropped += count;
    this.dropReason = failure;
    if (written > 0) this.partialLine = bytes[written - 1] !== 0x0a;
  }

  /** pino's `logger.flush(callback)`. */
  flush(callback?: (error?: Error) => void): void {
    this.flushSync();
    callback?.();
  }

  /** Writes what is waiting and stops taking lines (closes the file `toFile` opened). */
  close(): void {
    if (this.closed) return;
    this.flushSync();
    this.closed = true;
    if (this.ownsFd) closeSync(this.fd);
  }
}

/**
 * Writes all of `bytes` to `fd`: how many bytes went out and, if not all, why not (the rest is not
 * written). A full pipe (EAGAIN, EBUSY) is waited for up to MAX_BLOCK_MS.
 */
function writeAll(fd: number, bytes: Buffer): { written: number; failure?: string } {
  let written = 0;
  let waited = 0;
  while (written < bytes.length) {
    try {
      written += writeSync(fd, bytes, written);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? String(error);
      if ((code === "EAGAIN" || code === "EBUSY") && waited < MAX_BLOCK_MS) {
        Atomics.wait(sleeper, 0, 0, RETRY_MS);
        waited += RETRY_MS;
        continue;
      }
      const failure = code === "EAGAIN" || code === "EBUSY" ? `the reader did not take the output for ${MAX_BLOCK_MS} ms (${code})` : `write failed (${code})`;
      return { written, failure };
    }
  }
  return { written };
}

/** Writes the lines every destination of this thread holds, now (before a deliberate kill, and at exit). */
export function flushLogs(): void {
  for (const destination of unwritten) destination.flushSync();
}

/** The process' stdout destination, shared by every logger that writes there. */
let stdoutDestination: TurnBufferedDestination | undefined;

export interface LoggerOptions {
  component: string;
  node?: string;
  level?: string;
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level ?? process.env.LOG_LEVEL ?? "info",
      base: { component: options.component, ...(options.node ? { node: options.node } : {}) },
      messageKey: "msg",
      timestamp: () => `,"ts":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? (stdoutDestination ??= new TurnBufferedDestination(1)),
  );
}

/** A child logger for one subsystem. */
export function subsystem(logger: Logger, name: Subsystem): Logger {
  return logger.child({ subsystem: name });
}
