/**
 * Storage sync (subsystem "Storage"): once a task reaches a final state, its storage folder goes to the
 * run's master, content-addressed and resumable. The node lists the folder's regular files with their
 * SHA-256 (`POST <masterUrl>/tasks/:taskId/files/missing`), and PUTs only those the master lacks
 * (`PUT <masterUrl>/tasks/:taskId/files/:sha256`, raw bytes, `x-cn-file-name`). A failed round is retried
 * with exponential backoff; a task whose files all arrived is recorded in SQLite and never sent again.
 *
 * The folder is written by the task's container, which is untrusted: symbolic links are never followed
 * (neither when listing nor when opening, O_NOFOLLOW), only regular files are read, and names the master
 * would refuse (control characters, backslashes, invalid UTF-8, over 255 bytes) are skipped with a warning
 * rather than blocking the task's sync forever. Other UTF-8 names travel as their raw bytes in the header.
 */
import { createHash } from "node:crypto";
import { constants } from "node:fs";
import { open, readdir } from "node:fs/promises";
import path from "node:path";
import { failpoint } from "../shared/failpoints.js";
import { HttpError, type SignedClient } from "../shared/http.js";
import type { Logger } from "../shared/log.js";
import type { HeartbeatTarget } from "./heartbeat.js";
import type { MinerState } from "./state.js";
// The master's own rules: a name it would refuse is skipped here instead of being retried for ever.
import { fileNameProblem } from "../master/files.js";

export interface LocalFile {
  /** Path relative to the task's folder, "/"-separated. */
  name: string;
  sha256: string;
  size: number;
}

export interface SkippedFile {
  name: string;
  reason: string;
}

export interface ListOptions {
  maxFiles?: number;
  maxFileBytes?: number;
}

/** The header value carrying `name`: its UTF-8 bytes as they are (Node reads header values as latin1). */
export function fileNameHeader(name: string): string {
  return Buffer.from(name, "utf8").toString("latin1");
}

/**
 * The regular files under `dir` (recursively, symbolic links neither followed nor listed), with their
 * SHA-256 and size, sorted by name. Files the master would refuse are returned in `skipped`.
 */
