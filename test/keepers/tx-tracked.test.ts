/**
 * Tracked transactions (keepers/shared/tx.ts: sendTracked / resumeTracked), used where one action must
 * never become two transactions (the master's createTask), against a real `hardhat node` with a
 * ComputeToken deployed from its artifact: the transaction is recorded before it leaves the process, only
 * those bytes are ever broadcast, and a restart finishes it — mined, broadcast again, or known impossible.
 */
import os from "node:os";
import path from "node:path";
import { mkdtempSync, rmSync } from "node:fs";
import { expect } from "chai";
import { JsonRpcProvider, NonceManager, Wallet, parseUnits } from "ethers";
import { contractInterfaces } from "../../keepers/shared/chain.js";
import { createLogger } from "../../keepers/shared/log.js";
import { type SignedTx, TxRevertedError, TxSender } from "../../keepers/shared/tx.js";
import { devPrivateKey } from "../../scripts/lib/dev-accounts.js";
import { type HardhatNode, freePort, rpc, startHardhatNode } from "../../scripts/lib/processes.js";
import { type ComputeToken, ComputeToken__factory } from "../../typechain-types/index.js";

describe("tracked transactions (real hardhat node)", function () {
  this.timeout(120_000);
  let dir: string;
  let node: HardhatNode;
  let provider: JsonRpcProvider;
  let admin: Wallet;
  let token: ComputeToken;
  const recipient = new Wallet(devPrivateKey(7)).address;
  const silent = createLogger({ component: "test", level: "silent" });

  /** A sender for the admin key, as a keeper makes one (NonceManager over the wallet). */
  const sender = () => {
    const signer = new NonceManager(admin);
    return { signer, tx: new TxSender({ logger: silent, interfaces: contractInterfaces(), signer, retryDelayMs: 50 }) };
  };
  const transfer = (amount: bigint) => () => token.transfer.populateTransaction(recipient, amount);
  const minedNonce = () => provider.getTransactionCount(admin.address, "latest");

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cn-tx-tracked-"));
    node = await startHardhatNode(await freePort(), path.join(dir, "hardhat-node.log"));
    provider = new JsonRpcProvider(node.url, undefined, { staticNetwork: true, pollingInterval: 50 });
    admin = new Wallet(devPrivateKey(0), provider);
    const factory = new ComputeToken__factory(admin);
    token = await factory.deploy(admin.address, admin.address, parseUnits("1000", 18), parseUnits("1000000", 18));
    await token.waitForDeployment();
    token = token.connect(new NonceManager(admin)) as ComputeToken;
  });

  after(async () => {
    provider?.destroy();
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("records the signed transaction before broadcasting it, then returns its receipt", async () => {
    const { tx } = sender();
    const order: string[] = [];
    let recorded: SignedTx | undefined;
    const before = await token.balanceOf(recipient);
    const receipt = await tx.sendTracked("transfer", transfer(5n), {}, (signed) => {
      order.push("record");
      recorded = signed;
    });
    order.push("mined");
    expect(order).to.deep.equal(["record", "mined"]);
    expect(recorded!.hash).to.equal(receipt.hash);
    expect(recorded!.from).to.equal(admin.address);
    expect(recorded!.raw).to.match(/^0x[0-9a-f]+$/);
    expect((await provider.getTransaction(receipt.hash))!.nonce).to.equal(recorded!.nonce);
    expect(receipt.status).to.equal(1);
    expect((await token.balanceOf(recipient)) - before).to.equal(5n);
  });

  it("throws the decoded revert at estimation and records nothing; the next transaction takes the same nonce", async () => {
    const { tx } = sender();
    const nonce = await minedNonce();
    let recorded = false;
    try {
      await tx.sendTracked("transfer", transfer(parseUnits("10000000", 18)), {}, () => (recorded = true));
      expect.fail("expected a revert");
    } catch (error) {
      expect(error).to.be.instanceOf(TxRevertedError);
      expect((error as TxRevertedError).errorName).to.equal("ERC20InsufficientBalance");
    }
    expect(recorded).to.equal(false);
    let signed: SignedTx | undefined;
    await tx.sendTracked("transfer", transfer(1n), {}, (s) => (signed = s));
    expect(signed!.nonce).to.equal(nonce);
  });

  it("finishes after a crash between recording and broadcasting: the same bytes are broadcast, once", async () => {
    // ethers answers a repeated nonce read from a 250 ms cache: let it expire so that the recorded transaction
    // gets the account's next nonce (with a stale one it could never be mined, which the next case covers).
    await new Promise((r) => setTimeout(r, 300));
    const { tx } = sender();
    let signed: SignedTx | undefined;
    const crash = new Error("the process died right after persisting the transaction");
    try {
      await tx.sendTracked("transfer", transfer(7n), {}, (s) => {
        signed = s;
        throw crash;
      });
      expect.fail("expected the crash");
    } catch (error) {
      expect(error).to.equal(crash);
    }
    expect(await provider.getTransaction(signed!.hash)).to.equal(null, "nothing left the process");
    const before = await token.balanceOf(recipient);

    const restarted = sender().tx; // a new process: a new nonce manager
    const receipt = await restarted.resumeTracked("transfer", signed!);
    expect(receipt?.hash).to.equal(signed!.hash);
    expect((await token.balanceOf(recipient)) - before).to.equal(7n);

    // Asked again (another restart), it finds the receipt and sends nothing.
    const nonce = await minedNonce();
    const again = await sender().tx.resumeTracked("transfer", signed!);
    expect(again?.hash).to.equal(signed!.hash);
    expect(await minedNonce()).to.equal(nonce);
    expect((await token.balanceOf(recipient)) - before).to.equal(7n);
  });

  it("answers undefined when the recorded transaction can never be mined: its nonce went to another one", async () => {
    const { tx } = sender();
    let signed: SignedTx | undefined;
    await tx
      .sendTracked("transfer", transfer(9n), {}, (s) => {
        signed = s;
        throw new Error("crash");
      })
      .catch(() => undefined);
    const before = await token.balanceOf(recipient);
    await sender().tx.send("transfer", () => token.transfer(recipient, 1n)); // takes the recorded nonce
    expect(await sender().tx.resumeTracked("transfer", signed!)).to.equal(undefined);
    expect((await token.balanceOf(recipient)) - before).to.equal(1n);
  });

  it("waits for a recorded transaction that is still pending, broadcasting it again harmlessly", async () => {
    await rpc(node.url, "evm_setAutomine", [false]);
    try {
      const { tx } = sender();
      let signed: SignedTx | undefined;
      const sending = tx.sendTracked("transfer", transfer(11n), {}, (s) => (signed = s));
      for (let i = 0; i < 100 && !(signed && (await provider.getTransaction(signed.hash))); i++) await new Promise((r) => setTimeout(r, 50));
      expect(await provider.getTransaction(signed!.hash), "in the mempool").to.not.equal(null);
      const resumed = sender().tx.resumeTracked("transfer", signed!);
      await new Promise((r) => setTimeout(r, 300));
      await rpc(node.url, "evm_mine", []);
      const [first, second] = await Promise.all([sending, resumed]);
      expect(first.hash).to.equal(signed!.hash);
      expect(second?.hash).to.equal(signed!.hash);
      const block = await provider.getBlock(first.blockNumber);
      expect(block!.transactions).to.deep.equal([signed!.hash]);
    } finally {
      await rpc(node.url, "evm_setAutomine", [true]);
    }
  });
});
