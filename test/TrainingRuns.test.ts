/**
 * TrainingRuns: runs, their escrow and their membership.
 *
 * One `describe` per external function, then cross-cutting scenarios (escrow accounting, membership
 * bookkeeping, the registry's deregistration guard). Every custom error is asserted with its exact
 * arguments. Smart-contract masters (ERC-1271) are covered with the test harness
 * contracts/test/ERC1271Wallet.sol.
 */
import { expect } from "chai";
import { network } from "hardhat";
import { anyValue } from "@nomicfoundation/hardhat-ethers-chai-matchers/withArgs";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import type { TrainingRuns } from "../typechain-types/index.js";
import {
  A100,
  CPU_NODE,
  H100,
  H100_NODE,
  H100_REQUIREMENTS,
  MIN_STAKE_BASE,
  MIN_STAKE_PER_GPU,
  type RunOptions,
  type System,
  createRun,
  deploySystem,
  farDeadline,
  inviteFor,
  joinRun,
  permitFor as tokenPermitFor,
  registerNode,
  runParams,
  validateNode,
} from "./helpers/system.js";
import {
  Capability,
  INVITE_TYPES,
  Participation,
  RUNS_DOMAIN,
  RunStatus,
  TOKEN,
  gpuModel,
  signInvite,
} from "../scripts/lib/protocol.js";

const connection = await network.create();
const { ethers, networkHelpers } = connection;

/** Order of the secp256k1 group: `s` and `n - s` are both valid ecrecover inputs. */
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const REASON = ethers.id("missed heartbeats");

const NO_REQUIREMENTS = {
  minGpuCount: 0,
  minGpuMemoryMB: 0,
  minCpuCores: 0,
  minRamMB: 0,
  minStorageGB: 0,
  allowedGpuModels: [] as string[],
};

async function systemFixture() {
  return deploySystem(connection);
}

/** Three CPU nodes (n1, n2, n3 of provider p1), validated and members of one open run, in that order. */
async function membersFixture() {
  const sys = await deploySystem(connection);
  const [n1, n2, n3] = sys.nodes;
  for (const node of [n1, n2, n3]) await registerNode(connection, sys, sys.providers[0], node, CPU_NODE);
  const runId = await createRun(sys, { requirements: NO_REQUIREMENTS, maxMembers: 5 });
  for (const [i, node] of [n1, n2, n3].entries()) await joinRun(connection, sys, runId, node, BigInt(i + 1));
  return { sys, runId };
}

/** A run without requirements, so that CPU nodes can register. */
async function openRun(sys: System, options: RunOptions = {}): Promise<bigint> {
  return createRun(sys, { requirements: NO_REQUIREMENTS, ...options });
}

/** Registers `node` (provider p1) with `caps`, registers it for `runId` and validates it. */
async function registeredAndValidated(sys: System, runId: bigint, node: HardhatEthersSigner, caps = CPU_NODE) {
  await registerNode(connection, sys, sys.providers[0], node, caps);
  await sys.trainingRuns.connect(node).registerForRun(runId, node.address);
  await validateNode(sys, node.address);
}

/** An invite signed by `signer` for `node`, with a far expiry unless given. */
async function invite(
  sys: System,
  signer: HardhatEthersSigner,
  runId: bigint,
  node: string,
  nonce: bigint,
  expiry?: bigint,
) {
  const exp = expiry ?? (await farDeadline(connection));
  return { expiry: exp, signature: await inviteFor(sys, signer, { runId, node, nonce, expiry: exp }) };
}

async function endRun(sys: System, runId: bigint, status: number) {
  if (status === RunStatus.Completed) {
    await sys.trainingRuns.connect(sys.buyer).startRun(runId);
    await sys.trainingRuns.connect(sys.buyer).completeRun(runId);
  } else {
    await sys.trainingRuns.connect(sys.buyer).cancelRun(runId);
  }
}

/** Checks the escrow figures, the identity deposited = paid + refunded + reserved + available, and
 *  (single-run tests) that the contract holds exactly reserved + available. */
async function expectEscrow(
  sys: System,
  runId: bigint,
  expected: { deposited: bigint; paid: bigint; refunded: bigint; reserved: bigint; available: bigint },
) {
  const e = await sys.trainingRuns.escrowOf(runId);
  expect({
    deposited: e.deposited,
    paid: e.paid,
    refunded: e.refunded,
    reserved: e.reserved,
    available: e.available,
  }).to.deep.equal(expected);
  expect(e.deposited).to.equal(e.paid + e.refunded + e.reserved + e.available);
  expect(await sys.token.balanceOf(await sys.trainingRuns.getAddress())).to.equal(e.reserved + e.available);
}

async function members(sys: System, runId: bigint): Promise<string[]> {
  return [...(await sys.trainingRuns.membersOf(runId, 0, ethers.MaxUint256))];
}

async function runsOf(sys: System, node: string): Promise<bigint[]> {
  return [...(await sys.trainingRuns.runsOf(node))];
}

/** An ERC-2612 permit of `owner` for TrainingRuns, split for `selfPermit`. */
async function permitFor(sys: System, owner: HardhatEthersSigner, value: bigint) {
  const deadline = await farDeadline(connection);
  const { v, r, s } = await tokenPermitFor(sys, owner, await sys.trainingRuns.getAddress(), value, deadline);
  return { value, deadline, v, r, s };
}

