/**
 * GET /metrics of the four keepers, started as the devnet starts them (real hardhat node, real HTTP, real
 * SQLite, the miner with whatever Docker engine there is): each answers 200 in Prometheus text format with
 * the metrics docs/metrics.md lists — heartbeats, node states, tasks by state, transactions sent and failed,
 * event lag, PoC nonces, claims, each where it belongs — and the counters move once a node goes through the
 * onboarding (registration, challenge, invite, heartbeats). The epoch economy stays out of the way (epoch 1
 * is 29 days away): PoC and claim counters are checked for presence only.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import { Wallet } from "ethers";
import { type DiscoveryService, startDiscovery } from "../../keepers/discovery/index.js";
import { type MasterService, startMaster } from "../../keepers/master/index.js";
import { type MinerService, startMiner } from "../../keepers/miner/index.js";
import { createLogger } from "../../keepers/shared/log.js";
import { type ValidatorService, startValidator } from "../../keepers/validator/index.js";
import { type DevChain, startDevChain } from "./support/devchain.js";

const silent = (component: string) => createLogger({ component, level: "silent" });

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text format: the declared metrics (# TYPE) and the samples. */
function parseMetrics(text: string): { types: Map<string, string>; samples: Sample[] } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1], type[2]);
    if (line === "" || line.startsWith("#")) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!sample) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (sample[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[key] = value;
    samples.push({ name: sample[1], labels, value: Number(sample[3]) });
  }
  return { types, samples };
}

async function scrape(url: string): Promise<ReturnType<typeof parseMetrics> & { value: (name: string, labels?: Record<string, string>) => number }> {
  const response = await fetch(`${url}/metrics`);
  expect(response.status).to.equal(200);
  expect(response.headers.get("content-type")).to.match(/^text\/plain; version=0\.0\.4/);
  const parsed = parseMetrics(await response.text());
  const value = (name: string, labels: Record<string, string> = {}) =>
    parsed.samples
      .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
      .reduce((sum, s) => sum + s.value, 0);
  return { ...parsed, value };
}

/** The metrics each keeper must declare (docs/metrics.md), name → type. */
const EXPECTED: Record<string, Record<string, string>> = {
  discovery: {
    computenet_discovery_http_requests_total: "counter",
    computenet_discovery_access_decisions_total: "counter",
    computenet_discovery_events_total: "counter",
    computenet_discovery_endpoints: "gauge",
    computenet_discovery_nodes: "gauge",
    computenet_discovery_event_lag_blocks: "gauge",
    computenet_discovery_event_cursor_block: "gauge",
  },
  validator: {
    computenet_validator_challenges_total: "counter",
    computenet_validator_reports_total: "counter",
    computenet_validator_challenge_elapsed_ms: "histogram",
    computenet_validator_candidates: "gauge",
    computenet_validator_transactions_sent_total: "counter",
    computenet_validator_transactions_failed_total: "counter",
    computenet_validator_event_lag_blocks: "gauge",
    computenet_validator_event_cursor_block: "gauge",
    computenet_poc_verdicts_total: "counter",
  },
  master: {
    computenet_master_heartbeats_total: "counter",
    computenet_master_heartbeats_refused_total: "counter",
    computenet_master_nodes: "gauge",
    computenet_master_node_transitions_total: "counter",
    computenet_master_invites_total: "counter",
    computenet_master_ejections_total: "counter",
    computenet_master_tasks: "gauge",
    computenet_master_tasks_created_total: "counter",
    computenet_master_ledger_tasks: "gauge",
    computenet_master_ledger_tasks_created_total: "counter",
    computenet_master_ledger_dispatches_total: "counter",
    computenet_master_ledger_tasks_expired_total: "counter",
    computenet_master_ledger_requeues_total: "counter",
    computenet_master_ledger_enrollments_total: "counter",
    computenet_master_transactions_sent_total: "counter",
    computenet_master_transactions_failed_total: "counter",
    computenet_master_event_lag_blocks: "gauge",
    computenet_master_event_cursor_block: "gauge",
  },
  miner: {
    computenet_miner_heartbeats_total: "counter",
    computenet_miner_heartbeats_sent: "gauge",
    computenet_miner_heartbeats_failed: "gauge",
    computenet_miner_node_state: "gauge",
    computenet_miner_validated: "gauge",
    computenet_miner_tasks: "gauge",
    computenet_miner_tasks_running: "gauge",
    computenet_miner_requests_total: "counter",
    computenet_miner_transactions_sent_total: "counter",
    computenet_miner_transactions_failed_total: "counter",
    computenet_miner_event_lag_blocks: "gauge",
    computenet_miner_event_cursor_block: "gauge",
    computenet_miner_event_cursor: "gauge",
    computenet_poc_nonces_total: "counter",
    computenet_poc_verdicts_total: "counter",
    computenet_miner_poc_outcomes_total: "counter",
    computenet_miner_epoch: "gauge",
    computenet_miner_power: "gauge",
    computenet_task_validations_total: "counter",
    computenet_miner_dispute_votes_total: "counter",
    computenet_miner_false_validation_reports_total: "counter",
    computenet_claims_total: "counter",
    computenet_miner_claimed_cnet_total: "counter",
  },
};

