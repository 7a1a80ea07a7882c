/**
 * The epoch economy of seed 000 across real processes, over two whole epochs: a Hardhat node over
 * JSON-RPC, the deployed system with short epochs, discovery, two validators (the bootstrap set that judges
 * the first epoch's PoC), a master assigning tasks through the TaskLedger, and five miners as separate
 * `computenet` processes running tasks and their validations as real Docker containers:
 *   miner-1  full speed, honest
 *   miner-2  35 % speed, honest
 *   miner-3  80 % speed, returns wrong results (CN_FAULT_WRONG_RESULT): fast, so that it surely gets tasks
 *   miner-4  60 % speed, skips its validation duties (CN_FAULT_SKIP_VALIDATION)
 *   miner-5  full speed, inflates its PoC count (CN_FAULT_POC_INFLATE)
 * Speeds are emulated by the PoC engine's throttle (a FAKE: there is no GPU here). The test is the buyer: it
 * submits deterministic tasks every epoch, and in epoch 1 one non-deterministic task (random bytes). It then
 * checks, from chain state and events only, that power follows speed, that the inflater has none, that wrong
 * results are invalidated by a power-weighted dispute and slashed, that the non-deterministic task's dispute
 * ends Unresolved (every re-execution seals another result) without slashing anyone, that the lazy validator
 * forfeits its reward, that honest miners are paid work and reward, and that escrow and emission reconcile
 * exactly.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import Dockerode from "dockerode";
import { Cluster, freshNodeKeys, type EconomySettings, type KeeperProcess } from "../../keepers/cli/cluster.js";
import { LABEL_NODE } from "../../keepers/miner/docker-runtime.js";
import { requireDocker } from "../keepers/support/docker.js";
import { waitUntil } from "./support.js";
import { DisputeStatus } from "../../scripts/lib/protocol.js";

const DEMO_IMAGE = "computenet/busybox:latest";

const ECONOMY: Partial<EconomySettings> = {
  // Onboarding five miners takes 25-40 s on an idle two-core machine; the rest is margin for a loaded one.
  genesisDelaySec: 65,
  epochLength: 75,
  pocDuration: 15,
  pocValidationDuration: 15,
  disputeWindow: 25,
  claimWindow: 40,
  // k = 10: every powered node is obliged to validate (almost) every task of the others, so that the lazy
  // miner's misses are certain to be sampled, and every wrong result is caught.
  validationKBps: 100_000,
  // The claim checks every task of an epoch (at most 32 here): whether the lazy miner forfeits does not
  // depend on a sample's luck.
  sampleSize: 32,
  // Below a third: no single node holds half of the power that may vote on another's task, so a dispute is
  // decided by at least two agreeing voters, and the non-deterministic task (every seal differs) ends Unresolved.
  maxShareBps: 3_000,
};

const MINERS: Array<{ throttle: number; env: Record<string, string> }> = [
  { throttle: 1, env: {} },
  { throttle: 0.35, env: {} },
  { throttle: 0.8, env: { CN_FAULT_WRONG_RESULT: "1" } },
  { throttle: 0.6, env: { CN_FAULT_SKIP_VALIDATION: "1" } },
  { throttle: 1, env: { CN_FAULT_POC_INFLATE: "1" } },
];
const HONEST = [0, 1];
const FAST = 0;
const SLOW = 1;
const WRONG = 2;
const LAZY = 3;
const INFLATER = 4;
/** Tasks the buyer submits per epoch. */
const TASKS_PER_EPOCH = 10;


/** P[X ≤ k] and P[X ≥ k] for X ~ Binomial(n, p). */
function binomialTails(n: number, k: number, p: number): [number, number] {
  const pmf = (i: number) => {
    let log = 0;
    for (let j = 1; j <= i; j++) log += Math.log((n - i + j) / j);
    if (p === 0) return i === 0 ? 1 : 0;
    if (p === 1) return i === n ? 1 : 0;
    return Math.exp(log + i * Math.log(p) + (n - i) * Math.log1p(-p));
  };
  let low = 0;
  let high = 0;
  for (let i = 0; i <= n; i++) {
    if (i <= k) low += pmf(i);
    if (i >= k) high += pmf(i);
  }
  return [Math.min(1, low), Math.min(1, high)];
}

