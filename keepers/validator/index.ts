/**
 * The validator keeper: challenges nodes' hardware and reports the results to ChallengeBoard
 * (challenger.ts). Its HTTP server only answers /health and /metrics.
 *
 *   startValidator(options)  programmatic start (tests, devnet)
 *   validatorCommand()       `computenet validator`: flags + env, validated, signal handling
 */
import type { AddressInfo } from "node:net";
import path from "node:path";
import { Command, Option } from "commander";
import type { NonceManager } from "ethers";
import { z } from "zod";
import { type Chain, EventFollower, connectChain, contractInterfaces, headBlock, logChainSettings } from "../shared/chain.js";
import { DEFAULT_MAX_CHALLENGE_N, DEFAULT_MAX_CHALLENGE_ROUNDS } from "../shared/challenge.js";
import { addCommonOptions, addFeeOptions, COMMON_OPTIONS, commonSchema, ConfigError, integerOption, loadPrivateKey, type OptionNames, parseConfig, optionNames } from "../shared/config.js";
import { type App, closeServer, createApp, listen } from "../shared/http.js";
import { Lifecycle } from "../shared/lifecycle.js";
import { type Logger, createLogger, subsystem } from "../shared/log.js";
import { LoopHealth } from "../shared/loop-health.js";
import { type Metrics, createMetrics, followerMetrics, txMetrics } from "../shared/metrics.js";
import { KeeperStore } from "../shared/store.js";
import { TxSender } from "../shared/tx.js";
import { DiscoveryClient as SharedDiscoveryClient } from "../shared/discovery-client.js";
import { EpochClock, advanceIfDue, fixClaimBeaconsIfDue, returnUnclaimedIfDue } from "../shared/epochs.js";
import { SignedClient } from "../shared/http.js";
import { DEFAULT_POC_PARAMS, type PocParams } from "../shared/poc.js";
import { PocVerifier } from "../shared/poc-verify.js";
import { CandidateStore } from "./candidates.js";
import { type ChallengeSettings, Challenger, DEFAULT_CHALLENGE_SETTINGS, DiscoveryClient } from "./challenger.js";

export { approvalHash, reasonHash, runChallenge, Challenger, DiscoveryClient, type Verdict } from "./challenger.js";

export const DEFAULT_VALIDATOR_PORT = 8710;
export const DEFAULT_PENDING_POLL_MS = 2_000;

export interface ValidatorOptions {
  rpcUrl: string;
  deploymentFile: string;
  /** Holds validator.sqlite (event cursor, candidates, reports sent). */
  dataDir: string;
  /** A VALIDATOR_ROLE holder's key. */
  privateKey: string;
  /** Discovery's base URL. */
  discoveryUrl: string;
  /** Where /health and /metrics listen (default 127.0.0.1:8710; port 0 = any free port). */
  host?: string;
  port?: number;
  /** Chain polling interval (default: the chain's profile, keepers/shared/profile.ts). */
  pollMs?: number;
  /**
   * Blocks to stay behind the head, and confirmations to wait for a report (at least 1). Default: the
   * chain's profile.
   */
  confirmations?: number;
  /** Cap on every transaction's max fee per gas, gwei (default: none). */
  maxFeeGwei?: string | number;
  logLevel?: string;
  /** Challenge size, Freivalds rounds, answer deadline, attempts and first retry delay (defaults 256, 2, 15000, 5, 2000; the delay doubles per try). */
  challengeN?: number;
  challengeRounds?: number;
  deadlineMs?: number;
  attempts?: number;
  retryDelayMs?: number;
  /** Interval of discovery's pending poll (default 2000 ms). */
  pendingPollMs?: number;
  /** Nodes challenged at the same time (default 4). */
  concurrency?: number;
  /** PoC puzzle parameters (a network constant: every keeper of a network must use the same). */
  pocParams?: PocParams;
  /** Leaves sampled per PoC commitment (default 200). */
  pocSampleSize?: number;
  /** Use this logger instead of creating one (tests capture logs with it). */
  logger?: Logger;
}

