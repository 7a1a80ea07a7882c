/**
 * The miner's Docker task runtime: runs a buyer's task as one locked-down container per task, restarts it
 * on failure with exponential backoff, and finds its containers again after the keeper restarts.
 *
 * Containers carry the labels `computenet.node`, `computenet.run` and `computenet.task`; everything this
 * runtime lists, adopts or removes is filtered by its own node label, so it never touches containers it
 * did not create. Each container has no network (unless the operator allows host networking and the task
 * asks for it), no capabilities, no privilege escalation, hard memory and CPU limits, and one bind mount:
 * the task's storage folder at /data.
 *
 * The sandbox, and where it is enforced:
 *   - the spec (task-spec.ts, strict): only the fields of TaskSpec; memory and CPU limits are required (a
 *     node-chosen default would let two nodes run one on-chain spec with different limits, and the
 *     validators' re-execution must match the executor's); network "none" or "host", nothing else;
 *   - the node's policy (`admissionProblem`): memory, CPUs and GPUs at most the operator's maxima (the
 *     node's declared RAM, cores and GPU count), host networking only with `allowHostNetwork`
 *     (`--allow-host-network`);
 *   - the translation (`containerCreateOptions`): never privileged, all capabilities dropped,
 *     no-new-privileges, an unprivileged user, a pids limit, no host devices but the GPUs the task was
 *     granted, the task's storage folder as the only mount;
 *   - the check of what is sent to the engine (`sandboxViolation`), before every create: the rules above
 *     read back from the create options, plus no host PID/IPC/UTS/user namespace, no port bindings, no
 *     mount outside the task's storage folder and never the engine's socket. A future change to the
 *     translation that loosens the sandbox fails there instead of reaching the engine;
 *   - the storage folder (`launch`): created under the storage root and refused when it resolves
 *     elsewhere (a symbolic link planted in its place).
 */
import { chown, mkdir, realpath } from "node:fs/promises";
import path from "node:path";
import Dockerode from "dockerode";
import { failpoint } from "../shared/failpoints.js";
import { RUN_ID_PATTERN, TASK_ID_PATTERN, type TaskSpec, type ValidTaskSpec, validateTaskSpec } from "./task-spec.js";

export { type TaskSpec, validateTaskSpec } from "./task-spec.js";

export type TaskState = "pending" | "pulling" | "running" | "restarting" | "completed" | "failed" | "stopped";

export interface TaskStatus {
  taskId: string;
  runId: string;
  state: TaskState;
  exitCode: number | null;
  restarts: number;
  startedAt: string | null;
  finishedAt: string | null;
  error?: string;
  containerId?: string;
}

export interface RuntimeLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface DockerRuntimeOptions {
  /** Defaults to `new Dockerode()` (DOCKER_HOST or /var/run/docker.sock). */
  docker?: Dockerode;
  /** The miner's node id (its address); its first 10 hex digits go into container names. */
  node: string;
  /** Host folder under which each task gets `<runId>/<taskId>`, mounted at /data. */
  storageRoot: string;
  /** Pull an absent image; off by default, so a task cannot make the engine fetch arbitrary code. */
  allowPull?: boolean;
  /** Let tasks ask for `network: "host"`; off by default. */
  allowHostNetwork?: boolean;
  logger?: RuntimeLogger;
  /** First restart delay; doubles with each restart. Default 1000 ms. */
  backoffBaseMs?: number;
  /** Ceiling of the restart delay. Default 60 000 ms. */
  backoffMaxMs?: number;
  /** Seconds `stop()` gives a task to exit after SIGTERM before the engine kills it. Default 10. */
  stopGraceSec?: number;
  /**
   * Identity of this installation of the miner (kept in its data folder). Containers carry it, and
   * `adoptOrCleanup()` adopts only its own: a container of the same node key left by another installation
   * (a wiped data folder, an earlier devnet) is removed, not adopted as a task this miner never received.
   */
  instance?: string;
  /**
   * How often a running task's container is inspected besides the engine's wait, which a restart of the
   * engine cuts without a word (default 5000 ms).
   */
  checkMs?: number;
  /** Largest memory / CPU share one task may ask for (the node's declared RAM and cores); default unbounded. */
  maxMemoryMB?: number;
  maxCpus?: number;
  /** Most GPUs one task may be granted (the node's declared GPU count); default unbounded. */
  maxGpus?: number;
}

/** What this node lets tasks have: the operator's maxima and choices. */
export interface SandboxPolicy {
  /** Absolute; every task's storage folder is `<storageRoot>/<runId>/<taskId>`. */
  storageRoot: string;
  allowHostNetwork: boolean;
  maxMemoryMB?: number;
  maxCpus?: number;
  maxGpus?: number;
  /** Paths of the engine's socket, never mounted into a task (the defaults are always included). */
  dockerSockets?: string[];
}

/** Where the engine's socket usually is: a task that could reach it would own the host. */
export const DEFAULT_DOCKER_SOCKETS = ["/var/run/docker.sock", "/run/docker.sock"];

/**
 * Tasks run as this unprivileged user (nobody:nogroup), never as root: even a file it marks setuid in its
 * storage folder grants nothing on the host. The storage folder is given to this user, mode 0700.
 */
