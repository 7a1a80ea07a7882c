/**
 * Discovery's chain-derived index, in the keeper's SQLite file next to the endpoints it guards:
 * registered nodes and their current declaration (capsId), the challenge state of that declaration,
 * VALIDATOR_ROLE holders, runs (master, status) and who takes part in them.
 *
 * Everything here but the endpoints can be rebuilt from the chain's events (drop the file and replay).
 * Events arrive at least once and in block/log order (EventFollower), so every handler is an idempotent
 * upsert or delete; where an older event could be replayed after a newer one of the same block range, a
 * guard (challenge round, run status order) keeps the newer state.
 */
import { getAddress } from "ethers";
import type { ChainEvent } from "../shared/chain.js";
import type Database from "better-sqlite3";
import type { Db } from "../shared/store.js";

/** Challenge state of a node's *current* declaration ("none": no round for it yet). */
export type ChallengeState = "none" | "pending" | "validated" | "rejected";

/** `ITrainingRuns.RunStatus`. */
export const RUN_STATUS = ["None", "Pending", "Active", "Completed", "Cancelled"] as const;
export const RunStatusCode = { Pending: 1, Active: 2, Completed: 3, Cancelled: 4 } as const;

/** `ITrainingRuns.Participation` names, by code. */
export const PARTICIPATION = ["None", "Registered", "Member"] as const;
export type ParticipationName = "Registered" | "Member";

export interface EndpointRecord {
  node: string;
  endpoint: string;
  updatedAt: string;
}

export interface RunNodeRecord extends EndpointRecord {
  participation: ParticipationName;
}

export interface RunRecord {
  runId: string;
  master: string;
  status: number;
}

export function isOpenRunStatus(status: number | bigint): boolean {
  const s = Number(status);
  return s === RunStatusCode.Pending || s === RunStatusCode.Active;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS discovery_endpoints (
    node TEXT PRIMARY KEY, endpoint TEXT NOT NULL, updated_at TEXT NOT NULL
  ) WITHOUT ROWID;
  -- No index on updated_at (files before it had one: dropped). Each upload moved an entry of it, two more
  -- random pages in the upload's group commit (per upload ~19 µs with it, ~13 µs without, measured with
  -- batches of 12 over 800 nodes), and \`pending\` is faster without it: in steady state most nodes are
  -- decided, so walking the index in order visited every row anyway, each through a lookup into the table
  -- (10,000 nodes, 10 % undecided: ~14 ms a call with it, ~7 ms without).
  DROP INDEX IF EXISTS discovery_endpoints_updated;
  CREATE TABLE IF NOT EXISTS discovery_nodes (
    node TEXT PRIMARY KEY, provider TEXT NOT NULL, caps_id TEXT NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS discovery_challenges (
    node TEXT PRIMARY KEY, caps_id TEXT NOT NULL, round INTEGER NOT NULL, status TEXT NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS discovery_validators (address TEXT PRIMARY KEY) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS discovery_runs (
    run_id TEXT PRIMARY KEY, master TEXT NOT NULL, status INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS discovery_runs_master ON discovery_runs (master);
  CREATE TABLE IF NOT EXISTS discovery_participations (
    run_id TEXT NOT NULL, node TEXT NOT NULL, participation INTEGER NOT NULL, PRIMARY KEY (run_id, node)
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS discovery_participations_node ON discovery_participations (node);
`;

/** What an event changed, for the logs (undefined: not an event the index follows). */
export interface AppliedEvent {
  what: string;
  fields: Record<string, string | number>;
}

export class DiscoveryIndex {
  private readonly validatorRole: string;
  /** Statements prepared once: preparing costs more than running a point query. */
  private readonly statements = new Map<string, Database.Statement>();
  /**
   * The registered nodes and the validators, as committed: what every signed request asks (a Set lookup
   * instead of a SQLite point query, ~2-3 µs each on discovery's event loop). Dropped by any write to their
   * table and read again at the next question asked outside a transaction, so they never hold a write that
   * could still roll back. Registrations and role changes are rare next to requests.
   */
  private registeredNodes: Set<string> | undefined;
  private validatorSet: Set<string> | undefined;

  constructor(
    private readonly db: Db,
    validatorRole: string,
  ) {
    this.validatorRole = validatorRole.toLowerCase();
    db.exec(SCHEMA);
  }

  private sql(text: string): Database.Statement {
    let statement = this.statements.get(text);
    if (!statement) {
      statement = this.db.prepare(text);
      this.statements.set(text, statement);
    }
    return statement;
  }

