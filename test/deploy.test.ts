/**
 * The deploy script against a real `hardhat node` over JSON-RPC: what `npm run deploy -- --network
 * localhost` does for operators, checked from the outside.
 */
import { expect } from "chai";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { JsonRpcProvider } from "ethers";
import { network } from "hardhat";
import ComputenetModule from "../ignition/modules/Computenet.js";
import {
  ComputeToken__factory,
  EpochManager__factory,
  MinerRegistry__factory,
  ProofOfCompute__factory,
  RewardVault__factory,
  Settlement__factory,
  TaskLedger__factory,
  TrainingRuns__factory,
} from "../typechain-types/index.js";
import { CONTRACT_NAMES, parseDeployment, readDeployment, removeLocalJournal } from "../scripts/lib/deployments.js";
import { ROOT, freePort, type HardhatNode, runHardhat, startHardhatNode } from "../scripts/lib/processes.js";
import { PARAMETER_MODULES, deployedParameters, readParameterFile } from "./helpers/parameters.js";

describe("deploy script (npm run deploy -- --network localhost)", function () {
  this.timeout(180_000);
  let node: HardhatNode;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "computenet-deploy-"));
    node = await startHardhatNode(await freePort(), path.join(dir, "node.log"));
  });

  after(async () => {
    await node?.stop();
    const file = path.join(dir, "deployments", "localhost.json");
    const deployment = await readDeployment(file).catch(() => undefined);
    if (deployment) await removeLocalJournal(ROOT, deployment.deploymentId);
    await rm(dir, { recursive: true, force: true });
  });

  const deploy = () =>
    runHardhat(["run", "scripts/deploy.ts", "--network", "localhost"], {
      LOCALHOST_RPC_URL: node.url,
      COMPUTENET_DEPLOYMENTS_ROOT: dir,
    });

  it("deploys every contract and records addresses that hold code from their creation block on", async () => {
    const output = await deploy();
    expect(output).to.include("computenet on localhost (chain 31337)");
    const deployment = await readDeployment(path.join(dir, "deployments", "localhost.json"));
    expect(deployment.chainId).to.equal(31337);
    expect(deployment.network).to.equal("localhost");
    const provider = new JsonRpcProvider(node.url);
    for (const name of CONTRACT_NAMES) {
      const { address, block } = deployment.contracts[name];
      expect(await provider.getCode(address, block), `${name} code at its block`).to.not.equal("0x");
      expect(await provider.getCode(address, block - 1), `${name} code before its block`).to.equal("0x");
    }
    expect(deployment.startBlock).to.equal(Math.min(...CONTRACT_NAMES.map((n) => deployment.contracts[n].block)));

    // The registry was linked to TrainingRuns by the module's call.
    const registry = MinerRegistry__factory.connect(deployment.contracts.MinerRegistry.address, provider);
    expect(await registry.trainingRuns()).to.equal(deployment.contracts.TrainingRuns.address);
    const runs = TrainingRuns__factory.connect(deployment.contracts.TrainingRuns.address, provider);
    expect(await runs.registry()).to.equal(deployment.contracts.MinerRegistry.address);

    // The epoch clock reads the same registry; with the default genesis, epoch 1 started at its creation.
    const epochs = EpochManager__factory.connect(deployment.contracts.EpochManager.address, provider);
    expect(await epochs.registry()).to.equal(deployment.contracts.MinerRegistry.address);
    const created = await provider.getBlock(deployment.contracts.EpochManager.block);
    expect(await epochs.genesis()).to.equal(BigInt(created!.timestamp));
    expect(output).to.include("epochs           24 h each (PoC 1 h, PoC validation 1 h, dispute 6 h, claim 168 h)");

    // Proof of Compute reads that clock, registry and board, with the default thresholds.
    const poc = ProofOfCompute__factory.connect(deployment.contracts.ProofOfCompute.address, provider);
    expect(await poc.epochs()).to.equal(deployment.contracts.EpochManager.address);
    expect(await poc.registry()).to.equal(deployment.contracts.MinerRegistry.address);
    expect(await poc.board()).to.equal(deployment.contracts.ChallengeBoard.address);
    expect(output).to.include("proof of compute accepted above 66.67 % of verdict weight; one node's power capped at 30 %");

    // The reward vault mints rewards (MINTER_ROLE) and receives slashed stake (the registry's treasury).
    const vaultAddress = deployment.contracts.RewardVault.address;
    const vault = RewardVault__factory.connect(vaultAddress, provider);
    expect(await vault.epochs()).to.equal(deployment.contracts.EpochManager.address);
    const token = ComputeToken__factory.connect(deployment.contracts.ComputeToken.address, provider);
    expect(await token.hasRole(await token.MINTER_ROLE(), vaultAddress)).to.equal(true);
    expect(await registry.treasury()).to.equal(vaultAddress);
    expect(output).to.include("rewards          10000.0 CNET in epoch 1, retention 0.99952535433706016 per epoch");

    // The task ledger holds the roles it needs: escrow on TrainingRuns, slashing on the registry, bounties
    // from the vault.
    const ledgerAddress = deployment.contracts.TaskLedger.address;
    const ledger = TaskLedger__factory.connect(ledgerAddress, provider);
    expect(await ledger.poc()).to.equal(deployment.contracts.ProofOfCompute.address);
    expect(await ledger.vault()).to.equal(vaultAddress);
    expect(await runs.hasRole(await runs.ESCROW_ROLE(), ledgerAddress)).to.equal(true);
    expect(await registry.hasRole(await registry.SLASHER_ROLE(), ledgerAddress)).to.equal(true);
    expect(await vault.hasRole(await vault.PAYER_ROLE(), ledgerAddress)).to.equal(true);
    expect(output).to.include("tasks            validation k 2; invalid work slashes 20 % of the executor's stake (50 % of it to the accuser), a false accusation 5 %");

    // Settlement pays work through the ledger (SETTLEMENT_ROLE) and rewards through the vault (PAYER_ROLE).
    const settlementAddress = deployment.contracts.Settlement.address;
    const settlement = Settlement__factory.connect(settlementAddress, provider);
    expect(await settlement.ledger()).to.equal(ledgerAddress);
    expect(await settlement.vault()).to.equal(vaultAddress);
    expect(await ledger.hasRole(await ledger.SETTLEMENT_ROLE(), settlementAddress)).to.equal(true);
    expect(await vault.hasRole(await vault.PAYER_ROLE(), settlementAddress)).to.equal(true);
    expect(output).to.include("claims           each claim checks 8 tasks drawn from the epoch's claim beacon");
    provider.destroy();
  });

  it("resumes the same deployment when run again against the same node", async () => {
    const file = path.join(dir, "deployments", "localhost.json");
    const first = await readDeployment(file);
    const provider = new JsonRpcProvider(node.url);
    // The node mines a block every second, so count the deployer's transactions instead of blocks.
    const deployer: string = (await provider.send("eth_accounts", []))[0];
    const sentBefore = await provider.getTransactionCount(deployer);
    await deploy();
    const second = await readDeployment(file);
    expect(second.contracts).to.deep.equal(first.contracts);
    expect(await provider.getTransactionCount(deployer), "no transaction sent by the second run").to.equal(sentBefore);
    provider.destroy();
  });

  it("refuses a deployment file with a missing or malformed field, naming it", async () => {
    const file = path.join(dir, "deployments", "localhost.json");
    const good = JSON.parse(await readFile(file, "utf8"));
    expect(() => parseDeployment({ ...good, chainId: 0 })).to.throw("`chainId` must be a positive integer");
    expect(() =>
      parseDeployment({ ...good, contracts: { ...good.contracts, TrainingRuns: { address: "0x12", block: 1 } } }),
    ).to.throw("contracts.TrainingRuns.address is not an address");
    const { MinerRegistry: _, ...withoutRegistry } = good.contracts;
    expect(() => parseDeployment({ ...good, contracts: withoutRegistry })).to.throw("contracts.MinerRegistry is missing");
    const broken = path.join(dir, "broken.json");
    await writeFile(broken, "{ not json");
    const error = await readDeployment(broken).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.message).to.include(`cannot read deployment ${broken}`);
  });
});

