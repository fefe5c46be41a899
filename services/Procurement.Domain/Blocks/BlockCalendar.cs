using Procurement.Domain.Errors;

namespace Procurement.Domain.Blocks;

/// <summary>One term of <c>reserved(P, t)</c>: units over [From, Until). A block names itself; a contract's base reservation does not.</summary>
public sealed record Reservation(long Units, DateTimeOffset From, DateTimeOffset Until, string? BlockId = null);

/// <summary>The first instant a pool (or a contract's block entitlement) would be overbooked, and the blocks counted there.</summary>
public sealed record CalendarConflict(DateTimeOffset At, long ReservedUnits, long LimitUnits, IReadOnlyList<string> BlockIds);

/// <summary>What a search for offerings asks: the earliest whole-hour windows of <see cref="Duration"/> inside [EarliestStart, LatestEnd).</summary>
public sealed record OfferingSearch(long Units, TimeSpan Duration, DateTimeOffset EarliestStart, DateTimeOffset LatestEnd, int Limit);

/// <summary>
/// The pool's reservations as a function of time (docs/design.md, "Capacity blocks and the
/// calendar"). Pure: every question is answered from the reservations passed in, at the instants
/// where they change, so the cost grows with the number of reservations, not with the span.
/// </summary>
public static class BlockCalendar
{
    public static readonly TimeSpan MinimumLength = TimeSpan.FromHours(1);
    public static readonly TimeSpan MaximumLength = TimeSpan.FromDays(182);
    public static readonly TimeSpan BookingHorizon = TimeSpan.FromDays(365);

    /// <summary>
    /// The first instant in [<paramref name="from"/>, <paramref name="until"/>) at which the units
    /// reserved exceed <paramref name="limit"/>, or null when they fit throughout.
    /// </summary>
    public static CalendarConflict? FirstOverbooked(long limit, IReadOnlyCollection<Reservation> reservations, DateTimeOffset from, DateTimeOffset until)
    {
        foreach (var (at, units) in Steps(reservations, from))
        {
            if (at >= until)
            {
                break;
            }

            if (units > limit)
            {
                var blocks = reservations
                    .Where(r => r.BlockId is not null && r.Units > 0 && r.From <= at && at < r.Until)
                    .Select(r => r.BlockId!)
                    .Order(StringComparer.Ordinal)
                    .ToList();
                return new CalendarConflict(at, units, limit, blocks);
            }
        }

        return null;
    }

    /// <summary>
    /// The reserved units from <paramref name="from"/> on, as steps: each entry holds from its
    /// instant until the next entry's (the last one holds forever). The first entry is at <paramref name="from"/>.
    /// </summary>
    public static IReadOnlyList<(DateTimeOffset At, long Units)> Steps(IReadOnlyCollection<Reservation> reservations, DateTimeOffset from)
    {
        var changes = new List<(DateTimeOffset At, long Delta)>(reservations.Count * 2);
        foreach (var r in reservations)
        {
            if (r.Until <= from || r.Until <= r.From || r.Units == 0)
            {
                continue;
            }

            changes.Add((r.From > from ? r.From : from, r.Units));
            changes.Add((r.Until, -r.Units));
        }

        changes.Sort((a, b) => a.At.CompareTo(b.At));
        var steps = new List<(DateTimeOffset, long)> { (from, 0) };
        long level = 0;
        var i = 0;
        while (i < changes.Count)
        {
            var at = changes[i].At;
            while (i < changes.Count && changes[i].At == at)
            {
                level = checked(level + changes[i].Delta);
                i++;
            }

            if (at == from)
            {
                steps[0] = (from, level);
            }
            else if (steps[^1].Item2 != level)
            {
                steps.Add((at, level));
            }
        }

        return steps;
    }

