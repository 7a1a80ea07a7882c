/**
 * Runs the master keeper as a process (`tsx keepers/master/main.ts --run-id 1 ...`) until the
 * `computenet` CLI mounts `masterCommand()` itself.
 */
import { masterCommand } from "./index.js";

await masterCommand().parseAsync(process.argv);
