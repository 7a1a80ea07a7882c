/**
 * The miner keeper end to end: a real hardhat node (devchain), the real local Docker engine with
 * computenet/busybox, real signed HTTP on 127.0.0.1 and real SQLite files. The discovery service and the
 * master are test doubles written here (they are being built in parallel); they verify every signature
 * with the shared requireSignature and check membership on chain like the real ones will.
 *
 * Each run uses a fresh random node key, so the containers it makes (labelled with the node address)
 * never clash with another test file's; cleanup removes only those. The miner's JSON logs go to
 * miner.log in the test folder; CN_KEEP_TEST_DIR=1 keeps the folder to read them.
 */
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import Dockerode from "dockerode";
import { type Signer, Wallet } from "ethers";
import { pino } from "pino";
import { type ChallengeParams, decodeResult, newChallenge, resultHash, verifyChallenge } from "../../keepers/shared/challenge.js";
import { type Chain } from "../../keepers/shared/chain.js";
import { type App, HttpError, SignedClient, closeServer, createApp, listen, requireSignature } from "../../keepers/shared/http.js";
import { createLogger } from "../../keepers/shared/log.js";
import { createMetrics } from "../../keepers/shared/metrics.js";
import { MemoryNonceStore } from "../../keepers/shared/signing.js";
import { LABEL_NODE, type TaskStatus } from "../../keepers/miner/docker-runtime.js";
import { type MinerOptions, type MinerService, RequirementsNotMetError, startMiner } from "../../keepers/miner/index.js";
import { freePort } from "../../scripts/lib/processes.js";
import { Participation, signInvite } from "../../scripts/lib/protocol.js";
import { type DevChain, startDevChain } from "./support/devchain.js";
import { requireDocker } from "./support/docker.js";

/** Route parameters and query of the test doubles' routes. */
type P = { Params: Record<string, string>; Querystring: Record<string, string | undefined>; Body: unknown };

const IMAGE = "computenet/busybox:latest";
const ROOT = path.resolve(import.meta.dirname, "..", "..");
const silent = createLogger({ component: "test-double", level: "silent" });

/** Polls `check` every 100 ms until it returns a truthy value; fails after `timeoutMs` saying what it waited for. */
async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 15_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const sha256 = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex");

/** TEST DOUBLE of the discovery service: only `PUT /nodes/:node`, signed by a registered node key. */
class FakeDiscovery {
  readonly endpoints = new Map<string, { endpoint: string; updatedAt: number }>();
  puts = 0;
  private server: App | undefined;

