/**
 * Shared state in Redis, for keepers that run as several instances behind a load balancer (selected by
 * `--redis-url` / `CN_REDIS_URL`; without it every keeper keeps this state in its own SQLite file).
 *
 * One connection per keeper, every key under a prefix naming the chain, the deployment and the keeper, so
 * that several networks or runs can share one Redis. The connection never queues a command while Redis is
 * unreachable: the command fails at once and the request that needed it is answered 503 (a replay check
 * that cannot be made is never skipped). ioredis reconnects by itself with a capped exponential backoff;
 * the outage and the recovery are each logged once.
 *
 * What lives here: used request nonces (`SET key 1 NX PX ttl`), per-address rate-limit counters (INCR and
 * PEXPIRE in one script), and each keeper's own records (discovery's endpoints, the master's heartbeats and
 * leader lease), all written atomically.
 */
import { Redis } from "ioredis";
import type { Logger } from "./log.js";
import type { RateLimit, RateLimiter } from "./rate-limit.js";
import type { NonceStore } from "./signing.js";

/** Lua scripts, run atomically by Redis. */
const SCRIPTS = {
  /** INCR, and PEXPIRE on the window's first request: a counter never outlives its window. */
  cnRateHit: {
    numberOfKeys: 1,
    lua: `local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`,
  },
  /**
   * HSET KEYS[1] field ARGV[1] = ARGV[3] unless the stored JSON has an `at` at least ARGV[2] (a late write
   * never goes back in time); when it was written and KEYS[2] is given, HSET KEYS[2] field = ARGV[4] too (a
   * record's detail kept apart, so that readers of the small records need not fetch it). Returns 1 when written.
   */
  cnHsetNewer: {
    numberOfKeys: 2,
    lua: `local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local ok, decoded = pcall(cjson.decode, current)
  if ok and type(decoded) == 'table' and tonumber(decoded.at) and tonumber(decoded.at) >= tonumber(ARGV[2]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
if ARGV[4] then redis.call('HSET', KEYS[2], ARGV[1], ARGV[4]) end
return 1`,
  },
  /** PEXPIRE KEYS[1] when it still holds ARGV[1] (renew a lease we hold). */
  cnRenewIfEqual: {
    numberOfKeys: 1,
    lua: `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`,
  },
  /** HSET KEYS[1] field ARGV[1] = ARGV[2]; returns the value it replaced (nil: none). */
  cnHsetSwap: {
    numberOfKeys: 1,
    lua: `local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return old`,
  },
  /** DEL KEYS[1] when it still holds ARGV[1] (release a lease we hold, never someone else's). */
  cnDeleteIfEqual: {
    numberOfKeys: 1,
    lua: `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`,
  },
} as const;

/** The scripts above as commands of the client. */
export interface ScriptCommands {
  cnRateHit(key: string, windowMs: number): Promise<number>;
  cnHsetNewer(key: string, detailKey: string, field: string, at: number, value: string, detail?: string): Promise<number>;
  cnRenewIfEqual(key: string, value: string, ttlMs: number): Promise<number>;
  cnDeleteIfEqual(key: string, value: string): Promise<number>;
  cnHsetSwap(key: string, field: string, value: string): Promise<string | null>;
}

export type SharedClient = Redis & ScriptCommands;

/** The URL without its password, for logs. */
export function redactRedisUrl(text: string): string {
  try {
    const url = new URL(text);
    if (url.password) url.password = "***";
    return url.toString();
  } catch {
    return "(unparsable url)";
  }
}

/**
 * The key prefix of one keeper's shared state: `cn:<chainId>:<contract address>:<keeper>[:<scope>]:`. The
 * contract (one of the deployment's) keeps two deployments on one chain apart.
 */
export function keyPrefix(chainId: bigint, contract: string, keeper: string, scope?: string): string {
  return `cn:${chainId}:${contract.toLowerCase()}:${keeper}${scope ? `:${scope}` : ""}:`;
}

export interface SharedRedisOptions {
  url: string;
  /** Prepended to every key (see keyPrefix). */
  prefix: string;
  logger: Logger;
  /** Longest wait for one command's answer (default 2000 ms); a slow Redis counts as unreachable. */
  commandTimeoutMs?: number;
  /** Longest pause between reconnection attempts (default 5000 ms; attempts start at 100 ms and double). */
  maxBackoffMs?: number;
}

