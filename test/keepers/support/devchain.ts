/**
 * A real local chain for keeper tests: a `hardhat node` on a free port, the system deployed by the
 * deploy script, roles granted and tokens handed out as on the devnet. One per test file.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { type Chain, connectChain } from "../../../keepers/shared/chain.js";
import { type EconomySettings, economyParameters, resolveEconomy } from "../../../keepers/cli/cluster.js";
import { type DevKeys, devKeys, setupDevChain } from "../../../scripts/lib/dev-setup.js";
import { removeLocalJournal } from "../../../scripts/lib/deployments.js";
import { ROOT, freePort, type HardhatNode, runHardhat, startHardhatNode } from "../../../scripts/lib/processes.js";

export interface DevChain {
  node: HardhatNode;
  dir: string;
  rpcUrl: string;
  deploymentFile: string;
  keys: DevKeys;
  /** Connected with the admin key. */
  admin: Chain;
  /** A new connection with `privateKey` (close it with `.provider.destroy()`). */
  connect(privateKey?: string): Promise<Chain>;
  stop(): Promise<void>;
}

/**
 * `economy` as in ClusterOptions: settings for short epochs, or `false` (the default) to keep epoch 1 29 days
 * away so that no keeper under test computes PoC or claims.
 */
export async function startDevChain(economy: Partial<EconomySettings> | false = false): Promise<DevChain> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "cn-devchain-"));
  const node = await startHardhatNode(await freePort(), path.join(dir, "hardhat-node.log"));
  const deploymentFile = path.join(dir, "deployments", "localhost.json");
  const keys = devKeys();
  const connect = (privateKey?: string) => connectChain({ rpcUrl: node.url, deploymentFile, privateKey, pollingIntervalMs: 100 });
  let admin: Chain;
  try {
    const settings = resolveEconomy(economy);
    const parametersFile = path.join(dir, "ignition-parameters.json");
    await writeFile(parametersFile, JSON.stringify(economyParameters(settings, Math.floor(Date.now() / 1000)), null, 2));
    await runHardhat(["run", "scripts/deploy.ts", "--network", "localhost"], {
      LOCALHOST_RPC_URL: node.url,
      COMPUTENET_DEPLOYMENTS_ROOT: dir,
      COMPUTENET_PARAMETERS: parametersFile,
    });
    admin = await connect(keys.admin);
    await setupDevChain(admin, keys);
  } catch (error) {
    await node.stop();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    node,
    dir,
    rpcUrl: node.url,
    deploymentFile,
    keys,
    admin,
    connect,
    async stop() {
      admin.provider.destroy();
      await node.stop();
      await removeLocalJournal(ROOT, admin.deployment.deploymentId);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