    /// <summary>
    /// The earliest whole-hour starts <c>s</c> with [s, s + duration) inside the search's span, at or
    /// after <paramref name="notBefore"/> and ending by <paramref name="notAfter"/>, at which adding
    /// <see cref="OfferingSearch.Units"/> keeps every limit: each pair is a limit and the reservations
    /// counted against it (the pool's capacity and its calendar; the contract's block entitlement and
    /// its own blocks).
    /// </summary>
    public static IReadOnlyList<DateTimeOffset> FindStarts(
        OfferingSearch search,
        DateTimeOffset notBefore,
        DateTimeOffset notAfter,
        IReadOnlyList<(long Limit, IReadOnlyCollection<Reservation> Reservations)> limits)
    {
        var first = CeilToHour(search.EarliestStart > notBefore ? search.EarliestStart : notBefore);
        var lastEnd = search.LatestEnd < notAfter ? search.LatestEnd : notAfter;
        var starts = new List<DateTimeOffset>();
        if (search.Units <= 0 || search.Limit <= 0 || first + search.Duration > lastEnd)
        {
            return starts;
        }

        // Spans where the units would not fit, merged and in order: a window fits when it meets none.
        var blocked = new List<(DateTimeOffset From, DateTimeOffset Until)>();
        foreach (var (limit, reservations) in limits)
        {
            var steps = Steps(reservations, first);
            for (var k = 0; k < steps.Count; k++)
            {
                if (checked(steps[k].Units + search.Units) > limit)
                {
                    blocked.Add((steps[k].At, k + 1 < steps.Count ? steps[k + 1].At : DateTimeOffset.MaxValue));
                }
            }
        }

        blocked.Sort((a, b) => a.From.CompareTo(b.From));
        var s = first;
        var next = 0;
        while (starts.Count < search.Limit && s + search.Duration <= lastEnd)
        {
            while (next < blocked.Count && blocked[next].Until <= s)
            {
                next++;
            }

            // The first blocked span that ends after s starts inside the window: move past it.
            var clash = -1;
            for (var k = next; k < blocked.Count && blocked[k].From < s + search.Duration; k++)
            {
                if (blocked[k].Until > s)
                {
                    clash = k;
                    break;
                }
            }

            if (clash < 0)
            {
                starts.Add(s);
                s = s.AddHours(1);
            }
            else if (blocked[clash].Until == DateTimeOffset.MaxValue)
            {
                break;
            }
            else
            {
                s = CeilToHour(blocked[clash].Until);
            }
        }

        return starts;
    }

    /// <summary>The field errors of a block's window booked at <paramref name="now"/>: whole UTC hours, 1 hour to 182 days, starting in the future within 365 days.</summary>
    public static IReadOnlyList<FieldViolation> ValidateWindow(DateTimeOffset start, DateTimeOffset end, DateTimeOffset now)
    {
        var v = new List<FieldViolation>();
        if (!IsWholeHour(start))
        {
            v.Add(new("start_time", "must be on a whole UTC hour, e.g. 2027-01-10T00:00:00Z"));
        }
        else if (start <= now)
        {
            v.Add(new("start_time", "must be in the future"));
        }
        else if (start - now > BookingHorizon)
        {
            v.Add(new("start_time", "must be within 365 days from now"));
        }

        if (!IsWholeHour(end))
        {
            v.Add(new("end_time", "must be on a whole UTC hour"));
        }
        else if (end - start < MinimumLength || end - start > MaximumLength)
        {
            v.Add(new("end_time", "must be 1 hour to 182 days after start_time"));
        }

        return v;
    }

    public static bool IsWholeHour(DateTimeOffset t) => t.Offset == TimeSpan.Zero && t.UtcTicks % TimeSpan.TicksPerHour == 0;

    public static DateTimeOffset CeilToHour(DateTimeOffset t)
    {
        var ticks = t.UtcTicks;
        var rem = ticks % TimeSpan.TicksPerHour;
        return new DateTimeOffset(rem == 0 ? ticks : ticks - rem + TimeSpan.TicksPerHour, TimeSpan.Zero);
    }
}
