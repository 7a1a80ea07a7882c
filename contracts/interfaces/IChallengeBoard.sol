// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IChallengeBoard
/// @notice Results of validators' hardware challenges. Each node goes through numbered rounds; a round
///         ends Validated when `requiredApprovals` distinct validators approve it, or Rejected when
///         `requiredRejections` distinct validators reject it (1 by default: one reject rejects; a higher
///         value keeps a single validator key from blocking nodes). Each report names the capability
///         declaration (`capsId` in the MinerRegistry) its challenge tested, and is refused for any other:
///         a node cannot swap its declaration between being challenged and being approved. When the node
///         changes its capabilities or registers again, a new round starts and the earlier result no longer
///         counts.
interface IChallengeBoard {
    /// @notice State of a node's current round.
    enum ChallengeStatus {
        None,
        Pending,
        Validated,
        Rejected
    }

    /// @notice A node's challenge state.
    /// @param capsId Capability declaration the round challenges.
    /// @param round Round number (starts at 1, never reused for a node).
    /// @param status Outcome of the round so far.
    /// @param approvals Distinct approvals in this round.
    /// @param rejections Distinct rejections in this round.
    /// @param rejectedAt When the round was rejected or its validation revoked (0 otherwise).
    /// @param rejectedBy Validator whose reject closed the round (or the admin that revoked it).
    /// @param rejectReason Hash of that reason or evidence.
    struct NodeChallenge {
        uint64 capsId;
        uint32 round;
        ChallengeStatus status;
        uint16 approvals;
        uint16 rejections;
        uint64 rejectedAt;
        address rejectedBy;
        bytes32 rejectReason;
    }

    /// @notice The node is not registered in the MinerRegistry.
    error ChallengeBoardNodeNotRegistered(address node);
    /// @notice A zero address where an account or contract is needed.
    error ChallengeBoardZeroAddress();
    /// @notice `validator` is the node itself or its provider: nobody validates their own hardware.
    error ChallengeBoardSelfReport(address node, address validator);
    /// @notice `validator` already reported on this round of `node`.
    error ChallengeBoardAlreadyReported(address node, uint32 round, address validator);
    /// @notice The node's current round is already decided (`status` is Validated or Rejected).
    error ChallengeBoardRoundClosed(address node, uint32 round, ChallengeStatus status);
    /// @notice The result or reason hash is zero.
    error ChallengeBoardEmptyResultHash();
    /// @notice A new round is only possible after a rejection of the current declaration.
    error ChallengeBoardNotRejected(address node, ChallengeStatus status);
    /// @notice The retry cooldown after a rejection runs until `availableAt` (it also holds when the node
    ///         changed its capabilities since: a new declaration does not skip it).
    error ChallengeBoardCooldownActive(address node, uint64 availableAt);
    /// @notice `caller` is neither the node nor its provider.
    error ChallengeBoardNotNodeOrProvider(address node, address caller);
    /// @notice A quorum (required approvals or rejections) must be in [1, max].
    error ChallengeBoardInvalidQuorum(uint16 quorum, uint16 max);
    /// @notice The retry cooldown must be at most `max` seconds.
    error ChallengeBoardInvalidRetryCooldown(uint64 cooldown, uint64 max);
    /// @notice The report names declaration `capsId` but the node's current declaration is `current`.
    error ChallengeBoardStaleDeclaration(address node, uint64 capsId, uint64 current);
    /// @notice Only a validated node's validation can be revoked.
    error ChallengeBoardNotValidated(address node);

    /// @notice A new round started for `node`'s declaration `capsId`.
    event ChallengeRoundStarted(address indexed node, uint32 indexed round, uint64 capsId);
    /// @notice `validator` approved `node` in `round` with the hash of the challenge result.
    event ChallengeApproved(address indexed node, uint32 indexed round, address indexed validator, bytes32 resultHash, uint16 approvals);
    /// @notice `validator` rejected `node` in `round`; `reasonHash` commits to the reason or evidence.
    event ChallengeRejected(
        address indexed node, uint32 indexed round, address indexed validator, bytes32 reasonHash, uint16 rejections
    );
    /// @notice `node` reached the required rejections in `round` and is rejected.
    event NodeRejected(address indexed node, uint32 indexed round, uint64 capsId);
    /// @notice The admin revoked `node`'s validation (e.g. after proven fraud); it is rejected from now on.
    event ValidationRevoked(address indexed node, uint32 indexed round, address indexed by, bytes32 reasonHash);
    /// @notice `node` reached the required approvals in `round` and is validated.
    event NodeValidated(address indexed node, uint32 indexed round, uint64 capsId);
    /// @notice The number of approvals that validates a node changed.
    event RequiredApprovalsUpdated(uint16 requiredApprovals);
    /// @notice The number of rejections that rejects a node changed.
    event RequiredRejectionsUpdated(uint16 requiredRejections);
    /// @notice The cooldown between a rejection and a new round changed.
    event RetryCooldownUpdated(uint64 cooldown);

    /// @notice Reports the result of a challenge of `node` (VALIDATOR_ROLE only, never on the validator's own
    ///         node or a node of its own provider account), at most once per validator per round. Starts a
    ///         new round first when the node's capabilities changed, unless the node was rejected less than
    ///         the retry cooldown ago.
    /// @param node Node challenged.
    /// @param capsId Capability declaration the challenge tested (read from the registry before challenging).
    /// @param approved Whether the node passed.
    /// @param resultHash Hash of the challenge and its result (approve) or of the reason (reject); non-zero.
    function reportChallenge(address node, uint64 capsId, bool approved, bytes32 resultHash) external;

    /// @notice Revokes a validated node's validation (admin only): the round becomes Rejected, with the
    ///         usual retry cooldown before a new round.
    /// @param node Validated node.
    /// @param reasonHash Hash of the reason or evidence.
    function revokeValidation(address node, bytes32 reasonHash) external;

    /// @notice Starts a new round for a rejected node once the cooldown has passed (the node or its provider).
    /// @param node Node to challenge again.
    function requestNewRound(address node) external;

    /// @notice Whether `node` is validated for its current capability declaration.
    /// @param node Node address.
    /// @return True when validated.
    function isValidated(address node) external view returns (bool);

    /// @notice A node's challenge state as stored (it may describe an outdated declaration: compare
    ///         `capsId` with the registry's).
    /// @param node Node address.
    /// @return The state.
    function challengeOf(address node) external view returns (NodeChallenge memory);

    /// @notice The result hash `validator` reported for `node` in `round`, or zero.
    /// @param node Node address.
    /// @param round Round number.
    /// @param validator Validator address.
    /// @return The hash reported.
    function reportOf(address node, uint32 round, address validator) external view returns (bytes32);
}
