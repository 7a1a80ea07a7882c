/**
 * The hardware challenge a validator sends to a newly registered miner (DESIGN.md, flow 2).
 *
 * Prime Intellect's challenge is a 3×3 matrix product any CPU answers instantly. Ours is an n×n product
 * C = A·B over the prime field F_p (n = 256 by default, up to 1024): about n³ multiply-adds for the miner,
 * while the validator checks the answer with Freivalds' algorithm in O(rounds·n²) and a deadline it
 * measures itself. A and B are not sent: both sides derive them from a 32-byte seed, so a challenge is a
 * few bytes on the wire and the answer is C alone.
 *
 * Field. p = 2^31 − 1. Products of two elements reach 2^62, beyond the 2^53 integers a double holds
 * exactly, so every product is split: x·y = (x >>> 16)·y·2^16 + (x & 0xffff)·y, with partial products
 * below 2^46 and 2^47. Each partial sum is reduced mod p at least every 32 terms, so it never exceeds
 * p + 32·2^47 < 2^53 and all arithmetic below is exact integer arithmetic on doubles (`%` on doubles is
 * exact too). The split costs about 1.3× a 24-bit field that needs none, and is about 7× faster than
 * reducing after every product (p < 2^26, a·b < 2^52) and 7–10× faster than BigInt, which allocates
 * per product (figures below). We keep the full 31-bit field for its Freivalds bound.
 *
 * Soundness. For a wrong C the difference D = A·B − C has a non-zero row d; for r uniform over F_p^n,
 * Pr[d·r = 0] = 1/p. So each round accepts a wrong C with probability at most 1/p ≈ 4.7e-10, and `rounds`
 * independent rounds with at most p^−rounds (≈ 2.2e-19 for the default 2 rounds). r is drawn by the
 * validator after C arrives, so the miner cannot aim at it.
 *
 * Deriving A and B (must be bit-identical on every machine and in every language; integers only):
 *   key       = keccak256(abi.encodePacked("computenet.challenge.v1", bytes32 seed, uint32 n))
 *   keystream = AES-256-CTR(key, initial counter block 0^128) — NIST SP 800-38A, the whole 128-bit block
 *               is a big-endian counter (as in OpenSSL, Go's cipher.NewCTR, Rust's ctr::Ctr128BE)
 *   words     = the keystream read as big-endian uint32s; x = word & 0x7fffffff; x = p is skipped
 *               (rejection sampling, so elements are exactly uniform; it happens with probability 2^−31)
 *   A         = the first n² accepted x, row-major; B = the next n², row-major.
 * AES-CTR rather than a small PRNG such as xoshiro: it is standardised and in every crypto library (a
 * miner written in Rust, Go or CUDA host code reproduces it exactly), hardware-accelerated (deriving both
 * matrices at n = 512 takes a few ms), and cryptographically strong, so A and B carry no structure a
 * miner could exploit to skip work.
 *
 * Wire format of C: big-endian uint32s, row-major, base64 (RFC 4648, with padding). The result hash the
 * validator reports to ChallengeBoard is
 *   keccak256(abi.encodePacked("computenet.challenge.v1", keccak256(utf8(challengeId)), bytes32 seed,
 *             uint32 n, C as big-endian uint32s))
 *
 * Measured figures (`npx tsx scripts/bench-challenge.ts 128 256 512 1024`, run twice: Node 22.23 on a
 * 2-core AMD EPYC VM that other jobs shared, load average 3–4; median of 5 runs after warm-up; solve and
 * verify each include deriving A and B from the seed; verify with the default 2 rounds):
 *      n   derive A,B   solve         verify        solve/verify   resultHash    answer (base64)
 *    128   < 1 ms       8–15 ms       0.9–1.0 ms     8–18×         5–9 ms        85 KiB
 *    256   < 1 ms       50–56 ms      2.1–2.7 ms    21–24×         15 ms         341 KiB
 *    512   ~2 ms        350–405 ms    5.5–7.1 ms    57–63×         80–87 ms      1.3 MiB
 *   1024   ~10 ms       2.5–3.0 s     25–33 ms      92–101×        340–410 ms    5.3 MiB
 * Verify costs 3·rounds matrix-vector products, so the ratio grows like n / (3·rounds). resultHash is
 * O(n²) but ethers' keccak256 is pure JavaScript (~12 MB/s here). The field choice above was measured
 * with stand-alone kernels on the same machine: at n = 256 / 512 the split 31-bit product took 38 / 300
 * ms, a 24-bit field without split 29 / 220 ms, reducing after every product (p < 2^26) 275 / 2150 ms;
 * BigInt took 72–90 ms already at n = 128 (the split kernel: 7–12 ms).
 * solveChallenge blocks its thread for that long: a keeper should run it in a worker thread.
 */
