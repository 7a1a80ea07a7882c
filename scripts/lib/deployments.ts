/**
 * `deployments/<network>.json`: where each computenet contract lives on a network and from which
 * block its events start. Written by `npm run deploy`, read by keepers, scripts and tests.
 */
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { getAddress } from "ethers";

export const CONTRACT_NAMES = [
  "ComputeToken",
  "MinerRegistry",
  "ChallengeBoard",
  "TrainingRuns",
  "EpochManager",
  "ProofOfCompute",
  "RewardVault",
  "TaskLedger",
  "Settlement",
] as const;
export type ContractName = (typeof CONTRACT_NAMES)[number];

export interface DeployedContract {
  address: string;
  /** Block of the transaction that created the contract: where event scans start. */
  block: number;
}

export interface Deployment {
  network: string;
  chainId: number;
  /** Ignition deployment id (its journal lives in ignition/deployments/<id>/). */
  deploymentId: string;
  deployedAt: string;
  /** The smallest `block` of all contracts. */
  startBlock: number;
  contracts: Record<ContractName, DeployedContract>;
}

export function deploymentPath(root: string, network: string): string {
  return path.join(root, "deployments", `${network}.json`);
}

/** Reads and checks a deployment file; throws an error that names the file and the bad field. */
export async function readDeployment(file: string): Promise<Deployment> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, "utf8"));
  } catch (error) {
    throw new Error(`cannot read deployment ${file}: ${(error as Error).message}`);
  }
  return parseDeployment(raw, file);
}

export function parseDeployment(raw: unknown, source = "deployment"): Deployment {
  const fail = (what: string): never => {
    throw new Error(`${source}: ${what}`);
  };
  if (typeof raw !== "object" || raw === null) fail("not a JSON object");
  const value = raw as Record<string, unknown>;
  const isBlock = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;
  if (typeof value.network !== "string" || value.network === "") fail("`network` must be a non-empty string");
  if (!Number.isSafeInteger(value.chainId) || (value.chainId as number) <= 0) fail("`chainId` must be a positive integer");
  if (typeof value.deploymentId !== "string") fail("`deploymentId` must be a string");
  if (typeof value.deployedAt !== "string") fail("`deployedAt` must be a string");
  if (!isBlock(value.startBlock)) fail("`startBlock` must be a block number");
  const contracts = value.contracts as Record<string, unknown> | undefined;
  if (typeof contracts !== "object" || contracts === null) fail("`contracts` must be an object");
  const parsed = {} as Record<ContractName, DeployedContract>;
  for (const name of CONTRACT_NAMES) {
    const entry = contracts![name] as Record<string, unknown> | undefined;
    if (typeof entry !== "object" || entry === null) fail(`contracts.${name} is missing`);
    let address = "";
    try {
      address = getAddress(String(entry!.address));
    } catch {
      fail(`contracts.${name}.address is not an address`);
    }
    if (!isBlock(entry!.block)) fail(`contracts.${name}.block must be a block number`);
    parsed[name] = { address, block: entry!.block as number };
  }
  return {
    network: value.network as string,
    chainId: value.chainId as number,
    deploymentId: value.deploymentId as string,
    deployedAt: value.deployedAt as string,
    startBlock: value.startBlock as number,
    contracts: parsed,
  };
}

export async function writeDeployment(file: string, deployment: Deployment): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  // Write-then-rename: a crash mid-write never leaves a truncated file for keepers to read.
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(deployment, null, 2)}\n`);
  await rename(tmp, file);
}

/**
 * Removes Ignition's journal of a deployment to a throw-away local node (`localhost-<genesis>`): once the
 * node is stopped the chain is gone and the journal is of no use. Real networks' journals are kept.
 */
export async function removeLocalJournal(root: string, deploymentId: string): Promise<void> {
  if (!/^localhost-[0-9a-f]+$/.test(deploymentId)) return;
  await rm(path.join(root, "ignition", "deployments", deploymentId), { recursive: true, force: true });
}
