namespace Procurement.Domain.Allocations;

/// <summary>PENDING → ACTIVE → RELEASED | PREEMPTED | EXPIRED, or PENDING → CANCELLED.</summary>
public enum AllocationState
{
    Pending = 1,
    Active = 2,
    Released = 3,
    Preempted = 4,
    Expired = 5,
    Cancelled = 6,
}

/// <summary>What an allocation event reports.</summary>
public enum AllocationEventType
{
    Queued = 1,
    Admitted = 2,
    Preempted = 3,
    Released = 4,
    Expired = 5,
    Cancelled = 6,

    /// <summary>A capacity block's window began (the event names the block, not an allocation).</summary>
    BlockStarted = 7,

    /// <summary>A capacity block's window ended (the event names the block, not an allocation).</summary>
    BlockEnded = 8,
}

/// <summary>Why a transition happened.</summary>
public enum AllocationCause
{
    /// <summary>The caller asked (request, release).</summary>
    ClientRequest = 1,

    /// <summary>Preempted to admit a request within its contract's reservation.</summary>
    GuaranteedRequest = 2,

    /// <summary>Preempted to admit a burst request of a higher-priority contract.</summary>
    HigherPriorityRequest = 3,

    /// <summary>The pool's capacity was reduced below the units held.</summary>
    CapacityReduced = 4,

    ContractSuspended = 5,
    ContractTerminated = 6,
    ContractExpired = 7,

    /// <summary>The allocation's own end time was reached.</summary>
    EndTimeReached = 8,

    /// <summary>A queued request was admitted when capacity freed up.</summary>
    CapacityFreed = 9,

    /// <summary>A capacity block of the contract ended and it held more than its reservation plus burst limit.</summary>
    CapacityBlockEnded = 10,
}

/// <summary>An allocation of units of one pool to one contract.</summary>
public sealed record Allocation(
    long Seq,
    string Id,
    string ContractId,
    string TenantId,
    string PoolId,
    long Units,
    AllocationState State,
    AllocationCause Cause,
    DateTimeOffset RequestedAt,
    DateTimeOffset? AdmittedAt,
    DateTimeOffset? EndedAt,
    DateTimeOffset? EndTime,
    TimeSpan? Duration)
{
    public const string ResourceType = "allocation";

    public static string IdOf(long seq) => $"alc_{seq}";

    public bool IsFinal => State is AllocationState.Released or AllocationState.Preempted or AllocationState.Expired or AllocationState.Cancelled;
}
