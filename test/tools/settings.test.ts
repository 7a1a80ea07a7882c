/**
 * Settings of the project's own tools from the environment (scripts/lib/env.ts): the benchmarks' knobs and
 * the property tests' FC_SEED / FC_RUNS / FC_SHRINKS. A malformed value must fail by name, never become
 * NaN (a property told to run NaN times runs none and passes).
 */
import { expect } from "chai";
import fc from "fast-check";
import { integerSetting } from "../../scripts/lib/env.js";
import { checkProperty, maxShrinks } from "../invariants/property.js";

/** Runs `body` with the environment variables set (undefined: unset), restoring them after. */
async function withEnv(vars: Record<string, string | undefined>, body: () => unknown): Promise<void> {
  const saved = Object.fromEntries(Object.keys(vars).map((name) => [name, process.env[name]]));
  const set = (values: Record<string, string | undefined>) => {
    for (const [name, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  set(vars);
  try {
    await body();
  } finally {
    set(saved);
  }
}

describe("tool settings from the environment (scripts/lib/env.ts)", () => {
  const name = "CN_TEST_SETTING";

  it("reads an integer setting: unset or empty is the default, anything but an integer in range is refused by name", async () => {
    await withEnv({ [name]: undefined }, () => expect(integerSetting(name, 64, 1)).to.equal(64));
    for (const [raw, value] of [["", 64], ["  ", 64], ["8", 8], ["1", 1]] as const) {
      await withEnv({ [name]: raw }, () => expect(integerSetting(name, 64, 1), JSON.stringify(raw)).to.equal(value));
    }
    await withEnv({ [name]: "0" }, () => expect(integerSetting(name, 1, 0)).to.equal(0));
    for (const raw of ["0", "-2", "1.5", "abc", "Infinity", "NaN"]) {
      await withEnv({ [name]: raw }, () =>
        expect(() => integerSetting(name, 64, 1), raw).to.throw(`${name} must be an integer of at least 1, got ${JSON.stringify(raw)}`),
      );
    }
  });

  it("takes negative values down to a negative minimum (FC_SEED's)", async () => {
    await withEnv({ [name]: "-2147483648" }, () => expect(integerSetting(name, 0, -(2 ** 31))).to.equal(-(2 ** 31)));
    await withEnv({ [name]: "-2147483649" }, () => expect(() => integerSetting(name, 0, -(2 ** 31))).to.throw(/at least -2147483648/));
  });

  it("makes the property tests refuse a malformed FC_RUNS or FC_SHRINKS instead of running a property zero times", async () => {
    const alwaysFalse = fc.asyncProperty(fc.integer(), async () => false);
    for (const raw of ["abc", "0", "1.5"]) {
      await withEnv({ FC_RUNS: raw, FC_SEED: undefined, FC_PATH: undefined }, async () => {
        const error = await checkProperty("a property that always fails", "test/tools/settings.test.ts", alwaysFalse, 5).then(
          () => undefined,
          (e: Error) => e,
        );
        expect(error?.message, raw).to.equal(`FC_RUNS must be an integer of at least 1, got ${JSON.stringify(raw)}`);
      });
    }
    await withEnv({ FC_SHRINKS: "many" }, () => expect(() => maxShrinks()).to.throw(/FC_SHRINKS must be an integer of at least 0/));
  });

  it("runs a property FC_RUNS times when it is set, and the given number of times when it is not", async () => {
    let calls = 0;
    const counted = fc.asyncProperty(fc.integer(), async () => {
      calls++;
      return true;
    });
    await withEnv({ FC_RUNS: "7", FC_SEED: "42", FC_PATH: undefined }, () => checkProperty("counted", "test/tools/settings.test.ts", counted, 3));
    expect(calls).to.equal(7);
    calls = 0;
    await withEnv({ FC_RUNS: undefined, FC_SEED: "42", FC_PATH: undefined }, () => checkProperty("counted", "test/tools/settings.test.ts", counted, 3));
    expect(calls).to.equal(3);
  });
});
