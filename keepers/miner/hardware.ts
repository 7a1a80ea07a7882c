/**
 * The miner's hardware detection and its check against a run's requirements.
 *
 * `detectHardware` reads what this machine has (CPU, RAM, free storage, compute GPUs); `toCapabilities`
 * turns that into the `IMinerRegistry.Capabilities` a node declares on chain; `checkRequirements` applies
 * the same rules as `TrainingRuns._checkRequirements`, so a miner can tell before it sends a transaction
 * (and explain to its operator) why `registerForRun` would revert.
 *
 * Where the figures come from, and why:
 * - NVIDIA GPUs: `nvidia-smi` when it runs. It is the driver's own view (name, memory in MiB, PCI bus id);
 *   lspci, which systeminformation reads without it, only knows the size of the PCI memory window
 *   (e.g. 128 GiB for an 80 GB H100, 256 MiB for an RTX 4090 without resizable BAR), not the memory.
 * - Other GPUs, and NVIDIA GPUs when nvidia-smi is absent: systeminformation's graphics controllers, of
 *   which only compute GPUs count (see `isComputeController`).
 * - CPU cores: logical cores (`cpu().cores`), as the registry's `cpuCores` means. Like RAM, this is the
 *   machine's figure, not a container's cgroup limit.
 * - Storage: free space, for an unprivileged user, of the filesystem that holds `storagePath`, asked of
 *   the kernel with statfs(2). systeminformation's `fsSize` lists only local filesystems by mount point,
 *   which misses network mounts and would need guessing which mount holds the path.
 */
import { execFile } from "node:child_process";
import { statfs } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { ZeroHash, decodeBytes32String } from "ethers";
import si from "systeminformation";
import { type Capabilities, gpuModel } from "../../scripts/lib/protocol.js";

export interface GpuInfo {
  /** The name as the driver or systeminformation reports it, e.g. "NVIDIA H100 80GB HBM3". */
  model: string;
  /** Total memory in MiB; 0 when the source could not tell. */
  memoryMB: number;
  vendor: string;
  /** PCI address as the source reports it ("00000000:18:00.0" from nvidia-smi, "18:00.0" from lspci). */
  busId?: string;
}

export interface HardwareReport {
  /** Logical CPU cores. */
  cpuCores: number;
  cpuModel: string;
  /** Total system memory in MiB. */
  ramMB: number;
  /** Free space at `storagePath` in GB (10^9 bytes), floored. */
  storageGB: number;
  /** Absolute path whose filesystem `storageGB` measures. */
  storagePath: string;
  gpus: GpuInfo[];
  /** Whether systeminformation believes this is a virtual machine. */
  virtual: boolean;
}

/** One graphics controller, as `systeminformation.graphics()` reports it (only the fields used here). */
export interface GraphicsControllerLike {
  vendor?: string;
  model?: string;
  /** nvidia-smi's name, which systeminformation merges in when it could run nvidia-smi itself. */
  name?: string;
  /** MiB: the driver's figure when known, else lspci's largest PCI memory region. */
  vram?: number | null;
  busAddress?: string;
  /** MiB, from nvidia-smi. */
  memoryTotal?: number | null;
}

export interface GraphicsLike {
  controllers: GraphicsControllerLike[];
}

/** The part of systeminformation this module uses, so that tests can inject recorded outputs. */
export interface SystemInformationLike {
  cpu(): Promise<{ cores: number; manufacturer?: string; brand?: string }>;
  mem(): Promise<{ total: number }>;
  graphics(): Promise<GraphicsLike>;
  system(): Promise<{ virtual?: boolean }>;
}

export interface DetectOptions {
  /** Where tasks store their data; defaults to the working directory. */
  storagePath?: string;
  si?: SystemInformationLike;
  /**
   * Returns the output of `nvidia-smi --query-gpu=name,memory.total,pci.bus_id --format=csv,noheader,nounits`,
   * or null when nvidia-smi is not installed. Defaults to `runNvidiaSmi`.
   */
  nvidiaSmi?: () => Promise<string | null>;
}

