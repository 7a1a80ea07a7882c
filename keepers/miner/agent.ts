/**
 * The miner's behaviour once registered: it watches the chain for its validation and membership, answers
 * validators' challenges, accepts the master's invite, runs the master's tasks in Docker, heartbeats to
 * the master and syncs finished tasks' files to it, and keeps its endpoint in discovery. Every permission
 * (validator, master, member) is read from the chain, never taken from a request.
 */
import type Dockerode from "dockerode";
import { type NonceManager, type Wallet, getAddress, recoverAddress } from "ethers";
import { z } from "zod";
import { ChallengeStatus, Participation, type Capabilities } from "../../scripts/lib/protocol.js";
import { type Chain, type ChainEvent, chainWithKey, contractInterfaces } from "../shared/chain.js";
import { CHALLENGE_PRIME, type ChallengeParams, decodeResult, encodeResult, validateChallengeParams } from "../shared/challenge.js";
import { HttpError, type SignedClient } from "../shared/http.js";
import { type Logger, subsystem } from "../shared/log.js";
import { TxRevertedError, TxSender } from "../shared/tx.js";
import { DockerRuntime, type TaskStatus } from "./docker-runtime.js";
import type { HardwareReport } from "./hardware.js";
import { Heartbeater } from "./heartbeat.js";
import { LedgerTasks } from "./ledger-tasks.js";
import { removeValidationLeftovers } from "./reexec.js";
import { describeCapabilities, participationName } from "./registration.js";
import { ChallengeSolver, QueueFullError } from "./solver.js";
import type { MinerState } from "./state.js";
import { StorageSync } from "./sync.js";
import { TASK_ID_PATTERN, validateTaskSpec } from "./task-spec.js";

const CHALLENGE_STATUS_NAMES = ["None", "Pending", "Validated", "Rejected"] as const;
const DECIMAL = /^(0|[1-9][0-9]{0,77})$/;

const inviteSchema = z.strictObject({
  runId: z.string().regex(DECIMAL, "must be a decimal integer string"),
  nonce: z.string().regex(DECIMAL, "must be a decimal integer string"),
  expiry: z.string().regex(DECIMAL, "must be a decimal integer string"),
  generation: z.string().regex(DECIMAL, "must be a decimal integer string"),
  signature: z.string().regex(/^0x[0-9a-fA-F]{130}$/, "must be a 65-byte hex signature"),
  masterUrl: z
    .string()
    .max(256, "must be at most 256 characters")
    .refine(isHttpBaseUrl, "must be an http(s)://host:port URL without query or credentials"),
});

export type InviteBody = z.infer<typeof inviteSchema>;

function isHttpBaseUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== "" && !url.username && !url.password && !url.search && !url.hash;
  } catch {
    return false;
  }
}

/** A short-lived cache of chain reads used for permissions (validator role, run master). */
class PermissionCache {
  private readonly entries = new Map<string, { value: boolean; expires: number }>();

  constructor(private readonly ttlMs: number) {}

  async get(key: string, load: () => Promise<boolean>): Promise<boolean> {
    const now = Date.now();
    const hit = this.entries.get(key);
    if (hit && hit.expires > now) return hit.value;
    const value = await load();
    if (this.entries.size > 10_000) this.entries.clear();
    this.entries.set(key, { value, expires: now + this.ttlMs });
    return value;
  }
}

export interface MinerAgentOptions {
  chain: Chain;
  state: MinerState;
  logger: Logger;
  tx: TxSender;
  nodeWallet: Wallet;
  provider: string;
  runId: bigint;
  /** Signs with the node key (heartbeats, files, discovery). */
  client: SignedClient;
  docker: Dockerode;
  dockerSocket: string;
  runtime: DockerRuntime;
  hardware: HardwareReport;
  capabilities: Capabilities;
  heartbeatIntervalMs: number;
  discoveryUrl: string;
  discoveryRetry: { baseMs: number; maxMs: number };
  syncRetry: { baseMs: number; maxMs: number };
  maxFileBytes: number;
  challengeLimits: { maxN?: number; maxRounds?: number };
  /** How long a validator-role or master check is cached. */
  permissionCacheMs: number;
  /**
   * How long a finished task's container is kept before it is removed (its status and the end of its output
   * stay in the miner's state; `retireFinished`). Default one hour; never less than three heartbeat
   * intervals, so that the master hears of the end first.
   */
  keepFinishedMs?: number;
  /**
   * The node key's connection and sender, for calls only the node may make (`completeTask`). Pass the one
   * the rest of the miner uses for the node key (one nonce manager per key). Default: `chain` and `tx` when
   * the provider key is the node key, otherwise a connection made here with `nodeWallet`.
   */
  nodeKey?: { chain: Chain; tx: TxSender };
}

