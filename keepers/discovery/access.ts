/**
 * Who may do what at discovery, decided from the chain.
 *
 * Trust rule. The index (state.ts, fed by events) answers first. An *allowance* it gives is trusted as
 * is, so a revocation (role revoked, master replaced, node ejected, run ended, node deregistered) reaches
 * discovery with the next poll: an allowance may lag a revocation by at most one poll interval (plus the
 * configured confirmations). A *denial* it would give is never trusted: it is checked again against the
 * contracts' views (hasRole, isRegistered, getRun / isMaster, runsOf / participationOf) at the chain's
 * head before the 403, so a keeper is never refused because discovery is a block behind. When that check
 * cannot reach the chain, the answer is 503 (we do not know), not 403.
 */
import { isError } from "ethers";
import type { Contracts } from "../shared/chain.js";
import { HttpError } from "../shared/http.js";
import type { Logger } from "../shared/log.js";
import { type DiscoveryIndex, RUN_STATUS, isOpenRunStatus } from "./state.js";

export type Check = "register" | "validator" | "nodeReader" | "runMaster";

/** How an allowance was reached, for logs and metrics. */
export type Via = "index" | "chain";

export interface AccessOptions {
  index: DiscoveryIndex;
  contracts: Contracts;
  validatorRole: string;
  logger: Logger;
  /** Called for every decision (metrics). */
  onDecision?: (check: Check, via: Via, allowed: boolean) => void;
}

export class Access {
  constructor(private readonly options: AccessOptions) {}

  /** PUT /nodes/:node — the signer is the node itself, and it is registered in MinerRegistry. */
  async requireRegisteredSelf(signer: string, node: string): Promise<Via> {
    if (signer !== node) {
      this.decided("register", "index", false, { signer, node, reason: "signer is not the node" });
      throw new HttpError(403, `${signer} may only set its own endpoint, not ${node}'s`);
    }
    if (this.options.index.isRegistered(node)) return this.decided("register", "index", true, { signer, node });
    const registered = await this.onChain("isRegistered", () => this.options.contracts.registry.isRegistered(node));
    if (registered) return this.decided("register", "chain", true, { signer, node });
    this.decided("register", "chain", false, { signer, node, registered });
    throw new HttpError(403, `${node} is not registered in MinerRegistry`);
  }

  /** GET /validator/pending — a VALIDATOR_ROLE holder. */
  async requireValidator(signer: string): Promise<Via> {
    if (this.options.index.isValidator(signer)) return this.decided("validator", "index", true, { signer });
    if (await this.hasValidatorRole(signer)) return this.decided("validator", "chain", true, { signer });
    this.decided("validator", "chain", false, { signer, hasRole: false });
    throw new HttpError(403, `${signer} does not hold VALIDATOR_ROLE`);
  }

  /**
   * GET /nodes/:node — a VALIDATOR_ROLE holder, or the master of a pending/active run the node is
   * registered for or member of. Returns how and as what the signer was allowed.
   */
  async requireNodeReader(signer: string, node: string): Promise<{ via: Via; as: "validator" | "master" | "peer"; runId?: string }> {
    const { index } = this.options;
    if (index.isValidator(signer)) return { via: this.decided("nodeReader", "index", true, { signer, node, as: "validator" }), as: "validator" };
    const indexedRun = index.openRunOfMasterWithNode(signer, node);
    if (indexedRun !== undefined) {
      return { via: this.decided("nodeReader", "index", true, { signer, node, as: "master", runId: indexedRun }), as: "master", runId: indexedRun };
    }
    const [isValidator, chainRun] = await Promise.all([this.hasValidatorRole(signer), this.openRunOfMasterWithNodeOnChain(signer, node)]);
    if (isValidator) return { via: this.decided("nodeReader", "chain", true, { signer, node, as: "validator" }), as: "validator" };
    if (chainRun !== undefined) {
      return { via: this.decided("nodeReader", "chain", true, { signer, node, as: "master", runId: chainRun }), as: "master", runId: chainRun };
    }
    // Peers of the epoch economy: a node with verdict weight or power in the current epoch judges others'
    // PoC and fetches their leaves, so it may read endpoints too.
    if (await this.isPoweredPeer(signer)) return { via: this.decided("nodeReader", "chain", true, { signer, node, as: "peer" }), as: "peer" };
    this.decided("nodeReader", "chain", false, { signer, node, hasRole: false, masterOfRunWithNode: false, powered: false });
    throw new HttpError(
      403,
      `${signer} may not read ${node}'s endpoint: it holds no VALIDATOR_ROLE, masters no pending or active run the node is registered for or member of, and has neither verdict weight nor power in the current epoch`,
    );
  }

