/**
 * The validator's core (DESIGN.md, flow 2): find nodes to challenge, send each a hardware challenge
 * (keepers/shared/challenge.ts: an n×n product over F_p checked with Freivalds within a deadline) and
 * report approve / reject to ChallengeBoard.
 *
 * Candidates come from chain events and from discovery's pending list; they wait in a durable queue
 * (candidates.ts) until the chain says there is nothing left to do for them. Before challenging and
 * again before reporting, the node's registration, its round and this validator's report are read from
 * the contracts, so a restart, a second instance or a newer declaration never leads to a duplicate report.
 */
import { AbiCoder, type Signer, ZeroHash, getAddress, id, isAddress, keccak256 } from "ethers";
import { z } from "zod";
import type { Chain, ChainEvent } from "../shared/chain.js";
import {
  type ChallengeParams,
  DEFAULT_CHALLENGE_N,
  DEFAULT_CHALLENGE_ROUNDS,
  decodeResult,
  newChallenge,
  resultHash,
  verifyChallenge,
} from "../shared/challenge.js";
import { HttpError, SignedClient } from "../shared/http.js";
import type { Logger } from "../shared/log.js";
import { LoopHealth } from "../shared/loop-health.js";
import type { Metrics } from "../shared/metrics.js";
import { signRequest } from "../shared/signing.js";
import { TxRevertedError, type TxSender } from "../shared/tx.js";
import { ChallengeStatus } from "../../scripts/lib/protocol.js";
import type { CandidateStore } from "./candidates.js";

export interface ChallengeSettings {
  /** Matrix size. */
  n: number;
  /** Freivalds rounds. */
  rounds: number;
  /** Time the node has to answer, measured by the validator from sending to the last byte. */
  deadlineMs: number;
  /** Tries when the node is unreachable or answers non-2xx, before rejecting it. */
  attempts: number;
  /** Pause before the second try; it doubles before each later one (5 tries: 2+4+8+16 s = 30 s of tolerance). */
  retryDelayMs: number;
}

export const DEFAULT_CHALLENGE_SETTINGS: ChallengeSettings = {
  n: DEFAULT_CHALLENGE_N,
  rounds: DEFAULT_CHALLENGE_ROUNDS,
  deadlineMs: 15_000,
  attempts: 5,
  retryDelayMs: 2_000,
};

/** The hash an approval reports: binds the challenge's result to this chain, board, node and declaration. */
export function approvalHash(input: { chainId: bigint; board: string; node: string; capsId: bigint; resultHash: string }): string {
  return keccak256(
    AbiCoder.defaultAbiCoder().encode(
      ["uint256", "address", "address", "uint64", "bytes32"],
      [input.chainId, input.board, input.node, input.capsId, input.resultHash],
    ),
  );
}

/** The hash a rejection reports: keccak256 of the reason's UTF-8 text (logged next to it). */
export function reasonHash(reason: string): string {
  return id(reason);
}

import { DiscoveryClient } from "../shared/discovery-client.js";
export { DiscoveryClient, checkEndpoint } from "../shared/discovery-client.js";

// ------------------------------------------------------------------------------------------ challenge

export type VerdictKind = "approved" | "wrong" | "malformed" | "late" | "unreachable";

export interface Verdict {
  approved: boolean;
  kind: VerdictKind;
  /** Why the node is rejected: this exact text is hashed into the report. */
  reason?: string;
  /** The last challenge sent. */
  params: ChallengeParams;
  /** resultHash(params, C) when C was well-formed. */
  resultHash?: string;
  /** Sending to the answer's last byte, in the last attempt that got an answer (or timed out). */
  elapsedMs?: number;
  /** Tries made (only unreachable / non-2xx answers are retried). */
  attempts: number;
  /** Freivalds' result when C was well-formed. */
  verified?: boolean;
}

/** Thrown when the validator stops during a challenge: no verdict, nothing to report. */
export class ChallengeStoppedError extends Error {
  constructor() {
    super("validator stopping: challenge abandoned");
    this.name = "ChallengeStoppedError";
  }
}

const answerSchema = z.object({ challengeId: z.string(), result: z.string() });

