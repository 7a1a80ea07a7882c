/**
 * A task's persistent storage at the master: content-addressed blobs under `<dataDir>/blobs/<sha256>`
 * (each content stored once, whatever the number of tasks or names that refer to it) and, per task, the
 * file names that point to them. Miners sync resumably: they ask which hashes are missing, then PUT only
 * those. Names are metadata only (nothing is ever written under a name), but the buyer will write files
 * under them, so they are held to a strict relative-path form.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { failpoint } from "../shared/failpoints.js";
import type { Db } from "../shared/store.js";
import type { Logger } from "../shared/log.js";

export const SHA256_PATTERN = /^[0-9a-f]{64}$/;
export const MAX_FILE_NAME_BYTES = 255;

/** Why `name` is not an acceptable relative file name, or null when it is. */
export function fileNameProblem(name: string): string | null {
  if (name.length === 0) return "must not be empty";
  const bytes = Buffer.byteLength(name, "utf8");
  if (bytes > MAX_FILE_NAME_BYTES) return `is ${bytes} bytes long; at most ${MAX_FILE_NAME_BYTES}`;
  if (name.includes("\uFFFD") || LONE_SURROGATE.test(name)) return "is not valid UTF-8";
  // C0, DEL and C1 controls: no newlines or escapes in names that end up in logs and terminals.
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) return "must not contain control characters";
  if (FORMAT_CHARACTER.test(name)) return "must not contain invisible formatting characters (bidirectional controls, zero-width spaces: they make a name read as another)";
  if (name.includes("\\")) return "must not contain backslashes (use / between folders)";
  if (name.startsWith("/") || /^[A-Za-z]:/.test(name)) return "must be a relative path";
  const segments = name.split("/");
  if (segments.includes("..")) return 'must not contain ".." segments';
  if (segments.some((s) => s === "" || s === ".")) return 'must not contain empty or "." segments';
  // HTTP strips a header value's surrounding whitespace: such a name would be stored under another one.
  if (name !== name.trim()) return "must not start or end with whitespace";
  // Nothing decodes names, but a tool that did must not find a path in them.
  if (ENCODED_PATH_CHARACTER.test(name)) return "must not contain percent-encoded dots, slashes, backslashes or control characters (%2e, %2f, %5c, %00-%1f, %7f)";
  return null;
}

/** A percent-encoded ".", "/", "\\" or control character: what a decoding reader would turn into a path. */
export const ENCODED_PATH_CHARACTER = /%(2e|2f|5c|[01][0-9a-f]|7f)/i;
/** Half of a surrogate pair without its other half: no UTF-8 encodes it (JSON's "\\ud800" can carry one). */
export const LONE_SURROGATE = /\p{Cs}/u;
/**
 * Invisible formatting characters (Unicode category Cf): bidirectional overrides, embeddings, isolates and
 * marks ("Trojan Source": "txt.exe" shown as "exe.txt"), zero-width spaces, word joiners, the BOM. The zero-
 * width (non-)joiners are allowed: some scripts and emoji need them.
 */
export const FORMAT_CHARACTER = /(?![\u200c\u200d])\p{Cf}/u;

/**
 * The name sent in the `x-cn-file-name` header: Node hands header values over as latin1, so UTF-8 bytes
 * sent as they are come back by re-reading them as UTF-8.
 */
export function fileNameFromHeader(value: string): string {
  return Buffer.from(value, "latin1").toString("utf8");
}

export interface StoredFile {
  taskId: string;
  name: string;
  sha256: string;
  size: number;
  uploadedAt: number;
}

export interface FileClaim {
  name: string;
  sha256: string;
  size: number;
}

interface FileRow {
  task_id: string;
  name: string;
  sha256: string;
  size: number;
  uploaded_at: number;
}

const toFile = (row: FileRow): StoredFile => ({
  taskId: row.task_id,
  name: row.name,
  sha256: row.sha256,
  size: row.size,
  uploadedAt: row.uploaded_at,
});

export class FileStore {
  readonly blobsDir: string;

  constructor(
    private readonly db: Db,
    dataDir: string,
    private readonly log: Logger,
  ) {
    this.blobsDir = path.join(dataDir, "blobs");
    mkdirSync(this.blobsDir, { recursive: true });
    // Temporary files of uploads a crash cut short (written, never renamed to their hash): nobody refers
    // to them, and the miner sends those files again (they are still missing).
    const leftovers = readdirSync(this.blobsDir).filter((name) => name.startsWith(".tmp-"));
    for (const name of leftovers) rmSync(path.join(this.blobsDir, name), { force: true });
    if (leftovers.length > 0) log.warn({ removed: leftovers.length }, "removed temporary files of uploads interrupted by a crash");
    db.exec(`
      CREATE TABLE IF NOT EXISTS master_files (
        task_id TEXT NOT NULL, name TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
        uploaded_at INTEGER NOT NULL, PRIMARY KEY (task_id, name)
      );
      CREATE INDEX IF NOT EXISTS master_files_sha ON master_files (task_id, sha256);
    `);
  }

