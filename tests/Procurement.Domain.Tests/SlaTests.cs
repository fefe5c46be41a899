using Procurement.Domain.Contracts;
using Procurement.Domain.Pricing;
using Procurement.Domain.Sla;

namespace Procurement.Domain.Tests;

/// <summary>Monthly uptime; expected values worked out by hand in the comments.</summary>
public class SlaTests
{
    private static readonly DateTimeOffset April = new(2026, 4, 1, 0, 0, 0, TimeSpan.Zero); // 30 days = 43,200 minutes
    private static readonly DateTimeOffset May = April.AddMonths(1);
    private static readonly SlaTerms Sla = new(99.9m, [new SlaCreditRow(99.99m, 10m), new SlaCreditRow(99.0m, 30m), new SlaCreditRow(95.0m, 100m)], 30m, TimeSpan.FromDays(7));
    private static int _ids;

    private static Incident Incident(IncidentKind kind, DateTimeOffset start, TimeSpan length, long units, DateTimeOffset? announced = null) =>
        new($"inc_{Interlocked.Increment(ref _ids)}", "p", kind, start, start + length, units, announced, start, start);

    private static SlaPool Pool(long reserved, params Incident[] incidents) =>
        new("p", reserved, [new CapacityPoint(April.AddYears(-1), 100)], incidents);

    [Fact]
    public void PartialPoolOutage_CountsTheAffectedFraction()
    {
        // T = 10 reserved × 43,200 min = 432,000. Outage of 50 of 100 units for 432 min:
        // D = 0.5 × 10 × 432 = 2,160; uptime = 100 × (1 − 2,160/432,000) = 99.5 → credit 10%.
        var r = UptimeCalculator.Compute(Sla, [Pool(10, Incident(IncidentKind.Outage, April.AddDays(3), TimeSpan.FromMinutes(432), 50))], April, May);
        Assert.Equal(432_000m, r.ReservedMinutes);
        Assert.Equal(2_160m, r.DowntimeMinutes);
        Assert.Equal(99.5m, r.UptimePercent);
        Assert.False(r.TargetMet);
        Assert.Equal(10m, r.CreditRow!.CreditPercent);
        // Error budget: (1 − 0.999) × 432,000 = 432; used 2,160; left −1,728.
        Assert.Equal(432m, r.ErrorBudgetMinutes);
        Assert.Equal(-1_728m, r.ErrorBudgetLeftMinutes);
    }

    [Fact]
    public void OverlappingIncidents_AreCappedAtTheWholePool()
    {
        // Capacity 50 (from the pool's history), R = 10. A: 30 units [0, 120) min; B: 40 units [60, 180).
        // [0,60): 30/50 = 0.6 × 10 × 60 = 360; [60,120): 70/50 → 1 × 600 = 600; [120,180): 40/50 = 0.8 × 600 = 480.
        // D = 1,440.
        var a = Incident(IncidentKind.Outage, April, TimeSpan.FromMinutes(120), 30);
        var b = Incident(IncidentKind.Outage, April.AddMinutes(60), TimeSpan.FromMinutes(120), 40);
        var pool = new SlaPool("p", 10, [new CapacityPoint(April.AddDays(-1), 50)], [a, b]);
        var r = UptimeCalculator.Compute(Sla, [pool], April, May);
        Assert.Equal(1_440m, r.DowntimeMinutes);
        Assert.Equal(100m * (1m - (1_440m / 432_000m)), r.UptimePercent);
        // A: 360 + 600 × 30/70; B: 480 + 600 × 40/70 — together the whole downtime.
        Assert.Equal(1_440m, Math.Round(r.Incidents.Sum(i => i.DowntimeMinutes), 20));
    }

    [Fact]
    public void CapacityChangeDuringAnOutage_ChangesTheFraction()
    {
        // 20 units out for 120 min; capacity 100 for the first hour then 40: 0.2 × 60 × 10 + 0.5 × 60 × 10 = 120 + 300.
        var pool = new SlaPool("p", 10, [new CapacityPoint(April.AddDays(-1), 100), new CapacityPoint(April.AddMinutes(60), 40)],
            [Incident(IncidentKind.Outage, April, TimeSpan.FromMinutes(120), 20)]);
        Assert.Equal(420m, UptimeCalculator.Compute(Sla, [pool], April, May).DowntimeMinutes);
    }

    [Fact]
    public void Maintenance_WithEnoughNotice_IsExcluded_WithoutIt_IsCounted()
    {
        // Notice 7 days. Announced 8 days before: excluded. Announced 2 days before, or never: counted.
        // Each is 100 of 100 units for 60 min with R = 10: 600 minutes each.
        var noticed = Incident(IncidentKind.Maintenance, April.AddDays(10), TimeSpan.FromMinutes(60), 100, April.AddDays(2));
        var late = Incident(IncidentKind.Maintenance, April.AddDays(12), TimeSpan.FromMinutes(60), 100, April.AddDays(10));
        var unannounced = Incident(IncidentKind.Maintenance, April.AddDays(14), TimeSpan.FromMinutes(60), 100);
        var r = UptimeCalculator.Compute(Sla, [Pool(10, noticed, late, unannounced)], April, May);
        Assert.Equal(1_200m, r.DowntimeMinutes);
        var excluded = r.Incidents.Single(i => i.Incident == noticed);
        Assert.False(excluded.Counted);
        Assert.Contains("notice period", excluded.Explanation);
        Assert.True(r.Incidents.Single(i => i.Incident == late).Counted);
    }