import { createCipheriv, randomBytes } from "node:crypto";
import { getBytes, hexlify, keccak256, solidityPacked, solidityPackedKeccak256, toUtf8Bytes } from "ethers";
import { z } from "zod";

/** p = 2^31 − 1, a Mersenne prime. */
export const CHALLENGE_PRIME = 2147483647;

export const DEFAULT_CHALLENGE_N = 256;
export const DEFAULT_CHALLENGE_ROUNDS = 2;
export const DEFAULT_MAX_CHALLENGE_N = 1024;
/** Beyond a few rounds Freivalds gains nothing (p^−3 < 1e-27); the cap only bounds a validator's typo. */
export const DEFAULT_MAX_CHALLENGE_ROUNDS = 16;

/** Domain tag in the key derivation and the result hash; bump it when either changes. */
const DOMAIN = "computenet.challenge.v1";
const P = CHALLENGE_PRIME;
/** Partial sums are reduced at least this often; see the bound in the header. */
const TERMS_BETWEEN_REDUCTIONS = 32;
/** A random source that keeps yielding only the rejected word is broken; an honest one does this 2^−496. */
const MAX_EMPTY_DRAWS = 16;

const SEED_PATTERN = /^0x[0-9a-fA-F]{64}$/;
/** Ids end up in logs and URLs: keep them short and plain. */
const CHALLENGE_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

export interface ChallengeParams {
  challengeId: string;
  /** 0x-prefixed 32-byte hex. */
  seed: string;
  n: number;
  rounds: number;
}

export type RandomSource = (bytes: number) => Uint8Array;

/** A fresh challenge with a crypto-random seed and id, validated against the default limits. */
export function newChallenge(options: { n?: number; rounds?: number; random?: RandomSource } = {}): ChallengeParams {
  const random = options.random ?? randomBytes;
  return validateChallengeParams({
    challengeId: hexlify(randomExactly(random, 16)),
    seed: hexlify(randomExactly(random, 32)),
    n: options.n ?? DEFAULT_CHALLENGE_N,
    rounds: options.rounds ?? DEFAULT_CHALLENGE_ROUNDS,
  });
}

/**
 * Checks a challenge received from the network (or built locally) and returns it with the seed in lower
 * case. Throws an Error whose message starts with the bad field's name ("params" for the whole value, an
 * unknown field included).
 */
export function validateChallengeParams(
  value: unknown,
  limits: { maxN?: number; maxRounds?: number } = {},
): ChallengeParams {
  const schema = z.strictObject({
    challengeId: z.string().regex(CHALLENGE_ID_PATTERN, "must be 1 to 128 characters of A-Z a-z 0-9 . _ : -"),
    seed: z.string().regex(SEED_PATTERN, "must be 0x-prefixed 32-byte hex"),
    n: z.number().int().min(1).max(limits.maxN ?? DEFAULT_MAX_CHALLENGE_N),
    rounds: z.number().int().min(1).max(limits.maxRounds ?? DEFAULT_MAX_CHALLENGE_ROUNDS),
  });
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue.path.length > 0 ? issue.path.map(String).join(".") : "params";
    throw new Error(`challenge ${field}: ${issue.message}`);
  }
  return { ...parsed.data, seed: parsed.data.seed.toLowerCase() };
}

/** A and B (row-major, entries in [0, p)) derived from the seed as described in the header. */
export function matricesFor(params: Pick<ChallengeParams, "seed" | "n">): { a: Uint32Array; b: Uint32Array } {
  const { seed, n } = params;
  if (typeof seed !== "string" || !SEED_PATTERN.test(seed)) throw new Error("challenge seed: must be 0x-prefixed 32-byte hex");
  assertSize(n);
  const key = solidityPackedKeccak256(["string", "bytes32", "uint32"], [DOMAIN, seed, n]);
  const cipher = createCipheriv("aes-256-ctr", Buffer.from(key.slice(2), "hex"), Buffer.alloc(16));
  // Encrypting zeros yields the raw keystream; successive calls continue it, so B follows A in the stream.
  const keystream: RandomSource = (bytes) => cipher.update(Buffer.alloc(bytes));
  const a = drawFieldElements(n * n, keystream);
  const b = drawFieldElements(n * n, keystream);
  return { a, b };
}

/** The miner's answer: C = A·B mod p, row-major. */
export function solveChallenge(params: ChallengeParams): Uint32Array {
  const { a, b } = matricesFor(params);
  return multiplyMatrices(a, b, params.n);
}

