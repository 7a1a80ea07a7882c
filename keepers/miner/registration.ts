/**
 * Start-up on chain (subsystem "Registration"): what this node declares, whether it meets the run's
 * requirements (checked before any transaction), and the idempotent steps that make it a registered,
 * staked node registered for the run. Each step reads chain state first and is skipped when done, so a
 * restart sends nothing twice; a revert whose meaning is "already done" is treated as done.
 */
import { type Wallet, ZeroAddress, ZeroHash, decodeBytes32String } from "ethers";
import { type Capabilities, Participation, RunStatus, gpuModel, signNodeConsent } from "../../scripts/lib/protocol.js";
import type { Chain } from "../shared/chain.js";
import { ConfigError } from "../shared/config.js";
import type { Logger } from "../shared/log.js";
import { TxRevertedError, type TxSender } from "../shared/tx.js";
import {
  type HardwareReport,
  type RequirementGap,
  type RequirementsLike,
  checkRequirements,
  formatRequirementReport,
  toCapabilities,
} from "./hardware.js";

/** Figures a test (or an operator) sets instead of the detected ones. */
export interface CapabilityOverrides {
  cpuCores?: number;
  ramMB?: number;
  storageGB?: number;
  gpuCount?: number;
  gpuMemoryMB?: number;
}

/** The node cannot serve the run: thrown before any transaction, with the gaps and the operator's text. */
export class RequirementsNotMetError extends Error {
  constructor(
    readonly runId: bigint,
    readonly gaps: RequirementGap[],
    readonly report: string,
    /** "detected": this machine; "declared": the node's registration on chain. */
    readonly source: "detected" | "declared",
  ) {
    super(`this node does not meet the requirements of run ${runId} (${source} capabilities):\n${report}`);
    this.name = "RequirementsNotMetError";
  }
}

const PARTICIPATION_NAMES = ["None", "Registered", "Member"] as const;
const RUN_STATUS_NAMES = ["None", "Pending", "Active", "Completed", "Cancelled"] as const;

export function participationName(value: bigint | number): string {
  return PARTICIPATION_NAMES[Number(value)] ?? `Unknown(${value})`;
}

/** The detected capabilities with the operator's overrides applied; GPU model and memory stay consistent. */
export function capabilitiesFor(
  hardware: HardwareReport,
  options: { gpuModel?: string; overrides?: CapabilityOverrides },
): Capabilities {
  const detected = toCapabilities(hardware, { gpuModel: options.gpuModel });
  const o = options.overrides ?? {};
  const caps: Capabilities = {
    ...detected,
    ...(o.cpuCores !== undefined ? { cpuCores: o.cpuCores } : {}),
    ...(o.ramMB !== undefined ? { ramMB: o.ramMB } : {}),
    ...(o.storageGB !== undefined ? { storageGB: o.storageGB } : {}),
    ...(o.gpuCount !== undefined ? { gpuCount: o.gpuCount } : {}),
    ...(o.gpuMemoryMB !== undefined ? { gpuMemoryMB: o.gpuMemoryMB } : {}),
  };
  if (caps.gpuCount === 0) return { ...caps, gpuModel: ZeroHash, gpuMemoryMB: 0 };
  if (caps.gpuModel === ZeroHash) {
    // More GPUs declared than detected (an override on a GPU-less machine): the model must be named.
    if (!options.gpuModel) {
      throw new ConfigError([`--gpu-model (CN_GPU_MODEL): required when --gpu-count is ${caps.gpuCount} and no GPU is detected`]);
    }
    caps.gpuModel = gpuModel(options.gpuModel);
  }
  if (caps.gpuMemoryMB === 0) {
    throw new ConfigError([`--gpu-memory-mb (CN_GPU_MEMORY_MB): required when --gpu-count is ${caps.gpuCount} and GPU memory is not detected`]);
  }
  return caps;
}

/** Capabilities as logged: the model as its name. */
export function describeCapabilities(caps: Capabilities): Record<string, number | string> {
  return { ...caps, gpuModel: caps.gpuModel === ZeroHash ? "" : safeModelName(caps.gpuModel) };
}

function safeModelName(bytes32: string): string {
  try {
    return decodeBytes32String(bytes32);
  } catch {
    return bytes32;
  }
}

export interface RunView {
  runId: bigint;
  master: string;
  buyer: string;
  status: string;
  discoveryURI: string;
  requirements: RequirementsLike;
}

