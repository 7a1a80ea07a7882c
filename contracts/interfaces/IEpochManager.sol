// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IEpochManager
/// @notice The clock of the epoch economy. Time is cut into numbered epochs by `block.timestamp`: epoch 1
///         starts at `genesis`, each epoch starts when the one before it ends, and epoch 0 is the time
///         before genesis (no epoch at all). An epoch `e` goes through these phases, each a half-open
///         interval of seconds [from, to):
///
///         | phase         | from                    | to                      | what happens                        |
///         |---------------|-------------------------|-------------------------|-------------------------------------|
///         | NotStarted    | -                       | start                   | nothing yet                         |
///         | PoC           | start                   | pocEnd                  | seed commitments, Proof of Compute  |
///         | PoCValidation | pocEnd                  | pocValidationEnd        | validators check PoC; power fixed   |
///         | Work          | pocValidationEnd        | end (= next start)      | tasks, weighted by power            |
///         | Dispute       | end                     | disputeEnd              | the epoch's last validations and    |
///         |               |                         |                         | disputes close                      |
///         | Claim         | disputeEnd              | claimEnd                | nodes claim with their seeds        |
///         | Closed        | claimEnd                | -                       | unclaimed amounts return            |
///
///         The Dispute and Claim phases of epoch e run alongside the early phases of epochs e+1, e+2, ...:
///         `phaseOf` answers per epoch, and `currentPhase` is the phase of the current epoch (never Dispute,
///         Claim or Closed).
///
///         Each epoch has two beacons. The PoC beacon is fixed when the epoch is advanced (anyone may call
///         `advance` once the epoch has started; keepers do so at its start): it seeds the PoC puzzle and the
///         power-weighted task draws. The claim beacon is fixed by `fixClaimBeacon` (anyone) only once the
///         epoch's Dispute phase is over, so that no node knows which of its duties the claim will sample
///         while it can still do them.
///
///         Trust assumption of both beacons: they are `keccak256` of the previous beacon, the hash of the
///         block before the call (`_beaconEntropy`), the chain id, this contract's address, the epoch and
///         the beacon's kind. `block.prevrandao` is not used: it is a constant on Arbitrum. On Arbitrum,
///         `blockhash` is a pseudo-random value produced by the chain (it does not come from L1) and
///         `block.number` is the L1 block number, so `blockhash(block.number - 1)` is known several
///         seconds before it is used and stays the same for every L2 block of one L1 block. A beacon is
///         therefore unpredictable only to those who are not the sequencer, and only until shortly before
///         it is fixed; the caller of `advance` / `fixClaimBeacon` can choose to call now or to wait for
///         another value, but the first call fixes a beacon for good and anyone (every keeper) may make it
///         as soon as it is due, so withholding only works for a caller that outruns or censors all
///         others. Where the stakes justify it, a later version replaces `_beaconEntropy` with a VRF. What
///         the beacons must not be used for: anything whose outcome a party must not learn until after
///         it has committed. Seeds are committed during the PoC phase, long before the claim beacon exists.
///
///         Parameters change only from a later epoch: `scheduleParameters` called during epoch `c` applies
///         from epoch `c + 2`, so the running epoch never changes (a mid-epoch change halted Gonka's chain)
///         and keepers see every change at least one whole epoch before it applies.
interface IEpochManager {
    /// @notice Phase of an epoch at the current time; see the table above.
    enum Phase {
        NotStarted,
        PoC,
        PoCValidation,
        Work,
        Dispute,
        Claim,
        Closed
    }

    /// @notice One field of `Parameters`, named in errors about it.
    enum Parameter {
        EpochLength,
        PocDuration,
        PocValidationDuration,
        DisputeWindow,
        ClaimWindow
    }

    /// @notice Durations of an epoch and of its phases, in seconds.
    /// @param epochLength Whole epoch, from its start to the next epoch's start.
    /// @param pocDuration PoC phase (seed commitments and Proof of Compute), from the epoch's start.
    /// @param pocValidationDuration PoC validation phase, right after the PoC phase.
    /// @param disputeWindow Dispute phase, from the epoch's end: its last validations and disputes close.
    /// @param claimWindow Claim phase, from the end of the Dispute phase.
    struct Parameters {
        uint32 epochLength;
        uint32 pocDuration;
        uint32 pocValidationDuration;
        uint32 disputeWindow;
        uint32 claimWindow;
    }

