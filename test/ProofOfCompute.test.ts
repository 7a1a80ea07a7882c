/**
 * ProofOfCompute: PoC commitments in an epoch's PoC phase, verdicts until its PoC validation phase ends
 * (weighted by the previous epoch's power, or by the bootstrap set while that has none), and the capped power
 * that accepted commitments yield.
 *
 * The system comes from the shared Ignition fixture (epochs of 1 day, PoC 1 h, PoC validation 1 h; PoC
 * accepts above 66.67 % of verdict weight, caps one node at 30 %; validators v1..v3 form the bootstrap set).
 * This file's fixture validates n1..n4 (n1, n2 under p1; n3, n4 under p2); n5 is registered but not
 * validated; n6 is not registered.
 *
 * Boundaries are checked at their last and first second: transactions run in a block stamped by
 * `setNextBlockTimestamp`, with a fixed gas limit where they revert, so that the revert happens on chain at
 * that very second. The cap is checked against a reference computed here in the plainest way (a binary search
 * for the highest admissible water level), on hand-picked and on pseudo-random distributions.
 */
import { expect } from "chai";
import { network } from "hardhat";
import type { ContractTransactionResponse } from "ethers";
import type { ProofOfCompute } from "../typechain-types/index.js";
import { EpochPhase } from "../scripts/lib/protocol.js";
import { type Account, type System, CPU_NODE, POC_PARAMETERS, deploySystem, registerNode } from "./helpers/system.js";
import {
  type PowerEntry,
  fundedAccounts,
  givePower,
  goToPhase,
  pocRootFor,
  seedFor,
  validatedNode,
  validatedNodes,
} from "./helpers/epochs.js";

const connection = await network.create();
const { ethers, networkHelpers } = connection;
const { time } = networkHelpers;

const BPS = 10_000n;
const ACCEPT = POC_PARAMETERS.acceptShareBps;
const MAX_SHARE = POC_PARAMETERS.maxShareBps;
const Status = { None: 0n, Pending: 1n, Accepted: 2n, Rejected: 3n } as const;
/** Skips gas estimation: the transaction is mined (and reverts) in the block stamped as the test set it. */
const MINED = { gasLimit: 1_000_000 };
const ROOT = ethers.id("root");
const EVIDENCE = ethers.id("evidence");

// ------------------------------------------------------------------------------------------ reference cap

/** Effective cap (bps) with `n` accepted nodes under `maxShare`. */
function capBps(n: number, maxShare: bigint): bigint {
  if (n === 1) return BPS;
  if (n === 2) return maxShare > 5000n ? maxShare : 5000n;
  if (n === 3) return maxShare > 4000n ? maxShare : 4000n;
  return maxShare;
}

/**
 * The cap computed the plain way: the highest integer level x in [0, max raw] at which the largest capped
 * power is at most `cap` of the sum of capped powers, found by binary search (admissible levels form an
 * interval from 0), then every node's power min(raw, x).
 */
function referenceCap(raws: bigint[], maxShare: bigint) {
  const cap = capBps(raws.length, maxShare);
  const capped = (x: bigint) => raws.map((r) => (r < x ? r : x));
  const sum = (xs: bigint[]) => xs.reduce((a, b) => a + b, 0n);
  const top = raws.reduce((a, b) => (a > b ? a : b), 0n);
  const admissible = (x: bigint) => (top < x ? top : x) * BPS <= cap * sum(capped(x));
  let low = 0n;
  let high = top;
  while (low < high) {
    const mid = (low + high + 1n) / 2n;
    if (admissible(mid)) low = mid;
    else high = mid - 1n;
  }
  const powers = capped(low);
  return { level: low, cap, powers, total: sum(powers), cappedNodes: raws.filter((r) => r > low).length };
}

/** Deterministic PRNG (mulberry32). */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ------------------------------------------------------------------------------------------------ fixture

async function pocFixture() {
  const sys = await deploySystem(connection);
  const [p1, p2] = sys.providers;
  const [n1, n2, n3, n4, n5, n6] = sys.nodes;
  const [v1, v2, v3] = sys.validators;
  await validatedNode(connection, sys, p1, n1);
  await validatedNode(connection, sys, p1, n2, CPU_NODE);
  await validatedNode(connection, sys, p2, n3, CPU_NODE);
  await validatedNode(connection, sys, p2, n4, CPU_NODE);
  await registerNode(connection, sys, p2, n5, CPU_NODE);
  const poc = sys.proofOfCompute;
  const em = sys.epochManager;
  const VALIDATOR_ROLE = await poc.VALIDATOR_ROLE();
  return { sys, poc, em, p1, p2, n1, n2, n3, n4, n5, n6, v1, v2, v3, VALIDATOR_ROLE };
}

/** Goes to the PoC phase of `epoch` (advancing it) and commits each node's seed and PoC. */
async function commitAll(sys: System, epoch: bigint, entries: Array<[Account, bigint]>) {
  await goToPhase(connection, sys, epoch, EpochPhase.PoC);
  for (const [node, count] of entries) {
    await sys.epochManager.connect(node).commitSeed(epoch, await sys.epochManager.seedCommitment(seedFor(node.address, epoch), node.address));
    await sys.proofOfCompute.connect(node).commitPoc(epoch, pocRootFor(node.address, epoch), count);
  }
}

/** Has each of `voters` give the same verdict on `node`'s commitment for `epoch`. */
async function vote(poc: ProofOfCompute, epoch: bigint, node: Account, accepted: boolean, voters: Account[]) {
  for (const v of voters) await poc.connect(v).submitVerdict(epoch, node.address, accepted, EVIDENCE);
}

async function blockTime(tx: ContractTransactionResponse): Promise<bigint> {
  const receipt = await tx.wait();
  return BigInt((await ethers.provider.getBlock(receipt!.blockNumber))!.timestamp);
}

/** Checks every view of an epoch's power against the reference for `raws` (by node). */
async function expectCap(poc: ProofOfCompute, epoch: bigint, nodes: Account[], raws: bigint[], maxShare = MAX_SHARE) {
  const ref = referenceCap(raws, maxShare);
  const [level, cap, acceptedNodes, rawTotal] = await poc.powerCap(epoch);
  expect(level, "level").to.equal(ref.level);
  expect(cap, "cap").to.equal(ref.cap);
  expect(acceptedNodes, "accepted nodes").to.equal(BigInt(raws.length));
  expect(rawTotal, "raw total").to.equal(raws.reduce((a, b) => a + b, 0n));
  const total = await poc.totalPower(epoch);
  expect(total, "total power").to.equal(ref.total);
  for (let i = 0; i < nodes.length; i++) {
    const power = await poc.powerOf(epoch, nodes[i].address);
    expect(power, `power of node ${i}`).to.equal(ref.powers[i]);
    expect(await poc.rawPowerOf(epoch, nodes[i].address), `raw power of node ${i}`).to.equal(raws[i]);
    // Share at most the cap: power / total <= cap / BPS.
    expect(power * BPS <= cap * total, `share of node ${i}`).to.equal(true);
  }
  // At most MAX_CAPPED - 1 = 3 nodes ever lie above the level (the contract's loop never needs a fifth count).
  expect(ref.cappedNodes).to.be.at.most(3);
  return ref;
}

