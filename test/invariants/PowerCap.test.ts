/**
 * ProofOfCompute: one node's share of an epoch's power never exceeds the cap, for random power distributions,
 * and PoC commitments move only along None → Pending → Accepted | Rejected, with no double verdict.
 *
 * Each run starts from one snapshot: twelve validated CPU nodes and the chain at the start of epoch 1's PoC
 * phase (a bootstrap epoch: the three validators of the test system give the verdicts, each of weight 1; a
 * commitment is accepted by all three, rejected by any one). A run draws 0..12 nodes, each with a PoC count
 * (small, up to 2^64 − 1, or extreme values, so that zero to four nodes end above the cap) and a verdict
 * schedule: the validators in a random order, one of them rejecting for some nodes, some verdicts sent twice.
 * Every verdict is checked against a model of the commitment (accept and reject weights, who voted): a verdict
 * on a decided commitment must revert with ProofOfComputeAlreadyDecided, a second verdict of the same validator
 * on a pending one with ProofOfComputeAlreadyVoted, and neither may change the commitment; each observed
 * status change must be an edge of the graph.
 *
 * Once power is final (Work phase), for the accepted counts:
 * - every node's power is at most the effective cap of the total power (maxShareBps = 30 % with four nodes or
 *   more; 1/n below: 100 %, 50 %, 40 %), and at most maxShareBps when there are four or more;
 * - the contract's water level, total power and `powerCap` equal a reference computed here by a direct search
 *   (largest integer level x with x · 10000 ≤ cap · Σ min(count, x)), not by the contract's closed form;
 * - the level is the largest admissible one (one more would break the cap), powers sum to the total, and
 *   rejected or absent nodes hold none.
 */
import { expect } from "chai";
import { network } from "hardhat";
import fc from "fast-check";
import { AbiCoder, keccak256 } from "ethers";
import type { Wallet } from "ethers";
import { CPU_NODE, POC_PARAMETERS, type System, deploySystem } from "../helpers/system.js";
import { goToPhase, validatedNodes } from "../helpers/epochs.js";
import { EpochPhase } from "../../scripts/lib/protocol.js";
import { Stats, attempt, checkProperty, errorsOf, maxShrinks, replaying, stable } from "./property.js";

const connection = await network.create();
const { ethers, networkHelpers } = connection;
const coder = AbiCoder.defaultAbiCoder();

const FILE = "test/invariants/PowerCap.test.ts";
const NUM_RUNS = 60;
const EPOCH = 1n;
const NODES = 12;
const BPS = 10_000n;
const MAX_COUNT = 2n ** 64n - 1n;
const MINED = { gasLimit: 1_000_000 };
/** Commitment status (IProofOfCompute.Status). */
const Status = { None: 0, Pending: 1, Accepted: 2, Rejected: 3 } as const;
/** Edges of a commitment's status graph a single transaction may take (staying put is always allowed). */
const EDGES = new Set([`${Status.None}>${Status.Pending}`, `${Status.Pending}>${Status.Accepted}`, `${Status.Pending}>${Status.Rejected}`]);

interface Context {
  sys: System;
  nodes: Wallet[];
}

async function pocFixture(): Promise<Context> {
  const sys = await deploySystem(connection);
  const nodes = await validatedNodes(connection, sys, NODES, sys.providers[0], CPU_NODE);
  await goToPhase(connection, sys, EPOCH, EpochPhase.PoC);
  return { sys, nodes };
}

interface Entry {
  count: bigint;
  /** Validators (indices into the three) in the order they give verdicts. */
  order: number[];
  /** Position in `order` of the validator that rejects, or -1: all accept. */
  rejectAt: number;
  /** Verdict positions sent a second time right after the first. */
  replays: boolean[];
}