describe("keeper metrics (GET /metrics of discovery, validator, master and miner)", function () {
  this.timeout(180_000);

  let dev: DevChain;
  let dir: string;
  let discovery: DiscoveryService;
  let validator: ValidatorService;
  let master: MasterService;
  let miner: MinerService;
  let runId: bigint;

  const until = async (what: string, check: () => Promise<boolean>, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  };

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "cn-metrics-"));
    dev = await startDevChain();
    discovery = await startDiscovery({ rpcUrl: dev.rpcUrl, deploymentFile: dev.deploymentFile, dataDir: path.join(dir, "discovery"), port: 0, pollMs: 100, logger: silent("discovery") });
    const buyer = await dev.connect(dev.keys.buyer);
    try {
      const runs = buyer.contracts.trainingRuns;
      await (
        await runs.createRun({
          master: new Wallet(dev.keys.master).address,
          pricePerUnit: 1n,
          maxMembers: 5,
          budget: 0n,
          discoveryURI: discovery.url,
          requirements: { minGpuCount: 0, minGpuMemoryMB: 0, minCpuCores: 1, minRamMB: 512, minStorageGB: 1, allowedGpuModels: [] },
        })
      ).wait();
      runId = await runs.runCount();
    } finally {
      buyer.provider.destroy();
    }
    validator = await startValidator({
      rpcUrl: dev.rpcUrl,
      deploymentFile: dev.deploymentFile,
      dataDir: path.join(dir, "validator"),
      privateKey: dev.keys.validators[0],
      discoveryUrl: discovery.url,
      port: 0,
      pollMs: 100,
      pendingPollMs: 300,
      challengeN: 64,
      logger: silent("validator"),
    });
    master = await startMaster({
      rpcUrl: dev.rpcUrl,
      deployment: dev.deploymentFile,
      dataDir: path.join(dir, "master"),
      host: "127.0.0.1",
      port: 0,
      pollMs: 100,
      privateKey: dev.keys.master,
      runId,
      discoveryUrl: discovery.url,
      heartbeatIntervalSec: 1,
      reconcileMs: 300,
      logger: silent("master"),
    });
    miner = await startMiner({
      rpcUrl: dev.rpcUrl,
      deploymentFile: dev.deploymentFile,
      dataDir: path.join(dir, "miner"),
      host: "127.0.0.1",
      port: 0,
      pollMs: 100,
      providerKey: dev.keys.providers[0],
      nodeKey: dev.keys.nodes[0],
      runId,
      discoveryUrl: discovery.url,
      heartbeatIntervalSec: 1,
      capabilities: { cpuCores: 2, ramMB: 2048, storageGB: 10 },
      discoveryRetryMs: { baseMs: 100, maxMs: 400 },
      logger: silent("miner"),
    });
  });

  after(async () => {
    await miner?.stop();
    await master?.stop();
    await validator?.stop();
    await discovery?.stop();
    await dev?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  for (const keeper of ["discovery", "validator", "master", "miner"] as const) {
    it(`${keeper}: 200 in Prometheus text format with its metrics declared`, async () => {
      const url = { discovery: () => discovery.url, validator: () => validator.url, master: () => master.url, miner: () => miner.url }[keeper]();
      const { types, samples } = await scrape(url);
      for (const [name, type] of Object.entries(EXPECTED[keeper])) {
        expect(types.get(name), `${keeper}: ${name}`).to.equal(type);
      }
      // Every sample carries the keeper's component label; the process metrics are there too.
      expect(samples.filter((s) => s.name.startsWith("computenet_")).every((s) => s.labels.component === keeper)).to.equal(true);
      expect(types.get("process_cpu_user_seconds_total")).to.equal("counter");
    });
  }

  it("the counters move through the onboarding: registration, challenge, endpoint, invite and heartbeats", async () => {
    const node = new Wallet(dev.keys.nodes[0]).address;
    // The miner registered on start: its transactions are counted.
    let m = await scrape(miner.url);
    expect(m.value("computenet_miner_transactions_sent_total", { action: "registerNode" })).to.equal(1);
    expect(m.value("computenet_miner_transactions_sent_total", { action: "registerForRun" })).to.equal(1);

    await until("the master to see the node Healthy", async () => master.node(node)?.state === "Healthy");
    await until("a few heartbeats", async () => (await scrape(master.url)).value("computenet_master_heartbeats_total") >= 2);

    const d = await scrape(discovery.url);
    expect(d.value("computenet_discovery_nodes", { state: "validated" })).to.equal(1);
    expect(d.value("computenet_discovery_endpoints")).to.equal(1);
    expect(d.value("computenet_discovery_http_requests_total", { route: "PUT /nodes/:node", status: "200" })).to.be.at.least(1);
    expect(d.value("computenet_discovery_event_lag_blocks")).to.be.within(0, 2);

    const v = await scrape(validator.url);
    expect(v.value("computenet_validator_transactions_sent_total", { action: "reportChallenge" })).to.equal(1);
    expect(v.value("computenet_validator_reports_total", { approved: "true", result: "confirmed" })).to.equal(1);
    expect(v.value("computenet_validator_event_lag_blocks")).to.be.within(0, 2);
    expect(v.value("computenet_validator_event_cursor_block")).to.be.greaterThan(0);

    const ma = await scrape(master.url);
    expect(ma.value("computenet_master_nodes", { state: "Healthy" })).to.equal(1);
    expect(ma.value("computenet_master_node_transitions_total", { to: "Healthy" })).to.be.at.least(1);
    expect(ma.value("computenet_master_tasks")).to.equal(0);
    expect(ma.value("computenet_master_event_lag_blocks")).to.be.within(0, 2);

    m = await scrape(miner.url);
    expect(m.value("computenet_miner_transactions_sent_total", { action: "acceptInvite" })).to.equal(1);
    expect(m.value("computenet_miner_transactions_failed_total")).to.equal(0);
    expect(m.value("computenet_miner_heartbeats_total", { result: "accepted" })).to.be.at.least(1);
    expect(m.value("computenet_miner_node_state", { kind: "validation", state: "Validated" })).to.equal(1);
    expect(m.value("computenet_miner_node_state", { kind: "membership", state: "member" })).to.equal(1);
    expect(m.value("computenet_miner_node_state", { kind: "master_view", state: "Healthy" })).to.equal(1);
    expect(m.value("computenet_miner_event_lag_blocks")).to.be.within(0, 2);
    const before = m.value("computenet_miner_heartbeats_total", { result: "accepted" });
    await until("one more heartbeat counted", async () => (await scrape(miner.url)).value("computenet_miner_heartbeats_total", { result: "accepted" }) > before, 10_000);
  });
});
