// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title ITaskLedger
/// @notice Tasks of training runs, assigned on chain by power, validated by peers, disputed by power.
///
///         Enrollment: in the Work phase of epoch `e` (power final), anyone may enroll a member of a run that
///         has power in `e`; the node then takes part in the run's draws of `e` with weight `powerOf(e, node)`.
///         Enrollment appends one packed `(node, cumulative weight)` entry, so it costs the same for the first
///         and the thousandth node.
///
///         Assignment: `createTask` (the run's master, Work phase) takes the next task id from a counter (a
///         master cannot grind ids) and draws the assignee from `keccak256(pocBeacon(e), runId, taskId,
///         attempt)` over the run's enrolled weight, by binary search over the cumulative weights (gas grows
///         with log2 of the enrolled count). Anyone can recompute the draw (`drawAssignee`). A drawn node that
///         has left the run since it enrolled is skipped by drawing again, at most MAX_DRAWS times. Residual
///         influence: the master chooses when to create a task, but not its id or the beacon. The task's pay
///         (`pricePerUnit × units`) is reserved in the run's escrow.
///
///         Validation duty: node `v` must validate task `t` of epoch `e` (executor `x`) when
///         `uint256(keccak256(abi.encode(key_v, t))) < min(1, k · power_v / (totalPower − power_x))` as a
///         fraction of 2^256, where `key_v = keccak256(abi.encode(seed_v, dutySalt_e))` is `v`'s duty key of `e`
///         (ValidationDuty), `seed_v` the seed `v` committed for `e`, `dutySalt_e` the epoch's duty salt
///         (EpochTasks.dutySalt, a uint64 encoded as a uint256) and `k = validationKBps / 10000`. In short
///         `H(seed, salt, t) < threshold`.
///         Only `v` knows its seed until it claims, so nobody can predict who checks what. Any node with power
///         in `e` other than the executor may validate, once per task, until the end of the epoch's Dispute
///         phase, never on a task already invalidated.
///
///         Duty salt (seed grinding): seeds are committed in the PoC phase, and an epoch's task ids are
///         predictable then (one counter), so a hash of the seed and the id alone would let a node try seeds
///         offline until one gives it no duty on the ids the epoch will use. The epoch's first `createTask`
///         (Work phase, after the seed window closed, before any task of the epoch exists) fixes the salt from
///         the hash of the previous block, which did not exist while seeds could be committed: a seed is
///         committed blind to the salt, and grinding would need the salt in advance. The salt is 64 bits: it
///         only has to be unguessable at commitment time (a grinder would need a seed good for a guessed salt,
///         right with probability 2^-64), not secret afterwards. Residual bias: the master that creates the
///         epoch's first task chooses its block, and the sequencer the block hashes (see the beacons' trust
///         assumption in IEpochManager). Either can pick among the few block hashes of the moments it can
///         wait for, racing every other master of the epoch; against a node's committed seed that moves the
///         node's duties by at most the best of those few draws, where free seed grinding had any number of
///         offline tries.
///
///         Disputes: nodes vote with the seal of their own re-execution, `keccak256(abi.encode(resultHash))`
///         (never the result hash itself), and power is tallied per seal. A failed validation opens the task's
///         dispute; its `evidenceHash` is the accuser's seal and counts as its vote. Later failed validations and
///         votes to invalidate (`vote(taskId, true, seal)`) vote for the seal they carry; successful validations
///         (before or during the dispute) and votes to uphold vote for the executor's seal, whose tally is
///         `validWeight` (`invalidWeight` sums all other seals). Nodes with power in `e` other than the executor
///         vote with that power, once per task. The dispute is decided as soon as the executor's seal holds at
///         least half of the voting power
///         `totalPower(e) − power_x` (Upheld) or any other seal holds more than half (Invalidated): the executor
///         cannot vote, so its power does not count, and a large executor cannot make its own invalidation
///         unreachable. Votes stay open a full Dispute window after the dispute opened (votingEndOf); a dispute
///         still without a majority then ends Unresolved (resolveDispute).
///         Invalidated: the executor loses the task's pay (released to the run's escrow) and `executorSlashBps` of
///         its stake; the accuser receives `accuserRewardBps` of what was slashed only if the winning seal is its
///         own (an accuser with another seal was right that the executor was wrong, so it is not slashed, but
///         earns nothing). Upheld: the accuser loses `falseAccuserSlashBps` of its stake (Gonka never penalises
///         one). Unresolved: nobody is slashed, the task stays Completed and its executor is paid: a
///         non-deterministic task (every re-execution seals a different result) ends here instead of slashing an
///         honest executor for the buyer's nodes' benefit.
///
///         Sealed results: the executor's `completeTask` posts `seal = keccak256(abi.encode(resultHash))`, not its
///         result hash, so a validator cannot copy the result from the chain. A successful validation must carry
///         `evidence = keccak256(abi.encode(resultHash, validator))`, which only a node that knows the result
///         hash (by re-executing) can compute; the ledger keeps it. After the epoch's Dispute phase (when no
///         validation is accepted any more) and until its Claim phase ends, anyone who knows the result hash
///         (in practice the executor) may `refuteFalseValidation`: if the result hash matches the seal and the
///         validator's stored evidence is not the bound one, the validator loses `falseValidationSlashBps` of its
///         stake and the reporter receives `accuserRewardBps` of it. A vote to uphold a disputed task carries the
///         same evidence and can be refuted the same way, once the dispute is no longer open.
///
///         Work pay is credited to the executor per epoch and run when the task is completed, and settled once by
///         `settleWork` (SETTLEMENT_ROLE): paid to the node's provider when it claims, or released back to the
///         escrow when the claim expires (or the node has no provider any more). The node's record of the epoch
///         (`nodeEpochOf`: runs, open disputes, power, settlement) is one storage slot that enrollment writes
///         first, so that a claim reads and rewrites one warm, non-zero slot; the settler keeps its own flags
///         (`outcome`) in it.
interface ITaskLedger {
    /// @notice Lifecycle of a task: Assigned -> Completed -> (Invalidated), or Assigned -> Expired.
    enum TaskStatus {
        None,
        Assigned,
        Completed,
        Invalidated,
        Expired
    }

