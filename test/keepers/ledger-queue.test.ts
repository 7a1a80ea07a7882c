/**
 * The master's chain assignment (keepers/master/ledger.ts, tasks.ts) over TEST DOUBLES of the chain
 * (support/fake-ledger.ts: TaskLedger's rules, receipts with real TaskLedger logs) and of the miners (a
 * client answering per endpoint), with the real TaskBook on real SQLite files. What the contracts
 * themselves do is covered against a devchain in ledger-devchain.test.ts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { expect } from "chai";
import { Wallet, getAddress } from "ethers";
import type { AddressInfo } from "node:net";
import { FileStore } from "../../keepers/master/files.js";
import { LedgerQueue } from "../../keepers/master/ledger.js";
import type { MasterNode, NodeTracker } from "../../keepers/master/nodes.js";
import { buildApp } from "../../keepers/master/routes.js";
import { type AssignmentMode, TaskBook } from "../../keepers/master/tasks.js";
import { SignedClient, closeServer, listen } from "../../keepers/shared/http.js";
import { createLogger } from "../../keepers/shared/log.js";
import { createMetrics } from "../../keepers/shared/metrics.js";
import { KeeperStore } from "../../keepers/shared/store.js";
import { specHash } from "../../keepers/shared/task-hash.js";
import type { TaskSpec } from "../../keepers/miner/task-spec.js";
import { FakeClock, FakeLedger, FakeTx } from "./support/fake-ledger.js";

const RUN_ID = 5n;
const BODY = { image: "computenet/busybox:latest", command: ["sh", "-c", "echo 42 > /data/a.txt"], memoryMB: 64, cpus: 0.5 };
const address = () => getAddress(Wallet.createRandom().address);

interface Answer {
  status: number;
  body: unknown;
}

/** TEST DOUBLE of the miners' HTTP: answers per endpoint, records every request. */
class FakeMiners {
  readonly requests: Array<{ method: string; url: string; audience: string; body: TaskSpec }> = [];
  readonly answers = new Map<string, (body: TaskSpec) => Answer>();

  asClient(): SignedClient {
    return {
      request: async (method: string, url: string, options: { audience: string; body?: unknown }) => {
        this.requests.push({ method, url, audience: options.audience, body: options.body as TaskSpec });
        const endpoint = new URL(url).origin;
        const answer = this.answers.get(endpoint);
        if (!answer) throw new Error(`fetch failed: connect ECONNREFUSED ${endpoint}`);
        return answer(options.body as TaskSpec);
      },
    } as unknown as SignedClient;
  }

  to(endpoint: string) {
    return this.requests.filter((r) => r.url.startsWith(endpoint));
  }
}

const taken = (body: TaskSpec): Answer => ({
  status: 202,
  body: { taskId: body.taskId, runId: body.runId, state: "pending", exitCode: null, restarts: 0, startedAt: null, finishedAt: null },
});
const refused = (status: number, error: string) => (): Answer => ({ status, body: { error } });

