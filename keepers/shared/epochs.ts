/**
 * The epoch clock as keepers see it: an epoch's phase boundaries (read once from EpochManager and cached:
 * they are final once the epoch is at most one epoch away), the phase at the current time, beacons, and
 * the permissionless calls every keeper makes when they are due (`advance`, `fixClaimBeacon`), so that the
 * chain never depends on one party to move on.
 */
import type { EpochManager, IRewardVault } from "../../typechain-types/index.js";
import type { Logger } from "./log.js";
import { TxRevertedError, type TxSender } from "./tx.js";

export const PHASES = ["NotStarted", "PoC", "PoCValidation", "Work", "Dispute", "Claim", "Closed"] as const;
export type PhaseName = (typeof PHASES)[number];

/** An epoch's phase boundaries, in seconds. */
export interface Timeline {
  start: number;
  pocEnd: number;
  pocValidationEnd: number;
  end: number;
  disputeEnd: number;
  claimEnd: number;
}

export function phaseAt(t: Timeline, nowSec: number): PhaseName {
  if (nowSec < t.start) return "NotStarted";
  if (nowSec < t.pocEnd) return "PoC";
  if (nowSec < t.pocValidationEnd) return "PoCValidation";
  if (nowSec < t.end) return "Work";
  if (nowSec < t.disputeEnd) return "Dispute";
  if (nowSec < t.claimEnd) return "Claim";
  return "Closed";
}

export const nowSeconds = (): number => Date.now() / 1000;

/**
 * Phases are judged by the chain's time, not the machine's: what matters is whether a transaction sent now
 * lands inside a window, and the chain's `block.timestamp` may differ from the local clock (a local node
 * behind by a second, a sequencer's clock, a drifting machine). The clock reads the latest block's
 * timestamp on every `current()` and keeps the offset to the local clock in between.
 */
export class EpochClock {
  private readonly timelines = new Map<bigint, Timeline>();
  private readonly beacons = new Map<bigint, string>();
  /** Chain time minus local time, in seconds (0 until the first `current()`). */
  private offset = 0;

  constructor(private readonly epochs: EpochManager) {}

  /** The chain's time now, in seconds (local time corrected by the last measured offset). */
  now(): number {
    return nowSeconds() + this.offset;
  }

  /** Local time (ms, as Date.now) at which the chain's clock reads `chainSec`. */
  localMs(chainSec: number): number {
    return (chainSec - this.offset) * 1000;
  }

  private async syncOffset(): Promise<void> {
    const runner = this.epochs.runner;
    const provider = runner && "getBlock" in runner ? runner : runner?.provider;
    if (!provider || !("getBlock" in provider)) return;
    try {
      const block = await (provider as { getBlock(tag: string): Promise<{ timestamp: number } | null> }).getBlock("latest");
      // The latest block may be up to a block interval old: the offset errs on the late side, which the
      // keepers' margins before a window's end absorb.
      if (block) this.offset = block.timestamp - nowSeconds();
    } catch {
      // keep the last offset
    }
  }

  /** The boundaries of `epoch`; cached once the epoch is within one epoch of the current one. */
  async timeline(epoch: bigint): Promise<Timeline> {
    const cached = this.timelines.get(epoch);
    if (cached) return cached;
    const t = await this.epochs.timelineOf(epoch);
    const timeline: Timeline = {
      start: Number(t.start),
      pocEnd: Number(t.pocEnd),
      pocValidationEnd: Number(t.pocValidationEnd),
      end: Number(t.end),
      disputeEnd: Number(t.disputeEnd),
      claimEnd: Number(t.claimEnd),
    };
    // Parameters scheduled now apply from currentEpoch + 2: an epoch that has started (or is next) is final.
    if (timeline.start <= this.now() + (timeline.end - timeline.start)) {
      if (this.timelines.size > 256) this.timelines.clear();
      this.timelines.set(epoch, timeline);
    }
    return timeline;
  }

  /** The current epoch (0 before genesis), its boundaries and phase. */
  async current(): Promise<{ epoch: bigint; timeline: Timeline | undefined; phase: PhaseName }> {
    const [epoch] = await Promise.all([this.epochs.currentEpoch(), this.syncOffset()]);
    if (epoch === 0n) return { epoch, timeline: undefined, phase: "NotStarted" };
    const timeline = await this.timeline(epoch);
    return { epoch, timeline, phase: phaseAt(timeline, this.now()) };
  }

