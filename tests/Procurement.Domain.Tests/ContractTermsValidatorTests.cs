using Procurement.Domain.Contracts;

namespace Procurement.Domain.Tests;

public class ContractTermsValidatorTests
{
    private static IReadOnlyList<string> Fields(ContractTerms terms) =>
        ContractTermsValidator.Validate(terms, TestTerms.Pools).Select(v => v.Field).ToList();

    private static ContractTerms WithTiers(params PriceTier[] tiers)
    {
        var t = TestTerms.Valid();
        return t with { RateCard = [t.RateCard[0] with { Tiers = tiers }, t.RateCard[1]] };
    }

    [Fact]
    public void Validate_ValidTerms_HasNoViolations() => Assert.Empty(Fields(TestTerms.Valid()));

    [Fact]
    public void Validate_EndNotAfterStart_NamesEndTime()
    {
        var t = TestTerms.Valid();
        Assert.Equal(["end_time"], Fields(t with { EndTime = t.StartTime }));
    }

    [Theory]
    [InlineData("usd")]
    [InlineData("XYZ")]
    [InlineData("")]
    [InlineData("US")]
    public void Validate_UnknownCurrency_NamesCurrencyCode(string code) =>
        Assert.Equal(["currency_code"], Fields(TestTerms.Valid() with { CurrencyCode = code }));

    [Fact]
    public void Validate_NegativeCommitment_NamesAmount() =>
        Assert.Equal(["monthly_commitment.amount_micros"], Fields(TestTerms.Valid() with { MonthlyCommitmentMicros = -1 }));

    [Fact]
    public void Validate_TiersNotAscending_NamesTheTier() =>
        Assert.Equal(["rate_card[0].tiers[1].up_to_gpu_hours"],
            Fields(WithTiers(new PriceTier(1000m, 3), new PriceTier(1000m, 2), new PriceTier(null, 1))));

    [Fact]
    public void Validate_LastTierBounded_NamesTheLastTier() =>
        Assert.Equal(["rate_card[0].tiers[1].up_to_gpu_hours"],
            Fields(WithTiers(new PriceTier(1000m, 3), new PriceTier(2000m, 2))));

    [Fact]
    public void Validate_UnboundedTierBeforeTheLast_NamesIt() =>
        Assert.Equal(["rate_card[0].tiers[0].up_to_gpu_hours"],
            Fields(WithTiers(new PriceTier(null, 3), new PriceTier(null, 2))));

    [Fact]
    public void Validate_NoTiers_NamesTiers() =>
        Assert.Equal(["rate_card[0].tiers"], Fields(WithTiers()));

    [Fact]
    public void Validate_NegativePrice_NamesTheUnitPrice() =>
        Assert.Equal(["rate_card[0].tiers[0].unit_price.amount_micros"],
            Fields(WithTiers(new PriceTier(1000m, -1), new PriceTier(null, 2))));

    [Fact]
    public void Validate_UnknownPool_NamesThePoolId()
    {
        var t = TestTerms.Valid();
        Assert.Equal(["entitlements[1].pool_id"], Fields(t with { Entitlements = [t.Entitlements[0], new PoolEntitlement("nope", 1, 0)] }));
    }

    [Fact]
    public void Validate_DuplicatePool_NamesTheSecondEntry()
    {
        var t = TestTerms.Valid();
        Assert.Equal(["entitlements[1].pool_id"], Fields(t with { Entitlements = [t.Entitlements[0], t.Entitlements[0]] }));
    }

    [Fact]
    public void Validate_NegativeUnits_NameBothFields()
    {
        var t = TestTerms.Valid();
        Assert.Equal(["entitlements[0].reserved_units", "entitlements[0].burst_limit_units"],
            Fields(t with { Entitlements = [new PoolEntitlement("h100", -1, -1)] }));
    }

