/**
 * Structured JSON logs: one object per line with `ts`, `level`, `component`, `node`, `subsystem`, `msg`
 * and the figures behind each decision, so that a test's logs explain what happened.
 */
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
    options.destination,
  );
}

/** A child logger for one subsystem. */
export function subsystem(logger: Logger, name: Subsystem): Logger {
  return logger.child({ subsystem: name });
}
