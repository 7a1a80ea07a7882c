/**
 * The discovery keeper: stores node endpoints in its SQLite file and tells them only to those the chain
 * allows (validators; masters of the open runs a node takes part in). It holds no key: its audience in
 * signed requests is "discovery".
 *
 *   startDiscovery(options)  programmatic start (tests, devnet)
 *   discoveryCommand()       `computenet discovery` (flags with env fallbacks)
 */
import type { AddressInfo } from "node:net";
import path from "node:path";
import { Command, Option } from "commander";
import { Counter, Gauge } from "prom-client";
import { z } from "zod";
import { type Chain, EventFollower, connectChain, headBlock, logChainSettings } from "../shared/chain.js";
import {
  COMMON_OPTIONS,
  ConfigError,
  type OptionNames,
  REDIS_OPTIONS,
  addCommonOptions,
  addRedisOption,
  commonSchema,
  integerOption,
  optionNames,
  parseConfig,
  redisUrlSchema,
} from "../shared/config.js";
import { type App, closeServer, listen } from "../shared/http.js";
import { Lifecycle } from "../shared/lifecycle.js";
import { type Logger, createLogger, subsystem } from "../shared/log.js";
import { type Metrics, createMetrics, followerMetrics } from "../shared/metrics.js";
import { RedisNonceStore, RedisRateLimiter, SharedRedis, keyPrefix } from "../shared/redis.js";
import { DEFAULT_VERIFY_WORKERS, SignaturePool } from "../shared/signature-pool.js";
import { KeeperStore } from "../shared/store.js";
import { Access } from "./access.js";
import { type EndpointStore, RedisEndpointStore, SqliteEndpointStore } from "./endpoints.js";
import { DISCOVERY_AUDIENCE, buildDiscoveryApp } from "./routes.js";
import { DiscoveryIndex } from "./state.js";

export { DISCOVERY_AUDIENCE };
export const DEFAULT_PORT = 8700;
/** Name of discovery's event cursor in its KeeperStore. */
export const DISCOVERY_CURSOR = "discovery";

export interface DiscoveryOptions {
  rpcUrl: string;
  deploymentFile: string;
  /** Folder of `discovery.sqlite` (endpoints, chain index, event cursor, used nonces). */
  dataDir: string;
  host?: string;
  /** 0: any free port. Default 8700. */
  port?: number;
  /**
   * Chain polling interval, ms: the longest an allowance can lag a revocation. Default: the chain's profile
   * (keepers/shared/profile.ts: 1000 on Arbitrum, 500 on a local node).
   */
  pollMs?: number;
  /** Blocks to stay behind the head. Default: the chain's profile (2 on Arbitrum One, 1 on Sepolia, 0 locally). */
  confirmations?: number;
  logLevel?: string;
  /** Largest accepted |now - x-cn-timestamp|, seconds (default 60). */
  maxSkewSec?: number;
  /** Signed requests per address per window (default 120 per 60 s); 429 beyond. */
  rateLimit?: { max: number; windowMs: number };
  /** Largest request body (default "16kb"); 413 beyond. */
  bodyLimit?: string;
  /** Worker threads recovering request signatures (default 1; 0: on the event loop). */
  verifyWorkers?: number;
  /**
   * Redis shared by several discovery instances behind a load balancer: used nonces, rate-limit counters and
   * node endpoints live there instead of the SQLite file (which keeps this instance's chain index and cursor).
   */
  redisUrl?: string;
  /** Use this logger instead of a new one at `logLevel` (tests). */
  logger?: Logger;
}

export interface DiscoveryService {
  /** Where the HTTP API listens, e.g. http://127.0.0.1:8700. */
  url: string;
  chainId: bigint;
  /** The chain-derived index (read it in tests; the service writes it); it holds the endpoints too without Redis. */
  index: DiscoveryIndex;
  /** Where the endpoints are kept (the SQLite file, or Redis with `redisUrl`). */
  endpoints: EndpointStore;
  /** Last block whose events are all in the index. */
  cursor(): number;
  /** Resolves once every block up to `block` is in the index; rejects after `timeoutMs` (default 30 s). */
  waitForBlock(block: number, timeoutMs?: number): Promise<void>;
  /** One catch-up pass now (besides the polling loop); returns the number of events handled. */
  sync(): Promise<number>;
  /** Graceful: stops the follower (waits for the pass in flight), closes the server, the store and the provider. */
  stop(): Promise<void>;
}

