/**
 * Complete flag sets, as the command line hands them to the config schemas (every value a string), for the
 * tests of one flag: they override what they check and leave the rest valid.
 */
const COMMON = {
  rpcUrl: "http://127.0.0.1:8545",
  deployment: "deployments/localhost.json",
  host: "127.0.0.1",
  pollMs: "500",
  confirmations: "0",
  logLevel: "info",
  verifyWorkers: "1",
};

export const DISCOVERY_FLAGS = {
  ...COMMON,
  dataDir: "data/discovery",
  port: "0",
  maxSkewSec: "60",
  rateLimitMax: "120",
  rateLimitWindowMs: "60000",
  bodyLimit: "16kb",
};

export const MASTER_FLAGS = {
  ...COMMON,
  dataDir: "data/master",
  port: "8720",
  runId: "1",
  discoveryUrl: "http://127.0.0.1:8700",
  heartbeatIntervalSec: "30",
  unhealthyAfterMisses: "2",
  deadAfterMisses: "4",
  inviteExpirySec: "1000",
  reconcileMs: "2000",
  maxFileBytes: "1000",
  assignment: "chain",
  leaderLeaseMs: "10000",
};
