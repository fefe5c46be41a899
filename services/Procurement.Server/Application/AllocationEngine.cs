using Procurement.Domain.Common;
using Procurement.Domain.Allocations;
using Procurement.Domain.Blocks;
using Procurement.Domain.Contracts;
using Procurement.Domain.Errors;
using Procurement.Storage;
using Procurement.Storage.Repositories;

namespace Procurement.Server.Application;

/// <summary>
/// The read-decide-write steps of admission, run inside a unit of work that holds the pool
/// (<see cref="IStoreSession.LockPoolsAsync"/>). Decisions come from <see cref="AdmissionPolicy"/>;
/// this class builds (or reuses) the pool's view, writes the transitions and writes an event for every one of them.
/// </summary>
public static class AllocationEngine
{
    /// <summary>
    /// Everything admission needs about one pool now: its capacity, a ledger of its ACTIVE allocations
    /// and of the standing of every contract involved, and those allocations by id. Decisions update it
    /// as they are applied (a queue retry may preempt one it just admitted). A writer keeps the
    /// view between units (<see cref="KeptPoolViews{TView}"/>), so a decision costs the same however
    /// many allocations the pool holds; a write the engine did not apply to it drops it.
    /// </summary>
    public sealed class PoolView
    {
        internal PoolView(long capacity, PoolLedger ledger, Dictionary<string, Allocation> open, Dictionary<string, Contract> contracts)
        {
            Capacity = capacity;
            Ledger = ledger;
            Open = open;
            Contracts = contracts;
        }

        public long Capacity { get; }

        public PoolLedger Ledger { get; }

        /// <summary>ACTIVE allocations by id.</summary>
        public Dictionary<string, Allocation> Open { get; }

        /// <summary>Every contract that holds or queues for the pool, and every contract that asked since.</summary>
        public Dictionary<string, Contract> Contracts { get; }

        /// <summary>Units of each contract's capacity blocks in effect when the view was built (part of its reservation).</summary>
        internal Dictionary<string, long> BlockUnits { get; init; } = new(StringComparer.Ordinal);

        /// <summary>The first instant an open allocation of the pool ends by itself: before it, a sweep ends nothing.</summary>
        internal DateTimeOffset NextDue { get; set; } = DateTimeOffset.MaxValue;

        /// <summary>The span in which every standing in the ledger holds.</summary>
        internal (DateTimeOffset From, DateTimeOffset Until) Holds { get; set; } = (DateTimeOffset.MinValue, DateTimeOffset.MaxValue);

        /// <summary>The writer's contract and pool write counts when the view was built (<see cref="KeptPoolViews{TView}.Stamp"/>).</summary>
        internal (long Contracts, long Pools) Stamp { get; init; }

        /// <summary>Adds a contract's standing (a contract that asks for the first time), narrowing the span the ledger holds for.</summary>
        internal void Include(string poolId, Contract contract, DateTimeOffset now)
        {
            if (Contracts.TryAdd(contract.Id, contract))
            {
                var standing = contract.StandingIn(poolId, now);
                if (BlockUnits.TryGetValue(contract.Id, out var blockUnits) && standing.CanAllocate)
                {
                    standing = standing with { ReservedUnits = checked(standing.ReservedUnits + blockUnits) };
                }

                Ledger.AddStanding(standing);
                var (from, until) = contract.StandingHolds(now);
                Holds = (Instants.Max(Holds.From, from), Holds.Until < until ? Holds.Until : until);
            }
        }

        /// <summary>Counts an allocation that is now open in the pool (admitted or queued).</summary>
        internal void Opened(Allocation a)
        {
            if (a.State == AllocationState.Active)
            {
                Ledger.Admit(Held(a));
                Open[a.Id] = a;
            }

            if (DueInstant(a, Contracts[a.ContractId]) is var due && due < NextDue)
            {
                NextDue = due;
            }
        }

