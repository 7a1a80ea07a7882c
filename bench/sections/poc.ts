/**
 * poc.noncesPerSec: this machine's speed at the Proof-of-Compute puzzle, measured as the miner computes it —
 * runPoc (keepers/shared/poc.ts) in the PoC worker thread (keepers/shared/poc-worker.ts, one thread: one
 * core), the network's default parameters, without throttle — for a bounded time after a short warm-up run
 * (worker start, model build from the beacon, JIT).
 */
import { keccak256, toUtf8Bytes } from "ethers";
import { createLogger } from "../../keepers/shared/log.js";
import { DEFAULT_POC_PARAMS, POC_DOMAIN } from "../../keepers/shared/poc.js";
import { PocWorker } from "../../keepers/shared/poc-worker.js";

const BEACON = keccak256(toUtf8Bytes(`${POC_DOMAIN}.bench`));
const NODE = "0x000000000000000000000000000000000000bEEF";

export const how: Record<string, string> = {};

export async function run(opts: { quick: boolean }): Promise<Record<string, number>> {
  const seconds = opts.quick ? 8 : 30;
  const worker = new PocWorker(createLogger({ component: "bench", level: "warn" }));
  try {
    const warm = await worker.run({ beacon: BEACON, params: DEFAULT_POC_PARAMS, node: NODE, deadline: Date.now() + 60_000, maxNonces: 256 });
    if (warm.tried === 0) throw new Error("the warm-up run tried no nonce");
    const result = await worker.run({ beacon: BEACON, params: DEFAULT_POC_PARAMS, node: NODE, startNonce: warm.nextNonce, deadline: Date.now() + seconds * 1000 });
    const noncesPerSec = result.tried / (result.busyMs / 1000);
    how["poc.noncesPerSec"] =
      `runPoc (keepers/shared/poc.ts) in the miner's PoC worker thread (keepers/shared/poc-worker.ts: one thread, one core), ` +
      `default parameters (dim ${DEFAULT_POC_PARAMS.dim}, ${DEFAULT_POC_PARAMS.layers} layers, rTarget ${DEFAULT_POC_PARAMS.rTarget}), a fixed beacon, ` +
      `no throttle: ${result.tried.toLocaleString("en-US")} nonces tried in ${(result.busyMs / 1000).toFixed(1)} s of compute, after a warm-up run of 256 nonces`;
    return {
      "poc.noncesPerSec": noncesPerSec,
      "poc.validRate": result.valid.length / result.tried,
      "poc.seconds": result.elapsedMs / 1000,
    };
  } finally {
    await worker.close();
  }
}
