/** The master's side of the discovery service: where the run's nodes listen (signed, audience "discovery"). */
import { getAddress } from "ethers";
import { z } from "zod";
import type { SignedClient } from "../shared/http.js";

const ENDPOINT = z
  .string()
  .max(256)
  .regex(/^https?:\/\/[^/?#@\s]+$/, "must be http(s)://host:port");

const runNodesSchema = z.object({
  nodes: z.array(
    z.object({
      node: z.string().regex(/^0x[0-9a-fA-F]{40}$/),
      participation: z.enum(["Registered", "Member"]),
      endpoint: ENDPOINT,
      updatedAt: z.union([z.string(), z.number()]).optional(),
    }),
  ),
});

const nodeSchema = z.object({ node: z.string(), endpoint: ENDPOINT });

export interface DiscoveredNode {
  node: string;
  participation: "Registered" | "Member";
  endpoint: string;
}

export class DiscoveryClient {
  constructor(
    private readonly client: SignedClient,
    private readonly baseUrl: string,
  ) {}

  /** `GET /runs/:runId/nodes`: the run's registered and member nodes that have an endpoint. */
  async runNodes(runId: bigint): Promise<DiscoveredNode[]> {
    const answer = await this.client.call<unknown>("GET", `${this.baseUrl}/runs/${runId}/nodes`, { audience: "discovery" });
    const parsed = runNodesSchema.safeParse(answer);
    if (!parsed.success) throw new Error(`discovery answered a malformed node list: ${parsed.error.issues[0]?.message}`);
    return parsed.data.nodes.map((n) => ({ node: getAddress(n.node), participation: n.participation, endpoint: n.endpoint }));
  }

  /** `GET /nodes/:node`: the node's endpoint, or null when discovery has none. */
  async nodeEndpoint(node: string): Promise<string | null> {
    const answer = await this.client.request<unknown>("GET", `${this.baseUrl}/nodes/${node}`, { audience: "discovery" });
    if (answer.status === 404) return null;
    if (answer.status !== 200) {
      throw new Error(`discovery GET /nodes/${node}: ${answer.status} ${(answer.body as { error?: string })?.error ?? ""}`.trim());
    }
    const parsed = nodeSchema.safeParse(answer.body);
    if (!parsed.success) throw new Error(`discovery answered a malformed node entry for ${node}`);
    return parsed.data.endpoint;
  }
}
