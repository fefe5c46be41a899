using Dapper;

namespace Procurement.Storage.Repositories;

/// <summary>One committed mutation: who, when, which method and request, which resource.</summary>
public sealed record AuditEvent(
    long Sequence,
    DateTimeOffset OccurredAt,
    string KeyId,
    string Role,
    string? TenantId,
    string Method,
    string RequestId,
    string ResourceType,
    string ResourceId);

public sealed class AuditRepository(DbScope db)
{
    private const string Insert = """
        INSERT INTO audit_events (occurred_at_ms, key_id, role, tenant_id, method, request_id, resource_type, resource_id)
        VALUES (@OccurredAtMs, @KeyId, @Role, @TenantId, @Method, @RequestId, @ResourceType, @ResourceId)
        """;

    private const string SelectPage = """
        SELECT seq AS Sequence, occurred_at_ms AS OccurredAtMs, key_id AS KeyId, role AS Role, tenant_id AS TenantId,
               method AS Method, request_id AS RequestId, resource_type AS ResourceType, resource_id AS ResourceId
        FROM audit_events
        WHERE seq > @AfterSeq
          AND (@ResourceType IS NULL OR resource_type = @ResourceType)
          AND (@ResourceId IS NULL OR resource_id = @ResourceId)
        ORDER BY seq
        LIMIT @Limit
        """;

    // One resource's history is one range of ix_audit_events_resource; the general query above walks
    // the whole log from the cursor, which is right for unfiltered or type-only listings but not here.
    private const string SelectPageOfResource = """
        SELECT seq AS Sequence, occurred_at_ms AS OccurredAtMs, key_id AS KeyId, role AS Role, tenant_id AS TenantId,
               method AS Method, request_id AS RequestId, resource_type AS ResourceType, resource_id AS ResourceId
        FROM audit_events
        WHERE resource_type = @ResourceType AND resource_id = @ResourceId AND seq > @AfterSeq
        ORDER BY seq
        LIMIT @Limit
        """;

    public async Task AppendAsync(AuditEvent e)
    {
        using var statement = db.Statement(Insert);
        await statement.Bind("@OccurredAtMs", UnixTime.ToMs(e.OccurredAt)).Bind("@KeyId", e.KeyId).Bind("@Role", e.Role)
            .Bind("@TenantId", e.TenantId).Bind("@Method", e.Method).Bind("@RequestId", e.RequestId)
            .Bind("@ResourceType", e.ResourceType).Bind("@ResourceId", e.ResourceId).ExecuteOneRowAsync(() => new ConcurrentWriteException("audit event", e.RequestId));
    }

    public async Task<IReadOnlyList<AuditEvent>> ListAsync(string? resourceType, string? resourceId, long afterSeq, int limit)
    {
        var sql = resourceType is not null && resourceId is not null ? SelectPageOfResource : SelectPage;
        var rows = await db.Connection.QueryAsync<Row>(db.Command(sql, new
        {
            AfterSeq = afterSeq, ResourceType = resourceType, ResourceId = resourceId, Limit = limit,
        }));
        return rows.Select(r => new AuditEvent(r.Sequence, UnixTime.FromMs(r.OccurredAtMs), r.KeyId, r.Role, r.TenantId, r.Method,
            r.RequestId, r.ResourceType, r.ResourceId)).ToList();
    }

    private sealed class Row
    {
        public long Sequence { get; set; }
        public long OccurredAtMs { get; set; }
        public string KeyId { get; set; } = "";
        public string Role { get; set; } = "";
        public string? TenantId { get; set; }
        public string Method { get; set; } = "";
        public string RequestId { get; set; } = "";
        public string ResourceType { get; set; } = "";
        public string ResourceId { get; set; } = "";
    }
}
