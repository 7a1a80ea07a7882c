/**
 * The buyer's tasks at the master: validated into a miner TaskSpec, tracked from heartbeats and from the
 * miner's own status answers, and failed when their node dies. Persisted in the keeper's SQLite file.
 *
 * Who runs a task depends on the master's assignment mode:
 *   - "local": the master sends it at once to the healthy member with the fewest active tasks (ties by
 *     address); no on-chain task, no pay (private runs, tests of the keepers alone);
 *   - "chain" (default): the task is queued, and ledger.ts creates it on TaskLedger, which draws the
 *     assignee by power, then sends it to that node only. This file keeps both the master's tasks and the
 *     chain's view of each on-chain task created for them (`master_ledger_tasks`).
 */
import { randomBytes } from "node:crypto";
import { z } from "zod";
import type { Db } from "../shared/store.js";
import type Database from "better-sqlite3";
import type { SignedTx } from "../shared/tx.js";
import type { Logger } from "../shared/log.js";
import type { Metrics } from "../shared/metrics.js";
import { HttpError, type SignedClient } from "../shared/http.js";
import type { TaskStatus } from "../miner/docker-runtime.js";
import { TASK_ID_PATTERN, type TaskSpec, type ValidTaskSpec, refusingProtoKey, validateTaskSpec } from "../miner/task-spec.js";
import type { MasterNode } from "./nodes.js";

export const TASK_STATES = ["pending", "pulling", "running", "restarting", "completed", "failed", "stopped"] as const;
/**
 * The miner's task states, plus the master's own before the node has the task: "dispatching" while the
 * master is handing the task to its node, and in chain mode "queued" (waiting for an on-chain task),
 * "creating" (createTask sent, its receipt not read yet) and "assigned" (drawn on chain, not yet taken by
 * the assignee).
 */
export type MasterTaskState = (typeof TASK_STATES)[number] | "dispatching" | "queued" | "creating" | "assigned";
export const FINAL_TASK_STATES: ReadonlySet<string> = new Set(["completed", "failed", "stopped"]);
/** Chain-mode states in which no node has the task yet. */
export const UNDISPATCHED_STATES: ReadonlySet<string> = new Set(["queued", "creating", "assigned"]);

export type AssignmentMode = "chain" | "local";
/** Largest work units of one task (TaskLedger takes a uint64; the bound keeps pay within reason). */
export const MAX_TASK_UNITS = 1_000_000_000;

/** A miner's TaskStatus as received in heartbeats and status answers (unknown fields dropped). */
export const taskStatusSchema = z.object({
  taskId: z.string().regex(TASK_ID_PATTERN, "must match [A-Za-z0-9_-]{1,64}"),
  runId: z.string().optional(),
  state: z.enum(TASK_STATES),
  exitCode: z.number().int().nullable().optional(),
  restarts: z.number().int().min(0).optional(),
  startedAt: z.string().nullable().optional(),
  finishedAt: z.string().nullable().optional(),
  error: z.string().max(4096).optional(),
  containerId: z.string().max(128).optional(),
});
export type ReportedTaskStatus = z.infer<typeof taskStatusSchema>;

/** What a buyer sends to `POST /tasks`; the finer limits are the miner's (`validateTaskSpec`). */
export const createTaskSchema = z.strictObject({
  image: z.string({ error: "must be a string" }),
  command: z.array(z.string({ error: "must be strings" }), { error: "must be an array of strings" }),
  // Names are checked by validateTaskSpec, after this; but a __proto__ key would not reach it.
  env: refusingProtoKey(
    z.record(z.string(), z.string({ error: "values must be strings" }), { error: "must be an object of strings" }),
  ).optional(),
  memoryMB: z.number({ error: "must be a number" }),
  cpus: z.number({ error: "must be a number" }),
  gpus: z.number({ error: "must be a number" }).optional(),
  maxRestarts: z.number({ error: "must be a number" }).optional(),
  /** Work units the task is paid for (chain mode: pay = the run's price per unit × units). */
  units: z
    .number({ error: "must be a number" })
    .int("must be a whole number")
    .min(1, "must be at least 1")
    .max(MAX_TASK_UNITS, `must be at most ${MAX_TASK_UNITS}`)
    .optional(),
});
export type CreateTaskRequest = z.infer<typeof createTaskSchema>;

