/**
 * Signature recovery without ethers: the EIP-191 digest (native Keccak), libsecp256k1 `ecdsaRecover` and the
 * address of the public key, all lowercase. Small on purpose: the signature workers (signature-pool.ts)
 * load only this. signing.ts adds the checksummed forms.
 *
 * Keccak-256 runs on one reused native sponge of the `keccak` package (its N-API addon, loaded the way the
 * package loads it), absorbing the EIP-191 prefix and the message in turn. The package's own API builds a
 * stream (readable-stream Transform) per hash and needs the two parts concatenated: ~15 µs and ~4.6 KB of
 * garbage more per recovery (a microbenchmark over 20,000 distinct requests: ~93 against ~78 µs a recovery;
 * under the discovery benchmark the worker scavenged every ~230 ms before). If the addon cannot be loaded
 * the package's API is used (same digests, `nativeSponge` false).
 */
import { createRequire } from "node:module";
import path from "node:path";
import createKeccak from "keccak";
import secp256k1 from "secp256k1";

const SIGNATURE_PATTERN = /^0x[0-9a-fA-F]{130}$/;

/** The `keccak` package's native sponge (KeccakState of its addon). */
interface KeccakSponge {
  initialize(rate: number, capacity: number): void;
  absorb(data: Buffer): void;
  absorbLastFewBits(bits: number): void;
  squeeze(length: number): Buffer;
}

/** Keccak-256: rate 1088 bits, capacity 512, the original (pre-SHA-3) padding suffix 0x01. */
const RATE = 1088;
const CAPACITY = 512;
const KECCAK_SUFFIX = 0x01;

function loadSponge(): KeccakSponge | undefined {
  try {
    const manifest = createRequire(import.meta.url).resolve("keccak/package.json");
    // node-gyp-build as the package itself requires it (its own dependency), on the package's directory.
    const KeccakState = createRequire(manifest)("node-gyp-build")(path.dirname(manifest)) as new () => KeccakSponge;
    if (typeof KeccakState !== "function") return undefined;
    return new KeccakState();
  } catch {
    return undefined;
  }
}

const sponge = loadSponge();

/**
 * Keccak-256 of the parts, in order (as of their concatenation), on the native sponge when it loaded;
 * `native` false takes the `keccak` package's stream API (the fallback, also for the tests).
 */
export function keccakOf(parts: readonly Buffer[], native = true): Buffer {
  if (sponge === undefined || !native) {
    const hash = createKeccak("keccak256");
    for (const part of parts) hash.update(part);
    return hash.digest();
  }
  // One thread uses the sponge at a time and nothing yields between initialize and squeeze.
  sponge.initialize(RATE, CAPACITY);
  for (const part of parts) sponge.absorb(part);
  sponge.absorbLastFewBits(KECCAK_SUFFIX);
  return sponge.squeeze(32);
}

/** Whether hashing runs on the native sponge (false: the `keccak` package's stream API). */
export const nativeSponge = sponge !== undefined;

