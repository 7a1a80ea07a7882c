/**
 * HTTP for keepers: an express app that keeps the raw body (the signature covers its exact bytes),
 * answers `/health` and `/metrics`, verifies signed requests, limits body size and request rate per
 * address, and turns errors into JSON `{ error }` with the right status. Plus a client that signs.
 */
import type { Server } from "node:http";
import express, { type NextFunction, type Request, type Response } from "express";
import type { Signer } from "ethers";
import type { Logger } from "./log.js";
import type { Metrics } from "./metrics.js";
import { MemoryRateLimiter, type RateLimiter } from "./rate-limit.js";
import { AuthError, type NonceStore, signRequest, verifyRequest } from "./signing.js";

/** An error with an HTTP status and a reason for the caller. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "HttpError";
  }
}

declare module "express-serve-static-core" {
  interface Request {
    /** Checksummed address that signed the request (set by `requireSignature`). */
    signer?: string;
    rawBody?: Buffer;
    /** Parsed JSON body, or undefined for an empty body. */
    json?: unknown;
  }
}

export interface AppOptions {
  logger: Logger;
  metrics: Metrics;
  /** Largest accepted request body. */
  bodyLimit?: string;
  health?: () => Promise<Record<string, unknown>> | Record<string, unknown>;
}

export function createApp(options: AppOptions): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("query parser", "simple");
  app.use(express.raw({ type: () => true, limit: options.bodyLimit ?? "1mb" }));
  app.use((req: Request, _res: Response, next: NextFunction) => {
    req.rawBody = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    req.json = undefined;
    if (req.rawBody.length > 0 && (req.headers["content-type"] ?? "").includes("json")) {
      try {
        req.json = JSON.parse(req.rawBody.toString("utf8"));
      } catch {
        return next(new HttpError(400, "body is not valid JSON"));
      }
    }
    next();
  });
  app.get("/health", async (_req, res, next) => {
    try {
      res.json({ status: "ok", ...(options.health ? await options.health() : {}) });
    } catch (error) {
      next(error);
    }
  });
  app.get("/metrics", async (_req, res, next) => {
    try {
      res.type(options.metrics.registry.contentType).send(await options.metrics.registry.metrics());
    } catch (error) {
      next(error);
    }
  });
  return app;
}

/** Final handlers: 404 for unknown routes, JSON errors for everything thrown. */
export function finishApp(app: express.Express, logger: Logger): void {
  app.use((req: Request, _res: Response, next: NextFunction) => next(new HttpError(404, `no route ${req.method} ${req.path}`)));
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = error as { status?: number; statusCode?: number; type?: string; message?: string };
    let status = 500;
    let message = "internal error";
    if (error instanceof HttpError || error instanceof AuthError) {
      status = error.status;
      message = error.message;
    } else if (e.type === "entity.too.large") {
      status = 413;
      message = "body too large";
    } else if (typeof e.status === "number" && e.status >= 400 && e.status < 500) {
      status = e.status;
      message = e.message ?? "bad request";
    }
    if (status >= 500) logger.error({ subsystem: "Http", err: e.message, path: req.path }, "request failed");
    else logger.debug({ subsystem: "Http", status, reason: message, path: req.path, signer: req.signer }, "request refused");
    res.status(status).json({ error: message });
  });
}

export interface SignatureOptions {
  chainId: bigint;
  audience: string;
  nonces: NonceStore;
  maxSkewSec?: number;
  /** Requests per address per window; refused with 429 beyond (counted in this process). */
  rateLimit?: { max: number; windowMs: number };
  /** Counters to use instead of in-process ones for `rateLimit` (shared by instances, e.g. in Redis). */
  rateLimiter?: RateLimiter;
}

/**
 * Middleware: verifies the request's signature (401 with a reason on failure; 503 when the nonce store or
 * the rate-limit counters cannot be reached) and sets `req.signer`.
 */