/**
 * C = A·B mod p for row-major n×n matrices with entries in [0, p). The i-k-j loop order makes the inner
 * loop a sequential pass over one row of B and the row's accumulators, which V8 compiles to a tight loop
 * and the cache serves well (i-j-k strides down B's columns); see the header for why it is exact.
 */
export function multiplyMatrices(a: Uint32Array, b: Uint32Array, n: number): Uint32Array {
  assertSize(n);
  assertFieldMatrix(a, n, "a");
  assertFieldMatrix(b, n, "b");
  const c = new Uint32Array(n * n);
  // Row i of C accumulates a[i][k]·B[k] split into the high (15-bit) and low (16-bit) halves of a[i][k].
  const high = new Float64Array(n);
  const low = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    high.fill(0);
    low.fill(0);
    const rowA = i * n;
    for (let k = 0; k < n; k++) {
      const aik = a[rowA + k];
      const aHigh = aik >>> 16;
      const aLow = aik & 0xffff;
      const rowB = k * n;
      for (let j = 0; j < n; j++) {
        const bkj = b[rowB + j];
        high[j] += aHigh * bkj;
        low[j] += aLow * bkj;
      }
      if ((k + 1) % TERMS_BETWEEN_REDUCTIONS === 0) {
        for (let j = 0; j < n; j++) {
          high[j] %= P;
          low[j] %= P;
        }
      }
    }
    for (let j = 0; j < n; j++) c[rowA + j] = combineHalves(high[j], low[j]);
  }
  return c;
}

/**
 * The validator's check of a miner's C: Freivalds with `rounds` fresh random vectors. Returns false for a
 * C of the wrong length or with entries ≥ p (non-canonical), so hostile input never throws here.
 */
export function verifyChallenge(params: ChallengeParams, c: Uint32Array, random: RandomSource = randomBytes): boolean {
  if (!isFieldMatrix(c, params.n)) return false;
  assertRounds(params.rounds);
  const { a, b } = matricesFor(params);
  return passesFreivalds(a, b, c, params.n, params.rounds, random);
}

/** Freivalds on explicit matrices: true when A·(B·r) = C·r mod p for `rounds` vectors r uniform over F_p^n. */
export function freivaldsCheck(
  a: Uint32Array,
  b: Uint32Array,
  c: Uint32Array,
  n: number,
  rounds: number,
  random: RandomSource = randomBytes,
): boolean {
  assertSize(n);
  assertRounds(rounds);
  assertFieldMatrix(a, n, "a");
  assertFieldMatrix(b, n, "b");
  return isFieldMatrix(c, n) && passesFreivalds(a, b, c, n, rounds, random);
}

/** Transport encoding of C: base64 of its entries as big-endian uint32s. */
export function encodeResult(c: Uint32Array): string {
  for (let i = 0; i < c.length; i++) {
    if (c[i] >= P) throw new RangeError(`challenge result: entry ${i} is ${c[i]}, not below p`);
  }
  return Buffer.from(toBigEndian(c)).toString("base64");
}

/**
 * Decodes a miner's answer for an n×n challenge. The input is hostile: anything but the canonical base64
 * of n² big-endian values below p is rejected with an Error saying what is wrong.
 */
export function decodeResult(encoded: string, n: number): Uint32Array {
  assertSize(n);
  if (typeof encoded !== "string") throw new Error("challenge result: must be a base64 string");
  const byteLength = 4 * n * n;
  // Checked before decoding so an oversized answer costs nothing.
  const expectedChars = 4 * Math.ceil(byteLength / 3);
  if (encoded.length !== expectedChars) {
    throw new Error(`challenge result: expected ${expectedChars} base64 characters for n = ${n}, got ${encoded.length}`);
  }
  // Node's decoder skips characters it does not know; re-encoding catches those and any non-canonical form.
  const bytes = Buffer.from(encoded, "base64");
  if (bytes.length !== byteLength || bytes.toString("base64") !== encoded) {
    throw new Error("challenge result: not canonical base64");
  }
  const c = fromBigEndian(bytes);
  for (let i = 0; i < c.length; i++) {
    if (c[i] >= P) throw new Error(`challenge result: entry ${i} is ${c[i]}, not below p = ${P}`);
  }
  return c;
}

/** The hash a validator reports on chain: binds the challenge id, seed, n and C (layout in the header). */
export function resultHash(params: ChallengeParams, c: Uint32Array): string {
  if (c.length !== params.n * params.n) {
    throw new Error(`challenge result: expected ${params.n * params.n} entries, got ${c.length}`);
  }
  const header = getBytes(
    solidityPacked(
      ["string", "bytes32", "bytes32", "uint32"],
      [DOMAIN, keccak256(toUtf8Bytes(params.challengeId)), params.seed, params.n],
    ),
  );
  // One buffer, not ethers' concat: that goes through hex strings and triples the cost at n = 1024.
  const message = new Uint8Array(header.length + 4 * c.length);
  message.set(header);
  writeBigEndian(c, message, header.length);
  return keccak256(message);
}

