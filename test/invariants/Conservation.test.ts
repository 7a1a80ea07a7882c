/**
 * Token conservation and single use, over random sequences of protocol actions (fast-check, in-process EVM).
 *
 * Each run starts from one snapshot (`loadFixture`) of the whole system deployed through the Ignition module:
 * five validated CPU nodes (n1..n3 of provider p1, n4 and n5 of p2) with power 100, 200, 300, 400, 500 in epoch
 * 1 (n5 capped at the 30 % share), all members of run A and enrolled in it, n3 and n4 also of run B, a third run
 * C still pending, n6 a funded key not yet registered; the chain at the start of epoch 1's Work phase. A run
 * then plays four generated segments of actions — during epoch 1's Work phase, its Dispute phase, its Claim
 * phase and after it (Closed) — each action drawn from the whole protocol: tasks created, completed, expired;
 * validations (successful ones with evidence bound to the result or made up), false-validation reports (the
 * executor's posted result being a seal), dispute votes and resolutions; stake, unstake, withdraw, deregister, register; slashing by the
 * slasher; runs created, funded, started, completed, cancelled, left; claims (right or wrong seed), expiries,
 * emissions fixed and returned; plain transfers; waits. An action the state does not allow reverts: it must do
 * so with a custom error of the system (a panic or an empty revert fails the property).
 *
 * After every action, the invariants (`checkInvariants`):
 * - the balances of every address that ever received tokens sum to the total supply, and the supply grew by
 *   exactly what the vault records as paid rewards (within the cap, `outstanding` included);
 * - each contract holds what its own accounting says: the registry its nodes' stakes plus unbonding entries,
 *   TrainingRuns its runs' `deposited − paid − refunded` (ended runs have nothing available), the vault the
 *   slashed stake less the bounties it paid, the other contracts nothing;
 * - across contracts: each run's reserved escrow is the pay of its tasks still assigned plus that of its
 *   completed tasks whose executor's epoch is not settled; each unsettled node's credited work per run is the
 *   pay of its completed tasks there; each node's open-dispute count is the number of open disputes it is in;
 * - disputes move along the allowed graph (`DISPUTE_EDGES`: None → Open → Invalidated | Upheld | Unresolved,
 *   or None → Invalidated | Upheld at once), and a task is Invalidated exactly when its dispute is. Votes and
 *   failed validations carry seals drawn among the executor's, two shared others and one of the voter's own.
 *
 * Single use: right after a claim, a validation, a false-validation report or a dispute vote succeeds, the very
 * same transaction is sent again (mined): it must revert with the contract's custom error
 * (SettlementAlreadySettled, TaskLedgerAlreadyValidated, TaskLedgerNoValidation, or the status error when the
 * first call closed the task or dispute) and leave
 * every observed value unchanged. A successful claim must pay the provider exactly the work and reward it
 * reports.
 */
import { expect } from "chai";
import { network } from "hardhat";
import fc from "fast-check";
import type { ContractTransactionReceipt, ContractTransactionResponse, Log } from "ethers";
import {
  type Account,
  CPU_NODE,
  type System,
  createRun,
  deploySystem,
  joinRun,
  minStakeFor,
  registerNode,
} from "../helpers/system.js";
import { type GivenPower, givePower, phaseStart, validatedNode } from "../helpers/epochs.js";
import { DisputeStatus, EpochPhase, RunStatus, TOKEN, TaskStatus } from "../../scripts/lib/protocol.js";
import { Stats, attempt, checkProperty, errorsOf, isCustomError, maxShrinks, replaying, stable } from "./property.js";

const connection = await network.create();
const { ethers, networkHelpers } = connection;
const { time } = networkHelpers;

const FILE = "test/invariants/Conservation.test.ts";
const NUM_RUNS = 20;
const EPOCH = 1n;
const POWERS = [100n, 200n, 300n, 400n, 500n];
const INITIAL_SUPPLY = 100_000_000n * TOKEN;
/** Epochs whose emission a sequence may fix or return (claims pay epoch 1; 2 and 3 are due in the Closed segment). */
const EPOCHS = [1n, 2n, 3n];
/** A reverted replay is mined (not estimated away), at a fixed gas limit. */
const MINED = { gasLimit: 3_000_000 };
const coder = ethers.AbiCoder.defaultAbiCoder();
/** The result hash of task `id`, the seal its executor posts, and the evidence of a validator that re-executed it. */
const resultOf = (id: bigint) => ethers.id(`result ${id}`);
const sealOf = (resultHash: string) => ethers.keccak256(coder.encode(["bytes32"], [resultHash]));
const boundEvidence = (resultHash: string, validator: string) => ethers.keccak256(coder.encode(["bytes32", "address"], [resultHash, validator]));

const NO_REQUIREMENTS = {
  minGpuCount: 0,
  minGpuMemoryMB: 0,
  minCpuCores: 0,
  minRamMB: 0,
  minStorageGB: 0,
  allowedGpuModels: [] as string[],
};

