/** What a miner's heartbeat reports: small whatever the number of tasks the node has run. */
import { expect } from "chai";
import { heartbeatTasks } from "../../keepers/miner/agent.js";
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
