/**
 * The miner's part in the epoch economy (seed 000): every epoch it
 *   1. advances the epoch when due (anyone may) and commits `seedCommitment(seed, node)`, where the seed is
 *      derived from the node key and the epoch (a restarted miner finds it again without storing it);
 *   2. runs the PoC puzzle for the PoC window, builds the Merkle tree of its valid nonces, keeps the nonces
 *      in SQLite (so that it can serve proofs after a crash) and commits root and count;
 *   3. serves sampled leaves with their proofs to holders of verdict weight, and, once it has power itself,
 *      judges other nodes' commitments (PocVerifier);
 *   4. in the Work phase, enrolls in its run's draws with its power;
 *   5. validates other nodes' completed tasks when its seed obliges it to (re-executing them: a deterministic
 *      task must reproduce the executor's result hash, whose seal `keccak256(abi.encode(resultHash))` is on
 *      chain), with the evidence `keccak256(abi.encode(resultHash, node))` when it succeeds; a failed validation
 *      carries the seal of its own result instead), and votes in disputes with its power and its own seal;
 *   6. after the epoch's Dispute phase, reports the successful validations of its own tasks whose evidence is
 *      not bound to the result (the validator did not re-execute: TaskLedger.refuteFalseValidation), resolves
 *      its disputes and claims its work pay and reward with the seed.
 * Every decision is logged with the numbers behind it (power, cap, share, duty probability, votes, amounts).
 */
import { MaxUint256, type Wallet } from "ethers";
import type { Chain, ChainEvent } from "../shared/chain.js";
import type { DiscoveryClient } from "../shared/discovery-client.js";
import { EpochClock, advanceIfDue, fixClaimBeaconsIfDue } from "../shared/epochs.js";
import { HttpError, type SignedClient } from "../shared/http.js";
import { type Logger, subsystem } from "../shared/log.js";
import { LoopHealth } from "../shared/loop-health.js";
import type { Metrics } from "../shared/metrics.js";
import { type PocParams, buildPocTree, deriveSeed, proofFor, seedCommitment } from "../shared/poc.js";
import { PocWorker } from "../shared/poc-worker.js";
import { MAX_LEAVES_PER_REQUEST, PocVerifier } from "../shared/poc-verify.js";
import type { KeeperStore } from "../shared/store.js";
import { DisputeStatus } from "../../scripts/lib/protocol.js";
import { dutyHash, dutyKey } from "../shared/duty.js";
import { executorSeal, isExecutorSeal } from "../shared/seals.js";
import { resultSeal, specHash, validationEvidence } from "../shared/task-hash.js";
import { TxRevertedError, type TxSender } from "../shared/tx.js";
import { FalseValidations, NotYet, type OwnResult } from "./false-validations.js";
import type { ValidTaskSpec } from "./task-spec.js";

const TASK_STATUS = ["None", "Assigned", "Completed", "Invalidated", "Expired"] as const;


export interface EconomyFaults {
  /** CN_FAULT_POC_INFLATE=1: pads the PoC commitment with invented nonces to twice its count. */
  inflatePoc: boolean;
  /** CN_FAULT_SKIP_VALIDATION=1: never validates nor votes (a lazy node). */
  skipValidation: boolean;
  /**
   * CN_FAULT_FAKE_VALIDATION=1: fulfils its validation duties without re-executing, with `ok` and evidence made
   * from the seal on chain (a lazy node copying the executor), and votes to uphold without re-executing.
   */
  fakeValidation: boolean;
}

export function faultsFromEnv(env: NodeJS.ProcessEnv = process.env): EconomyFaults {
  return {
    inflatePoc: env.CN_FAULT_POC_INFLATE === "1",
    skipValidation: env.CN_FAULT_SKIP_VALIDATION === "1",
    fakeValidation: env.CN_FAULT_FAKE_VALIDATION === "1",
  };
}

/**
 * A TaskLedger task's spec, checked against the chain's spec hash. Asked of the run's master when the node
 * is a member of the task's run, then of the executor (its endpoint from discovery), which keeps the spec of
 * every task it runs (ledger-tasks.ts `specFor`): a master withholding a spec does not make the validators
 * miss their duty, and nodes of other runs, which do not know the task's master, can re-execute it. Throws
 * with every source's failure when none serves it.
 */
export async function fetchTaskSpec(
  from: {
    client: SignedClient;
    discovery: Pick<DiscoveryClient, "endpointOf">;
    /** The node's run, and its master when the node is a member. */
    runId: bigint;
    master: { master: string; masterUrl: string } | undefined;
    logger: Logger;
  },
  taskId: bigint,
  task: { runId: bigint; specHash: string; assignee: string },
): Promise<ValidTaskSpec> {
  const id = taskId.toString();
  const sources: Array<{ name: string; audience: string; base: () => Promise<string | undefined> }> = [];
  const { master } = from;
  if (task.runId === from.runId && master) {
    sources.push({ name: "the run's master", audience: master.master.toLowerCase(), base: async () => master.masterUrl });
  }
  sources.push({ name: `the executor ${task.assignee}`, audience: task.assignee.toLowerCase(), base: () => from.discovery.endpointOf(task.assignee) });
  const failures: string[] = [];
  for (const source of sources) {
    try {
      const base = await source.base();
      if (!base) throw new Error("discovery has no endpoint for it");
      const response = await from.client.request<unknown>("GET", `${base}/ledger/tasks/${id}/spec`, { audience: source.audience });
      if (response.status !== 200) throw new Error(`GET /ledger/tasks/${id}/spec: ${response.status} ${(response.body as { error?: string })?.error ?? ""}`.trim());
      const spec = response.body as ValidTaskSpec;
      if (specHash(spec).toLowerCase() !== task.specHash.toLowerCase()) throw new Error("its spec does not match the hash on chain");
      if (failures.length > 0) from.logger.info({ taskId: id, from: source.name, failed: failures }, `task spec fetched from ${source.name}`);
      return spec;
    } catch (error) {
      failures.push(`${source.name}: ${(error as Error).message}`);
    }
  }
  throw new Error(`cannot fetch the spec of task ${id}: ${failures.join("; ")}`);
}

