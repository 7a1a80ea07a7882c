import { createRequire } from "node:module";
import hardhatToolboxMochaEthers from "@nomicfoundation/hardhat-toolbox-mocha-ethers";
import { configVariable, defineConfig } from "hardhat/config";

// Hardhat would download solc, and these machines (and many CI runners) have no
// route to the compiler mirror. The `solc` npm package ships solcjs; we point
// every build profile at it so a build never needs the network.
const require = createRequire(import.meta.url);
const solcPath = require.resolve("solc/soljson.js");
const solcVersion: string = require("solc/package.json").version;

// One compiler setting for tests, gas reports and deployments, so that the gas
// figures we publish are the gas users pay.
const compiler = {
  version: solcVersion,
  path: solcPath,
  settings: {
    evmVersion: "cancun",
    viaIR: true,
    optimizer: { enabled: true, runs: 200 },
  },
};

// Settlement and the RewardVault run on every claim and are small, so they are optimized for execution over
// size (a few kilobytes more bytecode, about 1,000 gas less per claim). Same overrides in every profile.
const claimPath = { ...compiler, settings: { ...compiler.settings, optimizer: { enabled: true, runs: 1_000_000 } } };
const profile = {
  compilers: [compiler],
  overrides: { "contracts/Settlement.sol": claimPath, "contracts/RewardVault.sol": claimPath },
};

export default defineConfig({
  plugins: [hardhatToolboxMochaEthers],
  solidity: {
    profiles: {
      default: profile,
      production: profile,
    },
  },
  paths: {
    tests: { mocha: "test" },
    // Ignition's journals (ignition/deployments/<id>/). COMPUTENET_IGNITION_DIR puts them elsewhere: the tests
    // that deploy to a local node posing as Arbitrum Sepolia (chain-421614) keep theirs in a temporary folder.
    ...(process.env.COMPUTENET_IGNITION_DIR ? { ignition: process.env.COMPUTENET_IGNITION_DIR } : {}),
  },
  // Contract verification (hardhat-verify, enabled by the toolbox): `npx hardhat ignition verify chain-421614
  // --network arbitrumSepolia`. Etherscan's API v2 takes one key for every chain it serves, Arbiscan included
  // (hardhat's built-in chain descriptors name Arbiscan for 42161 and 421614); the key is read only when a
  // verification runs. Blockscout and Sourcify need no key and stay enabled (their defaults).
  verify: {
    etherscan: {
      apiKey: configVariable("ETHERSCAN_API_KEY"),
    },
  },
  typechain: {
    outDir: "typechain-types",
  },
  networks: {
    // The chain `hardhat node` serves for the devnet and the keepers' tests: automine, plus a block every
    // second like an L2 sequencer, so that `block.timestamp` (and with it the epoch phase every view and gas
    // estimate sees) follows the wall clock even while nobody sends transactions.
    devnode: {
      type: "edr-simulated",
      chainType: "generic",
      mining: { auto: true, interval: 1000 },
      // Blocks in the same second share its timestamp, as on Arbitrum; otherwise every automined block
      // pushes the chain one second further ahead of the wall clock.
      allowBlocksWithSameTimestamp: true,
    },
    // A `npx hardhat node --hostname 127.0.0.1` (or `npm run node`); LOCALHOST_RPC_URL points elsewhere
    // (the devnet and the deploy test use other ports).
    localhost: {
      type: "http",
      chainType: "generic",
      url: process.env.LOCALHOST_RPC_URL ?? "http://127.0.0.1:8545",
    },
    arbitrumSepolia: {
      type: "http",
      chainType: "generic",
      chainId: 421614,
      url: configVariable("ARBITRUM_SEPOLIA_RPC_URL"),
      accounts: [configVariable("DEPLOYER_PRIVATE_KEY")],
    },
    arbitrumOne: {
      type: "http",
      chainType: "generic",
      chainId: 42161,
      url: configVariable("ARBITRUM_ONE_RPC_URL"),
      accounts: [configVariable("DEPLOYER_PRIVATE_KEY")],
    },
  },
});