export const TASK_USER = { uid: 65534, gid: 65534 };
/** Processes one task may create (a fork bomb stops there). */
export const TASK_PIDS_LIMIT = 1024;

export const LABEL_NODE = "computenet.node";
export const LABEL_RUN = "computenet.run";
export const LABEL_TASK = "computenet.task";
export const LABEL_INSTANCE = "computenet.instance";
/** Where the task's storage folder appears inside its container. */
export const DATA_DIR = "/data";

const FINAL_STATES: ReadonlySet<TaskState> = new Set(["completed", "failed", "stopped"]);
const PING_TIMEOUT_MS = 2_000;
const MIB = 1024 * 1024;

const silentLogger: RuntimeLogger = { info() {}, warn() {}, error() {} };

/** What the runtime keeps about one task, beyond its public status. */
interface TrackedTask {
  status: TaskStatus;
  maxRestarts: number;
  /** Set by stop() and remove(): the next exit is final, whatever its code. */
  stopRequested: boolean;
  /** The start() in flight, so a concurrent start() or stop() can wait for it. */
  starting?: Promise<void>;
  /** Ends a restart backoff early (stop or close). */
  cancelBackoff?: () => void;
  /** Callbacks of wait() calls, run once when the task reaches a final state. */
  onFinal: Set<() => void>;
}

export class DockerRuntime {
  private readonly docker: Dockerode;
  private readonly node: string;
  private readonly namePrefix: string;
  private readonly storageRoot: string;
  private readonly allowPull: boolean;
  private readonly allowHostNetwork: boolean;
  private readonly log: RuntimeLogger;
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;
  private readonly stopGraceSec: number;
  private readonly tasks = new Map<string, TrackedTask>();
  private readonly instance: string;
  /** The operator's limits and choices, checked for every task. */
  readonly policy: SandboxPolicy;
  private readonly checkMs: number;
  /** Aborts the long-polling container waits when the runtime closes. */
  private readonly closing = new AbortController();

  constructor(options: DockerRuntimeOptions) {
    const hex = /^(?:0x)?([0-9a-fA-F]{10})/.exec(options.node);
    if (!hex) throw new Error(`DockerRuntime: node must start with at least 10 hex digits, got "${options.node}"`);
    if (!options.storageRoot) throw new Error("DockerRuntime: storageRoot is required");
    for (const key of ["backoffBaseMs", "backoffMaxMs", "stopGraceSec", "checkMs"] as const) {
      const value = options[key];
      if (value !== undefined && !(Number.isFinite(value) && value >= 0)) {
        throw new Error(`DockerRuntime: ${key} must be a non-negative number, got ${value}`);
      }
    }
    this.docker = options.docker ?? new Dockerode();
    // Addresses arrive checksummed from some places and lower-case from others; one spelling keeps the
    // label filter of adoptOrCleanup() matching across restarts.
    this.node = options.node.toLowerCase();
    this.namePrefix = `cn-${hex[1].toLowerCase()}-`;
    this.storageRoot = path.resolve(options.storageRoot);
    this.allowPull = options.allowPull ?? false;
    this.allowHostNetwork = options.allowHostNetwork ?? false;
    this.log = options.logger ?? silentLogger;
    this.backoffBaseMs = options.backoffBaseMs ?? 1_000;
    this.backoffMaxMs = options.backoffMaxMs ?? 60_000;
    this.stopGraceSec = options.stopGraceSec ?? 10;
    this.instance = options.instance ?? "";
    for (const key of ["maxMemoryMB", "maxCpus", "maxGpus"] as const) {
      const value = options[key];
      if (value !== undefined && !(Number.isFinite(value) && value >= 0)) {
        throw new Error(`DockerRuntime: ${key} must be a non-negative number, got ${value}`);
      }
    }
    const socketPath = (this.docker.modem as { socketPath?: unknown } | undefined)?.socketPath;
    this.policy = {
      storageRoot: this.storageRoot,
      allowHostNetwork: this.allowHostNetwork,
      maxMemoryMB: options.maxMemoryMB,
      maxCpus: options.maxCpus,
      maxGpus: options.maxGpus,
      dockerSockets: typeof socketPath === "string" ? [socketPath] : [],
    };
    this.checkMs = options.checkMs ?? 5_000;
  }

