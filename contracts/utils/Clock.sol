// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title Clock
/// @notice One source of time for every computenet contract.
/// @dev `block.timestamp` rather than `block.number`: on Arbitrum `block.number` is the L1 block
///      number and moves in jumps. Kept behind one virtual function so test harnesses can drive time.
abstract contract Clock {
    /// @dev Current time in seconds.
    function _clock() internal view virtual returns (uint64) {
        return uint64(block.timestamp);
    }
}
