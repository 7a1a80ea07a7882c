import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import { id } from "ethers";
import EpochManagerModule from "./EpochManager.js";
import MinerRegistryModule from "./MinerRegistry.js";
import ProofOfComputeModule from "./ProofOfCompute.js";
import RewardVaultModule from "./RewardVault.js";
import TaskLedgerModule from "./TaskLedger.js";

/**
 * Deferred claims: each node's work (from the runs' escrow, through the ledger) and reward (minted by the vault)
 * after a sampled check of its validation duties. Settlement gets the ledger's SETTLEMENT_ROLE and the vault's
 * PAYER_ROLE, granted by the deployer, which must hold both contracts' admin role (the default: account 0 is
 * admin of all). The ledger's own PAYER_ROLE (accusers' bounties) is granted by the TaskLedger module.
 *
 * `sampleSize`: tasks drawn by each claim's duty check (at most 32). Each draw costs a claim a few thousand
 * gas, so it stays small; 8 draws catch a node that skips half of duties it has with probability q per task
 * with probability 1 − (1 − q/2)^8 per epoch, and a caught node loses its whole reward share of the epoch.
 */
export default buildModule("SettlementModule", (m) => {
  const { registry } = m.useModule(MinerRegistryModule);
  const { epochManager } = m.useModule(EpochManagerModule);
  const { proofOfCompute } = m.useModule(ProofOfComputeModule);
  const { taskLedger } = m.useModule(TaskLedgerModule);
  const { rewardVault } = m.useModule(RewardVaultModule);
  const admin = m.getParameter("admin", m.getAccount(0));
  const sampleSize = m.getParameter("sampleSize", 8n);

  const settlement = m.contract("Settlement", [
    admin,
    epochManager,
    proofOfCompute,
    taskLedger,
    rewardVault,
    registry,
    sampleSize,
  ]);
  m.call(taskLedger, "grantRole", [id("SETTLEMENT_ROLE"), settlement], { id: "GrantSettlementRole" });
  m.call(rewardVault, "grantRole", [id("PAYER_ROLE"), settlement], { id: "GrantSettlementPayerRole" });
  return { settlement };
});
