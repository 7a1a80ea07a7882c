/**
 * `computenet devnet --exit-when-done` from a fresh chain: the devnet alone must put PoC commitments,
 * power, power-weighted tasks, validations and paid claims on chain within six minutes (issue 4's bar),
 * as a newcomer would run it. Real processes, real containers; the devnet's own milestones decide.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { expect } from "chai";
import { freePort } from "../../scripts/lib/processes.js";
import { requireDocker } from "../keepers/support/docker.js";

const CLI = path.join(import.meta.dirname, "..", "..", "keepers", "cli", "computenet.ts");
const SIX_MINUTES_SEC = 360;

describe("integration: npm run devnet", function () {
  this.timeout((SIX_MINUTES_SEC + 120) * 1000);

  before(async function () {
    await requireDocker(this);
  });

  it("puts PoC, power, power-weighted tasks, validations and paid claims on chain within six minutes", async () => {
    const port = await freePort();
    const started = Date.now();
    const child = spawn(process.execPath, ["--import", "tsx", CLI, "devnet", "--exit-when-done", "--timeout-sec", String(SIX_MINUTES_SEC), "--port", String(port)], {
      env: process.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    const seconds = (Date.now() - started) / 1000;
    expect(code, `devnet exit code after ${seconds} s; output:\n${output.slice(-4000)}`).to.equal(0);
    expect(seconds).to.be.lessThan(SIX_MINUTES_SEC + 60); // start-up and shutdown on top of the milestones
    for (const line of [
      /chain: miner-\d committed its PoC for epoch \d+: \d+ valid nonces/,
      /chain: PoC of miner-\d for epoch \d+ accepted/,
      /epoch \d+ power \(final, cap [\d.]+% over \d nodes\): miner-\d \d+/,
      /chain: miner-\d enrolled in run 1's task draws/,
      /chain: task #\d+ drawn to miner-\d by power/,
      /chain: task #\d+ completed by miner-\d/,
      /chain: task #\d+ validated by miner-\d: reproduced/,
      /chain: miner-\d claimed epoch \d+: work [\d,.]+ CNET, reward [\d,.]+ CNET \(duty check passed/,
      /done: ✓ PoC accepted, ✓ power, ✓ tasks drawn by power, ✓ tasks completed, ✓ validations, ✓ a claim with reward, ✓ a claim with work pay/,
    ]) {
      expect(output, `devnet output shows ${line}`).to.match(line);
    }
  });
});
