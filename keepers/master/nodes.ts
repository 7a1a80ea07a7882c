/**
 * The run's nodes as the master sees them, one state machine per node, persisted in SQLite:
 *
 *   Discovered (registered for the run) → Invited (invite sent; stays so after NodeJoined until the first
 *   heartbeat) → Healthy ↔ Unhealthy (missed `unhealthyAfterMisses` intervals) → Dead (missed
 *   `deadAfterMisses`) → Ejected (eject mined). A node that leaves by itself becomes Left.
 *
 * Membership is indexed from the contract's events (EventFollower) and checked on chain before every
 * action: an invite is sent only to a node that is Registered and validated on chain, an ejection only for
 * a node still in the run, so a restart or a redelivered event never sends a transaction twice.
 */
import { randomBytes } from "node:crypto";
import { type Wallet, getAddress, id } from "ethers";
import { type Chain, type ChainEvent, headBlock } from "../shared/chain.js";
import { HttpError, type SignedClient } from "../shared/http.js";
import { type Logger, subsystem } from "../shared/log.js";
import { LoopHealth } from "../shared/loop-health.js";
import type { Metrics } from "../shared/metrics.js";
import type { Db } from "../shared/store.js";
import { TxRevertedError, type TxSender } from "../shared/tx.js";
import { RunStatus, signInvite } from "../../scripts/lib/protocol.js";
import type { HeartbeatStore } from "./cluster.js";
import type { DiscoveryClient } from "./discovery.js";
import type { ReportedTaskStatus } from "./tasks.js";

export const NODE_STATES = ["Discovered", "Invited", "Healthy", "Unhealthy", "Dead", "Ejected", "Left"] as const;
export type NodeState = (typeof NODE_STATES)[number];
export type ParticipationName = "None" | "Registered" | "Member";
const PARTICIPATION: ParticipationName[] = ["None", "Registered", "Member"];

export const EJECT_REASON_TEXT = "missed heartbeats";
/** keccak256("missed heartbeats"), the reason hash of the master's ejections. */
export const EJECT_REASON = id(EJECT_REASON_TEXT);

export interface MasterNode {
  node: string;
  state: NodeState;
  participation: ParticipationName;
  endpoint: string | null;
  /** ms timestamps. */
  stateSince: number;
  discoveredAt: number;
  /** The invite sent last (cleared when it was refused): nonce and generation as decimal strings, expiry in unix s. */
  inviteNonce: string | null;
  inviteGeneration: string | null;
  inviteExpiry: number | null;
  invitedAt: number | null;
  /** Earliest time of the next invite attempt after a refused one (ms). */
  inviteRetryAt: number | null;
  joinedAt: number | null;
  lastHeartbeat: number | null;
  /** `sentAt` of the last heartbeat, as the node sent it. */
  lastSentAt: string | null;
  ejectedAt: number | null;
  ejectTx: string | null;
  /** Position (block, log index) of the last event applied: redelivered events are skipped. */
  eventBlock: number;
  eventIndex: number;
}

export interface Transition {
  node: string;
  from: NodeState | null;
  to: NodeState;
  at: number;
  reason: string;
}

interface NodeRow {
  node: string;
  state: string;
  participation: string;
  endpoint: string | null;
  state_since: number;
  discovered_at: number;
  invite_nonce: string | null;
  invite_generation: string | null;
  invite_expiry: number | null;
  invited_at: number | null;
  invite_retry_at: number | null;
  joined_at: number | null;
  last_heartbeat: number | null;
  last_sent_at: string | null;
  ejected_at: number | null;
  eject_tx: string | null;
  event_block: number;
  event_index: number;
}

const COLUMNS = [
  "node",
  "state",
  "participation",
  "endpoint",
  "state_since",
  "discovered_at",
  "invite_nonce",
  "invite_generation",
  "invite_expiry",
  "invited_at",
  "invite_retry_at",
  "joined_at",
  "last_heartbeat",
  "last_sent_at",
  "ejected_at",
  "eject_tx",
  "event_block",
  "event_index",
] as const;

const fromRow = (r: NodeRow): MasterNode => ({
  node: r.node,
  state: r.state as NodeState,
  participation: r.participation as ParticipationName,
  endpoint: r.endpoint,
  stateSince: r.state_since,
  discoveredAt: r.discovered_at,
  inviteNonce: r.invite_nonce,
  inviteGeneration: r.invite_generation,
  inviteExpiry: r.invite_expiry,
  invitedAt: r.invited_at,
  inviteRetryAt: r.invite_retry_at,
  joinedAt: r.joined_at,
  lastHeartbeat: r.last_heartbeat,
  lastSentAt: r.last_sent_at,
  ejectedAt: r.ejected_at,
  ejectTx: r.eject_tx,
  eventBlock: r.event_block,
  eventIndex: r.event_index,
});

const toRow = (n: MasterNode): NodeRow => ({
  node: n.node,
  state: n.state,
  participation: n.participation,
  endpoint: n.endpoint,
  state_since: n.stateSince,
  discovered_at: n.discoveredAt,
  invite_nonce: n.inviteNonce,
  invite_generation: n.inviteGeneration,
  invite_expiry: n.inviteExpiry,
  invited_at: n.invitedAt,
  invite_retry_at: n.inviteRetryAt,
  joined_at: n.joinedAt,
  last_heartbeat: n.lastHeartbeat,
  last_sent_at: n.lastSentAt,
  ejected_at: n.ejectedAt,
  eject_tx: n.ejectTx,
  event_block: n.eventBlock,
  event_index: n.eventIndex,
});

/** States in which a member is expected to heartbeat. */
const WATCHED: ReadonlySet<NodeState> = new Set(["Invited", "Healthy", "Unhealthy"]);

