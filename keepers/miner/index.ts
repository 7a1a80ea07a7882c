/**
 * The miner keeper: a compute provider's node (DESIGN.md flows 1-4). `startMiner` runs it in process
 * (tests, devnet); `minerCommand` is `computenet miner`.
 *
 * Start-up: detect the hardware, check it against the run's requirements (and refuse, before any
 * transaction, when it falls short), register and stake the node and register it for the run (each step
 * skipped when the chain says it is done), take back its own containers, open the HTTP API, put its
 * endpoint in discovery (retrying until discovery takes it) and follow the chain for its validation and
 * membership. Heartbeats start with the master's invite, or resume after a restart when the node is still
 * a member under the master that invited it.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { Command, Option } from "commander";
import Dockerode from "dockerode";
import { NonceManager, Wallet } from "ethers";
import { Counter, Gauge, type Registry } from "prom-client";
import { z } from "zod";
import type { Capabilities } from "../../scripts/lib/protocol.js";
import { EventFollower, connectChain, contractInterfaces, headBlock, logChainSettings } from "../shared/chain.js";
import { addCommonOptions, addFeeOptions, COMMON_OPTIONS, commonSchema, ConfigError, integerOption, loadPrivateKey, type OptionNames, parseConfig, optionNames } from "../shared/config.js";
import { SignedClient, closeServer, listen } from "../shared/http.js";
import { Lifecycle } from "../shared/lifecycle.js";
import { type Logger, createLogger, subsystem } from "../shared/log.js";
import { createMetrics, followerMetrics, txMetrics } from "../shared/metrics.js";
import { KeeperStore } from "../shared/store.js";
import { TxSender } from "../shared/tx.js";
import { MinerAgent, nodeKeyConnection } from "./agent.js";
import { MinerEconomy, faultsFromEnv } from "./economy.js";
import { reexecute } from "./reexec.js";
import { DiscoveryClient } from "../shared/discovery-client.js";
import { DEFAULT_POC_PARAMS, DEFAULT_SAMPLE_SIZE, type PocParams } from "../shared/poc.js";
import { createMinerApi } from "./api.js";
import { DockerRuntime, type TaskStatus } from "./docker-runtime.js";
import { type HardwareReport, detectHardware } from "./hardware.js";
import {
  type CapabilityOverrides,
  type RegistrationResult,
  RequirementsNotMetError,
  assertMeetsRequirements,
  capabilitiesFor,
  describeCapabilities,
  ensureRegistration,
  readRegistration,
  readRun,
} from "./registration.js";
import { MinerState } from "./state.js";

export { RequirementsNotMetError } from "./registration.js";
export type { CapabilityOverrides } from "./registration.js";

export const DEFAULT_MINER_PORT = 8730;
export const DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock";

export interface MinerOptions {
  rpcUrl: string;
  deploymentFile: string;
  dataDir: string;
  host: string;
  /** 0: any free port. */
  port: number;
  /** Chain polling interval, ms (default: the chain's profile, keepers/shared/profile.ts). */
  pollMs?: number;
  /** Blocks to stay behind the head (default: the chain's profile). */
  confirmations?: number;
  /** Cap on every transaction's max fee per gas, gwei, for both keys (default: none). */
  maxFeeGwei?: string | number;
  logLevel?: string;
  /** A ready logger (tests); otherwise one is made with `logLevel`, writing to stdout. */
  logger?: Logger;
  /** The provider's key: pays gas and the stake. */
  providerKey: string;
  /** The node's key (its address is the node id); defaults to the provider key. */
  nodeKey?: string;
  runId: bigint;
  discoveryUrl: string;
  /** The endpoint others reach this node at; default http://<host>:<port>. */
  publicUrl?: string;
  /** Initial stake in token wei; default the registry's minimum for the node's GPU count. */
  stake?: bigint;
  /** Task storage folders; default <dataDir>/tasks. */
  storageRoot?: string;
  /** Default 30. */
  heartbeatIntervalSec?: number;
  gpuModel?: string;
  allowHostNetwork?: boolean;
  /** Let tasks pull absent images (off: only local images run). */
  allowPull?: boolean;
  dockerSocket?: string;
  /** Declared figures instead of the detected ones (a test playing a machine of another size). */
  capabilities?: CapabilityOverrides;
  /** Largest challenge size answered (default 1024, the shared limit). */
  maxChallengeN?: number;
  /** Largest task file synced to the master (default 64 MiB, the master's default limit). */
  maxFileBytes?: number;
  /** Backoff of the discovery upload (default 1 s doubling to 60 s). */
  discoveryRetryMs?: { baseMs: number; maxMs: number };
  /** Backoff of the file sync (default 1 s doubling to 60 s). */
  syncRetryMs?: { baseMs: number; maxMs: number };
  /** How long validator-role and master checks are cached (default 10 s). */
  permissionCacheMs?: number;
  /** PoC puzzle parameters: a network constant (every keeper of a network must use the same). */
  pocParams?: PocParams;
  /**
   * Share of wall time the PoC engine computes, in (0, 1] (default 1). A FAKE for tests and the devnet,
   * which emulate machines of different speeds with it: a real miner's speed is its hardware's.
   */
  pocThrottle?: number;
  /** Longest a validation re-execution of a task may run (default 120 s). */
  reexecTimeoutMs?: number;
  /** How long a finished task's container is kept before it is removed (default 60 min; agent.ts `retireFinished`). */
  keepFinishedMin?: number;
}

