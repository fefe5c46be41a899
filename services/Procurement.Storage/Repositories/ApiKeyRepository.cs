using Dapper;

namespace Procurement.Storage.Repositories;

/// <summary>A stored API key: never the key, only its SHA-256.</summary>
public sealed record ApiKeyRecord(string Id, string KeyHash, string Role, string? TenantId, string? Label, DateTimeOffset CreatedAt, DateTimeOffset? RevokedAt);

public sealed class ApiKeyRepository(DbScope db)
{
    private const string Columns =
        "id AS Id, key_hash AS KeyHash, role AS Role, tenant_id AS TenantId, label AS Label, created_at_ms AS CreatedAtMs, revoked_at_ms AS RevokedAtMs";

    private const string SelectByHash = $"SELECT {Columns} FROM api_keys WHERE key_hash = @KeyHash";

    private const string SelectAll = $"SELECT {Columns} FROM api_keys ORDER BY created_at_ms, id";

    private const string Insert = """
        INSERT INTO api_keys (id, key_hash, role, tenant_id, label, created_at_ms, revoked_at_ms)
        VALUES (@Id, @KeyHash, @Role, @TenantId, @Label, @CreatedAtMs, NULL)
        """;

    private const string Revoke = "UPDATE api_keys SET revoked_at_ms = @RevokedAtMs WHERE id = @Id AND revoked_at_ms IS NULL";

    public async Task<ApiKeyRecord?> FindByHashAsync(string keyHash)
    {
        using var statement = db.Statement(SelectByHash);
        return await statement.Bind("@KeyHash", keyHash).FirstOrDefaultAsync(r => new Row
        {
            Id = r.GetString(0), KeyHash = r.GetString(1), Role = r.GetString(2), TenantId = r.IsDBNull(3) ? null : r.GetString(3),
            Label = r.IsDBNull(4) ? null : r.GetString(4), CreatedAtMs = r.GetInt64(5), RevokedAtMs = r.IsDBNull(6) ? null : r.GetInt64(6),
        }.ToRecord());
    }

    public async Task<IReadOnlyList<ApiKeyRecord>> ListAsync() =>
        (await db.Connection.QueryAsync<Row>(db.Command(SelectAll))).Select(r => r.ToRecord()).ToList();

    public Task InsertAsync(ApiKeyRecord key) =>
        db.Connection.ExecuteAsync(db.Command(Insert, new
        {
            key.Id, key.KeyHash, key.Role, key.TenantId, key.Label, CreatedAtMs = UnixTime.ToMs(key.CreatedAt),
        }));

    /// <summary>Revokes a live key; false when there is no such live key.</summary>
    public async Task<bool> RevokeAsync(string id, DateTimeOffset now) =>
        await db.Connection.ExecuteAsync(db.Command(Revoke, new { Id = id, RevokedAtMs = UnixTime.ToMs(now) })) == 1;

    private sealed class Row
    {
        public string Id { get; set; } = "";
        public string KeyHash { get; set; } = "";
        public string Role { get; set; } = "";
        public string? TenantId { get; set; }
        public string? Label { get; set; }
        public long CreatedAtMs { get; set; }
        public long? RevokedAtMs { get; set; }

        public ApiKeyRecord ToRecord() => new(Id, KeyHash, Role, TenantId, Label, UnixTime.FromMs(CreatedAtMs), UnixTime.FromMs(RevokedAtMs));
    }
}
