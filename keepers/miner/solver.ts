/**
 * Solves validators' hardware challenges in a worker thread: an n = 1024 product takes seconds of CPU
 * (keepers/shared/challenge.ts), and the HTTP API, heartbeats and event follower must keep running
 * meanwhile. One worker, one challenge at a time (a second one would only share the same cores), with a
 * bounded queue so that a flood of challenges is refused instead of queued forever.
 *
 * The worker imports challenge.ts itself. Run from TypeScript sources (tsx, the test runner), the module
 * hooks of the parent thread do not reach a worker, so it registers tsx's ESM hooks first; compiled to
 * JavaScript it imports challenge.js directly. If no worker can start, challenges are solved inline; so are
 * small ones (n ≤ 256) that arrive while the worker is still starting.
 */
import type { Worker } from "node:worker_threads";
import { LazyModuleWorker } from "../shared/module-worker.js";
import { type ChallengeParams, encodeResult, solveChallenge } from "../shared/challenge.js";
import type { Logger } from "../shared/log.js";

const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
(async () => {
  if (workerData.loader) {
    const { register } = await import(workerData.loader);
    register();
  }
  const challenge = await import(workerData.module);
  parentPort.on("message", ({ id, params }) => {
    try {
      parentPort.postMessage({ id, result: challenge.encodeResult(challenge.solveChallenge(params)) });
    } catch (error) {
      parentPort.postMessage({ id, error: String((error && error.message) || error) });
    }
  });
  parentPort.postMessage({ ready: true });
})().catch((error) => parentPort.postMessage({ failed: String((error && error.stack) || error) }));
`;

/**
 * Largest challenge solved on the calling thread while the worker is not ready: n = 256 (the validators'
 * default) takes about 50 ms there (challenge.ts), less than the worker's start-up.
 */
export const INLINE_WHILE_STARTING_MAX_N = 256;

export class QueueFullError extends Error {
  constructor(readonly pending: number) {
    super(`${pending} challenges are already waiting; try again later`);
    this.name = "QueueFullError";
  }
}

interface Job {
  params: ChallengeParams;
  resolve: (result: string) => void;
  reject: (error: Error) => void;
}

export class ChallengeSolver {
  private readonly worker: LazyModuleWorker;
  private readonly queue: Job[] = [];
  private busy = false;
  private closed = false;
  private nextId = 1;
  solved = 0;

  constructor(
    logger: Logger,
    private readonly options: { maxQueued?: number; timeoutMs?: number } = {},
  ) {
    this.worker = new LazyModuleWorker({
      source: WORKER_SOURCE,
      module: "../shared/challenge",
      base: import.meta.url,
      logger,
      fields: { subsystem: "Validation" },
      name: "challenge worker",
      fallback: "solving challenges on the main thread",
    });
  }

  /** `encodeResult(solveChallenge(params))`, computed off the main thread. */
  solve(params: ChallengeParams): Promise<string> {
    if (this.closed) return Promise.reject(new Error("solver closed"));
    const maxQueued = this.options.maxQueued ?? 4;
    if (this.queue.length >= maxQueued) return Promise.reject(new QueueFullError(this.queue.length));
    return new Promise((resolve, reject) => {
      this.queue.push({ params, resolve, reject });
      void this.drain();
    });
  }

  /** Starts the worker ahead of the first challenge, whose deadline should not pay for it. */
  warm(): void {
    void this.worker.get();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new Error("solver closed"));
    await this.worker.close();
  }

  private async drain(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      for (let job = this.queue.shift(); job; job = this.queue.shift()) {
        try {
          job.resolve(await this.run(job.params));
          this.solved++;
        } catch (error) {
          job.reject(error as Error);
        }
      }
    } finally {
      this.busy = false;
    }
  }

  private async run(params: ChallengeParams): Promise<string> {
    if (!this.worker.current && params.n <= INLINE_WHILE_STARTING_MAX_N) {
      // The worker is still starting (a second or more on a busy machine, right when a new node gets its
      // first challenge): a small challenge is solved here meanwhile, in tens of milliseconds.
      void this.worker.get();
      return encodeResult(solveChallenge(params));
    }
    const worker = await this.worker.get();
    if (!worker) return encodeResult(solveChallenge(params));
    const id = this.nextId++;
    const timeoutMs = this.options.timeoutMs ?? 120_000;
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        // A stuck worker is replaced: terminate it and start afresh with the next challenge.
        this.worker.discard(worker);
        reject(new Error(`challenge ${params.challengeId}: not solved within ${timeoutMs} ms`));
      }, timeoutMs);
      const onMessage = (message: { id?: number; result?: string; error?: string }) => {
        if (message.id !== id) return;
        cleanup();
        if (message.error !== undefined) reject(new Error(message.error));
        else resolve(message.result!);
      };
      const onExit = (code: number) => {
        cleanup();
        this.worker.discard(worker, true);
        reject(new Error(`challenge worker exited with code ${code}`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        worker.off("message", onMessage);
        worker.off("exit", onExit);
      };
      worker.on("message", onMessage);
      worker.on("exit", onExit);
      worker.postMessage({ id, params });
    });
  }
}
