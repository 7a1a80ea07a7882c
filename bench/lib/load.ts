/**
 * A bounded HTTP load client for the benchmarks, on 127.0.0.1 only.
 *
 *   runLoad(options)      drives prepared requests over keep-alive connections and reports
 *                         { count, ok, errors, perSec, p50Ms, p99Ms, maxMs }. Closed loop (default): each
 *                         connection sends its next request as soon as the previous answer arrived — the
 *                         server's maximum throughput. Open loop (`ratePerSec`): requests are due at a fixed
 *                         rate whatever the answers; a request's latency runs from the moment it was due, so
 *                         a server that falls behind shows it in the percentiles (no coordinated omission).
 *                         Always bounded: by `count` and/or `durationMs`, and by `maxInFlight` in open loop.
 *   newNodeKey()          a random secp256k1 key and its address.
 *   presign(key, parts)   a signed request the keepers' verifyRequest accepts: the same canonical text and
 *                         EIP-191 digest (keepers/shared/signing.ts), signed natively with libsecp256k1's
 *                         ecdsaSign (~20x faster than ethers' signMessage), so that thousands of requests
 *                         can be signed before the timed window. Each carries a fresh nonce: it is accepted
 *                         once, and refused as a replay after that.
 */
import { randomBytes } from "node:crypto";
import secp256k1 from "secp256k1";
import { type Socket, connect } from "node:net";
import {
  HEADER_ADDRESS,
  HEADER_NONCE,
  HEADER_SIGNATURE,
  HEADER_TIMESTAMP,
  type RequestParts,
  addressOfPublicKey,
  canonicalRequest,
  eip191Digest,
  newNonce,
} from "../../keepers/shared/signing.js";

/** A request ready to send: method, path with its query, headers and body. */
export interface PreparedRequest {
  method: string;
  /** Path and query, e.g. "/nodes/0xabc?x=1". */
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

export interface NodeKey {
  privateKey: Buffer;
  /** Checksummed address. */
  address: string;
}

export function newNodeKey(): NodeKey {
  for (;;) {
    const privateKey = randomBytes(32);
    if (!secp256k1.privateKeyVerify(privateKey)) continue;
    return { privateKey, address: addressOfPublicKey(secp256k1.publicKeyCreate(privateKey, false)) };
  }
}

export interface PresignParts {
  chainId: bigint | number;
  audience: string;
  method: string;
  /** Path without the query. */
  path: string;
  /** Query without "?" (default none). */
  query?: string;
  /** A JSON value (sent as application/json) or raw bytes (sent as application/octet-stream). */
  body?: unknown;
  /** Unix seconds (default now). */
  timestamp?: number;
  nonce?: string;
}

/** Signs a request with `key` the way SignedClient does (headers, canonical text, EIP-191). */
export function presign(key: NodeKey, parts: PresignParts): PreparedRequest {
  const body =
    parts.body === undefined ? undefined : Buffer.isBuffer(parts.body) ? parts.body : Buffer.from(JSON.stringify(parts.body), "utf8");
  const signed: RequestParts = {
    chainId: parts.chainId,
    audience: parts.audience,
    method: parts.method,
    path: parts.path,
    query: parts.query ?? "",
    body: body ?? "",
    timestamp: parts.timestamp ?? Math.floor(Date.now() / 1000),
    nonce: parts.nonce ?? newNonce(),
  };
  const { signature, recid } = secp256k1.ecdsaSign(eip191Digest(canonicalRequest(signed)), key.privateKey);
  const headers: Record<string, string> = {
    [HEADER_ADDRESS]: key.address,
    [HEADER_TIMESTAMP]: String(signed.timestamp),
    [HEADER_NONCE]: signed.nonce,
    [HEADER_SIGNATURE]: `0x${Buffer.from(signature).toString("hex")}${(27 + recid).toString(16)}`,
  };
  if (body !== undefined) headers["content-type"] = Buffer.isBuffer(parts.body) ? "application/octet-stream" : "application/json";
  return { method: parts.method, path: parts.query ? `${parts.path}?${parts.query}` : parts.path, headers, body };
}

export interface LoadOptions {
  /** Base URL of the server: http://127.0.0.1:<port> (nothing else is accepted). */
  url: string;
  /** Prepared requests, sent in order (each once), or a factory called with the request's index. */
  requests: PreparedRequest[] | ((index: number) => PreparedRequest);
  /** Keep-alive connections (default 32). */
  connections?: number;
  /** Stop after this many requests (default: the number of prepared requests, if an array). */
  count?: number;
  /** Stop issuing after this long (ms). At least one of count / durationMs bounds a run. */
  durationMs?: number;
  /** Open loop: requests due at this fixed rate (per second). Closed loop when absent. */
  ratePerSec?: number;
  /** Open loop: requests due while this many are unanswered are not sent and count as errors (default 64 × connections). */
  maxInFlight?: number;
  /** Which statuses count as ok (default 2xx). */
  isOk?: (status: number) => boolean;
  /** Per-request timeout, ms (default 10 s). */
  timeoutMs?: number;
}

export interface LoadResult {
  /** Requests answered or failed (not those never sent). */
  count: number;
  ok: number;
  /** Non-ok statuses, transport errors, and (open loop) requests not sent because too many were in flight. */
  errors: number;
  /** Answered requests per second over the run (first due request to last answer). */
  perSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  durationMs: number;
  /** Count of answers by status ("error" for transport errors, "skipped" for open-loop drops). */
  statuses: Record<string, number>;
  /** CPU the load client's process used meanwhile, in % of one core (it shares the machine with the server). */
  clientCpuPct: number;
}

/** A request serialized once: request line, headers and body as the bytes written to the socket. */
function serialize(request: PreparedRequest, host: string): Buffer {
  let head = `${request.method} ${request.path} HTTP/1.1\r\nhost: ${host}\r\nconnection: keep-alive\r\n`;
  for (const [name, value] of Object.entries(request.headers)) head += `${name}: ${value}\r\n`;
  const body = request.body;
  if (body !== undefined && body.length > 0) head += `content-length: ${body.length}\r\n`;
  head += "\r\n";
  return body !== undefined && body.length > 0 ? Buffer.concat([Buffer.from(head, "latin1"), body]) : Buffer.from(head, "latin1");
}

const CRLFCRLF = Buffer.from("\r\n\r\n");
const LARGEST_HEAD = 64 * 1024;

/**
 * One keep-alive HTTP/1.1 connection sending one request at a time (no pipelining): writes the prepared
 * bytes, reads the answer's head and a Content-Length or chunked body, reports the status. Anything else
 * (a close mid-answer, a timeout, a malformed head) fails the request and the connection is replaced.
 */
class Connection {
  private socket: Socket | undefined;
  private buffered: Buffer = Buffer.alloc(0);
  private waiting: { resolve: (status: number) => void; reject: (error: Error) => void; timer: NodeJS.Timeout } | undefined;

