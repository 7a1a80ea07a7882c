/**
 * `computenet devnet` (`npm run devnet`): the whole network on one machine, as separate processes — a
 * local Hardhat node, the deployed system, discovery, one validator, a master with a run, three miners
 * — with one log file per process, epochs of about a minute (PoC, power, power-weighted tasks,
 * validations, disputes, claims), demo tasks run as real containers every epoch, and a live summary of
 * what happens on chain and at the master. Ctrl-C stops everything.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { Command, Option } from "commander";
import { Wallet, formatUnits } from "ethers";
import { z } from "zod";
import { DockerRuntime } from "../miner/docker-runtime.js";
import { EventFollower } from "../shared/chain.js";
import { ConfigError, parseConfig } from "../shared/config.js";
import { createLogger } from "../shared/log.js";
import { KeeperStore } from "../shared/store.js";
import { ROOT } from "../../scripts/lib/processes.js";
import { DisputeStatus } from "../../scripts/lib/protocol.js";
import { Cluster } from "./cluster.js";
export const DEMO_IMAGE = "computenet/busybox:latest";

interface DevnetConfig {
  /** Where the log files go (default .devnet/<time>/ in the project). */
  logDir?: string;
  port: number;
  miners: number;
  tasks: number;
  heartbeatSec: number;
  exitWhenDone: boolean;
  timeoutSec: number;
}

const schema = z.object({
  port: z.coerce.number().int().min(1).max(65535),
  miners: z.coerce.number().int().min(1).max(5),
  tasks: z.coerce.number().int().min(0).max(20),
  heartbeatSec: z.coerce.number().int().min(1).max(60),
  exitWhenDone: z.boolean(),
  timeoutSec: z.coerce.number().int().min(10).max(3600),
});

export function devnetCommand(): Command {
  return new Command("devnet")
    .description("run the whole network locally: chain, discovery, validator, master, miners, demo tasks")
    .addOption(new Option("--port <port>", "JSON-RPC port of the local Hardhat node").default("8545"))
    .addOption(new Option("--miners <n>", "miner processes (1-5)").default("3"))
    .addOption(new Option("--tasks <n>", "demo tasks submitted per epoch once nodes are healthy").default("3"))
    .addOption(new Option("--heartbeat-sec <sec>", "heartbeat interval of the miners").default("2"))
    .option(
      "--exit-when-done",
      "stop (exit code 0) once PoC, power, power-weighted tasks, validations and a paid claim are on chain, for scripts",
      false,
    )
    .addOption(new Option("--timeout-sec <sec>", "with --exit-when-done: give up after this long (exit code 1)").default("420"))
    .option("--log-dir <dir>", "folder for the log files and keepers' data (default .devnet/<time>/)")
    .action(async (flags) => {
      let config: DevnetConfig;
      try {
        config = parseConfig(schema, flags, {
          port: { flag: "--port" },
          miners: { flag: "--miners" },
          tasks: { flag: "--tasks" },
          heartbeatSec: { flag: "--heartbeat-sec" },
          timeoutSec: { flag: "--timeout-sec" },
        });
        if (typeof flags.logDir === "string" && flags.logDir !== "") config.logDir = path.resolve(flags.logDir);
      } catch (error) {
        console.error((error as ConfigError).message);
        process.exit(2);
      }
      process.exit(await runDevnet(config));
    });
}

function line(text: string): void {
  console.log(`[devnet ${new Date().toISOString().slice(11, 19)}] ${text}`);
}

