/**
 * Signed requests between keepers: what the signature covers, and that the native recovery agrees
 * with ethers' reference implementation.
 */
import { mkdtempSync, rmSync } from "node:fs";
import Database from "better-sqlite3";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "chai";
import { type Signer, Wallet, getBytes, hashMessage, keccak256 as ethersKeccak256, verifyMessage } from "ethers";
import {
  AuthError,
  HEADER_ADDRESS,
  HEADER_NONCE,
  HEADER_SIGNATURE,
  HEADER_TIMESTAMP,
  MemoryNonceStore,
  type IncomingRequest,
  canonicalQuery,
  canonicalRequest,
  eip191Digest,
  recoverAddressFast,
  recoverMessageSigner,
  signRequest,
  verifyRequest,
} from "../../keepers/shared/signing.js";
import { createLogger } from "../../keepers/shared/log.js";
import { checkMessageSigner, keccak256, keccakOf, nativeSponge, recoverMessageAddress, signerChecks } from "../../keepers/shared/recover.js";
import { SignaturePool } from "../../keepers/shared/signature-pool.js";
import { KeeperStore } from "../../keepers/shared/store.js";

const CHAIN = 31337n;
const AUDIENCE = "discovery";

function incoming(
  headers: Record<string, string>,
  over: Partial<Omit<IncomingRequest, "header">> = {},
): IncomingRequest {
  return {
    method: over.method ?? "GET",
    path: over.path ?? "/nodes/0xabc",
    query: over.query ?? "run=1&b=2",
    body: over.body ?? "",
    header: (name) => headers[name.toLowerCase()],
  };
}

async function signed(wallet: Signer, over: { timestamp?: number; nonce?: string } = {}) {
  return signRequest(wallet, {
    chainId: CHAIN,
    audience: AUDIENCE,
    method: "GET",
    path: "/nodes/0xabc",
    query: "b=2&run=1",
    body: "",
    ...over,
  });
}

async function refusal(fn: () => Promise<unknown>): Promise<AuthError> {
  try {
    await fn();
  } catch (error) {
    if (error instanceof AuthError) return error;
    throw error;
  }
  throw new Error("expected an AuthError");
}

