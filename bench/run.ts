/**
 * `npm run bench [-- --quick] [-- --only <section>[,<section>...]]`: runs the benchmark sections of
 * bench/sections/ one after another (so that they never compete for the cores) and writes
 * bench/results.json and bench/RESULTS.md (bench/harness.ts, bench/report.ts). `--quick` asks each section
 * for its short form: the whole run stays under five minutes on two cores. Exits with 1 when a section
 * failed to measure (a missed target is a result, not an error).
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { Command } from "commander";
import { runBench } from "./harness.js";
import { renderResults } from "./report.js";

/** In the order they run: the quick CPU-bound ones first, the whole network last. */
export const SECTIONS = ["poc", "http", "gas", "gas-scale", "flow"] as const;

const BENCH = import.meta.dirname;

function progress(text: string): void {
  console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${text}`);
}

const program = new Command("bench")
  .description("computenet benchmarks: writes bench/results.json and bench/RESULTS.md")
  .option("--quick", "the short form of each section (under five minutes on two cores)", false)
  .option("--only <sections>", `comma-separated sections to run (of ${SECTIONS.join(", ")})`)
  .option("--out <dir>", "where results.json and RESULTS.md go", BENCH)
  .parse(process.argv);
const opts = program.opts<{ quick: boolean; only?: string; out: string }>();
const only = opts.only?.split(",").map((s) => s.trim()).filter(Boolean);
const unknown = only?.filter((s) => !(SECTIONS as readonly string[]).includes(s)) ?? [];
if (unknown.length > 0) program.error(`--only: unknown section ${unknown.join(", ")} (sections: ${SECTIONS.join(", ")})`);

const results = await runBench({
  dir: path.join(BENCH, "sections"),
  names: SECTIONS.filter((s) => !only || only.includes(s)),
  quick: opts.quick,
  command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
  progress,
});
const jsonFile = path.join(opts.out, "results.json");
const mdFile = path.join(opts.out, "RESULTS.md");
await writeFile(jsonFile, `${JSON.stringify(results, null, 2)}\n`);
await writeFile(mdFile, renderResults(results));
const count = (verdict: string) => results.targets.filter((t) => t.verdict === verdict).length;
const failed = results.sections.filter((s) => s.status === "failed").map((s) => s.name);
progress(
  `done in ${results.elapsedSec} s: targets ${count("pass")} passed, ${count("fail")} failed, ${count("not run")} not run; ` +
    `sections failed: ${failed.join(", ") || "none"}`,
);
progress(`wrote ${path.relative(process.cwd(), jsonFile)} and ${path.relative(process.cwd(), mdFile)}`);
// Sections may leave handles behind (a worker, a socket pool): the results are written, so end here.
process.exit(failed.length > 0 ? 1 : 0);
