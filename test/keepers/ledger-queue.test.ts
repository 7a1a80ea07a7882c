/**
 * The master's chain assignment (keepers/master/ledger.ts, tasks.ts) against the real contracts on a real
 * `hardhat node` (support/devchain.ts), with the real TaskBook on real SQLite files and real signed HTTP:
 * waiting reasons, enrollment, the chain's draw and the dispatch to the assignee only, backoff, expiry and
 * re-queues, crash recovery around createTask, refusals, TaskLedger's events, the spec route and the table's
 * migration.
 *
 * Time: the tests move the node's clock to the phase they need (support/ledger-chain.ts `goTo`); the keepers'
 * EpochClock judges phases by the chain's time (the latest block's timestamp), so it follows. Power comes
 * from real PoC commitments and verdicts (`givePower`). A crash is a keeper whose connection and
 * SQLite file are dropped mid-pass (`crash()`), restarted on the same file; with block production stopped
 * (no automine, no interval blocks) a transaction stays pending across it.
 *
 * TEST DOUBLES: the miners (no Docker here): an HTTP server per node that verifies the master's signature
 * and takes, refuses or holds its tasks as a test says; and the master's view of its members (Healthy, with
 * their endpoints), which NodeTracker keeps from heartbeats in the keeper.
 */
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "chai";
import { type NonceManager, Wallet, getAddress, id } from "ethers";
import { FileStore } from "../../keepers/master/files.js";
import { LedgerQueue } from "../../keepers/master/ledger.js";
import type { MasterNode, NodeTracker } from "../../keepers/master/nodes.js";
import { buildApp } from "../../keepers/master/routes.js";
import { type AssignmentMode, TaskBook } from "../../keepers/master/tasks.js";
import type { TaskStatus } from "../../keepers/miner/docker-runtime.js";
import type { TaskSpec } from "../../keepers/miner/task-spec.js";
import { type Chain, type ChainEvent, EventFollower, contractInterfaces } from "../../keepers/shared/chain.js";
import { type App, HttpError, SignedClient, closeServer, createApp, listen, requireSignature } from "../../keepers/shared/http.js";
import { createLogger } from "../../keepers/shared/log.js";
import { createMetrics } from "../../keepers/shared/metrics.js";
import { MemoryNonceStore } from "../../keepers/shared/signing.js";
import { KeeperStore } from "../../keepers/shared/store.js";
import { resultSeal, specHash } from "../../keepers/shared/task-hash.js";
import { type SignedTx, TxSender } from "../../keepers/shared/tx.js";
import { type DevChain, startDevChain } from "./support/devchain.js";
import { EconomyChain, sleep, until } from "./support/ledger-chain.js";

/** Route parameters and query of the test doubles' routes. */
type P = { Params: Record<string, string>; Querystring: Record<string, string | undefined>; Body: unknown };

/**
 * Epochs of 10 minutes (PoC 1 min, PoC validation 1 min, Work 8 min), disputes open 2 min after an epoch;
 * epoch 1 starts half an hour after the deployment (the tests jump there). No cap on a node's share of
 * power, so that powers are the PoC counts given.
 */
const ECONOMY = { genesisDelaySec: 1800, epochLength: 600, pocDuration: 60, pocValidationDuration: 60, disputeWindow: 120, claimWindow: 60, maxShareBps: 10_000 };
const BODY = { image: "computenet/busybox:latest", command: ["sh", "-c", "echo 42 > /data/a.txt"], memoryMB: 64, cpus: 0.5 };
const silent = createLogger({ component: "test", level: "silent" });

/** TEST DOUBLE of a miner's API: verifies the master's signature; takes, refuses or holds tasks as told. */
class MinerDouble {
  readonly received: Array<{ signer: string; body: TaskSpec }> = [];
  readonly statuses = new Map<string, TaskStatus>();
  /** Refuses every task with this answer (a node that does not take its tasks). */
  refuseAll: { status: number; error: string } | undefined;
  /** Task ids whose POST is held unanswered until `release()` (a request in flight when the master dies). */
  readonly hold = new Set<string>();
  private held: Array<() => void> = [];
  endpoint = "";
  private server: App | undefined;

  constructor(
    readonly node: string,
    private readonly chainId: bigint,
  ) {}

  async start(): Promise<void> {
    const app = createApp({ logger: silent, metrics: createMetrics(`miner-double-${this.node}`) });
    const signed = requireSignature({ chainId: this.chainId, audience: this.node.toLowerCase(), nonces: new MemoryNonceStore() });
    app.post<P>("/tasks", { preHandler: signed }, async (req, reply) => {
      const body = req.body as TaskSpec;
      this.received.push({ signer: req.signer, body });
      if (this.hold.has(body.taskId)) await new Promise<void>((resolve) => this.held.push(resolve));
      if (this.refuseAll) throw new HttpError(this.refuseAll.status, this.refuseAll.error);
      const status = this.statuses.get(body.taskId) ?? { taskId: body.taskId, runId: body.runId, state: "pending", exitCode: null, restarts: 0, startedAt: null, finishedAt: null };
      this.statuses.set(body.taskId, status);
      reply.code(202).send(status);
    });
    app.get<P>("/tasks/:taskId", { preHandler: signed }, (req, reply) => {
      const status = this.statuses.get(String(req.params.taskId));
      if (!status) throw new HttpError(404, `no task ${req.params.taskId}`);
      reply.send(status);
    });
    this.server = app;
    await listen(app, 0, "127.0.0.1");
    this.endpoint = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  }

