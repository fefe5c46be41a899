using Procurement.Domain.Common;
using Procurement.Domain.Allocations;
using Procurement.Domain.Contracts;
using Procurement.Domain.Errors;
using Procurement.Storage;
using Procurement.Storage.Repositories;

namespace Procurement.Server.Application;

/// <summary>
/// The read-decide-write steps of admission, run inside a unit of work that holds the pool
/// (<see cref="IStoreSession.LockPoolsAsync"/>). Decisions come from <see cref="AdmissionPolicy"/>;
/// this class loads the ledger, writes the transitions and writes an event for every one of them.
/// </summary>
public static class AllocationEngine
{
    /// <summary>Everything admission needs about one pool now.</summary>
    public sealed record PoolView(
        long Capacity,
        PoolLedger Ledger,
        IReadOnlyList<Allocation> Active,
        IReadOnlyList<Allocation> Pending,
        IReadOnlyDictionary<string, Contract> Contracts)
    {
        /// <summary>ACTIVE allocations by id, kept current as decisions are applied (a queue retry may preempt one it just admitted).</summary>
        public Dictionary<string, Allocation> Open { get; } = Active.ToDictionary(a => a.Id, StringComparer.Ordinal);
    }

    public static async Task<PoolView> LoadAsync(IStoreSession s, string poolId, DateTimeOffset now, params Contract[] also)
    {
        var pool = await s.Pools.GetAsync(poolId) ?? throw DomainErrors.NotFound(Domain.Pools.Pool.ResourceType, poolId);
        return ViewOf(pool.CapacityUnits, poolId, await LoadOpenAsync(s, poolId, also), now);
    }

    /// <summary>A pool's ACTIVE and PENDING allocations and the contracts that hold them (with <c>also</c>).</summary>
    private sealed record OpenAllocations(IReadOnlyList<Allocation> Active, IReadOnlyList<Allocation> Pending, Dictionary<string, Contract> Contracts);

    private static async Task<OpenAllocations> LoadOpenAsync(IStoreSession s, string poolId, Contract[] also)
    {
        var active = await s.Allocations.InPoolAsync(poolId, AllocationState.Active);
        var pending = await s.Allocations.InPoolAsync(poolId, AllocationState.Pending);
        // Every decision loads its pool, so this stays a few plain loops over what the writer keeps.
        var contracts = new Dictionary<string, Contract>(also.Length + active.Count + pending.Count, StringComparer.Ordinal);
        foreach (var c in also)
        {
            contracts[c.Id] = c;
        }

        HashSet<string>? missing = null;
        AddMissing(active);
        AddMissing(pending);
        if (missing is not null)
        {
            foreach (var c in await s.Contracts.GetManyAsync(missing))
            {
                contracts[c.Id] = c;
            }
        }

        return new OpenAllocations(active, pending, contracts);

        void AddMissing(IReadOnlyList<Allocation> allocations)
        {
            foreach (var a in allocations)
            {
                if (!contracts.ContainsKey(a.ContractId))
                {
                    (missing ??= new HashSet<string>(StringComparer.Ordinal)).Add(a.ContractId);
                }
            }
        }
    }

    private static PoolView ViewOf(long capacity, string poolId, OpenAllocations open, DateTimeOffset now)
    {
        var held = new List<HeldAllocation>(open.Active.Count);
        foreach (var a in open.Active)
        {
            held.Add(Held(a));
        }

        var standings = new List<ContractStanding>(open.Contracts.Count);
        foreach (var c in open.Contracts.Values)
        {
            standings.Add(c.StandingIn(poolId, now));
        }

        return new PoolView(capacity, new PoolLedger(capacity, held, standings), open.Active, open.Pending, open.Contracts);
    }

    public static HeldAllocation Held(Allocation a) => new(a.Seq, a.Id, a.ContractId, a.Units, a.AdmittedAt!.Value);