export interface DiscoveryStatus {
  endpoint: string | undefined;
  uploaded: boolean;
  attempts: number;
  lastError: string | undefined;
}

export class MinerAgent {
  readonly node: string;
  readonly runId: bigint;
  readonly heartbeats: Heartbeater;
  readonly sync: StorageSync;
  readonly solver: ChallengeSolver;
  /** TaskLedger tasks: checked on chain before they start, their result reported when they end. */
  readonly ledger: LedgerTasks;
  /** The node's challenge status for its current declaration, from views at start and events since. */
  validation: { status: string; round: number; capsId: string } = { status: "None", round: 0, capsId: "0" };
  dockerAvailable = false;
  readonly discovery: DiscoveryStatus = { endpoint: undefined, uploaded: false, attempts: 0, lastError: undefined };
  private readonly permissions: PermissionCache;
  private readonly log: { registration: Logger; validation: Logger; onboarding: Logger; tasks: Logger; storage: Logger };
  private validatorRole: string | undefined;
  private inviteQueue: Promise<unknown> = Promise.resolve();
  private invitesQueued = 0;
  private discoveryLoop: Promise<void> | undefined;
  private discoveryWake: (() => void) | undefined;
  private lastDockerProbe = 0;
  private stopped = false;
  private retireTimer: NodeJS.Timeout | undefined;
  private retiring: Promise<string[]> | undefined;
  private endpointUploadedResolve!: () => void;
  /** Resolves once discovery accepted the endpoint. */
  readonly endpointUploaded: Promise<void>;

  constructor(private readonly options: MinerAgentOptions) {
    this.node = options.nodeWallet.address;
    this.runId = options.runId;
    this.permissions = new PermissionCache(options.permissionCacheMs);
    const { logger } = options;
    this.log = {
      registration: subsystem(logger, "Registration"),
      validation: subsystem(logger, "Validation"),
      onboarding: subsystem(logger, "Onboarding"),
      tasks: subsystem(logger, "Tasks"),
      storage: subsystem(logger, "Storage"),
    };
    this.endpointUploaded = new Promise((resolve) => {
      this.endpointUploadedResolve = resolve;
    });
    this.heartbeats = new Heartbeater({
      client: options.client,
      logger: subsystem(logger, "Heartbeat"),
      runId: options.runId,
      node: this.node,
      intervalMs: options.heartbeatIntervalMs,
      tasks: () => (this.dockerAvailable ? heartbeatTasks(options.runtime.list(), options.runId.toString()) : []),
    });
    this.sync = new StorageSync({
      client: options.client,
      logger: this.log.storage,
      state: options.state,
      target: () => this.heartbeats.current,
      maxFileBytes: options.maxFileBytes,
      backoffBaseMs: options.syncRetry.baseMs,
      backoffMaxMs: options.syncRetry.maxMs,
    });
    this.solver = new ChallengeSolver(this.log.validation);
    const nodeKey = options.nodeKey ?? nodeKeyConnection(options, logger);
    this.ledger = new LedgerTasks({
      chain: nodeKey.chain,
      tx: nodeKey.tx,
      state: options.state,
      runtime: options.runtime,
      logger: this.log.tasks,
      node: this.node,
      runId: options.runId,
    });
  }

  get runtime(): DockerRuntime {
    return this.options.runtime;
  }

  // --- start-up ----------------------------------------------------------------------------------

  /** Reads and logs the node's challenge status for its current declaration. */
  async readValidation(): Promise<void> {
    const challenge = await this.options.chain.contracts.challengeBoard.challengeOf(this.node);
    this.validation = {
      status: CHALLENGE_STATUS_NAMES[Number(challenge.status)] ?? String(challenge.status),
      round: Number(challenge.round),
      capsId: challenge.capsId.toString(),
    };
    this.log.validation.info(
      { ...this.validation, approvals: Number(challenge.approvals), rejections: Number(challenge.rejections) },
      Number(challenge.status) === ChallengeStatus.Validated
        ? "node is validated"
        : "node is not validated yet: waiting for a validator's challenge",
    );
  }

