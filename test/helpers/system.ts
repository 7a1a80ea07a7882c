/**
 * The system under test, deployed through the same Ignition module as production, plus the few
 * actions most tests need (a registered node, an open run, a validated member).
 */
import type { NetworkConnection } from "hardhat/types/network";
import ComputenetModule from "../../ignition/modules/Computenet.js";
import type {
  ChallengeBoard,
  ComputeToken,
  EpochManager,
  MinerRegistry,
  ProofOfCompute,
  RewardVault,
  Settlement,
  TaskLedger,
  TrainingRuns,
} from "../../typechain-types/index.js";
import {
  type Capabilities,
  TOKEN,
  gpuModel,
  signInvite,
  signNodeConsent,
  signPermit,
} from "../../scripts/lib/protocol.js";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import type { Signer } from "ethers";

export const MIN_STAKE_BASE = 100n * TOKEN;
export const MIN_STAKE_PER_GPU = 250n * TOKEN;
export const UNBONDING_DELAY = 7n * 24n * 3600n;
export const REQUIRED_APPROVALS = 2n;
export const REQUIRED_REJECTIONS = 1n;
export const RETRY_COOLDOWN = 3600n;
export const HOUR = 3600n;
export const DAY = 24n * HOUR;
/** EpochManager parameters of the test system (the module's defaults, spelled out). */
export const EPOCH_PARAMETERS = {
  epochLength: DAY,
  pocDuration: HOUR,
  pocValidationDuration: HOUR,
  disputeWindow: 6n * HOUR,
  claimWindow: 7n * DAY,
};
/** ProofOfCompute parameters of the test system (the module's defaults, spelled out). */
export const POC_PARAMETERS = {
  acceptShareBps: 6667n,
  maxShareBps: 3000n,
};
/** RewardVault parameters of the test system (the module's defaults, spelled out). */
export const INITIAL_EMISSION = 10_000n * TOKEN;
export const RETENTION_WAD = 999_525_354_337_060_160n;
/** TaskLedger parameters of the test system (the module's defaults, spelled out). */
export const TASK_LEDGER_PARAMETERS = {
  validationKBps: 20_000n,
  executorSlashBps: 2_000n,
  falseAccuserSlashBps: 500n,
  accuserRewardBps: 5_000n,
  falseValidationSlashBps: 1_000n,
};
/** Settlement's duty-check sample of the test system (the module's default). */
export const SAMPLE_SIZE = 8n;

export const H100 = gpuModel("H100-80GB");
export const A100 = gpuModel("A100-40GB");

/** An 8×H100 node. */
export const H100_NODE: Capabilities = {
  gpuCount: 8,
  gpuModel: H100,
  gpuMemoryMB: 81_920,
  cpuCores: 64,
  ramMB: 512_000,
  storageGB: 2_000,
};

/** A CPU-only node. */
export const CPU_NODE: Capabilities = {
  gpuCount: 0,
  gpuModel: gpuModel(""),
  gpuMemoryMB: 0,
  cpuCores: 4,
  ramMB: 8_192,
  storageGB: 100,
};

export function minStakeFor(caps: Capabilities): bigint {
  return MIN_STAKE_BASE + MIN_STAKE_PER_GPU * BigInt(caps.gpuCount);
}

export interface System {
  token: ComputeToken;
  registry: MinerRegistry;
  challengeBoard: ChallengeBoard;
  trainingRuns: TrainingRuns;
  epochManager: EpochManager;
  proofOfCompute: ProofOfCompute;
  rewardVault: RewardVault;
  taskLedger: TaskLedger;
  settlement: Settlement;
  chainId: bigint;
  admin: HardhatEthersSigner;
  /** The registry's treasury at deployment; the RewardVault module then makes the vault the treasury. */
  treasury: HardhatEthersSigner;
  validators: HardhatEthersSigner[];
  buyer: HardhatEthersSigner;
  master: HardhatEthersSigner;
  providers: HardhatEthersSigner[];
  nodes: HardhatEthersSigner[];
  stranger: HardhatEthersSigner;
  slasher: HardhatEthersSigner;
  escrowAgent: HardhatEthersSigner;
}

