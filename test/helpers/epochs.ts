/**
 * Epoch helpers for contract tests (ProofOfCompute, TaskLedger, Settlement, ...), on top of `deploySystem`:
 *
 * - `goToPhase`: time travel to the start of a phase of an epoch (advancing the epoch as keepers do);
 * - `validatedNode` / `validatedNodes`: registered nodes that passed their hardware challenge;
 * - `fundedAccounts`: as many extra accounts as a test needs (Hardhat has 20 signers; 200 nodes need more);
 * - `givePower`: one epoch's PoC done for real (seeds, commitments, verdicts) so that the given nodes hold
 *   power, leaving the chain at the start of the epoch's Work phase;
 * - `seedFor`, `pocRootFor`: the deterministic seeds and PoC roots `givePower` uses, for later claims.
 *
 * Time: after `goToPhase` to a phase starting at `t`, the last block is stamped `t` (views read that second;
 * when the epoch needed advancing, the `advance` transaction is that block) and the next transaction runs at
 * `t + 1`, still inside the phase (phases last far longer than a second in tests).
 */
import type { NetworkConnection } from "hardhat/types/network";
import { AbiCoder, Wallet, keccak256 } from "ethers";
import { type Capabilities, EpochPhase } from "../../scripts/lib/protocol.js";
import { type Account, H100_NODE, type System, registerNode, validateNode } from "./system.js";

export type Phase = (typeof EpochPhase)[keyof typeof EpochPhase];

const BPS = 10_000n;
const coder = AbiCoder.defaultAbiCoder();

/** Accounts that `validatedNode` or `givePower` saw, per system: the candidates `givePower` asks for verdicts. */
const knownNodes = new WeakMap<System, Map<string, Account>>();
/** How many accounts `fundedAccounts` made per system (keys are derived from it). */
const accountsMade = new WeakMap<System, number>();

function remember(sys: System, node: Account) {
  let nodes = knownNodes.get(sys);
  if (nodes === undefined) knownNodes.set(sys, (nodes = new Map()));
  nodes.set(node.address, node);
}

/** The seed `givePower` commits for `node` in `epoch`: keccak256(abi.encode("computenet.test.seed", node, epoch)). */
export function seedFor(node: string, epoch: bigint): string {
  return keccak256(coder.encode(["string", "address", "uint64"], ["computenet.test.seed", node, epoch]));
}

/** The PoC root `givePower` commits for `node` in `epoch` (a stand-in: no Merkle tree is checked on chain). */
export function pocRootFor(node: string, epoch: bigint): string {
  return keccak256(coder.encode(["string", "address", "uint64"], ["computenet.test.pocRoot", node, epoch]));
}

/** The time `phase` of `epoch` starts, from the EpochManager's timeline (NotStarted has no start). */
export async function phaseStart(sys: System, epoch: bigint, phase: Phase): Promise<bigint> {
  const t = await sys.epochManager.timelineOf(epoch);
  const starts: Record<Phase, bigint | undefined> = {
    [EpochPhase.NotStarted]: undefined,
    [EpochPhase.PoC]: t.start,
    [EpochPhase.PoCValidation]: t.pocEnd,
    [EpochPhase.Work]: t.pocValidationEnd,
    [EpochPhase.Dispute]: t.end,
    [EpochPhase.Claim]: t.disputeEnd,
    [EpochPhase.Closed]: t.claimEnd,
  };
  const start = starts[phase];
  if (start === undefined) throw new Error(`phase ${phase} of epoch ${epoch} has no start`);
  return start;
}

/**
 * Moves the chain to the start of `phase` of `epoch`. Does not move when `epoch` is already in that phase;
 * throws when the phase is over (time only goes forward). When the phase is PoC, PoC validation or Work (the
 * epoch is then the current one) and nobody advanced the epoch yet, calls `advance()` as keepers do at an
 * epoch's start, so that its PoC beacon exists, unless `options.advance` is false.
 */