    /// @notice Lifecycle of a task's dispute: None -> Open -> Invalidated | Upheld | Unresolved (voting ended
    ///         without a seal holding a majority: nobody slashed, the task stands).
    enum DisputeStatus {
        None,
        Open,
        Invalidated,
        Upheld,
        Unresolved
    }

    /// @notice Parameters fixed at deployment (no change can ever land mid-epoch).
    /// @param validationKBps k of the validation-duty rule, in basis points (20000 = k of 2).
    /// @param executorSlashBps Share of an invalidated executor's stake slashed.
    /// @param falseAccuserSlashBps Share of a false accuser's stake slashed.
    /// @param accuserRewardBps Share of the executor's slashed stake paid to the accuser (and of a false
    ///        validator's slashed stake paid to its reporter).
    /// @param falseValidationSlashBps Share of a false validator's stake slashed (refuteFalseValidation).
    struct Parameters {
        uint32 validationKBps;
        uint16 executorSlashBps;
        uint16 falseAccuserSlashBps;
        uint16 accuserRewardBps;
        uint16 falseValidationSlashBps;
    }

    /// @notice A task.
    /// @param runId Run.
    /// @param epoch Epoch it was created in (and is paid in).
    /// @param status Status.
    /// @param assignee Node drawn to execute it.
    /// @param units Work units.
    /// @param pay Reserved pay (`pricePerUnit × units` at creation).
    /// @param specHash Hash of the task's specification (kept by the master).
    /// @param resultHash The seal of the assignee's result, `keccak256(abi.encode(resultHash))` (0 until completed):
    ///        the result hash itself stays off chain until a false validation is reported.
    /// @param assigneePower Power of the assignee in `epoch` (saves reads in duty checks).
    /// @param completedAt Time of completion (0 until then).
    struct Task {
        uint256 runId;
        uint64 epoch;
        TaskStatus status;
        address assignee;
        uint64 units;
        uint128 pay;
        bytes32 specHash;
        bytes32 resultHash;
        uint96 assigneePower;
        uint64 completedAt;
    }

    /// @notice A node's record of one epoch (one storage slot: what a claim reads and writes).
    /// @param runCount Runs the node enrolled in (at most MAX_RUNS_PER_EPOCH); 0 once settled (the settlement
    ///        clears the node's runs and their work, keeping only the total in `work`).
    /// @param outcome The settler's flags, recorded by `settleWork` and opaque to the ledger (Settlement: its
    ///        claim's outcome); 0 while the node's work is unsettled.
    /// @param openDisputes Disputes of the epoch still open in which the node is the executor or the accuser.
    /// @param power The node's power in the epoch, recorded at its first enrollment (0 if it never enrolled).
    /// @param work Work settled (paid or released); 0 until then.
    struct NodeEpochRecord {
        uint8 runCount;
        uint8 outcome;
        uint32 openDisputes;
        uint64 power;
        uint128 work;
    }