interface Context {
  sys: System;
  /** n1..n6 (n6 unregistered at the start). */
  nodes: Account[];
  providerOf: (node: number) => Account;
  runIds: bigint[];
  given: GivenPower;
  /** Everyone who may send or receive tokens in a sequence besides the contracts. */
  actors: Account[];
  contracts: Record<string, string>;
}

async function economyFixture(): Promise<Context> {
  const sys = await deploySystem(connection);
  const [p1, p2] = sys.providers;
  const nodes = sys.nodes.slice(0, 6);
  const providerOf = (i: number) => (i < 3 ? p1 : p2);
  for (let i = 0; i < 5; i++) await validatedNode(connection, sys, providerOf(i), nodes[i], CPU_NODE);

  const run = async (budget: bigint, maxMembers: number, members: Account[], start: boolean) => {
    const runId = await createRun(sys, { budget, maxMembers, pricePerUnit: 2n * TOKEN, requirements: NO_REQUIREMENTS });
    if (start) await sys.trainingRuns.connect(sys.buyer).startRun(runId);
    for (const [i, node] of members.entries()) await joinRun(connection, sys, runId, node, BigInt(i + 1));
    return runId;
  };
  const runA = await run(3_000n * TOKEN, 5, nodes.slice(0, 5), true);
  const runB = await run(1_000n * TOKEN, 2, [nodes[2], nodes[3]], true);
  const runC = await run(500n * TOKEN, 3, [], false);

  const given = await givePower(
    connection,
    sys,
    EPOCH,
    POWERS.map((count, i) => ({ node: nodes[i], count })),
  );
  for (const node of nodes.slice(0, 5)) await sys.taskLedger.enroll(runA, node.address);
  for (const node of [nodes[2], nodes[3]]) await sys.taskLedger.enroll(runB, node.address);

  const contracts: Record<string, string> = {};
  for (const name of [
    "token",
    "registry",
    "challengeBoard",
    "trainingRuns",
    "epochManager",
    "proofOfCompute",
    "rewardVault",
    "taskLedger",
    "settlement",
  ] as const) {
    contracts[name] = await sys[name].getAddress();
  }
  const actors = [sys.admin, sys.treasury, sys.buyer, sys.master, p1, p2, ...nodes, sys.stranger, sys.slasher];
  return { sys, nodes, providerOf, runIds: [runA, runB, runC], given, actors, contracts };
}

// ------------------------------------------------------------------ actions

type Action =
  | { k: "task"; run: number; units: number }
  | { k: "complete"; t: number }
  | { k: "validate"; t: number; v: number; ok: boolean; seal: number; bound: boolean }
  | { k: "report"; t: number; v: number; reporter: number }
  | { k: "vote"; t: number; v: number; seal: number }
  | { k: "resolve"; t: number }
  | { k: "expireTask"; t: number }
  | { k: "stake"; n: number; amount: number }
  | { k: "unstake"; n: number; percent: number }
  | { k: "withdraw"; n: number }
  | { k: "deregister"; n: number }
  | { k: "register"; n: number; extra: number }
  | { k: "leave"; run: number; n: number }
  | { k: "slash"; n: number; amount: number }
  | { k: "fund"; run: number; amount: number }
  | { k: "newRun"; budget: number }
  | { k: "startRun"; run: number }
  | { k: "completeRun"; run: number }
  | { k: "cancelRun"; run: number }
  | { k: "wait"; seconds: number }
  | { k: "longWait"; days: number }
  | { k: "claim"; n: number; wrongSeed: boolean }
  | { k: "expireClaim"; n: number }
  | { k: "fixEmission"; epoch: number }
  | { k: "returnUnclaimed"; epoch: number }
  | { k: "transfer"; from: number; to: number; amount: number };

type Kind = Action["k"];

const node = fc.integer({ min: 0, max: 5 });
const run = fc.integer({ min: 0, max: 4 });
const task = fc.nat({ max: 63 });
const tokens = (max: number) => fc.integer({ min: 1, max });

