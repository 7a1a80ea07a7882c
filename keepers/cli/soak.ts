/**
 * `computenet soak` (`npm run soak`): a bounded soak of the whole network. It starts the devnet's network
 * (cluster.ts: a Hardhat node, the system with one-minute epochs, discovery, two validators, the run's
 * master and N miners as separate processes running real containers), lets tasks flow at a steady rate
 * for `--minutes`, drains, and checks: no task lost (final at the master and on chain, read from the
 * contracts), none final later than the grace period, no keeper's memory growing beyond the bounds, claims
 * made, epochs advancing, heartbeats flowing, no error in the logs and no keeper dying. It prints a
 * progress line every ~30 s, writes soak/last-result.json, docs/soak.md and the README's Soak section,
 * and exits 1 when a check fails. It stops every process it started and removes its miners' containers
 * on exit and on Ctrl-C. The reasoning behind each bound is in soak-checks.ts (and docs/soak.md).
 */
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { Command, Option } from "commander";
import Dockerode from "dockerode";
import { Wallet } from "ethers";
import { z } from "zod";
import { LABEL_INSTANCE } from "../miner/docker-runtime.js";
import { EventFollower, contractInterfaces } from "../shared/chain.js";
import { ConfigError, parseConfig } from "../shared/config.js";
import { createLogger } from "../shared/log.js";
import { KeeperStore } from "../shared/store.js";
import { TxSender } from "../shared/tx.js";
import { devPrivateKey } from "../../scripts/lib/dev-accounts.js";
import { ROOT, runHardhat } from "../../scripts/lib/processes.js";
import { Cluster, DEVNET_ECONOMY } from "./cluster.js";
import { DEMO_IMAGE, dockerReady } from "./devnet.js";
import {
  MASTER_FINAL,
  type RssSample,
  type SoakCheck,
  type SoakResult,
  type SoakTask,
  type MemoryVerdict,
  heapFloors,
  judgeMemory,
  judgeTask,
  percentile,
  readmeSection,
  slopeBound,
  summaryMarkdown,
  warmupMs,
  withReadmeSection,
} from "./soak-checks.js";

interface SoakConfig {
  minutes: number;
  tasksPerMinute: number;
  nodes: number;
  graceSec?: number;
  port?: number;
  heartbeatSec: number;
  sampleSec: number;
  progressSec: number;
  rssGrowthMb: number;
  /** Default: the growth bound over the second half of the flow (slopeBound). */
  rssSlopeMbPerMin?: number;
  resultFile: string;
  summaryFile: string;
  readme: string;
  write: boolean;
}

const schema = z.object({
  minutes: z.coerce.number().min(0.5).max(24 * 60),
  tasksPerMinute: z.coerce.number().positive().max(60),
  nodes: z.coerce.number().int().min(1).max(5),
  graceSec: z.coerce.number().int().min(30).max(3600).optional(),
  port: z.coerce.number().int().min(1).max(65535).optional(),
  heartbeatSec: z.coerce.number().int().min(1).max(60),
  sampleSec: z.coerce.number().int().min(1).max(60),
  progressSec: z.coerce.number().int().min(5).max(600),
  rssGrowthMb: z.coerce.number().positive(),
  rssSlopeMbPerMin: z.coerce.number().positive().optional(),
  resultFile: z.string().min(1),
  summaryFile: z.string().min(1),
  readme: z.string(),
  write: z.boolean(),
});

/** Emulated PoC speeds of the miners (as the devnet's: a FAKE, the PoC engine sleeps part of the time). */
const THROTTLES = [1, 0.6, 0.35, 0.8, 0.5];
/**
 * The miners' node keys: development accounts 15-19, not the devnet's 10-14. A miner starting up removes the
 * containers labelled with its node address that another installation left, so a devnet or an integration
 * test sharing this Docker engine would otherwise remove the soak's containers (and the soak theirs).
 */
const SOAK_NODE_KEYS = [15, 16, 17, 18, 19].map(devPrivateKey);
/** How long the miners may take to be registered, validated, invited and Healthy. */
const ONBOARD_TIMEOUT_MS = 420_000;
const POLL_MS = 5_000;
const MB = 1024 * 1024;
const TASK_STATUS = ["None", "Assigned", "Completed", "Invalidated", "Expired"] as const;
const DISPUTE_STATUS = ["None", "Open", "Invalidated", "Upheld", "Unresolved"] as const;

export function soakCommand(): Command {
  return new Command("soak")
    .description("a bounded soak: the devnet's network with tasks flowing for --minutes, then checks (lost tasks, memory, claims, epochs, heartbeats, logs)")
    .addOption(new Option("--minutes <n>", "minutes of task flow (after the miners are Healthy; start-up and drain come on top)").default("10"))
    .addOption(new Option("--tasks-per-minute <n>", "tasks submitted per minute, evenly spaced").default("6"))
    .addOption(new Option("--nodes <n>", "miner processes (1-5)").default("3"))
    .addOption(new Option("--grace-sec <sec>", "longest a task may take from submission to final on chain and at the master (default: 2 epochs + the Dispute window + 30 s)"))
    .addOption(new Option("--port <port>", "JSON-RPC port of the Hardhat node (default: a free port; keepers take free ports too)"))
    .addOption(new Option("--heartbeat-sec <sec>", "heartbeat interval of the miners").default("2"))
    .addOption(new Option("--sample-sec <sec>", "interval of the RSS samples").default("10"))
    .addOption(new Option("--progress-sec <sec>", "interval of the progress lines").default("30"))
    .addOption(new Option("--rss-growth-mb <mb>", "bound: RSS at the end of the flow minus RSS after warm-up, per keeper").default("50"))
    .addOption(new Option("--rss-slope-mb-per-min <mb>", "bound: RSS growth rate over the second half of the flow, per keeper (default: the growth bound spread over the second half: 10 for 10 minutes)"))
    .addOption(new Option("--result-file <file>", "where the JSON result goes").default("soak/last-result.json"))
    .addOption(new Option("--summary-file <file>", "where the Markdown summary goes").default("docs/soak.md"))
    .addOption(new Option("--readme <file>", "README whose Soak section (between its soak markers) gets the last result; empty: none").default("README.md"))
    .option("--no-write", "write no result file (print only)")
    .action(async (flags) => {
      let config: SoakConfig;
      try {
        config = parseConfig(schema, flags, {
          minutes: { flag: "--minutes" },
          tasksPerMinute: { flag: "--tasks-per-minute" },
          nodes: { flag: "--nodes" },
          graceSec: { flag: "--grace-sec" },
          port: { flag: "--port" },
          heartbeatSec: { flag: "--heartbeat-sec" },
          sampleSec: { flag: "--sample-sec" },
          progressSec: { flag: "--progress-sec" },
          rssGrowthMb: { flag: "--rss-growth-mb" },
          rssSlopeMbPerMin: { flag: "--rss-slope-mb-per-min" },
        });
      } catch (error) {
        console.error((error as ConfigError).message);
        process.exit(2);
      }
      process.exit(await new Soak(config).run());
    });
}

