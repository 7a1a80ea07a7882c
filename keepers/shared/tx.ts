/**
 * Sending transactions: one at a time per key (nonces stay in order), retried on transient failures
 * (network errors, a node that lost our nonce), never retried on a revert. Reverts are decoded into the
 * contracts' custom errors and logged with their arguments, e.g.
 * `TrainingRunsInviteNonceUsed(runId=1, nonce=7)`.
 */
import { type ContractTransactionResponse, type Interface, NonceManager, type TransactionReceipt, isError } from "ethers";
import type { Logger } from "./log.js";

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

export interface TxSenderOptions {
  logger: Logger;
  interfaces: Interface[];
  signer?: NonceManager;
  retries?: number;
  retryDelayMs?: number;
  confirmations?: number;
}

export class TxSender {
  private queue: Promise<unknown> = Promise.resolve();
  sent = 0;
  failed = 0;

  constructor(private readonly options: TxSenderOptions) {}

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
        this.sent++;
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
    this.failed++;
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
    if (attempt >= retries || !isTransient(error)) {
      this.failed++;
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
