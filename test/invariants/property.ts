/**
 * Shared plumbing of the property-based tests in test/invariants/ (fast-check against the in-process EVM).
 *
 * - `checkProperty` runs a fast-check property with a printed, replayable seed. Environment variables:
 *   `FC_SEED` (replay a seed), `FC_PATH` (with FC_SEED: replay the shrunk counterexample only), `FC_RUNS`
 *   (override every property's number of runs, e.g. a long soak: `FC_RUNS=500`), `FC_SHRINKS` (cap of shrink
 *   steps per generated value, default 40: each step replays a whole sequence on the chain). A value that is
 *   not an integer in range (FC_RUNS=abc, FC_RUNS=0) fails the test naming the variable, rather than
 *   running a property zero times.
 * - `attempt` sends a transaction that may legitimately revert and names the revert: a custom error of the
 *   system, or `Panic(0x..)` / `unknown` — which the callers treat as failures, since every contract reverts
 *   with custom errors only (an arithmetic panic means a state the code did not expect).
 * - `Stats` counts what the random sequences did, so that a test can show (and assert) it is not vacuous.
 */
import fc from "fast-check";
import { type BaseContract, type ContractTransactionReceipt, type ContractTransactionResponse, ErrorFragment, Interface } from "ethers";
import { integerSetting } from "../../scripts/lib/env.js";

/** Runs `property` `numRuns` times (or FC_RUNS), with a seed printed on failure and a replay command. */
export async function checkProperty<Ts>(title: string, file: string, property: fc.IAsyncProperty<Ts>, numRuns: number) {
  const seed = integerSetting("FC_SEED", (Date.now() ^ (Math.random() * 2 ** 31)) | 0, -(2 ** 31));
  const path = process.env.FC_PATH;
  const runs = integerSetting("FC_RUNS", numRuns, 1);
  const details = await fc.check(property, { seed, path, numRuns: runs, endOnFailure: path !== undefined });
  if (details.failed) {
    const report = (await fc.asyncDefaultReportMessage(details)) ?? "";
    const replay =
      `FC_SEED=${details.seed}` +
      (details.counterexamplePath !== null ? ` FC_PATH=${details.counterexamplePath}` : "") +
      ` npx hardhat test mocha ${file} --grep '${title.replaceAll("'", "'\\''")}'`;
    const cause = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    throw new Error(`${title}: property failed with seed ${details.seed}\n  replay: ${replay}\n  error: ${cause}\n${report}`);
  }
  return details;
}

/** Whether this is a replay of one counterexample (FC_PATH): tests then skip their coverage checks. */
export function replaying(): boolean {
  return process.env.FC_PATH !== undefined;
}

/** Shrink steps allowed per generated value (each one replays a sequence on the chain). */
export function maxShrinks(): number {
  return integerSetting("FC_SHRINKS", 40, 0);
}

/** One interface holding every custom error of the given contracts (deduplicated), to name reverts. */
export function errorsOf(contracts: BaseContract[]): Interface {
  const seen = new Map<string, ErrorFragment>();
  for (const c of contracts) {
    for (const fragment of c.interface.fragments) {
      if (fragment instanceof ErrorFragment) seen.set(fragment.format("sighash"), fragment);
    }
  }
  return new Interface([...seen.values()]);
}

/** The revert data an ethers / Hardhat error carries, if any. */
function revertData(error: unknown): string | undefined {
  const e = error as { data?: unknown; error?: { data?: unknown }; info?: { error?: { data?: unknown } } };
  for (const data of [e?.data, e?.error?.data, e?.info?.error?.data]) {
    if (typeof data === "string" && data.startsWith("0x")) return data;
  }
  return undefined;
}

/** The name of a revert: a custom error's name, `Panic(0x11)`, `empty` or `unknown(0x...)`; throws non-reverts. */
export function revertName(errors: Interface, error: unknown): string {
  const data = revertData(error);
  if (data === undefined) throw error;
  if (data === "0x") return "empty";
  if (data.startsWith("0x4e487b71")) return `Panic(0x${BigInt("0x" + data.slice(10)).toString(16)})`;
  try {
    return errors.parseError(data)?.name ?? `unknown(${data.slice(0, 10)})`;
  } catch {
    return `unknown(${data.slice(0, 10)})`;
  }
}

export type Outcome = { ok: true; receipt: ContractTransactionReceipt } | { ok: false; error: string };

/** Sends a transaction and reports whether it succeeded or which error it reverted with. */
export async function attempt(errors: Interface, send: () => Promise<ContractTransactionResponse>): Promise<Outcome> {
  try {
    const receipt = await (await send()).wait();
    return { ok: true, receipt: receipt! };
  } catch (error) {
    return { ok: false, error: revertName(errors, error) };
  }
}

/** Whether a revert is one the contracts may legitimately give: a custom error of the system. */
export function isCustomError(name: string): boolean {
  return !(name.startsWith("Panic(") || name === "empty" || name.startsWith("unknown("));
}

/** Counts, per action kind, how many calls succeeded and which errors the others reverted with. */
export class Stats {
  readonly counts = new Map<string, { ok: number; reverted: Map<string, number> }>();

  record(kind: string, outcome: Outcome) {
    let entry = this.counts.get(kind);
    if (entry === undefined) this.counts.set(kind, (entry = { ok: 0, reverted: new Map() }));
    if (outcome.ok) entry.ok++;
    else entry.reverted.set(outcome.error, (entry.reverted.get(outcome.error) ?? 0) + 1);
  }

  ok(kind: string): number {
    return this.counts.get(kind)?.ok ?? 0;
  }

  total(kind: string): number {
    const entry = this.counts.get(kind);
    return entry === undefined ? 0 : entry.ok + [...entry.reverted.values()].reduce((a, b) => a + b, 0);
  }

  toString(): string {
    return [...this.counts.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([kind, { ok, reverted }]) => {
        const errors = [...reverted.entries()].map(([name, n]) => `${name}×${n}`).join(", ");
        return `    ${kind}: ${ok} ok${errors ? `; reverted: ${errors}` : ""}`;
      })
      .join("\n");
  }
}

/** JSON of a value holding bigints (for comparing snapshots of state). */
export function stable(value: unknown): string {
  return JSON.stringify(value, (_key, v) => (typeof v === "bigint" ? v.toString() : v));
}
