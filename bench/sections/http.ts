/**
 * Benchmark section "http": the signed HTTP hot paths of discovery and the master, against the bounds of
 * the machine they run on, all on 127.0.0.1 with the bounded load client of bench/lib/load.ts.
 *
 *   node --import tsx bench/sections/http.ts [--quick]    prints the figures as JSON
 *
 * How each figure is measured (also exported as `how`, for the harness' report):
 * - bound.ecrecoverPerSec: native secp256k1 `ecdsaRecover` (the `secp256k1` package the keepers verify
 *   with) on one precomputed signature, in a loop on this process' thread: recoveries per second on one core.
 *   Measured while no load runs: at the start of the section, right before and right after each timed run of
 *   the signed floor and of discovery, and after discovery; the median of these (bound.ecrecoverSamples of
 *   them; with an even count, the mean of the two middle ones) is the figure (the machine is shared: the rate moves by 10-20 % within seconds, and the bound should be
 *   the machine the figures it bounds ran on), and bound.ecrecoverSpread says how far apart they were.
 * - bound.httpHelloPerSec: the keepers' fastify app (createApp) with one empty GET route, in a child
 *   process, driven in closed loop by the same load client over the same number of keep-alive connections.
 * - bound.signedFloorPerSec: the least any server can do for a signed request on this machine: node:http with
 *   no framework, the keepers' signature check (readClaim; the signer checked in one SignaturePool worker,
 *   as discovery does; acceptClaim against an in-memory nonce set) and a fixed JSON answer, in a child
 *   process; discovery's request mix, count, runs and time limit, same client and connections. No routing,
 *   storage, access check, rate limit or log: discovery can only approach it.
 * - discovery.signedRequestsPerSec, discovery.p99Ms: the real discovery app (buildDiscoveryApp, what the
 *   keeper serves) in a child process over a real SQLite file, its chain index populated through its state
 *   module (see bench/lib/keeper-servers.ts). Pre-signed requests (signed before the timed window) from
 *   1,000 or more distinct keys (each seen in the warm-up: checked against its known key), each within its rate limit: 60% PUT /nodes/:node by registered nodes (an
 *   upsert and a log line each), 40% GET /nodes/:node by validators. Closed loop; only 2xx answers count as
 *   served (any other status is an error, reported as discovery.errors). Timed after a warm-up of
 *   WARM_UP_REQUESTS requests of the same mix (the signed floor too): from a cold start the first seconds
 *   measure V8 compiling the hot paths on its four background threads (~15 µs of their CPU a request in a
 *   cold 40,000-request run, read per thread from /proc; perf shows them in the optimizing compiler) and the
 *   slower code before it, not a keeper that has been running a while. Then TIMED_RUNS timed runs on the
 *   same server (the signed floor too), each of fresh requests; the run of median rate gives the figures
 *   (rate, p99, CPU a request), and discovery.spread (bound.signedFloorSpread) says how far the runs'
 *   rates were apart. On the shared machines this was written on, the same code's discovery runs were
 *   6-16 % apart within a section and 10,200-15,700 requests a second across sections (server CPU 92-155 µs
 *   a request), while the recovery rate taken right beside them mostly stayed within 10 %: the machine's
 *   memory and kernel speed moves more than its arithmetic, and one run is one draw of that noise.
 * - master.heartbeatsPerSec: the real master app (buildApp, what the keeper serves) in a child process over a
 *   real SQLite file, with 10,000 run members. After every member heartbeated once (its first heartbeat
 *   makes it Healthy), signed heartbeats from all of them, round robin, in closed loop.
 * - master.heartbeatP99Ms: the same master, heartbeats offered in open loop at 1,000/s; latency from the
 *   moment each heartbeat was due to its answer.
 * - master.rssMBAt10kNodes: the master child process' own resident set size (process.memoryUsage().rss,
 *   read in that process) after the runs above: 10,000 distinct nodes heartbeated, many times each.
 * The load client and the servers share the machine's two cores: the figures are what one such machine
 * does with its own load generator, not a server alone.
 *
 * Knobs for experiments (environment): BENCH_CONNECTIONS (default CONNECTIONS_DEFAULT), BENCH_VERIFY_WORKERS (signature
 * worker threads, default the keepers' DEFAULT_VERIFY_WORKERS), BENCH_MAX_BATCH (recoveries per message to a worker, default the keepers'
 * DEFAULT_MAX_BATCH; BENCH_CONNECTIONS or more sends a whole turn's requests in one message), BENCH_PROFILE=<dir>
 * (the server's CPU profile of each timed run), BENCH_CPU_PROF=<dir> (node --cpu-prof of each server process), BENCH_THREADS=1 (each server thread's CPU in each timed run, from /proc, on stderr; 0 or unset: none).
 * The settings in effect are reported with the figures (http.connections, http.verifyWorkers, http.maxBatch).
 */
