/**
 * Solidity lint as part of `npm test`: solhint over contracts/ with the project's `.solhint.json`, no warning
 * allowed (the same command as `npm run lint:sol`, run with the local binary), and the configuration explained:
 * every rule turned off in `.solhint.json` has its entry in docs/solhint.md, and every `solhint-disable` comment
 * in contracts/ gives its reason after ` -- `.
 */
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const solhint = join(root, "node_modules", ".bin", "solhint");
/** A problem line of solhint's `unix` formatter: `file:line:column: message [Severity/rule]`. */
const PROBLEM = /^\S+:\d+:\d+: .* \[(Error|Warning)\/[\w-]+\]$/;

function solidityFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return solidityFiles(path);
    return entry.name.endsWith(".sol") ? [path] : [];
  });
}

describe("lint: solhint", function () {
  this.timeout(120_000);

  it("reports no problem in contracts/ (--max-warnings 0)", () => {
    const result = spawnSync(
      solhint,
      ["--disc", "--noPoster", "--max-warnings", "0", "-f", "unix", "contracts/**/*.sol"],
      { cwd: root, encoding: "utf8" },
    );
    const output = `${result.stdout ?? ""}${result.stderr ?? ""}`.trim();
    if (result.error) throw result.error;
    const problems = output.split("\n").filter((line) => PROBLEM.test(line));
    expect(problems, `solhint reported problems:\n${output}`).to.deep.equal([]);
    expect(result.status, `solhint exited with ${result.status}:\n${output}`).to.equal(0);
  });

  it("explains every rule turned off in .solhint.json (docs/solhint.md)", () => {
    const config = JSON.parse(readFileSync(join(root, ".solhint.json"), "utf8")) as { rules: Record<string, unknown> };
    const docs = readFileSync(join(root, "docs", "solhint.md"), "utf8");
    const off = Object.entries(config.rules)
      .filter(([, setting]) => setting === "off" || (Array.isArray(setting) && setting[0] === "off"))
      .map(([rule]) => rule);
    const documented = new Set([...docs.matchAll(/^### (\S+)\s*$/gm)].map((m) => m[1]));
    const unexplained = off.filter((rule) => !documented.has(rule));
    expect(unexplained, "rules turned off without an entry in docs/solhint.md").to.deep.equal([]);
  });

  it("gives a reason for every solhint-disable comment in contracts/", () => {
    const bare: string[] = [];
    for (const file of solidityFiles(join(root, "contracts"))) {
      for (const [i, line] of readFileSync(file, "utf8").split("\n").entries()) {
        if (/solhint-disable/.test(line) && !/solhint-disable\S*\s+[\w, -]+\s+--\s+\S/.test(line)) {
          bare.push(`${relative(root, file)}:${i + 1}: ${line.trim()}`);
        }
      }
    }
    expect(bare, "solhint-disable without `-- reason`").to.deep.equal([]);
  });
});