/**
 * `count` field elements from a byte source, by rejection sampling of 31-bit words (header). Shared by the
 * matrix derivation (AES keystream) and Freivalds' random vectors (crypto random).
 */
function drawFieldElements(count: number, nextBytes: RandomSource): Uint32Array {
  const out = new Uint32Array(count);
  let filled = 0;
  let emptyDraws = 0;
  while (filled < count) {
    const bytes = randomExactly(nextBytes, 4 * (count - filled));
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const before = filled;
    for (let offset = 0; offset < bytes.length; offset += 4) {
      const x = view.getUint32(offset) & 0x7fffffff;
      if (x !== P) out[filled++] = x;
    }
    emptyDraws = filled === before ? emptyDraws + 1 : 0;
    if (emptyDraws >= MAX_EMPTY_DRAWS) throw new Error("random source yields no field elements");
  }
  return out;
}

/** The rounds of Freivalds' check on inputs already known to be n×n field matrices. */
function passesFreivalds(a: Uint32Array, b: Uint32Array, c: Uint32Array, n: number, rounds: number, random: RandomSource): boolean {
  for (let round = 0; round < rounds; round++) {
    const r = drawFieldElements(n, random);
    const expected = multiplyVector(a, multiplyVector(b, r, n), n);
    const actual = multiplyVector(c, r, n);
    for (let i = 0; i < n; i++) if (expected[i] !== actual[i]) return false;
  }
  return true;
}

/** M·v mod p for a row-major n×n M: each dot product split like the matrix product. */
function multiplyVector(m: Uint32Array, v: Uint32Array, n: number): Uint32Array {
  const vHigh = new Float64Array(n);
  const vLow = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    vHigh[j] = v[j] >>> 16;
    vLow[j] = v[j] & 0xffff;
  }
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const row = i * n;
    let high = 0;
    let low = 0;
    for (let start = 0; start < n; start += TERMS_BETWEEN_REDUCTIONS) {
      const end = Math.min(start + TERMS_BETWEEN_REDUCTIONS, n);
      for (let j = start; j < end; j++) {
        const mij = m[row + j];
        high += mij * vHigh[j];
        low += mij * vLow[j];
      }
      high %= P;
      low %= P;
    }
    out[i] = combineHalves(high, low);
  }
  return out;
}

/** (high·2^16 + low) mod p, exact: (high mod p)·2^16 + (low mod p) < 2^48. */
function combineHalves(high: number, low: number): number {
  return ((high % P) * 65536 + (low % P)) % P;
}

function toBigEndian(values: Uint32Array): Uint8Array {
  return writeBigEndian(values, new Uint8Array(4 * values.length), 0);
}

function writeBigEndian(values: Uint32Array, into: Uint8Array, offset: number): Uint8Array {
  const view = new DataView(into.buffer, into.byteOffset + offset, 4 * values.length);
  for (let i = 0; i < values.length; i++) view.setUint32(4 * i, values[i]);
  return into;
}

function fromBigEndian(bytes: Uint8Array): Uint32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const values = new Uint32Array(bytes.length / 4);
  for (let i = 0; i < values.length; i++) values[i] = view.getUint32(4 * i);
  return values;
}

function randomExactly(random: RandomSource, bytes: number): Uint8Array {
  const out = random(bytes);
  if (!(out instanceof Uint8Array) || out.length !== bytes) {
    throw new Error(`random source returned ${out instanceof Uint8Array ? out.length : typeof out} bytes, expected ${bytes}`);
  }
  return out;
}

function assertRounds(rounds: number): void {
  if (!Number.isSafeInteger(rounds) || rounds < 1) throw new Error(`challenge rounds: must be a positive integer, got ${rounds}`);
}

function assertSize(n: number): void {
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`challenge n: must be a positive integer, got ${n}`);
}

function isFieldMatrix(m: Uint32Array, n: number): boolean {
  if (!(m instanceof Uint32Array) || m.length !== n * n) return false;
  for (let i = 0; i < m.length; i++) if (m[i] >= P) return false;
  return true;
}

function assertFieldMatrix(m: Uint32Array, n: number, name: string): void {
  if (!isFieldMatrix(m, n)) throw new Error(`matrix ${name}: must be a Uint32Array of ${n}×${n} entries below p`);
}
