/**
 * What a buyer's task may ask of a miner's Docker engine, and the checks that keep it inside those
 * bounds. Every field is validated before anything touches the engine or the disk: taskId and runId
 * become a container name and a host path, so their charsets are the first line of defence.
 */
import { z } from "zod";

export interface TaskSpec {
  /** [A-Za-z0-9_-]{1,64}; unique per miner, names the container and the storage folder. */
  taskId: string;
  /** The training run, as a decimal uint256. */
  runId: string;
  /** Local image reference; pulled only if absent and the runtime allows pulls. */
  image: string;
  /** argv given to the image (after its ENTRYPOINT, if any); no shell unless the task asks for one. */
  command: string[];
  env?: Record<string, string>;
  /** Hard memory limit (swap included), in MiB. */
  memoryMB: number;
  /** CPU quota in cores (fractions allowed). */
  cpus: number;
  /** NVIDIA GPUs to pass through; none when 0 or absent. */
  gpus?: number;
  /** Restarts after a non-zero exit, with exponential backoff; default 0. */
  maxRestarts?: number;
  /** "none" (default) or "host", and "host" only where the runtime allows it. */
  network?: "none" | "host";
  /**
   * The TaskLedger task this spec executes (decimal uint256), when the master created it on chain: the
   * miner checks the chain before starting it and reports its result hash there (ledger-tasks.ts).
   */
  ledgerTaskId?: string;
}

/** A spec after validation, with defaults filled in. */
export type ValidTaskSpec = Required<Omit<TaskSpec, "env" | "ledgerTaskId">> & { env: Record<string, string>; ledgerTaskId?: string };

export const TASK_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
// uint256 fits in 78 decimal digits; no leading zeros so that one run has one folder.
export const RUN_ID_PATTERN = /^(0|[1-9][0-9]{0,77})$/;
/** A TaskLedger task id: a positive decimal uint256 (ids start at 1). */
export const LEDGER_TASK_ID_PATTERN = /^[1-9][0-9]{0,77}$/;
const ENV_KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
// A Docker image reference (the grammar of distribution/reference): [registry[:port]/]path[:tag][@digest],
// path components in lowercase. Nothing else reaches the engine: no whitespace, control characters,
// unicode look-alikes, "..", or anything that reads as an option.
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const PATH_COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const IMAGE_PATTERN = new RegExp(
  `^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*(?::[0-9]{1,5})?/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*` +
    "(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$",
);
/** Longest image reference accepted. */
export const MAX_IMAGE_LENGTH = 255;
/**
 * A record schema that refuses a `__proto__` key (JSON.parse makes it an own key): zod skips that key
 * silently (assigning it would replace the result's prototype), so a variable named so would be dropped
 * without a word. It is valid for a shell, not as the key of a JavaScript object: refused by name.
 */
export function refusingProtoKey<T extends z.ZodType>(record: T) {
  return z.preprocess((value, ctx) => {
    if (typeof value === "object" && value !== null && Object.hasOwn(value, "__proto__")) {
      ctx.issues.push({ code: "custom", message: "the name __proto__ is not allowed", path: ["__proto__"], input: value });
    }
    return value;
  }, record);
}
/** Docker refuses containers with less memory than this. */
export const MIN_MEMORY_MB = 6;
/** 16 TiB: more than any node declares; beyond it a number is a mistake or an attack, not a request. */
export const MAX_MEMORY_MB = 16 * 1024 * 1024;
/** Docker's smallest CPU quota. */
export const MIN_CPUS = 0.01;
/** Keeps a crash-looping task from occupying the node indefinitely. */
export const MAX_RESTARTS = 100;

const noNul = (s: string) => !s.includes("\0");

const taskSpecSchema = z
  .object({
    taskId: z.string().regex(TASK_ID_PATTERN, "must match [A-Za-z0-9_-]{1,64}"),
    runId: z.string().regex(RUN_ID_PATTERN, "must be a decimal integer without leading zeros"),
    image: z
      .string()
      .max(MAX_IMAGE_LENGTH, `must be at most ${MAX_IMAGE_LENGTH} characters`)
      .regex(IMAGE_PATTERN, "must be a Docker image reference: [registry[:port]/]name[:tag][@digest], the name in lowercase"),
    command: z
      .array(z.string().refine(noNul, "must not contain NUL characters"))
      .min(1, "must be a non-empty array of strings")
      .refine((argv) => argv[0] !== "", "the program (first element) must not be empty"),
    env: refusingProtoKey(
      z.record(
        z.string().regex(ENV_KEY_PATTERN, "names must match [A-Za-z_][A-Za-z0-9_]*"),
        z.string().refine(noNul, "must not contain NUL characters"),
      ),
    ).default({}),
    memoryMB: z
      .number()
      .int("must be a whole number of MiB")
      .min(MIN_MEMORY_MB, `must be at least ${MIN_MEMORY_MB} (the engine's minimum)`)
      .max(MAX_MEMORY_MB, `must be at most ${MAX_MEMORY_MB} (16 TiB)`),
    cpus: z.number().min(MIN_CPUS, `must be at least ${MIN_CPUS}`).max(1024),
    gpus: z.number().int("must be a whole number").min(0).max(64).default(0),
    maxRestarts: z.number().int("must be a whole number").min(0).max(MAX_RESTARTS).default(0),
    network: z.enum(["none", "host"]).default("none"),
    ledgerTaskId: z
      .string()
      .regex(LEDGER_TASK_ID_PATTERN, "must be a positive decimal integer without leading zeros")
      // Only a well-formed id is converted (zod runs this even when the pattern failed).
      .refine((value) => !LEDGER_TASK_ID_PATTERN.test(value) || BigInt(value) < 2n ** 256n, "must fit in a uint256")
      .optional(),
  })
  .strict();

/**
 * Returns the spec with defaults filled in, or throws an Error whose message starts with the name of
 * the first bad field (`TaskSpec.memoryMB: ...`).
 */
export function validateTaskSpec(spec: unknown): ValidTaskSpec {
  const result = taskSpecSchema.safeParse(spec);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue.path.map(String).join(".");
  // A bad env name is reported by zod as a generic "invalid key"; its nested issue says why.
  const message = issue.code === "invalid_key" ? issue.issues[0]?.message ?? issue.message : issue.message;
  throw new Error(`invalid TaskSpec${field ? `.${field}` : ""}: ${message}`);
}
