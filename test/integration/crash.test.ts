/**
 * Crash tests (issue 6): keepers killed with SIGKILL at chosen points (keepers/shared/failpoints.ts,
 * `CN_FAILPOINTS`) and restarted on the same data dir, across real processes: a Hardhat node over JSON-RPC
 * (behind a TCP proxy the test can cut), the deployed system with the epoch economy, discovery, two
 * validators, a master assigning tasks through the TaskLedger, and one miner running its tasks as real
 * containers in a Docker engine of the test's own (restartable without disturbing anyone else's).
 *
 * After each crash the test checks from chain state, the keepers' APIs and the engine that nothing was lost
 * and nothing happened twice: exactly one transaction per action (every transaction of the chain is read,
 * reverted ones included), every task submitted reaches a final state, the master sees the node Healthy
 * again, the task's container was adopted (same id) and no container is left behind.
 *
 * One miner: the chain draws every task to it, so the test knows which process each failpoint kills.
 * The cases run in order on one network: 1-2 before epoch 1 (onboarding), 3-6 in epoch 1's Work phase.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import Dockerode from "dockerode";
import { type Interface, Wallet } from "ethers";
import { Cluster, freshNodeKeys, type EconomySettings, type KeeperProcess } from "../../keepers/cli/cluster.js";
import { LABEL_NODE, LABEL_TASK } from "../../keepers/miner/docker-runtime.js";
import { requireDocker } from "../keepers/support/docker.js";
import { PrivateDockerEngine, TcpProxy, lastLines, waitUntil } from "./support.js";

const IMAGE = "computenet/busybox:latest";

/**
 * Epoch 1 starts ~90 s after the deployment: time to onboard the miner through two crashes. Its Work phase
 * (~220 s) holds the task cases; PoC windows are short, and the miner computes at a third of its speed to
 * leave the 2 cores to the rest.
 */
const ECONOMY: Partial<EconomySettings> = {
  genesisDelaySec: 90,
  epochLength: 250,
  pocDuration: 15,
  pocValidationDuration: 12,
  disputeWindow: 20,
  claimWindow: 60,
  maxShareBps: 10_000,
};
/** Unhealthy after 3 missed heartbeats; never Dead (and ejected) during a restart. */
const MASTER_FLAGS = ["--unhealthy-after-misses", "3", "--dead-after-misses", "120"];

interface TaskView {
  taskId: string;
  state: string;
  exitCode: number | null;
  node: string | null;
  chain?: { taskId: string; status: string; resultHash: string | null } | null;
  status?: { containerId?: string } | null;
}

