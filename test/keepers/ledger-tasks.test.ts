/**
 * The miner's side of TaskLedger tasks (keepers/miner/ledger-tasks.ts) over TEST DOUBLES of the chain
 * (support/fake-ledger.ts) and of the Docker runtime (task statuses and a real storage folder), with the
 * real MinerState on a real SQLite file: the checks before a task starts, the result hash reported once
 * (across restarts), what is never reported, and the wrong-result fault.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { expect } from "chai";
import { Wallet, getAddress } from "ethers";
import type { DockerRuntime, TaskStatus } from "../../keepers/miner/docker-runtime.js";
import { LedgerTasks } from "../../keepers/miner/ledger-tasks.js";
import { MinerState } from "../../keepers/miner/state.js";
import { computeTaskResult } from "../../keepers/miner/task-result.js";
import { type ValidTaskSpec, validateTaskSpec } from "../../keepers/miner/task-spec.js";
import { HttpError } from "../../keepers/shared/http.js";
import { createLogger } from "../../keepers/shared/log.js";
import { KeeperStore } from "../../keepers/shared/store.js";
import { specHash } from "../../keepers/shared/task-hash.js";
import { FakeClock, FakeLedger, FakeTx } from "./support/fake-ledger.js";

const RUN_ID = 5n;
const address = () => getAddress(Wallet.createRandom().address);

/** TEST DOUBLE of the runtime: statuses the test sets, storage folders on disk. */
class FakeRuntime {
  readonly statuses = new Map<string, TaskStatus>();
  constructor(private readonly root: string) {}
  status(taskId: string): TaskStatus | undefined {
    return this.statuses.get(taskId);
  }
  storageDir(taskId: string): string {
    if (!this.statuses.has(taskId)) throw new Error(`unknown task ${taskId}`);
    return path.join(this.root, String(RUN_ID), taskId);
  }
  finish(taskId: string, state: TaskStatus["state"], exitCode: number | null, error?: string): TaskStatus {
    const status: TaskStatus = { taskId, runId: String(RUN_ID), state, exitCode, restarts: 0, startedAt: "2026-01-01T00:00:00Z", finishedAt: "2026-01-01T00:00:01Z", ...(error ? { error } : {}) };
    this.statuses.set(taskId, status);
    return status;
  }
  asRuntime(): DockerRuntime {
    return this as unknown as DockerRuntime;
  }
}

