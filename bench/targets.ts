/**
 * What issue 5 asks of each figure, and how each figure is measured (for bench/RESULTS.md). A section may
 * export `how` (figure → text) to describe figures this catalogue does not know or to say it better.
 */

export type Figures = Record<string, number>;

export interface Target {
  /** The figure judged. */
  figure: string;
  /** "max": measured ≤ limit passes; "min": measured ≥ limit passes. */
  kind: "max" | "min";
  /** The limit, or a function of other figures (undefined when one of them was not measured). */
  limit: number | ((figures: Figures) => number | undefined);
  /** The limit in words, for the table. */
  says: string;
}

/** Prime Intellect's gas for the same protocol steps (issue 5): steady-state repeat calls, their contracts. */
export interface GasReference {
  /** Key of our steady-state figure in bench/gas.json (and `gas.<key>` in the results). */
  key: string;
  step: string;
  prime: number;
  /** Prime's calls for it, where issue 5 names them. */
  primeCalls?: string;
  /** Issue 5's limit: 70 % of Prime's figure, rounded (for claim: Prime's own figure). */
  limit: number;
}

export const GAS_REFERENCE: readonly GasReference[] = [
  { key: "registerNode", step: "register a node with stake", prime: 438_163, primeCalls: "registerProvider + addComputeNode", limit: 306_700 },
  { key: "approveNode", step: "a validator's approval that validates the node", prime: 110_970, limit: 77_700 },
  { key: "createRun", step: "create a training run", prime: 1_830_882, limit: 1_281_600 },
  { key: "acceptInvite", step: "join a run with the master's invite", prime: 203_407, limit: 142_400 },
  { key: "completeTask", step: "report a task's result", prime: 239_693, limit: 167_800 },
  { key: "claim", step: "claim an epoch's pay", prime: 128_021, limit: 128_000 },
  { key: "eject", step: "eject a member", prime: 97_588, limit: 68_300 },
  { key: "slash", step: "slash a node's stake", prime: 76_894, limit: 53_800 },
];

export const TARGETS: readonly Target[] = [
  { figure: "gas.claimRatio200v5", kind: "max", limit: 1.05, says: "≤ 1.05" },
  { figure: "gas.createTaskRatio200v5", kind: "max", limit: 1.5, says: "≤ 1.5" },
  {
    figure: "discovery.signedRequestsPerSec",
    kind: "min",
    limit: (f) => {
      const ecrecover = f["bound.ecrecoverPerSec"];
      const hello = f["bound.httpHelloPerSec"];
      return ecrecover === undefined || hello === undefined ? undefined : 0.6 * Math.min(ecrecover, hello);
    },
    says: "≥ 0.6 × min(bound.ecrecoverPerSec, bound.httpHelloPerSec)",
  },
  { figure: "master.heartbeatsPerSec", kind: "min", limit: 5_000, says: "≥ 5,000" },
  { figure: "master.heartbeatP99Ms", kind: "max", limit: 50, says: "≤ 50" },
  { figure: "master.rssMBAt10kNodes", kind: "max", limit: 300, says: "≤ 300" },
  { figure: "flow.minerStartToHealthySec", kind: "max", limit: 10, says: "≤ 10" },
  ...GAS_REFERENCE.map((g): Target => ({
    figure: `gas.${g.key}`,
    kind: "max",
    limit: g.limit,
    says: `≤ ${g.limit.toLocaleString("en-US")} (${(g.limit / g.prime).toFixed(2)} × Prime's ${g.prime.toLocaleString("en-US")})`,
  })),
];

export type Verdict = "pass" | "fail" | "not run";

export interface Judged {
  figure: string;
  says: string;
  limit: number | undefined;
  /** The limit is computed from other figures. */
  derived: boolean;
  measured: number | undefined;
  verdict: Verdict;
}

export function judge(target: Target, figures: Figures): Judged {
  const measured = figures[target.figure];
  const limit = typeof target.limit === "number" ? target.limit : target.limit(figures);
  let verdict: Verdict = "not run";
  if (measured !== undefined && Number.isFinite(measured) && limit !== undefined) {
    verdict = (target.kind === "max" ? measured <= limit : measured >= limit) ? "pass" : "fail";
  }
  return { figure: target.figure, says: target.says, limit, derived: typeof target.limit !== "number", measured, verdict };
}

