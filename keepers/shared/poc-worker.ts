/**
 * Runs the PoC engine (poc.ts) in a worker thread: a PoC window keeps a core busy for its whole length, and
 * the miner's HTTP API, heartbeats and event follower must keep their latency meanwhile (runPoc alone only
 * yields between slices). One worker, one run at a time (a second run would only share the same core).
 *
 * As keepers/miner/solver.ts does: run from TypeScript sources (tsx, the test runner), the module hooks of
 * the parent thread do not reach a worker, so the worker registers tsx's ESM hooks first; compiled to
 * JavaScript it imports poc.js directly. If no worker can start, the run happens inline (runPoc on this
 * thread, yielding every slice). The worker keeps the last model it built, so a second run in the same
 * epoch (a restart of the loop) does not derive the weights again.
 */
import type { Worker } from "node:worker_threads";
import { LazyModuleWorker } from "./module-worker.js";
import type { Logger } from "./log.js";
import { type PocParams, type PocProgress, type PocRunResult, type RunPocOptions, buildModel, runPoc } from "./poc.js";

const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
(async () => {
  if (workerData.loader) {
    const { register } = await import(workerData.loader);
    register();
  }
  const poc = await import(workerData.module);
  let cached;
  let running;
  const stopped = new Set();
  parentPort.on("message", async (message) => {
    if (message.type === "stop") {
      if (message.id === running) stopped.add(message.id);
      return;
    }
    const { id, beacon, params, run } = message;
    running = id;
    try {
      const key = beacon + JSON.stringify(params);
      if (!cached || cached.key !== key) cached = { key, model: poc.buildModel(beacon, params) };
      const result = await poc.runPoc({
        ...run,
        model: cached.model,
        shouldStop: () => stopped.has(id),
        onProgress: (progress) => parentPort.postMessage({ id, progress }),
      });
      parentPort.postMessage({ id, result });
    } catch (error) {
      parentPort.postMessage({ id, error: String((error && error.message) || error) });
    } finally {
      stopped.delete(id);
      running = undefined;
    }
  });
  parentPort.postMessage({ ready: true });
})().catch((error) => parentPort.postMessage({ failed: String((error && error.stack) || error) }));
`;

export interface PocJob extends Omit<RunPocOptions, "model"> {
  /** The epoch's PoC beacon and the network's parameters: the worker builds the model from them. */
  beacon: string;
  params: PocParams;
}

interface WorkerMessage {
  id?: number;
  progress?: PocProgress;
  result?: PocRunResult;
  error?: string;
}

/** How long past its deadline a run may take before the worker is deemed stuck and replaced. */
const GRACE_MS = 30_000;
/** How often `shouldStop` is polled while the worker computes. */
const STOP_POLL_MS = 100;

export class PocWorker {
  private readonly worker: LazyModuleWorker;
  private busy = false;
  private closed = false;
  private nextId = 1;

  constructor(logger: Logger) {
    this.worker = new LazyModuleWorker({
      source: WORKER_SOURCE,
      module: "./poc",
      base: import.meta.url,
      logger,
      fields: { subsystem: "PoC" },
      name: "PoC worker",
      fallback: "running the PoC on the main thread",
    });
  }

  /**
   * runPoc for `job`, off the main thread when a worker can start (inline otherwise). One run at a time:
   * a second call while one is running is refused.
   */
  async run(job: PocJob): Promise<PocRunResult> {
    if (this.closed) throw new Error("PoC worker closed");
    if (this.busy) throw new Error("a PoC run is already in progress");
    this.busy = true;
    try {
      const worker = await this.worker.get();
      if (!worker) {
        const { beacon, params, ...run } = job;
        return await runPoc({ ...run, model: buildModel(beacon, params) });
      }
      return await this.runOn(worker, job);
    } finally {
      this.busy = false;
    }
  }

  /** Starts the worker ahead of the first run, whose window should not pay for it. */
  warm(): void {
    void this.worker.get();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.worker.close();
  }

  private runOn(worker: Worker, job: PocJob): Promise<PocRunResult> {
    const id = this.nextId++;
    const { beacon, params, shouldStop, onProgress, ...run } = job;
    return new Promise<PocRunResult>((resolve, reject) => {
      let stopSent = false;
      const pollStop = () => {
        if (!stopSent && shouldStop?.()) {
          stopSent = true;
          worker.postMessage({ type: "stop", id });
        }
      };
      const poller = setInterval(pollStop, STOP_POLL_MS);
      const timer = setTimeout(() => {
        cleanup();
        // A stuck worker is replaced: terminate it; the next run starts a fresh one.
        this.worker.discard(worker);
        reject(new Error(`PoC run did not end within ${GRACE_MS} ms of its deadline`));
      }, Math.max(0, job.deadline - Date.now()) + GRACE_MS);
      const onMessage = (message: WorkerMessage) => {
        if (message.id !== id) return;
        if (message.progress) {
          onProgress?.(message.progress);
          pollStop();
          return;
        }
        cleanup();
        if (message.error !== undefined) reject(new Error(message.error));
        else resolve(message.result!);
      };
      const onExit = (code: number) => {
        cleanup();
        this.worker.discard(worker, true);
        reject(new Error(`PoC worker exited with code ${code}`));
      };
      const cleanup = () => {
        clearInterval(poller);
        clearTimeout(timer);
        worker.off("message", onMessage);
        worker.off("exit", onExit);
      };
      worker.on("message", onMessage);
      worker.on("exit", onExit);
      worker.postMessage({ type: "run", id, beacon, params, run });
    });
  }
}
