/**
 * Where a validator gets the spec of a task it must re-execute (keepers/miner/economy.ts `fetchTaskSpec`):
 * the run's master first when the node is in the task's run, then the executor, whose endpoint discovery
 * gives; every spec checked against the chain's spec hash. Real HTTP with real signatures: the master and
 * the executor are the keepers' own app (`createApp`) with the signature check of the real keepers, each
 * verifying that the request is signed by the validator for its own audience.
 *
 * TEST DOUBLES: the two spec routes (a master and a miner serving or withholding a spec; the real routes
 * and their access rules are tested in master.test.ts, ledger-tasks.test.ts and hostile-input.test.ts) and
 * discovery's answer (a map of endpoints).
 */
import { expect } from "chai";
import { Wallet } from "ethers";
import { fetchTaskSpec } from "../../keepers/miner/economy.js";
import { type ValidTaskSpec, validateTaskSpec } from "../../keepers/miner/task-spec.js";
import { type App, HttpError, SignedClient, closeServer, createApp, listen, requireSignature } from "../../keepers/shared/http.js";
import { createLogger } from "../../keepers/shared/log.js";
import { createMetrics } from "../../keepers/shared/metrics.js";
import { MemoryNonceStore } from "../../keepers/shared/signing.js";
import { specHash } from "../../keepers/shared/task-hash.js";

const CHAIN_ID = 31337n;
const RUN = 7n;

/** TEST DOUBLE of a keeper's spec route: answers `answer()` to requests the validator signed for `audience`. */
class SpecServer {
  app: App | undefined;
  url = "";
  asked = 0;
  signers: string[] = [];
  constructor(
    readonly audience: string,
    public answer: () => { status: number; body: unknown },
  ) {}

  async start(): Promise<void> {
    const app = createApp({ logger: createLogger({ component: "test", level: "silent" }), metrics: createMetrics("spec-test") });
    const signed = requireSignature({ chainId: CHAIN_ID, audience: this.audience, nonces: new MemoryNonceStore() });
    app.get<{ Params: { id: string } }>("/ledger/tasks/:id/spec", { preHandler: signed }, async (req) => {
      this.asked++;
      this.signers.push(req.signer);
      const { status, body } = this.answer();
      if (status !== 200) throw new HttpError(status, String((body as { error?: string }).error));
      return body;
    });
    this.app = app;
    const server = await listen(app, 0, "127.0.0.1");
    this.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  }

  async stop(): Promise<void> {
    if (this.app) await closeServer(this.app);
  }
}

describe("fetching a task's spec for its re-execution (master, then executor)", () => {
  const validator = Wallet.createRandom();
  const masterKey = Wallet.createRandom();
  const executorKey = Wallet.createRandom();
  const spec: ValidTaskSpec = {
    ...validateTaskSpec({ taskId: "t1", runId: RUN.toString(), image: "computenet/busybox:latest", command: ["true"], memoryMB: 32, cpus: 0.5 }),
    ledgerTaskId: "12",
  } as ValidTaskSpec;
  const task = { runId: RUN, specHash: specHash(spec), assignee: executorKey.address };
  const logs: Array<Record<string, unknown>> = [];
  const logger = createLogger({ component: "miner", level: "debug", destination: { write: (line: string) => void logs.push(JSON.parse(line)) } });
  let master: SpecServer;
  let executor: SpecServer;
  const endpoints = new Map<string, string>();
  const discovery = { endpointOf: async (node: string) => endpoints.get(node) };
  const from = (overrides: { runId?: bigint; master?: { master: string; masterUrl: string } | undefined } = {}) => ({
    client: new SignedClient(validator, CHAIN_ID),
    discovery,
    runId: overrides.runId ?? RUN,
    master: "master" in overrides ? overrides.master : { master: masterKey.address, masterUrl: master.url },
    logger,
  });
  const ok = () => ({ status: 200, body: spec });

  before(async () => {
    master = new SpecServer(masterKey.address.toLowerCase(), ok);
    executor = new SpecServer(executorKey.address.toLowerCase(), ok);
    await Promise.all([master.start(), executor.start()]);
  });

  beforeEach(() => {
    master.answer = ok;
    executor.answer = ok;
    master.asked = executor.asked = 0;
    master.signers = [];
    executor.signers = [];
    logs.length = 0;
    endpoints.set(executorKey.address, executor.url);
  });

  after(async () => {
    await Promise.all([master.stop(), executor.stop()]);
  });

  it("takes the spec from the run's master when it serves it, signed by the validator for the master", async () => {
    expect(await fetchTaskSpec(from(), 12n, task)).to.deep.equal(spec);
    expect([master.asked, executor.asked]).to.deep.equal([1, 0]);
    expect(master.signers).to.deep.equal([validator.address]);
  });

  it("asks the executor when the master withholds the spec or serves another, and says so", async () => {
    master.answer = () => ({ status: 404, body: { error: "no such task" } });
    expect(await fetchTaskSpec(from(), 12n, task)).to.deep.equal(spec);
    expect([master.asked, executor.asked]).to.deep.equal([1, 1]);
    expect(executor.signers).to.deep.equal([validator.address]);
    const line = logs.find((l) => l.msg === `task spec fetched from the executor ${executorKey.address}`);
    expect(line?.failed).to.deep.equal(["the run's master: GET /ledger/tasks/12/spec: 404 no such task"]);

    master.answer = () => ({ status: 200, body: { ...spec, command: ["sh", "-c", "exit 1"] } });
    expect(await fetchTaskSpec(from(), 12n, task)).to.deep.equal(spec);
    expect(logs.at(-1)?.failed).to.deep.equal(["the run's master: its spec does not match the hash on chain"]);
  });

  it("asks only the executor for a task of another run, or when the node knows no master", async () => {
    expect(await fetchTaskSpec(from({ runId: RUN + 1n }), 12n, task)).to.deep.equal(spec);
    expect(await fetchTaskSpec(from({ master: undefined }), 12n, task)).to.deep.equal(spec);
    expect([master.asked, executor.asked]).to.deep.equal([0, 2]);
  });

  it("fails with every source's reason when neither serves the spec on chain", async () => {
    master.answer = () => ({ status: 403, body: { error: "no power" } });
    executor.answer = () => ({ status: 200, body: { ...spec, memoryMB: 64 } });
    const failure = await fetchTaskSpec(from(), 12n, task).then(
      () => undefined,
      (error: Error) => error.message,
    );
    expect(failure).to.equal(
      `cannot fetch the spec of task 12: the run's master: GET /ledger/tasks/12/spec: 403 no power; the executor ${executorKey.address}: its spec does not match the hash on chain`,
    );
    endpoints.delete(executorKey.address);
    const noEndpoint = await fetchTaskSpec(from({ master: undefined }), 12n, task).then(
      () => undefined,
      (error: Error) => error.message,
    );
    expect(noEndpoint).to.equal(`cannot fetch the spec of task 12: the executor ${executorKey.address}: discovery has no endpoint for it`);
  });
});
