// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IMinerRegistry
/// @notice Compute providers register their nodes here with the node's hardware capabilities and a
///         stake. The node address is the node's own key: it consents to being bound to its provider
///         with an EIP-712 signature, so nobody can register someone else's key.
interface IMinerRegistry {
    /// @notice Hardware a node declares. Validators' challenges check it; runs' requirements match it.
    /// @param gpuCount Number of GPUs (0 for CPU-only nodes).
    /// @param gpuModel GPU model name as a right-padded bytes32 (e.g. "H100-80GB"); zero iff gpuCount is 0.
    /// @param gpuMemoryMB Memory per GPU in MiB.
    /// @param cpuCores Logical CPU cores.
    /// @param ramMB System memory in MiB.
    /// @param storageGB Free storage for tasks in GB.
    struct Capabilities {
        uint16 gpuCount;
        bytes32 gpuModel;
        uint32 gpuMemoryMB;
        uint16 cpuCores;
        uint32 ramMB;
        uint32 storageGB;
    }

    /// @notice One field of `Capabilities`, named in errors about it.
    enum Capability {
        GpuCount,
        GpuModel,
        GpuMemory,
        CpuCores,
        Ram,
        Storage
    }

    /// @notice A registered node as stored.
    /// @param provider Account that registered the node and owns its stake.
    /// @param capsId Identifier of this exact capability declaration, unique forever; changes whenever the
    ///        capabilities change or the node registers again, which voids earlier challenge results.
    /// @param stake Active stake (not unbonding).
    /// @param capabilities Declared hardware.
    struct NodeInfo {
        address provider;
        uint64 capsId;
        uint128 stake;
        Capabilities capabilities;
    }

    /// @notice Stake leaving the registry, claimable by `beneficiary` once `releaseAt` has passed.
    /// @param beneficiary Receives the funds (the provider that unstaked).
    /// @param releaseAt Time (seconds) from which it can be withdrawn.
    /// @param amount Amount still unbonding (reduced by slashing).
    struct Unbonding {
        address beneficiary;
        uint64 releaseAt;
        uint128 amount;
    }

    /// @notice The node is already registered.
    error MinerRegistryNodeAlreadyRegistered(address node);
    /// @notice The node is not registered.
    error MinerRegistryNodeNotRegistered(address node);
    /// @notice The zero address cannot be a node, a treasury or a contract reference.
    error MinerRegistryZeroAddress();
    /// @notice `caller` is not the provider of `node`.
    error MinerRegistryNotProvider(address node, address caller);
    /// @notice The node's consent signature was not made by `node` (wrong key, other chain, other
    ///         contract, other provider, used nonce or malformed signature).
    error MinerRegistryInvalidNodeSignature(address node, address recovered);
    /// @notice The node's consent signature expired at `deadline`.
    error MinerRegistrySignatureExpired(uint256 deadline, uint256 now_);
    /// @notice The capability `field` is inconsistent: CPU cores and RAM must be positive, and GPU model and
    ///         memory must be set exactly when the GPU count is positive.
    error MinerRegistryInvalidCapabilities(Capability field);
    /// @notice The stake `stake` is below the minimum `minimum` for a node with its GPU count.
    error MinerRegistryStakeBelowMinimum(address node, uint256 stake, uint256 minimum);
    /// @notice An amount of zero where a positive amount is needed.
    error MinerRegistryZeroAmount();
    /// @notice Unstaking `amount` exceeds the active stake `stake`.
    error MinerRegistryInsufficientStake(address node, uint256 stake, uint256 amount);
    /// @notice The node's unbonding queue holds the maximum number of entries; withdraw matured ones first.
    error MinerRegistryUnbondingQueueFull(address node, uint256 max);
    /// @notice The node still participates in `activeRuns` pending or active training runs.
    error MinerRegistryNodeInActiveRuns(address node, uint256 activeRuns);
    /// @notice No unbonding entry of the node has matured.
    error MinerRegistryNothingToWithdraw(address node);
    /// @notice The node still has funds unbonding for `beneficiary`, another provider: it can be registered
    ///         by someone else only once they are withdrawn, so that slashing never mixes two providers' funds.
    error MinerRegistryNodeUnbondingForOther(address node, address beneficiary);
    /// @notice A minimum stake parameter exceeds `max`.
    error MinerRegistryInvalidMinimumStake(uint256 base, uint256 perGpu, uint256 max);
    /// @notice The TrainingRuns contract was already set (it is set once at deployment).
    error MinerRegistryTrainingRunsAlreadySet(address current);
    /// @notice The TrainingRuns contract is not set yet.
    error MinerRegistryTrainingRunsNotSet();
    /// @notice The unbonding delay `delay` exceeds the maximum `max`, or is zero.
    error MinerRegistryInvalidUnbondingDelay(uint256 delay, uint256 max);

