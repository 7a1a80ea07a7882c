/**
 * Seals in TaskLedger disputes. A node votes with the seal of its own re-execution,
 * `keccak256(abi.encode(resultHash))` (task-hash.ts `resultSeal`), never with a result hash: votes are public
 * before the Dispute phase ends, and a result hash in them would let lazy validators copy it.
 *
 * `executorSeal` is the executor's side of a dispute, from what `completeTask` put on chain (`taskOf`'s
 * `resultHash`, the `TaskCompleted` event). `completeTask` posts the seal itself (sealed results), so it is what
 * the chain holds, unchanged (like TaskLedger's `_executorSeal`).
 */

/** The executor's seal: the value its `completeTask` posted (already a seal), lower-cased. */
export function executorSeal(posted: string): string {
  return posted.toLowerCase();
}

/** Whether `seal` is the executor's (a vote for the task); case-insensitive. */
export function isExecutorSeal(seal: string, posted: string): boolean {
  return seal.toLowerCase() === executorSeal(posted);
}
