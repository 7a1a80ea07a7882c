/**
 * The executor's check of the validations of its own tasks (docs/SECURITY.md §3.7). The chain holds only the
 * seal of a task's result, `keccak256(abi.encode(resultHash))`; a validator that re-executed the task knows
 * `resultHash` and posts `keccak256(abi.encode(resultHash, validator))` with its successful validation. A
 * successful validation with any other evidence did not come from re-executing (the validator copied the seal,
 * or made evidence up): this node, which knows `resultHash`, records it when it sees the TaskValidated event
 * (or, for a vote to uphold, which carries the same evidence, the DisputeVote event), and reports it with
 * `TaskLedger.refuteFalseValidation` once the epoch's Dispute phase is over and the task's dispute, if any, is
 * no longer open (before, the report would reveal the result hash to validators and voters still to come),
 * until its Claim phase ends. The
 * validator loses `falseValidationSlashBps` of its stake; this node's provider receives `accuserRewardBps` of it.
 *
 * Kept in SQLite (`economy_false_validations`), so that a restarted miner still reports what it recorded.
 * `reported`: 0 to report, 1 reported, 2 given up (the chain refused it, or its window closed).
 */
import type { Chain } from "../shared/chain.js";
import type { EpochClock } from "../shared/epochs.js";
import type { Logger } from "../shared/log.js";
import type { Metrics } from "../shared/metrics.js";
import type { KeeperStore } from "../shared/store.js";
import { validationEvidence } from "../shared/task-hash.js";
import { TxRevertedError, type TxSender } from "../shared/tx.js";

/** A step that is not due yet (the chain is a second behind): retried quietly on the next tick. */
export class NotYet extends Error {}

/**
 * The result hash this node computed for one of its own ledger tasks and completed it with (its seal is on
 * chain), with the task's epoch; undefined for other nodes' tasks and tasks it did not complete.
 */
export type OwnResult = (ledgerTaskId: string) => { resultHash: string; epoch: string } | undefined;

export interface FalseValidationsOptions {
  chain: Chain;
  tx: TxSender;
  store: KeeperStore;
  clock: EpochClock;
  /** Subsystem "TaskValidation". */
  logger: Logger;
  metrics: Metrics;
  ownResult: OwnResult;
}

const TO_REPORT = 0;
const REPORTED = 1;
const GIVEN_UP = 2;

export class FalseValidations {
  private readonly reports;

  constructor(private readonly options: FalseValidationsOptions) {
    this.reports = options.metrics.counter(
      "miner_false_validation_reports_total",
      "Successful validations of this node's tasks whose evidence was not bound to the result, by outcome (recorded, reported, refused)",
      ["outcome"],
    );
    options.store.db.exec(`
      CREATE TABLE IF NOT EXISTS economy_false_validations (
        task_id TEXT NOT NULL, validator TEXT NOT NULL, epoch TEXT NOT NULL, reported INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (task_id, validator)
      );
    `);
  }

  /** A TaskValidated event: records a successful validation of this node's task whose evidence is not bound. */
  observe(taskId: bigint, validator: string, ok: boolean, evidence: string): boolean {
    if (!ok) return false;
    const own = this.options.ownResult(taskId.toString());
    if (!own) return false;
    if (validationEvidence(own.resultHash, validator).toLowerCase() === evidence.toLowerCase()) return false;
    const inserted = this.options.store.db
      .prepare("INSERT OR IGNORE INTO economy_false_validations (task_id, validator, epoch) VALUES (?, ?, ?)")
      .run(taskId.toString(), validator, own.epoch);
    if (inserted.changes === 0) return false;
    this.reports.inc({ outcome: "recorded" });
    this.options.logger.warn(
      { taskId: taskId.toString(), epoch: own.epoch, validator },
      "a validator said ok to this node's task with evidence not bound to its result (it did not re-execute): reporting it after the Dispute phase",
    );
    return true;
  }

  /** Epochs before `current` with false validations to report, in their Claim phase (the report window). */
  async due(current: bigint): Promise<string[]> {
    const { store, clock, logger } = this.options;
    const rows = store.db
      .prepare("SELECT DISTINCT epoch FROM economy_false_validations WHERE reported = ? ORDER BY CAST(epoch AS INTEGER)")
      .all(TO_REPORT) as { epoch: string }[];
    const due: string[] = [];
    for (const { epoch: e } of rows) {
      if (BigInt(e) >= current) break;
      const phase = await clock.phaseOf(BigInt(e));
      if (phase === "Closed") {
        logger.warn({ epoch: e }, "the report window of this epoch closed before its false validations were reported");
        store.db.prepare("UPDATE economy_false_validations SET reported = ? WHERE epoch = ? AND reported = ?").run(GIVEN_UP, e, TO_REPORT);
      } else if (phase === "Claim") {
        due.push(e);
      }
    }
    return due;
  }

  /** Reports the recorded false validations of `epoch` (its Claim phase). Returns how many were reported. */
  async report(epoch: string): Promise<number> {
    const { store, chain, tx, logger } = this.options;
    const ledger = chain.contracts.taskLedger;
    const rows = store.db
      .prepare("SELECT task_id, validator FROM economy_false_validations WHERE epoch = ? AND reported = ?")
      .all(epoch, TO_REPORT) as { task_id: string; validator: string }[];
    const mark = (taskId: string, validator: string, reported: number) =>
      store.db.prepare("UPDATE economy_false_validations SET reported = ? WHERE task_id = ? AND validator = ?").run(reported, taskId, validator);
    let count = 0;
    let deferred = 0;
    for (const { task_id, validator } of rows) {
      const fields = { taskId: task_id, epoch, validator };
      const own = this.options.ownResult(task_id);
      if (!own) {
        mark(task_id, validator, GIVEN_UP);
        continue;
      }
      try {
        const receipt = await tx.send(
          "refuteFalseValidation",
          () => ledger.refuteFalseValidation(BigInt(task_id), validator, own.resultHash),
          { subsystem: "TaskValidation", ...fields },
        );
        let slashed = "0";
        let reward = "0";
        for (const entry of receipt.logs) {
          try {
            const parsed = ledger.interface.parseLog(entry);
            if (parsed?.name === "FalseValidationRefuted") {
              slashed = parsed.args.slashed.toString();
              reward = parsed.args.reward.toString();
            }
          } catch {
            // another contract's log
          }
        }
        mark(task_id, validator, REPORTED);
        count++;
        this.reports.inc({ outcome: "reported" });
        logger.warn(
          { ...fields, slashed, reward, tx: receipt.hash },
          `reported the false validation of task ${task_id} by ${validator}: ${slashed} slashed, ${reward} paid to this node's provider`,
        );
      } catch (error) {
        if (!(error instanceof TxRevertedError)) throw error;
        // The chain is a second behind this node's clock (the window opens there a little later), or the task's
        // dispute is still open (resolved once its votes are over): again on a later tick.
        if (
          error.errorName === "TaskLedgerDisputeOpen" ||
          (error.errorName === "TaskLedgerReportClosed" && (await this.options.clock.phaseOf(BigInt(epoch))) === "Claim")
        ) {
          deferred++;
          continue;
        }
        // Reported by someone else already, the task invalidated meanwhile, or the window closed.
        mark(task_id, validator, GIVEN_UP);
        this.reports.inc({ outcome: "refused" });
        logger.warn({ ...fields, err: error.message }, "the chain refused the report of a false validation");
      }
    }
    if (deferred > 0) throw new NotYet(`${deferred} false validation(s) of epoch ${epoch} cannot be reported yet`);
    return count;
  }
}
