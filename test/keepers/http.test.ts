/**
 * The keepers' HTTP layer over real loopback HTTP: signed routes, refusals with reasons, body limit,
 * rate limit, health and metrics.
 */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "chai";
import { Wallet } from "ethers";
import { HttpError, SignedClient, closeServer, createApp, finishApp, listen, requireSignature } from "../../keepers/shared/http.js";
import { createLogger } from "../../keepers/shared/log.js";
import { createMetrics } from "../../keepers/shared/metrics.js";
import { MemoryNonceStore, signRequest } from "../../keepers/shared/signing.js";

const CHAIN = 31337n;
const AUDIENCE = "discovery";

describe("keeper HTTP layer (real loopback HTTP)", () => {
  let server: Server;
  let base: string;
  const allowed = Wallet.createRandom();
  const client = new SignedClient(allowed, CHAIN);

  before(async () => {
    const logger = createLogger({ component: "test", level: "silent" });
    const app = createApp({ logger, metrics: createMetrics("test"), bodyLimit: "1kb", health: () => ({ role: "test" }) });
    const signed = requireSignature({ chainId: CHAIN, audience: AUDIENCE, nonces: new MemoryNonceStore(), rateLimit: { max: 5, windowMs: 60_000 } });
    app.get("/echo", signed, (req, res) => res.json({ signer: req.signer, query: req.query }));
    app.post("/echo", signed, (req, res) => res.json({ signer: req.signer, body: req.json }));
    app.get("/private", signed, (req, _res, next) => next(new HttpError(403, `${req.signer} may not read this`)));
    app.get("/huge", (_req, res) => res.type("text/plain").send("x".repeat(2 * 1024 * 1024)));
    app.get("/redirect", (_req, res) => res.redirect(302, "/health"));
    finishApp(app, logger);
    server = await listen(app, 0, "127.0.0.1");
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => closeServer(server));

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
    expect(((await huge.json()) as { error: string }).error).to.equal("body too large");
  });

  it("answers 404 with the route for unknown paths", async () => {
    const response = await fetch(`${base}/nowhere`);
    expect(response.status).to.equal(404);
    expect(((await response.json()) as { error: string }).error).to.equal("no route GET /nowhere");
  });

  it("limits requests per signer address with 429, without affecting other signers", async () => {
    const flooder = new SignedClient(Wallet.createRandom(), CHAIN);
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
