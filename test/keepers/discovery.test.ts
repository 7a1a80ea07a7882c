/**
 * The discovery keeper against a real `hardhat node` (devchain) over JSON-RPC, over real loopback HTTP
 * with real signed requests and a real SQLite file: endpoint storage, who may read what (index fast path
 * and on-chain fallback), the run master's view through a node's Registered -> Member -> gone life, the
 * restart from the persisted cursor, the HTTP limits, health, metrics and the command line.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { expect } from "chai";
import { type ContractTransactionResponse, Wallet, id as keccakText } from "ethers";
import { DISCOVERY_CURSOR, type DiscoveryService, startDiscovery } from "../../keepers/discovery/index.js";
import type { Chain } from "../../keepers/shared/chain.js";
import { SignedClient, type SignedResponse } from "../../keepers/shared/http.js";
import { createLogger } from "../../keepers/shared/log.js";
import { signRequest } from "../../keepers/shared/signing.js";
import { KeeperStore } from "../../keepers/shared/store.js";
import { readDeployment } from "../../scripts/lib/deployments.js";
import { ROOT } from "../../scripts/lib/processes.js";
import { gpuModel, signInvite, signNodeConsent } from "../../scripts/lib/protocol.js";
import { type DevChain, startDevChain } from "./support/devchain.js";

const AUDIENCE = "discovery";
// DISCOVERY_TEST_LOG=debug shows the keeper's decisions while the tests run.
const logger = createLogger({ component: "discovery", level: process.env.DISCOVERY_TEST_LOG ?? "silent" });

const CPU_NODE = { gpuCount: 0, gpuModel: gpuModel(""), gpuMemoryMB: 0, cpuCores: 4, ramMB: 8_192, storageGB: 100 };
const NO_REQUIREMENTS = { minGpuCount: 0, minGpuMemoryMB: 0, minCpuCores: 0, minRamMB: 0, minStorageGB: 0, allowedGpuModels: [] };

type Endpoint = { node: string; endpoint: string; updatedAt: string };
type RunNode = Endpoint & { participation: "Registered" | "Member" };
type ErrorBody = { error: string };

/** The chain-derived tables of a discovery file (everything but endpoints, nonces and the cursor). */
function dumpIndex(file: string): Record<string, unknown[]> {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return {
      nodes: db.prepare("SELECT * FROM discovery_nodes ORDER BY node").all(),
      challenges: db.prepare("SELECT * FROM discovery_challenges ORDER BY node").all(),
      validators: db.prepare("SELECT * FROM discovery_validators ORDER BY address").all(),
      runs: db.prepare("SELECT * FROM discovery_runs ORDER BY CAST(run_id AS INTEGER)").all(),
      participations: db.prepare("SELECT * FROM discovery_participations ORDER BY run_id, node").all(),
    };
  } finally {
    db.close();
  }
}

