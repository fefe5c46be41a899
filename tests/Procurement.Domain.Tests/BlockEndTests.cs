using Procurement.Domain.Allocations;
using Procurement.Domain.Blocks;

namespace Procurement.Domain.Tests;

public class BlockEndTests
{
    private static readonly DateTimeOffset T0 = new(2027, 1, 10, 0, 0, 0, TimeSpan.Zero);

    private static HeldAllocation A(long seq, long units, int admittedHour) => new(seq, $"alc_{seq}", "k", units, T0.AddHours(admittedHour));

    [Fact]
    public void Victims_NoExcess_TakesNothing() => Assert.Empty(BlockEnd.Victims([A(1, 4, 0)], 0));

    [Fact]
    public void Victims_TakeTheMostRecentlyAdmittedFirst_ThenWalkBackToAMinimalSet()
    {
        // Excess 4: the latest (2 units) and then the 4-unit one are chosen; walking back, the 2-unit one is not needed.
        var victims = BlockEnd.Victims([A(1, 4, 0), A(2, 4, 6), A(3, 2, 12)], 4);
        Assert.Equal(["alc_2"], victims.Select(v => v.AllocationId));
    }

    [Fact]
    public void Victims_SameAdmissionTime_TakeTheHigherSeqFirst()
    {
        var victims = BlockEnd.Victims([A(1, 3, 5), A(2, 3, 5)], 1);
        Assert.Equal(["alc_2"], victims.Select(v => v.AllocationId));
    }

    [Fact]
    public void Victims_CoverTheExcessEvenWhenEveryAllocationIsNeeded()
    {
        var victims = BlockEnd.Victims([A(1, 2, 0), A(2, 2, 1), A(3, 2, 2)], 5);
        Assert.Equal(["alc_3", "alc_2", "alc_1"], victims.Select(v => v.AllocationId));
    }
}
