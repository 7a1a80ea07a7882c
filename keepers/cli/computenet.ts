/**
 * `computenet`: one command for operators and buyers.
 *
 *   computenet discovery|validator|master|miner [flags]   run a keeper (flags: `--help` of each)
 *   computenet devnet                                     the whole network on this machine
 *   computenet soak                                       the devnet with tasks flowing for N minutes, then checks
 *   computenet run create|start|show                      training runs (buyer)
 *   computenet task create|status|logs|list               tasks through the run's master (buyer)
 *   computenet nodes                                      the run's nodes as its master sees them
 *   computenet logs <folder> [summary --epoch N]          a devnet's or test cluster's logs as one timeline
 */
import { Command } from "commander";
import { logsCommand } from "./logs.js";

const program = new Command("computenet")
  .description("computenet: a decentralized compute network for AI training and inference")
  .showHelpAfterError();

// `logs` reads files only: it starts without loading the keepers, the contracts' bindings and the chain
// libraries (about a second less per call).
if (process.argv[2] === "logs") {
  program.addCommand(logsCommand());
} else {
  const [{ discoveryCommand }, { masterCommand }, { minerCommand }, { validatorCommand }, { nodesCommand, runCommand, taskCommand }, { devnetCommand }, { soakCommand }] =
    await Promise.all([
      import("../discovery/index.js"),
      import("../master/index.js"),
      import("../miner/index.js"),
      import("../validator/index.js"),
      import("./buyer.js"),
      import("./devnet.js"),
      import("./soak.js"),
    ]);
  program
    .addCommand(discoveryCommand())
    .addCommand(validatorCommand())
    .addCommand(masterCommand())
    .addCommand(minerCommand())
    .addCommand(devnetCommand())
    .addCommand(soakCommand())
    .addCommand(runCommand())
    .addCommand(taskCommand())
    .addCommand(nodesCommand())
    .addCommand(logsCommand());
}

await program.parseAsync(process.argv);
