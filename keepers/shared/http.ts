/**
 * HTTP for keepers, on fastify 5: an app that keeps the raw body (the signature covers its exact bytes)
 * and parses JSON bodies, answers `/health` and `/metrics`, verifies signed requests (a preHandler hook),
 * limits body size (413) and request rate per address (429), and turns errors and unknown routes into JSON
 * `{ error }` with the right status. Plus a client that signs.
 *
 * Why fastify: on these 2-core machines an empty route answered ~8k req/s with express 5, ~52k with
 * fastify 5 and ~59k with bare node:http (TOOLCHAIN.md); the master must take thousands of signed
 * heartbeats per second, so the framework may not cost more than the signature check itself.
 */
import querystring from "node:querystring";
import { type IncomingMessage, STATUS_CODES, type Server, type ServerResponse, createServer } from "node:http";
import type { Socket } from "node:net";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type preHandlerAsyncHookHandler } from "fastify";
import type { Signer } from "ethers";
import type { Logger } from "./log.js";
import type { Metrics } from "./metrics.js";
import { MemoryRateLimiter, type RateLimiter } from "./rate-limit.js";
import {
  AuthError,
  type NonceStore,
  type Recover,
  acceptClaim,
  readClaim,
  checkMessageSigner,
  signRequest,
} from "./signing.js";

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

declare module "fastify" {
  interface FastifyRequest {
    /** Checksummed address that signed the request (set by `requireSignature`; "" before). */
    signer: string;
    /** The exact body bytes (the signature covers them); null when the request had no body. */
    rawBody: Buffer | null;
  }
}

export type App = FastifyInstance;

const EMPTY_BODY = Buffer.alloc(0);

/** "16kb", "1mb", "512b" or a number of bytes (1kb = 1024 bytes, as express' body parser read them). */
export function parseByteSize(size: string | number): number {
  if (typeof size === "number") return size;
  const match = /^([0-9]+)\s*(b|kb|mb|gb)?$/i.exec(size.trim());
  if (!match) throw new Error(`not a size: ${JSON.stringify(size)} (e.g. "16kb", "1mb")`);
  const unit = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[(match[2] ?? "b").toLowerCase() as "b"];
  return Number(match[1]) * unit;
}

export interface AppOptions {
  logger: Logger;
  metrics: Metrics;
  /** Largest accepted request body (default "1mb"); a route may allow more with its own `bodyLimit`. */
  bodyLimit?: string | number;
  health?: () => Promise<Record<string, unknown>> | Record<string, unknown>;
  /**
   * Sees every request before the app: returns true when it answered it itself (e.g. the master forwarding
   * a request to the leader instance untouched, body unread), false to let the app answer.
   */
  front?: (req: IncomingMessage, res: ServerResponse) => boolean;
}

/** Longest path parameter routed (fastify's default); longer ones are answered 414. */
const MAX_PARAM_LENGTH = 100;

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Deepest nesting of arrays and objects accepted in a JSON body. Every keeper body is a few levels deep;
 * parsing is superlinear in the depth (half a second for 1 MB of "[" here), and it runs before the signature
 * is checked, so depth is bounded before parsing.
 */
export const MAX_JSON_DEPTH = 64;

/**
 * A JSON request body: UTF-8 (invalid bytes are refused, not replaced), at most MAX_JSON_DEPTH deep, and
 * free of the keys that pollute prototypes when an object is merged into another (`__proto__`, and
 * `constructor` holding a `prototype`), as fastify's own parser refuses them. Throws an HttpError 400 with
 * the reason.
 */
export function parseJsonBody(bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    throw new HttpError(400, "body is not valid UTF-8");
  }
  if (deeperThan(bytes, MAX_JSON_DEPTH)) throw new HttpError(400, `body is nested deeper than ${MAX_JSON_DEPTH} levels`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new HttpError(400, "body is not valid JSON");
  }
  // Only a text that could hold such a key (written out, or with \u escapes) is walked.
  if (text.includes("__proto__") || text.includes("constructor") || text.includes("\\u")) {
    const problem = forbiddenKey(parsed);
    if (problem) throw new HttpError(400, `body must not contain ${problem}`);
  }
  return parsed;
}