/** Largest values of the on-chain types (`uint16`, `uint32`) of `IMinerRegistry.Capabilities`. */
export const MAX_UINT16 = 0xffff;
export const MAX_UINT32 = 0xffff_ffff;

/** Below this much memory a controller is a display adapter, not something to train on. */
export const MIN_COMPUTE_GPU_MEMORY_MB = 1024;

/**
 * Display-only and virtual adapters: BMC consoles (ASPEED, Matrox), emulated or paravirtual VGA of
 * hypervisors (Cirrus, VMware SVGA, QXL, virtio-gpu, Bochs/QEMU, VirtualBox, Hyper-V, Parallels).
 * A hypervisor may give one a large video memory, so the memory floor alone would not exclude it.
 */
const NON_COMPUTE_ADAPTER =
  /cirrus|vmware|svga|matrox|aspeed|qxl|virtio|bochs|qemu|virtualbox|innotek|hyper-v|parallels|basic (render|display)|standard vga/i;

const NVIDIA_SMI_ARGS = ["--query-gpu=name,memory.total,pci.bus_id", "--format=csv,noheader,nounits"];
/** nvidia-smi can take seconds per GPU to initialise the driver when persistence mode is off. */
const NVIDIA_SMI_TIMEOUT_MS = 15_000;
/** nvidia-smi's exit code when the driver is loaded but sees no GPU. */
const NVIDIA_SMI_NO_DEVICES = 6;

const execFileAsync = promisify(execFile);

/**
 * Runs nvidia-smi's GPU query. Resolves null when nvidia-smi is not installed (a machine without NVIDIA
 * GPUs is normal) and "" when the driver sees no GPU. Rejects when nvidia-smi is installed but fails or
 * hangs: that is a broken driver the operator must fix, and answering "no GPUs" would make the node
 * declare less than it has.
 */
export async function runNvidiaSmi(options: { executable?: string; timeoutMs?: number } = {}): Promise<string | null> {
  const executable = options.executable ?? "nvidia-smi";
  try {
    const { stdout } = await execFileAsync(executable, NVIDIA_SMI_ARGS, {
      timeout: options.timeoutMs ?? NVIDIA_SMI_TIMEOUT_MS,
      windowsHide: true,
    });
    return stdout;
  } catch (error) {
    // execFile's error: `code` is an errno name when the program could not start, else its exit code.
    const failure = error as Error & {
      code?: string | number | null;
      killed?: boolean;
      stdout?: string;
      stderr?: string;
    };
    if (failure.code === "ENOENT") return null;
    if (failure.code === NVIDIA_SMI_NO_DEVICES) return "";
    const detail = failure.killed ? "timed out" : (failure.stderr || failure.stdout || failure.message).trim();
    throw new Error(`${executable} failed: ${detail}`, { cause: error });
  }
}

/**
 * Parses `nvidia-smi --query-gpu=name,memory.total,pci.bus_id --format=csv,noheader,nounits`, one GPU a
 * line. Memory that nvidia-smi cannot read ("[N/A]", "[Not Supported]", "[Unknown Error]") becomes 0; a
 * "MiB" unit (output made without `nounits`) is accepted. Lines whose memory field is neither (a header
 * line, an error message) are skipped rather than counted as GPUs.
 */
export function parseNvidiaSmiCsv(output: string): GpuInfo[] {
  const gpus: GpuInfo[] = [];
  for (const line of output.split(/\r?\n/)) {
    const [name, memory, busId] = line.split(",").map((field) => field.trim());
    if (!name || memory === undefined) continue;
    const memoryMB = parseSmiMemory(memory);
    if (memoryMB === undefined) continue;
    gpus.push({ model: name, memoryMB, vendor: "NVIDIA", ...(busId ? { busId } : {}) });
  }
  return gpus;
}

function parseSmiMemory(field: string): number | undefined {
  const figure = /^(\d+(?:\.\d+)?)(?:\s*MiB)?$/i.exec(field);
  if (figure) return Math.floor(Number(figure[1]));
  if (/^\[.*\]$/.test(field)) return 0;
  return undefined;
}

