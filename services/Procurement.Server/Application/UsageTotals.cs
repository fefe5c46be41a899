using Procurement.Domain.Common;
using Procurement.Domain.Contracts;
using Procurement.Domain.Pricing;
using Procurement.Storage;
using Procurement.Storage.Repositories;

namespace Procurement.Server.Application;

/// <summary>One pool's usage in a statement's period, exact: unit-ticks, unit-milliseconds and seconds.</summary>
public sealed record PeriodPoolUsage(string PoolId, Int128 Guaranteed, Int128 Burst, long PoolAllocatedUnitMs, long BusyGpuSeconds)
{
    /// <summary>Unit-ticks held above the base reservation within the contract's capacity blocks (prepaid).</summary>
    public Int128 Block { get; init; }
}

/// <summary>
/// Keeps statements from growing with history. Each pool's timeline is folded, a stretch at a time,
/// into per-month totals (a contract's guaranteed and burst unit-time, the pool's allocated
/// unit-time); ingestion counts busy seconds into their month as samples are stored. A statement
/// reads its month's totals and adds what is held after the pool's fold mark: the open allocations
/// and those ended since. The split min(U, R) is not a sum over allocations, and an expiry is stamped
/// at the instant it was due, so a stretch is folded only once nothing can still change in it.
/// </summary>
public static class UsageTotals
{
    /// <summary>
    /// How far behind now a fold stops: a unit that took its time before the fold's and commits after
    /// it (a wait for a pool lock, another replica's clock) still stamps its change after the mark.
    /// </summary>
    public static readonly TimeSpan Lag = TimeSpan.FromSeconds(5);

    private const long TicksPerMs = TimeSpan.TicksPerMillisecond;

    /// <summary>Folds the pool's timeline from its mark to <see cref="Lag"/> before <paramref name="now"/>; false if there was nothing to fold.</summary>
    public static async Task<bool> FoldPoolAsync(IStoreSession s, string poolId, DateTimeOffset now)
    {
        await s.LockPoolsAsync([poolId]);
        // What is due ends first, at the instant it was due; after this nothing open ends before now.
        await AllocationEngine.SweepPoolAsync(s, poolId, now);
        var to = now - Lag;
        var toMs = to.ToUnixTimeMilliseconds();
        var fromMs = await s.Totals.FoldMarkAsync(poolId) ?? await s.Totals.FirstAdmittedAsync(poolId) ?? toMs;
        if (fromMs >= toMs)
        {
            return false;
        }

        var held = await s.Totals.HeldSinceAsync(poolId, fromMs, toMs, toMs);
        if (held.Count == 0)
        {
            return false; // nothing held: a statement's reads after the old mark find nothing either
        }

        var contracts = (await s.Contracts.GetManyAsync(held.Select(h => h.ContractId).Distinct(StringComparer.Ordinal).ToList()))
            .ToDictionary(c => c.Id, StringComparer.Ordinal);
        var from = DateTimeOffset.FromUnixTimeMilliseconds(fromMs);
        var blocks = BlocksByContract(await s.Blocks.WindowsInPoolAsync(poolId, from, to));
        var (splits, allocated) = UsageFold.Fold(held, from, to,
            (contractId, month) => contracts.TryGetValue(contractId, out var c) ? Billed(c, poolId, month, blocks.GetValueOrDefault(contractId) ?? []) : null);
        await s.Totals.AddFoldAsync(poolId,
            splits.Select(x => new ContractTotalsDelta(x.ContractId, x.Month.Start.ToUnixTimeMilliseconds(), Ms(x.Guaranteed), Ms(x.Burst), Ms(x.Block))).ToList(),
            allocated.Select(x => (x.Month.Start.ToUnixTimeMilliseconds(), Ms(x.Allocated))).ToList(),
            toMs);
        return true;
    }

    /// <summary>
    /// The pools folded past the start of <paramref name="month"/>: an amendment taking effect in it
    /// holds them (so no fold runs on the old terms meanwhile) and folds the contract again (<see cref="RefoldAsync"/>).
    /// </summary>
    public static async Task<IReadOnlyList<string>> PoolsFoldedIntoAsync(IStoreSession s, BillingMonth month) =>
        (await s.Totals.FoldMarksAsync()).Where(m => m.Value > month.Start.ToUnixTimeMilliseconds()).Select(m => m.Key).Order(StringComparer.Ordinal).ToList();

