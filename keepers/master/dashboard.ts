/**
 * The master's dashboard (issue 7): a read-only web page, served by the master itself from
 * `dashboard/` (plain HTML, CSS and vanilla JS; nothing from a CDN), that polls `GET /dashboard/state`
 * every 1.5 s and shows the run, its nodes (state, power, last heartbeat, current tasks), the tasks (status,
 * on-chain record, files, logs), the epochs with their power distribution as an SVG chart, validations,
 * disputes and claims.
 *
 * What it exposes, and to whom:
 *   - without credentials (like `/health` and `/metrics`, which the master already serves unsigned): only
 *     what is on chain or what every member of the run sees anyway — node addresses, their state at this
 *     master, last heartbeat and current task ids, power and claims (chain reads), the tasks' states, exit
 *     codes, errors and their on-chain records (draws, results, validations, disputes), and per task the
 *     number and total size of its stored files. Never a node's endpoint (discovery hides those), a task's
 *     spec (the buyer's command, image and environment), its logs, or its files' names and contents;
 *   - with the operator token (`--dashboard-token` / CN_DASHBOARD_TOKEN, sent as `Authorization: Bearer`):
 *     also the specs (environment variable names only, never their values), node endpoints, file names and
 *     downloads, and task logs (proxied from the node, as the buyer's `GET /tasks/:id/logs`). The page reads
 *     the token from the URL fragment (`/dashboard#token=…`), which browsers never send to a server, keeps it
 *     in sessionStorage and takes it out of the address bar.
 *   - `--dashboard off`: none of these routes exist (404).
 *
 * Every string the page shows goes into the DOM as text (textContent / createTextNode), never as HTML,
 * and the page is served with a Content-Security-Policy that allows only its own script and style: node
 * names, task errors, file names and logs come from nodes and are hostile input.
 *
 * The state is built at most once per `cacheMs` (whatever the number of viewers) and the chain part (epochs,
 * power, claims) is read in the background at most once per `chainRefreshMs`, for a bounded number of
 * nodes and epochs; what is final on chain (an epoch's power once its PoC validation is over, a claim once
 * made or expired) is read once.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Contracts } from "../shared/chain.js";
import { EpochClock, type PhaseName, type Timeline, phaseAt } from "../shared/epochs.js";
import { type App, HttpError } from "../shared/http.js";
import type { Logger } from "../shared/log.js";
import type { FileStore } from "./files.js";
import type { MasterNode, NodeState, NodeTracker } from "./nodes.js";
import { type AssignmentMode, type ChainTaskView, FINAL_TASK_STATES, type MasterTask, type TaskBook } from "./tasks.js";

export const DASHBOARD_DEFAULTS = {
  /** Nodes listed (by state, then address); the counts cover all. */
  maxNodes: 500,
  /** Most recent tasks listed; the counts cover all. */
  maxTasks: 200,
  /** Epochs shown (the current one and the ones before). */
  epochs: 6,
  /** Nodes whose power and claims are read from the chain (members first). */
  maxChainNodes: 200,
  cacheMs: 500,
  chainRefreshMs: 2_000,
  /** Shortest operator token accepted. */
  minTokenLength: 16,
} as const;

const RUN_STATUS = ["None", "Pending", "Active", "Completed", "Cancelled"];
const STATE_ORDER: Record<NodeState, number> = { Healthy: 0, Unhealthy: 1, Invited: 2, Discovered: 3, Dead: 4, Ejected: 5, Left: 6 };

// ------------------------------------------------------------------ the chain part: epochs, power, claims

/** The contracts the dashboard reads (views only). */
export type DashboardContracts = Pick<Contracts, "epochManager" | "proofOfCompute" | "settlement">;

export interface ClaimView {
  node: string;
  claimed: boolean;
  expired: boolean;
  forfeited: boolean;
  /** wei (18 decimals), as decimal strings. */
  work: string;
  reward: string;
}

export interface EpochView {
  epoch: string;
  phase: PhaseName;
  timeline: Timeline;
  powerFinal: boolean;
  totalPower: string;
  /** Nodes with power in the epoch, highest first. */
  power: Array<{ node: string; power: string }>;
  /** From the Claim phase on: the claims of the nodes with power (claimed, expired, or not yet). */
  claims: ClaimView[];
}

