using Procurement.Domain.Contracts;
using Procurement.Domain.Errors;

namespace Procurement.Domain.Pools;

/// <summary>One pool entitlement of one terms version, as storage returns them.</summary>
public sealed record EntitlementRow(string ContractId, int Version, DateTimeOffset EffectiveFrom, string PoolId, long ReservedUnits);

/// <summary>A pool whose reservations would exceed its capacity.</summary>
public sealed record PoolOverbooking(string PoolId, long CapacityUnits, long ReservedUnits);

/// <summary>
/// Invariant I2: the reservations of ACTIVE and SUSPENDED contracts in a pool fit its capacity.
/// A contract counts, per pool, the largest reservation of any of its versions that applies now or
/// later, so that an amendment taking effect next month cannot overbook a pool when it starts.
/// </summary>
public static class ReservationLedger
{
    /// <summary>Reserved units per pool, from the entitlement rows of every contract that counts.</summary>
    public static Dictionary<string, long> ReservedByPool(IEnumerable<EntitlementRow> rows, DateTimeOffset now)
    {
        var result = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var contract in rows.GroupBy(r => r.ContractId))
        {
            var versions = contract
                .GroupBy(r => (r.Version, r.EffectiveFrom))
                .Select(g => (g.Key.Version, g.Key.EffectiveFrom, Rows: g.ToList()))
                .ToList();
            var applicable = VersionSchedule.ApplicableFrom(versions, v => v.Version, v => v.EffectiveFrom, now).ToList();
            foreach (var pool in applicable.SelectMany(v => v.Rows).GroupBy(r => r.PoolId))
            {
                result[pool.Key] = checked(result.GetValueOrDefault(pool.Key) + pool.Max(r => r.ReservedUnits));
            }
        }

        return result;
    }

    public static IReadOnlyList<PoolOverbooking> FindOverbooked(
        IReadOnlyDictionary<string, long> capacityByPool,
        IReadOnlyDictionary<string, long> reservedByPool) =>
        reservedByPool
            .Where(r => r.Value > capacityByPool.GetValueOrDefault(r.Key))
            .OrderBy(r => r.Key, StringComparer.Ordinal)
            .Select(r => new PoolOverbooking(r.Key, capacityByPool.GetValueOrDefault(r.Key), r.Value))
            .ToList();

    /// <summary>FAILED_PRECONDITION naming each pool with its capacity and the units that would be reserved.</summary>
    public static ProcurementException OverbookedError(string action, IReadOnlyList<PoolOverbooking> pools)
    {
        var descriptions = pools.Select(p => $"pool '{p.PoolId}' has capacity {p.CapacityUnits} but {p.ReservedUnits} units would be reserved").ToList();
        var metadata = new Dictionary<string, string>();
        foreach (var p in pools)
        {
            metadata[$"{p.PoolId}.capacity_units"] = p.CapacityUnits.ToString(System.Globalization.CultureInfo.InvariantCulture);
            metadata[$"{p.PoolId}.reserved_units"] = p.ReservedUnits.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return new ProcurementException(
            ErrorKind.FailedPrecondition,
            ErrorReasons.ReservationsExceedCapacity,
            $"Cannot {action}: " + string.Join("; ", descriptions) + ".",
            preconditionViolations: pools.Select((p, i) => new PreconditionViolation("RESERVATIONS_EXCEED_CAPACITY", $"pools/{p.PoolId}", descriptions[i])).ToList(),
            metadata: metadata);
    }
}
