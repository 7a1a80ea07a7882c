/**
 * MinerRegistry: nodes, capabilities, stake, unbonding and slashing.
 *
 * Every external function, custom error, event and role check of the registry is exercised here. The system
 * is deployed through the production Ignition module (test/helpers/system.ts); a few tests deploy a bare
 * registry directly to reach constructor checks and the "TrainingRuns not linked yet" state.
 */
import { expect } from "chai";
import { network } from "hardhat";
import {
  MaxUint256,
  Signature,
  TypedDataEncoder,
  ZeroAddress,
  ZeroHash,
  concat,
  id,
  toBeHex,
  verifyTypedData,
} from "ethers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import type { MinerRegistry } from "../typechain-types/index.js";
import {
  A100,
  CPU_NODE,
  H100_NODE,
  HOUR,
  MIN_STAKE_BASE,
  MIN_STAKE_PER_GPU,
  UNBONDING_DELAY,
  type System,
  consentFor,
  createRun,
  deploySystem,
  farDeadline,
  minStakeFor,
  permitFor,
  registerNode,
} from "./helpers/system.js";
import {
  Capability,
  NODE_CONSENT_TYPES,
  REGISTRY_DOMAIN,
  TOKEN,
  type Capabilities,
  signNodeConsent,
} from "../scripts/lib/protocol.js";

const connection = await network.create();
const { ethers, networkHelpers } = connection;
const { time } = networkHelpers;

async function systemFixture() {
  return deploySystem(connection);
}

const DAY = 24n * HOUR;
const MAX_UNBONDING_DELAY = 90n * DAY;
const MAX_UNBONDING_ENTRIES = 8n;
const MAX_STAKE_PARAMETER = 2n ** 128n - 1n;
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const REASON = id("evidence: fake GPU");
const CPU_MIN = minStakeFor(CPU_NODE);
const H100_MIN = minStakeFor(H100_NODE);

// ------------------------------------------------------------------ helpers

/** The deployed system plus the actors most tests use. */
async function setup() {
  const sys = await networkHelpers.loadFixture(systemFixture);
  const [p1, p2] = sys.providers;
  const [n1, n2, n3, n4] = sys.nodes;
  return { sys, registry: sys.registry, token: sys.token, p1, p2, n1, n2, n3, n4 };
}

/** Capabilities in ABI field order, as events and views return them. */
function capsTuple(c: Capabilities) {
  return [
    BigInt(c.gpuCount),
    c.gpuModel,
    BigInt(c.gpuMemoryMB),
    BigInt(c.cpuCores),
    BigInt(c.ramMB),
    BigInt(c.storageGB),
  ];
}

function register(
  sys: System,
  provider: HardhatEthersSigner,
  node: HardhatEthersSigner,
  caps = H100_NODE,
  stake?: bigint,
) {
  return registerNode(connection, sys, provider, node, caps, stake ?? minStakeFor(caps));
}

async function addr(contract: { getAddress(): Promise<string> }) {
  return contract.getAddress();
}

/** Pins the timestamp of the next block and returns it. */
async function nextBlockAt(secondsFromNow = 10n): Promise<bigint> {
  const t = BigInt(await time.latest()) + secondsFromNow;
  await time.setNextBlockTimestamp(t);
  return t;
}

async function entries(registry: MinerRegistry, node: string) {
  return (await registry.unbondingOf(node)).map((e) => [e.beneficiary, e.releaseAt, e.amount]);
}

/** The registry holds exactly the active stakes plus the unbonding entries of `nodes`. */
async function expectConservation(sys: System, nodes: string[]) {
  let total = 0n;
  for (const node of nodes) {
    if (await sys.registry.isRegistered(node)) total += (await sys.registry.getNode(node)).stake;
    for (const entry of await sys.registry.unbondingOf(node)) total += entry.amount;
  }
  expect(await sys.token.balanceOf(await addr(sys.registry))).to.equal(total);
}

/** The address `ecrecover` yields for a consent signature checked against the registry's real message. */
function recovered(sys: System, registryAddress: string, consent: object, signature: string) {
  return verifyTypedData(
    { ...REGISTRY_DOMAIN, chainId: sys.chainId, verifyingContract: registryAddress },
    NODE_CONSENT_TYPES,
    consent,
    signature,
  );
}

async function deployRegistry(
  sys: System,
  args: { admin?: string; token?: string; treasury?: string; base?: bigint; perGpu?: bigint; delay?: bigint } = {},
) {
  const factory = await ethers.getContractFactory("MinerRegistry");
  const contract = await factory.deploy(
    args.admin ?? sys.admin.address,
    args.token ?? (await addr(sys.token)),
    args.treasury ?? sys.treasury.address,
    args.base ?? MIN_STAKE_BASE,
    args.perGpu ?? MIN_STAKE_PER_GPU,
    args.delay ?? UNBONDING_DELAY,
  );
  return contract as unknown as MinerRegistry;
}

/** ERC-2612 permit of `owner` for the registry. */
async function signPermit(sys: System, owner: HardhatEthersSigner, value: bigint, deadline: bigint) {
  return permitFor(sys, owner, await addr(sys.registry), value, deadline);
}

// ------------------------------------------------------------------ tests