  constructor(
    private readonly port: number,
    private readonly timeoutMs: number,
  ) {}

  send(bytes: Buffer): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      this.waiting = { resolve, reject, timer };
      this.ensureSocket().write(bytes);
    });
  }

  close(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }

  private ensureSocket(): Socket {
    if (this.socket) return this.socket;
    const socket = connect({ host: "127.0.0.1", port: this.port });
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => {
      this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
      this.parse();
    });
    const lost = (error?: Error) => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.buffered = Buffer.alloc(0);
      if (this.waiting) this.fail(error ?? new Error("connection closed before the answer"));
    };
    socket.on("error", lost);
    socket.on("close", () => lost());
    this.socket = socket;
    return socket;
  }

  /** Completes the waiting request once its whole answer is buffered. */
  private parse(): void {
    const data = this.buffered;
    const end = data.indexOf(CRLFCRLF);
    if (end === -1) {
      if (data.length > LARGEST_HEAD) this.fail(new Error("answer head too large"));
      return;
    }
    const head = data.toString("latin1", 0, end);
    const status = Number(head.slice(9, 12));
    if (!head.startsWith("HTTP/1.1 ") || !(status >= 100 && status < 600)) return this.fail(new Error(`malformed answer: ${head.slice(0, 40)}`));
    const lower = head.toLowerCase();
    const length = /\r\ncontent-length: *([0-9]+)/.exec(lower);
    let consumed: number;
    if (length) {
      consumed = end + 4 + Number(length[1]);
      if (data.length < consumed) return;
    } else if (lower.includes("\r\ntransfer-encoding: chunked")) {
      const last = data.indexOf("\r\n0\r\n\r\n", end + 2);
      if (last === -1) return;
      consumed = last + 7;
    } else {
      consumed = end + 4;
    }
    this.buffered = data.length === consumed ? Buffer.alloc(0) : data.subarray(consumed);
    const waiting = this.waiting;
    this.waiting = undefined;
    if (!waiting) return this.fail(new Error("answer without a request"));
    clearTimeout(waiting.timer);
    if (/\r\nconnection: *close/.test(lower)) this.close();
    waiting.resolve(status);
  }

  private fail(error: Error): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    this.close();
    this.buffered = Buffer.alloc(0);
    if (waiting) {
      clearTimeout(waiting.timer);
      waiting.reject(error);
    }
  }
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const base = new URL(options.url);
  if (base.hostname !== "127.0.0.1" || base.protocol !== "http:") throw new Error(`runLoad targets http://127.0.0.1 only, not ${base.origin}`);
  const port = Number(base.port || 80);
  const prepared = options.requests;
  const count = options.count ?? (Array.isArray(prepared) ? prepared.length : undefined);
  if (count === undefined && options.durationMs === undefined) throw new Error("runLoad needs count or durationMs: a run is always bounded");
  const limit = Array.isArray(prepared) ? Math.min(count ?? prepared.length, prepared.length) : (count ?? Number.MAX_SAFE_INTEGER);
  const connections = options.connections ?? 32;
  const isOk = options.isOk ?? ((status: number) => status >= 200 && status < 300);
  const timeoutMs = options.timeoutMs ?? 10_000;
  const host = base.host;
  // Prepared arrays are serialized before the clock starts: the timed run writes bytes, nothing more.
  const bytes = Array.isArray(prepared) ? prepared.slice(0, limit).map((r) => serialize(r, host)) : undefined;
  const requestAt = (i: number): Buffer => (bytes ? bytes[i] : serialize((prepared as (index: number) => PreparedRequest)(i), host));
  const pool = Array.from({ length: connections }, () => new Connection(port, timeoutMs));

  // Latencies in ms, one per finished request; bounded by `limit` or grown in chunks for timed runs.
  let latencies = new Float64Array(Math.min(limit, 1 << 20));
  let finished = 0;
  let ok = 0;
  const statuses: Record<string, number> = {};
  const record = (status: string, good: boolean, ms: number) => {
    if (finished === latencies.length) {
      const grown = new Float64Array(latencies.length * 2);
      grown.set(latencies);
      latencies = grown;
    }
    latencies[finished++] = ms;
    if (good) ok++;
    statuses[status] = (statuses[status] ?? 0) + 1;
  };
  const send = async (connection: Connection, request: Buffer, dueAt: number): Promise<void> => {
    try {
      const status = await connection.send(request);
      record(String(status), isOk(status), performance.now() - dueAt);
    } catch {
      record("error", false, performance.now() - dueAt);
    }
  };

  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const deadline = options.durationMs === undefined ? Number.POSITIVE_INFINITY : started + options.durationMs;
  let issued = 0;
  let skipped = 0;
  try {
    if (options.ratePerSec === undefined) {
      // Closed loop: one sender per connection.
      const sender = async (connection: Connection) => {
        while (issued < limit && performance.now() < deadline) {
          const request = requestAt(issued++);
          await send(connection, request, performance.now());
        }
      };
      await Promise.all(pool.map(sender));
    } else {
      // Open loop: every tick, queue whatever is due by now; idle connections take the oldest queued request.
      const intervalMs = 1000 / options.ratePerSec;
      const maxInFlight = options.maxInFlight ?? 64 * connections;
      const queue: Array<{ request: Buffer; dueAt: number }> = [];
      let head = 0;
      let inFlight = 0;
      const idle = [...pool];
      let drained: (() => void) | undefined;
      const pump = () => {
        while (idle.length > 0 && head < queue.length) {
          const connection = idle.pop()!;
          const { request, dueAt } = queue[head];
          queue[head++] = undefined as never;
          void send(connection, request, dueAt).finally(() => {
            inFlight--;
            idle.push(connection);
            pump();
            if (inFlight === 0) drained?.();
          });
        }
      };
      while (issued < limit) {
        const now = performance.now();
        if (now >= deadline) break;
        const due = Math.min(limit, Math.floor((now - started) / intervalMs) + 1);
        while (issued < due) {
          const dueAt = started + issued * intervalMs;
          const request = requestAt(issued++);
          if (inFlight >= maxInFlight) {
            skipped++;
            continue;
          }
          inFlight++;
          queue.push({ request, dueAt });
        }
        pump();
        const next = started + issued * intervalMs;
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(next, deadline) - performance.now())));
      }
      if (inFlight > 0) await new Promise<void>((resolve) => (drained = resolve));
    }
  } finally {
    for (const connection of pool) connection.close();
  }
  const durationMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  if (skipped > 0) statuses.skipped = skipped;

  const sorted = latencies.subarray(0, finished).sort();
  const at = (q: number) => (finished === 0 ? 0 : sorted[Math.min(finished - 1, Math.ceil(q * finished) - 1)]);
  const round = (x: number) => Math.round(x * 100) / 100;
  return {
    count: finished,
    ok,
    errors: finished - ok + skipped,
    perSec: Math.round((finished / durationMs) * 1000),
    p50Ms: round(at(0.5)),
    p99Ms: round(at(0.99)),
    maxMs: round(finished === 0 ? 0 : sorted[finished - 1]),
    durationMs: Math.round(durationMs),
    statuses,
    clientCpuPct: Math.round(((cpu.user + cpu.system) / 1000 / durationMs) * 100),
  };
}
