using Procurement.Domain.Common;
using Procurement.Domain.Contracts;

namespace Procurement.Domain.Pricing;

/// <summary>
/// GPU-hours of one accelerator type in the period, split at each instant into guaranteed and burst
/// (what the rate card prices), and the hours held within capacity blocks (prepaid, not priced again).
/// </summary>
public sealed record UsageQuantity(string AcceleratorType, decimal GpuHours, decimal GuaranteedGpuHours, decimal BurstGpuHours)
{
    public decimal BlockGpuHours { get; init; }
}

/// <summary>
/// One capacity block's part in a month: units × hours of its window inside the period × its unit
/// price, or, for a block cancelled inside its notice, its whole price in the month its window starts.
/// A quote's projected block has no id, pool or window.
/// </summary>
public sealed record BlockCharge(string BlockId, string PoolId, long Units, DateTimeOffset? StartTime, DateTimeOffset? EndTime, decimal GpuHours, decimal UnitPrice,
    bool CancellationCharge)
{
    public decimal UnroundedAmount => GpuHours * UnitPrice;
}

/// <summary>Utilization metrics as fractions 0..1; null where undefined (then no band of that metric applies).</summary>
public sealed record UtilizationMetrics(decimal? ReservationUtilization, decimal? PoolUtilization);

/// <summary>The SLA outcome a statement credits.</summary>
public sealed record SlaOutcome(decimal UptimePercent, SlaCreditRow? Row);

/// <summary>Everything a statement (or a quote) is computed from.</summary>
public sealed record StatementInputs(
    ContractTerms Terms,
    BillingMonth Month,
    IReadOnlyList<UsageQuantity> Usage,
    UtilizationMetrics Metrics,
    IndexValue? Index,
    SlaOutcome Sla)
{
    /// <summary>The month's capacity blocks; none means the statement has no capacity-blocks line.</summary>
    public IReadOnlyList<BlockCharge> Blocks { get; init; } = [];
}

public enum StatementLineKind
{
    Usage = 1,
    UtilizationAdjustment = 2,
    CommitmentTrueUp = 3,
    SlaCredit = 4,
    CapacityBlocks = 5,
}

/// <summary>A band that matched, with the metric value it matched on.</summary>
public sealed record MatchedBand(int BandIndex, UtilizationBand Band, decimal MetricValue);

/// <summary>One line: its rounded amount and every input it was computed from.</summary>
public sealed record StatementLine(
    StatementLineKind Kind,
    string Description,
    decimal Amount,
    UsageQuantity? Usage = null,
    PricingMode? Mode = null,
    IReadOnlyList<TierCharge>? Tiers = null,
    decimal? UnroundedAmount = null,
    IReadOnlyList<MatchedBand>? Bands = null,
    decimal? Multiplier = null,
    decimal? Base = null,
    decimal? MonthlyCommitment = null,
    decimal? TermFraction = null,
    decimal? ProratedCommitment = null,
    SlaOutcome? Sla = null,
    decimal? CreditPercent = null,
    decimal? CapPercent = null,
    IReadOnlyList<(BlockCharge Block, decimal Amount)>? Blocks = null);

public sealed record StatementResult(
    string CurrencyCode,
    IReadOnlyList<StatementLine> Lines,
    decimal Total,
    IndexAdjustment Index,
    UtilizationMetrics Metrics);

