// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC20Capped} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Capped.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IComputeToken} from "./interfaces/IComputeToken.sol";
import {IEpochManager} from "./interfaces/IEpochManager.sol";
import {IRewardVault} from "./interfaces/IRewardVault.sol";
import {Clock} from "./utils/Clock.sol";

/// @title RewardVault
/// @notice Epoch emission under the token's supply cap, and the protocol's slashed funds. See {IRewardVault}.
/// @dev Cap accounting: `outstanding` is the sum, over epochs whose emission is fixed and whose rest is not
///      returned, of `emission - paid`. Paid rewards are minted, so they are in `totalSupply`; the room a new
///      emission may take is therefore `cap - totalSupply - outstanding`, which no sequence of calls can
///      overdraw: fixing moves room into `outstanding`, paying moves it from `outstanding` into the supply,
///      returning gives it back. An emission is fixed only once the epoch's Dispute phase is over (nobody can
///      reserve the room of future epochs ahead of time), and it is fixed from the epoch's number alone, so
///      whoever fixes it cannot choose the amount.
contract RewardVault is IRewardVault, AccessControl, ReentrancyGuardTransient, Clock {
    using SafeERC20 for IComputeToken;

    /// @notice Role allowed to pay rewards (Settlement) and bounties (TaskLedger).
    bytes32 public constant PAYER_ROLE = keccak256("PAYER_ROLE");

    /// @dev Fixed-point one.
    uint256 private constant _WAD = 1e18;

    /// @dev `EpochEmission` packed into one slot (a claim reads and writes it once). An emission never exceeds
    ///      the supply cap's room, far below 2^120.
    struct Record {
        bool fixed_;
        bool returned;
        uint120 emission;
        uint120 paid;
    }

    /// @notice The token rewards are minted in and bounties paid in.
    IComputeToken public immutable token;
    /// @notice The epoch clock (Claim phase bounds).
    IEpochManager public immutable epochs;
    /// @notice Emission of epoch 1.
    uint256 public immutable initialEmission;
    /// @notice Share of an epoch's emission that the next epoch keeps, in 1e18 fixed point (at most 1e18).
    uint256 public immutable retentionWad;
    /// @notice The token's supply cap (immutable in the token, read once).
    uint256 public immutable supplyCap;

    /// @inheritdoc IRewardVault
    uint256 public outstanding;

    mapping(uint64 epoch => Record) private _records;

    /// @param admin Receives DEFAULT_ADMIN_ROLE (grants PAYER_ROLE).
    /// @param token_ ComputeToken; the vault needs its MINTER_ROLE to pay rewards.
    /// @param epochs_ EpochManager.
    /// @param initialEmission_ Emission of epoch 1 (token units).
    /// @param retentionWad_ Per-epoch retention in (0, 1e18]; `1e18 × 2^(-1/h)` halves the emission every h epochs.
    constructor(
        address admin,
        IComputeToken token_,
        IEpochManager epochs_,
        uint256 initialEmission_,
        uint256 retentionWad_
    ) {
        if (admin == address(0) || address(token_) == address(0) || address(epochs_) == address(0)) {
            revert RewardVaultZeroAddress();
        }
        if (retentionWad_ == 0 || retentionWad_ > _WAD) revert RewardVaultInvalidRetention(retentionWad_);
        token = token_;
        epochs = epochs_;
        initialEmission = initialEmission_;
        retentionWad = retentionWad_;
        supplyCap = ERC20Capped(address(token_)).cap();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @inheritdoc IRewardVault
    /// @dev Only from the end of the epoch's Dispute phase (`RewardVaultEmissionNotDue` before), and never after
    ///      its rest was returned unfixed.
    function fixEmission(uint64 epoch) external returns (uint256 emission) {
        return _fix(epoch).emission;
    }

    /// @inheritdoc IRewardVault
    /// @dev Fixing and paying in one call: a claim makes one call to the vault.
    function payShare(uint64 epoch, address to, uint256 share, uint256 total)
        external
        onlyRole(PAYER_ROLE)
        nonReentrant
        returns (uint256 amount)
    {
        if (to == address(0)) revert RewardVaultZeroAddress();
        if (share > total || total == 0) revert RewardVaultInvalidShare(share, total);
        Record memory record = _fix(epoch);
        if (record.returned) revert RewardVaultAlreadyReturned(epoch);
        // Exact without 512-bit arithmetic: emission < 2^120 and share <= total, so the product is below 2^248.
        amount = uint256(record.emission) * share / total;
        if (amount == 0) return 0;
        uint256 remaining = record.emission - record.paid;
        if (amount > remaining) revert RewardVaultEmissionExceeded(epoch, amount, remaining);
        // amount <= remaining < 2^120, and `outstanding` holds at least this epoch's remaining.
        _records[epoch].paid = record.paid + uint120(amount);
        outstanding -= amount;
        emit RewardPaid(epoch, to, amount);
        token.mint(to, amount);
    }

    /// @inheritdoc IRewardVault
    function payBounty(address to, uint256 amount) external onlyRole(PAYER_ROLE) nonReentrant returns (uint256 paid) {
        if (to == address(0)) revert RewardVaultZeroAddress();
        paid = Math.min(amount, token.balanceOf(address(this)));
        emit BountyPaid(to, paid, amount);
        if (paid != 0) token.safeTransfer(to, paid);
    }

    /// @inheritdoc IRewardVault
    /// @dev An epoch whose emission was never fixed returns 0 and can no longer be fixed.
    function returnUnclaimed(uint64 epoch) external returns (uint256 amount) {
        if (epoch == 0) revert RewardVaultInvalidEpoch(epoch);
        Record memory record = _records[epoch];
        if (record.returned) revert RewardVaultAlreadyReturned(epoch);
        uint64 claimEnd = epochs.timelineOf(epoch).claimEnd;
        if (_clock() < claimEnd) revert RewardVaultClaimsOpen(epoch, claimEnd);
        amount = record.emission - record.paid;
        _records[epoch].returned = true;
        outstanding -= amount;
        emit UnclaimedReturned(epoch, amount);
    }

    /// @inheritdoc IRewardVault
    /// @dev `initialEmission × r^(e-1)` with `r^(e-1)` by exponentiation by squaring in 1e18 fixed point, each
    ///      product rounded down: at most 64 squarings for a uint64 exponent. The rounding loses far less than
    ///      one part in 1e15 of the emission over any realistic horizon.
    function scheduledEmission(uint64 epoch) public view returns (uint256) {
        if (epoch == 0) revert RewardVaultInvalidEpoch(epoch);
        uint256 factor = _WAD;
        uint256 base = retentionWad;
        for (uint256 n = epoch - 1; n != 0; n >>= 1) {
            if (n & 1 != 0) factor = factor * base / _WAD;
            base = base * base / _WAD;
        }
        return Math.mulDiv(initialEmission, factor, _WAD);
    }

    /// @inheritdoc IRewardVault
    function emissionOf(uint64 epoch) external view returns (EpochEmission memory) {
        Record memory record = _records[epoch];
        return EpochEmission({
            fixed_: record.fixed_,
            returned: record.returned,
            emission: record.emission,
            paid: record.paid
        });
    }

    /// @dev The epoch's record with its emission fixed: the smaller of the scheduled emission and the room left
    ///      under the supply cap (zero when other minters took it all).
    function _fix(uint64 epoch) private returns (Record memory record) {
        record = _records[epoch];
        if (record.fixed_) return record;
        if (epoch == 0) revert RewardVaultInvalidEpoch(epoch);
        if (record.returned) revert RewardVaultAlreadyReturned(epoch);
        uint64 due = epochs.timelineOf(epoch).disputeEnd;
        if (_clock() < due) revert RewardVaultEmissionNotDue(epoch, due);

        uint256 taken = token.totalSupply() + outstanding;
        uint256 room = supplyCap > taken ? supplyCap - taken : 0;
        uint256 emission = Math.min(scheduledEmission(epoch), room);
        record.fixed_ = true;
        record.emission = SafeCast.toUint120(emission);
        _records[epoch] = record;
        outstanding += emission;
        emit EmissionFixed(epoch, emission);
    }
}