  // ------------------------------------------------------------------ events

  /** Applies one chain event; returns what it changed, or undefined for events the index ignores. */
  apply(event: ChainEvent): AppliedEvent | undefined {
    const a = event.args;
    const addr = (value: unknown) => getAddress(String(value));
    const id = (value: unknown) => BigInt(value as bigint).toString();
    switch (`${event.contract}.${event.name}`) {
      case "MinerRegistry.NodeRegistered": {
        const node = addr(a.node);
        this
          .sql(
            `INSERT INTO discovery_nodes (node, provider, caps_id) VALUES (?, ?, ?)
             ON CONFLICT(node) DO UPDATE SET provider = excluded.provider, caps_id = excluded.caps_id`,
          )
          .run(node, addr(a.provider), id(a.capsId));
        this.registeredNodes = undefined;
        return { what: "node registered", fields: { node, provider: addr(a.provider), capsId: id(a.capsId) } };
      }
      case "MinerRegistry.CapabilitiesUpdated": {
        const node = addr(a.node);
        this.sql("UPDATE discovery_nodes SET caps_id = ? WHERE node = ?").run(id(a.capsId), node);
        return { what: "capabilities updated", fields: { node, capsId: id(a.capsId) } };
      }
      case "MinerRegistry.NodeDeregistered": {
        const node = addr(a.node);
        this.sql("DELETE FROM discovery_nodes WHERE node = ?").run(node);
        this.registeredNodes = undefined;
        return { what: "node deregistered", fields: { node } };
      }
      case "ChallengeBoard.ChallengeRoundStarted":
        return this.setChallenge(addr(a.node), id(a.capsId), Number(a.round), "pending");
      case "ChallengeBoard.NodeValidated":
        return this.setChallenge(addr(a.node), id(a.capsId), Number(a.round), "validated");
      case "ChallengeBoard.NodeRejected":
        return this.setChallenge(addr(a.node), id(a.capsId), Number(a.round), "rejected");
      case "ChallengeBoard.ValidationRevoked": {
        const node = addr(a.node);
        const round = Number(a.round);
        this.sql("UPDATE discovery_challenges SET status = 'rejected' WHERE node = ? AND round = ?").run(node, round);
        return { what: "validation revoked", fields: { node, round } };
      }
      case "ChallengeBoard.RoleGranted":
      case "ChallengeBoard.RoleRevoked": {
        if (String(a.role).toLowerCase() !== this.validatorRole) return undefined;
        const account = addr(a.account);
        if (event.name === "RoleGranted") {
          this.sql("INSERT OR IGNORE INTO discovery_validators (address) VALUES (?)").run(account);
          this.validatorSet = undefined;
          return { what: "validator role granted", fields: { validator: account } };
        }
        this.sql("DELETE FROM discovery_validators WHERE address = ?").run(account);
        this.validatorSet = undefined;
        return { what: "validator role revoked", fields: { validator: account } };
      }
      case "TrainingRuns.RunCreated": {
        const runId = id(a.runId);
        // DO NOTHING: a replayed RunCreated must not undo a later MasterChanged or status change.
        this
          .sql("INSERT INTO discovery_runs (run_id, master, status) VALUES (?, ?, ?) ON CONFLICT(run_id) DO NOTHING")
          .run(runId, addr(a.master), RunStatusCode.Pending);
        return { what: "run created", fields: { runId, master: addr(a.master) } };
      }
      case "TrainingRuns.MasterChanged": {
        const runId = id(a.runId);
        this.sql("UPDATE discovery_runs SET master = ? WHERE run_id = ?").run(addr(a.newMaster), runId);
        return { what: "run master changed", fields: { runId, previousMaster: addr(a.previousMaster), master: addr(a.newMaster) } };
      }
      case "TrainingRuns.RunStarted":
        return this.setRunStatus(id(a.runId), RunStatusCode.Active);
      case "TrainingRuns.RunCompleted":
        return this.setRunStatus(id(a.runId), RunStatusCode.Completed);
      case "TrainingRuns.RunCancelled":
        return this.setRunStatus(id(a.runId), RunStatusCode.Cancelled);
      case "TrainingRuns.NodeRegisteredForRun":
        return this.setParticipation(id(a.runId), addr(a.node), 1);
      case "TrainingRuns.NodeJoined":
        return this.setParticipation(id(a.runId), addr(a.node), 2);
      case "TrainingRuns.NodeLeft":
      case "TrainingRuns.NodeEjected": {
        const runId = id(a.runId);
        const node = addr(a.node);
        this.sql("DELETE FROM discovery_participations WHERE run_id = ? AND node = ?").run(runId, node);
        return { what: event.name === "NodeLeft" ? "node left run" : "node ejected from run", fields: { runId, node } };
      }
      default:
        return undefined;
    }
  }

