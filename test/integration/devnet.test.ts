/**
 * `computenet devnet --exit-when-done` from a fresh chain: the devnet alone must put PoC commitments,
 * power, power-weighted tasks, validations and paid claims on chain within six minutes (issue 4's bar),
 * as a newcomer would run it. Real processes, real containers; the devnet's own milestones decide.
 * Meanwhile the master's dashboard (issue 7), opened in headless Chromium at the one `dashboard: <URL>`
 * line the devnet prints, must show at least three Healthy nodes and their tasks within two minutes.
 */
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { expect } from "chai";
import type { Browser } from "playwright-core";
import { ROOT, freePort } from "../../scripts/lib/processes.js";
import { launchChromium, requireChromium } from "../keepers/support/chromium.js";
import { requireDocker } from "../keepers/support/docker.js";

const CLI = path.join(import.meta.dirname, "..", "..", "keepers", "cli", "computenet.ts");
const SIX_MINUTES_SEC = 360;

describe("integration: npm run devnet", function () {
  this.timeout((SIX_MINUTES_SEC + 120) * 1000);

  let chromium: string;

  before(async function () {
    await requireDocker(this);
    chromium = await requireChromium(this);
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
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    const dashboard = await watchDashboard(() => output, exited, chromium);
    const code = await exited;
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
    expect(output.match(/^dashboard: /gm), "one dashboard line").to.have.length(1);
    expect(dashboard.error, dashboard.error).to.equal(undefined);
    console.log(
      `      dashboard: 3 Healthy nodes and ${dashboard.tasks} tasks with their node shown ${dashboard.seconds} s after the dashboard line; screenshot ${path.relative(process.cwd(), dashboard.screenshot!)}`,
    );
  });
});

/**
 * Waits for the devnet's `dashboard: <URL>` line, opens the page in headless Chromium and polls it until it
 * shows at least three Healthy nodes and a task with its node (two minutes at most, and only while the
 * devnet runs). Reports what it saw instead of throwing, so the devnet is always waited for.
 */
async function watchDashboard(
  output: () => string,
  exited: Promise<unknown>,
  chromium: string,
): Promise<{ error?: string; seconds?: number; tasks?: number; screenshot?: string }> {
  let done = false;
  void exited.then(() => (done = true));
  let url: string | undefined;
  while (!done && !url) {
    url = /^dashboard: (\S+)$/m.exec(output())?.[1];
    if (!url) await new Promise((r) => setTimeout(r, 250));
  }
  if (!url) return { error: "the devnet exited without printing a dashboard line" };
  const seen = Date.now();
  let browser: Browser | undefined;
  try {
    browser = await launchChromium(chromium);
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto(url);
    const probe = `({
      healthy: document.querySelectorAll('#nodes tr[data-state="Healthy"]').length,
      tasks: document.querySelectorAll('#tasks tr[data-node]').length,
      view: document.getElementById("view")?.textContent ?? "",
    })`;
    let last = { healthy: 0, tasks: 0, view: "" };
    while (Date.now() - seen < 120_000) {
      if (done) return { error: `the devnet exited before the dashboard showed 3 Healthy nodes and their tasks (last: ${JSON.stringify(last)})` };
      last = (await page.evaluate(probe)) as typeof last;
      if (last.healthy >= 3 && last.tasks >= 1) {
        if (last.view !== "operator view") return { error: `the devnet's dashboard URL did not open the operator view (${last.view})` };
        const dir = path.join(ROOT, "test-results");
        mkdirSync(dir, { recursive: true });
        const screenshot = path.join(dir, "devnet-dashboard.png");
        await page.screenshot({ path: screenshot, fullPage: true });
        return { seconds: Math.round((Date.now() - seen) / 1000), tasks: last.tasks, screenshot };
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    return { error: `the dashboard did not show 3 Healthy nodes and their tasks within two minutes (last: ${JSON.stringify(last)})` };
  } catch (error) {
    return { error: `dashboard check failed: ${(error as Error).message}` };
  } finally {
    await browser?.close();
  }
}