    [Fact]
    public void Validate_EntitledAcceleratorWithoutRate_NamesRateCard()
    {
        var t = TestTerms.Valid();
        Assert.Equal(["rate_card"], Fields(t with { RateCard = [t.RateCard[0]] }));
    }

    [Fact]
    public void Validate_DuplicateAcceleratorType_NamesTheSecondEntry()
    {
        var t = TestTerms.Valid();
        Assert.Equal(["rate_card[2].accelerator_type"], Fields(t with { RateCard = [.. t.RateCard, t.RateCard[0]] }));
    }

    [Fact]
    public void Validate_UndefinedMode_NamesMode()
    {
        var t = TestTerms.Valid();
        Assert.Equal(["rate_card[0].mode"], Fields(t with { RateCard = [t.RateCard[0] with { Mode = 0 }, t.RateCard[1]] }));
    }

    [Theory]
    [InlineData("-0.1")]
    [InlineData("1.01")]
    public void Validate_PassThroughOutsideZeroToOne_NamesPassThrough(string beta)
    {
        var t = TestTerms.Valid();
        Assert.Equal(["index_linkage.pass_through"], Fields(t with { IndexLinkage = t.IndexLinkage! with { PassThrough = decimal.Parse(beta, System.Globalization.CultureInfo.InvariantCulture) } }));
    }

    [Theory]
    [InlineData("0")]
    [InlineData("1")]
    public void Validate_PassThroughAtTheBounds_IsAccepted(string beta)
    {
        var t = TestTerms.Valid();
        Assert.Empty(Fields(t with { IndexLinkage = t.IndexLinkage! with { PassThrough = decimal.Parse(beta, System.Globalization.CultureInfo.InvariantCulture) } }));
    }

    [Fact]
    public void Validate_FloorAboveCap_NamesFloor()
    {
        var t = TestTerms.Valid();
        Assert.Equal(["index_linkage.floor"], Fields(t with { IndexLinkage = t.IndexLinkage! with { Floor = 1.3m, Cap = 1.25m } }));
    }

    [Fact]
    public void Validate_NonPositiveBaseValue_NamesBaseValue()
    {
        var t = TestTerms.Valid();
        Assert.Equal(["index_linkage.base_value"], Fields(t with { IndexLinkage = t.IndexLinkage! with { BaseValue = 0m } }));
    }

    [Fact]
    public void Validate_OverlappingBandsOfOneMetric_NamesTheLaterBand()
    {
        var t = TestTerms.Valid();
        var bands = t.UtilizationBands.Append(new UtilizationBand(UtilizationMetric.ReservationUtilization, 0.4m, 0.6m, 1m)).ToList();
        Assert.Equal(["utilization_bands[3].min"], Fields(t with { UtilizationBands = bands }));
    }

    [Fact]
    public void Validate_TouchingBands_DoNotOverlap()
    {
        // [0, 0.5) and [0.5, unbounded): max is exclusive, so 0.5 belongs to the second band only.
        Assert.Empty(Fields(TestTerms.Valid()));
    }

    [Fact]
    public void Validate_SameRangeOnDifferentMetrics_IsAccepted()
    {
        var t = TestTerms.Valid();
        var bands = new List<UtilizationBand>
        {
            new(UtilizationMetric.ReservationUtilization, 0m, null, 1m),
            new(UtilizationMetric.PoolUtilization, 0m, null, 1m),
        };
        Assert.Empty(Fields(t with { UtilizationBands = bands }));
    }

    [Fact]
    public void Validate_BandMaxNotAboveMin_NamesMax()
    {
        var t = TestTerms.Valid();
        Assert.Equal(["utilization_bands[0].max"], Fields(t with { UtilizationBands = [new UtilizationBand(UtilizationMetric.PoolUtilization, 0.5m, 0.5m, 1m)] }));
    }

