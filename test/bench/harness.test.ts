/**
 * The benchmark harness (bench/): sections run in order, a missing one reported as not run and a failing
 * one recorded without losing the others; targets judged (fixed and derived limits); the gas figures read
 * from bench/gas.json or, before scripts/gas.ts writes it, from docs/gas.md; RESULTS.md says it all. No
 * section is run for real here (`npm run bench` does that).
 */
import { readFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import { runBench } from "../../bench/harness.js";
import { renderResults } from "../../bench/report.js";
import { GAS_REFERENCE, TARGETS, judge } from "../../bench/targets.js";
import { GAS_MD, STEADY_STATE_ROWS, fromGasJson, fromGasMarkdown } from "../../bench/sections/gas.js";
import { type Measured, median, medianRun, spread } from "../../bench/sections/http.js";

const target = (figure: string) => TARGETS.find((t) => t.figure === figure)!;

describe("benchmark harness (bench/)", () => {
  describe("runBench", () => {
    let dir: string;
    const order: string[] = [];

    before(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), "cn-bench-test-"));
      await writeFile(path.join(dir, "boom.ts"), `export async function run() { throw new Error("no engine here"); }\n`);
      await writeFile(
        path.join(dir, "fine.ts"),
        `export const how = { "flow.minerStartToHealthySec": "measured by the test" };
export async function run(opts: { quick: boolean }) {
  return { "flow.minerStartToHealthySec": opts.quick ? 4.5 : 5, "master.heartbeatsPerSec": 4000, "x.nan": NaN };
}\n`,
      );
    });

    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it("runs every section in order, records a failure and a missing module, and keeps the others' figures", async () => {
      const results = await runBench({ dir, names: ["boom", "absent", "fine"], quick: true, command: "test", progress: (line) => order.push(line) });
      expect(results.sections.map((s) => [s.name, s.status])).to.deep.equal([
        ["boom", "failed"],
        ["absent", "not run"],
        ["fine", "ok"],
      ]);
      expect(results.sections[0].note).to.contain("no engine here");
      expect(results.sections[1].note).to.contain("absent.ts does not exist yet");
      expect(results.figures).to.deep.equal({ "flow.minerStartToHealthySec": 4.5, "master.heartbeatsPerSec": 4000 });
      expect(results.mode).to.equal("quick");
      expect(results.machine.cpus).to.be.greaterThan(0);
      expect(results.machine.node).to.equal(process.version);
      const verdicts = Object.fromEntries(results.targets.map((t) => [t.figure, t.verdict]));
      expect(verdicts["flow.minerStartToHealthySec"]).to.equal("pass");
      expect(verdicts["master.heartbeatsPerSec"]).to.equal("fail");
      expect(verdicts["gas.claim"]).to.equal("not run");
      // A line when each section starts and ends.
      expect(order.some((l) => /^boom: FAILED after [\d.]+ s: Error: no engine here/.test(l))).to.equal(true);
      expect(order.some((l) => /^fine: done in [\d.]+ s \(2 figures\)$/.test(l))).to.equal(true);

      const md = renderResults(results);
      expect(md).to.contain("| `flow.minerStartToHealthySec` | ≤ 10 | 4.50 | ✅ pass |");
      expect(md).to.contain("| `master.heartbeatsPerSec` | ≥ 5,000 | 4,000 | ❌ fail |");
      expect(md).to.contain("| `gas.claim` | ≤ 128,000 (1.00 × Prime's 128,021) | — | not run |");
      expect(md).to.contain("measured by the test");
      expect(md).to.match(/Not run: \S*absent\.ts does not exist yet/);
      expect(md).to.contain(`Node ${process.version}`);
    });
  });

  describe("targets", () => {
    it("passes at the limit and fails beyond it, both ways", () => {
      expect(judge(target("flow.minerStartToHealthySec"), { "flow.minerStartToHealthySec": 10 }).verdict).to.equal("pass");
      expect(judge(target("flow.minerStartToHealthySec"), { "flow.minerStartToHealthySec": 10.01 }).verdict).to.equal("fail");
      expect(judge(target("master.heartbeatsPerSec"), { "master.heartbeatsPerSec": 5000 }).verdict).to.equal("pass");
      expect(judge(target("master.heartbeatsPerSec"), { "master.heartbeatsPerSec": 4999 }).verdict).to.equal("fail");
    });

    it("derives discovery's limit from the machine's bounds, and judges nothing without them", () => {
      const t = target("discovery.signedRequestsPerSec");
      const bounds = { "bound.ecrecoverPerSec": 10_000, "bound.httpHelloPerSec": 50_000 };
      expect(judge(t, { ...bounds, "discovery.signedRequestsPerSec": 6_000 })).to.include({ verdict: "pass", limit: 6_000, derived: true });
      expect(judge(t, { ...bounds, "discovery.signedRequestsPerSec": 5_999 }).verdict).to.equal("fail");
      expect(judge(t, { "discovery.signedRequestsPerSec": 9_999 }).verdict).to.equal("not run");
    });

    it("holds issue 5's gas limits: 70 % of Prime's figure (Prime's own for claim)", () => {
      for (const g of GAS_REFERENCE) {
        const share = g.key === "claim" ? 1 : 0.7;
        expect(Math.abs(g.limit - share * g.prime), g.key).to.be.below(100);
      }
    });
  });

  describe("gas figures", () => {
    it("reads docs/gas.md's table and each step's steady-state row", async () => {
      const { rows, steady } = fromGasMarkdown(await readFile(GAS_MD, "utf8"));
      expect(rows.size).to.be.greaterThan(40);
      for (const g of GAS_REFERENCE) {
        const row = rows.get(STEADY_STATE_ROWS[g.key]);
        expect(row?.repeat, g.key).to.be.a("number");
        expect(steady.get(g.key)).to.equal(row!.repeat);
      }
      expect(rows.get("MinerRegistry.withdraw")?.first).to.be.a("number");
      expect(rows.get("MinerRegistry.withdraw")?.repeat).to.equal(undefined);
    });

    it("reads bench/gas.json's rows and steady-state figures", () => {
      const { rows, steady } = fromGasJson({
        "MinerRegistry.registerNode": { first: 216_000, repeat: 181_788 },
        "MinerRegistry.withdraw": { first: "59,240" },
        registerNode: 181_788,
        claim: "120000",
      });
      expect(rows.get("MinerRegistry.registerNode")).to.deep.equal({ first: 216_000, repeat: 181_788 });
      expect(rows.get("MinerRegistry.withdraw")).to.deep.equal({ first: 59_240, repeat: undefined });
      expect([...steady]).to.deep.equal([
        ["registerNode", 181_788],
        ["claim", 120_000],
      ]);
    });
  });

  describe("the http section's repeated runs", () => {
    const run = (ok: number, durationMs: number, p99Ms: number) => ({ ok, durationMs, p99Ms }) as Measured;

    it("takes the run of median rate (answers per second, not answers or duration) and refuses an even number of runs", () => {
      // Rates 10,000, 8,000 and 12,000 a second: the median by rate is the first run; by answers or by
      // duration it would be the third.
      const runs = [run(20_000, 2_000, 1), run(40_000, 5_000, 2), run(36_000, 3_000, 3)];
      expect(medianRun(runs).p99Ms).to.equal(1);
      expect(medianRun([run(10, 1, 7)]).p99Ms).to.equal(7);
      expect(() => medianRun(runs.slice(0, 2))).to.throw(/odd number of runs, got 2/);
      expect(runs.map((r) => r.p99Ms)).to.deep.equal([1, 2, 3]); // not sorted in place
    });

    it("gives the median (of an even count, the mean of the two middle values) and the spread as (largest − smallest) ÷ median", () => {
      expect(median([10_000, 8_000, 12_000])).to.equal(10_000);
      expect(median([12, 9, 11, 10])).to.equal(10.5);
      expect(median([5])).to.equal(5);
      expect(() => median([])).to.throw(/no values/);
      expect(spread([10_000, 8_000, 12_000])).to.equal(0.4);
      expect(spread([21_000, 21_000, 21_000, 21_000])).to.equal(0);
      expect(spread([9, 10, 11, 12])).to.equal(0.29); // 3 ÷ 10.5
      expect(() => spread([])).to.throw(/no values/);
    });
  });
});
