/**
 * Grants VALIDATOR_ROLE on ChallengeBoard (hardware challenges) and on ProofOfCompute (the bootstrap set of
 * PoC verdict givers) to each address in VALIDATORS, as the network's deployer (the admin of both by default):
 *
 *   VALIDATORS=0xA...,0xB... npm run grant-validators -- --network arbitrumSepolia
 *
 * Reads the addresses from `deployments/<network>.json` (COMPUTENET_DEPLOYMENTS_ROOT: `<root>/deployments/`),
 * refuses a deployment of another chain, and skips a grant already made: running it twice sends nothing.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { getAddress } from "ethers";
import { network } from "hardhat";
import { ChallengeBoard__factory, ProofOfCompute__factory } from "../typechain-types/index.js";
import { deploymentPath, readDeployment } from "./lib/deployments.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const raw = (process.env.VALIDATORS ?? "").split(",").map((s) => s.trim()).filter(Boolean);
if (raw.length === 0) throw new Error("VALIDATORS: give the validator addresses, comma-separated (VALIDATORS=0xA...,0xB...)");
const validators = raw.map((text) => {
  try {
    return getAddress(text);
  } catch {
    throw new Error(`VALIDATORS: ${text} is not an address`);
  }
});

const { ethers, networkName } = await network.create();
const file = deploymentPath(process.env.COMPUTENET_DEPLOYMENTS_ROOT ?? root, networkName);
const deployment = await readDeployment(file);
const chainId = Number((await ethers.provider.getNetwork()).chainId);
if (chainId !== deployment.chainId) {
  throw new Error(`${file} is for chain ${deployment.chainId}, but --network ${networkName} is chain ${chainId}`);
}
const [admin] = await ethers.getSigners();
console.log(`Granting VALIDATOR_ROLE on ${networkName} (chain ${chainId}) as ${admin.address}`);

const contracts = [
  ["ChallengeBoard", ChallengeBoard__factory.connect(deployment.contracts.ChallengeBoard.address, admin)],
  ["ProofOfCompute", ProofOfCompute__factory.connect(deployment.contracts.ProofOfCompute.address, admin)],
] as const;
for (const [name, contract] of contracts) {
  const role = await contract.VALIDATOR_ROLE();
  if (!(await contract.hasRole(await contract.DEFAULT_ADMIN_ROLE(), admin.address))) {
    throw new Error(`${admin.address} is not the admin of ${name} ${await contract.getAddress()}: use the admin's key (DEPLOYER_PRIVATE_KEY)`);
  }
  for (const validator of validators) {
    if (await contract.hasRole(role, validator)) {
      console.log(`  ${name.padEnd(15)} ${validator} already holds it`);
      continue;
    }
    const receipt = await (await contract.grantRole(role, validator)).wait();
    console.log(`  ${name.padEnd(15)} ${validator} granted (tx ${receipt!.hash}, block ${receipt!.blockNumber})`);
  }
}
