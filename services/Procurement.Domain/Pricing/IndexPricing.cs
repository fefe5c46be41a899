using Procurement.Domain.Contracts;

namespace Procurement.Domain.Pricing;

/// <summary>A published value of a market index.</summary>
public sealed record IndexValue(string IndexName, DateTimeOffset EffectiveAt, decimal Value);

/// <summary>The price factor a statement used, and where it came from.</summary>
public sealed record IndexAdjustment(decimal Factor, IndexValue? Value, decimal? UnclampedFactor, string Note);

public static class IndexPricing
{
    /// <summary>
    /// f = clamp(1 + beta × (I / I0 − 1), floor, cap) with I the value published at or before the
    /// period start; f = 1 without linkage or without a published value.
    /// </summary>
    public static IndexAdjustment Factor(IndexLinkage? linkage, IndexValue? value)
    {
        if (linkage is null)
        {
            return new IndexAdjustment(1m, null, null, "no index linkage");
        }

        if (value is null)
        {
            return new IndexAdjustment(1m, null, null, $"no value of {linkage.IndexName} published at or before the period start; prices unadjusted");
        }

        var unclamped = 1m + linkage.PassThrough * ((value.Value / linkage.BaseValue) - 1m);
        var factor = Math.Clamp(unclamped, linkage.Floor, linkage.Cap);
        var note = factor == unclamped ? "within floor and cap" : factor == linkage.Floor ? "clamped to the floor" : "clamped to the cap";
        return new IndexAdjustment(factor, value, unclamped, note);
    }
}
