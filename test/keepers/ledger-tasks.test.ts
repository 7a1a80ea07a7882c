/**
 * The miner's side of TaskLedger tasks (keepers/miner/ledger-tasks.ts) against the real contracts on a real
 * `hardhat node` (support/devchain.ts), with the real MinerState on a real SQLite file: the checks before a
 * task starts, the result hash reported once (across restarts and crashes), what is never reported, and the
 * wrong-result fault. The run's master creates the tasks on chain (createTask with the master key), each in
 * a run where the chain can only draw the node the test means.
 *
 * Time: the tests move the node's clock to the phase they need (support/ledger-chain.ts `goTo`); the keeper's
 * EpochClock judges phases by the chain's time (the latest block's timestamp), so it follows. Power comes
 * from real PoC commitments and verdicts (`givePower`). A crash drops the keeper's connection and
 * SQLite file mid-report, with block production stopped so that its completeTask is still pending.
 *
 * TEST DOUBLE: the Docker runtime (no Docker here): task statuses the test sets, storage folders on disk.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net, { type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "chai";
import { type NonceManager, getAddress } from "ethers";
import type { DockerRuntime, TaskStatus } from "../../keepers/miner/docker-runtime.js";
import { LedgerTasks } from "../../keepers/miner/ledger-tasks.js";
import { MinerState } from "../../keepers/miner/state.js";
import { computeTaskResult } from "../../keepers/miner/task-result.js";
import { type ValidTaskSpec, validateTaskSpec } from "../../keepers/miner/task-spec.js";
import { type Chain, connectChain, contractInterfaces } from "../../keepers/shared/chain.js";
import { HttpError } from "../../keepers/shared/http.js";
import { createLogger } from "../../keepers/shared/log.js";
import { KeeperStore } from "../../keepers/shared/store.js";
import { resultSeal, specHash } from "../../keepers/shared/task-hash.js";
import { TxSender } from "../../keepers/shared/tx.js";
import { type DevChain, startDevChain } from "./support/devchain.js";
import { EconomyChain, until } from "./support/ledger-chain.js";

/** As in ledger-queue.test.ts: 10-minute epochs (Work 8 min), disputes open 2 min after an epoch, no power cap. */
const ECONOMY = { genesisDelaySec: 1800, epochLength: 600, pocDuration: 60, pocValidationDuration: 60, disputeWindow: 120, claimWindow: 60, maxShareBps: 10_000 };

/** TEST DOUBLE of the Docker runtime: statuses the test sets, storage folders on disk. */
class FolderRuntime {
  readonly statuses = new Map<string, TaskStatus>();
  constructor(
    private readonly root: string,
    private readonly runId: string,
  ) {}
  status(taskId: string): TaskStatus | undefined {
    return this.statuses.get(taskId);
  }
  storageDir(taskId: string): string {
    if (!this.statuses.has(taskId)) throw new Error(`unknown task ${taskId}`);
    return path.join(this.root, this.runId, taskId);
  }
  finish(taskId: string, state: TaskStatus["state"], exitCode: number | null, error?: string): TaskStatus {
    const status: TaskStatus = { taskId, runId: this.runId, state, exitCode, restarts: 0, startedAt: "2026-01-01T00:00:00Z", finishedAt: "2026-01-01T00:00:01Z", ...(error ? { error } : {}) };
    this.statuses.set(taskId, status);
    return status;
  }
  asRuntime(): DockerRuntime {
    return this as unknown as DockerRuntime;
  }
}