const clock = () => new Date().toISOString().slice(11, 19);
function line(text: string): void {
  console.log(`[soak ${clock()}] ${text}`);
}
const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
const mmss = (ms: number) => `${Math.floor(ms / 60_000)}:${String(Math.floor((ms % 60_000) / 1000)).padStart(2, "0")}`;

interface TaskAnswer {
  taskId: string;
  node: string | null;
  state: string;
  exitCode: number | null;
  error: string | null;
  status: { error?: string } | null;
  waiting?: string;
  chain?: { taskId: string; epoch: string } | null;
  chainHistory?: Array<{ taskId: string }>;
}

/** Counts of warn / error / fatal lines of one log file, read incrementally. */
class LogScan {
  offset = 0;
  private rest = "";
  readonly counts = { warn: 0, error: 0, fatal: 0 };
  readonly messages = { warn: new Map<string, number>(), error: new Map<string, number>() };

  constructor(readonly file: string) {}

  scan(): void {
    if (!existsSync(this.file)) return;
    const size = statSync(this.file).size;
    if (size <= this.offset) return;
    const fd = openSync(this.file, "r");
    try {
      const buffer = Buffer.alloc(Math.min(size - this.offset, 64 * MB));
      const read = readSync(fd, buffer, 0, buffer.length, this.offset);
      this.offset += read;
      const text = this.rest + buffer.subarray(0, read).toString("utf8");
      const lines = text.split("\n");
      this.rest = lines.pop() ?? "";
      for (const l of lines) this.count(l);
    } finally {
      closeSync(fd);
    }
  }

  private count(text: string): void {
    let level: string;
    let msg: string;
    if (text.startsWith("{")) {
      try {
        const entry = JSON.parse(text) as { level?: string; msg?: string; err?: unknown };
        level = String(entry.level ?? "");
        msg = `${entry.msg ?? ""}${entry.err ? ` (${String(entry.err).slice(0, 120)})` : ""}`;
      } catch {
        return;
      }
    } else if (/^\s*(Uncaught|Unhandled|\w*Error\b|node:internal)/.test(text)) {
      // A crash's stack trace on stderr, not a JSON log line.
      level = "error";
      msg = text.trim().slice(0, 160);
    } else {
      return;
    }
    if (level !== "warn" && level !== "error" && level !== "fatal") return;
    this.counts[level]++;
    const bucket = level === "warn" ? this.messages.warn : this.messages.error;
    // One bucket per kind of message: a revert's arguments (epoch, node, ...) differ from one line to the next.
    const key = msg.replace(/(reverted: \w+)\(.*?\)/g, "$1(…)").slice(0, 200);
    bucket.set(key, (bucket.get(key) ?? 0) + 1);
  }
}

class Soak {
  private readonly logDir = path.join(ROOT, ".soak", new Date().toISOString().replace(/[:.]/g, "-"));
  private cluster: Cluster | undefined;
  private starting: Promise<Cluster> | undefined;
  private follower: EventFollower | undefined;
  private sampler: NodeJS.Timeout | undefined;
  private stopping = false;
  private interrupted = false;
  /** Why the soak could not go on (the Hardhat node died): a failure, not an interruption. */
  private aborted: string | undefined;
  private interruptWake: (() => void) | undefined;
  private readonly startedAt = new Date();
  private readonly samples = new Map<string, RssSample[]>();
  /** V8 heap in use (`nodejs_heap_size_used_bytes` of each keeper's /metrics), sampled with the RSS: a diagnosis, not a check. */
  private readonly heap = new Map<string, RssSample[]>();
  private heapSampling = false;
  /** One-minute load average at each RSS sample. */
  private readonly loads: number[] = [];
  private readonly pids = new Map<string, number>();
  private readonly instances: string[] = [];
  private readonly logs = new Map<string, LogScan>();
  private readonly keeperExits: string[] = [];
  private readonly tasks: SoakTask[] = [];
  private readonly submitErrors: string[] = [];
  private readonly seenEvents = new Set<string>();
  private readonly ev = {
    epochsAdvanced: 0,
    epochsSkipped: 0,
    lastEpoch: 0,
    pocCommitted: 0,
    pocAccepted: 0,
    pocRejected: 0,
    tasksCreated: 0,
    tasksCompleted: 0,
    tasksExpired: 0,
    validations: 0,
    validationsNotReproduced: 0,
    disputesOpened: 0,
    claims: 0,
    claimsForfeited: 0,
    claimsExpired: 0,
    ejections: 0,
  };
  private readonly validationsOf = new Map<string, { n: number; ok: number }>();
  private readonly claimed = new Set<string>();
  private readonly timelines = new Map<string, { end: number; disputeEnd: number; claimEnd: number }>();
  private readonly heartbeatReadings: Array<{ t: number; value: number }> = [];
  private names = new Map<string, string>();
  private flowStart = 0;
  private flowEnd = 0;
  private flowPlannedEnd = 0;
  private graceMs = 0;

  constructor(private readonly config: SoakConfig) {}

