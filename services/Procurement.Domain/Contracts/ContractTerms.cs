namespace Procurement.Domain.Contracts;

/// <summary>The commercial terms of one contract version. Amounts are integer micros of <see cref="CurrencyCode"/>.</summary>
public sealed record ContractTerms(
    DateTimeOffset StartTime,
    DateTimeOffset EndTime,
    string CurrencyCode,
    long MonthlyCommitmentMicros,
    IReadOnlyList<PoolEntitlement> Entitlements,
    PriorityAccess PriorityAccess,
    IReadOnlyList<RateCardEntry> RateCard,
    IndexLinkage? IndexLinkage,
    IReadOnlyList<UtilizationBand> UtilizationBands,
    SlaTerms Sla)
{
    public long ReservedUnits(string poolId) =>
        Entitlements.FirstOrDefault(e => e.PoolId == poolId)?.ReservedUnits ?? 0;
}

public sealed record PoolEntitlement(string PoolId, long ReservedUnits, long BurstLimitUnits);

public sealed record PriorityAccess(int Priority, bool PreemptLowerPriorityBurst);

public enum PricingMode
{
    Graduated = 1,
    Volume = 2,
}

public sealed record RateCardEntry(string AcceleratorType, PricingMode Mode, IReadOnlyList<PriceTier> Tiers);

/// <summary>One tier: <see cref="UpToGpuHours"/> is inclusive; null means unbounded (last tier only).</summary>
public sealed record PriceTier(decimal? UpToGpuHours, long UnitPriceMicros);

public sealed record IndexLinkage(string IndexName, decimal BaseValue, decimal PassThrough, decimal Floor, decimal Cap);

public enum UtilizationMetric
{
    ReservationUtilization = 1,
    PoolUtilization = 2,
}

/// <summary>Applies when the metric is in [<see cref="Min"/>, <see cref="Max"/>); a null max is unbounded.</summary>
public sealed record UtilizationBand(UtilizationMetric Metric, decimal Min, decimal? Max, decimal Multiplier);

public sealed record SlaCreditRow(decimal BelowPercent, decimal CreditPercent);

public sealed record SlaTerms(
    decimal AvailabilityTargetPercent,
    IReadOnlyList<SlaCreditRow> CreditSchedule,
    decimal CreditCapPercent,
    TimeSpan MaintenanceNotice);
