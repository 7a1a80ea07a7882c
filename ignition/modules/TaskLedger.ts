import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import { id } from "ethers";
import EpochManagerModule from "./EpochManager.js";
import MinerRegistryModule from "./MinerRegistry.js";
import ProofOfComputeModule from "./ProofOfCompute.js";
import RewardVaultModule from "./RewardVault.js";
import TrainingRunsModule from "./TrainingRuns.js";

/**
 * Tasks of training runs: power-weighted assignment, validation, disputes, work pay. The ledger reserves, pays
 * and releases task pay in the runs' escrow (ESCROW_ROLE on TrainingRuns), slashes dishonest executors, false
 * accusers and false validators (SLASHER_ROLE on MinerRegistry) and pays accusers' bounties from the vault (PAYER_ROLE on RewardVault).
 * The three grants are made by the deployer, which must hold those contracts' admin role (the default: account 0
 * is admin of all). The ledger's own admin (`admin`) grants SETTLEMENT_ROLE later.
 */
export default buildModule("TaskLedgerModule", (m) => {
  const { registry } = m.useModule(MinerRegistryModule);
  const { trainingRuns } = m.useModule(TrainingRunsModule);
  const { epochManager } = m.useModule(EpochManagerModule);
  const { proofOfCompute } = m.useModule(ProofOfComputeModule);
  const { rewardVault } = m.useModule(RewardVaultModule);
  const admin = m.getParameter("admin", m.getAccount(0));
  const parameters = {
    validationKBps: m.getParameter("validationKBps", 20_000n),
    executorSlashBps: m.getParameter("executorSlashBps", 2_000n),
    falseAccuserSlashBps: m.getParameter("falseAccuserSlashBps", 500n),
    accuserRewardBps: m.getParameter("accuserRewardBps", 5_000n),
    falseValidationSlashBps: m.getParameter("falseValidationSlashBps", 1_000n),
  };

  const taskLedger = m.contract("TaskLedger", [
    admin,
    epochManager,
    trainingRuns,
    registry,
    proofOfCompute,
    rewardVault,
    parameters,
  ]);
  m.call(trainingRuns, "grantRole", [id("ESCROW_ROLE"), taskLedger], { id: "GrantLedgerEscrowRole" });
  m.call(registry, "grantRole", [id("SLASHER_ROLE"), taskLedger], { id: "GrantLedgerSlasherRole" });
  m.call(rewardVault, "grantRole", [id("PAYER_ROLE"), taskLedger], { id: "GrantLedgerPayerRole" });
  return { taskLedger };
});