  async run(): Promise<number> {
    mkdirSync(this.logDir, { recursive: true });
    const onSignal = (signal: string) => {
      if (this.interrupted) {
        line(`${signal} again: exiting now (processes may be left; see ${path.relative(process.cwd(), this.logDir)})`);
        process.exit(130);
      }
      this.interrupted = true;
      line(`${signal}: stopping the soak; cleaning up (Ctrl-C again to exit at once) ...`);
      this.interruptWake?.();
    };
    process.on("SIGINT", () => onSignal("SIGINT"));
    process.on("SIGTERM", () => onSignal("SIGTERM"));

    let code: number;
    try {
      code = await this.soak();
    } catch (error) {
      if (!this.interrupted) line(`soak failed: ${(error as Error).message}`);
      code = this.interrupted ? 130 : 1;
    }
    await this.cleanup();
    return code;
  }

  /** Sleeps up to `ms`; returns early on an interruption. */
  private async pause(ms: number): Promise<void> {
    if (this.interrupted || this.aborted) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.interruptWake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.interruptWake = undefined;
  }

  private checkInterrupted(): void {
    if (this.interrupted) throw new Error("interrupted");
    if (this.aborted) throw new Error(this.aborted);
  }

  private async soak(): Promise<number> {
    const cfg = this.config;
    const economy = DEVNET_ECONOMY;
    this.graceMs = (cfg.graceSec ?? 2 * economy.epochLength + economy.disputeWindow + 30) * 1000;
    line(`logs: ${path.relative(process.cwd(), this.logDir)}/ (one file per process)`);
    line(
      `plan: ${cfg.minutes} min of tasks at ${cfg.tasksPerMinute}/min over ${cfg.nodes} miners once they are Healthy, then a drain of at most ${this.graceMs / 1000} s (the grace period); ` +
        `RSS every ${cfg.sampleSec} s, a progress line every ${cfg.progressSec} s`,
    );
    // Compiled now rather than inside the deployment: epoch 1 starts 30 s after the parameters are written, and a
    // compilation there (a minute on two busy cores) would put the genesis in the past.
    line("compiling the contracts if they changed ...");
    await runHardhat(["build"], {}, 600_000);
    this.checkInterrupted();
    this.starting = Cluster.start({ logDir: this.logDir, rpcPort: cfg.port, deploymentsRoot: this.logDir, heartbeatSec: cfg.heartbeatSec, economy, nodeKeys: SOAK_NODE_KEYS }, line);
    const cluster = await this.starting;
    this.cluster = cluster;
    this.checkInterrupted();
    this.track("hardhat-node", cluster.node.process.pid);
    void cluster.node.process.once("exit", (code) => {
      if (!this.stopping && !this.interrupted) {
        this.keeperExits.push(`hardhat-node exited (code ${code}) during the soak`);
        line(`the Hardhat node exited (code ${code}): the soak cannot go on`);
        this.aborted = `the Hardhat node exited (code ${code})`;
        this.interruptWake?.();
      }
    });
    this.sampler = setInterval(() => this.sample(), cfg.sampleSec * 1000);

    const docker = await dockerReady(this.logDir, line);
    if (!docker) throw new Error(`no Docker engine with ${DEMO_IMAGE}: the soak runs real containers (as root: npm run docker)`);
    line(`Docker engine ready; task image ${DEMO_IMAGE}`);
    await this.fundRun(cluster);

    this.names = new Map(cluster.keys.nodes.slice(0, cfg.nodes).map((k, i) => [new Wallet(k).address.toLowerCase(), `miner-${i + 1}`]));
    this.follower = new EventFollower({
      chain: cluster.admin,
      store: new KeeperStore(":memory:"),
      name: "soak",
      logger: createLogger({ component: "soak", level: "silent" }),
      pollMs: 1000,
      contracts: ["EpochManager", "ProofOfCompute", "TaskLedger", "Settlement", "TrainingRuns"],
      handle: async (e) => this.onEvent(e),
    });
    this.follower.start();

    await cluster.startDiscovery();
    await Promise.all([cluster.startValidator(0), cluster.startValidator(1)]);
    await cluster.startMaster();
    this.checkInterrupted();
    await Promise.all(Array.from({ length: cfg.nodes }, (_, i) => cluster.startMiner(i, ["--poc-throttle", String(THROTTLES[i])])));
    this.checkInterrupted();
    for (const [name, keeper] of cluster.processes) {
      this.track(name, keeper.child.pid);
      this.logs.set(name, new LogScan(path.join(this.logDir, `${name}.log`)));
      void keeper.exited.then((code) => {
        if (!this.stopping && !this.interrupted) {
          this.keeperExits.push(`${name} exited (code ${code}) during the soak`);
          line(`${name} EXITED (code ${code}) during the soak`);
        }
      });
    }
    for (let i = 0; i < cfg.nodes; i++) {
      const id = this.minerInstance(i);
      if (id) this.instances.push(id);
    }
    line(`discovery, 2 validators, the master and ${cfg.nodes} miners are up (PIDs ${[...this.pids].map(([n, p]) => `${n} ${p}`).join(", ")}); waiting for the miners to be Healthy ...`);

    const buyer = cluster.buyer();
    const onboardDeadline = Date.now() + ONBOARD_TIMEOUT_MS;
    for (;;) {
      this.checkInterrupted();
      const healthy = await buyer
        .call<{ nodes: Array<{ state: string }> }>("GET", "/nodes")
        .then((r) => r.nodes.filter((n) => n.state === "Healthy").length)
        .catch(() => 0);
      if (healthy >= cfg.nodes) break;
      if (Date.now() > onboardDeadline) throw new Error(`only ${healthy} of ${cfg.nodes} miners Healthy after ${ONBOARD_TIMEOUT_MS / 1000} s`);
      await this.pause(1000);
    }

    // The flow: tasks at an even rate, their states polled at the master and on chain.
    this.flowStart = Date.now();
    this.flowPlannedEnd = this.flowStart + cfg.minutes * 60_000;
    const intervalMs = 60_000 / cfg.tasksPerMinute;
    line(`all ${cfg.nodes} miners Healthy: tasks flow for ${cfg.minutes} min, one every ${(intervalMs / 1000).toFixed(1)} s`);
    let nextTask = this.flowStart;
    let nextPoll = this.flowStart;
    let nextProgress = this.flowStart + cfg.progressSec * 1000;
    let drainDeadline = Infinity;
    for (;;) {
      if (this.interrupted || this.aborted) break;
      const now = Date.now();
      while (now >= nextTask && nextTask < this.flowPlannedEnd) {
        await this.submit(buyer);
        nextTask += intervalMs;
      }
      if (this.flowEnd === 0 && now >= this.flowPlannedEnd) {
        this.flowEnd = now;
        const last = this.tasks.at(-1)?.submittedAt ?? now;
        drainDeadline = last + this.graceMs + POLL_MS;
        line(`flow over: ${this.tasks.length} tasks submitted; draining (until every task is final, at most ${Math.round((drainDeadline - now) / 1000)} s)`);
      }
      if (now >= nextPoll) {
        await this.poll(buyer).catch((error) => line(`poll: ${(error as Error).message}`));
        nextPoll = Date.now() + POLL_MS;
      }
      if (now >= nextProgress) {
        await this.progress();
        nextProgress += cfg.progressSec * 1000;
      }
      if (this.flowEnd !== 0) {
        const open = this.tasks.filter((t) => judgeTask(t, this.graceMs).outcome === "lost").length;
        if (open === 0) {
          line("every task is final");
          break;
        }
        if (Date.now() > drainDeadline) {
          line(`grace period over with ${open} task(s) not final`);
          break;
        }
      }
      await this.pause(Math.max(50, Math.min(nextTask, nextPoll, nextProgress) - Date.now()));
    }
    if (this.flowEnd === 0) this.flowEnd = Date.now();
    return this.finish(buyer);
  }