export async function goToPhase(
  connection: NetworkConnection,
  sys: System,
  epoch: bigint,
  phase: Phase,
  options: { advance?: boolean } = {},
): Promise<void> {
  const { time } = connection.networkHelpers;
  const em = sys.epochManager;
  const start = await phaseStart(sys, epoch, phase);
  const now = BigInt(await time.latest());
  if (now >= start && Number(await em.phaseOf(epoch)) !== phase) {
    throw new Error(`goToPhase: phase ${phase} of epoch ${epoch} is over (now ${now}, it started at ${start})`);
  }
  // PoC, PoC validation and Work lie within the epoch: there it is the current epoch.
  const within = phase === EpochPhase.PoC || phase === EpochPhase.PoCValidation || phase === EpochPhase.Work;
  const advance = within && options.advance !== false && (await em.lastAdvancedEpoch()) < epoch;
  if (now < start) {
    if (advance) await time.setNextBlockTimestamp(start);
    else await time.increaseTo(start);
  }
  if (advance) await em.connect(sys.admin).advance();
}

/**
 * `count` new accounts (ethers Wallets on the test's provider), each given `eth` (default 1000 ETH) and, when
 * `tokens` > 0, that many tokens from the admin with unlimited approvals for the registry and TrainingRuns
 * (as `deploySystem` funds its actors). Keys are derived from a per-system counter, so a run is reproducible.
 */
export async function fundedAccounts(
  connection: NetworkConnection,
  sys: System,
  count: number,
  options: { eth?: bigint; tokens?: bigint } = {},
): Promise<Wallet[]> {
  const { ethers, networkHelpers } = connection;
  const eth = options.eth ?? 1000n * 10n ** 18n;
  const tokens = options.tokens ?? 0n;
  const first = accountsMade.get(sys) ?? 0;
  accountsMade.set(sys, first + count);
  const spenders = [await sys.registry.getAddress(), await sys.trainingRuns.getAddress()];
  const accounts: Wallet[] = [];
  for (let i = first; i < first + count; i++) {
    const key = keccak256(coder.encode(["string", "uint256"], ["computenet.test.account", i]));
    const wallet = new Wallet(key, ethers.provider);
    await networkHelpers.setBalance(wallet.address, eth);
    if (tokens > 0n) {
      await sys.token.connect(sys.admin).transfer(wallet.address, tokens);
      for (const spender of spenders) await sys.token.connect(wallet).approve(spender, ethers.MaxUint256);
    }
    accounts.push(wallet);
  }
  return accounts;
}

/**
 * Makes `node` a registered node under `provider` (with `caps`, at the minimum stake) that passed its hardware
 * challenge (REQUIRED_APPROVALS approvals from the system's validators); skips what is already done.
 */
export async function validatedNode<T extends Account>(
  connection: NetworkConnection,
  sys: System,
  provider: Account,
  node: T,
  caps: Capabilities = H100_NODE,
): Promise<T> {
  if (!(await sys.registry.isRegistered(node.address))) await registerNode(connection, sys, provider, node, caps);
  if (!(await sys.challengeBoard.isValidated(node.address))) await validateNode(sys, node.address);
  remember(sys, node);
  return node;
}

/**
 * `count` new funded accounts (`fundedAccounts`), each a validated node under `provider` (default: the first
 * provider, which holds 1M tokens: enough for 400 H100 nodes at the test's minimum stake).
 */
export async function validatedNodes(
  connection: NetworkConnection,
  sys: System,
  count: number,
  provider: Account = sys.providers[0],
  caps: Capabilities = H100_NODE,
): Promise<Wallet[]> {
  const nodes = await fundedAccounts(connection, sys, count);
  for (const node of nodes) await validatedNode(connection, sys, provider, node, caps);
  return nodes;
}

export interface PowerEntry {
  /** A validated node (`validatedNode`). */
  node: Account;
  /** Its PoC count: its raw power once accepted. */
  count: bigint | number;
}

export interface GivenPower {
  epoch: bigint;
  /** Seed committed by each node (entries and `seedOnly`), by address: what it reveals at its claim. */
  seeds: Map<string, string>;
  /** Power of each entry's node once all are accepted (the cap applied), by address. */
  power: Map<string, bigint>;
  totalPower: bigint;
}