import { fork, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import secp256k1 from "secp256k1";
import { Wallet } from "ethers";
import { DEFAULT_MAX_BATCH, DEFAULT_VERIFY_WORKERS } from "../../keepers/shared/signature-pool.js";
import { canonicalRequest, eip191Digest } from "../../keepers/shared/signing.js";
import { integerSetting } from "../../scripts/lib/env.js";
import { BENCH_CHAIN_ID, BENCH_RUN_ID, type ServerSetup, benchMaxBatch } from "../lib/keeper-servers.js";
import { type LoadResult, type NodeKey, type PreparedRequest, newNodeKey, presign, runLoad } from "../lib/load.js";

/** Timed runs of the signed floor and of discovery in the section; the run of median rate gives their figures. */
export const TIMED_RUNS = 3;

/** Requests of the same mix before the timed signed-floor and discovery runs (see `warm`). */
export const WARM_UP_REQUESTS = 20_000;

export const how: Record<string, string> = {
  "bound.ecrecoverPerSec":
    "native secp256k1 ecdsaRecover (the keepers' library) in a loop on one thread while no load runs; the median of the measurements taken at the start of the section, right before and right after each timed run of the signed floor and of discovery, and after discovery (an even count: the mean of the two middle ones)",
  "bound.ecrecoverSpread": "(largest − smallest) ÷ median of those measurements: how much the machine's speed moved during the section",
  "bound.ecrecoverSamples": "how many measurements of the recovery rate the median was taken over",
  "bound.httpHelloPerSec": "the keepers' fastify app with one empty route, child process, closed loop, same client and connections",
  "bound.signedFloorPerSec":
    `node:http with no framework, the keepers' signature check (signer checked in one worker: recovered, or verified against the key recovered from its first request; nonce in memory) and a fixed answer, child process; discovery's requests, warm-up, count, runs and time limit, same client and connections; 2xx answers per second of the median of ${TIMED_RUNS} timed runs`,
  "bound.signedFloorSpread": "(fastest − slowest) ÷ median of the signed floor's timed runs' rates",
  "bound.signedFloorCpuUsPerRequest": "server + client CPU µs per request in the signed floor's median run: what a signed request costs the machine before any framework, storage, access check or log",
  "bound.signedFloorErrors": "signed-floor requests not answered 2xx over its timed runs (should be 0)",
  "discovery.ofSignedFloor": "discovery.signedRequestsPerSec ÷ bound.signedFloorPerSec: the share of the signed floor the real discovery app reaches",
  "discovery.signedRequestsPerSec":
    `real discovery app and SQLite file in a child process; pre-signed requests from 1,000 or more distinct keys, each seen in the warm-up (so verified against its known key, not recovered: the keepers' steady state) (60% PUT /nodes/:node by registered nodes, 40% GET /nodes/:node by validators), closed loop, after a warm-up of up to ${WARM_UP_REQUESTS.toLocaleString("en-US")} such requests (within the run's time limit); ${TIMED_RUNS} timed runs of fresh requests on the same server, 2xx answers per second of the median run`,
  "discovery.spread": "(fastest − slowest) ÷ median of discovery's timed runs' rates: how much the same code moved on this machine within the section",
  "discovery.timedRuns": "timed runs of discovery (and of the signed floor); the median run gives their figures",
  "discovery.p99Ms": "99th percentile latency of the median run's requests (closed loop)",
  "master.heartbeatsPerSec": "real master app and SQLite file in a child process, 10,000 members already Healthy, signed heartbeats round robin, closed loop",
  "master.heartbeatP99Ms": "same master, heartbeats offered in open loop at 1,000/s, latency from each one's due time",
  "master.rssMBAt10kNodes": "the master child process' own RSS after 10,000 distinct nodes heartbeated (several times each)",
  "discovery.errors": "discovery requests not answered 2xx over its timed runs (should be 0: every request is one discovery accepts)",
  "discovery.serverCpuUsPerRequest": "CPU time of the discovery process (all threads) per request in the median run, µs: what a request costs whatever else runs on the machine",
  "master.heartbeatErrors": "heartbeats not answered 2xx over all master runs (should be 0)",
  "master.serverCpuUsPerHeartbeat": "CPU time of the master process (all threads) per heartbeat in the closed-loop run, µs",
  "discovery.clientCpuUsPerRequest": "CPU time of the load client's process per discovery request in the median run, µs (it shares the cores with the server)",
  "discovery.cpuCeilingPerSec":
    "cores × 1e6 ÷ (server + client CPU µs per request): what the machine could serve with every core busy at the CPU a request cost in the run; a closed loop reaches it only if neither side ever waits",
  "bound.httpHelloCpuUsPerRequest": "server + client CPU µs per empty request in the hello run: what HTTP alone costs the machine per request, before any signature, storage or log",
  "http.connections": "keep-alive connections of the load client in every run of this section (BENCH_CONNECTIONS)",
  "http.verifyWorkers": `signature worker threads of the signed-floor, discovery and master servers (BENCH_VERIFY_WORKERS; the keepers' default is ${DEFAULT_VERIFY_WORKERS})`,
  "http.maxBatch": `most recoveries per message to a signature worker (BENCH_MAX_BATCH; the keepers' default is ${DEFAULT_MAX_BATCH})`,
  "master.cpuCeilingPerSec": "the same ceiling for the master's heartbeats (cores × 1e6 ÷ (server + client CPU µs per heartbeat))",
};

const HERE = path.dirname(fileURLToPath(import.meta.url));
/**
 * Keep-alive connections of the load client. A closed loop measures a server's capacity only if adding
 * connections no longer adds throughput: discovery (alternate runs of 40,000 requests) served 8,600–10,300
 * requests a second with 64, 9,800–10,200 with 128 and 9,900–10,800 with 256, so 64 left the server idle
 * between turns. 128 is where it levels off (a discovery of thousands of nodes holds more connections than
 * that); the closed loop's latency grows with it (p99 ~15 ms with 64, ~30 ms with 128: requests queue).
 */
const CONNECTIONS_DEFAULT = 128;
const CONNECTIONS = integerSetting("BENCH_CONNECTIONS", CONNECTIONS_DEFAULT, 1);
/** Signature worker threads of the servers (the keepers' default, or BENCH_VERIFY_WORKERS). */
const VERIFY_WORKERS = integerSetting("BENCH_VERIFY_WORKERS", DEFAULT_VERIFY_WORKERS, 0);
/** Cores of the machine the server and the load client share. */
const CORES = os.availableParallelism();

function log(text: string): void {
  process.stderr.write(`[http] ${text}\n`);
}

// ------------------------------------------------------------------ child servers

interface Child {
  url: string;
  pid: number;
  facts: Record<string, unknown>;
  memory(): Promise<{ rss: number; heapUsed: number; cpuUs: number }>;
  /** Starts the server's CPU profiler, or stops it and writes the profile to `file`. */
  profile(file: string): Promise<void>;
  stop(): Promise<void>;
}

async function startServer(setup: ServerSetup): Promise<Child> {
  const execArgv = ["--import", import.meta.resolve("tsx")];
  // BENCH_CPU_PROF=<dir>: profile the server process (node --cpu-prof), one .cpuprofile per child.
  if (process.env.BENCH_CPU_PROF) execArgv.push("--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`);
  const child: ChildProcess = fork(path.join(HERE, "..", "lib", "serve.ts"), [], { execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const ask = <T>(message: Record<string, unknown>, answer: string, timeoutMs = 60_000): Promise<T> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`benchmark server: no ${answer} within ${timeoutMs} ms`)), timeoutMs);
      const onMessage = (m: { type: string; error?: string }) => {
        if (m.type === answer) done(undefined, m as T);
        else if (m.type === "error") done(new Error(`benchmark server: ${m.error}`));
      };
      const onExit = (code: number | null) => done(new Error(`benchmark server exited (${code}) before its ${answer}`));
      const done = (error?: Error, value?: T) => {
        clearTimeout(timer);
        child.off("message", onMessage);
        child.off("exit", onExit);
        if (error) reject(error);
        else resolve(value!);
      };
      child.on("message", onMessage);
      child.once("exit", onExit);
      child.send(message);
    });
  try {
    const ready = await ask<{ url: string; facts: Record<string, unknown> }>({ type: "start", setup }, "ready", 120_000);
    return {
      url: ready.url,
      pid: child.pid!,
      facts: ready.facts,
      memory: () => ask({ type: "memory" }, "memory"),
      profile: (file) => ask({ type: "profile", file }, "profile"),
      stop: () =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
          child.once("exit", () => {
            clearTimeout(timer);
            resolve();
          });
          child.send({ type: "stop" });
        }),
    };
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
}

