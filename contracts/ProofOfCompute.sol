// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AccessControlEnumerable} from "@openzeppelin/contracts/access/extensions/AccessControlEnumerable.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IChallengeBoard} from "./interfaces/IChallengeBoard.sol";
import {IEpochManager} from "./interfaces/IEpochManager.sol";
import {IMinerRegistry} from "./interfaces/IMinerRegistry.sol";
import {IProofOfCompute} from "./interfaces/IProofOfCompute.sol";
import {Clock} from "./utils/Clock.sol";

/// @title ProofOfCompute
/// @notice PoC commitments, power-weighted verdicts, and the capped power of each epoch. See {IProofOfCompute}.
/// @dev The cap is computed lazily in the views, from an aggregate kept per epoch (raw total, number of
///      accepted nodes and the `MAX_CAPPED` largest raw counts): no loop over nodes anywhere.
///
///      Why the largest four suffice. With `n` accepted nodes, raw counts sorted `t1 >= t2 >= ...`, raw total
///      `R`, `S_j = t1 + ... + tj` and cap `c` (a fraction), let `h(x) = c * sum(min(r_i, x)) - x` for
///      `x <= t1`. A level `x` is admissible when `h(x) >= 0` (no node holds more than `c` of the capped
///      total). Where exactly `j` nodes lie above `x`, `h(x) = c * (R - S_j) - (1 - j * c) * x`: `h` is
///      piecewise linear, `h(0) = 0`, and its slope `n * c - 1` near 0 is >= 0 because the effective cap is
///      never below `1 / n`; the slope only falls as `x` grows (fewer nodes above it), so `h` is concave and
///      the admissible levels form an interval `[0, x*]`. If `h(t1) >= 0` nobody is capped. Otherwise `x*`
///      lies where `h` falls, in a piece with `j* * c < 1`, and equals `x_j* = c * (R - S_j*) / (1 - j* * c)`;
///      for every `j < j*`, `h(t_{j+1}) < 0` gives `t_{j+1} > x_j`, so `j*` is the first `j` with
///      `t_{j+1} <= x_j`. Finally `j* <= 3`: with `n <= 4`, `j* <= n - 1`; with `n >= 5` the cap is
///      `maxShareBps >= 2500`, and `j* * c < 1` forces `j* <= 3`. Flooring `x` to an integer keeps it
///      admissible (`x * (1 - j * c) <= c * (R - S_j)`) and does not change which `j` is first, as the `t`
///      are integers.
contract ProofOfCompute is IProofOfCompute, AccessControlEnumerable, Clock {
    /// @notice The bootstrap set: verdict givers while no power exists in the epoch before.
    bytes32 public constant VALIDATOR_ROLE = keccak256("VALIDATOR_ROLE");
    /// @notice Most nodes that can lie above the water level (given maxShareBps >= MIN_MAX_SHARE_BPS).
    uint256 public constant MAX_CAPPED = 4;
    /// @notice Smallest acceptance threshold: a majority.
    uint16 public constant MIN_ACCEPT_SHARE_BPS = 5001;
    /// @notice Smallest cap of one node's share; 1/MAX_CAPPED, so that at most MAX_CAPPED nodes are capped.
    uint16 public constant MIN_MAX_SHARE_BPS = 2500;
    /// @notice Basis points of a whole.
    uint16 public constant BPS = 10_000;

    /// @dev What an epoch's power is computed from: two storage slots.
    /// @param rawTotal Sum of the accepted counts.
    /// @param acceptedNodes Number of accepted commitments.
    /// @param top The MAX_CAPPED largest accepted counts, largest first, zero-padded.
    struct EpochPower {
        uint128 rawTotal;
        uint64 acceptedNodes;
        uint64[MAX_CAPPED] top;
    }

    /// @notice The epoch clock (timelines, beacons, seed commitments).
    IEpochManager public immutable epochs;
    /// @notice Where nodes are registered.
    IMinerRegistry public immutable registry;
    /// @notice Where nodes pass their hardware challenge.
    IChallengeBoard public immutable board;
    /// @notice A commitment is accepted once more than this share of its verdict weight accepts (bps).
    uint16 public immutable acceptShareBps;
    /// @notice Largest share of an epoch's power one node may hold with four nodes or more (bps).
    uint16 public immutable maxShareBps;

    mapping(uint64 epoch => mapping(address node => Commitment)) private _commitments;
    mapping(uint64 epoch => mapping(address node => mapping(address validator => bool))) private _verdicts;
    mapping(uint64 epoch => EpochPower) private _power;

    /// @param admin Receives DEFAULT_ADMIN_ROLE (grants VALIDATOR_ROLE, the bootstrap set).
    /// @param epochs_ EpochManager.
    /// @param registry_ MinerRegistry.
    /// @param board_ ChallengeBoard.
    /// @param acceptShareBps_ Acceptance threshold in [MIN_ACCEPT_SHARE_BPS, BPS] (6667: two thirds).
    /// @param maxShareBps_ Cap of one node's share in [MIN_MAX_SHARE_BPS, BPS] (3000: 30 %).
    constructor(
        address admin,
        IEpochManager epochs_,
        IMinerRegistry registry_,
        IChallengeBoard board_,
        uint16 acceptShareBps_,
        uint16 maxShareBps_
    ) {
        if (
            admin == address(0) || address(epochs_) == address(0) || address(registry_) == address(0)
                || address(board_) == address(0)
        ) revert ProofOfComputeZeroAddress();
        if (acceptShareBps_ < MIN_ACCEPT_SHARE_BPS || acceptShareBps_ > BPS) {
            revert ProofOfComputeInvalidShare(acceptShareBps_, MIN_ACCEPT_SHARE_BPS, BPS);
        }
        if (maxShareBps_ < MIN_MAX_SHARE_BPS || maxShareBps_ > BPS) {
            revert ProofOfComputeInvalidShare(maxShareBps_, MIN_MAX_SHARE_BPS, BPS);
        }
        epochs = epochs_;
        registry = registry_;
        board = board_;
        acceptShareBps = acceptShareBps_;
        maxShareBps = maxShareBps_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @inheritdoc IProofOfCompute
    function commitPoc(uint64 epoch, bytes32 root, uint64 count) external {
        if (root == bytes32(0) || count == 0) revert ProofOfComputeEmptyCommitment();
        IEpochManager.Timeline memory timeline = epochs.timelineOf(epoch);
        uint64 now_ = _clock();
        if (now_ < timeline.start || now_ >= timeline.pocEnd) {
            revert ProofOfComputeOutsideCommitWindow(epoch, timeline.start, timeline.pocEnd);
        }
        if (epochs.recordOf(epoch).pocBeacon == bytes32(0)) revert ProofOfComputeEpochNotAdvanced(epoch);
        Commitment storage commitment = _commitments[epoch][msg.sender];
        if (commitment.status != Status.None) revert ProofOfComputeAlreadyCommitted(epoch, msg.sender);
        if (!registry.isRegistered(msg.sender)) revert ProofOfComputeNodeNotRegistered(msg.sender);
        if (!board.isValidated(msg.sender)) revert ProofOfComputeNodeNotValidated(msg.sender);
        if (epochs.seedCommitmentOf(epoch, msg.sender) == bytes32(0)) {
            revert ProofOfComputeNoSeedCommitment(epoch, msg.sender);
        }

        commitment.root = root;
        commitment.count = count;
        commitment.status = Status.Pending;
        commitment.committedAt = now_;
        emit PocCommitted(epoch, msg.sender, root, count);
    }

    /// @inheritdoc IProofOfCompute
    function submitVerdict(uint64 epoch, address node, bool accepted, bytes32 evidenceHash) external {
        if (node == msg.sender) revert ProofOfComputeSelfVerdict(node);
        Commitment storage commitment = _commitments[epoch][node];
        Status status = commitment.status;
        if (status == Status.None) revert ProofOfComputeNoCommitment(epoch, node);
        if (status != Status.Pending) revert ProofOfComputeAlreadyDecided(epoch, node, status);
        // The commitment exists, so the window has opened; it closes with the PoC validation phase.
        uint64 closesAt = epochs.timelineOf(epoch).pocValidationEnd;
        if (_clock() >= closesAt) revert ProofOfComputeOutsideVerdictWindow(epoch, closesAt);
        if (_verdicts[epoch][node][msg.sender]) revert ProofOfComputeAlreadyVoted(epoch, node, msg.sender);
        (uint256 weight, uint256 total,) = _verdictWeight(epoch, node, msg.sender);
        if (weight == 0) revert ProofOfComputeNoVerdictWeight(epoch, msg.sender);

        _verdicts[epoch][node][msg.sender] = true;
        // Each giver votes once per commitment, so a side's weight never exceeds the epoch's verdict
        // weight, itself at most a raw total (uint128) or the bootstrap set's size.
        if (accepted) {
            uint256 acceptWeight = commitment.acceptWeight + weight;
            commitment.acceptWeight = SafeCast.toUint128(acceptWeight);
            emit PocVerdict(epoch, node, msg.sender, true, weight, evidenceHash);
            if (acceptWeight * BPS > uint256(acceptShareBps) * total) {
                commitment.status = Status.Accepted;
                uint64 count = commitment.count;
                _addPower(_power[epoch], count);
                emit PocAccepted(epoch, node, count, acceptWeight, total);
            }
        } else {
            uint256 rejectWeight = commitment.rejectWeight + weight;
            commitment.rejectWeight = SafeCast.toUint128(rejectWeight);
            emit PocVerdict(epoch, node, msg.sender, false, weight, evidenceHash);
            // Acceptance needs more than acceptShareBps of `total`; once this much rejects it cannot happen.
            if (rejectWeight * BPS >= uint256(BPS - acceptShareBps) * total) {
                commitment.status = Status.Rejected;
                emit PocRejected(epoch, node, rejectWeight, total);
            }
        }
    }

    /// @inheritdoc IProofOfCompute
    function commitmentOf(uint64 epoch, address node) external view returns (Commitment memory) {
        return _commitments[epoch][node];
    }

    /// @inheritdoc IProofOfCompute
    function hasVerdict(uint64 epoch, address node, address validator) external view returns (bool) {
        return _verdicts[epoch][node][validator];
    }

    /// @inheritdoc IProofOfCompute
    function verdictWeightOf(uint64 epoch, address validator)
        external
        view
        returns (uint256 weight, uint256 total, bool bootstrap)
    {
        if (epoch > 1) {
            uint64 previous = epoch - 1;
            (uint256 level, uint256 power) = _waterLevel(_power[previous]);
            if (power != 0) return (_min(_rawPower(previous, validator), level), power, false);
        }
        return (_bootstrapWeight(validator), getRoleMemberCount(VALIDATOR_ROLE), true);
    }

    /// @inheritdoc IProofOfCompute
    function verdictWeightFor(uint64 epoch, address node, address validator)
        external
        view
        returns (uint256 weight, uint256 total, bool bootstrap)
    {
        (weight, total, bootstrap) = _verdictWeight(epoch, node, validator);
        if (validator == node) weight = 0;
    }

    /// @inheritdoc IProofOfCompute
    /// @dev Reverts with the EpochManager's error for epoch 0 (which has no timeline).
    function isPowerFinal(uint64 epoch) external view returns (bool) {
        return _clock() >= epochs.timelineOf(epoch).pocValidationEnd;
    }

    /// @inheritdoc IProofOfCompute
    function rawPowerOf(uint64 epoch, address node) external view returns (uint256) {
        return _rawPower(epoch, node);
    }

    /// @inheritdoc IProofOfCompute
    function powerOf(uint64 epoch, address node) external view returns (uint256) {
        uint256 raw = _rawPower(epoch, node);
        if (raw == 0) return 0;
        (uint256 level,) = _waterLevel(_power[epoch]);
        return _min(raw, level);
    }

    /// @inheritdoc IProofOfCompute
    function totalPower(uint64 epoch) external view returns (uint256 total) {
        (, total) = _waterLevel(_power[epoch]);
    }

    /// @inheritdoc IProofOfCompute
    /// @dev `level` is the largest power of the epoch: the largest raw count when nobody is capped, else the
    ///      power of every capped node.
    function powerCap(uint64 epoch)
        external
        view
        returns (uint256 level, uint256 capBps, uint256 acceptedNodes, uint256 rawTotal)
    {
        EpochPower memory p = _power[epoch];
        (level,) = _waterLevel(p);
        return (level, _capBps(p.acceptedNodes), p.acceptedNodes, p.rawTotal);
    }

    /// @dev Weight of `validator` on the commitment of `node` in `epoch` and the total its thresholds are out
    ///      of. A node cannot judge itself, so its own weight is left out of the total: otherwise with three
    ///      nodes or fewer in the epoch before (each holding a third or more) the largest could never be
    ///      accepted. A node that held all of the epoch before's power has nobody left to judge it: the
    ///      bootstrap set does, as it does for everyone while the epoch before has no power.
    function _verdictWeight(uint64 epoch, address node, address validator)
        private
        view
        returns (uint256 weight, uint256 total, bool bootstrap)
    {
        if (epoch > 1) {
            uint64 previous = epoch - 1;
            (uint256 level, uint256 power) = _waterLevel(_power[previous]);
            uint256 own = _min(_rawPower(previous, node), level);
            if (own < power) return (_min(_rawPower(previous, validator), level), power - own, false);
        }
        return (
            _bootstrapWeight(validator), getRoleMemberCount(VALIDATOR_ROLE) - _bootstrapWeight(node), true
        );
    }

    function _bootstrapWeight(address account) private view returns (uint256) {
        return hasRole(VALIDATOR_ROLE, account) ? 1 : 0;
    }

    function _rawPower(uint64 epoch, address node) private view returns (uint256) {
        Commitment storage commitment = _commitments[epoch][node];
        return commitment.status == Status.Accepted ? commitment.count : 0;
    }

    /// @dev Records an accepted count: raw total, node count, and the largest counts (insertion into a sorted
    ///      array of MAX_CAPPED, read and written as one slot).
    function _addPower(EpochPower storage p, uint64 count) private {
        p.rawTotal += count;
        ++p.acceptedNodes;
        uint64[MAX_CAPPED] memory top = p.top;
        uint256 i = MAX_CAPPED - 1;
        if (count <= top[i]) return;
        while (i > 0 && top[i - 1] < count) {
            top[i] = top[i - 1];
            --i;
        }
        top[i] = count;
        p.top = top;
    }

    /// @dev Effective cap (bps) with `n` accepted nodes: never below 1/n, so that a water level exists.
    function _capBps(uint256 n) private view returns (uint256) {
        uint256 cap = maxShareBps;
        if (n == 1) return BPS;
        if (n == 2) return cap > 5000 ? cap : 5000;
        if (n == 3) return cap > 4000 ? cap : 4000;
        return cap;
    }

    /// @dev The water level and the total power of an epoch (see the contract's @dev for why this is right and
    ///      why the loop ends by `j = MAX_CAPPED - 1`).
    /// @return level The largest power: the largest raw count if nobody is capped, else the capped nodes' power.
    /// @return total Sum of all powers.
    function _waterLevel(EpochPower memory p) private view returns (uint256 level, uint256 total) {
        uint256 raw = p.rawTotal;
        uint256 cap = _capBps(p.acceptedNodes);
        // Nobody is above the cap: every node keeps its raw count.
        if (uint256(p.top[0]) * BPS <= cap * raw) return (p.top[0], raw);
        uint256 cappedRaw; // S_j
        for (uint256 j = 1; j < MAX_CAPPED; ++j) {
            cappedRaw += p.top[j - 1];
            uint256 x = (cap * (raw - cappedRaw)) / (BPS - j * cap);
            // j = MAX_CAPPED - 1 is reached only when it is the answer (j* <= 3).
            if (j == MAX_CAPPED - 1 || p.top[j] <= x) return (x, raw - cappedRaw + j * x);
        }
    }

    function _min(uint256 a, uint256 b) private pure returns (uint256) {
        return a < b ? a : b;
    }
}
