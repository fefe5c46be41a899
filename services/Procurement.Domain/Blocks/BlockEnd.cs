using Procurement.Domain.Allocations;

namespace Procurement.Domain.Blocks;

/// <summary>What a block's end takes back (docs/design.md, "Capacity blocks and the calendar").</summary>
public static class BlockEnd
{
    /// <summary>
    /// The contract's allocations to end when its block ends and it holds <paramref name="excess"/>
    /// units more than its new reservation plus burst limit: most recently admitted first (then higher
    /// seq) until the excess is covered, then walked back from the last chosen to the first, putting
    /// back each one not needed to cover it (a minimal set).
    /// </summary>
    public static IReadOnlyList<HeldAllocation> Victims(IEnumerable<HeldAllocation> held, long excess)
    {
        if (excess <= 0)
        {
            return [];
        }

        var chosen = new List<HeldAllocation>();
        long freed = 0;
        foreach (var a in held.OrderByDescending(a => a.AdmittedAt).ThenByDescending(a => a.Seq))
        {
            if (freed >= excess)
            {
                break;
            }

            chosen.Add(a);
            freed += a.Units;
        }

        for (var i = chosen.Count - 1; i >= 0; i--)
        {
            if (freed - chosen[i].Units >= excess)
            {
                freed -= chosen[i].Units;
                chosen.RemoveAt(i);
            }
        }

        return chosen;
    }
}
