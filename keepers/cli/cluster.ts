/**
 * A whole computenet network on one machine, each keeper a separate process with its own log file:
 * the devnet's engine and the integration tests' harness (a small Testermint). It starts a local Hardhat
 * node, deploys the system, grants the development roles, opens a run, and starts, kills and restarts
 * keepers on request.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, mkdirSync, writeFileSync, type WriteStream } from "node:fs";
import path from "node:path";
import { Wallet } from "ethers";
import { type Chain, connectChain, contractInterfaces } from "../shared/chain.js";
import { SignedClient } from "../shared/http.js";
import { createLogger } from "../shared/log.js";
import { TxSender } from "../shared/tx.js";
import { removeLocalJournal } from "../../scripts/lib/deployments.js";
import { type DevKeys, devKeys, setupDevChain } from "../../scripts/lib/dev-setup.js";
import { type HardhatNode, ROOT, freePort, runHardhat, startHardhatNode, stopProcess } from "../../scripts/lib/processes.js";

const CLI = path.join(ROOT, "keepers", "cli", "computenet.ts");

export interface RunRequirements {
  minGpuCount: number;
  minGpuMemoryMB: number;
  minCpuCores: number;
  minRamMB: number;
  minStorageGB: number;
  allowedGpuModels: string[];
}

export const DEVNET_REQUIREMENTS: RunRequirements = {
  minGpuCount: 0,
  minGpuMemoryMB: 0,
  minCpuCores: 1,
  minRamMB: 512,
  minStorageGB: 1,
  allowedGpuModels: [],
};

export interface ClusterOptions {
  logDir: string;
  /** JSON-RPC port of the Hardhat node (default: a free port). */
  rpcPort?: number;
  /** Fixed keeper ports (devnet) or free ports (tests). */
  fixedPorts?: boolean;
  /** Where deployments/localhost.json goes (default: the project root). */
  deploymentsRoot?: string;
  heartbeatSec?: number;
  requirements?: RunRequirements;
  /**
   * Epoch economy settings of the deployment (default: DEVNET_ECONOMY, about a minute per epoch). `false`
   * keeps the economy out of the way: epoch 1 starts 29 days after the deployment, so no keeper computes
   * PoC or claims during the run (the scenarios of the registration and task flow).
   */
  economy?: Partial<EconomySettings> | false;
  /**
   * The miners' node keys (default: development accounts 10-14; keys without ETH are given some). Containers
   * are labelled with their node's address, and a miner starting up removes the containers of its address
   * that another installation left: clusters that share a Docker engine at the same time need different node
   * keys. The integration tests take `freshNodeKeys()`, the soak accounts 15-19, the devnet 10-14.
   */
  nodeKeys?: string[];
}

/** ETH given to a node key that has none (local Hardhat node only). */
const NODE_KEY_ETH = 10_000n * 10n ** 18n;

/** `count` random node keys: a cluster of its own on a shared Docker engine (see `ClusterOptions.nodeKeys`). */
export function freshNodeKeys(count = 5): string[] {
  return Array.from({ length: count }, () => Wallet.createRandom().privateKey);
}

/** What the cluster deploys for the epoch economy (Ignition parameters of the local deployment). */
export interface EconomySettings {
  /** Seconds from the deployment to the start of epoch 1 (time for the miners to register and be validated). */
  genesisDelaySec: number;
  epochLength: number;
  pocDuration: number;
  pocValidationDuration: number;
  disputeWindow: number;
  claimWindow: number;
  /** k of the validation-duty rule, in basis points. */
  validationKBps: number;
  /** Tasks a claim's duty check draws. */
  sampleSize: number;
  /** Cap on one node's share of power, in basis points (30 % on real networks). */
  maxShareBps: number;
}

/**
 * About a minute per epoch, so that a newcomer sees PoC, power, power-weighted tasks, validations and
 * paid claims within a few minutes: PoC 15 s, PoC validation 12 s, work 33 s; disputes close 20 s after
 * the epoch, claims 60 s after that. k = 2 for validation duties, 8 tasks drawn per claim check.
 */
export const DEVNET_ECONOMY: EconomySettings = {
  genesisDelaySec: 30,
  epochLength: 60,
  pocDuration: 15,
  pocValidationDuration: 12,
  disputeWindow: 20,
  claimWindow: 60,
  validationKBps: 20_000,
  sampleSize: 8,
  // 50 % rather than the network default of 30 %: with three or four miners a 30 % cap flattens their
  // powers to the same level, and the devnet is there to show power following speed.
  maxShareBps: 5_000,
};

