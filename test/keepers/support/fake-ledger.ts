/**
 * TEST DOUBLES of the chain side of TaskLedger tasks, for unit tests of the keepers' logic that run
 * without the contracts (the devchain tests cover the real ones):
 *   - FakeLedger: an in-memory TaskLedger + ProofOfCompute subset with the interface's rules (enrollment
 *     by power, createTask only in the Work phase and with enrolled weight, completion by the assignee
 *     while Assigned, expiry after the epoch) whose "transactions" yield receipts with real TaskLedger logs
 *     (encoded with the interface from typechain), so the keepers decode them as they decode the chain's;
 *   - FakeTx: the TxSender's surface, executing calls against the FakeLedger, with reverts as the real
 *     sender throws them (TxRevertedError with the custom error's name) and a switch that loses the
 *     connection right after a tracked transaction was recorded (a crash between sending and the receipt);
 *   - FakeClock: the EpochClock's surface, phases set by the test.
 */
import { ZeroAddress, getAddress, keccak256, toUtf8Bytes } from "ethers";
import type { Chain } from "../../../keepers/shared/chain.js";
import type { EpochClock, PhaseName } from "../../../keepers/shared/epochs.js";
import { type SignedTx, TxRevertedError, type TxSender } from "../../../keepers/shared/tx.js";
import { ITaskLedger__factory } from "../../../typechain-types/index.js";

export const LEDGER_ADDRESS = "0x000000000000000000000000000000000000Ab1e";
const iface = ITaskLedger__factory.createInterface();

interface Call {
  fn: string;
  args: unknown[];
}

interface FakeTask {
  runId: bigint;
  epoch: bigint;
  status: number;
  assignee: string;
  units: bigint;
  pay: bigint;
  specHash: string;
  resultHash: string;
}

export interface FakeReceipt {
  hash: string;
  blockNumber: number;
  status: number;
  gasUsed: bigint;
  logs: Array<{ address: string; topics: string[]; data: string }>;
}

export class FakeClock {
  epoch = 1n;
  phases = new Map<bigint, PhaseName>([[1n, "PoC"]]);
  beacons = new Map<bigint, string>([[1n, keccak256(toUtf8Bytes("beacon 1"))]]);

  async current() {
    return { epoch: this.epoch, timeline: undefined, phase: this.phases.get(this.epoch) ?? "NotStarted" };
  }

  async phaseOf(epoch: bigint): Promise<PhaseName> {
    return this.phases.get(epoch) ?? "NotStarted";
  }

  async pocBeacon(epoch: bigint): Promise<string | undefined> {
    return this.beacons.get(epoch);
  }

  /** The current epoch moves to Dispute and `next` starts in `phase`. */
  endEpoch(phase: PhaseName = "Work"): void {
    this.phases.set(this.epoch, "Dispute");
    this.epoch += 1n;
    this.phases.set(this.epoch, phase);
    this.beacons.set(this.epoch, keccak256(toUtf8Bytes(`beacon ${this.epoch}`)));
  }

  asEpochClock(): EpochClock {
    return this as unknown as EpochClock;
  }
}

export class FakeLedger {
  readonly tasks = new Map<bigint, FakeTask>();
  /** power[epoch][node] */
  readonly power = new Map<bigint, Map<string, bigint>>();
  readonly powerFinal = new Set<bigint>();
  /** enrolled[runId:epoch] = nodes in order, with weights. */
  readonly enrolled = new Map<string, Array<{ node: string; weight: bigint }>>();
  /** The node the next draws land on, in order (default: the first enrolled). */
  readonly draws: string[] = [];
  pricePerUnit = 10n;
  /** The run's escrow available for new tasks. */
  escrow = 1_000_000n;
  masterOf = new Map<bigint, string>();
  block = 100;

  constructor(readonly clock: FakeClock) {}

  setPower(epoch: bigint, node: string, power: bigint): void {
    if (!this.power.has(epoch)) this.power.set(epoch, new Map());
    this.power.get(epoch)!.set(getAddress(node), power);
    this.powerFinal.add(epoch);
  }

  powerOf(epoch: bigint, node: string): bigint {
    return this.power.get(epoch)?.get(getAddress(node)) ?? 0n;
  }

  enrollmentOf(runId: bigint, epoch: bigint): [bigint, bigint] {
    const list = this.enrolled.get(`${runId}:${epoch}`) ?? [];
    return [BigInt(list.length), list.reduce((sum, e) => sum + e.weight, 0n)];
  }

