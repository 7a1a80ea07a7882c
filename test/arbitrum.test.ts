/**
 * Arbitrum Sepolia, as far as it can be tested without the network: a local `hardhat node` serving chain id
 * 421614 stands in for Arbitrum Sepolia's RPC endpoint.
 *
 * - The deploy script runs as operators run it (`npm run deploy -- --network arbitrumSepolia`), with the
 *   network's configuration variables (ARBITRUM_SEPOLIA_RPC_URL, DEPLOYER_PRIVATE_KEY) set in the environment,
 *   and ignition/parameters/arbitrumSepolia.json. Ignition's journal goes to a temporary folder
 *   (COMPUTENET_IGNITION_DIR), never to ignition/deployments/chain-421614 in the repository.
 * - Verification: `hardhat ignition verify chain-421614 --network arbitrumSepolia` runs for real against that
 *   journal and node, with the project's hardhat-verify configuration; only Arbiscan's API is replaced by a
 *   local HTTP server that records what it is sent and answers as Etherscan's API v2 does when it accepts a
 *   submission. What Arbiscan itself would make of the submission cannot be tested here.
 * - A keeper (discovery, as `computenet discovery`) started without --poll-ms / --confirmations takes the
 *   Arbitrum Sepolia profile (1000 ms, 1 confirmation) and follows a node registration; flags and
 *   environment variables still override the profile.
 * - The keepers' fee cap (--max-fee-gwei): a transaction is refused, unsent, when the base fee is above it,
 *   and is never signed with a max fee above it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";
import { createRequire } from "node:module";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { listTransactions } from "@nomicfoundation/ignition-core";
import { expect } from "chai";
import { JsonRpcProvider, NonceManager, Wallet, formatUnits, parseEther } from "ethers";
import { z } from "zod";
import { artifacts } from "hardhat";
import { createHardhatRuntimeEnvironment } from "hardhat/hre";
import userConfig from "../hardhat.config.js";
import { KeeperProcess } from "../keepers/cli/cluster.js";
import { connectChain, contractInterfaces, gweiToWei } from "../keepers/shared/chain.js";
import { maxFeeGweiSchema, parseConfig } from "../keepers/shared/config.js";
import { createLogger } from "../keepers/shared/log.js";
import { ARBITRUM_ONE_CHAIN_ID, ARBITRUM_SEPOLIA_CHAIN_ID, LOCAL_CHAIN_ID, resolveChainSettings } from "../keepers/shared/profile.js";
import { FeeCapExceededError, TxSender } from "../keepers/shared/tx.js";
import { CONTRACT_NAMES, type Deployment, readDeployment } from "../scripts/lib/deployments.js";
import { gpuModel, signNodeConsent } from "../scripts/lib/protocol.js";
import { ROOT, freePort, type HardhatNode, rpc, runHardhat, startHardhatNode } from "../scripts/lib/processes.js";
import {
  ChallengeBoard__factory,
  ComputeToken__factory,
  MinerRegistry__factory,
  ProofOfCompute__factory,
} from "../typechain-types/index.js";
import { deployedParameters, readParameterFile } from "./helpers/parameters.js";

const CPU_NODE = { gpuCount: 0, gpuModel: gpuModel(""), gpuMemoryMB: 0, cpuCores: 4, ramMB: 8_192, storageGB: 100 };

describe("keeper chain profiles (keepers/shared/profile.ts)", () => {
  it("defaults by chain id: Arbitrum One 1000 ms / 2, Arbitrum Sepolia 1000 ms / 1, a local node 500 ms / 0", () => {
    const pick = (chainId: number) => {
      const s = resolveChainSettings(chainId);
      return { profile: s.profile, pollMs: s.pollMs, confirmations: s.confirmations, known: s.known };
    };
    expect(pick(ARBITRUM_ONE_CHAIN_ID)).to.deep.equal({ profile: "arbitrum-one", pollMs: 1000, confirmations: 2, known: true });
    expect(pick(ARBITRUM_SEPOLIA_CHAIN_ID)).to.deep.equal({ profile: "arbitrum-sepolia", pollMs: 1000, confirmations: 1, known: true });
    expect(pick(LOCAL_CHAIN_ID)).to.deep.equal({ profile: "local", pollMs: 500, confirmations: 0, known: true });
    expect(pick(11155111)).to.deep.equal({ profile: "other", pollMs: 1000, confirmations: 2, known: false });
  });

  it("--max-fee-gwei takes a positive number of gwei down to 1 wei, and names the flag otherwise", () => {
    const parse = (value: string) => parseConfig(z.object({ maxFeeGwei: maxFeeGweiSchema }), { maxFeeGwei: value }).maxFeeGwei;
    expect(parse("0.5")).to.equal("0.5");
    expect(gweiToWei(parse("0.000000001"))).to.equal(1n);
    expect(gweiToWei(parse("12"))).to.equal(12_000_000_000n);
    expect(() => parse("0")).to.throw("--max-fee-gwei (CN_MAX_FEE_GWEI): must be more than 0");
    expect(() => parse("0.0000000001")).to.throw("--max-fee-gwei (CN_MAX_FEE_GWEI): must be a number of gwei like 0.5 (at most 9 decimals)");
    expect(() => parse("cheap")).to.throw("--max-fee-gwei (CN_MAX_FEE_GWEI)");
  });

  it("lets each setting given explicitly (flag, environment, caller) win on its own", () => {
    const s = resolveChainSettings(421614n, { confirmations: 0 });
    expect(s).to.deep.include({ pollMs: 1000, confirmations: 0, source: { pollMs: "profile", confirmations: "set" } });
    expect(resolveChainSettings(42161, { pollMs: 250 })).to.deep.include({ pollMs: 250, confirmations: 2 });
  });
});

describe("Arbitrum Sepolia against a local node with chain id 421614", function () {
  this.timeout(300_000);
  const chainId = ARBITRUM_SEPOLIA_CHAIN_ID;
  const repoJournal = path.join(ROOT, "ignition", "deployments", `chain-${chainId}`);
  const journalExistedBefore = existsSync(repoJournal);
  // A deployer the node does not know: only DEPLOYER_PRIVATE_KEY can sign for it.
  const deployer = Wallet.createRandom();
  let dir: string;
  let ignitionDir: string;
  let node: HardhatNode;
  let provider: JsonRpcProvider;
  let deployment: Deployment;
  let deploymentFile: string;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "computenet-arbitrum-"));
    ignitionDir = path.join(dir, "ignition");
    node = await startHardhatNode(await freePort(), path.join(dir, "node.log"), 60_000, { chainId });
    provider = new JsonRpcProvider(node.url, undefined, { staticNetwork: true, pollingInterval: 100 });
    await rpc(node.url, "hardhat_setBalance", [deployer.address, `0x${parseEther("1000").toString(16)}`]);
  });

  after(async () => {
    provider?.destroy();
    await node?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("deploys with `npm run deploy -- --network arbitrumSepolia`: deployments/arbitrumSepolia.json, code, parameters", async () => {
    const started = Date.now();
    const output = await runHardhat(["run", "scripts/deploy.ts", "--network", "arbitrumSepolia"], {
      ARBITRUM_SEPOLIA_RPC_URL: node.url,
      DEPLOYER_PRIVATE_KEY: deployer.privateKey,
      COMPUTENET_DEPLOYMENTS_ROOT: dir,
      COMPUTENET_IGNITION_DIR: ignitionDir,
    });
    console.log(`      (deploy script: ${((Date.now() - started) / 1000).toFixed(1)} s)`);
    expect(output).to.include(`Deploying computenet to arbitrumSepolia (chain ${chainId}) with ignition/parameters/arbitrumSepolia.json`);
    expect(output).to.include(`computenet on arbitrumSepolia (chain ${chainId})`);
    expect(output).to.include("epochs           1 h each (PoC 10 min, PoC validation 10 min, dispute 15 min, claim 24 h)");
    expect(output).to.include(`Verify the contracts (ETHERSCAN_API_KEY): npx hardhat ignition verify chain-${chainId} --network arbitrumSepolia`);

    deploymentFile = path.join(dir, "deployments", "arbitrumSepolia.json");
    deployment = await readDeployment(deploymentFile);
    expect(deployment).to.deep.include({ network: "arbitrumSepolia", chainId, deploymentId: `chain-${chainId}` });
    for (const name of CONTRACT_NAMES) {
      const { address, block } = deployment.contracts[name];
      expect(await provider.getCode(address, block), `${name} code at its block`).to.not.equal("0x");
      expect(await provider.getCode(address, block - 1), `${name} code before its block`).to.equal("0x");
    }

    // The deployer is DEPLOYER_PRIVATE_KEY's account (Ignition's account 0): it holds the admin role and the supply.
    const token = ComputeToken__factory.connect(deployment.contracts.ComputeToken.address, provider);
    expect(await token.hasRole(await token.DEFAULT_ADMIN_ROLE(), deployer.address)).to.equal(true);
    expect(await token.balanceOf(deployer.address)).to.be.greaterThan(0n);

    // Every value of ignition/parameters/arbitrumSepolia.json is what the contracts hold.
    const values = await readParameterFile(path.join(ROOT, "ignition", "parameters", "arbitrumSepolia.json"));
    const addresses = Object.fromEntries(CONTRACT_NAMES.map((name) => [name, deployment.contracts[name].address])) as Record<
      (typeof CONTRACT_NAMES)[number],
      string
    >;
    expect(await deployedParameters(provider, addresses, values)).to.deep.equal(values);

    // Ignition's journal is in the temporary folder, not in the repository.
    expect(existsSync(path.join(ignitionDir, "deployments", `chain-${chainId}`, "journal.jsonl"))).to.equal(true);
    expect(existsSync(repoJournal)).to.equal(journalExistedBefore);
  });

  it("grants VALIDATOR_ROLE with `npm run grant-validators -- --network arbitrumSepolia`, once", async function () {
    if (!deployment) this.skip();
    const validators = [Wallet.createRandom().address, Wallet.createRandom().address];
    const env = {
      ARBITRUM_SEPOLIA_RPC_URL: node.url,
      DEPLOYER_PRIVATE_KEY: deployer.privateKey,
      COMPUTENET_DEPLOYMENTS_ROOT: dir,
      VALIDATORS: validators.join(","),
    };
    const first = await runHardhat(["run", "scripts/grant-validators.ts", "--network", "arbitrumSepolia"], env);
    expect(first).to.include(`Granting VALIDATOR_ROLE on arbitrumSepolia (chain ${chainId}) as ${deployer.address}`);
    const board = ChallengeBoard__factory.connect(deployment.contracts.ChallengeBoard.address, provider);
    const poc = ProofOfCompute__factory.connect(deployment.contracts.ProofOfCompute.address, provider);
    for (const contract of [board, poc]) {
      for (const validator of validators) expect(await contract.hasRole(await contract.VALIDATOR_ROLE(), validator)).to.equal(true);
    }
    const sent = await provider.getTransactionCount(deployer.address);
    const second = await runHardhat(["run", "scripts/grant-validators.ts", "--network", "arbitrumSepolia"], env);
    expect(second.match(/already holds it/g)?.length).to.equal(4);
    expect(await provider.getTransactionCount(deployer.address), "no transaction on the second run").to.equal(sent);
  });

  it("verification: `ignition verify chain-421614` submits every contract with its sources, compiler and constructor arguments", async function () {
    if (!deployment) this.skip();
    const explorer = await startMockEtherscan();
    const keys = ["ARBITRUM_SEPOLIA_RPC_URL", "DEPLOYER_PRIVATE_KEY", "ETHERSCAN_API_KEY"] as const;
    const saved = Object.fromEntries(keys.map((k) => [k, process.env[k]]));
    const savedExitCode = process.exitCode;
    const printed: string[] = [];
    const { log, error } = console;
    try {
      process.env.ARBITRUM_SEPOLIA_RPC_URL = node.url;
      process.env.DEPLOYER_PRIVATE_KEY = deployer.privateKey;
      process.env.ETHERSCAN_API_KEY = "test-etherscan-key";
      // The project's configuration, with Arbiscan's API address pointed at the local server, the journal where
      // the deploy above put it, and Blockscout and Sourcify (enabled by default, no key) switched off.
      const hre = await createHardhatRuntimeEnvironment(
        {
          ...userConfig,
          paths: { ...userConfig.paths, ignition: ignitionDir },
          chainDescriptors: {
            [chainId]: {
              name: "Arbitrum Sepolia",
              blockExplorers: { etherscan: { name: "Arbiscan", url: "https://sepolia.arbiscan.io", apiUrl: explorer.url } },
            },
          },
          verify: { ...userConfig.verify, blockscout: { enabled: false }, sourcify: { enabled: false } },
        },
        { network: "arbitrumSepolia" },
        ROOT,
      );
      console.log = (...args: unknown[]) => void printed.push(args.join(" "));
      console.error = (...args: unknown[]) => void printed.push(args.join(" "));
      await hre.tasks.getTask(["ignition", "verify"]).run({ deploymentId: `chain-${chainId}` });
    } finally {
      console.log = log;
      console.error = error;
      for (const k of keys) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
      await explorer.close();
    }
    const failed = process.exitCode;
    process.exitCode = savedExitCode;
    expect(failed, printed.join("\n")).to.not.equal(1);

    // Every request went to Etherscan's v2 API for chain 421614 with the key from ETHERSCAN_API_KEY.
    expect(explorer.requests.length).to.be.greaterThan(0);
    for (const request of explorer.requests) {
      expect(request.query.get("chainid")).to.equal(String(chainId));
      expect(request.query.get("apikey")).to.equal("test-etherscan-key");
    }

    // One submission per contract of the deployment, each the contract deployed at that address.
    const submissions = explorer.requests.filter((r) => r.query.get("action") === "verifysourcecode");
    const byAddress = new Map(submissions.map((s) => [s.form!.get("contractaddress")!.toLowerCase(), s.form!]));
    expect(byAddress.size, printed.join("\n")).to.equal(CONTRACT_NAMES.length);
    const creations = await listTransactions(path.join(ignitionDir, "deployments", `chain-${chainId}`), {
      loadArtifact: (name: string) => artifacts.readArtifact(name),
    });
    for (const name of CONTRACT_NAMES) {
      const address = deployment.contracts[name].address;
      const form = byAddress.get(address.toLowerCase());
      expect(form, `${name} submitted`).to.not.equal(undefined);
      // Hardhat 3 names the project's sources `project/<path>` in its compiler input.
      expect(form!.get("contractname")).to.equal(`project/contracts/${name}.sol:${name}`);
      expect(form!.get("codeformat")).to.equal("solidity-standard-json-input");
      expect(form!.get("compilerversion")).to.match(/^v0\.8\.\d+\+commit\.[0-9a-f]{8}$/);
      // The compiler input: the contract's source and the settings it was deployed with.
      const input = JSON.parse(form!.get("sourceCode")!) as {
        language: string;
        sources: Record<string, { content: string }>;
        settings: { viaIR: boolean; evmVersion: string; optimizer: { enabled: boolean; runs: number } };
      };
      expect(input.language).to.equal("Solidity");
      expect(Object.keys(input.sources)).to.include(`project/contracts/${name}.sol`);
      expect(input.settings).to.deep.include({ viaIR: true, evmVersion: "cancun" });
      const claimPath = name === "Settlement" || name === "RewardVault";
      expect(input.settings.optimizer).to.deep.equal({ enabled: true, runs: claimPath ? 1_000_000 : 200 });
      // The constructor arguments are those the contract was created with: the end of its creation transaction.
      const creation = creations.find((tx) => tx.address !== undefined && tx.address.toLowerCase() === address.toLowerCase());
      expect(creation, `${name}'s creation transaction in the journal`).to.not.equal(undefined);
      const data = (await provider.getTransaction(creation!.txHash))!.data;
      const args = form!.get("constructorArguments")!;
      expect(args.length, `${name} has constructor arguments`).to.be.greaterThan(0);
      expect(data.endsWith(args.replace(/^0x/, "")), `${name}'s submitted constructor arguments end its creation data`).to.equal(true);
    }
    expect(printed.filter((line) => line.includes("Contract verified successfully on Arbiscan")).length).to.equal(CONTRACT_NAMES.length);

    // What Arbiscan does with a submission, for the smallest contract (solcjs takes a while per contract): compile
    // the submitted input with the compiler version named, and compare with the code at the address. Byte for
    // byte, metadata hash included (an exact match), once the immutables' slots are blanked.
    const compileStarted = Date.now();
    const token = byAddress.get(deployment.contracts.ComputeToken.address.toLowerCase())!;
    const compiled = compileDeployedCode(JSON.parse(token.get("sourceCode")!), token.get("contractname")!, token.get("compilerversion")!);
    const onChain = await provider.getCode(deployment.contracts.ComputeToken.address);
    expect(blankImmutables(onChain, compiled.immutableReferences)).to.equal(`0x${compiled.object}`);
    console.log(`      (ComputeToken's submission compiled in ${((Date.now() - compileStarted) / 1000).toFixed(1)} s)`);
  });

  it("discovery started without --poll-ms / --confirmations takes the Arbitrum Sepolia profile and follows a registration", async function () {
    if (!deployment) this.skip();
    const started = Date.now();
    const keeper = startDiscoveryCommand("discovery", dir, {
      CN_RPC_URL: node.url,
      CN_DEPLOYMENT: deploymentFile,
      CN_DATA_DIR: path.join(dir, "discovery"),
    });
    try {
      const profileLine = await keeper.waitFor(/"msg":"chain profile [^"]*"/, 60_000);
      expect(profileLine).to.equal(`"msg":"chain profile arbitrum-sepolia (chain ${chainId}): poll 1000 ms, 1 confirmation; no fee cap"`);
      const url = (await keeper.waitFor(/discovery listening on http:\/\/127\.0\.0\.1:\d+/, 60_000)).replace("discovery listening on ", "");
      const health = (await (await fetch(`${url}/health`)).json()) as Record<string, unknown>;
      expect(health.chain).to.deep.equal({ id: chainId, profile: "arbitrum-sepolia", pollMs: 1000, confirmations: 1 });

      // A provider registers a node; discovery's index follows the event (on the L2 block numbers the node reports).
      const chain = await connectChain({ rpcUrl: node.url, deploymentFile, privateKey: deployer.privateKey });
      try {
        const registry = MinerRegistry__factory.connect(deployment.contracts.MinerRegistry.address, chain.signer!);
        const token = ComputeToken__factory.connect(deployment.contracts.ComputeToken.address, chain.signer!);
        const nodeKey = Wallet.createRandom();
        const stake = await registry.minimumStake(0);
        await (await token.approve(await registry.getAddress(), stake)).wait();
        const deadline = BigInt((await provider.getBlock("latest"))!.timestamp) + 3600n;
        const consent = await signNodeConsent(
          nodeKey,
          { chainId: BigInt(chainId), verifyingContract: await registry.getAddress() },
          { provider: deployer.address, nonce: await registry.nonces(nodeKey.address), deadline },
        );
        const receipt = (await (await registry.registerNode(nodeKey.address, CPU_NODE, stake, deadline, consent)).wait())!;
        const deadlineMs = Date.now() + 30_000;
        let indexed: { cursor: number; head: number } | undefined;
        for (;;) {
          const metrics = await (await fetch(`${url}/metrics`)).text();
          const now = (await (await fetch(`${url}/health`)).json()) as { cursor: number; head: number };
          if (/computenet_discovery_events_total\{[^}]*event="NodeRegistered"[^}]*\} 1\b/.test(metrics)) {
            indexed = now;
            break;
          }
          expect(now.cursor, "discovery stays a confirmation behind the head").to.be.at.most(now.head - 1);
          if (Date.now() > deadlineMs) throw new Error(`discovery did not index NodeRegistered; health ${JSON.stringify(now)}`);
          await new Promise((r) => setTimeout(r, 250));
        }
        expect(indexed.cursor).to.be.at.least(receipt.blockNumber);
        expect(indexed.cursor).to.be.at.most(indexed.head - 1);
        await keeper.waitFor(/"msg":"index caught up"/, 10_000);
      } finally {
        chain.provider.destroy();
      }
    } finally {
      await keeper.stop();
    }
    expect(await keeper.exited).to.equal(0);
    console.log(`      (discovery start to indexed registration: ${((Date.now() - started) / 1000).toFixed(1)} s)`);
  });

  it("discovery: --confirmations and CN_POLL_MS override the profile", async function () {
    if (!deployment) this.skip();
    const keeper = startDiscoveryCommand("discovery-set", dir, {
      CN_RPC_URL: node.url,
      CN_DEPLOYMENT: deploymentFile,
      CN_DATA_DIR: path.join(dir, "discovery-set"),
      CN_POLL_MS: "300",
    }, ["--confirmations", "0"]);
    try {
      const line = await keeper.waitFor(/"msg":"chain profile [^"]*"/, 60_000);
      expect(line).to.equal(`"msg":"chain profile arbitrum-sepolia (chain ${chainId}): poll 300 ms (set), 0 confirmations (set); no fee cap"`);
      const url = (await keeper.waitFor(/discovery listening on http:\/\/127\.0\.0\.1:\d+/, 60_000)).replace("discovery listening on ", "");
      const health = (await (await fetch(`${url}/health`)).json()) as Record<string, unknown>;
      expect(health.chain).to.deep.equal({ id: chainId, profile: "arbitrum-sepolia", pollMs: 300, confirmations: 0 });
    } finally {
      await keeper.stop();
    }
  });

  it("--max-fee-gwei: refuses to send above the cap (nothing signed), and never signs a max fee above it", async function () {
    if (!deployment) this.skip();
    const lines: string[] = [];
    const logger = createLogger({
      component: "test",
      level: "warn",
      destination: new Writable({
        write(chunk, _encoding, done) {
          lines.push(chunk.toString());
          done();
        },
      }),
    });
    const recipient = Wallet.createRandom().address;
    const send = async (maxFeeGwei: string) => {
      const chain = await connectChain({ rpcUrl: node.url, deploymentFile, privateKey: deployer.privateKey, maxFeeGwei });
      const tx = new TxSender({ logger, interfaces: contractInterfaces(), signer: chain.signer as NonceManager, retryDelayMs: 10 });
      try {
        const token = chain.contracts.token;
        return await tx.send("transfer", () => token.transfer(recipient, 1n), { recipient });
      } finally {
        chain.provider.destroy();
      }
    };

    // A cap of 1 wei is below any base fee: refused before signing, with the figures in the log.
    const nonceBefore = await provider.getTransactionCount(deployer.address, "pending");
    const refused = await send("0.000000001").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).to.be.instanceOf(FeeCapExceededError);
    expect(await provider.getTransactionCount(deployer.address, "pending"), "nothing was sent").to.equal(nonceBefore);
    const warning = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => String(l.msg).startsWith("transfer: refused by the fee cap"));
    expect(warning, lines.join("")).to.not.equal(undefined);
    expect(warning!.maxFeeGwei).to.equal("0.000000001");
    expect(String(warning!.msg)).to.include("above --max-fee-gwei 0.000000001: not sending");

    // A cap just above what the network asks (base fee + priority fee): sent, with the max fee lowered to the cap.
    const block = (await provider.getBlock("latest"))!;
    const priority = BigInt((await rpc(node.url, "eth_maxPriorityFeePerGas")) as string);
    const cap = block.baseFeePerGas! + priority + 1n;
    const receipt = await send(formatUnits(cap, "gwei"));
    const sent = (await provider.getTransaction(receipt.hash))!;
    expect(sent.type).to.equal(2);
    expect(sent.maxFeePerGas! <= cap, `max fee ${sent.maxFeePerGas} <= cap ${cap}`).to.equal(true);
    expect(sent.maxPriorityFeePerGas! <= sent.maxFeePerGas!).to.equal(true);
    // Without the cap ethers would have asked for twice the base fee plus the priority fee.
    expect(sent.maxFeePerGas! < 2n * block.baseFeePerGas! + priority).to.equal(true);
  });

  it("leaves no Ignition journal for chain 421614 in the repository", () => {
    expect(existsSync(repoJournal)).to.equal(journalExistedBefore);
  });
});

/**
 * The deployed (runtime) code `input` compiles to for `contractName` ("<source>:<name>"), with the `solc`
 * package (solcjs: the compiler hardhat.config.ts builds with), which must be the `compilerVersion` named.
 */