  /**
   * Finds the Docker engine and takes back this node's containers from an earlier start. Without an
   * engine the miner still runs (registration, challenges, heartbeats) and task routes answer 503.
   */
  async initDocker(): Promise<void> {
    this.lastDockerProbe = Date.now();
    this.dockerAvailable = await DockerRuntime.available(this.options.docker);
    if (!this.dockerAvailable) {
      this.log.tasks.warn(
        { dockerSocket: this.options.dockerSocket },
        "no Docker engine answers: tasks wait for an engine (task routes answer 503 until one answers)",
      );
      return;
    }
    await this.adoptContainers();
  }

  private async adoptContainers(): Promise<void> {
    const { adopted, removed } = await this.options.runtime.adoptOrCleanup();
    // Validation containers a crash left behind (reexec.ts) are nobody's task: removed, not followed.
    const leftovers = new Set(await removeValidationLeftovers(this.options.runtime, adopted, this.log.tasks));
    this.log.tasks.info({ adopted, removed: removed.length, validationLeftovers: leftovers.size, dockerSocket: this.options.dockerSocket }, "Docker engine ready; own containers adopted");
    for (const taskId of adopted) if (!leftovers.has(taskId)) this.followTask(taskId);
    this.ledger.resume();
  }

  /** Resumes heartbeats to the master this node joined through, if it is still a member under that master. */
  async resumeMembership(): Promise<void> {
    const { trainingRuns } = this.options.chain.contracts;
    const [participation, run] = await Promise.all([
      trainingRuns.participationOf(this.runId, this.node),
      trainingRuns.getRun(this.runId),
    ]);
    const membership = this.options.state.membership(this.runId);
    if (Number(participation) !== Participation.Member) {
      if (membership) this.options.state.clearMembership(this.runId);
      this.log.onboarding.info({ participation: participationName(participation), master: run.master }, "waiting for the master's invite");
      return;
    }
    if (!membership) {
      this.log.onboarding.warn({ master: run.master }, "member of the run, but the master's URL is unknown: waiting for its invite");
      return;
    }
    if (membership.master.toLowerCase() !== run.master.toLowerCase()) {
      this.log.onboarding.warn(
        { invitedBy: membership.master, master: run.master },
        "the run's master changed since this node joined: waiting for the new master's invite",
      );
      return;
    }
    this.log.onboarding.info({ master: membership.master, masterUrl: membership.masterUrl }, "member of the run: resuming heartbeats");
    this.heartbeats.setTarget({ master: membership.master, masterUrl: membership.masterUrl });
  }

  /** Puts the node's endpoint in discovery, retrying with backoff until discovery accepts it. */
  startDiscoveryUpload(endpoint: string): void {
    this.discovery.endpoint = endpoint;
    this.discoveryLoop = this.uploadEndpoint(endpoint);
  }

  private async uploadEndpoint(endpoint: string): Promise<void> {
    const log = this.log.registration;
    const url = `${this.options.discoveryUrl.replace(/\/+$/, "")}/nodes/${this.node}`;
    const { baseMs, maxMs } = this.options.discoveryRetry;
    while (!this.stopped) {
      this.discovery.attempts++;
      try {
        const answer = await this.options.client.call<{ endpoint?: string; updatedAt?: unknown }>("PUT", url, {
          audience: "discovery",
          body: { endpoint },
        });
        this.discovery.uploaded = true;
        this.discovery.lastError = undefined;
        log.info({ discovery: this.options.discoveryUrl, endpoint, attempts: this.discovery.attempts, updatedAt: answer?.updatedAt }, "endpoint registered with discovery");
        this.endpointUploadedResolve();
        return;
      } catch (error) {
        const delayMs = Math.min(maxMs, baseMs * 2 ** Math.min(this.discovery.attempts - 1, 20));
        this.discovery.lastError = (error as Error).message;
        log.warn(
          { discovery: this.options.discoveryUrl, attempt: this.discovery.attempts, err: this.discovery.lastError, retryInMs: delayMs },
          "discovery did not take the endpoint; retrying",
        );
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delayMs);
          this.discoveryWake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    }
  }

  // --- chain events ------------------------------------------------------------------------------

