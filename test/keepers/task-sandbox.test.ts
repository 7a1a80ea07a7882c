/**
 * The task sandbox of the miner's Docker runtime (keepers/miner/docker-runtime.ts, header "The sandbox"):
 *
 *   - pure: each hostile spec goes through the same steps as `DockerRuntime.start` (validateTaskSpec, the
 *     node's policy, the translation into create options, the sandbox check) and is refused with its reason;
 *     the check itself refuses create options loosened in every way it guards against (a regression in the
 *     translation must not reach the engine);
 *   - against the real engine: a task runs with the limits of its spec, read back from `docker inspect` and
 *     from inside the container (cgroup limits, capabilities, user, devices, mounts, no engine socket).
 *
 * Containers carry a fresh random node id as their `computenet.node` label; cleanup removes only those.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "chai";
import Dockerode from "dockerode";
import {
  DATA_DIR,
  DockerRuntime,
  LABEL_NODE,
  type SandboxPolicy,
  TASK_PIDS_LIMIT,
  admissionProblem,
  containerCreateOptions,
  sandboxViolation,
} from "../../keepers/miner/docker-runtime.js";
import { type TaskSpec, validateTaskSpec } from "../../keepers/miner/task-spec.js";
import { requireDocker, TEST_IMAGE } from "./support/docker.js";

const MIB = 1024 * 1024;
const ROOT = "/srv/computenet/tasks";
const POLICY: SandboxPolicy = { storageRoot: ROOT, allowHostNetwork: false, maxMemoryMB: 4096, maxCpus: 4, maxGpus: 1 };
const BASE: TaskSpec = { taskId: "t1", runId: "7", image: "computenet/busybox:latest", command: ["true"], memoryMB: 256, cpus: 1.5 };

/** What DockerRuntime.start does before it touches the engine; the create options, or the refusal. */
function translate(spec: unknown, policy: SandboxPolicy = POLICY): { options: Dockerode.ContainerCreateOptions } | { refused: string } {
  let valid;
  try {
    valid = validateTaskSpec(spec);
  } catch (error) {
    return { refused: (error as Error).message };
  }
  const admission = admissionProblem(valid, policy);
  if (admission) return { refused: admission };
  const dataDir = path.join(policy.storageRoot, valid.runId, valid.taskId);
  const options = containerCreateOptions(valid, { name: `cn-test-${valid.taskId}`, dataDir, labels: { [LABEL_NODE]: "0xtest" } });
  const breach = sandboxViolation(options, policy, dataDir);
  return breach ? { refused: `refused by the sandbox: ${breach}` } : { options };
}

function refusal(spec: unknown, policy?: SandboxPolicy): string {
  const result = translate(spec, policy);
  expect(result, `expected ${JSON.stringify(spec)} to be refused`).to.have.property("refused");
  return (result as { refused: string }).refused;
}

function accepted(spec: unknown, policy?: SandboxPolicy): Dockerode.ContainerCreateOptions {
  const result = translate(spec, policy);
  if ("refused" in result) expect.fail(`expected ${JSON.stringify(spec)} to be accepted, refused: ${result.refused}`);
  return result.options;
}

