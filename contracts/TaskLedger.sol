// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IEpochManager} from "./interfaces/IEpochManager.sol";
import {IMinerRegistry} from "./interfaces/IMinerRegistry.sol";
import {IProofOfCompute} from "./interfaces/IProofOfCompute.sol";
import {IRewardVault} from "./interfaces/IRewardVault.sol";
import {ITaskLedger} from "./interfaces/ITaskLedger.sol";
import {ITrainingRuns} from "./interfaces/ITrainingRuns.sol";
import {Clock} from "./utils/Clock.sol";
import {ValidationDuty} from "./utils/ValidationDuty.sol";

/// @title TaskLedger
/// @notice Tasks of training runs: power-weighted assignment, completion, peer validation, disputes decided by
///         power voting with the seals of their own re-executions, and the work pay each node earns per epoch.
///         See {ITaskLedger}.
/// @dev Roles this contract needs elsewhere: ESCROW_ROLE on TrainingRuns (reserves, pays and releases task pay),
///      SLASHER_ROLE on MinerRegistry, PAYER_ROLE on the RewardVault (accusers' bounties, paid from the slashed
///      stake the registry sends to the vault, its treasury).
///
///      Choices the interface leaves open:
///      - A successful validation made before a dispute opens has already spoken for the task: its weight is
///        added to the task's `validWeight` (the tally of the executor's seal) at once, so it counts as a vote
///        for the executor's seal when a dispute opens (the node cannot vote again). Validations after an upheld
///        dispute are recorded (they fulfil the duty) but change nothing.
///      - Seals: a dispute's votes are tallied per seal, `keccak256(abi.encode(resultHash))` of each voter's own
///        re-execution (`_sealWeights`; the executor's seal is tallied in `validWeight`, every other seal also
///        adds to `invalidWeight`). Only the seal a vote raises can cross a threshold, so each vote checks one
///        tally: no loop over seals.
///      - "Stake" in the slashing rules is what the registry can slash: the active stake plus the stake still
///        unbonding, so that unstaking or deregistering while a dispute runs does not shrink the penalty.
///      - An accuser whose node is no longer registered (no provider) receives no bounty.
///      - The settler looks the node's provider up and passes it to `settleWork` (the zero address, for a node
///        no longer registered, releases the work to the runs' escrow instead).
///      - Work is settled (paid or released) only after the epoch's Dispute phase. A dispute opened late in that
///        phase stays open for votes a full Dispute window (votingEndOf), at most until the Claim phase ends:
///        Settlement refuses to pay a node with open disputes, and releases unclaimed work only after the Claim
///        phase, so no task is invalidated after its work was settled (settling clears the node's work per run,
///        so an invalidation after it would revert). The ledger itself refuses to pay a node's work while one of
///        its disputes is open.
///
///      Gas of a claim (Settlement reads `nodeEpochOf`, `validationWordOf`, then calls `settleWork`):
///      - The node's record of an epoch (runs, open disputes, power, settlement) is one slot, written first by the
///        node's enrollment: a claim reads it once and rewrites it warm.
///      - An epoch's tasks are one slot (first id, count, end of the Dispute phase and duty salt, kept by its
///        first task), so `settleWork` checks the phase with one read instead of the EpochManager's timeline, and
///        the claim receives the duty salt with the task range (`nodeEpochOf`) without another read.
///      - Validations are bits, 256 tasks a word per node: a claim's duty check reads one word for tasks that
///        lie in it (an epoch's ids are consecutive), and a node's later validations rewrite a non-zero word.
///      - Runs without work emit nothing and call nothing when settled.
contract TaskLedger is ITaskLedger, AccessControl, ReentrancyGuardTransient, Clock {
    /// @notice Role of the Settlement contract: pays or releases the work of an epoch.
    bytes32 public constant SETTLEMENT_ROLE = keccak256("SETTLEMENT_ROLE");
    /// @notice Draws of one task before it gives up on nodes that left the run since they enrolled.
    uint256 public constant MAX_DRAWS = 4;
    /// @notice Runs a node may enroll in per epoch (bounds the loop of `settleWork`).
    uint256 public constant MAX_RUNS_PER_EPOCH = 16;
    /// @notice Upper bound of `validationKBps` (k = 100).
    uint32 public constant MAX_VALIDATION_K_BPS = 1_000_000;
    /// @notice Basis points of a whole.
    uint256 public constant BPS = 10_000;

    /// @dev Slash reasons, as passed to MinerRegistry.slash.
    bytes32 public constant INVALID_TASK_REASON = keccak256("computenet.TaskLedger.invalidTask");
    bytes32 public constant FALSE_ACCUSATION_REASON = keccak256("computenet.TaskLedger.falseAccusation");
    /// @dev Domain tag of the duty salt (see `_openEpochTasks`).
    bytes32 private constant _DUTY_SALT = keccak256("computenet.TaskLedger.dutySalt");
    bytes32 public constant INVALID_EVIDENCE_REASON = keccak256("computenet.TaskLedger.invalidEvidence");

    /// @dev A task as stored: four slots plus the seal of its result. `deadline` is its epoch's end (completion
    ///      closes then), cached so that completing a task calls no other contract.
    struct StoredTask {
        // slot 0
        address assignee;
        uint64 epoch;
        TaskStatus status;
        // slot 1
        uint128 pay;
        uint64 units;
        uint64 completedAt;
        // slot 2
        uint64 runId;
        uint96 assigneePower;
        uint64 deadline;
        // slot 3, 4
        bytes32 specHash;
        bytes32 resultSeal;
    }

    /// @dev A node's record of one epoch: slot 0 is ITaskLedger.NodeEpochRecord (written first by the node's
    ///      first enrollment, so that a claim rewrites a non-zero slot); then its runs (enrollments, which are also
    ///      the runs its work is credited in), run ids packed four a slot.
    struct NodeEpoch {
        NodeEpochRecord head;
        uint64[MAX_RUNS_PER_EPOCH] runIds;
    }

    IEpochManager public immutable epochs;
    ITrainingRuns public immutable runs;
    IMinerRegistry public immutable registry;
    IProofOfCompute public immutable poc;
    IRewardVault public immutable vault;

    uint32 private immutable _validationKBps;
    uint16 private immutable _executorSlashBps;
    uint16 private immutable _falseAccuserSlashBps;
    uint16 private immutable _accuserRewardBps;
    uint16 private immutable _falseValidationSlashBps;

    uint64 private _taskCount;
    mapping(uint256 taskId => StoredTask) private _tasks;
    mapping(uint256 taskId => Dispute) private _disputes;
    /// @dev Power voting each seal other than the executor's in the task's dispute (the executor's: `validWeight`).
    mapping(uint256 taskId => mapping(bytes32 seal => uint256 weight)) private _sealWeights;
    /// @dev Bit `taskId % 256` of word `taskId / 256`: the node validated (or voted on) the task.
    mapping(address node => mapping(uint256 word => uint256 bits)) private _validations;
    mapping(uint64 epoch => EpochTasks) private _epochTasks;
    /// @dev Evidence of each successful validation and vote to uphold, until it is refuted.
    mapping(uint256 taskId => mapping(address validator => bytes32 evidence)) private _evidence;

    /// @dev Enrollment entries of a run in an epoch: `node << 96 | cumulative weight`, in enrollment order.
    mapping(uint256 runId => mapping(uint64 epoch => uint256[])) private _enrollment;
    mapping(uint256 runId => mapping(uint64 epoch => mapping(address node => bool))) private _enrolled;
    mapping(uint64 epoch => mapping(address node => NodeEpoch)) private _nodeEpochs;
    mapping(uint64 epoch => mapping(address node => mapping(uint256 runId => uint256))) private _work;

    /// @param admin Receives DEFAULT_ADMIN_ROLE (grants SETTLEMENT_ROLE).
    /// @param epochs_ EpochManager.
    /// @param runs_ TrainingRuns (grants this contract ESCROW_ROLE).
    /// @param registry_ MinerRegistry (grants this contract SLASHER_ROLE).
    /// @param poc_ ProofOfCompute (power).
    /// @param vault_ RewardVault (grants this contract PAYER_ROLE; the registry's treasury).
    /// @param params validationKBps in [1, MAX_VALIDATION_K_BPS]; the four shares at most BPS.
    constructor(
        address admin,
        IEpochManager epochs_,
        ITrainingRuns runs_,
        IMinerRegistry registry_,
        IProofOfCompute poc_,
        IRewardVault vault_,
        Parameters memory params
    ) {
        if (
            admin == address(0) || address(epochs_) == address(0) || address(runs_) == address(0)
                || address(registry_) == address(0) || address(poc_) == address(0) || address(vault_) == address(0)
        ) revert TaskLedgerZeroAddress();
        if (
            params.validationKBps == 0 || params.validationKBps > MAX_VALIDATION_K_BPS || params.executorSlashBps > BPS
                || params.falseAccuserSlashBps > BPS || params.accuserRewardBps > BPS
                || params.falseValidationSlashBps > BPS
        ) revert TaskLedgerInvalidParameters();
        epochs = epochs_;
        runs = runs_;
        registry = registry_;
        poc = poc_;
        vault = vault_;
        _validationKBps = params.validationKBps;
        _executorSlashBps = params.executorSlashBps;
        _falseAccuserSlashBps = params.falseAccuserSlashBps;
        _accuserRewardBps = params.accuserRewardBps;
        _falseValidationSlashBps = params.falseValidationSlashBps;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ------------------------------------------------------------------ enrollment and tasks

    /// @inheritdoc ITaskLedger
    /// @dev Only for Active runs: a pending or ended run has no tasks, and an enrollment in it would only use up
    ///      one of the node's MAX_RUNS_PER_EPOCH slots.
    function enroll(uint256 runId, address node) external {
        // The Work phase starts when the PoC validation phase ends, which is when power becomes final
        // (IProofOfCompute.isPowerFinal), so the phase check covers finality.
        (uint64 epoch,,) = _currentWorkEpoch();
        if (runs.getRun(runId).status != ITrainingRuns.RunStatus.Active) revert TaskLedgerRunNotActive(runId);
        if (!runs.isMember(runId, node)) revert TaskLedgerNotMember(runId, node);
        uint256 weight = poc.powerOf(epoch, node);
        if (weight == 0) revert TaskLedgerNoPower(epoch, node);
        mapping(address => bool) storage enrolled = _enrolled[runId][epoch];
        if (enrolled[node]) revert TaskLedgerAlreadyEnrolled(runId, epoch, node);
        NodeEpoch storage record = _nodeEpochs[epoch][node];
        uint256 runCount = record.head.runCount;
        if (runCount >= MAX_RUNS_PER_EPOCH) revert TaskLedgerTooManyRuns(epoch, node);

        uint256[] storage entries = _enrollment[runId][epoch];
        uint256 length = entries.length;
        uint256 cumulative = weight + (length == 0 ? 0 : _cumulative(entries[length - 1]));
        enrolled[node] = true;
        record.runIds[runCount] = SafeCast.toUint64(runId);
        record.head.runCount = uint8(runCount + 1);
        // Power is final in the Work phase, and at most a PoC count (uint64).
        if (runCount == 0) record.head.power = uint64(weight);
        entries.push((uint256(uint160(node)) << 96) | SafeCast.toUint96(cumulative));
        emit NodeEnrolled(runId, epoch, node, weight, cumulative);
    }

    /// @inheritdoc ITaskLedger
    /// @dev Reverts with TrainingRuns' TrainingRunsInsufficientEscrow when the run's available escrow cannot
    ///      cover the pay (and with TrainingRunsUnknownRun for a run that does not exist). The epoch's first task
    ///      also fixes the epoch's duty salt (`_openEpochTasks`), in the slot it writes anyway (EpochTasks), and emits
    ///      DutySaltFixed.
    function createTask(uint256 runId, bytes32 specHash, uint64 units)
        external
        nonReentrant
        returns (uint256 taskId, address assignee)
    {
        ITrainingRuns.RunInfo memory run = runs.getRun(runId);
        if (run.master != msg.sender) revert TaskLedgerNotMaster(runId, msg.sender);
        if (run.status != ITrainingRuns.RunStatus.Active) revert TaskLedgerRunNotActive(runId);
        if (units == 0 || specHash == bytes32(0)) revert TaskLedgerInvalidTask();
        (uint64 epoch, uint64 deadline, uint64 disputeEnd) = _currentWorkEpoch();

        // Nobody can enroll in an epoch that was never advanced (it has no power), so an enrollment implies
        // a beacon.
        uint256[] storage entries = _enrollment[runId][epoch];
        if (entries.length == 0) revert TaskLedgerNoAssignee(runId, epoch);
        bytes32 beacon = epochs.pocBeacon(epoch);

        taskId = ++_taskCount;
        uint256 weight;
        uint256 draws;
        while (true) {
            (assignee, weight) = _draw(entries, beacon, runId, taskId, draws);
            ++draws;
            if (runs.isMember(runId, assignee)) break;
            if (draws == MAX_DRAWS) revert TaskLedgerNoAssignee(runId, epoch);
        }

        uint128 pay = SafeCast.toUint128(uint256(run.pricePerUnit) * units);
        StoredTask storage task = _tasks[taskId];
        task.assignee = assignee;
        task.epoch = epoch;
        task.status = TaskStatus.Assigned;
        task.pay = pay;
        task.units = units;
        task.runId = uint64(runId); // enrolled, hence at most the enrolled run id, which fits (see `enroll`)
        task.assigneePower = uint96(weight); // a difference of two uint96 cumulative weights
        task.deadline = deadline;
        task.specHash = specHash;
        EpochTasks storage epochTasks = _epochTasks[epoch];
        uint64 count = epochTasks.count;
        // Ids of an epoch are consecutive: tasks are created only in the current epoch.
        if (count == 0) _openEpochTasks(epochTasks, epoch, taskId, disputeEnd, beacon);
        epochTasks.count = count + 1;
        emit TaskCreated(taskId, runId, assignee, epoch, specHash, units, pay, draws);

        if (pay > 0) runs.reserveEscrow(runId, pay);
    }

    /// @inheritdoc ITaskLedger
    /// @dev The ledger cannot tell a seal from a result hash: an executor that posts its bare result hash lets
    ///      validators copy it, and then cannot report them (no preimage of its "seal" is known).
    function completeTask(uint256 taskId, bytes32 resultHash) external {
        StoredTask storage task = _existingTask(taskId);
        TaskStatus status = task.status;
        if (status != TaskStatus.Assigned) revert TaskLedgerInvalidStatus(taskId, status);
        address assignee = task.assignee;
        if (msg.sender != assignee) revert TaskLedgerNotAssignee(taskId, msg.sender);
        if (resultHash == bytes32(0)) revert TaskLedgerEmptyResult();
        uint64 deadline = task.deadline;
        uint64 now_ = _clock();
        if (now_ >= deadline) revert TaskLedgerCompletionClosed(taskId, deadline);

        task.status = TaskStatus.Completed;
        task.completedAt = now_;
        task.resultSeal = resultHash;
        _work[task.epoch][assignee][task.runId] += task.pay;
        emit TaskCompleted(taskId, assignee, resultHash);
    }

    /// @inheritdoc ITaskLedger
    function expireTask(uint256 taskId) external nonReentrant {
        StoredTask storage task = _existingTask(taskId);
        TaskStatus status = task.status;
        if (status != TaskStatus.Assigned) revert TaskLedgerInvalidStatus(taskId, status);
        uint64 deadline = task.deadline;
        if (_clock() < deadline) revert TaskLedgerNotExpired(taskId, deadline);

        task.status = TaskStatus.Expired;
        uint256 pay = task.pay;
        emit TaskExpired(taskId, pay);
        if (pay > 0) runs.releaseEscrow(task.runId, pay);
    }

    // ------------------------------------------------------------------ validation and disputes

    /// @inheritdoc ITaskLedger
    function submitValidation(uint256 taskId, bool ok, bytes32 evidenceHash) external nonReentrant {
        StoredTask storage task = _existingTask(taskId);
        TaskStatus status = task.status;
        if (status != TaskStatus.Completed) revert TaskLedgerInvalidStatus(taskId, status);
        // The task's epoch has a task, so its record holds the end of the Dispute phase.
        uint256 weight = _recordVoter(taskId, task, _epochTasks[task.epoch].disputeEnd);
        if (ok) _keepEvidence(taskId, evidenceHash);
        emit TaskValidated(taskId, msg.sender, ok, evidenceHash, weight);

        Dispute storage dispute = _disputes[taskId];
        DisputeStatus disputeStatus = dispute.status;
        if (disputeStatus == DisputeStatus.None) {
            if (ok) {
                // Spoken before any dispute: counts for the task if one opens (see the contract's notes).
                dispute.validWeight += uint128(weight);
                return;
            }
            // The accuser's evidence is the seal of its own re-execution: its vote.
            bytes32 seal = _dissentingSeal(taskId, task, evidenceHash);
            uint64 epoch = task.epoch;
            dispute.status = DisputeStatus.Open;
            dispute.accuser = msg.sender;
            dispute.openedAt = _clock();
            dispute.invalidWeight = uint128(weight);
            dispute.accuserSeal = seal;
            _sealWeights[taskId][seal] = weight;
            ++_nodeEpochs[epoch][task.assignee].head.openDisputes;
            ++_nodeEpochs[epoch][msg.sender].head.openDisputes;
            emit DisputeOpened(taskId, msg.sender, seal, weight);
            _resolveIfDecided(taskId, task, dispute, seal, weight);
        } else if (disputeStatus == DisputeStatus.Open) {
            _countVote(taskId, task, dispute, _votedSeal(taskId, task, !ok, evidenceHash), weight);
        }
        // An upheld dispute is final: a later validation is recorded (it fulfils a duty) and changes nothing.
        // (Validations close with the Dispute phase, before any dispute can end Unresolved.)
    }

    /// @inheritdoc ITaskLedger
    /// @dev Like a validation: a vote to invalidate carries the voter's own seal, a vote to uphold counts for the
    ///      executor's seal (its evidence is not a seal) and keeps its evidence as a successful validation does
    ///      (refuteFalseValidation). The ledger cannot tell a reproduced seal from one copied off an earlier
    ///      DisputeVote (see docs/SECURITY.md §3.10).
    function vote(uint256 taskId, bool invalid, bytes32 evidenceHash) external nonReentrant {
        StoredTask storage task = _existingTask(taskId);
        Dispute storage dispute = _disputes[taskId];
        if (dispute.status != DisputeStatus.Open) revert TaskLedgerNoOpenDispute(taskId);
        uint256 weight = _recordVoter(taskId, task, _votingEnd(task, dispute));
        if (!invalid) _keepEvidence(taskId, evidenceHash);
        _countVote(taskId, task, dispute, _votedSeal(taskId, task, invalid, evidenceHash), weight);
    }

    /// @inheritdoc ITaskLedger
    /// @dev A dispute is resolved inside the validation or vote that gives a seal its majority, so an open one can
    ///      only be resolved here once its voting is over, and then without a majority: Unresolved. Nobody is
    ///      slashed, because nobody was shown wrong: a non-deterministic task (random bytes, time, hostname) ends
    ///      here, every re-execution sealing a different result, and slashing either side would punish an honest
    ///      node (the executor, or an accuser that rightly could not reproduce the result). The task stays
    ///      Completed and its executor keeps the pay; both parties' open disputes are released so they can claim.
    ///      A garbage accuser seal cannot bring a wrong executor here when honest voters agree on the true seal
    ///      (that seal wins its majority: invalidation), and a false accuser on a deterministic task is still
    ///      slashed when the honest voters reproduce the executor's seal. The cost: when too little power votes,
    ///      a false accuser is no longer slashed (nor an honest one, as before this rule).
    function resolveDispute(uint256 taskId) external nonReentrant {
        StoredTask storage task = _existingTask(taskId);
        Dispute storage dispute = _disputes[taskId];
        if (dispute.status != DisputeStatus.Open) revert TaskLedgerNoOpenDispute(taskId);
        uint64 closesAt = _votingEnd(task, dispute);
        if (_clock() < closesAt) revert TaskLedgerDisputeUndecided(taskId, closesAt);
        _close(task, dispute, DisputeStatus.Unresolved);
        emit DisputeResolved(
            taskId, DisputeStatus.Unresolved, bytes32(0), dispute.invalidWeight, dispute.validWeight, 0, 0
        );
    }

    /// @inheritdoc ITaskLedger
    /// @dev The names of this function, `okEvidenceHashFor` and INVALID_EVIDENCE_REASON were chosen so that their
    ///      selectors sort after every other one: the dispatcher compares selectors in ascending order, so the
    ///      calls that already existed (completeTask, and the ledger calls of a claim) cost what they did.
    ///      Not before the Dispute phase ends: validations are accepted until then, and the report reveals the
    ///      result hash to validators that have not validated yet; for the same reason, not while the task's
    ///      dispute is open (its votes may outlast the phase; resolveDispute closes it once they are over). Not
    ///      after the Claim phase ends, a bound on how long a validator's stake is exposed to a report.
    ///      Only Completed tasks: an Invalidated task's result was ruled wrong, so evidence bound to it proves
    ///      nothing, its validations fulfil no duty and earn nothing, and the only party knowing its result hash
    ///      is the invalidated executor, which should not collect bounties on it (an Assigned or Expired task has
    ///      no validations).
    function refuteFalseValidation(uint256 taskId, address validator, bytes32 resultHash) external nonReentrant {
        StoredTask storage task = _existingTask(taskId);
        TaskStatus status = task.status;
        if (status != TaskStatus.Completed) revert TaskLedgerInvalidStatus(taskId, status);
        uint64 epoch = task.epoch;
        uint64 opensAt = _epochTasks[epoch].disputeEnd;
        uint64 closesAt = epochs.timelineOf(epoch).claimEnd;
        uint64 now_ = _clock();
        if (now_ < opensAt || now_ >= closesAt) revert TaskLedgerReportClosed(taskId, opensAt, closesAt);
        // Votes on an open dispute may outlast the Dispute phase: the result hash stays hidden until they close.
        if (_disputes[taskId].status == DisputeStatus.Open) revert TaskLedgerDisputeOpen(taskId);
        if (keccak256(abi.encode(resultHash)) != task.resultSeal) revert TaskLedgerSealMismatch(taskId);
        mapping(address => bytes32) storage evidence = _evidence[taskId];
        bytes32 given = evidence[validator];
        if (given == bytes32(0)) revert TaskLedgerNoValidation(taskId, validator);
        if (given == keccak256(abi.encode(resultHash, validator))) revert TaskLedgerValidationGenuine(taskId, validator);

        delete evidence[validator];
        uint256 slashed = _slash(validator, _falseValidationSlashBps, INVALID_EVIDENCE_REASON);
        uint256 reward = _payBounty(msg.sender, slashed);
        emit FalseValidationRefuted(taskId, validator, msg.sender, slashed, reward);
    }

    // ------------------------------------------------------------------ work settlement

    /// @inheritdoc ITaskLedger
    /// @dev Only after the epoch's Dispute phase (TaskLedgerWorkNotFinal), read from the epoch's task record
    ///      (from the EpochManager for an epoch without tasks, whose nodes have no work).
    function settleWork(uint64 epoch, address node, address provider, uint8 outcome)
        external
        onlyRole(SETTLEMENT_ROLE)
        nonReentrant
        returns (uint256 total)
    {
        if (outcome == 0) revert TaskLedgerZeroOutcome();
        EpochTasks storage epochTasks = _epochTasks[epoch];
        uint64 finalAt = epochTasks.count != 0 ? epochTasks.disputeEnd : epochs.timelineOf(epoch).disputeEnd;
        if (_clock() < finalAt) revert TaskLedgerWorkNotFinal(epoch, finalAt);
        NodeEpoch storage record = _nodeEpochs[epoch][node];
        NodeEpochRecord storage head = record.head;
        if (head.outcome != 0) revert TaskLedgerWorkSettled(epoch, node);
        bool pay = provider != address(0);
        if (pay && head.openDisputes != 0) revert TaskLedgerDisputesOpen(epoch, node, head.openDisputes);
        head.outcome = outcome;

        uint256 count = head.runCount; // at most MAX_RUNS_PER_EPOCH
        mapping(uint256 => uint256) storage work = _work[epoch][node];
        for (uint256 i; i < count; ++i) {
            uint256 runId = record.runIds[i];
            // Settled: the record keeps only the total, and clearing slots read anyway refunds most of the writes.
            record.runIds[i] = 0;
            uint256 amount = work[runId];
            if (amount == 0) continue;
            total += amount;
            work[runId] = 0;
            if (pay) {
                emit WorkPaid(epoch, node, runId, provider, amount);
                runs.payFromEscrow(runId, provider, amount);
            } else {
                emit WorkReleased(epoch, node, runId, amount);
                runs.releaseEscrow(runId, amount);
            }
        }
        head.runCount = 0;
        head.work = SafeCast.toUint128(total);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc ITaskLedger
    function parameters() external view returns (Parameters memory) {
        return Parameters({
            validationKBps: _validationKBps,
            executorSlashBps: _executorSlashBps,
            falseAccuserSlashBps: _falseAccuserSlashBps,
            accuserRewardBps: _accuserRewardBps,
            falseValidationSlashBps: _falseValidationSlashBps
        });
    }

    /// @inheritdoc ITaskLedger
    function taskOf(uint256 taskId) external view returns (Task memory) {
        StoredTask storage task = _existingTask(taskId);
        return Task({
            runId: task.runId,
            epoch: task.epoch,
            status: task.status,
            assignee: task.assignee,
            units: task.units,
            pay: task.pay,
            specHash: task.specHash,
            resultHash: task.resultSeal,
            assigneePower: task.assigneePower,
            completedAt: task.completedAt
        });
    }

    /// @inheritdoc ITaskLedger
    /// @dev Before a dispute opens, `validWeight` already sums the successful validations (status None).
    function disputeOf(uint256 taskId) external view returns (Dispute memory) {
        _existingTask(taskId);
        return _disputes[taskId];
    }

    /// @inheritdoc ITaskLedger
    function sealTallyOf(uint256 taskId, bytes32 seal) external view returns (uint256) {
        StoredTask storage task = _existingTask(taskId);
        if (seal == _executorSeal(task)) return _disputes[taskId].validWeight;
        return _sealWeights[taskId][seal];
    }

    /// @inheritdoc ITaskLedger
    function votingEndOf(uint256 taskId) external view returns (uint64) {
        StoredTask storage task = _existingTask(taskId);
        Dispute storage dispute = _disputes[taskId];
        if (dispute.status != DisputeStatus.Open) revert TaskLedgerNoOpenDispute(taskId);
        return _votingEnd(task, dispute);
    }

    /// @inheritdoc ITaskLedger
    function taskCount() external view returns (uint256) {
        return _taskCount;
    }

    /// @inheritdoc ITaskLedger
    function epochTaskCount(uint64 epoch) external view returns (uint256) {
        return _epochTasks[epoch].count;
    }

    /// @inheritdoc ITaskLedger
    function epochTaskAt(uint64 epoch, uint256 index) external view returns (uint256) {
        EpochTasks memory epochTasks = _epochTasks[epoch];
        if (index >= epochTasks.count) revert TaskLedgerTaskIndexOutOfRange(epoch, index, epochTasks.count);
        return epochTasks.firstTaskId + index;
    }

    /// @inheritdoc ITaskLedger
    function hasValidated(uint256 taskId, address node) external view returns (bool) {
        return _validations[node][taskId >> 8] & (1 << (taskId & 0xff)) != 0;
    }

    /// @inheritdoc ITaskLedger
    function okEvidenceHashFor(uint256 taskId, address validator) external view returns (bytes32) {
        return _evidence[taskId][validator];
    }

    /// @inheritdoc ITaskLedger
    function validationWordOf(address node, uint256 word) external view returns (uint256) {
        return _validations[node][word];
    }

    /// @inheritdoc ITaskLedger
    function nodeEpochOf(uint64 epoch, address node)
        external
        view
        returns (NodeEpochRecord memory record, EpochTasks memory tasks)
    {
        record = _nodeEpochs[epoch][node].head;
        tasks = _epochTasks[epoch];
    }

    /// @inheritdoc ITaskLedger
    function enrollmentOf(uint256 runId, uint64 epoch) external view returns (uint256 count, uint256 totalWeight) {
        uint256[] storage entries = _enrollment[runId][epoch];
        count = entries.length;
        if (count > 0) totalWeight = _cumulative(entries[count - 1]);
    }

    /// @inheritdoc ITaskLedger
    function isEnrolled(uint256 runId, uint64 epoch, address node) external view returns (bool) {
        return _enrolled[runId][epoch][node];
    }

    /// @inheritdoc ITaskLedger
    function drawAssignee(uint256 runId, uint64 epoch, uint256 taskId, uint256 attempt)
        external
        view
        returns (address assignee)
    {
        uint256[] storage entries = _enrollment[runId][epoch];
        if (entries.length == 0) revert TaskLedgerNoAssignee(runId, epoch);
        (assignee,) = _draw(entries, epochs.pocBeacon(epoch), runId, taskId, attempt);
    }

    /// @inheritdoc ITaskLedger
    /// @dev Duty only on Completed tasks (false for unknown, assigned, expired or invalidated ones). The
    ///      threshold is `⌊(2^256 − 1) · k·p_v / ((T − p_x) · 10000)⌋`, computed exactly with 512-bit
    ///      intermediate products; duty is certain when `k·p_v ≥ (T − p_x) · 10000`.
    function isValidationDuty(uint256 taskId, address validator, bytes32 seed) external view returns (bool) {
        StoredTask storage task = _tasks[taskId];
        if (task.status != TaskStatus.Completed || validator == task.assignee) return false;
        uint64 epoch = task.epoch;
        uint256 validatorPower = poc.powerOf(epoch, validator);
        if (validatorPower == 0) return false;
        // Positive: the validator's power is part of the total and is not the executor's.
        uint256 others = poc.totalPower(epoch) - task.assigneePower;
        uint256 numerator = uint256(_validationKBps) * validatorPower;
        uint256 denominator = others * BPS;
        if (numerator >= denominator) return true;
        uint256 threshold = Math.mulDiv(type(uint256).max, numerator, denominator);
        // The task exists, so its epoch's first task fixed the salt.
        return ValidationDuty.hash(ValidationDuty.key(seed, _epochTasks[epoch].dutySalt), taskId) < threshold;
    }

    /// @inheritdoc ITaskLedger
    function workOf(uint64 epoch, address node)
        external
        view
        returns (uint256[] memory runIds, uint256[] memory amounts, bool settled)
    {
        NodeEpoch storage record = _nodeEpochs[epoch][node];
        uint256 count = record.head.runCount;
        runIds = new uint256[](count);
        amounts = new uint256[](count);
        mapping(uint256 => uint256) storage work = _work[epoch][node];
        for (uint256 i; i < count; ++i) {
            uint256 runId = record.runIds[i];
            runIds[i] = runId;
            amounts[i] = work[runId];
        }
        settled = record.head.outcome != 0;
    }

    /// @inheritdoc ITaskLedger
    function openDisputesOf(uint64 epoch, address node) external view returns (uint256) {
        return _nodeEpochs[epoch][node].head.openDisputes;
    }

    // ------------------------------------------------------------------ internals

    /// @dev The current epoch, its end and the end of its Dispute phase, when it is in its Work phase.
    function _currentWorkEpoch() private view returns (uint64 epoch, uint64 end, uint64 disputeEnd) {
        epoch = epochs.currentEpoch();
        if (epoch == 0) revert TaskLedgerNotWorkPhase(epoch);
        IEpochManager.Timeline memory timeline = epochs.timelineOf(epoch);
        // `now < timeline.end` holds: the epoch is current.
        if (_clock() < timeline.pocValidationEnd) revert TaskLedgerNotWorkPhase(epoch);
        end = timeline.end;
        disputeEnd = timeline.disputeEnd;
    }

    /// @dev What the epoch's first task (`taskId`) keeps of its epoch: its first id, the end of its Dispute phase
    ///      and its duty salt (ITaskLedger's notice), in the one slot of EpochTasks. The salt is the low 64 bits of
    ///      `keccak256(abi.encode(blockhash(block.number - 1), pocBeacon, chainid, this, epoch, tag))`. The block
    ///      hash is the part nobody knew while seeds could be committed: tasks are created only in the Work phase,
    ///      which begins after the PoC validation phase, itself after the seed window (the PoC phase). The PoC
    ///      beacon, chain, contract and epoch only make salts differ where block hashes would not (on Arbitrum the
    ///      hash is the same for every L2 block of one L1 block, and known a few seconds ahead; see the beacons'
    ///      trust assumption in IEpochManager). The master of the epoch's first task chooses when to create it,
    ///      hence which block hash is used, among those of the moments it can wait for while no other master of
    ///      the epoch creates a task first.
    function _openEpochTasks(EpochTasks storage epochTasks, uint64 epoch, uint256 taskId, uint64 disputeEnd, bytes32 pocBeacon)
        private
    {
        bytes32 entropy = blockhash(block.number - 1);
        uint64 salt = uint64(uint256(keccak256(abi.encode(entropy, pocBeacon, block.chainid, address(this), epoch, _DUTY_SALT))));
        epochTasks.firstTaskId = uint64(taskId);
        epochTasks.disputeEnd = disputeEnd;
        epochTasks.dutySalt = salt;
        emit DutySaltFixed(epoch, salt, taskId);
    }

    /// @dev The draw of `attempt` for `taskId`: the first entry whose cumulative weight exceeds
    ///      `keccak256(beacon, runId, taskId, attempt) mod totalWeight`, found by binary search, and its weight.
    function _draw(uint256[] storage entries, bytes32 beacon, uint256 runId, uint256 taskId, uint256 attempt)
        private
        view
        returns (address node, uint256 weight)
    {
        uint256 high = entries.length - 1;
        uint256 target = uint256(keccak256(abi.encode(beacon, runId, taskId, attempt))) % _cumulative(entries[high]);
        uint256 low = 0;
        // Invariant: the answer lies in [low, high]; the last entry's cumulative weight exceeds the target.
        while (low < high) {
            uint256 mid = (low + high) / 2;
            if (_cumulative(entries[mid]) > target) high = mid;
            else low = mid + 1;
        }
        uint256 entry = entries[low];
        node = address(uint160(entry >> 96));
        weight = _cumulative(entry) - (low == 0 ? 0 : _cumulative(entries[low - 1]));
    }

    function _cumulative(uint256 entry) private pure returns (uint256) {
        return uint96(entry);
    }

    function _existingTask(uint256 taskId) private view returns (StoredTask storage task) {
        task = _tasks[taskId];
        if (task.status == TaskStatus.None) revert TaskLedgerUnknownTask(taskId);
    }

    /// @dev When votes on an opened dispute close: a full Dispute window after it opened, so that a dispute opened
    ///      late still gives every node the time to re-execute the task; never before the Dispute phase ends, and
    ///      never after the Claim phase ends (the executor's work may be released from then on).
    function _votingEnd(StoredTask storage task, Dispute storage dispute) private view returns (uint64) {
        IEpochManager.Timeline memory t = epochs.timelineOf(task.epoch);
        uint64 end = dispute.openedAt + (t.disputeEnd - t.end);
        if (end < t.disputeEnd) return t.disputeEnd;
        return end < t.claimEnd ? end : t.claimEnd;
    }

    /// @dev Checks that the caller may validate or vote on the task before `closesAt`, records that it did,
    ///      returns its weight.
    function _recordVoter(uint256 taskId, StoredTask storage task, uint64 closesAt) private returns (uint256 weight) {
        if (msg.sender == task.assignee) revert TaskLedgerSelfValidation(taskId);
        mapping(uint256 => uint256) storage words = _validations[msg.sender];
        uint256 word = taskId >> 8;
        uint256 bits = words[word];
        uint256 bit = 1 << (taskId & 0xff);
        if (bits & bit != 0) revert TaskLedgerAlreadyValidated(taskId, msg.sender);
        uint64 epoch = task.epoch;
        if (_clock() >= closesAt) revert TaskLedgerValidationClosed(taskId, closesAt);
        weight = poc.powerOf(epoch, msg.sender);
        if (weight == 0) revert TaskLedgerNoPower(epoch, msg.sender);
        words[word] = bits | bit;
    }

    /// @dev The seal the executor's result is judged by: votes carrying it count for the task (`validWeight`).
    ///      `completeTask` posts the seal itself (`keccak256(abi.encode(resultHash))`, what a validator's own
    ///      re-execution seals to when it reproduces the result), so it is returned as stored.
    function _executorSeal(StoredTask storage task) private view returns (bytes32) {
        return task.resultSeal;
    }

    /// @dev The seal a validation or vote counts for: the executor's for a successful validation or a vote to
    ///      uphold (their evidence is not a seal), the one carried as evidence otherwise.
    function _votedSeal(uint256 taskId, StoredTask storage task, bool invalid, bytes32 evidenceHash)
        private
        view
        returns (bytes32)
    {
        return invalid ? _dissentingSeal(taskId, task, evidenceHash) : _executorSeal(task);
    }

    /// @dev The seal of a failed validation or a vote to invalidate: non-zero, and not the executor's (a node
    ///      that sealed the executor's result reproduced it, and must say so with a successful validation or a
    ///      vote to uphold).
    function _dissentingSeal(uint256 taskId, StoredTask storage task, bytes32 seal) private view returns (bytes32) {
        if (seal == bytes32(0)) revert TaskLedgerZeroSeal(taskId);
        if (seal == _executorSeal(task)) revert TaskLedgerSealAgrees(taskId);
        return seal;
    }

    /// @dev Adds a vote for `seal` to an open dispute and resolves it if the vote gives the seal its majority.
    ///      Each tally sums the powers of distinct nodes, at most the epoch's total power, itself at most
    ///      ProofOfCompute's uint128 raw total.
    function _countVote(uint256 taskId, StoredTask storage task, Dispute storage dispute, bytes32 seal, uint256 weight)
        private
    {
        uint256 tally;
        uint256 dissent;
        if (seal == _executorSeal(task)) {
            tally = dispute.validWeight += uint128(weight);
        } else {
            dispute.invalidWeight += uint128(weight);
            tally = dissent = _sealWeights[taskId][seal] += weight;
        }
        emit DisputeVote(taskId, msg.sender, seal, weight, tally);
        _resolveIfDecided(taskId, task, dispute, seal, dissent);
    }

    /// @dev Decided by the voting power: the epoch's total less the executor's, which cannot vote. The executor's
    ///      seal upholds with at least half (checked after any vote: when a dispute opens, the successful
    ///      validations made before may already hold half); `seal`, which a vote just raised to `dissent` (0 for
    ///      a vote for the executor's seal), invalidates with more than half. Only the seal a vote raised can cross
    ///      a threshold, and both cannot hold at once (the tallies sum distinct nodes' powers).
    function _resolveIfDecided(
        uint256 taskId,
        StoredTask storage task,
        Dispute storage dispute,
        bytes32 seal,
        uint256 dissent
    ) private {
        uint256 total = poc.totalPower(task.epoch) - task.assigneePower;
        if (uint256(dispute.validWeight) * 2 >= total) _uphold(taskId, task, dispute);
        else if (dissent * 2 > total) _invalidate(taskId, task, dispute, seal);
    }

    /// @dev Ends an open dispute with `outcome`: releases both parties' open disputes of the epoch.
    function _close(StoredTask storage task, Dispute storage dispute, DisputeStatus outcome) private {
        uint64 epoch = task.epoch;
        dispute.status = outcome;
        --_nodeEpochs[epoch][task.assignee].head.openDisputes;
        --_nodeEpochs[epoch][dispute.accuser].head.openDisputes;
    }

    /// @dev `seal` won a majority against the executor's: the executor loses the task's pay (back to the run's
    ///      escrow) and a share of its stake. The accuser's provider receives a share of what was slashed, from
    ///      the vault that received it, only when the winning seal is the accuser's own: an accuser that sealed
    ///      something else (a garbage seal, possibly colluding with the executor to dilute the vote) earns nothing.
    ///      It is not slashed either: it was right that the executor was wrong.
    function _invalidate(uint256 taskId, StoredTask storage task, Dispute storage dispute, bytes32 seal) private {
        address executor = task.assignee;
        address accuser = dispute.accuser;
        uint64 epoch = task.epoch;
        uint256 runId = task.runId;
        uint256 pay = task.pay;
        task.status = TaskStatus.Invalidated;
        _close(task, dispute, DisputeStatus.Invalidated);
        // Credited at completion and not settled: settlement waits for the end of the Dispute phase.
        _work[epoch][executor][runId] -= pay;

        if (pay > 0) runs.releaseEscrow(runId, pay);
        uint256 slashed = _slash(executor, _executorSlashBps, INVALID_TASK_REASON);
        uint256 reward = seal == dispute.accuserSeal ? _payBounty(accuser, slashed) : 0;
        emit DisputeResolved(
            taskId, DisputeStatus.Invalidated, seal, dispute.invalidWeight, dispute.validWeight, slashed, reward
        );
    }

    /// @dev The executor's seal holds half the voting power: the task stands; the accuser loses a share of its
    ///      stake.
    function _uphold(uint256 taskId, StoredTask storage task, Dispute storage dispute) private {
        _close(task, dispute, DisputeStatus.Upheld);
        uint256 slashed = _slash(dispute.accuser, _falseAccuserSlashBps, FALSE_ACCUSATION_REASON);
        emit DisputeResolved(
            taskId, DisputeStatus.Upheld, _executorSeal(task), dispute.invalidWeight, dispute.validWeight, slashed, 0
        );
    }

    /// @dev Keeps the caller's evidence of a successful validation or a vote to uphold (non-zero).
    function _keepEvidence(uint256 taskId, bytes32 evidenceHash) private {
        if (evidenceHash == bytes32(0)) revert TaskLedgerEmptyEvidence(taskId);
        _evidence[taskId][msg.sender] = evidenceHash;
    }

    /// @dev Pays `accuserRewardBps` of `slashed` from the vault to the provider of `accuser` (nothing when it has
    ///      none); returns what was paid.
    function _payBounty(address accuser, uint256 slashed) private returns (uint256 reward) {
        uint256 bounty = slashed * _accuserRewardBps / BPS;
        if (bounty > 0) {
            address provider = registry.providerOf(accuser);
            if (provider != address(0)) reward = vault.payBounty(provider, bounty);
        }
    }

    /// @dev Slashes `bps` of what the registry holds for `node` (active stake and unbonding stake).
    function _slash(address node, uint256 bps, bytes32 reason) private returns (uint256) {
        uint256 held;
        if (registry.providerOf(node) != address(0)) held = registry.getNode(node).stake;
        IMinerRegistry.Unbonding[] memory unbonding = registry.unbondingOf(node);
        for (uint256 i; i < unbonding.length; ++i) held += unbonding[i].amount; // at most MAX_UNBONDING_ENTRIES
        uint256 amount = held * bps / BPS;
        if (amount == 0) return 0;
        return registry.slash(node, amount, reason);
    }
}
