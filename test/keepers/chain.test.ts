/**
 * The keepers' chain layer against a real `hardhat node` over JSON-RPC: event follower with a persisted
 * cursor (restart resumes, nothing missed or repeated, failed handlers retried) and the transaction
 * sender (ordered nonces, decoded custom-error reverts).
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import { Wallet } from "ethers";
import { createServer as createHttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { type Chain, type ChainEvent, EventFollower, connectChain, contractInterfaces, headBlock, isLogRangeRefusal } from "../../keepers/shared/chain.js";
import { createLogger } from "../../keepers/shared/log.js";
import { KeeperStore } from "../../keepers/shared/store.js";
import { TxRevertedError, TxSender } from "../../keepers/shared/tx.js";
import { devPrivateKey } from "../../scripts/lib/dev-accounts.js";
import { removeLocalJournal } from "../../scripts/lib/deployments.js";
import { ROOT, freePort, type HardhatNode, runHardhat, startHardhatNode } from "../../scripts/lib/processes.js";

const silent = createLogger({ component: "test", level: "silent" });

describe("keeper chain layer (real hardhat node)", function () {
  this.timeout(180_000);
  let node: HardhatNode;
  let dir: string;
  let deploymentFile: string;
  let chain: Chain;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "cn-chain-"));
    node = await startHardhatNode(await freePort(), path.join(dir, "node.log"));
    await runHardhat(["run", "scripts/deploy.ts", "--network", "localhost"], {
      LOCALHOST_RPC_URL: node.url,
      COMPUTENET_DEPLOYMENTS_ROOT: dir,
    });
    deploymentFile = path.join(dir, "deployments", "localhost.json");
    chain = await connectChain({ rpcUrl: node.url, deploymentFile, privateKey: devPrivateKey(0) });
  });

  after(async () => {
    chain?.provider.destroy();
    await node?.stop();
    if (chain) await removeLocalJournal(ROOT, chain.deployment.deploymentId);
    await rm(dir, { recursive: true, force: true });
  });

  const runParams = (master: string) => ({
    master,
    pricePerUnit: 1n,
    maxMembers: 2,
    budget: 0n,
    discoveryURI: "http://127.0.0.1:1",
    requirements: { minGpuCount: 0, minGpuMemoryMB: 0, minCpuCores: 0, minRamMB: 0, minStorageGB: 0, allowedGpuModels: [] },
  });

  describe("connectChain", () => {
    it("refuses a deployment file of another chain, naming both chain ids", async () => {
      const other = path.join(dir, "other.json");
      const deployment = JSON.parse(await readFile(deploymentFile, "utf8"));
      await writeFile(other, JSON.stringify({ ...deployment, chainId: 421614 }));
      const error = await connectChain({ rpcUrl: node.url, deploymentFile: other }).then(() => undefined, (e: Error) => e);
      expect(error?.message).to.equal(`chain id mismatch: ${node.url} is chain 31337, ${other} is for chain 421614`);
    });

    it("says which RPC URL it cannot reach", async () => {
      const url = `http://127.0.0.1:${await freePort()}`;
      const error = await connectChain({ rpcUrl: url, deploymentFile }).then(() => undefined, (e: Error) => e);
      expect(error?.message).to.match(new RegExp(`^cannot reach the RPC node at ${url.replace(/\./g, "\\.")}`));
    });
  });

  describe("EventFollower", () => {
    it("delivers every event in block and log order, persists its cursor, and resumes after a restart", async () => {
      const store = new KeeperStore(path.join(dir, "follower.sqlite"));
      const seen: ChainEvent[] = [];
      const follower = () =>
        new EventFollower({ chain, store, name: "test", logger: silent, handle: async (e) => void seen.push(e) });

      const first = follower();
      await first.poll();
      const deployEvents = seen.map((e) => `${e.contract}.${e.name}`);
      expect(deployEvents).to.include("MinerRegistry.TrainingRunsSet");
      expect(deployEvents).to.include("ChallengeBoard.RequiredApprovalsUpdated");

      const runs = chain.contracts.trainingRuns;
      await (await runs.createRun(runParams(Wallet.createRandom().address))).wait();
      const last = (await (await runs.createRun(runParams(Wallet.createRandom().address))).wait())!.blockNumber;
      const handled = await first.poll();
      expect(handled).to.equal(2);
      const created = seen.filter((e) => e.name === "RunCreated").map((e) => e.args.runId as bigint);
      expect(created).to.deep.equal([1n, 2n]);
      // The node also mines a block every second: the head may have moved on since the poll.
      const head = await headBlock(chain.provider);
      expect(first.cursor >= last && first.cursor <= head, `cursor ${first.cursor} in [${last}, ${head}]`).to.equal(true);
      expect(store.cursor("test")).to.deep.equal({ block: first.cursor });

      // "Restart": a new follower on the same store sees only what happened since.
      first.stop();
      seen.length = 0;
      await (await runs.createRun(runParams(Wallet.createRandom().address))).wait();
      const second = follower();
      await second.poll();
      expect(seen.map((e) => `${e.name}:${e.args.runId}`)).to.deep.equal(["RunCreated:3"]);
      store.close();
    });

    it("redelivers the events of a block whose handler failed, and only advances past handled blocks", async () => {
      const store = new KeeperStore(path.join(dir, "retry.sqlite"));
      const start = await headBlock(chain.provider);
      store.setCursor("retry", { block: start });
      await (await chain.contracts.trainingRuns.createRun(runParams(Wallet.createRandom().address))).wait();
      let failOnce = true;
      const delivered: string[] = [];
      const follower = new EventFollower({
        chain,
        store,
        name: "retry",
        logger: silent,
        handle: async (e) => {
          if (failOnce) {
            failOnce = false;
            throw new Error("handler crashed");
          }
          delivered.push(`${e.name}:${e.args.runId}`);
        },
      });
      expect(await follower.poll()).to.equal(0);
      expect(follower.cursor).to.equal(start);
      expect(await follower.poll()).to.equal(1);
      expect(delivered).to.deep.equal(["RunCreated:4"]);
      expect(follower.cursor > start && follower.cursor <= (await headBlock(chain.provider))).to.equal(true);
      expect(store.cursor("retry")).to.deep.equal({ block: follower.cursor });
      store.close();
    });

    /**
     * A JSON-RPC proxy in front of the hardhat node that refuses some eth_getLogs requests the way hosted
     * providers do (a stand-in for a provider's limits: Arbitrum's providers cannot be reached here). It
     * forwards everything else, and records the block range of every eth_getLogs it saw.
     */
    async function getLogsProxy(refuse: (blocks: number) => { code: number; message: string } | undefined) {
      const asked: Array<{ blocks: number; refused: boolean }> = [];
      const forward = async (request: { id: unknown; method: string; params: unknown[] }) => {
        if (request.method === "eth_getLogs") {
          const { fromBlock, toBlock } = request.params[0] as { fromBlock: string; toBlock: string };
          const blocks = Number(BigInt(toBlock) - BigInt(fromBlock)) + 1;
          const error = refuse(blocks);
          asked.push({ blocks, refused: error !== undefined });
          if (error) return { jsonrpc: "2.0", id: request.id, error };
        }
        const answer = await fetch(node.url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(request) });
        return answer.json();
      };
      const server = createHttpServer(async (req, res) => {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        const answer = Array.isArray(body) ? await Promise.all(body.map(forward)) : await forward(body);
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(answer));
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const proxied = await connectChain({ rpcUrl: url, deploymentFile });
      return {
        chain: proxied,
        asked,
        close: async () => {
          proxied.provider.destroy();
          server.closeAllConnections();
          await new Promise((resolve) => server.close(resolve));
        },
      };
    }

    function capture() {
      const lines: Array<{ level: string; msg: string; refused?: number; range?: number; behind?: number; blocks?: number }> = [];
      const logger = createLogger({ component: "test", level: "debug", destination: { write: (line: string) => void lines.push(JSON.parse(line)) } });
      return { lines, logger };
    }

    it("asks for fewer blocks at a time when the RPC node refuses a range as too large, and still delivers every event in order", async () => {
      const runs = chain.contracts.trainingRuns;
      for (let i = 0; i < 4; i++) await (await runs.createRun(runParams(Wallet.createRandom().address))).wait();
      await chain.provider.send("hardhat_mine", ["0x40"]); // 64 empty blocks: enough requests for the range to grow back
      // At most 5 blocks per request, refused the way Infura and geth refuse too many logs.
      const proxy = await getLogsProxy((blocks) => (blocks > 5 ? { code: -32005, message: "query returned more than 10000 results" } : undefined));
      const { lines, logger } = capture();
      const store = new KeeperStore(":memory:");
      const reference = new KeeperStore(":memory:");
      try {
        const seen: string[] = [];
        const follower = new EventFollower({ chain: proxy.chain, store, name: "ranged", logger, handle: async (e) => void seen.push(`${e.blockNumber}:${e.logIndex}:${e.name}`), maxRange: 64 });
        await follower.poll();
        const expected: string[] = [];
        await new EventFollower({ chain, store: reference, name: "all", logger: silent, handle: async (e) => void expected.push(`${e.blockNumber}:${e.logIndex}:${e.name}`), maxRange: 100_000 }).poll();
        const upTo = (list: string[]) => list.filter((e) => Number(e.split(":")[0]) <= follower.cursor);
        expect(upTo(seen)).to.deep.equal(upTo(expected));
        expect(seen.filter((e) => e.endsWith(":RunCreated")).length).to.be.at.least(4);
        expect(follower.cursor).to.be.at.least(chain.deployment.startBlock + 64);

        const accepted = proxy.asked.filter((a) => !a.refused).map((a) => a.blocks);
        const refused = proxy.asked.filter((a) => a.refused).map((a) => a.blocks);
        expect(Math.max(...accepted)).to.be.at.most(5);
        // 64 → 32 → 16 → 8 → 4 at first; then, after 8 requests in a row that succeed, one try at 8 now and then.
        expect(refused.slice(0, 4)).to.deep.equal([64, 32, 16, 8]);
        expect(refused.slice(4).every((blocks) => blocks === 8), `refused: ${refused}`).to.equal(true);
        expect(refused.length, "the range grew back and was tried again").to.be.greaterThan(4);
        expect(refused.length).to.be.at.most(4 + Math.ceil(accepted.length / 8));
        // Said once per refused size (warn), repeats at debug.
        const warned = lines.filter((l) => l.level === "warn").map((l) => l.refused);
        expect(warned).to.deep.equal([64, 32, 16, 8]);
        expect(lines.find((l) => l.refused === 64)!.msg).to.equal("event follower: the RPC node refused the logs of 64 blocks at once; asking for 32 at a time");
      } finally {
        store.close();
        reference.close();
        await proxy.close();
      }
    });

    it("does not shrink the range for failures that are not about it: the poll fails and backs off", async () => {
      const proxy = await getLogsProxy(() => ({ code: -32000, message: "header not found" }));
      const store = new KeeperStore(":memory:");
      try {
        const follower = new EventFollower({ chain: proxy.chain, store, name: "failing", logger: silent, handle: async () => {}, maxRange: 64, pollMs: 100 });
        const before = follower.cursor;
        expect(await follower.poll()).to.equal(0);
        // One request of more than one block (a smaller one could have been tried), and no second one.
        expect(proxy.asked).to.have.length(1);
        expect(proxy.asked[0].blocks).to.be.within(2, 64);
        expect(follower.cursor).to.equal(before);
        expect(follower.nextPollDelayMs).to.equal(200);
      } finally {
        store.close();
        await proxy.close();
      }
    });

    it("says how far it is while catching up, and when it caught up", async () => {
      const proxy = await getLogsProxy(() => undefined);
      const { lines, logger } = capture();
      const store = new KeeperStore(":memory:");
      try {
        const follower = new EventFollower({ chain: proxy.chain, store, name: "progress", logger, handle: async () => {}, maxRange: 10, progressMs: 0 });
        await follower.poll();
        const progress = lines.filter((l) => l.msg === "event follower: catching up");
        expect(progress.length).to.be.at.least(2);
        const behind = progress.map((l) => l.behind!);
        expect([...behind].sort((a, b) => b - a), "the distance to the head shrinks").to.deep.equal(behind);
        const done = lines.filter((l) => l.msg === "event follower: caught up");
        expect(done).to.have.length(1);
        expect(done[0].blocks).to.equal(follower.cursor - chain.deployment.startBlock + 1);
        expect(() => new EventFollower({ chain, store, name: "x", logger: silent, handle: async () => {}, maxRange: 0 })).to.throw(
          "event follower x: maxRange must be a positive integer, got 0",
        );
      } finally {
        store.close();
        await proxy.close();
      }
    });

    it("tells range refusals from other failures (isLogRangeRefusal)", () => {
      const refusals = [
        "query returned more than 10000 results",
        "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no limit on the response size, or you can request any block range with a cap of 10K logs in the response.",
        "eth_getLogs is limited to a 10,000 range",
        "block range is too wide",
        "exceed maximum block range: 5000",
        "block range too large",
        "too many blocks requested",
      ];
      for (const message of refusals) {
        expect(isLogRangeRefusal(new Error(message)), message).to.equal(true);
        // As ethers wraps a JSON-RPC error it cannot name.
        expect(isLogRangeRefusal({ message: "could not coalesce error", error: { code: -32005, message } }), message).to.equal(true);
      }
      const others = ["header not found", "connect ECONNREFUSED 127.0.0.1:8545", "Too many requests, exceeded the rate limit", "Your app has exceeded its compute units per second capacity", "request timeout", ""];
      for (const message of others) expect(isLogRangeRefusal(new Error(message)), message).to.equal(false);
      expect(isLogRangeRefusal(undefined)).to.equal(false);
      expect(isLogRangeRefusal("block range too large")).to.equal(true);
    });

    it("waitFor resolves once the block is handled by the running loop", async () => {
      const store = new KeeperStore(":memory:");
      const follower = new EventFollower({ chain, store, name: "wait", logger: silent, handle: async () => {}, pollMs: 50 });
      follower.start();
      const receipt = await (await chain.contracts.trainingRuns.createRun(runParams(Wallet.createRandom().address))).wait();
      await follower.waitFor(receipt!.blockNumber);
      expect(follower.cursor).to.be.at.least(receipt!.blockNumber);
      follower.stop();
      store.close();
    });
  });

  describe("TxSender", () => {
    it("sends concurrent transactions one after the other with consecutive nonces", async () => {
      const keyed = await connectChain({ rpcUrl: node.url, deploymentFile, privateKey: devPrivateKey(1) });
      const sender = new TxSender({ logger: silent, interfaces: contractInterfaces(), signer: keyed.signer as never });
      const before = await keyed.provider.getTransactionCount(keyed.wallet!.address);
      const receipts = await Promise.all(
        [0, 1, 2, 3, 4].map((i) =>
          sender.send("createRun", () => keyed.contracts.trainingRuns.createRun(runParams(Wallet.createRandom().address)), { i }),
        ),
      );
      const nonces = await Promise.all(receipts.map(async (r) => (await keyed.provider.getTransaction(r.hash))!.nonce));
      expect(nonces).to.deep.equal([before, before + 1, before + 2, before + 3, before + 4]);
      expect(sender.sent).to.equal(5);
      keyed.provider.destroy();
    });

    it("never sends a transaction again once it has a hash: a failure while waiting for the receipt is retried by waiting", async () => {
      const keyed = await connectChain({ rpcUrl: node.url, deploymentFile, privateKey: devPrivateKey(3) });
      const sender = new TxSender({ logger: silent, interfaces: contractInterfaces(), signer: keyed.signer as never, retryDelayMs: 10 });
      const runs = keyed.contracts.trainingRuns;
      const before = await runs.runCount();
      let builds = 0;
      const receipt = await sender.send("createRun", async () => {
        builds++;
        const tx = await runs.createRun(runParams(Wallet.createRandom().address));
        const wait = tx.wait.bind(tx);
        let failed = false;
        tx.wait = async (confirms?: number) => {
          if (!failed) {
            failed = true;
            throw new Error("fetch failed"); // the RPC connection dropped after the broadcast
          }
          return wait(confirms);
        };
        return tx;
      });
      expect(builds).to.equal(1);
      expect(await runs.runCount()).to.equal(before + 1n);
      expect(receipt.status).to.equal(1);
      keyed.provider.destroy();
    });

    it("decodes a revert into the contract's custom error with its arguments and does not retry it", async () => {
      const keyed = await connectChain({ rpcUrl: node.url, deploymentFile, privateKey: devPrivateKey(2) });
      const sender = new TxSender({ logger: silent, interfaces: contractInterfaces(), signer: keyed.signer as never });
      const nonceBefore = await keyed.provider.getTransactionCount(keyed.wallet!.address);
      const error = await sender
        .send("startRun", () => keyed.contracts.trainingRuns.startRun(999n))
        .then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(TxRevertedError);
      const reverted = error as TxRevertedError;
      expect(reverted.errorName).to.equal("TrainingRunsUnknownRun");
      expect(reverted.errorArgs).to.deep.equal({ runId: "999" });
      expect(reverted.message).to.equal("startRun reverted: TrainingRunsUnknownRun(runId=999)");
      expect(sender.failed).to.equal(1);
      // Refused at estimation: nothing was sent, no nonce consumed.
      expect(await keyed.provider.getTransactionCount(keyed.wallet!.address)).to.equal(nonceBefore);
      // The sender still works afterwards.
      await sender.send("createRun", () => keyed.contracts.trainingRuns.createRun(runParams(Wallet.createRandom().address)));
      keyed.provider.destroy();
    });
  });
});