  /** EventFollower handler: this node's validation and membership. Idempotent (logs and views only). */
  async handleEvent(event: ChainEvent): Promise<void> {
    const args = event.args as unknown as Record<string, unknown>;
    const forNode = typeof args.node === "string" && args.node.toLowerCase() === this.node.toLowerCase();
    const forRun = args.runId !== undefined && BigInt(args.runId as bigint) === this.runId;
    const at = { block: event.blockNumber, tx: event.transactionHash };
    if (event.contract === "ChallengeBoard" && forNode) {
      const round = Number(args.round);
      switch (event.name) {
        case "ChallengeRoundStarted":
          this.validation = { status: "Pending", round, capsId: String(args.capsId) };
          this.log.validation.info({ ...at, round, capsId: String(args.capsId) }, "challenge round started");
          return;
        case "ChallengeApproved":
          this.log.validation.info(
            { ...at, round, validator: args.validator, approvals: Number(args.approvals), resultHash: args.resultHash },
            "a validator approved this node's challenge",
          );
          return;
        case "ChallengeRejected":
          this.log.validation.warn(
            { ...at, round, validator: args.validator, rejections: Number(args.rejections), reasonHash: args.reasonHash },
            "a validator rejected this node's challenge",
          );
          return;
        case "NodeValidated":
          this.validation = { status: "Validated", round, capsId: String(args.capsId) };
          this.log.validation.info({ ...at, round, capsId: String(args.capsId) }, "node validated: the run's master may invite it");
          return;
        case "NodeRejected":
          this.validation = { status: "Rejected", round, capsId: String(args.capsId) };
          this.log.validation.warn({ ...at, round, capsId: String(args.capsId) }, "node rejected by the validators");
          return;
        case "ValidationRevoked":
          this.validation = { ...this.validation, status: "Rejected", round };
          this.log.validation.warn({ ...at, round, by: args.by, reasonHash: args.reasonHash }, "node's validation revoked");
          return;
      }
      return;
    }
    if (event.contract === "MinerRegistry" && forNode) {
      if (event.name === "NodeRegistered" || event.name === "Staked" || event.name === "CapabilitiesUpdated" || event.name === "Slashed") {
        const figures = JSON.parse(JSON.stringify(event.args.toObject(true), (_key, value) => (typeof value === "bigint" ? value.toString() : value)));
        const log = event.name === "Slashed" ? this.log.registration.warn.bind(this.log.registration) : this.log.registration.info.bind(this.log.registration);
        log({ ...at, event: event.name, ...figures }, `registry: ${event.name}`);
      }
      return;
    }
    if (event.contract === "TrainingRuns" && forRun) {
      switch (event.name) {
        case "NodeRegisteredForRun":
          if (forNode) this.log.registration.info({ ...at, runId: this.runId.toString() }, "registered for the run on chain");
          return;
        case "NodeJoined":
          if (forNode) this.log.onboarding.info({ ...at, nonce: String(args.nonce) }, "joined the run");
          return;
        case "NodeLeft":
        case "NodeEjected":
          if (!forNode) return;
          this.log.onboarding.warn({ ...at, event: event.name, reason: args.reason }, `no longer in the run (${event.name})`);
          this.options.state.clearMembership(this.runId);
          this.heartbeats.clearTarget(event.name);
          return;
        case "MasterChanged": {
          const current = this.heartbeats.current;
          this.log.onboarding.warn({ ...at, previous: args.previousMaster, master: args.newMaster }, "the run's master changed");
          if (current && current.master.toLowerCase() !== String(args.newMaster).toLowerCase()) {
            this.heartbeats.clearTarget("master changed: waiting for the new master's invite");
          }
          return;
        }
      }
    }
  }

  // --- validators' challenges --------------------------------------------------------------------

  async requireValidator(signer: string): Promise<void> {
    if (!(await this.isValidator(signer))) throw new HttpError(403, `${signer} does not hold VALIDATOR_ROLE`);
  }

  private async isValidator(address: string): Promise<boolean> {
    const board = this.options.chain.contracts.challengeBoard;
    this.validatorRole ??= await board.VALIDATOR_ROLE();
    const role = this.validatorRole;
    return this.permissions.get(`validator:${address.toLowerCase()}`, () => board.hasRole(role, address));
  }

  private isMaster(runId: bigint, address: string): Promise<boolean> {
    return this.permissions.get(`master:${runId}:${address.toLowerCase()}`, () =>
      this.options.chain.contracts.trainingRuns.isMaster(runId, address),
    );
  }

  async solveChallenge(signer: string, body: unknown): Promise<{ challengeId: string; result: string }> {
    await this.requireValidator(signer);
    let params: ChallengeParams;
    try {
      params = validateChallengeParams(body, this.options.challengeLimits);
    } catch (error) {
      throw new HttpError(400, (error as Error).message);
    }
    const started = Date.now();
    let result: string;
    try {
      result = await this.solver.solve(params);
    } catch (error) {
      if (error instanceof QueueFullError) throw new HttpError(429, error.message);
      throw error;
    }
    if (process.env.CN_FAULT_WRONG_CHALLENGE === "1") {
      // Fault injection for the integration tests only: plays a dishonest miner that fakes its answer.
      const c = decodeResult(result, params.n);
      c[0] = (c[0] + 1) % CHALLENGE_PRIME;
      result = encodeResult(c);
      this.log.validation.warn({ challengeId: params.challengeId }, "CN_FAULT_WRONG_CHALLENGE: answering with a corrupted result");
    }
    this.log.validation.info(
      { validator: signer, challengeId: params.challengeId, n: params.n, rounds: params.rounds, solveMs: Date.now() - started },
      "challenge solved",
    );
    return { challengeId: params.challengeId, result };
  }

