import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import MinerRegistryModule from "./MinerRegistry.js";

/** Validators' challenge results. Validators are granted VALIDATOR_ROLE by the admin after deployment. */
export default buildModule("ChallengeBoardModule", (m) => {
  const { registry } = m.useModule(MinerRegistryModule);
  const admin = m.getParameter("admin", m.getAccount(0));
  const requiredApprovals = m.getParameter("requiredApprovals", 1n);
  const requiredRejections = m.getParameter("requiredRejections", 1n);
  const retryCooldown = m.getParameter("retryCooldown", 3600n);

  const challengeBoard = m.contract("ChallengeBoard", [
    admin,
    registry,
    requiredApprovals,
    requiredRejections,
    retryCooldown,
  ]);
  return { challengeBoard };
});
