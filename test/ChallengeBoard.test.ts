/**
 * ChallengeBoard: validators' hardware challenge results, in numbered rounds tied to the node's
 * capability declaration (`capsId` in the MinerRegistry).
 *
 * The system comes from the shared Ignition fixture (REQUIRED_APPROVALS = 2, REQUIRED_REJECTIONS = 1,
 * RETRY_COOLDOWN = 1 h, three validators). Every report names the declaration its challenge tested; the
 * helpers below name the node's current one unless told otherwise. This file's fixture adds three registered nodes: n1 and n2 under provider p1,
 * n3 under provider p2.
 */
import { expect } from "chai";
import { network } from "hardhat";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import {
  CPU_NODE,
  H100_NODE,
  REQUIRED_APPROVALS,
  REQUIRED_REJECTIONS,
  RETRY_COOLDOWN,
  type System,
  deploySystem,
  minStakeFor,
  registerNode,
} from "./helpers/system.js";
import { ChallengeStatus } from "../scripts/lib/protocol.js";

const connection = await network.create();
const { ethers, networkHelpers } = connection;

const ZERO_HASH = ethers.ZeroHash;
const MAX_QUORUM = 64n;
const MAX_RETRY_COOLDOWN = 30n * 24n * 3600n;

/** A non-zero result or reason hash. */
function hashOf(label: string): string {
  return ethers.id(label);
}

async function challengeBoardFixture() {
  const sys = await deploySystem(connection);
  const [p1, p2] = sys.providers;
  const [n1, n2, n3] = sys.nodes;
  await registerNode(connection, sys, p1, n1, H100_NODE);
  await registerNode(connection, sys, p1, n2, H100_NODE);
  await registerNode(connection, sys, p2, n3, CPU_NODE);
  const VALIDATOR_ROLE = await sys.challengeBoard.VALIDATOR_ROLE();
  const DEFAULT_ADMIN_ROLE = await sys.challengeBoard.DEFAULT_ADMIN_ROLE();
  return { sys, p1, p2, n1, n2, n3, VALIDATOR_ROLE, DEFAULT_ADMIN_ROLE };
}

/** An approval naming `capsId`, by default the node's current declaration (as a validator reads it). */
async function approve(sys: System, validator: HardhatEthersSigner, node: string, label: string, capsId?: bigint) {
  capsId ??= await sys.registry.capsIdOf(node);
  return sys.challengeBoard.connect(validator).reportChallenge(node, capsId, true, hashOf(label));
}

/** A reject naming `capsId`, by default the node's current declaration. */
async function reject(sys: System, validator: HardhatEthersSigner, node: string, label: string, capsId?: bigint) {
  capsId ??= await sys.registry.capsIdOf(node);
  return sys.challengeBoard.connect(validator).reportChallenge(node, capsId, false, hashOf(label));
}

/** Validates `node` with the first two validators (the fixture requires two approvals). */
async function validate(sys: System, node: string) {
  await approve(sys, sys.validators[0], node, "v1 ok");
  await approve(sys, sys.validators[1], node, "v2 ok");
}

/** Has validator 1 reject `node` and returns the timestamp of the rejection's block. */
async function rejectNow(sys: System, node: string, label = "bad gpu"): Promise<bigint> {
  await reject(sys, sys.validators[0], node, label);
  return BigInt(await networkHelpers.time.latest());
}

/** A capability declaration differing from H100_NODE by its RAM (same GPU count, so no extra stake). */
const H100_MORE_RAM = { ...H100_NODE, ramMB: 1_024_000 };