    /// @notice An epoch's phase boundaries (seconds). Each phase runs from its start included to its end
    ///         excluded; the Work phase ends at `end`, which is the next epoch's start.
    struct Timeline {
        uint64 start;
        uint64 pocEnd;
        uint64 pocValidationEnd;
        uint64 end;
        uint64 disputeEnd;
        uint64 claimEnd;
    }

    /// @notice What the chain recorded for an epoch (zeros while not yet recorded).
    /// @param pocBeacon Beacon fixed by `advance`.
    /// @param claimBeacon Beacon fixed by `fixClaimBeacon`.
    /// @param advancedAt Time at which `advance` fixed the PoC beacon (0 if it never did: a skipped epoch).
    /// @param claimBeaconFixedAt Time at which the claim beacon was fixed.
    struct EpochRecord {
        bytes32 pocBeacon;
        bytes32 claimBeacon;
        uint64 advancedAt;
        uint64 claimBeaconFixedAt;
    }

    /// @notice A zero address where an account or contract is needed.
    error EpochManagerZeroAddress();
    /// @notice The genesis time must lie in [earliest, latest] (0 means "the deployment's time").
    error EpochManagerInvalidGenesis(uint64 genesis, uint64 earliest, uint64 latest);
    /// @notice Parameter `field` is `value`, outside [min, max].
    error EpochManagerInvalidParameter(Parameter field, uint256 value, uint256 min, uint256 max);
    /// @notice Epochs are numbered from 1; epoch 0 (the time before genesis) has no timeline.
    error EpochManagerInvalidEpoch(uint64 epoch);
    /// @notice The current epoch `epoch` was already advanced (or genesis has not come: `epoch` is 0); the next
    ///         advance is due at `nextStart`.
    error EpochManagerAdvanceNotDue(uint64 epoch, uint64 nextStart);
    /// @notice `epoch` was never advanced (it has not started, or nobody advanced it while it was current), so
    ///         it has no PoC beacon.
    error EpochManagerEpochNotAdvanced(uint64 epoch);
    /// @notice The claim beacon of `epoch` can be fixed only from `availableAt`, the end of its Dispute phase.
    error EpochManagerClaimBeaconNotDue(uint64 epoch, uint64 availableAt);
    /// @notice The claim beacon of `epoch` is already fixed.
    error EpochManagerClaimBeaconAlreadyFixed(uint64 epoch);
    /// @notice The claim beacon of `epoch` is not fixed yet.
    error EpochManagerClaimBeaconNotFixed(uint64 epoch);
    /// @notice The caller `node` is not a node registered in the MinerRegistry.
    error EpochManagerNodeNotRegistered(address node);
    /// @notice A seed commitment of zero (zero means "none").
    error EpochManagerZeroCommitment();
    /// @notice Seed commitments for `epoch` are accepted only from `opensAt` (its start) to `closesAt` (the end
    ///         of its PoC phase), excluded.
    error EpochManagerOutsideSeedWindow(uint64 epoch, uint64 opensAt, uint64 closesAt);
    /// @notice `node` already committed a seed for `epoch`.
    error EpochManagerSeedAlreadyCommitted(uint64 epoch, address node);

    /// @notice `epoch` was advanced by `by`: its PoC beacon is fixed. `start` is the epoch's start time.
    event EpochAdvanced(uint64 indexed epoch, uint64 start, bytes32 pocBeacon, address indexed by);
    /// @notice Nobody advanced epochs `firstEpoch` to `lastEpoch` while they were current: they never get a
    ///         beacon, so nothing a beacon seeds (PoC, task draws, claim sampling) can happen in them.
    event EpochsSkipped(uint64 indexed firstEpoch, uint64 indexed lastEpoch);
    /// @notice The claim beacon of `epoch` was fixed by `by`.
    event ClaimBeaconFixed(uint64 indexed epoch, bytes32 claimBeacon, address indexed by);
    /// @notice `node` committed `commitment` (= `seedCommitment(seed, node)`) for `epoch`.
    event SeedCommitted(uint64 indexed epoch, address indexed node, bytes32 commitment);
    /// @notice `parameters` apply from epoch `fromEpoch`, which starts at `fromStart`. A later event with the
    ///         same `fromEpoch` replaces this one.
    event ParametersScheduled(uint64 indexed fromEpoch, uint64 fromStart, Parameters parameters);

