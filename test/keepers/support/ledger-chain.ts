/**
 * The epoch economy on a devchain (support/devchain.ts: a real `hardhat node` with the system deployed),
 * driven over JSON-RPC for keeper tests of TaskLedger tasks: one connection per development key, nodes
 * registered and validated, runs opened and joined with the master's signed invite, power given for real
 * (seeds, PoC commitments, verdicts from whoever holds verdict weight: the bootstrap validators or the nodes
 * with power in the epoch before), jumps of the node's clock to the start of an epoch's phase (the keepers
 * judge phases by the chain's time, so they follow), block production stopped and restarted, and reads of
 * TaskLedger's logs.
 */
import { AbiCoder, type EventLog, JsonRpcProvider, type NonceManager, Wallet, getAddress, id, keccak256 } from "ethers";
import { type Chain, chainWithKey } from "../../../keepers/shared/chain.js";
import { PHASES, type PhaseName } from "../../../keepers/shared/epochs.js";
import { gpuModel, signInvite, signNodeConsent } from "../../../scripts/lib/protocol.js";
import { rpc } from "../../../scripts/lib/processes.js";
import type { DevChain } from "./devchain.js";

const coder = AbiCoder.defaultAbiCoder();
const ZERO_HASH = `0x${"0".repeat(64)}`;
/** The interval of the dev node's blocks (hardhat.config.ts, network `devnode`: `mining.interval`). */
const DEVNODE_INTERVAL_MS = 1000;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns something truthy; throws after `timeoutMs`. */
export async function until<T>(what: string, probe: () => T | Promise<T>, timeoutMs = 30_000, stepMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

export interface RunOptions {
  /** Private key of the run's master (default: the development master). */
  masterKey?: string;
  pricePerUnit?: bigint;
  budget?: bigint;
  maxMembers?: number;
}

export class EconomyChain {
  /**
   * The tests' own connection to the node, without ethers' 250 ms cache of identical requests: a test reads
   * what it just changed (a status, a commitment, the time after a jump). Keepers connect on their own.
   */
  readonly provider: JsonRpcProvider;
  private readonly chains = new Map<string, Chain>();
  /** Nodes registered and validated here (address → key): the candidates for verdicts. */
  readonly nodeKeys = new Map<string, string>();
  readonly admin: Chain;

  constructor(readonly dev: DevChain) {
    this.provider = new JsonRpcProvider(dev.rpcUrl, undefined, { staticNetwork: true, cacheTimeout: -1, pollingInterval: 50 });
    this.admin = this.chain(dev.keys.admin);
  }

  /**
   * The tests acting with `key`. Its nonce manager counts afresh from the node each time: a keeper under
   * test may have sent with the same key since (over its own connection).
   */
  chain(key: string): Chain {
    let chain = this.chains.get(key);
    if (!chain) {
      chain = chainWithKey({ ...this.dev.admin, provider: this.provider }, key);
      this.chains.set(key, chain);
    }
    (chain.signer as NonceManager).reset();
    return chain;
  }

  close(): void {
    this.provider.destroy();
  }

  rpc(method: string, params: unknown[] = []): Promise<unknown> {
    return rpc(this.dev.rpcUrl, method, params);
  }

  /** Timestamp of the latest block: the "now" of views (eth_call at the latest block). */
  async now(): Promise<bigint> {
    const block = (await this.rpc("eth_getBlockByNumber", ["latest", false])) as { timestamp: string };
    return BigInt(block.timestamp);
  }

  async blockNumber(): Promise<number> {
    return Number(await this.rpc("eth_blockNumber"));
  }

  /** Transactions `address` sent that were mined. */
  async txCount(address: string): Promise<number> {
    return Number(await this.rpc("eth_getTransactionCount", [address, "latest"]));
  }

  /**
   * Stops (false) or restarts (true) block production: automine and the block the node mines every second
   * (hardhat.config.ts, network `devnode`), so that a transaction sent meanwhile stays pending.
   */
  async setMining(on: boolean): Promise<void> {
    if (on) {
      await this.rpc("evm_setIntervalMining", [DEVNODE_INTERVAL_MS]);
      await this.rpc("evm_setAutomine", [true]);
    } else {
      await this.rpc("evm_setAutomine", [false]);
      await this.rpc("evm_setIntervalMining", [0]);
    }
  }

  async mine(): Promise<void> {
    await this.rpc("evm_mine");
  }

  /** Hashes of the transactions from `from` waiting in the node's mempool (block production stopped). */
  async pendingFrom(from: string): Promise<string[]> {
    const block = (await this.rpc("eth_getBlockByNumber", ["pending", true])) as { transactions: Array<{ hash: string; from: string }> };
    return block.transactions.filter((t) => getAddress(t.from) === getAddress(from)).map((t) => t.hash);
  }

  // ---------------------------------------------------------------- nodes and runs

  /** Registers dev node `i` (provider `i` stakes the minimum) and has it pass its hardware challenge. */
  async onboard(i: number): Promise<string> {
    const nodeKey = this.dev.keys.nodes[i];
    const node = new Wallet(nodeKey).address;
    const provider = this.chain(this.dev.keys.providers[i]);
    const { registry, token } = provider.contracts;
    const stake = await registry.minimumStake(0);
    await (await token.approve(await registry.getAddress(), stake)).wait();
    const deadline = (await this.now()) + 3600n;
    const consent = await signNodeConsent(
      new Wallet(nodeKey),
      { chainId: provider.chainId, verifyingContract: await registry.getAddress() },
      { provider: provider.wallet!.address, nonce: await registry.nonces(node), deadline },
    );
    const caps = { gpuCount: 0, gpuModel: gpuModel(""), gpuMemoryMB: 0, cpuCores: 4, ramMB: 8192, storageGB: 100 };
    await (await registry.registerNode(node, caps, stake, deadline, consent)).wait();
    const validator = this.chain(this.dev.keys.validators[0]);
    const capsId = await validator.contracts.registry.capsIdOf(node);
    await (await validator.contracts.challengeBoard.reportChallenge(node, capsId, true, id(`challenge of ${node}`))).wait();
    if (!(await validator.contracts.challengeBoard.isValidated(node))) throw new Error(`node ${node} not validated`);
    this.nodeKeys.set(node, nodeKey);
    return node;
  }

  /** A run of the development buyer, started; returns its id. */
  async createRun(options: RunOptions = {}): Promise<bigint> {
    const buyer = this.chain(this.dev.keys.buyer);
    const runs = buyer.contracts.trainingRuns;
    const budget = options.budget ?? 1_000_000n;
    const allowance = await buyer.contracts.token.allowance(buyer.wallet!.address, await runs.getAddress());
    if (allowance < budget) await (await buyer.contracts.token.approve(await runs.getAddress(), 2n ** 200n)).wait();
    await (
      await runs.createRun({
        master: new Wallet(options.masterKey ?? this.dev.keys.master).address,
        pricePerUnit: options.pricePerUnit ?? 10n,
        maxMembers: options.maxMembers ?? 10,
        budget,
        discoveryURI: "http://127.0.0.1:1",
        requirements: { minGpuCount: 0, minGpuMemoryMB: 0, minCpuCores: 0, minRamMB: 0, minStorageGB: 0, allowedGpuModels: [] },
      })
    ).wait();
    const runId = await runs.runCount();
    await (await runs.startRun(runId)).wait();
    return runId;
  }

  /** Node `node` registers for the run (its provider) and accepts the invite of the run's master. */
  async join(runId: bigint, node: string, masterKey = this.dev.keys.master): Promise<void> {
    const i = this.dev.keys.nodes.indexOf(this.nodeKeys.get(node)!);
    const provider = this.chain(this.dev.keys.providers[i]);
    await (await provider.contracts.trainingRuns.registerForRun(runId, node)).wait();
    const asNode = this.chain(this.nodeKeys.get(node)!);
    const runs = asNode.contracts.trainingRuns;
    const nonce = BigInt(keccak256(coder.encode(["uint256", "address"], [runId, node])));
    const expiry = (await this.now()) + 3600n;
    const generation = await runs.inviteGenerationOf(runId, node);
    const signature = await signInvite(new Wallet(masterKey), { chainId: asNode.chainId, verifyingContract: await runs.getAddress() }, { runId, node, generation, nonce, expiry });
    await (await runs.acceptInvite(runId, node, nonce, expiry, signature)).wait();
    if (!(await runs.isMember(runId, node))) throw new Error(`${node} is not a member of run ${runId}`);
  }

  /** Enrolls `node` in the run's draws of the current epoch, sent by `key` (anyone may). */
  async enroll(runId: bigint, node: string, key = this.dev.keys.admin): Promise<void> {
    const chain = this.chain(key);
    await (await chain.contracts.taskLedger.enroll(runId, node)).wait();
  }

  // ---------------------------------------------------------------- time and power

  async phaseOf(epoch: bigint): Promise<PhaseName> {
    return PHASES[Number(await this.admin.contracts.epochManager.phaseOf(epoch))];
  }

  async currentEpoch(): Promise<bigint> {
    return this.admin.contracts.epochManager.currentEpoch();
  }

  async advance(): Promise<void> {
    await (await this.admin.contracts.epochManager.advance()).wait();
  }

  /**
   * Moves the node's clock to the start of `phase` of `epoch` (the block mined there is stamped with it), and
   * advances the epoch there when the phase lies within it (PoC, PoC validation, Work) and nobody did, as
   * keepers do at an epoch's start, unless `advance` is false. Throws when that phase is over.
   */
  async goTo(epoch: bigint, phase: Exclude<PhaseName, "NotStarted">, options: { advance?: boolean } = {}): Promise<void> {
    const em = this.admin.contracts.epochManager;
    const t = await em.timelineOf(epoch);
    const starts: Record<typeof phase, bigint> = {
      PoC: t.start,
      PoCValidation: t.pocEnd,
      Work: t.pocValidationEnd,
      Dispute: t.end,
      Claim: t.disputeEnd,
      Closed: t.claimEnd,
    };
    const start = starts[phase];
    const now = await this.now();
    if (now >= start && (await this.phaseOf(epoch)) !== phase) {
      throw new Error(`goTo: the ${phase} phase of epoch ${epoch} is over (chain time ${now}, it started at ${start})`);
    }
    const within = phase === "PoC" || phase === "PoCValidation" || phase === "Work";
    const advance = within && options.advance !== false && (await em.lastAdvancedEpoch()) < epoch;
    if (now < start) await this.rpc("evm_setNextBlockTimestamp", [Number(start)]);
    if (advance) await this.advance();
    else if (now < start) await this.mine();
    // ethers answers a read repeated within 250 ms from its cache: let the keepers' reads see the new time.
    if (now < start || advance) await sleep(300);
  }

  /**
   * Gives power in `epoch` for real: goes to its PoC phase (advancing it), each node commits a seed and its PoC
   * count, and verdict givers accept each commitment (the heaviest first, until more than the acceptance
   * share of the weight accepted). Leaves the chain in the epoch's PoC phase. Returns each node's power.
   */
  async givePower(epoch: bigint, counts: Map<string, bigint>): Promise<Map<string, bigint>> {
    await this.goTo(epoch, "PoC");
    const em = this.admin.contracts.epochManager;
    const poc = this.admin.contracts.proofOfCompute;
    if ((await em.currentEpoch()) !== epoch) throw new Error(`givePower: epoch ${epoch} is not the current epoch`);
    for (const [node, count] of counts) {
      const asNode = this.chain(this.nodeKeys.get(node)!);
      const seed = keccak256(coder.encode(["string", "address", "uint64"], ["computenet.test.seed", node, epoch]));
      if ((await em.seedCommitmentOf(epoch, node)) === ZERO_HASH) {
        await (await asNode.contracts.epochManager.commitSeed(epoch, await em.seedCommitment(seed, node))).wait();
      }
      const root = keccak256(coder.encode(["string", "address", "uint64"], ["computenet.test.pocRoot", node, epoch]));
      await (await asNode.contracts.proofOfCompute.commitPoc(epoch, root, count)).wait();
    }
    const candidates = [...this.dev.keys.validators, ...this.nodeKeys.values()];
    for (const node of counts.keys()) {
      const weighed: Array<{ key: string; weight: bigint }> = [];
      for (const key of candidates) {
        const [weight] = await poc.verdictWeightFor(epoch, node, new Wallet(key).address);
        if (weight > 0n) weighed.push({ key, weight });
      }
      weighed.sort((a, b) => (a.weight > b.weight ? -1 : a.weight < b.weight ? 1 : 0));
      for (const { key } of weighed) {
        if ((await poc.commitmentOf(epoch, node)).status !== 1n) break; // decided (accepted)
        const giver = this.chain(key);
        await (await giver.contracts.proofOfCompute.submitVerdict(epoch, node, true, id(`verdict on ${node} in ${epoch}`))).wait();
      }
      const status = (await poc.commitmentOf(epoch, node)).status;
      if (status !== 2n) throw new Error(`givePower: ${node} not accepted in epoch ${epoch} (status ${status})`);
    }
    const power = new Map<string, bigint>();
    for (const node of counts.keys()) power.set(node, await poc.powerOf(epoch, node));
    return power;
  }

  /**
   * The epoch whose PoC phase is next or now: the current one when it is still in its PoC phase (or the
   * clock has not started), else the next.
   */
  async nextPocEpoch(): Promise<bigint> {
    const epoch = await this.currentEpoch();
    if (epoch === 0n) return 1n;
    return (await this.phaseOf(epoch)) === "PoC" ? epoch : epoch + 1n;
  }

  // ---------------------------------------------------------------- TaskLedger logs

  /** TaskLedger's `name` events since `fromBlock`, decoded (filter by indexed arguments with `args`). */
  async ledgerEvents(name: string, fromBlock: number, ...args: unknown[]): Promise<EventLog[]> {
    const ledger = this.admin.contracts.taskLedger;
    const filter = (ledger.filters as unknown as Record<string, (...a: unknown[]) => Parameters<typeof ledger.queryFilter>[0]>)[name](...args);
    return (await ledger.queryFilter(filter, fromBlock)) as EventLog[];
  }
}