  private async fundRun(cluster: Cluster): Promise<void> {
    // 10,000 CNET are escrowed; each task costs 1 CNET (1 unit at 1 CNET). Long runs get more.
    const planned = Math.ceil(this.config.minutes * this.config.tasksPerMinute * 1.2) + 100;
    if (planned <= 9_000) return;
    const buyer = await cluster.connect(cluster.keys.buyer);
    try {
      const tx = new TxSender({ logger: createLogger({ component: "soak", level: "warn" }), interfaces: contractInterfaces(), signer: buyer.signer as never });
      const amount = BigInt(planned) * 10n ** 18n;
      const runs = buyer.contracts.trainingRuns;
      await tx.send("approve", () => buyer.contracts.token.approve(runs.getAddress(), amount));
      await tx.send("fundRun", () => runs.fundRun(cluster.runId, amount));
      line(`run ${cluster.runId} funded with ${planned} CNET more for ${planned - 100} tasks`);
    } finally {
      buyer.provider.destroy();
    }
  }

  private track(name: string, pid: number | undefined): void {
    if (pid === undefined) return;
    this.pids.set(name, pid);
    this.samples.set(name, []);
  }

  /** The miner's installation id (the label its containers carry), from its store. */
  private minerInstance(i: number): string | undefined {
    try {
      const db = new Database(path.join(this.logDir, `miner-${i + 1}`, "miner.sqlite"), { readonly: true, fileMustExist: true });
      try {
        return (db.prepare("SELECT value FROM kv WHERE key = 'installation'").get() as { value: string } | undefined)?.value;
      } finally {
        db.close();
      }
    } catch {
      return undefined;
    }
  }

  /** One RSS sample of every process, kept in memory and appended to <logDir>/rss.csv (ms, process, bytes). */
  private sample(): void {
    const t = Date.now();
    let csv = "";
    for (const [name, pid] of this.pids) {
      try {
        const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
        if (!kb) continue;
        const rss = Number(kb[1]) * 1024;
        this.samples.get(name)!.push({ t, rss });
        csv += `${t},${name},${rss}\n`;
      } catch {
        // exited (counted elsewhere) or not Linux
      }
    }
    if (csv) appendFileSync(path.join(this.logDir, "rss.csv"), csv);
    this.loads.push(os.loadavg()[0]);
    void this.sampleHeap();
  }

  /** The keepers' V8 heap in use, from their /metrics (skipped while the previous round is still out). */
  private async sampleHeap(): Promise<void> {
    if (this.heapSampling || !this.cluster) return;
    this.heapSampling = true;
    try {
      const t = Date.now();
      let csv = "";
      await Promise.all(
        [...this.cluster.processes.keys()].map(async (name) => {
          const url = this.keeperUrl(name);
          const used = url ? await this.metric(url, "nodejs_heap_size_used_bytes") : null;
          if (used === null) return;
          if (!this.heap.has(name)) this.heap.set(name, []);
          this.heap.get(name)!.push({ t, rss: used });
          csv += `${t},${name},${used}\n`;
        }),
      );
      if (csv) appendFileSync(path.join(this.logDir, "heap.csv"), csv);
    } finally {
      this.heapSampling = false;
    }
  }

  private async submit(buyer: ReturnType<Cluster["buyer"]>): Promise<void> {
    const n = this.tasks.length + this.submitErrors.length + 1;
    // Deterministic (no hostname, no time): validators re-execute it and must reproduce its result hash.
    const body = {
      image: DEMO_IMAGE,
      command: ["sh", "-c", `echo "soak task ${n}"; echo "result ${n}" > /data/result-${n}.txt; sleep 1`],
      memoryMB: 64,
      cpus: 0.5,
      units: 1,
    };
    const submittedAt = Date.now();
    try {
      const t = await buyer.call<{ taskId: string; state: string }>("POST", "/tasks", body);
      this.tasks.push({
        n,
        taskId: t.taskId,
        submittedAt,
        master: { state: t.state, error: null, exitCode: null, node: null, finalAt: null, files: 0, waiting: null },
        ledgerTaskId: null,
        epoch: null,
        ledgerHistory: [],
        chain: { status: null, dispute: null, final: false, finalAt: null, validations: 0, validationsOk: 0 },
      });
    } catch (error) {
      this.submitErrors.push(`task ${n}: ${(error as Error).message}`);
      line(`submission of task ${n} refused: ${(error as Error).message}`);
    }
  }