export interface ChainSnapshot {
  epoch: string;
  phase: PhaseName;
  /** The chain's time (s) when read. */
  chainTime: number;
  /** The current epoch's boundaries (null before genesis). */
  timeline: Timeline | null;
  /** Current epoch first. */
  epochs: EpochView[];
  /** When this snapshot was read (ms) and why the last read failed, if it did. */
  readAt: number;
  error: string | null;
}

/** Reads epochs, power and claims from the chain, caching what is final. */
export class EpochChainReader {
  readonly clock: EpochClock;
  /** `${epoch}` → the epoch's final total power. */
  private readonly finalTotals = new Map<string, string>();
  /** `${epoch}:${node}` → final power. */
  private readonly finalPower = new Map<string, bigint>();
  /** `${epoch}:${node}` → a claim made or expired (final). */
  private readonly finalClaims = new Map<string, ClaimView>();

  /** Epochs read: the current one and the ones before it. */
  private readonly lookBack: bigint;

  constructor(
    private readonly contracts: DashboardContracts,
    options: { clock?: EpochClock; epochs?: number } = {},
  ) {
    this.clock = options.clock ?? new EpochClock(contracts.epochManager);
    this.lookBack = BigInt(options.epochs ?? DASHBOARD_DEFAULTS.epochs);
  }

  async read(nodes: string[]): Promise<ChainSnapshot> {
    const { epoch, timeline, phase } = await this.clock.current();
    const epochs: EpochView[] = [];
    for (let e = epoch; e >= 1n && e > epoch - this.lookBack; e--) epochs.push(await this.epochView(e, nodes));
    if (this.finalPower.size > 100_000) this.finalPower.clear();
    if (this.finalClaims.size > 100_000) this.finalClaims.clear();
    return { epoch: epoch.toString(), phase, chainTime: Math.floor(this.clock.now()), timeline: timeline ?? null, epochs, readAt: Date.now(), error: null };
  }

  private async epochView(epoch: bigint, nodes: string[]): Promise<EpochView> {
    const { proofOfCompute, settlement } = this.contracts;
    const timeline = await this.clock.timeline(epoch);
    const phase = phaseAt(timeline, this.clock.now());
    const e = epoch.toString();
    let total = this.finalTotals.get(e);
    let powerFinal = total !== undefined;
    if (!powerFinal) {
      const [isFinal, totalPower] = await Promise.all([proofOfCompute.isPowerFinal(epoch), proofOfCompute.totalPower(epoch)]);
      powerFinal = isFinal;
      total = totalPower.toString();
      if (isFinal) this.finalTotals.set(e, total);
    }
    const power = await Promise.all(
      nodes.map(async (node) => {
        const key = `${e}:${node}`;
        const cached = this.finalPower.get(key);
        if (cached !== undefined) return { node, power: cached };
        const value = BigInt(await proofOfCompute.powerOf(epoch, node));
        if (powerFinal) this.finalPower.set(key, value);
        return { node, power: value };
      }),
    );
    const powered = power.filter((p) => p.power > 0n).sort((a, b) => (a.power === b.power ? (a.node < b.node ? -1 : 1) : a.power > b.power ? -1 : 1));
    let claims: ClaimView[] = [];
    if (phase === "Claim" || phase === "Closed") {
      claims = await Promise.all(
        powered.map(async ({ node }) => {
          const key = `${e}:${node}`;
          const cached = this.finalClaims.get(key);
          if (cached) return cached;
          const c = await settlement.claimOf(epoch, node);
          const claim: ClaimView = {
            node,
            claimed: Boolean(c.claimed),
            expired: Boolean(c.expired),
            forfeited: Boolean(c.forfeited),
            work: BigInt(c.work).toString(),
            reward: BigInt(c.reward).toString(),
          };
          if (claim.claimed || claim.expired) this.finalClaims.set(key, claim);
          return claim;
        }),
      );
    }
    return { epoch: e, phase, timeline, powerFinal, totalPower: total!, power: powered.map((p) => ({ node: p.node, power: p.power.toString() })), claims };
  }
}

// ------------------------------------------------------------------ the state the page polls

