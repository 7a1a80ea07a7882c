/**
 * Sending transactions: one at a time per key (nonces stay in order), retried on transient failures
 * (network errors, a node that lost our nonce), never retried on a revert. Reverts are decoded into the
 * contracts' custom errors and logged with their arguments, e.g.
 * `TrainingRunsInviteNonceUsed(runId=1, nonce=7)`.
 *
 * `sendTracked` is for actions that must never happen twice (creating an on-chain task): the transaction
 * is signed first and handed to the caller to persist (hash, nonce, raw bytes) before it leaves the
 * process; only those same bytes are ever broadcast, and `resumeTracked` finishes it after a crash.
 */
import {
  type ContractTransaction,
  type ContractTransactionResponse,
  type Interface,
  type JsonRpcApiProvider,
  type JsonRpcProvider,
  NonceManager,
  Transaction,
  type TransactionReceipt,
  formatUnits,
  isError,
  makeError,
} from "ethers";
import { failpoint } from "./failpoints.js";
import type { Logger } from "./log.js";
import type { TxMetrics } from "./metrics.js";

export class TxRevertedError extends Error {
  constructor(
    readonly label: string,
    readonly errorName: string | undefined,
    readonly errorArgs: Record<string, string>,
    message: string,
  ) {
    super(message);
    this.name = "TxRevertedError";
  }
}

/**
 * The fee a transaction would need (base fee + priority fee, or the legacy gas price) is above the operator's
 * cap (`--max-fee-gwei`): the transaction is not signed, let alone sent. Thrown by KeeperProvider.getFeeData.
 */
export class FeeCapExceededError extends Error {
  constructor(
    /** Wei per gas the transaction would need now. */
    readonly neededPerGas: bigint,
    /** The cap, wei per gas. */
    readonly capPerGas: bigint,
  ) {
    super(
      `the network asks ${formatUnits(neededPerGas, "gwei")} gwei per gas (base fee + priority fee), above --max-fee-gwei ` +
        `${formatUnits(capPerGas, "gwei")}: not sending`,
    );
    this.name = "FeeCapExceededError";
  }
}

/** Decodes revert data against the given interfaces: `Name(arg=value, ...)`, or undefined. */
export function decodeRevert(
  data: string | null | undefined,
  interfaces: Interface[],
): { name: string; args: Record<string, string>; text: string } | undefined {
  if (!data || data === "0x") return undefined;
  for (const iface of interfaces) {
    try {
      const parsed = iface.parseError(data);
      if (!parsed) continue;
      const args: Record<string, string> = {};
      parsed.fragment.inputs.forEach((input, i) => {
        args[input.name || String(i)] = String(parsed.args[i]);
      });
      const text = `${parsed.name}(${Object.entries(args)
        .map(([k, v]) => `${k}=${v}`)
        .join(", ")})`;
      return { name: parsed.name, args, text };
    } catch {
      // not this interface's error
    }
  }
  return undefined;
}

function revertData(error: unknown): string | undefined {
  const e = error as { data?: string; info?: { error?: { data?: string | { data?: string } } }; error?: { data?: string } };
  if (typeof e.data === "string") return e.data;
  const inner = e.info?.error?.data;
  if (typeof inner === "string") return inner;
  if (inner && typeof inner.data === "string") return inner.data;
  if (typeof e.error?.data === "string") return e.error.data;
  return undefined;
}

function isTransient(error: unknown): boolean {
  if (isError(error, "NETWORK_ERROR") || isError(error, "TIMEOUT") || isError(error, "SERVER_ERROR")) return true;
  if (isError(error, "NONCE_EXPIRED") || isError(error, "REPLACEMENT_UNDERPRICED")) return true;
  const message = String((error as Error)?.message ?? "").toLowerCase();
  return (
    message.includes("econnrefused") ||
    message.includes("econnreset") ||
    message.includes("socket hang up") ||
    message.includes("nonce too low") ||
    message.includes("nonce has already been used") ||
    message.includes("fetch failed")
  );
}

/** A transaction signed by the keeper, as `sendTracked` hands it over to be persisted before it is sent. */
export interface SignedTx {
  hash: string;
  nonce: number;
  from: string;
  /** The signed, serialized transaction: broadcasting it again can never make a second transaction. */
  raw: string;
}

function isAlreadyKnown(error: unknown): boolean {
  const message = String((error as Error)?.message ?? "").toLowerCase();
  return message.includes("already known") || message.includes("known transaction") || message.includes("already imported");
}

function isNonceUsed(error: unknown): boolean {
  if (isError(error, "NONCE_EXPIRED")) return true;
  const message = String((error as Error)?.message ?? "").toLowerCase();
  return message.includes("nonce too low") || message.includes("nonce has already been used");
}

