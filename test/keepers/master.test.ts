/**
 * The master keeper against a real `hardhat node` (devchain), real HTTP on 127.0.0.1, real signatures
 * and real SQLite files. The miners and the discovery service are TEST DOUBLES defined below (small
 * HTTP servers that verify signatures like the real keepers and act on chain with the dev node keys).
 *
 * The cases run in order on one run: onboarding, heartbeats, tasks, files, death and ejection, restart,
 * then the command-line entry point.
 */
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import { Wallet, getAddress, id, verifyTypedData } from "ethers";
import { type MasterOptions, type MasterService, startMaster } from "../../keepers/master/index.js";
import { EJECT_REASON, type NodeState } from "../../keepers/master/nodes.js";
import type { Chain } from "../../keepers/shared/chain.js";
import { ConfigError } from "../../keepers/shared/config.js";
import { type App, HttpError, SignedClient, closeServer, createApp, listen, requireSignature } from "../../keepers/shared/http.js";
import { createLogger } from "../../keepers/shared/log.js";
import { createMetrics } from "../../keepers/shared/metrics.js";
import { MemoryNonceStore, signRequest } from "../../keepers/shared/signing.js";
import type { TaskStatus } from "../../keepers/miner/docker-runtime.js";
import { type TaskSpec, validateTaskSpec } from "../../keepers/miner/task-spec.js";
import { INVITE_TYPES, Participation, RUNS_DOMAIN, gpuModel, signNodeConsent } from "../../scripts/lib/protocol.js";
import { ROOT, freePort, rpc } from "../../scripts/lib/processes.js";
import { type DevChain, startDevChain } from "./support/devchain.js";

/** Route parameters and query of the test doubles' routes. */
type P = { Params: Record<string, string>; Querystring: Record<string, string | undefined>; Body: unknown };

const silent = createLogger({ component: "test-double", level: "silent" });

