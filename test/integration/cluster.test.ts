/**
 * The whole flow of seed 003 across real processes — a small Testermint. One cluster: a Hardhat node
 * over JSON-RPC, the deployed system, discovery, a validator, a master and miners, each a separate
 * `computenet` process with its own log file, real Docker containers for tasks. Each scenario checks
 * chain state and the keepers' APIs.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { promisify } from "node:util";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import Dockerode from "dockerode";
import { Wallet } from "ethers";
import { Cluster, freshNodeKeys, type KeeperProcess } from "../../keepers/cli/cluster.js";
import { LABEL_NODE } from "../../keepers/miner/docker-runtime.js";
import { SignedClient } from "../../keepers/shared/http.js";
import { signRequest } from "../../keepers/shared/signing.js";
import { signInvite } from "../../scripts/lib/protocol.js";
import { requireDocker } from "../keepers/support/docker.js";
import { waitUntil } from "./support.js";

const DEMO_IMAGE = "computenet/busybox:latest";
const CLI = path.join(import.meta.dirname, "..", "..", "keepers", "cli", "computenet.ts");

/** Runs the `computenet` CLI as a buyer would; returns its parsed `--json` output. */
async function cli<T>(args: string[], env: Record<string, string>): Promise<T> {
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", CLI, ...args, "--json"], {
    env: { ...process.env, ...env },
    timeout: 60_000,
  });
  return JSON.parse(stdout.trim().split("\n").pop()!) as T;
}


interface NodeView {
  node: string;
  state: string;
}
interface TaskView {
  taskId: string;
  state: string;
  exitCode: number | null;
  node: string;
}

