/**
 * ComputeToken: ERC-20 with ERC-2612 permit, a hard cap and MINTER_ROLE emission.
 *
 * The token comes from the shared Ignition fixture, which leaves the ComputeTokenModule defaults in
 * place: admin and initial holder = account 0, initial supply 100 M, cap 1 B. The fixture then
 * transfers 1 M to each of ten funded actors. Nobody holds MINTER_ROLE after deployment.
 */
import { expect } from "chai";
import { network } from "hardhat";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import type { ComputeToken } from "../typechain-types/index.js";
import { deploySystem } from "./helpers/system.js";
import { PERMIT_TYPES, TOKEN } from "../scripts/lib/protocol.js";

const connection = await network.create();
const { ethers, networkHelpers } = connection;

/** ComputeTokenModule defaults (ignition/modules/ComputeToken.ts). */
const INITIAL_SUPPLY = 100_000_000n * TOKEN;
const SUPPLY_CAP = 1_000_000_000n * TOKEN;
/** What deploySystem hands out of the initial supply: 1 M to each of ten actors. */
const FIXTURE_FUNDING = 10n * 1_000_000n * TOKEN;


async function computeTokenFixture() {
  const sys = await deploySystem(connection);
  const signers = await ethers.getSigners();
  // deploySystem uses accounts 0..17; these two are free.
  const minter = signers[18];
  const relayer = signers[19];
  const MINTER_ROLE = await sys.token.MINTER_ROLE();
  const DEFAULT_ADMIN_ROLE = await sys.token.DEFAULT_ADMIN_ROLE();
  const domain = {
    name: "Computenet",
    version: "1",
    chainId: sys.chainId,
    verifyingContract: await sys.token.getAddress(),
  };
  return { sys, token: sys.token, minter, relayer, MINTER_ROLE, DEFAULT_ADMIN_ROLE, domain };
}

type Fixture = Awaited<ReturnType<typeof computeTokenFixture>>;
type Domain = Fixture["domain"];

interface PermitMessage {
  owner: string;
  spender: string;
  value: bigint;
  nonce: bigint;
  deadline: bigint;
}

/** `owner`'s permit for `spender` at `owner`'s current nonce, signed by `signer` (default: the owner). */
async function signPermit(
  f: Fixture,
  owner: HardhatEthersSigner,
  spender: string,
  value: bigint,
  deadline: bigint,
  options: { signer?: HardhatEthersSigner; domain?: Domain; nonce?: bigint } = {},
) {
  const message: PermitMessage = {
    owner: owner.address,
    spender,
    value,
    nonce: options.nonce ?? (await f.token.nonces(owner.address)),
    deadline,
  };
  const signature = await (options.signer ?? owner).signTypedData(options.domain ?? f.domain, PERMIT_TYPES, message);
  const { v, r, s } = ethers.Signature.from(signature);
  return { message, signature, v, r, s };
}

async function deadlineIn(seconds: bigint): Promise<bigint> {
  return BigInt(await networkHelpers.time.latest()) + seconds;
}

