/**
 * What a periodic keeper loop (every keeper's event follower, the master's reconcile and task-queue passes,
 * the miner's epoch step, the validator's epoch advance and discovery poll) does when its passes fail, for
 * instance while the RPC node or discovery cannot be reached:
 *
 *   - it waits longer between passes: the loop's interval doubling after each failure, up to `maxDelayMs`
 *     (default 5 s; never less than the interval), so an outage is not met with a request a second from
 *     every keeper, and a keeper still notices the recovery within seconds;
 *   - it says so once, not every pass: a warning at the first failure and when the error changes, then a
 *     reminder with the count at most every `remindMs` (default 60 s) while it keeps failing;
 *   - one info line when a pass succeeds again, with how many failed and for how long.
 */
import type { Logger } from "./log.js";

export interface LoopHealthOptions {
  /** What a pass does, for the log lines ("reconcile pass"). */
  what: string;
  logger: Logger;
  /** The loop's interval between passes that succeed, ms. */
  intervalMs: number;
  /** Longest wait after failures, ms (default 5,000; at least the interval). */
  maxDelayMs?: number;
  /** While passes keep failing with the same error, a reminder at most this often, ms (default 60,000). */
  remindMs?: number;
  now?: () => number;
}

export class LoopHealth {
  private failures = 0;
  private failingSince = 0;
  private lastError = "";
  private lastLoggedAt = 0;
  private readonly maxDelayMs: number;
  private readonly remindMs: number;
  private readonly now: () => number;

  constructor(private readonly options: LoopHealthOptions) {
    if (!(options.intervalMs > 0)) throw new Error(`${options.what}: intervalMs must be positive, got ${options.intervalMs}`);
    this.maxDelayMs = Math.max(options.intervalMs, options.maxDelayMs ?? 5_000);
    this.remindMs = options.remindMs ?? 60_000;
    this.now = options.now ?? Date.now;
  }

  /** Passes failed in a row (0 while the loop works). */
  get failedPasses(): number {
    return this.failures;
  }

  /** How long to wait before the next pass: the interval, or the backoff while passes fail. */
  get delayMs(): number {
    if (this.failures === 0) return this.options.intervalMs;
    return Math.min(this.maxDelayMs, this.options.intervalMs * 2 ** Math.min(this.failures, 20));
  }

  /** A pass succeeded. After failures, says once that the loop works again. Returns the wait before the next pass. */
  succeeded(): number {
    if (this.failures > 0) {
      this.options.logger.info({ failedPasses: this.failures, downMs: this.now() - this.failingSince }, `${this.options.what} works again`);
      this.failures = 0;
      this.lastError = "";
    }
    return this.delayMs;
  }

  /**
   * A pass failed with `error`. Logs it when it is the first failure, when the error differs from the last
   * one, or as a reminder once `remindMs` passed since the last line. Returns the wait before the next pass.
   */
  failed(error: unknown, fields: Record<string, unknown> = {}): number {
    const message = error instanceof Error ? error.message : String(error);
    const now = this.now();
    if (this.failures === 0) this.failingSince = now;
    this.failures++;
    const retryInMs = this.delayMs;
    const { logger, what } = this.options;
    if (this.failures === 1 || message !== this.lastError) {
      logger.warn({ ...fields, err: message, failedPasses: this.failures, retryInMs }, `${what} failed; retrying with backoff`);
      this.lastLoggedAt = now;
    } else if (now - this.lastLoggedAt >= this.remindMs) {
      logger.warn({ ...fields, err: message, failedPasses: this.failures, failingForMs: now - this.failingSince, retryInMs }, `${what} still failing`);
      this.lastLoggedAt = now;
    }
    this.lastError = message;
    return retryInMs;
  }
}