  private setChallenge(node: string, capsId: string, round: number, status: ChallengeState): AppliedEvent {
    // Rounds only grow: a replayed event of an older round never overwrites a newer one.
    this
      .sql(
        `INSERT INTO discovery_challenges (node, caps_id, round, status) VALUES (?, ?, ?, ?)
         ON CONFLICT(node) DO UPDATE SET caps_id = excluded.caps_id, round = excluded.round, status = excluded.status
         WHERE excluded.round >= discovery_challenges.round`,
      )
      .run(node, capsId, round, status);
    return { what: `challenge ${status}`, fields: { node, capsId, round } };
  }

  private setRunStatus(runId: string, status: number): AppliedEvent {
    // Pending -> Active -> Completed | Cancelled: a status never moves back.
    this.sql("UPDATE discovery_runs SET status = ? WHERE run_id = ? AND status < ?").run(status, runId, status);
    return { what: `run ${RUN_STATUS[status].toLowerCase()}`, fields: { runId, status: RUN_STATUS[status] } };
  }

  private setParticipation(runId: string, node: string, participation: 1 | 2): AppliedEvent {
    this
      .sql(
        `INSERT INTO discovery_participations (run_id, node, participation) VALUES (?, ?, ?)
         ON CONFLICT(run_id, node) DO UPDATE SET participation = excluded.participation`,
      )
      .run(runId, node, participation);
    return { what: `node ${PARTICIPATION[participation].toLowerCase()} in run`, fields: { runId, node } };
  }

  // ------------------------------------------------------------------ reads (addresses checksummed)

  isRegistered(node: string): boolean {
    if (this.db.inTransaction) return this.sql("SELECT 1 FROM discovery_nodes WHERE node = ?").get(node) !== undefined;
    this.registeredNodes ??= new Set((this.sql("SELECT node FROM discovery_nodes").all() as { node: string }[]).map((r) => r.node));
    return this.registeredNodes.has(node);
  }

  capsIdOf(node: string): string | undefined {
    return (this.sql("SELECT caps_id FROM discovery_nodes WHERE node = ?").get(node) as { caps_id: string } | undefined)?.caps_id;
  }

  /** Challenge state of the node's current declaration. */
  challengeState(node: string): ChallengeState {
    const row = this
      .sql(
        `SELECT c.status FROM discovery_nodes n JOIN discovery_challenges c ON c.node = n.node AND c.caps_id = n.caps_id
         WHERE n.node = ?`,
      )
      .get(node) as { status: ChallengeState } | undefined;
    return row?.status ?? "none";
  }

  isValidator(address: string): boolean {
    if (this.db.inTransaction) return this.sql("SELECT 1 FROM discovery_validators WHERE address = ?").get(address) !== undefined;
    this.validatorSet ??= new Set((this.sql("SELECT address FROM discovery_validators").all() as { address: string }[]).map((r) => r.address));
    return this.validatorSet.has(address);
  }

  validators(): string[] {
    return (this.sql("SELECT address FROM discovery_validators ORDER BY address").all() as { address: string }[]).map((r) => r.address);
  }

  run(runId: string): RunRecord | undefined {
    const row = this.sql("SELECT run_id, master, status FROM discovery_runs WHERE run_id = ?").get(runId) as
      | { run_id: string; master: string; status: number }
      | undefined;
    return row ? { runId: row.run_id, master: row.master, status: row.status } : undefined;
  }

  /** A pending or active run mastered by `master` in which `node` is Registered or Member, if any. */
  openRunOfMasterWithNode(master: string, node: string): string | undefined {
    const row = this
      .sql(
        `SELECT r.run_id FROM discovery_participations p JOIN discovery_runs r ON r.run_id = p.run_id
         WHERE p.node = ? AND r.master = ? AND r.status IN (1, 2) LIMIT 1`,
      )
      .get(node, master) as { run_id: string } | undefined;
    return row?.run_id;
  }

  participation(runId: string, node: string): ParticipationName | undefined {
    const row = this.sql("SELECT participation FROM discovery_participations WHERE run_id = ? AND node = ?").get(runId, node) as
      | { participation: 1 | 2 }
      | undefined;
    return row ? (PARTICIPATION[row.participation] as ParticipationName) : undefined;
  }

