/** Settings of the project's own tools (benchmarks, tests) read from the environment. */

/**
 * An integer setting from the environment: `fallback` when unset or empty; throws, naming the variable,
 * when it is not an integer of at least `min` (a typo must not quietly become NaN: a test told to run
 * NaN times runs none and passes).
 */
export function integerSetting(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be an integer of at least ${min}, got ${JSON.stringify(raw)}`);
  return value;
}