export async function startDiscovery(options: DiscoveryOptions): Promise<DiscoveryService> {
  const logger = options.logger ?? createLogger({ component: "discovery", level: options.logLevel });
  const startup = subsystem(logger, "Startup");
  const metrics = createMetrics("discovery");

  const chain = await connectChain({
    rpcUrl: options.rpcUrl,
    deploymentFile: options.deploymentFile,
    pollingIntervalMs: options.pollMs,
    confirmations: options.confirmations,
  });
  const { pollMs, confirmations } = chain.settings;
  logChainSettings(startup, chain);
  let store: KeeperStore | undefined;
  let app: App | undefined;
  let pool: SignaturePool | undefined;
  let redis: SharedRedis | undefined;
  try {
    pool = await SignaturePool.start({ size: options.verifyWorkers ?? DEFAULT_VERIFY_WORKERS, logger });
    const file = path.join(options.dataDir, "discovery.sqlite");
    store = new KeeperStore(file);
    const validatorRole = await chain.contracts.challengeBoard.VALIDATOR_ROLE();
    const index = new DiscoveryIndex(store.db, validatorRole);
    if (options.redisUrl) {
      const prefix = keyPrefix(chain.chainId, chain.deployment.contracts.MinerRegistry.address, "discovery");
      redis = new SharedRedis({ url: options.redisUrl, prefix, logger: subsystem(logger, "Cluster") });
      // Not fatal: until Redis answers, signed requests are refused with 503 and the connection retries.
      await redis.waitReady();
    }
    const endpoints: EndpointStore = redis ? new RedisEndpointStore(redis, index) : new SqliteEndpointStore(index, store);
    const instruments = discoveryMetrics(metrics, endpoints, index);
    followerMetrics(metrics, "discovery", { head: () => headBlock(chain.provider), cursor: () => follower.cursor, confirmations });

    const chainLog = subsystem(logger, "Chain");
    const follower = new EventFollower({
      chain,
      store,
      name: DISCOVERY_CURSOR,
      logger: chainLog,
      contracts: ["MinerRegistry", "ChallengeBoard", "TrainingRuns"],
      pollMs,
      confirmations,
      handle: async (event) => {
        const applied = index.apply(event);
        if (!applied) return;
        instruments.events.inc({ event: event.name });
        chainLog.debug({ event: `${event.contract}.${event.name}`, block: event.blockNumber, logIndex: event.logIndex, ...applied.fields }, applied.what);
      },
    });

    // Our own loop around follower.poll() (rather than follower.start()) so that stop() can wait for the
    // pass in flight before the store closes, and each pass can be logged with its figures.
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let inFlight: Promise<number> = Promise.resolve(0);
    const sync = (): Promise<number> => {
      const before = follower.cursor;
      inFlight = follower.poll().then((handled) => {
        if (handled > 0) chainLog.info({ handled, from: before + 1, cursor: follower.cursor }, "index caught up");
        return handled;
      });
      return inFlight;
    };
    const loop = async () => {
      if (stopped) return;
      await sync();
      if (!stopped) timer = setTimeout(loop, follower.nextPollDelayMs);
    };

    const cursorBefore = follower.cursor;
    const caughtUp = await sync();
    startup.info({ cursorBefore, cursor: follower.cursor, handled: caughtUp, file }, "index loaded from the chain");

    const access = new Access({
      index,
      contracts: chain.contracts,
      validatorRole,
      logger,
      onDecision: (check, via, allowed) => instruments.decisions.inc({ check, via, result: allowed ? "allowed" : "refused" }),
    });
    const rateLimit = options.rateLimit ?? { max: 120, windowMs: 60_000 };
    const shared = redis;
    app = buildDiscoveryApp({
      endpoints,
      access,
      logger,
      metrics,
      chainId: chain.chainId,
      nonces: shared ? new RedisNonceStore(shared) : store,
      maxSkewSec: options.maxSkewSec ?? 60,
      rateLimit,
      rateLimiter: shared ? new RedisRateLimiter(shared, rateLimit) : undefined,
      bodyLimit: options.bodyLimit ?? "16kb",
      health: async () => {
        const { chainId, profile } = chain.settings;
        const settings = { chain: { id: chainId, profile, pollMs, confirmations } };
        const sharedHealth = shared ? shared.health() : {};
        const sharedDown = shared && !shared.isUp() ? { status: "degraded", error: "Redis unreachable: signed requests are refused with 503" } : {};
        try {
          // lag: blocks the index still has to handle (the head minus the confirmations we wait for).
          const head = await headBlock(chain.provider);
          return { cursor: follower.cursor, head, lag: Math.max(0, head - confirmations - follower.cursor), ...settings, ...sharedHealth, ...sharedDown };
        } catch (error) {
          return { status: "degraded", cursor: follower.cursor, head: null, lag: null, ...settings, ...sharedHealth, error: `chain unreachable: ${(error as { shortMessage?: string }).shortMessage ?? "RPC error"}` };
        }
      },
      // Counted as answered, so that refusals before routing (413, malformed JSON, 404) are counted too.
      onAnswered: (method, route, status) => instruments.requests.inc({ method, route, status: String(status) }),
      recover: pool.recover,
    });
    const server = await listen(app, options.port ?? DEFAULT_PORT, options.host ?? "127.0.0.1");
    const address = server.address() as AddressInfo;
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
    const url = `http://${host}:${address.port}`;

    timer = setTimeout(loop, pollMs);
    startup.info(
      {
        url,
        chainId: chain.chainId.toString(),
        cursor: follower.cursor,
        pollMs,
        confirmations,
        endpoints: await endpoints.count().catch(() => null),
        validators: index.validators().length,
        sharedState: redis ? { redis: redis.url } : "sqlite",
      },
      "discovery started",
    );

    const openStore = store;
    const openApp = app;
    const openPool = pool;
    let stopping: Promise<void> | undefined;
    return {
      url,
      chainId: chain.chainId,
      index,
      endpoints,
      cursor: () => follower.cursor,
      waitForBlock: (block, timeoutMs = 30_000) =>
        new Promise<void>((resolve, reject) => {
          const timeout = setTimeout(
            () => reject(new Error(`discovery did not index block ${block} within ${timeoutMs} ms (cursor ${follower.cursor})`)),
            timeoutMs,
          );
          void follower.waitFor(block).then(() => {
            clearTimeout(timeout);
            resolve();
          });
        }),
      sync,
      stop: () =>
        (stopping ??= (async () => {
          stopped = true;
          if (timer) clearTimeout(timer);
          follower.stop();
          await inFlight.catch(() => undefined);
          await closeServer(openApp);
          await openPool.close();
          const cursor = follower.cursor;
          openStore.close();
          shared?.close();
          chain.provider.destroy();
          startup.info({ cursor }, "discovery stopped");
        })()),
    };
  } catch (error) {
    if (app) await closeServer(app);
    await pool?.close();
    store?.close();
    redis?.close();
    chain.provider.destroy();
    throw error;
  }
}