/**
 * The compute GPUs among systeminformation's graphics controllers. Memory is `memoryTotal` (nvidia-smi's
 * figure, when systeminformation could run it) before `vram`. Only compute controllers count
 * (`isComputeController`).
 */
export function gpusFromSystemInformation(graphics: GraphicsLike): GpuInfo[] {
  const gpus: GpuInfo[] = [];
  for (const controller of graphics.controllers) {
    const model = (controller.name || controller.model || "").trim();
    const memoryMB = positiveOrZero(controller.memoryTotal) || positiveOrZero(controller.vram);
    const vendor = (controller.vendor ?? "").trim();
    if (!isComputeController(vendor, model, memoryMB)) continue;
    gpus.push({ model, memoryMB, vendor, ...(controller.busAddress ? { busId: controller.busAddress } : {}) });
  }
  return gpus;
}

/**
 * A controller counts as a compute GPU when systeminformation could name it, it is not a known
 * display-only or virtual adapter (`NON_COMPUTE_ADAPTER`, matched on vendor and model), and it has at
 * least `MIN_COMPUTE_GPU_MEMORY_MB`. The name is required because lspci lines systeminformation cannot
 * split ("VMware SVGA II Adapter", "Device 1234:1111") come back with an empty vendor and model; the
 * memory floor drops integrated and BMC graphics whose names no list can foresee.
 */
export function isComputeController(vendor: string, model: string, memoryMB: number): boolean {
  if (model === "") return false;
  if (NON_COMPUTE_ADAPTER.test(`${vendor} ${model}`)) return false;
  return memoryMB >= MIN_COMPUTE_GPU_MEMORY_MB;
}

function positiveOrZero(value: number | null | undefined): number {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? Math.floor(value) : 0;
}

/**
 * Detects this machine's hardware. A missing nvidia-smi is normal and never an error; a broken one
 * (see `runNvidiaSmi`) or a `storagePath` that does not exist rejects.
 */
export async function detectHardware(options: DetectOptions = {}): Promise<HardwareReport> {
  const info = options.si ?? si;
  const storagePath = path.resolve(options.storagePath ?? process.cwd());
  // nvidia-smi first and alone: systeminformation's graphics() runs nvidia-smi itself, synchronously and
  // without a timeout, so a hung driver must fail our bounded call before it can block the process.
  const smiOutput = await (options.nvidiaSmi ?? runNvidiaSmi)();
  const [cpu, mem, graphics, system, storageGB] = await Promise.all([
    info.cpu(),
    info.mem(),
    info.graphics(),
    info.system(),
    freeStorageGB(storagePath),
  ]);

  const fromSmi = smiOutput === null ? [] : parseNvidiaSmiCsv(smiOutput);
  const fromSi = gpusFromSystemInformation(graphics);
  // nvidia-smi speaks for the NVIDIA GPUs; systeminformation still speaks for any other vendor's.
  const gpus = fromSmi.length > 0 ? [...fromSmi, ...fromSi.filter((gpu) => !/nvidia/i.test(gpu.vendor))] : fromSi;

  return {
    cpuCores: cpu.cores,
    cpuModel: [cpu.manufacturer, cpu.brand].filter(Boolean).join(" "),
    ramMB: Math.floor(mem.total / 2 ** 20),
    storageGB,
    storagePath,
    gpus,
    virtual: system.virtual === true,
  };
}

async function freeStorageGB(storagePath: string): Promise<number> {
  const stats = await statfs(storagePath, { bigint: true });
  return Number((stats.bavail * stats.bsize) / 1_000_000_000n);
}

const BRAND_WORDS = new Set(["NVIDIA", "GEFORCE", "TESLA", "QUADRO", "AMD", "ATI", "RADEON", "INSTINCT", "INTEL"]);