        /// <summary>Forgets an allocation that has ended (only ACTIVE ones are in the ledger).</summary>
        internal void Ended(Allocation a)
        {
            Ledger.Remove(a.Id);
            Open.Remove(a.Id);
        }
    }

    /// <summary>Builds the pool's view from its open allocations (and keeps it, on the writer).</summary>
    public static async Task<PoolView> LoadAsync(IStoreSession s, string poolId, DateTimeOffset now, params Contract[] also)
    {
        var pool = await s.Pools.GetAsync(poolId) ?? throw DomainErrors.NotFound(Domain.Pools.Pool.ResourceType, poolId);
        return Keep(s, poolId, ViewOf(s, pool.CapacityUnits, poolId, await LoadOpenAsync(s, poolId, also, now), now));
    }

    /// <summary>
    /// A pool's ACTIVE and PENDING allocations and the contracts that hold them (with <c>also</c>), and
    /// its capacity blocks in effect or due at the time they were read, with the next ones to start.
    /// </summary>
    private sealed record OpenAllocations(IReadOnlyList<Allocation> Active, IReadOnlyList<Allocation> Pending, Dictionary<string, Contract> Contracts,
        IReadOnlyList<CapacityBlock> Blocks);

    private static async Task<OpenAllocations> LoadOpenAsync(IStoreSession s, string poolId, Contract[] also, DateTimeOffset now)
    {
        var active = await s.Allocations.InPoolAsync(poolId, AllocationState.Active);
        var pending = await s.Allocations.InPoolAsync(poolId, AllocationState.Pending);
        var blocks = await s.Blocks.CurrentInPoolAsync(poolId, now);
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

        return new OpenAllocations(active, pending, contracts, blocks);

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

    private static PoolView ViewOf(IStoreSession s, long capacity, string poolId, OpenAllocations open, DateTimeOffset now)
    {
        var view = new PoolView(capacity, new PoolLedger(capacity, [], []), new Dictionary<string, Allocation>(open.Active.Count, StringComparer.Ordinal),
            new Dictionary<string, Contract>(open.Contracts.Count, StringComparer.Ordinal))
        {
            Stamp = s.PoolViews<PoolView>()?.Stamp ?? default,
        };
        // Blocks change the standings at their boundaries: the view holds until the next one.
        var nextBoundary = DateTimeOffset.MaxValue;
        foreach (var b in open.Blocks)
        {
            if (b.StartTime <= now && now < b.EndTime)
            {
                view.BlockUnits[b.ContractId] = checked(view.BlockUnits.GetValueOrDefault(b.ContractId) + b.Units);
            }

            var boundary = b.StartTime > now ? b.StartTime : b.EndTime;
            nextBoundary = boundary < nextBoundary ? boundary : nextBoundary;
        }

        view.NextDue = nextBoundary;
        if (nextBoundary < view.Holds.Until)
        {
            view.Holds = (view.Holds.From, nextBoundary);
        }

        foreach (var c in open.Contracts.Values)
        {
            view.Include(poolId, c, now);
        }

        foreach (var a in open.Active)
        {
            view.Opened(a);
        }

        foreach (var a in open.Pending)
        {
            view.Opened(a);
        }

        return view;
    }

    /// <summary>The pool's kept view, when there is one that still holds at <paramref name="now"/>.</summary>
    private static PoolView? Kept(IStoreSession s, string poolId, DateTimeOffset now)
    {
        if (s.PoolViews<PoolView>() is not { } views || views.Find(poolId) is not { } view)
        {
            return null;
        }

        if (view.Stamp != views.Stamp || now < view.Holds.From || now >= view.Holds.Until)
        {
            views.Drop(poolId);
            return null;
        }

        return view;
    }

    /// <summary>Keeps a view the unit built or brought up to date with its own writes (unless a contract or pool was written since it was built).</summary>
    private static PoolView Keep(IStoreSession s, string poolId, PoolView view)
    {
        if (s.PoolViews<PoolView>() is { } views && view.Stamp == views.Stamp)
        {
            views.Keep(poolId, view);
        }

        return view;
    }

    public static HeldAllocation Held(Allocation a) => new(a.Seq, a.Id, a.ContractId, a.Units, a.AdmittedAt!.Value);

    /// <summary>
    /// Ends what is due in a pool at <paramref name="now"/> (allocations past their end time, and
    /// those of contracts whose term is over), then retries the queue if capacity was freed. Every
    /// unit that touches a pool runs this first, so decisions never count an allocation that has ended.
    /// On the writer, a kept view whose next due instant is after <paramref name="now"/> answers
    /// without reading the pool.
    /// </summary>
    /// <returns>Whether it ended anything.</returns>
    public static async Task<bool> SweepPoolAsync(IStoreSession s, string poolId, DateTimeOffset now) =>
        Kept(s, poolId, now) is not { } kept || now >= kept.NextDue
            ? await EndDueAsync(s, poolId, await LoadOpenAsync(s, poolId, [], now), now)
            : false;

    /// <summary>Sweeps the pool (<see cref="SweepPoolAsync"/>), then returns it as admission sees it.</summary>
    public static async Task<PoolView> SweepAndLoadAsync(IStoreSession s, string poolId, DateTimeOffset now, params Contract[] also)
    {
        // The usual case on the writer: the kept view, with nothing due before now. A standing it
        // learns comes from a committed contract (the unit wrote none, or the view would be stale),
        // so it stays even if the unit fails.
        if (Kept(s, poolId, now) is { } kept && now < kept.NextDue)
        {
            foreach (var c in also)
            {
                kept.Include(poolId, c, now);
            }

            return kept;
        }

        var pool = await s.Pools.GetAsync(poolId) ?? throw DomainErrors.NotFound(Domain.Pools.Pool.ResourceType, poolId);
        var open = await LoadOpenAsync(s, poolId, also, now);
        // With nothing due, the view is built once from what the sweep loaded.
        return await EndDueAsync(s, poolId, open, now) ? await LoadAsync(s, poolId, now, also) : Keep(s, poolId, ViewOf(s, pool.CapacityUnits, poolId, open, now));
    }

    private static async Task<bool> EndDueAsync(IStoreSession s, string poolId, OpenAllocations open, DateTimeOffset now)
    {
        var changed = false;
        if (await ApplyBlockBoundariesAsync(s, poolId, open, now))
        {
            open = await LoadOpenAsync(s, poolId, [], now);
            changed = true;
        }

        foreach (var list in (IReadOnlyList<Allocation>[])[open.Active, open.Pending])
        {
            foreach (var a in list)
            {
                if (DueAt(a, open.Contracts[a.ContractId], now) is { } due)
                {
                    var at = a.State == AllocationState.Active && a.AdmittedAt > due.At ? a.AdmittedAt.Value : Instants.Max(due.At, a.RequestedAt);
                    await EndAsync(s, a, a.State == AllocationState.Active ? AllocationState.Expired : AllocationState.Cancelled, due.Cause, at);
                    changed = true;
                }
            }
        }

        // Rule 4: an expiry or a cancellation re-tries the queue (a request behind a cancelled one may fit).
        if (changed)
        {
            await RetryPendingAsync(s, poolId, now);
        }

        return changed;
    }

    /// <summary>
    /// Starts and ends the pool's capacity blocks whose boundary has come, in time order (at one
    /// instant, starts first), each with its event at the boundary. When a block ends and its contract
    /// holds more than its reservation plus burst limit, the excess is ended (<see cref="BlockEnd.Victims"/>).
    /// </summary>
    private static async Task<bool> ApplyBlockBoundariesAsync(IStoreSession s, string poolId, OpenAllocations open, DateTimeOffset now)
    {
        var due = new List<(DateTimeOffset At, bool IsStart, string BlockId)>();
        var blocks = new Dictionary<string, CapacityBlock>(StringComparer.Ordinal);
        foreach (var b in open.Blocks)
        {
            blocks[b.Id] = b;
            if (b.State == BlockState.Booked && b.StartTime <= now)
            {
                due.Add((b.StartTime, true, b.Id));
            }

            if (b.EndTime <= now)
            {
                due.Add((b.EndTime, false, b.Id));
            }
        }

        if (due.Count == 0)
        {
            return false;
        }

        var held = open.Active.ToList();
        foreach (var (at, isStart, id) in due.OrderBy(d => d.At).ThenBy(d => d.IsStart ? 0 : 1))
        {
            var block = blocks[id];
            var next = block with { State = isStart ? BlockState.Active : BlockState.Completed, Revision = block.Revision + 1 };
            await s.Blocks.UpdateAsync(next, block.Revision);
            blocks[id] = next;
            await s.AllocationEvents.AppendAsync(new AllocationEvent(0, at, isStart ? AllocationEventType.BlockStarted : AllocationEventType.BlockEnded,
                AllocationCause.EndTimeReached, next.Id, next.ContractId, next.TenantId, next.PoolId, next.Units, default, null, next.State));
            if (!isStart && open.Contracts.TryGetValue(next.ContractId, out var contract))
            {
                var standing = contract.StandingIn(poolId, at);
                var reserved = standing.ReservedUnits + blocks.Values.Where(b => b.ContractId == contract.Id && b.State == BlockState.Active).Sum(b => b.Units);
                // Allocations that ended by themselves before the block's end take nothing back.
                var holding = held.Where(a => a.ContractId == contract.Id && DueInstant(a, contract) > at).ToList();
                var excess = holding.Sum(a => a.Units) - (reserved + standing.BurstLimitUnits);
                foreach (var victim in BlockEnd.Victims(holding.Select(Held), excess))
                {
                    var allocation = holding.First(a => a.Id == victim.AllocationId);
                    await EndAsync(s, allocation, AllocationState.Expired, AllocationCause.CapacityBlockEnded, at);
                    held.Remove(allocation);
                }
            }
        }

        s.PoolViews<PoolView>()?.Drop(poolId);
        return true;
    }

    /// <summary>
    /// When and why an open allocation ends by itself at <paramref name="now"/>, if it does: it ended
    /// when its time came, not when the sweep noticed (statements bill to the millisecond).
    /// </summary>
    private static (AllocationCause Cause, DateTimeOffset At)? DueAt(Allocation a, Contract contract, DateTimeOffset now) =>
        a.EndTime is { } end && end <= now && end <= contract.TermEnd ? (AllocationCause.EndTimeReached, end)
        : contract.StateAt(now) == ContractState.Expired ? (AllocationCause.ContractExpired, contract.TermEnd)
        : null;

    /// <summary>The first instant at which <see cref="DueAt"/> ends the allocation (MaxValue if none): exactly when it starts to answer.</summary>
    internal static DateTimeOffset DueInstant(Allocation a, Contract contract)
    {
        var byEndTime = a.EndTime is { } end && end <= contract.TermEnd ? end : DateTimeOffset.MaxValue;
        // A contract expires at its term's end only from a state that expires (ACTIVE or SUSPENDED).
        var byExpiry = contract.StateAt(DateTimeOffset.MaxValue) == ContractState.Expired ? contract.TermEnd : DateTimeOffset.MaxValue;
        return byEndTime < byExpiry ? byEndTime : byExpiry;
    }

    /// <summary>Rule 4: PENDING requests of the pool, highest priority then oldest, each admitted if it now fits.</summary>
    public static async Task RetryPendingAsync(IStoreSession s, string poolId, DateTimeOffset now)
    {
        // Most releases find the queue empty: asking first spares them loading the whole pool again.
        if (!await s.Allocations.AnyInPoolAsync(poolId, AllocationState.Pending))
        {
            return;
        }

        var pending = await s.Allocations.InPoolAsync(poolId, AllocationState.Pending);
        var view = Kept(s, poolId, now) is { } kept && pending.All(p => kept.Ledger.HasStanding(p.ContractId)) ? kept : await LoadAsync(s, poolId, now);
        var byId = pending.ToDictionary(p => p.Id, StringComparer.Ordinal);
        var queue = pending.Select(p => new QueuedRequest(p.Seq, p.Id, p.ContractId, p.Units, p.RequestedAt));
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
            await EndAsync(s, view.Open[victim.AllocationId], AllocationState.Preempted, decision.VictimCause, now, preemptedBy: allocation.Id, view);
        }

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
        view.Opened(admitted);
        Keep(s, admitted.PoolId, view);
        return admitted;
    }

