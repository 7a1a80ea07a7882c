/**
 * The Proof-of-Compute engine (seed 000, Gonka's "PoW 2.0"): a seeded, transformer-like computation that
 * every node runs in an epoch's PoC window, the Merkle commitment of the valid nonces it found, and the
 * validator's side (sampling, recomputation, a statistical verdict). Pure functions: no I/O, no clock but
 * the one `runPoc` needs to stop at its deadline.
 *
 * The puzzle. The epoch's PoC beacon (EpochManager) seeds a model of `layers` dim×dim weight matrices. For a
 * nonce, a node derives an input vector from (beacon, node address, nonce), runs it through the model and
 * normalises the output to unit length; the nonce is valid when the output lies within Euclidean distance
 * `rTarget` of a target unit vector derived from the beacon. Nothing predicts which nonces are valid short
 * of running the model, so the number of valid nonces a node finds in the window measures the compute it
 * spent; the address in the input makes every node's nonces its own (none can be copied from another).
 *
 * Exact definition (must be bit-identical in any implementation; every step is IEEE 754 double arithmetic
 * with round-to-nearest, which JavaScript mandates for + − × ÷ and Math.sqrt; no Math.exp / Math.tanh,
 * whose last bits differ between platforms):
 *   TAG(x)      = keccak256(utf8("computenet.poc.v1." + x))
 *   stream(s)   for a bytes32 s with big-endian uint32 words w0..w7: xoshiro128** (Blackman & Vigna, 2018)
 *               with state (w0^w4, w1^w5, w2^w6, w3^w7) (state (1, 0, 0, 0) if that is all zero); each
 *               output word v gives the double u = int32(v) · 2^−31 ∈ [−1, 1).
 *   weights     W_l = the first dim² values of stream(keccak256(abi.encodePacked(TAG("weights"), beacon,
 *               uint32 dim, uint32 l))) times sqrt(3 / dim), row-major (unit variance of each W_l·x entry
 *               for a unit-variance x). Layer l does not depend on `layers`: a deeper model extends a shallower.
 *   target      t = the first dim values of stream(keccak256(abi.encodePacked(TAG("target"), beacon,
 *               uint32 dim))), divided by its norm.
 *   input       x = the first dim values of stream(keccak256(abi.encodePacked(TAG("input"), beacon, address
 *               node, uint256 nonce))).
 *   layer l     y_j = Σ_k W_l[j][k]·x_k (k ascending, left to right); h_j = x_j + y_j / (1 + |y_j|) (softsign);
 *               x = LN(h): mean = (Σ_j h_j) / dim, var = (Σ_j (h_j − mean)²) / dim, x_j = (h_j − mean) /
 *               sqrt(var + 1e-5) (sums in index order).
 *   output      o = x / sqrt(Σ_j x_j²); distance = sqrt(Σ_j (o_j − t_j)²); valid ⇔ distance < rTarget.
 * Another implementation (float32, a GPU, another summation order) may disagree with this one on nonces
 * whose distance lies within rounding error of rTarget. Validators tolerate such rare mismatches with a
 * binomial test (`decideVerdict`), as Gonka does (mismatch probability 5e-4, significance 1e-7).
 *
 * Default parameters (dim 256, 8 layers, rTarget 1.356), measured with `measureNoncesPerSec` (Node 22, one
 * core of a 2-core AMD EPYC VM): about 3,300 nonces/s when the machine was quiet (load ≈ 1), 900–2,100
 * while other jobs loaded it (load 4–5); about 0.5 M multiply-adds and one keccak per nonce. (dim 256 with
 * 4 layers ran 6,000/s; dim 512 only 1,500/s with 4 layers, its 2 MB matrices leaving the cache.)
 * Valid rate: 9.7 % over 200,000 nonces of 20 beacons (10,000 each), per beacon 7.7 % to 12.0 % (the model
 * is an odd function of a symmetric input, so outputs have no mean direction for a target to align with;
 * what varies is only how spread they are along the target). All nodes of an epoch share its beacon, so
 * the rate is the same for all of them. It moves fast with rTarget (4.8 % at 1.339, 19.5 % at
 * 1.376 for dim 256): change rTarget with dim. Building the model takes 10–40 ms.
 * The Merkle tree costs 0.1–0.3 ms a leaf with OpenZeppelin's library (5,916 leaves: 1.6 s under load),
 * i.e. a few % of the PoC time at a 10 % valid rate.
 *
 * Commitment. The valid nonces, in increasing order, are the leaves `(uint256 index, uint256 nonce)` of an
 * OpenZeppelin StandardMerkleTree (what IProofOfCompute stores: its root and the count). The tree is built
 * WITHOUT sorting the leaves (`sortLeaves: false`), so leaf i sits at a position fixed by (i, count) and its
 * proof has a known length (`proofDepth`). That matters: the pair hash is commutative, so a proof alone does
 * not show where a leaf sits, and a miner could otherwise hide two leaves per index (a low and a high
 * nonce) in a larger tree and answer each query with whichever fits. With lengths checked, a binary tree
 * has no room for a second leaf at one index without dropping another (Kraft's inequality): dropped ones
 * are "missing" when asked for.
 *
 * Verification. A validator samples leaves from a secret the miner cannot predict (`sampleIndices`),
 * fetches them with proofs, and checks each sampled leaf i: its proof (and its length); that its nonce is
 * valid (recomputed); that leaf i + 1 holds a larger nonce (a list padded with duplicates shows it); and,
 * given the commitment's count and the leaves of `leavesToFetch`, that its nonce sorts correctly against
 * every leaf a binary search for it visits (the spot-checker of Ergün, Kannan, Kumar, Rubinfeld and
 * Viswanathan, "Spot-checkers", 2000). Why the last: neighbours miss a list that repeats a sorted run
 * (v1..vK, v1..vK has one descent in 2K leaves) and a "staircase" of overlapping runs; comparing all the
 * fetched leaves with each other (also done) catches those only while the list is short, since samples
 * from two overlapping runs rarely meet once K is large. The indices that pass the binary-search check
 * always form an increasing sequence (two of them are separated by the leaf where their searches part), so
 * a commitment where a share ε of the leaves is out of place passes 200 samples with probability at most
 * (1 − ε)^200: what passes is, but for a share the sample may miss, a strictly increasing list of distinct
 * valid nonces, as many as it claims. Missing leaves, proofs and order are hard failures (integer facts,
 * no float question); only distances go to the binomial test. Cost: about 200 · (log2(count) − 7.5)
 * fetched leaves for count ≫ 200 (measured: 1,015 for 6,000 leaves, 1,802 for 100,000; the tops of the
 * searches are shared) and 200 recomputed nonces.
 */
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { AbiCoder, concat, getAddress, getBytes, isAddress, keccak256, solidityPackedKeccak256, toUtf8Bytes } from "ethers";
import { z } from "zod";
import { canonicalJson } from "./canonical-json.js";

