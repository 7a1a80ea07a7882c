/**
 * Chain connection for keepers: provider, optional wallet, the computenet contracts from
 * `deployments/<network>.json` through TypeChain factories, and an event follower with a persisted
 * cursor (a restarted keeper resumes after the last block it fully handled: no event missed).
 */
import {
  type BaseContract,
  FeeData,
  type Interface,
  JsonRpcProvider,
  type Log,
  type LogDescription,
  NonceManager,
  type Provider,
  type Signer,
  Wallet,
  formatUnits,
  parseUnits,
} from "ethers";
import { type ContractName, readDeployment, type Deployment } from "../../scripts/lib/deployments.js";
import { LoopHealth } from "./loop-health.js";
import {
  ChallengeBoard__factory,
  ComputeToken__factory,
  EpochManager__factory,
  MinerRegistry__factory,
  TrainingRuns__factory,
  IProofOfCompute__factory,
  IRewardVault__factory,
  ISettlement__factory,
  ITaskLedger__factory,
  type IProofOfCompute,
  type IRewardVault,
  type ISettlement,
  type ITaskLedger,
  type ChallengeBoard,
  type ComputeToken,
  type EpochManager,
  type MinerRegistry,
  type TrainingRuns,
} from "../../typechain-types/index.js";
import { failpoint } from "./failpoints.js";
import type { Logger } from "./log.js";
import { type ChainSettings, describeChainSettings, resolveChainSettings } from "./profile.js";
import type { KeeperStore } from "./store.js";
import { FeeCapExceededError } from "./tx.js";

export interface Contracts {
  token: ComputeToken;
  registry: MinerRegistry;
  challengeBoard: ChallengeBoard;
  trainingRuns: TrainingRuns;
  epochManager: EpochManager;
  proofOfCompute: IProofOfCompute;
  taskLedger: ITaskLedger;
  rewardVault: IRewardVault;
  settlement: ISettlement;
}

/**
 * A JSON-RPC provider whose gas estimates leave room for the state to change before the transaction lands,
 * and whose fees never exceed the operator's cap.
 *
 * Gas: several keepers race on the same objects: a PoC verdict, a task validation or a dispute vote estimated
 * while it changes nothing can be the one that crosses a threshold by the time it is mined, and then pays
 * for the acceptance, the slashing and the bounty too (a verdict went from ~90k to ~140k gas that way, and
 * ran out of gas). Estimates are raised by half plus 100,000 gas; only the gas used is paid. On Arbitrum the
 * node's estimate already includes the L1 data fee, expressed in L2 gas, so the same headroom covers both.
 *
 * Fees: EIP-1559 fee data comes from the node (ethers: max fee = 2 × the latest base fee + the node's
 * suggested priority fee; Arbitrum's sequencer is first come, first served, so a tip buys no precedence
 * there). With `maxFeePerGas` set (`--max-fee-gwei`), a transaction is never signed with a higher max fee:
 * the max fee is lowered to the cap, and when the base fee plus the priority fee is already above it (the
 * transaction could not be included at that price) getFeeData throws FeeCapExceededError, so that nothing is
 * signed or sent; TxSender logs the refusal with both figures.
 */
export class KeeperProvider extends JsonRpcProvider {
  /** Highest max fee per gas (wei) a transaction may carry; undefined: no cap. */
  maxFeePerGas: bigint | undefined;

  override async estimateGas(tx: Parameters<JsonRpcProvider["estimateGas"]>[0]): Promise<bigint> {
    const estimate = await super.estimateGas(tx);
    return estimate + estimate / 2n + 100_000n;
  }

  override async getFeeData(): Promise<FeeData> {
    const data = await super.getFeeData();
    const cap = this.maxFeePerGas;
    if (cap === undefined) return data;
    if (data.maxFeePerGas === null || data.maxPriorityFeePerGas === null) {
      // A chain without EIP-1559: the legacy gas price is the price.
      if (data.gasPrice !== null && data.gasPrice > cap) throw new FeeCapExceededError(data.gasPrice, cap);
      return data;
    }
    const block = await this.getBlock("latest");
    const baseFee = block?.baseFeePerGas ?? (data.maxFeePerGas - data.maxPriorityFeePerGas) / 2n;
    const priority = data.maxPriorityFeePerGas;
    if (baseFee + priority > cap) throw new FeeCapExceededError(baseFee + priority, cap);
    const maxFee = data.maxFeePerGas < cap ? data.maxFeePerGas : cap;
    return new FeeData(data.gasPrice, maxFee, priority < maxFee ? priority : maxFee);
  }
}

