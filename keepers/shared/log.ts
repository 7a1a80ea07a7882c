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
const sleeper = new Int32Array(new SharedArrayBuffer(4));
/** Destinations with lines waiting: written out when the process exits (process.exit, an uncaught exception). */
const unwritten = new Set<TurnBufferedDestination>();
let exitHookInstalled = false;

/**
 * A log destination that writes the lines logged during one turn of the event loop together, with one
 * synchronous write at the end of that turn (setImmediate), or at once when 64 KiB are waiting. Nothing is
 * handed to another thread, so nothing is left behind when the process exits: `process.exit`, an uncaught
 * exception and `logger.fatal` write what is waiting; only a kill (SIGKILL) loses the current turn's lines.
 * A full pipe (EAGAIN) is waited for, as pino's own destination does; a closed one (EPIPE) drops the lines.
 */
export class TurnBufferedDestination {
  private lines: string[] = [];
  private size = 0;
  private scheduled = false;
  private closed = false;

  constructor(
    /** An open file descriptor (1: stdout). */
    readonly fd: number,
    private readonly ownsFd = false,
  ) {
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on("exit", flushLogs);
    }
  }

  /** Appends to `file` (its directory created if missing); `close` closes it. */
  static toFile(file: string): TurnBufferedDestination {
    mkdirSync(path.dirname(file), { recursive: true });
    return new TurnBufferedDestination(openSync(file, "a"), true);
  }

  write(line: string): boolean {
    if (this.closed) return false;
    this.lines.push(line);
    this.size += line.length;
    if (this.size >= MAX_BUFFERED) this.flushSync();
    else if (!this.scheduled) {
      this.scheduled = true;
      unwritten.add(this);
      setImmediate(this.endOfTurn);
    }
    return true;
  }

  private readonly endOfTurn = (): void => {
    this.scheduled = false;
    this.flushSync();
  };

  /** Writes what is waiting, now. */
  flushSync(): void {
    unwritten.delete(this);
    if (this.lines.length === 0) return;
    const bytes = Buffer.from(this.lines.length === 1 ? this.lines[0] : this.lines.join(""), "utf8");
    this.lines = [];
    this.size = 0;
    let written = 0;
    while (written < bytes.length) {
      try {
        written += writeSync(this.fd, bytes, written);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "EAGAIN" || code === "EBUSY") {
          Atomics.wait(sleeper, 0, 0, RETRY_MS);
          continue;
        }
        if (code === "EPIPE") return; // the reader is gone: as pino, the lines have nowhere to go
        throw error;
      }
    }
  }

  /** pino's `logger.flush(callback)`. */
  flush(callback?: (error?: Error) => void): void {
    try {
      this.flushSync();
    } catch (error) {
      callback?.(error as Error);
      return;
    }
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