/** How each known figure is measured; `gas.<Contract>.<function>.first|repeat` rows share one text. */
export const HOW: Record<string, string> = {
  "gas.claimRatio200v5":
    "bench/gas-scale.ts (hardhat run, in-process EVM, the test system of test/helpers): a steady-state Settlement.claim (epoch's beacon and emission fixed, run's escrow already paid) by a node that executed a task, in an epoch of 20 tasks with every node holding power and doing its duties, among 200 nodes ÷ among 5 nodes (as test/Settlement.test.ts). Beacons come from block hashes, so which tasks a claim checks, and with them its gas, moves a little from one run to the next",
  "gas.claimGasAt5": "Settlement.claim gas among 5 nodes (see gas.claimRatio200v5)",
  "gas.claimGasAt200": "Settlement.claim gas among 200 nodes (see gas.claimRatio200v5)",
  "gas.createTaskRatio200v5":
    "bench/gas-scale.ts: the largest of 8 TaskLedger.createTask calls in a run with 200 enrolled nodes ÷ the same in a run with 5 (power 100 + i per node, epoch's task list warmed first; as test/TaskLedger.test.ts); the draws follow the PoC beacon, so the figures move a little between runs",
  "gas.createTaskGasAt5": "createTask gas, 5 enrolled nodes (see gas.createTaskRatio200v5)",
  "gas.createTaskGasAt200": "createTask gas, 200 enrolled nodes (see gas.createTaskRatio200v5)",
  "gas.perFunction":
    "`hardhat run scripts/gas.ts` (what `npm run gas` runs): receipt.gasUsed on the in-process EVM with the production compiler settings; first call of its kind / the same call again in the steady state; read from bench/gas.json, or from the table of docs/gas.md while the script writes no bench/gas.json",
  "gas.steadyState":
    "steady-state (repeat) figure of the protocol step from `hardhat run scripts/gas.ts` (bench/gas.json; else docs/gas.md's row: registerNode, reportChallenge (approve), createRun, acceptInvite, completeTask, claim, eject, slash)",
  "poc.noncesPerSec":
    "the miner's PoC engine (keepers/shared/poc.ts runPoc through poc-worker.ts, one worker thread = one core), default parameters (dim 256, 8 layers), fixed beacon: nonces tried ÷ compute time after a warm-up run",
  "poc.validRate": "valid nonces ÷ nonces tried in the same run (see poc.noncesPerSec)",
  "poc.seconds": "length of the timed PoC run",
  "flow.minerStartToHealthySec":
    "median over miners started one after another against the devnet's network (keepers/cli/cluster.ts: hardhat node mining every second plus automine, discovery, one validator, the run's master; keepers poll the chain every 250 ms; heartbeat every 2 s; economy off): from spawning `computenet miner` to the master's log line marking it Healthy",
  "flow.minerStartToHealthyMaxSec": "the slowest of those miners (see flow.minerStartToHealthySec)",
  "flow.miners": "miners timed",
  "flow.step.processUpSec": "median seconds from spawn to the miner's first log line (Node, tsx, imports, chain connection)",
  "flow.step.registeredSec": "… to `registerForRun` confirmed (hardware detection, approve, registerNode, registerForRun)",
  "flow.step.endpointUploadedSec": "… to discovery taking the endpoint (Docker adoption, HTTP API up)",
  "flow.step.challengedSec": "… to the validator sending its challenge",
  "flow.step.challengeSolvedSec": "… to the miner answering it",
  "flow.step.validatedSec": "… to the validator's report confirmed on chain (NodeValidated)",
  "flow.step.invitedSec": "… to the master sending its invite",
  "flow.step.joinedSec": "… to acceptInvite confirmed",
  "flow.step.healthySec": "… to the master marking the node Healthy (first heartbeat)",
  "bound.ecrecoverPerSec": "signature recoveries per second on one core (the bound of a signed request)",
  "bound.httpHelloPerSec": "hello-route HTTP requests per second on loopback (the bound of any request)",
  "bound.signedFloorPerSec": "signed requests per second a bare node:http server answers after the signature check alone (the bound of any signed route)",
  "discovery.signedRequestsPerSec": "signed discovery requests answered per second on loopback",
  "discovery.p99Ms": "99th percentile latency of those requests",
  "master.heartbeatsPerSec": "signed heartbeats the master accepts per second on loopback",
  "master.heartbeatP99Ms": "99th percentile heartbeat latency",
  "master.rssMBAt10kNodes": "the master's resident memory with 10,000 nodes heartbeating",
};

/** The text for `figure` (section's own text first). */
export function howOf(figure: string, own: Record<string, string> = {}): string {
  if (own[figure]) return own[figure];
  if (HOW[figure]) return HOW[figure];
  if (/^gas\.[A-Z]\w*\./.test(figure)) return HOW["gas.perFunction"];
  if (GAS_REFERENCE.some((g) => figure === `gas.${g.key}`)) return HOW["gas.steadyState"];
  return "";
}
