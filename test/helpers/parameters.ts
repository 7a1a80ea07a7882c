/**
 * Ignition parameter files (`ignition/parameters/<network>.json`) against a deployment: every value the file
 * sets, read back from the contracts. Used by the deploy tests for Arbitrum One and Sepolia.
 */
import { readFile } from "node:fs/promises";
import type { ContractRunner } from "ethers";
import {
  ChallengeBoard__factory,
  EpochManager__factory,
  MinerRegistry__factory,
  ProofOfCompute__factory,
  RewardVault__factory,
  Settlement__factory,
  TaskLedger__factory,
} from "../../typechain-types/index.js";

/** A parameter file's values: module → parameter → value ("123n" strings read as bigints). */
export type ParameterValues = Record<string, Record<string, bigint>>;

/** The modules whose every economic parameter the network files set (addresses are left to the operator). */
export const PARAMETER_MODULES = [
  "MinerRegistryModule",
  "ChallengeBoardModule",
  "EpochManagerModule",
  "ProofOfComputeModule",
  "RewardVaultModule",
  "TaskLedgerModule",
  "SettlementModule",
] as const;

export async function readParameterFile(file: string): Promise<ParameterValues> {
  const raw = JSON.parse(await readFile(file, "utf8")) as Record<string, Record<string, string>>;
  const values: ParameterValues = {};
  for (const [module, entries] of Object.entries(raw)) {
    values[module] = {};
    for (const [key, text] of Object.entries(entries)) {
      if (!/^\d+n$/.test(text)) throw new Error(`${file}: ${module}.${key} is not an Ignition bigint ("<digits>n"): ${text}`);
      values[module][key] = BigInt(text.slice(0, -1));
    }
  }
  return values;
}

/**
 * The deployed value of each parameter named in `wanted` (the parameter file), read from the contracts at
 * `addresses`. Throws on a parameter it does not know: a misspelt name in a file would otherwise be ignored
 * by Ignition and the module's default deployed instead.
 */
export async function deployedParameters(
  runner: ContractRunner,
  addresses: Record<"MinerRegistry" | "ChallengeBoard" | "EpochManager" | "ProofOfCompute" | "RewardVault" | "TaskLedger" | "Settlement", string>,
  wanted: ParameterValues,
): Promise<ParameterValues> {
  const registry = MinerRegistry__factory.connect(addresses.MinerRegistry, runner);
  const board = ChallengeBoard__factory.connect(addresses.ChallengeBoard, runner);
  const epochs = EpochManager__factory.connect(addresses.EpochManager, runner);
  const poc = ProofOfCompute__factory.connect(addresses.ProofOfCompute, runner);
  const vault = RewardVault__factory.connect(addresses.RewardVault, runner);
  const ledger = TaskLedger__factory.connect(addresses.TaskLedger, runner);
  const settlement = Settlement__factory.connect(addresses.Settlement, runner);
  const epochParameters = await epochs.parametersOf(1n);
  const ledgerParameters = await ledger.parameters();
  const readers: Record<string, Record<string, () => Promise<bigint>>> = {
    MinerRegistryModule: {
      minStakeBase: () => registry.minStakeBase(),
      minStakePerGpu: () => registry.minStakePerGpu(),
      unbondingDelay: () => registry.unbondingDelay(),
    },
    ChallengeBoardModule: {
      requiredApprovals: () => board.requiredApprovals(),
      requiredRejections: () => board.requiredRejections(),
      retryCooldown: () => board.retryCooldown(),
    },
    EpochManagerModule: {
      epochLength: async () => epochParameters.epochLength,
      pocDuration: async () => epochParameters.pocDuration,
      pocValidationDuration: async () => epochParameters.pocValidationDuration,
      disputeWindow: async () => epochParameters.disputeWindow,
      claimWindow: async () => epochParameters.claimWindow,
    },
    ProofOfComputeModule: {
      acceptShareBps: () => poc.acceptShareBps(),
      maxShareBps: () => poc.maxShareBps(),
    },
    RewardVaultModule: {
      initialEmission: () => vault.initialEmission(),
      retentionWad: () => vault.retentionWad(),
    },
    TaskLedgerModule: {
      validationKBps: async () => ledgerParameters.validationKBps,
      executorSlashBps: async () => ledgerParameters.executorSlashBps,
      falseAccuserSlashBps: async () => ledgerParameters.falseAccuserSlashBps,
      accuserRewardBps: async () => ledgerParameters.accuserRewardBps,
      falseValidationSlashBps: async () => ledgerParameters.falseValidationSlashBps,
    },
    SettlementModule: {
      sampleSize: () => settlement.sampleSize(),
    },
  };
  const deployed: ParameterValues = {};
  for (const [module, entries] of Object.entries(wanted)) {
    deployed[module] = {};
    for (const key of Object.keys(entries)) {
      const read = readers[module]?.[key];
      if (!read) throw new Error(`no reader for parameter ${module}.${key}: misspelt, or add it to test/helpers/parameters.ts`);
      deployed[module][key] = BigInt(await read());
    }
  }
  return deployed;
}
