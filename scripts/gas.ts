/**
 * `npm run gas`: gas of every user-facing function (scripts/lib/gas.ts), measured on the in-process Hardhat
 * network with the same compiler settings and Ignition module as production. Prints the table, writes
 * docs/gas.md, and bench/gas.json for the benchmark harness. Exits with code 1 when a step exceeds its
 * ceiling against the reference system (issue #5), after writing both files.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { network } from "hardhat";
import { againstReference, gasJson, gasMarkdown, measureGas } from "./lib/gas.js";
import { ROOT } from "./lib/processes.js";

const require = createRequire(import.meta.url);
const solcVersion: string = require("solc/package.json").version;

const rows = await measureGas(await network.create());
const markdown = gasMarkdown(rows, solcVersion);
const outputs = [
  { file: path.join(ROOT, "docs", "gas.md"), text: markdown },
  { file: path.join(ROOT, "bench", "gas.json"), text: `${JSON.stringify(gasJson(rows), null, 2)}\n` },
];
for (const { file, text } of outputs) {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, text);
}
console.log(markdown);
for (const { file } of outputs) console.log(`Wrote ${path.relative(process.cwd(), file)}`);
const over = againstReference(rows).filter((r) => !r.within);
for (const r of over) console.error(`over its ceiling: ${r.step}: ${r.ours} gas (ceiling ${r.ceiling})`);
if (over.length > 0) process.exitCode = 1;
