/**
 * The soak's judgements (keepers/cli/soak-checks.ts) on made-up tasks and RSS series: what counts as lost
 * or late, and how memory growth is judged. The soak itself (`npm run soak`) runs for minutes and is not
 * part of `npm test`.
 */
import { expect } from "chai";
import { type SoakTask, judgeMemory, judgeTask, median, percentile, slopeBound, theilSen, warmupMs, withReadmeSection } from "../../keepers/cli/soak-checks.js";

const GRACE = 170_000;

function task(change: { master?: Partial<SoakTask["master"]>; chain?: Partial<SoakTask["chain"]>; ledgerTaskId?: string | null } = {}): SoakTask {
  return {
    n: 1,
    taskId: "t1",
    submittedAt: 1_000_000,
    master: { state: "completed", error: null, exitCode: 0, node: "0xabc", finalAt: 1_030_000, files: 1, waiting: null, ...change.master },
    ledgerTaskId: change.ledgerTaskId === undefined ? "7" : change.ledgerTaskId,
    epoch: "3",
    ledgerHistory: [],
    chain: { status: "Completed", dispute: "None", final: true, finalAt: 1_090_000, validations: 2, validationsOk: 2, ...change.chain },
  };
}

describe("soak checks", () => {
  describe("judgeTask", () => {
    it("a task completed at the master and final on chain is completed, its latency up to the later of the two", () => {
      const v = judgeTask(task(), GRACE);
      expect(v).to.deep.equal({ outcome: "completed", reason: null, latencyMs: 90_000, late: false });
    });

    it("a task not final at the master is lost, with the master's reason for waiting", () => {
      const v = judgeTask(task({ master: { state: "queued", finalAt: null, waiting: "epoch 3 is in its PoC phase" } }), GRACE);
      expect(v.outcome).to.equal("lost");
      expect(v.reason).to.equal("queued at the master (epoch 3 is in its PoC phase)");
    });

    it("completed at the master but Assigned on chain, or Completed with its Dispute window open, is lost", () => {
      expect(judgeTask(task({ chain: { status: "Assigned", final: false } }), GRACE).outcome).to.equal("lost");
      const open = judgeTask(task({ chain: { final: false, dispute: "Open" } }), GRACE);
      expect(open.outcome).to.equal("lost");
      expect(open.reason).to.match(/not final \(dispute Open\)/);
      expect(judgeTask(task({ ledgerTaskId: null }), GRACE).reason).to.equal("completed at the master but never created on chain");
    });

    it("a completed task whose result file never reached the master is lost", () => {
      expect(judgeTask(task({ master: { files: 0 } }), GRACE).reason).to.equal("completed, but its result file never reached the master");
    });

    it("a failed task needs a reason, and a final on-chain task if it got one", () => {
      const expired = judgeTask(task({ master: { state: "failed", error: "gave up after 4 on-chain tasks" }, chain: { status: "Expired" } }), GRACE);
      expect(expired).to.include({ outcome: "failed", reason: "gave up after 4 on-chain tasks" });
      expect(judgeTask(task({ master: { state: "failed", exitCode: 3 }, chain: { status: "Completed" } }), GRACE).reason).to.equal("exit code 3");
      expect(judgeTask(task({ master: { state: "failed", exitCode: 0 } }), GRACE).reason).to.equal("failed at the master without a reason");
      expect(judgeTask(task({ master: { state: "failed", error: "node dead" }, chain: { status: "Assigned", final: false } }), GRACE).outcome).to.equal("lost");
      expect(judgeTask(task({ master: { state: "failed", error: "refused" }, ledgerTaskId: null }), GRACE).outcome).to.equal("failed");
    });

    it("a task invalidated by a dispute is final but not completed", () => {
      expect(judgeTask(task({ chain: { status: "Invalidated", dispute: "Invalidated" } }), GRACE).outcome).to.equal("invalidated");
    });

    it("a final task later than the grace period is late", () => {
      const v = judgeTask(task({ chain: { finalAt: 1_000_000 + GRACE + 1 } }), GRACE);
      expect(v).to.include({ outcome: "completed", late: true, latencyMs: GRACE + 1 });
    });
  });

  describe("memory", () => {
    const MB = 1024 * 1024;
    const start = 0;
    const end = 600_000;
    const windows = { flowStart: start, flowEnd: end, warmupEnd: warmupMs(end - start) };
    const bounds = { growthMB: 50, slopeMBPerMin: 3 };
    /** One sample every 10 s: `base` MB + `perMin` MB a minute + a GC sawtooth of `saw` MB. */
    const series = (base: number, perMin: number, saw: number) =>
      Array.from({ length: 61 }, (_, i) => ({ t: i * 10_000, rss: (base + (perMin * i) / 6 + (i % 4) * (saw / 3)) * MB }));

    it("warm-up is half of the flow, at most 10 minutes; the default slope bound spreads the growth bound over the second half", () => {
      expect(warmupMs(600_000)).to.equal(300_000);
      expect(warmupMs(3_600_000)).to.equal(600_000);
      expect(warmupMs(60_000)).to.equal(30_000);
      expect(slopeBound(50, 600_000)).to.equal(10);
      expect(slopeBound(50, 3_600_000)).to.equal(1.67);
    });

    it("a flat series with a GC sawtooth passes", () => {
      const v = judgeMemory(series(150, 0, 18), windows, bounds);
      expect(v.pass, v.notes.join("; ")).to.equal(true);
      expect(Math.abs(v.growthMB!)).to.be.lessThan(10);
      expect(Math.abs(v.slopeMBPerMin!)).to.be.lessThan(1);
    });

    it("a leak of 4 MB/min fails on the slope (bound 3), one of 15 MB/min on both bounds", () => {
      const slow = judgeMemory(series(150, 4, 10), windows, bounds);
      expect(slow.pass).to.equal(false);
      // Plain numbers: the Hardhat chai matchers take over closeTo for bigints and refuse a fractional delta.
      expect(slow.slopeMBPerMin, "the slope is measured").to.be.a("number");
      expect(Math.abs(slow.slopeMBPerMin! - 4), `slope ${slow.slopeMBPerMin}`).to.be.at.most(0.2);
      const fast = judgeMemory(series(150, 15, 10), windows, bounds);
      expect(fast.notes.join("; ")).to.match(/grew [\d.]+ MB after warm-up.*MB\/min over the second half/);
    });

    it("one collection's spike does not decide the verdict", () => {
      const s = series(150, 0, 0);
      s[58].rss = 400 * MB;
      const v = judgeMemory(s, windows, bounds);
      expect(v.pass).to.equal(true);
      expect(v.peakMB).to.equal(400);
    });

    it("a second half shorter than 3 minutes leaves the slope unjudged", () => {
      const v = judgeMemory(series(150, 0, 0).slice(0, 31), { flowStart: 0, flowEnd: 300_000, warmupEnd: 120_000 }, bounds);
      expect(v.slopeMBPerMin).to.equal(null);
      expect(v.notes.join()).to.match(/slope not judged/);
    });

    it("theilSen, median and percentile", () => {
      expect(theilSen([{ x: 0, y: 1 }, { x: 1, y: 3 }, { x: 2, y: 5 }, { x: 3, y: 7 }, { x: 4, y: 100 }])).to.equal(2);
      expect(median([3, 1, 2, 10])).to.equal(2.5);
      expect(percentile([5, 1, 3], 50)).to.equal(3);
      expect(percentile([], 95)).to.equal(null);
    });
  });

  it("the README's Soak section is replaced between its markers, or appended", () => {
    const readme = "# x\n\n## Soak\n\n<!-- soak:start -->\nold\n<!-- soak:end -->\n\n## Next\n";
    expect(withReadmeSection(readme, "new")).to.equal("# x\n\n## Soak\n\n<!-- soak:start -->\nnew\n<!-- soak:end -->\n\n## Next\n");
    expect(withReadmeSection("# x\n", "new")).to.equal("# x\n\n## Soak\n\n<!-- soak:start -->\nnew\n<!-- soak:end -->\n");
  });
});
