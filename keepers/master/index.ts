/**
 * The master keeper: coordinates one training run. It follows the run's events, invites registered and
 * validated nodes, takes their heartbeats, ejects the dead, hands the buyer's tasks to nodes and stores the
 * files their tasks sync back. With `assignment: "chain"` (the default) each task is created on TaskLedger
 * and goes to the node the chain drew by power (ledger.ts); with "local" the master picks the healthy
 * member with the fewest tasks and nothing goes on chain. See nodes.ts (state machine), tasks.ts,
 * ledger.ts, files.ts, routes.ts.
 *
 *   startMaster(options)  programmatic start (tests, devnet), options already validated
 *   masterCommand()       `computenet master`: flags + env, validation, key loading, signal handling
 */
import type { AddressInfo } from "node:net";
import path from "node:path";
import { Command, Option } from "commander";
import { type NonceManager, getAddress } from "ethers";
import { z } from "zod";
import { type Chain, EventFollower, connectChain, contractInterfaces, headBlock, logChainSettings } from "../shared/chain.js";
import {
  addCommonOptions,
  addFeeOptions,
  addRedisOption,
  COMMON_OPTIONS,
  commonSchema,
  ConfigError,
  integerOption,
  loadPrivateKey,
  type OptionNames,
  parseConfig,
  optionNames,
  REDIS_OPTIONS,
  redisUrlSchema,
} from "../shared/config.js";
import { type App, SignedClient, closeServer, listen } from "../shared/http.js";
import { LeaderLease } from "../shared/leader-lease.js";
import { Lifecycle } from "../shared/lifecycle.js";
import { type Logger, createLogger, subsystem } from "../shared/log.js";
import { createMetrics, followerMetrics, txMetrics } from "../shared/metrics.js";
import { RedisNonceStore, RedisRateLimiter, SharedRedis, keyPrefix } from "../shared/redis.js";
import { DEFAULT_VERIFY_WORKERS, SignaturePool } from "../shared/signature-pool.js";
import { KeeperStore } from "../shared/store.js";
import { TxSender, decodeRevert } from "../shared/tx.js";
import { RunStatus } from "../../scripts/lib/protocol.js";
import { RedisHeartbeatStore, leaderForwarder } from "./cluster.js";
import { DASHBOARD_DEFAULTS, Dashboard, EpochChainReader } from "./dashboard.js";
import { DiscoveryClient } from "./discovery.js";
import { FileStore } from "./files.js";
import { LedgerQueue } from "./ledger.js";
import { type MasterNode, NodeTracker, type Transition } from "./nodes.js";
import { buildApp } from "./routes.js";
import { type AssignmentMode, type MasterTask, TaskBook } from "./tasks.js";

export const MASTER_DEFAULTS = {
  port: 8720,
  dataDir: "data/master",
  heartbeatIntervalSec: 30,
  unhealthyAfterMisses: 2,
  deadAfterMisses: 4,
  inviteExpirySec: 1000,
  reconcileMs: 2000,
  maxFileBytes: 64 * 1024 * 1024,
  assignment: "chain" as AssignmentMode,
  leaderLeaseMs: 10_000,
  verifyWorkers: DEFAULT_VERIFY_WORKERS,
} as const;

