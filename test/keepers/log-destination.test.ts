/**
 * The keepers' log destination: a turn's lines are written together at the end of the turn, and nothing
 * waiting is lost when the process exits (process.exit, an uncaught exception, logger.fatal).
 */
import { execFile } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { expect } from "chai";
import { TurnBufferedDestination, createLogger } from "../../keepers/shared/log.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("log destination (a turn's lines in one write)", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "cn-log-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("writes the lines of a turn at its end, in order, and at once beyond 64 KiB", async () => {
    const file = path.join(dir, "sub", "keeper.log");
    const destination = TurnBufferedDestination.toFile(file);
    const logger = createLogger({ component: "test", level: "info", destination });
    for (let i = 0; i < 3; i++) logger.info({ subsystem: "Http", i }, "line");
    expect(readFileSync(file, "utf8"), "nothing written during the turn").to.equal("");
    await nextTurn();
    const lines = readFileSync(file, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l) as { i: number; msg: string; component: string });
    expect(lines.map((l) => l.i)).to.deep.equal([0, 1, 2]);
    expect(lines.every((l) => l.msg === "line" && l.component === "test")).to.equal(true);

    // Over 64 KiB in one turn: written without waiting for the turn's end.
    const big = "x".repeat(1000);
    for (let i = 0; i < 70; i++) logger.info({ big, i }, "big");
    const during = readFileSync(file, "utf8").trimEnd().split("\n");
    expect(during.length, "the first 64 KiB are out before the turn ends").to.be.greaterThan(3 + 50);
    expect(during.length).to.be.lessThan(3 + 70);
    await nextTurn();
    expect(readFileSync(file, "utf8").trimEnd().split("\n")).to.have.length(3 + 70);

    // flush (pino's logger.flush) writes at once; after close nothing more is taken.
    logger.info("flushed");
    await new Promise<void>((resolve, reject) => logger.flush((error) => (error ? reject(error) : resolve())));
    expect(readFileSync(file, "utf8")).to.contain('"msg":"flushed"');
    destination.close();
    expect(destination.write('{"late":true}\n')).to.equal(false);
    await nextTurn();
    expect(readFileSync(file, "utf8")).to.not.contain("late");
    destination.close(); // twice: no error
  });

  it("writes what is waiting when the process exits: process.exit, an uncaught exception, logger.fatal, a failpoint's kill", async () => {
    const script = path.join(dir, "child.ts");
    writeFileSync(
      script,
      `import { createLogger } from ${JSON.stringify(path.join(ROOT, "keepers", "shared", "log.ts"))};
import { failpoint } from ${JSON.stringify(path.join(ROOT, "keepers", "shared", "failpoints.ts"))};
const logger = createLogger({ component: "child", level: "info" });
for (let i = 0; i < 5; i++) logger.info({ i }, "before the end");
const how = process.argv[2];
if (how === "exit") process.exit(3);
if (how === "throw") throw new Error("boom");
if (how === "fatal") { logger.fatal("fatal"); process.kill(process.pid, "SIGKILL"); }
if (how === "failpoint") failpoint("tx.afterSend");
if (how === "big-then-exit") { for (let i = 0; i < 70; i++) logger.info({ big: "x".repeat(1000) }, "big"); logger.info("last of the turn"); process.exit(4); }
if (how === "log-at-exit") { process.on("exit", () => logger.info("logged while exiting")); process.exit(5); }
`,
    );
    for (const [how, code] of [
      ["exit", 3],
      ["throw", 1],
      ["fatal", null],
      ["failpoint", null],
      ["big-then-exit", 4],
      ["log-at-exit", 5],
    ] as const) {
      const env = { ...process.env, CN_FAILPOINTS: how === "failpoint" ? "tx.afterSend" : "" };
      const result = await promisify(execFile)(process.execPath, ["--import", "tsx", script, how], { cwd: ROOT, env }).then(
        () => ({ stdout: "", code: 0 }),
        (error: { stdout: string; code: number | null; signal: string | null }) => ({ stdout: error.stdout, code: error.code, signal: error.signal }),
      );
      expect(result.code, how).to.equal(code);
      const lines = result.stdout.trimEnd().split("\n").map((l) => JSON.parse(l) as { i?: number; msg: string });
      expect(lines.filter((l) => l.msg === "before the end").map((l) => l.i), how).to.deep.equal([0, 1, 2, 3, 4]);
      if (how === "fatal") expect(lines.at(-1)?.msg, "fatal writes at once, even if the process is killed next").to.equal("fatal");
      if (how === "big-then-exit") expect(lines.at(-1)?.msg, "a line after a 64 KiB write of the same turn").to.equal("last of the turn");
      if (how === "log-at-exit") expect(lines.at(-1)?.msg, "a line logged by an exit listener").to.equal("logged while exiting");
    }
  });

  it("counts the lines it cannot write, never throws, and says so before the next lines it can write", async () => {
    const file = path.join(dir, "lost.log");
    const fd = openSync(file, "a");
    const destination = new TurnBufferedDestination(fd);
    const logger = createLogger({ component: "test", level: "info", destination });
    logger.info("written");
    destination.flushSync();
    closeSync(fd); // the descriptor fails from now on (EBADF), as a vanished disk or terminal would
    logger.info("lost 1");
    logger.info("lost 2");
    expect(() => destination.flushSync()).to.not.throw();
    expect(destination.droppedLines).to.equal(2);
    logger.info("lost 3");
    await nextTurn(); // the end-of-turn write fails too, and nothing is thrown at the event loop
    expect(destination.droppedLines).to.equal(3);
    // The same descriptor number works again (the lowest free one is reused): the next write says what was lost first.
    const again = openSync(file, "a");
    expect(again, "the descriptor number is reused").to.equal(fd);
    try {
      logger.info("written again");
      await nextTurn();
      const lines = readFileSync(file, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l) as { msg: string; dropped?: number; reason?: string });
      expect(lines.map((l) => l.msg)).to.deep.equal(["written", "log lines dropped", "written again"]);
      expect(lines[1].dropped).to.equal(3);
      expect(lines[1].reason).to.match(/write failed \(EBADF\)/);
      expect(destination.droppedLines).to.equal(0);
    } finally {
      closeSync(again);
    }
  });
});
