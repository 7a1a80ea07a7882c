/**
 * State machines of TrainingRuns, MinerRegistry and ChallengeBoard under random call sequences (fast-check,
 * model-based, in-process EVM).
 *
 * Each run starts from one snapshot (`loadFixture`): n1..n4 validated CPU nodes (n1, n2 of provider p1; n3, n4
 * of p2), n5 registered under p2 but never challenged, n6 a key not registered (p2 registers it when asked);
 * run 1 active for two members (n1 member, n2 registered), run 2 pending for three. A run then plays 20..60
 * generated calls — runs created, started, completed, cancelled; nodes registered for runs, invites accepted
 * (fresh or used nonces, current or stale invite generation), revoked, replayed; leaving and ejection; nodes
 * deregistered, registered again, their capabilities changed; hardware challenge reports (approve or reject,
 * current or stale declaration), revocations, new rounds; waits around the retry cooldown — each by a caller
 * drawn among the one entitled and others.
 *
 * A model written from the interfaces' rules predicts every call: the custom error it must revert with, or
 * its success and the new state. After every call:
 * - the observed state (run statuses and member counts; each node's participation and invite generation in
 *   each run; used invite nonces; registrations, declarations and unbonding entries; challenge status, round,
 *   counts, rejection time and reporters) equals the model's;
 * - every change observed is an edge of the allowed graph (`EDGES`): run Pending → Active → Completed, Pending
 *   or Active → Cancelled; participation None → Registered → Member, Registered or Member → None (left or
 *   ejected, the invite generation + 1); registration on ↔ off with a fresh declaration id on each
 *   registration or update; challenge within a round Pending → Validated | Rejected and Validated → Rejected
 *   (revoked), or a new round (round + 1) starting Pending, or Rejected at once by a rejection; invite nonces
 *   used for good. A refused call changes nothing.
 * Single use: every invite that was accepted and every challenge report that was recorded is sent again right
 * away (and invites again later, by a generated action, after leaving and re-registering): it must revert
 * with the model's error (TrainingRunsInvalidParticipation or TrainingRunsInviteNonceUsed for an invite,
 * ChallengeBoardAlreadyReported or ChallengeBoardRoundClosed for a report) and change nothing.
 */
import { expect } from "chai";
import { network } from "hardhat";
import fc from "fast-check";
import type { ContractTransactionResponse } from "ethers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import {
  CPU_NODE,
  RETRY_COOLDOWN,
  consentFor,
  minStakeFor,
  type System,
  createRun,
  deploySystem,
  farDeadline,
  inviteFor,
  joinRun,
  registerNode,
  validateNode,
} from "../helpers/system.js";
import { ChallengeStatus, Participation, RunStatus } from "../../scripts/lib/protocol.js";
import { Stats, attempt, checkProperty, errorsOf, maxShrinks, replaying, stable } from "./property.js";

const connection = await network.create();
const { ethers, networkHelpers } = connection;
const { time } = networkHelpers;

const FILE = "test/invariants/Transitions.test.ts";
const NUM_RUNS = 25;
/** Invite nonces the sequences use per run (few, so that they collide). */
const NONCES = [1n, 2n, 3n];
/** Most runs a sequence creates (a node's run list stays far below MAX_RUNS_PER_NODE, 16). */
const MAX_RUNS = 6;
/** Most unbonding entries per node (MinerRegistry.MAX_UNBONDING_ENTRIES). */
const MAX_UNBONDING = 8;
const MINED = { gasLimit: 3_000_000 };
const ZERO = ethers.ZeroAddress;

const NO_REQUIREMENTS = {
  minGpuCount: 0,
  minGpuMemoryMB: 0,
  minCpuCores: 0,
  minRamMB: 0,
  minStorageGB: 0,
  allowedGpuModels: [] as string[],
};

interface Context {
  sys: System;
  nodes: HardhatEthersSigner[];
  /** The provider that registers each node (by index). */
  providers: HardhatEthersSigner[];
}

async function transitionsFixture(): Promise<Context> {
  const sys = await deploySystem(connection);
  const [p1, p2] = sys.providers;
  const nodes = sys.nodes.slice(0, 6);
  const providers = [p1, p1, p2, p2, p2, p2];
  for (let i = 0; i < 5; i++) await registerNode(connection, sys, providers[i], nodes[i], CPU_NODE);
  for (let i = 0; i < 4; i++) await validateNode(sys, nodes[i].address);
  const run1 = await createRun(sys, { maxMembers: 2, requirements: NO_REQUIREMENTS });
  await sys.trainingRuns.connect(sys.buyer).startRun(run1);
  await joinRun(connection, sys, run1, nodes[0], 1n);
  await sys.trainingRuns.connect(nodes[1]).registerForRun(run1, nodes[1].address);
  await createRun(sys, { maxMembers: 3, requirements: NO_REQUIREMENTS });
  return { sys, nodes, providers };
}

