/**
 * The Proof-of-Compute engine: a model derived exactly as its header specifies (checked against an
 * independent BigInt implementation), a miner loop that keeps its deadline and its throttle, Merkle
 * commitments in OpenZeppelin's encoding, and a validator that accepts honest commitments (even with a
 * rare float mismatch) and rejects inflated ones however they are padded.
 */
import { canonicalJson } from "../../keepers/shared/canonical-json.js";
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { expect } from "chai";
import { AbiCoder, Wallet, getAddress, keccak256, solidityPackedKeccak256, toUtf8Bytes } from "ethers";
import { createLogger } from "../../keepers/shared/log.js";
import {
  DEFAULT_POC_PARAMS,
  type FetchedLeaf,
  type PocModel,
  type PocParams,
  binomialTail,
  buildModel,
  buildPocTree,
  checkSample,
  computeNonce,
  decideVerdict,
  deriveSeed,
  evidenceHash,
  leavesToFetch,
  measureNoncesPerSec,
  pocTreeFromJson,
  pocTreeToJson,
  proofDepth,
  proofFor,
  runPoc,
  sampleIndices,
  searchPath,
  seedCommitment,
  validatePocParams,
  verifyLeaf,
} from "../../keepers/shared/poc.js";
import { PocWorker } from "../../keepers/shared/poc-worker.js";

const abi = AbiCoder.defaultAbiCoder();
const BEACON = keccak256(toUtf8Bytes("computenet.poc.test"));
const OTHER_BEACON = keccak256(toUtf8Bytes("computenet.poc.test.other"));
const NODE = "0x00000000000000000000000000000000000000a1";
const OTHER_NODE = "0x00000000000000000000000000000000000000b2";
const SECRET = keccak256(toUtf8Bytes("validator secret"));
/** A small model for the commitment tests (~10 % valid, tens of thousands of nonces/s). */
const SMALL: PocParams = { dim: 64, layers: 2, rTarget: 1.3 };
/** The documented band of the valid rate at the default parameters (poc.ts header). */
const VALID_RATE_BAND = [0.05, 0.2] as const;
const silent = createLogger({ component: "test", level: "silent" });

// --- an independent implementation of the header's definition (BigInt words, no blocking) ----------

const MASK = 0xffffffffn;
const rotl = (x: bigint, k: bigint) => ((x << k) | (x >> (32n - k))) & MASK;

function* referenceStream(seed: string): Generator<number> {
  const w = Array.from({ length: 8 }, (_, i) => BigInt(`0x${seed.slice(2 + 8 * i, 10 + 8 * i)}`));
  const s = [w[0] ^ w[4], w[1] ^ w[5], w[2] ^ w[6], w[3] ^ w[7]];
  if (s.every((x): boolean => x === 0n)) s[0] = 1n;
  for (;;) {
    const result = (rotl((s[1] * 5n) & MASK, 7n) * 9n) & MASK;
    const t = (s[1] << 9n) & MASK;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11n);
    yield Number(BigInt.asIntN(32, result)) / 2 ** 31;
  }
}

function take(stream: Generator<number>, n: number, scale = 1): number[] {
  return Array.from({ length: n }, () => stream.next().value * scale);
}

const tagOf = (name: string) => keccak256(toUtf8Bytes(`computenet.poc.v1.${name}`));

function referenceDistance(beacon: string, params: PocParams, node: string, nonce: bigint): number {
  const { dim, layers } = params;
  const scale = Math.sqrt(3 / dim);
  const unit = (v: number[]) => {
    let sq = 0;
    for (const x of v) sq += x * x;
    const norm = Math.sqrt(sq);
    return v.map((x) => x / norm);
  };
  const target = unit(
    take(referenceStream(solidityPackedKeccak256(["bytes32", "bytes32", "uint32"], [tagOf("target"), beacon, dim])), dim),
  );
  let x = take(
    referenceStream(solidityPackedKeccak256(["bytes32", "bytes32", "address", "uint256"], [tagOf("input"), beacon, node, nonce])),
    dim,
  );
  for (let l = 0; l < layers; l++) {
    const w = take(
      referenceStream(solidityPackedKeccak256(["bytes32", "bytes32", "uint32", "uint32"], [tagOf("weights"), beacon, dim, l])),
      dim * dim,
      scale,
    );
    const h = x.map((xj, j) => {
      let y = 0;
      for (let k = 0; k < dim; k++) y += w[j * dim + k] * x[k];
      return xj + y / (1 + Math.abs(y));
    });
    let sum = 0;
    for (const v of h) sum += v;
    const mean = sum / dim;
    let sq = 0;
    for (const v of h) sq += (v - mean) * (v - mean);
    const sd = Math.sqrt(sq / dim + 1e-5);
    x = h.map((v) => (v - mean) / sd);
  }
  const o = unit(x);
  let d2 = 0;
  for (let j = 0; j < dim; j++) d2 += (o[j] - target[j]) * (o[j] - target[j]);
  return Math.sqrt(d2);
}

