/**
 * The miner's Docker task runtime against the real local engine (`scripts/docker-engine.sh` starts it and
 * builds `computenet/busybox:latest`). Each run of this file uses fresh random node ids, and every container
 * it makes carries one of them as its `computenet.node` label: cleanup removes only those.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { inspect } from "node:util";
import { expect } from "chai";
import Dockerode from "dockerode";
import {
  DockerRuntime,
  type DockerRuntimeOptions,
  LABEL_NODE,
  LABEL_RUN,
  LABEL_TASK,
  type TaskSpec,
  demultiplex,
} from "../../keepers/miner/docker-runtime.js";
import { requireDocker } from "./support/docker.js";

const IMAGE = "computenet/busybox:latest";
const NODE = `0x${randomBytes(20).toString("hex")}`;
const OTHER_NODE = `0x${randomBytes(20).toString("hex")}`;
const RUN_ID = "42";
const MIB = 1024 * 1024;

const docker = new Dockerode();
let storageRoot: string;
let runtimes: DockerRuntime[] = [];
let taskCounter = 0;

function newRuntime(options: Partial<DockerRuntimeOptions> = {}): DockerRuntime {
  const runtime = new DockerRuntime({
    docker,
    node: NODE,
    storageRoot,
    backoffBaseMs: 20,
    backoffMaxMs: 200,
    stopGraceSec: 2,
    ...options,
  });
  runtimes.push(runtime);
  return runtime;
}

function taskSpec(overrides: Partial<TaskSpec> = {}): TaskSpec {
  taskCounter += 1;
  return {
    taskId: `task-${taskCounter}`,
    runId: RUN_ID,
    image: IMAGE,
    command: ["echo", "hello"],
    memoryMB: 64,
    cpus: 0.5,
    ...overrides,
  };
}

/** Containers of this file's nodes only. */
async function ownContainers(node = NODE): Promise<Dockerode.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`${LABEL_NODE}=${node}`] } });
}

async function removeOwnContainers(): Promise<void> {
  for (const node of [NODE, OTHER_NODE]) {
    for (const info of await ownContainers(node)) {
      await docker.getContainer(info.Id).remove({ force: true });
    }
  }
}

async function expectRejects(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  try {
    await promise;
  } catch (error) {
    expect((error as Error).message).to.match(pattern);
    return;
  }
  expect.fail(`expected a rejection matching ${pattern}`);
}