/** Deploys the whole system with test parameters and funds the actors (tokens and approvals). */
export async function deploySystem(
  connection: NetworkConnection,
  overrides: { epochs?: Partial<typeof EPOCH_PARAMETERS> } = {},
): Promise<System> {
  const { ethers, ignition } = connection;
  const signers = await ethers.getSigners();
  const [admin, treasury, v1, v2, v3, buyer, master, p1, p2, n1, n2, n3, n4, n5, n6, stranger, slasher, escrowAgent] =
    signers;
  const deployed = await ignition.deploy(ComputenetModule, {
    parameters: {
      MinerRegistryModule: {
        treasury: treasury.address,
        minStakeBase: MIN_STAKE_BASE,
        minStakePerGpu: MIN_STAKE_PER_GPU,
        unbondingDelay: UNBONDING_DELAY,
      },
      ChallengeBoardModule: {
        requiredApprovals: REQUIRED_APPROVALS,
        requiredRejections: REQUIRED_REJECTIONS,
        retryCooldown: RETRY_COOLDOWN,
      },
      EpochManagerModule: { ...EPOCH_PARAMETERS, ...overrides.epochs },
      ProofOfComputeModule: POC_PARAMETERS,
      RewardVaultModule: { initialEmission: INITIAL_EMISSION, retentionWad: RETENTION_WAD },
      TaskLedgerModule: TASK_LEDGER_PARAMETERS,
      SettlementModule: { sampleSize: SAMPLE_SIZE },
    },
  });
  const token = deployed.token as unknown as ComputeToken;
  const registry = deployed.registry as unknown as MinerRegistry;
  const challengeBoard = deployed.challengeBoard as unknown as ChallengeBoard;
  const trainingRuns = deployed.trainingRuns as unknown as TrainingRuns;
  const epochManager = deployed.epochManager as unknown as EpochManager;
  const proofOfCompute = deployed.proofOfCompute as unknown as ProofOfCompute;
  const rewardVault = deployed.rewardVault as unknown as RewardVault;
  const taskLedger = deployed.taskLedger as unknown as TaskLedger;
  const settlement = deployed.settlement as unknown as Settlement;

  // The same three validators run hardware challenges and form PoC's bootstrap verdict set.
  const validators = [v1, v2, v3];
  for (const v of validators) {
    await challengeBoard.connect(admin).grantRole(await challengeBoard.VALIDATOR_ROLE(), v.address);
    await proofOfCompute.connect(admin).grantRole(await proofOfCompute.VALIDATOR_ROLE(), v.address);
  }
  await registry.connect(admin).grantRole(await registry.SLASHER_ROLE(), slasher.address);
  await trainingRuns.connect(admin).grantRole(await trainingRuns.ESCROW_ROLE(), escrowAgent.address);

  const funded = [buyer, p1, p2, n1, n2, n3, n4, n5, n6, stranger];
  for (const account of funded) {
    await token.connect(admin).transfer(account.address, 1_000_000n * TOKEN);
    await token.connect(account).approve(await registry.getAddress(), ethers.MaxUint256);
    await token.connect(account).approve(await trainingRuns.getAddress(), ethers.MaxUint256);
  }

  return {
    token,
    registry,
    challengeBoard,
    trainingRuns,
    epochManager,
    proofOfCompute,
    rewardVault,
    taskLedger,
    settlement,
    chainId: (await ethers.provider.getNetwork()).chainId,
    admin,
    treasury,
    validators,
    buyer,
    master,
    providers: [p1, p2],
    nodes: [n1, n2, n3, n4, n5, n6],
    stranger,
    slasher,
    escrowAgent,
  };
}

/** Far enough in the future for any test. */
export async function farDeadline(connection: NetworkConnection): Promise<bigint> {
  return BigInt(await connection.networkHelpers.time.latest()) + 30n * 24n * HOUR;
}

/** A test account: a Hardhat signer or an ethers Wallet (see `fundedAccounts` in ./epochs.ts). */
export type Account = Signer & { readonly address: string };

/** The node's consent signature for `provider` with the node's current nonce. */
export async function consentFor(
  sys: System,
  node: Account,
  provider: string,
  deadline: bigint,
): Promise<string> {
  return signNodeConsent(
    node,
    { chainId: sys.chainId, verifyingContract: await sys.registry.getAddress() },
    { provider, nonce: await sys.registry.nonces(node.address), deadline },
  );
}

