using Dapper;

namespace Procurement.Storage.Repositories;

/// <summary>A meter's report of how busy an allocation's GPUs were in a window.</summary>
public sealed record UsageSample(
    string Source,
    string SampleId,
    string AllocationId,
    DateTimeOffset WindowStart,
    DateTimeOffset WindowEnd,
    long BusyGpuSeconds,
    DateTimeOffset ReceivedAt);

public sealed class UsageRepository(DbScope db)
{
    private const string Select = """
        SELECT source AS Source, sample_id AS SampleId, allocation_id AS AllocationId, window_start_ms AS WindowStartMs,
               window_end_ms AS WindowEndMs, busy_gpu_seconds AS BusyGpuSeconds, received_at_ms AS ReceivedAtMs
        FROM usage_samples WHERE source = @Source AND sample_id = @SampleId
        """;

    private const string Insert = """
        INSERT INTO usage_samples (source, sample_id, allocation_id, window_start_ms, window_end_ms, busy_gpu_seconds, received_at_ms)
        VALUES (@Source, @SampleId, @AllocationId, @WindowStartMs, @WindowEndMs, @BusyGpuSeconds, @ReceivedAtMs)
        """;

    private const string Count = "SELECT COUNT(*) FROM usage_samples WHERE allocation_id = @AllocationId";

    public async Task<UsageSample?> FindAsync(string source, string sampleId)
    {
        var r = await db.Connection.QuerySingleOrDefaultAsync<Row>(db.Command(Select, new { Source = source, SampleId = sampleId }));
        return r is null ? null : new UsageSample(r.Source, r.SampleId, r.AllocationId, UnixTime.FromMs(r.WindowStartMs),
            UnixTime.FromMs(r.WindowEndMs), r.BusyGpuSeconds, UnixTime.FromMs(r.ReceivedAtMs));
    }

    public Task InsertAsync(UsageSample s) =>
        db.Connection.ExecuteAsync(db.Command(Insert, new
        {
            s.Source, s.SampleId, s.AllocationId, WindowStartMs = UnixTime.ToMs(s.WindowStart), WindowEndMs = UnixTime.ToMs(s.WindowEnd),
            s.BusyGpuSeconds, ReceivedAtMs = UnixTime.ToMs(s.ReceivedAt),
        }));

    public Task<long> CountForAllocationAsync(string allocationId) =>
        db.Connection.ExecuteScalarAsync<long>(db.Command(Count, new { AllocationId = allocationId }));

    private sealed class Row
    {
        public string Source { get; set; } = "";
        public string SampleId { get; set; } = "";
        public string AllocationId { get; set; } = "";
        public long WindowStartMs { get; set; }
        public long WindowEndMs { get; set; }
        public long BusyGpuSeconds { get; set; }
        public long ReceivedAtMs { get; set; }
    }
}