export function requireSignature(options: SignatureOptions) {
  const limiter = options.rateLimiter ?? (options.rateLimit ? new MemoryRateLimiter(options.rateLimit) : undefined);
  const authenticate = async (req: Request): Promise<void> => {
    const queryIndex = req.originalUrl.indexOf("?");
    req.signer = await verifyRequest(
      {
        method: req.method,
        path: req.path,
        query: queryIndex === -1 ? "" : req.originalUrl.slice(queryIndex + 1),
        body: req.rawBody ?? Buffer.alloc(0),
        header: (name) => req.header(name),
      },
      options,
    );
    if (!limiter) return;
    let allowed: boolean;
    try {
      allowed = await limiter.hit(req.signer.toLowerCase());
    } catch (error) {
      throw new HttpError(503, `rate limit counters unavailable, try again later: ${(error as Error).message}`);
    }
    if (!allowed) throw new HttpError(429, `rate limit: more than ${limiter.limit.max} requests in ${limiter.limit.windowMs} ms`);
  };
  return (req: Request, _res: Response, next: NextFunction) => {
    authenticate(req).then(() => next(), next);
  };
}

export function listen(app: express.Express, port: number, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host);
    server.once("listening", () => resolve(server));
    server.once("error", reject);
  });
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}

export interface SignedResponse<T> {
  status: number;
  body: T;
}

/** HTTP client whose every request is signed by `signer` for the given chain and audience. */
export class SignedClient {
  constructor(
    private readonly signer: Signer,
    private readonly chainId: bigint,
    private readonly timeoutMs = 10_000,
    /** Largest answer read from a peer; a hostile peer cannot make us buffer more. */
    private readonly maxResponseBytes = 16 * 1024 * 1024,
  ) {}

  async request<T = unknown>(
    method: string,
    url: string,
    options: { audience: string; body?: unknown; rawBody?: Uint8Array; headers?: Record<string, string> },
  ): Promise<SignedResponse<T>> {
    const target = new URL(url);
    const body =
      options.rawBody ?? (options.body === undefined ? new Uint8Array() : Buffer.from(JSON.stringify(options.body)));
    const headers = await signRequest(this.signer, {
      chainId: this.chainId,
      audience: options.audience,
      method,
      path: target.pathname,
      query: target.search.replace(/^\?/, ""),
      body,
    });
    const response = await fetch(target, {
      method,
      headers: {
        ...headers,
        ...(options.body !== undefined ? { "content-type": "application/json" } : {}),
        ...(options.rawBody ? { "content-type": "application/octet-stream" } : {}),
        ...options.headers,
      },
      body: body.length > 0 ? body : undefined,
      signal: AbortSignal.timeout(this.timeoutMs),
      // A peer chooses its own endpoint: it must not bounce our signed request elsewhere.
      redirect: "error",
    });
    const text = await readCapped(response, this.maxResponseBytes, `${method} ${url}`);
    let parsed: unknown = text;
    if ((response.headers.get("content-type") ?? "").includes("json")) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    return { status: response.status, body: parsed as T };
  }

  /** Like `request`, but throws an HttpError with the server's reason on a non-2xx answer. */
  async call<T = unknown>(
    method: string,
    url: string,
    options: { audience: string; body?: unknown; rawBody?: Uint8Array },
  ): Promise<T> {
    const response = await this.request<T>(method, url, options);
    if (response.status < 200 || response.status >= 300) {
      const reason = (response.body as { error?: string })?.error ?? String(response.body);
      throw new HttpError(response.status, `${method} ${url}: ${response.status} ${reason}`);
    }
    return response.body;
  }
}

/** The response body as text, refusing (and cancelling) one larger than `maxBytes`. */
async function readCapped(response: globalThis.Response, maxBytes: number, what: string): Promise<string> {
  const declared = Number(response.headers.get("content-length") ?? "0");
  if (declared > maxBytes) {
    await response.body?.cancel();
    throw new HttpError(502, `${what}: answer of ${declared} bytes exceeds the ${maxBytes}-byte limit`);
  }
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw new HttpError(502, `${what}: answer exceeds the ${maxBytes}-byte limit`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}