describe("ChallengeBoard", () => {
  describe("reportChallenge", () => {
    it("refuses callers without VALIDATOR_ROLE, including the admin", async () => {
      const { sys, n1, VALIDATOR_ROLE } = await networkHelpers.loadFixture(challengeBoardFixture);
      const capsId = await sys.registry.capsIdOf(n1.address);
      for (const caller of [sys.stranger, sys.admin, n1]) {
        await expect(sys.challengeBoard.connect(caller).reportChallenge(n1.address, capsId, true, hashOf("x")))
          .to.be.revertedWithCustomError(sys.challengeBoard, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, VALIDATOR_ROLE);
      }
    });

    it("refuses a validator reporting on its own node or on a node of its own provider account", async () => {
      const { sys, p1, n1, VALIDATOR_ROLE } = await networkHelpers.loadFixture(challengeBoardFixture);
      await sys.challengeBoard.connect(sys.admin).grantRole(VALIDATOR_ROLE, n1.address);
      await sys.challengeBoard.connect(sys.admin).grantRole(VALIDATOR_ROLE, p1.address);
      for (const self of [n1, p1]) {
        await expect(approve(sys, self, n1.address, "me"))
          .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardSelfReport")
          .withArgs(n1.address, self.address);
      }
      // The same accounts may still challenge a node of another provider.
      const n3 = sys.nodes[2];
      await expect(approve(sys, p1, n3.address, "other"))
        .to.emit(sys.challengeBoard, "ChallengeApproved")
        .withArgs(n3.address, 1n, p1.address, hashOf("other"), 1n);
    });

    it("refuses a zero result hash, for an approval and for a reject", async () => {
      const { sys, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      const board = sys.challengeBoard.connect(sys.validators[0]);
      const capsId = await sys.registry.capsIdOf(n1.address);
      await expect(board.reportChallenge(n1.address, capsId, true, ZERO_HASH)).to.be.revertedWithCustomError(
        sys.challengeBoard,
        "ChallengeBoardEmptyResultHash",
      );
      await expect(board.reportChallenge(n1.address, capsId, false, ZERO_HASH)).to.be.revertedWithCustomError(
        sys.challengeBoard,
        "ChallengeBoardEmptyResultHash",
      );
      expect((await sys.challengeBoard.challengeOf(n1.address)).round).to.equal(0n);
    });

    it("refuses a node that is not registered", async () => {
      const { sys } = await networkHelpers.loadFixture(challengeBoardFixture);
      const unregistered = sys.nodes[5];
      await expect(approve(sys, sys.validators[0], unregistered.address, "x"))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardNodeNotRegistered")
        .withArgs(unregistered.address);
      await expect(reject(sys, sys.validators[0], unregistered.address, "x"))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardNodeNotRegistered")
        .withArgs(unregistered.address);
    });

    it("starts round 1 for the node's current declaration at the first report", async () => {
      const { sys, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      const capsId = await sys.registry.capsIdOf(n1.address);
      await expect(approve(sys, sys.validators[0], n1.address, "v1 ok"))
        .to.emit(sys.challengeBoard, "ChallengeRoundStarted")
        .withArgs(n1.address, 1n, capsId);
      const c = await sys.challengeBoard.challengeOf(n1.address);
      expect(c.capsId).to.equal(capsId);
      expect(c.round).to.equal(1n);
      expect(c.status).to.equal(BigInt(ChallengeStatus.Pending));
      expect(c.approvals).to.equal(1n);
    });

    it("starts round 1 also when the first report is a reject", async () => {
      const { sys, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      const capsId = await sys.registry.capsIdOf(n1.address);
      const tx = reject(sys, sys.validators[0], n1.address, "no gpu");
      await expect(tx).to.emit(sys.challengeBoard, "ChallengeRoundStarted").withArgs(n1.address, 1n, capsId);
      await expect(tx)
        .to.emit(sys.challengeBoard, "ChallengeRejected")
        .withArgs(n1.address, 1n, sys.validators[0].address, hashOf("no gpu"), 1n);
      await expect(tx).to.emit(sys.challengeBoard, "NodeRejected").withArgs(n1.address, 1n, capsId);
    });

    it("refuses a report naming the node's previous declaration after updateCapabilities (StaleDeclaration)", async () => {
      const { sys, p1, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      const [v1, v2] = sys.validators;
      const oldCapsId = await sys.registry.capsIdOf(n1.address);
      await approve(sys, v1, n1.address, "v1 ok");
      await sys.registry.connect(p1).updateCapabilities(n1.address, H100_MORE_RAM);
      const current = await sys.registry.capsIdOf(n1.address);
      expect(current).to.not.equal(oldCapsId);
      for (const approved of [true, false]) {
        await expect(sys.challengeBoard.connect(v2).reportChallenge(n1.address, oldCapsId, approved, hashOf("old")))
          .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardStaleDeclaration")
          .withArgs(n1.address, oldCapsId, current);
      }
      // Nothing was recorded: round 1 of the old declaration is untouched and v2 has no report.
      const c = await sys.challengeBoard.challengeOf(n1.address);
      expect([c.capsId, c.round, c.status, c.approvals, c.rejections]).to.deep.equal([
        oldCapsId,
        1n,
        BigInt(ChallengeStatus.Pending),
        1n,
        0n,
      ]);
      expect(await sys.challengeBoard.reportOf(n1.address, 1, v2.address)).to.equal(ZERO_HASH);
      // The same validator naming the current declaration is accepted (and opens round 2).
      await expect(approve(sys, v2, n1.address, "new", current))
        .to.emit(sys.challengeBoard, "ChallengeRoundStarted")
        .withArgs(n1.address, 2n, current);
    });

    it("refuses a report naming a made-up declaration, zero, or another node's declaration (StaleDeclaration)", async () => {
      const { sys, n1, n2 } = await networkHelpers.loadFixture(challengeBoardFixture);
      const [v1] = sys.validators;
      const current = await sys.registry.capsIdOf(n1.address);
      const other = await sys.registry.capsIdOf(n2.address);
      expect(other).to.not.equal(current);
      for (const capsId of [current + 100n, 0n, other, 2n ** 64n - 1n]) {
        await expect(sys.challengeBoard.connect(v1).reportChallenge(n1.address, capsId, true, hashOf("x")))
          .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardStaleDeclaration")
          .withArgs(n1.address, capsId, current);
        await expect(sys.challengeBoard.connect(v1).reportChallenge(n1.address, capsId, false, hashOf("x")))
          .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardStaleDeclaration")
          .withArgs(n1.address, capsId, current);
      }
      expect((await sys.challengeBoard.challengeOf(n1.address)).round).to.equal(0n);
    });

    it("does not start another round at later reports on the same declaration", async () => {
      const { sys, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      await approve(sys, sys.validators[0], n1.address, "v1 ok");
      await expect(approve(sys, sys.validators[1], n1.address, "v2 ok")).not.to.emit(
        sys.challengeBoard,
        "ChallengeRoundStarted",
      );
      expect((await sys.challengeBoard.challengeOf(n1.address)).round).to.equal(1n);
    });

    it("counts approvals per distinct validator, with the running count in ChallengeApproved", async () => {
      const { sys, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      await sys.challengeBoard.connect(sys.admin).setRequiredApprovals(3);
      const [v1, v2, v3] = sys.validators;
      await expect(approve(sys, v1, n1.address, "r1"))
        .to.emit(sys.challengeBoard, "ChallengeApproved")
        .withArgs(n1.address, 1n, v1.address, hashOf("r1"), 1n);
      await expect(approve(sys, v2, n1.address, "r2"))
        .to.emit(sys.challengeBoard, "ChallengeApproved")
        .withArgs(n1.address, 1n, v2.address, hashOf("r2"), 2n);
      expect((await sys.challengeBoard.challengeOf(n1.address)).approvals).to.equal(2n);
      await expect(approve(sys, v3, n1.address, "r3"))
        .to.emit(sys.challengeBoard, "ChallengeApproved")
        .withArgs(n1.address, 1n, v3.address, hashOf("r3"), 3n);
      expect((await sys.challengeBoard.challengeOf(n1.address)).approvals).to.equal(3n);
    });

    it("refuses a second report by the same validator in a round, whether approval or reject", async () => {
      const { sys, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      const [v1] = sys.validators;
      await approve(sys, v1, n1.address, "first");
      await expect(approve(sys, v1, n1.address, "again"))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardAlreadyReported")
        .withArgs(n1.address, 1n, v1.address);
      await expect(reject(sys, v1, n1.address, "changed my mind"))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardAlreadyReported")
        .withArgs(n1.address, 1n, v1.address);
      const c = await sys.challengeBoard.challengeOf(n1.address);
      expect(c.approvals).to.equal(1n);
      expect(c.status).to.equal(BigInt(ChallengeStatus.Pending));
      expect(await sys.challengeBoard.reportOf(n1.address, 1, v1.address)).to.equal(hashOf("first"));
    });

    it("lets one validator report on several nodes (rounds are per node)", async () => {
      const { sys, n1, n2 } = await networkHelpers.loadFixture(challengeBoardFixture);
      const [v1] = sys.validators;
      await approve(sys, v1, n1.address, "n1");
      await expect(approve(sys, v1, n2.address, "n2"))
        .to.emit(sys.challengeBoard, "ChallengeApproved")
        .withArgs(n2.address, 1n, v1.address, hashOf("n2"), 1n);
    });

    it("validates the node when the approvals reach requiredApprovals", async () => {
      const { sys, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      const capsId = await sys.registry.capsIdOf(n1.address);
      await approve(sys, sys.validators[0], n1.address, "v1 ok");
      await expect(approve(sys, sys.validators[1], n1.address, "v2 ok"))
        .to.emit(sys.challengeBoard, "NodeValidated")
        .withArgs(n1.address, 1n, capsId);
      expect(await sys.challengeBoard.isValidated(n1.address)).to.equal(true);
      const c = await sys.challengeBoard.challengeOf(n1.address);
      expect(c.status).to.equal(BigInt(ChallengeStatus.Validated));
      expect(c.approvals).to.equal(REQUIRED_APPROVALS);
      expect(await sys.challengeBoard.isValidated(sys.nodes[1].address)).to.equal(false);
    });

    it("does not validate the node with one approval of two", async () => {
      const { sys, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      await expect(approve(sys, sys.validators[0], n1.address, "v1 ok")).not.to.emit(
        sys.challengeBoard,
        "NodeValidated",
      );
      expect(await sys.challengeBoard.isValidated(n1.address)).to.equal(false);
      expect((await sys.challengeBoard.challengeOf(n1.address)).status).to.equal(BigInt(ChallengeStatus.Pending));
    });

    it("marks the round Rejected at a reject (quorum 1), even after an approval, and records who, when and why", async () => {
      const { sys, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      const [v1, v2] = sys.validators;
      const capsId = await sys.registry.capsIdOf(n1.address);
      await approve(sys, v1, n1.address, "v1 ok");
      const tx = reject(sys, v2, n1.address, "fake H100");
      await expect(tx)
        .to.emit(sys.challengeBoard, "ChallengeRejected")
        .withArgs(n1.address, 1n, v2.address, hashOf("fake H100"), 1n);
      await expect(tx).to.emit(sys.challengeBoard, "NodeRejected").withArgs(n1.address, 1n, capsId);
      const rejectedAt = BigInt(await networkHelpers.time.latest());
      const c = await sys.challengeBoard.challengeOf(n1.address);
      expect(c.status).to.equal(BigInt(ChallengeStatus.Rejected));
      expect(c.rejectedAt).to.equal(rejectedAt);
      expect(c.rejectedBy).to.equal(v2.address);
      expect(c.rejectReason).to.equal(hashOf("fake H100"));
      expect(c.approvals).to.equal(1n);
      expect(c.rejections).to.equal(1n);
      expect(c.round).to.equal(1n);
      expect(await sys.challengeBoard.isValidated(n1.address)).to.equal(false);
    });

    it("refuses any report on a validated round", async () => {
      const { sys, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      await validate(sys, n1.address);
      const [v1, , v3] = sys.validators;
      await expect(approve(sys, v3, n1.address, "late ok"))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardRoundClosed")
        .withArgs(n1.address, 1n, ChallengeStatus.Validated);
      await expect(reject(sys, v3, n1.address, "late no"))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardRoundClosed")
        .withArgs(n1.address, 1n, ChallengeStatus.Validated);
      // The closed-round check comes before the duplicate check.
      await expect(reject(sys, v1, n1.address, "late no"))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardRoundClosed")
        .withArgs(n1.address, 1n, ChallengeStatus.Validated);
      expect(await sys.challengeBoard.isValidated(n1.address)).to.equal(true);
    });

    it("refuses any report on a rejected round", async () => {
      const { sys, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      await rejectNow(sys, n1.address);
      const [, v2, v3] = sys.validators;
      await expect(approve(sys, v2, n1.address, "ok"))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardRoundClosed")
        .withArgs(n1.address, 1n, ChallengeStatus.Rejected);
      await expect(reject(sys, v3, n1.address, "no"))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardRoundClosed")
        .withArgs(n1.address, 1n, ChallengeStatus.Rejected);
    });

    it("keeps each validator's hash per round in reportOf", async () => {
      const { sys, n1, n2 } = await networkHelpers.loadFixture(challengeBoardFixture);
      const [v1, v2, v3] = sys.validators;
      await approve(sys, v1, n1.address, "v1 result");
      await reject(sys, v2, n1.address, "v2 reason");
      expect(await sys.challengeBoard.reportOf(n1.address, 1, v1.address)).to.equal(hashOf("v1 result"));
      expect(await sys.challengeBoard.reportOf(n1.address, 1, v2.address)).to.equal(hashOf("v2 reason"));
      expect(await sys.challengeBoard.reportOf(n1.address, 1, v3.address)).to.equal(ZERO_HASH);
      expect(await sys.challengeBoard.reportOf(n1.address, 2, v1.address)).to.equal(ZERO_HASH);
      expect(await sys.challengeBoard.reportOf(n2.address, 1, v1.address)).to.equal(ZERO_HASH);
    });

    it("stops accepting reports from a validator whose role was revoked", async () => {
      const { sys, n1, VALIDATOR_ROLE } = await networkHelpers.loadFixture(challengeBoardFixture);
      const [v1] = sys.validators;
      await sys.challengeBoard.connect(sys.admin).revokeRole(VALIDATOR_ROLE, v1.address);
      await expect(approve(sys, v1, n1.address, "ok"))
        .to.be.revertedWithCustomError(sys.challengeBoard, "AccessControlUnauthorizedAccount")
        .withArgs(v1.address, VALIDATOR_ROLE);
    });
  });

  describe("reportChallenge: rejection quorum", () => {
    /** The fixture with two distinct rejections required. */
    async function quorumTwo() {
      const fixture = await networkHelpers.loadFixture(challengeBoardFixture);
      await fixture.sys.challengeBoard.connect(fixture.sys.admin).setRequiredRejections(2);
      return fixture;
    }

    it("leaves the round Pending at the first of two rejects: rejections 1, no NodeRejected, nothing recorded as rejected", async () => {
      const { sys, n1 } = await quorumTwo();
      const [v1] = sys.validators;
      const tx = reject(sys, v1, n1.address, "v1 no");
      await expect(tx)
        .to.emit(sys.challengeBoard, "ChallengeRejected")
        .withArgs(n1.address, 1n, v1.address, hashOf("v1 no"), 1n);
      await expect(tx).not.to.emit(sys.challengeBoard, "NodeRejected");
      const c = await sys.challengeBoard.challengeOf(n1.address);
      expect(c.status).to.equal(BigInt(ChallengeStatus.Pending));
      expect(c.rejections).to.equal(1n);
      expect(c.approvals).to.equal(0n);
      expect(c.rejectedAt).to.equal(0n);
      expect(c.rejectedBy).to.equal(ethers.ZeroAddress);
      expect(c.rejectReason).to.equal(ZERO_HASH);
      expect(await sys.challengeBoard.reportOf(n1.address, 1, v1.address)).to.equal(hashOf("v1 no"));
      // Not rejected, so no retry either.
      await expect(sys.challengeBoard.connect(n1).requestNewRound(n1.address))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardNotRejected")
        .withArgs(n1.address, ChallengeStatus.Pending);
    });

    it("rejects the node at the second distinct reject, recording the closing validator, time and reason", async () => {
      const { sys, n1 } = await quorumTwo();
      const [v1, v2] = sys.validators;
      const capsId = await sys.registry.capsIdOf(n1.address);
      await reject(sys, v1, n1.address, "v1 no");
      const tx = reject(sys, v2, n1.address, "v2 no");
      await expect(tx)
        .to.emit(sys.challengeBoard, "ChallengeRejected")
        .withArgs(n1.address, 1n, v2.address, hashOf("v2 no"), 2n);
      await expect(tx).to.emit(sys.challengeBoard, "NodeRejected").withArgs(n1.address, 1n, capsId);
      const rejectedAt = BigInt(await networkHelpers.time.latest());
      const c = await sys.challengeBoard.challengeOf(n1.address);
      expect(c.status).to.equal(BigInt(ChallengeStatus.Rejected));
      expect(c.rejections).to.equal(2n);
      expect(c.rejectedAt).to.equal(rejectedAt);
      expect(c.rejectedBy).to.equal(v2.address);
      expect(c.rejectReason).to.equal(hashOf("v2 no"));
      expect(await sys.challengeBoard.isValidated(n1.address)).to.equal(false);
      await expect(approve(sys, sys.validators[2], n1.address, "late ok"))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardRoundClosed")
        .withArgs(n1.address, 1n, ChallengeStatus.Rejected);
    });

    it("does not let one validator reject twice: its second reject is refused and not counted", async () => {
      const { sys, n1 } = await quorumTwo();
      const [v1] = sys.validators;
      await reject(sys, v1, n1.address, "v1 no");
      await expect(reject(sys, v1, n1.address, "v1 no again"))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardAlreadyReported")
        .withArgs(n1.address, 1n, v1.address);
      const c = await sys.challengeBoard.challengeOf(n1.address);
      expect(c.rejections).to.equal(1n);
      expect(c.status).to.equal(BigInt(ChallengeStatus.Pending));
      expect(await sys.challengeBoard.reportOf(n1.address, 1, v1.address)).to.equal(hashOf("v1 no"));
    });

    it("counts approvals and rejections independently: a pending reject does not stop a validation", async () => {
      const { sys, n1 } = await quorumTwo();
      const [v1, v2, v3] = sys.validators;
      const capsId = await sys.registry.capsIdOf(n1.address);
      await reject(sys, v1, n1.address, "v1 no");
      await expect(approve(sys, v2, n1.address, "v2 ok"))
        .to.emit(sys.challengeBoard, "ChallengeApproved")
        .withArgs(n1.address, 1n, v2.address, hashOf("v2 ok"), 1n);
      await expect(approve(sys, v3, n1.address, "v3 ok"))
        .to.emit(sys.challengeBoard, "NodeValidated")
        .withArgs(n1.address, 1n, capsId);
      const c = await sys.challengeBoard.challengeOf(n1.address);
      expect([c.status, c.approvals, c.rejections]).to.deep.equal([BigInt(ChallengeStatus.Validated), 2n, 1n]);
      expect(await sys.challengeBoard.isValidated(n1.address)).to.equal(true);
    });

    it("counts approvals and rejections independently: a pending approval does not stop a rejection", async () => {
      const { sys, n1 } = await quorumTwo();
      const [v1, v2, v3] = sys.validators;
      await approve(sys, v1, n1.address, "v1 ok");
      await expect(reject(sys, v2, n1.address, "v2 no"))
        .to.emit(sys.challengeBoard, "ChallengeRejected")
        .withArgs(n1.address, 1n, v2.address, hashOf("v2 no"), 1n);
      await expect(reject(sys, v3, n1.address, "v3 no"))
        .to.emit(sys.challengeBoard, "ChallengeRejected")
        .withArgs(n1.address, 1n, v3.address, hashOf("v3 no"), 2n);
      const c = await sys.challengeBoard.challengeOf(n1.address);
      expect([c.status, c.approvals, c.rejections]).to.deep.equal([BigInt(ChallengeStatus.Rejected), 1n, 2n]);
      expect(c.rejectedBy).to.equal(v3.address);
    });

    it("counts rejections per round: a new round after a quorum rejection starts from zero", async () => {
      const { sys, p1, n1 } = await quorumTwo();
      const [v1, v2] = sys.validators;
      await reject(sys, v1, n1.address, "v1 no");
      await reject(sys, v2, n1.address, "v2 no");
      await networkHelpers.time.increase(RETRY_COOLDOWN);
      await sys.challengeBoard.connect(p1).requestNewRound(n1.address);
      expect((await sys.challengeBoard.challengeOf(n1.address)).rejections).to.equal(0n);
      const tx = reject(sys, v1, n1.address, "v1 no again");
      await expect(tx)
        .to.emit(sys.challengeBoard, "ChallengeRejected")
        .withArgs(n1.address, 2n, v1.address, hashOf("v1 no again"), 1n);
      await expect(tx).not.to.emit(sys.challengeBoard, "NodeRejected");
      expect((await sys.challengeBoard.challengeOf(n1.address)).status).to.equal(BigInt(ChallengeStatus.Pending));
    });

    it("counts rejections per declaration: a capability change starts the next round from zero", async () => {
      const { sys, p1, n1 } = await quorumTwo();
      const [v1, v2] = sys.validators;
      await reject(sys, v1, n1.address, "v1 no");
      await sys.registry.connect(p1).updateCapabilities(n1.address, H100_MORE_RAM);
      const newCapsId = await sys.registry.capsIdOf(n1.address);
      const tx = reject(sys, v2, n1.address, "v2 no");
      await expect(tx).to.emit(sys.challengeBoard, "ChallengeRoundStarted").withArgs(n1.address, 2n, newCapsId);
      await expect(tx)
        .to.emit(sys.challengeBoard, "ChallengeRejected")
        .withArgs(n1.address, 2n, v2.address, hashOf("v2 no"), 1n);
      await expect(tx).not.to.emit(sys.challengeBoard, "NodeRejected");
      const c = await sys.challengeBoard.challengeOf(n1.address);
      expect([c.round, c.status, c.rejections]).to.deep.equal([2n, BigInt(ChallengeStatus.Pending), 1n]);
    });
  });

  describe("capability changes", () => {
    it("cannot be used to swap the declaration under a challenge: a report naming the CPU declaration is refused after the swap to 8 GPUs", async () => {
      // Security review: n3 is challenged as a CPU node; its provider then declares 8 H100s. The
      // validators' reports about the CPU hardware they tested must not validate the 8-GPU declaration.
      const { sys, p2, n3 } = await networkHelpers.loadFixture(challengeBoardFixture);
      const [v1, v2, v3] = sys.validators;
      const cpuCapsId = await sys.registry.capsIdOf(n3.address);
      await approve(sys, v1, n3.address, "v1 cpu ok", cpuCapsId);

      await sys.registry.connect(p2).stake(n3.address, minStakeFor(H100_NODE) - minStakeFor(CPU_NODE));
      await sys.registry.connect(p2).updateCapabilities(n3.address, H100_NODE);
      const gpuCapsId = await sys.registry.capsIdOf(n3.address);
      expect(gpuCapsId).to.not.equal(cpuCapsId);
      expect((await sys.registry.getNode(n3.address)).capabilities.gpuCount).to.equal(8n);

      // v2 tested the CPU declaration and says so: refused, it would otherwise be the second approval.
      await expect(approve(sys, v2, n3.address, "v2 cpu ok", cpuCapsId))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardStaleDeclaration")
        .withArgs(n3.address, cpuCapsId, gpuCapsId);
      // v1 cannot re-send its CPU result either.
      await expect(approve(sys, v1, n3.address, "v1 cpu ok", cpuCapsId))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardStaleDeclaration")
        .withArgs(n3.address, cpuCapsId, gpuCapsId);
      expect(await sys.challengeBoard.isValidated(n3.address)).to.equal(false);
      const c = await sys.challengeBoard.challengeOf(n3.address);
      expect([c.capsId, c.round, c.status, c.approvals]).to.deep.equal([
        cpuCapsId,
        1n,
        BigInt(ChallengeStatus.Pending),
        1n,
      ]);

      // Only challenges of the 8-GPU declaration count, in a new round counted from zero.
      await expect(approve(sys, v3, n3.address, "v3 gpu ok", gpuCapsId))
        .to.emit(sys.challengeBoard, "ChallengeApproved")
        .withArgs(n3.address, 2n, v3.address, hashOf("v3 gpu ok"), 1n);
      expect(await sys.challengeBoard.isValidated(n3.address)).to.equal(false);
    });

    it("refuse a first report naming the declaration in force before the swap (no round is opened)", async () => {
      const { sys, p2, n3 } = await networkHelpers.loadFixture(challengeBoardFixture);
      const cpuCapsId = await sys.registry.capsIdOf(n3.address);
      await sys.registry.connect(p2).stake(n3.address, minStakeFor(H100_NODE) - minStakeFor(CPU_NODE));
      await sys.registry.connect(p2).updateCapabilities(n3.address, H100_NODE);
      const gpuCapsId = await sys.registry.capsIdOf(n3.address);
      await expect(approve(sys, sys.validators[0], n3.address, "cpu ok", cpuCapsId))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardStaleDeclaration")
        .withArgs(n3.address, cpuCapsId, gpuCapsId);
      expect((await sys.challengeBoard.challengeOf(n3.address)).round).to.equal(0n);
    });

    it("void the validation when the provider updates the node's capabilities", async () => {
      const { sys, p1, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      const oldCapsId = await sys.registry.capsIdOf(n1.address);
      await validate(sys, n1.address);
      expect(await sys.challengeBoard.isValidated(n1.address)).to.equal(true);

      await sys.registry.connect(p1).updateCapabilities(n1.address, H100_MORE_RAM);
      expect(await sys.registry.capsIdOf(n1.address)).to.not.equal(oldCapsId);
      expect(await sys.challengeBoard.isValidated(n1.address)).to.equal(false);
      // The stored state still describes the old declaration until the next report.
      const c = await sys.challengeBoard.challengeOf(n1.address);
      expect(c.capsId).to.equal(oldCapsId);
      expect(c.status).to.equal(BigInt(ChallengeStatus.Validated));
    });

    it("start round 2 with the new capsId at the next report, with approvals counted from zero", async () => {
      const { sys, p1, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      await validate(sys, n1.address);
      await sys.registry.connect(p1).updateCapabilities(n1.address, H100_MORE_RAM);
      const newCapsId = await sys.registry.capsIdOf(n1.address);

      const tx = approve(sys, sys.validators[2], n1.address, "v3 ok");
      await expect(tx).to.emit(sys.challengeBoard, "ChallengeRoundStarted").withArgs(n1.address, 2n, newCapsId);
      await expect(tx)
        .to.emit(sys.challengeBoard, "ChallengeApproved")
        .withArgs(n1.address, 2n, sys.validators[2].address, hashOf("v3 ok"), 1n);
      const c = await sys.challengeBoard.challengeOf(n1.address);
      expect(c.capsId).to.equal(newCapsId);
      expect(c.round).to.equal(2n);
      expect(c.status).to.equal(BigInt(ChallengeStatus.Pending));
      expect(c.approvals).to.equal(1n);
      expect(await sys.challengeBoard.isValidated(n1.address)).to.equal(false);
    });

    it("let the validators of round 1 report again in round 2 and validate the new declaration", async () => {
      const { sys, p1, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      const [v1, v2] = sys.validators;
      await validate(sys, n1.address);
      await sys.registry.connect(p1).updateCapabilities(n1.address, H100_MORE_RAM);
      const newCapsId = await sys.registry.capsIdOf(n1.address);

      await approve(sys, v1, n1.address, "v1 round 2");
      await expect(approve(sys, v2, n1.address, "v2 round 2"))
        .to.emit(sys.challengeBoard, "NodeValidated")
        .withArgs(n1.address, 2n, newCapsId);
      expect(await sys.challengeBoard.isValidated(n1.address)).to.equal(true);
      // Round 1's reports are kept.
      expect(await sys.challengeBoard.reportOf(n1.address, 1, v1.address)).to.equal(hashOf("v1 ok"));
      expect(await sys.challengeBoard.reportOf(n1.address, 2, v1.address)).to.equal(hashOf("v1 round 2"));
    });

    it("do not let a rejected node skip the retry cooldown by changing its capabilities", async () => {
      const { sys, p1, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      const rejectedAt = await rejectNow(sys, n1.address);
      await sys.registry.connect(p1).updateCapabilities(n1.address, H100_MORE_RAM);
      const newCapsId = await sys.registry.capsIdOf(n1.address);
      const availableAt = rejectedAt + RETRY_COOLDOWN;

      await expect(approve(sys, sys.validators[1], n1.address, "too early"))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardCooldownActive")
        .withArgs(n1.address, availableAt);

      // Once the cooldown has passed, the next report opens round 2 for the new declaration, and the
      // rejecting validator may report again: it is a new round.
      await networkHelpers.time.setNextBlockTimestamp(availableAt);
      await expect(approve(sys, sys.validators[0], n1.address, "ok now"))
        .to.emit(sys.challengeBoard, "ChallengeRoundStarted")
        .withArgs(n1.address, 2n, newCapsId);
      const c = await sys.challengeBoard.challengeOf(n1.address);
      expect(c.status).to.equal(BigInt(ChallengeStatus.Pending));
      expect(c.rejectedAt).to.equal(0n);
      expect(c.rejectedBy).to.equal(ethers.ZeroAddress);
      expect(c.rejectReason).to.equal(ZERO_HASH);
    });

    it("void the validation when the node deregisters, and refuse reports until it registers again", async () => {
      const { sys, p1, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      await validate(sys, n1.address);
      await sys.registry.connect(p1).deregisterNode(n1.address);
      expect(await sys.challengeBoard.isValidated(n1.address)).to.equal(false);
      await expect(approve(sys, sys.validators[2], n1.address, "ok"))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardNodeNotRegistered")
        .withArgs(n1.address);
    });

    it("leave a node that registers again unvalidated, even with the same capabilities", async () => {
      const { sys, p1, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      const oldCapsId = await sys.registry.capsIdOf(n1.address);
      await validate(sys, n1.address);
      await sys.registry.connect(p1).deregisterNode(n1.address);
      await registerNode(connection, sys, p1, n1, H100_NODE);
      const newCapsId = await sys.registry.capsIdOf(n1.address);
      expect(newCapsId).to.not.equal(oldCapsId);
      expect(await sys.challengeBoard.isValidated(n1.address)).to.equal(false);

      // Round numbers are never reused: the next report starts round 2.
      await expect(approve(sys, sys.validators[0], n1.address, "v1 again"))
        .to.emit(sys.challengeBoard, "ChallengeRoundStarted")
        .withArgs(n1.address, 2n, newCapsId);
      await expect(approve(sys, sys.validators[1], n1.address, "v2 again"))
        .to.emit(sys.challengeBoard, "NodeValidated")
        .withArgs(n1.address, 2n, newCapsId);
      expect(await sys.challengeBoard.isValidated(n1.address)).to.equal(true);
    });

    it("do not touch other nodes' validation", async () => {
      const { sys, p1, n1, n2 } = await networkHelpers.loadFixture(challengeBoardFixture);
      await validate(sys, n1.address);
      await validate(sys, n2.address);
      await sys.registry.connect(p1).updateCapabilities(n1.address, H100_MORE_RAM);
      expect(await sys.challengeBoard.isValidated(n1.address)).to.equal(false);
      expect(await sys.challengeBoard.isValidated(n2.address)).to.equal(true);
    });
  });

  describe("requestNewRound", () => {
    it("refuses callers other than the node and its provider", async () => {
      const { sys, p2, n1, n2 } = await networkHelpers.loadFixture(challengeBoardFixture);
      await rejectNow(sys, n1.address);
      await networkHelpers.time.increase(RETRY_COOLDOWN);
      // A stranger, another provider, a sibling node of the same provider, a validator, the admin.
      for (const caller of [sys.stranger, p2, n2, sys.validators[0], sys.admin]) {
        await expect(sys.challengeBoard.connect(caller).requestNewRound(n1.address))
          .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardNotNodeOrProvider")
          .withArgs(n1.address, caller.address);
      }
    });

    it("refuses a node that is not registered", async () => {
      const { sys, p1, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      const unregistered = sys.nodes[5];
      await expect(sys.challengeBoard.connect(unregistered).requestNewRound(unregistered.address))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardNodeNotRegistered")
        .withArgs(unregistered.address);
      // A rejected node that then deregisters cannot retry either (its former provider included).
      await rejectNow(sys, n1.address);
      await sys.registry.connect(p1).deregisterNode(n1.address);
      await networkHelpers.time.increase(RETRY_COOLDOWN);
      await expect(sys.challengeBoard.connect(p1).requestNewRound(n1.address))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardNodeNotRegistered")
        .withArgs(n1.address);
    });

    it("refuses a node that has never been challenged (status None)", async () => {
      const { sys, p1, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      await expect(sys.challengeBoard.connect(p1).requestNewRound(n1.address))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardNotRejected")
        .withArgs(n1.address, ChallengeStatus.None);
    });

    it("refuses a node whose round is pending", async () => {
      const { sys, p1, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      await approve(sys, sys.validators[0], n1.address, "ok");
      await expect(sys.challengeBoard.connect(p1).requestNewRound(n1.address))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardNotRejected")
        .withArgs(n1.address, ChallengeStatus.Pending);
    });

    it("refuses a validated node", async () => {
      const { sys, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      await validate(sys, n1.address);
      await networkHelpers.time.increase(RETRY_COOLDOWN);
      await expect(sys.challengeBoard.connect(n1).requestNewRound(n1.address))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardNotRejected")
        .withArgs(n1.address, ChallengeStatus.Validated);
    });

    it("refuses a rejection of an outdated declaration (rejected, then capabilities changed) as None", async () => {
      const { sys, p1, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      await rejectNow(sys, n1.address);
      await sys.registry.connect(p1).updateCapabilities(n1.address, H100_MORE_RAM);
      await networkHelpers.time.increase(RETRY_COOLDOWN);
      await expect(sys.challengeBoard.connect(p1).requestNewRound(n1.address))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardNotRejected")
        .withArgs(n1.address, ChallengeStatus.None);
    });

    it("refuses a rejected node that registered again (new declaration) as None", async () => {
      const { sys, p1, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      await rejectNow(sys, n1.address);
      await sys.registry.connect(p1).deregisterNode(n1.address);
      await registerNode(connection, sys, p1, n1, H100_NODE);
      await networkHelpers.time.increase(RETRY_COOLDOWN);
      await expect(sys.challengeBoard.connect(p1).requestNewRound(n1.address))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardNotRejected")
        .withArgs(n1.address, ChallengeStatus.None);
    });

    it("refuses one second before rejectedAt + retryCooldown and succeeds exactly at it", async () => {
      const { sys, p1, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      const rejectedAt = await rejectNow(sys, n1.address);
      const availableAt = rejectedAt + RETRY_COOLDOWN;

      // A fixed gas limit skips gas estimation, so the transaction is mined and the check runs in a
      // block stamped exactly availableAt - 1.
      await networkHelpers.time.setNextBlockTimestamp(availableAt - 1n);
      await expect(sys.challengeBoard.connect(p1).requestNewRound(n1.address, { gasLimit: 500_000 }))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardCooldownActive")
        .withArgs(n1.address, availableAt);
      expect(BigInt(await networkHelpers.time.latest())).to.equal(availableAt - 1n);

      await networkHelpers.time.setNextBlockTimestamp(availableAt);
      await expect(sys.challengeBoard.connect(p1).requestNewRound(n1.address)).to.emit(
        sys.challengeBoard,
        "ChallengeRoundStarted",
      );
      expect(BigInt(await networkHelpers.time.latest())).to.equal(availableAt);
    });

    it("refuses right after the rejection", async () => {
      const { sys, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      const rejectedAt = await rejectNow(sys, n1.address);
      await expect(sys.challengeBoard.connect(n1).requestNewRound(n1.address))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardCooldownActive")
        .withArgs(n1.address, rejectedAt + RETRY_COOLDOWN);
    });

    it("lets the provider start round + 1 for the same declaration", async () => {
      const { sys, p1, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      const capsId = await sys.registry.capsIdOf(n1.address);
      await rejectNow(sys, n1.address);
      await networkHelpers.time.increase(RETRY_COOLDOWN);
      await expect(sys.challengeBoard.connect(p1).requestNewRound(n1.address))
        .to.emit(sys.challengeBoard, "ChallengeRoundStarted")
        .withArgs(n1.address, 2n, capsId);
    });

    it("lets the node itself start round + 1", async () => {
      const { sys, n3 } = await networkHelpers.loadFixture(challengeBoardFixture);
      const capsId = await sys.registry.capsIdOf(n3.address);
      await rejectNow(sys, n3.address);
      await networkHelpers.time.increase(RETRY_COOLDOWN);
      await expect(sys.challengeBoard.connect(n3).requestNewRound(n3.address))
        .to.emit(sys.challengeBoard, "ChallengeRoundStarted")
        .withArgs(n3.address, 2n, capsId);
    });

    it("clears the rejection and the approvals, and lets every validator report again", async () => {
      const { sys, p1, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      const [v1, v2] = sys.validators;
      const capsId = await sys.registry.capsIdOf(n1.address);
      await approve(sys, v2, n1.address, "v2 ok");
      await rejectNow(sys, n1.address);
      await networkHelpers.time.increase(RETRY_COOLDOWN);
      await sys.challengeBoard.connect(p1).requestNewRound(n1.address);

      const c = await sys.challengeBoard.challengeOf(n1.address);
      expect(c.capsId).to.equal(capsId);
      expect(c.round).to.equal(2n);
      expect(c.status).to.equal(BigInt(ChallengeStatus.Pending));
      expect(c.approvals).to.equal(0n);
      expect(c.rejections).to.equal(0n);
      expect(c.rejectedAt).to.equal(0n);
      expect(c.rejectedBy).to.equal(ethers.ZeroAddress);
      expect(c.rejectReason).to.equal(ZERO_HASH);
      expect(await sys.challengeBoard.isValidated(n1.address)).to.equal(false);

      // The rejecting validator (v1) and the round-1 approver (v2) both report in round 2.
      await expect(approve(sys, v1, n1.address, "v1 round 2"))
        .to.emit(sys.challengeBoard, "ChallengeApproved")
        .withArgs(n1.address, 2n, v1.address, hashOf("v1 round 2"), 1n);
      await expect(approve(sys, v2, n1.address, "v2 round 2"))
        .to.emit(sys.challengeBoard, "NodeValidated")
        .withArgs(n1.address, 2n, capsId);
      expect(await sys.challengeBoard.isValidated(n1.address)).to.equal(true);
    });

    it("refuses a second request once the new round is pending", async () => {
      const { sys, p1, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      await rejectNow(sys, n1.address);
      await networkHelpers.time.increase(RETRY_COOLDOWN);
      await sys.challengeBoard.connect(p1).requestNewRound(n1.address);
      await expect(sys.challengeBoard.connect(p1).requestNewRound(n1.address))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardNotRejected")
        .withArgs(n1.address, ChallengeStatus.Pending);
    });

    it("applies the cooldown in force when it is called, not the one at the rejection", async () => {
      const { sys, p1, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      const rejectedAt = await rejectNow(sys, n1.address);
      await sys.challengeBoard.connect(sys.admin).setRetryCooldown(2n * RETRY_COOLDOWN);
      await networkHelpers.time.setNextBlockTimestamp(rejectedAt + RETRY_COOLDOWN);
      await expect(sys.challengeBoard.connect(p1).requestNewRound(n1.address))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardCooldownActive")
        .withArgs(n1.address, rejectedAt + 2n * RETRY_COOLDOWN);
      await sys.challengeBoard.connect(sys.admin).setRetryCooldown(0);
      await expect(sys.challengeBoard.connect(p1).requestNewRound(n1.address)).to.emit(
        sys.challengeBoard,
        "ChallengeRoundStarted",
      );
    });
  });

  describe("revokeValidation", () => {
    it("turns a validated round into a rejection by the admin, recording when and why, and emits ValidationRevoked", async () => {
      const { sys, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      const capsId = await sys.registry.capsIdOf(n1.address);
      await validate(sys, n1.address);
      const tx = sys.challengeBoard.connect(sys.admin).revokeValidation(n1.address, hashOf("proven fraud"));
      await expect(tx)
        .to.emit(sys.challengeBoard, "ValidationRevoked")
        .withArgs(n1.address, 1n, sys.admin.address, hashOf("proven fraud"));
      await expect(tx).not.to.emit(sys.challengeBoard, "ChallengeRoundStarted");
      const revokedAt = BigInt(await networkHelpers.time.latest());
      expect(await sys.challengeBoard.isValidated(n1.address)).to.equal(false);
      const c = await sys.challengeBoard.challengeOf(n1.address);
      expect(c.capsId).to.equal(capsId);
      expect(c.round).to.equal(1n);
      expect(c.status).to.equal(BigInt(ChallengeStatus.Rejected));
      expect(c.approvals).to.equal(REQUIRED_APPROVALS);
      expect(c.rejections).to.equal(0n);
      expect(c.rejectedAt).to.equal(revokedAt);
      expect(c.rejectedBy).to.equal(sys.admin.address);
      expect(c.rejectReason).to.equal(hashOf("proven fraud"));
      // The round is closed to reports like any rejected round.
      await expect(approve(sys, sys.validators[2], n1.address, "still ok"))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardRoundClosed")
        .withArgs(n1.address, 1n, ChallengeStatus.Rejected);
    });

    it("refuses accounts without DEFAULT_ADMIN_ROLE: validators, the provider, the node, a stranger", async () => {
      const { sys, p1, n1, DEFAULT_ADMIN_ROLE } = await networkHelpers.loadFixture(challengeBoardFixture);
      await validate(sys, n1.address);
      for (const caller of [sys.validators[0], p1, n1, sys.stranger]) {
        await expect(sys.challengeBoard.connect(caller).revokeValidation(n1.address, hashOf("x")))
          .to.be.revertedWithCustomError(sys.challengeBoard, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, DEFAULT_ADMIN_ROLE);
      }
      expect(await sys.challengeBoard.isValidated(n1.address)).to.equal(true);
    });

    it("refuses a node that is not validated: never challenged, pending, rejected, already revoked, unknown (NotValidated)", async () => {
      const { sys, n1, n2, n3 } = await networkHelpers.loadFixture(challengeBoardFixture);
      const board = sys.challengeBoard.connect(sys.admin);
      await approve(sys, sys.validators[0], n2.address, "pending");
      await rejectNow(sys, n3.address);
      const nodes = [n1.address, n2.address, n3.address, sys.stranger.address];
      for (const node of nodes) {
        await expect(board.revokeValidation(node, hashOf("x")))
          .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardNotValidated")
          .withArgs(node);
      }
      await validate(sys, n1.address);
      await board.revokeValidation(n1.address, hashOf("first"));
      await expect(board.revokeValidation(n1.address, hashOf("again")))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardNotValidated")
        .withArgs(n1.address);
      expect((await sys.challengeBoard.challengeOf(n1.address)).rejectReason).to.equal(hashOf("first"));
    });

    it("refuses a validation of an outdated declaration, after a capability change or a re-registration (NotValidated)", async () => {
      const { sys, p1, n1, n2 } = await networkHelpers.loadFixture(challengeBoardFixture);
      const board = sys.challengeBoard.connect(sys.admin);
      await validate(sys, n1.address);
      await sys.registry.connect(p1).updateCapabilities(n1.address, H100_MORE_RAM);
      await expect(board.revokeValidation(n1.address, hashOf("x")))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardNotValidated")
        .withArgs(n1.address);
      await validate(sys, n2.address);
      await sys.registry.connect(p1).deregisterNode(n2.address);
      await expect(board.revokeValidation(n2.address, hashOf("x")))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardNotValidated")
        .withArgs(n2.address);
      await registerNode(connection, sys, p1, n2, H100_NODE);
      await expect(board.revokeValidation(n2.address, hashOf("x")))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardNotValidated")
        .withArgs(n2.address);
      // The stored state still says Validated (for the old declarations): it is left untouched.
      for (const node of [n1.address, n2.address]) {
        expect((await sys.challengeBoard.challengeOf(node)).status).to.equal(BigInt(ChallengeStatus.Validated));
      }
    });

    it("lets the node ask for a new round once the retry cooldown after the revocation has passed", async () => {
      const { sys, p1, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      const capsId = await sys.registry.capsIdOf(n1.address);
      await validate(sys, n1.address);
      await sys.challengeBoard.connect(sys.admin).revokeValidation(n1.address, hashOf("fraud"));
      const revokedAt = BigInt(await networkHelpers.time.latest());
      await expect(sys.challengeBoard.connect(p1).requestNewRound(n1.address))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardCooldownActive")
        .withArgs(n1.address, revokedAt + RETRY_COOLDOWN);

      await networkHelpers.time.setNextBlockTimestamp(revokedAt + RETRY_COOLDOWN);
      await expect(sys.challengeBoard.connect(n1).requestNewRound(n1.address))
        .to.emit(sys.challengeBoard, "ChallengeRoundStarted")
        .withArgs(n1.address, 2n, capsId);
      const c = await sys.challengeBoard.challengeOf(n1.address);
      expect([c.round, c.status, c.approvals, c.rejections]).to.deep.equal([2n, BigInt(ChallengeStatus.Pending), 0n, 0n]);
      expect([c.rejectedAt, c.rejectedBy, c.rejectReason]).to.deep.equal([0n, ethers.ZeroAddress, ZERO_HASH]);
      // The validators of round 1 may validate it again.
      await approve(sys, sys.validators[0], n1.address, "v1 round 2");
      await expect(approve(sys, sys.validators[1], n1.address, "v2 round 2"))
        .to.emit(sys.challengeBoard, "NodeValidated")
        .withArgs(n1.address, 2n, capsId);
    });

    it("does not let the provider skip the cooldown by changing the node's capabilities", async () => {
      const { sys, p1, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      await validate(sys, n1.address);
      await sys.challengeBoard.connect(sys.admin).revokeValidation(n1.address, hashOf("fraud"));
      const revokedAt = BigInt(await networkHelpers.time.latest());
      await sys.registry.connect(p1).updateCapabilities(n1.address, H100_MORE_RAM);
      await expect(approve(sys, sys.validators[2], n1.address, "new caps ok"))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardCooldownActive")
        .withArgs(n1.address, revokedAt + RETRY_COOLDOWN);
    });
  });

  describe("setRequiredApprovals", () => {
    it("refuses zero and more than MAX_QUORUM (InvalidQuorum), accepts exactly MAX_QUORUM", async () => {
      const { sys } = await networkHelpers.loadFixture(challengeBoardFixture);
      for (const quorum of [0n, MAX_QUORUM + 1n]) {
        await expect(sys.challengeBoard.connect(sys.admin).setRequiredApprovals(quorum))
          .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardInvalidQuorum")
          .withArgs(quorum, MAX_QUORUM);
      }
      expect(await sys.challengeBoard.requiredApprovals()).to.equal(REQUIRED_APPROVALS);
      await expect(sys.challengeBoard.connect(sys.admin).setRequiredApprovals(MAX_QUORUM))
        .to.emit(sys.challengeBoard, "RequiredApprovalsUpdated")
        .withArgs(MAX_QUORUM);
      expect(await sys.challengeBoard.requiredApprovals()).to.equal(MAX_QUORUM);
    });

    it("refuses accounts without DEFAULT_ADMIN_ROLE, validators included", async () => {
      const { sys, DEFAULT_ADMIN_ROLE } = await networkHelpers.loadFixture(challengeBoardFixture);
      for (const caller of [sys.stranger, sys.validators[0]]) {
        await expect(sys.challengeBoard.connect(caller).setRequiredApprovals(1))
          .to.be.revertedWithCustomError(sys.challengeBoard, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, DEFAULT_ADMIN_ROLE);
      }
    });

    it("stores the new value and emits RequiredApprovalsUpdated", async () => {
      const { sys } = await networkHelpers.loadFixture(challengeBoardFixture);
      await expect(sys.challengeBoard.connect(sys.admin).setRequiredApprovals(3))
        .to.emit(sys.challengeBoard, "RequiredApprovalsUpdated")
        .withArgs(3);
      expect(await sys.challengeBoard.requiredApprovals()).to.equal(3n);
    });

    it("lets a single approval validate once lowered to one", async () => {
      const { sys, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      await sys.challengeBoard.connect(sys.admin).setRequiredApprovals(1);
      await expect(approve(sys, sys.validators[0], n1.address, "alone"))
        .to.emit(sys.challengeBoard, "NodeValidated")
        .withArgs(n1.address, 1n, await sys.registry.capsIdOf(n1.address));
      expect(await sys.challengeBoard.isValidated(n1.address)).to.equal(true);
    });

    it("validates a pending round that already meets the lowered threshold only at its next approval", async () => {
      const { sys, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      const [v1, v2, v3] = sys.validators;
      await sys.challengeBoard.connect(sys.admin).setRequiredApprovals(3);
      await approve(sys, v1, n1.address, "v1 ok");
      await approve(sys, v2, n1.address, "v2 ok");
      await sys.challengeBoard.connect(sys.admin).setRequiredApprovals(2);
      // Two approvals, two required, but the round is not re-evaluated until an approval arrives.
      expect(await sys.challengeBoard.isValidated(n1.address)).to.equal(false);
      expect((await sys.challengeBoard.challengeOf(n1.address)).status).to.equal(BigInt(ChallengeStatus.Pending));
      await expect(approve(sys, v3, n1.address, "v3 ok"))
        .to.emit(sys.challengeBoard, "NodeValidated")
        .withArgs(n1.address, 1n, await sys.registry.capsIdOf(n1.address));
      expect((await sys.challengeBoard.challengeOf(n1.address)).approvals).to.equal(3n);
    });

    it("does not revoke validations made under a lower threshold when raised", async () => {
      const { sys, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      await validate(sys, n1.address);
      await sys.challengeBoard.connect(sys.admin).setRequiredApprovals(3);
      expect(await sys.challengeBoard.isValidated(n1.address)).to.equal(true);
    });
  });

  describe("setRequiredRejections", () => {
    it("refuses zero and more than MAX_QUORUM (InvalidQuorum), accepts exactly MAX_QUORUM", async () => {
      const { sys } = await networkHelpers.loadFixture(challengeBoardFixture);
      for (const quorum of [0n, MAX_QUORUM + 1n]) {
        await expect(sys.challengeBoard.connect(sys.admin).setRequiredRejections(quorum))
          .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardInvalidQuorum")
          .withArgs(quorum, MAX_QUORUM);
      }
      expect(await sys.challengeBoard.requiredRejections()).to.equal(REQUIRED_REJECTIONS);
      await expect(sys.challengeBoard.connect(sys.admin).setRequiredRejections(MAX_QUORUM))
        .to.emit(sys.challengeBoard, "RequiredRejectionsUpdated")
        .withArgs(MAX_QUORUM);
      expect(await sys.challengeBoard.requiredRejections()).to.equal(MAX_QUORUM);
    });

    it("refuses accounts without DEFAULT_ADMIN_ROLE, validators included", async () => {
      const { sys, DEFAULT_ADMIN_ROLE } = await networkHelpers.loadFixture(challengeBoardFixture);
      for (const caller of [sys.stranger, sys.validators[0]]) {
        await expect(sys.challengeBoard.connect(caller).setRequiredRejections(2))
          .to.be.revertedWithCustomError(sys.challengeBoard, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, DEFAULT_ADMIN_ROLE);
      }
      expect(await sys.challengeBoard.requiredRejections()).to.equal(REQUIRED_REJECTIONS);
    });

    it("stores the new value, emits RequiredRejectionsUpdated and leaves requiredApprovals alone", async () => {
      const { sys } = await networkHelpers.loadFixture(challengeBoardFixture);
      await expect(sys.challengeBoard.connect(sys.admin).setRequiredRejections(3))
        .to.emit(sys.challengeBoard, "RequiredRejectionsUpdated")
        .withArgs(3);
      expect(await sys.challengeBoard.requiredRejections()).to.equal(3n);
      expect(await sys.challengeBoard.requiredApprovals()).to.equal(REQUIRED_APPROVALS);
    });

    it("rejects a pending round that already meets the lowered quorum only at its next reject", async () => {
      const { sys, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      const [v1, v2, v3] = sys.validators;
      const capsId = await sys.registry.capsIdOf(n1.address);
      await sys.challengeBoard.connect(sys.admin).setRequiredRejections(3);
      await reject(sys, v1, n1.address, "v1 no");
      await reject(sys, v2, n1.address, "v2 no");
      await sys.challengeBoard.connect(sys.admin).setRequiredRejections(2);
      expect((await sys.challengeBoard.challengeOf(n1.address)).status).to.equal(BigInt(ChallengeStatus.Pending));
      const tx = reject(sys, v3, n1.address, "v3 no");
      await expect(tx)
        .to.emit(sys.challengeBoard, "ChallengeRejected")
        .withArgs(n1.address, 1n, v3.address, hashOf("v3 no"), 3n);
      await expect(tx).to.emit(sys.challengeBoard, "NodeRejected").withArgs(n1.address, 1n, capsId);
      expect((await sys.challengeBoard.challengeOf(n1.address)).rejectedBy).to.equal(v3.address);
    });
  });

  describe("setRetryCooldown", () => {
    it("refuses more than MAX_RETRY_COOLDOWN (30 days) and accepts exactly it", async () => {
      const { sys } = await networkHelpers.loadFixture(challengeBoardFixture);
      await expect(sys.challengeBoard.connect(sys.admin).setRetryCooldown(MAX_RETRY_COOLDOWN + 1n))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardInvalidRetryCooldown")
        .withArgs(MAX_RETRY_COOLDOWN + 1n, MAX_RETRY_COOLDOWN);
      await expect(sys.challengeBoard.connect(sys.admin).setRetryCooldown(2n ** 64n - 1n))
        .to.be.revertedWithCustomError(sys.challengeBoard, "ChallengeBoardInvalidRetryCooldown")
        .withArgs(2n ** 64n - 1n, MAX_RETRY_COOLDOWN);
      expect(await sys.challengeBoard.retryCooldown()).to.equal(RETRY_COOLDOWN);
      await expect(sys.challengeBoard.connect(sys.admin).setRetryCooldown(MAX_RETRY_COOLDOWN))
        .to.emit(sys.challengeBoard, "RetryCooldownUpdated")
        .withArgs(MAX_RETRY_COOLDOWN);
      expect(await sys.challengeBoard.retryCooldown()).to.equal(MAX_RETRY_COOLDOWN);
    });

    it("stores the new value and emits RetryCooldownUpdated", async () => {
      const { sys } = await networkHelpers.loadFixture(challengeBoardFixture);
      await expect(sys.challengeBoard.connect(sys.admin).setRetryCooldown(86_400))
        .to.emit(sys.challengeBoard, "RetryCooldownUpdated")
        .withArgs(86_400);
      expect(await sys.challengeBoard.retryCooldown()).to.equal(86_400n);
    });

    it("accepts zero (no cooldown)", async () => {
      const { sys, p1, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      await sys.challengeBoard.connect(sys.admin).setRetryCooldown(0);
      await rejectNow(sys, n1.address);
      await expect(sys.challengeBoard.connect(p1).requestNewRound(n1.address)).to.emit(
        sys.challengeBoard,
        "ChallengeRoundStarted",
      );
    });

    it("refuses accounts without DEFAULT_ADMIN_ROLE", async () => {
      const { sys, DEFAULT_ADMIN_ROLE } = await networkHelpers.loadFixture(challengeBoardFixture);
      for (const caller of [sys.stranger, sys.validators[0]]) {
        await expect(sys.challengeBoard.connect(caller).setRetryCooldown(0))
          .to.be.revertedWithCustomError(sys.challengeBoard, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, DEFAULT_ADMIN_ROLE);
      }
      expect(await sys.challengeBoard.retryCooldown()).to.equal(RETRY_COOLDOWN);
    });
  });

  describe("roles", () => {
    it("lets only the admin grant VALIDATOR_ROLE, and a new validator counts", async () => {
      const { sys, n1, VALIDATOR_ROLE, DEFAULT_ADMIN_ROLE } = await networkHelpers.loadFixture(challengeBoardFixture);
      const newcomer = sys.master;
      await expect(sys.challengeBoard.connect(sys.validators[0]).grantRole(VALIDATOR_ROLE, newcomer.address))
        .to.be.revertedWithCustomError(sys.challengeBoard, "AccessControlUnauthorizedAccount")
        .withArgs(sys.validators[0].address, DEFAULT_ADMIN_ROLE);
      await sys.challengeBoard.connect(sys.admin).grantRole(VALIDATOR_ROLE, newcomer.address);
      await approve(sys, sys.validators[0], n1.address, "v1");
      await expect(approve(sys, newcomer, n1.address, "newcomer")).to.emit(sys.challengeBoard, "NodeValidated");
    });
  });

  describe("constructor", () => {
    it("reverts with required approvals or rejections of 0 or above MAX_QUORUM (InvalidQuorum)", async () => {
      const { sys } = await networkHelpers.loadFixture(challengeBoardFixture);
      const factory = await ethers.getContractFactory("ChallengeBoard");
      const registry = await sys.registry.getAddress();
      for (const quorum of [0n, MAX_QUORUM + 1n]) {
        await expect(factory.deploy(sys.admin.address, registry, quorum, 1, RETRY_COOLDOWN))
          .to.be.revertedWithCustomError(factory, "ChallengeBoardInvalidQuorum")
          .withArgs(quorum, MAX_QUORUM);
        await expect(factory.deploy(sys.admin.address, registry, 1, quorum, RETRY_COOLDOWN))
          .to.be.revertedWithCustomError(factory, "ChallengeBoardInvalidQuorum")
          .withArgs(quorum, MAX_QUORUM);
      }
      const board = await factory.deploy(sys.admin.address, registry, MAX_QUORUM, MAX_QUORUM, RETRY_COOLDOWN);
      expect(await board.requiredApprovals()).to.equal(MAX_QUORUM);
      expect(await board.requiredRejections()).to.equal(MAX_QUORUM);
    });

    it("reverts with a retry cooldown above MAX_RETRY_COOLDOWN (InvalidRetryCooldown), accepts exactly it", async () => {
      const { sys } = await networkHelpers.loadFixture(challengeBoardFixture);
      const factory = await ethers.getContractFactory("ChallengeBoard");
      const registry = await sys.registry.getAddress();
      await expect(factory.deploy(sys.admin.address, registry, 1, 1, MAX_RETRY_COOLDOWN + 1n))
        .to.be.revertedWithCustomError(factory, "ChallengeBoardInvalidRetryCooldown")
        .withArgs(MAX_RETRY_COOLDOWN + 1n, MAX_RETRY_COOLDOWN);
      const board = await factory.deploy(sys.admin.address, registry, 1, 1, MAX_RETRY_COOLDOWN);
      expect(await board.retryCooldown()).to.equal(MAX_RETRY_COOLDOWN);
    });

    it("refuses at deployment a zero admin or a zero registry", async () => {
      const { sys } = await networkHelpers.loadFixture(challengeBoardFixture);
      const factory = await ethers.getContractFactory("ChallengeBoard");
      const registry = await sys.registry.getAddress();
      await expect(factory.deploy(ethers.ZeroAddress, registry, 1, 1, RETRY_COOLDOWN)).to.be.revertedWithCustomError(
        factory,
        "ChallengeBoardZeroAddress",
      );
      await expect(
        factory.deploy(sys.admin.address, ethers.ZeroAddress, 1, 1, RETRY_COOLDOWN),
      ).to.be.revertedWithCustomError(factory, "ChallengeBoardZeroAddress");
    });

    it("sets the admin, the registry and the parameters, with their events", async () => {
      const { sys, DEFAULT_ADMIN_ROLE, VALIDATOR_ROLE } = await networkHelpers.loadFixture(challengeBoardFixture);
      const factory = await ethers.getContractFactory("ChallengeBoard");
      const board = await factory.deploy(sys.stranger.address, await sys.registry.getAddress(), 5, 4, 123);
      await board.waitForDeployment();
      const deployTx = board.deploymentTransaction()!;
      await expect(deployTx).to.emit(board, "RequiredApprovalsUpdated").withArgs(5);
      await expect(deployTx).to.emit(board, "RequiredRejectionsUpdated").withArgs(4);
      await expect(deployTx).to.emit(board, "RetryCooldownUpdated").withArgs(123);
      expect(await board.registry()).to.equal(await sys.registry.getAddress());
      expect(await board.requiredApprovals()).to.equal(5n);
      expect(await board.requiredRejections()).to.equal(4n);
      expect(await board.retryCooldown()).to.equal(123n);
      expect(await board.hasRole(DEFAULT_ADMIN_ROLE, sys.stranger.address)).to.equal(true);
      expect(await board.hasRole(DEFAULT_ADMIN_ROLE, sys.admin.address)).to.equal(false);
      expect(await board.hasRole(VALIDATOR_ROLE, sys.stranger.address)).to.equal(false);
    });
  });

  describe("views", () => {
    it("challengeOf returns an empty state for a node never challenged", async () => {
      const { sys, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      for (const node of [n1.address, sys.stranger.address]) {
        const c = await sys.challengeBoard.challengeOf(node);
        expect(c.capsId).to.equal(0n);
        expect(c.round).to.equal(0n);
        expect(c.status).to.equal(BigInt(ChallengeStatus.None));
        expect(c.approvals).to.equal(0n);
        expect(c.rejections).to.equal(0n);
        expect(c.rejectedAt).to.equal(0n);
        expect(c.rejectedBy).to.equal(ethers.ZeroAddress);
        expect(c.rejectReason).to.equal(ZERO_HASH);
      }
    });

    it("isValidated is false for unknown nodes and for registered nodes never challenged", async () => {
      const { sys, n1 } = await networkHelpers.loadFixture(challengeBoardFixture);
      expect(await sys.challengeBoard.isValidated(sys.stranger.address)).to.equal(false);
      expect(await sys.challengeBoard.isValidated(ethers.ZeroAddress)).to.equal(false);
      expect(await sys.challengeBoard.isValidated(n1.address)).to.equal(false);
    });

    it("registry, requiredApprovals, requiredRejections and retryCooldown match the Ignition parameters of the fixture", async () => {
      const { sys } = await networkHelpers.loadFixture(challengeBoardFixture);
      expect(await sys.challengeBoard.registry()).to.equal(await sys.registry.getAddress());
      expect(await sys.challengeBoard.requiredApprovals()).to.equal(REQUIRED_APPROVALS);
      expect(await sys.challengeBoard.requiredRejections()).to.equal(REQUIRED_REJECTIONS);
      expect(await sys.challengeBoard.retryCooldown()).to.equal(RETRY_COOLDOWN);
    });

    it("MAX_QUORUM is 64 and MAX_RETRY_COOLDOWN is 30 days", async () => {
      const { sys } = await networkHelpers.loadFixture(challengeBoardFixture);
      expect(await sys.challengeBoard.MAX_QUORUM()).to.equal(MAX_QUORUM);
      expect(await sys.challengeBoard.MAX_RETRY_COOLDOWN()).to.equal(MAX_RETRY_COOLDOWN);
    });

    it("roles: the deployer is admin, the fixture's validators hold VALIDATOR_ROLE", async () => {
      const { sys, VALIDATOR_ROLE, DEFAULT_ADMIN_ROLE } = await networkHelpers.loadFixture(challengeBoardFixture);
      expect(VALIDATOR_ROLE).to.equal(ethers.id("VALIDATOR_ROLE"));
      expect(await sys.challengeBoard.hasRole(DEFAULT_ADMIN_ROLE, sys.admin.address)).to.equal(true);
      for (const v of sys.validators) {
        expect(await sys.challengeBoard.hasRole(VALIDATOR_ROLE, v.address)).to.equal(true);
      }
      expect(await sys.challengeBoard.hasRole(VALIDATOR_ROLE, sys.admin.address)).to.equal(false);
    });
  });
});
