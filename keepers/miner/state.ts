/**
 * What the miner keeps in its SQLite file besides the shared cursor and nonces: the master it heartbeats
 * to (the chain knows the master's address but not its URL), and which task files reached that master.
 * Everything else (registration, stake, participation, validation) is read from the chain.
 */
import type { KeeperStore } from "../shared/store.js";

/** The master this node joined through, as its invite told it. */
export interface Membership {
  runId: string;
  /** Checksummed address of the master that invited the node (the heartbeats' audience). */
  master: string;
  /** Where the master listens, e.g. http://127.0.0.1:8720. */
  masterUrl: string;
  /** acceptInvite's transaction, or null when the node was already a member (a master re-inviting it). */
  txHash: string | null;
  acceptedAt: number;
}

export interface SyncedTask {
  taskId: string;
  files: number;
  bytes: number;
  syncedAt: number;
}

export class MinerState {
  constructor(private readonly store: KeeperStore) {
    store.db.exec(`
      CREATE TABLE IF NOT EXISTS miner_membership (
        run_id TEXT PRIMARY KEY, master TEXT NOT NULL, master_url TEXT NOT NULL, tx_hash TEXT, accepted_at INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS miner_synced_files (
        task_id TEXT NOT NULL, name TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL, synced_at INTEGER NOT NULL,
        PRIMARY KEY (task_id, name, sha256)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS miner_synced_tasks (
        task_id TEXT PRIMARY KEY, files INTEGER NOT NULL, bytes INTEGER NOT NULL, synced_at INTEGER NOT NULL
      );
    `);
  }

  membership(runId: bigint): Membership | undefined {
    const row = this.store.db
      .prepare("SELECT run_id, master, master_url, tx_hash, accepted_at FROM miner_membership WHERE run_id = ?")
      .get(runId.toString()) as
      | { run_id: string; master: string; master_url: string; tx_hash: string | null; accepted_at: number }
      | undefined;
    return row && {
      runId: row.run_id,
      master: row.master,
      masterUrl: row.master_url,
      txHash: row.tx_hash,
      acceptedAt: row.accepted_at,
    };
  }

  setMembership(membership: Membership): void {
    this.store.db
      .prepare(
        `INSERT INTO miner_membership (run_id, master, master_url, tx_hash, accepted_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(run_id) DO UPDATE SET master = excluded.master, master_url = excluded.master_url,
           tx_hash = excluded.tx_hash, accepted_at = excluded.accepted_at`,
      )
      .run(membership.runId, membership.master, membership.masterUrl, membership.txHash, membership.acceptedAt);
  }

  clearMembership(runId: bigint): void {
    this.store.db.prepare("DELETE FROM miner_membership WHERE run_id = ?").run(runId.toString());
  }

  markFileSynced(taskId: string, name: string, sha256: string, size: number): void {
    this.store.db
      .prepare("INSERT OR IGNORE INTO miner_synced_files (task_id, name, sha256, size, synced_at) VALUES (?, ?, ?, ?, ?)")
      .run(taskId, name, sha256, size, Date.now());
  }

  syncedTask(taskId: string): SyncedTask | undefined {
    const row = this.store.db
      .prepare("SELECT task_id, files, bytes, synced_at FROM miner_synced_tasks WHERE task_id = ?")
      .get(taskId) as { task_id: string; files: number; bytes: number; synced_at: number } | undefined;
    return row && { taskId: row.task_id, files: row.files, bytes: row.bytes, syncedAt: row.synced_at };
  }

  markTaskSynced(taskId: string, files: number, bytes: number): void {
    this.store.db
      .prepare(
        `INSERT INTO miner_synced_tasks (task_id, files, bytes, synced_at) VALUES (?, ?, ?, ?)
         ON CONFLICT(task_id) DO UPDATE SET files = excluded.files, bytes = excluded.bytes, synced_at = excluded.synced_at`,
      )
      .run(taskId, files, bytes, Date.now());
  }
}
