// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IEpochManager} from "./interfaces/IEpochManager.sol";
import {IMinerRegistry} from "./interfaces/IMinerRegistry.sol";
import {IProofOfCompute} from "./interfaces/IProofOfCompute.sol";
import {IRewardVault} from "./interfaces/IRewardVault.sol";
import {ISettlement} from "./interfaces/ISettlement.sol";
import {ITaskLedger} from "./interfaces/ITaskLedger.sol";
import {Clock} from "./utils/Clock.sol";
import {ValidationDuty} from "./utils/ValidationDuty.sol";

/// @title Settlement
/// @notice Deferred claims of work and reward per node and epoch, after a sampled check of validation duties.
///         See {ISettlement}.
/// @dev Gas. A claim makes a fixed number of calls whatever the number of nodes or tasks: the sample has at
///      most `sampleSize` draws and the ledger pays at most MAX_RUNS_PER_EPOCH runs. What keeps it cheap (a
///      claim pays every cold storage read it makes, and a fresh slot costs 20,000 gas):
///      - One record per node and epoch. The claim's outcome (claimed, expired, forfeited, ...) is kept in the
///        TaskLedger's record of the node's epoch (ITaskLedger.NodeEpochRecord), next to its runs, open disputes,
///        power and settled work: the node's first enrollment wrote that slot, so a claim reads it once
///        (`nodeEpochOf`, with the epoch's task range) and rewrites it warm (`settleWork`) instead of writing a
///        slot of its own. The reward is not stored: `claimOf` recomputes it from the final emission and powers.
///      - Epoch facts. The Claim phase's end, the water level and the total power of an epoch are final once its
///        Claim phase begins; its first claim reads them from the other contracts and keeps them in one slot.
///        A node's power is the one the ledger recorded at its enrollment, or else its raw count under the kept
///        water level (IProofOfCompute: power = min(raw, level)), one read.
///      - Task ids. Tasks are numbered by one counter and created only in the Work phase of the current epoch
///        (ITaskLedger), so the tasks of an epoch carry consecutive ids: the `i`-th is the first plus `i`.
///      - A bound on the duty threshold. The ledger's rule is `H(seed, salt, t) < min(1, k·p_v / (T − p_x))` with
///        `p_x` the executor's power, which never exceeds the epoch's water level `L`. So a task whose
///        `H(seed, salt, t)` is at least the threshold computed with `p_x = L` is no duty, whoever executed it,
///        and needs no read of the task. With many nodes that is nearly every draw.
///      - The duty salt. The epoch's salt (ITaskLedger.EpochTasks.dutySalt, fixed by its first task) comes with
///        the task range from `nodeEpochOf`, in the slot the claim reads anyway: no read of its own.
///      - Order of the remaining reads: an honest node validated its duties, so its validation bits (one word for
///        256 consecutive tasks, read once per word) come before `isValidationDuty` (task, power and total power
///        reads), which only a draw the node did not validate needs.
///      The sample stays small (MAX_SAMPLE_SIZE, default 8 in the deployment) because every draw that may be
///      a duty costs a claim a few thousand gas; with a duty probability `q` per task, a node that skips a
///      share `s` of its duties is caught with probability `1 − (1 − q·s)^sampleSize` per epoch and loses its
///      whole reward share when caught, so skipping does not pay even when a single epoch's check misses it.
contract Settlement is ISettlement, AccessControl, ReentrancyGuardTransient, Clock {
    /// @notice Largest sample of tasks a claim may draw (bounds the claim's gas).
    uint256 public constant MAX_SAMPLE_SIZE = 32;

    /// @dev Flags of a claim's outcome, kept in the ledger's record of the node's epoch (never 0 once settled).
    uint8 private constant _CLAIMED = 1;
    uint8 private constant _EXPIRED = 2;
    uint8 private constant _FORFEITED = 4;
    /// @dev The claim paid the node's power share of the emission (0 when the emission or the share is 0).
    uint8 private constant _REWARDED = 8;
    /// @dev The claim found no provider: the ledger released the work instead of paying it.
    uint8 private constant _UNPAID = 16;
    /// @dev Basis points of a whole (the ledger's `validationKBps` is k in basis points).
    uint256 private constant _BPS = 10_000;

    /// @dev What every claim of an epoch needs from the EpochManager and ProofOfCompute, final once its Claim
    ///      phase begins and kept by its first claim in one slot. `claimEnd` 0: not kept yet.
    /// @param claimEnd End of the epoch's Claim phase.
    /// @param powerLevel The epoch's water level: the largest power, and the cap of every raw count (a count is
    ///        a uint64).
    /// @param totalPower The epoch's total power (at most ProofOfCompute's uint128 raw total).
    struct EpochFacts {
        uint64 claimEnd;
        uint64 powerLevel;
        uint128 totalPower;
    }

    /// @notice The epoch clock (phases, claim beacon, seed commitments).
    IEpochManager public immutable epochs;
    /// @notice Power per epoch.
    IProofOfCompute public immutable poc;
    /// @notice Tasks, validations, disputes and credited work (this contract holds its SETTLEMENT_ROLE).
    ITaskLedger public immutable ledger;
    /// @notice Reward emission (this contract holds its PAYER_ROLE).
    IRewardVault public immutable vault;
    /// @notice Providers of nodes (where payments go).
    IMinerRegistry public immutable registry;
    /// @inheritdoc ISettlement
    uint256 public immutable sampleSize;
    /// @dev The ledger's `validationKBps`, fixed at its deployment (ITaskLedger.Parameters).
    uint256 private immutable _validationKBps;

    mapping(uint64 epoch => EpochFacts) private _facts;

    /// @param admin Receives DEFAULT_ADMIN_ROLE, like every computenet contract's admin. No function of this
    ///        contract is privileged: claims and expiries are open to anyone.
    /// @param epochs_ EpochManager.
    /// @param poc_ ProofOfCompute.
    /// @param ledger_ TaskLedger (its parameters are read once, here).
    /// @param vault_ RewardVault.
    /// @param registry_ MinerRegistry.
    /// @param sampleSize_ Tasks drawn per claim, in [1, MAX_SAMPLE_SIZE].
    constructor(
        address admin,
        IEpochManager epochs_,
        IProofOfCompute poc_,
        ITaskLedger ledger_,
        IRewardVault vault_,
        IMinerRegistry registry_,
        uint16 sampleSize_
    ) {
        if (
            admin == address(0) || address(epochs_) == address(0) || address(poc_) == address(0)
                || address(ledger_) == address(0) || address(vault_) == address(0) || address(registry_) == address(0)
        ) revert SettlementZeroAddress();
        if (sampleSize_ == 0 || sampleSize_ > MAX_SAMPLE_SIZE) {
            revert SettlementInvalidSampleSize(sampleSize_, MAX_SAMPLE_SIZE);
        }
        epochs = epochs_;
        poc = poc_;
        ledger = ledger_;
        vault = vault_;
        registry = registry_;
        sampleSize = sampleSize_;
        _validationKBps = ledger_.parameters().validationKBps;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @inheritdoc ISettlement
    /// @dev A node without power has no duty (the ledger's rule) and draws nothing (`sampled` 0); the duty
    ///      check stops at the first miss; the claim beacon is needed (and fixed) only when the epoch has more
    ///      tasks than `sampleSize`. A node no longer registered has no provider: the ledger releases its work
    ///      to the runs' escrow and its reward is not paid (it returns to the vault with the epoch's rest), so
    ///      a provider should claim before deregistering a node. The ledger records the outcome (and refuses a
    ///      second settlement) before any token moves.
    function claim(uint64 epoch, address node, bytes32 seed)
        external
        nonReentrant
        returns (uint256 work, uint256 reward)
    {
        EpochFacts memory facts = _claimFacts(epoch);
        (ITaskLedger.NodeEpochRecord memory record, ITaskLedger.EpochTasks memory tasks) = ledger.nodeEpochOf(epoch, node);
        if (record.outcome != 0) revert SettlementAlreadySettled(epoch, node);
        // keccak256(abi.encode(seed, node)), hashed in scratch space.
        if (epochs.seedCommitmentOf(epoch, node) != Hashes.efficientKeccak256(seed, bytes32(uint256(uint160(node))))) {
            revert SettlementInvalidSeed(epoch, node);
        }
        if (record.openDisputes != 0) revert SettlementDisputesOpen(epoch, node, record.openDisputes);

        // The ledger recorded the power of an enrolled node; otherwise it is the raw count under the epoch's
        // water level (IProofOfCompute): one read instead of the level's recomputation.
        uint256 power = record.runCount != 0 ? record.power : Math.min(poc.rawPowerOf(epoch, node), facts.powerLevel);
        bytes32 beacon = _draws(tasks.count, power) ? _fixedClaimBeacon(epoch) : bytes32(0);
        (bool forfeited, uint256 missedTaskId, uint256 sampled) = _checkDuties(node, seed, beacon, power, facts, tasks);

        address provider = registry.providerOf(node);
        // power != 0 implies a positive total power.
        bool rewarded = !forfeited && power != 0 && provider != address(0);
        uint8 outcome = _CLAIMED;
        if (forfeited) outcome |= _FORFEITED;
        if (rewarded) outcome |= _REWARDED;
        if (provider == address(0)) outcome |= _UNPAID;
        uint256 settled = ledger.settleWork(epoch, node, provider, outcome);
        if (provider != address(0)) work = settled;
        if (rewarded) reward = vault.payShare(epoch, provider, power, facts.totalPower);
        emit Claimed(epoch, node, provider, work, reward, forfeited, missedTaskId, sampled);
    }

    /// @inheritdoc ISettlement
    function expire(uint64 epoch, address node) external nonReentrant returns (uint256 released) {
        if (_clock() < epochs.timelineOf(epoch).claimEnd) _revertWrongPhase(epoch);
        (ITaskLedger.NodeEpochRecord memory record,) = ledger.nodeEpochOf(epoch, node);
        if (record.outcome != 0) revert SettlementAlreadySettled(epoch, node);
        released = ledger.settleWork(epoch, node, address(0), _EXPIRED);
        emit ClaimExpired(epoch, node, released);
    }

    /// @inheritdoc ISettlement
    /// @dev When the check draws (the node has power and the epoch more than `sampleSize` tasks), reverts with
    ///      EpochManagerClaimBeaconNotFixed while the claim beacon is not fixed (a claim fixes it). Does not check
    ///      the seed against the commitment: a wrong seed gives a meaningless answer.
    function checkDuties(uint64 epoch, address node, bytes32 seed)
        external
        view
        returns (bool forfeited, uint256 missedTaskId, uint256 sampled)
    {
        EpochFacts memory facts = _readFacts(epoch, 0);
        (, ITaskLedger.EpochTasks memory tasks) = ledger.nodeEpochOf(epoch, node);
        uint256 power = poc.powerOf(epoch, node);
        bytes32 beacon = _draws(tasks.count, power) ? epochs.claimBeacon(epoch) : bytes32(0);
        return _checkDuties(node, seed, beacon, power, facts, tasks);
    }

    /// @inheritdoc ISettlement
    /// @dev While the epoch's emission is not fixed, its scheduled emission (the supply cap may lower it when
    ///      it is fixed); 0 once its rest was returned unfixed.
    function rewardOf(uint64 epoch, address node) external view returns (uint256) {
        uint256 total = poc.totalPower(epoch);
        if (total == 0) return 0;
        IRewardVault.EpochEmission memory e = vault.emissionOf(epoch);
        uint256 emission = e.fixed_ || e.returned ? e.emission : vault.scheduledEmission(epoch);
        return Math.mulDiv(emission, poc.powerOf(epoch, node), total);
    }

    /// @inheritdoc ISettlement
    /// @dev The outcome and the work come from the ledger's record of the node's epoch; the reward is recomputed
    ///      as the claim computed it, from inputs final by then: the fixed emission, the node's power and the
    ///      total power.
    function claimOf(uint64 epoch, address node) external view returns (Claim memory) {
        (ITaskLedger.NodeEpochRecord memory record,) = ledger.nodeEpochOf(epoch, node);
        uint8 outcome = record.outcome;
        uint256 reward;
        if (outcome & _REWARDED != 0) {
            reward = Math.mulDiv(vault.emissionOf(epoch).emission, poc.powerOf(epoch, node), poc.totalPower(epoch));
        }
        return Claim({
            claimed: outcome & _CLAIMED != 0,
            expired: outcome & _EXPIRED != 0,
            forfeited: outcome & _FORFEITED != 0,
            work: outcome & _UNPAID != 0 ? 0 : record.work,
            reward: SafeCast.toUint128(reward)
        });
    }

    /// @dev The claim beacon of `epoch`, fixed now if nobody did (the claim phase has begun, so it is due).
    function _fixedClaimBeacon(uint64 epoch) private returns (bytes32) {
        try epochs.claimBeacon(epoch) returns (bytes32 beacon) {
            return beacon;
        } catch {
            // Not fixed yet (EpochManagerClaimBeaconNotFixed). The Claim phase has begun, so fixing is due; an
            // epoch never advanced has no beacon and the claim reverts with EpochManagerEpochNotAdvanced.
            return epochs.fixClaimBeacon(epoch);
        }
    }

    /// @dev The epoch's facts a claim needs, read from the other contracts by the epoch's first claim and kept:
    ///      they are final in the Claim phase (timeline, power). Reverts outside the Claim phase.
    function _claimFacts(uint64 epoch) private returns (EpochFacts memory facts) {
        facts = _facts[epoch];
        uint64 now_ = _clock();
        if (facts.claimEnd != 0) {
            // Kept during the Claim phase, so its start has passed.
            if (now_ >= facts.claimEnd) _revertWrongPhase(epoch);
            return facts;
        }
        IEpochManager.Timeline memory t = epochs.timelineOf(epoch);
        if (now_ < t.disputeEnd || now_ >= t.claimEnd) _revertWrongPhase(epoch);
        facts = _readFacts(epoch, t.claimEnd);
        _facts[epoch] = facts;
    }

    /// @dev The epoch's power, read from ProofOfCompute.
    function _readFacts(uint64 epoch, uint64 claimEnd) private view returns (EpochFacts memory facts) {
        (uint256 level,,,) = poc.powerCap(epoch);
        facts = EpochFacts({
            claimEnd: claimEnd,
            powerLevel: SafeCast.toUint64(level),
            totalPower: SafeCast.toUint128(poc.totalPower(epoch))
        });
    }

    /// @dev Whether the duty check draws tasks from the claim beacon (rather than checking all or none).
    function _draws(uint256 taskCount, uint256 power) private view returns (bool) {
        return power != 0 && taskCount > sampleSize;
    }

    /// @dev The duty check of the notice. Draws nothing for a node without power (it has no duty) or an epoch
    ///      without tasks; otherwise `min(sampleSize, taskCount)` draws, stopping at the first missed duty. The
    ///      node's validation bits are read a word (256 consecutive task ids) at a time, each word once in a row.
    function _checkDuties(
        address node,
        bytes32 seed,
        bytes32 beacon,
        uint256 power,
        EpochFacts memory facts,
        ITaskLedger.EpochTasks memory tasks
    ) private view returns (bool forfeited, uint256 missedTaskId, uint256 sampled) {
        uint256 taskCount = tasks.count;
        if (power == 0 || taskCount == 0) return (false, 0, 0);
        bool drawAll = taskCount <= sampleSize;
        uint256 draws = drawAll ? taskCount : sampleSize;
        uint256 bound = _dutyBound(power, facts);
        // The epoch has a task, so its first task fixed the salt.
        bytes32 dutyKey = ValidationDuty.key(seed, tasks.dutySalt);
        uint256 wordIndex = type(uint256).max; // no word read yet (task ids are far below 256 · 2^248)
        uint256 word;
        for (uint256 j; j < draws; ++j) {
            uint256 index = drawAll ? j : uint256(keccak256(abi.encode(beacon, node, j))) % taskCount;
            uint256 taskId = tasks.firstTaskId + index;
            // No duty on this task whoever executed it (see the contract's @dev).
            // H(seed, salt, t), the ledger's hash, from the node's duty key of the epoch (in scratch space).
            if (bound != type(uint256).max && ValidationDuty.hash(dutyKey, taskId) >= bound) continue;
            if (taskId >> 8 != wordIndex) {
                wordIndex = taskId >> 8;
                word = ledger.validationWordOf(node, wordIndex);
            }
            // A duty done, if it was one.
            if ((word >> (taskId & 0xff)) & 1 != 0) continue;
            // The ledger's rule decides: Completed, not executed by the node, and under the threshold.
            if (ledger.isValidationDuty(taskId, node, seed)) return (true, taskId, j + 1);
        }
        return (false, 0, draws);
    }

    /// @dev The largest threshold the ledger's duty rule can give a node of power `power` for any task of the
    ///      epoch: its threshold with the executor's power at the water level, the largest power of the epoch.
    ///      `type(uint256).max` when some task could be a certain duty (then no draw is skipped: the ledger's
    ///      certain duties hold even for the largest hash).
    function _dutyBound(uint256 power, EpochFacts memory facts) private view returns (uint256) {
        uint256 numerator = _validationKBps * power;
        uint256 denominator = (uint256(facts.totalPower) - facts.powerLevel) * _BPS;
        if (numerator >= denominator) return type(uint256).max;
        return Math.mulDiv(type(uint256).max, numerator, denominator);
    }

    function _revertWrongPhase(uint64 epoch) private view {
        revert SettlementWrongPhase(epoch, uint8(epochs.phaseOf(epoch)));
    }
}