// --- helpers -----------------------------------------------------------------------------------------

/** A tree over arbitrary (possibly dishonest) nonces, built with OpenZeppelin directly. */
function rawTree(nonces: readonly bigint[]) {
  return StandardMerkleTree.of(
    nonces.map((n, i) => [String(i), n.toString()]),
    ["uint256", "uint256"],
    { sortLeaves: false },
  );
}

type Serve = (index: number) => FetchedLeaf | undefined;

const serveTree =
  (tree: ReturnType<typeof rawTree>): Serve =>
  (index) =>
    index < tree.length ? { nonce: BigInt(tree.at(index)![1]), proof: tree.getProof(index) } : undefined;

/** What the validator keeper does: sample, fetch, check, decide. */
function judge(model: PocModel, node: string, root: string, count: number, serve: Serve) {
  const sampled = sampleIndices(SECRET, node, count);
  const fetched = leavesToFetch(sampled, count);
  const leaves = new Map<number, FetchedLeaf>();
  for (const i of fetched) {
    const leaf = serve(i);
    if (leaf) leaves.set(i, leaf);
  }
  const samples = sampled.map((index) => ({ index, ...leaves.get(index), next: leaves.get(index + 1), nextExpected: index + 1 < count }));
  const findings = checkSample(model, node, root, samples, { count, leaves });
  return { sampled, findings, verdict: decideVerdict(findings) };
}

/** Nonces in [from, to) that the model says are valid / invalid for NODE. */
function scan(model: PocModel, from: number, to: number) {
  const valid: bigint[] = [];
  const invalid: bigint[] = [];
  for (let n = from; n < to; n++) (computeNonce(model, NODE, n).valid ? valid : invalid).push(BigInt(n));
  return { valid, invalid };
}


// Number comparisons by hand: Hardhat's chai matchers replace `closeTo` and `within` with bigint-only
// versions when the whole suite runs, so these tests do not rely on either.
function expectNear(actual: number, expected: number, tolerance: number, what?: string): void {
  expect(Math.abs(actual - expected) <= tolerance, `${what ?? "value"} ${actual} within ${tolerance} of ${expected}`).to.equal(true);
}
function expectWithin(actual: number, low: number, high: number, what?: string): void {
  expect(actual >= low && actual <= high, `${what ?? "value"} ${actual} in [${low}, ${high}]`).to.equal(true);
}

