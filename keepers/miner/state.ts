/**
 * What the miner keeps in its SQLite file besides the shared cursor and nonces: the master it heartbeats
 * to (the chain knows the master's address but not its URL), and which task files reached that master.
 * Everything else (registration, stake, participation, validation) is read from the chain. Also which
 * TaskLedger tasks this node accepted and whether it reported their result on chain (ledger-tasks.ts), and
 * the final status and last output of finished tasks whose container was removed (agent.ts `retireFinished`).
 */
import type { KeeperStore } from "../shared/store.js";
import type { SignedTx } from "../shared/tx.js";
import type { TaskStatus } from "./docker-runtime.js";
import type { ValidTaskSpec } from "./task-spec.js";

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

/** Where a TaskLedger task stands at this node. */
export type LedgerTaskPhase =
  /** Accepted and started; its result is not reported yet. */
  | "accepted"
  /** Its result hash is computed and `completeTask` is being sent. */
  | "completing"
  /** `completeTask` was mined (or the chain already had it Completed). */
  | "completed"
  /** Nothing will be reported: the chain no longer has it Assigned, its epoch ended, or it never ran. */
  | "closed";

export interface LedgerTaskRecord {
  /** The master's task id (the container's). */
  taskId: string;
  ledgerTaskId: string;
  runId: string;
  epoch: string;
  phase: LedgerTaskPhase;
  resultHash: string | null;
  txHash: string | null;
  /** Why it was closed without a report. */
  note: string | null;
  /**
   * The `completeTask` transaction signed and recorded before it was broadcast (tx.ts `sendTracked`): a
   * restarted miner finishes this one (`resumeTracked`) and never signs a second while it may be mined.
   */
  completeTx: SignedTx | null;
  /**
   * The spec as the master sent it, checked against the chain's spec hash when the task was admitted: served
   * to the nodes that must re-execute the task if its master does not serve it (ledger-tasks.ts `specFor`).
   */
  spec: ValidTaskSpec | null;
  updatedAt: number;
}

/** A finished task whose container was removed: what the miner still answers about it. */
export interface RetiredTask {
  status: TaskStatus;
  /** The end of each stream when the container was removed (at most RETIRED_LOG_BYTES each). */
  stdout: string;
  stderr: string;
  retiredAt: number;
}

/** How much of each stream of a retired task's output is kept. */
export const RETIRED_LOG_BYTES = 64 * 1024;

interface LedgerTaskRow {
  task_id: string;
  ledger_task_id: string;
  run_id: string;
  epoch: string;
  phase: string;
  result_hash: string | null;
  tx_hash: string | null;
  note: string | null;
  complete_tx: string | null;
  spec: string | null;
  updated_at: number;
}

