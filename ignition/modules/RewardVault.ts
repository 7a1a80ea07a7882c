import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import { id } from "ethers";
import EpochManagerModule from "./EpochManager.js";
import MinerRegistryModule from "./MinerRegistry.js";

const TOKEN = 10n ** 18n;

/**
 * Per-epoch retention for a four-year half-life with daily epochs: `1e18 × 2^(-1/1460)`, rounded to the
 * nearest integer (999525354337060160.396…). Raised to the 1460th power it gives 0.49999999999999971, so the
 * emission of epoch 1461 is half that of epoch 1 to 15 significant digits. Recompute it for other epoch
 * lengths: with `h` epochs per half-life, `retentionWad = round(1e18 × 2^(-1/h))`.
 */
export const FOUR_YEAR_HALF_LIFE_DAILY = 999_525_354_337_060_160n;

/**
 * Epoch reward emission and the protocol's slashed funds. The vault mints rewards (it gets the token's
 * MINTER_ROLE) and receives slashed stake (it becomes the registry's treasury). Both calls are made by the
 * deployer, which must hold the token's and the registry's admin role (the default: account 0 is admin of all).
 */
export default buildModule("RewardVaultModule", (m) => {
  const { token, registry } = m.useModule(MinerRegistryModule);
  const { epochManager } = m.useModule(EpochManagerModule);
  const admin = m.getParameter("admin", m.getAccount(0));
  const initialEmission = m.getParameter("initialEmission", 10_000n * TOKEN);
  const retentionWad = m.getParameter("retentionWad", FOUR_YEAR_HALF_LIFE_DAILY);

  const rewardVault = m.contract("RewardVault", [admin, token, epochManager, initialEmission, retentionWad]);
  m.call(token, "grantRole", [id("MINTER_ROLE"), rewardVault], { id: "GrantVaultMinterRole" });
  m.call(registry, "setTreasury", [rewardVault], { id: "SetVaultAsTreasury" });
  return { rewardVault };
});
