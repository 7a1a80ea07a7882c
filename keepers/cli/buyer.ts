/**
 * Buyer and operator commands of the `computenet` CLI: create and start runs, create tasks, read their
 * status and logs, list nodes. Every command prints a readable line by default and one JSON document with
 * `--json` (for scripts).
 */
import { Command, Option } from "commander";
import { Wallet, parseUnits } from "ethers";
import { z } from "zod";
import { connectChain, contractInterfaces } from "../shared/chain.js";
import { ConfigError, loadPrivateKey, parseConfig } from "../shared/config.js";
import { SignedClient } from "../shared/http.js";
import { createLogger } from "../shared/log.js";
import { TxSender } from "../shared/tx.js";
import { gpuModel } from "../../scripts/lib/protocol.js";

interface CommonFlags {
  rpcUrl: string;
  deployment: string;
  keyFile?: string;
  json?: boolean;
}

function withChainOptions(command: Command): Command {
  return command
    .addOption(new Option("--rpc-url <url>", "JSON-RPC endpoint").env("CN_RPC_URL").default("http://127.0.0.1:8545"))
    .addOption(new Option("--deployment <file>", "deployments/<network>.json").env("CN_DEPLOYMENT").default("deployments/localhost.json"))
    .addOption(new Option("--key-file <file>", "file with the buyer's private key (or CN_PRIVATE_KEY)").env("CN_KEY_FILE"))
    .option("--json", "print one JSON document");
}

function print(flags: { json?: boolean }, value: Record<string, unknown>, text: string): void {
  if (flags.json) console.log(JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v)));
  else console.log(text);
}

async function buyerChain(flags: CommonFlags) {
  const privateKey = loadPrivateKey({ keyFile: flags.keyFile, required: true })!;
  return connectChain({ rpcUrl: flags.rpcUrl, deploymentFile: flags.deployment, privateKey });
}

/** Runs `action`, turning configuration and chain errors into one clear line and exit code 2 or 1. */
function guarded<T extends unknown[]>(action: (...args: T) => Promise<void>) {
  return async (...args: T) => {
    try {
      await action(...args);
    } catch (error) {
      console.error(error instanceof ConfigError ? error.message : `error: ${(error as Error).message}`);
      process.exit(error instanceof ConfigError ? 2 : 1);
    }
  };
}

const positiveInt = z.coerce.number().int().positive();