/** `--max-fee-gwei`'s text (e.g. "0.5") in wei; undefined stays undefined. */
export function gweiToWei(gwei: string | number | undefined): bigint | undefined {
  if (gwei === undefined) return undefined;
  return parseUnits(typeof gwei === "number" ? gwei.toFixed(9) : gwei, "gwei");
}

export const formatGwei = (wei: bigint): string => formatUnits(wei, "gwei");

/** The chain's current block number, uncached (ethers caches getBlockNumber() for a polling interval). */
export async function headBlock(provider: JsonRpcProvider): Promise<number> {
  return Number(await provider.send("eth_blockNumber", []));
}

export interface Chain {
  provider: JsonRpcProvider;
  chainId: bigint;
  /** Polling interval and confirmations in effect: the flags', else the chain's profile (./profile.ts). */
  settings: ChainSettings;
  deployment: Deployment;
  /** The keeper's key (wrapped in a NonceManager for sending), when it has one. */
  wallet?: Wallet;
  signer?: Signer;
  contracts: Contracts;
}

/** All the contracts' interfaces, to decode logs and custom errors from any of them. */
export function contractInterfaces(): Interface[] {
  return [
    ComputeToken__factory.createInterface(),
    MinerRegistry__factory.createInterface(),
    ChallengeBoard__factory.createInterface(),
    TrainingRuns__factory.createInterface(),
    EpochManager__factory.createInterface(),
    IProofOfCompute__factory.createInterface(),
    ITaskLedger__factory.createInterface(),
    IRewardVault__factory.createInterface(),
    ISettlement__factory.createInterface(),
  ];
}

export async function connectChain(options: {
  rpcUrl: string;
  deploymentFile: string;
  privateKey?: string;
  /** Polling interval, ms; undefined: the chain's profile. */
  pollingIntervalMs?: number;
  /** Blocks to stay behind the head; undefined: the chain's profile. */
  confirmations?: number;
  /** Cap on the max fee per gas of every transaction, in gwei (`--max-fee-gwei`); undefined: no cap. */
  maxFeeGwei?: string | number;
}): Promise<Chain> {
  const deployment = await readDeployment(options.deploymentFile);
  const provider = new KeeperProvider(options.rpcUrl, undefined, {
    staticNetwork: true,
    pollingInterval: options.pollingIntervalMs ?? 1000,
  });
  provider.maxFeePerGas = gweiToWei(options.maxFeeGwei);
  let chainId: bigint;
  try {
    chainId = BigInt(await provider.send("eth_chainId", []));
  } catch (error) {
    provider.destroy();
    throw new Error(`cannot reach the RPC node at ${options.rpcUrl}: ${(error as Error).message}`);
  }
  if (chainId !== BigInt(deployment.chainId)) {
    provider.destroy();
    throw new Error(
      `chain id mismatch: ${options.rpcUrl} is chain ${chainId}, ${options.deploymentFile} is for chain ${deployment.chainId}`,
    );
  }
  const settings = resolveChainSettings(chainId, { pollMs: options.pollingIntervalMs, confirmations: options.confirmations });
  provider.pollingInterval = settings.pollMs;
  const wallet = options.privateKey ? new Wallet(options.privateKey, provider) : undefined;
  const signer = wallet ? new NonceManager(wallet) : undefined;
  return { provider, chainId, settings, deployment, wallet, signer, contracts: connectContracts(deployment, signer ?? provider) };
}

/**
 * Logs the chain settings in effect (once, at startup): the profile, polling interval, confirmations and fee
 * cap, and a warning on a chain without a profile of its own.
 */
