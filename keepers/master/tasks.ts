/**
 * The buyer's tasks at the master: validated into a miner TaskSpec, sent to the healthy member with the
 * fewest active tasks (ties by address), tracked from heartbeats and from the miner's own status answers,
 * and failed when their node dies. Persisted in the keeper's SQLite file.
 */
import { randomBytes } from "node:crypto";
import { z } from "zod";
import type { Db } from "../shared/store.js";
import type { Logger } from "../shared/log.js";
import type { Metrics } from "../shared/metrics.js";
import { HttpError, type SignedClient } from "../shared/http.js";
import type { TaskStatus } from "../miner/docker-runtime.js";
import { TASK_ID_PATTERN, type TaskSpec, type ValidTaskSpec, validateTaskSpec } from "../miner/task-spec.js";
import type { MasterNode } from "./nodes.js";

export const TASK_STATES = ["pending", "pulling", "running", "restarting", "completed", "failed", "stopped"] as const;
/** The miner's task states, plus "dispatching" while the master is handing the task to its node. */
export type MasterTaskState = (typeof TASK_STATES)[number] | "dispatching";
export const FINAL_TASK_STATES: ReadonlySet<string> = new Set(["completed", "failed", "stopped"]);

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
  env: z.record(z.string(), z.string({ error: "values must be strings" }), { error: "must be an object of strings" }).optional(),
  memoryMB: z.number({ error: "must be a number" }),
  cpus: z.number({ error: "must be a number" }),
  gpus: z.number({ error: "must be a number" }).optional(),
  maxRestarts: z.number({ error: "must be a number" }).optional(),
});
export type CreateTaskRequest = z.infer<typeof createTaskSchema>;

export interface MasterTask {
  taskId: string;
  node: string;
  spec: ValidTaskSpec;
  state: MasterTaskState;
  /** Last status from the miner (heartbeat or status answer). */
  status: ReportedTaskStatus | null;
  /** Why the master gave the task up (e.g. "node dead"). */
  error: string | null;
  createdAt: number;
  updatedAt: number;
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
});

/** The view of a task the buyer gets. */
export function taskView(task: MasterTask) {
  return {
    taskId: task.taskId,
    node: task.node,
    state: task.state,
    exitCode: task.status?.exitCode ?? null,
    spec: task.spec,
    status: task.status,
    error: task.error,
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
  client: SignedClient;
  log: Logger;
  metrics: Metrics;
  /** Healthy members that may take tasks. */
  healthyMembers: () => MasterNode[];
  /** All known nodes, to explain a 503. */
  allNodes: () => MasterNode[];
}

export class TaskBook {
  private readonly db: Db;
  private readonly log: Logger;
  private readonly created;

  constructor(private readonly options: TaskBookOptions) {
    this.db = options.db;
    this.log = options.log;
    this.created = options.metrics.counter("master_tasks_created_total", "Tasks created, by outcome", ["result"]);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS master_tasks (
        task_id TEXT PRIMARY KEY, node TEXT NOT NULL, spec TEXT NOT NULL, state TEXT NOT NULL,
        status TEXT, error TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS master_tasks_node ON master_tasks (node);
    `);
    // A task caught mid-dispatch by a crash: whether its miner got it is unknown, so the buyer is told.
    const stale = this.db
      .prepare("UPDATE master_tasks SET state = 'failed', error = ?, updated_at = ? WHERE state = 'dispatching'")
      .run("master restarted while dispatching the task", Date.now());
    if (stale.changes > 0) this.log.warn({ tasks: stale.changes }, "tasks left mid-dispatch by the last run marked failed");
  }

  get(taskId: string): MasterTask | undefined {
    const row = this.db.prepare("SELECT * FROM master_tasks WHERE task_id = ?").get(taskId) as TaskRow | undefined;
    return row ? toTask(row) : undefined;
  }

  list(): MasterTask[] {
    return (this.db.prepare("SELECT * FROM master_tasks ORDER BY created_at, task_id").all() as TaskRow[]).map(toTask);
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
  async create(body: unknown): Promise<{ taskId: string; node: string }> {
    const parsed = createTaskSchema.safeParse(body ?? {});
    if (!parsed.success) throw new HttpError(400, zodProblems(parsed.error));
    const taskId = randomBytes(8).toString("hex");
    const request: TaskSpec = { taskId, runId: this.options.runId.toString(), ...parsed.data };
    let spec: ValidTaskSpec;
    try {
      spec = validateTaskSpec(request);
    } catch (error) {
      throw new HttpError(400, (error as Error).message);
    }

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
        .prepare("INSERT INTO master_tasks (task_id, node, spec, state, status, error, created_at, updated_at) VALUES (?, ?, ?, 'dispatching', NULL, NULL, ?, ?)")
        .run(taskId, node.node, JSON.stringify(spec), now, now);
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
        return { taskId, node: node.node };
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
      this.db
        .prepare("UPDATE master_tasks SET state = ?, status = ?, updated_at = ? WHERE task_id = ?")
        .run(status.state, JSON.stringify(status), Date.now(), task.taskId);
      applied++;
    }
    if (foreign.length > 0) this.log.warn({ miner: node, tasks: foreign, source }, "status for tasks that are not this node's: ignored");
    if (applied > 0) this.log.debug({ miner: node, applied, source }, "task statuses updated");
  }

  /** Marks the node's active tasks failed with `reason`; returns their ids. */
  failActive(node: string, reason: string): string[] {
    const ids = this.activeTaskIds(node);
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
    if (task.error !== null || FINAL_TASK_STATES.has(task.state)) return { task };
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