// ------------------------------------------------------------------ state: observed and modelled alike

interface RunState {
  status: number;
  members: number;
  maxMembers: number;
}
interface ChallengeState {
  status: number;
  round: number;
  capsId: bigint;
  approvals: number;
  rejections: number;
  rejectedAt: bigint;
  /** Whether each of the three validators reported in the current round. */
  reporters: boolean[];
}
interface NodeState {
  registered: boolean;
  capsId: bigint;
  unbonding: number;
}
interface State {
  runs: RunState[];
  /** participation[run - 1][node] */
  participation: Array<Array<{ status: number; generation: bigint }>>;
  /** nonceUsed[run - 1][nonce index] */
  nonceUsed: boolean[][];
  nodes: NodeState[];
  challenges: ChallengeState[];
}

async function observe(ctx: Context): Promise<State> {
  const { trainingRuns, registry, challengeBoard } = ctx.sys;
  const runCount = Number(await trainingRuns.runCount());
  const runIds = Array.from({ length: runCount }, (_, i) => BigInt(i + 1));
  const [runs, participation, nonceUsed, nodes, challenges] = await Promise.all([
    Promise.all(
      runIds.map(async (r) => {
        const info = await trainingRuns.getRun(r);
        return { status: Number(info.status), members: Number(info.memberCount), maxMembers: Number(info.maxMembers) };
      }),
    ),
    Promise.all(
      runIds.map((r) =>
        Promise.all(
          ctx.nodes.map(async (n) => {
            const [status, generation] = await Promise.all([
              trainingRuns.participationOf(r, n.address),
              trainingRuns.inviteGenerationOf(r, n.address),
            ]);
            return { status: Number(status), generation };
          }),
        ),
      ),
    ),
    Promise.all(runIds.map((r) => Promise.all(NONCES.map((nonce) => trainingRuns.isInviteNonceUsed(r, nonce))))),
    Promise.all(
      ctx.nodes.map(async (n) => {
        const [[provider, capsId], unbonding] = await Promise.all([
          registry.registrationOf(n.address),
          registry.unbondingOf(n.address),
        ]);
        return { registered: provider !== ZERO, capsId, unbonding: unbonding.length };
      }),
    ),
    Promise.all(
      ctx.nodes.map(async (n) => {
        const c = await challengeBoard.challengeOf(n.address);
        const reporters = await Promise.all(
          ctx.sys.validators.map(async (v) => (await challengeBoard.reportOf(n.address, c.round, v.address)) !== ethers.ZeroHash),
        );
        return {
          status: Number(c.status),
          round: Number(c.round),
          capsId: c.capsId,
          approvals: Number(c.approvals),
          rejections: Number(c.rejections),
          rejectedAt: c.rejectedAt,
          reporters,
        };
      }),
    ),
  ]);
  return { runs, participation, nonceUsed, nodes, challenges };
}

/** Allowed single-call edges, per kind of state (staying put is always allowed). */
const EDGES = {
  run: new Set([
    `${RunStatus.Pending}>${RunStatus.Active}`,
    `${RunStatus.Pending}>${RunStatus.Cancelled}`,
    `${RunStatus.Active}>${RunStatus.Completed}`,
    `${RunStatus.Active}>${RunStatus.Cancelled}`,
  ]),
  participation: new Set([
    `${Participation.None}>${Participation.Registered}`,
    `${Participation.Registered}>${Participation.Member}`,
    `${Participation.Registered}>${Participation.None}`,
    `${Participation.Member}>${Participation.None}`,
  ]),
  /** Within one round. */
  challenge: new Set([
    `${ChallengeStatus.Pending}>${ChallengeStatus.Validated}`,
    `${ChallengeStatus.Pending}>${ChallengeStatus.Rejected}`,
    `${ChallengeStatus.Validated}>${ChallengeStatus.Rejected}`,
  ]),
  /** Into a new round (round + 1): it starts Pending, or is rejected at once by the report that opened it. */
  newRound: new Set([ChallengeStatus.Pending, ChallengeStatus.Rejected]),
};