export interface MasterOptions {
  rpcUrl: string;
  /** deployments/<network>.json. */
  deployment: string;
  /** Holds master.sqlite (node states, tasks, files, event cursor, request nonces) and blobs/. */
  dataDir: string;
  host: string;
  /** 0: any free port. */
  port: number;
  /** Chain polling interval, ms (default: the chain's profile, keepers/shared/profile.ts). */
  pollMs?: number;
  /** Blocks to stay behind the head (default: the chain's profile). */
  confirmations?: number;
  /** Cap on every transaction's max fee per gas, gwei (default: none). */
  maxFeeGwei?: string | number;
  logLevel?: string;
  /** The run master's key (0x + 64 hex). */
  privateKey: string;
  runId: bigint;
  /** Base URL of the discovery service. */
  discoveryUrl: string;
  /** Where miners reach this master (sent in invites); default http://<host>:<bound port>. */
  publicUrl?: string;
  heartbeatIntervalSec?: number;
  unhealthyAfterMisses?: number;
  deadAfterMisses?: number;
  inviteExpirySec?: number;
  reconcileMs?: number;
  maxFileBytes?: number;
  /**
   * "chain" (default): tasks are created on TaskLedger and sent to the node the chain draws, paid from the
   * run's escrow. "local": the master sends each task to the healthy member with the fewest tasks, with
   * nothing on chain and no pay (private runs, tests of the keepers alone).
   */
  assignment?: AssignmentMode;
  /** Interval of the chain assignment queue's passes (default 1000 ms). */
  ledgerTickMs?: number;
  /**
   * Redis shared by several instances of this master behind a load balancer (cluster.ts): request nonces,
   * rate-limit counters, heartbeats and the leader lease. Unset: one instance, everything in its SQLite file.
   */
  redisUrl?: string;
  /** With Redis: where the other instances reach this one (default http://<host>:<bound port>). */
  instanceUrl?: string;
  /** With Redis: lifetime of the leader lease, ms (default 10 000): the longest pause of the duties after a leader dies. */
  leaderLeaseMs?: number;
  /** Worker threads recovering request signatures (default 1; 0: on the event loop). */
  verifyWorkers?: number;
  /**
   * The read-only dashboard at `/dashboard` (default true): unsigned, public information only (dashboard.ts).
   * False: its routes do not exist.
   */
  dashboard?: boolean;
  /**
   * The dashboard's operator token (at least 16 characters): with it (`/dashboard#token=…`) the page also
   * shows task specs, node endpoints, logs and file downloads. Unset: the public view only.
   */
  dashboardToken?: string;
  /** Defaults to a pino logger on stdout with component "master" and node = the master's address. */
  logger?: Logger;
}

export interface MasterService {
  /** Where the HTTP API listens. */
  url: string;
  /** The URL given to miners in invites. */
  publicUrl: string;
  /** The dashboard page (without the operator token), or undefined when it is off. */
  dashboardUrl?: string;
  /** The master's address (the audience of requests to it). */
  address: string;
  runId: bigint;
  logger: Logger;
  nodes(): MasterNode[];
  node(address: string): MasterNode | undefined;
  /** State changes in order (all nodes, or one). */
  transitions(node?: string): Transition[];
  tasks(): MasterTask[];
  task(taskId: string): MasterTask | undefined;
  assignment: AssignmentMode;
  /** Whether this instance does the chain-writing duties: always without Redis; with it, while it holds the leader lease. */
  isLeader(): boolean;
  /** With Redis: this instance's id in the leader lease. */
  instanceId?: string;
  /** Runs one pass of the chain assignment queue now (chain mode; a no-op in local mode). */
  ledgerPass(): Promise<void>;
  /** Runs one reconcile pass now (discovery, invites). */
  reconcile(): Promise<void>;
  /** Handles every event up to the chain head now. */
  syncChain(): Promise<void>;
  stop(): Promise<void>;
}