/** Domain of every hash this module defines; bump it with any change to the puzzle or the commitment. */
export const POC_DOMAIN = "computenet.poc.v1";

export interface PocParams {
  /** Width of the model: a multiple of 4 in [8, 2048]. */
  dim: number;
  /** Number of layers, in [1, 64]. */
  layers: number;
  /** A nonce is valid when its output's distance to the target is below this, in (0, 2). */
  rTarget: number;
  /** Nonces `runPoc` computes between two looks at the clock, in [1, 65536] (default 16). */
  batch?: number;
}

/** See the header for the measured speed and valid rate. Every node of a network must use the same. */
export const DEFAULT_POC_PARAMS: Readonly<Required<PocParams>> = Object.freeze({ dim: 256, layers: 8, rTarget: 1.356, batch: 16 });

/** Gonka's figures: a float mismatch rate honest nodes may show, and the test's false-rejection bound. */
export const DEFAULT_MISMATCH_PROBABILITY = 5e-4;
export const DEFAULT_SIGNIFICANCE = 1e-7;
export const DEFAULT_SAMPLE_SIZE = 200;

const LN_EPSILON = 1e-5;
const TWO_POW_MINUS_31 = 2 ** -31;
const TWO_POW_32 = 2 ** 32;
const BYTES32 = /^0x[0-9a-fA-F]{64}$/;
const MAX_UINT256 = (1n << 256n) - 1n;
/** runPoc counts nonces in doubles: it stops this far below 2^53 so that every nonce stays exact. */
const MAX_LOOP_NONCE = Number.MAX_SAFE_INTEGER - 2 ** 32;

const abi = AbiCoder.defaultAbiCoder();
const tag = (name: string): string => keccak256(toUtf8Bytes(`${POC_DOMAIN}.${name}`));
const TAG_WEIGHTS = tag("weights");
const TAG_TARGET = tag("target");
const TAG_INPUT = tag("input");
const TAG_SAMPLE = tag("sample");
const TAG_SEED = tag("seed");
const LEAF_ENCODING = ["uint256", "uint256"];

const paramsSchema = z.object({
  dim: z
    .number()
    .int()
    .min(8)
    .max(2048)
    .refine((d) => d % 4 === 0, "must be a multiple of 4"),
  layers: z.number().int().min(1).max(64),
  rTarget: z.number().gt(0).lt(2),
  batch: z.number().int().min(1).max(65536).optional(),
});

/**
 * Checks PoC parameters (missing fields take the defaults) and returns them complete. Throws an Error whose
 * message names the bad field: `dim` must be a multiple of 4 in [8, 2048] (the kernel computes 4 rows at a
 * time), `layers` in [1, 64], `rTarget` in (0, 2) (two unit vectors are at most 2 apart), `batch` in [1, 65536].
 */
export function validatePocParams(value: Partial<PocParams> = {}): Required<PocParams> {
  const parsed = paramsSchema.safeParse({ ...DEFAULT_POC_PARAMS, ...value });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`PoC params ${issue.path.map(String).join(".") || "value"}: ${issue.message}`);
  }
  return { batch: DEFAULT_POC_PARAMS.batch, ...parsed.data };
}

// --- the deterministic stream ------------------------------------------------------------------------

