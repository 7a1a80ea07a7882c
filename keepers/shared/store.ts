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

  constructor(file: string) {
    if (file !== ":memory:") mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    this.db.pragma("busy_timeout = 5000");
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS nonces (
        address TEXT NOT NULL, nonce TEXT NOT NULL, expires_at INTEGER NOT NULL,
        PRIMARY KEY (address, nonce)
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS nonces_expiry ON nonces (expires_at);
    `);
    this.insertNonce = this.db.prepare("INSERT OR IGNORE INTO nonces (address, nonce, expires_at) VALUES (?, ?, ?)");
    this.sweepNonces = this.db.prepare("DELETE FROM nonces WHERE expires_at < ?");
  }

  /** NonceStore: false when (address, nonce) was used before and has not expired. */
  use(address: string, nonce: string, expiresAt: number): boolean {
    const now = Math.floor(Date.now() / 1000);
    if (now - this.lastSweep >= 10) {
      this.sweepNonces.run(now);
      this.lastSweep = now;
    }
    return this.insertNonce.run(address.toLowerCase(), nonce, expiresAt).changes === 1;
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
    if (this.db.open) this.db.close();
  }
}
