/**
 * Chain assignment (the master's default mode): the buyer's tasks become TaskLedger tasks, and each goes
 * to the node the chain drew for it, and to no other.
 *
 * One pass of the queue (every `tickMs`, and at once when a task is queued):
 *   1. recovers createTask transactions an earlier pass or process recorded but did not finish (the
 *      transaction is signed and persisted before it is broadcast, so a crash never creates a second
 *      on-chain task: after a restart the recorded transaction is found mined, broadcast again, or known
 *      to be impossible because its nonce went to another transaction);
 *   2. expires on-chain tasks still Assigned after their epoch's Work phase (anyone may; their pay returns
 *      to the run's escrow) and queues again a buyer's task whose assignee never took it, at most
 *      `maxRequeues` times;
 *   3. sends drawn tasks to their assignee (signed POST /tasks with `ledgerTaskId`), retrying with backoff
 *      while the epoch's Work phase lasts;
 *   4. in the Work phase of an advanced epoch: enrolls the run's Healthy members that have power in it and
 *      are not enrolled yet (permissionless; so that tasks can be drawn even when a miner is slow to enroll
 *      itself), then, when the run has enrolled weight, creates the queued tasks on chain
 *      (`createTask(runId, specHash(spec), units)`), takes id and assignee from the TaskCreated log of the
 *      receipt, and sends each to its assignee.
 *
 * It also follows TaskLedger's events for the run's tasks and keeps the chain's view of each (status,
 * result hash, validations, dispute) for the buyer, and serves a task's exact spec to nodes with power in
 * its epoch (validators re-executing it).
 */
import { type Result, getAddress, type TransactionReceipt } from "ethers";
import type { Chain, ChainEvent } from "../shared/chain.js";
import { EpochClock, type PhaseName } from "../shared/epochs.js";
import { HttpError, type SignedClient } from "../shared/http.js";
import { type Logger, subsystem } from "../shared/log.js";
import { LoopHealth } from "../shared/loop-health.js";
import type { Metrics } from "../shared/metrics.js";
import { isExecutorSeal } from "../shared/seals.js";
import { specHash } from "../shared/task-hash.js";
import { TxRevertedError, type TxSender } from "../shared/tx.js";
import { DisputeStatus } from "../../scripts/lib/protocol.js";
import { LEDGER_TASK_ID_PATTERN, type TaskSpec } from "../miner/task-spec.js";
import type { NodeTracker } from "./nodes.js";
import { type ChainDisputeView, type ChainTaskView, type MasterTask, type TaskBook, taskStatusSchema } from "./tasks.js";

const TASK_STATUS = ["None", "Assigned", "Completed", "Invalidated", "Expired"] as const;
/** Phases after which an epoch's tasks can no longer be completed (its Work phase is over). */
const ENDED: ReadonlySet<PhaseName> = new Set(["Dispute", "Claim", "Closed"]);
/** createTask reverts that stop the whole pass: no queued task can be created now. */
const QUEUE_WIDE_REVERTS = new Set(["TaskLedgerNotWorkPhase", "TaskLedgerNoAssignee", "TaskLedgerRunNotActive", "TaskLedgerNotMaster"]);
/** createTask reverts that are about the task itself: it fails for good. */
const TASK_REVERTS = new Set(["TaskLedgerInvalidTask", "TrainingRunsInsufficientEscrow"]);
const CREATES_PER_PASS = 20;

export interface LedgerQueueOptions {
  chain: Chain;
  runId: bigint;
  tasks: TaskBook;
  nodes: Pick<NodeTracker, "get" | "healthyMembers">;
  client: SignedClient;
  tx: TxSender;
  logger: Logger;
  metrics: Metrics;
  /** Interval of the queue's passes (default 1000 ms). */
  tickMs?: number;
  /**
   * Several instances: whether this one may send transactions now (the leader lease, confirmed). A pass
   * that may not is skipped whole. Default: always.
   */
  mayWrite?: () => Promise<boolean>;
  /** New on-chain tasks for one buyer's task after the earlier ones expired undispatched (default 3). */
  maxRequeues?: number;
  /** Backoff of dispatches to an assignee that does not take its task (default 1 s doubling to 30 s). */
  dispatchRetry?: { baseMs: number; maxMs: number };
  /** The epoch clock (default: one over the chain's EpochManager). */
  clock?: EpochClock;
  /**
   * Least time left in the Work phase for a new on-chain task, in seconds (default: a fifth of the Work
   * phase, at least 5 s and at most 600 s): a task created later could not be run and completed before
   * the epoch ends, and would only expire. Tasks wait for the next epoch's Work phase instead.
   */
  minWorkLeftSec?: number;
}