async function runDevnet(config: DevnetConfig): Promise<number> {
  const logDir = config.logDir ?? path.join(ROOT, ".devnet", new Date().toISOString().replace(/[:.]/g, "-"));
  mkdirSync(logDir, { recursive: true });
  line(`logs: ${path.relative(process.cwd(), logDir) || "."}/ (one file per process; read them merged with: npm run computenet -- logs ${path.relative(process.cwd(), logDir) || "."})`);
  const started = performance.now();
  const since = (t: number) => `${((performance.now() - t) / 1000).toFixed(1)} s`;
  let cluster: Cluster | undefined;
  let stopping = false;
  let follower: EventFollower | undefined;
  let timer: NodeJS.Timeout | undefined;

  const shutdown = async (code: number): Promise<number> => {
    if (stopping) return code;
    stopping = true;
    if (timer) clearInterval(timer);
    await follower?.stop();
    line("stopping keepers and the hardhat node ...");
    await cluster?.stop();
    line("stopped");
    return code;
  };
  const interrupted = new Promise<number>((resolve) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => void shutdown(0).then(resolve));
  });

  try {
    cluster = await Cluster.start({ logDir, rpcPort: config.port, fixedPorts: true, heartbeatSec: config.heartbeatSec }, line);
    const c = cluster.admin.deployment.contracts;
    line(`contracts: token ${c.ComputeToken.address}, registry ${c.MinerRegistry.address}, board ${c.ChallengeBoard.address}, runs ${c.TrainingRuns.address}`);
    line(`economy: epochs ${c.EpochManager.address}, PoC ${c.ProofOfCompute.address}, tasks ${c.TaskLedger.address}, vault ${c.RewardVault.address}, settlement ${c.Settlement.address}`);
    const e = cluster.economy;
    line(
      `epochs of ${e.epochLength} s (PoC ${e.pocDuration} s, PoC validation ${e.pocValidationDuration} s, work ${e.epochLength - e.pocDuration - e.pocValidationDuration} s; ` +
        `disputes ${e.disputeWindow} s and claims ${e.claimWindow} s after each epoch); epoch 1 starts ${e.genesisDelaySec} s after the deployment`,
    );
    line(`run ${cluster.runId}: master ${cluster.masterAddress}, discovery ${cluster.discoveryUrl}, 10,000 CNET escrowed`);

    const docker = await dockerReady(logDir);
    line(docker ? `Docker engine ready; demo image ${DEMO_IMAGE}` : "no Docker engine: registration, validation, invites and heartbeats run; tasks wait for an engine (as root: npm run docker)");

    // Live summary of the chain, started before the keepers so that nothing is missed.
    const names = new Map<string, string>(cluster.keys.nodes.slice(0, config.miners).map((k, i) => [new Wallet(k).address.toLowerCase(), `miner-${i + 1}`]));
    const who = (address: unknown) => names.get(String(address).toLowerCase()) ?? String(address);
    const epochLine = new EpochSummary(cluster, who, line);
    follower = new EventFollower({
      chain: cluster.admin,
      store: new KeeperStore(":memory:"),
      name: "devnet",
      logger: createLogger({ component: "devnet", level: "silent" }),
      pollMs: 250,
      handle: async (e) => {
        const a = e.args;
        const cnet = (v: unknown) => `${Number(formatUnits(BigInt(String(v)), 18)).toLocaleString("en-US", { maximumFractionDigits: 4 })} CNET`;
        const text: Record<string, () => string> = {
          NodeRegistered: () => `chain: ${who(a.node)} registered (stake ${formatUnits(a.stake, 18)} CNET)`,
          NodeRegisteredForRun: () => `chain: ${who(a.node)} registered for run ${a.runId}`,
          NodeValidated: () => `chain: ${who(a.node)} validated by the validator's challenge`,
          NodeRejected: () => `chain: ${who(a.node)} rejected by a challenge`,
          NodeJoined: () => `chain: ${who(a.node)} accepted the master's invite and joined run ${a.runId}`,
          NodeEjected: () => `chain: ${who(a.node)} ejected from run ${a.runId}`,
          NodeLeft: () => `chain: ${who(a.node)} left run ${a.runId}`,
          EpochAdvanced: () => `chain: epoch ${a.epoch} started (PoC beacon ${String(a.pocBeacon).slice(0, 10)}…), advanced by ${who(a.by)}`,
          EpochsSkipped: () => `chain: epochs ${a.firstEpoch}-${a.lastEpoch} skipped (nobody advanced them)`,
          PocCommitted: () => `chain: ${who(a.node)} committed its PoC for epoch ${a.epoch}: ${a.count} valid nonces`,
          PocAccepted: () => `chain: PoC of ${who(a.node)} for epoch ${a.epoch} accepted (${a.acceptWeight} of ${a.totalWeight} verdict weight)`,
          PocRejected: () => `chain: PoC of ${who(a.node)} for epoch ${a.epoch} REJECTED (${a.rejectWeight} of ${a.totalWeight} verdict weight): no power`,
          NodeEnrolled: () => `chain: ${who(a.node)} enrolled in run ${a.runId}'s task draws for epoch ${a.epoch} with power ${a.weight}`,
          TaskCreated: () => `chain: task #${a.taskId} drawn to ${who(a.assignee)} by power (epoch ${a.epoch}, ${a.units} units, pay ${cnet(a.pay)})`,
          TaskCompleted: () => `chain: task #${a.taskId} completed by ${who(a.assignee)} (seal ${String(a.resultHash).slice(0, 10)}…)`,
          TaskValidated: () => `chain: task #${a.taskId} validated by ${who(a.validator)}: ${a.ok ? "reproduced" : "NOT reproduced"}`,
          DisputeOpened: () => `chain: dispute opened on task #${a.taskId} by ${who(a.accuser)} (seal ${String(a.seal).slice(0, 10)}…)`,
          DisputeVote: () => `chain: ${who(a.voter)} votes seal ${String(a.seal).slice(0, 10)}… on task #${a.taskId} with power ${a.weight} (the seal now holds ${a.tally})`,
          DisputeResolved: () =>
            `chain: dispute on task #${a.taskId} ${
              Number(a.outcome) === DisputeStatus.Invalidated
                ? "INVALIDATED the task"
                : Number(a.outcome) === DisputeStatus.Unresolved
                  ? "ended UNRESOLVED (no seal won a majority: nobody slashed, the task stands)"
                  : "upheld the task"
            } (slashed ${cnet(a.slashed)})`,
          ClaimBeaconFixed: () => `chain: claim beacon of epoch ${a.epoch} fixed`,
          Claimed: () =>
            `chain: ${who(a.node)} claimed epoch ${a.epoch}: work ${cnet(a.work)}, reward ${cnet(a.reward)}` +
            (a.forfeited ? ` (reward FORFEITED: missed validating task #${a.missedTaskId})` : ` (duty check passed on ${a.sampled} sampled tasks)`),
        };
        if (text[e.name]) line(text[e.name]());
        epochLine.observe(e);
      },
    });
    follower.start();

    let step = performance.now();
    line("keepers starting: discovery ...");
    await cluster.startDiscovery();
    line(`keepers starting: discovery up (${since(step)}); 2 validators ...`);
    step = performance.now();
    // Two validators: while no power exists yet they are the bootstrap set that judges PoC, and an
    // acceptance needs more than two thirds of that set.
    await Promise.all([cluster.startValidator(0), cluster.startValidator(1)]);
    line(`keepers starting: 2 validators up (${since(step)}); master ...`);
    step = performance.now();
    await cluster.startMaster();
    line(`keepers starting: master up at ${cluster.masterUrl} (${since(step)}); ${config.miners} miners ...`);
    step = performance.now();
    // The one line to open in a browser (operator view: the token is in the fragment, which is never sent).
    if (await dashboardReady(cluster.masterUrl)) console.log(`dashboard: ${cluster.dashboardUrl}`);
    else line(`the master's dashboard (${cluster.masterUrl}/dashboard) did not answer; see ${path.relative(process.cwd(), logDir)}/master.log`);
    // Emulated machines of different speeds (a FAKE: the PoC engine sleeps part of the time), so that
    // power, and with it the share of tasks, differs visibly between miners.
    const throttles = [1, 0.6, 0.35, 0.8, 0.5];
    await Promise.all(Array.from({ length: config.miners }, (_, i) => cluster!.startMiner(i, ["--poc-throttle", String(throttles[i])])));
    line(`keepers starting: ${config.miners} miners listening (${since(step)}); all keepers up ${since(started)} after the start`);
    line(`miners emulate PoC speeds ${throttles.slice(0, config.miners).map((t, i) => `miner-${i + 1} ${t * 100}%`).join(", ")} (a fake: there is no GPU here)`);
    const waitingSince = performance.now();
    let waitLineAt = 0;
    let allHealthy = false;

    const buyer = cluster.buyer();
    const states = new Map<string, string>();
    const tasks = new Map<string, { state: string; files: number; logsShown: boolean }>();
    let batches = 0;
    let submittedForEpoch = 0n;
    const deadline = Date.now() + config.timeoutSec * 1000;
    const done = new Promise<number>((resolve) => {
      timer = setInterval(async () => {
        try {
          const { nodes } = await buyer.call<{ nodes: Array<{ node: string; state: string }> }>("GET", "/nodes");
          for (const n of nodes) {
            if (states.get(n.node) !== n.state) line(`master: ${who(n.node)} is ${n.state}`);
            states.set(n.node, n.state);
          }
          const healthy = nodes.filter((n) => n.state === "Healthy").length;
          // Until every miner is Healthy at the master: one line every 5 s with the counts by state.
          if (!allHealthy) {
            if (healthy >= config.miners) {
              allHealthy = true;
              line(`${healthy} of ${config.miners} nodes healthy at the master ${since(waitingSince)} after the miners started (${since(started)} after the start)`);
            } else if (performance.now() - waitLineAt >= 5_000) {
              waitLineAt = performance.now();
              const byState = new Map<string, number>();
              for (const n of nodes) byState.set(n.state, (byState.get(n.state) ?? 0) + 1);
              const known = [...byState].map(([state, n]) => `${n} ${state}`).join(", ");
              line(`waiting for ${config.miners} healthy nodes: ${healthy} so far (master knows ${nodes.length}${known ? `: ${known}` : ""}; ${since(waitingSince)})`);
            }
          }
          await epochLine.tick();
          // Demo tasks: one batch per epoch once every miner is Healthy. The master queues them until the
          // epoch's Work phase, records each on chain (which draws its node by power) and sends it there.
          if (docker && healthy >= config.miners && config.tasks > 0 && epochLine.epoch > submittedForEpoch) {
            submittedForEpoch = epochLine.epoch;
            batches++;
            for (let i = 1; i <= config.tasks; i++) {
              const n = (batches - 1) * config.tasks + i;
              // Deterministic (no hostname, no time): validators re-execute it and must reproduce its result hash.
              const body = {
                image: DEMO_IMAGE,
                command: ["sh", "-c", `echo "hello from demo task ${n}"; echo "result ${n}" > /data/result-${n}.txt; sleep 1`],
                memoryMB: 64,
                cpus: 0.5,
                units: 1,
              };
              const t = await buyer.call<{ taskId: string; node?: string; state?: string }>("POST", "/tasks", body);
              tasks.set(t.taskId, { state: t.state ?? "sent", files: 0, logsShown: false });
              line(`buyer: demo task ${n} (${t.taskId}) ${t.node ? `sent to ${who(t.node)}` : `queued at the master for epoch ${epochLine.epoch}'s Work phase`}`);
            }
          }
          for (const [taskId, seen] of tasks) {
            const status = await buyer.call<{ state: string; exitCode: number | null; node?: string }>("GET", `/tasks/${taskId}`);
            if (status.state !== seen.state) {
              line(`master: task ${taskId} ${status.state}${status.node ? ` on ${who(status.node)}` : ""}${status.exitCode !== null && status.exitCode !== undefined ? ` (exit ${status.exitCode})` : ""}`);
              seen.state = status.state;
            }
            if (["completed", "failed", "stopped"].includes(status.state)) {
              if (!seen.logsShown) {
                const logs = await buyer.call<{ stdout: string }>("GET", `/tasks/${taskId}/logs`);
                line(`master: task ${taskId} logs: ${logs.stdout.trim()}`);
                seen.logsShown = true;
              }
              const files = await buyer.call<{ files: Array<{ name: string; sha256: string }> }>("GET", `/tasks/${taskId}/files`);
              if (files.files.length !== seen.files) {
                for (const f of files.files.slice(seen.files)) line(`master: task ${taskId} file ${f.name} stored (sha256 ${f.sha256.slice(0, 12)}…)`);
                seen.files = files.files.length;
              }
            }
          }
          const economyDone = epochLine.milestonesReached(docker && config.tasks > 0);
          const onboardedOnly = (!docker || config.tasks === 0) && healthy >= config.miners && economyDone;
          if (config.exitWhenDone && (economyDone || onboardedOnly)) {
            line(`done: ${epochLine.describeMilestones()}`);
            resolve(0);
          } else if (config.exitWhenDone && Date.now() > deadline) {
            line(`timed out after ${config.timeoutSec} s; reached: ${epochLine.describeMilestones()}`);
            resolve(1);
          }
        } catch (error) {
          if (!stopping) line(`summary: ${(error as Error).message}`);
        }
      }, 1000);
    });
    if (!config.exitWhenDone) line(`running: JSON-RPC ${cluster.node.url}, discovery ${cluster.discoveryUrl}, master ${cluster.masterUrl}; Ctrl-C stops everything`);
    const code = await Promise.race([done, interrupted]);
    return shutdown(code);
  } catch (error) {
    console.error(`[devnet] ${(error as Error).message}`);
    return shutdown(1);
  }
}

