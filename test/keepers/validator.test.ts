/**
 * The validator keeper against a real `hardhat node` (devchain), real signed HTTP on 127.0.0.1 and real
 * SQLite files. Discovery and the miners are test doubles written here (the real ones are built in
 * parallel): a fake discovery that checks signatures and roles like the real one, and fake miners that
 * verify the signed challenge and answer honestly, wrongly, malformed, late, with 503, or not at all.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import { type EventLog, Wallet, ZeroHash, getAddress, id } from "ethers";
import type { FastifyReply, FastifyRequest } from "fastify";
import { type Verdict, approvalHash, reasonHash, runChallenge } from "../../keepers/validator/challenger.js";
import { type ValidatorService, startValidator } from "../../keepers/validator/index.js";
import type { Chain } from "../../keepers/shared/chain.js";
import {
  CHALLENGE_PRIME,
  type ChallengeParams,
  encodeResult,
  resultHash,
  solveChallenge,
  validateChallengeParams,
} from "../../keepers/shared/challenge.js";
import { ConfigError } from "../../keepers/shared/config.js";
import { type App, closeServer, createApp, listen, requireSignature } from "../../keepers/shared/http.js";
import { createLogger } from "../../keepers/shared/log.js";
import { createMetrics } from "../../keepers/shared/metrics.js";
import { MemoryNonceStore } from "../../keepers/shared/signing.js";
import { KeeperStore } from "../../keepers/shared/store.js";
import { CandidateStore } from "../../keepers/validator/candidates.js";
import { freePort, portInUse } from "../../scripts/lib/processes.js";
import { ChallengeStatus, signNodeConsent } from "../../scripts/lib/protocol.js";
import { type DevChain, startDevChain } from "./support/devchain.js";

/** Route parameters and query of the test doubles' routes. */
type P = { Params: Record<string, string>; Querystring: Record<string, string | undefined>; Body: unknown };

const silent = createLogger({ component: "test", level: "silent" });
const ROOT = path.resolve(import.meta.dirname, "..", "..");

type LogLine = Record<string, unknown> & { msg: string; level: string };

