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
 * `test/keepers/signing.test.ts` checks both give the same address. The Keccak-256 hashes around it (the
 * EIP-191 digest of the text, the address from the public key) use the native `keccak` binding from the
 * same authors: through ethers (pure JS) they cost more than the recovery itself (~70 µs and ~10 µs against
 * ~65 µs, measured with `node --cpu-prof`). Checksummed addresses come from ethers' `getAddress`, cached:
 * a keeper hears from the same few thousand addresses over and over. For the same reason a signer whose
 * key an earlier recovery learned is verified against that key (`checkMessageSigner`, recover.ts).
 */
import { hash, randomBytes } from "node:crypto";
import { type Signer, getAddress } from "ethers";
import { checkMessageSigner, eip191Digest, lowerAddressOf, recoverAddressLower, recoverMessageAddress } from "./recover.js";

export { checkMessageSigner, eip191Digest, recoverAddressLower, recoverMessageAddress };

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
  if (query === "") return "";
  const params = new URLSearchParams(query);
  const pairs = [...params.entries()].map(([k, v]) => [encodeURIComponent(k), encodeURIComponent(v)] as const);
  pairs.sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0) : a[0] < b[0] ? -1 : 1));
  return pairs.map(([k, v]) => `${k}=${v}`).join("&");
}

/** SHA-256 of `data`, hex (node:crypto's one-shot `hash`: no Hash object, ~0.2 against ~0.6 µs a body). */
export function sha256Hex(data: Uint8Array | string): string {
  return hash("sha256", data, "hex");
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

/** Largest number of checksummed addresses remembered (~150 bytes each). */
const CHECKSUM_CACHE_SIZE = 65_536;
const checksums = new Map<string, string>();

/**
 * `ethers.getAddress(raw)` for a request parameter, null where ethers would throw (not an address, or a
 * mixed-case one with a wrong checksum). The usual 0x form is answered from the checksum cache.
 */
export function parseAddress(raw: string): string | null {
  if (ADDRESS_PATTERN.test(raw)) {
    const checksummed = checksumAddress(raw.toLowerCase());
    const mixedCase = /[a-f]/.test(raw.slice(2)) && /[A-F]/.test(raw.slice(2));
    return !mixedCase || raw === checksummed ? checksummed : null;
  }
  try {
    return getAddress(raw);
  } catch {
    return null;
  }
}

/** EIP-55 checksummed form of a lowercase 0x address (ethers' `getAddress`, remembered). */
export function checksumAddress(lower: string): string {
  let checksummed = checksums.get(lower);
  if (checksummed === undefined) {
    checksummed = getAddress(lower);
    if (checksums.size >= CHECKSUM_CACHE_SIZE) checksums.delete(checksums.keys().next().value!);
    checksums.set(lower, checksummed);
  }
  return checksummed;
}

/** Checksummed address of an uncompressed (65-byte) secp256k1 public key. */
export function addressOfPublicKey(publicKey: Uint8Array): string {
  return checksumAddress(lowerAddressOf(publicKey));
}

/** Checksummed address that signed `digest`, or null for a malformed signature (never throws). */
export function recoverAddressFast(digest: Uint8Array, signature: string): string | null {
  const lower = recoverAddressLower(digest, signature);
  return lower === null ? null : checksumAddress(lower);
}

/** EIP-191 (personal_sign) recovery of `message`'s signer, checksummed, native path. */
export function recoverMessageSigner(message: string, signature: string): string | null {
  return recoverAddressFast(eip191Digest(message), signature);
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
 * Remembers used nonces until they expire; `use` returns false for an (address, nonce, expiry) seen before.
 * The expiry is the signed timestamp plus the allowed skew: a replayed request repeats all three.
 */
export interface NonceStore {
  /** Embedded stores answer at once; a shared one (Redis) answers asynchronously and rejects when unreachable. */
  use(address: string, nonce: string, expiresAt: number): boolean | Promise<boolean>;
  /**
   * The same, for a server taking many requests at once: may write the nonces of concurrent requests
   * together, and resolves once this one is stored.
   */
  useSoon?(address: string, nonce: string, expiresAt: number): Promise<boolean>;
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
 * What a signed request claims, its headers checked for form and freshness, with the canonical text its
 * signature must cover. `verifyRequest` recovers the signer on the calling thread; the HTTP layer may
 * recover it elsewhere (a worker, see signature-pool.ts) and finish with `acceptClaim`.
 */
export interface SignedClaim {
  address: string;
  timestamp: number;
  nonce: string;
  signature: string;
  /** The canonical request text (what was signed, EIP-191). */
  text: string;
  /** The nonce is remembered until timestamp + maxSkew. */
  maxSkew: number;
}

/** Checks a request's signature headers and timestamp; throws an AuthError (401). */
export function readClaim(request: IncomingRequest, options: Omit<VerifyOptions, "nonces">): SignedClaim {
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
  return { address, timestamp, nonce, signature, text, maxSkew };
}

/**
 * The checksummed signer of a claim, given the address recovered from its text (lowercase, or null when
 * the signature is malformed); throws an AuthError (401) when it is not the claimed address.
 */
function signerOfClaim(claim: SignedClaim, recovered: string | null): string {
  if (recovered === null || recovered !== claim.address.toLowerCase()) {
    throw new AuthError(401, "signature does not match the request (signer, chain, audience, method, path, query, body, time or nonce)");
  }
  return checksumAddress(recovered);
}

/** The refusal of a request whose nonce was used before. */
function replayError(): AuthError {
  return new AuthError(401, "nonce already used: replayed request");
}

/**
 * Finishes a check with the signer recovered from the claim's text: it must be the claimed address and the
 * nonce fresh. Returns the checksummed signer or throws an AuthError (401).
 */
export async function acceptClaim(claim: SignedClaim, recovered: string | null, nonces: NonceStore): Promise<string> {
  const signer = signerOfClaim(claim, recovered);
  // Only after the signature checks out: a forged request must not burn someone else's nonce.
  if (!(await useNonce(nonces, signer, claim))) throw replayError();
  return signer;
}

/**
 * Records the claim's nonce for `signer`: whether it was fresh. Rejects with an AuthError (503) when the
 * store cannot answer: without it a replay cannot be told from a first use, so nothing is accepted.
 */
async function useNonce(nonces: NonceStore, signer: string, claim: SignedClaim): Promise<boolean> {
  const expiresAt = claim.timestamp + claim.maxSkew;
  try {
    return nonces.useSoon ? await nonces.useSoon(signer, claim.nonce, expiresAt) : await nonces.use(signer, claim.nonce, expiresAt);
  } catch (error) {
    throw new AuthError(503, `replay protection unavailable, try again later: ${(error as Error).message}`);
  }
}

/**
 * The lowercase address that signed `text` (EIP-191), or null for a malformed signature. Given the address
 * the request claims, a signer seen before is checked against its known key instead (`checkMessageSigner`):
 * the claimed address when the signature verifies, null when it cannot be that signer's.
 */
export type Recover = (text: string, signature: string, claimed?: string) => Promise<string | null> | string | null;

/** Checks a signed request on the calling thread: the signer's checksummed address, or an AuthError. */
export async function verifyRequest(request: IncomingRequest, options: VerifyOptions): Promise<string> {
  const claim = readClaim(request, options);
  return acceptClaim(claim, checkMessageSigner(claim.text, claim.signature, claim.address), options.nonces);
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
    const key = `${expiresAt}:${address.toLowerCase()}:${nonce}`;
    if (this.seen.has(key)) return false;
    this.seen.set(key, expiresAt);
    return true;
  }
}
