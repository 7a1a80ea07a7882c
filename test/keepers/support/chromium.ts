/**
 * Headless Chromium for the dashboard tests: Debian's `chromium` package (scripts/chromium.sh installs it;
 * no browser download is possible here) driven by `playwright-core` over CDP. In CI the browser tests must
 * run: a missing browser fails there. On a developer's machine without it they are skipped with a visible
 * message (pending, not passing).
 */
import { existsSync } from "node:fs";
import type { Browser } from "playwright-core";

/** Where Debian's package puts the browser (the wrapper script in /usr/bin, the binary in /usr/lib). */
const CANDIDATES = ["/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser"];

export function chromiumPath(): string | undefined {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv && existsSync(fromEnv)) return fromEnv;
  return CANDIDATES.find((candidate) => existsSync(candidate));
}

/** In a mocha hook: skips (locally) or fails (CI) when the browser or playwright-core is missing. */
export async function requireChromium(context: Mocha.Context): Promise<string> {
  const path = chromiumPath();
  let missing = path ? undefined : `no Chromium at ${CANDIDATES.join(" or ")} (or CHROMIUM_PATH)`;
  if (!missing) {
    try {
      await import("playwright-core");
    } catch {
      missing = "the npm package playwright-core is not installed";
    }
  }
  if (!missing) return path!;
  if (process.env.CI) throw new Error(`${missing}: CI must run the browser tests (.ci/run installs Chromium with scripts/chromium.sh)`);
  console.warn(`      SKIPPED (${missing}; run \`bash scripts/chromium.sh\` as root and \`npm install\`)`);
  context.skip();
}

/**
 * Flags known to work on these machines (TOOLCHAIN.md): no sandbox (root), no GPU, and no network beyond
 * loopback (every other host name resolves to nothing, so nothing leaves the machine).
 */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-dev-shm-usage",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
];

export async function launchChromium(executablePath: string): Promise<Browser> {
  const { chromium } = await import("playwright-core");
  return chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
}