const ARBITRARIES: { [K in Kind]: fc.Arbitrary<Extract<Action, { k: K }>> } = {
  task: fc.record({
    k: fc.constant("task"),
    // Mostly runs A and B, where nodes are enrolled; the others are pending or new (no enrollment).
    run: fc.oneof({ arbitrary: fc.constant(0), weight: 3 }, { arbitrary: fc.constant(1), weight: 2 }, run),
    units: fc.integer({ min: 1, max: 150 }),
  }),
  complete: fc.record({ k: fc.constant("complete"), t: task }),
  // Seals (votedSeal): 0 the executor's, 1 and 2 two other results voters may share, 3 one of the voter's own.
  // `bound`: a successful validation's evidence is bound to the result (re-executed), else made up (reportable).
  validate: fc.record({ k: fc.constant("validate"), t: task, v: node, ok: fc.boolean(), seal: fc.integer({ min: 1, max: 3 }), bound: fc.boolean() }),
  // A false-validation report by a node (0-5) or a stranger (6).
  report: fc.record({ k: fc.constant("report"), t: task, v: node, reporter: fc.nat({ max: 6 }) }),
  vote: fc.record({ k: fc.constant("vote"), t: task, v: node, seal: fc.integer({ min: 0, max: 3 }) }),
  resolve: fc.record({ k: fc.constant("resolve"), t: task }),
  expireTask: fc.record({ k: fc.constant("expireTask"), t: task }),
  stake: fc.record({ k: fc.constant("stake"), n: node, amount: tokens(500) }),
  // A share of the stake above the minimum (or 1 token when there is none: a revert).
  unstake: fc.record({ k: fc.constant("unstake"), n: node, percent: fc.integer({ min: 1, max: 100 }) }),
  withdraw: fc.record({ k: fc.constant("withdraw"), n: node }),
  deregister: fc.record({ k: fc.constant("deregister"), n: node }),
  register: fc.record({ k: fc.constant("register"), n: node, extra: fc.nat({ max: 300 }) }),
  leave: fc.record({ k: fc.constant("leave"), run, n: node }),
  slash: fc.record({ k: fc.constant("slash"), n: node, amount: tokens(200) }),
  fund: fc.record({ k: fc.constant("fund"), run, amount: tokens(2_000) }),
  newRun: fc.record({ k: fc.constant("newRun"), budget: fc.nat({ max: 2_000 }) }),
  startRun: fc.record({ k: fc.constant("startRun"), run }),
  completeRun: fc.record({ k: fc.constant("completeRun"), run }),
  cancelRun: fc.record({ k: fc.constant("cancelRun"), run }),
  wait: fc.record({ k: fc.constant("wait"), seconds: fc.constantFrom(60, 3_600, 6 * 3_600, 86_400, 3 * 86_400) }),
  // Past the unbonding delay (7 days); only in the Closed segment.
  longWait: fc.record({ k: fc.constant("longWait"), days: fc.integer({ min: 7, max: 10 }) }),
  claim: fc.record({ k: fc.constant("claim"), n: node, wrongSeed: fc.oneof({ arbitrary: fc.constant(false), weight: 9 }, { arbitrary: fc.constant(true), weight: 1 }) }),
  expireClaim: fc.record({ k: fc.constant("expireClaim"), n: node }),
  fixEmission: fc.record({ k: fc.constant("fixEmission"), epoch: fc.integer({ min: 1, max: 3 }) }),
  returnUnclaimed: fc.record({ k: fc.constant("returnUnclaimed"), epoch: fc.integer({ min: 1, max: 3 }) }),
  transfer: fc.record({
    k: fc.constant("transfer"),
    from: fc.nat({ max: 15 }),
    to: fc.nat({ max: 15 }),
    amount: tokens(1_000),
  }),
};

/** Actions of one segment: every kind may appear (weight 1), the segment's own kinds more often (0: never). */
function segment(boost: Partial<Record<Kind, number>>, maxLength: number): fc.Arbitrary<Action[]> {
  const kinds = (Object.keys(ARBITRARIES) as Kind[]).filter((k) => (boost[k] ?? (k === "longWait" ? 0 : 1)) > 0);
  const action = fc.oneof(
    ...kinds.map((k) => ({ arbitrary: ARBITRARIES[k] as fc.Arbitrary<Action>, weight: boost[k] ?? 1 })),
  );
  return fc.array(action, { minLength: Math.floor(maxLength / 3), maxLength, size: "max" });
}

const SEQUENCE = fc.limitShrink(
  fc.record({
    work: segment({ task: 12, complete: 12, validate: 10, vote: 6, expireTask: 1, stake: 3, unstake: 3, slash: 2 }, 40),
    dispute: segment({ validate: 10, vote: 10, resolve: 3, complete: 2 }, 20),
    claim: segment({ claim: 14, resolve: 4, vote: 3, fixEmission: 2, report: 10 }, 20),
    closed: segment({ expireClaim: 8, returnUnclaimed: 3, withdraw: 6, deregister: 3, longWait: 2, completeRun: 2, cancelRun: 2, expireTask: 3 }, 20),
  }),
  maxShrinks(),
);

// ------------------------------------------------------------------ seals and the dispute status graph

/**
 * The seal `keccak256(abi.encode(resultHash))` voter `v` votes on task `taskId`: 0 the executor's (the seal its
 * completeTask posted, of `resultOf(taskId)`), 1 and 2 two other results shared by whoever picks them, 3 one of
 * its own (a non-deterministic re-execution).
 */
function votedSeal(taskId: bigint, seal: number, v: number): string {
  if (seal === 0) return sealOf(resultOf(taskId));
  return sealOf(ethers.id([`other result A ${taskId}`, `other result B ${taskId}`, `own result ${taskId} ${v}`][seal - 1]));
}

/**
 * Allowed dispute status changes in one call: None → Open, or None → Upheld | Invalidated when the opening
 * validation decides at once; Open → Invalidated | Upheld | Unresolved. Every other status is final. A dispute
 * is Invalidated exactly when its task is; an Upheld or Unresolved dispute leaves its task Completed.
 */
