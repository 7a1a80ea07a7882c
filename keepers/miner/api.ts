/**
 * The miner's HTTP API (PROTOCOL.md, "Miner"; audience = the node address). Every route but /health and
 * /metrics is signed; who may call what is decided by MinerAgent from chain state.
 */
import type express from "express";
import type { Request, Response } from "express";
import { HttpError, createApp, finishApp, requireSignature } from "../shared/http.js";
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

export function createMinerApi(options: MinerApiOptions): express.Express {
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
  const count = (route: string) => (_req: Request, res: Response, next: () => void) => {
    res.on("finish", () => requests.inc({ route, status: String(res.statusCode) }));
    next();
  };
  const signer = (req: Request) => req.signer!;
  const taskId = (req: Request) => String(req.params.taskId);

  app.post("/challenge", count("challenge"), signed, async (req, res) => {
    res.json(await agent.solveChallenge(signer(req), req.json));
  });
  app.post("/invite", count("invite"), signed, async (req, res) => {
    res.json(await agent.acceptInvite(signer(req), req.json));
  });
  app.post("/tasks", count("tasks"), signed, async (req, res) => {
    res.status(202).json(await agent.startTask(signer(req), req.json));
  });
  app.get("/tasks/:taskId", count("task"), signed, async (req, res) => {
    res.json(await agent.taskStatus(signer(req), taskId(req)));
  });
  app.get("/tasks/:taskId/logs", count("task-logs"), signed, async (req, res) => {
    const tail = typeof req.query.tail === "string" ? req.query.tail : undefined;
    res.json(await agent.taskLogs(signer(req), taskId(req), tail));
  });
  app.post("/tasks/:taskId/stop", count("task-stop"), signed, async (req, res) => {
    res.json(await agent.stopTask(signer(req), taskId(req)));
  });
  app.get("/poc/:epoch/leaves", count("poc-leaves"), signed, async (req, res) => {
    if (!options.economy) throw new HttpError(404, "this node does not take part in the epoch economy");
    res.json(await options.economy.leaves(signer(req), String(req.params.epoch), req.query.indices));
  });
  app.get("/status", count("status"), signed, async (req, res) => {
    res.json(await agent.statusFor(signer(req)));
  });
  finishApp(app, logger);
  return app;
}
