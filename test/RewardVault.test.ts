/**
 * RewardVault: the epoch emission (exponential decay under the token's supply cap), rewards minted within
 * it, bounties paid from slashed stake, and the unpaid rest of each epoch returned after its Claim phase.
 *
 * The system comes from the shared Ignition fixture (epochs of 1 day, dispute window 6 h, claim window
 * 7 days; emission 10 000 tokens in epoch 1, four-year half-life with daily epochs). `payer` holds
 * PAYER_ROLE (Settlement and the TaskLedger in the real system). Cap tests deploy their own token with a
 * small cap and a vault on it.
 */
import { expect } from "chai";
import { network } from "hardhat";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import type { ComputeToken, RewardVault } from "../typechain-types/index.js";
import {
  CPU_NODE,
  DAY,
  EPOCH_PARAMETERS,
  INITIAL_EMISSION,
  RETENTION_WAD,
  type System,
  deploySystem,
  registerNode,
} from "./helpers/system.js";
import { TOKEN } from "../scripts/lib/protocol.js";

const connection = await network.create();
const { ethers, networkHelpers } = connection;
const { time } = networkHelpers;

const WAD = 10n ** 18n;
const MAX_UINT64 = 2n ** 64n - 1n;
/** Skips gas estimation: the transaction is mined (and reverts) in the block stamped as the test set it. */
const MINED = { gasLimit: 1_000_000 };
const REASON = ethers.id("test slash");

/** The contract's algorithm in bigint: `initial × r^(e-1)` by squaring, each product rounded down. */
function scheduled(epoch: bigint, initial = INITIAL_EMISSION, retention = RETENTION_WAD): bigint {
  let factor = WAD;
  let base = retention;
  for (let n = epoch - 1n; n > 0n; n >>= 1n) {
    if (n & 1n) factor = (factor * base) / WAD;
    base = (base * base) / WAD;
  }
  return (initial * factor) / WAD;
}

/** The exact `initial × r^(e-1) / 1e18^(e-1)`, rounded down (big integers, no intermediate rounding). */
function exactEmission(epoch: bigint, initial = INITIAL_EMISSION, retention = RETENTION_WAD): bigint {
  return (initial * retention ** (epoch - 1n)) / WAD ** (epoch - 1n);
}

async function vaultFixture() {
  const sys = await deploySystem(connection);
  const signers = await ethers.getSigners();
  const payer = signers[18];
  const vault = sys.rewardVault;
  const PAYER_ROLE = await vault.PAYER_ROLE();
  await vault.connect(sys.admin).grantRole(PAYER_ROLE, payer.address);
  const genesis = await sys.epochManager.genesis();
  const startOf = (epoch: bigint) => genesis + (epoch - 1n) * EPOCH_PARAMETERS.epochLength;
  const disputeEndOf = (epoch: bigint) => startOf(epoch) + EPOCH_PARAMETERS.epochLength + EPOCH_PARAMETERS.disputeWindow;
  const claimEndOf = (epoch: bigint) => disputeEndOf(epoch) + EPOCH_PARAMETERS.claimWindow;
  return { sys, vault, payer, PAYER_ROLE, startOf, disputeEndOf, claimEndOf };
}

/** A token of its own with `supply` minted and cap `cap`, and a vault on it (holding MINTER_ROLE). */
async function cappedVault(sys: System, supply: bigint, cap: bigint, payer: HardhatEthersSigner) {
  const token = (await ethers.deployContract("ComputeToken", [
    sys.admin.address,
    sys.admin.address,
    supply,
    cap,
  ])) as unknown as ComputeToken;
  const vault = (await ethers.deployContract("RewardVault", [
    sys.admin.address,
    await token.getAddress(),
    await sys.epochManager.getAddress(),
    INITIAL_EMISSION,
    RETENTION_WAD,
  ])) as unknown as RewardVault;
  await token.connect(sys.admin).grantRole(await token.MINTER_ROLE(), await vault.getAddress());
  await vault.connect(sys.admin).grantRole(await vault.PAYER_ROLE(), payer.address);
  return { token, vault };
}

/** The EpochEmission struct as a plain object. */
/** Pays exactly `amount` of `epoch`'s emission (`emission`, the schedule by default): the share `amount` out of it. */
function payAmount(vault: RewardVault, payer: HardhatEthersSigner, epoch: bigint, to: string, amount: bigint, emission = scheduled(epoch)) {
  return vault.connect(payer).payShare(epoch, to, amount, emission);
}

