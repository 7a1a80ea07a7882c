/**
 * Buyer and operator commands of the `computenet` CLI: create and start runs, create tasks, read their
 * status and logs, list nodes. Every command prints a readable line by default and one JSON document with
 * `--json` (for scripts).
 */
import { Command, Option } from "commander";
import { Wallet, parseUnits } from "ethers";
import { z } from "zod";
import { connectChain, contractInterfaces } from "../shared/chain.js";
import { COMMON_OPTIONS, ConfigError, loadPrivateKey, maxFeeGweiSchema, parseConfig } from "../shared/config.js";
import { SignedClient } from "../shared/http.js";
import { createLogger } from "../shared/log.js";
import { TxSender } from "../shared/tx.js";
import { gpuModel } from "../../scripts/lib/protocol.js";

interface CommonFlags {
  rpcUrl: string;
  deployment: string;
  keyFile?: string;
  maxFeeGwei?: string;
  json?: boolean;
}

function withChainOptions(command: Command): Command {
  return command
    .addOption(new Option("--rpc-url <url>", "JSON-RPC endpoint").env("CN_RPC_URL").default("http://127.0.0.1:8545"))
    .addOption(new Option("--deployment <file>", "deployments/<network>.json").env("CN_DEPLOYMENT").default("deployments/localhost.json"))
    .addOption(new Option("--key-file <file>", "file with the buyer's private key (or CN_PRIVATE_KEY)").env("CN_KEY_FILE"))
    .addOption(
      new Option(`${COMMON_OPTIONS.maxFeeGwei.flag} <gwei>`, "highest max fee per gas a transaction may carry (default: no cap)").env(COMMON_OPTIONS.maxFeeGwei.env!),
    )
    .option("--json", "print one JSON document");
}

function print(flags: { json?: boolean }, value: Record<string, unknown>, text: string): void {
  if (flags.json) console.log(JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v)));
  else console.log(text);
}

async function buyerChain(flags: CommonFlags) {
  const privateKey = loadPrivateKey({ keyFile: flags.keyFile, required: true })!;
  const { maxFeeGwei } = parseConfig(z.object({ maxFeeGwei: maxFeeGweiSchema }), { maxFeeGwei: flags.maxFeeGwei });
  return connectChain({ rpcUrl: flags.rpcUrl, deploymentFile: flags.deployment, privateKey, maxFeeGwei });
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

/** The chain's view of a task's on-chain task, as the master serves it (chain assignment). */
interface ChainView {
  taskId: string;
  epoch: string;
  assignee: string;
  status: string;
  resultHash: string | null;
  validations: Array<{ validator: string; ok: boolean }>;
  dispute: { status: string; accuser: string; invalidWeight: string; validWeight: string } | null;
}

interface TaskAnswer {
  taskId: string;
  state: string;
  node: string | null;
  exitCode?: number | null;
  units?: number;
  waiting?: string;
  error?: string | null;
  chain?: ChainView | null;
}

/** One line about a task's on-chain task: "ledger task 7 (epoch 3) Completed, result 0x12ab…, 2 validations (1 failed), dispute Open". */
export function chainLine(chain: ChainView | null | undefined): string {
  if (chain === undefined) return "";
  if (chain === null) return "not on chain yet";
  const failed = chain.validations.filter((v) => !v.ok).length;
  const parts = [`ledger task ${chain.taskId} (epoch ${chain.epoch}) ${chain.status}`];
  if (chain.resultHash) parts.push(`seal ${chain.resultHash.slice(0, 10)}…`);
  parts.push(`${chain.validations.length} validation${chain.validations.length === 1 ? "" : "s"}${failed ? ` (${failed} failed)` : ""}`);
  if (chain.dispute) parts.push(`dispute ${chain.dispute.status} (against the executor's seal ${chain.dispute.invalidWeight} / for it ${chain.dispute.validWeight})`);
  return parts.join(", ");
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
      .option("--units <n>", "work units the task is paid for (price per unit × units, from the run's escrow)", "1")
      .option("--env <KEY=VALUE...>", "environment variables")
      .argument("<command...>", "command and arguments"),
  ).action(
    guarded(async (argv: string[], flags: MasterFlags & { image: string; memoryMb: string; cpus: string; gpus: string; units: string; env?: string[] }) => {
      const { units } = parseConfig(z.object({ units: positiveInt }), { units: flags.units }, { units: { flag: "--units" } });
      const { client, audience, base } = await masterClient(flags);
      const env = Object.fromEntries((flags.env ?? []).map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]));
      const body = { image: flags.image, command: argv, env, memoryMB: Number(flags.memoryMb), cpus: Number(flags.cpus), gpus: Number(flags.gpus), units };
      const created = await client.call<TaskAnswer>("POST", `${base}/tasks`, { audience, body });
      const text =
        created.state === "queued"
          ? `task ${created.taskId} queued (${created.units ?? units} unit${(created.units ?? units) === 1 ? "" : "s"}): the chain will draw the node that runs it`
          : `task ${created.taskId} sent to node ${created.node}`;
      print(flags, created as unknown as Record<string, unknown>, text);
    }),
  );
  withMasterOptions(task.command("show").alias("status").description("a task's status, node and on-chain task").argument("<taskId>")).action(
    guarded(async (taskId: string, flags: MasterFlags) => {
      const { client, audience, base } = await masterClient(flags);
      const status = await client.call<TaskAnswer>("GET", `${base}/tasks/${encodeURIComponent(taskId)}`, { audience });
      const lines = [
        `task ${taskId}: ${status.state}${status.exitCode !== null && status.exitCode !== undefined ? ` (exit ${status.exitCode})` : ""}${status.node ? ` on node ${status.node}` : ""}`,
      ];
      if (status.waiting) lines.push(`  waiting: ${status.waiting}`);
      if (status.error) lines.push(`  error: ${status.error}`);
      if (status.chain !== undefined) lines.push(`  chain: ${chainLine(status.chain)}`);
      for (const v of status.chain?.validations ?? []) lines.push(`    validation by ${v.validator}: ${v.ok ? "reproduced" : "NOT reproduced"}`);
      print(flags, status as unknown as Record<string, unknown>, lines.join("\n"));
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
      const list = await client.call<{ tasks: TaskAnswer[] }>("GET", `${base}/tasks`, { audience });
      const line = (t: TaskAnswer) =>
        `${t.taskId}  ${t.state.padEnd(10)} ${(t.node ?? "-").padEnd(42)}${t.chain !== undefined ? `  ${chainLine(t.chain)}` : ""}`;
      print(flags, list, list.tasks.map(line).join("\n") || "no tasks");
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