export interface TxSenderOptions {
  logger: Logger;
  interfaces: Interface[];
  signer?: NonceManager;
  retries?: number;
  retryDelayMs?: number;
  confirmations?: number;
  /** Counters of sent and failed transactions (metrics.ts `txMetrics`); shared by a keeper's senders. */
  metrics?: TxMetrics;
}

/** Longest single wait for a tracked transaction's receipt before the wait counts as a transient failure. */
const TRACKED_WAIT_MS = 30_000;

/** A signed transaction's nonce went to another transaction: it can never be mined. */
export class NonceUsedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NonceUsedError";
  }
}

export class TxSender {
  private queue: Promise<unknown> = Promise.resolve();
  sent = 0;
  failed = 0;

  constructor(private readonly options: TxSenderOptions) {}

  /** The counters this sender reports to (to share them with another sender of the same keeper). */
  get metrics(): TxMetrics | undefined {
    return this.options.metrics;
  }

  private countSent(label: string): void {
    this.sent++;
    this.options.metrics?.sent.inc({ action: label });
  }

  private countFailed(label: string, reason: "reverted" | "nonce" | "error"): void {
    this.failed++;
    this.options.metrics?.failed.inc({ action: label, reason });
  }

  /**
   * Sends the transaction `build` creates and waits for its receipt. `label` and `fields` go to the logs.
   * Throws TxRevertedError on a revert (decoded), or the last error after the retries.
   */
  send(
    label: string,
    build: () => Promise<ContractTransactionResponse>,
    fields: Record<string, unknown> = {},
  ): Promise<TransactionReceipt> {
    const run = this.queue.then(() => this.attempt(label, build, fields));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Like `send` for an action that must never be sent twice: `populate` builds the call (e.g.
   * `contract.method.populateTransaction(...)`); the transaction is estimated (a revert throws
   * TxRevertedError, nothing is sent), signed with the next nonce, passed to `record` (which must persist it
   * synchronously), and only then broadcast. A broadcast that fails transiently is retried with the same
   * bytes; from the moment `record` returned, the action is only ever finished by `resumeTracked`.
   */
  sendTracked(
    label: string,
    populate: () => Promise<ContractTransaction>,
    fields: Record<string, unknown>,
    record: (signed: SignedTx) => void,
  ): Promise<TransactionReceipt> {
    const run = this.queue.then(async () => {
      const retries = this.options.retries ?? 5;
      for (let attempt = 0; ; attempt++) {
        const signed = await this.sign(label, populate, fields);
        record(signed);
        this.options.logger.info({ ...fields, tx: signed.hash, nonce: signed.nonce }, `${label}: signed and recorded; broadcasting`);
        failpoint("tx.afterRecord", label);
        try {
          return await this.broadcastAndWait(label, signed, fields);
        } catch (error) {
          // The nonce was stale (another transaction took it): this one can never be mined, so signing
          // again with a fresh nonce and recording that instead cannot make two transactions.
          if (!(error instanceof NonceUsedError) || attempt >= retries) throw error;
          this.options.logger.warn({ ...fields, tx: signed.hash, nonce: signed.nonce, attempt }, `${label}: nonce already used by another transaction; signing again`);
        }
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Finishes a transaction `sendTracked` recorded (after a crash or a failed wait): its receipt when it was
   * mined (or once it is, after broadcasting the same bytes again), or undefined when it can never be mined
   * because its nonce went to another transaction. Throws TxRevertedError when it was mined and reverted.
   */
  resumeTracked(label: string, signed: SignedTx, fields: Record<string, unknown> = {}): Promise<TransactionReceipt | undefined> {
    const run = this.queue.then(async () => {
      const mined = await this.freshReceipt(signed.hash);
      if (mined) return this.checkMined(label, mined, fields);
      if ((await this.minedNonce(signed.from)) > signed.nonce) {
        // Mined after the first read, or its nonce went to another transaction for good.
        const late = await this.freshReceipt(signed.hash);
        if (late) return this.checkMined(label, late, fields);
        this.options.logger.warn({ ...fields, tx: signed.hash, nonce: signed.nonce }, `${label}: never mined and its nonce was used by another transaction: it can never be mined`);
        return undefined;
      }
      this.options.logger.info({ ...fields, tx: signed.hash, nonce: signed.nonce }, `${label}: not mined yet; broadcasting the recorded transaction again`);
      try {
        return await this.broadcastAndWait(label, signed, fields);
      } catch (error) {
        if (error instanceof NonceUsedError) return undefined; // another transaction took the nonce meanwhile
        throw error;
      } finally {
        this.options.signer?.reset();
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * The receipt of `hash`, or null, read from the node now: ethers answers repeated reads from a short
   * cache, and a stale "not mined" here could make a caller send an action twice.
   */
  private async freshReceipt(hash: string): Promise<TransactionReceipt | null> {
    const provider = this.requireSigner().provider! as JsonRpcApiProvider;
    const raw = await provider.send("eth_getTransactionReceipt", [hash]);
    if (!raw) return null;
    for (let i = 0; i < 40; i++) {
      const receipt = await provider.getTransactionReceipt(hash);
      if (receipt) return receipt;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`receipt of ${hash} exists but could not be read`);
  }

  /**
   * Polls the node (not ethers' cache, nor block events, which a quiet local chain never sends) for the
   * receipt with the configured confirmations; a TIMEOUT error after TRACKED_WAIT_MS.
   */
  private async waitMined(hash: string): Promise<TransactionReceipt> {
    const provider = this.requireSigner().provider! as JsonRpcApiProvider;
    const confirmations = this.options.confirmations ?? 1;
    const deadline = Date.now() + TRACKED_WAIT_MS;
    for (;;) {
      const receipt = await this.freshReceipt(hash);
      if (receipt) {
        const head = Number(await provider.send("eth_blockNumber", []));
        if (head - receipt.blockNumber + 1 >= confirmations) return receipt;
      }
      if (Date.now() > deadline) throw makeError(`no receipt for ${hash} after ${TRACKED_WAIT_MS} ms`, "TIMEOUT", { operation: "waitMined", reason: "timeout" });
      await new Promise((r) => setTimeout(r, Math.min(1_000, (provider as JsonRpcProvider).pollingInterval ?? 250)));
    }
  }

  /** Transactions of `from` mined so far (its next nonce), read from the node now. */
  private async minedNonce(from: string): Promise<number> {
    const provider = this.requireSigner().provider! as JsonRpcApiProvider;
    return Number(await provider.send("eth_getTransactionCount", [from, "latest"]));
  }

  private requireSigner(): NonceManager {
    const signer = this.options.signer;
    if (!signer?.provider) throw new Error("TxSender: tracked transactions need a signer connected to a provider");
    return signer;
  }

  /** Estimates (reverts are final), takes the next nonce and signs, retrying transient failures. */
  private async sign(label: string, populate: () => Promise<ContractTransaction>, fields: Record<string, unknown>): Promise<SignedTx> {
    const manager = this.requireSigner();
    const retries = this.options.retries ?? 5;
    for (let attempt = 0; ; attempt++) {
      try {
        const request = await populate();
        // The nonce manager's count may come from ethers' short read cache (stale after a reset): the node's
        // own pending count, read now, wins when it is ahead.
        const managed = await manager.getNonce("pending");
        const from = await manager.getAddress();
        const pending = Number(await (manager.provider as JsonRpcApiProvider).send("eth_getTransactionCount", [from, "pending"]));
        const nonce = Math.max(managed, pending);
        const populated = await manager.signer.populateTransaction({ ...request, nonce });
        const raw = await manager.signer.signTransaction(populated);
        const parsed = Transaction.from(raw);
        if (nonce === managed) manager.increment();
        else manager.reset();
        return { hash: parsed.hash!, nonce, from: parsed.from!, raw };
      } catch (error) {
        this.throwIfReverted(label, error, fields);
        await this.backOffOrThrow(label, error, attempt, retries, fields);
      }
    }
  }

  /** Broadcasts the signed bytes (again: idempotent) and waits for the receipt. */
  private async broadcastAndWait(label: string, signed: SignedTx, fields: Record<string, unknown>): Promise<TransactionReceipt> {
    const provider = this.requireSigner().provider!;
    const retries = this.options.retries ?? 5;
    const at = { ...fields, tx: signed.hash };
    for (let attempt = 0; ; attempt++) {
      try {
        await provider.broadcastTransaction(signed.raw);
        failpoint("tx.afterSend", label);
        break;
      } catch (error) {
        if (isAlreadyKnown(error)) {
          failpoint("tx.afterSend", label);
          break;
        }
        if (isNonceUsed(error)) {
          // Either this very transaction was mined already, or another one took the nonce: the receipt says.
          const receipt = await this.freshReceipt(signed.hash);
          if (receipt) return this.checkMined(label, receipt, fields);
          this.countFailed(label, "nonce");
          this.options.signer?.reset();
          throw new NonceUsedError(`${label}: nonce ${signed.nonce} was used by another transaction; ${signed.hash} can never be mined`);
        }
        this.throwIfReverted(label, error, at);
        await this.backOffOrThrow(label, error, attempt, retries, at, false);
      }
    }
    for (let attempt = 0; ; attempt++) {
      try {
        return this.checkMined(label, await this.waitMined(signed.hash), fields);
      } catch (error) {
        if (error instanceof TxRevertedError) throw error;
        await this.backOffOrThrow(label, error, attempt, retries, at, false);
      }
    }
  }

  private checkMined(label: string, receipt: TransactionReceipt, fields: Record<string, unknown>): TransactionReceipt {
    if (receipt.status !== 1) {
      this.countFailed(label, "reverted");
      this.options.logger.warn({ ...fields, tx: receipt.hash, block: receipt.blockNumber }, `${label}: mined but reverted`);
      this.options.signer?.reset();
      throw new TxRevertedError(label, undefined, {}, `${label} reverted in block ${receipt.blockNumber} (tx ${receipt.hash})`);
    }
    this.countSent(label);
    this.options.logger.info({ ...fields, tx: receipt.hash, block: receipt.blockNumber, gasUsed: receipt.gasUsed.toString() }, `${label}: confirmed`);
    return receipt;
  }

  private async attempt(
    label: string,
    build: () => Promise<ContractTransactionResponse>,
    fields: Record<string, unknown>,
  ): Promise<TransactionReceipt> {
    const { logger } = this.options;
    const retries = this.options.retries ?? 5;
    // Phase 1: estimate, sign and broadcast. Retried on transient failures; a revert is final.
    let tx: ContractTransactionResponse;
    for (let attempt = 0; ; attempt++) {
      try {
        tx = await build();
        failpoint("tx.afterSend", label);
        break;
      } catch (error) {
        this.throwIfReverted(label, error, fields);
        await this.backOffOrThrow(label, error, attempt, retries, fields);
      }
    }
    // Phase 2: the transaction has a hash. From here on it is only ever waited for, never built again,
    // so a flaky RPC connection cannot turn one action into two transactions.
    for (let attempt = 0; ; attempt++) {
      try {
        const receipt = await tx.wait(this.options.confirmations ?? 1);
        if (receipt === null) throw new Error(`${label}: no receipt`);
        this.countSent(label);
        logger.info({ ...fields, tx: receipt.hash, block: receipt.blockNumber, gasUsed: receipt.gasUsed.toString() }, `${label}: confirmed`);
        return receipt;
      } catch (error) {
        this.throwIfReverted(label, error, { ...fields, tx: tx.hash });
        await this.backOffOrThrow(label, error, attempt, retries, { ...fields, tx: tx.hash }, false);
      }
    }
  }

  private throwIfReverted(label: string, error: unknown, fields: Record<string, unknown>): void {
    const decoded = decodeRevert(revertData(error), this.options.interfaces);
    if (!decoded && !isError(error, "CALL_EXCEPTION")) return;
    this.countFailed(label, "reverted");
    const reason = decoded?.text ?? (error as { shortMessage?: string }).shortMessage ?? String(error);
    this.options.logger.warn({ ...fields, revert: reason }, `${label}: reverted: ${reason}`);
    this.options.signer?.reset();
    throw new TxRevertedError(label, decoded?.name, decoded?.args ?? {}, `${label} reverted: ${reason}`);
  }

  /** Waits before the next attempt, or throws when `error` is not transient or the attempts are spent. */
  private async backOffOrThrow(
    label: string,
    error: unknown,
    attempt: number,
    retries: number,
    fields: Record<string, unknown>,
    resetNonce = true,
  ): Promise<void> {
    const { logger } = this.options;
    if (error instanceof FeeCapExceededError) {
      // Not retried here: the keeper's own loop comes back to the action later, at whatever the fee is then.
      this.failed++;
      logger.warn(
        { ...fields, neededGwei: formatUnits(error.neededPerGas, "gwei"), maxFeeGwei: formatUnits(error.capPerGas, "gwei") },
        `${label}: refused by the fee cap: ${error.message}`,
      );
      this.options.signer?.reset();
      throw error;
    }
    if (attempt >= retries || !isTransient(error)) {
      this.countFailed(label, "error");
      logger.error({ ...fields, err: (error as Error).message, attempt }, `${label}: failed`);
      this.options.signer?.reset();
      throw error;
    }
    const delay = Math.min(10_000, (this.options.retryDelayMs ?? 500) * 2 ** attempt);
    logger.warn({ ...fields, err: (error as Error).message, attempt, delayMs: delay }, `${label}: transient failure, retrying`);
    if (resetNonce) this.options.signer?.reset();
    await new Promise((r) => setTimeout(r, delay));
  }
}
