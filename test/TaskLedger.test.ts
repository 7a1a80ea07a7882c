/**
 * TaskLedger: enrollment, power-weighted task draws, completion and expiry, validation, disputes decided by
 * power voting per seal (Invalidated, Upheld or Unresolved), and the work pay of each epoch.
 *
 * Everything runs on the real system (`deploySystem`, the Ignition modules) with power given by a real PoC
 * round (`givePower`). The shared fixture: six CPU nodes, n1..n3 under provider p1 and n4..n6 under p2, all
 * members of two active runs (price 2 tokens a unit, budget 10 000 tokens). In epoch 1 n1..n5 hold power 100,
 * 200, 500, 500, 500 (total 1800, nobody above the 30 % cap); n6 has none. In run A n1..n5 are enrolled; in run
 * B only n3 is, so every task of run B goes to n3 (executor of the dispute scenarios).
 *
 * Time: the fixtures leave the chain at the start of epoch 1's Work phase (2 h into the epoch). Boundary
 * tests stamp the next block with `setNextBlockTimestamp` and send with a fixed gas limit, so that a revert
 * happens on chain at that very second.
 */
import { expect } from "chai";
import { network } from "hardhat";
import { AbiCoder, type ContractTransactionResponse, keccak256 } from "ethers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import type { TaskLedger } from "../typechain-types/index.js";
import { CPU_NODE, EPOCH_PARAMETERS, type System, createRun, deploySystem, joinRun } from "./helpers/system.js";
import { type Phase, givePower, goToPhase, validatedNode, validatedNodes } from "./helpers/epochs.js";
import { DisputeStatus, EpochPhase, RunStatus, TOKEN, TaskStatus } from "../scripts/lib/protocol.js";
import { dutyHash, dutyKey } from "../keepers/shared/duty.js";

const connection = await network.create();
const { ethers, networkHelpers } = connection;
const { time } = networkHelpers;
const coder = AbiCoder.defaultAbiCoder();

const EPOCH = 1n;
const PRICE = 2n * TOKEN;
const BUDGET = 10_000n * TOKEN;
const CPU_STAKE = 100n * TOKEN;
const POWERS = [100n, 200n, 500n, 500n, 500n];
const TOTAL_POWER = 1800n;
const K_BPS = 20_000n;
const EXECUTOR_SLASH_BPS = 2_000n;
const FALSE_ACCUSER_SLASH_BPS = 500n;
const ACCUSER_REWARD_BPS = 5_000n;
const FALSE_VALIDATION_SLASH_BPS = 1_000n;
const BPS = 10_000n;
const MAX_UINT256 = 2n ** 256n - 1n;
const INVALID_TASK = ethers.id("computenet.TaskLedger.invalidTask");
const FALSE_ACCUSATION = ethers.id("computenet.TaskLedger.falseAccusation");
const INVALID_EVIDENCE = ethers.id("computenet.TaskLedger.invalidEvidence");
const SETTLEMENT_ROLE = ethers.id("SETTLEMENT_ROLE");
const DUTY_SALT_TAG = ethers.id("computenet.TaskLedger.dutySalt");
/** Skips gas estimation: the transaction is mined (and reverts) in the block stamped as the test set it. */
const MINED = { gasLimit: 3_000_000 };
const ZERO_HASH = ethers.ZeroHash;

const NO_REQUIREMENTS = {
  minGpuCount: 0,
  minGpuMemoryMB: 0,
  minCpuCores: 0,
  minRamMB: 0,
  minStorageGB: 0,
  allowedGpuModels: [] as string[],
};

const spec = (i: number | bigint) => ethers.id(`task spec ${i}`);
const result = (i: number | bigint) => ethers.id(`task result ${i}`);
const evidence = (label: string) => ethers.id(`evidence ${label}`);
/** The seal of a result hash, `keccak256(abi.encode(resultHash))`: what votes carry. */
const sealOf = (resultHash: string) => keccak256(coder.encode(["bytes32"], [resultHash]));
/** The seal the executor posts for task `i` (`completeTask(i, sealOf(result(i)))`): the task's side in a dispute. */
const executorSeal = (i: number | bigint) => sealOf(result(i));
/** A seal other than the executor's that the dissenting voters of a test agree on. */
const WRONG = sealOf(ethers.id("a different result"));
/** A seal nobody else shares (a non-deterministic re-execution, or garbage). */
const junk = (label: string) => sealOf(ethers.id(`junk ${label}`));
/** What a validator that re-executed the task posts with a successful validation or a vote to uphold. */
const bound = (resultHash: string, validator: string) => keccak256(coder.encode(["bytes32", "address"], [resultHash, validator]));

interface Context {
  sys: System;
  ledger: TaskLedger;
  runA: bigint;
  runB: bigint;
  nodes: HardhatEthersSigner[];
  settler: HardhatEthersSigner;
}

// ------------------------------------------------------------------ fixtures and helpers

/** Opens an active run without requirements whose members are `members` (joined with fresh invites). */
async function activeRun(sys: System, members: HardhatEthersSigner[], options: { pricePerUnit?: bigint; budget?: bigint } = {}) {
  const runId = await createRun(sys, {
    requirements: NO_REQUIREMENTS,
    maxMembers: 10,
    pricePerUnit: options.pricePerUnit ?? PRICE,
    budget: options.budget ?? BUDGET,
  });
  await sys.trainingRuns.connect(sys.master).startRun(runId);
  for (const [i, node] of members.entries()) await joinRun(connection, sys, runId, node, BigInt(i + 1));
  return runId;
}

/** Six validated CPU nodes, two active runs with all of them as members; epoch 1's PoC phase, no power yet. */
async function membersFixture(): Promise<Context> {
  return membersWith({});
}

async function membersWith(epochs: Partial<typeof EPOCH_PARAMETERS>): Promise<Context> {
  const sys = await deploySystem(connection, { epochs });
  const [p1, p2] = sys.providers;
  const nodes = sys.nodes;
  for (const [i, node] of nodes.entries()) await validatedNode(connection, sys, i < 3 ? p1 : p2, node, CPU_NODE);
  const runA = await activeRun(sys, nodes);
  const runB = await activeRun(sys, nodes);
  const settler = (await ethers.getSigners())[18];
  await sys.taskLedger.connect(sys.admin).grantRole(SETTLEMENT_ROLE, settler.address);
  return { sys, ledger: sys.taskLedger, runA, runB, nodes, settler };
}

/** membersFixture, then power in epoch 1 for n1..n5; the chain is at the start of epoch 1's Work phase. */
async function poweredFixture(): Promise<Context> {
  return powered(await membersFixture());
}

async function powered(ctx: Context): Promise<Context> {
  await givePower(
    connection,
    ctx.sys,
    EPOCH,
    POWERS.map((count, i) => ({ node: ctx.nodes[i], count })),
  );
  return ctx;
}

/** poweredFixture, then n1..n5 enrolled in run A (in that order) and n3 alone in run B. */
async function enrolledFixture(): Promise<Context> {
  return enrolled(await poweredFixture());
}

async function enrolled(ctx: Context): Promise<Context> {
  for (const node of ctx.nodes.slice(0, 5)) await ctx.ledger.enroll(ctx.runA, node.address);
  await ctx.ledger.enroll(ctx.runB, ctx.nodes[2].address);
  return ctx;
}

/** enrolledFixture, then task 1 of run B (3 units, pay 6 tokens) created and completed by n3. */
async function completedFixture() {
  return completed(await enrolledFixture());
}

/** completedFixture with powers 100, 200, 500 (n3, the executor), 400, 500: 1200 may vote, half is 600. */
async function halfFixture() {
  const ctx = await membersFixture();
  await givePower(
    connection,
    ctx.sys,
    EPOCH,
    [100n, 200n, 500n, 400n, 500n].map((count, i) => ({ node: ctx.nodes[i], count })),
  );
  return completed(await enrolled(ctx));
}

/** completedFixture on a system whose Claim window (1 h) is shorter than its Dispute window (6 h). */
async function shortClaimFixture() {
  return completed(await enrolled(await powered(await membersWith({ claimWindow: 3600n }))));
}

async function completed(ctx: Context) {
  const { taskId } = await newTask(ctx, ctx.runB, 3n);
  await ctx.ledger.connect(ctx.nodes[2]).completeTask(taskId, sealOf(result(taskId)));
  return { ...ctx, taskId };
}

interface Created {
  taskId: bigint;
  assignee: string;
  draws: bigint;
  pay: bigint;
  tx: ContractTransactionResponse;
  gasUsed: bigint;
}

/** Creates a task of `runId` by its master and reads what TaskCreated said. */
async function newTask(ctx: Context, runId: bigint, units = 1n, specHash?: string): Promise<Created> {
  const next = (await ctx.ledger.taskCount()) + 1n;
  const tx = await ctx.ledger.connect(ctx.sys.master).createTask(runId, specHash ?? spec(next), units);
  const receipt = (await tx.wait())!;
  for (const log of receipt.logs) {
    const parsed = ctx.ledger.interface.parseLog(log);
    if (parsed?.name === "TaskCreated") {
      return {
        taskId: parsed.args.taskId,
        assignee: parsed.args.assignee,
        draws: parsed.args.draws,
        pay: parsed.args.pay,
        tx,
        gasUsed: receipt.gasUsed,
      };
    }
  }
  throw new Error("no TaskCreated event");
}

/** A run's escrow, checked for `deposited == paid + refunded + reserved + available`. */
async function balancedEscrow(sys: System, runId: bigint) {
  const e = await sys.trainingRuns.escrowOf(runId);
  expect(e.deposited).to.equal(e.paid + e.refunded + e.reserved + e.available);
  return e;
}

/** The draw of the contract, recomputed: first enrolled entry whose cumulative weight exceeds the target. */
function expectedDraw(
  beacon: string,
  runId: bigint,
  taskId: bigint,
  attempt: bigint,
  entries: Array<{ node: string; weight: bigint }>,
): string {
  let total = 0n;
  const cumulative = entries.map((e) => (total += e.weight));
  const target = BigInt(keccak256(coder.encode(["bytes32", "uint256", "uint256", "uint256"], [beacon, runId, taskId, attempt]))) % total;
  return entries[cumulative.findIndex((c) => c > target)].node;
}

/** The validation-duty rule of the interface, recomputed. */
function expectedDuty(
  seed: string,
  salt: bigint,
  taskId: bigint,
  kBps: bigint,
  validatorPower: bigint,
  total: bigint,
  executorPower: bigint,
) {
  if (validatorPower === 0n) return false;
  const numerator = kBps * validatorPower;
  const denominator = (total - executorPower) * BPS;
  if (numerator >= denominator) return true;
  const threshold = (MAX_UINT256 * numerator) / denominator;
  return saltedDutyHash(seed, salt, taskId) < threshold;
}

/** H(seed, salt, t) of the interface: keccak256(abi.encode(keccak256(abi.encode(seed, salt)), t)). */
function saltedDutyHash(seed: string, salt: bigint, taskId: bigint): bigint {
  const key = keccak256(coder.encode(["bytes32", "uint256"], [seed, salt]));
  return BigInt(keccak256(coder.encode(["bytes32", "uint256"], [key, taskId])));
}

/** The duty hash before the salt, keccak256(abi.encode(seed, t)): what a node could grind its seed against. */
function unsaltedDutyHash(seed: string, taskId: bigint): bigint {
  return BigInt(keccak256(coder.encode(["bytes32", "uint256"], [seed, taskId])));
}

/** The duty salt TaskLedger._openEpochTasks derives from the hash of the block before the epoch's first task. */
function expectedSalt(parentHash: string, pocBeacon: string, chainId: bigint, ledger: string, epoch: bigint): bigint {
  const hash = keccak256(
    coder.encode(["bytes32", "bytes32", "uint256", "address", "uint64", "bytes32"], [parentHash, pocBeacon, chainId, ledger, epoch, DUTY_SALT_TAG]),
  );
  return BigInt(hash) & (2n ** 64n - 1n);
}

/** The duty salt the ledger keeps for `epoch` (0 while the epoch has no task). */
async function saltOf(ledger: TaskLedger, epoch = EPOCH): Promise<{ count: bigint; dutySalt: bigint }> {
  const [, tasks] = await ledger.nodeEpochOf(epoch, ethers.ZeroAddress);
  return { count: tasks.count, dutySalt: tasks.dutySalt };
}

async function timeline(sys: System, epoch = EPOCH) {
  return sys.epochManager.timelineOf(epoch);
}

/** Moves to `phase` of `epoch` (advancing the epoch as keepers do). */
async function toPhase(ctx: Context, epoch: bigint, phase: Phase) {
  await goToPhase(connection, ctx.sys, epoch, phase);
}

/** Deploys a second ledger on the same system with `params`, holding the roles the module grants. */
async function deployLedger(
  ctx: Context,
  params: {
    validationKBps: bigint;
    executorSlashBps: bigint;
    falseAccuserSlashBps: bigint;
    accuserRewardBps: bigint;
    falseValidationSlashBps: bigint;
  },
) {
  const { sys } = ctx;
  const ledger = (await ethers.deployContract("TaskLedger", [
    sys.admin.address,
    await sys.epochManager.getAddress(),
    await sys.trainingRuns.getAddress(),
    await sys.registry.getAddress(),
    await sys.proofOfCompute.getAddress(),
    await sys.rewardVault.getAddress(),
    params,
  ])) as unknown as TaskLedger;
  const address = await ledger.getAddress();
  await sys.trainingRuns.connect(sys.admin).grantRole(await sys.trainingRuns.ESCROW_ROLE(), address);
  await sys.registry.connect(sys.admin).grantRole(await sys.registry.SLASHER_ROLE(), address);
  await sys.rewardVault.connect(sys.admin).grantRole(await sys.rewardVault.PAYER_ROLE(), address);
  return ledger;
}

const DEFAULT_PARAMS = {
  validationKBps: K_BPS,
  executorSlashBps: EXECUTOR_SLASH_BPS,
  falseAccuserSlashBps: FALSE_ACCUSER_SLASH_BPS,
  accuserRewardBps: ACCUSER_REWARD_BPS,
  falseValidationSlashBps: FALSE_VALIDATION_SLASH_BPS,
};

// ------------------------------------------------------------------ tests

