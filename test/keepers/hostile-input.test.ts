/**
 * Hostile input to every signed HTTP route of every keeper, table-driven: one real network in this process
 * (a `hardhat node`, discovery, a master with local assignment, a miner on the real Docker engine, real
 * SQLite files, real signatures over real loopback HTTP), brought to the point where every route has
 * something to answer about (a registered, validated member node, a finished task whose file the master
 * holds). Then, route by route, requests are sent raw over a socket (so that nothing normalises a path or
 * refuses a header before the keeper sees it), most of them correctly signed by a signer the route allows,
 * so that they reach the checks of the body, the path and the query, not only the signature check:
 *
 *   malformed JSON, invalid UTF-8, wrong top-level types, missing, extra and mistyped fields, bodies over
 *   the limit, deeply nested JSON, prototype-polluting keys (`__proto__`, `constructor.prototype`,
 *   `prototype`, also \u-escaped), unicode and control characters in names and strings, path traversal in
 *   path parameters, file names and storage paths (`../`, absolute, `%2e%2e%2f`, NUL), malformed
 *   percent-encoding and headers, and unsigned or forged requests.
 *
 * For each: a 4xx with a JSON `{ error }` reason; afterwards a valid request to the route still succeeds and
 * the keeper answers /health; no state changed (the keeper's SQLite tables but its request nonces and event
 * cursors, its files, its containers, its in-memory view, its transactions); Object.prototype is untouched.
 *
 * The validator keeper serves no signed route (only /health and /metrics, covered with the others' below).
 * The miner's containers carry its fresh node address as their label; cleanup removes only those.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { expect } from "chai";
import Dockerode from "dockerode";
import { Wallet, id as keccakText } from "ethers";
import { type DiscoveryService, startDiscovery } from "../../keepers/discovery/index.js";
import { type MasterService, startMaster } from "../../keepers/master/index.js";
import { LABEL_NODE } from "../../keepers/miner/docker-runtime.js";
import { type MinerService, startMiner } from "../../keepers/miner/index.js";
import { fileNameHeader } from "../../keepers/miner/sync.js";
import { newChallenge } from "../../keepers/shared/challenge.js";
import { SignedClient } from "../../keepers/shared/http.js";
import { createLogger } from "../../keepers/shared/log.js";
import { signRequest } from "../../keepers/shared/signing.js";
import { signInvite } from "../../scripts/lib/protocol.js";
import { type DevChain, startDevChain } from "./support/devchain.js";
import { TEST_IMAGE, requireDocker } from "./support/docker.js";

// HOSTILE_TEST_LOG=debug shows the keepers' decisions (each refusal with its reason) while the tests run.
const logLevel = process.env.HOSTILE_TEST_LOG ?? "silent";
const logger = (component: string) => createLogger({ component, level: logLevel });
const REPO = path.resolve(import.meta.dirname, "..", "..");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sha256 = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex");

async function until<T>(what: string, probe: () => T | Promise<T>, timeoutMs = 60_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

// ------------------------------------------------------------------------------------------------------
// Raw HTTP: the request goes out byte for byte as written (no URL normalisation, no header validation).
// ------------------------------------------------------------------------------------------------------

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  text: string;
  json: unknown;
}

function parseAnswer(raw: Buffer): RawAnswer {
  const end = raw.indexOf("\r\n\r\n");
  if (end === -1) throw new Error(`no HTTP answer (got ${JSON.stringify(raw.toString("latin1").slice(0, 200))})`);
  const [statusLine, ...lines] = raw.subarray(0, end).toString("latin1").split("\r\n");
  const status = Number(statusLine.split(" ")[1]);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = raw.subarray(end + 4);
  if (headers["transfer-encoding"] === "chunked") {
    const parts: Buffer[] = [];
    for (let at = 0; ; ) {
      const lineEnd = body.indexOf("\r\n", at);
      const size = parseInt(body.subarray(at, lineEnd).toString("latin1"), 16);
      if (!size) break;
      parts.push(body.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
    }
    body = Buffer.concat(parts);
  } else if (headers["content-length"] !== undefined) {
    body = body.subarray(0, Number(headers["content-length"]));
  }
  const text = body.toString("utf8");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status, headers, text, json };
}

/** Sends `head` (latin1: header values carry UTF-8 bytes as latin1, as node reads them) and `body`. */
function sendRaw(base: string, head: string, body: Buffer): Promise<RawAnswer> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      const raw = Buffer.concat(chunks);
      if (raw.length > 0) {
        try {
          resolve(parseAnswer(raw));
        } catch (e) {
          reject(e);
        }
      } else reject(error ?? new Error("connection closed without an answer"));
    };
    socket.setTimeout(30_000, () => socket.destroy(new Error("no answer within 30 s")));
    socket.on("data", (chunk) => chunks.push(chunk));
    // A server that refuses a body early (413) closes while it is still being written: the answer counts.
    socket.on("error", (error) => finish(error));
    socket.on("close", () => finish());
    socket.write(Buffer.concat([Buffer.from(head, "latin1"), body]));
  });
}

interface Signing {
  wallet: Wallet;
  audience: string;
  /** Sign this path / query instead of the one sent (a forged request). */
  path?: string;
  audienceOverride?: string;
  timestamp?: number;
}

interface RawRequest {
  method: string;
  /** Path and query exactly as they go on the request line. */
  target: string;
  body?: Buffer;
  contentType?: string;
  headers?: Record<string, string>;
  sign?: Signing | null;
}

let chainId = 0n;

