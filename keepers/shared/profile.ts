/**
 * Per-chain defaults of the keepers' chain settings. A keeper reads the chain id from its deployment file
 * (checked against the RPC node) and, for every setting not given by a flag or its environment variable
 * (`--poll-ms` / CN_POLL_MS, `--confirmations` / CN_CONFIRMATIONS), takes the value of that chain's
 * profile. It logs the profile in effect at startup.
 *
 * Why these values:
 *
 * - Arbitrum (One and Sepolia). The sequencer orders transactions and gives a "soft" finality within a
 *   second: a block it has published is not reorganised unless the sequencer itself misbehaves, and no
 *   number of L2 confirmations protects against that (only the batch being final on L1, minutes later,
 *   does). Confirmations there guard against something else: RPC endpoints are load-balanced over
 *   several nodes, one of which may answer `eth_blockNumber` a block ahead of the one answering
 *   `eth_getLogs`; a follower that asked for the newest block could get an empty answer from the node
 *   that does not have it yet and move its cursor past events it never saw. Staying one block behind the
 *   head prevents that. Arbitrum One takes two: blocks come every ~0.25 s under its steady traffic, so the
 *   second block costs a quarter of a second and gives a margin where real stake moves. Arbitrum Sepolia
 *   takes one: blocks there are made when transactions arrive, so on a quiet testnet a second
 *   confirmation can take seconds, and validators wait for that many on their own reports.
 *   Polling every second: L2 blocks are too frequent to follow one by one anyway, every decision the
 *   keepers make is measured in seconds to hours (challenge deadlines, epoch phases), and each poll is an
 *   `eth_blockNumber` plus an `eth_getLogs` per keeper against a provider with request quotas.
 * - A local Hardhat node (31337): nothing reorganises, so no confirmation; poll twice a second so that the
 *   devnet and the tests react quickly.
 * - Any other chain: the conservative Arbitrum One values, with a warning to set them explicitly.
 */

export interface ChainProfile {
  /** Short name, shown in the startup log and discovery's /health. */
  name: string;
  /** Chain polling interval, ms. */
  pollMs: number;
  /** Blocks to stay behind the head before acting on an event (and to wait for on reports). */
  confirmations: number;
}

export const ARBITRUM_ONE_CHAIN_ID = 42161;
export const ARBITRUM_SEPOLIA_CHAIN_ID = 421614;
export const LOCAL_CHAIN_ID = 31337;

export const CHAIN_PROFILES: ReadonlyMap<number, ChainProfile> = new Map([
  [ARBITRUM_ONE_CHAIN_ID, { name: "arbitrum-one", pollMs: 1000, confirmations: 2 }],
  [ARBITRUM_SEPOLIA_CHAIN_ID, { name: "arbitrum-sepolia", pollMs: 1000, confirmations: 1 }],
  [LOCAL_CHAIN_ID, { name: "local", pollMs: 500, confirmations: 0 }],
]);

/** The profile of a chain without its own (see above). */
export const FALLBACK_PROFILE: ChainProfile = { name: "other", pollMs: 1000, confirmations: 2 };

/** Where a setting in effect comes from. */
export type SettingSource = "profile" | "set";

export interface ChainSettings {
  chainId: number;
  profile: string;
  /** Whether the chain has a profile of its own (false: FALLBACK_PROFILE). */
  known: boolean;
  pollMs: number;
  confirmations: number;
  /** "set" when given by a flag, an environment variable or the caller; "profile" otherwise. */
  source: { pollMs: SettingSource; confirmations: SettingSource };
}

export function chainProfile(chainId: number | bigint): ChainProfile | undefined {
  return CHAIN_PROFILES.get(Number(chainId));
}

/** The settings in effect on `chainId`: each one given in `explicit` wins over the chain's profile. */
export function resolveChainSettings(chainId: number | bigint, explicit: { pollMs?: number; confirmations?: number } = {}): ChainSettings {
  const profile = chainProfile(chainId);
  const base = profile ?? FALLBACK_PROFILE;
  return {
    chainId: Number(chainId),
    profile: base.name,
    known: profile !== undefined,
    pollMs: explicit.pollMs ?? base.pollMs,
    confirmations: explicit.confirmations ?? base.confirmations,
    source: {
      pollMs: explicit.pollMs === undefined ? "profile" : "set",
      confirmations: explicit.confirmations === undefined ? "profile" : "set",
    },
  };
}

/** One line for the startup log, e.g. `chain profile arbitrum-sepolia (chain 421614): poll 1000 ms, 1 confirmation`. */
export function describeChainSettings(settings: ChainSettings): string {
  const mark = (source: SettingSource) => (source === "set" ? " (set)" : "");
  const blocks = settings.confirmations === 1 ? "confirmation" : "confirmations";
  return (
    `chain profile ${settings.profile} (chain ${settings.chainId}): poll ${settings.pollMs} ms${mark(settings.source.pollMs)}, ` +
    `${settings.confirmations} ${blocks}${mark(settings.source.confirmations)}`
  );
}
