using Procurement.Domain.Blocks;

namespace Procurement.Domain.Tests;

public class BlockCalendarTests
{
    private static readonly DateTimeOffset T0 = new(2027, 1, 10, 0, 0, 0, TimeSpan.Zero);

    private static DateTimeOffset H(int hours) => T0.AddHours(hours);

    [Fact]
    public void FirstOverbooked_NamesTheFirstInstantAndTheBlocksThere()
    {
        var reservations = new[]
        {
            new Reservation(60, DateTimeOffset.MinValue, DateTimeOffset.MaxValue),
            new Reservation(20, H(5), H(10), "blk_1"),
            new Reservation(30, H(8), H(12), "blk_2"),
        };

        Assert.Null(BlockCalendar.FirstOverbooked(110, reservations, T0, DateTimeOffset.MaxValue));
        var conflict = BlockCalendar.FirstOverbooked(100, reservations, T0, DateTimeOffset.MaxValue);
        Assert.NotNull(conflict);
        Assert.Equal(H(8), conflict.At);
        Assert.Equal(110, conflict.ReservedUnits);
        Assert.Equal(["blk_1", "blk_2"], conflict.BlockIds);
    }

    [Fact]
    public void FirstOverbooked_CountsAWindowAsHalfOpen()
    {
        // One block ends at the instant the next starts: they never overlap.
        var reservations = new[] { new Reservation(60, H(0), H(4), "blk_1"), new Reservation(60, H(4), H(8), "blk_2") };
        Assert.Null(BlockCalendar.FirstOverbooked(60, reservations, T0, DateTimeOffset.MaxValue));
    }

    [Fact]
    public void FirstOverbooked_LooksOnlyInsideTheSpanAsked()
    {
        var reservations = new[] { new Reservation(80, H(0), H(4), "blk_1"), new Reservation(80, H(2), H(6), "blk_2") };
        Assert.Null(BlockCalendar.FirstOverbooked(100, reservations, H(4), H(10)));
        Assert.Equal(H(2), BlockCalendar.FirstOverbooked(100, reservations, T0, H(10))!.At);
    }

    [Fact]
    public void FindStarts_SkipsPastWindowsThatWouldNotFit()
    {
        // Capacity 100, 70 reserved from hour 3 to hour 6: 40 units for 2 hours fit at 0..1 and from 6 on.
        var pool = new[] { new Reservation(70, H(3), H(6), "blk_1") };
        var starts = BlockCalendar.FindStarts(new OfferingSearch(40, TimeSpan.FromHours(2), T0, H(12), 4), T0, DateTimeOffset.MaxValue, [(100, pool)]);
        Assert.Equal([H(0), H(1), H(6), H(7)], starts);
    }

    [Fact]
    public void FindStarts_KeepsTheContractsBlockEntitlement()
    {
        // The pool has room, but the contract may hold at most 50 block units and holds 30 in hours 0..4.
        var own = new[] { new Reservation(30, H(0), H(4), "blk_1") };
        var starts = BlockCalendar.FindStarts(new OfferingSearch(30, TimeSpan.FromHours(1), T0, H(8), 2), T0, DateTimeOffset.MaxValue, [(1000, []), (50, own)]);
        Assert.Equal([H(4), H(5)], starts);
    }

    [Fact]
    public void FindStarts_StartsOnTheNextWholeHourAndEndsByTheLatestEnd()
    {
        var starts = BlockCalendar.FindStarts(new OfferingSearch(1, TimeSpan.FromHours(2), T0.AddMinutes(1), H(5), 10), T0, DateTimeOffset.MaxValue, [(10, [])]);
        Assert.Equal([H(1), H(2), H(3)], starts);
    }

    [Fact]
    public void ValidateWindow_RequiresWholeHoursInTheFutureWithinTheLimits()
    {
        var now = T0.AddMinutes(30);
        Assert.Empty(BlockCalendar.ValidateWindow(H(1), H(2), now));
        Assert.Contains(BlockCalendar.ValidateWindow(T0, H(1), now), f => f.Field == "start_time");
        Assert.Contains(BlockCalendar.ValidateWindow(H(1).AddMinutes(1), H(2), now), f => f.Field == "start_time");
        Assert.Contains(BlockCalendar.ValidateWindow(H(1), H(1), now), f => f.Field == "end_time");
        Assert.Contains(BlockCalendar.ValidateWindow(H(1), H(1).AddDays(182).AddHours(1), now), f => f.Field == "end_time");
        Assert.Empty(BlockCalendar.ValidateWindow(H(1), H(1).AddDays(182), now));
        Assert.Contains(BlockCalendar.ValidateWindow(H(24 * 366), H(24 * 367), now), f => f.Field == "start_time");
    }

    /// <summary>The calendar's answers against a brute-force walk over every hour of random calendars.</summary>
    [Fact]
    public void Model_AgreesWithBruteForceOverRandomCalendars()
    {
        var random = new Random(20270110);
        for (var round = 0; round < 300; round++)
        {
            var capacity = random.Next(0, 120);
            var reservations = new List<Reservation>();
            if (random.Next(3) > 0)
            {
                reservations.Add(new Reservation(random.Next(0, 40), DateTimeOffset.MinValue, random.Next(2) == 0 ? DateTimeOffset.MaxValue : H(random.Next(1, 60))));
            }

            for (var b = random.Next(0, 12); b > 0; b--)
            {
                var start = random.Next(0, 60);
                reservations.Add(new Reservation(random.Next(1, 50), H(start), H(start + random.Next(1, 20)), $"blk_{b}"));
            }

            var conflict = BlockCalendar.FirstOverbooked(capacity, reservations, T0, H(100));
            var brute = Enumerable.Range(0, 100).Select(H).FirstOrDefault(t => ReservedAt(reservations, t) > capacity, DateTimeOffset.MinValue);
            Assert.Equal(brute == DateTimeOffset.MinValue ? null : brute, conflict?.At);
            if (conflict is not null)
            {
                Assert.Equal(ReservedAt(reservations, conflict.At), conflict.ReservedUnits);
            }

            var units = random.Next(1, 60);
            var hours = random.Next(1, 12);
            var entitlement = random.Next(0, 80);
            var own = reservations.Where(r => r.BlockId is not null && random.Next(2) == 0).ToList();
            var search = new OfferingSearch(units, TimeSpan.FromHours(hours), H(random.Next(0, 10)), H(random.Next(10, 90)), random.Next(1, 30));
            var found = BlockCalendar.FindStarts(search, T0, DateTimeOffset.MaxValue, [(capacity, reservations), (entitlement, own)]);
            var expected = Enumerable.Range(0, 100).Select(H)
                .Where(s => s >= search.EarliestStart && s + search.Duration <= search.LatestEnd)
                .Where(s => Enumerable.Range(0, hours).Select(k => s.AddHours(k)).All(t =>
                    ReservedAt(reservations, t) + units <= capacity && ReservedAt(own, t) + units <= entitlement))
                .Take(search.Limit)
                .ToList();
            Assert.Equal(expected, found);
        }
    }

    // Every boundary in these calendars is a whole hour, so checking each hour checks every instant.
    private static long ReservedAt(IEnumerable<Reservation> reservations, DateTimeOffset t) =>
        reservations.Where(r => r.From <= t && t < r.Until).Sum(r => r.Units);
}
