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
    /// <summary>Per accelerator type, the price of a capacity block's GPU-hour (index-adjusted at booking).</summary>
    public IReadOnlyList<BlockRate> BlockRates { get; init; } = [];

    /// <summary>A block cancelled at least this long before its start costs nothing; later, its whole price.</summary>
    public TimeSpan BlockCancellationNotice { get; init; }

    public long ReservedUnits(string poolId) =>
        Entitlements.FirstOrDefault(e => e.PoolId == poolId)?.ReservedUnits ?? 0;

    public long MaxBlockUnits(string poolId) =>
        Entitlements.FirstOrDefault(e => e.PoolId == poolId)?.MaxBlockUnits ?? 0;

    public BlockRate? BlockRateFor(string acceleratorType) =>
        BlockRates.FirstOrDefault(r => r.AcceleratorType == acceleratorType);
}

public sealed record PoolEntitlement(string PoolId, long ReservedUnits, long BurstLimitUnits)
{
    /// <summary>How many capacity-block units the contract may hold in the pool at any instant; 0 = none.</summary>
    public long MaxBlockUnits { get; init; }
}

public sealed record BlockRate(string AcceleratorType, long UnitPriceMicros);

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