  // --- invites -----------------------------------------------------------------------------------

  /**
   * Verifies the master's invite and accepts it on chain; one invite at a time. Only the run's master gets
   * into the queue (a cached check, so a flood of strangers' invites costs neither chain reads nor a place
   * in front of the real master's), and the queue is bounded.
   */
  async acceptInvite(signer: string, body: unknown): Promise<{ accepted: true; txHash: string | null; alreadyMember?: true }> {
    // A cached "no" is read again from the chain: the run's master may have just been changed to `signer`.
    const master = (await this.isMaster(this.runId, signer)) || (await this.options.chain.contracts.trainingRuns.isMaster(this.runId, signer));
    if (!master) throw new HttpError(403, `${signer} is not the master of run ${this.runId}`);
    if (this.invitesQueued >= MAX_QUEUED_INVITES) throw new HttpError(429, "too many invites being processed; retry later");
    this.invitesQueued++;
    const run = this.inviteQueue.then(() => this.handleInvite(signer, body)).finally(() => this.invitesQueued--);
    this.inviteQueue = run.catch(() => undefined);
    return run;
  }

  private async handleInvite(signer: string, body: unknown): Promise<{ accepted: true; txHash: string | null; alreadyMember?: true }> {
    const log = this.log.onboarding;
    const parsed = inviteSchema.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new HttpError(400, `invite.${issue.path.join(".") || "body"}: ${issue.message}`);
    }
    const invite = parsed.data;
    const runId = BigInt(invite.runId);
    if (runId !== this.runId) throw new HttpError(400, `invite is for run ${runId}; this node serves run ${this.runId}`);
    const { trainingRuns } = this.options.chain.contracts;
    // Fresh reads, not the cache: gas is about to be spent on the answer.
    if (!(await trainingRuns.isMaster(runId, signer))) {
      log.warn({ signer, runId: invite.runId }, "invite refused: the sender is not the run's master");
      throw new HttpError(403, `${signer} is not the master of run ${runId}`);
    }
    const generation = await trainingRuns.inviteGenerationOf(runId, this.node);
    if (BigInt(invite.generation) !== generation) {
      log.warn({ master: signer, generation: invite.generation, current: generation.toString() }, "invite refused: stale generation");
      throw new HttpError(409, `invite generation ${invite.generation} is not the node's current generation ${generation}`);
    }
    const nonce = BigInt(invite.nonce);
    const expiry = BigInt(invite.expiry);
    const digest = await trainingRuns.inviteDigest(runId, this.node, nonce, expiry);
    let invitedBy: string;
    try {
      invitedBy = recoverAddress(digest, invite.signature);
    } catch {
      throw new HttpError(400, "invite.signature: not a valid secp256k1 signature");
    }
    if (invitedBy.toLowerCase() !== signer.toLowerCase()) {
      log.warn({ master: signer, signedBy: invitedBy, nonce: invite.nonce }, "invite refused: not signed by the run's master; no transaction sent");
      throw new HttpError(403, `the invite is signed by ${invitedBy}, not by the run's master ${signer}`);
    }
    const target = { master: signer, masterUrl: invite.masterUrl.replace(/\/+$/, "") };