export function runCommand(): Command {
  const run = new Command("run").description("create and manage training runs (buyer)");

  withChainOptions(
    run
      .command("create")
      .description("open a run with node requirements and an escrowed budget")
      .requiredOption("--master <address>", "address of the run's master node key")
      .requiredOption("--discovery <url>", "discovery service URL")
      .option("--budget <tokens>", "budget escrowed now, in tokens", "0")
      .option("--price <tokens>", "price per work unit, in tokens", "1")
      .option("--max-members <n>", "maximum members", "10")
      .option("--min-gpus <n>", "minimum GPU count", "0")
      .option("--min-gpu-memory-mb <n>", "minimum memory per GPU (MiB)", "0")
      .option("--gpu-models <list>", "allowed GPU models, comma-separated (empty: any)", "")
      .option("--min-cpu-cores <n>", "minimum CPU cores", "0")
      .option("--min-ram-mb <n>", "minimum RAM (MiB)", "0")
      .option("--min-storage-gb <n>", "minimum storage (GB)", "0")
      .option("--start", "also start the run (Pending -> Active)"),
  ).action(
    guarded(async (flags: CommonFlags & Record<string, string | boolean | undefined>) => {
      const schema = z.object({
        master: z.string().regex(/^0x[0-9a-fA-F]{40}$/, "must be an address"),
        discovery: z.url(),
        budget: z.string().regex(/^\d+(\.\d+)?$/, "must be a token amount"),
        price: z.string().regex(/^\d+(\.\d+)?$/, "must be a token amount"),
        maxMembers: positiveInt,
        minGpus: z.coerce.number().int().min(0).max(65535),
        minGpuMemoryMb: z.coerce.number().int().min(0),
        gpuModels: z.string(),
        minCpuCores: z.coerce.number().int().min(0).max(65535),
        minRamMb: z.coerce.number().int().min(0),
        minStorageGb: z.coerce.number().int().min(0),
      });
      const names = Object.fromEntries(
        Object.keys(schema.shape).map((k) => [k, { flag: `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}` }]),
      );
      const cfg = parseConfig(schema, flags, names);
      const chain = await buyerChain(flags);
      const tx = new TxSender({ logger: createLogger({ component: "cli", level: "warn" }), interfaces: contractInterfaces(), signer: chain.signer as never });
      const runs = chain.contracts.trainingRuns;
      const budget = parseUnits(cfg.budget, 18);
      if (budget > 0n) {
        const allowance = await chain.contracts.token.allowance(chain.wallet!.address, await runs.getAddress());
        if (allowance < budget) await tx.send("approve", () => chain.contracts.token.approve(runs.getAddress(), budget));
      }
      const receipt = await tx.send("createRun", () =>
        runs.createRun({
          master: cfg.master,
          pricePerUnit: parseUnits(cfg.price, 18),
          maxMembers: cfg.maxMembers,
          budget,
          discoveryURI: cfg.discovery,
          requirements: {
            minGpuCount: cfg.minGpus,
            minGpuMemoryMB: cfg.minGpuMemoryMb,
            minCpuCores: cfg.minCpuCores,
            minRamMB: cfg.minRamMb,
            minStorageGB: cfg.minStorageGb,
            allowedGpuModels: cfg.gpuModels ? cfg.gpuModels.split(",").map((m) => gpuModel(m.trim())) : [],
          },
        }),
      );
      const event = receipt.logs.map((l) => runs.interface.parseLog(l)).find((e) => e?.name === "RunCreated");
      const runId = event!.args.runId as bigint;
      if (flags.start) await tx.send("startRun", () => runs.startRun(runId));
      print(flags, { runId, tx: receipt.hash, started: Boolean(flags.start) }, `run ${runId} created${flags.start ? " and started" : ""} (tx ${receipt.hash})`);
      chain.provider.destroy();
    }),
  );

  withChainOptions(run.command("start").description("Pending -> Active").argument("<runId>")).action(
    guarded(async (runIdText: string, flags: CommonFlags) => {
      const runId = BigInt(parseConfig(z.object({ runId: positiveInt }), { runId: runIdText }, { runId: { flag: "<runId>" } }).runId);
      const chain = await buyerChain(flags);
      const tx = new TxSender({ logger: createLogger({ component: "cli", level: "warn" }), interfaces: contractInterfaces(), signer: chain.signer as never });
      const receipt = await tx.send("startRun", () => chain.contracts.trainingRuns.startRun(runId));
      print(flags, { runId, tx: receipt.hash }, `run ${runId} started (tx ${receipt.hash})`);
      chain.provider.destroy();
    }),
  );

  withChainOptions(run.command("show").description("a run's parameters, status, escrow and members").argument("<runId>")).action(
    guarded(async (runIdText: string, flags: CommonFlags) => {
      const runId = BigInt(parseConfig(z.object({ runId: positiveInt }), { runId: runIdText }, { runId: { flag: "<runId>" } }).runId);
      const chain = await connectChain({ rpcUrl: flags.rpcUrl, deploymentFile: flags.deployment });
      const runs = chain.contracts.trainingRuns;
      const info = await runs.getRun(runId);
      const escrow = await runs.escrowOf(runId);
      const members = await runs.membersOf(runId, 0, 1000);
      const status = ["None", "Pending", "Active", "Completed", "Cancelled"][Number(info.status)];
      print(
        flags,
        { runId, buyer: info.buyer, master: info.master, status, maxMembers: info.maxMembers, discoveryURI: info.discoveryURI, escrow: { deposited: escrow.deposited, available: escrow.available, reserved: escrow.reserved, paid: escrow.paid, refunded: escrow.refunded }, members: [...members] },
        `run ${runId}: ${status}, master ${info.master}, ${members.length}/${info.maxMembers} members, escrow ${escrow.available} available of ${escrow.deposited}`,
      );
      chain.provider.destroy();
    }),
  );
  return run;
}

interface MasterFlags extends CommonFlags {
  masterUrl: string;
  runId: string;
}