    [Fact]
    public void Validate_BandMinOutsideZeroToOne_AndNegativeMultiplier_NameBoth()
    {
        var t = TestTerms.Valid();
        Assert.Equal(["utilization_bands[0].min", "utilization_bands[0].multiplier"],
            Fields(t with { UtilizationBands = [new UtilizationBand(UtilizationMetric.PoolUtilization, 1.5m, null, -1m)] }));
    }

    [Fact]
    public void Validate_CreditScheduleNotDescending_NamesTheRow()
    {
        var t = TestTerms.Valid();
        Assert.Equal(["sla.credit_schedule[1].below_percent"],
            Fields(t with { Sla = t.Sla with { CreditSchedule = [new SlaCreditRow(99.0m, 10m), new SlaCreditRow(99.9m, 30m)] } }));
    }

    [Fact]
    public void Validate_CreditShrinkingAsUptimeFalls_NamesTheCredit()
    {
        var t = TestTerms.Valid();
        Assert.Equal(["sla.credit_schedule[1].credit_percent"],
            Fields(t with { Sla = t.Sla with { CreditSchedule = [new SlaCreditRow(99.9m, 30m), new SlaCreditRow(99.0m, 10m)] } }));
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("100.01")]
    public void Validate_TargetOutsideZeroToHundred_NamesTarget(string target)
    {
        var t = TestTerms.Valid();
        Assert.Equal(["sla.availability_target_percent"],
            Fields(t with { Sla = t.Sla with { AvailabilityTargetPercent = decimal.Parse(target, System.Globalization.CultureInfo.InvariantCulture) } }));
    }

    [Fact]
    public void Validate_TargetOfExactlyHundred_IsAccepted()
    {
        var t = TestTerms.Valid();
        Assert.Empty(Fields(t with { Sla = t.Sla with { AvailabilityTargetPercent = 100m } }));
    }

    [Fact]
    public void Validate_CapAboveHundred_AndNegativeNotice_NameBoth()
    {
        var t = TestTerms.Valid();
        Assert.Equal(["sla.credit_cap_percent", "sla.maintenance_notice"],
            Fields(t with { Sla = t.Sla with { CreditCapPercent = 101m, MaintenanceNotice = TimeSpan.FromSeconds(-1) } }));
    }

    [Fact]
    public void Validate_SeveralMistakes_ReportsEveryOne()
    {
        var t = TestTerms.Valid();
        var bad = t with { EndTime = t.StartTime, CurrencyCode = "???", MonthlyCommitmentMicros = -5 };
        Assert.Equal(["end_time", "currency_code", "monthly_commitment.amount_micros"], Fields(bad));
    }

    [Fact]
    public void Validate_BlockTerms_AreCheckedLikeEveryOtherTerm()
    {
        var valid = TestTerms.Valid() with
        {
            Entitlements = [new PoolEntitlement("h100", 800, 100) { MaxBlockUnits = 200 }],
            BlockRates = [new BlockRate("H100-SXM-80GB", 3_100_000)],
            BlockCancellationNotice = TimeSpan.FromDays(14),
        };
        Assert.Empty(Fields(valid));

        Assert.Equal(["entitlements[0].max_block_units"], Fields(valid with { BlockRates = [] }));
        Assert.Equal(["entitlements[0].max_block_units"], Fields(valid with { Entitlements = [new PoolEntitlement("h100", 800, 100) { MaxBlockUnits = -1 }] }));
        Assert.Equal(["block_rates[1].accelerator_type"], Fields(valid with { BlockRates = [.. valid.BlockRates, new BlockRate("H100-SXM-80GB", 1)] }));
        Assert.Equal(["block_rates[0].unit_price.amount_micros"], Fields(valid with { BlockRates = [new BlockRate("H100-SXM-80GB", -1)] }));
        Assert.Equal(["block_cancellation_notice"], Fields(valid with { BlockCancellationNotice = TimeSpan.FromDays(-1) }));
        Assert.Equal(["block_cancellation_notice"], Fields(valid with { BlockCancellationNotice = TimeSpan.FromDays(366) }));
    }
}