/** Registers `node` under `provider` with `caps` and `stake` (default: the minimum). */
export async function registerNode(
  connection: NetworkConnection,
  sys: System,
  provider: Account,
  node: Account,
  caps: Capabilities = H100_NODE,
  stake: bigint = minStakeFor(caps),
  deadline?: bigint,
) {
  deadline ??= await farDeadline(connection);
  const signature = await consentFor(sys, node, provider.address, deadline);
  return sys.registry.connect(provider).registerNode(node.address, caps, stake, deadline, signature);
}

export interface RunOptions {
  master?: string;
  pricePerUnit?: bigint;
  maxMembers?: number;
  budget?: bigint;
  discoveryURI?: string;
  requirements?: {
    minGpuCount: number;
    minGpuMemoryMB: number;
    minCpuCores: number;
    minRamMB: number;
    minStorageGB: number;
    allowedGpuModels: string[];
  };
}

export const H100_REQUIREMENTS = {
  minGpuCount: 8,
  minGpuMemoryMB: 81_920,
  minCpuCores: 64,
  minRamMB: 512_000,
  minStorageGB: 2_000,
  allowedGpuModels: [H100],
};

export function runParams(sys: System, options: RunOptions = {}) {
  return {
    master: options.master ?? sys.master.address,
    pricePerUnit: options.pricePerUnit ?? 2n * TOKEN,
    maxMembers: options.maxMembers ?? 3,
    budget: options.budget ?? 10_000n * TOKEN,
    discoveryURI: options.discoveryURI ?? "https://discovery.computenet.test",
    requirements: options.requirements ?? H100_REQUIREMENTS,
  };
}

/** Creates a run by the buyer; returns its id. */
export async function createRun(sys: System, options: RunOptions = {}): Promise<bigint> {
  await sys.trainingRuns.connect(sys.buyer).createRun(runParams(sys, options));
  return sys.trainingRuns.runCount();
}

/** Has the required number of validators approve `node`'s current declaration. */
export async function validateNode(sys: System, node: string) {
  const capsId = await sys.registry.capsIdOf(node);
  for (let i = 0n; i < REQUIRED_APPROVALS; i++) {
    await sys.challengeBoard
      .connect(sys.validators[Number(i)])
      .reportChallenge(node, capsId, true, `0x${(i + 1n).toString(16).padStart(64, "0")}`);
  }
}

/** An invite signature by `signer`, at the node's current invite generation unless one is given. */
export async function inviteFor(
  sys: System,
  signer: HardhatEthersSigner,
  invite: { runId: bigint; node: string; nonce: bigint; expiry: bigint; generation?: bigint },
): Promise<string> {
  const generation = invite.generation ?? (await sys.trainingRuns.inviteGenerationOf(invite.runId, invite.node));
  return signInvite(
    signer,
    { chainId: sys.chainId, verifyingContract: await sys.trainingRuns.getAddress() },
    { ...invite, generation },
  );
}

/** Registers `node` for `runId`, validates it and makes it a member with a fresh invite. */
export async function joinRun(
  connection: NetworkConnection,
  sys: System,
  runId: bigint,
  node: Account,
  nonce: bigint,
) {
  await sys.trainingRuns.connect(node).registerForRun(runId, node.address);
  if (!(await sys.challengeBoard.isValidated(node.address))) await validateNode(sys, node.address);
  const expiry = await farDeadline(connection);
  const signature = await inviteFor(sys, sys.master, { runId, node: node.address, nonce, expiry });
  return sys.trainingRuns.connect(node).acceptInvite(runId, node.address, nonce, expiry, signature);
}

/** `owner`'s ERC-2612 permit of `value` for `spender` at its current token nonce. */
export async function permitFor(sys: System, owner: HardhatEthersSigner, spender: string, value: bigint, deadline: bigint) {
  return signPermit(
    owner,
    { chainId: sys.chainId, verifyingContract: await sys.token.getAddress() },
    { spender, value, nonce: await sys.token.nonces(owner.address), deadline },
  );
}