describe("MinerRegistry", () => {
  describe("constructor", () => {
    it("stores token, treasury, minimum stake formula, unbonding delay and grants the admin role", async () => {
      const { sys, registry } = await setup();
      expect(await registry.token()).to.equal(await addr(sys.token));
      // The RewardVault module makes the vault the treasury: slashed stake funds accusers' bounties.
      expect(await registry.treasury()).to.equal(await addr(sys.rewardVault));
      expect(await registry.minStakeBase()).to.equal(MIN_STAKE_BASE);
      expect(await registry.minStakePerGpu()).to.equal(MIN_STAKE_PER_GPU);
      expect(await registry.unbondingDelay()).to.equal(UNBONDING_DELAY);
      expect(await registry.hasRole(ZeroHash, sys.admin.address)).to.equal(true);
      expect(await registry.trainingRuns()).to.equal(await addr(sys.trainingRuns));
      expect(await registry.MAX_UNBONDING_ENTRIES()).to.equal(MAX_UNBONDING_ENTRIES);
      expect(await registry.MAX_UNBONDING_DELAY()).to.equal(MAX_UNBONDING_DELAY);
      expect(await registry.MAX_STAKE_PARAMETER()).to.equal(MAX_STAKE_PARAMETER);
    });

    it("emits TreasuryUpdated, MinimumStakeUpdated and UnbondingDelayUpdated at deployment", async () => {
      const { sys } = await setup();
      const bare = await deployRegistry(sys);
      const tx = bare.deploymentTransaction()!;
      await expect(tx).to.emit(bare, "TreasuryUpdated").withArgs(sys.treasury.address);
      await expect(tx).to.emit(bare, "MinimumStakeUpdated").withArgs(MIN_STAKE_BASE, MIN_STAKE_PER_GPU);
      await expect(tx).to.emit(bare, "UnbondingDelayUpdated").withArgs(UNBONDING_DELAY);
    });

    it("reverts with ZeroAddress for a zero admin, token or treasury", async () => {
      const { sys } = await setup();
      const factory = await ethers.getContractFactory("MinerRegistry");
      for (const args of [{ admin: ZeroAddress }, { token: ZeroAddress }, { treasury: ZeroAddress }]) {
        await expect(deployRegistry(sys, args)).to.be.revertedWithCustomError(factory, "MinerRegistryZeroAddress");
      }
    });

    it("reverts with InvalidMinimumStake when the base or the per-GPU minimum exceeds uint128, accepts exactly uint128 max", async () => {
      const { sys } = await setup();
      const factory = await ethers.getContractFactory("MinerRegistry");
      const cases: [bigint, bigint][] = [
        [MAX_STAKE_PARAMETER + 1n, 0n],
        [0n, MAX_STAKE_PARAMETER + 1n],
        [MaxUint256, MaxUint256],
      ];
      for (const [base, perGpu] of cases) {
        await expect(deployRegistry(sys, { base, perGpu }))
          .to.be.revertedWithCustomError(factory, "MinerRegistryInvalidMinimumStake")
          .withArgs(base, perGpu, MAX_STAKE_PARAMETER);
      }
      const bare = await deployRegistry(sys, { base: MAX_STAKE_PARAMETER, perGpu: MAX_STAKE_PARAMETER });
      expect(await bare.minStakeBase()).to.equal(MAX_STAKE_PARAMETER);
      expect(await bare.minStakePerGpu()).to.equal(MAX_STAKE_PARAMETER);
      // The largest formula value does not overflow.
      expect(await bare.minimumStake(65_535n)).to.equal(MAX_STAKE_PARAMETER * 65_536n);
    });

    it("reverts with InvalidUnbondingDelay for 0 and for more than 90 days, accepts exactly 90 days", async () => {
      const { sys } = await setup();
      const factory = await ethers.getContractFactory("MinerRegistry");
      for (const delay of [0n, MAX_UNBONDING_DELAY + 1n]) {
        await expect(deployRegistry(sys, { delay }))
          .to.be.revertedWithCustomError(factory, "MinerRegistryInvalidUnbondingDelay")
          .withArgs(delay, MAX_UNBONDING_DELAY);
      }
      expect(await (await deployRegistry(sys, { delay: MAX_UNBONDING_DELAY })).unbondingDelay()).to.equal(
        MAX_UNBONDING_DELAY,
      );
    });
  });

  describe("registerNode", () => {
    it("registers the node, stores its record, pulls the stake and emits NodeRegistered", async () => {
      const { sys, registry, token, p1, n1 } = await setup();
      const stake = H100_MIN + 5n * TOKEN;
      const tx = register(sys, p1, n1, H100_NODE, stake);
      await expect(tx)
        .to.emit(registry, "NodeRegistered")
        .withArgs(p1.address, n1.address, 1n, capsTuple(H100_NODE), stake);
      await expect(tx).to.changeTokenBalances(ethers, token, [p1, registry], [-stake, stake]);

      const info = await registry.getNode(n1.address);
      expect(info.provider).to.equal(p1.address);
      expect(info.capsId).to.equal(1n);
      expect(info.stake).to.equal(stake);
      expect([...info.capabilities]).to.deep.equal(capsTuple(H100_NODE));
      expect(await registry.isRegistered(n1.address)).to.equal(true);
      expect(await registry.hasMinimumStake(n1.address)).to.equal(true);
      expect(await registry.providerOf(n1.address)).to.equal(p1.address);
      expect(await registry.capsIdOf(n1.address)).to.equal(1n);
      expect(await registry.nodeCountOf(p1.address)).to.equal(1n);
      expect(await registry.nodesOf(p1.address, 0n, 10n)).to.deep.equal([n1.address]);
      expect(await registry.nonces(n1.address)).to.equal(1n);
      expect(await registry.unbondingOf(n1.address)).to.deep.equal([]);
    });

    it("registers a CPU-only node with exactly the base minimum and no storage requirement", async () => {
      const { sys, registry, p1, n1 } = await setup();
      const caps = { ...CPU_NODE, storageGB: 0 };
      await expect(register(sys, p1, n1, caps, MIN_STAKE_BASE))
        .to.emit(registry, "NodeRegistered")
        .withArgs(p1.address, n1.address, 1n, capsTuple(caps), MIN_STAKE_BASE);
      expect(await registry.hasMinimumStake(n1.address)).to.equal(true);
    });

    it("reverts with ZeroAddress for the zero node", async () => {
      const { registry, p1 } = await setup();
      const deadline = await farDeadline(connection);
      await expect(
        registry.connect(p1).registerNode(ZeroAddress, H100_NODE, H100_MIN, deadline, "0x"),
      ).to.be.revertedWithCustomError(registry, "MinerRegistryZeroAddress");
    });

    it("reverts with NodeAlreadyRegistered even with a fresh consent for another provider", async () => {
      const { sys, registry, p1, p2, n1 } = await setup();
      await register(sys, p1, n1);
      await expect(register(sys, p2, n1))
        .to.be.revertedWithCustomError(registry, "MinerRegistryNodeAlreadyRegistered")
        .withArgs(n1.address);
    });

    it("reverts with NodeUnbondingForOther while the previous provider has any entry unbonding, without using the consent", async () => {
      const { sys, registry, p1, p2, n1 } = await setup();
      await register(sys, p1, n1, CPU_NODE, CPU_MIN + 10n);
      const oldCapsId = await registry.capsIdOf(n1.address);
      const t1 = await nextBlockAt();
      await registry.connect(p1).unstake(n1.address, 10n);
      await nextBlockAt(DAY);
      await registry.connect(p1).deregisterNode(n1.address);
      expect((await registry.unbondingOf(n1.address)).length).to.equal(2);
      const nonce = await registry.nonces(n1.address);
      await expect(register(sys, p2, n1, CPU_NODE))
        .to.be.revertedWithCustomError(registry, "MinerRegistryNodeUnbondingForOther")
        .withArgs(n1.address, p1.address);
      expect(await registry.nonces(n1.address)).to.equal(nonce);
      expect(await registry.isRegistered(n1.address)).to.equal(false);

      // The first entry matured and was withdrawn; the second still unbonds for p1.
      await time.setNextBlockTimestamp(t1 + UNBONDING_DELAY);
      await expect(registry.withdraw(n1.address, { gasLimit: 500_000n })).to.emit(registry, "Withdrawn").withArgs(n1.address, p1.address, 10n);
      expect((await registry.unbondingOf(n1.address)).length).to.equal(1);
      await expect(register(sys, p2, n1, CPU_NODE))
        .to.be.revertedWithCustomError(registry, "MinerRegistryNodeUnbondingForOther")
        .withArgs(n1.address, p1.address);

      // Once everything is withdrawn, p2 may register the node.
      await time.increase(DAY);
      await expect(registry.withdraw(n1.address)).to.emit(registry, "Withdrawn").withArgs(n1.address, p1.address, CPU_MIN);
      expect(await registry.unbondingOf(n1.address)).to.deep.equal([]);
      await expect(register(sys, p2, n1, CPU_NODE))
        .to.emit(registry, "NodeRegistered")
        .withArgs(p2.address, n1.address, oldCapsId + 1n, capsTuple(CPU_NODE), CPU_MIN);
      expect(await registry.providerOf(n1.address)).to.equal(p2.address);
      expect(await registry.nonces(n1.address)).to.equal(nonce + 1n);
    });

    it("lets the same provider register its node again while its own funds unbond; the entries stay", async () => {
      const { sys, registry, p1, n1 } = await setup();
      await register(sys, p1, n1, CPU_NODE);
      const t = await nextBlockAt();
      await registry.connect(p1).deregisterNode(n1.address);
      await expect(register(sys, p1, n1, CPU_NODE)).to.emit(registry, "NodeRegistered");
      expect(await registry.providerOf(n1.address)).to.equal(p1.address);
      expect(await entries(registry, n1.address)).to.deep.equal([[p1.address, t + UNBONDING_DELAY, CPU_MIN]]);
    });

    it("lets another provider register the node once the previous provider's entries were slashed away", async () => {
      const { sys, registry, p1, p2, n1 } = await setup();
      await register(sys, p1, n1, CPU_NODE);
      await registry.connect(p1).deregisterNode(n1.address);
      await registry.connect(sys.slasher).slash(n1.address, CPU_MIN, REASON);
      expect(await registry.unbondingOf(n1.address)).to.deep.equal([]);
      await expect(register(sys, p2, n1, CPU_NODE)).to.emit(registry, "NodeRegistered");
    });

    it("reverts with StakeBelowMinimum when the stake is one wei short of base + perGpu * gpuCount", async () => {
      const { sys, registry, p1, n1, n2 } = await setup();
      await expect(register(sys, p1, n1, H100_NODE, H100_MIN - 1n))
        .to.be.revertedWithCustomError(registry, "MinerRegistryStakeBelowMinimum")
        .withArgs(n1.address, H100_MIN - 1n, H100_MIN);
      await expect(register(sys, p1, n2, CPU_NODE, CPU_MIN - 1n))
        .to.be.revertedWithCustomError(registry, "MinerRegistryStakeBelowMinimum")
        .withArgs(n2.address, CPU_MIN - 1n, CPU_MIN);
    });

    it("reverts with SafeCastOverflowedUintDowncast for a stake above uint128", async () => {
      const { sys, registry, p1, n1 } = await setup();
      const tooBig = 2n ** 128n;
      await expect(register(sys, p1, n1, H100_NODE, tooBig))
        .to.be.revertedWithCustomError(registry, "SafeCastOverflowedUintDowncast")
        .withArgs(128n, tooBig);
    });

    it("reverts with InvalidCapabilities naming the inconsistent field", async () => {
      const { sys, registry, p1, n1 } = await setup();
      const cases: [Capabilities, number][] = [
        [{ ...H100_NODE, cpuCores: 0 }, Capability.CpuCores],
        [{ ...H100_NODE, ramMB: 0 }, Capability.Ram],
        [{ ...H100_NODE, gpuModel: ZeroHash }, Capability.GpuModel], // GPUs without a model
        [{ ...CPU_NODE, gpuModel: A100 }, Capability.GpuModel], // a model without GPUs
        [{ ...H100_NODE, gpuMemoryMB: 0 }, Capability.GpuMemory], // GPUs without memory
        [{ ...CPU_NODE, gpuMemoryMB: 1 }, Capability.GpuMemory], // GPU memory without GPUs
      ];
      for (const [caps, field] of cases) {
        await expect(register(sys, p1, n1, caps, H100_MIN))
          .to.be.revertedWithCustomError(registry, "MinerRegistryInvalidCapabilities")
          .withArgs(field);
      }
    });
  });

  describe("registerNode: node consent signature", () => {
    it("consumes the node's nonce only on success", async () => {
      const { sys, registry, p1, n1 } = await setup();
      await expect(register(sys, p1, n1, H100_NODE, 1n)).to.be.revertedWithCustomError(
        registry,
        "MinerRegistryStakeBelowMinimum",
      );
      expect(await registry.nonces(n1.address)).to.equal(0n);
      await register(sys, p1, n1);
      expect(await registry.nonces(n1.address)).to.equal(1n);
    });

    it("refuses a consent signed by another key (recovered = that key)", async () => {
      const { sys, registry, p1, n1, n2 } = await setup();
      const deadline = await farDeadline(connection);
      const signature = await signNodeConsent(
        n2,
        { chainId: sys.chainId, verifyingContract: await addr(registry) },
        { provider: p1.address, nonce: 0n, deadline },
      );
      // n2 signed a message about itself; the registry checks the message about n1.
      const expected = recovered(
        sys,
        await addr(registry),
        { provider: p1.address, node: n1.address, nonce: 0n, deadline },
        signature,
      );
      await expect(registry.connect(p1).registerNode(n1.address, H100_NODE, H100_MIN, deadline, signature))
        .to.be.revertedWithCustomError(registry, "MinerRegistryInvalidNodeSignature")
        .withArgs(n1.address, expected);
      expect(expected).to.not.equal(n1.address);
    });

    it("refuses a consent the node gave to another provider", async () => {
      const { sys, registry, p1, p2, n1 } = await setup();
      const deadline = await farDeadline(connection);
      const forP2 = await consentFor(sys, n1, p2.address, deadline);
      const expected = recovered(
        sys,
        await addr(registry),
        { provider: p1.address, node: n1.address, nonce: 0n, deadline },
        forP2,
      );
      expect(expected).to.not.equal(n1.address);
      await expect(registry.connect(p1).registerNode(n1.address, H100_NODE, H100_MIN, deadline, forP2))
        .to.be.revertedWithCustomError(registry, "MinerRegistryInvalidNodeSignature")
        .withArgs(n1.address, expected);
      await registry.connect(p2).registerNode(n1.address, H100_NODE, H100_MIN, deadline, forP2);
      expect(await registry.providerOf(n1.address)).to.equal(p2.address);
    });

    it("refuses to replay a used consent after deregistration (the nonce advanced)", async () => {
      const { sys, registry, p1, n1 } = await setup();
      const deadline = await farDeadline(connection);
      const signature = await consentFor(sys, n1, p1.address, deadline);
      await registry.connect(p1).registerNode(n1.address, H100_NODE, H100_MIN, deadline, signature);
      await registry.connect(p1).deregisterNode(n1.address);
      const expected = recovered(
        sys,
        await addr(registry),
        { provider: p1.address, node: n1.address, nonce: 1n, deadline },
        signature,
      );
      await expect(registry.connect(p1).registerNode(n1.address, H100_NODE, H100_MIN, deadline, signature))
        .to.be.revertedWithCustomError(registry, "MinerRegistryInvalidNodeSignature")
        .withArgs(n1.address, expected);
    });

    it("accepts a consent in the block whose timestamp equals the deadline", async () => {
      const { sys, registry, p1, n1 } = await setup();
      const deadline = BigInt(await time.latest()) + 100n;
      const signature = await consentFor(sys, n1, p1.address, deadline);
      await time.setNextBlockTimestamp(deadline);
      await expect(registry.connect(p1).registerNode(n1.address, H100_NODE, H100_MIN, deadline, signature)).to.emit(
        registry,
        "NodeRegistered",
      );
      expect(BigInt(await time.latest())).to.equal(deadline);
    });

    it("refuses a consent one second after its deadline with SignatureExpired", async () => {
      const { sys, registry, p1, n1 } = await setup();
      const deadline = BigInt(await time.latest()) + 100n;
      const signature = await consentFor(sys, n1, p1.address, deadline);
      await time.setNextBlockTimestamp(deadline + 1n);
      await expect(registry.connect(p1).registerNode(n1.address, H100_NODE, H100_MIN, deadline, signature))
        .to.be.revertedWithCustomError(registry, "MinerRegistrySignatureExpired")
        .withArgs(deadline, deadline + 1n);
    });

    it("refuses a consent signed for another chain id", async () => {
      const { sys, registry, p1, n1 } = await setup();
      const deadline = await farDeadline(connection);
      const consent = { provider: p1.address, nonce: 0n, deadline };
      const signature = await signNodeConsent(
        n1,
        { chainId: sys.chainId + 1n, verifyingContract: await addr(registry) },
        consent,
      );
      const expected = recovered(sys, await addr(registry), { ...consent, node: n1.address }, signature);
      await expect(registry.connect(p1).registerNode(n1.address, H100_NODE, H100_MIN, deadline, signature))
        .to.be.revertedWithCustomError(registry, "MinerRegistryInvalidNodeSignature")
        .withArgs(n1.address, expected);
    });

    it("refuses a consent signed for another registry, which that registry accepts", async () => {
      const { sys, registry, p1, n1 } = await setup();
      const other = await deployRegistry(sys);
      const deadline = await farDeadline(connection);
      const consent = { provider: p1.address, nonce: 0n, deadline };
      const signature = await signNodeConsent(
        n1,
        { chainId: sys.chainId, verifyingContract: await addr(other) },
        consent,
      );
      const expected = recovered(sys, await addr(registry), { ...consent, node: n1.address }, signature);
      await expect(registry.connect(p1).registerNode(n1.address, H100_NODE, H100_MIN, deadline, signature))
        .to.be.revertedWithCustomError(registry, "MinerRegistryInvalidNodeSignature")
        .withArgs(n1.address, expected);
      await sys.token.connect(p1).approve(await addr(other), H100_MIN);
      await expect(other.connect(p1).registerNode(n1.address, H100_NODE, H100_MIN, deadline, signature)).to.emit(
        other,
        "NodeRegistered",
      );
    });

    it("refuses the malleable twin (s' = n - s, flipped v) of a valid consent, recovering the zero address", async () => {
      const { sys, registry, p1, n1 } = await setup();
      const deadline = await farDeadline(connection);
      const sig = Signature.from(await consentFor(sys, n1, p1.address, deadline));
      const twin = concat([sig.r, toBeHex(SECP256K1_N - BigInt(sig.s), 32), toBeHex(sig.v === 27 ? 28 : 27, 1)]);
      await expect(registry.connect(p1).registerNode(n1.address, H100_NODE, H100_MIN, deadline, twin))
        .to.be.revertedWithCustomError(registry, "MinerRegistryInvalidNodeSignature")
        .withArgs(n1.address, ZeroAddress);
      // The original canonical signature still works.
      await registry.connect(p1).registerNode(n1.address, H100_NODE, H100_MIN, deadline, sig.serialized);
    });

    it("refuses signatures of the wrong length (64-byte ERC-2098, 66 bytes, empty)", async () => {
      const { sys, registry, p1, n1 } = await setup();
      const deadline = await farDeadline(connection);
      const good = await consentFor(sys, n1, p1.address, deadline);
      for (const bad of [Signature.from(good).compactSerialized, concat([good, "0x00"]), "0x"]) {
        await expect(registry.connect(p1).registerNode(n1.address, H100_NODE, H100_MIN, deadline, bad))
          .to.be.revertedWithCustomError(registry, "MinerRegistryInvalidNodeSignature")
          .withArgs(n1.address, ZeroAddress);
      }
    });
  });

  describe("cancelConsent", () => {
    it("uses up the caller's current nonce and emits ConsentCancelled with it", async () => {
      const { registry, n1 } = await setup();
      await expect(registry.connect(n1).cancelConsent()).to.emit(registry, "ConsentCancelled").withArgs(n1.address, 0n);
      expect(await registry.nonces(n1.address)).to.equal(1n);
      await expect(registry.connect(n1).cancelConsent()).to.emit(registry, "ConsentCancelled").withArgs(n1.address, 1n);
      expect(await registry.nonces(n1.address)).to.equal(2n);
    });

    it("voids a consent signed before it (InvalidNodeSignature); a new consent with the next nonce works", async () => {
      const { sys, registry, p1, n1 } = await setup();
      const deadline = await farDeadline(connection);
      const signed = await consentFor(sys, n1, p1.address, deadline); // nonce 0
      await registry.connect(n1).cancelConsent();
      const expected = recovered(
        sys,
        await addr(registry),
        { provider: p1.address, node: n1.address, nonce: 1n, deadline },
        signed,
      );
      expect(expected).to.not.equal(n1.address);
      await expect(registry.connect(p1).registerNode(n1.address, H100_NODE, H100_MIN, deadline, signed))
        .to.be.revertedWithCustomError(registry, "MinerRegistryInvalidNodeSignature")
        .withArgs(n1.address, expected);

      const fresh = await signNodeConsent(
        n1,
        { chainId: sys.chainId, verifyingContract: await addr(registry) },
        { provider: p1.address, nonce: 1n, deadline },
      );
      await expect(registry.connect(p1).registerNode(n1.address, H100_NODE, H100_MIN, deadline, fresh))
        .to.emit(registry, "NodeRegistered")
        .withArgs(p1.address, n1.address, 1n, capsTuple(H100_NODE), H100_MIN);
      expect(await registry.nonces(n1.address)).to.equal(2n);
    });

    it("only touches the caller's nonce: a provider or a stranger cannot void a node's consent", async () => {
      const { sys, registry, p1, n1 } = await setup();
      const deadline = await farDeadline(connection);
      const signed = await consentFor(sys, n1, p1.address, deadline);
      for (const caller of [p1, sys.stranger]) {
        await expect(registry.connect(caller).cancelConsent())
          .to.emit(registry, "ConsentCancelled")
          .withArgs(caller.address, 0n);
      }
      expect(await registry.nonces(n1.address)).to.equal(0n);
      await expect(registry.connect(p1).registerNode(n1.address, H100_NODE, H100_MIN, deadline, signed)).to.emit(
        registry,
        "NodeRegistered",
      );
    });
  });

  describe("domainSeparator", () => {
    it("is the EIP-712 domain (computenet.MinerRegistry, 1, chain id, registry)", async () => {
      const { sys, registry } = await setup();
      const domain = { ...REGISTRY_DOMAIN, chainId: sys.chainId, verifyingContract: await addr(registry) };
      expect(await registry.domainSeparator()).to.equal(TypedDataEncoder.hashDomain(domain));
      const other = await deployRegistry(sys);
      expect(await other.domainSeparator()).to.not.equal(await registry.domainSeparator());
    });
  });

  describe("updateCapabilities", () => {
    it("replaces the capabilities, issues a new capsId, keeps the stake and emits CapabilitiesUpdated", async () => {
      const { sys, registry, p1, n1 } = await setup();
      await register(sys, p1, n1);
      const before = await registry.capsIdOf(n1.address);
      const caps = { ...H100_NODE, gpuCount: 4, gpuModel: A100, gpuMemoryMB: 40_960 };
      await expect(registry.connect(p1).updateCapabilities(n1.address, caps))
        .to.emit(registry, "CapabilitiesUpdated")
        .withArgs(n1.address, before + 1n, capsTuple(caps));
      const info = await registry.getNode(n1.address);
      expect(info.capsId).to.equal(before + 1n);
      expect([...info.capabilities]).to.deep.equal(capsTuple(caps));
      expect(info.stake).to.equal(H100_MIN);
      expect(info.provider).to.equal(p1.address);
    });

    it("reverts with NodeNotRegistered and NotProvider", async () => {
      const { sys, registry, p1, p2, n1, n2 } = await setup();
      await expect(registry.connect(p1).updateCapabilities(n2.address, H100_NODE))
        .to.be.revertedWithCustomError(registry, "MinerRegistryNodeNotRegistered")
        .withArgs(n2.address);
      await register(sys, p1, n1);
      for (const caller of [p2, n1]) {
        await expect(registry.connect(caller).updateCapabilities(n1.address, CPU_NODE))
          .to.be.revertedWithCustomError(registry, "MinerRegistryNotProvider")
          .withArgs(n1.address, caller.address);
      }
    });

    it("reverts with InvalidCapabilities for each inconsistent field", async () => {
      const { sys, registry, p1, n1 } = await setup();
      await register(sys, p1, n1);
      const cases: [Capabilities, number][] = [
        [{ ...H100_NODE, cpuCores: 0 }, Capability.CpuCores],
        [{ ...H100_NODE, ramMB: 0 }, Capability.Ram],
        [{ ...H100_NODE, gpuModel: ZeroHash }, Capability.GpuModel],
        [{ ...CPU_NODE, gpuModel: A100 }, Capability.GpuModel],
        [{ ...H100_NODE, gpuMemoryMB: 0 }, Capability.GpuMemory],
        [{ ...CPU_NODE, gpuMemoryMB: 1 }, Capability.GpuMemory],
      ];
      for (const [caps, field] of cases) {
        await expect(registry.connect(p1).updateCapabilities(n1.address, caps))
          .to.be.revertedWithCustomError(registry, "MinerRegistryInvalidCapabilities")
          .withArgs(field);
      }
    });

    it("reverts with StakeBelowMinimum when adding GPUs the stake does not cover, succeeds after a top-up", async () => {
      const { sys, registry, p1, n1 } = await setup();
      await register(sys, p1, n1, CPU_NODE, CPU_MIN);
      await expect(registry.connect(p1).updateCapabilities(n1.address, H100_NODE))
        .to.be.revertedWithCustomError(registry, "MinerRegistryStakeBelowMinimum")
        .withArgs(n1.address, CPU_MIN, H100_MIN);
      await registry.connect(p1).stake(n1.address, H100_MIN - CPU_MIN);
      await expect(registry.connect(p1).updateCapabilities(n1.address, H100_NODE)).to.emit(
        registry,
        "CapabilitiesUpdated",
      );
    });
  });

  describe("deregisterNode", () => {
    it("moves the whole stake into unbonding without moving tokens and emits NodeDeregistered", async () => {
      const { sys, registry, p1, n1 } = await setup();
      const stake = H100_MIN + 7n;
      await register(sys, p1, n1, H100_NODE, stake);
      const t = await nextBlockAt();
      const tx = registry.connect(p1).deregisterNode(n1.address);
      await expect(tx).to.emit(registry, "NodeDeregistered").withArgs(p1.address, n1.address, stake);
      await expect(tx)
        .to.emit(registry, "UnbondingStarted")
        .withArgs(n1.address, p1.address, stake, t + UNBONDING_DELAY);
      await expect(tx).to.changeTokenBalances(ethers, sys.token, [p1, registry], [0n, 0n]);
      expect(await entries(registry, n1.address)).to.deep.equal([[p1.address, t + UNBONDING_DELAY, stake]]);
    });

    it("leaves no stale entry: getNode reverts, providerOf/capsIdOf are zero, node lists are empty", async () => {
      const { sys, registry, p1, n1 } = await setup();
      await register(sys, p1, n1);
      await registry.connect(p1).deregisterNode(n1.address);
      await expect(registry.getNode(n1.address))
        .to.be.revertedWithCustomError(registry, "MinerRegistryNodeNotRegistered")
        .withArgs(n1.address);
      expect(await registry.providerOf(n1.address)).to.equal(ZeroAddress);
      expect(await registry.capsIdOf(n1.address)).to.equal(0n);
      expect(await registry.isRegistered(n1.address)).to.equal(false);
      expect(await registry.hasMinimumStake(n1.address)).to.equal(false);
      expect(await registry.nodeCountOf(p1.address)).to.equal(0n);
      expect(await registry.nodesOf(p1.address, 0n, 10n)).to.deep.equal([]);
    });

    it("swaps the last node into a removed middle slot; the moved node can still be deregistered", async () => {
      const { sys, registry, p1, n1, n2, n3 } = await setup();
      for (const n of [n1, n2, n3]) await register(sys, p1, n, CPU_NODE);
      await registry.connect(p1).deregisterNode(n2.address);
      expect(await registry.nodeCountOf(p1.address)).to.equal(2n);
      expect(await registry.nodesOf(p1.address, 0n, 10n)).to.deep.equal([n1.address, n3.address]);

      await registry.connect(p1).deregisterNode(n3.address);
      expect(await registry.nodesOf(p1.address, 0n, 10n)).to.deep.equal([n1.address]);
      await registry.connect(p1).deregisterNode(n1.address);
      expect(await registry.nodeCountOf(p1.address)).to.equal(0n);
    });

    it("lets another provider register the node again, once the unbonded stake is withdrawn, with a fresh consent and a new capsId", async () => {
      const { sys, registry, p1, p2, n1 } = await setup();
      await register(sys, p1, n1, CPU_NODE);
      const oldCapsId = await registry.capsIdOf(n1.address);
      await registry.connect(p1).deregisterNode(n1.address);
      await time.increase(UNBONDING_DELAY);
      // The previous provider's unbonding entry pays the previous provider.
      await expect(registry.connect(p2).withdraw(n1.address)).to.changeTokenBalances(
        ethers,
        sys.token,
        [p1, p2],
        [CPU_MIN, 0n],
      );
      await expect(register(sys, p2, n1, CPU_NODE))
        .to.emit(registry, "NodeRegistered")
        .withArgs(p2.address, n1.address, oldCapsId + 1n, capsTuple(CPU_NODE), CPU_MIN);
      expect(await registry.providerOf(n1.address)).to.equal(p2.address);
      expect(await registry.nodesOf(p2.address, 0n, 10n)).to.deep.equal([n1.address]);
      expect(await registry.nodeCountOf(p1.address)).to.equal(0n);
      expect(await registry.unbondingOf(n1.address)).to.deep.equal([]);
    });

    it("reverts with NodeNotRegistered and NotProvider", async () => {
      const { sys, registry, p1, p2, n1 } = await setup();
      await expect(registry.connect(p1).deregisterNode(n1.address))
        .to.be.revertedWithCustomError(registry, "MinerRegistryNodeNotRegistered")
        .withArgs(n1.address);
      await register(sys, p1, n1);
      await expect(registry.connect(p2).deregisterNode(n1.address))
        .to.be.revertedWithCustomError(registry, "MinerRegistryNotProvider")
        .withArgs(n1.address, p2.address);
    });

    it("with a fully slashed stake creates no unbonding entry and reports 0 unbonded", async () => {
      const { sys, registry, p1, n1 } = await setup();
      await register(sys, p1, n1, CPU_NODE);
      await registry.connect(sys.slasher).slash(n1.address, CPU_MIN, REASON);
      const tx = registry.connect(p1).deregisterNode(n1.address);
      await expect(tx).to.emit(registry, "NodeDeregistered").withArgs(p1.address, n1.address, 0n);
      await expect(tx).to.not.emit(registry, "UnbondingStarted");
      expect(await registry.unbondingOf(n1.address)).to.deep.equal([]);
    });

    it("reverts with UnbondingQueueFull when the node already has 8 unbonding entries", async () => {
      const { sys, registry, p1, n1 } = await setup();
      await register(sys, p1, n1, CPU_NODE, CPU_MIN + 8n);
      for (let i = 0n; i < MAX_UNBONDING_ENTRIES; i++) await registry.connect(p1).unstake(n1.address, 1n);
      await expect(registry.connect(p1).deregisterNode(n1.address))
        .to.be.revertedWithCustomError(registry, "MinerRegistryUnbondingQueueFull")
        .withArgs(n1.address, MAX_UNBONDING_ENTRIES);
    });
  });

  describe("deregisterNode / updateCapabilities and training runs", () => {
    it("refuse with NodeInActiveRuns while the node is registered for pending runs, succeed once they are cancelled", async () => {
      const { sys, registry, p1, n1 } = await setup();
      await register(sys, p1, n1);
      const run1 = await createRun(sys);
      const run2 = await createRun(sys);
      await sys.trainingRuns.connect(p1).registerForRun(run1, n1.address);
      await sys.trainingRuns.connect(n1).registerForRun(run2, n1.address);
      expect(await sys.trainingRuns.activeRunCount(n1.address)).to.equal(2n);

      await expect(registry.connect(p1).deregisterNode(n1.address))
        .to.be.revertedWithCustomError(registry, "MinerRegistryNodeInActiveRuns")
        .withArgs(n1.address, 2n);
      await sys.trainingRuns.connect(sys.buyer).cancelRun(run1);
      await expect(registry.connect(p1).updateCapabilities(n1.address, CPU_NODE))
        .to.be.revertedWithCustomError(registry, "MinerRegistryNodeInActiveRuns")
        .withArgs(n1.address, 1n);

      await sys.trainingRuns.connect(sys.buyer).cancelRun(run2);
      await expect(registry.connect(p1).updateCapabilities(n1.address, CPU_NODE)).to.emit(
        registry,
        "CapabilitiesUpdated",
      );
      await expect(registry.connect(p1).deregisterNode(n1.address)).to.emit(registry, "NodeDeregistered");
    });

    it("refuse with TrainingRunsNotSet on a registry that was never linked", async () => {
      const { sys, p1, n1 } = await setup();
      const bare = await deployRegistry(sys);
      const deadline = await farDeadline(connection);
      const signature = await signNodeConsent(
        n1,
        { chainId: sys.chainId, verifyingContract: await addr(bare) },
        { provider: p1.address, nonce: 0n, deadline },
      );
      await sys.token.connect(p1).approve(await addr(bare), CPU_MIN);
      await bare.connect(p1).registerNode(n1.address, CPU_NODE, CPU_MIN, deadline, signature);
      await expect(bare.connect(p1).deregisterNode(n1.address)).to.be.revertedWithCustomError(
        bare,
        "MinerRegistryTrainingRunsNotSet",
      );
      await expect(bare.connect(p1).updateCapabilities(n1.address, CPU_NODE)).to.be.revertedWithCustomError(
        bare,
        "MinerRegistryTrainingRunsNotSet",
      );
    });
  });

  describe("stake", () => {
    it("adds to the active stake, pulls the tokens and emits Staked with the new total", async () => {
      const { sys, registry, p1, n1 } = await setup();
      await register(sys, p1, n1);
      const tx = registry.connect(p1).stake(n1.address, 3n * TOKEN);
      await expect(tx)
        .to.emit(registry, "Staked")
        .withArgs(n1.address, p1.address, 3n * TOKEN, H100_MIN + 3n * TOKEN);
      await expect(tx).to.changeTokenBalances(ethers, sys.token, [p1, registry], [-3n * TOKEN, 3n * TOKEN]);
      expect((await registry.getNode(n1.address)).stake).to.equal(H100_MIN + 3n * TOKEN);
    });

    it("reverts with ZeroAmount, NodeNotRegistered, NotProvider and SafeCast overflow", async () => {
      const { sys, registry, p1, p2, n1, n2 } = await setup();
      await expect(registry.connect(p1).stake(n2.address, 1n))
        .to.be.revertedWithCustomError(registry, "MinerRegistryNodeNotRegistered")
        .withArgs(n2.address);
      await register(sys, p1, n1);
      await expect(registry.connect(p1).stake(n1.address, 0n)).to.be.revertedWithCustomError(
        registry,
        "MinerRegistryZeroAmount",
      );
      await expect(registry.connect(p2).stake(n1.address, 1n))
        .to.be.revertedWithCustomError(registry, "MinerRegistryNotProvider")
        .withArgs(n1.address, p2.address);
      await expect(registry.connect(p1).stake(n1.address, 2n ** 128n))
        .to.be.revertedWithCustomError(registry, "SafeCastOverflowedUintDowncast")
        .withArgs(128n, 2n ** 128n);
    });
  });

  describe("unstake", () => {
    it("moves the amount into an unbonding entry released after the delay, without moving tokens", async () => {
      const { sys, registry, p1, n1 } = await setup();
      await register(sys, p1, n1, H100_NODE, H100_MIN + 10n * TOKEN);
      const t = await nextBlockAt();
      const tx = registry.connect(p1).unstake(n1.address, 10n * TOKEN);
      await expect(tx)
        .to.emit(registry, "UnbondingStarted")
        .withArgs(n1.address, p1.address, 10n * TOKEN, t + UNBONDING_DELAY);
      await expect(tx).to.changeTokenBalances(ethers, sys.token, [p1, registry], [0n, 0n]);
      expect((await registry.getNode(n1.address)).stake).to.equal(H100_MIN);
      expect(await registry.hasMinimumStake(n1.address)).to.equal(true);
      expect(await entries(registry, n1.address)).to.deep.equal([[p1.address, t + UNBONDING_DELAY, 10n * TOKEN]]);
    });

    it("reverts with ZeroAmount, InsufficientStake and StakeBelowMinimum (exact remaining and minimum)", async () => {
      const { sys, registry, p1, n1 } = await setup();
      const stake = H100_MIN + 10n;
      await register(sys, p1, n1, H100_NODE, stake);
      await expect(registry.connect(p1).unstake(n1.address, 0n)).to.be.revertedWithCustomError(
        registry,
        "MinerRegistryZeroAmount",
      );
      await expect(registry.connect(p1).unstake(n1.address, stake + 1n))
        .to.be.revertedWithCustomError(registry, "MinerRegistryInsufficientStake")
        .withArgs(n1.address, stake, stake + 1n);
      await expect(registry.connect(p1).unstake(n1.address, 11n))
        .to.be.revertedWithCustomError(registry, "MinerRegistryStakeBelowMinimum")
        .withArgs(n1.address, H100_MIN - 1n, H100_MIN);
    });

    it("reverts with NodeNotRegistered and NotProvider", async () => {
      const { sys, registry, p1, n1 } = await setup();
      await expect(registry.connect(p1).unstake(n1.address, 1n))
        .to.be.revertedWithCustomError(registry, "MinerRegistryNodeNotRegistered")
        .withArgs(n1.address);
      await register(sys, p1, n1, H100_NODE, H100_MIN + 10n);
      await expect(registry.connect(sys.stranger).unstake(n1.address, 1n))
        .to.be.revertedWithCustomError(registry, "MinerRegistryNotProvider")
        .withArgs(n1.address, sys.stranger.address);
    });

    it("accepts 8 entries, refuses the 9th with UnbondingQueueFull, accepts again after a withdrawal", async () => {
      const { sys, registry, p1, n1 } = await setup();
      await register(sys, p1, n1, CPU_NODE, CPU_MIN + 20n);
      for (let i = 0n; i < MAX_UNBONDING_ENTRIES; i++) await registry.connect(p1).unstake(n1.address, 1n);
      await expect(registry.connect(p1).unstake(n1.address, 1n))
        .to.be.revertedWithCustomError(registry, "MinerRegistryUnbondingQueueFull")
        .withArgs(n1.address, MAX_UNBONDING_ENTRIES);
      await time.increase(UNBONDING_DELAY);
      await registry.withdraw(n1.address);
      await expect(registry.connect(p1).unstake(n1.address, 1n)).to.emit(registry, "UnbondingStarted");
    });
  });

  describe("withdraw", () => {
    it("reverts with NothingToWithdraw for a node without entries and one second before release; pays at release", async () => {
      const { sys, registry, p1, n1 } = await setup();
      await expect(registry.withdraw(n1.address))
        .to.be.revertedWithCustomError(registry, "MinerRegistryNothingToWithdraw")
        .withArgs(n1.address);
      await register(sys, p1, n1, CPU_NODE);
      const t = await nextBlockAt();
      await registry.connect(p1).deregisterNode(n1.address);
      const releaseAt = t + UNBONDING_DELAY;

      await time.setNextBlockTimestamp(releaseAt - 1n);
      await expect(registry.withdraw(n1.address, { gasLimit: 500_000n }))
        .to.be.revertedWithCustomError(registry, "MinerRegistryNothingToWithdraw")
        .withArgs(n1.address);
      expect(BigInt(await time.latest())).to.equal(releaseAt - 1n);

      await time.setNextBlockTimestamp(releaseAt);
      const tx = registry.withdraw(n1.address, { gasLimit: 500_000n });
      await expect(tx).to.emit(registry, "Withdrawn").withArgs(n1.address, p1.address, CPU_MIN);
      await expect(tx).to.changeTokenBalances(ethers, sys.token, [p1, registry], [CPU_MIN, -CPU_MIN]);
      expect(await registry.unbondingOf(n1.address)).to.deep.equal([]);
      await expect(registry.withdraw(n1.address)).to.be.revertedWithCustomError(
        registry,
        "MinerRegistryNothingToWithdraw",
      );
    });

    it("pays only matured entries wherever they sit and keeps the others in order", async () => {
      const { sys, registry, p1, n1 } = await setup();
      await register(sys, p1, n1, CPU_NODE, CPU_MIN + 100n);
      const unstakeWith = async (delay: bigint, amount: bigint) => {
        await registry.connect(sys.admin).setUnbondingDelay(delay);
        const t = await nextBlockAt();
        await registry.connect(p1).unstake(n1.address, amount);
        return [p1.address, t + delay, amount];
      };
      // Shortening the delay makes later entries mature before earlier ones.
      const a = await unstakeWith(7n * DAY, 1n);
      const b = await unstakeWith(1n * DAY, 2n);
      const c = await unstakeWith(8n * DAY, 3n);
      const d = await unstakeWith(1n * DAY, 4n);
      await time.increaseTo((d[1] as bigint) + 1n);

      expect(await registry.withdraw.staticCall(n1.address)).to.equal(6n);
      const tx = registry.connect(sys.stranger).withdraw(n1.address);
      await expect(tx).to.emit(registry, "Withdrawn").withArgs(n1.address, p1.address, 2n);
      await expect(tx).to.emit(registry, "Withdrawn").withArgs(n1.address, p1.address, 4n);
      await expect(tx).to.changeTokenBalances(ethers, sys.token, [p1, registry, sys.stranger], [6n, -6n, 0n]);
      expect(await entries(registry, n1.address)).to.deep.equal([a, c]);

      await time.increaseTo(a[1] as bigint);
      await expect(registry.withdraw(n1.address)).to.changeTokenBalances(ethers, sys.token, [p1, registry], [1n, -1n]);
      expect(await entries(registry, n1.address)).to.deep.equal([c]);
    });

    it("can be called by anyone but always pays the beneficiary, also after the node was registered again", async () => {
      const { sys, registry, p1, p2, n1 } = await setup();
      await register(sys, p1, n1, CPU_NODE);
      await registry.connect(p1).deregisterNode(n1.address);
      await register(sys, p1, n1, CPU_NODE, CPU_MIN + 5n); // its own provider, while the old stake unbonds
      await time.increase(UNBONDING_DELAY);
      const tx = registry.connect(p2).withdraw(n1.address);
      await expect(tx).to.emit(registry, "Withdrawn").withArgs(n1.address, p1.address, CPU_MIN);
      await expect(tx).to.changeTokenBalances(ethers, sys.token, [p1, p2, registry], [CPU_MIN, 0n, -CPU_MIN]);
      // The new registration's stake is untouched.
      expect((await registry.getNode(n1.address)).stake).to.equal(CPU_MIN + 5n);
      expect(await registry.unbondingOf(n1.address)).to.deep.equal([]);
    });
  });

  describe("slash", () => {
    it("takes active stake first, sends it to the treasury (not the caller) and emits Slashed", async () => {
      const { sys, registry, p1, n1 } = await setup();
      await register(sys, p1, n1, H100_NODE, H100_MIN + 50n);
      await registry.connect(p1).unstake(n1.address, 50n);
      expect(await registry.connect(sys.slasher).slash.staticCall(n1.address, 30n, REASON)).to.equal(30n);
      const tx = registry.connect(sys.slasher).slash(n1.address, 30n, REASON);
      await expect(tx)
        .to.emit(registry, "Slashed")
        .withArgs(n1.address, sys.slasher.address, 30n, 0n, REASON, await addr(sys.rewardVault));
      await expect(tx).to.changeTokenBalances(
        ethers,
        sys.token,
        [registry, sys.rewardVault, sys.slasher, p1],
        [-30n, 30n, 0n, 0n],
      );
      expect((await registry.getNode(n1.address)).stake).to.equal(H100_MIN - 30n);
      expect((await registry.unbondingOf(n1.address))[0].amount).to.equal(50n);
    });

    it("then takes unbonding entries newest first, partially emptying the last one reached", async () => {
      const { sys, registry, p1, n1 } = await setup();
      await register(sys, p1, n1, CPU_NODE, CPU_MIN + 300n);
      await registry.connect(p1).unstake(n1.address, 100n);
      await registry.connect(p1).unstake(n1.address, 200n);
      const [older, newer] = await entries(registry, n1.address);
      // stake CPU_MIN, then the newer entry (200), then 50 of the older one (100).
      const tx = registry.connect(sys.slasher).slash(n1.address, CPU_MIN + 250n, REASON);
      await expect(tx)
        .to.emit(registry, "Slashed")
        .withArgs(n1.address, sys.slasher.address, CPU_MIN, 250n, REASON, await addr(sys.rewardVault));
      await expect(tx).to.changeTokenBalances(
        ethers,
        sys.token,
        [registry, sys.rewardVault],
        [-(CPU_MIN + 250n), CPU_MIN + 250n],
      );
      expect(newer[2]).to.equal(200n);
      expect(await entries(registry, n1.address)).to.deep.equal([[older[0], older[1], 50n]]);
      expect((await registry.getNode(n1.address)).stake).to.equal(0n);
      expect(await registry.isRegistered(n1.address)).to.equal(true);
    });

    it("takes everything when asked for more than available and emits the actual amounts", async () => {
      const { sys, registry, p1, n1 } = await setup();
      await register(sys, p1, n1, CPU_NODE, CPU_MIN + 40n);
      await registry.connect(p1).unstake(n1.address, 40n);
      expect(await registry.connect(sys.slasher).slash.staticCall(n1.address, MaxUint256, REASON)).to.equal(
        CPU_MIN + 40n,
      );
      const tx = registry.connect(sys.slasher).slash(n1.address, MaxUint256, REASON);
      await expect(tx)
        .to.emit(registry, "Slashed")
        .withArgs(n1.address, sys.slasher.address, CPU_MIN, 40n, REASON, await addr(sys.rewardVault));
      await expect(tx).to.changeTokenBalances(
        ethers,
        sys.token,
        [registry, sys.rewardVault],
        [-(CPU_MIN + 40n), CPU_MIN + 40n],
      );
      expect(await registry.unbondingOf(n1.address)).to.deep.equal([]);
      // Nothing left: a further slash takes 0 and does nothing.
      expect(await registry.connect(sys.slasher).slash.staticCall(n1.address, 1n, REASON)).to.equal(0n);
      const again = registry.connect(sys.slasher).slash(n1.address, 1n, REASON);
      await expect(again).to.not.emit(registry, "Slashed");
      await expect(again).to.changeTokenBalances(ethers, sys.token, [registry, sys.rewardVault], [0n, 0n]);
    });

    it("still reaches the unbonding funds of a deregistered node", async () => {
      const { sys, registry, p1, n1 } = await setup();
      await register(sys, p1, n1, CPU_NODE);
      await registry.connect(p1).deregisterNode(n1.address);
      const tx = registry.connect(sys.slasher).slash(n1.address, 10n, REASON);
      await expect(tx)
        .to.emit(registry, "Slashed")
        .withArgs(n1.address, sys.slasher.address, 0n, 10n, REASON, await addr(sys.rewardVault));
      await expect(tx).to.changeTokenBalances(ethers, sys.token, [registry, sys.rewardVault], [-10n, 10n]);
      await time.increase(UNBONDING_DELAY);
      await expect(registry.withdraw(n1.address)).to.changeTokenBalances(ethers, sys.token, [p1], [CPU_MIN - 10n]);
    });

    it("reaches the unbonding entry of an earlier registration once the current stake is exhausted (queue is per node)", async () => {
      const { sys, registry, p1, n1 } = await setup();
      await register(sys, p1, n1, CPU_NODE);
      await registry.connect(p1).deregisterNode(n1.address);
      await register(sys, p1, n1, CPU_NODE);
      await expect(registry.connect(sys.slasher).slash(n1.address, CPU_MIN + 5n, REASON))
        .to.emit(registry, "Slashed")
        .withArgs(n1.address, sys.slasher.address, CPU_MIN, 5n, REASON, await addr(sys.rewardVault));
      const left = await entries(registry, n1.address);
      expect(left.length).to.equal(1);
      expect([left[0][0], left[0][2]]).to.deep.equal([p1.address, CPU_MIN - 5n]);
    });

    it("pays the current treasury after setTreasury", async () => {
      const { sys, registry, p1, n1 } = await setup();
      await register(sys, p1, n1, CPU_NODE);
      await registry.connect(sys.admin).setTreasury(sys.stranger.address);
      const tx = registry.connect(sys.slasher).slash(n1.address, 7n, REASON);
      await expect(tx)
        .to.emit(registry, "Slashed")
        .withArgs(n1.address, sys.slasher.address, 7n, 0n, REASON, sys.stranger.address);
      await expect(tx).to.changeTokenBalances(ethers, sys.token, [sys.stranger, sys.rewardVault], [7n, 0n]);
    });

    it("below the minimum makes hasMinimumStake false; a top-up restores it", async () => {
      const { sys, registry, p1, n1 } = await setup();
      await register(sys, p1, n1);
      await registry.connect(sys.slasher).slash(n1.address, 1n, REASON);
      expect(await registry.hasMinimumStake(n1.address)).to.equal(false);
      expect(await registry.isRegistered(n1.address)).to.equal(true);
      await expect(registry.connect(p1).unstake(n1.address, 1n))
        .to.be.revertedWithCustomError(registry, "MinerRegistryStakeBelowMinimum")
        .withArgs(n1.address, H100_MIN - 2n, H100_MIN);
      await expect(registry.connect(p1).stake(n1.address, 1n))
        .to.emit(registry, "Staked")
        .withArgs(n1.address, p1.address, 1n, H100_MIN);
      expect(await registry.hasMinimumStake(n1.address)).to.equal(true);
    });

    it("reverts with ZeroAmount", async () => {
      const { sys, registry, p1, n1 } = await setup();
      await register(sys, p1, n1, CPU_NODE);
      await expect(registry.connect(sys.slasher).slash(n1.address, 0n, REASON)).to.be.revertedWithCustomError(
        registry,
        "MinerRegistryZeroAmount",
      );
      expect((await registry.getNode(n1.address)).stake).to.equal(CPU_MIN);
    });

    it("returns 0 without a revert, an event or a transfer when the node has nothing left (unknown, or fully slashed)", async () => {
      const { sys, registry, p1, n1, n2 } = await setup();
      const registryAddress = await addr(registry);
      // A node never registered.
      expect(await registry.connect(sys.slasher).slash.staticCall(n2.address, 1n, REASON)).to.equal(0n);
      const unknown = registry.connect(sys.slasher).slash(n2.address, 1n, REASON);
      await expect(unknown).to.not.emit(registry, "Slashed");
      await expect(unknown).to.changeTokenBalances(ethers, sys.token, [registry, sys.rewardVault], [0n, 0n]);
      // A registered node whose stake was slashed to 0, with no unbonding entry.
      await register(sys, p1, n1, CPU_NODE);
      await registry.connect(sys.slasher).slash(n1.address, CPU_MIN, REASON);
      const treasuryBefore = await sys.token.balanceOf(await addr(sys.rewardVault));
      const registryBefore = await sys.token.balanceOf(registryAddress);
      expect(await registry.connect(sys.slasher).slash.staticCall(n1.address, MaxUint256, REASON)).to.equal(0n);
      await expect(registry.connect(sys.slasher).slash(n1.address, MaxUint256, REASON)).to.not.emit(registry, "Slashed");
      expect(await sys.token.balanceOf(await addr(sys.rewardVault))).to.equal(treasuryBefore);
      expect(await sys.token.balanceOf(registryAddress)).to.equal(registryBefore);
      expect((await registry.getNode(n1.address)).stake).to.equal(0n);
      expect(await registry.isRegistered(n1.address)).to.equal(true);
    });

    it("is refused to anyone without SLASHER_ROLE, including the admin and the provider", async () => {
      const { sys, registry, p1, n1 } = await setup();
      await register(sys, p1, n1);
      const role = await registry.SLASHER_ROLE();
      for (const caller of [sys.stranger, sys.admin, p1]) {
        await expect(registry.connect(caller).slash(n1.address, 1n, REASON))
          .to.be.revertedWithCustomError(registry, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, role);
      }
    });
  });

  describe("admin setters", () => {
    it("setMinimumStake updates the formula and emits MinimumStakeUpdated; existing nodes stay registered", async () => {
      const { sys, registry, p1, n1 } = await setup();
      await register(sys, p1, n1);
      await expect(registry.connect(sys.admin).setMinimumStake(500n, 1000n))
        .to.emit(registry, "MinimumStakeUpdated")
        .withArgs(500n, 1000n);
      expect(await registry.minimumStake(0n)).to.equal(500n);
      expect(await registry.minimumStake(3n)).to.equal(3500n);
      await registry.connect(sys.admin).setMinimumStake(H100_MIN + 1n, 0n);
      expect(await registry.isRegistered(n1.address)).to.equal(true);
      expect(await registry.hasMinimumStake(n1.address)).to.equal(false);
    });

    it("setMinimumStake refuses a base or a per-GPU minimum above uint128 (InvalidMinimumStake) and accepts uint128 max", async () => {
      const { sys, registry } = await setup();
      const cases: [bigint, bigint][] = [
        [MAX_STAKE_PARAMETER + 1n, 0n],
        [0n, MAX_STAKE_PARAMETER + 1n],
        [MIN_STAKE_BASE, MaxUint256],
        [MaxUint256, MaxUint256],
      ];
      for (const [base, perGpu] of cases) {
        await expect(registry.connect(sys.admin).setMinimumStake(base, perGpu))
          .to.be.revertedWithCustomError(registry, "MinerRegistryInvalidMinimumStake")
          .withArgs(base, perGpu, MAX_STAKE_PARAMETER);
      }
      expect(await registry.minStakeBase()).to.equal(MIN_STAKE_BASE);
      expect(await registry.minStakePerGpu()).to.equal(MIN_STAKE_PER_GPU);
      await expect(registry.connect(sys.admin).setMinimumStake(MAX_STAKE_PARAMETER, MAX_STAKE_PARAMETER))
        .to.emit(registry, "MinimumStakeUpdated")
        .withArgs(MAX_STAKE_PARAMETER, MAX_STAKE_PARAMETER);
      expect(await registry.minimumStake(65_535n)).to.equal(MAX_STAKE_PARAMETER * 65_536n);
    });

    it("setUnbondingDelay emits UnbondingDelayUpdated, accepts (0, 90 days] and applies to new entries only", async () => {
      const { sys, registry, p1, n1 } = await setup();
      await register(sys, p1, n1, CPU_NODE, CPU_MIN + 2n);
      const t1 = await nextBlockAt();
      await registry.connect(p1).unstake(n1.address, 1n);
      for (const delay of [0n, MAX_UNBONDING_DELAY + 1n]) {
        await expect(registry.connect(sys.admin).setUnbondingDelay(delay))
          .to.be.revertedWithCustomError(registry, "MinerRegistryInvalidUnbondingDelay")
          .withArgs(delay, MAX_UNBONDING_DELAY);
      }
      await expect(registry.connect(sys.admin).setUnbondingDelay(MAX_UNBONDING_DELAY))
        .to.emit(registry, "UnbondingDelayUpdated")
        .withArgs(MAX_UNBONDING_DELAY);
      const t2 = await nextBlockAt();
      await registry.connect(p1).unstake(n1.address, 1n);
      expect(await entries(registry, n1.address)).to.deep.equal([
        [p1.address, t1 + UNBONDING_DELAY, 1n],
        [p1.address, t2 + MAX_UNBONDING_DELAY, 1n],
      ]);
    });

    it("setTreasury emits TreasuryUpdated and refuses the zero address", async () => {
      const { sys, registry } = await setup();
      await expect(registry.connect(sys.admin).setTreasury(sys.stranger.address))
        .to.emit(registry, "TreasuryUpdated")
        .withArgs(sys.stranger.address);
      expect(await registry.treasury()).to.equal(sys.stranger.address);
      await expect(registry.connect(sys.admin).setTreasury(ZeroAddress)).to.be.revertedWithCustomError(
        registry,
        "MinerRegistryZeroAddress",
      );
    });

    it("setTrainingRuns links once: ZeroAddress, TrainingRunsSet, then TrainingRunsAlreadySet", async () => {
      const { sys, registry } = await setup();
      const runs = await addr(sys.trainingRuns);
      await expect(registry.connect(sys.admin).setTrainingRuns(sys.stranger.address))
        .to.be.revertedWithCustomError(registry, "MinerRegistryTrainingRunsAlreadySet")
        .withArgs(runs);

      const bare = await deployRegistry(sys);
      expect(await bare.trainingRuns()).to.equal(ZeroAddress);
      await expect(bare.connect(sys.admin).setTrainingRuns(ZeroAddress)).to.be.revertedWithCustomError(
        bare,
        "MinerRegistryZeroAddress",
      );
      await expect(bare.connect(sys.admin).setTrainingRuns(runs)).to.emit(bare, "TrainingRunsSet").withArgs(runs);
      expect(await bare.trainingRuns()).to.equal(runs);
      await expect(bare.connect(sys.admin).setTrainingRuns(sys.stranger.address))
        .to.be.revertedWithCustomError(bare, "MinerRegistryTrainingRunsAlreadySet")
        .withArgs(runs);
    });

    it("are refused to non-admins with AccessControlUnauthorizedAccount", async () => {
      const { sys } = await setup();
      const bare = await deployRegistry(sys);
      const calls = [
        (r: MinerRegistry) => r.setMinimumStake(1n, 1n),
        (r: MinerRegistry) => r.setUnbondingDelay(DAY),
        (r: MinerRegistry) => r.setTreasury(sys.stranger.address),
        (r: MinerRegistry) => r.setTrainingRuns(sys.stranger.address),
      ];
      for (const caller of [sys.stranger, sys.slasher]) {
        for (const call of calls) {
          await expect(call(bare.connect(caller)))
            .to.be.revertedWithCustomError(bare, "AccessControlUnauthorizedAccount")
            .withArgs(caller.address, ZeroHash);
        }
      }
    });
  });

  describe("views", () => {
    it("minimumStake is base + perGpu * gpuCount", async () => {
      const { registry } = await setup();
      expect(await registry.minimumStake(0n)).to.equal(MIN_STAKE_BASE);
      expect(await registry.minimumStake(8n)).to.equal(MIN_STAKE_BASE + 8n * MIN_STAKE_PER_GPU);
    });

    it("unknown nodes: isRegistered/hasMinimumStake false, providerOf/capsIdOf zero, getNode reverts, no unbonding", async () => {
      const { sys, registry } = await setup();
      const n = sys.nodes[5].address;
      expect(await registry.isRegistered(n)).to.equal(false);
      expect(await registry.hasMinimumStake(n)).to.equal(false);
      expect(await registry.providerOf(n)).to.equal(ZeroAddress);
      expect(await registry.capsIdOf(n)).to.equal(0n);
      expect(await registry.registrationOf(n)).to.deep.equal([ZeroAddress, 0n]);
      expect(await registry.nodeCountOf(n)).to.equal(0n);
      expect(await registry.unbondingOf(n)).to.deep.equal([]);
      await expect(registry.getNode(n))
        .to.be.revertedWithCustomError(registry, "MinerRegistryNodeNotRegistered")
        .withArgs(n);
    });

    it("registrationOf returns the provider and the current capsId of a registered node", async () => {
      const { sys, registry, p1, n1 } = await setup();
      await register(sys, p1, n1, CPU_NODE);
      expect(await registry.registrationOf(n1.address)).to.deep.equal([p1.address, await registry.capsIdOf(n1.address)]);
      expect(await registry.capsIdOf(n1.address)).to.not.equal(0n);
    });

    it("nodesOf pages through a provider's nodes", async () => {
      const { sys, registry, p1, p2, n1, n2, n3, n4 } = await setup();
      for (const n of [n1, n2, n3]) await register(sys, p1, n, CPU_NODE);
      await register(sys, p2, n4, CPU_NODE);
      const page = (offset: bigint, limit: bigint) => registry.nodesOf(p1.address, offset, limit);
      expect(await registry.nodeCountOf(p1.address)).to.equal(3n);
      expect(await page(0n, 2n)).to.deep.equal([n1.address, n2.address]);
      expect(await page(2n, 2n)).to.deep.equal([n3.address]);
      expect(await page(1n, 1n)).to.deep.equal([n2.address]);
      expect(await page(0n, 0n)).to.deep.equal([]);
      expect(await page(3n, 1n)).to.deep.equal([]);
      expect(await page(100n, 5n)).to.deep.equal([]);
      expect(await page(MaxUint256, MaxUint256)).to.deep.equal([]);
      expect(await page(0n, MaxUint256)).to.deep.equal([n1.address, n2.address, n3.address]);
      expect(await registry.nodesOf(p2.address, 0n, 10n)).to.deep.equal([n4.address]);
    });

    it("nodesOf clamps a limit that overflows offset + limit (e.g. offset 1, limit MaxUint256)", async () => {
      const { sys, registry, p1, n1, n2, n3 } = await setup();
      for (const n of [n1, n2, n3]) await register(sys, p1, n, CPU_NODE);
      // A naive `offset + limit` would overflow (panic 0x11) here; the page is clamped instead.
      expect(await registry.nodesOf(p1.address, 1n, MaxUint256)).to.deep.equal([n2.address, n3.address]);
    });
  });

  describe("capsId", () => {
    it("is unique and increases by one on every registration and capability update, across nodes", async () => {
      const { sys, registry, p1, p2, n1, n2 } = await setup();
      const seen: bigint[] = [];
      const record = async (node: HardhatEthersSigner) => seen.push(await registry.capsIdOf(node.address));
      await register(sys, p1, n1);
      await record(n1);
      await register(sys, p2, n2, CPU_NODE);
      await record(n2);
      await registry.connect(p1).updateCapabilities(n1.address, H100_NODE); // same hardware, still a new id
      await record(n1);
      await registry.connect(p1).deregisterNode(n1.address);
      await register(sys, p1, n1);
      await record(n1);
      await registry.connect(p2).updateCapabilities(n2.address, { ...CPU_NODE, cpuCores: 8 });
      await record(n2);
      expect(seen).to.deep.equal([1n, 2n, 3n, 4n, 5n]);
    });
  });

  describe("multicall + selfPermit", () => {
    it("registers a node with a permit instead of an approval, in one transaction", async () => {
      const { sys, registry, p1, n1 } = await setup();
      await sys.token.connect(p1).approve(await addr(registry), 0n);
      const deadline = await farDeadline(connection);
      const permit = await signPermit(sys, p1, H100_MIN, deadline);
      const consent = await consentFor(sys, n1, p1.address, deadline);
      const calls = [
        registry.interface.encodeFunctionData("selfPermit", [H100_MIN, deadline, permit.v, permit.r, permit.s]),
        registry.interface.encodeFunctionData("registerNode", [n1.address, H100_NODE, H100_MIN, deadline, consent]),
      ];
      const tx = registry.connect(p1).multicall(calls);
      await expect(tx)
        .to.emit(registry, "NodeRegistered")
        .withArgs(p1.address, n1.address, 1n, capsTuple(H100_NODE), H100_MIN);
      await expect(tx).to.changeTokenBalances(ethers, sys.token, [p1, registry], [-H100_MIN, H100_MIN]);
      expect(await sys.token.allowance(p1.address, await addr(registry))).to.equal(0n);
      expect(await sys.token.nonces(p1.address)).to.equal(1n);
    });

    it("swallows a front-run permit and still succeeds on the allowance it created", async () => {
      const { sys, registry, p1, n1 } = await setup();
      const registryAddress = await addr(registry);
      await sys.token.connect(p1).approve(registryAddress, 0n);
      const deadline = await farDeadline(connection);
      const permit = await signPermit(sys, p1, H100_MIN, deadline);
      // Someone copies the permit from the mempool and submits it first.
      await sys.token
        .connect(sys.stranger)
        .permit(p1.address, registryAddress, H100_MIN, deadline, permit.v, permit.r, permit.s);
      const consent = await consentFor(sys, n1, p1.address, deadline);
      const tx = registry
        .connect(p1)
        .multicall([
          registry.interface.encodeFunctionData("selfPermit", [H100_MIN, deadline, permit.v, permit.r, permit.s]),
          registry.interface.encodeFunctionData("registerNode", [n1.address, H100_NODE, H100_MIN, deadline, consent]),
        ]);
      await expect(tx).to.emit(registry, "NodeRegistered");
      expect(await sys.token.nonces(p1.address)).to.equal(1n);
      expect(await registry.isRegistered(n1.address)).to.equal(true);
    });

    it("without any resulting allowance the following call fails with the token's allowance error", async () => {
      const { sys, registry, p1, n1 } = await setup();
      const registryAddress = await addr(registry);
      await sys.token.connect(p1).approve(registryAddress, 0n);
      const deadline = await farDeadline(connection);
      const permit = await signPermit(sys, sys.nodes[1], H100_MIN, deadline); // signed by the wrong owner
      const consent = await consentFor(sys, n1, p1.address, deadline);
      await expect(
        registry
          .connect(p1)
          .multicall([
            registry.interface.encodeFunctionData("selfPermit", [H100_MIN, deadline, permit.v, permit.r, permit.s]),
            registry.interface.encodeFunctionData("registerNode", [n1.address, H100_NODE, H100_MIN, deadline, consent]),
          ]),
      )
        .to.be.revertedWithCustomError(sys.token, "ERC20InsufficientAllowance")
        .withArgs(registryAddress, 0n, H100_MIN);
    });
  });

  describe("accounting scenario", () => {
    it("keeps registry balance == stakes + unbonding and exact provider/treasury balances at every step", async () => {
      const { sys, registry, token, p1, p2, n1, n2, n3 } = await setup();
      const { rewardVault: treasury, slasher, stranger } = sys;
      const nodes = [n1.address, n2.address, n3.address];
      const watched = [p1, p2, registry, treasury, slasher, stranger];
      // Each step: the exact balance change of [p1, p2, registry, treasury, slasher, stranger], then conservation.
      const step = async (tx: Promise<unknown>, deltas: bigint[]) => {
        await expect(tx).to.changeTokenBalances(ethers, token, watched, deltas);
        await expectConservation(sys, nodes);
      };
      const s1 = H100_MIN + 500n * TOKEN;
      const s2 = CPU_MIN + 50n * TOKEN;
      await step(register(sys, p1, n1, H100_NODE, s1), [-s1, 0n, s1, 0n, 0n, 0n]);
      await step(register(sys, p1, n2, CPU_NODE, s2), [-s2, 0n, s2, 0n, 0n, 0n]);
      await step(register(sys, p2, n3, CPU_NODE), [0n, -CPU_MIN, CPU_MIN, 0n, 0n, 0n]);
      await step(registry.connect(p1).stake(n1.address, 200n * TOKEN), [-200n * TOKEN, 0n, 200n * TOKEN, 0n, 0n, 0n]);
      await step(registry.connect(p1).unstake(n1.address, 300n * TOKEN), [0n, 0n, 0n, 0n, 0n, 0n]);
      await step(registry.connect(slasher).slash(n1.address, 100n * TOKEN, REASON), [
        0n,
        0n,
        -100n * TOKEN,
        100n * TOKEN,
        0n,
        0n,
      ]);
      await step(registry.connect(p1).deregisterNode(n2.address), [0n, 0n, 0n, 0n, 0n, 0n]);
      await step(registry.connect(slasher).slash(n2.address, 30n * TOKEN, REASON), [
        0n,
        0n,
        -30n * TOKEN,
        30n * TOKEN,
        0n,
        0n,
      ]);
      await time.increase(UNBONDING_DELAY);
      await step(registry.connect(stranger).withdraw(n1.address), [300n * TOKEN, 0n, -300n * TOKEN, 0n, 0n, 0n]);
      await step(registry.connect(stranger).withdraw(n2.address), [
        s2 - 30n * TOKEN,
        0n,
        -(s2 - 30n * TOKEN),
        0n,
        0n,
        0n,
      ]);
      await step(registry.connect(p2).deregisterNode(n3.address), [0n, 0n, 0n, 0n, 0n, 0n]);
      await step(registry.connect(slasher).slash(n3.address, MaxUint256, REASON), [0n, 0n, -CPU_MIN, CPU_MIN, 0n, 0n]);
      await step(register(sys, p2, n2, CPU_NODE), [0n, -CPU_MIN, CPU_MIN, 0n, 0n, 0n]);
      await step(registry.connect(p1).deregisterNode(n1.address), [0n, 0n, 0n, 0n, 0n, 0n]);
      await time.increase(UNBONDING_DELAY);
      const n1Left = s1 + 200n * TOKEN - 300n * TOKEN - 100n * TOKEN;
      await step(registry.withdraw(n1.address), [n1Left, 0n, -n1Left, 0n, 0n, 0n]);
      expect(await token.balanceOf(await addr(registry))).to.equal(CPU_MIN); // only n2's new stake is left
    });
  });
});