/** Base64 length of an n×n answer plus room for the JSON around it: anything longer is refused unread. */
function answerLimit(n: number): number {
  return 4 * Math.ceil((4 * n * n) / 3) + 4096;
}

class AnswerTooLargeError extends Error {}

async function readLimited(response: Response, limit: number): Promise<Buffer> {
  if (!response.body) return Buffer.alloc(0);
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > limit) {
      await reader.cancel().catch(() => undefined);
      throw new AnswerTooLargeError(`answer larger than ${limit} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

function describeFetchError(error: unknown): string {
  const e = error as { message?: string; cause?: { code?: string; message?: string } };
  const cause = e.cause?.code ?? e.cause?.message;
  return cause ? `${e.message ?? "fetch failed"} (${cause})` : (e.message ?? String(error));
}

export interface RunChallengeInput {
  /** Signs the request (the validator's key). */
  signer: Signer;
  chainId: bigint;
  /** The node challenged: the request's audience. */
  node: string;
  /** `http(s)://host:port`. */
  endpoint: string;
  settings: ChallengeSettings;
  /** Logger of the Validation subsystem. */
  logger: Logger;
  /** Aborted when the validator stops. */
  signal?: AbortSignal;
}

/**
 * Challenges one node: POST <endpoint>/challenge (signed, audience = the node), then decides. A 2xx answer
 * is judged at once (malformed, late or wrong → rejected; correct within the deadline → approved); no
 * answer at all within the deadline is late; only a refused connection or a non-2xx status is retried,
 * `attempts` times in all, each with a fresh challenge. Never throws for the node's behaviour; throws
 * ChallengeStoppedError when `signal` aborts.
 */
export async function runChallenge(input: RunChallengeInput): Promise<Verdict> {
  const { settings, logger, node } = input;
  const url = `${input.endpoint}/challenge`;
  const figures = { target: node, n: settings.n, rounds: settings.rounds, deadlineMs: settings.deadlineMs, maxAttempts: settings.attempts };
  let lastFailure = "";
  let params = newChallenge({ n: settings.n, rounds: settings.rounds });

  for (let attempt = 1; attempt <= settings.attempts; attempt++) {
    if (input.signal?.aborted) throw new ChallengeStoppedError();
    if (attempt > 1) params = newChallenge({ n: settings.n, rounds: settings.rounds });
    const body = Buffer.from(JSON.stringify(params));
    const headers = await signRequest(input.signer, {
      chainId: input.chainId,
      audience: node,
      method: "POST",
      path: "/challenge",
      query: "",
      body,
    });
    const deadline = AbortSignal.timeout(settings.deadlineMs);
    const signal = input.signal ? AbortSignal.any([deadline, input.signal]) : deadline;
    logger.debug({ ...figures, attempt, challengeId: params.challengeId, endpoint: input.endpoint }, "sending challenge");
    const started = performance.now();
    let status: number;
    let raw: Buffer;
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { ...headers, "content-type": "application/json" },
        body,
        signal,
        redirect: "error",
      });
      status = response.status;
      raw = await readLimited(response, answerLimit(settings.n));
    } catch (error) {
      const elapsedMs = Math.round(performance.now() - started);
      if (input.signal?.aborted) throw new ChallengeStoppedError();
      if (deadline.aborted) {
        const reason = `late answer: no answer within the ${settings.deadlineMs} ms deadline (n=${settings.n}, rounds=${settings.rounds})`;
        return { approved: false, kind: "late", reason, params, elapsedMs, attempts: attempt };
      }
      if (error instanceof AnswerTooLargeError) {
        const reason = `malformed answer: ${error.message} (n=${settings.n})`;
        return { approved: false, kind: "malformed", reason, params, elapsedMs, attempts: attempt };
      }
      lastFailure = describeFetchError(error);
      logger.info({ ...figures, attempt, elapsedMs, err: lastFailure, endpoint: input.endpoint }, "challenge attempt failed: node unreachable");
      if (attempt < settings.attempts) await sleep(settings.retryDelayMs * 2 ** (attempt - 1), input.signal);
      continue;
    }
    const elapsedMs = Math.round(performance.now() - started);

    if (status < 200 || status >= 300) {
      let detail = "";
      try {
        const parsed = JSON.parse(raw.toString("utf8")) as { error?: unknown };
        if (typeof parsed.error === "string") detail = ` ${parsed.error.slice(0, 200)}`;
      } catch {
        // no JSON reason: the status says enough
      }
      lastFailure = `HTTP ${status}${detail}`;
      logger.info({ ...figures, attempt, elapsedMs, status, err: lastFailure }, "challenge attempt failed: non-2xx answer");
      if (attempt < settings.attempts) await sleep(settings.retryDelayMs * 2 ** (attempt - 1), input.signal);
      continue;
    }

    const base = { params, elapsedMs, attempts: attempt };
    let c: Uint32Array;
    try {
      let json: unknown;
      try {
        json = JSON.parse(raw.toString("utf8"));
      } catch {
        throw new Error("body is not JSON");
      }
      const answer = answerSchema.safeParse(json);
      if (!answer.success) throw new Error("body must be { challengeId: string, result: string }");
      if (answer.data.challengeId !== params.challengeId) {
        throw new Error(`challengeId ${JSON.stringify(answer.data.challengeId.slice(0, 140))} is not ${params.challengeId}`);
      }
      c = decodeResult(answer.data.result, settings.n);
    } catch (error) {
      const reason = `malformed answer: ${(error as Error).message} (n=${settings.n}, challenge ${params.challengeId})`;
      return { ...base, approved: false, kind: "malformed", reason };
    }

    const verifyStarted = performance.now();
    const verified = verifyChallenge(params, c);
    const verifyMs = Math.round((performance.now() - verifyStarted) * 100) / 100;
    const hash = resultHash(params, c);
    logger.debug({ ...figures, attempt, elapsedMs, verified, verifyMs, challengeId: params.challengeId }, "answer checked");
    if (elapsedMs > settings.deadlineMs) {
      const reason = `late answer: ${elapsedMs} ms, deadline ${settings.deadlineMs} ms (n=${settings.n}, rounds=${settings.rounds})`;
      return { ...base, approved: false, kind: "late", reason, resultHash: hash, verified };
    }
    if (!verified) {
      const reason = `wrong answer: Freivalds check failed (n=${settings.n}, rounds=${settings.rounds}, challenge ${params.challengeId})`;
      return { ...base, approved: false, kind: "wrong", reason, resultHash: hash, verified };
    }
    return { ...base, approved: true, kind: "approved", resultHash: hash, verified };
  }

  const reason = `unreachable: ${settings.attempts} attempts failed, last: ${lastFailure}`;
  return { approved: false, kind: "unreachable", reason, params, attempts: settings.attempts };
}

