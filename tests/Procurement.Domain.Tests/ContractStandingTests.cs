using Procurement.Domain.Common;
using Procurement.Domain.Contracts;

namespace Procurement.Domain.Tests;

/// <summary>
/// A contract's standing in a pool: what admission reads from the terms version in effect. A shared
/// (read-only) copy keeps its last answer, and must still change at each instant the terms or the
/// term do.
/// </summary>
public sealed class ContractStandingTests
{
    private static readonly DateTimeOffset April = new(2026, 4, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Active from the term start, with H100 reserved 800 until April and 500 from April.</summary>
    private static Contract Amended()
    {
        var c = Contract.CreateDraft("ctr_1", "lab", "Lab", TestTerms.Valid(), TestTerms.Start.AddDays(-5));
        c.Activate(TestTerms.Start.AddDays(-5));
        c.Amend(new BillingMonth(2026, 4), TestTerms.Valid() with { Entitlements = [new PoolEntitlement("h100", 500, 50)] }, new DateTimeOffset(2026, 3, 15, 0, 0, 0, TimeSpan.Zero));
        return c;
    }

    [Fact]
    public void StandingIn_FollowsTheVersionInEffect_BackAndForthOnASharedCopy()
    {
        var shared = Amended().Share();
        var march = new DateTimeOffset(2026, 3, 20, 0, 0, 0, TimeSpan.Zero);

        var asked = new[] { march, April, April.AddTicks(-1), April.AddDays(3), march }
            .Select(t => (shared.StandingIn("h100", t).ReservedUnits, shared.StandingIn("h100", t).BurstLimitUnits));

        Assert.Equal([(800L, 100L), (500L, 50L), (800L, 100L), (500L, 50L), (800L, 100L)], asked);
    }

    [Fact]
    public void StandingIn_CanAllocateOnlyWithinTheTerm_OnASharedCopy()
    {
        var shared = Amended().Share();
        var end = shared.TermEnd;

        var asked = new[] { TestTerms.Start.AddTicks(-1), TestTerms.Start, end.AddTicks(-1), end, TestTerms.Start.AddDays(1) }
            .Select(t => shared.StandingIn("h100", t).CanAllocate);

        Assert.Equal([false, true, true, false, true], asked);
    }

    [Fact]
    public void StandingIn_APoolWithoutAnEntitlement_HoldsNothingThere_AndDoesNotHideTheOtherPool()
    {
        var shared = Amended().Share();
        var march = new DateTimeOffset(2026, 3, 20, 0, 0, 0, TimeSpan.Zero);

        Assert.Equal(300, shared.StandingIn("h200", march).ReservedUnits);
        Assert.Equal((0L, 0L), (shared.StandingIn("h200", April).ReservedUnits, shared.StandingIn("h200", April).BurstLimitUnits));
        Assert.Equal(500, shared.StandingIn("h100", April).ReservedUnits);
        Assert.Equal(0, shared.StandingIn("gb200", April).ReservedUnits);
    }

    [Fact]
    public void StandingIn_OnAnUnsharedContract_SeesAnAmendmentMadeAfterItWasAsked()
    {
        var c = Contract.CreateDraft("ctr_1", "lab", "Lab", TestTerms.Valid(), TestTerms.Start);
        c.Activate(TestTerms.Start);
        Assert.Equal(800, c.StandingIn("h100", April).ReservedUnits);

        c.Amend(new BillingMonth(2026, 4), TestTerms.Valid() with { Entitlements = [new PoolEntitlement("h100", 500, 50)] }, new DateTimeOffset(2026, 3, 15, 0, 0, 0, TimeSpan.Zero));

        Assert.Equal(500, c.StandingIn("h100", April).ReservedUnits);
    }
}
