/**
 * Where discovery keeps what nodes uploaded (their endpoints), behind one interface:
 *
 *   - SQLite (the default): the table next to the chain-derived index, joined with it in SQL;
 *   - Redis (`--redis-url`): one hash shared by every discovery instance behind a load balancer, so an
 *     endpoint uploaded through one instance is served by all. The lists (`pending`, `runNodes`) take their
 *     candidates from the instance's own chain-derived index and read their endpoints from the hash.
 *
 * The chain-derived index (nodes, challenges, validators, runs, participations) stays per instance: each
 * instance follows the chain itself (state.ts), and access.ts re-checks every denial at the chain's head, so
 * an instance a block behind another never refuses what the other allows.
 */
import type { SharedRedis } from "../shared/redis.js";
import type { KeeperStore } from "../shared/store.js";
import type { DiscoveryIndex, EndpointRecord, RunNodeRecord } from "./state.js";

export interface EndpointStore {
  readonly kind: "sqlite" | "redis";
  /** Stores the node's endpoint; resolves with the record and the endpoint it replaced (undefined: none). */
  set(node: string, endpoint: string, updatedAt: string): Promise<{ record: EndpointRecord; previous: string | undefined }>;
  get(node: string): Promise<EndpointRecord | undefined>;
  count(): Promise<number>;
  /** Registered nodes with an endpoint whose current declaration is undecided; oldest endpoint first, at most `limit`. */
  pending(limit: number): Promise<EndpointRecord[]>;
  /** The run's Registered and Member nodes that have an endpoint, by address, at most `limit`. */
  runNodes(runId: string, limit: number): Promise<RunNodeRecord[]>;
}

/**
 * Endpoints in the keeper's SQLite file (one instance). An upload is written in the store's group commit
 * (with the nonces of the same turn of the event loop) and answered once committed.
 */
export class SqliteEndpointStore implements EndpointStore {
  readonly kind = "sqlite";

  constructor(
    private readonly index: DiscoveryIndex,
    private readonly store: Pick<KeeperStore, "writeSoon">,
  ) {}

  set(node: string, endpoint: string, updatedAt: string): Promise<{ record: EndpointRecord; previous: string | undefined }> {
    // The read of the previous endpoint shares the group commit's transaction (no lock round of its own).
    return this.store.writeSoon(() => {
      const previous = this.index.endpoint(node)?.endpoint;
      return { record: this.index.setEndpoint(node, endpoint, updatedAt), previous };
    });
  }

  async get(node: string): Promise<EndpointRecord | undefined> {
    return this.index.endpoint(node);
  }

  async count(): Promise<number> {
    return this.index.endpointCount();
  }

  async pending(limit: number): Promise<EndpointRecord[]> {
    return this.index.pending(limit);
  }

  async runNodes(runId: string, limit: number): Promise<RunNodeRecord[]> {
    return this.index.runNodes(runId, limit);
  }
}

/** HMGET batch size: one round trip per this many nodes. */
const BATCH = 500;
const HASH = "endpoints";

/** Endpoints in one Redis hash (field: checksummed node address; value: `{ endpoint, updatedAt }`). */
export class RedisEndpointStore implements EndpointStore {
  readonly kind = "redis";

  constructor(
    private readonly redis: SharedRedis,
    private readonly index: DiscoveryIndex,
  ) {}

  async set(node: string, endpoint: string, updatedAt: string): Promise<{ record: EndpointRecord; previous: string | undefined }> {
    // One round trip: the script swaps the value and answers the one it replaced.
    const replaced = await this.redis.client.cnHsetSwap(HASH, node, JSON.stringify({ endpoint, updatedAt }));
    const previous = replaced === null ? undefined : (JSON.parse(replaced) as { endpoint: string }).endpoint;
    return { record: { node, endpoint, updatedAt }, previous };
  }

  async get(node: string): Promise<EndpointRecord | undefined> {
    return (await this.many([node]))[0];
  }

  count(): Promise<number> {
    return this.redis.client.hlen(HASH);
  }

  async pending(limit: number): Promise<EndpointRecord[]> {
    const records = await this.many(this.index.undecidedNodes());
    records.sort((a, b) => (a.updatedAt === b.updatedAt ? (a.node < b.node ? -1 : 1) : a.updatedAt < b.updatedAt ? -1 : 1));
    return records.slice(0, limit);
  }

  async runNodes(runId: string, limit: number): Promise<RunNodeRecord[]> {
    const participants = this.index.runParticipants(runId);
    const records = await this.many(participants.map((p) => p.node));
    const participation = new Map(participants.map((p) => [p.node, p.participation]));
    return records.slice(0, limit).map((r) => ({ node: r.node, participation: participation.get(r.node)!, endpoint: r.endpoint, updatedAt: r.updatedAt }));
  }

  /** The records of `nodes` that have one, in the order given. */
  private async many(nodes: string[]): Promise<EndpointRecord[]> {
    const records: EndpointRecord[] = [];
    for (let i = 0; i < nodes.length; i += BATCH) {
      const batch = nodes.slice(i, i + BATCH);
      const values = await this.redis.client.hmget(HASH, ...batch);
      values.forEach((value, j) => {
        if (value === null) return;
        const { endpoint, updatedAt } = JSON.parse(value) as { endpoint: string; updatedAt: string };
        records.push({ node: batch[j], endpoint, updatedAt });
      });
    }
    return records;
  }
}