/**
 * Whether the JSON text nests arrays and objects deeper than `max`, by one pass over its bytes (brackets in
 * strings do not count; in UTF-8 these ASCII bytes never occur inside a multi-byte character).
 */
function deeperThan(bytes: Uint8Array, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i];
    if (inString) {
      if (byte === 0x5c) i++; // backslash: the next byte is escaped
      else if (byte === 0x22) inString = false;
    } else if (byte === 0x22) inString = true;
    else if (byte === 0x5b || byte === 0x7b) {
      if (++depth > max) return true;
    } else if (byte === 0x5d || byte === 0x7d) depth--;
  }
  return false;
}

/** The first prototype-polluting key in a parsed JSON value, walked without recursion (any depth). */
function forbiddenKey(value: unknown): string | null {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const item = stack.pop();
    if (typeof item !== "object" || item === null) continue;
    if (Array.isArray(item)) {
      for (const element of item) if (typeof element === "object" && element !== null) stack.push(element);
      continue;
    }
    for (const key of Object.keys(item)) {
      const child = (item as Record<string, unknown>)[key];
      if (key === "__proto__") return 'the key "__proto__"';
      if (key === "constructor" && typeof child === "object" && child !== null && Object.hasOwn(child, "prototype")) {
        return 'a "constructor" object with a "prototype" key';
      }
      if (typeof child === "object" && child !== null) stack.push(child);
    }
  }
  return null;
}

/**
 * Requests node's HTTP parser refuses (a NUL or a line break in a header or the path, oversized headers, a
 * timeout) are answered with a JSON reason, as fastify's default does without one, then the connection closed.
 */
function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === "ECONNRESET" || socket.destroyed) return;
  const [status, reason] =
    error.code === "ERR_HTTP_REQUEST_TIMEOUT"
      ? [408, "request timeout"]
      : error.code === "HPE_HEADER_OVERFLOW"
        ? [431, "request headers too large"]
        : [400, `malformed HTTP request${error.code ? ` (${error.code})` : ""}: the request line or a header has characters HTTP does not allow`];
  const body = JSON.stringify({ error: reason });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}

/** The path of a request, without its query string. */
export function pathOf(request: FastifyRequest): string {
  const q = request.url.indexOf("?");
  return q === -1 ? request.url : request.url.slice(0, q);
}

/**
 * A keeper's app. Routes as in express: paths match case-insensitively and with or without a trailing
 * slash, and the query is parsed by node's querystring (a repeated key gives an array).
 */
