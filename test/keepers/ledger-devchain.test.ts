/**
 * Chain assignment end to end against the real contracts on a `hardhat node` (devchain with short
 * epochs): the master's queue (keepers/master/ledger.ts) creates tasks on TaskLedger, enrolls members with
 * power, sends each task to the node the chain drew, expires what nobody took and queues it again; the
 * miner's side (keepers/miner/ledger-tasks.ts) checks each task on chain before it starts and reports the
 * seal of its result hash; the master's event follower shows completions, validations and disputes to the
 * buyer. A miner with CN_FAULT_FAKE_VALIDATION (keepers/miner/economy.ts) fulfils its duty without
 * re-executing, and the executor's miner reports it after the Dispute phase (false-validations.ts): slashed.
 *
 * Power comes from real PoC commitments accepted by the devchain's bootstrap validators. The miners are TEST
 * DOUBLES (an HTTP endpoint per node that verifies the master's signature and hands the spec to the real
 * LedgerTasks; a task "runs" by the test writing its storage folder). Real time: epochs last about a minute.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import { NonceManager, Wallet, ZeroHash, getAddress, id, keccak256, toUtf8Bytes } from "ethers";
import { LedgerQueue } from "../../keepers/master/ledger.js";
import type { MasterNode } from "../../keepers/master/nodes.js";
import { TaskBook } from "../../keepers/master/tasks.js";
import type { DockerRuntime, TaskStatus } from "../../keepers/miner/docker-runtime.js";
import { MinerEconomy } from "../../keepers/miner/economy.js";
import { LedgerTasks } from "../../keepers/miner/ledger-tasks.js";
import { MinerState } from "../../keepers/miner/state.js";
import { computeTaskResult } from "../../keepers/miner/task-result.js";
import { validateTaskSpec } from "../../keepers/miner/task-spec.js";
import { type Chain, type ChainEvent, EventFollower, contractInterfaces } from "../../keepers/shared/chain.js";
import { EpochClock } from "../../keepers/shared/epochs.js";
import { type App, HttpError, SignedClient, closeServer, createApp, listen, requireSignature } from "../../keepers/shared/http.js";
import { createLogger } from "../../keepers/shared/log.js";
import { createMetrics } from "../../keepers/shared/metrics.js";
import { MemoryNonceStore } from "../../keepers/shared/signing.js";
import { KeeperStore } from "../../keepers/shared/store.js";
import { DiscoveryClient } from "../../keepers/shared/discovery-client.js";
import { DEFAULT_POC_PARAMS } from "../../keepers/shared/poc.js";
import { resultSeal, specHash, validationEvidence } from "../../keepers/shared/task-hash.js";
import { TxSender } from "../../keepers/shared/tx.js";
import { gpuModel, signInvite, signNodeConsent } from "../../scripts/lib/protocol.js";
import { type DevChain, startDevChain } from "./support/devchain.js";

/** Route parameters and query of the test doubles' routes. */
type P = { Params: Record<string, string>; Querystring: Record<string, string | undefined>; Body: unknown };

const TOKEN = 10n ** 18n;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, probe: () => T | Promise<T>, timeoutMs = 180_000, stepMs = 250): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

/** TEST DOUBLE of the Docker runtime: statuses set by the test, storage folders on disk. */
class FolderRuntime {
  readonly statuses = new Map<string, TaskStatus>();
  constructor(readonly root: string) {}
  status(taskId: string) {
    return this.statuses.get(taskId);
  }
  storageDir(taskId: string) {
    return path.join(this.root, taskId);
  }
  finish(taskId: string, exitCode: number): TaskStatus {
    const status: TaskStatus = { taskId, runId: "1", state: exitCode === 0 ? "completed" : "failed", exitCode, restarts: 0, startedAt: null, finishedAt: new Date().toISOString() };
    this.statuses.set(taskId, status);
    return status;
  }
}