  /** Whether a Docker engine answers; false (never a throw) when there is none or it does not reply. */
  static async available(docker: Dockerode = new Dockerode()): Promise<boolean> {
    // Dockerode's ping accepts an abortSignal at run time, but its type declarations omit the options.
    const ping = docker.ping.bind(docker) as unknown as (opts: { abortSignal: AbortSignal }) => Promise<unknown>;
    try {
      await ping({ abortSignal: AbortSignal.timeout(PING_TIMEOUT_MS) });
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Starts a task and resolves once its container runs, or with state "failed" when the engine could not
   * run it (absent image, engine error). Throws only for an invalid spec or a refused request. Calling it
   * again for a known taskId returns that task's status without starting anything.
   */
  async start(spec: TaskSpec): Promise<TaskStatus> {
    this.assertOpen();
    const valid = validateTaskSpec(spec);
    const known = this.tasks.get(valid.taskId);
    if (known) {
      await known.starting;
      return this.snapshot(known);
    }
    const refused = admissionProblem(valid, this.policy);
    if (refused) throw new Error(refused);
    // Built and checked before anything is created: a spec the sandbox refuses leaves no trace.
    const dataDir = this.storagePath(valid.runId, valid.taskId);
    const createOptions = containerCreateOptions(valid, {
      name: this.containerName(valid.taskId),
      dataDir,
      labels: {
        [LABEL_NODE]: this.node,
        [LABEL_RUN]: valid.runId,
        [LABEL_TASK]: valid.taskId,
        ...(this.instance ? { [LABEL_INSTANCE]: this.instance } : {}),
      },
    });
    const breach = sandboxViolation(createOptions, this.policy, dataDir);
    if (breach) throw new Error(`task ${valid.taskId}: refused by the sandbox: ${breach}`);
    const task: TrackedTask = {
      status: {
        taskId: valid.taskId,
        runId: valid.runId,
        state: "pending",
        exitCode: null,
        restarts: 0,
        startedAt: null,
        finishedAt: null,
      },
      maxRestarts: valid.maxRestarts,
      stopRequested: false,
      onFinal: new Set(),
    };
    this.tasks.set(valid.taskId, task);
    task.starting = this.launch(task, valid, createOptions);
    await task.starting;
    task.starting = undefined;
    return this.snapshot(task);
  }

  status(taskId: string): TaskStatus | undefined {
    const task = this.tasks.get(taskId);
    return task && this.snapshot(task);
  }

  list(): TaskStatus[] {
    return [...this.tasks.values()].map((task) => this.snapshot(task));
  }

  /**
   * The task's output so far (every attempt), stdout and stderr apart. `tail` keeps the last lines of the
   * combined output (the engine's meaning), which are then split by stream.
   */
  async logs(taskId: string, options: { tail?: number } = {}): Promise<{ stdout: string; stderr: string }> {
    const task = this.require(taskId);
    if (!task.status.containerId) return { stdout: "", stderr: "" };
    const { tail } = options;
    if (tail !== undefined && !(Number.isInteger(tail) && tail >= 0)) {
      throw new Error(`logs: tail must be a non-negative integer, got ${tail}`);
    }
    const raw = await this.docker.getContainer(task.status.containerId).logs({
      stdout: true,
      stderr: true,
      follow: false,
      ...(tail !== undefined ? { tail } : {}), // the engine's default is every line
    });
    return demultiplex(raw);
  }

  /** Resolves with the task's status once it is completed, failed or stopped; rejects after `timeoutMs`. */
  async wait(taskId: string, timeoutMs?: number): Promise<TaskStatus> {
    const task = this.require(taskId);
    if (FINAL_STATES.has(task.status.state)) return this.snapshot(task);
    this.assertOpen();
    return new Promise<TaskStatus>((resolve, reject) => {
      const settle = (error?: Error) => {
        clearTimeout(timer);
        task.onFinal.delete(onFinal);
        this.closing.signal.removeEventListener("abort", onClose);
        if (error) reject(error);
        else resolve(this.snapshot(task));
      };
      const onFinal = () => settle();
      const onClose = () => settle(new Error(`task ${taskId}: runtime closed while waiting`));
      const timer =
        timeoutMs === undefined
          ? undefined
          : setTimeout(
              () =>
                settle(new Error(`task ${taskId}: not finished after ${timeoutMs} ms (state ${task.status.state})`)),
              timeoutMs,
            );
      task.onFinal.add(onFinal);
      this.closing.signal.addEventListener("abort", onClose);
    });
  }

  /** Stops a task for good (no restart follows) and resolves with its final status. */
  async stop(taskId: string): Promise<TaskStatus> {
    const task = this.require(taskId);
    task.stopRequested = true;
    await task.starting;
    if (FINAL_STATES.has(task.status.state)) return this.snapshot(task);
    // Both, whatever the state says: a watcher between an exit and its restart may be in either step.
    task.cancelBackoff?.();
    if (task.status.containerId) await this.stopContainer(task.status.containerId);
    return this.wait(taskId);
  }

  /** Removes the task's container (stopping it first) and forgets the task; its storage folder stays. */
  async remove(taskId: string): Promise<void> {
    const task = this.tasks.get(taskId);
    if (task && !FINAL_STATES.has(task.status.state)) await this.stop(taskId);
    // An unknown taskId may still have a container from an earlier keeper run that was not adopted.
    const containerId = task?.status.containerId ?? (await this.findOwnContainer(taskId));
    if (containerId) await this.removeContainer(containerId);
    this.tasks.delete(taskId);
    this.log.info({ subsystem: "Tasks", taskId, containerId }, "task removed");
  }

  /** `<storageRoot>/<runId>/<taskId>` of a known task; mounted read-write at /data in its container. */
  storageDir(taskId: string): string {
    const task = this.require(taskId);
    return this.storagePath(task.status.runId, task.status.taskId);
  }

  /**
   * After a keeper restart, takes back this node's containers: running ones are watched again, exited
   * ones are recorded as completed or failed with their exit code, and those that cannot be either
   * (never started, dead, paused, or with labels that do not describe a task of ours) are removed.
   * Adopted tasks are not restarted after a later failure: the restarts they already used are unknown.
   */
  async adoptOrCleanup(): Promise<{ adopted: string[]; removed: string[] }> {
    this.assertOpen();
    const adopted: string[] = [];
    const removed: string[] = [];
    const containers = await this.docker.listContainers({
      all: true,
      filters: { label: [`${LABEL_NODE}=${this.node}`] },
    });
    for (const info of containers) {
      const taskId = info.Labels[LABEL_TASK] ?? "";
      const runId = info.Labels[LABEL_RUN] ?? "";
      if (this.tasks.get(taskId)?.status.containerId === info.Id) continue; // already tracked
      const wellFormed =
        (info.Labels[LABEL_INSTANCE] ?? "") === this.instance &&
        TASK_ID_PATTERN.test(taskId) &&
        RUN_ID_PATTERN.test(runId) &&
        info.Names.includes(`/${this.containerName(taskId)}`) &&
        !this.tasks.has(taskId);
      if (!wellFormed || (info.State !== "running" && info.State !== "exited")) {
        await this.removeContainer(info.Id);
        removed.push(info.Id);
        this.log.warn(
          { subsystem: "Tasks", taskId, runId, containerId: info.Id, state: info.State },
          "removed broken container",
        );
        continue;
      }
      const inspect = await this.docker.getContainer(info.Id).inspect();
      const running = info.State === "running";
      const exitCode = running ? null : inspect.State.ExitCode;
      const task: TrackedTask = {
        status: {
          taskId,
          runId,
          state: running ? "running" : exitCode === 0 ? "completed" : "failed",
          exitCode,
          restarts: 0,
          startedAt: inspect.State.StartedAt,
          finishedAt: running ? null : inspect.State.FinishedAt,
          containerId: info.Id,
          ...(exitCode !== null && exitCode !== 0 ? { error: exitError(exitCode, inspect.State.OOMKilled) } : {}),
        },
        maxRestarts: 0,
        stopRequested: false,
        onFinal: new Set(),
      };
      this.tasks.set(taskId, task);
      adopted.push(taskId);
      this.log.info(
        { subsystem: "Tasks", taskId, runId, containerId: info.Id, state: task.status.state, exitCode },
        "task adopted",
      );
      if (running) void this.watch(task);
    }
    return { adopted, removed };
  }

  /** Stops watching; containers keep running so that the next runtime can adopt them. */
  async close(): Promise<void> {
    if (this.closing.signal.aborted) return;
    this.closing.abort();
    for (const task of this.tasks.values()) task.cancelBackoff?.();
  }

  // --- internals ---------------------------------------------------------------------------------

  /** Storage, image, container, start; then hands the task to the watcher. Never throws. */
  private async launch(task: TrackedTask, spec: ValidTaskSpec, createOptions: Dockerode.ContainerCreateOptions): Promise<void> {
    const { taskId, runId } = spec;
    try {
      const dataDir = this.storagePath(runId, taskId);
      // The engine follows symbolic links in a bind source: each folder must really be where it is named,
      // checked before anything is created in it.
      await mkdir(this.storageRoot, { recursive: true });
      const realRoot = await realpath(this.storageRoot);
      for (const dir of [path.dirname(dataDir), dataDir]) {
        await mkdir(dir, { recursive: true, mode: 0o700 });
        const real = await realpath(dir);
        if (real !== path.join(realRoot, path.relative(this.storageRoot, dir))) {
          return this.finish(task, "failed", `storage folder ${dir} resolves to ${real}, outside the storage root: not mounted`);
        }
      }
      if (process.getuid?.() === 0) await chown(dataDir, TASK_USER.uid, TASK_USER.gid);
      if (!(await this.ensureImage(task, spec.image))) return;
      if (task.stopRequested) return this.finish(task, "stopped");
      const container = await this.docker.createContainer(createOptions);
      task.status.containerId = container.id;
      if (task.stopRequested) return this.finish(task, "stopped");
      await container.start();
      task.status.state = "running";
      task.status.startedAt = new Date().toISOString();
      this.log.info(
        { subsystem: "Tasks", taskId, runId, containerId: container.id, image: spec.image },
        "task started",
      );
      void this.watch(task);
      failpoint("miner.taskRunning", taskId);
    } catch (error) {
      const reason =
        statusCodeOf(error) === 409
          ? `container ${this.containerName(taskId)} already exists (left by an earlier keeper run?): ` +
            "call adoptOrCleanup() or remove() first"
          : `could not start the container: ${messageOf(error)}`;
      this.finish(task, "failed", reason);
    }
  }

  /** True when the image is present (pulling it if allowed); otherwise marks the task failed. */
  private async ensureImage(task: TrackedTask, image: string): Promise<boolean> {
    try {
      await this.docker.getImage(image).inspect();
      return true;
    } catch (error) {
      if (statusCodeOf(error) !== 404) throw error;
    }
    if (!this.allowPull) {
      this.finish(task, "failed", `image ${image} is not present on this node and pulls are disabled`);
      return false;
    }
    task.status.state = "pulling";
    this.log.info({ subsystem: "Tasks", taskId: task.status.taskId, image }, "pulling image");
    try {
      const stream = await this.docker.pull(image);
      await new Promise<void>((resolve, reject) =>
        this.docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve())),
      );
      return true;
    } catch (error) {
      this.finish(task, "failed", `could not pull image ${image}: ${messageOf(error)}`);
      return false;
    }
  }