const fromLedgerRow = (row: LedgerTaskRow): LedgerTaskRecord => ({
  taskId: row.task_id,
  ledgerTaskId: row.ledger_task_id,
  runId: row.run_id,
  epoch: row.epoch,
  phase: row.phase as LedgerTaskPhase,
  resultHash: row.result_hash,
  txHash: row.tx_hash,
  note: row.note,
  completeTx: row.complete_tx ? (JSON.parse(row.complete_tx) as SignedTx) : null,
  spec: row.spec ? (JSON.parse(row.spec) as ValidTaskSpec) : null,
  updatedAt: row.updated_at,
});

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
      CREATE TABLE IF NOT EXISTS miner_ledger_tasks (
        task_id TEXT PRIMARY KEY, ledger_task_id TEXT NOT NULL UNIQUE, run_id TEXT NOT NULL, epoch TEXT NOT NULL,
        phase TEXT NOT NULL, result_hash TEXT, tx_hash TEXT, note TEXT, updated_at INTEGER NOT NULL, complete_tx TEXT
      );
      CREATE TABLE IF NOT EXISTS miner_retired_tasks (
        task_id TEXT PRIMARY KEY, status TEXT NOT NULL, stdout TEXT NOT NULL, stderr TEXT NOT NULL, retired_at INTEGER NOT NULL
      );
    `);
    // Data dirs of earlier versions: the table without the recorded transaction.
    const columns = store.db.prepare("PRAGMA table_info(miner_ledger_tasks)").all() as Array<{ name: string }>;
    if (!columns.some((c) => c.name === "complete_tx")) store.db.exec("ALTER TABLE miner_ledger_tasks ADD COLUMN complete_tx TEXT");
    if (!columns.some((c) => c.name === "spec")) store.db.exec("ALTER TABLE miner_ledger_tasks ADD COLUMN spec TEXT");
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

  ledgerTask(taskId: string): LedgerTaskRecord | undefined {
    const row = this.store.db.prepare("SELECT * FROM miner_ledger_tasks WHERE task_id = ?").get(taskId) as LedgerTaskRow | undefined;
    return row && fromLedgerRow(row);
  }

  ledgerTaskByLedgerId(ledgerTaskId: string): LedgerTaskRecord | undefined {
    const row = this.store.db.prepare("SELECT * FROM miner_ledger_tasks WHERE ledger_task_id = ?").get(ledgerTaskId) as LedgerTaskRow | undefined;
    return row && fromLedgerRow(row);
  }

  /** Tasks whose result is still to be reported (accepted or completing). */
  openLedgerTasks(): LedgerTaskRecord[] {
    const rows = this.store.db
      .prepare("SELECT * FROM miner_ledger_tasks WHERE phase IN ('accepted', 'completing') ORDER BY updated_at")
      .all() as LedgerTaskRow[];
    return rows.map(fromLedgerRow);
  }

  /** Records an accepted task (once: a second call for the same task changes nothing). */
  addLedgerTask(record: Pick<LedgerTaskRecord, "taskId" | "ledgerTaskId" | "runId" | "epoch" | "spec">): void {
    this.store.db
      .prepare(
        `INSERT OR IGNORE INTO miner_ledger_tasks (task_id, ledger_task_id, run_id, epoch, phase, result_hash, tx_hash, note, updated_at, spec)
         VALUES (?, ?, ?, ?, 'accepted', NULL, NULL, NULL, ?, ?)`,
      )
      .run(record.taskId, record.ledgerTaskId, record.runId, record.epoch, Date.now(), record.spec === null ? null : JSON.stringify(record.spec));
  }

  updateLedgerTask(
    taskId: string,
    change: { phase?: LedgerTaskPhase; resultHash?: string | null; txHash?: string | null; note?: string | null; completeTx?: SignedTx | null },
  ): void {
    const current = this.ledgerTask(taskId);
    if (!current) throw new Error(`no ledger task record for task ${taskId}`);
    const completeTx = change.completeTx === undefined ? current.completeTx : change.completeTx;
    this.store.db
      .prepare("UPDATE miner_ledger_tasks SET phase = ?, result_hash = ?, tx_hash = ?, note = ?, complete_tx = ?, updated_at = ? WHERE task_id = ?")
      .run(
        change.phase ?? current.phase,
        change.resultHash === undefined ? current.resultHash : change.resultHash,
        change.txHash === undefined ? current.txHash : change.txHash,
        change.note === undefined ? current.note : change.note,
        completeTx === null ? null : JSON.stringify(completeTx),
        Date.now(),
        taskId,
      );
  }

  /** Keeps a finished task's status and the end of its output, before its container is removed. */
  saveRetiredTask(status: TaskStatus, logs: { stdout: string; stderr: string }): void {
    this.store.db
      .prepare(
        `INSERT INTO miner_retired_tasks (task_id, status, stdout, stderr, retired_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(task_id) DO UPDATE SET status = excluded.status, stdout = excluded.stdout, stderr = excluded.stderr,
           retired_at = excluded.retired_at`,
      )
      .run(status.taskId, JSON.stringify(status), lastBytes(logs.stdout), lastBytes(logs.stderr), Date.now());
  }

  retiredTask(taskId: string): RetiredTask | undefined {
    const row = this.store.db.prepare("SELECT status, stdout, stderr, retired_at FROM miner_retired_tasks WHERE task_id = ?").get(taskId) as
      | { status: string; stdout: string; stderr: string; retired_at: number }
      | undefined;
    return row && { status: JSON.parse(row.status) as TaskStatus, stdout: row.stdout, stderr: row.stderr, retiredAt: row.retired_at };
  }
}

/** The end of `text`, at most RETIRED_LOG_BYTES of UTF-8, cut at a line start when one is near. */
export function lastBytes(text: string, max = RETIRED_LOG_BYTES): string {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length <= max) return text;
  let start = bytes.length - max;
  // Not in the middle of a character: skip UTF-8 continuation bytes.
  while (start < bytes.length && (bytes[start] & 0xc0) === 0x80) start++;
  const tail = bytes.subarray(start).toString("utf8");
  const newline = tail.indexOf("\n");
  return newline >= 0 && newline < 4096 ? tail.slice(newline + 1) : tail;
}