async function emissionOf(vault: RewardVault, epoch: bigint) {
  const { fixed_, returned, emission, paid } = await vault.emissionOf(epoch);
  return { fixed_, returned, emission, paid };
}

describe("RewardVault", () => {
  describe("constructor", () => {
    it("stores the token, the clock, the emission schedule and the token's cap, and grants the admin role", async () => {
      const { sys, vault, PAYER_ROLE } = await networkHelpers.loadFixture(vaultFixture);
      expect(await vault.token()).to.equal(await sys.token.getAddress());
      expect(await vault.epochs()).to.equal(await sys.epochManager.getAddress());
      expect(await vault.initialEmission()).to.equal(INITIAL_EMISSION);
      expect(await vault.retentionWad()).to.equal(RETENTION_WAD);
      expect(await vault.supplyCap()).to.equal(await sys.token.cap());
      expect(await vault.outstanding()).to.equal(0n);
      expect(await vault.hasRole(await vault.DEFAULT_ADMIN_ROLE(), sys.admin.address)).to.equal(true);
      expect(PAYER_ROLE).to.equal(ethers.id("PAYER_ROLE"));
    });

    it("is wired by its Ignition module: the token's minter and the registry's treasury", async () => {
      const { sys, vault } = await networkHelpers.loadFixture(vaultFixture);
      const address = await vault.getAddress();
      expect(await sys.token.hasRole(await sys.token.MINTER_ROLE(), address)).to.equal(true);
      expect(await sys.registry.treasury()).to.equal(address);
    });

    it("refuses a zero admin, token or clock", async () => {
      const { sys, vault } = await networkHelpers.loadFixture(vaultFixture);
      const token = await sys.token.getAddress();
      const epochs = await sys.epochManager.getAddress();
      const zero = ethers.ZeroAddress;
      for (const args of [
        [zero, token, epochs],
        [sys.admin.address, zero, epochs],
        [sys.admin.address, token, zero],
      ]) {
        await expect(
          ethers.deployContract("RewardVault", [...args, INITIAL_EMISSION, RETENTION_WAD]),
        ).to.be.revertedWithCustomError(vault, "RewardVaultZeroAddress");
      }
    });

    it("refuses a retention of zero or above 1e18 (a growing emission), accepts exactly 1e18", async () => {
      const { sys, vault } = await networkHelpers.loadFixture(vaultFixture);
      const args = [sys.admin.address, await sys.token.getAddress(), await sys.epochManager.getAddress(), INITIAL_EMISSION];
      for (const retention of [0n, WAD + 1n]) {
        await expect(ethers.deployContract("RewardVault", [...args, retention]))
          .to.be.revertedWithCustomError(vault, "RewardVaultInvalidRetention")
          .withArgs(retention);
      }
      const flat = (await ethers.deployContract("RewardVault", [...args, WAD])) as unknown as RewardVault;
      expect(await flat.scheduledEmission(1000n)).to.equal(INITIAL_EMISSION);
    });
  });

  describe("scheduledEmission", () => {
    it("is the initial emission in epoch 1 and follows the bigint reference exactly", async () => {
      const { vault } = await networkHelpers.loadFixture(vaultFixture);
      expect(await vault.scheduledEmission(1n)).to.equal(INITIAL_EMISSION);
      for (const epoch of [2n, 3n, 4n, 10n, 100n, 365n, 1460n, 1461n, 2922n, 10_000n, 123_456_789n, MAX_UINT64]) {
        expect(await vault.scheduledEmission(epoch), `epoch ${epoch}`).to.equal(scheduled(epoch));
      }
      expect(await vault.scheduledEmission(2n)).to.equal((INITIAL_EMISSION * RETENTION_WAD) / WAD);
    });

    it("stays within a relative e·1e-18 of the exact power: squaring's rounding loses nothing that matters", async () => {
      const { vault } = await networkHelpers.loadFixture(vaultFixture);
      for (const epoch of [2n, 7n, 100n, 365n, 1461n, 4000n]) {
        const exact = exactEmission(epoch);
        const got = await vault.scheduledEmission(epoch);
        expect(got <= exact, `epoch ${epoch} rounds down`).to.equal(true);
        // A rounding of 1e-18 in a squared base grows with the power it is raised to: at most e·1e-18 overall,
        // a few millionths of a token per epoch.
        expect((exact - got) * WAD < epoch * exact, `epoch ${epoch}: ${exact} vs ${got}`).to.equal(true);
      }
    });

    it("halves every 1460 epochs (four years of daily epochs) and never grows", async () => {
      const { vault } = await networkHelpers.loadFixture(vaultFixture);
      const half = await vault.scheduledEmission(1461n);
      const quarter = await vault.scheduledEmission(2921n);
      // 2^(-1/1460) is rounded to 18 digits: the half is exact to 1e-15.
      const tolerance = INITIAL_EMISSION / 10n ** 15n;
      expect(half - INITIAL_EMISSION / 2n).to.be.within(-tolerance, tolerance);
      expect(quarter - INITIAL_EMISSION / 4n).to.be.within(-tolerance, tolerance);
      let previous = INITIAL_EMISSION;
      for (const epoch of [2n, 3n, 50n, 51n, 1000n, 1001n, 100_000n]) {
        const value = await vault.scheduledEmission(epoch);
        expect(value < previous, `epoch ${epoch} below the one before`).to.equal(true);
        previous = value;
      }
      // Far out, the decay reaches zero: the total emission is finite.
      expect(await vault.scheduledEmission(200_000n)).to.equal(0n);
    });

    it("costs gas by the bits of the epoch, not its value: the last uint64 epoch twice what epoch 2^32 costs", async () => {
      const { vault } = await networkHelpers.loadFixture(vaultFixture);
      const one = await vault.scheduledEmission.estimateGas(1n);
      const bits32 = await vault.scheduledEmission.estimateGas(2n ** 32n);
      const bits64 = await vault.scheduledEmission.estimateGas(MAX_UINT64);
      // 32 then 64 squarings; a few hundred gas of calldata and rounding apart.
      expect(bits64 - one <= 2n * (bits32 - one) + 1_000n, `${one} / ${bits32} / ${bits64}`).to.equal(true);
      expect(bits64 - one > bits32 - one).to.equal(true);
    });

    it("refuses epoch 0", async () => {
      const { vault } = await networkHelpers.loadFixture(vaultFixture);
      await expect(vault.scheduledEmission(0n)).to.be.revertedWithCustomError(vault, "RewardVaultInvalidEpoch").withArgs(0n);
    });
  });

  describe("fixEmission", () => {
    it("refuses until the epoch's Dispute phase is over, to its last second", async () => {
      const { sys, vault, disputeEndOf } = await networkHelpers.loadFixture(vaultFixture);
      await expect(vault.connect(sys.stranger).fixEmission(1n))
        .to.be.revertedWithCustomError(vault, "RewardVaultEmissionNotDue")
        .withArgs(1n, disputeEndOf(1n));
      await time.setNextBlockTimestamp(disputeEndOf(1n) - 1n);
      await expect(vault.connect(sys.stranger).fixEmission(1n, MINED))
        .to.be.revertedWithCustomError(vault, "RewardVaultEmissionNotDue")
        .withArgs(1n, disputeEndOf(1n));
      // A future epoch cannot reserve room under the cap either.
      await expect(vault.connect(sys.stranger).fixEmission(5n))
        .to.be.revertedWithCustomError(vault, "RewardVaultEmissionNotDue")
        .withArgs(5n, disputeEndOf(5n));
    });

    it("lets anyone fix it from the first second of the Claim phase: the scheduled amount, held in outstanding", async () => {
      const { sys, vault, disputeEndOf } = await networkHelpers.loadFixture(vaultFixture);
      await time.setNextBlockTimestamp(disputeEndOf(2n));
      await expect(vault.connect(sys.stranger).fixEmission(2n))
        .to.emit(vault, "EmissionFixed")
        .withArgs(2n, scheduled(2n));
      expect(await emissionOf(vault, 2n)).to.deep.equal({ fixed_: true, returned: false, emission: scheduled(2n), paid: 0n });
      expect(await vault.outstanding()).to.equal(scheduled(2n));
      // Nothing is minted until paid.
      expect(await sys.token.balanceOf(await vault.getAddress())).to.equal(0n);
    });

    it("returns the emission, and fixes it once: later calls return it without an event or a change", async () => {
      const { sys, vault, disputeEndOf } = await networkHelpers.loadFixture(vaultFixture);
      await time.increaseTo(disputeEndOf(1n));
      expect(await vault.fixEmission.staticCall(1n)).to.equal(INITIAL_EMISSION);
      await vault.fixEmission(1n);
      expect(await vault.connect(sys.stranger).fixEmission.staticCall(1n)).to.equal(INITIAL_EMISSION);
      await expect(vault.connect(sys.stranger).fixEmission(1n)).to.not.emit(vault, "EmissionFixed");
      expect(await vault.outstanding()).to.equal(INITIAL_EMISSION);
    });

    it("refuses epoch 0", async () => {
      const { vault } = await networkHelpers.loadFixture(vaultFixture);
      await expect(vault.fixEmission(0n)).to.be.revertedWithCustomError(vault, "RewardVaultInvalidEpoch").withArgs(0n);
    });

    it("refuses an epoch whose rest was returned before anyone fixed it", async () => {
      const { vault, claimEndOf } = await networkHelpers.loadFixture(vaultFixture);
      await time.increaseTo(claimEndOf(1n));
      await vault.returnUnclaimed(1n);
      await expect(vault.fixEmission(1n)).to.be.revertedWithCustomError(vault, "RewardVaultAlreadyReturned").withArgs(1n);
      expect(await vault.outstanding()).to.equal(0n);
    });

    it("can still be fixed after the Claim phase if nobody returned it; the rest is then returnable", async () => {
      const { vault, claimEndOf } = await networkHelpers.loadFixture(vaultFixture);
      await time.increaseTo(claimEndOf(1n) + DAY);
      await expect(vault.fixEmission(1n)).to.emit(vault, "EmissionFixed").withArgs(1n, INITIAL_EMISSION);
      await expect(vault.returnUnclaimed(1n)).to.emit(vault, "UnclaimedReturned").withArgs(1n, INITIAL_EMISSION);
      expect(await vault.outstanding()).to.equal(0n);
    });
  });

  describe("supply cap", () => {
    it("limits each emission to the room left after the supply and the emissions fixed before it", async () => {
      const { sys, payer, disputeEndOf } = await networkHelpers.loadFixture(vaultFixture);
      const supply = 1_000_000n * TOKEN;
      // Room for epoch 1 in full and 60 % of epoch 2.
      const cap = supply + INITIAL_EMISSION + (scheduled(2n) * 6n) / 10n;
      const { token, vault } = await cappedVault(sys, supply, cap, payer);
      await time.increaseTo(disputeEndOf(3n));
      await expect(vault.fixEmission(1n)).to.emit(vault, "EmissionFixed").withArgs(1n, INITIAL_EMISSION);
      await expect(vault.fixEmission(2n)).to.emit(vault, "EmissionFixed").withArgs(2n, (scheduled(2n) * 6n) / 10n);
      await expect(vault.fixEmission(3n)).to.emit(vault, "EmissionFixed").withArgs(3n, 0n);
      expect(await vault.outstanding()).to.equal(cap - supply);
      // Paying moves room from outstanding into the supply: still no room for anyone else.
      await payAmount(vault, payer, 1n, sys.stranger.address, 4_000n * TOKEN);
      expect(await token.totalSupply()).to.equal(supply + 4_000n * TOKEN);
      expect(await vault.outstanding()).to.equal(cap - supply - 4_000n * TOKEN);
      expect((await token.totalSupply()) + (await vault.outstanding())).to.equal(cap);
      // Every fixed emission can be paid in full without ever hitting the token's cap.
      await payAmount(vault, payer, 1n, sys.stranger.address, INITIAL_EMISSION - 4_000n * TOKEN);
      await payAmount(vault, payer, 2n, sys.stranger.address, (scheduled(2n) * 6n) / 10n, (scheduled(2n) * 6n) / 10n);
      expect(await token.totalSupply()).to.equal(cap);
      expect(await vault.outstanding()).to.equal(0n);
    });

    it("gives the room of a returned rest to later epochs", async () => {
      const { sys, payer, disputeEndOf, claimEndOf } = await networkHelpers.loadFixture(vaultFixture);
      const supply = 1_000_000n * TOKEN;
      const cap = supply + INITIAL_EMISSION;
      const { vault } = await cappedVault(sys, supply, cap, payer);
      await time.increaseTo(disputeEndOf(1n));
      await vault.fixEmission(1n);
      await payAmount(vault, payer, 1n, sys.stranger.address, 3_000n * TOKEN);
      await time.increaseTo(claimEndOf(1n));
      await vault.returnUnclaimed(1n);
      // Epoch 9 (Claim phase open) gets what epoch 1 did not pay: 7 000 tokens, less than its schedule.
      await time.increaseTo(disputeEndOf(9n));
      await expect(vault.fixEmission(9n)).to.emit(vault, "EmissionFixed").withArgs(9n, 7_000n * TOKEN);
    });

    it("fixes zero when another minter took the room held for fixed emissions", async () => {
      const { sys, payer, disputeEndOf } = await networkHelpers.loadFixture(vaultFixture);
      const supply = 1_000_000n * TOKEN;
      const cap = supply + 2n * INITIAL_EMISSION;
      const { token, vault } = await cappedVault(sys, supply, cap, payer);
      await time.increaseTo(disputeEndOf(2n));
      await vault.fixEmission(1n);
      // Some other minter (granted by the token's admin) mints all the room left and more of what epoch 1 holds.
      await token.connect(sys.admin).grantRole(await token.MINTER_ROLE(), sys.admin.address);
      await token.connect(sys.admin).mint(sys.admin.address, INITIAL_EMISSION + 1n);
      // supply + outstanding now exceeds the cap by one: the next emission is zero, not an underflow.
      await expect(vault.fixEmission(2n)).to.emit(vault, "EmissionFixed").withArgs(2n, 0n);
    });
  });

  describe("payShare", () => {
    it("mints to the receiver within the epoch's emission, fixing it first, and emits RewardPaid", async () => {
      const { sys, vault, payer, disputeEndOf } = await networkHelpers.loadFixture(vaultFixture);
      await time.increaseTo(disputeEndOf(1n));
      const supplyBefore = await sys.token.totalSupply();
      const tx = payAmount(vault, payer, 1n, sys.stranger.address, 1_234n);
      await expect(tx).to.emit(vault, "EmissionFixed").withArgs(1n, INITIAL_EMISSION);
      await expect(tx).to.emit(vault, "RewardPaid").withArgs(1n, sys.stranger.address, 1_234n);
      await expect(tx).to.changeTokenBalances(ethers, sys.token, [sys.stranger, vault, payer], [1_234n, 0n, 0n]);
      expect(await sys.token.totalSupply()).to.equal(supplyBefore + 1_234n);
      expect(await emissionOf(vault, 1n)).to.deep.equal({
        fixed_: true,
        returned: false,
        emission: INITIAL_EMISSION,
        paid: 1_234n,
      });
      expect(await vault.outstanding()).to.equal(INITIAL_EMISSION - 1_234n);
    });

    it("pays share / total of the emission, rounded down, and returns the amount", async () => {
      const { sys, vault, payer, disputeEndOf } = await networkHelpers.loadFixture(vaultFixture);
      await time.increaseTo(disputeEndOf(1n));
      expect(await vault.connect(payer).payShare.staticCall(1n, sys.stranger.address, 1n, 3n)).to.equal(INITIAL_EMISSION / 3n);
      const tx = vault.connect(payer).payShare(1n, sys.stranger.address, 2n, 3n);
      await expect(tx).to.emit(vault, "RewardPaid").withArgs(1n, sys.stranger.address, (INITIAL_EMISSION * 2n) / 3n);
      await expect(tx).to.changeTokenBalances(ethers, sys.token, [sys.stranger], [(INITIAL_EMISSION * 2n) / 3n]);
    });

    it("mints nothing and emits no RewardPaid when the share rounds down to zero, but fixes the emission", async () => {
      const { sys, vault, payer, disputeEndOf } = await networkHelpers.loadFixture(vaultFixture);
      await time.increaseTo(disputeEndOf(1n));
      const total = 2n ** 200n;
      expect(await vault.connect(payer).payShare.staticCall(1n, sys.stranger.address, 1n, total)).to.equal(0n);
      const tx = vault.connect(payer).payShare(1n, sys.stranger.address, 1n, total);
      await expect(tx).to.emit(vault, "EmissionFixed").withArgs(1n, INITIAL_EMISSION);
      await expect(tx).to.not.emit(vault, "RewardPaid");
      await expect(tx).to.not.emit(sys.token, "Transfer");
      expect((await vault.emissionOf(1n)).paid).to.equal(0n);
    });

    it("refuses a share above its total and a zero total", async () => {
      const { sys, vault, payer, disputeEndOf } = await networkHelpers.loadFixture(vaultFixture);
      await time.increaseTo(disputeEndOf(1n));
      for (const [share, total] of [
        [2n, 1n],
        [0n, 0n],
      ]) {
        await expect(vault.connect(payer).payShare(1n, sys.stranger.address, share, total))
          .to.be.revertedWithCustomError(vault, "RewardVaultInvalidShare")
          .withArgs(share, total);
      }
    });

    it("accumulates payments up to exactly the emission and refuses one wei more, naming what remains", async () => {
      const { sys, vault, payer, disputeEndOf } = await networkHelpers.loadFixture(vaultFixture);
      await time.increaseTo(disputeEndOf(1n));
      await payAmount(vault, payer, 1n, sys.stranger.address, 4_000n * TOKEN);
      await expect(payAmount(vault, payer, 1n, sys.admin.address, 6_000n * TOKEN + 1n))
        .to.be.revertedWithCustomError(vault, "RewardVaultEmissionExceeded")
        .withArgs(1n, 6_000n * TOKEN + 1n, 6_000n * TOKEN);
      await expect(payAmount(vault, payer, 1n, sys.admin.address, 6_000n * TOKEN))
        .to.emit(vault, "RewardPaid")
        .withArgs(1n, sys.admin.address, 6_000n * TOKEN);
      expect((await vault.emissionOf(1n)).paid).to.equal(INITIAL_EMISSION);
      expect(await vault.outstanding()).to.equal(0n);
      await expect(payAmount(vault, payer, 1n, sys.admin.address, 1n))
        .to.be.revertedWithCustomError(vault, "RewardVaultEmissionExceeded")
        .withArgs(1n, 1n, 0n);
    });

    it("keeps each epoch's payments to its own emission", async () => {
      const { sys, vault, payer, disputeEndOf } = await networkHelpers.loadFixture(vaultFixture);
      await time.increaseTo(disputeEndOf(2n));
      await payAmount(vault, payer, 1n, sys.stranger.address, INITIAL_EMISSION);
      await payAmount(vault, payer, 2n, sys.stranger.address, 5n);
      expect((await vault.emissionOf(2n)).paid).to.equal(5n);
      expect(await vault.outstanding()).to.equal(scheduled(2n) - 5n);
    });

    it("refuses callers without PAYER_ROLE, including the admin", async () => {
      const { sys, vault, PAYER_ROLE, disputeEndOf } = await networkHelpers.loadFixture(vaultFixture);
      await time.increaseTo(disputeEndOf(1n));
      for (const caller of [sys.admin, sys.stranger]) {
        await expect(payAmount(vault, caller, 1n, caller.address, 1n))
          .to.be.revertedWithCustomError(vault, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, PAYER_ROLE);
      }
    });

    it("refuses the zero receiver, epoch 0, an epoch not yet due and a returned epoch", async () => {
      const { vault, payer, disputeEndOf, claimEndOf } = await networkHelpers.loadFixture(vaultFixture);
      await expect(payAmount(vault, payer, 1n, ethers.ZeroAddress, 1n)).to.be.revertedWithCustomError(
        vault,
        "RewardVaultZeroAddress",
      );
      await expect(payAmount(vault, payer, 0n, payer.address, 1n, 1n))
        .to.be.revertedWithCustomError(vault, "RewardVaultInvalidEpoch")
        .withArgs(0n);
      await expect(payAmount(vault, payer, 1n, payer.address, 1n))
        .to.be.revertedWithCustomError(vault, "RewardVaultEmissionNotDue")
        .withArgs(1n, disputeEndOf(1n));
      await time.increaseTo(disputeEndOf(1n));
      await payAmount(vault, payer, 1n, payer.address, 1n);
      await time.increaseTo(claimEndOf(1n));
      await vault.returnUnclaimed(1n);
      await expect(payAmount(vault, payer, 1n, payer.address, 1n))
        .to.be.revertedWithCustomError(vault, "RewardVaultAlreadyReturned")
        .withArgs(1n);
    });
  });

  describe("payBounty", () => {
    /** Slashes `amount` of a registered node's stake into the vault (the registry's treasury). */
    async function fundVault(sys: System, amount: bigint) {
      await registerNode(connection, sys, sys.providers[0], sys.nodes[0], CPU_NODE, 1_000n * TOKEN);
      await sys.registry.connect(sys.slasher).slash(sys.nodes[0].address, amount, REASON);
    }

    it("pays the amount asked from the vault's slashed funds", async () => {
      const { sys, vault, payer } = await networkHelpers.loadFixture(vaultFixture);
      await fundVault(sys, 500n * TOKEN);
      expect(await sys.token.balanceOf(await vault.getAddress())).to.equal(500n * TOKEN);
      expect(await vault.connect(payer).payBounty.staticCall(sys.stranger.address, 200n * TOKEN)).to.equal(200n * TOKEN);
      const tx = vault.connect(payer).payBounty(sys.stranger.address, 200n * TOKEN);
      await expect(tx).to.emit(vault, "BountyPaid").withArgs(sys.stranger.address, 200n * TOKEN, 200n * TOKEN);
      await expect(tx).to.changeTokenBalances(ethers, sys.token, [vault, sys.stranger], [-200n * TOKEN, 200n * TOKEN]);
    });

    it("pays the whole balance when asked for more, and nothing (without a transfer) when empty", async () => {
      const { sys, vault, payer } = await networkHelpers.loadFixture(vaultFixture);
      await fundVault(sys, 50n * TOKEN);
      expect(await vault.connect(payer).payBounty.staticCall(sys.stranger.address, 80n * TOKEN)).to.equal(50n * TOKEN);
      const tx = vault.connect(payer).payBounty(sys.stranger.address, 80n * TOKEN);
      await expect(tx).to.emit(vault, "BountyPaid").withArgs(sys.stranger.address, 50n * TOKEN, 80n * TOKEN);
      await expect(tx).to.changeTokenBalances(ethers, sys.token, [vault, sys.stranger], [-50n * TOKEN, 50n * TOKEN]);
      const empty = vault.connect(payer).payBounty(sys.stranger.address, 1n);
      await expect(empty).to.emit(vault, "BountyPaid").withArgs(sys.stranger.address, 0n, 1n);
      await expect(empty).to.not.emit(sys.token, "Transfer");
    });

    it("never touches the emission: bounties come from the balance, rewards are minted", async () => {
      const { sys, vault, payer, disputeEndOf } = await networkHelpers.loadFixture(vaultFixture);
      await fundVault(sys, 10n * TOKEN);
      await time.increaseTo(disputeEndOf(1n));
      await payAmount(vault, payer, 1n, sys.stranger.address, 3n * TOKEN);
      expect(await sys.token.balanceOf(await vault.getAddress())).to.equal(10n * TOKEN);
      await vault.connect(payer).payBounty(sys.stranger.address, 10n * TOKEN);
      expect(await vault.outstanding()).to.equal(INITIAL_EMISSION - 3n * TOKEN);
    });

    it("refuses callers without PAYER_ROLE and the zero receiver", async () => {
      const { sys, vault, payer, PAYER_ROLE } = await networkHelpers.loadFixture(vaultFixture);
      await expect(vault.connect(sys.stranger).payBounty(sys.stranger.address, 1n))
        .to.be.revertedWithCustomError(vault, "AccessControlUnauthorizedAccount")
        .withArgs(sys.stranger.address, PAYER_ROLE);
      await expect(vault.connect(payer).payBounty(ethers.ZeroAddress, 1n)).to.be.revertedWithCustomError(
        vault,
        "RewardVaultZeroAddress",
      );
    });
  });

  describe("returnUnclaimed", () => {
    it("refuses until the epoch's Claim phase is over, to its last second", async () => {
      const { sys, vault, claimEndOf } = await networkHelpers.loadFixture(vaultFixture);
      await expect(vault.connect(sys.stranger).returnUnclaimed(1n))
        .to.be.revertedWithCustomError(vault, "RewardVaultClaimsOpen")
        .withArgs(1n, claimEndOf(1n));
      await time.setNextBlockTimestamp(claimEndOf(1n) - 1n);
      await expect(vault.connect(sys.stranger).returnUnclaimed(1n, MINED))
        .to.be.revertedWithCustomError(vault, "RewardVaultClaimsOpen")
        .withArgs(1n, claimEndOf(1n));
    });

    it("lets anyone return the unpaid rest once: emission = paid + returned, and outstanding frees it", async () => {
      const { sys, vault, payer, disputeEndOf, claimEndOf } = await networkHelpers.loadFixture(vaultFixture);
      await time.increaseTo(disputeEndOf(2n));
      await payAmount(vault, payer, 1n, sys.stranger.address, 2_500n * TOKEN);
      await payAmount(vault, payer, 1n, sys.admin.address, 1_000n * TOKEN);
      await vault.fixEmission(2n);
      await time.setNextBlockTimestamp(claimEndOf(1n));
      const rest = INITIAL_EMISSION - 3_500n * TOKEN;
      await expect(vault.connect(sys.stranger).returnUnclaimed(1n)).to.emit(vault, "UnclaimedReturned").withArgs(1n, rest);
      const record = await emissionOf(vault, 1n);
      expect(record).to.deep.equal({ fixed_: true, returned: true, emission: INITIAL_EMISSION, paid: 3_500n * TOKEN });
      expect(record.emission).to.equal(record.paid + rest);
      // Only epoch 2's emission is still held.
      expect(await vault.outstanding()).to.equal(scheduled(2n));
      await expect(vault.returnUnclaimed(1n)).to.be.revertedWithCustomError(vault, "RewardVaultAlreadyReturned").withArgs(1n);
    });

    it("returns the static result and 0 for a fully paid epoch", async () => {
      const { vault, payer, disputeEndOf, claimEndOf } = await networkHelpers.loadFixture(vaultFixture);
      await time.increaseTo(disputeEndOf(1n));
      await payAmount(vault, payer, 1n, payer.address, INITIAL_EMISSION);
      await time.increaseTo(claimEndOf(1n));
      expect(await vault.returnUnclaimed.staticCall(1n)).to.equal(0n);
      await expect(vault.returnUnclaimed(1n)).to.emit(vault, "UnclaimedReturned").withArgs(1n, 0n);
    });

    it("returns 0 for an epoch nobody fixed, and closes it", async () => {
      const { vault, claimEndOf } = await networkHelpers.loadFixture(vaultFixture);
      await time.increaseTo(claimEndOf(3n));
      await expect(vault.returnUnclaimed(3n)).to.emit(vault, "UnclaimedReturned").withArgs(3n, 0n);
      expect(await emissionOf(vault, 3n)).to.deep.equal({ fixed_: false, returned: true, emission: 0n, paid: 0n });
    });

    it("refuses epoch 0", async () => {
      const { vault } = await networkHelpers.loadFixture(vaultFixture);
      await expect(vault.returnUnclaimed(0n)).to.be.revertedWithCustomError(vault, "RewardVaultInvalidEpoch").withArgs(0n);
    });
  });

  describe("emissionOf", () => {
    it("is all zeros for an epoch never fixed", async () => {
      const { vault } = await networkHelpers.loadFixture(vaultFixture);
      expect(await emissionOf(vault, 7n)).to.deep.equal({ fixed_: false, returned: false, emission: 0n, paid: 0n });
    });
  });

  describe("roles", () => {
    it("lets the admin grant and revoke PAYER_ROLE, and nobody else", async () => {
      const { sys, vault, PAYER_ROLE, disputeEndOf } = await networkHelpers.loadFixture(vaultFixture);
      await expect(vault.connect(sys.stranger).grantRole(PAYER_ROLE, sys.stranger.address))
        .to.be.revertedWithCustomError(vault, "AccessControlUnauthorizedAccount")
        .withArgs(sys.stranger.address, await vault.DEFAULT_ADMIN_ROLE());
      await vault.connect(sys.admin).grantRole(PAYER_ROLE, sys.stranger.address);
      await time.increaseTo(disputeEndOf(1n));
      await expect(payAmount(vault, sys.stranger, 1n, sys.stranger.address, 1n)).to.emit(vault, "RewardPaid");
      await vault.connect(sys.admin).revokeRole(PAYER_ROLE, sys.stranger.address);
      await expect(payAmount(vault, sys.stranger, 1n, sys.stranger.address, 1n)).to.be.revertedWithCustomError(
        vault,
        "AccessControlUnauthorizedAccount",
      );
    });
  });

  describe("accounting over several epochs", () => {
    it("keeps totalSupply + outstanding ≤ cap and emission = paid + returned for every epoch", async () => {
      const { sys, vault, payer, disputeEndOf, claimEndOf } = await networkHelpers.loadFixture(vaultFixture);
      const cap = await sys.token.cap();
      const supply0 = await sys.token.totalSupply();
      const pays: Record<string, bigint> = { "1": 1_000n * TOKEN, "2": 0n, "3": scheduled(3n) };
      let minted = 0n;
      for (const epoch of [1n, 2n, 3n]) {
        await time.increaseTo(disputeEndOf(epoch));
        await vault.fixEmission(epoch);
        const pay = pays[epoch.toString()];
        if (pay > 0n) await payAmount(vault, payer, epoch, sys.nodes[Number(epoch)].address, pay);
        minted += pay;
        expect((await sys.token.totalSupply()) + (await vault.outstanding()) <= cap).to.equal(true);
      }
      await time.increaseTo(claimEndOf(3n));
      let returned = 0n;
      for (const epoch of [1n, 2n, 3n]) {
        const amount = await vault.returnUnclaimed.staticCall(epoch);
        await vault.returnUnclaimed(epoch);
        const record = await vault.emissionOf(epoch);
        expect(record.emission).to.equal(record.paid + amount);
        expect(record.emission).to.equal(scheduled(epoch));
        returned += amount;
      }
      expect(await vault.outstanding()).to.equal(0n);
      expect(await sys.token.totalSupply()).to.equal(supply0 + minted);
      expect(minted + returned).to.equal(scheduled(1n) + scheduled(2n) + scheduled(3n));
    });
  });
});
