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

    // Oldest first, a bounded number at a time: each deletion is one unit of work on the writer, so
    // forgetting a busy hour never holds the writer (or the savepoint journal of its group) for long.
    private const string DeleteOlderThan = """
        DELETE FROM idempotency_records
        WHERE (request_id, scope) IN (
            SELECT request_id, scope FROM idempotency_records
            WHERE created_at_ms < @CutoffMs
            ORDER BY created_at_ms
            LIMIT @Limit)
        """;

    public async Task<IdempotencyRecord?> FindAsync(string scope, string requestId)
    {
        using var statement = db.Statement(Select);
        return await statement.Bind("@Scope", scope).Bind("@RequestId", requestId).FirstOrDefaultAsync(r =>
            new IdempotencyRecord(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), (byte[])r.GetValue(4), UnixTime.FromMs(r.GetInt64(5))));
    }

    public async Task InsertAsync(IdempotencyRecord record)
    {
        using var statement = db.Statement(Insert);
        await statement.Bind("@Scope", record.Scope).Bind("@RequestId", record.RequestId).Bind("@Method", record.Method)
            .Bind("@RequestHash", record.RequestHash).Bind("@Response", record.Response).Bind("@CreatedAtMs", UnixTime.ToMs(record.CreatedAt))
            .ExecuteOneRowAsync(() => new ConcurrentWriteException("idempotency record", record.RequestId));
    }

    /// <summary>Forgets up to <paramref name="limit"/> records created before <paramref name="cutoff"/>, oldest first; returns how many.</summary>
    public Task<int> DeleteOlderThanAsync(DateTimeOffset cutoff, int limit) =>
        db.Connection.ExecuteAsync(db.Command(DeleteOlderThan, new { CutoffMs = UnixTime.ToMs(cutoff), Limit = limit }));
}