export interface MasterTask {
  taskId: string;
  /** The node that runs it; "" while a chain-mode task has no assignee yet. */
  node: string;
  /** The spec as the buyer asked for it (validated, defaults filled; no ledgerTaskId). */
  spec: ValidTaskSpec;
  state: MasterTaskState;
  /** Last status from the miner (heartbeat or status answer). */
  status: ReportedTaskStatus | null;
  /** Why the master gave the task up (e.g. "node dead"). */
  error: string | null;
  createdAt: number;
  updatedAt: number;
  units: number;
  /** Chain mode: the current on-chain task, its epoch and assignee (null before the first is created). */
  ledgerTaskId: string | null;
  epoch: string | null;
  assignee: string | null;
  /** On-chain tasks created for it that expired undispatched and were replaced. */
  requeues: number;
  /** Dispatch attempts to the current assignee, when the next one is due (ms), and its last refusal. */
  dispatchTries: number;
  nextTryAt: number | null;
  dispatchError: string | null;
  /** The createTask transaction recorded before it was broadcast (state "creating"). */
  createTx: SignedTx | null;
  /** Why a queued or assigned task is waiting, for the buyer. */
  waiting: string | null;
}

interface TaskRow {
  task_id: string;
  node: string;
  spec: string;
  state: string;
  status: string | null;
  error: string | null;
  created_at: number;
  updated_at: number;
  units: number;
  ledger_task_id: string | null;
  epoch: string | null;
  assignee: string | null;
  requeues: number;
  dispatch_tries: number;
  next_try_at: number | null;
  dispatch_error: string | null;
  create_tx: string | null;
  waiting: string | null;
}

const toTask = (row: TaskRow): MasterTask => ({
  taskId: row.task_id,
  node: row.node,
  spec: JSON.parse(row.spec) as ValidTaskSpec,
  state: row.state as MasterTaskState,
  status: row.status ? (JSON.parse(row.status) as ReportedTaskStatus) : null,
  error: row.error,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
  units: row.units,
  ledgerTaskId: row.ledger_task_id,
  epoch: row.epoch,
  assignee: row.assignee,
  requeues: row.requeues,
  dispatchTries: row.dispatch_tries,
  nextTryAt: row.next_try_at,
  dispatchError: row.dispatch_error,
  createTx: row.create_tx ? (JSON.parse(row.create_tx) as SignedTx) : null,
  waiting: row.waiting,
});

/** Columns added after the first release of the table, with their declarations (added when missing). */
const ADDED_COLUMNS: Array<[string, string]> = [
  ["units", "INTEGER NOT NULL DEFAULT 1"],
  ["ledger_task_id", "TEXT"],
  ["epoch", "TEXT"],
  ["assignee", "TEXT"],
  ["requeues", "INTEGER NOT NULL DEFAULT 0"],
  ["dispatch_tries", "INTEGER NOT NULL DEFAULT 0"],
  ["next_try_at", "INTEGER"],
  ["dispatch_error", "TEXT"],
  ["create_tx", "TEXT"],
  ["waiting", "TEXT"],
];

/** The chain's view of one on-chain task, from the createTask receipt and the TaskLedger events since. */
export interface ChainTaskView {
  taskId: string;
  epoch: string;
  assignee: string;
  status: "Assigned" | "Completed" | "Invalidated" | "Expired";
  units: string;
  pay: string;
  draws: number;
  specHash: string;
  resultHash: string | null;
  validations: Array<{ validator: string; ok: boolean }>;
  dispute: ChainDisputeView | null;
  createdTx: string;
  /** Escrow released back to the run when it expired. */
  released?: string;
}

export interface ChainDisputeView {
  /** Unresolved: voting ended without a seal holding a majority (nobody slashed, the task stands). */
  status: "Open" | "Invalidated" | "Upheld" | "Unresolved";
  accuser: string;
  /** The accuser's seal (its failed validation's evidence). */
  accuserSeal?: string;
  /** Weights as the events reported them (the resolution's figures once resolved): against and for the executor's seal. */
  invalidWeight: string;
  validWeight: string;
  /** Each voter's seal; `invalid` when it is not the executor's. */
  votes: Array<{ voter: string; seal?: string; invalid: boolean; weight: string }>;
  slashed?: string;
  reward?: string;
}

