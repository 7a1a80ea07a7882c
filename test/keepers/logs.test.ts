/**
 * The log examiner (`computenet logs`, keepers/cli/logs.ts) on the logs of a real devnet run
 * (test/keepers/fixtures/logs/devnet: `computenet devnet` for about three minutes with the keepers of this
 * branch, trimmed to epoch 1 and the start of epoch 2, discovery's repeated read lines thinned, 25 lines of
 * the Hardhat node's text log kept, with its colour escapes, but not its account list), and on hostile files written here: the merged timeline, each filter,
 * the epoch summary, garbage and oversized lines, and the real CLI as a child process.
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { expect } from "chai";
import {
  type LogEntry,
  type LogQuery,
  LogQueryError,
  type ReadOptions,
  describeStats,
  findLogFiles,
  formatEntry,
  readTimeline,
  renderSummary,
  runLogs,
  summarizeEpoch,
} from "../../keepers/cli/logs.js";

const ROOT = path.resolve(import.meta.dirname, "..", "..");
const FIXTURE = path.join(ROOT, "test", "keepers", "fixtures", "logs", "devnet");
const CLI = path.join(ROOT, "keepers", "cli", "computenet.ts");

const MINER_1 = "0xBcd4042DE499D14e55001CcbB24a551F3b954096";
const MINER_2 = "0x71bE63f3384f5fb98995898A86B02Fb2426c5788";
const MINER_3 = "0xFABB0ac9d68B0B445fB7357272Ff202C5651694a";

async function collect(folder: string, query: LogQuery = {}, options: ReadOptions = {}) {
  const entries: LogEntry[] = [];
  const timeline = await readTimeline(folder, query, (entry) => void entries.push(entry), options);
  return { entries, timeline };
}

/** The fixture's JSON entries, read independently of the module (every line starting with "{"). */
async function fixtureEntries(): Promise<Array<{ file: string; fields: Record<string, unknown> }>> {
  const out: Array<{ file: string; fields: Record<string, unknown> }> = [];
  for (const file of (await readdir(FIXTURE)).sort()) {
    for (const line of (await readFile(path.join(FIXTURE, file), "utf8")).split("\n")) {
      if (line.startsWith("{")) out.push({ file, fields: JSON.parse(line) as Record<string, unknown> });
    }
  }
  return out;
}

/** Whether a string field (or one inside an object or array field) is `address`. */
function names(fields: Record<string, unknown>, address: string): boolean {
  const is = (v: unknown) => typeof v === "string" && v.toLowerCase() === address.toLowerCase();
  return Object.values(fields).some((v) => is(v) || (v !== null && typeof v === "object" && Object.values(v as object).some(is)));
}