export interface RunView {
  buyer: string;
  master: string;
  status: number;
}

export interface NodeTrackerOptions {
  db: Db;
  chain: Chain;
  /** The master key (signs invites). */
  wallet: Wallet;
  runId: bigint;
  run: RunView;
  client: SignedClient;
  discovery: DiscoveryClient;
  tx: TxSender;
  logger: Logger;
  metrics: Metrics;
  publicUrl: string;
  heartbeatIntervalSec: number;
  unhealthyAfterMisses: number;
  deadAfterMisses: number;
  inviteExpirySec: number;
  reconcileMs: number;
  /** Called when a node with tasks is gone (dead, left, ejected): its active tasks fail with `reason`. */
  onNodeDown: (node: string, reason: string) => void;
  /** Called with the task statuses of each heartbeat taken in (here, or by another instance when shared). */
  onHeartbeat?: (node: string, tasks: ReportedTaskStatus[]) => void;
  /**
   * Several instances (Redis): the last heartbeats every instance sees; liveness is judged from them, and
   * not at all while they cannot be read.
   */
  heartbeats?: HeartbeatStore;
  /**
   * Several instances: the leader lease. Only its holder invites and ejects; `confirm` fences each write
   * cycle. Without it this instance is the only one and always acts.
   */
  leader?: { isLeader(): boolean; confirm(): Promise<boolean> };
}

export class NodeTracker {
  readonly run: RunView;
  private readonly records = new Map<string, MasterNode>();
  private readonly db: Db;
  private readonly onboarding: Logger;
  private readonly heartbeatLog: Logger;
  private readonly address: string;
  /**
   * Since when this instance hears heartbeats: its start, or the end of the last outage of the shared
   * heartbeat store. Silence before it does not count against the nodes.
   */
  private listeningSince = Date.now();
  /** The shared heartbeats could not be read at the last tick. */
  private sharedBlind = false;
  private readonly intervalMs: number;
  private readonly inviteRetryMs: number;
  private readonly inviting = new Set<string>();
  /** Members introduced during their current silence: one introduction per silence, not one per pass. */
  private readonly introduced = new Set<string>();
  private readonly ejecting = new Set<string>();
  private readonly ejectRetryAt = new Map<string, number>();
  private readonly inflight = new Set<Promise<unknown>>();
  private reconciling: Promise<void> | undefined;
  private reconcileAgain = false;
  private reconcileTimer: NodeJS.Timeout | undefined;
  /** Backoff and log lines while reconcile passes fail (discovery or the RPC node unreachable). */
  private readonly reconcileHealth: LoopHealth;
  private tickTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly notValidatedLogged = new Set<string>();
  /** How far the chain's clock (latest block.timestamp) runs ahead of ours, seconds; refreshed each reconcile. */
  private chainSkewSec = 0;
  private readonly metrics;
  private readonly statements;
  /**
   * Nodes whose last heartbeat is newer in memory than in SQLite. A heartbeat that changes no state is
   * written with the others once per tick (at most a second later), in one transaction, instead of one
   * write per heartbeat. A crash loses at most that second of heartbeat times, which decides nothing: after
   * a restart misses count from the restart (`startedAt`), and every state change is written at once.
   */
  private readonly unsavedHeartbeats = new Set<string>();

