// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";

/// @title SelfPermit
/// @notice Lets a caller grant this contract an ERC-2612 allowance inside a `multicall`, so that
///         a stake or an escrow deposit needs one transaction instead of approve + call.
/// @dev The permit is attempted with try/catch: if someone front-runs the permit (it is public in
///      the mempool) the allowance already exists and the following call still succeeds. The caller's
///      next call fails with the token's own allowance error if no allowance resulted.
abstract contract SelfPermit {
    /// @dev Token whose permit `selfPermit` calls.
    function _permitToken() internal view virtual returns (IERC20Permit);

    /// @notice Applies an ERC-2612 permit from `msg.sender` to this contract.
    /// @param value Allowance to grant.
    /// @param deadline Permit deadline (seconds).
    /// @param v Signature v.
    /// @param r Signature r.
    /// @param s Signature s.
    function selfPermit(uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s) external {
        try _permitToken().permit(msg.sender, address(this), value, deadline, v, r, s) {} catch {}
    }
}