export function logChainSettings(logger: Logger, chain: Chain): void {
  const { settings } = chain;
  const cap = chain.provider instanceof KeeperProvider ? chain.provider.maxFeePerGas : undefined;
  const fields = {
    chainId: settings.chainId,
    profile: settings.profile,
    pollMs: settings.pollMs,
    confirmations: settings.confirmations,
    source: settings.source,
    maxFeeGwei: cap === undefined ? null : formatGwei(cap),
  };
  const text = `${describeChainSettings(settings)}; ${cap === undefined ? "no fee cap" : `max fee ${formatGwei(cap)} gwei`}`;
  logger.info(fields, text);
  if (!settings.known) {
    logger.warn(fields, `chain ${settings.chainId} has no keeper profile: set --poll-ms and --confirmations for it`);
  }
}

/**
 * The same connection (provider, deployment) acting with another key: its contracts sign with a nonce
 * manager over `privateKey`. For a keeper holding two keys, e.g. a miner whose provider key pays the stake
 * while calls only the node may make (`commitSeed`, `completeTask`, ...) are signed by the node key. Make
 * one per key and share it: two nonce managers for one key would hand out the same nonces.
 */
export function chainWithKey(chain: Chain, privateKey: string): Chain {
  const wallet = new Wallet(privateKey, chain.provider);
  const signer = new NonceManager(wallet);
  return { ...chain, wallet, signer, contracts: connectContracts(chain.deployment, signer) };
}

function connectContracts(deployment: Deployment, runner: Signer | Provider): Contracts {
  const c = deployment.contracts;
  return {
    token: ComputeToken__factory.connect(c.ComputeToken.address, runner),
    registry: MinerRegistry__factory.connect(c.MinerRegistry.address, runner),
    challengeBoard: ChallengeBoard__factory.connect(c.ChallengeBoard.address, runner),
    trainingRuns: TrainingRuns__factory.connect(c.TrainingRuns.address, runner),
    epochManager: EpochManager__factory.connect(c.EpochManager.address, runner),
    proofOfCompute: IProofOfCompute__factory.connect(c.ProofOfCompute.address, runner),
    taskLedger: ITaskLedger__factory.connect(c.TaskLedger.address, runner),
    rewardVault: IRewardVault__factory.connect(c.RewardVault.address, runner),
    settlement: ISettlement__factory.connect(c.Settlement.address, runner),
  };
}

export interface ChainEvent {
  contract: ContractName;
  name: string;
  args: LogDescription["args"];
  blockNumber: number;
  logIndex: number;
  transactionHash: string;
}

/** Longest wait between two polls while they fail. */

export interface EventFollowerOptions {
  chain: Chain;
  store: KeeperStore;
  /** Cursor name in the store (one per follower). */
  name: string;
  logger: Logger;
  handle: (event: ChainEvent) => Promise<void>;
  /** Contracts whose logs to follow (default: all). */
  contracts?: ChainEvent["contract"][];
  pollMs?: number;
  /** Blocks to stay behind the head (reorg safety on real networks; 0 on a local node). */
  confirmations?: number;
  /**
   * Largest block range per eth_getLogs request (default 10,000). The range in use halves each time the RPC
   * node refuses one as too large (too many blocks or logs; `isLogRangeRefusal`) and doubles back after
   * RANGE_GROWTH_AFTER requests in a row succeed, so one setting fits providers with any limit.
   */
  maxRange?: number;
  /** While catching up, a progress line at most this often, ms (default 10,000). */
  progressMs?: number;
}

export const DEFAULT_MAX_LOG_RANGE = 10_000;
/** Successful eth_getLogs requests in a row after which a reduced range doubles (up to `maxRange`). */
export const RANGE_GROWTH_AFTER = 8;

// What providers answer to an eth_getLogs range they will not serve: geth and Infura ("query returned more
// than 10000 results"), Alchemy ("Log response size exceeded ... up to a 2K block range"), QuickNode
// ("eth_getLogs is limited to a 10000 range"), Ankr ("block range is too wide"), BSC-like nodes ("exceed
// maximum block range: 5000"), Nitro and others ("block range too large", "too many blocks"). Rate limits
// ("too many requests", "compute units exceeded") are not range refusals: a smaller range would not help.
const RANGE_REFUSAL = /block range|range (is )?too (large|wide|big)|range exceed|exceed(s|ed)? (the )?max(imum)? (block )?range|limited to (a |an )?[\d,]+ (block )?range|more than [\d,]+ (results|logs)|response size exceed|too many (results|logs|blocks)/i;

