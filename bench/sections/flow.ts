/**
 * flow.minerStartToHealthySec: the time from spawning a miner process (`computenet miner`, as an operator
 * would) against a running local network until the run's master marks it Healthy — hardware detection,
 * registration and stake, registration for the run, the validator's hardware challenge reported on chain,
 * the master's invite accepted on chain, and the first heartbeat.
 *
 * The network is the devnet's (keepers/cli/cluster.ts): a `hardhat node` (automine plus a block every
 * second), the system deployed with Ignition, discovery, one validator and the run's master as separate
 * processes, each keeper polling the chain every 250 ms. The epoch economy is kept out of the way (epoch 1
 * starts weeks later) so that no PoC window loads the cores meanwhile. Miners start one after another, each
 * timed on its own from a fresh process, so every figure includes Node's and tsx's start-up. The steps come
 * from the keepers' JSON log lines (their `ts`), the end from the master's own "→ Healthy" line.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Cluster, type KeeperProcess } from "../../keepers/cli/cluster.js";

interface LogLine {
  ts: string;
  msg: string;
  [field: string]: unknown;
}

/** A keeper's JSON log lines so far (other output is skipped). */
function logLines(keeper: KeeperProcess): LogLine[] {
  const lines: LogLine[] = [];
  for (const text of keeper.text.split("\n")) {
    if (!text.startsWith("{")) continue;
    try {
      lines.push(JSON.parse(text) as LogLine);
    } catch {
      // a line cut by the output bound
    }
  }
  return lines;
}

/** Seconds from `t0` to the first line of `keeper` whose msg matches `msg` and whose `field` (if given) is `node`. */
function secondsTo(keeper: KeeperProcess, t0: number, msg: RegExp, field?: { name: string; node: string }): number | undefined {
  const line = logLines(keeper).find(
    (l) => msg.test(l.msg) && (!field || String(l[field.name] ?? "").toLowerCase() === field.node.toLowerCase()),
  );
  return line && (Date.parse(line.ts) - t0) / 1000;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The steps of one miner's start, in order: name → the log line that ends it. */
function steps(t0: number, node: string, miner: KeeperProcess, validator: KeeperProcess, master: KeeperProcess) {
  const forNode = (name: string) => ({ name, node });
  return {
    processUp: secondsTo(miner, t0, /^miner starting$/),
    registered: secondsTo(miner, t0, /^registration complete$/),
    endpointUploaded: secondsTo(miner, t0, /^endpoint registered with discovery$/),
    challenged: secondsTo(validator, t0, /^challenging node$/, forNode("target")),
    challengeSolved: secondsTo(miner, t0, /^challenge solved$/),
    validated: secondsTo(validator, t0, /^report confirmed on chain$/, forNode("target")),
    invited: secondsTo(master, t0, /invited$/, forNode("miner")),
    joined: secondsTo(miner, t0, /^acceptInvite: confirmed$/),
    healthy: secondsTo(master, t0, /→ Healthy/, forNode("miner")),
  };
}

export async function run(opts: { quick: boolean }): Promise<Record<string, number>> {
  const count = opts.quick ? 3 : 5;
  const dir = await mkdtemp(path.join(os.tmpdir(), "cn-bench-flow-"));
  const cluster = await Cluster.start({ logDir: dir, deploymentsRoot: dir, heartbeatSec: 2, economy: false });
  try {
    await cluster.startDiscovery();
    const validator = await cluster.startValidator(0);
    const master = await cluster.startMaster(["--assignment", "local"]);
    const timed: Array<Record<string, number | undefined>> = [];
    for (let i = 0; i < count; i++) {
      const node = cluster.nodeAddress(i);
      const t0 = Date.now();
      const miner = await cluster.startMiner(i, [], {}, false);
      await Promise.race([
        master.waitFor(new RegExp(`"miner":"${node}"[^\\n]*→ Healthy`, "i"), 120_000),
        miner.exited.then((code) => Promise.reject(new Error(`miner-${i + 1} exited with code ${code}; logs in ${dir}`))),
      ]);
      const s = steps(t0, node, miner, validator, master);
      timed.push(s);
      const shown = Object.entries(s).map(([k, v]) => `${k} ${v === undefined ? "?" : v.toFixed(2)}`);
      console.log(`    miner-${i + 1}: Healthy ${s.healthy?.toFixed(2)} s after its spawn (${shown.join(", ")})`);
    }
    const healthy = timed.map((s) => s.healthy!);
    const figures: Record<string, number> = {
      "flow.minerStartToHealthySec": median(healthy),
      "flow.minerStartToHealthyMaxSec": Math.max(...healthy),
      "flow.miners": count,
    };
    for (const step of Object.keys(timed[0])) {
      const values = timed.map((s) => s[step]).filter((v): v is number => v !== undefined);
      if (values.length === timed.length) figures[`flow.step.${step}Sec`] = median(values);
    }
    return figures;
  } finally {
    await cluster.stop();
    if (process.env.KEEP_BENCH_LOGS === "1") console.log(`    flow logs kept in ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  }
}