  /** The TaskLedger + ProofOfCompute + EpochManager handles the keepers read, as in `chain.contracts`. */
  contracts(): Chain["contracts"] {
    const taskLedger = {
      interface: iface,
      enrollmentOf: async (runId: bigint, epoch: bigint) => this.enrollmentOf(runId, epoch),
      isEnrolled: async (runId: bigint, epoch: bigint, node: string) =>
        (this.enrolled.get(`${runId}:${epoch}`) ?? []).some((e) => e.node === getAddress(node)),
      taskOf: async (id: bigint) => {
        const t = this.tasks.get(id);
        return t ? { ...t, assigneePower: 0n, completedAt: 0n } : { runId: 0n, epoch: 0n, status: 0n, assignee: ZeroAddress, units: 0n, pay: 0n, specHash: `0x${"0".repeat(64)}`, resultHash: `0x${"0".repeat(64)}` };
      },
      enroll: async (...args: unknown[]): Promise<Call> => ({ fn: "enroll", args }),
      createTask: Object.assign(async (...args: unknown[]): Promise<Call> => ({ fn: "createTask", args }), {
        populateTransaction: async (...args: unknown[]): Promise<Call> => ({ fn: "createTask", args }),
      }),
      completeTask: async (...args: unknown[]): Promise<Call> => ({ fn: "completeTask", args }),
      expireTask: async (...args: unknown[]): Promise<Call> => ({ fn: "expireTask", args }),
    };
    const proofOfCompute = {
      powerOf: async (epoch: bigint, node: string) => this.powerOf(epoch, node),
      isPowerFinal: async (epoch: bigint) => this.powerFinal.has(epoch),
    };
    return { taskLedger, proofOfCompute, epochManager: {} } as unknown as Chain["contracts"];
  }

  chain(): Chain {
    return {
      contracts: this.contracts(),
      deployment: { contracts: { TaskLedger: { address: LEDGER_ADDRESS, block: 0 } } },
    } as unknown as Chain;
  }

  /** Executes a call from `sender` as the contract would; returns the logs or throws the revert. */
  execute(sender: string, call: Call, label: string): FakeReceipt["logs"] {
    const revert = (name: string, message: string): never => {
      throw new TxRevertedError(label, name, {}, `${label} reverted: ${name}(${message})`);
    };
    const log = (name: string, values: unknown[]) => {
      const encoded = iface.encodeEventLog(name, values);
      return { address: LEDGER_ADDRESS, topics: encoded.topics, data: encoded.data };
    };
    const epoch = this.clock.epoch;
    const phase = this.clock.phases.get(epoch);
    switch (call.fn) {
      case "enroll": {
        const [runId, nodeArg] = call.args as [bigint, string];
        const node = getAddress(nodeArg);
        if (phase !== "Work") revert("TaskLedgerNotWorkPhase", String(epoch));
        const power = this.powerOf(epoch, node);
        if (power === 0n) revert("TaskLedgerNoPower", `${epoch}, ${node}`);
        const key = `${runId}:${epoch}`;
        const list = this.enrolled.get(key) ?? [];
        if (list.some((e) => e.node === node)) revert("TaskLedgerAlreadyEnrolled", node);
        list.push({ node, weight: power });
        this.enrolled.set(key, list);
        return [log("NodeEnrolled", [runId, epoch, node, power, this.enrollmentOf(runId, epoch)[1]])];
      }
      case "createTask": {
        const [runId, specHash, units] = call.args as [bigint, string, bigint];
        if (this.masterOf.has(runId) && getAddress(this.masterOf.get(runId)!) !== getAddress(sender)) revert("TaskLedgerNotMaster", sender);
        if (phase !== "Work") revert("TaskLedgerNotWorkPhase", String(epoch));
        const list = this.enrolled.get(`${runId}:${epoch}`) ?? [];
        if (list.length === 0) revert("TaskLedgerNoAssignee", `${runId}, ${epoch}`);
        const id = BigInt(this.tasks.size + 1);
        const assignee = getAddress(this.draws.shift() ?? list[0].node);
        const pay = this.pricePerUnit * units;
        if (pay > this.escrow) revert("TrainingRunsInsufficientEscrow", `${runId}, ${this.escrow}, ${pay}`);
        this.escrow -= pay;
        this.tasks.set(id, { runId, epoch, status: 1, assignee, units, pay, specHash, resultHash: `0x${"0".repeat(64)}` });
        return [log("TaskCreated", [id, runId, assignee, epoch, specHash, units, pay, 1n])];
      }
      case "completeTask": {
        const [id, resultHash] = call.args as [bigint, string];
        const task = this.tasks.get(id) ?? revert("TaskLedgerUnknownTask", String(id));
        if (task.status !== 1) revert("TaskLedgerInvalidStatus", `${id}, ${task.status}`);
        if (task.assignee !== getAddress(sender)) revert("TaskLedgerNotAssignee", `${id}, ${sender}`);
        if (this.clock.phases.get(task.epoch) !== "Work") revert("TaskLedgerCompletionClosed", String(id));
        task.status = 2;
        task.resultHash = resultHash;
        return [log("TaskCompleted", [id, task.assignee, resultHash])];
      }
      case "expireTask": {
        const [id] = call.args as [bigint];
        const task = this.tasks.get(id) ?? revert("TaskLedgerUnknownTask", String(id));
        if (task.status !== 1) revert("TaskLedgerInvalidStatus", `${id}, ${task.status}`);
        const p = this.clock.phases.get(task.epoch);
        if (p === "Work" || p === "PoC" || p === "PoCValidation") revert("TaskLedgerNotExpired", String(id));
        task.status = 4;
        this.escrow += task.pay;
        return [log("TaskExpired", [id, task.pay])];
      }
      default:
        throw new Error(`FakeLedger: no function ${call.fn}`);
    }
  }

