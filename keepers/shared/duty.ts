/**
 * The validation-duty hash of the TaskLedger (ITaskLedger's notice; contracts/utils/ValidationDuty.sol), off
 * chain, for the miner's own duties and for anyone who recomputes a node's duties once its seed is revealed:
 *
 *   key_v = keccak256(abi.encode(bytes32 seed_v, uint256 dutySalt_e))   the node's duty key of the epoch
 *   H     = uint256(keccak256(abi.encode(bytes32 key_v, uint256 taskId)))
 *
 * `dutySalt_e` is the epoch's salt, fixed by its first task after the seed window closed (TaskLedger's
 * DutySaltFixed event; `nodeEpochOf(epoch, any).tasks.dutySalt` once the epoch has a task). The node must
 * validate the task when H < ⌊(2^256 − 1) · k·p_v / ((T − p_x) · 10000)⌋, or always when k·p_v ≥ (T − p_x) · 10000.
 */
import { AbiCoder, keccak256 } from "ethers";

const abi = AbiCoder.defaultAbiCoder();

/** A node's duty key of an epoch: keccak256(abi.encode(seed, dutySalt)). */
export function dutyKey(seed: string, dutySalt: bigint): string {
  return keccak256(abi.encode(["bytes32", "uint256"], [seed, dutySalt]));
}

/** The duty hash of a task, H(seed, salt, t): uint256(keccak256(abi.encode(key, taskId))). */
export function dutyHash(key: string, taskId: bigint): bigint {
  return BigInt(keccak256(abi.encode(["bytes32", "uint256"], [key, taskId])));
}
