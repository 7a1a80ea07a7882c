// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";

/// @title ValidationDuty
/// @notice The hashes of the validation-duty rule (ITaskLedger's notice), shared by the TaskLedger's rule and
///         the Settlement's claim so that both hash the same way: a node's duty key of an epoch,
///         `keccak256(abi.encode(seed, dutySalt))`, then one hash per task, `keccak256(abi.encode(key, taskId))`.
///         Two steps rather than one hash of three words: a claim derives the key once and then hashes two words
///         per drawn task, in scratch space, like the rule did before the salt.
library ValidationDuty {
    /// @notice A node's duty key of an epoch: `keccak256(abi.encode(seed, dutySalt))`.
    /// @param seed The node's seed of the epoch (committed in its PoC phase).
    /// @param dutySalt The epoch's duty salt (ITaskLedger.EpochTasks.dutySalt, fixed by its first task).
    function key(bytes32 seed, uint64 dutySalt) internal pure returns (bytes32) {
        return Hashes.efficientKeccak256(seed, bytes32(uint256(dutySalt)));
    }

    /// @notice The duty hash of a task: `uint256(keccak256(abi.encode(dutyKey, taskId)))`, compared with the
    ///         node's threshold.
    /// @param dutyKey The node's duty key of the task's epoch (`key`).
    /// @param taskId The task.
    function hash(bytes32 dutyKey, uint256 taskId) internal pure returns (uint256) {
        return uint256(Hashes.efficientKeccak256(dutyKey, bytes32(taskId)));
    }
}