export async function startMaster(options: MasterOptions): Promise<MasterService> {
  const settings = {
    heartbeatIntervalSec: options.heartbeatIntervalSec ?? MASTER_DEFAULTS.heartbeatIntervalSec,
    unhealthyAfterMisses: options.unhealthyAfterMisses ?? MASTER_DEFAULTS.unhealthyAfterMisses,
    deadAfterMisses: options.deadAfterMisses ?? MASTER_DEFAULTS.deadAfterMisses,
    inviteExpirySec: options.inviteExpirySec ?? MASTER_DEFAULTS.inviteExpirySec,
    reconcileMs: options.reconcileMs ?? MASTER_DEFAULTS.reconcileMs,
    maxFileBytes: options.maxFileBytes ?? MASTER_DEFAULTS.maxFileBytes,
    assignment: options.assignment ?? MASTER_DEFAULTS.assignment,
  };
  if (settings.deadAfterMisses <= settings.unhealthyAfterMisses) {
    throw new ConfigError([`deadAfterMisses (${settings.deadAfterMisses}) must be greater than unhealthyAfterMisses (${settings.unhealthyAfterMisses})`]);
  }
  const runId = options.runId;
  const chain = await connectChain({
    rpcUrl: options.rpcUrl,
    deploymentFile: options.deployment,
    privateKey: options.privateKey,
    pollingIntervalMs: options.pollMs,
    confirmations: options.confirmations,
    maxFeeGwei: options.maxFeeGwei,
  });
  const wallet = chain.wallet!;
  const address = wallet.address;
  const logger = options.logger ?? createLogger({ component: "master", node: address, level: options.logLevel });
  const startup = subsystem(logger, "Startup");
  logChainSettings(startup, chain);
  let store: KeeperStore | undefined;
  let app: App | undefined;
  let pool: SignaturePool | undefined;
  let redis: SharedRedis | undefined;
  let lease: LeaderLease | undefined;
  try {
    const run = await readRun(chain, runId);
    if (getAddress(run.master) !== address) {
      throw new ConfigError([
        `the key (CN_PRIVATE_KEY or ${COMMON_OPTIONS.keyFile.flag}) is ${address}, which is not the master of run ${runId}: its master is ${getAddress(run.master)}`,
      ]);
    }
    if (run.status !== RunStatus.Pending && run.status !== RunStatus.Active) {
      startup.warn({ runId: runId.toString(), status: run.status }, "the run has ended: the master serves reads but invites and ejects nothing");
    }

    store = new KeeperStore(path.join(options.dataDir, "master.sqlite"));
    claimDataDir(store, options.dataDir, { chainId: chain.chainId.toString(), trainingRuns: chain.deployment.contracts.TrainingRuns.address, runId: runId.toString(), master: address });

    if (options.redisUrl) {
      const prefix = keyPrefix(chain.chainId, chain.deployment.contracts.TrainingRuns.address, "master", `run-${runId}`);
      redis = new SharedRedis({ url: options.redisUrl, prefix, logger: subsystem(logger, "Cluster") });
      // Not fatal: until Redis answers, signed requests get 503, liveness is not judged and nobody leads.
      await redis.waitReady();
    }
    const shared = redis;
    const metrics = createMetrics("master");
    const client = new SignedClient(wallet, chain.chainId);
    const tx = new TxSender({ logger, interfaces: contractInterfaces(), signer: chain.signer as NonceManager, metrics: txMetrics(metrics, "master") });
    const files = new FileStore(store.db, options.dataDir, subsystem(logger, "Storage"));
    let tasks: TaskBook | undefined;
    const runView = { buyer: getAddress(run.buyer), master: getAddress(run.master), status: run.status };
    // The public URL depends on the bound port; the tracker reads it when it first invites.
    let publicUrl = options.publicUrl ?? "";
    const nodeOptions = {
      db: store.db,
      chain,
      wallet,
      runId,
      run: runView,
      client,
      discovery: new DiscoveryClient(client, options.discoveryUrl.replace(/\/+$/, "")),
      tx,
      logger,
      metrics,
      get publicUrl() {
        return publicUrl;
      },
      ...settings,
      onNodeDown: (node: string, reason: string) => void tasks?.failActive(node, reason),
      // The task book is the leader's: other instances only pass the statuses on through Redis.
      onHeartbeat: (node: string, statuses: Parameters<TaskBook["applyStatuses"]>[1]) => {
        if (statuses.length > 0 && (!shared || lease?.isLeader())) tasks?.applyStatuses(node, statuses, "heartbeat");
      },
      heartbeats: shared ? new RedisHeartbeatStore(shared) : undefined,
      leader: shared ? { isLeader: () => lease?.isLeader() ?? false, confirm: async () => (lease ? lease.confirm() : false) } : undefined,
    };
    const nodes = new NodeTracker(nodeOptions);
    tasks = new TaskBook({
      db: store.db,
      runId,
      assignment: settings.assignment,
      client,
      log: subsystem(logger, "Tasks"),
      metrics,
      healthyMembers: () => nodes.healthyMembers(),
      allNodes: () => nodes.all(),
    });
    const ledger =
      settings.assignment === "chain"
        ? new LedgerQueue({
            chain,
            runId,
            tasks,
            nodes,
            client,
            tx,
            logger,
            metrics,
            tickMs: options.ledgerTickMs,
            mayWrite: shared ? async () => (lease ? lease.confirm() : false) : undefined,
          })
        : undefined;
    const follower = new EventFollower({
      chain,
      store,
      name: `master-run-${runId}`,
      logger: subsystem(logger, "Chain"),
      handle: (event) => (event.contract === "TaskLedger" ? ledger!.handleEvent(event) : nodes.handleEvent(event)),
      // TaskLedger's events matter only in chain mode: a local master has no on-chain tasks.
      contracts: ledger ? ["TrainingRuns", "ChallengeBoard", "TaskLedger"] : ["TrainingRuns", "ChallengeBoard"],
      pollMs: chain.settings.pollMs,
      confirmations: chain.settings.confirmations,
    });

    const dashboardOn = options.dashboard ?? true;
    const dashboard = dashboardOn
      ? new Dashboard({
          runId,
          master: address,
          nodes,
          tasks,
          files,
          assignment: settings.assignment,
          heartbeatIntervalSec: settings.heartbeatIntervalSec,
          chain: new EpochChainReader(chain.contracts, { clock: ledger?.clock }),
          token: options.dashboardToken,
          logger: subsystem(logger, "Dashboard"),
          isLeader: shared ? () => lease?.isLeader() ?? false : undefined,
        })
      : undefined;

    followerMetrics(metrics, "master", { head: () => headBlock(chain.provider), cursor: () => follower.cursor, confirmations: chain.settings.confirmations });
    pool = await SignaturePool.start({ size: options.verifyWorkers ?? MASTER_DEFAULTS.verifyWorkers, logger });
    app = buildApp({
      runId,
      address,
      chainId: chain.chainId,
      nodes,
      tasks,
      ledger,
      files,
      client,
      nonces: shared ? new RedisNonceStore(shared) : store,
      rateLimiter: shared ? new RedisRateLimiter(shared, MASTER_RATE_LIMIT) : undefined,
      logger,
      metrics,
      maxFileBytes: settings.maxFileBytes,
      health: () => ({
        runId: runId.toString(),
        master: address,
        assignment: settings.assignment,
        cursor: follower.cursor,
        nodes: nodes.all().length,
        dashboard: dashboard ? (dashboard.operatorView ? "public+operator" : "public") : "off",
        ...(shared
          ? {
              ...shared.health(),
              ...(shared.isUp() ? {} : { status: "degraded", error: "Redis unreachable: signed requests are refused with 503" }),
              instance: lease?.holder.id ?? null,
              leader: lease?.isLeader() ?? false,
              leaderInstance: lease?.leader()?.id ?? null,
            }
          : {}),
      }),
      recover: pool.recover,
      // Requests for the leader's task book go to the leader (cluster.ts); the rest is answered here.
      front: shared ? leaderForwarder({ lease: () => lease, logger: subsystem(logger, "Cluster") }) : undefined,
      dashboard,
    });

    // Catch up with the chain before serving: node states are then as the events left them.
    const before = follower.cursor;
    await follower.poll();
    startup.info({ cursorBefore: before, cursor: follower.cursor, nodes: nodes.all().length }, "caught up with the chain");

    const server = await listen(app, options.port, options.host);
    const port = (server.address() as AddressInfo).port;
    const url = `http://${options.host.includes(":") ? `[${options.host}]` : options.host}:${port}`;
    publicUrl ||= url;
    if (shared) {
      const leading = metrics.gauge("master_leader", "1 while this instance holds the leader lease (several instances on Redis)");
      leading.set(0);
      lease = new LeaderLease({
        redis: shared,
        key: "leader",
        url: options.instanceUrl ?? url,
        ttlMs: options.leaderLeaseMs ?? MASTER_DEFAULTS.leaderLeaseMs,
        logger: subsystem(logger, "Cluster"),
        onAcquired: () => {
          // The previous leader sent transactions with the same key: take the next nonce from the chain.
          (chain.signer as NonceManager).reset();
          nodes.kick();
          void ledger?.pass();
          leading.set(1);
        },
        onLost: () => leading.set(0),
      });
      await lease.start();
    }

    // Event polling is driven here (not by follower.start) so that stop() can wait for the poll in flight.
    let stopped = false;
    let pollTimer: NodeJS.Timeout | undefined;
    let polling: Promise<unknown> = Promise.resolve();
    const pollLoop = () => {
      if (stopped) return;
      polling = follower.poll().finally(() => {
        if (!stopped) pollTimer = setTimeout(pollLoop, follower.nextPollDelayMs);
      });
    };
    pollLoop();
    nodes.start();
    ledger?.start();
    startup.info(
      {
        url,
        publicUrl,
        runId: runId.toString(),
        buyer: runView.buyer,
        discoveryUrl: options.discoveryUrl,
        ...settings,
        dashboard: dashboard ? `${url}/dashboard (${dashboard.operatorView ? "public view; operator view with the token" : "public view only"})` : "off",
      },
      "master started",
    );

    const listening = app;
    const openPool = pool;
    const openStore = store;
    let stopping: Promise<void> | undefined;
    return {
      url,
      publicUrl,
      dashboardUrl: dashboard ? `${url}/dashboard` : undefined,
      address,
      runId,
      logger,
      nodes: () => nodes.all(),
      node: (n) => nodes.get(n),
      transitions: (n) => nodes.transitions(n),
      tasks: () => tasks!.list(),
      task: (id) => tasks!.get(id),
      assignment: settings.assignment,
      isLeader: () => (lease ? lease.isLeader() : true),
      instanceId: lease?.holder.id,
      ledgerPass: async () => {
        await ledger?.pass();
      },
      reconcile: () => nodes.reconcile(),
      syncChain: async () => {
        await polling;
        await follower.poll();
      },
      stop() {
        stopping ??= (async () => {
          stopped = true;
          if (pollTimer) clearTimeout(pollTimer);
          await ledger?.stop();
          await nodes.stop();
          await polling.catch(() => undefined);
          // Duties stopped: hand the lease over at once rather than after it expires.
          await lease?.stop();
          // Requests in flight get 3 s to finish; idle connections are closed at once.
          await closeServer(listening, 3_000);
          await openPool.close();
          nodes.flushHeartbeats(); // heartbeats answered during the grace period
          openStore.close();
          shared?.close();
          chain.provider.destroy();
          startup.info({ runId: runId.toString() }, "master stopped");
        })();
        return stopping;
      },
    };
  } catch (error) {
    await lease?.stop();
    if (app) await closeServer(app);
    await pool?.close();
    store?.close();
    redis?.close();
    chain.provider.destroy();
    throw error;
  }
}