// ------------------------------------------------------------------------------------------ challenger

type Assessment =
  | { action: "ready"; provider: string; capsId: bigint; round: bigint }
  | { action: "drop"; why: string; fields?: Record<string, unknown> }
  | { action: "wait"; why: string; waiting: string; retryInMs: number; fields?: Record<string, unknown> };

const STATUS_NAMES = ["None", "Pending", "Validated", "Rejected"] as const;
/**
 * A node puts its endpoint in discovery right after registering, usually a moment after this validator saw
 * the registration: it looks again after these delays (each at most the pending poll's interval) instead of
 * leaving a new node's first challenge to the next pending poll.
 */
const ENDPOINT_QUICK_CHECKS_MS = [250, 500, 1_000] as const;
/** Reverts that mean a report (ours before a restart, or other validators') already decided or covered the round. */
const ALREADY_DONE = new Set(["ChallengeBoardAlreadyReported", "ChallengeBoardRoundClosed"]);

export interface ChallengerOptions {
  /** Connected with the validator's key. */
  chain: Chain;
  candidates: CandidateStore;
  tx: TxSender;
  discovery: DiscoveryClient;
  settings: ChallengeSettings;
  /** Logger of the Validation subsystem. */
  logger: Logger;
  metrics?: Metrics;
  /** Interval of discovery's pending poll; also the unit of the re-check delays. */
  pendingPollMs?: number;
  /** Nodes challenged at the same time (each node at most once at a time). */
  concurrency?: number;
  /** Delay before asking discovery again for a node that had no endpoint (it shows up in the pending list sooner). */
  endpointRecheckMs?: number;
}

