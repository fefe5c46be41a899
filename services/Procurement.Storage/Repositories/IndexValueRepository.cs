using Dapper;
using Procurement.Domain.Common;
using Procurement.Domain.Pricing;

namespace Procurement.Storage.Repositories;

public sealed record PublishedIndexValue(IndexValue Value, DateTimeOffset PublishedAt);

public sealed class IndexValueRepository(DbScope db)
{
    private const string Columns = "index_name AS IndexName, effective_at_ms AS EffectiveAtMs, value AS Value, published_at_ms AS PublishedAtMs";

    private const string SelectOne = $"SELECT {Columns} FROM index_values WHERE index_name = @IndexName AND effective_at_ms = @EffectiveAtMs";

    private const string SelectLatest = $"""
        SELECT {Columns} FROM index_values
        WHERE index_name = @IndexName AND effective_at_ms <= @AtMs
        ORDER BY effective_at_ms DESC
        LIMIT 1
        """;

    private const string SelectPage = $"""
        SELECT {Columns} FROM index_values
        WHERE index_name = @IndexName AND effective_at_ms > @AfterMs
        ORDER BY effective_at_ms
        LIMIT @Limit
        """;

    private const string Insert = """
        INSERT INTO index_values (index_name, effective_at_ms, value, published_at_ms)
        VALUES (@IndexName, @EffectiveAtMs, @Value, @PublishedAtMs)
        """;

    public async Task<PublishedIndexValue?> GetAsync(string indexName, DateTimeOffset effectiveAt) =>
        (await db.Connection.QuerySingleOrDefaultAsync<Row>(db.Command(SelectOne, new { IndexName = indexName, EffectiveAtMs = UnixTime.ToMs(effectiveAt) })))?.ToDomain();

    /// <summary>The latest value effective at or before <paramref name="at"/>.</summary>
    public async Task<PublishedIndexValue?> LatestAtAsync(string indexName, DateTimeOffset at) =>
        (await db.Connection.QuerySingleOrDefaultAsync<Row>(db.Command(SelectLatest, new { IndexName = indexName, AtMs = UnixTime.ToMs(at) })))?.ToDomain();

    public async Task<IReadOnlyList<PublishedIndexValue>> ListAsync(string indexName, long afterMs, int limit) =>
        (await db.Connection.QueryAsync<Row>(db.Command(SelectPage, new { IndexName = indexName, AfterMs = afterMs, Limit = limit }))).Select(r => r.ToDomain()).ToList();

    public Task InsertAsync(PublishedIndexValue v) =>
        db.Connection.ExecuteAsync(db.Command(Insert, new
        {
            v.Value.IndexName, EffectiveAtMs = UnixTime.ToMs(v.Value.EffectiveAt), Value = DecimalText.Format(v.Value.Value), PublishedAtMs = UnixTime.ToMs(v.PublishedAt),
        }));

    private sealed class Row
    {
        public string IndexName { get; set; } = "";
        public long EffectiveAtMs { get; set; }
        public string Value { get; set; } = "";
        public long PublishedAtMs { get; set; }

        public PublishedIndexValue ToDomain() => new(
            new IndexValue(IndexName, UnixTime.FromMs(EffectiveAtMs), DecimalText.TryParse(Value, out var v) ? v : throw new InvalidDataException($"Bad index value '{Value}'.")),
            UnixTime.FromMs(PublishedAtMs));
    }
}