    /// @notice Advances to the current epoch (anyone): fixes its PoC beacon. Epochs between the last advanced
    ///         one and the current one are skipped (see `EpochsSkipped`); the call costs the same however many
    ///         were skipped. Reverts when the current epoch was already advanced.
    /// @return epoch The epoch advanced.
    function advance() external returns (uint64 epoch);

    /// @notice Fixes the claim beacon of `epoch` (anyone), once its Dispute phase is over. Reverts when the
    ///         epoch was never advanced, its Dispute phase is not over, or the beacon is already fixed.
    /// @param epoch An advanced epoch.
    /// @return beacon The claim beacon.
    function fixClaimBeacon(uint64 epoch) external returns (bytes32 beacon);

    /// @notice Commits the caller's seed for `epoch`; the caller is the node (its key) and must be registered.
    ///         Accepted once per node and epoch, during the epoch's PoC phase.
    /// @param epoch The epoch the seed is for (the current one).
    /// @param commitment `seedCommitment(seed, node)` of a secret seed; non-zero.
    function commitSeed(uint64 epoch, bytes32 commitment) external;

    /// @notice Schedules new parameters (admin only), bounded as the implementation documents. They apply from
    ///         epoch `currentEpoch() + 2`; scheduling again during the same epoch replaces them, scheduling
    ///         during a later epoch adds a change from a later epoch.
    /// @param parameters The new durations.
    /// @return fromEpoch First epoch they apply to.
    function scheduleParameters(Parameters calldata parameters) external returns (uint64 fromEpoch);

    /// @notice Start of epoch 1.
    /// @return Time in seconds.
    function genesis() external view returns (uint64);

    /// @notice The last epoch advanced (0 before the first advance).
    /// @return Epoch number.
    function lastAdvancedEpoch() external view returns (uint64);

    /// @notice The epoch the current time falls in (0 before genesis).
    /// @return Epoch number.
    function currentEpoch() external view returns (uint64);

    /// @notice The phase of the current epoch (NotStarted before genesis).
    /// @return The phase.
    function currentPhase() external view returns (Phase);

    /// @notice The phase `epoch` is in at the current time.
    /// @param epoch Epoch number, from 1.
    /// @return The phase.
    function phaseOf(uint64 epoch) external view returns (Phase);

    /// @notice The start time of `epoch`, under the parameters scheduled so far.
    /// @param epoch Epoch number, from 1.
    /// @return Time in seconds.
    function epochStart(uint64 epoch) external view returns (uint64);

    /// @notice The phase boundaries of `epoch`, under the parameters scheduled so far (fixed for good once
    ///         the epoch is at most one epoch away: no change can apply to it any more).
    /// @param epoch Epoch number, from 1.
    /// @return The boundaries.
    function timelineOf(uint64 epoch) external view returns (Timeline memory);

    /// @notice The parameters that apply to `epoch`, as scheduled so far.
    /// @param epoch Epoch number, from 1.
    /// @return The parameters.
    function parametersOf(uint64 epoch) external view returns (Parameters memory);

    /// @notice What the chain recorded for `epoch` (beacons and when they were fixed; zeros when not yet).
    /// @param epoch Epoch number.
    /// @return The record.
    function recordOf(uint64 epoch) external view returns (EpochRecord memory);

    /// @notice The PoC beacon of `epoch`; reverts when the epoch was never advanced.
    /// @param epoch Epoch number.
    /// @return The beacon.
    function pocBeacon(uint64 epoch) external view returns (bytes32);

    /// @notice The claim beacon of `epoch`; reverts while it is not fixed.
    /// @param epoch Epoch number.
    /// @return The beacon.
    function claimBeacon(uint64 epoch) external view returns (bytes32);

    /// @notice The seed commitment of `node` for `epoch`, or zero.
    /// @param epoch Epoch number.
    /// @param node Node address.
    /// @return The commitment.
    function seedCommitmentOf(uint64 epoch, address node) external view returns (bytes32);

    /// @notice The commitment a node makes to `seed`: `keccak256(abi.encode(seed, node))`. Binding the node
    ///         keeps one node from copying another's commitment; later contracts check a revealed seed with it.
    /// @param seed The secret seed.
    /// @param node Node address.
    /// @return The commitment.
    function seedCommitment(bytes32 seed, address node) external pure returns (bytes32);
}
