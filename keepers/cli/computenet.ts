/**
 * `computenet`: one command for operators and buyers.
 *
 *   computenet discovery|validator|master|miner [flags]   run a keeper (flags: `--help` of each)
 *   computenet devnet                                     the whole network on this machine
 *   computenet soak                                       the devnet with tasks flowing for N minutes, then checks
 *   computenet run create|start|show                      training runs (buyer)
 *   computenet task create|status|logs|list               tasks through the run's master (buyer)
 *   computenet nodes                                      the run's nodes as its master sees them
 */
import { Command } from "commander";
import { discoveryCommand } from "../discovery/index.js";
import { masterCommand } from "../master/index.js";
import { minerCommand } from "../miner/index.js";
import { validatorCommand } from "../validator/index.js";
import { nodesCommand, runCommand, taskCommand } from "./buyer.js";
import { devnetCommand } from "./devnet.js";
import { soakCommand } from "./soak.js";

const program = new Command("computenet")
  .description("computenet: a decentralized compute network for AI training and inference")
  .showHelpAfterError()
  .addCommand(discoveryCommand())
  .addCommand(validatorCommand())
  .addCommand(masterCommand())
  .addCommand(minerCommand())
  .addCommand(devnetCommand())
  .addCommand(soakCommand())
  .addCommand(runCommand())
  .addCommand(taskCommand())
  .addCommand(nodesCommand());

await program.parseAsync(process.argv);
