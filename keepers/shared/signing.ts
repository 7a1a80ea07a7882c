/**
 * Signed HTTP between keepers.
 *
 * Every request carries four headers: the signer's address, a unix timestamp, a random nonce and an
 * EIP-191 signature over a canonical text that binds the chain id, the receiving keeper (audience), the
 * method, the path, the canonical query, the SHA-256 of the raw body, the timestamp and the nonce. A
 * server refuses a stale or future timestamp and any (address, nonce) it has seen before, so a captured
 * request, GET included, cannot be replayed — Prime's signed GETs covered neither query nor nonce.
 *
 * Verification recovers the signer with the native libsecp256k1 binding (`secp256k1` npm package):
 * ~14,500 recoveries/s per core here against ~600/s for ethers' pure-JS `verifyMessage` (TOOLCHAIN.md);
 * `test/keepers/signing.test.ts` checks both give the same address.
 */
import { createHash, randomBytes } from "node:crypto";
import { type Signer, getAddress, getBytes, hashMessage, keccak256 } from "ethers";
import secp256k1 from "secp256k1";

export const HEADER_ADDRESS = "x-cn-address";
export const HEADER_TIMESTAMP = "x-cn-timestamp";
export const HEADER_NONCE = "x-cn-nonce";
export const HEADER_SIGNATURE = "x-cn-signature";

const NONCE_PATTERN = /^[0-9a-f]{32}$/;
const SIGNATURE_PATTERN = /^0x[0-9a-fA-F]{130}$/;
const ADDRESS_PATTERN = /^0x[0-9a-fA-F]{40}$/;

export interface RequestParts {
  chainId: bigint | number;
  /** Who the request is for: the receiving keeper's address, or "discovery". */
  audience: string;
  method: string;
  /** Path without the query string. */
  path: string;
  /** Query string without "?", in any order. */
  query: string;
  body: Uint8Array | string;
  timestamp: number;
  nonce: string;
}

/** Query parameters sorted by key then value, each key=value percent-encoded: order-independent. */
export function canonicalQuery(query: string): string {
  const params = new URLSearchParams(query);
  const pairs = [...params.entries()].map(([k, v]) => [encodeURIComponent(k), encodeURIComponent(v)] as const);
  pairs.sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0) : a[0] < b[0] ? -1 : 1));
  return pairs.map(([k, v]) => `${k}=${v}`).join("&");
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** The exact text that is signed. */
export function canonicalRequest(parts: RequestParts): string {
  return [
    "computenet-request-v1",
    `chain:${BigInt(parts.chainId)}`,
    `audience:${parts.audience.toLowerCase()}`,
    `method:${parts.method.toUpperCase()}`,
    `path:${parts.path}`,
    `query:${canonicalQuery(parts.query)}`,
    `body-sha256:${sha256Hex(parts.body)}`,
    `timestamp:${parts.timestamp}`,
    `nonce:${parts.nonce}`,
  ].join("\n");
}

export function newNonce(): string {
  return randomBytes(16).toString("hex");
}

/** Signs a request; returns the four headers to send. */
export async function signRequest(
  signer: Signer,
  parts: Omit<RequestParts, "timestamp" | "nonce"> & { timestamp?: number; nonce?: string },
): Promise<Record<string, string>> {
  const timestamp = parts.timestamp ?? Math.floor(Date.now() / 1000);
  const nonce = parts.nonce ?? newNonce();
  const signature = await signer.signMessage(canonicalRequest({ ...parts, timestamp, nonce }));
  return {
    [HEADER_ADDRESS]: await signer.getAddress(),
    [HEADER_TIMESTAMP]: String(timestamp),
    [HEADER_NONCE]: nonce,
    [HEADER_SIGNATURE]: signature,
  };
}

/**
 * Address that signed `digest` (32 bytes) with a 65-byte r‖s‖v signature, using native libsecp256k1.
 * Returns null for a malformed signature instead of throwing.
 */
export function recoverAddressFast(digest: Uint8Array, signature: string): string | null {
  const sig = getBytes(signature);
  if (sig.length !== 65) return null;
  let v = sig[64];
  if (v >= 27) v -= 27;
  if (v !== 0 && v !== 1) return null;
  try {
    const publicKey = secp256k1.ecdsaRecover(sig.subarray(0, 64), v, digest, false);
    return getAddress(`0x${keccak256(publicKey.subarray(1)).slice(-40)}`);
  } catch {
    return null;
  }
}

/** EIP-191 (personal_sign) recovery of `message`'s signer, native path. */
export function recoverMessageSigner(message: string, signature: string): string | null {
  return recoverAddressFast(getBytes(hashMessage(message)), signature);
}