export interface MinerService {
  /** Where the HTTP API listens. */
  url: string;
  /** The endpoint given to discovery. */
  publicUrl: string;
  node: string;
  provider: string;
  runId: bigint;
  hardware: HardwareReport;
  /** What this start detected (with overrides); the chain holds what is declared. */
  capabilities: Capabilities;
  registration: RegistrationResult;
  logger: Logger;
  agent: MinerAgent;
  runtime: DockerRuntime;
  dockerAvailable(): boolean;
  /** Resolves once discovery accepted the endpoint. */
  endpointUploaded: Promise<void>;
  tasks(): TaskStatus[];
  /** The event follower's last handled block. */
  cursor(): number;
  stop(): Promise<void>;
}

export async function startMiner(options: MinerOptions): Promise<MinerService> {
  const nodeWallet = new Wallet(options.nodeKey ?? options.providerKey);
  const provider = new Wallet(options.providerKey).address;
  const node = nodeWallet.address;
  const logger = options.logger ?? createLogger({ component: "miner", node, level: options.logLevel });
  const registrationLog = subsystem(logger, "Registration");
  const cleanups: Array<{ name: string; run: () => Promise<void> | void }> = [];
  const cleanUp = async () => {
    for (const step of cleanups.splice(0).reverse()) {
      try {
        await step.run();
      } catch (error) {
        logger.warn({ subsystem: "Startup", step: step.name, err: (error as Error).message }, "cleanup step failed");
      }
    }
  };

  try {
    const chain = await connectChain({
      rpcUrl: options.rpcUrl,
      deploymentFile: options.deploymentFile,
      privateKey: options.providerKey,
      pollingIntervalMs: options.pollMs,
      confirmations: options.confirmations,
      maxFeeGwei: options.maxFeeGwei,
    });
    cleanups.push({ name: "chain", run: () => chain.provider.destroy() });
    logChainSettings(subsystem(logger, "Startup"), chain);
    const store = new KeeperStore(path.join(options.dataDir, "miner.sqlite"));
    cleanups.push({ name: "store", run: () => store.close() });
    const state = new MinerState(store);
    registrationLog.info(
      { provider, runId: options.runId.toString(), chainId: chain.chainId.toString(), sameKey: provider === node },
      "miner starting",
    );

    // Hardware and requirements first: a node that cannot serve the run sends nothing.
    const storageRoot = path.resolve(options.storageRoot ?? path.join(options.dataDir, "tasks"));
    await mkdir(storageRoot, { recursive: true });
    const hardware = await detectHardware({ storagePath: storageRoot });
    const capabilities = capabilitiesFor(hardware, { gpuModel: options.gpuModel, overrides: options.capabilities });
    registrationLog.info(
      {
        detected: { cpuCores: hardware.cpuCores, ramMB: hardware.ramMB, storageGB: hardware.storageGB, gpus: hardware.gpus.length, virtual: hardware.virtual },
        overrides: options.capabilities ?? {},
        capabilities: describeCapabilities(capabilities),
      },
      "hardware detected",
    );
    const run = await readRun(chain, options.runId);
    if (run.discoveryURI.replace(/\/+$/, "") !== options.discoveryUrl.replace(/\/+$/, "")) {
      registrationLog.warn({ discoveryUrl: options.discoveryUrl, runDiscoveryURI: run.discoveryURI }, "--discovery-url differs from the run's discovery URI on chain");
    }
    assertMeetsRequirements(registrationLog, run, capabilities, "detected");
    const existing = await readRegistration(chain, node, provider);
    if (existing) assertMeetsRequirements(registrationLog, run, existing.capabilities, "declared");

    // The follower starts at the current head on a first start (status comes from views), so that the
    // registration below shows up in its logs; afterwards it resumes from its cursor.
    const followerName = `miner:${node.toLowerCase()}`;
    if (!store.cursor(followerName)) store.setCursor(followerName, { block: await headBlock(chain.provider) });

    // Before the registration, so that its transactions are counted.
    const metrics = createMetrics("miner");
    const tx = new TxSender({
      logger,
      interfaces: contractInterfaces(),
      signer: chain.signer as NonceManager,
      confirmations: 1,
      metrics: txMetrics(metrics, "miner"),
    });
    const registration = await ensureRegistration(
      { chain, tx, logger: registrationLog, nodeWallet, provider, run },
      capabilities,
      options.stake,
    );

    const dockerSocket = options.dockerSocket ?? DEFAULT_DOCKER_SOCKET;
    const docker = new Dockerode({ socketPath: dockerSocket });
    const runtime = new DockerRuntime({
      docker,
      node,
      storageRoot,
      allowHostNetwork: options.allowHostNetwork ?? false,
      allowPull: options.allowPull ?? false,
      logger,
      instance: installationId(store),
      maxMemoryMB: capabilities.ramMB,
      maxCpus: capabilities.cpuCores,
      maxGpus: capabilities.gpuCount,
    });
    cleanups.push({ name: "docker runtime", run: () => runtime.close() });
    const client = new SignedClient(nodeWallet, chain.chainId, 15_000);
    // Calls only the node may make (seeds, PoC, task completion, validations, votes) are signed by the node
    // key: one connection and one sender for it, shared by the agent and the epoch economy.
    const nodeKey = nodeKeyConnection({ provider, nodeWallet, chain, tx }, logger);
    const agent = new MinerAgent({
      nodeKey,
      chain,
      state,
      logger,
      tx,
      nodeWallet,
      provider,
      runId: options.runId,
      client,
      docker,
      dockerSocket,
      runtime,
      hardware,
      capabilities,
      heartbeatIntervalMs: (options.heartbeatIntervalSec ?? 30) * 1000,
      discoveryUrl: options.discoveryUrl,
      discoveryRetry: options.discoveryRetryMs ?? { baseMs: 1_000, maxMs: 60_000 },
      syncRetry: options.syncRetryMs ?? { baseMs: 1_000, maxMs: 60_000 },
      maxFileBytes: options.maxFileBytes ?? 64 * 1024 * 1024,
      challengeLimits: { maxN: options.maxChallengeN },
      permissionCacheMs: options.permissionCacheMs ?? 10_000,
      keepFinishedMs: (options.keepFinishedMin ?? 60) * 60_000,
    });
    cleanups.push({ name: "agent", run: () => agent.stop() });
    const economy = new MinerEconomy({
      chain: nodeKey.chain,
      wallet: nodeWallet,
      tx: nodeKey.tx,
      store,
      logger,
      metrics,
      client,
      discovery: new DiscoveryClient(nodeWallet, chain.chainId, options.discoveryUrl),
      runId: options.runId,
      pocParams: options.pocParams ?? DEFAULT_POC_PARAMS,
      pocThrottle: options.pocThrottle ?? 1,
      pocSampleSize: DEFAULT_SAMPLE_SIZE,
      reexecute: (spec, ledgerTaskId) =>
        reexecute(runtime, { ...spec, ledgerTaskId: ledgerTaskId.toString() }, { timeoutMs: options.reexecTimeoutMs ?? 120_000, logger: subsystem(logger, "TaskValidation") }),
      ownResult: (ledgerTaskId) => {
        const record = state.ledgerTaskByLedgerId(ledgerTaskId);
        // Kept before completeTask is sent: a validation on chain means that completeTask was mined with its seal.
        return record?.resultHash ? { resultHash: record.resultHash, epoch: record.epoch } : undefined;
      },
      master: () => agent.heartbeats.current,
      faults: faultsFromEnv(),
    });
    cleanups.push({ name: "epoch economy", run: () => economy.stop() });
    agent.solver.warm();
    await agent.readValidation();
    await agent.initDocker();
    await agent.resumeMembership();

    const follower = new EventFollower({
      chain,
      store,
      name: followerName,
      logger: subsystem(logger, "Chain"),
      handle: async (event) => {
        if (event.contract === "ProofOfCompute" || event.contract === "TaskLedger") await economy.handleEvent(event);
        await agent.handleEvent(event);
      },
      contracts: ["MinerRegistry", "ChallengeBoard", "TrainingRuns", "ProofOfCompute", "TaskLedger"],
      pollMs: chain.settings.pollMs,
      confirmations: chain.settings.confirmations,
    });
    registerGauges(metrics.registry, agent, follower);
    followerMetrics(metrics, "miner", { head: () => headBlock(chain.provider), cursor: () => follower.cursor, confirmations: chain.settings.confirmations });

    const app = createMinerApi({
      agent,
      economy,
      logger,
      metrics,
      chainId: chain.chainId,
      nonces: store,
      health: () => ({
        node,
        runId: options.runId.toString(),
        validation: agent.validation.status,
        dockerAvailable: agent.dockerAvailable,
        discoveryUploaded: agent.discovery.uploaded,
        master: agent.heartbeats.current?.master ?? null,
        cursor: follower.cursor,
        economy: economy.status,
      }),
    });
    const server = await listen(app, options.port, options.host);
    cleanups.push({ name: "http server", run: () => closeServer(app) });
    const port = (server.address() as AddressInfo).port;
    const url = `http://${options.host.includes(":") ? `[${options.host}]` : options.host}:${port}`;
    const publicUrl = (options.publicUrl ?? url).replace(/\/+$/, "");
    if (!options.publicUrl && (options.host === "0.0.0.0" || options.host === "::")) {
      registrationLog.warn({ host: options.host, publicUrl }, "listening on all interfaces without --public-url: discovery gets an address nobody can reach");
    }

    agent.startDiscoveryUpload(publicUrl);
    agent.startRetirement();
    follower.start();
    cleanups.push({ name: "event follower", run: () => follower.stop() });
    economy.start();
    subsystem(logger, "Startup").info({ url, publicUrl, storageRoot, dockerAvailable: agent.dockerAvailable }, "miner ready");

    let stopping: Promise<void> | undefined;
    return {
      url,
      publicUrl,
      node,
      provider,
      runId: options.runId,
      hardware,
      capabilities,
      registration,
      logger,
      agent,
      runtime,
      dockerAvailable: () => agent.dockerAvailable,
      endpointUploaded: agent.endpointUploaded,
      tasks: () => (agent.dockerAvailable ? runtime.list() : []),
      cursor: () => follower.cursor,
      stop: () => {
        stopping ??= (async () => {
          subsystem(logger, "Startup").info({}, "miner stopping");
          await cleanUp();
        })();
        return stopping;
      },
    };
  } catch (error) {
    await cleanUp();
    throw error;
  }
}

