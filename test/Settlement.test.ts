/**
 * Settlement: each node's claim of an epoch (seed check, open disputes, sampled duty check, work from the runs'
 * escrow, reward from the vault's emission), the expiry of unclaimed work, and the economy of a whole epoch.
 *
 * Everything runs on the real system (Ignition fixture): ProofOfCompute gives power for real (`givePower`:
 * seeds, PoC commitments, bootstrap verdicts), the TaskLedger assigns tasks by power, nodes complete them and
 * validate the tasks their seeds oblige them to, exactly as keepers do. Beacons come from block hashes, so the
 * tests never guess them: which tasks a claim samples is recomputed here from the claim beacon, following the
 * notice of ISettlement literally (`expectedCheck`), and compared with what the contract did.
 *
 * Fixture economy: five validated H100 nodes (n1..n3 of provider p1, n4, n5 of p2) in one run; epoch 1 gives
 * each 100 of power (20 % each); every node enrolls; the master creates tasks of 3 units at 2 tokens a unit;
 * each assignee completes its tasks; each node validates its duties unless a fixture says otherwise.
 */
import { expect } from "chai";
import { network } from "hardhat";
import { anyValue } from "@nomicfoundation/hardhat-ethers-chai-matchers/withArgs";
import type { ContractTransactionResponse } from "ethers";
import {
  type Account,
  INITIAL_EMISSION,
  SAMPLE_SIZE,
  type System,
  createRun,
  deploySystem,
  joinRun,
} from "./helpers/system.js";
import { type GivenPower, givePower, goToPhase, phaseStart, validatedNode, validatedNodes } from "./helpers/epochs.js";
import { EpochPhase, TOKEN, TaskStatus } from "../scripts/lib/protocol.js";
import { dutyHash, dutyKey } from "../keepers/shared/duty.js";

const connection = await network.create();
const { ethers, networkHelpers } = connection;
const { time } = networkHelpers;
const coder = ethers.AbiCoder.defaultAbiCoder();

const EPOCH = 1n;

const MAX_SAMPLE_SIZE = 32n;
const PRICE = 2n * TOKEN;
const UNITS = 3n;
const PAY = PRICE * UNITS;
/** Skips gas estimation: the transaction is mined (and reverts) in the block stamped as the test set it. */
const MINED = { gasLimit: 2_000_000 };

interface Task {
  id: bigint;
  runId: bigint;
  assignee: string;
  pay: bigint;
}

interface Economy {
  sys: System;
  nodes: Account[];
  runIds: bigint[];
  given: GivenPower;
  tasks: Task[];
  /** The signer of a node address. */
  signer: (address: string) => Account;
  seed: (node: Account | string) => string;
  /** The node that skipped its first duty (see `EconomyOptions.skipOne`). */
  skipper?: Account;
}

interface EconomyOptions {
  /** The nodes (default: n1..n5 of the fixture, 100 of power each). */
  nodes?: Account[];
  counts?: bigint[];
  runs?: number;
  /** Tasks per run. */
  tasks?: number;
  /** Tasks (by index over all runs) that their assignee leaves uncompleted. */
  incomplete?: number[];
  /** Nodes that validate none of their duties. */
  lazy?: Account[];
  /** Candidates, in order, for the one node that validates all of its duties but its first: the first of them
   *  that has a duty (returned as `skipper`). */
  skipOne?: Account[];
  /** Nodes that commit a seed but no PoC. */
  seedOnly?: Account[];
}

const spec = (i: number) => ethers.id(`spec ${i}`);
const result = (id: bigint) => ethers.id(`result ${id}`);
const evidence = (id: bigint, node: string) => ethers.keccak256(coder.encode(["uint256", "address"], [id, node]));
/** The seal `keccak256(abi.encode(resultHash))` of a result other than the executor's: what failed validations carry. */
const otherSeal = (id: bigint) => ethers.keccak256(coder.encode(["bytes32"], [ethers.id(`another result ${id}`)]));

/** The fixture's five nodes, validated: n1..n3 under p1, n4 and n5 under p2. */
async function fiveNodes(sys: System): Promise<Account[]> {
  const [p1, p2] = sys.providers;
  const nodes = sys.nodes.slice(0, 5);
  for (const [i, node] of nodes.entries()) await validatedNode(connection, sys, i < 3 ? p1 : p2, node);
  return nodes;
}

/** Creates and starts a run of the buyer for `members` nodes and makes them members. */
async function openRun(sys: System, members: Account[], firstNonce = 1n): Promise<bigint> {
  const runId = await createRun(sys, { maxMembers: members.length, budget: 100_000n * TOKEN });
  await sys.trainingRuns.connect(sys.buyer).startRun(runId);
  for (const [i, node] of members.entries()) await joinRun(connection, sys, runId, node, firstNonce + BigInt(i));
  return runId;
}

async function createTask(sys: System, runId: bigint, index: number): Promise<Task> {
  const tx = await sys.taskLedger.connect(sys.master).createTask(runId, spec(index), UNITS);
  const receipt = await tx.wait();
  for (const log of receipt!.logs) {
    const parsed = sys.taskLedger.interface.parseLog(log);
    if (parsed?.name === "TaskCreated") {
      return { id: parsed.args.taskId, runId, assignee: parsed.args.assignee, pay: parsed.args.pay };
    }
  }
  throw new Error("no TaskCreated");
}

/**
 * One epoch of work (see the file's header): power, enrollment, tasks, completions and validations. Leaves the
 * chain in epoch 1's Work phase.
 */