const DISPUTE_EDGES: Record<number, number[]> = {
  [DisputeStatus.None]: [DisputeStatus.Open, DisputeStatus.Upheld, DisputeStatus.Invalidated],
  [DisputeStatus.Open]: [DisputeStatus.Invalidated, DisputeStatus.Upheld, DisputeStatus.Unresolved],
  [DisputeStatus.Invalidated]: [],
  [DisputeStatus.Upheld]: [],
  [DisputeStatus.Unresolved]: [],
};

function checkDisputeEdges(before: Observed, after: Observed, where: string) {
  const old = new Map(before.tasks.map((t) => [t.id, t.dispute]));
  for (const t of after.tasks) {
    const from = old.get(t.id) ?? DisputeStatus.None;
    if (from !== t.dispute) {
      expect(DISPUTE_EDGES[from], `${where}: dispute of task ${t.id} moved ${from} → ${t.dispute}`).to.include(t.dispute);
    }
    expect(t.dispute === DisputeStatus.Invalidated, `${where}: task ${t.id} invalidated iff its dispute is`).to.equal(t.status === TaskStatus.Invalidated);
    if (t.dispute === DisputeStatus.Upheld || t.dispute === DisputeStatus.Unresolved) {
      expect(t.status, `${where}: task ${t.id} stands after its dispute`).to.equal(TaskStatus.Completed);
    }
  }
}

// ------------------------------------------------------------------ state observed and invariants

interface TaskRecord {
  id: bigint;
  runId: bigint;
  assignee: string;
  pay: bigint;
}

/** What a sequence knows beyond the chain: its tasks, and the tokens the vault received and paid as bounties. */
interface Ghost {
  tasks: TaskRecord[];
  slashed: bigint;
  bounties: bigint;
  /** Every address that ever received tokens (from Transfer logs), and the next block to scan. */
  holders: Set<string>;
  scannedTo: number;
}

async function observe(ctx: Context, ghost: Ghost) {
  const { sys } = ctx;
  const { token, registry, trainingRuns, taskLedger, rewardVault } = sys;
  const latest = await ethers.provider.getBlockNumber();
  if (latest >= ghost.scannedTo) {
    for (const log of await token.queryFilter(token.filters.Transfer(), ghost.scannedTo, latest)) {
      ghost.holders.add((log as unknown as { args: { to: string } }).args.to);
    }
    ghost.scannedTo = latest + 1;
  }
  const holders = [...ghost.holders].sort();
  const runCount = await trainingRuns.runCount();
  const runIds = Array.from({ length: Number(runCount) }, (_, i) => BigInt(i + 1));
  const [balances, totalSupply, outstanding, nodes, runs, tasks, emissions] = await Promise.all([
    Promise.all(holders.map((h) => token.balanceOf(h))),
    token.totalSupply(),
    rewardVault.outstanding(),
    Promise.all(
      ctx.nodes.map(async (n) => {
        const [registered, unbonding, epoch, work, openDisputes] = await Promise.all([
          registry.isRegistered(n.address),
          registry.unbondingOf(n.address),
          taskLedger.nodeEpochOf(EPOCH, n.address),
          taskLedger.workOf(EPOCH, n.address),
          taskLedger.openDisputesOf(EPOCH, n.address),
        ]);
        const stake = registered ? (await registry.getNode(n.address)).stake : 0n;
        return {
          address: n.address,
          registered,
          stake,
          unbonding: unbonding.map((u) => ({ beneficiary: u.beneficiary, releaseAt: u.releaseAt, amount: u.amount })),
          runCount: epoch.record.runCount,
          outcome: epoch.record.outcome,
          openDisputes,
          settledWork: epoch.record.work,
          work: work.runIds.map((r, i) => ({ runId: r, amount: work.amounts[i] })),
        };
      }),
    ),
    Promise.all(
      runIds.map(async (runId) => {
        const [info, escrow] = await Promise.all([trainingRuns.getRun(runId), trainingRuns.escrowOf(runId)]);
        return {
          runId,
          status: Number(info.status),
          deposited: escrow.deposited,
          paid: escrow.paid,
          refunded: escrow.refunded,
          reserved: escrow.reserved,
          available: escrow.available,
        };
      }),
    ),
    Promise.all(
      ghost.tasks.map(async (t) => {
        const [info, dispute] = await Promise.all([taskLedger.taskOf(t.id), taskLedger.disputeOf(t.id)]);
        return {
          ...t,
          status: Number(info.status),
          dispute: Number(dispute.status),
          accuser: dispute.accuser,
          invalidWeight: dispute.invalidWeight,
          validWeight: dispute.validWeight,
        };
      }),
    ),
    Promise.all(
      EPOCHS.map(async (e) => {
        const r = await rewardVault.emissionOf(e);
        return { epoch: e, fixed: r.fixed_, returned: r.returned, emission: r.emission, paid: r.paid };
      }),
    ),
  ]);
  return {
    balances: Object.fromEntries(holders.map((h, i) => [h, balances[i]])),
    totalSupply,
    outstanding,
    nodes,
    runs,
    tasks,
    emissions,
  };
}

type Observed = Awaited<ReturnType<typeof observe>>;

function sum(values: Iterable<bigint>): bigint {
  let s = 0n;
  for (const v of values) s += v;
  return s;
}