const count = fc.oneof(
  { arbitrary: fc.bigInt({ min: 1n, max: 1_000n }), weight: 4 },
  { arbitrary: fc.bigInt({ min: 1n, max: MAX_COUNT }), weight: 2 },
  { arbitrary: fc.bigInt({ min: 1_000_000n, max: 10n ** 12n }), weight: 2 },
  { arbitrary: fc.constantFrom(1n, 2n, MAX_COUNT, MAX_COUNT - 1n, 2n ** 63n), weight: 1 },
);
const entry: fc.Arbitrary<Entry> = fc.record({
  count,
  order: fc.shuffledSubarray([0, 1, 2], { minLength: 3, maxLength: 3 }),
  rejectAt: fc.oneof({ arbitrary: fc.constant(-1), weight: 5 }, { arbitrary: fc.integer({ min: 0, max: 2 }), weight: 1 }),
  replays: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
});
const DISTRIBUTION = fc.limitShrink(fc.array(entry, { maxLength: NODES, size: "max" }), maxShrinks());

/** The effective cap with `n` accepted nodes (ProofOfCompute: never below 1/n). */
function capBps(n: number): bigint {
  const max = POC_PARAMETERS.maxShareBps;
  if (n === 1) return BPS;
  if (n === 2) return max > 5000n ? max : 5000n;
  if (n === 3) return max > 4000n ? max : 4000n;
  return max;
}

const sumMin = (counts: bigint[], x: bigint) => counts.reduce((s, c) => s + (c < x ? c : x), 0n);

/** The water level and total power of `counts`, by direct search over integer levels. */
function reference(counts: bigint[]): { level: bigint; total: bigint; cap: bigint } {
  const cap = capBps(counts.length);
  if (counts.length === 0) return { level: 0n, total: 0n, cap };
  const top = counts.reduce((a, b) => (a > b ? a : b));
  const admissible = (x: bigint) => x * BPS <= cap * sumMin(counts, x);
  if (admissible(top)) return { level: top, total: sumMin(counts, top), cap };
  let low = 0n; // admissible
  let high = top; // not admissible
  while (high - low > 1n) {
    const mid = (low + high) / 2n;
    if (admissible(mid)) low = mid;
    else high = mid;
  }
  return { level: low, total: sumMin(counts, low), cap };
}

