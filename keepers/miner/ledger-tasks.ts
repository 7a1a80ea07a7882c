/**
 * The miner's side of TaskLedger tasks (a spec with `ledgerTaskId`, sent by the run's master in chain
 * assignment mode):
 *
 *   - before starting one, the node checks the chain: the task exists, is drawn to this node, belongs to
 *     the node's run, is still Assigned, its epoch's Work phase is not over, and the spec received hashes
 *     to the spec hash on chain. Anything else is refused (403 when the task is another node's, 409
 *     otherwise) with the reason, and nothing starts;
 *   - once it reaches a final state, the node computes its result hash (exit code and storage folder,
 *     task-result.ts) and reports its seal, `keccak256(abi.encode(resultHash))`, with `completeTask` before
 *     the epoch's end: the result hash itself stays with the node (SQLite), so that validators must re-execute
 *     the task to find it, and so that the node can report the validations that did not (economy.ts). It is
 *     logged at debug only (info shows the seal). What was reported is kept
 *     in SQLite (state.ts), so a restarted miner neither reports twice nor forgets to report; nothing is
 *     sent when the chain no longer has the task Assigned to this node. The transaction itself is signed
 *     and recorded before it is broadcast (tx.ts `sendTracked`): a miner killed before reading its receipt
 *     finishes that same transaction after the restart, even while it still waits in the node's pool.
 *
 *   - it serves the spec of each task it executes (`specFor`, `GET /ledger/tasks/:id/spec` of the miner) to
 *     nodes with power in the task's epoch, as the master does: the validators that must re-execute the
 *     task still get it when the master withholds it, and nodes of other runs, which do not know the
 *     task's master, can fulfil their duties on it.
 *
 * A task that never ran to an exit (its image missing, the engine failing) or that the master stopped is
 * not reported: its result would claim work that was not done, and validators re-running it could not
 * reproduce it. It expires at the end of its epoch.
 *
 * Fault injection for the integration tests only: CN_FAULT_WRONG_RESULT=1 reports a corrupted result hash
 * (a dishonest executor), like CN_FAULT_WRONG_CHALLENGE for challenges.
 */
import { concat, getAddress, keccak256, toUtf8Bytes } from "ethers";
import type { Chain } from "../shared/chain.js";
import { EpochClock } from "../shared/epochs.js";
import { HttpError } from "../shared/http.js";
import type { Logger } from "../shared/log.js";
import { resultSeal, specHash } from "../shared/task-hash.js";
import { TxRevertedError, type TxSender } from "../shared/tx.js";
import type { DockerRuntime, TaskStatus } from "./docker-runtime.js";
import type { MinerState } from "./state.js";
import { computeTaskResult } from "./task-result.js";
import { LEDGER_TASK_ID_PATTERN, type ValidTaskSpec } from "./task-spec.js";

export const LEDGER_TASK_STATUS = ["None", "Assigned", "Completed", "Invalidated", "Expired"] as const;
const ASSIGNED = 1;
const COMPLETED = 2;

export interface LedgerTasksOptions {
  chain: Chain;
  tx: TxSender;
  state: MinerState;
  runtime: DockerRuntime;
  /** Subsystem "Tasks". */
  logger: Logger;
  node: string;
  runId: bigint;
  /** Report a corrupted result hash (default: CN_FAULT_WRONG_RESULT=1). */
  faultWrongResult?: boolean;
  /** First delay between report attempts after a transient failure; doubles up to 30 s. Default 1000. */
  retryBaseMs?: number;
  /** The epoch clock (default: one over the chain's EpochManager). */
  clock?: EpochClock;
}

export class LedgerTasks {
  private readonly clock: EpochClock;
  private readonly reporting = new Map<string, Promise<void>>();
  private readonly faultWrongResult: boolean;
  private readonly wakers = new Set<() => void>();
  private stopped = false;

  constructor(private readonly options: LedgerTasksOptions) {
    this.clock = options.clock ?? new EpochClock(options.chain.contracts.epochManager);
    this.faultWrongResult = options.faultWrongResult ?? process.env.CN_FAULT_WRONG_RESULT === "1";
  }

