/**
 * EpochManager: the epoch clock (epochs and phases by block time), the two beacons of each epoch, nodes'
 * seed commitments, and parameters that change only from a later epoch.
 *
 * The system comes from the shared Ignition fixture: epochs of 1 day, PoC 1 h, PoC validation 1 h,
 * dispute window 6 h, claim window 7 days, genesis at the deployment's block. This file's fixture adds
 * four registered nodes (n1, n2 under p1; n3, n4 under p2); n5 is not registered.
 *
 * Phases are half-open intervals [from, to): a test of a boundary checks the last second of one phase and
 * the first of the next. Views are read after `time.increaseTo(t)` (a block stamped t); transactions run
 * in a block stamped by `setNextBlockTimestamp`, with a fixed gas limit where they revert, so that the
 * revert happens on chain at that very second rather than in gas estimation.
 */
import { expect } from "chai";
import { network } from "hardhat";
import type { ContractTransactionResponse } from "ethers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import type { EpochManager } from "../typechain-types/index.js";
import { CPU_NODE, DAY, EPOCH_PARAMETERS, H100_NODE, HOUR, deploySystem, registerNode } from "./helpers/system.js";
import { EpochParameter, EpochPhase } from "../scripts/lib/protocol.js";

const connection = await network.create();
const { ethers, networkHelpers } = connection;
const { time } = networkHelpers;

const MIN_EPOCH_LENGTH = 60n;
const MAX_EPOCH_LENGTH = 30n * DAY;
const MAX_WINDOW = 30n * DAY;
const MAX_GENESIS_DELAY = 30n * DAY;
const POC_TAG = ethers.id("computenet.EpochManager.pocBeacon");
const CLAIM_TAG = ethers.id("computenet.EpochManager.claimBeacon");
/** Skips gas estimation: the transaction is mined (and reverts) in the block stamped as the test set it. */
const MINED = { gasLimit: 1_000_000 };

interface Params {
  epochLength: bigint;
  pocDuration: bigint;
  pocValidationDuration: bigint;
  disputeWindow: bigint;
  claimWindow: bigint;
}
const P: Params = EPOCH_PARAMETERS;
/** Shorter epochs, scheduled by the parameter tests. */
const HALF_DAY: Params = {
  epochLength: 12n * HOUR,
  pocDuration: 30n * 60n,
  pocValidationDuration: 45n * 60n,
  disputeWindow: 2n * HOUR,
  claimWindow: 3n * DAY,
};
const TWO_DAYS: Params = { ...P, epochLength: 2n * DAY, claimWindow: 14n * DAY };

/** The timeline of an epoch starting at `start` under `p`. */
function timelineFrom(start: bigint, p: Params) {
  const pocEnd = start + p.pocDuration;
  const pocValidationEnd = pocEnd + p.pocValidationDuration;
  const end = start + p.epochLength;
  const disputeEnd = end + p.disputeWindow;
  return { start, pocEnd, pocValidationEnd, end, disputeEnd, claimEnd: disputeEnd + p.claimWindow };
}

/** A Parameters struct as an event argument. */
function asParams(p: Params) {
  return [p.epochLength, p.pocDuration, p.pocValidationDuration, p.disputeWindow, p.claimWindow];
}

/** A Parameters struct read from the contract, as a plain object. */
function plainParams(p: Params): Params {
  const { epochLength, pocDuration, pocValidationDuration, disputeWindow, claimWindow } = p;
  return { epochLength, pocDuration, pocValidationDuration, disputeWindow, claimWindow };
}

/** A Timeline struct read from the contract, as a plain object. */
function plainTimeline(t: ReturnType<typeof timelineFrom>) {
  const { start, pocEnd, pocValidationEnd, end, disputeEnd, claimEnd } = t;
  return { start, pocEnd, pocValidationEnd, end, disputeEnd, claimEnd };
}

const coder = ethers.AbiCoder.defaultAbiCoder();

/** The beacon the contract derives from `previous` and `entropy` for `epoch` of kind `tag`. */
function beaconFrom(previous: string, entropy: string, chainId: bigint, contract: string, epoch: bigint, tag: string) {
  return ethers.keccak256(
    coder.encode(
      ["bytes32", "bytes32", "uint256", "address", "uint64", "bytes32"],
      [previous, entropy, chainId, contract, epoch, tag],
    ),
  );
}

/** The production entropy of a transaction: the hash of the block before the one it was mined in. */
async function entropyOf(tx: ContractTransactionResponse): Promise<string> {
  const receipt = await tx.wait();
  return (await ethers.provider.getBlock(receipt!.blockNumber - 1))!.hash!;
}

async function blockTime(tx: ContractTransactionResponse): Promise<bigint> {
  const receipt = await tx.wait();
  return BigInt((await ethers.provider.getBlock(receipt!.blockNumber))!.timestamp);
}

async function epochFixture() {
  const sys = await deploySystem(connection);
  const [p1, p2] = sys.providers;
  const [n1, n2, n3, n4, n5] = sys.nodes;
  await registerNode(connection, sys, p1, n1, H100_NODE);
  await registerNode(connection, sys, p1, n2, CPU_NODE);
  await registerNode(connection, sys, p2, n3, CPU_NODE);
  await registerNode(connection, sys, p2, n4, CPU_NODE);
  const em = sys.epochManager;
  const genesis = await em.genesis();
  const DEFAULT_ADMIN_ROLE = await em.DEFAULT_ADMIN_ROLE();
  /** Start of `epoch` under the fixture's parameters (no change scheduled). */
  const startOf = (epoch: bigint) => genesis + (epoch - 1n) * P.epochLength;
  const timelineOf = (epoch: bigint) => timelineFrom(startOf(epoch), P);
  return { sys, em, genesis, p1, p2, n1, n2, n3, n4, n5, DEFAULT_ADMIN_ROLE, startOf, timelineOf };
}

