using Dapper;
using Procurement.Domain.Pricing;

namespace Procurement.Storage.Repositories;

/// <summary>A contract's folded totals in one pool and month (unit-milliseconds; busy seconds).</summary>
public sealed record ContractPoolTotals(string PoolId, long GuaranteedUnitMs, long BurstUnitMs, long BusyGpuSeconds, long BlockUnitMs);

/// <summary>One month's folded split of a contract in a pool, to add to the totals.</summary>
public sealed record ContractTotalsDelta(string ContractId, long MonthStartMs, long GuaranteedUnitMs, long BurstUnitMs, long BlockUnitMs);

/// <summary>Busy GPU-seconds of stored samples of a contract in a pool whose windows start in a month.</summary>
public sealed record BusyDelta(string ContractId, string PoolId, long MonthStartMs, long BusyGpuSeconds);

/// <summary>
/// The per-month totals statements read (migration 0010): each pool's timeline folded up to its mark,
/// and the held intervals after a mark, found through the open allocations and those ended since.
/// </summary>
public sealed class UsageTotalsRepository(DbScope db)
{
    // An open allocation is held until now, or until its own end time if that has passed (the sweeper
    // has not got to it yet); as BillingRepository reads it.
    private const string OpenUntil = "CASE WHEN end_time_ms IS NOT NULL AND end_time_ms < @NowMs THEN end_time_ms ELSE @NowMs END";

    // The held intervals of a pool that overlap [From, To): the open ones (ix_allocations_pool_open)
    // and those that ended after From (ix_allocations_pool_ended); never the pool's whole history. The
    // unary plus keeps the planner off ix_allocations_pool_admitted, whose range "admitted before To"
    // is every allocation the pool ever had.
    internal const string SelectHeldSince = $"""
        SELECT contract_id AS ContractId, units AS Units, admitted_at_ms AS StartMs, {OpenUntil} AS EndMs
        FROM allocations
        WHERE pool_id = @PoolId AND state IN ('PENDING', 'ACTIVE') AND +admitted_at_ms IS NOT NULL AND +admitted_at_ms < @ToMs
          AND {OpenUntil} > @FromMs
        UNION ALL
        SELECT contract_id, units, admitted_at_ms, ended_at_ms
        FROM allocations
        WHERE pool_id = @PoolId AND ended_at_ms > @FromMs AND +admitted_at_ms IS NOT NULL AND +admitted_at_ms < @ToMs
        """;

    private const string SelectFirstAdmitted = "SELECT MIN(admitted_at_ms) FROM allocations WHERE pool_id = @PoolId";

    private const string SelectPoolIds = "SELECT id FROM pools ORDER BY id";

    private const string SelectMark = "SELECT folded_to_ms FROM pool_fold_marks WHERE pool_id = @PoolId";

    private const string SelectMarks = "SELECT pool_id AS PoolId, folded_to_ms AS FoldedToMs FROM pool_fold_marks";

    private const string UpsertMark = """
        INSERT INTO pool_fold_marks (pool_id, folded_to_ms) VALUES (@PoolId, @FoldedToMs)
        ON CONFLICT (pool_id) DO UPDATE SET folded_to_ms = excluded.folded_to_ms
        """;

    private const string AddSplit = """
        INSERT INTO usage_totals (contract_id, pool_id, month_start_ms, guaranteed_unit_ms, burst_unit_ms, block_unit_ms)
        VALUES (@ContractId, @PoolId, @MonthStartMs, @GuaranteedUnitMs, @BurstUnitMs, @BlockUnitMs)
        ON CONFLICT (contract_id, month_start_ms, pool_id) DO UPDATE
        SET guaranteed_unit_ms = usage_totals.guaranteed_unit_ms + excluded.guaranteed_unit_ms,
            burst_unit_ms = usage_totals.burst_unit_ms + excluded.burst_unit_ms,
            block_unit_ms = usage_totals.block_unit_ms + excluded.block_unit_ms
        """;

    private const string SetSplit = """
        INSERT INTO usage_totals (contract_id, pool_id, month_start_ms, guaranteed_unit_ms, burst_unit_ms, block_unit_ms)
        VALUES (@ContractId, @PoolId, @MonthStartMs, @GuaranteedUnitMs, @BurstUnitMs, @BlockUnitMs)
        ON CONFLICT (contract_id, month_start_ms, pool_id) DO UPDATE
        SET guaranteed_unit_ms = excluded.guaranteed_unit_ms, burst_unit_ms = excluded.burst_unit_ms, block_unit_ms = excluded.block_unit_ms
        """;

    private const string AddBusy = """
        INSERT INTO usage_totals (contract_id, pool_id, month_start_ms, busy_gpu_seconds)
        VALUES (@ContractId, @PoolId, @MonthStartMs, @BusyGpuSeconds)
        ON CONFLICT (contract_id, month_start_ms, pool_id) DO UPDATE
        SET busy_gpu_seconds = usage_totals.busy_gpu_seconds + excluded.busy_gpu_seconds
        """;

    private const string AddAllocated = """
        INSERT INTO pool_usage_totals (pool_id, month_start_ms, allocated_unit_ms)
        VALUES (@PoolId, @MonthStartMs, @AllocatedUnitMs)
        ON CONFLICT (pool_id, month_start_ms) DO UPDATE
        SET allocated_unit_ms = pool_usage_totals.allocated_unit_ms + excluded.allocated_unit_ms
        """;

