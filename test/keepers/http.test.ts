/**
 * The keepers' HTTP layer (fastify) over real loopback HTTP: signed routes, refusals with reasons, body
 * limit, malformed JSON, unknown routes, rate limit, health and metrics; and the benchmarks' load client,
 * whose pre-signed requests the real verifyRequest must accept once.
 */
import { type AddressInfo, createServer as createTcpServer } from "node:net";
import { expect } from "chai";
import { Wallet } from "ethers";
import type { Server } from "node:http";
import { BENCH_CHAIN_ID, buildSignedFloorServer } from "../../bench/lib/keeper-servers.js";
import { newNodeKey, presign, runLoad } from "../../bench/lib/load.js";
import { type App, HttpError, MAX_JSON_DEPTH, SignedClient, closeServer, createApp, listen, parseJsonBody, requireSignature } from "../../keepers/shared/http.js";
import { createLogger } from "../../keepers/shared/log.js";
import { createMetrics } from "../../keepers/shared/metrics.js";
import { AuthError, MemoryNonceStore, signRequest, verifyRequest } from "../../keepers/shared/signing.js";

const CHAIN = 31337n;
const AUDIENCE = "discovery";

describe("keeper HTTP layer (real loopback HTTP)", () => {
  let app: App;
  let base: string;
  const allowed = Wallet.createRandom();
  const client = new SignedClient(allowed, CHAIN);

  before(async () => {
    const logger = createLogger({ component: "test", level: "silent" });
    app = createApp({ logger, metrics: createMetrics("test"), bodyLimit: "1kb", health: () => ({ role: "test" }) });
    const signed = requireSignature({ chainId: CHAIN, audience: AUDIENCE, nonces: new MemoryNonceStore(), rateLimit: { max: 5, windowMs: 60_000 } });
    app.get("/echo", { preHandler: signed }, async (req) => ({ signer: req.signer, query: req.query }));
    app.post("/echo", { preHandler: signed }, async (req) => ({ signer: req.signer, body: req.body, bytes: req.rawBody?.length ?? 0 }));
    app.put("/upload", { preHandler: signed, bodyLimit: 4096 }, async (req) => ({ bytes: req.rawBody?.length ?? 0 }));
    app.get("/private", { preHandler: signed }, async (req) => {
      throw new HttpError(403, `${req.signer} may not read this`);
    });
    app.get("/crash", async () => {
      throw new Error("a bug, with internals the caller must not see");
    });
    app.get("/huge", async (_req, reply) => reply.type("text/plain").send("x".repeat(2 * 1024 * 1024)));
    app.get("/redirect", async (_req, reply) => reply.redirect("/health", 302));
    const server = await listen(app, 0, "127.0.0.1");
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => closeServer(app));

  it("serves /health and /metrics without a signature", async () => {
    expect(await (await fetch(`${base}/health`)).json()).to.deep.equal({ status: "ok", role: "test" });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).to.include('process_cpu_user_seconds_total{component="test"}');
  });

  it("accepts a signed GET with a query and a signed POST with a JSON body", async () => {
    const get = await client.call<{ signer: string; query: Record<string, string> }>("GET", `${base}/echo?b=2&a=1`, { audience: AUDIENCE });
    expect(get).to.deep.equal({ signer: allowed.address, query: { a: "1", b: "2" } });
    const post = await client.call<{ body: unknown }>("POST", `${base}/echo`, { audience: AUDIENCE, body: { x: [1, 2] } });
    expect(post.body).to.deep.equal({ x: [1, 2] });
  });

  it("refuses an unsigned request with 401 and the reason", async () => {
    const response = await fetch(`${base}/echo`);
    expect(response.status).to.equal(401);
    expect(((await response.json()) as { error: string }).error).to.match(/^missing signature headers/);
  });

  it("refuses a captured GET replayed as is", async () => {
    const headers = await signRequest(allowed, { chainId: CHAIN, audience: AUDIENCE, method: "GET", path: "/echo", query: "a=1", body: "" });
    const first = await fetch(`${base}/echo?a=1`, { headers });
    expect(first.status).to.equal(200);
    const replay = await fetch(`${base}/echo?a=1`, { headers });
    expect(replay.status).to.equal(401);
    expect(((await replay.json()) as { error: string }).error).to.equal("nonce already used: replayed request");
  });

  it("refuses a captured request whose query was changed, or sent to another audience", async () => {
    const headers = await signRequest(allowed, { chainId: CHAIN, audience: AUDIENCE, method: "GET", path: "/echo", query: "a=1", body: "" });
    const tampered = await fetch(`${base}/echo?a=2`, { headers });
    expect(tampered.status).to.equal(401);
    expect(((await tampered.json()) as { error: string }).error).to.match(/^signature does not match the request/);
    const forOther = await new SignedClient(Wallet.createRandom(), CHAIN).request("GET", `${base}/echo`, { audience: "0x0000000000000000000000000000000000000001" });
    expect(forOther.status).to.equal(401);
  });

  it("answers 403 with a reason when the signer is authenticated but not allowed", async () => {
    const response = await client.request<{ error: string }>("GET", `${base}/private`, { audience: AUDIENCE });
    expect(response.status).to.equal(403);
    expect(response.body.error).to.equal(`${allowed.address} may not read this`);
  });

  it("refuses malformed JSON with 400 and a body over the limit with 413, before checking signatures", async () => {
    const bad = await fetch(`${base}/echo`, { method: "POST", headers: { "content-type": "application/json" }, body: "{nope" });
    expect(bad.status).to.equal(400);
    expect(((await bad.json()) as { error: string }).error).to.equal("body is not valid JSON");
    const huge = await fetch(`${base}/echo`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ x: "y".repeat(2048) }) });
    expect(huge.status).to.equal(413);
    expect(huge.headers.get("content-type")).to.match(/^application\/json/);
    expect(((await huge.json()) as { error: string }).error).to.equal("body too large");
    // Streamed without a content-length: counted while read.
    const chunked = await fetch(`${base}/echo`, {
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: new ReadableStream({
        start(controller) {
          for (let i = 0; i < 4; i++) controller.enqueue(new Uint8Array(512));
          controller.close();
        },
      }),
      duplex: "half",
    } as RequestInit);
    expect(chunked.status).to.equal(413);
  });

  it("lets one route accept more than the app's body limit, and keeps the exact bytes of any content type", async () => {
    const uploader = new SignedClient(Wallet.createRandom(), CHAIN); // each test its own signer: 5 requests a minute each
    const bytes = new Uint8Array(3000).fill(7);
    const response = await uploader.request<{ bytes: number }>("PUT", `${base}/upload`, { audience: AUDIENCE, rawBody: bytes });
    expect(response).to.deep.equal({ status: 200, body: { bytes: 3000 } });
    const tooBig = await uploader.request<{ error: string }>("PUT", `${base}/upload`, { audience: AUDIENCE, rawBody: new Uint8Array(5000) });
    expect(tooBig).to.deep.equal({ status: 413, body: { error: "body too large" } });
  });

  it("answers 404 with the route for unknown paths, and 500 without internals for a bug", async () => {
    const response = await fetch(`${base}/nowhere?x=1`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(response.status).to.equal(404);
    expect(((await response.json()) as { error: string }).error).to.equal("no route POST /nowhere");
    const crash = await fetch(`${base}/crash`);
    expect(crash.status).to.equal(500);
    expect(await crash.json()).to.deep.equal({ error: "internal error" });
  });

  it("routes like express did: with or without a trailing slash, in any letter case", async () => {
    const wallet = Wallet.createRandom();
    const reader = new SignedClient(wallet, CHAIN);
    for (const path of ["/echo/", "/ECHO"]) {
      const answer = await reader.request<{ signer: string }>("GET", `${base}${path}?a=1&a=2`, { audience: AUDIENCE });
      expect(answer.status, path).to.equal(200);
      expect(answer.body, path).to.deep.equal({ signer: wallet.address, query: { a: ["1", "2"] } });
    }
  });

  it("refuses a signed POST whose body was changed in transit", async () => {
    const other = Wallet.createRandom();
    const body = Buffer.from(JSON.stringify({ x: 1 }));
    const headers = await signRequest(other, { chainId: CHAIN, audience: AUDIENCE, method: "POST", path: "/echo", query: "", body });
    const changed = await fetch(`${base}/echo`, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body: JSON.stringify({ x: 2 }) });
    expect(changed.status).to.equal(401);
    expect(((await changed.json()) as { error: string }).error).to.match(/^signature does not match the request/);
    const stale = await signRequest(other, { chainId: CHAIN, audience: AUDIENCE, method: "GET", path: "/echo", query: "", body: "", timestamp: Math.floor(Date.now() / 1000) - 3600 });
    const refused = await fetch(`${base}/echo`, { headers: stale });
    expect(refused.status).to.equal(401);
    expect(((await refused.json()) as { error: string }).error).to.match(/^stale or future timestamp/);
  });

  it("limits requests per signer address with 429, without affecting other signers", async () => {
    const flooder = new SignedClient(Wallet.createRandom(), CHAIN);
    // (the /echo routes and /private share one hook instance, hence one budget per signer)
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await flooder.request("GET", `${base}/echo`, { audience: AUDIENCE })).status);
    expect(statuses).to.deep.equal([200, 200, 200, 200, 200, 429, 429]);
    const other = await new SignedClient(Wallet.createRandom(), CHAIN).request("GET", `${base}/echo`, { audience: AUDIENCE });
    expect(other.status).to.equal(200);
  });

  it("SignedClient refuses an answer larger than its limit and does not follow redirects", async () => {
    const small = new SignedClient(allowed, CHAIN, 10_000, 1024 * 1024);
    const error = await small.request("GET", `${base}/huge`, { audience: AUDIENCE }).then(() => undefined, (e: HttpError) => e);
    expect(error).to.be.instanceOf(HttpError);
    expect(error!.message).to.match(/exceeds the 1048576-byte limit$/);
    const redirected = await client.request("GET", `${base}/redirect`, { audience: AUDIENCE }).then(() => undefined, (e: Error) => e);
    expect(redirected).to.be.instanceOf(Error);
  });

  it("SignedClient.call throws an HttpError carrying the server's reason", async () => {
    const error = await client.call("GET", `${base}/private`, { audience: AUDIENCE }).then(() => undefined, (e: HttpError) => e);
    expect(error).to.be.instanceOf(HttpError);
    expect(error!.status).to.equal(403);
    expect(error!.message).to.equal(`GET ${base}/private: 403 ${allowed.address} may not read this`);
  });
});

