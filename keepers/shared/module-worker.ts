/**
 * Starting a worker thread that imports one of the keepers' modules, for the CPU-heavy jobs (the
 * challenge solver, the PoC engine). Run from TypeScript sources (tsx, the test runner) the module hooks of
 * the parent thread do not reach a worker, so the worker source registers tsx's ESM hooks first (`loader`);
 * compiled to JavaScript it imports the .js file directly. Resolves to undefined when no worker can start:
 * the caller then computes on the main thread.
 */
import { Worker } from "node:worker_threads";
import type { Logger } from "./log.js";

export interface ModuleWorkerOptions {
  /** The worker's source (eval'd): it imports `workerData.module` after `workerData.loader`, then posts `{ ready: true }` or `{ failed }`. */
  source: string;
  /** The module to load, relative to `base` without its extension (e.g. "./poc"). */
  module: string;
  /** `import.meta.url` of the caller. */
  base: string;
  logger: Logger;
  /** Log fields and wording: e.g. { subsystem: "PoC" } and "PoC worker". */
  fields: Record<string, unknown>;
  name: string;
  /** Wording of the fallback, e.g. "running the PoC on the main thread". */
  fallback: string;
  /** Whether the owner closed meanwhile (the worker is then terminated). */
  closed: () => boolean;
}

export async function startModuleWorker(options: ModuleWorkerOptions): Promise<Worker | undefined> {
  const { logger, fields } = options;
  const fromSources = options.base.endsWith(".ts");
  let loader: string | undefined;
  if (fromSources) {
    try {
      loader = import.meta.resolve("tsx/esm/api");
    } catch {
      logger.warn(fields, `tsx not found: ${options.fallback}`);
      return undefined;
    }
  }
  const module = new URL(`${options.module}.${fromSources ? "ts" : "js"}`, options.base).href;
  try {
    const worker = new Worker(options.source, { eval: true, workerData: { loader, module } });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("worker did not start within 30 s")), 30_000);
      worker.once("message", (message: { ready?: boolean; failed?: string }) => {
        clearTimeout(timer);
        if (message.ready) resolve();
        else reject(new Error(message.failed ?? "worker failed to start"));
      });
      worker.once("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    worker.unref();
    // After start-up an uncaught error ends the worker: its owner's exit handler fails the job in flight.
    worker.on("error", (error) => logger.error({ ...fields, err: error.message }, `${options.name} crashed`));
    if (options.closed()) {
      await worker.terminate();
      return undefined;
    }
    return worker;
  } catch (error) {
    logger.warn({ ...fields, err: (error as Error).message }, `${options.name} unavailable: ${options.fallback}`);
    return undefined;
  }
}

/**
 * One module worker for an owner that runs one job at a time on it: started on first use (`get`), replaced
 * after the owner discards it (stuck, or exited), terminated at `close`.
 */
export class LazyModuleWorker {
  /** The started worker, undefined while it starts, after a discard, or when none could start. */
  current: Worker | undefined;
  private ready: Promise<Worker | undefined> | undefined;
  private closed = false;

  constructor(private readonly options: Omit<ModuleWorkerOptions, "closed">) {}

  /** The worker, started on the first call after construction or a discard; undefined when none can start. */
  get(): Promise<Worker | undefined> {
    this.ready ??= startModuleWorker({ ...this.options, closed: () => this.closed }).then((worker) => {
      if (worker) this.current = worker;
      return worker;
    });
    return this.ready;
  }

  /** Forgets `worker`, terminating it unless it already exited: the next `get` starts a new one. */
  discard(worker: Worker, exited = false): void {
    if (!exited) void worker.terminate();
    if (this.current === worker) this.current = undefined;
    this.ready = undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.current;
    this.current = undefined;
    if (worker) await worker.terminate();
  }
}
