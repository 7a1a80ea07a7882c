// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EpochManager} from "../EpochManager.sol";
import {IMinerRegistry} from "../interfaces/IMinerRegistry.sol";

/// @title EpochManagerHarness (test harness)
/// @notice An EpochManager whose beacon entropy the test sets, to show what a beacon is made of when the
///         entropy source is weak (on Arbitrum `blockhash(block.number - 1)` stays the same for every L2 block
///         of one L1 block).
contract EpochManagerHarness is EpochManager {
    bytes32 public entropy;

    constructor(address admin, IMinerRegistry registry_, uint64 genesis_, Parameters memory parameters)
        EpochManager(admin, registry_, genesis_, parameters)
    {}

    function setEntropy(bytes32 entropy_) external {
        entropy = entropy_;
    }

    function _beaconEntropy() internal view override returns (bytes32) {
        return entropy;
    }
}