describe("miner: TaskLedger tasks (TaskLedger test double)", function () {
  this.timeout(20_000);
  let dir: string;
  let clock: FakeClock;
  let ledger: FakeLedger;
  let tx: FakeTx;
  let runtime: FakeRuntime;
  let store: KeeperStore;
  let state: MinerState;
  let tasks: LedgerTasks;
  let logs: Array<Record<string, unknown>>;
  const node = address();
  const other = address();
  let counter = 0;

  const open = (faultWrongResult = false) => {
    store?.close();
    store = new KeeperStore(path.join(dir, "miner.sqlite"));
    state = new MinerState(store);
    const logger = createLogger({
      component: "miner",
      level: "debug",
      destination: new Writable({
        write(chunk, _enc, done) {
          for (const line of String(chunk).split("\n").filter(Boolean)) logs.push(JSON.parse(line) as Record<string, unknown>);
          done();
        },
      }),
    });
    tasks = new LedgerTasks({
      chain: ledger.chain(),
      tx: tx.asTxSender(),
      state,
      runtime: runtime.asRuntime(),
      logger: logger.child({ subsystem: "Tasks" }),
      node,
      runId: RUN_ID,
      faultWrongResult,
      retryBaseMs: 1,
      clock: clock.asEpochClock(),
    });
  };

  /** A spec, and the on-chain task the master created for it (drawn to `assignee`). */
  const drawn = (assignee = node, overrides: Partial<ValidTaskSpec> = {}) => {
    const base = validateTaskSpec({
      taskId: `t${++counter}`,
      runId: String(RUN_ID),
      image: "computenet/busybox:latest",
      command: ["sh", "-c", "echo 42 > /data/a.txt"],
      memoryMB: 64,
      cpus: 0.5,
    });
    ledger.draws.push(assignee);
    const logsOut = ledger.execute(address(), { fn: "createTask", args: [RUN_ID, specHash(base), 2n] }, "createTask");
    const ledgerTaskId = String(ledger.tasks.size);
    expect(logsOut).to.have.length(1);
    return { ...base, ledgerTaskId, ...overrides } as ValidTaskSpec;
  };

  /** The task's folder with two files, as its container left it. */
  const writeOutputs = (taskId: string) => {
    runtime.finish(taskId, "running", null);
    const folder = runtime.storageDir(taskId);
    mkdirSync(path.join(folder, "sub"), { recursive: true });
    writeFileSync(path.join(folder, "a.txt"), "42\n");
    writeFileSync(path.join(folder, "sub", "b.txt"), "b\n");
  };

  const refusal = async (spec: ValidTaskSpec, known = false): Promise<HttpError> => {
    try {
      await tasks.admit(spec, known);
    } catch (error) {
      expect(error).to.be.instanceOf(HttpError);
      return error as HttpError;
    }
    throw new Error("expected a refusal");
  };

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "cn-ledger-tasks-"));
    clock = new FakeClock();
    clock.phases.set(1n, "Work");
    ledger = new FakeLedger(clock);
    ledger.setPower(1n, node, 10n);
    ledger.enrolled.set(`${RUN_ID}:1`, [{ node, weight: 10n }]);
    tx = new FakeTx(ledger, node);
    runtime = new FakeRuntime(path.join(dir, "tasks"));
    logs = [];
    open();
  });

  afterEach(async () => {
    await tasks.stop();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("starts a ledger task only when the chain has it Assigned to this node, in this run, with this spec, in the Work phase", async () => {
    const mine = drawn();
    await tasks.admit(mine, false);
    expect(state.ledgerTask(mine.taskId)).to.deep.include({ ledgerTaskId: mine.ledgerTaskId, runId: "5", epoch: "1", phase: "accepted" });
    expect(logs.find((l) => /checked on chain/.test(String(l.msg)))).to.include({ taskId: mine.taskId, ledgerTaskId: mine.ledgerTaskId, units: "2", pay: "20" });
    await tasks.admit(mine, true); // the master sending it again: accepted without a second check

    const theirs = drawn(other);
    const notOurs = await refusal(theirs);
    expect(notOurs.status).to.equal(403);
    expect(notOurs.message).to.equal(`ledger task ${theirs.ledgerTaskId} is drawn to ${other}, not to this node (${node})`);

    const tampered = drawn();
    const changed = await refusal({ ...tampered, command: ["sh", "-c", "echo 43 > /data/a.txt"] });
    expect(changed.status).to.equal(409);
    expect(changed.message).to.match(new RegExp(`^the spec received hashes to 0x[0-9a-f]{64}, but ledger task ${tampered.ledgerTaskId} has spec hash ${ledger.tasks.get(BigInt(tampered.ledgerTaskId!))!.specHash}$`));

    const otherRun = drawn();
    ledger.tasks.get(BigInt(otherRun.ledgerTaskId!))!.runId = 6n;
    expect((await refusal(otherRun)).message).to.equal(`ledger task ${otherRun.ledgerTaskId} belongs to run 6, not to run 5`);

    const expired = drawn();
    ledger.tasks.get(BigInt(expired.ledgerTaskId!))!.status = 4;
    expect((await refusal(expired)).message).to.equal(`ledger task ${expired.ledgerTaskId} is Expired on chain, not Assigned`);

    expect((await refusal({ ...drawn(), ledgerTaskId: "999" })).message).to.equal("ledger task 999 does not exist on chain");

    const dup = await refusal({ ...drawn(), ledgerTaskId: mine.ledgerTaskId });
    expect(dup.message).to.equal(`ledger task ${mine.ledgerTaskId} already runs on this node as task ${mine.taskId}`);
    const reused = await refusal({ ...mine, ledgerTaskId: drawn().ledgerTaskId });
    expect(reused.message).to.match(new RegExp(`^task ${mine.taskId} already executes ledger task ${mine.ledgerTaskId} on this node`));
    const local = drawn();
    expect((await refusal(local, true)).message).to.equal(`task ${local.taskId} already runs on this node without ledger task ${local.ledgerTaskId}`);

    const late = drawn();
    clock.phases.set(1n, "Dispute");
    expect((await refusal(late)).message).to.equal(`ledger task ${late.ledgerTaskId} is of epoch 1, which is in its Dispute phase: it can no longer be completed`);
    for (const spec of [theirs, tampered, otherRun, expired, late]) expect(state.ledgerTask(spec.taskId)).to.equal(undefined);
    expect(logs.filter((l) => l.msg === "ledger task refused")).to.have.length(9);
  });

  it("reports the result hash of the exit code and the storage folder once, and never again after a restart", async () => {
    const spec = drawn();
    await tasks.admit(spec, false);
    writeOutputs(spec.taskId);
    const final = runtime.finish(spec.taskId, "completed", 0);
    const expected = await computeTaskResult(runtime.storageDir(spec.taskId), 0);
    expect(expected.files.map((f) => f.name)).to.deep.equal(["a.txt", "sub/b.txt"]);

    tasks.finished(spec.taskId, final);
    tasks.finished(spec.taskId, final); // a second final callback while the first report runs
    await tasks.idle();
    const id = BigInt(spec.ledgerTaskId!);
    expect(tx.calls.filter((c) => c.fn === "completeTask").map((c) => c.args)).to.deep.equal([[id, expected.resultHash]]);
    expect(ledger.tasks.get(id)).to.deep.include({ status: 2, resultHash: expected.resultHash });
    expect(state.ledgerTask(spec.taskId)).to.deep.include({ phase: "completed", resultHash: expected.resultHash });
    expect(logs.find((l) => /completed on chain with its result hash/.test(String(l.msg)))).to.include({ ledgerTaskId: spec.ledgerTaskId, resultHash: expected.resultHash });

    await tasks.stop();
    open(); // restart
    tasks.resume();
    tasks.finished(spec.taskId, final);
    await tasks.idle();
    expect(tx.count("completeTask")).to.equal(1);
  });

  it("after a crash mid-report sends the hash it kept (not a new one), or just notes that the earlier report was mined", async () => {
    const spec = drawn();
    await tasks.admit(spec, false);
    writeOutputs(spec.taskId);
    const kept = `0x${"cd".repeat(32)}`;
    state.updateLedgerTask(spec.taskId, { phase: "completing", resultHash: kept });
    await tasks.stop();
    open();
    tasks.resume(); // the container is final: reported now
    await tasks.idle();
    expect(tx.count("completeTask")).to.equal(0, "resume alone reports only final containers");
    tasks.finished(spec.taskId, runtime.finish(spec.taskId, "completed", 0));
    await tasks.idle();
    expect(tx.calls.find((c) => c.fn === "completeTask")!.args).to.deep.equal([BigInt(spec.ledgerTaskId!), kept]);

    const second = drawn();
    await tasks.admit(second, false);
    writeOutputs(second.taskId);
    state.updateLedgerTask(second.taskId, { phase: "completing", resultHash: kept });
    ledger.tasks.get(BigInt(second.ledgerTaskId!))!.status = 2; // mined before the crash
    await tasks.stop();
    open();
    runtime.finish(second.taskId, "completed", 0);
    tasks.resume();
    await tasks.idle();
    expect(tx.count("completeTask")).to.equal(1);
    expect(state.ledgerTask(second.taskId)!.phase).to.equal("completed");
  });

  it("reports nothing for a task stopped, never run, no longer Assigned, past its epoch, or whose container is gone", async () => {
    const cases: Array<{ spec: ValidTaskSpec; status: () => TaskStatus; note: RegExp }> = [];
    const stopped = drawn();
    cases.push({ spec: stopped, status: () => runtime.finish(stopped.taskId, "stopped", 143), note: /^the task was stopped before it finished$/ });
    const neverRan = drawn();
    cases.push({ spec: neverRan, status: () => runtime.finish(neverRan.taskId, "failed", null, "image x is not present"), note: /^the task never ran to an exit \(image x is not present\)$/ });
    const expired = drawn();
    cases.push({
      spec: expired,
      status: () => {
        ledger.tasks.get(BigInt(expired.ledgerTaskId!))!.status = 4;
        return runtime.finish(expired.taskId, "completed", 0);
      },
      note: /^the chain has it Expired, no longer Assigned$/,
    });
    for (const { spec } of cases) await tasks.admit(spec, false);
    for (const { spec, status } of cases) {
      writeOutputs(spec.taskId);
      tasks.finished(spec.taskId, status());
    }
    await tasks.idle();
    for (const { spec, note } of cases) {
      const record = state.ledgerTask(spec.taskId)!;
      expect(record.phase).to.equal("closed");
      expect(record.note).to.match(note);
    }

    const late = drawn();
    await tasks.admit(late, false);
    writeOutputs(late.taskId);
    clock.phases.set(1n, "Dispute");
    tasks.finished(late.taskId, runtime.finish(late.taskId, "completed", 0));
    await tasks.idle();
    expect(state.ledgerTask(late.taskId)!.note).to.equal("epoch 1 is in its Dispute phase: completion closed at its end");

    clock.phases.set(1n, "Work");
    const gone = drawn();
    await tasks.admit(gone, false);
    await tasks.stop();
    open();
    tasks.resume(); // its container is not in the runtime any more
    expect(state.ledgerTask(gone.taskId)).to.deep.include({ phase: "closed", note: "its container was gone after a restart" });
    expect(tx.count("completeTask")).to.equal(0);
    expect(logs.filter((l) => /retrying/.test(String(l.msg)))).to.have.length(0);
  });

  it("CN_FAULT_WRONG_RESULT reports a corrupted result hash and says so in a warning", async () => {
    open(true);
    const spec = drawn();
    await tasks.admit(spec, false);
    writeOutputs(spec.taskId);
    tasks.finished(spec.taskId, runtime.finish(spec.taskId, "completed", 0));
    await tasks.idle();
    const honest = (await computeTaskResult(runtime.storageDir(spec.taskId), 0)).resultHash;
    const reported = tx.calls.find((c) => c.fn === "completeTask")!.args[1] as string;
    expect(reported).to.match(/^0x[0-9a-f]{64}$/);
    expect(reported).to.not.equal(honest);
    const warning = logs.find((l) => l.level === "warn" && /CN_FAULT_WRONG_RESULT/.test(String(l.msg)));
    expect(warning).to.include({ honest, reported, ledgerTaskId: spec.ledgerTaskId });
  });

  it("retries a report whose chain reads fail transiently until it goes through", async () => {
    const spec = drawn();
    await tasks.admit(spec, false);
    writeOutputs(spec.taskId);
    const chain = ledger.chain();
    let failures = 2;
    const original = chain.contracts.taskLedger.taskOf;
    (chain.contracts.taskLedger as unknown as { taskOf: typeof original }).taskOf = (async (id: bigint) => {
      if (failures-- > 0) throw new Error("fetch failed");
      return original(id);
    }) as typeof original;
    await tasks.stop();
    const logger = createLogger({ component: "miner", level: "silent" });
    tasks = new LedgerTasks({ chain, tx: tx.asTxSender(), state, runtime: runtime.asRuntime(), logger, node, runId: RUN_ID, retryBaseMs: 1, clock: clock.asEpochClock() });
    tasks.finished(spec.taskId, runtime.finish(spec.taskId, "completed", 0));
    await tasks.idle();
    expect(failures).to.equal(-1);
    expect(state.ledgerTask(spec.taskId)!.phase).to.equal("completed");
  });
});