export interface ChallengerStats {
  candidates: number;
  inFlight: number;
  challenges: number;
  reports: number;
  approved: number;
  rejected: number;
}

/**
 * Decides and reports challenges. Feed it with `handleEvent` (chain events) and `pollPending` (discovery);
 * `processDue` re-examines waiting candidates. At most one challenge per node runs at a time.
 */
export class Challenger {
  readonly address: string;
  private readonly queue = new Set<string>();
  private readonly active = new Map<string, Promise<void>>();
  private readonly rerun = new Set<string>();
  /** Nodes the chain says need nothing from us (decided, reported, self), until an event about them. */
  private readonly settled = new Map<string, string>();
  /** Last note logged per node: repeats go to debug. */
  private readonly lastNote = new Map<string, string>();
  private readonly idleWaiters: Array<() => void> = [];
  /** Quick endpoint checks made per node since its last chain event (ENDPOINT_QUICK_CHECKS_MS). */
  private readonly endpointChecks = new Map<string, number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly abort = new AbortController();
  private stopped = false;
  private readonly stats = { challenges: 0, reports: 0, approved: 0, rejected: 0 };
  private readonly metric;
  /** Backoff and log lines while discovery's pending list cannot be read. */
  private readonly pendingHealth: LoopHealth;

  constructor(private readonly options: ChallengerOptions) {
    if (!options.chain.wallet) throw new Error("the challenger needs the validator's key");
    this.address = options.chain.wallet.address;
    const m = options.metrics;
    this.metric = m && {
      challenges: m.counter("validator_challenges_total", "Challenges decided, by outcome", ["outcome"]),
      reports: m.counter("validator_reports_total", "Reports sent to ChallengeBoard, by result", ["approved", "result"]),
      elapsed: m.histogram("validator_challenge_elapsed_ms", "Time nodes took to answer", [], [50, 100, 250, 500, 1000, 2500, 5000, 10_000, 15_000, 30_000]),
      candidates: m.gauge("validator_candidates", "Nodes waiting to be challenged"),
    };
    this.metric?.candidates.set(options.candidates.count());
    this.pendingHealth = new LoopHealth({ what: "discovery pending poll", logger: options.logger, intervalMs: this.pendingPollMs });
  }

  get pendingPollMs(): number {
    return this.options.pendingPollMs ?? 2_000;
  }

  /** How long to wait before the next pending poll: the interval, or a backoff while polls fail. */
  get nextPendingPollMs(): number {
    return this.pendingHealth.delayMs;
  }

  /** Chain events that may make a node worth challenging. */
  async handleEvent(event: ChainEvent): Promise<void> {
    const relevant =
      (event.contract === "MinerRegistry" && (event.name === "NodeRegistered" || event.name === "CapabilitiesUpdated")) ||
      (event.contract === "ChallengeBoard" && event.name === "ChallengeRoundStarted");
    if (!relevant) return;
    this.consider(String(event.args.node), event.name, { block: event.blockNumber });
  }

  /** Queues `node` (persisted first, so a restart does not lose it) and starts looking at it. */
  consider(node: string, source: string, fields: Record<string, unknown> = {}): void {
    if (this.stopped || !isAddress(node)) return;
    const address = getAddress(node);
    if (source === "discovery") {
      // Discovery lists every unvalidated node at each poll: skip those the chain already settled for us,
      // and those waiting for something other than their endpoint (a cooldown, a retry).
      if (this.settled.has(address)) return;
      const existing = this.options.candidates.get(address);
      if (existing && existing.waiting !== null && existing.waiting !== "endpoint" && existing.retryAt > Date.now()) return;
    } else {
      this.settled.delete(address);
      this.endpointChecks.delete(address);
    }
    this.options.candidates.add(address, source);
    this.options.logger.debug({ target: address, source, ...fields }, "candidate queued");
    this.metric?.candidates.set(this.options.candidates.count());
    this.schedule(address);
  }

  /** One poll of discovery's pending list; then every candidate due is looked at. */
  async pollPending(): Promise<void> {
    if (this.stopped) return;
    try {
      const nodes = await this.options.discovery.pending();
      this.pendingHealth.succeeded();
      for (const node of nodes) this.consider(node, "discovery");
    } catch (error) {
      this.pendingHealth.failed(error);
    }
    this.processDue();
  }