/** Signed requests per address per minute at the master (heartbeats, the buyer's calls, uploads). */
const MASTER_RATE_LIMIT = { max: 1200, windowMs: 60_000 };

async function readRun(chain: Chain, runId: bigint): Promise<{ buyer: string; master: string; status: number }> {
  try {
    const info = await chain.contracts.trainingRuns.getRun(runId);
    return { buyer: info.buyer, master: info.master, status: Number(info.status) };
  } catch (error) {
    const data = (error as { data?: string }).data;
    const decoded = decodeRevert(data, contractInterfaces());
    if (decoded?.name === "TrainingRunsUnknownRun") {
      throw new ConfigError([`--run-id (CN_RUN_ID): run ${runId} does not exist on chain ${chain.chainId}`]);
    }
    throw error;
  }
}

/** A data dir serves one master of one run on one deployment: refuse to mix states. */
function claimDataDir(store: KeeperStore, dataDir: string, identity: Record<string, string>): void {
  const key = "master:identity";
  const text = JSON.stringify(identity);
  const existing = store.get(key);
  if (existing === undefined) store.set(key, text);
  else if (existing !== text) {
    throw new ConfigError([`${COMMON_OPTIONS.dataDir.flag}: ${dataDir} holds the state of another master, run or deployment (${existing}); use another data dir`]);
  }
}