export async function listTaskFiles(dir: string, options: ListOptions = {}): Promise<{ files: LocalFile[]; skipped: SkippedFile[] }> {
  const maxFiles = options.maxFiles ?? 10_000;
  const maxFileBytes = options.maxFileBytes ?? 64 * 1024 * 1024;
  const files: LocalFile[] = [];
  const skipped: SkippedFile[] = [];
  const walk = async (relative: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(path.join(dir, relative), { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT" && relative === "") return; // no folder: no files
      throw error;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const name = relative === "" ? entry.name : `${relative}/${entry.name}`;
      // readdir's types come from lstat: a link to a folder is a link, not a folder.
      if (entry.isDirectory()) {
        await walk(name);
        continue;
      }
      if (!entry.isFile()) {
        skipped.push({ name, reason: entry.isSymbolicLink() ? "symbolic link (not followed)" : "not a regular file" });
        continue;
      }
      const problem = fileNameProblem(name);
      if (problem) {
        skipped.push({ name, reason: problem });
        continue;
      }
      if (files.length >= maxFiles) {
        skipped.push({ name, reason: `more than ${maxFiles} files` });
        continue;
      }
      const read = await readRegularFile(path.join(dir, name), maxFileBytes);
      if ("reason" in read) {
        skipped.push({ name, reason: read.reason });
        continue;
      }
      files.push({ name, sha256: sha256(read.bytes), size: read.bytes.length });
    }
  };
  await walk("");
  return { files, skipped };
}

/** Reads a file without following a symbolic link at its last component, and only if it is regular. */
export async function readRegularFile(file: string, maxBytes: number): Promise<{ bytes: Buffer } | { reason: string }> {
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ELOOP") return { reason: "symbolic link (not followed)" };
    if (code === "ENOENT") return { reason: "disappeared while listing" };
    throw error;
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) return { reason: "not a regular file" };
    if (stats.size > maxBytes) return { reason: `larger than ${maxBytes} bytes` };
    return { bytes: await handle.readFile() };
  } finally {
    await handle.close();
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

export interface StorageSyncOptions {
  client: SignedClient;
  logger: Logger;
  state: MinerState;
  /** Where files go: the master this node heartbeats to, once known. */
  target: () => HeartbeatTarget | undefined;
  maxFileBytes?: number;
  /** First retry delay; doubles up to `backoffMaxMs`. */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
}

interface SyncJob {
  taskId: string;
  dir: string;
}

export class StorageSync {
  private readonly queue: SyncJob[] = [];
  private readonly queued = new Set<string>();
  private running: Promise<void> | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  /** Tasks whose files all reached the master in this process. */
  readonly completed = new Set<string>();
  filesSent = 0;
  bytesSent = 0;

  constructor(private readonly options: StorageSyncOptions) {}

  /** Syncs the task's folder once; a task already synced (this run or an earlier one) is skipped. */
  enqueue(taskId: string, dir: string): void {
    if (this.stopped || this.queued.has(taskId)) return;
    const done = this.options.state.syncedTask(taskId);
    if (done) {
      this.options.logger.debug({ taskId, files: done.files }, "task files already synced");
      return;
    }
    this.queued.add(taskId);
    this.queue.push({ taskId, dir });
    this.running ??= this.drain().finally(() => {
      this.running = undefined;
    });
  }

  /** Resolves when nothing is queued or syncing (tests). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.running;
  }

  private async drain(): Promise<void> {
    for (let job = this.queue.shift(); job && !this.stopped; job = this.queue.shift()) {
      await this.syncWithRetries(job);
      this.queued.delete(job.taskId);
    }
  }

  private async syncWithRetries(job: SyncJob): Promise<void> {
    const { logger } = this.options;
    const base = this.options.backoffBaseMs ?? 1_000;
    const max = this.options.backoffMaxMs ?? 60_000;
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await this.syncOnce(job);
        return;
      } catch (error) {
        // The master refusing the task for good (unknown task, not ours, bad request) is not worth retrying.
        if (error instanceof HttpError && error.status >= 400 && error.status < 500 && error.status !== 429 && error.status !== 401) {
          logger.error({ taskId: job.taskId, attempt: attempt + 1, err: error.message }, "file sync refused by the master; giving up");
          return;
        }
        const delayMs = Math.min(max, base * 2 ** Math.min(attempt, 20));
        logger.warn({ taskId: job.taskId, attempt: attempt + 1, err: (error as Error).message, retryInMs: delayMs }, "file sync failed; retrying");
        await this.sleep(delayMs);
      }
    }
  }

  private async syncOnce({ taskId, dir }: SyncJob): Promise<void> {
    const { client, logger, state } = this.options;
    const target = this.options.target();
    if (!target) throw new Error("no master to sync to yet (this node has not accepted an invite)");
    const maxFileBytes = this.options.maxFileBytes ?? 64 * 1024 * 1024;
    const { files, skipped } = await listTaskFiles(dir, { maxFileBytes });
    for (const file of skipped) logger.warn({ taskId, file: file.name, reason: file.reason }, "file not synced");
    const audience = target.master.toLowerCase();
    const base = `${target.masterUrl}/tasks/${encodeURIComponent(taskId)}/files`;
    const { missing } = await client.call<{ missing: string[] }>("POST", `${base}/missing`, {
      audience,
      body: { files },
    });
    const lacking = new Set(Array.isArray(missing) ? missing.map((hash) => String(hash).toLowerCase()) : []);
    const toSend = files.filter((file) => lacking.has(file.sha256));
    let bytes = 0;
    for (const file of toSend) {
      const read = await readRegularFile(path.join(dir, file.name), maxFileBytes);
      if ("reason" in read) throw new Error(`${file.name}: ${read.reason}`);
      if (sha256(read.bytes) !== file.sha256) throw new Error(`${file.name} changed while syncing`);
      const response = await client.request<{ error?: string }>("PUT", `${base}/${file.sha256}`, {
        audience,
        rawBody: read.bytes,
        headers: { "x-cn-file-name": fileNameHeader(file.name) },
      });
      if (response.status < 200 || response.status >= 300) {
        throw new Error(`PUT ${file.name} (${file.sha256}): ${response.status} ${response.body?.error ?? ""}`.trim());
      }
      state.markFileSynced(taskId, file.name, file.sha256, file.size);
      bytes += file.size;
      this.filesSent++;
      this.bytesSent += file.size;
      logger.debug({ taskId, file: file.name, sha256: file.sha256, size: file.size }, "file sent");
      failpoint("storage.midSync", taskId);
    }
    state.markTaskSynced(taskId, files.length, bytes);
    this.completed.add(taskId);
    logger.info(
      { taskId, master: target.master, files: files.length, sent: toSend.length, alreadyThere: files.length - toSend.length, bytesSent: bytes, skipped: skipped.length },
      "task files synced to the master",
    );
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const wake = () => done();
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = wake;
    });
  }
}
