/**
 * The master's HTTP API (keepers/PROTOCOL.md, audience = the master's address): heartbeats from member
 * nodes, the buyer's task, node and file reads, the nodes' file uploads, and (chain assignment) the spec of
 * an on-chain task for nodes with power in its epoch. Every permission is read from chain state
 * (membership, the run's buyer, the task's node, power), never from the request.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import type { FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { type App, type AppOptions, HttpError, createApp, requireSignature } from "../shared/http.js";
import { type Logger, subsystem } from "../shared/log.js";
import type { Metrics } from "../shared/metrics.js";
import type { RateLimiter } from "../shared/rate-limit.js";
import { HEADER_ADDRESS, HEADER_TIMESTAMP, type NonceStore, type Recover } from "../shared/signing.js";
import type { SignedClient } from "../shared/http.js";
import { LEDGER_TASK_ID_PATTERN, TASK_ID_PATTERN } from "../miner/task-spec.js";
import { type Dashboard, registerDashboard } from "./dashboard.js";
import { type FileStore, SHA256_PATTERN, fileNameFromHeader, fileNameProblem } from "./files.js";
import type { LedgerQueue } from "./ledger.js";
import type { NodeTracker } from "./nodes.js";
import { type MasterTask, type TaskBook, taskStatusSchema, zodProblems } from "./tasks.js";

export interface RouteContext {
  runId: bigint;
  /** The master's address (the audience of its requests). */
  address: string;
  chainId: bigint;
  nodes: NodeTracker;
  tasks: TaskBook;
  /** The chain assignment queue (chain mode only). */
  ledger?: LedgerQueue;
  files: FileStore;
  client: SignedClient;
  nonces: NonceStore;
  /** Shared rate-limit counters (several instances); default: counted in this process. */
  rateLimiter?: RateLimiter;
  logger: Logger;
  metrics: Metrics;
  maxFileBytes: number;
  health: () => Record<string, unknown>;
  /** Where signers are recovered (default: on this thread). */
  recover?: Recover;
  /** Answers some requests before the app (the forwarding of leader-only routes, cluster.ts). */
  front?: AppOptions["front"];
  /** The read-only dashboard (`GET /dashboard`, `/dashboard/state`, ...); absent: not served. */
  dashboard?: Dashboard;
}

/** An ISO 8601 date-time as `Date.toISOString` and other clocks write it (what a heartbeat's `sentAt` is). */
const ISO_DATE_TIME = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:?[0-9]{2})$/;

// Strict at the top: a heartbeat has exactly these fields (task statuses drop fields they do not know, as
// they do in the miner's status answers).
const heartbeatSchema = z.strictObject({
  runId: z.union([z.string().regex(/^(0|[1-9][0-9]{0,77})$/, "must be a decimal integer"), z.number().int().min(0)]),
  node: z.string().regex(/^0x[0-9a-fA-F]{40}$/, "must be an address"),
  tasks: z.array(taskStatusSchema).max(1000, "at most 1000 task statuses").default([]),
  sentAt: z.union(
    [
      z.string().regex(ISO_DATE_TIME, "must be an ISO 8601 date-time").refine((text) => !Number.isNaN(Date.parse(text)), "must be a valid date-time"),
      z.number().int().min(0),
    ],
    { error: "must be an ISO 8601 date-time" },
  ),
});

const missingSchema = z.strictObject({
  files: z
    .array(
      z.strictObject({
        name: z.string(),
        sha256: z.string().regex(SHA256_PATTERN, "must be 64 lowercase hex characters"),
        size: z.number().int().min(0),
      }),
    )
    .max(10_000, "at most 10000 files per request"),
});

type TaskParams = { Params: { taskId: string } };