describe("task sandbox: spec → Docker create options (pure)", () => {
  it("translates a spec into a locked-down container: limits set, unprivileged, only its storage folder", () => {
    const options = accepted({ ...BASE, env: { EPOCHS: "3" } });
    expect(options).to.deep.include({ Image: BASE.image, Cmd: ["true"], Env: ["EPOCHS=3"], User: "65534:65534", Tty: false, OpenStdin: false });
    expect(options.HostConfig).to.deep.equal({
      NetworkMode: "none",
      Memory: 256 * MIB,
      MemorySwap: 256 * MIB,
      NanoCpus: 1.5e9,
      Privileged: false,
      CapDrop: ["ALL"],
      PidsLimit: TASK_PIDS_LIMIT,
      LogConfig: { Type: "json-file", Config: { "max-size": "10m", "max-file": "2" } },
      SecurityOpt: ["no-new-privileges"],
      ReadonlyRootfs: false,
      Init: true,
      AutoRemove: false,
      Mounts: [{ Type: "bind", Source: path.join(ROOT, "7", "t1"), Target: DATA_DIR, ReadOnly: false }],
    });
  });

  it("grants GPUs only up to the node's count, as a device request (never host devices)", () => {
    const host = accepted({ ...BASE, gpus: 1 }).HostConfig!;
    expect(host.DeviceRequests).to.deep.equal([{ Driver: "nvidia", Count: 1, Capabilities: [["gpu"]] }]);
    expect(host.Devices).to.equal(undefined);
    expect(refusal({ ...BASE, gpus: 2 })).to.equal("invalid TaskSpec.gpus: 2 is more than this node has (1)");
    expect(refusal({ ...BASE, gpus: 1 }, { ...POLICY, maxGpus: 0 })).to.equal("invalid TaskSpec.gpus: 1 is more than this node has (0)");
  });

  it("gives host networking only where the operator allows it", () => {
    expect(refusal({ ...BASE, network: "host" })).to.match(/network "host" is not allowed on this node .*--allow-host-network/);
    expect(accepted({ ...BASE, network: "host" }, { ...POLICY, allowHostNetwork: true }).HostConfig!.NetworkMode).to.equal("host");
  });

  it("holds memory and CPUs to the operator's maxima, and requires both in the spec", () => {
    expect(refusal({ ...BASE, memoryMB: 4097 })).to.equal("invalid TaskSpec.memoryMB: 4097 is more than this node has (4096)");
    expect(refusal({ ...BASE, cpus: 4.5 })).to.equal("invalid TaskSpec.cpus: 4.5 is more than this node has (4)");
    const { memoryMB: _m, ...noMemory } = BASE;
    const { cpus: _c, ...noCpus } = BASE;
    expect(refusal(noMemory)).to.match(/^invalid TaskSpec\.memoryMB: /);
    expect(refusal(noCpus)).to.match(/^invalid TaskSpec\.cpus: /);
    const atMax = accepted({ ...BASE, memoryMB: 4096, cpus: 4 }).HostConfig!;
    expect([atMax.Memory, atMax.MemorySwap, atMax.NanoCpus]).to.deep.equal([4096 * MIB, 4096 * MIB, 4e9]);
  });

  // Each hostile spec, as a buyer or a compromised master could send it; parsed from JSON like a request body.
  const hostile: Array<[string, string, RegExp]> = [
    ["privileged: true", '{"privileged": true}', /^invalid TaskSpec: Unrecognized key: "privileged"/],
    ["Privileged in a HostConfig", '{"HostConfig": {"Privileged": true}}', /^invalid TaskSpec: Unrecognized key: "HostConfig"/],
    ["a bind of the host's root", '{"Binds": ["/:/host"]}', /Unrecognized key: "Binds"/],
    ["a mount of the Docker socket", '{"mounts": [{"source": "/var/run/docker.sock", "target": "/var/run/docker.sock"}]}', /Unrecognized key: "mounts"/],
    ["a volume outside the storage folder", '{"volumes": {"/etc": {}}}', /Unrecognized key: "volumes"/],
    ["host devices", '{"devices": ["/dev/sda"]}', /Unrecognized key: "devices"/],
    ["added capabilities", '{"capAdd": ["SYS_ADMIN"]}', /Unrecognized key: "capAdd"/],
    ["root as user", '{"user": "0:0"}', /Unrecognized key: "user"/],
    ["the host's PID namespace", '{"pidMode": "host"}', /Unrecognized key: "pidMode"/],
    ["network bridge", '{"network": "bridge"}', /^invalid TaskSpec\.network: /],
    ["another container's network", '{"network": "container:abc"}', /^invalid TaskSpec\.network: /],
    ["network HOST in capitals", '{"network": "HOST"}', /^invalid TaskSpec\.network: /],
    ["host network on a node that does not allow it", '{"network": "host"}', /network "host" is not allowed on this node/],
    ["no memory limit (0)", '{"memoryMB": 0}', /^invalid TaskSpec\.memoryMB: /],
    ["unlimited memory (-1)", '{"memoryMB": -1}', /^invalid TaskSpec\.memoryMB: /],
    ["memory as a string", '{"memoryMB": "1g"}', /^invalid TaskSpec\.memoryMB: /],
    ["memory far over the node's", '{"memoryMB": 100000}', /^invalid TaskSpec\.memoryMB: 100000 is more than this node has \(4096\)$/],
    ["memory beyond any machine (1e12 MiB)", '{"memoryMB": 1e12}', /^invalid TaskSpec\.memoryMB: must be at most 16777216 \(16 TiB\)$/],
    ["no CPU limit (0)", '{"cpus": 0}', /^invalid TaskSpec\.cpus: /],
    ["CPUs over the node's", '{"cpus": 64}', /^invalid TaskSpec\.cpus: 64 is more than this node has \(4\)$/],
    ["all GPUs (-1)", '{"gpus": -1}', /^invalid TaskSpec\.gpus: /],
    ["more GPUs than the node has", '{"gpus": 8}', /^invalid TaskSpec\.gpus: 8 is more than this node has \(1\)$/],
    ["a taskId that climbs out of the storage root", '{"taskId": "../../etc"}', /^invalid TaskSpec\.taskId: /],
    ["an encoded traversal as taskId", '{"taskId": "%2e%2e%2fetc"}', /^invalid TaskSpec\.taskId: /],
    ["a NUL in the taskId", '{"taskId": "t\\u0000x"}', /^invalid TaskSpec\.taskId: /],
    ["an absolute runId", '{"runId": "/etc"}', /^invalid TaskSpec\.runId: /],
    ["a runId that climbs out", '{"runId": "7/../../.."}', /^invalid TaskSpec\.runId: /],
    ["an image that reads as an option", '{"image": "--privileged"}', /^invalid TaskSpec\.image: must be a Docker image reference/],
    ["an image with a space", '{"image": "busybox latest"}', /^invalid TaskSpec\.image: /],
    ["an image with a path traversal", '{"image": "../busybox"}', /^invalid TaskSpec\.image: /],
    ["an image with a right-to-left override", '{"image": "busybox\\u202e:latest"}', /^invalid TaskSpec\.image: /],
    ["an image with a control character", '{"image": "busy\\u0007box"}', /^invalid TaskSpec\.image: /],
    ["an env named __proto__", '{"env": {"__proto__": "x"}}', /^invalid TaskSpec\.env(\.__proto__)?: the name __proto__ is not allowed/],
    ["an env name with =", '{"env": {"A=B": "x"}}', /^invalid TaskSpec\.env\.A=B: /],
    ["a NUL in an env value", '{"env": {"A": "x\\u0000y"}}', /^invalid TaskSpec\.env\.A: /],
    ["a NUL in the command", '{"command": ["sh", "-c", "x\\u0000"]}', /^invalid TaskSpec\.command\.2: /],
    ["a command that is a string (a shell line)", '{"command": "rm -rf /"}', /^invalid TaskSpec\.command: /],
    ["restarts without end", '{"maxRestarts": 1e9}', /^invalid TaskSpec\.maxRestarts: /],
  ];
  for (const [name, overrides, pattern] of hostile) {
    it(`refuses ${name}, with the reason`, () => {
      const spec = { ...JSON.parse(JSON.stringify(BASE)), ...JSON.parse(overrides) };
      // JSON.parse keeps "__proto__" as an own key, as the HTTP body parser would hand it over.
      if (overrides.includes("__proto__")) spec.env = JSON.parse(overrides).env;
      expect(refusal(spec)).to.match(pattern);
    });
  }

  describe("sandboxViolation refuses create options loosened in any way (a regression of the translation)", () => {
    const dataDir = path.join(ROOT, "7", "t1");
    const good = () => containerCreateOptions(validateTaskSpec(BASE), { name: "cn-test-t1", dataDir, labels: {} });
    const tampered: Array<[string, (o: Dockerode.ContainerCreateOptions) => void, RegExp, SandboxPolicy?]> = [
      ["no HostConfig", (o) => delete o.HostConfig, /no HostConfig/],
      ["Privileged: true", (o) => (o.HostConfig!.Privileged = true), /unprivileged/],
      ["Privileged left to the engine's default", (o) => delete o.HostConfig!.Privileged, /unprivileged/],
      ["a host device", (o) => (o.HostConfig!.Devices = [{ PathOnHost: "/dev/sda", PathInContainer: "/dev/sda", CgroupPermissions: "rwm" }]), /host devices/],
      ["a device cgroup rule", (o) => (o.HostConfig!.DeviceCgroupRules = ["a *:* rwm"]), /host devices/],
      ["GPUs by device id", (o) => (o.HostConfig!.DeviceRequests = [{ Driver: "nvidia", DeviceIDs: ["0"], Capabilities: [["gpu"]] }]), /other than a count of NVIDIA GPUs/],
      ["all GPUs (Count -1)", (o) => (o.HostConfig!.DeviceRequests = [{ Driver: "nvidia", Count: -1, Capabilities: [["gpu"]] }]), /positive count/],
      ["more GPUs than granted", (o) => (o.HostConfig!.DeviceRequests = [{ Driver: "nvidia", Count: 2, Capabilities: [["gpu"]] }]), /2 GPUs requested, the node grants at most 1/],
      ["another device driver", (o) => (o.HostConfig!.DeviceRequests = [{ Driver: "cdi", Count: 1, Capabilities: [["gpu"]] }]), /other than a count of NVIDIA GPUs/],
      ["CAP_SYS_ADMIN added", (o) => (o.HostConfig!.CapAdd = ["SYS_ADMIN"]), /capabilities may not be added/],
      ["capabilities kept", (o) => (o.HostConfig!.CapDrop = []), /every capability must be dropped/],
      ["no no-new-privileges", (o) => (o.HostConfig!.SecurityOpt = []), /no-new-privileges/],
      ["seccomp unconfined", (o) => o.HostConfig!.SecurityOpt!.push("seccomp=unconfined"), /security option "seccomp=unconfined"/],
      ["apparmor unconfined", (o) => o.HostConfig!.SecurityOpt!.push("apparmor:unconfined"), /security option/],
      ["SELinux labels disabled", (o) => o.HostConfig!.SecurityOpt!.push("label=disable"), /security option/],
      ["root user", (o) => (o.User = "0:0"), /must not run as root/],
      ["root by name", (o) => (o.User = "root"), /must not run as root/],
      ["the image's user (often root)", (o) => delete o.User, /must not run as root/],
      ["the bridge network", (o) => (o.HostConfig!.NetworkMode = "bridge"), /network mode "bridge" is not allowed/],
      ["another container's network", (o) => (o.HostConfig!.NetworkMode = "container:abc"), /network mode "container:abc"/],
      ["the engine's default network", (o) => delete o.HostConfig!.NetworkMode, /network mode "\(engine default\)"/],
      ["host network where not allowed", (o) => (o.HostConfig!.NetworkMode = "host"), /host networking is not allowed/],
      ["the host's PID namespace", (o) => (o.HostConfig!.PidMode = "host"), /PidMode "host"/],
      ["the host's IPC namespace", (o) => (o.HostConfig!.IpcMode = "host"), /IpcMode "host"/],
      ["another container's IPC namespace", (o) => (o.HostConfig!.IpcMode = "container:abc"), /IpcMode "container:abc"/],
      ["the host's UTS namespace", (o) => (o.HostConfig!.UTSMode = "host"), /UTSMode "host"/],
      ["the host's user namespace", (o) => (o.HostConfig!.UsernsMode = "host"), /UsernsMode "host"/],
      ["published ports", (o) => (o.HostConfig!.PortBindings = { "22/tcp": [{ HostPort: "2222" }] }), /ports are not published/],
      ["all ports published", (o) => (o.HostConfig!.PublishAllPorts = true), /ports are not published/],
      ["sysctls", (o) => (o.HostConfig!.Sysctls = { "net.ipv4.ip_forward": "1" }), /sysctls/],
      ["no memory limit", (o) => delete o.HostConfig!.Memory, /a memory limit is required/],
      ["memory limit 0 (unlimited)", (o) => (o.HostConfig!.Memory = 0), /a memory limit is required/],
      ["unlimited swap", (o) => (o.HostConfig!.MemorySwap = -1), /swap beyond the memory limit/],
      ["memory over the node's", (o) => ((o.HostConfig!.Memory = 8192 * MIB), (o.HostConfig!.MemorySwap = 8192 * MIB)), /memory limit above the node's 4096 MiB/],
      ["no CPU limit", (o) => delete o.HostConfig!.NanoCpus, /a CPU limit is required/],
      ["CPUs over the node's", (o) => (o.HostConfig!.NanoCpus = 8e9), /CPU limit above the node's 4 cores/],
      ["no pids limit", (o) => (o.HostConfig!.PidsLimit = 0), /a pids limit is required/],
      ["a bind of the Docker socket", (o) => (o.HostConfig!.Binds = ["/var/run/docker.sock:/var/run/docker.sock"]), /only the task's storage folder is mounted/],
      ["a volume", (o) => (o.Volumes = { "/cache": {} }), /only the task's storage folder is mounted/],
      ["another container's volumes", (o) => (o.HostConfig!.VolumesFrom = ["other"]), /only the task's storage folder is mounted/],
      ["a tmpfs", (o) => (o.HostConfig!.Tmpfs = { "/run": "rw" }), /only the task's storage folder is mounted/],
      ["a second mount (the Docker socket)", (o) => o.HostConfig!.Mounts!.push({ Type: "bind", Source: "/var/run/docker.sock", Target: "/var/run/docker.sock" }), /exactly one mount/],
      ["no mount at all", (o) => (o.HostConfig!.Mounts = []), /exactly one mount/],
      ["the host's root instead of the storage folder", (o) => (o.HostConfig!.Mounts![0].Source = "/"), /must bind the task's storage folder/],
      ["the storage folder somewhere else in the container", (o) => (o.HostConfig!.Mounts![0].Target = "/etc"), /must bind the task's storage folder at \/data/],
      ["a volume mount instead of a bind", (o) => (o.HostConfig!.Mounts![0].Type = "volume"), /must bind the task's storage folder/],
    ];
    for (const [name, loosen, pattern, policy] of tampered) {
      it(`refuses ${name}`, () => {
        const options = good();
        expect(sandboxViolation(options, policy ?? POLICY, dataDir)).to.equal(null);
        loosen(options);
        expect(sandboxViolation(options, policy ?? POLICY, dataDir)).to.match(pattern);
      });
    }

    it("refuses a storage folder that is not <runId>/<taskId> under the root, or that holds the engine's socket", () => {
      const at = (source: string, policy: SandboxPolicy = POLICY) => {
        const options = good();
        options.HostConfig!.Mounts![0].Source = source;
        return sandboxViolation(options, policy, source);
      };
      expect(at(path.join(ROOT, "7", "t1"))).to.equal(null);
      expect(at(ROOT)).to.match(/is not a task folder <runId>\/<taskId> under the storage root/);
      expect(at(path.join(ROOT, "7"))).to.match(/is not a task folder/);
      expect(at(`${ROOT}/7/t1/../../../../etc`)).to.match(/is not a task folder/);
      expect(at("/etc/passwd")).to.match(/is not a task folder/);
      // An operator who put the storage root at / would hand tasks /var/run: refused for the socket in it.
      expect(at("/var/run", { ...POLICY, storageRoot: "/" })).to.match(/would expose the engine's socket \/var\/run\/docker\.sock/);
      expect(at("/srv/engine", { ...POLICY, storageRoot: "/", dockerSockets: ["/srv/engine/d.sock"] })).to.match(/would expose the engine's socket \/srv\/engine\/d\.sock/);
    });
  });
});

describe("task sandbox against the real Docker engine", function () {
  this.timeout(30_000);
  const docker = new Dockerode();
  const node = `0x${randomBytes(20).toString("hex")}`;
  let storageRoot: string;
  const runtimes: DockerRuntime[] = [];
  const runtime = (options: Partial<ConstructorParameters<typeof DockerRuntime>[0]> = {}) => {
    const made = new DockerRuntime({ docker, node, storageRoot, stopGraceSec: 1, ...options });
    runtimes.push(made);
    return made;
  };

  before(async function () {
    await requireDocker(this);
    storageRoot = mkdtempSync(path.join(tmpdir(), "cn-sandbox-"));
  });

  after(async () => {
    for (const made of runtimes) await made.close();
    for (const info of await docker.listContainers({ all: true, filters: { label: [`${LABEL_NODE}=${node}`] } })) {
      await docker.getContainer(info.Id).remove({ force: true });
    }
    if (storageRoot) rmSync(storageRoot, { recursive: true, force: true });
  });

  it("runs a task with the spec's limits: inspect and the container's own view agree", async () => {
    const miner = runtime({ maxMemoryMB: 1024, maxCpus: 2, maxGpus: 0, allowHostNetwork: false });
    // What the task sees: its cgroup limits (v1 or v2), capabilities, user, devices, mounts, the socket.
    const probe = [
      "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
      'cat /sys/fs/cgroup/cpu.max 2>/dev/null || echo "$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"',
      "grep CapEff /proc/self/status",
      "id -u",
      "ls /dev | tr '\\n' ' '; echo",
      "ls /sys/class/net | tr '\\n' ' '; echo",
      "test -e /var/run/docker.sock && echo socket || echo no-socket",
      "grep ' /data ' /proc/mounts | wc -l",
    ].join("; ");
    const spec: TaskSpec = { taskId: "limits", runId: "5", image: TEST_IMAGE, command: ["sh", "-c", probe], memoryMB: 48, cpus: 0.5 };
    const started = await miner.start(spec);
    const done = await miner.wait(spec.taskId, 20_000);
    expect(done.state, done.error).to.equal("completed");

    const inspect = await docker.getContainer(started.containerId!).inspect();
    const host = inspect.HostConfig;
    expect(host.Memory).to.equal(48 * MIB);
    expect(host.MemorySwap).to.equal(48 * MIB);
    expect(host.NanoCpus).to.equal(0.5e9);
    expect(host.Privileged).to.equal(false);
    expect(host.NetworkMode).to.equal("none");
    expect(host.Binds ?? []).to.deep.equal([]);
    expect(host.Devices ?? []).to.deep.equal([]);
    expect(host.DeviceRequests ?? []).to.deep.equal([]);
    expect(host.CapAdd ?? []).to.deep.equal([]);
    expect(host.CapDrop).to.deep.equal(["ALL"]);
    expect(host.PidMode ?? "").to.equal("");
    expect(host.PidsLimit).to.equal(TASK_PIDS_LIMIT);
    expect(inspect.Mounts.map((m) => [m.Type, m.Source, m.Destination])).to.deep.equal([["bind", path.join(storageRoot, "5", "limits"), "/data"]]);

    const lines = (await miner.logs(spec.taskId)).stdout.trim().split("\n");
    expect(lines[0]).to.equal(String(48 * MIB)); // the memory limit in the task's cgroup
    expect(lines[1]).to.equal("50000 100000"); // 0.5 CPU: a 50 ms quota per 100 ms period
    expect(lines[2]).to.match(/^CapEff:\s+0000000000000000$/);
    expect(lines[3]).to.equal("65534");
    const devices = lines[4].trim().split(/\s+/);
    expect(devices.filter((d) => !["console", "core", "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "tty", "urandom", "zero"].includes(d))).to.deep.equal([]);
    expect(lines[5].trim()).to.equal("lo"); // network "none": loopback only
    expect(lines[6]).to.equal("no-socket");
    expect(lines[7].trim()).to.equal("1");
  });

  it("uses the host's network only where the operator allows it", async () => {
    const refusing = runtime();
    let error: Error | undefined;
    await refusing.start({ taskId: "net-refused", runId: "5", image: TEST_IMAGE, command: ["true"], memoryMB: 16, cpus: 0.1, network: "host" }).catch((e: Error) => (error = e));
    expect(error?.message).to.match(/network "host" is not allowed on this node/);
    expect(existsSync(path.join(storageRoot, "5", "net-refused"))).to.equal(false);

    const allowing = runtime({ allowHostNetwork: true });
    const status = await allowing.start({ taskId: "net-host", runId: "5", image: TEST_IMAGE, command: ["true"], memoryMB: 16, cpus: 0.1, network: "host" });
    const host = (await docker.getContainer(status.containerId!).inspect()).HostConfig;
    expect(host.NetworkMode).to.equal("host");
    expect([host.Memory, host.NanoCpus, host.Privileged]).to.deep.equal([16 * MIB, 0.1e9, false]);
  });

  it("refuses GPUs beyond the node's, and resources over its maxima, before creating anything", async () => {
    const miner = runtime({ maxMemoryMB: 64, maxCpus: 1, maxGpus: 0 });
    const base: TaskSpec = { taskId: "over", runId: "6", image: TEST_IMAGE, command: ["true"], memoryMB: 16, cpus: 0.1 };
    for (const [over, pattern] of [
      [{ gpus: 1 }, /^invalid TaskSpec\.gpus: 1 is more than this node has \(0\)$/],
      [{ memoryMB: 65 }, /^invalid TaskSpec\.memoryMB: 65 is more than this node has \(64\)$/],
      [{ cpus: 1.5 }, /^invalid TaskSpec\.cpus: 1\.5 is more than this node has \(1\)$/],
    ] as const) {
      const error = await miner.start({ ...base, ...over }).then(() => undefined, (e: Error) => e);
      expect(error?.message).to.match(pattern);
    }
    expect(miner.list()).to.deep.equal([]);
    expect(existsSync(path.join(storageRoot, "6"))).to.equal(false);
    expect(await docker.listContainers({ all: true, filters: { label: [`${LABEL_NODE}=${node}`, "computenet.run=6"] } })).to.deep.equal([]);
  });

  it("does not mount a storage folder that resolves outside the storage root (a planted symbolic link)", async () => {
    const elsewhere = mkdtempSync(path.join(tmpdir(), "cn-sandbox-elsewhere-"));
    try {
      symlinkSync(elsewhere, path.join(storageRoot, "9"));
      const miner = runtime();
      const status = await miner.start({ taskId: "linked", runId: "9", image: TEST_IMAGE, command: ["sh", "-c", "echo escaped > /data/x"], memoryMB: 16, cpus: 0.1 });
      expect(status.state).to.equal("failed");
      expect(status.error).to.match(/resolves to .*outside the storage root: not mounted/);
      expect(status.containerId).to.equal(undefined);
      expect(readdirSync(elsewhere)).to.deep.equal([]); // nothing created through the link
    } finally {
      rmSync(path.join(storageRoot, "9"), { force: true });
      rmSync(elsewhere, { recursive: true, force: true });
    }
    mkdirSync(path.join(storageRoot, "9")); // the root stays usable
  });
});
