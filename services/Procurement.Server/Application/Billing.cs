using Procurement.Domain.Common;
using Procurement.Domain.Contracts;
using Procurement.Domain.Errors;
using Procurement.Domain.Pricing;
using Procurement.Domain.Sla;
using Procurement.Storage;

namespace Procurement.Server.Application;

/// <summary>
/// The part of a month a statement or SLA report covers: from max(month start, term start) to
/// min(month end, term end, termination, now), with the terms version in effect for the month.
/// </summary>
public sealed record BillingPeriod(Contract Contract, ContractVersion Version, BillingMonth Month, DateTimeOffset From, DateTimeOffset To, bool Provisional);

/// <summary>One pool's part in a statement.</summary>
public sealed record PoolUsageFacts(
    string PoolId,
    string AcceleratorType,
    long ReservedUnits,
    decimal GuaranteedGpuHours,
    decimal BurstGpuHours,
    decimal ReservedGpuHours,
    decimal? PoolUtilization,
    decimal BusyGpuHours)
{
    /// <summary>Priced hours: guaranteed and burst (hours within capacity blocks are prepaid).</summary>
    public decimal GpuHours => GuaranteedGpuHours + BurstGpuHours;

    public decimal BlockGpuHours { get; init; }
}

public sealed record StatementComputation(BillingPeriod Period, StatementResult Result, IReadOnlyList<PoolUsageFacts> Pools, decimal ReservedGpuHours, decimal? BusyFraction);

/// <summary>Loads what a month's statement and SLA report are computed from, and computes them with the domain engines.</summary>
public static class Billing
{
    public const string MonthNotStarted = "MONTH_NOT_STARTED";

    public static BillingPeriod Period(Contract contract, BillingMonth month, DateTimeOffset now)
    {
        if (contract.StoredState == ContractState.Draft)
        {
            throw DomainErrors.InvalidState($"Contract '{contract.Id}' is a DRAFT; it has no statements or SLA reports.", "DRAFT");
        }

        if (month.Start > now)
        {
            throw new ProcurementException(ErrorKind.FailedPrecondition, MonthNotStarted, $"{month} has not begun.",
                [new FieldViolation("month", "must be a month that has begun")]);
        }

        var (version, from, end) = Window(contract, month);
        var to = Instants.Max(from, Instants.Min(end, now));
        return new BillingPeriod(contract, version, month, from, to, now < end);
    }

    /// <summary>
    /// The terms version a month is billed on and the part of the month the contract's term covers:
    /// from max(month start, term start) to min(month end, term end, termination).
    /// </summary>
    public static (ContractVersion Version, DateTimeOffset From, DateTimeOffset End) Window(Contract contract, BillingMonth month)
    {
        var termStart = contract.Versions[0].Terms.StartTime;
        var version = contract.VersionAt(Instants.Max(month.Start, termStart));
        var termEnd = version.Terms.EndTime;
        if (contract.TerminatedAt is { } terminated && terminated < termEnd)
        {
            termEnd = terminated; // a terminated contract commits to nothing after its termination
        }

        return (version, Instants.Max(month.Start, termStart), Instants.Min(month.End, termEnd));
    }

    public static async Task<UptimeResult> SlaAsync(IStoreSession s, BillingPeriod p)
    {
        var pools = new List<SlaPool>();
        var terms = p.Version.Terms;
        // R_K(t) includes the contract's capacity blocks: an outage during a block earns credit on it.
        var blocks = (await s.Blocks.BilledAsync(p.Contract.Id, p.From, p.To)).Where(b => b.State != Domain.Blocks.BlockState.Cancelled).ToList();
        var poolIds = terms.Entitlements.Select(e => e.PoolId).Concat(blocks.Select(b => b.PoolId)).Distinct(StringComparer.Ordinal).ToList();
        var incidents = await s.Incidents.OverlappingAsync(poolIds, p.From, p.To);
        foreach (var poolId in poolIds)
        {
            pools.Add(new SlaPool(poolId, terms.ReservedUnits(poolId), await s.Billing.CapacityHistoryAsync(poolId), incidents.Where(i => i.PoolId == poolId).ToList())
            {
                Blocks = blocks.Where(b => b.PoolId == poolId).Select(b => new HeldInterval(b.StartTime, b.EndTime, b.Units)).ToList(),
            });
        }

        return UptimeCalculator.Compute(terms.Sla, pools, p.From, p.To);
    }