  release(): void {
    this.hold.clear();
    for (const resolve of this.held.splice(0)) resolve();
  }

  reset(): void {
    this.release();
    this.received.length = 0;
    this.statuses.clear();
    this.refuseAll = undefined;
  }

  async stop(): Promise<void> {
    this.release();
    if (this.server) await closeServer(this.server);
  }
}

describe("master: chain assignment of tasks (real TaskLedger on a hardhat node)", function () {
  this.timeout(180_000);
  let dev: DevChain;
  let eco: EconomyChain;
  let chainId: bigint;
  let master: string;
  let A: string, B: string, C: string, D: string, E: string;
  const runs = { main: 0n, refusing: 0n, stranger: 0n, smallEscrow: 0n, otherMaster: 0n, single: 0n };
  const doubles = new Map<string, MinerDouble>();
  let dir: string;
  let logs: Array<Record<string, unknown>>;

  /** A running master: its connection (the master key), SQLite file, TaskBook and LedgerQueue. */
  interface Master {
    chain: Chain;
    store: KeeperStore;
    tasks: TaskBook;
    queue: LedgerQueue;
    client: SignedClient;
    closed: boolean;
  }
  let m: Master | undefined;

  const ledger = () => eco.admin.contracts.taskLedger;
  const logged = (msg: RegExp) => logs.filter((l) => msg.test(String(l.msg)));
  const allReceived = () => [...doubles.values()].flatMap((d) => d.received.map((r) => ({ node: d.node, ...r })));
  const member = (node: string) => ({ node, state: "Healthy", participation: "Member", endpoint: doubles.get(node)?.endpoint ?? null }) as MasterNode;

  /** Starts the master of `runId` on the test's data dir (again: a restart on the same SQLite file). */
  async function open(runId: bigint, options: { healthy: string[]; known?: string[]; assignment?: AssignmentMode }): Promise<Master> {
    const chain = await dev.connect(dev.keys.master);
    const store = new KeeperStore(path.join(dir, "master.sqlite"));
    const logger = createLogger({ component: "master", level: "debug", destination: { write: (line: string) => void logs.push(JSON.parse(line)) } });
    const metrics = createMetrics("master-test");
    const client = new SignedClient(chain.wallet!, chain.chainId);
    const known = new Set(options.known ?? [A, B, C, D, E]);
    const healthyMembers = () => options.healthy.map(member);
    const tasks = new TaskBook({
      db: store.db,
      runId,
      assignment: options.assignment ?? "chain",
      client,
      log: logger.child({ subsystem: "Tasks" }),
      metrics,
      healthyMembers,
      allNodes: healthyMembers,
    });
    const queue = new LedgerQueue({
      chain,
      runId,
      tasks,
      nodes: { get: (n: string) => (known.has(getAddress(n)) ? member(getAddress(n)) : undefined), healthyMembers },
      client,
      tx: new TxSender({ logger, interfaces: contractInterfaces(), signer: chain.signer as NonceManager }),
      logger,
      metrics,
      dispatchRetry: { baseMs: 1, maxMs: 5 },
    });
    m = { chain, store, tasks, queue, client, closed: false };
    return m;
  }

  async function close(): Promise<void> {
    if (!m || m.closed) return;
    m.closed = true;
    await m.queue.stop();
    m.store.close();
    m.chain.provider.destroy();
  }

  /** The master process dies mid-pass: its connection and SQLite file go, nothing waits for the pass. */
  function crash(): void {
    if (!m) return;
    m.closed = true;
    void m.queue.stop();
    m.chain.provider.destroy();
    m.store.close();
  }

  before(async function () {
    this.timeout(300_000);
    dev = await startDevChain(ECONOMY);
    eco = new EconomyChain(dev);
    chainId = dev.admin.chainId;
    master = new Wallet(dev.keys.master).address;
    [A, B, C, D, E] = await (async () => {
      const out: string[] = [];
      for (const i of [0, 1, 2, 3, 4]) out.push(await eco.onboard(i));
      return out;
    })();
    runs.main = await eco.createRun();
    for (const n of [A, B, C]) await eco.join(runs.main, n);
    runs.refusing = await eco.createRun();
    for (const n of [A, B, C]) await eco.join(runs.refusing, n);
    runs.stranger = await eco.createRun();
    await eco.join(runs.stranger, D);
    runs.smallEscrow = await eco.createRun({ budget: 100n, pricePerUnit: 10n });
    await eco.join(runs.smallEscrow, A);
    runs.otherMaster = await eco.createRun({ masterKey: dev.keys.admin });
    await eco.join(runs.otherMaster, A, dev.keys.admin);
    runs.single = await eco.createRun();
    await eco.join(runs.single, A);
    for (const node of [A, B, C, D, E]) {
      const double = new MinerDouble(node, chainId);
      await double.start();
      doubles.set(node, double);
    }
  });

  after(async () => {
    await close();
    for (const d of doubles.values()) await d.stop();
    eco?.close();
    await dev?.stop();
  });

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "cn-ledger-queue-"));
    logs = [];
    for (const d of doubles.values()) d.reset();
  });

  afterEach(async () => {
    await close();
    m = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers at once with a queued task and says why it waits (before genesis, an epoch not advanced, its PoC phase, no enrolled weight)", async () => {
    const { tasks, queue } = await open(runs.main, { healthy: [A, B, C] });
    const created = await tasks.create({ ...BODY, units: 3 });
    expect(created).to.deep.include({ node: null, state: "queued", units: 3 });
    expect(created.taskId).to.match(/^[0-9a-f]{16}$/);
    const waiting = () => tasks.get(created.taskId)!.waiting;

    expect(await eco.currentEpoch()).to.equal(0n);
    await queue.pass();
    expect(waiting()).to.match(/epoch clock has not started/);

    await eco.goTo(1n, "PoC", { advance: false }); // genesis: epoch 1 begins and nobody advanced it yet
    await queue.pass();
    expect(waiting()).to.equal("epoch 1 has not been advanced (no PoC beacon): nobody can be drawn in it");

    await eco.advance();
    await queue.pass();
    expect(waiting()).to.equal("epoch 1 is in its PoC phase: tasks are created in the Work phase");
    const before = logged(/^tasks stay queued/).length;
    await queue.pass();
    expect(logged(/^tasks stay queued/)).to.have.length(before, "an unchanged reason is logged once");

    await eco.goTo(1n, "Work"); // nobody committed PoC in epoch 1: nobody has power to enroll or draw
    const masterTxs = await eco.txCount(master);
    const taskCount = await ledger().taskCount();
    await queue.pass();
    const task = tasks.get(created.taskId)!;
    expect(task.state).to.equal("queued");
    expect(task.waiting).to.equal(`no member of run ${runs.main} is enrolled with power in epoch 1: nobody to draw`);
    expect(logged(/^tasks stay queued: no member/)[0]).to.include({ epoch: "1", phase: "Work", enrolled: 0, healthyMembers: 3 });
    expect(logged(/healthy member without power/).map((l) => l.miner)).to.have.members([A, B, C]);
    expect(await eco.txCount(master)).to.equal(masterTxs, "no enroll, no createTask sent");
    expect(await ledger().taskCount()).to.equal(taskCount);
    expect(tasks.view(task)).to.deep.include({ state: "queued", node: null, chain: null, waiting: task.waiting, units: 3 });
  });

  it("enrolls healthy members with power that are not enrolled, creates the task on chain and sends it to the drawn node only", async () => {
    const { tasks, queue } = await open(runs.main, { healthy: [A, B, C] });
    const { taskId } = await tasks.create({ ...BODY, units: 3 });
    const epoch = await eco.nextPocEpoch();
    await eco.givePower(epoch, new Map([[A, 30n], [B, 70n]])); // C has no power
    await eco.goTo(epoch, "Work");
    await eco.enroll(runs.main, A, eco.nodeKeys.get(A)!); // A enrolled itself
    const from = (await eco.blockNumber()) + 1;
    const masterTxs = await eco.txCount(master);

    await queue.pass();
    const enrolled = await eco.ledgerEvents("NodeEnrolled", from, runs.main, epoch);
    expect(enrolled.map((e) => e.args.node)).to.deep.equal([B], "the master enrolled B only: A was enrolled, C has no power");
    expect((await enrolled[0].getTransaction()).from).to.equal(master);
    expect(logged(/member enrolled in the run's draws/)[0]).to.include({ miner: B, power: "70", weight: "70", cumulative: "100" });
    expect(logged(/healthy member without power/).map((l) => l.miner)).to.deep.equal([C]);

    const created = await eco.ledgerEvents("TaskCreated", from, undefined, runs.main);
    expect(created).to.have.length(1);
    expect((await created[0].getTransaction()).from).to.equal(master);
    const ledgerTaskId = String(created[0].args.taskId);
    const onChain = await ledger().taskOf(ledgerTaskId);
    const task = tasks.get(taskId)!;
    expect(onChain.specHash).to.equal(specHash(task.spec));
    expect([onChain.runId, onChain.epoch, onChain.units, onChain.pay, onChain.status]).to.deep.equal([runs.main, epoch, 3n, 30n, 1n]);
    const assignee = getAddress(onChain.assignee);
    expect([A, B]).to.include(assignee);
    expect(await ledger().drawAssignee(runs.main, epoch, ledgerTaskId, 0)).to.equal(onChain.assignee, "anyone can recompute the draw");
    expect(task).to.deep.include({ state: "pending", node: assignee, ledgerTaskId, epoch: String(epoch), assignee, waiting: null });
    expect(await eco.txCount(master)).to.equal(masterTxs + 2, "one enroll and one createTask");

    // Sent to the assignee only, as today's signed dispatch, with the master's task id and the ledger id.
    const sent = allReceived();
    expect(sent).to.have.length(1);
    expect(sent[0]).to.deep.include({ node: assignee, signer: master });
    expect(sent[0].body).to.deep.equal({ ...task.spec, taskId, ledgerTaskId });
    expect(specHash(sent[0].body)).to.equal(onChain.specHash);

    const power = await eco.admin.contracts.proofOfCompute.powerOf(epoch, assignee);
    expect(logged(/the chain drew the task's node by power/)[0]).to.include({
      taskId,
      ledgerTaskId,
      epoch: String(epoch),
      assignee,
      draws: 1,
      units: "3",
      pay: "30",
      assigneePower: power.toString(),
      enrolled: 2,
      enrolledWeight: "100",
      drawProbability: Number(power) / 100,
    });
    expect(logged(/task sent to the node the chain drew/)[0]).to.include({ miner: assignee, state: "pending" });
    expect(tasks.view(task).chain).to.deep.include({ taskId: ledgerTaskId, epoch: String(epoch), assignee, status: "Assigned", resultHash: null, validations: [], dispute: null, pay: "30", units: "3" });

    // Later passes enroll nobody again and create nothing more.
    await queue.pass();
    expect(await eco.txCount(master)).to.equal(masterTxs + 2);
    expect(await ledger().taskCount()).to.equal(BigInt(ledgerTaskId));
  });

  it("retries a refused dispatch with backoff to the same node until the epoch's end, then expires and re-queues it, at most 3 times", async () => {
    const { tasks, queue } = await open(runs.refusing, { healthy: [A, B, C] });
    doubles.get(B)!.refuseAll = { status: 409, error: "this node does not take tasks now" };
    const refusal = "409 this node does not take tasks now";
    const { taskId } = await tasks.create(BODY);
    const escrowBefore = await eco.admin.contracts.trainingRuns.escrowOf(runs.refusing);
    const from = (await eco.blockNumber()) + 1;
    // Only B holds power in these epochs, so the chain draws B every time; A and C would take the task.
    const epochWork = async () => {
      const e = await eco.nextPocEpoch();
      await eco.givePower(e, new Map([[B, 90n]]));
      await eco.goTo(e, "Work");
      return e;
    };
    let epoch = await epochWork();
    await queue.pass();
    let task = tasks.get(taskId)!;
    expect(task).to.deep.include({ state: "assigned", assignee: B, epoch: String(epoch), dispatchTries: 1, dispatchError: refusal });
    expect(task.waiting).to.equal(`the assignee ${B} did not take it (${refusal}); retrying in 1 ms until the end of epoch ${epoch}`);
    await sleep(10);
    await queue.pass();
    await sleep(10);
    await queue.pass();
    const toB = doubles.get(B)!.received;
    expect(toB.length).to.be.at.least(3);
    expect(doubles.get(A)!.received.length + doubles.get(C)!.received.length).to.equal(0, "never sent to another node");
    expect(tasks.get(taskId)!.dispatchTries).to.equal(toB.length);
    const drawn = [{ id: task.ledgerTaskId!, epoch }];

    for (let expiry = 1; expiry <= 4; expiry++) {
      const current = drawn.at(-1)!;
      await eco.goTo(current.epoch + 1n, "PoC"); // the task's epoch is over
      await queue.pass(); // expires it on chain; the new epoch is not in its Work phase yet
      expect((await ledger().taskOf(current.id)).status).to.equal(4n, "Expired on chain");
      expect(tasks.chainViewsOf(taskId).at(-1)).to.deep.include({ taskId: current.id, status: "Expired", released: "10" });
      task = tasks.get(taskId)!;
      if (expiry <= 3) {
        expect(task).to.deep.include({ state: "queued", requeues: expiry, ledgerTaskId: null, assignee: null, node: "" });
        expect(task.waiting).to.equal(`epoch ${current.epoch + 1n} is in its PoC phase: tasks are created in the Work phase`);
        const requeued = logged(/queued again for a new on-chain task/);
        expect(requeued).to.have.length(expiry);
        expect(requeued.at(-1)!.msg).to.match(
          new RegExp(`^ledger task ${current.id} \\(epoch ${current.epoch}\\) expired before its assignee ${B} took it \\(\\d+ dispatch attempts?, last: ${refusal}\\); queued again`),
        );
        epoch = await epochWork();
        await queue.pass();
        task = tasks.get(taskId)!;
        expect(task).to.deep.include({ state: "assigned", assignee: B, epoch: String(epoch) });
        expect(task.ledgerTaskId).to.not.equal(current.id);
        drawn.push({ id: task.ledgerTaskId!, epoch });
      }
    }
    expect(task.state).to.equal("failed");
    expect(task.error).to.equal(
      `gave up after 4 on-chain tasks (3 re-queues): the chain drew ${drawn.map((d) => `${B} (ledger task ${d.id}, epoch ${d.epoch})`).join(", ")} and none took the task`,
    );
    const created = await eco.ledgerEvents("TaskCreated", from, undefined, runs.refusing);
    expect(created.map((e) => String(e.args.taskId))).to.deep.equal(drawn.map((d) => d.id));
    for (const e of created) expect((await e.getTransaction()).from).to.equal(master);
    const expired = (await eco.ledgerEvents("TaskExpired", from)).filter((e) => drawn.some((d) => d.id === String(e.args.taskId)));
    expect(expired.map((e) => [String(e.args.taskId), e.args.released])).to.deep.equal(drawn.map((d) => [d.id, 10n]));
    const escrowAfter = await eco.admin.contracts.trainingRuns.escrowOf(runs.refusing);
    expect(escrowAfter.available).to.equal(escrowBefore.available, "every expired task's pay went back to the escrow");
    expect(escrowAfter.reserved).to.equal(escrowBefore.reserved);
    const view = tasks.view(task) as ReturnType<TaskBook["view"]> & { chainHistory?: Array<{ taskId: string }> };
    expect(view.chain).to.deep.include({ taskId: drawn[3].id, status: "Expired" });
    expect(view.chainHistory!.map((v) => v.taskId)).to.deep.equal(drawn.slice(0, 3).map((d) => d.id));
  });

  it("adds the chain columns to an issue-3 master_tasks table, and keeps local assignment as it was", async () => {
    const old = new KeeperStore(path.join(dir, "master.sqlite"));
    old.db.exec(`
      CREATE TABLE master_tasks (
        task_id TEXT PRIMARY KEY, node TEXT NOT NULL, spec TEXT NOT NULL, state TEXT NOT NULL,
        status TEXT, error TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
      );
    `);
    old.db.prepare("INSERT INTO master_tasks VALUES ('old1', ?, ?, 'completed', NULL, NULL, 1, 2)").run(A, JSON.stringify({ ...BODY, taskId: "old1", runId: String(runs.main) }));
    old.close();
    const masterTxs = await eco.txCount(master);

    const { store, tasks } = await open(runs.main, { assignment: "local", healthy: [B, A] });
    const columns = (store.db.prepare("PRAGMA table_info(master_tasks)").all() as Array<{ name: string }>).map((c) => c.name);
    expect(columns).to.include.members(["units", "ledger_task_id", "epoch", "assignee", "requeues", "create_tx", "waiting"]);
    const oldTask = tasks.get("old1")!;
    expect(oldTask).to.deep.include({ units: 1, ledgerTaskId: null, requeues: 0, state: "completed" });
    expect(tasks.view(oldTask)).to.not.have.property("chain");

    // Local: sent at once to the healthy member with the fewest active tasks (ties by address); nothing on chain.
    const created = await tasks.create({ ...BODY, units: 4 });
    const expected = [A, B].sort((x, y) => (x.toLowerCase() < y.toLowerCase() ? -1 : 1))[0];
    expect(created).to.deep.include({ node: expected, state: "pending", units: 4 });
    const sent = allReceived();
    expect(sent.map((r) => r.node)).to.deep.equal([expected]);
    expect(sent[0].body.ledgerTaskId).to.equal(undefined);
    expect(await eco.txCount(master)).to.equal(masterTxs, "no transaction");
  });

  describe("in an epoch where five nodes hold power", () => {
    let epoch: bigint;

    before(async () => {
      epoch = await eco.nextPocEpoch();
      await eco.givePower(epoch, new Map([[A, 10n], [B, 10n], [C, 30n], [D, 25n], [E, 25n]]));
      await eco.goTo(epoch, "Work");
    });

    it("keeps sending to an assignee with no known endpoint, never to another node", async () => {
      // D enrolled itself in its run; this master knows no endpoint for it (nor any healthy member).
      await eco.enroll(runs.stranger, D, eco.nodeKeys.get(D)!);
      const { tasks, queue } = await open(runs.stranger, { healthy: [], known: [] });
      const { taskId } = await tasks.create(BODY);
      await queue.pass();
      const task = tasks.get(taskId)!;
      expect(task).to.deep.include({ state: "assigned", assignee: D, dispatchTries: 1 });
      expect(task.waiting).to.match(/no endpoint known for the assignee \(node state unknown to this master\)/);
      await sleep(10);
      await queue.pass();
      expect(tasks.get(taskId)).to.deep.include({ state: "assigned", assignee: D, dispatchTries: 2 });
      expect(allReceived()).to.have.length(0);
    });

    it("never creates a second on-chain task when it crashed between sending createTask and reading its receipt", async () => {
      await open(runs.main, { healthy: [A, B, C] });
      await m!.queue.pass(); // enrolls the members with power while blocks are still mined at once
      const { taskId } = await m!.tasks.create(BODY);
      const from = (await eco.blockNumber()) + 1;
      const tasksBefore = await ledger().taskCount();
      let recorded: SignedTx;
      await eco.setMining(false);
      try {
        const crashed = m!.queue.pass(); // createTask signed, recorded, broadcast: pending, no receipt
        const first = m!;
        recorded = await until("createTask recorded and in the node's pool", async () => {
          const signed = first.tasks.get(taskId)!.createTx;
          return signed && (await eco.pendingFrom(master)).includes(signed.hash) ? signed : undefined;
        });
        expect(first.tasks.get(taskId)!.state).to.equal("creating");
        crash();
        await crashed;

        const { queue } = await open(runs.main, { healthy: [A, B, C] }); // restart on the same SQLite file
        const resumed = queue.pass();
        await until("the restarted master waiting for the recorded createTask", () => logged(/^createTask: not mined yet; broadcasting the recorded transaction again/).length > 0);
        await eco.setMining(true);
        await eco.mine();
        await resumed;
      } finally {
        await eco.setMining(true);
      }
      expect(logged(/^createTask recorded but its receipt not read: finishing it/)).to.have.length(1);
      const created = await eco.ledgerEvents("TaskCreated", from, undefined, runs.main);
      expect(created).to.have.length(1);
      expect(created[0].transactionHash).to.equal(recorded.hash);
      expect(await ledger().taskCount()).to.equal(tasksBefore + 1n);
      const assignee = getAddress(created[0].args.assignee);
      const task = m!.tasks.get(taskId)!;
      expect(task).to.deep.include({ state: "pending", ledgerTaskId: String(tasksBefore + 1n), assignee, createTx: null });
      expect(m!.tasks.view(task).chain).to.deep.include({ createdTx: recorded.hash, status: "Assigned" });
      expect(allReceived().map((r) => [r.node, r.body.taskId])).to.deep.equal([[assignee, taskId]]);
    });

    it("creates the task again when the recorded createTask can never be mined, and re-sends a task caught mid-dispatch", async () => {
      await open(runs.main, { healthy: [A, B, C] });
      await m!.queue.pass();
      const { taskId } = await m!.tasks.create(BODY);
      const from = (await eco.blockNumber()) + 1;
      let recorded: SignedTx;
      await eco.setMining(false);
      try {
        const crashed = m!.queue.pass();
        const first = m!;
        recorded = await until("createTask recorded and in the node's pool", async () => {
          const signed = first.tasks.get(taskId)!.createTx;
          return signed && (await eco.pendingFrom(master)).includes(signed.hash) ? signed : undefined;
        });
        crash();
        await crashed;
        // The transaction is lost with the process (dropped from the node's pool), and the master key sends
        // another transaction with its nonce.
        expect(await eco.rpc("hardhat_dropTransaction", [recorded.hash])).to.equal(true);
        await new Wallet(dev.keys.master, eco.provider).sendTransaction({ to: master, value: 0n, nonce: recorded.nonce });
      } finally {
        await eco.setMining(true);
      }
      await eco.mine();
      expect(await eco.txCount(master)).to.equal(recorded.nonce + 1);

      const { tasks, queue } = await open(runs.main, { healthy: [A, B, C] });
      await queue.pass(); // recovery: never mined, its nonce gone → queued again → created anew in the same pass
      expect(await eco.rpc("eth_getTransactionReceipt", [recorded.hash])).to.equal(null);
      expect(logged(/^createTask: never mined and its nonce was used by another transaction/)).to.have.length(1);
      let created = await eco.ledgerEvents("TaskCreated", from, undefined, runs.main);
      expect(created).to.have.length(1);
      expect(created[0].transactionHash).to.not.equal(recorded.hash);
      expect(tasks.get(taskId)).to.deep.include({ state: "pending", ledgerTaskId: String(created[0].args.taskId) });

      // A crash while the POST to the assignee is in flight: after the restart it goes to the same node again.
      const second = await tasks.create(BODY);
      for (const d of doubles.values()) d.hold.add(second.taskId);
      const crashed = queue.pass();
      const holder = await until("the assignee holding the POST", () => [...doubles.values()].find((d) => d.received.some((r) => r.body.taskId === second.taskId)));
      expect(tasks.get(second.taskId)!.state).to.equal("dispatching");
      crash();
      const restarted = await open(runs.main, { healthy: [A, B, C] });
      expect(logged(/chain tasks left mid-dispatch by the last run/)).to.have.length(1);
      expect(restarted.tasks.get(second.taskId)!.state).to.equal("assigned");
      for (const d of doubles.values()) d.release(); // the old request is answered, to a master that is gone
      await crashed;
      await restarted.queue.pass();
      const task = restarted.tasks.get(second.taskId)!;
      expect(task.state).to.equal("pending");
      expect(holder.node).to.equal(task.assignee);
      expect(allReceived().filter((r) => r.body.taskId === second.taskId).map((r) => r.node)).to.deep.equal([holder.node, holder.node]);
      created = await eco.ledgerEvents("TaskCreated", from, undefined, runs.main);
      expect(created.map((e) => String(e.args.taskId))).to.deep.equal([restarted.tasks.get(taskId)!.ledgerTaskId, task.ledgerTaskId], "one on-chain task each");
    });

    it("fails a task the chain refuses for a reason of its own (escrow) and goes on with the others", async () => {
      const { tasks, queue } = await open(runs.smallEscrow, { healthy: [A] }); // 100 in escrow, 10 per unit
      const big = await tasks.create({ ...BODY, units: 1_000 });
      const small = await tasks.create({ ...BODY, units: 2 });
      await queue.pass();
      expect(tasks.get(big.taskId)!.state).to.equal("failed");
      expect(tasks.get(big.taskId)!.error).to.match(/^the chain refused to create the task: createTask reverted: TrainingRunsInsufficientEscrow\(.*=100, .*=10000\)/);
      const task = tasks.get(small.taskId)!;
      expect(task).to.deep.include({ state: "pending", assignee: A });
      const onChain = await ledger().taskOf(task.ledgerTaskId!);
      expect([onChain.runId, onChain.pay]).to.deep.equal([runs.smallEscrow, 20n]);
      expect((await eco.admin.contracts.trainingRuns.escrowOf(runs.smallEscrow)).available).to.equal(80n);
    });

    it("stops creating for the pass on a queue-wide refusal (not the run's master) and keeps the tasks queued with the reason", async () => {
      const { tasks, queue } = await open(runs.otherMaster, { healthy: [A] }); // the run's master is another key
      const one = await tasks.create(BODY);
      const two = await tasks.create(BODY);
      const taskCount = await ledger().taskCount();
      await queue.pass();
      expect(await ledger().isEnrolled(runs.otherMaster, epoch, A)).to.equal(true, "enrolling is anyone's");
      expect(tasks.get(one.taskId)!.state).to.equal("queued");
      expect(tasks.get(one.taskId)!.waiting).to.match(/^createTask refused: createTask reverted: TaskLedgerNotMaster/);
      expect(tasks.get(two.taskId)!.state).to.equal("queued");
      expect(logged(/^createTask: reverted: TaskLedgerNotMaster/)).to.have.length(1, "the second task is not tried in this pass");
      expect(await ledger().taskCount()).to.equal(taskCount);
    });

    it("serves a task's exact spec to nodes with power in its epoch: 403 without, 404 for unknown ids, 400 for bad ones", async () => {
      const { tasks, queue } = await open(runs.single, { healthy: [A] });
      const { taskId } = await tasks.create({ ...BODY, env: { SEED: "7" } });
      await queue.pass();
      const ledgerTaskId = tasks.get(taskId)!.ledgerTaskId!;

      const spec = await queue.specFor(ledgerTaskId, B); // B has power in the epoch, and is no member of the run
      expect(spec).to.deep.equal({ ...tasks.get(taskId)!.spec, taskId, ledgerTaskId });
      expect(specHash(spec)).to.equal((await ledger().taskOf(ledgerTaskId)).specHash);

      const expectHttp = async (promise: Promise<unknown>, status: number, message: RegExp) => {
        try {
          await promise;
          expect.fail(`expected ${status}`);
        } catch (error) {
          expect((error as { status?: number }).status).to.equal(status);
          expect((error as Error).message).to.match(message);
        }
      };
      const outsider = new Wallet(dev.keys.buyer).address;
      await expectHttp(queue.specFor(ledgerTaskId, outsider), 403, new RegExp(`^${outsider} has no power in epoch ${epoch}: only nodes with power in a task's epoch may read its spec$`));
      await expectHttp(queue.specFor("1", B), 404, new RegExp(`^no ledger task 1 in run ${runs.single}$`)); // on chain, another run's
      await expectHttp(queue.specFor("01", B), 400, /positive decimal integer/);
    });

    it("over signed HTTP: POST /tasks answers 202 queued, GET /tasks/:id shows the chain view, GET /ledger/tasks/:id/spec needs power", async () => {
      const { tasks, queue, store, client } = await open(runs.single, { healthy: [A] });
      const run = await eco.admin.contracts.trainingRuns.getRun(runs.single);
      const nodes = { run: { buyer: run.buyer, master: run.master, status: Number(run.status) }, get: (n: string) => member(getAddress(n)), all: () => [] } as unknown as NodeTracker;
      const app = buildApp({
        runId: runs.single,
        address: master,
        chainId,
        nodes,
        tasks,
        ledger: queue,
        files: new FileStore(store.db, dir, silent),
        client,
        nonces: store,
        logger: silent,
        metrics: createMetrics("routes-test"),
        maxFileBytes: 1024,
        health: () => ({}),
      });
      const server = await listen(app, 0, "127.0.0.1");
      try {
        const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
        const audience = master.toLowerCase();
        const buyer = new SignedClient(new Wallet(dev.keys.buyer), chainId);
        const validator = new SignedClient(new Wallet(eco.nodeKeys.get(B)!), chainId);
        const created = await buyer.request<{ taskId: string; state: string; node: string | null; units: number }>("POST", `${base}/tasks`, { audience, body: { ...BODY, units: 7 } });
        expect(created.status).to.equal(202);
        expect(created.body).to.deep.include({ state: "queued", node: null, units: 7 });
        const badUnits = await buyer.request<{ error: string }>("POST", `${base}/tasks`, { audience, body: { ...BODY, units: 0 } });
        expect(badUnits.status).to.equal(400);
        expect(badUnits.body.error).to.equal("body.units: must be at least 1");
        const fractional = await buyer.request<{ error: string }>("POST", `${base}/tasks`, { audience, body: { ...BODY, units: 1.5 } });
        expect(fractional.body.error).to.equal("body.units: must be a whole number");

        await queue.pass();
        const ledgerTaskId = tasks.get(created.body.taskId)!.ledgerTaskId!;
        const shown = await buyer.call<{ state: string; node: string; chain: { taskId: string; status: string; assignee: string } }>("GET", `${base}/tasks/${created.body.taskId}`, { audience });
        expect(shown).to.deep.include({ state: "pending", node: A });
        expect(shown.chain).to.deep.include({ taskId: ledgerTaskId, status: "Assigned", assignee: A });

        const spec = await validator.call<TaskSpec>("GET", `${base}/ledger/tasks/${ledgerTaskId}/spec`, { audience });
        expect(spec).to.deep.equal({ ...tasks.get(created.body.taskId)!.spec, taskId: created.body.taskId, ledgerTaskId });
        const refused = await buyer.request<{ error: string }>("GET", `${base}/ledger/tasks/${ledgerTaskId}/spec`, { audience });
        expect(refused.status).to.equal(403);
        expect(refused.body.error).to.match(new RegExp(`has no power in epoch ${epoch}`));
        const unknown = await validator.request("GET", `${base}/ledger/tasks/77777/spec`, { audience });
        expect(unknown.status).to.equal(404);
        const unsigned = await fetch(`${base}/ledger/tasks/${ledgerTaskId}/spec`);
        expect(unsigned.status).to.equal(401);
      } finally {
        await closeServer(app);
      }
    });

    it("does not fail a drawn task that its node has not taken when the node dies; fails the ones it runs", async () => {
      const { tasks, queue } = await open(runs.single, { healthy: [A] }); // A alone is enrolled: every draw is A
      const first = await tasks.create(BODY);
      await queue.pass();
      expect(tasks.get(first.taskId)).to.deep.include({ state: "pending", assignee: A });
      doubles.get(A)!.refuseAll = { status: 503, error: "no Docker engine answers" };
      const second = await tasks.create(BODY);
      await queue.pass();
      expect(tasks.get(second.taskId)).to.deep.include({ state: "assigned", assignee: A, dispatchError: "503 no Docker engine answers" });
      expect(tasks.failActive(A, "node dead")).to.deep.equal([first.taskId]);
      expect(tasks.get(first.taskId)).to.deep.include({ state: "failed", error: "node dead" });
      expect(tasks.get(second.taskId)).to.deep.include({ state: "assigned", error: null });
    });

    it("follows TaskLedger's events into the chain view the buyer reads (redelivered events counted once)", async () => {
      const { tasks, queue, chain, store } = await open(runs.single, { healthy: [A] });
      const delivered: ChainEvent[] = [];
      const follower = new EventFollower({
        chain,
        store,
        name: "master-ledger",
        logger: silent,
        contracts: ["TaskLedger"],
        handle: async (event) => {
          delivered.push(event);
          await queue.handleEvent(event);
        },
      });
      const { taskId } = await tasks.create(BODY);
      await queue.pass();
      const ledgerTaskId = tasks.get(taskId)!.ledgerTaskId!;
      const from = (await eco.blockNumber()) + 1;
      const ledgerAs = (node: string) => eco.chain(eco.nodeKeys.get(node)!).contracts.taskLedger;
      const resultHash = id("the result of the task");

      // Powers in the epoch: A 10 (the assignee), B 10, C 30, D 25, E 25.
      await (await ledgerAs(A).completeTask(ledgerTaskId, resultHash)).wait();
      await (await ledgerAs(B).submitValidation(ledgerTaskId, true, id("reproduced"))).wait();
      // Votes carry seals: C opens the dispute with the seal of another result, E votes the executor's seal.
      const otherSeal = resultSeal(id("another result"));
      const ownSeal = resultHash; // completeTask posts the executor's seal itself
      await (await ledgerAs(C).submitValidation(ledgerTaskId, false, otherSeal)).wait(); // opens a dispute
      await (await ledgerAs(E).vote(ledgerTaskId, false, id("E reproduced"))).wait(); // counts for the executor's seal
      await follower.poll();
      let view = tasks.view(tasks.get(taskId)!).chain!;
      expect(view).to.deep.include({ taskId: ledgerTaskId, status: "Completed", resultHash });
      expect(view.validations).to.deep.equal([
        { validator: B, ok: true },
        { validator: C, ok: false },
      ]);
      expect(view.dispute).to.deep.include({ status: "Open", accuser: C, invalidWeight: "30" });
      expect(view.dispute!.votes).to.deep.equal([
        { voter: C, seal: otherSeal, invalid: true, weight: "30" },
        { voter: E, seal: ownSeal, invalid: false, weight: "25" },
      ]);

      await (await ledgerAs(D).vote(ledgerTaskId, true, otherSeal)).wait(); // 55 of the 90 that may vote on C's seal: decided
      await follower.poll();
      const [resolved] = await eco.ledgerEvents("DisputeResolved", from, ledgerTaskId);
      expect(resolved.args.slashed).to.be.greaterThan(0n);
      view = tasks.view(tasks.get(taskId)!).chain!;
      expect(view.status).to.equal("Invalidated");
      expect(view.dispute).to.deep.include({
        status: "Invalidated",
        invalidWeight: "55",
        validWeight: "35",
        slashed: resolved.args.slashed.toString(),
        reward: resolved.args.reward.toString(),
      });
      expect(logged(/dispute resolved: another seal won a majority/)[0]).to.include({ subsystem: "Disputes", ledgerTaskId, outcome: "Invalidated", slashed: resolved.args.slashed.toString() });

      // At-least-once delivery: everything again (votes after the resolution among it) changes and logs nothing.
      const before = logs.length;
      for (const event of delivered) await queue.handleEvent(event);
      expect(logs.length).to.equal(before, "a redelivered event is not logged again");
      expect(tasks.view(tasks.get(taskId)!).chain).to.deep.equal(view);
      // The follower delivered every run's TaskLedger events; the other runs' tasks are not this master's.
      const others = delivered.filter((e) => e.args.taskId !== undefined && String(e.args.taskId) !== ledgerTaskId);
      expect(others.some((e) => e.name === "TaskExpired")).to.equal(true);
      for (const e of others) expect(tasks.chainView(String(e.args.taskId))).to.equal(undefined);
      await follower.stop();
    });
  });
});