export interface ValidatorService {
  /** Where /health and /metrics answer. */
  url: string;
  /** The validator's address. */
  address: string;
  chain: Chain;
  store: KeeperStore;
  candidates: CandidateStore;
  challenger: Challenger;
  follower: EventFollower;
  settings: ChallengeSettings;
  logger: Logger;
  metrics: Metrics;
  stop(): Promise<void>;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Starts the validator; refuses (ConfigError) a key that does not hold VALIDATOR_ROLE on chain. */
export async function startValidator(options: ValidatorOptions): Promise<ValidatorService> {
  const settings: ChallengeSettings = {
    n: options.challengeN ?? DEFAULT_CHALLENGE_SETTINGS.n,
    rounds: options.challengeRounds ?? DEFAULT_CHALLENGE_SETTINGS.rounds,
    deadlineMs: options.deadlineMs ?? DEFAULT_CHALLENGE_SETTINGS.deadlineMs,
    attempts: options.attempts ?? DEFAULT_CHALLENGE_SETTINGS.attempts,
    retryDelayMs: options.retryDelayMs ?? DEFAULT_CHALLENGE_SETTINGS.retryDelayMs,
  };
  const pendingPollMs = options.pendingPollMs ?? DEFAULT_PENDING_POLL_MS;

  const chain = await connectChain({
    rpcUrl: options.rpcUrl,
    deploymentFile: options.deploymentFile,
    privateKey: options.privateKey,
    pollingIntervalMs: options.pollMs,
    confirmations: options.confirmations,
    maxFeeGwei: options.maxFeeGwei,
  });
  const { pollMs, confirmations } = chain.settings;
  const address = chain.wallet!.address;
  const logger = options.logger ?? createLogger({ component: "validator", node: address, level: options.logLevel });
  const startup = subsystem(logger, "Startup");
  logChainSettings(startup, chain);
  const validation = subsystem(logger, "Validation");

  let store: KeeperStore | undefined;
  let server: App | undefined;
  try {
    const board = chain.contracts.challengeBoard;
    const role = await board.VALIDATOR_ROLE();
    if (!(await board.hasRole(role, address))) {
      throw new ConfigError([
        `${COMMON_OPTIONS.keyFile.flag} (${COMMON_OPTIONS.keyFile.env}) / CN_PRIVATE_KEY: ${address} does not hold VALIDATOR_ROLE on ` +
          `ChallengeBoard ${await board.getAddress()} (chain ${chain.chainId}); the board's admin must grant it before this key can validate`,
      ]);
    }

    store = new KeeperStore(path.join(options.dataDir, "validator.sqlite"));
    const candidates = new CandidateStore(store.db);
    const metrics = createMetrics("validator");
    const tx = new TxSender({
      logger: validation,
      interfaces: contractInterfaces(),
      signer: chain.signer as NonceManager,
      confirmations: Math.max(1, confirmations),
      metrics: txMetrics(metrics, "validator"),
    });
    const discovery = new DiscoveryClient(chain.wallet!, chain.chainId, options.discoveryUrl);
    const challenger = new Challenger({
      chain,
      candidates,
      tx,
      discovery,
      settings,
      logger: validation,
      metrics,
      pendingPollMs,
      concurrency: options.concurrency,
    });
    // Proof of Compute: while the bootstrap set decides (no power in the epoch before), VALIDATOR_ROLE holders
    // on ProofOfCompute judge the commitments; the verifier checks its weight itself and skips otherwise.
    const clock = new EpochClock(chain.contracts.epochManager);
    const pocLog = subsystem(logger, "PoC");
    const verifier = new PocVerifier({
      chain,
      wallet: chain.wallet!,
      tx,
      clock,
      discovery: new SharedDiscoveryClient(chain.wallet!, chain.chainId, options.discoveryUrl),
      client: new SignedClient(chain.wallet!, chain.chainId, 10_000),
      params: options.pocParams ?? DEFAULT_POC_PARAMS,
      sampleSize: options.pocSampleSize ?? 200,
      logger: pocLog,
      metrics,
    });
    const follower = new EventFollower({
      chain,
      store,
      name: "validator",
      logger: subsystem(logger, "Chain"),
      handle: async (event) => {
        if (event.contract === "ProofOfCompute") {
          if (event.name === "PocCommitted") {
            const epoch = BigInt(event.args.epoch);
            const node = String(event.args.node);
            verifier.verify(epoch, node).catch((error) => pocLog.warn({ epoch: epoch.toString(), miner: node, err: (error as Error).message }, "PoC check failed"));
          }
          return;
        }
        await challenger.handleEvent(event);
      },
      contracts: ["MinerRegistry", "ChallengeBoard", "ProofOfCompute"],
      pollMs,
      confirmations,
    });

    followerMetrics(metrics, "validator", { head: () => headBlock(chain.provider), cursor: () => follower.cursor, confirmations });
    const app = createApp({
      logger,
      metrics,
      health: () => ({ validator: address, cursor: follower.cursor, ...challenger.status() }),
    });
    server = app;
    const bound = (await listen(app, options.port ?? DEFAULT_VALIDATOR_PORT, options.host ?? "127.0.0.1")).address() as AddressInfo;
    const host = bound.family === "IPv6" ? `[${bound.address}]` : bound.address;
    const url = `http://${host}:${bound.port}`;

    // Two loops, each awaited on stop: the event follower (from the persisted cursor) and discovery's pending poll.
    const stopping = new AbortController();
    const followLoop = (async () => {
      while (!stopping.signal.aborted) {
        await follower.poll();
        await sleep(follower.nextPollDelayMs, stopping.signal);
      }
    })();
    // Epochs move on when due whoever calls: the validator advances them too.
    const epochHealth = new LoopHealth({ what: "epoch advance", logger: subsystem(logger, "Epochs"), intervalMs: 1000 });
    const epochLoop = (async () => {
      while (!stopping.signal.aborted) {
        let delayMs: number;
        try {
          await advanceIfDue(clock, chain.contracts.epochManager, tx, subsystem(logger, "Epochs"));
          const { epoch } = await clock.current();
          await fixClaimBeaconsIfDue(clock, chain.contracts.epochManager, tx, subsystem(logger, "Epochs"), epoch);
          await returnUnclaimedIfDue(clock, chain.contracts.rewardVault, tx, subsystem(logger, "Rewards"), epoch);
          delayMs = epochHealth.succeeded();
        } catch (error) {
          delayMs = epochHealth.failed(error);
        }
        await sleep(delayMs, stopping.signal);
      }
    })();
    const pendingLoop = (async () => {
      while (!stopping.signal.aborted) {
        await challenger.pollPending();
        await sleep(challenger.nextPendingPollMs, stopping.signal);
      }
    })();
    // Candidates left from before a restart (their events are behind the cursor already).
    challenger.processDue();

    startup.info(
      {
        url,
        validator: address,
        chainId: chain.chainId.toString(),
        challengeBoard: chain.deployment.contracts.ChallengeBoard.address,
        cursor: follower.cursor,
        queued: candidates.count(),
        discoveryUrl: options.discoveryUrl,
        ...settings,
        pendingPollMs,
        pollMs,
        confirmations,
      },
      "validator started",
    );

    let stopped: Promise<void> | undefined;
    const openStore = store;
    const openServer = server;
    return {
      url,
      address,
      chain,
      store,
      candidates,
      challenger,
      follower,
      settings,
      logger,
      metrics,
      stop() {
        stopped ??= (async () => {
          stopping.abort();
          await Promise.allSettled([followLoop, pendingLoop, epochLoop]);
          await verifier.stop();
          follower.stop();
          await challenger.stop();
          await closeServer(openServer);
          openStore.close();
          chain.provider.destroy();
          startup.info({ validator: address }, "validator stopped");
        })();
        return stopped;
      },
    };
  } catch (error) {
    if (server) await closeServer(server);
    store?.close();
    chain.provider.destroy();
    throw error;
  }
}

// ------------------------------------------------------------------------------------------ command

export const VALIDATOR_OPTIONS: OptionNames = { ...COMMON_OPTIONS, ...optionNames("discoveryUrl", "challengeN", "challengeRounds", "challengeDeadlineMs", "challengeAttempts", "challengeRetryDelayMs", "pendingPollMs") };

export const validatorSchema = commonSchema.extend({
  discoveryUrl: z.url({
    protocol: /^https?$/,
    error: (issue) => (issue.input === undefined ? "is required (discovery's base URL, e.g. http://127.0.0.1:8700)" : "must be an http(s) URL"),
  }),
  challengeN: integerOption(1, DEFAULT_MAX_CHALLENGE_N),
  challengeRounds: integerOption(1, DEFAULT_MAX_CHALLENGE_ROUNDS),
  challengeDeadlineMs: integerOption(100, 600_000),
  challengeAttempts: integerOption(1, 20),
  challengeRetryDelayMs: integerOption(0, 600_000),
  pendingPollMs: integerOption(100, 3_600_000),
});

export type ValidatorConfig = z.infer<typeof validatorSchema>;

/** `computenet validator`. Exit code 2 with the reasons on stderr for a bad configuration, 1 for other start failures. */
export function validatorCommand(): Command {
  const command = new Command("validator").description("challenge nodes' hardware and report the results to ChallengeBoard");
  addCommonOptions(command, { port: DEFAULT_VALIDATOR_PORT, dataDir: "data/validator" });
  addFeeOptions(command);
  const o = VALIDATOR_OPTIONS;
  const d = DEFAULT_CHALLENGE_SETTINGS;
  command
    .addOption(new Option(`${o.discoveryUrl.flag} <url>`, "discovery service base URL (required)").env(o.discoveryUrl.env!))
    .addOption(new Option(`${o.challengeN.flag} <n>`, "challenge matrix size n").env(o.challengeN.env!).default(String(d.n)))
    .addOption(new Option(`${o.challengeRounds.flag} <rounds>`, "Freivalds rounds").env(o.challengeRounds.env!).default(String(d.rounds)))
    .addOption(new Option(`${o.challengeDeadlineMs.flag} <ms>`, "time a node has to answer").env(o.challengeDeadlineMs.env!).default(String(d.deadlineMs)))
    .addOption(
      new Option(`${o.challengeAttempts.flag} <n>`, "tries before rejecting an unreachable node (or one answering non-2xx)").env(o.challengeAttempts.env!).default(String(d.attempts)),
    )
    .addOption(new Option(`${o.challengeRetryDelayMs.flag} <ms>`, "pause before the second try (doubles before each later one)").env(o.challengeRetryDelayMs.env!).default(String(d.retryDelayMs)))
    .addOption(
      new Option(`${o.pendingPollMs.flag} <ms>`, "interval of discovery's pending-node poll").env(o.pendingPollMs.env!).default(String(DEFAULT_PENDING_POLL_MS)),
    )
    .action(async (raw: Record<string, unknown>) => {
      let service: ValidatorService;
      try {
        const config = parseConfig(validatorSchema, raw, VALIDATOR_OPTIONS);
        const privateKey = loadPrivateKey({ keyFile: config.keyFile, required: true })!;
        service = await startValidator({
          rpcUrl: config.rpcUrl,
          deploymentFile: config.deployment,
          dataDir: config.dataDir,
          privateKey,
          discoveryUrl: config.discoveryUrl,
          host: config.host,
          port: config.port,
          pollMs: config.pollMs,
          confirmations: config.confirmations,
          maxFeeGwei: config.maxFeeGwei,
          logLevel: config.logLevel,
          challengeN: config.challengeN,
          challengeRounds: config.challengeRounds,
          deadlineMs: config.challengeDeadlineMs,
          attempts: config.challengeAttempts,
          retryDelayMs: config.challengeRetryDelayMs,
          pendingPollMs: config.pendingPollMs,
        });
      } catch (error) {
        if (error instanceof ConfigError) {
          console.error(error.message);
          process.exit(2);
        }
        console.error(`validator: cannot start: ${(error as Error).message}`);
        process.exit(1);
      }
      const lifecycle = new Lifecycle(service.logger);
      lifecycle.onStop("validator", () => service.stop());
      lifecycle.installSignalHandlers();
      console.log(`validator listening on ${service.url}`);
    });
  return command;
}
