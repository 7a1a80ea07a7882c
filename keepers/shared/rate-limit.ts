/**
 * Per-address request counters for signed routes: a fixed window per address that starts with its first
 * request. The embedded limiter counts in this process; `RedisRateLimiter` (redis.ts) counts in Redis so
 * that several instances behind a load balancer share one budget per address.
 */

export interface RateLimit {
  /** Requests allowed per address per window. */
  max: number;
  windowMs: number;
}

export interface RateLimiter {
  readonly limit: RateLimit;
  /**
   * Counts one request of `key`; returns whether it is within the limit. A shared limiter answers
   * asynchronously and rejects when its store cannot be reached.
   */
  hit(key: string): boolean | Promise<boolean>;
}

/** Counters in this process (the embedded default). */
export class MemoryRateLimiter implements RateLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(readonly limit: RateLimit) {}

  hit(key: string): boolean {
    const now = Date.now();
    const window = this.windows.get(key);
    if (!window || now - window.start >= this.limit.windowMs) {
      this.windows.set(key, { start: now, count: 1 });
      if (this.windows.size > 100_000) this.windows.clear(); // bounded memory under a flood of fresh keys
      return true;
    }
    return ++window.count <= this.limit.max;
  }
}