    /// @notice An epoch's tasks (one storage slot). Tasks are numbered by one counter and created only in the
    ///         Work phase of the current epoch, so an epoch's tasks carry consecutive ids: `firstTaskId` to
    ///         `firstTaskId + count - 1`. `disputeEnd` is the end of the epoch's Dispute phase and `dutySalt` the
    ///         salt of the epoch's validation duties (the notice), both fixed by its first task. All 0 for an
    ///         epoch without tasks: the salt is unknown until then (`count` 0 tells an unset salt from a salt
    ///         that is 0).
    struct EpochTasks {
        uint64 firstTaskId;
        uint64 count;
        uint64 disputeEnd;
        uint64 dutySalt;
    }

    /// @notice A task's dispute.
    /// @param status Status.
    /// @param accuser Node whose failed validation opened it.
    /// @param openedAt Time it opened.
    /// @param invalidWeight Power voting any seal other than the executor's (the accuser's included).
    /// @param validWeight Power voting the executor's seal (successful validations included, those made before
    ///        the dispute opened too).
    /// @param accuserSeal The accuser's seal (its failed validation's evidence); a bounty is paid only when it
    ///        wins.
    struct Dispute {
        DisputeStatus status;
        address accuser;
        uint64 openedAt;
        uint128 invalidWeight;
        uint128 validWeight;
        bytes32 accuserSeal;
    }

    error TaskLedgerZeroAddress();
    /// @notice A parameter outside its bounds.
    error TaskLedgerInvalidParameters();
    /// @notice The current epoch `epoch` is not in its Work phase (or was never advanced).
    error TaskLedgerNotWorkPhase(uint64 epoch);
    /// @notice The run is not Active.
    error TaskLedgerRunNotActive(uint256 runId);
    /// @notice Only the run's master may create its tasks.
    error TaskLedgerNotMaster(uint256 runId, address caller);
    /// @notice `node` is not a member of `runId`.
    error TaskLedgerNotMember(uint256 runId, address node);
    /// @notice `node` has no power in `epoch`.
    error TaskLedgerNoPower(uint64 epoch, address node);
    /// @notice `node` is already enrolled in `runId` for `epoch`.
    error TaskLedgerAlreadyEnrolled(uint256 runId, uint64 epoch, address node);
    /// @notice `node` is enrolled in MAX_RUNS_PER_EPOCH runs for `epoch` already.
    error TaskLedgerTooManyRuns(uint64 epoch, address node);
    /// @notice No enrolled member of `runId` could be drawn in `epoch`.
    error TaskLedgerNoAssignee(uint256 runId, uint64 epoch);
    /// @notice Zero work units or a zero spec hash.
    error TaskLedgerInvalidTask();
    /// @notice No such task.
    error TaskLedgerUnknownTask(uint256 taskId);
    /// @notice The task is in `status`, which does not allow the call.
    error TaskLedgerInvalidStatus(uint256 taskId, TaskStatus status);
    /// @notice Only the task's assignee may complete it.
    error TaskLedgerNotAssignee(uint256 taskId, address caller);
    /// @notice A zero result hash.
    error TaskLedgerEmptyResult();
    /// @notice Tasks of `epoch` can be completed only until its end (`deadline`).
    error TaskLedgerCompletionClosed(uint256 taskId, uint64 deadline);
    /// @notice The task's epoch has not ended yet (`endsAt`), so it cannot expire.
    error TaskLedgerNotExpired(uint256 taskId, uint64 endsAt);
    /// @notice Validations of the task closed at `closedAt` (the end of its epoch's Dispute phase), or votes on
    ///         its dispute did (see votingEndOf).
    error TaskLedgerValidationClosed(uint256 taskId, uint64 closedAt);
    /// @notice The executor cannot validate or vote on its own task.
    error TaskLedgerSelfValidation(uint256 taskId);
    /// @notice `node` already validated (or voted on) the task.
    error TaskLedgerAlreadyValidated(uint256 taskId, address node);
    /// @notice A failed validation or a vote to invalidate must carry a seal, `keccak256(abi.encode(resultHash))`
    ///         (non-zero).
    error TaskLedgerZeroSeal(uint256 taskId);
    /// @notice A failed validation or a vote to invalidate carried the executor's own seal: the node reproduced
    ///         the result, so it must validate successfully or vote to uphold.
    error TaskLedgerSealAgrees(uint256 taskId);
    /// @notice The task has no open dispute.
    error TaskLedgerNoOpenDispute(uint256 taskId);
    /// @notice An open dispute can be resolved (Unresolved) only once its voting ended (`closesAt`).
    error TaskLedgerDisputeUndecided(uint256 taskId, uint64 closesAt);
    /// @notice The work of `node` for `epoch` was already paid or released.
    error TaskLedgerWorkSettled(uint64 epoch, address node);
    /// @notice Work of `epoch` can be settled only once its Dispute phase is over (`finalAt`), when none of
    ///         its tasks can be invalidated any more.
    error TaskLedgerWorkNotFinal(uint64 epoch, uint64 finalAt);
    /// @notice `count` disputes of `node` in `epoch` are still open: its work cannot be paid yet.
    error TaskLedgerDisputesOpen(uint64 epoch, address node, uint256 count);
    /// @notice A settlement must record a non-zero outcome (0 means unsettled).
    error TaskLedgerZeroOutcome();
    /// @notice `epoch` has `count` tasks: there is no task at `index`.
    error TaskLedgerTaskIndexOutOfRange(uint64 epoch, uint256 index, uint256 count);
    /// @notice A successful validation or a vote to uphold must carry its evidence,
    ///         `keccak256(abi.encode(resultHash, validator))`.
    error TaskLedgerEmptyEvidence(uint256 taskId);
    /// @notice False validations of the task can be reported only from `opensAt` (the end of its epoch's Dispute
    ///         phase) until `closesAt` (the end of its Claim phase).
    error TaskLedgerReportClosed(uint256 taskId, uint64 opensAt, uint64 closesAt);
    /// @notice The task's dispute is still open: its voters must not learn the result hash yet.
    error TaskLedgerDisputeOpen(uint256 taskId);
    /// @notice The result hash given does not hash to the task's seal.
    error TaskLedgerSealMismatch(uint256 taskId);
    /// @notice `validator` holds no successful validation of the task (none, a failed one, or already reported).
    error TaskLedgerNoValidation(uint256 taskId, address validator);
    /// @notice `validator`'s evidence is bound to the task's result: its validation was not false.
    error TaskLedgerValidationGenuine(uint256 taskId, address validator);

