/**
 * A leader lease in Redis: among the instances of a keeper, the one holding the lease does the duties that
 * must happen once (for the master: invites, ejections, on-chain tasks, the key's transaction nonces).
 *
 *   acquire  SET <key> <holder> NX PX <ttl>        (only when nobody holds it)
 *   renew    PEXPIRE <key> <ttl> if GET <key> = <holder>   (one Lua script, every ttl/3)
 *   release  DEL <key> if GET <key> = <holder>              (on a graceful stop: the next one takes over at once)
 *
 * The holder counts its lease as valid until `ttl − margin` after it *sent* the command that set or renewed
 * it, so it stops acting before Redis can hand the lease to another instance even with some clock rate drift.
 * Callers fence each write cycle with `confirm()` (a renewal round trip just before acting). When Redis is
 * unreachable the holder keeps acting only until its lease runs out locally; the others cannot acquire it
 * meanwhile, so at most one instance acts at any time.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "./log.js";
import type { SharedRedis } from "./redis.js";

export interface LeaseHolder {
  /** Random per process start. */
  id: string;
  /** Where the other instances reach this one (they forward leader-only requests there). */
  url: string;
}

export interface LeaderLeaseOptions {
  redis: SharedRedis;
  /** The lease's key (under the connection's prefix). */
  key: string;
  url: string;
  /** Lease lifetime (default 10 s): the longest the duties pause after a leader dies without releasing. */
  ttlMs?: number;
  logger: Logger;
  /** Called when this instance becomes the leader (e.g. re-read the key's transaction nonce from the chain). */
  onAcquired?: () => void;
  /** Called when it stops being the leader, with the reason. */
  onLost?: (reason: string) => void;
}

export class LeaderLease {
  readonly holder: LeaseHolder;
  readonly ttlMs: number;
  private readonly value: string;
  private readonly marginMs: number;
  private holding = false;
  private validUntil = 0;
  private current: LeaseHolder | null = null;
  private timer: NodeJS.Timeout | undefined;
  private stepping: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly options: LeaderLeaseOptions) {
    this.ttlMs = options.ttlMs ?? 10_000;
    this.marginMs = Math.max(100, Math.floor(this.ttlMs / 5));
    this.holder = { id: randomUUID(), url: options.url };
    this.value = JSON.stringify(this.holder);
  }

  /** Starts the acquire / renew loop (every ttl/3); resolves after the first attempt. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.step();
    this.schedule();
  }

  /** Whether this instance holds the lease now (by its local validity; see `confirm` to fence a write cycle). */
  isLeader(): boolean {
    return this.holding && Date.now() < this.validUntil;
  }

  /** The current holder as last read (this instance when it leads; null when nobody holds the lease). */
  leader(): LeaseHolder | null {
    return this.isLeader() ? this.holder : this.current;
  }

  /**
   * Fencing before a write cycle: renews the lease now and returns whether it is still ours. False when it
   * is not, or Redis cannot confirm it and the local validity ran out.
   */
  async confirm(): Promise<boolean> {
    if (!this.holding || this.stopped) return false;
    const sentAt = Date.now();
    try {
      const renewed = await this.options.redis.client.cnRenewIfEqual(this.options.key, this.value, this.ttlMs);
      if (renewed === 1) {
        this.validUntil = Math.max(this.validUntil, sentAt + this.ttlMs - this.marginMs);
        return true;
      }
      this.lose("the lease expired and another instance may hold it");
      return false;
    } catch {
      return this.isLeader();
    }
  }

  /** Stops renewing and releases the lease when held, so that another instance takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.stepping?.catch(() => undefined);
    if (!this.holding) return;
    this.holding = false;
    this.validUntil = 0;
    try {
      await this.options.redis.client.cnDeleteIfEqual(this.options.key, this.value);
      this.options.logger.info({ lease: this.options.key, instance: this.holder.id }, "leader lease released");
    } catch (error) {
      this.options.logger.warn({ lease: this.options.key, err: (error as Error).message, expiresInMs: this.ttlMs }, "leader lease not released (Redis unreachable): it expires by itself");
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.stepping = this.step().finally(() => this.schedule());
    }, Math.max(50, Math.floor(this.ttlMs / 3)));
  }

  private async step(): Promise<void> {
    const { redis, key } = this.options;
    const sentAt = Date.now();
    try {
      if (this.holding) {
        const renewed = await redis.client.cnRenewIfEqual(key, this.value, this.ttlMs);
        if (renewed === 1) this.validUntil = sentAt + this.ttlMs - this.marginMs;
        else this.lose("the lease expired before it was renewed and another instance may hold it");
        return;
      }
      const acquired = await redis.client.set(key, this.value, "PX", this.ttlMs, "NX");
      if (acquired === "OK" && !this.stopped) {
        const previous = this.describe(this.current);
        this.holding = true;
        this.validUntil = sentAt + this.ttlMs - this.marginMs;
        this.current = this.holder;
        this.options.logger.info(
          { lease: key, instance: this.holder.id, url: this.holder.url, ttlMs: this.ttlMs, previous },
          "leader lease acquired: this instance does the chain-writing duties",
        );
        this.options.onAcquired?.();
        return;
      }
      const raw = await redis.client.get(key);
      const next = raw === null ? null : this.parse(raw);
      if ((next?.id ?? null) !== (this.current?.id ?? null)) {
        this.options.logger.info({ lease: key, leader: next?.id ?? null, leaderUrl: next?.url ?? null }, next ? "following the leader" : "no leader holds the lease");
      }
      this.current = next;
    } catch (error) {
      if (this.holding && Date.now() >= this.validUntil) this.lose(`Redis unreachable (${(error as Error).message}) and the lease ran out`);
    }
  }

  private lose(reason: string): void {
    if (!this.holding) return;
    this.holding = false;
    this.validUntil = 0;
    this.current = null;
    this.options.logger.warn({ lease: this.options.key, instance: this.holder.id, reason }, "leader lease lost: chain-writing duties stop here");
    this.options.onLost?.(reason);
  }

  private parse(raw: string): LeaseHolder | null {
    try {
      const parsed = JSON.parse(raw) as Partial<LeaseHolder>;
      return typeof parsed.id === "string" && typeof parsed.url === "string" ? { id: parsed.id, url: parsed.url } : null;
    } catch {
      return null;
    }
  }

  private describe(holder: LeaseHolder | null): string | null {
    return holder ? holder.id : null;
  }
}