/** Whether an eth_getLogs failure says the range asked for is too large (a smaller one may succeed). */
export function isLogRangeRefusal(error: unknown): boolean {
  const texts: string[] = [];
  const collect = (value: unknown, depth: number) => {
    if (depth > 3 || value === null || typeof value !== "object") return;
    const record = value as Record<string, unknown>;
    for (const key of ["message", "shortMessage"]) if (typeof record[key] === "string") texts.push(record[key] as string);
    for (const key of ["error", "info", "cause"]) collect(record[key], depth + 1);
  };
  if (typeof error === "string") texts.push(error);
  collect(error, 0);
  return texts.some((text) => RANGE_REFUSAL.test(text) && !/too many requests|rate limit|compute units/i.test(text));
}

/**
 * Follows the contracts' logs from the persisted cursor (or the deployment's start block) to the head,
 * in block and log order, calling `handle` for each. The cursor advances only past blocks whose every
 * log was handled; a handler that throws stops the batch and the block is retried at the next poll, so
 * delivery is at-least-once and handlers must be idempotent (they check chain state before acting).
 */
export class EventFollower {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private inFlight: Promise<number> = Promise.resolve(0);
  private stopped = false;
  private readonly byAddress = new Map<string, { name: ChainEvent["contract"]; contract: BaseContract }>();
  private readonly waiters: Array<{ block: number; resolve: () => void }> = [];
  /** Backoff and log lines while polls fail (the RPC node unreachable, a handler failing). */
  private readonly health: LoopHealth;
  /** Largest, and current, blocks per eth_getLogs request (see `maxRange`), and requests in a row that succeeded with the current one. */
  private readonly maxRange: number;
  private range: number;
  private rangeSuccesses = 0;
  /** Ranges already refused once (a repeat is logged at debug): at most log2(maxRange) of them. */
  private readonly refusedRanges = new Set<number>();

  constructor(private readonly options: EventFollowerOptions) {
    this.maxRange = options.maxRange ?? DEFAULT_MAX_LOG_RANGE;
    if (!Number.isInteger(this.maxRange) || this.maxRange < 1) throw new Error(`event follower ${options.name}: maxRange must be a positive integer, got ${this.maxRange}`);
    this.range = this.maxRange;
    this.health = new LoopHealth({ what: "event follower: poll", logger: options.logger, intervalMs: options.pollMs ?? 500 });
    const { contracts } = options.chain;
    const all: Array<[ChainEvent["contract"], BaseContract]> = [
      ["ComputeToken", contracts.token],
      ["MinerRegistry", contracts.registry],
      ["ChallengeBoard", contracts.challengeBoard],
      ["TrainingRuns", contracts.trainingRuns],
      ["EpochManager", contracts.epochManager],
      ["ProofOfCompute", contracts.proofOfCompute],
      ["TaskLedger", contracts.taskLedger],
      ["RewardVault", contracts.rewardVault],
      ["Settlement", contracts.settlement],
    ];
    for (const [name, contract] of all) {
      if (options.contracts && !options.contracts.includes(name)) continue;
      const address = options.chain.deployment.contracts[name].address.toLowerCase();
      this.byAddress.set(address, { name, contract });
    }
  }

  /** Last block fully handled. */
  get cursor(): number {
    return this.options.store.cursor(this.options.name)?.block ?? this.options.chain.deployment.startBlock - 1;
  }

  start(): void {
    this.stopped = false;
    const loop = async () => {
      if (this.stopped) return;
      await this.poll();
      if (!this.stopped) this.timer = setTimeout(loop, this.nextPollDelayMs);
    };
    void loop();
  }

  /**
   * How long to wait before the next poll: the poll interval, or while polls fail (the RPC node
   * unreachable), a backoff doubling up to 5 s. Keepers that drive `poll()` themselves wait this long.
   */
  get nextPollDelayMs(): number {
    return this.health.delayMs;
  }

