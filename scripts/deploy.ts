/**
 * Deploys the whole computenet system with the Ignition module `ComputenetModule` and writes
 * `deployments/<network>.json` (chain id, each contract's address and creation block).
 *
 *   npm run deploy -- --network localhost|arbitrumSepolia|arbitrumOne
 *
 * Module parameters are read from `ignition/parameters/<network>.json` when that file exists.
 * Re-running against the same chain resumes the same Ignition deployment: nothing is deployed twice.
 * On a local Hardhat node (chain 31337) the deployment id includes the node's genesis hash, so a
 * restarted node gets a fresh deployment instead of Ignition's journal of a chain that is gone.
 * COMPUTENET_DEPLOYMENTS_ROOT writes `<root>/deployments/<network>.json` elsewhere (used by tests).
 * COMPUTENET_PARAMETERS names another parameters file (the devnet's short epochs, test clusters).
 * COMPUTENET_IGNITION_DIR (read by hardhat.config.ts) keeps Ignition's journal in `<dir>/deployments/<id>/`
 * instead of `ignition/deployments/<id>/` (used by the tests that pose a local node as Arbitrum Sepolia).
 *
 * On Arbitrum the script prints the command that verifies the deployment's contracts afterwards
 * (`npx hardhat ignition verify chain-<id> --network <network>`; see README, "Deploying to Arbitrum Sepolia").
 */
import { existsSync } from "node:fs";
import { open } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { listTransactions } from "@nomicfoundation/ignition-core";
import hre, { artifacts, network } from "hardhat";
import ComputenetModule from "../ignition/modules/Computenet.js";
import {
  CONTRACT_NAMES,
  type ContractName,
  type DeployedContract,
  type Deployment,
  deploymentPath,
  writeDeployment,
} from "./lib/deployments.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const LOCAL_CHAIN_ID = 31337;

const connection = await network.create();
const { ethers, ignition, networkName, networkConfig } = connection;
const chainId = Number((await ethers.provider.getNetwork()).chainId);
const inProcess = networkConfig.type === "edr-simulated";

let deploymentId = `chain-${chainId}`;
if (chainId === LOCAL_CHAIN_ID && !inProcess) {
  const genesis = await ethers.provider.getBlock(0);
  deploymentId = `localhost-${genesis!.hash!.slice(2, 12)}`;
}
const parametersFile = process.env.COMPUTENET_PARAMETERS
  ? path.resolve(process.env.COMPUTENET_PARAMETERS)
  : path.join(root, "ignition", "parameters", `${networkName}.json`);
if (process.env.COMPUTENET_PARAMETERS && !existsSync(parametersFile)) {
  throw new Error(`COMPUTENET_PARAMETERS: no such file ${parametersFile}`);
}
const parameters = existsSync(parametersFile) ? parametersFile : {};

console.log(
  `Deploying computenet to ${networkName} (chain ${chainId})` +
    (typeof parameters === "string" ? ` with ${path.relative(root, parameters)}` : " with default parameters"),
);
const displayUi = !inProcess && process.stdout.isTTY === true;
const deployStarted = performance.now();
const elapsed = () => `${((performance.now() - deployStarted) / 1000).toFixed(1)} s`;
/** Futures of the module and its submodules (each counted once). */
function futureCount(module: { futures: Set<{ id: string }>; submodules: Set<unknown> }, seen = new Set<string>()): number {
  for (const future of module.futures) seen.add(future.id);
  for (const sub of module.submodules) futureCount(sub as typeof module, seen);
  return seen.size;
}
const totalFutures = futureCount(ComputenetModule as never);
// Progress without Ignition's terminal UI (piped output, the devnet, tests): one line on stderr per future
// Ignition's journal records as complete, with the elapsed time.
const progress = displayUi || inProcess ? undefined : followJournal(path.join(root, "ignition", "deployments", deploymentId, "journal.jsonl"));
console.error(`[deploy] started: ${totalFutures} futures (contracts and calls) of ComputenetModule`);
const deployed = await ignition
  .deploy(ComputenetModule, {
    parameters,
    deploymentId: inProcess ? undefined : deploymentId,
    displayUi,
  })
  .finally(() => progress?.stop());
