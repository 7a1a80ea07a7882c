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

/** A used nonce of the next group commit: [expiresAt, lowercase address, nonce]. */
type NonceEntry = [number, string, string];

/** How a used nonce is kept in memory, within the set of its expiry. */
function nonceKey(addressLower: string, nonce: string): string {
  return `${addressLower}:${nonce}`;
}

/**
 * One process per file: the replay check runs on this process' memory (several instances of a keeper share
 * their nonces through Redis instead, `redis.ts`).
 */
export class KeeperStore implements NonceStore {
  readonly db: Db;
  private readonly insertNonces: Database.Statement;
  private readonly sweepNonces: Database.Statement;
  private lastSweep = 0;
  /**
   * Unexpired used nonces by expiry (unix seconds), each `address:nonce` with the address lowercase: what
   * `use` and `useSoon` answer from. Filled from the file on open; a request's timestamp is within the
   * allowed skew of now, so this holds at most the nonces of the last 2 × skew seconds (~100 bytes each).
   */
  private readonly usedNonces = new Map<number, Set<string>>();
  /** The nonce rows of the file in id order, with the latest expiry in each: swept from the front. */
  private readonly nonceRows: Array<{ id: number; expiresMax: number }> = [];
  private nonceRowsHead = 0;
  /** Nonces taken by `useSoon` for the next group commit, written there as one row. */
  private pendingNonces: NonceEntry[] = [];
  /** Writes waiting for the next group commit, with their callers. */
  private pendingWrites: Array<{ work: () => unknown; resolve: (result: never) => void; reject: (error: unknown) => void }> = [];

