/** What a miner's heartbeat reports: small whatever the number of tasks the node has run. */
import { expect } from "chai";
import { heartbeatTasks, lastLines } from "../../keepers/miner/agent.js";
import { lastBytes } from "../../keepers/miner/state.js";
import type { TaskStatus } from "../../keepers/miner/docker-runtime.js";

const NOW = Date.parse("2026-11-22T12:00:00Z");

function task(taskId: string, runId: string, finishedMinutesAgo: number | null): TaskStatus {
  return {
    taskId,
    runId,
    state: finishedMinutesAgo === null ? "running" : "completed",
    exitCode: finishedMinutesAgo === null ? null : 0,
    restarts: 0,
    startedAt: new Date(NOW - 3_600_000).toISOString(),
    finishedAt: finishedMinutesAgo === null ? null : new Date(NOW - finishedMinutesAgo * 60_000).toISOString(),
  };
}

describe("miner heartbeat task list", () => {
  it("reports this run's active tasks and those finished in the last ten minutes, not older ones or other runs'", () => {
    const tasks = [task("old", "1", 11), task("recent", "1", 9), task("edge", "1", 10), task("live", "1", null), task("other", "2", null)];
    expect(heartbeatTasks(tasks, "1", NOW).map((t) => t.taskId)).to.deep.equal(["recent", "edge", "live"]);
  });

  it("never reports more than 200 tasks, keeping the latest", () => {
    const tasks = Array.from({ length: 1_500 }, (_, i) => task(`t${i}`, "1", null));
    const reported = heartbeatTasks(tasks, "1", NOW);
    expect(reported).to.have.length(200);
    expect(reported[0].taskId).to.equal("t1300");
    expect(reported[199].taskId).to.equal("t1499");
  });
});

describe("a retired task's kept output", () => {
  it("keeps the last lines asked for, a final newline included, and everything without a count", () => {
    expect(lastLines("a\nb\nc\n", 2)).to.equal("b\nc\n");
    expect(lastLines("a\nb\nc", 2)).to.equal("b\nc");
    expect(lastLines("a\nb\n", 5)).to.equal("a\nb\n");
    expect(lastLines("a\nb\n", 0)).to.equal("");
    expect(lastLines("a\nb\n", undefined)).to.equal("a\nb\n");
  });

  it("keeps at most the byte limit, from a line start, never half a character", () => {
    const line = `${"é".repeat(50)}\n`; // 101 bytes
    const text = line.repeat(100);
    const kept = lastBytes(text, 1_000);
    expect(Buffer.byteLength(kept)).to.be.at.most(1_000);
    expect(kept.startsWith("é")).to.equal(true);
    expect(text.endsWith(kept)).to.equal(true);
    expect(kept.split("\n").filter(Boolean).every((l) => l === "é".repeat(50))).to.equal(true);
    // One long line: cut inside it, at a character boundary.
    const long = "ab€".repeat(1_000);
    const cut = lastBytes(long, 100);
    expect(Buffer.byteLength(cut)).to.be.at.most(100);
    expect(long.endsWith(cut)).to.equal(true);
    expect(cut.includes("\uFFFD")).to.equal(false);
    expect(lastBytes("short", 100)).to.equal("short");
  });
});