    private const string SelectContractMonth = """
        SELECT pool_id AS PoolId, guaranteed_unit_ms AS GuaranteedUnitMs, burst_unit_ms AS BurstUnitMs, busy_gpu_seconds AS BusyGpuSeconds,
               block_unit_ms AS BlockUnitMs
        FROM usage_totals WHERE contract_id = @ContractId AND month_start_ms = @MonthStartMs
        """;

    private const string SelectPoolMonth = "SELECT allocated_unit_ms FROM pool_usage_totals WHERE pool_id = @PoolId AND month_start_ms = @MonthStartMs";

    public Task<IEnumerable<string>> PoolIdsAsync() => db.Connection.QueryAsync<string>(db.Command(SelectPoolIds));

    /// <summary>Where the pool's timeline is folded to; null before its first fold.</summary>
    public Task<long?> FoldMarkAsync(string poolId) => db.Connection.ExecuteScalarAsync<long?>(db.Command(SelectMark, new { PoolId = poolId }));

    /// <summary>Every pool's fold mark.</summary>
    public async Task<IReadOnlyDictionary<string, long>> FoldMarksAsync() =>
        (await db.Connection.QueryAsync<(string PoolId, long FoldedToMs)>(db.Command(SelectMarks))).ToDictionary(r => r.PoolId, r => r.FoldedToMs, StringComparer.Ordinal);

    /// <summary>When the pool's first allocation was admitted; null if none was.</summary>
    public Task<long?> FirstAdmittedAsync(string poolId) => db.Connection.ExecuteScalarAsync<long?>(db.Command(SelectFirstAdmitted, new { PoolId = poolId }));

    /// <summary>The held intervals of the pool overlapping [fromMs, toMs) (not clipped), by contract.</summary>
    public async Task<IReadOnlyList<ContractHeld>> HeldSinceAsync(string poolId, long fromMs, long toMs, long nowMs) =>
        (await db.Connection.QueryAsync<(string ContractId, long Units, long StartMs, long EndMs)>(db.Command(SelectHeldSince, new
        {
            PoolId = poolId, FromMs = fromMs, ToMs = toMs, NowMs = nowMs,
        }))).Select(r => new ContractHeld(r.ContractId, new HeldInterval(UnixTime.FromMs(r.StartMs), UnixTime.FromMs(r.EndMs), r.Units))).ToList();

    /// <summary>Adds a folded stretch of the pool to the totals and moves its mark to <paramref name="foldedToMs"/>.</summary>
    public async Task AddFoldAsync(string poolId, IReadOnlyList<ContractTotalsDelta> splits, IReadOnlyList<(long MonthStartMs, long AllocatedUnitMs)> allocated, long foldedToMs)
    {
        foreach (var d in splits)
        {
            await db.Connection.ExecuteAsync(db.Command(AddSplit, new
            {
                d.ContractId, PoolId = poolId, d.MonthStartMs, d.GuaranteedUnitMs, d.BurstUnitMs, d.BlockUnitMs,
            }));
        }

        foreach (var (monthStartMs, allocatedUnitMs) in allocated)
        {
            await db.Connection.ExecuteAsync(db.Command(AddAllocated, new { PoolId = poolId, MonthStartMs = monthStartMs, AllocatedUnitMs = allocatedUnitMs }));
        }

        await db.Connection.ExecuteAsync(db.Command(UpsertMark, new { PoolId = poolId, FoldedToMs = foldedToMs }));
    }

    /// <summary>Replaces a contract's folded split of a month in one pool (its terms for the month changed).</summary>
    public Task SetSplitAsync(string poolId, ContractTotalsDelta split) =>
        db.Connection.ExecuteAsync(db.Command(SetSplit, new
        {
            split.ContractId, PoolId = poolId, split.MonthStartMs, split.GuaranteedUnitMs, split.BurstUnitMs, split.BlockUnitMs,
        }));

    /// <summary>Counts stored samples' busy seconds into their months (in the samples' own unit).</summary>
    public async Task AddBusyAsync(IReadOnlyList<BusyDelta> deltas)
    {
        if (deltas.Count == 0)
        {
            return;
        }

        using var statement = db.Statement(AddBusy);
        for (var i = 0; i < deltas.Count; i++)
        {
            var d = deltas[i];
            statement.Bind("@ContractId", d.ContractId).Bind("@PoolId", d.PoolId).Bind("@MonthStartMs", d.MonthStartMs).Bind("@BusyGpuSeconds", d.BusyGpuSeconds);
            if (i == 0)
            {
                await statement.PrepareAsync();
            }

            await statement.ExecuteAsync();
        }
    }

    /// <summary>The contract's folded totals of a month, per pool.</summary>
    public async Task<IReadOnlyList<ContractPoolTotals>> ContractMonthAsync(string contractId, long monthStartMs) =>
        (await db.Connection.QueryAsync<ContractPoolTotals>(db.Command(SelectContractMonth, new { ContractId = contractId, MonthStartMs = monthStartMs }))).ToList();

    /// <summary>The pool's folded ∫ allocated units of a month, in unit-milliseconds.</summary>
    public Task<long> PoolMonthAsync(string poolId, long monthStartMs) =>
        db.Connection.ExecuteScalarAsync<long>(db.Command(SelectPoolMonth, new { PoolId = poolId, MonthStartMs = monthStartMs }));
}
