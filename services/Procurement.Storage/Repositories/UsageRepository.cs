using Dapper;

namespace Procurement.Storage.Repositories;

/// <summary>A meter's report of how busy an allocation's GPUs were in a window.</summary>
public sealed record UsageSample(
    string Source,
    string SampleId,
    string AllocationId,
    string ContractId,
    string PoolId,
    DateTimeOffset WindowStart,
    DateTimeOffset WindowEnd,
    long BusyGpuSeconds,
    DateTimeOffset ReceivedAt);

public sealed class UsageRepository(DbScope db)
{
    private const string Select = """
        SELECT source AS Source, sample_id AS SampleId, allocation_id AS AllocationId, contract_id AS ContractId, pool_id AS PoolId,
               window_start_ms AS WindowStartMs,
               window_end_ms AS WindowEndMs, busy_gpu_seconds AS BusyGpuSeconds, received_at_ms AS ReceivedAtMs
        FROM usage_samples WHERE source = @Source AND sample_id = @SampleId
        """;

    public async Task<UsageSample?> FindAsync(string source, string sampleId)
    {
        var r = await db.Connection.QuerySingleOrDefaultAsync<Row>(db.Command(Select, new { Source = source, SampleId = sampleId }));
        return r is null ? null : new UsageSample(r.Source, r.SampleId, r.AllocationId, r.ContractId, r.PoolId, UnixTime.FromMs(r.WindowStartMs),
            UnixTime.FromMs(r.WindowEndMs), r.BusyGpuSeconds, UnixTime.FromMs(r.ReceivedAtMs));
    }

    // Portable upsert-or-skip: a sample already stored under (source, sample_id) is left as it is.
    private const string InsertIfAbsent = """
        INSERT INTO usage_samples (source, sample_id, allocation_id, contract_id, pool_id, window_start_ms, window_end_ms, busy_gpu_seconds, received_at_ms)
        VALUES (@Source, @SampleId, @AllocationId, @ContractId, @PoolId, @WindowStartMs, @WindowEndMs, @BusyGpuSeconds, @ReceivedAtMs)
        ON CONFLICT (source, sample_id) DO NOTHING
        """;

    /// <summary>
    /// Inserts many samples with one prepared command (the ingestion hot path); returns, per sample,
    /// whether it was stored (false: one with its source and id already was).
    /// </summary>
    public async Task<bool[]> InsertManyAsync(IReadOnlyList<UsageSample> samples)
    {
        var stored = new bool[samples.Count];
        if (samples.Count == 0)
        {
            return stored;
        }

        if (db.Dialect is PostgresDialect)
        {
            return await InsertManyAsArraysAsync(samples);
        }

        // On SQLite's writer the statement stays prepared across batches and runs through SQLite's C API.
        using var statement = db.Statement(InsertIfAbsent);
        for (var i = 0; i < samples.Count; i++)
        {
            var s = samples[i];
            statement.Bind("@Source", s.Source).Bind("@SampleId", s.SampleId).Bind("@AllocationId", s.AllocationId)
                .Bind("@ContractId", s.ContractId).Bind("@PoolId", s.PoolId).Bind("@WindowStartMs", UnixTime.ToMs(s.WindowStart))
                .Bind("@WindowEndMs", UnixTime.ToMs(s.WindowEnd)).Bind("@BusyGpuSeconds", s.BusyGpuSeconds).Bind("@ReceivedAtMs", UnixTime.ToMs(s.ReceivedAt));
            if (i == 0)
            {
                // Prepared once the parameters carry values: Npgsql takes their types from them.
                await statement.PrepareAsync();
            }

            stored[i] = await statement.ExecuteAsync() == 1;
        }

        return stored;
    }

    // PostgreSQL takes the whole batch as one array per column, in one round trip; rows go in in the
    // batch's order, so of two with one key the first is stored, as one statement per row would.
    private const string PostgresInsertArraysIfAbsent = """
        INSERT INTO usage_samples (source, sample_id, allocation_id, contract_id, pool_id, window_start_ms, window_end_ms, busy_gpu_seconds, received_at_ms)
        SELECT source, sample_id, allocation_id, contract_id, pool_id, window_start_ms, window_end_ms, busy_gpu_seconds, received_at_ms
        FROM unnest(@Sources, @SampleIds, @AllocationIds, @ContractIds, @PoolIds, @WindowStartMs, @WindowEndMs, @BusyGpuSeconds, @ReceivedAtMs)
             WITH ORDINALITY AS u (source, sample_id, allocation_id, contract_id, pool_id, window_start_ms, window_end_ms, busy_gpu_seconds, received_at_ms, n)
        ORDER BY n
        ON CONFLICT (source, sample_id) DO NOTHING
        RETURNING source, sample_id
        """;

    private async Task<bool[]> InsertManyAsArraysAsync(IReadOnlyList<UsageSample> samples)
    {
        var inserted = (await db.Connection.QueryAsync<(string Source, string SampleId)>(db.Command(PostgresInsertArraysIfAbsent, new
        {
            Sources = samples.Select(s => s.Source).ToArray(),
            SampleIds = samples.Select(s => s.SampleId).ToArray(),
            AllocationIds = samples.Select(s => s.AllocationId).ToArray(),
            ContractIds = samples.Select(s => s.ContractId).ToArray(),
            PoolIds = samples.Select(s => s.PoolId).ToArray(),
            WindowStartMs = samples.Select(s => UnixTime.ToMs(s.WindowStart)).ToArray(),
            WindowEndMs = samples.Select(s => UnixTime.ToMs(s.WindowEnd)).ToArray(),
            BusyGpuSeconds = samples.Select(s => s.BusyGpuSeconds).ToArray(),
            ReceivedAtMs = samples.Select(s => UnixTime.ToMs(s.ReceivedAt)).ToArray(),
        }))).ToHashSet();
        var stored = new bool[samples.Count];
        for (var i = 0; i < samples.Count; i++)
        {
            // The first of the batch's samples with a key that was inserted is the one stored.
            stored[i] = inserted.Remove((samples[i].Source, samples[i].SampleId));
        }

        return stored;
    }

    private sealed class Row
    {
        public string Source { get; set; } = "";
        public string SampleId { get; set; } = "";
        public string AllocationId { get; set; } = "";
        public string ContractId { get; set; } = "";
        public string PoolId { get; set; } = "";
        public long WindowStartMs { get; set; }
        public long WindowEndMs { get; set; }
        public long BusyGpuSeconds { get; set; }
        public long ReceivedAtMs { get; set; }
    }
}
