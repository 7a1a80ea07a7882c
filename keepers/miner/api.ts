/**
 * The miner's HTTP API (PROTOCOL.md, "Miner"; audience = the node address). Every route but /health and
 * /metrics is signed; who may call what is decided by MinerAgent from chain state.
 */
import type { FastifyRequest } from "fastify";
import { type App, HttpError, createApp, requireSignature } from "../shared/http.js";
import type { Logger } from "../shared/log.js";
import type { Metrics } from "../shared/metrics.js";
import type { NonceStore } from "../shared/signing.js";
import type { MinerAgent } from "./agent.js";
import type { MinerEconomy } from "./economy.js";

export interface MinerApiOptions {
  agent: MinerAgent;
  /** Serves PoC leaves (absent in tests of the agent alone). */
  economy?: MinerEconomy;
  logger: Logger;
  metrics: Metrics;
  chainId: bigint;
  nonces: NonceStore;
  health: () => Record<string, unknown>;
  maxSkewSec?: number;
  rateLimit?: { max: number; windowMs: number };
}

type TaskParams = { Params: { taskId: string } };

export function createMinerApi(options: MinerApiOptions): App {
  const { agent, logger, metrics } = options;
  const app = createApp({ logger, metrics, bodyLimit: "256kb", health: options.health });
  const signed = requireSignature({
    chainId: options.chainId,
    audience: agent.node.toLowerCase(),
    nonces: options.nonces,
    maxSkewSec: options.maxSkewSec,
    rateLimit: options.rateLimit ?? { max: 600, windowMs: 60_000 },
  });
  const requests = metrics.counter("miner_requests_total", "Signed requests answered, by route and status", ["route", "status"]);
  /** Counted when answered, refusals of the signature hook included. */
  const counted = (route: string) => ({
    preHandler: signed,
    onResponse: async (_req: FastifyRequest, reply: { statusCode: number }) => {
      requests.inc({ route, status: String(reply.statusCode) });
    },
  });

  app.post("/challenge", counted("challenge"), async (req) => agent.solveChallenge(req.signer, req.body));
  app.post("/invite", counted("invite"), async (req) => agent.acceptInvite(req.signer, req.body));
  app.post("/tasks", counted("tasks"), async (req, reply) => reply.code(202).send(await agent.startTask(req.signer, req.body)));
  app.get<TaskParams>("/tasks/:taskId", counted("task"), async (req) => agent.taskStatus(req.signer, req.params.taskId));
  app.get<TaskParams & { Querystring: { tail?: unknown } }>("/tasks/:taskId/logs", counted("task-logs"), async (req) => {
    return agent.taskLogs(req.signer, req.params.taskId, req.query.tail);
  });
  app.post<TaskParams>("/tasks/:taskId/stop", counted("task-stop"), async (req) => agent.stopTask(req.signer, req.params.taskId));
  app.get<{ Params: { epoch: string }; Querystring: { indices?: unknown } }>("/poc/:epoch/leaves", counted("poc-leaves"), async (req) => {
    if (!options.economy) throw new HttpError(404, "this node does not take part in the epoch economy");
    return options.economy.leaves(req.signer, req.params.epoch, req.query.indices);
  });
  app.get<{ Params: { ledgerTaskId: string } }>("/ledger/tasks/:ledgerTaskId/spec", counted("ledger-spec"), async (req) =>
    agent.ledger.specFor(req.params.ledgerTaskId, req.signer),
  );
  app.get("/status", counted("status"), async (req) => agent.statusFor(req.signer));
  return app;
}