describe("integration: keepers killed at failpoints and restarted", function () {
  this.timeout(600_000);
  let dir: string;
  let cluster: Cluster;
  let engine: PrivateDockerEngine | undefined;
  let docker: Dockerode;
  let proxy: TcpProxy;
  let master: KeeperProcess;
  let miner: KeeperProcess;
  const validators: KeeperProcess[] = [];
  let node: string;
  let minerFlags: string[];
  const submitted: string[] = [];
  const t0 = Date.now();
  const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(0)} s`;

  // ------------------------------------------------------------------ helpers

  const keepers = () => [...cluster.processes.values()].filter((p) => p.alive);
  const buyer = () => cluster.buyer();
  const stateOf = async (address: string) =>
    (await buyer().call<{ nodes: Array<{ node: string; state: string; lastHeartbeat: string | null }> }>("GET", "/nodes")).nodes.find(
      (n) => n.node.toLowerCase() === address.toLowerCase(),
    );
  const task = (taskId: string) => buyer().call<TaskView>("GET", `/tasks/${taskId}`);

  /** Waits until `keeper` dies at `point`: killed by SIGKILL, after saying which failpoint fired. */
  async function crashed(keeper: KeeperProcess, point: string, timeoutMs = 90_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${keeper.name} did not die at failpoint ${point} within ${timeoutMs} ms; its last lines:\n${lastLines(keeper.text)}`)),
        timeoutMs,
      );
    });
    try {
      const { code, signal } = await Promise.race([keeper.ended, timeout]);
      expect(signal, `${keeper.name} ended with code ${code} / signal ${signal}, not SIGKILL; last lines:\n${lastLines(keeper.text)}`).to.equal("SIGKILL");
      const fired = new RegExp(`failpoint ${point.replace(/[.]/g, "\\.")}(:\\S+)? reached`);
      expect(keeper.text, `${keeper.name} died, but not at ${point}; last lines:\n${lastLines(keeper.text)}`).to.match(fired);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits with `waitUntil`, and on failure adds the named keepers' last lines to the message. */
  async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs: number, ...show: KeeperProcess[]): Promise<T> {
    try {
      return await waitUntil(what, probe, timeoutMs, 500);
    } catch (error) {
      const logs = show.map((k) => `--- ${k.name} (${k.alive ? "running" : "exited"}):\n${lastLines(k.text, 15)}`).join("\n");
      throw new Error(`${(error as Error).message} [at ${elapsed()}]\n${logs}`);
    }
  }

  /** Every transaction mined so far (reverted ones too), read block by block and kept. */
  const mined: Array<{ from: string; to: string | null; input: string; block: number }> = [];
  let scannedTo = -1;
  async function transactions(): Promise<typeof mined> {
    const provider = cluster.admin.provider;
    const head = Number(await provider.send("eth_blockNumber", []));
    for (let b = scannedTo + 1; b <= head; b++) {
      const block = (await provider.send("eth_getBlockByNumber", [`0x${b.toString(16)}`, true])) as { transactions: Array<{ from: string; to: string | null; input: string }> };
      for (const tx of block.transactions) mined.push({ from: tx.from.toLowerCase(), to: tx.to?.toLowerCase() ?? null, input: tx.input, block: b });
    }
    scannedTo = head;
    return mined;
  }

  /** Transactions calling `fn` on `contract` whose decoded arguments pass `match`, mined or reverted. */
  async function calls(contract: { interface: Interface; getAddress(): Promise<string> }, fn: string, match: (args: readonly unknown[]) => boolean = () => true): Promise<number> {
    const address = (await contract.getAddress()).toLowerCase();
    const fragment = contract.interface.getFunction(fn)!;
    return (await transactions()).filter((tx) => {
      if (tx.to !== address || !tx.input.startsWith(fragment.selector)) return false;
      return match(contract.interface.decodeFunctionData(fragment, tx.input));
    }).length;
  }

  const containersOf = async (taskId?: string) =>
    docker.listContainers({ all: true, filters: { label: [`${LABEL_NODE}=${node.toLowerCase()}`, ...(taskId ? [`${LABEL_TASK}=${taskId}`] : [])] } });

  async function submit(command: string[]): Promise<string> {
    const created = await buyer().call<{ taskId: string; state: string }>("POST", "/tasks", { image: IMAGE, command, memoryMB: 64, cpus: 0.5, units: 1 });
    submitted.push(created.taskId);
    return created.taskId;
  }

  /** Waits until the buyer sees the task completed, on chain too; returns its view. */
  const completed = (taskId: string, timeoutMs = 90_000) =>
    waitFor(
      `task ${taskId} completed at the master and on chain`,
      async () => {
        const view = await task(taskId);
        return view.state === "completed" && view.chain?.status === "Completed" ? view : undefined;
      },
      timeoutMs,
      master,
      miner,
    );

  /** One TaskCreated, one TaskCompleted and exactly one createTask and completeTask transaction for the task. */
  async function exactlyOnce(view: TaskView): Promise<void> {
    const ledger = cluster.admin.contracts.taskLedger;
    const id = BigInt(view.chain!.taskId);
    expect(await ledger.queryFilter(ledger.filters.TaskCompleted(id)), `TaskCompleted of ledger task ${id}`).to.have.length(1);
    expect(await calls(ledger, "completeTask", (a) => a[0] === id), `completeTask transactions for ledger task ${id}`).to.equal(1);
    const onChain = await ledger.taskOf(id);
    expect(onChain.status).to.equal(2n); // Completed
    expect(onChain.resultHash).to.equal(view.chain!.resultHash);
  }

  // ------------------------------------------------------------------ the network

  before(async function () {
    this.timeout(300_000);
    dir = await mkdtemp(path.join(os.tmpdir(), "cn-crash-"));
    engine = await PrivateDockerEngine.start(path.join(dir, "docker"), IMAGE);
    if (!engine) await requireDocker(this);
    docker = engine?.docker ?? new Dockerode();
    cluster = await Cluster.start({ logDir: dir, deploymentsRoot: dir, heartbeatSec: 1, economy: ECONOMY, nodeKeys: freshNodeKeys() });
    proxy = await TcpProxy.start({ host: "127.0.0.1", port: cluster.node.port });
    cluster.keeperRpcUrl = proxy.url;
    node = cluster.nodeAddress(0);
    minerFlags = ["--poc-throttle", "0.3", ...(engine ? ["--docker-socket", engine.socketPath] : [])];
    await cluster.startDiscovery();
    master = await cluster.startMaster(MASTER_FLAGS, undefined, undefined, { CN_FAILPOINTS: "tx.afterSend:createTask" });
    console.log(`      network up at ${elapsed()} (logs: ${dir}; ${engine ? `private Docker engine pid ${engine.pid}` : "the shared Docker engine: no engine restart"})`);
  });

  after(async () => {
    await cluster?.stop();
    await proxy?.cut();
    if (engine) await engine.stop();
    else {
      const left = await new Dockerode().listContainers({ all: true, filters: { label: [`${LABEL_NODE}=${node?.toLowerCase()}`] } }).catch(() => []);
      for (const c of left) await new Dockerode().getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    }
    if (process.env.KEEP_CLUSTER_LOGS !== "1") await rm(dir, { recursive: true, force: true });
    else console.log(`crash test logs kept in ${dir}`);
  });

  // ------------------------------------------------------------------ onboarding

  it("1. a validator killed right after broadcasting its challenge report: restarted, it sends no second report", async () => {
    validators[0] = await cluster.startValidator(0, [], { CN_FAILPOINTS: "tx.afterSend:reportChallenge" });
    // Armed for case 2: the master's invite comes once the node is validated.
    miner = await cluster.startMiner(0, minerFlags, { CN_FAILPOINTS: "tx.afterSend:acceptInvite" });
    await crashed(validators[0], "tx.afterSend:reportChallenge");
    validators[0] = await cluster.startValidator(0);
    validators[1] = await cluster.startValidator(1); // the second verdict giver of the PoC bootstrap set
    const board = cluster.admin.contracts.challengeBoard;
    await waitFor("the node validated", async () => board.isValidated(node), 60_000, validators[0]);
    const validator = new Wallet(cluster.keys.validators[0]).address;
    const approvals = await board.queryFilter(board.filters.ChallengeApproved(node));
    expect(approvals.map((e) => e.args.validator)).to.deep.equal([validator]);
    expect(await calls(board, "reportChallenge", (a) => String(a[0]).toLowerCase() === node.toLowerCase())).to.equal(1, "reportChallenge transactions for the node");
    // The restarted validator found the node decided: it neither challenged nor reported again.
    await new Promise((r) => setTimeout(r, 2_000));
    expect(validators[0].text).to.not.match(/"msg":"challenging node"/);
    expect(await calls(board, "reportChallenge")).to.equal(1);
  });

  it("2. a miner killed right after broadcasting acceptInvite: restarted, it is a member, heartbeats, and sends nothing again", async () => {
    await crashed(miner, "tx.afterSend:acceptInvite");
    const provider = new Wallet(cluster.keys.providers[0]).address;
    const nonce = await cluster.admin.provider.getTransactionCount(provider);
    // Armed for case 4: the first task's container.
    miner = await cluster.startMiner(0, minerFlags, { CN_FAILPOINTS: "miner.taskRunning" });
    await waitFor("the node Healthy at the master", async () => (await stateOf(node))?.state === "Healthy", 60_000, miner, master);
    expect(miner.text).to.match(/member of the run: resuming heartbeats/);
    const runs = cluster.admin.contracts.trainingRuns;
    expect(await runs.queryFilter(runs.filters.NodeJoined(cluster.runId, node))).to.have.length(1);
    expect(await calls(runs, "acceptInvite", (a) => String(a[1]).toLowerCase() === node.toLowerCase())).to.equal(1, "acceptInvite transactions");
    expect(await cluster.admin.provider.getTransactionCount(provider)).to.equal(nonce, "the provider key sent nothing after the restart");
    console.log(`      onboarded through two crashes at ${elapsed()}`);
  });

  // ------------------------------------------------------------------ tasks (epoch 1's Work phase)

  it("3. master killed after broadcasting createTask and after handling TaskCompleted, miner killed while the container runs and after broadcasting completeTask: one on-chain task, one completion, the container adopted", async () => {
    const { epochManager, proofOfCompute, taskLedger } = cluster.admin.contracts;
    const timeline = await epochManager.timelineOf(1n);
    const workAt = Number(timeline.pocValidationEnd);
    console.log(`      waiting ${Math.max(0, Math.round(workAt - Date.now() / 1000))} s for epoch 1's Work phase (at ${elapsed()})`);
    await waitFor(
      "epoch 1's Work phase with the miner holding power",
      async () => (await epochManager.currentEpoch()) === 1n && Date.now() / 1000 >= workAt + 1 && (await proofOfCompute.powerOf(1n, node)) > 0n,
      Math.max(0, workAt * 1000 - Date.now()) + 60_000,
      miner,
      validators[0],
    );

    // Long enough to outlive the miner's restart (~15 s on a busy machine): its container is adopted running.
    const t1 = await submit(["sh", "-c", "echo task one; sleep 30"]);
    // The master dies with createTask mined but its receipt unread.
    await crashed(master, "tx.afterSend:createTask");
    master = await cluster.startMaster(MASTER_FLAGS, undefined, undefined, { CN_FAILPOINTS: "chain.afterEvent:TaskCompleted" });
    const recovering = master;
    // Restarted, it finishes the recorded transaction and sends the task to its node, which dies once the container runs.
    await crashed(miner, "miner.taskRunning");
    const [container] = await containersOf(t1);
    expect(container, "the task's container").to.not.equal(undefined);
    expect(container.State).to.equal("running");
    miner = await cluster.startMiner(0, minerFlags, { CN_FAILPOINTS: "tx.afterSend:completeTask" });
    const adopted = await miner.waitFor(new RegExp(`"containerId":"${container.Id}"[^\\n]*"msg":"task adopted"`), 30_000);
    expect(adopted, "adopted while it still runs").to.include('"state":"running"');
    // The task ends: the miner dies with completeTask mined, the master right after handling its TaskCompleted.
    await Promise.all([crashed(miner, "tx.afterSend:completeTask"), crashed(master, "chain.afterEvent:TaskCompleted")]);
    // Armed for case 4.
    master = await cluster.startMaster(MASTER_FLAGS, undefined, undefined, { CN_FAILPOINTS: "storage.beforeRename" });
    miner = await cluster.startMiner(0, minerFlags, { CN_FAILPOINTS: "storage.midSync" });

    const view = await completed(t1);
    expect(view.exitCode).to.equal(0);
    await exactlyOnce(view);
    // The restarted miner found the completeTask it had recorded mined: nothing sent again.
    expect(miner.text).to.match(/"tx":"0x[0-9a-f]{64}","block":\d+[^\n]*"msg":"ledger task already completed on chain \(an earlier report was mined\)"/);
    const created = await taskLedger.queryFilter(taskLedger.filters.TaskCreated());
    expect(created.map((e) => String(e.args.taskId)), "one on-chain task for the buyer's task").to.deep.equal([view.chain!.taskId]);
    expect(await calls(taskLedger, "createTask")).to.equal(1, "createTask transactions");
    expect(recovering.text).to.match(/createTask recorded but its receipt not read: finishing it/);
    // The same container, exited, and no other.
    const after = await containersOf(t1);
    expect(after.map((c) => [c.Id, c.State])).to.deep.equal([[container.Id, "exited"]]);
    await waitFor("the node Healthy again", async () => (await stateOf(node))?.state === "Healthy", 30_000, miner, master);
  });

  it("4. master killed before renaming an uploaded file into place, miner killed between two files: each file arrives, no temporary file stays", async () => {
    const t2 = await submit(["sh", "-c", "echo alpha > /data/a.txt; echo beta > /data/b.txt; echo gamma > /data/c.txt"]);
    await crashed(master, "storage.beforeRename");
    const blobs = path.join(dir, "master", "blobs");
    expect((await readdir(blobs)).filter((f) => f.startsWith(".tmp-")), "the cut upload's temporary file").to.have.length(1);
    master = await cluster.startMaster(MASTER_FLAGS);
    expect((await readdir(blobs)).filter((f) => f.startsWith(".tmp-")), "temporary files after the restart").to.deep.equal([]);
    // The miner retries the sync; after its first file is in, it dies.
    await crashed(miner, "storage.midSync");
    // Armed for nothing: the next cases need it whole.
    miner = await cluster.startMiner(0, minerFlags);

    const view = await completed(t2);
    const files = await waitFor(
      "the task's three files at the master",
      async () => {
        const list = await buyer().call<{ files: Array<{ name: string; size: number }> }>("GET", `/tasks/${t2}/files`);
        return list.files.length === 3 ? list.files : undefined;
      },
      60_000,
      miner,
      master,
    );
    expect(files.map((f) => [f.name, f.size])).to.deep.equal([
      ["a.txt", 6],
      ["b.txt", 5],
      ["c.txt", 6],
    ]);
    // The restarted miner sent only the two files the master lacked.
    const synced = miner.text
      .split("\n")
      .filter((l) => l.includes('"msg":"task files synced to the master"') && l.includes(t2))
      .map((l) => JSON.parse(l) as { files: number; sent: number; alreadyThere: number });
    expect(synced).to.deep.equal([{ ...synced[0], files: 3, sent: 2, alreadyThere: 1 }]);
    expect((await readdir(blobs)).filter((f) => f.startsWith(".tmp-"))).to.deep.equal([]);
    await exactlyOnce(view);
  });

  it("5. the Docker engine restarted while a task runs: the miner follows the same container again, and the task is reported once", async function () {
    if (!engine) {
      // In CI the engine is ours to start (.ci/run installs it): not being able to is a failure, not a skip.
      if (process.env.CI) throw new Error("could not start a private Docker engine for the restart case (see the before hook's log)");
      this.skip();
    }
    const t3 = await submit(["sh", "-c", "sleep 20; echo three > /data/three.txt"]);
    const container = await waitFor(
      "the task's container running",
      async () => (await containersOf(t3)).find((c) => c.State === "running"),
      60_000,
      master,
      miner,
    );
    // Down for longer than the miner's container check (5 s): it sees the engine gone, not just a cut wait.
    const { downMs } = await engine!.restart(6_000);
    console.log(`      private dockerd restarted (${downMs} ms without an engine)`);
    await miner.waitFor(/Docker engine answers again: the task's container still runs; watching it again/, 30_000);
    expect(miner.text).to.match(/Docker engine unreachable while watching the task/);
    const view = await completed(t3);
    expect(view.exitCode).to.equal(0);
    expect((await containersOf(t3)).map((c) => [c.Id, c.State])).to.deep.equal([[container.Id, "exited"]]);
    await exactlyOnce(view);
    expect(miner.alive).to.equal(true);
  });

  it("6. the RPC node unreachable for 10 s: every keeper backs off, says so, and recovers by itself", async () => {
    const running = keepers();
    const from = new Map(running.map((k) => [k, k.text.length]));
    await proxy.cut();
    // Heartbeats do not go through the chain: the master keeps hearing the node, which stays Healthy.
    const seen: string[] = [];
    const cutUntil = Date.now() + 10_000;
    while (Date.now() < cutUntil) {
      const state = await stateOf(node).then((n) => n?.state, (error: Error) => `unreadable (${error.message})`);
      seen.push(String(state));
      await new Promise((r) => setTimeout(r, 1_000));
    }
    const restored = Date.now();
    await proxy.restore();
    for (const k of running) expect(k.alive, `${k.name} survived the outage; last lines:\n${lastLines(k.text)}`).to.equal(true);
    expect(seen.length).to.be.greaterThan(5);
    expect(new Set(seen), `the node's states at the master during the outage: ${seen.join(", ")}`).to.deep.equal(new Set(["Healthy"]));

    const logLines = (k: KeeperProcess) =>
      k.text
        .slice(from.get(k))
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { msg: string });
    await waitFor(
      "every keeper's event follower polling again",
      async () => running.every((k) => logLines(k).some((l) => l.msg === "event follower: poll works again")),
      30_000,
      ...running,
    );

    // The periodic loops (every event follower, the master's reconcile and task-queue passes, the miners'
    // epoch step, the validators' epoch advance) back off and say so once, not once a pass: at most a line
    // for the first failure and one per change of error in the 10 s; then one line each when they work again.
    await waitFor(
      "every loop that failed working again",
      async () =>
        running.every((k) => {
          const lines = logLines(k) as Array<{ msg: string }>;
          const failed = new Set(lines.filter((l) => l.msg.endsWith(" failed; retrying with backoff")).map((l) => l.msg.replace(" failed; retrying with backoff", "")));
          return [...failed].every((what) => lines.some((l) => l.msg === `${what} works again`));
        }),
      30_000,
      ...running,
    );
    let loopsThatFailed = 0;
    const summary: string[] = [];
    for (const k of running) {
      const lines = logLines(k) as Array<{ msg: string; retryInMs?: number; failedPasses?: number }>;
      const byLoop = new Map<string, Array<{ retryInMs?: number; failedPasses?: number }>>();
      for (const l of lines) {
        if (!l.msg.endsWith(" failed; retrying with backoff") && !l.msg.endsWith(" still failing")) continue;
        const what = l.msg.replace(/ (failed; retrying with backoff|still failing)$/, "");
        byLoop.set(what, [...(byLoop.get(what) ?? []), l]);
      }
      expect([...byLoop.keys()], `${k.name}: its event follower noticed the outage`).to.include("event follower: poll");
      for (const [what, failures] of byLoop) {
        if (what !== "event follower: poll") loopsThatFailed++;
        expect(failures.length, `${k.name}: lines of "${what}" failing in a 10 s outage: ${JSON.stringify(failures)}`).to.be.at.most(3);
        expect(failures[0].failedPasses, `${k.name}: "${what}" logs its first failure`).to.equal(1);
        const recovered = lines.filter((l) => l.msg === `${what} works again`) as Array<{ failedPasses?: number }>;
        expect(recovered, `${k.name}: "${what}" says once that it works again`).to.have.length(1);
        // Fewer passes failed than a pass a second (or four, the followers' polls) would have: the loop waited longer between them.
        expect(recovered[0].failedPasses, `${k.name}: "${what}" passes failed in the outage`).to.be.within(1, 9);
        summary.push(`${k.name} ${what}: ${recovered[0].failedPasses} failed, ${failures.length} logged`);
      }
    }
    console.log(`      loops in the outage: ${summary.join("; ")}`);
    expect(loopsThatFailed, "loops other than the event followers that noticed the outage").to.be.greaterThan(1);

    // Heartbeats resume, and events after the outage are handled: a new task goes through the chain.
    await waitFor(
      "a heartbeat after the outage, the node Healthy",
      async () => {
        const n = await stateOf(node);
        return n?.state === "Healthy" && n.lastHeartbeat !== null && Date.parse(n.lastHeartbeat) > restored;
      },
      30_000,
      master,
      miner,
    );
    const t4 = await submit(["sh", "-c", "echo four > /data/four.txt"]);
    await exactlyOnce(await completed(t4));
    const runs = cluster.admin.contracts.trainingRuns;
    expect(await runs.queryFilter(runs.filters.NodeEjected(cluster.runId, node))).to.have.length(0);
    for (const k of running) expect(k.alive, `${k.name} alive`).to.equal(true);
  });

  it("7. in the end: every task submitted completed once on chain, no container of the node runs or is unaccounted for", async () => {
    const { taskLedger } = cluster.admin.contracts;
    const views = await Promise.all(submitted.map((id) => task(id)));
    expect(views.map((v) => [v.taskId, v.state, v.chain?.status])).to.deep.equal(submitted.map((id) => [id, "completed", "Completed"]));
    expect(await taskLedger.queryFilter(taskLedger.filters.TaskCreated())).to.have.length(submitted.length);
    expect(await taskLedger.queryFilter(taskLedger.filters.TaskCompleted())).to.have.length(submitted.length);
    expect(await calls(taskLedger, "createTask")).to.equal(submitted.length);
    expect(await calls(taskLedger, "completeTask")).to.equal(submitted.length);
    const containers = await containersOf();
    expect(containers.filter((c) => c.State === "running"), "running containers").to.deep.equal([]);
    expect(containers.map((c) => c.Labels[LABEL_TASK]).sort()).to.deep.equal([...submitted].sort());
    console.log(`      done at ${elapsed()}`);
  });
});