function discoveryMetrics(metrics: Metrics, endpoints: EndpointStore, index: DiscoveryIndex) {
  const prefix = "computenet_discovery_";
  const registers = [metrics.registry];
  return {
    requests: new Counter({
      name: `${prefix}http_requests_total`,
      help: "HTTP requests answered, by method, route and status",
      labelNames: ["method", "route", "status"],
      registers,
    }),
    decisions: new Counter({
      name: `${prefix}access_decisions_total`,
      help: "Permission decisions, by check, source (index or chain fallback) and result",
      labelNames: ["check", "via", "result"],
      registers,
    }),
    events: new Counter({
      name: `${prefix}events_total`,
      help: "Chain events applied to the index, by event name",
      labelNames: ["event"],
      registers,
    }),
    endpoints: new Gauge({
      name: `${prefix}endpoints`,
      help: "Node endpoints stored (-1: the shared store is unreachable)",
      registers,
      async collect() {
        this.set(await endpoints.count().catch(() => -1));
      },
    }),
    nodes: new Gauge({
      name: `${prefix}nodes`,
      help: "Registered nodes in the index, by the challenge state of their current declaration (none, pending, validated, rejected)",
      labelNames: ["state"],
      registers,
      collect() {
        for (const [state, count] of Object.entries(index.nodeCounts())) this.set({ state }, count);
      },
    }),
  };
}

