/**
 * Discovery and the master as several instances on one Redis (`--redis-url`), as behind a load balancer:
 * a real `redis-server` on a free port (the test fails, never skips, when it is not installed), a real
 * `hardhat node`, real keeper apps over real loopback HTTP with real signed requests.
 *
 *   discovery: a nonce spent on one instance is a replay on the other; an endpoint uploaded through one is
 *   served by the other; the rate limit is one budget across instances; Redis down → 503, then recovery by
 *   itself.
 *   master: a heartbeat taken by one instance is in the other's node view; exactly one instance holds the
 *   leader lease and does the chain-writing duties (ejection); when the leader process is killed, the other
 *   takes over once the lease expires and carries on with the duties.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import { type HDNodeWallet, Wallet, id } from "ethers";
import { type DiscoveryService, discoveryOptionsFromFlags, startDiscovery } from "../../keepers/discovery/index.js";
import { RedisHeartbeatStore } from "../../keepers/master/cluster.js";
import { type MasterService, masterSchema, startMaster } from "../../keepers/master/index.js";
import { ConfigError, parseConfig } from "../../keepers/shared/config.js";
import { SignedClient } from "../../keepers/shared/http.js";
import { LeaderLease } from "../../keepers/shared/leader-lease.js";
import { createLogger } from "../../keepers/shared/log.js";
import { SharedRedis } from "../../keepers/shared/redis.js";
import { signRequest } from "../../keepers/shared/signing.js";
import { ROOT, freePort } from "../../scripts/lib/processes.js";
import { gpuModel, signInvite, signNodeConsent } from "../../scripts/lib/protocol.js";
import { type DevChain, startDevChain } from "./support/devchain.js";
import { until } from "./support/ledger-chain.js";
import { type RedisServer, startRedis } from "./support/redis.js";
import { DISCOVERY_FLAGS, MASTER_FLAGS } from "./support/flags.js";

type Log = Record<string, unknown>;
type ErrorBody = { error: string };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A logger whose JSON lines land in `into` (the tests read the keepers' decisions from them). */
function capture(component: string, into: Log[]) {
  return createLogger({ component, level: "debug", destination: { write: (line: string) => void into.push(JSON.parse(line)) } });
}

const CPU_NODE = { gpuCount: 0, gpuModel: gpuModel(""), gpuMemoryMB: 0, cpuCores: 4, ramMB: 8_192, storageGB: 100 };
const NO_REQUIREMENTS = { minGpuCount: 0, minGpuMemoryMB: 0, minCpuCores: 0, minRamMB: 0, minStorageGB: 0, allowedGpuModels: [] };

