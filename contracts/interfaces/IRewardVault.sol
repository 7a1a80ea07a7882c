// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IRewardVault
/// @notice The epoch economy's reward emission and the protocol's slashed funds. Epoch `e` emits
///         `initialEmission × retentionWad^(e-1) / 1e18^(e-1)` (an exponential decay per epoch; a half-life of
///         h epochs is `retentionWad = 1e18 × 2^(-1/h)`), limited by the token's supply cap: the emission of
///         an epoch is fixed the first time it is needed (`fixEmission`, or the first claim's `payShare`) as the
///         smaller of the decayed amount and what the cap still allows after every emission fixed before it.
///         Rewards are minted when paid (PAYER_ROLE: Settlement), so an epoch's unpaid rest is simply never
///         minted; `returnUnclaimed` (anyone, after the epoch's Claim phase) records it as returned to the
///         vault, which frees its room under the cap. Bounties for accusers are paid from the vault's own
///         balance (the registry's treasury: slashed stake) by PAYER_ROLE holders (the TaskLedger).
interface IRewardVault {
    /// @notice An epoch's emission and what became of it.
    /// @param fixed_ Whether the emission is fixed.
    /// @param returned Whether the unpaid rest was returned.
    /// @param emission The epoch's emission.
    /// @param paid Rewards paid from it.
    struct EpochEmission {
        bool fixed_;
        bool returned;
        uint128 emission;
        uint128 paid;
    }

    error RewardVaultZeroAddress();
    /// @notice `retentionWad` above 1e18 (emission would grow) or zero.
    error RewardVaultInvalidRetention(uint256 retentionWad);
    /// @notice Epochs are numbered from 1.
    error RewardVaultInvalidEpoch(uint64 epoch);
    /// @notice Paying `amount` would take the rewards of `epoch` past its emission (`remaining` left).
    error RewardVaultEmissionExceeded(uint64 epoch, uint256 amount, uint256 remaining);
    /// @notice The emission of `epoch` can be fixed only from `availableAt`, the end of its Dispute phase (so
    ///         that nobody reserves the cap's room of future epochs ahead of time).
    error RewardVaultEmissionNotDue(uint64 epoch, uint64 availableAt);
    /// @notice The Claim phase of `epoch` ends at `claimEnd`; its rest can be returned only after.
    error RewardVaultClaimsOpen(uint64 epoch, uint64 claimEnd);
    /// @notice The rest of `epoch` was already returned.
    error RewardVaultAlreadyReturned(uint64 epoch);
    /// @notice A share must be at most its total, and the total positive.
    error RewardVaultInvalidShare(uint256 share, uint256 total);

    event EmissionFixed(uint64 indexed epoch, uint256 emission);
    event RewardPaid(uint64 indexed epoch, address indexed to, uint256 amount);
    /// @notice `amount` of `epoch`'s emission was never paid and returned to the vault.
    event UnclaimedReturned(uint64 indexed epoch, uint256 amount);
    /// @notice A bounty of `amount` was paid to `to` (less than asked when the vault held less).
    event BountyPaid(address indexed to, uint256 amount, uint256 asked);

    /// @notice Fixes the emission of `epoch` if not yet fixed (anyone) and returns it.
    function fixEmission(uint64 epoch) external returns (uint256 emission);

    /// @notice Mints `share / total` of `epoch`'s emission, rounded down, to `to` (PAYER_ROLE: Settlement, with
    ///         a node's power out of the epoch's total power); fixes the emission first if needed. Mints nothing
    ///         (and emits no RewardPaid) when that is 0. Refuses to take the epoch's payments past its emission.
    /// @param epoch The epoch whose emission pays.
    /// @param to Receiver.
    /// @param share The receiver's share, at most `total`.
    /// @param total The whole the share is out of, positive.
    /// @return amount Amount minted.
    function payShare(uint64 epoch, address to, uint256 share, uint256 total) external returns (uint256 amount);

    /// @notice Pays `amount` (or the vault's whole balance when smaller) to `to` from the vault's balance
    ///         (PAYER_ROLE).
    /// @return paid Amount paid.
    function payBounty(address to, uint256 amount) external returns (uint256 paid);

    /// @notice Records the unpaid rest of `epoch`'s emission as returned (anyone, after its Claim phase).
    /// @return amount Amount returned.
    function returnUnclaimed(uint64 epoch) external returns (uint256 amount);

    /// @notice The decayed emission of `epoch` before the supply cap.
    function scheduledEmission(uint64 epoch) external view returns (uint256);

    function emissionOf(uint64 epoch) external view returns (EpochEmission memory);

    /// @notice Emission fixed and not yet paid nor returned (room under the cap it holds).
    function outstanding() external view returns (uint256);
}
