import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import ComputeTokenModule from "./ComputeToken.js";

const TOKEN = 10n ** 18n;

/** Nodes, capabilities and stake. Slashed funds go to `treasury`. */
export default buildModule("MinerRegistryModule", (m) => {
  const { token } = m.useModule(ComputeTokenModule);
  const admin = m.getParameter("admin", m.getAccount(0));
  const treasury = m.getParameter("treasury", m.getAccount(0));
  const minStakeBase = m.getParameter("minStakeBase", 100n * TOKEN);
  const minStakePerGpu = m.getParameter("minStakePerGpu", 250n * TOKEN);
  const unbondingDelay = m.getParameter("unbondingDelay", 7n * 24n * 3600n);

  const registry = m.contract("MinerRegistry", [
    admin,
    token,
    treasury,
    minStakeBase,
    minStakePerGpu,
    unbondingDelay,
  ]);
  return { token, registry };
});
