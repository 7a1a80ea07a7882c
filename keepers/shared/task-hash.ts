/**
 * The hashes a task leaves on chain (TaskLedger): `specHash` of what the master asked for, the `resultSeal`
 * of what the executor produced (`resultHash`, which stays off chain until a false validation is reported),
 * and the `validationEvidence` a validator that reproduced the result posts with a successful validation. Both hash the UTF-8 bytes of a canonical JSON text, so that any keeper (the
 * master, the assignee, a validator re-executing the task) gets the same bytes from the same value
 * whatever the order in which its fields were built or parsed.
 *
 * Canonical JSON: see canonical-json.ts (bigints refused here: a spec or result carries none).
 */
import { AbiCoder, keccak256, toUtf8Bytes } from "ethers";
import { canonicalJson } from "./canonical-json.js";

export { canonicalJson } from "./canonical-json.js";


/** keccak256 of the canonical JSON text's UTF-8 bytes. */
export function canonicalHash(value: unknown): string {
  return keccak256(toUtf8Bytes(canonicalJson(value)));
}

/**
 * The spec hash the master puts on chain with `createTask`: the task's specification without the ids that
 * name it (the master's `taskId`, which a re-execution replaces with its own, and the `ledgerTaskId` the
 * chain gives it after the hash is known).
 */
export function specHash(spec: object): string {
  const { taskId: _taskId, ledgerTaskId: _ledgerTaskId, ...rest } = spec as Record<string, unknown>;
  return canonicalHash(rest);
}

/** A file of a task's result: its path relative to the task's storage folder, and its SHA-256 (hex). */
export interface ResultFile {
  name: string;
  sha256: string;
}

/** What a task produced: its exit code (null when it never exited) and the files of its storage folder. */
export interface TaskResult {
  exitCode: number | null;
  files: ResultFile[];
}

/**
 * The result hash the assignee reports with `completeTask`: the exit code and the storage folder's files
 * (name and SHA-256 only, sorted by name; other fields are ignored). Two files with one name are refused.
 */
export function resultHash(result: TaskResult): string {
  const files = result.files
    .map((file) => ({ name: file.name, sha256: file.sha256 }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (let i = 1; i < files.length; i++) {
    if (files[i].name === files[i - 1].name) throw new TypeError(`resultHash: the file ${JSON.stringify(files[i].name)} is listed twice`);
  }
  return canonicalHash({ exitCode: result.exitCode ?? null, files });
}

const abi = AbiCoder.defaultAbiCoder();

/**
 * What the executor posts with `completeTask`: `keccak256(abi.encode(resultHash))`. The chain never holds the
 * result hash itself until the Dispute phase is over, so a validator must re-execute the task to learn it.
 */
export function resultSeal(resultHash: string): string {
  return keccak256(abi.encode(["bytes32"], [resultHash]));
}

/**
 * The evidence of a successful validation: `keccak256(abi.encode(resultHash, validator))`, which only a node
 * that knows the result hash can compute (TaskLedger.refuteFalseValidation slashes any other).
 */
export function validationEvidence(resultHash: string, validator: string): string {
  return keccak256(abi.encode(["bytes32", "address"], [resultHash, validator]));
}