describe("ProofOfCompute", function () {
  describe("deployment", () => {
    it("is wired by the Ignition module to the system's clock, registry and board, with the default thresholds", async () => {
      const { sys, poc, v1, v2, v3, VALIDATOR_ROLE } = await networkHelpers.loadFixture(pocFixture);
      expect(await poc.epochs()).to.equal(await sys.epochManager.getAddress());
      expect(await poc.registry()).to.equal(await sys.registry.getAddress());
      expect(await poc.board()).to.equal(await sys.challengeBoard.getAddress());
      expect(await poc.acceptShareBps()).to.equal(6667n);
      expect(await poc.maxShareBps()).to.equal(3000n);
      expect(VALIDATOR_ROLE).to.equal(ethers.id("VALIDATOR_ROLE"));
      expect(await poc.MAX_CAPPED()).to.equal(4n);
      expect(await poc.MIN_ACCEPT_SHARE_BPS()).to.equal(5001n);
      expect(await poc.MIN_MAX_SHARE_BPS()).to.equal(2500n);
      expect(await poc.BPS()).to.equal(10_000n);
      expect(await poc.hasRole(await poc.DEFAULT_ADMIN_ROLE(), sys.admin.address)).to.equal(true);
      expect(await poc.getRoleMemberCount(VALIDATOR_ROLE)).to.equal(3n);
      for (const v of [v1, v2, v3]) expect(await poc.hasRole(VALIDATOR_ROLE, v.address)).to.equal(true);
    });

    it("refuses zero addresses and shares outside their bounds, and accepts the bounds themselves", async () => {
      const { sys, poc } = await networkHelpers.loadFixture(pocFixture);
      const factory = await ethers.getContractFactory("ProofOfCompute");
      const args = [
        sys.admin.address,
        await sys.epochManager.getAddress(),
        await sys.registry.getAddress(),
        await sys.challengeBoard.getAddress(),
      ] as const;
      for (let i = 0; i < 4; i++) {
        const bad = [...args] as string[];
        bad[i] = ethers.ZeroAddress;
        await expect(factory.deploy(bad[0], bad[1], bad[2], bad[3], 6667, 3000)).to.be.revertedWithCustomError(
          poc,
          "ProofOfComputeZeroAddress",
        );
      }
      for (const [accept, max, bad, min, top] of [
        [5000, 3000, 5000, 5001, 10_000],
        [10_001, 3000, 10_001, 5001, 10_000],
        [6667, 2499, 2499, 2500, 10_000],
        [6667, 10_001, 10_001, 2500, 10_000],
      ]) {
        await expect(factory.deploy(...args, accept, max))
          .to.be.revertedWithCustomError(poc, "ProofOfComputeInvalidShare")
          .withArgs(bad, min, top);
      }
      for (const [accept, max] of [
        [5001, 2500],
        [10_000, 10_000],
      ]) {
        const deployed = await factory.deploy(...args, accept, max);
        expect(await deployed.acceptShareBps()).to.equal(BigInt(accept));
        expect(await deployed.maxShareBps()).to.equal(BigInt(max));
      }
    });
  });

  describe("commitPoc", () => {
    it("records the commitment during the PoC phase and emits PocCommitted", async () => {
      const { sys, poc, em, n1 } = await networkHelpers.loadFixture(pocFixture);
      await goToPhase(connection, sys, 1n, EpochPhase.PoC);
      await em.connect(n1).commitSeed(1n, ethers.id("commitment"));
      expect((await poc.commitmentOf(1n, n1.address)).status).to.equal(Status.None);
      const tx = await poc.connect(n1).commitPoc(1n, ROOT, 1234n);
      await expect(tx).to.emit(poc, "PocCommitted").withArgs(1n, n1.address, ROOT, 1234n);
      const c = await poc.commitmentOf(1n, n1.address);
      expect([c.root, c.count, c.status, c.committedAt, c.acceptWeight, c.rejectWeight]).to.deep.equal([
        ROOT,
        1234n,
        Status.Pending,
        await blockTime(tx),
        0n,
        0n,
      ]);
      // Committed is not accepted: no power yet.
      expect(await poc.rawPowerOf(1n, n1.address)).to.equal(0n);
      expect(await poc.powerOf(1n, n1.address)).to.equal(0n);
    });

    it("is open from the epoch's start to the last second of its PoC phase", async () => {
      const { sys, poc, em, n1, n2, n3 } = await networkHelpers.loadFixture(pocFixture);
      await goToPhase(connection, sys, 1n, EpochPhase.PoC);
      const t2 = await em.timelineOf(2n);
      // Epoch 2 before its start (during epoch 1).
      await em.connect(n1).commitSeed(1n, ethers.id("s1"));
      await expect(poc.connect(n1).commitPoc(2n, ROOT, 1n))
        .to.be.revertedWithCustomError(poc, "ProofOfComputeOutsideCommitWindow")
        .withArgs(2n, t2.start, t2.pocEnd);

      await time.setNextBlockTimestamp(t2.start);
      await em.connect(sys.admin).advance(); // at epoch 2's very first second
      for (const n of [n1, n2, n3]) await em.connect(n).commitSeed(2n, ethers.id(`s${n.address}`));
      await poc.connect(n1).commitPoc(2n, ROOT, 1n);
      await time.setNextBlockTimestamp(t2.pocEnd - 1n);
      await poc.connect(n2).commitPoc(2n, ROOT, 1n, MINED);
      expect((await poc.commitmentOf(2n, n2.address)).committedAt).to.equal(t2.pocEnd - 1n);
      await time.setNextBlockTimestamp(t2.pocEnd);
      await expect(poc.connect(n3).commitPoc(2n, ROOT, 1n, MINED))
        .to.be.revertedWithCustomError(poc, "ProofOfComputeOutsideCommitWindow")
        .withArgs(2n, t2.start, t2.pocEnd);
      // A late commitment for the epoch before is refused too.
      await expect(poc.connect(n1).commitPoc(1n, ROOT, 1n))
        .to.be.revertedWithCustomError(poc, "ProofOfComputeOutsideCommitWindow")
        .withArgs(1n, (await em.timelineOf(1n)).start, (await em.timelineOf(1n)).pocEnd);
    });

    it("refuses an epoch nobody advanced (it has no PoC beacon), and epoch 0", async () => {
      const { sys, poc, em, n1 } = await networkHelpers.loadFixture(pocFixture);
      await goToPhase(connection, sys, 1n, EpochPhase.PoC, { advance: false });
      await em.connect(n1).commitSeed(1n, ethers.id("s"));
      await expect(poc.connect(n1).commitPoc(1n, ROOT, 1n))
        .to.be.revertedWithCustomError(poc, "ProofOfComputeEpochNotAdvanced")
        .withArgs(1n);
      await expect(poc.connect(n1).commitPoc(0n, ROOT, 1n))
        .to.be.revertedWithCustomError(em, "EpochManagerInvalidEpoch")
        .withArgs(0n);
      await em.connect(sys.stranger).advance();
      await expect(poc.connect(n1).commitPoc(1n, ROOT, 1n)).to.emit(poc, "PocCommitted");
    });

    it("refuses a zero root or a zero count", async () => {
      const { sys, poc, n1 } = await networkHelpers.loadFixture(pocFixture);
      await goToPhase(connection, sys, 1n, EpochPhase.PoC);
      await expect(poc.connect(n1).commitPoc(1n, ethers.ZeroHash, 1n)).to.be.revertedWithCustomError(
        poc,
        "ProofOfComputeEmptyCommitment",
      );
      await expect(poc.connect(n1).commitPoc(1n, ROOT, 0n)).to.be.revertedWithCustomError(
        poc,
        "ProofOfComputeEmptyCommitment",
      );
    });

    it("refuses a second commitment of the same node in the same epoch", async () => {
      const { sys, poc, n1 } = await networkHelpers.loadFixture(pocFixture);
      await commitAll(sys, 1n, [[n1, 10n]]);
      await expect(poc.connect(n1).commitPoc(1n, ethers.id("other root"), 999n))
        .to.be.revertedWithCustomError(poc, "ProofOfComputeAlreadyCommitted")
        .withArgs(1n, n1.address);
      expect((await poc.commitmentOf(1n, n1.address)).count).to.equal(10n);
    });

    it("refuses an unregistered caller, an unvalidated node and a node without a seed commitment", async () => {
      const { sys, poc, em, n1, n5, n6, v1 } = await networkHelpers.loadFixture(pocFixture);
      await goToPhase(connection, sys, 1n, EpochPhase.PoC);
      for (const caller of [n6, v1]) {
        await expect(poc.connect(caller).commitPoc(1n, ROOT, 1n))
          .to.be.revertedWithCustomError(poc, "ProofOfComputeNodeNotRegistered")
          .withArgs(caller.address);
      }
      await expect(poc.connect(n5).commitPoc(1n, ROOT, 1n))
        .to.be.revertedWithCustomError(poc, "ProofOfComputeNodeNotValidated")
        .withArgs(n5.address);
      await expect(poc.connect(n1).commitPoc(1n, ROOT, 1n))
        .to.be.revertedWithCustomError(poc, "ProofOfComputeNoSeedCommitment")
        .withArgs(1n, n1.address);
      await em.connect(n1).commitSeed(1n, ethers.id("s"));
      await expect(poc.connect(n1).commitPoc(1n, ROOT, 1n)).to.emit(poc, "PocCommitted");
    });

    it("refuses a node whose validation was revoked, or that left the registry after its seed", async () => {
      const { sys, poc, em, n1, n2, p1 } = await networkHelpers.loadFixture(pocFixture);
      await goToPhase(connection, sys, 1n, EpochPhase.PoC);
      for (const n of [n1, n2]) await em.connect(n).commitSeed(1n, ethers.id(`s${n.address}`));
      await sys.challengeBoard.connect(sys.admin).revokeValidation(n1.address, ethers.id("bad hardware"));
      await expect(poc.connect(n1).commitPoc(1n, ROOT, 1n))
        .to.be.revertedWithCustomError(poc, "ProofOfComputeNodeNotValidated")
        .withArgs(n1.address);
      await sys.registry.connect(p1).deregisterNode(n2.address);
      await expect(poc.connect(n2).commitPoc(1n, ROOT, 1n))
        .to.be.revertedWithCustomError(poc, "ProofOfComputeNodeNotRegistered")
        .withArgs(n2.address);
    });
  });

  describe("submitVerdict", () => {
    describe("with the bootstrap set (no power in the epoch before)", () => {
      it("weighs each validator 1 out of the set's size, and accepts once more than two thirds accept", async () => {
        const { sys, poc, n1, v1, v2, v3 } = await networkHelpers.loadFixture(pocFixture);
        await commitAll(sys, 1n, [[n1, 500n]]);
        expect(await poc.verdictWeightOf(1n, v1.address)).to.deep.equal([1n, 3n, true]);
        expect(await poc.verdictWeightOf(1n, n1.address)).to.deep.equal([0n, 3n, true]);
        expect(await poc.verdictWeightFor(1n, n1.address, v1.address)).to.deep.equal([1n, 3n, true]);

        const evidence = ethers.id("sampled 200 leaves, all valid");
        await expect(poc.connect(v1).submitVerdict(1n, n1.address, true, evidence))
          .to.emit(poc, "PocVerdict")
          .withArgs(1n, n1.address, v1.address, true, 1n, evidence);
        expect(await poc.hasVerdict(1n, n1.address, v1.address)).to.equal(true);
        expect(await poc.hasVerdict(1n, n1.address, v2.address)).to.equal(false);
        // Two of three is exactly 66.67 %, not more than 6667 bps of 3 (2 * 10000 <= 6667 * 3): still pending.
        await expect(poc.connect(v2).submitVerdict(1n, n1.address, true, evidence)).to.not.emit(poc, "PocAccepted");
        expect((await poc.commitmentOf(1n, n1.address)).status).to.equal(Status.Pending);
        expect(await poc.powerOf(1n, n1.address)).to.equal(0n);
        await expect(poc.connect(v3).submitVerdict(1n, n1.address, true, evidence))
          .to.emit(poc, "PocAccepted")
          .withArgs(1n, n1.address, 500n, 3n, 3n);
        const c = await poc.commitmentOf(1n, n1.address);
        expect([c.status, c.acceptWeight, c.rejectWeight]).to.deep.equal([Status.Accepted, 3n, 0n]);
        expect(await poc.rawPowerOf(1n, n1.address)).to.equal(500n);
        expect(await poc.powerOf(1n, n1.address)).to.equal(500n);
        expect(await poc.totalPower(1n)).to.equal(500n);
      });

      it("rejects as soon as acceptance can no longer happen", async () => {
        const { sys, poc, n1, n2, v1, v2 } = await networkHelpers.loadFixture(pocFixture);
        await commitAll(sys, 1n, [
          [n1, 500n],
          [n2, 100n],
        ]);
        // One rejection of three leaves at most two thirds to accept, which is not more than 6667 bps.
        const evidence = ethers.id("leaf 17 out of distance");
        await expect(poc.connect(v1).submitVerdict(1n, n1.address, false, evidence))
          .to.emit(poc, "PocVerdict")
          .withArgs(1n, n1.address, v1.address, false, 1n, evidence)
          .and.to.emit(poc, "PocRejected")
          .withArgs(1n, n1.address, 1n, 3n);
        const c = await poc.commitmentOf(1n, n1.address);
        expect([c.status, c.acceptWeight, c.rejectWeight]).to.deep.equal([Status.Rejected, 0n, 1n]);
        expect(await poc.rawPowerOf(1n, n1.address)).to.equal(0n);
        expect(await poc.powerOf(1n, n1.address)).to.equal(0n);
        // An accepting verdict before does not change that.
        await poc.connect(v1).submitVerdict(1n, n2.address, true, EVIDENCE);
        await expect(poc.connect(v2).submitVerdict(1n, n2.address, false, EVIDENCE))
          .to.emit(poc, "PocRejected")
          .withArgs(1n, n2.address, 1n, 3n);
        expect(await poc.powerCap(1n)).to.deep.equal([0n, MAX_SHARE, 0n, 0n]);
      });

      it("follows the set's membership: a new validator raises the total, a revoked one loses its weight", async () => {
        const { sys, poc, n1, n2, v1, v2, v3, VALIDATOR_ROLE } = await networkHelpers.loadFixture(pocFixture);
        await commitAll(sys, 1n, [
          [n1, 500n],
          [n2, 100n],
        ]);
        await poc.connect(sys.admin).grantRole(VALIDATOR_ROLE, sys.stranger.address);
        expect(await poc.verdictWeightOf(1n, sys.stranger.address)).to.deep.equal([1n, 4n, true]);
        await vote(poc, 1n, n1, true, [v1, v2]);
        // 3 of 4 = 75 % > 66.67 %.
        await expect(poc.connect(sys.stranger).submitVerdict(1n, n1.address, true, EVIDENCE))
          .to.emit(poc, "PocAccepted")
          .withArgs(1n, n1.address, 500n, 3n, 4n);
        await poc.connect(sys.admin).revokeRole(VALIDATOR_ROLE, v3.address);
        await expect(poc.connect(v3).submitVerdict(1n, n2.address, true, EVIDENCE))
          .to.be.revertedWithCustomError(poc, "ProofOfComputeNoVerdictWeight")
          .withArgs(1n, v3.address);
      });

      it("leaves a node's own bootstrap weight out of the total it is judged against", async () => {
        const { sys, poc, n1, v1, v2, VALIDATOR_ROLE } = await networkHelpers.loadFixture(pocFixture);
        // A node that is also in the bootstrap set: the other three judge it.
        await poc.connect(sys.admin).grantRole(VALIDATOR_ROLE, n1.address);
        await commitAll(sys, 1n, [[n1, 500n]]);
        expect(await poc.verdictWeightOf(1n, n1.address)).to.deep.equal([1n, 4n, true]);
        expect(await poc.verdictWeightFor(1n, n1.address, n1.address)).to.deep.equal([0n, 3n, true]);
        expect(await poc.verdictWeightFor(1n, n1.address, v1.address)).to.deep.equal([1n, 3n, true]);
        await poc.connect(v1).submitVerdict(1n, n1.address, true, EVIDENCE);
        await poc.connect(v2).submitVerdict(1n, n1.address, true, EVIDENCE);
        await expect(poc.connect(sys.validators[2]).submitVerdict(1n, n1.address, true, EVIDENCE))
          .to.emit(poc, "PocAccepted")
          .withArgs(1n, n1.address, 500n, 3n, 3n);
      });
    });

    describe("weighted by the epoch before's power", () => {
      /** Epoch 1: n1..n4 with raw 40/30/20/10 (cap 30 %: level 22, powers 22/22/20/10, total 74). */
      async function poweredFixture() {
        const f = await networkHelpers.loadFixture(pocFixture);
        await givePower(connection, f.sys, 1n, [
          { node: f.n1, count: 40 },
          { node: f.n2, count: 30 },
          { node: f.n3, count: 20 },
          { node: f.n4, count: 10 },
        ]);
        return f;
      }

      it("gives each node its power in the epoch before, out of that epoch's total power", async () => {
        const { sys, poc, n1, n2, n3, n4, n5, v1 } = await poweredFixture();
        await expectCap(poc, 1n, [n1, n2, n3, n4], [40n, 30n, 20n, 10n]);
        expect(await poc.powerOf(1n, n1.address)).to.equal(22n);
        await goToPhase(connection, sys, 2n, EpochPhase.PoC);
        expect(await poc.verdictWeightOf(2n, n1.address)).to.deep.equal([22n, 74n, false]);
        expect(await poc.verdictWeightOf(2n, n3.address)).to.deep.equal([20n, 74n, false]);
        expect(await poc.verdictWeightOf(2n, n4.address)).to.deep.equal([10n, 74n, false]);
        expect(await poc.verdictWeightOf(2n, n5.address)).to.deep.equal([0n, 74n, false]);
        // The bootstrap set has no say any more.
        expect(await poc.verdictWeightOf(2n, v1.address)).to.deep.equal([0n, 74n, false]);
        // Judging n1, the others' 52 count.
        expect(await poc.verdictWeightFor(2n, n1.address, n2.address)).to.deep.equal([22n, 52n, false]);
        expect(await poc.verdictWeightFor(2n, n1.address, n1.address)).to.deep.equal([0n, 52n, false]);
      });

      it("accepts a newcomer only once the accepting power exceeds two thirds, whoever votes", async () => {
        const { sys, poc, em, n1, n2, n3, n4, v1 } = await poweredFixture();
        const [newcomer] = await validatedNodes(connection, sys, 1);
        await commitAll(sys, 2n, [[newcomer, 77n]]);
        await expect(poc.connect(v1).submitVerdict(2n, newcomer.address, true, EVIDENCE))
          .to.be.revertedWithCustomError(poc, "ProofOfComputeNoVerdictWeight")
          .withArgs(2n, v1.address);
        // n1 + n2 = 44 of 74: 59 %, pending.
        await expect(poc.connect(n1).submitVerdict(2n, newcomer.address, true, EVIDENCE))
          .to.emit(poc, "PocVerdict")
          .withArgs(2n, newcomer.address, n1.address, true, 22n, EVIDENCE);
        await poc.connect(n2).submitVerdict(2n, newcomer.address, true, EVIDENCE);
        expect((await poc.commitmentOf(2n, newcomer.address)).acceptWeight).to.equal(44n);
        expect((await poc.commitmentOf(2n, newcomer.address)).status).to.equal(Status.Pending);
        // + n4 = 54 of 74: 73 % > 66.67 %.
        await expect(poc.connect(n4).submitVerdict(2n, newcomer.address, true, EVIDENCE))
          .to.emit(poc, "PocAccepted")
          .withArgs(2n, newcomer.address, 77n, 54n, 74n);
        expect(await poc.powerOf(2n, newcomer.address)).to.equal(77n);
        // n3 comes too late: the commitment is decided.
        await expect(poc.connect(n3).submitVerdict(2n, newcomer.address, true, EVIDENCE))
          .to.be.revertedWithCustomError(poc, "ProofOfComputeAlreadyDecided")
          .withArgs(2n, newcomer.address, Status.Accepted);
        expect(await em.currentEpoch()).to.equal(2n);
      });

      it("lets a 30 % node be rejected by a third of the power and never accepted by less than two thirds", async () => {
        const { sys, poc, n1, n2, n3, n4 } = await poweredFixture();
        await commitAll(sys, 2n, [
          [n1, 40n],
          [n2, 30n],
        ]);
        // n1 is judged by the 52 the others hold: rejection needs 3333 bps of 52 (17.3).
        await expect(poc.connect(n4).submitVerdict(2n, n1.address, false, EVIDENCE)).to.not.emit(poc, "PocRejected");
        await expect(poc.connect(n3).submitVerdict(2n, n1.address, false, EVIDENCE))
          .to.emit(poc, "PocRejected")
          .withArgs(2n, n1.address, 30n, 52n);
        // n2 is judged by 52 too (n1 22, n3 20, n4 10): n1 + n4 = 32 is 61.5 %, all three are needed.
        await vote(poc, 2n, n2, true, [n1, n4]);
        expect((await poc.commitmentOf(2n, n2.address)).status).to.equal(Status.Pending);
        await expect(poc.connect(n3).submitVerdict(2n, n2.address, true, EVIDENCE))
          .to.emit(poc, "PocAccepted")
          .withArgs(2n, n2.address, 30n, 52n, 52n);
        await expect(poc.connect(n1).submitVerdict(2n, n2.address, false, EVIDENCE))
          .to.be.revertedWithCustomError(poc, "ProofOfComputeAlreadyDecided")
          .withArgs(2n, n2.address, Status.Accepted);
        await expect(poc.connect(n2).submitVerdict(2n, n1.address, true, EVIDENCE))
          .to.be.revertedWithCustomError(poc, "ProofOfComputeAlreadyDecided")
          .withArgs(2n, n1.address, Status.Rejected);
        await expectCap(poc, 2n, [n2], [30n]);
      });

      it("lets the largest of two or three nodes be accepted by the others (its own weight left out)", async () => {
        const { sys, poc, n1, n2, n3 } = await networkHelpers.loadFixture(pocFixture);
        // Epoch 1: two nodes at the 50 % cap (60 / 40 -> 40 / 40).
        await givePower(connection, sys, 1n, [
          { node: n1, count: 60 },
          { node: n2, count: 40 },
        ]);
        await expectCap(poc, 1n, [n1, n2], [60n, 40n]);
        await commitAll(sys, 2n, [
          [n1, 60n],
          [n2, 40n],
          [n3, 10n],
        ]);
        // Out of the epoch's 80, n2's 40 could never exceed two thirds; out of the others' 40 it does.
        await expect(poc.connect(n2).submitVerdict(2n, n1.address, true, EVIDENCE))
          .to.emit(poc, "PocAccepted")
          .withArgs(2n, n1.address, 60n, 40n, 40n);
        await expect(poc.connect(n1).submitVerdict(2n, n2.address, true, EVIDENCE))
          .to.emit(poc, "PocAccepted")
          .withArgs(2n, n2.address, 40n, 40n, 40n);
        // A newcomer needs both (40 of 80 is not more than two thirds).
        await poc.connect(n1).submitVerdict(2n, n3.address, true, EVIDENCE);
        await expect(poc.connect(n2).submitVerdict(2n, n3.address, true, EVIDENCE))
          .to.emit(poc, "PocAccepted")
          .withArgs(2n, n3.address, 10n, 80n, 80n);
        await expectCap(poc, 2n, [n1, n2, n3], [60n, 40n, 10n]);
      });

      it("has the bootstrap set judge a node that held all the power of the epoch before", async () => {
        const { sys, poc, n1, n2, v1, v2, v3 } = await networkHelpers.loadFixture(pocFixture);
        await givePower(connection, sys, 1n, [{ node: n1, count: 50 }]);
        await commitAll(sys, 2n, [
          [n1, 50n],
          [n2, 20n],
        ]);
        expect(await poc.verdictWeightOf(2n, v1.address)).to.deep.equal([0n, 50n, false]);
        expect(await poc.verdictWeightFor(2n, n1.address, v1.address)).to.deep.equal([1n, 3n, true]);
        expect(await poc.verdictWeightFor(2n, n1.address, n1.address)).to.deep.equal([0n, 3n, true]);
        expect(await poc.verdictWeightFor(2n, n2.address, n1.address)).to.deep.equal([50n, 50n, false]);
        expect(await poc.verdictWeightFor(2n, n2.address, v1.address)).to.deep.equal([0n, 50n, false]);
        await vote(poc, 2n, n1, true, [v1, v2]);
        await expect(poc.connect(v3).submitVerdict(2n, n1.address, true, EVIDENCE))
          .to.emit(poc, "PocAccepted")
          .withArgs(2n, n1.address, 50n, 3n, 3n);
        await expect(poc.connect(n1).submitVerdict(2n, n2.address, true, EVIDENCE))
          .to.emit(poc, "PocAccepted")
          .withArgs(2n, n2.address, 20n, 50n, 50n);
        await expect(poc.connect(v1).submitVerdict(2n, n2.address, true, EVIDENCE)).to.be.revertedWithCustomError(
          poc,
          "ProofOfComputeAlreadyDecided",
        );
      });

      it("falls back to the bootstrap set after an epoch without power, or a skipped one", async () => {
        const { sys, poc, n1, n2, v1 } = await poweredFixture();
        // Epoch 2: n1's commitment is rejected and nothing is accepted.
        await commitAll(sys, 2n, [[n1, 40n]]);
        await expect(poc.connect(n2).submitVerdict(2n, n1.address, false, EVIDENCE))
          .to.emit(poc, "PocRejected")
          .withArgs(2n, n1.address, 22n, 52n);
        expect((await poc.commitmentOf(2n, n1.address)).status).to.equal(Status.Rejected);
        await goToPhase(connection, sys, 3n, EpochPhase.PoC);
        expect(await poc.totalPower(2n)).to.equal(0n);
        expect(await poc.verdictWeightOf(3n, v1.address)).to.deep.equal([1n, 3n, true]);
        expect(await poc.verdictWeightOf(3n, n1.address)).to.deep.equal([0n, 3n, true]);
        await givePower(connection, sys, 3n, [{ node: n2, count: 8 }], { voters: sys.validators });
        // Epoch 4 is skipped (nobody advances it): epoch 5 is bootstrapped again.
        await goToPhase(connection, sys, 5n, EpochPhase.PoC);
        expect(await sys.epochManager.recordOf(4n)).to.deep.equal([ethers.ZeroHash, ethers.ZeroHash, 0n, 0n]);
        expect(await poc.verdictWeightOf(4n, n2.address)).to.deep.equal([8n, 8n, false]);
        expect(await poc.verdictWeightOf(5n, v1.address)).to.deep.equal([1n, 3n, true]);
        await givePower(connection, sys, 5n, [{ node: n1, count: 5 }], { voters: sys.validators });
        expect(await poc.powerOf(5n, n1.address)).to.equal(5n);
      });

      it("answers the bootstrap set for epochs 0 and 1", async () => {
        const { poc, v1, n1 } = await networkHelpers.loadFixture(pocFixture);
        expect(await poc.verdictWeightOf(0n, v1.address)).to.deep.equal([1n, 3n, true]);
        expect(await poc.verdictWeightOf(1n, n1.address)).to.deep.equal([0n, 3n, true]);
        expect(await poc.verdictWeightFor(0n, n1.address, v1.address)).to.deep.equal([1n, 3n, true]);
      });
    });

    describe("refusals", () => {
      it("refuses a verdict on the caller's own commitment", async () => {
        const { sys, poc, n1, VALIDATOR_ROLE } = await networkHelpers.loadFixture(pocFixture);
        await poc.connect(sys.admin).grantRole(VALIDATOR_ROLE, n1.address);
        await commitAll(sys, 1n, [[n1, 5n]]);
        await expect(poc.connect(n1).submitVerdict(1n, n1.address, true, EVIDENCE))
          .to.be.revertedWithCustomError(poc, "ProofOfComputeSelfVerdict")
          .withArgs(n1.address);
      });

      it("refuses a verdict on a node without a commitment", async () => {
        const { sys, poc, n1, n2, v1 } = await networkHelpers.loadFixture(pocFixture);
        await commitAll(sys, 1n, [[n1, 5n]]);
        await expect(poc.connect(v1).submitVerdict(1n, n2.address, true, EVIDENCE))
          .to.be.revertedWithCustomError(poc, "ProofOfComputeNoCommitment")
          .withArgs(1n, n2.address);
        await expect(poc.connect(v1).submitVerdict(2n, n1.address, true, EVIDENCE))
          .to.be.revertedWithCustomError(poc, "ProofOfComputeNoCommitment")
          .withArgs(2n, n1.address);
      });

      it("refuses a second verdict of the same giver, even the opposite one", async () => {
        const { sys, poc, n1, v1 } = await networkHelpers.loadFixture(pocFixture);
        await commitAll(sys, 1n, [[n1, 5n]]);
        await poc.connect(v1).submitVerdict(1n, n1.address, true, EVIDENCE);
        for (const accepted of [true, false]) {
          await expect(poc.connect(v1).submitVerdict(1n, n1.address, accepted, EVIDENCE))
            .to.be.revertedWithCustomError(poc, "ProofOfComputeAlreadyVoted")
            .withArgs(1n, n1.address, v1.address);
        }
        expect((await poc.commitmentOf(1n, n1.address)).acceptWeight).to.equal(1n);
      });

      it("refuses a giver without weight", async () => {
        const { sys, poc, n1, n2 } = await networkHelpers.loadFixture(pocFixture);
        await commitAll(sys, 1n, [[n1, 5n]]);
        for (const giver of [n2, sys.stranger]) {
          await expect(poc.connect(giver).submitVerdict(1n, n1.address, false, EVIDENCE))
            .to.be.revertedWithCustomError(poc, "ProofOfComputeNoVerdictWeight")
            .withArgs(1n, giver.address);
        }
      });

      it("takes verdicts until the last second of the PoC validation phase, and none after", async () => {
        const { sys, poc, em, n1, n2, v1, v2, v3 } = await networkHelpers.loadFixture(pocFixture);
        await commitAll(sys, 1n, [
          [n1, 5n],
          [n2, 7n],
        ]);
        const t = await em.timelineOf(1n);
        await vote(poc, 1n, n1, true, [v1, v2]);
        await time.setNextBlockTimestamp(t.pocValidationEnd - 1n);
        await expect(poc.connect(v3).submitVerdict(1n, n1.address, true, EVIDENCE, MINED)).to.emit(poc, "PocAccepted");
        await time.setNextBlockTimestamp(t.pocValidationEnd);
        await expect(poc.connect(v1).submitVerdict(1n, n2.address, true, EVIDENCE, MINED))
          .to.be.revertedWithCustomError(poc, "ProofOfComputeOutsideVerdictWindow")
          .withArgs(1n, t.pocValidationEnd);
        // Still pending, so never accepted: no power.
        expect((await poc.commitmentOf(1n, n2.address)).status).to.equal(Status.Pending);
        expect(await poc.powerOf(1n, n2.address)).to.equal(0n);
        expect(await poc.totalPower(1n)).to.equal(5n);
      });
    });
  });

  describe("isPowerFinal", () => {
    it("is false until the PoC validation phase ends and true from its end", async () => {
      const { sys, poc, em } = await networkHelpers.loadFixture(pocFixture);
      const t = await em.timelineOf(1n);
      expect(await poc.isPowerFinal(1n)).to.equal(false);
      expect(await poc.isPowerFinal(2n)).to.equal(false);
      await goToPhase(connection, sys, 1n, EpochPhase.PoCValidation);
      expect(await poc.isPowerFinal(1n)).to.equal(false);
      await time.increaseTo(t.pocValidationEnd - 1n);
      expect(await poc.isPowerFinal(1n)).to.equal(false);
      await time.increaseTo(t.pocValidationEnd);
      expect(await poc.isPowerFinal(1n)).to.equal(true);
      await expect(poc.isPowerFinal(0n)).to.be.revertedWithCustomError(em, "EpochManagerInvalidEpoch").withArgs(0n);
    });
  });

  describe("power and its cap", () => {
    it("is zero everywhere in an epoch without accepted commitments", async () => {
      const { poc, n1 } = await networkHelpers.loadFixture(pocFixture);
      expect(await poc.powerCap(1n)).to.deep.equal([0n, MAX_SHARE, 0n, 0n]);
      expect(await poc.totalPower(1n)).to.equal(0n);
      expect(await poc.powerOf(1n, n1.address)).to.equal(0n);
      expect(await poc.rawPowerOf(1n, n1.address)).to.equal(0n);
    });

    it("gives a single node all of it (cap 100 %)", async () => {
      const { sys, poc, n1 } = await networkHelpers.loadFixture(pocFixture);
      await givePower(connection, sys, 1n, [{ node: n1, count: 1000 }]);
      await expectCap(poc, 1n, [n1], [1000n]);
      expect(await poc.powerCap(1n)).to.deep.equal([1000n, 10_000n, 1n, 1000n]);
    });

    it("caps two nodes at 50 %: raw 90 / 10 gives 10 / 10", async () => {
      const { sys, poc, n1, n2 } = await networkHelpers.loadFixture(pocFixture);
      await givePower(connection, sys, 1n, [
        { node: n1, count: 90 },
        { node: n2, count: 10 },
      ]);
      await expectCap(poc, 1n, [n1, n2], [90n, 10n]);
      expect(await poc.powerCap(1n)).to.deep.equal([10n, 5000n, 2n, 100n]);
      expect(await poc.totalPower(1n)).to.equal(20n);
    });

    it("caps three nodes at 40 %: raw 9000 / 500 / 500 gives 666 / 500 / 500", async () => {
      const { sys, poc, n1, n2, n3 } = await networkHelpers.loadFixture(pocFixture);
      await givePower(connection, sys, 1n, [
        { node: n1, count: 9000 },
        { node: n2, count: 500 },
        { node: n3, count: 500 },
      ]);
      await expectCap(poc, 1n, [n1, n2, n3], [9000n, 500n, 500n]);
      expect(await poc.powerCap(1n)).to.deep.equal([666n, 4000n, 3n, 10_000n]);
      expect(await poc.totalPower(1n)).to.equal(1666n);
    });

    it("caps four nodes around a giant at 30 %: raw 9000 / 500 / 300 / 200 gives 375 / 375 / 300 / 200", async () => {
      const { sys, poc, n1, n2, n3, n4 } = await networkHelpers.loadFixture(pocFixture);
      await givePower(connection, sys, 1n, [
        { node: n1, count: 9000 },
        { node: n2, count: 500 },
        { node: n3, count: 300 },
        { node: n4, count: 200 },
      ]);
      await expectCap(poc, 1n, [n1, n2, n3, n4], [9000n, 500n, 300n, 200n]);
      expect(await poc.powerCap(1n)).to.deep.equal([375n, 3000n, 4n, 10_000n]);
      // The two capped nodes hold exactly 30 % each.
      expect(await poc.totalPower(1n)).to.equal(1250n);
      // 90 / 5 / 3 / 2: level 3 of a total 11 (27 % each for the three at the level).
      await givePower(connection, sys, 3n, [
        { node: n1, count: 90 },
        { node: n2, count: 5 },
        { node: n3, count: 3 },
        { node: n4, count: 2 },
      ]);
      await expectCap(poc, 3n, [n1, n2, n3, n4], [90n, 5n, 3n, 2n]);
      expect(await poc.totalPower(3n)).to.equal(11n);
    });

    it("leaves four balanced nodes uncapped, whatever the order they are accepted in", async () => {
      const { sys, poc, n1, n2, n3, n4 } = await networkHelpers.loadFixture(pocFixture);
      await givePower(connection, sys, 1n, [
        { node: n4, count: 20 },
        { node: n1, count: 29 },
        { node: n3, count: 25 },
        { node: n2, count: 26 },
      ]);
      await expectCap(poc, 1n, [n4, n1, n3, n2], [20n, 29n, 25n, 26n]);
      expect(await poc.powerCap(1n)).to.deep.equal([29n, 3000n, 4n, 100n]);
    });

    it("caps three giants among small nodes (the deepest water level, three nodes above it)", async () => {
      const { sys, poc, n1, n2, n3, n4 } = await networkHelpers.loadFixture(pocFixture);
      const [n7] = await validatedNodes(connection, sys, 1);
      const nodes = [n1, n2, n3, n4, n7];
      const raws = [1000n, 1000n, 1000n, 10n, 1n];
      await givePower(
        connection,
        sys,
        1n,
        nodes.map((node, i) => ({ node, count: raws[i] })),
      );
      const ref = await expectCap(poc, 1n, nodes, raws);
      expect(ref.cappedNodes).to.equal(3);
      // x = 0.3 * 11 / 0.1 = 33: three at 33 of a total 110 (30 % each).
      expect(await poc.powerCap(1n)).to.deep.equal([33n, 3000n, 5n, 3011n]);
      expect(await poc.totalPower(1n)).to.equal(110n);
    });

    it("handles the largest counts without overflow", async () => {
      const { sys, poc, n1, n2, n3, n4 } = await networkHelpers.loadFixture(pocFixture);
      const [n7] = await validatedNodes(connection, sys, 1);
      const MAX = 2n ** 64n - 1n;
      const nodes = [n1, n2, n3, n4, n7];
      const raws = [MAX, MAX, 1n, 1n, 1n];
      await givePower(
        connection,
        sys,
        1n,
        nodes.map((node, i) => ({ node, count: raws[i] })),
      );
      await expectCap(poc, 1n, nodes, raws);
      expect(await poc.powerCap(1n)).to.deep.equal([2n, 3000n, 5n, 2n * MAX + 3n]);
      expect(await poc.totalPower(1n)).to.equal(7n);
    });

    it("caps at 25 % exactly when so configured, with four giants", async () => {
      const { sys, n1, n2, n3, n4 } = await networkHelpers.loadFixture(pocFixture);
      const poc25 = await deployPoc(sys, 6667n, 2500n);
      const sys25 = { ...sys, proofOfCompute: poc25 };
      const [n7] = await validatedNodes(connection, sys, 1);
      const nodes = [n1, n2, n3, n4, n7];
      for (const raws of [
        [700n, 600n, 500n, 400n, 3n],
        [100n, 100n, 100n, 10n, 1n],
        [1n, 1n, 1n, 1n, 1n],
      ]) {
        const epoch = (await sys.epochManager.currentEpoch()) + 2n;
        await givePower(
          connection,
          sys25,
          epoch,
          nodes.map((node, i) => ({ node, count: raws[i] })),
          { voters: sys.validators },
        );
        await expectCap(poc25, epoch, nodes, raws, 2500n);
      }
    });

    it("applies a cap above the defaults to two and three nodes (maxShareBps 6000)", async () => {
      const { sys, n1, n2, n3 } = await networkHelpers.loadFixture(pocFixture);
      const poc60 = await deployPoc(sys, 6667n, 6000n);
      const sys60 = { ...sys, proofOfCompute: poc60 };
      await givePower(connection, sys60, 1n, [
        { node: n1, count: 90 },
        { node: n2, count: 10 },
      ], { voters: sys.validators });
      await expectCap(poc60, 1n, [n1, n2], [90n, 10n], 6000n);
      expect(await poc60.powerCap(1n)).to.deep.equal([15n, 6000n, 2n, 100n]);
      await givePower(connection, sys60, 3n, [
        { node: n1, count: 90 },
        { node: n2, count: 10 },
        { node: n3, count: 10 },
      ], { voters: sys.validators });
      await expectCap(poc60, 3n, [n1, n2, n3], [90n, 10n, 10n], 6000n);
      expect((await poc60.powerCap(3n))[1]).to.equal(6000n);
    });

    it("matches the plain water-filling reference on 30 pseudo-random distributions of 4 to 12 nodes", async function () {
      this.timeout(600_000);
      const { sys, poc, n1, n2, n3, n4 } = await networkHelpers.loadFixture(pocFixture);
      const nodes: Account[] = [n1, n2, n3, n4, ...(await validatedNodes(connection, sys, 8))];
      const random = prng(0xc0ffee);
      const int = (max: number) => Math.floor(random() * max);
      const cappedCounts = new Set<number>();
      for (let k = 0; k < 30; k++) {
        const size = 4 + int(9);
        // Heavy tails: most counts small, a few giants (1 to 3 of them, up to a million times larger).
        const raws = Array.from({ length: size }, () => BigInt(1 + int(1000)));
        for (let g = int(4); g > 0; g--) raws[int(size)] = BigInt(1 + int(1000)) * BigInt(1 + int(1_000_000));
        const picked = [...nodes].sort(() => random() - 0.5).slice(0, size);
        // Odd epochs only: the even one in between has no power, so the bootstrap set decides (3 verdicts).
        const epoch = 2n * BigInt(k) + 1n;
        const entries: PowerEntry[] = picked.map((node, i) => ({ node, count: raws[i] }));
        await givePower(connection, sys, epoch, entries, { voters: sys.validators });
        const ref = await expectCap(poc, epoch, picked, raws);
        cappedCounts.add(ref.cappedNodes);
      }
      // The distributions exercise every depth of the water level: 0 (nobody capped) to 3 nodes above it.
      expect([...cappedCounts].sort()).to.deep.equal([0, 1, 2, 3]);
    });
  });

  describe("test helpers", () => {
    it("fundedAccounts makes new accounts with ether, tokens and the system's approvals", async () => {
      const { sys } = await networkHelpers.loadFixture(pocFixture);
      const [a, b] = await fundedAccounts(connection, sys, 2, { tokens: 5n * 10n ** 18n });
      expect(a.address).to.not.equal(b.address);
      expect(await ethers.provider.getBalance(a.address)).to.be.greaterThan(999n * 10n ** 18n);
      expect(await sys.token.balanceOf(b.address)).to.equal(5n * 10n ** 18n);
      expect(await sys.token.allowance(a.address, await sys.registry.getAddress())).to.equal(ethers.MaxUint256);
      expect(await sys.token.allowance(a.address, await sys.trainingRuns.getAddress())).to.equal(ethers.MaxUint256);
      const [c] = await fundedAccounts(connection, sys, 1);
      expect(await sys.token.balanceOf(c.address)).to.equal(0n);
    });

    it("goToPhase moves forward only and stays put inside the phase asked for", async () => {
      const { sys, em } = await networkHelpers.loadFixture(pocFixture);
      await goToPhase(connection, sys, 1n, EpochPhase.Work);
      expect(await em.lastAdvancedEpoch()).to.equal(1n);
      const t = await em.timelineOf(1n);
      expect(BigInt(await time.latest())).to.equal(t.pocValidationEnd);
      await goToPhase(connection, sys, 1n, EpochPhase.Work);
      expect(BigInt(await time.latest())).to.equal(t.pocValidationEnd);
      let failure: unknown;
      await goToPhase(connection, sys, 1n, EpochPhase.PoC).catch((error: unknown) => (failure = error));
      expect(String(failure)).to.include("phase 1 of epoch 1 is over");
      await goToPhase(connection, sys, 1n, EpochPhase.Claim);
      expect(await em.phaseOf(1n)).to.equal(BigInt(EpochPhase.Claim));
    });
  });

  describe("scenario", () => {
    it("runs two epochs end to end: bootstrap verdicts, then verdicts weighted by the first epoch's power", async () => {
      const { sys, poc, n1, n2, n3, n4, v1, v2, v3 } = await networkHelpers.loadFixture(pocFixture);
      // Epoch 1: four nodes prove compute; n4 inflates its count and the validators reject it.
      await commitAll(sys, 1n, [
        [n1, 400n],
        [n2, 300n],
        [n3, 200n],
        [n4, 1_000_000n],
      ]);
      for (const n of [n1, n2, n3]) await vote(poc, 1n, n, true, [v1, v2, v3]);
      await vote(poc, 1n, n4, false, [v1]);
      await goToPhase(connection, sys, 1n, EpochPhase.Work);
      expect(await poc.isPowerFinal(1n)).to.equal(true);
      // Three nodes: cap 40 %; 400 / 300 / 200 of 900 is 44 %: level 333.
      await expectCap(poc, 1n, [n1, n2, n3], [400n, 300n, 200n]);
      expect(await poc.powerOf(1n, n4.address)).to.equal(0n);

      // Epoch 2: the three powered nodes judge every commitment; n1 (333 of 833) is judged by the other 500.
      const given = await givePower(connection, sys, 2n, [
        { node: n1, count: 500 },
        { node: n2, count: 400 },
        { node: n3, count: 300 },
        { node: n4, count: 300 },
      ]);
      expect(given.seeds.get(n1.address)).to.equal(seedFor(n1.address, 2n));
      expect(await sys.epochManager.seedCommitmentOf(2n, n1.address)).to.equal(
        await sys.epochManager.seedCommitment(seedFor(n1.address, 2n), n1.address),
      );
      await expectCap(poc, 2n, [n1, n2, n3, n4], [500n, 400n, 300n, 300n]);
      expect(given.totalPower).to.equal(await poc.totalPower(2n));
      expect(given.power.get(n1.address)).to.equal(await poc.powerOf(2n, n1.address));
      expect(await sys.epochManager.currentPhase()).to.equal(BigInt(EpochPhase.Work));
      for (const v of [v1, v2, v3]) expect(await poc.hasVerdict(2n, n1.address, v.address)).to.equal(false);
    });
  });
});

/** A second ProofOfCompute on the same system, with other shares and the same bootstrap set. */
async function deployPoc(sys: System, acceptShareBps: bigint, maxShareBps: bigint): Promise<ProofOfCompute> {
  const poc = (await ethers.deployContract("ProofOfCompute", [
    sys.admin.address,
    await sys.epochManager.getAddress(),
    await sys.registry.getAddress(),
    await sys.challengeBoard.getAddress(),
    acceptShareBps,
    maxShareBps,
  ])) as unknown as ProofOfCompute;
  for (const v of sys.validators) await poc.connect(sys.admin).grantRole(await poc.VALIDATOR_ROLE(), v.address);
  return poc;
}