describe("discovery keeper (real chain, real HTTP, real SQLite)", function () {
  this.timeout(120_000);

  let dev: DevChain;
  let dir: string;
  let svc: DiscoveryService;
  let laggy: DiscoveryService | undefined;
  const connections: Chain[] = [];
  let buyer: Chain;
  let master: Chain;
  let validator: Chain;
  let providers: Chain[];
  let nodes: Chain[];
  let nodeAddr: string[];
  let masterWallet: Wallet;
  let validatorWallet: Wallet;
  let validatorRole: string;
  let runA: bigint;
  let runB: bigint;
  const masterB = Wallet.createRandom();

  const client = (wallet: Wallet | { privateKey: string }) => new SignedClient(new Wallet(wallet.privateKey), dev.admin.chainId);
  const put = (signer: { privateKey: string }, node: string, body: unknown, base = svc.url) =>
    client(signer).request<Endpoint & ErrorBody>("PUT", `${base}/nodes/${node}`, { audience: AUDIENCE, body });
  const get = <T>(signer: Wallet | { privateKey: string }, route: string, base = svc.url): Promise<SignedResponse<T & ErrorBody>> =>
    client(signer).request<T & ErrorBody>("GET", `${base}${route}`, { audience: AUDIENCE });
  const nodeWallet = (i: number) => new Wallet(dev.keys.nodes[i]);

  /** Mines `tx` and waits until `service` (default: the main one; null: none) has indexed its block. */
  async function mined(tx: Promise<ContractTransactionResponse>, service: DiscoveryService | null = svc): Promise<number> {
    const receipt = await (await tx).wait();
    if (service) await service.waitForBlock(receipt!.blockNumber, 15_000);
    return receipt!.blockNumber;
  }

  async function chainTime(): Promise<bigint> {
    return BigInt((await dev.admin.provider.getBlock("latest"))!.timestamp);
  }

  async function registerNode(i: number, service: DiscoveryService | null = svc): Promise<number> {
    const provider = providers[i];
    const { registry, token } = provider.contracts;
    const stake = await registry.minimumStake(0);
    await (await token.approve(await registry.getAddress(), stake)).wait();
    const deadline = (await chainTime()) + 3600n;
    const consent = await signNodeConsent(
      nodeWallet(i),
      { chainId: dev.admin.chainId, verifyingContract: await registry.getAddress() },
      { provider: await provider.signer!.getAddress(), nonce: await registry.nonces(nodeAddr[i]), deadline },
    );
    return mined(registry.registerNode(nodeAddr[i], CPU_NODE, stake, deadline, consent), service);
  }

  /** Validates node `i`'s current declaration with as many approvals as the board requires. */
  async function validateNode(i: number, service: DiscoveryService | null = svc): Promise<number> {
    const required = Number(await dev.admin.contracts.challengeBoard.requiredApprovals());
    const capsId = await dev.admin.contracts.registry.capsIdOf(nodeAddr[i]);
    let block = 0;
    for (let v = 0; v < required; v++) {
      const validatorChain = v === 0 ? validator : await connect(dev.keys.validators[v]);
      block = await mined(validatorChain.contracts.challengeBoard.reportChallenge(nodeAddr[i], capsId, true, keccakText(`ok ${i} ${v}`)), service);
    }
    return block;
  }

  async function createRun(runMaster: string): Promise<bigint> {
    await mined(buyer.contracts.trainingRuns.createRun({ master: runMaster, pricePerUnit: 1n, maxMembers: 3, budget: 0n, discoveryURI: "http://127.0.0.1:8700", requirements: NO_REQUIREMENTS }));
    return buyer.contracts.trainingRuns.runCount();
  }

  async function connect(key: string): Promise<Chain> {
    const chain = await dev.connect(key);
    connections.push(chain);
    return chain;
  }

  async function startService(dataDir: string, extra: Partial<Parameters<typeof startDiscovery>[0]> = {}) {
    return startDiscovery({ rpcUrl: dev.rpcUrl, deploymentFile: dev.deploymentFile, dataDir, port: 0, pollMs: 100, logger, ...extra });
  }

  before(async () => {
    dev = await startDevChain();
    dir = await mkdtemp(path.join(os.tmpdir(), "cn-discovery-"));
    buyer = await connect(dev.keys.buyer);
    master = await connect(dev.keys.master);
    validator = await connect(dev.keys.validators[0]);
    providers = await Promise.all(dev.keys.providers.slice(0, 4).map(connect));
    nodes = await Promise.all(dev.keys.nodes.slice(0, 4).map(connect));
    nodeAddr = dev.keys.nodes.slice(0, 4).map((k) => new Wallet(k).address);
    masterWallet = new Wallet(dev.keys.master);
    validatorWallet = new Wallet(dev.keys.validators[0]);
    validatorRole = await dev.admin.contracts.challengeBoard.VALIDATOR_ROLE();
    // Nodes 0-2 registered before discovery starts: it must find them in the chain's history.
    for (const i of [0, 1, 2]) await registerNode(i, null);
    svc = await startService(path.join(dir, "main"));
    runA = await createRun(masterWallet.address);
    runB = await createRun(masterB.address);
  });

  after(async () => {
    await laggy?.stop();
    await svc?.stop();
    for (const chain of connections) chain.provider.destroy();
    await dev?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe("PUT /nodes/:node", () => {
    it("stores a registered node's endpoint, and a second PUT replaces it", async () => {
      const first = await put(nodeWallet(0), nodeAddr[0], { endpoint: "http://127.0.0.1:9100" });
      expect(first.status).to.equal(200);
      expect(first.body.node).to.equal(nodeAddr[0]);
      expect(first.body.endpoint).to.equal("http://127.0.0.1:9100");
      expect(new Date(first.body.updatedAt).toISOString()).to.equal(first.body.updatedAt);

      const second = await put(nodeWallet(0), nodeAddr[0].toLowerCase(), { endpoint: "HTTP://LocalHost:9101/" });
      expect(second.status).to.equal(200);
      expect(second.body).to.include({ node: nodeAddr[0], endpoint: "http://localhost:9101" });
      expect(second.body.updatedAt >= first.body.updatedAt).to.equal(true);

      const read = await get<Endpoint>(validatorWallet, `/nodes/${nodeAddr[0]}`);
      expect(read.status).to.equal(200);
      expect(read.body).to.deep.equal(second.body);
      expect(svc.index.endpointCount()).to.equal(1);
    });

    it("refuses an unregistered key, and a node key signing for another node, with 403 and the reason", async () => {
      const stranger = Wallet.createRandom();
      const unregistered = await put(stranger, stranger.address, { endpoint: "http://127.0.0.1:9999" });
      expect(unregistered.status).to.equal(403);
      expect(unregistered.body.error).to.equal(`${stranger.address} is not registered in MinerRegistry`);

      const impostor = await put(nodeWallet(1), nodeAddr[0], { endpoint: "http://127.0.0.1:6666" });
      expect(impostor.status).to.equal(403);
      expect(impostor.body.error).to.equal(`${nodeAddr[1]} may only set its own endpoint, not ${nodeAddr[0]}'s`);
      expect(svc.index.endpoint(nodeAddr[0])?.endpoint).to.equal("http://localhost:9101");
    });

    it("refuses each malformed endpoint with 400 naming the problem, and stores nothing", async () => {
      const cases: Array<[unknown, RegExp]> = [
        ["ftp://127.0.0.1:21", /must use http or https, not ftp/],
        ["127.0.0.1:9000", /must start with http:\/\/ or https:\/\//],
        ["http://127.0.0.1", /must name its port explicitly/],
        ["http://127.0.0.1:9000/api", /must not have a path \(got \/api\)/],
        ["http://127.0.0.1:9000/?x=1", /must not have a query/],
        ["http://127.0.0.1:9000#frag", /must not have a fragment/],
        ["http://user:secret@127.0.0.1:9000", /must not carry credentials/],
        ["http://:9000", /has no host/],
        ["http://127.0.0.1:0", /port must be between 1 and 65535 \(got 0\)/],
        ["http://127.0.0.1:70000", /port must be between 1 and 65535 \(got 70000\)/],
        [`http://${"a".repeat(250)}.com:9000`, /is 266 characters long, at most 256 are allowed/],
        ["http://exa mple.com:9000", /must not contain spaces/],
        ["", /must not be empty/],
        [42, /must be a string like http:\/\/host:port/],
      ];
      for (const [endpoint, reason] of cases) {
        const response = await put(nodeWallet(1), nodeAddr[1], { endpoint });
        expect(response.status, JSON.stringify(endpoint)).to.equal(400);
        expect(response.body.error, JSON.stringify(endpoint)).to.match(reason);
      }
      const missing = await put(nodeWallet(1), nodeAddr[1], {});
      expect(missing.status).to.equal(400);
      expect(missing.body.error).to.match(/must be a string like http:\/\/host:port/);
      const misnamed = await put(nodeWallet(1), nodeAddr[1], { url: "http://127.0.0.1:9000" });
      expect(misnamed.status).to.equal(400);
      expect(misnamed.body.error).to.equal('body has unknown field "url": only { "endpoint" } is accepted');
      const notJson = await client(nodeWallet(1)).request<ErrorBody>("PUT", `${svc.url}/nodes/${nodeAddr[1]}`, {
        audience: AUDIENCE,
        rawBody: Buffer.from("http://127.0.0.1:9000"),
      });
      expect(notJson.status).to.equal(400);
      expect(notJson.body.error).to.match(/^body must be a JSON object/);
      expect(svc.index.endpoint(nodeAddr[1])).to.equal(undefined);

      const badNode = await put(nodeWallet(1), "0x1234", { endpoint: "http://127.0.0.1:9000" });
      expect(badNode.status).to.equal(400);
      expect(badNode.body.error).to.match(/^:node must be an address/);
      const badChecksum = await get(validatorWallet, `/nodes/${nodeAddr[1].slice(0, 2)}${nodeAddr[1].slice(2).split("").map((c, i) => (i % 2 ? c.toUpperCase() : c.toLowerCase())).join("")}`);
      expect(badChecksum.status).to.equal(400);
      for (const runId of ["0", "abc", "-1", "1.5"]) {
        const badRun = await get(masterWallet, `/runs/${runId}/nodes`);
        expect(badRun.status, runId).to.equal(400);
        expect(badRun.body.error).to.match(/^:runId must be a positive integer/);
      }
    });
  });

  describe("reading endpoints", () => {
    it("shows a validator an endpoint and the pending list, which drops a node once it is validated", async () => {
      for (const i of [1, 2]) {
        expect((await put(nodeWallet(i), nodeAddr[i], { endpoint: `http://127.0.0.1:91${i}1` })).status).to.equal(200);
      }
      const noEndpoint = await get(validatorWallet, `/nodes/${nodeAddr[3]}`);
      expect(noEndpoint.status).to.equal(404);
      expect(noEndpoint.body.error).to.equal(`${nodeAddr[3]} has no endpoint`);

      const before = await get<{ nodes: Endpoint[] }>(validatorWallet, "/validator/pending");
      expect(before.status).to.equal(200);
      expect(before.body.nodes.map((n) => n.node)).to.deep.equal([nodeAddr[0], nodeAddr[1], nodeAddr[2]]);
      expect(before.body.nodes[1]).to.include({ endpoint: "http://127.0.0.1:9111" });

      await validateNode(0);
      expect(svc.index.challengeState(nodeAddr[0])).to.equal("validated");
      const after = await get<{ nodes: Endpoint[] }>(validatorWallet, "/validator/pending");
      expect(after.body.nodes.map((n) => n.node)).to.deep.equal([nodeAddr[1], nodeAddr[2]]);
      // A validated node's endpoint stays readable.
      expect((await get<Endpoint>(validatorWallet, `/nodes/${nodeAddr[0]}`)).body.endpoint).to.equal("http://localhost:9101");
    });

    it("refuses a stranger, the node itself and the master of an unrelated run (403), but not its run's master", async () => {
      await mined(nodes[0].contracts.trainingRuns.registerForRun(runA, nodeAddr[0]));
      const stranger = Wallet.createRandom();
      for (const [who, signer] of [["stranger", stranger], ["node itself", nodeWallet(0)], ["unrelated master", masterB]] as const) {
        const response = await get(signer, `/nodes/${nodeAddr[0]}`);
        expect(response.status, who).to.equal(403);
        expect(response.body.error, who).to.equal(
          `${signer.address} may not read ${nodeAddr[0]}'s endpoint: it holds no VALIDATOR_ROLE, masters no pending or active run the node is registered for or member of, and has neither verdict weight nor power in the current epoch`,
        );
      }
      const byMaster = await get<Endpoint>(masterWallet, `/nodes/${nodeAddr[0]}`);
      expect(byMaster.status).to.equal(200);
      expect(byMaster.body.endpoint).to.equal("http://localhost:9101");

      const pending = await get(stranger, "/validator/pending");
      expect(pending.status).to.equal(403);
      expect(pending.body.error).to.equal(`${stranger.address} does not hold VALIDATOR_ROLE`);
      const otherRun = await get(masterB, `/runs/${runA}/nodes`);
      expect(otherRun.status).to.equal(403);
      expect(otherRun.body.error).to.equal(`${masterB.address} is not the master of run ${runA}`);
    });
  });

  describe("GET /runs/:runId/nodes", () => {
    it("lists Registered, then Member after acceptInvite; ejected and departed nodes disappear", async () => {
      await mined(nodes[1].contracts.trainingRuns.registerForRun(runA, nodeAddr[1]));
      const list = async () => {
        const response = await get<{ nodes: RunNode[] }>(masterWallet, `/runs/${runA}/nodes`);
        expect(response.status).to.equal(200);
        return Object.fromEntries(response.body.nodes.map((n) => [n.node, `${n.participation} ${n.endpoint}`]));
      };
      expect(await list()).to.deep.equal({ [nodeAddr[0]]: "Registered http://localhost:9101", [nodeAddr[1]]: "Registered http://127.0.0.1:9111" });

      const runs = dev.admin.contracts.trainingRuns;
      const invite = { runId: runA, node: nodeAddr[0], generation: await runs.inviteGenerationOf(runA, nodeAddr[0]), nonce: 1n, expiry: (await chainTime()) + 600n };
      const signature = await signInvite(masterWallet, { chainId: dev.admin.chainId, verifyingContract: await runs.getAddress() }, invite);
      await mined(nodes[0].contracts.trainingRuns.acceptInvite(runA, nodeAddr[0], invite.nonce, invite.expiry, signature));
      expect(await list()).to.deep.equal({ [nodeAddr[0]]: "Member http://localhost:9101", [nodeAddr[1]]: "Registered http://127.0.0.1:9111" });

      await mined(master.contracts.trainingRuns.eject(runA, nodeAddr[0], keccakText("missed heartbeats")));
      expect(await list()).to.deep.equal({ [nodeAddr[1]]: "Registered http://127.0.0.1:9111" });
      // Node 0 is in no run of this master any more: its endpoint is closed to it.
      expect((await get(masterWallet, `/nodes/${nodeAddr[0]}`)).status).to.equal(403);

      await mined(nodes[1].contracts.trainingRuns.leaveRun(runA, nodeAddr[1]));
      expect(await list()).to.deep.equal({});
    });

    it("follows setMaster: the replaced master loses access, the new one gains it", async () => {
      await mined(nodes[2].contracts.trainingRuns.registerForRun(runA, nodeAddr[2]));
      expect((await get<{ nodes: RunNode[] }>(masterWallet, `/runs/${runA}/nodes`)).body.nodes.map((n) => n.node)).to.deep.equal([nodeAddr[2]]);

      const newMaster = Wallet.createRandom();
      await mined(buyer.contracts.trainingRuns.setMaster(runA, newMaster.address));
      const oldList = await get(masterWallet, `/runs/${runA}/nodes`);
      expect(oldList.status).to.equal(403);
      expect(oldList.body.error).to.equal(`${masterWallet.address} is not the master of run ${runA}`);
      expect((await get(masterWallet, `/nodes/${nodeAddr[2]}`)).status).to.equal(403);

      const newList = await get<{ nodes: RunNode[] }>(newMaster, `/runs/${runA}/nodes`);
      expect(newList.status).to.equal(200);
      expect(newList.body.nodes).to.have.length(1);
      expect(newList.body.nodes[0]).to.include({ node: nodeAddr[2], participation: "Registered", endpoint: "http://127.0.0.1:9121" });
      expect((await get<Endpoint>(newMaster, `/nodes/${nodeAddr[2]}`)).body.endpoint).to.equal("http://127.0.0.1:9121");
      expect(svc.index.run(runA.toString())?.master).to.equal(newMaster.address);
    });

    it("answers only while the run is pending or active, and 404 for an unknown run", async () => {
      await mined(nodes[1].contracts.trainingRuns.registerForRun(runB, nodeAddr[1]));
      const open = await get<{ nodes: RunNode[] }>(masterB, `/runs/${runB}/nodes`);
      expect(open.status).to.equal(200);
      expect(open.body.nodes.map((n) => `${n.node} ${n.participation}`)).to.deep.equal([`${nodeAddr[1]} Registered`]);
      expect((await get(masterB, `/nodes/${nodeAddr[1]}`)).status).to.equal(200);

      await mined(buyer.contracts.trainingRuns.cancelRun(runB));
      const cancelled = await get(masterB, `/runs/${runB}/nodes`);
      expect(cancelled.status).to.equal(403);
      expect(cancelled.body.error).to.equal(`run ${runB} is Cancelled: its nodes are shared only while it is Pending or Active`);
      // Node 1 is still registered for the cancelled run on chain, but an ended run opens no endpoint.
      expect(await dev.admin.contracts.trainingRuns.participationOf(runB, nodeAddr[1])).to.equal(1n);
      expect((await get(masterB, `/nodes/${nodeAddr[1]}`)).status).to.equal(403);
      const unknown = await get(masterB, "/runs/999/nodes");
      expect(unknown.status).to.equal(404);
      expect(unknown.body.error).to.equal("no run 999");
    });
  });

  describe("challenge state of the current declaration", () => {
    it("lists a node again for a new declaration, keeps it while approvals are short, and drops it when validated or revoked", async () => {
      const pendingNodes = async () => (await get<{ nodes: Endpoint[] }>(validatorWallet, "/validator/pending")).body.nodes.map((n) => n.node);
      const board = dev.admin.contracts.challengeBoard;
      // Node 0 left every run (ejected above), so its provider may change its capabilities: a new capsId.
      await mined(providers[0].contracts.registry.updateCapabilities(nodeAddr[0], { ...CPU_NODE, cpuCores: 8 }));
      const capsId = await dev.admin.contracts.registry.capsIdOf(nodeAddr[0]);
      expect(svc.index.capsIdOf(nodeAddr[0])).to.equal(capsId.toString());
      expect(svc.index.challengeState(nodeAddr[0])).to.equal("none");
      expect(await pendingNodes()).to.include(nodeAddr[0]);

      await mined(board.setRequiredApprovals(2));
      try {
        await mined(validator.contracts.challengeBoard.reportChallenge(nodeAddr[0], capsId, true, keccakText("first approval")));
        expect(svc.index.challengeState(nodeAddr[0])).to.equal("pending");
        expect(await pendingNodes()).to.include(nodeAddr[0]);
        const second = await connect(dev.keys.validators[1]);
        await mined(second.contracts.challengeBoard.reportChallenge(nodeAddr[0], capsId, true, keccakText("second approval")));
        expect(svc.index.challengeState(nodeAddr[0])).to.equal("validated");
        expect(await pendingNodes()).to.not.include(nodeAddr[0]);
      } finally {
        await mined(board.setRequiredApprovals(1));
      }
      await mined(board.revokeValidation(nodeAddr[0], keccakText("proven fraud")));
      expect(svc.index.challengeState(nodeAddr[0])).to.equal("rejected");
      expect(await pendingNodes()).to.deep.equal([nodeAddr[1], nodeAddr[2]]);
    });
  });

  describe("index lag and the on-chain fallback", () => {
    before(async () => {
      // Polls once at start, then not for a minute: its index lags everything that happens next.
      laggy = await startService(path.join(dir, "laggy"), { pollMs: 60_000, rateLimit: { max: 5, windowMs: 60_000 } });
      // Each instance keeps its own endpoints.
      expect((await put(nodeWallet(2), nodeAddr[2], { endpoint: "http://127.0.0.1:9221" }, laggy.url)).status).to.equal(200);
    });

    it("allows a validator whose role was just granted, a node just registered and a master just set (chain fallback)", async () => {
      const fresh = Wallet.createRandom();
      await mined(dev.admin.contracts.challengeBoard.grantRole(validatorRole, fresh.address), null);
      expect(laggy!.index.isValidator(fresh.address)).to.equal(false);
      const pending = await get<{ nodes: Endpoint[] }>(fresh, "/validator/pending", laggy!.url);
      expect(pending.status).to.equal(200);
      expect((await get<Endpoint>(fresh, `/nodes/${nodeAddr[2]}`, laggy!.url)).body.endpoint).to.equal("http://127.0.0.1:9221");

      await registerNode(3);
      expect(laggy!.index.isRegistered(nodeAddr[3])).to.equal(false);
      const stored = await put(nodeWallet(3), nodeAddr[3], { endpoint: "http://127.0.0.1:9131" }, laggy!.url);
      expect(stored.status).to.equal(200);

      const rotated = Wallet.createRandom();
      await mined(buyer.contracts.trainingRuns.setMaster(runA, rotated.address), null);
      expect(laggy!.index.run(runA.toString())?.master).to.not.equal(rotated.address);
      const runNodes = await get<{ nodes: RunNode[] }>(rotated, `/runs/${runA}/nodes`, laggy!.url);
      expect(runNodes.status).to.equal(200);
      expect(runNodes.body.nodes.map((n) => n.node)).to.deep.equal([nodeAddr[2]]);
      expect((await get<Endpoint>(rotated, `/nodes/${nodeAddr[2]}`, laggy!.url)).body.endpoint).to.equal("http://127.0.0.1:9221");
      expect(laggy!.index.endpointCount()).to.equal(2);
    });

    it("refuses a validator whose role was revoked once the next poll has seen it (an allowance lags by at most one poll)", async () => {
      const revoked = Wallet.createRandom();
      await mined(dev.admin.contracts.challengeBoard.grantRole(validatorRole, revoked.address));
      await laggy!.sync();
      expect((await get(revoked, "/validator/pending")).status).to.equal(200);
      expect((await get(revoked, "/validator/pending", laggy!.url)).status).to.equal(200);

      await mined(dev.admin.contracts.challengeBoard.revokeRole(validatorRole, revoked.address));
      const refused = await get(revoked, "/validator/pending");
      expect(refused.status).to.equal(403);
      expect(refused.body.error).to.equal(`${revoked.address} does not hold VALIDATOR_ROLE`);
      // The lagging instance has not polled yet: its index still allows (the documented trust rule) ...
      expect((await get(revoked, "/validator/pending", laggy!.url)).status).to.equal(200);
      // ... until its next poll.
      await laggy!.sync();
      expect((await get(revoked, "/validator/pending", laggy!.url)).status).to.equal(403);
    });
  });

  describe("HTTP limits", () => {
    it("refuses a replayed request and a stale one with 401", async () => {
      const headers = await signRequest(validatorWallet, { chainId: dev.admin.chainId, audience: AUDIENCE, method: "GET", path: "/validator/pending", query: "", body: "" });
      expect((await fetch(`${svc.url}/validator/pending`, { headers })).status).to.equal(200);
      const replay = await fetch(`${svc.url}/validator/pending`, { headers });
      expect(replay.status).to.equal(401);
      expect(((await replay.json()) as ErrorBody).error).to.equal("nonce already used: replayed request");

      const stale = await signRequest(validatorWallet, {
        chainId: dev.admin.chainId,
        audience: AUDIENCE,
        method: "GET",
        path: "/validator/pending",
        query: "",
        body: "",
        timestamp: Math.floor(Date.now() / 1000) - 120,
      });
      const staleResponse = await fetch(`${svc.url}/validator/pending`, { headers: stale });
      expect(staleResponse.status).to.equal(401);
      expect(((await staleResponse.json()) as ErrorBody).error).to.match(/^stale or future timestamp/);
    });

    it("answers 429 beyond the per-address rate limit, without affecting other addresses", async () => {
      const flooder = Wallet.createRandom();
      const statuses: number[] = [];
      for (let i = 0; i < 7; i++) statuses.push((await get(flooder, "/validator/pending", laggy!.url)).status);
      expect(statuses).to.deep.equal([403, 403, 403, 403, 403, 429, 429]);
      const other = await get(Wallet.createRandom(), "/validator/pending", laggy!.url);
      expect(other.status).to.equal(403);
    });

    it("answers 413 for a body over the limit", async () => {
      const response = await put(nodeWallet(0), nodeAddr[0], { endpoint: `http://127.0.0.1:9100`, padding: "x".repeat(17 * 1024) });
      expect(response.status).to.equal(413);
      expect(response.body.error).to.equal("body too large");
      expect(svc.index.endpoint(nodeAddr[0])?.endpoint).to.equal("http://localhost:9101");
    });
  });

  describe("health and metrics", () => {
    it("reports cursor, head and lag, and counts requests by route and status, endpoints and lag", async () => {
      await svc.sync();
      const health = (await (await fetch(`${svc.url}/health`)).json()) as { status: string; cursor: number; head: number; lag: number };
      expect(health.status).to.equal("ok");
      expect(health.cursor).to.equal(svc.cursor());
      expect(health.head).to.be.at.least(health.cursor);
      expect(health.lag).to.equal(health.head - health.cursor);

      const text = await (await fetch(`${svc.url}/metrics`)).text();
      const value = (pattern: RegExp) => {
        const line = text.split("\n").find((l) => pattern.test(l));
        expect(line, String(pattern)).to.not.equal(undefined);
        return Number(line!.split(" ").pop());
      };
      expect(value(/^computenet_discovery_http_requests_total\{.*route="PUT \/nodes\/:node".*status="200"/)).to.be.at.least(4);
      expect(value(/^computenet_discovery_http_requests_total\{.*route="PUT \/nodes\/:node".*status="400"/)).to.be.at.least(16);
      expect(value(/^computenet_discovery_http_requests_total\{.*route="PUT \/nodes\/:node".*status="413"/)).to.equal(1);
      expect(value(/^computenet_discovery_http_requests_total\{.*route="GET \/validator\/pending".*status="401"/)).to.equal(2);
      expect(value(/^computenet_discovery_endpoints\{/)).to.equal(3);
      expect(value(/^computenet_discovery_event_lag_blocks\{/)).to.be.within(0, 1);
      expect(value(/^computenet_discovery_events_total\{.*event="NodeJoined"/)).to.equal(1);
      expect(value(/^computenet_discovery_access_decisions_total\{.*check="nodeReader".*via="chain".*result="refused"/)).to.be.at.least(3);
    });
  });

  describe("restart", () => {
    it("resumes from its cursor on the same data dir: catches up with what happened while stopped, keeps endpoints and used nonces", async () => {
      const leaving = Wallet.createRandom();
      await mined(dev.admin.contracts.challengeBoard.grantRole(validatorRole, leaving.address));
      expect((await get(leaving, "/validator/pending")).status).to.equal(200);
      const used = await signRequest(validatorWallet, { chainId: dev.admin.chainId, audience: AUDIENCE, method: "GET", path: "/validator/pending", query: "", body: "" });
      expect((await fetch(`${svc.url}/validator/pending`, { headers: used })).status).to.equal(200);
      const cursorAtStop = svc.cursor();
      await svc.stop();

      // While discovery is down: node 1 validated, a validator revoked, a run created.
      await validateNode(1, null);
      await mined(dev.admin.contracts.challengeBoard.revokeRole(validatorRole, leaving.address), null);
      const lastBlock = await mined(buyer.contracts.trainingRuns.createRun({ master: masterWallet.address, pricePerUnit: 1n, maxMembers: 1, budget: 0n, discoveryURI: "http://127.0.0.1:8700", requirements: NO_REQUIREMENTS }), null);
      const runC = await buyer.contracts.trainingRuns.runCount();

      svc = await startService(path.join(dir, "main"));
      expect(svc.cursor()).to.be.at.least(lastBlock);
      expect(lastBlock).to.be.greaterThan(cursorAtStop);
      expect(svc.index.challengeState(nodeAddr[1])).to.equal("validated");
      expect(svc.index.isValidator(leaving.address)).to.equal(false);
      expect(svc.index.run(runC.toString())).to.deep.equal({ runId: runC.toString(), master: masterWallet.address, status: 1 });

      const pending = await get<{ nodes: Endpoint[] }>(validatorWallet, "/validator/pending");
      // Node 3's endpoint went to the other instance (its own file); node 1 was validated while we were down.
      expect(pending.body.nodes.map((n) => n.node)).to.deep.equal([nodeAddr[2]]);
      expect((await get<Endpoint>(validatorWallet, `/nodes/${nodeAddr[0]}`)).body.endpoint).to.equal("http://localhost:9101");
      expect((await get(leaving, "/validator/pending")).status).to.equal(403);
      const replayed = await fetch(`${svc.url}/validator/pending`, { headers: used });
      expect(replayed.status).to.equal(401);
    });

    it("rebuilds the same index from the chain on a fresh file, and replaying all events over it (at-least-once delivery) changes nothing", async () => {
      const mainFile = path.join(dir, "main", "discovery.sqlite");
      await svc.sync();
      const snapshot = dumpIndex(mainFile);
      expect(snapshot.validators.length).to.be.at.least(3);
      expect(snapshot.runs).to.have.length(3);
      expect(snapshot.participations).to.deep.equal([
        { run_id: runA.toString(), node: nodeAddr[2], participation: 1 },
        { run_id: runB.toString(), node: nodeAddr[1], participation: 1 },
      ]);

      const fresh = await startService(path.join(dir, "fresh"));
      try {
        expect(dumpIndex(path.join(dir, "fresh", "discovery.sqlite"))).to.deep.equal(snapshot);
      } finally {
        await fresh.stop();
      }

      await svc.stop();
      const store = new KeeperStore(mainFile);
      store.setCursor(DISCOVERY_CURSOR, { block: (await readDeployment(dev.deploymentFile)).startBlock - 1 });
      store.close();
      svc = await startService(path.join(dir, "main"));
      expect(dumpIndex(mainFile)).to.deep.equal(snapshot);
      expect(svc.index.endpointCount()).to.equal(3);
    });
  });

  describe("discoveryCommand (computenet discovery)", () => {
    const cleanEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CN_") && k !== "LOG_LEVEL"));

    function run(args: string[], onLine?: (line: string, child: ChildProcess) => void): Promise<{ code: number | null; stdout: string; stderr: string }> {
      return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ["--import", "tsx", "keepers/cli/computenet.ts", "discovery", ...args], { cwd: ROOT, env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        const timer = setTimeout(() => {
          child.kill("SIGKILL");
          reject(new Error(`discovery command did not finish in time; stdout: ${stdout}; stderr: ${stderr}`));
        }, 45_000);
        child.stdout!.on("data", (chunk: Buffer) => {
          const text = chunk.toString();
          stdout += text;
          for (const line of text.split("\n")) if (line) onLine?.(line, child);
        });
        child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
        child.once("exit", (code) => {
          clearTimeout(timer);
          resolve({ code, stdout, stderr });
        });
      });
    }

    it("exits with code 2 and names each bad flag with its environment variable", async () => {
      const result = await run(["--port", "http", "--poll-ms", "10", "--body-limit", "lots", "--data-dir", path.join(dir, "cli-bad")]);
      expect(result.code, result.stderr).to.equal(2);
      expect(result.stderr).to.include("invalid configuration:");
      expect(result.stderr).to.include('--port (CN_PORT): must be a number (got "http")');
      expect(result.stderr).to.include('--poll-ms (CN_POLL_MS): must be at least 50 (got "10")');
      expect(result.stderr).to.include('--body-limit (CN_BODY_LIMIT): must be a size like "16kb" (b, kb or mb) (got "lots")');
    });

    it("prints where it listens, serves /health, and stops cleanly on SIGTERM", async () => {
      let health: { status: string; cursor: number } | undefined;
      const result = await run(
        ["--rpc-url", dev.rpcUrl, "--deployment", dev.deploymentFile, "--data-dir", path.join(dir, "cli"), "--port", "0", "--log-level", "warn"],
        (line, child) => {
          const match = /^discovery listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(line);
          if (!match) return;
          void fetch(`${match[1]}/health`)
            .then(async (r) => (health = (await r.json()) as typeof health))
            .finally(() => child.kill("SIGTERM"));
        },
      );
      expect(result.stdout, result.stderr).to.match(/^discovery listening on http:\/\/127\.0\.0\.1:\d+$/m);
      expect(health?.status).to.equal("ok");
      expect(health?.cursor).to.be.at.least(1);
      expect(result.code, result.stderr).to.equal(0);
    });
  });
});