/** A random id of this installation, created on first start and kept in the store. */
function installationId(store: KeeperStore): string {
  let id = store.get("installation");
  if (!id) {
    id = randomBytes(8).toString("hex");
    store.set("installation", id);
  }
  return id;
}

function registerGauges(registry: Registry, agent: MinerAgent, follower: EventFollower): void {
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name: `computenet_miner_${name}`,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  gauge("heartbeats_sent", "Heartbeats the master accepted", () => agent.heartbeats.sent);
  gauge("heartbeats_failed", "Heartbeats that failed", () => agent.heartbeats.failed);
  gauge("challenges_solved", "Validators' challenges solved", () => agent.solver.solved);
  gauge("files_synced", "Task files sent to the master", () => agent.sync.filesSent);
  gauge("bytes_synced", "Task file bytes sent to the master", () => agent.sync.bytesSent);
  gauge("tasks_running", "Tasks whose container runs", () =>
    agent.dockerAvailable ? agent.runtime.list().filter((task) => task.state === "running").length : 0,
  );
  gauge("docker_available", "1 when a Docker engine answers", () => (agent.dockerAvailable ? 1 : 0));
  gauge("validated", "1 when the node is validated for its current declaration", () => (agent.validation.status === "Validated" ? 1 : 0));
  gauge("event_cursor", "Last block the event follower handled (same as computenet_miner_event_cursor_block; kept for existing dashboards)", () => follower.cursor);
  // Counters fed from the agent's own tallies: each scrape adds what happened since the last one.
  const seen = { accepted: 0, failed: 0 };
  new Counter({
    name: "computenet_miner_heartbeats_total",
    help: "Heartbeats sent to the run's master, by result (accepted, failed)",
    labelNames: ["result"],
    registers: [registry],
    collect() {
      const now = { accepted: agent.heartbeats.sent, failed: agent.heartbeats.failed };
      for (const result of ["accepted", "failed"] as const) {
        this.inc({ result }, Math.max(0, now[result] - seen[result]));
        seen[result] = now[result];
      }
    },
  });
  new Gauge({
    name: "computenet_miner_node_state",
    help: "1 for this node's state: its validation (None, Pending, Validated, Rejected) and, once a member, the master's view from the last heartbeat answer (Healthy, Unhealthy, ...)",
    labelNames: ["kind", "state"],
    registers: [registry],
    collect() {
      this.reset();
      for (const status of ["None", "Pending", "Validated", "Rejected"]) this.set({ kind: "validation", state: status }, agent.validation.status === status ? 1 : 0);
      this.set({ kind: "membership", state: "member" }, agent.heartbeats.current ? 1 : 0);
      if (agent.heartbeats.lastState) this.set({ kind: "master_view", state: agent.heartbeats.lastState }, 1);
    },
  });
  new Gauge({
    name: "computenet_miner_tasks",
    help: "Task containers on this node, by state (pending, pulling, running, restarting, completed, failed, stopped)",
    labelNames: ["state"],
    registers: [registry],
    collect() {
      this.reset();
      for (const state of ["pending", "pulling", "running", "restarting", "completed", "failed", "stopped"]) this.set({ state }, 0);
      if (!agent.dockerAvailable) return;
      for (const task of agent.runtime.list()) this.inc({ state: task.state });
    },
  });
}

