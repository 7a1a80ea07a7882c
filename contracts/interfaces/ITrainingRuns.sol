// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IMinerRegistry} from "./IMinerRegistry.sol";

/// @title ITrainingRuns
/// @notice Training runs opened by buyers: node requirements, the run's master (coordinator) key, the
///         discovery service URI, an escrowed budget and the membership of nodes. A node registers for a
///         run when its on-chain capabilities meet the requirements; once a validator has validated it,
///         it joins with an EIP-712 invite signed by the run's master.
interface ITrainingRuns {
    /// @notice Lifecycle of a run: Pending -> Active -> Completed, or Pending/Active -> Cancelled.
    enum RunStatus {
        None,
        Pending,
        Active,
        Completed,
        Cancelled
    }

    /// @notice A node's relation to a run.
    enum Participation {
        None,
        Registered,
        Member
    }

    /// @notice What a node must have to register for a run. Zero means no requirement.
    /// @param minGpuCount Minimum number of GPUs.
    /// @param minGpuMemoryMB Minimum memory per GPU (MiB).
    /// @param minCpuCores Minimum CPU cores.
    /// @param minRamMB Minimum RAM (MiB).
    /// @param minStorageGB Minimum storage (GB).
    /// @param allowedGpuModels GPU models accepted; empty accepts any (at most MAX_ALLOWED_GPU_MODELS).
    struct Requirements {
        uint16 minGpuCount;
        uint32 minGpuMemoryMB;
        uint16 minCpuCores;
        uint32 minRamMB;
        uint32 minStorageGB;
        bytes32[] allowedGpuModels;
    }

    /// @notice Parameters of `createRun`.
    /// @param master Address of the run's master node key; signs invites.
    /// @param pricePerUnit Price of one work unit, in token wei.
    /// @param maxMembers Maximum number of members at once.
    /// @param budget Escrowed at creation, pulled from the buyer.
    /// @param discoveryURI Where nodes register their endpoints (at most MAX_DISCOVERY_URI_LENGTH bytes).
    /// @param requirements Node requirements.
    struct RunParams {
        address master;
        uint128 pricePerUnit;
        uint32 maxMembers;
        uint128 budget;
        string discoveryURI;
        Requirements requirements;
    }

    /// @notice A run as returned by `getRun`.
    struct RunInfo {
        address buyer;
        address master;
        RunStatus status;
        uint32 maxMembers;
        uint32 memberCount;
        uint128 pricePerUnit;
        string discoveryURI;
    }

    /// @notice A run's escrow. Always `deposited == paid + refunded + reserved + available`.
    /// @param deposited Everything ever paid in.
    /// @param paid Paid out for work.
    /// @param refunded Returned to the buyer.
    /// @param reserved Set aside for recorded work not yet settled.
    /// @param available Free to reserve, or to refund when the run ends.
    struct Escrow {
        uint128 deposited;
        uint128 paid;
        uint128 refunded;
        uint128 reserved;
        uint128 available;
    }

