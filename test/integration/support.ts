/** Helpers shared by the integration tests. */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync } from "node:fs";
import { rm } from "node:fs/promises";
import { type AddressInfo, type Server, type Socket, connect, createServer } from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import Dockerode from "dockerode";
import { DockerRuntime } from "../../keepers/miner/docker-runtime.js";

/** Polls `probe` until it returns a value (not undefined or false); fails after `timeoutMs` with the last error. */
export async function waitUntil<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 90_000, everyMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A line of a keeper's output, for failure messages: the last `n` lines of `text`. */
export function lastLines(text: string, n = 25): string {
  return text.trimEnd().split("\n").slice(-n).join("\n");
}

/**
 * A TCP proxy on 127.0.0.1 in front of `target` (host:port) that a test can cut and restore: cut, it stops
 * listening and drops every connection (clients get ECONNREFUSED and resets, as from a node that went
 * away); restored, it listens on the same port again.
 */
export class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;

  private constructor(private readonly target: { host: string; port: number }) {}

  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const proxy = new TcpProxy(target);
    await proxy.listen();
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get up(): boolean {
    return this.server !== undefined;
  }

  private listen(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
        s.on("error", () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => {
        this.port = (server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  /** Stops listening and drops every open connection. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async restore(): Promise<void> {
    if (!this.server) await this.listen();
  }
}

/**
 * A Docker engine of the test's own: dockerd on its own socket, data root and exec root under `dir`, with
 * live-restore (containers keep running while it restarts), so that a test may restart it without
 * touching the shared engine other tests use. Needs root and `dockerd`; `start` answers undefined when
 * either is missing.
 */
export class PrivateDockerEngine {
  readonly socketPath: string;
  readonly docker: Dockerode;
  private child: ChildProcess | undefined;
  private readonly log: string;

  private constructor(private readonly dir: string) {
    this.socketPath = path.join(dir, "docker.sock");
    this.log = path.join(dir, "dockerd.log");
    this.docker = new Dockerode({ socketPath: this.socketPath });
  }

  static async start(dir: string, image: string): Promise<PrivateDockerEngine | undefined> {
    if (process.getuid?.() !== 0) return undefined;
    try {
      await promisify(execFile)("dockerd", ["--version"]);
    } catch {
      return undefined;
    }
    mkdirSync(dir, { recursive: true });
    const engine = new PrivateDockerEngine(dir);
    await engine.launch();
    // The task image, from the host's busybox (no registry here), as scripts/docker-engine.sh builds it.
    const script = `set -e; d="$(mktemp -d)"; mkdir -p "$d/bin" "$d/tmp" "$d/data"; cp /bin/busybox "$d/bin/busybox";
      for t in sh ls cat echo sleep sha256sum wc head tail date env mkdir rm cp mv true false yes dd seq grep; do ln -s busybox "$d/bin/$t"; done;
      tar -C "$d" -c . | docker -H "unix://${engine.socketPath}" import -c 'ENV PATH=/bin' - ${image} >/dev/null; rm -rf "$d"`;
    await promisify(execFile)("bash", ["-c", script], { timeout: 60_000 });
    return engine;
  }

  /** The dockerd process id (the test's own child). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  private async launch(): Promise<void> {
    const out = openSync(this.log, "a");
    const child = spawn(
      "dockerd",
      [
        "--host", `unix://${this.socketPath}`,
        "--data-root", path.join(this.dir, "data"),
        "--exec-root", path.join(this.dir, "exec"),
        "--pidfile", path.join(this.dir, "dockerd.pid"),
        "--iptables=false", "--ip6tables=false", "--bridge=none", "--live-restore",
      ],
      { stdio: ["ignore", out, out] },
    );
    closeSync(out);
    this.child = child;
    await waitUntil(`the private dockerd answering on ${this.socketPath} (log ${this.log})`, async () => {
      if (child.exitCode !== null) throw new Error(`dockerd exited with code ${child.exitCode}`);
      return DockerRuntime.available(this.docker);
    }, 30_000, 250);
  }

  private async terminate(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    await exited;
    clearTimeout(timer);
  }

  /**
   * Stops dockerd (containers keep running: live-restore), leaves it stopped for `pauseMs`, and starts it
   * again; resolves once it answers.
   */
  async restart(pauseMs = 0): Promise<{ downMs: number }> {
    const started = Date.now();
    await this.terminate();
    await new Promise((r) => setTimeout(r, pauseMs));
    await this.launch();
    return { downMs: Date.now() - started };
  }

  /** Removes every container, stops dockerd and deletes its folders. */
  async stop(): Promise<void> {
    if (this.child) {
      const all = await this.docker.listContainers({ all: true }).catch(() => []);
      for (const c of all) await this.docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
      await this.terminate();
    }
    // dockerd bind-mounts its data root onto itself and may leave that mount behind.
    await promisify(execFile)("umount", [path.join(this.dir, "data")]).catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
  }
}