// --- command line ------------------------------------------------------------------------------------

export const MINER_OPTIONS: OptionNames = { ...COMMON_OPTIONS, ...optionNames("nodeKeyFile", "runId", "discoveryUrl", "publicUrl", "stake", "storageRoot", "heartbeatIntervalSec", "gpuModel", "allowHostNetwork", "allowPull", "dockerSocket", "cpuCores", "ramMb", "storageGb", "gpuCount", "gpuMemoryMb", "maxChallengeN", "pocThrottle", "keepFinishedMin") };

const flag = z
  .union([z.boolean(), z.string()])
  .optional()
  .transform((value, ctx) => {
    if (value === undefined || typeof value === "boolean") return value ?? false;
    const text = value.trim().toLowerCase();
    if (["1", "true", "yes", "on", ""].includes(text)) return true;
    if (["0", "false", "no", "off"].includes(text)) return false;
    ctx.addIssue({ code: "custom", message: "must be true or false" });
    return z.NEVER;
  });

const httpUrl = (what: string) =>
  z.string({ error: "is required" }).refine((value) => {
    try {
      const url = new URL(value);
      return (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== "";
    } catch {
      return false;
    }
  }, `must be an http(s) URL (${what})`);

/** An endpoint as discovery stores it (PROTOCOL.md): http(s)://host:port, no path, query or credentials. */
const endpointUrl = z
  .string()
  .max(256, "must be at most 256 characters")
  .refine((value) => /^https?:\/\/[^/?#@\s]+:[0-9]{1,5}\/?$/i.test(value), "must be http(s)://host:port with an explicit port and no path, query or credentials");

export const minerSchema = commonSchema.extend({
  nodeKeyFile: z.string().min(1).optional(),
  runId: z.string({ error: "is required" }).regex(/^[1-9][0-9]{0,77}$/, "must be a positive decimal integer"),
  discoveryUrl: httpUrl("the discovery service"),
  publicUrl: endpointUrl.optional(),
  stake: z.string().regex(/^[0-9]{1,78}$/, "must be an amount in token wei (decimal digits)").optional(),
  storageRoot: z.string().min(1, "must not be empty").optional(),
  heartbeatIntervalSec: integerOption(1, 3600),
  gpuModel: z
    .string()
    .min(1, "must not be empty")
    .refine((value) => Buffer.byteLength(value) <= 31, "must be at most 31 bytes")
    .optional(),
  allowHostNetwork: flag,
  allowPull: flag,
  dockerSocket: z.string().min(1, "must not be empty"),
  cpuCores: integerOption(1, 0xffff).optional(),
  ramMb: integerOption(1, 0xffff_ffff).optional(),
  storageGb: integerOption(0, 0xffff_ffff).optional(),
  gpuCount: integerOption(0, 0xffff).optional(),
  gpuMemoryMb: integerOption(0, 0xffff_ffff).optional(),
  maxChallengeN: integerOption(1, 4096).optional(),
  keepFinishedMin: integerOption(0, 525_600),
  pocThrottle: z.coerce
    .number({ error: "must be a number in (0, 1]" })
    .gt(0, "must be in (0, 1]")
    .max(1, "must be in (0, 1]")
    .optional(),
});

export type MinerConfig = z.infer<typeof minerSchema>;

const PRIVATE_KEY = /^(0x)?[0-9a-fA-F]{64}$/;

/** The node key from CN_NODE_KEY or --node-key-file; undefined when neither is set (the provider key serves). */
export function loadNodeKey(options: { nodeKeyFile?: string; env?: NodeJS.ProcessEnv; readFile?: (file: string) => string }): string | undefined {
  const env = options.env ?? process.env;
  let key = env.CN_NODE_KEY?.trim();
  let source = "CN_NODE_KEY";
  if (!key && options.nodeKeyFile) {
    source = options.nodeKeyFile;
    try {
      key = (options.readFile ?? ((file: string) => readFileSync(file, "utf8")))(options.nodeKeyFile).trim();
    } catch (error) {
      throw new ConfigError([`--node-key-file: cannot read ${options.nodeKeyFile}: ${(error as Error).message}`]);
    }
  }
  if (!key) return undefined;
  if (!PRIVATE_KEY.test(key)) throw new ConfigError([`the node key in ${source} must be 32 bytes of hex`]);
  return key.startsWith("0x") ? key : `0x${key}`;
}

/** Options for startMiner from validated flags and the loaded keys. */
export function minerOptionsFrom(config: MinerConfig, keys: { providerKey: string; nodeKey?: string }): MinerOptions {
  const overrides: CapabilityOverrides = {};
  if (config.cpuCores !== undefined) overrides.cpuCores = config.cpuCores;
  if (config.ramMb !== undefined) overrides.ramMB = config.ramMb;
  if (config.storageGb !== undefined) overrides.storageGB = config.storageGb;
  if (config.gpuCount !== undefined) overrides.gpuCount = config.gpuCount;
  if (config.gpuMemoryMb !== undefined) overrides.gpuMemoryMB = config.gpuMemoryMb;
  return {
    rpcUrl: config.rpcUrl,
    deploymentFile: config.deployment,
    dataDir: config.dataDir,
    host: config.host,
    port: config.port,
    pollMs: config.pollMs,
    confirmations: config.confirmations,
    maxFeeGwei: config.maxFeeGwei,
    logLevel: config.logLevel,
    providerKey: keys.providerKey,
    nodeKey: keys.nodeKey,
    runId: BigInt(config.runId),
    discoveryUrl: config.discoveryUrl,
    publicUrl: config.publicUrl,
    stake: config.stake === undefined ? undefined : BigInt(config.stake),
    storageRoot: config.storageRoot,
    heartbeatIntervalSec: config.heartbeatIntervalSec,
    gpuModel: config.gpuModel,
    allowHostNetwork: config.allowHostNetwork,
    allowPull: config.allowPull,
    dockerSocket: config.dockerSocket,
    capabilities: overrides,
    maxChallengeN: config.maxChallengeN,
    pocThrottle: config.pocThrottle,
    keepFinishedMin: config.keepFinishedMin,
  };
}

/** `computenet miner`: flags with env fallbacks; exit 2 on a config error, 3 when the node misses the run's requirements. */
export function minerCommand(): Command {
  const o = MINER_OPTIONS;
  const option = (key: string, args: string, description: string) => new Option(`${o[key].flag}${args ? ` ${args}` : ""}`, description).env(o[key].env!);
  const command = addFeeOptions(addCommonOptions(new Command("miner"), { port: DEFAULT_MINER_PORT, dataDir: "data/miner" }))
    .description("run a compute provider's node: register, answer challenges, accept invites, run tasks, heartbeat, sync files")
    .addOption(option("nodeKeyFile", "<file>", "file holding the node key (or set CN_NODE_KEY); default: the provider key"))
    .addOption(option("runId", "<id>", "the training run to serve"))
    .addOption(option("discoveryUrl", "<url>", "the discovery service"))
    .addOption(option("publicUrl", "<url>", "this node's endpoint as others reach it (default http://<host>:<port>)"))
    .addOption(option("stake", "<wei>", "initial stake in token wei (default: the registry's minimum for the node's GPU count)"))
    .addOption(option("storageRoot", "<dir>", "task storage folders (default <data-dir>/tasks)"))
    .addOption(option("heartbeatIntervalSec", "<sec>", "seconds between heartbeats to the master").default("30"))
    .addOption(option("gpuModel", "<model>", "GPU model to declare instead of the detected one, e.g. H100-80GB"))
    .addOption(option("allowHostNetwork", "", "let tasks ask for host networking"))
    .addOption(option("allowPull", "", "let tasks pull images that are not present locally"))
    .addOption(option("dockerSocket", "<path>", "Docker engine socket").default(DEFAULT_DOCKER_SOCKET))
    .addOption(option("cpuCores", "<n>", "declare this many CPU cores instead of the detected count"))
    .addOption(option("ramMb", "<mib>", "declare this much RAM instead of the detected amount"))
    .addOption(option("storageGb", "<gb>", "declare this much free storage instead of the detected amount"))
    .addOption(option("gpuCount", "<n>", "declare this many GPUs instead of the detected count"))
    .addOption(option("gpuMemoryMb", "<mib>", "declare this much memory per GPU instead of the detected amount"))
    .addOption(option("maxChallengeN", "<n>", "largest challenge matrix size answered (default 1024)"))
    .addOption(
      option("keepFinishedMin", "<minutes>", "minutes a finished task's container is kept before it is removed (its status and last output stay)").default("60"),
    )
    .addOption(
      option(
        "pocThrottle",
        "<fraction>",
        "FAKE for tests and the devnet: share of wall time the PoC engine computes, in (0, 1] (default 1), to emulate a slower machine",
      ),
    );

  command.action(async (raw: Record<string, unknown>) => {
    let options: MinerOptions;
    try {
      const config = parseConfig(minerSchema, raw, MINER_OPTIONS);
      const providerKey = loadPrivateKey({ keyFile: config.keyFile, required: true })!;
      const nodeKey = loadNodeKey({ nodeKeyFile: config.nodeKeyFile });
      options = minerOptionsFrom(config, { providerKey, nodeKey });
    } catch (error) {
      return fail(error);
    }
    let service: MinerService;
    try {
      service = await startMiner(options);
    } catch (error) {
      return fail(error);
    }
    const lifecycle = new Lifecycle(service.logger);
    lifecycle.onStop("miner", () => service.stop());
    lifecycle.installSignalHandlers();
    process.stdout.write(`miner listening on ${service.url}\n`);
  });
  return command;
}

function fail(error: unknown): never {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
  if (error instanceof RequirementsNotMetError) {
    process.stderr.write(`${error.report}\n`);
    process.exit(3);
  }
  process.stderr.write(`miner failed to start: ${(error as Error)?.message ?? String(error)}\n`);
  process.exit(1);
}