/** A load run, with the CPU time per answered request of the server process (all its threads) and of the client, µs. */
export type Measured = LoadResult & { serverCpuUsPerRequest: number; clientCpuUsPerRequest: number };

async function measured(server: Child, load: () => Promise<LoadResult>): Promise<Measured> {
  // BENCH_PROFILE=<dir>: the server's CPU profile of the timed run only (no start-up, no warm-up).
  const profileDir = process.env.BENCH_PROFILE;
  if (profileDir) await server.profile("");
  const threadsBefore = integerSetting("BENCH_THREADS", 0, 0) > 0 ? threadTicks(server.pid) : undefined;
  const before = (await server.memory()).cpuUs;
  const result = await load();
  const after = (await server.memory()).cpuUs;
  if (threadsBefore) logThreads(String(server.facts.kind), threadsBefore, threadTicks(server.pid), result.durationMs);
  if (profileDir) await server.profile(path.join(profileDir, `${String(server.facts.kind)}-${Date.now()}.cpuprofile`));
  const requests = Math.max(1, result.count);
  return {
    ...result,
    serverCpuUsPerRequest: Math.round((after - before) / requests),
    clientCpuUsPerRequest: Math.round((result.clientCpuPct / 100) * result.durationMs * 1000 / requests),
  };
}

