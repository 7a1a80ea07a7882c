import { expect } from "chai";
import { network } from "hardhat";
import { deploySystem, registerNode, createRun, joinRun, H100_NODE } from "./helpers/system.js";

const connection = await network.create();
const { networkHelpers } = connection;

async function systemFixture() {
  return deploySystem(connection);
}

describe("smoke", () => {
  it("runs the whole phase 0-3 flow", async () => {
    const sys = await networkHelpers.loadFixture(systemFixture);
    const [p1] = sys.providers;
    const [n1] = sys.nodes;
    const rc = await (await registerNode(connection, sys, p1, n1, H100_NODE)).wait();
    
    const runId = await createRun(sys);
    const tx = await joinRun(connection, sys, runId, n1, 1n);
    
    expect(await sys.trainingRuns.isMember(runId, n1.address)).to.equal(true);
  });
});