  /**
   * Follows a running task through its exits and restarts until it reaches a final state. When the engine
   * goes away meanwhile (a restart of dockerd, its socket gone), the task is not given up: the watcher waits
   * for the engine to answer again and reads the container's state. Still running (an engine with
   * live-restore): watched again. Exited (an engine that stopped its containers on the way down): that exit
   * is handled like any other, restarted as the task's restart policy allows. Gone: failed.
   */
  private async watch(task: TrackedTask): Promise<void> {
    const { taskId, runId, containerId } = task.status;
    const container = this.docker.getContainer(containerId!);
    try {
      for (;;) {
        let StatusCode: number;
        const exit = await this.waitExit(container);
        if (exit === undefined) return; // closed: the container runs on for the next runtime to adopt
        if (exit.kind === "gone") return this.finish(task, "failed", "its container disappeared (removed outside the runtime)");
        if (exit.kind === "unreachable") {
          const found = await this.reconnect(task, exit.error);
          if (found === undefined) return; // closed meanwhile
          if (found === "gone") return this.finish(task, "failed", "its container disappeared while the Docker engine was unreachable");
          if (found.running) continue;
          StatusCode = found.exitCode;
        } else {
          StatusCode = exit.exitCode;
        }
        task.status.exitCode = StatusCode;
        if (task.stopRequested) return this.finish(task, "stopped");
        if (StatusCode === 0) return this.finish(task, "completed");
        if (task.status.restarts >= task.maxRestarts) {
          const { State } = await container.inspect();
          return this.finish(task, "failed", exitError(StatusCode, State.OOMKilled));
        }
        const delayMs = Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** task.status.restarts);
        task.status.state = "restarting";
        this.log.warn(
          { subsystem: "Tasks", taskId, runId, exitCode: StatusCode, restarts: task.status.restarts, delayMs },
          "task exited with an error; restarting after backoff",
        );
        await this.backoff(task, delayMs);
        if (this.closing.signal.aborted) return;
        if (task.stopRequested) return this.finish(task, "stopped");
        task.status.restarts += 1;
        await this.startAgain(task, container);
        if (this.closing.signal.aborted) return;
        task.status.state = "running";
        // stop() may have come while the engine was starting it: its stop found nothing to stop.
        if (task.stopRequested) await this.stopContainer(containerId!);
      }
    } catch (error) {
      if (this.closing.signal.aborted) return; // close() aborted the wait; the container runs on
      this.finish(task, "failed", `lost track of the container: ${messageOf(error)}`);
    }
  }

  /**
   * The container's next exit. The engine's wait is a long poll, and a restart of the engine cuts it without
   * ever settling it (dockerode's promise stays pending): so the container is also inspected every
   * `checkMs`, which sees an exit the wait missed, a container removed behind the runtime's back, and an
   * engine that stopped answering. Undefined when the runtime closes.
   */
  private async waitExit(
    container: Dockerode.Container,
  ): Promise<{ kind: "exit"; exitCode: number } | { kind: "gone" } | { kind: "unreachable"; error: unknown } | undefined> {
    if (this.closing.signal.aborted) return undefined;
    const abort = new AbortController();
    const onClose = () => abort.abort();
    this.closing.signal.addEventListener("abort", onClose);
    type Exit = { kind: "exit"; exitCode: number } | { kind: "gone" } | { kind: "unreachable"; error: unknown } | { kind: "failed"; error: unknown };
    const waited: Promise<Exit> = container.wait({ abortSignal: abort.signal }).then(
      (result: { StatusCode?: unknown }) =>
        typeof result?.StatusCode === "number"
          ? { kind: "exit", exitCode: result.StatusCode }
          : { kind: "unreachable", error: new Error(`the engine ended the wait without an exit code (${JSON.stringify(result)})`) },
      (error: unknown) => (engineUnreachable(error) ? { kind: "unreachable", error } : { kind: "failed", error }),
    );
    const checked = (async (): Promise<Exit | undefined> => {
      while (!abort.signal.aborted) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, this.checkMs);
          function done() {
            clearTimeout(timer);
            abort.signal.removeEventListener("abort", done);
            resolve();
          }
          abort.signal.addEventListener("abort", done);
        });
        if (abort.signal.aborted) return undefined;
        try {
          const { State } = await container.inspect({ abortSignal: AbortSignal.timeout(PING_TIMEOUT_MS * 5) });
          if (!State.Running) return { kind: "exit", exitCode: State.ExitCode };
        } catch (error) {
          if (statusCodeOf(error) === 404) return { kind: "gone" };
          if (engineUnreachable(error) || (error as Error)?.name === "TimeoutError" || (error as Error)?.name === "AbortError") return { kind: "unreachable", error };
          // any other answer: the wait or the next check decides
        }
      }
      return undefined;
    })();
    try {
      const first = await Promise.race([waited, checked.then((found) => found ?? waited)]);
      if (this.closing.signal.aborted) return undefined;
      if (first.kind === "failed") throw first.error;
      return first;
    } finally {
      abort.abort();
      this.closing.signal.removeEventListener("abort", onClose);
    }
  }

  /**
   * Waits (pinging with a backoff from 250 ms doubling to 5 s) until the engine answers again, then reads
   * the task's container: undefined when the runtime closed meanwhile.
   */
  private async reconnect(task: TrackedTask, cause: unknown): Promise<{ running: boolean; exitCode: number } | "gone" | undefined> {
    const { taskId, runId, containerId } = task.status;
    const lostAt = Date.now();
    this.log.warn(
      { subsystem: "Tasks", taskId, runId, containerId, err: messageOf(cause) },
      "Docker engine unreachable while watching the task; waiting for it to answer again",
    );
    for (let attempt = 0; ; attempt++) {
      if (this.closing.signal.aborted) return undefined;
      const delayMs = Math.min(5_000, 250 * 2 ** Math.min(attempt, 5));
      await this.backoff(task, delayMs);
      if (this.closing.signal.aborted) return undefined;
      if (!(await DockerRuntime.available(this.docker))) {
        if (attempt % 4 === 3) this.log.warn({ subsystem: "Tasks", taskId, containerId, attempt: attempt + 1, retryInMs: delayMs }, "Docker engine still unreachable");
        continue;
      }
      try {
        const { State } = await this.docker.getContainer(containerId!).inspect();
        const found = { running: Boolean(State.Running), exitCode: State.ExitCode };
        this.log.info(
          { subsystem: "Tasks", taskId, runId, containerId, running: found.running, exitCode: found.running ? null : found.exitCode, downMs: Date.now() - lostAt },
          found.running ? "Docker engine answers again: the task's container still runs; watching it again" : "Docker engine answers again: the task's container exited meanwhile",
        );
        return found;
      } catch (error) {
        if (statusCodeOf(error) === 404) return "gone";
        if (!engineUnreachable(error)) throw error;
      }
    }
  }

  /** Starts the container again for a restart, waiting for the engine when it does not answer. */
  private async startAgain(task: TrackedTask, container: Dockerode.Container): Promise<void> {
    for (;;) {
      try {
        await container.start();
        return;
      } catch (error) {
        if (statusCodeOf(error) === 304) return; // already started
        if (this.closing.signal.aborted || !engineUnreachable(error)) throw error;
        const found = await this.reconnect(task, error);
        if (found === undefined) return;
        if (found === "gone") throw new Error("its container disappeared while the Docker engine was unreachable");
        if (found.running) return;
      }
    }
  }

  private backoff(task: TrackedTask, delayMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, delayMs);
      function done() {
        clearTimeout(timer);
        task.cancelBackoff = undefined;
        resolve();
      }
      task.cancelBackoff = done;
    });
  }

  private finish(task: TrackedTask, state: "completed" | "failed" | "stopped", error?: string): void {
    task.status.state = state;
    task.status.finishedAt = new Date().toISOString();
    if (error) task.status.error = error;
    const { taskId, runId, exitCode, restarts, containerId } = task.status;
    const fields = { subsystem: "Tasks", taskId, runId, state, exitCode, restarts, containerId, error };
    if (state === "failed") this.log.error(fields, "task failed");
    else this.log.info(fields, `task ${state}`);
    for (const callback of [...task.onFinal]) callback();
  }

  private containerName(taskId: string): string {
    return this.namePrefix + taskId;
  }

  /** The storage path, built only from a validated runId and taskId and checked to stay under the root. */
  private storagePath(runId: string, taskId: string): string {
    const dir = path.join(this.storageRoot, runId, taskId);
    if (path.dirname(path.dirname(dir)) !== this.storageRoot) {
      throw new Error(`storage path for run ${runId} task ${taskId} escapes ${this.storageRoot}`);
    }
    return dir;
  }

  /** The id of this node's container for `taskId`, if one exists (none for another node's container). */
  private async findOwnContainer(taskId: string): Promise<string | undefined> {
    if (!TASK_ID_PATTERN.test(taskId)) return undefined;
    try {
      const inspect = await this.docker.getContainer(this.containerName(taskId)).inspect();
      return inspect.Config.Labels?.[LABEL_NODE] === this.node ? inspect.Id : undefined;
    } catch (error) {
      if (statusCodeOf(error) === 404) return undefined;
      throw error;
    }
  }

  private async stopContainer(containerId: string): Promise<void> {
    try {
      await this.docker.getContainer(containerId).stop({ t: this.stopGraceSec });
    } catch (error) {
      // 304: it had exited already; its exit is on its way to the watcher.
      if (statusCodeOf(error) !== 304) throw error;
    }
  }

  private async removeContainer(containerId: string): Promise<void> {
    try {
      await this.docker.getContainer(containerId).remove({ force: true });
    } catch (error) {
      if (statusCodeOf(error) !== 404) throw error;
    }
  }

  private require(taskId: string): TrackedTask {
    const task = this.tasks.get(taskId);
    if (!task) throw new Error(`unknown task ${taskId}`);
    return task;
  }

  private assertOpen(): void {
    if (this.closing.signal.aborted) throw new Error("DockerRuntime is closed");
  }

  private snapshot(task: TrackedTask): TaskStatus {
    return { ...task.status };
  }
}