    /// @notice `node` joined the draws of `runId` in `epoch` with `weight`; `cumulative` is the run's enrolled
    ///         weight after it.
    event NodeEnrolled(uint256 indexed runId, uint64 indexed epoch, address indexed node, uint256 weight, uint256 cumulative);
    /// @notice Task `taskId` of `runId` was created in `epoch` and drawn to `assignee` (`draws` attempts).
    event TaskCreated(
        uint256 indexed taskId,
        uint256 indexed runId,
        address indexed assignee,
        uint64 epoch,
        bytes32 specHash,
        uint64 units,
        uint256 pay,
        uint256 draws
    );
    /// @notice The epoch's first task, `firstTaskId`, fixed the salt of the epoch's validation duties (the
    ///         notice), with which anyone who learns a node's seed can recompute its duties.
    event DutySaltFixed(uint64 indexed epoch, uint64 dutySalt, uint256 firstTaskId);
    /// @notice The assignee completed the task; `resultHash` is the seal of its result (see taskOf).
    event TaskCompleted(uint256 indexed taskId, address indexed assignee, bytes32 resultHash);
    /// @notice The task was never completed in its epoch; its pay went back to the run's escrow.
    event TaskExpired(uint256 indexed taskId, uint256 released);
    /// @notice `validator` validated the task: `ok` says whether it reproduced the result. For `ok`,
    ///         `evidenceHash` should be `keccak256(abi.encode(resultHash, validator))` (see refuteFalseValidation).
    event TaskValidated(uint256 indexed taskId, address indexed validator, bool ok, bytes32 evidenceHash, uint256 weight);
    /// @notice `accuser`'s failed validation opened the task's dispute, voting its `seal` with `weight`.
    event DisputeOpened(uint256 indexed taskId, address indexed accuser, bytes32 seal, uint256 weight);
    /// @notice `voter` voted `seal` with `weight` (a successful validation or a vote to uphold votes the
    ///         executor's seal); `tally` is the seal's power after the vote.
    event DisputeVote(uint256 indexed taskId, address indexed voter, bytes32 seal, uint256 weight, uint256 tally);
    /// @notice The dispute ended with `outcome` (Invalidated, Upheld or Unresolved). `seal` holds the majority
    ///         (the executor's when Upheld, 0 when Unresolved); `invalidWeight` and `validWeight` are the power
    ///         against and for the executor's seal. `slashed` is taken from the executor (Invalidated) or the
    ///         accuser (Upheld); `reward` is what the accuser received.
    event DisputeResolved(
        uint256 indexed taskId,
        DisputeStatus outcome,
        bytes32 seal,
        uint256 invalidWeight,
        uint256 validWeight,
        uint256 slashed,
        uint256 reward
    );
    /// @notice `validator`'s successful validation of the task was not bound to its result: `slashed` was taken
    ///         from it and `reward` paid to the provider of `reporter`.
    event FalseValidationRefuted(
        uint256 indexed taskId, address indexed validator, address indexed reporter, uint256 slashed, uint256 reward
    );
    /// @notice Work of `node` for `epoch` on `runId` was paid to `provider`.
    event WorkPaid(uint64 indexed epoch, address indexed node, uint256 indexed runId, address provider, uint256 amount);
    /// @notice Unclaimed work of `node` for `epoch` on `runId` went back to the run's escrow.
    event WorkReleased(uint64 indexed epoch, address indexed node, uint256 indexed runId, uint256 amount);

