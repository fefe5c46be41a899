using Procurement.Domain.Common;
using Procurement.Domain.Contracts;
using Procurement.Domain.Pricing;

namespace Procurement.Domain.Tests;

/// <summary>Statement arithmetic; every expected value is worked out by hand in the comments.</summary>
public class PricingTests
{
    private static readonly BillingMonth March = new(2026, 3); // 31 days
    private static readonly SlaTerms AwsSla = new(99.9m, [new SlaCreditRow(99.99m, 10m), new SlaCreditRow(99.0m, 30m), new SlaCreditRow(95.0m, 100m)], 30m, TimeSpan.FromDays(7));

    private static readonly RateCardEntry ThreeTiers = new("H100", PricingMode.Graduated,
        [new PriceTier(1000m, 2_000_000), new PriceTier(5000m, 1_500_000), new PriceTier(null, 1_000_000)]);

    private static ContractTerms Terms(RateCardEntry entry, long commitmentMicros = 0, string currency = "USD", IndexLinkage? index = null,
        IReadOnlyList<UtilizationBand>? bands = null, DateTimeOffset? start = null) => new(
        start ?? March.Start, (start ?? March.Start).AddMonths(36), currency, commitmentMicros, [], new PriorityAccess(0, false),
        [entry], index, bands ?? [], AwsSla);

    private static StatementResult Compute(ContractTerms terms, decimal gpuHours, decimal uptime = 100m, UtilizationMetrics? metrics = null, IndexValue? index = null) =>
        StatementCalculator.Compute(new StatementInputs(terms, March,
            [new UsageQuantity(terms.RateCard[0].AcceleratorType, gpuHours, gpuHours, 0m)],
            metrics ?? new UtilizationMetrics(null, null), index,
            new SlaOutcome(uptime, StatementCalculator.CreditRow(terms.Sla, uptime))));

    private static decimal Line(StatementResult r, StatementLineKind kind) => r.Lines.Single(l => l.Kind == kind).Amount;

    [Fact]
    public void GraduatedVersusVolume_OnTheSameUsage()
    {
        // 6,000 GPU-hours. Graduated: 1,000 × 2.00 + 4,000 × 1.50 + 1,000 × 1.00 = 9,000.00.
        Assert.Equal(9000.00m, Line(Compute(Terms(ThreeTiers), 6000m), StatementLineKind.Usage));
        // Volume: 6,000 passes 5,000, so every hour is at the last tier: 6,000 × 1.00 = 6,000.00.
        Assert.Equal(6000.00m, Line(Compute(Terms(ThreeTiers with { Mode = PricingMode.Volume }), 6000m), StatementLineKind.Usage));
    }

    [Fact]
    public void UsageExactlyOnATierBoundary_StaysInThatTier()
    {
        // up_to is inclusive: 1,000 hours are all tier 0 at 2.00 in both modes = 2,000.00.
        Assert.Equal(2000.00m, Line(Compute(Terms(ThreeTiers), 1000m), StatementLineKind.Usage));
        Assert.Equal(2000.00m, Line(Compute(Terms(ThreeTiers with { Mode = PricingMode.Volume }), 1000m), StatementLineKind.Usage));
        // Half an hour more: graduated 2,000 + 0.5 × 1.50 = 2,000.75; volume 1,000.5 × 1.50 = 1,500.75.
        Assert.Equal(2000.75m, Line(Compute(Terms(ThreeTiers), 1000.5m), StatementLineKind.Usage));
        Assert.Equal(1500.75m, Line(Compute(Terms(ThreeTiers with { Mode = PricingMode.Volume }), 1000.5m), StatementLineKind.Usage));
    }

    [Fact]
    public void ZeroUsageWithACommitment_IsAllTrueUp()
    {
        // Commitment 10,000.00 for a whole month, no usage: true-up 10,000.00, total 10,000.00.
        var r = Compute(Terms(ThreeTiers, commitmentMicros: 10_000_000_000), 0m);
        Assert.Equal([0m, 0m, 10000.00m, 0m], r.Lines.Select(l => l.Amount));
        Assert.Equal(10000.00m, r.Total);
    }

    [Fact]
    public void ContractStartingMidMonth_ProratesTheCommitment()
    {
        // Starts 11 March: 21 of 31 days inside the term. 31,000.00 × 21/31 = 21,000.00 prorated.
        // Usage 2,500 h graduated: 1,000 × 2 + 1,500 × 1.5 = 4,250.00; true-up 21,000 − 4,250 = 16,750.00.
        var terms = Terms(ThreeTiers, commitmentMicros: 31_000_000_000, start: new DateTimeOffset(2026, 3, 11, 0, 0, 0, TimeSpan.Zero));
        var r = Compute(terms, 2500m);
        var trueUp = r.Lines.Single(l => l.Kind == StatementLineKind.CommitmentTrueUp);
        Assert.Equal(21m / 31m, trueUp.TermFraction);
        Assert.Equal(16750.00m, trueUp.Amount);
        Assert.Equal(21000.00m, r.Total);
    }