function compileDeployedCode(
  input: { settings: Record<string, unknown> },
  contractName: string,
  compilerVersion: string,
): { object: string; immutableReferences: Record<string, Array<{ start: number; length: number }>> } {
  const solc = createRequire(import.meta.url)("solc") as { version(): string; compile(input: string): string };
  expect(`v${solc.version().replace(/\.Emscripten\.clang$/, "")}`).to.equal(compilerVersion);
  const [source, name] = [contractName.slice(0, contractName.lastIndexOf(":")), contractName.slice(contractName.lastIndexOf(":") + 1)];
  const output = JSON.parse(
    solc.compile(
      JSON.stringify({
        ...input,
        settings: { ...input.settings, outputSelection: { [source]: { [name]: ["evm.deployedBytecode.object", "evm.deployedBytecode.immutableReferences"] } } },
      }),
    ),
  ) as {
    errors?: Array<{ severity: string; formattedMessage: string }>;
    contracts: Record<string, Record<string, { evm: { deployedBytecode: { object: string; immutableReferences?: Record<string, Array<{ start: number; length: number }>> } } }>>;
  };
  const errors = (output.errors ?? []).filter((e) => e.severity === "error");
  expect(errors.map((e) => e.formattedMessage)).to.deep.equal([]);
  const { object, immutableReferences } = output.contracts[source][name].evm.deployedBytecode;
  return { object, immutableReferences: immutableReferences ?? {} };
}