async function masterClient(flags: MasterFlags) {
  const runId = BigInt(parseConfig(z.object({ runId: positiveInt }), { runId: flags.runId }, { runId: { flag: "--run-id" } }).runId);
  const privateKey = loadPrivateKey({ keyFile: flags.keyFile, required: true })!;
  const chain = await connectChain({ rpcUrl: flags.rpcUrl, deploymentFile: flags.deployment });
  const master = (await chain.contracts.trainingRuns.getRun(runId)).master;
  const client = new SignedClient(new Wallet(privateKey), chain.chainId);
  chain.provider.destroy();
  const base = flags.masterUrl.replace(/\/$/, "");
  return { client, audience: master, base, runId };
}

function withMasterOptions(command: Command): Command {
  return withChainOptions(command)
    .addOption(new Option("--master-url <url>", "the run's master keeper").env("CN_MASTER_URL").makeOptionMandatory())
    .addOption(new Option("--run-id <id>", "the run").env("CN_RUN_ID").makeOptionMandatory());
}

export function taskCommand(): Command {
  const task = new Command("task").description("create tasks and read their status and logs (buyer)");
  withMasterOptions(
    task
      .command("create")
      .description("submit a container task to the run's master")
      .requiredOption("--image <image>", "container image")
      .option("--memory-mb <n>", "memory limit (MiB)", "256")
      .option("--cpus <n>", "CPU limit", "1")
      .option("--gpus <n>", "GPUs", "0")
      .option("--env <KEY=VALUE...>", "environment variables")
      .argument("<command...>", "command and arguments"),
  ).action(
    guarded(async (argv: string[], flags: MasterFlags & { image: string; memoryMb: string; cpus: string; gpus: string; env?: string[] }) => {
      const { client, audience, base } = await masterClient(flags);
      const env = Object.fromEntries((flags.env ?? []).map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]));
      const body = { image: flags.image, command: argv, env, memoryMB: Number(flags.memoryMb), cpus: Number(flags.cpus), gpus: Number(flags.gpus) };
      const created = await client.call<{ taskId: string; node: string }>("POST", `${base}/tasks`, { audience, body });
      print(flags, created, `task ${created.taskId} sent to node ${created.node}`);
    }),
  );
  withMasterOptions(task.command("status").description("a task's status").argument("<taskId>")).action(
    guarded(async (taskId: string, flags: MasterFlags) => {
      const { client, audience, base } = await masterClient(flags);
      const status = await client.call<Record<string, unknown>>("GET", `${base}/tasks/${encodeURIComponent(taskId)}`, { audience });
      print(flags, status, `task ${taskId}: ${status.state}${status.exitCode !== null && status.exitCode !== undefined ? ` (exit ${status.exitCode})` : ""}`);
    }),
  );
  withMasterOptions(task.command("logs").description("a task's stdout and stderr").argument("<taskId>")).action(
    guarded(async (taskId: string, flags: MasterFlags) => {
      const { client, audience, base } = await masterClient(flags);
      const logs = await client.call<{ stdout: string; stderr: string }>("GET", `${base}/tasks/${encodeURIComponent(taskId)}/logs`, { audience });
      if (flags.json) print(flags, logs, "");
      else {
        process.stdout.write(logs.stdout);
        process.stderr.write(logs.stderr);
      }
    }),
  );
  withMasterOptions(task.command("list").description("the run's tasks")).action(
    guarded(async (flags: MasterFlags) => {
      const { client, audience, base } = await masterClient(flags);
      const list = await client.call<{ tasks: Array<{ taskId: string; state: string; node: string }> }>("GET", `${base}/tasks`, { audience });
      print(flags, list, list.tasks.map((t) => `${t.taskId}  ${t.state.padEnd(10)} ${t.node}`).join("\n") || "no tasks");
    }),
  );
  return task;
}

export function nodesCommand(): Command {
  return withMasterOptions(new Command("nodes").description("the run's nodes as the master sees them")).action(
    guarded(async (flags: MasterFlags) => {
      const { client, audience, base } = await masterClient(flags);
      const list = await client.call<{ nodes: Array<{ node: string; state: string; lastHeartbeat?: string | null }> }>("GET", `${base}/nodes`, { audience });
      print(flags, list, list.nodes.map((n) => `${n.node}  ${n.state.padEnd(10)} last heartbeat ${n.lastHeartbeat ?? "never"}`).join("\n") || "no nodes");
    }),
  );
}

