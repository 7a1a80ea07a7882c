/**
 * The master as several instances behind a load balancer (`--redis-url`), sharing what correctness needs:
 *
 *   - used request nonces and rate-limit counters (shared/redis.ts): a request is accepted once, by any instance;
 *   - heartbeats (here): the last heartbeat of each node, with the task statuses it carried, in one Redis hash,
 *     so that every instance judges liveness (Healthy / Unhealthy / Dead) from the same facts;
 *   - the leader lease (shared/leader-lease.ts): only its holder invites, ejects, creates and expires on-chain
 *     tasks, i.e. sends transactions with the master key (one nonce sequence, one sender);
 *   - the buyer's task book and the task files stay in the leader's data dir: requests for them
 *     (`/tasks…`, `/ledger/…`, `GET /nodes`, which lists each node's tasks) are forwarded by the other
 *     instances to the leader, as they came (the signature covers method, path, query and body, not the
 *     host, so the leader verifies them itself and spends their nonce once).
 *
 * Each instance follows the chain itself for membership (its own SQLite index and cursor).
 */
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import https from "node:https";
import type { Logger } from "../shared/log.js";
import type { LeaderLease } from "../shared/leader-lease.js";
import type { SharedRedis } from "../shared/redis.js";
import { type ReportedTaskStatus, taskStatusSchema } from "./tasks.js";

/** A node's last heartbeat as every instance sees it. */
export interface SharedHeartbeat {
  /** When an instance accepted it (ms, that instance's clock). */
  at: number;
  /** `sentAt` as the node sent it. */
  sentAt: string;
}

/** Last heartbeats shared by the master's instances. */
export interface HeartbeatStore {
  /**
   * Records a heartbeat and the task statuses it carried, unless a later heartbeat of the node is there
   * already. Rejects when the store is unreachable.
   */
  record(node: string, heartbeat: SharedHeartbeat, tasks: ReportedTaskStatus[]): Promise<void>;
  /** Every node's last heartbeat (small records: read by every instance at every liveness check). */
  all(): Promise<Map<string, SharedHeartbeat>>;
  /** The task statuses carried by the last heartbeat of each of `nodes` (read by the leader, which holds the task book). */
  tasksOf(nodes: string[]): Promise<Map<string, ReportedTaskStatus[]>>;
}

const HEARTBEATS = "heartbeats";
const HEARTBEAT_TASKS = "heartbeat-tasks";

/**
 * Two Redis hashes, field = checksummed node address: `heartbeats` (`{ at, sentAt }`) and `heartbeat-tasks`
 * (the statuses), written together by one script that never lets an earlier heartbeat replace a later one.
 */
export class RedisHeartbeatStore implements HeartbeatStore {
  constructor(private readonly redis: SharedRedis) {}

  async record(node: string, heartbeat: SharedHeartbeat, tasks: ReportedTaskStatus[]): Promise<void> {
    const value = JSON.stringify({ at: heartbeat.at, sentAt: heartbeat.sentAt });
    await this.redis.client.cnHsetNewer(HEARTBEATS, HEARTBEAT_TASKS, node, heartbeat.at, value, JSON.stringify(tasks));
  }

  async all(): Promise<Map<string, SharedHeartbeat>> {
    const raw = await this.redis.client.hgetall(HEARTBEATS);
    const heartbeats = new Map<string, SharedHeartbeat>();
    for (const [node, text] of Object.entries(raw)) {
      try {
        const parsed = JSON.parse(text) as { at?: unknown; sentAt?: unknown };
        if (typeof parsed.at === "number") heartbeats.set(node, { at: parsed.at, sentAt: String(parsed.sentAt ?? "") });
      } catch {
        // not a record this version wrote: ignored
      }
    }
    return heartbeats;
  }

  async tasksOf(nodes: string[]): Promise<Map<string, ReportedTaskStatus[]>> {
    const tasks = new Map<string, ReportedTaskStatus[]>();
    if (nodes.length === 0) return tasks;
    const values = await this.redis.client.hmget(HEARTBEAT_TASKS, ...nodes);
    values.forEach((text, i) => {
      if (text === null) return;
      try {
        const parsed = taskStatusSchema.array().safeParse(JSON.parse(text));
        if (parsed.success) tasks.set(nodes[i], parsed.data);
      } catch {
        // not a record this version wrote: ignored
      }
    });
    return tasks;
  }
}

/**
 * The master's routes served by the leader only: the buyer's task book, its files, on-chain task specs, the
 * node list with tasks, and the dashboard (it shows the task book).
 */
export function isLeaderRoute(method: string, path: string): boolean {
  return /^\/(tasks|ledger|dashboard)(\/|$)/i.test(path) || (method === "GET" && /^\/nodes\/?$/i.test(path));
}

/** Set on a forwarded request: an instance never forwards a request twice (no loops while the lease moves). */
export const FORWARDED_HEADER = "x-cn-forwarded-by";
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "upgrade", "te", "trailer"]);

export interface LeaderForwarderOptions {
  lease: () => LeaderLease | undefined;
  logger: Logger;
  /** Longest wait for the leader's answer (default 60 s: uploads of large files go through). */
  timeoutMs?: number;
}

/**
 * A request handler placed in front of the app: returns true when it took the request (forwarded it to the
 * leader, or answered 503 because no leader is known), false when the app must handle it here.
 */
export function leaderForwarder(options: LeaderForwarderOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const refuse = (res: ServerResponse, status: number, error: string) => {
    res.writeHead(status, { "content-type": "application/json; charset=utf-8", "retry-after": "1" });
    res.end(JSON.stringify({ error }));
  };
  return (req, res) => {
    const lease = options.lease();
    if (!lease) return false;
    const path = (req.url ?? "/").split("?")[0];
    if (!isLeaderRoute(req.method ?? "GET", path) || lease.isLeader()) return false;
    const leader = lease.leader();
    if (req.headers[FORWARDED_HEADER] !== undefined) {
      refuse(res, 503, "this master instance is not the leader (the lease moved while the request was forwarded); send it again");
      return true;
    }
    if (!leader) {
      refuse(res, 503, "no master instance holds the leader lease right now (one takes over within the lease time); send it again");
      return true;
    }
    const target = new URL(req.url ?? "/", leader.url);
    const headers: http.OutgoingHttpHeaders = { [FORWARDED_HEADER]: lease.holder.id };
    for (const [name, value] of Object.entries(req.headers)) {
      if (!HOP_BY_HOP.has(name) && value !== undefined) headers[name] = value;
    }
    headers.host = target.host;
    const upstream = (target.protocol === "https:" ? https : http).request(
      target,
      { method: req.method, headers, timeout: options.timeoutMs ?? 60_000 },
      (answer) => {
        const back: http.OutgoingHttpHeaders = {};
        for (const [name, value] of Object.entries(answer.headers)) if (!HOP_BY_HOP.has(name) && value !== undefined) back[name] = value;
        res.writeHead(answer.statusCode ?? 502, back);
        answer.pipe(res);
      },
    );
    upstream.on("timeout", () => upstream.destroy(new Error("the leader did not answer in time")));
    upstream.on("error", (error) => {
      options.logger.warn({ leader: leader.id, leaderUrl: leader.url, path, err: error.message }, "request not forwarded to the leader");
      if (!res.headersSent) refuse(res, 503, `the leader instance did not answer (${error.message}); send it again`);
      else res.destroy(error);
    });
    req.pipe(upstream);
    options.logger.debug({ method: req.method, path, leader: leader.id, leaderUrl: leader.url }, "request forwarded to the leader");
    return true;
  };
}