/** CPU ticks (user + system, 1/100 s) of each thread of process `pid`, by "tid name" (Linux /proc; the main thread is "event loop"). */
function threadTicks(pid: number): Map<string, number> {
  const ticks = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "latin1");
      const close = stat.lastIndexOf(")");
      const fields = stat.slice(close + 2).split(" ");
      const name = tid === String(pid) ? "event loop" : stat.slice(stat.indexOf("(") + 1, close);
      ticks.set(`${tid} ${name}`, Number(fields[11]) + Number(fields[12]));
    } catch {
      // the thread ended meanwhile
    }
  }
  return ticks;
}

/** BENCH_THREADS=1: each server thread's CPU during a timed run, % of one core, on stderr. */
function logThreads(kind: string, before: Map<string, number>, after: Map<string, number>, durationMs: number): void {
  const busy = [...after]
    .map(([thread, t]) => [thread, ((t - (before.get(thread) ?? 0)) * 10 * 100) / durationMs] as const)
    .filter(([, pct]) => pct >= 0.5)
    .sort((a, b) => b[1] - a[1]);
  log(`${kind} threads: ${busy.map(([thread, pct]) => `${thread} ${pct.toFixed(0)}%`).join(", ")}`);
}

/**
 * Requests per second the machine could serve if server and client kept all its cores busy, at the CPU each
 * request cost in the run (server + client): the ceiling of a closed-loop run on this machine.
 */