async function send(base: string, request: RawRequest): Promise<RawAnswer> {
  const body = request.body ?? Buffer.alloc(0);
  const headers: Record<string, string> = { host: new URL(base).host, connection: "close" };
  if (request.sign) {
    const signedTarget = request.sign.path ?? request.target;
    const sq = signedTarget.indexOf("?");
    Object.assign(
      headers,
      await signRequest(request.sign.wallet, {
        chainId,
        audience: request.sign.audienceOverride ?? request.sign.audience,
        method: request.method,
        path: sq === -1 ? signedTarget : signedTarget.slice(0, sq),
        query: sq === -1 ? "" : signedTarget.slice(sq + 1),
        body,
        timestamp: request.sign.timestamp,
      }),
    );
  }
  if (request.contentType) headers["content-type"] = request.contentType;
  if (body.length > 0 || ["POST", "PUT"].includes(request.method)) headers["content-length"] = String(body.length);
  Object.assign(headers, request.headers ?? {});
  const head = `${request.method} ${request.target} HTTP/1.1\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("")}\r\n`;
  return sendRaw(base, head, body);
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const text = (value: string) => Buffer.from(value, "utf8");

// ------------------------------------------------------------------------------------------------------
// The table: one entry per route, each with its hostile cases.
// ------------------------------------------------------------------------------------------------------

type Keeper = "discovery" | "master" | "miner";

interface HostileCase {
  name: string;
  /** Defaults: the route's method and target, signed by the route's signer. */
  method?: string;
  target?: string;
  body?: Buffer;
  contentType?: string;
  headers?: Record<string, string>;
  /** null: unsigned; a Signing: signed so (another key, a forged path, a stale time). */
  sign?: Signing | null;
  /** Expected status (default: any 4xx). */
  status?: number;
  error?: RegExp;
  /** Harmless input the route may answer with a 2xx (e.g. polluting keys in a query it does not read). */
  allowOk?: boolean;
}

interface Route {
  keeper: Keeper;
  method: string;
  template: string;
  /** Who may call it (the signer the hostile cases are signed by, so that they reach the input checks). */
  signer: () => Wallet;
  target: () => string;
  /** A valid request to send afterwards (2xx expected); default the route with no body. */
  valid?: () => Promise<RawRequest> | RawRequest;
  /** Expected status of the valid request, when it is not a 2xx (e.g. 403/404 for everybody here). */
  validStatus?: number;
  cases: () => HostileCase[];
}

/** Path parameter values that must be refused: traversal, encodings, NUL, controls, unicode, lengths. */
const HOSTILE_SEGMENTS: Array<[string, string]> = [
  ["../ traversal, encoded", "..%2f..%2f..%2fetc%2fpasswd"],
  ["%2e%2e%2f", "%2e%2e%2f%2e%2e%2fetc"],
  ["double-encoded traversal", "%252e%252e%252f"],
  ["an absolute path, encoded", "%2fetc%2fpasswd"],
  ["a NUL byte, encoded", "x%00y"],
  ["a backslash traversal", "..%5c..%5cwindows"],
  ["a newline, encoded", "a%0d%0aX-Injected:%201"],
  ["a right-to-left override", "abc%E2%80%AEcba"],
  ["unicode look-alikes", "%EF%BD%81%EF%BD%82"],
  ["malformed percent-encoding", "%E0%A4%A"],
  ["an overlong parameter", "a".repeat(101)],
  ["a space, encoded", "a%20b"],
];

/** The hostile spellings of one path parameter (`prefix` + value + `suffix`), and a literal ../ in its place. */
function segmentCases(prefix: string, suffix: string, param: string): HostileCase[] {
  return [
    ...HOSTILE_SEGMENTS.map(([name, value]) => ({ name: `${param} = ${name} (${value.length > 40 ? `${value.slice(0, 20)}…` : value})`, target: `${prefix}${value}${suffix}` })),
    // The router does not resolve dot segments: no route matches.
    { name: `${param} = a literal ../ on the request line`, target: `${prefix}../x${suffix}` },
  ];
}

/** `GET /ledger/tasks/:ledgerTaskId/spec` of the master or a miner: no such task (404) for the well-formed request. */
function ledgerSpecRoute<K extends string, W>(keeper: K, signer: () => W) {
  return {
    keeper,
    method: "GET",
    template: "/ledger/tasks/:ledgerTaskId/spec",
    signer,
    target: () => "/ledger/tasks/1/spec",
    validStatus: 404,
    cases: (): HostileCase[] => [
      ...segmentCases("/ledger/tasks/", "/spec", ":ledgerTaskId"),
      ...["0", "-1", "01", "1e3", "0x1", "9".repeat(79), "__proto__"].map((value) => ({ name: `:ledgerTaskId = ${value.slice(0, 12)}`, target: `/ledger/tasks/${value}/spec`, status: 400 })),
    ],
  };
}

/** Cases for a signed route: no signature, malformed headers, another path or audience, a stale time. */
function signatureCases(route: { method: string; target: () => string; signer: () => Wallet }, audience: string): HostileCase[] {
  const base = { method: route.method, target: route.target() };
  const wallet = route.signer();
  return [
    { ...base, name: "unsigned", sign: null, status: 401, error: /signature headers missing|missing signature headers/ },
    {
      ...base,
      name: "signature headers that are not what they claim",
      sign: null,
      headers: { "x-cn-address": "0x..%2f", "x-cn-timestamp": "now", "x-cn-nonce": "__proto__", "x-cn-signature": "0x00" },
      status: 401,
    },
    { ...base, name: "signed for another path", sign: { wallet, audience, path: "/health" }, status: 401, error: /signature does not match/ },
    { ...base, name: "signed for another audience", sign: { wallet, audience, audienceOverride: "0x000000000000000000000000000000000000dead" }, status: 401 },
    { ...base, name: "a stale timestamp", sign: { wallet, audience, timestamp: Math.floor(Date.now() / 1000) - 3600 }, status: 401, error: /stale/ },
  ];
}

/** Body cases every JSON route gets: syntax, encoding, top-level type, size, nesting, polluting keys. */
function jsonBodyCases(valid: Record<string, unknown>, limitBytes: number, nestInto: string): HostileCase[] {
  const depth = Math.min(Math.floor((limitBytes - 200) / 2), 100_000);
  const nested = `${"[".repeat(depth)}${"]".repeat(depth)}`;
  const validText = JSON.stringify(valid);
  const withField = (key: string, raw: string) => text(`${validText.slice(0, -1)},${JSON.stringify(key)}:${raw}}`);
  const c = "application/json";
  return [
    { name: "malformed JSON", body: text(validText.slice(0, -3)), contentType: c, status: 400, error: /^body is not valid JSON$/ },
    { name: "invalid UTF-8", body: Buffer.concat([text(validText.slice(0, -1)), text(',"x":"'), Buffer.from([0xff, 0xfe, 0xc3]), text('"}')]), contentType: c, status: 400, error: /^body is not valid UTF-8$/ },
    { name: "a lone surrogate escape", body: withField("x", '"\\ud800"'), contentType: c, status: 400 },
    { name: "an array", body: json([valid]), contentType: c, status: 400 },
    { name: "a string", body: json("hello"), contentType: c, status: 400 },
    { name: "a number", body: text("1e400"), contentType: c, status: 400 },
    { name: "null", body: text("null"), contentType: c, status: 400 },
    { name: "an empty object", body: json({}), contentType: c, status: 400 },
    { name: "JSON sent as text/plain", body: json(valid), contentType: "text/plain", status: 400 },
    { name: "no body at all", body: Buffer.alloc(0), contentType: c, status: 400 },
    { name: "an extra field", body: json({ ...valid, extra: 1 }), contentType: c, status: 400 },
    { name: "a body over the limit", body: json({ ...valid, pad: "x".repeat(limitBytes) }), contentType: c, status: 413, error: /^body too large$/ },
    { name: `JSON nested ${depth} deep`, body: withField(nestInto, nested), contentType: c, status: 400 },
    { name: "a __proto__ key", body: text(`{"__proto__":{"polluted":"yes"},${validText.slice(1)}`), contentType: c, status: 400, error: /^body must not contain the key "__proto__"$/ },
    { name: "a nested __proto__ key", body: withField(nestInto, '[{"__proto__":{"polluted":"yes"}}]'), contentType: c, status: 400, error: /__proto__/ },
    { name: "an escaped __proto__ key", body: text(`{"\\u005f\\u005fproto\\u005f\\u005f":{"polluted":"yes"},${validText.slice(1)}`), contentType: c, status: 400, error: /__proto__/ },
    { name: "constructor.prototype", body: withField("constructor", '{"prototype":{"polluted":"yes"}}'), contentType: c, status: 400, error: /constructor/ },
    { name: "a prototype key", body: withField("prototype", '{"polluted":"yes"}'), contentType: c, status: 400 },
  ];
}

/** A case per required field left out, and per field × hostile value. */
function fieldCases(valid: Record<string, unknown>, required: string[], bad: Record<string, unknown[]>): HostileCase[] {
  const cases: HostileCase[] = [];
  for (const field of required) {
    const { [field]: _dropped, ...rest } = valid;
    cases.push({ name: `without ${field}`, body: json(rest), contentType: "application/json", status: 400 });
  }
  for (const [field, values] of Object.entries(bad)) {
    for (const value of values) {
      const shown = JSON.stringify(value) ?? String(value);
      cases.push({
        name: `${field} = ${shown.length > 50 ? `${shown.slice(0, 47)}…` : shown}`,
        body: json({ ...valid, [field]: value }),
        contentType: "application/json",
      });
    }
  }
  return cases;
}

/** Strings of the kinds the brief names, for name and string fields. */
const NASTY_STRINGS = ["", "\u0000", "a\u0000b", "line\nbreak", "\u202eexe.txt", "\u200b", "\ud800", "../../etc/passwd", "/etc/passwd", "%2e%2e%2f", "C:\\Windows", "x".repeat(5000)];

// ------------------------------------------------------------------------------------------------------

describe("hostile input to every keeper route (real chain, Docker, HTTP, SQLite)", function () {
  this.timeout(240_000);

  let dev: DevChain;
  let dir: string;
  let discovery: DiscoveryService;
  let master: MasterService;
  let miner: MinerService;
  let runId: bigint;
  const docker = new Dockerode();
  const nodeWallet = Wallet.createRandom() as unknown as Wallet;
  const node = nodeWallet.address;
  const stranger = Wallet.createRandom() as unknown as Wallet;
  let masterWallet: Wallet;
  let buyerWallet: Wallet;
  let validatorWallet: Wallet;
  let providerAddress: string;
  let taskId: string;
  let taskSpec: Record<string, unknown>;
  const fileBytes = Buffer.from("hostile input test output\n");
  const fileSha = sha256(fileBytes);
  const MAX_FILE_BYTES = 64 * 1024;

  const base = (keeper: Keeper) => (keeper === "discovery" ? discovery.url : keeper === "master" ? master.url : miner.url);
  const audienceOf = (keeper: Keeper) => (keeper === "discovery" ? "discovery" : keeper === "master" ? master.address.toLowerCase() : node.toLowerCase());

  // --- state: what hostile input must never change ---------------------------------------------------

  function dumpDb(file: string, projections: Record<string, string> = {}): Record<string, unknown[]> {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as Array<{ name: string }>).map((t) => t.name);
      const dump: Record<string, unknown[]> = {};
      for (const table of tables) {
        if (table === "request_nonce_rows") continue; // every signed request spends a nonce, by design
        const query = projections[table] ?? `SELECT * FROM ${table}`;
        let rows = db.prepare(query).all() as Array<Record<string, unknown>>;
        if (table === "kv") rows = rows.filter((row) => !String(row.key).startsWith("cursor:")); // event cursors follow the chain
        dump[table] = rows.map((row) => JSON.stringify(row)).sort();
      }
      return dump;
    } finally {
      db.close();
    }
  }

  function tree(root: string): string[] {
    if (!existsSync(root)) return [];
    const out: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        const info = statSync(full);
        out.push(`${path.relative(root, full)} ${entry.isDirectory() ? "dir" : info.size}`);
        if (entry.isDirectory()) walk(full);
      }
    };
    walk(root);
    return out.sort();
  }

  async function txCounts(): Promise<number[]> {
    const provider = dev.admin.provider;
    return Promise.all([node, providerAddress, master.address].map((a) => provider.getTransactionCount(a, "latest")));
  }

  async function snapshot(keeper: Keeper): Promise<unknown> {
    const chain = await txCounts();
    if (keeper === "discovery") return { chain, db: dumpDb(path.join(dir, "discovery", "discovery.sqlite")) };
    if (keeper === "master") {
      return {
        chain,
        // Heartbeat times are written a second after they arrive: compared in memory, where they land at once.
        db: dumpDb(path.join(dir, "master", "master.sqlite"), {
          master_nodes: "SELECT node, state, participation, endpoint, state_since, joined_at, ejected_at, invite_nonce FROM master_nodes",
        }),
        nodes: master.nodes().map((n) => ({ node: n.node, state: n.state, lastHeartbeat: n.lastHeartbeat, lastSentAt: (n as { lastSentAt?: unknown }).lastSentAt })),
        files: tree(path.join(dir, "master")).filter((f) => !/\.sqlite(-wal|-shm)?\s/.test(f)),
      };
    }
    const containers = await docker.listContainers({ all: true, filters: { label: [`${LABEL_NODE}=${node.toLowerCase()}`] } });
    return {
      chain,
      db: dumpDb(path.join(dir, "miner", "miner.sqlite")),
      tasks: miner.tasks(),
      containers: containers.map((c) => `${c.Id} ${c.State}`).sort(),
      files: tree(path.join(dir, "miner", "tasks")),
      heartbeatTarget: miner.agent.heartbeats.current ?? null,
    };
  }

  function expectUnpolluted(where: string): void {
    const probe = {} as Record<string, unknown>;
    expect(Object.getOwnPropertyNames(Object.prototype).sort(), `${where}: Object.prototype`).to.deep.equal(OBJECT_PROTOTYPE_KEYS);
    expect(probe.polluted, `${where}: ({}).polluted`).to.equal(undefined);
    expect(Object.getPrototypeOf(probe)).to.equal(Object.prototype);
    expect(Object.getOwnPropertyNames(Array.prototype).includes("polluted"), `${where}: Array.prototype`).to.equal(false);
  }
  const OBJECT_PROTOTYPE_KEYS = Object.getOwnPropertyNames(Object.prototype).sort();

  // --- the network -----------------------------------------------------------------------------------

  before(async function () {
    await requireDocker(this);
    dev = await startDevChain();
    chainId = dev.admin.chainId;
    dir = await mkdtemp(path.join(os.tmpdir(), "cn-hostile-"));
    masterWallet = new Wallet(dev.keys.master);
    buyerWallet = new Wallet(dev.keys.buyer);
    validatorWallet = new Wallet(dev.keys.validators[0]);
    providerAddress = new Wallet(dev.keys.providers[0]).address;

    discovery = await startDiscovery({
      rpcUrl: dev.rpcUrl,
      deploymentFile: dev.deploymentFile,
      dataDir: path.join(dir, "discovery"),
      port: 0,
      pollMs: 100,
      logger: logger("discovery"),
      rateLimit: { max: 1_000_000, windowMs: 60_000 },
    });
    const buyer = await dev.connect(dev.keys.buyer);
    await (
      await buyer.contracts.trainingRuns.createRun({
        master: masterWallet.address,
        pricePerUnit: 1n,
        maxMembers: 3,
        budget: 0n,
        discoveryURI: discovery.url,
        requirements: { minGpuCount: 0, minGpuMemoryMB: 0, minCpuCores: 0, minRamMB: 0, minStorageGB: 0, allowedGpuModels: [] },
      })
    ).wait();
    runId = await buyer.contracts.trainingRuns.runCount();
    buyer.provider.destroy();

    master = await startMaster({
      rpcUrl: dev.rpcUrl,
      deployment: dev.deploymentFile,
      dataDir: path.join(dir, "master"),
      host: "127.0.0.1",
      port: 0,
      pollMs: 100,
      confirmations: 0,
      privateKey: dev.keys.master,
      runId,
      discoveryUrl: discovery.url,
      // Heartbeats pause while the routes are probed: the node must stay Healthy meanwhile, and the master
      // must not "introduce" itself to a silent member (an invite that resumes its heartbeats) before 2
      // intervals have passed.
      heartbeatIntervalSec: 600,
      inviteExpirySec: 1000,
      reconcileMs: 300,
      maxFileBytes: MAX_FILE_BYTES,
      assignment: "local",
      logger: logger("master"),
    });

    miner = await startMiner({
      rpcUrl: dev.rpcUrl,
      deploymentFile: dev.deploymentFile,
      dataDir: path.join(dir, "miner"),
      host: "127.0.0.1",
      port: 0,
      pollMs: 100,
      confirmations: 0,
      logger: logger("miner"),
      providerKey: dev.keys.providers[0],
      nodeKey: nodeWallet.privateKey,
      runId,
      discoveryUrl: discovery.url,
      heartbeatIntervalSec: 1,
      capabilities: { cpuCores: 4, ramMB: 8192, storageGB: 10 },
      discoveryRetryMs: { baseMs: 100, maxMs: 400 },
      syncRetryMs: { baseMs: 100, maxMs: 400 },
    });
    await miner.endpointUploaded;

    // A validator approves the node; the master invites it; it joins and heartbeats.
    const validator = await dev.connect(dev.keys.validators[0]);
    const capsId = await validator.contracts.registry.capsIdOf(node);
    await (await validator.contracts.challengeBoard.reportChallenge(node, capsId, true, keccakText(`hostile ${node}`))).wait();
    validator.provider.destroy();
    await until("the node Healthy at the master", () => master.node(node)?.state === "Healthy");

    // The buyer's task runs on the node and writes a file, which the master receives.
    const buyerClient = new SignedClient(buyerWallet, chainId);
    const created = await buyerClient.call<{ taskId: string }>("POST", `${master.url}/tasks`, {
      audience: master.address,
      body: { image: TEST_IMAGE, command: ["sh", "-c", `printf '${fileBytes.toString().trim()}\\n' > /data/out.txt`], memoryMB: 32, cpus: 0.2 },
    });
    taskId = created.taskId;
    await until("the task completed at the master", () => master.task(taskId)?.state === "completed");
    await until("the task's file at the master", () => {
      const db = new Database(path.join(dir, "master", "master.sqlite"), { readonly: true });
      try {
        return db.prepare("SELECT 1 FROM master_files WHERE task_id = ? AND sha256 = ?").get(taskId, fileSha);
      } finally {
        db.close();
      }
    });
    await until("the miner's sync recorded", () => {
      const db = new Database(path.join(dir, "miner", "miner.sqlite"), { readonly: true });
      try {
        return db.prepare("SELECT 1 FROM miner_synced_tasks WHERE task_id = ?").get(taskId);
      } finally {
        db.close();
      }
    });
    const spec = master.task(taskId)!.spec;
    taskSpec = { ...spec, taskId };
    // From here on the network is quiet: no heartbeats, so that any change of state is the requests' doing.
    miner.agent.heartbeats.clearTarget("hostile-input test: quiet network");
    await sleep(1_500); // the master writes the last heartbeat's time within a second
  });

  after(async () => {
    await miner?.stop();
    await master?.stop();
    await discovery?.stop();
    for (const info of await docker.listContainers({ all: true, filters: { label: [`${LABEL_NODE}=${node.toLowerCase()}`] } })) {
      await docker.getContainer(info.Id).remove({ force: true });
    }
    await dev?.stop();
    if (dir && !process.env.CN_KEEP_TEST_DIR) await rm(dir, { recursive: true, force: true });
  });

  // --- the routes ------------------------------------------------------------------------------------

  const D = "discovery";
  const validInvite = async () => {
    const runs = dev.admin.contracts.trainingRuns;
    const nonce = BigInt(`0x${randomBytes(8).toString("hex")}`);
    const generation = await runs.inviteGenerationOf(runId, node);
    const expiry = BigInt((await dev.admin.provider.getBlock("latest"))!.timestamp) + 3600n;
    const signature = await signInvite(masterWallet, { chainId, verifyingContract: await runs.getAddress() }, { runId, node, generation, nonce, expiry });
    return { runId: runId.toString(), nonce: nonce.toString(), expiry: expiry.toString(), generation: generation.toString(), signature, masterUrl: master.publicUrl };
  };
  const validHeartbeat = () => ({ runId: runId.toString(), node, tasks: [], sentAt: new Date().toISOString() });
  const validTask = { image: TEST_IMAGE, command: ["true"], memoryMB: 16, cpus: 0.1 };
  /** The node's address with one letter's case flipped: an EIP-55 checksum that does not match. */
  const badChecksum = (address: string) => {
    const at = [...address.slice(2)].findIndex((ch) => /[a-fA-F]/.test(ch)) + 2;
    const ch = address[at];
    return `${address.slice(0, at)}${ch === ch.toUpperCase() ? ch.toLowerCase() : ch.toUpperCase()}${address.slice(at + 1)}`;
  };

  const routes: Route[] = [
    // ================================================================ discovery
    {
      keeper: D,
      method: "PUT",
      template: "/nodes/:node",
      signer: () => nodeWallet,
      target: () => `/nodes/${node}`,
      valid: () => ({ method: "PUT", target: `/nodes/${node}`, body: json({ endpoint: miner.publicUrl }), contentType: "application/json" }),
      cases: () => [
        ...jsonBodyCases({ endpoint: miner.publicUrl }, 16 * 1024, "endpoint"),
        ...fieldCases({ endpoint: miner.publicUrl }, ["endpoint"], {
          endpoint: [null, 7, true, [], {}, ...NASTY_STRINGS, "ftp://127.0.0.1:21", "file:///etc/passwd", "http://127.0.0.1:9/../../etc", "http://127.0.0.1:9/%2e%2e%2f", "http://user:pw@127.0.0.1:9", "http://127.0.0.1:9\u0000", "http://exa\u202emple.com:80", "http://127.0.0.1:99999", "javascript:alert(1)"],
        }),
        { name: "a body with unknown fields only", body: json({ endpoints: [miner.publicUrl] }), contentType: "application/json", status: 400, error: /unknown field "endpoints"/ },
        ...segmentCases("/nodes/", "", ":node").map((c) => ({ ...c, body: json({ endpoint: miner.publicUrl }), contentType: "application/json" })),
        { name: ":node = __proto__", target: "/nodes/__proto__", body: json({ endpoint: miner.publicUrl }), contentType: "application/json", status: 400 },
        { name: ":node = constructor", target: "/nodes/constructor", body: json({ endpoint: miner.publicUrl }), contentType: "application/json", status: 400 },
        { name: "another node's address", target: `/nodes/${stranger.address}`, body: json({ endpoint: "http://127.0.0.1:1" }), contentType: "application/json", status: 403 },
        { name: "signed by a stranger", sign: { wallet: stranger, audience: "discovery" }, body: json({ endpoint: "http://127.0.0.1:1" }), contentType: "application/json", status: 403 },
      ],
    },
    {
      keeper: D,
      method: "GET",
      template: "/nodes/:node",
      signer: () => validatorWallet,
      target: () => `/nodes/${node}`,
      cases: () => [
        ...segmentCases("/nodes/", "", ":node"),
        { name: ":node = __proto__", target: "/nodes/__proto__", status: 400 },
        { name: ":node with a bad checksum", target: `/nodes/${badChecksum(node)}`, status: 400 },
        { name: "an address without an endpoint", target: `/nodes/${stranger.address}`, status: 404 },
        { name: "signed by a stranger", sign: { wallet: stranger, audience: "discovery" }, status: 403 },
        { name: "polluting keys in the query", target: `/nodes/${node}?__proto__[polluted]=yes&constructor[prototype][polluted]=yes`, allowOk: true },
      ],
    },
    {
      keeper: D,
      method: "GET",
      template: "/validator/pending",
      signer: () => validatorWallet,
      target: () => "/validator/pending",
      cases: () => [
        { name: "a literal ../ in the path", target: "/validator/../validator/pending", status: 404 },
        { name: "an encoded ../ in the path", target: "/validator/%2e%2e/validator/pending", status: 404 },
        { name: "a NUL in the path", target: "/validator/pending%00", status: 404 },
        { name: "a raw NUL on the request line", target: "/validator/pending\u0000", sign: null, status: 400, error: /malformed HTTP request/ },
        { name: "malformed percent-encoding", target: "/validator/%E0%A4%A", status: 400, error: /malformed URL/ },
        { name: "signed by a stranger", sign: { wallet: stranger, audience: "discovery" }, status: 403 },
        { name: "signed by the node (not a validator)", sign: { wallet: nodeWallet, audience: "discovery" }, status: 403 },
        { name: "polluting keys in the query", target: "/validator/pending?__proto__[polluted]=yes&constructor.prototype.polluted=yes", allowOk: true },
      ],
    },
    {
      keeper: D,
      method: "GET",
      template: "/runs/:runId/nodes",
      signer: () => masterWallet,
      target: () => `/runs/${runId}/nodes`,
      cases: () => [
        ...segmentCases("/runs/", "/nodes", ":runId"),
        ...["0", "-1", "01", "1e3", "0x1", "1.0", "+1", "9".repeat(79), (2n ** 256n).toString(), "__proto__", "constructor", "%20" + runId.toString()].map((value) => ({
          name: `:runId = ${value.length > 20 ? `${value.slice(0, 12)}…` : value}`,
          target: `/runs/${value}/nodes`,
          status: 400,
        })),
        { name: "a run that does not exist", target: `/runs/${runId + 1000n}/nodes`, status: 404 },
        { name: "signed by a stranger", sign: { wallet: stranger, audience: "discovery" }, status: 403 },
      ],
    },

    // ================================================================ master
    {
      keeper: "master",
      method: "POST",
      template: "/heartbeat",
      signer: () => nodeWallet,
      target: () => "/heartbeat",
      valid: () => ({ method: "POST", target: "/heartbeat", body: json(validHeartbeat()), contentType: "application/json" }),
      cases: () => [
        ...jsonBodyCases(validHeartbeat(), 1024 * 1024, "tasks"),
        ...fieldCases(validHeartbeat(), ["runId", "node", "sentAt"], {
          runId: [null, true, [], {}, "-1", "1.5", "0x1", "1e3", "01", 1.5, -1, "9".repeat(100), "\u0000"],
          node: [null, 7, [], "0x123", "..%2f..%2f", "__proto__", stranger.address],
          tasks: [null, "x", {}, [null], [{}], [{ taskId: "../../x", state: "running" }], [{ taskId: "a", state: "pwned" }], [{ taskId: "a\u0000", state: "running" }], Array.from({ length: 1001 }, (_, i) => ({ taskId: `t${i}`, state: "running" }))],
          sentAt: [null, true, [], {}, -1, 1.5, "yesterday", "2025-13-45T99:99:99Z", "2025-01-01T00:00:00Z\u0000", "\u202e2025-01-01", "x".repeat(5000)],
        }),
        { name: "signed by a stranger (not a member)", sign: { wallet: stranger, audience: master.address.toLowerCase() }, body: json({ ...validHeartbeat(), node: stranger.address }), contentType: "application/json", status: 403 },
        { name: "another run", body: json({ ...validHeartbeat(), runId: (runId + 7n).toString() }), contentType: "application/json", status: 403 },
      ],
    },
    {
      keeper: "master",
      method: "POST",
      template: "/tasks",
      signer: () => buyerWallet,
      target: () => "/tasks",
      // A valid task would run a container: the valid request read after is the task list.
      valid: () => ({ method: "GET", target: "/tasks" }),
      cases: () => [
        ...jsonBodyCases(validTask, 1024 * 1024, "command"),
        ...fieldCases(validTask, ["image", "command", "memoryMB", "cpus"], {
          image: [null, 7, [], ...NASTY_STRINGS, "--privileged", "-v/:/host", "BUSYBOX", "a b", "busybox\u202e", "ｂｕｓｙｂｏｘ", "../busybox"],
          command: [null, "sh -c 'rm -rf /'", [], [1], [""], ["sh", "\u0000"], [["nested"]], {}],
          env: [null, "A=1", [], { A: 1 }, { "BAD-NAME": "x" }, { "A=B": "x" }, { A: "x\u0000" }, { "": "x" }],
          memoryMB: [null, "64", 0, -1, 1.5, 5, 1e300, true],
          cpus: [null, "1", 0, -1, 0.001, 1e9],
          gpus: [-1, 0.5, "1", 65, null],
          maxRestarts: [-1, 101, "1", 0.5],
          units: [0, -1, 1.5, 1e10, "1", null],
          network: ["host"],
          privileged: [true],
          Binds: [["/:/host"]],
          taskId: ["../../etc"],
          runId: [runId.toString()],
          ledgerTaskId: ["1"],
        }),
        { name: "an env named __proto__", body: text(`{"image":"${TEST_IMAGE}","command":["true"],"memoryMB":16,"cpus":0.1,"env":{"__proto__":"x"}}`), contentType: "application/json", status: 400, error: /__proto__/ },
        { name: "signed by the node (not the buyer)", sign: { wallet: nodeWallet, audience: master.address.toLowerCase() }, body: json(validTask), contentType: "application/json", status: 403 },
      ],
    },
    {
      keeper: "master",
      method: "GET",
      template: "/tasks",
      signer: () => buyerWallet,
      target: () => "/tasks",
      cases: () => [
        { name: "a literal ../ in the path", target: "/x/../tasks", status: 404 },
        { name: "an encoded ../", target: "/tasks/%2e%2e", status: 400 },
        { name: "signed by a stranger", sign: { wallet: stranger, audience: master.address.toLowerCase() }, status: 403 },
        { name: "polluting keys in the query", target: "/tasks?__proto__[polluted]=yes&constructor[prototype][polluted]=yes", allowOk: true },
      ],
    },
    {
      keeper: "master",
      method: "GET",
      template: "/tasks/:taskId",
      signer: () => buyerWallet,
      target: () => `/tasks/${taskId}`,
      cases: () => [
        ...segmentCases("/tasks/", "", ":taskId"),
        { name: ":taskId = __proto__", target: "/tasks/__proto__", status: 404 },
        { name: ":taskId = constructor", target: "/tasks/constructor", status: 404 },
        { name: ":taskId of 65 characters", target: `/tasks/${"a".repeat(65)}`, status: 400 },
        { name: "signed by the node (not the buyer)", sign: { wallet: nodeWallet, audience: master.address.toLowerCase() }, status: 403 },
      ],
    },
    {
      keeper: "master",
      method: "GET",
      template: "/tasks/:taskId/logs",
      signer: () => buyerWallet,
      target: () => `/tasks/${taskId}/logs?tail=5`,
      cases: () => [
        ...segmentCases("/tasks/", "/logs", ":taskId"),
        ...["-1", "abc", "1e3", "0x10", "9999999", "%00", "1%0a2", "1&tail=2", "", "%E0%A4%A"].map((value) => ({
          name: `tail = ${value || "(empty)"}`,
          target: `/tasks/${taskId}/logs?tail=${value}`,
          status: 400,
        })),
        { name: "tail[__proto__]", target: `/tasks/${taskId}/logs?tail[__proto__][polluted]=yes`, allowOk: true },
        { name: "signed by a stranger", sign: { wallet: stranger, audience: master.address.toLowerCase() }, status: 403 },
      ],
    },
    {
      keeper: "master",
      method: "GET",
      template: "/nodes",
      signer: () => buyerWallet,
      target: () => "/nodes",
      cases: () => [
        { name: "an encoded ../ after it", target: "/nodes/%2e%2e%2fmaster.sqlite", status: 404 },
        { name: "signed by the node (not the buyer)", sign: { wallet: nodeWallet, audience: master.address.toLowerCase() }, status: 403 },
      ],
    },
    {
      keeper: "master",
      method: "GET",
      template: "/tasks/:taskId/files",
      signer: () => buyerWallet,
      target: () => `/tasks/${taskId}/files`,
      cases: () => [
        ...segmentCases("/tasks/", "/files", ":taskId"),
        { name: "signed by a stranger", sign: { wallet: stranger, audience: master.address.toLowerCase() }, status: 403 },
      ],
    },
    {
      keeper: "master",
      method: "GET",
      template: "/tasks/:taskId/files/:sha256",
      signer: () => buyerWallet,
      target: () => `/tasks/${taskId}/files/${fileSha}`,
      cases: () => [
        ...segmentCases("/tasks/", `/files/${fileSha}`, ":taskId"),
        ...segmentCases(`/tasks/${taskId}/files/`, "", ":sha256"),
        { name: ":sha256 reaching for the database", target: `/tasks/${taskId}/files/..%2f..%2fmaster.sqlite`, status: 400 },
        { name: ":sha256 in upper case", target: `/tasks/${taskId}/files/${fileSha.toUpperCase()}`, status: 400 },
        { name: ":sha256 of 63 characters", target: `/tasks/${taskId}/files/${fileSha.slice(1)}`, status: 400 },
        { name: "a content the task does not have", target: `/tasks/${taskId}/files/${sha256("other")}`, status: 404 },
        { name: "signed by the node (not the buyer)", sign: { wallet: nodeWallet, audience: master.address.toLowerCase() }, status: 403 },
      ],
    },
    {
      keeper: "master",
      method: "POST",
      template: "/tasks/:taskId/files/missing",
      signer: () => nodeWallet,
      target: () => `/tasks/${taskId}/files/missing`,
      valid: () => ({ method: "POST", target: `/tasks/${taskId}/files/missing`, body: json({ files: [{ name: "out.txt", sha256: fileSha, size: fileBytes.length }] }), contentType: "application/json" }),
      cases: () => {
        const good = { name: "out.txt", sha256: fileSha, size: fileBytes.length };
        const entry = (over: Record<string, unknown>) => json({ files: [{ ...good, ...over }] });
        return [
          ...jsonBodyCases({ files: [good] }, 1024 * 1024, "files"),
          ...fieldCases({ files: [good] }, ["files"], { files: [null, "out.txt", {}, [null], ["out.txt"], [{ ...good, extra: 1 }], Array.from({ length: 10_001 }, () => good)] }),
          ...[...NASTY_STRINGS, "a/../../b", "./x", "x/", "a//b", " out.txt", "out.txt ", "%2e%2e%2fout.txt", "..%2Fout.txt", "a%00b", "C:x", "a\\b", "\u202etxt.exe", "\u2066x", "\u0085", 7, null].map((name) => ({
            name: `file name ${JSON.stringify(name)?.slice(0, 40)}`,
            body: entry({ name }),
            contentType: "application/json",
            status: 400,
          })),
          ...[fileSha.toUpperCase(), fileSha.slice(1), "../" + fileSha.slice(3), null].map((sha) => ({ name: `sha256 ${JSON.stringify(sha)?.slice(0, 20)}`, body: entry({ sha256: sha }), contentType: "application/json", status: 400 })),
          ...[-1, 1.5, "1", null].map((size) => ({ name: `size ${JSON.stringify(size)}`, body: entry({ size }), contentType: "application/json", status: 400 })),
          ...segmentCases("/tasks/", "/files/missing", ":taskId").map((c) => ({ ...c, body: json({ files: [good] }), contentType: "application/json" })),
          { name: "signed by the buyer (not the task's node)", sign: { wallet: buyerWallet, audience: master.address.toLowerCase() }, body: json({ files: [good] }), contentType: "application/json", status: 403 },
        ];
      },
    },
    {
      keeper: "master",
      method: "PUT",
      template: "/tasks/:taskId/files/:sha256",
      signer: () => nodeWallet,
      target: () => `/tasks/${taskId}/files/${fileSha}`,
      valid: () => ({ method: "PUT", target: `/tasks/${taskId}/files/${fileSha}`, body: fileBytes, contentType: "application/octet-stream", headers: { "x-cn-file-name": "out.txt" } }),
      cases: () => {
        const upload = { body: fileBytes, contentType: "application/octet-stream" };
        const named = (name: string) => ({ ...upload, headers: { "x-cn-file-name": fileNameHeader(name) } });
        return [
          ...["../out.txt", "/etc/passwd", "a/../../b", "%2e%2e%2fout.txt", "..%2f..%2fmaster.sqlite", "a%00b", "C:x", "a\\b", "\u202etxt.exe", "\u2067x", "\u0085x", "x".repeat(300), "\ud800x"].map((name) => ({
            name: `x-cn-file-name ${JSON.stringify(name).slice(0, 40)}`,
            ...named(name),
            status: 400,
            error: /x-cn-file-name/,
          })),
          { name: "x-cn-file-name with a raw NUL", ...upload, headers: { "x-cn-file-name": "a\u0000b" }, sign: null, status: 400, error: /malformed HTTP request/ },
          { name: "x-cn-file-name with a raw line break", ...upload, headers: { "x-cn-file-name": "a\rb" }, sign: null, status: 400, error: /malformed HTTP request/ },
          { name: "x-cn-file-name with invalid UTF-8", ...upload, headers: { "x-cn-file-name": "a\u00ff\u00feb" }, status: 400, error: /UTF-8/ },
          { name: "no x-cn-file-name", ...upload, status: 400, error: /x-cn-file-name .* is required/ },
          { name: "content-type JSON", body: fileBytes, contentType: "application/json", headers: { "x-cn-file-name": "out.txt" }, status: 400 },
          { name: "bytes that do not hash to :sha256", body: Buffer.from("tampered"), contentType: "application/octet-stream", headers: { "x-cn-file-name": "out.txt" }, status: 400, error: /hashes to/ },
          { name: "a body over the file limit", body: Buffer.alloc(MAX_FILE_BYTES + 1), contentType: "application/octet-stream", headers: { "x-cn-file-name": "big.bin" }, target: `/tasks/${taskId}/files/${sha256(Buffer.alloc(MAX_FILE_BYTES + 1))}`, status: 413 },
          ...segmentCases(`/tasks/${taskId}/files/`, "", ":sha256").map((c) => ({ ...c, ...named("out.txt") })),
          ...segmentCases("/tasks/", `/files/${fileSha}`, ":taskId").map((c) => ({ ...c, ...named("out.txt") })),
          { name: "claimed by the buyer (not the task's node)", ...named("out.txt"), sign: { wallet: buyerWallet, audience: master.address.toLowerCase() }, status: 403 },
          { name: "a stale claim before the body", ...named("out.txt"), sign: { wallet: nodeWallet, audience: master.address.toLowerCase(), timestamp: 1 }, status: 401 },
        ];
      },
    },
    // Local assignment: no on-chain task exists, so 404 is the right answer to the well-formed request.
    ledgerSpecRoute("master", () => nodeWallet),

    // ================================================================ miner
    {
      keeper: "miner",
      method: "POST",
      template: "/challenge",
      signer: () => validatorWallet,
      target: () => "/challenge",
      valid: () => ({ method: "POST", target: "/challenge", body: json(newChallenge({ n: 16, rounds: 1 })), contentType: "application/json" }),
      cases: () => {
        const good = newChallenge({ n: 16, rounds: 1 }) as unknown as Record<string, unknown>;
        return [
          ...jsonBodyCases(good, 256 * 1024, "challengeId"),
          ...fieldCases(good, ["challengeId", "seed", "n", "rounds"], {
            challengeId: [null, 7, ...NASTY_STRINGS, "a b"],
            seed: [null, 7, "0x12", `0x${"zz".repeat(32)}`, `${"00".repeat(32)}`],
            n: [null, "16", 0, -1, 1.5, 1025, 1e9],
            rounds: [null, "1", 0, 17, 1.5],
          }),
          { name: "signed by the master (not a validator)", sign: { wallet: masterWallet, audience: node.toLowerCase() }, body: json(good), contentType: "application/json", status: 403 },
        ];
      },
    },
    {
      keeper: "miner",
      method: "POST",
      template: "/tasks",
      signer: () => masterWallet,
      target: () => "/tasks",
      // The task it already runs: answered with its status, nothing started.
      valid: () => ({ method: "POST", target: "/tasks", body: json(taskSpec), contentType: "application/json" }),
      cases: () => {
        const fresh = { ...taskSpec, taskId: "hostile-new" };
        return [
          ...jsonBodyCases(fresh, 256 * 1024, "command"),
          ...fieldCases(fresh, ["taskId", "runId", "image", "command", "memoryMB", "cpus"], {
            taskId: [null, 7, ...NASTY_STRINGS, "a/../b", "__proto__/x"],
            runId: [null, 1, "01", "-1", "../..", "/etc", (runId + 5n).toString()],
            image: [null, ...NASTY_STRINGS, "--privileged", "ｂｕｓｙｂｏｘ", "BUSYBOX"],
            command: [null, "sh -c 'x'", [], [1], [""], ["a\u0000"]],
            env: [null, [], { A: 1 }, { "BAD-NAME": "x" }, { A: "\u0000" }],
            memoryMB: [null, 0, -1, 1.5, 8193, "64"],
            cpus: [null, 0, -1, 4.5, "1"],
            gpus: [1, -1, 0.5, 65],
            maxRestarts: [-1, 101],
            network: ["host", "bridge", "container:abc", "HOST"],
            ledgerTaskId: ["0", "01", "-1", "x", 1],
            privileged: [true],
            HostConfig: [{ Privileged: true, Binds: ["/var/run/docker.sock:/var/run/docker.sock"] }],
            Binds: [["/:/host"]],
            devices: [["/dev/sda"]],
            volumes: [{ "/etc": {} }],
            user: ["0:0"],
          }),
          { name: "an env named __proto__", body: text(`${JSON.stringify({ ...fresh, env: undefined }).slice(0, -1)},"env":{"__proto__":"x"}}`), contentType: "application/json", status: 400, error: /__proto__/ },
          { name: "signed by a stranger", sign: { wallet: stranger, audience: node.toLowerCase() }, body: json(fresh), contentType: "application/json", status: 403 },
          { name: "signed by the buyer", sign: { wallet: buyerWallet, audience: node.toLowerCase() }, body: json(fresh), contentType: "application/json", status: 403 },
        ];
      },
    },
    {
      keeper: "miner",
      method: "GET",
      template: "/tasks/:taskId",
      signer: () => masterWallet,
      target: () => `/tasks/${taskId}`,
      cases: () => [
        ...segmentCases("/tasks/", "", ":taskId"),
        { name: ":taskId = __proto__", target: "/tasks/__proto__", status: 404 },
        { name: ":taskId = constructor", target: "/tasks/constructor", status: 404 },
        { name: ":taskId of 65 characters", target: `/tasks/${"a".repeat(65)}`, status: 400 },
        { name: "signed by a stranger", sign: { wallet: stranger, audience: node.toLowerCase() }, status: 403 },
      ],
    },
    {
      keeper: "miner",
      method: "GET",
      template: "/tasks/:taskId/logs",
      signer: () => masterWallet,
      target: () => `/tasks/${taskId}/logs?tail=2`,
      cases: () => [
        ...segmentCases("/tasks/", "/logs", ":taskId"),
        ...["-1", "abc", "1e3", "0x10", "99999999", "%00", "1%0a2", "1&tail=2", ""].map((value) => ({ name: `tail = ${value || "(empty)"}`, target: `/tasks/${taskId}/logs?tail=${value}`, status: 400 })),
        { name: "tail[__proto__]", target: `/tasks/${taskId}/logs?tail[__proto__][polluted]=yes`, allowOk: true },
        { name: "signed by a stranger", sign: { wallet: stranger, audience: node.toLowerCase() }, status: 403 },
      ],
    },
    {
      keeper: "miner",
      method: "POST",
      template: "/tasks/:taskId/stop",
      signer: () => masterWallet,
      target: () => `/tasks/${taskId}/stop`,
      cases: () => [
        ...segmentCases("/tasks/", "/stop", ":taskId"),
        { name: ":taskId = __proto__", target: "/tasks/__proto__/stop", status: 404 },
        { name: "a malformed JSON body", body: text("{"), contentType: "application/json", status: 400 },
        { name: "a __proto__ body", body: text('{"__proto__":{"polluted":"yes"}}'), contentType: "application/json", status: 400 },
        { name: "a body over the limit", body: json({ pad: "x".repeat(256 * 1024) }), contentType: "application/json", status: 413 },
        { name: "signed by a stranger", sign: { wallet: stranger, audience: node.toLowerCase() }, status: 403 },
      ],
    },
    {
      keeper: "miner",
      method: "GET",
      template: "/poc/:epoch/leaves",
      signer: () => validatorWallet,
      target: () => "/poc/1/leaves?indices=0,1",
      // The validator holds verdict weight, but the node committed nothing (epoch 1 is weeks away): 404.
      validStatus: 404,
      cases: () => [
        ...segmentCases("/poc/", "/leaves?indices=0", ":epoch"),
        ...["0", "-1", "01", "1e3", "9".repeat(20), "__proto__"].map((value) => ({ name: `:epoch = ${value.slice(0, 12)}`, target: `/poc/${value}/leaves?indices=0`, status: 400 })),
        ...["", "a", "1,,2", "-1", "1;2", "0x1", "1%2C2%00", "99999999999", Array.from({ length: 201 }, (_, i) => i).join(","), "0&indices=1", "__proto__"].map((value) => ({
          name: `indices = ${value.slice(0, 16) || "(empty)"}`,
          target: `/poc/1/leaves?indices=${value}`,
          status: 400,
        })),
        { name: "no indices", target: "/poc/1/leaves", status: 400 },
        { name: "signed by a stranger (no verdict weight)", sign: { wallet: stranger, audience: node.toLowerCase() }, status: 403 },
      ],
    },
    {
      keeper: "miner",
      method: "GET",
      template: "/status",
      signer: () => masterWallet,
      target: () => "/status",
      cases: () => [
        { name: "an encoded ../ after it", target: "/status/%2e%2e%2f", status: 404 },
        { name: "signed by a stranger", sign: { wallet: stranger, audience: node.toLowerCase() }, status: 403 },
        { name: "polluting keys in the query", target: "/status?__proto__[polluted]=yes", allowOk: true },
      ],
    },
    // The node executed no on-chain task: 404 is the right answer to the well-formed request.
    ledgerSpecRoute("miner", () => validatorWallet),
    // Last: a valid invite makes the node heartbeat again (it follows the master it names).
    {
      keeper: "miner",
      method: "POST",
      template: "/invite",
      signer: () => masterWallet,
      target: () => "/invite",
      valid: async () => ({ method: "POST", target: "/invite", body: json(await validInvite()), contentType: "application/json" }),
      cases: () => {
        const good = { runId: runId.toString(), nonce: "1", expiry: "99999999999", generation: "0", signature: `0x${"11".repeat(65)}`, masterUrl: "http://127.0.0.1:1" };
        return [
          ...jsonBodyCases(good, 256 * 1024, "masterUrl"),
          ...fieldCases(good, ["runId", "nonce", "expiry", "generation", "signature", "masterUrl"], {
            runId: [null, 1, "01", "-1", "1e3", (runId + 1n).toString()],
            nonce: [null, 1, "0x1", "-1"],
            expiry: [null, "1.5", "soon"],
            generation: [null, 0, "x"],
            signature: [null, "0x12", `0x${"zz".repeat(65)}`],
            masterUrl: [null, 7, ...NASTY_STRINGS, "ftp://127.0.0.1:1", "http://user:pw@127.0.0.1:1", "http://127.0.0.1:1/?q=1", "http://127.0.0.1:1/#x", "javascript:alert(1)", "file:///etc/passwd"],
          }),
          // Well-formed, but not an invite the master signed: refused before any transaction.
          { name: "a signature by a stranger", body: json(good), contentType: "application/json" },
          { name: "signed by a stranger", sign: { wallet: stranger, audience: node.toLowerCase() }, body: json(good), contentType: "application/json", status: 403 },
        ];
      },
    },
  ];

  const covered = new Set<string>();

  for (const route of routes) {
    it(`${route.keeper} ${route.method} ${route.template}: every hostile request refused with a 4xx and a reason, nothing changed`, async function () {
      const started = Date.now();
      const url = base(route.keeper);
      const audience = audienceOf(route.keeper);
      const signed = { wallet: route.signer(), audience };
      const all = [...signatureCases(route, audience), ...route.cases()];

      const before = await snapshot(route.keeper);
      const failures: string[] = [];
      for (const hostile of all) {
        const request: RawRequest = {
          method: hostile.method ?? route.method,
          target: hostile.target ?? route.target(),
          body: hostile.body,
          contentType: hostile.contentType,
          headers: hostile.headers,
          sign: hostile.sign === undefined ? signed : hostile.sign,
        };
        let answer: RawAnswer;
        try {
          answer = await send(url, request);
        } catch (error) {
          failures.push(`${hostile.name}: no answer (${(error as Error).message})`);
          continue;
        }
        const reason = (answer.json as { error?: unknown } | undefined)?.error;
        const ok = answer.status >= 200 && answer.status < 300;
        if (ok && hostile.allowOk) continue;
        const problems: string[] = [];
        if (hostile.status !== undefined ? answer.status !== hostile.status : !(answer.status >= 400 && answer.status < 500)) {
          problems.push(`status ${answer.status}, expected ${hostile.status ?? "a 4xx"}`);
        }
        if (typeof reason !== "string" || reason.length === 0 || reason === "Bad Request") problems.push(`no JSON { error } reason (body ${answer.text.slice(0, 120)})`);
        else if (hostile.error && !hostile.error.test(reason)) problems.push(`reason ${JSON.stringify(reason)} does not match ${hostile.error}`);
        if (problems.length > 0) failures.push(`${hostile.name}: ${problems.join("; ")} [${JSON.stringify(reason ?? answer.text.slice(0, 80))}]`);
      }
      const after = await snapshot(route.keeper);
      expectUnpolluted(`${route.method} ${route.template}`);
      expect(failures, `${failures.length} of ${all.length} hostile requests misanswered`).to.deep.equal([]);
      expect(after, "state after the hostile requests").to.deep.equal(before);

      // The keeper is still up, and a valid request to the route still succeeds.
      const valid = route.valid ? await route.valid() : { method: route.method, target: route.target() };
      const answer = await send(url, { ...valid, sign: valid.sign === undefined ? signed : valid.sign });
      if (route.validStatus !== undefined) expect(answer.status, answer.text).to.equal(route.validStatus);
      else expect(answer.status, answer.text).to.be.within(200, 299);
      const health = await send(url, { method: "GET", target: "/health", sign: null });
      expect(health.status).to.equal(200);
      covered.add(`${route.keeper} ${route.method} ${route.template}`);
      console.log(`        ${all.length} hostile requests, ${Date.now() - started} ms`);
    });
  }

  it("health and metrics (unsigned) of every keeper answer hostile methods, paths and queries with JSON reasons", async () => {
    miner.agent.heartbeats.clearTarget("hostile-input test: quiet network"); // the valid invite resumed them
    await sleep(1_500);
    for (const keeper of ["discovery", "master", "miner"] as const) {
      const url = base(keeper);
      const before = await snapshot(keeper);
      for (const [method, target, status] of [
        ["POST", "/health", 400], // the malformed body is refused before the route is looked for
        ["DELETE", "/metrics", 404],
        ["GET", "/health/..%2f..%2fetc%2fpasswd", 404],
        ["GET", "/%2e%2e/%2e%2e/etc/passwd", 404],
        ["GET", "/health%00", 404],
        ["GET", "/%E0%A4%A", [400, 404]], // refused as malformed where the router decodes it, else no route
        ["GET", "/health/%E0%A4%A", [400, 404]],
        ["BREW", "/health", 400],
      ] as const) {
        const answer = await send(url, { method, target, sign: null, body: method === "POST" ? text("{") : undefined, contentType: method === "POST" ? "application/json" : undefined });
        expect(answer.status, `${keeper} ${method} ${target}: ${answer.text}`).to.be.oneOf(([] as number[]).concat(status));
        expect((answer.json as { error?: unknown } | undefined)?.error, `${keeper} ${method} ${target}: ${answer.text}`).to.be.a("string").and.not.equal("Bad Request");
      }
      const polluting = await send(url, { method: "GET", target: "/health?__proto__[polluted]=yes&constructor[prototype][polluted]=yes", sign: null });
      expect(polluting.status).to.equal(200);
      const headers = await send(url, { method: "GET", target: "/health", sign: null, headers: { "x-long": "a".repeat(20_000) } });
      expect(headers.status, headers.text).to.equal(431);
      expect((headers.json as { error?: string }).error).to.equal("request headers too large");
      expect(await snapshot(keeper)).to.deep.equal(before);
    }
    expectUnpolluted("health and metrics");
  });

  it("covered every signed route of every keeper, and left Object.prototype untouched", () => {
    const expected = [
      "discovery PUT /nodes/:node",
      "discovery GET /nodes/:node",
      "discovery GET /validator/pending",
      "discovery GET /runs/:runId/nodes",
      "master POST /heartbeat",
      "master POST /tasks",
      "master GET /tasks",
      "master GET /tasks/:taskId",
      "master GET /tasks/:taskId/logs",
      "master GET /nodes",
      "master GET /tasks/:taskId/files",
      "master GET /tasks/:taskId/files/:sha256",
      "master POST /tasks/:taskId/files/missing",
      "master PUT /tasks/:taskId/files/:sha256",
      "master GET /ledger/tasks/:ledgerTaskId/spec",
      "miner POST /challenge",
      "miner POST /tasks",
      "miner GET /tasks/:taskId",
      "miner GET /tasks/:taskId/logs",
      "miner POST /tasks/:taskId/stop",
      "miner GET /poc/:epoch/leaves",
      "miner GET /status",
      "miner GET /ledger/tasks/:ledgerTaskId/spec",
      "miner POST /invite",
    ];
    // Every route the keepers' route files register (the validator's registers none of its own) is in the table.
    const files: Record<string, string> = { discovery: "keepers/discovery/routes.ts", master: "keepers/master/routes.ts", miner: "keepers/miner/api.ts", validator: "keepers/validator/index.ts" };
    const registered: string[] = [];
    for (const [keeper, file] of Object.entries(files)) {
      const source = readFileSync(path.join(REPO, file), "utf8");
      for (const match of source.matchAll(/\bapp\.(get|post|put|patch|delete)(?:<[^>]*>)?\(\s*"([^"]+)"/g)) {
        registered.push(`${keeper} ${match[1].toUpperCase()} ${match[2]}`);
      }
    }
    expect(registered.sort()).to.deep.equal([...expected].sort());
    expect([...covered].sort()).to.deep.equal([...expected].sort());
    expectUnpolluted("the end of the run");
  });
});