async function checkInvariants(ctx: Context, ghost: Ghost, o: Observed, where: string) {
  const c = ctx.contracts;
  const balanceOf = (address: string) => o.balances[address] ?? 0n;
  const at = (what: string) => `${what} (${where})`;

  // Every token is somewhere: the balances of all holders sum to the supply, which grew only by paid rewards.
  expect(sum(Object.values(o.balances)), at("sum of balances")).to.equal(o.totalSupply);
  const paidRewards = sum(o.emissions.map((e) => e.paid));
  expect(o.totalSupply, at("supply = initial + rewards paid")).to.equal(INITIAL_SUPPLY + paidRewards);
  expect(o.totalSupply + o.outstanding, at("supply + outstanding within the cap")).to.be.lte(
    await ctx.sys.rewardVault.supplyCap(),
  );
  for (const e of o.emissions) {
    expect(e.paid, at(`epoch ${e.epoch} paid within its emission`)).to.be.lte(e.emission);
    if (!e.fixed) expect(e.emission, at(`epoch ${e.epoch} unfixed emission`)).to.equal(0n);
  }
  expect(o.outstanding, at("vault outstanding")).to.equal(
    sum(o.emissions.map((e) => (e.fixed && !e.returned ? e.emission - e.paid : 0n))),
  );

  // Registry: stakes plus unbonding entries.
  const staked = sum(o.nodes.map((n) => n.stake + sum(n.unbonding.map((u) => u.amount))));
  expect(balanceOf(c.registry), at("registry balance = stakes + unbonding")).to.equal(staked);
  for (const n of o.nodes) if (!n.registered) expect(n.stake, at("stake of an unregistered node")).to.equal(0n);

  // TrainingRuns: each run's deposit less what it paid and refunded.
  for (const r of o.runs) {
    expect(r.deposited, at(`run ${r.runId} escrow identity`)).to.equal(r.paid + r.refunded + r.reserved + r.available);
    if (r.status === RunStatus.Completed || r.status === RunStatus.Cancelled) {
      expect(r.available, at(`ended run ${r.runId} has nothing available`)).to.equal(0n);
    }
  }
  expect(balanceOf(c.trainingRuns), at("TrainingRuns balance = runs' escrow")).to.equal(
    sum(o.runs.map((r) => r.deposited - r.paid - r.refunded)),
  );

  // Reserved escrow = pay of tasks assigned, or completed and not yet settled (paid or released).
  const settled = new Map(o.nodes.map((n) => [n.address, n.outcome !== 0n]));
  for (const r of o.runs) {
    const expected = sum(
      o.tasks
        .filter((t) => t.runId === r.runId)
        .filter(
          (t) =>
            t.status === TaskStatus.Assigned || (t.status === TaskStatus.Completed && settled.get(t.assignee) !== true),
        )
        .map((t) => t.pay),
    );
    expect(r.reserved, at(`run ${r.runId} reserved = open task pay`)).to.equal(expected);
  }
  for (const n of o.nodes) {
    const credited = new Map<bigint, bigint>();
    for (const t of o.tasks) {
      if (t.assignee === n.address && t.status === TaskStatus.Completed) {
        credited.set(t.runId, (credited.get(t.runId) ?? 0n) + t.pay);
      }
    }
    if (n.outcome === 0n) {
      for (const w of n.work) {
        expect(w.amount, at(`work of ${n.address} in run ${w.runId}`)).to.equal(credited.get(w.runId) ?? 0n);
      }
      expect(sum(n.work.map((w) => w.amount)), at(`work of ${n.address}`)).to.equal(sum(credited.values()));
    } else {
      expect(n.work.length, at(`settled ${n.address} keeps no runs`)).to.equal(0);
    }
    const open = o.tasks.filter(
      (t) => t.dispute === DisputeStatus.Open && (t.assignee === n.address || t.accuser === n.address),
    ).length;
    expect(n.openDisputes, at(`open disputes of ${n.address}`)).to.equal(BigInt(open));
  }

  // The vault holds the slashed stake it received less the bounties it paid; no other contract holds tokens.
  expect(balanceOf(c.rewardVault), at("vault balance = slashed − bounties")).to.equal(ghost.slashed - ghost.bounties);
  for (const name of ["token", "challengeBoard", "epochManager", "proofOfCompute", "taskLedger", "settlement"]) {
    expect(balanceOf(c[name]), at(`${name} holds no tokens`)).to.equal(0n);
  }
}

// ------------------------------------------------------------------ the property

/** Reads the slashing and bounty events of a successful transaction into the ghost. */
function noteLogs(ctx: Context, ghost: Ghost, receipt: ContractTransactionReceipt) {
  const { registry, rewardVault, taskLedger } = ctx.sys;
  for (const log of receipt.logs as Log[]) {
    const address = log.address;
    if (address === ctx.contracts.registry) {
      const parsed = registry.interface.parseLog(log);
      if (parsed?.name === "Slashed" && parsed.args.treasury === ctx.contracts.rewardVault) {
        ghost.slashed += parsed.args.fromStake + parsed.args.fromUnbonding;
      }
    } else if (address === ctx.contracts.rewardVault) {
      const parsed = rewardVault.interface.parseLog(log);
      if (parsed?.name === "BountyPaid") ghost.bounties += parsed.args.amount;
    } else if (address === ctx.contracts.taskLedger) {
      const parsed = taskLedger.interface.parseLog(log);
      if (parsed?.name === "TaskCreated") {
        ghost.tasks.push({ id: parsed.args.taskId, runId: parsed.args.runId, assignee: parsed.args.assignee, pay: parsed.args.pay });
      }
    }
  }
}

