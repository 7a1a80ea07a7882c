/**
 * The well-known development accounts of a local Hardhat node (mnemonic "test test ... junk"): funded
 * with ETH on every `hardhat node`, public to the world — for the devnet and tests only, never on a real
 * network.
 */
import { HDNodeWallet, Mnemonic } from "ethers";

export const DEV_MNEMONIC = "test test test test test test test test test test test junk";

/** Private key of development account `index` (m/44'/60'/0'/0/index). */
export function devPrivateKey(index: number): string {
  return HDNodeWallet.fromMnemonic(Mnemonic.fromPhrase(DEV_MNEMONIC), `m/44'/60'/0'/0/${index}`).privateKey;
}