describe("TrainingRuns", () => {
  describe("constructor", () => {
    it("refuses a zero admin, token, registry or challenge board (ZeroAddress)", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const factory = await ethers.getContractFactory("TrainingRuns");
      const args = [
        sys.admin.address,
        await sys.token.getAddress(),
        await sys.registry.getAddress(),
        await sys.challengeBoard.getAddress(),
      ];
      for (let i = 0; i < args.length; i++) {
        const withZero = args.map((a, j) => (j === i ? ethers.ZeroAddress : a));
        await expect(
          factory.deploy(withZero[0], withZero[1], withZero[2], withZero[3]),
        ).to.be.revertedWithCustomError(sys.trainingRuns, "TrainingRunsZeroAddress");
      }
    });

    it("wires the token, registry and board and gives the admin DEFAULT_ADMIN_ROLE only", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      expect(await tr.token()).to.equal(await sys.token.getAddress());
      expect(await tr.registry()).to.equal(await sys.registry.getAddress());
      expect(await tr.challengeBoard()).to.equal(await sys.challengeBoard.getAddress());
      expect(await tr.hasRole(await tr.DEFAULT_ADMIN_ROLE(), sys.admin.address)).to.equal(true);
      expect(await tr.hasRole(await tr.ESCROW_ROLE(), sys.admin.address)).to.equal(false);
      expect(await tr.runCount()).to.equal(0n);
    });
  });

  describe("createRun", () => {
    it("stores the run, pulls the budget from the buyer and numbers runs from 1", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      const params = runParams(sys, { budget: 1_000n * TOKEN, maxMembers: 7, pricePerUnit: 3n * TOKEN });
      await expect(tr.connect(sys.buyer).createRun(params)).to.changeTokenBalances(ethers,
        sys.token,
        [sys.buyer, tr],
        [-1_000n * TOKEN, 1_000n * TOKEN],
      );
      expect(await tr.runCount()).to.equal(1n);
      const info = await tr.getRun(1n);
      expect([info.buyer, info.master, info.status, info.maxMembers, info.memberCount]).to.deep.equal([
        sys.buyer.address,
        sys.master.address,
        BigInt(RunStatus.Pending),
        7n,
        0n,
      ]);
      expect(info.pricePerUnit).to.equal(3n * TOKEN);
      expect(info.discoveryURI).to.equal(params.discoveryURI);
      const req = await tr.requirementsOf(1n);
      expect([req.minGpuCount, req.minGpuMemoryMB, req.minCpuCores, req.minRamMB, req.minStorageGB]).to.deep.equal([
        8n, 81_920n, 64n, 512_000n, 2_000n,
      ]);
      expect([...req.allowedGpuModels]).to.deep.equal([H100]);
      await expectEscrow(sys, 1n, { deposited: 1_000n * TOKEN, paid: 0n, refunded: 0n, reserved: 0n, available: 1_000n * TOKEN });
      expect(await createRun(sys)).to.equal(2n);
    });

    it("emits RunCreated with the requirements tuple", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const params = runParams(sys, { requirements: { ...H100_REQUIREMENTS, allowedGpuModels: [H100, A100] } });
      await expect(sys.trainingRuns.connect(sys.buyer).createRun(params))
        .to.emit(sys.trainingRuns, "RunCreated")
        .withArgs(1n, sys.buyer.address, sys.master.address, params.pricePerUnit, params.maxMembers, params.budget,
          params.discoveryURI, [8n, 81_920n, 64n, 512_000n, 2_000n, [H100, A100]]);
    });

    it("allows a budget of 0 without any transfer", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      await sys.token.connect(sys.buyer).approve(await sys.trainingRuns.getAddress(), 0);
      const tx = sys.trainingRuns.connect(sys.buyer).createRun(runParams(sys, { budget: 0n }));
      await expect(tx).to.changeTokenBalances(ethers, sys.token, [sys.buyer, sys.trainingRuns], [0n, 0n]);
      await expectEscrow(sys, 1n, { deposited: 0n, paid: 0n, refunded: 0n, reserved: 0n, available: 0n });
    });

    it("refuses a zero master (ZeroAddress)", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      await expect(
        sys.trainingRuns.connect(sys.buyer).createRun(runParams(sys, { master: ethers.ZeroAddress })),
      ).to.be.revertedWithCustomError(sys.trainingRuns, "TrainingRunsZeroAddress");
    });

    it("refuses maxMembers 0 (InvalidMaxMembers)", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      await expect(
        sys.trainingRuns.connect(sys.buyer).createRun(runParams(sys, { maxMembers: 0 })),
      ).to.be.revertedWithCustomError(sys.trainingRuns, "TrainingRunsInvalidMaxMembers");
    });

    it("refuses an empty or 257-byte discovery URI and accepts 256 bytes (InvalidDiscoveryURI)", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns.connect(sys.buyer);
      await expect(tr.createRun(runParams(sys, { discoveryURI: "" })))
        .to.be.revertedWithCustomError(tr, "TrainingRunsInvalidDiscoveryURI").withArgs(0n, 256n);
      await expect(tr.createRun(runParams(sys, { discoveryURI: "x".repeat(257) })))
        .to.be.revertedWithCustomError(tr, "TrainingRunsInvalidDiscoveryURI").withArgs(257n, 256n);
      // Bytes, not characters: 128 two-byte characters are 256 bytes.
      await expect(tr.createRun(runParams(sys, { discoveryURI: "é".repeat(129) })))
        .to.be.revertedWithCustomError(tr, "TrainingRunsInvalidDiscoveryURI").withArgs(258n, 256n);
      await tr.createRun(runParams(sys, { discoveryURI: "é".repeat(128) }));
      await tr.createRun(runParams(sys, { discoveryURI: "x".repeat(256) }));
      expect((await tr.getRun(2n)).discoveryURI).to.equal("x".repeat(256));
    });

    it("refuses 17 allowed GPU models and accepts 16 (TooManyGpuModels)", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const models = Array.from({ length: 17 }, (_, i) => gpuModel(`GPU-${i}`));
      const tr = sys.trainingRuns.connect(sys.buyer);
      await expect(tr.createRun(runParams(sys, { requirements: { ...NO_REQUIREMENTS, allowedGpuModels: models } })))
        .to.be.revertedWithCustomError(tr, "TrainingRunsTooManyGpuModels").withArgs(17n, 16n);
      await tr.createRun(runParams(sys, { requirements: { ...NO_REQUIREMENTS, allowedGpuModels: models.slice(0, 16) } }));
      expect((await tr.requirementsOf(1n)).allowedGpuModels.length).to.equal(16);
    });

    it("refuses a zero or duplicate GPU model (InvalidGpuModel)", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns.connect(sys.buyer);
      const zero = { ...NO_REQUIREMENTS, allowedGpuModels: [H100, ethers.ZeroHash] };
      await expect(tr.createRun(runParams(sys, { requirements: zero })))
        .to.be.revertedWithCustomError(tr, "TrainingRunsInvalidGpuModel").withArgs(ethers.ZeroHash);
      const duplicate = { ...NO_REQUIREMENTS, allowedGpuModels: [H100, A100, H100] };
      await expect(tr.createRun(runParams(sys, { requirements: duplicate })))
        .to.be.revertedWithCustomError(tr, "TrainingRunsInvalidGpuModel").withArgs(H100);
      expect(await tr.runCount()).to.equal(0n);
    });

    it("fails with the token's allowance error when the buyer approved nothing", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      await sys.token.connect(sys.buyer).approve(await tr.getAddress(), 0);
      await expect(tr.connect(sys.buyer).createRun(runParams(sys, { budget: 5n })))
        .to.be.revertedWithCustomError(sys.token, "ERC20InsufficientAllowance")
        .withArgs(await tr.getAddress(), 0n, 5n);
    });
  });

  describe("multicall with selfPermit (ERC-2612 instead of approve)", () => {
    it("creates a funded run in one transaction from a buyer with no allowance", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      await sys.token.connect(sys.buyer).approve(await tr.getAddress(), 0);
      const budget = 2_500n * TOKEN;
      const p = await permitFor(sys, sys.buyer, budget);
      const params = runParams(sys, { budget });
      const tx = tr.connect(sys.buyer).multicall([
        tr.interface.encodeFunctionData("selfPermit", [p.value, p.deadline, p.v, p.r, p.s]),
        tr.interface.encodeFunctionData("createRun", [params]),
      ]);
      await expect(tx).to.emit(tr, "RunCreated").withArgs(1n, sys.buyer.address, sys.master.address,
        params.pricePerUnit, params.maxMembers, budget, params.discoveryURI, anyValue);
      await expect(tx).to.changeTokenBalances(ethers, sys.token, [sys.buyer, tr], [-budget, budget]);
      expect(await sys.token.allowance(sys.buyer.address, await tr.getAddress())).to.equal(0n);
      expect((await tr.getRun(1n)).buyer).to.equal(sys.buyer.address);
    });

    it("funds a run in one transaction for a third party with no allowance", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      const runId = await createRun(sys, { budget: 0n });
      await sys.token.connect(sys.stranger).approve(await tr.getAddress(), 0);
      const p = await permitFor(sys, sys.stranger, 40n * TOKEN);
      const tx = tr.connect(sys.stranger).multicall([
        tr.interface.encodeFunctionData("selfPermit", [p.value, p.deadline, p.v, p.r, p.s]),
        tr.interface.encodeFunctionData("fundRun", [runId, 40n * TOKEN]),
      ]);
      await expect(tx).to.emit(tr, "RunFunded").withArgs(runId, sys.stranger.address, 40n * TOKEN);
      await expect(tx).to.changeTokenBalances(ethers, sys.token, [sys.stranger, tr], [-40n * TOKEN, 40n * TOKEN]);
    });

    it("still succeeds when the permit was front-run (selfPermit swallows the failure)", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      await sys.token.connect(sys.buyer).approve(await tr.getAddress(), 0);
      const p = await permitFor(sys, sys.buyer, 10n * TOKEN);
      await sys.token.connect(sys.stranger).permit(sys.buyer.address, await tr.getAddress(), p.value, p.deadline, p.v, p.r, p.s);
      await tr.connect(sys.buyer).multicall([
        tr.interface.encodeFunctionData("selfPermit", [p.value, p.deadline, p.v, p.r, p.s]),
        tr.interface.encodeFunctionData("createRun", [runParams(sys, { budget: 10n * TOKEN })]),
      ]);
      expect((await tr.escrowOf(1n)).deposited).to.equal(10n * TOKEN);
    });

    it("does not create the run when the permit is forged (the token's allowance error surfaces)", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      await sys.token.connect(sys.buyer).approve(await tr.getAddress(), 0);
      const forged = await permitFor(sys, sys.stranger, 10n * TOKEN); // signed by the wrong key
      await expect(
        tr.connect(sys.buyer).multicall([
          tr.interface.encodeFunctionData("selfPermit", [forged.value, forged.deadline, forged.v, forged.r, forged.s]),
          tr.interface.encodeFunctionData("createRun", [runParams(sys, { budget: 10n * TOKEN })]),
        ]),
      ).to.be.revertedWithCustomError(sys.token, "ERC20InsufficientAllowance");
      expect(await tr.runCount()).to.equal(0n);
    });
  });

  describe("startRun", () => {
    it("lets the buyer or the master move Pending -> Active and emits RunStarted", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      const a = await createRun(sys);
      const b = await createRun(sys);
      await expect(tr.connect(sys.buyer).startRun(a)).to.emit(tr, "RunStarted").withArgs(a, sys.buyer.address);
      await expect(tr.connect(sys.master).startRun(b)).to.emit(tr, "RunStarted").withArgs(b, sys.master.address);
      expect((await tr.getRun(a)).status).to.equal(BigInt(RunStatus.Active));
    });

    it("refuses anyone else (NotBuyerOrMaster)", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const runId = await createRun(sys);
      await expect(sys.trainingRuns.connect(sys.stranger).startRun(runId))
        .to.be.revertedWithCustomError(sys.trainingRuns, "TrainingRunsNotBuyerOrMaster")
        .withArgs(runId, sys.stranger.address);
    });

    it("refuses to start twice, or after the run ended (InvalidStatus)", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns.connect(sys.buyer);
      const a = await createRun(sys);
      await tr.startRun(a);
      await expect(tr.startRun(a)).to.be.revertedWithCustomError(tr, "TrainingRunsInvalidStatus").withArgs(a, RunStatus.Active);
      await tr.completeRun(a);
      await expect(tr.startRun(a)).to.be.revertedWithCustomError(tr, "TrainingRunsInvalidStatus").withArgs(a, RunStatus.Completed);
      const b = await createRun(sys);
      await tr.cancelRun(b);
      await expect(tr.startRun(b)).to.be.revertedWithCustomError(tr, "TrainingRunsInvalidStatus").withArgs(b, RunStatus.Cancelled);
    });
  });

  describe("completeRun", () => {
    it("lets the buyer complete; the refund of available escrow goes to the buyer", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      const runId = await createRun(sys, { budget: 300n });
      await tr.connect(sys.master).startRun(runId);
      const tx = tr.connect(sys.buyer).completeRun(runId);
      await expect(tx).to.emit(tr, "RunCompleted").withArgs(runId, sys.buyer.address, 300n);
      await expect(tx).to.changeTokenBalances(ethers, sys.token, [sys.buyer, sys.master, tr], [300n, 0n, -300n]);
      expect((await tr.getRun(runId)).status).to.equal(BigInt(RunStatus.Completed));
    });

    it("refuses the master, which may still start the run (NotBuyer)", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      const runId = await createRun(sys, { budget: 300n });
      await expect(tr.connect(sys.master).startRun(runId)).to.emit(tr, "RunStarted").withArgs(runId, sys.master.address);
      await expect(tr.connect(sys.master).completeRun(runId))
        .to.be.revertedWithCustomError(tr, "TrainingRunsNotBuyer").withArgs(runId, sys.master.address);
      expect((await tr.getRun(runId)).status).to.equal(BigInt(RunStatus.Active));
      await expectEscrow(sys, runId, { deposited: 300n, paid: 0n, refunded: 0n, reserved: 0n, available: 300n });
    });

    it("completes a run with nothing to refund without a transfer", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const runId = await createRun(sys, { budget: 0n });
      await sys.trainingRuns.connect(sys.buyer).startRun(runId);
      await expect(sys.trainingRuns.connect(sys.buyer).completeRun(runId))
        .to.emit(sys.trainingRuns, "RunCompleted").withArgs(runId, sys.buyer.address, 0n);
    });

    it("refuses Pending, Completed and Cancelled runs (InvalidStatus)", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns.connect(sys.buyer);
      const a = await createRun(sys);
      await expect(tr.completeRun(a)).to.be.revertedWithCustomError(tr, "TrainingRunsInvalidStatus").withArgs(a, RunStatus.Pending);
      await endRun(sys, a, RunStatus.Completed);
      await expect(tr.completeRun(a)).to.be.revertedWithCustomError(tr, "TrainingRunsInvalidStatus").withArgs(a, RunStatus.Completed);
      const b = await createRun(sys);
      await tr.startRun(b);
      await tr.cancelRun(b);
      await expect(tr.completeRun(b)).to.be.revertedWithCustomError(tr, "TrainingRunsInvalidStatus").withArgs(b, RunStatus.Cancelled);
    });

    it("refuses a stranger, a replaced master and the new master (NotBuyer)", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      const runId = await createRun(sys);
      await tr.connect(sys.buyer).startRun(runId);
      await tr.connect(sys.buyer).setMaster(runId, sys.stranger.address);
      for (const caller of [sys.master, sys.validators[0], sys.stranger]) {
        await expect(tr.connect(caller).completeRun(runId))
          .to.be.revertedWithCustomError(tr, "TrainingRunsNotBuyer").withArgs(runId, caller.address);
      }
      await expect(tr.connect(sys.buyer).completeRun(runId)).to.emit(tr, "RunCompleted");
    });
  });

  describe("cancelRun", () => {
    it("lets the buyer cancel a Pending or an Active run and refunds all unreserved escrow", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      const a = await createRun(sys, { budget: 1_000n });
      const b = await createRun(sys, { budget: 1_000n });
      await tr.connect(sys.escrowAgent).reserveEscrow(b, 300n);
      await tr.connect(sys.buyer).startRun(b);
      await expect(tr.connect(sys.buyer).cancelRun(a)).to.emit(tr, "RunCancelled").withArgs(a, 1_000n);
      const tx = tr.connect(sys.buyer).cancelRun(b);
      await expect(tx).to.emit(tr, "RunCancelled").withArgs(b, 700n);
      await expect(tx).to.changeTokenBalances(ethers, sys.token, [sys.buyer, tr], [700n, -700n]);
      expect((await tr.getRun(b)).status).to.equal(BigInt(RunStatus.Cancelled));
      const e = await tr.escrowOf(b);
      expect([e.deposited, e.refunded, e.reserved, e.available]).to.deep.equal([1_000n, 700n, 300n, 0n]);
    });

    it("refuses the master (NotBuyer)", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const runId = await createRun(sys);
      await expect(sys.trainingRuns.connect(sys.master).cancelRun(runId))
        .to.be.revertedWithCustomError(sys.trainingRuns, "TrainingRunsNotBuyer").withArgs(runId, sys.master.address);
    });

    it("refuses an ended run (InvalidStatus)", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns.connect(sys.buyer);
      const a = await createRun(sys);
      await endRun(sys, a, RunStatus.Completed);
      await expect(tr.cancelRun(a)).to.be.revertedWithCustomError(tr, "TrainingRunsInvalidStatus").withArgs(a, RunStatus.Completed);
      const b = await createRun(sys);
      await tr.cancelRun(b);
      await expect(tr.cancelRun(b)).to.be.revertedWithCustomError(tr, "TrainingRunsInvalidStatus").withArgs(b, RunStatus.Cancelled);
    });
  });

  describe("fundRun", () => {
    it("lets anyone add to an open run's escrow and emits RunFunded", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      const runId = await createRun(sys, { budget: 100n });
      await tr.connect(sys.buyer).startRun(runId);
      const tx = tr.connect(sys.stranger).fundRun(runId, 50n);
      await expect(tx).to.emit(tr, "RunFunded").withArgs(runId, sys.stranger.address, 50n);
      await expect(tx).to.changeTokenBalances(ethers, sys.token, [sys.stranger, tr], [-50n, 50n]);
      await expectEscrow(sys, runId, { deposited: 150n, paid: 0n, refunded: 0n, reserved: 0n, available: 150n });
    });

    it("funds a run created with a budget of 0", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const runId = await createRun(sys, { budget: 0n });
      await sys.trainingRuns.connect(sys.buyer).fundRun(runId, 7n);
      await expectEscrow(sys, runId, { deposited: 7n, paid: 0n, refunded: 0n, reserved: 0n, available: 7n });
    });

    it("refuses an amount of 0 (ZeroAmount)", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const runId = await createRun(sys);
      await expect(sys.trainingRuns.connect(sys.buyer).fundRun(runId, 0n))
        .to.be.revertedWithCustomError(sys.trainingRuns, "TrainingRunsZeroAmount");
    });
  });

  describe("setMaster", () => {
    it("lets the buyer replace the master and emits MasterChanged", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      const runId = await createRun(sys);
      await expect(tr.connect(sys.buyer).setMaster(runId, sys.stranger.address))
        .to.emit(tr, "MasterChanged").withArgs(runId, sys.master.address, sys.stranger.address);
      expect(await tr.isMaster(runId, sys.stranger.address)).to.equal(true);
      expect(await tr.isMaster(runId, sys.master.address)).to.equal(false);
      expect((await tr.getRun(runId)).master).to.equal(sys.stranger.address);
    });

    it("refuses the master itself (NotBuyer) and a zero master (ZeroAddress)", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      const runId = await createRun(sys);
      await expect(tr.connect(sys.master).setMaster(runId, sys.master.address))
        .to.be.revertedWithCustomError(tr, "TrainingRunsNotBuyer").withArgs(runId, sys.master.address);
      await expect(tr.connect(sys.buyer).setMaster(runId, ethers.ZeroAddress))
        .to.be.revertedWithCustomError(tr, "TrainingRunsZeroAddress");
    });
  });

  describe("setDiscoveryURI", () => {
    it("lets the buyer replace the URI (256 bytes at most) and emits DiscoveryURIChanged", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      const runId = await createRun(sys);
      const uri = "u".repeat(256);
      await expect(tr.connect(sys.buyer).setDiscoveryURI(runId, uri)).to.emit(tr, "DiscoveryURIChanged").withArgs(runId, uri);
      expect((await tr.getRun(runId)).discoveryURI).to.equal(uri);
    });

    it("refuses the master (NotBuyer), an empty or a 257-byte URI (InvalidDiscoveryURI)", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      const runId = await createRun(sys);
      await expect(tr.connect(sys.master).setDiscoveryURI(runId, "https://x"))
        .to.be.revertedWithCustomError(tr, "TrainingRunsNotBuyer").withArgs(runId, sys.master.address);
      await expect(tr.connect(sys.buyer).setDiscoveryURI(runId, ""))
        .to.be.revertedWithCustomError(tr, "TrainingRunsInvalidDiscoveryURI").withArgs(0n, 256n);
      await expect(tr.connect(sys.buyer).setDiscoveryURI(runId, "u".repeat(257)))
        .to.be.revertedWithCustomError(tr, "TrainingRunsInvalidDiscoveryURI").withArgs(257n, 256n);
    });
  });

  describe("operations on ended runs", () => {
    for (const [label, status] of [["Completed", RunStatus.Completed], ["Cancelled", RunStatus.Cancelled]] as const) {
      it(`refuses register, accept, fund, setMaster, setDiscoveryURI, eject and reserve on a ${label} run (InvalidStatus)`, async () => {
        const sys = await networkHelpers.loadFixture(systemFixture);
        const tr = sys.trainingRuns;
        const [n1, n2] = sys.nodes;
        const runId = await openRun(sys);
        await registeredAndValidated(sys, runId, n1);
        await registerNode(connection, sys, sys.providers[0], n2, CPU_NODE);
        const inv = await invite(sys, sys.master, runId, n1.address, 1n);
        await endRun(sys, runId, status);

        const refused = [
          tr.connect(n2).registerForRun(runId, n2.address),
          tr.connect(n1).acceptInvite(runId, n1.address, 1n, inv.expiry, inv.signature),
          tr.connect(sys.stranger).fundRun(runId, 1n),
          tr.connect(sys.buyer).setMaster(runId, sys.stranger.address),
          tr.connect(sys.buyer).setDiscoveryURI(runId, "https://new"),
          tr.connect(sys.master).eject(runId, n1.address, REASON),
          tr.connect(sys.escrowAgent).reserveEscrow(runId, 1n),
        ];
        for (const call of refused) {
          await expect(call).to.be.revertedWithCustomError(tr, "TrainingRunsInvalidStatus").withArgs(runId, status);
        }
      });
    }
  });

  describe("registerForRun", () => {
    it("lets the node register itself and records it as Registered", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      const [p1] = sys.providers;
      const [n1] = sys.nodes;
      await registerNode(connection, sys, p1, n1, H100_NODE);
      const runId = await createRun(sys);
      await expect(tr.connect(n1).registerForRun(runId, n1.address))
        .to.emit(tr, "NodeRegisteredForRun").withArgs(runId, n1.address, p1.address);
      expect(await tr.participationOf(runId, n1.address)).to.equal(BigInt(Participation.Registered));
      expect(await tr.isMember(runId, n1.address)).to.equal(false);
      expect(await runsOf(sys, n1.address)).to.deep.equal([runId]);
      expect(await tr.activeRunCount(n1.address)).to.equal(1n);
    });

    it("lets the node's provider register it", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const [p1] = sys.providers;
      const [n1] = sys.nodes;
      await registerNode(connection, sys, p1, n1, CPU_NODE);
      const runId = await openRun(sys);
      await expect(sys.trainingRuns.connect(p1).registerForRun(runId, n1.address))
        .to.emit(sys.trainingRuns, "NodeRegisteredForRun").withArgs(runId, n1.address, p1.address);
    });

    it("refuses a stranger and another provider (NotNodeOrProvider)", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      const [p1, p2] = sys.providers;
      const [n1] = sys.nodes;
      await registerNode(connection, sys, p1, n1, CPU_NODE);
      const runId = await openRun(sys);
      for (const caller of [sys.stranger, p2]) {
        await expect(tr.connect(caller).registerForRun(runId, n1.address))
          .to.be.revertedWithCustomError(tr, "TrainingRunsNotNodeOrProvider").withArgs(n1.address, caller.address);
      }
    });

    it("refuses a node that is not in the registry (NodeNotRegistered)", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const runId = await openRun(sys);
      await expect(sys.trainingRuns.connect(sys.nodes[0]).registerForRun(runId, sys.nodes[0].address))
        .to.be.revertedWithCustomError(sys.trainingRuns, "TrainingRunsNodeNotRegistered").withArgs(sys.nodes[0].address);
    });

    it("refuses a node already registered or already a member (InvalidParticipation)", async () => {
      const { sys, runId } = await networkHelpers.loadFixture(membersFixture);
      const tr = sys.trainingRuns;
      const [n1, , , n4] = sys.nodes;
      await registerNode(connection, sys, sys.providers[0], n4, CPU_NODE);
      await tr.connect(n4).registerForRun(runId, n4.address);
      await expect(tr.connect(n4).registerForRun(runId, n4.address))
        .to.be.revertedWithCustomError(tr, "TrainingRunsInvalidParticipation").withArgs(runId, n4.address, Participation.Registered);
      await expect(tr.connect(n1).registerForRun(runId, n1.address))
        .to.be.revertedWithCustomError(tr, "TrainingRunsInvalidParticipation").withArgs(runId, n1.address, Participation.Member);
    });

    it("refuses a node slashed below its minimum stake (InsufficientStake)", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const [n1] = sys.nodes;
      await registerNode(connection, sys, sys.providers[0], n1, CPU_NODE);
      const runId = await openRun(sys);
      await sys.registry.connect(sys.slasher).slash(n1.address, 1n, REASON);
      await expect(sys.trainingRuns.connect(n1).registerForRun(runId, n1.address))
        .to.be.revertedWithCustomError(sys.trainingRuns, "TrainingRunsInsufficientStake").withArgs(n1.address);
    });

    it("refuses a node whose stake fell below a raised minimum (InsufficientStake)", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const [n1] = sys.nodes;
      await registerNode(connection, sys, sys.providers[0], n1, CPU_NODE);
      const runId = await openRun(sys);
      await sys.registry.connect(sys.admin).setMinimumStake(MIN_STAKE_BASE + 1n, MIN_STAKE_PER_GPU);
      await expect(sys.trainingRuns.connect(n1).registerForRun(runId, n1.address))
        .to.be.revertedWithCustomError(sys.trainingRuns, "TrainingRunsInsufficientStake").withArgs(n1.address);
    });

    const boundaries = [
      { name: "GPU count", field: "minGpuCount", capability: Capability.GpuCount, actual: H100_NODE.gpuCount },
      { name: "GPU memory", field: "minGpuMemoryMB", capability: Capability.GpuMemory, actual: H100_NODE.gpuMemoryMB },
      { name: "CPU cores", field: "minCpuCores", capability: Capability.CpuCores, actual: H100_NODE.cpuCores },
      { name: "RAM", field: "minRamMB", capability: Capability.Ram, actual: H100_NODE.ramMB },
      { name: "storage", field: "minStorageGB", capability: Capability.Storage, actual: H100_NODE.storageGB },
    ] as const;
    for (const b of boundaries) {
      it(`accepts ${b.name} equal to the requirement and refuses one less (RequirementNotMet)`, async () => {
        const sys = await networkHelpers.loadFixture(systemFixture);
        const tr = sys.trainingRuns;
        const [n1] = sys.nodes;
        await registerNode(connection, sys, sys.providers[0], n1, H100_NODE);
        const equal = await openRun(sys, { requirements: { ...NO_REQUIREMENTS, [b.field]: b.actual } });
        const above = await openRun(sys, { requirements: { ...NO_REQUIREMENTS, [b.field]: b.actual + 1 } });
        await expect(tr.connect(n1).registerForRun(equal, n1.address)).to.emit(tr, "NodeRegisteredForRun");
        await expect(tr.connect(n1).registerForRun(above, n1.address))
          .to.be.revertedWithCustomError(tr, "TrainingRunsRequirementNotMet")
          .withArgs(above, n1.address, b.capability, b.actual + 1, b.actual);
      });
    }

    it("refuses a GPU model outside the allowed list (GpuModelNotAllowed); an empty list accepts any", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      const [n1, n2] = sys.nodes;
      await registerNode(connection, sys, sys.providers[0], n1, H100_NODE);
      await registerNode(connection, sys, sys.providers[0], n2, CPU_NODE);
      const a100Only = await openRun(sys, { requirements: { ...NO_REQUIREMENTS, allowedGpuModels: [A100] } });
      const both = await openRun(sys, { requirements: { ...NO_REQUIREMENTS, allowedGpuModels: [A100, H100] } });
      const any = await openRun(sys);
      await expect(tr.connect(n1).registerForRun(a100Only, n1.address))
        .to.be.revertedWithCustomError(tr, "TrainingRunsGpuModelNotAllowed").withArgs(a100Only, n1.address, H100);
      // A CPU node's model is zero, never in a non-empty list.
      await expect(tr.connect(n2).registerForRun(a100Only, n2.address))
        .to.be.revertedWithCustomError(tr, "TrainingRunsGpuModelNotAllowed").withArgs(a100Only, n2.address, ethers.ZeroHash);
      await tr.connect(n1).registerForRun(both, n1.address);
      await tr.connect(n1).registerForRun(any, n1.address);
      await tr.connect(n2).registerForRun(any, n2.address);
      expect(await runsOf(sys, n1.address)).to.deep.equal([both, any]);
    });

    it("refuses a 17th open run (TooManyRuns) but prunes ended runs to make room, emitting NodeLeft", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      const [n1] = sys.nodes;
      await registerNode(connection, sys, sys.providers[0], n1, CPU_NODE);
      const ids: bigint[] = [];
      for (let i = 0; i < 16; i++) ids.push(await openRun(sys, { budget: 0n }));
      // In run 1 the node is a member, so pruning must also fix that run's member list.
      await joinRun(connection, sys, ids[0], n1, 1n);
      for (const id of ids.slice(1)) await tr.connect(n1).registerForRun(id, n1.address);
      expect(await tr.activeRunCount(n1.address)).to.equal(16n);

      const extra = await openRun(sys, { budget: 0n });
      await expect(tr.connect(n1).registerForRun(extra, n1.address))
        .to.be.revertedWithCustomError(tr, "TrainingRunsTooManyRuns").withArgs(n1.address, 16n);

      // End the first, a middle and the last run of the node's list.
      await endRun(sys, ids[0], RunStatus.Completed);
      await endRun(sys, ids[7], RunStatus.Cancelled);
      await endRun(sys, ids[15], RunStatus.Cancelled);
      const tx = tr.connect(n1).registerForRun(extra, n1.address);
      await expect(tx).to.emit(tr, "NodeLeft").withArgs(ids[0], n1.address, Participation.Member);
      await expect(tx).to.emit(tr, "NodeLeft").withArgs(ids[7], n1.address, Participation.Registered);
      await expect(tx).to.emit(tr, "NodeLeft").withArgs(ids[15], n1.address, Participation.Registered);
      await expect(tx).to.emit(tr, "NodeRegisteredForRun").withArgs(extra, n1.address, sys.providers[0].address);

      const open = [...ids.filter((_, i) => ![0, 7, 15].includes(i)), extra];
      expect((await runsOf(sys, n1.address)).sort((x, y) => Number(x - y))).to.deep.equal(open);
      expect(await tr.activeRunCount(n1.address)).to.equal(14n);
      expect(await tr.participationOf(ids[0], n1.address)).to.equal(BigInt(Participation.None));
      expect(await members(sys, ids[0])).to.deep.equal([]);
      // Pruning ends the participation like a leave: the pruned runs' invite generations moved on.
      for (const [i, id] of ids.entries()) {
        expect(await tr.inviteGenerationOf(id, n1.address)).to.equal([0, 7, 15].includes(i) ? 1n : 0n);
      }
      expect(await tr.inviteGenerationOf(extra, n1.address)).to.equal(0n);
      // The positions were rewritten correctly: the node can leave every remaining run.
      for (const id of open) await tr.connect(n1).leaveRun(id, n1.address);
      expect(await runsOf(sys, n1.address)).to.deep.equal([]);
    });
  });

  describe("acceptInvite", () => {
    it("makes a registered, validated node a member and emits NodeJoined", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      const [n1] = sys.nodes;
      const runId = await openRun(sys);
      await registeredAndValidated(sys, runId, n1);
      const inv = await invite(sys, sys.master, runId, n1.address, 42n);
      await expect(tr.connect(n1).acceptInvite(runId, n1.address, 42n, inv.expiry, inv.signature))
        .to.emit(tr, "NodeJoined").withArgs(runId, n1.address, 42n);
      expect(await tr.isMember(runId, n1.address)).to.equal(true);
      expect(await tr.participationOf(runId, n1.address)).to.equal(BigInt(Participation.Member));
      expect(await tr.isInviteNonceUsed(runId, 42n)).to.equal(true);
      expect((await tr.getRun(runId)).memberCount).to.equal(1n);
      expect(await members(sys, runId)).to.deep.equal([n1.address]);
    });

    it("lets the provider accept on behalf of its node, not a stranger (NotNodeOrProvider)", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      const [n1] = sys.nodes;
      const runId = await openRun(sys);
      await registeredAndValidated(sys, runId, n1);
      const inv = await invite(sys, sys.master, runId, n1.address, 1n);
      await expect(tr.connect(sys.stranger).acceptInvite(runId, n1.address, 1n, inv.expiry, inv.signature))
        .to.be.revertedWithCustomError(tr, "TrainingRunsNotNodeOrProvider").withArgs(n1.address, sys.stranger.address);
      await expect(tr.connect(sys.providers[0]).acceptInvite(runId, n1.address, 1n, inv.expiry, inv.signature))
        .to.emit(tr, "NodeJoined").withArgs(runId, n1.address, 1n);
    });

    it("refuses a node that is not registered for the run, or already a member (InvalidParticipation)", async () => {
      const { sys, runId } = await networkHelpers.loadFixture(membersFixture);
      const tr = sys.trainingRuns;
      const [n1, , , n4] = sys.nodes;
      await registerNode(connection, sys, sys.providers[0], n4, CPU_NODE);
      await validateNode(sys, n4.address);
      const inv4 = await invite(sys, sys.master, runId, n4.address, 10n);
      await expect(tr.connect(n4).acceptInvite(runId, n4.address, 10n, inv4.expiry, inv4.signature))
        .to.be.revertedWithCustomError(tr, "TrainingRunsInvalidParticipation").withArgs(runId, n4.address, Participation.None);
      const inv1 = await invite(sys, sys.master, runId, n1.address, 11n);
      await expect(tr.connect(n1).acceptInvite(runId, n1.address, 11n, inv1.expiry, inv1.signature))
        .to.be.revertedWithCustomError(tr, "TrainingRunsInvalidParticipation").withArgs(runId, n1.address, Participation.Member);
    });

    it("accepts an invite at its expiry second and refuses it one second later (InviteExpired)", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      const [n1, n2] = sys.nodes;
      const runId = await openRun(sys);
      await registeredAndValidated(sys, runId, n1);
      await registeredAndValidated(sys, runId, n2);
      const expiry = BigInt(await networkHelpers.time.latest()) + 1_000n;
      const inv1 = await invite(sys, sys.master, runId, n1.address, 1n, expiry);
      const inv2 = await invite(sys, sys.master, runId, n2.address, 2n, expiry);
      await networkHelpers.time.setNextBlockTimestamp(expiry);
      await expect(tr.connect(n1).acceptInvite(runId, n1.address, 1n, expiry, inv1.signature)).to.emit(tr, "NodeJoined");
      await networkHelpers.time.setNextBlockTimestamp(expiry + 1n);
      await expect(tr.connect(n2).acceptInvite(runId, n2.address, 2n, expiry, inv2.signature))
        .to.be.revertedWithCustomError(tr, "TrainingRunsInviteExpired").withArgs(expiry, expiry + 1n);
    });

    it("refuses a nonce already used by another node, and a revoked nonce (InviteNonceUsed)", async () => {
      const { sys, runId } = await networkHelpers.loadFixture(membersFixture);
      const tr = sys.trainingRuns;
      const [, , , n4] = sys.nodes;
      await registeredAndValidated(sys, runId, n4);
      const reused = await invite(sys, sys.master, runId, n4.address, 1n); // n1 joined with nonce 1
      await expect(tr.connect(n4).acceptInvite(runId, n4.address, 1n, reused.expiry, reused.signature))
        .to.be.revertedWithCustomError(tr, "TrainingRunsInviteNonceUsed").withArgs(runId, 1n);
      const revoked = await invite(sys, sys.master, runId, n4.address, 9n);
      await tr.connect(sys.master).revokeInvite(runId, 9n);
      await expect(tr.connect(n4).acceptInvite(runId, n4.address, 9n, revoked.expiry, revoked.signature))
        .to.be.revertedWithCustomError(tr, "TrainingRunsInviteNonceUsed").withArgs(runId, 9n);
    });

    it("keeps nonces per run: nonce 1 used in one run is still free in another", async () => {
      const { sys, runId } = await networkHelpers.loadFixture(membersFixture);
      const [n1] = sys.nodes;
      const other = await openRun(sys);
      expect(await sys.trainingRuns.isInviteNonceUsed(runId, 1n)).to.equal(true);
      expect(await sys.trainingRuns.isInviteNonceUsed(other, 1n)).to.equal(false);
      await expect(joinRun(connection, sys, other, n1, 1n)).to.emit(sys.trainingRuns, "NodeJoined").withArgs(other, n1.address, 1n);
    });

    describe("invite signature (InvalidInviteSignature)", () => {
      /** n1 registered for a fresh run and validated; the checks below all fail on the signature. */
      async function setup() {
        const sys = await networkHelpers.loadFixture(systemFixture);
        const [n1, n2] = sys.nodes;
        const runId = await openRun(sys);
        await registeredAndValidated(sys, runId, n1);
        const accept = (signature: string, expiry: bigint, nonce = 1n) =>
          sys.trainingRuns.connect(n1).acceptInvite(runId, n1.address, nonce, expiry, signature);
        return { sys, runId, n1, n2, accept };
      }

      it("refuses an invite signed by someone other than the master", async () => {
        const { sys, runId, n1, accept } = await setup();
        const inv = await invite(sys, sys.stranger, runId, n1.address, 1n);
        await expect(accept(inv.signature, inv.expiry))
          .to.be.revertedWithCustomError(sys.trainingRuns, "TrainingRunsInvalidInviteSignature")
          .withArgs(runId, n1.address, sys.master.address);
      });

      it("accepts an invite from a smart-contract master (ERC-1271) and refuses one its owner did not sign", async () => {
        const { sys, runId, n1, accept } = await setup();
        const wallet = await ethers.deployContract("ERC1271Wallet", [sys.master.address]);
        const walletAddress = await wallet.getAddress();
        await sys.trainingRuns.connect(sys.buyer).setMaster(runId, walletAddress);

        // Signed by someone else: the wallet says no.
        const forged = await invite(sys, sys.stranger, runId, n1.address, 1n);
        await expect(accept(forged.signature, forged.expiry))
          .to.be.revertedWithCustomError(sys.trainingRuns, "TrainingRunsInvalidInviteSignature")
          .withArgs(runId, n1.address, walletAddress);

        // Signed by the wallet's owner over the same EIP-712 digest: accepted through isValidSignature.
        const inv = await invite(sys, sys.master, runId, n1.address, 1n);
        await expect(accept(inv.signature, inv.expiry)).to.emit(sys.trainingRuns, "NodeJoined").withArgs(runId, n1.address, 1n);
        expect(await sys.trainingRuns.isMaster(runId, walletAddress)).to.equal(true);
      });

      it("refuses an invite made for another run", async () => {
        const { sys, runId, n1, accept } = await setup();
        const inv = await invite(sys, sys.master, runId + 1n, n1.address, 1n);
        await expect(accept(inv.signature, inv.expiry))
          .to.be.revertedWithCustomError(sys.trainingRuns, "TrainingRunsInvalidInviteSignature")
          .withArgs(runId, n1.address, sys.master.address);
      });

      it("refuses an invite made for another node", async () => {
        const { sys, runId, n1, n2, accept } = await setup();
        const inv = await invite(sys, sys.master, runId, n2.address, 1n);
        await expect(accept(inv.signature, inv.expiry))
          .to.be.revertedWithCustomError(sys.trainingRuns, "TrainingRunsInvalidInviteSignature")
          .withArgs(runId, n1.address, sys.master.address);
      });

      it("refuses an invite whose nonce or expiry was altered", async () => {
        const { sys, runId, n1, accept } = await setup();
        const inv = await invite(sys, sys.master, runId, n1.address, 1n);
        for (const call of [accept(inv.signature, inv.expiry, 2n), accept(inv.signature, inv.expiry + 1n)]) {
          await expect(call).to.be.revertedWithCustomError(sys.trainingRuns, "TrainingRunsInvalidInviteSignature");
        }
        await expect(accept(inv.signature, inv.expiry)).to.emit(sys.trainingRuns, "NodeJoined");
      });

      it("refuses an invite signed for another chain id", async () => {
        const { sys, runId, n1, accept } = await setup();
        const expiry = await farDeadline(connection);
        const signature = await signInvite(
          sys.master,
          { chainId: sys.chainId + 1n, verifyingContract: await sys.trainingRuns.getAddress() },
          { runId, node: n1.address, generation: 0n, nonce: 1n, expiry },
        );
        await expect(accept(signature, expiry))
          .to.be.revertedWithCustomError(sys.trainingRuns, "TrainingRunsInvalidInviteSignature")
          .withArgs(runId, n1.address, sys.master.address);
      });

      it("refuses an invite signed for another TrainingRuns deployment (valid there)", async () => {
        const { sys, runId, n1, accept } = await setup();
        const factory = await ethers.getContractFactory("TrainingRuns");
        const other = (await factory.deploy(
          sys.admin.address,
          await sys.token.getAddress(),
          await sys.registry.getAddress(),
          await sys.challengeBoard.getAddress(),
        )) as unknown as TrainingRuns;
        const expiry = await farDeadline(connection);
        const signature = await signInvite(
          sys.master,
          { chainId: sys.chainId, verifyingContract: await other.getAddress() },
          { runId, node: n1.address, generation: 0n, nonce: 1n, expiry },
        );
        await expect(accept(signature, expiry))
          .to.be.revertedWithCustomError(sys.trainingRuns, "TrainingRunsInvalidInviteSignature")
          .withArgs(runId, n1.address, sys.master.address);
        // The very same signature is a valid invite on the contract it was made for.
        await sys.token.connect(sys.buyer).approve(await other.getAddress(), ethers.MaxUint256);
        await other.connect(sys.buyer).createRun(runParams(sys, { requirements: NO_REQUIREMENTS }));
        expect(await other.runCount()).to.equal(runId);
        await other.connect(n1).registerForRun(runId, n1.address);
        await expect(other.connect(n1).acceptInvite(runId, n1.address, 1n, expiry, signature)).to.emit(other, "NodeJoined");
      });

      it("refuses the malleated twin of a valid signature (s -> n - s, v flipped)", async () => {
        const { sys, runId, n1, accept } = await setup();
        const inv = await invite(sys, sys.master, runId, n1.address, 1n);
        const sig = ethers.Signature.from(inv.signature);
        const twin = ethers.concat([
          sig.r,
          ethers.toBeHex(SECP256K1_N - BigInt(sig.s), 32),
          ethers.toBeHex(sig.v === 27 ? 28 : 27, 1),
        ]);
        // The raw ecrecover precompile does recover the master from the twin: only the low-s rule refuses it.
        const digest = await sys.trainingRuns.inviteDigest(runId, n1.address, 1n, inv.expiry);
        const recovered = await ethers.provider.call({
          to: "0x0000000000000000000000000000000000000001",
          data: ethers.AbiCoder.defaultAbiCoder().encode(
            ["bytes32", "uint8", "bytes32", "bytes32"],
            [digest, sig.v === 27 ? 28 : 27, sig.r, ethers.toBeHex(SECP256K1_N - BigInt(sig.s), 32)],
          ),
        });
        expect(ethers.getAddress(ethers.dataSlice(recovered, 12))).to.equal(sys.master.address);
        await expect(accept(twin, inv.expiry))
          .to.be.revertedWithCustomError(sys.trainingRuns, "TrainingRunsInvalidInviteSignature")
          .withArgs(runId, n1.address, sys.master.address);
        await expect(accept(inv.signature, inv.expiry)).to.emit(sys.trainingRuns, "NodeJoined");
      });

      it("refuses a malformed signature", async () => {
        const { sys, runId, n1, accept } = await setup();
        const expiry = await farDeadline(connection);
        for (const bad of ["0x", ethers.hexlify(ethers.randomBytes(64)), ethers.hexlify(new Uint8Array(65))]) {
          await expect(accept(bad, expiry))
            .to.be.revertedWithCustomError(sys.trainingRuns, "TrainingRunsInvalidInviteSignature")
            .withArgs(runId, n1.address, sys.master.address);
        }
      });

      it("after setMaster, refuses the old master's invites and accepts the new master's", async () => {
        const { sys, runId, n1, accept } = await setup();
        const newMaster = sys.validators[2];
        const old = await invite(sys, sys.master, runId, n1.address, 1n);
        await sys.trainingRuns.connect(sys.buyer).setMaster(runId, newMaster.address);
        await expect(accept(old.signature, old.expiry))
          .to.be.revertedWithCustomError(sys.trainingRuns, "TrainingRunsInvalidInviteSignature")
          .withArgs(runId, n1.address, newMaster.address);
        const fresh = await invite(sys, newMaster, runId, n1.address, 1n);
        await expect(accept(fresh.signature, fresh.expiry)).to.emit(sys.trainingRuns, "NodeJoined").withArgs(runId, n1.address, 1n);
      });
    });

    describe("invite generation (InvalidInviteSignature for invites of an earlier participation)", () => {
      it("refuses an invite issued before an ejection once the node registered again, and accepts a fresh one", async () => {
        const sys = await networkHelpers.loadFixture(systemFixture);
        const tr = sys.trainingRuns;
        const [n1] = sys.nodes;
        const runId = await openRun(sys);
        await registeredAndValidated(sys, runId, n1);
        const before = await invite(sys, sys.master, runId, n1.address, 7n);
        await tr.connect(sys.master).eject(runId, n1.address, REASON);
        await tr.connect(n1).registerForRun(runId, n1.address);
        expect(await tr.inviteGenerationOf(runId, n1.address)).to.equal(1n);

        await expect(tr.connect(n1).acceptInvite(runId, n1.address, 7n, before.expiry, before.signature))
          .to.be.revertedWithCustomError(tr, "TrainingRunsInvalidInviteSignature")
          .withArgs(runId, n1.address, sys.master.address);
        expect(await tr.isInviteNonceUsed(runId, 7n)).to.equal(false);
        expect(await tr.participationOf(runId, n1.address)).to.equal(BigInt(Participation.Registered));

        const fresh = await invite(sys, sys.master, runId, n1.address, 8n);
        await expect(tr.connect(n1).acceptInvite(runId, n1.address, 8n, fresh.expiry, fresh.signature))
          .to.emit(tr, "NodeJoined").withArgs(runId, n1.address, 8n);
      });

      it("refuses a spare invite of an ejected member once it registered again (the ejection cannot be undone by the node)", async () => {
        const { sys, runId } = await networkHelpers.loadFixture(membersFixture);
        const tr = sys.trainingRuns;
        const [n1] = sys.nodes;
        // The master had sent n1 a second invite while it was a member (generation 0).
        const spare = await invite(sys, sys.master, runId, n1.address, 50n);
        await tr.connect(sys.master).eject(runId, n1.address, REASON);
        await tr.connect(sys.providers[0]).registerForRun(runId, n1.address);
        for (const caller of [n1, sys.providers[0]]) {
          await expect(tr.connect(caller).acceptInvite(runId, n1.address, 50n, spare.expiry, spare.signature))
            .to.be.revertedWithCustomError(tr, "TrainingRunsInvalidInviteSignature")
            .withArgs(runId, n1.address, sys.master.address);
        }
        expect(await tr.isMember(runId, n1.address)).to.equal(false);
        expect(await members(sys, runId)).to.not.include(n1.address);
      });

      it("refuses an invite issued before the node left once it registered again, and accepts a fresh one", async () => {
        const sys = await networkHelpers.loadFixture(systemFixture);
        const tr = sys.trainingRuns;
        const [n1] = sys.nodes;
        const runId = await openRun(sys);
        await registeredAndValidated(sys, runId, n1);
        const before = await invite(sys, sys.master, runId, n1.address, 3n);
        await tr.connect(n1).leaveRun(runId, n1.address);
        await tr.connect(n1).registerForRun(runId, n1.address);
        await expect(tr.connect(n1).acceptInvite(runId, n1.address, 3n, before.expiry, before.signature))
          .to.be.revertedWithCustomError(tr, "TrainingRunsInvalidInviteSignature")
          .withArgs(runId, n1.address, sys.master.address);
        const fresh = await invite(sys, sys.master, runId, n1.address, 3n);
        await expect(tr.connect(n1).acceptInvite(runId, n1.address, 3n, fresh.expiry, fresh.signature))
          .to.emit(tr, "NodeJoined").withArgs(runId, n1.address, 3n);
      });

      it("accepts only the current generation: an older or a future one is refused", async () => {
        const sys = await networkHelpers.loadFixture(systemFixture);
        const tr = sys.trainingRuns;
        const [n1] = sys.nodes;
        const runId = await openRun(sys);
        await registeredAndValidated(sys, runId, n1);
        // A future generation is refused too, at generation 0.
        const expiry = await farDeadline(connection);
        const ahead = await inviteFor(sys, sys.master, { runId, node: n1.address, nonce: 1n, expiry, generation: 1n });
        await expect(tr.connect(n1).acceptInvite(runId, n1.address, 1n, expiry, ahead))
          .to.be.revertedWithCustomError(tr, "TrainingRunsInvalidInviteSignature")
          .withArgs(runId, n1.address, sys.master.address);
        await tr.connect(n1).leaveRun(runId, n1.address);
        await tr.connect(n1).registerForRun(runId, n1.address);
        await tr.connect(n1).leaveRun(runId, n1.address);
        await tr.connect(n1).registerForRun(runId, n1.address);
        expect(await tr.inviteGenerationOf(runId, n1.address)).to.equal(2n);
        for (const generation of [0n, 1n, 3n]) {
          const signature = await inviteFor(sys, sys.master, { runId, node: n1.address, nonce: 1n, expiry, generation });
          await expect(tr.connect(n1).acceptInvite(runId, n1.address, 1n, expiry, signature))
            .to.be.revertedWithCustomError(tr, "TrainingRunsInvalidInviteSignature")
            .withArgs(runId, n1.address, sys.master.address);
        }
        const current = await inviteFor(sys, sys.master, { runId, node: n1.address, nonce: 1n, expiry, generation: 2n });
        await expect(tr.connect(n1).acceptInvite(runId, n1.address, 1n, expiry, current))
          .to.emit(tr, "NodeJoined").withArgs(runId, n1.address, 1n);
      });

      it("refuses an invite issued before an ejection even after the node re-registered in the registry and was validated again", async () => {
        const sys = await networkHelpers.loadFixture(systemFixture);
        const tr = sys.trainingRuns;
        const [p1] = sys.providers;
        const [n1] = sys.nodes;
        const runId = await openRun(sys);
        await registeredAndValidated(sys, runId, n1);
        const before = await invite(sys, sys.master, runId, n1.address, 4n);
        await tr.connect(sys.master).eject(runId, n1.address, REASON);
        await sys.registry.connect(p1).deregisterNode(n1.address);
        await registerNode(connection, sys, p1, n1, CPU_NODE);
        await validateNode(sys, n1.address);
        await tr.connect(n1).registerForRun(runId, n1.address);
        await expect(tr.connect(n1).acceptInvite(runId, n1.address, 4n, before.expiry, before.signature))
          .to.be.revertedWithCustomError(tr, "TrainingRunsInvalidInviteSignature")
          .withArgs(runId, n1.address, sys.master.address);
        const fresh = await invite(sys, sys.master, runId, n1.address, 5n);
        await expect(tr.connect(n1).acceptInvite(runId, n1.address, 5n, fresh.expiry, fresh.signature))
          .to.emit(tr, "NodeJoined").withArgs(runId, n1.address, 5n);
      });
    });

    it("refuses a node without a validation (NodeNotValidated)", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const [n1] = sys.nodes;
      await registerNode(connection, sys, sys.providers[0], n1, CPU_NODE);
      const runId = await openRun(sys);
      await sys.trainingRuns.connect(n1).registerForRun(runId, n1.address);
      const inv = await invite(sys, sys.master, runId, n1.address, 1n);
      await expect(sys.trainingRuns.connect(n1).acceptInvite(runId, n1.address, 1n, inv.expiry, inv.signature))
        .to.be.revertedWithCustomError(sys.trainingRuns, "TrainingRunsNodeNotValidated").withArgs(n1.address);
    });

    it("refuses a node whose capabilities changed after its validation (NodeNotValidated)", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const [p1] = sys.providers;
      const [n1] = sys.nodes;
      await registerNode(connection, sys, p1, n1, CPU_NODE);
      await validateNode(sys, n1.address);
      expect(await sys.challengeBoard.isValidated(n1.address)).to.equal(true);
      await sys.registry.connect(p1).updateCapabilities(n1.address, { ...CPU_NODE, storageGB: 200 });
      const runId = await openRun(sys);
      await sys.trainingRuns.connect(n1).registerForRun(runId, n1.address);
      const inv = await invite(sys, sys.master, runId, n1.address, 1n);
      await expect(sys.trainingRuns.connect(n1).acceptInvite(runId, n1.address, 1n, inv.expiry, inv.signature))
        .to.be.revertedWithCustomError(sys.trainingRuns, "TrainingRunsNodeNotValidated").withArgs(n1.address);
    });

    it("refuses a registered node slashed below its minimum before accepting (InsufficientStake)", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const [n1] = sys.nodes;
      const runId = await openRun(sys);
      await registeredAndValidated(sys, runId, n1);
      await sys.registry.connect(sys.slasher).slash(n1.address, 1n, REASON);
      const inv = await invite(sys, sys.master, runId, n1.address, 1n);
      await expect(sys.trainingRuns.connect(n1).acceptInvite(runId, n1.address, 1n, inv.expiry, inv.signature))
        .to.be.revertedWithCustomError(sys.trainingRuns, "TrainingRunsInsufficientStake").withArgs(n1.address);
    });

    it("refuses a member beyond maxMembers (Full) and accepts again once a member left", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      const [n1, n2] = sys.nodes;
      const runId = await openRun(sys, { maxMembers: 1 });
      await registeredAndValidated(sys, runId, n1);
      await registeredAndValidated(sys, runId, n2);
      const inv1 = await invite(sys, sys.master, runId, n1.address, 1n);
      await tr.connect(n1).acceptInvite(runId, n1.address, 1n, inv1.expiry, inv1.signature);
      const inv2 = await invite(sys, sys.master, runId, n2.address, 2n);
      await expect(tr.connect(n2).acceptInvite(runId, n2.address, 2n, inv2.expiry, inv2.signature))
        .to.be.revertedWithCustomError(tr, "TrainingRunsFull").withArgs(runId, 1n);
      expect(await tr.isInviteNonceUsed(runId, 2n)).to.equal(false);
      await tr.connect(n1).leaveRun(runId, n1.address);
      await expect(tr.connect(n2).acceptInvite(runId, n2.address, 2n, inv2.expiry, inv2.signature)).to.emit(tr, "NodeJoined");
    });
  });

  describe("revokeInvite", () => {
    it("lets the master burn an unused nonce and emits InviteRevoked", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const runId = await openRun(sys);
      await expect(sys.trainingRuns.connect(sys.master).revokeInvite(runId, 5n))
        .to.emit(sys.trainingRuns, "InviteRevoked").withArgs(runId, 5n);
      expect(await sys.trainingRuns.isInviteNonceUsed(runId, 5n)).to.equal(true);
      expect(await sys.trainingRuns.isInviteNonceUsed(runId, 6n)).to.equal(false);
    });

    it("refuses the buyer (NotMaster)", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const runId = await openRun(sys);
      await expect(sys.trainingRuns.connect(sys.buyer).revokeInvite(runId, 5n))
        .to.be.revertedWithCustomError(sys.trainingRuns, "TrainingRunsNotMaster").withArgs(runId, sys.buyer.address);
    });

    it("refuses a nonce already revoked or used (InviteNonceUsed)", async () => {
      const { sys, runId } = await networkHelpers.loadFixture(membersFixture);
      const tr = sys.trainingRuns.connect(sys.master);
      await tr.revokeInvite(runId, 5n);
      await expect(tr.revokeInvite(runId, 5n)).to.be.revertedWithCustomError(tr, "TrainingRunsInviteNonceUsed").withArgs(runId, 5n);
      await expect(tr.revokeInvite(runId, 1n)).to.be.revertedWithCustomError(tr, "TrainingRunsInviteNonceUsed").withArgs(runId, 1n);
    });
  });

  describe("leaveRun", () => {
    it("lets a member leave (NodeLeft with Member) and a registered node leave (NodeLeft with Registered)", async () => {
      const { sys, runId } = await networkHelpers.loadFixture(membersFixture);
      const tr = sys.trainingRuns;
      const [n1, , , n4] = sys.nodes;
      await registerNode(connection, sys, sys.providers[0], n4, CPU_NODE);
      await tr.connect(n4).registerForRun(runId, n4.address);
      await expect(tr.connect(n1).leaveRun(runId, n1.address)).to.emit(tr, "NodeLeft").withArgs(runId, n1.address, Participation.Member);
      await expect(tr.connect(n4).leaveRun(runId, n4.address)).to.emit(tr, "NodeLeft").withArgs(runId, n4.address, Participation.Registered);
      expect(await tr.participationOf(runId, n1.address)).to.equal(BigInt(Participation.None));
      expect(await tr.isMember(runId, n1.address)).to.equal(false);
      expect(await runsOf(sys, n1.address)).to.deep.equal([]);
      expect((await tr.getRun(runId)).memberCount).to.equal(2n);
    });

    it("lets the provider take its node out; refuses a stranger (NotNodeOrProvider)", async () => {
      const { sys, runId } = await networkHelpers.loadFixture(membersFixture);
      const tr = sys.trainingRuns;
      const [n1] = sys.nodes;
      await expect(tr.connect(sys.stranger).leaveRun(runId, n1.address))
        .to.be.revertedWithCustomError(tr, "TrainingRunsNotNodeOrProvider").withArgs(n1.address, sys.stranger.address);
      await expect(tr.connect(sys.providers[0]).leaveRun(runId, n1.address))
        .to.emit(tr, "NodeLeft").withArgs(runId, n1.address, Participation.Member);
    });

    it("refuses a node that takes no part in the run (InvalidParticipation)", async () => {
      const { sys, runId } = await networkHelpers.loadFixture(membersFixture);
      const [n1, , , n4] = sys.nodes;
      await expect(sys.trainingRuns.connect(n4).leaveRun(runId, n4.address))
        .to.be.revertedWithCustomError(sys.trainingRuns, "TrainingRunsInvalidParticipation").withArgs(runId, n4.address, Participation.None);
      await sys.trainingRuns.connect(n1).leaveRun(runId, n1.address);
      await expect(sys.trainingRuns.connect(n1).leaveRun(runId, n1.address))
        .to.be.revertedWithCustomError(sys.trainingRuns, "TrainingRunsInvalidParticipation").withArgs(runId, n1.address, Participation.None);
    });

    it("lets a node leave an ended run, even after its deregistration (but then not through its old provider)", async () => {
      const { sys, runId } = await networkHelpers.loadFixture(membersFixture);
      const tr = sys.trainingRuns;
      const [p1] = sys.providers;
      const [n1, n2] = sys.nodes;
      await endRun(sys, runId, RunStatus.Completed);
      expect(await runsOf(sys, n1.address)).to.deep.equal([runId]); // ended runs stay listed until left
      await expect(tr.connect(p1).leaveRun(runId, n2.address)).to.emit(tr, "NodeLeft").withArgs(runId, n2.address, Participation.Member);
      await sys.registry.connect(p1).deregisterNode(n1.address);
      await expect(tr.connect(p1).leaveRun(runId, n1.address))
        .to.be.revertedWithCustomError(tr, "TrainingRunsNotNodeOrProvider").withArgs(n1.address, p1.address);
      await expect(tr.connect(n1).leaveRun(runId, n1.address)).to.emit(tr, "NodeLeft").withArgs(runId, n1.address, Participation.Member);
      expect(await runsOf(sys, n1.address)).to.deep.equal([]);
    });
  });

  describe("eject", () => {
    it("lets the master remove a member or a registered node and emits NodeEjected with the reason", async () => {
      const { sys, runId } = await networkHelpers.loadFixture(membersFixture);
      const tr = sys.trainingRuns;
      const [n1, , , n4] = sys.nodes;
      await registerNode(connection, sys, sys.providers[0], n4, CPU_NODE);
      await tr.connect(n4).registerForRun(runId, n4.address);
      await expect(tr.connect(sys.master).eject(runId, n1.address, REASON))
        .to.emit(tr, "NodeEjected").withArgs(runId, n1.address, Participation.Member, REASON);
      await expect(tr.connect(sys.master).eject(runId, n4.address, ethers.ZeroHash))
        .to.emit(tr, "NodeEjected").withArgs(runId, n4.address, Participation.Registered, ethers.ZeroHash);
      expect(await tr.participationOf(runId, n1.address)).to.equal(BigInt(Participation.None));
      expect(await tr.activeRunCount(n1.address)).to.equal(0n);
    });

    it("refuses the buyer (NotMaster) and a node that takes no part (InvalidParticipation)", async () => {
      const { sys, runId } = await networkHelpers.loadFixture(membersFixture);
      const tr = sys.trainingRuns;
      const [n1, , , n4] = sys.nodes;
      await expect(tr.connect(sys.buyer).eject(runId, n1.address, REASON))
        .to.be.revertedWithCustomError(tr, "TrainingRunsNotMaster").withArgs(runId, sys.buyer.address);
      await expect(tr.connect(sys.master).eject(runId, n4.address, REASON))
        .to.be.revertedWithCustomError(tr, "TrainingRunsInvalidParticipation").withArgs(runId, n4.address, Participation.None);
    });
  });

  describe("inviteGenerationOf", () => {
    it("is 0 for a node never in the run and stays 0 while it registers and joins", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      const [n1] = sys.nodes;
      expect(await tr.inviteGenerationOf(99n, n1.address)).to.equal(0n); // unknown run: no revert
      const runId = await openRun(sys);
      expect(await tr.inviteGenerationOf(runId, n1.address)).to.equal(0n);
      await registerNode(connection, sys, sys.providers[0], n1, CPU_NODE);
      await joinRun(connection, sys, runId, n1, 1n);
      expect(await tr.inviteGenerationOf(runId, n1.address)).to.equal(0n);
    });

    it("increments at every leave (as a member or registered) and every ejection, for that run and node only", async () => {
      const { sys, runId } = await networkHelpers.loadFixture(membersFixture);
      const tr = sys.trainingRuns;
      const [n1, n2, n3] = sys.nodes;
      const other = await openRun(sys);
      await tr.connect(n1).registerForRun(other, n1.address);

      await tr.connect(n1).leaveRun(runId, n1.address); // member leaves
      expect(await tr.inviteGenerationOf(runId, n1.address)).to.equal(1n);
      await tr.connect(n1).registerForRun(runId, n1.address);
      expect(await tr.inviteGenerationOf(runId, n1.address)).to.equal(1n);
      await tr.connect(sys.master).eject(runId, n1.address, REASON); // registered node ejected
      expect(await tr.inviteGenerationOf(runId, n1.address)).to.equal(2n);
      await tr.connect(n1).registerForRun(runId, n1.address);
      await tr.connect(sys.providers[0]).leaveRun(runId, n1.address); // registered node taken out by its provider
      expect(await tr.inviteGenerationOf(runId, n1.address)).to.equal(3n);
      await tr.connect(sys.master).eject(runId, n2.address, REASON); // member ejected
      expect(await tr.inviteGenerationOf(runId, n2.address)).to.equal(1n);

      expect(await tr.inviteGenerationOf(other, n1.address)).to.equal(0n);
      expect(await tr.inviteGenerationOf(runId, n3.address)).to.equal(0n);
      expect(await tr.isMember(runId, n3.address)).to.equal(true);
    });

    it("increments when the node leaves an ended run", async () => {
      const { sys, runId } = await networkHelpers.loadFixture(membersFixture);
      const [n1] = sys.nodes;
      await endRun(sys, runId, RunStatus.Completed);
      await sys.trainingRuns.connect(n1).leaveRun(runId, n1.address);
      expect(await sys.trainingRuns.inviteGenerationOf(runId, n1.address)).to.equal(1n);
    });
  });

  describe("membership bookkeeping", () => {
    it("keeps membersOf consistent when a middle member leaves (swap-and-pop); the moved member can still leave", async () => {
      const { sys, runId } = await networkHelpers.loadFixture(membersFixture);
      const tr = sys.trainingRuns;
      const [n1, n2, n3] = sys.nodes;
      expect(await members(sys, runId)).to.deep.equal([n1.address, n2.address, n3.address]);
      await tr.connect(n2).leaveRun(runId, n2.address);
      expect(await members(sys, runId)).to.deep.equal([n1.address, n3.address]);
      await tr.connect(n3).leaveRun(runId, n3.address); // n3 was moved to index 1
      expect(await members(sys, runId)).to.deep.equal([n1.address]);
      await tr.connect(n1).leaveRun(runId, n1.address);
      expect(await members(sys, runId)).to.deep.equal([]);
      expect((await tr.getRun(runId)).memberCount).to.equal(0n);
    });

    it("keeps membersOf consistent when the master ejects a middle member; the moved member can be ejected too", async () => {
      const { sys, runId } = await networkHelpers.loadFixture(membersFixture);
      const tr = sys.trainingRuns.connect(sys.master);
      const [n1, n2, n3] = sys.nodes;
      await tr.eject(runId, n1.address, REASON);
      expect(await members(sys, runId)).to.deep.equal([n3.address, n2.address]);
      await tr.eject(runId, n3.address, REASON);
      expect(await members(sys, runId)).to.deep.equal([n2.address]);
      expect(await sys.trainingRuns.isMember(runId, n2.address)).to.equal(true);
      expect(await sys.trainingRuns.isMember(runId, n3.address)).to.equal(false);
    });

    it("follows registrations, leaves, ejections and run ends in runsOf and activeRunCount", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      const [n1] = sys.nodes;
      await registerNode(connection, sys, sys.providers[0], n1, CPU_NODE);
      const [a, b, c, d] = [await openRun(sys), await openRun(sys), await openRun(sys), await openRun(sys)];
      for (const id of [a, b, c, d]) await tr.connect(n1).registerForRun(id, n1.address);
      expect(await runsOf(sys, n1.address)).to.deep.equal([a, b, c, d]);
      expect(await tr.activeRunCount(n1.address)).to.equal(4n);
      await tr.connect(n1).leaveRun(a, n1.address);
      expect(await runsOf(sys, n1.address)).to.deep.equal([d, b, c]);
      await tr.connect(sys.master).eject(d, n1.address, REASON); // d was moved to index 0
      expect(await runsOf(sys, n1.address)).to.deep.equal([c, b]);
      await endRun(sys, b, RunStatus.Cancelled);
      expect(await runsOf(sys, n1.address)).to.deep.equal([c, b]);
      expect(await tr.activeRunCount(n1.address)).to.equal(1n);
      await endRun(sys, c, RunStatus.Completed);
      expect(await tr.activeRunCount(n1.address)).to.equal(0n);
      await tr.connect(n1).leaveRun(b, n1.address);
      await tr.connect(n1).leaveRun(c, n1.address);
      expect(await runsOf(sys, n1.address)).to.deep.equal([]);
    });

    it("pages membersOf: offset, limit, offset past the end, limit 0, limit MaxUint256 from offset 0", async () => {
      const { sys, runId } = await networkHelpers.loadFixture(membersFixture);
      const tr = sys.trainingRuns;
      const [n1, n2, n3] = sys.nodes.map((n) => n.address);
      expect([...(await tr.membersOf(runId, 0, ethers.MaxUint256))]).to.deep.equal([n1, n2, n3]);
      expect([...(await tr.membersOf(runId, 0, 2))]).to.deep.equal([n1, n2]);
      expect([...(await tr.membersOf(runId, 2, 2))]).to.deep.equal([n3]);
      expect([...(await tr.membersOf(runId, 1, 1))]).to.deep.equal([n2]);
      expect([...(await tr.membersOf(runId, 0, 0))]).to.deep.equal([]);
      expect([...(await tr.membersOf(runId, 3, 1))]).to.deep.equal([]);
      expect([...(await tr.membersOf(runId, 100, 10))]).to.deep.equal([]);
      expect([...(await tr.membersOf(runId, ethers.MaxUint256, ethers.MaxUint256))]).to.deep.equal([]);
      expect([...(await tr.membersOf(99n, 0, 10))]).to.deep.equal([]); // unknown run: no members, no revert
    });

    it("pages membersOf with limit MaxUint256 from a non-zero offset (returns the rest, does not overflow)", async () => {
      // The contract guards with `end < offset`, which shows the intent to clamp an overflowing
      // offset + limit; but the addition is checked arithmetic, so it panics (0x11) before the guard.
      const { sys, runId } = await networkHelpers.loadFixture(membersFixture);
      const [, n2, n3] = sys.nodes.map((n) => n.address);
      expect([...(await sys.trainingRuns.membersOf(runId, 1, ethers.MaxUint256))]).to.deep.equal([n2, n3]);
    });
  });

  describe("registry deregistration guard", () => {
    it("refuses deregistration while activeRunCount > 0 (MinerRegistryNodeInActiveRuns) and allows it after leaving", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const [p1] = sys.providers;
      const [n1] = sys.nodes;
      await registerNode(connection, sys, p1, n1, CPU_NODE);
      const a = await openRun(sys);
      const b = await openRun(sys);
      await sys.trainingRuns.connect(n1).registerForRun(a, n1.address);
      await joinRun(connection, sys, b, n1, 1n);
      await expect(sys.registry.connect(p1).deregisterNode(n1.address))
        .to.be.revertedWithCustomError(sys.registry, "MinerRegistryNodeInActiveRuns").withArgs(n1.address, 2n);
      // Capabilities are frozen for the same reason.
      await expect(sys.registry.connect(p1).updateCapabilities(n1.address, CPU_NODE))
        .to.be.revertedWithCustomError(sys.registry, "MinerRegistryNodeInActiveRuns").withArgs(n1.address, 2n);
      await sys.trainingRuns.connect(n1).leaveRun(a, n1.address);
      await expect(sys.registry.connect(p1).deregisterNode(n1.address))
        .to.be.revertedWithCustomError(sys.registry, "MinerRegistryNodeInActiveRuns").withArgs(n1.address, 1n);
      await sys.trainingRuns.connect(n1).leaveRun(b, n1.address);
      await expect(sys.registry.connect(p1).deregisterNode(n1.address)).to.emit(sys.registry, "NodeDeregistered");
    });

    it("allows deregistration once the node's runs ended, without leaving them", async () => {
      const { sys, runId } = await networkHelpers.loadFixture(membersFixture);
      const [p1] = sys.providers;
      const [n1] = sys.nodes;
      await expect(sys.registry.connect(p1).deregisterNode(n1.address))
        .to.be.revertedWithCustomError(sys.registry, "MinerRegistryNodeInActiveRuns").withArgs(n1.address, 1n);
      await endRun(sys, runId, RunStatus.Cancelled);
      await expect(sys.registry.connect(p1).deregisterNode(n1.address)).to.emit(sys.registry, "NodeDeregistered");
    });
  });

  describe("reserveEscrow / payFromEscrow / releaseEscrow", () => {
    it("are restricted to ESCROW_ROLE (AccessControlUnauthorizedAccount)", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      const runId = await createRun(sys, { budget: 100n });
      await tr.connect(sys.escrowAgent).reserveEscrow(runId, 10n);
      const role = await tr.ESCROW_ROLE();
      for (const caller of [sys.stranger, sys.buyer, sys.admin]) {
        for (const call of [
          tr.connect(caller).reserveEscrow(runId, 1n),
          tr.connect(caller).payFromEscrow(runId, caller.address, 1n),
          tr.connect(caller).releaseEscrow(runId, 1n),
        ]) {
          await expect(call).to.be.revertedWithCustomError(tr, "AccessControlUnauthorizedAccount").withArgs(caller.address, role);
        }
      }
    });

    it("reserve moves available to reserved and emits EscrowReserved; refuses 0 and more than available", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns.connect(sys.escrowAgent);
      const runId = await createRun(sys, { budget: 100n });
      await expect(tr.reserveEscrow(runId, 0n)).to.be.revertedWithCustomError(tr, "TrainingRunsZeroAmount");
      await expect(tr.reserveEscrow(runId, 101n))
        .to.be.revertedWithCustomError(tr, "TrainingRunsInsufficientEscrow").withArgs(runId, 100n, 101n);
      await expect(tr.reserveEscrow(runId, 60n)).to.emit(tr, "EscrowReserved").withArgs(runId, sys.escrowAgent.address, 60n);
      await expect(tr.reserveEscrow(runId, 41n))
        .to.be.revertedWithCustomError(tr, "TrainingRunsInsufficientEscrow").withArgs(runId, 40n, 41n);
      await tr.reserveEscrow(runId, 40n);
      await expectEscrow(sys, runId, { deposited: 100n, paid: 0n, refunded: 0n, reserved: 100n, available: 0n });
    });

    it("pay sends reserved escrow to the payee; refuses a zero payee, 0 and more than reserved", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns.connect(sys.escrowAgent);
      const [n1] = sys.nodes;
      const runId = await createRun(sys, { budget: 100n });
      await tr.reserveEscrow(runId, 30n);
      await expect(tr.payFromEscrow(runId, ethers.ZeroAddress, 1n)).to.be.revertedWithCustomError(tr, "TrainingRunsZeroAddress");
      await expect(tr.payFromEscrow(runId, n1.address, 0n)).to.be.revertedWithCustomError(tr, "TrainingRunsZeroAmount");
      await expect(tr.payFromEscrow(runId, n1.address, 31n))
        .to.be.revertedWithCustomError(tr, "TrainingRunsInsufficientEscrow").withArgs(runId, 30n, 31n);
      const tx = tr.payFromEscrow(runId, n1.address, 30n);
      await expect(tx).to.emit(tr, "EscrowPaid").withArgs(runId, n1.address, 30n);
      await expect(tx).to.changeTokenBalances(ethers, sys.token, [tr, n1, sys.buyer], [-30n, 30n, 0n]);
      await expectEscrow(sys, runId, { deposited: 100n, paid: 30n, refunded: 0n, reserved: 0n, available: 70n });
    });

    it("release returns reserved escrow to available while open (refundedToBuyer false); refuses 0 and more than reserved", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns.connect(sys.escrowAgent);
      const runId = await createRun(sys, { budget: 100n });
      await tr.reserveEscrow(runId, 30n);
      await expect(tr.releaseEscrow(runId, 0n)).to.be.revertedWithCustomError(tr, "TrainingRunsZeroAmount");
      await expect(tr.releaseEscrow(runId, 31n))
        .to.be.revertedWithCustomError(tr, "TrainingRunsInsufficientEscrow").withArgs(runId, 30n, 31n);
      const tx = tr.releaseEscrow(runId, 10n);
      await expect(tx).to.emit(tr, "EscrowReleased").withArgs(runId, 10n, false);
      await expect(tx).to.changeTokenBalances(ethers, sys.token, [tr, sys.buyer], [0n, 0n]);
      await expectEscrow(sys, runId, { deposited: 100n, paid: 0n, refunded: 0n, reserved: 20n, available: 80n });
    });

    it("release after the run ended refunds the buyer (refundedToBuyer true)", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns.connect(sys.escrowAgent);
      const runId = await createRun(sys, { budget: 100n });
      await tr.reserveEscrow(runId, 30n);
      await endRun(sys, runId, RunStatus.Cancelled);
      const tx = tr.releaseEscrow(runId, 30n);
      await expect(tx).to.emit(tr, "EscrowReleased").withArgs(runId, 30n, true);
      await expect(tx).to.changeTokenBalances(ethers, sys.token, [tr, sys.buyer], [-30n, 30n]);
      await expectEscrow(sys, runId, { deposited: 100n, paid: 0n, refunded: 100n, reserved: 0n, available: 0n });
    });
  });

  describe("escrow accounting over a run's life", () => {
    it("keeps deposited = paid + refunded + reserved + available and exact balances at every step", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      const agent = tr.connect(sys.escrowAgent);
      const [n1, n2] = sys.nodes;
      const T = TOKEN;

      // Created with a budget of 1000.
      const create = tr.connect(sys.buyer).createRun(runParams(sys, { budget: 1_000n * T }));
      await expect(create).to.changeTokenBalances(ethers, sys.token, [sys.buyer, tr], [-1_000n * T, 1_000n * T]);
      const runId = await tr.runCount();
      await expectEscrow(sys, runId, { deposited: 1_000n * T, paid: 0n, refunded: 0n, reserved: 0n, available: 1_000n * T });

      // A third party adds 500.
      await expect(tr.connect(sys.stranger).fundRun(runId, 500n * T))
        .to.changeTokenBalances(ethers, sys.token, [sys.stranger, tr], [-500n * T, 500n * T]);
      await expectEscrow(sys, runId, { deposited: 1_500n * T, paid: 0n, refunded: 0n, reserved: 0n, available: 1_500n * T });

      // Work recorded: 600 reserved; 200 paid to n1; 100 released while open.
      await tr.connect(sys.buyer).startRun(runId);
      await agent.reserveEscrow(runId, 600n * T);
      await expectEscrow(sys, runId, { deposited: 1_500n * T, paid: 0n, refunded: 0n, reserved: 600n * T, available: 900n * T });
      await expect(agent.payFromEscrow(runId, n1.address, 200n * T))
        .to.changeTokenBalances(ethers, sys.token, [tr, n1], [-200n * T, 200n * T]);
      await expectEscrow(sys, runId, { deposited: 1_500n * T, paid: 200n * T, refunded: 0n, reserved: 400n * T, available: 900n * T });
      await expect(agent.releaseEscrow(runId, 100n * T)).to.emit(tr, "EscrowReleased").withArgs(runId, 100n * T, false);
      await expectEscrow(sys, runId, { deposited: 1_500n * T, paid: 200n * T, refunded: 0n, reserved: 300n * T, available: 1_000n * T });

      // Completion refunds only the available 1000 (to the buyer, the third party's share included); 300 stay reserved.
      const complete = tr.connect(sys.buyer).completeRun(runId);
      await expect(complete).to.emit(tr, "RunCompleted").withArgs(runId, sys.buyer.address, 1_000n * T);
      await expect(complete).to.changeTokenBalances(ethers, sys.token, [tr, sys.buyer, sys.stranger], [-1_000n * T, 1_000n * T, 0n]);
      await expectEscrow(sys, runId, { deposited: 1_500n * T, paid: 200n * T, refunded: 1_000n * T, reserved: 300n * T, available: 0n });
      await expect(agent.reserveEscrow(runId, 1n))
        .to.be.revertedWithCustomError(tr, "TrainingRunsInvalidStatus").withArgs(runId, RunStatus.Completed);

      // After the end: a release refunds the buyer, a payment from reserved still works.
      const release = agent.releaseEscrow(runId, 50n * T);
      await expect(release).to.emit(tr, "EscrowReleased").withArgs(runId, 50n * T, true);
      await expect(release).to.changeTokenBalances(ethers, sys.token, [tr, sys.buyer], [-50n * T, 50n * T]);
      await expectEscrow(sys, runId, { deposited: 1_500n * T, paid: 200n * T, refunded: 1_050n * T, reserved: 250n * T, available: 0n });
      const pay = agent.payFromEscrow(runId, n2.address, 250n * T);
      await expect(pay).to.emit(tr, "EscrowPaid").withArgs(runId, n2.address, 250n * T);
      await expect(pay).to.changeTokenBalances(ethers, sys.token, [tr, n2], [-250n * T, 250n * T]);
      await expectEscrow(sys, runId, { deposited: 1_500n * T, paid: 450n * T, refunded: 1_050n * T, reserved: 0n, available: 0n });
      await expect(agent.payFromEscrow(runId, n2.address, 1n))
        .to.be.revertedWithCustomError(tr, "TrainingRunsInsufficientEscrow").withArgs(runId, 0n, 1n);
    });

    it("keeps the escrows of two runs apart", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const agent = sys.trainingRuns.connect(sys.escrowAgent);
      const a = await createRun(sys, { budget: 100n });
      const b = await createRun(sys, { budget: 50n });
      await expect(agent.reserveEscrow(b, 51n))
        .to.be.revertedWithCustomError(agent, "TrainingRunsInsufficientEscrow").withArgs(b, 50n, 51n);
      await agent.reserveEscrow(a, 100n);
      await expect(agent.payFromEscrow(b, sys.nodes[0].address, 1n))
        .to.be.revertedWithCustomError(agent, "TrainingRunsInsufficientEscrow").withArgs(b, 0n, 1n);
      await expect(sys.trainingRuns.connect(sys.buyer).cancelRun(b)).to.emit(sys.trainingRuns, "RunCancelled").withArgs(b, 50n);
      expect((await sys.trainingRuns.escrowOf(a)).reserved).to.equal(100n);
    });
  });

  describe("views", () => {
    it("isMaster is false for address(0), even for an unknown run, and for non-masters", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      expect(await tr.isMaster(99n, ethers.ZeroAddress)).to.equal(false);
      expect(await tr.isMaster(0n, ethers.ZeroAddress)).to.equal(false);
      const runId = await createRun(sys);
      expect(await tr.isMaster(runId, ethers.ZeroAddress)).to.equal(false);
      expect(await tr.isMaster(runId, sys.buyer.address)).to.equal(false);
      expect(await tr.isMaster(runId, sys.master.address)).to.equal(true);
      expect(await tr.isMaster(runId + 1n, sys.master.address)).to.equal(false);
    });

    it("isMember, participationOf, runsOf and activeRunCount are empty for unknown runs and nodes", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      expect(await tr.isMember(99n, sys.nodes[0].address)).to.equal(false);
      expect(await tr.participationOf(99n, sys.nodes[0].address)).to.equal(BigInt(Participation.None));
      expect(await runsOf(sys, sys.nodes[0].address)).to.deep.equal([]);
      expect(await tr.activeRunCount(sys.nodes[0].address)).to.equal(0n);
      expect(await tr.isInviteNonceUsed(99n, 0n)).to.equal(false);
    });

    it("inviteDigest equals the EIP-712 hash of the Invite (generation 0 for a node never in the run) in this contract's domain", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const tr = sys.trainingRuns;
      const domain = { ...RUNS_DOMAIN, chainId: sys.chainId, verifyingContract: await tr.getAddress() };
      const value = { runId: 7n, node: sys.nodes[0].address, generation: 0n, nonce: 3n, expiry: 1_700_000_000n };
      expect(await tr.inviteDigest(value.runId, value.node, value.nonce, value.expiry))
        .to.equal(ethers.TypedDataEncoder.hash(domain, INVITE_TYPES, value));
      expect(await tr.domainSeparator()).to.equal(ethers.TypedDataEncoder.hashDomain(domain));
      expect(await tr.INVITE_TYPEHASH()).to.equal(
        ethers.id("Invite(uint256 runId,address node,uint256 generation,uint256 nonce,uint256 expiry)"),
      );
      expect(ethers.TypedDataEncoder.from(INVITE_TYPES).encodeType("Invite")).to.equal(
        "Invite(uint256 runId,address node,uint256 generation,uint256 nonce,uint256 expiry)",
      );
      const d = await tr.eip712Domain();
      expect([d.name, d.version, d.chainId, d.verifyingContract]).to.deep.equal([
        RUNS_DOMAIN.name, RUNS_DOMAIN.version, sys.chainId, await tr.getAddress(),
      ]);
    });

    it("inviteDigest uses the node's current generation, which changes after a leave", async () => {
      const { sys, runId } = await networkHelpers.loadFixture(membersFixture);
      const tr = sys.trainingRuns;
      const [n1] = sys.nodes;
      const domain = { ...RUNS_DOMAIN, chainId: sys.chainId, verifyingContract: await tr.getAddress() };
      const value = { runId, node: n1.address, nonce: 9n, expiry: 1_700_000_000n };
      const digest = () => tr.inviteDigest(runId, n1.address, value.nonce, value.expiry);
      const atGeneration0 = ethers.TypedDataEncoder.hash(domain, INVITE_TYPES, { ...value, generation: 0n });
      expect(await digest()).to.equal(atGeneration0);
      await tr.connect(n1).leaveRun(runId, n1.address);
      const atGeneration1 = ethers.TypedDataEncoder.hash(domain, INVITE_TYPES, { ...value, generation: 1n });
      expect(await digest()).to.equal(atGeneration1);
      expect(atGeneration1).to.not.equal(atGeneration0);
    });

    it("runCount counts every run created, cancelled ones included", async () => {
      const sys = await networkHelpers.loadFixture(systemFixture);
      const a = await createRun(sys);
      await sys.trainingRuns.connect(sys.buyer).cancelRun(a);
      await createRun(sys);
      expect(await sys.trainingRuns.runCount()).to.equal(2n);
    });
  });

  describe("UnknownRun", () => {
    type Call = (sys: System, id: bigint) => Promise<unknown>;
    const calls: [string, Call][] = [
      ["startRun", (s, id) => s.trainingRuns.connect(s.buyer).startRun(id)],
      ["completeRun", (s, id) => s.trainingRuns.connect(s.buyer).completeRun(id)],
      ["cancelRun", (s, id) => s.trainingRuns.connect(s.buyer).cancelRun(id)],
      ["fundRun", (s, id) => s.trainingRuns.connect(s.buyer).fundRun(id, 1n)],
      ["setMaster", (s, id) => s.trainingRuns.connect(s.buyer).setMaster(id, s.stranger.address)],
      ["setDiscoveryURI", (s, id) => s.trainingRuns.connect(s.buyer).setDiscoveryURI(id, "https://x")],
      ["registerForRun", (s, id) => s.trainingRuns.connect(s.nodes[0]).registerForRun(id, s.nodes[0].address)],
      ["acceptInvite", (s, id) => s.trainingRuns.connect(s.nodes[0]).acceptInvite(id, s.nodes[0].address, 1n, 0n, "0x")],
      ["revokeInvite", (s, id) => s.trainingRuns.connect(s.master).revokeInvite(id, 1n)],
      ["leaveRun", (s, id) => s.trainingRuns.connect(s.nodes[0]).leaveRun(id, s.nodes[0].address)],
      ["eject", (s, id) => s.trainingRuns.connect(s.master).eject(id, s.nodes[0].address, REASON)],
      ["reserveEscrow", (s, id) => s.trainingRuns.connect(s.escrowAgent).reserveEscrow(id, 1n)],
      ["payFromEscrow", (s, id) => s.trainingRuns.connect(s.escrowAgent).payFromEscrow(id, s.buyer.address, 1n)],
      ["releaseEscrow", (s, id) => s.trainingRuns.connect(s.escrowAgent).releaseEscrow(id, 1n)],
      ["getRun", (s, id) => s.trainingRuns.getRun(id)],
      ["requirementsOf", (s, id) => s.trainingRuns.requirementsOf(id)],
      ["escrowOf", (s, id) => s.trainingRuns.escrowOf(id)],
    ];
    for (const [name, call] of calls) {
      it(`${name} reverts for run 0 and for an id past runCount`, async () => {
        const sys = await networkHelpers.loadFixture(systemFixture);
        await registerNode(connection, sys, sys.providers[0], sys.nodes[0], CPU_NODE);
        const existing = await openRun(sys); // run 1 exists; 0 and 2 do not
        for (const id of [0n, existing + 1n]) {
          await expect(call(sys, id)).to.be.revertedWithCustomError(sys.trainingRuns, "TrainingRunsUnknownRun").withArgs(id);
        }
      });
    }
  });
});