    /// <summary>Counts a request just queued in the pool's view (its end time may make it due).</summary>
    public static void Queued(IStoreSession s, PoolView view, Allocation queued)
    {
        view.Opened(queued);
        Keep(s, queued.PoolId, view);
    }

    /// <summary>Moves an open allocation to a final state and records the event; <paramref name="view"/>, when given, is the pool's view to update.</summary>
    public static async Task<Allocation> EndAsync(IStoreSession s, Allocation a, AllocationState final, AllocationCause cause, DateTimeOffset now, string? preemptedBy = null, PoolView? view = null)
    {
        // Nothing ends before it began: requests and releases are timed after their pool's lock, and
        // this keeps it so for every other path (a clock behind another replica's).
        now = Instants.Max(now, a.AdmittedAt ?? a.RequestedAt);
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
        if (view is not null)
        {
            view.Ended(a);
            Keep(s, a.PoolId, view);
        }

        return ended;
    }

    /// <summary>Releases or cancels an open allocation as its caller asked, keeping the pool's view if it holds.</summary>
    public static async Task<Allocation> EndOnRequestAsync(IStoreSession s, Allocation a, DateTimeOffset now) =>
        await EndAsync(s, a, a.State == AllocationState.Active ? AllocationState.Released : AllocationState.Cancelled, AllocationCause.ClientRequest, now,
            view: Kept(s, a.PoolId, now));