export class LedgerQueue {
  readonly clock: EpochClock;
  private readonly log: { tasks: Logger; disputes: Logger; power: Logger };
  private readonly maxRequeues: number;
  private readonly retry: { baseMs: number; maxMs: number };
  /** Per epoch: members this master enrolled, found enrolled, or found without power (nothing to do). */
  private readonly enrollDone = new Map<bigint, Set<string>>();
  private readonly powerFinal = new Set<bigint>();
  private readonly powerCache = new Map<string, bigint>();
  private readonly counters;
  private lastWaiting: string | undefined;
  private passing: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  /** Backoff and log lines while passes fail (the RPC node unreachable). */
  private readonly health: LoopHealth;
  /** Passes follow each other every `tickMs` (start) ... */
  private looping = false;
  /** ... until stop(), which also cuts a pass in flight short. */
  private stopped = false;

  constructor(private readonly options: LedgerQueueOptions) {
    this.clock = options.clock ?? new EpochClock(options.chain.contracts.epochManager);
    this.log = {
      tasks: subsystem(options.logger, "Tasks"),
      disputes: subsystem(options.logger, "Disputes"),
      power: subsystem(options.logger, "Power"),
    };
    this.maxRequeues = options.maxRequeues ?? 3;
    this.health = new LoopHealth({ what: "ledger queue pass", logger: this.log.tasks, intervalMs: options.tickMs ?? 1_000 });
    this.retry = options.dispatchRetry ?? { baseMs: 1_000, maxMs: 30_000 };
    this.counters = {
      created: options.metrics.counter("master_ledger_tasks_created_total", "On-chain tasks created by this master"),
      dispatched: options.metrics.counter("master_ledger_dispatches_total", "Dispatches of on-chain tasks to their assignee, by outcome", ["result"]),
      expired: options.metrics.counter("master_ledger_tasks_expired_total", "On-chain tasks expired by this master"),
      requeued: options.metrics.counter("master_ledger_requeues_total", "Buyer's tasks queued again after their on-chain task expired, by outcome", ["result"]),
      enrolled: options.metrics.counter("master_ledger_enrollments_total", "Members enrolled in the run's draws by this master"),
    };
    options.tasks.onQueued = () => this.wake();
  }

  start(): void {
    this.looping = true;
    this.wake();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.looping = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.passing;
  }