/** Whether the master serves its dashboard page and state (polled for up to `timeoutMs`). */
async function dashboardReady(masterUrl: string, timeoutMs = 20_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const [page, state] = await Promise.all([
        fetch(`${masterUrl}/dashboard`, { signal: AbortSignal.timeout(5_000) }),
        fetch(`${masterUrl}/dashboard/state`, { signal: AbortSignal.timeout(5_000) }),
      ]);
      await Promise.all([page.arrayBuffer(), state.arrayBuffer()]);
      if (page.ok && state.ok) return true;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

/** Whether a Docker engine answers, after trying to bring one up (and the demo image) with scripts/docker-engine.sh. */
export async function dockerReady(logDir: string, say: (text: string) => void = line): Promise<boolean> {
  if (process.getuid?.() === 0) {
    const result = spawnSync("bash", [path.join(ROOT, "scripts", "docker-engine.sh")], {
      env: { ...process.env, DOCKERD_LOG: path.join(logDir, "dockerd.log") },
      encoding: "utf8",
      timeout: 180_000,
    });
    if (result.status !== 0) say(`docker-engine.sh failed: ${(result.stderr ?? "").trim().split("\n").pop()}`);
  }
  if (!(await DockerRuntime.available())) return false;
  return spawnSync("docker", ["image", "inspect", DEMO_IMAGE], { stdio: "ignore" }).status === 0;
}


/**
 * Per-epoch summary lines (the power table once an epoch's power is final) and the milestones
 * `--exit-when-done` waits for: PoC accepted, power, tasks drawn and completed, validations, a paid claim.
 */
class EpochSummary {
  epoch = 0n;
  private readonly powerShown = new Set<bigint>();
  private readonly seen = new Set<string>();
  private readonly timelines = new Map<bigint, { pocValidationEnd: number }>();

  constructor(
    private readonly cluster: Cluster,
    private readonly who: (address: unknown) => string,
    private readonly line: (text: string) => void,
  ) {}

  observe(e: { name: string; args: Record<string, unknown> & { [k: number]: unknown } }): void {
    if (e.name === "EpochAdvanced") this.epoch = BigInt(String(e.args.epoch));
    if (e.name === "PocAccepted") this.seen.add("poc");
    if (e.name === "TaskCreated") this.seen.add("task");
    if (e.name === "TaskCompleted") this.seen.add("completed");
    if (e.name === "TaskValidated") this.seen.add("validated");
    if (e.name === "Claimed" && BigInt(String(e.args.reward)) > 0n) this.seen.add("claim");
    if (e.name === "Claimed" && BigInt(String(e.args.work)) > 0n) this.seen.add("paidWork");
  }

  /** Prints the power table of each epoch once its PoC validation phase is over. */
  async tick(): Promise<void> {
    const { epochManager, proofOfCompute } = this.cluster.admin.contracts;
    for (let epoch = this.epoch; epoch >= 1n && epoch + 2n > this.epoch; epoch--) {
      if (this.powerShown.has(epoch)) continue;
      let t = this.timelines.get(epoch);
      if (!t) {
        const timeline = await epochManager.timelineOf(epoch);
        t = { pocValidationEnd: Number(timeline.pocValidationEnd) };
        this.timelines.set(epoch, t);
      }
      if (Date.now() / 1000 < t.pocValidationEnd) continue;
      this.powerShown.add(epoch);
      const [total, cap] = await Promise.all([proofOfCompute.totalPower(epoch), proofOfCompute.powerCap(epoch)]);
      if (total === 0n) {
        this.line(`epoch ${epoch} power: none (no PoC accepted)`);
        continue;
      }
      this.seen.add("power");
      const parts: string[] = [];
      for (const key of this.cluster.keys.nodes) {
        const node = new Wallet(key).address;
        const [power, raw] = await Promise.all([proofOfCompute.powerOf(epoch, node), proofOfCompute.rawPowerOf(epoch, node)]);
        if (raw === 0n) continue;
        const share = Number((power * 10_000n) / total) / 100;
        parts.push(`${this.who(node)} ${power} (${share}%${power < raw ? `, capped from ${raw}` : ""})`);
      }
      this.line(`epoch ${epoch} power (final, cap ${Number(cap.capBps) / 100}% over ${cap.acceptedNodes} nodes): ${parts.join(", ")}; total ${total}`);
    }
  }

  milestonesReached(withTasks: boolean): boolean {
    const needed = withTasks ? ["poc", "power", "task", "completed", "validated", "claim", "paidWork"] : ["poc", "power", "claim"];
    return needed.every((m) => this.seen.has(m));
  }

  describeMilestones(): string {
    const names: Record<string, string> = {
      poc: "PoC accepted",
      power: "power",
      task: "tasks drawn by power",
      completed: "tasks completed",
      validated: "validations",
      claim: "a claim with reward",
      paidWork: "a claim with work pay",
    };
    return Object.entries(names)
      .map(([k, v]) => `${this.seen.has(k) ? "✓" : "✗"} ${v}`)
      .join(", ");
  }
}
