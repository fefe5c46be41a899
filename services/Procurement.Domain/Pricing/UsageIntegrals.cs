namespace Procurement.Domain.Pricing;

/// <summary>Units held over [Start, End).</summary>
public readonly record struct HeldInterval(DateTimeOffset Start, DateTimeOffset End, long Units);

/// <summary>A pool's capacity from <see cref="At"/> until the next change.</summary>
public readonly record struct CapacityPoint(DateTimeOffset At, long CapacityUnits);

/// <summary>Integrals over time, in GPU-hours, exact to the millisecond.</summary>
public static class UsageIntegrals
{
    private const decimal TicksPerHour = TimeSpan.TicksPerHour;

    /// <summary>Σ units × hours of the intervals clipped to [from, to).</summary>
    public static decimal GpuHours(IEnumerable<HeldInterval> intervals, DateTimeOffset from, DateTimeOffset to) => Hours(GpuTicks(intervals, from, to));

    /// <summary>Σ units × ticks of the intervals clipped to [from, to), exact.</summary>
    public static Int128 GpuTicks(IEnumerable<HeldInterval> intervals, DateTimeOffset from, DateTimeOffset to)
    {
        Int128 ticks = 0;
        foreach (var i in intervals)
        {
            var s = i.Start > from ? i.Start : from;
            var e = i.End < to ? i.End : to;
            if (e > s)
            {
                ticks += (Int128)i.Units * (e - s).Ticks;
            }
        }

        return ticks;
    }

    /// <summary>
    /// One contract's GPU-hours in one pool split at each instant: guaranteed = min(U(t), R), burst = the rest.
    /// </summary>
    public static (decimal Guaranteed, decimal Burst) Split(IEnumerable<HeldInterval> intervals, long reserved, DateTimeOffset from, DateTimeOffset to)
    {
        var (guaranteed, burst) = SplitTicks(intervals, reserved, from, to);
        return (Hours(guaranteed), Hours(burst));
    }

    /// <summary><see cref="Split"/> in unit-ticks, exact: parts of a period computed apart add up to the whole.</summary>
    public static (Int128 Guaranteed, Int128 Burst) SplitTicks(IEnumerable<HeldInterval> intervals, long reserved, DateTimeOffset from, DateTimeOffset to)
    {
        var (guaranteed, _, burst) = SplitTicks(intervals, reserved, [], from, to);
        return (guaranteed, burst);
    }

    /// <summary>
    /// The three-way split of docs/design.md, in unit-ticks: with <c>X(t)</c> the units of the
    /// contract's capacity blocks in effect, guaranteed = min(U, R0), block = min(max(0, U − R0), X),
    /// burst = the rest.
    /// </summary>
    public static (Int128 Guaranteed, Int128 Block, Int128 Burst) SplitTicks(
        IEnumerable<HeldInterval> intervals, long reserved, IReadOnlyCollection<HeldInterval> blocks, DateTimeOffset from, DateTimeOffset to)
    {
        // Changes of the held and the block units as (UTC ticks, deltas), sorted by time; integer sums
        // are exact and Int128 cannot overflow (units × ticks of a whole term fits in 2^80).
        var changes = new List<(long At, long Held, long Block)>();
        foreach (var i in intervals)
        {
            Add(i, isBlock: false);
        }

        foreach (var b in blocks)
        {
            Add(b, isBlock: true);
        }

        changes.Sort((a, b) => a.At.CompareTo(b.At));
        Int128 guaranteed = 0, block = 0, burst = 0;
        long held = 0, x = 0;
        for (var k = 0; k < changes.Count; k++)
        {
            held += changes[k].Held;
            x += changes[k].Block;
            if (k + 1 < changes.Count && changes[k + 1].At > changes[k].At)
            {
                long ticks = changes[k + 1].At - changes[k].At;
                var g = Math.Min(held, reserved);
                var inBlocks = Math.Min(Math.Max(0, held - reserved), x);
                guaranteed += (Int128)g * ticks;
                block += (Int128)inBlocks * ticks;
                burst += (Int128)(held - g - inBlocks) * ticks;
            }
        }

        return (guaranteed, block, burst);

        void Add(HeldInterval i, bool isBlock)
        {
            var s = i.Start > from ? i.Start : from;
            var e = i.End < to ? i.End : to;
            if (e > s)
            {
                changes.Add(isBlock ? (s.UtcTicks, 0, i.Units) : (s.UtcTicks, i.Units, 0));
                changes.Add(isBlock ? (e.UtcTicks, 0, -i.Units) : (e.UtcTicks, -i.Units, 0));
            }
        }
    }

    /// <summary>Unit-ticks as GPU-hours.</summary>
    public static decimal Hours(Int128 unitTicks) => (decimal)unitTicks / TicksPerHour;

    /// <summary>∫ capacity dt over [from, to), in GPU-hours, from the capacity history (ordered by time).</summary>
    public static decimal CapacityHours(IReadOnlyList<CapacityPoint> history, DateTimeOffset from, DateTimeOffset to)
    {
        decimal ticks = 0;
        for (var k = 0; k < history.Count; k++)
        {
            var s = history[k].At > from ? history[k].At : from;
            var end = k + 1 < history.Count ? history[k + 1].At : DateTimeOffset.MaxValue;
            var e = end < to ? end : to;
            if (e > s)
            {
                ticks += (decimal)history[k].CapacityUnits * (e - s).Ticks;
            }
        }

        return ticks / TicksPerHour;
    }

    /// <summary>The capacity in force at <paramref name="at"/> (0 before the first point).</summary>
    public static long CapacityAt(IReadOnlyList<CapacityPoint> history, DateTimeOffset at)
    {
        long capacity = 0;
        foreach (var p in history)
        {
            if (p.At > at)
            {
                break;
            }

            capacity = p.CapacityUnits;
        }

        return capacity;
    }
}
