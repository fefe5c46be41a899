using Dapper;
using Procurement.Domain.Sla;

namespace Procurement.Storage.Repositories;

public sealed record IncidentFilter(string? PoolId, DateTimeOffset? From, DateTimeOffset? To);

public sealed class IncidentRepository(DbScope db)
{
    private const string Columns =
        "seq AS Seq, id AS Id, pool_id AS PoolId, kind AS Kind, start_ms AS StartMs, end_ms AS EndMs, affected_units AS AffectedUnits, " +
        "announced_at_ms AS AnnouncedAtMs, created_at_ms AS CreatedAtMs, updated_at_ms AS UpdatedAtMs";

    private const string SelectById = $"SELECT {Columns} FROM incidents WHERE id = @Id";

    // Overlapping [From, To): started before To and not ended by From.
    private const string SelectPage = $"""
        SELECT {Columns} FROM incidents
        WHERE (start_ms > @AfterStartMs OR (start_ms = @AfterStartMs AND seq > @AfterSeq))
          AND (@PoolId IS NULL OR pool_id = @PoolId)
          AND (@ToMs IS NULL OR start_ms < @ToMs)
          AND (@FromMs IS NULL OR end_ms IS NULL OR end_ms > @FromMs)
        ORDER BY start_ms, seq
        LIMIT @Limit
        """;

    private const string SelectOverlapping = $"""
        SELECT {Columns} FROM incidents
        WHERE pool_id IN @PoolIds AND start_ms < @ToMs AND (end_ms IS NULL OR end_ms > @FromMs)
        ORDER BY start_ms, seq
        """;

    private const string Insert = """
        INSERT INTO incidents (seq, id, pool_id, kind, start_ms, end_ms, affected_units, announced_at_ms, created_at_ms, updated_at_ms)
        VALUES (@Seq, @Id, @PoolId, @Kind, @StartMs, @EndMs, @AffectedUnits, @AnnouncedAtMs, @CreatedAtMs, @UpdatedAtMs)
        """;

    private const string Resolve = "UPDATE incidents SET end_ms = @EndMs, updated_at_ms = @UpdatedAtMs WHERE id = @Id AND end_ms IS NULL";

    public Task<long> NextSeqAsync() => db.Connection.ExecuteScalarAsync<long>(db.Command(db.Dialect.NextIncidentSeq));

    public async Task<(long Seq, Incident Incident)?> GetAsync(string id)
    {
        var row = await db.Connection.QuerySingleOrDefaultAsync<Row>(db.Command(SelectById, new { Id = id }));
        return row is null ? null : (row.Seq, row.ToDomain());
    }

    public async Task<IReadOnlyList<(long Seq, Incident Incident)>> ListAsync(IncidentFilter filter, long afterStartMs, long afterSeq, int limit) =>
        (await db.Connection.QueryAsync<Row>(db.Command(SelectPage, new
        {
            AfterStartMs = afterStartMs, AfterSeq = afterSeq, filter.PoolId, FromMs = UnixTime.ToMs(filter.From), ToMs = UnixTime.ToMs(filter.To), Limit = limit,
        }))).Select(r => (r.Seq, r.ToDomain())).ToList();

    public async Task<IReadOnlyList<Incident>> OverlappingAsync(IReadOnlyCollection<string> poolIds, DateTimeOffset from, DateTimeOffset to) =>
        poolIds.Count == 0 ? [] :
        (await db.Connection.QueryAsync<Row>(db.Command(SelectOverlapping, new { PoolIds = poolIds.ToArray(), FromMs = UnixTime.ToMs(from), ToMs = UnixTime.ToMs(to) })))
            .Select(r => r.ToDomain()).ToList();

    public Task InsertAsync(long seq, Incident i) =>
        db.Connection.ExecuteAsync(db.Command(Insert, new
        {
            Seq = seq, i.Id, i.PoolId, Kind = EnumNames.ToUpperSnake(i.Kind), StartMs = UnixTime.ToMs(i.Start), EndMs = UnixTime.ToMs(i.End),
            i.AffectedUnits, AnnouncedAtMs = UnixTime.ToMs(i.AnnouncedAt), CreatedAtMs = UnixTime.ToMs(i.CreatedAt), UpdatedAtMs = UnixTime.ToMs(i.UpdatedAt),
        }));

    public async Task ResolveAsync(Incident resolved)
    {
        var changed = await db.Connection.ExecuteAsync(db.Command(Resolve, new { resolved.Id, EndMs = UnixTime.ToMs(resolved.End), UpdatedAtMs = UnixTime.ToMs(resolved.UpdatedAt) }));
        if (changed != 1)
        {
            throw new ConcurrentWriteException(Incident.ResourceType, resolved.Id);
        }
    }

    private sealed class Row
    {
        public long Seq { get; set; }
        public string Id { get; set; } = "";
        public string PoolId { get; set; } = "";
        public string Kind { get; set; } = "";
        public long StartMs { get; set; }
        public long? EndMs { get; set; }
        public long AffectedUnits { get; set; }
        public long? AnnouncedAtMs { get; set; }
        public long CreatedAtMs { get; set; }
        public long UpdatedAtMs { get; set; }

        public Incident ToDomain() => new(Id, PoolId, EnumNames.Parse<IncidentKind>(Kind), UnixTime.FromMs(StartMs), UnixTime.FromMs(EndMs),
            AffectedUnits, UnixTime.FromMs(AnnouncedAtMs), UnixTime.FromMs(CreatedAtMs), UnixTime.FromMs(UpdatedAtMs));
    }
}
