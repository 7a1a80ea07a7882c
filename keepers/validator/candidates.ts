/**
 * The validator's own tables in its KeeperStore file: the nodes still to look at (a durable work queue,
 * so that an event handled before a restart is not lost when the cursor has moved past it) and the
 * reports it sent (so that a transaction still in flight at a crash is waited for, not sent again).
 * The chain stays the source of truth: every candidate is re-read from the contracts before acting.
 */
import type { Db } from "../shared/store.js";

export interface Candidate {
  node: string;
  /** What brought it here: an event name or "discovery". */
  source: string;
  /** Local time (ms) before which it is not looked at again; 0 = now. */
  retryAt: number;
  /** Why it waits, e.g. "endpoint" (no endpoint at discovery yet), "cooldown", "error". */
  waiting: string | null;
}

export interface SentReport {
  node: string;
  capsId: bigint;
  approved: boolean;
  hash: string;
  reason: string | null;
  txHash: string;
  state: "sent" | "confirmed";
}

export class CandidateStore {
  constructor(private readonly db: Db) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS validator_candidates (
        node TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        added_at INTEGER NOT NULL,
        retry_at INTEGER NOT NULL DEFAULT 0,
        waiting TEXT
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS validator_reports (
        node TEXT NOT NULL,
        caps_id TEXT NOT NULL,
        approved INTEGER NOT NULL,
        hash TEXT NOT NULL,
        reason TEXT,
        tx_hash TEXT NOT NULL,
        state TEXT NOT NULL,
        sent_at INTEGER NOT NULL,
        PRIMARY KEY (node, caps_id)
      ) WITHOUT ROWID;
    `);
  }

  /** Adds `node`, or makes it due now (new information arrived about it). */
  add(node: string, source: string): void {
    this.db
      .prepare(
        `INSERT INTO validator_candidates (node, source, added_at, retry_at, waiting) VALUES (?, ?, ?, 0, NULL)
         ON CONFLICT(node) DO UPDATE SET source = excluded.source, retry_at = 0, waiting = NULL`,
      )
      .run(node, source, Date.now());
  }

  get(node: string): Candidate | undefined {
    const row = this.db.prepare("SELECT node, source, retry_at, waiting FROM validator_candidates WHERE node = ?").get(node) as
      | { node: string; source: string; retry_at: number; waiting: string | null }
      | undefined;
    return row && { node: row.node, source: row.source, retryAt: row.retry_at, waiting: row.waiting };
  }

  /** Keeps `node` for later (adding it back if it was removed meanwhile): not looked at again before `retryAt` (local ms). */
  defer(node: string, retryAt: number, waiting: string): void {
    this.db
      .prepare(
        `INSERT INTO validator_candidates (node, source, added_at, retry_at, waiting) VALUES (?, 'retry', ?, ?, ?)
         ON CONFLICT(node) DO UPDATE SET retry_at = excluded.retry_at, waiting = excluded.waiting`,
      )
      .run(node, Date.now(), Math.round(retryAt), waiting);
  }

  remove(node: string): void {
    this.db.prepare("DELETE FROM validator_candidates WHERE node = ?").run(node);
  }

  /** Candidates due at `now` (local ms), oldest first. */
  due(now: number): string[] {
    return (
      this.db.prepare("SELECT node FROM validator_candidates WHERE retry_at <= ? ORDER BY added_at, node").all(now) as Array<{ node: string }>
    ).map((row) => row.node);
  }

  all(): Candidate[] {
    return (
      this.db.prepare("SELECT node, source, retry_at, waiting FROM validator_candidates ORDER BY added_at, node").all() as Array<{
        node: string;
        source: string;
        retry_at: number;
        waiting: string | null;
      }>
    ).map((row) => ({ node: row.node, source: row.source, retryAt: row.retry_at, waiting: row.waiting }));
  }

  count(): number {
    return (this.db.prepare("SELECT COUNT(*) AS n FROM validator_candidates").get() as { n: number }).n;
  }

  /** Records a report transaction as soon as it is broadcast, before its receipt. */
  recordSent(report: Omit<SentReport, "state">): void {
    this.db
      .prepare(
        `INSERT INTO validator_reports (node, caps_id, approved, hash, reason, tx_hash, state, sent_at)
         VALUES (?, ?, ?, ?, ?, ?, 'sent', ?)
         ON CONFLICT(node, caps_id) DO UPDATE SET approved = excluded.approved, hash = excluded.hash,
           reason = excluded.reason, tx_hash = excluded.tx_hash, state = 'sent', sent_at = excluded.sent_at`,
      )
      .run(report.node, report.capsId.toString(), report.approved ? 1 : 0, report.hash, report.reason, report.txHash, Date.now());
  }

  markConfirmed(node: string, capsId: bigint): void {
    this.db.prepare("UPDATE validator_reports SET state = 'confirmed' WHERE node = ? AND caps_id = ?").run(node, capsId.toString());
  }

  report(node: string, capsId: bigint): SentReport | undefined {
    const row = this.db
      .prepare("SELECT node, caps_id, approved, hash, reason, tx_hash, state FROM validator_reports WHERE node = ? AND caps_id = ?")
      .get(node, capsId.toString()) as
      | { node: string; caps_id: string; approved: number; hash: string; reason: string | null; tx_hash: string; state: "sent" | "confirmed" }
      | undefined;
    return (
      row && {
        node: row.node,
        capsId: BigInt(row.caps_id),
        approved: row.approved === 1,
        hash: row.hash,
        reason: row.reason,
        txHash: row.tx_hash,
        state: row.state,
      }
    );
  }

  reportCount(): number {
    return (this.db.prepare("SELECT COUNT(*) AS n FROM validator_reports").get() as { n: number }).n;
  }
}
