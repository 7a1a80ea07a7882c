/**
 * The keepers' real HTTP apps for the HTTP benchmark, built with the same factories the keepers use and
 * fed without a chain:
 *
 *   discovery: `buildDiscoveryApp` (keepers/discovery/routes.ts, what startDiscovery serves) over a real
 *     DiscoveryIndex and KeeperStore in a SQLite file. The chain-derived index is populated directly
 *     through its state module (`index.apply` with the events the EventFollower would deliver:
 *     RoleGranted, NodeRegistered, RunCreated, NodeRegisteredForRun), so every benchmark request is
 *     allowed by the index; the contracts are a stub that throws, so a request that would need the chain
 *     answers 503 and counts as an error.
 *   master: `buildApp` (keepers/master/routes.ts, what startMaster serves) with a real NodeTracker,
 *     TaskBook, FileStore and KeeperStore in a SQLite file. The nodes become run members through
 *     `NodeTracker.handleEvent` with NodeJoined events, as the follower delivers them; the tracker's
 *     heartbeat check (`tick`) runs every second as in a started master. The chain, transaction sender and
 *     discovery client are stubs: nothing on the heartbeat path touches them for members (an invite or
 *     an eject would, and none is due while nodes heartbeat).
 *   hello: the keepers' fastify app (createApp) with one empty route: the bound of any request.
 *   signed-floor: the least a server can do for a signed request, the bound of any signed route: node:http
 *     with no framework, the keepers' own signature check (readClaim, the signer checked in a
 *     SignaturePool worker as discovery does, acceptClaim against an in-memory nonce set) and a fixed
 *     JSON answer. No routing, storage, access check, rate limit or log.
 *
 * Logs go at info level to a file in the data dir (as a keeper's stdout would be redirected).
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import path from "node:path";
import { Wallet } from "ethers";
import type { Chain, ChainEvent, Contracts } from "../../keepers/shared/chain.js";
import { type App, SignedClient, createApp } from "../../keepers/shared/http.js";
import { type Logger, TurnBufferedDestination, createLogger } from "../../keepers/shared/log.js";
import { createMetrics } from "../../keepers/shared/metrics.js";
import { DEFAULT_MAX_BATCH, SignaturePool } from "../../keepers/shared/signature-pool.js";
import { AuthError, MemoryNonceStore, acceptClaim, readClaim } from "../../keepers/shared/signing.js";
import { KeeperStore } from "../../keepers/shared/store.js";
import type { TxSender } from "../../keepers/shared/tx.js";
import { Access } from "../../keepers/discovery/access.js";
import { DISCOVERY_AUDIENCE, buildDiscoveryApp } from "../../keepers/discovery/routes.js";
import { SqliteEndpointStore } from "../../keepers/discovery/endpoints.js";
import { DiscoveryIndex } from "../../keepers/discovery/state.js";
import { DiscoveryClient } from "../../keepers/master/discovery.js";
import { FileStore } from "../../keepers/master/files.js";
import { NodeTracker } from "../../keepers/master/nodes.js";
import { buildApp } from "../../keepers/master/routes.js";
import { integerSetting } from "../../scripts/lib/env.js";
import { TaskBook } from "../../keepers/master/tasks.js";

export const BENCH_CHAIN_ID = 31337n;
/** VALIDATOR_ROLE = keccak256("VALIDATOR_ROLE") (any 32-byte value works: the index compares it). */
export const BENCH_VALIDATOR_ROLE = "0x21702c8af46127c7fa207f89d0b0a8441bb32959a0ac7df790e9ab1a25c98926";
export const BENCH_RUN_ID = 1n;

export interface DiscoverySetup {
  kind: "discovery";
  dataDir: string;
  /** Signature recovery worker threads (0: on the event loop). */
  verifyWorkers: number;
  validators: string[];
  /** Registered nodes (MinerRegistry). */
  nodes: string[];
  /** Master of run 1, for which `runNodes` are registered. */
  master: string;
  runNodes: string[];
}

export interface MasterSetup {
  kind: "master";
  dataDir: string;
  /** Signature recovery worker threads (0: on the event loop). */
  verifyWorkers: number;
  /** The master's key (the audience of heartbeats). */
  masterKey: string;
  /** The run's members. */
  members: string[];
}

export interface HelloSetup {
  kind: "hello";
}