    /// <summary>
    /// Folds the contract's months from <paramref name="month"/> again on its current terms, up to each
    /// pool's mark. Only an amendment in a term's first month reaches a month already under way.
    /// </summary>
    public static async Task RefoldAsync(IStoreSession s, Contract contract, BillingMonth month, DateTimeOffset now)
    {
        var marks = await s.Totals.FoldMarksAsync();
        var lastMark = marks.Count == 0 ? long.MinValue : marks.Values.Max();
        for (var m = month; m.Start.ToUnixTimeMilliseconds() < lastMark; m = m.Next)
        {
            var intervals = await s.Billing.ContractIntervalsAsync(contract.Id, m.Start, m.End, now);
            var blocksByPool = await ContractBlocksAsync(s, contract.Id, m.Start, m.End);
            foreach (var poolId in intervals.Select(i => i.PoolId).Distinct(StringComparer.Ordinal))
            {
                if (!marks.TryGetValue(poolId, out var markMs) || markMs <= m.Start.ToUnixTimeMilliseconds())
                {
                    continue;
                }

                var mark = DateTimeOffset.FromUnixTimeMilliseconds(markMs);
                var (g, x, b) = Billed(contract, poolId, m, blocksByPool.GetValueOrDefault(poolId) ?? []) is { } w
                    ? UsageIntegrals.SplitTicks(intervals.Where(i => i.PoolId == poolId).Select(i => i.Interval), w.ReservedUnits, w.Blocks, w.From, Instants.Min(w.To, mark))
                    : (0, 0, 0);
                await s.Totals.SetSplitAsync(poolId, new ContractTotalsDelta(contract.Id, m.Start.ToUnixTimeMilliseconds(), Ms(g), Ms(b), Ms(x)));
            }
        }
    }

    /// <summary>
    /// The period's usage per pool from the folded totals and what is held after each pool's mark;
    /// null when this clock is behind a mark (another replica's), and the period must be recomputed.
    /// </summary>
    public static async Task<IReadOnlyList<PeriodPoolUsage>?> PeriodUsageAsync(IStoreSession s, BillingPeriod p, DateTimeOffset now)
    {
        var terms = p.Version.Terms;
        var marks = await s.Totals.FoldMarksAsync();
        var monthStartMs = p.Month.Start.ToUnixTimeMilliseconds();
        var folded = (await s.Totals.ContractMonthAsync(p.Contract.Id, monthStartMs)).ToDictionary(t => t.PoolId, StringComparer.Ordinal);
        var monthSoFar = Instants.Min(p.Month.End, now);
        var usage = new List<PeriodPoolUsage>();
        var blocksByPool = await ContractBlocksAsync(s, p.Contract.Id, p.From, p.To);
        foreach (var poolId in (await s.Totals.PoolIdsAsync()).Order(StringComparer.Ordinal))
        {
            var mark = marks.TryGetValue(poolId, out var markMs) ? DateTimeOffset.FromUnixTimeMilliseconds(markMs) : DateTimeOffset.MinValue;
            if ((mark > p.To && p.Provisional) || (mark > monthSoFar && monthSoFar < p.Month.End))
            {
                return null;
            }

            var liveFrom = Instants.Max(p.Month.Start, mark);
            IReadOnlyList<ContractHeld> held = liveFrom < monthSoFar
                ? await s.Totals.HeldSinceAsync(poolId, liveFrom.ToUnixTimeMilliseconds(), monthSoFar.ToUnixTimeMilliseconds(), now.ToUnixTimeMilliseconds())
                : [];
            var (g, x, b) = UsageIntegrals.SplitTicks(held.Where(h => h.ContractId == p.Contract.Id).Select(h => h.Interval), terms.ReservedUnits(poolId),
                blocksByPool.GetValueOrDefault(poolId) ?? [], Instants.Max(p.From, mark), p.To);
            folded.TryGetValue(poolId, out var f);
            g += (Int128)(f?.GuaranteedUnitMs ?? 0) * TicksPerMs;
            b += (Int128)(f?.BurstUnitMs ?? 0) * TicksPerMs;
            x += (Int128)(f?.BlockUnitMs ?? 0) * TicksPerMs;
            if (g + x + b == 0 && terms.Entitlements.All(e => e.PoolId != poolId))
            {
                continue;
            }

            var allocated = await s.Totals.PoolMonthAsync(poolId, monthStartMs) + Ms(UsageIntegrals.GpuTicks(held.Select(h => h.Interval), liveFrom, monthSoFar));
            // Busy seconds are counted by the month a window starts in; the period may be part of it.
            var busy = f?.BusyGpuSeconds ?? 0;
            if (p.From > p.Month.Start)
            {
                busy -= await s.Billing.BusySecondsAsync(p.Contract.Id, poolId, p.Month.Start, p.From);
            }

            if (p.To < p.Month.End)
            {
                busy -= await s.Billing.BusySecondsAsync(p.Contract.Id, poolId, p.To, p.Month.End);
            }

            usage.Add(new PeriodPoolUsage(poolId, g, b, allocated, busy) { Block = x });
        }

        return usage;
    }