describe("JSON request bodies (parseJsonBody)", () => {
  const refusal = (text: string | Buffer) => {
    try {
      parseJsonBody(Buffer.isBuffer(text) ? text : Buffer.from(text));
    } catch (error) {
      expect(error).to.be.instanceOf(HttpError);
      expect((error as HttpError).status).to.equal(400);
      return (error as HttpError).message;
    }
    return expect.fail(`expected ${String(text).slice(0, 60)} to be refused`);
  };

  it("parses JSON, brackets and escapes inside strings included", () => {
    expect(parseJsonBody(Buffer.from('{"a":"[[{{\\\"]]","b":[[1]],"constructor":"x","prototype":{"k":1}}'))).to.deep.equal({
      a: '[[{{"]]',
      b: [[1]],
      constructor: "x",
      prototype: { k: 1 },
    });
  });

  it("refuses invalid UTF-8 and invalid JSON", () => {
    expect(refusal(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]))).to.equal("body is not valid UTF-8");
    expect(refusal('{"a":')).to.equal("body is not valid JSON");
  });

  it(`refuses nesting deeper than ${MAX_JSON_DEPTH} levels before parsing it (1 MB of "[" in a few ms)`, () => {
    expect(parseJsonBody(Buffer.from(`${"[".repeat(MAX_JSON_DEPTH)}${"]".repeat(MAX_JSON_DEPTH)}`))).to.be.an("array");
    const started = performance.now();
    expect(refusal(`${"[".repeat(512 * 1024)}${"]".repeat(512 * 1024)}`)).to.equal(`body is nested deeper than ${MAX_JSON_DEPTH} levels`);
    expect(performance.now() - started).to.be.below(100);
    expect(refusal(`${'{"a":'.repeat(MAX_JSON_DEPTH + 1)}1${"}".repeat(MAX_JSON_DEPTH + 1)}`)).to.match(/nested deeper/);
  });

  it("refuses keys that pollute prototypes, written out or escaped, at any depth, without polluting anything", () => {
    expect(refusal('{"__proto__":{"polluted":1}}')).to.equal('body must not contain the key "__proto__"');
    expect(refusal('[{"a":[{"b":{"__proto__":{}}}]}]')).to.equal('body must not contain the key "__proto__"');
    expect(refusal('{"\\u005f_proto__":{"polluted":1}}')).to.equal('body must not contain the key "__proto__"');
    expect(refusal('{"constructor":{"prototype":{"polluted":1}}}')).to.equal('body must not contain a "constructor" object with a "prototype" key');
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
  });
});

