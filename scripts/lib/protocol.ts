/**
 * The protocol's typed data and units, shared by tests, scripts and (later) keepers: one definition of
 * what a node's consent and a master's invite look like, so signer and verifier cannot drift apart.
 */
import { Signature, encodeBytes32String, type Signer, type TypedDataDomain } from "ethers";

/** EIP-712 domain names and versions, as set in the contracts' constructors. */
export const REGISTRY_DOMAIN = { name: "computenet.MinerRegistry", version: "1" } as const;
export const RUNS_DOMAIN = { name: "computenet.TrainingRuns", version: "1" } as const;

/** EIP-712 domain of ComputeToken's ERC-2612 permit. */
export const TOKEN_DOMAIN = { name: "Computenet", version: "1" } as const;

export const PERMIT_TYPES = {
  Permit: [
    { name: "owner", type: "address" },
    { name: "spender", type: "address" },
    { name: "value", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
};

export const NODE_CONSENT_TYPES = {
  NodeConsent: [
    { name: "provider", type: "address" },
    { name: "node", type: "address" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
};

export const INVITE_TYPES = {
  Invite: [
    { name: "runId", type: "uint256" },
    { name: "node", type: "address" },
    { name: "generation", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "expiry", type: "uint256" },
  ],
};

/** 1 token in wei (18 decimals). */
export const TOKEN = 10n ** 18n;

/** Capability names, in the order of `IMinerRegistry.Capability`. */
export const Capability = { GpuCount: 0, GpuModel: 1, GpuMemory: 2, CpuCores: 3, Ram: 4, Storage: 5 } as const;
/** `ITrainingRuns.RunStatus`. */
export const RunStatus = { None: 0, Pending: 1, Active: 2, Completed: 3, Cancelled: 4 } as const;
/** `ITrainingRuns.Participation`. */
export const Participation = { None: 0, Registered: 1, Member: 2 } as const;
/** `IChallengeBoard.ChallengeStatus`. */
export const ChallengeStatus = { None: 0, Pending: 1, Validated: 2, Rejected: 3 } as const;
/** `IEpochManager.Phase`. */
export const EpochPhase = { NotStarted: 0, PoC: 1, PoCValidation: 2, Work: 3, Dispute: 4, Claim: 5, Closed: 6 } as const;
/** `IEpochManager.Parameter`. */
export const EpochParameter = {
  EpochLength: 0,
  PocDuration: 1,
  PocValidationDuration: 2,
  DisputeWindow: 3,
  ClaimWindow: 4,
} as const;
/** `ITaskLedger.TaskStatus`. */
export const TaskStatus = { None: 0, Assigned: 1, Completed: 2, Invalidated: 3, Expired: 4 } as const;
/** `ITaskLedger.DisputeStatus`. */
export const DisputeStatus = { None: 0, Open: 1, Invalidated: 2, Upheld: 3, Unresolved: 4 } as const;

export interface Capabilities {
  gpuCount: number;
  gpuModel: string;
  gpuMemoryMB: number;
  cpuCores: number;
  ramMB: number;
  storageGB: number;
}

/** A GPU model name as the right-padded bytes32 the contracts store (at most 31 bytes of UTF-8). */
export function gpuModel(name: string): string {
  return encodeBytes32String(name);
}

export interface DomainTarget {
  chainId: bigint;
  verifyingContract: string;
}

/** The node key's consent to be registered by `provider` (`MinerRegistry.registerNode`). */
export async function signNodeConsent(
  node: Signer,
  target: DomainTarget,
  consent: { provider: string; nonce: bigint; deadline: bigint },
): Promise<string> {
  const domain: TypedDataDomain = { ...REGISTRY_DOMAIN, ...target };
  return node.signTypedData(domain, NODE_CONSENT_TYPES, { ...consent, node: await node.getAddress() });
}

/**
 * A run master's invite of `node` (`TrainingRuns.acceptInvite`). `generation` is the node's current
 * `inviteGenerationOf(runId, node)`: it changes when the node leaves or is ejected, voiding older invites.
 */
export async function signInvite(
  master: Signer,
  target: DomainTarget,
  invite: { runId: bigint; node: string; generation: bigint; nonce: bigint; expiry: bigint },
): Promise<string> {
  const domain: TypedDataDomain = { ...RUNS_DOMAIN, ...target };
  return master.signTypedData(domain, INVITE_TYPES, invite);
}

/** `owner`'s ERC-2612 permit for `spender` (ComputeToken), split into v, r, s for `selfPermit`. */
export async function signPermit(
  owner: Signer,
  target: DomainTarget,
  permit: { spender: string; value: bigint; nonce: bigint; deadline: bigint },
): Promise<Signature> {
  const domain: TypedDataDomain = { ...TOKEN_DOMAIN, ...target };
  return Signature.from(await owner.signTypedData(domain, PERMIT_TYPES, { ...permit, owner: await owner.getAddress() }));
}
