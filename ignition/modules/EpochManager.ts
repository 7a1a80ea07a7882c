import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import MinerRegistryModule from "./MinerRegistry.js";

const HOUR = 3600n;
const DAY = 24n * HOUR;

/**
 * The epoch clock: phases, beacons, seed commitments. `genesis` 0 starts epoch 1 at the deployment's block
 * time (Ignition cannot know it in advance); a later time (at most 30 days ahead) starts it there.
 */
export default buildModule("EpochManagerModule", (m) => {
  const { registry } = m.useModule(MinerRegistryModule);
  const admin = m.getParameter("admin", m.getAccount(0));
  const genesis = m.getParameter("genesis", 0n);
  const parameters = {
    epochLength: m.getParameter("epochLength", DAY),
    pocDuration: m.getParameter("pocDuration", HOUR),
    pocValidationDuration: m.getParameter("pocValidationDuration", HOUR),
    disputeWindow: m.getParameter("disputeWindow", 6n * HOUR),
    claimWindow: m.getParameter("claimWindow", 7n * DAY),
  };

  const epochManager = m.contract("EpochManager", [admin, registry, genesis, parameters]);
  return { epochManager };
});
