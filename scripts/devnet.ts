/**
 * `npm run devnet`: the whole computenet network on this machine. For now: a local Hardhat node
 * (JSON-RPC on 127.0.0.1:8545, or --port), the full system deployed to it with Ignition, and a
 * summary; keepers join in the next milestone. Runs until Ctrl-C, then stops the node.
 *
 *   npm run devnet [-- --port 8545] [-- --exit]   (--exit: stop after the deploy, for scripts)
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { ROOT, runHardhat, startHardhatNode } from "./lib/processes.js";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "8545" },
    exit: { type: "boolean", default: false },
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error(`--port must be an integer in 1..65535, got "${values.port}"`);
  process.exit(2);
}

const logDir = path.join(ROOT, ".devnet", new Date().toISOString().replace(/[:.]/g, "-"));
mkdirSync(logDir, { recursive: true });
const nodeLog = path.join(logDir, "hardhat-node.log");

console.log(`[devnet] logs in ${path.relative(process.cwd(), logDir)}/`);
console.log(`[devnet] starting hardhat node on 127.0.0.1:${port} ...`);
const node = await startHardhatNode(port, nodeLog).catch((error: Error) => {
  console.error(`[devnet] ${error.message}`);
  process.exit(1);
});

let stopping = false;
async function shutdown(code: number) {
  if (stopping) return;
  stopping = true;
  console.log("[devnet] stopping hardhat node ...");
  await node.stop();
  console.log("[devnet] stopped");
  process.exit(code);
}
process.on("SIGINT", () => void shutdown(0));
process.on("SIGTERM", () => void shutdown(0));
node.process.once("exit", (code) => {
  if (!stopping) {
    console.error(`[devnet] hardhat node exited unexpectedly (code ${code}); see ${nodeLog}`);
    process.exit(1);
  }
});

console.log(`[devnet] node ready at ${node.url}; deploying the system ...`);
try {
  const output = await runHardhat(["run", "scripts/deploy.ts", "--network", "localhost"], {
    LOCALHOST_RPC_URL: node.url,
  });
  const summary = output.slice(output.indexOf("computenet on")).replace(/\nWARNING: .*$/s, "");
  console.log(`\n${summary.trim()}\n`);
} catch (error) {
  console.error(`[devnet] deploy failed: ${(error as Error).message}`);
  await shutdown(1);
}

if (values.exit) {
  await shutdown(0);
} else {
  console.log(`[devnet] running. JSON-RPC ${node.url}; Hardhat's 20 funded test accounts are listed in ${nodeLog}`);
  console.log("[devnet] press Ctrl-C to stop");
}