/** The settings `economy` (as in ClusterOptions) stands for. */
export function resolveEconomy(economy: Partial<EconomySettings> | false | undefined): EconomySettings {
  return economy === false ? { ...DEVNET_ECONOMY, genesisDelaySec: 29 * 24 * 3600 } : { ...DEVNET_ECONOMY, ...economy };
}

/** Ignition parameters (bigints as "<n>n" strings) for a local deployment with `economy`. */
export function economyParameters(economy: EconomySettings, nowSec: number): Record<string, Record<string, string>> {
  const n = (value: number) => `${Math.floor(value)}n`;
  return {
    EpochManagerModule: {
      genesis: n(nowSec + economy.genesisDelaySec),
      epochLength: n(economy.epochLength),
      pocDuration: n(economy.pocDuration),
      pocValidationDuration: n(economy.pocValidationDuration),
      disputeWindow: n(economy.disputeWindow),
      claimWindow: n(economy.claimWindow),
    },
    ProofOfComputeModule: { maxShareBps: n(economy.maxShareBps) },
    TaskLedgerModule: { validationKBps: n(economy.validationKBps) },
    SettlementModule: { sampleSize: n(economy.sampleSize) },
  };
}

/** A keeper running as a child process, its output in `<logDir>/<name>.log`. */
export class KeeperProcess {
  private output = "";
  private readonly waiters: Array<{ pattern: RegExp; resolve: (line: string) => void }> = [];
  readonly exited: Promise<number | null>;
  /** How the process ended: its exit code, or the signal that killed it (SIGKILL for a failpoint). */
  readonly ended: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    log: WriteStream,
  ) {
    const onData = (chunk: Buffer) => {
      log.write(chunk);
      this.output += chunk.toString();
      if (this.output.length > 4_000_000) this.output = this.output.slice(-2_000_000);
      for (let i = this.waiters.length - 1; i >= 0; i--) {
        const match = this.output.match(this.waiters[i].pattern);
        if (match) {
          this.waiters[i].resolve(match[0]);
          this.waiters.splice(i, 1);
        }
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    this.ended = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
    this.exited = this.ended.then(({ code }) => code);
  }

  /** Whether the process still runs. */
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Everything the process printed so far (bounded). */
  get text(): string {
    return this.output;
  }

  /** Resolves with the first match of `pattern` in the output; rejects after `timeoutMs` or if the process exits. */
  waitFor(pattern: RegExp, timeoutMs = 60_000): Promise<string> {
    const found = this.output.match(pattern);
    if (found) return Promise.resolve(found[0]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no ${pattern} within ${timeoutMs} ms`)), timeoutMs);
      const waiter = {
        pattern,
        resolve: (line: string) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      this.waiters.push(waiter);
      void this.exited.then((code) => {
        if (this.waiters.includes(waiter)) {
          clearTimeout(timer);
          reject(new Error(`${this.name} exited (code ${code}) before printing ${pattern}`));
        }
      });
    });
  }

  /** SIGKILL: the crash case. */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
    await this.exited;
  }

  /** SIGTERM, then SIGKILL after the grace period. */
  stop(): Promise<void> {
    return stopProcess(this.child, 10_000);
  }
}

export class Cluster {
  readonly keys: DevKeys;
  /** The master's dashboard operator token (CN_DASHBOARD_TOKEN), fresh for each cluster. */
  readonly dashboardToken = randomBytes(16).toString("hex");
  readonly processes = new Map<string, KeeperProcess>();
  node!: HardhatNode;
  admin!: Chain;
  deploymentFile!: string;
  economy!: EconomySettings;
  runId!: bigint;
  discoveryUrl!: string;
  masterUrl!: string;
  /**
   * The JSON-RPC URL keepers are given (default: the Hardhat node's). A test may put something between
   * them and the node, e.g. a proxy it can cut.
   */
  keeperRpcUrl: string | undefined;
  private readonly ports = new Map<string, number>();

  private constructor(readonly options: ClusterOptions) {
    this.keys = { ...devKeys(), ...(options.nodeKeys ? { nodes: options.nodeKeys } : {}) };
  }

  /** Chain, deployment, roles and an open, started run whose master is the development master key. */
  static async start(options: ClusterOptions, progress: (text: string) => void = () => {}): Promise<Cluster> {
    const cluster = new Cluster(options);
    mkdirSync(options.logDir, { recursive: true });
    const rpcPort = options.rpcPort ?? (await freePort());
    const since = (started: number) => `${((performance.now() - started) / 1000).toFixed(1)} s`;
    let step = performance.now();
    progress(`starting hardhat node on 127.0.0.1:${rpcPort} ...`);
    cluster.node = await startHardhatNode(rpcPort, path.join(options.logDir, "hardhat-node.log"));
    progress(`hardhat node answers on ${cluster.node.url} (${since(step)})`);
    try {
      const economy = resolveEconomy(options.economy);
      cluster.economy = economy;
      progress(
        `deploying the system with Ignition (epochs of ${economy.epochLength} s: PoC ${economy.pocDuration} s, PoC validation ` +
          `${economy.pocValidationDuration} s; epoch 1 starts in ${economy.genesisDelaySec} s) ...`,
      );
      const root = options.deploymentsRoot ?? ROOT;
      const parametersFile = path.join(options.logDir, "ignition-parameters.json");
      writeFileSync(parametersFile, JSON.stringify(economyParameters(economy, Math.floor(Date.now() / 1000)), null, 2));
      step = performance.now();
      // The deploy script reports each future Ignition completes ("[deploy] 7/31 …"): passed on at most
      // every 3 s, so that the deployment shows it moves without a line per contract.
      let shownAt = 0;
      let lastDeployLine = "";
      await runHardhat(
        ["run", "scripts/deploy.ts", "--network", "localhost"],
        { LOCALHOST_RPC_URL: cluster.node.url, COMPUTENET_DEPLOYMENTS_ROOT: root, COMPUTENET_PARAMETERS: parametersFile },
        180_000,
        (line) => {
          const match = /^\[deploy\] (\d+\/\d+) /.exec(line);
          if (!match) return;
          lastDeployLine = match[1];
          if (performance.now() - shownAt < 3_000) return;
          shownAt = performance.now();
          progress(`deploying: ${match[1]} Ignition futures done (${since(step)})`);
        },
      );
      progress(`deployed${lastDeployLine ? ` (${lastDeployLine.split("/")[1]} futures)` : ""} in ${since(step)}`);
      cluster.deploymentFile = path.join(root, "deployments", "localhost.json");
      cluster.admin = await cluster.connect(cluster.keys.admin);
      step = performance.now();
      await setupDevChain(cluster.admin, cluster.keys);
      await cluster.fundNodeKeys();
      cluster.discoveryUrl = `http://127.0.0.1:${await cluster.port("discovery", 8700)}`;
      cluster.masterUrl = `http://127.0.0.1:${await cluster.port("master", 8720)}`;
      cluster.runId = await cluster.createRun(options.requirements ?? DEVNET_REQUIREMENTS);
      progress(`development roles and tokens granted; run ${cluster.runId} created and started by the buyer (${since(step)})`);
      return cluster;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  /** Node keys that are not development accounts (a test's own, `freshNodeKeys`) get ETH for their transactions. */
  private async fundNodeKeys(): Promise<void> {
    for (const key of this.keys.nodes) {
      const address = new Wallet(key).address;
      if ((await this.admin.provider.getBalance(address)) > 0n) continue;
      await this.admin.provider.send("hardhat_setBalance", [address, `0x${NODE_KEY_ETH.toString(16)}`]);
    }
  }

  connect(privateKey?: string): Promise<Chain> {
    return connectChain({ rpcUrl: this.node.url, deploymentFile: this.deploymentFile, privateKey, pollingIntervalMs: 200 });
  }

  /** The master's dashboard with the operator token in the fragment (never sent to the server). */
  get dashboardUrl(): string {
    return `${this.masterUrl}/dashboard#token=${this.dashboardToken}`;
  }

  get masterAddress(): string {
    return new Wallet(this.keys.master).address;
  }

  nodeAddress(i: number): string {
    return new Wallet(this.keys.nodes[i]).address;
  }

  private async port(name: string, fixed: number): Promise<number> {
    let port = this.ports.get(name);
    if (port === undefined) {
      port = this.options.fixedPorts ? fixed : await freePort();
      this.ports.set(name, port);
    }
    return port;
  }

  private async createRun(requirements: RunRequirements): Promise<bigint> {
    const buyer = await this.connect(this.keys.buyer);
    try {
      const tx = new TxSender({ logger: createLogger({ component: "cluster", level: "warn" }), interfaces: contractInterfaces(), signer: buyer.signer as never });
      const runs = buyer.contracts.trainingRuns;
      const budget = 10_000n * 10n ** 18n;
      await tx.send("approve", () => buyer.contracts.token.approve(runs.getAddress(), budget));
      const receipt = await tx.send("createRun", () =>
        runs.createRun({ master: this.masterAddress, pricePerUnit: 10n ** 18n, maxMembers: 10, budget, discoveryURI: this.discoveryUrl, requirements }),
      );
      const runId = receipt.logs.map((l) => runs.interface.parseLog(l)).find((e) => e?.name === "RunCreated")!.args.runId as bigint;
      await tx.send("startRun", () => runs.startRun(runId));
      return runId;
    } finally {
      buyer.provider.destroy();
    }
  }

  private common(name: string): string[] {
    return ["--rpc-url", this.keeperRpcUrl ?? this.node.url, "--deployment", this.deploymentFile, "--poll-ms", "250", "--data-dir", path.join(this.options.logDir, name)];
  }

  /** Starts `computenet <args>` as a child process named `name` (log: <logDir>/<name>.log). */
  spawn(name: string, args: string[], env: Record<string, string> = {}): KeeperProcess {
    const log = createWriteStream(path.join(this.options.logDir, `${name}.log`), { flags: "a" });
    const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const keeper = new KeeperProcess(name, child, log);
    this.processes.set(name, keeper);
    return keeper;
  }

  async startDiscovery(): Promise<KeeperProcess> {
    const port = await this.port("discovery", 8700);
    const p = this.spawn("discovery", ["discovery", ...this.common("discovery"), "--port", String(port)]);
    await p.waitFor(/discovery listening on \S+/);
    return p;
  }

  async startValidator(i = 0, extra: string[] = [], env: Record<string, string> = {}): Promise<KeeperProcess> {
    const name = `validator-${i + 1}`;
    const port = await this.port(name, 8710 + i);
    const p = this.spawn(name, ["validator", ...this.common(name), "--port", String(port), "--discovery-url", this.discoveryUrl, "--challenge-n", "128", ...extra], {
      CN_PRIVATE_KEY: this.keys.validators[i],
      ...env,
    });
    await p.waitFor(/validator listening on \S+/);
    return p;
  }

  /** The run's master (the development master key), or another master process with `key` under `name`. */
  async startMaster(extra: string[] = [], key = this.keys.master, name = "master", env: Record<string, string> = {}): Promise<KeeperProcess> {
    const port = await this.port(name, 8720);
    const heartbeat = String(this.options.heartbeatSec ?? 2);
    const p = this.spawn(
      name,
      ["master", ...this.common(name), "--port", String(port), "--run-id", String(this.runId), "--discovery-url", this.discoveryUrl, "--heartbeat-interval-sec", heartbeat, "--reconcile-ms", "1000", ...extra],
      { CN_PRIVATE_KEY: key, CN_DASHBOARD_TOKEN: this.dashboardToken, ...env },
    );
    await p.waitFor(/master listening on \S+/);
    return p;
  }

  /** Miner i (0-based): provider key i pays, node key i identifies. Resolves once it listens (or exits). */
  async startMiner(i: number, extra: string[] = [], env: Record<string, string> = {}, waitListening = true): Promise<KeeperProcess> {
    const name = `miner-${i + 1}`;
    const port = await this.port(name, 8731 + i);
    const heartbeat = String(this.options.heartbeatSec ?? 2);
    const p = this.spawn(
      name,
      ["miner", ...this.common(name), "--port", String(port), "--run-id", String(this.runId), "--discovery-url", this.discoveryUrl, "--heartbeat-interval-sec", heartbeat, ...extra],
      { CN_PRIVATE_KEY: this.keys.providers[i], CN_NODE_KEY: this.keys.nodes[i], ...env },
    );
    if (waitListening) await p.waitFor(/miner listening on \S+/, 120_000);
    return p;
  }

  /** The buyer's signed client for the master's API. */
  buyer(): { call<T>(method: string, pathAndQuery: string, body?: unknown): Promise<T>; request<T>(method: string, pathAndQuery: string, body?: unknown): Promise<{ status: number; body: T }> } {
    const client = new SignedClient(new Wallet(this.keys.buyer), this.admin.chainId);
    const audience = this.masterAddress;
    return {
      call: (method, p, body) => client.call(method, `${this.masterUrl}${p}`, { audience, body }),
      request: (method, p, body) => client.request(method, `${this.masterUrl}${p}`, { audience, body }),
    };
  }

  async stop(): Promise<void> {
    await Promise.all([...this.processes.values()].map((p) => p.stop()));
    const deploymentId = this.admin?.deployment.deploymentId;
    this.admin?.provider.destroy();
    await this.node?.stop();
    if (deploymentId) await removeLocalJournal(ROOT, deploymentId);
  }
}
