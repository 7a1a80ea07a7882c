/**
 * Gas of every user-facing function and the steady-state figure of each protocol step issue 5 compares with
 * Prime Intellect's contracts. Runs what `npm run gas` runs (`hardhat run scripts/gas.ts`: receipt.gasUsed on
 * the in-process EVM with the production compiler settings) and reads bench/gas.json, which the script writes
 * next to docs/gas.md:
 *   { "<Contract>.<function>": { "first": n, "repeat": n }, ..., "registerNode": n, "approveNode": n, ... }
 * A version of the script that writes only docs/gas.md is read from that table instead, its steady-state
 * figures taken from the rows in STEADY_STATE_ROWS.
 */
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { ROOT, runHardhat } from "../../scripts/lib/processes.js";
import { GAS_REFERENCE } from "../targets.js";

export const GAS_JSON = path.join(ROOT, "bench", "gas.json");
export const GAS_MD = path.join(ROOT, "docs", "gas.md");

/** docs/gas.md's row whose repeat figure is each step's steady state (what scripts/gas.ts compares with Prime). */
export const STEADY_STATE_ROWS: Record<string, string> = {
  registerNode: "MinerRegistry.registerNode",
  approveNode: "ChallengeBoard.reportChallenge (approve)",
  createRun: "TrainingRuns.createRun",
  acceptInvite: "TrainingRuns.acceptInvite",
  completeTask: "TaskLedger.completeTask",
  claim: "Settlement.claim",
  eject: "TrainingRuns.eject",
  slash: "MinerRegistry.slash",
};

interface GasRow {
  first?: number;
  repeat?: number;
}

function gasNumber(value: unknown): number | undefined {
  if (typeof value === "number" && Number.isFinite(value)) return value;
  if (typeof value === "string" && /^\d[\d,]*$/.test(value.trim())) return Number(value.replace(/,/g, ""));
  return undefined;
}

/** Rows and steady-state figures from bench/gas.json's object. */
export function fromGasJson(data: Record<string, unknown>): { rows: Map<string, GasRow>; steady: Map<string, number> } {
  const rows = new Map<string, GasRow>();
  const steady = new Map<string, number>();
  for (const [key, value] of Object.entries(data)) {
    if (value !== null && typeof value === "object") {
      const v = value as Record<string, unknown>;
      rows.set(key, { first: gasNumber(v.first), repeat: gasNumber(v.repeat) });
    } else {
      const n = gasNumber(value);
      if (n !== undefined) steady.set(key, n);
    }
  }
  return { rows, steady };
}

/** Rows of docs/gas.md's main table (`| contract | \`function\` | first | repeat | conditions |`). */
export function fromGasMarkdown(text: string): { rows: Map<string, GasRow>; steady: Map<string, number> } {
  const rows = new Map<string, GasRow>();
  for (const line of text.split("\n")) {
    const cells = line.split("|").map((c) => c.trim());
    // ["", contract, `function`, first, repeat, conditions, ""]
    if (cells.length < 7 || !/^[A-Z]\w*$/.test(cells[1]) || !/^`.+`$/.test(cells[2])) continue;
    rows.set(`${cells[1]}.${cells[2].slice(1, -1)}`, { first: gasNumber(cells[3]), repeat: gasNumber(cells[4]) });
  }
  const steady = new Map<string, number>();
  for (const [key, row] of Object.entries(STEADY_STATE_ROWS)) {
    const figure = rows.get(row)?.repeat ?? rows.get(row)?.first;
    if (figure !== undefined) steady.set(key, figure);
  }
  return { rows, steady };
}

export const how: Record<string, string> = {};

export async function run(_opts: { quick: boolean }): Promise<Record<string, number>> {
  const started = Date.now();
  await runHardhat(["run", "scripts/gas.ts"], {}, 900_000);
  const fresh = await stat(GAS_JSON).then(
    (s) => s.mtimeMs >= started - 1_000,
    () => false,
  );
  const source = fresh ? "bench/gas.json" : "docs/gas.md";
  const { rows, steady } = fresh
    ? fromGasJson(JSON.parse(await readFile(GAS_JSON, "utf8")) as Record<string, unknown>)
    : fromGasMarkdown(await readFile(GAS_MD, "utf8"));
  if (rows.size === 0) throw new Error(`no gas rows in ${source}`);
  console.log(`    ${rows.size} functions read from ${source}`);
  const figures: Record<string, number> = {};
  for (const g of GAS_REFERENCE) {
    const value = steady.get(g.key);
    if (value !== undefined) figures[`gas.${g.key}`] = value;
    else console.log(`    no steady-state figure for ${g.key} in ${source}`);
  }
  for (const [name, row] of rows) {
    if (row.first !== undefined) figures[`gas.${name}.first`] = row.first;
    if (row.repeat !== undefined) figures[`gas.${name}.repeat`] = row.repeat;
  }
  for (const g of GAS_REFERENCE) {
    how[`gas.${g.key}`] = fresh
      ? "steady state of the step from `hardhat run scripts/gas.ts` (bench/gas.json)"
      : `repeat figure of docs/gas.md's row \`${STEADY_STATE_ROWS[g.key]}\` from \`hardhat run scripts/gas.ts\` (the script wrote no bench/gas.json)`;
  }
  return figures;
}
