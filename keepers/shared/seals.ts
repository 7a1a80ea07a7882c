/**
 * Seals in TaskLedger disputes. A node votes with the seal of its own re-execution,
 * `keccak256(abi.encode(resultHash))` (task-hash.ts `resultSeal`), never with a result hash: votes are public
 * before the Dispute phase ends, and a result hash in them would let lazy validators copy it.
 *
 * `executorSeal` is the executor's side of a dispute, from what `completeTask` put on chain (`taskOf`'s
 * `resultHash`, the `TaskCompleted` event). While the chain holds the executor's raw result hash that is its
 * seal; once completeTask posts the seal itself (sealed results), it is what the chain holds, unchanged. This
 * is the one keeper line that changes then, like TaskLedger's `_executorSeal`.
 */
import { resultSeal } from "./task-hash.js";

/** The executor's seal, from the result hash its `completeTask` posted. */
export function executorSeal(posted: string): string {
  return resultSeal(posted).toLowerCase();
}

/** Whether `seal` is the executor's (a vote for the task); case-insensitive. */
export function isExecutorSeal(seal: string, posted: string): boolean {
  return seal.toLowerCase() === executorSeal(posted);
}