describe("TaskLedger", () => {
  describe("deployment", () => {
    it("is wired to the system with the module's parameters, roles and constants", async () => {
      const { sys, ledger } = await networkHelpers.loadFixture(membersFixture);
      const address = await ledger.getAddress();
      expect(await ledger.epochs()).to.equal(await sys.epochManager.getAddress());
      expect(await ledger.runs()).to.equal(await sys.trainingRuns.getAddress());
      expect(await ledger.registry()).to.equal(await sys.registry.getAddress());
      expect(await ledger.poc()).to.equal(await sys.proofOfCompute.getAddress());
      expect(await ledger.vault()).to.equal(await sys.rewardVault.getAddress());
      const p = await ledger.parameters();
      expect([p.validationKBps, p.executorSlashBps, p.falseAccuserSlashBps, p.accuserRewardBps, p.falseValidationSlashBps]).to.deep.equal([
        K_BPS,
        EXECUTOR_SLASH_BPS,
        FALSE_ACCUSER_SLASH_BPS,
        ACCUSER_REWARD_BPS,
        FALSE_VALIDATION_SLASH_BPS,
      ]);
      expect(await ledger.hasRole(await ledger.DEFAULT_ADMIN_ROLE(), sys.admin.address)).to.equal(true);
      expect(await ledger.SETTLEMENT_ROLE()).to.equal(SETTLEMENT_ROLE);
      expect(await sys.trainingRuns.hasRole(ethers.id("ESCROW_ROLE"), address)).to.equal(true);
      expect(await sys.registry.hasRole(ethers.id("SLASHER_ROLE"), address)).to.equal(true);
      expect(await sys.rewardVault.hasRole(ethers.id("PAYER_ROLE"), address)).to.equal(true);
      expect(await sys.registry.treasury()).to.equal(await sys.rewardVault.getAddress());
      expect(await ledger.MAX_DRAWS()).to.equal(4n);
      expect(await ledger.MAX_RUNS_PER_EPOCH()).to.equal(16n);
      expect(await ledger.INVALID_TASK_REASON()).to.equal(INVALID_TASK);
      expect(await ledger.FALSE_ACCUSATION_REASON()).to.equal(FALSE_ACCUSATION);
      expect(await ledger.INVALID_EVIDENCE_REASON()).to.equal(INVALID_EVIDENCE);
      expect(await ledger.taskCount()).to.equal(0n);
    });

    it("rejects a zero address for the admin or any contract", async () => {
      const ctx = await networkHelpers.loadFixture(membersFixture);
      const { sys } = ctx;
      const addresses = [
        sys.admin.address,
        await sys.epochManager.getAddress(),
        await sys.trainingRuns.getAddress(),
        await sys.registry.getAddress(),
        await sys.proofOfCompute.getAddress(),
        await sys.rewardVault.getAddress(),
      ];
      const factory = await ethers.getContractFactory("TaskLedger");
      for (let i = 0; i < addresses.length; i++) {
        const args = addresses.map((a, j) => (j === i ? ethers.ZeroAddress : a));
        await expect(
          factory.deploy(args[0], args[1], args[2], args[3], args[4], args[5], DEFAULT_PARAMS),
        ).to.be.revertedWithCustomError(ctx.ledger, "TaskLedgerZeroAddress");
      }
    });

    it("rejects parameters outside their bounds and accepts the bounds themselves", async () => {
      const ctx = await networkHelpers.loadFixture(membersFixture);
      const bad = [
        { ...DEFAULT_PARAMS, validationKBps: 0n },
        { ...DEFAULT_PARAMS, validationKBps: 1_000_001n },
        { ...DEFAULT_PARAMS, executorSlashBps: 10_001n },
        { ...DEFAULT_PARAMS, falseAccuserSlashBps: 10_001n },
        { ...DEFAULT_PARAMS, accuserRewardBps: 10_001n },
        { ...DEFAULT_PARAMS, falseValidationSlashBps: 10_001n },
      ];
      for (const params of bad) {
        await expect(deployLedger(ctx, params)).to.be.revertedWithCustomError(ctx.ledger, "TaskLedgerInvalidParameters");
      }
      for (const params of [
        { validationKBps: 1n, executorSlashBps: 0n, falseAccuserSlashBps: 0n, accuserRewardBps: 0n, falseValidationSlashBps: 0n },
        {
          validationKBps: 1_000_000n,
          executorSlashBps: 10_000n,
          falseAccuserSlashBps: 10_000n,
          accuserRewardBps: 10_000n,
          falseValidationSlashBps: 10_000n,
        },
      ]) {
        const ledger = await deployLedger(ctx, params);
        const p = await ledger.parameters();
        expect(p.validationKBps).to.equal(params.validationKBps);
        expect(p.accuserRewardBps).to.equal(params.accuserRewardBps);
        expect(p.falseValidationSlashBps).to.equal(params.falseValidationSlashBps);
      }
    });
  });

  describe("enroll", () => {
    it("appends the node with its power as weight, from anyone", async () => {
      const { sys, ledger, runA, runB, nodes } = await networkHelpers.loadFixture(poweredFixture);
      const [n1, n2] = nodes;
      await expect(ledger.connect(sys.stranger).enroll(runA, n1.address))
        .to.emit(ledger, "NodeEnrolled")
        .withArgs(runA, EPOCH, n1.address, 100n, 100n);
      await expect(ledger.connect(n2).enroll(runA, n2.address))
        .to.emit(ledger, "NodeEnrolled")
        .withArgs(runA, EPOCH, n2.address, 200n, 300n);
      expect(await ledger.enrollmentOf(runA, EPOCH)).to.deep.equal([2n, 300n]);
      expect(await ledger.isEnrolled(runA, EPOCH, n1.address)).to.equal(true);
      expect(await ledger.isEnrolled(runA, EPOCH, nodes[2].address)).to.equal(false);
      expect(await ledger.isEnrolled(runA, EPOCH + 1n, n1.address)).to.equal(false);
      const work = await ledger.workOf(EPOCH, n1.address);
      expect(work.runIds).to.deep.equal([runA]);
      expect(work.amounts).to.deep.equal([0n]);
      expect(work.settled).to.equal(false);
      expect(await ledger.enrollmentOf(runA, EPOCH + 1n)).to.deep.equal([0n, 0n]);
      // The node's record of the epoch: its runs and its power, from its first enrollment on.
      await ledger.enroll(runB, n1.address);
      const [record] = await ledger.nodeEpochOf(EPOCH, n1.address);
      expect([record.runCount, record.outcome, record.openDisputes, record.power, record.work]).to.deep.equal([2n, 0n, 0n, 100n, 0n]);
      const [none] = await ledger.nodeEpochOf(EPOCH, nodes[2].address);
      expect([none.runCount, none.power]).to.deep.equal([0n, 0n]);
    });

    it("is refused outside the current epoch's Work phase", async () => {
      const ctx = await networkHelpers.loadFixture(membersFixture);
      const { ledger, runA, nodes } = ctx;
      // PoC phase of epoch 1 (no power yet either).
      await expect(ledger.enroll(runA, nodes[0].address))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerNotWorkPhase")
        .withArgs(EPOCH);
      // After a real PoC round (which ends at the start of Work): allowed until the epoch's end, then refused in
      // the next epoch's early phases, advanced or not.
      await givePower(connection, ctx.sys, EPOCH, [{ node: nodes[0], count: 10n }, { node: nodes[1], count: 10n }]);
      const t = await timeline(ctx.sys);
      await expect(ledger.enroll(runA, nodes[0].address)).to.emit(ledger, "NodeEnrolled");
      await time.setNextBlockTimestamp(t.end);
      await expect(ledger.enroll(runA, nodes[1].address, MINED))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerNotWorkPhase")
        .withArgs(EPOCH + 1n);
      await toPhase(ctx, EPOCH + 1n, EpochPhase.PoCValidation);
      await expect(ledger.enroll(runA, nodes[1].address))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerNotWorkPhase")
        .withArgs(EPOCH + 1n);
    });

    it("is refused before genesis (epoch 0), as is task creation", async () => {
      const ctx = await networkHelpers.loadFixture(poweredFixture);
      const { sys, nodes, runA } = ctx;
      // A clock whose epoch 1 starts tomorrow, and a ledger reading it.
      const genesis = BigInt(await time.latest()) + 86_400n;
      const clock = await ethers.deployContract("EpochManager", [
        sys.admin.address,
        await sys.registry.getAddress(),
        genesis,
        EPOCH_PARAMETERS,
      ]);
      const ledger = (await ethers.deployContract("TaskLedger", [
        sys.admin.address,
        await clock.getAddress(),
        await sys.trainingRuns.getAddress(),
        await sys.registry.getAddress(),
        await sys.proofOfCompute.getAddress(),
        await sys.rewardVault.getAddress(),
        DEFAULT_PARAMS,
      ])) as unknown as TaskLedger;
      await expect(ledger.enroll(runA, nodes[0].address))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerNotWorkPhase")
        .withArgs(0n);
      await expect(ledger.connect(sys.master).createTask(runA, spec(1), 1n))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerNotWorkPhase")
        .withArgs(0n);
    });

    it("is refused in the last second of the PoC validation phase and allowed in the first of Work", async () => {
      const ctx = await networkHelpers.loadFixture(membersFixture);
      const { sys, ledger, runA, nodes } = ctx;
      await goToPhase(connection, sys, EPOCH, EpochPhase.PoC);
      const seed = ethers.id("seed");
      await sys.epochManager.connect(nodes[0]).commitSeed(EPOCH, await sys.epochManager.seedCommitment(seed, nodes[0].address));
      await sys.proofOfCompute.connect(nodes[0]).commitPoc(EPOCH, ethers.id("root"), 10n);
      for (const v of sys.validators) {
        if ((await sys.proofOfCompute.commitmentOf(EPOCH, nodes[0].address)).status === 2n) break;
        await sys.proofOfCompute.connect(v).submitVerdict(EPOCH, nodes[0].address, true, evidence("poc"));
      }
      const t = await timeline(sys);
      await time.setNextBlockTimestamp(t.pocValidationEnd - 1n);
      await expect(ledger.enroll(runA, nodes[0].address, MINED))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerNotWorkPhase")
        .withArgs(EPOCH);
      await time.setNextBlockTimestamp(t.pocValidationEnd);
      await expect(ledger.enroll(runA, nodes[0].address, MINED)).to.emit(ledger, "NodeEnrolled");
    });

    it("is refused for a run that is not active", async () => {
      const ctx = await networkHelpers.loadFixture(poweredFixture);
      const { sys, ledger, runA, nodes } = ctx;
      await sys.trainingRuns.connect(sys.buyer).completeRun(runA);
      await expect(ledger.enroll(runA, nodes[0].address))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerRunNotActive")
        .withArgs(runA);
      await expect(ledger.enroll(999n, nodes[0].address))
        .to.be.revertedWithCustomError(sys.trainingRuns, "TrainingRunsUnknownRun")
        .withArgs(999n);
    });

    it("is refused for a node that is not a member of the run", async () => {
      const { sys, ledger, runA, nodes } = await networkHelpers.loadFixture(poweredFixture);
      await expect(ledger.enroll(runA, sys.stranger.address))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerNotMember")
        .withArgs(runA, sys.stranger.address);
      await sys.trainingRuns.connect(nodes[0]).leaveRun(runA, nodes[0].address);
      await expect(ledger.enroll(runA, nodes[0].address))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerNotMember")
        .withArgs(runA, nodes[0].address);
    });

    it("is refused for a member without power in the epoch", async () => {
      const { ledger, runA, nodes } = await networkHelpers.loadFixture(poweredFixture);
      await expect(ledger.enroll(runA, nodes[5].address))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerNoPower")
        .withArgs(EPOCH, nodes[5].address);
    });

    it("is refused twice for the same run and epoch", async () => {
      const { ledger, runA, nodes } = await networkHelpers.loadFixture(enrolledFixture);
      await expect(ledger.enroll(runA, nodes[0].address))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerAlreadyEnrolled")
        .withArgs(runA, EPOCH, nodes[0].address);
    });

    it("is refused past MAX_RUNS_PER_EPOCH runs of one node in one epoch", async () => {
      const ctx = await networkHelpers.loadFixture(poweredFixture);
      const { sys, ledger, runA, runB, nodes } = ctx;
      const n1 = nodes[0];
      await ledger.enroll(runA, n1.address);
      await ledger.enroll(runB, n1.address);
      const extra: bigint[] = [];
      // TrainingRuns holds a node in at most 16 runs at once: leave enrolled runs to join new ones.
      await sys.trainingRuns.connect(n1).leaveRun(runA, n1.address);
      await sys.trainingRuns.connect(n1).leaveRun(runB, n1.address);
      for (let i = 0; i < 14; i++) extra.push(await activeRun(sys, [n1]));
      for (const runId of extra) await ledger.enroll(runId, n1.address);
      expect((await ledger.workOf(EPOCH, n1.address)).runIds.length).to.equal(16);
      const last = await activeRun(sys, [n1]);
      await expect(ledger.enroll(last, n1.address))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerTooManyRuns")
        .withArgs(EPOCH, n1.address);
    });
  });

  describe("createTask", () => {
    it("draws the assignee, reserves the pay and records the task", async () => {
      const ctx = await networkHelpers.loadFixture(enrolledFixture);
      const { sys, ledger, runB, nodes } = ctx;
      const before = await balancedEscrow(sys, runB);
      const tx = ledger.connect(sys.master).createTask(runB, spec(1), 3n);
      await expect(tx)
        .to.emit(ledger, "TaskCreated")
        .withArgs(1n, runB, nodes[2].address, EPOCH, spec(1), 3n, 6n * TOKEN, 1n);
      await expect(tx)
        .to.emit(sys.trainingRuns, "EscrowReserved")
        .withArgs(runB, await ledger.getAddress(), 6n * TOKEN);
      const after = await balancedEscrow(sys, runB);
      expect(after.reserved - before.reserved).to.equal(6n * TOKEN);
      expect(before.available - after.available).to.equal(6n * TOKEN);

      const task = await ledger.taskOf(1n);
      expect(task.runId).to.equal(runB);
      expect(task.epoch).to.equal(EPOCH);
      expect(task.status).to.equal(TaskStatus.Assigned);
      expect(task.assignee).to.equal(nodes[2].address);
      expect(task.units).to.equal(3n);
      expect(task.pay).to.equal(6n * TOKEN);
      expect(task.specHash).to.equal(spec(1));
      expect(task.resultHash).to.equal(ZERO_HASH);
      expect(task.assigneePower).to.equal(500n);
      expect(task.completedAt).to.equal(0n);
      expect(await ledger.taskCount()).to.equal(1n);
      expect(await ledger.epochTaskCount(EPOCH)).to.equal(1n);
      expect(await ledger.epochTaskAt(EPOCH, 0n)).to.equal(1n);
      expect(await ledger.epochTaskCount(EPOCH + 1n)).to.equal(0n);
      await expect(ledger.epochTaskAt(EPOCH, 1n))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerTaskIndexOutOfRange")
        .withArgs(EPOCH, 1n, 1n);
      // The epoch's tasks: consecutive ids from the first, and the end of its Dispute phase.
      const second = await newTask(ctx, runB, 1n);
      expect(await ledger.epochTaskAt(EPOCH, 1n)).to.equal(second.taskId);
      const [, tasks] = await ledger.nodeEpochOf(EPOCH, nodes[2].address);
      expect([tasks.firstTaskId, tasks.count, tasks.disputeEnd]).to.deep.equal([1n, 2n, (await timeline(sys)).disputeEnd]);
      const [, later] = await ledger.nodeEpochOf(EPOCH + 1n, nodes[2].address);
      expect([later.firstTaskId, later.count, later.disputeEnd, later.dutySalt]).to.deep.equal([0n, 0n, 0n, 0n]);
      const dispute = await ledger.disputeOf(1n);
      expect(dispute.status).to.equal(DisputeStatus.None);
    });

    it("returns the task id and assignee", async () => {
      const { sys, ledger, runB, nodes } = await networkHelpers.loadFixture(enrolledFixture);
      const [taskId, assignee] = await ledger.connect(sys.master).createTask.staticCall(runB, spec(1), 1n);
      expect(taskId).to.equal(1n);
      expect(assignee).to.equal(nodes[2].address);
    });

    it("draws deterministically: drawAssignee and a recomputation agree with every TaskCreated", async () => {
      const ctx = await networkHelpers.loadFixture(enrolledFixture);
      const { sys, ledger, runA, nodes } = ctx;
      const beacon = (await sys.epochManager.recordOf(EPOCH)).pocBeacon;
      const entries = nodes.slice(0, 5).map((n, i) => ({ node: n.address, weight: POWERS[i] }));
      for (let i = 0; i < 12; i++) {
        const created = await newTask(ctx, runA);
        expect(created.draws).to.equal(1n);
        expect(await ledger.drawAssignee(runA, EPOCH, created.taskId, 0n)).to.equal(created.assignee);
        expect(expectedDraw(beacon, runA, created.taskId, 0n, entries)).to.equal(created.assignee);
        expect((await ledger.taskOf(created.taskId)).assigneePower).to.equal(POWERS[entries.findIndex((e) => e.node === created.assignee)]);
      }
      // Other attempts draw from other hashes, over the same entries.
      for (let attempt = 1n; attempt < 4n; attempt++) {
        expect(await ledger.drawAssignee(runA, EPOCH, 7n, attempt)).to.equal(expectedDraw(beacon, runA, 7n, attempt, entries));
      }
    });

    it("draws in proportion to power (weights 1:2:5 over 160 tasks)", async function () {
      this.timeout(120_000);
      const ctx = await networkHelpers.loadFixture(poweredFixture);
      const { sys, ledger, nodes } = ctx;
      const runC = await activeRun(sys, nodes.slice(0, 3));
      for (const node of nodes.slice(0, 3)) await ledger.enroll(runC, node.address);
      const counts = new Map<string, number>(nodes.slice(0, 3).map((n) => [n.address, 0]));
      const TASKS = 160;
      for (let i = 0; i < TASKS; i++) {
        const { assignee } = await newTask(ctx, runC);
        counts.set(assignee, counts.get(assignee)! + 1);
      }
      const shares = [1, 2, 5].map((w) => w / 8);
      const observed = nodes.slice(0, 3).map((n) => counts.get(n.address)!);
      console.log(`      draws over ${TASKS} tasks, weights 1:2:5: ${observed.join(" / ")} (expected 20 / 40 / 100)`);
      for (const [i, share] of shares.entries()) {
        const mean = TASKS * share;
        const sd = Math.sqrt(TASKS * share * (1 - share));
        expect(Math.abs(observed[i] - mean), `node ${i + 1}`).to.be.at.most(4 * sd);
      }
      expect(observed.reduce((a, b) => a + b, 0)).to.equal(TASKS);
    });

    it("draws again when the drawn node left the run, and gives up after MAX_DRAWS", async function () {
      this.timeout(120_000);
      const ctx = await networkHelpers.loadFixture(poweredFixture);
      const { sys, ledger, runA, nodes } = ctx;
      const [n1, , , n4] = nodes;
      const runC = await activeRun(sys, [n1, n4]);
      await ledger.enroll(runC, n4.address); // weight 500
      await ledger.enroll(runC, n1.address); // weight 100
      await sys.trainingRuns.connect(n4).leaveRun(runC, n4.address);
      expect(await ledger.isEnrolled(runC, EPOCH, n4.address)).to.equal(true);
      for (const node of nodes.slice(0, 5)) await ledger.enroll(runA, node.address);

      let redrawn = 0;
      let refused = 0;
      while (redrawn < 2 || refused < 1) {
        const next = (await ledger.taskCount()) + 1n;
        const drawn: string[] = [];
        for (let a = 0n; a < 4n; a++) drawn.push(await ledger.drawAssignee(runC, EPOCH, next, a));
        const first = drawn.findIndex((d) => d === n1.address);
        if (first < 0) {
          await expect(ledger.connect(sys.master).createTask(runC, spec(next), 1n))
            .to.be.revertedWithCustomError(ledger, "TaskLedgerNoAssignee")
            .withArgs(runC, EPOCH);
          refused++;
          await newTask(ctx, runA); // moves the counter on: the same id would draw the same nodes again
          continue;
        }
        const created = await newTask(ctx, runC);
        expect(created.taskId).to.equal(next);
        expect(created.assignee).to.equal(n1.address);
        expect(created.draws).to.equal(BigInt(first + 1));
        if (first > 0) redrawn++;
      }
    });

    it("is refused to anyone but the run's master", async () => {
      const { sys, ledger, runB } = await networkHelpers.loadFixture(enrolledFixture);
      await expect(ledger.connect(sys.buyer).createTask(runB, spec(1), 1n))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerNotMaster")
        .withArgs(runB, sys.buyer.address);
      await expect(ledger.connect(sys.master).createTask(999n, spec(1), 1n))
        .to.be.revertedWithCustomError(sys.trainingRuns, "TrainingRunsUnknownRun")
        .withArgs(999n);
    });

    it("is refused for a run that is not active", async () => {
      const { sys, ledger, runB } = await networkHelpers.loadFixture(enrolledFixture);
      await sys.trainingRuns.connect(sys.buyer).completeRun(runB);
      expect((await sys.trainingRuns.getRun(runB)).status).to.equal(RunStatus.Completed);
      await expect(ledger.connect(sys.master).createTask(runB, spec(1), 1n))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerRunNotActive")
        .withArgs(runB);
    });

    it("is refused without units or without a spec hash", async () => {
      const { sys, ledger, runB } = await networkHelpers.loadFixture(enrolledFixture);
      await expect(ledger.connect(sys.master).createTask(runB, spec(1), 0n)).to.be.revertedWithCustomError(
        ledger,
        "TaskLedgerInvalidTask",
      );
      await expect(ledger.connect(sys.master).createTask(runB, ZERO_HASH, 1n)).to.be.revertedWithCustomError(
        ledger,
        "TaskLedgerInvalidTask",
      );
    });

    it("is refused outside the Work phase of the current epoch", async () => {
      const ctx = await networkHelpers.loadFixture(enrolledFixture);
      const { sys, ledger, runB } = ctx;
      const t = await timeline(sys);
      await time.setNextBlockTimestamp(t.end - 1n);
      await expect(ledger.connect(sys.master).createTask(runB, spec(1), 1n, MINED)).to.emit(ledger, "TaskCreated");
      await time.setNextBlockTimestamp(t.end);
      await expect(ledger.connect(sys.master).createTask(runB, spec(2), 1n, MINED))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerNotWorkPhase")
        .withArgs(EPOCH + 1n);
    });

    it("is refused when nobody is enrolled in the run for the epoch", async () => {
      const ctx = await networkHelpers.loadFixture(enrolledFixture);
      const { sys, ledger, runA, nodes } = ctx;
      const runC = await activeRun(sys, nodes.slice(0, 2));
      await expect(ledger.connect(sys.master).createTask(runC, spec(1), 1n))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerNoAssignee")
        .withArgs(runC, EPOCH);
      await expect(ledger.drawAssignee(runC, EPOCH, 1n, 0n))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerNoAssignee")
        .withArgs(runC, EPOCH);
      // Enrollment is per epoch: in epoch 2 nobody is enrolled in run A until someone enrolls again.
      await givePower(connection, sys, EPOCH + 1n, [{ node: nodes[0], count: 10n }, { node: nodes[1], count: 10n }]);
      await expect(ledger.connect(sys.master).createTask(runA, spec(1), 1n))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerNoAssignee")
        .withArgs(runA, EPOCH + 1n);
    });

    it("lets TrainingRuns refuse a pay the run's available escrow cannot cover", async () => {
      const ctx = await networkHelpers.loadFixture(poweredFixture);
      const { sys, ledger, nodes } = ctx;
      const runC = await activeRun(sys, [nodes[0]], { budget: 3n * TOKEN });
      await ledger.enroll(runC, nodes[0].address);
      await expect(ledger.connect(sys.master).createTask(runC, spec(1), 2n))
        .to.be.revertedWithCustomError(sys.trainingRuns, "TrainingRunsInsufficientEscrow")
        .withArgs(runC, 3n * TOKEN, 4n * TOKEN);
      expect(await ledger.taskCount()).to.equal(0n);
    });

    it("creates unpaid tasks of a free run without touching its escrow", async () => {
      const ctx = await networkHelpers.loadFixture(poweredFixture);
      const { sys, ledger, nodes } = ctx;
      const runC = await activeRun(sys, [nodes[0]], { pricePerUnit: 0n });
      await ledger.enroll(runC, nodes[0].address);
      const tx = ledger.connect(sys.master).createTask(runC, spec(1), 5n);
      await expect(tx).to.emit(ledger, "TaskCreated").withArgs(1n, runC, nodes[0].address, EPOCH, spec(1), 5n, 0n, 1n);
      await expect(tx).to.not.emit(sys.trainingRuns, "EscrowReserved");
      await ledger.connect(nodes[0]).completeTask(1n, result(1));
      expect((await ledger.workOf(EPOCH, nodes[0].address)).amounts).to.deep.equal([0n]);
      expect((await balancedEscrow(sys, runC)).reserved).to.equal(0n);
    });
  });

  describe("completeTask", () => {
    it("records the result and credits the pay to the executor's work in the run", async () => {
      const ctx = await networkHelpers.loadFixture(enrolledFixture);
      const { ledger, runB, nodes } = ctx;
      const n3 = nodes[2];
      const { taskId } = await newTask(ctx, runB, 3n);
      const tx = ledger.connect(n3).completeTask(taskId, result(1));
      await expect(tx).to.emit(ledger, "TaskCompleted").withArgs(taskId, n3.address, result(1));
      const stamp = BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
      const task = await ledger.taskOf(taskId);
      expect(task.status).to.equal(TaskStatus.Completed);
      expect(task.resultHash).to.equal(result(1));
      expect(task.completedAt).to.equal(stamp);
      const work = await ledger.workOf(EPOCH, n3.address);
      expect(work.runIds).to.deep.equal([ctx.runA, runB]);
      expect(work.amounts).to.deep.equal([0n, 6n * TOKEN]);
      // A second task adds up in the same run.
      const second = await newTask(ctx, runB, 1n);
      await ledger.connect(n3).completeTask(second.taskId, result(2));
      expect((await ledger.workOf(EPOCH, n3.address)).amounts).to.deep.equal([0n, 8n * TOKEN]);
    });

    it("is refused to anyone but the assignee", async () => {
      const ctx = await networkHelpers.loadFixture(enrolledFixture);
      const { taskId } = await newTask(ctx, ctx.runB);
      await expect(ctx.ledger.connect(ctx.nodes[3]).completeTask(taskId, result(1)))
        .to.be.revertedWithCustomError(ctx.ledger, "TaskLedgerNotAssignee")
        .withArgs(taskId, ctx.nodes[3].address);
    });

    it("is refused with an empty result", async () => {
      const ctx = await networkHelpers.loadFixture(enrolledFixture);
      const { taskId } = await newTask(ctx, ctx.runB);
      await expect(ctx.ledger.connect(ctx.nodes[2]).completeTask(taskId, ZERO_HASH)).to.be.revertedWithCustomError(
        ctx.ledger,
        "TaskLedgerEmptyResult",
      );
    });

    it("is refused twice, and for unknown tasks", async () => {
      const { ledger, nodes, taskId } = await networkHelpers.loadFixture(completedFixture);
      await expect(ledger.connect(nodes[2]).completeTask(taskId, result(2)))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerInvalidStatus")
        .withArgs(taskId, TaskStatus.Completed);
      for (const id of [0n, 2n]) {
        await expect(ledger.connect(nodes[2]).completeTask(id, result(2)))
          .to.be.revertedWithCustomError(ledger, "TaskLedgerUnknownTask")
          .withArgs(id);
      }
    });

    it("closes at the end of the task's epoch", async () => {
      const ctx = await networkHelpers.loadFixture(enrolledFixture);
      const { sys, ledger, nodes } = ctx;
      const first = await newTask(ctx, ctx.runB);
      const second = await newTask(ctx, ctx.runB);
      const t = await timeline(sys);
      await time.setNextBlockTimestamp(t.end - 1n);
      await expect(ledger.connect(nodes[2]).completeTask(first.taskId, result(1), MINED)).to.emit(ledger, "TaskCompleted");
      await time.setNextBlockTimestamp(t.end);
      await expect(ledger.connect(nodes[2]).completeTask(second.taskId, result(2), MINED))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerCompletionClosed")
        .withArgs(second.taskId, t.end);
    });

    it("costs little gas (it calls no other contract)", async () => {
      const ctx = await networkHelpers.loadFixture(enrolledFixture);
      const { ledger, nodes } = ctx;
      const gas: bigint[] = [];
      for (let i = 0; i < 3; i++) {
        const { taskId } = await newTask(ctx, ctx.runB, 2n);
        const receipt = await (await ledger.connect(nodes[2]).completeTask(taskId, result(taskId))).wait();
        gas.push(receipt!.gasUsed);
      }
      console.log(`      completeTask gas: first credit of a run ${gas[0]}, later ${gas[1]}, ${gas[2]}`);
      for (const g of gas) expect(g).to.be.below(168_000n);
      expect(gas[1]).to.be.below(gas[0]);
    });
  });

  describe("expireTask", () => {
    it("returns the pay of a task never completed in its epoch to the run's escrow (anyone)", async () => {
      const ctx = await networkHelpers.loadFixture(enrolledFixture);
      const { sys, ledger, runB } = ctx;
      const { taskId } = await newTask(ctx, runB, 4n);
      const reserved = await balancedEscrow(sys, runB);
      const t = await timeline(sys);
      await time.setNextBlockTimestamp(t.end - 1n);
      await expect(ledger.connect(sys.stranger).expireTask(taskId, MINED))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerNotExpired")
        .withArgs(taskId, t.end);
      await time.setNextBlockTimestamp(t.end);
      const tx = ledger.connect(sys.stranger).expireTask(taskId, MINED);
      await expect(tx).to.emit(ledger, "TaskExpired").withArgs(taskId, 8n * TOKEN);
      await expect(tx).to.emit(sys.trainingRuns, "EscrowReleased").withArgs(runB, 8n * TOKEN, false);
      const after = await balancedEscrow(sys, runB);
      expect(reserved.reserved - after.reserved).to.equal(8n * TOKEN);
      expect(after.available - reserved.available).to.equal(8n * TOKEN);
      expect((await ledger.taskOf(taskId)).status).to.equal(TaskStatus.Expired);
      await expect(ledger.expireTask(taskId))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerInvalidStatus")
        .withArgs(taskId, TaskStatus.Expired);
      await expect(ledger.connect(ctx.nodes[2]).completeTask(taskId, result(1)))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerInvalidStatus")
        .withArgs(taskId, TaskStatus.Expired);
    });

    it("refunds the buyer when the run has ended, and expires unpaid tasks without the escrow", async () => {
      const ctx = await networkHelpers.loadFixture(enrolledFixture);
      const { sys, ledger, runB, nodes } = ctx;
      const { taskId } = await newTask(ctx, runB, 1n);
      const runC = await activeRun(sys, [nodes[0]], { pricePerUnit: 0n });
      await ledger.enroll(runC, nodes[0].address);
      const free = await newTask(ctx, runC);
      await sys.trainingRuns.connect(sys.buyer).completeRun(runB);
      await toPhase(ctx, EPOCH, EpochPhase.Dispute);
      const balance = await sys.token.balanceOf(sys.buyer.address);
      await expect(ledger.expireTask(taskId)).to.emit(sys.trainingRuns, "EscrowReleased").withArgs(runB, PRICE, true);
      expect(await sys.token.balanceOf(sys.buyer.address)).to.equal(balance + PRICE);
      const escrow = await balancedEscrow(sys, runB);
      expect(escrow.reserved).to.equal(0n);
      const tx = ledger.expireTask(free.taskId);
      await expect(tx).to.emit(ledger, "TaskExpired").withArgs(free.taskId, 0n);
      await expect(tx).to.not.emit(sys.trainingRuns, "EscrowReleased");
    });

    it("is refused for completed and unknown tasks", async () => {
      const { sys, ledger, taskId } = await networkHelpers.loadFixture(completedFixture);
      await goToPhase(connection, sys, EPOCH, EpochPhase.Dispute);
      await expect(ledger.expireTask(taskId))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerInvalidStatus")
        .withArgs(taskId, TaskStatus.Completed);
      await expect(ledger.expireTask(5n)).to.be.revertedWithCustomError(ledger, "TaskLedgerUnknownTask").withArgs(5n);
    });
  });

  describe("submitValidation", () => {
    it("records a successful validation with the validator's power", async () => {
      const { ledger, nodes, taskId } = await networkHelpers.loadFixture(completedFixture);
      const n1 = nodes[0];
      await expect(ledger.connect(n1).submitValidation(taskId, true, evidence("n1")))
        .to.emit(ledger, "TaskValidated")
        .withArgs(taskId, n1.address, true, evidence("n1"), 100n);
      expect(await ledger.hasValidated(taskId, n1.address)).to.equal(true);
      expect(await ledger.hasValidated(taskId, nodes[1].address)).to.equal(false);
      // One bit per task, 256 tasks a word.
      expect(await ledger.validationWordOf(n1.address, taskId >> 8n)).to.equal(1n << (taskId & 255n));
      expect(await ledger.validationWordOf(nodes[1].address, taskId >> 8n)).to.equal(0n);
      const dispute = await ledger.disputeOf(taskId);
      expect(dispute.status).to.equal(DisputeStatus.None);
      expect(dispute.validWeight).to.equal(100n);
      expect(dispute.invalidWeight).to.equal(0n);
      expect((await ledger.taskOf(taskId)).status).to.equal(TaskStatus.Completed);
    });

    it("keeps the evidence of a successful validation only", async () => {
      const { ledger, nodes, taskId } = await networkHelpers.loadFixture(completedFixture);
      const [n1, n2, , n4] = nodes;
      expect(await ledger.okEvidenceHashFor(taskId, n1.address)).to.equal(ZERO_HASH);
      await ledger.connect(n1).submitValidation(taskId, true, bound(result(taskId), n1.address));
      await ledger.connect(n2).submitValidation(taskId, false, junk("n2"));
      await ledger.connect(n4).submitValidation(taskId, true, evidence("n4"));
      expect(await ledger.okEvidenceHashFor(taskId, n1.address)).to.equal(bound(result(taskId), n1.address));
      expect(await ledger.okEvidenceHashFor(taskId, n2.address)).to.equal(ZERO_HASH);
      expect(await ledger.okEvidenceHashFor(taskId, n4.address)).to.equal(evidence("n4"));
    });

    it("refuses a successful validation without evidence (a failed one carries a seal instead)", async () => {
      const { ledger, nodes, taskId } = await networkHelpers.loadFixture(completedFixture);
      await expect(ledger.connect(nodes[0]).submitValidation(taskId, true, ZERO_HASH))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerEmptyEvidence")
        .withArgs(taskId);
      expect(await ledger.hasValidated(taskId, nodes[0].address)).to.equal(false);
      await expect(ledger.connect(nodes[0]).submitValidation(taskId, false, WRONG)).to.emit(ledger, "DisputeOpened");
      expect(await ledger.okEvidenceHashFor(taskId, nodes[0].address)).to.equal(ZERO_HASH);
    });

    it("costs a successful validation one fresh slot more than a failed one (its evidence), and nothing else", async () => {
      const ctx = await networkHelpers.loadFixture(completedFixture);
      const { ledger, nodes } = ctx;
      const [n1, n2, n3, n4, n5] = nodes;
      // Two more tasks of n3, each disputed by n1 and upheld by n4 and n5 (1000 of 1300): a later validation of
      // either is recorded and changes nothing else, successful or not.
      const upheld: bigint[] = [];
      for (let i = 0; i < 2; i++) {
        const { taskId } = await newTask(ctx, ctx.runB);
        await ledger.connect(n3).completeTask(taskId, sealOf(result(taskId)));
        await ledger.connect(n1).submitValidation(taskId, false, junk("n1"));
        await ledger.connect(n4).submitValidation(taskId, true, bound(result(taskId), n4.address));
        await ledger.connect(n5).submitValidation(taskId, true, bound(result(taskId), n5.address));
        expect((await ledger.disputeOf(taskId)).status).to.equal(DisputeStatus.Upheld);
        upheld.push(taskId);
      }
      // n2's validation word is written already (task 1), so both measured calls rewrite a non-zero word.
      await ledger.connect(n2).submitValidation(ctx.taskId, true, bound(result(ctx.taskId), n2.address));
      const gasOf = async (tx: Promise<ContractTransactionResponse>) => (await (await tx).wait())!.gasUsed;
      const ok = await gasOf(ledger.connect(n2).submitValidation(upheld[0], true, bound(result(upheld[0]), n2.address)));
      const failed = await gasOf(ledger.connect(n2).submitValidation(upheld[1], false, bound(result(upheld[1]), n2.address)));
      console.log(`      submitValidation gas after an upheld dispute: successful ${ok}, failed ${failed}`);
      // A fresh slot: 20,000 for the write and 2,100 for the cold access, plus the check of the evidence.
      expect(ok - failed >= 22_100n && ok - failed < 23_000n, `difference ${ok - failed}`).to.equal(true);
    });

    it("is refused twice from the same node", async () => {
      const { ledger, nodes, taskId } = await networkHelpers.loadFixture(completedFixture);
      await ledger.connect(nodes[0]).submitValidation(taskId, true, evidence("1"));
      for (const ok of [true, false]) {
        await expect(ledger.connect(nodes[0]).submitValidation(taskId, ok, evidence("2")))
          .to.be.revertedWithCustomError(ledger, "TaskLedgerAlreadyValidated")
          .withArgs(taskId, nodes[0].address);
      }
    });

    it("is refused to the executor", async () => {
      const { ledger, nodes, taskId } = await networkHelpers.loadFixture(completedFixture);
      await expect(ledger.connect(nodes[2]).submitValidation(taskId, true, evidence("self")))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerSelfValidation")
        .withArgs(taskId);
    });

    it("is refused to a node without power in the task's epoch", async () => {
      const { sys, ledger, nodes, taskId } = await networkHelpers.loadFixture(completedFixture);
      for (const account of [nodes[5], sys.stranger]) {
        await expect(ledger.connect(account).submitValidation(taskId, true, evidence("x")))
          .to.be.revertedWithCustomError(ledger, "TaskLedgerNoPower")
          .withArgs(EPOCH, account.address);
      }
    });

    it("is refused on tasks not completed, and on unknown tasks", async () => {
      const ctx = await networkHelpers.loadFixture(enrolledFixture);
      const { taskId } = await newTask(ctx, ctx.runB);
      await expect(ctx.ledger.connect(ctx.nodes[0]).submitValidation(taskId, true, evidence("x")))
        .to.be.revertedWithCustomError(ctx.ledger, "TaskLedgerInvalidStatus")
        .withArgs(taskId, TaskStatus.Assigned);
      await expect(ctx.ledger.connect(ctx.nodes[0]).submitValidation(9n, true, evidence("x")))
        .to.be.revertedWithCustomError(ctx.ledger, "TaskLedgerUnknownTask")
        .withArgs(9n);
    });

    it("stays open through the Dispute phase and closes at its end", async () => {
      const { sys, ledger, nodes, taskId } = await networkHelpers.loadFixture(completedFixture);
      const t = await timeline(sys);
      await time.setNextBlockTimestamp(t.disputeEnd - 1n);
      await expect(ledger.connect(nodes[0]).submitValidation(taskId, true, evidence("late"), MINED)).to.emit(
        ledger,
        "TaskValidated",
      );
      await time.setNextBlockTimestamp(t.disputeEnd);
      await expect(ledger.connect(nodes[1]).submitValidation(taskId, true, evidence("too late"), MINED))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerValidationClosed")
        .withArgs(taskId, t.disputeEnd);
    });

    it("opens a dispute when the result could not be reproduced, with the accuser's seal as its vote", async () => {
      const { ledger, nodes, taskId } = await networkHelpers.loadFixture(completedFixture);
      const [n1, , n3] = nodes;
      const tx = ledger.connect(n1).submitValidation(taskId, false, WRONG);
      await expect(tx).to.emit(ledger, "TaskValidated").withArgs(taskId, n1.address, false, WRONG, 100n);
      await expect(tx).to.emit(ledger, "DisputeOpened").withArgs(taskId, n1.address, WRONG, 100n);
      await expect(tx).to.not.emit(ledger, "DisputeResolved");
      const stamp = BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
      const dispute = await ledger.disputeOf(taskId);
      expect(dispute.status).to.equal(DisputeStatus.Open);
      expect(dispute.accuser).to.equal(n1.address);
      expect(dispute.openedAt).to.equal(stamp);
      expect(dispute.invalidWeight).to.equal(100n);
      expect(dispute.validWeight).to.equal(0n);
      expect(dispute.accuserSeal).to.equal(WRONG);
      expect(await ledger.sealTallyOf(taskId, WRONG)).to.equal(100n);
      expect(await ledger.sealTallyOf(taskId, executorSeal(taskId))).to.equal(0n);
      expect(await ledger.openDisputesOf(EPOCH, n1.address)).to.equal(1n);
      expect(await ledger.openDisputesOf(EPOCH, n3.address)).to.equal(1n);
      expect(await ledger.openDisputesOf(EPOCH, nodes[1].address)).to.equal(0n);
      expect((await ledger.nodeEpochOf(EPOCH, n3.address))[0].openDisputes).to.equal(1n);
    });

    it("refuses a failed validation without a seal or with the executor's own seal", async () => {
      const { ledger, nodes, taskId } = await networkHelpers.loadFixture(completedFixture);
      const [n1, n2] = nodes;
      for (const [seal, error] of [
        [ZERO_HASH, "TaskLedgerZeroSeal"],
        [executorSeal(taskId), "TaskLedgerSealAgrees"],
      ] as const) {
        await expect(ledger.connect(n1).submitValidation(taskId, false, seal)).to.be.revertedWithCustomError(ledger, error).withArgs(taskId);
      }
      // Also once the dispute is open.
      await ledger.connect(n1).submitValidation(taskId, false, WRONG);
      for (const [seal, error] of [
        [ZERO_HASH, "TaskLedgerZeroSeal"],
        [executorSeal(taskId), "TaskLedgerSealAgrees"],
      ] as const) {
        await expect(ledger.connect(n2).submitValidation(taskId, false, seal)).to.be.revertedWithCustomError(ledger, error).withArgs(taskId);
      }
      expect(await ledger.hasValidated(taskId, n2.address)).to.equal(false);
    });

    it("counts later validations of a disputed task as votes: failed ones for their seal, successful ones for the executor's", async () => {
      const { ledger, nodes, taskId } = await networkHelpers.loadFixture(completedFixture);
      const [n1, n2, , n4] = nodes;
      await ledger.connect(n1).submitValidation(taskId, false, WRONG);
      await expect(ledger.connect(n2).submitValidation(taskId, false, WRONG))
        .to.emit(ledger, "DisputeVote")
        .withArgs(taskId, n2.address, WRONG, 200n, 300n);
      const tx = ledger.connect(n4).submitValidation(taskId, true, evidence("n4"));
      await expect(tx).to.emit(ledger, "DisputeVote").withArgs(taskId, n4.address, executorSeal(taskId), 500n, 500n);
      await expect(tx).to.emit(ledger, "TaskValidated").withArgs(taskId, n4.address, true, evidence("n4"), 500n);
      const dispute = await ledger.disputeOf(taskId);
      expect([dispute.status, dispute.invalidWeight, dispute.validWeight]).to.deep.equal([DisputeStatus.Open, 300n, 500n]);
      expect(await ledger.sealTallyOf(taskId, WRONG)).to.equal(300n);
      expect(await ledger.sealTallyOf(taskId, executorSeal(taskId))).to.equal(500n);
    });
  });

  describe("vote", () => {
    it("keeps the evidence of a vote to uphold (refusing one without), and none of a vote to invalidate", async () => {
      const { ledger, nodes, taskId } = await networkHelpers.loadFixture(completedFixture);
      const [n1, n2, , n4] = nodes;
      await ledger.connect(n1).submitValidation(taskId, false, WRONG);
      await ledger.connect(n2).vote(taskId, true, junk("n2"));
      expect(await ledger.okEvidenceHashFor(taskId, n2.address)).to.equal(ZERO_HASH);
      await expect(ledger.connect(n4).vote(taskId, false, ZERO_HASH))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerEmptyEvidence")
        .withArgs(taskId);
      await ledger.connect(n4).vote(taskId, false, bound(result(taskId), n4.address));
      expect(await ledger.okEvidenceHashFor(taskId, n4.address)).to.equal(bound(result(taskId), n4.address));
    });

    it("adds the voter's power to its seal (the executor's for a vote to uphold) and marks it as having validated", async () => {
      const { ledger, nodes, taskId } = await networkHelpers.loadFixture(completedFixture);
      const [n1, n2, , n4] = nodes;
      await ledger.connect(n1).submitValidation(taskId, false, WRONG);
      await expect(ledger.connect(n2).vote(taskId, true, junk("n2"))).to.emit(ledger, "DisputeVote").withArgs(taskId, n2.address, junk("n2"), 200n, 200n);
      await expect(ledger.connect(n4).vote(taskId, false, evidence("vote")))
        .to.emit(ledger, "DisputeVote")
        .withArgs(taskId, n4.address, executorSeal(taskId), 500n, 500n);
      expect(await ledger.hasValidated(taskId, n2.address)).to.equal(true);
      const dispute = await ledger.disputeOf(taskId);
      expect([dispute.invalidWeight, dispute.validWeight]).to.deep.equal([300n, 500n]);
      expect(await ledger.sealTallyOf(taskId, WRONG)).to.equal(100n);
      expect(await ledger.sealTallyOf(taskId, junk("n2"))).to.equal(200n);
      expect(await ledger.sealTallyOf(taskId, junk("nobody"))).to.equal(0n);
      // A voter has spoken: it cannot validate afterwards either.
      await expect(ledger.connect(n2).submitValidation(taskId, true, evidence("n2")))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerAlreadyValidated")
        .withArgs(taskId, n2.address);
    });

    it("is refused without an open dispute, and a vote to invalidate without a seal or with the executor's", async () => {
      const { ledger, nodes, taskId } = await networkHelpers.loadFixture(completedFixture);
      await expect(ledger.connect(nodes[0]).vote(taskId, true, WRONG))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerNoOpenDispute")
        .withArgs(taskId);
      await expect(ledger.connect(nodes[0]).vote(77n, true, WRONG))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerUnknownTask")
        .withArgs(77n);
      await expect(ledger.sealTallyOf(77n, WRONG)).to.be.revertedWithCustomError(ledger, "TaskLedgerUnknownTask").withArgs(77n);
      await ledger.connect(nodes[0]).submitValidation(taskId, false, WRONG);
      await expect(ledger.connect(nodes[1]).vote(taskId, true, ZERO_HASH))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerZeroSeal")
        .withArgs(taskId);
      // A vote to invalidate with the executor's own seal reproduced the result: it must vote to uphold.
      await expect(ledger.connect(nodes[1]).vote(taskId, true, executorSeal(taskId)))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerSealAgrees")
        .withArgs(taskId);
      expect(await ledger.hasValidated(taskId, nodes[1].address)).to.equal(false);
    });

    it("is refused to the executor, to the accuser, to a node that validated and to nodes without power", async () => {
      const { sys, ledger, nodes, taskId } = await networkHelpers.loadFixture(completedFixture);
      const [n1, n2, n3, , , n6] = nodes;
      await ledger.connect(n2).submitValidation(taskId, true, evidence("n2"));
      await ledger.connect(n1).submitValidation(taskId, false, WRONG);
      await expect(ledger.connect(n3).vote(taskId, false, evidence("vote")))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerSelfValidation")
        .withArgs(taskId);
      for (const node of [n1, n2]) {
        await expect(ledger.connect(node).vote(taskId, true, WRONG))
          .to.be.revertedWithCustomError(ledger, "TaskLedgerAlreadyValidated")
          .withArgs(taskId, node.address);
      }
      for (const account of [n6, sys.stranger]) {
        await expect(ledger.connect(account).vote(taskId, true, WRONG))
          .to.be.revertedWithCustomError(ledger, "TaskLedgerNoPower")
          .withArgs(EPOCH, account.address);
      }
    });

    it("closes at the end of the task epoch's Dispute phase for a dispute opened early", async () => {
      const { sys, ledger, nodes, taskId } = await networkHelpers.loadFixture(completedFixture);
      await ledger.connect(nodes[0]).submitValidation(taskId, false, WRONG);
      const t = await timeline(sys);
      expect(await ledger.votingEndOf(taskId)).to.equal(t.disputeEnd);
      await time.setNextBlockTimestamp(t.disputeEnd - 1n);
      await expect(ledger.connect(nodes[1]).vote(taskId, true, WRONG, MINED)).to.emit(ledger, "DisputeVote");
      await time.setNextBlockTimestamp(t.disputeEnd);
      await expect(ledger.connect(nodes[3]).vote(taskId, true, WRONG, MINED))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerValidationClosed")
        .withArgs(taskId, t.disputeEnd);
    });

    it("stays open a full Dispute window for a dispute opened late, and can invalidate after the phase", async () => {
      const { sys, ledger, nodes, taskId } = await networkHelpers.loadFixture(completedFixture);
      const t = await timeline(sys);
      const opened = t.disputeEnd - 10n;
      await time.setNextBlockTimestamp(opened);
      await ledger.connect(nodes[0]).submitValidation(taskId, false, WRONG, MINED);
      const closes = opened + EPOCH_PARAMETERS.disputeWindow;
      expect(await ledger.votingEndOf(taskId)).to.equal(closes);
      // Validations still close with the phase; votes go on.
      await time.setNextBlockTimestamp(t.disputeEnd);
      await expect(ledger.connect(nodes[1]).submitValidation(taskId, false, WRONG, MINED))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerValidationClosed")
        .withArgs(taskId, t.disputeEnd);
      await expect(ledger.connect(sys.stranger).resolveDispute(taskId, MINED))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerDisputeUndecided")
        .withArgs(taskId, closes);
      await time.setNextBlockTimestamp(closes - 2n);
      await expect(ledger.connect(nodes[3]).vote(taskId, true, WRONG, MINED)).to.emit(ledger, "DisputeVote");
      await time.setNextBlockTimestamp(closes - 1n);
      await expect(ledger.connect(nodes[4]).vote(taskId, true, WRONG, MINED))
        .to.emit(ledger, "DisputeResolved")
        .withArgs(taskId, DisputeStatus.Invalidated, WRONG, 1100n, 0n, (CPU_STAKE * EXECUTOR_SLASH_BPS) / BPS, (CPU_STAKE * EXECUTOR_SLASH_BPS * ACCUSER_REWARD_BPS) / BPS / BPS);
      expect((await ledger.taskOf(taskId)).status).to.equal(TaskStatus.Invalidated);
      await expect(ledger.votingEndOf(taskId)).to.be.revertedWithCustomError(ledger, "TaskLedgerNoOpenDispute").withArgs(taskId);
    });

    it("closes at the end of the Claim phase at the latest", async () => {
      const { sys, ledger, nodes, taskId } = await networkHelpers.loadFixture(shortClaimFixture);
      const t = await timeline(sys);
      expect(t.claimEnd - t.disputeEnd).to.equal(3600n);
      await time.setNextBlockTimestamp(t.disputeEnd - 1n);
      await ledger.connect(nodes[0]).submitValidation(taskId, false, WRONG, MINED);
      expect(await ledger.votingEndOf(taskId)).to.equal(t.claimEnd);
      await time.setNextBlockTimestamp(t.claimEnd - 1n);
      await expect(ledger.connect(nodes[1]).vote(taskId, true, WRONG, MINED)).to.emit(ledger, "DisputeVote");
      await time.setNextBlockTimestamp(t.claimEnd);
      await expect(ledger.connect(nodes[3]).vote(taskId, true, WRONG, MINED))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerValidationClosed")
        .withArgs(taskId, t.claimEnd);
      await expect(ledger.connect(sys.stranger).resolveDispute(taskId)).to.emit(ledger, "DisputeResolved");
    });

    it("is not known for tasks without an open dispute", async () => {
      const { ledger, taskId } = await networkHelpers.loadFixture(completedFixture);
      await expect(ledger.votingEndOf(taskId)).to.be.revertedWithCustomError(ledger, "TaskLedgerNoOpenDispute").withArgs(taskId);
      await expect(ledger.votingEndOf(99n)).to.be.revertedWithCustomError(ledger, "TaskLedgerUnknownTask").withArgs(99n);
    });
  });

  describe("disputes decided by power per seal", () => {
    const EXECUTOR_SLASH = (CPU_STAKE * EXECUTOR_SLASH_BPS) / BPS; // 20 tokens
    const BOUNTY = (EXECUTOR_SLASH * ACCUSER_REWARD_BPS) / BPS; // 10 tokens
    const ACCUSER_SLASH = (CPU_STAKE * FALSE_ACCUSER_SLASH_BPS) / BPS; // 5 tokens

    it("count only the power that may vote: the executor's is left out", async () => {
      // n3 (500 of 1800) executed the task; 1300 may vote. 700 is more than half of 1300, not of 1800.
      const invalidate = await networkHelpers.loadFixture(completedFixture);
      const [, n2, , n4] = invalidate.nodes;
      await invalidate.ledger.connect(n4).submitValidation(invalidate.taskId, false, WRONG);
      await expect(invalidate.ledger.connect(n2).vote(invalidate.taskId, true, WRONG))
        .to.emit(invalidate.ledger, "DisputeResolved")
        .withArgs(invalidate.taskId, DisputeStatus.Invalidated, WRONG, 700n, 0n, EXECUTOR_SLASH, BOUNTY);

      // 650 of 1300 is half the voting power: enough to uphold (not of 1800).
      const uphold = await networkHelpers.loadFixture(completedFixture);
      const [m1, m2, , , m5] = uphold.nodes;
      await uphold.ledger.connect(m1).submitValidation(uphold.taskId, false, WRONG);
      await uphold.ledger.connect(m5).vote(uphold.taskId, false, evidence("vote"));
      expect((await uphold.ledger.disputeOf(uphold.taskId)).status).to.equal(DisputeStatus.Open); // 500 for the executor
      await expect(uphold.ledger.connect(m2).vote(uphold.taskId, false, evidence("vote")))
        .to.emit(uphold.ledger, "DisputeResolved")
        .withArgs(uphold.taskId, DisputeStatus.Upheld, executorSeal(uphold.taskId), 100n, 700n, ACCUSER_SLASH, 0n);
    });

    it("invalidate the task once the accuser's seal holds more than half the power, and pay the accuser", async () => {
      const { sys, ledger, runB, nodes, taskId } = await networkHelpers.loadFixture(completedFixture);
      const [, , n3, n4, n5] = nodes;
      const [, p2] = sys.providers;
      const vault = await sys.rewardVault.getAddress();
      const escrowBefore = await balancedEscrow(sys, runB);
      const p2Before = await sys.token.balanceOf(p2.address);
      const vaultBefore = await sys.token.balanceOf(vault);

      await ledger.connect(n4).submitValidation(taskId, false, WRONG); // 500 of 1300 voting: not yet
      expect((await ledger.disputeOf(taskId)).status).to.equal(DisputeStatus.Open);
      const tx = ledger.connect(n5).vote(taskId, true, WRONG); // 1000 of 1300: more than half
      await expect(tx).to.emit(ledger, "DisputeVote").withArgs(taskId, n5.address, WRONG, 500n, 1000n);
      await expect(tx).to.emit(ledger, "DisputeResolved").withArgs(taskId, DisputeStatus.Invalidated, WRONG, 1000n, 0n, EXECUTOR_SLASH, BOUNTY);
      await expect(tx)
        .to.emit(sys.registry, "Slashed")
        .withArgs(n3.address, await ledger.getAddress(), EXECUTOR_SLASH, 0n, INVALID_TASK, vault);
      await expect(tx).to.emit(sys.rewardVault, "BountyPaid").withArgs(p2.address, BOUNTY, BOUNTY);
      await expect(tx).to.emit(sys.trainingRuns, "EscrowReleased").withArgs(runB, 6n * TOKEN, false);

      expect((await ledger.taskOf(taskId)).status).to.equal(TaskStatus.Invalidated);
      expect((await ledger.disputeOf(taskId)).status).to.equal(DisputeStatus.Invalidated);
      expect((await sys.registry.getNode(n3.address)).stake).to.equal(CPU_STAKE - EXECUTOR_SLASH);
      expect((await sys.registry.getNode(n4.address)).stake).to.equal(CPU_STAKE);
      expect(await sys.token.balanceOf(p2.address)).to.equal(p2Before + BOUNTY);
      expect(await sys.token.balanceOf(vault)).to.equal(vaultBefore + EXECUTOR_SLASH - BOUNTY);
      // The executor's credit for the task is gone and the buyer's escrow is free again.
      expect((await ledger.workOf(EPOCH, n3.address)).amounts).to.deep.equal([0n, 0n]);
      const escrowAfter = await balancedEscrow(sys, runB);
      expect(escrowBefore.reserved - escrowAfter.reserved).to.equal(6n * TOKEN);
      expect(escrowAfter.available - escrowBefore.available).to.equal(6n * TOKEN);
      expect(await ledger.openDisputesOf(EPOCH, n3.address)).to.equal(0n);
      expect(await ledger.openDisputesOf(EPOCH, n4.address)).to.equal(0n);

      // An invalidated task takes no validation and no vote any more.
      await expect(ledger.connect(nodes[0]).submitValidation(taskId, true, evidence("n1")))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerInvalidStatus")
        .withArgs(taskId, TaskStatus.Invalidated);
      await expect(ledger.connect(nodes[0]).vote(taskId, false, evidence("vote")))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerNoOpenDispute")
        .withArgs(taskId);
      await expect(ledger.resolveDispute(taskId))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerNoOpenDispute")
        .withArgs(taskId);
      expect(await ledger.isValidationDuty(taskId, nodes[0].address, ethers.id("any"))).to.equal(false);
    });

    it("invalidate a wrong executor without bounty when honest voters outvote a garbage accuser seal", async () => {
      // A buyer's accuser colluding with a wrong executor posts a garbage seal to split the vote: the honest
      // voters, who all reproduce the true result, still win a majority on its seal.
      const { sys, ledger, nodes, taskId } = await networkHelpers.loadFixture(completedFixture);
      const [n1, n2, n3, n4, n5] = nodes;
      const truth = sealOf(ethers.id("the true result"));
      await ledger.connect(n1).submitValidation(taskId, false, junk("colluding accuser"));
      await ledger.connect(n4).vote(taskId, true, truth);
      await ledger.connect(n2).vote(taskId, true, truth); // 700 on the truth, 100 on the garbage: more than half of 1300
      const events = await ledger.queryFilter(ledger.filters.DisputeResolved(taskId));
      expect(events).to.have.length(1);
      expect(events[0].args.outcome).to.equal(BigInt(DisputeStatus.Invalidated));
      expect(events[0].args.seal).to.equal(truth);
      expect([events[0].args.invalidWeight, events[0].args.validWeight]).to.deep.equal([800n, 0n]);
      expect([events[0].args.slashed, events[0].args.reward]).to.deep.equal([EXECUTOR_SLASH, 0n]);
      expect((await ledger.taskOf(taskId)).status).to.equal(TaskStatus.Invalidated);
      expect((await sys.registry.getNode(n3.address)).stake).to.equal(CPU_STAKE - EXECUTOR_SLASH);
      // The accuser was right that the executor was wrong: not slashed, but not paid either.
      expect((await sys.registry.getNode(n1.address)).stake).to.equal(CPU_STAKE);
      const bounties = await sys.rewardVault.queryFilter(sys.rewardVault.filters.BountyPaid());
      expect(bounties).to.have.length(0);
      expect(await ledger.openDisputesOf(EPOCH, n1.address)).to.equal(0n);
      expect(await ledger.openDisputesOf(EPOCH, n3.address)).to.equal(0n);
      await expect(ledger.connect(n5).vote(taskId, true, truth)).to.be.revertedWithCustomError(ledger, "TaskLedgerNoOpenDispute");
    });

    it("need more than half to invalidate and exactly half to uphold", async () => {
      // Powers 100, 200, 500 (executor), 400, 500: 1200 may vote, half is 600.
      const invalidate = await networkHelpers.loadFixture(halfFixture);
      const [n1, n2, , n4, n5] = invalidate.nodes;
      await invalidate.ledger.connect(n2).submitValidation(invalidate.taskId, false, WRONG);
      await expect(invalidate.ledger.connect(n4).vote(invalidate.taskId, true, WRONG)).to.not.emit(invalidate.ledger, "DisputeResolved");
      expect(await invalidate.ledger.sealTallyOf(invalidate.taskId, WRONG)).to.equal(600n); // exactly half: not yet
      expect((await invalidate.ledger.disputeOf(invalidate.taskId)).status).to.equal(DisputeStatus.Open);
      await expect(invalidate.ledger.connect(n1).vote(invalidate.taskId, true, WRONG))
        .to.emit(invalidate.ledger, "DisputeResolved")
        .withArgs(invalidate.taskId, DisputeStatus.Invalidated, WRONG, 700n, 0n, EXECUTOR_SLASH, BOUNTY);

      const uphold = await networkHelpers.loadFixture(halfFixture);
      const [m1, m2, , , m5] = uphold.nodes;
      const seal = executorSeal(uphold.taskId);
      await uphold.ledger.connect(m2).submitValidation(uphold.taskId, false, WRONG);
      await expect(uphold.ledger.connect(m5).vote(uphold.taskId, false, evidence("vote"))).to.not.emit(uphold.ledger, "DisputeResolved");
      await expect(uphold.ledger.connect(m1).vote(uphold.taskId, false, evidence("vote"))) // 600: exactly half upholds
        .to.emit(uphold.ledger, "DisputeResolved")
        .withArgs(uphold.taskId, DisputeStatus.Upheld, seal, 200n, 600n, ACCUSER_SLASH, 0n);
    });

    it("uphold the task once the executor's seal holds at least half the power, and slash the false accuser", async () => {
      const { sys, ledger, nodes, taskId } = await networkHelpers.loadFixture(completedFixture);
      const [n1, , n3, n4, n5] = nodes;
      await ledger.connect(n1).submitValidation(taskId, false, WRONG);
      await ledger.connect(n4).vote(taskId, false, evidence("vote")); // 500
      const tx = ledger.connect(n5).submitValidation(taskId, true, evidence("n5")); // 1000 >= 650
      await expect(tx)
        .to.emit(ledger, "DisputeResolved")
        .withArgs(taskId, DisputeStatus.Upheld, executorSeal(taskId), 100n, 1000n, ACCUSER_SLASH, 0n);
      await expect(tx)
        .to.emit(sys.registry, "Slashed")
        .withArgs(n1.address, await ledger.getAddress(), ACCUSER_SLASH, 0n, FALSE_ACCUSATION, await sys.rewardVault.getAddress());
      await expect(tx).to.not.emit(sys.rewardVault, "BountyPaid");
      expect((await ledger.disputeOf(taskId)).status).to.equal(DisputeStatus.Upheld);
      expect((await ledger.taskOf(taskId)).status).to.equal(TaskStatus.Completed);
      expect((await sys.registry.getNode(n1.address)).stake).to.equal(CPU_STAKE - ACCUSER_SLASH);
      expect((await sys.registry.getNode(n3.address)).stake).to.equal(CPU_STAKE);
      expect((await ledger.workOf(EPOCH, n3.address)).amounts).to.deep.equal([0n, 6n * TOKEN]);
      expect(await ledger.openDisputesOf(EPOCH, n1.address)).to.equal(0n);
      expect(await ledger.openDisputesOf(EPOCH, n3.address)).to.equal(0n);

      // An upheld dispute is final: later validations are recorded (duties) but change nothing.
      const late = ledger.connect(nodes[1]).submitValidation(taskId, false, WRONG);
      await expect(late).to.emit(ledger, "TaskValidated").withArgs(taskId, nodes[1].address, false, WRONG, 200n);
      await expect(late).to.not.emit(ledger, "DisputeVote");
      await expect(late).to.not.emit(ledger, "DisputeOpened");
      const dispute = await ledger.disputeOf(taskId);
      expect([dispute.status, dispute.invalidWeight, dispute.validWeight]).to.deep.equal([DisputeStatus.Upheld, 100n, 1000n]);
      await expect(ledger.connect(nodes[1]).vote(taskId, true, WRONG)).to.be.revertedWithCustomError(ledger, "TaskLedgerNoOpenDispute");
    });

    it("count validations made before the dispute opened for the executor's seal", async () => {
      const { ledger, nodes, taskId } = await networkHelpers.loadFixture(completedFixture);
      const [n1, n2, , n4, n5] = nodes;
      await ledger.connect(n4).submitValidation(taskId, true, evidence("n4")); // 500 before any dispute
      await ledger.connect(n1).submitValidation(taskId, false, WRONG);
      expect((await ledger.disputeOf(taskId)).validWeight).to.equal(500n);
      expect(await ledger.sealTallyOf(taskId, executorSeal(taskId))).to.equal(500n);
      await expect(ledger.connect(n4).vote(taskId, false, evidence("vote")))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerAlreadyValidated")
        .withArgs(taskId, n4.address);
      await ledger.connect(n2).vote(taskId, true, WRONG); // 300 against
      await expect(ledger.connect(n5).vote(taskId, false, evidence("vote")))
        .to.emit(ledger, "DisputeResolved")
        .withArgs(taskId, DisputeStatus.Upheld, executorSeal(taskId), 300n, 1000n, ACCUSER_SLASH, 0n);
    });

    it("are upheld at once when the task already holds half the power when the dispute opens", async () => {
      const { ledger, nodes, taskId } = await networkHelpers.loadFixture(completedFixture);
      const [n1, , , n4, n5] = nodes;
      await ledger.connect(n4).submitValidation(taskId, true, evidence("n4"));
      await ledger.connect(n5).submitValidation(taskId, true, evidence("n5"));
      const tx = ledger.connect(n1).submitValidation(taskId, false, WRONG);
      await expect(tx).to.emit(ledger, "DisputeOpened").withArgs(taskId, n1.address, WRONG, 100n);
      await expect(tx)
        .to.emit(ledger, "DisputeResolved")
        .withArgs(taskId, DisputeStatus.Upheld, executorSeal(taskId), 100n, 1000n, ACCUSER_SLASH, 0n);
      expect(await ledger.openDisputesOf(EPOCH, n1.address)).to.equal(0n);
    });

    it("slash what is unbonding too, and pay no bounty to an accuser that is no longer registered", async () => {
      const ctx = await networkHelpers.loadFixture(completedFixture);
      const { sys, ledger, nodes, taskId } = ctx;
      const [p1, p2] = sys.providers;
      const [, , n3, n4, n5] = nodes;
      // The executor moves half of a doubled stake to unbonding: the penalty still counts it.
      await sys.registry.connect(p1).stake(n3.address, CPU_STAKE);
      await sys.registry.connect(p1).unstake(n3.address, CPU_STAKE);
      // The accuser leaves its runs and deregisters; its power in epoch 1 remains.
      for (const runId of await sys.trainingRuns.runsOf(n4.address)) await sys.trainingRuns.connect(n4).leaveRun(runId, n4.address);
      await sys.registry.connect(p2).deregisterNode(n4.address);
      expect(await sys.registry.providerOf(n4.address)).to.equal(ethers.ZeroAddress);

      await ledger.connect(n4).submitValidation(taskId, false, WRONG);
      const slashed = (2n * CPU_STAKE * EXECUTOR_SLASH_BPS) / BPS; // 40 tokens, all from the active stake
      const tx = ledger.connect(n5).vote(taskId, true, WRONG);
      await expect(tx).to.emit(ledger, "DisputeResolved").withArgs(taskId, DisputeStatus.Invalidated, WRONG, 1000n, 0n, slashed, 0n);
      await expect(tx).to.not.emit(sys.rewardVault, "BountyPaid");
      expect((await sys.registry.getNode(n3.address)).stake).to.equal(CPU_STAKE - slashed);
    });

    it("slash a false accuser that deregistered from its unbonding stake", async () => {
      const ctx = await networkHelpers.loadFixture(completedFixture);
      const { sys, ledger, nodes, taskId } = ctx;
      const [p1] = sys.providers;
      const [n1, , , n4, n5] = nodes;
      for (const runId of await sys.trainingRuns.runsOf(n1.address)) await sys.trainingRuns.connect(n1).leaveRun(runId, n1.address);
      await sys.registry.connect(p1).deregisterNode(n1.address);
      await ledger.connect(n1).submitValidation(taskId, false, WRONG);
      await ledger.connect(n4).vote(taskId, false, evidence("vote"));
      const tx = ledger.connect(n5).vote(taskId, false, evidence("vote"));
      await expect(tx)
        .to.emit(ledger, "DisputeResolved")
        .withArgs(taskId, DisputeStatus.Upheld, executorSeal(taskId), 100n, 1000n, ACCUSER_SLASH, 0n);
      await expect(tx)
        .to.emit(sys.registry, "Slashed")
        .withArgs(n1.address, await ledger.getAddress(), 0n, ACCUSER_SLASH, FALSE_ACCUSATION, await sys.rewardVault.getAddress());
      expect((await sys.registry.unbondingOf(n1.address))[0].amount).to.equal(CPU_STAKE - ACCUSER_SLASH);
    });

    it("slash nothing and pay nothing when the ledger's shares are zero", async () => {
      const ctx = await networkHelpers.loadFixture(enrolledFixture);
      const { sys, nodes } = ctx;
      const ledger = await deployLedger(ctx, {
        validationKBps: K_BPS,
        executorSlashBps: 0n,
        falseAccuserSlashBps: 0n,
        accuserRewardBps: ACCUSER_REWARD_BPS,
        falseValidationSlashBps: 0n,
      });
      await ledger.enroll(ctx.runB, nodes[2].address);
      await ledger.connect(sys.master).createTask(ctx.runB, spec(1), 1n);
      await ledger.connect(sys.master).createTask(ctx.runB, spec(2), 1n);
      await ledger.connect(nodes[2]).completeTask(1n, sealOf(result(1)));
      await ledger.connect(nodes[2]).completeTask(2n, sealOf(result(2)));
      await ledger.connect(nodes[3]).submitValidation(1n, false, WRONG);
      const invalidated = ledger.connect(nodes[4]).vote(1n, true, WRONG);
      await expect(invalidated).to.emit(ledger, "DisputeResolved").withArgs(1n, DisputeStatus.Invalidated, WRONG, 1000n, 0n, 0n, 0n);
      await expect(invalidated).to.not.emit(sys.registry, "Slashed");
      await ledger.connect(nodes[0]).submitValidation(2n, false, WRONG);
      await ledger.connect(nodes[3]).vote(2n, false, evidence("vote"));
      await expect(ledger.connect(nodes[4]).vote(2n, false, evidence("vote")))
        .to.emit(ledger, "DisputeResolved")
        .withArgs(2n, DisputeStatus.Upheld, executorSeal(2n), 100n, 1000n, 0n, 0n);
    });
  });

  describe("resolveDispute", () => {
    it("ends a non-deterministic task's dispute Unresolved: every seal differs, nobody is slashed, the executor is paid", async () => {
      // Every re-execution of a task that reads random bytes, the time or the hostname seals a different
      // result: no seal can win, so the dispute ends Unresolved once its voting is over.
      const { sys, ledger, runB, nodes, settler, taskId } = await networkHelpers.loadFixture(completedFixture);
      const [n1, n2, n3, n4, n5] = nodes;
      await ledger.connect(n1).submitValidation(taskId, false, junk("n1 run"));
      await ledger.connect(n2).submitValidation(taskId, false, junk("n2 run"));
      await ledger.connect(n4).vote(taskId, true, junk("n4 run"));
      await ledger.connect(n5).vote(taskId, true, junk("n5 run"));
      const dispute = await ledger.disputeOf(taskId);
      expect([dispute.status, dispute.invalidWeight, dispute.validWeight]).to.deep.equal([DisputeStatus.Open, 1300n, 0n]);
      const t = await timeline(sys);
      await time.setNextBlockTimestamp(t.disputeEnd - 1n);
      await expect(ledger.connect(sys.stranger).resolveDispute(taskId, MINED))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerDisputeUndecided")
        .withArgs(taskId, t.disputeEnd);
      await time.setNextBlockTimestamp(t.disputeEnd);
      const tx = ledger.connect(sys.stranger).resolveDispute(taskId, MINED);
      await expect(tx).to.emit(ledger, "DisputeResolved").withArgs(taskId, DisputeStatus.Unresolved, ZERO_HASH, 1300n, 0n, 0n, 0n);
      await expect(tx).to.not.emit(sys.registry, "Slashed");
      await expect(tx).to.not.emit(sys.rewardVault, "BountyPaid");
      expect((await ledger.disputeOf(taskId)).status).to.equal(DisputeStatus.Unresolved);
      expect((await ledger.taskOf(taskId)).status).to.equal(TaskStatus.Completed);
      for (const node of [n1, n3]) {
        expect(await ledger.openDisputesOf(EPOCH, node.address)).to.equal(0n);
        expect((await sys.registry.getNode(node.address)).stake).to.equal(CPU_STAKE);
      }
      await expect(ledger.resolveDispute(taskId)).to.be.revertedWithCustomError(ledger, "TaskLedgerNoOpenDispute").withArgs(taskId);
      await expect(ledger.connect(n1).vote(taskId, true, junk("again"))).to.be.revertedWithCustomError(ledger, "TaskLedgerNoOpenDispute");
      // The executor keeps its pay: its claim pays the task's work.
      await goToPhase(connection, sys, EPOCH, EpochPhase.Claim);
      await expect(ledger.connect(settler).settleWork(EPOCH, n3.address, sys.providers[0].address, 1))
        .to.emit(ledger, "WorkPaid")
        .withArgs(EPOCH, n3.address, runB, sys.providers[0].address, 6n * TOKEN);
    });

    it("ends Unresolved when too little power voted: a lone false accuser is not slashed", async () => {
      const { sys, ledger, nodes, taskId } = await networkHelpers.loadFixture(completedFixture);
      const [n1, n2, , n4] = nodes;
      await ledger.connect(n1).submitValidation(taskId, false, WRONG);
      await ledger.connect(n2).vote(taskId, true, WRONG); // 300 against
      await ledger.connect(n4).vote(taskId, false, evidence("vote")); // 500 for: the most, but not half
      await goToPhase(connection, sys, EPOCH, EpochPhase.Claim);
      await expect(ledger.connect(sys.stranger).resolveDispute(taskId))
        .to.emit(ledger, "DisputeResolved")
        .withArgs(taskId, DisputeStatus.Unresolved, ZERO_HASH, 300n, 500n, 0n, 0n);
      expect((await sys.registry.getNode(n1.address)).stake).to.equal(CPU_STAKE);
    });

    it("is refused without a dispute and for unknown tasks", async () => {
      const { ledger, taskId } = await networkHelpers.loadFixture(completedFixture);
      await expect(ledger.resolveDispute(taskId)).to.be.revertedWithCustomError(ledger, "TaskLedgerNoOpenDispute").withArgs(taskId);
      await expect(ledger.resolveDispute(0n)).to.be.revertedWithCustomError(ledger, "TaskLedgerUnknownTask").withArgs(0n);
      await expect(ledger.disputeOf(0n)).to.be.revertedWithCustomError(ledger, "TaskLedgerUnknownTask").withArgs(0n);
      await expect(ledger.taskOf(0n)).to.be.revertedWithCustomError(ledger, "TaskLedgerUnknownTask").withArgs(0n);
    });
  });

  describe("refuteFalseValidation", () => {
    /** completedFixture, then n1 validates ok with evidence it made up, n2 with the bound evidence. */
    async function falselyValidatedFixture() {
      const ctx = await completedFixture();
      const [n1, n2] = ctx.nodes;
      await ctx.ledger.connect(n1).submitValidation(ctx.taskId, true, evidence("copied the seal"));
      await ctx.ledger.connect(n2).submitValidation(ctx.taskId, true, bound(result(ctx.taskId), n2.address));
      return ctx;
    }

    it("slashes a validator whose evidence is not bound to the result, pays the reporter's provider, forgets the evidence", async () => {
      const { sys, ledger, nodes, taskId } = await networkHelpers.loadFixture(falselyValidatedFixture);
      const [n1, , n3] = nodes;
      const [p1] = sys.providers;
      const vault = await sys.rewardVault.getAddress();
      await time.increaseTo((await timeline(sys)).disputeEnd);
      const p1Before = await sys.token.balanceOf(p1.address);
      const vaultBefore = await sys.token.balanceOf(vault);
      const supplyBefore = await sys.token.totalSupply();
      const slashed = (CPU_STAKE * FALSE_VALIDATION_SLASH_BPS) / BPS; // 10 tokens
      const bounty = (slashed * ACCUSER_REWARD_BPS) / BPS; // 5 tokens
      const tx = ledger.connect(n3).refuteFalseValidation(taskId, n1.address, result(taskId));
      await expect(tx).to.emit(ledger, "FalseValidationRefuted").withArgs(taskId, n1.address, n3.address, slashed, bounty);
      await expect(tx)
        .to.emit(sys.registry, "Slashed")
        .withArgs(n1.address, await ledger.getAddress(), slashed, 0n, INVALID_EVIDENCE, vault);
      await expect(tx).to.emit(sys.rewardVault, "BountyPaid").withArgs(p1.address, bounty, bounty);
      expect((await sys.registry.getNode(n1.address)).stake).to.equal(CPU_STAKE - slashed);
      expect(await sys.token.balanceOf(p1.address)).to.equal(p1Before + bounty);
      expect(await sys.token.balanceOf(vault)).to.equal(vaultBefore + slashed - bounty);
      expect(await sys.token.totalSupply()).to.equal(supplyBefore);
      expect(await ledger.okEvidenceHashFor(taskId, n1.address)).to.equal(ZERO_HASH);
      // The validation itself stands (the duty bit), and the task and its pay are untouched.
      expect(await ledger.hasValidated(taskId, n1.address)).to.equal(true);
      expect((await ledger.taskOf(taskId)).status).to.equal(TaskStatus.Completed);
      expect((await ledger.workOf(EPOCH, n3.address)).amounts).to.deep.equal([0n, 6n * TOKEN]);
      // One report per validation.
      await expect(ledger.connect(n3).refuteFalseValidation(taskId, n1.address, result(taskId)))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerNoValidation")
        .withArgs(taskId, n1.address);
    });

    it("waits until the task's dispute is no longer open (Unresolved), then refutes a vote to uphold that was not bound", async () => {
      const { sys, ledger, nodes, taskId } = await networkHelpers.loadFixture(completedFixture);
      const [n1, , n3, n4] = nodes;
      await ledger.connect(n1).submitValidation(taskId, false, junk("n1"));
      await ledger.connect(n4).vote(taskId, false, evidence("copied the seal")); // 500 of 1300: undecided
      await time.increaseTo((await timeline(sys)).disputeEnd);
      expect((await ledger.disputeOf(taskId)).status).to.equal(DisputeStatus.Open);
      await expect(ledger.connect(n3).refuteFalseValidation(taskId, n4.address, result(taskId)))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerDisputeOpen")
        .withArgs(taskId);
      await ledger.resolveDispute(taskId); // no seal won a majority: Unresolved, closed like an upheld dispute
      expect((await ledger.disputeOf(taskId)).status).to.equal(DisputeStatus.Unresolved);
      const slashed = (CPU_STAKE * FALSE_VALIDATION_SLASH_BPS) / BPS;
      await expect(ledger.connect(n3).refuteFalseValidation(taskId, n4.address, result(taskId)))
        .to.emit(ledger, "FalseValidationRefuted")
        .withArgs(taskId, n4.address, n3.address, slashed, (slashed * ACCUSER_REWARD_BPS) / BPS);
      expect((await sys.registry.getNode(n4.address)).stake).to.equal(CPU_STAKE - slashed);
    });

    it("is refused for evidence bound to the result", async () => {
      const { sys, ledger, nodes, taskId } = await networkHelpers.loadFixture(falselyValidatedFixture);
      await time.increaseTo((await timeline(sys)).disputeEnd);
      await expect(ledger.connect(nodes[2]).refuteFalseValidation(taskId, nodes[1].address, result(taskId)))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerValidationGenuine")
        .withArgs(taskId, nodes[1].address);
      expect(await ledger.okEvidenceHashFor(taskId, nodes[1].address)).to.equal(bound(result(taskId), nodes[1].address));
    });

    it("is refused for a result hash that is not the preimage of the seal (the seal itself included)", async () => {
      const { sys, ledger, nodes, taskId } = await networkHelpers.loadFixture(falselyValidatedFixture);
      await time.increaseTo((await timeline(sys)).disputeEnd);
      for (const guess of [result(taskId + 1n), sealOf(result(taskId))]) {
        await expect(ledger.connect(nodes[2]).refuteFalseValidation(taskId, nodes[0].address, guess))
          .to.be.revertedWithCustomError(ledger, "TaskLedgerSealMismatch")
          .withArgs(taskId);
      }
    });

    it("is refused for nodes without a successful validation: none, or a failed one", async () => {
      const { sys, ledger, nodes, taskId } = await networkHelpers.loadFixture(falselyValidatedFixture);
      const [, , n3, n4, n5] = nodes;
      await ledger.connect(n5).submitValidation(taskId, false, junk("n5"));
      await time.increaseTo((await timeline(sys)).disputeEnd);
      await ledger.resolveDispute(taskId); // n5's dispute: Unresolved once its votes are over
      for (const validator of [n4, n5, sys.stranger]) {
        await expect(ledger.connect(n3).refuteFalseValidation(taskId, validator.address, result(taskId)))
          .to.be.revertedWithCustomError(ledger, "TaskLedgerNoValidation")
          .withArgs(taskId, validator.address);
      }
    });

    it("opens when the Dispute phase ends and closes when the Claim phase ends", async () => {
      const { sys, ledger, nodes, taskId } = await networkHelpers.loadFixture(falselyValidatedFixture);
      const [n1, , n3, n4] = nodes;
      await ledger.connect(n4).submitValidation(taskId, true, evidence("n4 copied too"));
      const t = await timeline(sys);
      await time.setNextBlockTimestamp(t.disputeEnd - 1n);
      await expect(ledger.connect(n3).refuteFalseValidation(taskId, n1.address, result(taskId), MINED))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerReportClosed")
        .withArgs(taskId, t.disputeEnd, t.claimEnd);
      await time.setNextBlockTimestamp(t.disputeEnd);
      await expect(ledger.connect(n3).refuteFalseValidation(taskId, n1.address, result(taskId), MINED)).to.emit(
        ledger,
        "FalseValidationRefuted",
      );
      await time.setNextBlockTimestamp(t.claimEnd);
      await expect(ledger.connect(n3).refuteFalseValidation(taskId, n4.address, result(taskId), MINED))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerReportClosed")
        .withArgs(taskId, t.disputeEnd, t.claimEnd);
      expect(await ledger.okEvidenceHashFor(taskId, n4.address)).to.equal(evidence("n4 copied too"));
    });

    it("is refused for tasks not Completed (assigned, invalidated) and unknown tasks", async () => {
      const ctx = await networkHelpers.loadFixture(falselyValidatedFixture);
      const { sys, ledger, nodes, taskId } = ctx;
      const [n1, , n3, n4, n5] = nodes;
      const assigned = await newTask(ctx, ctx.runB);
      // A second task, validated ok falsely by n1 and then invalidated by n4 and n5.
      const invalid = await newTask(ctx, ctx.runB);
      await ledger.connect(n3).completeTask(invalid.taskId, sealOf(result(invalid.taskId)));
      await ledger.connect(n1).submitValidation(invalid.taskId, true, evidence("copied"));
      await ledger.connect(n4).submitValidation(invalid.taskId, false, WRONG);
      await ledger.connect(n5).vote(invalid.taskId, true, WRONG);
      expect((await ledger.taskOf(invalid.taskId)).status).to.equal(TaskStatus.Invalidated);
      await time.increaseTo((await timeline(sys)).disputeEnd);
      for (const [id, status] of [
        [assigned.taskId, TaskStatus.Assigned],
        [invalid.taskId, TaskStatus.Invalidated],
      ] as const) {
        await expect(ledger.connect(n3).refuteFalseValidation(id, n1.address, result(id)))
          .to.be.revertedWithCustomError(ledger, "TaskLedgerInvalidStatus")
          .withArgs(id, status);
      }
      await expect(ledger.connect(n3).refuteFalseValidation(99n, n1.address, result(99n)))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerUnknownTask")
        .withArgs(99n);
      expect(await ledger.okEvidenceHashFor(taskId, n1.address)).to.equal(evidence("copied the seal"));
    });

    it("pays no bounty to a reporter that is not a registered node, and slashes a deregistered validator's unbonding stake", async () => {
      const { sys, ledger, nodes, taskId } = await networkHelpers.loadFixture(falselyValidatedFixture);
      const [p1] = sys.providers;
      const n1 = nodes[0];
      for (const runId of await sys.trainingRuns.runsOf(n1.address)) await sys.trainingRuns.connect(n1).leaveRun(runId, n1.address);
      await sys.registry.connect(p1).deregisterNode(n1.address);
      await time.increaseTo((await timeline(sys)).disputeEnd);
      const slashed = (CPU_STAKE * FALSE_VALIDATION_SLASH_BPS) / BPS;
      const tx = ledger.connect(sys.stranger).refuteFalseValidation(taskId, n1.address, result(taskId));
      await expect(tx).to.emit(ledger, "FalseValidationRefuted").withArgs(taskId, n1.address, sys.stranger.address, slashed, 0n);
      await expect(tx)
        .to.emit(sys.registry, "Slashed")
        .withArgs(n1.address, await ledger.getAddress(), 0n, slashed, INVALID_EVIDENCE, await sys.rewardVault.getAddress());
      await expect(tx).to.not.emit(sys.rewardVault, "BountyPaid");
      expect((await sys.registry.unbondingOf(n1.address))[0].amount).to.equal(CPU_STAKE - slashed);
    });

    it("slashes nothing when falseValidationSlashBps is zero, and still forgets the evidence", async () => {
      const ctx = await networkHelpers.loadFixture(enrolledFixture);
      const { sys, nodes } = ctx;
      const ledger = await deployLedger(ctx, { ...DEFAULT_PARAMS, falseValidationSlashBps: 0n });
      await ledger.enroll(ctx.runB, nodes[2].address);
      await ledger.connect(sys.master).createTask(ctx.runB, spec(1), 1n);
      await ledger.connect(nodes[2]).completeTask(1n, sealOf(result(1)));
      await ledger.connect(nodes[0]).submitValidation(1n, true, evidence("copied"));
      await time.increaseTo((await timeline(sys)).disputeEnd);
      const tx = ledger.connect(nodes[2]).refuteFalseValidation(1n, nodes[0].address, result(1));
      await expect(tx).to.emit(ledger, "FalseValidationRefuted").withArgs(1n, nodes[0].address, nodes[2].address, 0n, 0n);
      await expect(tx).to.not.emit(sys.registry, "Slashed");
      expect(await ledger.okEvidenceHashFor(1n, nodes[0].address)).to.equal(ZERO_HASH);
    });
  });

  describe("isValidationDuty", () => {
    it("follows H(seed, salt, t) < k · p_v / (T − p_x) over many seeds, with the epoch's salt", async function () {
      this.timeout(120_000);
      const { ledger, nodes, taskId } = await networkHelpers.loadFixture(completedFixture);
      const { dutySalt } = await saltOf(ledger);
      const SEEDS = 400;
      for (const [i, validator] of [nodes[0], nodes[3]].entries()) {
        const power = i === 0 ? 100n : 500n;
        const probability = Number(K_BPS * power) / Number((TOTAL_POWER - 500n) * BPS);
        let duties = 0;
        let unsaltedAgrees = 0;
        for (let s = 0; s < SEEDS; s++) {
          const seed = ethers.id(`seed ${validator.address} ${s}`);
          const duty = await ledger.isValidationDuty(taskId, validator.address, seed);
          expect(duty, `seed ${s}`).to.equal(expectedDuty(seed, dutySalt, taskId, K_BPS, power, TOTAL_POWER, 500n));
          // The keepers' hash (keepers/shared/duty.ts) is the interface's.
          expect(dutyHash(dutyKey(seed, dutySalt), taskId)).to.equal(saltedDutyHash(seed, dutySalt, taskId));
          if (duty) duties++;
          if (expectedDuty(seed, dutySalt, taskId, K_BPS, power, TOTAL_POWER, 500n) === expectedDuty(seed, 0n, taskId, K_BPS, power, TOTAL_POWER, 500n)) unsaltedAgrees++;
        }
        // The salt matters: another salt gives other duties (the answers agree only by chance).
        expect(unsaltedAgrees).to.be.below(SEEDS);
        const sd = Math.sqrt(SEEDS * probability * (1 - probability));
        console.log(
          `      duty of a validator with power ${power}: ${duties}/${SEEDS} seeds (expected ${(SEEDS * probability).toFixed(1)})`,
        );
        expect(Math.abs(duties - SEEDS * probability)).to.be.at.most(4 * sd);
      }
    });

    it("is false for the executor, for nodes without power and for tasks not completed", async () => {
      const ctx = await networkHelpers.loadFixture(completedFixture);
      const { ledger, nodes, taskId } = ctx;
      const seed = ethers.id("seed");
      expect(await ledger.isValidationDuty(taskId, nodes[2].address, seed)).to.equal(false);
      expect(await ledger.isValidationDuty(taskId, nodes[5].address, seed)).to.equal(false);
      expect(await ledger.isValidationDuty(99n, nodes[0].address, seed)).to.equal(false);
      const assigned = await newTask(ctx, ctx.runB);
      // With k = 100 the duty is certain for everyone with power: the status alone makes it false here.
      const certain = await deployLedger(ctx, { ...DEFAULT_PARAMS, validationKBps: 1_000_000n });
      await certain.enroll(ctx.runB, nodes[2].address);
      await certain.connect(ctx.sys.master).createTask(ctx.runB, spec(1), 1n);
      expect(await certain.isValidationDuty(1n, nodes[0].address, seed)).to.equal(false);
      await certain.connect(nodes[2]).completeTask(1n, result(1));
      for (let s = 0; s < 20; s++) {
        expect(await certain.isValidationDuty(1n, nodes[0].address, ethers.id(`s${s}`))).to.equal(true);
      }
      expect(await ledger.isValidationDuty(assigned.taskId, nodes[0].address, seed)).to.equal(false);
    });
  });

  describe("duty salt", () => {
    it("is fixed by the epoch's first task from the hash of the block before it, announced, and kept by later tasks", async () => {
      const ctx = await networkHelpers.loadFixture(enrolledFixture);
      const { sys, ledger, runA, runB } = ctx;
      expect(await saltOf(ledger)).to.deep.equal({ count: 0n, dutySalt: 0n });
      const first = await newTask(ctx, runB);
      const receipt = (await first.tx.wait())!;
      const parent = (await ethers.provider.getBlock(receipt.blockNumber - 1))!;
      const { chainId } = await ethers.provider.getNetwork();
      const salt = expectedSalt(parent.hash!, await sys.epochManager.pocBeacon(EPOCH), chainId, await ledger.getAddress(), EPOCH);
      await expect(first.tx).to.emit(ledger, "DutySaltFixed").withArgs(EPOCH, salt, first.taskId);
      expect(await saltOf(ledger)).to.deep.equal({ count: 1n, dutySalt: salt });
      // Later tasks of the epoch, in any run, keep it.
      const second = await newTask(ctx, runA);
      await expect(second.tx).not.to.emit(ledger, "DutySaltFixed");
      const [, tasks] = await ledger.nodeEpochOf(EPOCH, ctx.nodes[0].address);
      expect([tasks.firstTaskId, tasks.count, tasks.disputeEnd, tasks.dutySalt]).to.deep.equal([
        first.taskId,
        2n,
        (await timeline(sys)).disputeEnd,
        salt,
      ]);
    });

    it("defeats seed grinding: seeds ground to have no duty on the epoch's predictable ids under H(seed, t) have duties at the normal rate under H(seed, salt, t), and the salt is unset while seeds can be committed", async function () {
      this.timeout(180_000);
      const ctx = await networkHelpers.loadFixture(membersFixture);
      const { sys, ledger, nodes } = ctx;
      const grinder = nodes[0]; // power 100; every task below goes to n3 (power 500), alone in run B
      const TASKS = 16;
      const GROUND = 40;
      // The seed window: epoch 1's PoC phase. The ids the epoch's tasks will carry are known (one counter),
      // and so are the powers a node expects; the salt is not.
      await goToPhase(connection, sys, EPOCH, EpochPhase.PoC);
      expect(await saltOf(ledger)).to.deep.equal({ count: 0n, dutySalt: 0n });
      const firstId = (await ledger.taskCount()) + 1n;
      const ids = Array.from({ length: TASKS }, (_, i) => firstId + BigInt(i));
      const threshold = (MAX_UINT256 * K_BPS * POWERS[0]) / ((TOTAL_POWER - POWERS[2]) * BPS);
      const probability = Number(K_BPS * POWERS[0]) / Number((TOTAL_POWER - POWERS[2]) * BPS);
      // Grinding: seeds with no duty at all on those ids under the unsalted hash (about 1 seed in 15 here).
      const ground: string[] = [];
      let tried = 0;
      while (ground.length < GROUND) {
        const seed = ethers.id(`ground seed ${tried++}`);
        if (ids.every((t) => unsaltedDutyHash(seed, t) >= threshold)) ground.push(seed);
      }
      // The grinder commits the first of them (in the seed window, with the others' seeds and PoC).
      await givePower(
        connection,
        sys,
        EPOCH,
        POWERS.map((count, i) => ({ node: nodes[i], count })),
        { seeds: new Map([[grinder.address, ground[0]]]) },
      );
      expect(await sys.epochManager.seedCommitmentOf(EPOCH, grinder.address)).to.equal(
        await sys.epochManager.seedCommitment(ground[0], grinder.address),
      );
      // Seeds are closed now, and the salt is still unset: the epoch has no task.
      await expect(sys.epochManager.connect(nodes[5]).commitSeed(EPOCH, ethers.id("too late")))
        .to.be.revertedWithCustomError(sys.epochManager, "EpochManagerOutsideSeedWindow");
      expect(await saltOf(ledger)).to.deep.equal({ count: 0n, dutySalt: 0n });
      await enrolled(ctx);
      for (const id of ids) {
        const { taskId, assignee } = await newTask(ctx, ctx.runB);
        expect([taskId, assignee]).to.deep.equal([id, nodes[2].address]); // the prediction held
        await ledger.connect(nodes[2]).completeTask(taskId, result(taskId));
      }
      const { dutySalt } = await saltOf(ledger);
      let duties = 0;
      let unsalted = 0;
      for (const seed of ground) {
        for (const t of ids) {
          if (await ledger.isValidationDuty(t, grinder.address, seed)) duties++;
          if (unsaltedDutyHash(seed, t) < threshold) unsalted++;
        }
      }
      const draws = GROUND * TASKS;
      const sd = Math.sqrt(draws * probability * (1 - probability));
      console.log(
        `      ${GROUND} ground seeds (${tried} tried) × ${TASKS} tasks: ${unsalted} duties unsalted, ${duties} with salt ${dutySalt} (expected ${(draws * probability).toFixed(1)})`,
      );
      expect(unsalted).to.equal(0);
      expect(Math.abs(duties - draws * probability)).to.be.at.most(4 * sd);
    });
  });

  describe("settleWork", () => {
    /** Work in epoch 1: n3 completed 6 + 2 tokens in run B and, in run A, whatever it was drawn for. */
    async function workFixture() {
      const ctx = await completedFixture();
      const second = await newTask(ctx, ctx.runB, 1n);
      await ctx.ledger.connect(ctx.nodes[2]).completeTask(second.taskId, result(second.taskId));
      return ctx;
    }

    /** The logs of `name` a transaction emitted from the ledger. */
    async function ledgerEvents(ctx: Context, tx: Promise<ContractTransactionResponse>, name: string) {
      const receipt = (await (await tx).wait())!;
      return receipt.logs.map((log) => ctx.ledger.interface.parseLog(log)).filter((e) => e?.name === name);
    }

    it("pays the node's work per run to the provider given, after the Dispute phase, once, and records the outcome", async () => {
      const ctx = await networkHelpers.loadFixture(workFixture);
      const { sys, ledger, runB, nodes, settler } = ctx;
      const n3 = nodes[2];
      const [p1] = sys.providers;
      const t = await timeline(sys);
      await time.setNextBlockTimestamp(t.disputeEnd - 1n);
      await expect(ledger.connect(settler).settleWork(EPOCH, n3.address, p1.address, 5, MINED))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerWorkNotFinal")
        .withArgs(EPOCH, t.disputeEnd);
      await time.setNextBlockTimestamp(t.disputeEnd);
      const before = await sys.token.balanceOf(p1.address);
      const escrowBefore = await balancedEscrow(sys, runB);
      const tx = ledger.connect(settler).settleWork(EPOCH, n3.address, p1.address, 5, MINED);
      // Run A holds none of n3's work: no event for it.
      const paid = await ledgerEvents(ctx, tx, "WorkPaid");
      expect(paid.map((e) => [...e!.args])).to.deep.equal([[EPOCH, n3.address, runB, p1.address, 8n * TOKEN]]);
      await expect(tx).to.emit(sys.trainingRuns, "EscrowPaid").withArgs(runB, p1.address, 8n * TOKEN);
      await expect(tx).to.not.emit(ledger, "WorkReleased");
      expect(await sys.token.balanceOf(p1.address)).to.equal(before + 8n * TOKEN);
      const escrowAfter = await balancedEscrow(sys, runB);
      expect(escrowAfter.paid - escrowBefore.paid).to.equal(8n * TOKEN);
      expect(escrowBefore.reserved - escrowAfter.reserved).to.equal(8n * TOKEN);
      // The record keeps the outcome and the total; the runs and their work are cleared.
      const [record] = await ledger.nodeEpochOf(EPOCH, n3.address);
      expect([record.runCount, record.outcome, record.openDisputes, record.power, record.work]).to.deep.equal([
        0n,
        5n,
        0n,
        500n,
        8n * TOKEN,
      ]);
      const work = await ledger.workOf(EPOCH, n3.address);
      expect(work.settled).to.equal(true);
      expect(work.runIds).to.deep.equal([]);
      expect(work.amounts).to.deep.equal([]);
      for (const provider of [p1.address, ethers.ZeroAddress]) {
        await expect(ledger.connect(settler).settleWork(EPOCH, n3.address, provider, 1))
          .to.be.revertedWithCustomError(ledger, "TaskLedgerWorkSettled")
          .withArgs(EPOCH, n3.address);
      }
    });

    it("returns the total paid or released", async () => {
      const { sys, ledger, nodes, settler } = await networkHelpers.loadFixture(workFixture);
      await goToPhase(connection, sys, EPOCH, EpochPhase.Claim);
      const p1 = sys.providers[0].address;
      expect(await ledger.connect(settler).settleWork.staticCall(EPOCH, nodes[2].address, p1, 1)).to.equal(8n * TOKEN);
      expect(await ledger.connect(settler).settleWork.staticCall(EPOCH, nodes[2].address, ethers.ZeroAddress, 1)).to.equal(
        8n * TOKEN,
      );
      expect(await ledger.connect(settler).settleWork.staticCall(EPOCH, nodes[5].address, p1, 1)).to.equal(0n);
    });

    it("releases the work back to each run's escrow when no provider is given", async () => {
      const ctx = await networkHelpers.loadFixture(workFixture);
      const { sys, ledger, runB, nodes, settler } = ctx;
      const n3 = nodes[2];
      await goToPhase(connection, sys, EPOCH, EpochPhase.Closed);
      const escrowBefore = await balancedEscrow(sys, runB);
      const balance = await sys.token.balanceOf(await sys.trainingRuns.getAddress());
      const tx = ledger.connect(settler).settleWork(EPOCH, n3.address, ethers.ZeroAddress, 2);
      const released = await ledgerEvents(ctx, tx, "WorkReleased");
      expect(released.map((e) => [...e!.args])).to.deep.equal([[EPOCH, n3.address, runB, 8n * TOKEN]]);
      await expect(tx).to.emit(sys.trainingRuns, "EscrowReleased").withArgs(runB, 8n * TOKEN, false);
      await expect(tx).to.not.emit(ledger, "WorkPaid");
      const escrowAfter = await balancedEscrow(sys, runB);
      expect(escrowAfter.available - escrowBefore.available).to.equal(8n * TOKEN);
      expect(await sys.token.balanceOf(await sys.trainingRuns.getAddress())).to.equal(balance);
      const [record] = await ledger.nodeEpochOf(EPOCH, n3.address);
      expect([record.outcome, record.work]).to.deep.equal([2n, 8n * TOKEN]);
      expect((await ledger.workOf(EPOCH, n3.address)).settled).to.equal(true);
    });

    it("settles a node without runs: records the outcome in a record of its own, pays nothing", async () => {
      const ctx = await networkHelpers.loadFixture(workFixture);
      const { sys, ledger, nodes, settler } = ctx;
      await goToPhase(connection, sys, EPOCH, EpochPhase.Claim);
      const tx = ledger.connect(settler).settleWork(EPOCH, nodes[5].address, sys.providers[1].address, 1);
      await expect(tx).to.not.emit(ledger, "WorkPaid");
      await expect(tx).to.not.emit(sys.trainingRuns, "EscrowPaid");
      const [record] = await ledger.nodeEpochOf(EPOCH, nodes[5].address);
      expect([record.runCount, record.outcome, record.power, record.work]).to.deep.equal([0n, 1n, 0n, 0n]);
      expect((await ledger.workOf(EPOCH, nodes[5].address)).settled).to.equal(true);
    });

    it("reads the Dispute phase's end from the EpochManager for an epoch without tasks", async () => {
      const { sys, ledger, nodes, settler } = await networkHelpers.loadFixture(workFixture);
      const t = await timeline(sys, 2n);
      expect(await ledger.epochTaskCount(2n)).to.equal(0n);
      await expect(ledger.connect(settler).settleWork(2n, nodes[0].address, sys.providers[0].address, 1))
        .to.be.revertedWithCustomError(ledger, "TaskLedgerWorkNotFinal")
        .withArgs(2n, t.disputeEnd);
    });

    it("refuses to pay a node while one of its disputes is open, releases it, and pays once resolved", async () => {
      const { sys, ledger, runB, nodes, settler, taskId } = await networkHelpers.loadFixture(workFixture);
      const [n1, , n3] = nodes;
      // n1 (100 of 1800) fails n3's first task: the dispute stays open.
      await ledger.connect(n1).submitValidation(taskId, false, WRONG);
      await goToPhase(connection, sys, EPOCH, EpochPhase.Claim);
      const p1 = sys.providers[0].address;
      for (const node of [n1, n3]) {
        await expect(ledger.connect(settler).settleWork(EPOCH, node.address, p1, 1))
          .to.be.revertedWithCustomError(ledger, "TaskLedgerDisputesOpen")
          .withArgs(EPOCH, node.address, 1n);
      }
      expect(await ledger.connect(settler).settleWork.staticCall(EPOCH, n3.address, ethers.ZeroAddress, 2)).to.equal(8n * TOKEN);
      // Opened early: its voting ended with the Dispute phase.
      await ledger.resolveDispute(taskId);
      await expect(ledger.connect(settler).settleWork(EPOCH, n3.address, p1, 1))
        .to.emit(ledger, "WorkPaid")
        .withArgs(EPOCH, n3.address, runB, p1, 8n * TOKEN);
    });

    it("refuses a zero outcome", async () => {
      const { sys, ledger, nodes, settler } = await networkHelpers.loadFixture(workFixture);
      await goToPhase(connection, sys, EPOCH, EpochPhase.Claim);
      await expect(
        ledger.connect(settler).settleWork(EPOCH, nodes[2].address, sys.providers[0].address, 0),
      ).to.be.revertedWithCustomError(ledger, "TaskLedgerZeroOutcome");
    });

    it("is refused to accounts without SETTLEMENT_ROLE", async () => {
      const { sys, ledger, nodes } = await networkHelpers.loadFixture(workFixture);
      await goToPhase(connection, sys, EPOCH, EpochPhase.Claim);
      for (const caller of [nodes[2], sys.admin]) {
        await expect(ledger.connect(caller).settleWork(EPOCH, nodes[2].address, caller.address, 1))
          .to.be.revertedWithCustomError(ledger, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, SETTLEMENT_ROLE);
      }
    });
  });

  describe("escrow conservation", () => {
    it("holds through creation, completion, expiry, invalidation, payment and release", async function () {
      this.timeout(120_000);
      const ctx = await networkHelpers.loadFixture(enrolledFixture);
      const { sys, ledger, runA, runB, nodes, settler } = ctx;
      const start = await balancedEscrow(sys, runA);
      const startB = await balancedEscrow(sys, runB);
      const pays = new Map<bigint, { runId: bigint; assignee: string; pay: bigint }>();
      for (let i = 0; i < 10; i++) {
        const created = await newTask(ctx, runA, BigInt(1 + (i % 3)));
        pays.set(created.taskId, { runId: runA, assignee: created.assignee, pay: created.pay });
      }
      const disputed = await newTask(ctx, runB, 5n);
      pays.set(disputed.taskId, { runId: runB, assignee: disputed.assignee, pay: disputed.pay });
      const reservedAll = [...pays.values()].reduce((s, p) => s + p.pay, 0n);
      expect((await balancedEscrow(sys, runA)).reserved + (await balancedEscrow(sys, runB)).reserved).to.equal(
        start.reserved + startB.reserved + reservedAll,
      );

      // Complete the first task of each assignee in run A, and the disputed one; the others expire.
      const byAddress = new Map(nodes.map((n) => [n.address, n]));
      const worked = new Set<string>();
      for (const [taskId, p] of pays) {
        if (p.runId === runA && worked.has(p.assignee)) continue;
        if (p.runId === runA) worked.add(p.assignee);
        await ledger.connect(byAddress.get(p.assignee)!).completeTask(taskId, result(taskId));
      }
      // The disputed task is invalidated: its pay goes back to run B's escrow.
      const [accuser, voter] = [nodes[3], nodes[4]];
      await ledger.connect(accuser).submitValidation(disputed.taskId, false, WRONG);
      await ledger.connect(voter).vote(disputed.taskId, true, WRONG);

      await toPhase(ctx, EPOCH, EpochPhase.Dispute);
      let expired = 0n;
      for (const [taskId, p] of pays) {
        if ((await ledger.taskOf(taskId)).status !== BigInt(TaskStatus.Assigned)) continue;
        await ledger.expireTask(taskId);
        expired += p.pay;
      }
      await toPhase(ctx, EPOCH, EpochPhase.Claim);
      // Nodes with work in run A are paid and released in turn (ten draws over five nodes: at least two
      // assignees, bar a chance of about 1e-5).
      let paid = 0n;
      let released = 0n;
      let turn = 0;
      for (const node of nodes.slice(0, 5)) {
        const work = await ledger.workOf(EPOCH, node.address);
        const inA = work.amounts[work.runIds.findIndex((r) => r === runA)];
        const provider = await sys.registry.providerOf(node.address);
        if (turn++ % 2 === 0) {
          expect(await ledger.connect(settler).settleWork.staticCall(EPOCH, node.address, provider, 1)).to.equal(
            work.amounts.reduce((sum, a) => sum + a, 0n),
          );
          await ledger.connect(settler).settleWork(EPOCH, node.address, provider, 1);
          paid += inA;
        } else {
          await ledger.connect(settler).settleWork(EPOCH, node.address, ethers.ZeroAddress, 2);
          released += inA;
        }
        if (inA === 0n) turn--; // nodes without work do not take a turn
      }
      const endA = await balancedEscrow(sys, runA);
      const endB = await balancedEscrow(sys, runB);
      const payA = [...pays.values()].filter((p) => p.runId === runA).reduce((s, p) => s + p.pay, 0n);
      // Every task's pay of run A was paid, released or expired; only what was paid left `available`.
      expect(endA.reserved).to.equal(start.reserved);
      expect(endA.paid - start.paid).to.equal(paid);
      expect(paid + released + expired).to.equal(payA);
      expect(start.available - endA.available).to.equal(paid);
      expect(worked.size).to.be.at.least(2);
      expect(paid).to.be.greaterThan(0n);
      expect(released).to.be.greaterThan(0n);
      expect(expired).to.be.greaterThan(0n);
      expect(endB.reserved).to.equal(startB.reserved);
      expect(endB.available).to.equal(startB.available);
    });
  });
});