  blobPath(sha256: string): string {
    if (!SHA256_PATTERN.test(sha256)) throw new Error(`not a sha256: ${sha256}`);
    return path.join(this.blobsDir, sha256);
  }

  /** Size of the stored blob, or undefined when the master lacks it. */
  blobSize(sha256: string): number | undefined {
    try {
      return statSync(this.blobPath(sha256)).size;
    } catch {
      return undefined;
    }
  }

  /**
   * Stores `bytes` as blob `sha256` (the caller checked the hash) and records it as `name` of the task.
   * Returns whether the bytes were written now (false: the master already held that content).
   */
  async put(taskId: string, name: string, sha256: string, bytes: Buffer): Promise<{ stored: boolean; size: number }> {
    const actual = createHash("sha256").update(bytes).digest("hex");
    if (actual !== sha256) throw new Error(`bytes hash to ${actual}, not ${sha256}`);
    const target = this.blobPath(sha256);
    let stored = false;
    if (!existsSync(target)) {
      // Write-then-rename: a crash mid-write never leaves a truncated blob under its hash.
      const tmp = path.join(this.blobsDir, `.tmp-${randomBytes(8).toString("hex")}`);
      try {
        await writeFile(tmp, bytes);
        failpoint("storage.beforeRename", taskId);
        await rename(tmp, target);
      } catch (error) {
        await rm(tmp, { force: true });
        throw error;
      }
      stored = true;
    }
    this.record(taskId, name, sha256, bytes.length);
    this.log.info(
      { taskId, name, sha256, size: bytes.length, stored, deduplicated: !stored },
      stored ? "file stored" : "file recorded (content already stored)",
    );
    return { stored, size: bytes.length };
  }

  record(taskId: string, name: string, sha256: string, size: number): void {
    this.db
      .prepare(
        `INSERT INTO master_files (task_id, name, sha256, size, uploaded_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(task_id, name) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size, uploaded_at = excluded.uploaded_at`,
      )
      .run(taskId, name, sha256, size, Date.now());
  }

  /**
   * Which of the claimed files the master lacks (their hashes, each once). Files whose content the master
   * already holds are recorded for the task right away, so the miner need not send them.
   */
  missing(taskId: string, claims: FileClaim[]): string[] {
    const missing = new Set<string>();
    let recorded = 0;
    for (const claim of claims) {
      const size = this.blobSize(claim.sha256);
      if (size === undefined || size !== claim.size) {
        missing.add(claim.sha256);
        continue;
      }
      const known = this.find(taskId, claim.sha256, claim.name);
      if (!known) {
        this.record(taskId, claim.name, claim.sha256, size);
        recorded++;
      }
    }
    this.log.info({ taskId, claimed: claims.length, missing: missing.size, recordedFromStore: recorded }, "file sync: missing list");
    return [...missing];
  }

  list(taskId: string): StoredFile[] {
    const rows = this.db.prepare("SELECT * FROM master_files WHERE task_id = ? ORDER BY name").all(taskId) as FileRow[];
    return rows.map(toFile);
  }

  /** The files of each of `taskIds`, by name (one query per 500 tasks). */
  listFor(taskIds: string[]): Map<string, StoredFile[]> {
    const files = new Map<string, StoredFile[]>();
    for (let i = 0; i < taskIds.length; i += 500) {
      const chunk = taskIds.slice(i, i + 500);
      const rows = this.db
        .prepare(`SELECT * FROM master_files WHERE task_id IN (${chunk.map(() => "?").join(", ")}) ORDER BY task_id, name`)
        .all(...chunk) as FileRow[];
      for (const row of rows) {
        const list = files.get(row.task_id);
        if (list) list.push(toFile(row));
        else files.set(row.task_id, [toFile(row)]);
      }
    }
    return files;
  }

  /** The task's file with that content (and name, when given). */
  find(taskId: string, sha256: string, name?: string): StoredFile | undefined {
    const row = (
      name === undefined
        ? this.db.prepare("SELECT * FROM master_files WHERE task_id = ? AND sha256 = ? LIMIT 1").get(taskId, sha256)
        : this.db.prepare("SELECT * FROM master_files WHERE task_id = ? AND sha256 = ? AND name = ?").get(taskId, sha256, name)
    ) as FileRow | undefined;
    return row ? toFile(row) : undefined;
  }
}