    function enroll(uint256 runId, address node) external;

    function createTask(uint256 runId, bytes32 specHash, uint64 units) external returns (uint256 taskId, address assignee);

    /// @notice Completes the caller's Assigned task before its epoch ends. `resultHash` must be the seal of the
    ///         result, `keccak256(abi.encode(resultHash))`: the result hash itself is what validators must find by
    ///         re-executing.
    function completeTask(uint256 taskId, bytes32 resultHash) external;

    /// @notice Expires a task still Assigned after its epoch ended (anyone); its pay returns to the escrow.
    function expireTask(uint256 taskId) external;

    /// @notice Records the caller's validation of a Completed task. A failed one opens or joins its dispute with
    ///         `evidenceHash` as the caller's seal, `keccak256(abi.encode(resultHash))` of its own re-execution
    ///         (non-zero, not the executor's). A successful one votes for the executor's seal and must carry
    ///         `evidenceHash = keccak256(abi.encode(resultHash, msg.sender))` (non-zero), which the ledger keeps for
    ///         refuteFalseValidation.
    function submitValidation(uint256 taskId, bool ok, bytes32 evidenceHash) external;

    /// @notice Refutes a successful validation (or a vote to uphold) of `validator` whose evidence is not bound to
    ///         the task's result (anyone, from the end of the task's epoch's Dispute phase until the end of its
    ///         Claim phase, only for Completed tasks whose dispute, if any, is no longer open: Upheld or
    ///         Unresolved): `resultHash` must hash to the task's seal. Slashes `falseValidationSlashBps` of the
    ///         validator's stake plus unbonding stake, pays `accuserRewardBps` of it to the caller's provider (if the
    ///         caller is a registered node), and forgets the evidence (one report per validation).
    function refuteFalseValidation(uint256 taskId, address validator, bytes32 resultHash) external;

    /// @notice The evidence `validator` gave with its successful validation of the task or its vote to uphold it
    ///         (0: none, a failed validation, a vote to invalidate, or already refuted).
    function okEvidenceHashFor(uint256 taskId, address validator) external view returns (bytes32);

    /// @notice Votes on the task's open dispute with the caller's power, until votingEndOf(taskId). A vote to
    ///         invalidate (`invalid`) carries the caller's seal as `evidenceHash`, `keccak256(abi.encode(resultHash))`
    ///         of its own re-execution (non-zero, not the executor's; it is not kept). A vote to uphold counts for
    ///         the executor's seal and must carry `evidenceHash = keccak256(abi.encode(resultHash, msg.sender))`
    ///         (non-zero), kept like a successful validation's for refuteFalseValidation.
    function vote(uint256 taskId, bool invalid, bytes32 evidenceHash) external;

