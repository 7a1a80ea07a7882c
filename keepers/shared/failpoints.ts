/**
 * Failpoints for the crash tests: a keeper started with `CN_FAILPOINTS` naming a point kills itself with
 * SIGKILL when it reaches that point, as a power cut or the OOM killer would, leaving its data dir, its
 * containers and the chain exactly as they were at that instant. Tests then restart it on the same data
 * dir and check that nothing was lost and nothing happened twice. An operator never sets it.
 *
 *   CN_FAILPOINTS=<entry>[,<entry>...]     entry = <point>[:<qualifier>][@<n>]
 *
 * `<point>` is one of FAILPOINTS below; `:<qualifier>` narrows it (a transaction's label, an event's
 * name, a task id), otherwise any qualifier matches; `@<n>` kills at the n-th hit of that entry
 * (default 1). Examples: `tx.afterSend:completeTask`, `miner.taskRunning`, `storage.midSync@2`,
 * `chain.afterEvent:TaskCompleted`.
 *
 * Unset (the normal case), `failpoint()` is one comparison with `undefined`.
 */
import { writeSync } from "node:fs";
import { flushLogs } from "./log.js";

/** Every point a keeper may be killed at, and where it is. */
export const FAILPOINTS = {
  /** tx.ts: a transaction (qualifier: its label) was handed to the node, its receipt not read yet. */
  "tx.afterSend": "a transaction was broadcast (and, for tracked ones, recorded); its receipt is not read yet",
  /** tx.ts, tracked transactions only: signed and recorded, not broadcast yet. */
  "tx.afterRecord": "a tracked transaction was signed and recorded but not broadcast",
  /** chain.ts: an event (qualifier: its name) was handled, the follower's cursor not moved past it yet. */
  "chain.afterEvent": "an event was handled; the event cursor was not saved past its block",
  /** miner docker-runtime.ts: a task's container (qualifier: the task id) has just started running. */
  "miner.taskRunning": "a task's container runs",
  /** miner sync.ts: one of a task's files (qualifier: the task id) reached the master, others may not have. */
  "storage.midSync": "a task's file was uploaded and recorded; the task's sync is not complete",
  /** master files.ts: an uploaded file's bytes are in a temporary file (qualifier: the task id), not renamed to its hash. */
  "storage.beforeRename": "an uploaded blob is written to its temporary file but not renamed into place",
} as const;

export type FailpointName = keyof typeof FAILPOINTS;

interface Entry {
  point: string;
  qualifier: string | undefined;
  /** Kill at this hit. */
  at: number;
  hits: number;
}

/** Parses CN_FAILPOINTS; throws on an entry naming no known point (a typo would silently test nothing). */
export function parseFailpoints(text: string | undefined): Entry[] | undefined {
  if (text === undefined || text.trim() === "") return undefined;
  return text.split(",").map((raw) => {
    const match = /^([a-zA-Z]+\.[a-zA-Z]+)(?::([^@]+))?(?:@([1-9][0-9]*))?$/.exec(raw.trim());
    if (!match) throw new Error(`CN_FAILPOINTS: "${raw}" is not <point>[:<qualifier>][@<n>]`);
    if (!(match[1] in FAILPOINTS)) throw new Error(`CN_FAILPOINTS: unknown point "${match[1]}" (known: ${Object.keys(FAILPOINTS).join(", ")})`);
    return { point: match[1], qualifier: match[2], at: match[3] === undefined ? 1 : Number(match[3]), hits: 0 };
  });
}

let entries = parseFailpoints(process.env.CN_FAILPOINTS);

/** Re-reads the points from `text` (tests of this module). */
export function setFailpoints(text: string | undefined): void {
  entries = parseFailpoints(text);
}

/**
 * Kills this process with SIGKILL when `CN_FAILPOINTS` names `point` (with this qualifier, or none) and
 * this is the hit it asks for. Says so on stderr first, synchronously, so that the test can tell which
 * point fired. The log lines of the current turn are written out first too (`flushLogs`): the kill stands
 * for a crash of the process' state, and the tests read the logs to tell what it did before.
 */
export function failpoint(point: FailpointName, qualifier?: string): void {
  if (entries === undefined) return;
  for (const entry of entries) {
    if (entry.point !== point || (entry.qualifier !== undefined && entry.qualifier !== qualifier)) continue;
    entry.hits++;
    if (entry.hits !== entry.at) continue;
    const name = qualifier === undefined ? point : `${point}:${qualifier}`;
    try {
      flushLogs();
      writeSync(2, `failpoint ${name} reached (hit ${entry.hits}): SIGKILL pid ${process.pid}\n`);
    } catch {
      // stderr closed: die anyway
    }
    process.kill(process.pid, "SIGKILL");
  }
}