/** Every observed change from `a` to `b` is an edge of the allowed graph; the edges taken are added to `seen`. */
function checkEdges(a: State, b: State, where: string, seen: Set<string>) {
  const at = (what: string) => `${what} (${where})`;
  expect(b.runs.length, at("runs are never removed")).to.be.gte(a.runs.length);
  for (const [i, run] of b.runs.entries()) {
    const before = a.runs[i]?.status ?? RunStatus.None;
    if (before === RunStatus.None) expect(run.status, at(`run ${i + 1} created`)).to.equal(RunStatus.Pending);
    else if (before !== run.status) {
      expect(EDGES.run.has(`${before}>${run.status}`), at(`run ${i + 1}: ${before} → ${run.status}`)).to.equal(true);
      seen.add(`run ${before}>${run.status}`);
    }
    expect(run.members, at(`run ${i + 1} within maxMembers`)).to.be.lte(run.maxMembers);
    expect(run.members, at(`run ${i + 1} members`)).to.equal(b.participation[i].filter((p) => p.status === Participation.Member).length);
    if (run.status === RunStatus.Completed || run.status === RunStatus.Cancelled) {
      // An ended run takes nobody in: no participation appears in it.
      for (const [n, p] of b.participation[i].entries()) {
        const q = a.participation[i]?.[n];
        if (q !== undefined && q.status !== p.status) expect(p.status, at(`joined ended run ${i + 1}`)).to.equal(Participation.None);
      }
    }
  }
  for (const [r, row] of b.participation.entries()) {
    for (const [n, p] of row.entries()) {
      const q = a.participation[r]?.[n] ?? { status: Participation.None, generation: 0n };
      const label = `participation of n${n + 1} in run ${r + 1}`;
      if (q.status !== p.status) {
        expect(EDGES.participation.has(`${q.status}>${p.status}`), at(`${label}: ${q.status} → ${p.status}`)).to.equal(true);
        seen.add(`participation ${q.status}>${p.status}`);
      }
      // The generation moves exactly when a participation ends.
      const ended = q.status !== Participation.None && p.status === Participation.None;
      expect(p.generation, at(`${label} generation`)).to.equal(q.generation + (ended ? 1n : 0n));
    }
  }
  for (const [r, row] of b.nonceUsed.entries()) {
    for (const [k, used] of row.entries()) if (a.nonceUsed[r]?.[k]) expect(used, at(`nonce ${k + 1} of run ${r + 1} unused again`)).to.equal(true);
  }
  for (const [n, node] of b.nodes.entries()) {
    const before = a.nodes[n];
    const label = `registration of n${n + 1}`;
    if (node.registered && (!before.registered || node.capsId !== before.capsId)) {
      // A registration or a declaration change takes a fresh, larger declaration id.
      expect(node.capsId, at(`${label} declaration`)).to.be.gt(before.capsId);
    }
    if (!node.registered) expect(node.capsId, at(`${label} cleared`)).to.equal(0n);
    expect(node.unbonding, at(`${label} unbonding`)).to.be.oneOf([before.unbonding, before.unbonding + 1]);
    const c = b.challenges[n];
    const d = a.challenges[n];
    const clabel = `challenge of n${n + 1}`;
    if (c.round === d.round) {
      if (c.status !== d.status) {
        expect(EDGES.challenge.has(`${d.status}>${c.status}`), at(`${clabel}: ${d.status} → ${c.status}`)).to.equal(true);
        seen.add(`challenge ${d.status}>${c.status}`);
      }
      expect(c.capsId, at(`${clabel} declaration within a round`)).to.equal(d.capsId);
    } else {
      expect(c.round, at(`${clabel} round`)).to.equal(d.round + 1);
      expect(EDGES.newRound.has(c.status as 1 | 3), at(`${clabel}: new round in ${c.status}`)).to.equal(true);
      seen.add(`challenge ${d.status}>new round ${c.status}`);
    }
  }
}

// ------------------------------------------------------------------ actions and the model's predictions

type Action =
  | { k: "createRun"; maxMembers: number }
  | { k: "startRun"; run: number; caller: number }
  | { k: "completeRun"; run: number; caller: number }
  | { k: "cancelRun"; run: number; caller: number }
  | { k: "registerForRun"; run: number; node: number; caller: number }
  | { k: "acceptInvite"; run: number; node: number; nonce: number; caller: number; stale: boolean; aim: boolean }
  | { k: "replayInvite" }
  | { k: "revokeInvite"; run: number; nonce: number; caller: number }
  | { k: "leaveRun"; run: number; node: number; caller: number; aim: boolean }
  | { k: "eject"; run: number; node: number; caller: number; aim: boolean }
  | { k: "deregister"; node: number; caller: number }
  | { k: "register"; node: number }
  | { k: "updateCaps"; node: number }
  | { k: "report"; node: number; validator: number; approve: boolean; stale: boolean; aim: boolean }
  | { k: "revoke"; node: number }
  | { k: "requestNewRound"; node: number; caller: number; aim: boolean }
  | { k: "wait"; seconds: number };