  /** GET /runs/:runId/nodes — the run's current master, while the run is pending or active. 404 for an unknown run. */
  async requireRunMaster(signer: string, runId: bigint): Promise<Via> {
    const id = runId.toString();
    const indexed = this.options.index.run(id);
    if (indexed && indexed.master === signer && isOpenRunStatus(indexed.status)) {
      return this.decided("runMaster", "index", true, { signer, runId: id });
    }
    const run = await this.onChain("getRun", async () => {
      try {
        return await this.options.contracts.trainingRuns.getRun(runId);
      } catch (error) {
        if (isError(error, "CALL_EXCEPTION") && error.revert?.name === "TrainingRunsUnknownRun") return undefined;
        throw error;
      }
    });
    if (run === undefined) {
      this.decided("runMaster", "chain", false, { signer, runId: id, reason: "unknown run" });
      throw new HttpError(404, `no run ${id}`);
    }
    const status = Number(run.status);
    if (run.master !== signer) {
      this.decided("runMaster", "chain", false, { signer, runId: id, master: run.master });
      throw new HttpError(403, `${signer} is not the master of run ${id}`);
    }
    if (!isOpenRunStatus(status)) {
      this.decided("runMaster", "chain", false, { signer, runId: id, status: RUN_STATUS[status] });
      throw new HttpError(403, `run ${id} is ${RUN_STATUS[status]}: its nodes are shared only while it is Pending or Active`);
    }
    return this.decided("runMaster", "chain", true, { signer, runId: id, status: RUN_STATUS[status] });
  }

  /** Verdict weight or power in the current epoch (ProofOfCompute). */
  private async isPoweredPeer(signer: string): Promise<boolean> {
    const { epochManager, proofOfCompute } = this.options.contracts;
    const epoch = await this.onChain("currentEpoch", () => epochManager.currentEpoch());
    if (epoch === 0n) return false;
    const [weight, power] = await this.onChain("verdictWeightOf", () =>
      Promise.all([proofOfCompute.verdictWeightOf(epoch, signer), proofOfCompute.powerOf(epoch, signer)]),
    );
    return weight.weight > 0n || power > 0n;
  }

  private hasValidatorRole(signer: string): Promise<boolean> {
    return this.onChain("hasRole", () => this.options.contracts.challengeBoard.hasRole(this.options.validatorRole, signer));
  }

  /** On chain: a pending/active run mastered by `master` that `node` is Registered for or Member of. */
  private async openRunOfMasterWithNodeOnChain(master: string, node: string): Promise<string | undefined> {
    const { trainingRuns } = this.options.contracts;
    // runsOf holds at most MAX_RUNS_PER_NODE (16) runs: a bounded number of reads.
    const runIds = await this.onChain("runsOf", () => trainingRuns.runsOf(node));
    const runs = await this.onChain("getRun", () => Promise.all(runIds.map((id) => trainingRuns.getRun(id))));
    for (let i = 0; i < runIds.length; i++) {
      if (runs[i].master !== master || !isOpenRunStatus(runs[i].status)) continue;
      const participation = await this.onChain("participationOf", () => trainingRuns.participationOf(runIds[i], node));
      if (participation === 1n || participation === 2n) return runIds[i].toString();
    }
    return undefined;
  }

  private async onChain<T>(what: string, read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (error) {
      this.options.logger.warn({ subsystem: "Chain", read: what, err: (error as Error).message }, "on-chain permission check failed");
      throw new HttpError(503, `cannot check permissions on chain (${what}): ${(error as { shortMessage?: string }).shortMessage ?? (error as Error).message}`);
    }
  }

  private decided(check: Check, via: Via, allowed: boolean, fields: Record<string, unknown>): Via {
    this.options.onDecision?.(check, via, allowed);
    const log = this.options.logger;
    const subsystem = check === "register" ? "Registration" : check === "runMaster" ? "Onboarding" : fields.as === "master" ? "Onboarding" : "Validation";
    if (!allowed) log.info({ subsystem, check, via, allowed, ...fields }, `access refused (${check})`);
    else if (via === "chain") log.info({ subsystem, check, via, allowed, ...fields }, `access allowed by the chain ahead of the index (${check})`);
    else log.debug({ subsystem, check, via, allowed, ...fields }, `access allowed (${check})`);
    return via;
  }
}