async function buildEconomy(sys: System, options: EconomyOptions = {}): Promise<Economy> {
  const nodes = options.nodes ?? (await fiveNodes(sys));
  const byAddress = new Map(nodes.map((n) => [n.address, n]));
  for (const n of options.seedOnly ?? []) byAddress.set(n.address, n);
  const signer = (address: string) => byAddress.get(address)!;
  const runIds: bigint[] = [];
  for (let r = 0; r < (options.runs ?? 1); r++) runIds.push(await openRun(sys, nodes, BigInt(r * 1000 + 1)));

  const counts = options.counts ?? nodes.map(() => 100n);
  const given = await givePower(
    connection,
    sys,
    EPOCH,
    nodes.map((node, i) => ({ node, count: counts[i] })),
    { seedOnly: options.seedOnly },
  );
  const seed = (node: Account | string) => given.seeds.get(typeof node === "string" ? node : node.address)!;
  for (const runId of runIds) for (const node of nodes) await sys.taskLedger.enroll(runId, node.address);

  const tasks: Task[] = [];
  for (const runId of runIds) {
    for (let i = 0; i < (options.tasks ?? 6); i++) tasks.push(await createTask(sys, runId, tasks.length));
  }
  const incomplete = new Set(options.incomplete ?? []);
  for (const [i, task] of tasks.entries()) {
    if (!incomplete.has(i)) await sys.taskLedger.connect(signer(task.assignee)).completeTask(task.id, result(task.id));
  }
  let skipper: Account | undefined;
  for (const candidate of options.skipOne ?? []) {
    for (const task of tasks) {
      if (await sys.taskLedger.isValidationDuty(task.id, candidate.address, seed(candidate))) skipper = candidate;
    }
    if (skipper) break;
  }
  if (options.skipOne && !skipper) throw new Error("buildEconomy: no candidate of skipOne has a duty");
  await validateDuties(sys, nodes, tasks, seed, { lazy: options.lazy, skipOne: skipper ? [skipper] : [] });
  return { sys, nodes, runIds, given, tasks, signer, seed, skipper };
}

/** Each node validates (successfully) the completed tasks its seed obliges it to, as the miner keeper does. */
async function validateDuties(
  sys: System,
  nodes: Account[],
  tasks: Task[],
  seed: (node: Account | string) => string,
  options: Pick<EconomyOptions, "lazy" | "skipOne"> = {},
) {
  const lazy = new Set((options.lazy ?? []).map((n) => n.address));
  const skipOne = new Set((options.skipOne ?? []).map((n) => n.address));
  for (const node of nodes) {
    if (lazy.has(node.address)) continue;
    let skipped = !skipOne.has(node.address);
    for (const task of tasks) {
      if (!(await sys.taskLedger.isValidationDuty(task.id, node.address, seed(node)))) continue;
      if (await sys.taskLedger.hasValidated(task.id, node.address)) continue;
      if (!skipped) {
        skipped = true;
        continue;
      }
      await sys.taskLedger.connect(node).submitValidation(task.id, true, evidence(task.id, node.address));
    }
  }
}

/** The duty check of ISettlement's notice, computed from views without any shortcut. */
async function expectedCheck(sys: System, epoch: bigint, node: string, seed: string) {
  const ledger = sys.taskLedger;
  const none = { forfeited: false, missedTaskId: 0n, sampled: 0n, drawn: [] as bigint[] };
  if ((await sys.proofOfCompute.powerOf(epoch, node)) === 0n) return none;
  const count = await ledger.epochTaskCount(epoch);
  if (count === 0n) return none;
  const beacon = count <= SAMPLE_SIZE ? ethers.ZeroHash : await sys.epochManager.claimBeacon(epoch);
  const draws = count <= SAMPLE_SIZE ? count : SAMPLE_SIZE;
  const drawn: bigint[] = [];
  for (let j = 0n; j < draws; j++) {
    const index =
      count <= SAMPLE_SIZE
        ? j
        : BigInt(ethers.keccak256(coder.encode(["bytes32", "address", "uint256"], [beacon, node, j]))) % count;
    const taskId = await ledger.epochTaskAt(epoch, index);
    drawn.push(taskId);
    const task = await ledger.taskOf(taskId);
    if (task.status !== BigInt(TaskStatus.Completed) || task.assignee === node) continue;
    if (!(await ledger.isValidationDuty(taskId, node, seed))) continue;
    if (!(await ledger.hasValidated(taskId, node))) return { forfeited: true, missedTaskId: taskId, sampled: j + 1n, drawn };
  }
  return { forfeited: false, missedTaskId: 0n, sampled: draws, drawn };
}

/** The first node that executed a completed task and did all its duties (neither `lazy` nor the skipper). */
function worker(eco: Economy, lazy: Account[] = []): Account {
  const excluded = new Set([eco.skipper?.address, ...lazy.map((n) => n.address)]);
  const node = eco.nodes.find((n) => !excluded.has(n.address) && eco.tasks.some((t) => t.assignee === n.address));
  if (!node) throw new Error("no worker");
  return node;
}

/** Work credited to `node` in `epoch` (all runs), from the ledger's view. */
async function workOf(sys: System, epoch: bigint, node: string): Promise<bigint> {
  const [, amounts] = await sys.taskLedger.workOf(epoch, node);
  return amounts.reduce((a: bigint, b: bigint) => a + b, 0n);
}

/** The reward share of `node`: emission × power / total power, rounded down. */
async function shareOf(sys: System, epoch: bigint, node: string, emission = INITIAL_EMISSION): Promise<bigint> {
  const total = await sys.proofOfCompute.totalPower(epoch);
  return (emission * (await sys.proofOfCompute.powerOf(epoch, node))) / total;
}

async function plainClaim(sys: System, epoch: bigint, node: string) {
  const { claimed, expired, forfeited, work, reward } = await sys.settlement.claimOf(epoch, node);
  return { claimed, expired, forfeited, work, reward };
}

async function gasOf(tx: Promise<ContractTransactionResponse>): Promise<bigint> {
  return (await (await tx).wait())!.gasUsed;
}

// ------------------------------------------------------------------ fixtures

/** Six tasks: a claim samples each (at most sampleSize). One node skips one of its duties: n5 if it has one,
 *  else n4, ... (`skipper`). */
async function smallEpochFixture() {
  const sys = await deploySystem(connection);
  return buildEconomy(sys, { tasks: 6, skipOne: [...sys.nodes.slice(0, 5)].reverse() });
}

/** Two runs of eight tasks (16 > sampleSize): claims draw from the claim beacon. n5 validates nothing. */
async function largeEpochFixture() {
  const sys = await deploySystem(connection);
  return buildEconomy(sys, { runs: 2, tasks: 8, lazy: [sys.nodes[4]] });
}

