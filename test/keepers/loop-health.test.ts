/**
 * LoopHealth (keepers/shared/loop-health.ts): a periodic keeper loop whose passes fail waits longer and says
 * so once, not every pass; it says once when it works again.
 */
import { expect } from "chai";
import { createLogger } from "../../keepers/shared/log.js";
import { LoopHealth } from "../../keepers/shared/loop-health.js";

interface Line {
  level: string;
  msg: string;
  err?: string;
  failedPasses?: number;
  retryInMs?: number;
  failingForMs?: number;
  downMs?: number;
  step?: string;
}

function setup(options: { intervalMs: number; maxDelayMs?: number; remindMs?: number }) {
  const lines: Line[] = [];
  let now = 1_000_000;
  const logger = createLogger({ component: "test", level: "debug", destination: { write: (line: string) => void lines.push(JSON.parse(line) as Line) } });
  const health = new LoopHealth({ what: "reconcile pass", logger, now: () => now, ...options });
  return { lines, health, advance: (ms: number) => (now += ms) };
}

describe("LoopHealth: periodic loops while their passes fail", () => {
  it("waits the interval while passes succeed, logging nothing", () => {
    const { lines, health } = setup({ intervalMs: 2_000 });
    for (let i = 0; i < 5; i++) expect(health.succeeded()).to.equal(2_000);
    expect(health.delayMs).to.equal(2_000);
    expect(health.failedPasses).to.equal(0);
    expect(lines).to.deep.equal([]);
  });

  it("doubles the wait after each failure up to the cap, then goes back to the interval after a success", () => {
    const { health } = setup({ intervalMs: 500, maxDelayMs: 5_000 });
    const delays = Array.from({ length: 7 }, () => health.failed(new Error("connect ECONNREFUSED 127.0.0.1:8545")));
    expect(delays).to.deep.equal([1_000, 2_000, 4_000, 5_000, 5_000, 5_000, 5_000]);
    expect(health.failedPasses).to.equal(7);
    expect(health.succeeded()).to.equal(500);
    expect(health.failedPasses).to.equal(0);
    // Thousands of failures neither overflow nor pass the cap.
    for (let i = 0; i < 5_000; i++) health.failed("down");
    expect(health.delayMs).to.equal(5_000);
  });

  it("never waits less than the interval, whatever the cap", () => {
    const { health } = setup({ intervalMs: 60_000, maxDelayMs: 5_000 });
    expect(health.failed(new Error("x"))).to.equal(60_000);
    expect(health.failed(new Error("x"))).to.equal(60_000);
  });

  it("logs the first failure and a changed error, stays quiet on repeats, reminds after remindMs, and says once when it works again", () => {
    const { lines, health, advance } = setup({ intervalMs: 1_000, remindMs: 60_000 });
    health.failed(new Error("connect ECONNREFUSED 127.0.0.1:8545"), { step: "dispatch" });
    for (let i = 0; i < 10; i++) {
      advance(1_000);
      health.failed(new Error("connect ECONNREFUSED 127.0.0.1:8545"));
    }
    expect(lines.map((l) => [l.level, l.msg])).to.deep.equal([["warn", "reconcile pass failed; retrying with backoff"]]);
    expect(lines[0]).to.deep.include({ err: "connect ECONNREFUSED 127.0.0.1:8545", failedPasses: 1, retryInMs: 2_000, step: "dispatch" });

    advance(1_000);
    health.failed(new Error("request timeout"));
    expect(lines.slice(1).map((l) => [l.msg, l.err, l.failedPasses])).to.deep.equal([["reconcile pass failed; retrying with backoff", "request timeout", 12]]);

    advance(59_999);
    health.failed(new Error("request timeout"));
    expect(lines).to.have.length(2);
    advance(1);
    health.failed(new Error("request timeout"));
    expect(lines.slice(2).map((l) => [l.msg, l.failedPasses, l.failingForMs])).to.deep.equal([["reconcile pass still failing", 14, 71_000]]);

    advance(5_000);
    health.succeeded();
    health.succeeded();
    expect(lines.slice(3).map((l) => [l.level, l.msg, l.failedPasses, l.downMs])).to.deep.equal([["info", "reconcile pass works again", 14, 76_000]]);

    // A new outage is a new first failure: logged at once.
    health.failed(new Error("request timeout"));
    expect(lines.slice(4).map((l) => [l.msg, l.failedPasses])).to.deep.equal([["reconcile pass failed; retrying with backoff", 1]]);
  });

  it("refuses an interval that is not positive", () => {
    const logger = createLogger({ component: "test", level: "silent" });
    expect(() => new LoopHealth({ what: "x", logger, intervalMs: 0 })).to.throw("x: intervalMs must be positive, got 0");
    expect(() => new LoopHealth({ what: "x", logger, intervalMs: Number.NaN })).to.throw("intervalMs must be positive");
  });
});