  /**
   * Checks a spec with `ledgerTaskId` against the chain before it starts, and records it. `known`: the
   * runtime already has a task with this id (a master retrying its dispatch). Throws HttpError 403/409.
   */
  async admit(spec: ValidTaskSpec, known: boolean): Promise<void> {
    const { state, logger } = this.options;
    const ledgerTaskId = spec.ledgerTaskId!;
    const refuse = (status: number, reason: string): never => {
      logger.warn({ taskId: spec.taskId, ledgerTaskId, status, reason }, "ledger task refused");
      throw new HttpError(status, reason);
    };
    const byTask = state.ledgerTask(spec.taskId);
    const byLedgerId = state.ledgerTaskByLedgerId(ledgerTaskId);
    if (byTask && byTask.ledgerTaskId === ledgerTaskId) return; // the same dispatch again: already checked and started
    if (byTask) refuse(409, `task ${spec.taskId} already executes ledger task ${byTask.ledgerTaskId} on this node, not ${ledgerTaskId}`);
    if (byLedgerId) refuse(409, `ledger task ${ledgerTaskId} already runs on this node as task ${byLedgerId.taskId}`);
    if (known) refuse(409, `task ${spec.taskId} already runs on this node without ledger task ${ledgerTaskId}`);

    const id = BigInt(ledgerTaskId);
    const task = await this.options.chain.contracts.taskLedger.taskOf(id).catch((error: unknown) => {
      if (isUnknownTask(error)) return undefined;
      throw error;
    });
    const status = task ? Number(task.status) : 0;
    if (!task || status === 0) return refuse(409, `ledger task ${ledgerTaskId} does not exist on chain`);
    const assignee = getAddress(task.assignee);
    if (assignee !== getAddress(this.options.node)) {
      refuse(403, `ledger task ${ledgerTaskId} is drawn to ${assignee}, not to this node (${getAddress(this.options.node)})`);
    }
    if (task.runId !== BigInt(spec.runId) || task.runId !== this.options.runId) {
      refuse(409, `ledger task ${ledgerTaskId} belongs to run ${task.runId}, not to run ${spec.runId}`);
    }
    if (status !== ASSIGNED) refuse(409, `ledger task ${ledgerTaskId} is ${statusName(status)} on chain, not Assigned`);
    const received = specHash(spec);
    if (received.toLowerCase() !== task.specHash.toLowerCase()) {
      refuse(409, `the spec received hashes to ${received}, but ledger task ${ledgerTaskId} has spec hash ${task.specHash}`);
    }
    const phase = await this.clock.phaseOf(task.epoch);
    if (phase !== "Work") refuse(409, `ledger task ${ledgerTaskId} is of epoch ${task.epoch}, which is in its ${phase} phase: it can no longer be completed`);
    state.addLedgerTask({ taskId: spec.taskId, ledgerTaskId, runId: spec.runId, epoch: task.epoch.toString(), spec });
    logger.info(
      { taskId: spec.taskId, ledgerTaskId, epoch: task.epoch.toString(), units: task.units.toString(), pay: task.pay.toString(), specHash: received },
      "ledger task checked on chain (drawn to this node, Assigned, spec hash matches): starting it",
    );
  }

  /**
   * The spec of a ledger task this node executes, for `signer` if it has power in the task's epoch (the
   * master's rule: those are the nodes that may have to re-execute it). 400 for a malformed id, 404 for a
   * task this node did not execute, 403 for a signer without power.
   */
  async specFor(ledgerTaskId: string, signer: string): Promise<ValidTaskSpec> {
    if (!LEDGER_TASK_ID_PATTERN.test(ledgerTaskId)) throw new HttpError(400, "ledgerTaskId must be a positive decimal integer");
    const record = this.options.state.ledgerTaskByLedgerId(ledgerTaskId);
    if (!record?.spec) throw new HttpError(404, `this node executes no ledger task ${ledgerTaskId}`);
    const power = await this.options.chain.contracts.proofOfCompute.powerOf(BigInt(record.epoch), signer);
    if (power === 0n) {
      this.options.logger.info({ ledgerTaskId, epoch: record.epoch, signer }, "task spec refused: the signer has no power in the task's epoch");
      throw new HttpError(403, `${signer} has no power in epoch ${record.epoch}: only nodes with power in a task's epoch may read its spec`);
    }
    this.options.logger.debug({ ledgerTaskId, signer, power: power.toString() }, "task spec served to a node with power in its epoch");
    return record.spec;
  }