/** A pino logger whose JSON lines land in `lines`. */
function capturingLogger(node: string, lines: LogLine[]) {
  return createLogger({
    component: "validator",
    node,
    level: "debug",
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) },
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 20_000, stepMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ----------------------------------------------------------------------------- test double: discovery

/**
 * TEST DOUBLE of the discovery service: just `GET /nodes/:node` and `GET /validator/pending`, signed
 * (audience "discovery") and reserved to VALIDATOR_ROLE holders read from the chain, as PROTOCOL.md says.
 */
class FakeDiscovery {
  readonly endpoints = new Map<string, string>();
  readonly requests: Array<{ route: string; signer: string }> = [];
  /** When false, the pending list is empty: candidates can then only come from chain events. */
  pendingEnabled = true;
  url = "";
  private server: App | undefined;

  constructor(private readonly chain: Chain) {}

  async start(): Promise<void> {
    const app = createApp({ logger: silent, metrics: createMetrics("fake-discovery") });
    const board = this.chain.contracts.challengeBoard;
    const role = await board.VALIDATOR_ROLE();
    const signed = requireSignature({ chainId: this.chain.chainId, audience: "discovery", nonces: new MemoryNonceStore() });
    const validatorsOnly = async (req: FastifyRequest, reply: FastifyReply) => {
      if (!(await board.hasRole(role, req.signer))) return reply.code(403).send({ error: `${req.signer} is not a validator` });
    };
    app.get<P>("/nodes/:node", { preHandler: [signed, validatorsOnly] }, async (req, reply) => {
      const node = getAddress(String(req.params.node));
      this.requests.push({ route: `GET /nodes/${node}`, signer: req.signer });
      const endpoint = this.endpoints.get(node);
      if (!endpoint) return reply.code(404).send({ error: `no endpoint for ${node}` });
      return { node, endpoint, updatedAt: Math.floor(Date.now() / 1000) };
    });
    app.get<P>("/validator/pending", { preHandler: [signed, validatorsOnly] }, async (req) => {
      this.requests.push({ route: "GET /validator/pending", signer: req.signer });
      const nodes = [];
      if (this.pendingEnabled) {
        for (const [node, endpoint] of this.endpoints) {
          if (await board.isValidated(node)) continue;
          nodes.push({ node, endpoint, updatedAt: 0 });
        }
      }
      return { nodes };
    });
    this.server = app;
    await listen(app, 0, "127.0.0.1");
    this.url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  }

  count(route: string): number {
    return this.requests.filter((r) => r.route === route).length;
  }

  async stop(): Promise<void> {
    if (this.server) await closeServer(this.server);
  }
}

// ----------------------------------------------------------------------------- test double: miner

type MinerAnswer = { status: number; body: string };
type MinerBehaviour = "honest" | "wrong" | "malformed" | "late" | "status503" | ((params: ChallengeParams) => MinerAnswer | Promise<MinerAnswer>);

/**
 * TEST DOUBLE of a miner's `POST /challenge`: verifies the signature (audience = the node's address) and
 * that the signer is a validator on chain, then answers according to `behaviour`.
 */
class FakeMiner {
  /** Signed challenges received (after the signature check). */
  readonly challenges: ChallengeParams[] = [];
  /** resultHash(params, C) of every honest answer sent. */
  readonly resultHashes: string[] = [];
  readonly signers: string[] = [];
  url = "";
  private server: App | undefined;

  constructor(
    private readonly chain: Chain,
    readonly node: string,
    private readonly behaviour: MinerBehaviour,
    private readonly lateMs = 0,
  ) {}

  async start(): Promise<this> {
    const app = createApp({ logger: silent, metrics: createMetrics("fake-miner") });
    const board = this.chain.contracts.challengeBoard;
    const role = await board.VALIDATOR_ROLE();
    const signed = requireSignature({ chainId: this.chain.chainId, audience: this.node, nonces: new MemoryNonceStore() });
    app.post<P>("/challenge", { preHandler: signed }, async (req, reply) => {
      if (!(await board.hasRole(role, req.signer))) return reply.code(403).send({ error: "not a validator" });
      const params = validateChallengeParams(req.body);
      this.challenges.push(params);
      this.signers.push(req.signer);
      const behaviour = this.behaviour;
      if (typeof behaviour === "function") {
        const answer = await behaviour(params);
        return reply.code(answer.status).type("application/json").send(answer.body);
      }
      if (behaviour === "status503") return reply.code(503).send({ error: "busy solving another challenge" });
      if (behaviour === "malformed") return { challengeId: params.challengeId, result: "this is not base64 of C!" };
      const c = solveChallenge(params);
      if (behaviour === "wrong") c[7] = (c[7] + 1) % CHALLENGE_PRIME;
      if (behaviour === "late") await sleep(this.lateMs);
      if (behaviour === "honest") this.resultHashes.push(resultHash(params, c));
      return { challengeId: params.challengeId, result: encodeResult(c) };
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

// ----------------------------------------------------------------------------- the tests

describe("validator keeper (real hardhat node, signed HTTP, SQLite)", function () {
  this.timeout(60_000);
  const N = 256;
  const ROUNDS = 2;
  const DEADLINE_MS = 2_000;
  const ATTEMPTS = 3;
  const PENDING_POLL_MS = 200;

  let dev: DevChain;
  let dir: string;
  let discovery: FakeDiscovery;
  let providers: Chain[] = [];
  let validatorAddresses: string[];
  const miners: FakeMiner[] = [];
  let lines: LogLine[] = [];

  before(async function () {
    this.timeout(120_000);
    dev = await startDevChain();
    dir = await mkdtemp(path.join(os.tmpdir(), "cn-validator-"));
    discovery = new FakeDiscovery(dev.admin);
    await discovery.start();
    providers = await Promise.all(dev.keys.providers.map((key) => dev.connect(key)));
    validatorAddresses = dev.keys.validators.map((key) => new Wallet(key).address);
  });

  after(async () => {
    for (const miner of miners) await miner.stop();
    await discovery?.stop();
    for (const provider of providers) provider.provider.destroy();
    await dev?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Registers a fresh node key under `provider` (a CPU node staking the minimum); returns it and its capsId. */
  async function registerNode(provider: Chain, nodeKey: Wallet | ReturnType<typeof Wallet.createRandom> = Wallet.createRandom()): Promise<{ node: string; capsId: bigint }> {
    const { registry, token } = provider.contracts;
    const stake = await registry.minimumStake(0);
    const deadline = BigInt((await provider.provider.getBlock("latest"))!.timestamp) + 3600n;
    const signature = await signNodeConsent(
      nodeKey,
      { chainId: provider.chainId, verifyingContract: await registry.getAddress() },
      { provider: provider.wallet!.address, nonce: await registry.nonces(nodeKey.address), deadline },
    );
    await (await token.approve(await registry.getAddress(), stake)).wait();
    const caps = { gpuCount: 0, gpuModel: ZeroHash, gpuMemoryMB: 0, cpuCores: 8, ramMB: 16_384, storageGB: 100 };
    await (await registry.registerNode(nodeKey.address, caps, stake, deadline, signature)).wait();
    return { node: nodeKey.address, capsId: await registry.capsIdOf(nodeKey.address) };
  }

  async function startMiner(node: string, behaviour: MinerBehaviour, lateMs = 0): Promise<FakeMiner> {
    const miner = await new FakeMiner(dev.admin, node, behaviour, lateMs).start();
    miners.push(miner);
    discovery.endpoints.set(node, miner.url);
    return miner;
  }

  async function reportsFor(node: string): Promise<{ approved: EventLog[]; rejected: EventLog[] }> {
    const board = dev.admin.contracts.challengeBoard;
    const from = dev.admin.deployment.startBlock;
    const approved = (await board.queryFilter(board.filters.ChallengeApproved(node), from)) as unknown as EventLog[];
    const rejected = (await board.queryFilter(board.filters.ChallengeRejected(node), from)) as unknown as EventLog[];
    return { approved, rejected };
  }

  function waitForReport(node: string, timeoutMs = 20_000) {
    return until(`a report on ${node}`, async () => {
      const reports = await reportsFor(node);
      return reports.approved.length + reports.rejected.length > 0 ? reports : undefined;
    }, timeoutMs);
  }

  function logsFor(node: string, msg?: string | RegExp): LogLine[] {
    return lines.filter(
      (line) => line.target === node && (msg === undefined || (typeof msg === "string" ? line.msg === msg : msg.test(line.msg))),
    );
  }

  function validatorOptions(key: string, dataDir: string, log: LogLine[]) {
    return {
      rpcUrl: dev.rpcUrl,
      deploymentFile: dev.deploymentFile,
      dataDir,
      privateKey: key,
      discoveryUrl: discovery.url,
      host: "127.0.0.1",
      port: 0,
      pollMs: 100,
      challengeN: N,
      challengeRounds: ROUNDS,
      deadlineMs: DEADLINE_MS,
      attempts: ATTEMPTS,
      retryDelayMs: 150,
      pendingPollMs: PENDING_POLL_MS,
      logger: capturingLogger(new Wallet(key).address, log),
    };
  }

  describe("challenging and reporting", () => {
    let validator: ValidatorService;
    let selfNode: string;

    before(async function () {
      this.timeout(60_000);
      // A node whose provider is the validator itself: it must never be challenged by it.
      const validatorKey = dev.keys.validators[0];
      await (await dev.admin.contracts.token.transfer(validatorAddresses[0], 1_000n * 10n ** 18n)).wait();
      const asProvider = await dev.connect(validatorKey);
      selfNode = (await registerNode(asProvider)).node;
      asProvider.provider.destroy();
      await startMiner(selfNode, "honest");

      lines = [];
      validator = await startValidator(validatorOptions(validatorKey, path.join(dir, "v0"), lines));
    });

    after(async () => validator?.stop());

    afterEach(function () {
      if (this.currentTest?.state === "failed") console.log(lines.slice(-40).map((line) => JSON.stringify(line)).join("\n"));
    });

    it("approves an honest node: NodeValidated with one required approval, result hash bound to chain, board, node and declaration", async () => {
      const { node, capsId } = await registerNode(providers[0]);
      const miner = await startMiner(node, "honest");
      const { approved, rejected } = await waitForReport(node);
      expect(rejected).to.have.length(0);
      expect(approved).to.have.length(1);

      const board = dev.admin.contracts.challengeBoard;
      expect(await board.requiredApprovals()).to.equal(1n);
      const event = approved[0];
      expect(event.args.validator).to.equal(validatorAddresses[0]);
      expect(event.args.approvals).to.equal(1n);
      expect(miner.challenges).to.have.length(1);
      expect(miner.challenges[0].n).to.equal(N);
      expect(miner.challenges[0].rounds).to.equal(ROUNDS);
      expect(miner.signers).to.deep.equal([validatorAddresses[0]]);
      const expected = approvalHash({
        chainId: dev.admin.chainId,
        board: await board.getAddress(),
        node,
        capsId,
        resultHash: miner.resultHashes[0],
      });
      expect(event.args.resultHash).to.equal(expected);

      const validated = await board.queryFilter(board.filters.NodeValidated(node), event.blockNumber, event.blockNumber);
      expect(validated).to.have.length(1);
      expect(validated[0].args.capsId).to.equal(capsId);
      expect(validated[0].args.round).to.equal(event.args.round);
      expect(await board.isValidated(node)).to.equal(true);

      // The decision is explained with its figures.
      const [decision] = logsFor(node, "challenge passed: approving");
      expect(decision).to.include({ subsystem: "Validation", n: N, rounds: ROUNDS, deadlineMs: DEADLINE_MS, verified: true, attempts: 1, kind: "approved" });
      expect(decision.elapsedMs as number).to.be.below(DEADLINE_MS);
      expect(decision.reportHash).to.equal(expected);
      expect(decision.component).to.equal("validator");
      expect(decision.node).to.equal(validatorAddresses[0]);
      // The endpoint was asked of discovery with a validator's signature.
      expect(discovery.requests).to.deep.include({ route: `GET /nodes/${node}`, signer: validatorAddresses[0] });
    });

    it("rejects a wrong answer; the reason hash on chain is keccak256 of the logged reason", async () => {
      const { node, capsId } = await registerNode(providers[1]);
      const miner = await startMiner(node, "wrong");
      const { approved, rejected } = await waitForReport(node);
      expect(approved).to.have.length(0);
      expect(rejected).to.have.length(1);
      const [decision] = logsFor(node, /^challenge failed: rejecting/);
      expect(decision).to.include({ kind: "wrong", verified: false, attempts: 1, n: N, rounds: ROUNDS });
      const reason = decision.reason as string;
      expect(reason).to.equal(`wrong answer: Freivalds check failed (n=${N}, rounds=${ROUNDS}, challenge ${miner.challenges[0].challengeId})`);
      expect(rejected[0].args.reasonHash).to.equal(id(reason));
      expect(decision.reasonHash).to.equal(reasonHash(reason));
      expect(rejected[0].args.validator).to.equal(validatorAddresses[0]);

      const board = dev.admin.contracts.challengeBoard;
      const state = await board.challengeOf(node);
      expect(state.status).to.equal(BigInt(ChallengeStatus.Rejected));
      expect(state.capsId).to.equal(capsId);
      expect(state.rejectReason).to.equal(id(reason));
      expect(await board.queryFilter(board.filters.NodeRejected(node))).to.have.length(1);
    });

    it("rejects an answer that misses the deadline, without retrying", async () => {
      const { node } = await registerNode(providers[2]);
      const miner = await startMiner(node, "late", DEADLINE_MS + 1_500);
      const { approved, rejected } = await waitForReport(node);
      expect(approved).to.have.length(0);
      expect(rejected).to.have.length(1);
      const [decision] = logsFor(node, /^challenge failed: rejecting/);
      expect(decision).to.include({ kind: "late", attempts: 1, deadlineMs: DEADLINE_MS });
      expect(decision.elapsedMs as number).to.be.at.least(DEADLINE_MS);
      expect(decision.reason).to.equal(`late answer: no answer within the ${DEADLINE_MS} ms deadline (n=${N}, rounds=${ROUNDS})`);
      expect(rejected[0].args.reasonHash).to.equal(id(decision.reason as string));
      expect(miner.challenges).to.have.length(1);
    });

    it("rejects a malformed answer", async () => {
      const { node } = await registerNode(providers[3]);
      const miner = await startMiner(node, "malformed");
      const { approved, rejected } = await waitForReport(node);
      expect(approved).to.have.length(0);
      expect(rejected).to.have.length(1);
      const [decision] = logsFor(node, /^challenge failed: rejecting/);
      expect(decision).to.include({ kind: "malformed", attempts: 1, verified: null });
      const expectedChars = 4 * Math.ceil((4 * N * N) / 3);
      expect(decision.reason).to.equal(
        `malformed answer: challenge result: expected ${expectedChars} base64 characters for n = ${N}, got 24 (n=${N}, challenge ${miner.challenges[0].challengeId})`,
      );
      expect(rejected[0].args.reasonHash).to.equal(id(decision.reason as string));
    });

    it("rejects a node that refuses connections after exactly the configured attempts", async () => {
      const { node } = await registerNode(providers[4]);
      const closedPort = await freePort();
      discovery.endpoints.set(node, `http://127.0.0.1:${closedPort}`);
      const { approved, rejected } = await waitForReport(node);
      expect(approved).to.have.length(0);
      expect(rejected).to.have.length(1);
      const failures = logsFor(node, "challenge attempt failed: node unreachable");
      expect(failures.map((line) => line.attempt)).to.deep.equal([1, 2, 3]);
      const [decision] = logsFor(node, /^challenge failed: rejecting/);
      expect(decision).to.include({ kind: "unreachable", attempts: ATTEMPTS, maxAttempts: ATTEMPTS });
      expect(decision.reason as string).to.match(/^unreachable: 3 attempts failed, last: fetch failed \(ECONNREFUSED\)$/);
      expect(rejected[0].args.reasonHash).to.equal(id(decision.reason as string));
    });

    it("retries a node answering non-2xx exactly the configured attempts, each with a fresh challenge, then rejects it", async () => {
      const { node } = await registerNode(providers[0]);
      const miner = await startMiner(node, "status503");
      const { rejected } = await waitForReport(node);
      expect(rejected).to.have.length(1);
      expect(miner.challenges).to.have.length(ATTEMPTS);
      expect(new Set(miner.challenges.map((c) => c.seed)).size).to.equal(ATTEMPTS);
      const [decision] = logsFor(node, /^challenge failed: rejecting/);
      expect(decision.reason).to.equal("unreachable: 3 attempts failed, last: HTTP 503 busy solving another challenge");
      expect(rejected[0].args.reasonHash).to.equal(id(decision.reason as string));
    });

    it("does not reject a node that has no endpoint yet, and challenges it once the endpoint is uploaded", async () => {
      const { node } = await registerNode(providers[1]);
      await until("the validator to look the node up", async () => logsFor(node, "no endpoint at discovery yet: waiting").length > 0);
      const polls = discovery.count("GET /validator/pending");
      await until("three more pending polls", async () => discovery.count("GET /validator/pending") >= polls + 3);
      const board = dev.admin.contracts.challengeBoard;
      const before = await reportsFor(node);
      expect(before.approved.length + before.rejected.length).to.equal(0);
      expect((await board.challengeOf(node)).status).to.equal(BigInt(ChallengeStatus.None));
      expect(validator.candidates.get(node)?.waiting).to.equal("endpoint");

      const miner = await startMiner(node, "honest");
      const { approved, rejected } = await waitForReport(node);
      expect(rejected).to.have.length(0);
      expect(approved).to.have.length(1);
      expect(miner.challenges).to.have.length(1);
      // The report is on chain before the validator drops the candidate from its queue.
      await until("the candidate dropped from the queue", async () => validator.candidates.get(node) === undefined);
    });

    it("never challenges a node of which it is the provider", async () => {
      await until("the validator to skip its own node", async () => logsFor(selfNode, /^skip: self/).length > 0);
      const polls = discovery.count("GET /validator/pending");
      await until("three more pending polls", async () => discovery.count("GET /validator/pending") >= polls + 3);
      const selfMiner = miners.find((m) => m.node === selfNode)!;
      expect(selfMiner.challenges).to.have.length(0);
      const reports = await reportsFor(selfNode);
      expect(reports.approved.length + reports.rejected.length).to.equal(0);
      // Later validators in this file do not need it either.
      discovery.endpoints.delete(selfNode);
    });

    it("serves /health with its figures and /metrics with its counters", async () => {
      await validator.challenger.idle();
      const health = (await (await fetch(`${validator.url}/health`)).json()) as Record<string, unknown>;
      expect(health).to.include({ status: "ok", validator: validatorAddresses[0], inFlight: 0, challenges: 7, reports: 7, approved: 2, rejected: 5 });
      const metrics = await (await fetch(`${validator.url}/metrics`)).text();
      expect(metrics).to.match(/computenet_validator_challenges_total\{outcome="unreachable",component="validator"\} 2/);
      expect(metrics).to.match(/computenet_validator_reports_total\{approved="true",result="confirmed",component="validator"\} 2/);
    });
  });

  describe("runChallenge: hostile answers (no chain writes)", () => {
    const settings = { n: 32, rounds: 2, deadlineMs: 2_000, attempts: 2, retryDelayMs: 50 };

    async function challengeWith(behaviour: MinerBehaviour): Promise<{ verdict: Verdict; miner: FakeMiner }> {
      const node = Wallet.createRandom().address;
      const miner = await new FakeMiner(dev.admin, node, behaviour).start();
      miners.push(miner);
      const verdict = await runChallenge({
        signer: new Wallet(dev.keys.validators[0]),
        chainId: dev.admin.chainId,
        node,
        endpoint: miner.url,
        settings,
        logger: silent,
      });
      return { verdict, miner };
    }

    it("approves the honest answer and returns the result hash the miner computed", async () => {
      const { verdict, miner } = await challengeWith("honest");
      expect(verdict).to.include({ approved: true, kind: "approved", verified: true, attempts: 1 });
      expect(verdict.resultHash).to.equal(miner.resultHashes[0]);
    });

    it("calls an answer malformed when it is not JSON, names another challenge, is truncated, or holds entries ≥ p", async () => {
      const notJson = await challengeWith(() => ({ status: 200, body: "C = 42" }));
      expect(notJson.verdict.reason).to.match(/^malformed answer: body is not JSON/);
      const other = await challengeWith((p) => ({ status: 200, body: JSON.stringify({ challengeId: "someone-else", result: encodeResult(solveChallenge(p)) }) }));
      expect(other.verdict.reason).to.match(/^malformed answer: challengeId "someone-else" is not 0x[0-9a-f]{32}/);
      const truncated = await challengeWith((p) => ({
        status: 200,
        body: JSON.stringify({ challengeId: p.challengeId, result: encodeResult(solveChallenge(p).subarray(0, p.n * p.n - 3)) }),
      }));
      expect(truncated.verdict.reason).to.match(/^malformed answer: challenge result: expected \d+ base64 characters/);
      const outOfField = await challengeWith((p) => {
        const bytes = Buffer.from(encodeResult(solveChallenge(p)), "base64");
        bytes.writeUInt32BE(0xffffffff, 0);
        return { status: 200, body: JSON.stringify({ challengeId: p.challengeId, result: bytes.toString("base64") }) };
      });
      expect(outOfField.verdict.reason).to.match(/^malformed answer: challenge result: entry 0 is 4294967295, not below p/);
      for (const { verdict } of [notJson, other, truncated, outOfField]) {
        expect(verdict).to.include({ approved: false, kind: "malformed", attempts: 1 });
      }
    });

    it("refuses an oversized answer without reading it all", async () => {
      const { verdict } = await challengeWith((p) => ({ status: 200, body: JSON.stringify({ challengeId: p.challengeId, result: "A".repeat(1_000_000) }) }));
      expect(verdict).to.include({ approved: false, kind: "malformed" });
      expect(verdict.reason).to.match(/^malformed answer: answer larger than \d+ bytes/);
    });
  });

  describe("restart", () => {
    it("resumes from its cursor: challenges a node registered while it was down, and never challenges or reports the first one again", async function () {
      this.timeout(60_000);
      // Only chain events bring candidates here: the pending list is switched off.
      discovery.pendingEnabled = false;
      const dataDir = path.join(dir, "v1");
      const firstLines: LogLine[] = [];
      const first = await startValidator(validatorOptions(dev.keys.validators[1], dataDir, firstLines));
      // The endpoint is known before the registration event: no wait for a re-check.
      const keyA = Wallet.createRandom();
      const minerA = await startMiner(keyA.address, "honest");
      const a = await registerNode(providers[2], keyA);
      const reportA = await waitForReport(a.node);
      expect(reportA.approved.map((e) => e.args.validator)).to.deep.equal([validatorAddresses[1]]);
      await first.challenger.idle();
      // It stops once its follower has handled the block of its own report (its poll may be a turn behind).
      await first.follower.waitFor(reportA.approved[0].blockNumber);
      await first.stop();

      const keyB = Wallet.createRandom();
      const minerB = await startMiner(keyB.address, "honest");
      const b = await registerNode(providers[3], keyB);

      const secondLines: LogLine[] = [];
      const second = await startValidator(validatorOptions(dev.keys.validators[1], dataDir, secondLines));
      try {
        const started = secondLines.find((line) => line.msg === "validator started")!;
        expect(started.cursor as number).to.be.at.least(reportA.approved[0].blockNumber);
        const reportB = await waitForReport(b.node);
        expect(reportB.approved.map((e) => e.args.validator)).to.deep.equal([validatorAddresses[1]]);
        // Let the restarted validator see its own report's events (ChallengeRoundStarted, ...) and settle.
        const head = await dev.admin.provider.getBlockNumber();
        await until("the follower to reach the head", async () => second.follower.cursor >= head);
        await second.challenger.idle();
        await sleep(3 * 100);

        expect(minerA.challenges).to.have.length(1);
        expect(minerB.challenges).to.have.length(1);
        const afterA = await reportsFor(a.node);
        const afterB = await reportsFor(b.node);
        expect(afterA.approved.length + afterA.rejected.length).to.equal(1);
        expect(afterB.approved.length + afterB.rejected.length).to.equal(1);
        expect(secondLines.filter((line) => line.target === a.node && line.msg === "challenging node")).to.have.length(0);
        expect(secondLines.filter((line) => line.target === b.node && line.msg === "challenging node")).to.have.length(1);
        expect(second.candidates.all().map((c) => c.node)).to.not.include(b.node);
      } finally {
        await second.stop();
        discovery.pendingEnabled = true;
      }
    });
  });

  describe("an endpoint uploaded just after the registration", () => {
    it("is found by quick re-checks after the registration event, without waiting for discovery's pending list", async function () {
      this.timeout(60_000);
      // Chain events only, and a pending poll (the fallback) far beyond the test's wait.
      discovery.pendingEnabled = false;
      const quickLines: LogLine[] = [];
      const validator = await startValidator({ ...validatorOptions(dev.keys.validators[1], path.join(dir, "v1-quick"), quickLines), pendingPollMs: 60_000 });
      try {
        const key = Wallet.createRandom();
        const { node } = await registerNode(providers[0], key);
        await until("the validator to find no endpoint", async () => quickLines.some((l) => l.target === node && l.msg === "no endpoint at discovery yet: waiting"));
        const uploaded = Date.now();
        const miner = await startMiner(key.address, "honest");
        const { approved } = await waitForReport(node, 10_000);
        expect(approved.map((e) => e.args.validator)).to.deep.equal([validatorAddresses[1]]);
        expect(miner.challenges).to.have.length(1);
        // The first re-check comes 250 ms after the first look, the last 1.75 s after it.
        const challenged = Date.parse(String(quickLines.find((l) => l.target === node && l.msg === "challenging node")!.ts));
        expect(challenged - uploaded).to.be.below(2_000);
      } finally {
        await validator.stop();
        discovery.pendingEnabled = true;
      }
    });
  });

  describe("stopping mid-challenge", () => {
    it("abandons a challenge in flight when stopped, reports nothing for it, keeps the node queued and challenges it after a restart", async function () {
      this.timeout(60_000);
      discovery.pendingEnabled = false;
      const dataDir = path.join(dir, "v1-stop");
      const firstLines: LogLine[] = [];
      const first = await startValidator(validatorOptions(dev.keys.validators[1], dataDir, firstLines));
      let answered = 0;
      const key = Wallet.createRandom();
      // The first challenge is answered (correctly) only after the validator was stopped; later ones at once.
      const miner = await startMiner(key.address, async (p) => {
        if (answered++ === 0) await sleep(DEADLINE_MS - 500);
        return { status: 200, body: JSON.stringify({ challengeId: p.challengeId, result: encodeResult(solveChallenge(p)) }) };
      });
      const { node } = await registerNode(providers[4], key);
      try {
        await until("the first challenge to arrive", async () => miner.challenges.length === 1);
        const stopStarted = Date.now();
        await first.stop();
        expect(Date.now() - stopStarted, "stop waits for no deadline").to.be.below(1_000);
        expect(firstLines.filter((l) => l.target === node && l.msg === "validator stopping: challenge abandoned, node stays queued")).to.have.length(1);
        const nothing = await reportsFor(node);
        expect(nothing.approved.length + nothing.rejected.length).to.equal(0);

        // The SQLite file still holds the node, although the cursor is past its registration event.
        const file = new KeeperStore(path.join(dataDir, "validator.sqlite"));
        const registeredAt = (await dev.admin.contracts.registry.queryFilter(dev.admin.contracts.registry.filters.NodeRegistered(undefined, node)))[0].blockNumber;
        expect(file.cursor("validator")!.block).to.be.at.least(registeredAt);
        expect(new CandidateStore(file.db).get(node)).to.include({ node, source: "NodeRegistered" });
        file.close();

        const second = await startValidator(validatorOptions(dev.keys.validators[1], dataDir, []));
        try {
          const { approved, rejected } = await waitForReport(node);
          expect(rejected).to.have.length(0);
          expect(approved.map((e) => e.args.validator)).to.deep.equal([validatorAddresses[1]]);
          expect(miner.challenges).to.have.length(2);
        } finally {
          await second.stop();
        }
      } finally {
        await first.stop();
        discovery.pendingEnabled = true;
      }
    });
  });

  describe("startup", () => {
    it("refuses to start with a key that lacks VALIDATOR_ROLE, saying so, and leaves nothing behind", async () => {
      const port = await freePort();
      const dataDir = path.join(dir, "buyer-as-validator");
      const error = await startValidator({ ...validatorOptions(dev.keys.buyer, dataDir, []), port }).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(error).to.be.instanceOf(ConfigError);
      const buyer = new Wallet(dev.keys.buyer).address;
      const board = dev.admin.deployment.contracts.ChallengeBoard.address;
      expect(error!.message).to.include(`${buyer} does not hold VALIDATOR_ROLE on ChallengeBoard ${board} (chain 31337)`);
      expect(await portInUse(port)).to.equal(false);
      expect(existsSync(path.join(dataDir, "validator.sqlite"))).to.equal(false);
    });

    /** Runs `validatorCommand()` in a child process (as `computenet validator` will). */
    function runCommand(args: string[], env: Record<string, string>) {
      const script = path.join(dir, "validator-cli.mts");
      const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CN_") && k !== "LOG_LEVEL"));
      return writeFile(
        script,
        `import { validatorCommand } from ${JSON.stringify(path.join(ROOT, "keepers", "validator", "index.ts"))};\n` +
          "await validatorCommand().parseAsync(process.argv);\n",
      ).then(() =>
        spawn(process.execPath, ["--import", "tsx", script, ...args], {
          cwd: ROOT,
          env: { ...cleanEnv, ...env },
          stdio: ["ignore", "pipe", "pipe"],
        }),
      );
    }

    function collect(child: ReturnType<typeof spawn>) {
      const out = { stdout: "", stderr: "", code: undefined as number | null | undefined };
      child.stdout!.on("data", (d) => (out.stdout += d));
      child.stderr!.on("data", (d) => (out.stderr += d));
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve((out.code = code))));
      return { out, exited };
    }

    it("command: exits 2 with one clear line per bad flag", async function () {
      this.timeout(30_000);
      const child = await runCommand(["--challenge-n", "0", "--challenge-deadline-ms", "soon"], {
        CN_PRIVATE_KEY: dev.keys.validators[1],
        CN_CHALLENGE_ATTEMPTS: "1.5",
      });
      const { out, exited } = collect(child);
      const code = await Promise.race([exited, sleep(25_000).then(() => "timeout")]);
      expect(code, out.stderr).to.equal(2);
      expect(out.stderr).to.include("invalid configuration:");
      expect(out.stderr).to.include("--discovery-url (CN_DISCOVERY_URL): is required");
      expect(out.stderr).to.include('--challenge-n (CN_CHALLENGE_N): must be at least 1 (got "0")');
      expect(out.stderr).to.include('--challenge-deadline-ms (CN_CHALLENGE_DEADLINE_MS): must be a number (got "soon")');
      expect(out.stderr).to.include('--challenge-attempts (CN_CHALLENGE_ATTEMPTS): must be an integer (got "1.5")');
    });

    it("command: starts from env and flags, prints where it listens, serves /health, stops on SIGTERM", async function () {
      this.timeout(40_000);
      const child = await runCommand(["--challenge-n", "64", "--pending-poll-ms", "500"], {
        CN_PRIVATE_KEY: dev.keys.validators[1],
        CN_RPC_URL: dev.rpcUrl,
        CN_DEPLOYMENT: dev.deploymentFile,
        CN_DATA_DIR: path.join(dir, "cli"),
        CN_DISCOVERY_URL: discovery.url,
        CN_PORT: "0",
        LOG_LEVEL: "warn",
      });
      const { out, exited } = collect(child);
      try {
        const url = await until("the listening line", async () => /^validator listening on (http:\/\/127\.0\.0\.1:\d+)$/m.exec(out.stdout)?.[1] ?? (out.code !== undefined ? "exited" : undefined), 30_000);
        expect(url, out.stderr).to.not.equal("exited");
        const health = (await (await fetch(`${url}/health`)).json()) as Record<string, unknown>;
        expect(health).to.include({ status: "ok", validator: validatorAddresses[1] });
        child.kill("SIGTERM");
        const code = await Promise.race([exited, sleep(15_000).then(() => "timeout")]);
        expect(code).to.equal(0);
        expect(existsSync(path.join(dir, "cli", "validator.sqlite"))).to.equal(true);
      } finally {
        if (out.code === undefined) child.kill("SIGKILL");
      }
    });
  });
});