/** xoshiro128** over 32-bit integers (Math.imul, shifts): the header's `stream`. */
class Stream {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: string) {
    const w = (i: number) => Number.parseInt(seed.slice(2 + 8 * i, 10 + 8 * i), 16);
    this.s0 = (w(0) ^ w(4)) | 0;
    this.s1 = (w(1) ^ w(5)) | 0;
    this.s2 = (w(2) ^ w(6)) | 0;
    this.s3 = (w(3) ^ w(7)) | 0;
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** The next output as an int32. */
  next(): number {
    const s1 = this.s1;
    const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9);
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return r | 0;
  }

  /** out[i] = u_i · scale for the next out.length values u ∈ [−1, 1). */
  fill(out: Float64Array, scale = 1): Float64Array {
    for (let i = 0; i < out.length; i++) out[i] = this.next() * TWO_POW_MINUS_31 * scale;
    return out;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

// --- the model ---------------------------------------------------------------------------------------

export interface PocModel {
  readonly beacon: string;
  readonly params: Readonly<Required<PocParams>>;
  /** Row-major dim×dim weights, one matrix per layer. */
  readonly weights: readonly Float64Array[];
  /** The target, unit length. */
  readonly target: Float64Array;
  /** Scratch vectors and the input preimage, reused by every computeNonce on this model (one thread). */
  readonly scratch: { x: Float64Array; h: Float64Array; preimage: Uint8Array; node: string };
}

/** The epoch's model (weights and target) from its PoC beacon: build it once per epoch (~10 ms at defaults). */
export function buildModel(beacon: string, params: Partial<PocParams> = DEFAULT_POC_PARAMS): PocModel {
  if (typeof beacon !== "string" || !BYTES32.test(beacon)) throw new Error("PoC beacon: must be 0x-prefixed 32-byte hex");
  const p = validatePocParams(params);
  const scale = Math.sqrt(3 / p.dim);
  const weights: Float64Array[] = [];
  for (let l = 0; l < p.layers; l++) {
    const seed = solidityPackedKeccak256(["bytes32", "bytes32", "uint32", "uint32"], [TAG_WEIGHTS, beacon, p.dim, l]);
    weights.push(new Stream(seed).fill(new Float64Array(p.dim * p.dim), scale));
  }
  const target = new Stream(solidityPackedKeccak256(["bytes32", "bytes32", "uint32"], [TAG_TARGET, beacon, p.dim])).fill(
    new Float64Array(p.dim),
  );
  normalise(target);
  // The input preimage: TAG("input") ‖ beacon ‖ node (20 bytes) ‖ nonce (32 bytes), node and nonce filled per call.
  const preimage = new Uint8Array(32 + 32 + 20 + 32);
  preimage.set(getBytes(TAG_INPUT), 0);
  preimage.set(getBytes(beacon), 32);
  return Object.freeze({
    beacon: beacon.toLowerCase(),
    params: Object.freeze(p),
    weights: Object.freeze(weights),
    target,
    scratch: { x: new Float64Array(p.dim), h: new Float64Array(p.dim), preimage, node: "" },
  });
}

export interface NonceResult {
  distance: number;
  valid: boolean;
}

/**
 * Runs one nonce of `node` through the model. `nonce` is a uint256 (number or bigint). Throws on a bad
 * address or nonce (a validator checks hostile values before: see checkSample).
 */
export function computeNonce(model: PocModel, node: string, nonce: bigint | number): NonceResult {
  setNode(model, node);
  writeNonce(model.scratch.preimage, nonce);
  return forward(model);
}

function setNode(model: PocModel, node: string): void {
  if (node === model.scratch.node) return;
  if (typeof node !== "string" || !isAddress(node)) throw new Error(`PoC node: ${String(node)} is not an address`);
  model.scratch.preimage.set(getBytes(getAddress(node)), 64);
  model.scratch.node = node;
}

/** Writes a uint256 nonce big-endian into the last 32 bytes of the preimage. */
function writeNonce(preimage: Uint8Array, nonce: bigint | number): void {
  const offset = preimage.length - 32;
  if (typeof nonce === "number") {
    if (!Number.isSafeInteger(nonce) || nonce < 0) throw new RangeError(`PoC nonce: ${nonce} is not a non-negative safe integer`);
    preimage.fill(0, offset, offset + 24);
    const high = Math.floor(nonce / TWO_POW_32);
    const low = nonce >>> 0;
    for (let i = 0; i < 4; i++) {
      preimage[offset + 27 - i] = (high >>> (8 * i)) & 0xff;
      preimage[offset + 31 - i] = (low >>> (8 * i)) & 0xff;
    }
    return;
  }
  if (typeof nonce !== "bigint" || nonce < 0n || nonce > MAX_UINT256) throw new RangeError(`PoC nonce: ${String(nonce)} is not a uint256`);
  let rest = nonce;
  for (let i = 31; i >= 0; i--) {
    preimage[offset + i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
}

/** The header's forward pass, on the preimage already in the scratch space. */
function forward(model: PocModel): NonceResult {
  const { dim, layers, rTarget } = model.params;
  const { x, h, preimage } = model.scratch;
  new Stream(keccak256(preimage)).fill(x);
  for (let l = 0; l < layers; l++) {
    const w = model.weights[l];
    // Four rows at a time read x once per k; each row's sum still runs over k in ascending order.
    for (let j = 0; j < dim; j += 4) {
      const r0 = j * dim;
      const r1 = r0 + dim;
      const r2 = r1 + dim;
      const r3 = r2 + dim;
      let y0 = 0;
      let y1 = 0;
      let y2 = 0;
      let y3 = 0;
      for (let k = 0; k < dim; k++) {
        const xk = x[k];
        y0 += w[r0 + k] * xk;
        y1 += w[r1 + k] * xk;
        y2 += w[r2 + k] * xk;
        y3 += w[r3 + k] * xk;
      }
      h[j] = x[j] + y0 / (1 + Math.abs(y0));
      h[j + 1] = x[j + 1] + y1 / (1 + Math.abs(y1));
      h[j + 2] = x[j + 2] + y2 / (1 + Math.abs(y2));
      h[j + 3] = x[j + 3] + y3 / (1 + Math.abs(y3));
    }
    let sum = 0;
    for (let j = 0; j < dim; j++) sum += h[j];
    const mean = sum / dim;
    let squares = 0;
    for (let j = 0; j < dim; j++) {
      const d = h[j] - mean;
      squares += d * d;
    }
    const sd = Math.sqrt(squares / dim + LN_EPSILON);
    for (let j = 0; j < dim; j++) x[j] = (h[j] - mean) / sd;
  }
  normalise(x);
  const t = model.target;
  let squared = 0;
  for (let j = 0; j < dim; j++) {
    const d = x[j] - t[j];
    squared += d * d;
  }
  const distance = Math.sqrt(squared);
  return { distance, valid: distance < rTarget };
}

function normalise(v: Float64Array): void {
  let squares = 0;
  for (let j = 0; j < v.length; j++) squares += v[j] * v[j];
  const norm = Math.sqrt(squares);
  for (let j = 0; j < v.length; j++) v[j] /= norm;
}

// --- mining ------------------------------------------------------------------------------------------

export interface PocProgress {
  tried: number;
  valid: number;
  nextNonce: bigint;
  elapsedMs: number;
  busyMs: number;
}

export interface RunPocOptions {
  model: PocModel;
  node: string;
  /** First nonce to try (default 0); a restarted miner resumes past the nonces it already has. */
  startNonce?: bigint | number;
  /** Wall-clock time (ms since the epoch, as Date.now) at which to stop. */
  deadline: number;
  /** Stop after trying this many nonces. */
  maxNonces?: number;
  /** Polled between slices; true stops the run (shutdown). */
  shouldStop?: () => boolean;
  /** Called after every slice. */
  onProgress?: (progress: PocProgress) => void;
  /** Compute slice between two yields to the event loop, in ms (default 20). */
  yieldEveryMs?: number;
  /**
   * FAKE, for tests and the devnet only: the share of wall time spent computing, in (0, 1] (default 1).
   * A GPU cannot exist here, so machines of different speeds are emulated by sleeping (1 − throttle) of the
   * time: a throttle of 0.25 tries about a quarter of the nonces of a full-speed run on the same core.
   */
  throttle?: number;
}

export interface PocRunResult {
  /** Valid nonces found, increasing. */
  valid: bigint[];
  /** Nonces tried. */
  tried: number;
  /** The first nonce not tried: where a later run continues. */
  nextNonce: bigint;
  elapsedMs: number;
  /** Time spent computing (the rest slept, by throttle, or yielded). */
  busyMs: number;
  stoppedBy: "deadline" | "maxNonces" | "stopped";
}

/**
 * Tries nonces startNonce, startNonce + 1, … until the deadline (or maxNonces, or shouldStop) and returns the
 * valid ones. It computes on the calling thread in slices of `yieldEveryMs`, yielding to the event loop
 * between slices so that timers and I/O go on, though slowed; a keeper runs it in a worker thread
 * (poc-worker.ts) so that its HTTP API and heartbeats keep their latency.
 */
export async function runPoc(options: RunPocOptions): Promise<PocRunResult> {
  const { model, node, deadline } = options;
  const batch = model.params.batch;
  const sliceMs = options.yieldEveryMs ?? 20;
  const throttle = options.throttle ?? 1;
  const maxNonces = options.maxNonces ?? Number.POSITIVE_INFINITY;
  if (!(throttle > 0 && throttle <= 1)) throw new RangeError(`PoC throttle: ${throttle} is not in (0, 1]`);
  if (!(sliceMs > 0)) throw new RangeError(`PoC yieldEveryMs: ${sliceMs} is not positive`);
  if (!Number.isFinite(deadline)) throw new RangeError("PoC deadline: must be a time in ms");
  if (!(maxNonces >= 0)) throw new RangeError(`PoC maxNonces: ${maxNonces} is negative`);
  const start = BigInt(options.startNonce ?? 0);
  if (start < 0n || start > BigInt(MAX_LOOP_NONCE)) throw new RangeError(`PoC startNonce: ${start} is not in [0, ${MAX_LOOP_NONCE}]`);
  setNode(model, node);
  let nonce = Number(start);
  const valid: bigint[] = [];
  let tried = 0;
  let busyMs = 0;
  let stoppedBy: PocRunResult["stoppedBy"] = "deadline";
  const startedAt = performance.now();
  const progress = (): PocProgress => ({
    tried,
    valid: valid.length,
    nextNonce: BigInt(nonce),
    elapsedMs: performance.now() - startedAt,
    busyMs,
  });

  for (;;) {
    if (options.shouldStop?.()) {
      stoppedBy = "stopped";
      break;
    }
    if (Date.now() >= deadline) break;
    if (tried >= maxNonces || nonce >= MAX_LOOP_NONCE) {
      stoppedBy = "maxNonces";
      break;
    }
    // Another caller may have used the model's scratch space for another node while this run yielded.
    setNode(model, node);
    const sliceStart = performance.now();
    const sliceEnd = sliceStart + sliceMs;
    let now = sliceStart;
    while (now < sliceEnd && tried < maxNonces && nonce < MAX_LOOP_NONCE) {
      const todo = Math.min(batch, maxNonces - tried);
      for (let i = 0; i < todo; i++) {
        writeNonce(model.scratch.preimage, nonce);
        if (forward(model).valid) valid.push(BigInt(nonce));
        nonce++;
        tried++;
      }
      now = performance.now();
      if (Date.now() >= deadline) break;
    }
    busyMs += now - sliceStart;
    options.onProgress?.(progress());
    // Throttle: sleep until computing time is `throttle` of the elapsed time, never past the deadline.
    const owed = busyMs / throttle - (performance.now() - startedAt);
    const sleepMs = Math.min(owed, deadline - Date.now());
    if (sleepMs >= 1) await new Promise((resolve) => setTimeout(resolve, sleepMs));
    else await new Promise((resolve) => setImmediate(resolve));
  }
  return { valid, tried, nextNonce: BigInt(nonce), elapsedMs: performance.now() - startedAt, busyMs, stoppedBy };
}

export interface PocBenchmark {
  noncesPerSec: number;
  tried: number;
  valid: number;
  validRate: number;
  elapsedMs: number;
  /** Time to derive the model from a beacon. */
  buildMs: number;
}

/**
 * Measures this machine's PoC speed: builds a model from a fixed beacon and computes nonces on the calling
 * thread (blocking it) for about `ms`. Prints nothing (`npm run bench` reports the figures).
 */
export function measureNoncesPerSec(params: Partial<PocParams> = DEFAULT_POC_PARAMS, ms = 2000): PocBenchmark {
  const built = performance.now();
  const model = buildModel(keccak256(toUtf8Bytes(`${POC_DOMAIN}.bench`)), params);
  const buildMs = performance.now() - built;
  setNode(model, "0x000000000000000000000000000000000000beef");
  const started = performance.now();
  let tried = 0;
  let valid = 0;
  let elapsed = 0;
  do {
    for (let i = 0; i < model.params.batch; i++) {
      writeNonce(model.scratch.preimage, tried);
      if (forward(model).valid) valid++;
      tried++;
    }
    elapsed = performance.now() - started;
  } while (elapsed < ms);
  return { noncesPerSec: (tried * 1000) / elapsed, tried, valid, validRate: valid / tried, elapsedMs: elapsed, buildMs };
}

// --- the commitment ----------------------------------------------------------------------------------

/** Leaves are (index, nonce) as decimal strings: exact for any uint256 and JSON-safe in dumps. */
export type PocTree = StandardMerkleTree<[string, string]>;

export interface PocCommitment {
  root: string;
  count: number;
  tree: PocTree;
}

/**
 * The Merkle tree of a node's valid nonces (increasing; leaf i = (i, nonces[i])), unsorted leaves (header).
 * Throws unless the nonces are uint256s in strictly increasing order and there is at least one.
 */
export function buildPocTree(nonces: readonly (bigint | number | string)[]): PocCommitment {
  if (nonces.length === 0) throw new Error("PoC tree: no nonces");
  const leaves: [string, string][] = [];
  let previous = -1n;
  for (let i = 0; i < nonces.length; i++) {
    const nonce = toUint256(nonces[i]);
    if (nonce === undefined) throw new RangeError(`PoC tree: nonce ${i} (${String(nonces[i])}) is not a uint256`);
    if (nonce <= previous) throw new RangeError(`PoC tree: nonce ${i} (${nonce}) does not exceed the one before (${previous})`);
    previous = nonce;
    leaves.push([String(i), nonce.toString()]);
  }
  const tree = StandardMerkleTree.of(leaves, LEAF_ENCODING, { sortLeaves: false });
  return { root: tree.root, count: leaves.length, tree };
}

export interface PocLeafProof {
  index: number;
  nonce: bigint;
  proof: string[];
}

/** The node array of each tree proofs were asked of (weakly held: it goes with its tree). */
const dumpedNodes = new WeakMap<PocTree, string[]>();

/** Leaf `index` of the tree with its proof (sibling path read from the tree's array: no rehashing). */
export function proofFor(tree: PocTree, index: number): PocLeafProof {
  const count = tree.length;
  if (!Number.isSafeInteger(index) || index < 0 || index >= count)
    throw new RangeError(`PoC proof: index ${index} is not in [0, ${count})`);
  // dump() copies the whole tree: do it once per tree, not once per proof (a verifier asks for ~1,000).
  let nodes = dumpedNodes.get(tree);
  if (!nodes) {
    nodes = tree.dump().tree;
    dumpedNodes.set(tree, nodes);
  }
  const proof: string[] = [];
  // Unsorted leaves: leaf i is at array position 2·count − 2 − i; siblings of p are p ± 1, parents (p − 1) / 2.
  for (let p = nodes.length - 1 - index; p > 0; p = (p - 1) >> 1) proof.push(nodes[p % 2 === 1 ? p + 1 : p - 1]);
  return { index, nonce: BigInt(tree.at(index)![1]), proof };
}

/** Length of a leaf's proof in an unsorted StandardMerkleTree of `count` leaves: depth of its position. */
export function proofDepth(index: number, count: number): number {
  let depth = 0;
  // Position p = 2·count − 2 − index has depth ⌊log2(p + 1)⌋, counted in integers (Math.log2 may round up).
  for (let v = 2 * count - 1 - index; v > 1; v = Math.floor(v / 2)) depth++;
  return depth;
}

/**
 * Whether (index, nonce) is a leaf under `root` with this proof (OpenZeppelin's encoding: leaf =
 * keccak256(keccak256(abi.encode(index, nonce))), pairs hashed sorted). With `count`, the proof must also
 * have the length of leaf `index` in a tree of `count` leaves. False on any malformed input, never throws.
 */
export function verifyLeaf(
  root: string,
  index: number,
  nonce: bigint | number | string,
  proof: readonly string[],
  count?: number,
): boolean {
  if (typeof root !== "string" || !BYTES32.test(root)) return false;
  if (!Number.isSafeInteger(index) || index < 0) return false;
  const value = toUint256(nonce);
  if (value === undefined || !Array.isArray(proof) || proof.length > 256) return false;
  if (count !== undefined && (!isCount(count) || index >= count || proof.length !== proofDepth(index, count))) return false;
  if (!proof.every((p) => typeof p === "string" && BYTES32.test(p))) return false;
  // Hex strings throughout (ethers' AbiCoder costs ~0.1 ms a call): abi.encode of two uint256 is their 64
  // hex digits each, and lower-case hex of equal length sorts like the numbers it spells.
  let hash = keccak256(keccak256(`0x${BigInt(index).toString(16).padStart(64, "0")}${value.toString(16).padStart(64, "0")}`));
  for (const raw of proof) {
    const sibling = raw.toLowerCase();
    hash = keccak256(hash < sibling ? `${hash}${sibling.slice(2)}` : `${sibling}${hash.slice(2)}`);
  }
  return hash === root.toLowerCase();
}

/** The nonces as a JSON-safe form (what a miner keeps to rebuild its tree after a restart). */
export function pocTreeToJson(commitment: PocCommitment): { format: string; root: string; nonces: string[] } {
  const nonces: string[] = [];
  for (const [, [, nonce]] of commitment.tree.entries()) nonces.push(nonce);
  return { format: `${POC_DOMAIN}.tree`, root: commitment.root, nonces };
}

/** Rebuilds a commitment from `pocTreeToJson`'s form; throws if the rebuilt root is not the one stored. */
export function pocTreeFromJson(data: { format: string; root: string; nonces: string[] }): PocCommitment {
  if (data?.format !== `${POC_DOMAIN}.tree` || !Array.isArray(data.nonces)) throw new Error("PoC tree: unknown format");
  const built = buildPocTree(data.nonces);
  if (built.root !== String(data.root).toLowerCase())
    throw new Error(`PoC tree: rebuilt root ${built.root} is not the stored ${data.root}`);
  return built;
}

// --- the validator's side ----------------------------------------------------------------------------

/**
 * `sampleSize` distinct leaf indices of a commitment of `count` leaves (all of them, in order, when count ≤
 * sampleSize), increasing. Deterministic from (secret, node): a partial Fisher–Yates shuffle of 0..count−1
 * whose i-th swap partner is keccak256(abi.encodePacked(TAG("sample"), secret, node, uint256 i)) mod
 * (count − i). The secret must be unknown to the miner until its root is on chain (a validator derives it
 * from its own key: `deriveSeed`); revealing it later lets anyone re-derive the sample a verdict rests on.
 */
export function sampleIndices(secret: string, node: string, count: number | bigint, sampleSize = DEFAULT_SAMPLE_SIZE): number[] {
  if (typeof secret !== "string" || !BYTES32.test(secret)) throw new Error("PoC sample secret: must be 0x-prefixed 32-byte hex");
  if (typeof node !== "string" || !isAddress(node)) throw new Error(`PoC node: ${String(node)} is not an address`);
  const n = Number(count);
  if (!isCount(n)) throw new RangeError(`PoC sample: count ${String(count)} is not a positive safe integer`);
  if (!Number.isSafeInteger(sampleSize) || sampleSize < 1) throw new RangeError(`PoC sample: size ${sampleSize} is not a positive integer`);
  if (n <= sampleSize) return Array.from({ length: n }, (_, i) => i);
  const prefix = getBytes(concat([TAG_SAMPLE, secret, getAddress(node)]));
  const preimage = new Uint8Array(prefix.length + 32);
  preimage.set(prefix);
  // Sparse Fisher–Yates: only the swapped positions are stored.
  const moved = new Map<number, number>();
  const picked: number[] = [];
  for (let i = 0; i < sampleSize; i++) {
    writeNonce(preimage, i);
    const j = i + Number(BigInt(keccak256(preimage)) % BigInt(n - i));
    const atJ = moved.get(j) ?? j;
    moved.set(j, moved.get(i) ?? i);
    picked.push(atJ);
  }
  return picked.sort((a, b) => a - b);
}

/**
 * The indices a binary search for leaf `index` visits before reaching it in a list of `count` (root first):
 * lo = 0, hi = count − 1, mid = ⌊(lo + hi) / 2⌋, go left when index < mid, right when index > mid.
 */
export function searchPath(index: number, count: number): number[] {
  if (!isCount(count) || !Number.isSafeInteger(index) || index < 0 || index >= count) {
    throw new RangeError(`PoC search path: index ${index} is not in [0, ${count})`);
  }
  const path: number[] = [];
  let lo = 0;
  let hi = count - 1;
  for (;;) {
    const mid = Math.floor((lo + hi) / 2);
    if (mid === index) return path;
    path.push(mid);
    if (index < mid) hi = mid - 1;
    else lo = mid + 1;
  }
}

/**
 * Every leaf a validator fetches for a sample: each sampled index, its successor, and the leaves of its
 * binary search (`searchPath`); increasing, without duplicates. About 200 · (log2(count) − 7.5) leaves for
 * 200 samples of a large commitment (the tops of the searches are shared; see the header).
 */
export function leavesToFetch(sampled: readonly number[], count: number): number[] {
  const wanted = new Set<number>();
  for (const i of sampled) {
    wanted.add(i);
    if (i + 1 < count) wanted.add(i + 1);
    for (const m of searchPath(i, count)) wanted.add(m);
  }
  return [...wanted].sort((a, b) => a - b);
}

/** A fetched leaf as the validator received it: untrusted, possibly absent. */
export interface FetchedLeaf {
  nonce?: bigint | number | string;
  proof?: readonly string[];
}

export interface PocSample extends FetchedLeaf {
  index: number;
  /** Leaf index + 1, when fetched. */
  next?: FetchedLeaf & { index?: number };
  /** Whether the next leaf exists (index + 1 < count): then its absence is a failure. */
  nextExpected?: boolean;
}

export type PocLeafStatus = "ok" | "missing" | "proof" | "order" | "nonce";

/** Statuses that fail a commitment whatever the binomial test says: integer facts, not float questions. */
export const HARD_FAILURES: readonly PocLeafStatus[] = ["missing", "proof", "order"];

export interface PocLeafFinding {
  index: number;
  status: PocLeafStatus;
  nonce?: string;
  /** Recomputed distance (absent when the leaf was missing or malformed). */
  distance?: number;
  detail?: string;
}

export interface CheckOptions {
  /** The commitment's count: enables proof-length checks and the binary-search checks (needs `leaves`). */
  count?: number;
  /** Every other fetched leaf by index (e.g. those of `leavesToFetch`): the binary searches' leaves. */
  leaves?: ReadonlyMap<number, FetchedLeaf>;
}

/**
 * Checks sampled leaves of `node`'s commitment `root` and returns one finding per sample, the most serious
 * first: `missing` (the leaf, its expected successor or a leaf of its search was not served), `proof` (a
 * proof fails, or has the wrong length when count is known), `order` (its nonce is not below its
 * successor's, sorts wrongly against a leaf of its binary search, or is out of order with another served
 * leaf; or two served leaves of one index differ), `nonce` (recomputed distance ≥ rTarget), `ok`. Without
 * `count` and `leaves` only the successor and the served leaves are compared: see the header for why the
 * binary searches matter.
 * Hostile input is reported, never thrown.
 */
export function checkSample(
  model: PocModel,
  node: string,
  root: string,
  samples: readonly PocSample[],
  options: CheckOptions = {},
): PocLeafFinding[] {
  const count = options.count !== undefined && isCount(options.count) ? options.count : undefined;
  // Every served leaf, verified once: index → nonce (undefined when its proof failed or it is malformed).
  const verified = new Map<number, { leaf: FetchedLeaf; value: bigint | undefined }>();
  const conflicts = new Set<number>();
  const verify = (index: number, leaf: FetchedLeaf | undefined): bigint | undefined | "missing" => {
    if (!leaf || leaf.nonce === undefined || leaf.proof === undefined) return "missing";
    const seen = verified.get(index);
    if (seen && (seen.leaf === leaf || sameLeaf(seen.leaf, leaf))) return seen.value;
    const nonce = toUint256(leaf.nonce);
    const value = nonce !== undefined && verifyLeaf(root, index, nonce, leaf.proof, count) ? nonce : undefined;
    if (!seen) verified.set(index, { leaf, value });
    else if (seen.value !== value) conflicts.add(index);
    return value;
  };

  const findings = samples.map((sample): PocLeafFinding => {
    const index = sample.index;
    if (!Number.isSafeInteger(index) || index < 0 || (count !== undefined && index >= count)) {
      return { index, status: "missing", detail: `index ${index} is not a leaf index` };
    }
    const nonce = verify(index, sample);
    if (nonce === "missing") return { index, status: "missing", detail: `leaf ${index} not served` };
    if (nonce === undefined)
      return { index, status: "proof", nonce: String(sample.nonce), detail: `leaf ${index}: proof does not verify against the root` };
    const finding: PocLeafFinding = { index, status: "ok", nonce: nonce.toString() };
    const fail = (status: PocLeafStatus, detail: string): PocLeafFinding => Object.assign(finding, { status, detail });

    const nextExpected = sample.nextExpected ?? (count !== undefined ? index + 1 < count : sample.next !== undefined);
    if (nextExpected) {
      const next = verify(index + 1, sample.next ?? options.leaves?.get(index + 1));
      if (next === "missing") return fail("missing", `leaf ${index + 1} (the successor of ${index}) not served`);
      if (next === undefined) return fail("proof", `leaf ${index + 1}: proof does not verify against the root`);
      if (next <= nonce) return fail("order", `leaf ${index}'s nonce ${nonce} is not below leaf ${index + 1}'s ${next}`);
    }
    if (count !== undefined && options.leaves) {
      for (const m of searchPath(index, count)) {
        const other = verify(m, options.leaves.get(m) ?? (m === index + 1 ? sample.next : undefined));
        if (other === "missing") return fail("missing", `leaf ${m} (on the binary search for ${index}) not served`);
        if (other === undefined) return fail("proof", `leaf ${m}: proof does not verify against the root`);
        if (m < index ? other >= nonce : other <= nonce) {
          return fail("order", `leaf ${index}'s nonce ${nonce} sorts ${m < index ? "before" : "after"} leaf ${m}'s ${other}`);
        }
      }
    }
    try {
      const result = computeNonce(model, node, nonce);
      finding.distance = result.distance;
      if (!result.valid)
        return fail("nonce", `leaf ${index}: nonce ${nonce} is at distance ${result.distance} ≥ rTarget ${model.params.rTarget}`);
    } catch (error) {
      return fail("nonce", `leaf ${index}: ${(error as Error).message}`);
    }
    return finding;
  });

  // Across everything served: one nonce per index, nonces increasing with the index.
  const known: [number, bigint][] = [];
  for (const [index, { value }] of verified) if (value !== undefined) known.push([index, value]);
  known.sort((a, b) => a[0] - b[0]);
  const disordered = new Set(conflicts);
  for (let k = 1; k < known.length; k++) {
    if (known[k][1] <= known[k - 1][1]) {
      disordered.add(known[k - 1][0]);
      disordered.add(known[k][0]);
    }
  }
  if (disordered.size > 0) {
    const related = (finding: PocLeafFinding) => {
      const involved = [finding.index, finding.index + 1];
      if (count !== undefined && finding.index < count) involved.push(...searchPath(finding.index, count));
      return involved.find((i) => disordered.has(i));
    };
    let attributed = false;
    for (const finding of findings) {
      if (HARD_FAILURES.includes(finding.status)) continue;
      const culprit = related(finding);
      if (culprit === undefined) continue;
      finding.status = "order";
      finding.detail = conflicts.has(culprit)
        ? `leaf ${culprit} was served with two different nonces`
        : `leaf ${culprit}'s nonce is out of order with another served leaf`;
      attributed = true;
    }
    // Out-of-order leaves no sample points at (extra leaves served): still a failure, pinned on the first sample.
    if (!attributed && findings.length > 0 && !findings.some((f) => HARD_FAILURES.includes(f.status))) {
      Object.assign(findings[0], { status: "order", detail: `served leaves ${[...disordered].slice(0, 4).join(", ")} are out of order` });
    }
  }
  return findings;
}

export interface VerdictOptions {
  /** Probability that an honest leaf fails only by float mismatch (default 5e-4). */
  mismatchProbability?: number;
  /** Reject when P[X ≥ failures] under that probability falls below this (default 1e-7). */
  significance?: number;
}

export interface PocVerdict {
  accepted: boolean;
  /** Leaves judged. */
  n: number;
  /** Invalid nonces (soft: the binomial test decides). */
  failures: number;
  /** Missing, proof and order failures (any one rejects). */
  hardFailures: number;
  /** P[X ≥ failures] for X ~ Binomial(n, mismatchProbability). */
  pValue: number;
  mismatchProbability: number;
  significance: number;
  /** Why, in words (the first ones when many). */
  reasons: string[];
  /** Findings that were not ok: index, status, detail. */
  failed: { index: number; status: PocLeafStatus; detail?: string }[];
}

/** Findings quoted in a verdict's reasons and failures list; the counts cover all. */
const MAX_REASONS = 8;

/**
 * A one-sided binomial test on the sampled findings: rejects when P[X ≥ failures | n, p] < significance
 * (with the defaults and 200 samples: 4 invalid nonces pass (P ≈ 2.6e-6), 5 fail (P ≈ 2.6e-8)), so a
 * rare float mismatch is tolerated and an inflated commitment is not. Any missing leaf, bad proof or
 * ordering failure rejects outright, and so does an empty sample.
 */
export function decideVerdict(findings: readonly PocLeafFinding[], options: VerdictOptions = {}): PocVerdict {
  const p = options.mismatchProbability ?? DEFAULT_MISMATCH_PROBABILITY;
  const significance = options.significance ?? DEFAULT_SIGNIFICANCE;
  if (!(p > 0 && p < 1)) throw new RangeError(`PoC verdict: mismatch probability ${p} is not in (0, 1)`);
  if (!(significance > 0 && significance < 1)) throw new RangeError(`PoC verdict: significance ${significance} is not in (0, 1)`);
  const n = findings.length;
  const hard = findings.filter((f) => HARD_FAILURES.includes(f.status));
  const soft = findings.filter((f) => f.status === "nonce");
  const pValue = binomialTail(n, soft.length, p);
  const reasons: string[] = [];
  if (n === 0) reasons.push("no leaf was sampled");
  if (hard.length > 0) {
    reasons.push(`${hard.length} of ${n} sampled leaves fail integer checks (missing, proof or order): no float mismatch explains that`);
    for (const f of hard.slice(0, MAX_REASONS)) reasons.push(`${f.status}: ${f.detail ?? `leaf ${f.index}`}`);
  }
  const test = `${soft.length} of ${n} sampled nonces invalid; P[X ≥ ${soft.length} | n = ${n}, p = ${p}] = ${pValue.toExponential(3)}`;
  reasons.push(
    pValue < significance ? `${test} < ${significance}: more than float mismatches` : `${test} ≥ ${significance}: within float mismatch`,
  );
  for (const f of soft.slice(0, MAX_REASONS)) reasons.push(`nonce: ${f.detail ?? `leaf ${f.index}`}`);
  const accepted = n > 0 && hard.length === 0 && pValue >= significance;
  const failed = findings
    .filter((f) => f.status !== "ok")
    .slice(0, 64)
    .map((f) => ({ index: f.index, status: f.status, ...(f.detail === undefined ? {} : { detail: f.detail }) }));
  return { accepted, n, failures: soft.length, hardFailures: hard.length, pValue, mismatchProbability: p, significance, reasons, failed };
}

/** P[X ≥ k] for X ~ Binomial(n, p), summed from the k-th term up (no cancellation for tiny tails). */
export function binomialTail(n: number, k: number, p: number): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  // log of the k-th term: ln C(n, k) + k ln p + (n − k) ln(1 − p)
  let logTerm = k * Math.log(p) + (n - k) * Math.log1p(-p);
  for (let i = 1; i <= k; i++) logTerm += Math.log((n - k + i) / i);
  let term = Math.exp(logTerm);
  let sum = 0;
  const ratio = p / (1 - p);
  for (let j = k; j <= n && term > 0; j++) {
    sum += term;
    if (term < sum * 1e-17) break;
    term *= ((n - j) / (j + 1)) * ratio;
  }
  return Math.min(1, sum);
}

/**
 * keccak256 of the canonical JSON of a verdict (or any evidence object): keys sorted, no spaces, bigints as
 * decimal strings, undefined fields left out. Throws on values JSON cannot carry (NaN, Infinity, functions).
 */
export function evidenceHash(evidence: unknown): string {
  return keccak256(toUtf8Bytes(canonicalJson(evidence, { bigintsAsStrings: true })));
}

// --- seeds -------------------------------------------------------------------------------------------

/**
 * The node's secret seed for `epoch`: keccak256(abi.encode(TAG("seed"), bytes32 key, uint256 chainId,
 * address contract, uint256 epoch)), where `contract` is the EpochManager (or, for another purpose such as
 * a validator's sampling secret, another contract, which gives another independent seed). A restarted node
 * derives the same seed without storing it; a revealed seed shows nothing about another epoch's or the
 * key (keccak256 preimage resistance; the key is a fixed-length field, so no length-extension question).
 */
export function deriveSeed(privateKeyOrSecret: string, chainId: bigint | number, contract: string, epoch: bigint | number): string {
  if (typeof privateKeyOrSecret !== "string" || !BYTES32.test(privateKeyOrSecret))
    throw new Error("PoC seed: the key must be 0x-prefixed 32-byte hex");
  if (typeof contract !== "string" || !isAddress(contract)) throw new Error(`PoC seed: ${String(contract)} is not an address`);
  return keccak256(
    abi.encode(["bytes32", "bytes32", "uint256", "address", "uint256"], [TAG_SEED, privateKeyOrSecret, chainId, contract, epoch]),
  );
}

/** keccak256(abi.encode(seed, node)): what EpochManager.commitSeed expects (EpochManager.seedCommitment). */
export function seedCommitment(seed: string, node: string): string {
  if (typeof seed !== "string" || !BYTES32.test(seed)) throw new Error("PoC seed: must be 0x-prefixed 32-byte hex");
  return keccak256(abi.encode(["bytes32", "address"], [seed, node]));
}

// --- helpers -----------------------------------------------------------------------------------------

/** Same nonce and proof (the same leaf served twice, e.g. as a successor and as a sample). */
function sameLeaf(a: FetchedLeaf, b: FetchedLeaf): boolean {
  const x = toUint256(a.nonce);
  if (x === undefined || x !== toUint256(b.nonce) || !Array.isArray(a.proof) || !Array.isArray(b.proof)) return false;
  return (
    a.proof.length === b.proof.length &&
    a.proof.every((p, i) => typeof p === "string" && p.toLowerCase() === String(b.proof![i]).toLowerCase())
  );
}

function isCount(count: number): boolean {
  return Number.isSafeInteger(count) && count > 0;
}

/** A uint256 from a bigint, a safe non-negative integer or a decimal string; undefined otherwise. */
function toUint256(value: unknown): bigint | undefined {
  let result: bigint;
  if (typeof value === "bigint") result = value;
  else if (typeof value === "number" && Number.isSafeInteger(value)) result = BigInt(value);
  else if (typeof value === "string" && /^(0|[1-9][0-9]{0,77})$/.test(value)) result = BigInt(value);
  else return undefined;
  return result >= 0n && result <= MAX_UINT256 ? result : undefined;
}
