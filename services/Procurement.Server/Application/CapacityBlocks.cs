using System.Globalization;
using Procurement.Domain.Blocks;
using Procurement.Domain.Contracts;
using Procurement.Domain.Errors;
using Procurement.Domain.Pools;
using Procurement.Domain.Pricing;
using Procurement.Server.Auth;
using Procurement.Storage;
using DomainPool = Procurement.Domain.Pools.Pool;

namespace Procurement.Server.Application;

/// <summary>A block to book, its window already checked (<see cref="BlockCalendar.ValidateWindow"/>).</summary>
public sealed record BlockBooking(string ContractId, string PoolId, long Units, DateTimeOffset Start, DateTimeOffset End);

/// <summary>Why a block would not be booked: the first instant it would not fit, and which limit.</summary>
public sealed record BlockMisfit(string Reason, CalendarConflict Conflict, IReadOnlyList<string> VisibleBlockIds, string PoolId);

/// <summary>A booking (or, in a dry run, what it would be) and, in a dry run, why it would not fit.</summary>
public sealed record BlockOutcome(CapacityBlock Block, string CurrencyCode, BlockMisfit? Misfit);

/// <summary>A window a block would fit, with its price.</summary>
public sealed record BlockOffering(DateTimeOffset Start, DateTimeOffset End, long Units, decimal UnitPrice, decimal Price);

/// <summary>Booking, cancelling and finding capacity blocks (docs/design.md, "Capacity blocks and the calendar").</summary>
public static class CapacityBlocks
{
    public const string BlockDoesNotFit = "BLOCK_DOES_NOT_FIT";
    public const string EntitlementExceeded = "BLOCK_ENTITLEMENT_EXCEEDED";
    public const string NoBlockRate = "NO_BLOCK_RATE";
    public const string NotCancellable = "BLOCK_NOT_CANCELLABLE";
    public const string BlocksOutsideTerm = "BLOCKS_OUTSIDE_TERM";

    /// <summary>Books a block under the pool's lock; a misfit throws, except in a dry run, which returns it.</summary>
    public static async Task<BlockOutcome> BookAsync(IStoreSession s, Principal principal, BlockBooking booking, DateTimeOffset now, bool dryRun)
    {
        await s.LockPoolsAsync([booking.PoolId]);
        var (contract, pool, terms, rate) = await LoadForBookingAsync(s, principal, booking.ContractId, booking.PoolId, now);
        if (booking.Start < terms.StartTime || booking.End > contract.TermEnd)
        {
            throw DomainErrors.Invalid(booking.Start < terms.StartTime ? "start_time" : "end_time",
                $"must be inside the contract's term [{Format(terms.StartTime)}, {Format(contract.TermEnd)})");
        }

        var factor = await IndexFactorAsync(s, terms, now);
        var candidate = Candidate(contract, pool, booking.Units, booking.Start, booking.End, rate, factor, now);
        var misfit = await FindMisfitAsync(s, principal, contract, pool, terms, candidate, now);
        if (dryRun)
        {
            return new BlockOutcome(candidate, terms.CurrencyCode, misfit);
        }

        if (misfit is not null)
        {
            throw MisfitError(misfit, booking.Units);
        }

        var seq = await s.Blocks.NextSeqAsync();
        var block = candidate with { Seq = seq, Id = CapacityBlock.IdOf(seq) };
        await s.Blocks.InsertAsync(block);
        // The pool's kept view knows its next block boundary; this one may come first.
        s.PoolViews<AllocationEngine.PoolView>()?.Drop(pool.Id);
        return new BlockOutcome(block, terms.CurrencyCode, null);
    }

    /// <summary>Cancels a BOOKED block, charged in full inside the notice period; one already CANCELLED is returned as it is.</summary>
    public static async Task<(CapacityBlock Block, string CurrencyCode)> CancelAsync(IStoreSession s, Principal principal, string blockId, string etag, DateTimeOffset now)
    {
        var block = await LoadVisibleAsync(s, principal, blockId);
        await s.LockPoolsAsync([block.PoolId]);
        // Under the lock, after the pool's boundaries up to now are applied: the block may have started.
        await AllocationEngine.SweepPoolAsync(s, block.PoolId, now);
        block = (await s.Blocks.GetAsync(blockId))!;
        var contract = (await s.Contracts.GetAsync(block.ContractId))!;
        var currency = contract.LatestVersion.Terms.CurrencyCode;
        if (block.State == BlockState.Cancelled)
        {
            return (block, currency);
        }

        if (etag.Length > 0 && etag != block.Etag)
        {
            throw DomainErrors.EtagMismatch(CapacityBlock.ResourceType, block.Id, etag, block.Etag);
        }

        if (block.State != BlockState.Booked)
        {
            throw new ProcurementException(ErrorKind.FailedPrecondition, NotCancellable,
                $"Capacity block '{block.Id}' is {block.State.ToString().ToUpperInvariant()}: only a BOOKED block can be cancelled.",
                metadata: new Dictionary<string, string> { ["state"] = block.State.ToString().ToUpperInvariant() });
        }

        var notice = contract.VersionAt(now).Terms.BlockCancellationNotice;
        var cancelled = block with
        {
            State = BlockState.Cancelled, CancelledAt = now, CancellationCharged = CapacityBlock.CancellationIsCharged(block.StartTime, notice, now),
            Revision = block.Revision + 1,
        };
        await s.Blocks.UpdateAsync(cancelled, block.Revision);
        s.PoolViews<AllocationEngine.PoolView>()?.Drop(block.PoolId);
        return (cancelled, currency);
    }

