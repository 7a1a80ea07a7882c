// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Multicall} from "@openzeppelin/contracts/utils/Multicall.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IChallengeBoard} from "./interfaces/IChallengeBoard.sol";
import {IMinerRegistry} from "./interfaces/IMinerRegistry.sol";
import {ITrainingRuns} from "./interfaces/ITrainingRuns.sol";
import {AddressPages} from "./utils/AddressPages.sol";
import {Clock} from "./utils/Clock.sol";
import {SelfPermit} from "./utils/SelfPermit.sol";

/// @title TrainingRuns
/// @notice Runs, their escrow and their membership. See {ITrainingRuns}.
/// @dev Invites are EIP-712 typed data bound to this chain and contract, checked against the run's
///      current master at acceptance, and single use per (run, nonce): the weaknesses of Prime's
///      personal_sign invites (no chain id, no contract, replayable) do not exist here.
contract TrainingRuns is
    ITrainingRuns,
    AccessControl,
    EIP712,
    ReentrancyGuardTransient,
    Multicall,
    SelfPermit,
    Clock
{
    using SafeERC20 for IERC20;

    /// @notice Role of the contracts that reserve, pay and release escrow (task ledger, settlement).
    bytes32 public constant ESCROW_ROLE = keccak256("ESCROW_ROLE");
    /// @notice Upper bound on a run's allowed GPU models.
    uint256 public constant MAX_ALLOWED_GPU_MODELS = 16;
    /// @notice Upper bound on the runs one node takes part in at once; bounds `activeRunCount`.
    uint256 public constant MAX_RUNS_PER_NODE = 16;
    /// @notice Upper bound on the length of a discovery URI, in bytes.
    uint256 public constant MAX_DISCOVERY_URI_LENGTH = 256;
    /// @notice EIP-712 type of a master's invite.
    bytes32 public constant INVITE_TYPEHASH =
        keccak256("Invite(uint256 runId,address node,uint256 generation,uint256 nonce,uint256 expiry)");

    /// @dev Storage layout of a run; the first two slots hold everything `registerForRun` reads, and `reserved`
    ///      and `paid` share a slot, so that paying from escrow rewrites one slot (and a run's first pay does not
    ///      write a fresh one).
    struct RunRecord {
        address buyer;
        RunStatus status;
        uint32 maxMembers;
        uint16 minGpuCount;
        uint16 minCpuCores;
        address master;
        uint32 minGpuMemoryMB;
        uint32 minRamMB;
        uint32 minStorageGB;
        uint128 pricePerUnit;
        uint128 deposited;
        uint128 reserved;
        uint128 paid;
        uint128 refunded;
        string discoveryURI;
        bytes32[] allowedGpuModels;
    }

    /// @dev A node's participation in a run, its positions in the two lists that hold it, and its invite
    ///      generation (kept when the participation ends, so that older invites stay void).
    struct ParticipationRecord {
        Participation status;
        uint32 memberIndex;
        uint8 runIndex;
        uint32 generation;
    }

    /// @notice Token of the escrow.
    IERC20 public immutable token;
    /// @notice Node registry.
    IMinerRegistry public immutable registry;
    /// @notice Challenge results.
    IChallengeBoard public immutable challengeBoard;

    uint256 private _runCount;
    mapping(uint256 runId => RunRecord) private _runs;
    mapping(uint256 runId => mapping(bytes32 model => bool)) private _allowedModel;
    mapping(uint256 runId => address[]) private _members;
    mapping(uint256 runId => mapping(address node => ParticipationRecord)) private _participation;
    mapping(address node => uint256[]) private _nodeRuns;
    mapping(uint256 runId => mapping(uint256 nonce => bool)) private _inviteNonceUsed;

    /// @param admin Receives DEFAULT_ADMIN_ROLE (grants ESCROW_ROLE).
    /// @param token_ Escrow token.
    /// @param registry_ MinerRegistry.
    /// @param challengeBoard_ ChallengeBoard.
    constructor(address admin, IERC20 token_, IMinerRegistry registry_, IChallengeBoard challengeBoard_)
        EIP712("computenet.TrainingRuns", "1")
    {
        if (
            admin == address(0) || address(token_) == address(0) || address(registry_) == address(0)
                || address(challengeBoard_) == address(0)
        ) revert TrainingRunsZeroAddress();
        token = token_;
        registry = registry_;
        challengeBoard = challengeBoard_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ------------------------------------------------------------------ buyers

    /// @inheritdoc ITrainingRuns
    function createRun(RunParams calldata params) external nonReentrant returns (uint256 runId) {
        if (params.master == address(0)) revert TrainingRunsZeroAddress();
        if (params.maxMembers == 0) revert TrainingRunsInvalidMaxMembers();
        _checkDiscoveryURI(params.discoveryURI);
        Requirements calldata req = params.requirements;
        uint256 modelCount = req.allowedGpuModels.length;
        if (modelCount > MAX_ALLOWED_GPU_MODELS) revert TrainingRunsTooManyGpuModels(modelCount, MAX_ALLOWED_GPU_MODELS);

        runId = ++_runCount;
        RunRecord storage run = _runs[runId];
        run.buyer = msg.sender;
        run.status = RunStatus.Pending;
        run.maxMembers = params.maxMembers;
        run.minGpuCount = req.minGpuCount;
        run.minCpuCores = req.minCpuCores;
        run.master = params.master;
        run.minGpuMemoryMB = req.minGpuMemoryMB;
        run.minRamMB = req.minRamMB;
        run.minStorageGB = req.minStorageGB;
        run.pricePerUnit = params.pricePerUnit;
        run.deposited = params.budget;
        run.discoveryURI = params.discoveryURI;
        for (uint256 i; i < modelCount; ++i) {
            bytes32 model = req.allowedGpuModels[i];
            if (model == bytes32(0) || _allowedModel[runId][model]) revert TrainingRunsInvalidGpuModel(model);
            _allowedModel[runId][model] = true;
            run.allowedGpuModels.push(model);
        }
        emit RunCreated(
            runId,
            msg.sender,
            params.master,
            params.pricePerUnit,
            params.maxMembers,
            params.budget,
            params.discoveryURI,
            req
        );

        if (params.budget > 0) token.safeTransferFrom(msg.sender, address(this), params.budget);
    }

    /// @inheritdoc ITrainingRuns
    function startRun(uint256 runId) external {
        RunRecord storage run = _checkBuyerOrMaster(runId);
        if (run.status != RunStatus.Pending) revert TrainingRunsInvalidStatus(runId, run.status);
        run.status = RunStatus.Active;
        emit RunStarted(runId, msg.sender);
    }

    /// @inheritdoc ITrainingRuns
    function completeRun(uint256 runId) external nonReentrant {
        RunRecord storage run = _checkBuyer(runId);
        if (run.status != RunStatus.Active) revert TrainingRunsInvalidStatus(runId, run.status);
        run.status = RunStatus.Completed;
        uint128 refund = _available(run);
        run.refunded += refund;
        emit RunCompleted(runId, msg.sender, refund);
        if (refund > 0) token.safeTransfer(run.buyer, refund);
    }

    /// @inheritdoc ITrainingRuns
    function cancelRun(uint256 runId) external nonReentrant {
        RunRecord storage run = _checkBuyer(runId);
        _checkOpen(runId, run);
        run.status = RunStatus.Cancelled;
        uint128 refund = _available(run);
        run.refunded += refund;
        emit RunCancelled(runId, refund);
        if (refund > 0) token.safeTransfer(run.buyer, refund);
    }

    /// @inheritdoc ITrainingRuns
    function fundRun(uint256 runId, uint256 amount) external nonReentrant {
        RunRecord storage run = _openRun(runId);
        if (amount == 0) revert TrainingRunsZeroAmount();
        run.deposited += SafeCast.toUint128(amount);
        emit RunFunded(runId, msg.sender, amount);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc ITrainingRuns
    function setMaster(uint256 runId, address newMaster) external {
        RunRecord storage run = _checkBuyer(runId);
        _checkOpen(runId, run);
        if (newMaster == address(0)) revert TrainingRunsZeroAddress();
        address previous = run.master;
        run.master = newMaster;
        emit MasterChanged(runId, previous, newMaster);
    }

    /// @inheritdoc ITrainingRuns
    function setDiscoveryURI(uint256 runId, string calldata discoveryURI) external {
        RunRecord storage run = _checkBuyer(runId);
        _checkOpen(runId, run);
        _checkDiscoveryURI(discoveryURI);
        run.discoveryURI = discoveryURI;
        emit DiscoveryURIChanged(runId, discoveryURI);
    }

    // ------------------------------------------------------------------ nodes

    /// @inheritdoc ITrainingRuns
    function registerForRun(uint256 runId, address node) external {
        RunRecord storage run = _openRun(runId);
        address provider = registry.providerOf(node);
        if (provider == address(0)) revert TrainingRunsNodeNotRegistered(node);
        if (msg.sender != node && msg.sender != provider) revert TrainingRunsNotNodeOrProvider(node, msg.sender);
        ParticipationRecord storage participation = _participation[runId][node];
        if (participation.status != Participation.None) {
            revert TrainingRunsInvalidParticipation(runId, node, participation.status);
        }
        if (!registry.hasMinimumStake(node)) revert TrainingRunsInsufficientStake(node);
        _checkRequirements(runId, run, node, registry.getNode(node).capabilities);

        uint256[] storage runs = _nodeRuns[node];
        if (runs.length >= MAX_RUNS_PER_NODE) {
            _pruneEndedRuns(node, runs);
            if (runs.length >= MAX_RUNS_PER_NODE) revert TrainingRunsTooManyRuns(node, MAX_RUNS_PER_NODE);
        }
        participation.status = Participation.Registered;
        participation.runIndex = uint8(runs.length);
        runs.push(runId);
        emit NodeRegisteredForRun(runId, node, provider);
    }

    /// @inheritdoc ITrainingRuns
    function acceptInvite(uint256 runId, address node, uint256 nonce, uint256 expiry, bytes calldata signature)
        external
    {
        RunRecord storage run = _openRun(runId);
        _checkNodeOrProvider(node);
        ParticipationRecord storage participation = _participation[runId][node];
        if (participation.status != Participation.Registered) {
            revert TrainingRunsInvalidParticipation(runId, node, participation.status);
        }
        if (_clock() > expiry) revert TrainingRunsInviteExpired(expiry, _clock());
        if (_inviteNonceUsed[runId][nonce]) revert TrainingRunsInviteNonceUsed(runId, nonce);
        address master = run.master;
        if (!SignatureChecker.isValidSignatureNowCalldata(master, inviteDigest(runId, node, nonce, expiry), signature)) {
            revert TrainingRunsInvalidInviteSignature(runId, node, master);
        }
        if (!challengeBoard.isValidated(node)) revert TrainingRunsNodeNotValidated(node);
        if (!registry.hasMinimumStake(node)) revert TrainingRunsInsufficientStake(node);
        address[] storage members = _members[runId];
        uint256 count = members.length;
        if (count >= run.maxMembers) revert TrainingRunsFull(runId, run.maxMembers);

        _inviteNonceUsed[runId][nonce] = true;
        participation.status = Participation.Member;
        participation.memberIndex = uint32(count);
        members.push(node);
        emit NodeJoined(runId, node, nonce);
    }

    /// @inheritdoc ITrainingRuns
    function revokeInvite(uint256 runId, uint256 nonce) external {
        RunRecord storage run = _run(runId);
        if (msg.sender != run.master) revert TrainingRunsNotMaster(runId, msg.sender);
        if (_inviteNonceUsed[runId][nonce]) revert TrainingRunsInviteNonceUsed(runId, nonce);
        _inviteNonceUsed[runId][nonce] = true;
        emit InviteRevoked(runId, nonce);
    }

    /// @inheritdoc ITrainingRuns
    function leaveRun(uint256 runId, address node) external {
        _run(runId);
        _checkNodeOrProvider(node);
        ParticipationRecord storage participation = _participation[runId][node];
        Participation status = participation.status;
        if (status == Participation.None) revert TrainingRunsInvalidParticipation(runId, node, status);
        _removeParticipant(runId, node, participation);
        emit NodeLeft(runId, node, status);
    }

    /// @inheritdoc ITrainingRuns
    function eject(uint256 runId, address node, bytes32 reason) external {
        RunRecord storage run = _openRun(runId);
        if (msg.sender != run.master) revert TrainingRunsNotMaster(runId, msg.sender);
        ParticipationRecord storage participation = _participation[runId][node];
        Participation status = participation.status;
        if (status == Participation.None) revert TrainingRunsInvalidParticipation(runId, node, status);
        _removeParticipant(runId, node, participation);
        emit NodeEjected(runId, node, status, reason);
    }

    // ------------------------------------------------------------------ escrow (protocol contracts)

    /// @inheritdoc ITrainingRuns
    function reserveEscrow(uint256 runId, uint256 amount) external onlyRole(ESCROW_ROLE) {
        RunRecord storage run = _openRun(runId);
        if (amount == 0) revert TrainingRunsZeroAmount();
        uint128 available = _available(run);
        if (amount > available) revert TrainingRunsInsufficientEscrow(runId, available, amount);
        run.reserved += uint128(amount);
        emit EscrowReserved(runId, msg.sender, amount);
    }

    /// @inheritdoc ITrainingRuns
    /// @dev Reads the run's status only when the reservation falls short (an unknown run reserves nothing): a
    ///      payment reads and writes one slot of the run.
    function payFromEscrow(uint256 runId, address to, uint256 amount) external onlyRole(ESCROW_ROLE) nonReentrant {
        if (to == address(0)) revert TrainingRunsZeroAddress();
        if (amount == 0) revert TrainingRunsZeroAmount();
        RunRecord storage run = _runs[runId];
        uint128 reserved = run.reserved;
        if (amount > reserved) {
            _run(runId);
            revert TrainingRunsInsufficientEscrow(runId, reserved, amount);
        }
        run.reserved = reserved - uint128(amount);
        run.paid += uint128(amount);
        emit EscrowPaid(runId, to, amount);
        token.safeTransfer(to, amount);
    }

    /// @inheritdoc ITrainingRuns
    function releaseEscrow(uint256 runId, uint256 amount) external onlyRole(ESCROW_ROLE) nonReentrant {
        RunRecord storage run = _run(runId);
        if (amount == 0) revert TrainingRunsZeroAmount();
        uint128 reserved = run.reserved;
        if (amount > reserved) revert TrainingRunsInsufficientEscrow(runId, reserved, amount);
        run.reserved = reserved - uint128(amount);
        bool ended = run.status == RunStatus.Completed || run.status == RunStatus.Cancelled;
        if (ended) run.refunded += uint128(amount);
        emit EscrowReleased(runId, amount, ended);
        if (ended) token.safeTransfer(run.buyer, amount);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc ITrainingRuns
    function getRun(uint256 runId) external view returns (RunInfo memory) {
        RunRecord storage run = _run(runId);
        return RunInfo({
            buyer: run.buyer,
            master: run.master,
            status: run.status,
            maxMembers: run.maxMembers,
            memberCount: uint32(_members[runId].length),
            pricePerUnit: run.pricePerUnit,
            discoveryURI: run.discoveryURI
        });
    }

    /// @inheritdoc ITrainingRuns
    function requirementsOf(uint256 runId) external view returns (Requirements memory) {
        RunRecord storage run = _run(runId);
        return Requirements({
            minGpuCount: run.minGpuCount,
            minGpuMemoryMB: run.minGpuMemoryMB,
            minCpuCores: run.minCpuCores,
            minRamMB: run.minRamMB,
            minStorageGB: run.minStorageGB,
            allowedGpuModels: run.allowedGpuModels
        });
    }

    /// @inheritdoc ITrainingRuns
    function escrowOf(uint256 runId) external view returns (Escrow memory) {
        RunRecord storage run = _run(runId);
        return Escrow({
            deposited: run.deposited,
            paid: run.paid,
            refunded: run.refunded,
            reserved: run.reserved,
            available: _available(run)
        });
    }

    /// @inheritdoc ITrainingRuns
    function isMaster(uint256 runId, address account) external view returns (bool) {
        return _runs[runId].master == account && account != address(0);
    }

    /// @inheritdoc ITrainingRuns
    function isMember(uint256 runId, address node) external view returns (bool) {
        return _participation[runId][node].status == Participation.Member;
    }

    /// @inheritdoc ITrainingRuns
    function participationOf(uint256 runId, address node) external view returns (Participation) {
        return _participation[runId][node].status;
    }

    /// @inheritdoc ITrainingRuns
    function membersOf(uint256 runId, uint256 offset, uint256 limit) external view returns (address[] memory) {
        return AddressPages.page(_members[runId], offset, limit);
    }

    /// @inheritdoc ITrainingRuns
    function runsOf(address node) external view returns (uint256[] memory) {
        return _nodeRuns[node];
    }

    /// @inheritdoc ITrainingRuns
    function activeRunCount(address node) external view returns (uint256 count) {
        uint256[] storage runs = _nodeRuns[node];
        uint256 length = runs.length; // <= MAX_RUNS_PER_NODE
        for (uint256 i; i < length; ++i) {
            if (_isOpen(_runs[runs[i]].status)) ++count;
        }
    }

    /// @inheritdoc ITrainingRuns
    function isInviteNonceUsed(uint256 runId, uint256 nonce) external view returns (bool) {
        return _inviteNonceUsed[runId][nonce];
    }

    /// @inheritdoc ITrainingRuns
    function inviteDigest(uint256 runId, address node, uint256 nonce, uint256 expiry) public view returns (bytes32) {
        uint256 generation = _participation[runId][node].generation;
        return _hashTypedDataV4(keccak256(abi.encode(INVITE_TYPEHASH, runId, node, generation, nonce, expiry)));
    }

    /// @inheritdoc ITrainingRuns
    function inviteGenerationOf(uint256 runId, address node) external view returns (uint256) {
        return _participation[runId][node].generation;
    }

    /// @inheritdoc ITrainingRuns
    function runCount() external view returns (uint256) {
        return _runCount;
    }

    /// @notice EIP-712 domain separator of this contract on this chain.
    /// @return The separator.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ------------------------------------------------------------------ internals

    function _permitToken() internal view override returns (IERC20Permit) {
        return IERC20Permit(address(token));
    }

    function _run(uint256 runId) private view returns (RunRecord storage run) {
        run = _runs[runId];
        if (run.status == RunStatus.None) revert TrainingRunsUnknownRun(runId);
    }

    function _openRun(uint256 runId) private view returns (RunRecord storage run) {
        run = _run(runId);
        _checkOpen(runId, run);
    }

    function _checkOpen(uint256 runId, RunRecord storage run) private view {
        if (!_isOpen(run.status)) revert TrainingRunsInvalidStatus(runId, run.status);
    }

    function _isOpen(RunStatus status) private pure returns (bool) {
        return status == RunStatus.Pending || status == RunStatus.Active;
    }

    function _checkBuyer(uint256 runId) private view returns (RunRecord storage run) {
        run = _run(runId);
        if (msg.sender != run.buyer) revert TrainingRunsNotBuyer(runId, msg.sender);
    }

    function _checkBuyerOrMaster(uint256 runId) private view returns (RunRecord storage run) {
        run = _run(runId);
        if (msg.sender != run.buyer && msg.sender != run.master) revert TrainingRunsNotBuyerOrMaster(runId, msg.sender);
    }

    /// @dev The node itself may always act for itself (even after deregistering); otherwise the caller
    ///      must be its current provider.
    function _checkNodeOrProvider(address node) private view {
        if (msg.sender == node) return;
        if (msg.sender != registry.providerOf(node)) revert TrainingRunsNotNodeOrProvider(node, msg.sender);
    }

    function _checkDiscoveryURI(string calldata uri) private pure {
        uint256 length = bytes(uri).length;
        if (length == 0 || length > MAX_DISCOVERY_URI_LENGTH) {
            revert TrainingRunsInvalidDiscoveryURI(length, MAX_DISCOVERY_URI_LENGTH);
        }
    }

    function _checkRequirements(
        uint256 runId,
        RunRecord storage run,
        address node,
        IMinerRegistry.Capabilities memory caps
    ) private view {
        if (caps.gpuCount < run.minGpuCount) {
            revert TrainingRunsRequirementNotMet(
                runId, node, IMinerRegistry.Capability.GpuCount, run.minGpuCount, caps.gpuCount
            );
        }
        if (caps.gpuMemoryMB < run.minGpuMemoryMB) {
            revert TrainingRunsRequirementNotMet(
                runId, node, IMinerRegistry.Capability.GpuMemory, run.minGpuMemoryMB, caps.gpuMemoryMB
            );
        }
        if (caps.cpuCores < run.minCpuCores) {
            revert TrainingRunsRequirementNotMet(
                runId, node, IMinerRegistry.Capability.CpuCores, run.minCpuCores, caps.cpuCores
            );
        }
        if (caps.ramMB < run.minRamMB) {
            revert TrainingRunsRequirementNotMet(runId, node, IMinerRegistry.Capability.Ram, run.minRamMB, caps.ramMB);
        }
        if (caps.storageGB < run.minStorageGB) {
            revert TrainingRunsRequirementNotMet(
                runId, node, IMinerRegistry.Capability.Storage, run.minStorageGB, caps.storageGB
            );
        }
        if (run.allowedGpuModels.length > 0 && !_allowedModel[runId][caps.gpuModel]) {
            revert TrainingRunsGpuModelNotAllowed(runId, node, caps.gpuModel);
        }
    }

    function _available(RunRecord storage run) private view returns (uint128) {
        return run.deposited - run.paid - run.refunded - run.reserved;
    }

    function _removeParticipant(uint256 runId, address node, ParticipationRecord storage participation) private {
        if (participation.status == Participation.Member) {
            address[] storage members = _members[runId];
            uint32 memberIndex = participation.memberIndex;
            address movedNode = members[members.length - 1];
            members[memberIndex] = movedNode;
            _participation[runId][movedNode].memberIndex = memberIndex;
            members.pop();
        }
        uint256[] storage runs = _nodeRuns[node];
        uint8 runIndex = participation.runIndex;
        uint256 movedRun = runs[runs.length - 1];
        runs[runIndex] = movedRun;
        _participation[movedRun][node].runIndex = runIndex;
        runs.pop();
        participation.status = Participation.None;
        participation.memberIndex = 0;
        participation.runIndex = 0;
        ++participation.generation;
    }

    /// @dev Drops the node's entries for ended runs (bounded by MAX_RUNS_PER_NODE), so a node is never
    ///      stuck because of runs that ended while it was in them.
    function _pruneEndedRuns(address node, uint256[] storage runs) private {
        for (uint256 i = runs.length; i > 0; --i) {
            uint256 runId = runs[i - 1];
            if (!_isOpen(_runs[runId].status)) {
                ParticipationRecord storage participation = _participation[runId][node];
                Participation status = participation.status;
                _removeParticipant(runId, node, participation);
                emit NodeLeft(runId, node, status);
            }
        }
    }
}