/** `code` (0x-hex) with the bytes of every immutable reference set to zero, as the compiler leaves them. */
function blankImmutables(code: string, references: Record<string, Array<{ start: number; length: number }>>): string {
  let hex = code.slice(2);
  for (const slots of Object.values(references)) {
    for (const { start, length } of slots) hex = hex.slice(0, start * 2) + "0".repeat(length * 2) + hex.slice((start + length) * 2);
  }
  return `0x${hex}`;
}

/** `computenet discovery` as a child process with `env` (and no other CN_ variable) and `args`. */
function startDiscoveryCommand(name: string, dir: string, env: Record<string, string>, args: string[] = []): KeeperProcess {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CN_") && k !== "LOG_LEVEL"));
  const child: ChildProcess = spawn(
    process.execPath,
    ["--import", "tsx", "keepers/cli/computenet.ts", "discovery", "--port", "0", "--log-level", "info", ...args],
    { cwd: ROOT, env: { ...clean, ...env }, stdio: ["ignore", "pipe", "pipe"] },
  );
  return new KeeperProcess(name, child, createWriteStream(path.join(dir, `${name}.log`)));
}

interface RecordedRequest {
  method: string;
  query: URLSearchParams;
  form?: URLSearchParams;
}

/**
 * A stand-in for Etherscan's API v2 (`/v2/api?chainid=...&module=contract&action=...`): no contract is verified
 * yet, every submission is accepted with a GUID, and every status check answers "Pass - Verified". It records
 * each request (query and form body) for the test to inspect.
 */
async function startMockEtherscan(): Promise<{ url: string; requests: RecordedRequest[]; close(): Promise<void> }> {
  const requests: RecordedRequest[] = [];
  let guids = 0;
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      const query = new URL(req.url ?? "/", "http://localhost").searchParams;
      const recorded: RecordedRequest = { method: req.method ?? "GET", query };
      if (req.method === "POST") recorded.form = new URLSearchParams(body);
      requests.push(recorded);
      const answer = (value: unknown) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(value));
      };
      switch (query.get("action")) {
        case "getsourcecode":
          return answer({ status: "1", message: "OK", result: [{ SourceCode: "", ContractName: "" }] });
        case "verifysourcecode":
          return answer({ status: "1", message: "OK", result: `guid-${++guids}` });
        case "checkverifystatus":
          return answer({ status: "1", message: "OK", result: "Pass - Verified" });
        default:
          res.writeHead(400, { "content-type": "application/json" });
          res.end(JSON.stringify({ status: "0", message: "NOTOK", result: `unexpected action ${query.get("action")}` }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v2/api`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
