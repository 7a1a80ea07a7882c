/**
 * A task's result as it goes on chain: its exit code and the files of its storage folder, listed exactly
 * as the storage sync lists them for the master (sync.ts: regular files only, symbolic links neither
 * followed nor listed, names the master would refuse left out), hashed by `resultHash`. The executor
 * (ledger-tasks.ts) and a validator re-executing the task (reexec.ts) both come through here, with the
 * same fixed limits, so that one folder always gives one hash whatever either node's sync settings are.
 */
import { type ResultFile, resultHash } from "../shared/task-hash.js";
import { type SkippedFile, listTaskFiles } from "./sync.js";

/** Limits of the listing behind a result hash: fixed, so that every node lists a folder alike. */
export const RESULT_LISTING = { maxFiles: 10_000, maxFileBytes: 64 * 1024 * 1024 } as const;

export interface ComputedResult {
  resultHash: string;
  exitCode: number | null;
  files: ResultFile[];
  /** Files left out of the hash (and of the sync), with the reason. */
  skipped: SkippedFile[];
}

export async function computeTaskResult(storageDir: string, exitCode: number | null): Promise<ComputedResult> {
  const { files, skipped } = await listTaskFiles(storageDir, RESULT_LISTING);
  const listed = files.map((file) => ({ name: file.name, sha256: file.sha256 }));
  return { resultHash: resultHash({ exitCode, files: listed }), exitCode, files: listed, skipped };
}