// ------------------------------------------------------------------ command

const MASTER_OPTIONS: OptionNames = {
  ...COMMON_OPTIONS,
  ...REDIS_OPTIONS,
  ...optionNames(
    "runId",
    "discoveryUrl",
    "publicUrl",
    "heartbeatIntervalSec",
    "unhealthyAfterMisses",
    "deadAfterMisses",
    "inviteExpirySec",
    "reconcileMs",
    "maxFileBytes",
    "assignment",
    "instanceUrl",
    "leaderLeaseMs",
    "verifyWorkers",
    "dashboard",
    "dashboardToken",
  ),
};

const httpUrl = z
  .string({ error: (issue) => (issue.input === undefined ? "is required" : "must be a string") })
  .refine((value) => {
    try {
      const url = new URL(value);
      return (url.protocol === "http:" || url.protocol === "https:") && url.username === "" && url.password === "";
    } catch {
      return false;
    }
  }, "must be an http(s) URL without credentials");

export const masterSchema = commonSchema
  .extend({
    runId: z
      .string({ error: (issue) => (issue.input === undefined ? "is required" : "must be a string") })
      .regex(/^[1-9][0-9]{0,77}$/, "must be a positive decimal integer (the run's id)")
      .transform((value) => BigInt(value)),
    discoveryUrl: httpUrl,
    publicUrl: httpUrl.optional(),
    heartbeatIntervalSec: integerOption(1, 86_400),
    unhealthyAfterMisses: integerOption(1, 1_000),
    deadAfterMisses: integerOption(2, 1_000),
    inviteExpirySec: integerOption(10, 30 * 86_400),
    reconcileMs: integerOption(100, 3_600_000),
    maxFileBytes: integerOption(1, 1024 * 1024 * 1024),
    assignment: z.enum(["chain", "local"], { error: 'must be "chain" or "local"' }),
    redisUrl: redisUrlSchema,
    instanceUrl: httpUrl.optional(),
    leaderLeaseMs: integerOption(1_000, 600_000),
    verifyWorkers: integerOption(0, 16),
    dashboard: z
      .enum(["on", "off"], { error: 'must be "on" or "off"' })
      .default("on")
      .transform((value) => value === "on"),
    dashboardToken: z
      .string()
      .min(DASHBOARD_DEFAULTS.minTokenLength, `must be at least ${DASHBOARD_DEFAULTS.minTokenLength} characters`)
      .max(512, "must be at most 512 characters")
      .regex(/^[\x21-\x7e]+$/, "must be printable ASCII without spaces")
      .optional(),
  })
  .refine((c) => c.deadAfterMisses > c.unhealthyAfterMisses, {
    path: ["deadAfterMisses"],
    message: "must be greater than --unhealthy-after-misses",
  });

