/**
 * `computenet devnet` (`npm run devnet`): the whole network on one machine, as separate processes — a
 * local Hardhat node, the deployed system, discovery, one validator, a master with a run, three miners
 * — with one log file per process, a few demo tasks run as real containers, and a live summary of what
 * happens on chain and at the master. Ctrl-C stops everything.
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
import { Cluster } from "./cluster.js";
const DEMO_IMAGE = "computenet/busybox:latest";

interface DevnetConfig {
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
    .addOption(new Option("--tasks <n>", "demo tasks submitted once nodes are healthy").default("3"))
    .addOption(new Option("--heartbeat-sec <sec>", "heartbeat interval of the miners").default("2"))
    .option("--exit-when-done", "stop once every demo task finished and its files reached the master (exit code 0), for scripts", false)
    .addOption(new Option("--timeout-sec <sec>", "with --exit-when-done: give up after this long (exit code 1)").default("300"))
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
  const logDir = path.join(ROOT, ".devnet", new Date().toISOString().replace(/[:.]/g, "-"));
  mkdirSync(logDir, { recursive: true });
  line(`logs: ${path.relative(process.cwd(), logDir)}/ (one file per process)`);
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
    line(`run ${cluster.runId}: master ${cluster.masterAddress}, discovery ${cluster.discoveryUrl}, 10,000 CNET escrowed`);

    const docker = await dockerReady(logDir);
    line(docker ? `Docker engine ready; demo image ${DEMO_IMAGE}` : "no Docker engine: registration, validation, invites and heartbeats run; tasks wait for an engine (as root: npm run docker)");

    // Live summary of the chain, started before the keepers so that nothing is missed.
    const names = new Map<string, string>(cluster.keys.nodes.slice(0, config.miners).map((k, i) => [new Wallet(k).address.toLowerCase(), `miner-${i + 1}`]));
    const who = (address: unknown) => names.get(String(address).toLowerCase()) ?? String(address);
    follower = new EventFollower({
      chain: cluster.admin,
      store: new KeeperStore(":memory:"),
      name: "devnet",
      logger: createLogger({ component: "devnet", level: "silent" }),
      pollMs: 250,
      handle: async (e) => {
        const a = e.args;
        const text: Record<string, () => string> = {
          NodeRegistered: () => `chain: ${who(a.node)} registered (stake ${formatUnits(a.stake, 18)} CNET)`,
          NodeRegisteredForRun: () => `chain: ${who(a.node)} registered for run ${a.runId}`,
          NodeValidated: () => `chain: ${who(a.node)} validated by the validator's challenge`,
          NodeRejected: () => `chain: ${who(a.node)} rejected by a challenge`,
          NodeJoined: () => `chain: ${who(a.node)} accepted the master's invite and joined run ${a.runId}`,
          NodeEjected: () => `chain: ${who(a.node)} ejected from run ${a.runId}`,
          NodeLeft: () => `chain: ${who(a.node)} left run ${a.runId}`,
        };
        if (text[e.name]) line(text[e.name]());
      },
    });
    follower.start();

    await cluster.startDiscovery();
    await cluster.startValidator(0);
    await cluster.startMaster();
    line(`discovery, validator and master (${cluster.masterUrl}) are up; starting ${config.miners} miners ...`);
    await Promise.all(Array.from({ length: config.miners }, (_, i) => cluster!.startMiner(i)));

    const buyer = cluster.buyer();
    const states = new Map<string, string>();
    const tasks = new Map<string, { state: string; files: number; logsShown: boolean }>();
    let submitted = false;
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
          if (!submitted && docker && healthy >= config.miners && config.tasks > 0) {
            submitted = true;
            for (let i = 1; i <= config.tasks; i++) {
              const body = {
                image: DEMO_IMAGE,
                command: ["sh", "-c", `echo "hello from demo task ${i} on $(hostname)"; echo "result ${i}" > /data/result-${i}.txt; sleep 1`],
                memoryMB: 64,
                cpus: 0.5,
              };
              const t = await buyer.call<{ taskId: string; node: string }>("POST", "/tasks", body);
              tasks.set(t.taskId, { state: "sent", files: 0, logsShown: false });
              line(`buyer: demo task ${i} (${t.taskId}) sent to ${who(t.node)}`);
            }
          }
          for (const [taskId, seen] of tasks) {
            const status = await buyer.call<{ state: string; exitCode: number | null }>("GET", `/tasks/${taskId}`);
            if (status.state !== seen.state) {
              line(`master: task ${taskId} ${status.state}${status.exitCode !== null && status.exitCode !== undefined ? ` (exit ${status.exitCode})` : ""}`);
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
          const allDone = submitted && [...tasks.values()].every((t) => t.state === "completed" && t.files > 0 && t.logsShown);
          const onboardedOnly = (!docker || config.tasks === 0) && healthy >= config.miners;
          if (config.exitWhenDone && (allDone || onboardedOnly)) {
            line(allDone ? "every demo task completed and its files reached the master" : "every miner is Healthy (no tasks to run)");
            resolve(0);
          } else if (config.exitWhenDone && Date.now() > deadline) {
            line(`timed out after ${config.timeoutSec} s`);
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

/** Whether a Docker engine answers, after trying to bring one up (and the demo image) with scripts/docker-engine.sh. */
async function dockerReady(logDir: string): Promise<boolean> {
  if (process.getuid?.() === 0) {
    const result = spawnSync("bash", [path.join(ROOT, "scripts", "docker-engine.sh")], {
      env: { ...process.env, DOCKERD_LOG: path.join(logDir, "dockerd.log") },
      encoding: "utf8",
      timeout: 180_000,
    });
    if (result.status !== 0) line(`docker-engine.sh failed: ${(result.stderr ?? "").trim().split("\n").pop()}`);
  }
  if (!(await DockerRuntime.available())) return false;
  return spawnSync("docker", ["image", "inspect", DEMO_IMAGE], { stdio: "ignore" }).status === 0;
}