/** The run's master, status and requirements; a ConfigError when `--run-id` names no open run. */
export async function readRun(chain: Chain, runId: bigint): Promise<RunView> {
  const runs = chain.contracts.trainingRuns;
  const count = await runs.runCount();
  if (runId < 1n || runId > count) {
    throw new ConfigError([`--run-id (CN_RUN_ID): run ${runId} does not exist on chain (${count} runs so far)`]);
  }
  const [info, requirements] = await Promise.all([runs.getRun(runId), runs.requirementsOf(runId)]);
  const status = RUN_STATUS_NAMES[Number(info.status)] ?? String(info.status);
  if (Number(info.status) !== RunStatus.Pending && Number(info.status) !== RunStatus.Active) {
    throw new ConfigError([`--run-id (CN_RUN_ID): run ${runId} is ${status}: nodes can no longer join it`]);
  }
  return {
    runId,
    master: info.master,
    buyer: info.buyer,
    status,
    discoveryURI: info.discoveryURI,
    requirements: {
      minGpuCount: requirements.minGpuCount,
      minGpuMemoryMB: requirements.minGpuMemoryMB,
      minCpuCores: requirements.minCpuCores,
      minRamMB: requirements.minRamMB,
      minStorageGB: requirements.minStorageGB,
      allowedGpuModels: [...requirements.allowedGpuModels],
    },
  };
}

/** Throws RequirementsNotMetError (after logging the gaps) when `caps` misses a requirement of the run. */
export function assertMeetsRequirements(
  logger: Logger,
  run: RunView,
  caps: Capabilities | DeclaredCapabilities,
  source: "detected" | "declared",
): void {
  const gaps = checkRequirements(caps, run.requirements);
  const figures = {
    runId: run.runId.toString(),
    source,
    capabilities: describeCapabilities(toPlain(caps)),
    requirements: {
      minGpuCount: String(run.requirements.minGpuCount),
      minGpuMemoryMB: String(run.requirements.minGpuMemoryMB),
      minCpuCores: String(run.requirements.minCpuCores),
      minRamMB: String(run.requirements.minRamMB),
      minStorageGB: String(run.requirements.minStorageGB),
      allowedGpuModels: run.requirements.allowedGpuModels.map(safeModelName),
    },
  };
  if (gaps.length === 0) {
    logger.info(figures, `node meets the requirements of run ${run.runId}`);
    return;
  }
  const report = formatRequirementReport(gaps, { runId: run.runId });
  logger.error({ ...figures, gaps }, `node does not meet the requirements of run ${run.runId}; no transaction sent`);
  throw new RequirementsNotMetError(run.runId, gaps, report, source);
}

/** Capabilities as the registry returns them (bigints). */
export interface DeclaredCapabilities {
  gpuCount: bigint;
  gpuModel: string;
  gpuMemoryMB: bigint;
  cpuCores: bigint;
  ramMB: bigint;
  storageGB: bigint;
}

function toPlain(caps: Capabilities | DeclaredCapabilities): Capabilities {
  return {
    gpuCount: Number(caps.gpuCount),
    gpuModel: caps.gpuModel,
    gpuMemoryMB: Number(caps.gpuMemoryMB),
    cpuCores: Number(caps.cpuCores),
    ramMB: Number(caps.ramMB),
    storageGB: Number(caps.storageGB),
  };
}

export interface RegistrationContext {
  chain: Chain;
  tx: TxSender;
  logger: Logger;
  nodeWallet: Wallet;
  provider: string;
  run: RunView;
}

export interface RegistrationResult {
  /** True when this start registered the node (false: it was registered before). */
  registeredNow: boolean;
  capsId: bigint;
  stake: bigint;
  minimumStake: bigint;
  participation: string;
  /** What the node declares on chain (which may differ from what was detected, if registered earlier). */
  declared: Capabilities;
}

/** The node's on-chain registration, or undefined; a ConfigError when another provider registered it. */
export async function readRegistration(
  chain: Chain,
  node: string,
  provider: string,
): Promise<{ capsId: bigint; stake: bigint; capabilities: DeclaredCapabilities } | undefined> {
  const registry = chain.contracts.registry;
  const [owner] = await registry.registrationOf(node);
  if (owner === ZeroAddress) return undefined;
  if (owner.toLowerCase() !== provider.toLowerCase()) {
    throw new ConfigError([`node ${node} is registered by provider ${owner}, not by this provider key (${provider})`]);
  }
  const info = await registry.getNode(node);
  const c = info.capabilities;
  return {
    capsId: info.capsId,
    stake: info.stake,
    capabilities: {
      gpuCount: c.gpuCount,
      gpuModel: c.gpuModel,
      gpuMemoryMB: c.gpuMemoryMB,
      cpuCores: c.cpuCores,
      ramMB: c.ramMB,
      storageGB: c.storageGB,
    },
  };
}