/**
 * A GPU name as the short model id nodes declare and runs allow, e.g. "NVIDIA H100 80GB HBM3" ->
 * "H100-80GB", "NVIDIA A100-SXM4-40GB" -> "A100-40GB", "NVIDIA GeForce RTX 4090" -> "RTX-4090".
 *
 * Rules: take the marketing name in brackets when there is one (lspci's "GH100 [H100 SXM5 80GB]"), so
 * that lspci and nvidia-smi names of one card agree; upper-case; split on anything but letters and
 * digits; drop brand words (NVIDIA, GeForce, Tesla, Quadro, AMD, ATI, Radeon, Instinct, Intel), form
 * factors (SXMn, PCIe) and memory technologies (HBMn[e]); join with "-"; cut to 31 bytes (a bytes32
 * string). The memory size stays when the name carries it: per-GPU memory is declared on its own, and
 * guessing a marketing size from MiB is unreliable (a 16 GB T4 reports 15360 MiB, a 24 GB L4 23034).
 * Hence an H100 PCIe, whose name has no size, is "H100". An empty result is "UNKNOWN".
 */
export function normaliseGpuModel(name: string): string {
  const marketingName = /\[([^\]]+)\]/.exec(name)?.[1] ?? name;
  const tokens = marketingName
    .toUpperCase()
    .split(/[^A-Z0-9]+/)
    .filter((token) => token !== "" && !BRAND_WORDS.has(token) && !/^(SXM\d*|PCIE|HBM\d*E?)$/.test(token));
  return tokens.join("-").slice(0, 31).replace(/-+$/, "") || "UNKNOWN";
}

/**
 * What this node declares on chain. A node declares one GPU model: the most common normalised model
 * among its GPUs (ties: the larger memory, then the name), with `gpuCount` the number of GPUs of that
 * model and `gpuMemoryMB` the smallest memory among them. GPUs of one model share one memory size, so a
 * GPU whose memory could not be read (0) is left out of that minimum rather than dragging it to 0, which
 * the registry rejects for a GPU node.
 *
 * `options.gpuModel` is the operator's override of the model name, used as given (at most 31 bytes, or
 * `gpuModel` throws). With no GPU the model is zero, as the registry requires, whatever the override.
 *
 * Figures above the on-chain types are clamped to their maximum (65535 for uint16, 2^32-1 for uint32):
 * declaring less than the machine has is always safe, because requirements are minimums.
 */
export function toCapabilities(report: HardwareReport, options: { gpuModel?: string } = {}): Capabilities {
  const chosen = mostCommonModel(report.gpus);
  const knownMemory = (chosen?.gpus ?? []).map((gpu) => gpu.memoryMB).filter((memory) => memory > 0);
  const minMemory = knownMemory.reduce((min, memory) => Math.min(min, memory), Infinity);
  return {
    gpuCount: clamp(chosen?.gpus.length ?? 0, MAX_UINT16),
    gpuModel: chosen ? gpuModel(options.gpuModel || chosen.model) : ZeroHash,
    gpuMemoryMB: clamp(knownMemory.length > 0 ? minMemory : 0, MAX_UINT32),
    cpuCores: clamp(report.cpuCores, MAX_UINT16),
    ramMB: clamp(report.ramMB, MAX_UINT32),
    storageGB: clamp(report.storageGB, MAX_UINT32),
  };
}

function mostCommonModel(gpus: GpuInfo[]): { model: string; gpus: GpuInfo[] } | undefined {
  const groups = new Map<string, GpuInfo[]>();
  for (const gpu of gpus) {
    const model = normaliseGpuModel(gpu.model);
    const group = groups.get(model);
    if (group) group.push(gpu);
    else groups.set(model, [gpu]);
  }
  const maxMemory = (group: GpuInfo[]) => group.reduce((max, gpu) => Math.max(max, gpu.memoryMB), 0);
  const ranked = [...groups].sort(
    ([modelA, a], [modelB, b]) => b.length - a.length || maxMemory(b) - maxMemory(a) || modelA.localeCompare(modelB),
  );
  return ranked.length > 0 ? { model: ranked[0][0], gpus: ranked[0][1] } : undefined;
}

function clamp(value: number, max: number): number {
  return Number.isFinite(value) && value > 0 ? Math.min(Math.floor(value), max) : 0;
}