  /** Runs a pass now (or right after the one in flight); resolves when it is done. */
  pass(): Promise<void> {
    if (this.passing) {
      this.again = true;
      return this.passing;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.passing = this.runPass().finally(() => {
      this.passing = undefined;
      if (!this.looping || this.stopped) return;
      const delay = this.again ? 0 : this.health.delayMs;
      this.again = false;
      this.timer = setTimeout(() => void this.pass(), delay);
    });
    return this.passing;
  }

  private wake(): void {
    if (this.looping && !this.stopped) void this.pass();
  }

  private async runPass(): Promise<void> {
    if (this.options.mayWrite && !(await this.options.mayWrite().catch(() => false))) return;
    const steps: Array<[string, () => Promise<void>]> = [
      ["recover createTask", () => this.recoverCreating()],
      ["expire", () => this.expireEnded()],
      ["requeue", () => this.requeueExpired()],
      ["dispatch", () => this.dispatchDue()],
      ["create", () => this.createQueued()],
    ];
    // Each step runs whatever the others do; the pass failed if one of them did.
    const failed: Array<{ step: string; error: unknown }> = [];
    for (const [name, step] of steps) {
      if (this.stopped) return;
      try {
        await step();
      } catch (error) {
        failed.push({ step: name, error });
      }
    }
    if (failed.length === 0) this.health.succeeded();
    else this.health.failed(failed[0].error, { step: failed[0].step, failedSteps: failed.map((f) => f.step) });
  }

  // ------------------------------------------------------------------ 1. createTask recovery

  private async recoverCreating(): Promise<void> {
    const { tasks, tx } = this.options;
    for (const task of tasks.inStates(["creating"])) {
      if (!task.createTx) {
        // The process stopped before the transaction was signed and recorded: nothing was sent.
        tasks.update(task.taskId, { state: "queued", waiting: "createTask was never sent (the master stopped before signing it); queued again" });
        continue;
      }
      const fields = { taskId: task.taskId, tx: task.createTx.hash, nonce: task.createTx.nonce };
      this.log.tasks.info(fields, "createTask recorded but its receipt not read: finishing it (never sending a second one)");
      let receipt: TransactionReceipt | undefined;
      try {
        receipt = await tx.resumeTracked("createTask", task.createTx, { subsystem: "Tasks", taskId: task.taskId });
      } catch (error) {
        if (error instanceof TxRevertedError) {
          tasks.update(task.taskId, { state: "queued", createTx: null, waiting: `createTask ${task.createTx.hash} was mined but reverted; queued again` });
          continue;
        }
        throw error;
      }
      if (!receipt) {
        tasks.update(task.taskId, { state: "queued", createTx: null, waiting: `createTask ${task.createTx.hash} can never be mined (its nonce went to another transaction); queued again` });
        continue;
      }
      await this.onCreated(task, receipt);
    }
  }

  // ------------------------------------------------------------------ 2. expiry and requeue

  /** Expires the run's on-chain tasks still Assigned once their epoch's Work phase is over. */
  private async expireEnded(): Promise<void> {
    const { tasks, tx, chain } = this.options;
    const ledger = chain.contracts.taskLedger;
    const phases = new Map<string, PhaseName>();
    for (const { taskId, view } of tasks.assignedChainViews()) {
      if (this.stopped) return;
      if (!phases.has(view.epoch)) phases.set(view.epoch, await this.clock.phaseOf(BigInt(view.epoch)));
      const phase = phases.get(view.epoch)!;
      if (!ENDED.has(phase)) continue;
      const id = BigInt(view.taskId);
      const fields = { taskId, ledgerTaskId: view.taskId, epoch: view.epoch, assignee: view.assignee, phase };
      const onChain = await ledger.taskOf(id);
      const status = TASK_STATUS[Number(onChain.status)] ?? "None";
      if (status !== "Assigned") {
        // Completed or expired while this master was not looking (its events arrive too; this is the same).
        this.saveView(taskId, { ...view, status: status as ChainTaskView["status"], resultHash: status === "Completed" ? onChain.resultHash : view.resultHash });
        continue;
      }
      try {
        const receipt = await tx.send("expireTask", () => ledger.expireTask(id), { subsystem: "Tasks", ...fields });
        const expired = this.parse(receipt).find((e) => e.name === "TaskExpired" && BigInt(e.args.taskId) === id);
        const released = expired ? BigInt(expired.args.released).toString() : undefined;
        this.saveView(taskId, { ...view, status: "Expired", ...(released !== undefined ? { released } : {}) });
        this.counters.expired.inc();
        this.log.tasks.info({ ...fields, released: released ?? null }, "on-chain task expired: its epoch's Work phase ended before it was completed; its pay went back to the run's escrow");
      } catch (error) {
        if (error instanceof TxRevertedError && error.errorName === "TaskLedgerNotExpired") {
          this.log.tasks.debug({ ...fields, revert: error.message }, "expiry not due on chain yet");
          continue;
        }
        if (error instanceof TxRevertedError && error.errorName === "TaskLedgerInvalidStatus") continue; // read again next pass
        throw error;
      }
    }
  }

  /** Buyer's tasks whose on-chain task expired before its assignee took it: a new on-chain task, or failed. */
  private async requeueExpired(): Promise<void> {
    const { tasks } = this.options;
    for (const task of tasks.inStates(["assigned"])) {
      const current = task.ledgerTaskId === null ? undefined : tasks.chainView(task.ledgerTaskId)?.view;
      if (!current || current.status !== "Expired") continue;
      const history = tasks.chainViewsOf(task.taskId);
      const why =
        `ledger task ${current.taskId} (epoch ${current.epoch}) expired before its assignee ${current.assignee} took it ` +
        `(${task.dispatchTries} dispatch attempt${task.dispatchTries === 1 ? "" : "s"}${task.dispatchError ? `, last: ${task.dispatchError}` : ""})`;
      if (task.requeues >= this.maxRequeues) {
        const error =
          `gave up after ${history.length} on-chain tasks (${this.maxRequeues} re-queues): the chain drew ` +
          `${history.map((v) => `${v.assignee} (ledger task ${v.taskId}, epoch ${v.epoch})`).join(", ")} and none took the task`;
        tasks.update(task.taskId, { state: "failed", error, waiting: null });
        this.counters.requeued.inc({ result: "gave_up" });
        this.log.tasks.warn({ taskId: task.taskId, requeues: task.requeues, maxRequeues: this.maxRequeues }, `${why}; ${error}`);
        continue;
      }
      const requeues = task.requeues + 1;
      tasks.update(task.taskId, {
        state: "queued",
        node: "",
        ledgerTaskId: null,
        epoch: null,
        assignee: null,
        requeues,
        dispatchTries: 0,
        nextTryAt: null,
        dispatchError: null,
        waiting: `${why}; queued again for a new draw (re-queue ${requeues} of ${this.maxRequeues})`,
      });
      this.counters.requeued.inc({ result: "queued" });
      this.log.tasks.warn({ taskId: task.taskId, ledgerTaskId: current.taskId, requeues, maxRequeues: this.maxRequeues }, `${why}; queued again for a new on-chain task`);
    }
  }

  // ------------------------------------------------------------------ 3. dispatch

  private async dispatchDue(): Promise<void> {
    const now = Date.now();
    const phases = new Map<string, PhaseName>();
    for (const task of this.options.tasks.inStates(["assigned"])) {
      if (this.stopped) return;
      if (task.nextTryAt !== null && task.nextTryAt > now) continue;
      if (task.epoch === null) continue;
      if (!phases.has(task.epoch)) phases.set(task.epoch, await this.clock.phaseOf(BigInt(task.epoch)));
      if (phases.get(task.epoch) !== "Work") continue; // its epoch is over: the expiry pass takes it from here
      const view = task.ledgerTaskId === null ? undefined : this.options.tasks.chainView(task.ledgerTaskId)?.view;
      if (view && view.status !== "Assigned") continue;
      await this.dispatch(task);
    }
  }

  /** Sends the task to its assignee (and to no other node); schedules a retry when it does not take it. */
  private async dispatch(task: MasterTask): Promise<void> {
    const { tasks, nodes, client } = this.options;
    const assignee = task.assignee!;
    const spec: TaskSpec = { ...task.spec, taskId: task.taskId, ledgerTaskId: task.ledgerTaskId! };
    const fields = { taskId: task.taskId, ledgerTaskId: task.ledgerTaskId, epoch: task.epoch, miner: assignee, attempt: task.dispatchTries + 1 };
    const node = nodes.get(assignee);
    if (!node?.endpoint) {
      this.retryLater(task, `no endpoint known for the assignee (node state ${node?.state ?? "unknown to this master"})`);
      return;
    }
    tasks.update(task.taskId, { state: "dispatching" });
    let failure: string;
    try {
      const answer = await client.request<unknown>("POST", `${node.endpoint}/tasks`, { audience: assignee.toLowerCase(), body: spec });
      if (answer.status >= 200 && answer.status < 300) {
        const status = taskStatusSchema.safeParse(answer.body);
        const state = status.success && status.data.taskId === task.taskId ? status.data.state : "pending";
        tasks.update(task.taskId, { state, status: status.success ? status.data : null, waiting: null, nextTryAt: null, dispatchError: null });
        this.counters.dispatched.inc({ result: "taken" });
        this.log.tasks.info({ ...fields, state }, "task sent to the node the chain drew; it took it");
        return;
      }
      failure = `${answer.status} ${(answer.body as { error?: string })?.error ?? JSON.stringify(answer.body)}`;
    } catch (error) {
      failure = (error as Error).message;
    }
    this.retryLater(task, failure);
  }

  private retryLater(task: MasterTask, reason: string): void {
    const tries = task.dispatchTries + 1;
    const delayMs = Math.min(this.retry.maxMs, this.retry.baseMs * 2 ** Math.min(tries - 1, 20));
    const delay = delayMs >= 1_000 ? `${Math.round(delayMs / 1_000)} s` : `${delayMs} ms`;
    const waiting = `the assignee ${task.assignee} did not take it (${reason}); retrying in ${delay} until the end of epoch ${task.epoch}`;
    this.options.tasks.update(task.taskId, { state: "assigned", dispatchTries: tries, nextTryAt: Date.now() + delayMs, dispatchError: reason, waiting });
    this.counters.dispatched.inc({ result: "refused" });
    this.log.tasks.warn(
      { taskId: task.taskId, ledgerTaskId: task.ledgerTaskId, epoch: task.epoch, miner: task.assignee, attempt: tries, reason, retryInMs: delayMs },
      "the assignee did not take its task; it is never sent to another node: retrying until the epoch's end",
    );
  }

  // ------------------------------------------------------------------ 4. enrollment and creation

  private async createQueued(): Promise<void> {
    const { tasks, chain, runId } = this.options;
    const queued = tasks.inStates(["queued"], CREATES_PER_PASS);
    const { epoch, phase } = await this.clock.current();
    const beacon = epoch === 0n ? undefined : await this.clock.pocBeacon(epoch);
    if (phase === "Work" && beacon !== undefined) await this.enrollMembers(epoch);
    if (queued.length === 0) return;
    if (epoch === 0n) return this.waiting("the epoch clock has not started (before genesis): tasks are created in an epoch's Work phase", { epoch: 0 });
    if (beacon === undefined) return this.waiting(`epoch ${epoch} has not been advanced (no PoC beacon): nobody can be drawn in it`, { epoch: epoch.toString(), phase });
    if (phase !== "Work") return this.waiting(`epoch ${epoch} is in its ${phase} phase: tasks are created in the Work phase`, { epoch: epoch.toString(), phase });
    const timeline = await this.clock.timeline(epoch);
    const workSec = timeline.end - timeline.pocValidationEnd;
    const minLeft = this.options.minWorkLeftSec ?? Math.min(600, Math.max(5, workSec / 5));
    const left = timeline.end - this.clock.now();
    if (left < minLeft) {
      return this.waiting(`epoch ${epoch}'s Work phase ends in ${Math.floor(left)} s, too soon to run a task (at least ${minLeft} s): tasks wait for the next epoch`, {
        epoch: epoch.toString(),
        phase,
        workLeftSec: Math.floor(left),
      });
    }
    const [count, totalWeight] = await chain.contracts.taskLedger.enrollmentOf(runId, epoch);
    if (totalWeight === 0n) {
      return this.waiting(`no member of run ${runId} is enrolled with power in epoch ${epoch}: nobody to draw`, {
        epoch: epoch.toString(),
        phase,
        enrolled: Number(count),
        healthyMembers: this.options.nodes.healthyMembers().length,
      });
    }
    this.waiting(undefined, {});
    this.log.tasks.info(
      { epoch: epoch.toString(), phase, enrolled: Number(count), enrolledWeight: totalWeight.toString(), queued: queued.length },
      "Work phase with enrolled weight: creating the queued tasks on chain",
    );
    for (const task of queued) {
      if (this.stopped) return;
      const stop = await this.create(task, epoch, { count, totalWeight });
      if (stop) return;
    }
  }

  /** Creates one queued task on chain; returns true when no other queued task can be created now. */
  private async create(task: MasterTask, epoch: bigint, enrollment: { count: bigint; totalWeight: bigint }): Promise<boolean> {
    const { tasks, tx, chain, runId } = this.options;
    const hash = specHash(task.spec);
    const fields = { subsystem: "Tasks", taskId: task.taskId, runId: runId.toString(), epoch: epoch.toString(), specHash: hash, units: task.units };
    tasks.update(task.taskId, { state: "creating", createTx: null, waiting: "createTask being sent" });
    let recorded = false;
    let receipt: TransactionReceipt;
    try {
      receipt = await tx.sendTracked(
        "createTask",
        () => chain.contracts.taskLedger.createTask.populateTransaction(runId, hash, BigInt(task.units)),
        fields,
        (signed) => {
          tasks.update(task.taskId, { createTx: signed });
          recorded = true;
        },
      );
    } catch (error) {
      if (recorded && !(error instanceof TxRevertedError)) throw error; // sent: finished by recoverCreating
      if (error instanceof TxRevertedError) {
        const name = error.errorName ?? "";
        if (TASK_REVERTS.has(name)) {
          const reason = `the chain refused to create the task: ${error.message}`;
          tasks.update(task.taskId, { state: "failed", createTx: null, error: reason, waiting: null });
          this.log.tasks.warn({ ...fields, revert: error.message }, "task failed: createTask refused for a reason of the task itself");
          return false;
        }
        tasks.update(task.taskId, { state: "queued", createTx: null, waiting: `createTask refused: ${error.message}` });
        return QUEUE_WIDE_REVERTS.has(name) || recorded;
      }
      tasks.update(task.taskId, { state: "queued", createTx: null, waiting: `createTask not sent: ${(error as Error).message}` });
      throw error;
    }
    await this.onCreated(tasks.get(task.taskId)!, receipt, enrollment);
    return false;
  }

  /** Reads the draw from the receipt's TaskCreated log, records the on-chain task and sends it to its assignee. */
  private async onCreated(task: MasterTask, receipt: TransactionReceipt, enrollment?: { count: bigint; totalWeight: bigint }): Promise<void> {
    const { tasks, chain, runId } = this.options;
    const created = this.parse(receipt).find((e) => e.name === "TaskCreated" && BigInt(e.args.runId) === runId);
    if (!created) {
      tasks.update(task.taskId, { state: "failed", createTx: null, error: `createTask ${receipt.hash} was mined without a TaskCreated log for run ${runId}`, waiting: null });
      this.log.tasks.error({ taskId: task.taskId, tx: receipt.hash }, "createTask mined without a TaskCreated log for this run: task failed");
      return;
    }
    const a = created.args;
    const ledgerTaskId = BigInt(a.taskId).toString();
    const epoch = BigInt(a.epoch);
    const assignee = getAddress(a.assignee);
    const view: ChainTaskView = {
      taskId: ledgerTaskId,
      epoch: epoch.toString(),
      assignee,
      status: "Assigned",
      units: BigInt(a.units).toString(),
      pay: BigInt(a.pay).toString(),
      draws: Number(a.draws),
      specHash: String(a.specHash),
      resultHash: null,
      validations: [],
      dispute: null,
      createdTx: receipt.hash,
    };
    tasks.saveChainView(task.taskId, view);
    tasks.update(task.taskId, {
      state: "assigned",
      node: assignee,
      ledgerTaskId,
      epoch: view.epoch,
      assignee,
      createTx: null,
      dispatchTries: 0,
      nextTryAt: null,
      dispatchError: null,
      waiting: `drawn to ${assignee}; being sent to it`,
    });
    this.counters.created.inc();
    const [count, totalWeight] = enrollment ? [enrollment.count, enrollment.totalWeight] : await chain.contracts.taskLedger.enrollmentOf(runId, epoch);
    const power = await this.power(epoch, assignee);
    this.log.tasks.info(
      {
        taskId: task.taskId,
        ledgerTaskId,
        epoch: view.epoch,
        assignee,
        draws: view.draws,
        units: view.units,
        pay: view.pay,
        assigneePower: power.toString(),
        enrolled: Number(count),
        enrolledWeight: totalWeight.toString(),
        drawProbability: totalWeight === 0n ? null : Number((power * 1_000_000n) / totalWeight) / 1_000_000,
        tx: receipt.hash,
      },
      "the chain drew the task's node by power (keccak of beacon, run, task id and attempt over the enrolled weights)",
    );
    await this.dispatch(tasks.get(task.taskId)!);
  }

  /** Enrolls Healthy members with power in `epoch` that are not enrolled yet (permissionless, once each). */
  private async enrollMembers(epoch: bigint): Promise<void> {
    const { chain, runId, tx } = this.options;
    const ledger = chain.contracts.taskLedger;
    if (!this.powerFinal.has(epoch)) {
      if (!(await chain.contracts.proofOfCompute.isPowerFinal(epoch))) return;
      this.powerFinal.add(epoch);
    }
    let done = this.enrollDone.get(epoch);
    if (!done) {
      done = new Set();
      this.enrollDone.set(epoch, done);
      for (const old of this.enrollDone.keys()) if (old < epoch - 2n) this.enrollDone.delete(old);
    }
    for (const member of this.options.nodes.healthyMembers()) {
      if (this.stopped) return;
      const node = getAddress(member.node);
      if (done.has(node)) continue;
      const power = await this.power(epoch, node);
      if (power === 0n) {
        done.add(node);
        this.log.power.info({ epoch: epoch.toString(), miner: node }, "healthy member without power in this epoch: not enrolled in the run's draws");
        continue;
      }
      if (await ledger.isEnrolled(runId, epoch, node)) {
        done.add(node);
        continue;
      }
      const fields = { subsystem: "Power", epoch: epoch.toString(), miner: node, power: power.toString() };
      try {
        const receipt = await tx.send("enroll", () => ledger.enroll(runId, node), fields);
        const enrolled = this.parse(receipt).find((e) => e.name === "NodeEnrolled");
        done.add(node);
        this.counters.enrolled.inc();
        this.log.power.info(
          { ...fields, weight: enrolled ? BigInt(enrolled.args.weight).toString() : power.toString(), cumulative: enrolled ? BigInt(enrolled.args.cumulative).toString() : null },
          "member enrolled in the run's draws with its power (it had not enrolled itself)",
        );
      } catch (error) {
        if (!(error instanceof TxRevertedError)) throw error;
        if (error.errorName === "TaskLedgerAlreadyEnrolled" || error.errorName === "TaskLedgerNoPower" || error.errorName === "TaskLedgerTooManyRuns") {
          done.add(node);
          if (error.errorName === "TaskLedgerTooManyRuns") this.log.power.warn({ ...fields, revert: error.message }, "member not enrolled: it is enrolled in too many runs this epoch");
          continue;
        }
        if (error.errorName === "TaskLedgerNotWorkPhase") return;
        this.log.power.warn({ ...fields, revert: error.message }, "member not enrolled; trying again at the next pass");
      }
    }
  }

  /** Logs (once per change) and records on the queued tasks why they wait. */
  private waiting(reason: string | undefined, figures: Record<string, unknown>): void {
    if (reason !== undefined) this.options.tasks.setWaiting("queued", reason);
    if (reason === this.lastWaiting) return;
    this.lastWaiting = reason;
    if (reason !== undefined) this.log.tasks.info({ ...figures, queued: this.options.tasks.inStates(["queued"]).length }, `tasks stay queued: ${reason}`);
  }

  // ------------------------------------------------------------------ events and the spec route

  /** EventFollower handler for TaskLedger: keeps the chain's view of this run's tasks (idempotent). */
  async handleEvent(event: ChainEvent): Promise<void> {
    if (event.contract !== "TaskLedger" || event.args.taskId === undefined) return;
    const ledgerTaskId = BigInt(event.args.taskId).toString();
    const known = this.options.tasks.chainView(ledgerTaskId);
    if (!known) return; // not this run's, or created by a receipt not read yet (recoverCreating reads it)
    const { taskId, view } = known;
    const before = JSON.stringify(view);
    const note = this.applyEvent(view, event);
    // A redelivered event (delivery is at-least-once) changes nothing: neither saved nor logged again.
    if (!note || JSON.stringify(view) === before) return;
    this.saveView(taskId, view);
    // `epoch` on every line about an on-chain task: `computenet logs --epoch N` and its summary read it.
    const fields = { taskId, ledgerTaskId, epoch: view.epoch, block: event.blockNumber, tx: event.transactionHash, ...note.fields };
    note.log[note.level](fields, note.msg);
  }

  /** Applies one event to the view; returns what to log about it. */
  private applyEvent(view: ChainTaskView, event: ChainEvent): { log: Logger; level: "info" | "warn"; fields: Record<string, unknown>; msg: string } | undefined {
    const a = event.args;
    switch (event.name) {
      case "TaskCompleted":
        if (view.status === "Assigned") view.status = "Completed";
        view.resultHash = String(a.resultHash);
        return { log: this.log.tasks, level: "info", fields: { assignee: a.assignee, resultHash: view.resultHash }, msg: "the assignee completed the task on chain with the seal of its result hash" };
      case "TaskValidated": {
        const validator = getAddress(a.validator);
        const ok = Boolean(a.ok);
        view.validations = upsert(view.validations, (v) => v.validator === validator, { validator, ok });
        return {
          log: this.log.tasks,
          level: ok ? "info" : "warn",
          fields: { validator, ok, weight: BigInt(a.weight).toString() },
          msg: ok ? "a validator reproduced the result" : "a validator did not reproduce the result",
        };
      }
      case "DisputeOpened": {
        // Votes carry seals (`keccak256(abi.encode(resultHash))` of each voter's own re-execution); a seal
        // other than the executor's counts against the task.
        const accuser = getAddress(a.accuser);
        const seal = String(a.seal);
        view.dispute ??= { status: "Open", accuser, invalidWeight: "0", validWeight: "0", votes: [] };
        view.dispute.accuser = accuser;
        view.dispute.accuserSeal = seal;
        upsertVote(view.dispute, accuser, seal, true, BigInt(a.weight).toString());
        return { log: this.log.disputes, level: "warn", fields: { accuser, seal, weight: BigInt(a.weight).toString() }, msg: "dispute opened on the task's result" };
      }
      case "DisputeVote": {
        const voter = getAddress(a.voter);
        const seal = String(a.seal);
        const invalid = view.resultHash === null || !isExecutorSeal(seal, view.resultHash);
        view.dispute ??= { status: "Open", accuser: "", invalidWeight: "0", validWeight: "0", votes: [] };
        upsertVote(view.dispute, voter, seal, invalid, BigInt(a.weight).toString());
        return {
          log: this.log.disputes,
          level: "info",
          fields: { voter, seal, invalid, weight: BigInt(a.weight).toString(), tally: BigInt(a.tally).toString(), invalidWeight: view.dispute.invalidWeight, validWeight: view.dispute.validWeight },
          msg: invalid ? "dispute vote against the executor's seal" : "dispute vote for the executor's seal",
        };
      }
      case "DisputeResolved": {
        const outcome = DISPUTE_OUTCOMES[Number(a.outcome)] ?? "Upheld";
        const invalidated = outcome === "Invalidated";
        view.dispute ??= { status: "Open", accuser: "", invalidWeight: "0", validWeight: "0", votes: [] };
        view.dispute.status = outcome;
        view.dispute.invalidWeight = BigInt(a.invalidWeight).toString();
        view.dispute.validWeight = BigInt(a.validWeight).toString();
        view.dispute.slashed = BigInt(a.slashed).toString();
        view.dispute.reward = BigInt(a.reward).toString();
        if (invalidated) view.status = "Invalidated";
        return {
          log: this.log.disputes,
          level: "info",
          fields: { outcome, invalidated, seal: String(a.seal), invalidWeight: view.dispute.invalidWeight, validWeight: view.dispute.validWeight, slashed: view.dispute.slashed, reward: view.dispute.reward },
          msg: DISPUTE_OUTCOME_MESSAGES[outcome],
        };
      }
      case "TaskExpired":
        view.status = "Expired";
        view.released = BigInt(a.released).toString();
        return { log: this.log.tasks, level: "info", fields: { released: view.released }, msg: "the task expired on chain" };
      default:
        return undefined;
    }
  }

  /**
   * GET /ledger/tasks/:ledgerTaskId/spec: the exact spec whose hash is on chain, for a node with power in
   * the task's epoch (validators re-executing it). Throws HttpError 400/403/404.
   */
  async specFor(ledgerTaskIdText: string, signer: string): Promise<TaskSpec> {
    if (!LEDGER_TASK_ID_PATTERN.test(ledgerTaskIdText)) throw new HttpError(400, "ledgerTaskId must be a positive decimal integer");
    const known = this.options.tasks.chainView(ledgerTaskIdText);
    if (!known) throw new HttpError(404, `no ledger task ${ledgerTaskIdText} in run ${this.options.runId}`);
    const epoch = BigInt(known.view.epoch);
    const power = await this.power(epoch, signer);
    if (power === 0n) {
      this.log.tasks.info({ ledgerTaskId: ledgerTaskIdText, epoch: known.view.epoch, signer }, "task spec refused: the signer has no power in the task's epoch");
      throw new HttpError(403, `${signer} has no power in epoch ${epoch}: only nodes with power in a task's epoch may read its spec`);
    }
    const task = this.options.tasks.get(known.taskId);
    if (!task) throw new HttpError(404, `no ledger task ${ledgerTaskIdText} in run ${this.options.runId}`);
    const spec: TaskSpec = { ...task.spec, taskId: task.taskId, ledgerTaskId: ledgerTaskIdText };
    if (specHash(spec) !== known.view.specHash) {
      // The stored spec no longer hashes to what the chain holds: never serve a spec that would mislead.
      this.log.tasks.error({ ledgerTaskId: ledgerTaskIdText, taskId: task.taskId, onChain: known.view.specHash, stored: specHash(spec) }, "stored spec does not match the on-chain spec hash");
      throw new HttpError(500, `the master's spec of ledger task ${ledgerTaskIdText} does not match its on-chain hash`);
    }
    this.log.tasks.debug({ ledgerTaskId: ledgerTaskIdText, signer, power: power.toString() }, "task spec served to a node with power in its epoch");
    return spec;
  }

  // ------------------------------------------------------------------ helpers

  /** Power of `node` in `epoch` (cached: tasks exist only once an epoch's power is final). */
  private async power(epoch: bigint, node: string): Promise<bigint> {
    const key = `${epoch}:${node.toLowerCase()}`;
    const cached = this.powerCache.get(key);
    if (cached !== undefined) return cached;
    const power = await this.options.chain.contracts.proofOfCompute.powerOf(epoch, node);
    if (this.powerCache.size > 10_000) this.powerCache.clear();
    if (this.powerFinal.has(epoch) || (await this.options.chain.contracts.proofOfCompute.isPowerFinal(epoch))) {
      this.powerFinal.add(epoch);
      this.powerCache.set(key, power);
    }
    return power;
  }

  private saveView(taskId: string, view: ChainTaskView): void {
    this.options.tasks.saveChainView(taskId, view);
  }

  /** The TaskLedger logs of a receipt, decoded. */
  private parse(receipt: TransactionReceipt): Array<{ name: string; args: Result }> {
    const ledger = this.options.chain.contracts.taskLedger;
    const address = this.options.chain.deployment.contracts.TaskLedger.address.toLowerCase();
    const out: Array<{ name: string; args: Result }> = [];
    for (const log of receipt.logs) {
      if (log.address.toLowerCase() !== address) continue;
      try {
        const parsed = ledger.interface.parseLog({ topics: [...log.topics], data: log.data });
        if (parsed) out.push({ name: parsed.name, args: parsed.args });
      } catch {
        // not one of TaskLedger's events
      }
    }
    return out;
  }
}

/** `ITaskLedger.DisputeStatus` of a resolved dispute, by its number. */
const DISPUTE_OUTCOMES: Record<number, "Invalidated" | "Upheld" | "Unresolved"> = {
  [DisputeStatus.Invalidated]: "Invalidated",
  [DisputeStatus.Upheld]: "Upheld",
  [DisputeStatus.Unresolved]: "Unresolved",
};

const DISPUTE_OUTCOME_MESSAGES = {
  Invalidated: "dispute resolved: another seal won a majority, the result is invalid; the executor loses the pay and is slashed",
  Upheld: "dispute resolved: the executor's seal holds half the voting power, the result stands; the accuser is penalised",
  Unresolved: "dispute ended without a majority (irreproducible, or too few voters): nobody is slashed, the result stands and is paid",
} as const;

/** Records `voter`'s vote (once: a redelivered event replaces it) and sums the weights again. */
function upsertVote(dispute: ChainDisputeView, voter: string, seal: string, invalid: boolean, weight: string): void {
  if (dispute.status !== "Open") return; // the resolution's figures are final
  dispute.votes = upsert(dispute.votes, (v) => v.voter === voter, { voter, seal, invalid, weight });
  dispute.invalidWeight = dispute.votes.filter((v) => v.invalid).reduce((sum, v) => sum + BigInt(v.weight), 0n).toString();
  dispute.validWeight = dispute.votes.filter((v) => !v.invalid).reduce((sum, v) => sum + BigInt(v.weight), 0n).toString();
}

/** `list` with `item` in place of the entry `matches` finds (same position), or appended. */
function upsert<T>(list: T[], matches: (entry: T) => boolean, item: T): T[] {
  const index = list.findIndex(matches);
  return index === -1 ? [...list, item] : list.map((entry, i) => (i === index ? item : entry));
}