  constructor(private readonly options: NodeTrackerOptions) {
    this.db = options.db;
    this.run = options.run;
    this.address = options.wallet.address;
    this.onboarding = subsystem(options.logger, "Onboarding");
    this.heartbeatLog = subsystem(options.logger, "Heartbeat");
    this.intervalMs = options.heartbeatIntervalSec * 1000;
    this.inviteRetryMs = Math.min(60_000, Math.max(2_000, 5 * options.reconcileMs));
    this.reconcileHealth = new LoopHealth({ what: "reconcile pass", logger: this.onboarding, intervalMs: options.reconcileMs });
    this.metrics = {
      invites: options.metrics.counter("master_invites_total", "Invites sent, by outcome", ["result"]),
      heartbeats: options.metrics.counter("master_heartbeats_total", "Heartbeats accepted"),
      ejections: options.metrics.counter("master_ejections_total", "Ejections mined"),
      transitions: options.metrics.counter("master_node_transitions_total", "Node state transitions", ["to"]),
      // Counted when /metrics is read, not on every state change: a pass over all nodes.
      nodes: options.metrics.gauge("master_nodes", "Nodes by state", ["state"], (gauge) => {
        const counts = this.countByState();
        for (const state of NODE_STATES) gauge.set({ state }, counts[state] ?? 0);
      }),
    };
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS master_nodes (
        node TEXT PRIMARY KEY, state TEXT NOT NULL, participation TEXT NOT NULL, endpoint TEXT,
        state_since INTEGER NOT NULL, discovered_at INTEGER NOT NULL,
        invite_nonce TEXT, invite_generation TEXT, invite_expiry INTEGER, invited_at INTEGER, invite_retry_at INTEGER,
        joined_at INTEGER, last_heartbeat INTEGER, last_sent_at TEXT, ejected_at INTEGER, eject_tx TEXT,
        event_block INTEGER NOT NULL DEFAULT -1, event_index INTEGER NOT NULL DEFAULT -1
      );
      CREATE TABLE IF NOT EXISTS master_transitions (
        id INTEGER PRIMARY KEY AUTOINCREMENT, node TEXT NOT NULL, from_state TEXT, to_state TEXT NOT NULL,
        at INTEGER NOT NULL, reason TEXT NOT NULL
      );
    `);
    this.statements = {
      save: this.db.prepare(
        `INSERT INTO master_nodes (${COLUMNS.join(", ")}) VALUES (${COLUMNS.map((c) => `@${c}`).join(", ")})
         ON CONFLICT(node) DO UPDATE SET ${COLUMNS.filter((c) => c !== "node").map((c) => `${c} = excluded.${c}`).join(", ")}`,
      ),
      heartbeat: this.db.prepare("UPDATE master_nodes SET last_heartbeat = ?, last_sent_at = ? WHERE node = ?"),
      transition: this.db.prepare("INSERT INTO master_transitions (node, from_state, to_state, at, reason) VALUES (?, ?, ?, ?, ?)"),
    };
    for (const row of this.db.prepare("SELECT * FROM master_nodes").all() as NodeRow[]) {
      this.records.set(row.node, fromRow(row));
    }
    if (this.records.size > 0) {
      this.onboarding.info({ nodes: this.countByState() }, "node states restored from the data dir");
    }
  }

  // ------------------------------------------------------------------ reads

  all(): MasterNode[] {
    return [...this.records.values()].map((r) => ({ ...r }));
  }

  get(node: string): MasterNode | undefined {
    const r = this.records.get(safeAddress(node) ?? "");
    return r ? { ...r } : undefined;
  }

  healthyMembers(): MasterNode[] {
    return this.all().filter((n) => n.state === "Healthy" && n.participation === "Member");
  }

  transitions(node?: string): Transition[] {
    const rows = (
      node === undefined
        ? this.db.prepare("SELECT * FROM master_transitions ORDER BY id").all()
        : this.db.prepare("SELECT * FROM master_transitions WHERE node = ? ORDER BY id").all(getAddress(node))
    ) as Array<{ node: string; from_state: string | null; to_state: string; at: number; reason: string }>;
    return rows.map((r) => ({ node: r.node, from: r.from_state as NodeState | null, to: r.to_state as NodeState, at: r.at, reason: r.reason }));
  }

  /** Whether this key is (still) the run's master and the run is open: only then does it invite or eject. */
  get canAct(): boolean {
    return this.run.master.toLowerCase() === this.address.toLowerCase() && isOpen(this.run.status);
  }

  // ------------------------------------------------------------------ loops

  start(): void {
    this.stopped = false;
    const reconcileLoop = async () => {
      if (this.stopped) return;
      await this.reconcile();
      if (!this.stopped) this.reconcileTimer = setTimeout(reconcileLoop, this.reconcileHealth.delayMs);
    };
    void reconcileLoop();
    const tickMs = Math.max(100, Math.min(1000, Math.floor(this.intervalMs / 4)));
    const tickLoop = async () => {
      if (this.stopped) return;
      try {
        // Liveness is judged only from heartbeats we can see: not while the shared ones are unreadable.
        if (await this.syncSharedHeartbeats()) this.tick();
      } catch (error) {
        this.heartbeatLog.error({ err: (error as Error).message }, "heartbeat check failed");
      }
      if (!this.stopped) this.tickTimer = setTimeout(tickLoop, tickMs);
    };
    void tickLoop();
  }

  /** Stops the loops and waits (bounded) for invites, ejections and a reconcile in flight. */
  async stop(timeoutMs = 15_000): Promise<void> {
    this.stopped = true;
    if (this.reconcileTimer) clearTimeout(this.reconcileTimer);
    if (this.tickTimer) clearTimeout(this.tickTimer);
    const pending = [...this.inflight, ...(this.reconciling ? [this.reconciling] : [])];
    await Promise.race([Promise.allSettled(pending), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    this.flushHeartbeats();
  }

  /** Writes the heartbeat times kept in memory since the last flush, in one transaction. */
  flushHeartbeats(): void {
    if (this.unsavedHeartbeats.size === 0 || !this.db.open) return;
    this.db.transaction(() => {
      for (const node of this.unsavedHeartbeats) {
        const record = this.records.get(node);
        if (record) this.statements.heartbeat.run(record.lastHeartbeat, record.lastSentAt, node);
      }
    })();
    this.unsavedHeartbeats.clear();
  }

  /** Asks for a reconcile pass as soon as possible (after an event that may allow an invite). */
  kick(): void {
    if (this.stopped) return;
    if (this.reconciling) this.reconcileAgain = true;
    else void this.reconcile();
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.inflight.add(promise);
    void promise.finally(() => this.inflight.delete(promise)).catch(() => undefined);
    return promise;
  }

  // ------------------------------------------------------------------ chain events

  async handleEvent(event: ChainEvent): Promise<void> {
    if (event.contract === "ChallengeBoard") {
      if (event.name !== "NodeValidated") return;
      const node = getAddress(event.args.node as string);
      const record = this.records.get(node);
      if (record && record.participation === "Registered") {
        this.onboarding.info({ miner: node, round: Number(event.args.round), capsId: String(event.args.capsId) }, "registered node validated: invite due");
        this.kick();
      }
      return;
    }
    if (event.contract !== "TrainingRuns") return;
    if (event.args.runId === undefined || (event.args.runId as bigint) !== this.options.runId) return;
    switch (event.name) {
      case "NodeRegisteredForRun":
        return this.onRegistered(event);
      case "NodeJoined":
        return this.onJoined(event);
      case "NodeLeft":
        return this.onRemoved(event, "Left");
      case "NodeEjected":
        return this.onRemoved(event, "Ejected");
      case "MasterChanged": {
        const newMaster = getAddress(event.args.newMaster as string);
        this.run.master = newMaster;
        const us = newMaster.toLowerCase() === this.address.toLowerCase();
        (us ? this.onboarding.info.bind(this.onboarding) : this.onboarding.error.bind(this.onboarding))(
          { previousMaster: event.args.previousMaster, newMaster, block: event.blockNumber },
          us ? "this key is the run's master again" : "the buyer replaced this master: it stops inviting and ejecting and refuses heartbeats",
        );
        return;
      }
      case "RunStarted":
        this.run.status = RunStatus.Active;
        return;
      case "RunCompleted":
      case "RunCancelled":
        this.run.status = event.name === "RunCompleted" ? RunStatus.Completed : RunStatus.Cancelled;
        this.onboarding.warn({ status: event.name, block: event.blockNumber }, "run ended: no more invites or ejections");
        return;
    }
  }

  /** Whether the event was already applied to the node (redelivery after a failed batch or a restart). */
  private seen(record: MasterNode, event: ChainEvent): boolean {
    if (event.blockNumber < record.eventBlock) return true;
    if (event.blockNumber === record.eventBlock && event.logIndex <= record.eventIndex) return true;
    record.eventBlock = event.blockNumber;
    record.eventIndex = event.logIndex;
    return false;
  }

  private onRegistered(event: ChainEvent): void {
    const node = getAddress(event.args.node as string);
    let record = this.records.get(node);
    if (record && this.seen(record, event)) return;
    if (!record) {
      record = this.newRecord(node, "Registered");
      record.eventBlock = event.blockNumber;
      record.eventIndex = event.logIndex;
      this.records.set(node, record);
      this.logTransition(record, null, "Discovered", `NodeRegisteredForRun in block ${event.blockNumber}`, this.onboarding);
    } else {
      // Registered again after leaving or being ejected: a new life in the run.
      Object.assign(record, {
        participation: "Registered",
        inviteNonce: null,
        inviteGeneration: null,
        inviteExpiry: null,
        invitedAt: null,
        inviteRetryAt: null,
        joinedAt: null,
        lastHeartbeat: null,
        lastSentAt: null,
      } satisfies Partial<MasterNode>);
      this.transition(record, "Discovered", `NodeRegisteredForRun in block ${event.blockNumber}`, this.onboarding);
    }
    this.kick();
  }

  private onJoined(event: ChainEvent): void {
    const node = getAddress(event.args.node as string);
    let record = this.records.get(node);
    if (!record) {
      record = this.newRecord(node, "Member");
      this.records.set(node, record);
    }
    if (this.seen(record, event)) return;
    const nonce = String(event.args.nonce);
    record.participation = "Member";
    record.joinedAt = Date.now();
    record.inviteRetryAt = null;
    const figures = { nonce, ours: nonce === record.inviteNonce, block: event.blockNumber };
    if (record.state === "Discovered" || record.state === "Invited" || record.state === "Ejected" || record.state === "Left" || record.state === "Dead") {
      this.transition(record, "Invited", `NodeJoined (nonce ${nonce}): member, awaiting its first heartbeat`, this.onboarding, figures);
    } else {
      this.save(record);
      this.onboarding.info({ miner: node, ...figures, state: record.state }, "NodeJoined for a node already heartbeating");
    }
  }

  private onRemoved(event: ChainEvent, to: "Left" | "Ejected"): void {
    const node = getAddress(event.args.node as string);
    const record = this.records.get(node);
    if (!record || this.seen(record, event)) return;
    record.participation = "None";
    record.inviteNonce = null;
    record.inviteExpiry = null;
    record.inviteGeneration = null;
    if (to === "Ejected") {
      record.ejectedAt ??= Date.now();
      record.ejectTx ??= event.transactionHash;
    }
    const reason = to === "Ejected" ? `NodeEjected in block ${event.blockNumber} (reason ${event.args.reason})` : `NodeLeft in block ${event.blockNumber}`;
    this.transition(record, to, reason, this.heartbeatLog, { tx: event.transactionHash });
    this.options.onNodeDown(node, to === "Ejected" ? "node ejected" : "node left the run");
  }

  // ------------------------------------------------------------------ reconcile: discovery + invites

  /** One pass: refresh the run, endpoints from discovery, then invite what is due. Serialised. */
  reconcile(): Promise<void> {
    if (this.reconciling) {
      this.reconcileAgain = true;
      return this.reconciling;
    }
    this.reconciling = (async () => {
      do {
        this.reconcileAgain = false;
        try {
          await this.refreshRun();
          await this.refreshEndpoints();
          // Invites are the leader's (fenced: the lease is confirmed right before the cycle).
          if (await this.mayWrite()) {
            await this.inviteDue();
            await this.introduceDue();
          }
          this.reconcileHealth.succeeded();
        } catch (error) {
          this.reconcileHealth.failed(error);
        }
      } while (this.reconcileAgain && !this.stopped);
    })().finally(() => {
      this.reconciling = undefined;
    });
    return this.reconciling;
  }

  /**
   * Now on the contract's clock: invites expire by block.timestamp, which a quiet chain lags and a busy
   * local node runs ahead of. Never earlier than our own clock.
   */
  private chainNowSec(): number {
    return Math.floor(Date.now() / 1000) + this.chainSkewSec;
  }

  private async refreshRun(): Promise<void> {
    const latest = await this.options.chain.provider.getBlock("latest");
    if (latest) this.chainSkewSec = Math.max(0, latest.timestamp - Math.floor(Date.now() / 1000));
    const info = await this.options.chain.contracts.trainingRuns.getRun(this.options.runId);
    const master = getAddress(info.master);
    const status = Number(info.status);
    if (master !== this.run.master || status !== this.run.status) {
      this.onboarding.info({ master, status, previousMaster: this.run.master, previousStatus: this.run.status }, "run refreshed from chain");
    }
    this.run.master = master;
    this.run.status = status;
  }

  private async refreshEndpoints(): Promise<void> {
    const { discovery, runId, chain } = this.options;
    let listed: Awaited<ReturnType<DiscoveryClient["runNodes"]>>;
    try {
      listed = await discovery.runNodes(runId);
    } catch (error) {
      this.onboarding.warn({ err: (error as Error).message }, "discovery: cannot list the run's nodes");
      return;
    }
    const seen = new Set<string>();
    for (const entry of listed) {
      seen.add(entry.node);
      let record = this.records.get(entry.node);
      if (!record) {
        // Discovery says so, but the chain decides: only a node in the run on chain is tracked.
        const asOf = await headBlock(chain.provider);
        const participation = PARTICIPATION[Number(await chain.contracts.trainingRuns.participationOf(runId, entry.node))];
        // The event follower may have created the record while we asked the chain: never replace it.
        record = this.records.get(entry.node);
        if (!record) {
          if (participation === "None") continue;
          record = this.newRecord(entry.node, participation, asOf);
          if (participation === "Member") {
            record.state = "Invited";
            record.joinedAt = Date.now();
          }
          this.records.set(entry.node, record);
          this.logTransition(record, null, record.state, `listed by discovery as ${entry.participation}, ${participation} on chain`, this.onboarding);
        }
      }
      if (record.endpoint !== entry.endpoint) {
        this.onboarding.info({ miner: entry.node, endpoint: entry.endpoint, previous: record.endpoint }, "node endpoint from discovery");
        record.endpoint = entry.endpoint;
        this.save(record);
      }
    }
    // Nodes the list left out but that still need an address (a discovery that lists only some).
    const lacking = [...this.records.values()].filter((r) => !seen.has(r.node) && !r.endpoint && r.participation !== "None").slice(0, 50);
    for (const record of lacking) {
      try {
        const endpoint = await discovery.nodeEndpoint(record.node);
        if (endpoint) {
          this.onboarding.info({ miner: record.node, endpoint }, "node endpoint from discovery (GET /nodes/:node)");
          record.endpoint = endpoint;
          this.save(record);
        }
      } catch (error) {
        this.onboarding.debug({ miner: record.node, err: (error as Error).message }, "discovery: no endpoint for node");
      }
    }
  }

  private async inviteDue(): Promise<void> {
    const due = [...this.records.values()].filter(
      (r) => r.participation === "Registered" && (r.state === "Discovered" || r.state === "Invited") && !this.inviting.has(r.node),
    );
    await Promise.allSettled(due.map((r) => this.track(this.maybeInvite(r))));
  }

  /**
   * Members not heard from for two intervals — this master replaced another one (MasterChanged), was
   * switched back to, or restarted and they lost its URL — are sent a signed invite too, once per silence. They are members already, so they accept it without a
   * transaction and start heartbeating here; without it they would go silent and be ejected.
   */
  private async introduceDue(): Promise<void> {
    const graceMs = 2 * this.options.heartbeatIntervalSec * 1000;
    const now = Date.now();
    const due = [...this.records.values()].filter(
      (r) =>
        r.participation === "Member" &&
        (r.lastHeartbeat === null || now - r.lastHeartbeat >= graceMs) &&
        r.endpoint !== null &&
        (r.joinedAt === null || now - r.joinedAt >= graceMs) &&
        r.state !== "Dead" &&
        !this.introduced.has(r.node) &&
        !this.inviting.has(r.node),
    );
    await Promise.allSettled(due.map((r) => this.track(this.introduce(r))));
  }

  private async introduce(record: MasterNode): Promise<void> {
    if (!this.canAct) return;
    const { chain, runId } = this.options;
    const runs = chain.contracts.trainingRuns;
    this.inviting.add(record.node);
    this.introduced.add(record.node);
    try {
      if (!(await runs.isMember(runId, record.node))) return;
      const nonce = await this.freshNonce();
      const generation = await runs.inviteGenerationOf(runId, record.node);
      const expiry = BigInt(this.chainNowSec() + this.options.inviteExpirySec);
      const signature = await signInvite(
        this.options.wallet,
        { chainId: chain.chainId, verifyingContract: chain.deployment.contracts.TrainingRuns.address },
        { runId, node: record.node, generation, nonce, expiry },
      );
      const answer = await this.options.client.request<{ alreadyMember?: boolean; error?: string }>("POST", `${record.endpoint}/invite`, {
        audience: record.node.toLowerCase(),
        body: { runId: runId.toString(), nonce: nonce.toString(), expiry: expiry.toString(), generation: generation.toString(), signature, masterUrl: this.options.publicUrl },
      });
      const figures = { miner: record.node, status: answer.status, alreadyMember: answer.body?.alreadyMember ?? null };
      if (answer.status >= 200 && answer.status < 300) {
        this.onboarding.info(figures, "silent member introduced to this master");
      } else {
        // A node that could not take it now (5xx, busy) is asked again at the next pass; a 4xx is its answer.
        if (answer.status >= 500 || answer.status === 429) this.introduced.delete(record.node);
        this.onboarding.warn({ ...figures, error: answer.body?.error }, "introducing a member to this master failed");
      }
    } catch (error) {
      this.introduced.delete(record.node);
      this.onboarding.warn({ miner: record.node, err: (error as Error).message }, "introducing a member to this master failed; retrying at the next pass");
    } finally {
      this.inviting.delete(record.node);
    }
  }

  private async maybeInvite(record: MasterNode): Promise<void> {
    const { chain, runId } = this.options;
    const runs = chain.contracts.trainingRuns;
    const nowSec = this.chainNowSec();
    if (record.inviteNonce !== null && record.inviteExpiry !== null && record.inviteExpiry >= nowSec) return; // live invite outstanding
    if (record.inviteRetryAt !== null && record.inviteRetryAt > Date.now()) return;
    if (!record.endpoint) {
      this.onboarding.debug({ miner: record.node }, "registered node has no endpoint in discovery yet");
      return;
    }
    if (!this.canAct) return;
    this.inviting.add(record.node);
    try {
      const participation = PARTICIPATION[Number(await runs.participationOf(runId, record.node))];
      if (participation !== "Registered") {
        this.onboarding.info({ miner: record.node, participation }, "not inviting: the node is no longer only registered on chain");
        if (participation === "Member" && record.participation !== "Member") {
          record.participation = "Member";
          record.joinedAt = Date.now();
          this.transition(record, "Invited", "member on chain before its NodeJoined event", this.onboarding);
        }
        return;
      }
      if (!(await chain.contracts.challengeBoard.isValidated(record.node))) {
        if (!this.notValidatedLogged.has(record.node)) {
          this.notValidatedLogged.add(record.node);
          this.onboarding.info({ miner: record.node }, "not inviting yet: the node is not validated by the ChallengeBoard");
        }
        return;
      }
      this.notValidatedLogged.delete(record.node);
      const expiredInvite = record.inviteNonce !== null ? { nonce: record.inviteNonce, expiry: record.inviteExpiry } : undefined;
      const nonce = await this.freshNonce();
      const generation = await runs.inviteGenerationOf(runId, record.node);
      const expiry = BigInt(nowSec + this.options.inviteExpirySec);
      const signature = await signInvite(
        this.options.wallet,
        { chainId: chain.chainId, verifyingContract: chain.deployment.contracts.TrainingRuns.address },
        { runId, node: record.node, generation, nonce, expiry },
      );
      // Recorded before it is sent: after a crash the invite counts as outstanding until it expires.
      record.inviteNonce = nonce.toString();
      record.inviteGeneration = generation.toString();
      record.inviteExpiry = Number(expiry);
      record.invitedAt = Date.now();
      record.inviteRetryAt = null;
      const figures = { nonce: nonce.toString(), generation: generation.toString(), expiry: Number(expiry), expiresInSec: Number(expiry) - nowSec, endpoint: record.endpoint };
      const why = expiredInvite
        ? `previous invite ${expiredInvite.nonce} expired at ${expiredInvite.expiry}: invited again`
        : "registered, validated and reachable: invited";
      if (record.state === "Invited") {
        this.save(record);
        this.onboarding.info({ miner: record.node, ...figures }, why);
      } else {
        this.transition(record, "Invited", why, this.onboarding, figures);
      }
      this.metrics.invites.inc({ result: "sent" });

      let failure: string | undefined;
      try {
        const answer = await this.options.client.request<{ accepted?: boolean; txHash?: string; error?: string }>(
          "POST",
          `${record.endpoint}/invite`,
          {
            audience: record.node.toLowerCase(),
            body: {
              runId: runId.toString(),
              nonce: nonce.toString(),
              expiry: expiry.toString(),
              generation: generation.toString(),
              signature,
              masterUrl: this.options.publicUrl,
            },
          },
        );
        if (answer.status >= 200 && answer.status < 300) {
          this.metrics.invites.inc({ result: "accepted" });
          this.onboarding.info({ miner: record.node, nonce: nonce.toString(), txHash: answer.body?.txHash ?? null }, "invite accepted by the node");
          if (await runs.isMember(runId, record.node)) {
            const current = this.records.get(record.node);
            if (current && current.participation === "Registered") {
              current.participation = "Member";
              current.joinedAt ??= Date.now();
              this.save(current);
            }
          }
        } else {
          failure = `${answer.status} ${answer.body?.error ?? JSON.stringify(answer.body)}`;
        }
      } catch (error) {
        failure = (error as Error).message;
      }
      if (failure !== undefined) {
        this.metrics.invites.inc({ result: "refused" });
        const current = this.records.get(record.node)!;
        if (current.participation === "Registered" && current.inviteNonce === nonce.toString()) {
          current.inviteNonce = null;
          current.inviteExpiry = null;
          current.inviteGeneration = null;
          current.inviteRetryAt = Date.now() + this.inviteRetryMs;
          this.transition(current, "Discovered", `invite not accepted: ${failure}`, this.onboarding, { retryInMs: this.inviteRetryMs });
        }
      }
    } catch (error) {
      this.onboarding.warn({ miner: record.node, err: (error as Error).message }, "invite failed; retrying at the next reconcile");
    } finally {
      this.inviting.delete(record.node);
    }
  }

  /** A random 64-bit invite nonce the run has not used. */
  private async freshNonce(): Promise<bigint> {
    for (let i = 0; i < 8; i++) {
      const nonce = BigInt(`0x${randomBytes(8).toString("hex")}`);
      if (!(await this.options.chain.contracts.trainingRuns.isInviteNonceUsed(this.options.runId, nonce))) return nonce;
    }
    throw new Error("no unused invite nonce after 8 random draws");
  }

  // ------------------------------------------------------------------ heartbeats

  /**
   * Whether `node` is a member of the run: the event index first, then the chain (its NodeJoined may not
   * have been handled yet) before refusing.
   */
  async isMember(node: string): Promise<boolean> {
    const record = this.records.get(node);
    if (record?.participation === "Member") return true;
    const asOf = await headBlock(this.options.chain.provider);
    const member = await this.options.chain.contracts.trainingRuns.isMember(this.options.runId, node);
    if (member) {
      const current = this.records.get(node) ?? this.newRecord(node, "Member", asOf);
      if (current.eventBlock < asOf) {
        current.eventBlock = asOf;
        current.eventIndex = Number.MAX_SAFE_INTEGER;
      }
      this.records.set(node, current);
      current.participation = "Member";
      current.joinedAt ??= Date.now();
      if (WATCHED.has(current.state)) this.save(current);
      else this.transition(current, "Invited", "member on chain (seen before its NodeJoined event)", this.onboarding);
    }
    return member;
  }

  /**
   * Records a member's heartbeat (first in the shared store, when there is one: a heartbeat acknowledged is
   * one every instance sees; 503 when it cannot be written) and hands its task statuses on; returns the
   * node's state afterwards.
   */
  async recordHeartbeat(node: string, sentAt: string, tasks: ReportedTaskStatus[] = []): Promise<NodeState> {
    if (!this.records.has(node)) throw new Error(`heartbeat from unknown node ${node}`);
    const now = Date.now();
    if (this.options.heartbeats) {
      try {
        await this.options.heartbeats.record(node, { at: now, sentAt }, tasks);
      } catch (error) {
        throw new HttpError(503, `heartbeat not recorded: the shared heartbeat store is unreachable (${(error as Error).message}); send it again`);
      }
    }
    const record = this.records.get(node)!;
    this.metrics.heartbeats.inc();
    const state = this.takeHeartbeat(record, now, sentAt, "here");
    this.options.onHeartbeat?.(node, tasks);
    return state;
  }

  private takeHeartbeat(record: MasterNode, at: number, sentAt: string, via: "here" | "another instance"): NodeState {
    const previous = record.lastHeartbeat;
    record.lastHeartbeat = at;
    this.introduced.delete(record.node);
    record.lastSentAt = sentAt;
    const sinceMs = previous === null ? null : at - previous;
    const shared = via === "here" ? {} : { via };
    if (record.state === "Invited" || record.state === "Discovered") {
      this.transition(record, "Healthy", "first heartbeat", this.heartbeatLog, { sentAt, ...shared });
    } else if (record.state === "Unhealthy") {
      this.transition(record, "Healthy", "heartbeats resumed", this.heartbeatLog, { sinceLastMs: sinceMs, intervalMs: this.intervalMs, ...shared });
    } else {
      this.unsavedHeartbeats.add(record.node);
      this.heartbeatLog.debug({ miner: record.node, state: record.state, sinceLastMs: sinceMs, ...shared }, "heartbeat");
    }
    return record.state;
  }

  /**
   * Several instances: takes in the heartbeats other instances accepted since we last looked. Returns false
   * while the shared store cannot be read (liveness is then not judged at all: no node turns Unhealthy or
   * Dead because Redis is down), true otherwise.
   */
  private async syncSharedHeartbeats(): Promise<boolean> {
    const store = this.options.heartbeats;
    if (!store) return true;
    let shared: Awaited<ReturnType<HeartbeatStore["all"]>>;
    try {
      shared = await store.all();
    } catch (error) {
      if (!this.sharedBlind) {
        this.sharedBlind = true;
        this.heartbeatLog.warn({ err: (error as Error).message }, "shared heartbeats unreadable: no node is judged until they can be read again");
      }
      return false;
    }
    if (this.sharedBlind) {
      this.sharedBlind = false;
      this.listeningSince = Date.now();
      this.heartbeatLog.info({}, "shared heartbeats readable again: the silence meanwhile does not count against the nodes");
    }
    const taken: string[] = [];
    for (const [node, heartbeat] of shared) {
      const record = this.records.get(node);
      if (!record || record.participation !== "Member") continue;
      if (record.lastHeartbeat !== null && record.lastHeartbeat >= heartbeat.at) continue;
      // A heartbeat from before the node's current membership (an earlier life in the run) does not count.
      if (record.joinedAt !== null && heartbeat.at < record.joinedAt - this.intervalMs) continue;
      this.takeHeartbeat(record, heartbeat.at, heartbeat.sentAt, "another instance");
      taken.push(node);
    }
    // Their task statuses matter to the task book, which the leader holds: only it fetches them.
    if (taken.length > 0 && this.options.onHeartbeat && (this.options.leader?.isLeader() ?? true)) {
      try {
        for (const [node, tasks] of await store.tasksOf(taken)) this.options.onHeartbeat(node, tasks);
      } catch (error) {
        this.heartbeatLog.warn({ nodes: taken.length, err: (error as Error).message }, "task statuses of heartbeats taken elsewhere not read; the next heartbeats carry them again");
      }
    }
    return true;
  }

  /** Whether this instance may send transactions now: always alone; with a lease, when it is confirmed held. */
  private async mayWrite(): Promise<boolean> {
    return this.options.leader ? this.options.leader.confirm() : true;
  }

  /** Moves members through Healthy → Unhealthy → Dead by missed intervals, and ejects the dead. */
  tick(now = Date.now()): void {
    this.flushHeartbeats();
    const { unhealthyAfterMisses, deadAfterMisses } = this.options;
    for (const record of this.records.values()) {
      if (record.participation !== "Member") continue;
      if (record.state === "Dead") {
        this.scheduleEject(record);
        continue;
      }
      if (!WATCHED.has(record.state)) continue;
      // Time the master was not running does not count against the nodes: it could not hear them.
      const since = Math.max(record.lastHeartbeat ?? record.joinedAt ?? now, this.listeningSince);
      const misses = Math.floor((now - since) / this.intervalMs);
      const figures = {
        missedIntervals: misses,
        intervalMs: this.intervalMs,
        unhealthyAfterMisses,
        deadAfterMisses,
        lastHeartbeat: record.lastHeartbeat === null ? null : new Date(record.lastHeartbeat).toISOString(),
      };
      if (misses >= deadAfterMisses) {
        this.transition(record, "Dead", `missed ${misses} heartbeat intervals (dead after ${deadAfterMisses})`, this.heartbeatLog, figures);
        this.options.onNodeDown(record.node, "node dead");
        this.scheduleEject(record);
      } else if (misses >= unhealthyAfterMisses && record.state !== "Unhealthy") {
        this.transition(record, "Unhealthy", `missed ${misses} heartbeat intervals (unhealthy after ${unhealthyAfterMisses})`, this.heartbeatLog, figures);
      }
    }
  }

  private scheduleEject(record: MasterNode): void {
    if (this.ejecting.has(record.node) || this.stopped) return;
    // Another instance holds the lease: ejecting is its duty.
    if (this.options.leader && !this.options.leader.isLeader()) return;
    if ((this.ejectRetryAt.get(record.node) ?? 0) > Date.now()) return;
    void this.track(this.eject(record.node));
  }

  private async eject(node: string): Promise<void> {
    const { chain, runId, tx } = this.options;
    this.ejecting.add(node);
    try {
      if (!this.canAct) {
        this.ejectRetryAt.set(node, Date.now() + this.inviteRetryMs);
        this.heartbeatLog.warn({ miner: node, master: this.run.master, runStatus: this.run.status }, "dead node not ejected: this key is not the master of an open run");
        return;
      }
      if (!(await this.mayWrite())) {
        this.heartbeatLog.info({ miner: node }, "dead node not ejected here: this instance no longer holds the leader lease");
        return;
      }
      // Chain state first: after a restart or a redelivered event the node may already be out.
      const participation = PARTICIPATION[Number(await chain.contracts.trainingRuns.participationOf(runId, node))];
      if (participation !== "Member") {
        this.markEjected(node, null, `already out of the run on chain (${participation})`);
        return;
      }
      const receipt = await tx.send("eject", () => chain.contracts.trainingRuns.eject(runId, node, EJECT_REASON), {
        subsystem: "Heartbeat",
        miner: node,
        runId: runId.toString(),
        reason: EJECT_REASON_TEXT,
      });
      this.metrics.ejections.inc();
      this.markEjected(node, receipt.hash, `eject mined in block ${receipt.blockNumber}`);
    } catch (error) {
      if (error instanceof TxRevertedError && error.errorName === "TrainingRunsInvalidParticipation") {
        // The gas estimate reverts when the node is no longer in the run: someone (us, before a crash) did it.
        this.markEjected(node, null, "already out of the run (eject reverted with TrainingRunsInvalidParticipation)");
        return;
      }
      this.ejectRetryAt.set(node, Date.now() + this.inviteRetryMs);
      this.heartbeatLog.error({ miner: node, err: (error as Error).message, retryInMs: this.inviteRetryMs }, "eject failed; will retry");
    } finally {
      this.ejecting.delete(node);
    }
  }

  private markEjected(node: string, txHash: string | null, reason: string): void {
    const record = this.records.get(node);
    if (!record || record.participation === "None" && record.state === "Ejected") return;
    if (record.state !== "Dead") {
      // Only a node we declared dead is ejected by this path; anything else is left to the events.
      this.heartbeatLog.info({ miner: node, state: record.state, reason }, "eject skipped");
      return;
    }
    record.participation = "None";
    record.ejectedAt = Date.now();
    record.ejectTx = txHash ?? record.ejectTx;
    this.transition(record, "Ejected", reason, this.heartbeatLog, { tx: txHash });
  }

  // ------------------------------------------------------------------ storage

  /**
   * A node record; `asOfBlock` when it was built from a chain read made at that block or later (events up
   * to that block are then already reflected and are skipped when they arrive).
   */
  private newRecord(node: string, participation: ParticipationName, asOfBlock?: number): MasterNode {
    const now = Date.now();
    return {
      node,
      state: "Discovered",
      participation,
      endpoint: null,
      stateSince: now,
      discoveredAt: now,
      inviteNonce: null,
      inviteGeneration: null,
      inviteExpiry: null,
      invitedAt: null,
      inviteRetryAt: null,
      joinedAt: null,
      lastHeartbeat: null,
      lastSentAt: null,
      ejectedAt: null,
      ejectTx: null,
      eventBlock: asOfBlock ?? -1,
      eventIndex: asOfBlock === undefined ? -1 : Number.MAX_SAFE_INTEGER,
    };
  }

  private save(record: MasterNode): void {
    this.statements.save.run(toRow(record));
    this.unsavedHeartbeats.delete(record.node);
  }

  private transition(record: MasterNode, to: NodeState, reason: string, log: Logger, figures: Record<string, unknown> = {}): void {
    const from = record.state;
    if (from === to) {
      this.save(record);
      return;
    }
    record.state = to;
    record.stateSince = Date.now();
    this.logTransition(record, from, to, reason, log, figures);
  }

  private logTransition(record: MasterNode, from: NodeState | null, to: NodeState, reason: string, log: Logger, figures: Record<string, unknown> = {}): void {
    this.save(record);
    this.statements.transition.run(record.node, from, to, Date.now(), reason);
    this.metrics.transitions.inc({ to });
    log.info({ miner: record.node, from, to, reason, participation: record.participation, ...figures }, `node ${from ?? "(new)"} → ${to}: ${reason}`);
  }

  private countByState(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const r of this.records.values()) counts[r.state] = (counts[r.state] ?? 0) + 1;
    return counts;
  }
}

function isOpen(status: number): boolean {
  return status === RunStatus.Pending || status === RunStatus.Active;
}

function safeAddress(value: string): string | undefined {
  try {
    return getAddress(value);
  } catch {
    return undefined;
  }
}