describe("DockerRuntime", function () {
  this.timeout(20_000);

  before(async function () {
    await requireDocker(this);
    storageRoot = mkdtempSync(path.join(tmpdir(), "cn-docker-runtime-"));
  });

  afterEach(async function () {
    for (const runtime of runtimes) await runtime.close();
    runtimes = [];
    await removeOwnContainers();
  });

  after(function () {
    if (storageRoot) rmSync(storageRoot, { recursive: true, force: true });
  });

  describe("available", function () {
    it("answers true for the local engine", async function () {
      expect(await DockerRuntime.available(docker)).to.equal(true);
    });

    it("answers false, without throwing, for a socket path that does not exist", async function () {
      const nowhere = new Dockerode({ socketPath: path.join(storageRoot, "no-such.sock") });
      expect(await DockerRuntime.available(nowhere)).to.equal(false);
    });
  });

  describe("start and logs", function () {
    it("runs a command to completion and returns its stdout", async function () {
      const runtime = newRuntime();
      const spec = taskSpec({ command: ["echo", "hello", "world"] });
      const started = await runtime.start(spec);
      expect(started.containerId).to.be.a("string");
      const done = await runtime.wait(spec.taskId, 10_000);
      expect(done).to.include({ state: "completed", exitCode: 0, restarts: 0, taskId: spec.taskId, runId: RUN_ID });
      expect(done.startedAt).to.be.a("string");
      expect(done.finishedAt).to.be.a("string");
      expect(await runtime.logs(spec.taskId)).to.deep.equal({ stdout: "hello world\n", stderr: "" });
    });

    it("keeps stdout and stderr apart, and tails their combined output", async function () {
      const runtime = newRuntime();
      // The pause orders the last line after the others: the engine copies the two streams concurrently.
      const spec = taskSpec({
        command: ["sh", "-c", "echo out1; echo err1 >&2; echo out2; echo err2 >&2; sleep 0.2; echo last"],
      });
      await runtime.start(spec);
      await runtime.wait(spec.taskId, 10_000);
      expect(await runtime.logs(spec.taskId)).to.deep.equal({ stdout: "out1\nout2\nlast\n", stderr: "err1\nerr2\n" });
      expect(await runtime.logs(spec.taskId, { tail: 1 })).to.deep.equal({ stdout: "last\n", stderr: "" });
    });

    it("passes env to the container, and no shell unless asked for", async function () {
      const runtime = newRuntime();
      const spec = taskSpec({
        command: ["sh", "-c", 'echo "$GREETING $TARGET"'],
        env: { GREETING: "hi", TARGET: "$HOME" },
      });
      await runtime.start(spec);
      await runtime.wait(spec.taskId, 10_000);
      expect((await runtime.logs(spec.taskId)).stdout).to.equal("hi $HOME\n");

      const literal = taskSpec({ command: ["echo", "$GREETING", "a;b"], env: { GREETING: "hi" } });
      await runtime.start(literal);
      await runtime.wait(literal.taskId, 10_000);
      expect((await runtime.logs(literal.taskId)).stdout).to.equal("$GREETING a;b\n");
    });

    it("reports the exit code of a failing command and the state failed", async function () {
      const runtime = newRuntime();
      const spec = taskSpec({ command: ["sh", "-c", "exit 3"] });
      await runtime.start(spec);
      const done = await runtime.wait(spec.taskId, 10_000);
      expect(done).to.include({ state: "failed", exitCode: 3, restarts: 0, error: "exited with code 3" });
    });

    it("says when the memory limit killed a task", async function () {
      const runtime = newRuntime();
      // dd allocates its 64 MiB block in one go: far over the 16 MiB limit, with no swap to spill into.
      const spec = taskSpec({ command: ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"], memoryMB: 16 });
      await runtime.start(spec);
      const done = await runtime.wait(spec.taskId, 10_000);
      expect(done).to.include({ state: "failed", exitCode: 137 });
      expect(done.error).to.match(/memory limit/);
    });

    it("mounts the storage folder at /data: a file written in the container appears on the host", async function () {
      const runtime = newRuntime();
      const spec = taskSpec({ command: ["sh", "-c", "echo checkpoint > /data/model.bin"] });
      await runtime.start(spec);
      await runtime.wait(spec.taskId, 10_000);
      const dir = runtime.storageDir(spec.taskId);
      expect(dir).to.equal(path.join(storageRoot, RUN_ID, spec.taskId));
      expect(readFileSync(path.join(dir, "model.bin"), "utf8")).to.equal("checkpoint\n");
    });

    it("is idempotent for a taskId it already knows", async function () {
      const runtime = newRuntime();
      const spec = taskSpec({ command: ["sleep", "30"] });
      const [first, concurrent] = await Promise.all([runtime.start(spec), runtime.start(spec)]);
      const again = await runtime.start({ ...spec, command: ["echo", "other"] });
      expect(first.state).to.equal("running");
      expect(concurrent.containerId).to.equal(first.containerId);
      expect(again.containerId).to.equal(first.containerId);
      const containers = await docker.listContainers({
        all: true,
        filters: { label: [`${LABEL_TASK}=${spec.taskId}`, `${LABEL_NODE}=${NODE}`] },
      });
      expect(containers).to.have.length(1);
      expect(runtime.list().map((status) => status.taskId)).to.deep.equal([spec.taskId]);
    });

    it("fails, without throwing, when the image is absent and pulls are disabled", async function () {
      const runtime = newRuntime();
      const image = `computenet/absent-${randomBytes(4).toString("hex")}:latest`;
      const spec = taskSpec({ image });
      const status = await runtime.start(spec);
      expect(status.state).to.equal("failed");
      expect(status.error).to.include(image).and.to.include("pulls are disabled");
      expect(status.containerId).to.equal(undefined);
      expect((await runtime.wait(spec.taskId, 1_000)).state).to.equal("failed");
      expect(await ownContainers()).to.have.length(0);
    });
  });

  describe("container settings", function () {
    it("sets the limits, labels and lock-down, with the storage folder as its only mount", async function () {
      const runtime = newRuntime();
      const spec = taskSpec({ command: ["true"], memoryMB: 96, cpus: 1.5 });
      const { containerId } = await runtime.start(spec);
      const inspect = await docker.getContainer(containerId!).inspect();
      const host = inspect.HostConfig;

      expect(inspect.Name).to.equal(`/cn-${NODE.slice(2, 12)}-${spec.taskId}`);
      expect(inspect.Config.Labels).to.include({ [LABEL_NODE]: NODE, [LABEL_RUN]: RUN_ID, [LABEL_TASK]: spec.taskId });
      expect(inspect.Config.Tty).to.equal(false);
      expect(host.Memory).to.equal(96 * MIB);
      expect(host.MemorySwap).to.equal(96 * MIB);
      expect(host.NanoCpus).to.equal(1.5e9);
      expect(host.NetworkMode).to.equal("none");
      expect(host.Privileged).to.equal(false);
      expect(host.CapDrop).to.deep.equal(["ALL"]);
      expect(host.CapAdd ?? []).to.deep.equal([]);
      expect(host.SecurityOpt).to.deep.equal(["no-new-privileges"]);
      expect(inspect.Config.User).to.equal("65534:65534");
      expect(host.PidsLimit).to.equal(1024);
      expect(host.LogConfig).to.deep.equal({ Type: "json-file", Config: { "max-size": "10m", "max-file": "2" } });
      const folder = statSync(runtime.storageDir(spec.taskId));
      expect([folder.uid, folder.gid, folder.mode & 0o777]).to.deep.equal([65534, 65534, 0o700]);
      expect(host.AutoRemove).to.equal(false);
      expect(host.Binds ?? []).to.deep.equal([]);
      expect(host.DeviceRequests ?? []).to.deep.equal([]);
      expect(inspect.Mounts).to.have.length(1);
      expect(inspect.Mounts[0]).to.include({
        Type: "bind",
        Source: runtime.storageDir(spec.taskId),
        Destination: "/data",
        RW: true,
      });
    });

    it("runs the task as an unprivileged user: a setuid file it makes in /data grants nothing on the host", async function () {
      const runtime = newRuntime();
      const spec = taskSpec({ command: ["sh", "-c", "id -u; cp /bin/busybox /data/x && chmod 4755 /data/x; ls -ln /data/x"] });
      await runtime.start(spec);
      const done = await runtime.wait(spec.taskId, 15_000);
      expect(done.state).to.equal("completed");
      const { stdout } = await runtime.logs(spec.taskId);
      expect(stdout.split("\n")[0]).to.equal("65534");
      const file = statSync(path.join(runtime.storageDir(spec.taskId), "x"));
      expect(file.uid).to.equal(65534); // setuid to nobody, not to root
    });

    it("refuses a task asking for more memory or CPUs than the node has", async function () {
      const runtime = newRuntime({ maxMemoryMB: 512, maxCpus: 2 });
      await expectRejects(runtime.start(taskSpec({ memoryMB: 513 })), /^invalid TaskSpec\.memoryMB: 513 is more than this node has \(512\)$/);
      await expectRejects(runtime.start(taskSpec({ cpus: 2.5 })), /^invalid TaskSpec\.cpus: 2\.5 is more than this node has \(2\)$/);
      expect(await ownContainers()).to.have.length(0);
    });

    it("asks for NVIDIA GPUs only when the task wants some", async function () {
      // Without an NVIDIA runtime the engine accepts the request at create time and refuses it at start;
      // on a machine with one, the task simply runs. Either way the container records the request.
      const runtime = newRuntime();
      const spec = taskSpec({ gpus: 2 });
      const status = await runtime.start(spec);
      if (status.state === "failed") expect(status.error).to.match(/could not start the container/);
      const inspect = await docker.getContainer(status.containerId!).inspect();
      expect(inspect.HostConfig.DeviceRequests).to.have.length(1);
      expect(inspect.HostConfig.DeviceRequests![0]).to.deep.include({
        Driver: "nvidia",
        Count: 2,
        Capabilities: [["gpu"]],
      });
    });

    it("refuses host networking unless the node allows it", async function () {
      const refusing = newRuntime();
      await expectRejects(
        refusing.start(taskSpec({ network: "host" })),
        /network "host" is not allowed.*allowHostNetwork/,
      );
      expect(refusing.list()).to.have.length(0);

      const allowing = newRuntime({ allowHostNetwork: true });
      const spec = taskSpec({ network: "host", command: ["true"] });
      const { containerId } = await allowing.start(spec);
      expect((await docker.getContainer(containerId!).inspect()).HostConfig.NetworkMode).to.equal("host");
    });

    const valid = taskSpec();
    const badSpecs: Array<[string, Record<string, unknown>, RegExp]> = [
      ["taskId", { taskId: "a/../b" }, /TaskSpec\.taskId/],
      ["taskId", { taskId: "" }, /TaskSpec\.taskId/],
      ["taskId", { taskId: "x".repeat(65) }, /TaskSpec\.taskId/],
      ["runId", { runId: "../etc" }, /TaskSpec\.runId/],
      ["runId", { runId: "007" }, /TaskSpec\.runId/],
      ["runId", { runId: 7 }, /TaskSpec\.runId/],
      ["image", { image: "" }, /TaskSpec\.image/],
      ["image", { image: "busybox latest" }, /TaskSpec\.image/],
      ["command", { command: [] }, /TaskSpec\.command/],
      ["command", { command: "echo hi" }, /TaskSpec\.command/],
      ["command", { command: ["echo", 1] }, /TaskSpec\.command\.1/],
      ["command", { command: [""] }, /TaskSpec\.command/],
      ["env", { env: { "BAD-NAME": "x" } }, /TaskSpec\.env\.BAD-NAME: names must match/],
      ["env", { env: { "1ST": "x" } }, /TaskSpec\.env\.1ST/],
      ["env", { env: { OK: 1 } }, /TaskSpec\.env\.OK/],
      ["memoryMB", { memoryMB: undefined }, /TaskSpec\.memoryMB/],
      ["memoryMB", { memoryMB: 0 }, /TaskSpec\.memoryMB/],
      ["memoryMB", { memoryMB: -64 }, /TaskSpec\.memoryMB/],
      ["memoryMB", { memoryMB: 1.5 }, /TaskSpec\.memoryMB/],
      ["cpus", { cpus: undefined }, /TaskSpec\.cpus/],
      ["cpus", { cpus: 0 }, /TaskSpec\.cpus/],
      ["cpus", { cpus: Number.NaN }, /TaskSpec\.cpus/],
      ["gpus", { gpus: -1 }, /TaskSpec\.gpus/],
      ["gpus", { gpus: 0.5 }, /TaskSpec\.gpus/],
      ["maxRestarts", { maxRestarts: -1 }, /TaskSpec\.maxRestarts/],
      ["maxRestarts", { maxRestarts: 1_000 }, /TaskSpec\.maxRestarts/],
      ["network", { network: "bridge" }, /TaskSpec\.network/],
      ["memoryMb (unknown)", { memoryMb: 64 }, /TaskSpec: .*memoryMb/],
    ];
    for (const [field, overrides, pattern] of badSpecs) {
      const [[key, value]] = Object.entries(overrides);
      it(`refuses ${key} = ${inspect(value)}, with an error naming ${field}`, async function () {
        const runtime = newRuntime();
        await expectRejects(runtime.start({ ...valid, ...overrides } as TaskSpec), pattern);
        expect(runtime.list()).to.have.length(0);
      });
    }
  });

  describe("restarts", function () {
    it("restarts a failing task with exponential backoff, then marks it failed", async function () {
      const delays: number[] = [];
      const logger = {
        info() {},
        error() {},
        warn(fields: object) {
          delays.push((fields as { delayMs: number }).delayMs);
        },
      };
      const runtime = newRuntime({ logger, backoffBaseMs: 20, backoffMaxMs: 50 });
      const spec = taskSpec({ command: ["sh", "-c", "echo attempt; exit 7"], maxRestarts: 3 });
      await runtime.start(spec);
      const done = await runtime.wait(spec.taskId, 15_000);
      expect(done).to.include({ state: "failed", exitCode: 7, restarts: 3 });
      expect(delays).to.deep.equal([20, 40, 50]); // base * 2^n, capped at backoffMaxMs
      expect((await runtime.logs(spec.taskId)).stdout).to.equal("attempt\n".repeat(4));
    });

    it("completes a task that succeeds on a later attempt", async function () {
      const runtime = newRuntime();
      // The attempt counter lives in /data, which survives restarts; the third attempt succeeds.
      const script =
        "n=$(cat /data/attempts 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/attempts; [ $n -ge 3 ]";
      const spec = taskSpec({ command: ["sh", "-c", script], maxRestarts: 5 });
      await runtime.start(spec);
      const done = await runtime.wait(spec.taskId, 15_000);
      expect(done).to.include({ state: "completed", exitCode: 0, restarts: 2 });
      expect(readFileSync(path.join(runtime.storageDir(spec.taskId), "attempts"), "utf8")).to.equal("3\n");
    });

    it("does not restart a task stopped during its backoff", async function () {
      const runtime = newRuntime({ backoffBaseMs: 30_000, backoffMaxMs: 30_000 });
      const spec = taskSpec({ command: ["sh", "-c", "exit 1"], maxRestarts: 2 });
      await runtime.start(spec);
      while (runtime.status(spec.taskId)?.state !== "restarting") await new Promise((r) => setTimeout(r, 20));
      const stopped = await runtime.stop(spec.taskId);
      expect(stopped).to.include({ state: "stopped", restarts: 0, exitCode: 1 });
    });
  });

  describe("stop, wait and remove", function () {
    it("stops a long task quickly, and does not restart it", async function () {
      const runtime = newRuntime();
      const spec = taskSpec({ command: ["sleep", "60"], maxRestarts: 3 });
      expect((await runtime.start(spec)).state).to.equal("running");
      const begin = Date.now();
      const stopped = await runtime.stop(spec.taskId);
      expect(Date.now() - begin).to.be.below(3_000);
      expect(stopped).to.include({ state: "stopped", restarts: 0 });
      expect(stopped.exitCode).to.be.a("number");
      const inspect = await docker.getContainer(stopped.containerId!).inspect();
      expect(inspect.State.Running).to.equal(false);
      expect(await runtime.stop(spec.taskId)).to.deep.equal(stopped); // stopping again changes nothing
    });

    it("rejects wait() after its timeout and for an unknown task", async function () {
      const runtime = newRuntime();
      const spec = taskSpec({ command: ["sleep", "60"] });
      await runtime.start(spec);
      await expectRejects(runtime.wait(spec.taskId, 50), /not finished after 50 ms \(state running\)/);
      await expectRejects(runtime.wait("nope"), /unknown task nope/);
    });

    it("removes the container and forgets the task, keeping its storage folder", async function () {
      const runtime = newRuntime();
      const spec = taskSpec({ command: ["sh", "-c", "echo kept > /data/out; sleep 60"] });
      const { containerId } = await runtime.start(spec);
      const dir = runtime.storageDir(spec.taskId);
      while (!existsSync(path.join(dir, "out"))) await new Promise((r) => setTimeout(r, 20));
      await runtime.remove(spec.taskId);
      await expectRejects(docker.getContainer(containerId!).inspect(), /no such container/i);
      expect(runtime.status(spec.taskId)).to.equal(undefined);
      expect(readFileSync(path.join(dir, "out"), "utf8")).to.equal("kept\n");
      await runtime.remove(spec.taskId); // removing again is harmless
    });
  });

  describe("adoptOrCleanup", function () {
    it("adopts a running task after a restart of the runtime, which can then stop it", async function () {
      const before = newRuntime();
      const spec = taskSpec({ command: ["sleep", "60"] });
      const { containerId } = await before.start(spec);
      await before.close();

      const after = newRuntime();
      expect(after.status(spec.taskId)).to.equal(undefined);
      const { adopted, removed } = await after.adoptOrCleanup();
      expect(adopted).to.deep.equal([spec.taskId]);
      expect(removed).to.deep.equal([]);
      expect(after.status(spec.taskId)).to.include({ state: "running", runId: RUN_ID, containerId, exitCode: null });
      expect(after.storageDir(spec.taskId)).to.equal(path.join(storageRoot, RUN_ID, spec.taskId));
      expect((await after.stop(spec.taskId)).state).to.equal("stopped");
    });

    it("records exited containers with their exit code", async function () {
      const before = newRuntime();
      const failing = taskSpec({ command: ["sh", "-c", "exit 5"] });
      const succeeding = taskSpec({ command: ["true"] });
      await before.start(failing);
      await before.start(succeeding);
      await before.wait(failing.taskId, 10_000);
      await before.wait(succeeding.taskId, 10_000);
      await before.close();

      const after = newRuntime();
      const { adopted } = await after.adoptOrCleanup();
      expect([...adopted].sort()).to.deep.equal([failing.taskId, succeeding.taskId].sort());
      expect(after.status(failing.taskId)).to.include({ state: "failed", exitCode: 5, error: "exited with code 5" });
      expect(after.status(succeeding.taskId)).to.include({ state: "completed", exitCode: 0 });
      expect(after.status(succeeding.taskId)!.finishedAt).to.be.a("string");
      expect((await after.wait(failing.taskId, 1_000)).exitCode).to.equal(5);
    });

    it("removes broken containers of its node and leaves other nodes' containers alone", async function () {
      const neverStarted = await docker.createContainer({
        Image: IMAGE,
        Cmd: ["true"],
        Labels: { [LABEL_NODE]: NODE, [LABEL_RUN]: RUN_ID, [LABEL_TASK]: "never-started" },
        HostConfig: { NetworkMode: "none" },
      });
      const badLabels = await docker.createContainer({
        Image: IMAGE,
        Cmd: ["true"],
        Labels: { [LABEL_NODE]: NODE, [LABEL_TASK]: "../escape" },
        HostConfig: { NetworkMode: "none" },
      });
      await badLabels.start();
      await badLabels.wait();
      const other = newRuntime({ node: OTHER_NODE });
      const otherSpec = taskSpec({ command: ["sleep", "60"] });
      const { containerId: otherId } = await other.start(otherSpec);

      const runtime = newRuntime();
      const { adopted, removed } = await runtime.adoptOrCleanup();
      expect(adopted).to.deep.equal([]);
      expect([...removed].sort()).to.deep.equal([neverStarted.id, badLabels.id].sort());
      expect(await ownContainers()).to.have.length(0);
      expect((await docker.getContainer(otherId!).inspect()).State.Running).to.equal(true);
      expect(other.status(otherSpec.taskId)?.state).to.equal("running");
    });
  });

  describe("demultiplex", function () {
    it("joins frames per stream before decoding, so split UTF-8 characters survive", function () {
      const frame = (stream: number, payload: Buffer) => {
        const header = Buffer.alloc(8);
        header[0] = stream;
        header.writeUInt32BE(payload.length, 4);
        return Buffer.concat([header, payload]);
      };
      const euro = Buffer.from("€", "utf8"); // three bytes
      const raw = Buffer.concat([
        frame(1, euro.subarray(0, 1)),
        frame(2, Buffer.from("e")),
        frame(1, euro.subarray(1)),
      ]);
      expect(demultiplex(raw)).to.deep.equal({ stdout: "€", stderr: "e" });
    });
  });
});