  /** The task reached a final state: reports its result on chain (once; retried until the epoch's end). */
  finished(taskId: string, status: TaskStatus): void {
    const record = this.options.state.ledgerTask(taskId);
    if (!record || record.phase === "completed" || record.phase === "closed" || this.stopped) return;
    if (this.reporting.has(taskId)) return;
    const run = this.report(taskId, status)
      .catch((error: Error) => this.options.logger.error({ taskId, ledgerTaskId: record.ledgerTaskId, err: error.message }, "reporting the ledger task failed"))
      .finally(() => this.reporting.delete(taskId));
    this.reporting.set(taskId, run);
  }

  /**
   * After the runtime adopted its containers: tasks left open by an earlier process whose container is
   * gone cannot be reported (nothing to hash); the others are reported when their container is final.
   */
  resume(): void {
    const { state, runtime, logger } = this.options;
    for (const record of state.openLedgerTasks()) {
      const status = runtime.status(record.taskId);
      if (!status) {
        state.updateLedgerTask(record.taskId, { phase: "closed", note: "its container was gone after a restart" });
        logger.warn({ taskId: record.taskId, ledgerTaskId: record.ledgerTaskId }, "ledger task not reported: its container was gone after a restart");
      } else if (status.state === "completed" || status.state === "failed" || status.state === "stopped") {
        this.finished(record.taskId, status);
      }
    }
  }

  /** Resolves when no report is in flight (tests). */
  async idle(): Promise<void> {
    while (this.reporting.size > 0) await Promise.all([...this.reporting.values()]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const wake of this.wakers) wake();
    await Promise.all([...this.reporting.values()]);
  }

