/**
 * Keeper configuration: flags (commander) with environment fallbacks, validated by zod with one clear
 * message per bad value, naming the flag and its environment variable.
 */
import { readFileSync } from "node:fs";
import { type Command, Option } from "commander";
import { z } from "zod";

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

/** How each config key is set: its flag and environment variable, for error messages. */
export type OptionNames = Record<string, { flag: string; env?: string }>;

/**
 * Flag and environment names of keeper-specific config keys, derived from the key so that they cannot
 * drift apart: `heartbeatIntervalSec` is `--heartbeat-interval-sec` and `CN_HEARTBEAT_INTERVAL_SEC`.
 */
export function optionNames(...keys: string[]): OptionNames {
  const names: OptionNames = {};
  for (const key of keys) {
    const words = key.replace(/([A-Z])/g, " $1").toLowerCase().split(" ");
    names[key] = { flag: `--${words.join("-")}`, env: `CN_${words.join("_").toUpperCase()}` };
  }
  return names;
}

export const COMMON_OPTIONS: OptionNames = {
  rpcUrl: { flag: "--rpc-url", env: "CN_RPC_URL" },
  deployment: { flag: "--deployment", env: "CN_DEPLOYMENT" },
  dataDir: { flag: "--data-dir", env: "CN_DATA_DIR" },
  logLevel: { flag: "--log-level", env: "LOG_LEVEL" },
  keyFile: { flag: "--key-file", env: "CN_KEY_FILE" },
  host: { flag: "--host", env: "CN_HOST" },
  port: { flag: "--port", env: "CN_PORT" },
  pollMs: { flag: "--poll-ms", env: "CN_POLL_MS" },
  confirmations: { flag: "--confirmations", env: "CN_CONFIRMATIONS" },
  /** Only on keepers that send transactions (addFeeOptions). */
  maxFeeGwei: { flag: "--max-fee-gwei", env: "CN_MAX_FEE_GWEI" },
};

/** Adds the options every keeper has. */
export function addCommonOptions(command: Command, defaults: { port: number; dataDir: string }): Command {
  const o = COMMON_OPTIONS;
  return command
    .addOption(new Option(`${o.rpcUrl.flag} <url>`, "JSON-RPC endpoint").env(o.rpcUrl.env!).default("http://127.0.0.1:8545"))
    .addOption(
      new Option(`${o.deployment.flag} <file>`, "deployments/<network>.json to read addresses from")
        .env(o.deployment.env!)
        .default("deployments/localhost.json"),
    )
    .addOption(new Option(`${o.dataDir.flag} <dir>`, "folder for the keeper's SQLite file and blobs").env(o.dataDir.env!).default(defaults.dataDir))
    .addOption(
      new Option(`${o.keyFile.flag} <file>`, "file holding the keeper's private key (or set CN_PRIVATE_KEY)").env(o.keyFile.env!),
    )
    .addOption(new Option(`${o.host.flag} <host>`, "address to listen on").env(o.host.env!).default("127.0.0.1"))
    .addOption(new Option(`${o.port.flag} <port>`, "port to listen on (0: any free port)").env(o.port.env!).default(String(defaults.port)))
    // No defaults here: unset, they come from the deployment's chain profile (keepers/shared/profile.ts).
    .addOption(
      new Option(`${o.pollMs.flag} <ms>`, "chain polling interval (default: by chain id, 1000 on Arbitrum, 500 on a local node)").env(o.pollMs.env!),
    )
    .addOption(
      new Option(
        `${o.confirmations.flag} <n>`,
        "blocks to stay behind the head before acting on an event (default: by chain id, 2 on Arbitrum One, 1 on Arbitrum Sepolia, 0 on a local node)",
      ).env(o.confirmations.env!),
    )
    .addOption(
      new Option(`${o.logLevel.flag} <level>`, "log level").env(o.logLevel.env!).choices(["trace", "debug", "info", "warn", "error"]).default("info"),
    );
}

/** Adds `--max-fee-gwei` (CN_MAX_FEE_GWEI) to a keeper that sends transactions. */
export function addFeeOptions(command: Command): Command {
  return command.addOption(
    new Option(
      `${COMMON_OPTIONS.maxFeeGwei.flag} <gwei>`,
      "highest max fee per gas a transaction may carry, e.g. 0.5; while the base fee is above it nothing is sent (default: no cap)",
    ).env(COMMON_OPTIONS.maxFeeGwei.env!),
  );
}