    /// <summary>The earliest windows from the search that fit now, after <paramref name="after"/> when paging.</summary>
    public static async Task<(IReadOnlyList<BlockOffering> Offerings, string CurrencyCode)> FindAsync(
        IStoreSession s, Principal principal, string contractId, string poolId, OfferingSearch search, DateTimeOffset? after, DateTimeOffset now)
    {
        var (contract, pool, terms, rate) = await LoadForBookingAsync(s, principal, contractId, poolId, now);
        var factor = await IndexFactorAsync(s, terms, now);
        // Strictly after now (a block starts in the future), and past the last start of the previous page.
        var notBefore = new[] { now.AddTicks(1), terms.StartTime, after?.AddHours(1) ?? now, search.EarliestStart }.Max();
        var horizon = BlockCalendar.CeilToHour(now) + BlockCalendar.BookingHorizon;
        // A start must be in the future, within the horizon: at most the horizon plus the duration for its end.
        var notAfter = new[] { contract.TermEnd, horizon + search.Duration, search.LatestEnd }.Min();
        if (notAfter <= notBefore)
        {
            return ([], terms.CurrencyCode);
        }

        // The calendar is read a stretch at a time from the earliest start, so a page of early windows
        // costs the blocks near it, not a year of bookings: windows starting in a stretch need the
        // blocks up to its end plus the duration. Base reservations count from now on.
        var baseReserved = await BaseReservedAsync(s, pool.Id, now);
        var stretch = TimeSpan.FromTicks(Math.Max(OfferingStretch.Ticks, 4 * search.Duration.Ticks));
        var starts = new List<DateTimeOffset>();
        for (var from = notBefore; starts.Count < search.Limit && from + search.Duration <= notAfter;)
        {
            var to = from + stretch + search.Duration < notAfter ? from + stretch + search.Duration : notAfter;
            var placed = await s.Blocks.PlacedInPoolAsync(pool.Id, from, to);
            var limits = new List<(long, IReadOnlyCollection<Reservation>)>
            {
                (pool.CapacityUnits, Calendar(placed, baseReserved, now)),
                (terms.MaxBlockUnits(pool.Id), placed.Where(b => b.ContractId == contract.Id).Select(AsReservation).ToList()),
            };
            starts.AddRange(BlockCalendar.FindStarts(search with { Limit = search.Limit - starts.Count }, from, to, limits)
                .Where(start => start - now <= BlockCalendar.BookingHorizon));
            // Every start up to to − duration has been tried.
            from = to - search.Duration + TimeSpan.FromTicks(1);
        }

        // Priced as the block it would book.
        return (starts.Select(start => Candidate(contract, pool, search.Units, start, start + search.Duration, rate, factor, now))
            .Select(b => new BlockOffering(b.StartTime, b.EndTime, b.Units, b.UnitPrice, b.FullAmount)).ToList(), terms.CurrencyCode);
    }

    public static async Task<CapacityBlock> LoadVisibleAsync(IStoreSession s, Principal principal, string blockId)
    {
        var block = string.IsNullOrEmpty(blockId) ? null : await s.Blocks.GetAsync(blockId);
        if (block is null || !principal.CanSeeTenant(block.TenantId))
        {
            throw DomainErrors.NotFound(CapacityBlock.ResourceType, blockId);
        }

        return block;
    }

