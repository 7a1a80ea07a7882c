/**
 * Signature recovery without ethers: the EIP-191 digest (native Keccak), libsecp256k1 `ecdsaRecover` and the
 * address of the public key, all lowercase. Small on purpose: the signature workers (signature-pool.ts)
 * load only this. signing.ts adds the checksummed forms.
 */
import createKeccak from "keccak";
import secp256k1 from "secp256k1";

const SIGNATURE_PATTERN = /^0x[0-9a-fA-F]{130}$/;

export function keccak256(data: Uint8Array): Buffer {
  return createKeccak("keccak256").update(Buffer.from(data.buffer, data.byteOffset, data.byteLength)).digest();
}

const EIP191_PREFIX = "\x19Ethereum Signed Message:\n";

/** The EIP-191 (personal_sign) digest of `message`: what `ethers.hashMessage` computes, as bytes. */
export function eip191Digest(message: string | Uint8Array): Buffer {
  const bytes = typeof message === "string" ? Buffer.from(message, "utf8") : Buffer.from(message);
  return keccak256(Buffer.concat([Buffer.from(`${EIP191_PREFIX}${bytes.length}`, "utf8"), bytes]));
}

/** Lowercase address of an uncompressed (65-byte, 0x04-prefixed) secp256k1 public key. */
export function lowerAddressOf(publicKey: Uint8Array): string {
  return `0x${keccak256(publicKey.subarray(1)).toString("hex", 12)}`;
}

/**
 * Lowercase address that signed `digest` (32 bytes) with a 65-byte r‖s‖v signature (0x hex), using native
 * libsecp256k1. Null for a malformed signature.
 */
export function recoverAddressLower(digest: Uint8Array, signature: string): string | null {
  if (!SIGNATURE_PATTERN.test(signature)) return null;
  const sig = Buffer.from(signature.slice(2), "hex");
  let v = sig[64];
  if (v >= 27) v -= 27;
  if (v !== 0 && v !== 1) return null;
  try {
    return lowerAddressOf(secp256k1.ecdsaRecover(sig.subarray(0, 64), v, digest, false));
  } catch {
    return null;
  }
}

/** EIP-191 (personal_sign) recovery of `message`'s signer, lowercase, native path. */
export function recoverMessageAddress(message: string, signature: string): string | null {
  return recoverAddressLower(eip191Digest(message), signature);
}
