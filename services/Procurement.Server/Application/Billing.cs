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
    public decimal GpuHours => GuaranteedGpuHours + BurstGpuHours;
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

        var termStart = contract.Versions[0].Terms.StartTime;
        var version = contract.VersionAt(Instants.Max(month.Start, termStart));
        var termEnd = version.Terms.EndTime;
        if (contract.TerminatedAt is { } terminated && terminated < termEnd)
        {
            termEnd = terminated; // a terminated contract commits to nothing after its termination
        }

        var from = Instants.Max(month.Start, termStart);
        var end = Instants.Min(month.End, termEnd);
        var to = Instants.Max(from, Instants.Min(end, now));
        return new BillingPeriod(contract, version, month, from, to, now < end);
    }

    public static async Task<UptimeResult> SlaAsync(IStoreSession s, BillingPeriod p)
    {
        var pools = new List<SlaPool>();
        var entitlements = p.Version.Terms.Entitlements;
        var incidents = await s.Incidents.OverlappingAsync(entitlements.Select(e => e.PoolId).ToList(), p.From, p.To);
        foreach (var e in entitlements)
        {
            pools.Add(new SlaPool(e.PoolId, e.ReservedUnits, await s.Billing.CapacityHistoryAsync(e.PoolId), incidents.Where(i => i.PoolId == e.PoolId).ToList()));
        }

        return UptimeCalculator.Compute(p.Version.Terms.Sla, pools, p.From, p.To);
    }

    public static async Task<StatementComputation> StatementAsync(IStoreSession s, BillingPeriod p, DateTimeOffset now)
    {
        var terms = p.Version.Terms;
        var intervals = await s.Billing.ContractIntervalsAsync(p.Contract.Id, p.From, p.To, now);
        var poolIds = terms.Entitlements.Select(e => e.PoolId).Concat(intervals.Select(i => i.PoolId)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var monthSoFar = Instants.Min(p.Month.End, now);
        var periodHours = (decimal)(p.To - p.From).Ticks / TimeSpan.TicksPerHour;
        var pools = new List<PoolUsageFacts>();
        foreach (var poolId in poolIds)
        {
            var pool = await s.Pools.GetAsync(poolId) ?? throw new InvalidOperationException($"Pool {poolId} is referenced but missing.");
            var reserved = terms.ReservedUnits(poolId);
            var (guaranteed, burst) = UsageIntegrals.Split(intervals.Where(i => i.PoolId == poolId).Select(i => i.Interval), reserved, p.From, p.To);
            var capacityHours = UsageIntegrals.CapacityHours(await s.Billing.CapacityHistoryAsync(poolId), p.Month.Start, monthSoFar);
            decimal? utilization = capacityHours == 0 ? null
                : await s.Billing.PoolAllocatedGpuHoursAsync(poolId, p.Month.Start, monthSoFar, now) / capacityHours;
            pools.Add(new PoolUsageFacts(poolId, pool.AcceleratorType, reserved, guaranteed, burst, reserved * periodHours, utilization,
                await s.Billing.BusySecondsAsync(p.Contract.Id, poolId, p.From, p.To) / 3600m));
        }

        var totalHours = pools.Sum(x => x.GpuHours);
        var reservedHours = pools.Sum(x => x.ReservedGpuHours);
        var metrics = new UtilizationMetrics(
            reservedHours == 0 ? null : pools.Sum(x => x.GuaranteedGpuHours) / reservedHours,
            totalHours == 0 ? null : pools.Where(x => x.PoolUtilization is not null).Sum(x => x.PoolUtilization!.Value * x.GpuHours) / totalHours);
        var usage = pools.GroupBy(x => x.AcceleratorType)
            .Select(g => new UsageQuantity(g.Key, g.Sum(x => x.GpuHours), g.Sum(x => x.GuaranteedGpuHours), g.Sum(x => x.BurstGpuHours)))
            .ToList();
        // The index is read at the period's start: for a term that starts mid-month, the term's start.
        var index = terms.IndexLinkage is { } linkage ? (await s.IndexValues.LatestAtAsync(linkage.IndexName, p.From))?.Value : null;
        var sla = await SlaAsync(s, p);
        var result = StatementCalculator.Compute(new StatementInputs(terms, p.Month, usage, metrics, index, new SlaOutcome(sla.UptimePercent, sla.CreditRow)));
        return new StatementComputation(p, result, pools, reservedHours, totalHours == 0 ? null : pools.Sum(x => x.BusyGpuHours) / totalHours);
    }
}