/** Polls `probe` until it returns something truthy; fails with `what` after `timeoutMs`. */
async function until<T>(what: string, probe: () => T | Promise<T>, timeoutMs = 15_000, stepMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

// ---------------------------------------------------------------------------------------------------
// TEST DOUBLE: a miner. Verifies signatures with requireSignature (audience = node address), accepts
// invites on chain with the node key after checking them, records task specs, answers canned task
// status and logs, and heartbeats to the master once it joined.
// ---------------------------------------------------------------------------------------------------
interface ReceivedInvite {
  at: number;
  signer: string;
  body: { runId: string; nonce: string; expiry: string; generation: string; signature: string; masterUrl: string };
}

class FakeMinerDouble {
  readonly wallet: Wallet;
  readonly invites: ReceivedInvite[] = [];
  readonly specs: TaskSpec[] = [];
  readonly statusRequests: string[] = [];
  readonly logRequests: Array<{ taskId: string; tail: string | undefined }> = [];
  readonly heartbeatAnswers: Array<{ status: number; body: unknown }> = [];
  /** What the double reports for its tasks in heartbeats. */
  statuses: TaskStatus[] = [];
  /** Invites to acknowledge without accepting them on chain (a node that lets an invite lapse). */
  invitesToIgnore = 0;
  url = "";
  private server: App | undefined;
  private chain: Chain | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private masterUrl: string | undefined;
  private master: string | undefined;
  /** Bumped by every start and stop, so that a heartbeat in flight does not re-arm a stopped loop. */
  private heartbeatGeneration = 0;

  constructor(
    private readonly dev: DevChain,
    nodeKey: string,
    private readonly runId: bigint,
  ) {
    this.wallet = new Wallet(nodeKey);
  }

  get address(): string {
    return this.wallet.address;
  }

  async start(): Promise<this> {
    this.chain = await this.dev.connect(this.wallet.privateKey);
    const runs = this.chain.contracts.trainingRuns;
    const app = createApp({ logger: silent, metrics: createMetrics("miner-double") });
    const signed = requireSignature({ chainId: this.chain.chainId, audience: this.address.toLowerCase(), nonces: new MemoryNonceStore() });
    const onlyMaster = async (signer: string) => {
      if (!(await runs.isMaster(this.runId, signer))) throw new HttpError(403, `${signer} is not the master of run ${this.runId}`);
    };
    app.post<P>("/invite", { preHandler: signed }, async (req, reply) => {
      await onlyMaster(req.signer);
      const body = req.body as ReceivedInvite["body"];
      this.invites.push({ at: Date.now(), signer: req.signer, body });
      if (body.runId !== this.runId.toString()) throw new HttpError(400, `invite for run ${body.runId}`);
      const domain = { ...RUNS_DOMAIN, chainId: this.chain!.chainId, verifyingContract: this.dev.admin.deployment.contracts.TrainingRuns.address };
      const invite = { runId: BigInt(body.runId), node: this.address, generation: BigInt(body.generation), nonce: BigInt(body.nonce), expiry: BigInt(body.expiry) };
      if (verifyTypedData(domain, INVITE_TYPES, invite, body.signature) !== req.signer) throw new HttpError(400, "invite not signed by the requester");
      if (invite.generation !== (await runs.inviteGenerationOf(this.runId, this.address))) throw new HttpError(409, "stale generation");
      if (this.invitesToIgnore > 0) {
        this.invitesToIgnore--;
        reply.send({ accepted: true, txHash: null });
        return;
      }
      try {
        const tx = await runs.acceptInvite(invite.runId, this.address, invite.nonce, invite.expiry, body.signature);
        const receipt = await tx.wait();
        this.startHeartbeats(req.signer, body.masterUrl);
        reply.send({ accepted: true, txHash: receipt!.hash });
      } catch (error) {
        throw new HttpError(409, `acceptInvite refused: ${(error as Error).message}`);
      }
    });
    app.post<P>("/tasks", { preHandler: signed }, async (req, reply) => {
      await onlyMaster(req.signer);
      const spec = validateTaskSpec(req.body);
      this.specs.push(req.body as TaskSpec);
      reply.code(202).send({ taskId: spec.taskId, runId: spec.runId, state: "pending", exitCode: null, restarts: 0, startedAt: null, finishedAt: null });
    });
    app.get<P>("/tasks/:taskId", { preHandler: signed }, async (req, reply) => {
      await onlyMaster(req.signer);
      const taskId = String(req.params.taskId);
      this.statusRequests.push(taskId);
      if (!this.specs.some((s) => s.taskId === taskId)) throw new HttpError(404, `no task ${taskId}`);
      reply.send({ taskId, runId: this.runId.toString(), state: "running", exitCode: null, restarts: 0, startedAt: new Date().toISOString(), finishedAt: null, containerId: "double-container-1" });
    });
    app.get<P>("/tasks/:taskId/logs", { preHandler: signed }, async (req, reply) => {
      await onlyMaster(req.signer);
      const taskId = String(req.params.taskId);
      const tail = typeof req.query.tail === "string" ? req.query.tail : undefined;
      this.logRequests.push({ taskId, tail });
      reply.send({ stdout: `stdout of ${taskId} (tail ${tail})\n`, stderr: "a warning\n" });
    });
    this.server = app;
    await listen(app, 0, "127.0.0.1");
    this.url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    return this;
  }

  startHeartbeats(master: string, masterUrl: string): void {
    this.master = master;
    this.masterUrl = masterUrl;
    this.stopHeartbeats();
    const generation = ++this.heartbeatGeneration;
    const client = new SignedClient(this.wallet, this.chain!.chainId, 3_000);
    const beat = async () => {
      if (generation !== this.heartbeatGeneration) return;
      try {
        const answer = await client.request("POST", `${this.masterUrl}/heartbeat`, {
          audience: this.master!.toLowerCase(),
          body: { runId: this.runId.toString(), node: this.address, tasks: this.statuses, sentAt: new Date().toISOString() },
        });
        this.heartbeatAnswers.push(answer);
      } catch (error) {
        this.heartbeatAnswers.push({ status: 0, body: (error as Error).message });
      }
      if (generation === this.heartbeatGeneration) this.heartbeatTimer = setTimeout(beat, 500);
    };
    void beat();
  }

  stopHeartbeats(): void {
    this.heartbeatGeneration++;
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  async stop(): Promise<void> {
    this.stopHeartbeats();
    if (this.server) await closeServer(this.server);
    this.chain?.provider.destroy();
  }
}

// ---------------------------------------------------------------------------------------------------
// TEST DOUBLE: the discovery service. GET /runs/:runId/nodes and GET /nodes/:node, signed, answered
// only to the run's master (checked on chain), from endpoints the test sets.
// ---------------------------------------------------------------------------------------------------
class FakeDiscoveryDouble {
  readonly endpoints = new Map<string, string>();
  readonly refusals: string[] = [];
  url = "";
  private server: App | undefined;

  constructor(private readonly dev: DevChain) {}

  async start(): Promise<this> {
    const runs = this.dev.admin.contracts.trainingRuns;
    const app = createApp({ logger: silent, metrics: createMetrics("discovery-double") });
    const signed = requireSignature({ chainId: this.dev.admin.chainId, audience: "discovery", nonces: new MemoryNonceStore() });
    app.get<P>("/runs/:runId/nodes", { preHandler: signed }, async (req, reply) => {
      const runId = BigInt(String(req.params.runId));
      if (!(await runs.isMaster(runId, req.signer))) {
        this.refusals.push(req.signer);
        throw new HttpError(403, `${req.signer} is not the master of run ${runId}`);
      }
      const nodes = [];
      for (const [node, endpoint] of this.endpoints) {
        const participation = Number(await runs.participationOf(runId, node));
        if (participation === Participation.None) continue;
        nodes.push({ node, participation: participation === Participation.Member ? "Member" : "Registered", endpoint, updatedAt: new Date().toISOString() });
      }
      reply.send({ nodes });
    });
    app.get<P>("/nodes/:node", { preHandler: signed }, async (req, reply) => {
      const node = getAddress(String(req.params.node));
      const endpoint = this.endpoints.get(node);
      if (!endpoint) throw new HttpError(404, `no endpoint for ${node}`);
      reply.send({ node, endpoint, updatedAt: new Date().toISOString() });
    });
    this.server = app;
    await listen(app, 0, "127.0.0.1");
    this.url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    if (this.server) await closeServer(this.server);
  }
}

// ---------------------------------------------------------------------------------------------------

describe("master keeper (real hardhat node, real HTTP, real SQLite)", function () {
  this.timeout(90_000);

  let dev: DevChain;
  let dir: string;
  let dataDir: string;
  let masterPort: number;
  let discovery: FakeDiscoveryDouble;
  let master: MasterService;
  let runId: bigint;
  let otherRunId: bigint;
  let buyer: SignedClient;
  let stranger: SignedClient;
  const strangerWallet = Wallet.createRandom();
  let masterAddress: string;
  const logs: Array<Record<string, unknown>> = [];
  const miners: FakeMinerDouble[] = [];
  const MAX_FILE_BYTES = 2 * 1024 * 1024;

  const masterOptions = (overrides: Partial<MasterOptions> = {}): MasterOptions => ({
    rpcUrl: dev.rpcUrl,
    deployment: dev.deploymentFile,
    dataDir,
    host: "127.0.0.1",
    port: masterPort,
    pollMs: 100,
    confirmations: 0,
    privateKey: dev.keys.master,
    runId,
    discoveryUrl: discovery.url,
    heartbeatIntervalSec: 1,
    unhealthyAfterMisses: 2,
    deadAfterMisses: 4,
    inviteExpirySec: 1000,
    reconcileMs: 300,
    maxFileBytes: MAX_FILE_BYTES,
    // These cases are the master's own choice of node (issue 3); chain assignment has its own file.
    assignment: "local",
    logger: createLogger({
      component: "master",
      node: new Wallet(dev.keys.master).address,
      level: "debug",
      destination: { write: (line: string) => void logs.push(JSON.parse(line)) },
    }),
    ...overrides,
  });

  /** Registers dev node `i` (provider i pays the stake) and registers it for the run. */
  async function registerForRun(i: number): Promise<string> {
    const provider = await dev.connect(dev.keys.providers[i]);
    try {
      const node = new Wallet(dev.keys.nodes[i]);
      const { registry, token, trainingRuns } = provider.contracts;
      const stake = await registry.minimumStake(0);
      await (await token.approve(await registry.getAddress(), stake)).wait();
      const deadline = BigInt(Math.floor(Date.now() / 1000) + 3600);
      const consent = await signNodeConsent(
        node,
        { chainId: provider.chainId, verifyingContract: await registry.getAddress() },
        { provider: provider.wallet!.address, nonce: await registry.nonces(node.address), deadline },
      );
      const caps = { gpuCount: 0, gpuModel: gpuModel(""), gpuMemoryMB: 0, cpuCores: 4, ramMB: 8192, storageGB: 100 };
      await (await registry.registerNode(node.address, caps, stake, deadline, consent)).wait();
      await (await trainingRuns.registerForRun(runId, node.address)).wait();
      return node.address;
    } finally {
      provider.provider.destroy();
    }
  }

  /** A dev validator approves the node's current declaration (requiredApprovals is 1 on the devchain). */
  async function validate(node: string): Promise<void> {
    const validator = await dev.connect(dev.keys.validators[0]);
    try {
      const capsId = await validator.contracts.registry.capsIdOf(node);
      await (await validator.contracts.challengeBoard.reportChallenge(node, capsId, true, id(`challenge of ${node}`))).wait();
    } finally {
      validator.provider.destroy();
    }
  }

  async function newMiner(i: number): Promise<FakeMinerDouble> {
    const miner = await new FakeMinerDouble(dev, dev.keys.nodes[i], runId).start();
    miners.push(miner);
    discovery.endpoints.set(miner.address, miner.url);
    return miner;
  }

  const states = (node: string): Array<NodeState | null> => master.transitions(node).map((t) => t.to);
  const nodeEvents = async (name: "NodeJoined" | "NodeEjected", node: string) => {
    const runs = dev.admin.contracts.trainingRuns;
    const filter = name === "NodeJoined" ? runs.filters.NodeJoined(runId, node) : runs.filters.NodeEjected(runId, node);
    return runs.queryFilter(filter, 0);
  };

  before(async () => {
    dev = await startDevChain();
    dir = await mkdtemp(path.join(os.tmpdir(), "cn-master-"));
    dataDir = path.join(dir, "master");
    masterPort = await freePort();
    discovery = await new FakeDiscoveryDouble(dev).start();
    masterAddress = new Wallet(dev.keys.master).address;
    buyer = new SignedClient(new Wallet(dev.keys.buyer), dev.admin.chainId);
    stranger = new SignedClient(strangerWallet, dev.admin.chainId);

    const asBuyer = await dev.connect(dev.keys.buyer);
    const params = {
      master: masterAddress,
      pricePerUnit: 1n,
      maxMembers: 5,
      budget: 0n,
      discoveryURI: discovery.url,
      requirements: { minGpuCount: 0, minGpuMemoryMB: 0, minCpuCores: 0, minRamMB: 0, minStorageGB: 0, allowedGpuModels: [] },
    };
    await (await asBuyer.contracts.trainingRuns.createRun(params)).wait();
    runId = await asBuyer.contracts.trainingRuns.runCount();
    await (await asBuyer.contracts.trainingRuns.createRun(params)).wait();
    otherRunId = await asBuyer.contracts.trainingRuns.runCount();
    asBuyer.provider.destroy();

    master = await startMaster(masterOptions());
  });

  after(async () => {
    await master?.stop();
    for (const miner of miners) await miner.stop();
    await discovery?.stop();
    await dev?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("refuses to start with a key that is not the run's master, or for a run that does not exist", async () => {
    const notMaster = await startMaster(masterOptions({ privateKey: dev.keys.buyer, dataDir: path.join(dir, "other"), port: 0 })).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(notMaster).to.be.instanceOf(ConfigError);
    const buyerAddress = new Wallet(dev.keys.buyer).address;
    expect(notMaster!.message).to.include(`is ${buyerAddress}, which is not the master of run ${runId}: its master is ${masterAddress}`);
    expect(existsSync(path.join(dir, "other", "master.sqlite"))).to.equal(false);

    const unknown = await startMaster(masterOptions({ runId: 999n, dataDir: path.join(dir, "other"), port: 0 })).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(unknown).to.be.instanceOf(ConfigError);
    expect(unknown!.message).to.include("--run-id (CN_RUN_ID): run 999 does not exist on chain 31337");
  });

  it("answers 400 for a bad task, 503 when no node is healthy, and 403 to anyone but the run's buyer", async () => {
    const task = { image: "busybox:1.36", command: ["echo", "hi"], memoryMB: 64, cpus: 0.5 };
    const none = await buyer.request<{ error: string }>("POST", `${master.url}/tasks`, { audience: masterAddress, body: task });
    expect(none.status).to.equal(503);
    expect(none.body.error).to.equal(`no healthy node in run ${runId} to run the task (no nodes yet)`);

    const badType = await buyer.request<{ error: string }>("POST", `${master.url}/tasks`, { audience: masterAddress, body: { ...task, memoryMB: "64" } });
    expect(badType.status).to.equal(400);
    expect(badType.body.error).to.equal("body.memoryMB: must be a number");
    const tooSmall = await buyer.request<{ error: string }>("POST", `${master.url}/tasks`, { audience: masterAddress, body: { ...task, memoryMB: 1 } });
    expect(tooSmall.status).to.equal(400);
    expect(tooSmall.body.error).to.equal("invalid TaskSpec.memoryMB: must be at least 6 (the engine's minimum)");
    const extra = await buyer.request<{ error: string }>("POST", `${master.url}/tasks`, { audience: masterAddress, body: { ...task, network: "host" } });
    expect(extra.status).to.equal(400);
    expect(extra.body.error).to.match(/^body: Unrecognized key/);

    const strangerAddress = strangerWallet.address;
    for (const [method, route] of [["POST", "/tasks"], ["GET", "/tasks"], ["GET", "/nodes"], ["GET", "/tasks/0123456789abcdef"]] as const) {
      const refused = await stranger.request<{ error: string }>(method, `${master.url}${route}`, { audience: masterAddress, body: method === "POST" ? task : undefined });
      expect(refused.status, `${method} ${route}`).to.equal(403);
      expect(refused.body.error).to.equal(`${strangerAddress} is not the buyer of run ${runId}`);
    }
    expect(master.tasks()).to.have.length(0);
  });

  it("invites a registered, validated node with a valid EIP-712 invite; it joins on chain and turns Healthy on its first heartbeat", async () => {
    const miner = await newMiner(0);
    const node = await registerForRun(0);
    await until("node Discovered at the master", () => master.node(node)?.state === "Discovered");
    // Registered but not validated: no invite, however many reconcile passes.
    await sleep(1_000);
    expect(miner.invites).to.have.length(0);
    expect(master.node(node)!.endpoint).to.equal(miner.url);

    await validate(node);
    await until("node Healthy", () => master.node(node)?.state === "Healthy");
    expect(miner.invites).to.have.length(1);
    const invite = miner.invites[0];
    expect(invite.signer).to.equal(masterAddress);
    expect(invite.body.runId).to.equal(runId.toString());
    expect(invite.body.generation).to.equal("0");
    expect(invite.body.masterUrl).to.equal(master.publicUrl);
    expect(master.publicUrl).to.equal(`http://127.0.0.1:${masterPort}`);
    expect(BigInt(invite.body.nonce) < 2n ** 64n).to.equal(true);
    // Expiry is counted from the chain's clock (the contract compares it with block.timestamp), which a
    // busy hardhat node runs ahead of the wall clock.
    const chainNow = Math.max(Math.floor(Date.now() / 1000), (await dev.admin.provider.getBlock("latest"))!.timestamp);
    expect(Number(invite.body.expiry) - chainNow).to.be.within(985, 1000);

    const runs = dev.admin.contracts.trainingRuns;
    expect(await runs.isMember(runId, node)).to.equal(true);
    const joined = await nodeEvents("NodeJoined", node);
    expect(joined).to.have.length(1);
    expect((joined[0].args as unknown as { nonce: bigint }).nonce.toString()).to.equal(invite.body.nonce);
    expect(await runs.isInviteNonceUsed(runId, BigInt(invite.body.nonce))).to.equal(true);

    expect(states(node)).to.deep.equal(["Discovered", "Invited", "Healthy"]);
    const healthy = master.transitions(node)[2];
    expect(healthy.reason).to.equal("first heartbeat");
    expect(miner.heartbeatAnswers.find((a) => a.status === 200)?.body).to.deep.equal({ ok: true, state: "Healthy" });
    const inviteLog = logs.find((l) => l.subsystem === "Onboarding" && l.to === "Invited");
    expect(inviteLog).to.include({ miner: node, nonce: invite.body.nonce, generation: "0", endpoint: miner.url });
  });

  it("refuses heartbeats from a non-member, for another node, for another run, malformed, or replayed", async () => {
    const miner = miners[0];
    const node = miner.address;
    const nodeClient = new SignedClient(miner.wallet, dev.admin.chainId);
    const beat = (over: Record<string, unknown> = {}) => ({ runId: runId.toString(), node, tasks: [], sentAt: new Date().toISOString(), ...over });

    const outsider = Wallet.createRandom();
    const fromOutsider = await new SignedClient(outsider, dev.admin.chainId).request<{ error: string }>("POST", `${master.url}/heartbeat`, {
      audience: masterAddress,
      body: beat({ node: outsider.address }),
    });
    expect(fromOutsider.status).to.equal(403);
    expect(fromOutsider.body.error).to.equal(`${outsider.address} is not a member of run ${runId}`);

    const forOther = await nodeClient.request<{ error: string }>("POST", `${master.url}/heartbeat`, { audience: masterAddress, body: beat({ node: outsider.address }) });
    expect(forOther.status).to.equal(403);
    expect(forOther.body.error).to.equal(`heartbeat for node ${outsider.address} signed by ${node}: a node heartbeats only for itself`);

    const otherRun = await nodeClient.request<{ error: string }>("POST", `${master.url}/heartbeat`, { audience: masterAddress, body: beat({ runId: otherRunId.toString() }) });
    expect(otherRun.status).to.equal(403);
    expect(otherRun.body.error).to.equal(`this master coordinates run ${runId}, not run ${otherRunId}`);

    const malformed = await nodeClient.request<{ error: string }>("POST", `${master.url}/heartbeat`, { audience: masterAddress, body: beat({ tasks: [{ taskId: "x" }] }) });
    expect(malformed.status).to.equal(400);
    expect(malformed.body.error).to.match(/^body\.tasks\.0\.state: /);

    const body = Buffer.from(JSON.stringify(beat()));
    const headers = await signRequest(miner.wallet, { chainId: dev.admin.chainId, audience: masterAddress, method: "POST", path: "/heartbeat", query: "", body });
    const send = () => fetch(`${master.url}/heartbeat`, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body });
    const first = await send();
    expect(first.status).to.equal(200);
    expect(await first.json()).to.deep.equal({ ok: true, state: "Healthy" });
    const replay = await send();
    expect(replay.status).to.equal(401);
    expect(((await replay.json()) as { error: string }).error).to.equal("nonce already used: replayed request");

    const refusedLog = logs.filter((l) => l.msg === "heartbeat refused").map((l) => l.reason);
    expect(refusedLog).to.include(`${outsider.address} is not a member of run ${runId}`);
  });

  let firstTaskId: string;

  it("hands the buyer's task to the healthy node as a valid TaskSpec; status follows heartbeats and the node's answer", async () => {
    const miner = miners[0];
    const body = { image: "busybox:1.36", command: ["sh", "-c", "echo hi"], env: { EPOCHS: "3" }, memoryMB: 64, cpus: 0.5 };
    const created = await buyer.request<{ taskId: string; node: string }>("POST", `${master.url}/tasks`, { audience: masterAddress, body });
    expect(created.status).to.equal(201);
    expect(created.body.node).to.equal(miner.address);
    expect(created.body.taskId).to.match(/^[0-9a-f]{16}$/);
    firstTaskId = created.body.taskId;

    expect(miner.specs).to.have.length(1);
    const spec = miner.specs[0];
    expect(validateTaskSpec(spec)).to.deep.equal({ ...body, taskId: firstTaskId, runId: runId.toString(), gpus: 0, maxRestarts: 0, network: "none" });

    const list = await buyer.call<{ tasks: Array<{ taskId: string; state: string; node: string }> }>("GET", `${master.url}/tasks`, { audience: masterAddress });
    expect(list.tasks.map((t) => [t.taskId, t.state, t.node])).to.deep.equal([[firstTaskId, "pending", miner.address]]);

    const startedAt = new Date().toISOString();
    miner.statuses = [{ taskId: firstTaskId, runId: runId.toString(), state: "running", exitCode: null, restarts: 0, startedAt, finishedAt: null }];
    await until("task running from heartbeats", () => master.task(firstTaskId)?.state === "running");
    expect(master.task(firstTaskId)!.status?.startedAt).to.equal(startedAt);
    expect(miner.statusRequests).to.have.length(0);

    const status = await buyer.call<{ state: string; status: { containerId?: string }; exitCode: number | null }>("GET", `${master.url}/tasks/${firstTaskId}`, { audience: masterAddress });
    expect(miner.statusRequests).to.deep.equal([firstTaskId]);
    expect(status.state).to.equal("running");
    expect(status.exitCode).to.equal(null);
    expect(status.status.containerId).to.equal("double-container-1");

    const nodes = await buyer.call<{ nodes: Array<{ node: string; state: string; lastHeartbeat: string | null; tasks: string[] }> }>("GET", `${master.url}/nodes`, { audience: masterAddress });
    expect(nodes.nodes).to.have.length(1);
    expect(nodes.nodes[0]).to.include({ node: miner.address, state: "Healthy" });
    expect(nodes.nodes[0].tasks).to.deep.equal([firstTaskId]);
    expect(Date.now() - Date.parse(nodes.nodes[0].lastHeartbeat!)).to.be.below(3_000);

    const missing = await buyer.request<{ error: string }>("GET", `${master.url}/tasks/ffffffffffffffff`, { audience: masterAddress });
    expect(missing.status).to.equal(404);
  });

  it("proxies the task's logs from its node, signed by the master", async () => {
    const miner = miners[0];
    const logsAnswer = await buyer.call<{ stdout: string; stderr: string }>("GET", `${master.url}/tasks/${firstTaskId}/logs?tail=5`, { audience: masterAddress });
    expect(logsAnswer).to.include({ stdout: `stdout of ${firstTaskId} (tail 5)\n`, stderr: "a warning\n" });
    expect(miner.logRequests).to.deep.equal([{ taskId: firstTaskId, tail: "5" }]);
    const badTail = await buyer.request<{ error: string }>("GET", `${master.url}/tasks/${firstTaskId}/logs?tail=all`, { audience: masterAddress });
    expect(badTail.status).to.equal(400);
    const refused = await stranger.request("GET", `${master.url}/tasks/${firstTaskId}/logs`, { audience: masterAddress });
    expect(refused.status).to.equal(403);
    expect(miner.logRequests).to.have.length(1);
  });

  it("stores the task node's files: hash checked, content-addressed once, resumable, byte-exact for the buyer, hostile names refused", async () => {
    const miner = miners[0];
    const node = new SignedClient(miner.wallet, dev.admin.chainId);
    const base = `${master.url}/tasks/${firstTaskId}/files`;
    // Larger than the 1 MB limit of every other route: the upload route has its own.
    const content = randomBytes(1_500_000);
    const hash = sha256(content);
    const put = (bytes: Uint8Array, sha: string, name: string, client = node) =>
      client.request<{ sha256?: string; size?: number; stored?: boolean; error?: string }>("PUT", `${base}/${sha}`, {
        audience: masterAddress,
        rawBody: bytes,
        headers: { "x-cn-file-name": name },
      });

    const before = await node.call<{ missing: string[] }>("POST", `${base}/missing`, { audience: masterAddress, body: { files: [{ name: "out/model.bin", sha256: hash, size: content.length }] } });
    expect(before.missing).to.deep.equal([hash]);

    const wrong = await put(content, sha256(Buffer.from("something else")), "out/model.bin");
    expect(wrong.status).to.equal(400);
    expect(wrong.body.error).to.equal(`the body hashes to ${hash}, not ${sha256(Buffer.from("something else"))}`);

    const notAssigned = await put(content, hash, "out/model.bin", stranger);
    expect(notAssigned.status).to.equal(403);
    expect(notAssigned.body.error).to.equal(`${strangerWallet.address} is not the node task ${firstTaskId} was sent to`);
    // Refused on its headers before the body is read: unsigned, or claiming to be the node with a stale time.
    const unsigned = await fetch(`${base}/${hash}`, { method: "PUT", body: content, headers: { "x-cn-file-name": "a.bin" } });
    expect(unsigned.status).to.equal(401);
    expect(((await unsigned.json()) as { error: string }).error).to.equal("upload refused before its body: signature headers missing or stale");
    const stale = await fetch(`${base}/${hash}`, {
      method: "PUT",
      body: content,
      headers: { "x-cn-file-name": "a.bin", "x-cn-address": miner.wallet.address, "x-cn-timestamp": String(Math.floor(Date.now() / 1000) - 3600) },
    });
    expect(stale.status).to.equal(401);

    const good = await put(content, hash, "out/model.bin");
    expect(good.status).to.equal(200);
    expect(good.body).to.deep.equal({ sha256: hash, size: content.length, stored: true });
    const again = await put(content, hash, "out/copy.bin");
    expect(again.body).to.deep.equal({ sha256: hash, size: content.length, stored: false });
    const blobs = readdirSync(path.join(dataDir, "blobs"));
    expect(blobs).to.deep.equal([hash]);

    const tooBig = await put(randomBytes(MAX_FILE_BYTES + 1), "0".repeat(64), "big.bin");
    expect(tooBig.status).to.equal(413);

    const small = Buffer.from("epoch 3 loss 0.42\n");
    const after = await node.call<{ missing: string[] }>("POST", `${base}/missing`, {
      audience: masterAddress,
      body: { files: [{ name: "out/model.bin", sha256: hash, size: content.length }, { name: "metrics.txt", sha256: sha256(small), size: small.length }] },
    });
    expect(after.missing).to.deep.equal([sha256(small)]);

    for (const [name, reason] of [
      ["../escape.txt", 'must not contain ".." segments'],
      ["out/../../escape.txt", 'must not contain ".." segments'],
      ["/etc/passwd", "must be a relative path"],
      ["out\\model.bin", "must not contain backslashes (use / between folders)"],
      ["tab\there", "must not contain control characters"],
      ["x".repeat(256), "is 256 bytes long; at most 255"],
    ] as const) {
      const refused = await put(small, sha256(small), name);
      expect(refused.status, name).to.equal(400);
      expect(refused.body.error).to.equal(`x-cn-file-name ${reason}`);
    }
    // Only the upload route takes large bodies: the others keep the 1 MB limit.
    const hugeList = await node.request<{ error: string }>("POST", `${base}/missing`, {
      audience: masterAddress,
      body: { files: [{ name: "x".repeat(1_200_000), sha256: hash, size: 1 }] },
    });
    expect(hugeList.status).to.equal(413);
    const newline = await node.request<{ error: string }>("POST", `${base}/missing`, { audience: masterAddress, body: { files: [{ name: "a\nb", sha256: hash, size: 1 }] } });
    expect(newline.status).to.equal(400);
    expect(newline.body.error).to.equal("body.files.0.name: must not contain control characters");
    expect(readdirSync(path.join(dataDir, "blobs"))).to.deep.equal([hash]);

    const list = await buyer.call<{ files: Array<{ name: string; sha256: string; size: number }> }>("GET", base, { audience: masterAddress });
    expect(list.files.map((f) => [f.name, f.sha256, f.size])).to.deep.equal([
      ["out/copy.bin", hash, content.length],
      ["out/model.bin", hash, content.length],
    ]);
    const bytes = await buyer.request<string>("GET", `${base}/${hash}`, { audience: masterAddress });
    expect(bytes.status).to.equal(200);
    // SignedClient reads text; fetch the raw bytes with a fresh signature to compare exactly.
    const headers = await signRequest(new Wallet(dev.keys.buyer), { chainId: dev.admin.chainId, audience: masterAddress, method: "GET", path: new URL(`${base}/${hash}`).pathname, query: "", body: "" });
    const raw = Buffer.from(await (await fetch(`${base}/${hash}`, { headers })).arrayBuffer());
    expect(raw.equals(content)).to.equal(true);
    const otherHash = await buyer.request("GET", `${base}/${sha256(small)}`, { audience: masterAddress });
    expect(otherHash.status).to.equal(404);
    const nodeReads = await node.request("GET", base, { audience: masterAddress });
    expect(nodeReads.status).to.equal(403);
  });

  it("takes a silent member Healthy → Unhealthy → Dead → Ejected on chain, once, and fails its running task", async () => {
    const miner = await newMiner(1);
    const node = await registerForRun(1);
    await validate(node);
    await until("second node Healthy", () => master.node(node)?.state === "Healthy");

    const created = await buyer.call<{ taskId: string; node: string }>("POST", `${master.url}/tasks`, {
      audience: masterAddress,
      body: { image: "trainer:dev", command: ["train"], memoryMB: 128, cpus: 1 },
    });
    // node 0 runs one task, node 1 none: the task goes to node 1.
    expect(created.node).to.equal(node);
    miner.statuses = [{ taskId: created.taskId, runId: runId.toString(), state: "running", exitCode: null, restarts: 0, startedAt: new Date().toISOString(), finishedAt: null }];
    await until("task running", () => master.task(created.taskId)?.state === "running");

    miner.stopHeartbeats();
    const silentSince = Date.now();
    await until("node Ejected", () => master.node(node)?.state === "Ejected", 20_000);
    expect(states(node)).to.deep.equal(["Discovered", "Invited", "Healthy", "Unhealthy", "Dead", "Ejected"]);
    const [unhealthy, dead] = master.transitions(node).slice(3, 5);
    expect(unhealthy.at - silentSince).to.be.within(1_000, 3_500);
    expect(dead.at - silentSince).to.be.within(3_000, 5_500);
    expect(dead.reason).to.match(/^missed 4 heartbeat intervals \(dead after 4\)$/);

    const runs = dev.admin.contracts.trainingRuns;
    expect(Number(await runs.participationOf(runId, node))).to.equal(Participation.None);
    const task = master.task(created.taskId)!;
    expect(task.state).to.equal("failed");
    expect(task.error).to.equal("node dead");
    expect(master.task(firstTaskId)!.state).to.equal("running");
    expect(master.node(miners[0].address)!.state).to.equal("Healthy");

    // Let the heartbeat checks and the event follower run a while: still one ejection on chain.
    await sleep(1_500);
    const ejected = await nodeEvents("NodeEjected", node);
    expect(ejected).to.have.length(1);
    expect((ejected[0].args as unknown as { reason: string }).reason).to.equal(EJECT_REASON);
    expect(EJECT_REASON).to.equal(id("missed heartbeats"));
    expect(master.node(node)!.ejectTx).to.equal(ejected[0].transactionHash);

    const deadLog = logs.find((l) => l.subsystem === "Heartbeat" && l.to === "Dead" && l.miner === node);
    expect(deadLog).to.include({ missedIntervals: 4, intervalMs: 1000, deadAfterMisses: 4 });
    const failedLog = logs.find((l) => l.subsystem === "Tasks" && l.reason === "node dead");
    expect(failedLog).to.include({ miner: node, reassigned: 0 });
    expect(String(failedLog!.msg)).to.include("not reassigned yet");

    // An ejected node is no longer a member: its heartbeats are refused.
    miner.startHeartbeats(masterAddress, master.publicUrl);
    const answer = await until("a refused heartbeat", () => miner.heartbeatAnswers.find((a) => a.status === 403));
    expect((answer.body as { error: string }).error).to.equal(`${node} is not a member of run ${runId}`);
    miner.stopHeartbeats();
  });

  it("restarts on the same data dir: states restored, events missed while down handled, no second invite or ejection", async () => {
    const [miner0, miner1] = miners;
    const transitionsBefore = master.transitions().length;
    const node0Transitions = master.transitions(miner0.address).length;
    await master.stop();

    // While the master is down: a third node registers and is validated.
    const miner2 = await newMiner(2);
    const node2 = await registerForRun(2);
    await validate(node2);

    master = await startMaster(masterOptions());
    expect(master.url).to.equal(`http://127.0.0.1:${masterPort}`);
    expect(master.node(miner0.address)).to.include({ state: "Healthy", participation: "Member" });
    expect(master.node(miner1.address)).to.include({ state: "Ejected", participation: "None" });
    expect(master.task(firstTaskId)!.state).to.equal("running");
    expect(master.tasks().filter((t) => t.error === "node dead")).to.have.length(1);
    // Caught up from the cursor before serving: the node registered while the master was down is known.
    expect(master.node(node2)?.participation).to.equal("Registered");

    await until("third node Healthy", () => master.node(node2)?.state === "Healthy");
    expect(miner2.invites).to.have.length(1);
    await sleep(1_500);
    // At most one more message to a member: an introduction (an invite it accepts without a transaction)
    // when it went silent for two intervals (miner1 before its ejection; miner0 when its heartbeats did not
    // reach the restarted master in time); never a second join.
    expect(miner0.invites.length).to.be.within(1, 2);
    expect(miner1.invites.length).to.be.within(1, 2);
    expect(await nodeEvents("NodeJoined", miner0.address)).to.have.length(1);
    expect(await nodeEvents("NodeEjected", miner1.address)).to.have.length(1);
    // The downtime did not count as missed heartbeats, and nothing happened to the nodes twice.
    expect(master.node(miner0.address)!.state).to.equal("Healthy");
    expect(master.transitions(miner0.address)).to.have.length(node0Transitions);
    expect(master.transitions().length).to.equal(transitionsBefore + 3);
  });

  it("does not invite again while an invite is outstanding, and invites again once it expired", async () => {
    await master.stop();
    master = await startMaster(masterOptions({ inviteExpirySec: 3 }));
    const miner = await newMiner(3);
    miner.invitesToIgnore = 1;
    const node = await registerForRun(3);
    await validate(node);
    const first = await until("the first invite", () => miner.invites[0]);
    // Acknowledged but never accepted on chain: outstanding until it expires, whatever the reconcile passes.
    await sleep(2_000);
    expect(miner.invites).to.have.length(1);
    expect(master.node(node)).to.include({ state: "Invited", participation: "Registered", inviteNonce: first.body.nonce });

    // The contract's clock decides expiry, and a local node's clock runs ahead of ours: move it past the
    // invite's expiry rather than wait for the wall clock to catch up.
    expect(miner.invites).to.have.length(1);
    const expiredAt = Date.now();
    await rpc(dev.rpcUrl, "evm_increaseTime", [5]);
    await rpc(dev.rpcUrl, "evm_mine");
    await until("node Healthy after the second invite", () => master.node(node)?.state === "Healthy", 10_000);
    expect(miner.invites).to.have.length(2);
    const second = miner.invites[1];
    expect(second.body.nonce).to.not.equal(first.body.nonce);
    expect(second.body.generation).to.equal(first.body.generation);
    // Re-sent only after the first had expired on the chain's clock.
    const block = await dev.admin.provider.getBlock("latest");
    expect(second.at).to.be.at.least(expiredAt);
    expect(Number(first.body.expiry)).to.be.below(block!.timestamp);
    const runs = dev.admin.contracts.trainingRuns;
    expect(await runs.isInviteNonceUsed(runId, BigInt(first.body.nonce))).to.equal(false);
    expect(await runs.isInviteNonceUsed(runId, BigInt(second.body.nonce))).to.equal(true);
    expect(states(node)).to.deep.equal(["Discovered", "Invited", "Healthy"]);
    const again = logs.find((l) => l.subsystem === "Onboarding" && l.miner === node && String(l.msg).includes("expired"));
    expect(again).to.include({ nonce: second.body.nonce });
  });

  it("stops taking heartbeats while the buyer has moved the run to another master, and resumes when it is back", async () => {
    const asBuyer = await dev.connect(dev.keys.buyer);
    const runs = asBuyer.contracts.trainingRuns;
    const miner = miners[0];
    const replacement = Wallet.createRandom().address;
    try {
      const answered = miner.heartbeatAnswers.length;
      await (await runs.setMaster(runId, replacement)).wait();
      const refused = await until("a heartbeat refused by the replaced master", () =>
        miner.heartbeatAnswers.slice(answered).find((a) => a.status === 403),
      );
      expect((refused.body as { error: string }).error).to.equal(`${masterAddress} is no longer the master of run ${runId} (it is ${replacement})`);
      expect(logs.some((l) => l.subsystem === "Onboarding" && l.newMaster === replacement && l.level === "error")).to.equal(true);
    } finally {
      await (await runs.setMaster(runId, masterAddress)).wait();
      asBuyer.provider.destroy();
    }
    const resumed = miner.heartbeatAnswers.length;
    await until("heartbeats accepted again", () => miner.heartbeatAnswers.slice(resumed).find((a) => a.status === 200));
    await until("every member Healthy again", () => master.nodes().filter((n) => n.participation === "Member").every((n) => n.state === "Healthy"));
    expect(await nodeEvents("NodeEjected", miner.address)).to.have.length(0);
  });

  it("runs as a command: exit code 2 with the reason for bad flags or a key that is not the master; prints its URL when ready and stops on SIGTERM", async () => {
    const run = (args: string[], key?: string) => {
      const env: NodeJS.ProcessEnv = { ...process.env };
      for (const name of Object.keys(env)) if (name.startsWith("CN_")) delete env[name];
      if (key) env.CN_PRIVATE_KEY = key;
      // Node with tsx's loader, not the tsx CLI: its wrapper process relays signals with a race of its own.
      const child = spawn(process.execPath, ["--import", "tsx", "keepers/cli/computenet.ts", "master", ...args], {
        cwd: ROOT,
        env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (chunk) => (stdout += chunk));
      child.stderr.on("data", (chunk) => (stderr += chunk));
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      void exited.then(() => clearTimeout(timer));
      return { child, exited, out: () => stdout, err: () => stderr };
    };
    const common = ["--rpc-url", dev.rpcUrl, "--deployment", dev.deploymentFile, "--port", "0", "--log-level", "warn"];

    const bad = run([...common, "--data-dir", path.join(dir, "cli-bad"), "--run-id", "abc", "--discovery-url", "ftp://x", "--dead-after-misses", "1"], dev.keys.master);
    const notMaster = run([...common, "--data-dir", path.join(dir, "cli-nm"), "--run-id", otherRunId.toString(), "--discovery-url", discovery.url], dev.keys.buyer);
    const good = run([...common, "--data-dir", path.join(dir, "cli-ok"), "--run-id", otherRunId.toString(), "--discovery-url", discovery.url], dev.keys.master);

    expect(await bad.exited).to.equal(2);
    expect(bad.err()).to.include("--run-id (CN_RUN_ID): must be a positive decimal integer (the run's id)");
    expect(bad.err()).to.include("--discovery-url (CN_DISCOVERY_URL): must be an http(s) URL without credentials");
    expect(bad.err()).to.include("--dead-after-misses (CN_DEAD_AFTER_MISSES): must be at least 2");

    expect(await notMaster.exited).to.equal(2);
    expect(notMaster.err()).to.include(`which is not the master of run ${otherRunId}: its master is ${masterAddress}`);

    const line = await until("the listening line", () => /^master listening on (http:\/\/127\.0\.0\.1:\d+)$/m.exec(good.out()), 30_000, 100);
    const health = (await (await fetch(`${line[1]}/health`)).json()) as Record<string, unknown>;
    expect(health).to.include({ status: "ok", runId: otherRunId.toString(), master: masterAddress });
    good.child.kill("SIGTERM");
    expect(await good.exited).to.equal(0);
  });
});
