/**
 * Re-execution of another node's task for validation: the spec the task's master serves (whose hash is on
 * chain) runs as a throwaway container in this node's runtime — same sandbox and limits as a task —, its
 * result hash is computed exactly as the executor computes it (task-result.ts), then the container and its
 * storage folder are removed. A deterministic task must reproduce the executor's hash.
 *
 * The container's task id is `val-<ledgerTaskId>-<random>` and its run id "0" (no run has id 0), so that
 * heartbeats, which report only the node's run, never show it, and no master ever learns of it.
 */
import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { keccak256, toUtf8Bytes } from "ethers";
import type { ResultFile } from "../shared/task-hash.js";
import type { DockerRuntime } from "./docker-runtime.js";
import type { SkippedFile } from "./sync.js";
import { computeTaskResult } from "./task-result.js";
import { type TaskSpec, validateTaskSpec } from "./task-spec.js";

/** The run id of validation containers: no run has it, so nothing reports them. */
export const VALIDATION_RUN_ID = "0";
const PREFIX = "val-";

export interface ReexecOptions {
  /** Longest the container may take to reach a final state; it is stopped and removed after. */
  timeoutMs: number;
  /** Where to log (the caller's subsystem). */
  logger?: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
}

export interface ReexecResult {
  resultHash: string;
  exitCode: number;
  files: ResultFile[];
  /** Files left out of the hash (as the executor leaves them out). */
  skipped: SkippedFile[];
  /** "completed" or "failed" (a non-zero exit after the spec's restarts). */
  state: string;
  durationMs: number;
}

/** Whether `taskId` names a validation container (see the file's notice). */
export function isValidationTaskId(taskId: string): boolean {
  return taskId.startsWith(PREFIX);
}

/** `val-<ledgerTaskId>-<8 random hex>`, within the 64 characters of a task id (long ids are hashed). */
export function validationTaskId(ledgerTaskId: string | undefined): string {
  const suffix = randomBytes(4).toString("hex");
  const id = ledgerTaskId ?? "x";
  const label = id.length <= 40 ? id : keccak256(toUtf8Bytes(id)).slice(2, 18);
  return `${PREFIX}${label}-${suffix}`;
}

/**
 * Runs `spec` as a validation container and returns its result. Throws when the container could not run
 * to an exit (image missing, engine error, spec refused by this node, timeout, stopped): the caller then
 * knows nothing about the task's result and must not judge it on this run.
 */
export async function reexecute(runtime: DockerRuntime, spec: TaskSpec, options: ReexecOptions): Promise<ReexecResult> {
  const taskId = validationTaskId(spec.ledgerTaskId);
  const valid = validateTaskSpec({ ...spec, taskId, runId: VALIDATION_RUN_ID, ledgerTaskId: undefined });
  const started = Date.now();
  const fields = { taskId, ledgerTaskId: spec.ledgerTaskId ?? null, image: valid.image };
  options.logger?.info({ ...fields, timeoutMs: options.timeoutMs }, "re-executing the task in a throwaway container");
  let dir: string | undefined;
  try {
    await runtime.start(valid);
    dir = runtime.storageDir(taskId);
    const status = await runtime.wait(taskId, options.timeoutMs);
    if (status.exitCode === null || status.state === "stopped") {
      throw new Error(`validation container ${taskId} did not run to an exit (${status.state}${status.error ? `: ${status.error}` : ""})`);
    }
    const result = await computeTaskResult(dir, status.exitCode);
    const outcome: ReexecResult = {
      resultHash: result.resultHash,
      exitCode: status.exitCode,
      files: result.files,
      skipped: result.skipped,
      state: status.state,
      durationMs: Date.now() - started,
    };
    // No result hash at info: it is what other validators must find by re-executing (docs/SECURITY.md §3.7).
    options.logger?.info(
      { ...fields, exitCode: outcome.exitCode, files: outcome.files.length, skipped: outcome.skipped.length, durationMs: outcome.durationMs },
      "re-execution finished",
    );
    return outcome;
  } finally {
    await removeValidation(runtime, taskId, dir, options.logger);
  }
}

/** Removes validation containers an earlier process left (a crash mid re-execution), with their folders. */
export async function removeValidationLeftovers(runtime: DockerRuntime, taskIds: string[], logger?: ReexecOptions["logger"]): Promise<string[]> {
  const removed: string[] = [];
  for (const taskId of taskIds.filter(isValidationTaskId)) {
    let dir: string | undefined;
    try {
      dir = runtime.storageDir(taskId);
    } catch {
      dir = undefined;
    }
    await removeValidation(runtime, taskId, dir, logger);
    removed.push(taskId);
  }
  return removed;
}

async function removeValidation(runtime: DockerRuntime, taskId: string, dir: string | undefined, logger: ReexecOptions["logger"]): Promise<void> {
  try {
    await runtime.remove(taskId);
  } catch (error) {
    logger?.warn({ taskId, err: (error as Error).message }, "could not remove the validation container");
  }
  if (dir) await rm(dir, { recursive: true, force: true });
}
