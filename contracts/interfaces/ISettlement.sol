// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title ISettlement
/// @notice Deferred payment of each epoch. After the epoch's Dispute phase, during its Claim phase, anyone
///         may claim for a node with the node's seed (the payment goes to the node's provider, so front-running
///         a claim only pays the provider earlier):
///         1. the seed must match the node's commitment for the epoch (EpochManager);
///         2. none of the node's disputes in the epoch may be open;
///         3. duty check: from the epoch's claim beacon (fixed only after its validations closed; the claim
///            fixes it if nobody did) `sampleSize` of the epoch's tasks are drawn, index
///            `keccak256(abi.encode(claimBeacon, node, j)) mod taskCount` for j = 0 .. sampleSize - 1 (all
///            tasks, each once, when the epoch has at most `sampleSize`); every drawn task that is Completed,
///            not executed by the node, and that the seed obliges the node to validate
///            (`TaskLedger.isValidationDuty`) must have been validated by it. One miss forfeits the node's
///            reward share of the epoch (its work is still paid: the work was done and validated by others);
///         4. work: the node's credited work (TaskLedger) is paid from each run's escrow to the node's provider
///            (MinerRegistry), or released to the escrow when the node has none any more;
///         5. reward: `emission × powerOf(epoch, node) / totalPower(epoch)`, rounded down, minted by the
///            RewardVault to the provider.
///         The claim's outcome is recorded in the TaskLedger's record of the node's epoch (one claim or expiry
///         per node and epoch).
///         Gas does not depend on the number of nodes or tasks: `sampleSize` draws and at most
///         MAX_RUNS_PER_EPOCH runs. After the Claim phase, `expire` releases an unclaimed node's work back to
///         its runs' escrow.
interface ISettlement {
    /// @notice A node's settlement of one epoch.
    struct Claim {
        bool claimed;
        bool expired;
        bool forfeited;
        uint128 work;
        uint128 reward;
    }

    error SettlementZeroAddress();
    /// @notice `sampleSize` outside [1, MAX_SAMPLE_SIZE].
    error SettlementInvalidSampleSize(uint256 sampleSize, uint256 max);
    /// @notice `epoch` is not in its Claim phase (claims) or not Closed yet (expiry).
    error SettlementWrongPhase(uint64 epoch, uint8 phase);
    /// @notice The node's epoch was already claimed or expired.
    error SettlementAlreadySettled(uint64 epoch, address node);
    /// @notice The seed does not match the node's commitment (or it committed none).
    error SettlementInvalidSeed(uint64 epoch, address node);
    /// @notice `count` disputes of the node in `epoch` are still open; resolve them first.
    error SettlementDisputesOpen(uint64 epoch, address node, uint256 count);

    /// @notice `node`'s claim for `epoch` paid `work` and `reward` to `provider`. `forfeited` tells whether the
    ///         duty check failed, `missedTaskId` the first missed task (0 when none), `sampled` how many tasks
    ///         the check drew.
    event Claimed(
        uint64 indexed epoch,
        address indexed node,
        address indexed provider,
        uint256 work,
        uint256 reward,
        bool forfeited,
        uint256 missedTaskId,
        uint256 sampled
    );
    /// @notice `node` never claimed `epoch`: `workReleased` went back to the runs' escrow.
    event ClaimExpired(uint64 indexed epoch, address indexed node, uint256 workReleased);

    /// @notice Claims `node`'s work and reward of `epoch` with its `seed` (anyone).
    function claim(uint64 epoch, address node, bytes32 seed) external returns (uint256 work, uint256 reward);

    /// @notice Releases the unclaimed work of `node` in `epoch` once its Claim phase is over (anyone).
    function expire(uint64 epoch, address node) external returns (uint256 released);

    /// @notice What the duty check of `node`'s claim for `epoch` with `seed` would find (requires the claim
    ///         beacon): whether the reward is forfeited, the first missed task and how many tasks it draws.
    function checkDuties(uint64 epoch, address node, bytes32 seed)
        external
        view
        returns (bool forfeited, uint256 missedTaskId, uint256 sampled);

    /// @notice The reward `node` would get for `epoch` (before the duty check).
    function rewardOf(uint64 epoch, address node) external view returns (uint256);

    /// @notice What `node`'s claim or expiry of `epoch` recorded: `work` is what the claim paid (0 when the
    ///         node had no provider) or what the expiry released; `reward` what the claim minted.
    function claimOf(uint64 epoch, address node) external view returns (Claim memory);

    function sampleSize() external view returns (uint256);
}
