using Procurement.Domain.Common;

namespace Procurement.Domain.Pricing;

/// <summary>A contract's units held in a pool over an interval.</summary>
public readonly record struct ContractHeld(string ContractId, HeldInterval Interval);

/// <summary>
/// Where a contract's statement for a month counts its usage (<see cref="From"/> to <see cref="To"/>),
/// the reservation its guaranteed hours are split by, and its capacity blocks' windows in the pool.
/// </summary>
public readonly record struct BilledWindow(long ReservedUnits, DateTimeOffset From, DateTimeOffset To, IReadOnlyCollection<HeldInterval> Blocks);

/// <summary>One contract's split in one month of a folded stretch, in unit-ticks.</summary>
public readonly record struct ContractMonthSplit(string ContractId, BillingMonth Month, Int128 Guaranteed, Int128 Block, Int128 Burst);

/// <summary>One pool's ∫ allocated units in one month of a folded stretch, in unit-ticks.</summary>
public readonly record struct PoolMonthAllocated(BillingMonth Month, Int128 Allocated);

/// <summary>
/// Folds a stretch [from, to) of one pool's timeline into per-month totals: for each contract the
/// statement's split (<see cref="UsageIntegrals.SplitTicks"/>) inside its billed window of each month,
/// and the pool's ∫ allocated units. Integrals over adjacent stretches add up to the integral over
/// their union, so a statement is the folded totals plus the stretch not yet folded, to the tick.
/// </summary>
public static class UsageFold
{
    public static (IReadOnlyList<ContractMonthSplit> Contracts, IReadOnlyList<PoolMonthAllocated> Pool) Fold(
        IReadOnlyList<ContractHeld> held, DateTimeOffset from, DateTimeOffset to, Func<string, BillingMonth, BilledWindow?> window)
    {
        var contracts = new List<ContractMonthSplit>();
        var pool = new List<PoolMonthAllocated>();
        if (to <= from)
        {
            return (contracts, pool);
        }

        var byContract = held.GroupBy(h => h.ContractId, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal).ToList();
        for (var month = BillingMonth.Of(from); month.Start < to; month = month.Next)
        {
            var monthFrom = Instants.Max(from, month.Start);
            var monthTo = Instants.Min(to, month.End);
            var allocated = UsageIntegrals.GpuTicks(held.Select(h => h.Interval), monthFrom, monthTo);
            if (allocated > 0)
            {
                pool.Add(new PoolMonthAllocated(month, allocated));
            }

            foreach (var group in byContract)
            {
                if (window(group.Key, month) is not { } w)
                {
                    continue;
                }

                var (g, x, b) = UsageIntegrals.SplitTicks(group.Select(h => h.Interval), w.ReservedUnits, w.Blocks ?? [],
                    Instants.Max(monthFrom, w.From), Instants.Min(monthTo, w.To));
                if (g + x + b > 0)
                {
                    contracts.Add(new ContractMonthSplit(group.Key, month, g, x, b));
                }
            }
        }

        return (contracts, pool);
    }
}