const sleepUntil = (unixSec: number) => new Promise((r) => setTimeout(r, Math.max(0, unixSec * 1000 - Date.now())));

describe("integration: the epoch economy over two epochs", function () {
  this.timeout(900_000);
  let dir: string;
  let cluster: Cluster;
  const miners: KeeperProcess[] = [];
  let nodes: string[];
  const name = (address: string) => `miner-${nodes.findIndex((n) => n.toLowerCase() === address.toLowerCase()) + 1}`;

  before(async function () {
    await requireDocker(this);
    dir = await mkdtemp(path.join(os.tmpdir(), "cn-economy-"));
    cluster = await Cluster.start({ logDir: dir, deploymentsRoot: dir, heartbeatSec: 1, economy: ECONOMY, nodeKeys: freshNodeKeys() });
    nodes = MINERS.map((_, i) => cluster.nodeAddress(i));
    await cluster.startDiscovery();
    await Promise.all([cluster.startValidator(0), cluster.startValidator(1)]);
    await cluster.startMaster(["--unhealthy-after-misses", "3", "--dead-after-misses", "8"]);
    const started = await Promise.all(MINERS.map((m, i) => cluster.startMiner(i, ["--poc-throttle", String(m.throttle)], m.env)));
    miners.push(...started);
  });

  after(async () => {
    await cluster?.stop();
    const docker = new Dockerode();
    for (let i = 0; i < MINERS.length; i++) {
      const node = cluster?.nodeAddress(i).toLowerCase();
      const containers = await docker.listContainers({ all: true, filters: { label: [`${LABEL_NODE}=${node}`] } }).catch(() => []);
      for (const c of containers) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    }
    if (process.env.KEEP_CLUSTER_LOGS !== "1") await rm(dir, { recursive: true, force: true });
    else console.log(`economy cluster logs kept in ${dir}`);
  });

  it("runs PoC, power-weighted tasks, validations, a dispute and claims over two epochs, and the books reconcile", async () => {
    const c = cluster.admin.contracts;
    const buyer = cluster.buyer();
    const runId = cluster.runId;

    // Everyone onboarded before epoch 1's PoC window.
    await waitUntil(
      "five Healthy miners",
      async () => {
        const { nodes: view } = await buyer.call<{ nodes: Array<{ node: string; state: string }> }>("GET", "/nodes");
        return nodes.every((n) => view.find((v) => v.node.toLowerCase() === n.toLowerCase())?.state === "Healthy");
      },
      120_000,
    );
    // Onboarded in time for epoch 1's PoC window, or the PoC figures below cannot hold: say so plainly.
    const pocEnd1 = Number((await c.epochManager.timelineOf(1n)).pocEnd);
    const chainNow = Number((await cluster.admin.provider.getBlock("latest"))!.timestamp);
    expect(chainNow, `the five miners were Healthy only ${chainNow - pocEnd1} s after epoch 1's PoC window closed (genesis delay ${ECONOMY.genesisDelaySec} s): the machine is too loaded for this test`).to.be.below(pocEnd1);

    // The buyer submits deterministic tasks for epochs 1 and 2 (the master queues them until each Work phase).
    const submitted: string[] = [];
    let randomTask = "";
    for (const epoch of [1n, 2n]) {
      const t = await c.epochManager.timelineOf(epoch);
      await sleepUntil(Number(t.start) + 1);
      for (let i = 0; i < TASKS_PER_EPOCH; i++) {
        const n = submitted.length + 1;
        const body = { image: DEMO_IMAGE, command: ["sh", "-c", `echo "task ${n}"; echo "result ${n}" > /data/out-${n}.txt`], memoryMB: 64, cpus: 0.5, units: 2 };
        const created = await buyer.call<{ taskId: string; state: string }>("POST", "/tasks", body);
        expect(created.state).to.equal("queued");
        submitted.push(created.taskId);
      }
      if (epoch === 1n) {
        // Non-deterministic: every run writes other random bytes, so no re-execution reproduces it.
        const body = { image: DEMO_IMAGE, command: ["sh", "-c", "head -c 16 /dev/urandom > /data/random.bin"], memoryMB: 64, cpus: 0.5, units: 2 };
        randomTask = (await buyer.call<{ taskId: string; state: string }>("POST", "/tasks", body)).taskId;
      }
    }

    // Wait for the end of epoch 2's Claim phase, then settle what nobody claimed.
    const t1 = await c.epochManager.timelineOf(1n);
    const t2 = await c.epochManager.timelineOf(2n);
    await sleepUntil(Number(t2.claimEnd) + 2);

    // --- power follows compute speed; the inflater has none ---------------------------------------
    for (const epoch of [1n, 2n]) {
      const power = await Promise.all(nodes.map((n) => c.proofOfCompute.powerOf(epoch, n)));
      const status = await Promise.all(nodes.map((n) => c.proofOfCompute.commitmentOf(epoch, n)));
      expect(Number(status[INFLATER].status), `epoch ${epoch}: the inflated commitment is Rejected`).to.equal(3);
      expect(power[INFLATER], `epoch ${epoch}: the inflater has no power`).to.equal(0n);
      for (const i of [0, 1, 2, 3]) expect(Number(status[i].status), `epoch ${epoch}: ${name(nodes[i])} accepted`).to.equal(2);
      expect(power[FAST] > power[SLOW], `epoch ${epoch}: full speed beats 35 % speed (${power[FAST]} vs ${power[SLOW]})`).to.equal(true);
      const total = await c.proofOfCompute.totalPower(epoch);
      for (const p of power) expect(p * 10_000n <= total * BigInt(ECONOMY.maxShareBps!), "no share above the cap").to.equal(true);
    }

    // --- tasks: drawn by power on chain, verifiable by anyone --------------------------------------
    const created = await c.taskLedger.queryFilter(c.taskLedger.filters.TaskCreated());
    expect(created.length, "tasks created on chain").to.be.greaterThanOrEqual(2 * TASKS_PER_EPOCH - 2);
    const byNode = new Map<string, number>();
    for (const e of created) {
      const { taskId, assignee, epoch, draws } = e.args;
      expect(await c.taskLedger.drawAssignee(runId, epoch, taskId, draws - 1n), `draw of task ${taskId}`).to.equal(assignee);
      byNode.set(assignee.toLowerCase(), (byNode.get(assignee.toLowerCase()) ?? 0) + 1);
    }
    expect(byNode.get(nodes[INFLATER].toLowerCase()) ?? 0, "no task for a node without power").to.equal(0);
    // Statistically, tasks follow power: in each epoch, each miner's count of the epoch's tasks is a plausible
    // draw from Binomial(tasks, its share of the run's enrolled weight) (two-sided, at 1e-4: a false alarm
    // once in ten thousand runs, while a draw that ignored power would fail it).
    for (const epoch of [1n, 2n]) {
      const ofEpoch = created.filter((e) => e.args.epoch === epoch);
      const [, enrolledWeight] = await c.taskLedger.enrollmentOf(runId, epoch);
      for (const node of nodes) {
        const k = ofEpoch.filter((e) => e.args.assignee.toLowerCase() === node.toLowerCase()).length;
        const power = (await c.taskLedger.isEnrolled(runId, epoch, node)) ? await c.proofOfCompute.powerOf(epoch, node) : 0n;
        const share = enrolledWeight === 0n ? 0 : Number(power) / Number(enrolledWeight);
        const [low, high] = binomialTails(ofEpoch.length, k, share);
        expect(Math.min(low, high) > 1e-4, `epoch ${epoch}: ${name(node)} drew ${k} of ${ofEpoch.length} tasks with a ${(share * 100).toFixed(1)} % share (P ≤ ${low.toExponential(2)}, P ≥ ${high.toExponential(2)})`).to.equal(true);
      }
    }
    expect(byNode.get(nodes[WRONG].toLowerCase()) ?? 0, "the wrong-result miner got tasks to get wrong").to.be.greaterThan(0);

    // --- the wrong result: invalidated by a power-weighted dispute, executor slashed -----------------
    const resolved = await c.taskLedger.queryFilter(c.taskLedger.filters.DisputeResolved());
    // The non-deterministic task's on-chain tasks (the current one and any that expired before it).
    const random = await buyer.call<{ chain: { taskId: string } | null; chainHistory?: Array<{ taskId: string }> }>("GET", `/tasks/${randomTask}`);
    const randomIds = new Set([random.chain?.taskId, ...(random.chainHistory ?? []).map((h) => h.taskId)].filter((id) => id !== undefined).map(String));
    const randomResolved = resolved.filter((e) => randomIds.has(e.args.taskId.toString()));
    expect(randomResolved.length, "the non-deterministic task was disputed and its dispute ended").to.equal(1);
    expect(Number(randomResolved[0].args.outcome), "no seal wins a majority on a non-deterministic task: Unresolved").to.equal(DisputeStatus.Unresolved);
    expect([randomResolved[0].args.slashed, randomResolved[0].args.reward], "nobody slashed, no bounty").to.deep.equal([0n, 0n]);
    expect(Number((await c.taskLedger.taskOf(randomResolved[0].args.taskId)).status), "the non-deterministic task stands (Completed)").to.equal(2);
    const invalidated = [];
    for (const e of resolved) {
      if (randomIds.has(e.args.taskId.toString())) continue;
      const task = await c.taskLedger.taskOf(e.args.taskId);
      const isInvalidated = Number(e.args.outcome) === DisputeStatus.Invalidated;
      if (isInvalidated) invalidated.push(task.assignee.toLowerCase());
      // Only the wrong-result miner's tasks are ever invalidated; honest ones are never disputed successfully.
      expect(isInvalidated, `dispute on task ${e.args.taskId} of ${name(task.assignee)}`).to.equal(task.assignee.toLowerCase() === nodes[WRONG].toLowerCase());
      if (isInvalidated) {
        // The honest re-executors agree on the true result: its seal won, and it is the accuser's (bounty).
        expect(e.args.seal, "the winning seal is the accuser's").to.equal((await c.taskLedger.disputeOf(e.args.taskId)).accuserSeal);
        const voting = (await c.proofOfCompute.totalPower(task.epoch)) - task.assigneePower;
        expect(e.args.invalidWeight * 2n > voting, "invalidated by more than half the power that may vote").to.equal(true);
      }
    }
    expect(invalidated.length, "the wrong results were invalidated").to.be.greaterThan(0);
    const slashed = await c.registry.queryFilter(c.registry.filters.Slashed(nodes[WRONG]));
    expect(slashed.length, "the wrong-result miner was slashed").to.be.greaterThan(0);
    for (const i of HONEST) expect((await c.registry.queryFilter(c.registry.filters.Slashed(nodes[i]))).length, `${name(nodes[i])} never slashed`).to.equal(0);

    // --- claims --------------------------------------------------------------------------------------
    const claims = await c.settlement.queryFilter(c.settlement.filters.Claimed());
    let lazyDuties = 0;
    const claimOf = (epoch: bigint, i: number) => claims.find((e) => e.args.epoch === epoch && e.args.node.toLowerCase() === nodes[i].toLowerCase());
    for (const epoch of [1n, 2n]) {
      for (const i of HONEST) {
        const claim = claimOf(epoch, i);
        expect(claim, `${name(nodes[i])} claimed epoch ${epoch}`).to.not.equal(undefined);
        expect(claim!.args.forfeited, `${name(nodes[i])} did its duties in epoch ${epoch}`).to.equal(false);
        expect(claim!.args.reward > 0n, `${name(nodes[i])} rewarded in epoch ${epoch}`).to.equal(true);
      }
      // With k = 10 every completed task of another executor is a duty; the lazy miner validates none.
      const lazy = claimOf(epoch, LAZY);
      expect(lazy, `the lazy miner claimed epoch ${epoch}`).to.not.equal(undefined);
      let duties = 0;
      for (let i = 0n, n = await c.taskLedger.epochTaskCount(epoch); i < n; i++) {
        const task = await c.taskLedger.taskOf(await c.taskLedger.epochTaskAt(epoch, i));
        if (Number(task.status) === 2 && task.assignee.toLowerCase() !== nodes[LAZY].toLowerCase()) duties++;
      }
      expect(lazy!.args.forfeited, `the lazy miner forfeits its reward in epoch ${epoch} (${duties} duties skipped)`).to.equal(duties > 0);
      if (duties > 0) expect(lazy!.args.reward).to.equal(0n);
      lazyDuties += duties;
      expect(claimOf(epoch, INFLATER), "the inflater has nothing to claim").to.equal(undefined);
    }
    expect(lazyDuties, "the lazy miner had duties to skip").to.be.greaterThan(0);
    const paidWork = (i: number) => claims.filter((e) => e.args.node.toLowerCase() === nodes[i].toLowerCase()).reduce((a, e) => a + BigInt(e.args.work), 0n);
    expect(paidWork(0) + paidWork(1) > 0n, "honest miners were paid for work").to.equal(true);

    // --- the books reconcile ---------------------------------------------------------------------------
    // Whatever is still open after the Claim phases closes now: unclaimed work back to escrow, tasks that
    // never completed expired, the emission's unpaid rest returned to the vault.
    for (const epoch of [1n, 2n]) {
      for (const node of nodes) {
        const claim = await c.settlement.claimOf(epoch, node);
        if (!claim.claimed && !claim.expired) await (await c.settlement.expire(epoch, node)).wait();
      }
    }
    const taskCount = await c.taskLedger.taskCount();
    let payOfValidWork = 0n;
    for (let id = 1n; id <= taskCount; id++) {
      const task = await c.taskLedger.taskOf(id);
      if (Number(task.status) === 1) await (await c.taskLedger.expireTask(id)).wait();
      if (Number(task.status) === 2) payOfValidWork += task.pay;
    }
    const escrow = await c.trainingRuns.escrowOf(runId);
    expect(escrow.deposited, "escrow: in = paid + refunded + reserved + available").to.equal(escrow.paid + escrow.refunded + escrow.reserved + escrow.available);
    const workPaid = (await c.taskLedger.queryFilter(c.taskLedger.filters.WorkPaid())).reduce((a, e) => a + BigInt(e.args.amount), 0n);
    const workReleased = (await c.taskLedger.queryFilter(c.taskLedger.filters.WorkReleased())).reduce((a, e) => a + BigInt(e.args.amount), 0n);
    expect(escrow.paid, "escrow paid = work paid to providers").to.equal(workPaid);
    expect(workPaid + workReleased, "completed valid tasks' pay = paid + released unclaimed").to.equal(payOfValidWork);
    // Tasks still reserved belong to later epochs only (the buyer submitted none after epoch 2).
    const laterTasks = await c.taskLedger.epochTaskCount(3n);
    if (laterTasks === 0n) expect(escrow.reserved, "nothing reserved once every task settled").to.equal(0n);

    for (const epoch of [1n, 2n]) {
      // The validators return it once the Claim phase is over; whoever comes first, it happens once.
      if (!(await c.rewardVault.emissionOf(epoch)).returned) await (await c.rewardVault.returnUnclaimed(epoch)).wait();
      const emission = await c.rewardVault.emissionOf(epoch);
      const returned = (await c.rewardVault.queryFilter(c.rewardVault.filters.UnclaimedReturned(epoch))).reduce((a, e) => a + BigInt(e.args.amount), 0n);
      const rewards = claims.filter((e) => e.args.epoch === epoch).reduce((a, e) => a + BigInt(e.args.reward), 0n);
      expect(emission.paid, `epoch ${epoch}: vault paid = rewards claimed`).to.equal(rewards);
      expect(emission.emission, `epoch ${epoch}: emission = rewards paid + returned`).to.equal(rewards + returned);
    }
    expect(Number(t1.end)).to.be.lessThanOrEqual(Number(t2.start));
  });
});