    [Theory]
    // base 2.00, beta 0.5, floor 0.90, cap 1.25; price 2.00/h, 100 h.
    [InlineData("1.00", "0.90", "180.00")] // 1 + 0.5 × (0.5 − 1) = 0.75 → floor 0.90; 100 × 2.00 × 0.90 = 180.00
    [InlineData("4.00", "1.25", "250.00")] // 1 + 0.5 × (2 − 1) = 1.5 → cap 1.25; 250.00
    [InlineData("2.40", "1.1", "220.00")]  // 1 + 0.5 × 0.2 = 1.1; 220.00
    public void IndexLinkage_AtFloorCapAndBetween(string published, string factor, string amount)
    {
        var index = new IndexLinkage("IDX", 2.00m, 0.5m, 0.90m, 1.25m);
        var flat = new RateCardEntry("H100", PricingMode.Graduated, [new PriceTier(null, 2_000_000)]);
        var r = Compute(Terms(flat, index: index), 100m, index: new IndexValue("IDX", March.Start.AddDays(-1), decimal.Parse(published, System.Globalization.CultureInfo.InvariantCulture)));
        Assert.Equal(decimal.Parse(factor, System.Globalization.CultureInfo.InvariantCulture), r.Index.Factor);
        Assert.Equal(decimal.Parse(amount, System.Globalization.CultureInfo.InvariantCulture), Line(r, StatementLineKind.Usage));
    }

    [Fact]
    public void IndexLinkage_WithNoPublishedValue_UsesTheUnadjustedPriceAndSaysSo()
    {
        var index = new IndexLinkage("IDX", 2.00m, 0.5m, 0.90m, 1.25m);
        var r = Compute(Terms(ThreeTiers, index: index), 100m);
        Assert.Equal(1m, r.Index.Factor);
        Assert.Null(r.Index.Value);
        Assert.Contains("no value of IDX", r.Index.Note);
        Assert.Contains("no index value published, prices unadjusted", r.Lines[0].Description); // said on the line too
        Assert.Equal(200.00m, Line(r, StatementLineKind.Usage));
    }

    [Fact]
    public void SeveralBands_MultiplyTheirMultipliers()
    {
        // Reservation utilization 0.4 matches [0, 0.5) × 1.05; pool utilization 0.97 matches [0.95, ∞) × 1.02.
        // 1.05 × 1.02 = 1.071; usage 500 h at 2.00 = 1,000.00; adjustment 1,000 × 0.071 = 71.00.
        var bands = new List<UtilizationBand>
        {
            new(UtilizationMetric.ReservationUtilization, 0m, 0.5m, 1.05m),
            new(UtilizationMetric.ReservationUtilization, 0.5m, null, 0.98m),
            new(UtilizationMetric.PoolUtilization, 0.95m, null, 1.02m),
        };
        var r = Compute(Terms(ThreeTiers, bands: bands), 500m, metrics: new UtilizationMetrics(0.4m, 0.97m));
        var adjustment = r.Lines.Single(l => l.Kind == StatementLineKind.UtilizationAdjustment);
        Assert.Equal(1.071m, adjustment.Multiplier);
        Assert.Equal([0, 2], adjustment.Bands!.Select(b => b.BandIndex));
        Assert.Equal(71.00m, adjustment.Amount);
        Assert.Equal(1071.00m, r.Total);
    }

    [Fact]
    public void UndefinedMetric_MatchesNoBand()
    {
        var bands = new List<UtilizationBand> { new(UtilizationMetric.ReservationUtilization, 0m, null, 2m) };
        var r = Compute(Terms(ThreeTiers, bands: bands), 500m, metrics: new UtilizationMetrics(null, 0.5m));
        Assert.Equal(0m, Line(r, StatementLineKind.UtilizationAdjustment));
    }

    [Theory]
    // One GPU-hour at a price with a half cent: banker's rounding goes to the even cent.
    [InlineData(125_000, "0.12")] // 0.125 → 0.12
    [InlineData(135_000, "0.14")] // 0.135 → 0.14
    [InlineData(-0, "0")]
    public void HalfCents_RoundToEven(long priceMicros, string expected)
    {
        var entry = new RateCardEntry("H100", PricingMode.Graduated, [new PriceTier(null, priceMicros)]);
        Assert.Equal(decimal.Parse(expected, System.Globalization.CultureInfo.InvariantCulture), Line(Compute(Terms(entry), 1m), StatementLineKind.Usage));
    }

    [Fact]
    public void LaterLines_AreComputedFromTheRoundedLinesBeforeThem()
    {
        // Usage 0.125 rounds to 0.12; a ×2 band then adds round(0.12 × 1) = 0.12 (not 0.125 → 0.12 + 0.13).
        var entry = new RateCardEntry("H100", PricingMode.Graduated, [new PriceTier(null, 125_000)]);
        var bands = new List<UtilizationBand> { new(UtilizationMetric.PoolUtilization, 0m, null, 2m) };
        var r = Compute(Terms(entry, bands: bands), 1m, metrics: new UtilizationMetrics(null, 0.5m));
        Assert.Equal([0.12m, 0.12m, 0m, 0m], r.Lines.Select(l => l.Amount));
        Assert.Equal(0.24m, r.Total);
    }

