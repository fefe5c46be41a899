using Dapper;

namespace Procurement.Storage.Repositories;

/// <summary>The first response to a request id, with a hash of the request it answered.</summary>
public sealed record IdempotencyRecord(string Scope, string RequestId, string Method, string RequestHash, byte[] Response, DateTimeOffset CreatedAt);

public sealed class IdempotencyRepository(DbScope db)
{
    private const string Select = """
        SELECT scope AS Scope, request_id AS RequestId, method AS Method, request_hash AS RequestHash,
               response AS Response, created_at_ms AS CreatedAtMs
        FROM idempotency_records WHERE scope = @Scope AND request_id = @RequestId
        """;

    private const string Insert = """
        INSERT INTO idempotency_records (scope, request_id, method, request_hash, response, created_at_ms)
        VALUES (@Scope, @RequestId, @Method, @RequestHash, @Response, @CreatedAtMs)
        """;

    private const string DeleteOlderThan = "DELETE FROM idempotency_records WHERE created_at_ms < @CutoffMs";

    public async Task<IdempotencyRecord?> FindAsync(string scope, string requestId)
    {
        var row = await db.Connection.QuerySingleOrDefaultAsync<Row>(db.Command(Select, new { Scope = scope, RequestId = requestId }));
        return row is null ? null : new IdempotencyRecord(row.Scope, row.RequestId, row.Method, row.RequestHash, row.Response, UnixTime.FromMs(row.CreatedAtMs));
    }

    public Task InsertAsync(IdempotencyRecord record) =>
        db.Connection.ExecuteAsync(db.Command(Insert, new
        {
            record.Scope, record.RequestId, record.Method, record.RequestHash, record.Response,
            CreatedAtMs = UnixTime.ToMs(record.CreatedAt),
        }));

    /// <summary>Forgets records created before <paramref name="cutoff"/>; returns how many.</summary>
    public Task<int> DeleteOlderThanAsync(DateTimeOffset cutoff) =>
        db.Connection.ExecuteAsync(db.Command(DeleteOlderThan, new { CutoffMs = UnixTime.ToMs(cutoff) }));

    private sealed class Row
    {
        public string Scope { get; set; } = "";
        public string RequestId { get; set; } = "";
        public string Method { get; set; } = "";
        public string RequestHash { get; set; } = "";
        public byte[] Response { get; set; } = [];
        public long CreatedAtMs { get; set; }
    }
}