export interface DashboardOptions {
  runId: bigint;
  /** The master's address. */
  master: string;
  nodes: Pick<NodeTracker, "all" | "run">;
  tasks: TaskBook;
  files: FileStore;
  assignment: AssignmentMode;
  heartbeatIntervalSec: number;
  /** Epochs, power and claims (absent: the page shows none). */
  chain?: Pick<EpochChainReader, "read">;
  /** The operator token; absent: the public view only. */
  token?: string;
  logger: Logger;
  /** Several instances: whether this one leads (shown; the dashboard's routes are the leader's). */
  isLeader?: () => boolean;
  cacheMs?: number;
  chainRefreshMs?: number;
  maxNodes?: number;
  maxTasks?: number;
  maxChainNodes?: number;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export class Dashboard {
  readonly operatorView: boolean;
  private readonly tokenDigest: Buffer | undefined;
  private readonly cache = new Map<"public" | "operator", { at: number; state: Promise<Record<string, unknown>> }>();
  private chainSnapshot: ChainSnapshot | undefined;
  private chainError: string | null = null;
  private chainReading: Promise<void> | undefined;
  private chainReadAt = 0;

  constructor(private readonly options: DashboardOptions) {
    if (options.token !== undefined && options.token.length < DASHBOARD_DEFAULTS.minTokenLength) {
      throw new Error(`the dashboard token must be at least ${DASHBOARD_DEFAULTS.minTokenLength} characters long`);
    }
    this.tokenDigest = options.token === undefined ? undefined : digest(options.token);
    this.operatorView = this.tokenDigest !== undefined;
  }

  /**
   * Who is asking: "operator" with the right bearer token, "public" without an Authorization header.
   * Throws 401 for a wrong or malformed token (the page then says so instead of silently showing less).
   */
  viewerOf(request: FastifyRequest): "public" | "operator" {
    const header = request.headers.authorization;
    if (header === undefined || header === "") return "public";
    const match = /^Bearer ([\x21-\x7e]{1,512})$/.exec(header);
    if (!this.tokenDigest) throw new HttpError(401, "this master has no dashboard operator token (--dashboard-token / CN_DASHBOARD_TOKEN): only the public view exists");
    if (!match || !timingSafeEqual(digest(match[1]), this.tokenDigest)) throw new HttpError(401, "wrong dashboard token");
    return "operator";
  }

  /** The state for `viewer`, built at most once per `cacheMs`. */
  state(viewer: "public" | "operator"): Promise<Record<string, unknown>> {
    const now = Date.now();
    const cached = this.cache.get(viewer);
    if (cached && now - cached.at < (this.options.cacheMs ?? DASHBOARD_DEFAULTS.cacheMs)) return cached.state;
    const state = this.build(viewer);
    this.cache.set(viewer, { at: now, state });
    state.catch(() => this.cache.delete(viewer));
    return state;
  }

  /** Reads the chain part again when it is older than `chainRefreshMs` (in the background once there is one). */
  private async chainPart(members: string[]): Promise<void> {
    if (!this.options.chain) return;
    const due = Date.now() - this.chainReadAt >= (this.options.chainRefreshMs ?? DASHBOARD_DEFAULTS.chainRefreshMs);
    if (due && !this.chainReading) {
      this.chainReadAt = Date.now();
      this.chainReading = this.options.chain
        .read(members)
        .then((snapshot) => {
          this.chainSnapshot = snapshot;
          this.chainError = null;
        })
        .catch((error: Error) => {
          if (this.chainError === null) this.options.logger.warn({ err: error.message }, "dashboard: chain read failed; showing the last one");
          this.chainError = error.message;
        })
        .finally(() => {
          this.chainReading = undefined;
        });
    }
    // The first read is waited for (briefly), so that a fresh page shows epochs at once.
    if (!this.chainSnapshot && this.chainReading) {
      await Promise.race([this.chainReading, new Promise((r) => setTimeout(r, 3_000).unref())]);
    }
  }

  private async build(viewer: "public" | "operator"): Promise<Record<string, unknown>> {
    const operator = viewer === "operator";
    const { tasks, files } = this.options;
    const maxNodes = this.options.maxNodes ?? DASHBOARD_DEFAULTS.maxNodes;
    const maxTasks = this.options.maxTasks ?? DASHBOARD_DEFAULTS.maxTasks;
    const all = this.options.nodes.all().sort((a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state] || (a.node < b.node ? -1 : 1));
    // Power and claims: members first, then the others (they may still hold power or a claim of an epoch).
    const chainNodes = [...all.filter((n) => n.participation === "Member"), ...all.filter((n) => n.participation !== "Member")]
      .slice(0, this.options.maxChainNodes ?? DASHBOARD_DEFAULTS.maxChainNodes)
      .map((n) => n.node);
    await this.chainPart(chainNodes);
    const chain = this.chainSnapshot;

    const counts: Record<string, number> = {};
    for (const n of all) counts[n.state] = (counts[n.state] ?? 0) + 1;
    const active = tasks.activeTaskIdsByNode();
    // A node's power: the current epoch's when it has any power at all, else the latest epoch with power.
    const powerEpoch = chain?.epochs.find((e) => e.power.length > 0);
    const powerOf = new Map(powerEpoch?.power.map((p) => [p.node, p.power]) ?? []);
    const now = Date.now();
    const nodes = all.slice(0, maxNodes).map((n: MasterNode) => ({
      node: n.node,
      state: n.state,
      participation: n.participation,
      stateSince: iso(n.stateSince),
      lastHeartbeat: iso(n.lastHeartbeat),
      heartbeatAgeSec: n.lastHeartbeat === null ? null : Math.max(0, Math.round((now - n.lastHeartbeat) / 1000)),
      tasks: active.get(n.node.toLowerCase()) ?? [],
      power: powerEpoch ? (powerOf.get(n.node) ?? "0") : null,
      ...(operator ? { endpoint: n.endpoint } : {}),
    }));

    const recent = tasks.recent(maxTasks);
    const ids = recent.map((t) => t.taskId);
    const chainViews = tasks.chainViewsFor(ids);
    const stored = files.listFor(ids);
    const validations: Array<Record<string, unknown>> = [];
    const disputes: Array<Record<string, unknown>> = [];
    const taskViews = recent.map((t: MasterTask) => {
      const views = chainViews.get(t.taskId) ?? [];
      const current: ChainTaskView | undefined = views.find((v) => v.taskId === t.ledgerTaskId) ?? views[views.length - 1];
      for (const v of views) {
        for (const val of v.validations) validations.push({ ledgerTaskId: v.taskId, taskId: t.taskId, epoch: v.epoch, executor: v.assignee, validator: val.validator, ok: val.ok });
        if (v.dispute) disputes.push({ ledgerTaskId: v.taskId, taskId: t.taskId, epoch: v.epoch, executor: v.assignee, ...v.dispute });
      }
      const taskFiles = stored.get(t.taskId) ?? [];
      return {
        taskId: t.taskId,
        state: t.state,
        final: FINAL_TASK_STATES.has(t.state),
        node: t.node || null,
        exitCode: t.status?.exitCode ?? null,
        restarts: t.status?.restarts ?? 0,
        startedAt: t.status?.startedAt ?? null,
        finishedAt: t.status?.finishedAt ?? null,
        units: t.units,
        createdAt: iso(t.createdAt),
        updatedAt: iso(t.updatedAt),
        error: t.error,
        nodeError: t.status?.error ?? null,
        waiting: t.waiting,
        requeues: t.requeues,
        chain: current
          ? {
              ledgerTaskId: current.taskId,
              epoch: current.epoch,
              status: current.status,
              assignee: current.assignee,
              pay: current.pay,
              draws: current.draws,
              resultHash: current.resultHash,
              validations: current.validations.length,
              validationsOk: current.validations.filter((v) => v.ok).length,
              dispute: current.dispute?.status ?? null,
              earlier: views.length - 1,
            }
          : null,
        files: {
          count: taskFiles.length,
          bytes: taskFiles.reduce((sum, f) => sum + f.size, 0),
          ...(operator ? { list: taskFiles.map((f) => ({ name: f.name, sha256: f.sha256, size: f.size, uploadedAt: iso(f.uploadedAt) })) } : {}),
        },
        ...(operator
          ? {
              spec: {
                image: t.spec.image,
                command: t.spec.command,
                envNames: Object.keys(t.spec.env ?? {}),
                memoryMB: t.spec.memoryMB,
                cpus: t.spec.cpus,
                gpus: t.spec.gpus,
                maxRestarts: t.spec.maxRestarts,
              },
              containerId: t.status?.containerId ?? null,
            }
          : {}),
      };
    });

    const run = this.options.nodes.run;
    return {
      generatedAt: new Date(now).toISOString(),
      view: viewer,
      operatorViewAvailable: this.operatorView,
      run: {
        runId: this.options.runId.toString(),
        master: this.options.master,
        buyer: run.buyer,
        status: RUN_STATUS[run.status] ?? String(run.status),
        assignment: this.options.assignment,
        heartbeatIntervalSec: this.options.heartbeatIntervalSec,
        ...(this.options.isLeader ? { leader: this.options.isLeader() } : {}),
      },
      counts: { nodes: counts, tasks: tasks.countByState() },
      nodes,
      nodesTotal: all.length,
      tasks: taskViews,
      tasksTotal: Object.values(tasks.countByState()).reduce((a, b) => a + b, 0),
      validations,
      disputes,
      chain: chain
        ? { epoch: chain.epoch, phase: chain.phase, chainTime: chain.chainTime, timeline: chain.timeline, readAt: iso(chain.readAt), error: this.chainError }
        : { epoch: null, phase: null, chainTime: null, timeline: null, readAt: null, error: this.options.chain ? (this.chainError ?? "not read yet") : "no chain reader" },
      epochs: chain?.epochs ?? [],
      claims: (chain?.epochs ?? []).flatMap((e) => e.claims.map((c) => ({ epoch: e.epoch, ...c }))),
    };
  }
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

// ------------------------------------------------------------------ routes

const ASSETS_DIR = path.join(import.meta.dirname, "dashboard");
const ASSETS: Record<string, { file: string; type: string }> = {
  "": { file: "index.html", type: "text/html; charset=utf-8" },
  "app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "app.css": { file: "app.css", type: "text/css; charset=utf-8" },
};

/** Only the page's own script, style and requests; no frames, forms, plugins or inline code. */
export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function secure(reply: FastifyReply): FastifyReply {
  return reply.headers({
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "content-security-policy": DASHBOARD_CSP,
  });
}

export interface DashboardRouteHandlers {
  /** The task `taskId` (404 when unknown, 400 when malformed). */
  task(taskId: string): MasterTask;
  /** Its logs, proxied from its node (as the buyer's `GET /tasks/:id/logs`). */
  logs(task: MasterTask, tail: string | undefined): Promise<{ stdout: string; stderr: string }>;
  /** Sends one of its files (as the buyer's `GET /tasks/:id/files/:sha256`). */
  sendFile(task: MasterTask, sha256: string, reply: FastifyReply): FastifyReply;
}

/** Registers the page, its assets, `/dashboard/state` and (operator) the logs and file routes. */
export function registerDashboard(app: App, dashboard: Dashboard, handlers: DashboardRouteHandlers): void {
  const assets = new Map(Object.entries(ASSETS).map(([name, a]) => [name, { body: readFileSync(path.join(ASSETS_DIR, a.file)), type: a.type }]));
  for (const [name, asset] of assets) {
    app.get(name === "" ? "/dashboard" : `/dashboard/${name}`, async (_req, reply) => secure(reply).type(asset.type).send(asset.body));
  }
  app.get("/dashboard/state", async (req, reply) => {
    const viewer = dashboard.viewerOf(req);
    return secure(reply).send(await dashboard.state(viewer));
  });
  const operatorOnly = (req: FastifyRequest) => {
    if (dashboard.viewerOf(req) !== "operator") throw new HttpError(401, "the operator token is required (Authorization: Bearer <token>)");
  };
  app.get<{ Params: { taskId: string }; Querystring: { tail?: unknown } }>("/dashboard/tasks/:taskId/logs", async (req, reply) => {
    operatorOnly(req);
    const tail = req.query.tail;
    if (tail !== undefined && (typeof tail !== "string" || !/^[0-9]{1,6}$/.test(tail))) throw new HttpError(400, "tail must be a whole number of lines (at most 999999)");
    const task = handlers.task(req.params.taskId);
    try {
      const logs = await handlers.logs(task, tail as string | undefined);
      return secure(reply).send({ taskId: task.taskId, node: task.node, ...logs });
    } catch (error) {
      // An unreachable node is an answer for the page, not an internal error of the master.
      if (error instanceof HttpError && error.status >= 500) return secure(reply).code(error.status).send({ error: error.message });
      throw error;
    }
  });
  app.get<{ Params: { taskId: string; sha256: string } }>("/dashboard/tasks/:taskId/files/:sha256", async (req, reply) => {
    operatorOnly(req);
    const task = handlers.task(req.params.taskId);
    // Always a download, never rendered by the browser (a node chose the bytes).
    return handlers.sendFile(task, req.params.sha256, secure(reply).header("content-disposition", "attachment"));
  });
}