/**
 * Why this node refuses a valid spec (its maxima, its network choice), or null. The messages name the field
 * as validateTaskSpec's do.
 */
export function admissionProblem(spec: ValidTaskSpec, policy: SandboxPolicy): string | null {
  if (policy.maxMemoryMB !== undefined && spec.memoryMB > policy.maxMemoryMB) {
    return `invalid TaskSpec.memoryMB: ${spec.memoryMB} is more than this node has (${policy.maxMemoryMB})`;
  }
  if (policy.maxCpus !== undefined && spec.cpus > policy.maxCpus) {
    return `invalid TaskSpec.cpus: ${spec.cpus} is more than this node has (${policy.maxCpus})`;
  }
  if (policy.maxGpus !== undefined && spec.gpus > policy.maxGpus) {
    return `invalid TaskSpec.gpus: ${spec.gpus} is more than this node has (${policy.maxGpus})`;
  }
  if (spec.network === "host" && !policy.allowHostNetwork) {
    return `task ${spec.taskId}: network "host" is not allowed on this node (DockerRuntime option allowHostNetwork, --allow-host-network)`;
  }
  return null;
}

/**
 * The engine's create options for a task (pure): the spec's image, argv, env and limits inside the fixed
 * lock-down. `placement` is where the runtime puts it: container name, storage folder, labels.
 */