  /** Reads the master's view of every task not final yet, its files once completed, and the chain's view. */
  private async poll(buyer: ReturnType<Cluster["buyer"]>): Promise<void> {
    const cluster = this.cluster!;
    const open = this.tasks.filter((t) => judgeTask(t, this.graceMs).outcome === "lost");
    if (open.length === 0) return;
    const needMaster = open.filter((t) => !MASTER_FINAL.has(t.master.state) || t.ledgerTaskId === null);
    // Many tasks in flight: one list instead of a request each (the master's rate limit is 20/s per address).
    if (needMaster.length > 20) {
      const { tasks } = await buyer.call<{ tasks: TaskAnswer[] }>("GET", "/tasks");
      const byId = new Map(tasks.map((t) => [t.taskId, t]));
      for (const t of needMaster) {
        const answer = byId.get(t.taskId);
        if (answer) this.applyMaster(t, answer);
      }
    } else {
      for (const t of needMaster) this.applyMaster(t, await buyer.call<TaskAnswer>("GET", `/tasks/${t.taskId}`));
    }
    for (const t of open) {
      if (t.master.state === "completed" && t.master.files === 0) {
        const files = await buyer.call<{ files: unknown[] }>("GET", `/tasks/${t.taskId}/files`);
        t.master.files = files.files.length;
      }
    }
    const chainNow = (await cluster.admin.provider.getBlock("latest"))!.timestamp;
    const ledger = cluster.admin.contracts.taskLedger;
    for (const t of open) {
      if (!MASTER_FINAL.has(t.master.state) || t.ledgerTaskId === null || t.chain.final) continue;
      const id = BigInt(t.ledgerTaskId);
      const [onChain, dispute] = await Promise.all([ledger.taskOf(id), ledger.disputeOf(id)]);
      const status = TASK_STATUS[Number(onChain.status)];
      const disputeStatus = DISPUTE_STATUS[Number(dispute.status)];
      const timeline = await this.timeline(onChain.epoch.toString());
      t.epoch = onChain.epoch.toString();
      t.chain.status = status;
      t.chain.dispute = disputeStatus;
      const v = this.validationsOf.get(t.ledgerTaskId) ?? { n: 0, ok: 0 };
      t.chain.validations = v.n;
      t.chain.validationsOk = v.ok;
      t.chain.final =
        status === "Expired" || status === "Invalidated" || (status === "Completed" && chainNow >= timeline.disputeEnd && disputeStatus !== "Open");
      if (t.chain.final) t.chain.finalAt = Date.now();
    }
  }

  private applyMaster(t: SoakTask, a: TaskAnswer): void {
    t.master.state = a.state;
    t.master.error = a.error ?? a.status?.error ?? null;
    t.master.exitCode = a.exitCode ?? null;
    t.master.node = a.node;
    t.master.waiting = a.waiting ?? null;
    if (MASTER_FINAL.has(a.state) && t.master.finalAt === null) t.master.finalAt = Date.now();
    t.ledgerTaskId = a.chain?.taskId ?? null;
    t.epoch = a.chain?.epoch ?? t.epoch;
    t.ledgerHistory = (a.chainHistory ?? []).map((h) => h.taskId);
  }

  private async timeline(epoch: string): Promise<{ end: number; disputeEnd: number; claimEnd: number }> {
    let t = this.timelines.get(epoch);
    if (!t) {
      const tl = await this.cluster!.admin.contracts.epochManager.timelineOf(BigInt(epoch));
      t = { end: Number(tl.end), disputeEnd: Number(tl.disputeEnd), claimEnd: Number(tl.claimEnd) };
      this.timelines.set(epoch, t);
    }
    return t;
  }

  private async onEvent(e: { name: string; args: Record<string, unknown>; transactionHash: string; logIndex: number }): Promise<void> {
    const key = `${e.transactionHash}:${e.logIndex}`;
    if (this.seenEvents.has(key)) return; // delivery is at-least-once
    this.seenEvents.add(key);
    const a = e.args;
    const ev = this.ev;
    switch (e.name) {
      case "EpochAdvanced":
        ev.epochsAdvanced++;
        ev.lastEpoch = Math.max(ev.lastEpoch, Number(a.epoch));
        break;
      case "EpochsSkipped":
        ev.epochsSkipped += Number(a.lastEpoch) - Number(a.firstEpoch) + 1;
        line(`chain: epochs ${a.firstEpoch}-${a.lastEpoch} SKIPPED (nobody advanced them)`);
        break;
      case "PocCommitted":
        ev.pocCommitted++;
        break;
      case "PocAccepted":
        ev.pocAccepted++;
        break;
      case "PocRejected":
        ev.pocRejected++;
        line(`chain: PoC of ${this.who(a.node)} for epoch ${a.epoch} REJECTED`);
        break;
      case "TaskCreated":
        ev.tasksCreated++;
        break;
      case "TaskCompleted":
        ev.tasksCompleted++;
        break;
      case "TaskExpired":
        ev.tasksExpired++;
        break;
      case "TaskValidated": {
        ev.validations++;
        const id = BigInt(String(a.taskId)).toString();
        const v = this.validationsOf.get(id) ?? { n: 0, ok: 0 };
        v.n++;
        if (a.ok) v.ok++;
        else ev.validationsNotReproduced++;
        this.validationsOf.set(id, v);
        break;
      }
      case "DisputeOpened":
        ev.disputesOpened++;
        line(`chain: dispute opened on task #${a.taskId} by ${this.who(a.accuser)}`);
        break;
      case "Claimed":
        ev.claims++;
        if (a.forfeited) ev.claimsForfeited++;
        this.claimed.add(`${a.epoch}:${String(a.node).toLowerCase()}`);
        break;
      case "ClaimExpired":
        ev.claimsExpired++;
        break;
      case "NodeEjected":
        ev.ejections++;
        line(`chain: ${this.who(a.node)} EJECTED from run ${a.runId}`);
        break;
    }
  }

