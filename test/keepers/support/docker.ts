/**
 * Container tests need a Docker engine and the local image `computenet/busybox:latest`
 * (`npm run docker`). In CI they must run: a missing engine fails there. On a developer's machine
 * without an engine they are skipped with a visible message (and counted as pending, not passing).
 */
import Dockerode from "dockerode";
import { DockerRuntime } from "../../../keepers/miner/docker-runtime.js";

export const TEST_IMAGE = "computenet/busybox:latest";

export async function dockerMissing(): Promise<string | undefined> {
  const docker = new Dockerode();
  if (!(await DockerRuntime.available(docker))) return "no Docker engine answers on /var/run/docker.sock";
  try {
    await docker.getImage(TEST_IMAGE).inspect();
  } catch {
    return `the image ${TEST_IMAGE} is missing`;
  }
  return undefined;
}

/** In a mocha hook or test: skips (locally) or fails (CI) when the engine or image is missing. */
export async function requireDocker(context: Mocha.Context): Promise<void> {
  const missing = await dockerMissing();
  if (!missing) return;
  if (process.env.CI) throw new Error(`${missing}: CI must run the container tests (.ci/run starts the engine)`);
  console.warn(`      SKIPPED (${missing}; run \`npm run docker\` as root to run them)`);
  context.skip();
}