export function containerCreateOptions(
  spec: ValidTaskSpec,
  placement: { name: string; dataDir: string; labels: Record<string, string> },
): Dockerode.ContainerCreateOptions {
  const hostConfig: Dockerode.HostConfig = {
    NetworkMode: spec.network,
    Memory: spec.memoryMB * MIB,
    MemorySwap: spec.memoryMB * MIB, // equal to Memory: no swap beyond the limit
    NanoCpus: Math.round(spec.cpus * 1e9),
    Privileged: false,
    CapDrop: ["ALL"],
    PidsLimit: TASK_PIDS_LIMIT,
    // Bounded logs: a task printing without end cannot fill the node's disk.
    LogConfig: { Type: "json-file", Config: { "max-size": "10m", "max-file": "2" } },
    SecurityOpt: ["no-new-privileges"],
    ReadonlyRootfs: false,
    // A tiny init as PID 1 forwards SIGTERM (a bare PID 1 ignores it) and reaps zombies, so stop() ends
    // a task within its grace period instead of waiting for SIGKILL.
    Init: true,
    AutoRemove: false, // the exit code is read after the container exits
    Mounts: [{ Type: "bind", Source: placement.dataDir, Target: DATA_DIR, ReadOnly: false }],
    ...(spec.gpus > 0 ? { DeviceRequests: [{ Driver: "nvidia", Count: spec.gpus, Capabilities: [["gpu"]] }] } : {}),
  };
  return {
    name: placement.name,
    Image: spec.image,
    User: `${TASK_USER.uid}:${TASK_USER.gid}`,
    Cmd: spec.command,
    Env: Object.entries(spec.env).map(([key, value]) => `${key}=${value}`),
    Labels: placement.labels,
    Tty: false,
    OpenStdin: false,
    AttachStdin: false,
    HostConfig: hostConfig,
  };
}

