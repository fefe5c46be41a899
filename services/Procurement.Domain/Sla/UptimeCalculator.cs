using Procurement.Domain.Contracts;
using Procurement.Domain.Pricing;

namespace Procurement.Domain.Sla;

/// <summary>
/// One pool as the SLA sees it: the contract's base reservation, the capacity history, the incidents,
/// and the contract's capacity blocks there (units over their windows), which add to the reservation.
/// </summary>
public sealed record SlaPool(string PoolId, long ReservedUnits, IReadOnlyList<CapacityPoint> Capacity, IReadOnlyList<Incident> Incidents)
{
    public IReadOnlyList<HeldInterval> Blocks { get; init; } = [];

    /// <summary>R_K(t): the base reservation plus the units of blocks whose window holds t.</summary>
    public long ReservedAt(DateTimeOffset t) => ReservedUnits + Blocks.Where(b => b.Start <= t && t < b.End).Sum(b => b.Units);
}

/// <summary>One incident's part in the month: the downtime minutes it caused, or why it caused none.</summary>
public sealed record IncidentContribution(Incident Incident, bool Counted, decimal DowntimeMinutes, string Explanation);

public sealed record UptimeResult(
    decimal ReservedMinutes,
    decimal DowntimeMinutes,
    decimal UptimePercent,
    decimal TargetPercent,
    bool TargetMet,
    SlaCreditRow? CreditRow,
    decimal ErrorBudgetMinutes,
    decimal ErrorBudgetLeftMinutes,
    IReadOnlyList<IncidentContribution> Incidents);

/// <summary>
/// Monthly uptime = 100 × (1 − D / T): T = reserved GPU-minutes in the period; D = Σ pools ∫ min(1,
/// affected(t) ÷ capacity(t)) × R dt, counting OUTAGE incidents and MAINTENANCE announced less than
/// the notice period before it started. T = 0 means 100%.
/// </summary>
public static class UptimeCalculator
{
    private const decimal TicksPerMinute = TimeSpan.TicksPerMinute;

    public static UptimeResult Compute(SlaTerms sla, IReadOnlyList<SlaPool> pools, DateTimeOffset from, DateTimeOffset to)
    {
        var periodTicks = to > from ? (to - from).Ticks : 0;
        var reservedMinutes = pools.Sum(p => ((decimal)p.ReservedUnits * periodTicks) + (decimal)UsageIntegrals.GpuTicks(p.Blocks, from, to)) / TicksPerMinute;
        var contributions = new List<IncidentContribution>();
        decimal downtime = 0;
        foreach (var pool in pools)
        {
            var counted = new List<Incident>();
            foreach (var incident in pool.Incidents.OrderBy(i => i.Start).ThenBy(i => i.Id, StringComparer.Ordinal))
            {
                var why = Exclusion(incident, sla.MaintenanceNotice);
                if (why is null)
                {
                    counted.Add(incident);
                }
                else
                {
                    contributions.Add(new IncidentContribution(incident, false, 0m, why));
                }
            }

            var minutesByIncident = counted.ToDictionary(i => i.Id, _ => 0m, StringComparer.Ordinal);
            var reservesAnything = pool.ReservedUnits > 0 || pool.Blocks.Any(b => b.Units > 0 && b.Start < to && b.End > from);
            if (reservesAnything && periodTicks > 0)
            {
                downtime += Integrate(pool, counted, from, to, minutesByIncident);
            }

            contributions.AddRange(counted.Select(i => new IncidentContribution(i, true, minutesByIncident[i.Id],
                reservesAnything ? "counted" : "counted; the contract reserves nothing in this pool")));
        }

        var uptime = reservedMinutes == 0 ? 100m : 100m * (1m - (downtime / reservedMinutes));
        var budget = (1m - (sla.AvailabilityTargetPercent / 100m)) * reservedMinutes;
        return new UptimeResult(reservedMinutes, downtime, uptime, sla.AvailabilityTargetPercent, uptime >= sla.AvailabilityTargetPercent,
            StatementCalculator.CreditRow(sla, uptime), budget, budget - downtime, contributions);
    }

    /// <summary>Why an incident is not counted, or null when it is.</summary>
    public static string? Exclusion(Incident incident, TimeSpan notice) => incident.Kind switch
    {
        IncidentKind.Degraded => "DEGRADED incidents are reported but not counted as downtime",
        IncidentKind.Maintenance when incident.AnnouncedAt is { } announced && incident.Start - announced >= notice =>
            $"maintenance announced {incident.Start - announced:c} before it started, at least the notice period of {notice:c}",
        _ => null,
    };

    /// <summary>
    /// Downtime GPU-minutes of one pool: piecewise constant between incident edges, capacity changes
    /// and block boundaries. Each counted incident is credited its share (its affected units over all affected units) of each piece.
    /// </summary>
    private static decimal Integrate(SlaPool pool, List<Incident> counted, DateTimeOffset from, DateTimeOffset to, Dictionary<string, decimal> byIncident)
    {
        var edges = new SortedSet<DateTimeOffset> { from, to };
        foreach (var i in counted)
        {
            AddEdge(edges, i.Start, from, to);
            AddEdge(edges, i.End ?? to, from, to);
        }

        foreach (var c in pool.Capacity)
        {
            AddEdge(edges, c.At, from, to);
        }

        foreach (var b in pool.Blocks)
        {
            AddEdge(edges, b.Start, from, to);
            AddEdge(edges, b.End, from, to);
        }

        decimal total = 0;
        var points = edges.ToList();
        for (var k = 0; k + 1 < points.Count; k++)
        {
            var (a, b) = (points[k], points[k + 1]);
            var active = counted.Where(i => i.Start <= a && (i.End ?? DateTimeOffset.MaxValue) >= b).ToList();
            var affected = active.Sum(i => i.AffectedUnits);
            if (affected == 0)
            {
                continue;
            }

            var capacity = UsageIntegrals.CapacityAt(pool.Capacity, a);
            var fraction = capacity == 0 ? 1m : Math.Min(1m, (decimal)affected / capacity);
            var minutes = fraction * pool.ReservedAt(a) * (b - a).Ticks / TicksPerMinute;
            total += minutes;
            foreach (var i in active)
            {
                byIncident[i.Id] += minutes * i.AffectedUnits / affected;
            }
        }

        return total;
    }

    private static void AddEdge(SortedSet<DateTimeOffset> edges, DateTimeOffset t, DateTimeOffset from, DateTimeOffset to)
    {
        if (t > from && t < to)
        {
            edges.Add(t);
        }
    }
}