describe("ComputeToken", () => {
  describe("metadata", () => {
    it("is named Computenet (CNET) with 18 decimals", async () => {
      const { token } = await networkHelpers.loadFixture(computeTokenFixture);
      expect(await token.name()).to.equal("Computenet");
      expect(await token.symbol()).to.equal("CNET");
      expect(await token.decimals()).to.equal(18n);
    });
  });

  describe("supply", () => {
    it("mints the Ignition default initial supply to the initial holder at deployment", async () => {
      const { sys, token } = await networkHelpers.loadFixture(computeTokenFixture);
      const mints = await token.queryFilter(token.filters.Transfer(ethers.ZeroAddress));
      expect(mints).to.have.length(1);
      expect(mints[0].args.to).to.equal(sys.admin.address);
      expect(mints[0].args.value).to.equal(INITIAL_SUPPLY);
      expect(await token.totalSupply()).to.equal(INITIAL_SUPPLY);
      expect(await token.balanceOf(sys.admin.address)).to.equal(INITIAL_SUPPLY - FIXTURE_FUNDING);
    });

    it("has the Ignition default cap", async () => {
      const { token } = await networkHelpers.loadFixture(computeTokenFixture);
      expect(await token.cap()).to.equal(SUPPLY_CAP);
    });

    it("refuses at deployment an initial supply above the cap", async () => {
      const { sys } = await networkHelpers.loadFixture(computeTokenFixture);
      const factory = await ethers.getContractFactory("ComputeToken");
      await expect(factory.deploy(sys.admin.address, sys.admin.address, 1001n, 1000n))
        .to.be.revertedWithCustomError(factory, "ERC20ExceededCap")
        .withArgs(1001n, 1000n);
    });

    it("refuses at deployment a zero admin", async () => {
      const { sys } = await networkHelpers.loadFixture(computeTokenFixture);
      const factory = await ethers.getContractFactory("ComputeToken");
      await expect(
        factory.deploy(ethers.ZeroAddress, sys.admin.address, 1n, 1000n),
      ).to.be.revertedWithCustomError(factory, "ComputeTokenZeroAddress");
    });

    it("refuses at deployment a zero cap", async () => {
      const { sys } = await networkHelpers.loadFixture(computeTokenFixture);
      const factory = await ethers.getContractFactory("ComputeToken");
      await expect(factory.deploy(sys.admin.address, sys.admin.address, 0n, 0n))
        .to.be.revertedWithCustomError(factory, "ERC20InvalidCap")
        .withArgs(0n);
    });

    it("accepts at deployment an initial supply equal to the cap, and nothing can be minted after", async () => {
      const { sys, minter, MINTER_ROLE } = await networkHelpers.loadFixture(computeTokenFixture);
      const factory = await ethers.getContractFactory("ComputeToken");
      const deployed = await factory.deploy(sys.admin.address, sys.stranger.address, 1000n, 1000n);
      const full = deployed as unknown as ComputeToken;
      await full.waitForDeployment();
      expect(await full.totalSupply()).to.equal(1000n);
      expect(await full.balanceOf(sys.stranger.address)).to.equal(1000n);
      await full.connect(sys.admin).grantRole(MINTER_ROLE, minter.address);
      await expect(full.connect(minter).mint(minter.address, 1n))
        .to.be.revertedWithCustomError(full, "ERC20ExceededCap")
        .withArgs(1001n, 1000n);
    });

    it("refuses at deployment a zero initial holder with a non-zero initial supply", async () => {
      const { sys } = await networkHelpers.loadFixture(computeTokenFixture);
      const factory = await ethers.getContractFactory("ComputeToken");
      await expect(factory.deploy(sys.admin.address, ethers.ZeroAddress, 1n, 1000n))
        .to.be.revertedWithCustomError(factory, "ERC20InvalidReceiver")
        .withArgs(ethers.ZeroAddress);
    });
  });

  describe("mint", () => {
    it("refuses accounts without MINTER_ROLE, the admin included", async () => {
      const { sys, token, MINTER_ROLE } = await networkHelpers.loadFixture(computeTokenFixture);
      for (const caller of [sys.admin, sys.stranger, sys.slasher]) {
        await expect(token.connect(caller).mint(caller.address, TOKEN))
          .to.be.revertedWithCustomError(token, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, MINTER_ROLE);
      }
      expect(await token.totalSupply()).to.equal(INITIAL_SUPPLY);
    });

    it("lets a MINTER_ROLE holder mint, emitting Transfer from the zero address", async () => {
      const { sys, token, minter, MINTER_ROLE } = await networkHelpers.loadFixture(computeTokenFixture);
      await token.connect(sys.admin).grantRole(MINTER_ROLE, minter.address);
      const amount = 5_000n * TOKEN;
      await expect(token.connect(minter).mint(sys.stranger.address, amount))
        .to.emit(token, "Transfer")
        .withArgs(ethers.ZeroAddress, sys.stranger.address, amount);
      expect(await token.totalSupply()).to.equal(INITIAL_SUPPLY + amount);
    });

    it("credits the receiver and nobody else", async () => {
      const { sys, token, minter, MINTER_ROLE } = await networkHelpers.loadFixture(computeTokenFixture);
      await token.connect(sys.admin).grantRole(MINTER_ROLE, minter.address);
      await expect(token.connect(minter).mint(sys.stranger.address, 7n)).to.changeTokenBalances(
        ethers,
        token,
        [sys.stranger, minter, sys.admin],
        [7n, 0n, 0n],
      );
    });

    it("mints up to exactly the cap and refuses one wei more with ERC20ExceededCap", async () => {
      const { sys, token, minter, MINTER_ROLE } = await networkHelpers.loadFixture(computeTokenFixture);
      await token.connect(sys.admin).grantRole(MINTER_ROLE, minter.address);
      const room = SUPPLY_CAP - INITIAL_SUPPLY;
      await expect(token.connect(minter).mint(minter.address, room + 1n))
        .to.be.revertedWithCustomError(token, "ERC20ExceededCap")
        .withArgs(SUPPLY_CAP + 1n, SUPPLY_CAP);
      await token.connect(minter).mint(minter.address, room);
      expect(await token.totalSupply()).to.equal(SUPPLY_CAP);
      await expect(token.connect(minter).mint(minter.address, 1n))
        .to.be.revertedWithCustomError(token, "ERC20ExceededCap")
        .withArgs(SUPPLY_CAP + 1n, SUPPLY_CAP);
    });

    it("refuses minting to the zero address", async () => {
      const { sys, token, minter, MINTER_ROLE } = await networkHelpers.loadFixture(computeTokenFixture);
      await token.connect(sys.admin).grantRole(MINTER_ROLE, minter.address);
      await expect(token.connect(minter).mint(ethers.ZeroAddress, 1n))
        .to.be.revertedWithCustomError(token, "ERC20InvalidReceiver")
        .withArgs(ethers.ZeroAddress);
    });

    it("stops a minter whose role was revoked", async () => {
      const { sys, token, minter, MINTER_ROLE } = await networkHelpers.loadFixture(computeTokenFixture);
      await token.connect(sys.admin).grantRole(MINTER_ROLE, minter.address);
      await token.connect(minter).mint(minter.address, 1n);
      await token.connect(sys.admin).revokeRole(MINTER_ROLE, minter.address);
      await expect(token.connect(minter).mint(minter.address, 1n))
        .to.be.revertedWithCustomError(token, "AccessControlUnauthorizedAccount")
        .withArgs(minter.address, MINTER_ROLE);
    });
  });

  describe("roles", () => {
    it("gives DEFAULT_ADMIN_ROLE to the deployer and MINTER_ROLE to nobody", async () => {
      const { sys, token, MINTER_ROLE, DEFAULT_ADMIN_ROLE } = await networkHelpers.loadFixture(computeTokenFixture);
      expect(MINTER_ROLE).to.equal(ethers.id("MINTER_ROLE"));
      expect(DEFAULT_ADMIN_ROLE).to.equal(ethers.ZeroHash);
      expect(await token.hasRole(DEFAULT_ADMIN_ROLE, sys.admin.address)).to.equal(true);
      expect(await token.getRoleAdmin(MINTER_ROLE)).to.equal(DEFAULT_ADMIN_ROLE);
      for (const account of [
        sys.admin.address,
        await sys.registry.getAddress(),
        await sys.trainingRuns.getAddress(),
        await sys.challengeBoard.getAddress(),
      ]) {
        expect(await token.hasRole(MINTER_ROLE, account)).to.equal(false);
      }
    });

    it("lets only the admin grant MINTER_ROLE", async () => {
      const { sys, token, minter, MINTER_ROLE, DEFAULT_ADMIN_ROLE } =
        await networkHelpers.loadFixture(computeTokenFixture);
      await expect(token.connect(sys.stranger).grantRole(MINTER_ROLE, sys.stranger.address))
        .to.be.revertedWithCustomError(token, "AccessControlUnauthorizedAccount")
        .withArgs(sys.stranger.address, DEFAULT_ADMIN_ROLE);
      await expect(token.connect(sys.admin).grantRole(MINTER_ROLE, minter.address))
        .to.emit(token, "RoleGranted")
        .withArgs(MINTER_ROLE, minter.address, sys.admin.address);
      expect(await token.hasRole(MINTER_ROLE, minter.address)).to.equal(true);
    });

    it("does not let a minter grant MINTER_ROLE to others", async () => {
      const { sys, token, minter, MINTER_ROLE, DEFAULT_ADMIN_ROLE } =
        await networkHelpers.loadFixture(computeTokenFixture);
      await token.connect(sys.admin).grantRole(MINTER_ROLE, minter.address);
      await expect(token.connect(minter).grantRole(MINTER_ROLE, sys.stranger.address))
        .to.be.revertedWithCustomError(token, "AccessControlUnauthorizedAccount")
        .withArgs(minter.address, DEFAULT_ADMIN_ROLE);
    });

    it("lets the admin hand over the admin role and lose its powers by renouncing", async () => {
      const { sys, token, minter, MINTER_ROLE, DEFAULT_ADMIN_ROLE } =
        await networkHelpers.loadFixture(computeTokenFixture);
      const newAdmin = sys.treasury;
      await token.connect(sys.admin).grantRole(DEFAULT_ADMIN_ROLE, newAdmin.address);
      await token.connect(sys.admin).renounceRole(DEFAULT_ADMIN_ROLE, sys.admin.address);
      expect(await token.hasRole(DEFAULT_ADMIN_ROLE, sys.admin.address)).to.equal(false);
      await expect(token.connect(sys.admin).grantRole(MINTER_ROLE, minter.address))
        .to.be.revertedWithCustomError(token, "AccessControlUnauthorizedAccount")
        .withArgs(sys.admin.address, DEFAULT_ADMIN_ROLE);
      await token.connect(newAdmin).grantRole(MINTER_ROLE, minter.address);
      expect(await token.hasRole(MINTER_ROLE, minter.address)).to.equal(true);
    });

    it("gives the admin role to the constructor's admin, not to the deployer or the initial holder", async () => {
      const { sys, DEFAULT_ADMIN_ROLE } = await networkHelpers.loadFixture(computeTokenFixture);
      const factory = await ethers.getContractFactory("ComputeToken");
      const other = await factory.connect(sys.admin).deploy(sys.treasury.address, sys.stranger.address, 10n, 100n);
      await other.waitForDeployment();
      expect(await other.hasRole(DEFAULT_ADMIN_ROLE, sys.treasury.address)).to.equal(true);
      expect(await other.hasRole(DEFAULT_ADMIN_ROLE, sys.admin.address)).to.equal(false);
      expect(await other.hasRole(DEFAULT_ADMIN_ROLE, sys.stranger.address)).to.equal(false);
      expect(await other.balanceOf(sys.stranger.address)).to.equal(10n);
      expect(await other.cap()).to.equal(100n);
    });
  });

  describe("permit", () => {
    it("uses the EIP-712 domain Computenet / 1 / this chain / this contract", async () => {
      const { token, domain } = await networkHelpers.loadFixture(computeTokenFixture);
      expect(await token.DOMAIN_SEPARATOR()).to.equal(ethers.TypedDataEncoder.hashDomain(domain));
      const d = await token.eip712Domain();
      expect(d.name).to.equal("Computenet");
      expect(d.version).to.equal("1");
      expect(d.chainId).to.equal(domain.chainId);
      expect(d.verifyingContract).to.equal(domain.verifyingContract);
    });

    it("sets the allowance from a valid signature sent by anyone, bumps the nonce and emits Approval", async () => {
      const f = await networkHelpers.loadFixture(computeTokenFixture);
      const { sys, token, relayer } = f;
      const owner = sys.stranger;
      const spender = sys.buyer.address;
      const value = 1_234n * TOKEN;
      const deadline = await deadlineIn(3600n);
      const { v, r, s } = await signPermit(f, owner, spender, value, deadline);
      expect(await token.nonces(owner.address)).to.equal(0n);

      await expect(token.connect(relayer).permit(owner.address, spender, value, deadline, v, r, s))
        .to.emit(token, "Approval")
        .withArgs(owner.address, spender, value);
      expect(await token.allowance(owner.address, spender)).to.equal(value);
      expect(await token.nonces(owner.address)).to.equal(1n);
      expect(await token.nonces(relayer.address)).to.equal(0n);
    });

    it("lets the spender use the permitted allowance", async () => {
      const f = await networkHelpers.loadFixture(computeTokenFixture);
      const { sys, token } = f;
      const owner = sys.stranger;
      const spender = sys.buyer;
      const deadline = await deadlineIn(3600n);
      const { v, r, s } = await signPermit(f, owner, spender.address, 100n, deadline);
      await token.connect(spender).permit(owner.address, spender.address, 100n, deadline, v, r, s);
      await expect(token.connect(spender).transferFrom(owner.address, spender.address, 60n)).to.changeTokenBalances(
        ethers,
        token,
        [owner, spender],
        [-60n, 60n],
      );
      expect(await token.allowance(owner.address, spender.address)).to.equal(40n);
    });

    it("accepts a permit in the block stamped with its deadline", async () => {
      const f = await networkHelpers.loadFixture(computeTokenFixture);
      const { sys, token } = f;
      const deadline = await deadlineIn(100n);
      const { v, r, s } = await signPermit(f, sys.stranger, sys.buyer.address, 1n, deadline);
      await networkHelpers.time.setNextBlockTimestamp(deadline);
      await token.permit(sys.stranger.address, sys.buyer.address, 1n, deadline, v, r, s);
      expect(await token.allowance(sys.stranger.address, sys.buyer.address)).to.equal(1n);
    });

    it("refuses an expired permit with ERC2612ExpiredSignature", async () => {
      const f = await networkHelpers.loadFixture(computeTokenFixture);
      const { sys, token } = f;
      const deadline = await deadlineIn(100n);
      const { v, r, s } = await signPermit(f, sys.stranger, sys.buyer.address, 1n, deadline);
      await networkHelpers.time.setNextBlockTimestamp(deadline + 1n);
      await expect(
        token.permit(sys.stranger.address, sys.buyer.address, 1n, deadline, v, r, s, { gasLimit: 200_000 }),
      )
        .to.be.revertedWithCustomError(token, "ERC2612ExpiredSignature")
        .withArgs(deadline);
      expect(BigInt(await networkHelpers.time.latest())).to.equal(deadline + 1n);
      expect(await token.allowance(sys.stranger.address, sys.buyer.address)).to.equal(0n);
      expect(await token.nonces(sys.stranger.address)).to.equal(0n);
    });

    it("refuses a permit signed by someone other than the owner with ERC2612InvalidSigner", async () => {
      const f = await networkHelpers.loadFixture(computeTokenFixture);
      const { sys, token, relayer } = f;
      const owner = sys.stranger;
      const deadline = await deadlineIn(3600n);
      const { v, r, s } = await signPermit(f, owner, relayer.address, 10n * TOKEN, deadline, { signer: relayer });
      await expect(token.connect(relayer).permit(owner.address, relayer.address, 10n * TOKEN, deadline, v, r, s))
        .to.be.revertedWithCustomError(token, "ERC2612InvalidSigner")
        .withArgs(relayer.address, owner.address);
      expect(await token.allowance(owner.address, relayer.address)).to.equal(0n);
    });

    it("refuses a replayed permit (the nonce was used)", async () => {
      const f = await networkHelpers.loadFixture(computeTokenFixture);
      const { sys, token, domain } = f;
      const owner = sys.stranger;
      const spender = sys.buyer;
      const deadline = await deadlineIn(3600n);
      const { message, signature, v, r, s } = await signPermit(f, owner, spender.address, 50n, deadline);
      await token.permit(owner.address, spender.address, 50n, deadline, v, r, s);
      // The spender uses it all, then tries to restore the allowance with the same signature.
      await token.connect(spender).transferFrom(owner.address, spender.address, 50n);
      // The contract now hashes nonce 1, so the signature recovers to an unrelated address.
      const recovered = ethers.verifyTypedData(domain, PERMIT_TYPES, { ...message, nonce: 1n }, signature);
      await expect(token.connect(spender).permit(owner.address, spender.address, 50n, deadline, v, r, s))
        .to.be.revertedWithCustomError(token, "ERC2612InvalidSigner")
        .withArgs(recovered, owner.address);
      expect(await token.allowance(owner.address, spender.address)).to.equal(0n);
      expect(await token.nonces(owner.address)).to.equal(1n);
    });

    it("refuses a permit signed for another chain id", async () => {
      const f = await networkHelpers.loadFixture(computeTokenFixture);
      const { sys, token, domain } = f;
      const owner = sys.stranger;
      const deadline = await deadlineIn(3600n);
      const otherChain = { ...domain, chainId: domain.chainId + 1n };
      const { message, signature, v, r, s } = await signPermit(f, owner, sys.buyer.address, 1n, deadline, {
        domain: otherChain,
      });
      const recovered = ethers.verifyTypedData(domain, PERMIT_TYPES, message, signature);
      expect(recovered).to.not.equal(owner.address);
      await expect(token.permit(owner.address, sys.buyer.address, 1n, deadline, v, r, s))
        .to.be.revertedWithCustomError(token, "ERC2612InvalidSigner")
        .withArgs(recovered, owner.address);
    });

    it("refuses a permit signed for another contract", async () => {
      const f = await networkHelpers.loadFixture(computeTokenFixture);
      const { sys, token, domain } = f;
      const owner = sys.stranger;
      const deadline = await deadlineIn(3600n);
      const otherContract = { ...domain, verifyingContract: await sys.registry.getAddress() };
      const { message, signature, v, r, s } = await signPermit(f, owner, sys.buyer.address, 1n, deadline, {
        domain: otherContract,
      });
      const recovered = ethers.verifyTypedData(domain, PERMIT_TYPES, message, signature);
      await expect(token.permit(owner.address, sys.buyer.address, 1n, deadline, v, r, s))
        .to.be.revertedWithCustomError(token, "ERC2612InvalidSigner")
        .withArgs(recovered, owner.address);
    });

    it("refuses a permit whose value was changed after signing", async () => {
      const f = await networkHelpers.loadFixture(computeTokenFixture);
      const { sys, token, domain } = f;
      const owner = sys.stranger;
      const deadline = await deadlineIn(3600n);
      const { message, signature, v, r, s } = await signPermit(f, owner, sys.buyer.address, 1n, deadline);
      const recovered = ethers.verifyTypedData(domain, PERMIT_TYPES, { ...message, value: 1_000n }, signature);
      await expect(token.permit(owner.address, sys.buyer.address, 1_000n, deadline, v, r, s))
        .to.be.revertedWithCustomError(token, "ERC2612InvalidSigner")
        .withArgs(recovered, owner.address);
    });

    it("refuses a permit signed with a future nonce", async () => {
      const f = await networkHelpers.loadFixture(computeTokenFixture);
      const { sys, token, domain } = f;
      const owner = sys.stranger;
      const deadline = await deadlineIn(3600n);
      const { message, signature, v, r, s } = await signPermit(f, owner, sys.buyer.address, 1n, deadline, {
        nonce: 1n,
      });
      const recovered = ethers.verifyTypedData(domain, PERMIT_TYPES, { ...message, nonce: 0n }, signature);
      await expect(token.permit(owner.address, sys.buyer.address, 1n, deadline, v, r, s))
        .to.be.revertedWithCustomError(token, "ERC2612InvalidSigner")
        .withArgs(recovered, owner.address);
    });
  });

  describe("transfers", () => {
    it("move balances and emit Transfer", async () => {
      const { sys, token } = await networkHelpers.loadFixture(computeTokenFixture);
      const amount = 42n * TOKEN;
      await expect(token.connect(sys.stranger).transfer(sys.buyer.address, amount))
        .to.emit(token, "Transfer")
        .withArgs(sys.stranger.address, sys.buyer.address, amount);
      await expect(token.connect(sys.stranger).transfer(sys.buyer.address, amount)).to.changeTokenBalances(
        ethers,
        token,
        [sys.stranger, sys.buyer],
        [-amount, amount],
      );
      expect(await token.totalSupply()).to.equal(INITIAL_SUPPLY);
    });

    it("refuse more than the balance with ERC20InsufficientBalance", async () => {
      const { sys, token, relayer } = await networkHelpers.loadFixture(computeTokenFixture);
      const balance = await token.balanceOf(sys.stranger.address);
      await expect(token.connect(sys.stranger).transfer(relayer.address, balance + 1n))
        .to.be.revertedWithCustomError(token, "ERC20InsufficientBalance")
        .withArgs(sys.stranger.address, balance, balance + 1n);
    });

    it("refuse the zero address as receiver", async () => {
      const { sys, token } = await networkHelpers.loadFixture(computeTokenFixture);
      await expect(token.connect(sys.stranger).transfer(ethers.ZeroAddress, 1n))
        .to.be.revertedWithCustomError(token, "ERC20InvalidReceiver")
        .withArgs(ethers.ZeroAddress);
    });

    it("transferFrom spends the allowance and refuses beyond it with ERC20InsufficientAllowance", async () => {
      const { sys, token, relayer } = await networkHelpers.loadFixture(computeTokenFixture);
      await token.connect(sys.stranger).approve(relayer.address, 100n);
      await expect(token.connect(relayer).transferFrom(sys.stranger.address, relayer.address, 70n))
        .to.emit(token, "Transfer")
        .withArgs(sys.stranger.address, relayer.address, 70n);
      expect(await token.allowance(sys.stranger.address, relayer.address)).to.equal(30n);
      await expect(token.connect(relayer).transferFrom(sys.stranger.address, relayer.address, 31n))
        .to.be.revertedWithCustomError(token, "ERC20InsufficientAllowance")
        .withArgs(relayer.address, 30n, 31n);
    });

    it("transferFrom leaves an infinite allowance untouched", async () => {
      const { sys, token, relayer } = await networkHelpers.loadFixture(computeTokenFixture);
      await token.connect(sys.stranger).approve(relayer.address, ethers.MaxUint256);
      await token.connect(relayer).transferFrom(sys.stranger.address, relayer.address, 5n);
      expect(await token.allowance(sys.stranger.address, relayer.address)).to.equal(ethers.MaxUint256);
    });
  });

  describe("interfaces", () => {
    it("reports ERC-165 and IAccessControl support only", async () => {
      const { token } = await networkHelpers.loadFixture(computeTokenFixture);
      expect(await token.supportsInterface("0x01ffc9a7")).to.equal(true); // IERC165
      expect(await token.supportsInterface("0x7965db0b")).to.equal(true); // IAccessControl
      expect(await token.supportsInterface("0xffffffff")).to.equal(false);
    });
  });
});