  private who(address: unknown): string {
    return this.names.get(String(address).toLowerCase()) ?? String(address);
  }

  /** Sum of the values of metric `name` in a Prometheus text exposition. */
  private async metric(url: string, name: string): Promise<number | null> {
    try {
      const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
      let sum = 0;
      let found = false;
      for (const l of text.split("\n")) {
        if (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) {
          sum += Number(l.slice(l.lastIndexOf(" ") + 1));
          found = true;
        }
      }
      return found ? sum : null;
    } catch {
      return null;
    }
  }

  /** Where keeper `name` listens (from the line it prints once it does). */
  private keeperUrl(name: string): string | undefined {
    return /\b(?:discovery|validator|master|miner) listening on (\S+)/.exec(this.cluster!.processes.get(name)?.text ?? "")?.[1];
  }

  private async heartbeats(): Promise<{ master: number | null; sent: number | null; failed: number | null }> {
    const master = await this.metric(this.cluster!.masterUrl, "computenet_master_heartbeats_total");
    if (master !== null) this.heartbeatReadings.push({ t: Date.now(), value: master });
    let sent: number | null = null;
    let failed: number | null = null;
    for (let i = 0; i < this.config.nodes; i++) {
      const url = this.keeperUrl(`miner-${i + 1}`);
      if (!url) continue;
      const [s, f] = await Promise.all([this.metric(url, "computenet_miner_heartbeats_sent"), this.metric(url, "computenet_miner_heartbeats_failed")]);
      if (s !== null) sent = (sent ?? 0) + s;
      if (f !== null) failed = (failed ?? 0) + f;
    }
    return { master, sent, failed };
  }

  private lastRss(name: string): string {
    const s = this.samples.get(name)?.at(-1);
    return s ? String(Math.round(s.rss / MB)) : "–";
  }

  private async progress(): Promise<void> {
    const now = Date.now();
    const verdicts = this.tasks.map((t) => ({ t, v: judgeTask(t, this.graceMs) }));
    const count = (o: string) => verdicts.filter((x) => x.v.outcome === o).length;
    const open = verdicts.filter((x) => x.v.outcome === "lost");
    const oldest = open.length ? Math.round((now - Math.min(...open.map((x) => x.t.submittedAt))) / 1000) : 0;
    const validated = verdicts.filter((x) => x.v.outcome === "completed" && x.t.chain.validationsOk > 0).length;
    const late = verdicts.filter((x) => x.v.late).length;
    for (const scan of this.logs.values()) scan.scan();
    const warn = [...this.logs.values()].reduce((s, l) => s + l.counts.warn, 0);
    const errors = [...this.logs.values()].reduce((s, l) => s + l.counts.error + l.counts.fatal, 0);
    const hb = await this.heartbeats();
    const phase = this.flowEnd === 0 ? `${mmss(now - this.flowStart)}/${mmss(this.flowPlannedEnd - this.flowStart)} flow` : `drain ${mmss(now - this.flowEnd)}`;
    line(
      `${phase} | tasks ${this.tasks.length} sent, ${count("completed")} completed (${validated} validated), ${count("failed") + count("invalidated")} failed, ` +
        `${open.length} in flight${open.length ? ` (oldest ${oldest} s)` : ""}${late ? `, ${late} LATE` : ""} | epoch ${this.ev.lastEpoch}, claims ${this.ev.claims}, heartbeats ${hb.master ?? "–"} | ` +
        `RSS MB ${[...this.pids.keys()].map((n) => `${n} ${this.lastRss(n)}`).join(" ")} | log warn ${warn} error ${errors}` +
        (this.keeperExits.length ? ` | ${this.keeperExits.length} EXITED` : ""),
    );
  }

  /** Final reads, the checks, the result files; returns the exit code. */
  private async finish(buyer: ReturnType<Cluster["buyer"]>): Promise<number> {
    const cluster = this.cluster!;
    const cfg = this.config;
    const economy = cluster.economy;
    const flowMs = this.flowEnd - this.flowStart;
    let nodeStates: Record<string, string> = {};
    let hb: { master: number | null; sent: number | null; failed: number | null } = { master: null, sent: null, failed: null };
    const claimsMissing: string[] = [];
    let claimsChecked = 0;
    if (!this.interrupted && !this.aborted) {
      await this.poll(buyer).catch((error) => line(`final poll: ${(error as Error).message}`));
      // The master's final word on every task, in one list.
      try {
        const { tasks } = await buyer.call<{ tasks: TaskAnswer[] }>("GET", "/tasks");
        const byId = new Map(tasks.map((t) => [t.taskId, t]));
        for (const t of this.tasks) {
          const answer = byId.get(t.taskId);
          if (answer) this.applyMaster(t, answer);
          else t.master.state = "missing from the master's task list";
        }
      } catch (error) {
        line(`final task list: ${(error as Error).message}`);
      }
      try {
        const { nodes } = await buyer.call<{ nodes: Array<{ node: string; state: string }> }>("GET", "/nodes");
        nodeStates = Object.fromEntries(nodes.map((n) => [this.who(n.node), n.state]));
      } catch (error) {
        line(`node states: ${(error as Error).message}`);
      }
      hb = await this.heartbeats();
      // The events up to the head (validations counted when a task became final may have lagged by a poll).
      await this.follower!.poll();
      for (const t of this.tasks) {
        const v = t.ledgerTaskId === null ? undefined : this.validationsOf.get(t.ledgerTaskId);
        if (v) [t.chain.validations, t.chain.validationsOk] = [v.n, v.ok];
      }
      // Claims: every miner with power in an epoch whose Claim window closed claimed it.
      const chainNow = (await cluster.admin.provider.getBlock("latest"))!.timestamp;
      const poc = cluster.admin.contracts.proofOfCompute;
      for (let epoch = 1; epoch <= this.ev.lastEpoch; epoch++) {
        const tl = await this.timeline(String(epoch));
        if (tl.claimEnd > chainNow) continue;
        for (const [address, name] of this.names) {
          if ((await poc.powerOf(BigInt(epoch), address)) === 0n) continue;
          claimsChecked++;
          if (!this.claimed.has(`${epoch}:${address}`)) claimsMissing.push(`epoch ${epoch} ${name}`);
        }
      }
    }
    for (const scan of this.logs.values()) scan.scan();
    const logsDuringSoak = new Map([...this.logs].map(([n, l]) => [n, { ...l.counts }]));

    // Stop everything, then judge memory on the complete series.
    await this.cleanup();

    const verdicts = this.tasks.map((t) => ({ t, v: judgeTask(t, this.graceMs) }));
    const of = (o: string) => verdicts.filter((x) => x.v.outcome === o);
    const latencies = verdicts.map((x) => x.v.latencyMs).filter((l): l is number => l !== null).map((l) => Math.round(l / 100) / 10);
    const completed = of("completed");
    const lost = of("lost");
    const late = verdicts.filter((x) => x.v.late);
    const failedTasks = [...of("failed"), ...of("invalidated")];

    const bounds = { growthMB: cfg.rssGrowthMb, slopeMBPerMin: cfg.rssSlopeMbPerMin ?? slopeBound(cfg.rssGrowthMb, flowMs) };
    const warmup = warmupMs(flowMs);
    const perProcess: SoakResult["memory"]["perProcess"] = {};
    for (const [name, samples] of this.samples) {
      const windows = { flowStart: this.flowStart, flowEnd: this.flowEnd, warmupEnd: this.flowStart + warmup };
      const m = judgeMemory(samples, windows, bounds);
      const bounded = name !== "hardhat-node";
      perProcess[name] = { ...m, pass: bounded ? m.pass : true, bounded, heapFloorMB: heapFloors(this.heap.get(name) ?? [], windows) };
    }

    const perLog: Record<string, { warn: number; error: number; fatal: number }> = Object.fromEntries(logsDuringSoak);
    const top = (kind: "warn" | "error") => {
      const all = new Map<string, number>();
      for (const [name, scan] of this.logs) for (const [msg, n] of scan.messages[kind]) all.set(`${name}: ${msg}`, (all.get(`${name}: ${msg}`) ?? 0) + n);
      return [...all].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([msg, count]) => ({ msg, count }));
    };
    const errorLines = Object.values(perLog).reduce((s, l) => s + l.error + l.fatal, 0);