console.error(`[deploy] done: ${totalFutures} futures in ${elapsed()}`);

/** Polls Ignition's journal and prints each future it records as complete. */
function followJournal(file: string): { stop(): Promise<void> } {
  let offset = 0;
  let rest = "";
  let done = 0;
  // A resumed deployment: what the journal already holds was done before; only new completions are shown.
  let quiet = existsSync(file);
  let reading: Promise<void> = Promise.resolve();
  const read = async () => {
    if (!existsSync(file)) return;
    const handle = await open(file, "r");
    try {
      for (;;) {
        const buffer = Buffer.alloc(64 * 1024);
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset);
        if (bytesRead === 0) break;
        offset += bytesRead;
        const lines = (rest + buffer.subarray(0, bytesRead).toString("utf8")).split("\n");
        rest = lines.pop() ?? "";
        for (const line of lines) {
          if (!line.includes("_EXECUTION_STATE_COMPLETE")) continue;
          try {
            const entry = JSON.parse(line) as { futureId?: string; type?: string; result?: { type?: string } };
            if (!entry.type?.endsWith("_EXECUTION_STATE_COMPLETE")) continue;
            done++;
            if (!quiet) console.error(`[deploy] ${done}/${totalFutures} ${entry.futureId} ${entry.result?.type === "SUCCESS" ? "done" : (entry.result?.type ?? "done").toLowerCase()} (${elapsed()})`);
          } catch {
            // a line being written
          }
        }
      }
    } finally {
      await handle.close();
    }
    if (quiet) {
      quiet = false;
      console.error(`[deploy] resuming: ${done}/${totalFutures} futures done before`);
    }
  };
  reading = read().catch(() => undefined);
  const timer = setInterval(() => {
    reading = reading.then(read).catch(() => undefined);
  }, 300);
  return {
    async stop() {
      clearInterval(timer);
      await (reading = reading.then(read).catch(() => undefined));
    },
  };
}

const addresses: Record<ContractName, string> = {
  ComputeToken: await deployed.token.getAddress(),
  MinerRegistry: await deployed.registry.getAddress(),
  ChallengeBoard: await deployed.challengeBoard.getAddress(),
  TrainingRuns: await deployed.trainingRuns.getAddress(),
  EpochManager: await deployed.epochManager.getAddress(),
  ProofOfCompute: await deployed.proofOfCompute.getAddress(),
  RewardVault: await deployed.rewardVault.getAddress(),
  TaskLedger: await deployed.taskLedger.getAddress(),
  Settlement: await deployed.settlement.getAddress(),
};

/** Creation block of each contract, from the transactions Ignition recorded in its journal. */
async function creationBlocks(): Promise<Record<string, number>> {
  const blocks: Record<string, number> = {};
  const deploymentDir = path.join(hre.config.paths.ignition, "deployments", deploymentId);
  const transactions = await listTransactions(deploymentDir, {
    loadArtifact: (name: string) => artifacts.readArtifact(name),
  });
  for (const tx of transactions) {
    if (tx.address === undefined || tx.status !== "SUCCESS") continue;
    const receipt = await ethers.provider.getTransactionReceipt(tx.txHash);
    if (receipt !== null) blocks[ethers.getAddress(tx.address)] = receipt.blockNumber;
  }
  return blocks;
}

const contracts = {} as Record<ContractName, DeployedContract>;
if (inProcess) {
  for (const name of CONTRACT_NAMES) contracts[name] = { address: addresses[name], block: 0 };
} else {
  const blocks = await creationBlocks();
  for (const name of CONTRACT_NAMES) {
    const block = blocks[addresses[name]];
    if (block === undefined) throw new Error(`no creation transaction recorded for ${name} at ${addresses[name]}`);
    if ((await ethers.provider.getCode(addresses[name])) === "0x") throw new Error(`${name} at ${addresses[name]} has no code`);
    contracts[name] = { address: addresses[name], block };
  }
}