/** A keeper's connection to Redis, with its outage bookkeeping. */
export class SharedRedis {
  readonly client: SharedClient;
  readonly url: string;
  private downSince: number | undefined;
  private everReady = false;
  private closed = false;

  constructor(private readonly options: SharedRedisOptions) {
    this.url = redactRedisUrl(options.url);
    const maxBackoffMs = options.maxBackoffMs ?? 5_000;
    const client = new Redis(options.url, {
      keyPrefix: options.prefix,
      // Fail at once while disconnected (answered 503) instead of queueing requests behind an outage.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeoutMs ?? 2_000,
      connectTimeout: 2_000,
      retryStrategy: (attempt) => (this.closed ? null : Math.min(100 * 2 ** Math.min(attempt - 1, 10), maxBackoffMs)),
    });
    for (const [name, definition] of Object.entries(SCRIPTS)) client.defineCommand(name, definition);
    this.client = client as SharedClient;
    const log = options.logger;
    client.on("ready", () => {
      if (this.downSince !== undefined) {
        log.info({ redis: this.url, downMs: Date.now() - this.downSince }, "Redis reachable again: shared state restored");
      } else if (!this.everReady) {
        log.info({ redis: this.url, prefix: options.prefix }, "connected to Redis: shared state in use");
      }
      this.everReady = true;
      this.downSince = undefined;
    });
    const down = (reason: string) => {
      if (this.closed || this.downSince !== undefined) return;
      this.downSince = Date.now();
      log.error(
        { redis: this.url, err: reason, maxBackoffMs },
        "Redis unreachable: signed requests are refused with 503 until it answers again; reconnecting with backoff",
      );
    };
    client.on("error", (error: Error) => down(error.message));
    client.on("close", () => down("connection closed"));
    client.on("reconnecting", (delayMs: number) => log.debug({ redis: this.url, delayMs }, "reconnecting to Redis"));
  }

  /** Whether commands can be sent now. */
  isUp(): boolean {
    return this.client.status === "ready";
  }

  /** Waits up to `timeoutMs` for the first connection; false (and logged by the events) when it did not come. */
  async waitReady(timeoutMs = 5_000): Promise<boolean> {
    if (this.isUp()) return true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.client.off("ready", onReady);
        resolve(false);
      }, timeoutMs);
      const onReady = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.client.once("ready", onReady);
    });
  }

  /** For `/health`. */
  health(): { redis: "up" | "down"; redisDownSinceMs?: number } {
    return this.isUp() ? { redis: "up" } : { redis: "down", ...(this.downSince ? { redisDownSinceMs: Date.now() - this.downSince } : {}) };
  }

  close(): void {
    this.closed = true;
    this.client.disconnect();
  }
}

/**
 * Extra lifetime of a nonce record beyond the request's own expiry: instances whose clocks disagree by up
 * to this much still refuse each other's replays.
 */
export const NONCE_CLOCK_MARGIN_MS = 30_000;

/** Used nonces of signed requests, shared by every instance: `SET nonce:<address>:<nonce> 1 NX PX ttl`. */
export class RedisNonceStore implements NonceStore {
  constructor(private readonly redis: SharedRedis) {}

  async use(address: string, nonce: string, expiresAt: number): Promise<boolean> {
    const ttlMs = Math.max(1_000, expiresAt * 1000 - Date.now()) + NONCE_CLOCK_MARGIN_MS;
    const answer = await this.redis.client.set(`nonce:${address.toLowerCase()}:${nonce}`, "1", "PX", ttlMs, "NX");
    return answer === "OK";
  }
}

/** Per-address request counters shared by every instance (a fixed window from the address's first request). */
export class RedisRateLimiter implements RateLimiter {
  constructor(
    private readonly redis: SharedRedis,
    readonly limit: RateLimit,
  ) {}

  async hit(key: string): Promise<boolean> {
    const count = await this.redis.client.cnRateHit(`rate:${key}`, this.limit.windowMs);
    return count <= this.limit.max;
  }
}