describe("Proof of Compute engine (keepers/shared/poc.ts)", function () {
  this.timeout(120_000);

  describe("parameters", function () {
    it("completes partial parameters with the defaults", function () {
      expect(validatePocParams({ dim: 64 })).to.deep.equal({ ...DEFAULT_POC_PARAMS, dim: 64 });
      expect(validatePocParams()).to.deep.equal(DEFAULT_POC_PARAMS);
    });

    it("rejects bad parameters naming the field", function () {
      expect(() => validatePocParams({ dim: 66 })).to.throw(/PoC params dim: must be a multiple of 4/);
      expect(() => validatePocParams({ dim: 4 })).to.throw(/PoC params dim/);
      expect(() => validatePocParams({ layers: 0 })).to.throw(/PoC params layers/);
      expect(() => validatePocParams({ rTarget: 2 })).to.throw(/PoC params rTarget/);
      expect(() => validatePocParams({ rTarget: 0 })).to.throw(/PoC params rTarget/);
      expect(() => validatePocParams({ batch: 0 })).to.throw(/PoC params batch/);
      expect(() => buildModel("0x1234")).to.throw(/PoC beacon/);
    });
  });

  describe("the model", function () {
    const tiny: PocParams = { dim: 16, layers: 3, rTarget: 1.3 };

    it("implements xoshiro128** as published (reference stream on state 1, 2, 3, 4)", function () {
      // State words (1, 2, 3, 4) from a seed whose upper half is zero; first outputs of xoshiro128**.
      const seed = `0x${["00000001", "00000002", "00000003", "00000004"].join("")}${"0".repeat(32)}`;
      const words = take(referenceStream(seed), 4).map((u) => Number(BigInt.asUintN(32, BigInt(Math.round(u * 2 ** 31)))));
      expect(words).to.deep.equal([11520, 0, 5927040, 70819200]);
    });

    it("derives weights, target and distances exactly as the header defines them", function () {
      const model = buildModel(BEACON, tiny);
      const w0 = take(
        referenceStream(solidityPackedKeccak256(["bytes32", "bytes32", "uint32", "uint32"], [tagOf("weights"), BEACON, 16, 0])),
        256,
        Math.sqrt(3 / 16),
      );
      expect([...model.weights[0]]).to.deep.equal(w0);
      for (const nonce of [0n, 1n, 7n, 2n ** 200n]) {
        expect(computeNonce(model, NODE, nonce).distance).to.equal(referenceDistance(BEACON, tiny, NODE, nonce));
      }
    });

    it("pins the default model's distances (a change to the puzzle must change POC_DOMAIN)", function () {
      const model = buildModel(BEACON);
      expect(computeNonce(model, NODE, 0).distance).to.equal(1.465081920364672);
      expect(computeNonce(model, NODE, 1).distance).to.equal(1.3919337347988356);
      expect(computeNonce(model, NODE, 123456789).distance).to.equal(1.38729268890618);
      expect(model.weights[0][0]).to.equal(-0.030884213786360113);
      expect(model.target[0]).to.equal(0.0885241199563152);
    });

    it("is deterministic in (beacon, node, nonce) and differs for another node, nonce or beacon", function () {
      const a = buildModel(BEACON);
      const b = buildModel(BEACON);
      const d = computeNonce(a, NODE, 42).distance;
      expect(computeNonce(b, NODE, 42n).distance).to.equal(d);
      expect(computeNonce(a, NODE.toUpperCase().replace("0X", "0x"), 42).distance).to.equal(d);
      expect(computeNonce(a, OTHER_NODE, 42).distance).to.not.equal(d);
      expect(computeNonce(a, NODE, 43).distance).to.not.equal(d);
      expect(computeNonce(buildModel(OTHER_BEACON), NODE, 42).distance).to.not.equal(d);
      expect(computeNonce(a, NODE, 42).distance).to.equal(d); // after other nodes used the same scratch space
    });

    it("refuses a bad node or nonce", function () {
      const model = buildModel(BEACON, tiny);
      expect(() => computeNonce(model, "0x1234", 1)).to.throw(/not an address/);
      expect(() => computeNonce(model, NODE, -1)).to.throw(RangeError);
      expect(() => computeNonce(model, NODE, 1.5)).to.throw(RangeError);
      expect(() => computeNonce(model, NODE, 2n ** 256n)).to.throw(RangeError);
    });

    it("finds valid nonces at a rate inside the documented band at the default parameters", function () {
      for (const beacon of [BEACON, OTHER_BEACON]) {
        const model = buildModel(beacon);
        let valid = 0;
        const tries = 2000;
        for (let n = 0; n < tries; n++) if (computeNonce(model, NODE, n).valid) valid++;
        const rate = valid / tries;
        expectWithin(rate, VALID_RATE_BAND[0], VALID_RATE_BAND[1], `valid rate for beacon ${beacon}`);
      }
    });

    it("measures nonces per second without printing", function () {
      const bench = measureNoncesPerSec(SMALL, 200);
      expect(bench.tried).to.be.greaterThan(0);
      expectNear(bench.noncesPerSec, (bench.tried * 1000) / bench.elapsedMs, 1e-6);
      expect(bench.validRate).to.equal(bench.valid / bench.tried);
      expect(bench.elapsedMs).to.be.at.least(200);
    });
  });

  describe("runPoc", function () {
    it("returns by its deadline with the valid nonces in increasing order", async function () {
      const model = buildModel(BEACON);
      const started = Date.now();
      const result = await runPoc({ model, node: NODE, startNonce: 1000n, deadline: started + 300 });
      const took = Date.now() - started;
      expect(took).to.be.at.least(290).and.below(450);
      expect(result.stoppedBy).to.equal("deadline");
      expect(result.tried).to.be.greaterThan(0);
      expect(result.nextNonce).to.equal(1000n + BigInt(result.tried));
      const expected = scan(model, 1000, 1000 + result.tried).valid;
      expect(result.valid).to.deep.equal(expected);
    });

    it("stops after maxNonces, resumes from nextNonce, and reports progress", async function () {
      const model = buildModel(BEACON, SMALL);
      const progress: number[] = [];
      const first = await runPoc({
        model,
        node: NODE,
        deadline: Date.now() + 60_000,
        maxNonces: 500,
        yieldEveryMs: 1,
        onProgress: (p) => progress.push(p.tried),
      });
      expect(first.stoppedBy).to.equal("maxNonces");
      expect(first.tried).to.equal(500);
      expect(progress.at(-1)).to.equal(500);
      const second = await runPoc({ model, node: NODE, startNonce: first.nextNonce, deadline: Date.now() + 60_000, maxNonces: 500 });
      expect([...first.valid, ...second.valid]).to.deep.equal(scan(model, 0, 1000).valid);
    });

    it("stops when asked to", async function () {
      const model = buildModel(BEACON, SMALL);
      let slices = 0;
      const result = await runPoc({
        model,
        node: NODE,
        deadline: Date.now() + 60_000,
        yieldEveryMs: 5,
        onProgress: () => slices++,
        shouldStop: () => slices >= 3,
      });
      expect(result.stoppedBy).to.equal("stopped");
      expect(slices).to.equal(3);
    });

    it("throttle 0.25 (the FAKE slow machine) tries about a quarter of the nonces of a full-speed run", async function () {
      const model = buildModel(BEACON, SMALL);
      const full = await runPoc({ model, node: NODE, deadline: Date.now() + 500, yieldEveryMs: 10 });
      const slow = await runPoc({ model, node: NODE, deadline: Date.now() + 500, yieldEveryMs: 10, throttle: 0.25 });
      const ratio = slow.tried / full.tried;
      expectWithin(ratio, 0.1, 0.5, `${slow.tried} / ${full.tried}`);
      expectWithin(slow.busyMs / slow.elapsedMs, 0.12, 0.4);
    });

    it("refuses a throttle outside (0, 1] and a bad start nonce", async function () {
      const model = buildModel(BEACON, SMALL);
      for (const throttle of [0, -1, 1.5, Number.NaN]) {
        await runPoc({ model, node: NODE, deadline: Date.now() + 10, throttle }).then(
          () => expect.fail(`throttle ${throttle} accepted`),
          (error: Error) => expect(error.message).to.match(/throttle/),
        );
      }
      await runPoc({ model, node: NODE, deadline: Date.now() + 10, startNonce: -1n }).then(
        () => expect.fail("negative start accepted"),
        (error: Error) => expect(error.message).to.match(/startNonce/),
      );
    });
  });

  describe("the commitment", function () {
    const nonces = [3n, 17n, 18n, 40n, 2n ** 200n];

    it("has OpenZeppelin's standard leaf encoding, unsorted, and proofs of the expected length", function () {
      const built = buildPocTree(nonces);
      expect(built.count).to.equal(5);
      expect(built.root).to.equal(rawTree(nonces).root);
      for (let i = 0; i < nonces.length; i++) {
        const leaf = proofFor(built.tree, i);
        expect(leaf.nonce).to.equal(nonces[i]);
        expect(leaf.proof).to.deep.equal(built.tree.getProof(i));
        expect(leaf.proof.length).to.equal(proofDepth(i, nonces.length));
        expect(StandardMerkleTree.verify(built.root, ["uint256", "uint256"], [i, nonces[i]], leaf.proof)).to.equal(true);
        expect(verifyLeaf(built.root, i, nonces[i], leaf.proof, nonces.length)).to.equal(true);
      }
      // What MerkleProof.verify checks on chain: keccak256(bytes.concat(keccak256(abi.encode(index, nonce)))).
      const leafHash = keccak256(keccak256(abi.encode(["uint256", "uint256"], [1, 17n])));
      expect(built.tree.leafHash(["1", "17"])).to.equal(leafHash);
    });

    it("gives proofs OpenZeppelin agrees with for trees of every shape up to 40 leaves", function () {
      for (let count = 1; count <= 40; count++) {
        const values = Array.from({ length: count }, (_, i) => BigInt(10 * i + 1));
        const built = buildPocTree(values);
        for (let i = 0; i < count; i++) {
          const { proof } = proofFor(built.tree, i);
          expect(proof).to.deep.equal(built.tree.getProof(i));
          expect(proof.length).to.equal(proofDepth(i, count));
          expect(verifyLeaf(built.root, i, values[i], proof, count)).to.equal(true);
        }
      }
    });

    it("fails a tampered proof, another nonce or index, a wrong length, and malformed input without throwing", function () {
      const built = buildPocTree(nonces);
      const { proof } = proofFor(built.tree, 2);
      const flipped = [...proof];
      flipped[0] = `${flipped[0].slice(0, -1)}${flipped[0].endsWith("0") ? "1" : "0"}`;
      expect(verifyLeaf(built.root, 2, 18n, flipped)).to.equal(false);
      expect(verifyLeaf(built.root, 2, 19n, proof)).to.equal(false);
      expect(verifyLeaf(built.root, 1, 18n, proof)).to.equal(false);
      expect(verifyLeaf(built.root, 2, 18n, proof, 9)).to.equal(false);
      expect(verifyLeaf(built.root, 2, 18n, proof, 5)).to.equal(true);
      expect(verifyLeaf(built.root, 2, "18", proof)).to.equal(true);
      expect(verifyLeaf(built.root, 2, "0x12", proof)).to.equal(false);
      expect(verifyLeaf(built.root, -1, 18n, proof)).to.equal(false);
      expect(verifyLeaf("0x12", 2, 18n, proof)).to.equal(false);
      expect(verifyLeaf(built.root, 2, 18n, ["0xzz"])).to.equal(false);
      expect(verifyLeaf(built.root, 2, 18n, "nope" as unknown as string[])).to.equal(false);
      expect(verifyLeaf(built.root, 2, 2n ** 256n, proof)).to.equal(false);
    });

    it("refuses nonces that are not strictly increasing uint256s", function () {
      expect(() => buildPocTree([])).to.throw(/no nonces/);
      expect(() => buildPocTree([1n, 1n])).to.throw(/does not exceed/);
      expect(() => buildPocTree([5n, 4n])).to.throw(/does not exceed/);
      expect(() => buildPocTree([-1n])).to.throw(/not a uint256/);
      expect(() => buildPocTree([2n ** 256n])).to.throw(/not a uint256/);
      expect(() => proofFor(buildPocTree([1n]).tree, 1)).to.throw(RangeError);
    });

    it("round-trips through its JSON form and refuses a form whose root does not match", function () {
      const built = buildPocTree(nonces);
      const json = JSON.parse(JSON.stringify(pocTreeToJson(built)));
      expect(json.nonces).to.deep.equal(nonces.map(String));
      expect(pocTreeFromJson(json).root).to.equal(built.root);
      expect(() => pocTreeFromJson({ ...json, root: OTHER_BEACON })).to.throw(/rebuilt root/);
      expect(() => pocTreeFromJson({ ...json, format: "x" })).to.throw(/unknown format/);
    });
  });

  describe("sampling", function () {
    it("draws a deterministic, sorted sample of distinct indices, and all indices of a small commitment", function () {
      const a = sampleIndices(SECRET, NODE, 5000);
      expect(a).to.deep.equal(sampleIndices(SECRET, NODE, 5000n));
      expect(a).to.have.length(200);
      expect(new Set(a).size).to.equal(200);
      expect(a).to.deep.equal([...a].sort((x, y) => x - y));
      expect(a[0]).to.be.at.least(0);
      expect(a.at(-1)).to.be.below(5000);
      expect(sampleIndices(SECRET, NODE, 150)).to.deep.equal(Array.from({ length: 150 }, (_, i) => i));
      expect(sampleIndices(SECRET, NODE, 201)).to.have.length(200);
      expect(sampleIndices(SECRET, NODE, 10, 3)).to.have.length(3);
    });

    it("is unpredictable without the secret: other secrets or nodes share only chance overlap", function () {
      const a = new Set(sampleIndices(SECRET, NODE, 5000));
      // Two independent samples of 200 out of 5000 share 8 indices on average.
      for (const [secret, node] of [
        [keccak256(toUtf8Bytes("another secret")), NODE],
        [SECRET, OTHER_NODE],
      ]) {
        const b = sampleIndices(secret, node, 5000);
        expect(b.filter((i) => a.has(i)).length).to.be.below(25);
      }
      // Spread over the whole range (the mean of 200 uniform draws is within a few % of the middle).
      const mean = [...a].reduce((s, i) => s + i, 0) / a.size;
      expectWithin(mean, 2000, 3000);
    });

    it("refuses a bad secret, node, count or size", function () {
      expect(() => sampleIndices("0x12", NODE, 10)).to.throw(/secret/);
      expect(() => sampleIndices(SECRET, "nope", 10)).to.throw(/not an address/);
      expect(() => sampleIndices(SECRET, NODE, 0)).to.throw(RangeError);
      expect(() => sampleIndices(SECRET, NODE, 2n ** 64n)).to.throw(RangeError);
      expect(() => sampleIndices(SECRET, NODE, 10, 0)).to.throw(RangeError);
    });

    it("plans binary searches that reach each index, and fetches each leaf once", function () {
      for (let count = 1; count <= 70; count++) {
        for (let index = 0; index < count; index++) {
          const path = searchPath(index, count);
          expect(path.length).to.be.at.most(Math.ceil(Math.log2(count + 1)));
          // Replaying the search on the sorted list 0..count−1 with key `index` visits exactly this path.
          let lo = 0;
          let hi = count - 1;
          for (const mid of path) {
            expect(mid).to.equal(Math.floor((lo + hi) / 2));
            if (index < mid) hi = mid - 1;
            else lo = mid + 1;
          }
          expect(Math.floor((lo + hi) / 2)).to.equal(index);
        }
      }
      expect(() => searchPath(5, 5)).to.throw(RangeError);
      const fetched = leavesToFetch([3, 10], 20);
      expect(fetched).to.deep.equal([...new Set([3, 4, ...searchPath(3, 20), 10, 11, ...searchPath(10, 20)])].sort((a, b) => a - b));
    });
  });

  describe("verdicts", function () {
    let model: PocModel;
    let valid: bigint[];
    let invalid: bigint[];

    before(function () {
      model = buildModel(BEACON, SMALL);
      ({ valid, invalid } = scan(model, 0, 6000));
      expectWithin(valid.length, 400, 1000);
    });

    it("accepts an honest commitment", function () {
      const built = buildPocTree(valid);
      const { verdict, findings, sampled } = judge(model, NODE, built.root, built.count, (i) => proofFor(built.tree, i));
      expect(sampled).to.have.length(200);
      expect(findings.every((f) => f.status === "ok" && f.distance! < SMALL.rTarget)).to.equal(true);
      expect(verdict).to.include({ accepted: true, n: 200, failures: 0, hardFailures: 0, pValue: 1 });
      expect(verdict.reasons[0]).to.match(/0 of 200 sampled nonces invalid/);
    });

    it("rejects a commitment padded with invalid nonces to twice its count", function () {
      // As many invalid nonces as valid ones, spread over the same range; merged, the list still increases.
      const step = Math.floor(invalid.length / valid.length);
      const padding = invalid.filter((_, j) => j % step === 0).slice(0, valid.length);
      const padded = [...valid, ...padding].sort((a, b) => (a < b ? -1 : 1));
      expect(new Set(padded).size).to.equal(2 * valid.length);
      const tree = rawTree(padded);
      const { verdict } = judge(model, NODE, tree.root, padded.length, serveTree(tree));
      expect(verdict.accepted).to.equal(false);
      expect(verdict.hardFailures).to.equal(0);
      expectWithin(verdict.failures, 60, 140);
      expect(verdict.pValue).to.be.below(1e-7);
    });

    it("rejects a commitment padded with duplicated nonces to twice its count", function () {
      const doubled = valid.flatMap((v) => [v, v]);
      const tree = rawTree(doubled);
      const { verdict, findings } = judge(model, NODE, tree.root, doubled.length, serveTree(tree));
      expect(verdict.accepted).to.equal(false);
      expect(verdict.hardFailures).to.be.greaterThan(50);
      expect(findings.some((f) => f.status === "order")).to.equal(true);
      expect(verdict.reasons[0]).to.match(/fail integer checks/);
    });

    it("rejects a list that repeats itself (sorted runs, one descent in the middle)", function () {
      const repeated = [...valid, ...valid];
      const tree = rawTree(repeated);
      const { verdict, findings } = judge(model, NODE, tree.root, repeated.length, serveTree(tree));
      expect(verdict.accepted).to.equal(false);
      expect(verdict.hardFailures).to.be.greaterThan(50);
      expect(findings.some((f) => f.status === "order" && /sorts/.test(f.detail!))).to.equal(true);
    });

    it("rejects overlapping sorted runs (a staircase) through the binary searches", function () {
      // Runs of 8 consecutive valid nonces, each starting 4 further: every nonce twice, few neighbours out of order.
      const stairs: bigint[] = [];
      for (let start = 0; start + 8 <= valid.length; start += 4) stairs.push(...valid.slice(start, start + 8));
      const tree = rawTree(stairs);
      const { verdict, findings } = judge(model, NODE, tree.root, stairs.length, serveTree(tree));
      expect(verdict.accepted).to.equal(false);
      // Most samples fail against a leaf of their binary search, not only at the seams between runs.
      const sorts = findings.filter((f) => f.status === "order" && /sorts (before|after)/.test(f.detail!)).length;
      expect(sorts).to.be.greaterThan(60);
    });

    it("rejects a tree hiding two leaves per index: the proofs are too long", function () {
      // Leaf i as (i, low) and (i, high): a miner could pick whichever sorts right, but the tree is twice as deep.
      const count = valid.length - 1;
      const pairs: [string, string][] = [];
      for (let i = 0; i < count; i++)
        pairs.push([String(i), valid[Math.floor(i / 2)].toString()], [String(i), valid[Math.floor(i / 2) + 1].toString()]);
      const tree = StandardMerkleTree.of(pairs, ["uint256", "uint256"], { sortLeaves: false });
      const serve: Serve = (i) => ({ nonce: BigInt(tree.at(2 * i)![1]), proof: tree.getProof(2 * i) });
      const { verdict, findings } = judge(model, NODE, tree.root, count, serve);
      expect(verdict.accepted).to.equal(false);
      expect(findings.filter((f) => f.status === "proof").length).to.be.greaterThan(100);
    });

    it("accepts a commitment with one float-mismatched leaf in 200, and rejects one with five", function () {
      const base = valid.slice(0, 200);
      const mismatched = (k: number) => {
        const list = [...base];
        // Replace leaves 10, 30, 50, … by an invalid nonce that still sorts between its neighbours.
        for (let j = 0; j < k; j++) {
          const i = 10 + 20 * j;
          list[i] = invalid.find((n) => n > list[i - 1] && n < list[i + 1])!;
          expect(list[i] !== undefined, `an invalid nonce fits between leaves ${i - 1} and ${i + 1}`).to.equal(true);
        }
        return list;
      };
      for (const [k, accepted] of [
        [1, true],
        [4, true],
        [5, false],
      ] as const) {
        const built = buildPocTree(mismatched(k));
        const { verdict } = judge(model, NODE, built.root, built.count, (i) => proofFor(built.tree, i));
        expect(verdict, `${k} mismatches`).to.include({ accepted, n: 200, failures: k, hardFailures: 0 });
      }
      const one = buildPocTree(mismatched(1));
      const { verdict } = judge(model, NODE, one.root, one.count, (i) => proofFor(one.tree, i));
      expectNear(verdict.pValue, 1 - (1 - 5e-4) ** 200, 1e-12);
    });

    it("rejects a commitment whose miner withholds a leaf, tampers a proof or serves another tree", function () {
      const built = buildPocTree(valid);
      const sampled = sampleIndices(SECRET, NODE, built.count);
      const victim = sampled[17];
      const honest: Serve = (i) => proofFor(built.tree, i);

      const withheld = judge(model, NODE, built.root, built.count, (i) => (i === victim ? undefined : honest(i)));
      expect(withheld.verdict.accepted).to.equal(false);
      expect(withheld.findings.find((f) => f.index === victim)!.status).to.equal("missing");

      const tampered = judge(model, NODE, built.root, built.count, (i) => {
        const leaf = proofFor(built.tree, i);
        return i === victim ? { ...leaf, proof: [...leaf.proof].reverse().map((p, k) => (k === 0 ? OTHER_BEACON : p)) } : leaf;
      });
      expect(tampered.verdict.accepted).to.equal(false);
      expect(tampered.findings.find((f) => f.index === victim)!.status).to.equal("proof");

      const other = buildPocTree(valid.slice(1));
      const wrongTree = judge(model, NODE, built.root, built.count, (i) => (i < other.count ? proofFor(other.tree, i) : undefined));
      expect(wrongTree.verdict.accepted).to.equal(false);
      expect(wrongTree.verdict.hardFailures).to.equal(200);
    });

    it("judges another node's nonces as invalid (nonces are bound to the address)", function () {
      const built = buildPocTree(valid);
      const { verdict } = judge(model, OTHER_NODE, built.root, built.count, (i) => proofFor(built.tree, i));
      expect(verdict.accepted).to.equal(false);
      expect(verdict.failures).to.be.greaterThan(120);
    });

    it("reports hostile answers as findings without throwing", function () {
      const built = buildPocTree(valid.slice(0, 10));
      const samples = [
        { index: 0, nonce: "abc", proof: [] as string[] },
        { index: 1, nonce: 1n, proof: "x" as unknown as string[] },
        { index: 2 },
        { index: -1, nonce: 1n, proof: [] },
        { ...proofFor(built.tree, 3), next: { nonce: 0n, proof: ["0x00"] }, nextExpected: true },
      ];
      const findings = checkSample(model, NODE, built.root, samples, { count: 10 });
      expect(findings.map((f) => f.status)).to.deep.equal(["proof", "proof", "missing", "missing", "proof"]);
      expect(decideVerdict(findings).accepted).to.equal(false);
    });

    it("catches two answers of one index that disagree", function () {
      const built = buildPocTree(valid.slice(0, 10));
      const leaf4 = proofFor(built.tree, 4);
      const samples = [
        { ...proofFor(built.tree, 3), next: leaf4, nextExpected: true },
        { ...proofFor(built.tree, 4), nextExpected: false },
      ];
      // A forged sample 4 (another nonce) fails its proof, and disagrees with the successor served for 3.
      samples[1] = { ...samples[1], nonce: leaf4.nonce + 1n };
      const findings = checkSample(model, NODE, built.root, samples);
      expect(findings.map((f) => f.status)).to.deep.equal(["order", "proof"]);
    });
  });

  describe("the binomial test", function () {
    it("computes upper tails that match the definition", function () {
      const p = 5e-4;
      expect(binomialTail(200, 0, p)).to.equal(1);
      expectNear(binomialTail(200, 1, p) / (1 - (1 - p) ** 200), 1, 1e-12);
      const pmf = (k: number) => {
        let c = 1;
        for (let i = 1; i <= k; i++) c = (c * (200 - k + i)) / i;
        return c * p ** k * (1 - p) ** (200 - k);
      };
      expectNear(binomialTail(200, 2, p) / (1 - pmf(0) - pmf(1)), 1, 1e-9);
      const tail5 = binomialTail(200, 5, p);
      let direct = 0;
      for (let k = 5; k <= 30; k++) direct += pmf(k);
      expectNear(tail5 / direct, 1, 1e-9);
      expect(tail5).to.be.below(1e-7);
      expect(binomialTail(200, 4, p)).to.be.above(1e-7);
      expect(binomialTail(200, 201, p)).to.equal(0);
    });

    it("rejects an empty sample and refuses bad test parameters", function () {
      expect(decideVerdict([])).to.include({ accepted: false, n: 0 });
      expect(() => decideVerdict([], { mismatchProbability: 0 })).to.throw(RangeError);
      expect(() => decideVerdict([], { significance: 1 })).to.throw(RangeError);
    });

    it("tightens or loosens with its options", function () {
      const findings = [
        ...Array.from({ length: 198 }, (_, index) => ({ index, status: "ok" as const })),
        { index: 198, status: "nonce" as const },
        { index: 199, status: "nonce" as const },
      ];
      expect(decideVerdict(findings).accepted).to.equal(true);
      expect(decideVerdict(findings, { significance: 0.01 }).accepted).to.equal(false);
      expect(decideVerdict(findings, { mismatchProbability: 1e-6 }).accepted).to.equal(false);
    });
  });

  describe("evidence", function () {
    it("hashes a canonical JSON: key order does not matter, content does, bigints allowed", function () {
      const a = { b: 1n, a: [1, "x", { d: true, c: null }], skipped: undefined };
      expect(canonicalJson(a, { bigintsAsStrings: true })).to.equal('{"a":[1,"x",{"c":null,"d":true}],"b":"1"}');
      expect(() => canonicalJson(a)).to.throw(/bigint/);
      expect(evidenceHash(a)).to.equal(evidenceHash({ a: [1, "x", { c: null, d: true }], b: 1n }));
      expect(evidenceHash(a)).to.not.equal(evidenceHash({ ...a, b: 2n }));
      const verdict = decideVerdict([{ index: 0, status: "ok" }]);
      expect(evidenceHash(verdict)).to.equal(keccak256(toUtf8Bytes(canonicalJson(verdict))));
      expect(() => canonicalJson({ x: Number.NaN })).to.throw(/NaN, which JSON cannot represent/);
      expect(() => canonicalJson({ f: () => 1 })).to.throw(/function/);
    });
  });

  describe("seeds", function () {
    const key = Wallet.createRandom().privateKey;
    const epochManager = getAddress("0x5fbdb2315678afecb367f032d93f642f64180aa3");

    it("derives a per-epoch seed deterministically from the key, chain, contract and epoch", function () {
      const seed = deriveSeed(key, 31337n, epochManager, 7n);
      expect(seed).to.equal(deriveSeed(key, 31337, epochManager.toLowerCase(), 7));
      expect(seed).to.equal(
        keccak256(
          abi.encode(
            ["bytes32", "bytes32", "uint256", "address", "uint256"],
            [keccak256(toUtf8Bytes("computenet.poc.v1.seed")), key, 31337n, epochManager, 7n],
          ),
        ),
      );
      const others = [
        deriveSeed(key, 31337n, epochManager, 8n),
        deriveSeed(key, 421614n, epochManager, 7n),
        deriveSeed(key, 31337n, OTHER_NODE, 7n),
        deriveSeed(Wallet.createRandom().privateKey, 31337n, epochManager, 7n),
      ];
      expect(new Set([seed, ...others]).size).to.equal(5);
      expect(() => deriveSeed("0x12", 1n, epochManager, 1n)).to.throw(/key/);
      expect(() => deriveSeed(key, 1n, "nope", 1n)).to.throw(/not an address/);
    });

    it("commits keccak256(abi.encode(seed, node)), the EpochManager formula", function () {
      const seed = deriveSeed(key, 31337n, epochManager, 1n);
      expect(seedCommitment(seed, NODE)).to.equal(keccak256(abi.encode(["bytes32", "address"], [seed, NODE])));
      expect(seedCommitment(seed, NODE)).to.not.equal(seedCommitment(seed, OTHER_NODE));
      expect(() => seedCommitment("0x12", NODE)).to.throw(/seed/);
    });
  });

  describe("PocWorker (keepers/shared/poc-worker.ts)", function () {
    let worker: PocWorker;

    beforeEach(function () {
      worker = new PocWorker(silent);
    });

    afterEach(async function () {
      await worker.close();
    });

    it("computes in a worker thread what runPoc computes inline, reporting progress", async function () {
      const progress: number[] = [];
      const job = { beacon: BEACON, params: SMALL, node: NODE, startNonce: 100n, deadline: Date.now() + 60_000, maxNonces: 800 };
      const result = await worker.run({ ...job, yieldEveryMs: 1, onProgress: (p) => progress.push(p.tried) });
      const inline = await runPoc({ ...job, model: buildModel(BEACON, SMALL) });
      expect(result.valid).to.deep.equal(inline.valid);
      expect(result.tried).to.equal(800);
      expect(result.nextNonce).to.equal(900n);
      expect(progress.length).to.be.greaterThan(0);
      expect(progress.at(-1)).to.equal(800);
    });

    it("computes off the main thread: a blocked main thread does not stop it", async function () {
      // Start-up (tsx hooks in the worker) and the model are paid before the timed run.
      await worker.run({ beacon: BEACON, params: DEFAULT_POC_PARAMS, node: NODE, deadline: Date.now() + 60_000, maxNonces: 1 });
      const started = Date.now();
      const run = worker.run({ beacon: BEACON, params: DEFAULT_POC_PARAMS, node: NODE, deadline: started + 500 });
      // Let the job reach the worker, then block this thread past the deadline: inline, runPoc would get
      // one 20 ms slice in before the deadline.
      await new Promise((resolve) => setTimeout(resolve, 20));
      while (Date.now() < started + 550) {
        // busy
      }
      const result = await run;
      expect(result.stoppedBy).to.equal("deadline");
      expect(result.tried).to.be.greaterThan(0);
      expect(result.busyMs).to.be.greaterThan(200);
    });

    it("stops when asked, refuses a second run at once, and fails bad input", async function () {
      let stop = false;
      const running = worker.run({ beacon: BEACON, params: SMALL, node: NODE, deadline: Date.now() + 60_000, shouldStop: () => stop });
      await worker.run({ beacon: BEACON, params: SMALL, node: NODE, deadline: Date.now() + 10 }).then(
        () => expect.fail("second run accepted"),
        (error: Error) => expect(error.message).to.match(/already in progress/),
      );
      setTimeout(() => (stop = true), 200);
      const result = await running;
      expect(result.stoppedBy).to.equal("stopped");
      await worker.run({ beacon: "0x12", params: SMALL, node: NODE, deadline: Date.now() + 10 }).then(
        () => expect.fail("bad beacon accepted"),
        (error: Error) => expect(error.message).to.match(/beacon/),
      );
    });
  });
});
