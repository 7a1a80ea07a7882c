/**
 * A keeper's embedded SQLite file: event cursor, replay-protection nonces and each keeper's own tables.
 * WAL mode and synchronous=NORMAL: a crash loses at most the last transaction, never corrupts the file.
 * The chain stays the source of truth; this holds caches, cursors and blobs' metadata.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import type { NonceStore } from "./signing.js";

export type Db = Database.Database;

export interface EventCursor {
  /** Last block whose logs were all handled. */
  block: number;
}

export class KeeperStore implements NonceStore {
  readonly db: Db;
  private readonly insertNonce: Database.Statement;
  private readonly sweepNonces: Database.Statement;
  private lastSweep = 0;
  /** Writes waiting for the next group commit, with their callers. */
  private pendingWrites: Array<{ work: () => unknown; resolve: (result: never) => void; reject: (error: unknown) => void }> = [];

  constructor(file: string) {
    if (file !== ":memory:") mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    this.db.pragma("busy_timeout = 5000");
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      -- Keyed by expiry first: inserts land next to each other (expiry = the request's timestamp + the
      -- allowed skew, close to now), so each writes a page or two to the WAL instead of one random page per
      -- B-tree, and the sweep deletes a range at the front. A replay repeats the timestamp (it is signed),
      -- so (expiry, address, nonce) identifies a request as well as (address, nonce) does.
      CREATE TABLE IF NOT EXISTS request_nonces (
        expires_at INTEGER NOT NULL, address TEXT NOT NULL, nonce TEXT NOT NULL,
        PRIMARY KEY (expires_at, address, nonce)
      ) WITHOUT ROWID;
    `);
    // Nonces of the previous layout (at most a minute's worth) stay refused after an upgrade.
    const legacy = this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'nonces'").get();
    if (legacy) {
      this.db.transaction(() => {
        this.db.exec("INSERT OR IGNORE INTO request_nonces (expires_at, address, nonce) SELECT expires_at, address, nonce FROM nonces");
        this.db.exec("DROP TABLE nonces");
      })();
    }
    this.insertNonce = this.db.prepare("INSERT OR IGNORE INTO request_nonces (expires_at, address, nonce) VALUES (?, ?, ?)");
    this.sweepNonces = this.db.prepare("DELETE FROM request_nonces WHERE expires_at < ?");
  }

  /**
   * NonceStore: false when the address used this nonce, in a request of the same expiry, before and it has
   * not expired. Expired ones are swept every second (a small range delete, not a pause).
   */
  use(address: string, nonce: string, expiresAt: number): boolean {
    const now = Math.floor(Date.now() / 1000);
    if (now - this.lastSweep >= 1) {
      this.sweepNonces.run(now);
      this.lastSweep = now;
    }
    return this.insertNonce.run(expiresAt, address.toLowerCase(), nonce).changes === 1;
  }

  /**
   * NonceStore, for the HTTP layer: a nonce written in the next group commit (see `writeSoon`), so that
   * no request is answered before its nonce is stored. Two uses of a nonce in the same batch: the first
   * wins, as with `use`.
   */
  useSoon(address: string, nonce: string, expiresAt: number): Promise<boolean> {
    return this.writeSoon(() => this.use(address, nonce, expiresAt));
  }

  /**
   * Group commit: `work` (synchronous SQLite writes) runs in one transaction with every other write asked
   * for in the same turn of the event loop — one WAL append for a whole batch of requests instead of one
   * per request — and the promise settles once that transaction committed, with what `work` returned. If
   * the transaction fails (a work throws, the disk is full), it rolls back and every caller of the batch
   * gets the error: nothing of it is stored.
   */
  writeSoon<T>(work: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.pendingWrites.length === 0) setImmediate(() => this.commitWrites());
      this.pendingWrites.push({ work, resolve: resolve as (result: never) => void, reject });
    });
  }

  private commitWrites(): void {
    const batch = this.pendingWrites;
    this.pendingWrites = [];
    if (batch.length === 0) return;
    let results: unknown[];
    try {
      results = this.db.transaction(() => batch.map((w) => w.work()))();
    } catch (error) {
      for (const w of batch) w.reject(error);
      return;
    }
    batch.forEach((w, i) => w.resolve(results[i] as never));
  }

  get(key: string): string | undefined {
    const row = this.db.prepare("SELECT value FROM kv WHERE key = ?").get(key) as { value: string } | undefined;
    return row?.value;
  }

  set(key: string, value: string): void {
    this.db.prepare("INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(key, value);
  }

  cursor(name: string): EventCursor | undefined {
    const raw = this.get(`cursor:${name}`);
    return raw === undefined ? undefined : (JSON.parse(raw) as EventCursor);
  }

  setCursor(name: string, cursor: EventCursor): void {
    this.set(`cursor:${name}`, JSON.stringify(cursor));
  }

  close(): void {
    if (this.pendingWrites.length > 0 && this.db.open) this.commitWrites();
    if (this.db.open) this.db.close();
  }
}