/**
 * The view of a task the buyer gets; with `chain` (chain assignment) also the chain's view of its current
 * on-chain task (null before one exists) and of earlier ones that expired (`chainHistory`).
 */
export function taskView(task: MasterTask, chain?: { current: ChainTaskView | null; history: ChainTaskView[] }) {
  return {
    taskId: task.taskId,
    node: task.node || null,
    state: task.state,
    exitCode: task.status?.exitCode ?? null,
    units: task.units,
    spec: task.spec,
    status: task.status,
    error: task.error,
    ...(task.waiting && UNDISPATCHED_STATES.has(task.state) ? { waiting: task.waiting } : {}),
    ...(chain ? { chain: chain.current, ...(chain.history.length > 0 ? { chainHistory: chain.history } : {}) } : {}),
    createdAt: new Date(task.createdAt).toISOString(),
    updatedAt: new Date(task.updatedAt).toISOString(),
  };
}

/** Formats a zod error as "field: message; field: message". */
export function zodProblems(error: z.ZodError, prefix = "body"): string {
  return error.issues
    .map((issue) => `${[prefix, ...issue.path.map(String)].join(".")}: ${issue.message}`)
    .join("; ");
}

export interface TaskBookOptions {
  db: Db;
  runId: bigint;
  /** Default "local" here; the master keeper defaults to "chain". */
  assignment?: AssignmentMode;
  client: SignedClient;
  log: Logger;
  metrics: Metrics;
  /** Healthy members that may take tasks. */
  healthyMembers: () => MasterNode[];
  /** All known nodes, to explain a 503. */
  allNodes: () => MasterNode[];
}

export class TaskBook {
  readonly assignment: AssignmentMode;
  private readonly db: Db;
  private readonly log: Logger;
  private readonly created;
  /** Called when a chain-mode task is queued (wakes the ledger queue). */
  onQueued: (() => void) | undefined;
  private updateStatus: Database.Statement | undefined;