    /// @notice No run with this id.
    error TrainingRunsUnknownRun(uint256 runId);
    /// @notice The run is not in a status that allows this (`status` is its status).
    error TrainingRunsInvalidStatus(uint256 runId, RunStatus status);
    /// @notice A zero address where an account is needed.
    error TrainingRunsZeroAddress();
    /// @notice maxMembers must be positive.
    error TrainingRunsInvalidMaxMembers();
    /// @notice The discovery URI is empty or longer than `max` bytes.
    error TrainingRunsInvalidDiscoveryURI(uint256 length, uint256 max);
    /// @notice Too many allowed GPU models (`count` > `max`).
    error TrainingRunsTooManyGpuModels(uint256 count, uint256 max);
    /// @notice An allowed GPU model is zero or listed twice.
    error TrainingRunsInvalidGpuModel(bytes32 model);
    /// @notice `caller` is not the run's buyer.
    error TrainingRunsNotBuyer(uint256 runId, address caller);
    /// @notice `caller` is not the run's master.
    error TrainingRunsNotMaster(uint256 runId, address caller);
    /// @notice `caller` is neither the run's buyer nor its master (`startRun`).
    error TrainingRunsNotBuyerOrMaster(uint256 runId, address caller);
    /// @notice `caller` is neither the node nor its provider.
    error TrainingRunsNotNodeOrProvider(address node, address caller);
    /// @notice The node is not registered in the MinerRegistry.
    error TrainingRunsNodeNotRegistered(address node);
    /// @notice The node's participation in the run is `participation`, which does not allow this.
    error TrainingRunsInvalidParticipation(uint256 runId, address node, Participation participation);
    /// @notice The node's active stake is below its minimum.
    error TrainingRunsInsufficientStake(address node);
    /// @notice The node already takes part in `max` pending or active runs.
    error TrainingRunsTooManyRuns(address node, uint256 max);
    /// @notice The node fails `requirement`: it has `actual`, the run requires `required`.
    error TrainingRunsRequirementNotMet(
        uint256 runId, address node, IMinerRegistry.Capability requirement, uint256 required, uint256 actual
    );
    /// @notice The node's GPU model `model` is not among the run's allowed models.
    error TrainingRunsGpuModelNotAllowed(uint256 runId, address node, bytes32 model);
    /// @notice The invite expired at `expiry`.
    error TrainingRunsInviteExpired(uint256 expiry, uint256 now_);
    /// @notice The invite nonce was already used or revoked.
    error TrainingRunsInviteNonceUsed(uint256 runId, uint256 nonce);
    /// @notice The invite is not signed by the run's current master (or is malformed, or made for
    ///         another run, node, nonce, expiry, chain or contract).
    error TrainingRunsInvalidInviteSignature(uint256 runId, address node, address master);
    /// @notice The node has not been validated by the ChallengeBoard.
    error TrainingRunsNodeNotValidated(address node);
    /// @notice The run has `maxMembers` members.
    error TrainingRunsFull(uint256 runId, uint32 maxMembers);
    /// @notice An amount of zero where a positive amount is needed.
    error TrainingRunsZeroAmount();
    /// @notice The escrow holds `available` (or `reserved`) less than `amount`.
    error TrainingRunsInsufficientEscrow(uint256 runId, uint256 held, uint256 amount);

    /// @notice A buyer opened a run.
    event RunCreated(
        uint256 indexed runId,
        address indexed buyer,
        address indexed master,
        uint128 pricePerUnit,
        uint32 maxMembers,
        uint128 budget,
        string discoveryURI,
        Requirements requirements
    );
    /// @notice The run moved from Pending to Active.
    event RunStarted(uint256 indexed runId, address indexed by);
    /// @notice The run completed; `refund` of unreserved escrow went back to the buyer.
    event RunCompleted(uint256 indexed runId, address indexed by, uint256 refund);
    /// @notice The run was cancelled by its buyer; `refund` went back to the buyer.
    event RunCancelled(uint256 indexed runId, uint256 refund);
    /// @notice The buyer replaced the run's master; invites of the old master are no longer accepted.
    event MasterChanged(uint256 indexed runId, address indexed previousMaster, address indexed newMaster);
    /// @notice The buyer changed the run's discovery URI.
    event DiscoveryURIChanged(uint256 indexed runId, string discoveryURI);
    /// @notice `funder` added `amount` to the run's escrow.
    event RunFunded(uint256 indexed runId, address indexed funder, uint256 amount);
    /// @notice A node registered for the run (it meets the requirements); it still needs validation and an invite.
    event NodeRegisteredForRun(uint256 indexed runId, address indexed node, address indexed provider);
    /// @notice A node accepted the master's invite `nonce` and became a member.
    event NodeJoined(uint256 indexed runId, address indexed node, uint256 nonce);
    /// @notice The master revoked an unused invite nonce.
    event InviteRevoked(uint256 indexed runId, uint256 indexed nonce);
    /// @notice A node (or its provider) left the run; `participation` is what it had.
    event NodeLeft(uint256 indexed runId, address indexed node, Participation participation);
    /// @notice The master removed a node from the run.
    event NodeEjected(uint256 indexed runId, address indexed node, Participation participation, bytes32 reason);
    /// @notice `amount` of available escrow was reserved for recorded work.
    event EscrowReserved(uint256 indexed runId, address indexed by, uint256 amount);
    /// @notice `amount` of reserved escrow was paid to `to`.
    event EscrowPaid(uint256 indexed runId, address indexed to, uint256 amount);
    /// @notice `amount` of reserved escrow was released: back to available while the run is open, refunded
    ///         to the buyer once it ended.
    event EscrowReleased(uint256 indexed runId, uint256 amount, bool refundedToBuyer);