async function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("computenet logs (keepers/cli/logs.ts)", function () {
  this.timeout(60_000);

  describe("on a devnet's logs", () => {
    it("merges every keeper's log into one timeline in time order and reports what is not JSON", async () => {
      const { entries, timeline } = await collect(FIXTURE);
      const expected = await fixtureEntries();
      expect(entries).to.have.length(expected.length);
      expect(timeline.stats.entries).to.equal(expected.length);
      for (let i = 1; i < entries.length; i++) expect(entries[i].time).to.be.at.least(entries[i - 1].time);
      expect(new Set(entries.map((e) => e.source))).to.deep.equal(new Set(["discovery", "master", "miner-1", "miner-2", "miner-3", "validator-1", "validator-2"]));
      // The keepers' own addresses, from the logger's base `node`, name each file (discovery has none).
      expect(timeline.names.get(MINER_1.toLowerCase())).to.equal("miner-1");
      expect(timeline.names.get(MINER_3.toLowerCase())).to.equal("miner-3");
      expect([...timeline.names.values()]).to.not.include("discovery");
      // One "… listening on" line per keeper log is not JSON; the Hardhat node's log has no entry at all.
      const byFile = Object.fromEntries(timeline.stats.files.map((f) => [path.basename(f.file), f]));
      expect(byFile["master.log"].nonJson).to.equal(1);
      expect(byFile["master.log"].examples[0].preview).to.equal("master listening on http://127.0.0.1:8720");
      expect(byFile["hardhat-node.log"]).to.include({ entries: 0, lines: 25 });
      const report = describeStats(timeline.stats);
      expect(report[0]).to.equal(`${expected.length} of ${expected.length} entries from 7 log files; 7 lines in them were not JSON; 1 file without any JSON entry skipped`);
      expect(report.some((l) => /hardhat-node\.log: no JSON entries in 25 lines/.test(l))).to.equal(true);
    });

    it("--node: entries naming the address in any field, case-insensitive, by prefix or by log file name", async () => {
      const expected = (await fixtureEntries()).filter((e) => names(e.fields, MINER_3));
      const { entries } = await collect(FIXTURE, { node: MINER_3.toLowerCase() });
      expect(entries).to.have.length(expected.length);
      // Not only its own log: the master, the validators and discovery speak of it too.
      expect(new Set(entries.map((e) => e.source))).to.include.members(["miner-3", "master", "validator-1", "discovery"]);
      expect((await collect(FIXTURE, { node: "0xFABB0AC9" })).entries).to.have.length(expected.length);
      expect((await collect(FIXTURE, { node: "miner-3" })).entries).to.have.length(expected.length);
      await collect(FIXTURE, { node: "miner-9" }).then(
        () => expect.fail("an unknown name must be refused"),
        (error: unknown) => expect(error).to.be.instanceOf(LogQueryError),
      );
    });

    it("--subsystem, --level and --component", async () => {
      const claims = (await collect(FIXTURE, { subsystem: ["claims"] })).entries;
      expect(claims.map((e) => `${e.source}: ${e.msg.split(":")[0]}`)).to.deep.equal([
        "miner-2: claim",
        "miner-2: claimed epoch 1",
        "miner-3: claim",
        "miner-3: claimed epoch 1",
        "miner-1: claim",
        "miner-1: claimed epoch 1",
      ]);
      const warnings = (await collect(FIXTURE, { level: "warn" })).entries;
      expect(warnings).to.have.length((await fixtureEntries()).filter((e) => e.fields.level === "warn" || e.fields.level === "error").length);
      expect(warnings.every((e) => e.levelValue >= 40)).to.equal(true);
      const some = (await collect(FIXTURE, { component: ["master", "miner-2"] })).entries;
      expect(new Set(some.map((e) => e.source))).to.deep.equal(new Set(["master", "miner-2"]));
      const miners = (await collect(FIXTURE, { component: ["miner"] })).entries;
      expect(new Set(miners.map((e) => e.source))).to.deep.equal(new Set(["miner-1", "miner-2", "miner-3"]));
    });

    it("--task: the master's task id and the on-chain task id are linked, across keepers", async () => {
      const byBuyerId = (await collect(FIXTURE, { task: "8130c366ff6026a9" })).entries;
      const byLedgerId = (await collect(FIXTURE, { task: "2" })).entries;
      expect(byBuyerId.map((e) => `${e.file}:${e.lineNo}`)).to.deep.equal(byLedgerId.map((e) => `${e.file}:${e.lineNo}`));
      expect(new Set(byBuyerId.map((e) => e.source))).to.deep.equal(new Set(["master", "miner-1", "miner-2", "miner-3"]));
      const msgs = byBuyerId.map((e) => e.msg);
      expect(msgs).to.include("the chain drew the task's node by power (keccak of beacon, run, task id and attempt over the enrolled weights)");
      expect(msgs).to.include("re-executing the task in a throwaway container"); // a validator's copy, taskId val-2-…
      expect(msgs).to.include("task reproduced: validation ok");
      expect(byBuyerId.filter((e) => e.msg === "a validator reproduced the result")).to.have.length(2);
    });

    it("--epoch: entries tagged with the epoch or about one of its tasks", async () => {
      const one = (await collect(FIXTURE, { epoch: "1" })).entries;
      const two = (await collect(FIXTURE, { epoch: "2" })).entries;
      expect(one.length).to.be.greaterThan(100);
      expect(one.filter((e) => e.fields.epoch !== undefined).every((e) => e.fields.epoch === "1")).to.equal(true);
      // Lines without an epoch field, placed by their task: a validator's re-execution (ledgerTaskId only).
      expect(one.some((e) => e.fields.epoch === undefined && e.msg === "re-execution finished")).to.equal(true);
      // …and a line naming only the validator's copy of the task, linked to it by the line naming both.
      expect(one.some((e) => e.msg === "task started" && String(e.fields.taskId).startsWith("val-"))).to.equal(true);
      expect(two.every((e) => e.fields.epoch === "2")).to.equal(true);
      expect(two.filter((e) => e.msg.startsWith("PoC done")).map((e) => e.source).sort()).to.deep.equal(["miner-1", "miner-2", "miner-3"]);
      const none = (await collect(FIXTURE, { epoch: "7" })).entries;
      expect(none).to.have.length(0);
    });

    it("--since / --until: ISO times or UTC times of day on the first entry's day", async () => {
      const window = (await collect(FIXTURE, { since: "11:04:40", until: "11:04:45.5" })).entries;
      expect(window.length).to.be.greaterThan(10);
      const from = Date.parse("2026-11-22T11:04:40Z");
      const to = Date.parse("2026-11-22T11:04:45.500Z");
      expect(window.every((e) => e.time >= from && e.time <= to)).to.equal(true);
      const iso = (await collect(FIXTURE, { since: "2026-11-22T11:04:40Z", until: "2026-11-22T11:04:45.500Z" })).entries;
      expect(iso.map((e) => e.raw)).to.deep.equal(window.map((e) => e.raw));
      await collect(FIXTURE, { since: "yesterday-ish" }).then(
        () => expect.fail("a bad time must be refused"),
        (error: unknown) => expect((error as Error).message).to.match(/^--since: must be an ISO time/),
      );
    });

    it("prints one readable line per entry: time, source, subsystem, level, message, key fields", async () => {
      const { entries, timeline } = await collect(FIXTURE, { task: "1", subsystem: ["Tasks"], component: ["master"] });
      const drawn = entries.find((e) => e.msg.startsWith("the chain drew"))!;
      const line = formatEntry(drawn, { names: timeline.names });
      expect(line).to.match(/^11:04:\d\d\.\d{3} master +Tasks +info  the chain drew the task's node by power/);
      expect(line).to.contain("epoch=1 taskId=9bb877d652db0986 ledgerTaskId=1 assignee=0xBcd4…4096(miner-1)");
      expect(line).to.not.contain("node=0x15d3"); // the master's own address is the source, not a field
      const wide = formatEntry(drawn, { wide: true });
      expect(wide).to.contain(`assignee=${MINER_1}`);
    });

    it("summarises an epoch: PoC and power per node, tasks drawn, validations, disputes, claims", async () => {
      const { summary, timeline } = await summarizeEpoch(FIXTURE, "1");
      expect(summary.advancedBy).to.deep.equal([MINER_3]);
      const node = (address: string) => summary.nodes.find((n) => n.node === address)!;
      expect(summary.nodes.map((n) => n.name)).to.deep.equal(["miner-1", "miner-2", "miner-3"]);
      expect(node(MINER_1)).to.deep.include({ pocOutcome: "accepted", enrolled: true, tasksAssigned: 2, tasksCompleted: 2, validations: 1, duties: 1 });
      expect(node(MINER_1).poc).to.deep.equal({ tried: 16720, valid: 1516, count: 1516, noncesPerSec: 1697, committed: 1516 });
      expect(node(MINER_1).power).to.deep.equal({ power: "950", raw: "1516", totalPower: "1900", sharePercent: 50, capped: true });
      expect(node(MINER_2).power).to.deep.include({ power: "613", capped: false });
      expect(node(MINER_1).verdicts.map((v) => v.accepted)).to.deep.equal([true, true]);
      expect(node(MINER_3)).to.deep.include({ tasksAssigned: 1, duties: 1, notObliged: 1 });
      expect(summary.tasks.map((t) => [t.ledgerTaskId, t.taskId, t.assignee, t.state, t.pay])).to.deep.equal([
        ["1", "9bb877d652db0986", MINER_1, "completed", "1000000000000000000"],
        ["2", "8130c366ff6026a9", MINER_3, "completed", "1000000000000000000"],
        ["3", "d61acf60862b3713", MINER_1, "completed", "1000000000000000000"],
      ]);
      expect(summary.tasks[1].validations).to.deep.equal([
        { validator: MINER_2, ok: true, weight: "613" },
        { validator: MINER_1, ok: true, weight: "950" },
      ]);
      expect(summary.tasks.some((t) => t.dispute)).to.equal(false);
      expect(node(MINER_1).claim).to.deep.equal({ work: "2000000000000000000", reward: "5000000000000000000000", forfeited: false, missedTaskId: "0", sampled: 3 });
      expect(node(MINER_2).claim?.work).to.equal("0");
      expect(summary.emission).to.deep.equal({ emission: "10000000000000000000000", paid: "9999999999999999999999", returned: "1" });
      expect(summary).to.include({ warnings: 0, errors: 0 });

      const text = renderSummary(summary, timeline.names);
      expect(text).to.contain("miner-1 (0xBcd4…4096): PoC 1516 valid of 16720 tried (1697/s); committed 1516; verdicts 2 accept / 0 reject; PoC accepted on chain; power 950 of 1900 (50%), capped from 1516; enrolled");
      expect(text).to.contain("tasks: 3 drawn, 3 completed, 0 expired, 0 invalidated, 0 still assigned");
      expect(text).to.contain("#2 (8130c366ff6026a9) → miner-3 (0xFABB…694a); pay 1 CNET; p 0.177368; completed; validations: miner-2 (0x71bE…5788) ok (613), miner-1 (0xBcd4…4096) ok (950)");
      expect(text).to.contain("miner-2 (0x71bE…5788): work 0 CNET, reward 3,226.3157 CNET (duty check on 3 sampled tasks)");
      expect(text).to.contain("emission 10,000 CNET: 9,999.9999 CNET paid, 1 wei returned to the vault");

      const two = (await summarizeEpoch(FIXTURE, "2")).summary;
      expect(two.tasks).to.have.length(0);
      expect(two.nodes.every((n) => n.poc?.committed !== undefined && n.claim === undefined)).to.equal(true);
      expect(two.warnings).to.equal(1);
    });
  });

  describe("on hostile files", () => {
    let dir: string;
    beforeEach(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), "cn-logs-"));
    });
    afterEach(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    const line = (ts: string, msg: string, extra: Record<string, unknown> = {}) =>
      JSON.stringify({ level: "info", ts, component: "miner", subsystem: "PoC", ...extra, msg });

    it("counts garbage, broken and non-object lines without stopping, and escapes control characters", async () => {
      const deep = `{"a":${"[".repeat(20_000)}${"]".repeat(20_000)}}`;
      const content = [
        line("2026-01-01T00:00:01Z", "first"),
        "plain text",
        '{"broken": ',
        "[1, 2, 3]",
        "42",
        "null",
        "\u0000\u0001\u00ff binary \u001b[2J",
        "",
        '{"__proto__": {"polluted": true}, "level": "warn", "ts": "2026-01-01T00:00:02Z", "msg": "proto"}',
        line("2026-01-01T00:00:03Z", "red \u001b[31malert\u001b[0m\r\nnext", { note: "\u202eevil" }),
        deep,
        `${line("2026-01-01T00:00:04Z", "crlf")}\r`,
        '{"ts": 12, "level": 50, "msg": 7, "component": ["x"], "subsystem": {"a": 1}}',
      ].join("\n");
      await writeFile(path.join(dir, "miner-1.log"), content);
      const { entries, timeline } = await collect(dir);
      // Sorted by time: the entry with a numeric ts of 12 ms (1970) first, the untimed nested one after "red".
      expect(entries.map((e) => e.msg.slice(0, 5))).to.deep.equal(["7", "first", "proto", "red \u001b", "", "crlf"]);
      const stats = timeline.stats.files[0];
      expect(stats.nonJson).to.equal(6);
      expect(stats.examples.map((e) => e.lineNo)).to.deep.equal([2, 3, 4]);
      expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
      const red = entries.find((e) => e.msg.startsWith("red"))!;
      const text = formatEntry(red);
      expect(text).to.contain("red \\u001b[31malert\\u001b[0m\\r\\nnext");
      expect(text).to.contain("note=\\u202eevil");
      // The deeply nested one is an entry; its field is shown shortened, never a crash.
      const nested = entries.find((e) => e.fields.a !== undefined)!;
      expect(nested.timed).to.equal(false);
      expect(formatEntry(nested)).to.match(/ a=\[…\]$/);
      // A number where a string belongs: still shown (as it is, or left out), never thrown on.
      const odd = entries.find((e) => e.levelValue === 50)!;
      expect(odd.component).to.equal("");
      expect(() => formatEntry(odd)).to.not.throw();
      const report = describeStats(timeline.stats).join("\n");
      expect(report).to.contain("6 non-JSON lines");
      expect(report).to.not.match(/[\u0000-\u0008\u001b]/);
    });

    it("skips lines longer than the limit (counted) and reads on; a huge file is streamed", async () => {
      await writeFile(path.join(dir, "a.log"), [line("2026-01-01T00:00:01Z", "before"), "x".repeat(5_000), line("2026-01-01T00:00:02Z", "after")].join("\n"));
      const small = await collect(dir, {}, { maxLineBytes: 1_000 });
      expect(small.entries.map((e) => e.msg)).to.deep.equal(["before", "after"]);
      expect(small.timeline.stats.files[0]).to.include({ oversized: 1, nonJson: 1 });
      // 24 MiB without a newline, then 20,000 lines: the default limit (1 MiB) drops the first line only.
      const huge = path.join(dir, "b.jsonl");
      await writeFile(huge, "y".repeat(24 * 1024 * 1024));
      const lines = Array.from({ length: 20_000 }, (_, i) => line(new Date(Date.UTC(2026, 0, 1, 0, 1, 0, i)).toISOString(), `n${i}`));
      await writeFile(huge, `${"y".repeat(24 * 1024 * 1024)}\n${lines.join("\n")}\n`);
      const heapBefore = process.memoryUsage().heapUsed;
      let count = 0;
      let last = "";
      const timeline = await readTimeline(dir, { component: ["b"] }, (e) => {
        count++;
        last = e.msg;
      });
      expect(count).to.equal(20_000);
      expect(last).to.equal("n19999");
      expect(timeline.stats.files.find((f) => f.file === huge)).to.include({ oversized: 1, entries: 20_000 });
      expect(process.memoryUsage().heapUsed - heapBefore).to.be.below(64 * 1024 * 1024);
    });

    it("orders by time across files, stable for equal times (file, then line), with untimed entries kept in place", async () => {
      const t = (s: number) => `2026-01-01T00:00:0${s}Z`;
      await writeFile(path.join(dir, "a.log"), `\uFEFF${[line(t(1), "a1"), line(t(3), "a3"), JSON.stringify({ msg: "a-untimed" }), line(t(3), "a3b")].join("\n")}`);
      await writeFile(path.join(dir, "b.log"), [line(t(3), "b3"), line(t(2), "b2-late"), line(t(1), "b1")].join("\n"));
      await mkdir(path.join(dir, "sub", "deeper"), { recursive: true });
      await writeFile(path.join(dir, "sub", "deeper", "c.jsonl"), line(t(3), "c3"));
      await writeFile(path.join(dir, "sub", "notes.txt"), line(t(0), "not a log file"));
      await symlink(dir, path.join(dir, "sub", "loop"));
      expect((await findLogFiles(dir)).map((f) => path.relative(dir, f))).to.deep.equal(["a.log", "b.log", path.join("sub", "deeper", "c.jsonl")]);
      const { entries } = await collect(dir);
      expect(entries.map((e) => e.msg)).to.deep.equal(["a1", "b1", "b2-late", "a3", "a-untimed", "a3b", "b3", "c3"]);
      expect(entries.find((e) => e.msg === "a-untimed")!.timed).to.equal(false);
      expect(formatEntry(entries.find((e) => e.msg === "a-untimed")!)).to.match(/^~0:00:03\.000 /);
    });

    it("summarises an epoch with a dispute, a vote, an invalidated task and a forfeited claim (lines as the keepers write them)", async () => {
      const [M, A, B, C, D] = ["0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65", MINER_1, MINER_2, MINER_3, "0x90F79bf6EB2c4f870365E785982E1f101E93b906"];
      const at = (s: number) => `2026-01-01T00:00:${String(s).padStart(2, "0")}.000Z`;
      const entry = (component: string, node: string, level: string, s: number, subsystem: string, fields: Record<string, unknown>, msg: string) =>
        JSON.stringify({ level, ts: at(s), component, node, subsystem, ...fields, msg });
      const task = { taskId: "b0b0b0b0b0b0b0b0", ledgerTaskId: "5" };
      const SEAL = `0x${"a1".repeat(32)}`;
      await writeFile(
        path.join(dir, "master.log"),
        [
          entry("master", M, "info", 1, "Tasks", { ...task, epoch: "3", assignee: A, draws: 1, units: "1", pay: "2000000000000000000", drawProbability: 0.5 }, "the chain drew the task's node by power"),
          entry("master", M, "info", 2, "Tasks", { ...task, epoch: "3", assignee: A, resultHash: `0x${"1".repeat(64)}` }, "the assignee completed the task on chain with its result hash"),
          entry("master", M, "warn", 3, "Tasks", { ...task, epoch: "3", validator: B, ok: false, weight: "5" }, "a validator did not reproduce the result"),
          entry("master", M, "warn", 3, "Disputes", { ...task, epoch: "3", accuser: B, seal: SEAL, weight: "5" }, "dispute opened on the task's result"),
          entry("master", M, "info", 4, "Disputes", { ...task, epoch: "3", voter: C, seal: SEAL, invalid: true, weight: "7", tally: "12", invalidWeight: "12", validWeight: "0" }, "dispute vote against the executor's seal"),
          entry("master", M, "info", 9, "Disputes", { ...task, epoch: "3", outcome: "Invalidated", invalidated: true, seal: SEAL, invalidWeight: "12", validWeight: "0", slashed: "5000000000000000000", reward: "2500000000000000000" }, "dispute resolved: another seal won a majority, the result is invalid; the executor loses the pay and is slashed"),
        ].join("\n"),
      );
      await writeFile(
        path.join(dir, "miner-c.log"),
        entry("miner", C, "info", 4, "TaskValidation", { taskId: "5", epoch: "3", executor: A, executorSeal: "0x1", seal: SEAL, invalid: true, weight: "7" }, "voting against the executor's seal with power 7"),
      );
      await writeFile(
        path.join(dir, "miner-d.log"),
        [
          entry("miner", D, "info", 10, "Claims", { epoch: "3", power: "4", work: "0", reward: "0", forfeited: true, missedTaskId: "5", sampled: 2, tx: `0x${"2".repeat(64)}` }, "claimed epoch 3: work 0 paid, reward FORFEITED (missed validation duty on task 5)"),
        ].join("\n"),
      );
      await writeFile(path.join(dir, "miner-a.log"), entry("miner", A, "info", 11, "Claims", { epoch: "3" }, "nothing to claim for this epoch (no power, no work)"));
      const { summary, timeline } = await summarizeEpoch(dir, "3");
      expect(summary.tasks).to.have.length(1);
      expect(summary.tasks[0]).to.deep.include({ ledgerTaskId: "5", taskId: "b0b0b0b0b0b0b0b0", assignee: A, state: "invalidated" });
      expect(summary.tasks[0].validations).to.deep.equal([{ validator: B, ok: false, weight: "5" }]);
      expect(summary.tasks[0].dispute).to.deep.equal({
        accuser: B,
        votes: [{ voter: C, invalid: true, weight: "7", seal: SEAL }],
        resolved: { outcome: "Invalidated", invalidated: true, slashed: "5000000000000000000", reward: "2500000000000000000" },
      });
      const node = (address: string) => summary.nodes.find((n) => n.node === address)!;
      expect(node(C).votes).to.equal(1);
      expect(node(D).claim).to.deep.equal({ work: "0", reward: "0", forfeited: true, missedTaskId: "5", sampled: 2 });
      expect(node(A).noClaim).to.equal("nothing to claim for this epoch (no power, no work)");
      expect(summary).to.include({ warnings: 2, errors: 0 });
      const text = renderSummary(summary, timeline.names);
      expect(text).to.contain("tasks: 1 drawn, 0 completed, 0 expired, 1 invalidated, 0 still assigned");
      // B wrote no log here: its address in full; C and D have files named after them.
      expect(text).to.contain(`#5 (b0b0b0b0b0b0b0b0) → miner-a (0xBcd4…4096); pay 2 CNET; p 0.5; invalidated; validations: ${B} NOT ok (5)`);
      expect(text).to.contain(`DISPUTE by 0x71bE63f3384f5fb98995898A86B02Fb2426c5788, votes: miner-c (0xFABB…694a) invalid seal ${SEAL.slice(0, 10)} (7); resolved: INVALIDATED, slashed 5 CNET`);
      expect(text).to.contain("miner-d (0x90F7…b906): work 0 CNET, reward FORFEITED (missed validating task #5) (duty check on 2 sampled tasks)");
      expect(text).to.contain("disputes: 1");
    });

    it("summarises a dispute that ended Unresolved (every voter sealed its own result: nobody slashed)", async () => {
      const [M, A, B, C] = ["0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65", MINER_1, MINER_2, MINER_3];
      const entry = (s: number, subsystem: string, fields: Record<string, unknown>, msg: string) =>
        JSON.stringify({ level: "info", ts: `2026-01-01T00:00:0${s}.000Z`, component: "master", node: M, subsystem, ledgerTaskId: "6", taskId: "c0c0c0c0c0c0c0c0", epoch: "3", ...fields, msg });
      const [sealB, sealC] = [`0x${"b1".repeat(32)}`, `0x${"c1".repeat(32)}`];
      await writeFile(
        path.join(dir, "master.log"),
        [
          entry(1, "Tasks", { assignee: A, draws: 1, units: "1", pay: "2000000000000000000", drawProbability: 0.5 }, "the chain drew the task's node by power"),
          entry(2, "Disputes", { accuser: B, seal: sealB, weight: "5" }, "dispute opened on the task's result"),
          entry(3, "Disputes", { voter: C, seal: sealC, invalid: true, weight: "7", tally: "7", invalidWeight: "12", validWeight: "0" }, "dispute vote against the executor's seal"),
          entry(4, "Disputes", { outcome: "Unresolved", invalidated: false, seal: `0x${"0".repeat(64)}`, invalidWeight: "12", validWeight: "0", slashed: "0", reward: "0" }, "dispute ended without a majority"),
        ].join("\n"),
      );
      const { summary, timeline } = await summarizeEpoch(dir, "3");
      expect(summary.tasks[0].dispute!.resolved).to.deep.equal({ outcome: "Unresolved", invalidated: false, slashed: "0", reward: "0" });
      expect(summary.tasks[0].state).to.not.equal("invalidated");
      expect(renderSummary(summary, timeline.names)).to.contain("resolved: UNRESOLVED (no seal won a majority: nobody slashed, the executor is paid)");
    });

    it("runLogs: exit 1 without a folder or log files, 2 for a bad option; --json prints the lines as they were", async () => {
      const out = new PassThrough();
      const err = new PassThrough();
      let stdout = "";
      let stderr = "";
      out.on("data", (c) => (stdout += c));
      err.on("data", (c) => (stderr += c));
      expect(await runLogs(path.join(dir, "absent"), {}, out, err)).to.equal(1);
      expect(stderr).to.match(/no such file or folder/);
      expect(await runLogs(dir, {}, out, err)).to.equal(1);
      expect(stderr).to.match(/no \*\.log or \*\.jsonl file/);
      await writeFile(path.join(dir, "m.log"), `${line("2026-01-01T00:00:02Z", "two")}\n${line("2026-01-01T00:00:01Z", "one", { spaced: "a  b" })}\n`);
      expect(await runLogs(dir, { level: "loud" }, out, err)).to.equal(2);
      expect(stderr).to.match(/--level: must be one of trace, debug, info, warn, error, fatal/);
      stdout = "";
      expect(await runLogs(dir, { json: true }, out, err)).to.equal(0);
      expect(stdout.trim().split("\n").map((l) => (JSON.parse(l) as { msg: string }).msg)).to.deep.equal(["one", "two"]);
      expect(stdout).to.contain('"spaced":"a  b"');
    });
  });

  describe("the real CLI", () => {
    it("computenet logs <folder> --subsystem Claims, and summary --epoch 1 --json", async () => {
      const lines = await runCli(["logs", FIXTURE, "--subsystem", "Claims", "--node", "miner-1"]);
      expect(lines.code).to.equal(0);
      const out = lines.stdout.trim().split("\n");
      expect(out[0]).to.equal("— 2026-11-22 (UTC) —");
      expect(out.slice(1)).to.have.length(2);
      expect(out[1]).to.match(/^11:05:31\.\d{3} miner-1 +Claims +info  claim: confirmed  epoch=1 tx=0x[0-9a-f]{8}…/);
      expect(out[2]).to.match(/^11:05:31\.\d{3} miner-1 +Claims +info  claimed epoch 1: work 2000000000000000000 and reward 5000000000000000000000 paid to the provider  epoch=1 power=950 work=2000000000000000000/);
      expect(lines.stderr).to.match(/^logs: 2 of \d+ entries from 7 log files; 7 lines in them were not JSON; 1 file without any JSON entry skipped$/m);

      const summary = await runCli(["logs", FIXTURE, "summary", "--epoch", "1", "--json"]);
      expect(summary.code).to.equal(0);
      const parsed = JSON.parse(summary.stdout) as { epoch: string; tasks: unknown[]; nodes: Array<{ name: string; claim?: { reward: string } }>; names: Record<string, string> };
      expect(parsed.epoch).to.equal("1");
      expect(parsed.tasks).to.have.length(3);
      expect(parsed.nodes.map((n) => [n.name, n.claim?.reward])).to.deep.equal([
        ["miner-1", "5000000000000000000000"],
        ["miner-2", "3226315789473684210526"],
        ["miner-3", "1773684210526315789473"],
      ]);
      expect(parsed.names[MINER_2.toLowerCase()]).to.equal("miner-2");

      const bad = await runCli(["logs", FIXTURE, "summary"]);
      expect(bad.code).to.equal(2);
      expect(bad.stderr).to.contain("logs summary: --epoch <n> is required");
    });
  });
});