    /// @notice Ends the task's open dispute once its voting is over (anyone): no seal won a majority, so it ends
    ///         Unresolved (nobody slashed, the task stands). A seal that wins a majority ends it at once.
    function resolveDispute(uint256 taskId) external;

    /// @notice Settles `node`'s work of `epoch` (all its runs, at most MAX_RUNS_PER_EPOCH), once, after the
    ///         epoch's Dispute phase (SETTLEMENT_ROLE): pays it from each run's escrow to `provider`, which
    ///         the caller looked up (refused while any of the node's disputes of the epoch is open), or releases
    ///         it back to each run's escrow when `provider` is the zero address. Records `outcome` and the total
    ///         in the node's record and clears its runs and their work. Emits WorkPaid or WorkReleased for each
    ///         run with work; the settler announces the settlement itself (Settlement: Claimed, ClaimExpired).
    /// @param epoch The epoch.
    /// @param node The node.
    /// @param provider Where the work is paid; the zero address releases it.
    /// @param outcome The settler's flags (non-zero), kept in the node's record (see NodeEpochRecord).
    /// @return total Amount paid or released.
    function settleWork(uint64 epoch, address node, address provider, uint8 outcome) external returns (uint256 total);

    function parameters() external view returns (Parameters memory);

    function taskOf(uint256 taskId) external view returns (Task memory);

    function disputeOf(uint256 taskId) external view returns (Dispute memory);

    /// @notice Power voting `seal` in the task's dispute (for the executor's seal: `validWeight`, successful
    ///         validations made before the dispute included).
    function sealTallyOf(uint256 taskId, bytes32 seal) external view returns (uint256);

    /// @notice When votes on the task's open dispute close: a full Dispute window after it opened, at the
    ///         earliest the end of the epoch's Dispute phase, at the latest the end of its Claim phase.
    function votingEndOf(uint256 taskId) external view returns (uint64);

    /// @notice Number of tasks ever created (ids run from 1 to taskCount).
    function taskCount() external view returns (uint256);

    /// @notice Number of tasks created in `epoch`.
    function epochTaskCount(uint64 epoch) external view returns (uint256);

    /// @notice The `index`-th task created in `epoch` (reverts past the last).
    function epochTaskAt(uint64 epoch, uint256 index) external view returns (uint256 taskId);

    /// @notice Whether `node` validated `taskId` (or voted on its dispute).
    function hasValidated(uint256 taskId, address node) external view returns (bool);

    /// @notice The tasks `node` validated (or voted on) among ids `256·word` to `256·word + 255`: bit `i` is set
    ///         when it did task `256·word + i`. One read answers a claim's whole duty check when the epoch's
    ///         tasks fit in one word.
    function validationWordOf(address node, uint256 word) external view returns (uint256 bits);

    /// @notice `node`'s record of `epoch` and the epoch's tasks (with its duty salt): what a claim needs from the
    ///         ledger, in one call. Any `node` gives the epoch's tasks.
    function nodeEpochOf(uint64 epoch, address node)
        external
        view
        returns (NodeEpochRecord memory record, EpochTasks memory tasks);

    /// @notice Enrolled members of `runId` in `epoch` and their total weight.
    function enrollmentOf(uint256 runId, uint64 epoch) external view returns (uint256 count, uint256 totalWeight);

    function isEnrolled(uint256 runId, uint64 epoch, address node) external view returns (bool);

    /// @notice The node the draw of `taskId` in `runId` and `epoch` lands on at `attempt` (0-based), ignoring
    ///         membership changes. Reverts when nobody is enrolled.
    function drawAssignee(uint256 runId, uint64 epoch, uint256 taskId, uint256 attempt) external view returns (address);

    /// @notice Whether `seed` obliges `validator` to validate `taskId` (the rule in the notice, with the salt of
    ///         the task's epoch). False for the executor and for validators without power in the task's epoch.
    function isValidationDuty(uint256 taskId, address validator, bytes32 seed) external view returns (bool);

    /// @notice Work credited to `node` in `epoch`, per run, and whether it was settled (paid or released).
    ///         Empty once settled: the settlement clears the runs and their work (the total stays in `nodeEpochOf`).
    function workOf(uint64 epoch, address node)
        external
        view
        returns (uint256[] memory runIds, uint256[] memory amounts, bool settled);

    /// @notice Disputes of `epoch` still open in which `node` is the executor or the accuser.
    function openDisputesOf(uint64 epoch, address node) external view returns (uint256);
}