describe("chain assignment against the real TaskLedger (devchain, short epochs)", function () {
  this.timeout(600_000);
  let dev: DevChain;
  let dir: string;
  let runId: bigint;
  let masterChain: Chain;
  let clock: EpochClock;
  let tasks: TaskBook;
  let queue: LedgerQueue;
  let follower: EventFollower;
  let masterStore: KeeperStore;
  const logs: Array<Record<string, unknown>> = [];
  const logger = createLogger({ component: "master", level: "debug", destination: { write: (line: string) => void logs.push(JSON.parse(line)) } });
  const nodeKeys: string[] = [];
  const nodes: string[] = [];
  const endpoints = new Map<string, string>();
  const servers: App[] = [];
  const miners = new Map<string, { chain: Chain; ledger: LedgerTasks; runtime: FolderRuntime; store: KeeperStore; received: string[] }>();
  /** Master task ids the miner doubles refuse (a node that never takes its task). */
  const refuse = new Set<string>();

  const asNode = (n: string) => ({ node: n, state: "Healthy", participation: "Member", endpoint: endpoints.get(n) ?? null }) as MasterNode;

  /** Registers dev node i (provider i stakes), validates it and makes it a member with the master's invite. */
  async function onboard(i: number): Promise<string> {
    const provider = await dev.connect(dev.keys.providers[i]);
    const nodeWallet = new Wallet(dev.keys.nodes[i]);
    try {
      const { registry, token, trainingRuns } = provider.contracts;
      const stake = await registry.minimumStake(0);
      await (await token.approve(await registry.getAddress(), stake)).wait();
      const deadline = BigInt(Math.floor(Date.now() / 1000) + 3600);
      const consent = await signNodeConsent(nodeWallet, { chainId: provider.chainId, verifyingContract: await registry.getAddress() }, { provider: provider.wallet!.address, nonce: await registry.nonces(nodeWallet.address), deadline });
      const caps = { gpuCount: 0, gpuModel: gpuModel(""), gpuMemoryMB: 0, cpuCores: 4, ramMB: 8192, storageGB: 100 };
      await (await registry.registerNode(nodeWallet.address, caps, stake, deadline, consent)).wait();
      await (await trainingRuns.registerForRun(runId, nodeWallet.address)).wait();
    } finally {
      provider.provider.destroy();
    }
    const validator = await dev.connect(dev.keys.validators[0]);
    try {
      const capsId = await validator.contracts.registry.capsIdOf(nodeWallet.address);
      await (await validator.contracts.challengeBoard.reportChallenge(nodeWallet.address, capsId, true, id(`challenge of ${nodeWallet.address}`))).wait();
    } finally {
      validator.provider.destroy();
    }
    const asNodeKey = await dev.connect(dev.keys.nodes[i]);
    try {
      const runs = asNodeKey.contracts.trainingRuns;
      const nonce = BigInt(1000 + i);
      const expiry = BigInt(Math.floor(Date.now() / 1000) + 3600);
      const generation = await runs.inviteGenerationOf(runId, nodeWallet.address);
      const signature = await signInvite(new Wallet(dev.keys.master), { chainId: asNodeKey.chainId, verifyingContract: await runs.getAddress() }, { runId, node: nodeWallet.address, generation, nonce, expiry });
      await (await runs.acceptInvite(runId, nodeWallet.address, nonce, expiry, signature)).wait();
    } finally {
      asNodeKey.provider.destroy();
    }
    return nodeWallet.address;
  }

  /** In `epoch`'s PoC phase: advance (once), each node commits a seed and a PoC; both dev validators accept. */
  async function provePower(epoch: bigint, counts: Map<string, bigint>): Promise<void> {
    const em = dev.admin.contracts.epochManager;
    if ((await em.lastAdvancedEpoch()) < epoch) await (await em.advance()).wait();
    for (const [i, node] of nodes.entries()) {
      const asNodeKey = await dev.connect(nodeKeys[i]);
      try {
        const seed = keccak256(toUtf8Bytes(`seed ${node} ${epoch}`));
        await (await asNodeKey.contracts.epochManager.commitSeed(epoch, await em.seedCommitment(seed, node))).wait();
        await (await asNodeKey.contracts.proofOfCompute.commitPoc(epoch, keccak256(toUtf8Bytes(`root ${node} ${epoch}`)), counts.get(node)!)).wait();
      } finally {
        asNodeKey.provider.destroy();
      }
    }
    for (const key of dev.keys.validators) {
      const v = await dev.connect(key);
      try {
        for (const node of nodes) {
          if ((await v.contracts.proofOfCompute.commitmentOf(epoch, node)).status !== 1n) continue; // decided already
          await (await v.contracts.proofOfCompute.submitVerdict(epoch, node, true, id(`verdict ${node}`))).wait();
        }
      } finally {
        v.provider.destroy();
      }
    }
  }

  /** Waits for the start of a PoC phase with at least `marginSec` left in it; returns its epoch. */
  async function nextPocPhase(marginSec = 8): Promise<bigint> {
    for (;;) {
      const { epoch, timeline, phase } = await clock.current();
      if (phase === "PoC" && timeline && timeline.pocEnd - Date.now() / 1000 > marginSec) return epoch;
      const wait = timeline ? Math.max(0.2, (phase === "NotStarted" ? timeline.start : timeline.end) - Date.now() / 1000) : 1;
      await sleep(Math.min(wait, 5) * 1000);
    }
  }

  async function waitPhase(epoch: bigint, phase: "Work" | "Dispute" | "Claim"): Promise<void> {
    await until(`epoch ${epoch} in its ${phase} phase`, async () => (await clock.phaseOf(epoch)) === phase, 300_000, 500);
  }

  async function startMinerDouble(i: number): Promise<void> {
    const node = nodes[i];
    const chain = await dev.connect(nodeKeys[i]);
    const store = new KeeperStore(path.join(dir, `miner-${i}.sqlite`));
    const runtime = new FolderRuntime(path.join(dir, `tasks-${i}`));
    const tx = new TxSender({ logger, interfaces: contractInterfaces(), signer: chain.signer as NonceManager });
    const ledger = new LedgerTasks({ chain, tx, state: new MinerState(store), runtime: runtime as unknown as DockerRuntime, logger: logger.child({ component: `miner-${i}` }), node, runId, retryBaseMs: 200 });
    const received: string[] = [];
    miners.set(node, { chain, ledger, runtime, store, received });
    const app = createApp({ logger, metrics: createMetrics(`miner-double-${i}`) });
    const signed = requireSignature({ chainId: chain.chainId, audience: node.toLowerCase(), nonces: new MemoryNonceStore() });
    app.post<P>("/tasks", { preHandler: signed }, async (req, reply) => {
      if (!(await chain.contracts.trainingRuns.isMaster(runId, req.signer))) throw new HttpError(403, "not the master");
      const spec = validateTaskSpec(req.body);
      if (refuse.has(spec.taskId)) throw new HttpError(503, "this double refuses the task");
      await ledger.admit(spec, runtime.statuses.has(spec.taskId));
      received.push(spec.taskId);
      runtime.statuses.set(spec.taskId, { taskId: spec.taskId, runId: spec.runId, state: "running", exitCode: null, restarts: 0, startedAt: new Date().toISOString(), finishedAt: null });
      reply.code(202).send(runtime.statuses.get(spec.taskId));
    });
    const server = await listen(app, 0, "127.0.0.1");
    servers.push(app);
    endpoints.set(node, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  }

  /** The double "runs" the task: writes its outputs, exits with `exitCode`, reports through LedgerTasks. */
  async function runTask(node: string, taskId: string, exitCode = 0): Promise<string> {
    const miner = miners.get(node)!;
    const folder = miner.runtime.storageDir(taskId);
    mkdirSync(folder, { recursive: true });
    writeFileSync(path.join(folder, "out.txt"), `result of ${taskId}\n`);
    const status = miner.runtime.finish(taskId, exitCode);
    miner.ledger.finished(taskId, status);
    await miner.ledger.idle();
    return (await computeTaskResult(folder, exitCode)).resultHash;
  }

  before(async () => {
    dev = await startDevChain({ genesisDelaySec: 20 });
    dir = mkdtempSync(path.join(os.tmpdir(), "cn-ledger-devchain-"));
    const buyer = await dev.connect(dev.keys.buyer);
    try {
      const runs = buyer.contracts.trainingRuns;
      await (await buyer.contracts.token.approve(await runs.getAddress(), 1_000n * TOKEN)).wait();
      const params = {
        master: new Wallet(dev.keys.master).address,
        pricePerUnit: TOKEN,
        maxMembers: 5,
        budget: 1_000n * TOKEN,
        discoveryURI: "http://127.0.0.1:1",
        requirements: { minGpuCount: 0, minGpuMemoryMB: 0, minCpuCores: 0, minRamMB: 0, minStorageGB: 0, allowedGpuModels: [] },
      };
      await (await runs.createRun(params)).wait();
      runId = await runs.runCount();
      await (await runs.startRun(runId)).wait();
    } finally {
      buyer.provider.destroy();
    }
    for (const i of [0, 1]) {
      nodeKeys.push(dev.keys.nodes[i]);
      nodes.push(await onboard(i));
    }
    for (const i of [0, 1]) await startMinerDouble(i);

    masterChain = await dev.connect(dev.keys.master);
    clock = new EpochClock(masterChain.contracts.epochManager);
    masterStore = new KeeperStore(path.join(dir, "master.sqlite"));
    const metrics = createMetrics("master-devchain");
    const client = new SignedClient(masterChain.wallet!, masterChain.chainId);
    tasks = new TaskBook({ db: masterStore.db, runId, assignment: "chain", client, log: logger, metrics, healthyMembers: () => nodes.map(asNode), allNodes: () => nodes.map(asNode) });
    const tx = new TxSender({ logger, interfaces: contractInterfaces(), signer: masterChain.signer as NonceManager });
    queue = new LedgerQueue({ chain: masterChain, runId, tasks, nodes: { get: (n: string) => asNode(getAddress(n)), healthyMembers: () => nodes.map(asNode) }, client, tx, logger, metrics, dispatchRetry: { baseMs: 500, maxMs: 2_000 } });
    follower = new EventFollower({ chain: masterChain, store: masterStore, name: "master-ledger", logger, handle: (e) => queue.handleEvent(e), contracts: ["TaskLedger"], pollMs: 200 });
  });

  after(async () => {
    await queue?.stop();
    for (const m of miners.values()) {
      await m.ledger.stop();
      m.store.close();
      m.chain.provider.destroy();
    }
    for (const s of servers) await closeServer(s);
    masterStore?.close();
    masterChain?.provider.destroy();
    await dev?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  let epoch: bigint;
  let taskA: string;
  let taskB: string;

  it("queues tasks outside the Work phase, enrolls the members with power, creates the tasks on chain and sends each to the drawn node", async () => {
    epoch = await nextPocPhase();
    taskA = (await tasks.create({ image: "computenet/busybox:latest", command: ["sh", "-c", "echo a > /data/out.txt"], memoryMB: 64, cpus: 0.5, units: 3 })).taskId;
    taskB = (await tasks.create({ image: "computenet/busybox:latest", command: ["sh", "-c", "echo b > /data/out.txt"], memoryMB: 64, cpus: 0.5, units: 2 })).taskId;
    refuse.add(taskB);
    await queue.pass();
    expect(tasks.get(taskA)!.state).to.equal("queued");
    expect(tasks.get(taskA)!.waiting).to.match(/PoC phase|has not been advanced/);

    await provePower(epoch, new Map([[nodes[0], 300n], [nodes[1], 100n]]));
    await waitPhase(epoch, "Work");
    const poc = dev.admin.contracts.proofOfCompute;
    expect(await poc.isPowerFinal(epoch)).to.equal(true);
    for (const node of nodes) expect(await poc.powerOf(epoch, node)).to.be.greaterThan(0n);

    await queue.pass();
    const ledger = dev.admin.contracts.taskLedger;
    for (const node of nodes) expect(await ledger.isEnrolled(runId, epoch, node), `${node} enrolled`).to.equal(true);
    const [count, weight] = await ledger.enrollmentOf(runId, epoch);
    expect(count).to.equal(2n);
    expect(weight).to.equal((await poc.powerOf(epoch, nodes[0])) + (await poc.powerOf(epoch, nodes[1])));

    const a = tasks.get(taskA)!;
    expect(a.ledgerTaskId).to.match(/^[1-9][0-9]*$/);
    const onChain = await ledger.taskOf(BigInt(a.ledgerTaskId!));
    expect(onChain.runId).to.equal(runId);
    expect(onChain.epoch).to.equal(epoch);
    expect(onChain.status).to.equal(1n);
    expect(onChain.units).to.equal(3n);
    expect(onChain.specHash).to.equal(specHash(a.spec));
    expect(getAddress(onChain.assignee)).to.equal(a.assignee);
    expect(await ledger.drawAssignee(runId, epoch, BigInt(a.ledgerTaskId!), 0)).to.equal(onChain.assignee, "anyone can recompute the draw");
    expect(a.state).to.equal("running");
    expect(miners.get(a.assignee!)!.received).to.deep.equal([taskA]);
    const other = nodes.find((n) => n !== a.assignee)!;
    expect(miners.get(other)!.received).to.not.include(taskA);

    const b = tasks.get(taskB)!;
    expect(b.state).to.equal("assigned");
    expect(b.waiting).to.match(/did not take it \(503 this double refuses the task\)/);
  });

  it("has the assignee report the result hash on chain, which the buyer's view shows with validations and the dispute", async () => {
    const a = tasks.get(taskA)!;
    const hash = await runTask(a.assignee!, taskA);
    const ledger = dev.admin.contracts.taskLedger;
    const onChain = await ledger.taskOf(BigInt(a.ledgerTaskId!));
    expect(onChain.status).to.equal(2n);
    // Only the seal is on chain; the result hash stays with the executor (and out of its info logs).
    expect(onChain.resultHash).to.equal(resultSeal(hash));
    expect(logs.some((l) => l.taskId === taskA && l.level !== "debug" && JSON.stringify(l).includes(hash.slice(2)))).to.equal(false);

    // The other node (power in the epoch) reads the spec, and disputes the result.
    const validatorNode = nodes.find((n) => n !== a.assignee)!;
    const spec = await queue.specFor(a.ledgerTaskId!, validatorNode);
    expect(specHash(spec)).to.equal(onChain.specHash);
    try {
      await queue.specFor(a.ledgerTaskId!, new Wallet(dev.keys.buyer).address);
      expect.fail("a signer without power must be refused");
    } catch (error) {
      expect((error as HttpError).status).to.equal(403);
    }
    const v = miners.get(validatorNode)!.chain;
    await (await v.contracts.taskLedger.submitValidation(BigInt(a.ledgerTaskId!), false, id("did not reproduce"))).wait();

    // The executor cannot vote, so the only other node holds all the voting power: its failed validation
    // decides the dispute at once.
    await until("the master's view of the completion and the dispute", async () => {
      await follower.poll();
      const view = tasks.view(tasks.get(taskA)!).chain;
      return view?.dispute && view.dispute.status !== "Open" && view.validations.length === 1 ? view : undefined;
    });
    const view = tasks.view(tasks.get(taskA)!).chain!;
    expect(view).to.deep.include({ taskId: a.ledgerTaskId, epoch: epoch.toString(), assignee: a.assignee, resultHash: resultSeal(hash), status: "Invalidated" });
    expect(view.validations).to.deep.equal([{ validator: validatorNode, ok: false }]);
    expect(view.dispute).to.deep.include({ status: "Invalidated", accuser: validatorNode });
    expect((await ledger.taskOf(BigInt(a.ledgerTaskId!))).status).to.equal(3n, "Invalidated on chain");

    // Reported once: a second final callback sends nothing.
    const miner = miners.get(a.assignee!)!;
    miner.ledger.finished(taskA, miner.runtime.status(taskA)!);
    await miner.ledger.idle();
    expect(logs.filter((l) => l.msg === "completeTask: confirmed" && l.taskId === taskA)).to.have.length(1);
  });

  it("expires, after the epoch's end, the task its assignee never took, and queues it again for a new on-chain task", async () => {
    const b = tasks.get(taskB)!;
    const ledger = dev.admin.contracts.taskLedger;
    const escrowBefore = await dev.admin.contracts.trainingRuns.escrowOf(runId);
    await waitPhase(epoch, "Dispute");
    await queue.pass();
    const onChain = await ledger.taskOf(BigInt(b.ledgerTaskId!));
    expect(onChain.status).to.equal(4n, "Expired");
    const expired = tasks.chainViewsOf(taskB).find((v) => v.taskId === b.ledgerTaskId)!;
    expect(expired).to.deep.include({ status: "Expired", released: onChain.pay.toString() });
    const escrowAfter = await dev.admin.contracts.trainingRuns.escrowOf(runId);
    expect(escrowAfter.available - escrowBefore.available).to.equal(onChain.pay);
    expect(tasks.get(taskB)).to.deep.include({ state: "queued", requeues: 1, ledgerTaskId: null });
    expect(miners.get(b.assignee!)!.received).to.not.include(taskB);
  });

  it("has a CN_FAULT_FAKE_VALIDATION miner validate ok without re-executing, and the executor's miner report it after the Dispute phase: slashed", async () => {
    // Two epochs on: the one in between has no power, so the bootstrap validators judge the PoC again.
    let next = await nextPocPhase();
    while (next < epoch + 2n) {
      await waitPhase(next, "Work");
      next = await nextPocPhase();
    }
    await provePower(next, new Map([[nodes[0], 300n], [nodes[1], 100n]]));
    await waitPhase(next, "Work");
    const taskC = (await tasks.create({ image: "computenet/busybox:latest", command: ["sh", "-c", "echo c > /data/out.txt"], memoryMB: 64, cpus: 0.5, units: 1 })).taskId;
    await queue.pass();
    const c = tasks.get(taskC)!;
    expect(c.state).to.equal("running");
    const ledgerTaskId = BigInt(c.ledgerTaskId!);
    const executor = c.assignee!;
    const faker = nodes.find((n) => n !== executor)!;
    const hash = await runTask(executor, taskC);
    const ledger = dev.admin.contracts.taskLedger;
    expect((await ledger.taskOf(ledgerTaskId)).resultHash).to.equal(resultSeal(hash));

    /** The epoch economy of node `node` (never started: the test hands it the chain's events). */
    const economyOf = (node: string, fakeValidation: boolean) => {
      const miner = miners.get(node)!;
      const wallet = new Wallet(nodeKeys[nodes.indexOf(node)]);
      const state = new MinerState(miner.store);
      return new MinerEconomy({
        chain: miner.chain,
        wallet,
        tx: new TxSender({ logger, interfaces: contractInterfaces(), signer: miner.chain.signer as NonceManager }),
        store: miner.store,
        logger: logger.child({ component: `economy-${nodes.indexOf(node)}` }),
        metrics: createMetrics(`economy-${nodes.indexOf(node)}`),
        client: new SignedClient(wallet, miner.chain.chainId),
        discovery: new DiscoveryClient(wallet, miner.chain.chainId, "http://127.0.0.1:1"),
        runId,
        pocParams: DEFAULT_POC_PARAMS,
        pocThrottle: 1,
        pocSampleSize: 1,
        reexecute: async () => {
          throw new Error("this test double never re-executes");
        },
        ownResult: (id) => {
          const record = state.ledgerTaskByLedgerId(id);
          return record?.resultHash ? { resultHash: record.resultHash, epoch: record.epoch } : undefined;
        },
        master: () => undefined,
        faults: { inflatePoc: false, skipValidation: false, fakeValidation },
      });
    };
    const fakerEconomy = economyOf(faker, true);
    const executorEconomy = economyOf(executor, false);
    try {
      const completed = (await ledger.queryFilter(ledger.filters.TaskCompleted(ledgerTaskId)))[0];
      const asEvent = (e: { args: unknown; blockNumber: number; index: number; transactionHash: string }, name: string): ChainEvent => ({
        contract: "TaskLedger",
        name,
        args: e.args as ChainEvent["args"],
        blockNumber: e.blockNumber,
        logIndex: e.index,
        transactionHash: e.transactionHash,
      });
      // The faker's duty (k = 2 with one other node: certain), fulfilled without re-executing.
      await fakerEconomy.handleEvent(asEvent(completed, "TaskCompleted"));
      await until("the faker's validation", () => ledger.hasValidated(ledgerTaskId, faker));
      const validated = (await ledger.queryFilter(ledger.filters.TaskValidated(ledgerTaskId, faker)))[0];
      expect(validated.args.ok).to.equal(true);
      expect(validated.args.evidenceHash).to.not.equal(validationEvidence(hash, faker));
      expect(logs.some((l) => l.component === `economy-${nodes.indexOf(faker)}` && String(l.msg).startsWith("CN_FAULT_FAKE_VALIDATION"))).to.equal(true);

      // The executor sees it, and would not flag bound evidence.
      expect(executorEconomy.falseValidations.observe(ledgerTaskId, faker, true, validationEvidence(hash, faker))).to.equal(false);
      // A vote to uphold keeps evidence like an ok validation, and the executor checks it the same way, from
      // the DisputeVote event: the evidence stored on chain for the voter. This chain has no third powered node
      // to open a dispute and vote, so the events are built around the faker's stored evidence (a test
      // double of the event only; the evidence is read from the chain).
      const recorded = () =>
        (miners.get(executor)!.store.db.prepare("SELECT validator FROM economy_false_validations WHERE task_id = ?").all(ledgerTaskId.toString()) as { validator: string }[]).map((r) => r.validator);
      const voteOf = (seal: string, taskId = ledgerTaskId): ChainEvent => ({
        ...asEvent(validated, "DisputeVote"),
        args: { taskId, voter: faker, seal, weight: 100n, tally: 100n } as unknown as ChainEvent["args"],
      });
      await executorEconomy.handleEvent(voteOf(resultSeal(`0x${"ab".repeat(32)}`))); // another seal: a vote to invalidate keeps no evidence
      await executorEconomy.handleEvent(voteOf(resultSeal(hash), ledgerTaskId + 1000n)); // a task it did not execute
      expect(recorded()).to.deep.equal([]);
      await executorEconomy.handleEvent(voteOf(resultSeal(hash)));
      expect(recorded()).to.deep.equal([faker]);
      // The TaskValidated event of the same evidence records nothing more: one report per validator and task.
      await executorEconomy.handleEvent(asEvent(validated, "TaskValidated"));
      expect(recorded()).to.deep.equal([faker]);
      // Not reported while validations are still accepted (the Dispute phase): it would reveal the hash.
      await waitPhase(next, "Dispute");
      expect(await executorEconomy.falseValidations.due(next + 1n)).to.deep.equal([]);
      await waitPhase(next, "Claim");
      expect(await executorEconomy.falseValidations.due(next + 1n)).to.deep.equal([next.toString()]);

      const stakeBefore = (await dev.admin.contracts.registry.getNode(faker)).stake;
      const slashBps = (await ledger.parameters()).falseValidationSlashBps;
      expect(slashBps > 0n).to.equal(true);
      expect(await executorEconomy.falseValidations.report(next.toString())).to.equal(1);
      const reported = await ledger.queryFilter(ledger.filters.FalseValidationRefuted(ledgerTaskId, faker));
      expect(reported).to.have.length(1);
      expect(getAddress(reported[0].args.reporter)).to.equal(executor);
      expect(reported[0].args.slashed).to.equal((stakeBefore * slashBps) / 10_000n);
      expect((await dev.admin.contracts.registry.getNode(faker)).stake).to.equal(stakeBefore - reported[0].args.slashed);
      expect(await ledger.okEvidenceHashFor(ledgerTaskId, faker)).to.equal(ZeroHash);
      // Reported once: nothing left for the epoch.
      expect(await executorEconomy.falseValidations.due(next + 1n)).to.deep.equal([]);
      expect(logs.some((l) => String(l.msg).startsWith(`reported the false validation of task ${ledgerTaskId}`))).to.equal(true);
    } finally {
      await fakerEconomy.stop();
      await executorEconomy.stop();
    }
  });
});
