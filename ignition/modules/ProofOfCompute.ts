import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import ChallengeBoardModule from "./ChallengeBoard.js";
import EpochManagerModule from "./EpochManager.js";
import MinerRegistryModule from "./MinerRegistry.js";

/**
 * Proof of Compute and power. The bootstrap verdict givers are granted VALIDATOR_ROLE by the admin after
 * deployment. `acceptShareBps` (two thirds) and `maxShareBps` (30 %) are immutable: changing them means a new
 * deployment, never a change in the middle of an epoch.
 */
export default buildModule("ProofOfComputeModule", (m) => {
  const { registry } = m.useModule(MinerRegistryModule);
  const { challengeBoard } = m.useModule(ChallengeBoardModule);
  const { epochManager } = m.useModule(EpochManagerModule);
  const admin = m.getParameter("admin", m.getAccount(0));
  const acceptShareBps = m.getParameter("acceptShareBps", 6667n);
  const maxShareBps = m.getParameter("maxShareBps", 3000n);

  const proofOfCompute = m.contract("ProofOfCompute", [
    admin,
    epochManager,
    registry,
    challengeBoard,
    acceptShareBps,
    maxShareBps,
  ]);
  return { proofOfCompute };
});
