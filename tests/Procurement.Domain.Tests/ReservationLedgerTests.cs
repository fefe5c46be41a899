using Procurement.Domain.Contracts;
using Procurement.Domain.Errors;
using Procurement.Domain.Pools;

namespace Procurement.Domain.Tests;

public class ReservationLedgerTests
{
    private static readonly DateTimeOffset Jan = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset Feb = Jan.AddMonths(1);
    private static readonly DateTimeOffset Mar = Jan.AddMonths(2);

    [Fact]
    public void ReservedByPool_SumsContracts()
    {
        var rows = new[]
        {
            new EntitlementRow("a", 1, Jan, "p", 60),
            new EntitlementRow("b", 1, Jan, "p", 30),
            new EntitlementRow("b", 1, Jan, "q", 5),
        };
        var reserved = ReservationLedger.ReservedByPool(rows, Jan.AddDays(3));
        Assert.Equal(90, reserved["p"]);
        Assert.Equal(5, reserved["q"]);
    }

    [Fact]
    public void ReservedByPool_FutureAmendment_CountsTheLargerOfNowAndLater()
    {
        // Version 2 raises the reservation from March: a capacity check in February must already count it.
        var rows = new[] { new EntitlementRow("a", 1, Jan, "p", 60), new EntitlementRow("a", 2, Mar, "p", 80) };
        Assert.Equal(80, ReservationLedger.ReservedByPool(rows, Feb)["p"]);
    }

    [Fact]
    public void ReservedByPool_SupersededVersion_IsNotCounted()
    {
        // Version 2 (from March) is superseded before it applies by version 3 (from February).
        var rows = new[]
        {
            new EntitlementRow("a", 1, Jan, "p", 10),
            new EntitlementRow("a", 2, Mar, "p", 500),
            new EntitlementRow("a", 3, Feb, "p", 20),
        };
        Assert.Equal(20, ReservationLedger.ReservedByPool(rows, Jan.AddDays(5))["p"]);
    }

    [Fact]
    public void ReservedByPool_PastVersion_IsNotCounted()
    {
        var rows = new[] { new EntitlementRow("a", 1, Jan, "p", 90), new EntitlementRow("a", 2, Feb, "p", 40) };
        Assert.Equal(40, ReservationLedger.ReservedByPool(rows, Mar)["p"]);
    }

    [Fact]
    public void FindOverbooked_NamesEachPoolWithCapacityAndReservation()
    {
        var overbooked = ReservationLedger.FindOverbooked(
            new Dictionary<string, long> { ["p"] = 100, ["q"] = 10 },
            new Dictionary<string, long> { ["p"] = 101, ["q"] = 10 });
        Assert.Equal([new PoolOverbooking("p", 100, 101)], overbooked);

        var error = ReservationLedger.OverbookedError("activate contract 'x'", overbooked);
        Assert.Equal(ErrorKind.FailedPrecondition, error.Kind);
        Assert.Equal(ErrorReasons.ReservationsExceedCapacity, error.Reason);
        Assert.Contains("pool 'p' has capacity 100 but 101 units would be reserved", error.Message);
        Assert.Equal("100", error.Metadata["p.capacity_units"]);
        Assert.Equal("101", error.Metadata["p.reserved_units"]);
    }

    [Fact]
    public void VersionSchedule_BeforeFirstEffectiveTime_IsVersionOne()
    {
        var versions = new[] { (1, Feb), (2, Mar) };
        Assert.Equal(1, VersionSchedule.At(versions, v => v.Item1, v => v.Item2, Jan).Item1);
        Assert.Equal(2, VersionSchedule.At(versions, v => v.Item1, v => v.Item2, Mar).Item1);
    }
}