const NAMESPACE_MODES = ["PidMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode"] as const;

/**
 * The first way `options` would let a task out of its sandbox (pure), or null. `dataDir` is the task's
 * storage folder, the one mount allowed. Checked before every create, whatever built the options.
 */
export function sandboxViolation(options: Dockerode.ContainerCreateOptions, policy: SandboxPolicy, dataDir: string): string | null {
  const host = options.HostConfig;
  if (!host) return "no HostConfig: the limits would be the engine's defaults (none)";
  if (host.Privileged !== false) return "the container must be unprivileged (Privileged: false)";
  if (hasEntries(host.Devices) || hasEntries(host.DeviceCgroupRules)) return "host devices are not passed to tasks (only granted GPUs, through DeviceRequests)";
  for (const request of host.DeviceRequests ?? []) {
    const gpuOnly = request.Driver === "nvidia" && JSON.stringify(request.Capabilities) === JSON.stringify([["gpu"]]) && !hasEntries(request.DeviceIDs);
    if (!gpuOnly) return "a device request other than a count of NVIDIA GPUs";
    if (!Number.isInteger(request.Count) || request.Count! < 1) return "a GPU request must name a positive count of GPUs";
    if (policy.maxGpus !== undefined && request.Count! > policy.maxGpus) return `${request.Count} GPUs requested, the node grants at most ${policy.maxGpus}`;
  }
  if (hasEntries(host.CapAdd)) return `capabilities may not be added (CapAdd ${JSON.stringify(host.CapAdd)})`;
  if (!host.CapDrop?.includes("ALL")) return "every capability must be dropped (CapDrop: [ALL])";
  if (!host.SecurityOpt?.includes("no-new-privileges")) return "no-new-privileges must be set";
  const loosened = host.SecurityOpt.find((opt: string) => /unconfined|disable/i.test(opt));
  if (loosened) return `security option ${JSON.stringify(loosened)} is not allowed`;
  const user = (options.User ?? "").split(":")[0];
  if (user === "" || user === "0" || user === "root") return "the task must not run as root";
  if (host.NetworkMode === "host") {
    if (!policy.allowHostNetwork) return "host networking is not allowed on this node";
  } else if (host.NetworkMode !== "none") {
    return `network mode ${JSON.stringify(host.NetworkMode ?? "(engine default)")} is not allowed: "none", or "host" where the operator allows it`;
  }
  for (const key of NAMESPACE_MODES) {
    const mode = (host as Record<string, unknown>)[key];
    if (mode !== undefined && mode !== "" && mode !== "private") return `${key} ${JSON.stringify(mode)} would share a namespace with the host or another container`;
  }
  if (hasEntries(host.PortBindings) || host.PublishAllPorts) return "ports are not published";
  if (hasEntries(host.Sysctls)) return "sysctls are not set for tasks";
  if (!(typeof host.Memory === "number" && host.Memory > 0)) return "a memory limit is required";
  if (host.MemorySwap !== host.Memory) return "swap beyond the memory limit is not allowed (MemorySwap must equal Memory)";
  if (policy.maxMemoryMB !== undefined && host.Memory > policy.maxMemoryMB * MIB) return `memory limit above the node's ${policy.maxMemoryMB} MiB`;
  if (!(typeof host.NanoCpus === "number" && host.NanoCpus > 0)) return "a CPU limit is required (NanoCpus)";
  if (policy.maxCpus !== undefined && host.NanoCpus > Math.round(policy.maxCpus * 1e9)) return `CPU limit above the node's ${policy.maxCpus} cores`;
  if (!(typeof host.PidsLimit === "number" && host.PidsLimit > 0)) return "a pids limit is required";
  // Mounts: the task's storage folder at /data, nothing else.
  if (hasEntries(host.Binds) || hasEntries(host.VolumesFrom) || hasEntries(options.Volumes) || hasEntries(host.Tmpfs)) {
    return "only the task's storage folder is mounted (no Binds, Volumes, VolumesFrom or Tmpfs)";
  }
  const mounts = host.Mounts ?? [];
  if (mounts.length !== 1) return `exactly one mount (the task's storage folder), not ${mounts.length}`;
  const [mount] = mounts;
  if (mount.Type !== "bind" || mount.Target !== DATA_DIR || mount.Source !== dataDir) return `the one mount must bind the task's storage folder at ${DATA_DIR}`;
  const inside = path.relative(path.resolve(policy.storageRoot), path.resolve(mount.Source));
  if (inside === "" || inside.startsWith("..") || path.isAbsolute(inside) || inside.split(path.sep).length !== 2) {
    return `mount source ${mount.Source} is not a task folder <runId>/<taskId> under the storage root ${policy.storageRoot}`;
  }
  for (const socket of [...DEFAULT_DOCKER_SOCKETS, ...(policy.dockerSockets ?? [])]) {
    const fromMount = path.relative(path.resolve(mount.Source), path.resolve(socket));
    if (!fromMount.startsWith("..") && !path.isAbsolute(fromMount)) return `mount source ${mount.Source} would expose the engine's socket ${socket}`;
  }
  return null;
}

