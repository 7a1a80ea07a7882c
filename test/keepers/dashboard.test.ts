/**
 * The master's dashboard (issue 7) end to end in headless Chromium, without a network: the master's real
 * app (`buildApp`, as startMaster serves it) over a real NodeTracker, TaskBook and FileStore in a SQLite
 * file, fed the way a running master is fed — NodeJoined events as the follower delivers them, signed-off
 * heartbeats through `recordHeartbeat` (with task statuses), tasks through the buyer's `create`, their
 * on-chain records through `saveChainView`, files through `FileStore.put`, liveness through `tick`.
 * TEST DOUBLES: the chain (stub contracts answering the epoch, power and claim views the dashboard reads,
 * and the run for the tracker's reconcile), discovery (a stub listing the nodes' endpoint) and the nodes'
 * log endpoint (a plain HTTP route answering hostile logs).
 *
 * Node-supplied strings are hostile here on purpose: a task error, a file name, logs and the buyer's
 * command carry HTML and script; the page must show them as text and run none of it.
 */
import { createHash } from "node:crypto";
import { mkdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import { Wallet } from "ethers";
import type { Browser, Page } from "playwright-core";
import { isLeaderRoute } from "../../keepers/master/cluster.js";
import { Dashboard, DASHBOARD_CSP, type DashboardContracts, EpochChainReader } from "../../keepers/master/dashboard.js";
import { masterSchema } from "../../keepers/master/index.js";
import type { DiscoveryClient } from "../../keepers/master/discovery.js";
import { FileStore } from "../../keepers/master/files.js";
import { NodeTracker } from "../../keepers/master/nodes.js";
import { buildApp } from "../../keepers/master/routes.js";
import { type ChainTaskView, type ReportedTaskStatus, TaskBook } from "../../keepers/master/tasks.js";
import type { Chain, ChainEvent } from "../../keepers/shared/chain.js";
import { type App, SignedClient, closeServer, createApp, listen } from "../../keepers/shared/http.js";
import { ConfigError, parseConfig } from "../../keepers/shared/config.js";
import { createLogger } from "../../keepers/shared/log.js";
import { createMetrics } from "../../keepers/shared/metrics.js";
import { KeeperStore } from "../../keepers/shared/store.js";
import type { TxSender } from "../../keepers/shared/tx.js";
import { ROOT } from "../../scripts/lib/processes.js";
import { launchChromium, requireChromium } from "./support/chromium.js";
import { MASTER_FLAGS } from "./support/flags.js";

const CHAIN_ID = 31337n;
const RUN_ID = 1n;
const TOKEN = "dashboard-test-token-0123456789";
const SCREENSHOT_DIR = path.join(ROOT, "test-results");

const HOSTILE_ERROR = `<img src=x onerror="window.__pwned='error'">boom`;
const HOSTILE_FILE = `<script>window.__pwned='file'</script>.txt`;
const HOSTILE_LOGS = `</pre><script>window.__pwned='logs'</script><b onmouseover="window.__pwned='b'">hello from the task</b>\n`;
const HOSTILE_COMMAND = `echo '<svg onload="window.__pwned=1">'`;

const silent = createLogger({ component: "test", level: "silent" });

function event(name: string, args: Record<string, unknown>, logIndex: number): ChainEvent {
  return { contract: "TrainingRuns", name, args: args as unknown as ChainEvent["args"], blockNumber: 1, logIndex, transactionHash: `0x${"00".repeat(32)}` };
}

/**
 * TEST DOUBLE: the chain views the dashboard reads. Epochs of 600 s (PoC 60 s, PoC validation 60 s, dispute
 * 60 s, claims 600 s) from a genesis 1,500 s ago: epoch 3 is current (in its Work phase for the next 300 s,
 * its power final), epoch 2 is in its Claim phase and epoch 1 closed. Node i has power (3 - i) × 100 ×
 * epoch; every node with power claimed 3 CNET of work.
 */
function fakeEconomy(members: string[]): DashboardContracts {
  const genesis = Math.floor(Date.now() / 1000) - 1_500;
  const timeline = (epoch: bigint) => {
    const start = genesis + (Number(epoch) - 1) * 600;
    return { start, pocEnd: start + 60, pocValidationEnd: start + 120, end: start + 600, disputeEnd: start + 660, claimEnd: start + 1_260 };
  };
  const nowSec = () => Date.now() / 1000;
  const power = (epoch: bigint, node: string) => {
    const i = members.findIndex((m) => m.toLowerCase() === node.toLowerCase());
    return i < 0 ? 0n : BigInt((3 - i) * 100) * epoch;
  };
  return {
    epochManager: {
      currentEpoch: async () => BigInt(Math.floor((nowSec() - genesis) / 600) + 1),
      timelineOf: async (epoch: bigint) => timeline(epoch),
    },
    proofOfCompute: {
      isPowerFinal: async (epoch: bigint) => nowSec() >= timeline(epoch).pocValidationEnd,
      totalPower: async (epoch: bigint) => members.reduce((sum, m) => sum + power(epoch, m), 0n),
      powerOf: async (epoch: bigint, node: string) => power(epoch, node),
    },
    settlement: {
      claimOf: async (epoch: bigint, node: string) => ({
        claimed: true,
        expired: false,
        forfeited: false,
        work: 3n * 10n ** 18n,
        reward: (power(epoch, node) * 10n ** 18n) / 10n,
      }),
    },
  } as unknown as DashboardContracts;
}

describe("master dashboard (real master app and state, headless Chromium)", function () {
  this.timeout(120_000);

  let dir: string;
  let store: KeeperStore;
  let nodes: NodeTracker;
  let tasks: TaskBook;
  let files: FileStore;
  let app: App;
  let offApp: App;
  let minerApp: App;
  let base: string;
  let offBase: string;
  let browser: Browser | undefined;
  let chromium: string | undefined;
  let beating: NodeJS.Timeout | undefined;
  let ticking: NodeJS.Timeout | undefined;
  /** Nodes that keep heartbeating (the test silences one to see it turn Unhealthy live). */
  const alive = new Set<string>();
  const statuses = new Map<string, ReportedTaskStatus[]>();
  const wallets = [0, 1, 2].map(() => Wallet.createRandom());
  const members = wallets.map((w) => w.address);
  const taskIds: Record<"running" | "completed" | "queued" | "disputed", string> = { running: "", completed: "", queued: "", disputed: "" };

  before(async function () {
    chromium = await requireChromium(this);
    dir = await mkdtemp(path.join(os.tmpdir(), "cn-dashboard-"));
    store = new KeeperStore(path.join(dir, "master.sqlite"));
    const masterWallet = new Wallet(Wallet.createRandom().privateKey);
    const buyer = Wallet.createRandom().address;
    const metrics = createMetrics("master");
    const client = new SignedClient(masterWallet, CHAIN_ID, 3_000);

    // TEST DOUBLE: the nodes' task log endpoint (one server standing for the three nodes).
    minerApp = createApp({ logger: silent, metrics: createMetrics("miner-double") });
    minerApp.get<{ Params: { taskId: string } }>("/tasks/:taskId/logs", async (req) => ({ stdout: `${HOSTILE_LOGS}task ${req.params.taskId}\n`, stderr: "" }));
    await listen(minerApp, 0, "127.0.0.1");
    const minerUrl = `http://127.0.0.1:${(minerApp.server.address() as AddressInfo).port}`;

    // TEST DOUBLES: the chain the tracker's reconcile reads (the run) and discovery (the nodes' endpoint).
    const chain = {
      chainId: CHAIN_ID,
      provider: { getBlock: async () => ({ timestamp: Math.floor(Date.now() / 1000) }) },
      contracts: { trainingRuns: { getRun: async () => ({ master: masterWallet.address, status: 2n }) } },
    } as unknown as Chain;
    const discovery = {
      runNodes: async () => members.map((node) => ({ node, participation: "Member" as const, endpoint: minerUrl })),
      nodeEndpoint: async () => minerUrl,
    } as unknown as DiscoveryClient;

    let book: TaskBook | undefined;
    nodes = new NodeTracker({
      db: store.db,
      chain,
      wallet: masterWallet,
      runId: RUN_ID,
      run: { buyer, master: masterWallet.address, status: 2 },
      client,
      discovery,
      tx: {} as TxSender,
      logger: silent,
      metrics,
      publicUrl: "http://127.0.0.1:0",
      heartbeatIntervalSec: 1,
      unhealthyAfterMisses: 2,
      deadAfterMisses: 30,
      inviteExpirySec: 1000,
      reconcileMs: 60_000,
      onNodeDown: (node, reason) => void book?.failActive(node, reason),
      onHeartbeat: (node, reported) => book?.applyStatuses(node, reported, "heartbeat"),
    });
    tasks = book = new TaskBook({
      db: store.db,
      runId: RUN_ID,
      assignment: "chain",
      client,
      log: silent,
      metrics,
      healthyMembers: () => nodes.healthyMembers(),
      allNodes: () => nodes.all(),
    });
    files = new FileStore(store.db, dir, silent);
    members.forEach((node, i) => void nodes.handleEvent(event("NodeJoined", { runId: RUN_ID, node, nonce: BigInt(i + 1) }, i)));
    await nodes.reconcile(); // endpoints from discovery

    // The buyer's tasks (chain mode: queued), then drawn on chain and taken by their node.
    const create = async (command: string[]) => (await tasks.create({ image: "computenet/busybox:latest", command, env: { SECRET_TOKEN: "do-not-show" }, memoryMB: 64, cpus: 0.5 })).taskId;
    taskIds.running = await create(["sh", "-c", HOSTILE_COMMAND]);
    taskIds.completed = await create(["sh", "-c", "echo done > /data/out.txt"]);
    taskIds.disputed = await create(["sh", "-c", "echo disputed"]);
    taskIds.queued = await create(["true"]);
    const draw = (taskId: string, ledgerTaskId: string, node: string, extra: Partial<ChainTaskView> = {}) => {
      tasks.saveChainView(taskId, {
        taskId: ledgerTaskId,
        epoch: "3",
        assignee: node,
        status: "Assigned",
        units: "1",
        pay: (10n ** 18n).toString(),
        draws: 1,
        specHash: `0x${"11".repeat(32)}`,
        resultHash: null,
        validations: [],
        dispute: null,
        createdTx: `0x${"22".repeat(32)}`,
        ...extra,
      });
      tasks.update(taskId, { state: "assigned", node, ledgerTaskId, epoch: "3", assignee: node, waiting: null });
    };
    draw(taskIds.running, "7", members[0]);
    draw(taskIds.completed, "8", members[1], { status: "Completed", resultHash: `0x${"33".repeat(32)}`, validations: [{ validator: members[0], ok: true }, { validator: members[2], ok: true }] });
    draw(taskIds.disputed, "9", members[2], {
      status: "Completed",
      resultHash: `0x${"44".repeat(32)}`,
      validations: [{ validator: members[0], ok: false }],
      dispute: { status: "Open", accuser: members[0], invalidWeight: "600", validWeight: "0", votes: [{ voter: members[0], seal: `0x${"55".repeat(32)}`, invalid: true, weight: "600" }] },
    });
    const status = (taskId: string, state: ReportedTaskStatus["state"], extra: Partial<ReportedTaskStatus> = {}): ReportedTaskStatus => ({
      taskId,
      runId: "1",
      state,
      exitCode: null,
      restarts: 0,
      startedAt: new Date().toISOString(),
      finishedAt: null,
      containerId: `container-${taskId}`,
      ...extra,
    });
    statuses.set(members[0], [status(taskIds.running, "running", { error: HOSTILE_ERROR })]);
    statuses.set(members[1], [status(taskIds.completed, "completed", { exitCode: 0, finishedAt: new Date().toISOString() })]);
    statuses.set(members[2], [status(taskIds.disputed, "completed", { exitCode: 0 })]);
    const bytes = Buffer.from("result bytes\n");
    await files.put(taskIds.completed, HOSTILE_FILE, createHash("sha256").update(bytes).digest("hex"), bytes);
    await files.put(taskIds.completed, "out.txt", createHash("sha256").update("done\n").digest("hex"), Buffer.from("done\n"));

    // Every node heartbeats (with its statuses) twice a second, as miners do; the tracker's liveness check runs.
    for (const m of members) alive.add(m);
    const beat = async () => {
      for (const m of alive) await nodes.recordHeartbeat(m, new Date().toISOString(), statuses.get(m) ?? []);
    };
    await beat();
    beating = setInterval(() => void beat(), 300);
    ticking = setInterval(() => nodes.tick(), 250);

    const dashboard = new Dashboard({
      runId: RUN_ID,
      master: masterWallet.address,
      nodes,
      tasks,
      files,
      assignment: "chain",
      heartbeatIntervalSec: 1,
      chain: new EpochChainReader(fakeEconomy(members)),
      token: TOKEN,
      logger: silent,
      cacheMs: 200,
      chainRefreshMs: 500,
    });
    const context = {
      runId: RUN_ID,
      address: masterWallet.address,
      chainId: CHAIN_ID,
      nodes,
      tasks,
      files,
      client,
      nonces: store,
      logger: silent,
      metrics,
      maxFileBytes: 1024 * 1024,
      health: () => ({}),
    };
    app = buildApp({ ...context, dashboard });
    await listen(app, 0, "127.0.0.1");
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    // The same master with `--dashboard off`.
    offApp = buildApp({ ...context, metrics: createMetrics("master-off") });
    await listen(offApp, 0, "127.0.0.1");
    offBase = `http://127.0.0.1:${(offApp.server.address() as AddressInfo).port}`;
  });

  after(async () => {
    if (beating) clearInterval(beating);
    if (ticking) clearInterval(ticking);
    await browser?.close();
    for (const server of [app, offApp, minerApp]) if (server) await closeServer(server);
    await nodes?.stop(1_000);
    store?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const getJson = async (url: string, token?: string) => {
    const res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, any> };
  };

  it("serves the page with a strict CSP and a public state without specs, endpoints, logs or file names", async () => {
    const page = await fetch(`${base}/dashboard`);
    expect(page.status).to.equal(200);
    expect(page.headers.get("content-type")).to.match(/^text\/html/);
    expect(page.headers.get("content-security-policy")).to.equal(DASHBOARD_CSP);
    expect(page.headers.get("x-content-type-options")).to.equal("nosniff");
    const html = await page.text();
    expect(html).to.include('<script src="/dashboard/app.js" defer></script>');
    expect(html).not.to.match(/https?:\/\//); // nothing from elsewhere
    for (const asset of ["app.js", "app.css"]) expect((await fetch(`${base}/dashboard/${asset}`)).status).to.equal(200);
    const js = await (await fetch(`${base}/dashboard/app.js`)).text();
    expect(js).not.to.match(/\.(innerHTML|outerHTML)\s*=|\.insertAdjacentHTML\(|document\.write\(|\beval\(|new Function\(/);

    const { status, body } = await getJson(`${base}/dashboard/state`);
    expect(status).to.equal(200);
    expect(body.view).to.equal("public");
    expect(body.operatorViewAvailable).to.equal(true);
    expect(body.nodes.map((n: any) => n.state)).to.deep.equal(["Healthy", "Healthy", "Healthy"]);
    expect(body.nodes.map((n: any) => n.power)).to.have.members(["900", "600", "300"]);
    const running = body.tasks.find((t: any) => t.taskId === taskIds.running);
    expect(running).to.include({ state: "running", node: members[0], nodeError: HOSTILE_ERROR });
    expect(body.nodes.find((n: any) => n.node === members[0]).tasks).to.deep.equal([taskIds.running]);
    const completed = body.tasks.find((t: any) => t.taskId === taskIds.completed);
    expect(completed.files).to.deep.equal({ count: 2, bytes: 18 });
    expect(completed.chain).to.include({ ledgerTaskId: "8", status: "Completed", validations: 2, validationsOk: 2 });
    expect(body.validations).to.have.length(3);
    expect(body.disputes).to.have.length(1);
    expect(body.epochs.map((e: any) => e.epoch)).to.deep.equal(["3", "2", "1"]);
    expect(body.claims.length).to.be.greaterThan(0);
    const text = JSON.stringify(body);
    for (const secret of ["SECRET_TOKEN", "do-not-show", "127.0.0.1", HOSTILE_FILE, "busybox", "hello from the task"]) expect(text).not.to.include(secret);

    // Logs and files need the token; a wrong one is refused, not silently downgraded.
    expect((await getJson(`${base}/dashboard/tasks/${taskIds.running}/logs`)).status).to.equal(401);
    expect((await getJson(`${base}/dashboard/state`, "wrong-token-0123456789")).status).to.equal(401);
    expect((await getJson(`${base}/dashboard/tasks/${taskIds.running}/logs`, "wrong-token-0123456789")).status).to.equal(401);
  });

  it("gives the operator view, logs and file downloads with the token; serves nothing with --dashboard off", async () => {
    const { body } = await getJson(`${base}/dashboard/state`, TOKEN);
    expect(body.view).to.equal("operator");
    const running = body.tasks.find((t: any) => t.taskId === taskIds.running);
    expect(running.spec).to.deep.include({ image: "computenet/busybox:latest", command: ["sh", "-c", HOSTILE_COMMAND], envNames: ["SECRET_TOKEN"] });
    expect(JSON.stringify(body)).not.to.include("do-not-show"); // environment values never
    expect(body.nodes[0].endpoint).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
    const completed = body.tasks.find((t: any) => t.taskId === taskIds.completed);
    expect(completed.files.list.map((f: any) => f.name)).to.deep.equal([HOSTILE_FILE, "out.txt"].sort());

    const logs = await getJson(`${base}/dashboard/tasks/${taskIds.running}/logs?tail=50`, TOKEN);
    expect(logs.status).to.equal(200);
    expect(logs.body.stdout).to.include(HOSTILE_LOGS);
    const file = completed.files.list.find((f: any) => f.name === HOSTILE_FILE);
    const download = await fetch(`${base}/dashboard/tasks/${taskIds.completed}/files/${file.sha256}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(download.status).to.equal(200);
    expect(download.headers.get("content-disposition")).to.equal("attachment");
    expect(download.headers.get("content-type")).to.equal("application/octet-stream");
    expect(await download.text()).to.equal("result bytes\n");

    for (const route of ["/dashboard", "/dashboard/state", "/dashboard/app.js", `/dashboard/tasks/${taskIds.running}/logs`]) {
      expect((await fetch(`${offBase}${route}`)).status, route).to.equal(404);
    }
  });

  it("answers hostile task ids, file hashes, tails and tokens on its routes with a 4xx and a reason, and stays up", async () => {
    const before = (await getJson(`${base}/dashboard/state`, TOKEN)).body;
    const hostile: Array<[string, string | undefined]> = [
      [`/dashboard/tasks/${taskIds.running}/logs?tail=-1`, TOKEN],
      [`/dashboard/tasks/${taskIds.running}/logs?tail=1e3`, TOKEN],
      [`/dashboard/tasks/${taskIds.running}/logs?tail=1&tail=2`, TOKEN],
      ["/dashboard/tasks/..%2f..%2fmaster.sqlite/logs", TOKEN],
      ["/dashboard/tasks/__proto__/logs", TOKEN],
      [`/dashboard/tasks/${"a".repeat(200)}/logs`, TOKEN],
      [`/dashboard/tasks/${taskIds.completed}/files/..%2f..%2fmaster.sqlite`, TOKEN],
      [`/dashboard/tasks/${taskIds.completed}/files/${"0".repeat(64)}`, TOKEN],
      [`/dashboard/tasks/${taskIds.completed}/files/%00`, TOKEN],
      ["/dashboard/%2e%2e/%2e%2e/etc/passwd", undefined],
      ["/dashboard/state", "x".repeat(10_000)],
      ["/dashboard/state", "token with\u0007control"],
    ];
    for (const [route, token] of hostile) {
      let res: Response;
      try {
        res = await fetch(`${base}${route}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
      } catch (error) {
        // fetch itself refuses a control character in a header: nothing reached the master.
        expect((error as Error).message, route).to.match(/fetch failed|header|invalid/i);
        continue;
      }
      expect(res.status, route).to.be.within(400, 499);
      const body = (await res.json()) as { error?: unknown };
      expect(body.error, route).to.be.a("string").and.not.equal("Bad Request");
    }
    // Bracketed keys are plain names to the query parser: a 200 that pollutes nothing.
    expect((await fetch(`${base}/dashboard/tasks/${taskIds.running}/logs?tail[__proto__][polluted]=yes`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).to.equal(200);
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    const after = (await getJson(`${base}/dashboard/state`, TOKEN)).body;
    expect(after.tasks.map((t: { taskId: string; state: string }) => [t.taskId, t.state])).to.deep.equal(before.tasks.map((t: { taskId: string; state: string }) => [t.taskId, t.state]));
    expect((await fetch(`${base}/health`)).status).to.equal(200);
  });

  it("takes --dashboard on|off and an operator token of at least 16 printable characters; its routes are the leader's", () => {
    // Several instances: the dashboard shows the leader's task book, so followers forward it like /tasks.
    for (const route of ["/dashboard", "/dashboard/", "/dashboard/state", "/Dashboard/app.js", `/dashboard/tasks/x/logs`]) expect(isLeaderRoute("GET", route), route).to.equal(true);
    for (const route of ["/health", "/metrics", "/heartbeat", "/dashboards"]) expect(isLeaderRoute("GET", route), route).to.equal(false);

    const flags = MASTER_FLAGS;
    expect(parseConfig(masterSchema, flags).dashboard).to.equal(true); // on unless turned off
    expect(parseConfig(masterSchema, { ...flags, dashboard: "off" }).dashboard).to.equal(false);
    expect(parseConfig(masterSchema, { ...flags, dashboardToken: TOKEN }).dashboardToken).to.equal(TOKEN);
    const names = { dashboard: { flag: "--dashboard", env: "CN_DASHBOARD" }, dashboardToken: { flag: "--dashboard-token", env: "CN_DASHBOARD_TOKEN" } };
    expect(() => parseConfig(masterSchema, { ...flags, dashboard: "public" }, names))
      .to.throw(ConfigError)
      .with.property("message")
      .that.includes('--dashboard (CN_DASHBOARD): must be "on" or "off"');
    for (const token of ["short", "has a space in it, 16+ chars"]) {
      expect(() => parseConfig(masterSchema, { ...flags, dashboardToken: token }, names), token)
        .to.throw(ConfigError)
        .with.property("message")
        .that.includes("--dashboard-token (CN_DASHBOARD_TOKEN)");
    }
    expect(() => new Dashboard({ runId: RUN_ID, master: members[0], nodes, tasks, files, assignment: "chain", heartbeatIntervalSec: 1, token: "short", logger: silent })).to.throw(
      /at least 16 characters/,
    );
  });

  /**
   * Waits until the JavaScript expression `probe`, evaluated in the page, is true. Polled from here: the
   * page's CSP forbids eval, which page.waitForFunction's in-page polling would need.
   */
  const waitInPage = async (page: Page, what: string, probe: string, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await page.evaluate(probe))) {
      if (Date.now() > deadline) throw new Error(`page never showed ${what} within ${timeoutMs} ms (${probe})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  it("shows nodes, tasks, power, validations, disputes and claims in Chromium, live, with hostile strings as text", async () => {
    browser = await launchChromium(chromium!);
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const dialogs: string[] = [];
    const problems: string[] = [];
    page.on("dialog", (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    page.on("pageerror", (error) => problems.push(error.message));
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(message.text());
    });
    const started = Date.now();
    await page.goto(`${base}/dashboard#token=${TOKEN}`);
    // The token leaves the address bar at once (it stays in this tab's sessionStorage).
    expect(new URL(page.url()).hash).to.equal("");

    await waitInPage(page, "three Healthy nodes", `document.querySelectorAll('#nodes tr[data-state="Healthy"]').length === 3`);
    await waitInPage(page, "four tasks", `document.querySelectorAll("#tasks tr[data-task]").length === 4`);
    const nodesText = await page.locator("#nodes").innerText();
    for (const m of members) expect(nodesText).to.include(`${m.slice(0, 8)}…${m.slice(-6)}`);
    expect(nodesText).to.include(taskIds.running); // node 1's current task
    expect(nodesText).to.match(/900 \(50%\)/);
    const runningRow = page.locator(`#tasks tr[data-task="${taskIds.running}"]`);
    expect(await runningRow.getAttribute("data-state")).to.equal("running");
    expect(await runningRow.innerText()).to.include(`node: ${HOSTILE_ERROR}`); // the markup, as text
    expect(await page.locator("#power-chart svg rect[data-node]").count()).to.be.greaterThanOrEqual(6); // 3 nodes × epochs with power
    expect(await page.locator("#validations tbody tr").count()).to.equal(3);
    expect(await page.locator("#disputes tbody").innerText()).to.include("Open");
    await waitInPage(page, "claims", `document.querySelectorAll("#claims tr[data-claim]").length >= 3`);
    expect(await page.locator("#claims tbody").innerText()).to.match(/claimed[\s\S]*3 CNET/);

    // Operator view: the task's logs and files, hostile names and logs as text.
    await page.locator(`button[data-logs="${taskIds.completed}"]`).click();
    await waitInPage(page, "the task's files", `(document.getElementById("task-detail-body")?.textContent ?? "").includes("out.txt")`);
    const detail = await page.locator("#task-detail").innerText();
    expect(detail).to.include(HOSTILE_FILE);
    await waitInPage(page, "the task's logs", `(document.getElementById("task-logs")?.textContent ?? "").includes("hello from the task")`);
    expect(await page.locator("#task-logs").textContent()).to.include(HOSTILE_LOGS.trim());
    await page.locator(`button[data-logs="${taskIds.running}"]`).click();
    await waitInPage(page, "the running task's command", `(document.getElementById("task-detail-body")?.textContent ?? "").includes("svg onload")`);
    expect(await page.locator("#task-detail").innerText()).to.include(HOSTILE_COMMAND);

    // Live: a node goes silent and turns Unhealthy; a task completes — both appear without a reload.
    const polls = Number(await page.locator("body").getAttribute("data-polls"));
    alive.delete(members[2]);
    statuses.set(members[0], [{ taskId: taskIds.running, runId: "1", state: "completed", exitCode: 0, restarts: 0, startedAt: null, finishedAt: new Date().toISOString(), error: HOSTILE_ERROR }]);
    const changedAt = Date.now();
    const silentNode = members[2];
    await waitInPage(page, "the silent node Unhealthy", `document.querySelector('#nodes tr[data-node="${silentNode}"]')?.getAttribute("data-state") === "Unhealthy"`, 15_000);
    await waitInPage(page, "the task completed", `document.querySelector('#tasks tr[data-task="${taskIds.running}"]')?.getAttribute("data-state") === "completed"`);
    const seenAfterMs = Date.now() - changedAt;
    expect(Number(await page.locator("body").getAttribute("data-polls"))).to.be.greaterThan(polls);
    expect(await page.locator("#nodes").innerText()).to.match(/Unhealthy/);

    // Nothing hostile ran: no flag, no dialog, no element made from the strings, no errors.
    expect(await page.evaluate("typeof window.__pwned")).to.equal("undefined");
    expect(dialogs).to.deep.equal([]);
    expect(await page.evaluate(`document.querySelectorAll("main img, main script, main b, main svg image, main svg[onload]").length`)).to.equal(0);
    expect(problems).to.deep.equal([]);

    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    const screenshot = path.join(SCREENSHOT_DIR, "dashboard.png");
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(`      screenshot: ${path.relative(process.cwd(), screenshot)} (page live ${Date.now() - started} ms; the Unhealthy node and completed task shown ${seenAfterMs} ms after the change)`);

    // The public view (no token) shows the same nodes and tasks but no logs, specs or file names.
    const anonymous = await browser.newPage();
    await anonymous.goto(`${base}/dashboard`);
    await waitInPage(anonymous, "the tasks", `document.querySelectorAll("#tasks tr[data-task]").length === 4`);
    const text = await anonymous.locator("main").innerText();
    expect(text).to.include("token needed");
    expect(text).not.to.include(HOSTILE_FILE);
    expect(text).to.include(HOSTILE_ERROR);
    expect(await anonymous.locator("button[data-logs]").count()).to.equal(0);
    await anonymous.close();
  });
});
