// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IChallengeBoard
/// @notice Results of validators' hardware challenges. Each node goes through numbered rounds; a round
///         ends Validated when `requiredApprovals` distinct validators approve it, or Rejected at the
///         first reject. Results are tied to the node's capability declaration (`capsId` in the
///         MinerRegistry): when the node changes its capabilities or registers again, a new round starts
///         and the earlier result no longer counts.
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
    /// @param rejectedAt When the round was rejected (0 otherwise).
    /// @param rejectedBy Validator that rejected it.
    /// @param rejectReason Hash of the rejecting validator's reason or evidence.
    struct NodeChallenge {
        uint64 capsId;
        uint32 round;
        ChallengeStatus status;
        uint16 approvals;
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
    /// @notice The required number of approvals must be positive.
    error ChallengeBoardInvalidRequiredApprovals(uint16 requiredApprovals);

    /// @notice A new round started for `node`'s declaration `capsId`.
    event ChallengeRoundStarted(address indexed node, uint32 indexed round, uint64 capsId);
    /// @notice `validator` approved `node` in `round` with the hash of the challenge result.
    event ChallengeApproved(address indexed node, uint32 indexed round, address indexed validator, bytes32 resultHash, uint16 approvals);
    /// @notice `validator` rejected `node` in `round`; `reasonHash` commits to the reason or evidence.
    event ChallengeRejected(address indexed node, uint32 indexed round, address indexed validator, bytes32 reasonHash);
    /// @notice `node` reached the required approvals in `round` and is validated.
    event NodeValidated(address indexed node, uint32 indexed round, uint64 capsId);
    /// @notice The number of approvals that validates a node changed.
    event RequiredApprovalsUpdated(uint16 requiredApprovals);
    /// @notice The cooldown between a rejection and a new round changed.
    event RetryCooldownUpdated(uint64 cooldown);

    /// @notice Reports the result of a challenge of `node` (VALIDATOR_ROLE only, never on the validator's own
    ///         node or a node of its own provider account), at most once per validator per round. Starts a
    ///         new round first when the node's capabilities changed, unless the node was rejected less than
    ///         the retry cooldown ago.
    /// @param node Node challenged.
    /// @param approved Whether the node passed.
    /// @param resultHash Hash of the challenge and its result (approve) or of the reason (reject); non-zero.
    function reportChallenge(address node, bool approved, bytes32 resultHash) external;

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