type Figure = bigint | number;

/** Capabilities with numbers or bigints (as contract views return them). */
export type CapabilityFigures = { [K in keyof Capabilities]: K extends "gpuModel" ? string : Figure };

/** `ITrainingRuns.Requirements`, with numbers or bigints. Zero means no requirement. */
export interface RequirementsLike {
  minGpuCount: Figure;
  minGpuMemoryMB: Figure;
  minCpuCores: Figure;
  minRamMB: Figure;
  minStorageGB: Figure;
  /** bytes32 hex model ids; empty accepts any model. */
  allowedGpuModels: readonly string[];
}

export interface RequirementGap {
  requirement: "GpuCount" | "GpuModel" | "GpuMemory" | "CpuCores" | "Ram" | "Storage";
  /** Decimal figure, or for GpuModel the allowed model names joined with ", ". */
  required: string;
  /** Decimal figure, or for GpuModel the node's model name ("" when it has none). */
  actual: string;
}

/**
 * Every requirement `caps` misses, in the order `TrainingRuns._checkRequirements` checks them (it reverts
 * on the first). Same rules: a figure equal to the requirement passes; an empty allowed list accepts any
 * model, a non-empty one must contain the node's model (so a GPU-less node, whose model is zero, fails it).
 */
export function checkRequirements(caps: CapabilityFigures, req: RequirementsLike): RequirementGap[] {
  const gaps: RequirementGap[] = [];
  const atLeast = (requirement: RequirementGap["requirement"], actual: Figure, required: Figure) => {
    if (BigInt(actual) < BigInt(required)) {
      gaps.push({ requirement, required: BigInt(required).toString(), actual: BigInt(actual).toString() });
    }
  };
  atLeast("GpuCount", caps.gpuCount, req.minGpuCount);
  atLeast("GpuMemory", caps.gpuMemoryMB, req.minGpuMemoryMB);
  atLeast("CpuCores", caps.cpuCores, req.minCpuCores);
  atLeast("Ram", caps.ramMB, req.minRamMB);
  atLeast("Storage", caps.storageGB, req.minStorageGB);
  const model = caps.gpuModel.toLowerCase();
  if (req.allowedGpuModels.length > 0 && !req.allowedGpuModels.some((allowed) => allowed.toLowerCase() === model)) {
    gaps.push({
      requirement: "GpuModel",
      required: req.allowedGpuModels.map(modelName).join(", "),
      actual: modelName(caps.gpuModel),
    });
  }
  return gaps;
}

/** A bytes32 model id as its name; one that is not a valid bytes32 string is shown as hex. */
function modelName(bytes32: string): string {
  try {
    return decodeBytes32String(bytes32);
  } catch {
    return bytes32;
  }
}

/**
 * The gaps as text for the operator, one line per missing requirement, prefixed with the run when given,
 * e.g. "run 3: GPU memory: needs 81920 MiB per GPU, this node has 24576 MiB".
 */
export function formatRequirementReport(gaps: RequirementGap[], context: { runId?: bigint | string } = {}): string {
  const prefix = context.runId === undefined ? "" : `run ${context.runId}: `;
  if (gaps.length === 0) return `${prefix}this node meets every requirement`;
  return gaps.map((gap) => prefix + describeGap(gap)).join("\n");
}

function describeGap({ requirement, required, actual }: RequirementGap): string {
  switch (requirement) {
    case "GpuCount":
      return `GPU count: needs ${required} GPUs, this node has ${actual}`;
    case "GpuMemory":
      return `GPU memory: needs ${required} MiB per GPU, this node has ${actual} MiB`;
    case "CpuCores":
      return `CPU cores: needs ${required}, this node has ${actual}`;
    case "Ram":
      return `RAM: needs ${required} MiB, this node has ${actual} MiB`;
    case "Storage":
      return `storage: needs ${required} GB free, this node has ${actual} GB`;
    case "GpuModel":
      return `GPU model: needs one of ${required}, this node has ${actual === "" ? "no GPU" : actual}`;
  }
}