    /// @notice A node was registered by `provider` with its capabilities and initial stake.
    event NodeRegistered(
        address indexed provider, address indexed node, uint64 capsId, Capabilities capabilities, uint256 stake
    );
    /// @notice A node's capabilities changed; earlier challenge results no longer apply.
    event CapabilitiesUpdated(address indexed node, uint64 capsId, Capabilities capabilities);
    /// @notice A node was removed; its stake `unbonded` entered the unbonding queue.
    event NodeDeregistered(address indexed provider, address indexed node, uint256 unbonded);
    /// @notice `amount` was added to a node's stake; `stake` is the new active stake.
    event Staked(address indexed node, address indexed provider, uint256 amount, uint256 stake);
    /// @notice `amount` left the active stake and unbonds until `releaseAt`.
    event UnbondingStarted(address indexed node, address indexed beneficiary, uint256 amount, uint64 releaseAt);
    /// @notice Matured unbonding funds were paid out.
    event Withdrawn(address indexed node, address indexed beneficiary, uint256 amount);
    /// @notice A node was slashed; the funds went to `treasury`.
    event Slashed(
        address indexed node,
        address indexed slasher,
        uint256 fromStake,
        uint256 fromUnbonding,
        bytes32 reason,
        address treasury
    );
    /// @notice The minimum stake formula changed: `base + perGpu * gpuCount`.
    event MinimumStakeUpdated(uint256 base, uint256 perGpu);
    /// @notice The unbonding delay for new unbonding entries changed.
    event UnbondingDelayUpdated(uint64 delay);
    /// @notice Slashed funds now go to `treasury`.
    event TreasuryUpdated(address indexed treasury);
    /// @notice The TrainingRuns contract consulted before deregistration was set.
    event TrainingRunsSet(address indexed trainingRuns);
    /// @notice The node key voided its consent nonce `nonce`: a consent signed with it can no longer be used.
    event ConsentCancelled(address indexed node, uint256 nonce);

    /// @notice Registers `node` for the caller (the provider) and stakes `stakeAmount` pulled from the caller.
    /// @dev Caller must have approved (or `selfPermit`-ed in a multicall) the stake. The node signs the
    ///      EIP-712 message `NodeConsent(address provider,address node,uint256 nonce,uint256 deadline)`
    ///      with its current nonce (`nonces(node)`), domain `("computenet.MinerRegistry", "1")`.
    /// @param node Node address (its key).
    /// @param capabilities Declared hardware.
    /// @param stakeAmount Initial stake; at least `minimumStake(capabilities.gpuCount)`.
    /// @param deadline Last second at which the consent signature is valid.
    /// @param nodeSignature The node key's EIP-712 signature.
    function registerNode(
        address node,
        Capabilities calldata capabilities,
        uint256 stakeAmount,
        uint256 deadline,
        bytes calldata nodeSignature
    ) external;

    /// @notice Replaces a node's capabilities. Only its provider, and only while the node is in no pending or
    ///         active run. Voids earlier challenge results (new `capsId`); the stake must cover the new minimum.
    /// @param node Node address.
    /// @param capabilities New hardware declaration.
    function updateCapabilities(address node, Capabilities calldata capabilities) external;

