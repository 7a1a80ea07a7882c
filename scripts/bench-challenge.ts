/**
 * Prints how long the hardware challenge takes on this machine, for choosing n and the validator's
 * deadline: `npx tsx scripts/bench-challenge.ts [n ...]` (default 128 256 512).
 * Each figure is the median of `RUNS` runs after a warm-up, so JIT compilation is not counted.
 */
import {
  decodeResult,
  encodeResult,
  matricesFor,
  newChallenge,
  resultHash,
  solveChallenge,
  verifyChallenge,
} from "../keepers/shared/challenge.js";

const RUNS = 5;

/** V8 optimises short functions only after several calls; long loops are optimised during the first. */
function warmUp(run: () => unknown): void {
  const start = performance.now();
  for (let calls = 0; calls < 10 && performance.now() - start < 1000; calls++) run();
}

function medianMs(run: () => unknown): number {
  warmUp(run);
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now();
    run();
    times.push(performance.now() - start);
  }
  times.sort((x, y) => x - y);
  return times[Math.floor(RUNS / 2)];
}

const sizes = process.argv.slice(2).map(Number);
const rows = [];
for (const n of sizes.length > 0 ? sizes : [128, 256, 512]) {
  const params = newChallenge({ n });
  const c = solveChallenge(params);
  if (!verifyChallenge(params, c)) throw new Error(`n = ${n}: the solver's answer does not verify`);
  const encoded = encodeResult(c);
  const solve = medianMs(() => solveChallenge(params));
  const verify = medianMs(() => verifyChallenge(params, c));
  rows.push({
    n,
    rounds: params.rounds,
    "derive A,B ms": medianMs(() => matricesFor(params)).toFixed(2),
    "solve ms": solve.toFixed(1),
    "verify ms": verify.toFixed(2),
    "solve/verify": Math.round(solve / verify),
    "encode ms": medianMs(() => encodeResult(c)).toFixed(2),
    "decode ms": medianMs(() => decodeResult(encoded, n)).toFixed(2),
    "hash ms": medianMs(() => resultHash(params, c)).toFixed(2),
    "answer KiB": Math.round(encoded.length / 1024),
  });
}
console.log(`node ${process.version}, median of ${RUNS} runs after warm-up; solve and verify include deriving A and B`);
console.table(rows);
