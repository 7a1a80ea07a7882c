import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import ChallengeBoardModule from "./ChallengeBoard.js";
import MinerRegistryModule from "./MinerRegistry.js";

/** Runs, escrow and membership; links itself into the registry (which asks it before deregistration). */
export default buildModule("TrainingRunsModule", (m) => {
  const { token, registry } = m.useModule(MinerRegistryModule);
  const { challengeBoard } = m.useModule(ChallengeBoardModule);
  const admin = m.getParameter("admin", m.getAccount(0));

  const trainingRuns = m.contract("TrainingRuns", [admin, token, registry, challengeBoard]);
  m.call(registry, "setTrainingRuns", [trainingRuns]);
  return { trainingRuns };
});
