/**
 * `npm run coverage`: runs the contract tests with Hardhat 3's `--coverage`, fails when any contract outside
 * `contracts/test/` is below the bar in lines or statements, writes the figures into README.md between
 * the `coverage:start` / `coverage:end` markers, and rebuilds afterwards (a coverage run leaves
 * instrumented bytecode in artifacts/ and typechain-types/).
 */
import { spawn } from "node:child_process";
import { readFile, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { ROOT, runHardhat } from "./lib/processes.js";

const BAR = 95;
const HARDHAT = path.join(ROOT, "node_modules", "hardhat", "dist", "src", "cli.js");

function run(args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [HARDHAT, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const tee = (chunk: Buffer) => {
      output += chunk;
      process.stdout.write(chunk);
    };
    child.stdout.on("data", tee);
    child.stderr.on("data", tee);
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code: code ?? 1, output }));
  });
}

interface FileCoverage {
  file: string;
  lines: number;
  statements: number;
}

/** Rows of Hardhat's coverage table for files under contracts/, outside contracts/test/. */
export function parseCoverageTable(output: string): FileCoverage[] {
  // biome-ignore lint: the escape character is what we strip
  const plain = output.replace(/\u001b\[[0-9;]*m/g, "");
  const rows: FileCoverage[] = [];
  const pattern = /(contracts\/[^\s│|]+\.sol)\s*[│|]\s*([\d.]+)\s*[│|]\s*([\d.]+)/g;
  for (const match of plain.matchAll(pattern)) {
    if (match[1].includes("/test/")) continue;
    rows.push({ file: match[1], lines: Number(match[2]), statements: Number(match[3]) });
  }
  return rows;
}

// The contract tests (test/*.test.ts): keeper and integration tests exercise the same contracts through
// child processes, which would only slow the instrumented run down.
const contractTests = (await readdir(path.join(ROOT, "test")))
  .filter((f) => f.endsWith(".test.ts"))
  .map((f) => path.join("test", f));
const result = await run(["test", "mocha", "--coverage", ...contractTests]);
console.log("\nRebuilding without instrumentation ...");
await runHardhat(["build"]);
if (result.code !== 0) {
  console.error(`tests failed (exit ${result.code}): no coverage figures recorded`);
  process.exit(result.code);
}

const rows = parseCoverageTable(result.output);
if (rows.length === 0) {
  console.error("found no coverage rows for contracts/ in Hardhat's output");
  process.exit(1);
}
const below = rows.filter((r) => r.lines < BAR || r.statements < BAR);
const table = [
  "| contract | lines % | statements % |",
  "|---|---:|---:|",
  ...rows.map((r) => `| \`${r.file}\` | ${r.lines.toFixed(2)} | ${r.statements.toFixed(2)} |`),
].join("\n");

const readmePath = path.join(ROOT, "README.md");
const readme = await readFile(readmePath, "utf8");
const start = "<!-- coverage:start -->";
const end = "<!-- coverage:end -->";
if (readme.includes(start) && readme.includes(end)) {
  const updated = `${readme.slice(0, readme.indexOf(start) + start.length)}\n${table}\n${readme.slice(readme.indexOf(end))}`;
  if (updated !== readme) await writeFile(readmePath, updated);
}
console.log(`\n${table}\n`);
if (below.length > 0) {
  for (const r of below) console.error(`${r.file}: lines ${r.lines}%, statements ${r.statements}% (bar ${BAR}%)`);
  process.exit(1);
}
console.log(`every contract at or above ${BAR}% of lines and statements`);
