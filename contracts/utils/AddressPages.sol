// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title AddressPages
/// @notice Pagination of address lists for view functions.
library AddressPages {
    /// @notice `list[offset : offset + limit]`, clamped to the list; empty when `offset` is past the end.
    ///         Never overflows, whatever `limit` is.
    /// @param list Storage list.
    /// @param offset First index.
    /// @param limit Maximum count.
    /// @return slice The page.
    function page(address[] storage list, uint256 offset, uint256 limit) internal view returns (address[] memory slice) {
        uint256 length = list.length;
        if (offset >= length) return slice;
        uint256 count = length - offset;
        if (limit < count) count = limit;
        slice = new address[](count);
        for (uint256 i; i < count; ++i) {
            slice[i] = list[offset + i];
        }
    }
}
