// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Capped} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Capped.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {IComputeToken} from "./interfaces/IComputeToken.sol";

/// @title ComputeToken
/// @notice ERC-20 with ERC-2612 permit and a hard supply cap. The initial supply goes to one holder
///         (the protocol treasury on a real network, the deployer on a devnet); later emission is minted
///         only by MINTER_ROLE holders (the reward vault of the epoch economy).
contract ComputeToken is ERC20Capped, ERC20Permit, AccessControl, IComputeToken {
    /// @notice Role allowed to mint new supply (up to the cap).
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    /// @param admin Receives DEFAULT_ADMIN_ROLE (grants MINTER_ROLE).
    /// @param initialHolder Receives `initialSupply`.
    /// @param initialSupply Minted at deployment.
    /// @param supplyCap Maximum total supply ever.
    constructor(address admin, address initialHolder, uint256 initialSupply, uint256 supplyCap)
        ERC20("Computenet", "CNET")
        ERC20Capped(supplyCap)
        ERC20Permit("Computenet")
    {
        if (admin == address(0)) revert ComputeTokenZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _mint(initialHolder, initialSupply);
    }

    /// @inheritdoc IComputeToken
    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        _mint(to, amount);
    }

    /// @inheritdoc IERC20Permit
    function nonces(address owner) public view override(ERC20Permit, IERC20Permit) returns (uint256) {
        return super.nonces(owner);
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Capped) {
        super._update(from, to, value);
    }
}
