// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IProofOfCompute
/// @notice Proof of Compute per epoch, and the power it yields. In the PoC phase of an epoch each node runs
///         the seeded PoC puzzle (weights from the epoch's PoC beacon, inputs from (beacon, node, nonce)) and
///         commits the Merkle root of its valid nonces and their count. Until the PoC validation phase ends,
///         verdict givers sample leaves off chain, recompute them, and submit a verdict; a commitment is
///         Accepted once the accepting weight exceeds `acceptShareBps` of its verdict weight, and Rejected
///         once acceptance can no longer happen.
///
///         Verdict weight of epoch `e`: each node's power in epoch `e - 1`, out of `totalPower(e - 1)`. While
///         no power exists in `e - 1` (the first epochs of a network, or after an epoch without accepted PoC)
///         the bootstrap set decides: VALIDATOR_ROLE holders with weight 1 each, out of their count.
///         A node cannot judge its own commitment, so the verdict weight of a commitment is the epoch's
///         minus the node's own (`verdictWeightFor`): with three nodes or fewer in `e - 1` each holds a third
///         or more, and the largest could otherwise never be accepted. A node that held all the power of
///         `e - 1` is judged by the bootstrap set.
///
///         Power: the raw power of a node is its accepted count. One node's share of the epoch's total power
///         is capped at `maxShareBps` (30 % by default); with fewer nodes the cap is higher — 100 % with one
///         accepted node, 50 % with two, 40 % with three, and never below 1/n with n nodes. The cap is a
///         water level `x`: power = min(raw, x), where `x` is the largest level at which no node holds more
///         than the cap of the sum of capped powers (as Gonka caps, without a loop over nodes: at most
///         `MAX_CAPPED` nodes can lie above any admissible level, so only the largest raw counts are kept).
///         Power is final once the epoch's PoC validation phase is over (`isPowerFinal`).
interface IProofOfCompute {
    /// @notice State of a node's PoC commitment in one epoch.
    enum Status {
        None,
        Pending,
        Accepted,
        Rejected
    }

    /// @notice A node's PoC commitment.
    /// @param root Merkle root (OpenZeppelin StandardMerkleTree, leaf `(uint256 index, uint256 nonce)`).
    /// @param count Number of valid nonces claimed (leaves, indexed 0 .. count - 1, nonces strictly increasing).
    /// @param status Verdict so far.
    /// @param committedAt Time of the commitment.
    /// @param acceptWeight Verdict weight that accepted.
    /// @param rejectWeight Verdict weight that rejected.
    struct Commitment {
        bytes32 root;
        uint64 count;
        Status status;
        uint64 committedAt;
        uint128 acceptWeight;
        uint128 rejectWeight;
    }

    /// @notice A zero address where a contract or account is needed.
    error ProofOfComputeZeroAddress();
    /// @notice A share parameter outside [min, max] (basis points).
    error ProofOfComputeInvalidShare(uint256 bps, uint256 min, uint256 max);
    /// @notice PoC commitments for `epoch` are accepted only during its PoC phase, [opensAt, closesAt).
    error ProofOfComputeOutsideCommitWindow(uint64 epoch, uint64 opensAt, uint64 closesAt);
    /// @notice Verdicts for `epoch` are accepted only until the end of its PoC validation phase (`closesAt`).
    error ProofOfComputeOutsideVerdictWindow(uint64 epoch, uint64 closesAt);
    /// @notice `epoch` has no PoC beacon (never advanced), so no PoC can exist for it.
    error ProofOfComputeEpochNotAdvanced(uint64 epoch);
    /// @notice The node is not registered in the MinerRegistry.
    error ProofOfComputeNodeNotRegistered(address node);
    /// @notice The node has not passed its hardware challenge (ChallengeBoard).
    error ProofOfComputeNodeNotValidated(address node);
    /// @notice The node committed no seed for `epoch` (EpochManager), so it could never claim.
    error ProofOfComputeNoSeedCommitment(uint64 epoch, address node);
    /// @notice A zero root or a zero count.
    error ProofOfComputeEmptyCommitment();
    /// @notice `node` already committed for `epoch`.
    error ProofOfComputeAlreadyCommitted(uint64 epoch, address node);
    /// @notice `node` has no commitment for `epoch`.
    error ProofOfComputeNoCommitment(uint64 epoch, address node);
    /// @notice The commitment of `node` for `epoch` is already decided (`status`).
    error ProofOfComputeAlreadyDecided(uint64 epoch, address node, Status status);
    /// @notice A node cannot give a verdict on its own commitment.
    error ProofOfComputeSelfVerdict(address node);
    /// @notice `validator` already gave a verdict on `node` for `epoch`.
    error ProofOfComputeAlreadyVoted(uint64 epoch, address node, address validator);
    /// @notice `validator` has no verdict weight in `epoch` (no power in the epoch before, or not in the
    ///         bootstrap set while that one decides).
    error ProofOfComputeNoVerdictWeight(uint64 epoch, address validator);

