/**
 * Discovery's signed routes (PROTOCOL.md, "Discovery"). Order of checks on every route: signature (401),
 * path parameters (400), permission (403, see access.ts), then the body (400) and the resource (404).
 */
import type express from "express";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import { getAddress, isAddress } from "ethers";
import { HttpError } from "../shared/http.js";
import type { Logger } from "../shared/log.js";
import type { Access } from "./access.js";
import { checkEndpoint } from "./endpoint.js";
import type { EndpointStore } from "./endpoints.js";

/** Largest list answered by /validator/pending and /runs/:runId/nodes (oldest first / by address). */
export const MAX_LIST = 1000;

const UINT256_MAX = (1n << 256n) - 1n;

/** Route templates, for metrics labels (anything else is "other"). */
export function routeOf(method: string, path: string): string {
  if (path === "/health" || path === "/metrics") return `${method} ${path}`;
  if (/^\/nodes\/[^/]+\/?$/.test(path) && (method === "PUT" || method === "GET")) return `${method} /nodes/:node`;
  if (/^\/validator\/pending\/?$/.test(path) && method === "GET") return "GET /validator/pending";
  if (/^\/runs\/[^/]+\/nodes\/?$/.test(path) && method === "GET") return "GET /runs/:runId/nodes";
  return "other";
}

export function parseNodeParam(raw: string): string {
  const text: string = raw;
  if (!isAddress(raw)) throw new HttpError(400, `:node must be an address (0x and 40 hex digits, valid checksum if mixed case), got ${JSON.stringify(text.slice(0, 64))}`);
  return getAddress(raw);
}

export function parseRunIdParam(raw: string): bigint {
  if (!/^[0-9]{1,78}$/.test(raw)) throw new HttpError(400, `:runId must be a positive integer, got ${JSON.stringify(raw.slice(0, 80))}`);
  const id = BigInt(raw);
  if (id === 0n || id > UINT256_MAX) throw new HttpError(400, `:runId must be a positive integer below 2^256, got ${raw}`);
  return id;
}

export interface RouteDeps {
  /** Where endpoints are kept (SQLite, or Redis shared by several instances). */
  endpoints: EndpointStore;
  access: Access;
  logger: Logger;
  /** The shared signature middleware (one instance: its rate limit spans all routes). */
  signed: RequestHandler;
  now?: () => Date;
  /** Called after an endpoint is stored (metrics). */
  onEndpointStored?: () => void;
}

type Handler = (req: Request, res: Response) => Promise<void>;

function wrap(handler: Handler): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    handler(req, res).catch(next);
  };
}

export function addDiscoveryRoutes(app: express.Express, deps: RouteDeps): void {
  const { endpoints, access, logger, signed } = deps;
  const now = deps.now ?? (() => new Date());

  app.put(
    "/nodes/:node",
    signed,
    wrap(async (req, res) => {
      const node = parseNodeParam(String(req.params.node));
      const signer = req.signer!;
      const via = await access.requireRegisteredSelf(signer, node);
      const body = req.json;
      if (typeof body !== "object" || body === null || Array.isArray(body)) {
        throw new HttpError(400, 'body must be a JSON object { "endpoint": "http://host:port" } sent as application/json');
      }
      const checked = checkEndpoint((body as Record<string, unknown>).endpoint);
      if (!checked.ok) {
        logger.info({ subsystem: "Registration", node, reason: checked.reason }, "endpoint refused");
        throw new HttpError(400, checked.reason);
      }
      const previous = (await endpoints.get(node))?.endpoint;
      const record = await endpoints.set(node, checked.endpoint, now().toISOString());
      deps.onEndpointStored?.();
      logger.info(
        { subsystem: "Registration", node, endpoint: record.endpoint, previous: previous ?? null, changed: previous !== record.endpoint, via },
        previous === undefined ? "endpoint stored" : "endpoint updated",
      );
      res.json(record);
    }),
  );

  app.get(
    "/nodes/:node",
    signed,
    wrap(async (req, res) => {
      const node = parseNodeParam(String(req.params.node));
      const reader = await access.requireNodeReader(req.signer!, node);
      const record = await endpoints.get(node);
      if (!record) throw new HttpError(404, `${node} has no endpoint`);
      logger.info(
        { subsystem: reader.as === "validator" ? "Validation" : "Onboarding", node, reader: req.signer, as: reader.as, runId: reader.runId, via: reader.via },
        "endpoint read",
      );
      res.json(record);
    }),
  );

  app.get(
    "/validator/pending",
    signed,
    wrap(async (req, res) => {
      const via = await access.requireValidator(req.signer!);
      const nodes = await endpoints.pending(MAX_LIST);
      logger.info({ subsystem: "Validation", validator: req.signer, via, pending: nodes.length, limit: MAX_LIST }, "pending list read");
      res.json({ nodes });
    }),
  );

  app.get(
    "/runs/:runId/nodes",
    signed,
    wrap(async (req, res) => {
      const runId = parseRunIdParam(String(req.params.runId));
      const via = await access.requireRunMaster(req.signer!, runId);
      const nodes = await endpoints.runNodes(runId.toString(), MAX_LIST);
      logger.info(
        {
          subsystem: "Onboarding",
          runId: runId.toString(),
          master: req.signer,
          via,
          registered: nodes.filter((n) => n.participation === "Registered").length,
          members: nodes.filter((n) => n.participation === "Member").length,
        },
        "run nodes read",
      );
      res.json({ nodes });
    }),
  );
}
