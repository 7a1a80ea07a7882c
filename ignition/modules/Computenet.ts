import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import ChallengeBoardModule from "./ChallengeBoard.js";
import EpochManagerModule from "./EpochManager.js";
import MinerRegistryModule from "./MinerRegistry.js";
import ProofOfComputeModule from "./ProofOfCompute.js";
import RewardVaultModule from "./RewardVault.js";
import SettlementModule from "./Settlement.js";
import TaskLedgerModule from "./TaskLedger.js";
import TrainingRunsModule from "./TrainingRuns.js";

/**
 * The whole computenet system. Tests, the gas report, the devnet and real deployments all deploy
 * through this one module, so what auditors read is what runs.
 */
export default buildModule("ComputenetModule", (m) => {
  const { token, registry } = m.useModule(MinerRegistryModule);
  const { challengeBoard } = m.useModule(ChallengeBoardModule);
  const { trainingRuns } = m.useModule(TrainingRunsModule);
  const { epochManager } = m.useModule(EpochManagerModule);
  const { proofOfCompute } = m.useModule(ProofOfComputeModule);
  const { rewardVault } = m.useModule(RewardVaultModule);
  const { taskLedger } = m.useModule(TaskLedgerModule);
  const { settlement } = m.useModule(SettlementModule);
  return {
    token,
    registry,
    challengeBoard,
    trainingRuns,
    epochManager,
    proofOfCompute,
    rewardVault,
    taskLedger,
    settlement,
  };
});
