/**
 * Checking other nodes' Proof of Compute: the validator keeper does it while the bootstrap set decides,
 * powered miners once power exists (verdicts are weighted by the previous epoch's power). For each PoC
 * commitment it has weight to judge, the verifier samples leaves from a secret only it knows (the miner
 * cannot predict which leaves will be asked for), fetches them with their Merkle proofs from the miner
 * (whose endpoint discovery gives to holders of verdict weight), recomputes each nonce, and submits the
 * verdict of a binomial test that tolerates rare float mismatches but not invented or padded nonces.
 */
import type { Wallet } from "ethers";
import { z } from "zod";
import type { Chain } from "./chain.js";
import type { DiscoveryClient } from "./discovery-client.js";
import type { EpochClock } from "./epochs.js";
import type { SignedClient } from "./http.js";
import type { Logger } from "./log.js";
import type { Metrics } from "./metrics.js";
import {
  type PocModel,
  type PocParams,
  buildModel,
  checkSample,
  decideVerdict,
  deriveSeed,
  evidenceHash,
  leavesToFetch,
  sampleIndices,
} from "./poc.js";
import { TxRevertedError, type TxSender } from "./tx.js";

/** Leaves asked for in one request (a sample of 200 with successors and search paths takes about ten). */
export const LEAVES_PER_REQUEST = 100;
/** Most leaves a miner answers in one request. */
export const MAX_LEAVES_PER_REQUEST = 200;

export const leavesAnswerSchema = z.object({
  root: z.string().regex(/^0x[0-9a-fA-F]{64}$/),
  count: z.number().int().min(0),
  leaves: z
    .array(
      z.object({
        index: z.number().int().min(0),
        nonce: z.string().regex(/^(0|[1-9][0-9]{0,77})$/),
        proof: z.array(z.string().regex(/^0x[0-9a-fA-F]{64}$/)).max(64),
      }),
    )
    .max(MAX_LEAVES_PER_REQUEST),
});
export type LeavesAnswer = z.infer<typeof leavesAnswerSchema>;

export const STATUS_NAMES = ["None", "Pending", "Accepted", "Rejected"] as const;

export interface PocVerifierOptions {
  chain: Chain;
  wallet: Wallet;
  tx: TxSender;
  clock: EpochClock;
  discovery: DiscoveryClient;
  client: SignedClient;
  params: PocParams;
  sampleSize: number;
  logger: Logger;
  metrics: Metrics;
  /** Tries to reach a miner before judging it unreachable (default 5, doubling from 1 s). */
  attempts?: number;
}

export class PocVerifier {
  private readonly models = new Map<bigint, PocModel>();
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly verdicts;
  private stopped = false;

  constructor(private readonly options: PocVerifierOptions) {
    this.verdicts = options.metrics.counter("poc_verdicts_total", "PoC verdicts submitted, by outcome", ["verdict"]);
  }

