using Procurement.Domain.Contracts;

namespace Procurement.Domain.Tests;

/// <summary>A valid set of terms to vary one field at a time.</summary>
internal static class TestTerms
{
    public static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public static readonly IReadOnlyDictionary<string, PoolFacts> Pools = new Dictionary<string, PoolFacts>
    {
        ["h100"] = new("h100", "H100-SXM-80GB"),
        ["h200"] = new("h200", "H200-SXM-141GB"),
    };

    public static ContractTerms Valid() => new(
        Start,
        Start.AddMonths(36),
        "USD",
        1_250_000_000_000_000,
        [new PoolEntitlement("h100", 800, 100), new PoolEntitlement("h200", 300, 0)],
        new PriorityAccess(10, true),
        [
            new RateCardEntry("H100-SXM-80GB", PricingMode.Graduated, [new PriceTier(1000m, 2_500_000), new PriceTier(null, 2_000_000)]),
            new RateCardEntry("H200-SXM-141GB", PricingMode.Volume, [new PriceTier(null, 3_000_000)]),
        ],
        new IndexLinkage("GPU-INDEX", 2.40m, 0.5m, 0.90m, 1.25m),
        [
            new UtilizationBand(UtilizationMetric.ReservationUtilization, 0m, 0.5m, 1.05m),
            new UtilizationBand(UtilizationMetric.ReservationUtilization, 0.5m, null, 1m),
            new UtilizationBand(UtilizationMetric.PoolUtilization, 0.9m, null, 1.02m),
        ],
        new SlaTerms(99.9m, [new SlaCreditRow(99.99m, 10m), new SlaCreditRow(99.0m, 30m), new SlaCreditRow(95.0m, 100m)], 30m, TimeSpan.FromDays(7)));
}