    /// <summary>The period's usage per pool from every allocation interval and sample in it.</summary>
    public static async Task<IReadOnlyList<PeriodPoolUsage>> RecomputeAsync(IStoreSession s, BillingPeriod p, DateTimeOffset now)
    {
        var terms = p.Version.Terms;
        var intervals = await s.Billing.ContractIntervalsAsync(p.Contract.Id, p.From, p.To, now);
        var poolIds = terms.Entitlements.Select(e => e.PoolId).Concat(intervals.Select(i => i.PoolId)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal);
        var monthSoFar = Instants.Min(p.Month.End, now);
        var usage = new List<PeriodPoolUsage>();
        var blocksByPool = await ContractBlocksAsync(s, p.Contract.Id, p.From, p.To);
        foreach (var poolId in poolIds)
        {
            var (g, x, b) = UsageIntegrals.SplitTicks(intervals.Where(i => i.PoolId == poolId).Select(i => i.Interval), terms.ReservedUnits(poolId),
                blocksByPool.GetValueOrDefault(poolId) ?? [], p.From, p.To);
            usage.Add(new PeriodPoolUsage(poolId, g, b,
                await s.Billing.PoolAllocatedUnitMsAsync(poolId, p.Month.Start, monthSoFar, now),
                await s.Billing.BusySecondsAsync(p.Contract.Id, poolId, p.From, p.To)) { Block = x });
        }

        return usage;
    }

    /// <summary>Where a contract's usage in the pool counts in a month, the reservation and the blocks it is split by.</summary>
    private static BilledWindow? Billed(Contract contract, string poolId, BillingMonth month, IReadOnlyCollection<HeldInterval> blocks)
    {
        if (contract.StoredState == ContractState.Draft)
        {
            return null;
        }

        var (version, from, end) = Billing.Window(contract, month);
        return from < end ? new BilledWindow(version.Terms.ReservedUnits(poolId), from, end, blocks) : null;
    }

    private static Dictionary<string, IReadOnlyCollection<HeldInterval>> Windows(IEnumerable<Domain.Blocks.CapacityBlock> blocks, Func<Domain.Blocks.CapacityBlock, string> key) =>
        blocks.GroupBy(key, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => (IReadOnlyCollection<HeldInterval>)g.Select(b => new HeldInterval(b.StartTime, b.EndTime, b.Units)).ToList(), StringComparer.Ordinal);

    private static Dictionary<string, IReadOnlyCollection<HeldInterval>> BlocksByContract(IReadOnlyList<Domain.Blocks.CapacityBlock> blocks) =>
        Windows(blocks, b => b.ContractId);

    /// <summary>The contract's block windows (not cancelled) overlapping [from, to), by pool: one read for every pool.</summary>
    private static async Task<Dictionary<string, IReadOnlyCollection<HeldInterval>>> ContractBlocksAsync(IStoreSession s, string contractId, DateTimeOffset from, DateTimeOffset to) =>
        Windows((await s.Blocks.BilledAsync(contractId, from, to)).Where(b => b.State != Domain.Blocks.BlockState.Cancelled), b => b.PoolId);

    // Stored times are whole milliseconds, so unit-ticks are whole unit-milliseconds.
    private static long Ms(Int128 unitTicks) =>
        unitTicks % TicksPerMs == 0 ? checked((long)(unitTicks / TicksPerMs)) : throw new InvalidOperationException($"{unitTicks} unit-ticks are not whole milliseconds.");
}