describe("TaskLedger gas at 5 and at 200 enrolled nodes", () => {
  it("createTask grows at most 1.5 times from 5 to 200 nodes; enroll costs the same at the 2nd and the 200th", async function () {
    this.timeout(600_000);
    const sys = await deploySystem(connection);
    const ctx: Context = {
      sys,
      ledger: sys.taskLedger,
      runA: 0n,
      runB: 0n,
      nodes: [],
      settler: sys.admin,
    };
    const nodes = await validatedNodes(connection, sys, 200, sys.providers[0], CPU_NODE);
    const big = await createRun(sys, { requirements: NO_REQUIREMENTS, maxMembers: 250, budget: BUDGET });
    const small = await createRun(sys, { requirements: NO_REQUIREMENTS, maxMembers: 5, budget: BUDGET });
    for (const runId of [big, small]) await sys.trainingRuns.connect(sys.master).startRun(runId);
    for (const [i, node] of nodes.entries()) {
      await joinRun(connection, sys, big, node as unknown as HardhatEthersSigner, BigInt(i + 1));
      if (i < 5) await joinRun(connection, sys, small, node as unknown as HardhatEthersSigner, BigInt(i + 1));
    }
    // Power in epoch 2 (epoch 1 was spent setting up), judged by the bootstrap validators.
    const epoch = 2n;
    await givePower(
      connection,
      sys,
      epoch,
      nodes.map((node, i) => ({ node, count: BigInt(100 + i) })),
    );
    const enrollGas: bigint[] = [];
    for (const node of nodes) {
      const receipt = await (await sys.taskLedger.enroll(big, node.address)).wait();
      enrollGas.push(receipt!.gasUsed);
    }
    for (const node of nodes.slice(0, 5)) await sys.taskLedger.enroll(small, node.address);
    expect((await sys.taskLedger.enrollmentOf(big, epoch))[0]).to.equal(200n);

    const measure = async (runId: bigint) => {
      const gas: bigint[] = [];
      for (let i = 0; i < 8; i++) gas.push((await newTask(ctx, runId)).gasUsed);
      return gas.reduce((a, b) => (a > b ? a : b), 0n);
    };
    // Warm the epoch's task list first so that both measurements pay the same bookkeeping.
    await newTask(ctx, small);
    const at5 = await measure(small);
    const at200 = await measure(big);
    console.log(`      createTask gas (max of 8): ${at5} at 5 nodes, ${at200} at 200 nodes (ratio ${(Number(at200) / Number(at5)).toFixed(3)})`);
    console.log(`      enroll gas: 2nd node ${enrollGas[1]}, 200th node ${enrollGas[199]}`);
    expect(Number(at200) / Number(at5)).to.be.at.most(1.5);
    const spread = enrollGas[199] > enrollGas[1] ? enrollGas[199] - enrollGas[1] : enrollGas[1] - enrollGas[199];
    expect(spread).to.be.below(500n);
  });
});