    const participation = Number(await trainingRuns.participationOf(runId, this.node));
    if (participation === Participation.Member) {
      // Already in (an earlier invite, or a new master re-inviting): nothing to send, just follow this master.
      log.info({ master: signer, masterUrl: target.masterUrl }, "already a member: following this master without a transaction");
      this.remember(target, null);
      return { accepted: true, txHash: null, alreadyMember: true };
    }
    log.info(
      { master: signer, nonce: invite.nonce, expiry: invite.expiry, generation: invite.generation, participation: participationName(participation) },
      "valid invite from the run's master: accepting on chain",
    );
    // Written before sending: if the process dies after acceptInvite is mined but before it answers, the
    // restarted miner (a member, which the master will not invite again) still knows where to heartbeat.
    // While the node is not a member the record is ignored (resumeMembership reads participation first).
    this.options.state.setMembership({ runId: this.runId.toString(), master: signer, masterUrl: target.masterUrl, txHash: null, acceptedAt: Date.now() });
    let txHash: string;
    try {
      const receipt = await this.options.tx.send(
        "acceptInvite",
        () => trainingRuns.acceptInvite(runId, this.node, nonce, expiry, invite.signature),
        { subsystem: "Onboarding", runId: invite.runId, nonce: invite.nonce, master: signer },
      );
      txHash = receipt.hash;
    } catch (error) {
      if (error instanceof TxRevertedError) {
        // The chain refused; if the node is a member anyway (an earlier acceptance), that is "already done".
        if (Number(await trainingRuns.participationOf(runId, this.node)) === Participation.Member) {
          this.remember(target, null);
          return { accepted: true, txHash: null, alreadyMember: true };
        }
        this.options.state.clearMembership(this.runId);
        throw new HttpError(409, error.message);
      }
      throw new HttpError(503, `could not send acceptInvite: ${(error as Error).message}`);
    }
    this.remember(target, txHash);
    return { accepted: true, txHash };
  }

  private remember(target: { master: string; masterUrl: string }, txHash: string | null): void {
    this.options.state.setMembership({
      runId: this.runId.toString(),
      master: target.master,
      masterUrl: target.masterUrl,
      txHash,
      acceptedAt: Date.now(),
    });
    this.heartbeats.setTarget(target);
    // Tasks that finished while no master was known can now be synced.
    if (this.dockerAvailable) {
      for (const task of this.options.runtime.list()) if (isFinal(task)) this.queueSync(task.taskId);
    }
  }

  // --- tasks -------------------------------------------------------------------------------------

  /** Starts the master's task; answers once its container runs (or failed to start). */
  async startTask(signer: string, body: unknown): Promise<TaskStatus> {
    let spec;
    try {
      spec = validateTaskSpec(body);
    } catch (error) {
      throw new HttpError(400, (error as Error).message);
    }
    const runId = BigInt(spec.runId);
    if (!(await this.isMaster(runId, signer))) throw new HttpError(403, `${signer} is not the master of run ${runId}`);
    await this.requireRuntime();
    if (runId !== this.runId) throw new HttpError(409, `this node serves run ${this.runId}, not run ${runId}`);
    if (!(await this.options.chain.contracts.trainingRuns.isMember(runId, this.node))) {
      throw new HttpError(409, `this node is not a member of run ${runId}`);
    }
    const known = this.options.runtime.status(spec.taskId);
    // It ran here and was retired: the master asks again (its restart, a lost answer). Never run it twice.
    const retired = known ? undefined : this.options.state.retiredTask(spec.taskId);
    if (retired) return retired.status;
    // A TaskLedger task starts only once the chain confirms it is this node's, Assigned, with this spec.
    if (spec.ledgerTaskId !== undefined) await this.ledger.admit(spec, known !== undefined);
    let status: TaskStatus;
    // Answer within a couple of seconds even when the engine is slow (an image pull, a busy daemon): the
    // master must not time out and hand the task to another node while this one still starts it. A start
    // that fails later is recorded in the task's status, which heartbeats report.
    const starting = this.options.runtime.start(spec);
    const early = await Promise.race([
      starting.then(
        (s) => ({ status: s }),
        (error: Error) => ({ error }),
      ),
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), START_ANSWER_MS).unref()),
    ]);
    if (early === undefined) {
      starting.catch(() => undefined);
      status = this.options.runtime.status(spec.taskId) ?? {
        taskId: spec.taskId,
        runId: spec.runId,
        state: "pending",
        exitCode: null,
        restarts: 0,
        startedAt: null,
        finishedAt: null,
      };
    } else if ("error" in early) {
      throw new HttpError(400, early.error.message);
    } else {
      status = early.status;
    }
    if (!known) {
      this.log.tasks.info(
        { taskId: spec.taskId, master: signer, image: spec.image, memoryMB: spec.memoryMB, cpus: spec.cpus, gpus: spec.gpus, state: status.state },
        "task accepted from the master",
      );
      this.followTask(spec.taskId);
    }
    return status;
  }

  /** The task's status, after checking that `signer` is the master of the task's run. */
  async taskStatus(signer: string, taskId: string): Promise<TaskStatus> {
    if (!TASK_ID_PATTERN.test(taskId)) throw new HttpError(400, "taskId must match [A-Za-z0-9_-]{1,64}");
    // A retired task is answered from the state, engine or not.
    const retired = this.options.state.retiredTask(taskId);
    if (!retired) await this.requireRuntime();
    const status = (this.dockerAvailable ? this.options.runtime.status(taskId) : undefined) ?? retired?.status;
    if (!status) throw new HttpError(404, `unknown task ${taskId}`);
    if (!(await this.isMaster(BigInt(status.runId), signer))) {
      throw new HttpError(403, `${signer} is not the master of run ${status.runId}`);
    }
    return status;
  }

  /** `tail` as the query had it: absent, or one whole number of lines (a repeated `tail` is refused). */
  async taskLogs(signer: string, taskId: string, tail: unknown): Promise<{ stdout: string; stderr: string }> {
    await this.taskStatus(signer, taskId);
    let lines: number | undefined;
    if (tail !== undefined) {
      if (typeof tail !== "string" || !/^\d{1,7}$/.test(tail)) throw new HttpError(400, "tail must be a non-negative integer, given once");
      lines = Number(tail);
    }
    if (this.dockerAvailable && this.options.runtime.status(taskId)) return this.options.runtime.logs(taskId, { tail: lines });
    // Retired (taskStatus found it): the kept end of each stream, the last `tail` lines of each.
    const retired = this.options.state.retiredTask(taskId)!;
    return { stdout: lastLines(retired.stdout, lines), stderr: lastLines(retired.stderr, lines) };
  }

  async stopTask(signer: string, taskId: string): Promise<TaskStatus> {
    const status = await this.taskStatus(signer, taskId);
    // A retired task ended long ago: nothing to stop.
    if (!(this.dockerAvailable && this.options.runtime.status(taskId))) return status;
    this.log.tasks.info({ taskId, master: signer }, "stopping task at the master's request");
    return this.options.runtime.stop(taskId);
  }

  /** GET /status: for validators and the masters of runs this node is in. */
  async statusFor(signer: string): Promise<Record<string, unknown>> {
    const { trainingRuns } = this.options.chain.contracts;
    const runIds = await trainingRuns.runsOf(this.node);
    const runs = await Promise.all(
      runIds.map(async (runId) => {
        const [participation, info] = await Promise.all([trainingRuns.participationOf(runId, this.node), trainingRuns.getRun(runId)]);
        return { runId: runId.toString(), participation: participationName(participation), master: info.master };
      }),
    );
    const isRunMaster = runs.some((run) => run.participation !== "None" && run.master.toLowerCase() === signer.toLowerCase());
    if (!isRunMaster && !(await this.isValidator(signer))) {
      throw new HttpError(403, `${signer} is neither a validator nor the master of a run this node is in`);
    }
    const { hardware } = this.options;
    return {
      node: this.node,
      runs,
      tasks: this.dockerAvailable ? this.options.runtime.list() : [],
      hardware: {
        capabilities: describeCapabilities(this.options.capabilities),
        cpuModel: hardware.cpuModel,
        gpus: hardware.gpus,
        virtual: hardware.virtual,
        dockerAvailable: this.dockerAvailable,
      },
      validation: this.validation,
    };
  }

  /** 503 unless a Docker engine answers; probes again (at most every 5 s) when it did not before. */
  private async requireRuntime(): Promise<void> {
    if (this.dockerAvailable) return;
    if (Date.now() - this.lastDockerProbe >= 5_000) {
      this.lastDockerProbe = Date.now();
      if (await DockerRuntime.available(this.options.docker)) {
        this.dockerAvailable = true;
        await this.adoptContainers();
        return;
      }
    }
    throw new HttpError(503, `no Docker engine answers at ${this.options.dockerSocket}: tasks wait for an engine`);
  }

  /** Syncs the task's files once it reaches a final state. */
  private followTask(taskId: string): void {
    const runtime = this.options.runtime;
    runtime.wait(taskId).then(
      (status) => {
        const fields = { taskId, state: status.state, exitCode: status.exitCode, restarts: status.restarts };
        if (this.options.state.syncedTask(taskId)) this.log.tasks.debug(fields, "task finished; its files were synced before");
        else this.log.tasks.info(fields, "task finished: syncing its files");
        this.queueSync(taskId);
        this.ledger.finished(taskId, status);
      },
      () => undefined, // the runtime closed: the next start adopts the container and follows it again
    );
  }

  private queueSync(taskId: string): void {
    if (this.stopped) return;
    let dir: string;
    try {
      dir = this.options.runtime.storageDir(taskId);
    } catch {
      return;
    }
    this.sync.enqueue(taskId, dir);
  }

  /**
   * Removes the containers of tasks that finished more than `keepFinishedMs` ago (at least three heartbeat
   * intervals), once their files reached the master and their result is reported on chain (or they have
   * nothing to report). Their status and the end of their output are saved first, so the task routes keep
   * answering and a master asking to start one again gets its final status instead of a second run. A
   * crash between the save and the removal leaves the container, adopted again at the next start and
   * retired by a later pass. Resolves with the task ids retired; `startRetirement` runs it periodically.
   */
  async retireFinished(now = Date.now()): Promise<string[]> {
    if (this.retiring) return this.retiring;
    this.retiring = this.retirePass(now).finally(() => {
      this.retiring = undefined;
    });
    return this.retiring;
  }

  private async retirePass(now: number): Promise<string[]> {
    if (!this.dockerAvailable || this.stopped) return [];
    const { runtime, state } = this.options;
    const keepMs = Math.max(this.options.keepFinishedMs ?? 3_600_000, 3 * this.options.heartbeatIntervalMs);
    const retired: string[] = [];
    for (const status of runtime.list()) {
      if (this.stopped) break;
      if (!isFinal(status) || status.finishedAt === null || Date.parse(status.finishedAt) + keepMs > now) continue;
      const { taskId } = status;
      if (!state.syncedTask(taskId)) continue; // its files have not reached the master yet
      const phase = state.ledgerTask(taskId)?.phase;
      if (phase === "accepted" || phase === "completing") continue; // its result is not reported yet
      try {
        // The end of the output only: a chatty task's whole log could be gigabytes.
        state.saveRetiredTask(status, await runtime.logs(taskId, { tail: 2_000 }));
        await runtime.remove(taskId);
        retired.push(taskId);
        this.log.tasks.info({ taskId, state: status.state, exitCode: status.exitCode, finishedAt: status.finishedAt }, "finished task retired: container removed, status and output kept");
      } catch (error) {
        this.log.tasks.warn({ taskId, err: (error as Error).message }, "could not retire a finished task: trying again later");
      }
    }
    return retired;
  }

  /** Retires finished tasks every `everyMs` (default a tenth of the keep time, between 5 s and 5 min). */
  startRetirement(everyMs?: number): void {
    const keepMs = this.options.keepFinishedMs ?? 3_600_000;
    const interval = everyMs ?? Math.min(300_000, Math.max(5_000, Math.floor(keepMs / 10)));
    this.retireTimer = setInterval(() => void this.retireFinished(), interval);
    this.retireTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.retireTimer);
    await this.retiring;
    this.discoveryWake?.();
    await this.discoveryLoop;
    await this.heartbeats.stop();
    await this.sync.stop();
    await this.solver.close();
    await this.inviteQueue;
    await this.ledger.stop();
  }
}

