/**
 * The discovery index's answers to "is this node registered?" and "is this a validator?", which every
 * signed request asks: kept in memory, they must follow the chain's events as SQLite does, and never hold a
 * write that rolled back.
 */
import { expect } from "chai";
import { Wallet } from "ethers";
import { DiscoveryIndex } from "../../keepers/discovery/state.js";
import type { ChainEvent } from "../../keepers/shared/chain.js";
import { KeeperStore } from "../../keepers/shared/store.js";

const ROLE = `0x${"21".repeat(32)}`;
let logIndex = 0;

function event(contract: ChainEvent["contract"], name: string, args: Record<string, unknown>): ChainEvent {
  return { contract, name, args: args as unknown as ChainEvent["args"], blockNumber: 1, logIndex: logIndex++, transactionHash: `0x${"00".repeat(32)}` };
}

describe("discovery index: registered nodes and validators", () => {
  let store: KeeperStore;
  let index: DiscoveryIndex;
  const node = Wallet.createRandom().address;
  const validator = Wallet.createRandom().address;
  const registered = (address: string) => event("MinerRegistry", "NodeRegistered", { node: address, provider: address, capsId: 1n });

  beforeEach(() => {
    store = new KeeperStore(":memory:");
    index = new DiscoveryIndex(store.db, ROLE);
  });
  afterEach(() => store.close());

  it("answers as the tables do after each registration, deregistration, grant and revocation", () => {
    // Asked first, so that the answers are remembered before the events change them.
    expect(index.isRegistered(node)).to.equal(false);
    expect(index.isValidator(validator)).to.equal(false);
    index.apply(registered(node));
    index.apply(event("ChallengeBoard", "RoleGranted", { role: ROLE, account: validator, sender: validator }));
    expect(index.isRegistered(node)).to.equal(true);
    expect(index.isValidator(validator)).to.equal(true);
    expect(index.isValidator(node), "another role's holder is not a validator").to.equal(false);
    index.apply(event("ChallengeBoard", "RoleGranted", { role: `0x${"33".repeat(32)}`, account: node, sender: node }));
    expect(index.isValidator(node)).to.equal(false);
    index.apply(event("MinerRegistry", "NodeDeregistered", { node }));
    index.apply(event("ChallengeBoard", "RoleRevoked", { role: ROLE, account: validator, sender: validator }));
    expect(index.isRegistered(node)).to.equal(false);
    expect(index.isValidator(validator)).to.equal(false);
  });

  it("never answers from a write that rolled back, even one it saw inside the transaction", () => {
    const other = Wallet.createRandom().address;
    index.apply(registered(node));
    expect(index.isRegistered(node)).to.equal(true);
    expect(() =>
      store.db.transaction(() => {
        index.apply(registered(other));
        index.apply(event("ChallengeBoard", "RoleGranted", { role: ROLE, account: validator, sender: validator }));
        index.apply(event("MinerRegistry", "NodeDeregistered", { node }));
        // Inside the transaction the index sees its own writes (as SQLite does)...
        expect(index.isRegistered(other)).to.equal(true);
        expect(index.isValidator(validator)).to.equal(true);
        expect(index.isRegistered(node)).to.equal(false);
        throw new Error("follower failed mid-batch");
      })(),
    ).to.throw("follower failed mid-batch");
    // ...and after the rollback none of them.
    expect(index.isRegistered(other)).to.equal(false);
    expect(index.isValidator(validator)).to.equal(false);
    expect(index.isRegistered(node)).to.equal(true);
  });
});

describe("discovery index: the pending list", () => {
  it("lists registered nodes with an endpoint and no decided round, oldest endpoint first (ties by address), at most the limit", () => {
    const store = new KeeperStore(":memory:");
    try {
      // A file from before: it had an index on updated_at, which opening drops.
      store.db.exec(`CREATE TABLE discovery_endpoints (node TEXT PRIMARY KEY, endpoint TEXT NOT NULL, updated_at TEXT NOT NULL) WITHOUT ROWID;
        CREATE INDEX discovery_endpoints_updated ON discovery_endpoints (updated_at);`);
      const index = new DiscoveryIndex(store.db, ROLE);
      const indexes = store.db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'discovery_endpoints'").all() as Array<{ name: string }>;
      expect(indexes.map((i) => i.name).filter((name) => !name.startsWith("sqlite_autoindex"))).to.deep.equal([]);

      const [a, b, c, validated, unregistered] = Array.from({ length: 5 }, () => Wallet.createRandom().address);
      for (const node of [a, b, c, validated]) index.apply(event("MinerRegistry", "NodeRegistered", { node, provider: node, capsId: 1n }));
      index.apply(event("ChallengeBoard", "ChallengeRoundStarted", { node: validated, capsId: 1n, round: 1n }));
      index.apply(event("ChallengeBoard", "NodeValidated", { node: validated, capsId: 1n, round: 1n }));
      index.apply(event("ChallengeBoard", "ChallengeRoundStarted", { node: c, capsId: 1n, round: 1n }));
      const [first, second] = [a, b].sort();
      index.setEndpoint(c, "http://c:1", "2026-01-03T00:00:00.000Z");
      index.setEndpoint(second, "http://s:1", "2026-01-01T00:00:00.000Z");
      index.setEndpoint(first, "http://f:1", "2026-01-01T00:00:00.000Z");
      index.setEndpoint(validated, "http://v:1", "2025-12-01T00:00:00.000Z");
      index.setEndpoint(unregistered, "http://u:1", "2025-12-01T00:00:00.000Z");
      expect(index.pending(10).map((r) => r.node)).to.deep.equal([first, second, c]);
      expect(index.pending(2).map((r) => r.node)).to.deep.equal([first, second]);
      // A new upload moves the node to the end.
      index.setEndpoint(first, "http://f:2", "2026-01-04T00:00:00.000Z");
      expect(index.pending(10).map((r) => [r.node, r.endpoint])).to.deep.equal([
        [second, "http://s:1"],
        [c, "http://c:1"],
        [first, "http://f:2"],
      ]);
    } finally {
      store.close();
    }
  });
});