  /** Looks at every stored candidate whose wait is over. */
  processDue(): void {
    for (const node of this.options.candidates.due(Date.now())) this.schedule(node);
  }

  /** Resolves when no challenge is running or queued. */
  idle(): Promise<void> {
    if (this.active.size === 0 && this.queue.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Abandons running challenges (nothing is reported for them; they stay queued for the next start) and waits for them. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.queue.clear();
    this.rerun.clear();
    this.abort.abort();
    await Promise.allSettled([...this.active.values()]);
  }

  status(): ChallengerStats {
    return { candidates: this.options.candidates.count(), inFlight: this.active.size, ...this.stats };
  }

  private schedule(node: string): void {
    if (this.stopped) return;
    if (this.active.has(node)) {
      this.rerun.add(node);
      return;
    }
    this.queue.add(node);
    this.pump();
  }

  private pump(): void {
    const limit = this.options.concurrency ?? 4;
    for (const node of this.queue) {
      if (this.active.size >= limit || this.stopped) break;
      this.queue.delete(node);
      const task = this.examine(node)
        .catch((error) => {
          this.options.logger.error({ target: node, err: (error as Error).message }, "challenge failed unexpectedly; will retry");
          this.deferSafely(node, this.pendingPollMs, "error");
        })
        .finally(() => {
          this.active.delete(node);
          if (this.rerun.delete(node) && !this.stopped) this.queue.add(node);
          this.metric?.candidates.set(this.safeCount());
          this.pump();
          if (this.active.size === 0 && this.queue.size === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
        });
      this.active.set(node, task);
    }
  }

  /** What the chain says about `node` for this validator. */
  private async assess(node: string): Promise<Assessment> {
    const { registry, challengeBoard } = this.options.chain.contracts;
    const [provider, capsId] = await registry.registrationOf(node);
    if (capsId === 0n) return { action: "drop", why: "not registered" };
    const me = this.address;
    if (node === me || getAddress(provider) === me) {
      return { action: "drop", why: "self: this validator is the node or its provider", fields: { provider } };
    }
    const challenge = await challengeBoard.challengeOf(node);
    const status = Number(challenge.status);
    const fields = { capsId: capsId.toString(), round: challenge.round.toString(), status: STATUS_NAMES[status] };
    if (challenge.capsId === capsId) {
      if (status === ChallengeStatus.Validated || status === ChallengeStatus.Rejected) {
        return { action: "drop", why: `round ${challenge.round} already decided: ${STATUS_NAMES[status]}`, fields };
      }
      const mine = await challengeBoard.reportOf(node, challenge.round, me);
      if (mine !== ZeroHash) return { action: "drop", why: `already reported in round ${challenge.round}`, fields: { ...fields, reported: mine } };
      return { action: "ready", provider, capsId, round: challenge.round };
    }
    // A new declaration: our report opens its round, unless the last rejection's cooldown still runs.
    if (status === ChallengeStatus.Rejected) {
      const [cooldown, block] = await Promise.all([challengeBoard.retryCooldown(), this.options.chain.provider.getBlock("latest")]);
      const availableAt = challenge.rejectedAt + cooldown;
      const now = BigInt(block?.timestamp ?? 0);
      if (now < availableAt) {
        const retryInMs = Math.min(Number(availableAt - now) * 1000, 3_600_000);
        return { action: "wait", why: "retry cooldown after the last rejection", waiting: "cooldown", retryInMs, fields: { ...fields, availableAt: availableAt.toString(), chainTime: now.toString() } };
      }
    }
    return { action: "ready", provider, capsId, round: challenge.round + 1n };
  }

  private async examine(node: string): Promise<void> {
    const logger = this.options.logger;
    const first = await this.assess(node);
    if (first.action !== "ready") return this.settle(node, first);
    const { capsId } = first;

    if (await this.earlierReportInFlight(node, capsId)) return;

    let endpoint: string | undefined;
    try {
      endpoint = await this.options.discovery.endpointOf(node);
    } catch (error) {
      this.note(node, "cannot read the endpoint from discovery", { err: (error as Error).message }, "warn");
      this.deferSafely(node, this.pendingPollMs, "discovery");
      return;
    }
    if (!endpoint) {
      // Nodes usually upload their endpoint after registering: wait, it appears in the pending list.
      this.note(node, "no endpoint at discovery yet: waiting", { capsId: capsId.toString() });
      this.deferSafely(node, this.options.endpointRecheckMs ?? 15 * this.pendingPollMs, "endpoint");
      this.checkEndpointSoon(node);
      return;
    }
    this.endpointChecks.delete(node);

    const settings = this.options.settings;
    this.lastNote.delete(node);
    logger.info(
      { target: node, capsId: capsId.toString(), round: first.round.toString(), endpoint, n: settings.n, rounds: settings.rounds, deadlineMs: settings.deadlineMs, maxAttempts: settings.attempts },
      "challenging node",
    );
    let verdict: Verdict;
    try {
      verdict = await runChallenge({
        signer: this.options.chain.wallet!,
        chainId: this.options.chain.chainId,
        node,
        endpoint,
        settings,
        logger,
        signal: this.abort.signal,
      });
    } catch (error) {
      if (error instanceof ChallengeStoppedError) {
        logger.info({ target: node }, "validator stopping: challenge abandoned, node stays queued");
        return;
      }
      throw error;
    }
    this.stats.challenges++;
    this.metric?.challenges.inc({ outcome: verdict.kind });
    if (verdict.elapsedMs !== undefined) this.metric?.elapsed.observe(verdict.elapsedMs);

    const hash = verdict.approved
      ? approvalHash({
          chainId: this.options.chain.chainId,
          board: this.options.chain.deployment.contracts.ChallengeBoard.address,
          node,
          capsId,
          resultHash: verdict.resultHash!,
        })
      : reasonHash(verdict.reason!);
    const decision = {
      target: node,
      capsId: capsId.toString(),
      decision: verdict.approved ? "approve" : "reject",
      kind: verdict.kind,
      n: settings.n,
      rounds: settings.rounds,
      elapsedMs: verdict.elapsedMs ?? null,
      deadlineMs: settings.deadlineMs,
      verified: verdict.verified ?? null,
      attempts: verdict.attempts,
      maxAttempts: settings.attempts,
      challengeId: verdict.params.challengeId,
      ...(verdict.approved ? { resultHash: verdict.resultHash, reportHash: hash } : { reason: verdict.reason, reasonHash: hash }),
    };
    logger.info(decision, verdict.approved ? "challenge passed: approving" : `challenge failed: rejecting: ${verdict.reason}`);
    await this.report(node, capsId, verdict, hash, decision);
  }

  /** A report we sent before a restart that is still waiting to be mined: wait for it instead of sending another. */
  private async earlierReportInFlight(node: string, capsId: bigint): Promise<boolean> {
    const sent = this.options.candidates.report(node, capsId);
    if (!sent || sent.state !== "sent") return false;
    const provider = this.options.chain.provider;
    const tx = await provider.getTransaction(sent.txHash);
    if (!tx) return false; // dropped: challenge again
    if (tx.blockNumber === null) {
      this.note(node, "an earlier report is still waiting to be mined", { tx: sent.txHash }, "info");
      this.deferSafely(node, this.pendingPollMs, "tx");
      return true;
    }
    return false; // mined; assess() already read its outcome (a reverted one leaves the round open)
  }

  private async report(node: string, capsId: bigint, verdict: Verdict, hash: string, decision: Record<string, unknown>): Promise<void> {
    const logger = this.options.logger;
    // Re-read right before sending: a restart, another instance or a new declaration may have got there first.
    const again = await this.assess(node);
    if (again.action !== "ready" || again.capsId !== capsId) {
      logger.info(
        { target: node, capsId: capsId.toString(), now: again.action === "ready" ? again.capsId.toString() : again.why },
        "chain state changed during the challenge: not reporting",
      );
      if (again.action === "ready") this.deferSafely(node, 0, "declaration"); // challenge the new declaration
      else this.settle(node, again);
      return;
    }
    const board = this.options.chain.contracts.challengeBoard;
    try {
      const receipt = await this.options.tx.send(
        "reportChallenge",
        async () => {
          const tx = await board.reportChallenge(node, capsId, verdict.approved, hash);
          this.options.candidates.recordSent({ node, capsId, approved: verdict.approved, hash, reason: verdict.reason ?? null, txHash: tx.hash });
          return tx;
        },
        { subsystem: "Validation", target: node, capsId: capsId.toString(), approved: verdict.approved },
      );
      this.options.candidates.markConfirmed(node, capsId);
      let round: string | undefined;
      let outcome: string | undefined;
      for (const entry of receipt.logs) {
        const parsed = (() => {
          try {
            return board.interface.parseLog(entry);
          } catch {
            return null;
          }
        })();
        if (!parsed) continue;
        if (parsed.name === "ChallengeApproved" || parsed.name === "ChallengeRejected") round = String(parsed.args.round);
        if (parsed.name === "NodeValidated" || parsed.name === "NodeRejected") outcome = parsed.name;
      }
      this.stats.reports++;
      if (verdict.approved) this.stats.approved++;
      else this.stats.rejected++;
      this.metric?.reports.inc({ approved: String(verdict.approved), result: "confirmed" });
      logger.info({ ...decision, round, outcome: outcome ?? "round still open", tx: receipt.hash, block: receipt.blockNumber }, "report confirmed on chain");
      this.settled.set(node, "reported");
      this.options.candidates.remove(node);
    } catch (error) {
      if (!(error instanceof TxRevertedError)) throw error;
      this.metric?.reports.inc({ approved: String(verdict.approved), result: error.errorName ?? "reverted" });
      const fields = { target: node, capsId: capsId.toString(), revert: error.message };
      if (error.errorName && ALREADY_DONE.has(error.errorName)) {
        logger.info(fields, "report refused: already decided or already reported; moving on");
        this.settled.set(node, error.errorName);
        this.options.candidates.remove(node);
      } else if (error.errorName === "ChallengeBoardStaleDeclaration") {
        logger.info(fields, "report refused: a newer declaration replaced the one challenged; moving on");
        this.deferSafely(node, 0, "declaration");
      } else if (error.errorName === "ChallengeBoardNodeNotRegistered") {
        logger.info(fields, "report refused: node no longer registered; moving on");
        this.options.candidates.remove(node);
      } else {
        logger.error(fields, "report refused by the chain; will look at the node again later");
        this.deferSafely(node, 15 * this.pendingPollMs, "error");
      }
    }
  }

  /** Looks at `node` again after the next of its quick endpoint checks, if any is left. */
  private checkEndpointSoon(node: string): void {
    const made = this.endpointChecks.get(node) ?? 0;
    if (this.stopped || made >= ENDPOINT_QUICK_CHECKS_MS.length) return;
    this.endpointChecks.set(node, made + 1);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.schedule(node);
    }, Math.min(ENDPOINT_QUICK_CHECKS_MS[made], this.pendingPollMs));
    timer.unref();
    this.timers.add(timer);
  }

