// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IChallengeBoard} from "./interfaces/IChallengeBoard.sol";
import {IMinerRegistry} from "./interfaces/IMinerRegistry.sol";
import {Clock} from "./utils/Clock.sol";

/// @title ChallengeBoard
/// @notice Validators' hardware challenge results, on chain. See {IChallengeBoard}.
/// @dev Unlike Prime's, failed challenges are recorded on chain (with a reason hash), every validator's
///      result hash is kept, and one validator cannot validate a node alone unless the admin sets the
///      required approvals to one.
contract ChallengeBoard is IChallengeBoard, AccessControl, Clock {
    /// @notice Role of the accounts that challenge nodes and report the results.
    bytes32 public constant VALIDATOR_ROLE = keccak256("VALIDATOR_ROLE");
    /// @notice Upper bound of the approval and rejection quorums.
    uint16 public constant MAX_QUORUM = 64;
    /// @notice Upper bound of the retry cooldown.
    uint64 public constant MAX_RETRY_COOLDOWN = 30 days;

    /// @notice Registry of the nodes challenged.
    IMinerRegistry public immutable registry;
    /// @notice Distinct approvals in one round that validate a node.
    uint16 public requiredApprovals;
    /// @notice Distinct rejections in one round that reject a node.
    uint16 public requiredRejections;
    /// @notice Time after a rejection before a new round may be requested.
    uint64 public retryCooldown;

    mapping(address node => NodeChallenge) private _challenges;
    mapping(address node => mapping(uint32 round => mapping(address validator => bytes32))) private _reports;

    /// @param admin Receives DEFAULT_ADMIN_ROLE (grants VALIDATOR_ROLE, sets parameters).
    /// @param registry_ MinerRegistry.
    /// @param requiredApprovals_ Approvals that validate a node, in [1, MAX_QUORUM].
    /// @param requiredRejections_ Rejections that reject a node, in [1, MAX_QUORUM].
    /// @param retryCooldown_ Seconds between a rejection and a new round, at most MAX_RETRY_COOLDOWN.
    constructor(
        address admin,
        IMinerRegistry registry_,
        uint16 requiredApprovals_,
        uint16 requiredRejections_,
        uint64 retryCooldown_
    ) {
        if (admin == address(0) || address(registry_) == address(0)) revert ChallengeBoardZeroAddress();
        registry = registry_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _setRequiredApprovals(requiredApprovals_);
        _setRequiredRejections(requiredRejections_);
        _setRetryCooldown(retryCooldown_);
    }

    /// @inheritdoc IChallengeBoard
    function reportChallenge(address node, uint64 capsId, bool approved, bytes32 resultHash)
        external
        onlyRole(VALIDATOR_ROLE)
    {
        if (resultHash == bytes32(0)) revert ChallengeBoardEmptyResultHash();
        (address provider, uint64 current) = registry.registrationOf(node);
        if (current == 0) revert ChallengeBoardNodeNotRegistered(node);
        if (capsId != current) revert ChallengeBoardStaleDeclaration(node, capsId, current);
        if (msg.sender == node || msg.sender == provider) revert ChallengeBoardSelfReport(node, msg.sender);

        NodeChallenge storage challenge = _challenges[node];
        if (challenge.capsId != capsId) {
            if (challenge.status == ChallengeStatus.Rejected) _checkCooldown(node, challenge);
            _startRound(node, challenge, capsId);
        }
        uint32 round = challenge.round;
        if (challenge.status != ChallengeStatus.Pending) revert ChallengeBoardRoundClosed(node, round, challenge.status);
        if (_reports[node][round][msg.sender] != bytes32(0)) {
            revert ChallengeBoardAlreadyReported(node, round, msg.sender);
        }
        _reports[node][round][msg.sender] = resultHash;

        if (approved) {
            uint16 approvals = challenge.approvals + 1;
            challenge.approvals = approvals;
            emit ChallengeApproved(node, round, msg.sender, resultHash, approvals);
            if (approvals >= requiredApprovals) {
                challenge.status = ChallengeStatus.Validated;
                emit NodeValidated(node, round, capsId);
            }
        } else {
            uint16 rejections = challenge.rejections + 1;
            challenge.rejections = rejections;
            emit ChallengeRejected(node, round, msg.sender, resultHash, rejections);
            if (rejections >= requiredRejections) {
                _reject(challenge, msg.sender, resultHash);
                emit NodeRejected(node, round, capsId);
            }
        }
    }

    /// @inheritdoc IChallengeBoard
    function revokeValidation(address node, bytes32 reasonHash) external onlyRole(DEFAULT_ADMIN_ROLE) {
        NodeChallenge storage challenge = _challenges[node];
        if (challenge.status != ChallengeStatus.Validated || challenge.capsId != registry.capsIdOf(node)) {
            revert ChallengeBoardNotValidated(node);
        }
        _reject(challenge, msg.sender, reasonHash);
        emit ValidationRevoked(node, challenge.round, msg.sender, reasonHash);
    }

    /// @inheritdoc IChallengeBoard
    function requestNewRound(address node) external {
        (address provider, uint64 capsId) = registry.registrationOf(node);
        if (provider == address(0)) revert ChallengeBoardNodeNotRegistered(node);
        if (msg.sender != node && msg.sender != provider) revert ChallengeBoardNotNodeOrProvider(node, msg.sender);
        NodeChallenge storage challenge = _challenges[node];
        // A changed declaration starts its own round at the next report; nothing to retry.
        if (challenge.capsId != capsId || challenge.status != ChallengeStatus.Rejected) {
            revert ChallengeBoardNotRejected(node, challenge.capsId == capsId ? challenge.status : ChallengeStatus.None);
        }
        _checkCooldown(node, challenge);
        _startRound(node, challenge, capsId);
    }

    /// @notice Sets the approvals that validate a node (admin only); applies to the next approval.
    /// @param requiredApprovals_ New number, in [1, MAX_QUORUM].
    function setRequiredApprovals(uint16 requiredApprovals_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setRequiredApprovals(requiredApprovals_);
    }

    /// @notice Sets the rejections that reject a node (admin only); applies to the next rejection.
    /// @param requiredRejections_ New number, in [1, MAX_QUORUM].
    function setRequiredRejections(uint16 requiredRejections_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setRequiredRejections(requiredRejections_);
    }

    /// @notice Sets the cooldown between a rejection and a new round (admin only).
    /// @param retryCooldown_ Seconds.
    function setRetryCooldown(uint64 retryCooldown_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setRetryCooldown(retryCooldown_);
    }

    /// @inheritdoc IChallengeBoard
    function isValidated(address node) external view returns (bool) {
        NodeChallenge storage challenge = _challenges[node];
        return challenge.status == ChallengeStatus.Validated && challenge.capsId == registry.capsIdOf(node);
    }

    /// @inheritdoc IChallengeBoard
    function challengeOf(address node) external view returns (NodeChallenge memory) {
        return _challenges[node];
    }

    /// @inheritdoc IChallengeBoard
    function reportOf(address node, uint32 round, address validator) external view returns (bytes32) {
        return _reports[node][round][validator];
    }

    function _checkCooldown(address node, NodeChallenge storage challenge) private view {
        uint64 availableAt = challenge.rejectedAt + retryCooldown;
        if (_clock() < availableAt) revert ChallengeBoardCooldownActive(node, availableAt);
    }

    function _startRound(address node, NodeChallenge storage challenge, uint64 capsId) private {
        uint32 round = challenge.round + 1;
        challenge.capsId = capsId;
        challenge.round = round;
        challenge.status = ChallengeStatus.Pending;
        challenge.approvals = 0;
        challenge.rejections = 0;
        if (challenge.rejectedAt != 0) {
            challenge.rejectedAt = 0;
            challenge.rejectedBy = address(0);
            challenge.rejectReason = bytes32(0);
        }
        emit ChallengeRoundStarted(node, round, capsId);
    }

    function _reject(NodeChallenge storage challenge, address by, bytes32 reasonHash) private {
        challenge.status = ChallengeStatus.Rejected;
        challenge.rejectedAt = _clock();
        challenge.rejectedBy = by;
        challenge.rejectReason = reasonHash;
    }

    function _checkQuorum(uint16 quorum) private pure {
        if (quorum == 0 || quorum > MAX_QUORUM) revert ChallengeBoardInvalidQuorum(quorum, MAX_QUORUM);
    }

    function _setRequiredApprovals(uint16 requiredApprovals_) private {
        _checkQuorum(requiredApprovals_);
        requiredApprovals = requiredApprovals_;
        emit RequiredApprovalsUpdated(requiredApprovals_);
    }

    function _setRequiredRejections(uint16 requiredRejections_) private {
        _checkQuorum(requiredRejections_);
        requiredRejections = requiredRejections_;
        emit RequiredRejectionsUpdated(requiredRejections_);
    }

    function _setRetryCooldown(uint64 retryCooldown_) private {
        if (retryCooldown_ > MAX_RETRY_COOLDOWN) {
            revert ChallengeBoardInvalidRetryCooldown(retryCooldown_, MAX_RETRY_COOLDOWN);
        }
        retryCooldown = retryCooldown_;
        emit RetryCooldownUpdated(retryCooldown_);
    }
}