  constructor(
    private readonly chain: Chain,
    readonly port: number,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const app = createApp({ logger: silent, metrics: createMetrics("fake-discovery") });
    const signed = requireSignature({ chainId: this.chain.chainId, audience: "discovery", nonces: new MemoryNonceStore() });
    app.put<P>("/nodes/:node", { preHandler: signed }, async (req, reply) => {
      const node = String(req.params.node);
      if (req.signer.toLowerCase() !== node.toLowerCase()) throw new HttpError(403, "only the node key may set its endpoint");
      if (!(await this.chain.contracts.registry.isRegistered(node))) throw new HttpError(403, `${node} is not registered`);
      const endpoint = (req.body as { endpoint?: unknown })?.endpoint;
      if (typeof endpoint !== "string" || !/^https?:\/\/[^/?#@]+$/.test(endpoint)) throw new HttpError(400, "endpoint must be http(s)://host:port");
      this.puts++;
      const entry = { endpoint, updatedAt: Math.floor(Date.now() / 1000) };
      this.endpoints.set(node.toLowerCase(), entry);
      reply.send({ node, ...entry });
    });
    this.server = app;
    await listen(app, this.port, "127.0.0.1");
  }

  async stop(): Promise<void> {
    if (this.server) await closeServer(this.server);
  }
}

interface ReceivedFile {
  taskId: string;
  name: string;
  sha256: string;
  bytes: Buffer;
}

/**
 * TEST DOUBLE of the run's master: heartbeats from member nodes (checked on chain) and the resumable
 * file upload (missing list + content-addressed PUT, bytes checked against their hash), in memory.
 */
class FakeMaster {
  readonly heartbeats: Array<{ signer: string; body: { runId: string; node: string; tasks: TaskStatus[]; sentAt: string } }> = [];
  readonly files: ReceivedFile[] = [];
  readonly refused: string[] = [];
  puts = 0;
  private server: App | undefined;
  url = "";

  constructor(
    private readonly chain: Chain,
    readonly address: string,
    private readonly runId: () => bigint,
  ) {}

  async start(): Promise<void> {
    const app = createApp({ logger: silent, metrics: createMetrics("fake-master"), bodyLimit: "4mb" });
    const signed = requireSignature({ chainId: this.chain.chainId, audience: this.address.toLowerCase(), nonces: new MemoryNonceStore() });
    const requireMember = async (signer: string) => {
      if (!(await this.chain.contracts.trainingRuns.isMember(this.runId(), signer))) {
        this.refused.push(signer);
        throw new HttpError(403, `${signer} is not a member of run ${this.runId()}`);
      }
    };
    app.post<P>("/heartbeat", { preHandler: signed }, async (req, reply) => {
      await requireMember(req.signer);
      const body = req.body as FakeMaster["heartbeats"][number]["body"];
      if (body?.node?.toLowerCase() !== req.signer.toLowerCase()) throw new HttpError(403, "heartbeat for another node");
      this.heartbeats.push({ signer: req.signer, body });
      reply.send({ ok: true, state: "Healthy" });
    });
    app.post<P>("/tasks/:taskId/files/missing", { preHandler: signed }, async (req, reply) => {
      await requireMember(req.signer);
      const files = (req.body as { files: Array<{ name: string; sha256: string; size: number }> }).files;
      const have = new Set(this.files.filter((file) => file.taskId === req.params.taskId).map((file) => file.sha256));
      reply.send({ missing: [...new Set(files.map((file) => file.sha256).filter((hash) => !have.has(hash)))] });
    });
    app.put<P>("/tasks/:taskId/files/:sha256", { preHandler: signed }, async (req, reply) => {
      await requireMember(req.signer);
      const bytes = req.rawBody ?? Buffer.alloc(0);
      if (sha256(bytes) !== req.params.sha256) throw new HttpError(400, "bytes do not hash to :sha256");
      if (req.headers["content-type"] !== "application/octet-stream") throw new HttpError(400, "content-type must be application/octet-stream");
      const header = req.headers["x-cn-file-name"] as string | undefined;
      if (!header) throw new HttpError(400, "x-cn-file-name missing");
      const name = Buffer.from(header, "latin1").toString("utf8"); // UTF-8 bytes arrive as latin1
      this.puts++;
      this.files.push({ taskId: String(req.params.taskId), name, sha256: String(req.params.sha256), bytes });
      reply.send({ sha256: req.params.sha256, size: bytes.length, stored: true });
    });
    this.server = app;
    await listen(app, 0, "127.0.0.1");
    const address = app.server.address() as { port: number };
    this.url = `http://127.0.0.1:${address.port}`;
  }

  heartbeatsFrom(node: string): number {
    return this.heartbeats.filter((beat) => beat.signer.toLowerCase() === node.toLowerCase()).length;
  }

  async stop(): Promise<void> {
    if (this.server) await closeServer(this.server);
  }
}

describe("miner keeper (real chain, Docker and HTTP)", function () {
  this.timeout(90_000);

  let dev: DevChain;
  let dir: string;
  let runId: bigint;
  let masterWallet: Wallet;
  let discovery: FakeDiscovery;
  let master: FakeMaster;
  let miner: MinerService | undefined;
  const docker = new Dockerode();
  // Fresh node keys: no chain funds needed (the provider pays), and container labels unique to this run.
  const nodeKey = Wallet.createRandom().privateKey;
  const node = new Wallet(nodeKey).address;
  const smallNodeKey = Wallet.createRandom().privateKey;
  let providerKey: string;
  let provider: string;

  const options = (overrides: Partial<MinerOptions> = {}): MinerOptions => ({
    rpcUrl: dev.rpcUrl,
    deploymentFile: dev.deploymentFile,
    dataDir: path.join(dir, "miner"),
    host: "127.0.0.1",
    port: 0,
    pollMs: 100,
    confirmations: 0,
    logger: createLogger({
      component: "miner",
      node: new Wallet(overrides.nodeKey ?? nodeKey).address,
      level: "debug",
      destination: pino.destination({ dest: path.join(dir, "miner.log"), sync: true }),
    }),
    providerKey,
    nodeKey,
    runId,
    discoveryUrl: discovery.url,
    heartbeatIntervalSec: 1,
    capabilities: { cpuCores: 4, ramMB: 8192, storageGB: 10 },
    discoveryRetryMs: { baseMs: 100, maxMs: 400 },
    syncRetryMs: { baseMs: 100, maxMs: 400 },
    ...overrides,
  });

  const masterClient = () => new SignedClient(masterWallet, dev.admin.chainId);
  const stranger0 = () => new SignedClient(Wallet.createRandom(), dev.admin.chainId);
  const nonceOf = (address: string) => dev.admin.provider.getTransactionCount(address, "latest");

  async function registeredEvents(nodeAddress: string): Promise<number> {
    const registry = dev.admin.contracts.registry;
    return (await registry.queryFilter(registry.filters.NodeRegistered(undefined, nodeAddress))).length;
  }

  async function signedInvite(signer: Signer, validForSec = 3600n) {
    const runs = dev.admin.contracts.trainingRuns;
    const nonce = BigInt(`0x${randomBytes(8).toString("hex")}`);
    const generation = await runs.inviteGenerationOf(runId, node);
    const expiry = BigInt((await dev.admin.provider.getBlock("latest"))!.timestamp) + validForSec;
    const signature = await signInvite(
      signer,
      { chainId: dev.admin.chainId, verifyingContract: await runs.getAddress() },
      { runId, node, generation, nonce, expiry },
    );
    return {
      runId: runId.toString(),
      nonce: nonce.toString(),
      expiry: expiry.toString(),
      generation: generation.toString(),
      signature,
      masterUrl: master.url,
    };
  }

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "cn-miner-"));
    dev = await startDevChain();
    providerKey = dev.keys.providers[0];
    provider = new Wallet(providerKey).address;
    masterWallet = new Wallet(dev.keys.master);
    discovery = new FakeDiscovery(dev.admin, await freePort()); // not started: discovery is down at first
    master = new FakeMaster(dev.admin, masterWallet.address, () => runId);
    await master.start();
    const buyer = await dev.connect(dev.keys.buyer);
    const runs = buyer.contracts.trainingRuns;
    await (
      await runs.createRun({
        master: masterWallet.address,
        pricePerUnit: 1n,
        maxMembers: 5,
        budget: 0n,
        discoveryURI: discovery.url,
        requirements: { minGpuCount: 0, minGpuMemoryMB: 0, minCpuCores: 2, minRamMB: 1024, minStorageGB: 1, allowedGpuModels: [] },
      })
    ).wait();
    runId = await runs.runCount();
    buyer.provider.destroy();
  });

  after(async () => {
    await miner?.stop();
    await master?.stop();
    await discovery?.stop();
    for (const key of [nodeKey, smallNodeKey]) {
      const label = `${LABEL_NODE}=${new Wallet(key).address.toLowerCase()}`;
      const containers = await docker.listContainers({ all: true, filters: { label: [label] } });
      for (const container of containers) await docker.getContainer(container.Id).remove({ force: true });
    }
    await dev?.stop();
    if (process.env.CN_KEEP_TEST_DIR) console.log(`miner test folder kept (miner.log inside): ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  });

  it("refuses to start below the run's requirements, with the report and before any transaction", async () => {
    const smallProviderKey = dev.keys.providers[1];
    const smallProvider = new Wallet(smallProviderKey).address;
    const nonceBefore = await nonceOf(smallProvider);
    const error = await startMiner(
      options({
        providerKey: smallProviderKey,
        nodeKey: smallNodeKey,
        dataDir: path.join(dir, "small"),
        capabilities: { cpuCores: 1, ramMB: 512, storageGB: 10 },
      }),
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(RequirementsNotMetError);
    const refused = error as RequirementsNotMetError;
    expect(refused.gaps.map((gap) => gap.requirement)).to.deep.equal(["CpuCores", "Ram"]);
    expect(refused.report).to.equal(`run ${runId}: CPU cores: needs 2, this node has 1\nrun ${runId}: RAM: needs 1024 MiB, this node has 512 MiB`);
    expect(await nonceOf(smallProvider)).to.equal(nonceBefore);
    expect(await dev.admin.contracts.registry.isRegistered(new Wallet(smallNodeKey).address)).to.equal(false);
  });

  it("registers and stakes the node, registers it for the run, and uploads its endpoint once discovery answers", async () => {
    miner = await startMiner(options());
    const { registry, trainingRuns } = dev.admin.contracts;
    const [registeredBy] = await registry.registrationOf(node);
    expect(registeredBy).to.equal(provider);
    const info = await registry.getNode(node);
    expect(info.stake).to.equal(await registry.minimumStake(0));
    expect(info.capabilities.cpuCores).to.equal(4n);
    expect(info.capabilities.ramMB).to.equal(8192n);
    expect(await trainingRuns.participationOf(runId, node)).to.equal(BigInt(Participation.Registered));
    expect(await registeredEvents(node)).to.equal(1);
    expect(miner.registration.registeredNow).to.equal(true);

    // Discovery is down: the miner keeps retrying; once it is up, the endpoint arrives.
    await waitFor("a failed discovery attempt", () => miner!.agent.discovery.attempts >= 2);
    expect(miner.agent.discovery.uploaded).to.equal(false);
    await discovery.start();
    await waitFor("the endpoint upload", () => miner!.agent.discovery.uploaded);
    expect(discovery.endpoints.get(node.toLowerCase())?.endpoint).to.equal(miner.url);
    expect(discovery.puts).to.equal(1);
  });

  it("answers a validator's challenge with a product Freivalds accepts, and refuses anyone else with 403", async () => {
    const validator = new Wallet(dev.keys.validators[0]);
    const client = new SignedClient(validator, dev.admin.chainId);
    const params: ChallengeParams = newChallenge({ n: 64 });
    const answer = await client.call<{ challengeId: string; result: string }>("POST", `${miner!.url}/challenge`, {
      audience: node.toLowerCase(),
      body: params,
    });
    expect(answer.challengeId).to.equal(params.challengeId);
    const c = decodeResult(answer.result, params.n);
    expect(verifyChallenge(params, c)).to.equal(true);

    const stranger = await new SignedClient(Wallet.createRandom(), dev.admin.chainId).request<{ error: string }>("POST", `${miner!.url}/challenge`, {
      audience: node.toLowerCase(),
      body: newChallenge({ n: 8 }),
    });
    expect(stranger.status).to.equal(403);
    expect(stranger.body.error).to.match(/does not hold VALIDATOR_ROLE/);
    const malformed = await client.request<{ error: string }>("POST", `${miner!.url}/challenge`, {
      audience: node.toLowerCase(),
      body: { ...newChallenge({ n: 8 }), n: 5000 },
    });
    expect(malformed.status).to.equal(400);
    expect(malformed.body.error).to.match(/^challenge n:/);

    // The validator approves on chain; the miner sees itself validated through its event follower.
    const validatorChain = await dev.connect(dev.keys.validators[0]);
    const capsId = await validatorChain.contracts.registry.capsIdOf(node);
    await (await validatorChain.contracts.challengeBoard.reportChallenge(node, capsId, true, resultHash(params, c))).wait();
    validatorChain.provider.destroy();
    await waitFor("the miner to see NodeValidated", () => miner!.agent.validation.status === "Validated");
  });

  it("refuses an invite not signed by the run's master, sent by someone else, stale or expired, without any transaction", async () => {
    const nonceBefore = await nonceOf(provider);
    const forged = await masterClient().request<{ error: string }>("POST", `${miner!.url}/invite`, {
      audience: node.toLowerCase(),
      body: await signedInvite(Wallet.createRandom()),
    });
    expect(forged.status).to.equal(403);
    expect(forged.body.error).to.match(/^the invite is signed by 0x[0-9a-fA-F]{40}, not by the run's master/);

    const fromStranger = await new SignedClient(Wallet.createRandom(), dev.admin.chainId).request<{ error: string }>("POST", `${miner!.url}/invite`, {
      audience: node.toLowerCase(),
      body: await signedInvite(masterWallet),
    });
    expect(fromStranger.status).to.equal(403);
    expect(fromStranger.body.error).to.match(/is not the master of run/);

    const stale = await masterClient().request<{ error: string }>("POST", `${miner!.url}/invite`, {
      audience: node.toLowerCase(),
      body: { ...(await signedInvite(masterWallet)), generation: "7" },
    });
    expect(stale.status).to.equal(409);

    // Signed by the master but expired: the chain refuses it at estimation, the decoded error comes back.
    const expired = await masterClient().request<{ error: string }>("POST", `${miner!.url}/invite`, {
      audience: node.toLowerCase(),
      body: await signedInvite(masterWallet, -60n),
    });
    expect(expired.status).to.equal(409);
    expect(expired.body.error).to.match(/^acceptInvite reverted: TrainingRunsInviteExpired\(expiry=\d+, now_=\d+\)$/);

    expect(await nonceOf(provider)).to.equal(nonceBefore);
    expect(await dev.admin.contracts.trainingRuns.participationOf(runId, node)).to.equal(BigInt(Participation.Registered));
    expect(master.heartbeatsFrom(node)).to.equal(0);
  });

  it("accepts the master's invite on chain and heartbeats to the master from then on", async () => {
    const invite = await signedInvite(masterWallet);
    const answer = await masterClient().call<{ accepted: boolean; txHash: string }>("POST", `${miner!.url}/invite`, {
      audience: node.toLowerCase(),
      body: invite,
    });
    expect(answer.accepted).to.equal(true);
    expect(answer.txHash).to.match(/^0x[0-9a-f]{64}$/);
    const runs = dev.admin.contracts.trainingRuns;
    expect(await runs.isMember(runId, node)).to.equal(true);
    // The join's own block (the chain also mines a block a second: "latest" may already be the next one).
    const receipt = (await dev.admin.provider.getTransactionReceipt(answer.txHash))!;
    const joined = await runs.queryFilter(runs.filters.NodeJoined(runId, node), receipt.blockNumber, receipt.blockNumber);
    expect(joined.map((event) => event.args.nonce.toString())).to.deep.equal([invite.nonce]);

    await waitFor("two heartbeats at the master", () => master.heartbeatsFrom(node) >= 2, 10_000);
    const beat = master.heartbeats.find((b) => b.signer === node)!;
    expect(beat.body).to.include({ runId: runId.toString(), node });
    expect(Number.isNaN(Date.parse(beat.body.sentAt))).to.equal(false);
    expect(master.refused).to.deep.equal([]);

    // The same invite again: the chain refuses the used nonce... but the node is a member, so it answers without a tx.
    const nonceBefore = await nonceOf(provider);
    const again = await masterClient().call<{ accepted: boolean; txHash: string | null; alreadyMember?: boolean }>("POST", `${miner!.url}/invite`, {
      audience: node.toLowerCase(),
      body: invite,
    });
    expect(again).to.deep.equal({ accepted: true, txHash: null, alreadyMember: true });
    expect(await nonceOf(provider)).to.equal(nonceBefore);
  });

  it("runs the master's task in a container, serves its status and logs, and syncs its output to the master", async function () {
    await requireDocker(this);
    const client = masterClient();
    const taskId = `t-${randomBytes(4).toString("hex")}`;
    const spec = {
      taskId,
      runId: runId.toString(),
      image: IMAGE,
      command: ["sh", "-c", "echo hi; echo out > /data/result.txt"],
      memoryMB: 64,
      cpus: 0.5,
    };
    const started = await client.request<TaskStatus>("POST", `${miner!.url}/tasks`, { audience: node.toLowerCase(), body: spec });
    expect(started.status).to.equal(202);
    expect(started.body.taskId).to.equal(taskId);
    // The miner answers within 2 s whatever the engine does: on a loaded machine the container may not run yet.
    expect(["pending", "running", "completed"]).to.include(started.body.state);

    const final = await waitFor("the task to complete", async () => {
      const status = await client.call<TaskStatus>("GET", `${miner!.url}/tasks/${taskId}`, { audience: node.toLowerCase() });
      return status.state === "completed" ? status : undefined;
    });
    expect(final.exitCode).to.equal(0);
    const logs = await client.call<{ stdout: string; stderr: string }>("GET", `${miner!.url}/tasks/${taskId}/logs?tail=10`, {
      audience: node.toLowerCase(),
    });
    expect(logs).to.deep.equal({ stdout: "hi\n", stderr: "" });

    const file = await waitFor("result.txt at the master", () => master.files.find((f) => f.taskId === taskId && f.name === "result.txt"));
    expect(file.sha256).to.equal(sha256("out\n"));
    expect(file.bytes.toString()).to.equal("out\n");

    // GET /status: the run's master sees the node's runs, tasks and hardware.
    const status = await client.call<{ node: string; runs: Array<{ runId: string; participation: string }>; tasks: TaskStatus[]; hardware: { capabilities: { cpuCores: number } } }>(
      "GET",
      `${miner!.url}/status`,
      { audience: node.toLowerCase() },
    );
    expect(status.node).to.equal(node);
    expect(status.runs).to.deep.include({ runId: runId.toString(), participation: "Member", master: masterWallet.address });
    expect(status.tasks.map((task) => task.taskId)).to.include(taskId);
    expect(status.hardware.capabilities.cpuCores).to.equal(4);

    // Only the run's master may read or start tasks.
    expect((await stranger0().request("GET", `${miner!.url}/status`, { audience: node.toLowerCase() })).status).to.equal(403);
    const stranger = new SignedClient(Wallet.createRandom(), dev.admin.chainId);
    expect((await stranger.request("GET", `${miner!.url}/tasks/${taskId}`, { audience: node.toLowerCase() })).status).to.equal(403);
    const refused = await stranger.request("POST", `${miner!.url}/tasks`, { audience: node.toLowerCase(), body: { ...spec, taskId: "other" } });
    expect(refused.status).to.equal(403);
    expect((await client.request("GET", `${miner!.url}/tasks/nope`, { audience: node.toLowerCase() })).status).to.equal(404);
  });

  it("syncs nested and UTF-8 named files, sends only what the master lacks, and never follows a symbolic link", async function () {
    await requireDocker(this);
    const taskId = `files-${randomBytes(4).toString("hex")}`;
    // The master already holds one of the files (an earlier, interrupted sync): it must not come again.
    master.files.push({ taskId, name: "sub/résumé.txt", sha256: sha256("deep\n"), bytes: Buffer.from("deep\n") });
    const putsBefore = master.puts;
    const script = "mkdir -p /data/sub && echo deep > /data/sub/résumé.txt && echo same > /data/a.txt && echo same > /data/b.txt && busybox ln -s /etc/passwd /data/link";
    const spec = { taskId, runId: runId.toString(), image: IMAGE, command: ["sh", "-c", script], memoryMB: 32, cpus: 0.2 };
    await masterClient().call("POST", `${miner!.url}/tasks`, { audience: node.toLowerCase(), body: spec });
    await waitFor("the task's files to be synced", () => miner!.agent.sync.completed.has(taskId));
    const received = master.files.filter((file) => file.taskId === taskId).map((file) => `${file.name}:${file.bytes.toString()}`);
    expect(received.sort()).to.deep.equal(["a.txt:same\n", "b.txt:same\n", "sub/résumé.txt:deep\n"]);
    expect(master.puts - putsBefore).to.equal(2);
  });

  it("after a restart on the same data dir: registers nothing again, adopts its running container and resumes heartbeats", async function () {
    await requireDocker(this);
    const client = masterClient();
    const taskId = `long-${randomBytes(4).toString("hex")}`;
    const spec = { taskId, runId: runId.toString(), image: IMAGE, command: ["sleep", "60"], memoryMB: 32, cpus: 0.2 };
    const started = await client.call<TaskStatus>("POST", `${miner!.url}/tasks`, { audience: node.toLowerCase(), body: spec });
    expect(started.state).to.equal("running");
    const containerId = started.containerId!;
    const putsBefore = master.puts;
    await miner!.stop();
    miner = undefined;
    expect((await docker.getContainer(containerId).inspect()).State.Running).to.equal(true);

    const nonceBefore = await nonceOf(provider);
    const beatsBefore = master.heartbeatsFrom(node);
    miner = await startMiner(options());
    expect(miner.registration.registeredNow).to.equal(false);
    expect(await registeredEvents(node)).to.equal(1);
    expect(await nonceOf(provider)).to.equal(nonceBefore);
    expect(miner.runtime.status(taskId)).to.include({ state: "running", containerId });

    await waitFor("heartbeats after the restart", () => master.heartbeatsFrom(node) >= beatsBefore + 2, 10_000);
    const latest = master.heartbeats.filter((b) => b.signer === node).at(-1)!;
    expect(latest.body.tasks.map((task) => task.taskId)).to.include(taskId);
    expect(master.puts).to.equal(putsBefore); // the first task's files are not sent again

    const stopped = await client.call<TaskStatus>("POST", `${miner.url}/tasks/${taskId}/stop`, { audience: node.toLowerCase() });
    expect(stopped.state).to.equal("stopped");
    await waitFor("the stopped task's (empty) folder to be synced", () => miner!.agent.sync.completed.has(taskId));
  });

  it("retires a finished task once synced: container removed, status and output still answered, never run twice", async function () {
    await requireDocker(this);
    const client = masterClient();
    const audience = node.toLowerCase();
    const taskId = `done-${randomBytes(4).toString("hex")}`;
    const spec = { taskId, runId: runId.toString(), image: IMAGE, command: ["sh", "-c", "echo one; echo two; echo oops >&2; echo r > /data/r.txt"], memoryMB: 32, cpus: 0.2 };
    await client.call("POST", `${miner!.url}/tasks`, { audience, body: spec });
    await waitFor("the task's files to be synced", () => miner!.agent.sync.completed.has(taskId));
    const { containerId } = miner!.runtime.status(taskId)!;
    const final = miner!.runtime.status(taskId)!;
    expect(final.state).to.equal("completed");

    // Kept for the keep time (60 min by default), then retired.
    expect(await miner!.agent.retireFinished()).to.not.include(taskId);
    expect((await docker.getContainer(containerId!).inspect()).State.Status).to.equal("exited");
    expect(await miner!.agent.retireFinished(Date.now() + 61 * 60_000)).to.include(taskId);
    const gone = await docker.getContainer(containerId!).inspect().then(() => 200, (error: { statusCode?: number }) => error.statusCode);
    expect(gone).to.equal(404);
    expect(miner!.runtime.status(taskId)).to.equal(undefined);

    expect(await client.call<TaskStatus>("GET", `${miner!.url}/tasks/${taskId}`, { audience })).to.deep.equal(final);
    expect(await client.call("GET", `${miner!.url}/tasks/${taskId}/logs`, { audience })).to.deep.equal({ stdout: "one\ntwo\n", stderr: "oops\n" });
    expect(await client.call("GET", `${miner!.url}/tasks/${taskId}/logs?tail=1`, { audience })).to.deep.equal({ stdout: "two\n", stderr: "oops\n" });
    expect(await client.call<TaskStatus>("POST", `${miner!.url}/tasks/${taskId}/stop`, { audience })).to.deep.equal(final);
    // Only the run's master reads it.
    expect((await stranger0().request("GET", `${miner!.url}/tasks/${taskId}`, { audience })).status).to.equal(403);

    // The master asks again (say it restarted): the final status comes back and nothing runs.
    const again = await client.request<TaskStatus>("POST", `${miner!.url}/tasks`, { audience, body: spec });
    expect(again.status).to.equal(202);
    expect(again.body).to.deep.equal(final);
    const label = `${LABEL_NODE}=${node.toLowerCase()}`;
    const containers = await docker.listContainers({ all: true, filters: { label: [label, `computenet.task=${taskId}`] } });
    expect(containers).to.have.length(0);

    // After a restart the state still answers for it.
    await miner!.stop();
    miner = await startMiner(options());
    expect(await client.call<TaskStatus>("GET", `${miner.url}/tasks/${taskId}`, { audience })).to.deep.equal(final);
  });

  it("without a Docker engine still registers, and answers task routes with 503", async () => {
    const noDockerKey = Wallet.createRandom().privateKey;
    const noDockerNode = new Wallet(noDockerKey).address;
    const other = await startMiner(
      options({
        providerKey: dev.keys.providers[3],
        nodeKey: noDockerKey,
        dataDir: path.join(dir, "no-docker"),
        dockerSocket: path.join(dir, "no-such-docker.sock"),
      }),
    );
    try {
      expect(other.dockerAvailable()).to.equal(false);
      expect(await dev.admin.contracts.trainingRuns.participationOf(runId, noDockerNode)).to.equal(BigInt(Participation.Registered));
      const spec = { taskId: "t-1", runId: runId.toString(), image: IMAGE, command: ["true"], memoryMB: 16, cpus: 0.1 };
      const refused = await masterClient().request<{ error: string }>("POST", `${other.url}/tasks`, { audience: noDockerNode.toLowerCase(), body: spec });
      expect(refused.status).to.equal(503);
      expect(refused.body.error).to.match(/^no Docker engine answers at .*no-such-docker\.sock: tasks wait for an engine$/);
      const health = (await (await fetch(`${other.url}/health`)).json()) as { dockerAvailable: boolean; node: string };
      expect(health).to.include({ dockerAvailable: false, node: noDockerNode });
      const metrics = await (await fetch(`${other.url}/metrics`)).text();
      expect(metrics).to.match(/^computenet_miner_docker_available\{component="miner"\} 0$/m);
      expect(metrics).to.match(/^computenet_miner_requests_total\{route="tasks",status="503",component="miner"\} 1$/m);
    } finally {
      await other.stop();
    }
  });

  it("`miner` command: exits 2 naming a bad flag, 3 with the requirement report, and starts and stops cleanly", async () => {
    const spawnMiner = (args: string[], env: Record<string, string>, onStdout?: (text: string, kill: () => void) => void) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "keepers/cli/computenet.ts"), "miner", ...args], {
          cwd: ROOT,
          env: { ...process.env, ...env, LOG_LEVEL: "error" },
        });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (chunk) => {
          stdout += chunk;
          onStdout?.(stdout, () => child.kill("SIGTERM"));
        });
        child.stderr.on("data", (chunk) => (stderr += chunk));
        const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
        child.on("exit", (code) => {
          clearTimeout(timer);
          resolve({ code, stdout, stderr });
        });
      });
    const common = ["--rpc-url", dev.rpcUrl, "--deployment", dev.deploymentFile, "--port", "0", "--discovery-url", discovery.url];
    const key = { CN_PRIVATE_KEY: dev.keys.providers[2] };

    const bad = await spawnMiner(
      [...common, "--data-dir", path.join(dir, "cli-bad"), "--run-id", "abc", "--heartbeat-interval-sec", "0", "--public-url", "http://node.example:8730/api"],
      key,
    );
    expect(bad.code, bad.stderr).to.equal(2);
    expect(bad.stderr).to.include("--run-id (CN_RUN_ID): must be a positive decimal integer");
    expect(bad.stderr).to.include("--heartbeat-interval-sec (CN_HEARTBEAT_INTERVAL_SEC): must be at least 1");
    expect(bad.stderr).to.include("--public-url (CN_PUBLIC_URL): must be http(s)://host:port with an explicit port and no path");

    const small = await spawnMiner([...common, "--data-dir", path.join(dir, "cli-small"), "--run-id", runId.toString(), "--cpu-cores", "1"], {
      ...key,
      CN_NODE_KEY: Wallet.createRandom().privateKey,
    });
    expect(small.code, small.stderr).to.equal(3);
    expect(small.stderr).to.include(`run ${runId}: CPU cores: needs 2, this node has 1`);

    // A good configuration: one "listening" line once ready, a clean exit on SIGTERM.
    const cliNode = new Wallet(Wallet.createRandom().privateKey);
    let killed = false;
    const good = await spawnMiner(
      [...common, "--data-dir", path.join(dir, "cli-good"), "--run-id", runId.toString(), "--cpu-cores", "2", "--docker-socket", path.join(dir, "none.sock")],
      { ...key, CN_NODE_KEY: cliNode.privateKey },
      (text, kill) => {
        if (!killed && /miner listening on http:\/\/127\.0\.0\.1:\d+\n/.test(text)) {
          killed = true;
          kill();
        }
      },
    );
    expect(good.code, good.stderr).to.equal(0);
    expect(good.stdout.split("\n").filter((line) => line.startsWith("miner listening on"))).to.have.length(1);
    expect(await dev.admin.contracts.trainingRuns.participationOf(runId, cliNode.address)).to.equal(BigInt(Participation.Registered));
  });
});