describe("Settlement", () => {
  describe("constructor", () => {
    it("stores its contracts and sample size, grants the admin role, and is wired by its Ignition module", async () => {
      const { sys } = await networkHelpers.loadFixture(smallEpochFixture);
      const s = sys.settlement;
      expect(await s.epochs()).to.equal(await sys.epochManager.getAddress());
      expect(await s.poc()).to.equal(await sys.proofOfCompute.getAddress());
      expect(await s.ledger()).to.equal(await sys.taskLedger.getAddress());
      expect(await s.vault()).to.equal(await sys.rewardVault.getAddress());
      expect(await s.registry()).to.equal(await sys.registry.getAddress());
      expect(await s.sampleSize()).to.equal(SAMPLE_SIZE);
      expect(await s.MAX_SAMPLE_SIZE()).to.equal(MAX_SAMPLE_SIZE);
      expect(await s.hasRole(await s.DEFAULT_ADMIN_ROLE(), sys.admin.address)).to.equal(true);
      const address = await s.getAddress();
      expect(await sys.taskLedger.hasRole(await sys.taskLedger.SETTLEMENT_ROLE(), address)).to.equal(true);
      expect(await sys.rewardVault.hasRole(await sys.rewardVault.PAYER_ROLE(), address)).to.equal(true);
      // The ledger pays accusers' bounties from the vault.
      const ledger = await sys.taskLedger.getAddress();
      expect(await sys.rewardVault.hasRole(await sys.rewardVault.PAYER_ROLE(), ledger)).to.equal(true);
    });

    it("refuses a zero address for any of its contracts or its admin", async () => {
      const { sys } = await networkHelpers.loadFixture(smallEpochFixture);
      const args = [
        sys.admin.address,
        await sys.epochManager.getAddress(),
        await sys.proofOfCompute.getAddress(),
        await sys.taskLedger.getAddress(),
        await sys.rewardVault.getAddress(),
        await sys.registry.getAddress(),
      ];
      for (let i = 0; i < args.length; i++) {
        const bad = args.map((a, j) => (j === i ? ethers.ZeroAddress : a));
        await expect(ethers.deployContract("Settlement", [...bad, SAMPLE_SIZE])).to.be.revertedWithCustomError(
          sys.settlement,
          "SettlementZeroAddress",
        );
      }
    });

    it("refuses a sample size of 0 or above MAX_SAMPLE_SIZE, accepts 1 and MAX_SAMPLE_SIZE", async () => {
      const { sys } = await networkHelpers.loadFixture(smallEpochFixture);
      const args = [
        sys.admin.address,
        await sys.epochManager.getAddress(),
        await sys.proofOfCompute.getAddress(),
        await sys.taskLedger.getAddress(),
        await sys.rewardVault.getAddress(),
        await sys.registry.getAddress(),
      ];
      for (const size of [0n, MAX_SAMPLE_SIZE + 1n]) {
        await expect(ethers.deployContract("Settlement", [...args, size]))
          .to.be.revertedWithCustomError(sys.settlement, "SettlementInvalidSampleSize")
          .withArgs(size, MAX_SAMPLE_SIZE);
      }
      for (const size of [1n, MAX_SAMPLE_SIZE]) {
        const s = await ethers.deployContract("Settlement", [...args, size]);
        expect(await s.sampleSize()).to.equal(size);
      }
    });
  });

  describe("claim", () => {
    it("pays an honest node's work from the runs' escrow and its power share of the emission to its provider", async () => {
      const eco = await networkHelpers.loadFixture(smallEpochFixture);
      const { sys, seed } = eco;
      const n1 = worker(eco);
      const p1 = await sys.registry.providerOf(n1.address);
      await goToPhase(connection, sys, EPOCH, EpochPhase.Claim);
      const work = await workOf(sys, EPOCH, n1.address);
      const reward = await shareOf(sys, EPOCH, n1.address);
      expect(work).to.equal(BigInt(eco.tasks.filter((t) => t.assignee === n1.address).length) * PAY);
      expect(reward).to.equal(INITIAL_EMISSION / 5n);
      const supply = await sys.token.totalSupply();

      expect(await sys.settlement.connect(sys.stranger).claim.staticCall(EPOCH, n1.address, seed(n1))).to.deep.equal([
        work,
        reward,
      ]);
      const tx = sys.settlement.connect(sys.stranger).claim(EPOCH, n1.address, seed(n1));
      await expect(tx)
        .to.emit(sys.settlement, "Claimed")
        .withArgs(EPOCH, n1.address, p1, work, reward, false, 0n, 6n);
      await expect(tx).to.emit(sys.rewardVault, "RewardPaid").withArgs(EPOCH, p1, reward);
      await expect(tx).to.changeTokenBalances(
        ethers,
        sys.token,
        [p1, sys.trainingRuns, n1, sys.stranger, sys.settlement],
        [work + reward, -work, 0n, 0n, 0n],
      );
      expect(await sys.token.totalSupply()).to.equal(supply + reward);
      expect(await plainClaim(sys, EPOCH, n1.address)).to.deep.equal({
        claimed: true,
        expired: false,
        forfeited: false,
        work,
        reward,
      });
      expect((await sys.rewardVault.emissionOf(EPOCH)).paid).to.equal(reward);
    });

    it("pays each node's provider: n4 is p2's", async () => {
      const { sys, nodes, seed } = await networkHelpers.loadFixture(smallEpochFixture);
      const n4 = nodes[3];
      const p2 = sys.providers[1];
      await goToPhase(connection, sys, EPOCH, EpochPhase.Claim);
      const work = await workOf(sys, EPOCH, n4.address);
      const { forfeited } = await expectedCheck(sys, EPOCH, n4.address, seed(n4));
      const reward = forfeited ? 0n : await shareOf(sys, EPOCH, n4.address);
      await expect(sys.settlement.claim(EPOCH, n4.address, seed(n4))).to.changeTokenBalances(
        ethers,
        sys.token,
        [p2, sys.providers[0]],
        [work + reward, 0n],
      );
    });

    it("refuses a wrong seed, another node's seed, and a node that committed none", async () => {
      const { sys, nodes, seed } = await networkHelpers.loadFixture(smallEpochFixture);
      const [n1, n2] = nodes;
      await goToPhase(connection, sys, EPOCH, EpochPhase.Claim);
      for (const [node, wrong] of [
        [n1.address, ethers.id("guess")],
        [n1.address, seed(n2)],
        [sys.nodes[5].address, seed(n1)],
      ]) {
        await expect(sys.settlement.claim(EPOCH, node, wrong))
          .to.be.revertedWithCustomError(sys.settlement, "SettlementInvalidSeed")
          .withArgs(EPOCH, node);
      }
    });

    it("refuses before the Claim phase (Work, then Dispute to its last second) and from its end", async () => {
      const { sys, nodes, seed } = await networkHelpers.loadFixture(smallEpochFixture);
      const [n1] = nodes;
      const claim = () => sys.settlement.claim(EPOCH, n1.address, seed(n1), MINED);
      await expect(claim()).to.be.revertedWithCustomError(sys.settlement, "SettlementWrongPhase").withArgs(EPOCH, EpochPhase.Work);
      const claimStart = await phaseStart(sys, EPOCH, EpochPhase.Claim);
      await time.setNextBlockTimestamp(claimStart - 1n);
      await expect(claim()).to.be.revertedWithCustomError(sys.settlement, "SettlementWrongPhase").withArgs(EPOCH, EpochPhase.Dispute);
      const closed = await phaseStart(sys, EPOCH, EpochPhase.Closed);
      await time.setNextBlockTimestamp(closed);
      await expect(claim()).to.be.revertedWithCustomError(sys.settlement, "SettlementWrongPhase").withArgs(EPOCH, EpochPhase.Closed);
    });

    it("claims at the first and at the last second of the Claim phase, and no later", async () => {
      const { sys, nodes, seed } = await networkHelpers.loadFixture(smallEpochFixture);
      const [n1, n2, n3] = nodes;
      await time.setNextBlockTimestamp(await phaseStart(sys, EPOCH, EpochPhase.Claim));
      await expect(sys.settlement.claim(EPOCH, n1.address, seed(n1))).to.emit(sys.settlement, "Claimed");
      const closed = await phaseStart(sys, EPOCH, EpochPhase.Closed);
      await time.setNextBlockTimestamp(closed - 1n);
      await expect(sys.settlement.claim(EPOCH, n2.address, seed(n2))).to.emit(sys.settlement, "Claimed");
      // After claims, the epoch's end is known without asking the clock again: still refused from it on.
      await time.setNextBlockTimestamp(closed);
      await expect(sys.settlement.claim(EPOCH, n3.address, seed(n3), MINED))
        .to.be.revertedWithCustomError(sys.settlement, "SettlementWrongPhase")
        .withArgs(EPOCH, EpochPhase.Closed);
    });

    it("refuses epoch 0 with the clock's error", async () => {
      const { sys, nodes, seed } = await networkHelpers.loadFixture(smallEpochFixture);
      await expect(sys.settlement.claim(0n, nodes[0].address, seed(nodes[0])))
        .to.be.revertedWithCustomError(sys.epochManager, "EpochManagerInvalidEpoch")
        .withArgs(0n);
    });

    it("fixes the claim beacon when it draws and nobody did, and uses the one fixed before otherwise", async () => {
      const { sys, nodes, seed } = await networkHelpers.loadFixture(largeEpochFixture);
      const [n1, n2] = nodes;
      await goToPhase(connection, sys, EPOCH, EpochPhase.Claim);
      await expect(sys.epochManager.claimBeacon(EPOCH)).to.be.revertedWithCustomError(
        sys.epochManager,
        "EpochManagerClaimBeaconNotFixed",
      );
      const first = sys.settlement.connect(sys.stranger).claim(EPOCH, n1.address, seed(n1));
      await expect(first)
        .to.emit(sys.epochManager, "ClaimBeaconFixed")
        .withArgs(EPOCH, (beacon: string) => beacon !== ethers.ZeroHash, await sys.settlement.getAddress());
      const beacon = await sys.epochManager.claimBeacon(EPOCH);
      const expected = await expectedCheck(sys, EPOCH, n2.address, seed(n2));
      const work = await workOf(sys, EPOCH, n2.address);
      const second = sys.settlement.claim(EPOCH, n2.address, seed(n2));
      await expect(second).to.not.emit(sys.epochManager, "ClaimBeaconFixed");
      await expect(second)
        .to.emit(sys.settlement, "Claimed")
        .withArgs(EPOCH, n2.address, sys.providers[0].address, work, (r: bigint) => r > 0n, false, 0n, expected.sampled);
      expect(await sys.epochManager.claimBeacon(EPOCH)).to.equal(beacon);
    });

    it("needs no claim beacon when the epoch has at most sampleSize tasks: all are checked", async () => {
      const { sys, nodes, seed } = await networkHelpers.loadFixture(smallEpochFixture);
      await goToPhase(connection, sys, EPOCH, EpochPhase.Claim);
      const tx = sys.settlement.claim(EPOCH, nodes[0].address, seed(nodes[0]));
      await expect(tx).to.emit(sys.settlement, "Claimed");
      await expect(tx).to.not.emit(sys.epochManager, "ClaimBeaconFixed");
    });

    it("uses a claim beacon fixed by someone else before any claim", async () => {
      const { sys, nodes, seed } = await networkHelpers.loadFixture(largeEpochFixture);
      await goToPhase(connection, sys, EPOCH, EpochPhase.Claim);
      await sys.epochManager.connect(sys.stranger).fixClaimBeacon(EPOCH);
      await expect(sys.settlement.claim(EPOCH, nodes[0].address, seed(nodes[0]))).to.not.emit(
        sys.epochManager,
        "ClaimBeaconFixed",
      );
    });

    it("refuses a second claim, by anyone", async () => {
      const { sys, nodes, seed } = await networkHelpers.loadFixture(smallEpochFixture);
      const [n1] = nodes;
      await goToPhase(connection, sys, EPOCH, EpochPhase.Claim);
      await sys.settlement.claim(EPOCH, n1.address, seed(n1));
      await expect(sys.settlement.connect(sys.stranger).claim(EPOCH, n1.address, seed(n1)))
        .to.be.revertedWithCustomError(sys.settlement, "SettlementAlreadySettled")
        .withArgs(EPOCH, n1.address);
    });

    it("forfeits the reward of a node that skipped a duty, and still pays its work", async () => {
      const { sys, seed, tasks, skipper } = await networkHelpers.loadFixture(smallEpochFixture);
      const lazy = skipper!;
      const provider = await sys.registry.providerOf(lazy.address);
      await goToPhase(connection, sys, EPOCH, EpochPhase.Claim);
      // Six tasks: all are drawn, so the skipped duty is found, the first one in creation order.
      let skipped = 0n;
      let position = 0n;
      for (const [i, task] of tasks.entries()) {
        if (
          (await sys.taskLedger.isValidationDuty(task.id, lazy.address, seed(lazy))) &&
          !(await sys.taskLedger.hasValidated(task.id, lazy.address))
        ) {
          skipped = task.id;
          position = BigInt(i + 1);
          break;
        }
      }
      expect(skipped > 0n, "the skipper had a duty and skipped it").to.equal(true);
      const work = await workOf(sys, EPOCH, lazy.address);
      const tx = sys.settlement.claim(EPOCH, lazy.address, seed(lazy));
      await expect(tx).to.emit(sys.settlement, "Claimed").withArgs(EPOCH, lazy.address, provider, work, 0n, true, skipped, position);
      await expect(tx).to.not.emit(sys.rewardVault, "RewardPaid");
      await expect(tx).to.changeTokenBalances(ethers, sys.token, [provider, sys.trainingRuns], [work, -work]);
      expect(await plainClaim(sys, EPOCH, lazy.address)).to.deep.equal({
        claimed: true,
        expired: false,
        forfeited: true,
        work,
        reward: 0n,
      });
    });

    it("draws sampleSize tasks from the claim beacon when the epoch has more, and judges only those", async () => {
      const { sys, nodes, seed } = await networkHelpers.loadFixture(largeEpochFixture);
      await goToPhase(connection, sys, EPOCH, EpochPhase.Claim);
      await sys.epochManager.fixClaimBeacon(EPOCH);
      // n5 validated nothing; whether it is caught depends on the draw: the contract must agree with the notice.
      for (const node of nodes) {
        const expected = await expectedCheck(sys, EPOCH, node.address, seed(node));
        const reward = expected.forfeited ? 0n : await shareOf(sys, EPOCH, node.address);
        const provider = await sys.registry.providerOf(node.address);
        await expect(sys.settlement.claim(EPOCH, node.address, seed(node)))
          .to.emit(sys.settlement, "Claimed")
          .withArgs(
            EPOCH,
            node.address,
            provider,
            await workOf(sys, EPOCH, node.address),
            reward,
            expected.forfeited,
            expected.missedTaskId,
            expected.sampled,
          );
        if (!expected.forfeited) expect(expected.sampled).to.equal(SAMPLE_SIZE);
      }
    });

    it("refuses while a dispute of the node (as executor or accuser) is open; resolving it unblocks both", async () => {
      const { sys, nodes, seed } = await networkHelpers.loadFixture(smallEpochFixture);
      // An extra task, failed by one validator: the dispute stays open (20 % of the power is not a majority).
      const task = await createTask(sys, 1n, 100);
      const executor = nodes.find((n) => n.address === task.assignee)!;
      const accuser = nodes.find((n) => n.address !== task.assignee)!;
      await sys.taskLedger.connect(executor).completeTask(task.id, result(task.id));
      await sys.taskLedger.connect(accuser).submitValidation(task.id, false, otherSeal(task.id));
      await goToPhase(connection, sys, EPOCH, EpochPhase.Claim);
      for (const node of [executor, accuser]) {
        await expect(sys.settlement.claim(EPOCH, node.address, seed(node)))
          .to.be.revertedWithCustomError(sys.settlement, "SettlementDisputesOpen")
          .withArgs(EPOCH, node.address, 1n);
      }
      await sys.taskLedger.connect(sys.stranger).resolveDispute(task.id);
      for (const node of [executor, accuser]) {
        await expect(sys.settlement.claim(EPOCH, node.address, seed(node))).to.emit(sys.settlement, "Claimed");
      }
    });

    it("draws nothing and pays nothing to a node without power, without fixing the beacon", async () => {
      const sys = await deploySystem(connection);
      const idle = await validatedNode(connection, sys, sys.providers[1], sys.nodes[5]);
      const { seed } = await buildEconomy(sys, { tasks: 2, seedOnly: [idle] });
      await goToPhase(connection, sys, EPOCH, EpochPhase.Claim);
      const tx = sys.settlement.claim(EPOCH, idle.address, seed(idle));
      await expect(tx)
        .to.emit(sys.settlement, "Claimed")
        .withArgs(EPOCH, idle.address, sys.providers[1].address, 0n, 0n, false, 0n, 0n);
      await expect(tx).to.not.emit(sys.epochManager, "ClaimBeaconFixed");
      await expect(tx).to.not.emit(sys.rewardVault, "EmissionFixed");
      // Nothing to draw, so the check needs no beacon.
      expect(await sys.settlement.checkDuties(EPOCH, idle.address, seed(idle))).to.deep.equal([false, 0n, 0n]);
      await expect(sys.epochManager.claimBeacon(EPOCH)).to.be.revertedWithCustomError(
        sys.epochManager,
        "EpochManagerClaimBeaconNotFixed",
      );
    });

    it("pays no reward (and mints nothing) when the supply cap leaves the epoch no emission", async () => {
      const { sys, nodes, seed } = await networkHelpers.loadFixture(smallEpochFixture);
      const [n1] = nodes;
      // Another minter takes all the room under the cap.
      await sys.token.connect(sys.admin).grantRole(await sys.token.MINTER_ROLE(), sys.admin.address);
      await sys.token.connect(sys.admin).mint(sys.admin.address, (await sys.token.cap()) - (await sys.token.totalSupply()));
      await goToPhase(connection, sys, EPOCH, EpochPhase.Claim);
      const work = await workOf(sys, EPOCH, n1.address);
      const tx = sys.settlement.claim(EPOCH, n1.address, seed(n1));
      await expect(tx).to.emit(sys.rewardVault, "EmissionFixed").withArgs(EPOCH, 0n);
      await expect(tx).to.not.emit(sys.rewardVault, "RewardPaid");
      await expect(tx).to.emit(sys.settlement, "Claimed").withArgs(EPOCH, n1.address, sys.providers[0].address, work, 0n, false, 0n, 6n);
    });

    it("pays nothing for a node deregistered since: its work returns to the escrow, its reward to the vault", async () => {
      const { sys, nodes, seed, runIds, skipper } = await networkHelpers.loadFixture(smallEpochFixture);
      // A node that did its duties and drew work (the draws follow the beacon).
      let n1 = nodes[0];
      for (const node of nodes.slice(0, 5)) {
        if (node.address !== skipper?.address && (await workOf(sys, EPOCH, node.address)) > 0n) n1 = node;
      }
      const work = await workOf(sys, EPOCH, n1.address);
      expect(work > 0n, "a node with work").to.equal(true);
      const p1 = sys.providers[nodes.indexOf(n1) < 3 ? 0 : 1];
      await sys.trainingRuns.connect(p1).leaveRun(runIds[0], n1.address);
      await sys.registry.connect(p1).deregisterNode(n1.address);
      await goToPhase(connection, sys, EPOCH, EpochPhase.Claim);
      const available = (await sys.trainingRuns.escrowOf(runIds[0])).available;
      const tx = sys.settlement.claim(EPOCH, n1.address, seed(n1));
      await expect(tx)
        .to.emit(sys.settlement, "Claimed")
        .withArgs(EPOCH, n1.address, ethers.ZeroAddress, 0n, 0n, false, 0n, 6n);
      await expect(tx).to.emit(sys.taskLedger, "WorkReleased").withArgs(EPOCH, n1.address, runIds[0], work);
      await expect(tx).to.not.emit(sys.rewardVault, "RewardPaid");
      await expect(tx).to.changeTokenBalances(ethers, sys.token, [p1, sys.trainingRuns], [0n, 0n]);
      expect((await sys.trainingRuns.escrowOf(runIds[0])).available).to.equal(available + work);
      // Claimed, but nothing paid: the released work is not the claim's.
      expect(await plainClaim(sys, EPOCH, n1.address)).to.deep.equal({
        claimed: true,
        expired: false,
        forfeited: false,
        work: 0n,
        reward: 0n,
      });
    });

    it("matches the notice's duty check for any seed: the threshold bound never skips a duty", async () => {
      // Unequal powers, one of them capped: executors' powers differ from the water level.
      const sys = await deploySystem(connection);
      const nodes = await fiveNodes(sys);
      await buildEconomy(sys, { nodes, counts: [100n, 150n, 200n, 300n, 700n], tasks: 16, lazy: nodes });
      await goToPhase(connection, sys, EPOCH, EpochPhase.Claim);
      await sys.epochManager.fixClaimBeacon(EPOCH);
      let caught = 0;
      for (let i = 0; i < 12; i++) {
        for (const node of nodes) {
          const seed = ethers.id(`any seed ${i}`);
          const expected = await expectedCheck(sys, EPOCH, node.address, seed);
          const [forfeited, missedTaskId, sampled] = await sys.settlement.checkDuties(EPOCH, node.address, seed);
          expect([forfeited, missedTaskId, sampled]).to.deep.equal([expected.forfeited, expected.missedTaskId, expected.sampled]);
          if (forfeited) caught++;
        }
      }
      // Nobody validated anything: most of these checks find a missed duty.
      expect(caught > 30, `${caught} of 60 caught`).to.equal(true);
    });

    it("hashes duties with the epoch's salt: a node that validated nothing misses the first task under its threshold by H(seed, salt, t), not by H(seed, t)", async () => {
      const sys = await deploySystem(connection);
      const nodes = await fiveNodes(sys);
      // Eight tasks (sampleSize): the check goes through all of them in order, with no beacon.
      const { tasks } = await buildEconomy(sys, { nodes, tasks: Number(SAMPLE_SIZE), lazy: nodes });
      await goToPhase(connection, sys, EPOCH, EpochPhase.Claim);
      const node = nodes[0];
      const [, epochTasks] = await sys.taskLedger.nodeEpochOf(EPOCH, node.address);
      expect(epochTasks.count).to.equal(SAMPLE_SIZE);
      // k = 2, p_v = 100, T − p_x = 400 for every task: a duty when the hash is under half of 2^256.
      const threshold = (ethers.MaxUint256 * 20_000n * 100n) / (400n * 10_000n);
      const firstMiss = (hash: (t: bigint) => bigint) => {
        const j = tasks.findIndex((t) => t.assignee !== node.address && hash(t.id) < threshold);
        return j < 0 ? [false, 0n, SAMPLE_SIZE] : [true, tasks[j].id, BigInt(j + 1)];
      };
      let differs = 0;
      for (let i = 0; i < 24; i++) {
        const seed = ethers.id(`salted seed ${i}`);
        const salted = firstMiss((t) => dutyHash(dutyKey(seed, epochTasks.dutySalt), t));
        const unsalted = firstMiss((t) => BigInt(ethers.keccak256(coder.encode(["bytes32", "uint256"], [seed, t]))));
        expect(await sys.settlement.checkDuties(EPOCH, node.address, seed), `seed ${i}`).to.deep.equal(salted);
        if (unsalted.join() !== salted.join()) differs++;
      }
      // The unsalted hash would have answered otherwise for most seeds.
      expect(differs, `${differs} of 24 seeds`).to.be.greaterThan(6);
    });

    it("checks every draw when some task is a certain duty (k·p_v ≥ T − p_x): three equal nodes", async () => {
      const sys = await deploySystem(connection);
      const nodes = (await fiveNodes(sys)).slice(0, 3);
      const { tasks, seed } = await buildEconomy(sys, { nodes, tasks: 12, lazy: [nodes[2]] });
      await goToPhase(connection, sys, EPOCH, EpochPhase.Claim);
      await sys.epochManager.fixClaimBeacon(EPOCH);
      // k = 2, p_v = 100, T − p_x = 200: every completed task of another node is a duty, whatever the seed.
      const lazy = nodes[2];
      for (const task of tasks) {
        expect(await sys.taskLedger.isValidationDuty(task.id, lazy.address, seed(lazy))).to.equal(task.assignee !== lazy.address);
      }
      const expected = await expectedCheck(sys, EPOCH, lazy.address, seed(lazy));
      expect(expected.forfeited, "the lazy node drew another node's task").to.equal(
        expected.drawn.some((id) => tasks.find((t) => t.id === id)!.assignee !== lazy.address),
      );
      await expect(sys.settlement.claim(EPOCH, lazy.address, seed(lazy)))
        .to.emit(sys.settlement, "Claimed")
        .withArgs(
          EPOCH,
          lazy.address,
          await sys.registry.providerOf(lazy.address),
          await workOf(sys, EPOCH, lazy.address),
          expected.forfeited ? 0n : await shareOf(sys, EPOCH, lazy.address),
          expected.forfeited,
          expected.missedTaskId,
          expected.sampled,
        );
      for (const node of nodes.slice(0, 2)) {
        await expect(sys.settlement.claim(EPOCH, node.address, seed(node)))
          .to.emit(sys.settlement, "Claimed")
          .withArgs(EPOCH, node.address, await sys.registry.providerOf(node.address), anyValue, INITIAL_EMISSION / 3n, false, 0n, SAMPLE_SIZE);
      }
    });
  });

  describe("expire", () => {
    it("refuses during the Claim phase, to its last second", async () => {
      const { sys, nodes } = await networkHelpers.loadFixture(smallEpochFixture);
      await expect(sys.settlement.expire(EPOCH, nodes[0].address))
        .to.be.revertedWithCustomError(sys.settlement, "SettlementWrongPhase")
        .withArgs(EPOCH, EpochPhase.Work);
      await time.setNextBlockTimestamp((await phaseStart(sys, EPOCH, EpochPhase.Closed)) - 1n);
      await expect(sys.settlement.expire(EPOCH, nodes[0].address, MINED))
        .to.be.revertedWithCustomError(sys.settlement, "SettlementWrongPhase")
        .withArgs(EPOCH, EpochPhase.Claim);
    });

    it("lets anyone release an unclaimed node's work back to its run's escrow, once", async () => {
      const eco = await networkHelpers.loadFixture(smallEpochFixture);
      const { sys, runIds } = eco;
      const n2 = worker(eco);
      const work = await workOf(sys, EPOCH, n2.address);
      expect(work > 0n).to.equal(true);
      await goToPhase(connection, sys, EPOCH, EpochPhase.Closed);
      const before = await sys.trainingRuns.escrowOf(runIds[0]);
      expect(await sys.settlement.connect(sys.stranger).expire.staticCall(EPOCH, n2.address)).to.equal(work);
      const tx = sys.settlement.connect(sys.stranger).expire(EPOCH, n2.address);
      await expect(tx).to.emit(sys.settlement, "ClaimExpired").withArgs(EPOCH, n2.address, work);
      await expect(tx).to.changeTokenBalances(
        ethers,
        sys.token,
        [await sys.registry.providerOf(n2.address), sys.trainingRuns],
        [0n, 0n],
      );
      const after = await sys.trainingRuns.escrowOf(runIds[0]);
      expect(after.reserved).to.equal(before.reserved - work);
      expect(after.available).to.equal(before.available + work);
      expect(await plainClaim(sys, EPOCH, n2.address)).to.deep.equal({
        claimed: false,
        expired: true,
        forfeited: false,
        work,
        reward: 0n,
      });
      await expect(sys.settlement.expire(EPOCH, n2.address))
        .to.be.revertedWithCustomError(sys.settlement, "SettlementAlreadySettled")
        .withArgs(EPOCH, n2.address);
    });

    it("refuses a claimed node", async () => {
      const { sys, nodes, seed } = await networkHelpers.loadFixture(smallEpochFixture);
      const [n1] = nodes;
      await goToPhase(connection, sys, EPOCH, EpochPhase.Claim);
      await sys.settlement.claim(EPOCH, n1.address, seed(n1));
      await goToPhase(connection, sys, EPOCH, EpochPhase.Closed);
      await expect(sys.settlement.expire(EPOCH, n1.address))
        .to.be.revertedWithCustomError(sys.settlement, "SettlementAlreadySettled")
        .withArgs(EPOCH, n1.address);
    });
  });

  describe("checkDuties", () => {
    it("refuses while the claim beacon is not fixed when it has to draw", async () => {
      const { sys, nodes, seed } = await networkHelpers.loadFixture(largeEpochFixture);
      await goToPhase(connection, sys, EPOCH, EpochPhase.Claim);
      await expect(sys.settlement.checkDuties(EPOCH, nodes[0].address, seed(nodes[0])))
        .to.be.revertedWithCustomError(sys.epochManager, "EpochManagerClaimBeaconNotFixed")
        .withArgs(EPOCH);
    });

    it("checks every task without a beacon when the epoch has at most sampleSize", async () => {
      const { sys, nodes, seed, skipper } = await networkHelpers.loadFixture(smallEpochFixture);
      await goToPhase(connection, sys, EPOCH, EpochPhase.Claim);
      for (const node of nodes) {
        const expected = await expectedCheck(sys, EPOCH, node.address, seed(node));
        expect(await sys.settlement.checkDuties(EPOCH, node.address, seed(node))).to.deep.equal([
          expected.forfeited,
          expected.missedTaskId,
          expected.sampled,
        ]);
        expect(expected.forfeited).to.equal(node.address === skipper!.address);
        if (!expected.forfeited) expect(expected.sampled).to.equal(6n);
      }
    });

    it("tells what the claim will find", async () => {
      const { sys, nodes, seed } = await networkHelpers.loadFixture(largeEpochFixture);
      await goToPhase(connection, sys, EPOCH, EpochPhase.Claim);
      await sys.epochManager.fixClaimBeacon(EPOCH);
      for (const node of nodes) {
        const [forfeited, missedTaskId, sampled] = await sys.settlement.checkDuties(EPOCH, node.address, seed(node));
        await expect(sys.settlement.claim(EPOCH, node.address, seed(node)))
          .to.emit(sys.settlement, "Claimed")
          .withArgs(EPOCH, node.address, await sys.registry.providerOf(node.address), anyValue, anyValue, forfeited, missedTaskId, sampled);
      }
    });
  });

  describe("rewardOf", () => {
    it("is the scheduled emission's share before the emission is fixed, the fixed emission's after", async () => {
      const { sys, nodes, seed } = await networkHelpers.loadFixture(smallEpochFixture);
      const [n1, n2] = nodes;
      expect(await sys.settlement.rewardOf(EPOCH, n2.address)).to.equal(await shareOf(sys, EPOCH, n2.address));
      // The cap leaves room for only half the emission: the fixed emission is what counts.
      await sys.token.connect(sys.admin).grantRole(await sys.token.MINTER_ROLE(), sys.admin.address);
      const room = (await sys.token.cap()) - (await sys.token.totalSupply());
      await sys.token.connect(sys.admin).mint(sys.admin.address, room - INITIAL_EMISSION / 2n);
      await goToPhase(connection, sys, EPOCH, EpochPhase.Claim);
      expect(await sys.settlement.rewardOf(EPOCH, n2.address)).to.equal(INITIAL_EMISSION / 5n);
      await sys.settlement.claim(EPOCH, n1.address, seed(n1));
      expect(await sys.settlement.rewardOf(EPOCH, n2.address)).to.equal(INITIAL_EMISSION / 10n);
    });

    it("is 0 in an epoch without power, and once the epoch's rest was returned unfixed", async () => {
      const { sys, nodes } = await networkHelpers.loadFixture(smallEpochFixture);
      expect(await sys.settlement.rewardOf(2n, nodes[0].address)).to.equal(0n);
      await goToPhase(connection, sys, EPOCH, EpochPhase.Closed);
      await sys.rewardVault.returnUnclaimed(EPOCH);
      expect(await sys.settlement.rewardOf(EPOCH, nodes[0].address)).to.equal(0n);
    });
  });

  describe("claimOf", () => {
    it("is all false and zero for a node that never claimed", async () => {
      const { sys, nodes } = await networkHelpers.loadFixture(smallEpochFixture);
      expect(await plainClaim(sys, EPOCH, nodes[0].address)).to.deep.equal({
        claimed: false,
        expired: false,
        forfeited: false,
        work: 0n,
        reward: 0n,
      });
    });
  });

  describe("economy of an epoch", () => {
    it("reconciles escrow (deposited = paid + refunded + reserved + available) and emission (paid + returned)", async () => {
      const sys = await deploySystem(connection);
      const nodes = await fiveNodes(sys);
      const [n1, n2, n3, n4, n5] = nodes;
      // Two runs of 7 tasks; tasks 3 and 10 are never completed; n3 validates nothing; n5 never claims.
      const eco = await buildEconomy(sys, { nodes, runs: 2, tasks: 7, incomplete: [3, 10], lazy: [n3] });
      // An extra task of run 1, invalidated by three validators (60 % of the power) on one seal: its pay goes back.
      const bad = await createTask(sys, eco.runIds[0], 500);
      const badExecutor = eco.signer(bad.assignee);
      await sys.taskLedger.connect(badExecutor).completeTask(bad.id, result(bad.id));
      const accusers = nodes.filter((n) => n.address !== bad.assignee).slice(0, 3);
      for (const a of accusers) await sys.taskLedger.connect(a).submitValidation(bad.id, false, otherSeal(bad.id));
      expect((await sys.taskLedger.taskOf(bad.id)).status).to.equal(BigInt(TaskStatus.Invalidated));

      await goToPhase(connection, sys, EPOCH, EpochPhase.Claim);
      for (const [i, task] of eco.tasks.entries()) if (i === 3 || i === 10) await sys.taskLedger.expireTask(task.id);
      await sys.epochManager.fixClaimBeacon(EPOCH);
      const providers = [sys.providers[0], sys.providers[1]];
      const balancesBefore = await Promise.all(providers.map((p) => sys.token.balanceOf(p.address)));
      let workPaid = 0n;
      let rewardsPaid = 0n;
      const expectedByProvider = new Map<string, bigint>(providers.map((p) => [p.address, 0n]));
      for (const node of [n1, n2, n3, n4]) {
        const expected = await expectedCheck(sys, EPOCH, node.address, eco.seed(node));
        const work = await workOf(sys, EPOCH, node.address);
        const reward = expected.forfeited ? 0n : await shareOf(sys, EPOCH, node.address);
        const provider = await sys.registry.providerOf(node.address);
        await expect(sys.settlement.claim(EPOCH, node.address, eco.seed(node)))
          .to.emit(sys.settlement, "Claimed")
          .withArgs(EPOCH, node.address, provider, work, reward, expected.forfeited, expected.missedTaskId, expected.sampled);
        workPaid += work;
        rewardsPaid += reward;
        expectedByProvider.set(provider, expectedByProvider.get(provider)! + work + reward);
      }
      for (const [i, p] of providers.entries()) {
        expect((await sys.token.balanceOf(p.address)) - balancesBefore[i]).to.equal(expectedByProvider.get(p.address));
      }

      await goToPhase(connection, sys, EPOCH, EpochPhase.Closed);
      const n5Work = await workOf(sys, EPOCH, n5.address);
      await expect(sys.settlement.expire(EPOCH, n5.address)).to.emit(sys.settlement, "ClaimExpired").withArgs(EPOCH, n5.address, n5Work);
      const returned = await sys.rewardVault.returnUnclaimed.staticCall(EPOCH);
      await sys.rewardVault.returnUnclaimed(EPOCH);

      // Emission: rewards paid + returned.
      const emission = await sys.rewardVault.emissionOf(EPOCH);
      expect(emission.emission).to.equal(INITIAL_EMISSION);
      expect(emission.paid).to.equal(rewardsPaid);
      expect(rewardsPaid + returned).to.equal(INITIAL_EMISSION);
      expect(await sys.rewardVault.outstanding()).to.equal(0n);

      // Escrow: every task's pay was paid (claimed work), or went back (expired tasks, the invalidated task,
      // n5's expired claim). Nothing stays reserved.
      let paid = 0n;
      let available = 0n;
      let deposited = 0n;
      for (const runId of eco.runIds) {
        const e = await sys.trainingRuns.escrowOf(runId);
        expect(e.deposited).to.equal(e.paid + e.refunded + e.reserved + e.available);
        expect(e.reserved).to.equal(0n);
        paid += e.paid;
        available += e.available;
        deposited += e.deposited;
      }
      expect(paid).to.equal(workPaid);
      const completedPay = eco.tasks.filter((_, i) => i !== 3 && i !== 10).reduce((a, t) => a + t.pay, 0n);
      expect(workPaid + n5Work).to.equal(completedPay);
      expect(available).to.equal(deposited - workPaid);
    });
  });

  describe("gas", function () {
    this.timeout(600_000);

    /**
     * A network of `count` nodes with power, in one run, with 20 tasks in epoch 1, every node doing its duties;
     * returns the gas of a claim in the steady state (the epoch's beacon and emission already fixed and the
     * run's escrow already paid by an earlier claim) for a node that executed a task.
     */
    async function claimGas(count: number) {
      const sys = await deploySystem(connection);
      const nodes = await validatedNodes(connection, sys, count);
      const { tasks, seed } = await buildEconomy(sys, { nodes, tasks: 20 });
      await goToPhase(connection, sys, EPOCH, EpochPhase.Claim);
      const executors = [...new Set(tasks.map((t) => t.assignee))];
      await sys.settlement.claim(EPOCH, executors[0], seed(executors[0]));
      const node = executors[1];
      const check = await expectedCheck(sys, EPOCH, node, seed(node));
      expect(check.forfeited).to.equal(false);
      const gas = await gasOf(sys.settlement.claim(EPOCH, node, seed(node)));
      return { gas, sampled: check.sampled };
    }

    it("does not grow with the number of nodes: a claim among 200 nodes costs at most 5 % more than among 5", async () => {
      const small = await claimGas(5);
      const large = await claimGas(200);
      console.log(
        `      claim gas: ${small.gas} with 5 nodes, ${large.gas} with 200 nodes ` +
          `(ratio ${(Number(large.gas) / Number(small.gas)).toFixed(3)}; ${small.sampled} and ${large.sampled} tasks drawn)`,
      );
      expect(large.sampled).to.equal(SAMPLE_SIZE);
      expect(large.gas * 100n <= small.gas * 105n).to.equal(true);
    });
  });
});