    /// @notice Opens a run; the caller is its buyer and `params.budget` is pulled from the caller into escrow.
    /// @param params Run parameters.
    /// @return runId Id of the new run (sequential from 1).
    function createRun(RunParams calldata params) external returns (uint256 runId);

    /// @notice Pending -> Active (buyer or master).
    /// @param runId Run.
    function startRun(uint256 runId) external;

    /// @notice Active -> Completed (buyer only: a leaked master key must not end the run); refunds the
    ///         unreserved escrow to the buyer.
    /// @param runId Run.
    function completeRun(uint256 runId) external;

    /// @notice Pending/Active -> Cancelled (buyer only); refunds the unreserved escrow to the buyer.
    /// @param runId Run.
    function cancelRun(uint256 runId) external;

    /// @notice Adds `amount` (pulled from the caller) to an open run's escrow. Anyone may fund a run; what is
    ///         unspent when the run ends is refunded to the buyer, not to the funder.
    /// @param runId Run.
    /// @param amount Amount.
    function fundRun(uint256 runId, uint256 amount) external;

    /// @notice Replaces the master of an open run (buyer only).
    /// @param runId Run.
    /// @param newMaster New master address.
    function setMaster(uint256 runId, address newMaster) external;

    /// @notice Replaces the discovery URI of an open run (buyer only).
    /// @param runId Run.
    /// @param discoveryURI New URI.
    function setDiscoveryURI(uint256 runId, string calldata discoveryURI) external;

    /// @notice Registers `node` for an open run (the node or its provider). The node's on-chain
    ///         capabilities must meet every requirement and its stake its minimum.
    /// @param runId Run.
    /// @param node Node.
    function registerForRun(uint256 runId, address node) external;

    /// @notice Makes a registered, validated node a member with the master's invite (the node or its
    ///         provider). The invite is the EIP-712 message
    ///         `Invite(uint256 runId,address node,uint256 generation,uint256 nonce,uint256 expiry)` in the domain
    ///         `("computenet.TrainingRuns", "1", chainId, this)`, signed by the run's current master (an EOA or
    ///         an ERC-1271 contract). Each nonce of a run is usable once, and `generation` must be the node's
    ///         current `inviteGenerationOf(runId, node)`, which every leave or ejection increments: invites
    ///         issued before a node was ejected cannot bring it back.
    /// @param runId Run.
    /// @param node Node.
    /// @param nonce Invite nonce.
    /// @param expiry Last second at which the invite is valid.
    /// @param signature Master's signature.
    function acceptInvite(uint256 runId, address node, uint256 nonce, uint256 expiry, bytes calldata signature)
        external;

    /// @notice Revokes an unused invite nonce (master only).
    /// @param runId Run.
    /// @param nonce Invite nonce.
    function revokeInvite(uint256 runId, uint256 nonce) external;