/** The node key's connection and sender: the provider's when they are one key, else a new one. */
export function nodeKeyConnection(options: Pick<MinerAgentOptions, "provider" | "nodeWallet" | "chain" | "tx">, logger: Logger): { chain: Chain; tx: TxSender } {
  if (getAddress(options.provider) === getAddress(options.nodeWallet.address)) return { chain: options.chain, tx: options.tx };
  const chain = chainWithKey(options.chain, options.nodeWallet.privateKey);
  return { chain, tx: new TxSender({ logger, interfaces: contractInterfaces(), signer: chain.signer as NonceManager, confirmations: 1, metrics: options.tx.metrics }) };
}

function isFinal(task: TaskStatus): boolean {
  return task.state === "completed" || task.state === "failed" || task.state === "stopped";
}

/** The last `lines` lines of `text` (all of it when `lines` is undefined). */
export function lastLines(text: string, lines: number | undefined): string {
  if (lines === undefined) return text;
  if (lines === 0) return "";
  const parts = text.split("\n");
  // A final newline ends the last line; it does not start another.
  const trailing = parts.at(-1) === "" ? parts.pop() : undefined;
  return parts.slice(-lines).join("\n") + (trailing === undefined ? "" : "\n");
}

/**
 * Tasks a heartbeat reports: this run's active ones, and final ones from the last ten minutes (the master
 * has learnt those long since), at most 200 — a heartbeat stays small however many tasks a node has run.
 */
/** Invites waiting their turn at once (they come from the run's master only). */
const MAX_QUEUED_INVITES = 8;

/** Longest a `POST /tasks` waits for the container to start before answering with its current state. */
const START_ANSWER_MS = 2_000;

export function heartbeatTasks(tasks: TaskStatus[], runId: string, now = Date.now()): TaskStatus[] {
  const recent = now - 10 * 60_000;
  return tasks
    .filter((t) => t.runId === runId && (t.finishedAt === null || Date.parse(t.finishedAt) >= recent))
    .slice(-200);
}