    // Heartbeats in the second half of the flow, against what the miners should have sent.
    const half = this.flowStart + flowMs / 2;
    const at = (t: number) => {
      const before = this.heartbeatReadings.filter((r) => r.t <= t).at(-1);
      return before?.value;
    };
    const hbMid = at(half);
    // Readings come with the progress lines; the flow's last one is taken right after the flow ends.
    const hbEnd = at(this.flowEnd + 5_000) ?? hb.master ?? undefined;
    const hbSecondHalf = hbMid !== undefined && hbEnd !== undefined ? hbEnd - hbMid : null;
    const hbExpected = ((flowMs / 2 / 1000) * cfg.nodes) / cfg.heartbeatSec;

    const largest = (figure: (m: MemoryVerdict) => number | null) => {
      const values = Object.values(perProcess).filter((m) => m.bounded).map(figure).filter((v): v is number => v !== null);
      return values.length ? Math.max(...values) : "–";
    };
    const minEpochs = Math.max(0, Math.floor(flowMs / 1000 / economy.epochLength) - 1);
    const memoryFailures = Object.entries(perProcess).filter(([, m]) => !m.pass);
    const checks: SoakCheck[] = [
      {
        name: "no lost task",
        pass: lost.length === 0 && this.submitErrors.length === 0 && this.tasks.length > 0,
        detail:
          `${this.tasks.length} submitted, ${lost.length} lost${lost.length ? ` (${lost.slice(0, 3).map((x) => `${x.t.taskId}: ${x.v.reason}`).join("; ")})` : ""}` +
          (this.submitErrors.length ? `; ${this.submitErrors.length} submissions refused (${this.submitErrors[0]})` : ""),
      },
      {
        name: `none stuck beyond the grace period (${this.graceMs / 1000} s)`,
        pass: late.length === 0,
        detail: `${late.length} final later than ${this.graceMs / 1000} s; latency max ${percentile(latencies, 100) ?? "–"} s, p95 ${percentile(latencies, 95) ?? "–"} s`,
      },
      {
        name: `memory: growth ≤ ${bounds.growthMB} MB after warm-up, slope ≤ ${bounds.slopeMBPerMin} MB/min`,
        pass: memoryFailures.length === 0 && Object.values(perProcess).some((m) => m.bounded && m.growthMB !== null),
        detail: memoryFailures.length
          ? memoryFailures.map(([n, m]) => `${n}: ${m.notes.join("; ")}`).join("; ")
          : `largest growth ${largest((m) => m.growthMB)} MB, largest slope ${largest((m) => m.slopeMBPerMin)} MB/min`,
      },
      {
        name: "claims made",
        pass: claimsMissing.length === 0 && (flowMs < 4 * economy.epochLength * 1000 || claimsChecked > 0),
        detail: `${this.ev.claims} claims; ${claimsChecked} (epoch, node with power) pairs with a closed Claim window checked, ${claimsMissing.length} missing${claimsMissing.length ? `: ${claimsMissing.slice(0, 5).join(", ")}` : ""}`,
      },
      {
        name: "epochs advance",
        pass: this.ev.epochsSkipped === 0 && this.ev.epochsAdvanced >= minEpochs,
        detail: `${this.ev.epochsAdvanced} advanced (at least ${minEpochs} expected), ${this.ev.epochsSkipped} skipped`,
      },
      {
        name: "heartbeats and liveness",
        pass:
          hbSecondHalf !== null &&
          hbSecondHalf >= hbExpected / 2 &&
          this.ev.ejections === 0 &&
          this.keeperExits.length === 0 &&
          Object.values(nodeStates).filter((s) => s === "Healthy").length >= cfg.nodes,
        detail:
          `${hbSecondHalf ?? "–"} heartbeats accepted in the second half of the flow (≥ ${Math.round(hbExpected / 2)} needed, ${Math.round(hbExpected)} expected); ` +
          `${this.ev.ejections} ejections; states at the end: ${Object.entries(nodeStates).map(([n, s]) => `${n} ${s}`).join(", ") || "unknown"}` +
          (this.keeperExits.length ? `; ${this.keeperExits.join("; ")}` : "; no keeper exited"),
      },
      {
        name: "no error in the logs",
        pass: errorLines === 0,
        detail: `${errorLines} error/fatal lines, ${Object.values(perLog).reduce((s, l) => s + l.warn, 0)} warnings (reported, not judged)`,
      },
    ];
    if (this.aborted) checks.push({ name: "the soak ran to its end", pass: false, detail: this.aborted });
    const verdict: SoakResult["verdict"] = this.interrupted ? "INTERRUPTED" : checks.every((c) => c.pass) ? "PASS" : "FAIL";
    const result: SoakResult = {
      verdict,
      startedAt: this.startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      flowMinutesRequested: cfg.minutes,
      flowSec: Math.round(flowMs / 1000),
      totalSec: Math.round((Date.now() - this.startedAt.getTime()) / 1000),
      options: {
        minutes: cfg.minutes,
        tasksPerMinute: cfg.tasksPerMinute,
        nodes: cfg.nodes,
        graceSec: this.graceMs / 1000,
        heartbeatSec: cfg.heartbeatSec,
        sampleSec: cfg.sampleSec,
        rssGrowthMb: cfg.rssGrowthMb,
        rssSlopeMbPerMin: bounds.slopeMBPerMin,
      },
      machine: {
        cpus: os.cpus().length,
        loadAverage: [mean(this.loads), Math.max(0, ...this.loads)].map((x) => Math.round(x * 100) / 100),
        node: process.version,
        nice: os.getPriority(),
        note:
          mean(this.loads) > os.cpus().length
            ? `a shared, busy machine: one-minute load ${mean(this.loads).toFixed(1)} on average (max ${Math.max(0, ...this.loads).toFixed(1)}) on ${os.cpus().length} cores, ` +
              `the soak at nice ${os.getPriority()}; latencies are longer than on an idle machine`
            : `one-minute load ${mean(this.loads).toFixed(1)} on average (max ${Math.max(0, ...this.loads).toFixed(1)}) on ${os.cpus().length} cores`,
      },
      economy: { ...economy },
      tasks: {
        submitted: this.tasks.length,
        completed: completed.length,
        validated: completed.filter((x) => x.t.chain.validationsOk > 0).length,
        invalidated: of("invalidated").length,
        failed: of("failed").length,
        lost: lost.length,
        late: late.length,
        graceSec: this.graceMs / 1000,
        latencySec: { p50: percentile(latencies, 50), p95: percentile(latencies, 95), max: percentile(latencies, 100) },
        requeued: this.tasks.filter((t) => t.ledgerHistory.length > 0).length,
        failures: failedTasks.map((x) => ({ taskId: x.t.taskId, reason: x.v.reason ?? "" })),
        lostTasks: lost.map((x) => ({ taskId: x.t.taskId, reason: x.v.reason ?? "" })),
      },
      chain: { ...this.ev, claimsChecked, claimsMissing },
      heartbeats: { acceptedByMaster: hb.master, sentByMiners: hb.sent, failedAtMiners: hb.failed, nodeStatesAtEnd: nodeStates },
      memory: { bounds, warmupSec: Math.round(warmup / 1000), perProcess },
      logs: { perProcess: perLog, topWarnings: top("warn"), topErrors: top("error") },
      keeperExits: this.keeperExits,
      checks,
      logDir: path.relative(ROOT, this.logDir),
    };