/// <summary>
/// The statement arithmetic of docs/design.md: exact decimals, each line rounded to the currency's minor
/// unit with banker's rounding, each later line computed from the rounded lines before it.
/// </summary>
public static class StatementCalculator
{
    public static StatementResult Compute(StatementInputs inputs)
    {
        var terms = inputs.Terms;
        var currency = terms.CurrencyCode;
        var index = IndexPricing.Factor(terms.IndexLinkage, inputs.Index);
        var lines = new List<StatementLine>();

        // 1. Usage per accelerator type, in rate-card order.
        foreach (var entry in terms.RateCard)
        {
            var usage = inputs.Usage.FirstOrDefault(u => u.AcceleratorType == entry.AcceleratorType)
                ?? new UsageQuantity(entry.AcceleratorType, 0m, 0m, 0m);
            var tiers = TierPricing.Price(entry, usage.GpuHours, index.Factor);
            var unrounded = tiers.Sum(t => t.Amount);
            var unadjusted = terms.IndexLinkage is not null && index.Value is null ? "; no index value published, prices unadjusted" : "";
            lines.Add(new StatementLine(StatementLineKind.Usage, $"{entry.AcceleratorType} usage ({entry.Mode.ToString().ToLowerInvariant()} tiers{unadjusted})",
                MoneyMath.RoundToMinorUnit(unrounded, currency), usage, entry.Mode, tiers, unrounded));
        }

        var usageTotal = lines.Sum(l => l.Amount);

        // 2. Utilization adjustment: usage × (Π matching multipliers − 1).
        var bands = MatchingBands(terms.UtilizationBands, inputs.Metrics);
        var multiplier = bands.Aggregate(1m, (m, b) => m * b.Band.Multiplier);
        var adjustmentUnrounded = usageTotal * (multiplier - 1m);
        var adjustment = MoneyMath.RoundToMinorUnit(adjustmentUnrounded, currency);
        lines.Add(new StatementLine(StatementLineKind.UtilizationAdjustment,
            bands.Count == 0 ? "Utilization adjustment (no band matched)" : $"Utilization adjustment × {Fmt(multiplier)}",
            adjustment, UnroundedAmount: adjustmentUnrounded, Bands: bands, Multiplier: multiplier, Base: usageTotal));
        var adjustedUsage = usageTotal + adjustment;

        // 3. Capacity blocks, each rounded on its own; prepaid spend counts toward the commitment.
        if (inputs.Blocks.Count > 0)
        {
            var charges = inputs.Blocks.Select(b => (b, MoneyMath.RoundToMinorUnit(b.UnroundedAmount, currency))).ToList();
            var blocksTotal = charges.Sum(c => c.Item2);
            lines.Add(new StatementLine(StatementLineKind.CapacityBlocks, $"Capacity blocks ({charges.Count})", blocksTotal,
                UnroundedAmount: inputs.Blocks.Sum(b => b.UnroundedAmount), Blocks: charges));
            adjustedUsage += blocksTotal;
        }

        // 4. Commitment true-up: prorated commitment − adjusted usage, when positive.
        var commitment = MoneyMath.FromMicros(terms.MonthlyCommitmentMicros);
        var fraction = TermFraction(terms, inputs.Month);
        var prorated = commitment * fraction;
        var trueUpUnrounded = Math.Max(0m, prorated - adjustedUsage);
        var trueUp = MoneyMath.RoundToMinorUnit(trueUpUnrounded, currency);
        lines.Add(new StatementLine(StatementLineKind.CommitmentTrueUp,
            trueUp > 0 ? "Commitment true-up" : "Commitment true-up (usage met the commitment)",
            trueUp, UnroundedAmount: trueUpUnrounded, Base: adjustedUsage, MonthlyCommitment: commitment, TermFraction: fraction, ProratedCommitment: prorated));

        // 5. SLA credit: −min(credit% × charges, cap% × charges).
        var creditBase = adjustedUsage + trueUp;
        var creditPercent = inputs.Sla.Row?.CreditPercent ?? 0m;
        var capPercent = terms.Sla.CreditCapPercent;
        var creditUnrounded = Math.Min(creditPercent / 100m * creditBase, capPercent / 100m * creditBase);
        var credit = -MoneyMath.RoundToMinorUnit(creditUnrounded, currency);
        lines.Add(new StatementLine(StatementLineKind.SlaCredit,
            inputs.Sla.Row is null ? $"SLA credit (uptime {Fmt(inputs.Sla.UptimePercent)}% earns none)" : $"SLA credit (uptime {Fmt(inputs.Sla.UptimePercent)}% below {Fmt(inputs.Sla.Row.BelowPercent)}%)",
            credit, UnroundedAmount: -creditUnrounded, Base: creditBase, Sla: inputs.Sla, CreditPercent: creditPercent, CapPercent: capPercent));

        // 6. Total: the sum of the lines, never below zero.
        var total = Math.Max(0m, lines.Sum(l => l.Amount));
        return new StatementResult(currency, lines, total, index, inputs.Metrics);
    }

    /// <summary>Every band whose metric is defined and falls in [min, max).</summary>
    public static IReadOnlyList<MatchedBand> MatchingBands(IReadOnlyList<UtilizationBand> bands, UtilizationMetrics metrics)
    {
        var matched = new List<MatchedBand>();
        for (var i = 0; i < bands.Count; i++)
        {
            var band = bands[i];
            var value = band.Metric == UtilizationMetric.ReservationUtilization ? metrics.ReservationUtilization : metrics.PoolUtilization;
            if (value is { } v && v >= band.Min && (band.Max is not { } max || v < max))
            {
                matched.Add(new MatchedBand(i, band, v));
            }
        }

        return matched;
    }

    /// <summary>The fraction of the month inside the term, exact to the millisecond.</summary>
    public static decimal TermFraction(ContractTerms terms, BillingMonth month)
    {
        var from = Instants.Max(month.Start, terms.StartTime);
        var to = Instants.Min(month.End, terms.EndTime);
        if (to <= from)
        {
            return 0m;
        }

        return (decimal)(to - from).Ticks / (month.End - month.Start).Ticks;
    }

    /// <summary>Of the thresholds the uptime is strictly below, the lowest one; null when none.</summary>
    public static SlaCreditRow? CreditRow(SlaTerms sla, decimal uptimePercent) =>
        sla.CreditSchedule.Where(r => uptimePercent < r.BelowPercent).OrderBy(r => r.BelowPercent).FirstOrDefault();

    private static string Fmt(decimal d) => DecimalText.Format(MoneyMath.Normalize(d));
}
