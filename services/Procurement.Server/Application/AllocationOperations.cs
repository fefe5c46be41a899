using Procurement.Domain.Allocations;
using Procurement.Domain.Contracts;
using Procurement.Domain.Errors;
using Procurement.Server.Auth;
using Procurement.Storage;

namespace Procurement.Server.Application;

/// <summary>A request for units, validated.</summary>
public sealed record AllocationRequest(string ContractId, string PoolId, long Units, DateTimeOffset? EndTime, TimeSpan? Duration, bool WaitIfUnavailable);

/// <summary>What a request did (or, in a dry run, would do), with the allocations its decision preempts, by id.</summary>
public sealed record AllocationOutcome(Allocation? Allocation, AdmissionDecision Decision, IReadOnlyDictionary<string, Allocation> Victims);

/// <summary>Requests and releases as units of work.</summary>
public static class AllocationOperations
{
    /// <summary>Decides a request and applies the decision; a refusal throws (and so writes nothing).</summary>
    /// <param name="clock">Read again once the pool is newly held (see <see cref="AfterLock"/>).</param>
    public static async Task<AllocationOutcome> RequestAsync(IStoreSession s, Principal principal, AllocationRequest request, DateTimeOffset now, bool dryRun,
        Func<DateTimeOffset>? clock = null)
    {
        // The pool is held before anything is read, so the contract and the pool are read as they
        // stand under the lock.
        now = AfterLock(await s.LockPoolsAsync([request.PoolId]), now, clock);
        var contract = await ContractOperations.LoadVisibleAsync(s, principal, request.ContractId);
        if (await s.Pools.GetAsync(request.PoolId) is null)
        {
            throw DomainErrors.NotFound(Domain.Pools.Pool.ResourceType, request.PoolId);
        }

        if (request.EndTime is { } end && end <= now)
        {
            throw DomainErrors.Invalid("end_time", "must be in the future");
        }

        var view = await AllocationEngine.SweepAndLoadAsync(s, request.PoolId, now, contract);
        var decision = AdmissionPolicy.Decide(view.Ledger, contract.Id, request.Units, request.WaitIfUnavailable);
        // Taken before the decision is applied: admitting it ends them.
        var victims = new Dictionary<string, Allocation>(decision.Victims.Count, StringComparer.Ordinal);
        foreach (var v in decision.Victims)
        {
            victims[v.AllocationId] = view.Open[v.AllocationId];
        }

        if (dryRun)
        {
            return new AllocationOutcome(null, decision, victims);
        }

        if (decision.Outcome == AdmissionOutcome.Refuse)
        {
            throw Refusal(decision, view, contract, request);
        }

        var seq = await s.Allocations.NextSeqAsync();
        var allocation = new Allocation(seq, Allocation.IdOf(seq), contract.Id, contract.TenantId, request.PoolId, request.Units,
            AllocationState.Pending, AllocationCause.ClientRequest, now, null, null, request.EndTime, request.Duration);
        if (decision.Outcome == AdmissionOutcome.Queue)
        {
            await s.Allocations.InsertAsync(allocation);
            await AllocationEngine.AppendEventAsync(s, allocation, AllocationEventType.Queued, now);
            AllocationEngine.Queued(s, view, allocation);
            return new AllocationOutcome(allocation, decision, victims);
        }

        var admitted = await AllocationEngine.AdmitAsync(s, view, allocation with { State = AllocationState.Active }, decision, AllocationCause.ClientRequest, now);
        return new AllocationOutcome(admitted, decision, victims);
    }

    /// <summary>Releases an ACTIVE allocation or cancels a PENDING one; one that has ended is returned as it is.</summary>
    public static async Task<Allocation> ReleaseAsync(IStoreSession s, Principal principal, string allocationId, DateTimeOffset now, Func<DateTimeOffset>? clock = null)
    {
        var allocation = await LoadVisibleAsync(s, principal, allocationId);
        var mayHaveChanged = await s.LockPoolsAsync([allocation.PoolId]);
        now = AfterLock(mayHaveChanged, now, clock);
        // Read again under the pool's lock when it may have changed: the sweep may have ended it, or
        // another writer between the first read and the lock.
        if (await AllocationEngine.SweepPoolAsync(s, allocation.PoolId, now) || mayHaveChanged)
        {
            allocation = (await s.Allocations.GetAsync(allocationId))!;
        }

        if (allocation.IsFinal)
        {
            return allocation;
        }

        // Rule 4: a release and a cancellation alike re-try the pool's queue.
        var ended = await AllocationEngine.EndOnRequestAsync(s, allocation, now);
        await AllocationEngine.RetryPendingAsync(s, allocation.PoolId, now);
        return ended;
    }

    /// <summary>
    /// The decision's time once a pool is newly held: on a shared database the lock may have waited
    /// for another replica's group, whose changes were stamped before it committed, so the decision is
    /// timed after the wait and a pool's events keep their times in the order they committed.
    /// </summary>
    private static DateTimeOffset AfterLock(bool newlyHeld, DateTimeOffset now, Func<DateTimeOffset>? clock) =>
        newlyHeld && clock is not null ? Domain.Common.Instants.Max(now, clock()) : now;

    public static async Task<Allocation> LoadVisibleAsync(IStoreSession s, Principal principal, string allocationId)
    {
        var allocation = string.IsNullOrEmpty(allocationId) ? null : await s.Allocations.GetAsync(allocationId);
        if (allocation is null || !principal.CanSeeTenant(allocation.TenantId))
        {
            throw DomainErrors.NotFound(Allocation.ResourceType, allocationId);
        }

        return allocation;
    }

    private static ProcurementException Refusal(AdmissionDecision decision, AllocationEngine.PoolView view, Contract contract, AllocationRequest request)
    {
        var standing = view.Ledger.Standing(contract.Id);
        var held = view.Ledger.UnitsOf(contract.Id);
        var metadata = new Dictionary<string, string>
        {
            ["contract_id"] = contract.Id,
            ["pool_id"] = request.PoolId,
            ["requested_units"] = Format(request.Units),
            ["held_units"] = Format(held),
            ["reserved_units"] = Format(standing.ReservedUnits),
            ["burst_limit_units"] = Format(standing.BurstLimitUnits),
            ["free_units"] = Format(view.Ledger.Free),
        };
        return decision.Reason switch
        {
            AdmissionDecision.BurstLimitExceeded => new ProcurementException(ErrorKind.FailedPrecondition, decision.Reason,
                $"Contract '{contract.Id}' holds {held} units of pool '{request.PoolId}'; {request.Units} more would pass its reservation ({standing.ReservedUnits}) plus burst limit ({standing.BurstLimitUnits}).",
                metadata: metadata),
            AdmissionDecision.ContractNotActive => new ProcurementException(ErrorKind.FailedPrecondition, decision.Reason,
                $"Contract '{contract.Id}' is not ACTIVE within its term, so it cannot be allocated capacity.", metadata: metadata),
            _ => new ProcurementException(ErrorKind.ResourceExhausted, AdmissionDecision.CapacityUnavailable,
                $"Pool '{request.PoolId}' has {view.Ledger.Free} free units and none can be preempted for this request; set wait_if_unavailable to queue it.",
                metadata: metadata),
        };
    }

    private static string Format(long v) => v.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