function cpuCeilingPerSec(run: Measured): number {
  return Math.round((CORES * 1e6) / Math.max(1, run.serverCpuUsPerRequest + run.clientCpuUsPerRequest));
}

// ------------------------------------------------------------------ bounds

function ecrecoverPerSec(durationMs: number): number {
  const key = newNodeKey();
  const digest = eip191Digest(canonicalRequest({ chainId: 1, audience: "discovery", method: "GET", path: "/", query: "", body: "", timestamp: 1, nonce: "0".repeat(32) }));
  const { signature, recid } = secp256k1.ecdsaSign(digest, key.privateKey);
  for (let i = 0; i < 500; i++) secp256k1.ecdsaRecover(signature, recid, digest, false);
  let done = 0;
  const started = performance.now();
  let elapsed = 0;
  while (elapsed < durationMs) {
    for (let i = 0; i < 500; i++) secp256k1.ecdsaRecover(signature, recid, digest, false);
    done += 500;
    elapsed = performance.now() - started;
  }
  return Math.round((done / elapsed) * 1000);
}

async function helloPerSec(durationMs: number): Promise<Measured> {
  const server = await startServer({ kind: "hello" });
  try {
    const hello: PreparedRequest = { method: "GET", path: "/hello", headers: {} };
    await runLoad({ url: server.url, requests: () => hello, connections: CONNECTIONS, count: 5_000, durationMs: 2_000 }); // warm-up
    return await measured(server, () => runLoad({ url: server.url, requests: () => hello, connections: CONNECTIONS, durationMs }));
  } finally {
    await server.stop();
  }
}

// ------------------------------------------------------------------ discovery

/** Discovery's signed request mix: keys taken in turn, writes and reads each from their own list. */
interface DiscoveryMix {
  nodes: NodeKey[];
  validators: NodeKey[];
  master: NodeKey;
  /** Each node's first upload (the reads then find an endpoint). */
  uploads(): PreparedRequest[];
  /** `count` fresh requests: 60% PUT /nodes/:node by the node itself, 40% GET /nodes/:node by a validator. */
  sign(count: number): PreparedRequest[];
}

/** Keys for `requests` requests; each key stays well within discovery's default 120 signed requests a minute. */
function discoveryMix(requests: number): DiscoveryMix {
  const nodes = Array.from({ length: Math.max(500, Math.ceil((requests * 0.6) / 60)) }, newNodeKey);
  const validators = Array.from({ length: Math.max(200, Math.ceil((requests * 0.4) / 60)) }, newNodeKey);
  const common = { chainId: BENCH_CHAIN_ID, audience: "discovery" };
  let writes = 0;
  let reads = 0;
  return {
    nodes,
    validators,
    master: newNodeKey(),
    uploads: () => nodes.map((node) => presign(node, { ...common, method: "PUT", path: `/nodes/${node.address}`, body: { endpoint: "http://node.bench.invalid:8800" } })),
    sign: (count) =>
      Array.from({ length: count }, (_, i) => {
        if (i % 5 < 3) {
          const node = nodes[writes++ % nodes.length];
          return presign(node, { ...common, method: "PUT", path: `/nodes/${node.address}`, body: { endpoint: `http://node-${i}.bench.invalid:8800` } });
        }
        const reader = validators[reads++ % validators.length];
        return presign(reader, { ...common, method: "GET", path: `/nodes/${nodes[(i * 7) % nodes.length].address}` });
      }),
  };
}

