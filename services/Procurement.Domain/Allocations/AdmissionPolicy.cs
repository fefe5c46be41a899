namespace Procurement.Domain.Allocations;

/// <summary>What one contract may hold in one pool, from the terms version in effect at the decision.</summary>
public sealed record ContractStanding(
    string ContractId,
    int Priority,
    bool PreemptLowerPriorityBurst,
    long ReservedUnits,
    long BurstLimitUnits,
    bool CanAllocate);

/// <summary>An ACTIVE allocation as admission sees it.</summary>
public sealed record HeldAllocation(long Seq, string AllocationId, string ContractId, long Units, DateTimeOffset AdmittedAt);

/// <summary>A PENDING request as the queue sees it.</summary>
public sealed record QueuedRequest(long Seq, string AllocationId, string ContractId, long Units, DateTimeOffset RequestedAt);

public enum AdmissionOutcome
{
    Admit = 1,
    Queue = 2,
    Refuse = 3,
}

/// <summary>The decision on one request, with every allocation it would preempt.</summary>
public sealed record AdmissionDecision(AdmissionOutcome Outcome, string? Reason, bool Guaranteed, IReadOnlyList<HeldAllocation> Victims)
{
    public const string BurstLimitExceeded = "BURST_LIMIT_EXCEEDED";
    public const string CapacityUnavailable = "CAPACITY_UNAVAILABLE";
    public const string ContractNotActive = "CONTRACT_NOT_ACTIVE";

    /// <summary>Why the victims are preempted.</summary>
    public AllocationCause VictimCause => Guaranteed ? AllocationCause.GuaranteedRequest : AllocationCause.HigherPriorityRequest;
}

/// <summary>
/// The state of one pool at the moment of a decision: capacity, ACTIVE allocations and the standing
/// of every contract involved. Decisions change it as they are applied, so a sequence of decisions
/// (a queue retry) sees each earlier one.
/// </summary>
public sealed class PoolLedger
{
    // By allocation id: the writer keeps a pool's ledger between decisions, so a release removes one
    // allocation without walking the others.
    private readonly Dictionary<string, HeldAllocation> _active = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ContractStanding> _contracts = new(StringComparer.Ordinal);
    // Kept with every change, so a decision's sums cost nothing however many allocations the pool holds.
    private readonly Dictionary<string, long> _unitsByContract = new(StringComparer.Ordinal);
    private long _held;

    public PoolLedger(long capacity, IEnumerable<HeldAllocation> active, IEnumerable<ContractStanding> contracts)
    {
        Capacity = capacity;
        foreach (var a in active)
        {
            Admit(a);
        }

        foreach (var c in contracts)
        {
            _contracts.Add(c.ContractId, c);
        }
    }

    public long Capacity { get; }

    /// <summary>The ACTIVE allocations, in no particular order (victims are ordered by <see cref="AdmissionPolicy.ChooseVictims"/>).</summary>
    public IReadOnlyCollection<HeldAllocation> Active => _active.Values;

    public long Held => _held;

    public long Free => Capacity - Held;

    public ContractStanding Standing(string contractId) =>
        _contracts.TryGetValue(contractId, out var s) ? s : new ContractStanding(contractId, 0, false, 0, 0, false);

    /// <summary>Whether the ledger knows the contract's standing (a contract it does not know can hold nothing).</summary>
    public bool HasStanding(string contractId) => _contracts.ContainsKey(contractId);

    /// <summary>Adds a contract's standing, e.g. of a contract that holds nothing in the pool yet and now asks.</summary>
    public void AddStanding(ContractStanding standing) => _contracts.Add(standing.ContractId, standing);

    public long UnitsOf(string contractId) => _unitsByContract.GetValueOrDefault(contractId);

    /// <summary>A contract is borrowing when it holds more than its reservation.</summary>
    public bool IsBorrowing(string contractId) => UnitsOf(contractId) > Standing(contractId).ReservedUnits;

    public void Admit(HeldAllocation allocation)
    {
        _active.Add(allocation.AllocationId, allocation);
        Count(allocation, +1);
    }

    public void Remove(IEnumerable<HeldAllocation> allocations)
    {
        foreach (var a in allocations)
        {
            Remove(a.AllocationId);
        }
    }

    /// <summary>Removes an ACTIVE allocation; one the ledger does not hold is ignored.</summary>
    public void Remove(string allocationId)
    {
        if (_active.Remove(allocationId, out var a))
        {
            Count(a, -1);
        }
    }

    private void Count(HeldAllocation a, int sign)
    {
        _held += sign * a.Units;
        _unitsByContract[a.ContractId] = _unitsByContract.GetValueOrDefault(a.ContractId) + sign * a.Units;
    }
}