    /// <summary>
    /// Ends what is due in a pool at <paramref name="now"/> (allocations past their end time, and
    /// those of contracts whose term is over), then retries the queue if capacity was freed. Every
    /// unit that touches a pool runs this first, so decisions never count an allocation that has ended.
    /// </summary>
    /// <returns>Whether it ended anything.</returns>
    public static async Task<bool> SweepPoolAsync(IStoreSession s, string poolId, DateTimeOffset now) =>
        await EndDueAsync(s, poolId, await LoadOpenAsync(s, poolId, []), now);

    /// <summary>Sweeps the pool (<see cref="SweepPoolAsync"/>), then returns it as admission sees it.</summary>
    public static async Task<PoolView> SweepAndLoadAsync(IStoreSession s, string poolId, DateTimeOffset now, params Contract[] also)
    {
        var pool = await s.Pools.GetAsync(poolId) ?? throw DomainErrors.NotFound(Domain.Pools.Pool.ResourceType, poolId);
        var open = await LoadOpenAsync(s, poolId, also);
        // The usual case, nothing due, builds the ledger once from what the sweep loaded.
        return await EndDueAsync(s, poolId, open, now) ? await LoadAsync(s, poolId, now, also) : ViewOf(pool.CapacityUnits, poolId, open, now);
    }

    private static async Task<bool> EndDueAsync(IStoreSession s, string poolId, OpenAllocations open, DateTimeOffset now)
    {
        var changed = false;
        var freed = false;
        foreach (var list in (IReadOnlyList<Allocation>[])[open.Active, open.Pending])
        {
            foreach (var a in list)
            {
                if (DueAt(a, open.Contracts[a.ContractId], now) is { } due)
                {
                    var at = a.State == AllocationState.Active && a.AdmittedAt > due.At ? a.AdmittedAt.Value : Instants.Max(due.At, a.RequestedAt);
                    await EndAsync(s, a, a.State == AllocationState.Active ? AllocationState.Expired : AllocationState.Cancelled, due.Cause, at);
                    freed |= a.State == AllocationState.Active;
                    changed = true;
                }
            }
        }

        if (freed)
        {
            await RetryPendingAsync(s, poolId, now);
        }

        return changed;
    }

    /// <summary>
    /// When and why an open allocation ends by itself at <paramref name="now"/>, if it does: it ended
    /// when its time came, not when the sweep noticed (statements bill to the millisecond).
    /// </summary>
    private static (AllocationCause Cause, DateTimeOffset At)? DueAt(Allocation a, Contract contract, DateTimeOffset now) =>
        a.EndTime is { } end && end <= now && end <= contract.TermEnd ? (AllocationCause.EndTimeReached, end)
        : contract.StateAt(now) == ContractState.Expired ? (AllocationCause.ContractExpired, contract.TermEnd)
        : null;

    /// <summary>Rule 4: PENDING requests of the pool, highest priority then oldest, each admitted if it now fits.</summary>
    public static async Task RetryPendingAsync(IStoreSession s, string poolId, DateTimeOffset now)
    {
        // Most releases find the queue empty: asking first spares them loading the whole pool again.
        if (!await s.Allocations.AnyInPoolAsync(poolId, AllocationState.Pending))
        {
            return;
        }

        var view = await LoadAsync(s, poolId, now);

        var byId = view.Pending.ToDictionary(p => p.Id, StringComparer.Ordinal);
        var queue = view.Pending.Select(p => new QueuedRequest(p.Seq, p.Id, p.ContractId, p.Units, p.RequestedAt));
        foreach (var request in AdmissionPolicy.RetryOrder(queue, view.Ledger))
        {
            var decision = AdmissionPolicy.Decide(view.Ledger, request.ContractId, request.Units, waitIfUnavailable: true);
            if (decision.Outcome == AdmissionOutcome.Admit)
            {
                await AdmitAsync(s, view, byId[request.AllocationId], decision, AllocationCause.CapacityFreed, now);
            }
        }
    }