    /// @notice Ends `node`'s registration or membership in a run, in any run status (node or provider).
    /// @param runId Run.
    /// @param node Node.
    function leaveRun(uint256 runId, address node) external;

    /// @notice Removes a registered node or member from a run (master only).
    /// @param runId Run.
    /// @param node Node.
    /// @param reason Hash of the reason (e.g. missed heartbeats).
    function eject(uint256 runId, address node, bytes32 reason) external;

    /// @notice Moves `amount` of available escrow to reserved (ESCROW_ROLE: the task ledger).
    /// @param runId Run.
    /// @param amount Amount.
    function reserveEscrow(uint256 runId, uint256 amount) external;

    /// @notice Pays `amount` of reserved escrow to `to` (ESCROW_ROLE: settlement).
    /// @param runId Run.
    /// @param to Receiver.
    /// @param amount Amount.
    function payFromEscrow(uint256 runId, address to, uint256 amount) external;

    /// @notice Releases `amount` of reserved escrow (ESCROW_ROLE): available again while the run is open,
    ///         refunded to the buyer once it ended.
    /// @param runId Run.
    /// @param amount Amount.
    function releaseEscrow(uint256 runId, uint256 amount) external;

    /// @notice A run's parameters and status.
    /// @param runId Run.
    /// @return The run.
    function getRun(uint256 runId) external view returns (RunInfo memory);

    /// @notice A run's requirements.
    /// @param runId Run.
    /// @return The requirements.
    function requirementsOf(uint256 runId) external view returns (Requirements memory);

    /// @notice A run's escrow.
    /// @param runId Run.
    /// @return The escrow figures.
    function escrowOf(uint256 runId) external view returns (Escrow memory);

    /// @notice Whether `account` is the run's current master.
    /// @param runId Run.
    /// @param account Address.
    /// @return True when it is.
    function isMaster(uint256 runId, address account) external view returns (bool);

    /// @notice Whether `node` is a member of the run.
    /// @param runId Run.
    /// @param node Node.
    /// @return True when a member.
    function isMember(uint256 runId, address node) external view returns (bool);

    /// @notice `node`'s participation in the run.
    /// @param runId Run.
    /// @param node Node.
    /// @return The participation.
    function participationOf(uint256 runId, address node) external view returns (Participation);

    /// @notice A page of the run's members.
    /// @param runId Run.
    /// @param offset First index.
    /// @param limit Maximum count.
    /// @return members Member addresses.
    function membersOf(uint256 runId, uint256 offset, uint256 limit) external view returns (address[] memory members);

    /// @notice Runs the node is registered for or member of (ended runs included until it leaves them).
    /// @param node Node.
    /// @return Run ids (at most MAX_RUNS_PER_NODE).
    function runsOf(address node) external view returns (uint256[] memory);

    /// @notice Number of pending or active runs the node is registered for or member of.
    /// @param node Node.
    /// @return Count.
    function activeRunCount(address node) external view returns (uint256);

    /// @notice Whether an invite nonce of the run was used or revoked.
    /// @param runId Run.
    /// @param nonce Invite nonce.
    /// @return True when used.
    function isInviteNonceUsed(uint256 runId, uint256 nonce) external view returns (bool);

    /// @notice The invite generation of `node` in the run: starts at 0, +1 at every leave, ejection or prune.
    /// @param runId Run.
    /// @param node Node.
    /// @return The generation an invite must carry.
    function inviteGenerationOf(uint256 runId, address node) external view returns (uint256);

    /// @notice The EIP-712 digest a master signs for an invite, at the node's current invite generation.
    /// @param runId Run.
    /// @param node Node.
    /// @param nonce Invite nonce.
    /// @param expiry Expiry.
    /// @return The digest.
    function inviteDigest(uint256 runId, address node, uint256 nonce, uint256 expiry) external view returns (bytes32);

    /// @notice Number of runs ever created (the last run id).
    /// @return Count.
    function runCount() external view returns (uint256);
}