describe("integration: the whole network as separate processes", function () {
  this.timeout(600_000);
  let dir: string;
  let cluster: Cluster;
  let validator: KeeperProcess;
  let master: KeeperProcess;
  const miners: KeeperProcess[] = [];

  const nodeStates = async () => (await cluster.buyer().call<{ nodes: NodeView[] }>("GET", "/nodes")).nodes;
  const stateOf = async (node: string) => (await nodeStates()).find((n) => n.node.toLowerCase() === node.toLowerCase())?.state;
  const events = async (contract: "challengeBoard" | "trainingRuns", name: string, node: string) => {
    const c = cluster.admin.contracts[contract];
    const filter = (c.filters as unknown as Record<string, (...args: unknown[]) => never>)[name];
    const args = name === "NodeJoined" || name === "NodeEjected" ? [cluster.runId, node] : [node];
    return c.queryFilter(filter(...args));
  };

  before(async function () {
    await requireDocker(this);
    dir = await mkdtemp(path.join(os.tmpdir(), "cn-cluster-"));
    cluster = await Cluster.start({ logDir: dir, deploymentsRoot: dir, heartbeatSec: 1, economy: false, nodeKeys: freshNodeKeys() });
    await cluster.startDiscovery();
    validator = await cluster.startValidator(0);
    master = await cluster.startMaster(["--assignment", "local", "--unhealthy-after-misses", "2", "--dead-after-misses", "4"]);
  });

  after(async () => {
    await cluster?.stop();
    // Containers a killed miner left running.
    const docker = new Dockerode();
    for (let i = 0; i < 5; i++) {
      const node = cluster?.nodeAddress(i).toLowerCase();
      const containers = await docker.listContainers({ all: true, filters: { label: [`${LABEL_NODE}=${node}`] } }).catch(() => []);
      for (const c of containers) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    }
    if (process.env.KEEP_CLUSTER_LOGS !== "1") await rm(dir, { recursive: true, force: true });
    else console.log(`cluster logs kept in ${dir}`);
  });

  it("1. happy path: three miners registered, validated, invited and heartbeating; three tasks run as containers whose logs and files come back", async () => {
    for (let i = 0; i < 3; i++) miners[i] = await cluster.startMiner(i);
    const nodes = [0, 1, 2].map((i) => cluster.nodeAddress(i));
    await waitUntil("three Healthy nodes at the master", async () => {
      const states = await nodeStates();
      return nodes.every((n) => states.find((s) => s.node.toLowerCase() === n.toLowerCase())?.state === "Healthy");
    });
    const { challengeBoard, trainingRuns, registry } = cluster.admin.contracts;
    for (const node of nodes) {
      expect(await registry.isRegistered(node), `${node} registered`).to.equal(true);
      expect(await challengeBoard.isValidated(node), `${node} validated`).to.equal(true);
      expect(await trainingRuns.isMember(cluster.runId, node), `${node} member`).to.equal(true);
    }

    const buyer = cluster.buyer();
    const submitted: Array<{ taskId: string; node: string; i: number }> = [];
    for (let i = 1; i <= 3; i++) {
      const body = { image: DEMO_IMAGE, command: ["sh", "-c", `echo "task ${i} says hello"; echo "result ${i}" > /data/result.txt; sleep 2`], memoryMB: 64, cpus: 0.5 };
      const created = await buyer.call<{ taskId: string; node: string }>("POST", "/tasks", body);
      submitted.push({ ...created, i });
    }
    // Spread over the healthy nodes (fewest active tasks first; each task runs 2 s, longer than dispatching all three).
    expect(new Set(submitted.map((s) => s.node.toLowerCase())).size).to.equal(3);
    for (const { taskId, i } of submitted) {
      const status = await waitUntil(`task ${taskId} completed`, async () => {
        const s = await buyer.call<TaskView>("GET", `/tasks/${taskId}`);
        return s.state === "completed" ? s : undefined;
      });
      expect(status.exitCode).to.equal(0);
      const logs = await buyer.call<{ stdout: string }>("GET", `/tasks/${taskId}/logs`);
      expect(logs.stdout).to.equal(`task ${i} says hello\n`);
      const expected = `result ${i}\n`;
      const sha = createHash("sha256").update(expected).digest("hex");
      const files = await waitUntil(`files of ${taskId}`, async () => {
        const list = await buyer.call<{ files: Array<{ name: string; sha256: string; size: number }> }>("GET", `/tasks/${taskId}/files`);
        return list.files.length > 0 ? list.files : undefined;
      });
      expect(files).to.deep.equal([{ ...files[0], name: "result.txt", sha256: sha, size: expected.length }]);
      const bytes = await buyer.request<string>("GET", `/tasks/${taskId}/files/${sha}`);
      expect(bytes.status).to.equal(200);
      expect(createHash("sha256").update(String(bytes.body)).digest("hex")).to.equal(sha);
    }

    // The buyer's CLI sees the same run, nodes and tasks.
    const env = { CN_PRIVATE_KEY: cluster.keys.buyer, CN_RPC_URL: cluster.node.url, CN_DEPLOYMENT: cluster.deploymentFile };
    const master = ["--master-url", cluster.masterUrl, "--run-id", String(cluster.runId)];
    const run = await cli<{ status: string; members: string[] }>(["run", "show", String(cluster.runId)], env);
    expect(run.status).to.equal("Active");
    expect(run.members.map((m) => m.toLowerCase()).sort()).to.deep.equal(nodes.map((n) => n.toLowerCase()).sort());
    const listed = await cli<{ tasks: Array<{ taskId: string; state: string }> }>(["task", "list", ...master], env);
    expect(listed.tasks.filter((t) => t.state === "completed").map((t) => t.taskId).sort()).to.deep.equal(submitted.map((t) => t.taskId).sort());
    const status = await cli<{ state: string; exitCode: number }>(["task", "status", submitted[0].taskId, ...master], env);
    expect(status).to.include({ state: "completed", exitCode: 0 });
    const cliNodes = await cli<{ nodes: NodeView[] }>(["nodes", ...master], env);
    expect(cliNodes.nodes.filter((n) => n.state === "Healthy")).to.have.length(3);
  });

  it("6. a miner below the run's requirements refuses to register and prints what is missing", async () => {
    const node = cluster.nodeAddress(3);
    const weak = await cluster.startMiner(3, ["--ram-mb", "100"], {}, false);
    expect(await weak.exited).to.equal(3);
    expect(weak.text).to.match(/RAM: needs 512 MiB, this node has 100 MiB/);
    expect(await cluster.admin.contracts.registry.isRegistered(node)).to.equal(false);
  });

  it("2. a miner that answers the challenge wrongly is rejected on chain and never invited", async () => {
    const node = cluster.nodeAddress(4);
    miners[4] = await cluster.startMiner(4, [], { CN_FAULT_WRONG_CHALLENGE: "1" });
    await waitUntil("NodeRejected for the dishonest miner", async () => (await events("challengeBoard", "NodeRejected", node)).length > 0);
    const { challengeBoard, trainingRuns } = cluster.admin.contracts;
    expect(await challengeBoard.isValidated(node)).to.equal(false);
    const challenge = await challengeBoard.challengeOf(node);
    expect(challenge.status).to.equal(3n); // Rejected
    expect(challenge.rejectedBy).to.equal(new Wallet(cluster.keys.validators[0]).address);
    // Give the master several reconcile passes: it must not invite a rejected node.
    await new Promise((r) => setTimeout(r, 5_000));
    expect(await trainingRuns.participationOf(cluster.runId, node)).to.equal(1n); // Registered, not Member
    expect(await events("trainingRuns", "NodeJoined", node)).to.have.length(0);
    expect(await stateOf(node)).to.not.equal("Healthy");
    await miners[4].stop();
  });

  it("4. the validator and the master killed and restarted: no event missed, no duplicate transaction", async () => {
    const node = cluster.nodeAddress(3);
    await validator.kill();
    await master.kill();
    // While both are down, a new miner registers for the run and uploads its endpoint.
    miners[3] = await cluster.startMiner(3);
    await waitUntil("node 4 registered for the run", async () => (await cluster.admin.contracts.trainingRuns.participationOf(cluster.runId, node)) === 1n);
    validator = await cluster.startValidator(0);
    master = await cluster.startMaster(["--assignment", "local", "--unhealthy-after-misses", "2", "--dead-after-misses", "4"]);
    await waitUntil("node 4 Healthy after the restarts", async () => (await stateOf(node)) === "Healthy");
    // Exactly one approval and one join per node, including the nodes handled before the restart.
    for (const i of [0, 1, 2, 3]) {
      const n = cluster.nodeAddress(i);
      expect(await events("challengeBoard", "ChallengeApproved", n), `approvals of node ${i + 1}`).to.have.length(1);
      expect(await events("trainingRuns", "NodeJoined", n), `joins of node ${i + 1}`).to.have.length(1);
    }
    expect(await events("challengeBoard", "ChallengeRejected", cluster.nodeAddress(4))).to.have.length(1);
    // The earlier members stayed Healthy through the master's restart.
    for (const i of [0, 1, 2]) expect(await stateOf(cluster.nodeAddress(i))).to.equal("Healthy");
  });

  it("5. forged, replayed, expired and wrongly-scoped requests and invites are refused with a status and a reason", async () => {
    const chainId = cluster.admin.chainId;
    const nodeKey = new Wallet(cluster.keys.nodes[0]);
    const heartbeatBody = Buffer.from(JSON.stringify({ runId: String(cluster.runId), node: nodeKey.address, tasks: [], sentAt: new Date().toISOString() }));
    const send = (headers: Record<string, string>, url = `${cluster.masterUrl}/heartbeat`, body: Buffer = heartbeatBody) =>
      fetch(url, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body });
    const sign = (over: { audience?: string; timestamp?: number } = {}, signer: Wallet = nodeKey) =>
      signRequest(signer, { chainId, audience: over.audience ?? cluster.masterAddress, method: "POST", path: "/heartbeat", query: "", body: heartbeatBody, timestamp: over.timestamp });

    // A genuine heartbeat, then the same bytes replayed.
    const captured = await sign();
    expect((await send(captured)).status).to.equal(200);
    const replay = await send(captured);
    expect(replay.status).to.equal(401);
    expect(((await replay.json()) as { error: string }).error).to.equal("nonce already used: replayed request");

    // Expired (10 minutes old) and signed for another audience (discovery).
    const expired = await send(await sign({ timestamp: Math.floor(Date.now() / 1000) - 600 }));
    expect(expired.status).to.equal(401);
    expect(((await expired.json()) as { error: string }).error).to.match(/^stale or future timestamp/);
    const misdirected = await send(await sign({ audience: "discovery" }));
    expect(misdirected.status).to.equal(401);
    expect(((await misdirected.json()) as { error: string }).error).to.match(/^signature does not match the request/);

    // A heartbeat signed by a key that is not a member of the run.
    const stranger = Wallet.createRandom();
    const forged = await new SignedClient(stranger, chainId).request<{ error: string }>("POST", `${cluster.masterUrl}/heartbeat`, {
      audience: cluster.masterAddress,
      body: { runId: String(cluster.runId), node: stranger.address, tasks: [], sentAt: new Date().toISOString() },
    });
    expect(forged.status).to.equal(403);
    expect(forged.body.error).to.be.a("string").and.not.equal("");

    // The buyer API refuses anyone but the run's buyer.
    const notBuyer = await new SignedClient(stranger, chainId).request<{ error: string }>("POST", `${cluster.masterUrl}/tasks`, {
      audience: cluster.masterAddress,
      body: { image: DEMO_IMAGE, command: ["true"], memoryMB: 64, cpus: 0.5 },
    });
    expect(notBuyer.status).to.equal(403);

    // Discovery shows endpoints only to validators and the run's master.
    const peek = await new SignedClient(stranger, chainId).request<{ error: string }>("GET", `${cluster.discoveryUrl}/nodes/${nodeKey.address}`, { audience: "discovery" });
    expect(peek.status).to.equal(403);

    // An invite signed by someone other than the run's master, sent to a miner by that someone: refused
    // before any transaction.
    const minerUrl = (await miners[1].waitFor(/miner listening on \S+/)).split(" ").pop()!;
    const node1 = cluster.nodeAddress(1);
    const runs = cluster.admin.contracts.trainingRuns;
    const expiry = BigInt(Math.floor(Date.now() / 1000) + 600);
    const generation = await runs.inviteGenerationOf(cluster.runId, node1);
    const signature = await signInvite(stranger, { chainId, verifyingContract: await runs.getAddress() }, { runId: cluster.runId, node: node1, generation, nonce: 777n, expiry });
    const invite = await new SignedClient(stranger, chainId).request<{ error: string }>("POST", `${minerUrl}/invite`, {
      audience: node1,
      body: { runId: String(cluster.runId), nonce: "777", expiry: String(expiry), generation: String(generation), signature, masterUrl: "http://127.0.0.1:9" },
    });
    expect(invite.status).to.equal(403);
    expect(await runs.isInviteNonceUsed(cluster.runId, 777n)).to.equal(false);
  });

  it("7. the buyer rotates the run's master: the new master takes the members over without ejecting them", async () => {
    const members = [0, 1, 2, 3].map((i) => cluster.nodeAddress(i));
    const newKey = Wallet.createRandom().privateKey;
    const newMaster = new Wallet(newKey).address;
    const buyerChain = await cluster.connect(cluster.keys.buyer);
    await (await buyerChain.contracts.trainingRuns.setMaster(cluster.runId, newMaster)).wait();
    buyerChain.provider.destroy();
    await master.stop();
    const second = await cluster.startMaster(["--assignment", "local", "--unhealthy-after-misses", "2", "--dead-after-misses", "4"], newKey, "master-2");
    const url = (await second.waitFor(/master listening on \S+/)).split(" ").pop()!;
    const buyer = new SignedClient(new Wallet(cluster.keys.buyer), cluster.admin.chainId);
    await waitUntil("the members Healthy at the new master", async () => {
      const { nodes } = await buyer.call<{ nodes: NodeView[] }>("GET", `${url}/nodes`, { audience: newMaster });
      return members.every((m) => nodes.find((n) => n.node.toLowerCase() === m.toLowerCase())?.state === "Healthy");
    });
    for (const m of members) expect(await events("trainingRuns", "NodeEjected", m), `ejections of ${m}`).to.have.length(0);
    // Back to the original master for the next scenario (its miners follow it again the same way).
    const back = await cluster.connect(cluster.keys.buyer);
    await (await back.contracts.trainingRuns.setMaster(cluster.runId, cluster.masterAddress)).wait();
    back.provider.destroy();
    await second.stop();
    const switchedBack = Date.now();
    master = await cluster.startMaster(["--assignment", "local", "--unhealthy-after-misses", "2", "--dead-after-misses", "4"]);
    await waitUntil("the members heartbeating to the original master again", async () => {
      const { nodes } = await cluster.buyer().call<{ nodes: Array<NodeView & { lastHeartbeat: string | number | null }> }>("GET", "/nodes");
      return members.every((m) => {
        const n = nodes.find((x) => x.node.toLowerCase() === m.toLowerCase());
        return n?.state === "Healthy" && n.lastHeartbeat !== null && new Date(n.lastHeartbeat).getTime() > switchedBack;
      });
    });
    for (const m of members) expect(await events("trainingRuns", "NodeEjected", m)).to.have.length(0);
  });

  it("3. a miner killed during a task: Unhealthy, then Dead, ejected on chain, and its task reported failed", async () => {
    const buyer = cluster.buyer();
    const created = await buyer.call<{ taskId: string; node: string }>("POST", "/tasks", {
      image: DEMO_IMAGE,
      command: ["sh", "-c", "echo started; sleep 300"],
      memoryMB: 64,
      cpus: 0.5,
    });
    await waitUntil("the long task running", async () => (await buyer.call<TaskView>("GET", `/tasks/${created.taskId}`)).state === "running");
    const index = [0, 1, 2, 3].find((i) => cluster.nodeAddress(i).toLowerCase() === created.node.toLowerCase())!;
    await miners[index].kill();

    const seen = new Set<string>();
    await waitUntil("the node ejected on chain", async () => {
      const state = await stateOf(created.node);
      if (state) seen.add(state);
      return (await events("trainingRuns", "NodeEjected", created.node)).length > 0;
    }, 60_000, 250);
    expect(seen.has("Unhealthy") || seen.has("Dead"), `states seen: ${[...seen]}`).to.equal(true);
    expect(await cluster.admin.contracts.trainingRuns.isMember(cluster.runId, created.node)).to.equal(false);
    const task = await waitUntil("the task failed", async () => {
      const s = await buyer.call<TaskView & { error?: string }>("GET", `/tasks/${created.taskId}`);
      return s.state === "failed" ? s : undefined;
    });
    expect(task.state).to.equal("failed");
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await events("trainingRuns", "NodeEjected", created.node)).to.have.length(1);
  });
});