describe("Invariants: power share under the cap, PoC commitment transitions, no double verdict", function () {
  this.timeout(10 * 60_000);

  it("caps every node's share of the power for random distributions, one verdict per validator", async () => {
    const base = await networkHelpers.loadFixture(pocFixture);
    const errors = errorsOf([base.sys.proofOfCompute, base.sys.epochManager, base.sys.registry]);
    const stats = new Stats();
    let capped = 0;
    let maxCappedNodes = 0;

    const property = fc.asyncProperty(DISTRIBUTION, async (entries) => {
      const { sys, nodes } = await networkHelpers.loadFixture(pocFixture);
      const poc = sys.proofOfCompute;
      const validators = sys.validators;
      const commitment = async (node: string) => {
        const c = await poc.commitmentOf(EPOCH, node);
        return { status: Number(c.status), acceptWeight: c.acceptWeight, rejectWeight: c.rejectWeight, count: c.count };
      };

      // Seeds and commitments.
      for (const [i, e] of entries.entries()) {
        const node = nodes[i];
        const seed = keccak256(coder.encode(["string", "address"], ["seed", node.address]));
        await sys.epochManager.connect(node).commitSeed(EPOCH, await sys.epochManager.seedCommitment(seed, node.address));
        expect((await commitment(node.address)).status).to.equal(Status.None);
        await poc.connect(node).commitPoc(EPOCH, keccak256(coder.encode(["string", "address"], ["root", node.address])), e.count);
        const after = await commitment(node.address);
        expect(after.status, "None → Pending on commit").to.equal(Status.Pending);
        expect(after.count).to.equal(e.count);
      }

      // Verdicts, against a model of each commitment.
      const accepted: bigint[] = [];
      for (const [i, e] of entries.entries()) {
        const node = nodes[i].address;
        const model = { status: Status.Pending as number, accept: 0n, reject: 0n, voted: new Set<number>() };
        for (const [position, v] of e.order.entries()) {
          const ok = position !== e.rejectAt;
          const evidence = ethers.id(`evidence ${i} ${v}`);
          const send = () => poc.connect(validators[v]).submitVerdict(EPOCH, node, ok, evidence, MINED);
          for (let attemptNo = 0; attemptNo < (e.replays[position] ? 2 : 1); attemptNo++) {
            const before = await commitment(node);
            const expected =
              model.status !== Status.Pending
                ? "ProofOfComputeAlreadyDecided"
                : model.voted.has(v)
                  ? "ProofOfComputeAlreadyVoted"
                  : undefined;
            const outcome = await attempt(errors, send);
            stats.record(attemptNo === 0 ? "verdict" : "verdict (replayed)", outcome);
            const after = await commitment(node);
            if (expected !== undefined) {
              expect(outcome.ok ? "success" : outcome.error, "verdict").to.equal(expected);
              expect(stable(after), "a refused verdict changed the commitment").to.equal(stable(before));
              continue;
            }
            expect(outcome.ok ? "success" : outcome.error, "verdict").to.equal("success");
            model.voted.add(v);
            if (ok) model.accept += 1n;
            else model.reject += 1n;
            // Bootstrap: total weight 3; accepted above 6667 bps of it, rejected from 3333 bps.
            if (model.accept * BPS > POC_PARAMETERS.acceptShareBps * 3n) model.status = Status.Accepted;
            else if (model.reject * BPS >= (BPS - POC_PARAMETERS.acceptShareBps) * 3n) model.status = Status.Rejected;
            expect([after.status, after.acceptWeight, after.rejectWeight], "commitment after a verdict").to.deep.equal([
              model.status,
              model.accept,
              model.reject,
            ]);
            if (after.status !== before.status) {
              expect(EDGES.has(`${before.status}>${after.status}`), `edge ${before.status} → ${after.status}`).to.equal(true);
            }
          }
        }
        if (model.status === Status.Accepted) accepted.push(e.count);
      }

      // Power, once final.
      await goToPhase(connection, sys, EPOCH, EpochPhase.Work, { advance: false });
      const ref = reference(accepted);
      const [level, cap, acceptedNodes, rawTotal] = await poc.powerCap(EPOCH);
      const total = await poc.totalPower(EPOCH);
      expect([level, cap, acceptedNodes, rawTotal], "powerCap").to.deep.equal([
        ref.level,
        ref.cap,
        BigInt(accepted.length),
        accepted.reduce((a, b) => a + b, 0n),
      ]);
      expect(total, "total power").to.equal(ref.total);

      let sum = 0n;
      let cappedNodes = 0;
      for (const [i, e] of entries.entries()) {
        const node = nodes[i].address;
        const power = await poc.powerOf(EPOCH, node);
        const raw = await poc.rawPowerOf(EPOCH, node);
        const isAccepted = (await commitment(node)).status === Status.Accepted;
        expect(raw, "raw power").to.equal(isAccepted ? e.count : 0n);
        expect(power, "power = min(raw, level)").to.equal(raw < level ? raw : level);
        expect(power * BPS, "share within the effective cap").to.be.lte(ref.cap * total);
        if (accepted.length >= 4) {
          expect(power * BPS, "share within maxShareBps").to.be.lte(POC_PARAMETERS.maxShareBps * total);
        }
        if (power < raw) cappedNodes++;
        sum += power;
      }
      for (const node of nodes.slice(entries.length)) expect(await poc.powerOf(EPOCH, node.address)).to.equal(0n);
      expect(sum, "powers sum to the total").to.equal(total);
      if (cappedNodes > 0) {
        // Maximal: one unit more of level would put a capped node above the cap.
        const next = level + 1n;
        expect(next * BPS, "level is the largest under the cap").to.be.gt(ref.cap * sumMin(accepted, next));
        capped++;
        maxCappedNodes = Math.max(maxCappedNodes, cappedNodes);
      }
    });

    const details = await checkProperty("caps every node's share", FILE, property, NUM_RUNS);
    console.log(
      `      ${details.numRuns} distributions (seed ${details.seed}); ${capped} with capped nodes (up to ${maxCappedNodes} capped)\n${stats}`,
    );
    if (replaying()) return;
    expect(capped, "no distribution had a capped node").to.be.greaterThan(0);
    expect(stats.total("verdict (replayed)"), "no verdict was replayed").to.be.greaterThan(0);
  });
});
