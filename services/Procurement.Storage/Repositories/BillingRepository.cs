using Dapper;
using Procurement.Domain.Pricing;

namespace Procurement.Storage.Repositories;

/// <summary>One allocation's held interval, for a statement.</summary>
public sealed record BilledInterval(string PoolId, HeldInterval Interval);

/// <summary>The reads a statement and an SLA report are made of.</summary>
public sealed class BillingRepository(DbScope db)
{
    // Where an allocation's holding ends: when it ended; else its own end time if that has passed
    // (the sweeper has not got to it yet); else now.
    private const string HeldUntil =
        "COALESCE(ended_at_ms, CASE WHEN end_time_ms IS NOT NULL AND end_time_ms < @NowMs THEN end_time_ms ELSE @NowMs END)";

    private const string SelectContractIntervals = $"""
        SELECT pool_id AS PoolId, units AS Units, admitted_at_ms AS StartMs, {HeldUntil} AS EndMs
        FROM allocations
        WHERE contract_id = @ContractId AND admitted_at_ms IS NOT NULL AND admitted_at_ms < @ToMs
          AND {HeldUntil} > @FromMs
        """;

    // Σ units × held milliseconds clipped to [From, To), for every contract in the pool. An allocation
    // ended before it was admitted held nothing: two replicas can stamp an admission and the end that
    // follows it out of order (each takes its time before it waits for the pool).
    private const string SelectPoolAllocatedMs = $"""
        SELECT CAST(COALESCE(SUM(units * (
                 (CASE WHEN {HeldUntil} < @ToMs THEN {HeldUntil} ELSE @ToMs END)
               - (CASE WHEN admitted_at_ms > @FromMs THEN admitted_at_ms ELSE @FromMs END))), 0) AS BIGINT)
        FROM allocations
        WHERE pool_id = @PoolId AND admitted_at_ms IS NOT NULL AND admitted_at_ms < @ToMs
          AND {HeldUntil} > @FromMs AND {HeldUntil} > admitted_at_ms
        """;

    private const string SelectCapacityHistory = """
        SELECT effective_at_ms AS AtMs, capacity_units AS CapacityUnits
        FROM pool_capacity_changes WHERE pool_id = @PoolId ORDER BY effective_at_ms, seq
        """;

    // Busy seconds of the contract's samples in one pool whose window starts in [From, To): one range
    // of the covering index ix_usage_samples_contract_pool.
    private const string SelectBusySeconds = """
        SELECT CAST(COALESCE(SUM(busy_gpu_seconds), 0) AS BIGINT)
        FROM usage_samples
        WHERE contract_id = @ContractId AND pool_id = @PoolId AND window_start_ms >= @FromMs AND window_start_ms < @ToMs
        """;

    public async Task<IReadOnlyList<BilledInterval>> ContractIntervalsAsync(string contractId, DateTimeOffset from, DateTimeOffset to, DateTimeOffset now) =>
        (await db.Connection.QueryAsync<IntervalRow>(db.Command(SelectContractIntervals, new
        {
            ContractId = contractId, FromMs = UnixTime.ToMs(from), ToMs = UnixTime.ToMs(to), NowMs = UnixTime.ToMs(now),
        }))).Select(r => new BilledInterval(r.PoolId, new HeldInterval(UnixTime.FromMs(r.StartMs), UnixTime.FromMs(r.EndMs), r.Units))).ToList();

    /// <summary>∫ allocated units dt over [from, to) for all contracts, in unit-milliseconds.</summary>
    public Task<long> PoolAllocatedUnitMsAsync(string poolId, DateTimeOffset from, DateTimeOffset to, DateTimeOffset now) =>
        db.Connection.ExecuteScalarAsync<long>(db.Command(SelectPoolAllocatedMs, new
        {
            PoolId = poolId, FromMs = UnixTime.ToMs(from), ToMs = UnixTime.ToMs(to), NowMs = UnixTime.ToMs(now),
        }));

    public async Task<IReadOnlyList<CapacityPoint>> CapacityHistoryAsync(string poolId) =>
        (await db.Connection.QueryAsync<CapacityRow>(db.Command(SelectCapacityHistory, new { PoolId = poolId })))
            .Select(r => new CapacityPoint(UnixTime.FromMs(r.AtMs), r.CapacityUnits)).ToList();

    /// <summary>Busy GPU-seconds the contract's meters reported in one pool for windows starting in [from, to).</summary>
    public Task<long> BusySecondsAsync(string contractId, string poolId, DateTimeOffset from, DateTimeOffset to) =>
        db.Connection.ExecuteScalarAsync<long>(db.Command(SelectBusySeconds, new
        {
            ContractId = contractId, PoolId = poolId, FromMs = UnixTime.ToMs(from), ToMs = UnixTime.ToMs(to),
        }));

    private sealed class IntervalRow
    {
        public string PoolId { get; set; } = "";
        public long Units { get; set; }
        public long StartMs { get; set; }
        public long EndMs { get; set; }
    }

    private sealed class CapacityRow
    {
        public long AtMs { get; set; }
        public long CapacityUnits { get; set; }
    }
}