/** `--max-fee-gwei`: absent, or a positive decimal number of gwei with at most 9 decimals (1 wei). */
export const maxFeeGweiSchema = z
  .string()
  .regex(/^\d{1,6}(\.\d{1,9})?$/, "must be a number of gwei like 0.5 (at most 9 decimals)")
  .refine((text) => /[1-9]/.test(text), "must be more than 0")
  .optional();

/** A whole number in [min, max], from a flag's or env variable's text, with messages naming the bounds. */
export const integerOption = (min: number, max: number) =>
  z.coerce.number({ error: "must be a number" }).int("must be an integer").min(min, `must be at least ${min}`).max(max, `must be at most ${max}`);

export const commonSchema = z.object({
  rpcUrl: z.url({ error: "must be an http(s) or ws(s) URL" }),
  deployment: z.string().min(1, "must not be empty"),
  dataDir: z.string().min(1, "must not be empty"),
  keyFile: z.string().min(1).optional(),
  host: z.string().min(1, "must not be empty"),
  port: integerOption(0, 65535),
  pollMs: integerOption(50, 60_000).optional(),
  confirmations: integerOption(0, 1000).optional(),
  maxFeeGwei: maxFeeGweiSchema,
  logLevel: z.enum(["trace", "debug", "info", "warn", "error"]),
});

/** Validates `raw` against `schema`; throws a ConfigError naming each bad flag (and its env variable). */
export function parseConfig<T extends z.ZodType>(schema: T, raw: unknown, names: OptionNames = COMMON_OPTIONS): z.infer<T> {
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const key = String(issue.path[0] ?? "");
    const name = names[key];
    const where = name ? `${name.flag}${name.env ? ` (${name.env})` : ""}` : key || "config";
    const value = key && raw && typeof raw === "object" ? (raw as Record<string, unknown>)[key] : undefined;
    return `${where}: ${issue.message}${value !== undefined ? ` (got ${JSON.stringify(value)})` : ""}`;
  });
  throw new ConfigError(problems);
}

const PRIVATE_KEY = /^0x[0-9a-fA-F]{64}$/;

/** The keeper's private key from CN_PRIVATE_KEY or the key file; never logged. */
export function loadPrivateKey(options: { keyFile?: string; env?: NodeJS.ProcessEnv; required: boolean }): string | undefined {
  const env = options.env ?? process.env;
  let key = env.CN_PRIVATE_KEY?.trim();
  let source = "CN_PRIVATE_KEY";
  if (!key && options.keyFile) {
    source = options.keyFile;
    try {
      key = readFileSync(options.keyFile, "utf8").trim();
    } catch (error) {
      throw new ConfigError([`${COMMON_OPTIONS.keyFile.flag}: cannot read ${options.keyFile}: ${(error as Error).message}`]);
    }
  }
  if (!key) {
    if (options.required) throw new ConfigError([`a private key is required: set CN_PRIVATE_KEY or ${COMMON_OPTIONS.keyFile.flag}`]);
    return undefined;
  }
  if (!key.startsWith("0x")) key = `0x${key}`;
  if (!PRIVATE_KEY.test(key)) throw new ConfigError([`the private key in ${source} must be 32 bytes of hex`]);
  return key;
}

// ------------------------------------------------------------------ shared state (several instances)

export const REDIS_OPTIONS: OptionNames = { redisUrl: { flag: "--redis-url", env: "CN_REDIS_URL" } };

/** Adds `--redis-url` (CN_REDIS_URL) to a keeper that can run as several instances on one Redis. */
export function addRedisOption(command: Command, what: string): Command {
  return command.addOption(
    new Option(
      `${REDIS_OPTIONS.redisUrl.flag} <url>`,
      `Redis holding the state several instances share (${what}), e.g. redis://127.0.0.1:6379/0; unset: the embedded SQLite file, one instance`,
    ).env(REDIS_OPTIONS.redisUrl.env!),
  );
}

/** `--redis-url`: absent, or a redis:// / rediss:// URL with a host and at most a database number as its path. */
export const redisUrlSchema = z
  .string()
  .refine((text) => {
    try {
      const url = new URL(text);
      return (url.protocol === "redis:" || url.protocol === "rediss:") && url.hostname !== "" && /^(\/\d{0,2})?$/.test(url.pathname);
    } catch {
      return false;
    }
  }, "must be a redis:// or rediss:// URL with a host, e.g. redis://127.0.0.1:6379/0")
  .optional();