  /**
   * Registered nodes whose current declaration is not decided yet (no round, or a pending one), by address:
   * the candidates of `pending` when the endpoints live elsewhere (Redis).
   */
  undecidedNodes(): string[] {
    const rows = this.db
      .prepare(
        `SELECT n.node FROM discovery_nodes n
         LEFT JOIN discovery_challenges c ON c.node = n.node AND c.caps_id = n.caps_id
         WHERE c.status IS NULL OR c.status = 'pending' ORDER BY n.node`,
      )
      .all() as { node: string }[];
    return rows.map((r) => r.node);
  }

  /** Registered nodes by the challenge state of their current declaration (every state present, 0 when none). */
  nodeCounts(): Record<ChallengeState, number> {
    const counts: Record<ChallengeState, number> = { none: 0, pending: 0, validated: 0, rejected: 0 };
    const rows = this.db
      .prepare(
        `SELECT COALESCE(c.status, 'none') AS status, COUNT(*) AS n FROM discovery_nodes n
         LEFT JOIN discovery_challenges c ON c.node = n.node AND c.caps_id = n.caps_id GROUP BY 1`,
      )
      .all() as { status: ChallengeState; n: number }[];
    for (const row of rows) if (row.status in counts) counts[row.status] = row.n;
    return counts;
  }

  /** The run's Registered and Member nodes, by address (with or without an endpoint). */
  runParticipants(runId: string): Array<{ node: string; participation: ParticipationName }> {
    const rows = this.db
      .prepare("SELECT node, participation FROM discovery_participations WHERE run_id = ? ORDER BY node")
      .all(runId) as { node: string; participation: 1 | 2 }[];
    return rows.map((r) => ({ node: r.node, participation: PARTICIPATION[r.participation] as ParticipationName }));
  }

  // ------------------------------------------------------------------ endpoints

  setEndpoint(node: string, endpoint: string, updatedAt: string): EndpointRecord {
    this
      .sql(
        `INSERT INTO discovery_endpoints (node, endpoint, updated_at) VALUES (?, ?, ?)
         ON CONFLICT(node) DO UPDATE SET endpoint = excluded.endpoint, updated_at = excluded.updated_at`,
      )
      .run(node, endpoint, updatedAt);
    return { node, endpoint, updatedAt };
  }

  endpoint(node: string): EndpointRecord | undefined {
    const row = this.sql("SELECT node, endpoint, updated_at FROM discovery_endpoints WHERE node = ?").get(node) as
      | { node: string; endpoint: string; updated_at: string }
      | undefined;
    return row ? { node: row.node, endpoint: row.endpoint, updatedAt: row.updated_at } : undefined;
  }

  endpointCount(): number {
    return (this.sql("SELECT COUNT(*) AS n FROM discovery_endpoints").get() as { n: number }).n;
  }

  /**
   * Registered nodes with an endpoint whose current declaration is not decided yet (no round, or a
   * pending one): what validators still have to challenge. Oldest endpoint first, at most `limit`.
   */
  pending(limit: number): EndpointRecord[] {
    const rows = this
      .sql(
        `SELECT e.node, e.endpoint, e.updated_at FROM discovery_endpoints e
         JOIN discovery_nodes n ON n.node = e.node
         LEFT JOIN discovery_challenges c ON c.node = n.node AND c.caps_id = n.caps_id
         WHERE c.status IS NULL OR c.status = 'pending'
         ORDER BY e.updated_at, e.node LIMIT ?`,
      )
      .all(limit) as { node: string; endpoint: string; updated_at: string }[];
    return rows.map((r) => ({ node: r.node, endpoint: r.endpoint, updatedAt: r.updated_at }));
  }

  /** The run's Registered and Member nodes that have an endpoint, at most `limit`. */
  runNodes(runId: string, limit: number): RunNodeRecord[] {
    const rows = this
      .sql(
        `SELECT p.node, p.participation, e.endpoint, e.updated_at FROM discovery_participations p
         JOIN discovery_endpoints e ON e.node = p.node
         WHERE p.run_id = ? ORDER BY p.node LIMIT ?`,
      )
      .all(runId, limit) as { node: string; participation: 1 | 2; endpoint: string; updated_at: string }[];
    return rows.map((r) => ({
      node: r.node,
      participation: PARTICIPATION[r.participation] as ParticipationName,
      endpoint: r.endpoint,
      updatedAt: r.updated_at,
    }));
  }
}
