/**
 * `tsx keepers/miner/main.ts [flags]`: the miner command on its own, until `computenet miner` (keepers/cli)
 * wraps the same `minerCommand()`.
 */
import { minerCommand } from "./index.js";

await minerCommand().parseAsync(process.argv);