    /// @notice `node` committed `root` over `count` valid nonces for `epoch`.
    event PocCommitted(uint64 indexed epoch, address indexed node, bytes32 root, uint64 count);
    /// @notice `validator` gave a verdict of weight `weight` on the commitment of `node` for `epoch`.
    ///         `evidenceHash` is the hash of what it sampled and found (published off chain).
    event PocVerdict(
        uint64 indexed epoch,
        address indexed node,
        address indexed validator,
        bool accepted,
        uint256 weight,
        bytes32 evidenceHash
    );
    /// @notice The commitment of `node` for `epoch` was accepted: its raw power is `count`. `totalWeight` is
    ///         the commitment's verdict weight (`verdictWeightFor`).
    event PocAccepted(uint64 indexed epoch, address indexed node, uint64 count, uint256 acceptWeight, uint256 totalWeight);
    /// @notice The commitment of `node` for `epoch` was rejected: it has no power in `epoch`. `totalWeight` is
    ///         the commitment's verdict weight.
    event PocRejected(uint64 indexed epoch, address indexed node, uint256 rejectWeight, uint256 totalWeight);

    /// @notice Commits the caller's (the node key's) PoC for `epoch`, during its PoC phase. The node must be
    ///         registered, validated on the ChallengeBoard and have committed its seed for `epoch`.
    /// @param epoch The current epoch (advanced: it has a PoC beacon).
    /// @param root Merkle root of the valid nonces.
    /// @param count Number of valid nonces (> 0).
    function commitPoc(uint64 epoch, bytes32 root, uint64 count) external;

    /// @notice Gives the caller's verdict on `node`'s commitment for `epoch`, from the commitment until the
    ///         end of the epoch's PoC validation phase; decides the commitment when a threshold is crossed.
    /// @param epoch Epoch.
    /// @param node Node whose commitment was checked.
    /// @param accepted Whether the sampled leaves were valid.
    /// @param evidenceHash Hash of the verdict's evidence (sampled indices and findings).
    function submitVerdict(uint64 epoch, address node, bool accepted, bytes32 evidenceHash) external;

    /// @notice The commitment of `node` for `epoch` (zeros when none).
    function commitmentOf(uint64 epoch, address node) external view returns (Commitment memory);

    /// @notice Whether `validator` gave a verdict on `node` for `epoch`.
    function hasVerdict(uint64 epoch, address node, address validator) external view returns (bool);

    /// @notice Verdict weight of `validator` in `epoch` (see the contract notice) and the total it is out of.
    /// @return weight The validator's weight (0 when it has none).
    /// @return total The epoch's verdict weight.
    /// @return bootstrap Whether the bootstrap set decides `epoch`.
    function verdictWeightOf(uint64 epoch, address validator)
        external
        view
        returns (uint256 weight, uint256 total, bool bootstrap);

    /// @notice Verdict weight of `validator` on the commitment of `node` in `epoch`, and the total that
    ///         commitment's thresholds are out of: the epoch's verdict weight without `node`'s own (see the
    ///         notice). Ignores whether `node` committed or `validator` already voted.
    /// @return weight The validator's weight (0 when it has none, and for `node` itself).
    /// @return total The commitment's verdict weight.
    /// @return bootstrap Whether the bootstrap set decides the commitment.
    function verdictWeightFor(uint64 epoch, address node, address validator)
        external
        view
        returns (uint256 weight, uint256 total, bool bootstrap);

    /// @notice Whether the power of `epoch` is final (its PoC validation phase is over).
    function isPowerFinal(uint64 epoch) external view returns (bool);

    /// @notice The accepted (uncapped) count of `node` in `epoch`; 0 unless accepted.
    function rawPowerOf(uint64 epoch, address node) external view returns (uint256);

    /// @notice The power of `node` in `epoch`: its raw power under the epoch's cap (see the notice). Final once
    ///         `isPowerFinal(epoch)`; before, it follows the commitments accepted so far.
    function powerOf(uint64 epoch, address node) external view returns (uint256);

    /// @notice Sum of the powers of all nodes in `epoch`.
    function totalPower(uint64 epoch) external view returns (uint256);

    /// @notice The epoch's cap: the water level (no node's power exceeds it), the effective cap share in basis
    ///         points, the number of accepted nodes and the sum of their raw powers.
    function powerCap(uint64 epoch)
        external
        view
        returns (uint256 level, uint256 capBps, uint256 acceptedNodes, uint256 rawTotal);
}