/** A TCP relay to the node's JSON-RPC port that the test cuts (connections refused) and restores. */
class RpcRelay {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(private readonly target: number) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async open(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.target, "127.0.0.1");
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on("close", () => this.sockets.delete(socket));
        socket.on("error", () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe("miner: TaskLedger tasks (real TaskLedger on a hardhat node)", function () {
  this.timeout(180_000);
  let dev: DevChain;
  let eco: EconomyChain;
  let node: string;
  let other: string;
  let nodeKey: string;
  /** a: the node's run; b: a run where only `other` is enrolled; c: another run where only `node` is. */
  const runs = { a: 0n, b: 0n, c: 0n };
  let workEpoch = 0n;
  let dir: string;
  let runtime: FolderRuntime;
  let logs: Array<Record<string, unknown>>;
  let counter = 0;

  /** A running miner's ledger side: its own connection (the node key), SQLite file and LedgerTasks. */
  let chain: Chain;
  let store: KeeperStore;
  let state: MinerState;
  let tasks: LedgerTasks;
  let closed = true;

  const ledger = () => eco.admin.contracts.taskLedger;
  const logged = (msg: RegExp) => logs.filter((l) => msg.test(String(l.msg)));

  /** Starts the node's LedgerTasks on the test's data dir (again: a restart on the same SQLite file). */
  async function open(options: { faultWrongResult?: boolean; rpcUrl?: string; retryBaseMs?: number } = {}): Promise<void> {
    chain = await connectChain({ rpcUrl: options.rpcUrl ?? dev.rpcUrl, deploymentFile: dev.deploymentFile, privateKey: nodeKey, pollingIntervalMs: 100 });
    store = new KeeperStore(path.join(dir, "miner.sqlite"));
    state = new MinerState(store);
    const logger = createLogger({ component: "miner", level: "debug", destination: { write: (line: string) => void logs.push(JSON.parse(line)) } });
    tasks = new LedgerTasks({
      chain,
      tx: new TxSender({ logger, interfaces: contractInterfaces(), signer: chain.signer as NonceManager }),
      state,
      runtime: runtime.asRuntime(),
      logger: logger.child({ subsystem: "Tasks" }),
      node,
      runId: runs.a,
      faultWrongResult: options.faultWrongResult ?? false,
      retryBaseMs: options.retryBaseMs ?? 1,
    });
    closed = false;
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    await tasks.stop();
    store.close();
    chain.provider.destroy();
  }

  /** The miner process dies mid-report: its connection and SQLite file go, nothing waits for the report. */
  function crash(): void {
    closed = true;
    void tasks.stop();
    chain.provider.destroy();
    store.close();
  }

  /** The Work phase of an epoch in which both nodes hold power and are enrolled in their runs. */
  async function ensureWork(): Promise<bigint> {
    const current = await eco.currentEpoch();
    if (current !== 0n && current === workEpoch && (await eco.phaseOf(current)) === "Work") return current;
    const epoch = await eco.nextPocEpoch();
    await eco.givePower(epoch, new Map([[node, 10n], [other, 10n]]));
    await eco.goTo(epoch, "Work");
    await eco.enroll(runs.a, node);
    await eco.enroll(runs.c, node);
    await eco.enroll(runs.b, other);
    workEpoch = epoch;
    return epoch;
  }

  /** A spec of the node's run (not on chain), each with its own spec hash (its SEED). */
  const newSpec = (): ValidTaskSpec => {
    const taskId = `t${++counter}`;
    return validateTaskSpec({
      taskId,
      runId: String(runs.a),
      image: "computenet/busybox:latest",
      command: ["sh", "-c", "echo 42 > /data/a.txt"],
      env: { SEED: taskId },
      memoryMB: 64,
      cpus: 0.5,
    });
  };

  /** A spec and the on-chain task the run's master created for it in `runId` (2 units), drawn to `assignee`. */
  async function drawn(runId = runs.a, assignee = node): Promise<ValidTaskSpec> {
    const base = newSpec();
    const master = eco.chain(dev.keys.master);
    const receipt = (await (await master.contracts.taskLedger.createTask(runId, specHash(base), 2n)).wait())!;
    const created = receipt.logs.map((log) => ledger().interface.parseLog(log)).find((e) => e?.name === "TaskCreated")!;
    expect(getAddress(created.args.assignee)).to.equal(assignee);
    return { ...base, ledgerTaskId: String(created.args.taskId) } as ValidTaskSpec;
  }

  /** The task's folder with two files, as its container left it, and the container running. */
  const writeOutputs = (taskId: string) => {
    runtime.finish(taskId, "running", null);
    const folder = runtime.storageDir(taskId);
    mkdirSync(path.join(folder, "sub"), { recursive: true });
    writeFileSync(path.join(folder, "a.txt"), "42\n");
    writeFileSync(path.join(folder, "sub", "b.txt"), "b\n");
  };

  /** The HttpError `action` rejects with (fails the test when it resolves). */
  const refusedWith = async (action: Promise<unknown>): Promise<HttpError> => {
    try {
      await action;
    } catch (error) {
      expect(error).to.be.instanceOf(HttpError);
      return error as HttpError;
    }
    throw new Error("expected a refusal");
  };
  const refusal = (spec: ValidTaskSpec, known = false) => refusedWith(tasks.admit(spec, known));

  /** Waits until the node's completeTask for `taskId` is in the node's pool (block production stopped); its hash. */
  const pendingReport = (taskId: string) =>
    until(`the completeTask of ${taskId} pending`, async () => {
      if (state.ledgerTask(taskId)?.phase !== "completing") return undefined;
      const [hash] = await eco.pendingFrom(node);
      return hash;
    });

  const completions = async (ledgerTaskId: string) => (await eco.ledgerEvents("TaskCompleted", 0, ledgerTaskId)).length;

  before(async function () {
    this.timeout(300_000);
    dev = await startDevChain(ECONOMY);
    eco = new EconomyChain(dev);
    node = await eco.onboard(0);
    other = await eco.onboard(1);
    nodeKey = eco.nodeKeys.get(node)!;
    runs.a = await eco.createRun();
    await eco.join(runs.a, node);
    runs.b = await eco.createRun();
    await eco.join(runs.b, other);
    runs.c = await eco.createRun();
    await eco.join(runs.c, node);
  });

  after(async () => {
    await close();
    eco?.close();
    await dev?.stop();
  });

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "cn-ledger-tasks-"));
    runtime = new FolderRuntime(path.join(dir, "tasks"), String(runs.a));
    logs = [];
  });

  afterEach(async () => {
    await close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("starts a ledger task only when the chain has it Assigned to this node, in this run, with this spec, in its epoch's Work phase", async () => {
    const epoch = await ensureWork();
    await open();
    const mine = await drawn();
    await tasks.admit(mine, false);
    expect(state.ledgerTask(mine.taskId)).to.deep.include({ ledgerTaskId: mine.ledgerTaskId, runId: String(runs.a), epoch: String(epoch), phase: "accepted" });
    expect(logs.find((l) => /checked on chain/.test(String(l.msg)))).to.include({
      taskId: mine.taskId,
      ledgerTaskId: mine.ledgerTaskId,
      epoch: String(epoch),
      units: "2",
      pay: "20",
      specHash: specHash(mine),
    });
    await tasks.admit(mine, true); // the master sending it again: accepted as the same dispatch

    const theirs = await drawn(runs.b, other);
    const notOurs = await refusal(theirs);
    expect(notOurs.status).to.equal(403);
    expect(notOurs.message).to.equal(`ledger task ${theirs.ledgerTaskId} is drawn to ${other}, not to this node (${node})`);

    const tampered = await drawn();
    const changed = await refusal({ ...tampered, command: ["sh", "-c", "echo 43 > /data/a.txt"] });
    expect(changed.status).to.equal(409);
    const onChainHash = (await ledger().taskOf(tampered.ledgerTaskId!)).specHash;
    expect(changed.message).to.match(new RegExp(`^the spec received hashes to 0x[0-9a-f]{64}, but ledger task ${tampered.ledgerTaskId} has spec hash ${onChainHash}$`));

    const otherRun = await drawn(runs.c);
    expect((await refusal(otherRun)).message).to.equal(`ledger task ${otherRun.ledgerTaskId} belongs to run ${runs.c}, not to run ${runs.a}`);

    const unknownId = String((await ledger().taskCount()) + 1000n);
    expect((await refusal({ ...newSpec(), ledgerTaskId: unknownId })).message).to.equal(`ledger task ${unknownId} does not exist on chain`);

    const dup = await refusal({ ...newSpec(), ledgerTaskId: mine.ledgerTaskId });
    expect(dup.message).to.equal(`ledger task ${mine.ledgerTaskId} already runs on this node as task ${mine.taskId}`);
    const reused = await refusal({ ...mine, ledgerTaskId: (await drawn()).ledgerTaskId });
    expect(reused.message).to.match(new RegExp(`^task ${mine.taskId} already executes ledger task ${mine.ledgerTaskId} on this node`));
    const local = await drawn();
    expect((await refusal(local, true)).message).to.equal(`task ${local.taskId} already runs on this node without ledger task ${local.ledgerTaskId}`);

    const expiring = await drawn();
    const late = await drawn();
    await eco.goTo(epoch + 1n, "PoC"); // the epoch's Work phase is over: its tasks can no longer be completed
    expect((await refusal(late)).message).to.equal(`ledger task ${late.ledgerTaskId} is of epoch ${epoch}, which is in its Dispute phase: it can no longer be completed`);
    await (await ledger().expireTask(expiring.ledgerTaskId!)).wait();
    expect((await refusal(expiring)).message).to.equal(`ledger task ${expiring.ledgerTaskId} is Expired on chain, not Assigned`);

    for (const spec of [theirs, tampered, otherRun, expiring, late]) expect(state.ledgerTask(spec.taskId)).to.equal(undefined);
    expect(logs.filter((l) => l.msg === "ledger task refused")).to.have.length(9);
  });

  it("serves the spec of a task it executes to nodes with power in its epoch only, also after a restart", async () => {
    const epoch = await ensureWork();
    await open();
    const spec = await drawn();
    await tasks.admit(spec, false);
    // `other` (power in the epoch, another run) may read it: it may have to re-execute the task.
    const served = await tasks.specFor(spec.ledgerTaskId!, other);
    expect(served).to.deep.equal(spec);
    expect(specHash(served)).to.equal((await ledger().taskOf(spec.ledgerTaskId!)).specHash);

    const refused = (id: string, signer: string) => refusedWith(tasks.specFor(id, signer));
    const stranger = getAddress(`0x${"5a".repeat(20)}`);
    const powerless = await refused(spec.ledgerTaskId!, stranger);
    expect([powerless.status, powerless.message]).to.deep.equal([403, `${stranger} has no power in epoch ${epoch}: only nodes with power in a task's epoch may read its spec`]);
    expect(logged(/task spec refused/)).to.have.length(1);
    const theirs = await drawn(runs.b, other); // on chain, but executed elsewhere
    expect((await refused(theirs.ledgerTaskId!, other)).status).to.equal(404);
    for (const bad of ["0", "01", "x", "1".repeat(79)]) expect((await refused(bad, other)).status).to.equal(400);

    await close();
    await open(); // restart: the spec is in the SQLite file
    expect(await tasks.specFor(spec.ledgerTaskId!, node)).to.deep.equal(spec);
  });

  it("reports the result hash of the exit code and the storage folder once, and never again after a restart", async () => {
    await ensureWork();
    await open();
    const spec = await drawn();
    await tasks.admit(spec, false);
    writeOutputs(spec.taskId);
    const final = runtime.finish(spec.taskId, "completed", 0);
    const expected = await computeTaskResult(runtime.storageDir(spec.taskId), 0);
    expect(expected.files.map((f) => f.name)).to.deep.equal(["a.txt", "sub/b.txt"]);
    const sent = await eco.txCount(node);

    tasks.finished(spec.taskId, final);
    tasks.finished(spec.taskId, final); // a second final callback while the first report runs
    await tasks.idle();
    const onChain = await ledger().taskOf(spec.ledgerTaskId!);
    expect([onChain.status, onChain.resultHash]).to.deep.equal([2n, resultSeal(expected.resultHash)]);
    const [completed] = await eco.ledgerEvents("TaskCompleted", 0, spec.ledgerTaskId);
    expect((await completed.getTransaction()).from).to.equal(node);
    expect(await eco.txCount(node)).to.equal(sent + 1, "one completeTask");
    expect(state.ledgerTask(spec.taskId)).to.deep.include({ phase: "completed", resultHash: expected.resultHash, txHash: completed.transactionHash });
    expect(logs.find((l) => /completed on chain with the seal of its result hash/.test(String(l.msg)))).to.include({ ledgerTaskId: spec.ledgerTaskId, seal: resultSeal(expected.resultHash) });
    // The result hash itself (what validators must find by re-executing) is logged at debug only.
    const hex = expected.resultHash.slice(2);
    expect(logs.filter((l) => l.level !== "debug" && JSON.stringify(l).includes(hex))).to.deep.equal([]);

    await close();
    await open(); // restart
    tasks.resume();
    tasks.finished(spec.taskId, final);
    await tasks.idle();
    expect(await eco.txCount(node)).to.equal(sent + 1);
    expect(await completions(spec.ledgerTaskId!)).to.equal(1);
  });

  it("after a crash mid-report sends the hash it kept (not a new one), or just notes that the earlier report was mined", async () => {
    await ensureWork();
    // The first process reports a corrupted hash (CN_FAULT_WRONG_RESULT): the restarted one, without the
    // fault, would compute the honest one; it must send what was kept.
    await open({ faultWrongResult: true });
    const spec = await drawn();
    const running = await drawn();
    for (const s of [spec, running]) {
      await tasks.admit(s, false);
      writeOutputs(s.taskId);
    }
    const honest = (await computeTaskResult(runtime.storageDir(spec.taskId), 0)).resultHash;
    let kept: string;
    await eco.setMining(false);
    try {
      tasks.finished(spec.taskId, runtime.finish(spec.taskId, "completed", 0));
      const lost = await pendingReport(spec.taskId);
      kept = state.ledgerTask(spec.taskId)!.resultHash!;
      expect(kept).to.not.equal(honest);
      crash();
      expect(await eco.rpc("hardhat_dropTransaction", [lost])).to.equal(true, "the report never reached the chain");
    } finally {
      await eco.setMining(true);
    }

    await open(); // restarted without the fault
    tasks.resume(); // `spec` is final: reported now; `running` still runs: not reported
    await tasks.idle();
    let onChain = await ledger().taskOf(spec.ledgerTaskId!);
    expect([onChain.status, onChain.resultHash]).to.deep.equal([2n, resultSeal(kept)]);
    expect(logged(/^result hash computed/).filter((l) => l.taskId === spec.taskId)).to.have.length(1, "computed once, before the crash");
    expect((await ledger().taskOf(running.ledgerTaskId!)).status).to.equal(1n, "resume alone reports only final containers");
    expect(state.ledgerTask(running.taskId)!.phase).to.equal("accepted");
    tasks.finished(running.taskId, runtime.finish(running.taskId, "completed", 0));
    await tasks.idle();
    onChain = await ledger().taskOf(running.ledgerTaskId!);
    expect([onChain.status, onChain.resultHash]).to.deep.equal([2n, resultSeal((await computeTaskResult(runtime.storageDir(running.taskId), 0)).resultHash)]);

    // A report mined while the miner was down: the restarted miner sends nothing and notes it.
    const second = await drawn();
    await tasks.admit(second, false);
    writeOutputs(second.taskId);
    await eco.setMining(false);
    try {
      tasks.finished(second.taskId, runtime.finish(second.taskId, "completed", 0));
      await pendingReport(second.taskId);
      crash();
      await eco.mine(); // mined after the crash
    } finally {
      await eco.setMining(true);
    }
    expect((await ledger().taskOf(second.ledgerTaskId!)).status).to.equal(2n);
    const sent = await eco.txCount(node);
    await open();
    tasks.resume();
    await tasks.idle();
    expect(state.ledgerTask(second.taskId)!.phase).to.equal("completed");
    expect(logged(/already completed on chain \(an earlier report was mined\)/).map((l) => l.taskId)).to.deep.equal([second.taskId]);
    expect(await eco.txCount(node)).to.equal(sent, "no second completeTask");
    expect(await completions(second.ledgerTaskId!)).to.equal(1);
  });

  it("after a crash with its report still waiting in the node's pool, broadcasts that same transaction again, never a second one", async () => {
    await ensureWork();
    await open();
    const spec = await drawn();
    await tasks.admit(spec, false);
    writeOutputs(spec.taskId);
    const sent = await eco.txCount(node);
    let pending: string;
    await eco.setMining(false);
    try {
      tasks.finished(spec.taskId, runtime.finish(spec.taskId, "completed", 0));
      pending = await pendingReport(spec.taskId);
      expect(state.ledgerTask(spec.taskId)!.completeTx?.hash).to.equal(pending, "recorded before it was broadcast");
      crash();
      // Restarted while the report still waits: the miner must not sign a second one (nonce + 1) to replace it.
      await open();
      tasks.resume();
      await until("the recorded completeTask broadcast again", async () => logged(/not mined yet; broadcasting the recorded transaction again/).length > 0 || undefined);
      expect(await eco.pendingFrom(node)).to.deep.equal([pending]);
    } finally {
      await eco.setMining(true);
    }
    await tasks.idle();
    expect((await ledger().taskOf(spec.ledgerTaskId!)).status).to.equal(2n);
    expect(await eco.txCount(node)).to.equal(sent + 1, "one completeTask, mined once");
    expect(await completions(spec.ledgerTaskId!)).to.equal(1);
    expect(state.ledgerTask(spec.taskId)).to.deep.include({ phase: "completed", txHash: pending, completeTx: null });
    expect(logged(/completed on chain by its recorded completeTask, broadcast again/).map((l) => l.taskId)).to.deep.equal([spec.taskId]);
  });

  it("CN_FAULT_WRONG_RESULT reports a corrupted result hash and says so in a warning", async () => {
    await ensureWork();
    await open({ faultWrongResult: true });
    const spec = await drawn();
    await tasks.admit(spec, false);
    writeOutputs(spec.taskId);
    tasks.finished(spec.taskId, runtime.finish(spec.taskId, "completed", 0));
    await tasks.idle();
    const honest = (await computeTaskResult(runtime.storageDir(spec.taskId), 0)).resultHash;
    const onChain = await ledger().taskOf(spec.ledgerTaskId!);
    expect(onChain.status).to.equal(2n);
    const reported = onChain.resultHash;
    expect(reported).to.match(/^0x[0-9a-f]{64}$/);
    expect(reported).to.not.equal(resultSeal(honest));
    const warning = logs.find((l) => l.level === "warn" && /CN_FAULT_WRONG_RESULT/.test(String(l.msg)));
    expect(warning).to.include({ honestSeal: resultSeal(honest), seal: reported, ledgerTaskId: spec.ledgerTaskId });
  });

  it("reports nothing for a task stopped, never run, no longer Assigned, past its epoch's Work phase, or whose container is gone", async () => {
    const epoch = await ensureWork();
    await open();
    const stopped = await drawn();
    const neverRan = await drawn();
    const expiring = await drawn();
    const late = await drawn();
    const gone = await drawn();
    for (const spec of [stopped, neverRan, expiring, late, gone]) await tasks.admit(spec, false);
    for (const spec of [stopped, neverRan, expiring, late]) writeOutputs(spec.taskId); // `gone` never shows up in the runtime
    const sent = await eco.txCount(node);

    tasks.finished(stopped.taskId, runtime.finish(stopped.taskId, "stopped", 143));
    tasks.finished(neverRan.taskId, runtime.finish(neverRan.taskId, "failed", null, "image x is not present"));
    await tasks.idle();
    expect(state.ledgerTask(stopped.taskId)).to.deep.include({ phase: "closed", note: "the task was stopped before it finished" });
    expect(state.ledgerTask(neverRan.taskId)).to.deep.include({ phase: "closed", note: "the task never ran to an exit (image x is not present)" });

    await close();
    await open(); // restart: the runtime has no container for `gone`
    tasks.resume();
    await tasks.idle();
    expect(state.ledgerTask(gone.taskId)).to.deep.include({ phase: "closed", note: "its container was gone after a restart" });
    for (const spec of [expiring, late]) expect(state.ledgerTask(spec.taskId)!.phase).to.equal("accepted", "still running");

    await eco.goTo(epoch + 1n, "PoC"); // the epoch's Work phase is over
    tasks.finished(late.taskId, runtime.finish(late.taskId, "completed", 0));
    await tasks.idle();
    expect(state.ledgerTask(late.taskId)).to.deep.include({ phase: "closed", note: `epoch ${epoch} is in its Dispute phase: completion closed at its end` });
    await (await ledger().expireTask(expiring.ledgerTaskId!)).wait();
    tasks.finished(expiring.taskId, runtime.finish(expiring.taskId, "completed", 0));
    await tasks.idle();
    expect(state.ledgerTask(expiring.taskId)).to.deep.include({ phase: "closed", note: "the chain has it Expired, no longer Assigned" });

    expect(await eco.txCount(node)).to.equal(sent, "no completeTask");
    for (const spec of [stopped, neverRan, expiring, late, gone]) expect(await completions(spec.ledgerTaskId!)).to.equal(0);
    expect(logs.filter((l) => /retrying/.test(String(l.msg)))).to.have.length(0);
  });

  it("retries a report while the chain cannot be reached, until it goes through", async () => {
    await ensureWork();
    const relay = new RpcRelay(dev.node.port);
    await relay.open();
    try {
      await open({ rpcUrl: relay.url, retryBaseMs: 100 });
      const spec = await drawn();
      await tasks.admit(spec, false);
      writeOutputs(spec.taskId);
      const expected = await computeTaskResult(runtime.storageDir(spec.taskId), 0);

      await relay.cut(); // the node's connection to the chain fails
      tasks.finished(spec.taskId, runtime.finish(spec.taskId, "completed", 0));
      await until("two failed report attempts", () => logged(/^reporting the ledger task failed; retrying/).length >= 2, 30_000);
      expect(state.ledgerTask(spec.taskId)!.phase).to.equal("accepted");
      await relay.open(); // back, on the same port
      await tasks.idle();
      expect(state.ledgerTask(spec.taskId)!.phase).to.equal("completed");
      const onChain = await ledger().taskOf(spec.ledgerTaskId!);
      expect([onChain.status, onChain.resultHash]).to.deep.equal([2n, resultSeal(expected.resultHash)]);
      expect(await completions(spec.ledgerTaskId!)).to.equal(1);
    } finally {
      await close();
      await relay.cut();
    }
  });
});