export function buildApp(ctx: RouteContext): App {
  const { runId, logger, nodes, tasks, files } = ctx;
  const heartbeatLog = subsystem(logger, "Heartbeat");
  const tasksLog = subsystem(logger, "Tasks");
  const storageLog = subsystem(logger, "Storage");
  const signed = requireSignature({
    chainId: ctx.chainId,
    audience: ctx.address.toLowerCase(),
    nonces: ctx.nonces,
    rateLimit: { max: 1200, windowMs: 60_000 },
    rateLimiter: ctx.rateLimiter,
    recover: ctx.recover,
  });
  const refusedHeartbeats = ctx.metrics.counter("master_heartbeats_refused_total", "Heartbeats refused, by reason", ["reason"]);

  const requireBuyer = async (req: FastifyRequest) => {
    if (req.signer.toLowerCase() !== nodes.run.buyer.toLowerCase()) {
      throw new HttpError(403, `${req.signer} is not the buyer of run ${runId}`);
    }
  };
  /** Signed, by the run's buyer. */
  const buyerOnly = { preHandler: [signed, requireBuyer] };

  const taskById = (taskId: string): MasterTask => {
    if (!TASK_ID_PATTERN.test(taskId)) throw new HttpError(400, "taskId must match [A-Za-z0-9_-]{1,64}");
    const task = tasks.get(taskId);
    if (!task) throw new HttpError(404, `no task ${taskId} in run ${runId}`);
    return task;
  };
  const taskParam = (req: FastifyRequest<TaskParams>): MasterTask => taskById(req.params.taskId);

  /** The task, when the signer is the node it was sent to. */
  const taskOfSigner = (req: FastifyRequest<TaskParams>): MasterTask => {
    const task = taskParam(req);
    if (task.node.toLowerCase() !== req.signer.toLowerCase()) {
      throw new HttpError(403, `${req.signer} is not the node task ${task.taskId} was sent to`);
    }
    return task;
  };

  /**
   * Answers a 5xx the master expects (no healthy node, an unreachable miner) itself, logged as a warning
   * with its figures: the shared error handler would log it as an internal error.
   */
  const expected = async <T>(reply: FastifyReply, log: Logger, work: () => Promise<T>): Promise<T | FastifyReply> => {
    try {
      return await work();
    } catch (error) {
      if (error instanceof HttpError && error.status >= 500) {
        log.warn({ status: error.status, reason: error.message }, "request answered with an upstream or capacity error");
        return reply.code(error.status).send({ error: error.message });
      }
      throw error;
    }
  };

  const app = createApp({ logger, metrics: ctx.metrics, bodyLimit: "1mb", health: ctx.health, front: ctx.front });

  // ---------------------------------------------------------------- heartbeats (member nodes)
  app.post("/heartbeat", { preHandler: signed }, async (req) => {
    const signer = req.signer;
    const refuse = (status: number, reason: string, label: string): never => {
      refusedHeartbeats.inc({ reason: label });
      heartbeatLog.warn({ miner: signer, status, reason }, "heartbeat refused");
      throw new HttpError(status, reason);
    };
    const parsed = heartbeatSchema.safeParse(req.body);
    if (!parsed.success) refuse(400, zodProblems(parsed.error), "malformed");
    const body = parsed.data!;
    if (body.node.toLowerCase() !== signer.toLowerCase()) {
      refuse(403, `heartbeat for node ${body.node} signed by ${signer}: a node heartbeats only for itself`, "other_node");
    }
    if (BigInt(body.runId) !== runId) refuse(403, `this master coordinates run ${runId}, not run ${body.runId}`, "other_run");
    if (nodes.run.master.toLowerCase() !== ctx.address.toLowerCase()) {
      refuse(403, `${ctx.address} is no longer the master of run ${runId} (it is ${nodes.run.master})`, "not_master");
    }
    if (!(await nodes.isMember(signer))) refuse(403, `${signer} is not a member of run ${runId}`, "not_member");
    // The task statuses reach the task book through the tracker (at the leader, when instances share Redis).
    const state = await nodes.recordHeartbeat(signer, String(body.sentAt), body.tasks);
    return { ok: true, state };
  });

  // ---------------------------------------------------------------- tasks (buyer)
  app.post("/tasks", buyerOnly, async (req, reply) =>
    expected(reply, tasksLog, async () => {
      const created = await tasks.create(req.body);
      // Local: sent to its node (201). Chain: queued until the chain draws its node (202).
      return reply.code(created.state === "queued" ? 202 : 201).send(created);
    }),
  );

  app.get("/tasks", buyerOnly, async () => ({ tasks: tasks.list().map((task) => tasks.view(task)) }));

  app.get<TaskParams>("/tasks/:taskId", buyerOnly, async (req) => {
    const task = taskParam(req);
    const { task: fresh, refreshError } = await tasks.refresh(task, nodes.get(task.node));
    if (refreshError) tasksLog.info({ taskId: task.taskId, miner: task.node, err: refreshError }, "status not refreshed from the node; answering the last known one");
    return { ...tasks.view(fresh), ...(refreshError ? { refreshError } : {}) };
  });

  // ---------------------------------------------------------------- on-chain task specs (nodes with power)
  app.get<{ Params: { ledgerTaskId: string } }>("/ledger/tasks/:ledgerTaskId/spec", { preHandler: signed }, async (req) => {
    if (!LEDGER_TASK_ID_PATTERN.test(req.params.ledgerTaskId)) throw new HttpError(400, "ledgerTaskId must be a positive decimal integer");
    if (!ctx.ledger) throw new HttpError(404, `this master assigns tasks locally: run ${runId} has no on-chain tasks`);
    return ctx.ledger.specFor(req.params.ledgerTaskId, req.signer);
  });

  /** The task's logs, asked of its node with the master's signature. Throws HttpError 502 when it does not answer. */
  const proxyLogs = async (task: MasterTask, tail: string | undefined): Promise<{ stdout: string; stderr: string }> => {
    const node = nodes.get(task.node);
    if (!node?.endpoint) throw new HttpError(502, `no endpoint known for node ${task.node}`);
    const url = `${node.endpoint}/tasks/${task.taskId}/logs${tail !== undefined ? `?tail=${tail}` : ""}`;
    let answer;
    try {
      answer = await ctx.client.request<{ stdout?: unknown; stderr?: unknown; error?: string }>("GET", url, { audience: task.node.toLowerCase() });
    } catch (error) {
      throw new HttpError(502, `node ${task.node} did not answer for the logs: ${(error as Error).message}`);
    }
    if (answer.status !== 200) {
      throw new HttpError(502, `node ${task.node} answered ${answer.status} for the logs: ${answer.body?.error ?? ""}`.trim());
    }
    const { stdout, stderr } = answer.body ?? {};
    if (typeof stdout !== "string" || typeof stderr !== "string") throw new HttpError(502, `node ${task.node} answered malformed logs`);
    tasksLog.debug({ taskId: task.taskId, miner: task.node, stdoutBytes: stdout.length, stderrBytes: stderr.length }, "logs proxied");
    return { stdout, stderr };
  };

  app.get<TaskParams & { Querystring: { tail?: unknown } }>("/tasks/:taskId/logs", buyerOnly, async (req, reply) =>
    expected(reply, tasksLog, async () => {
      const task = taskParam(req);
      const tail = req.query.tail;
      if (tail !== undefined && (typeof tail !== "string" || !/^[0-9]{1,6}$/.test(tail))) {
        throw new HttpError(400, "tail must be a whole number of lines (at most 999999)");
      }
      return { taskId: task.taskId, node: task.node, ...(await proxyLogs(task, tail as string | undefined)) };
    }),
  );

  app.get("/nodes", buyerOnly, async () => ({
    nodes: nodes.all().map((n) => ({
      node: n.node,
      state: n.state,
      participation: n.participation,
      lastHeartbeat: n.lastHeartbeat === null ? null : new Date(n.lastHeartbeat).toISOString(),
      stateSince: new Date(n.stateSince).toISOString(),
      tasks: tasks.activeTaskIds(n.node),
    })),
  }));

  // ---------------------------------------------------------------- files
  app.post<TaskParams>("/tasks/:taskId/files/missing", { preHandler: signed }, async (req) => {
    const task = taskOfSigner(req);
    const parsed = missingSchema.safeParse(req.body);
    if (!parsed.success) throw new HttpError(400, zodProblems(parsed.error));
    parsed.data.files.forEach((f, i) => {
      const problem = fileNameProblem(f.name);
      if (problem) throw new HttpError(400, `body.files.${i}.name: ${problem}`);
    });
    return { missing: files.missing(task.taskId, parsed.data.files) };
  });

  app.get<TaskParams>("/tasks/:taskId/files", buyerOnly, async (req) => {
    const task = taskParam(req);
    return {
      files: files.list(task.taskId).map((f) => ({ name: f.name, sha256: f.sha256, size: f.size, uploadedAt: new Date(f.uploadedAt).toISOString() })),
    };
  });

  // Downloads are streamed from the blob file, never read into memory.
  const sendFile = (task: MasterTask, sha256: string, reply: FastifyReply): FastifyReply => {
    if (!SHA256_PATTERN.test(sha256)) throw new HttpError(400, "sha256 must be 64 lowercase hex characters");
    const file = files.find(task.taskId, sha256);
    const size = file ? files.blobSize(sha256) : undefined;
    if (!file || size === undefined) throw new HttpError(404, `task ${task.taskId} has no file ${sha256}`);
    return reply.code(200).headers({ "content-type": "application/octet-stream", "content-length": String(size) }).send(createReadStream(files.blobPath(sha256)));
  };
  app.get<TaskParams & { Params: { sha256: string } }>("/tasks/:taskId/files/:sha256", buyerOnly, async (req, reply) =>
    sendFile(taskParam(req), req.params.sha256, reply),
  );

  // The upload route is the only one allowed large bodies (its own bodyLimit; every other route stays at
  // 1 MB). Before reading up to maxFileBytes (onRequest runs before the body is read): the claimed signer
  // must be the task's node and the timestamp fresh, so a stranger cannot make the master buffer large
  // bodies. The signature itself (which covers the body) is verified after, by `signed`.
  app.put<TaskParams & { Params: { sha256: string } }>(
    "/tasks/:taskId/files/:sha256",
    {
      bodyLimit: ctx.maxFileBytes,
      onRequest: async (req) => {
        const claimed = req.headers[HEADER_ADDRESS] as string | undefined;
        const timestamp = Number(req.headers[HEADER_TIMESTAMP]);
        if (!claimed || !Number.isFinite(timestamp) || Math.abs(Math.floor(Date.now() / 1000) - timestamp) > 60) {
          throw new HttpError(401, "upload refused before its body: signature headers missing or stale");
        }
        const task = taskParam(req);
        if (task.node.toLowerCase() !== claimed.toLowerCase()) {
          throw new HttpError(403, `${claimed} is not the node task ${task.taskId} was sent to`);
        }
      },
      preHandler: signed,
    },
    async (req) => {
      const task = taskOfSigner(req);
      const sha256 = req.params.sha256;
      if (!SHA256_PATTERN.test(sha256)) throw new HttpError(400, "sha256 must be 64 lowercase hex characters");
      const header = req.headers["x-cn-file-name"] as string | undefined;
      if (header === undefined) throw new HttpError(400, "header x-cn-file-name (the file's relative name) is required");
      const name = fileNameFromHeader(header);
      const problem = fileNameProblem(name);
      if (problem) {
        storageLog.warn({ taskId: task.taskId, miner: req.signer, name: JSON.stringify(name), problem }, "file refused: bad name");
        throw new HttpError(400, `x-cn-file-name ${problem}`);
      }
      const type = (req.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
      if (type !== "application/octet-stream") throw new HttpError(400, "content-type must be application/octet-stream");
      const bytes = req.rawBody ?? Buffer.alloc(0);
      const actual = createHash("sha256").update(bytes).digest("hex");
      if (actual !== sha256) {
        storageLog.warn({ taskId: task.taskId, miner: req.signer, name, claimed: sha256, actual, size: bytes.length }, "file refused: hash mismatch");
        throw new HttpError(400, `the body hashes to ${actual}, not ${sha256}`);
      }
      const { stored, size } = await files.put(task.taskId, name, sha256, bytes);
      return { sha256, size, stored };
    },
  );

  // ---------------------------------------------------------------- dashboard (read-only; dashboard.ts)
  if (ctx.dashboard) {
    registerDashboard(app, ctx.dashboard, {
      task: taskById,
      logs: proxyLogs,
      sendFile,
    });
  }

  return app;
}
