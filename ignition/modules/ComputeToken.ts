import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

const TOKEN = 10n ** 18n;

/** The ERC-20 of stake, escrow and rewards. */
export default buildModule("ComputeTokenModule", (m) => {
  const admin = m.getParameter("admin", m.getAccount(0));
  const initialHolder = m.getParameter("initialHolder", m.getAccount(0));
  const initialSupply = m.getParameter("initialSupply", 100_000_000n * TOKEN);
  const supplyCap = m.getParameter("supplyCap", 1_000_000_000n * TOKEN);

  const token = m.contract("ComputeToken", [admin, initialHolder, initialSupply, supplyCap]);
  return { token };
});
