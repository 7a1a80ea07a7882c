/**
 * Discovery's signed routes (PROTOCOL.md, "Discovery"). Order of checks on every route: signature (401),
 * path parameters (400), permission (403, see access.ts), then the body (400) and the resource (404).
 */
import type { preHandlerAsyncHookHandler } from "fastify";
import { type App, type AppOptions, HttpError, createApp, pathOf, requireSignature } from "../shared/http.js";
import type { Logger } from "../shared/log.js";
import type { Metrics } from "../shared/metrics.js";
import type { RateLimiter } from "../shared/rate-limit.js";
import { type NonceStore, type Recover, parseAddress } from "../shared/signing.js";
import type { Access } from "./access.js";
import { checkEndpoint } from "./endpoint.js";
import type { EndpointStore } from "./endpoints.js";

/** The audience of requests to discovery (it holds no key). */
export const DISCOVERY_AUDIENCE = "discovery";

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
  const node = parseAddress(raw);
  if (node === null) throw new HttpError(400, `:node must be an address (0x and 40 hex digits, valid checksum if mixed case), got ${JSON.stringify(raw.slice(0, 64))}`);
  return node;
}

export function parseRunIdParam(raw: string): bigint {
  // One spelling per run (no leading zeros), as everywhere else a run id is read.
  if (!/^[1-9][0-9]{0,77}$/.test(raw)) throw new HttpError(400, `:runId must be a positive integer without leading zeros, got ${JSON.stringify(raw.slice(0, 80))}`);
  const id = BigInt(raw);
  if (id === 0n || id > UINT256_MAX) throw new HttpError(400, `:runId must be a positive integer below 2^256, got ${raw}`);
  return id;
}

export interface RouteDeps {
  /** Where endpoints are kept (SQLite, or Redis shared by several instances). */
  endpoints: EndpointStore;
  access: Access;
  logger: Logger;
  /** The shared signature hook (one instance: its rate limit spans all routes). */
  signed: preHandlerAsyncHookHandler;
  now?: () => Date;
  /** Called after an endpoint is stored (metrics). */
  onEndpointStored?: () => void;
}

type NodeParams = { Params: { node: string } };

export function addDiscoveryRoutes(app: App, deps: RouteDeps): void {
  const { endpoints, access, logger, signed } = deps;
  const now = deps.now ?? (() => new Date());

  app.put<NodeParams>("/nodes/:node", { preHandler: signed }, async (req) => {
    const node = parseNodeParam(req.params.node);
    const signer = req.signer;
    const via = await access.requireRegisteredSelf(signer, node);
    const body = req.body;
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      throw new HttpError(400, 'body must be a JSON object { "endpoint": "http://host:port" } sent as application/json');
    }
    const unknown = Object.keys(body).filter((key) => key !== "endpoint");
    if (unknown.length > 0) {
      throw new HttpError(400, `body has unknown field ${JSON.stringify(unknown[0].slice(0, 64))}: only { "endpoint" } is accepted`);
    }
    const checked = checkEndpoint((body as Record<string, unknown>).endpoint);
    if (!checked.ok) {
      logger.info({ subsystem: "Registration", node, reason: checked.reason }, "endpoint refused");
      throw new HttpError(400, checked.reason);
    }
    const { record, previous } = await endpoints.set(node, checked.endpoint, now().toISOString());
    deps.onEndpointStored?.();
    // A node re-announcing the endpoint it had (each restart does) is routine: info only for a change.
    const changed = previous !== record.endpoint;
    (changed ? logger.info : logger.debug).call(
      logger,
      { subsystem: "Registration", node, endpoint: record.endpoint, previous: previous ?? null, changed, via },
      previous === undefined ? "endpoint stored" : changed ? "endpoint updated" : "endpoint unchanged",
    );
    return record;
  });

  app.get<NodeParams>("/nodes/:node", { preHandler: signed }, async (req) => {
    const node = parseNodeParam(req.params.node);
    const reader = await access.requireNodeReader(req.signer, node);
    const record = await endpoints.get(node);
    if (!record) throw new HttpError(404, `${node} has no endpoint`);
    // Reads change nothing and come at every validator's and master's pace: debug, not info.
    logger.debug(
      { subsystem: reader.as === "validator" ? "Validation" : "Onboarding", node, reader: req.signer, as: reader.as, runId: reader.runId, via: reader.via },
      "endpoint read",
    );
    return record;
  });

  app.get("/validator/pending", { preHandler: signed }, async (req) => {
    const via = await access.requireValidator(req.signer);
    const nodes = await endpoints.pending(MAX_LIST);
    logger.info({ subsystem: "Validation", validator: req.signer, via, pending: nodes.length, limit: MAX_LIST }, "pending list read");
    return { nodes };
  });

  app.get<{ Params: { runId: string } }>("/runs/:runId/nodes", { preHandler: signed }, async (req) => {
    const runId = parseRunIdParam(req.params.runId);
    const via = await access.requireRunMaster(req.signer, runId);
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
    return { nodes };
  });
}

export interface DiscoveryAppOptions {
  /** Where endpoints are kept (SQLite, or Redis shared by several instances). */
  endpoints: EndpointStore;
  access: Access;
  logger: Logger;
  metrics: Metrics;
  chainId: bigint;
  /** Used nonces (the keeper's SQLite store, or Redis shared by several instances). */
  nonces: NonceStore;
  maxSkewSec?: number;
  /** Signed requests per address per window (default 120 per 60 s); 429 beyond. */
  rateLimit?: { max: number; windowMs: number };
  /** Shared counters for `rateLimit` (Redis) instead of this process's. */
  rateLimiter?: RateLimiter;
  /** Largest request body (default "16kb"); 413 beyond. */
  bodyLimit?: string;
  health?: AppOptions["health"];
  /** Where signers are recovered (default: on this thread). */
  recover?: Recover;
  /** Called for every answer, refusals before routing (413, malformed JSON, 404) included (metrics). */
  onAnswered?: (method: string, route: string, status: number) => void;
}

/** Discovery's HTTP app: the shared keeper app, the signature hook, the routes. */
export function buildDiscoveryApp(options: DiscoveryAppOptions): App {
  const app = createApp({ logger: options.logger, metrics: options.metrics, bodyLimit: options.bodyLimit ?? "16kb", health: options.health });
  const onAnswered = options.onAnswered;
  if (onAnswered) {
    app.addHook("onResponse", (request, reply, done) => {
      onAnswered(request.method, routeOf(request.method, pathOf(request)), reply.statusCode);
      done();
    });
  }
  const signed = requireSignature({
    chainId: options.chainId,
    audience: DISCOVERY_AUDIENCE,
    nonces: options.nonces,
    maxSkewSec: options.maxSkewSec ?? 60,
    rateLimit: options.rateLimit ?? { max: 120, windowMs: 60_000 },
    rateLimiter: options.rateLimiter,
    recover: options.recover,
  });
  addDiscoveryRoutes(app, { endpoints: options.endpoints, access: options.access, logger: options.logger, signed });
  return app;
}