    [Fact]
    public void DegradedIncidents_AreReportedButNotCounted()
    {
        var degraded = Incident(IncidentKind.Degraded, April, TimeSpan.FromHours(5), 100);
        var r = UptimeCalculator.Compute(Sla, [Pool(10, degraded)], April, May);
        Assert.Equal(0m, r.DowntimeMinutes);
        Assert.Equal(100m, r.UptimePercent);
        Assert.Contains("DEGRADED", Assert.Single(r.Incidents).Explanation);
    }

    [Fact]
    public void IncidentCrossingTheMonthBoundary_CountsOnlyTheMinutesInTheMonth()
    {
        // 31 March 23:00 to 1 April 01:00, the whole pool: only 60 minutes are in April. D = 1 × 10 × 60 = 600.
        var crossing = Incident(IncidentKind.Outage, April.AddHours(-1), TimeSpan.FromHours(2), 100);
        Assert.Equal(600m, UptimeCalculator.Compute(Sla, [Pool(10, crossing)], April, May).DowntimeMinutes);
    }

    [Fact]
    public void OpenIncident_CountsUntilTheEndOfThePeriod()
    {
        var open = Incident(IncidentKind.Outage, May.AddHours(-2), TimeSpan.Zero, 100) with { End = null };
        Assert.Equal(1_200m, UptimeCalculator.Compute(Sla, [Pool(10, open)], April, May).DowntimeMinutes);
    }

    [Fact]
    public void ContractStartingMidMonth_CountsOnlyItsPartOfTheMonth()
    {
        // Term from 16 April: T = 10 × 15 days × 1,440 = 216,000. An outage on 10 April is outside the term;
        // one of 216 min of the whole pool on 20 April gives D = 2,160 → uptime 100 × (1 − 0.01) = 99.0.
        var before = Incident(IncidentKind.Outage, April.AddDays(9), TimeSpan.FromHours(3), 100);
        var after = Incident(IncidentKind.Outage, April.AddDays(19), TimeSpan.FromMinutes(216), 100);
        var r = UptimeCalculator.Compute(Sla, [Pool(10, before, after)], April.AddDays(15), May);
        Assert.Equal(216_000m, r.ReservedMinutes);
        Assert.Equal(2_160m, r.DowntimeMinutes);
        Assert.Equal(99.0m, r.UptimePercent);
        Assert.Equal(10m, r.CreditRow!.CreditPercent); // 99.0 is not strictly below 99.0
    }

    [Fact]
    public void NoReservation_IsOneHundredPercent()
    {
        var r = UptimeCalculator.Compute(Sla, [Pool(0, Incident(IncidentKind.Outage, April, TimeSpan.FromDays(3), 100))], April, May);
        Assert.Equal(0m, r.ReservedMinutes);
        Assert.Equal(100m, r.UptimePercent);
        Assert.True(r.TargetMet);
        Assert.Null(r.CreditRow);
    }

    [Fact]
    public void SeveralPools_AddTheirReservedAndDowntimeMinutes()
    {
        // Pool p: R 10, 60 min of half the pool → 300. Pool q: R 30, no incident. T = 40 × 43,200 = 1,728,000.
        var p = Pool(10, Incident(IncidentKind.Outage, April, TimeSpan.FromMinutes(60), 50));
        var q = new SlaPool("q", 30, [new CapacityPoint(April, 30)], []);
        var r = UptimeCalculator.Compute(Sla, [p, q], April, May);
        Assert.Equal(1_728_000m, r.ReservedMinutes);
        Assert.Equal(300m, r.DowntimeMinutes);
    }

    [Fact]
    public void UsageIntegrals_SplitGuaranteedAndBurstAtEachInstant()
    {
        // R = 4. [0,2h): 3 units; [1h,3h): 3 units. Held: 3 (1h), 6 (1h), 3 (1h).
        // Guaranteed = 3 + 4 + 3 = 10 GPU-hours; burst = 0 + 2 + 0 = 2.
        var intervals = new[] { new HeldInterval(April, April.AddHours(2), 3), new HeldInterval(April.AddHours(1), April.AddHours(3), 3) };
        Assert.Equal((10m, 2m), UsageIntegrals.Split(intervals, 4, April, May));
        Assert.Equal(12m, UsageIntegrals.GpuHours(intervals, April, May));
        Assert.Equal(6m, UsageIntegrals.GpuHours(intervals, April.AddMinutes(90), May)); // clipped at 1.5 h: 0.5 × 3 + 1.5 × 3
    }
}