export interface SignedFloorSetup {
  kind: "signed-floor";
  /** Signature recovery worker threads (0: on the event loop). */
  verifyWorkers: number;
}

export type ServerSetup = DiscoverySetup | MasterSetup | HelloSetup | SignedFloorSetup;

export interface BenchServer {
  /** The keeper app, or a bare node:http server (signed-floor). */
  app: App | Server;
  /** Stops timers and closes the store (after the app). */
  close(): Promise<void>;
  /** Extra facts for the report (sizes after setup). */
  facts: Record<string, number | string>;
}

/** Recoveries per message to a signature worker: the keepers' default, or BENCH_MAX_BATCH. */
export function benchMaxBatch(): number {
  return integerSetting("BENCH_MAX_BATCH", DEFAULT_MAX_BATCH, 1);
}

/** The keepers' signature pool, with the benchmark's recoveries per message (the child inherits the bench's environment). */
function verifyPool(size: number, logger: Logger): Promise<SignaturePool> {
  return SignaturePool.start({ size, logger, maxBatch: benchMaxBatch() });
}

/** A keeper's logger writing to `<dataDir>/<component>.log` the way it writes to stdout (a turn's lines together); `close` it. */
function fileLogger(component: string, dataDir: string): { logger: Logger; destination: TurnBufferedDestination } {
  const destination = TurnBufferedDestination.toFile(path.join(dataDir, `${component}.log`));
  return { logger: createLogger({ component, level: "info", destination }), destination };
}

function event(contract: ChainEvent["contract"], name: string, args: Record<string, unknown>, logIndex: number): ChainEvent {
  return { contract, name, args: args as unknown as ChainEvent["args"], blockNumber: 1, logIndex, transactionHash: `0x${"00".repeat(32)}` };
}

/** Contracts that must not be reached: every benchmark request is decided by the index. */
const unreachableChain = new Proxy({} as Contracts, {
  get: (_target, contract) =>
    new Proxy(
      {},
      {
        get: (_t, method) => () => Promise.reject(new Error(`benchmark: ${String(contract)}.${String(method)} needs a chain`)),
      },
    ),
});

export async function buildDiscoveryServer(setup: DiscoverySetup): Promise<BenchServer> {
  const { logger, destination } = fileLogger("discovery", setup.dataDir);
  const pool = await verifyPool(setup.verifyWorkers, logger);
  const store = new KeeperStore(path.join(setup.dataDir, "discovery.sqlite"));
  const index = new DiscoveryIndex(store.db, BENCH_VALIDATOR_ROLE);
  let logIndex = 0;
  store.db.transaction(() => {
    for (const account of setup.validators) index.apply(event("ChallengeBoard", "RoleGranted", { role: BENCH_VALIDATOR_ROLE, account }, logIndex++));
    for (const node of setup.nodes) index.apply(event("MinerRegistry", "NodeRegistered", { node, provider: node, capsId: 1n }, logIndex++));
    index.apply(event("TrainingRuns", "RunCreated", { runId: BENCH_RUN_ID, master: setup.master }, logIndex++));
    for (const node of setup.runNodes) index.apply(event("TrainingRuns", "NodeRegisteredForRun", { runId: BENCH_RUN_ID, node }, logIndex++));
  })();
  const metrics = createMetrics("discovery");
  const access = new Access({ index, contracts: unreachableChain, validatorRole: BENCH_VALIDATOR_ROLE, logger });
  const requests = metrics.counter("discovery_http_requests_total", "HTTP requests answered, by method, route and status", ["method", "route", "status"]);
  const app = buildDiscoveryApp({
    endpoints: new SqliteEndpointStore(index, store),
    access,
    logger,
    metrics,
    chainId: BENCH_CHAIN_ID,
    nonces: store,
    health: () => ({ endpoints: index.endpointCount() }),
    onAnswered: (method, route, status) => requests.inc({ method, route, status: String(status) }),
    recover: pool.recover,
  });
  return {
    app,
    facts: { validators: setup.validators.length, nodes: setup.nodes.length, verifyWorkers: pool.size },
    close: async () => {
      await pool.close();
      store.close();
      destination.close();
    },
  };
}