export function keccak256(data: Uint8Array): Buffer {
  return keccakOf([Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

const EIP191_PREFIX = "\x19Ethereum Signed Message:\n";

/** The EIP-191 (personal_sign) digest of `message`: what `ethers.hashMessage` computes, as bytes. */
export function eip191Digest(message: string | Uint8Array): Buffer {
  const bytes = typeof message === "string" ? Buffer.from(message, "utf8") : Buffer.from(message.buffer, message.byteOffset, message.byteLength);
  return keccakOf([Buffer.from(`${EIP191_PREFIX}${bytes.length}`, "latin1"), bytes]);
}

/** Lowercase address of an uncompressed (65-byte, 0x04-prefixed) secp256k1 public key. */
export function lowerAddressOf(publicKey: Uint8Array): string {
  return `0x${keccakOf([Buffer.from(publicKey.buffer, publicKey.byteOffset + 1, publicKey.byteLength - 1)]).toString("hex", 12)}`;
}

/** A 65-byte r‖s‖v signature (0x hex) split for libsecp256k1: null when malformed (v other than 0, 1, 27, 28). */
function parseSignature(signature: string): { rs: Buffer; v: number } | null {
  if (!SIGNATURE_PATTERN.test(signature)) return null;
  const sig = Buffer.from(signature.slice(2), "hex");
  let v = sig[64];
  if (v >= 27) v -= 27;
  if (v !== 0 && v !== 1) return null;
  return { rs: sig.subarray(0, 64), v };
}

/** The uncompressed public key that signed `digest`, or null (malformed, or no such key). */
function recoverKey(digest: Uint8Array, signature: { rs: Buffer; v: number }): Uint8Array | null {
  try {
    return secp256k1.ecdsaRecover(signature.rs, signature.v, digest, false);
  } catch {
    return null;
  }
}

/**
 * Lowercase address that signed `digest` (32 bytes) with a 65-byte r‖s‖v signature (0x hex), using native
 * libsecp256k1. Null for a malformed signature.
 */
export function recoverAddressLower(digest: Uint8Array, signature: string): string | null {
  const parsed = parseSignature(signature);
  const key = parsed === null ? null : recoverKey(digest, parsed);
  return key === null ? null : lowerAddressOf(key);
}

/** EIP-191 (personal_sign) recovery of `message`'s signer, lowercase, native path. */
export function recoverMessageAddress(message: string, signature: string): string | null {
  return recoverAddressLower(eip191Digest(message), signature);
}

/** Most public keys `checkMessageSigner` remembers (~200 bytes each); the oldest is forgotten beyond. */
export const KNOWN_SIGNERS = 65_536;

/** Public keys of signers recovered before, by lowercase address, oldest first. */
const knownSigners = new Map<string, Uint8Array>();

/** How many signatures `checkMessageSigner` checked on this thread by verification against a known key, and by recovery. */
export const signerChecks = { recovered: 0, verified: 0 };

/** n / 2 of secp256k1, big-endian: an s above it is "high" (ecdsaVerify refuses it, recovery does not). */
const HALF_ORDER = Buffer.from("7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0", "hex");

/**
 * The signer of `message` (EIP-191) that a request claims to be `claimed` (an address, any case): the
 * lowercase address recovered from the signature, null for a malformed one. A signer whose key an earlier
 * recovery learned (a recovery that named the claimed address itself: nobody else's signature teaches
 * anything about an address) is checked with `ecdsaVerify` against that key instead (~51 µs against ~62 µs
 * for `ecdsaRecover` on these machines, and no Keccak of the key): the answer is `claimed` when the
 * signature verifies, and null when it does not and its s is low, since then no v recovers the claimed key
 * (a forged request costs one verification, not two checks). A high-s signature, which `ecdsaVerify`
 * refuses and recovery takes, is recovered as before.
 *
 * The differences from recovery, both for a known signer only and both harmless: verification does not
 * use v, so the signer's signature with v flipped (27 ↔ 28) is accepted too; and it accepts the rare
 * signature whose R has x = r + n, which v ∈ {27, 28} cannot name. Either is the signer's own (r, s) over
 * the same request, nonce included: it carries nothing the signer did not sign, and the nonce check
 * refuses it as a replay of the original (docs/SECURITY.md §3.1).
 */
export function checkMessageSigner(message: string, signature: string, claimed: string): string | null {
  const parsed = parseSignature(signature);
  if (parsed === null) return null;
  const digest = eip191Digest(message);
  const claimedLower = claimed.toLowerCase();
  const known = knownSigners.get(claimedLower);
  if (known !== undefined) {
    signerChecks.verified++;
    try {
      if (secp256k1.ecdsaVerify(parsed.rs, digest, known)) return claimedLower;
    } catch {
      return null; // r or s zero or out of range: recovery refuses it too
    }
    if (parsed.rs.compare(HALF_ORDER, 0, 32, 32, 64) <= 0) return null;
  }
  signerChecks.recovered++;
  const key = recoverKey(digest, parsed);
  if (key === null) return null;
  const address = lowerAddressOf(key);
  if (address === claimedLower && known === undefined) {
    if (knownSigners.size >= KNOWN_SIGNERS) knownSigners.delete(knownSigners.keys().next().value!);
    knownSigners.set(address, key);
  }
  return address;
}

/** `checkMessageSigner` when the request claims a signer (`claimed` not ""), else `recoverMessageAddress`. */
export function signerOf(message: string, signature: string, claimed: string): string | null {
  return claimed === "" ? recoverMessageAddress(message, signature) : checkMessageSigner(message, signature, claimed);
}
