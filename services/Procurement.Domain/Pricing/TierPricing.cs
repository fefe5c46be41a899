using Procurement.Domain.Contracts;

namespace Procurement.Domain.Pricing;

/// <summary>GPU-hours charged at one tier: the unit price is the base price times the index factor, unrounded.</summary>
public sealed record TierCharge(int TierIndex, decimal? UpToGpuHours, decimal GpuHours, long BaseUnitPriceMicros, decimal UnitPrice, decimal Amount);

/// <summary>Stripe-style tiers: <c>up_to</c> is inclusive, the last tier is unbounded.</summary>
public static class TierPricing
{
    public static IReadOnlyList<TierCharge> Price(RateCardEntry entry, decimal gpuHours, decimal factor) =>
        entry.Mode == PricingMode.Volume ? Volume(entry, gpuHours, factor) : Graduated(entry, gpuHours, factor);

    /// <summary>Each GPU-hour at the tier it falls in.</summary>
    private static List<TierCharge> Graduated(RateCardEntry entry, decimal gpuHours, decimal factor)
    {
        var charges = new List<TierCharge>();
        var below = 0m;
        for (var i = 0; i < entry.Tiers.Count && below < gpuHours; i++)
        {
            var tier = entry.Tiers[i];
            var top = tier.UpToGpuHours is { } upTo ? Math.Min(upTo, gpuHours) : gpuHours;
            var quantity = top - below;
            charges.Add(Charge(i, tier, quantity, factor));
            below = top;
        }

        return charges;
    }

    /// <summary>All GPU-hours at the first tier whose bound the month's total does not pass.</summary>
    private static List<TierCharge> Volume(RateCardEntry entry, decimal gpuHours, decimal factor)
    {
        for (var i = 0; i < entry.Tiers.Count; i++)
        {
            var tier = entry.Tiers[i];
            if (tier.UpToGpuHours is not { } upTo || gpuHours <= upTo)
            {
                return [Charge(i, tier, gpuHours, factor)];
            }
        }

        throw new InvalidOperationException("A rate card's last tier is unbounded.");
    }

    private static TierCharge Charge(int index, PriceTier tier, decimal quantity, decimal factor)
    {
        var unitPrice = MoneyMath.FromMicros(tier.UnitPriceMicros) * factor;
        return new TierCharge(index, tier.UpToGpuHours, quantity, tier.UnitPriceMicros, unitPrice, quantity * unitPrice);
    }
}