describe("benchmark load client (bench/lib/load.ts)", () => {
  const key = newNodeKey();

  it("pre-signs requests the real verifyRequest accepts once and refuses as replays", async () => {
    const nonces = new MemoryNonceStore();
    const options = { chainId: CHAIN, audience: "0x00000000000000000000000000000000000000aa", nonces };
    const body = { runId: "1", node: key.address, tasks: [], sentAt: new Date().toISOString() };
    const request = presign(key, { chainId: CHAIN, audience: options.audience, method: "POST", path: "/heartbeat", body });
    const incoming = (r: typeof request) => ({
      method: r.method,
      path: r.path.split("?")[0],
      query: r.path.split("?")[1] ?? "",
      body: r.body ?? "",
      header: (name: string) => r.headers[name],
    });
    expect(await verifyRequest(incoming(request), options)).to.equal(key.address);
    expect(new Wallet(`0x${key.privateKey.toString("hex")}`).address).to.equal(key.address);
    let replay: unknown;
    try {
      await verifyRequest(incoming(request), options);
    } catch (error) {
      replay = error;
    }
    expect(replay).to.be.instanceOf(AuthError);
    expect((replay as AuthError).message).to.equal("nonce already used: replayed request");
    const get = presign(key, { chainId: CHAIN, audience: options.audience, method: "GET", path: "/nodes/x", query: "b=2&a=1" });
    expect(await verifyRequest(incoming(get), options)).to.equal(key.address);
  });

  it("drives a real app: pre-signed requests answered 200, the same ones replayed answered 401", async () => {
    const logger = createLogger({ component: "test", level: "silent" });
    const app = createApp({ logger, metrics: createMetrics("load-test") });
    app.post("/beat", { preHandler: requireSignature({ chainId: CHAIN, audience: AUDIENCE, nonces: new MemoryNonceStore() }) }, async (req) => ({ signer: req.signer }));
    const server = await listen(app, 0, "127.0.0.1");
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const keys = Array.from({ length: 20 }, newNodeKey);
      const requests = keys.map((k, i) => presign(k, { chainId: CHAIN, audience: AUDIENCE, method: "POST", path: "/beat", body: { i } }));
      const first = await runLoad({ url, requests, connections: 4 });
      expect(first).to.deep.include({ count: 20, ok: 20, errors: 0, statuses: { "200": 20 } });
      expect(first.p50Ms).to.be.at.most(first.p99Ms).and.at.most(first.maxMs);
      const replayed = await runLoad({ url, requests, connections: 4 });
      expect(replayed).to.deep.include({ count: 20, ok: 0, errors: 20, statuses: { "401": 20 } });
      const open = await runLoad({ url, requests: (i) => presign(keys[i % 20], { chainId: CHAIN, audience: AUDIENCE, method: "POST", path: "/beat", body: { i } }), ratePerSec: 200, durationMs: 250, connections: 2 });
      expect(open.ok).to.equal(open.count);
      expect(open.count).to.be.within(40, 52);
    } finally {
      await closeServer(app);
    }
  });

  it("signed floor (bench/lib/keeper-servers.ts): checks every signature in its worker, refuses replays and forgeries", async () => {
    const floor = await buildSignedFloorServer({ kind: "signed-floor", verifyWorkers: 1 });
    expect(floor.facts.verifyWorkers).to.equal(1);
    const server = floor.app as Server;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const keys = Array.from({ length: 10 }, newNodeKey);
      const common = { chainId: BENCH_CHAIN_ID, audience: "discovery" };
      const requests = keys.flatMap((k) => [
        presign(k, { ...common, method: "PUT", path: `/nodes/${k.address}`, body: { endpoint: "http://a.invalid:1" } }),
        presign(k, { ...common, method: "GET", path: `/nodes/${keys[0].address}` }),
      ]);
      expect(await runLoad({ url, requests, connections: 4 })).to.deep.include({ ok: 20, errors: 0 });
      expect(await runLoad({ url, requests, connections: 4 })).to.deep.include({ ok: 0, statuses: { "401": 20 } });
      // Signed for another audience, or claiming another signer: refused, as discovery would.
      const other = presign(keys[1], { ...common, audience: "0x00000000000000000000000000000000000000aa", method: "GET", path: "/nodes/x" });
      const forged = { ...presign(keys[2], { ...common, method: "GET", path: "/nodes/x" }) };
      forged.headers = { ...forged.headers, "x-cn-address": keys[3].address };
      expect(await runLoad({ url, requests: [other, forged], connections: 1 })).to.deep.include({ ok: 0, statuses: { "401": 2 } });
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await floor.close();
    }
  });

  it("counts dropped connections, silent servers and chunked answers right", async () => {
    const request = presign(key, { chainId: CHAIN, audience: AUDIENCE, method: "GET", path: "/" });
    // A server that answers the first request on each connection in chunks and drops the connection at the second.
    const seen = new Map<object, number>();
    const tcp = createTcpServer((socket) => {
      socket.on("data", () => {
        const n = (seen.get(socket) ?? 0) + 1;
        seen.set(socket, n);
        if (n === 1) socket.write("HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n");
        else if (n === 2) socket.destroy();
      });
    });
    await new Promise<void>((resolve) => tcp.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(tcp.address() as AddressInfo).port}`;
      const result = await runLoad({ url, requests: [request, request, request], connections: 1, timeoutMs: 300 });
      // 1: 201 (chunked body read whole); 2: connection dropped; 3: a new connection, answered in chunks again.
      expect(result.statuses).to.deep.equal({ "201": 2, error: 1 });
    } finally {
      await new Promise((resolve) => tcp.close(resolve));
    }
    // A server that never answers: each request fails after its timeout, and the run still ends.
    const silent = createTcpServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
      const result = await runLoad({ url, requests: [request, request], connections: 2, timeoutMs: 200 });
      expect(result.statuses).to.deep.equal({ error: 2 });
      expect(result.p50Ms).to.be.at.least(190);
    } finally {
      silent.close();
    }
  });

  it("refuses to target anything but 127.0.0.1 and runs only bounded", async () => {
    const request = presign(key, { chainId: CHAIN, audience: AUDIENCE, method: "GET", path: "/" });
    for (const url of ["http://localhost:1", "http://10.0.0.1:80"]) {
      const error = await runLoad({ url, requests: [request] }).then(() => undefined, (e: Error) => e);
      expect(error?.message, url).to.match(/127\.0\.0\.1 only/);
    }
    const unbounded = await runLoad({ url: "http://127.0.0.1:1", requests: () => request }).then(() => undefined, (e: Error) => e);
    expect(unbounded?.message).to.match(/always bounded/);
  });
});