describe("keepers as several instances on one Redis (real redis-server, real chain, real HTTP)", function () {
  this.timeout(180_000);

  let redis: RedisServer;
  let dev: DevChain;
  let dir: string;

  const client = (key: string | Wallet | HDNodeWallet) => new SignedClient(typeof key === "string" ? new Wallet(key) : key, dev.admin.chainId);

  /** Registers dev node `i` in MinerRegistry (its provider pays the stake); returns the block. */
  async function registerNode(i: number): Promise<number> {
    const provider = await dev.connect(dev.keys.providers[i]);
    try {
      const node = new Wallet(dev.keys.nodes[i]);
      const { registry, token } = provider.contracts;
      const stake = await registry.minimumStake(0);
      await (await token.approve(await registry.getAddress(), stake)).wait();
      const deadline = BigInt(Math.floor(Date.now() / 1000) + 3600);
      const consent = await signNodeConsent(
        node,
        { chainId: provider.chainId, verifyingContract: await registry.getAddress() },
        { provider: provider.wallet!.address, nonce: await registry.nonces(node.address), deadline },
      );
      const receipt = await (await registry.registerNode(node.address, CPU_NODE, stake, deadline, consent)).wait();
      return receipt!.blockNumber;
    } finally {
      provider.provider.destroy();
    }
  }

  before(async () => {
    redis = await startRedis();
    dev = await startDevChain();
    dir = await mkdtemp(path.join(os.tmpdir(), "cn-redis-cluster-"));
  });

  after(async () => {
    await dev?.stop();
    await redis?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("validates --redis-url like the other flags", () => {
    const discoveryFlags = DISCOVERY_FLAGS;
    expect(discoveryOptionsFromFlags({ ...discoveryFlags, redisUrl: "redis://127.0.0.1:6379/2" }).redisUrl).to.equal("redis://127.0.0.1:6379/2");
    expect(discoveryOptionsFromFlags(discoveryFlags).redisUrl).to.equal(undefined);
    for (const bad of ["http://127.0.0.1:6379", "127.0.0.1:6379", "redis://", "redis://host/db/extra"]) {
      const error = (() => {
        try {
          discoveryOptionsFromFlags({ ...discoveryFlags, redisUrl: bad });
        } catch (e) {
          return e as Error;
        }
      })();
      expect(error, bad).to.be.instanceOf(ConfigError);
      expect(error!.message, bad).to.include(
        `--redis-url (CN_REDIS_URL): must be a redis:// or rediss:// URL with a host, e.g. redis://127.0.0.1:6379/0 (got ${JSON.stringify(bad)})`,
      );
    }
    const masterFlags = { ...MASTER_FLAGS, leaderLeaseMs: "500", redisUrl: "ftp://x" };
    const names = { redisUrl: { flag: "--redis-url", env: "CN_REDIS_URL" }, leaderLeaseMs: { flag: "--leader-lease-ms", env: "CN_LEADER_LEASE_MS" } };
    expect(() => parseConfig(masterSchema, masterFlags, names))
      .to.throw(ConfigError)
      .with.property("message")
      .that.includes("--redis-url (CN_REDIS_URL): must be a redis:// or rediss:// URL")
      .and.includes("--leader-lease-ms (CN_LEADER_LEASE_MS): must be at least 1000");
  });

  describe("shared records in Redis", () => {
    const silent = createLogger({ component: "test", level: "silent" });
    let shared: SharedRedis;

    before(async () => {
      shared = new SharedRedis({ url: redis.url, prefix: "test:records:", logger: silent });
      expect(await shared.waitReady()).to.equal(true);
    });

    after(() => shared?.close());

    it("keeps each node's latest heartbeat and the task statuses it carried: an earlier one arriving late changes nothing", async () => {
      const store = new RedisHeartbeatStore(shared);
      const node = Wallet.createRandom().address;
      const running = [{ taskId: "t1", state: "running" as const }];
      await store.record(node, { at: 2_000, sentAt: "second" }, running);
      await store.record(node, { at: 1_000, sentAt: "first" }, []);
      expect((await store.all()).get(node)).to.deep.equal({ at: 2_000, sentAt: "second" });
      expect((await store.tasksOf([node, Wallet.createRandom().address]))).to.deep.equal(new Map([[node, running]]));
    });

    it("gives the leader lease to one holder, fences a holder whose lease was taken, and hands it over at once on release", async () => {
      const lease = (url: string) => new LeaderLease({ redis: shared, key: "lease", url, ttlMs: 1_200, logger: silent });
      const first = lease("http://first");
      const second = lease("http://second");
      await first.start();
      await second.start();
      try {
        expect([first.isLeader(), second.isLeader()]).to.deep.equal([true, false]);
        expect(second.leader()).to.deep.equal(first.holder);
        expect(await first.confirm()).to.equal(true);
        expect(await second.confirm()).to.equal(false);
        // The key changed behind the holder's back (its lease expired during a stall): the next write cycle is refused.
        await shared.client.set("lease", "another holder", "PX", 300);
        expect(await first.confirm()).to.equal(false);
        expect(first.isLeader()).to.equal(false);
        const holder = await until("a new holder once the foreign lease expired", () => (first.isLeader() ? first : second.isLeader() ? second : undefined), 3_000, 20);
        const other = holder === first ? second : first;
        const released = Date.now();
        await holder.stop();
        await until("the other to take the released lease", () => other.isLeader(), 1_200, 10);
        expect(Date.now() - released).to.be.below(1_200); // at its next attempt, not after an expiry
      } finally {
        await first.stop();
        await second.stop();
      }
    });
  });

  describe("discovery: two instances on one Redis", () => {
    const AUDIENCE = "discovery";
    const RATE = { max: 8, windowMs: 60_000 };
    const logsA: Log[] = [];
    let a: DiscoveryService;
    let b: DiscoveryService;
    const validator = () => new Wallet(dev.keys.validators[0]);

    /** The same signed request, sent as is (a captured request replayed). */
    const signedGet = async (signer: Wallet, route: string) =>
      signRequest(signer, { chainId: dev.admin.chainId, audience: AUDIENCE, method: "GET", path: route, query: "", body: new Uint8Array() });

    before(async () => {
      const common = { rpcUrl: dev.rpcUrl, deploymentFile: dev.deploymentFile, port: 0, pollMs: 100, redisUrl: redis.url, rateLimit: RATE };
      a = await startDiscovery({ ...common, dataDir: path.join(dir, "discovery-a"), logger: capture("discovery-a", logsA) });
      b = await startDiscovery({ ...common, dataDir: path.join(dir, "discovery-b"), logger: capture("discovery-b", []) });
    });

    after(async () => {
      await a?.stop();
      await b?.stop();
    });

    it("refuses on B, as a replay (401), a signed request whose nonce was used on A", async () => {
      const headers = await signedGet(validator(), "/validator/pending");
      const first = await fetch(`${a.url}/validator/pending`, { headers });
      expect(first.status).to.equal(200);
      for (const instance of [b, a]) {
        const replay = await fetch(`${instance.url}/validator/pending`, { headers });
        expect(replay.status).to.equal(401);
        expect(((await replay.json()) as ErrorBody).error).to.equal("nonce already used: replayed request");
      }
    });

    it("serves through B the endpoint a node uploaded through A (one Redis hash, not the instance's SQLite)", async () => {
      const block = await registerNode(0);
      const node = new Wallet(dev.keys.nodes[0]);
      const put = await client(node).request<{ endpoint: string } & ErrorBody>("PUT", `${a.url}/nodes/${node.address}`, {
        audience: AUDIENCE,
        body: { endpoint: "http://127.0.0.1:9101" },
      });
      expect(put.status, put.body.error).to.equal(200);

      const read = await client(validator()).request<{ node: string; endpoint: string } & ErrorBody>("GET", `${b.url}/nodes/${node.address}`, { audience: AUDIENCE });
      expect(read.status, read.body.error).to.equal(200);
      expect(read.body).to.include({ node: node.address, endpoint: "http://127.0.0.1:9101" });
      // B's own chain index lists the node as undecided; its endpoint comes from Redis.
      await b.waitForBlock(block, 15_000);
      const pending = await client(validator()).request<{ nodes: Array<{ node: string; endpoint: string }> }>("GET", `${b.url}/validator/pending`, { audience: AUDIENCE });
      expect(pending.status).to.equal(200);
      expect(pending.body.nodes.map((n) => [n.node, n.endpoint])).to.deep.equal([[node.address, "http://127.0.0.1:9101"]]);
      expect(a.endpoints.kind).to.equal("redis");
      expect(await b.endpoints.count()).to.equal(1);
      expect(a.index.endpointCount()).to.equal(0);
      expect(b.index.endpointCount()).to.equal(0);
    });

    it("counts the rate limit once across instances: the budget spent on A and B together, then 429 on both", async () => {
      const stranger = Wallet.createRandom();
      for (let i = 0; i < RATE.max; i++) {
        const instance = i % 2 === 0 ? a : b;
        const answer = await client(stranger).request<ErrorBody>("GET", `${instance.url}/validator/pending`, { audience: AUDIENCE });
        expect(answer.status, `request ${i + 1}`).to.equal(403); // authenticated, not a validator: counted
      }
      for (const instance of [b, a]) {
        const over = await client(stranger).request<ErrorBody>("GET", `${instance.url}/validator/pending`, { audience: AUDIENCE });
        expect(over.status).to.equal(429);
        expect(over.body.error).to.equal(`rate limit: more than ${RATE.max} requests in ${RATE.windowMs} ms`);
      }
      // Another address has its own budget.
      expect((await client(Wallet.createRandom()).request("GET", `${b.url}/validator/pending`, { audience: AUDIENCE })).status).to.equal(403);
    });

    it("answers 503 while Redis is down (never an unchecked request), logs it, and recovers by itself", async () => {
      // A fresh signer per probe: each probe is a first use of its nonce and of its rate budget.
      const probe = (instance: DiscoveryService) =>
        client(Wallet.createRandom()).request<ErrorBody>("GET", `${instance.url}/validator/pending`, { audience: AUDIENCE });
      await redis.stop();
      try {
        for (const instance of [a, b]) {
          const refused = await until("503 while Redis is down", async () => {
            const answer = await probe(instance);
            return answer.status === 503 ? answer : undefined;
          });
          expect(refused.body.error).to.match(/^replay protection unavailable, try again later: /);
        }
        // Even a validator's valid request is refused: without the nonce store a replay cannot be told apart.
        const validatorDown = await client(validator()).request<ErrorBody>("GET", `${a.url}/validator/pending`, { audience: AUDIENCE });
        expect(validatorDown.status).to.equal(503);
        const health = (await (await fetch(`${a.url}/health`)).json()) as Record<string, unknown>;
        expect(health).to.include({ status: "degraded", redis: "down" });
      } finally {
        await redis.start();
      }
      for (const instance of [a, b]) {
        await until("recovery after Redis is back", async () => (await probe(instance)).status === 403, 20_000, 200);
      }
      // Replay protection works again across instances (Redis came back empty; new nonces are recorded).
      const headers = await signedGet(validator(), "/validator/pending");
      expect((await fetch(`${b.url}/validator/pending`, { headers })).status).to.equal(200);
      expect((await fetch(`${a.url}/validator/pending`, { headers })).status).to.equal(401);
      const health = (await (await fetch(`${a.url}/health`)).json()) as Record<string, unknown>;
      expect(health).to.include({ status: "ok", redis: "up" });

      const messages = logsA.filter((l) => l.subsystem === "Cluster").map((l) => `${l.level} ${l.msg}`);
      expect(messages).to.include("error Redis unreachable: signed requests are refused with 503 until it answers again; reconnecting with backoff");
      expect(messages).to.include("info Redis reachable again: shared state restored");
    });
  });

  describe("master: two instances on one Redis, one leader", () => {
    const LEASE_MS = 1_500;
    let runId: bigint;
    let leaderProcess: ChildProcess | undefined;
    let leaderExited: Promise<unknown>;
    let leaderOut = "";
    let leaderUrl: string;
    let follower: MasterService;
    const followerLogs: Log[] = [];
    let fakeDiscovery: Server;
    let discoveryUrl: string;
    let beating = true;
    /** Where each member heartbeats (round robin, as a load balancer would spread them); none: silent. */
    const beatTargets = new Map<string, string[]>();
    let beatLoop: Promise<void> | undefined;
    const members: Wallet[] = [];
    const masterAddress = () => new Wallet(dev.keys.master).address;
    const buyer = () => client(dev.keys.buyer);

    const heartbeat = (node: Wallet, base: string) =>
      client(node).request<{ state?: string } & ErrorBody>("POST", `${base}/heartbeat`, {
        audience: masterAddress().toLowerCase(),
        body: { runId: runId.toString(), node: node.address, tasks: [], sentAt: new Date().toISOString() },
      });
    const health = async (base: string) => (await (await fetch(`${base}/health`)).json()) as Record<string, unknown>;
    const ejections = async (node: string) => dev.admin.contracts.trainingRuns.queryFilter(dev.admin.contracts.trainingRuns.filters.NodeEjected(runId, node), 0);

    /** Dev node `i` registered, registered for the run, validated, and a member through an invite the master key signed. */
    async function member(i: number): Promise<Wallet> {
      await registerNode(i);
      const node = new Wallet(dev.keys.nodes[i]);
      const provider = await dev.connect(dev.keys.providers[i]);
      const validator = await dev.connect(dev.keys.validators[0]);
      try {
        const runs = provider.contracts.trainingRuns;
        await (await runs.registerForRun(runId, node.address)).wait();
        const capsId = await validator.contracts.registry.capsIdOf(node.address);
        await (await validator.contracts.challengeBoard.reportChallenge(node.address, capsId, true, id(`ok ${i}`))).wait();
        const nonce = BigInt(1000 + i);
        const expiry = BigInt(Math.floor(Date.now() / 1000) + 3600);
        const generation = await runs.inviteGenerationOf(runId, node.address);
        const signature = await signInvite(
          new Wallet(dev.keys.master),
          { chainId: dev.admin.chainId, verifyingContract: dev.admin.deployment.contracts.TrainingRuns.address },
          { runId, node: node.address, generation, nonce, expiry },
        );
        await (await runs.acceptInvite(runId, node.address, nonce, expiry, signature)).wait();
      } finally {
        provider.provider.destroy();
        validator.provider.destroy();
      }
      return node;
    }

    before(async () => {
      const asBuyer = await dev.connect(dev.keys.buyer);
      await (
        await asBuyer.contracts.trainingRuns.createRun({ master: masterAddress(), pricePerUnit: 1n, maxMembers: 5, budget: 0n, discoveryURI: "http://127.0.0.1:1", requirements: NO_REQUIREMENTS })
      ).wait();
      runId = await asBuyer.contracts.trainingRuns.runCount();
      asBuyer.provider.destroy();
      members.push(await member(1), await member(2));

      // The masters' discovery: no endpoints (the invites above were made by hand), so they invite nobody.
      fakeDiscovery = createServer((req, res) => {
        const list = /^\/runs\/\d+\/nodes/.test(req.url ?? "");
        res.writeHead(list ? 200 : 404, { "content-type": "application/json" });
        res.end(JSON.stringify(list ? { nodes: [] } : { error: "no endpoint" }));
      });
      await new Promise<void>((resolve) => fakeDiscovery.listen(0, "127.0.0.1", resolve));
      discoveryUrl = `http://127.0.0.1:${(fakeDiscovery.address() as AddressInfo).port}`;

      const settings = ["--heartbeat-interval-sec", "1", "--unhealthy-after-misses", "2", "--dead-after-misses", "4", "--reconcile-ms", "300", "--assignment", "local"];
      // The first instance is a separate process (`computenet master`), so that it can be killed like a crashed host.
      const port = await freePort();
      leaderUrl = `http://127.0.0.1:${port}`;
      const env = { ...process.env };
      for (const name of Object.keys(env)) if (name.startsWith("CN_")) delete env[name];
      env.CN_PRIVATE_KEY = dev.keys.master;
      const args = ["--rpc-url", dev.rpcUrl, "--deployment", dev.deploymentFile, "--data-dir", path.join(dir, "master-1"), "--port", String(port), "--poll-ms", "100"];
      const cluster = ["--run-id", runId.toString(), "--discovery-url", discoveryUrl, "--redis-url", redis.url, "--leader-lease-ms", String(LEASE_MS), "--log-level", "info"];
      leaderProcess = spawn(process.execPath, ["--import", "tsx", "keepers/cli/computenet.ts", "master", ...args, ...cluster, ...settings], {
        cwd: ROOT,
        env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      leaderProcess.stdout!.on("data", (chunk) => (leaderOut += chunk));
      leaderProcess.stderr!.on("data", (chunk) => (leaderOut += chunk));
      leaderExited = new Promise((resolve) => leaderProcess!.once("exit", resolve));
      await until(
        "the first master instance to lead",
        async () => (await health(leaderUrl).catch(() => ({}) as Record<string, unknown>)).leader === true,
        60_000,
        200,
      );
      // The members heartbeat from now on (every 300 ms; the masters expect one a second).
      for (const node of members) beatTargets.set(node.address, [leaderUrl]);
      beatLoop = (async () => {
        for (let i = 0; beating; i++) {
          await Promise.all(
            members.map((node) => {
              const targets = beatTargets.get(node.address) ?? [];
              return targets.length > 0 ? heartbeat(node, targets[i % targets.length]).catch(() => undefined) : undefined;
            }),
          );
          await sleep(300);
        }
      })();

      follower = await startMaster({
        rpcUrl: dev.rpcUrl,
        deployment: dev.deploymentFile,
        dataDir: path.join(dir, "master-2"),
        host: "127.0.0.1",
        port: 0,
        pollMs: 100,
        privateKey: dev.keys.master,
        runId,
        discoveryUrl,
        heartbeatIntervalSec: 1,
        unhealthyAfterMisses: 2,
        deadAfterMisses: 4,
        reconcileMs: 300,
        assignment: "local",
        redisUrl: redis.url,
        leaderLeaseMs: LEASE_MS,
        logger: capture("master-2", followerLogs),
      });
      for (const node of members) beatTargets.set(node.address, [leaderUrl, follower.url]);
    });

    after(async () => {
      beating = false;
      await beatLoop;
      await follower?.stop();
      if (leaderProcess && leaderProcess.exitCode === null && leaderProcess.signalCode === null) {
        leaderProcess.kill("SIGKILL");
        await leaderExited;
      }
      await new Promise((resolve) => fakeDiscovery?.close(resolve));
    });

    it("lets exactly one instance hold the leader lease; the other follows it and keeps following across renewals", async () => {
      const first = await health(leaderUrl);
      const second = await health(follower.url);
      expect(first).to.include({ leader: true, redis: "up" });
      expect(second).to.include({ leader: false, redis: "up", leaderInstance: first.instance });
      expect(follower.isLeader()).to.equal(false);
      await sleep(2 * LEASE_MS);
      expect(await health(leaderUrl)).to.include({ leader: true, instance: first.instance });
      expect(await health(follower.url)).to.include({ leader: false, leaderInstance: first.instance });
    });

    it("shows in each instance's node view the heartbeats the other took, and refuses a heartbeat replayed on the other", async () => {
      const [node] = members;
      await until("the follower to see the member Healthy", () => follower.node(node.address)?.state === "Healthy");
      // To the follower: the leader's node view (buyer's GET /nodes) shows it.
      const toFollower = await heartbeat(node, follower.url);
      expect(toFollower.status, toFollower.body.error).to.equal(200);
      expect(toFollower.body.state).to.equal("Healthy");
      await until("the leader's view to show the heartbeat", async () => {
        const view = await buyer().request<{ nodes: Array<{ node: string; state: string; lastHeartbeat: string | null }> }>("GET", `${leaderUrl}/nodes`, {
          audience: masterAddress().toLowerCase(),
        });
        return view.body.nodes?.find((n) => n.node === node.address)?.state === "Healthy";
      });

      // To the leader: the follower's own view shows it.
      const before = follower.node(node.address)!.lastHeartbeat!;
      await sleep(20);
      const sentAt = Date.now();
      expect((await heartbeat(node, leaderUrl)).status).to.equal(200);
      await until("the follower to take in the leader's heartbeat", () => (follower.node(node.address)!.lastHeartbeat ?? 0) >= sentAt);
      expect(follower.node(node.address)!.lastHeartbeat).to.be.greaterThan(before);
      expect(follower.node(node.address)!.state).to.equal("Healthy");

      // The buyer's node list asked of the follower is answered by the leader (the follower forwards it).
      const viaFollower = await buyer().request<{ nodes: Array<{ node: string; state: string }> } & ErrorBody>("GET", `${follower.url}/nodes`, {
        audience: masterAddress().toLowerCase(),
      });
      expect(viaFollower.status, viaFollower.body.error).to.equal(200);
      expect(viaFollower.body.nodes.find((n) => n.node === node.address)?.state).to.equal("Healthy");
      expect(followerLogs.some((l) => l.msg === "request forwarded to the leader" && l.path === "/nodes")).to.equal(true);

      // One nonce, one use, whichever instance sees it.
      const body = Buffer.from(JSON.stringify({ runId: runId.toString(), node: node.address, tasks: [], sentAt: new Date().toISOString() }));
      const headers = await signRequest(node, { chainId: dev.admin.chainId, audience: masterAddress().toLowerCase(), method: "POST", path: "/heartbeat", query: "", body });
      const post = (base: string) => fetch(`${base}/heartbeat`, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body });
      expect((await post(leaderUrl)).status).to.equal(200);
      const replayed = await post(follower.url);
      expect(replayed.status).to.equal(401);
      expect(((await replayed.json()) as ErrorBody).error).to.equal("nonce already used: replayed request");

    });

    it("has only the leader eject a dead member, once, while both instances judge it dead", async () => {
      const [alive, silent] = members;
      beatTargets.set(silent.address, []);
      await until("the silent member ejected on chain", async () => (await ejections(silent.address)).length > 0, 30_000, 200);
      await until("the follower to see the ejection", () => follower.node(silent.address)?.state === "Ejected");
      expect(follower.transitions(silent.address).map((t) => t.to)).to.include.members(["Healthy", "Unhealthy", "Dead", "Ejected"]);
      await sleep(1_000);
      expect(await ejections(silent.address)).to.have.length(1);
      expect(leaderOut).to.include('"msg":"eject: confirmed"');
      expect(followerLogs.filter((l) => typeof l.msg === "string" && (l.msg as string).startsWith("eject:"))).to.deep.equal([]);
      // The member that heartbeats through both instances stays Healthy everywhere.
      expect(follower.node(alive.address)!.state).to.equal("Healthy");
    });

    it("takes over the duties on the other instance once the killed leader's lease expires", async () => {
      const [alive] = members;
      beatTargets.set(alive.address, [follower.url]);
      const killedAt = Date.now();
      leaderProcess!.kill("SIGKILL");
      await leaderExited;
      expect(follower.isLeader()).to.equal(false);
      // Meanwhile the leader's routes cannot be answered: 503 with a reason, nothing half-done.
      const gap = await buyer().request<ErrorBody>("GET", `${follower.url}/nodes`, { audience: masterAddress().toLowerCase() });
      expect(gap.status).to.equal(503);
      expect(gap.body.error).to.match(/^the leader instance did not answer|^no master instance holds the leader lease/);

      await until("the follower to take the lease", () => follower.isLeader(), 3 * LEASE_MS + 2_000, 20);
      const tookOverMs = Date.now() - killedAt;
      // Not before the lease could have expired (it was renewed at most a third of its life before the kill), not much later.
      expect(tookOverMs).to.be.at.least(LEASE_MS / 2);
      expect(tookOverMs).to.be.at.most(LEASE_MS + LEASE_MS / 3 + 1_000);
      expect(await health(follower.url)).to.include({ leader: true, leaderInstance: follower.instanceId });
      expect(followerLogs.some((l) => l.msg === "leader lease acquired: this instance does the chain-writing duties")).to.equal(true);

      // It answers the leader's routes itself now, from heartbeats it shares with the dead instance.
      const view = await buyer().request<{ nodes: Array<{ node: string; state: string }> } & ErrorBody>("GET", `${follower.url}/nodes`, {
        audience: masterAddress().toLowerCase(),
      });
      expect(view.status, view.body.error).to.equal(200);
      expect(view.body.nodes.find((n) => n.node === alive.address)?.state).to.equal("Healthy");

      // And it carries the chain-writing duties (same key as the dead leader: the nonce is re-read from the chain).
      beatTargets.set(alive.address, []);
      await until("the new leader to eject the member that went silent", async () => (await ejections(alive.address)).length > 0, 30_000, 200);
      await until("the ejection confirmed in the new leader's logs", () => followerLogs.some((l) => l.msg === "eject: confirmed"));
      expect(await ejections(alive.address)).to.have.length(1);
    });

    it("judges nobody while Redis is down: heartbeats get 503, no node turns Dead or is ejected, and all resumes when Redis is back", async () => {
      const node = await member(3);
      members.push(node);
      beatTargets.set(node.address, [follower.url]);
      await until("the new member Healthy", () => follower.node(node.address)?.state === "Healthy", 20_000);

      await redis.stop();
      try {
        await until("the follower to lose the lease with Redis", () => !follower.isLeader(), 5_000, 20);
        const refused = await until("heartbeats refused while Redis is down", async () => {
          const answer = await heartbeat(node, follower.url);
          return answer.status === 503 ? answer : undefined;
        });
        expect(refused.body.error).to.match(/^replay protection unavailable/);
        // Longer than it takes a silent member to be declared dead (4 intervals of 1 s).
        await sleep(6_000);
        expect(follower.node(node.address)!.state).to.equal("Healthy");
        expect(follower.isLeader()).to.equal(false);
        expect(await health(follower.url)).to.include({ status: "degraded", redis: "down", leader: false });
      } finally {
        await redis.start();
      }
      await until("the lease taken again once Redis is back", () => follower.isLeader(), 15_000, 50);
      await until("heartbeats accepted again", async () => (await heartbeat(node, follower.url)).status === 200, 15_000, 200);
      await sleep(2_000);
      expect(follower.node(node.address)!.state).to.equal("Healthy");
      expect(follower.transitions(node.address).map((t) => t.to)).to.not.include.members(["Unhealthy", "Dead"]);
      expect(await ejections(node.address)).to.have.length(0);
      expect(followerLogs.some((l) => l.msg === "shared heartbeats readable again: the silence meanwhile does not count against the nodes")).to.equal(true);
    });
  });
});