  constructor(private readonly options: TaskBookOptions) {
    this.db = options.db;
    this.log = options.log;
    this.assignment = options.assignment ?? "local";
    this.created = options.metrics.counter("master_tasks_created_total", "Tasks created, by outcome", ["result"]);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS master_tasks (
        task_id TEXT PRIMARY KEY, node TEXT NOT NULL, spec TEXT NOT NULL, state TEXT NOT NULL,
        status TEXT, error TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS master_tasks_node ON master_tasks (node);
      CREATE TABLE IF NOT EXISTS master_ledger_tasks (
        ledger_task_id TEXT PRIMARY KEY, task_id TEXT NOT NULL, epoch TEXT NOT NULL, assignee TEXT NOT NULL,
        chain TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS master_ledger_tasks_task ON master_ledger_tasks (task_id);
    `);
    const columns = new Set((this.db.prepare("PRAGMA table_info(master_tasks)").all() as Array<{ name: string }>).map((c) => c.name));
    for (const [column, declaration] of ADDED_COLUMNS) {
      if (!columns.has(column)) this.db.exec(`ALTER TABLE master_tasks ADD COLUMN ${column} ${declaration}`);
    }
    this.db.exec("CREATE INDEX IF NOT EXISTS master_tasks_state ON master_tasks (state)");
    const byState = this.db.prepare("SELECT state, COUNT(*) AS n FROM master_tasks GROUP BY state");
    options.metrics.gauge("master_tasks", "Buyer's tasks in the task book, by state", ["state"], (gauge) => {
      gauge.reset();
      for (const state of [...TASK_STATES, "dispatching", "queued", "creating", "assigned"]) gauge.set({ state }, 0);
      for (const row of byState.all() as Array<{ state: string; n: number }>) gauge.set({ state: row.state }, row.n);
    });
    const byChainStatus = this.db.prepare("SELECT json_extract(chain, '$.status') AS status, COUNT(*) AS n FROM master_ledger_tasks GROUP BY 1");
    options.metrics.gauge("master_ledger_tasks", "On-chain tasks of this run as the chain last told, by status (Assigned, Completed, Invalidated, Expired)", ["status"], (gauge) => {
      gauge.reset();
      for (const status of ["Assigned", "Completed", "Invalidated", "Expired"]) gauge.set({ status }, 0);
      for (const row of byChainStatus.all() as Array<{ status: string | null; n: number }>) gauge.set({ status: row.status ?? "unknown" }, row.n);
    });
    // A local task caught mid-dispatch by a crash: whether its miner got it is unknown, so the buyer is told.
    const stale = this.db
      .prepare("UPDATE master_tasks SET state = 'failed', error = ?, updated_at = ? WHERE state = 'dispatching' AND ledger_task_id IS NULL")
      .run("master restarted while dispatching the task", Date.now());
    if (stale.changes > 0) this.log.warn({ tasks: stale.changes }, "tasks left mid-dispatch by the last run marked failed");
    // A chain task caught mid-dispatch goes to its assignee again: the chain drew that node, and a node that
    // got it already answers with its status.
    const redispatch = this.db
      .prepare("UPDATE master_tasks SET state = 'assigned', next_try_at = NULL, updated_at = ? WHERE state = 'dispatching' AND ledger_task_id IS NOT NULL")
      .run(Date.now());
    if (redispatch.changes > 0) this.log.warn({ tasks: redispatch.changes }, "chain tasks left mid-dispatch by the last run: sending them to their assignee again");
  }

  get(taskId: string): MasterTask | undefined {
    const row = this.db.prepare("SELECT * FROM master_tasks WHERE task_id = ?").get(taskId) as TaskRow | undefined;
    return row ? toTask(row) : undefined;
  }

  list(): MasterTask[] {
    return (this.db.prepare("SELECT * FROM master_tasks ORDER BY created_at, task_id").all() as TaskRow[]).map(toTask);
  }

  /** Tasks in one of `states`, oldest first (in the order they were created; at most `limit`). */
  inStates(states: MasterTaskState[], limit = 1000): MasterTask[] {
    const rows = this.db
      .prepare(`SELECT * FROM master_tasks WHERE state IN (${states.map(() => "?").join(", ")}) ORDER BY created_at, rowid LIMIT ?`)
      .all(...states, limit) as TaskRow[];
    return rows.map(toTask);
  }

  /** Updates the given fields of a task (and its updated time). */
  update(
    taskId: string,
    change: Partial<Pick<MasterTask, "node" | "state" | "error" | "ledgerTaskId" | "epoch" | "assignee" | "requeues" | "dispatchTries" | "nextTryAt" | "dispatchError" | "createTx" | "waiting">> & {
      status?: ReportedTaskStatus | null;
    },
  ): void {
    const columns: Record<string, unknown> = {};
    if (change.node !== undefined) columns.node = change.node;
    if (change.state !== undefined) columns.state = change.state;
    if (change.error !== undefined) columns.error = change.error;
    if (change.ledgerTaskId !== undefined) columns.ledger_task_id = change.ledgerTaskId;
    if (change.epoch !== undefined) columns.epoch = change.epoch;
    if (change.assignee !== undefined) columns.assignee = change.assignee;
    if (change.requeues !== undefined) columns.requeues = change.requeues;
    if (change.dispatchTries !== undefined) columns.dispatch_tries = change.dispatchTries;
    if (change.nextTryAt !== undefined) columns.next_try_at = change.nextTryAt;
    if (change.dispatchError !== undefined) columns.dispatch_error = change.dispatchError;
    if (change.createTx !== undefined) columns.create_tx = change.createTx === null ? null : JSON.stringify(change.createTx);
    if (change.waiting !== undefined) columns.waiting = change.waiting;
    if (change.status !== undefined) columns.status = change.status === null ? null : JSON.stringify(change.status);
    columns.updated_at = Date.now();
    const names = Object.keys(columns);
    this.db
      .prepare(`UPDATE master_tasks SET ${names.map((n) => `${n} = @${n}`).join(", ")} WHERE task_id = @task_id`)
      .run({ ...columns, task_id: taskId });
  }

  /** Records why the tasks in `state` wait (shown to the buyer); not a change of state. */
  setWaiting(state: MasterTaskState, reason: string): void {
    this.db.prepare("UPDATE master_tasks SET waiting = ? WHERE state = ? AND waiting IS NOT ?").run(reason, state, reason);
  }

  /** The buyer's view of a task, with the chain's view of its on-chain tasks in chain mode. */
  view(task: MasterTask) {
    if (task.ledgerTaskId === null && this.assignment === "local") return taskView(task);
    const all = this.chainViewsOf(task.taskId);
    const current = all.find((v) => v.taskId === task.ledgerTaskId) ?? null;
    return taskView(task, { current, history: all.filter((v) => v !== current) });
  }

  // ------------------------------------------------------------------ chain views (chain mode)

  chainView(ledgerTaskId: string): { taskId: string; view: ChainTaskView } | undefined {
    const row = this.db.prepare("SELECT task_id, chain FROM master_ledger_tasks WHERE ledger_task_id = ?").get(ledgerTaskId) as
      | { task_id: string; chain: string }
      | undefined;
    return row && { taskId: row.task_id, view: JSON.parse(row.chain) as ChainTaskView };
  }

  chainViewsOf(taskId: string): ChainTaskView[] {
    const rows = this.db.prepare("SELECT chain FROM master_ledger_tasks WHERE task_id = ? ORDER BY created_at").all(taskId) as Array<{ chain: string }>;
    return rows.map((r) => JSON.parse(r.chain) as ChainTaskView);
  }

  /** On-chain tasks the chain still has Assigned (candidates for expiry once their epoch ended). */
  assignedChainViews(limit = 1000): Array<{ taskId: string; view: ChainTaskView }> {
    const rows = this.db
      .prepare("SELECT task_id, chain FROM master_ledger_tasks WHERE json_extract(chain, '$.status') = 'Assigned' ORDER BY created_at LIMIT ?")
      .all(limit) as Array<{ task_id: string; chain: string }>;
    return rows.map((r) => ({ taskId: r.task_id, view: JSON.parse(r.chain) as ChainTaskView }));
  }

  saveChainView(taskId: string, view: ChainTaskView): void {
    const now = Date.now();
    this.db
      .prepare(
        `INSERT INTO master_ledger_tasks (ledger_task_id, task_id, epoch, assignee, chain, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(ledger_task_id) DO UPDATE SET chain = excluded.chain, updated_at = excluded.updated_at`,
      )
      .run(view.taskId, taskId, view.epoch, view.assignee, JSON.stringify(view), now, now);
  }

  /** The `limit` most recently created tasks, newest first (the dashboard's list). */
  recent(limit: number): MasterTask[] {
    return (this.db.prepare("SELECT * FROM master_tasks ORDER BY created_at DESC, task_id DESC LIMIT ?").all(limit) as TaskRow[]).map(toTask);
  }

  /** Number of tasks in each state. */
  countByState(): Record<string, number> {
    const rows = this.db.prepare("SELECT state, COUNT(*) AS n FROM master_tasks GROUP BY state").all() as Array<{ state: string; n: number }>;
    return Object.fromEntries(rows.map((r) => [r.state, r.n]));
  }

  /** Ids of every node's tasks that are not in a final state, by node (one query for all nodes). */
  activeTaskIdsByNode(): Map<string, string[]> {
    const rows = this.db
      .prepare("SELECT task_id, node FROM master_tasks WHERE node != '' AND state NOT IN ('completed', 'failed', 'stopped') ORDER BY created_at")
      .all() as Array<{ task_id: string; node: string }>;
    const byNode = new Map<string, string[]>();
    for (const r of rows) {
      const key = r.node.toLowerCase();
      const ids = byNode.get(key);
      if (ids) ids.push(r.task_id);
      else byNode.set(key, [r.task_id]);
    }
    return byNode;
  }

  /** The chain's views of the on-chain tasks created for each of `taskIds`, oldest first (one query). */
  chainViewsFor(taskIds: string[]): Map<string, ChainTaskView[]> {
    const views = new Map<string, ChainTaskView[]>();
    for (let i = 0; i < taskIds.length; i += 500) {
      const chunk = taskIds.slice(i, i + 500);
      const rows = this.db
        .prepare(`SELECT task_id, chain FROM master_ledger_tasks WHERE task_id IN (${chunk.map(() => "?").join(", ")}) ORDER BY created_at`)
        .all(...chunk) as Array<{ task_id: string; chain: string }>;
      for (const r of rows) {
        const list = views.get(r.task_id);
        if (list) list.push(JSON.parse(r.chain) as ChainTaskView);
        else views.set(r.task_id, [JSON.parse(r.chain) as ChainTaskView]);
      }
    }
    return views;
  }

  /** Ids of the node's tasks that are not in a final state. */
  activeTaskIds(node: string): string[] {
    const rows = this.db
      .prepare("SELECT task_id FROM master_tasks WHERE node = ? AND state NOT IN ('completed', 'failed', 'stopped') ORDER BY created_at")
      .all(node) as Array<{ task_id: string }>;
    return rows.map((r) => r.task_id);
  }

  /**
   * Validates the buyer's request, picks a node and sends it the task. Throws HttpError 400 for a bad
   * request and 503 when no healthy node takes it.
   */
  async create(body: unknown): Promise<{ taskId: string; node: string | null; state: MasterTaskState; units: number }> {
    const parsed = createTaskSchema.safeParse(body ?? {});
    if (!parsed.success) throw new HttpError(400, zodProblems(parsed.error));
    const taskId = randomBytes(8).toString("hex");
    const { units = 1, ...fields } = parsed.data;
    const request: TaskSpec = { taskId, runId: this.options.runId.toString(), ...fields };
    let spec: ValidTaskSpec;
    try {
      spec = validateTaskSpec(request);
    } catch (error) {
      throw new HttpError(400, (error as Error).message);
    }
    if (this.assignment === "chain") return this.enqueue(spec, units);

    const candidates = this.options
      .healthyMembers()
      .map((n) => ({ node: n, active: this.activeTaskIds(n.node).length }))
      .sort((a, b) => a.active - b.active || (a.node.node.toLowerCase() < b.node.node.toLowerCase() ? -1 : 1));
    if (candidates.length === 0) {
      const others = this.options.allNodes().map((n) => `${n.node} ${n.state}`);
      this.created.inc({ result: "no_healthy_node" });
      this.log.warn({ taskId, nodes: others }, "task refused: no healthy node");
      throw new HttpError(
        503,
        `no healthy node in run ${this.options.runId} to run the task` + (others.length ? ` (nodes: ${others.join(", ")})` : " (no nodes yet)"),
      );
    }
    this.log.info(
      { taskId, image: spec.image, candidates: candidates.map((c) => ({ miner: c.node.node, activeTasks: c.active })) },
      "assigning task: healthy member with the fewest active tasks, ties by address",
    );

    const refusals: string[] = [];
    for (const { node, active } of candidates) {
      const now = Date.now();
      this.db
        .prepare("INSERT INTO master_tasks (task_id, node, spec, state, status, error, created_at, updated_at, units) VALUES (?, ?, ?, 'dispatching', NULL, NULL, ?, ?, ?)")
        .run(taskId, node.node, JSON.stringify(spec), now, now, units);
      try {
        if (!node.endpoint) throw new Error("no endpoint known for the node");
        const answer = await this.options.client.request<unknown>("POST", `${node.endpoint}/tasks`, {
          audience: node.node.toLowerCase(),
          body: spec,
        });
        if (answer.status < 200 || answer.status >= 300) {
          throw new Error(`${answer.status} ${(answer.body as { error?: string })?.error ?? JSON.stringify(answer.body)}`);
        }
        const status = taskStatusSchema.safeParse(answer.body);
        const state = status.success && status.data.taskId === taskId ? status.data.state : "pending";
        this.db
          .prepare("UPDATE master_tasks SET state = ?, status = ?, updated_at = ? WHERE task_id = ?")
          .run(state, status.success ? JSON.stringify(status.data) : null, Date.now(), taskId);
        this.created.inc({ result: "sent" });
        this.log.info({ taskId, miner: node.node, activeTasksBefore: active, state }, "task sent to node");
        return { taskId, node: node.node, state, units };
      } catch (error) {
        this.db.prepare("DELETE FROM master_tasks WHERE task_id = ?").run(taskId);
        const reason = (error as Error).message;
        refusals.push(`${node.node}: ${reason}`);
        this.log.warn({ taskId, miner: node.node, err: reason }, "node did not take the task; trying the next healthy node");
      }
    }
    this.created.inc({ result: "refused" });
    throw new HttpError(503, `no healthy node took the task: ${refusals.join("; ")}`);
  }

  /** Chain mode: stores the task as queued; the ledger queue creates it on chain when it can. */
  private enqueue(spec: ValidTaskSpec, units: number): { taskId: string; node: null; state: "queued"; units: number } {
    const now = Date.now();
    const waiting = "waiting for the ledger queue to create it on chain";
    this.db
      .prepare(
        "INSERT INTO master_tasks (task_id, node, spec, state, status, error, created_at, updated_at, units, waiting) VALUES (?, '', ?, 'queued', NULL, NULL, ?, ?, ?, ?)",
      )
      .run(spec.taskId, JSON.stringify(spec), now, now, units, waiting);
    this.created.inc({ result: "queued" });
    this.log.info({ taskId: spec.taskId, image: spec.image, units }, "task queued: the chain will draw the node that runs it (TaskLedger.createTask)");
    this.onQueued?.();
    return { taskId: spec.taskId, node: null, state: "queued", units };
  }

  /** Applies statuses a node reported for its tasks; ignores tasks that are not the node's. */
  applyStatuses(node: string, statuses: ReportedTaskStatus[], source: "heartbeat" | "miner"): void {
    let applied = 0;
    const foreign: string[] = [];
    for (const status of statuses) {
      const task = this.get(status.taskId);
      if (!task || task.node.toLowerCase() !== node.toLowerCase()) {
        foreign.push(status.taskId);
        continue;
      }
      // The master's own verdict (node dead, left, ejected) is final: a late report does not undo it.
      if (task.error !== null) continue;
      if (task.state !== status.state) {
        this.log.info({ taskId: task.taskId, miner: node, from: task.state, to: status.state, exitCode: status.exitCode ?? null, source }, "task state changed");
      }
      // Heartbeats carry their node's statuses: prepared once, not per status.
      this.updateStatus ??= this.db.prepare("UPDATE master_tasks SET state = ?, status = ?, updated_at = ? WHERE task_id = ?");
      this.updateStatus.run(status.state, JSON.stringify(status), Date.now(), task.taskId);
      applied++;
    }
    if (foreign.length > 0) this.log.warn({ miner: node, tasks: foreign, source }, "status for tasks that are not this node's: ignored");
    if (applied > 0) this.log.debug({ miner: node, applied, source }, "task statuses updated");
  }

  /**
   * Marks the node's active tasks failed with `reason`; returns their ids. Chain tasks the node has not
   * taken yet stay with it: the chain drew it, and they expire (and are created again) at the epoch's end.
   */
  failActive(node: string, reason: string): string[] {
    const ids = this.activeTaskIds(node).filter((id) => !UNDISPATCHED_STATES.has(this.get(id)!.state));
    const now = Date.now();
    for (const id of ids) {
      this.db.prepare("UPDATE master_tasks SET state = 'failed', error = ?, updated_at = ? WHERE task_id = ?").run(reason, now, id);
    }
    if (ids.length > 0) {
      this.log.warn(
        { miner: node, tasks: ids, reason, reassigned: 0 },
        `tasks of the node marked failed (${reason}); they are not reassigned yet: the buyer must create them again`,
      );
    }
    return ids;
  }

  /** Asks the task's node for its current status and records it; returns the task after the refresh. */
  async refresh(task: MasterTask, node: MasterNode | undefined): Promise<{ task: MasterTask; refreshError?: string }> {
    if (task.error !== null || FINAL_TASK_STATES.has(task.state) || UNDISPATCHED_STATES.has(task.state)) return { task };
    if (!node?.endpoint) return { task, refreshError: "no endpoint known for the task's node" };
    try {
      const answer = await this.options.client.request<unknown>("GET", `${node.endpoint}/tasks/${task.taskId}`, {
        audience: node.node.toLowerCase(),
      });
      if (answer.status !== 200) {
        return { task, refreshError: `node answered ${answer.status} ${(answer.body as { error?: string })?.error ?? ""}`.trim() };
      }
      const status = taskStatusSchema.safeParse(answer.body);
      if (!status.success || status.data.taskId !== task.taskId) return { task, refreshError: "node answered a malformed TaskStatus" };
      this.applyStatuses(node.node, [status.data], "miner");
      return { task: this.get(task.taskId)! };
    } catch (error) {
      return { task, refreshError: (error as Error).message };
    }
  }
}