  /** A TaskLedger event as the EventFollower hands it over. */
  event(name: string, values: unknown[], block = ++this.block) {
    const encoded = iface.encodeEventLog(name, values);
    const parsed = iface.parseLog(encoded)!;
    return { contract: "TaskLedger" as const, name, args: parsed.args, blockNumber: block, logIndex: 0, transactionHash: keccak256(toUtf8Bytes(`${name}${block}`)) };
  }
}

/** The TxSender's surface over a FakeLedger, sending as `sender`. */
export class FakeTx {
  readonly calls: Array<{ label: string; fn: string; args: unknown[] }> = [];
  readonly receipts = new Map<string, FakeReceipt>();
  /** Throws a lost connection right after the next tracked transaction was recorded (it is mined). */
  loseConnectionAfterRecord = false;
  /** Throws a lost connection right after the next tracked transaction was recorded, before it left. */
  dropAfterRecord = false;
  /** resumeTracked answers "can never be mined" for these hashes. */
  readonly dropped = new Set<string>();
  private nonce = 0;

  constructor(
    private readonly ledger: FakeLedger,
    readonly sender: string,
  ) {}

  count(fn: string): number {
    return this.calls.filter((c) => c.fn === fn).length;
  }

  private run(label: string, call: Call, hash: string): FakeReceipt {
    this.calls.push({ label, fn: call.fn, args: call.args });
    const logs = this.ledger.execute(this.sender, call, label);
    const receipt = { hash, blockNumber: ++this.ledger.block, status: 1, gasUsed: 21_000n, logs };
    this.receipts.set(hash, receipt);
    return receipt;
  }

  async send(label: string, build: () => Promise<unknown>): Promise<FakeReceipt> {
    const call = (await build()) as Call;
    return this.run(label, call, keccak256(toUtf8Bytes(`${label}:${this.nonce++}`)));
  }

  async sendTracked(label: string, populate: () => Promise<unknown>, _fields: unknown, record: (signed: SignedTx) => void): Promise<FakeReceipt> {
    const call = (await populate()) as Call;
    // Estimation: a call that would revert throws before anything is recorded, as the real sender does.
    const snapshot = { tasks: new Map([...this.ledger.tasks].map(([k, v]) => [k, { ...v }])), draws: [...this.ledger.draws], escrow: this.ledger.escrow };
    try {
      this.ledger.execute(this.sender, call, label);
    } finally {
      this.ledger.tasks.clear();
      for (const [k, v] of snapshot.tasks) this.ledger.tasks.set(k, v);
      this.ledger.draws.splice(0, this.ledger.draws.length, ...snapshot.draws);
      this.ledger.escrow = snapshot.escrow;
    }
    const nonce = this.nonce++;
    const hash = keccak256(toUtf8Bytes(`${label}:${nonce}`));
    record({ hash, nonce, from: this.sender, raw: `0xraw${nonce}` });
    if (this.dropAfterRecord) {
      this.dropAfterRecord = false;
      this.dropped.add(hash);
      throw new Error("connection lost before the broadcast");
    }
    const receipt = this.run(label, call, hash);
    if (this.loseConnectionAfterRecord) {
      this.loseConnectionAfterRecord = false;
      throw new Error("connection lost while waiting for the receipt");
    }
    return receipt;
  }

  async resumeTracked(_label: string, signed: SignedTx): Promise<FakeReceipt | undefined> {
    this.calls.push({ label: "resume", fn: "resume", args: [signed.hash] });
    if (this.dropped.has(signed.hash)) return undefined;
    const receipt = this.receipts.get(signed.hash);
    if (!receipt) throw new Error(`FakeTx: no transaction ${signed.hash}`);
    return receipt;
  }

  asTxSender(): TxSender {
    return this as unknown as TxSender;
  }
}