const deployment: Deployment = {
  network: networkName,
  chainId,
  deploymentId,
  deployedAt: new Date().toISOString(),
  startBlock: Math.min(...CONTRACT_NAMES.map((name) => contracts[name].block)),
  contracts,
};

const registry = deployed.registry;
const board = deployed.challengeBoard;
const token = deployed.token;
const fmt = (wei: bigint) => `${ethers.formatUnits(wei, 18)} CNET`;
console.log("");
console.log(`computenet on ${networkName} (chain ${chainId})`);
for (const name of CONTRACT_NAMES) {
  console.log(`  ${name.padEnd(15)} ${contracts[name].address}  block ${contracts[name].block}`);
}
console.log(`  token supply     ${fmt(await token.totalSupply())} (cap ${fmt(await token.cap())})`);
console.log(
  `  minimum stake    ${fmt(await registry.minStakeBase())} + ${fmt(await registry.minStakePerGpu())} per GPU; ` +
    `unbonding ${Number(await registry.unbondingDelay()) / 3600} h; treasury ${await registry.treasury()}`,
);
console.log(
  `  challenges       ${await board.requiredApprovals()} approval(s) validate a node; ` +
    `retry after ${Number(await board.retryCooldown())} s`,
);
{
  const epochs = deployed.epochManager;
  const epoch = await epochs.currentEpoch();
  const p = await epochs.parametersOf(epoch === 0n ? 1n : epoch);
  // Whole hours as hours (the daily epochs of Arbitrum One), shorter phases in minutes or seconds.
  const h = (seconds: bigint) => {
    const s = Number(seconds);
    return s % 3600 === 0 ? `${s / 3600} h` : s % 60 === 0 ? `${s / 60} min` : `${s} s`;
  };
  console.log(
    `  epochs           ${h(p.epochLength)} each (PoC ${h(p.pocDuration)}, PoC validation ${h(p.pocValidationDuration)}, ` +
      `dispute ${h(p.disputeWindow)}, claim ${h(p.claimWindow)}); ` +
      `genesis ${new Date(Number(await epochs.genesis()) * 1000).toISOString()}, now epoch ${epoch}`,
  );
}
{
  const poc = deployed.proofOfCompute;
  const pct = (bps: bigint) => `${Number(bps) / 100} %`;
  console.log(
    `  proof of compute accepted above ${pct(await poc.acceptShareBps())} of verdict weight; ` +
      `one node's power capped at ${pct(await poc.maxShareBps())}`,
  );
}
{
  const vault = deployed.rewardVault;
  console.log(
    `  rewards          ${fmt(await vault.initialEmission())} in epoch 1, retention ${ethers.formatUnits(await vault.retentionWad(), 18)} per epoch; ` +
      `slashed stake goes to the vault`,
  );
}
{
  const p = await deployed.taskLedger.parameters();
  const pct = (bps: bigint) => `${Number(bps) / 100} %`;
  console.log(
    `  tasks            validation k ${Number(p.validationKBps) / 10_000}; invalid work slashes ${pct(p.executorSlashBps)} ` +
      `of the executor's stake (${pct(p.accuserRewardBps)} of it to the accuser), a false accusation ${pct(p.falseAccuserSlashBps)}, ` +
      `a false validation ${pct(p.falseValidationSlashBps)}`,
  );
}
console.log(`  claims           each claim checks ${await deployed.settlement.sampleSize()} tasks drawn from the epoch's claim beacon`);

if (inProcess) {
  console.log("\nIn-process network: the chain ends with this process, so no deployment file was written.");
} else {
  const file = deploymentPath(process.env.COMPUTENET_DEPLOYMENTS_ROOT ?? root, networkName);
  await writeDeployment(file, deployment);
  console.log(`\nWrote ${path.relative(process.cwd(), file)}`);
  console.log(`Ignition's journal: ${path.relative(process.cwd(), path.join(hre.config.paths.ignition, "deployments", deploymentId))}`);
  if (chainId !== LOCAL_CHAIN_ID) {
    console.log(`Verify the contracts (ETHERSCAN_API_KEY): npx hardhat ignition verify ${deploymentId} --network ${networkName}`);
  }
}