    /// <summary>Applies an ADMIT decision: preempts its victims, then makes the allocation ACTIVE.</summary>
    public static async Task<Allocation> AdmitAsync(IStoreSession s, PoolView view, Allocation allocation, AdmissionDecision decision, AllocationCause cause, DateTimeOffset now)
    {
        foreach (var victim in decision.Victims)
        {
            await EndAsync(s, view.Open[victim.AllocationId], AllocationState.Preempted, decision.VictimCause, now, preemptedBy: allocation.Id);
            view.Open.Remove(victim.AllocationId);
        }

        view.Ledger.Remove(decision.Victims);
        var endTime = allocation.EndTime ?? (allocation.Duration is { } d ? now + d : null);
        var admitted = allocation with { State = AllocationState.Active, Cause = cause, AdmittedAt = now, EndTime = endTime };
        if (allocation.State == AllocationState.Pending)
        {
            await s.Allocations.UpdateAsync(admitted, AllocationState.Pending);
        }
        else
        {
            await s.Allocations.InsertAsync(admitted);
        }

        await AppendEventAsync(s, admitted, AllocationEventType.Admitted, now);
        view.Ledger.Admit(Held(admitted));
        view.Open[admitted.Id] = admitted;
        return admitted;
    }

    /// <summary>Moves an open allocation to a final state and records the event.</summary>
    public static async Task<Allocation> EndAsync(IStoreSession s, Allocation a, AllocationState final, AllocationCause cause, DateTimeOffset now, string? preemptedBy = null)
    {
        var ended = a with { State = final, Cause = cause, EndedAt = now };
        await s.Allocations.UpdateAsync(ended, a.State);
        await AppendEventAsync(s, ended, final switch
        {
            AllocationState.Released => AllocationEventType.Released,
            AllocationState.Preempted => AllocationEventType.Preempted,
            AllocationState.Expired => AllocationEventType.Expired,
            AllocationState.Cancelled => AllocationEventType.Cancelled,
            _ => throw new ArgumentOutOfRangeException(nameof(final)),
        }, now, preemptedBy);
        return ended;
    }

    public static Task AppendEventAsync(IStoreSession s, Allocation a, AllocationEventType type, DateTimeOffset now, string? preemptedBy = null) =>
        s.AllocationEvents.AppendAsync(new AllocationEvent(0, now, type, a.Cause, a.Id, a.ContractId, a.TenantId, a.PoolId, a.Units, a.State, preemptedBy));

    /// <summary>
    /// A suspended or terminated contract holds nothing: its ACTIVE allocations are released and its
    /// PENDING requests cancelled, and the pools' queues are retried.
    /// </summary>
    public static async Task EndContractAllocationsAsync(IStoreSession s, string contractId, AllocationCause cause, DateTimeOffset now)
    {
        var open = await s.Allocations.OpenOfContractAsync(contractId);
        var pools = open.Select(a => a.PoolId).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        await s.LockPoolsAsync(pools);
        foreach (var a in open)
        {
            await EndAsync(s, a, a.State == AllocationState.Active ? AllocationState.Released : AllocationState.Cancelled, cause, now);
        }

        foreach (var pool in pools.Where(p => open.Any(a => a.PoolId == p && a.State == AllocationState.Active)))
        {
            await RetryPendingAsync(s, pool, now);
        }
    }

    /// <summary>Rule 5 after a capacity change: a cut preempts borrowers until the held units fit; an increase retries the queue.</summary>
    public static async Task ApplyCapacityChangeAsync(IStoreSession s, string poolId, long previousCapacity, long newCapacity, DateTimeOffset now)
    {
        if (newCapacity < previousCapacity)
        {
            var view = await LoadAsync(s, poolId, now);
            foreach (var victim in AdmissionPolicy.VictimsForCapacity(view.Ledger))
            {
                await EndAsync(s, view.Open[victim.AllocationId], AllocationState.Preempted, AllocationCause.CapacityReduced, now);
            }
        }
        else if (newCapacity > previousCapacity)
        {
            await RetryPendingAsync(s, poolId, now);
        }
    }
}