    line(`result: ${verdict}`);
    for (const c of checks) line(`  ${c.pass ? "pass" : "FAIL"}  ${c.name}: ${c.detail}`);
    line(
      `  RSS after warm-up → end (MB): ${Object.entries(perProcess)
        .map(([n, m]) => `${n} ${m.baselineMB ?? "–"} → ${m.endMB ?? "–"}`)
        .join(", ")}`,
    );
    if (cfg.write) {
      const resultFile = path.resolve(ROOT, cfg.resultFile);
      mkdirSync(path.dirname(resultFile), { recursive: true });
      writeFileSync(resultFile, `${JSON.stringify(result, null, 2)}\n`);
      const summaryFile = path.resolve(ROOT, cfg.summaryFile);
      mkdirSync(path.dirname(summaryFile), { recursive: true });
      writeFileSync(summaryFile, summaryMarkdown(result));
      const written = [path.relative(ROOT, resultFile), path.relative(ROOT, summaryFile)];
      if (cfg.readme) {
        const readme = path.resolve(ROOT, cfg.readme);
        writeFileSync(readme, withReadmeSection(existsSync(readme) ? readFileSync(readme, "utf8") : "", readmeSection(result)));
        written.push(path.relative(ROOT, readme));
      }
      line(`written: ${written.join(", ")}`);
    }
    return verdict === "PASS" ? 0 : verdict === "INTERRUPTED" ? 130 : 1;
  }

  /** Stops every process the soak started and removes its miners' containers (idempotent). */
  private async cleanup(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.sampler) clearInterval(this.sampler);
    await this.follower?.stop().catch(() => undefined);
    const cluster = this.cluster ?? (await this.starting?.catch(() => undefined));
    if (cluster) {
      line("stopping the keepers and the Hardhat node ...");
      await cluster.stop().catch((error) => line(`stop: ${(error as Error).message}`));
    }
    if (this.instances.length > 0) {
      const docker = new Dockerode();
      let removed = 0;
      for (const instance of this.instances) {
        const containers = await docker.listContainers({ all: true, filters: { label: [`${LABEL_INSTANCE}=${instance}`] } }).catch(() => []);
        for (const c of containers) {
          await docker.getContainer(c.Id).remove({ force: true }).then(
            () => removed++,
            () => undefined,
          );
        }
      }
      line(`stopped; ${removed} container(s) of this soak's miners removed`);
    } else if (cluster) {
      line("stopped");
    }
  }
}