  /** `now`: unix seconds (default the system clock), for the nonces' expiry. */
  constructor(
    file: string,
    private readonly now: () => number = () => Math.floor(Date.now() / 1000),
  ) {
    if (file !== ":memory:") mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    this.db.pragma("busy_timeout = 5000");
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      -- Used nonces, one row per group commit (a JSON array of [expiresAt, address, nonce]): a row is
      -- appended at the end of the table whatever the addresses, instead of one B-tree insert on a random
      -- page per request. The replay check runs in memory (loaded from here on open); rows are deleted from
      -- the front once every nonce in them expired.
      CREATE TABLE IF NOT EXISTS request_nonce_rows (
        id INTEGER PRIMARY KEY, expires_max INTEGER NOT NULL, entries TEXT NOT NULL
      );
    `);
    this.insertNonces = this.db.prepare("INSERT INTO request_nonce_rows (expires_max, entries) VALUES (?, ?)");
    this.sweepNonces = this.db.prepare("DELETE FROM request_nonce_rows WHERE id <= ?");
    this.loadNonces();
  }

  /** Reads the unexpired nonces into memory; nonces of the previous layouts become one row of this one. */
  private loadNonces(): void {
    const now = this.now();
    const rows = this.db.prepare("SELECT id, expires_max, entries FROM request_nonce_rows ORDER BY id").all() as Array<{ id: number; expires_max: number; entries: string }>;
    for (const row of rows) {
      this.nonceRows.push({ id: row.id, expiresMax: row.expires_max });
      if (row.expires_max < now) continue;
      for (const [expiresAt, address, nonce] of JSON.parse(row.entries) as NonceEntry[]) if (expiresAt >= now) this.remember(address, nonce, expiresAt);
    }
    // `nonces` (first layout) and `request_nonces` (keyed by expiry): their unexpired nonces stay refused.
    const legacy = (this.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('nonces', 'request_nonces')").all() as Array<{ name: string }>).map((t) => t.name);
    if (legacy.length === 0) return;
    this.db.transaction(() => {
      const carried: NonceEntry[] = [];
      for (const table of legacy) {
        for (const row of this.db.prepare(`SELECT expires_at, address, nonce FROM ${table} WHERE expires_at >= ?`).all(now) as Array<{ expires_at: number; address: string; nonce: string }>) {
          const entry: NonceEntry = [row.expires_at, row.address.toLowerCase(), row.nonce];
          if (this.remember(entry[1], entry[2], entry[0])) carried.push(entry);
        }
        this.db.exec(`DROP TABLE ${table}`);
      }
      this.writeNonceRow(carried);
    })();
  }

  /** Marks a nonce used in memory: false when it was already. */
  private remember(addressLower: string, nonce: string, expiresAt: number): boolean {
    let used = this.usedNonces.get(expiresAt);
    if (used === undefined) {
      used = new Set();
      this.usedNonces.set(expiresAt, used);
    }
    const key = nonceKey(addressLower, nonce);
    if (used.has(key)) return false;
    used.add(key);
    return true;
  }

  private forget([expiresAt, addressLower, nonce]: NonceEntry): void {
    this.usedNonces.get(expiresAt)?.delete(nonceKey(addressLower, nonce));
  }

  /** Appends one row holding `entries` (nothing for none). */
  private writeNonceRow(entries: NonceEntry[]): void {
    if (entries.length === 0) return;
    let expiresMax = 0;
    for (const entry of entries) if (entry[0] > expiresMax) expiresMax = entry[0];
    const { lastInsertRowid } = this.insertNonces.run(expiresMax, JSON.stringify(entries));
    this.nonceRows.push({ id: Number(lastInsertRowid), expiresMax });
  }

  /**
   * Sweeps (see `sweep`), then marks the nonce used in memory: its entry, or undefined when it was used
   * already or its expiry is past. An expired one is refused since the sweep may have forgotten its first
   * use (the timestamp was in the window when the request was read; the signature check took time since).
   */
  private take(address: string, nonce: string, expiresAt: number): NonceEntry | undefined {
    const now = this.now();
    this.sweep(now);
    if (expiresAt < now) return undefined;
    const entry: NonceEntry = [expiresAt, address.toLowerCase(), nonce];
    return this.remember(entry[1], nonce, expiresAt) ? entry : undefined;
  }

  /**
   * Once a second at most: drops expired nonces from memory, and deletes the file's rows from the front up
   * to the first one holding an unexpired nonce (a range delete on the primary key).
   */
  private sweep(now: number): void {
    if (now - this.lastSweep < 1) return;
    this.lastSweep = now;
    for (const expiry of this.usedNonces.keys()) if (expiry < now) this.usedNonces.delete(expiry);
    let last = -1;
    while (this.nonceRowsHead < this.nonceRows.length && this.nonceRows[this.nonceRowsHead].expiresMax < now) last = this.nonceRows[this.nonceRowsHead++].id;
    if (last === -1) return;
    this.sweepNonces.run(last);
    if (this.nonceRowsHead > 1024) {
      this.nonceRows.splice(0, this.nonceRowsHead);
      this.nonceRowsHead = 0;
    }
  }

  /**
   * NonceStore: false when the address used this nonce, in a request of the same expiry, before and it has
   * not expired (a replay repeats the signed timestamp, hence the expiry), or when `expiresAt` is past. A
   * fresh nonce is written to the file (its own row) before this returns.
   */
  use(address: string, nonce: string, expiresAt: number): boolean {
    const entry = this.take(address, nonce, expiresAt);
    if (entry === undefined) return false;
    try {
      this.writeNonceRow([entry]);
    } catch (error) {
      this.forget(entry);
      throw error;
    }
    return true;
  }

  /**
   * NonceStore, for the HTTP layer: a fresh nonce is written in the next group commit (see `writeSoon`),
   * all of the commit's nonces in one row, and the promise resolves once it is stored; a used one is
   * refused at once. Two uses of a nonce in the same batch: the first wins. If the commit fails, the
   * batch's nonces are forgotten again (the request failed, its retry must be accepted).
   */
  useSoon(address: string, nonce: string, expiresAt: number): Promise<boolean> {
    const entry = this.take(address, nonce, expiresAt);
    if (entry === undefined) return Promise.resolve(false);
    this.pendingNonces.push(entry);
    return this.writeSoon(() => true);
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
    const nonces = this.pendingNonces;
    this.pendingWrites = [];
    this.pendingNonces = [];
    if (batch.length === 0) return;
    const lastRowBefore = this.nonceRows.length > this.nonceRowsHead ? this.nonceRows[this.nonceRows.length - 1].id : 0;
    let results: unknown[];
    try {
      results = this.db.transaction(() => {
        this.writeNonceRow(nonces);
        return batch.map((w) => w.work());
      })();
    } catch (error) {
      // Rolled back: neither the rows written meanwhile nor the batch's nonces exist. (A nonce a work took
      // with `use` stays refused until it expires: the safe side; its request failed with the batch.)
      for (const entry of nonces) this.forget(entry);
      while (this.nonceRows.length > this.nonceRowsHead && this.nonceRows[this.nonceRows.length - 1].id > lastRowBefore) this.nonceRows.pop();
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