describe("Ignition parameter files (ignition/parameters/<network>.json)", () => {
  for (const name of ["arbitrumSepolia", "arbitrumOne"]) {
    it(`deploys the system with ${name}.json and applies every value it sets`, async () => {
      const file = path.join(import.meta.dirname, "..", "ignition", "parameters", `${name}.json`);
      const values = await readParameterFile(file);
      // Every module with economic parameters is set explicitly for the network (addresses are the operator's).
      expect(Object.keys(values)).to.have.members([...PARAMETER_MODULES]);
      const { ignition, ethers } = await network.create();
      const deployed = await ignition.deploy(ComputenetModule, { parameters: file });
      const addresses = {
        MinerRegistry: await deployed.registry.getAddress(),
        ChallengeBoard: await deployed.challengeBoard.getAddress(),
        EpochManager: await deployed.epochManager.getAddress(),
        ProofOfCompute: await deployed.proofOfCompute.getAddress(),
        RewardVault: await deployed.rewardVault.getAddress(),
        TaskLedger: await deployed.taskLedger.getAddress(),
        Settlement: await deployed.settlement.getAddress(),
      };
      expect(await deployedParameters(ethers.provider, addresses, values)).to.deep.equal(values);
      expect(values.ChallengeBoardModule.requiredRejections).to.equal(2n);
    });
  }

  it("sets Arbitrum One's daily epochs and Sepolia's hourly ones with the same four-year emission half-life", async () => {
    const dir = path.join(import.meta.dirname, "..", "ignition", "parameters");
    const one = await readParameterFile(path.join(dir, "arbitrumOne.json"));
    const sepolia = await readParameterFile(path.join(dir, "arbitrumSepolia.json"));
    expect(one.EpochManagerModule.epochLength).to.equal(86_400n);
    expect(sepolia.EpochManagerModule.epochLength).to.equal(3_600n);
    // The emission halves after four years (1460 days) of epochs: retention^(epochs per half-life) = 1/2.
    const WAD = 10n ** 18n;
    for (const [values, epochsPerHalfLife] of [
      [one, 1460],
      [sepolia, 1460 * 24],
    ] as const) {
      const retention = Number(values.RewardVaultModule.retentionWad) / Number(WAD);
      const halved = retention ** epochsPerHalfLife;
      expect(Math.abs(halved - 0.5) < 1e-9, `retention^${epochsPerHalfLife} = ${halved}`).to.equal(true);
    }
    // Sepolia's hourly emission is One's daily emission spread over 24 epochs (rounded down to the wei).
    expect(sepolia.RewardVaultModule.initialEmission).to.equal(one.RewardVaultModule.initialEmission / 24n);
  });
});
