/**
 * `hardhat run bench/gas-scale.ts`: how two per-epoch calls grow with the network, on the in-process EVM and
 * the test system (test/helpers), measured as test/Settlement.test.ts and test/TaskLedger.test.ts measure it:
 *
 * - claim: a steady-state Settlement.claim (the epoch's beacon and emission already fixed, the run's escrow
 *   already paid by an earlier claim) by a node that executed a task, in an epoch of 20 tasks where every
 *   node holds power (100 each), is enrolled and validates its duties; among 200 nodes and among 5;
 * - createTask: the largest of 8 TaskLedger.createTask calls in a run whose 200 members are enrolled with
 *   power 100 + i, and the same in a run of 5 (the epoch's task list warmed first).
 *
 * Writes { claimGasAt5, claimGasAt200, createTaskGasAt5, createTaskGasAt200 } as JSON to $BENCH_OUT (or
 * prints it).
 */
import { writeFile } from "node:fs/promises";
import { network } from "hardhat";
import type { Wallet } from "ethers";
import {
  type Account,
  CPU_NODE,
  type System,
  createRun,
  deploySystem,
  joinRun,
} from "../test/helpers/system.js";
import { givePower, goToPhase, validatedNodes } from "../test/helpers/epochs.js";
import { EpochPhase, TOKEN } from "../scripts/lib/protocol.js";

const connection = await network.create();
const { ethers } = connection;

const NO_REQUIREMENTS = { minGpuCount: 0, minGpuMemoryMB: 0, minCpuCores: 0, minRamMB: 0, minStorageGB: 0, allowedGpuModels: [] as string[] };

async function gasOf(tx: Promise<{ wait(): Promise<{ gasUsed: bigint } | null> }>): Promise<bigint> {
  return (await (await tx).wait())!.gasUsed;
}

// The tests' spec, result and evidence hashes: calldata and block hashes (hence beacons, draws and duties)
// are then the tests' own, and so are the figures.
const coder = ethers.AbiCoder.defaultAbiCoder();
const evidence = (taskId: bigint, node: string) => ethers.keccak256(coder.encode(["uint256", "address"], [taskId, node]));

/** Creates a task in `runId` as the master; its assignee (drawn by power) and gas. */
async function createTask(sys: System, runId: bigint, spec: string, units: bigint): Promise<{ id: bigint; assignee: string; gas: bigint }> {
  const receipt = (await (await sys.taskLedger.connect(sys.master).createTask(runId, spec, units)).wait())!;
  for (const log of receipt.logs) {
    const parsed = sys.taskLedger.interface.parseLog(log);
    if (parsed?.name === "TaskCreated") return { id: parsed.args.taskId, assignee: parsed.args.assignee, gas: receipt.gasUsed };
  }
  throw new Error("no TaskCreated event");
}

/** Gas of a steady-state claim among `count` nodes (see the header). */
async function claimGas(count: number): Promise<bigint> {
  const epoch = 1n;
  const sys = await deploySystem(connection);
  const nodes = await validatedNodes(connection, sys, count);
  const byAddress = new Map<string, Wallet>(nodes.map((n) => [n.address, n]));
  const runId = await createRun(sys, { maxMembers: count, budget: 100_000n * TOKEN });
  await sys.trainingRuns.connect(sys.buyer).startRun(runId);
  for (const [i, node] of nodes.entries()) await joinRun(connection, sys, runId, node, BigInt(i + 1));
  const given = await givePower(connection, sys, epoch, nodes.map((node) => ({ node, count: 100n })));
  const seed = (node: string) => given.seeds.get(node)!;
  for (const node of nodes) await sys.taskLedger.enroll(runId, node.address);
  const tasks = [];
  for (let i = 0; i < 20; i++) tasks.push(await createTask(sys, runId, ethers.id(`spec ${i}`), 3n));
  for (const task of tasks) await sys.taskLedger.connect(byAddress.get(task.assignee)!).completeTask(task.id, ethers.id(`result ${task.id}`));
  for (const node of nodes) {
    for (const task of tasks) {
      if (!(await sys.taskLedger.isValidationDuty(task.id, node.address, seed(node.address)))) continue;
      await sys.taskLedger.connect(node).submitValidation(task.id, true, evidence(task.id, node.address));
    }
  }
  await goToPhase(connection, sys, epoch, EpochPhase.Claim);
  const executors = [...new Set(tasks.map((t) => t.assignee))];
  if (executors.length < 2) throw new Error(`claimGas(${count}): 20 tasks went to fewer than two nodes`);
  await sys.settlement.claim(epoch, executors[0], seed(executors[0]));
  const [forfeited] = await sys.settlement.checkDuties(epoch, executors[1], seed(executors[1]));
  if (forfeited) throw new Error(`claimGas(${count}): the measured node forfeits: its duties were not all done`);
  return gasOf(sys.settlement.claim(epoch, executors[1], seed(executors[1])));
}

/** The largest gas of 8 createTask calls with 5 and with 200 enrolled nodes (see the header). */
async function createTaskGas(): Promise<{ at5: bigint; at200: bigint }> {
  const sys = await deploySystem(connection);
  const nodes = await validatedNodes(connection, sys, 200, sys.providers[0], CPU_NODE);
  const big = await createRun(sys, { requirements: NO_REQUIREMENTS, maxMembers: 250, budget: 10_000n * TOKEN });
  const small = await createRun(sys, { requirements: NO_REQUIREMENTS, maxMembers: 5, budget: 10_000n * TOKEN });
  for (const runId of [big, small]) await sys.trainingRuns.connect(sys.master).startRun(runId);
  for (const [i, node] of nodes.entries()) {
    await joinRun(connection, sys, big, node as Account, BigInt(i + 1));
    if (i < 5) await joinRun(connection, sys, small, node as Account, BigInt(i + 1));
  }
  // Power in epoch 2 (epoch 1 went by during the set-up), judged by the bootstrap validators.
  await givePower(connection, sys, 2n, nodes.map((node, i) => ({ node, count: BigInt(100 + i) })));
  for (const node of nodes) await sys.taskLedger.enroll(big, node.address);
  for (const node of nodes.slice(0, 5)) await sys.taskLedger.enroll(small, node.address);
  const next = async (runId: bigint) => createTask(sys, runId, ethers.id(`task spec ${(await sys.taskLedger.taskCount()) + 1n}`), 1n);
  const largest = async (runId: bigint) => {
    let max = 0n;
    for (let i = 0; i < 8; i++) {
      const { gas } = await next(runId);
      if (gas > max) max = gas;
    }
    return max;
  };
  await next(small);
  const at5 = await largest(small);
  const at200 = await largest(big);
  return { at5, at200 };
}

const claimGasAt5 = await claimGas(5);
const claimGasAt200 = await claimGas(200);
const createTask5v200 = await createTaskGas();
const result = {
  claimGasAt5: Number(claimGasAt5),
  claimGasAt200: Number(claimGasAt200),
  createTaskGasAt5: Number(createTask5v200.at5),
  createTaskGasAt200: Number(createTask5v200.at200),
};
console.log(JSON.stringify(result));
if (process.env.BENCH_OUT) await writeFile(process.env.BENCH_OUT, JSON.stringify(result));