export async function buildMasterServer(setup: MasterSetup): Promise<BenchServer> {
  const { logger, destination } = fileLogger("master", setup.dataDir);
  const pool = await verifyPool(setup.verifyWorkers, logger);
  const store = new KeeperStore(path.join(setup.dataDir, "master.sqlite"));
  const wallet = new Wallet(setup.masterKey);
  const buyer = Wallet.createRandom().address;
  const metrics = createMetrics("master");
  const client = new SignedClient(wallet, BENCH_CHAIN_ID);
  const chain = { contracts: unreachableChain, chainId: BENCH_CHAIN_ID } as unknown as Chain;
  const nodes = new NodeTracker({
    db: store.db,
    chain,
    wallet,
    runId: BENCH_RUN_ID,
    run: { buyer, master: wallet.address, status: 2 },
    client,
    discovery: new DiscoveryClient(client, "http://127.0.0.1:1"),
    tx: {} as TxSender,
    logger,
    metrics,
    publicUrl: "http://127.0.0.1:0",
    heartbeatIntervalSec: 30,
    unhealthyAfterMisses: 2,
    deadAfterMisses: 4,
    inviteExpirySec: 1000,
    reconcileMs: 2000,
    onNodeDown: () => undefined,
  });
  const tasks = new TaskBook({
    db: store.db,
    runId: BENCH_RUN_ID,
    assignment: "local",
    client,
    log: logger,
    metrics,
    healthyMembers: () => nodes.healthyMembers(),
    allNodes: () => nodes.all(),
  });
  store.db.transaction(() => {
    setup.members.forEach((node, i) => {
      void nodes.handleEvent(event("TrainingRuns", "NodeJoined", { runId: BENCH_RUN_ID, node, nonce: BigInt(i + 1) }, i));
    });
  })();
  const app = buildApp({
    runId: BENCH_RUN_ID,
    address: wallet.address,
    chainId: BENCH_CHAIN_ID,
    nodes,
    tasks,
    files: new FileStore(store.db, setup.dataDir, logger),
    client,
    nonces: store,
    logger,
    metrics,
    maxFileBytes: 64 * 1024 * 1024,
    health: () => ({ nodes: nodes.all().length }),
    recover: pool.recover,
  });
  // The heartbeat check of a started master (NodeTracker.start runs it every second for a 30 s interval).
  const tick = setInterval(() => nodes.tick(), 1000);
  return {
    app,
    facts: { members: setup.members.length, verifyWorkers: pool.size },
    close: async () => {
      clearInterval(tick);
      await pool.close();
      await nodes.stop();
      store.close();
      destination.close();
    },
  };
}

export function buildHelloServer(): BenchServer {
  const logger = createLogger({ component: "hello", level: "silent" });
  const app = createApp({ logger, metrics: createMetrics("hello") });
  app.get("/hello", async () => ({}));
  return { app, facts: {}, close: async () => undefined };
}

const EMPTY_BODY = Buffer.alloc(0);

export async function buildSignedFloorServer(setup: SignedFloorSetup): Promise<BenchServer> {
  const logger = createLogger({ component: "signed-floor", level: "silent" });
  const pool = await verifyPool(setup.verifyWorkers, logger);
  const nonces = new MemoryNonceStore();
  const verify = { chainId: BENCH_CHAIN_ID, audience: DISCOVERY_AUDIENCE, maxSkewSec: 60 };
  const answer = async (req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> => {
    let status = 200;
    let text: string;
    try {
      const url = req.url ?? "/";
      const q = url.indexOf("?");
      const claim = readClaim(
        { method: req.method ?? "GET", path: q === -1 ? url : url.slice(0, q), query: q === -1 ? "" : url.slice(q + 1), body, header: (name) => req.headers[name] as string | undefined },
        verify,
      );
      text = JSON.stringify({ signer: await acceptClaim(claim, await pool.recover(claim.text, claim.signature, claim.address), nonces) });
    } catch (error) {
      status = error instanceof AuthError ? error.status : 500;
      text = JSON.stringify({ error: (error as Error).message });
    }
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => void answer(req, res, chunks.length === 0 ? EMPTY_BODY : Buffer.concat(chunks)));
  });
  return { app: server, facts: { verifyWorkers: pool.size }, close: () => pool.close() };
}

export async function buildServer(setup: ServerSetup): Promise<BenchServer> {
  switch (setup.kind) {
    case "discovery":
      return buildDiscoveryServer(setup);
    case "master":
      return buildMasterServer(setup);
    case "hello":
      return buildHelloServer();
    case "signed-floor":
      return buildSignedFloorServer(setup);
  }
}
