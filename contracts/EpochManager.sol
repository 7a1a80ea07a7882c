// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IEpochManager} from "./interfaces/IEpochManager.sol";
import {IMinerRegistry} from "./interfaces/IMinerRegistry.sol";
import {Clock} from "./utils/Clock.sol";

/// @title EpochManager
/// @notice Epochs, phases, beacons, seed commitments and epoch parameters. See {IEpochManager}.
/// @dev The parameter schedule is a list of eras, each `(fromEpoch, fromStart, parameters)`, sorted by
///      `fromEpoch`; an era's `fromStart` is computed when it is scheduled, from the eras before it, so that
///      epoch starts never move once known. A change applies from `currentEpoch() + PARAMETER_DELAY`, hence
///      at most PARAMETER_DELAY eras ever lie in the future, which bounds the search for the current one.
contract EpochManager is IEpochManager, AccessControl, Clock {
    /// @notice Shortest epoch (short epochs are for devnets and tests).
    uint32 public constant MIN_EPOCH_LENGTH = 60;
    /// @notice Longest epoch.
    uint32 public constant MAX_EPOCH_LENGTH = 30 days;
    /// @notice Longest Dispute or Claim phase.
    uint32 public constant MAX_WINDOW = 30 days;
    /// @notice Epochs between the one in which parameters are scheduled and the first one they apply to.
    uint64 public constant PARAMETER_DELAY = 2;
    /// @notice Latest genesis, counted from the deployment.
    uint64 public constant MAX_GENESIS_DELAY = 30 days;

    /// @dev Domain tags of the two beacons, so that they differ even from equal inputs.
    bytes32 private constant _POC_BEACON = keccak256("computenet.EpochManager.pocBeacon");
    bytes32 private constant _CLAIM_BEACON = keccak256("computenet.EpochManager.claimBeacon");

    /// @dev Parameters applying from epoch `fromEpoch`, which starts at `fromStart`.
    struct Era {
        uint64 fromEpoch;
        uint64 fromStart;
        Parameters parameters;
    }

    /// @notice Registry whose nodes commit seeds.
    IMinerRegistry public immutable registry;
    /// @inheritdoc IEpochManager
    uint64 public immutable genesis;
    /// @inheritdoc IEpochManager
    uint64 public lastAdvancedEpoch;

    Era[] private _eras;
    mapping(uint64 epoch => EpochRecord) private _records;
    mapping(uint64 epoch => mapping(address node => bytes32)) private _seedCommitments;

    /// @param admin Receives DEFAULT_ADMIN_ROLE (schedules parameters).
    /// @param registry_ MinerRegistry.
    /// @param genesis_ Start of epoch 1: 0 for the deployment's time, otherwise a time from now to
    ///        MAX_GENESIS_DELAY ahead (e.g. to start epochs on a round hour).
    /// @param parameters Parameters of the first epochs, bounded as `scheduleParameters` requires.
    constructor(address admin, IMinerRegistry registry_, uint64 genesis_, Parameters memory parameters) {
        if (admin == address(0) || address(registry_) == address(0)) revert EpochManagerZeroAddress();
        uint64 now_ = _clock();
        if (genesis_ != 0 && (genesis_ < now_ || genesis_ > now_ + MAX_GENESIS_DELAY)) {
            revert EpochManagerInvalidGenesis(genesis_, now_, now_ + MAX_GENESIS_DELAY);
        }
        _checkParameters(parameters);
        uint64 start = genesis_ == 0 ? now_ : genesis_;
        registry = registry_;
        genesis = start;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _eras.push(Era({fromEpoch: 1, fromStart: start, parameters: parameters}));
        emit ParametersScheduled(1, start, parameters);
    }

    /// @inheritdoc IEpochManager
    function advance() external returns (uint64 epoch) {
        epoch = currentEpoch();
        uint64 last = lastAdvancedEpoch;
        if (epoch <= last) revert EpochManagerAdvanceNotDue(epoch, epochStart(epoch + 1));
        lastAdvancedEpoch = epoch;
        // Epochs nobody advanced while they were current stay without a beacon: their PoC window has passed,
        // so a beacon now would seed nothing. No loop: the cost does not grow with the gap.
        if (epoch > last + 1) emit EpochsSkipped(last + 1, epoch - 1);

        EpochRecord storage record = _records[epoch];
        bytes32 beacon = _nextBeacon(_records[last].pocBeacon, epoch, _POC_BEACON);
        record.pocBeacon = beacon;
        record.advancedAt = _clock();
        emit EpochAdvanced(epoch, epochStart(epoch), beacon, msg.sender);
    }

    /// @inheritdoc IEpochManager
    function fixClaimBeacon(uint64 epoch) external returns (bytes32 beacon) {
        EpochRecord storage record = _records[epoch];
        bytes32 poc = record.pocBeacon;
        if (poc == bytes32(0)) revert EpochManagerEpochNotAdvanced(epoch);
        uint64 availableAt = timelineOf(epoch).disputeEnd;
        if (_clock() < availableAt) revert EpochManagerClaimBeaconNotDue(epoch, availableAt);
        if (record.claimBeacon != bytes32(0)) revert EpochManagerClaimBeaconAlreadyFixed(epoch);

        beacon = _nextBeacon(poc, epoch, _CLAIM_BEACON);
        record.claimBeacon = beacon;
        record.claimBeaconFixedAt = _clock();
        emit ClaimBeaconFixed(epoch, beacon, msg.sender);
    }

    /// @inheritdoc IEpochManager
    function commitSeed(uint64 epoch, bytes32 commitment) external {
        if (commitment == bytes32(0)) revert EpochManagerZeroCommitment();
        Timeline memory timeline = timelineOf(epoch);
        uint64 now_ = _clock();
        if (now_ < timeline.start || now_ >= timeline.pocEnd) {
            revert EpochManagerOutsideSeedWindow(epoch, timeline.start, timeline.pocEnd);
        }
        if (_seedCommitments[epoch][msg.sender] != bytes32(0)) revert EpochManagerSeedAlreadyCommitted(epoch, msg.sender);
        if (!registry.isRegistered(msg.sender)) revert EpochManagerNodeNotRegistered(msg.sender);

        _seedCommitments[epoch][msg.sender] = commitment;
        emit SeedCommitted(epoch, msg.sender, commitment);
    }

    /// @inheritdoc IEpochManager
    /// @dev Bounds: epochLength in [MIN_EPOCH_LENGTH, MAX_EPOCH_LENGTH]; PoC, PoC validation and Work phases
    ///      of at least one second each within the epoch; disputeWindow and claimWindow in [1, MAX_WINDOW].
    function scheduleParameters(Parameters calldata parameters)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
        returns (uint64 fromEpoch)
    {
        _checkParameters(parameters);
        fromEpoch = currentEpoch() + PARAMETER_DELAY;
        Era storage latest = _eras[_eras.length - 1];
        uint64 fromStart;
        if (latest.fromEpoch == fromEpoch) {
            // Scheduled earlier in this same epoch and still a whole epoch away: replace it.
            latest.parameters = parameters;
            fromStart = latest.fromStart;
        } else {
            // Every era scheduled so far starts before `fromEpoch`, so this start is final.
            fromStart = epochStart(fromEpoch);
            _eras.push(Era({fromEpoch: fromEpoch, fromStart: fromStart, parameters: parameters}));
        }
        emit ParametersScheduled(fromEpoch, fromStart, parameters);
    }

    /// @inheritdoc IEpochManager
    function currentEpoch() public view returns (uint64) {
        uint64 now_ = _clock();
        // At most PARAMETER_DELAY eras start in the future, so this loop runs at most PARAMETER_DELAY + 1 times.
        uint256 i = _eras.length - 1;
        while (_eras[i].fromStart > now_ && i > 0) --i;
        Era storage era = _eras[i];
        if (era.fromStart > now_) return 0; // before genesis
        return era.fromEpoch + (now_ - era.fromStart) / era.parameters.epochLength;
    }

    /// @inheritdoc IEpochManager
    function currentPhase() external view returns (Phase) {
        uint64 epoch = currentEpoch();
        return epoch == 0 ? Phase.NotStarted : phaseOf(epoch);
    }

    /// @inheritdoc IEpochManager
    function phaseOf(uint64 epoch) public view returns (Phase) {
        Timeline memory t = timelineOf(epoch);
        uint64 now_ = _clock();
        if (now_ < t.start) return Phase.NotStarted;
        if (now_ < t.pocEnd) return Phase.PoC;
        if (now_ < t.pocValidationEnd) return Phase.PoCValidation;
        if (now_ < t.end) return Phase.Work;
        if (now_ < t.disputeEnd) return Phase.Dispute;
        if (now_ < t.claimEnd) return Phase.Claim;
        return Phase.Closed;
    }

    /// @inheritdoc IEpochManager
    function epochStart(uint64 epoch) public view returns (uint64) {
        Era storage era = _eras[_eraIndexOf(epoch)];
        return _startIn(era, epoch);
    }

    /// @inheritdoc IEpochManager
    function timelineOf(uint64 epoch) public view returns (Timeline memory t) {
        Era storage era = _eras[_eraIndexOf(epoch)];
        Parameters memory p = era.parameters;
        t.start = _startIn(era, epoch);
        t.pocEnd = t.start + p.pocDuration;
        t.pocValidationEnd = t.pocEnd + p.pocValidationDuration;
        t.end = t.start + p.epochLength;
        t.disputeEnd = t.end + p.disputeWindow;
        t.claimEnd = t.disputeEnd + p.claimWindow;
    }

    /// @inheritdoc IEpochManager
    function parametersOf(uint64 epoch) external view returns (Parameters memory) {
        return _eras[_eraIndexOf(epoch)].parameters;
    }

    /// @inheritdoc IEpochManager
    function recordOf(uint64 epoch) external view returns (EpochRecord memory) {
        return _records[epoch];
    }

    /// @inheritdoc IEpochManager
    function pocBeacon(uint64 epoch) external view returns (bytes32 beacon) {
        beacon = _records[epoch].pocBeacon;
        if (beacon == bytes32(0)) revert EpochManagerEpochNotAdvanced(epoch);
    }

    /// @inheritdoc IEpochManager
    function claimBeacon(uint64 epoch) external view returns (bytes32 beacon) {
        beacon = _records[epoch].claimBeacon;
        if (beacon == bytes32(0)) revert EpochManagerClaimBeaconNotFixed(epoch);
    }

    /// @inheritdoc IEpochManager
    function seedCommitmentOf(uint64 epoch, address node) external view returns (bytes32) {
        return _seedCommitments[epoch][node];
    }

    /// @inheritdoc IEpochManager
    function seedCommitment(bytes32 seed, address node) external pure returns (bytes32) {
        return keccak256(abi.encode(seed, node));
    }

    /// @dev Entropy mixed into each beacon: the hash of the previous block. On Arbitrum a pseudo-random value
    ///      produced by the chain for the previous L1 block number, known a few seconds ahead and open to the
    ///      sequencer's influence (see the trust assumption in {IEpochManager}). Test harnesses override it.
    function _beaconEntropy() internal view virtual returns (bytes32) {
        return blockhash(block.number - 1);
    }

    /// @dev A new beacon from the one it follows (the last advanced epoch's PoC beacon for a PoC beacon, the
    ///      epoch's own PoC beacon for its claim beacon), fresh entropy, and the chain, contract, epoch and kind.
    function _nextBeacon(bytes32 previous, uint64 epoch, bytes32 kind) private view returns (bytes32) {
        return keccak256(abi.encode(previous, _beaconEntropy(), block.chainid, address(this), epoch, kind));
    }

    /// @dev Index of the era `epoch` belongs to: the last one whose `fromEpoch` is at most `epoch`. A binary
    ///      search (eras grow by at most one per epoch), after a check of the latest era, the usual answer.
    function _eraIndexOf(uint64 epoch) private view returns (uint256) {
        if (epoch == 0) revert EpochManagerInvalidEpoch(epoch);
        uint256 high = _eras.length - 1;
        if (_eras[high].fromEpoch <= epoch) return high;
        // Invariant: _eras[low].fromEpoch <= epoch < _eras[high].fromEpoch (the first era starts at epoch 1).
        uint256 low = 0;
        while (high - low > 1) {
            uint256 mid = (low + high) / 2;
            if (_eras[mid].fromEpoch <= epoch) low = mid;
            else high = mid;
        }
        return low;
    }

    /// @dev Start of `epoch` within `era` (reverts with SafeCast's error past the uint64 range of time).
    function _startIn(Era storage era, uint64 epoch) private view returns (uint64) {
        return SafeCast.toUint64(
            uint256(era.fromStart) + uint256(epoch - era.fromEpoch) * era.parameters.epochLength
        );
    }

    function _checkParameters(Parameters memory p) private pure {
        if (p.epochLength < MIN_EPOCH_LENGTH || p.epochLength > MAX_EPOCH_LENGTH) {
            revert EpochManagerInvalidParameter(Parameter.EpochLength, p.epochLength, MIN_EPOCH_LENGTH, MAX_EPOCH_LENGTH);
        }
        // PoC, PoC validation and Work each last at least one second.
        uint256 maxPoc = p.epochLength - 2;
        if (p.pocDuration == 0 || p.pocDuration > maxPoc) {
            revert EpochManagerInvalidParameter(Parameter.PocDuration, p.pocDuration, 1, maxPoc);
        }
        uint256 maxPocValidation = p.epochLength - p.pocDuration - 1;
        if (p.pocValidationDuration == 0 || p.pocValidationDuration > maxPocValidation) {
            revert EpochManagerInvalidParameter(
                Parameter.PocValidationDuration, p.pocValidationDuration, 1, maxPocValidation
            );
        }
        if (p.disputeWindow == 0 || p.disputeWindow > MAX_WINDOW) {
            revert EpochManagerInvalidParameter(Parameter.DisputeWindow, p.disputeWindow, 1, MAX_WINDOW);
        }
        if (p.claimWindow == 0 || p.claimWindow > MAX_WINDOW) {
            revert EpochManagerInvalidParameter(Parameter.ClaimWindow, p.claimWindow, 1, MAX_WINDOW);
        }
    }
}