export interface MinerEconomyOptions {
  chain: Chain;
  wallet: Wallet;
  tx: TxSender;
  store: KeeperStore;
  logger: Logger;
  metrics: Metrics;
  client: SignedClient;
  discovery: DiscoveryClient;
  runId: bigint;
  pocParams: PocParams;
  /** Share of wall time the PoC engine computes (1 = full speed). A FAKE for emulating slower machines. */
  pocThrottle: number;
  /** Leaves sampled per commitment when judging others (default 200). */
  pocSampleSize: number;
  /** How often the PoC window logs its progress (nonces tried so far), ms (default 5000). */
  pocProgressMs?: number;
  /** Re-runs a task spec in a throwaway container and returns its result hash. */
  reexecute: (spec: ValidTaskSpec, ledgerTaskId: bigint) => Promise<{ resultHash: string; exitCode: number | null }>;
  /**
   * The result hash this node computed for one of its own ledger tasks and completed it with (its seal is on
   * chain), with the task's epoch; undefined for other nodes' tasks and tasks it did not complete.
   */
  ownResult: OwnResult;
  /** The master of the node's run, when the node is a member (where task specs are fetched). */
  master: () => { master: string; masterUrl: string } | undefined;
  faults: EconomyFaults;
  tickMs?: number;
}

interface PocRow {
  epoch: string;
  root: string;
  count: number;
  nonces: string;
  committed: number;
}

export class MinerEconomy {
  readonly clock: EpochClock;
  readonly verifier: PocVerifier;
  /** Reports the false validations of this node's own tasks. */
  readonly falseValidations: FalseValidations;
  readonly node: string;
  private readonly log: { epochs: Logger; poc: Logger; power: Logger; work: Logger; validation: Logger; claims: Logger };
  private readonly jobs = new Map<string, Promise<void>>();
  private readonly retries = new Map<string, { at: number; failures: number }>();
  private readonly trees = new Map<string, { root: string; count: number; tree: ReturnType<typeof buildPocTree>["tree"] }>();
  private readonly reexecuted = new Map<string, Promise<{ resultHash: string; exitCode: number | null }>>();
  /** This node's duty key per epoch (its seed and the epoch's duty salt, read from the chain once per epoch). */
  private readonly dutyKeys = new Map<string, Promise<string>>();
  private readonly worker: PocWorker;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private stopped = false;
  private readonly counters;
  /** The latest numbers, for /health. */
  readonly status: Record<string, unknown> = {};

  constructor(private readonly options: MinerEconomyOptions) {
    this.node = options.wallet.address;
    this.clock = new EpochClock(options.chain.contracts.epochManager);
    const l = options.logger;
    this.log = {
      epochs: subsystem(l, "Epochs"),
      poc: subsystem(l, "PoC"),
      power: subsystem(l, "Power"),
      work: subsystem(l, "Work"),
      validation: subsystem(l, "TaskValidation"),
      claims: subsystem(l, "Claims"),
    };
    this.verifier = new PocVerifier({
      chain: options.chain,
      wallet: options.wallet,
      tx: options.tx,
      clock: this.clock,
      discovery: options.discovery,
      client: options.client,
      params: options.pocParams,
      sampleSize: options.pocSampleSize,
      logger: this.log.poc,
      metrics: options.metrics,
    });
    this.worker = new PocWorker(this.log.poc);
    this.falseValidations = new FalseValidations({
      chain: options.chain,
      tx: options.tx,
      store: options.store,
      clock: this.clock,
      logger: this.log.validation,
      metrics: options.metrics,
      ownResult: options.ownResult,
    });
    this.counters = {
      nonces: options.metrics.counter("poc_nonces_total", "PoC nonces tried and found valid", ["kind"]),
      claims: options.metrics.counter("claims_total", "Claims sent, by outcome", ["outcome"]),
      validations: options.metrics.counter("task_validations_total", "Task validations sent, by result", ["result"]),
      pocOutcomes: options.metrics.counter("miner_poc_outcomes_total", "The chain's decisions on this node's PoC commitments, by outcome (accepted, rejected)", ["outcome"]),
      votes: options.metrics.counter("miner_dispute_votes_total", "Dispute votes sent, by vote (invalid, valid)", ["vote"]),
      claimed: options.metrics.counter("miner_claimed_cnet_total", "CNET paid out by this node's claims, by kind (work, reward)", ["kind"]),
    };
    options.metrics.gauge("miner_epoch", "The current epoch by chain time (0 before the first)", [], (gauge) => gauge.set(Number(this.status.epoch ?? 0)));
    options.metrics.gauge("miner_power", "This node's power in the latest epoch whose power it read (0: none)", [], (gauge) => {
      const power = (this.status.power as { power?: string } | undefined)?.power;
      gauge.set(power === undefined ? 0 : Number(power));
    });
    options.store.db.exec(`
      CREATE TABLE IF NOT EXISTS economy_poc (
        epoch TEXT PRIMARY KEY, root TEXT NOT NULL, count INTEGER NOT NULL, nonces TEXT NOT NULL, committed INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS economy_epochs (epoch TEXT PRIMARY KEY, claimed INTEGER NOT NULL DEFAULT 0);
      CREATE TABLE IF NOT EXISTS economy_disputes (task_id TEXT PRIMARY KEY, epoch TEXT NOT NULL, resolved INTEGER NOT NULL DEFAULT 0);
    `);
  }