export type MasterConfig = z.infer<typeof masterSchema>;

/** `computenet master`. */
export function masterCommand(): Command {
  const command = new Command("master").description(
    "coordinate one training run: invite validated nodes, take heartbeats, eject dead nodes, serve the buyer's tasks and files",
  );
  addCommonOptions(command, { port: MASTER_DEFAULTS.port, dataDir: MASTER_DEFAULTS.dataDir });
  addFeeOptions(command);
  addRedisOption(command, "request nonces, rate-limit counters, heartbeats and the leader lease");
  const o = MASTER_OPTIONS;
  const d = MASTER_DEFAULTS;
  command
    .addOption(new Option(`${o.runId.flag} <id>`, "the training run this master coordinates (required)").env(o.runId.env!))
    .addOption(new Option(`${o.discoveryUrl.flag} <url>`, "discovery service base URL (required)").env(o.discoveryUrl.env!))
    .addOption(new Option(`${o.publicUrl.flag} <url>`, "URL miners reach this master at (default http://<host>:<port>)").env(o.publicUrl.env!))
    .addOption(new Option(`${o.heartbeatIntervalSec.flag} <sec>`, "expected heartbeat interval").env(o.heartbeatIntervalSec.env!).default(String(d.heartbeatIntervalSec)))
    .addOption(new Option(`${o.unhealthyAfterMisses.flag} <n>`, "missed intervals before a node is Unhealthy").env(o.unhealthyAfterMisses.env!).default(String(d.unhealthyAfterMisses)))
    .addOption(new Option(`${o.deadAfterMisses.flag} <n>`, "missed intervals before a node is Dead and ejected").env(o.deadAfterMisses.env!).default(String(d.deadAfterMisses)))
    .addOption(new Option(`${o.inviteExpirySec.flag} <sec>`, "lifetime of an invite").env(o.inviteExpirySec.env!).default(String(d.inviteExpirySec)))
    .addOption(new Option(`${o.reconcileMs.flag} <ms>`, "interval of the discovery / invite pass").env(o.reconcileMs.env!).default(String(d.reconcileMs)))
    .addOption(new Option(`${o.maxFileBytes.flag} <bytes>`, "largest file a node may upload").env(o.maxFileBytes.env!).default(String(d.maxFileBytes)))
    .addOption(
      new Option(
        `${o.assignment.flag} <mode>`,
        'who picks a task\'s node: "chain" (TaskLedger draws it by power; paid from the escrow) or "local" (the master picks the least busy healthy member; nothing on chain)',
      )
        .env(o.assignment.env!)
        .default(d.assignment),
    )
    .addOption(
      new Option(`${o.instanceUrl.flag} <url>`, "with --redis-url: where the other instances reach this one (default http://<host>:<port>)").env(o.instanceUrl.env!),
    )
    .addOption(
      new Option(`${o.leaderLeaseMs.flag} <ms>`, "with --redis-url: lifetime of the leader lease (the longest pause of invites, ejections and tasks after a leader dies)")
        .env(o.leaderLeaseMs.env!)
        .default(String(d.leaderLeaseMs)),
    )
    .addOption(
      new Option(`${o.verifyWorkers.flag} <n>`, "worker threads recovering request signatures (0: on the event loop)").env(o.verifyWorkers.env!).default(String(d.verifyWorkers)),
    )
    .addOption(
      new Option(
        `${o.dashboard.flag} <on|off>`,
        "the read-only web dashboard at /dashboard (unsigned; public information only: node states, power, task states, on-chain records, claims)",
      )
        .env(o.dashboard.env!)
        .default("on"),
    )
    .addOption(
      new Option(
        `${o.dashboardToken.flag} <token>`,
        "operator token of the dashboard (>= 16 characters; prefer the environment variable): with it the page also shows task specs, endpoints, logs and files",
      ).env(o.dashboardToken.env!),
    )
    .action(async (raw: Record<string, unknown>) => {
      let service: MasterService;
      try {
        const config = parseConfig(masterSchema, raw, MASTER_OPTIONS);
        const privateKey = loadPrivateKey({ keyFile: config.keyFile, required: true })!;
        service = await startMaster({ ...config, privateKey });
      } catch (error) {
        if (error instanceof ConfigError) {
          process.stderr.write(`${error.message}\n`);
          process.exitCode = 2;
        } else {
          process.stderr.write(`master: cannot start: ${(error as Error).message}\n`);
          process.exitCode = 1;
        }
        return;
      }
      const lifecycle = new Lifecycle(service.logger);
      lifecycle.onStop("master", () => service.stop());
      lifecycle.installSignalHandlers();
      console.log(`master listening on ${service.url}`);
      if (service.dashboardUrl) console.log(`master dashboard at ${service.dashboardUrl}`);
    });
  return command;
}
