/**
 * Signature recovery in worker threads, for the keepers whose HTTP hot path is signature-bound (the
 * master's heartbeats, discovery). The recovery itself (Keccak of the request text, libsecp256k1
 * `ecdsaRecover`, Keccak of the public key: ~80 µs; for a signer the worker recovered before, `ecdsaVerify`
 * against its key instead, ~11 µs less: `checkMessageSigner`) leaves the event loop, which keeps parsing, routing,
 * SQLite and answering; the machine's second core does the curve math.
 *
 * Requests that arrive in the same turn of the event loop go to a worker in messages of at most
 * `maxBatch` (default DEFAULT_MAX_BATCH) recoveries each, round robin over the workers, one postMessage each
 * way per message. If no worker can start (or one dies), recoveries run on the calling thread: same results,
 * only slower.
 */
import type { Worker } from "node:worker_threads";
import type { Logger } from "./log.js";
import { startModuleWorker } from "./module-worker.js";
import { signerOf } from "./recover.js";
import type { Recover } from "./signing.js";

/**
 * Default for the master and discovery: one worker. Measured with bench/sections/http.ts, load client on the
 * same 2 cores (and other work on the machine): master 4,350-4,600 heartbeats/s with one worker against
 * 3,900-4,050 without; discovery ~3,050-3,600 requests/s against ~2,950-3,150; two workers did worse
 * than one (they only compete for the same cores).
 */
export const DEFAULT_VERIFY_WORKERS = 1;

/**
 * Default for the largest number of recoveries in one message to a worker. With a whole turn's requests in
 * one message (up to 64 when the benchmark ran 64 connections) the two threads take turns: the worker
 * recovers them all while the event loop waits for the answer; then the event loop answers them and reads
 * and sends the next requests while the worker waits. Small messages keep both busy: the worker recovers the
 * next message while the event loop answers the previous one. Measured with bench/sections/http.ts, load
 * client on the same 2 cores, the variants run alternately: the signed floor (three runs each) 8,500-9,200
 * requests/s with one message per turn, 8,000-11,400 with 2 per message, 9,400-10,600 with 4, 7,900-10,700
 * with 8 (4: the narrowest range, in the middle); discovery (two runs each) 5,300-5,400 with one message per
 * turn against 5,800-6,000 with 4; the master's heartbeats 6,000-6,500 against 6,900-6,950. The CPU per
 * request stays the same: the gain is the threads' overlap.
 */
export const DEFAULT_MAX_BATCH = 4;

const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
(async () => {
  if (workerData.loader) {
    const { register } = await import(workerData.loader);
    register();
  }
  const recover = await import(workerData.module);
  parentPort.on("message", ({ id, texts, signatures, claimed }) => {
    const addresses = new Array(texts.length);
    for (let i = 0; i < texts.length; i++) addresses[i] = recover.signerOf(texts[i], signatures[i], claimed[i]);
    parentPort.postMessage({ id, addresses });
  });
  parentPort.postMessage({ ready: true });
})().catch((error) => parentPort.postMessage({ failed: String(error && error.stack || error) }));
`;

interface Batch {
  texts: string[];
  signatures: string[];
  /** The address each request claims ("" when the caller gave none: plain recovery). */
  claimed: string[];
  resolves: Array<(address: string | null) => void>;
}

interface PoolWorker {
  worker: Worker;
  /** Batches sent and not answered, by id. */
  pending: Map<number, Batch>;
}

export class SignaturePool {
  private readonly workers: PoolWorker[] = [];
  private next = 0;
  private batchId = 0;
  private batch: Batch | undefined;
  private closed = false;
  /** A flush is due at the end of this turn (setImmediate): it sends whatever batch is open then. */
  private flushScheduled = false;

  private constructor(
    private readonly logger: Logger,
    private readonly maxBatch: number,
  ) {}

  /**
   * Starts `size` workers (0: none, every recovery on the calling thread); each message to a worker carries
   * at most `maxBatch` recoveries (default DEFAULT_MAX_BATCH).
   */
  static async start(options: { size: number; logger: Logger; maxBatch?: number }): Promise<SignaturePool> {
    const maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
    if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new Error(`maxBatch must be a positive integer, got ${maxBatch}`);
    const pool = new SignaturePool(options.logger, maxBatch);
    const started = await Promise.all(
      Array.from({ length: options.size }, () =>
        startModuleWorker({
          source: WORKER_SOURCE,
          module: "./recover",
          base: import.meta.url,
          logger: options.logger,
          fields: { subsystem: "Http" },
          name: "signature worker",
          fallback: "recovering signatures on the main thread",
          closed: () => pool.closed,
        }),
      ),
    );
    for (const worker of started) if (worker) pool.attach(worker);
    options.logger.info({ subsystem: "Http", workers: pool.workers.length, asked: options.size }, "signature recovery workers started");
    return pool;
  }

  /** Worker threads running. */
  get size(): number {
    return this.workers.length;
  }

  /** Messages sent to workers so far (each carries up to `maxBatch` recoveries). */
  get messagesSent(): number {
    return this.batchId;
  }

  /** The `recover` function for requireSignature. */
  readonly recover: Recover = (text, signature, claimed = "") => {
    if (this.workers.length === 0) return signerOf(text, signature, claimed);
    return new Promise<string | null>((resolve) => {
      this.batch ??= { texts: [], signatures: [], claimed: [], resolves: [] };
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => {
          this.flushScheduled = false;
          this.flush();
        });
      }
      this.batch.texts.push(text);
      this.batch.signatures.push(signature);
      this.batch.claimed.push(claimed);
      this.batch.resolves.push(resolve);
      // A full message leaves at once; what is left of the turn goes with the flush at its end.
      if (this.batch.texts.length >= this.maxBatch) this.flush();
    });
  };

  async close(): Promise<void> {
    this.closed = true;
    const workers = this.workers.splice(0);
    for (const w of workers) this.recoverInline(w.pending);
    await Promise.all(workers.map((w) => w.worker.terminate()));
  }

  private attach(worker: Worker): void {
    const entry: PoolWorker = { worker, pending: new Map() };
    worker.on("message", (message: { id: number; addresses: Array<string | null> }) => {
      const batch = entry.pending.get(message.id);
      if (!batch) return;
      entry.pending.delete(message.id);
      for (let i = 0; i < batch.resolves.length; i++) batch.resolves[i](message.addresses[i]);
    });
    worker.on("exit", (code) => {
      const index = this.workers.indexOf(entry);
      if (index !== -1) this.workers.splice(index, 1);
      if (!this.closed) this.logger.error({ subsystem: "Http", code, left: this.workers.length }, "signature worker exited; its batches are recovered on the main thread");
      this.recoverInline(entry.pending);
    });
    this.workers.push(entry);
  }

  private flush(): void {
    const batch = this.batch;
    this.batch = undefined;
    if (!batch) return;
    if (this.workers.length === 0) {
      this.recoverInline(new Map([[0, batch]]));
      return;
    }
    const target = this.workers[this.next++ % this.workers.length];
    const id = this.batchId++;
    target.pending.set(id, batch);
    target.worker.postMessage({ id, texts: batch.texts, signatures: batch.signatures, claimed: batch.claimed });
  }

  private recoverInline(pending: Map<number, Batch>): void {
    for (const batch of pending.values()) {
      for (let i = 0; i < batch.resolves.length; i++) batch.resolves[i](signerOf(batch.texts[i], batch.signatures[i], batch.claimed[i]));
    }
    pending.clear();
  }
}