  /** Stops polling; resolves once a pass in flight has finished (so the store can be closed after). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.inFlight.catch(() => 0);
  }

  /** Resolves once every block up to `block` has been handled. */
  waitFor(block: number): Promise<void> {
    if (this.cursor >= block) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ block, resolve }));
  }

  /** One catch-up pass; returns the number of events handled. Safe to call concurrently (serialised). */
  poll(): Promise<number> {
    if (this.running) return this.inFlight;
    this.running = true;
    this.inFlight = this.pass();
    return this.inFlight;
  }

  private async pass(): Promise<number> {
    const log = this.options.logger;
    let handled = 0;
    try {
      const head = (await headBlock(this.options.chain.provider)) - (this.options.confirmations ?? 0);
      let from = this.cursor + 1;
      const progressMs = this.options.progressMs ?? 10_000;
      const started = Date.now();
      const firstBlock = from;
      let lastProgress = started;
      while (from <= head && !this.stopped) {
        const to = Math.min(head, from + this.range - 1);
        let logs: Log[];
        try {
          logs = await this.options.chain.provider.getLogs({
            address: [...this.byAddress.keys()],
            fromBlock: from,
            toBlock: to,
          });
        } catch (error) {
          const asked = to - from + 1;
          if (asked <= 1 || !isLogRangeRefusal(error)) throw error;
          // Too many blocks or logs at once for this RPC node: ask for half as many, from the same block.
          this.range = Math.max(1, Math.floor(asked / 2));
          this.rangeSuccesses = 0;
          const first = !this.refusedRanges.has(asked);
          this.refusedRanges.add(asked);
          (first ? log.warn : log.debug).call(
            log,
            { err: String((error as Error)?.message ?? error).slice(0, 300), refused: asked, range: this.range, from },
            `event follower: the RPC node refused the logs of ${asked} blocks at once; asking for ${this.range} at a time`,
          );
          continue;
        }
        if (this.range < this.maxRange && ++this.rangeSuccesses >= RANGE_GROWTH_AFTER) {
          this.range = Math.min(this.maxRange, this.range * 2);
          this.rangeSuccesses = 0;
        }
        logs.sort((a, b) => a.blockNumber - b.blockNumber || a.index - b.index);
        let lastBlock = from - 1;
        for (const entry of logs) {
          if (entry.blockNumber !== lastBlock && lastBlock >= from) this.advance(lastBlock);
          lastBlock = entry.blockNumber;
          const event = this.decode(entry);
          if (event) {
            await this.options.handle(event);
            handled++;
            failpoint("chain.afterEvent", event.name);
          }
        }
        this.advance(to);
        from = to + 1;
        const now = Date.now();
        if (from <= head && now - lastProgress >= progressMs) {
          lastProgress = now;
          const perSec = ((from - firstBlock) * 1000) / Math.max(1, now - started);
          log.info(
            { cursor: to, head, behind: head - to, range: this.range, blocksPerSec: Math.round(perSec), etaSec: Math.round((head - to) / Math.max(perSec, 1e-9)) },
            "event follower: catching up",
          );
        }
      }
      if (Date.now() - started >= progressMs && from > firstBlock) {
        log.info({ cursor: this.cursor, blocks: from - firstBlock, seconds: Math.round((Date.now() - started) / 100) / 10, range: this.range }, "event follower: caught up");
      }
      this.health.succeeded();
    } catch (error) {
      if (!this.stopped) this.health.failed(error, { cursor: this.cursor });
    } finally {
      this.running = false;
    }
    return handled;
  }

  private advance(block: number): void {
    if (block <= this.cursor) return;
    this.options.store.setCursor(this.options.name, { block });
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      if (this.waiters[i].block <= block) {
        this.waiters[i].resolve();
        this.waiters.splice(i, 1);
      }
    }
  }

  private decode(entry: Log): ChainEvent | undefined {
    const target = this.byAddress.get(entry.address.toLowerCase());
    if (!target) return undefined;
    const parsed = target.contract.interface.parseLog({ topics: [...entry.topics], data: entry.data });
    if (!parsed) return undefined;
    return {
      contract: target.name,
      name: parsed.name,
      args: parsed.args,
      blockNumber: entry.blockNumber,
      logIndex: entry.index,
      transactionHash: entry.transactionHash,
    };
  }
}