/// <summary>
/// Admission by priority access (docs/design.md, "Admission"). Pure: the same ledger
/// and request always give the same decision.
/// </summary>
public static class AdmissionPolicy
{
    public static AdmissionDecision Decide(PoolLedger pool, string contractId, long units, bool waitIfUnavailable)
    {
        var k = pool.Standing(contractId);
        if (!k.CanAllocate)
        {
            return Refuse(AdmissionDecision.ContractNotActive);
        }

        var held = pool.UnitsOf(contractId);
        // Rule 1: never above reservation + burst limit.
        if (held + units > k.ReservedUnits + k.BurstLimitUnits)
        {
            return Refuse(AdmissionDecision.BurstLimitExceeded);
        }

        // Rule 2: within the reservation, the request is guaranteed.
        var guaranteed = held + units <= k.ReservedUnits;
        if (pool.Free >= units)
        {
            return new AdmissionDecision(AdmissionOutcome.Admit, null, guaranteed, []);
        }

        var borrowing = pool.Active.Select(a => a.ContractId).Distinct(StringComparer.Ordinal).Where(pool.IsBorrowing).ToHashSet(StringComparer.Ordinal);
        IEnumerable<HeldAllocation> candidates;
        if (guaranteed)
        {
            candidates = pool.Active.Where(a => borrowing.Contains(a.ContractId));
        }
        else if (k.PreemptLowerPriorityBurst)
        {
            // Rule 3: burst may preempt only strictly lower-priority borrowers.
            candidates = pool.Active.Where(a => borrowing.Contains(a.ContractId) && pool.Standing(a.ContractId).Priority < k.Priority);
        }
        else
        {
            candidates = [];
        }

        var victims = ChooseVictims(candidates, pool, pool.Free, units);
        if (victims is not null)
        {
            return new AdmissionDecision(AdmissionOutcome.Admit, null, guaranteed, victims);
        }

        return waitIfUnavailable
            ? new AdmissionDecision(AdmissionOutcome.Queue, AdmissionDecision.CapacityUnavailable, guaranteed, [])
            : Refuse(AdmissionDecision.CapacityUnavailable, guaranteed);
    }

    /// <summary>
    /// Victims in preemption order — lowest contract priority first, then most recently admitted,
    /// then higher allocation sequence — taken until <paramref name="needed"/> units are free; then
    /// walked back from the last chosen to the first, putting back each one not needed (minimal
    /// set). Null when even all candidates do not free enough.
    /// </summary>
    public static IReadOnlyList<HeldAllocation>? ChooseVictims(IEnumerable<HeldAllocation> candidates, PoolLedger pool, long free, long needed)
    {
        var ordered = candidates
            .OrderBy(a => pool.Standing(a.ContractId).Priority)
            .ThenByDescending(a => a.AdmittedAt)
            .ThenByDescending(a => a.Seq)
            .ToList();
        var chosen = new List<HeldAllocation>();
        foreach (var a in ordered)
        {
            if (free >= needed)
            {
                break;
            }

            chosen.Add(a);
            free += a.Units;
        }

        if (free < needed)
        {
            return null;
        }

        for (var i = chosen.Count - 1; i >= 0; i--)
        {
            if (free - chosen[i].Units >= needed)
            {
                free -= chosen[i].Units;
                chosen.RemoveAt(i);
            }
        }

        return chosen;
    }

    /// <summary>
    /// Rule 5: after a capacity cut below the units held, borrowers' allocations are preempted in
    /// the order of rule 2 until the held units fit. Enough whenever the reservations fit the new capacity.
    /// </summary>
    public static IReadOnlyList<HeldAllocation> VictimsForCapacity(PoolLedger pool)
    {
        if (pool.Free >= 0)
        {
            return [];
        }

        var borrowing = pool.Active.Select(a => a.ContractId).Distinct(StringComparer.Ordinal).Where(pool.IsBorrowing).ToHashSet(StringComparer.Ordinal);
        return ChooseVictims(pool.Active.Where(a => borrowing.Contains(a.ContractId)), pool, pool.Free, 0)
            ?? throw new InvalidOperationException("Reservations exceed capacity: the capacity cut should have been refused.");
    }

    /// <summary>Rule 4: the order in which PENDING requests are retried — priority high first, then oldest.</summary>
    public static IReadOnlyList<QueuedRequest> RetryOrder(IEnumerable<QueuedRequest> pending, PoolLedger pool) =>
        pending
            .OrderByDescending(p => pool.Standing(p.ContractId).Priority)
            .ThenBy(p => p.RequestedAt)
            .ThenBy(p => p.Seq)
            .ToList();

    private static AdmissionDecision Refuse(string reason, bool guaranteed = false) => new(AdmissionOutcome.Refuse, reason, guaranteed, []);
}
