/**
 * Signed reads from discovery (audience "discovery") for keepers that need nodes' endpoints: validators
 * (hardware challenges, PoC proofs) and powered miners (their peers' PoC proofs).
 */
import { type Signer, getAddress, isAddress } from "ethers";
import { z } from "zod";
import { HttpError, SignedClient } from "./http.js";

const endpointRecord = z.object({ node: z.string(), endpoint: z.string(), updatedAt: z.unknown().optional() });
const pendingAnswer = z.object({ nodes: z.array(endpointRecord) });

/** Checks an endpoint from discovery: `http(s)://host:port`, nothing else (PROTOCOL.md). */
export function checkEndpoint(raw: string): string | undefined {
  if (raw.length > 256) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return undefined;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
  if (url.username || url.password || url.search || url.hash || url.pathname !== "/") return undefined;
  return url.origin;
}

/** Signed reads from discovery (audience "discovery"). */
export class DiscoveryClient {
  private readonly client: SignedClient;
  private readonly base: string;

  constructor(signer: Signer, chainId: bigint, baseUrl: string, timeoutMs = 10_000) {
    this.client = new SignedClient(signer, chainId, timeoutMs);
    this.base = baseUrl.replace(/\/+$/, "");
  }

  /** The node's endpoint, or undefined when discovery has none yet (404). Throws on other failures. */
  async endpointOf(node: string): Promise<string | undefined> {
    const response = await this.client.request<unknown>("GET", `${this.base}/nodes/${node}`, { audience: "discovery" });
    if (response.status === 404) return undefined;
    if (response.status < 200 || response.status >= 300) {
      const reason = (response.body as { error?: string })?.error ?? String(response.body);
      throw new HttpError(response.status, `discovery GET /nodes/${node}: ${response.status} ${reason}`);
    }
    const parsed = endpointRecord.safeParse(response.body);
    if (!parsed.success) throw new Error(`discovery GET /nodes/${node}: malformed answer`);
    const endpoint = checkEndpoint(parsed.data.endpoint);
    if (!endpoint) throw new Error(`discovery GET /nodes/${node}: unusable endpoint ${JSON.stringify(parsed.data.endpoint)}`);
    return endpoint;
  }

  /** Registered nodes with an endpoint that are not validated for their current declaration. */
  async pending(): Promise<string[]> {
    const body = await this.client.call<unknown>("GET", `${this.base}/validator/pending`, { audience: "discovery" });
    const parsed = pendingAnswer.safeParse(body);
    if (!parsed.success) throw new Error("discovery GET /validator/pending: malformed answer");
    return parsed.data.nodes.filter((record) => isAddress(record.node)).map((record) => getAddress(record.node));
  }
}