describe("Invariants: token conservation and single use over random action sequences", function () {
  this.timeout(15 * 60_000);

  it("keeps every token accounted for, and refuses double claims, validations and votes", async () => {
    const base = await networkHelpers.loadFixture(economyFixture);
    const errors = errorsOf([
      base.sys.token,
      base.sys.registry,
      base.sys.challengeBoard,
      base.sys.trainingRuns,
      base.sys.epochManager,
      base.sys.proofOfCompute,
      base.sys.rewardVault,
      base.sys.taskLedger,
      base.sys.settlement,
    ]);
    const stats = new Stats();
    let checks = 0;

    const property = fc.asyncProperty(SEQUENCE, async (sequence) => {
      const ctx = await networkHelpers.loadFixture(economyFixture);
      const { sys, nodes } = ctx;
      const runIds = [...ctx.runIds];
      const ghost: Ghost = { tasks: [], slashed: 0n, bounties: 0n, holders: new Set(), scannedTo: 0 };
      let last = await observe(ctx, ghost);
      await checkInvariants(ctx, ghost, last, "fixture");

      const pick = <T>(list: T[], i: number): T | undefined => (list.length === 0 ? undefined : list[i % list.length]);
      /** The i-th task among those `filter` keeps in the last observation, or among all tasks if none. */
      const pickTask = (i: number, filter: (t: Observed["tasks"][number]) => boolean): TaskRecord | undefined => {
        const kept = last.tasks.filter(filter);
        return kept.length > 0 ? pick(kept, i) : pick(ghost.tasks, i);
      };
      const assigned = (t: Observed["tasks"][number]) => t.status === TaskStatus.Assigned;
      const disputed = (t: Observed["tasks"][number]) => t.dispute === DisputeStatus.Open;
      const signerOf = (address: string) => nodes.find((n) => n.address === address)!;
      /** Successful validations and votes to uphold with made-up evidence, which a report can refute. */
      const madeUp: Array<{ id: bigint; v: number }> = [];
      const timeline = await sys.epochManager.timelineOf(EPOCH);

      /** Sends `send`; a revert must be a custom error; a success updates the ghost. */
      const act = async (kind: string, send: () => Promise<ContractTransactionResponse>) => {
        const outcome = await attempt(errors, send);
        stats.record(kind, outcome);
        if (!outcome.ok) {
          expect(isCustomError(outcome.error), `${kind} reverted with ${outcome.error}`).to.equal(true);
        } else {
          noteLogs(ctx, ghost, outcome.receipt);
          for (const log of outcome.receipt.logs) {
            const parsed = log.address === ctx.contracts.taskLedger ? sys.taskLedger.interface.parseLog(log as Log) : null;
            if (parsed?.name === "DisputeResolved") {
              const outcomeName = Object.entries(DisputeStatus).find(([, n]) => n === Number(parsed.args.outcome))![0];
              stats.record(`dispute ${outcomeName.toLowerCase()}`, outcome);
            }
          }
        }
        return outcome;
      };

      /** Replays a call that just succeeded: must revert with `expected`, on chain, and change nothing. */
      const replay = async (kind: string, expected: string, send: () => Promise<ContractTransactionResponse>) => {
        const before = stable(await observe(ctx, ghost));
        const outcome = await attempt(errors, send);
        stats.record(`${kind} (replayed)`, outcome);
        expect(outcome.ok, `${kind} replayed succeeded`).to.equal(false);
        if (!outcome.ok) expect(outcome.error, `${kind} replayed`).to.equal(expected);
        expect(stable(await observe(ctx, ghost)), `${kind} replayed changed state`).to.equal(before);
      };

      const step = async (a: Action) => {
        switch (a.k) {
          case "task": {
            const runId = pick(runIds, a.run)!;
            await act("task", () => sys.taskLedger.connect(sys.master).createTask(runId, ethers.id(`spec ${ghost.tasks.length}`), BigInt(a.units)));
            return;
          }
          case "complete": {
            const t = pickTask(a.t, assigned);
            if (t === undefined) return;
            await act("complete", () => sys.taskLedger.connect(signerOf(t.assignee)).completeTask(t.id, sealOf(resultOf(t.id))));
            return;
          }
          case "validate": {
            const t = pickTask(a.t, (t) => t.status === TaskStatus.Completed && t.assignee !== nodes[a.v].address);
            if (t === undefined) return;
            const validator = nodes[a.v];
            // A failed validation carries the validator's seal (never the executor's: that is a successful one).
            const evidence = !a.ok
              ? votedSeal(t.id, a.seal, a.v)
              : a.bound
                ? boundEvidence(resultOf(t.id), validator.address)
                : ethers.id(`evidence ${t.id} ${a.v}`);
            const send = () => sys.taskLedger.connect(validator).submitValidation(t.id, a.ok, evidence, MINED);
            const outcome = await act("validate", send);
            if (outcome.ok && a.ok && !a.bound) madeUp.push({ id: t.id, v: a.v });
            if (outcome.ok) {
              const status = Number((await sys.taskLedger.taskOf(t.id)).status);
              await replay("validate", status === TaskStatus.Completed ? "TaskLedgerAlreadyValidated" : "TaskLedgerInvalidStatus", send);
            }
            return;
          }
          case "report": {
            // Three reports in four aim at a validation known to be made up, the others at any node and task.
            const aimed = a.t % 4 !== 0 ? pick(madeUp, a.t >> 2) : undefined;
            const t = aimed ? { id: aimed.id } : pickTask(a.t, (t) => t.status === TaskStatus.Completed && t.assignee !== nodes[a.v].address);
            if (t === undefined) return;
            const validator = nodes[aimed ? aimed.v : a.v];
            const reporter = a.reporter < nodes.length ? nodes[a.reporter] : sys.stranger;
            const send = () => sys.taskLedger.connect(reporter).refuteFalseValidation(t.id, validator.address, resultOf(t.id), MINED);
            const outcome = await act("report", send);
            if (outcome.ok && aimed) madeUp.splice(madeUp.indexOf(aimed), 1);
            if (outcome.ok) await replay("report", "TaskLedgerNoValidation", send);
            return;
          }
          case "vote": {
            const t = pickTask(a.t, disputed);
            if (t === undefined) return;
            // Seal 0 is a vote to uphold (the executor's seal) with made-up evidence (refutable once the dispute is
            // over), any other a vote to invalidate with that seal.
            const invalid = a.seal !== 0;
            const evidence = invalid ? votedSeal(t.id, a.seal, a.v) : ethers.id(`vote ${t.id} ${a.v}`);
            const send = () => sys.taskLedger.connect(nodes[a.v]).vote(t.id, invalid, evidence, MINED);
            const outcome = await act("vote", send);
            if (outcome.ok && !invalid) madeUp.push({ id: t.id, v: a.v });
            if (outcome.ok) {
              const open = Number((await sys.taskLedger.disputeOf(t.id)).status) === DisputeStatus.Open;
              await replay("vote", open ? "TaskLedgerAlreadyValidated" : "TaskLedgerNoOpenDispute", send);
            }
            return;
          }
          case "resolve": {
            const t = pickTask(a.t, disputed);
            if (t === undefined) return;
            await act("resolve", () => sys.taskLedger.connect(sys.stranger).resolveDispute(t.id));
            return;
          }
          case "expireTask": {
            const t = pickTask(a.t, assigned);
            if (t === undefined) return;
            await act("expireTask", () => sys.taskLedger.connect(sys.stranger).expireTask(t.id));
            return;
          }
          case "stake":
            await act("stake", () => sys.registry.connect(ctx.providerOf(a.n)).stake(nodes[a.n].address, BigInt(a.amount) * TOKEN));
            return;
          case "unstake": {
            const address = nodes[a.n].address;
            const stake = (await sys.registry.isRegistered(address)) ? (await sys.registry.getNode(address)).stake : 0n;
            const excess = stake - minStakeFor(CPU_NODE);
            const amount = excess > 0n ? (excess * BigInt(a.percent) + 99n) / 100n : TOKEN;
            await act("unstake", () => sys.registry.connect(ctx.providerOf(a.n)).unstake(address, amount));
            return;
          }
          case "withdraw":
            await act("withdraw", () => sys.registry.connect(sys.stranger).withdraw(nodes[a.n].address));
            return;
          case "deregister":
            await act("deregister", () => sys.registry.connect(ctx.providerOf(a.n)).deregisterNode(nodes[a.n].address));
            return;
          case "register": {
            if (await sys.registry.isRegistered(nodes[a.n].address)) {
              stats.record("register", { ok: false, error: "(already registered: skipped)" });
              return;
            }
            const stake = minStakeFor(CPU_NODE) + BigInt(a.extra) * TOKEN;
            await act("register", () => registerNode(connection, sys, ctx.providerOf(a.n), nodes[a.n], CPU_NODE, stake));
            return;
          }
          case "leave": {
            const runId = pick(runIds, a.run)!;
            await act("leave", () => sys.trainingRuns.connect(nodes[a.n]).leaveRun(runId, nodes[a.n].address));
            return;
          }
          case "slash":
            await act("slash", () =>
              sys.registry.connect(sys.slasher).slash(nodes[a.n].address, BigInt(a.amount) * TOKEN, ethers.id("test")),
            );
            return;
          case "fund": {
            const runId = pick(runIds, a.run)!;
            await act("fund", () => sys.trainingRuns.connect(sys.stranger).fundRun(runId, BigInt(a.amount) * TOKEN));
            return;
          }
          case "newRun": {
            const outcome = await act("newRun", () =>
              sys.trainingRuns.connect(sys.buyer).createRun({
                master: sys.master.address,
                pricePerUnit: 2n * TOKEN,
                maxMembers: 3,
                budget: BigInt(a.budget) * TOKEN,
                discoveryURI: "https://discovery.computenet.test",
                requirements: NO_REQUIREMENTS,
              }),
            );
            if (outcome.ok) runIds.push(await sys.trainingRuns.runCount());
            return;
          }
          case "startRun":
            await act("startRun", () => sys.trainingRuns.connect(sys.buyer).startRun(pick(runIds, a.run)!));
            return;
          case "completeRun":
            await act("completeRun", () => sys.trainingRuns.connect(sys.buyer).completeRun(pick(runIds, a.run)!));
            return;
          case "cancelRun":
            await act("cancelRun", () => sys.trainingRuns.connect(sys.buyer).cancelRun(pick(runIds, a.run)!));
            return;
          case "wait":
            await time.increase(a.seconds);
            return;
          case "longWait":
            await time.increase(a.days * 86_400);
            return;
          case "claim": {
            const n = nodes[a.n];
            const seed = a.wrongSeed ? ethers.id("not the seed") : (ctx.given.seeds.get(n.address) ?? ethers.id("no seed"));
            const provider = await sys.registry.providerOf(n.address);
            const before = provider === ethers.ZeroAddress ? 0n : await sys.token.balanceOf(provider);
            const send = () => sys.settlement.connect(sys.stranger).claim(EPOCH, n.address, seed, MINED);
            const outcome = await act("claim", send);
            if (!outcome.ok) return;
            // The provider receives exactly what the claim says it paid, and what claimOf reports.
            const event = outcome.receipt.logs
              .map((log) => sys.settlement.interface.parseLog(log as Log))
              .find((parsed) => parsed?.name === "Claimed")!;
            const recorded = await sys.settlement.claimOf(EPOCH, n.address);
            expect([recorded.work, recorded.reward], "claimOf = Claimed").to.deep.equal([event.args.work, event.args.reward]);
            if (provider !== ethers.ZeroAddress) {
              expect((await sys.token.balanceOf(provider)) - before, "provider paid work + reward").to.equal(
                event.args.work + event.args.reward,
              );
            }
            if (event.args.reward > 0n) stats.record("claim with reward", outcome);
            // Replayed after the Claim phase the claim is refused for the phase; inside it, for being settled.
            const next = BigInt(await time.latest()) + 1n;
            await time.setNextBlockTimestamp(next);
            await replay("claim", next >= timeline.claimEnd ? "SettlementWrongPhase" : "SettlementAlreadySettled", send);
            return;
          }
          case "expireClaim":
            await act("expireClaim", () => sys.settlement.connect(sys.stranger).expire(EPOCH, nodes[a.n].address));
            return;
          case "fixEmission":
            await act("fixEmission", () => sys.rewardVault.connect(sys.stranger).fixEmission(BigInt(a.epoch)));
            return;
          case "returnUnclaimed":
            await act("returnUnclaimed", () => sys.rewardVault.connect(sys.stranger).returnUnclaimed(BigInt(a.epoch)));
            return;
          case "transfer": {
            const from = ctx.actors[a.from % ctx.actors.length];
            const to = ctx.actors[a.to % ctx.actors.length];
            await act("transfer", () => sys.token.connect(from).transfer(to.address, BigInt(a.amount) * TOKEN));
            return;
          }
        }
      };

      const phases: Array<[keyof typeof sequence, bigint | undefined]> = [
        ["work", undefined],
        ["dispute", await phaseStart(sys, EPOCH, EpochPhase.Dispute)],
        ["claim", await phaseStart(sys, EPOCH, EpochPhase.Claim)],
        ["closed", await phaseStart(sys, EPOCH, EpochPhase.Closed)],
      ];
      for (const [name, start] of phases) {
        if (start !== undefined && BigInt(await time.latest()) < start) await time.increaseTo(start);
        for (const [i, a] of sequence[name].entries()) {
          await step(a);
          const previous = last;
          last = await observe(ctx, ghost);
          checkDisputeEdges(previous, last, `${name} #${i} ${stable(a)}`);
          checks++;
          await checkInvariants(ctx, ghost, last, `${name} #${i} ${stable(a)}`);
        }
      }
    });

    const details = await checkProperty("keeps every token accounted for", FILE, property, NUM_RUNS);
    console.log(`      ${details.numRuns} sequences (seed ${details.seed}), ${checks} invariant checks; actions:\n${stats}`);
    if (replaying()) return;
    // Not vacuous: the sequences did pay work and rewards, move escrow and stake, and replay what must not repeat.
    for (const kind of ["task", "complete", "validate", "claim", "claim with reward", "slash", "expireClaim", "report"]) {
      expect(stats.ok(kind), `no ${kind} succeeded`).to.be.greaterThan(0);
    }
    for (const kind of ["claim (replayed)", "validate (replayed)", "report (replayed)"]) {
      expect(stats.total(kind), `no ${kind}`).to.be.greaterThan(0);
    }
  });
});
