/** Graceful shutdown: on SIGINT/SIGTERM run the registered steps in reverse order, then exit. */
import type { Logger } from "./log.js";

export class Lifecycle {
  private readonly steps: Array<{ name: string; run: () => Promise<void> | void }> = [];
  private stopping: Promise<void> | undefined;

  constructor(private readonly logger: Logger) {}

  /** Registers a cleanup step; steps run last-registered first. */
  onStop(name: string, run: () => Promise<void> | void): void {
    this.steps.push({ name, run });
  }

  /** Runs every step once (each bounded by `timeoutMs`); later calls wait for the first. */
  stop(reason: string, timeoutMs = 10_000): Promise<void> {
    this.stopping ??= (async () => {
      this.logger.info({ subsystem: "Startup", reason }, "shutting down");
      for (const step of [...this.steps].reverse()) {
        try {
          await Promise.race([
            Promise.resolve(step.run()),
            new Promise((_, reject) => setTimeout(() => reject(new Error("timed out")), timeoutMs).unref()),
          ]);
        } catch (error) {
          this.logger.warn({ subsystem: "Startup", step: step.name, err: (error as Error).message }, "shutdown step failed");
        }
      }
      this.logger.info({ subsystem: "Startup" }, "stopped");
    })();
    return this.stopping;
  }

  /** Stops and exits on SIGINT / SIGTERM. */
  installSignalHandlers(): void {
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      process.once(signal, () => {
        void this.stop(signal).then(() => process.exit(0));
      });
    }
  }
}