describe("master: chain assignment of tasks (TaskLedger test double)", function () {
  this.timeout(20_000);
  let dir: string;
  let clock: FakeClock;
  let ledger: FakeLedger;
  let tx: FakeTx;
  let miners: FakeMiners;
  let store: KeeperStore;
  let tasks: TaskBook;
  let queue: LedgerQueue;
  let logs: Array<Record<string, unknown>>;
  const master = address();
  const nodeA = address();
  const nodeB = address();
  const nodeC = address();
  const endpoints: Record<string, string> = { [nodeA]: "http://127.0.0.1:9001", [nodeB]: "http://127.0.0.1:9002", [nodeC]: "http://127.0.0.1:9003" };
  let healthy: string[];

  const node = (n: string): MasterNode => ({ node: n, state: "Healthy", participation: "Member", endpoint: endpoints[n] ?? null } as MasterNode);

  /** A master (TaskBook + LedgerQueue) over the data dir: a second call is a restart. */
  const open = (assignment: AssignmentMode = "chain") => {
    store?.close();
    store = new KeeperStore(path.join(dir, "master.sqlite"));
    const logger = createLogger({
      component: "master",
      level: "debug",
      destination: new Writable({
        write(chunk, _enc, done) {
          for (const line of String(chunk).split("\n").filter(Boolean)) logs.push(JSON.parse(line) as Record<string, unknown>);
          done();
        },
      }),
    });
    const metrics = createMetrics("master-test");
    tasks = new TaskBook({
      db: store.db,
      runId: RUN_ID,
      assignment,
      client: miners.asClient(),
      log: logger.child({ subsystem: "Tasks" }),
      metrics,
      healthyMembers: () => healthy.map(node),
      allNodes: () => healthy.map(node),
    });
    queue = new LedgerQueue({
      chain: ledger.chain(),
      runId: RUN_ID,
      tasks,
      nodes: { get: (n: string) => (endpoints[getAddress(n)] ? node(getAddress(n)) : undefined), healthyMembers: () => healthy.map(node) },
      client: miners.asClient(),
      tx: tx.asTxSender(),
      logger,
      metrics,
      clock: clock.asEpochClock(),
      dispatchRetry: { baseMs: 1, maxMs: 5 },
    });
  };

  const logged = (msg: RegExp) => logs.filter((l) => msg.test(String(l.msg)));
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "cn-ledger-queue-"));
    clock = new FakeClock();
    ledger = new FakeLedger(clock);
    ledger.masterOf.set(RUN_ID, master);
    tx = new FakeTx(ledger, master);
    miners = new FakeMiners();
    miners.answers.set(endpoints[nodeA], taken);
    miners.answers.set(endpoints[nodeB], taken);
    miners.answers.set(endpoints[nodeC], taken);
    logs = [];
    healthy = [nodeA, nodeB, nodeC];
    open();
  });

  afterEach(async () => {
    await queue.stop();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers at once with a queued task and says why it waits (genesis, an epoch not advanced, its phase, no enrolled weight)", async () => {
    const created = await tasks.create({ ...BODY, units: 3 });
    expect(created).to.deep.include({ node: null, state: "queued", units: 3 });
    expect(created.taskId).to.match(/^[0-9a-f]{16}$/);

    clock.epoch = 0n;
    await queue.pass();
    expect(tasks.get(created.taskId)!.waiting).to.match(/epoch clock has not started/);

    clock.epoch = 2n;
    clock.phases.set(2n, "Work");
    await queue.pass();
    expect(tasks.get(created.taskId)!.waiting).to.equal("epoch 2 has not been advanced (no PoC beacon): nobody can be drawn in it");

    clock.epoch = 1n;
    await queue.pass();
    expect(tasks.get(created.taskId)!.waiting).to.equal("epoch 1 is in its PoC phase: tasks are created in the Work phase");
    const before = logged(/^tasks stay queued/).length;
    await queue.pass();
    expect(logged(/^tasks stay queued/)).to.have.length(before, "an unchanged reason is logged once");

    clock.phases.set(1n, "Work");
    await queue.pass(); // nobody has power: nobody to enroll or draw
    const task = tasks.get(created.taskId)!;
    expect(task.state).to.equal("queued");
    expect(task.waiting).to.equal(`no member of run ${RUN_ID} is enrolled with power in epoch 1: nobody to draw`);
    expect(logged(/^tasks stay queued: no member/)[0]).to.include({ epoch: "1", phase: "Work", enrolled: 0, healthyMembers: 3 });
    expect(tx.count("createTask")).to.equal(0);
    expect(tasks.view(task)).to.deep.include({ state: "queued", node: null, chain: null, waiting: task.waiting, units: 3 });
  });

  it("enrolls healthy members with power that are not enrolled, creates the task on chain and sends it to the drawn node only", async () => {
    const { taskId } = await tasks.create({ ...BODY, units: 3 });
    clock.phases.set(1n, "Work");
    ledger.setPower(1n, nodeA, 30n);
    ledger.setPower(1n, nodeB, 70n);
    // nodeC has no power; nodeA enrolled itself already.
    ledger.enrolled.set(`${RUN_ID}:1`, [{ node: nodeA, weight: 30n }]);
    ledger.draws.push(nodeB);

    await queue.pass();
    expect(tx.calls.filter((c) => c.fn === "enroll").map((c) => c.args)).to.deep.equal([[RUN_ID, nodeB]]);
    expect(logged(/member enrolled in the run's draws/)[0]).to.include({ miner: nodeB, power: "70", weight: "70", cumulative: "100" });
    expect(logged(/healthy member without power/)[0]).to.include({ miner: nodeC });

    const task = tasks.get(taskId)!;
    const spec = task.spec;
    expect(tx.calls.filter((c) => c.fn === "createTask").map((c) => c.args)).to.deep.equal([[RUN_ID, specHash(spec), 3n]]);
    expect(task).to.deep.include({ state: "pending", node: nodeB, ledgerTaskId: "1", epoch: "1", assignee: nodeB, waiting: null });

    // Sent to the assignee only, as today's signed dispatch, with the master's task id and the ledger id.
    expect(miners.requests).to.have.length(1);
    const sent = miners.requests[0];
    expect(sent).to.deep.include({ method: "POST", url: `${endpoints[nodeB]}/tasks`, audience: nodeB.toLowerCase() });
    expect(sent.body).to.deep.equal({ ...spec, taskId, ledgerTaskId: "1" });
    expect(specHash(sent.body)).to.equal(ledger.tasks.get(1n)!.specHash);

    const draw = logged(/the chain drew the task's node by power/)[0];
    expect(draw).to.include({ taskId, ledgerTaskId: "1", epoch: "1", assignee: nodeB, draws: 1, units: "3", pay: "30", assigneePower: "70", enrolled: 2, enrolledWeight: "100", drawProbability: 0.7 });
    expect(logged(/task sent to the node the chain drew/)[0]).to.include({ miner: nodeB, state: "pending" });

    const view = tasks.view(task);
    expect(view.chain).to.deep.include({ taskId: "1", epoch: "1", assignee: nodeB, status: "Assigned", resultHash: null, validations: [], dispute: null, pay: "30", units: "3" });

    // Later passes enroll nobody again and create nothing more.
    await queue.pass();
    expect(tx.count("enroll")).to.equal(1);
    expect(tx.count("createTask")).to.equal(1);
  });

  it("retries a refused dispatch with backoff to the same node until the epoch's end, then expires and re-queues it, at most 3 times", async () => {
    const { taskId } = await tasks.create(BODY);
    miners.answers.set(endpoints[nodeB], refused(409, "this node is not a member of run 5"));
    const epochWork = () => {
      clock.phases.set(clock.epoch, "Work");
      ledger.setPower(clock.epoch, nodeA, 10n);
      ledger.setPower(clock.epoch, nodeB, 90n);
      ledger.draws.push(nodeB);
    };
    epochWork();
    await queue.pass();
    let task = tasks.get(taskId)!;
    expect(task).to.deep.include({ state: "assigned", assignee: nodeB, dispatchTries: 1 });
    expect(task.waiting).to.equal(`the assignee ${nodeB} did not take it (409 this node is not a member of run 5); retrying in 1 ms until the end of epoch 1`);
    expect(task.dispatchError).to.equal("409 this node is not a member of run 5");
    await sleep(10);
    await queue.pass();
    await sleep(10);
    await queue.pass();
    expect(miners.to(endpoints[nodeB]).length).to.be.at.least(3);
    expect(miners.to(endpoints[nodeA])).to.have.length(0, "never sent to another node");
    expect(tasks.get(taskId)!.dispatchTries).to.equal(miners.to(endpoints[nodeB]).length);

    for (let expiry = 1; expiry <= 4; expiry++) {
      clock.endEpoch("PoC");
      await queue.pass(); // the old epoch's task expires; the new epoch is not in its Work phase yet
      task = tasks.get(taskId)!;
      const expired = tasks.chainViewsOf(taskId).at(-1)!;
      expect(expired).to.deep.include({ status: "Expired", released: "10" });
      if (expiry <= 3) {
        expect(task).to.deep.include({ state: "queued", requeues: expiry, ledgerTaskId: null, assignee: null, node: "" });
        expect(task.waiting).to.match(/^epoch \d+ is in its PoC phase/);
        const requeued = logged(/queued again for a new on-chain task/);
        expect(requeued).to.have.length(expiry);
        expect(requeued.at(-1)!.msg).to.match(
          new RegExp(`^ledger task ${expiry} \\(epoch ${expiry}\\) expired before its assignee ${nodeB} took it \\(\\d+ dispatch attempts?, last: 409 this node is not a member of run 5\\); queued again`),
        );
        epochWork();
        await queue.pass();
        expect(tasks.get(taskId)).to.deep.include({ state: "assigned", ledgerTaskId: String(expiry + 1), assignee: nodeB });
      }
    }
    task = tasks.get(taskId)!;
    expect(task.state).to.equal("failed");
    expect(task.error).to.equal(
      `gave up after 4 on-chain tasks (3 re-queues): the chain drew ${[1, 2, 3, 4].map((i) => `${nodeB} (ledger task ${i}, epoch ${i})`).join(", ")} and none took the task`,
    );
    expect(tx.count("createTask")).to.equal(4);
    expect(tx.count("expireTask")).to.equal(4);
    expect(ledger.escrow).to.equal(1_000_000n, "every expired task's pay went back to the escrow");
    const view = tasks.view(task);
    expect(view.chain).to.deep.include({ taskId: "4", status: "Expired" });
    expect((view as { chainHistory?: Array<{ taskId: string }> }).chainHistory!.map((v) => v.taskId)).to.deep.equal(["1", "2", "3"]);
  });

  it("keeps sending to an assignee with no known endpoint, never to another node", async () => {
    const { taskId } = await tasks.create(BODY);
    const stranger = address(); // drawn, but unknown to this master
    clock.phases.set(1n, "Work");
    ledger.setPower(1n, nodeA, 10n);
    ledger.draws.push(stranger);
    await queue.pass();
    const task = tasks.get(taskId)!;
    expect(task).to.deep.include({ state: "assigned", assignee: stranger });
    expect(task.waiting).to.match(/no endpoint known for the assignee \(node state unknown to this master\)/);
    expect(miners.requests).to.have.length(0);
  });

  it("never creates a second on-chain task when it crashed between sending createTask and reading its receipt", async () => {
    const { taskId } = await tasks.create(BODY);
    clock.phases.set(1n, "Work");
    ledger.setPower(1n, nodeA, 10n);
    tx.loseConnectionAfterRecord = true;
    await queue.pass();
    let task = tasks.get(taskId)!;
    expect(task.state).to.equal("creating");
    const recorded = task.createTx!.hash;
    expect(recorded).to.match(/^0x[0-9a-f]{64}$/);
    expect(ledger.tasks.size).to.equal(1, "the transaction was mined");

    await queue.stop();
    open(); // restart on the same data dir
    await queue.pass();
    task = tasks.get(taskId)!;
    expect(task).to.deep.include({ state: "pending", ledgerTaskId: "1", assignee: nodeA, createTx: null });
    expect(tx.count("createTask")).to.equal(1);
    expect(tx.calls.filter((c) => c.fn === "resume").map((c) => c.args[0])).to.deep.equal([recorded]);
    expect(ledger.tasks.size).to.equal(1);
    expect(miners.to(endpoints[nodeA])).to.have.length(1);
  });

  it("creates the task again when the recorded createTask can never be mined, and re-sends a task caught mid-dispatch", async () => {
    const { taskId } = await tasks.create(BODY);
    clock.phases.set(1n, "Work");
    ledger.setPower(1n, nodeA, 10n);
    tx.dropAfterRecord = true;
    await queue.pass();
    expect(tasks.get(taskId)!.state).to.equal("creating");
    expect(ledger.tasks.size).to.equal(0);

    await queue.pass(); // recovery: never mined, nonce gone → queued again → created anew in the same pass
    expect(tx.calls.filter((c) => c.fn === "resume")).to.have.length(1);
    expect(ledger.tasks.size).to.equal(1);
    expect(tasks.get(taskId)).to.deep.include({ state: "pending", ledgerTaskId: "1" });

    // A crash while the POST to the assignee was in flight: after the restart it goes to the same node again.
    tasks.update(taskId, { state: "dispatching" });
    await queue.stop();
    open();
    expect(tasks.get(taskId)!.state).to.equal("assigned");
    expect(logged(/chain tasks left mid-dispatch/)).to.have.length(1);
    await queue.pass();
    expect(tasks.get(taskId)!.state).to.equal("pending");
    expect(miners.to(endpoints[nodeA])).to.have.length(2);
    expect(tx.count("createTask")).to.equal(1);
  });

  it("fails a task the chain refuses for a reason of its own (escrow) and goes on with the others", async () => {
    ledger.escrow = 100n;
    const big = await tasks.create({ ...BODY, units: 1_000 });
    const small = await tasks.create({ ...BODY, units: 2 });
    clock.phases.set(1n, "Work");
    ledger.setPower(1n, nodeA, 10n);
    await queue.pass();
    expect(tasks.get(big.taskId)!.state).to.equal("failed");
    expect(tasks.get(big.taskId)!.error).to.match(/^the chain refused to create the task: createTask reverted: TrainingRunsInsufficientEscrow/);
    expect(tasks.get(small.taskId)).to.deep.include({ state: "pending", ledgerTaskId: "1" });
  });

  it("stops creating for the pass on a queue-wide refusal (not the run's master) and keeps the tasks queued with the reason", async () => {
    ledger.masterOf.set(RUN_ID, address());
    const one = await tasks.create(BODY);
    const two = await tasks.create(BODY);
    clock.phases.set(1n, "Work");
    ledger.setPower(1n, nodeA, 10n);
    await queue.pass();
    expect(tasks.get(one.taskId)).to.deep.include({ state: "queued" });
    expect(tasks.get(one.taskId)!.waiting).to.match(/^createTask refused: createTask reverted: TaskLedgerNotMaster/);
    expect(tasks.get(two.taskId)!.state).to.equal("queued");
    expect(tx.count("createTask")).to.equal(0);
  });

  it("follows TaskLedger's events into the chain view the buyer reads (redelivered events counted once)", async () => {
    const { taskId } = await tasks.create(BODY);
    clock.phases.set(1n, "Work");
    ledger.setPower(1n, nodeA, 10n);
    await queue.pass();
    const [v1, v2, v3] = [address(), address(), address()];
    const resultHash = `0x${"ab".repeat(32)}`;
    const events = [
      ledger.event("TaskCompleted", [1n, nodeA, resultHash]),
      ledger.event("TaskValidated", [1n, v1, true, `0x${"00".repeat(32)}`, 30n]),
      ledger.event("TaskValidated", [1n, v2, false, `0x${"11".repeat(32)}`, 40n]),
      ledger.event("DisputeOpened", [1n, v2, 40n]),
      ledger.event("DisputeVote", [1n, v3, true, 20n]),
      ledger.event("DisputeVote", [1n, v1, false, 30n]),
      ledger.event("TaskValidated", [99n, v1, true, `0x${"00".repeat(32)}`, 30n]), // not this run's
    ];
    for (const e of events) await queue.handleEvent(e);
    const before = logs.length;
    for (const e of events.slice(1)) await queue.handleEvent(e); // at-least-once delivery
    expect(logs.length).to.equal(before, "a redelivered event is not logged again");
    let chain = tasks.view(tasks.get(taskId)!).chain!;
    expect(chain).to.deep.include({ taskId: "1", status: "Completed", resultHash });
    expect(chain.validations).to.deep.equal([
      { validator: v1, ok: true },
      { validator: v2, ok: false },
    ]);
    expect(chain.dispute).to.deep.include({ status: "Open", accuser: v2, invalidWeight: "60", validWeight: "30" });

    await queue.handleEvent(ledger.event("DisputeResolved", [1n, true, 60n, 30n, 500n, 100n]));
    await queue.handleEvent(ledger.event("DisputeVote", [1n, address(), false, 99n])); // late: the resolution's figures stand
    chain = tasks.view(tasks.get(taskId)!).chain!;
    expect(chain.status).to.equal("Invalidated");
    expect(chain.dispute).to.deep.include({ status: "Invalidated", invalidWeight: "60", validWeight: "30", slashed: "500", reward: "100" });
    expect(logged(/dispute resolved: the result is invalid/)[0]).to.include({ subsystem: "Disputes", ledgerTaskId: "1", slashed: "500" });
  });

  it("serves a task's exact spec to nodes with power in its epoch: 403 without, 404 for unknown ids, 400 for bad ones", async () => {
    const { taskId } = await tasks.create({ ...BODY, env: { SEED: "7" } });
    clock.phases.set(1n, "Work");
    ledger.setPower(1n, nodeA, 10n);
    const validator = address();
    ledger.setPower(1n, validator, 5n);
    await queue.pass();

    const spec = await queue.specFor("1", validator);
    expect(spec).to.deep.equal({ ...tasks.get(taskId)!.spec, taskId, ledgerTaskId: "1" });
    expect(specHash(spec)).to.equal(ledger.tasks.get(1n)!.specHash);

    const expectHttp = async (promise: Promise<unknown>, status: number, message: RegExp) => {
      try {
        await promise;
        expect.fail(`expected ${status}`);
      } catch (error) {
        expect((error as { status?: number }).status).to.equal(status);
        expect((error as Error).message).to.match(message);
      }
    };
    const outsider = address();
    await expectHttp(queue.specFor("1", outsider), 403, new RegExp(`^${outsider} has no power in epoch 1: only nodes with power in a task's epoch may read its spec$`));
    await expectHttp(queue.specFor("2", validator), 404, /^no ledger task 2 in run 5$/);
    await expectHttp(queue.specFor("01", validator), 400, /positive decimal integer/);
  });

  it("over signed HTTP: POST /tasks answers 202 queued, GET /tasks/:id shows the chain view, GET /ledger/tasks/:id/spec needs power", async () => {
    const buyerWallet = Wallet.createRandom();
    const validatorWallet = Wallet.createRandom();
    const masterWallet = Wallet.createRandom();
    const chainId = 31337n;
    const nodesStub = { run: { buyer: buyerWallet.address, master: masterWallet.address, status: 2 }, get: () => undefined, all: () => [] } as unknown as NodeTracker;
    const logger = createLogger({ component: "master", level: "silent" });
    const app = buildApp({
      runId: RUN_ID,
      address: masterWallet.address,
      chainId,
      nodes: nodesStub,
      tasks,
      ledger: queue,
      files: new FileStore(store.db, dir, logger),
      client: miners.asClient(),
      nonces: store,
      logger,
      metrics: createMetrics("routes-test"),
      maxFileBytes: 1024,
      health: () => ({}),
    });
    const server = await listen(app, 0, "127.0.0.1");
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const audience = masterWallet.address.toLowerCase();
      const buyer = new SignedClient(buyerWallet, chainId);
      const created = await buyer.request<{ taskId: string; state: string; node: string | null; units: number }>("POST", `${base}/tasks`, { audience, body: { ...BODY, units: 7 } });
      expect(created.status).to.equal(202);
      expect(created.body).to.deep.include({ state: "queued", node: null, units: 7 });
      const badUnits = await buyer.request<{ error: string }>("POST", `${base}/tasks`, { audience, body: { ...BODY, units: 0 } });
      expect(badUnits.status).to.equal(400);
      expect(badUnits.body.error).to.equal("body.units: must be at least 1");
      const fractional = await buyer.request<{ error: string }>("POST", `${base}/tasks`, { audience, body: { ...BODY, units: 1.5 } });
      expect(fractional.body.error).to.equal("body.units: must be a whole number");

      clock.phases.set(1n, "Work");
      ledger.setPower(1n, nodeA, 10n);
      ledger.setPower(1n, validatorWallet.address, 3n);
      await queue.pass();
      const shown = await buyer.call<{ state: string; node: string; chain: { taskId: string; status: string; assignee: string } }>("GET", `${base}/tasks/${created.body.taskId}`, { audience });
      expect(shown).to.deep.include({ state: "pending", node: nodeA });
      expect(shown.chain).to.deep.include({ taskId: "1", status: "Assigned", assignee: nodeA });

      const spec = await new SignedClient(validatorWallet, chainId).call<TaskSpec>("GET", `${base}/ledger/tasks/1/spec`, { audience });
      expect(spec).to.deep.equal({ ...tasks.get(created.body.taskId)!.spec, taskId: created.body.taskId, ledgerTaskId: "1" });
      const refused = await buyer.request<{ error: string }>("GET", `${base}/ledger/tasks/1/spec`, { audience });
      expect(refused.status).to.equal(403);
      expect(refused.body.error).to.match(/has no power in epoch 1/);
      const unknown = await new SignedClient(validatorWallet, chainId).request("GET", `${base}/ledger/tasks/77/spec`, { audience });
      expect(unknown.status).to.equal(404);
      const unsigned = await fetch(`${base}/ledger/tasks/1/spec`);
      expect(unsigned.status).to.equal(401);
    } finally {
      await closeServer(server);
    }
  });

  it("does not fail a drawn task that its node has not taken when the node dies; fails the ones it runs", async () => {
    const first = await tasks.create(BODY);
    clock.phases.set(1n, "Work");
    ledger.setPower(1n, nodeA, 10n);
    await queue.pass();
    expect(tasks.get(first.taskId)!.state).to.equal("pending");
    miners.answers.set(endpoints[nodeA], refused(503, "no Docker engine answers"));
    const second = await tasks.create(BODY);
    await queue.pass();
    expect(tasks.get(second.taskId)!.state).to.equal("assigned");
    expect(tasks.failActive(nodeA, "node dead")).to.deep.equal([first.taskId]);
    expect(tasks.get(first.taskId)).to.deep.include({ state: "failed", error: "node dead" });
    expect(tasks.get(second.taskId)).to.deep.include({ state: "assigned", error: null });
  });

  it("adds the chain columns to an issue-3 master_tasks table, and keeps local assignment as it was", async () => {
    await queue.stop();
    store.close();
    rmSync(dir, { recursive: true, force: true });
    dir = mkdtempSync(path.join(tmpdir(), "cn-ledger-queue-"));
    const old = new KeeperStore(path.join(dir, "master.sqlite"));
    old.db.exec(`
      CREATE TABLE master_tasks (
        task_id TEXT PRIMARY KEY, node TEXT NOT NULL, spec TEXT NOT NULL, state TEXT NOT NULL,
        status TEXT, error TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
      );
    `);
    old.db.prepare("INSERT INTO master_tasks VALUES ('old1', ?, ?, 'completed', NULL, NULL, 1, 2)").run(nodeA, JSON.stringify({ ...BODY, taskId: "old1", runId: "5" }));
    old.close();

    open("local");
    const columns = (store.db.prepare("PRAGMA table_info(master_tasks)").all() as Array<{ name: string }>).map((c) => c.name);
    expect(columns).to.include.members(["units", "ledger_task_id", "epoch", "assignee", "requeues", "create_tx", "waiting"]);
    const oldTask = tasks.get("old1")!;
    expect(oldTask).to.deep.include({ units: 1, ledgerTaskId: null, requeues: 0, state: "completed" });
    expect(tasks.view(oldTask)).to.not.have.property("chain");

    // Local: sent at once to the healthy member with the fewest active tasks; nothing on chain.
    healthy = [nodeB, nodeA];
    const created = await tasks.create({ ...BODY, units: 4 });
    const expected = [nodeA, nodeB].sort((x, y) => (x.toLowerCase() < y.toLowerCase() ? -1 : 1))[0];
    expect(created).to.deep.include({ node: expected, state: "pending", units: 4 });
    expect(miners.requests.map((r) => r.body.ledgerTaskId)).to.deep.equal([undefined]);
    expect(tx.calls).to.have.length(0);
  });
});
