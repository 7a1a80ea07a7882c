// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";

/// @title IComputeToken
/// @notice The computenet token: stake, run escrow and epoch rewards are paid in it.
interface IComputeToken is IERC20, IERC20Permit {
    /// @notice The admin must not be the zero address.
    error ComputeTokenZeroAddress();

    /// @notice Mints `amount` to `to`; only holders of MINTER_ROLE (the reward vault), never above the cap.
    /// @param to Receiver.
    /// @param amount Amount in wei of the token.
    function mint(address to, uint256 amount) external;
}