    /// <summary>
    /// I2 over the calendar for a pool whose capacity or base reservations change: with
    /// <paramref name="baseReserved"/> units reserved from now on, the pool's placed blocks must fit
    /// <paramref name="capacity"/> at every instant; throws naming the first one that does not.
    /// </summary>
    public static async Task EnsureCalendarFitsAsync(IStoreSession s, string poolId, long capacity, long baseReserved, DateTimeOffset now, string action)
    {
        var placed = await s.Blocks.PlacedInPoolAsync(poolId, now, DateTimeOffset.MaxValue);
        if (placed.Count == 0)
        {
            return;
        }

        if (BlockCalendar.FirstOverbooked(capacity, Calendar(placed, baseReserved, now), now, DateTimeOffset.MaxValue) is { } conflict)
        {
            var description = $"pool '{poolId}' has capacity {capacity} but {conflict.ReservedUnits} units would be reserved at {Format(conflict.At)}, " +
                $"with capacity blocks {string.Join(", ", conflict.BlockIds)}";
            throw new ProcurementException(ErrorKind.FailedPrecondition, ErrorReasons.ReservationsExceedCapacity, $"Cannot {action}: {description}.",
                preconditionViolations: [new PreconditionViolation("RESERVATIONS_EXCEED_CAPACITY", $"pools/{poolId}", description)],
                metadata: new Dictionary<string, string>
                {
                    [$"{poolId}.capacity_units"] = Units(capacity),
                    [$"{poolId}.reserved_units"] = Units(conflict.ReservedUnits),
                    [$"{poolId}.first_instant"] = Format(conflict.At),
                    [$"{poolId}.block_ids"] = string.Join(",", conflict.BlockIds),
                });
        }
    }

    /// <summary>An amendment may not end the term before a block the contract holds in the calendar ends.</summary>
    public static async Task EnsureInsideTermAsync(IStoreSession s, Contract contract)
    {
        var outside = (await s.Blocks.PlacedOfContractAsync(contract.Id)).Where(b => b.EndTime > contract.TermEnd).Select(b => b.Id).ToList();
        if (outside.Count > 0)
        {
            throw new ProcurementException(ErrorKind.FailedPrecondition, BlocksOutsideTerm,
                $"The amended term would end at {Format(contract.TermEnd)}, before capacity blocks {string.Join(", ", outside)} end; cancel them or keep the term.",
                [new FieldViolation("terms.end_time", "must not be before the end of the contract's booked or active capacity blocks")],
                metadata: new Dictionary<string, string> { ["block_ids"] = string.Join(",", outside) });
        }
    }

    /// <summary>
    /// A terminated contract's blocks: ACTIVE ones end at <paramref name="now"/> (their window shortened
    /// to it), future ones are cancelled without charge. The caller holds the pools.
    /// </summary>
    public static async Task EndForTerminationAsync(IStoreSession s, IReadOnlyList<CapacityBlock> placed, DateTimeOffset now)
    {
        foreach (var block in placed)
        {
            var ended = block.StartTime < now
                ? block with { State = BlockState.Completed, EndTime = now, Revision = block.Revision + 1 }
                : block with { State = BlockState.Cancelled, CancelledAt = now, CancellationCharged = false, Revision = block.Revision + 1 };
            await s.Blocks.UpdateAsync(ended, block.Revision);
            if (block.State == BlockState.Active)
            {
                await s.AllocationEvents.AppendAsync(new Storage.Repositories.AllocationEvent(0, now, Domain.Allocations.AllocationEventType.BlockEnded,
                    Domain.Allocations.AllocationCause.ContractTerminated, block.Id, block.ContractId, block.TenantId, block.PoolId, block.Units, default, null, ended.State));
            }

            s.PoolViews<AllocationEngine.PoolView>()?.Drop(block.PoolId);
        }
    }

    /// <summary>A block as it would be booked now, before it has a number.</summary>
    private static CapacityBlock Candidate(Contract contract, DomainPool pool, long units, DateTimeOffset start, DateTimeOffset end, BlockRate rate, decimal factor,
        DateTimeOffset now) =>
        new(0, "", contract.Id, contract.TenantId, pool.Id, units, start, end, rate.UnitPriceMicros, factor, BlockState.Booked, now, null, false, 1);

    public static Reservation AsReservation(CapacityBlock b) => new(b.Units, b.StartTime, b.EndTime, b.Id);

    private static async Task<(Contract Contract, DomainPool Pool, ContractTerms Terms, BlockRate Rate)> LoadForBookingAsync(
        IStoreSession s, Principal principal, string contractId, string poolId, DateTimeOffset now)
    {
        var contract = await ContractOperations.LoadVisibleAsync(s, principal, contractId);
        var pool = await s.Pools.GetAsync(poolId) ?? throw DomainErrors.NotFound(DomainPool.ResourceType, poolId);
        if (contract.StateAt(now) != ContractState.Active)
        {
            throw new ProcurementException(ErrorKind.FailedPrecondition, Domain.Allocations.AdmissionDecision.ContractNotActive,
                $"Contract '{contract.Id}' is not ACTIVE within its term, so it cannot book capacity blocks.",
                metadata: new Dictionary<string, string> { ["contract_id"] = contract.Id });
        }

        // Blocks are booked on the terms in effect when booked; a later amendment does not reprice them.
        var terms = contract.VersionAt(now).Terms;
        var rate = terms.BlockRateFor(pool.AcceleratorType) ?? throw new ProcurementException(ErrorKind.FailedPrecondition, NoBlockRate,
            $"Contract '{contract.Id}' has no block rate for '{pool.AcceleratorType}', so it cannot book blocks in pool '{pool.Id}'.",
            metadata: new Dictionary<string, string> { ["contract_id"] = contract.Id, ["pool_id"] = pool.Id, ["accelerator_type"] = pool.AcceleratorType });
        return (contract, pool, terms, rate);
    }