    /// @notice Removes a node (its provider only) that is in no pending or active run; its whole stake
    ///         enters the unbonding queue. Leaves no entry behind in the provider's node list.
    /// @param node Node address.
    function deregisterNode(address node) external;

    /// @notice Adds `amount` (pulled from the caller, the provider) to a node's stake.
    /// @param node Node address.
    /// @param amount Amount to add.
    function stake(address node, uint256 amount) external;

    /// @notice Moves `amount` of a node's active stake into its unbonding queue (provider only). The
    ///         remaining stake must still cover the node's minimum.
    /// @param node Node address.
    /// @param amount Amount to unbond.
    function unstake(address node, uint256 amount) external;

    /// @notice Pays every matured unbonding entry of `node` to its beneficiary. Anyone may call it; the
    ///         funds only ever go to the beneficiaries.
    /// @param node Node address (registered or not).
    /// @return paid Total paid out.
    function withdraw(address node) external returns (uint256 paid);

    /// @notice Takes up to `amount` from a node: active stake first, then its unbonding entries (newest
    ///         first). Only SLASHER_ROLE; the funds go to the treasury, never to the caller. Returns 0 (no event,
    ///         no revert) when the node has nothing left, so a dispute resolution calling it never gets stuck.
    /// @param node Node address (registered or not).
    /// @param amount Maximum amount to take.
    /// @param reason Hash of the evidence or reason.
    /// @return slashed Amount actually taken.
    function slash(address node, uint256 amount, bytes32 reason) external returns (uint256 slashed);

    /// @notice Voids the caller's (a node key's) current consent nonce, so a consent it signed but no longer
    ///         wants used cannot register it.
    function cancelConsent() external;

    /// @notice Minimum active stake for a node with `gpuCount` GPUs.
    /// @param gpuCount Number of GPUs.
    /// @return Minimum stake.
    function minimumStake(uint256 gpuCount) external view returns (uint256);

    /// @notice Whether `node` is registered.
    /// @param node Node address.
    /// @return True when registered.
    function isRegistered(address node) external view returns (bool);

    /// @notice Whether `node` is registered and its active stake covers its minimum.
    /// @param node Node address.
    /// @return True when sufficiently staked.
    function hasMinimumStake(address node) external view returns (bool);

    /// @notice A registered node's record.
    /// @param node Node address.
    /// @return The node's record (reverts if not registered).
    function getNode(address node) external view returns (NodeInfo memory);

    /// @notice The provider of `node`, or zero if not registered.
    /// @param node Node address.
    /// @return Provider address.
    function providerOf(address node) external view returns (address);

    /// @notice The current capability declaration id of `node`, or zero if not registered.
    /// @param node Node address.
    /// @return Capability id.
    function capsIdOf(address node) external view returns (uint64);

    /// @notice The provider and current capability declaration id of `node` (zeros if not registered), in
    ///         one call for contracts that need both.
    /// @param node Node address.
    /// @return provider Provider address.
    /// @return capsId Capability id.
    function registrationOf(address node) external view returns (address provider, uint64 capsId);

    /// @notice Number of nodes registered by `provider`.
    /// @param provider Provider address.
    /// @return Count.
    function nodeCountOf(address provider) external view returns (uint256);

    /// @notice A page of the nodes registered by `provider`.
    /// @param provider Provider address.
    /// @param offset First index.
    /// @param limit Maximum number of nodes returned.
    /// @return nodes Node addresses.
    function nodesOf(address provider, uint256 offset, uint256 limit) external view returns (address[] memory nodes);

    /// @notice The unbonding entries of `node` (at most `MAX_UNBONDING_ENTRIES`).
    /// @param node Node address.
    /// @return Entries.
    function unbondingOf(address node) external view returns (Unbonding[] memory);
}