/**
 * Gives power in `epoch` for real, as the keepers would: goes to the epoch's PoC phase (advancing it), commits
 * each node's seed (`seedFor`) unless it did already, commits its PoC (`pocRootFor`, `count`), and has enough
 * verdict givers accept each commitment, then goes to the start of the epoch's Work phase.
 *
 * Verdict givers are taken from `options.voters`, or else from the system's validators and every node
 * `validatedNode` / `givePower` saw, heaviest first. While the epoch before has no power the bootstrap
 * validators decide (three verdicts per node in the test system); otherwise the nodes that held power in the
 * epoch before do, and accepting a node takes verdicts worth more than two thirds of the others' power: with
 * many small nodes in the epoch before that is many transactions per node (give a few nodes most of the power
 * there, or leave an epoch without power in between, to keep a test fast). For scale: `validatedNodes` of 200
 * takes about 4 s, and `givePower` to those 200 in a bootstrap epoch about 8 s (Hardhat's in-process network).
 *
 * `options.seedOnly`: nodes that only commit a seed (no PoC) in `epoch`. `options.seeds`: the seed a node
 * commits instead of its `seedFor` (by address).
 */
export async function givePower(
  connection: NetworkConnection,
  sys: System,
  epoch: bigint,
  entries: PowerEntry[],
  options: { voters?: Account[]; seedOnly?: Account[]; seeds?: Map<string, string> } = {},
): Promise<GivenPower> {
  const em = sys.epochManager;
  const poc = sys.proofOfCompute;
  await goToPhase(connection, sys, epoch, EpochPhase.PoC);
  if ((await em.currentEpoch()) !== epoch) throw new Error(`givePower: epoch ${epoch} is not the current epoch`);

  const seeds = new Map<string, string>();
  for (const node of [...entries.map((e) => e.node), ...(options.seedOnly ?? [])]) {
    const seed = options.seeds?.get(node.address) ?? seedFor(node.address, epoch);
    seeds.set(node.address, seed);
    const commitment = await em.seedCommitment(seed, node.address);
    const existing = await em.seedCommitmentOf(epoch, node.address);
    if (existing === "0x".padEnd(66, "0")) await em.connect(node).commitSeed(epoch, commitment);
    else if (existing !== commitment) throw new Error(`givePower: ${node.address} committed another seed for ${epoch}`);
  }
  for (const { node, count } of entries) {
    remember(sys, node);
    await poc.connect(node).commitPoc(epoch, pocRootFor(node.address, epoch), BigInt(count));
  }

  const candidates = new Map<string, Account>();
  for (const v of options.voters ?? [...sys.validators, ...(knownNodes.get(sys)?.values() ?? [])]) {
    candidates.set(v.address, v);
  }
  // Weights are the same for every commitment of the epoch but for the node's own, which is left out; a node
  // that held all the power of the epoch before is judged by the bootstrap set instead.
  const weigh = async (bootstrap: boolean) => {
    const role = await poc.VALIDATOR_ROLE();
    const weighed: Array<{ account: Account; weight: bigint }> = [];
    for (const account of candidates.values()) {
      const weight = bootstrap
        ? (await poc.hasRole(role, account.address)) ? 1n : 0n
        : (await poc.verdictWeightOf(epoch, account.address)).weight;
      if (weight > 0n) weighed.push({ account, weight });
    }
    return weighed.sort((a, b) => (a.weight > b.weight ? -1 : a.weight < b.weight ? 1 : 0));
  };
  const byMode = new Map<boolean, Array<{ account: Account; weight: bigint }>>();
  const acceptShareBps = await poc.acceptShareBps();
  for (const { node } of entries) {
    const [, total, bootstrap] = await poc.verdictWeightFor(epoch, node.address, node.address);
    if (!byMode.has(bootstrap)) byMode.set(bootstrap, await weigh(bootstrap));
    let accepted = 0n;
    for (const { account, weight } of byMode.get(bootstrap)!) {
      if (accepted * BPS > acceptShareBps * total) break;
      if (account.address === node.address) continue;
      const evidence = keccak256(coder.encode(["string", "address", "address"], ["evidence", node.address, account.address]));
      await poc.connect(account).submitVerdict(epoch, node.address, true, evidence);
      accepted += weight;
    }
    const status = (await poc.commitmentOf(epoch, node.address)).status;
    if (status !== 2n) {
      throw new Error(
        `givePower: ${node.address} not accepted in epoch ${epoch} (status ${status}): ` +
          `the verdict givers known to the helper hold ${accepted} of ${total}; pass options.voters`,
      );
    }
  }

  await goToPhase(connection, sys, epoch, EpochPhase.Work);
  const power = new Map<string, bigint>();
  for (const { node } of entries) power.set(node.address, await poc.powerOf(epoch, node.address));
  return { epoch, seeds, power, totalPower: await poc.totalPower(epoch) };
}
