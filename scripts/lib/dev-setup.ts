/**
 * Roles and funds for a local development chain (devnet and process-level tests): who plays which part,
 * with the well-known Hardhat development accounts. Never used on a real network.
 */
import { Wallet } from "ethers";
import type { Chain } from "../../keepers/shared/chain.js";
import { ProofOfCompute__factory } from "../../typechain-types/index.js";
import { devPrivateKey } from "./dev-accounts.js";
import { TOKEN } from "./protocol.js";

/** Development account indices of each part. */
export const DEV_ROLES = {
  admin: 0,
  validators: [1, 2],
  buyer: 3,
  master: 4,
  /** Provider i pays the stake of miner i; node i is the miner's node key. */
  providers: [5, 6, 7, 8, 9],
  nodes: [10, 11, 12, 13, 14],
} as const;

export interface DevKeys {
  admin: string;
  validators: string[];
  buyer: string;
  master: string;
  providers: string[];
  nodes: string[];
}

export function devKeys(): DevKeys {
  return {
    admin: devPrivateKey(DEV_ROLES.admin),
    validators: DEV_ROLES.validators.map(devPrivateKey),
    buyer: devPrivateKey(DEV_ROLES.buyer),
    master: devPrivateKey(DEV_ROLES.master),
    providers: DEV_ROLES.providers.map(devPrivateKey),
    nodes: DEV_ROLES.nodes.map(devPrivateKey),
  };
}

/**
 * Grants VALIDATOR_ROLE to the development validators (on the ChallengeBoard: hardware challenges; on
 * ProofOfCompute: the bootstrap verdict set) and gives the buyer and the providers tokens.
 * `chain` must be connected with the admin key (the deployer, which holds the initial supply).
 * Idempotent: skips what is already done.
 */
export async function setupDevChain(chain: Chain, keys: DevKeys = devKeys(), tokensEach = 1_000_000n * TOKEN): Promise<void> {
  const { challengeBoard, token } = chain.contracts;
  const proofOfCompute = ProofOfCompute__factory.connect(
    chain.deployment.contracts.ProofOfCompute.address,
    challengeBoard.runner,
  );
  for (const contract of [challengeBoard, proofOfCompute]) {
    const role = await contract.VALIDATOR_ROLE();
    for (const key of keys.validators) {
      const address = new Wallet(key).address;
      if (!(await contract.hasRole(role, address))) await (await contract.grantRole(role, address)).wait();
    }
  }
  for (const key of [keys.buyer, ...keys.providers]) {
    const address = new Wallet(key).address;
    const balance = await token.balanceOf(address);
    if (balance < tokensEach) await (await token.transfer(address, tokensEach - balance)).wait();
  }
}
