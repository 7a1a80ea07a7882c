/**
 * gas.claimRatio200v5 and gas.createTaskRatio200v5: how a claim and a task's creation grow from 5 to 200
 * nodes. Runs `hardhat run bench/gas-scale.ts` (the in-process EVM, the contract tests' system and helpers)
 * and reads the gas figures it writes.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { runHardhat } from "../../scripts/lib/processes.js";

export async function run(_opts: { quick: boolean }): Promise<Record<string, number>> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "cn-bench-gas-scale-"));
  try {
    const out = path.join(dir, "gas-scale.json");
    await runHardhat(["run", "bench/gas-scale.ts"], { BENCH_OUT: out }, 900_000);
    const gas = JSON.parse(await readFile(out, "utf8")) as Record<string, number>;
    return {
      "gas.claimRatio200v5": gas.claimGasAt200 / gas.claimGasAt5,
      "gas.claimGasAt5": gas.claimGasAt5,
      "gas.claimGasAt200": gas.claimGasAt200,
      "gas.createTaskRatio200v5": gas.createTaskGasAt200 / gas.createTaskGasAt5,
      "gas.createTaskGasAt5": gas.createTaskGasAt5,
      "gas.createTaskGasAt200": gas.createTaskGasAt200,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
