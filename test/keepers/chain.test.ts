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
import { type Chain, type ChainEvent, EventFollower, connectChain, contractInterfaces, headBlock } from "../../keepers/shared/chain.js";
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