const runIndex = fc.nat({ max: MAX_RUNS });
const nodeIndex = fc.nat({ max: 5 });
/** Callers by index: the entitled one most often, then others. */
const caller = fc.oneof({ arbitrary: fc.constant(0), weight: 6 }, { arbitrary: fc.constant(1), weight: 2 }, { arbitrary: fc.constant(2), weight: 1 });
/** Whether a call on a node in a run aims at an existing participation (of the wanted status) when there is one. */
const aim = fc.oneof({ arbitrary: fc.constant(true), weight: 3 }, { arbitrary: fc.constant(false), weight: 1 });
const ACTION: fc.Arbitrary<Action> = fc.oneof(
  { arbitrary: fc.record({ k: fc.constant("createRun" as const), maxMembers: fc.integer({ min: 1, max: 3 }) }), weight: 2 },
  { arbitrary: fc.record({ k: fc.constant("startRun" as const), run: runIndex, caller }), weight: 2 },
  { arbitrary: fc.record({ k: fc.constant("completeRun" as const), run: runIndex, caller }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant("cancelRun" as const), run: runIndex, caller }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant("registerForRun" as const), run: runIndex, node: nodeIndex, caller }), weight: 5 },
  {
    arbitrary: fc.record({
      k: fc.constant("acceptInvite" as const),
      run: runIndex,
      node: nodeIndex,
      nonce: fc.nat({ max: NONCES.length - 1 }),
      caller,
      stale: fc.oneof({ arbitrary: fc.constant(false), weight: 5 }, { arbitrary: fc.constant(true), weight: 1 }),
      aim,
    }),
    weight: 6,
  },
  { arbitrary: fc.record({ k: fc.constant("replayInvite" as const) }), weight: 2 },
  { arbitrary: fc.record({ k: fc.constant("revokeInvite" as const), run: runIndex, nonce: fc.nat({ max: NONCES.length - 1 }), caller }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant("leaveRun" as const), run: runIndex, node: nodeIndex, caller, aim }), weight: 3 },
  { arbitrary: fc.record({ k: fc.constant("eject" as const), run: runIndex, node: nodeIndex, caller, aim }), weight: 2 },
  { arbitrary: fc.record({ k: fc.constant("deregister" as const), node: nodeIndex, caller }), weight: 2 },
  { arbitrary: fc.record({ k: fc.constant("register" as const), node: nodeIndex }), weight: 2 },
  { arbitrary: fc.record({ k: fc.constant("updateCaps" as const), node: nodeIndex }), weight: 2 },
  {
    arbitrary: fc.record({
      k: fc.constant("report" as const),
      node: nodeIndex,
      validator: fc.oneof({ arbitrary: fc.nat({ max: 2 }), weight: 8 }, { arbitrary: fc.constant(3), weight: 1 }),
      approve: fc.oneof({ arbitrary: fc.constant(true), weight: 2 }, { arbitrary: fc.constant(false), weight: 1 }),
      stale: fc.oneof({ arbitrary: fc.constant(false), weight: 6 }, { arbitrary: fc.constant(true), weight: 1 }),
      aim,
    }),
    weight: 7,
  },
  { arbitrary: fc.record({ k: fc.constant("revoke" as const), node: nodeIndex }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant("requestNewRound" as const), node: nodeIndex, caller, aim }), weight: 4 },
  { arbitrary: fc.record({ k: fc.constant("wait" as const), seconds: fc.constantFrom(600, 1_800, 3_600, 7_200) }), weight: 3 },
);
const SEQUENCE = fc.limitShrink(fc.array(ACTION, { minLength: 20, maxLength: 60, size: "max" }), maxShrinks());

/** An invite as sent: `validFor` is the invite generation its signature is valid for (undefined: never). */
interface Invite {
  runId: bigint;
  node: number;
  nonce: bigint;
  expiry: bigint;
  signature: string;
  from: HardhatEthersSigner;
  validFor: bigint | undefined;
}

/** What a call must do: revert with `error`, or succeed and leave the state `next`. */
type Prediction = { error: string } | { next: State };