  private async report(taskId: string, status: TaskStatus): Promise<void> {
    const { state, logger, chain, tx } = this.options;
    const ledger = chain.contracts.taskLedger;
    const record = state.ledgerTask(taskId)!;
    const id = BigInt(record.ledgerTaskId);
    const at = { taskId, ledgerTaskId: record.ledgerTaskId, epoch: record.epoch };
    const close = (note: string, warn = true) => {
      state.updateLedgerTask(taskId, { phase: "closed", note });
      (warn ? logger.warn.bind(logger) : logger.info.bind(logger))({ ...at, state: status.state, exitCode: status.exitCode }, `ledger task not reported: ${note}`);
    };
    if (status.state === "stopped") return close("the task was stopped before it finished");
    if (status.exitCode === null) return close(`the task never ran to an exit (${status.error ?? status.state})`);

    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        // A completeTask recorded by this process or an earlier one (a crash between broadcasting it and
        // reading its receipt): finished, never replaced by a second one while it may still be mined.
        const recorded = state.ledgerTask(taskId)!.completeTx;
        if (recorded) {
          const minedBefore = (await chain.provider.send("eth_getTransactionReceipt", [recorded.hash])) !== null;
          let receipt;
          try {
            receipt = await tx.resumeTracked("completeTask", recorded, { subsystem: "Tasks", ...at });
          } catch (error) {
            if (!(error instanceof TxRevertedError)) throw error;
            // Mined but reverted: nothing was reported. The chain read below says what is left to do.
            state.updateLedgerTask(taskId, { completeTx: null });
          }
          if (receipt) {
            state.updateLedgerTask(taskId, { phase: "completed", txHash: receipt.hash, completeTx: null });
            logger.info(
              { ...at, tx: receipt.hash, block: receipt.blockNumber },
              minedBefore
                ? "ledger task already completed on chain (an earlier report was mined)"
                : "ledger task completed on chain by its recorded completeTask, broadcast again after a restart or a failed wait",
            );
            return;
          }
          if (state.ledgerTask(taskId)!.completeTx) {
            // Its nonce went to another transaction: it can never be mined, so a new one cannot make two.
            state.updateLedgerTask(taskId, { completeTx: null });
          }
        }
        const task = await ledger.taskOf(id);
        const onChain = Number(task.status);
        if (onChain !== ASSIGNED) {
          const current = state.ledgerTask(taskId)!;
          if (onChain === COMPLETED && getAddress(task.assignee) === getAddress(this.options.node) && current.resultHash !== null) {
            state.updateLedgerTask(taskId, { phase: "completed" });
            logger.info({ ...at, seal: task.resultHash }, "ledger task already completed on chain (an earlier report was mined)");
            return;
          }
          return close(`the chain has it ${statusName(onChain)}, no longer Assigned`);
        }
        const phase = await this.clock.phaseOf(task.epoch);
        if (phase !== "Work") return close(`epoch ${task.epoch} is in its ${phase} phase: completion closed at its end`);

        let reported = state.ledgerTask(taskId)!.resultHash;
        if (reported === null) {
          const result = await computeTaskResult(this.options.runtime.storageDir(taskId), status.exitCode);
          for (const file of result.skipped) logger.warn({ ...at, file: file.name, reason: file.reason }, "file left out of the result hash");
          reported = result.resultHash;
          // The result hash is what validators must find by re-executing: never at info, where logs travel.
          logger.debug({ ...at, resultHash: result.resultHash }, "result hash");
          logger.info({ ...at, exitCode: result.exitCode, files: result.files.length }, "result hash computed from the exit code and the storage folder");
          if (this.faultWrongResult) {
            reported = keccak256(concat([result.resultHash, toUtf8Bytes("CN_FAULT_WRONG_RESULT")]));
            logger.warn({ ...at, honestSeal: resultSeal(result.resultHash), seal: resultSeal(reported) }, "CN_FAULT_WRONG_RESULT: reporting a corrupted result hash");
          }
          // Kept before sending: a restarted miner reports the same hash, never a second one.
          state.updateLedgerTask(taskId, { phase: "completing", resultHash: reported });
        }
        const seal = resultSeal(reported);
        const receipt = await tx.sendTracked(
          "completeTask",
          () => ledger.completeTask.populateTransaction(id, seal),
          { subsystem: "Tasks", ...at, seal },
          (signed) => state.updateLedgerTask(taskId, { completeTx: signed }),
        );
        state.updateLedgerTask(taskId, { phase: "completed", txHash: receipt.hash, completeTx: null });
        logger.info({ ...at, seal, tx: receipt.hash, block: receipt.blockNumber }, "ledger task completed on chain with the seal of its result hash");
        return;
      } catch (error) {
        if (error instanceof TxRevertedError) {
          if (error.errorName === "TaskLedgerCompletionClosed") return close(`completion closed: ${error.message}`);
          if (error.errorName === "TaskLedgerNotAssignee" || error.errorName === "TaskLedgerUnknownTask") return close(error.message);
          // Read the chain again: completed by an earlier report, or expired meanwhile.
          if (error.errorName === "TaskLedgerInvalidStatus" && attempt < 3) continue;
          if (attempt >= 5) return close(`completeTask keeps reverting: ${error.message}`);
        }
        const delayMs = Math.min(30_000, (this.options.retryBaseMs ?? 1_000) * 2 ** Math.min(attempt, 10));
        logger.warn({ ...at, attempt: attempt + 1, err: (error as Error).message, retryInMs: delayMs }, "reporting the ledger task failed; retrying");
        await this.sleep(delayMs);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakers.add(done);
    });
  }
}

export function statusName(status: number): string {
  return LEDGER_TASK_STATUS[status] ?? `status ${status}`;
}

function isUnknownTask(error: unknown): boolean {
  const e = error as { revert?: { name?: string }; message?: string };
  return e?.revert?.name === "TaskLedgerUnknownTask" || String(e?.message ?? "").includes("TaskLedgerUnknownTask");
}