    public static Task AppendEventAsync(IStoreSession s, Allocation a, AllocationEventType type, DateTimeOffset now, string? preemptedBy = null) =>
        s.AllocationEvents.AppendAsync(new AllocationEvent(0, now, type, a.Cause, a.Id, a.ContractId, a.TenantId, a.PoolId, a.Units, a.State, preemptedBy));

    /// <summary>
    /// A suspended or terminated contract holds nothing: its ACTIVE allocations are released and its
    /// PENDING requests cancelled, and the queues of every pool it held or waited in are retried.
    /// </summary>
    public static async Task EndContractAllocationsAsync(IStoreSession s, string contractId, AllocationCause cause, DateTimeOffset now)
    {
        var open = await s.Allocations.OpenOfContractAsync(contractId);
        // Termination also ends the contract's ACTIVE capacity blocks and cancels its future ones.
        var blocks = cause == AllocationCause.ContractTerminated ? await s.Blocks.PlacedOfContractAsync(contractId) : [];
        var pools = open.Select(a => a.PoolId).Concat(blocks.Select(b => b.PoolId)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        if (await s.LockPoolsAsync(pools) || blocks.Count > 0)
        {
            foreach (var pool in blocks.Select(b => b.PoolId).Distinct(StringComparer.Ordinal))
            {
                await SweepPoolAsync(s, pool, now);
            }

            open = await s.Allocations.OpenOfContractAsync(contractId);
            blocks = blocks.Count > 0 ? await s.Blocks.PlacedOfContractAsync(contractId) : [];
            await CapacityBlocks.EndForTerminationAsync(s, blocks, now);
        }

        foreach (var a in open)
        {
            await EndAsync(s, a, a.State == AllocationState.Active ? AllocationState.Released : AllocationState.Cancelled, cause, now);
        }

        foreach (var pool in pools)
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
                await EndAsync(s, view.Open[victim.AllocationId], AllocationState.Preempted, AllocationCause.CapacityReduced, now, view: view);
            }
        }
        else if (newCapacity > previousCapacity)
        {
            await RetryPendingAsync(s, poolId, now);
        }
    }
}