describe("signed keeper requests", () => {
  const wallet = Wallet.createRandom();

  describe("canonical form", () => {
    it("orders query parameters so that the same query in another order signs the same", () => {
      expect(canonicalQuery("b=2&a=1&a=0")).to.equal("a=0&a=1&b=2");
      expect(canonicalQuery("")).to.equal("");
      expect(canonicalQuery("x=a%20b")).to.equal("x=a%20b");
    });

    it("covers chain, audience, method, path, query, body hash, timestamp and nonce", () => {
      const base = { chainId: 1n, audience: "0xAb", method: "get", path: "/p", query: "q=1", body: "{}", timestamp: 5, nonce: "n" };
      const text = canonicalRequest(base);
      expect(text.split("\n")).to.deep.equal([
        "computenet-request-v1",
        "chain:1",
        "audience:0xab",
        "method:GET",
        "path:/p",
        "query:q=1",
        "body-sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        "timestamp:5",
        "nonce:n",
      ]);
      for (const change of [{ chainId: 2n }, { audience: "0xac" }, { method: "POST" }, { path: "/q" }, { query: "q=2" }, { body: "{ }" }, { timestamp: 6 }, { nonce: "m" }]) {
        expect(canonicalRequest({ ...base, ...change }), JSON.stringify(change, (_k, v) => (typeof v === "bigint" ? String(v) : v))).to.not.equal(text);
      }
    });
  });

  describe("native recovery", () => {
    it("recovers the same signer as ethers.verifyMessage for many messages", async () => {
      for (let i = 0; i < 25; i++) {
        const message = `message ${i} ${"x".repeat(i * 7)}`;
        const signature = await wallet.signMessage(message);
        expect(recoverMessageSigner(message, signature)).to.equal(verifyMessage(message, signature));
        expect(recoverMessageSigner(message, signature)).to.equal(wallet.address);
      }
    });

    it("hashes messages exactly as ethers.hashMessage (EIP-191), non-ASCII text included", async () => {
      for (const message of ["", "m", "path:/nodes/0xabc\nquery:a=1", "naïve ☃ 🚀 日本", "x".repeat(1000)]) {
        expect(`0x${eip191Digest(message).toString("hex")}`, message).to.equal(hashMessage(message));
        const signature = await wallet.signMessage(message);
        expect(recoverMessageSigner(message, signature), message).to.equal(verifyMessage(message, signature));
      }
    });

    it("hashes with the reused native Keccak sponge as ethers' keccak256, at every length around the 136-byte block", () => {
      // The sponge is reinitialised per hash: a state left over from the previous hash would change the next.
      // The package ships its addon prebuilt for linux-x64 (CI and the devnet): there it must load.
      if (process.platform === "linux" && process.arch === "x64") expect(nativeSponge, "the keccak package's native addon loads").to.equal(true);
      for (const length of [0, 1, 31, 32, 64, 65, 135, 136, 137, 271, 272, 273, 1000]) {
        const data = Buffer.alloc(length, (length % 251) + 1);
        expect(`0x${keccak256(data).toString("hex")}`, `length ${length}`).to.equal(ethersKeccak256(data));
        // The fallback (the package's stream API), in two parts as EIP-191 hashes.
        const half = Math.floor(length / 2);
        expect(`0x${keccakOf([data.subarray(0, half), data.subarray(half)], false).toString("hex")}`, `fallback, length ${length}`).to.equal(ethersKeccak256(data));
        // A view into a larger buffer hashes only its own bytes.
        const outer = Buffer.concat([Buffer.from([0xee]), data, Buffer.from([0xff])]);
        const view = new Uint8Array(outer.buffer, outer.byteOffset + 1, length);
        expect(`0x${keccak256(view).toString("hex")}`, `view of length ${length}`).to.equal(ethersKeccak256(data));
      }
      // EIP-191 absorbs prefix and message in turn: the same digest as of their concatenation. The prefix of
      // a 105-109 byte message is 29 bytes: 134-138 in all, across the 136-byte block; "é" is two bytes.
      for (const message of ["", ...[105, 106, 107, 108, 109].map((n) => "m".repeat(n)), "é".repeat(500)]) {
        const length = message.length;
        expect(`0x${eip191Digest(message).toString("hex")}`, `message of ${length} characters`).to.equal(hashMessage(message));
        expect(`0x${eip191Digest(Buffer.from(message, "utf8")).toString("hex")}`, `bytes of ${length} characters`).to.equal(hashMessage(Buffer.from(message, "utf8")));
      }
    });

    it("returns null for malformed signatures instead of throwing", () => {
      const digest = getBytes(hashMessage("m"));
      expect(recoverAddressFast(digest, `0x${"00".repeat(64)}`)).to.equal(null); // 64 bytes
      expect(recoverAddressFast(digest, `0x${"00".repeat(64)}1b`)).to.equal(null); // r = s = 0
      expect(recoverAddressFast(digest, `0x${"11".repeat(64)}05`)).to.equal(null); // bad v
    });
  });

  describe("known signers (ecdsaVerify against a key learned by recovery)", () => {
    /** The same signature with s replaced by n − s and v flipped: as valid for recovery, refused by ecdsaVerify. */
    function highS(signature: string): string {
      const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
      const s = BigInt(`0x${signature.slice(66, 130)}`);
      const v = Number.parseInt(signature.slice(130), 16);
      return `${signature.slice(0, 66)}${(n - s).toString(16).padStart(64, "0")}${(v === 27 ? 28 : 27).toString(16)}`;
    }
    const flipV = (signature: string) => `${signature.slice(0, 130)}${signature.endsWith("1b") ? "1c" : "1b"}`;

    it("answers as recovery does: the first request of a signer is recovered, the next ones verified against its key", async () => {
      const wallet = Wallet.createRandom();
      const other = Wallet.createRandom();
      const before = { ...signerChecks };
      const first = await wallet.signMessage("first");
      expect(checkMessageSigner("first", first, wallet.address)).to.equal(wallet.address.toLowerCase());
      expect(signerChecks.recovered - before.recovered, "an unknown signer is recovered").to.equal(1);
      for (const message of ["second", "third"]) {
        const signature = await wallet.signMessage(message);
        expect(checkMessageSigner(message, signature, wallet.address.toLowerCase())).to.equal(recoverMessageAddress(message, signature));
      }
      expect(signerChecks.verified - before.verified, "a known signer is verified").to.equal(2);
      expect(signerChecks.recovered - before.recovered).to.equal(1);
      // Not the signed text, or another signer's signature, claiming the known signer: one verification
      // fails and the answer is null (no v could recover the claimed key from a low-s signature): no recovery.
      const byOther = await other.signMessage("from other");
      const recoveredBefore = signerChecks.recovered;
      expect(checkMessageSigner("not what was signed", first, wallet.address)).to.equal(null);
      expect(checkMessageSigner("from other", byOther, wallet.address)).to.equal(null);
      expect(signerChecks.recovered, "a forged request costs one verification").to.equal(recoveredBefore);
      // Malformed, or r or s out of range: null, as recovery.
      expect(checkMessageSigner("first", "0x1234", wallet.address)).to.equal(null);
      expect(checkMessageSigner("first", `0x${"11".repeat(64)}05`, wallet.address)).to.equal(null);
      expect(checkMessageSigner("first", `0x${"ff".repeat(64)}1b`, wallet.address)).to.equal(null);
      expect(checkMessageSigner("first", `0x${"00".repeat(64)}1b`, wallet.address)).to.equal(null);
      expect(checkMessageSigner("first", `0x${"ff".repeat(64)}1b`, other.address), "unknown claimed signer: recovery refuses it").to.equal(null);
    });

    it("learns a key only from a recovery that names the claimed address: another signer's signature teaches nothing", async () => {
      const victim = Wallet.createRandom();
      const attacker = Wallet.createRandom();
      const before = { ...signerChecks };
      for (const message of ["claiming the victim", "claiming the victim again"]) {
        const signature = await attacker.signMessage(message);
        expect(checkMessageSigner(message, signature, victim.address), "the attacker's address, not the claim").to.equal(attacker.address.toLowerCase());
      }
      expect(signerChecks.verified - before.verified, "the victim's address has no key: never verified").to.equal(0);
      expect(signerChecks.recovered - before.recovered).to.equal(2);
      // The attacker's key was not stored under the victim's address: the attacker's next claim is recovered
      // again, and the victim's own first request too (then verified).
      expect(checkMessageSigner("third", await attacker.signMessage("third"), victim.address)).to.equal(attacker.address.toLowerCase());
      expect(signerChecks.verified - before.verified).to.equal(0);
      expect(checkMessageSigner("own", await victim.signMessage("own"), victim.address)).to.equal(victim.address.toLowerCase());
      expect(signerChecks.recovered - before.recovered, "the victim's first request is recovered").to.equal(4);
      expect(checkMessageSigner("own again", await victim.signMessage("own again"), victim.address)).to.equal(victim.address.toLowerCase());
      expect(signerChecks.verified - before.verified, "then verified against its own key").to.equal(1);
      expect(checkMessageSigner("fourth", await attacker.signMessage("fourth"), victim.address), "now refused without a recovery").to.equal(null);
      expect(signerChecks.recovered - before.recovered).to.equal(4);
    });

    it("accepts a known signer's high-s signature as recovery does, and (documented) its signature with v flipped", async () => {
      const wallet = Wallet.createRandom();
      const signature = await wallet.signMessage("learn");
      expect(checkMessageSigner("learn", signature, wallet.address)).to.equal(wallet.address.toLowerCase());
      const message = "malleable";
      const original = await wallet.signMessage(message);
      const malleated = highS(original);
      expect(recoverMessageAddress(message, malleated), "recovery accepts high s").to.equal(wallet.address.toLowerCase());
      const recoveredBefore = signerChecks.recovered;
      expect(checkMessageSigner(message, malleated, wallet.address)).to.equal(wallet.address.toLowerCase());
      expect(signerChecks.recovered - recoveredBefore, "ecdsaVerify refuses high s: recovery decides").to.equal(1);
      // v flipped: recovery yields another key; verification against the known key does not read v.
      const flipped = flipV(original);
      expect(recoverMessageAddress(message, flipped)).to.not.equal(wallet.address.toLowerCase());
      expect(checkMessageSigner(message, flipped, wallet.address)).to.equal(wallet.address.toLowerCase());
      expect(checkMessageSigner(message, flipped, Wallet.createRandom().address)).to.equal(recoverMessageAddress(message, flipped));
    });

    it("refuses a replay of a known signer's request sent again with v flipped", async () => {
      const wallet = Wallet.createRandom();
      const nonces = new MemoryNonceStore();
      const learn = await signRequest(wallet, { chainId: CHAIN, audience: AUDIENCE, method: "GET", path: "/a", query: "", body: "" });
      await verifyRequest(incoming(learn, { path: "/a", query: "" }), { chainId: CHAIN, audience: AUDIENCE, nonces });
      const headers = await signRequest(wallet, { chainId: CHAIN, audience: AUDIENCE, method: "GET", path: "/b", query: "", body: "" });
      expect(await verifyRequest(incoming(headers, { path: "/b", query: "" }), { chainId: CHAIN, audience: AUDIENCE, nonces })).to.equal(wallet.address);
      const replay = { ...headers, [HEADER_SIGNATURE]: flipV(headers[HEADER_SIGNATURE]) };
      const refused = await verifyRequest(incoming(replay, { path: "/b", query: "" }), { chainId: CHAIN, audience: AUDIENCE, nonces }).catch((e: AuthError) => e);
      expect(refused).to.be.instanceOf(AuthError);
      expect((refused as AuthError).message).to.match(/nonce already used/);
    });
  });

  describe("verifyRequest", () => {
    it("accepts a fresh request and returns its signer, whatever the query order", async () => {
      const headers = await signed(wallet);
      expect(await verifyRequest(incoming(headers), { chainId: CHAIN, audience: AUDIENCE, nonces: new MemoryNonceStore() })).to.equal(wallet.address);
    });

    it("refuses a replay of the same request (GET included)", async () => {
      const nonces = new MemoryNonceStore();
      const headers = await signed(wallet);
      await verifyRequest(incoming(headers), { chainId: CHAIN, audience: AUDIENCE, nonces });
      const error = await refusal(() => verifyRequest(incoming(headers), { chainId: CHAIN, audience: AUDIENCE, nonces }));
      expect(error.status).to.equal(401);
      expect(error.message).to.equal("nonce already used: replayed request");
    });

    it("refuses a timestamp outside the allowed skew, in the past and in the future, at the boundary", async () => {
      const now = 1_000_000;
      const opts = { chainId: CHAIN, audience: AUDIENCE, nonces: new MemoryNonceStore(), maxSkewSec: 60, now: () => now };
      expect(await verifyRequest(incoming(await signed(wallet, { timestamp: now - 60 })), opts)).to.equal(wallet.address);
      expect(await verifyRequest(incoming(await signed(wallet, { timestamp: now + 60 })), opts)).to.equal(wallet.address);
      for (const timestamp of [now - 61, now + 61]) {
        const headers = await signed(wallet, { timestamp });
        const error = await refusal(() => verifyRequest(incoming(headers), opts));
        expect(error.status).to.equal(401);
        expect(error.message).to.equal(`stale or future timestamp: ${timestamp} is more than 60 s from ${now}`);
      }
    });

    it("refuses a request whose path, query, body, method, chain or audience differ from what was signed", async () => {
      const cases: Array<[string, Partial<Omit<IncomingRequest, "header">>, { chainId?: bigint; audience?: string }]> = [
        ["path", { path: "/nodes/0xdef" }, {}],
        ["query", { query: "run=2&b=2" }, {}],
        ["extra query", { query: "run=1&b=2&c=3" }, {}],
        ["body", { body: "{}" }, {}],
        ["method", { method: "DELETE" }, {}],
        ["chain", {}, { chainId: 1n }],
        ["audience", {}, { audience: "0x0000000000000000000000000000000000000001" }],
      ];
      for (const [what, over, opts] of cases) {
        const headers = await signed(wallet);
        const error = await refusal(() =>
          verifyRequest(incoming(headers, over), {
            chainId: opts.chainId ?? CHAIN,
            audience: opts.audience ?? AUDIENCE,
            nonces: new MemoryNonceStore(),
          }),
        );
        expect(error.status, what).to.equal(401);
        expect(error.message, what).to.match(/^signature does not match the request/);
      }
    });

    it("refuses a request claiming another address than its signer", async () => {
      const headers = { ...(await signed(wallet)), [HEADER_ADDRESS]: Wallet.createRandom().address };
      expect((await refusal(() => verifyRequest(incoming(headers), { chainId: CHAIN, audience: AUDIENCE, nonces: new MemoryNonceStore() }))).message).to.match(
        /^signature does not match/,
      );
    });

    it("refuses missing or malformed headers with a reason naming the header", async () => {
      const good = await signed(wallet);
      const cases: Array<[Record<string, string>, RegExp]> = [
        [{ ...good, [HEADER_SIGNATURE]: "" }, /^missing signature headers/],
        [{ ...good, [HEADER_ADDRESS]: "0x123" }, /x-cn-address is not an address/],
        [{ ...good, [HEADER_TIMESTAMP]: "soon" }, /x-cn-timestamp is not a unix timestamp/],
        [{ ...good, [HEADER_NONCE]: "ABC" }, /x-cn-nonce must be 32 lowercase hex characters/],
        [{ ...good, [HEADER_SIGNATURE]: "0x1234" }, /x-cn-signature must be a 65-byte hex signature/],
      ];
      for (const [headers, reason] of cases) {
        expect((await refusal(() => verifyRequest(incoming(headers), { chainId: CHAIN, audience: AUDIENCE, nonces: new MemoryNonceStore() }))).message).to.match(reason);
      }
    });

    it("does not burn the nonce of a forged request", async () => {
      const nonces = new MemoryNonceStore();
      const headers = await signed(wallet);
      await refusal(() => verifyRequest(incoming(headers, { path: "/other" }), { chainId: CHAIN, audience: AUDIENCE, nonces }));
      expect(await verifyRequest(incoming(headers), { chainId: CHAIN, audience: AUDIENCE, nonces })).to.equal(wallet.address);
    });
  });

  describe("SQLite nonce store", () => {
    it("remembers used nonces across a restart of the keeper (reopened file)", async () => {
      const dir = mkdtempSync(path.join(tmpdir(), "cn-nonce-"));
      const file = path.join(dir, "keeper.sqlite");
      const future = Math.floor(Date.now() / 1000) + 60;
      const first = new KeeperStore(file);
      expect(first.use(wallet.address, "a".repeat(32), future)).to.equal(true);
      first.close();
      const second = new KeeperStore(file);
      expect(second.use(wallet.address, "a".repeat(32), future)).to.equal(false);
      expect(second.use(wallet.address, "b".repeat(32), future)).to.equal(true);
      // Another address may use the same nonce: nonces are per signer.
      expect(second.use(Wallet.createRandom().address, "a".repeat(32), future)).to.equal(true);
      second.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it("writes the nonces of concurrent requests together: each answered once stored, a reuse in the same batch refused", async () => {
      const dir = mkdtempSync(path.join(tmpdir(), "cn-nonce-"));
      const file = path.join(dir, "keeper.sqlite");
      const future = Math.floor(Date.now() / 1000) + 60;
      const store = new KeeperStore(file);
      const answers = await Promise.all([
        store.useSoon(wallet.address, "c".repeat(32), future),
        store.useSoon(wallet.address, "d".repeat(32), future),
        store.useSoon(wallet.address, "c".repeat(32), future),
      ]);
      expect(answers).to.deep.equal([true, true, false]);
      expect(await store.useSoon(wallet.address, "d".repeat(32), future)).to.equal(false);
      store.close();
      const reopened = new KeeperStore(file);
      expect(reopened.use(wallet.address, "c".repeat(32), future)).to.equal(false);
      reopened.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it("stores a group commit's nonces as one row appended to the file, sweeps rows once expired, refuses past expiries", async () => {
      const dir = mkdtempSync(path.join(tmpdir(), "cn-nonce-"));
      const file = path.join(dir, "keeper.sqlite");
      let now = 1_000;
      const store = new KeeperStore(file, () => now);
      const rows = () => store.db.prepare("SELECT id, expires_max, entries FROM request_nonce_rows ORDER BY id").all() as Array<{ id: number; expires_max: number; entries: string }>;
      const nonces = ["1", "2", "3", "4", "5"].map((c) => c.repeat(32));
      const answers = await Promise.all(nonces.map((n, i) => store.useSoon(wallet.address, n, 1_010 + i)));
      expect(answers).to.deep.equal([true, true, true, true, true]);
      expect(rows()).to.have.length(1);
      expect(rows()[0].expires_max).to.equal(1_014);
      expect(JSON.parse(rows()[0].entries)).to.deep.equal(nonces.map((n, i) => [1_010 + i, wallet.address.toLowerCase(), n]));
      expect(store.use(wallet.address.toUpperCase().replace("0X", "0x"), nonces[0], 1_010), "same signer in other case").to.equal(false);
      expect(store.use(wallet.address, "6".repeat(32), 1_100)).to.equal(true); // its own row
      expect(rows()).to.have.length(2);
      // At 1,012 the nonces expiring at 1,010-1,011 are past: refused whatever memory holds (the sweep forgets
      // them), fresh ones too; one expiring at 1,012 is still live, and still refused as used.
      now = 1_012;
      expect(await store.useSoon(wallet.address, "7".repeat(32), 1_100)).to.equal(true);
      expect(store.use(wallet.address, nonces[0], 1_010), "expired").to.equal(false);
      expect(await store.useSoon(wallet.address, "a".repeat(32), 1_011), "past expiry, never used").to.equal(false);
      expect(store.use(wallet.address, nonces[2], 1_012), "expires this second: still used").to.equal(false);
      expect(store.use(wallet.address, "b".repeat(32), 1_012), "expires this second: fresh").to.equal(true);
      expect(rows().map((r) => r.id)).to.deep.equal([1, 2, 3, 4]);
      // Past 1,014 every nonce of row 1 expired: rows are deleted from the front up to the first live one
      // (row 2); row 4, expired behind it, waits for it (and is skipped when the file is read).
      now = 1_015;
      expect(store.use(wallet.address, "8".repeat(32), 1_100)).to.equal(true);
      expect(rows().map((r) => r.id)).to.deep.equal([2, 3, 4, 5]);
      store.close();
      // Reopened: the live nonces are refused again, new rows continue the ids.
      const reopened = new KeeperStore(file, () => now);
      for (const n of ["6", "7", "8"]) expect(reopened.use(wallet.address, n.repeat(32), 1_100), n).to.equal(false);
      expect(reopened.use(wallet.address, "9".repeat(32), 1_100)).to.equal(true);
      expect((reopened.db.prepare("SELECT MAX(id) AS id FROM request_nonce_rows").get() as { id: number }).id).to.equal(6);
      reopened.close();
      // Reopened at 1,012: what expires at 1,012 is loaded back and refused.
      const early = new KeeperStore(file, () => 1_012);
      expect(early.use(wallet.address, "b".repeat(32), 1_012)).to.equal(false);
      early.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it("keeps taking nonces when another writer added rows to the file", () => {
      const dir = mkdtempSync(path.join(tmpdir(), "cn-nonce-"));
      const file = path.join(dir, "keeper.sqlite");
      const store = new KeeperStore(file, () => 1_000);
      expect(store.use(wallet.address, "1".repeat(32), 1_100)).to.equal(true);
      const other = new KeeperStore(file, () => 1_000);
      expect(other.use(wallet.address, "2".repeat(32), 1_100)).to.equal(true);
      expect(store.use(wallet.address, "3".repeat(32), 1_100), "no id collision").to.equal(true);
      other.close();
      store.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it("carries the unexpired nonces of the two earlier layouts over on open, and drops their tables", () => {
      const dir = mkdtempSync(path.join(tmpdir(), "cn-nonce-"));
      const file = path.join(dir, "keeper.sqlite");
      const old = new Database(file);
      old.exec(`CREATE TABLE nonces (address TEXT NOT NULL, nonce TEXT NOT NULL, expires_at INTEGER NOT NULL, PRIMARY KEY (address, nonce));
        CREATE TABLE request_nonces (expires_at INTEGER NOT NULL, address TEXT NOT NULL, nonce TEXT NOT NULL, PRIMARY KEY (expires_at, address, nonce)) WITHOUT ROWID;`);
      old.prepare("INSERT INTO nonces VALUES (?, ?, ?)").run(wallet.address, "a".repeat(32), 2_000);
      old.prepare("INSERT INTO nonces VALUES (?, ?, ?)").run(wallet.address, "b".repeat(32), 900);
      old.prepare("INSERT INTO request_nonces VALUES (?, ?, ?)").run(2_001, wallet.address.toLowerCase(), "c".repeat(32));
      old.close();
      const store = new KeeperStore(file, () => 1_000);
      expect(store.use(wallet.address, "a".repeat(32), 2_000)).to.equal(false);
      expect(store.use(wallet.address, "c".repeat(32), 2_001)).to.equal(false);
      const carried = (store.db.prepare("SELECT entries FROM request_nonce_rows").all() as Array<{ entries: string }>).flatMap((r) => JSON.parse(r.entries) as unknown[]);
      expect(carried, "the expired one is not carried").to.deep.equal([
        [2_000, wallet.address.toLowerCase(), "a".repeat(32)],
        [2_001, wallet.address.toLowerCase(), "c".repeat(32)],
      ]);
      const tables = (store.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>).map((t) => t.name);
      expect(tables).to.include("request_nonce_rows").and.not.include("nonces").and.not.include("request_nonces");
      store.close();
      const reopened = new KeeperStore(file, () => 1_000);
      expect(reopened.use(wallet.address, "a".repeat(32), 2_000), "carried over for good").to.equal(false);
      reopened.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it("commits other writes of the same turn with the nonces, and rolls the whole batch back when one fails", async () => {
      const dir = mkdtempSync(path.join(tmpdir(), "cn-nonce-"));
      const file = path.join(dir, "keeper.sqlite");
      const future = Math.floor(Date.now() / 1000) + 60;
      const store = new KeeperStore(file);
      const [fresh, written] = await Promise.all([store.useSoon(wallet.address, "e".repeat(32), future), store.writeSoon(() => store.set("k", "v1"))]);
      expect(fresh).to.equal(true);
      expect(written).to.equal(undefined);
      expect(store.get("k")).to.equal("v1");
      // One failing write in a batch: every caller of the batch hears the error, nothing of it is stored.
      const outcomes = await Promise.allSettled([
        store.useSoon(wallet.address, "f".repeat(32), future),
        store.writeSoon(() => store.set("k", "v2")),
        store.writeSoon(() => {
          throw new Error("disk full");
        }),
      ]);
      expect(outcomes.map((o) => o.status)).to.deep.equal(["rejected", "rejected", "rejected"]);
      expect((outcomes[0] as PromiseRejectedResult).reason.message).to.equal("disk full");
      expect(store.get("k")).to.equal("v1");
      expect(store.use(wallet.address, "f".repeat(32), future)).to.equal(true);
      store.close();
      rmSync(dir, { recursive: true, force: true });
    });
  });

  describe("signature workers", () => {
    it("recover the same signers as the calling thread, for concurrent requests, and fall back to it once closed", async () => {
      const pool = await SignaturePool.start({ size: 1, logger: createLogger({ component: "test", level: "silent" }) });
      try {
        expect(pool.size).to.equal(1);
        const wallets = Array.from({ length: 5 }, () => Wallet.createRandom());
        const messages = Array.from({ length: 40 }, (_, i) => `request ${i}`);
        const signatures = await Promise.all(messages.map((m, i) => wallets[i % 5].signMessage(m)));
        const recovered = await Promise.all(messages.map((m, i) => pool.recover(m, signatures[i])));
        expect(recovered).to.deep.equal(messages.map((_, i) => wallets[i % 5].address.toLowerCase()));
        expect(await pool.recover("request 0", signatures[1])).to.not.equal(wallets[0].address.toLowerCase());
        expect(await pool.recover("m", "0x1234")).to.equal(null);
        // With the claimed signer: the same answers (the worker verifies a signer it recovered before).
        const claimed = await Promise.all(messages.map((m, i) => pool.recover(m, signatures[i], wallets[i % 5].address)));
        expect(claimed).to.deep.equal(recovered);
        // Another signature claiming a signer the worker knows: null (one verification); claiming an unknown one: recovered.
        expect(await pool.recover("request 0", signatures[1], wallets[0].address)).to.equal(null);
        expect(await pool.recover("request 0", signatures[1], Wallet.createRandom().address)).to.equal(recoverMessageAddress("request 0", signatures[1]));
        expect(await pool.recover("m", "0x1234", wallets[0].address)).to.equal(null);
      } finally {
        await pool.close();
      }
      expect(pool.size).to.equal(0);
      const wallet = Wallet.createRandom();
      expect(await pool.recover("after", await wallet.signMessage("after"))).to.equal(wallet.address.toLowerCase());
    });

    it("send a turn's recoveries in messages of at most maxBatch, a full one at once, each answered to its own caller", async () => {
      const logger = createLogger({ component: "test", level: "silent" });
      const wallets = Array.from({ length: 10 }, () => Wallet.createRandom());
      const messages = wallets.map((_, i) => `batched ${i}`);
      const signatures = await Promise.all(messages.map((m, i) => wallets[i].signMessage(m)));
      const expected: Array<string | null> = wallets.map((w) => w.address.toLowerCase());
      // A malformed signature in the middle of a message answers null to its caller only.
      signatures[5] = "0x1234";
      expected[5] = null;
      // [maxBatch, messages sent before the turn ends (full ones), messages in all]
      for (const [maxBatch, fullAtOnce, messagesSent] of [
        [4, 2, 3],
        [1, 10, 10],
        [64, 0, 1],
      ]) {
        const pool = await SignaturePool.start({ size: 1, logger, maxBatch });
        try {
          expect(pool.size, "a worker started").to.equal(1);
          const pending = messages.map((m, i) => pool.recover(m, signatures[i]));
          expect(pool.messagesSent, `maxBatch ${maxBatch}: full messages leave in the same turn`).to.equal(fullAtOnce);
          expect(await Promise.all(pending), `maxBatch ${maxBatch}`).to.deep.equal(expected);
          expect(pool.messagesSent, `maxBatch ${maxBatch}`).to.equal(messagesSent);
        } finally {
          await pool.close();
        }
      }
      for (const maxBatch of [0, -1, 1.5, Number.NaN]) {
        const refused = await SignaturePool.start({ size: 1, logger, maxBatch }).then(
          async (pool) => {
            await pool.close();
            return "started";
          },
          (error: Error) => error.message,
        );
        expect(refused, `maxBatch ${maxBatch}`).to.match(/^maxBatch must be a positive integer/);
      }
    });
  });
});