// ------------------------------------------------------------------ command

const DISCOVERY_OPTIONS: OptionNames = { ...COMMON_OPTIONS, ...REDIS_OPTIONS, ...optionNames("maxSkewSec", "rateLimitMax", "rateLimitWindowMs", "bodyLimit", "verifyWorkers") };


export const discoverySchema = commonSchema.extend({
  maxSkewSec: integerOption(1, 3600),
  rateLimitMax: integerOption(1, 1_000_000),
  rateLimitWindowMs: integerOption(100, 3_600_000),
  bodyLimit: z
    .string()
    .regex(/^[1-9][0-9]{0,6}(b|kb|mb)$/i, 'must be a size like "16kb" (b, kb or mb)')
    .refine((v) => !/mb$/i.test(v) || Number.parseInt(v, 10) <= 10, "must be at most 10mb"),
  verifyWorkers: integerOption(0, 16),
  redisUrl: redisUrlSchema,
});

export type DiscoveryConfig = z.infer<typeof discoverySchema>;

/** Validates raw flag values (strings from commander / env) into start options. Throws ConfigError. */
export function discoveryOptionsFromFlags(raw: Record<string, unknown>): DiscoveryOptions {
  const config = parseConfig(discoverySchema, raw, DISCOVERY_OPTIONS);
  return {
    rpcUrl: config.rpcUrl,
    deploymentFile: config.deployment,
    dataDir: config.dataDir,
    host: config.host,
    port: config.port,
    pollMs: config.pollMs,
    confirmations: config.confirmations,
    logLevel: config.logLevel,
    maxSkewSec: config.maxSkewSec,
    rateLimit: { max: config.rateLimitMax, windowMs: config.rateLimitWindowMs },
    bodyLimit: config.bodyLimit,
    verifyWorkers: config.verifyWorkers,
    redisUrl: config.redisUrl,
  };
}

/** `computenet discovery`: runs the discovery keeper until SIGINT / SIGTERM. */
export function discoveryCommand(): Command {
  const command = new Command("discovery").description(
    "node endpoint directory: stores miners' endpoints and shows them only to validators and their runs' masters",
  );
  addCommonOptions(command, { port: DEFAULT_PORT, dataDir: "data/discovery" });
  addRedisOption(command, "used request nonces, rate-limit counters and node endpoints");
  const o = DISCOVERY_OPTIONS;
  command
    .addOption(new Option(`${o.maxSkewSec.flag} <sec>`, "largest accepted clock skew of signed requests").env(o.maxSkewSec.env!).default("60"))
    .addOption(new Option(`${o.rateLimitMax.flag} <n>`, "signed requests per address per window (429 beyond)").env(o.rateLimitMax.env!).default("120"))
    .addOption(new Option(`${o.rateLimitWindowMs.flag} <ms>`, "rate limit window").env(o.rateLimitWindowMs.env!).default("60000"))
    .addOption(new Option(`${o.bodyLimit.flag} <size>`, "largest request body (413 beyond)").env(o.bodyLimit.env!).default("16kb"))
    .addOption(
      new Option(`${o.verifyWorkers.flag} <n>`, "worker threads recovering request signatures (0: on the event loop)").env(o.verifyWorkers.env!).default(String(DEFAULT_VERIFY_WORKERS)),
    )
    .action(async (flags: Record<string, unknown>) => {
      let options: DiscoveryOptions;
      try {
        // Discovery signs nothing and sends no transaction: --key-file / CN_PRIVATE_KEY are not read.
        options = discoveryOptionsFromFlags(flags);
      } catch (error) {
        if (error instanceof ConfigError) {
          console.error(error.message);
          process.exit(2);
        }
        throw error;
      }
      const logger = createLogger({ component: "discovery", level: options.logLevel });
      let service: DiscoveryService;
      try {
        service = await startDiscovery({ ...options, logger });
      } catch (error) {
        console.error(`discovery: cannot start: ${(error as Error).message}`);
        process.exit(1);
      }
      const lifecycle = new Lifecycle(logger);
      lifecycle.onStop("discovery", () => service.stop());
      lifecycle.installSignalHandlers();
      console.log(`discovery listening on ${service.url}`);
    });
  return command;
}