describe("Invariants: run, participation, registration and challenge states move along the allowed graph", function () {
  this.timeout(15 * 60_000);

  it("follows the model on random call sequences, refusing disallowed calls and reused invites and reports", async () => {
    const base = await networkHelpers.loadFixture(transitionsFixture);
    const errors = errorsOf([base.sys.trainingRuns, base.sys.registry, base.sys.challengeBoard]);
    const stats = new Stats();
    const edges = new Set<string>();
    let steps = 0;

    const property = fc.asyncProperty(SEQUENCE, async (sequence) => {
      const ctx = await networkHelpers.loadFixture(transitionsFixture);
      const { sys, nodes, providers } = ctx;
      const tr = sys.trainingRuns;
      const [p1, p2] = sys.providers;
      let state = await observe(ctx);
      let lastCapsId = state.nodes.reduce((m, n) => (n.capsId > m ? n.capsId : m), 0n);
      /** The last accepted invite, for `replayInvite`. */
      let lastInvite: Invite | undefined;

      const runCount = () => state.runs.length;
      /** A run id among the existing ones and one past them (unknown). */
      const runIdOf = (i: number) => BigInt((i % (runCount() + 1)) + 1);
      const run = (runId: bigint) => state.runs[Number(runId) - 1] as RunState | undefined;
      const isOpen = (status: number) => status === RunStatus.Pending || status === RunStatus.Active;
      const providerOf = (n: number) => (state.nodes[n].registered ? providers[n].address : ZERO);
      const isValidated = (n: number) =>
        state.challenges[n].status === ChallengeStatus.Validated && state.challenges[n].capsId === state.nodes[n].capsId;
      const activeRuns = (n: number) =>
        state.participation.filter((row, r) => row[n].status !== Participation.None && isOpen(state.runs[r].status)).length;
      /** Callers by index: the entitled one first, then others. */
      const nodeCaller = (n: number, c: number) => [nodes[n], providers[n], sys.stranger][c];
      const clone = () => structuredClone(state);
      /** With `aim`, a node whose challenge and registration `wanted` accepts, if any; else the drawn one. */
      const aimNode = (a: { node: number; aim: boolean }, wanted: (c: ChallengeState, node: NodeState) => boolean) => {
        const candidates = nodes.map((_, n) => n).filter((n) => wanted(state.challenges[n], state.nodes[n]));
        return a.aim && candidates.length > 0 ? candidates[a.node % candidates.length] : a.node;
      };
      /** With `aim`, the i-th (run, node) pair whose participation `wanted` accepts, if any; else the drawn one. */
      const target = (a: { run: number; node: number; aim: boolean }, wanted: (status: number) => boolean) => {
        const pairs: Array<[bigint, number]> = [];
        for (const [r, row] of state.participation.entries()) {
          for (const [n, p] of row.entries()) if (wanted(p.status)) pairs.push([BigInt(r + 1), n]);
        }
        if (!a.aim || pairs.length === 0) return [runIdOf(a.run), a.node] as const;
        return pairs[(a.run * 7 + a.node) % pairs.length];
      };
      const leave = (next: State, r: number, n: number) => {
        const p = next.participation[r][n];
        if (p.status === Participation.Member) next.runs[r].members--;
        p.status = Participation.None;
        p.generation++;
      };

      /** Checks shared by calls that act for a node in a run (`_checkNodeOrProvider`). */
      const nodeOrProviderError = (n: number, from: HardhatEthersSigner) =>
        from.address === nodes[n].address || from.address === providerOf(n) ? undefined : "TrainingRunsNotNodeOrProvider";

      /** Performs `a`: predicts, sends, checks; returns what to replay right away, if anything. */
      const step = async (a: Action, now: bigint, mustRefuse = false) => {
        let predict: Prediction;
        let send: () => Promise<ContractTransactionResponse>;
        /** The exact call to send again right away (targets resolved), when this one must succeed. */
        let again: Action | undefined;
        switch (a.k) {
          case "createRun": {
            if (runCount() >= MAX_RUNS) return;
            const next = clone();
            next.runs.push({ status: RunStatus.Pending, members: 0, maxMembers: a.maxMembers });
            next.participation.push(nodes.map(() => ({ status: Participation.None, generation: 0n })));
            next.nonceUsed.push(NONCES.map(() => false));
            predict = { next };
            send = () =>
              tr.connect(sys.buyer).createRun(
                {
                  master: sys.master.address,
                  pricePerUnit: 0n,
                  maxMembers: a.maxMembers,
                  budget: 0n,
                  discoveryURI: "https://discovery.computenet.test",
                  requirements: NO_REQUIREMENTS,
                },
                MINED,
              );
            break;
          }
          case "startRun":
          case "completeRun":
          case "cancelRun": {
            const runId = runIdOf(a.run);
            const r = run(runId);
            const from = [sys.buyer, sys.master, sys.stranger][a.caller];
            const buyerOnly = a.k !== "startRun";
            const want: number[] = a.k === "startRun" ? [RunStatus.Pending] : a.k === "completeRun" ? [RunStatus.Active] : [RunStatus.Pending, RunStatus.Active];
            if (r === undefined) predict = { error: "TrainingRunsUnknownRun" };
            else if (buyerOnly ? from !== sys.buyer : from === sys.stranger) predict = { error: buyerOnly ? "TrainingRunsNotBuyer" : "TrainingRunsNotBuyerOrMaster" };
            else if (!want.includes(r.status)) predict = { error: "TrainingRunsInvalidStatus" };
            else {
              const next = clone();
              next.runs[Number(runId) - 1].status =
                a.k === "startRun" ? RunStatus.Active : a.k === "completeRun" ? RunStatus.Completed : RunStatus.Cancelled;
              predict = { next };
            }
            send = () => tr.connect(from)[a.k](runId, MINED);
            break;
          }
          case "registerForRun": {
            const runId = runIdOf(a.run);
            const r = run(runId);
            const from = nodeCaller(a.node, a.caller);
            const provider = providerOf(a.node);
            if (r === undefined) predict = { error: "TrainingRunsUnknownRun" };
            else if (!isOpen(r.status)) predict = { error: "TrainingRunsInvalidStatus" };
            else if (provider === ZERO) predict = { error: "TrainingRunsNodeNotRegistered" };
            else if (from.address !== nodes[a.node].address && from.address !== provider) predict = { error: "TrainingRunsNotNodeOrProvider" };
            else if (state.participation[Number(runId) - 1][a.node].status !== Participation.None) predict = { error: "TrainingRunsInvalidParticipation" };
            else {
              const next = clone();
              next.participation[Number(runId) - 1][a.node].status = Participation.Registered;
              predict = { next };
            }
            send = () => tr.connect(from).registerForRun(runId, nodes[a.node].address, MINED);
            break;
          }
          case "acceptInvite":
          case "replayInvite": {
            let invite = lastInvite;
            if (a.k === "acceptInvite") {
              const [runId, node] = target(a, (status) => status === Participation.Registered);
              const nonce = NONCES[a.nonce];
              const expiry = await farDeadline(connection);
              const generation = state.participation[Number(runId) - 1]?.[node].generation ?? 0n;
              // Stale: the invite of the generation before (void), or, at generation 0, one not signed by the master.
              const signer = a.stale && generation === 0n ? sys.stranger : sys.master;
              const signedAt = a.stale && generation > 0n ? generation - 1n : generation;
              const signature = await inviteFor(sys, signer, { runId, node: nodes[node].address, nonce, expiry, generation: signedAt });
              const validFor = a.stale ? undefined : generation;
              invite = { runId, node, nonce, expiry, signature, from: nodeCaller(node, a.caller), validFor };
            }
            if (invite === undefined) return;
            const { runId, node: n, nonce, expiry, signature, from, validFor } = invite;
            const r = run(runId);
            const ri = Number(runId) - 1;
            const participation = r === undefined ? undefined : state.participation[ri][n];
            if (r === undefined) predict = { error: "TrainingRunsUnknownRun" };
            else if (!isOpen(r.status)) predict = { error: "TrainingRunsInvalidStatus" };
            else if (nodeOrProviderError(n, from) !== undefined) predict = { error: "TrainingRunsNotNodeOrProvider" };
            else if (participation!.status !== Participation.Registered) predict = { error: "TrainingRunsInvalidParticipation" };
            else if (state.nonceUsed[ri][NONCES.indexOf(nonce)]) predict = { error: "TrainingRunsInviteNonceUsed" };
            // The signature binds the invite generation: void once the node left or was ejected since.
            else if (validFor !== participation!.generation) predict = { error: "TrainingRunsInvalidInviteSignature" };
            else if (!isValidated(n)) predict = { error: "TrainingRunsNodeNotValidated" };
            else if (r.members >= r.maxMembers) predict = { error: "TrainingRunsFull" };
            else {
              const next = clone();
              next.participation[ri][n].status = Participation.Member;
              next.runs[ri].members++;
              next.nonceUsed[ri][NONCES.indexOf(nonce)] = true;
              predict = { next };
              if (a.k === "acceptInvite") {
                lastInvite = invite;
                again = { k: "replayInvite" };
              }
            }
            send = () => tr.connect(from).acceptInvite(runId, nodes[n].address, nonce, expiry, signature, MINED);
            break;
          }
          case "revokeInvite": {
            const runId = runIdOf(a.run);
            const r = run(runId);
            const from = [sys.master, sys.buyer, sys.stranger][a.caller];
            const nonce = NONCES[a.nonce];
            if (r === undefined) predict = { error: "TrainingRunsUnknownRun" };
            else if (from !== sys.master) predict = { error: "TrainingRunsNotMaster" };
            else if (state.nonceUsed[Number(runId) - 1][a.nonce]) predict = { error: "TrainingRunsInviteNonceUsed" };
            else {
              const next = clone();
              next.nonceUsed[Number(runId) - 1][a.nonce] = true;
              predict = { next };
            }
            send = () => tr.connect(from).revokeInvite(runId, nonce, MINED);
            break;
          }
          case "leaveRun": {
            const [runId, n] = target(a, (status) => status !== Participation.None);
            const r = run(runId);
            const from = nodeCaller(n, a.caller);
            if (r === undefined) predict = { error: "TrainingRunsUnknownRun" };
            else if (nodeOrProviderError(n, from) !== undefined) predict = { error: "TrainingRunsNotNodeOrProvider" };
            else if (state.participation[Number(runId) - 1][n].status === Participation.None) predict = { error: "TrainingRunsInvalidParticipation" };
            else {
              const next = clone();
              leave(next, Number(runId) - 1, n);
              predict = { next };
            }
            send = () => tr.connect(from).leaveRun(runId, nodes[n].address, MINED);
            break;
          }
          case "eject": {
            const [runId, n] = target(a, (status) => status !== Participation.None);
            const r = run(runId);
            const from = [sys.master, sys.buyer, sys.stranger][a.caller];
            if (r === undefined) predict = { error: "TrainingRunsUnknownRun" };
            else if (!isOpen(r.status)) predict = { error: "TrainingRunsInvalidStatus" };
            else if (from !== sys.master) predict = { error: "TrainingRunsNotMaster" };
            else if (state.participation[Number(runId) - 1][n].status === Participation.None) predict = { error: "TrainingRunsInvalidParticipation" };
            else {
              const next = clone();
              leave(next, Number(runId) - 1, n);
              predict = { next };
            }
            send = () => tr.connect(from).eject(runId, nodes[n].address, ethers.id("test"), MINED);
            break;
          }
          case "deregister": {
            const n = a.node;
            const from = [providers[n], providers[n] === p1 ? p2 : p1, sys.stranger][a.caller];
            if (!state.nodes[n].registered) predict = { error: "MinerRegistryNodeNotRegistered" };
            else if (from !== providers[n]) predict = { error: "MinerRegistryNotProvider" };
            else if (activeRuns(n) > 0) predict = { error: "MinerRegistryNodeInActiveRuns" };
            else if (state.nodes[n].unbonding >= MAX_UNBONDING) predict = { error: "MinerRegistryUnbondingQueueFull" };
            else {
              const next = clone();
              next.nodes[n] = { registered: false, capsId: 0n, unbonding: state.nodes[n].unbonding + 1 };
              predict = { next };
            }
            send = () => sys.registry.connect(from).deregisterNode(nodes[n].address, MINED);
            break;
          }
          case "register": {
            const n = a.node;
            if (state.nodes[n].registered) predict = { error: "MinerRegistryNodeAlreadyRegistered" };
            else {
              const next = clone();
              next.nodes[n] = { registered: true, capsId: lastCapsId + 1n, unbonding: state.nodes[n].unbonding };
              predict = { next };
            }
            const deadline = await farDeadline(connection);
            const consent = await consentFor(sys, nodes[n], providers[n].address, deadline);
            send = () =>
              sys.registry.connect(providers[n]).registerNode(nodes[n].address, CPU_NODE, minStakeFor(CPU_NODE), deadline, consent, MINED);
            break;
          }
          case "updateCaps": {
            const n = a.node;
            if (!state.nodes[n].registered) predict = { error: "MinerRegistryNodeNotRegistered" };
            else if (activeRuns(n) > 0) predict = { error: "MinerRegistryNodeInActiveRuns" };
            else {
              const next = clone();
              next.nodes[n].capsId = lastCapsId + 1n;
              predict = { next };
            }
            const caps = { ...CPU_NODE, cpuCores: 4 + Number(lastCapsId % 8n) };
            send = () => sys.registry.connect(providers[n]).updateCapabilities(nodes[n].address, caps, MINED);
            break;
          }
          case "report": {
            // Aimed: a registered node whose challenge is open (pending, or its declaration changed since).
            const n = aimNode(a, (c, node) => node.registered && (c.status === ChallengeStatus.Pending || c.capsId !== node.capsId));
            const from = [...sys.validators, sys.stranger][a.validator];
            const current = state.nodes[n].capsId;
            const capsId = a.stale && current > 1n ? current - 1n : current;
            const c = state.challenges[n];
            const newRound = c.capsId !== capsId;
            if (from === sys.stranger) predict = { error: "AccessControlUnauthorizedAccount" };
            else if (current === 0n) predict = { error: "ChallengeBoardNodeNotRegistered" };
            else if (capsId !== current) predict = { error: "ChallengeBoardStaleDeclaration" };
            else if (newRound && c.status === ChallengeStatus.Rejected && now < c.rejectedAt + RETRY_COOLDOWN) {
              predict = { error: "ChallengeBoardCooldownActive" };
            } else if (!newRound && c.status !== ChallengeStatus.Pending) predict = { error: "ChallengeBoardRoundClosed" };
            else if (!newRound && c.reporters[a.validator]) predict = { error: "ChallengeBoardAlreadyReported" };
            else {
              const next = clone();
              const d = next.challenges[n];
              if (newRound) Object.assign(d, { round: c.round + 1, capsId, status: ChallengeStatus.Pending, approvals: 0, rejections: 0, rejectedAt: 0n, reporters: [false, false, false] });
              d.reporters[a.validator] = true;
              if (a.approve) {
                d.approvals++;
                if (d.approvals >= 2) d.status = ChallengeStatus.Validated;
              } else {
                d.rejections++;
                d.status = ChallengeStatus.Rejected;
                d.rejectedAt = now;
              }
              predict = { next };
              again = { ...a, node: n, aim: false };
            }
            const result = ethers.id(`report ${n} ${a.validator} ${capsId}`);
            send = () => sys.challengeBoard.connect(from).reportChallenge(nodes[n].address, capsId, a.approve, result, MINED);
            break;
          }
          case "revoke": {
            const n = a.node;
            if (!isValidated(n)) predict = { error: "ChallengeBoardNotValidated" };
            else {
              const next = clone();
              Object.assign(next.challenges[n], { status: ChallengeStatus.Rejected, rejectedAt: now });
              predict = { next };
            }
            send = () => sys.challengeBoard.connect(sys.admin).revokeValidation(nodes[n].address, ethers.id("revoked"), MINED);
            break;
          }
          case "requestNewRound": {
            const n = aimNode(a, (c) => c.status === ChallengeStatus.Rejected);
            const from = nodeCaller(n, a.caller);
            const c = state.challenges[n];
            if (!state.nodes[n].registered) predict = { error: "ChallengeBoardNodeNotRegistered" };
            else if (from.address !== nodes[n].address && from.address !== providers[n].address) predict = { error: "ChallengeBoardNotNodeOrProvider" };
            else if (c.capsId !== state.nodes[n].capsId || c.status !== ChallengeStatus.Rejected) predict = { error: "ChallengeBoardNotRejected" };
            else if (now < c.rejectedAt + RETRY_COOLDOWN) predict = { error: "ChallengeBoardCooldownActive" };
            else {
              const next = clone();
              Object.assign(next.challenges[n], { round: c.round + 1, status: ChallengeStatus.Pending, approvals: 0, rejections: 0, rejectedAt: 0n, reporters: [false, false, false] });
              predict = { next };
            }
            send = () => sys.challengeBoard.connect(from).requestNewRound(nodes[n].address, MINED);
            break;
          }
          case "wait":
            return;
        }

        if (mustRefuse) expect("error" in predict, `the model lets ${a.k} be replayed`).to.equal(true);
        await time.setNextBlockTimestamp(now);
        const outcome = await attempt(errors, send);
        stats.record(a.k, outcome);
        const observed = await observe(ctx);
        const where = `call ${index} of the sequence: ${stable(a)}`;
        if ("error" in predict) {
          expect(outcome.ok ? "success" : outcome.error, `${a.k} must revert (${where})`).to.equal(predict.error);
          expect(stable(observed), `refused ${a.k} changed state (${where})`).to.equal(stable(state));
        } else {
          expect(outcome.ok ? "success" : outcome.error, `${a.k} must succeed (${where})`).to.equal("success");
          checkEdges(state, observed, where, edges);
          expect(stable(observed), `${a.k}: state differs from the model (${where})`).to.equal(stable(predict.next));
          if (a.k === "register" || a.k === "updateCaps") lastCapsId++;
          state = observed;
        }
        return again;
      };

      let index = -1;
      for (const a of sequence) {
        steps++;
        index++;
        const now = BigInt(await time.latest()) + (a.k === "wait" ? BigInt(a.seconds) : 1n);
        if (a.k === "wait") {
          await time.setNextBlockTimestamp(now);
          await networkHelpers.mine();
          continue;
        }
        const again = await step(a, now);
        if (again === undefined) continue;
        // The very same transaction again: refused as the model says, nothing changes.
        const replayNow = BigInt(await time.latest()) + 1n;
        const before = stable(state);
        const predicted = await step(again, replayNow, true);
        expect(predicted, "a replay must be refused").to.equal(undefined);
        expect(stable(state), "a refused replay changed the model").to.equal(before);
        stats.record(`${a.k} (replayed)`, { ok: false, error: "refused" });
      }
    });

    const details = await checkProperty("follows the model", FILE, property, NUM_RUNS);
    console.log(
      `      ${details.numRuns} sequences (seed ${details.seed}), ${steps} calls checked; edges taken: ${[...edges].sort().join(", ")}\n${stats}`,
    );
    if (replaying()) return;
    // Not vacuous: every kind of transition happened, and reused invite nonces were refused.
    for (const kind of ["startRun", "completeRun", "cancelRun", "registerForRun", "acceptInvite", "leaveRun", "eject", "deregister", "register", "updateCaps", "report", "revoke"]) {
      expect(stats.ok(kind), `no ${kind} succeeded`).to.be.greaterThan(0);
    }
    // Each entry: one of these edges was taken.
    const { Pending, Validated, Rejected } = ChallengeStatus;
    const wanted = [
      [`run ${RunStatus.Pending}>${RunStatus.Active}`],
      [`run ${RunStatus.Active}>${RunStatus.Completed}`],
      [`run ${RunStatus.Pending}>${RunStatus.Cancelled}`, `run ${RunStatus.Active}>${RunStatus.Cancelled}`],
      ...[...EDGES.participation].map((e) => [`participation ${e}`]),
      [`challenge ${Pending}>${Validated}`],
      [`challenge ${Validated}>${Rejected}`],
      [`challenge ${Pending}>${Rejected}`, ...[0, 1, 2, 3].map((from) => `challenge ${from}>new round ${Rejected}`)],
      [`challenge ${Rejected}>new round ${Pending}`],
    ];
    expect(wanted.filter((any) => !any.some((e) => edges.has(e))), "edges never taken").to.deep.equal([]);
    const reused = ["acceptInvite", "replayInvite"].map((k) => stats.counts.get(k)?.reverted.get("TrainingRunsInviteNonceUsed") ?? 0);
    expect(reused[0] + reused[1], "no reused invite nonce was refused").to.be.greaterThan(0);
  });
});