    [Theory]
    [InlineData("JPY", "10.5", "10")]   // ¥1/h: 10.5 → 10 (even)
    [InlineData("JPY", "11.5", "12")]   // 11.5 → 12 (even)
    [InlineData("BHD", "1.2345", "1.234")] // 3 decimals: …4|5 → 4 (even)
    [InlineData("BHD", "1.2355", "1.236")] // …5|5 → 6 (even)
    public void MinorUnits_FollowTheCurrency(string currency, string hours, string expected)
    {
        var entry = new RateCardEntry("H100", PricingMode.Graduated, [new PriceTier(null, 1_000_000)]);
        var r = Compute(Terms(entry, currency: currency), decimal.Parse(hours, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(decimal.Parse(expected, System.Globalization.CultureInfo.InvariantCulture), Line(r, StatementLineKind.Usage));
    }

    [Theory]
    // AWS-style schedule: below 99.99 → 10, below 99.0 → 30, below 95.0 → 100; the lowest threshold passed wins.
    [InlineData("99.995", null)]
    [InlineData("99.99", null)]   // not strictly below 99.99
    [InlineData("99.5", "10")]
    [InlineData("99.0", "10")]    // not strictly below 99.0
    [InlineData("98.5", "30")]
    [InlineData("94", "100")]
    public void CreditSchedule_LowestThresholdStrictlyAboveTheUptimeWins(string uptime, string? credit)
    {
        var row = StatementCalculator.CreditRow(AwsSla, decimal.Parse(uptime, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(credit is null ? null : decimal.Parse(credit, System.Globalization.CultureInfo.InvariantCulture), row?.CreditPercent);
    }

    [Fact]
    public void SlaCredit_IsCappedAtTheCapPercent()
    {
        // Uptime 90% earns 100%, capped at 30%: usage 1,000.00 → credit −300.00, total 700.00.
        var flat = new RateCardEntry("H100", PricingMode.Graduated, [new PriceTier(null, 2_000_000)]);
        var r = Compute(Terms(flat), 500m, uptime: 90m);
        var credit = r.Lines.Single(l => l.Kind == StatementLineKind.SlaCredit);
        Assert.Equal(-300.00m, credit.Amount);
        Assert.Equal(100m, credit.CreditPercent);
        Assert.Equal(700.00m, r.Total);
    }

    [Fact]
    public void BillionDollarMonth_IsExactToTheCent()
    {
        // $1.25B/month committed; H100 graduated: up to 40M GPU-hours at $25.00, beyond at $20.00.
        // Index: base 2.40, beta 0.5, published 2.46 → 2.46/2.40 = 1.025 → f = 1 + 0.5 × 0.025 = 1.0125.
        // Prices 25.3125 and 20.25. Usage 59,520,000.25 GPU-hours:
        //   40,000,000 × 25.3125            = 1,012,500,000.00
        //   19,520,000.25 × 20.25           =   395,280,005.0625
        //   usage                           = 1,407,780,005.0625 → 1,407,780,005.06
        // Reservation utilization 0.93 → band [0.9, ∞) × 0.97: round(1,407,780,005.06 × −0.03)
        //   = round(−42,233,400.1518)       =   −42,233,400.15
        // Adjusted usage 1,365,546,604.91 > commitment 1,250,000,000.00 → true-up 0.
        // Uptime 99.5% → 10% (cap 30%): round(0.10 × 1,365,546,604.91) = round(136,554,660.491) → −136,554,660.49
        // Total 1,365,546,604.91 − 136,554,660.49 = 1,228,991,944.42.
        var entry = new RateCardEntry("H100", PricingMode.Graduated, [new PriceTier(40_000_000m, 25_000_000), new PriceTier(null, 20_000_000)]);
        var bands = new List<UtilizationBand> { new(UtilizationMetric.ReservationUtilization, 0.9m, null, 0.97m) };
        var terms = Terms(entry, commitmentMicros: 1_250_000_000_000_000, index: new IndexLinkage("IDX", 2.40m, 0.5m, 0.90m, 1.25m), bands: bands);
        var r = Compute(terms, 59_520_000.25m, uptime: 99.5m, metrics: new UtilizationMetrics(0.93m, null), index: new IndexValue("IDX", March.Start, 2.46m));

        Assert.Equal(1.0125m, r.Index.Factor);
        Assert.Equal([1_407_780_005.06m, -42_233_400.15m, 0m, -136_554_660.49m], r.Lines.Select(l => l.Amount));
        Assert.Equal(1_228_991_944.42m, r.Total);
        Assert.Equal(1_228_991_944_420_000L, MoneyMath.ToMicros(r.Total));
        Assert.Equal(r.Total, r.Lines.Sum(l => l.Amount)); // I5
    }
}
