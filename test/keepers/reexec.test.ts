/**
 * Re-execution for validation (keepers/miner/reexec.ts) against the real local engine (`npm run docker`):
 * a deterministic busybox task reproduces the hash its executor computes, a different command does not,
 * and the throwaway container and its folder never outlive the call. Containers carry this file's random
 * node id; cleanup removes only those.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "chai";
import Dockerode from "dockerode";
import { DockerRuntime, LABEL_NODE, type TaskSpec } from "../../keepers/miner/docker-runtime.js";
import { heartbeatTasks } from "../../keepers/miner/agent.js";
import { VALIDATION_RUN_ID, isValidationTaskId, reexecute, removeValidationLeftovers, validationTaskId } from "../../keepers/miner/reexec.js";
import { computeTaskResult } from "../../keepers/miner/task-result.js";
import { resultHash } from "../../keepers/shared/task-hash.js";
import { TEST_IMAGE, requireDocker } from "./support/docker.js";

const NODE = `0x${randomBytes(20).toString("hex")}`;
const docker = new Dockerode();

/** Writes files (one in a sub-folder) and prints: the same bytes on every run. */
const DETERMINISTIC = ["sh", "-c", "echo 42 > /data/answer.txt; mkdir -p /data/sub; seq 1 50 > /data/sub/numbers.txt; echo done"];