    /// <summary>
    /// The month's capacity-block charges: each block's hours inside the period at its price, and the
    /// whole price of a block cancelled inside its notice whose window starts in the month.
    /// </summary>
    public static async Task<IReadOnlyList<BlockCharge>> BlockChargesAsync(IStoreSession s, BillingPeriod p)
    {
        var charges = new List<BlockCharge>();
        foreach (var b in await s.Blocks.BilledAsync(p.Contract.Id, p.Month.Start, p.Month.End))
        {
            var cancelled = b.State == Domain.Blocks.BlockState.Cancelled;
            var hours = cancelled ? b.GpuHoursWithin(b.StartTime, b.EndTime) : b.GpuHoursWithin(p.From, p.To);
            if (hours > 0)
            {
                charges.Add(new BlockCharge(b.Id, b.PoolId, b.Units, b.StartTime, b.EndTime, hours, b.UnitPrice, cancelled));
            }
        }

        return charges;
    }

    /// <summary>
    /// The month's statement. Usage comes from the folded per-month totals plus what is held after
    /// each pool's fold mark (<see cref="UsageTotals"/>); with <paramref name="recompute"/>, from every
    /// allocation interval and sample of the period instead (the verifier). Both give the same bytes.
    /// </summary>
    public static async Task<StatementComputation> StatementAsync(IStoreSession s, BillingPeriod p, DateTimeOffset now, bool recompute = false)
    {
        var terms = p.Version.Terms;
        var usage = (recompute ? null : await UsageTotals.PeriodUsageAsync(s, p, now)) ?? await UsageTotals.RecomputeAsync(s, p, now);
        var monthSoFar = Instants.Min(p.Month.End, now);
        var periodHours = (decimal)(p.To - p.From).Ticks / TimeSpan.TicksPerHour;
        var pools = new List<PoolUsageFacts>();
        foreach (var u in usage)
        {
            var pool = await s.Pools.GetAsync(u.PoolId) ?? throw new InvalidOperationException($"Pool {u.PoolId} is referenced but missing.");
            var reserved = terms.ReservedUnits(u.PoolId);
            var capacityHours = UsageIntegrals.CapacityHours(await s.Billing.CapacityHistoryAsync(u.PoolId), p.Month.Start, monthSoFar);
            decimal? utilization = capacityHours == 0 ? null : u.PoolAllocatedUnitMs / 3_600_000m / capacityHours;
            pools.Add(new PoolUsageFacts(u.PoolId, pool.AcceleratorType, reserved, UsageIntegrals.Hours(u.Guaranteed), UsageIntegrals.Hours(u.Burst),
                reserved * periodHours, utilization, u.BusyGpuSeconds / 3600m) { BlockGpuHours = UsageIntegrals.Hours(u.Block) });
        }

        var totalHours = pools.Sum(x => x.GpuHours);
        var reservedHours = pools.Sum(x => x.ReservedGpuHours);
        var metrics = new UtilizationMetrics(
            reservedHours == 0 ? null : pools.Sum(x => x.GuaranteedGpuHours) / reservedHours,
            totalHours == 0 ? null : pools.Where(x => x.PoolUtilization is not null).Sum(x => x.PoolUtilization!.Value * x.GpuHours) / totalHours);
        var quantities = pools.GroupBy(x => x.AcceleratorType)
            .Select(g => new UsageQuantity(g.Key, g.Sum(x => x.GpuHours), g.Sum(x => x.GuaranteedGpuHours), g.Sum(x => x.BurstGpuHours))
            {
                BlockGpuHours = g.Sum(x => x.BlockGpuHours),
            })
            .ToList();
        // The index is read at the period's start: for a term that starts mid-month, the term's start.
        var index = terms.IndexLinkage is { } linkage ? (await s.IndexValues.LatestAtAsync(linkage.IndexName, p.From))?.Value : null;
        var sla = await SlaAsync(s, p);
        var result = StatementCalculator.Compute(new StatementInputs(terms, p.Month, quantities, metrics, index, new SlaOutcome(sla.UptimePercent, sla.CreditRow))
        {
            Blocks = await BlockChargesAsync(s, p),
        });
        return new StatementComputation(p, result, pools, reservedHours, totalHours == 0 ? null : pools.Sum(x => x.BusyGpuHours) / totalHours);
    }
}