/**
 * Registers the node with `caps` and `stake` (default: the registry's minimum for its GPU count) if it is
 * not registered, tops its stake up to the minimum, and registers it for the run if it is not in it.
 */
export async function ensureRegistration(
  ctx: RegistrationContext,
  caps: Capabilities,
  stakeOption: bigint | undefined,
): Promise<RegistrationResult> {
  const { chain, tx, logger, nodeWallet, provider, run } = ctx;
  const { registry, token, trainingRuns } = chain.contracts;
  const node = nodeWallet.address;
  const registryAddress = await registry.getAddress();
  let registeredNow = false;

  const ensureAllowance = async (amount: bigint) => {
    const allowance = await token.allowance(provider, registryAddress);
    if (allowance >= amount) return;
    logger.info({ allowance: allowance.toString(), needed: amount.toString() }, "approving the stake to the registry");
    await tx.send("approve", () => token.approve(registryAddress, amount), { subsystem: "Registration", amount: amount.toString() });
  };

  let registration = await readRegistration(chain, node, provider);
  if (!registration) {
    const minimum = await registry.minimumStake(caps.gpuCount);
    const stake = stakeOption ?? minimum;
    if (stake < minimum) {
      throw new ConfigError([
        `--stake (CN_STAKE): ${stake} is below the registry's minimum ${minimum} for a node with ${caps.gpuCount} GPUs`,
      ]);
    }
    const balance = await token.balanceOf(provider);
    if (balance < stake) {
      throw new Error(`provider ${provider} holds ${balance} token wei; the stake needs ${stake}`);
    }
    await ensureAllowance(stake);
    const nonce = await registry.nonces(node);
    const latest = await chain.provider.getBlock("latest");
    const deadline = BigInt(latest!.timestamp) + 3600n;
    const consent = await signNodeConsent(
      nodeWallet,
      { chainId: chain.chainId, verifyingContract: registryAddress },
      { provider, nonce, deadline },
    );
    logger.info(
      { capabilities: describeCapabilities(caps), stake: stake.toString(), minimumStake: minimum.toString(), consentNonce: nonce.toString() },
      "registering the node",
    );
    try {
      await tx.send("registerNode", () => registry.registerNode(node, caps, stake, deadline, consent), {
        subsystem: "Registration",
        node,
        stake: stake.toString(),
      });
      registeredNow = true;
    } catch (error) {
      if (!(error instanceof TxRevertedError && error.errorName === "MinerRegistryNodeAlreadyRegistered")) throw error;
      logger.info({ revert: error.message }, "node registered meanwhile: nothing to do");
    }
    registration = await readRegistration(chain, node, provider);
    if (!registration) throw new Error(`node ${node} is still not registered after registerNode`);
  } else {
    logger.info(
      { capsId: registration.capsId.toString(), stake: registration.stake.toString() },
      "node already registered: not registering again",
    );
  }

  const minimum = await registry.minimumStake(registration.capabilities.gpuCount);
  if (registration.stake < minimum) {
    const topUp = minimum - registration.stake;
    logger.info({ stake: registration.stake.toString(), minimumStake: minimum.toString(), topUp: topUp.toString() }, "stake below the minimum: topping up");
    await ensureAllowance(topUp);
    await tx.send("stake", () => registry.stake(node, topUp), { subsystem: "Registration", amount: topUp.toString() });
    registration = (await readRegistration(chain, node, provider))!;
  }

  let participation = await trainingRuns.participationOf(run.runId, node);
  if (Number(participation) === Participation.None) {
    logger.info({ runId: run.runId.toString() }, "registering the node for the run");
    try {
      await tx.send("registerForRun", () => trainingRuns.registerForRun(run.runId, node), {
        subsystem: "Registration",
        runId: run.runId.toString(),
      });
    } catch (error) {
      if (!(error instanceof TxRevertedError && error.errorName === "TrainingRunsInvalidParticipation")) throw error;
      logger.info({ revert: error.message }, "node registered for the run meanwhile: nothing to do");
    }
    participation = await trainingRuns.participationOf(run.runId, node);
  } else {
    logger.info({ runId: run.runId.toString(), participation: participationName(participation) }, "node already in the run");
  }

  const result: RegistrationResult = {
    registeredNow,
    capsId: registration.capsId,
    stake: registration.stake,
    minimumStake: minimum,
    participation: participationName(participation),
    declared: toPlain(registration.capabilities),
  };
  logger.info(
    {
      registeredNow,
      capsId: result.capsId.toString(),
      stake: result.stake.toString(),
      minimumStake: minimum.toString(),
      participation: result.participation,
      declared: describeCapabilities(result.declared),
    },
    "registration complete",
  );
  return result;
}