  /** The phase of `epoch` now, by the chain's time (read afresh: a caller may never call `current()`). */
  async phaseOf(epoch: bigint): Promise<PhaseName> {
    const [timeline] = await Promise.all([this.timeline(epoch), this.syncOffset()]);
    return phaseAt(timeline, this.now());
  }

  /** The PoC beacon of `epoch`, or undefined while nobody advanced it. */
  async pocBeacon(epoch: bigint): Promise<string | undefined> {
    const cached = this.beacons.get(epoch);
    if (cached) return cached;
    const record = await this.epochs.recordOf(epoch);
    if (/^0x0+$/.test(record.pocBeacon)) return undefined;
    if (this.beacons.size > 256) this.beacons.clear();
    this.beacons.set(epoch, record.pocBeacon);
    return record.pocBeacon;
  }
}

/**
 * Advances the epoch when it is due (anyone may; every keeper tries, the first wins). Returns the epoch it
 * advanced, or undefined when nothing was due or another keeper was faster.
 */
export async function advanceIfDue(clock: EpochClock, epochs: EpochManager, tx: TxSender, log: Logger): Promise<bigint | undefined> {
  const { epoch } = await clock.current();
  if (epoch === 0n || (await clock.pocBeacon(epoch)) !== undefined) return undefined;
  if ((await epochs.lastAdvancedEpoch()) >= epoch) return undefined;
  try {
    await tx.send("advance", () => epochs.advance(), { subsystem: "Epochs", epoch: epoch.toString() });
    log.info({ epoch: epoch.toString() }, "epoch advanced: its PoC beacon is fixed");
    return epoch;
  } catch (error) {
    if (error instanceof TxRevertedError && error.errorName === "EpochManagerAdvanceNotDue") return undefined;
    throw error;
  }
}

/**
 * Fixes the claim beacon of the recent epochs whose Dispute phase is over (anyone may; every keeper tries).
 * Fixing it at once leaves a node that skipped duties no time to wait for a block hash that spares it.
 * Looks back at most `lookBack` epochs (a bounded number of reads per call).
 */
export async function fixClaimBeaconsIfDue(
  clock: EpochClock,
  epochs: EpochManager,
  tx: TxSender,
  log: Logger,
  current: bigint,
  lookBack = 3n,
): Promise<void> {
  for (let epoch = current - 1n; epoch >= 1n && epoch >= current - lookBack; epoch--) {
    const timeline = await clock.timeline(epoch);
    if (clock.now() < timeline.disputeEnd) continue;
    const record = await epochs.recordOf(epoch);
    if (/^0x0+$/.test(record.pocBeacon) || !/^0x0+$/.test(record.claimBeacon)) continue;
    try {
      await tx.send("fixClaimBeacon", () => epochs.fixClaimBeacon(epoch), { subsystem: "Epochs", epoch: epoch.toString() });
      log.info({ epoch: epoch.toString() }, "claim beacon fixed: the epoch's claims can sample its tasks");
    } catch (error) {
      if (error instanceof TxRevertedError) continue; // another keeper was first, or not due on chain yet
      throw error;
    }
  }
}

/**
 * Returns the unpaid rest of recent epochs' emission to the vault once their Claim phase is over (anyone
 * may; keepers do it so that the rest is not left outstanding under the supply cap). Bounded look-back.
 */
export async function returnUnclaimedIfDue(
  clock: EpochClock,
  vault: IRewardVault,
  tx: TxSender,
  log: Logger,
  current: bigint,
  lookBack = 4n,
): Promise<void> {
  for (let epoch = current - 1n; epoch >= 1n && epoch >= current - lookBack; epoch--) {
    const timeline = await clock.timeline(epoch);
    if (clock.now() < timeline.claimEnd + 1) continue;
    const record = await vault.emissionOf(epoch);
    if (!record.fixed_ || record.returned) continue;
    try {
      await tx.send("returnUnclaimed", () => vault.returnUnclaimed(epoch), { subsystem: "Rewards", epoch: epoch.toString() });
      log.info({ epoch: epoch.toString(), emission: record.emission.toString(), paid: record.paid.toString(), returned: (record.emission - record.paid).toString() }, "the epoch's unclaimed emission returned to the vault");
    } catch (error) {
      if (error instanceof TxRevertedError) continue;
      throw error;
    }
  }
}