  start(): void {
    this.worker.warm();
    const health = new LoopHealth({ what: "epoch step", logger: this.log.epochs, intervalMs: this.options.tickMs ?? 1000 });
    this.loop = (async () => {
      while (!this.stopped) {
        let delayMs: number;
        try {
          await this.tick();
          delayMs = health.succeeded();
        } catch (error) {
          delayMs = health.failed(error);
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delayMs);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    await Promise.allSettled([...this.jobs.values()]);
    await this.verifier.stop();
    await this.worker.close();
  }

  seedFor(epoch: bigint): string {
    const { chain, wallet } = this.options;
    return deriveSeed(wallet.privateKey, chain.chainId, chain.deployment.contracts.EpochManager.address, epoch);
  }

  // --- the loop ----------------------------------------------------------------------------------

  private async tick(): Promise<void> {
    const { epoch, phase } = await this.clock.current();
    this.status.epoch = epoch.toString();
    this.status.phase = phase;
    if (epoch === 0n) return;
    await advanceIfDue(this.clock, this.options.chain.contracts.epochManager, this.options.tx, this.log.epochs);
    await fixClaimBeaconsIfDue(this.clock, this.options.chain.contracts.epochManager, this.options.tx, this.log.epochs, epoch);
    if (phase === "PoC") this.once(`poc:${epoch}`, () => this.proveCompute(epoch));
    if (phase === "Work") this.once(`enroll:${epoch}`, () => this.enroll(epoch));
    for (const e of await this.falseValidations.due(epoch)) this.once(`report:${e}`, async () => void (await this.falseValidations.report(e)));
    await this.claimDue(epoch);
  }

  /**
   * Runs `job` once per key while the process lives. A failed job runs again on a later tick: at once when
   * it was only early (NotYet), otherwise after a delay doubling from 2 s to 30 s, so that a refusal that
   * lasts (a claim the chain keeps refusing) is not retried every second.
   */
  private once(key: string, job: () => Promise<void>): void {
    if (this.jobs.has(key) || this.stopped) return;
    const retryAt = this.retries.get(key);
    if (retryAt && Date.now() < retryAt.at) return;
    const run = job()
      .then(() => {
        this.jobs.set(key, Promise.resolve());
        this.retries.delete(key);
      })
      .catch((error) => {
        const early = error instanceof NotYet;
        const failures = (retryAt?.failures ?? 0) + (early ? 0 : 1);
        const delayMs = early ? 0 : Math.min(30_000, 1000 * 2 ** failures);
        this.retries.set(key, { at: Date.now() + delayMs, failures });
        if (this.retries.size > 512) this.retries.delete(this.retries.keys().next().value!);
        this.log.epochs[early ? "debug" : "warn"]({ job: key, err: (error as Error).message, retryInMs: delayMs }, "epoch job failed; it runs again later");
        this.jobs.delete(key);
      });
    this.jobs.set(key, run);
    if (this.jobs.size > 512) {
      // Old epochs' markers: keep the map bounded.
      for (const k of [...this.jobs.keys()].slice(0, 256)) this.jobs.delete(k);
    }
  }

  // --- PoC -----------------------------------------------------------------------------------------

  private async proveCompute(epoch: bigint): Promise<void> {
    const { chain, tx } = this.options;
    const { epochManager, registry, challengeBoard, proofOfCompute } = chain.contracts;
    const e = epoch.toString();
    const [registered, validated] = await Promise.all([registry.isRegistered(this.node), challengeBoard.isValidated(this.node)]);
    if (!registered || !validated) {
      this.log.poc.info({ epoch: e, registered, validated }, "not taking part in this epoch's PoC: the node must be registered and validated");
      return;
    }
    const timeline = await this.clock.timeline(epoch);
    const seed = this.seedFor(epoch);
    const commitment = seedCommitment(seed, this.node);
    const onChain = await epochManager.seedCommitmentOf(epoch, this.node);
    if (/^0x0+$/.test(onChain)) {
      await tx.send("commitSeed", () => epochManager.commitSeed(epoch, commitment), { subsystem: "Epochs", epoch: e });
      this.log.epochs.info({ epoch: e, commitment }, "seed committed for the epoch (derived from the node key and the epoch)");
    } else if (onChain.toLowerCase() !== commitment.toLowerCase()) {
      this.log.epochs.error({ epoch: e, onChain, expected: commitment }, "the chain holds another seed commitment for this node: it cannot claim this epoch");
      return;
    }
    this.options.store.db.prepare("INSERT OR IGNORE INTO economy_epochs (epoch) VALUES (?)").run(e);

    const existing = await proofOfCompute.commitmentOf(epoch, this.node);
    if (Number(existing.status) !== 0) {
      this.log.poc.info({ epoch: e, root: existing.root, count: Number(existing.count) }, "PoC already committed for this epoch");
      return;
    }
    let row = this.pocRow(epoch);
    if (!row) {
      let beacon: string | undefined;
      while (!(beacon = await this.clock.pocBeacon(epoch))) {
        if (this.stopped || this.clock.now() >= timeline.pocEnd) return;
        await new Promise((r) => setTimeout(r, 500));
      }
      // Leave time to build the tree and commit: a third of the window, at least 3 s and at most 10 s.
      const pocMs = (timeline.pocEnd - timeline.start) * 1000;
      const deadline = this.clock.localMs(timeline.pocEnd) - Math.min(10_000, Math.max(3_000, pocMs / 3));
      this.log.poc.info(
        { epoch: e, beacon, ...this.options.pocParams, throttle: this.options.pocThrottle, computeUntil: new Date(deadline).toISOString() },
        "PoC started",
      );
      const started = Date.now();
      // The counters follow the window as it runs (a scrape sees the nonces move); one progress line every
      // pocProgressMs at info.
      const counted = { tried: 0, valid: 0 };
      const count = (tried: number, valid: number) => {
        if (tried > counted.tried) this.counters.nonces.inc({ kind: "tried" }, tried - counted.tried);
        if (valid > counted.valid) this.counters.nonces.inc({ kind: "valid" }, valid - counted.valid);
        counted.tried = Math.max(counted.tried, tried);
        counted.valid = Math.max(counted.valid, valid);
      };
      const progressMs = this.options.pocProgressMs ?? 5_000;
      let lastProgress = started;
      // In a worker thread: the HTTP API and heartbeats keep their latency during the PoC window.
      const result = await this.worker.run({
        beacon,
        params: this.options.pocParams,
        node: this.node,
        startNonce: 0n,
        deadline,
        throttle: this.options.pocThrottle,
        shouldStop: () => this.stopped,
        onProgress: (progress) => {
          count(progress.tried, progress.valid);
          const now = Date.now();
          if (now - lastProgress < progressMs) return;
          lastProgress = now;
          const elapsedSec = (now - started) / 1000;
          this.log.poc.info(
            {
              epoch: e,
              tried: progress.tried,
              validSoFar: progress.valid,
              elapsedSec: Math.round(elapsedSec * 10) / 10,
              noncesPerSec: Math.round(progress.tried / Math.max(0.001, elapsedSec)),
              remainingSec: Math.max(0, Math.round((deadline - now) / 1000)),
            },
            `PoC running: ${progress.tried} nonces tried, ${progress.valid} valid so far`,
          );
        },
      });
      if (this.stopped) return;
      let nonces = result.valid;
      count(Number(result.tried), nonces.length);
      const rate = Number(result.tried) / Math.max(0.001, (Date.now() - started) / 1000);
      if (this.options.faults.inflatePoc && nonces.length > 0) {
        // Fault injection for the integration tests only: invented nonces past the last one tried.
        const padding = Array.from({ length: nonces.length }, (_, i) => BigInt(result.tried) + 1_000_000n + BigInt(i));
        this.log.poc.warn({ epoch: e, real: nonces.length, claimed: nonces.length * 2 }, "CN_FAULT_POC_INFLATE: padding the commitment with invented nonces");
        nonces = [...nonces, ...padding];
      }
      this.status.lastPoc = { epoch: e, tried: Number(result.tried), valid: result.valid.length, noncesPerSec: Math.round(rate) };
      if (nonces.length === 0) {
        this.log.poc.warn({ epoch: e, tried: Number(result.tried) }, "PoC found no valid nonce: nothing to commit, no power this epoch");
        return;
      }
      const built = buildPocTree(nonces);
      this.options.store.db
        .prepare("INSERT OR REPLACE INTO economy_poc (epoch, root, count, nonces, committed) VALUES (?, ?, ?, ?, 0)")
        .run(e, built.root, built.count, JSON.stringify(nonces.map(String)));
      this.trees.set(e, { root: built.root, count: built.count, tree: built.tree });
      this.log.poc.info(
        { epoch: e, tried: Number(result.tried), valid: result.valid.length, count: built.count, root: built.root, noncesPerSec: Math.round(rate) },
        `PoC done: ${result.valid.length} valid nonces of ${result.tried} tried (${Math.round(rate)} nonces/s)`,
      );
      row = this.pocRow(epoch)!;
    }
    if (this.clock.now() >= timeline.pocEnd) {
      this.log.poc.warn({ epoch: e }, "the PoC window closed before the commitment could be sent");
      return;
    }
    try {
      await tx.send("commitPoc", () => proofOfCompute.commitPoc(epoch, row!.root, BigInt(row!.count)), { subsystem: "PoC", epoch: e, count: row.count });
    } catch (error) {
      if (!(error instanceof TxRevertedError && error.errorName === "ProofOfComputeAlreadyCommitted")) throw error;
    }
    this.options.store.db.prepare("UPDATE economy_poc SET committed = 1 WHERE epoch = ?").run(e);
    this.log.poc.info({ epoch: e, root: row.root, count: row.count }, "PoC committed; serving sampled leaves to verdict givers");
  }

  private pocRow(epoch: bigint): PocRow | undefined {
    return this.options.store.db.prepare("SELECT * FROM economy_poc WHERE epoch = ?").get(epoch.toString()) as PocRow | undefined;
  }

  /** GET /poc/:epoch/leaves?indices=…: leaves and proofs for holders of verdict weight in the epoch. */
  async leaves(signer: string, epochParam: string, indicesParam: unknown): Promise<{ root: string; count: number; leaves: { index: number; nonce: string; proof: string[] }[] }> {
    if (!/^[1-9][0-9]{0,18}$/.test(epochParam)) throw new HttpError(400, "epoch must be a positive integer");
    const epoch = BigInt(epochParam);
    if (typeof indicesParam !== "string" || !/^\d{1,10}(,\d{1,10})*$/.test(indicesParam)) {
      throw new HttpError(400, "indices must be a comma-separated list of leaf indices");
    }
    const indices = indicesParam.split(",").map(Number);
    if (indices.length > MAX_LEAVES_PER_REQUEST) throw new HttpError(400, `at most ${MAX_LEAVES_PER_REQUEST} indices per request`);
    const weight = await this.options.chain.contracts.proofOfCompute.verdictWeightOf(epoch, signer);
    if (weight.weight === 0n) throw new HttpError(403, `${signer} has no verdict weight in epoch ${epoch}`);
    const key = epoch.toString();
    let entry = this.trees.get(key);
    if (!entry) {
      const row = this.pocRow(epoch);
      if (!row) throw new HttpError(404, `no PoC commitment of this node for epoch ${epoch}`);
      const built = buildPocTree((JSON.parse(row.nonces) as string[]).map(BigInt));
      entry = { root: built.root, count: built.count, tree: built.tree };
      if (this.trees.size > 4) this.trees.clear();
      this.trees.set(key, entry);
    }
    const leaves = [];
    for (const index of indices) {
      if (index >= entry.count) throw new HttpError(400, `index ${index} is past the commitment's ${entry.count} leaves`);
      const leaf = proofFor(entry.tree, index);
      leaves.push({ index, nonce: leaf.nonce.toString(), proof: leaf.proof });
    }
    return { root: entry.root, count: entry.count, leaves };
  }

  // --- power and work --------------------------------------------------------------------------

  private async enroll(epoch: bigint): Promise<void> {
    const { proofOfCompute, taskLedger, trainingRuns } = this.options.chain.contracts;
    const e = epoch.toString();
    const [final, power, total, cap, member] = await Promise.all([
      proofOfCompute.isPowerFinal(epoch),
      proofOfCompute.powerOf(epoch, this.node),
      proofOfCompute.totalPower(epoch),
      proofOfCompute.powerCap(epoch),
      trainingRuns.isMember(this.options.runId, this.node),
    ]);
    if (!final) throw new NotYet(`power of epoch ${e} is not final yet`);
    const raw = await proofOfCompute.rawPowerOf(epoch, this.node);
    const share = total === 0n ? 0 : Number((power * 1_000_000n) / total) / 10_000;
    this.status.power = { epoch: e, power: power.toString(), raw: raw.toString(), total: total.toString(), sharePercent: share };
    this.log.power.info(
      {
        epoch: e,
        raw: raw.toString(),
        power: power.toString(),
        totalPower: total.toString(),
        sharePercent: share,
        capLevel: cap.level.toString(),
        capPercent: Number(cap.capBps) / 100,
        acceptedNodes: Number(cap.acceptedNodes),
        capped: power < raw,
      },
      power === 0n
        ? "no power this epoch: no tasks, no reward"
        : `power ${power} of ${total} (${share}%)${power < raw ? `, capped from ${raw} at ${Number(cap.capBps) / 100}%` : ""}`,
    );
    if (power === 0n || !member) return;
    if (await taskLedger.isEnrolled(this.options.runId, epoch, this.node)) return;
    try {
      await this.options.tx.send("enroll", () => taskLedger.enroll(this.options.runId, this.node), { subsystem: "Work", epoch: e, runId: this.options.runId.toString() });
      this.log.work.info({ epoch: e, runId: this.options.runId.toString(), weight: power.toString() }, "enrolled in the run's power-weighted task draws");
    } catch (error) {
      if (!(error instanceof TxRevertedError && error.errorName === "TaskLedgerAlreadyEnrolled")) throw error;
    }
  }

  // --- events --------------------------------------------------------------------------------------

  async handleEvent(event: ChainEvent): Promise<void> {
    if (event.contract === "ProofOfCompute" && (event.name === "PocAccepted" || event.name === "PocRejected")) {
      // The chain's decision on this node's own commitment (its verdict givers' weights): one line per epoch,
      // `outcome` is what `computenet logs … summary` reads.
      if (String(event.args.node).toLowerCase() !== this.node.toLowerCase()) return;
      const accepted = event.name === "PocAccepted";
      const epoch = BigInt(event.args.epoch).toString();
      const weight = BigInt(accepted ? event.args.acceptWeight : event.args.rejectWeight).toString();
      const totalWeight = BigInt(event.args.totalWeight).toString();
      this.counters.pocOutcomes.inc({ outcome: accepted ? "accepted" : "rejected" });
      this.log.poc[accepted ? "info" : "warn"](
        { epoch, outcome: accepted ? "accepted" : "rejected", ...(accepted ? { acceptWeight: weight, count: Number(event.args.count) } : { rejectWeight: weight }), totalWeight, block: event.blockNumber },
        accepted ? `PoC accepted on chain (${weight} of ${totalWeight} verdict weight): power in this epoch` : `PoC REJECTED on chain (${weight} of ${totalWeight} verdict weight): no power in this epoch`,
      );
      return;
    }
    if (event.contract === "ProofOfCompute" && event.name === "PocCommitted") {
      const epoch = BigInt(event.args.epoch);
      const node = String(event.args.node);
      if (node.toLowerCase() === this.node.toLowerCase()) return;
      // Judged in the background: the follower must not wait for a miner's answers. Not before this node's
      // own PoC of the epoch is committed, though: judging takes CPU from the node's own PoC, and verdicts
      // would queue in front of its commitment on the node key's transaction sender.
      const own = this.jobs.get(`poc:${epoch}`) ?? Promise.resolve();
      own
        .then(() => this.verifier.verify(epoch, node))
        .catch((error) => this.log.poc.warn({ epoch: epoch.toString(), miner: node, err: (error as Error).message }, "PoC check failed"));
      return;
    }
    if (event.contract !== "TaskLedger") return;
    if (event.name === "TaskValidated") {
      this.falseValidations.observe(BigInt(event.args.taskId), String(event.args.validator), Boolean(event.args.ok), String(event.args.evidenceHash));
    } else if (event.name === "TaskCompleted") {
      const taskId = BigInt(event.args.taskId);
      if (String(event.args.assignee).toLowerCase() === this.node.toLowerCase()) return;
      this.background(`duty:${taskId}`, () => this.validationDuty(taskId));
    } else if (event.name === "DisputeOpened") {
      const taskId = BigInt(event.args.taskId);
      const task = await this.options.chain.contracts.taskLedger.taskOf(taskId);
      const mine = task.assignee.toLowerCase() === this.node.toLowerCase() || String(event.args.accuser).toLowerCase() === this.node.toLowerCase();
      if (mine) {
        this.options.store.db.prepare("INSERT OR IGNORE INTO economy_disputes (task_id, epoch) VALUES (?, ?)").run(taskId.toString(), task.epoch.toString());
        this.log.validation.warn({ taskId: taskId.toString(), accuser: event.args.accuser, executor: task.assignee }, "dispute opened on a task this node executed or accused");
        return;
      }
      this.background(`vote:${taskId}`, () => this.voteOn(taskId));
    } else if (event.name === "DisputeVote") {
      // A vote to uphold one of this node's tasks keeps evidence too (TaskValidated already covers the
      // validations that count as votes; a second look at them records nothing).
      // Votes carry seals: a vote for this node's own seal is a vote to uphold (any other seal, a vote to
      // invalidate, keeps no evidence).
      const taskId = BigInt(event.args.taskId);
      const own = this.options.ownResult(taskId.toString());
      if (!own || !isExecutorSeal(String(event.args.seal), resultSeal(own.resultHash))) return;
      const voter = String(event.args.voter);
      const evidence = await this.options.chain.contracts.taskLedger.okEvidenceHashFor(taskId, voter);
      if (!/^0x0+$/.test(evidence)) this.falseValidations.observe(taskId, voter, true, evidence);
    } else if (event.name === "DisputeResolved") {
      this.options.store.db.prepare("UPDATE economy_disputes SET resolved = 1 WHERE task_id = ?").run(String(event.args.taskId));
    }
  }

  private background(key: string, job: () => Promise<void>): void {
    this.once(key, job);
  }

  /**
   * This node's duty key of `epoch`: its seed hashed with the epoch's duty salt (keepers/shared/duty.ts). The
   * salt is fixed by the epoch's first task, so it is read once per epoch, when a completed task of the epoch
   * asks for a duty (the epoch has a task by then).
   */
  private dutyKeyOf(epoch: bigint): Promise<string> {
    const e = epoch.toString();
    let key = this.dutyKeys.get(e);
    if (!key) {
      key = (async () => {
        const [, tasks] = await this.options.chain.contracts.taskLedger.nodeEpochOf(epoch, this.node);
        if (tasks.count === 0n) throw new Error(`epoch ${e} has no task yet: its duty salt is not fixed`);
        return dutyKey(this.seedFor(epoch), tasks.dutySalt);
      })();
      // A failed read is not kept: the next duty asks again.
      key.catch(() => this.dutyKeys.delete(e));
      this.dutyKeys.set(e, key);
      for (const old of this.dutyKeys.keys()) if (BigInt(old) + 2n < epoch) this.dutyKeys.delete(old);
    }
    return key;
  }

  /** Whether `seed` obliges this node to validate the task: the TaskLedger's rule, computed locally (the seed stays secret until the claim). */
  private async duty(taskId: bigint, task: { epoch: bigint; assigneePower: bigint }): Promise<{ duty: boolean; probability: number; power: bigint; total: bigint }> {
    const { proofOfCompute, taskLedger } = this.options.chain.contracts;
    const [power, total, params] = await Promise.all([
      proofOfCompute.powerOf(task.epoch, this.node),
      proofOfCompute.totalPower(task.epoch),
      taskLedger.parameters(),
    ]);
    if (power === 0n) return { duty: false, probability: 0, power, total };
    const k = BigInt(params.validationKBps);
    const rest = total - task.assigneePower;
    const numerator = k * power;
    const denominator = rest * 10_000n;
    const h = dutyHash(await this.dutyKeyOf(task.epoch), taskId);
    if (denominator === 0n || numerator >= denominator) return { duty: true, probability: 1, power, total };
    const threshold = (MaxUint256 * numerator) / denominator;
    return { duty: h < threshold, probability: Number((numerator * 1_000_000n) / denominator) / 1_000_000, power, total };
  }

  private async validationDuty(taskId: bigint): Promise<void> {
    const ledger = this.options.chain.contracts.taskLedger;
    const task = await ledger.taskOf(taskId);
    const id = taskId.toString();
    const { duty, probability, power, total } = await this.duty(taskId, task);
    const fields = { taskId: id, epoch: task.epoch.toString(), executor: task.assignee, power: power.toString(), totalPower: total.toString(), executorPower: task.assigneePower.toString(), probability };
    if (!duty) {
      this.log.validation.info(fields, power === 0n ? "no power in the task's epoch: no validation duty" : `not obliged to validate (probability ${probability})`);
      return;
    }
    if (this.options.faults.skipValidation) {
      this.log.validation.warn(fields, "CN_FAULT_SKIP_VALIDATION: skipping a validation duty");
      return;
    }
    if (await ledger.hasValidated(taskId, this.node)) return;
    let ok: boolean;
    let evidence: string;
    if (this.options.faults.fakeValidation) {
      // What a node that copies the chain can post: the seal, bound to itself. It is not the result hash.
      ok = true;
      evidence = validationEvidence(task.resultHash, this.node);
      this.log.validation.warn({ ...fields, evidence }, "CN_FAULT_FAKE_VALIDATION: validating ok without re-executing");
    } else {
      this.log.validation.info(fields, `validation duty (probability ${probability}): re-executing the task`);
      const outcome = await this.reexecute(taskId, task);
      if (!outcome) return;
      // Compared as seals: the chain holds the seal of the executor's result, and the reproduced result hash
      // itself never leaves the node.
      const seal = resultSeal(outcome.resultHash);
      ok = isExecutorSeal(seal, task.resultHash);
      // A successful validation carries evidence bound to this node; a failed one carries this node's own seal:
      // it opens the dispute (or joins it) as its vote.
      evidence = ok ? validationEvidence(outcome.resultHash, this.node) : seal;
      this.log.validation[ok ? "info" : "warn"](
        { ...fields, executorSeal: executorSeal(task.resultHash), seal, ok },
        ok ? "task reproduced (its result hash matches the seal): validation ok" : "task NOT reproduced: validation fails with this node's own seal and opens or joins a dispute",
      );
    }
    try {
      await this.options.tx.send("submitValidation", () => ledger.submitValidation(taskId, ok, evidence), { subsystem: "TaskValidation", taskId: id, epoch: fields.epoch, ok });
      this.counters.validations.inc({ result: ok ? "ok" : "failed" });
    } catch (error) {
      if (!(error instanceof TxRevertedError)) throw error;
    }
  }

  private async voteOn(taskId: bigint): Promise<void> {
    const ledger = this.options.chain.contracts.taskLedger;
    const id = taskId.toString();
    if (this.options.faults.skipValidation) {
      this.log.validation.warn({ taskId: id }, "CN_FAULT_SKIP_VALIDATION: not voting in a dispute");
      return;
    }
    const task = await ledger.taskOf(taskId);
    const power = await this.options.chain.contracts.proofOfCompute.powerOf(task.epoch, this.node);
    if (power === 0n || (await ledger.hasValidated(taskId, this.node))) return;
    const epoch = task.epoch.toString();
    let invalid = false;
    let evidence: string;
    let seal: string | undefined;
    if (this.options.faults.fakeValidation) {
      // A vote to uphold carries evidence like a successful validation: this made-up one can be refuted.
      evidence = validationEvidence(task.resultHash, this.node);
      this.log.validation.warn({ taskId: id, epoch }, "CN_FAULT_FAKE_VALIDATION: voting to uphold without re-executing");
    } else {
      const outcome = await this.reexecute(taskId, task);
      if (!outcome) return;
      // The vote is this node's own seal: the executor's when it reproduced the result (a vote for the task),
      // another one otherwise (a non-deterministic task gives every voter its own, and ends Unresolved).
      seal = resultSeal(outcome.resultHash);
      invalid = !isExecutorSeal(seal, task.resultHash);
      // Like a validation: a vote to invalidate carries this node's seal, a vote to uphold its bound evidence
      // (kept, and refutable).
      evidence = invalid ? seal : validationEvidence(outcome.resultHash, this.node);
      this.log.validation.info(
        { taskId: id, epoch, executor: task.assignee, executorSeal: executorSeal(task.resultHash), seal, invalid, weight: power.toString() },
        `voting ${invalid ? "against the executor's seal" : "for the executor's seal"} with power ${power}`,
      );
    }
    try {
      await this.options.tx.send("vote", () => ledger.vote(taskId, invalid, evidence), { subsystem: "TaskValidation", taskId: id, epoch, invalid, seal });
      this.counters.votes.inc({ vote: invalid ? "invalid" : "valid" });
    } catch (error) {
      if (!(error instanceof TxRevertedError)) throw error;
    }
  }

  /** Fetches the task's spec (`fetchTaskSpec`) and re-runs it (once per task). */
  private reexecute(
    taskId: bigint,
    task: { runId: bigint; specHash: string; assignee: string },
  ): Promise<{ resultHash: string; exitCode: number | null } | undefined> {
    const id = taskId.toString();
    let run = this.reexecuted.get(id);
    if (!run) {
      run = fetchTaskSpec(
        { client: this.options.client, discovery: this.options.discovery, runId: this.options.runId, master: this.options.master(), logger: this.log.validation },
        taskId,
        task,
      ).then((spec) => this.options.reexecute(spec, taskId));
      this.reexecuted.set(id, run);
      if (this.reexecuted.size > 1000) this.reexecuted.delete(this.reexecuted.keys().next().value!);
    }
    return run.catch((error) => {
      this.reexecuted.delete(id);
      this.log.validation.warn({ taskId: id, err: (error as Error).message }, "cannot re-execute the task");
      return undefined;
    });
  }

  // --- claims --------------------------------------------------------------------------------------

  private async claimDue(current: bigint): Promise<void> {
    const rows = this.options.store.db.prepare("SELECT epoch FROM economy_epochs WHERE claimed = 0 ORDER BY CAST(epoch AS INTEGER)").all() as { epoch: string }[];
    for (const { epoch: e } of rows) {
      const epoch = BigInt(e);
      if (epoch >= current) break;
      const phase = await this.clock.phaseOf(epoch);
      if (phase === "Closed") {
        this.log.claims.warn({ epoch: e }, "the claim window of this epoch closed before a claim went through");
        this.options.store.db.prepare("UPDATE economy_epochs SET claimed = 1 WHERE epoch = ?").run(e);
        continue;
      }
      if (phase !== "Claim") continue;
      this.once(`claim:${e}`, () => this.claim(epoch));
    }
  }

  private async claim(epoch: bigint): Promise<void> {
    const { settlement, taskLedger, proofOfCompute } = this.options.chain.contracts;
    const e = epoch.toString();
    const done = await settlement.claimOf(epoch, this.node);
    if (done.claimed || done.expired) {
      this.options.store.db.prepare("UPDATE economy_epochs SET claimed = 1 WHERE epoch = ?").run(e);
      return;
    }
    const [power, work] = await Promise.all([proofOfCompute.powerOf(epoch, this.node), taskLedger.workOf(epoch, this.node)]);
    const workTotal = work.amounts.reduce((a, b) => a + b, 0n);
    if (power === 0n && workTotal === 0n) {
      this.log.claims.info({ epoch: e }, "nothing to claim for this epoch (no power, no work)");
      this.options.store.db.prepare("UPDATE economy_epochs SET claimed = 1 WHERE epoch = ?").run(e);
      return;
    }
    // Disputes this node is part of must be resolved before it can claim.
    if ((await taskLedger.openDisputesOf(epoch, this.node)) > 0n) {
      const open = this.options.store.db.prepare("SELECT task_id FROM economy_disputes WHERE epoch = ? AND resolved = 0").all(e) as { task_id: string }[];
      for (const { task_id } of open) {
        const taskId = BigInt(task_id);
        if ((await taskLedger.disputeOf(taskId)).status === BigInt(DisputeStatus.Open)) {
          // A dispute opened late in the Dispute phase stays open for votes a full window after it opened.
          const votingEnd = Number(await taskLedger.votingEndOf(taskId));
          if (this.clock.now() < votingEnd) {
            throw new Error(`dispute on task ${task_id} is open for votes until ${new Date(votingEnd * 1000).toISOString()}: claiming after it`);
          }
          try {
            await this.options.tx.send("resolveDispute", () => taskLedger.resolveDispute(taskId), { subsystem: "Claims", taskId: task_id });
          } catch (error) {
            if (!(error instanceof TxRevertedError)) throw error;
            if ((await taskLedger.disputeOf(taskId)).status === BigInt(DisputeStatus.Open)) throw error;
          }
        }
        this.options.store.db.prepare("UPDATE economy_disputes SET resolved = 1 WHERE task_id = ?").run(task_id);
      }
    }
    const seed = this.seedFor(epoch);
    const receipt = await this.options.tx.send("claim", () => settlement.claim(epoch, this.node, seed), { subsystem: "Claims", epoch: e });
    let claimed: Record<string, unknown> = {};
    for (const entry of receipt.logs) {
      try {
        const parsed = settlement.interface.parseLog(entry);
        if (parsed?.name === "Claimed") {
          claimed = {
            work: parsed.args.work.toString(),
            reward: parsed.args.reward.toString(),
            forfeited: parsed.args.forfeited,
            missedTaskId: parsed.args.missedTaskId.toString(),
            sampled: Number(parsed.args.sampled),
          };
        }
      } catch {
        // another contract's log
      }
    }
    this.options.store.db.prepare("UPDATE economy_epochs SET claimed = 1 WHERE epoch = ?").run(e);
    this.counters.claims.inc({ outcome: claimed.forfeited ? "forfeited" : "paid" });
    const cnet = (wei: unknown) => (typeof wei === "string" && /^\d+$/.test(wei) ? Number(wei) / 1e18 : 0);
    this.counters.claimed.inc({ kind: "work" }, cnet(claimed.work));
    this.counters.claimed.inc({ kind: "reward" }, cnet(claimed.reward)); // what was paid: nothing when forfeited
    this.status.lastClaim = { epoch: e, ...claimed };
    this.log.claims.info(
      { epoch: e, power: power.toString(), ...claimed, tx: receipt.hash },
      claimed.forfeited
        ? `claimed epoch ${e}: work ${claimed.work} paid, reward FORFEITED (missed validation duty on task ${claimed.missedTaskId})`
        : `claimed epoch ${e}: work ${claimed.work} and reward ${claimed.reward} paid to the provider`,
    );
  }

  /** For /health. */
  taskStatusName(status: number): string {
    return TASK_STATUS[status] ?? String(status);
  }
}