  private settle(node: string, assessment: Exclude<Assessment, { action: "ready" }>): void {
    if (assessment.action === "drop") {
      this.endpointChecks.delete(node);
      this.note(node, `skip: ${assessment.why}`, assessment.fields ?? {});
      this.settled.set(node, assessment.why);
      this.options.candidates.remove(node);
    } else {
      this.note(node, `wait: ${assessment.why}`, { ...assessment.fields, retryInMs: assessment.retryInMs });
      this.deferSafely(node, assessment.retryInMs, assessment.waiting);
    }
  }

  private deferSafely(node: string, delayMs: number, waiting: string): void {
    try {
      this.options.candidates.defer(node, Date.now() + delayMs, waiting);
    } catch (error) {
      this.options.logger.warn({ target: node, err: (error as Error).message }, "cannot persist the candidate's wait");
    }
  }

  private safeCount(): number {
    try {
      return this.options.candidates.count();
    } catch {
      return 0;
    }
  }

  /** Logs a decision about `node` at `level`, or at debug when it repeats the previous one. */
  private note(node: string, message: string, fields: Record<string, unknown>, level: "debug" | "info" | "warn" = "info"): void {
    const repeated = this.lastNote.get(node) === message;
    this.lastNote.set(node, message);
    const logger = this.options.logger;
    logger[repeated ? "debug" : level]({ target: node, ...fields }, message);
  }
}