describe("re-execution for validation (real Docker engine)", function () {
  this.timeout(120_000);
  let storageRoot: string;
  let runtime: DockerRuntime;
  const runtimes: DockerRuntime[] = [];
  let counter = 0;

  const newRuntime = () => {
    const r = new DockerRuntime({ docker, node: NODE, storageRoot, backoffBaseMs: 20, backoffMaxMs: 200, stopGraceSec: 1, instance: "reexec-test" });
    runtimes.push(r);
    return r;
  };
  const spec = (overrides: Partial<TaskSpec> = {}): TaskSpec => ({
    taskId: `exec-${++counter}`,
    runId: "7",
    image: TEST_IMAGE,
    command: DETERMINISTIC,
    memoryMB: 64,
    cpus: 0.5,
    ledgerTaskId: String(100 + counter),
    ...overrides,
  });
  /** What the executor does (ledger-tasks.ts): run the task, then hash its exit code and storage folder. */
  const execute = async (s: TaskSpec) => {
    await runtime.start(s);
    const status = await runtime.wait(s.taskId, 60_000);
    return computeTaskResult(runtime.storageDir(s.taskId), status.exitCode);
  };
  const ownContainers = () => docker.listContainers({ all: true, filters: { label: [`${LABEL_NODE}=${NODE.toLowerCase()}`] } });
  const validationContainers = async () => (await ownContainers()).filter((c) => isValidationTaskId(c.Labels["computenet.task"] ?? ""));

  before(async function () {
    await requireDocker(this);
    storageRoot = mkdtempSync(path.join(tmpdir(), "cn-reexec-"));
    runtime = newRuntime();
  });

  after(async () => {
    for (const r of runtimes) await r.close();
    for (const info of await ownContainers().catch(() => [])) await docker.getContainer(info.Id).remove({ force: true });
    if (storageRoot) rmSync(storageRoot, { recursive: true, force: true });
  });

  it("reproduces the executor's result hash of a deterministic task, then removes its container and folder", async () => {
    const task = spec();
    const executed = await execute(task);
    expect(executed.exitCode).to.equal(0);
    expect(executed.files.map((f) => f.name)).to.deep.equal(["answer.txt", "sub/numbers.txt"]);

    const replayed = await reexecute(runtime, task, { timeoutMs: 60_000 });
    expect(replayed.resultHash).to.equal(executed.resultHash);
    expect(replayed).to.include({ exitCode: 0, state: "completed" });
    expect(replayed.files).to.deep.equal(executed.files);
    expect(replayed.resultHash).to.equal(resultHash({ exitCode: 0, files: executed.files }));

    expect(await validationContainers()).to.have.length(0);
    expect(runtime.list().filter((t) => isValidationTaskId(t.taskId))).to.have.length(0);
    const runFolder = path.join(storageRoot, VALIDATION_RUN_ID);
    expect(existsSync(runFolder) ? readdirSync(runFolder) : []).to.deep.equal([]);
    // The executor's own task and folder are untouched.
    expect(existsSync(runtime.storageDir(task.taskId))).to.equal(true);
  });

  it("gives another hash for a different command, and for the same files with another exit code", async () => {
    const task = spec();
    const executed = await execute(task);
    const other = await reexecute(runtime, { ...task, command: ["sh", "-c", "echo 43 > /data/answer.txt; mkdir -p /data/sub; seq 1 50 > /data/sub/numbers.txt"] }, { timeoutMs: 60_000 });
    expect(other.resultHash).to.not.equal(executed.resultHash);

    const failing = await reexecute(runtime, { ...task, command: [...DETERMINISTIC.slice(0, 2), `${DETERMINISTIC[2]}; exit 3`] }, { timeoutMs: 60_000 });
    expect(failing).to.include({ exitCode: 3, state: "failed" });
    expect(failing.files).to.deep.equal(executed.files);
    expect(failing.resultHash).to.not.equal(executed.resultHash);
    // A failing deterministic task reproduces too: the exit code is part of the result.
    const again = await reexecute(runtime, { ...task, command: [...DETERMINISTIC.slice(0, 2), `${DETERMINISTIC[2]}; exit 3`] }, { timeoutMs: 60_000 });
    expect(again.resultHash).to.equal(failing.resultHash);
    expect(await validationContainers()).to.have.length(0);
  });

  it("runs as run 0 under a val-<ledgerTaskId>-<random> id, which heartbeats never report", async () => {
    const task = spec({ command: ["sleep", "30"], ledgerTaskId: "4242" });
    const running = reexecute(runtime, task, { timeoutMs: 60_000 });
    let seen: { taskId: string; runId: string } | undefined;
    for (let i = 0; i < 100 && !seen; i++) {
      seen = runtime.list().find((t) => isValidationTaskId(t.taskId) && t.state === "running");
      if (!seen) await new Promise((r) => setTimeout(r, 100));
    }
    expect(seen?.taskId).to.match(/^val-4242-[0-9a-f]{8}$/);
    expect(seen?.runId).to.equal("0");
    expect(heartbeatTasks(runtime.list(), "7").map((t) => t.taskId)).to.not.include(seen!.taskId);
    await runtime.stop(seen!.taskId);
    try {
      await running;
      expect.fail("a stopped validation container must not give a result");
    } catch (error) {
      expect((error as Error).message).to.match(/did not run to an exit \(stopped/);
    }
    expect(await validationContainers()).to.have.length(0);
  });

  it("keeps task ids within 64 characters for huge ledger ids", () => {
    const id = validationTaskId("9".repeat(78));
    expect(id).to.match(/^val-[0-9a-f]{16}-[0-9a-f]{8}$/);
    expect(validationTaskId("12")).to.match(/^val-12-[0-9a-f]{8}$/);
    expect(validationTaskId("12")).to.not.equal(validationTaskId("12"));
  });

  it("throws, and removes the container, on a timeout", async () => {
    const started = Date.now();
    try {
      await reexecute(runtime, spec({ command: ["sleep", "60"] }), { timeoutMs: 1_500 });
      expect.fail("expected a timeout");
    } catch (error) {
      expect((error as Error).message).to.match(/not finished after 1500 ms/);
    }
    expect(Date.now() - started).to.be.below(20_000);
    expect(await validationContainers()).to.have.length(0);
  });

  it("throws when the container cannot run at all (image missing), rather than giving a hash to judge with", async () => {
    try {
      await reexecute(runtime, spec({ image: "computenet/absent:never" }), { timeoutMs: 30_000 });
      expect.fail("expected an error");
    } catch (error) {
      expect((error as Error).message).to.match(/did not run to an exit \(failed: image computenet\/absent:never is not present/);
    }
    expect(await validationContainers()).to.have.length(0);
  });

  it("after a crash, removes the validation containers the next start adopts, with their folders", async () => {
    const crashed = newRuntime();
    const leftId = validationTaskId("77");
    await crashed.start({ ...spec({ command: ["sleep", "60"] }), taskId: leftId, runId: VALIDATION_RUN_ID, ledgerTaskId: undefined });
    const folder = crashed.storageDir(leftId);
    await crashed.close(); // the process dies: the container runs on

    const restarted = newRuntime();
    const { adopted } = await restarted.adoptOrCleanup();
    expect(adopted).to.include(leftId);
    const removed = await removeValidationLeftovers(restarted, adopted);
    expect(removed).to.deep.equal(adopted.filter(isValidationTaskId));
    expect(removed).to.include(leftId);
    expect(await validationContainers()).to.have.length(0);
    expect(existsSync(folder)).to.equal(false);
    expect(restarted.status(leftId)).to.equal(undefined);
  });
});
