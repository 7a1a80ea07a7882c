/**
 * Child process of the HTTP benchmark: builds one keeper app (keeper-servers.ts) from the setup its parent
 * sends over IPC, listens on 127.0.0.1, and answers the parent's questions about its own memory, so that
 * the server's figures (RSS) are its own and the load client runs in another process, as in a deployment.
 *
 *   parent → { type: "start", setup }   child → { type: "ready", url, facts }
 *   parent → { type: "memory" }         child → { type: "memory", rss, heapUsed, cpuUs }  (cpuUs: user + system
 *                                       CPU of the whole process, all its threads, since it started)
 *   parent → { type: "profile", file }  child starts its CPU profiler (or, when it runs, writes the profile
 *                                       to `file`, a .cpuprofile); child → { type: "profile" }
 *   parent → { type: "stop" }           child closes the app and the store, then exits
 */
import { writeFile } from "node:fs/promises";
import { Session } from "node:inspector/promises";
import { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { closeServer, listen } from "../../keepers/shared/http.js";
import { type BenchServer, type ServerSetup, buildServer } from "./keeper-servers.js";

type Message = { type: "start"; setup: ServerSetup } | { type: "memory" } | { type: "profile"; file: string } | { type: "stop" };

let server: BenchServer | undefined;
let profiler: Session | undefined;

function reply(message: Record<string, unknown>): void {
  process.send!(message);
}

process.on("message", async (message: Message) => {
  try {
    if (message.type === "start") {
      server = await buildServer(message.setup);
      const { app } = server;
      const http = app instanceof Server ? await new Promise<Server>((resolve) => app.listen(0, "127.0.0.1", () => resolve(app))) : await listen(app, 0, "127.0.0.1");
      const bound = http.address() as AddressInfo;
      reply({ type: "ready", url: `http://127.0.0.1:${bound.port}`, facts: { kind: message.setup.kind, ...server.facts } });
    } else if (message.type === "memory") {
      const { rss, heapUsed } = process.memoryUsage();
      const cpu = process.cpuUsage();
      reply({ type: "memory", rss, heapUsed, cpuUs: cpu.user + cpu.system });
    } else if (message.type === "profile") {
      if (!profiler) {
        profiler = new Session();
        profiler.connect();
        await profiler.post("Profiler.enable");
        await profiler.post("Profiler.start");
      } else {
        const { profile } = await profiler.post("Profiler.stop");
        await writeFile(message.file, JSON.stringify(profile));
        profiler.disconnect();
        profiler = undefined;
      }
      reply({ type: "profile" });
    } else if (message.type === "stop") {
      if (server) {
        const { app } = server;
        if (app instanceof Server) {
          app.closeAllConnections();
          await new Promise((resolve) => app.close(resolve));
        } else await closeServer(app);
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