/** The median of the values: the middle one, or the mean of the two middle ones of an even count. */
export function median(values: number[]): number {
  if (values.length === 0) throw new Error("median of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** The run of median rate (2xx answers per second) of an odd number of runs. */
export function medianRun(runs: Measured[]): Measured {
  if (runs.length % 2 === 0) throw new Error(`medianRun needs an odd number of runs, got ${runs.length}`);
  const rate = median(runs.map((run) => run.ok / run.durationMs));
  return runs.find((run) => run.ok / run.durationMs === rate)!;
}

/** 2xx answers per second of a run. */
function okPerSec(run: LoadResult): number {
  return Math.round((run.ok / run.durationMs) * 1000);
}

/** (largest − smallest) ÷ median of the values, two decimals. */
export function spread(values: number[]): number {
  const middle = median(values);
  return Math.round(((Math.max(...values) - Math.min(...values)) / Math.max(1e-9, middle)) * 100) / 100;
}

/**
 * WARM_UP_REQUESTS requests of the mix (or as many as `maxMs` allows), closed loop, before the timed runs:
 * V8 compiles the hot paths once they have run a few thousand times, on its background threads. Timed from
 * a cold start, a run of a few seconds measures that compilation and the slower code before it, not the
 * server a keeper is after running a while. Every warm-up request must be answered 2xx (a refused one would
 * mean the timed runs are wrong too).
 */
async function warm(server: Child, mix: DiscoveryMix, maxMs: number, name: string): Promise<void> {
  log(`${name}: warm-up, ${WARM_UP_REQUESTS} requests (at most ${maxMs} ms)`);
  const result = await runLoad({ url: server.url, requests: mix.sign(WARM_UP_REQUESTS), connections: CONNECTIONS, durationMs: maxMs });
  if (result.errors > 0) throw new Error(`${name}: ${result.errors} warm-up requests failed: ${JSON.stringify(result.statuses)}`);
}

/** How a server is driven with discovery's mix after its warm-up. */
export interface MixRunOptions {
  /** Timed runs, each of fresh requests. */
  repeats: number;
  /** Called right before and right after each timed run (a measurement of the machine, while no load runs). */
  bracket: () => void;
}

/**
 * Starts the server `setup` describes for the mix, stores every node's endpoint (the reads then find one: a
 * 404 would count as an error), warms it up, then times `repeats` closed-loop runs of `requests` requests
 * (each run's requests signed before it, each run bounded by `maxMs`); stops it.
 */
async function runMix(
  name: string,
  setup: (mix: DiscoveryMix) => ServerSetup,
  requests: number,
  maxMs: number,
  { repeats, bracket }: MixRunOptions,
): Promise<Measured[]> {
  const mix = discoveryMix(requests * repeats + WARM_UP_REQUESTS);
  const server = await startServer(setup(mix));
  try {
    const uploads = await runLoad({ url: server.url, requests: mix.uploads(), connections: CONNECTIONS });
    if (uploads.errors > 0) throw new Error(`${name}: ${uploads.errors} first uploads failed: ${JSON.stringify(uploads.statuses)}`);
    await warm(server, mix, maxMs, name);
    const runs: Measured[] = [];
    for (let i = 1; i <= repeats; i++) {
      log(`${name}: run ${i} of ${repeats}, signing ${requests} requests from ${mix.nodes.length} nodes and ${mix.validators.length} validators`);
      const signed = mix.sign(requests);
      bracket();
      runs.push(await measured(server, () => runLoad({ url: server.url, requests: signed, connections: CONNECTIONS, durationMs: maxMs })));
      bracket();
    }
    return runs;
  } finally {
    await server.stop();
  }
}

/** Requests in closed loop against the real discovery app. */
export function discovery(dataDir: string, requests: number, maxMs: number, options: MixRunOptions): Promise<Measured[]> {
  return runMix(
    "discovery",
    (mix) => ({
      kind: "discovery",
      dataDir,
      verifyWorkers: VERIFY_WORKERS,
      validators: mix.validators.map((k) => k.address),
      nodes: mix.nodes.map((k) => k.address),
      master: mix.master.address,
      runNodes: mix.nodes.slice(0, 100).map((k) => k.address),
    }),
    requests,
    maxMs,
    options,
  );
}

/**
 * The same requests, as many and as long, against the signed floor: node:http and the keepers' signature
 * check (in one worker, as discovery) answering every request, nothing else.
 */
export function signedFloor(requests: number, maxMs: number, options: MixRunOptions): Promise<Measured[]> {
  return runMix("signed floor", () => ({ kind: "signed-floor", verifyWorkers: VERIFY_WORKERS }), requests, maxMs, options);
}

// ------------------------------------------------------------------ master

interface MasterFigures {
  warmUp: LoadResult;
  throughput: Measured;
  openLoop: LoadResult;
  rssMB: number;
}

export async function master(
  dataDir: string,
  members: number,
  throughputRequests: number,
  throughputMaxMs: number,
  openLoopMs: number,
  verifyWorkers = VERIFY_WORKERS,
): Promise<MasterFigures> {
  const masterWallet = Wallet.createRandom();
  const audience = masterWallet.address.toLowerCase();
  log(`master: ${members} node keys`);
  const keys: NodeKey[] = Array.from({ length: members }, newNodeKey);
  const server = await startServer({ kind: "master", dataDir, verifyWorkers, masterKey: masterWallet.privateKey, members: keys.map((k) => k.address) });
  try {
    const heartbeat = (key: NodeKey): PreparedRequest =>
      presign(key, {
        chainId: BENCH_CHAIN_ID,
        audience,
        method: "POST",
        path: "/heartbeat",
        body: { runId: BENCH_RUN_ID.toString(), node: key.address, tasks: [], sentAt: new Date().toISOString() },
      });
    // Every member's first heartbeat (Invited → Healthy: a state change, logged and saved at once).
    log(`master: first heartbeat of ${members} nodes`);
    const warmUp = await runLoad({ url: server.url, requests: keys.map(heartbeat), connections: CONNECTIONS });
    log(`master: signing ${throughputRequests} heartbeats`);
    const steady = Array.from({ length: throughputRequests }, (_, i) => heartbeat(keys[i % members]));
    const throughput = await measured(server, () => runLoad({ url: server.url, requests: steady, connections: CONNECTIONS, durationMs: throughputMaxMs }));
    const offered = Math.ceil(openLoopMs / 1000) * 1000;
    const paced = Array.from({ length: offered }, (_, i) => heartbeat(keys[(i * 13) % members]));
    const openLoop = await runLoad({ url: server.url, requests: paced, connections: CONNECTIONS, ratePerSec: 1000, durationMs: openLoopMs + 1_000 });
    const { rss } = await server.memory();
    return { warmUp, throughput, openLoop, rssMB: Math.round((rss / 1024 / 1024) * 10) / 10 };
  } finally {
    await server.stop();
  }
}

// ------------------------------------------------------------------ section

export async function run(opts: { quick: boolean }): Promise<Record<string, number>> {
  const { quick } = opts;
  // Checked before any run (the servers read it too): a bad value fails here, not minutes in.
  const maxBatch = benchMaxBatch();
  const dir = mkdtempSync(path.join(os.tmpdir(), "cn-bench-http-"));
  try {
    // The recovery rate: at the start, right before and after every timed run of the signed floor and
    // discovery (while no load runs), and after discovery; the median is the bound.
    const recoveryMs = quick ? 1_000 : 3_000;
    const bracketMs = quick ? 500 : 1_000;
    const recoveries = [ecrecoverPerSec(recoveryMs)];
    log(`ecrecover: ${recoveries[0]}/s`);
    const bracket = () => void recoveries.push(ecrecoverPerSec(bracketMs));
    const hello = await helloPerSec(quick ? 3_000 : 8_000);
    log(`hello: ${JSON.stringify(hello)}`);
    // Bounded by count and by time (the time limits of --quick's runs add up to about 75 s; the whole
    // --quick bench must stay under 5 minutes on two cores). Each timed run is long enough for a few seconds
    // of load at the target's rate (a run of a second or two measures its own start: fresh connections, the
    // client's first turns); three of them, and the median run is the figure.
    const discoveryRequests = quick ? 40_000 : 80_000;
    const discoveryMaxMs = quick ? 6_000 : 25_000;
    const floorRuns = await signedFloor(discoveryRequests, discoveryMaxMs, { bracket, repeats: TIMED_RUNS });
    for (const run of floorRuns) log(`signed floor: ${JSON.stringify(run)}`);
    const discRuns = await discovery(path.join(dir, "discovery"), discoveryRequests, discoveryMaxMs, { bracket, repeats: TIMED_RUNS });
    for (const run of discRuns) log(`discovery: ${JSON.stringify(run)}`);
    recoveries.push(ecrecoverPerSec(recoveryMs));
    const floor = medianRun(floorRuns);
    const disc = medianRun(discRuns);
    const ecrecover = Math.round(median(recoveries));
    log(`ecrecover: ${recoveries.join(", ")}/s, median ${ecrecover}/s`);
    const m = await master(path.join(dir, "master"), 10_000, quick ? 20_000 : 60_000, quick ? 8_000 : 20_000, quick ? 5_000 : 15_000);
    log(`master: warm-up ${JSON.stringify(m.warmUp)}`);
    log(`master: throughput ${JSON.stringify(m.throughput)}`);
    log(`master: open loop ${JSON.stringify(m.openLoop)}`);
    return {
      "bound.ecrecoverPerSec": ecrecover,
      "bound.ecrecoverSpread": spread(recoveries),
      "bound.ecrecoverSamples": recoveries.length,
      "bound.httpHelloPerSec": hello.perSec,
      "bound.signedFloorPerSec": okPerSec(floor),
      "bound.signedFloorSpread": spread(floorRuns.map(okPerSec)),
      "bound.signedFloorCpuUsPerRequest": floor.serverCpuUsPerRequest + floor.clientCpuUsPerRequest,
      "bound.signedFloorErrors": floorRuns.reduce((sum, run) => sum + run.errors, 0),
      "discovery.signedRequestsPerSec": okPerSec(disc),
      "discovery.spread": spread(discRuns.map(okPerSec)),
      "discovery.timedRuns": discRuns.length,
      "discovery.p99Ms": disc.p99Ms,
      "discovery.errors": discRuns.reduce((sum, run) => sum + run.errors, 0),
      "discovery.ofSignedFloor": Math.round((disc.ok / disc.durationMs / Math.max(1e-9, floor.ok / floor.durationMs)) * 100) / 100,
      "discovery.serverCpuUsPerRequest": disc.serverCpuUsPerRequest,
      "discovery.clientCpuUsPerRequest": disc.clientCpuUsPerRequest,
      "discovery.cpuCeilingPerSec": cpuCeilingPerSec(disc),
      "bound.httpHelloCpuUsPerRequest": hello.serverCpuUsPerRequest + hello.clientCpuUsPerRequest,
      "master.heartbeatsPerSec": Math.round((m.throughput.ok / m.throughput.durationMs) * 1000),
      "master.heartbeatP99Ms": m.openLoop.p99Ms,
      "master.heartbeatErrors": m.warmUp.errors + m.throughput.errors + m.openLoop.errors,
      "master.serverCpuUsPerHeartbeat": m.throughput.serverCpuUsPerRequest,
      "master.cpuCeilingPerSec": cpuCeilingPerSec(m.throughput),
      "master.rssMBAt10kNodes": m.rssMB,
      "http.connections": CONNECTIONS,
      "http.verifyWorkers": VERIFY_WORKERS,
      "http.maxBatch": maxBatch,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const figures = await run({ quick: process.argv.includes("--quick") });
  console.log(JSON.stringify(figures, null, 2));
}