/** A fresh EpochManager on the fixture's registry, deployed in a block stamped `now` with `genesis`. */
async function deployAt(registry: string, admin: string, now: bigint, genesis: bigint, params: Params = P) {
  await time.setNextBlockTimestamp(now);
  return (await ethers.deployContract("EpochManager", [admin, registry, genesis, params])) as unknown as EpochManager;
}

describe("EpochManager", () => {
  describe("constructor", () => {
    it("starts epoch 1 at the deployment's block when genesis is 0, with the given parameters from epoch 1", async () => {
      const { sys, em, genesis } = await networkHelpers.loadFixture(epochFixture);
      const [event] = await em.queryFilter(em.filters.ParametersScheduled());
      const deployedAt = BigInt((await ethers.provider.getBlock(event.blockNumber))!.timestamp);
      expect(genesis).to.equal(deployedAt);
      expect(event.args.fromEpoch).to.equal(1n);
      expect(event.args.fromStart).to.equal(genesis);
      expect(plainParams(event.args.parameters)).to.deep.equal(P);
      expect(plainParams(await em.parametersOf(1n))).to.deep.equal(P);
      expect(await em.registry()).to.equal(await sys.registry.getAddress());
      expect(await em.hasRole(await em.DEFAULT_ADMIN_ROLE(), sys.admin.address)).to.equal(true);
      expect(await em.lastAdvancedEpoch()).to.equal(0n);
      expect(await em.epochStart(1n)).to.equal(genesis);
    });

    it("accepts a later genesis, up to MAX_GENESIS_DELAY ahead: before it the epoch is 0 and nothing is due", async () => {
      const { sys } = await networkHelpers.loadFixture(epochFixture);
      const registry = await sys.registry.getAddress();
      const now = BigInt(await time.latest()) + 100n;
      const latest = await deployAt(registry, sys.admin.address, now, now + MAX_GENESIS_DELAY);
      expect(await latest.genesis()).to.equal(now + MAX_GENESIS_DELAY);

      const genesis = now + 2n * HOUR + 10n;
      const em = await deployAt(registry, sys.admin.address, now + 1n, genesis);
      expect(await em.genesis()).to.equal(genesis);
      await time.increaseTo(genesis - 10n);
      expect(await em.currentEpoch()).to.equal(0n);
      expect(await em.currentPhase()).to.equal(BigInt(EpochPhase.NotStarted));
      expect(await em.phaseOf(1n)).to.equal(BigInt(EpochPhase.NotStarted));
      // A change scheduled before genesis applies from epoch 2, like one scheduled during epoch 0.
      await time.setNextBlockTimestamp(genesis - 2n);
      await expect(em.connect(sys.admin).scheduleParameters(HALF_DAY))
        .to.emit(em, "ParametersScheduled")
        .withArgs(2n, genesis + P.epochLength, asParams(HALF_DAY));
      await time.setNextBlockTimestamp(genesis - 1n);
      await expect(em.connect(sys.stranger).advance(MINED))
        .to.be.revertedWithCustomError(em, "EpochManagerAdvanceNotDue")
        .withArgs(0n, genesis);

      await time.setNextBlockTimestamp(genesis);
      await expect(em.connect(sys.stranger).advance()).to.emit(em, "EpochAdvanced");
      expect(await em.currentEpoch()).to.equal(1n);
      expect(await em.currentPhase()).to.equal(BigInt(EpochPhase.PoC));
    });

    it("refuses a genesis in the past or more than MAX_GENESIS_DELAY ahead", async () => {
      const { sys, em } = await networkHelpers.loadFixture(epochFixture);
      const registry = await sys.registry.getAddress();
      const now = BigInt(await time.latest()) + 100n;
      for (const genesis of [now - 1n, now + MAX_GENESIS_DELAY + 1n]) {
        await expect(deployAt(registry, sys.admin.address, now, genesis))
          .to.be.revertedWithCustomError(em, "EpochManagerInvalidGenesis")
          .withArgs(genesis, now, now + MAX_GENESIS_DELAY);
      }
    });

    it("refuses a zero admin or a zero registry", async () => {
      const { sys, em } = await networkHelpers.loadFixture(epochFixture);
      const registry = await sys.registry.getAddress();
      await expect(
        ethers.deployContract("EpochManager", [ethers.ZeroAddress, registry, 0n, P]),
      ).to.be.revertedWithCustomError(em, "EpochManagerZeroAddress");
      await expect(
        ethers.deployContract("EpochManager", [sys.admin.address, ethers.ZeroAddress, 0n, P]),
      ).to.be.revertedWithCustomError(em, "EpochManagerZeroAddress");
    });

    it("refuses parameters out of bounds, as scheduleParameters does", async () => {
      const { sys, em } = await networkHelpers.loadFixture(epochFixture);
      const registry = await sys.registry.getAddress();
      await expect(ethers.deployContract("EpochManager", [sys.admin.address, registry, 0n, { ...P, claimWindow: 0n }]))
        .to.be.revertedWithCustomError(em, "EpochManagerInvalidParameter")
        .withArgs(EpochParameter.ClaimWindow, 0n, 1n, MAX_WINDOW);
    });
  });

  describe("currentEpoch, epochStart, timelineOf", () => {
    it("numbers epochs from 1 at genesis, one epochLength each, the boundary second in the later epoch", async () => {
      const { em, startOf } = await networkHelpers.loadFixture(epochFixture);
      expect(await em.currentEpoch()).to.equal(1n);
      await time.increaseTo(startOf(2n) - 1n);
      expect(await em.currentEpoch()).to.equal(1n);
      await time.increaseTo(startOf(2n));
      expect(await em.currentEpoch()).to.equal(2n);
      await time.increaseTo(startOf(6n) + 7n);
      expect(await em.currentEpoch()).to.equal(6n);
      for (const epoch of [1n, 2n, 6n, 1000n]) expect(await em.epochStart(epoch)).to.equal(startOf(epoch));
    });

    it("gives each epoch's phase boundaries from its parameters", async () => {
      const { em, timelineOf } = await networkHelpers.loadFixture(epochFixture);
      for (const epoch of [1n, 3n, 365n]) {
        expect(plainTimeline(await em.timelineOf(epoch))).to.deep.equal(timelineOf(epoch));
      }
    });

    it("refuses epoch 0, the time before genesis", async () => {
      const { em } = await networkHelpers.loadFixture(epochFixture);
      for (const call of [em.epochStart(0n), em.timelineOf(0n), em.phaseOf(0n), em.parametersOf(0n)]) {
        await expect(call).to.be.revertedWithCustomError(em, "EpochManagerInvalidEpoch").withArgs(0n);
      }
    });
  });

  describe("phaseOf, currentPhase", () => {
    it("moves an epoch through its phases at the exact second each starts", async () => {
      const { em, timelineOf } = await networkHelpers.loadFixture(epochFixture);
      const t = timelineOf(2n);
      const steps: Array<[bigint, number]> = [
        [t.start, EpochPhase.PoC],
        [t.pocEnd, EpochPhase.PoCValidation],
        [t.pocValidationEnd, EpochPhase.Work],
        [t.end, EpochPhase.Dispute],
        [t.disputeEnd, EpochPhase.Claim],
        [t.claimEnd, EpochPhase.Closed],
      ];
      let previous: number = EpochPhase.NotStarted;
      for (const [from, phase] of steps) {
        await time.increaseTo(from - 1n);
        expect(await em.phaseOf(2n), `second before ${phase}`).to.equal(BigInt(previous));
        await time.increaseTo(from);
        expect(await em.phaseOf(2n), `first second of ${phase}`).to.equal(BigInt(phase));
        previous = phase;
      }
    });

    it("is the phase of the current epoch: an epoch's Dispute and Claim phases overlap the next epochs", async () => {
      const { em, timelineOf } = await networkHelpers.loadFixture(epochFixture);
      const t = timelineOf(2n);
      await time.increaseTo(t.pocValidationEnd);
      expect(await em.currentPhase()).to.equal(BigInt(EpochPhase.Work));
      await time.increaseTo(t.end - 1n);
      expect(await em.currentPhase()).to.equal(BigInt(EpochPhase.Work));
      await time.increaseTo(t.end);
      expect(await em.currentEpoch()).to.equal(3n);
      expect(await em.currentPhase()).to.equal(BigInt(EpochPhase.PoC));
      expect(await em.phaseOf(2n)).to.equal(BigInt(EpochPhase.Dispute));
      await time.increaseTo(t.disputeEnd);
      expect(await em.currentPhase()).to.equal(BigInt(EpochPhase.Work));
      expect(await em.phaseOf(2n)).to.equal(BigInt(EpochPhase.Claim));
      expect(await em.phaseOf(4n)).to.equal(BigInt(EpochPhase.NotStarted));
    });
  });

  describe("advance", () => {
    it("lets anyone fix the current epoch's PoC beacon, from the hash of the block before", async () => {
      const { sys, em, genesis } = await networkHelpers.loadFixture(epochFixture);
      const tx = await em.connect(sys.stranger).advance();
      const beacon = beaconFrom(ethers.ZeroHash, await entropyOf(tx), sys.chainId, await em.getAddress(), 1n, POC_TAG);
      await expect(tx).to.emit(em, "EpochAdvanced").withArgs(1n, genesis, beacon, sys.stranger.address);
      await expect(tx).to.not.emit(em, "EpochsSkipped");
      expect(await em.pocBeacon(1n)).to.equal(beacon);
      expect(await em.lastAdvancedEpoch()).to.equal(1n);
      const record = await em.recordOf(1n);
      expect(record.pocBeacon).to.equal(beacon);
      expect(record.advancedAt).to.equal(await blockTime(tx));
      expect([record.claimBeacon, record.claimBeaconFixedAt]).to.deep.equal([ethers.ZeroHash, 0n]);
    });

    it("returns the epoch advanced", async () => {
      const { sys, em } = await networkHelpers.loadFixture(epochFixture);
      expect(await em.connect(sys.stranger).advance.staticCall()).to.equal(1n);
    });

    it("refuses a second advance in the same epoch, to its last second, naming when the next is due", async () => {
      const { sys, em, startOf } = await networkHelpers.loadFixture(epochFixture);
      await em.connect(sys.stranger).advance();
      const beacon = await em.pocBeacon(1n);
      await expect(em.connect(sys.admin).advance())
        .to.be.revertedWithCustomError(em, "EpochManagerAdvanceNotDue")
        .withArgs(1n, startOf(2n));
      await time.setNextBlockTimestamp(startOf(2n) - 1n);
      await expect(em.connect(sys.stranger).advance(MINED))
        .to.be.revertedWithCustomError(em, "EpochManagerAdvanceNotDue")
        .withArgs(1n, startOf(2n));
      expect(BigInt(await time.latest())).to.equal(startOf(2n) - 1n);
      expect(await em.pocBeacon(1n)).to.equal(beacon);

      await time.setNextBlockTimestamp(startOf(2n));
      await expect(em.connect(sys.stranger).advance()).to.emit(em, "EpochAdvanced");
      expect(await em.lastAdvancedEpoch()).to.equal(2n);
    });

    it("chains each PoC beacon to the previous epoch's: beacons differ from epoch to epoch", async () => {
      const { sys, em, startOf } = await networkHelpers.loadFixture(epochFixture);
      const address = await em.getAddress();
      await em.advance();
      const first = await em.pocBeacon(1n);
      await time.setNextBlockTimestamp(startOf(2n));
      const tx = await em.advance();
      const second = beaconFrom(first, await entropyOf(tx), sys.chainId, address, 2n, POC_TAG);
      await expect(tx).to.emit(em, "EpochAdvanced").withArgs(2n, startOf(2n), second, sys.admin.address);
      expect(await em.pocBeacon(2n)).to.equal(second);
      expect(second).to.not.equal(first);
    });

    it("gives an epoch advanced after its PoC phase a beacon too, with the time it was fixed", async () => {
      const { em, timelineOf } = await networkHelpers.loadFixture(epochFixture);
      const t = timelineOf(2n);
      await time.setNextBlockTimestamp(t.pocValidationEnd + 5n);
      await expect(em.advance()).to.emit(em, "EpochAdvanced");
      expect((await em.recordOf(2n)).advancedAt).to.equal(t.pocValidationEnd + 5n);
    });

    it("skips the epochs nobody advanced: one call reaches the current epoch, the skipped ones stay void", async () => {
      const { sys, em, startOf } = await networkHelpers.loadFixture(epochFixture);
      await em.advance();
      await time.setNextBlockTimestamp(startOf(5n) + 3n * HOUR);
      const tx = await em.connect(sys.stranger).advance();
      await expect(tx).to.emit(em, "EpochsSkipped").withArgs(2n, 4n);
      const beacon = beaconFrom(
        await em.pocBeacon(1n),
        await entropyOf(tx),
        sys.chainId,
        await em.getAddress(),
        5n,
        POC_TAG,
      );
      await expect(tx).to.emit(em, "EpochAdvanced").withArgs(5n, startOf(5n), beacon, sys.stranger.address);
      expect(await em.lastAdvancedEpoch()).to.equal(5n);
      for (const skipped of [2n, 3n, 4n]) {
        await expect(em.pocBeacon(skipped))
          .to.be.revertedWithCustomError(em, "EpochManagerEpochNotAdvanced")
          .withArgs(skipped);
        expect((await em.recordOf(skipped)).advancedAt).to.equal(0n);
      }
    });

    it("skips from epoch 1 when the first advance comes later", async () => {
      const { em, startOf } = await networkHelpers.loadFixture(epochFixture);
      await time.setNextBlockTimestamp(startOf(3n));
      await expect(em.advance()).to.emit(em, "EpochsSkipped").withArgs(1n, 2n);
      await expect(em.pocBeacon(1n)).to.be.revertedWithCustomError(em, "EpochManagerEpochNotAdvanced").withArgs(1n);
    });

    it("costs the same however many epochs were skipped", async () => {
      const { em, startOf } = await networkHelpers.loadFixture(epochFixture);
      await em.advance();
      await time.setNextBlockTimestamp(startOf(4n));
      const few = (await (await em.advance()).wait())!.gasUsed;
      await time.setNextBlockTimestamp(startOf(5_000n));
      const many = (await (await em.advance()).wait())!.gasUsed;
      expect(many).to.equal(few);
      expect(await em.lastAdvancedEpoch()).to.equal(5_000n);
    });
  });

  describe("fixClaimBeacon", () => {
    it("refuses an epoch that was never advanced: skipped, not yet started, or 0", async () => {
      const { em, startOf } = await networkHelpers.loadFixture(epochFixture);
      await time.setNextBlockTimestamp(startOf(2n));
      await em.advance(); // epoch 1 skipped
      await time.increaseTo(startOf(20n));
      for (const epoch of [0n, 1n, 3n, 25n]) {
        await expect(em.fixClaimBeacon(epoch))
          .to.be.revertedWithCustomError(em, "EpochManagerEpochNotAdvanced")
          .withArgs(epoch);
      }
    });

    it("refuses until the epoch's Dispute phase is over, to its last second", async () => {
      const { sys, em, timelineOf } = await networkHelpers.loadFixture(epochFixture);
      await em.advance();
      const t = timelineOf(1n);
      await expect(em.fixClaimBeacon(1n))
        .to.be.revertedWithCustomError(em, "EpochManagerClaimBeaconNotDue")
        .withArgs(1n, t.disputeEnd);
      await time.setNextBlockTimestamp(t.disputeEnd - 1n);
      await expect(em.connect(sys.stranger).fixClaimBeacon(1n, MINED))
        .to.be.revertedWithCustomError(em, "EpochManagerClaimBeaconNotDue")
        .withArgs(1n, t.disputeEnd);
      expect(BigInt(await time.latest())).to.equal(t.disputeEnd - 1n);
      expect(await em.phaseOf(1n)).to.equal(BigInt(EpochPhase.Dispute));
      await expect(em.claimBeacon(1n))
        .to.be.revertedWithCustomError(em, "EpochManagerClaimBeaconNotFixed")
        .withArgs(1n);
    });

    it("lets anyone fix it from the first second of the Claim phase, from the epoch's PoC beacon and fresh entropy", async () => {
      const { sys, em, timelineOf } = await networkHelpers.loadFixture(epochFixture);
      await em.advance();
      const poc = await em.pocBeacon(1n);
      const t = timelineOf(1n);
      await time.setNextBlockTimestamp(t.disputeEnd);
      const tx = await em.connect(sys.stranger).fixClaimBeacon(1n);
      const beacon = beaconFrom(poc, await entropyOf(tx), sys.chainId, await em.getAddress(), 1n, CLAIM_TAG);
      await expect(tx).to.emit(em, "ClaimBeaconFixed").withArgs(1n, beacon, sys.stranger.address);
      expect(await em.claimBeacon(1n)).to.equal(beacon);
      expect(beacon).to.not.equal(poc);
      const record = await em.recordOf(1n);
      expect([record.pocBeacon, record.claimBeacon]).to.deep.equal([poc, beacon]);
      expect(record.claimBeaconFixedAt).to.equal(t.disputeEnd);
      expect(await em.phaseOf(1n)).to.equal(BigInt(EpochPhase.Claim));
    });

    it("returns the beacon it fixes", async () => {
      const { sys, em, timelineOf } = await networkHelpers.loadFixture(epochFixture);
      await em.advance();
      await time.increaseTo(timelineOf(1n).disputeEnd);
      // A call runs in the context of the latest block: its entropy is the hash of the block before that.
      const latest = await ethers.provider.getBlock("latest");
      const entropy = (await ethers.provider.getBlock(latest!.number - 1))!.hash!;
      const expected = beaconFrom(await em.pocBeacon(1n), entropy, sys.chainId, await em.getAddress(), 1n, CLAIM_TAG);
      expect(await em.fixClaimBeacon.staticCall(1n)).to.equal(expected);
    });

    it("fixes it once: a second call is refused and the beacon stays", async () => {
      const { em, timelineOf } = await networkHelpers.loadFixture(epochFixture);
      await em.advance();
      await time.increaseTo(timelineOf(1n).claimEnd + DAY);
      await em.fixClaimBeacon(1n);
      const beacon = await em.claimBeacon(1n);
      await expect(em.fixClaimBeacon(1n))
        .to.be.revertedWithCustomError(em, "EpochManagerClaimBeaconAlreadyFixed")
        .withArgs(1n);
      expect(await em.claimBeacon(1n)).to.equal(beacon);
    });

    it("fixes each advanced epoch's beacon separately, in any order, with different values", async () => {
      const { em, startOf, timelineOf } = await networkHelpers.loadFixture(epochFixture);
      await em.advance();
      await time.setNextBlockTimestamp(startOf(2n));
      await em.advance();
      await time.increaseTo(timelineOf(2n).disputeEnd);
      await em.fixClaimBeacon(2n);
      await em.fixClaimBeacon(1n);
      const beacons = [
        await em.pocBeacon(1n),
        await em.pocBeacon(2n),
        await em.claimBeacon(1n),
        await em.claimBeacon(2n),
      ];
      expect(new Set(beacons).size).to.equal(4);
    });
  });

  describe("beacons with a constant entropy source (EpochManagerHarness)", () => {
    async function harnessFixture() {
      const { sys } = await epochFixture();
      const deploy = async () => {
        const h = await ethers.deployContract("EpochManagerHarness", [
          sys.admin.address,
          await sys.registry.getAddress(),
          0n,
          P,
        ]);
        await h.setEntropy(ethers.id("the same entropy every time"));
        return h;
      };
      return { sys, a: await deploy(), b: await deploy() };
    }

    it("uses _beaconEntropy as its only entropy, and still differs by epoch, kind and contract", async () => {
      const { sys, a, b } = await networkHelpers.loadFixture(harnessFixture);
      const entropy = ethers.id("the same entropy every time");
      const genesis = await a.genesis();
      await a.advance();
      await b.advance();
      const a1 = beaconFrom(ethers.ZeroHash, entropy, sys.chainId, await a.getAddress(), 1n, POC_TAG);
      expect(await a.pocBeacon(1n)).to.equal(a1);
      expect(await b.pocBeacon(1n)).to.equal(
        beaconFrom(ethers.ZeroHash, entropy, sys.chainId, await b.getAddress(), 1n, POC_TAG),
      );
      expect(await b.pocBeacon(1n)).to.not.equal(a1);

      await time.setNextBlockTimestamp(genesis + P.epochLength + 1n);
      await a.advance();
      const a2 = beaconFrom(a1, entropy, sys.chainId, await a.getAddress(), 2n, POC_TAG);
      expect(await a.pocBeacon(2n)).to.equal(a2);
      expect(a2).to.not.equal(a1);

      await time.increaseTo(genesis + P.epochLength + P.disputeWindow + 2n);
      await a.fixClaimBeacon(1n);
      expect(await a.claimBeacon(1n)).to.equal(
        beaconFrom(a1, entropy, sys.chainId, await a.getAddress(), 1n, CLAIM_TAG),
      );
      expect(new Set([a1, a2, await a.claimBeacon(1n)]).size).to.equal(3);
    });
  });

  describe("commitSeed", () => {
    it("records a registered node's commitment during its epoch's PoC phase, advanced or not", async () => {
      const { em, n1, timelineOf } = await networkHelpers.loadFixture(epochFixture);
      const t = timelineOf(2n);
      const commitment = await em.seedCommitment(ethers.id("n1 secret seed"), n1.address);
      await time.setNextBlockTimestamp(t.start + 10n);
      await expect(em.connect(n1).commitSeed(2n, commitment))
        .to.emit(em, "SeedCommitted")
        .withArgs(2n, n1.address, commitment);
      expect(await em.seedCommitmentOf(2n, n1.address)).to.equal(commitment);
      expect(await em.seedCommitmentOf(1n, n1.address)).to.equal(ethers.ZeroHash);
      expect(await em.lastAdvancedEpoch()).to.equal(0n);
    });

    it("accepts the first and the last second of the PoC phase and refuses the seconds around them", async () => {
      const { em, n1, n2, n3, n4, timelineOf } = await networkHelpers.loadFixture(epochFixture);
      const t = timelineOf(2n);
      const commit = (node: HardhatEthersSigner, options = {}) =>
        em.connect(node).commitSeed(2n, ethers.id(node.address), options);

      await time.setNextBlockTimestamp(t.start - 1n);
      await expect(commit(n1, MINED))
        .to.be.revertedWithCustomError(em, "EpochManagerOutsideSeedWindow")
        .withArgs(2n, t.start, t.pocEnd);
      expect(BigInt(await time.latest())).to.equal(t.start - 1n);

      await time.setNextBlockTimestamp(t.start);
      await expect(commit(n2)).to.emit(em, "SeedCommitted").withArgs(2n, n2.address, ethers.id(n2.address));
      await time.setNextBlockTimestamp(t.pocEnd - 1n);
      await expect(commit(n3)).to.emit(em, "SeedCommitted").withArgs(2n, n3.address, ethers.id(n3.address));

      await time.setNextBlockTimestamp(t.pocEnd);
      await expect(commit(n4, MINED))
        .to.be.revertedWithCustomError(em, "EpochManagerOutsideSeedWindow")
        .withArgs(2n, t.start, t.pocEnd);
      expect(BigInt(await time.latest())).to.equal(t.pocEnd);
      await expect(commit(n1))
        .to.be.revertedWithCustomError(em, "EpochManagerOutsideSeedWindow")
        .withArgs(2n, t.start, t.pocEnd);
      expect(await em.seedCommitmentOf(2n, n1.address)).to.equal(ethers.ZeroHash);
      expect(await em.seedCommitmentOf(2n, n4.address)).to.equal(ethers.ZeroHash);
    });

    it("refuses a commitment for any epoch but the current one", async () => {
      const { em, n1, timelineOf } = await networkHelpers.loadFixture(epochFixture);
      await time.increaseTo(timelineOf(2n).start);
      for (const epoch of [1n, 3n]) {
        const t = timelineOf(epoch);
        await expect(em.connect(n1).commitSeed(epoch, ethers.id("seed")))
          .to.be.revertedWithCustomError(em, "EpochManagerOutsideSeedWindow")
          .withArgs(epoch, t.start, t.pocEnd);
      }
      await expect(em.connect(n1).commitSeed(0n, ethers.id("seed")))
        .to.be.revertedWithCustomError(em, "EpochManagerInvalidEpoch")
        .withArgs(0n);
    });

    it("refuses a second commitment by the same node for the same epoch, not for the next epoch", async () => {
      const { em, n1, timelineOf } = await networkHelpers.loadFixture(epochFixture);
      await time.increaseTo(timelineOf(2n).start);
      await em.connect(n1).commitSeed(2n, ethers.id("first"));
      await expect(em.connect(n1).commitSeed(2n, ethers.id("second")))
        .to.be.revertedWithCustomError(em, "EpochManagerSeedAlreadyCommitted")
        .withArgs(2n, n1.address);
      expect(await em.seedCommitmentOf(2n, n1.address)).to.equal(ethers.id("first"));
      await time.increaseTo(timelineOf(3n).start);
      await expect(em.connect(n1).commitSeed(3n, ethers.id("second")))
        .to.emit(em, "SeedCommitted")
        .withArgs(3n, n1.address, ethers.id("second"));
    });

    it("refuses callers that are not registered nodes, including a node's provider", async () => {
      const { sys, em, p1, n5, timelineOf } = await networkHelpers.loadFixture(epochFixture);
      await time.increaseTo(timelineOf(2n).start);
      for (const caller of [n5, p1, sys.stranger]) {
        await expect(em.connect(caller).commitSeed(2n, ethers.id("seed")))
          .to.be.revertedWithCustomError(em, "EpochManagerNodeNotRegistered")
          .withArgs(caller.address);
      }
    });

    it("refuses a zero commitment", async () => {
      const { em, n1 } = await networkHelpers.loadFixture(epochFixture);
      await expect(em.connect(n1).commitSeed(1n, ethers.ZeroHash)).to.be.revertedWithCustomError(
        em,
        "EpochManagerZeroCommitment",
      );
    });
  });

  describe("seedCommitment", () => {
    it("is keccak256(abi.encode(seed, node)), so it differs from node to node", async () => {
      const { em, n1, n2 } = await networkHelpers.loadFixture(epochFixture);
      const seed = ethers.id("a secret seed");
      for (const node of [n1.address, n2.address]) {
        expect(await em.seedCommitment(seed, node)).to.equal(
          ethers.keccak256(coder.encode(["bytes32", "address"], [seed, node])),
        );
      }
      expect(await em.seedCommitment(seed, n1.address)).to.not.equal(await em.seedCommitment(seed, n2.address));
    });
  });

  describe("scheduleParameters", () => {
    it("refuses callers without DEFAULT_ADMIN_ROLE", async () => {
      const { sys, em, n1, DEFAULT_ADMIN_ROLE } = await networkHelpers.loadFixture(epochFixture);
      for (const caller of [sys.stranger, n1]) {
        await expect(em.connect(caller).scheduleParameters(HALF_DAY))
          .to.be.revertedWithCustomError(em, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, DEFAULT_ADMIN_ROLE);
      }
    });

    it("applies a change made during epoch 1 from epoch 3, at the start it announces", async () => {
      const { sys, em, startOf } = await networkHelpers.loadFixture(epochFixture);
      await time.setNextBlockTimestamp(startOf(1n) + 30n * 60n); // mid-PoC of epoch 1
      await expect(em.connect(sys.admin).scheduleParameters(HALF_DAY))
        .to.emit(em, "ParametersScheduled")
        .withArgs(3n, startOf(3n), asParams(HALF_DAY));
      expect(await em.connect(sys.admin).scheduleParameters.staticCall(HALF_DAY)).to.equal(3n);
      expect(plainParams(await em.parametersOf(1n))).to.deep.equal(P);
      expect(plainParams(await em.parametersOf(2n))).to.deep.equal(P);
      expect(plainParams(await em.parametersOf(3n))).to.deep.equal(HALF_DAY);
      expect(plainParams(await em.parametersOf(9n))).to.deep.equal(HALF_DAY);
      expect(await em.epochStart(4n)).to.equal(startOf(3n) + HALF_DAY.epochLength);
      expect(await em.epochStart(10n)).to.equal(startOf(3n) + 7n * HALF_DAY.epochLength);
    });

    it("never changes the running epoch or the next one: their phases keep their boundaries", async () => {
      const { sys, em, startOf, timelineOf } = await networkHelpers.loadFixture(epochFixture);
      const before = [plainTimeline(await em.timelineOf(1n)), plainTimeline(await em.timelineOf(2n))];
      await time.setNextBlockTimestamp(timelineOf(1n).pocEnd - 1n); // last second of epoch 1's PoC
      await em.connect(sys.admin).scheduleParameters(HALF_DAY);
      expect([plainTimeline(await em.timelineOf(1n)), plainTimeline(await em.timelineOf(2n))]).to.deep.equal(before);
      expect(before).to.deep.equal([timelineOf(1n), timelineOf(2n)]);
      expect(plainTimeline(await em.timelineOf(3n))).to.deep.equal(timelineFrom(startOf(3n), HALF_DAY));

      // Epoch 2 still runs a whole day with the old phases; epoch 3 is the first of 12 hours.
      const t2 = timelineOf(2n);
      await time.increaseTo(t2.pocEnd - 1n);
      expect(await em.phaseOf(2n)).to.equal(BigInt(EpochPhase.PoC));
      await time.increaseTo(t2.end - 1n);
      expect([await em.currentEpoch(), await em.currentPhase()]).to.deep.equal([2n, BigInt(EpochPhase.Work)]);
      await time.increaseTo(t2.end);
      expect(await em.currentEpoch()).to.equal(3n);
      const t3 = timelineFrom(startOf(3n), HALF_DAY);
      await time.increaseTo(t3.pocEnd);
      expect(await em.currentPhase()).to.equal(BigInt(EpochPhase.PoCValidation));
      await time.increaseTo(t3.end - 1n);
      expect(await em.currentEpoch()).to.equal(3n);
      await time.increaseTo(t3.end);
      expect(await em.currentEpoch()).to.equal(4n);
      // Epoch 2's Dispute phase is its own: 6 h after its end, even though epoch 3's windows are shorter.
      expect(await em.phaseOf(2n)).to.equal(BigInt(EpochPhase.Claim));
      expect((await em.timelineOf(2n)).disputeEnd).to.equal(t2.end + P.disputeWindow);
    });

    it("counts from the epoch the transaction lands in: the last second of epoch 1 gives 3, the next gives 4", async () => {
      const { sys, em, startOf } = await networkHelpers.loadFixture(epochFixture);
      await time.setNextBlockTimestamp(startOf(2n) - 1n);
      await expect(em.connect(sys.admin).scheduleParameters(HALF_DAY))
        .to.emit(em, "ParametersScheduled")
        .withArgs(3n, startOf(3n), asParams(HALF_DAY));
      await time.setNextBlockTimestamp(startOf(2n));
      await expect(em.connect(sys.admin).scheduleParameters(TWO_DAYS))
        .to.emit(em, "ParametersScheduled")
        .withArgs(4n, startOf(3n) + HALF_DAY.epochLength, asParams(TWO_DAYS));
    });

    it("replaces a change scheduled earlier in the same epoch", async () => {
      const { sys, em, startOf } = await networkHelpers.loadFixture(epochFixture);
      await em.connect(sys.admin).scheduleParameters(HALF_DAY);
      await expect(em.connect(sys.admin).scheduleParameters(TWO_DAYS))
        .to.emit(em, "ParametersScheduled")
        .withArgs(3n, startOf(3n), asParams(TWO_DAYS));
      expect(plainParams(await em.parametersOf(3n))).to.deep.equal(TWO_DAYS);
      expect(await em.epochStart(4n)).to.equal(startOf(3n) + TWO_DAYS.epochLength);
      // Scheduling the current parameters again cancels the change.
      await em.connect(sys.admin).scheduleParameters(P);
      expect(plainParams(await em.parametersOf(3n))).to.deep.equal(P);
      expect(await em.epochStart(4n)).to.equal(startOf(4n));
    });

    it("keeps a history of changes: every epoch reads the parameters of its own era", async () => {
      const { sys, em, startOf } = await networkHelpers.loadFixture(epochFixture);
      await em.connect(sys.admin).scheduleParameters(HALF_DAY); // from epoch 3
      const start3 = startOf(3n);
      await time.setNextBlockTimestamp(startOf(2n));
      await expect(em.connect(sys.admin).scheduleParameters(TWO_DAYS)) // from epoch 4, start3 + 12 h
        .to.emit(em, "ParametersScheduled")
        .withArgs(4n, start3 + HALF_DAY.epochLength, asParams(TWO_DAYS));
      const start4 = start3 + HALF_DAY.epochLength;
      await time.setNextBlockTimestamp(start3);
      await em.connect(sys.admin).scheduleParameters(P); // from epoch 5, start4 + 2 days
      const start5 = start4 + TWO_DAYS.epochLength;
      await time.setNextBlockTimestamp(start4);
      await em.connect(sys.admin).scheduleParameters(HALF_DAY); // from epoch 6, start5 + 1 day
      const start6 = start5 + P.epochLength;

      const expected: Array<[bigint, Params, bigint]> = [
        [1n, P, startOf(1n)],
        [2n, P, startOf(2n)],
        [3n, HALF_DAY, start3],
        [4n, TWO_DAYS, start4],
        [5n, P, start5],
        [6n, HALF_DAY, start6],
        [8n, HALF_DAY, start6 + 2n * HALF_DAY.epochLength],
      ];
      for (const [epoch, params, start] of expected) {
        expect(plainParams(await em.parametersOf(epoch)), `epoch ${epoch}`).to.deep.equal(params);
        expect(plainTimeline(await em.timelineOf(epoch)), `epoch ${epoch}`).to.deep.equal(timelineFrom(start, params));
      }
      // The current epoch follows the eras' lengths.
      await time.increaseTo(start5 - 1n);
      expect(await em.currentEpoch()).to.equal(4n);
      await time.increaseTo(start6 + HALF_DAY.epochLength);
      expect(await em.currentEpoch()).to.equal(7n);
    });

    it("refuses parameters out of bounds, naming the field and its bounds", async () => {
      const { sys, em } = await networkHelpers.loadFixture(epochFixture);
      const cases: Array<[Partial<Params>, number, bigint, bigint, bigint]> = [
        [
          { epochLength: MIN_EPOCH_LENGTH - 1n },
          EpochParameter.EpochLength,
          MIN_EPOCH_LENGTH - 1n,
          MIN_EPOCH_LENGTH,
          MAX_EPOCH_LENGTH,
        ],
        [
          { epochLength: MAX_EPOCH_LENGTH + 1n },
          EpochParameter.EpochLength,
          MAX_EPOCH_LENGTH + 1n,
          MIN_EPOCH_LENGTH,
          MAX_EPOCH_LENGTH,
        ],
        [{ pocDuration: 0n }, EpochParameter.PocDuration, 0n, 1n, DAY - 2n],
        // PoC validation and Work need one second each.
        [{ pocDuration: DAY - 1n, pocValidationDuration: 1n }, EpochParameter.PocDuration, DAY - 1n, 1n, DAY - 2n],
        [{ pocValidationDuration: 0n }, EpochParameter.PocValidationDuration, 0n, 1n, DAY - HOUR - 1n],
        [{ pocValidationDuration: DAY - HOUR }, EpochParameter.PocValidationDuration, DAY - HOUR, 1n, DAY - HOUR - 1n],
        [{ disputeWindow: 0n }, EpochParameter.DisputeWindow, 0n, 1n, MAX_WINDOW],
        [{ disputeWindow: MAX_WINDOW + 1n }, EpochParameter.DisputeWindow, MAX_WINDOW + 1n, 1n, MAX_WINDOW],
        [{ claimWindow: 0n }, EpochParameter.ClaimWindow, 0n, 1n, MAX_WINDOW],
        [{ claimWindow: MAX_WINDOW + 1n }, EpochParameter.ClaimWindow, MAX_WINDOW + 1n, 1n, MAX_WINDOW],
      ];
      for (const [change, field, value, min, max] of cases) {
        await expect(
          em.connect(sys.admin).scheduleParameters({ ...P, ...change }),
          JSON.stringify(change, (_, v) => String(v)),
        )
          .to.be.revertedWithCustomError(em, "EpochManagerInvalidParameter")
          .withArgs(field, value, min, max);
      }
    });

    it("accepts parameters at their bounds", async () => {
      const { sys, em } = await networkHelpers.loadFixture(epochFixture);
      const accepted: Params[] = [
        {
          epochLength: MIN_EPOCH_LENGTH,
          pocDuration: 1n,
          pocValidationDuration: 1n,
          disputeWindow: 1n,
          claimWindow: 1n,
        },
        {
          epochLength: MIN_EPOCH_LENGTH,
          pocDuration: MIN_EPOCH_LENGTH - 2n,
          pocValidationDuration: 1n,
          disputeWindow: 1n,
          claimWindow: 1n,
        },
        {
          epochLength: MAX_EPOCH_LENGTH,
          pocDuration: 1n,
          pocValidationDuration: MAX_EPOCH_LENGTH - 2n,
          disputeWindow: MAX_WINDOW,
          claimWindow: MAX_WINDOW,
        },
      ];
      for (const params of accepted) {
        await expect(em.connect(sys.admin).scheduleParameters(params)).to.emit(em, "ParametersScheduled");
        expect(plainParams(await em.parametersOf(3n))).to.deep.equal(params);
      }
    });
  });
});