/**
 * Why a request was refused; `status` is 401 (not authenticated), 403 (authenticated, not allowed) or 503
 * (the nonce store cannot be reached: replay protection cannot be checked, so nothing is accepted).
 */
export class AuthError extends Error {
  constructor(
    readonly status: 401 | 403 | 503,
    message: string,
  ) {
    super(message);
    this.name = "AuthError";
  }
}

/**
 * Remembers (address, nonce) pairs until they expire (unix s); `use` records the pair and returns false
 * for a pair seen before, atomically. Embedded stores answer at once; a shared one (Redis) answers
 * asynchronously and rejects when it cannot be reached.
 */
export interface NonceStore {
  use(address: string, nonce: string, expiresAt: number): boolean | Promise<boolean>;
}

export interface VerifyOptions {
  chainId: bigint | number;
  audience: string;
  nonces: NonceStore;
  /** Largest accepted |now − timestamp|, seconds. */
  maxSkewSec?: number;
  now?: () => number;
}

export interface IncomingRequest {
  method: string;
  path: string;
  query: string;
  body: Uint8Array | string;
  header(name: string): string | undefined;
}

/**
 * Checks a signed request; resolves to the signer's checksummed address or rejects with an AuthError:
 * 401 for a bad or replayed request, 503 when the nonce store cannot say whether the nonce is fresh.
 */
export async function verifyRequest(request: IncomingRequest, options: VerifyOptions): Promise<string> {
  const address = request.header(HEADER_ADDRESS);
  const timestampText = request.header(HEADER_TIMESTAMP);
  const nonce = request.header(HEADER_NONCE);
  const signature = request.header(HEADER_SIGNATURE);
  if (!address || !timestampText || !nonce || !signature) {
    throw new AuthError(401, `missing signature headers (${HEADER_ADDRESS}, ${HEADER_TIMESTAMP}, ${HEADER_NONCE}, ${HEADER_SIGNATURE})`);
  }
  if (!ADDRESS_PATTERN.test(address)) throw new AuthError(401, `${HEADER_ADDRESS} is not an address`);
  if (!/^\d{1,12}$/.test(timestampText)) throw new AuthError(401, `${HEADER_TIMESTAMP} is not a unix timestamp`);
  if (!NONCE_PATTERN.test(nonce)) throw new AuthError(401, `${HEADER_NONCE} must be 32 lowercase hex characters`);
  if (!SIGNATURE_PATTERN.test(signature)) throw new AuthError(401, `${HEADER_SIGNATURE} must be a 65-byte hex signature`);

  const maxSkew = options.maxSkewSec ?? 60;
  const now = options.now?.() ?? Math.floor(Date.now() / 1000);
  const timestamp = Number(timestampText);
  if (Math.abs(now - timestamp) > maxSkew) {
    throw new AuthError(401, `stale or future timestamp: ${timestamp} is more than ${maxSkew} s from ${now}`);
  }

  const text = canonicalRequest({
    chainId: options.chainId,
    audience: options.audience,
    method: request.method,
    path: request.path,
    query: request.query,
    body: request.body,
    timestamp,
    nonce,
  });
  const signer = recoverMessageSigner(text, signature);
  if (signer === null || signer.toLowerCase() !== address.toLowerCase()) {
    throw new AuthError(401, "signature does not match the request (signer, chain, audience, method, path, query, body, time or nonce)");
  }
  // Only after the signature checks out: a forged request must not burn someone else's nonce.
  let fresh: boolean;
  try {
    fresh = await options.nonces.use(signer, nonce, timestamp + maxSkew);
  } catch (error) {
    // Without the store a replay cannot be told from a first use: refuse rather than guess.
    throw new AuthError(503, `replay protection unavailable, try again later: ${(error as Error).message}`);
  }
  if (!fresh) throw new AuthError(401, "nonce already used: replayed request");
  return signer;
}

/** In-memory NonceStore (tests, single-process tools); keepers use the SQLite one. */
export class MemoryNonceStore implements NonceStore {
  private readonly seen = new Map<string, number>();
  private lastSweep = 0;

  use(address: string, nonce: string, expiresAt: number): boolean {
    const now = Math.floor(Date.now() / 1000);
    if (now - this.lastSweep > 30) {
      for (const [key, expiry] of this.seen) if (expiry < now) this.seen.delete(key);
      this.lastSweep = now;
    }
    const key = `${address.toLowerCase()}:${nonce}`;
    if (this.seen.has(key)) return false;
    this.seen.set(key, expiresAt);
    return true;
  }
}