    private static async Task<decimal> IndexFactorAsync(IStoreSession s, ContractTerms terms, DateTimeOffset now) =>
        terms.IndexLinkage is { } linkage
            ? IndexPricing.Factor(linkage, (await s.IndexValues.LatestAtAsync(linkage.IndexName, now))?.Value).Factor
            : 1m;

    /// <summary>How much of the calendar a search for offerings reads at a time (at least four durations).</summary>
    private static readonly TimeSpan OfferingStretch = TimeSpan.FromDays(14);

    /// <summary>The base reservations of every contract counted now (I2's rule), held from now on.</summary>
    private static async Task<long> BaseReservedAsync(IStoreSession s, string poolId, DateTimeOffset now)
    {
        var rows = await s.Contracts.GetCountedEntitlementsAsync([poolId], now, excludeContractId: "");
        return ReservationLedger.ReservedByPool(rows, now).GetValueOrDefault(poolId);
    }

    /// <summary>reserved(P, t): the placed blocks and the base reservations, held from now on.</summary>
    private static List<Reservation> Calendar(IEnumerable<CapacityBlock> placed, long baseReserved, DateTimeOffset now) =>
        placed.Select(AsReservation).Append(new Reservation(baseReserved, now, DateTimeOffset.MaxValue)).ToList();

    private static async Task<BlockMisfit?> FindMisfitAsync(IStoreSession s, Principal principal, Contract contract, DomainPool pool, ContractTerms terms,
        CapacityBlock candidate, DateTimeOffset now)
    {
        // Only instants inside the candidate's window change.
        var placed = await s.Blocks.PlacedInPoolAsync(pool.Id, candidate.StartTime, candidate.EndTime);
        var visible = placed.Where(b => principal.CanSeeTenant(b.TenantId)).Select(b => b.Id).ToHashSet(StringComparer.Ordinal);
        var own = placed.Where(b => b.ContractId == contract.Id).Select(AsReservation).Append(AsReservation(candidate)).ToList();
        if (BlockCalendar.FirstOverbooked(terms.MaxBlockUnits(pool.Id), own, candidate.StartTime, candidate.EndTime) is { } entitlement)
        {
            return new BlockMisfit(EntitlementExceeded, entitlement, entitlement.BlockIds.Where(visible.Contains).ToList(), pool.Id);
        }

        var all = Calendar(placed.Append(candidate), await BaseReservedAsync(s, pool.Id, now), now);
        return BlockCalendar.FirstOverbooked(pool.CapacityUnits, all, candidate.StartTime, candidate.EndTime) is { } conflict
            ? new BlockMisfit(BlockDoesNotFit, conflict, conflict.BlockIds.Where(visible.Contains).ToList(), pool.Id)
            : null;
    }

    private static ProcurementException MisfitError(BlockMisfit misfit, long units)
    {
        var c = misfit.Conflict;
        var inTheWay = misfit.VisibleBlockIds.Count > 0 ? $" (blocks counted there that you can see: {string.Join(", ", misfit.VisibleBlockIds)})" : "";
        var message = misfit.Reason == EntitlementExceeded
            ? $"A block of {units} units would bring the contract's block units in pool '{misfit.PoolId}' to {c.ReservedUnits} at {Format(c.At)}, above its max_block_units {c.LimitUnits}{inTheWay}."
            : $"A block of {units} units does not fit pool '{misfit.PoolId}': {c.ReservedUnits} units would be reserved at {Format(c.At)} against a capacity of {c.LimitUnits}{inTheWay}. FindCapacityBlockOfferings lists windows that fit.";
        return new ProcurementException(ErrorKind.FailedPrecondition, misfit.Reason, message, metadata: new Dictionary<string, string>
        {
            ["pool_id"] = misfit.PoolId,
            ["first_instant"] = Format(c.At),
            ["reserved_units"] = Units(c.ReservedUnits),
            ["limit_units"] = Units(c.LimitUnits),
            ["block_ids"] = string.Join(",", misfit.VisibleBlockIds),
        });
    }

    private static string Format(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static string Units(long v) => v.ToString(CultureInfo.InvariantCulture);
}
