/**
 * Child process of the HTTP benchmark: builds one keeper app (keeper-servers.ts) from the setup its parent
 * sends over IPC, listens on 127.0.0.1, and answers the parent's questions about its own memory, so that
 * the server's figures (RSS) are its own and the load client runs in another process, as in a deployment.
 *
 *   parent → { type: "start", setup }   child → { type: "ready", url, facts }
 *   parent → { type: "memory" }         child → { type: "memory", rss, heapUsed }
 *   parent → { type: "stop" }           child closes the app and the store, then exits
 */
import type { AddressInfo } from "node:net";
import { closeServer, listen } from "../../keepers/shared/http.js";
import { type BenchServer, type ServerSetup, buildServer } from "./keeper-servers.js";

type Message = { type: "start"; setup: ServerSetup } | { type: "memory" } | { type: "stop" };

let server: BenchServer | undefined;

function reply(message: Record<string, unknown>): void {
  process.send!(message);
}

process.on("message", async (message: Message) => {
  try {
    if (message.type === "start") {
      server = await buildServer(message.setup);
      const bound = (await listen(server.app, 0, "127.0.0.1")).address() as AddressInfo;
      reply({ type: "ready", url: `http://127.0.0.1:${bound.port}`, facts: server.facts });
    } else if (message.type === "memory") {
      const { rss, heapUsed } = process.memoryUsage();
      reply({ type: "memory", rss, heapUsed });
    } else if (message.type === "stop") {
      if (server) {
        await closeServer(server.app);
        await server.close();
      }
      process.disconnect();
      process.exit(0);
    }
  } catch (error) {
    reply({ type: "error", error: (error as Error).stack ?? String(error) });
  }
});

// The parent going away (killed, crashed) ends this process too: nothing is left listening.
process.on("disconnect", () => process.exit(0));
