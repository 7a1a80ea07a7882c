/**
 * Standalone entry point of the discovery keeper, until `computenet discovery` (keepers/cli) wires
 * `discoveryCommand()` in:  tsx keepers/discovery/main.ts --rpc-url ... --deployment ... --port 8700
 */
import { discoveryCommand } from "./index.js";

await discoveryCommand().parseAsync(process.argv);