/** Whether a create-options field holds anything (a non-empty array or object, or any other value). */
function hasEntries(value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === "object") return Object.keys(value).length > 0;
  return true;
}

/**
 * Splits a non-TTY log buffer into stdout and stderr. The engine frames each chunk with an 8-byte header:
 * stream (1 = stdout, 2 = stderr), three zero bytes, and the payload length as a big-endian uint32.
 * Payloads are joined per stream before decoding so that a UTF-8 character split across frames survives.
 */
export function demultiplex(raw: Buffer): { stdout: string; stderr: string } {
  const chunks: Record<1 | 2, Buffer[]> = { 1: [], 2: [] };
  let offset = 0;
  while (offset + 8 <= raw.length) {
    const stream = raw[offset];
    const length = raw.readUInt32BE(offset + 4);
    const payload = raw.subarray(offset + 8, offset + 8 + length);
    if (stream === 1 || stream === 2) chunks[stream].push(payload);
    offset += 8 + length;
  }
  return { stdout: Buffer.concat(chunks[1]).toString("utf8"), stderr: Buffer.concat(chunks[2]).toString("utf8") };
}

function exitError(exitCode: number, oomKilled: boolean): string {
  return oomKilled
    ? `exited with code ${exitCode}: killed for exceeding its memory limit`
    : `exited with code ${exitCode}`;
}

/** Whether `error` says the engine did not answer at all (no socket, connection refused or cut), not that it refused. */
function engineUnreachable(error: unknown): boolean {
  if (statusCodeOf(error) !== undefined) return false;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string" && ["ECONNREFUSED", "ENOENT", "ECONNRESET", "EPIPE", "ETIMEDOUT", "ECONNABORTED"].includes(code)) return true;
  return /socket hang up|ECONNREFUSED|ECONNRESET|ENOENT|EPIPE|connect/i.test(messageOf(error));
}

function statusCodeOf(error: unknown): number | undefined {
  const code = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === "number" ? code : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