export function createApp(options: AppOptions): App {
  const { logger, front } = options;
  const app = Fastify({
    logger: false,
    bodyLimit: parseByteSize(options.bodyLimit ?? "1mb"),
    // Malformed requests the router or node's parser refuse get a JSON reason too, as every other refusal.
    frameworkErrors: (error, request, reply) => {
      const status = error.code === "FST_ERR_MAX_PARAM_LENGTH" ? 414 : 400;
      const reason =
        error.code === "FST_ERR_BAD_URL"
          ? "malformed URL: the path is not valid percent-encoded UTF-8"
          : error.code === "FST_ERR_MAX_PARAM_LENGTH"
            ? `a path parameter is longer than ${MAX_PARAM_LENGTH} characters`
            : `malformed request: ${error.message}`;
      logger.debug({ subsystem: "Http", status, reason, code: error.code }, "request refused");
      (reply as FastifyReply).code(status).send({ error: reason });
    },
    clientErrorHandler: answerClientError,
    ...(front
      ? {
          serverFactory: (handler: (req: IncomingMessage, res: ServerResponse) => void) =>
            createServer((req, res) => {
              if (!front(req, res)) handler(req, res);
            }),
        }
      : {}),
    routerOptions: {
      maxParamLength: MAX_PARAM_LENGTH,
      ignoreTrailingSlash: true,
      caseSensitive: false,
      querystringParser: (text) => querystring.parse(text),
    },
  });
  app.decorateRequest("signer", "");
  app.decorateRequest("rawBody", null);

  // One parser for every content type: keep the bytes for the signature; parse them when they say JSON.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (request, body, done) => {
    const bytes = body as Buffer;
    request.rawBody = bytes;
    if (bytes.length > 0 && (request.headers["content-type"] ?? "").includes("json")) {
      try {
        done(null, parseJsonBody(bytes));
      } catch (error) {
        done(error as HttpError, undefined);
      }
      return;
    }
    done(null, undefined);
  });

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: `no route ${request.method} ${pathOf(request)}` });
  });

  app.setErrorHandler((error, request, reply) => {
    const e = error as { statusCode?: number; code?: string; message?: string };
    let status = 500;
    let message = "internal error";
    if (error instanceof HttpError || error instanceof AuthError) {
      status = error.status;
      message = error.message;
    } else if (e.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      status = 413;
      message = "body too large";
    } else if (typeof e.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500) {
      status = e.statusCode;
      message = e.message ?? "bad request";
    }
    if (status >= 500) logger.error({ subsystem: "Http", err: e.message, path: pathOf(request) }, "request failed");
    else logger.debug({ subsystem: "Http", status, reason: message, path: pathOf(request), signer: request.signer || undefined }, "request refused");
    reply.code(status).send({ error: message });
  });

  app.get("/health", async () => ({ status: "ok", ...(options.health ? await options.health() : {}) }));
  app.get("/metrics", async (_request, reply) => {
    reply.type(options.metrics.registry.contentType);
    return options.metrics.registry.metrics();
  });
  return app;
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
  /**
   * Where the signer is recovered (lowercase address, null for a malformed signature): default on this
   * thread; a SignaturePool recovers in a worker thread.
   */
  recover?: Recover;
}

/**
 * A preHandler hook that verifies the request's signature (401 with a reason on failure; 503 when the
 * nonce store or the rate-limit counters cannot be reached), sets `request.signer`, then applies the
 * per-address rate limit (429). Use one instance for all the routes
 * of an app: its rate limit spans them.
 */
export function requireSignature(options: SignatureOptions): preHandlerAsyncHookHandler {
  const limiter = options.rateLimiter ?? (options.rateLimit ? new MemoryRateLimiter(options.rateLimit) : undefined);
  const { recover, nonces } = options;
  return async function verifySignature(request) {
    const url = request.url;
    const q = url.indexOf("?");
    const headers = request.headers;
    const claim = readClaim(
      {
        method: request.method,
        path: q === -1 ? url : url.slice(0, q),
        query: q === -1 ? "" : url.slice(q + 1),
        body: request.rawBody ?? EMPTY_BODY,
        header: (name) => headers[name] as string | undefined,
      },
      options,
    );
    const recovered = recover ? await recover(claim.text, claim.signature, claim.address) : checkMessageSigner(claim.text, claim.signature, claim.address);
    const signer = await acceptClaim(claim, recovered, nonces);
    request.signer = signer;
    if (!limiter) return;
    let allowed: boolean;
    try {
      allowed = await limiter.hit(signer.toLowerCase());
    } catch (error) {
      throw new HttpError(503, `rate limit counters unavailable, try again later: ${(error as Error).message}`);
    }
    if (!allowed) throw new HttpError(429, `rate limit: more than ${limiter.limit.max} requests in ${limiter.limit.windowMs} ms`);
  };
}

/** Starts listening; resolves to the bound node:http server (for its address). */
export async function listen(app: App, port: number, host: string): Promise<Server> {
  await app.listen({ port, host });
  return app.server;
}

/**
 * Stops accepting and closes the app. Requests in flight get `graceMs` to finish (default 0: their
 * connections are dropped at once); idle keep-alive connections are closed right away.
 */
export async function closeServer(app: App, graceMs = 0): Promise<void> {
  const dropAll = () => app.server.closeAllConnections();
  const timer = graceMs > 0 ? setTimeout(dropAll, graceMs) : undefined;
  timer?.unref();
  const closing = app.close();
  if (graceMs <= 0) dropAll();
  try {
    await closing;
  } finally {
    if (timer) clearTimeout(timer);
  }
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