  /** Verifies `node`'s commitment for `epoch` once (concurrent calls share the work). */
  verify(epoch: bigint, node: string): Promise<void> {
    const key = `${epoch}:${node.toLowerCase()}`;
    let run = this.inFlight.get(key);
    if (!run) {
      run = this.run(epoch, node).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, run);
    }
    return run;
  }

  stop(): Promise<unknown> {
    this.stopped = true;
    return Promise.allSettled([...this.inFlight.values()]);
  }

  private async model(epoch: bigint): Promise<PocModel | undefined> {
    const cached = this.models.get(epoch);
    if (cached) return cached;
    const beacon = await this.options.clock.pocBeacon(epoch);
    if (!beacon) return undefined;
    const model = buildModel(beacon, this.options.params);
    this.models.clear(); // one epoch at a time: models are large
    this.models.set(epoch, model);
    return model;
  }

  private async run(epoch: bigint, node: string): Promise<void> {
    const { chain, wallet, logger: log } = this.options;
    const poc = chain.contracts.proofOfCompute;
    const me = wallet.address;
    if (node.toLowerCase() === me.toLowerCase()) return;
    const [commitment, already, weight] = await Promise.all([
      poc.commitmentOf(epoch, node),
      poc.hasVerdict(epoch, node, me),
      poc.verdictWeightOf(epoch, me),
    ]);
    const fields = { epoch: epoch.toString(), miner: node, count: Number(commitment.count), root: commitment.root };
    if (already || Number(commitment.status) !== 1) return;
    if (weight.weight === 0n) {
      log.debug({ ...fields, bootstrap: weight.bootstrap }, "no verdict weight in this epoch: not judging the commitment");
      return;
    }
    const timeline = await this.options.clock.timeline(epoch);
    const model = await this.model(epoch);
    if (!model) return;

    const count = Number(commitment.count);
    if (!Number.isSafeInteger(count)) {
      // No honest node finds 2^53 valid nonces in one window; it cannot even be sampled exactly.
      log.warn(fields, "PoC commitment rejected: its count is beyond any possible PoC window");
      await this.submit(epoch, node, false, evidenceHash({ epoch: epoch.toString(), node, reason: "count beyond 2^53" }), fields);
      return;
    }
    const secret = deriveSeed(wallet.privateKey, chain.chainId, chain.deployment.contracts.ProofOfCompute.address, epoch);
    const sampled = sampleIndices(secret, node, count, this.options.sampleSize);
    // Each sampled leaf, its successor and the leaves of its binary search: the nonces must increase across all.
    const wanted = leavesToFetch(sampled, count);
    const started = Date.now();
    let leaves: Map<number, { nonce: bigint; proof: string[] }>;
    let unreachable: string | undefined;
    try {
      leaves = await this.fetchLeaves(epoch, node, commitment.root, wanted, timeline.pocValidationEnd);
    } catch (error) {
      unreachable = (error as Error).message;
      leaves = new Map();
    }
    if (this.stopped) return;
    const samples = sampled.map((index) => {
      const leaf = leaves.get(index);
      const next = index + 1 < count ? leaves.get(index + 1) : undefined;
      return {
        index,
        nonce: leaf?.nonce,
        proof: leaf?.proof,
        next: next ? { index: index + 1, nonce: next.nonce, proof: next.proof } : undefined,
        nextExpected: index + 1 < count,
      };
    });
    const findings = checkSample(model, node, commitment.root, samples, { count, leaves });
    const verdict = decideVerdict(findings);
    const accepted = unreachable === undefined && verdict.accepted;
    const evidence = evidenceHash({ epoch: epoch.toString(), node, sampled, ...verdict, unreachable: unreachable ?? null });
    log.info(
      {
        ...fields,
        sampled: sampled.length,
        failures: verdict.failures,
        pValue: verdict.pValue,
        reasons: verdict.reasons.slice(0, 5),
        unreachable,
        accepted,
        weight: weight.weight.toString(),
        totalWeight: weight.total.toString(),
        bootstrap: weight.bootstrap,
        checkMs: Date.now() - started,
      },
      accepted
        ? `PoC commitment accepted: ${sampled.length} sampled leaves, ${verdict.failures} mismatches (p = ${verdict.pValue.toExponential(2)})`
        : `PoC commitment rejected: ${unreachable ? `miner unreachable (${unreachable})` : verdict.reasons[0] ?? "failed the binomial test"}`,
    );
    await this.submit(epoch, node, accepted, evidence, fields);
  }

  private async submit(epoch: bigint, node: string, accepted: boolean, evidence: string, fields: Record<string, unknown>): Promise<void> {
    const poc = this.options.chain.contracts.proofOfCompute;
    try {
      await this.options.tx.send("submitVerdict", () => poc.submitVerdict(epoch, node, accepted, evidence), {
        subsystem: "PoC",
        epoch: epoch.toString(),
        miner: node,
        accepted,
      });
      this.verdicts.inc({ verdict: accepted ? "accept" : "reject" });
    } catch (error) {
      // Decided by others first, or the window closed: nothing to do.
      if (error instanceof TxRevertedError) {
        this.options.logger.info({ ...fields, revert: error.errorName }, "verdict not recorded: the chain refused it");
        return;
      }
      throw error;
    }
  }

  /** Fetches leaves in chunks, retrying an unreachable miner until shortly before the window closes. */
  private async fetchLeaves(
    epoch: bigint,
    node: string,
    root: string,
    indices: number[],
    windowEnd: number,
  ): Promise<Map<number, { nonce: bigint; proof: string[] }>> {
    const attempts = this.options.attempts ?? 5;
    let lastError: Error | undefined;
    for (let attempt = 0; attempt < attempts && !this.stopped; attempt++) {
      if (attempt > 0) {
        const delay = 1000 * 2 ** (attempt - 1);
        if (this.options.clock.now() + delay / 1000 + 5 > windowEnd) break;
        await new Promise((r) => setTimeout(r, delay));
      }
      try {
        const endpoint = await this.options.discovery.endpointOf(node);
        if (!endpoint) throw new Error("discovery has no endpoint for the node");
        const leaves = new Map<number, { nonce: bigint; proof: string[] }>();
        for (let i = 0; i < indices.length; i += LEAVES_PER_REQUEST) {
          const chunk = indices.slice(i, i + LEAVES_PER_REQUEST);
          const response = await this.options.client.request<unknown>("GET", `${endpoint}/poc/${epoch}/leaves?indices=${chunk.join(",")}`, {
            audience: node.toLowerCase(),
          });
          if (response.status !== 200) {
            throw new Error(`GET /poc/${epoch}/leaves: ${response.status} ${(response.body as { error?: string })?.error ?? ""}`.trim());
          }
          const parsed = leavesAnswerSchema.safeParse(response.body);
          if (!parsed.success) throw new Error(`GET /poc/${epoch}/leaves: malformed answer`);
          if (parsed.data.root.toLowerCase() !== root.toLowerCase()) {
            // Not a network problem: the miner serves another tree than it committed. Its leaves fail their proofs.
            this.options.logger.warn({ epoch: epoch.toString(), miner: node, served: parsed.data.root, committed: root }, "miner serves a different root");
          }
          for (const leaf of parsed.data.leaves) {
            if (chunk.includes(leaf.index)) leaves.set(leaf.index, { nonce: BigInt(leaf.nonce), proof: leaf.proof });
          }
        }
        return leaves;
      } catch (error) {
        lastError = error as Error;
        this.options.logger.warn({ epoch: epoch.toString(), miner: node, attempt: attempt + 1, err: lastError.message }, "cannot fetch PoC leaves yet");
      }
    }
    throw lastError ?? new Error("stopped");
  }
}
