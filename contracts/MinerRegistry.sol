// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Multicall} from "@openzeppelin/contracts/utils/Multicall.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IMinerRegistry} from "./interfaces/IMinerRegistry.sol";
import {ITrainingRuns} from "./interfaces/ITrainingRuns.sol";
import {AddressPages} from "./utils/AddressPages.sol";
import {Clock} from "./utils/Clock.sol";
import {SelfPermit} from "./utils/SelfPermit.sol";

/// @title MinerRegistry
/// @notice Nodes, their capabilities and their stake. See {IMinerRegistry}.
/// @dev Stake is held per node. Unbonding entries are kept per node too (not per provider), so a node
///      that deregisters cannot take its stake out of reach of slashing during the unbonding delay.
contract MinerRegistry is
    IMinerRegistry,
    AccessControl,
    EIP712,
    Nonces,
    ReentrancyGuardTransient,
    Multicall,
    SelfPermit,
    Clock
{
    using SafeERC20 for IERC20;

    /// @notice Role allowed to slash nodes (granted to dispute-resolving contracts and governance).
    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");
    /// @notice Upper bound on a node's unbonding queue; bounds the loops of `withdraw` and `slash`.
    uint256 public constant MAX_UNBONDING_ENTRIES = 8;
    /// @notice Upper bound on the unbonding delay.
    uint64 public constant MAX_UNBONDING_DELAY = 90 days;
    /// @notice Upper bound on each minimum-stake parameter (keeps `minimumStake` far from overflow).
    uint256 public constant MAX_STAKE_PARAMETER = type(uint128).max;
    /// @notice EIP-712 type of the node key's consent to be registered by a provider.
    bytes32 public constant NODE_CONSENT_TYPEHASH =
        keccak256("NodeConsent(address provider,address node,uint256 nonce,uint256 deadline)");

    /// @dev Storage layout of a node: three slots.
    struct NodeRecord {
        address provider;
        uint16 gpuCount;
        uint16 cpuCores;
        uint32 gpuMemoryMB;
        uint32 providerIndex;
        bytes32 gpuModel;
        uint32 ramMB;
        uint32 storageGB;
        uint64 capsId;
        uint128 stake;
    }

    /// @notice Token staked.
    IERC20 public immutable token;
    /// @notice TrainingRuns contract asked whether a node is still in a pending or active run.
    ITrainingRuns public trainingRuns;
    /// @notice Receives slashed funds.
    address public treasury;
    /// @notice Minimum stake of a node without GPUs.
    uint256 public minStakeBase;
    /// @notice Additional minimum stake per GPU.
    uint256 public minStakePerGpu;
    /// @notice Delay between unstaking and withdrawal for new unbonding entries.
    uint64 public unbondingDelay;

    uint64 private _lastCapsId;
    mapping(address node => NodeRecord) private _nodes;
    mapping(address provider => address[]) private _providerNodes;
    mapping(address node => Unbonding[]) private _unbonding;

    /// @param admin Receives DEFAULT_ADMIN_ROLE.
    /// @param token_ Staking token.
    /// @param treasury_ Receives slashed funds.
    /// @param minStakeBase_ Minimum stake of a node without GPUs.
    /// @param minStakePerGpu_ Additional minimum stake per GPU.
    /// @param unbondingDelay_ Unbonding delay in seconds.
    constructor(
        address admin,
        IERC20 token_,
        address treasury_,
        uint256 minStakeBase_,
        uint256 minStakePerGpu_,
        uint64 unbondingDelay_
    ) EIP712("computenet.MinerRegistry", "1") {
        if (admin == address(0) || address(token_) == address(0)) revert MinerRegistryZeroAddress();
        token = token_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _setTreasury(treasury_);
        _setMinimumStake(minStakeBase_, minStakePerGpu_);
        _setUnbondingDelay(unbondingDelay_);
    }

    // ------------------------------------------------------------------ providers

    /// @inheritdoc IMinerRegistry
    function registerNode(
        address node,
        Capabilities calldata capabilities,
        uint256 stakeAmount,
        uint256 deadline,
        bytes calldata nodeSignature
    ) external nonReentrant {
        if (node == address(0)) revert MinerRegistryZeroAddress();
        if (_nodes[node].provider != address(0)) revert MinerRegistryNodeAlreadyRegistered(node);
        if (_clock() > deadline) revert MinerRegistrySignatureExpired(deadline, _clock());
        _checkCapabilities(capabilities);
        uint256 minimum = minimumStake(capabilities.gpuCount);
        if (stakeAmount < minimum) revert MinerRegistryStakeBelowMinimum(node, stakeAmount, minimum);
        _checkNoUnbondingForOthers(node);

        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(NODE_CONSENT_TYPEHASH, msg.sender, node, _useNonce(node), deadline))
        );
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, nodeSignature);
        if (err != ECDSA.RecoverError.NoError || recovered != node) {
            revert MinerRegistryInvalidNodeSignature(node, recovered);
        }

        NodeRecord storage record = _nodes[node];
        record.provider = msg.sender;
        record.providerIndex = uint32(_providerNodes[msg.sender].length);
        record.stake = SafeCast.toUint128(stakeAmount);
        uint64 capsId = _writeCapabilities(record, capabilities);
        _providerNodes[msg.sender].push(node);
        emit NodeRegistered(msg.sender, node, capsId, capabilities, stakeAmount);

        token.safeTransferFrom(msg.sender, address(this), stakeAmount);
    }

    /// @inheritdoc IMinerRegistry
    function updateCapabilities(address node, Capabilities calldata capabilities) external {
        NodeRecord storage record = _checkProvider(node);
        _checkNoActiveRuns(node);
        _checkCapabilities(capabilities);
        uint256 minimum = minimumStake(capabilities.gpuCount);
        if (record.stake < minimum) revert MinerRegistryStakeBelowMinimum(node, record.stake, minimum);
        uint64 capsId = _writeCapabilities(record, capabilities);
        emit CapabilitiesUpdated(node, capsId, capabilities);
    }

    /// @inheritdoc IMinerRegistry
    function deregisterNode(address node) external {
        NodeRecord storage record = _checkProvider(node);
        _checkNoActiveRuns(node);
        uint128 unbonded = record.stake;
        if (unbonded > 0) _startUnbonding(node, msg.sender, unbonded);

        address[] storage list = _providerNodes[msg.sender];
        uint32 index = record.providerIndex;
        address moved = list[list.length - 1];
        list[index] = moved;
        _nodes[moved].providerIndex = index;
        list.pop();
        delete _nodes[node];
        emit NodeDeregistered(msg.sender, node, unbonded);
    }

    /// @inheritdoc IMinerRegistry
    function stake(address node, uint256 amount) external nonReentrant {
        NodeRecord storage record = _checkProvider(node);
        if (amount == 0) revert MinerRegistryZeroAmount();
        uint128 newStake = record.stake + SafeCast.toUint128(amount);
        record.stake = newStake;
        emit Staked(node, msg.sender, amount, newStake);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IMinerRegistry
    function unstake(address node, uint256 amount) external {
        NodeRecord storage record = _checkProvider(node);
        if (amount == 0) revert MinerRegistryZeroAmount();
        uint128 current = record.stake;
        if (amount > current) revert MinerRegistryInsufficientStake(node, current, amount);
        uint128 remaining = current - uint128(amount);
        uint256 minimum = minimumStake(record.gpuCount);
        if (remaining < minimum) revert MinerRegistryStakeBelowMinimum(node, remaining, minimum);
        record.stake = remaining;
        _startUnbonding(node, msg.sender, uint128(amount));
    }

    /// @inheritdoc IMinerRegistry
    function withdraw(address node) external nonReentrant returns (uint256 paid) {
        Unbonding[] storage queue = _unbonding[node];
        uint256 length = queue.length;
        uint64 now_ = _clock();
        Unbonding[] memory matured = new Unbonding[](length);
        uint256 maturedCount;
        uint256 kept;
        // Takes matured entries out and compacts the rest in order; bounded by MAX_UNBONDING_ENTRIES.
        for (uint256 i; i < length; ++i) {
            Unbonding memory entry = queue[i];
            if (entry.releaseAt <= now_) {
                matured[maturedCount] = entry;
                ++maturedCount;
            } else {
                if (kept != i) queue[kept] = entry;
                ++kept;
            }
        }
        if (maturedCount == 0) revert MinerRegistryNothingToWithdraw(node);
        for (uint256 i = length; i > kept; --i) {
            queue.pop();
        }
        for (uint256 i; i < maturedCount; ++i) {
            Unbonding memory entry = matured[i];
            paid += entry.amount;
            emit Withdrawn(node, entry.beneficiary, entry.amount);
            token.safeTransfer(entry.beneficiary, entry.amount);
        }
    }

    // ------------------------------------------------------------------ node keys

    /// @inheritdoc IMinerRegistry
    function cancelConsent() external {
        uint256 nonce = _useNonce(msg.sender);
        emit ConsentCancelled(msg.sender, nonce);
    }

    // ------------------------------------------------------------------ protocol roles

    /// @inheritdoc IMinerRegistry
    function slash(address node, uint256 amount, bytes32 reason)
        external
        onlyRole(SLASHER_ROLE)
        nonReentrant
        returns (uint256 slashed)
    {
        if (amount == 0) revert MinerRegistryZeroAmount();
        NodeRecord storage record = _nodes[node];
        uint128 fromStake = record.stake;
        if (fromStake > amount) fromStake = uint128(amount);
        if (fromStake > 0) record.stake -= fromStake;

        uint256 fromUnbonding;
        uint256 left = amount - fromStake;
        Unbonding[] storage queue = _unbonding[node];
        // Newest entries first; bounded by MAX_UNBONDING_ENTRIES. Emptied entries are popped, so the
        // queue never holds a zero entry.
        while (left > 0 && queue.length > 0) {
            Unbonding storage last = queue[queue.length - 1];
            uint128 take = last.amount;
            if (take > left) {
                take = uint128(left);
                last.amount -= take;
            } else {
                queue.pop();
            }
            fromUnbonding += take;
            left -= take;
        }

        slashed = fromStake + fromUnbonding;
        if (slashed == 0) return 0;
        address to = treasury;
        emit Slashed(node, msg.sender, fromStake, fromUnbonding, reason, to);
        token.safeTransfer(to, slashed);
    }

    /// @notice Sets the minimum stake formula `base + perGpu * gpuCount` (admin only). Existing nodes below
    ///         it stay registered but cannot join runs until they top up.
    /// @param base Minimum for a node without GPUs.
    /// @param perGpu Additional minimum per GPU.
    function setMinimumStake(uint256 base, uint256 perGpu) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setMinimumStake(base, perGpu);
    }

    /// @notice Sets the unbonding delay of future unbonding entries (admin only).
    /// @param delay Delay in seconds, in (0, MAX_UNBONDING_DELAY].
    function setUnbondingDelay(uint64 delay) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setUnbondingDelay(delay);
    }

    /// @notice Sets the receiver of slashed funds (admin only).
    /// @param treasury_ New treasury.
    function setTreasury(address treasury_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setTreasury(treasury_);
    }

    /// @notice Sets, once, the TrainingRuns contract asked before deregistration (admin only). The two
    ///         contracts refer to each other, so one of the links is made after deployment.
    /// @param trainingRuns_ TrainingRuns contract.
    function setTrainingRuns(ITrainingRuns trainingRuns_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (address(trainingRuns_) == address(0)) revert MinerRegistryZeroAddress();
        if (address(trainingRuns) != address(0)) revert MinerRegistryTrainingRunsAlreadySet(address(trainingRuns));
        trainingRuns = trainingRuns_;
        emit TrainingRunsSet(address(trainingRuns_));
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IMinerRegistry
    function minimumStake(uint256 gpuCount) public view returns (uint256) {
        return minStakeBase + minStakePerGpu * gpuCount;
    }

    /// @inheritdoc IMinerRegistry
    function isRegistered(address node) external view returns (bool) {
        return _nodes[node].provider != address(0);
    }

    /// @inheritdoc IMinerRegistry
    function hasMinimumStake(address node) external view returns (bool) {
        NodeRecord storage record = _nodes[node];
        return record.provider != address(0) && record.stake >= minimumStake(record.gpuCount);
    }

    /// @inheritdoc IMinerRegistry
    function getNode(address node) external view returns (NodeInfo memory info) {
        NodeRecord storage record = _nodes[node];
        if (record.provider == address(0)) revert MinerRegistryNodeNotRegistered(node);
        info.provider = record.provider;
        info.capsId = record.capsId;
        info.stake = record.stake;
        info.capabilities = Capabilities({
            gpuCount: record.gpuCount,
            gpuModel: record.gpuModel,
            gpuMemoryMB: record.gpuMemoryMB,
            cpuCores: record.cpuCores,
            ramMB: record.ramMB,
            storageGB: record.storageGB
        });
    }

    /// @inheritdoc IMinerRegistry
    function providerOf(address node) external view returns (address) {
        return _nodes[node].provider;
    }

    /// @inheritdoc IMinerRegistry
    function capsIdOf(address node) external view returns (uint64) {
        return _nodes[node].capsId;
    }

    /// @inheritdoc IMinerRegistry
    function registrationOf(address node) external view returns (address provider, uint64 capsId) {
        NodeRecord storage record = _nodes[node];
        return (record.provider, record.capsId);
    }

    /// @inheritdoc IMinerRegistry
    function nodeCountOf(address provider) external view returns (uint256) {
        return _providerNodes[provider].length;
    }

    /// @inheritdoc IMinerRegistry
    function nodesOf(address provider, uint256 offset, uint256 limit) external view returns (address[] memory) {
        return AddressPages.page(_providerNodes[provider], offset, limit);
    }

    /// @inheritdoc IMinerRegistry
    function unbondingOf(address node) external view returns (Unbonding[] memory) {
        return _unbonding[node];
    }

    /// @notice EIP-712 domain separator of this contract on this chain.
    /// @return The separator.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ------------------------------------------------------------------ internals

    function _permitToken() internal view override returns (IERC20Permit) {
        return IERC20Permit(address(token));
    }

    function _checkProvider(address node) private view returns (NodeRecord storage record) {
        record = _nodes[node];
        if (record.provider == address(0)) revert MinerRegistryNodeNotRegistered(node);
        if (record.provider != msg.sender) revert MinerRegistryNotProvider(node, msg.sender);
    }

    function _checkNoActiveRuns(address node) private view {
        ITrainingRuns runs = trainingRuns;
        if (address(runs) == address(0)) revert MinerRegistryTrainingRunsNotSet();
        uint256 active = runs.activeRunCount(node);
        if (active > 0) revert MinerRegistryNodeInActiveRuns(node, active);
    }

    function _checkCapabilities(Capabilities calldata caps) private pure {
        if (caps.cpuCores == 0) revert MinerRegistryInvalidCapabilities(Capability.CpuCores);
        if (caps.ramMB == 0) revert MinerRegistryInvalidCapabilities(Capability.Ram);
        bool hasGpus = caps.gpuCount > 0;
        if (hasGpus != (caps.gpuModel != bytes32(0))) revert MinerRegistryInvalidCapabilities(Capability.GpuModel);
        if (hasGpus != (caps.gpuMemoryMB > 0)) revert MinerRegistryInvalidCapabilities(Capability.GpuMemory);
    }

    function _writeCapabilities(NodeRecord storage record, Capabilities calldata caps) private returns (uint64 capsId) {
        capsId = ++_lastCapsId;
        record.gpuCount = caps.gpuCount;
        record.cpuCores = caps.cpuCores;
        record.gpuMemoryMB = caps.gpuMemoryMB;
        record.gpuModel = caps.gpuModel;
        record.ramMB = caps.ramMB;
        record.storageGB = caps.storageGB;
        record.capsId = capsId;
    }

    function _startUnbonding(address node, address beneficiary, uint128 amount) private {
        Unbonding[] storage queue = _unbonding[node];
        if (queue.length >= MAX_UNBONDING_ENTRIES) revert MinerRegistryUnbondingQueueFull(node, MAX_UNBONDING_ENTRIES);
        uint64 releaseAt = _clock() + unbondingDelay;
        queue.push(Unbonding({beneficiary: beneficiary, releaseAt: releaseAt, amount: amount}));
        emit UnbondingStarted(node, beneficiary, amount, releaseAt);
    }

    function _checkNoUnbondingForOthers(address node) private view {
        Unbonding[] storage queue = _unbonding[node];
        uint256 length = queue.length; // <= MAX_UNBONDING_ENTRIES
        for (uint256 i; i < length; ++i) {
            address beneficiary = queue[i].beneficiary;
            if (beneficiary != msg.sender) revert MinerRegistryNodeUnbondingForOther(node, beneficiary);
        }
    }

    function _setMinimumStake(uint256 base, uint256 perGpu) private {
        if (base > MAX_STAKE_PARAMETER || perGpu > MAX_STAKE_PARAMETER) {
            revert MinerRegistryInvalidMinimumStake(base, perGpu, MAX_STAKE_PARAMETER);
        }
        minStakeBase = base;
        minStakePerGpu = perGpu;
        emit MinimumStakeUpdated(base, perGpu);
    }

    function _setUnbondingDelay(uint64 delay) private {
        if (delay == 0 || delay > MAX_UNBONDING_DELAY) {
            revert MinerRegistryInvalidUnbondingDelay(delay, MAX_UNBONDING_DELAY);
        }
        unbondingDelay = delay;
        emit UnbondingDelayUpdated(delay);
    }

    function _setTreasury(address treasury_) private {
        if (treasury_ == address(0)) revert MinerRegistryZeroAddress();
        treasury = treasury_;
        emit TreasuryUpdated(treasury_);
    }
}
