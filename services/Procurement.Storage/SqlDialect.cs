namespace Procurement.Storage;

/// <summary>
/// The few statements that differ between providers; everything else in the repositories is
/// portable SQL. Kept here, beside each other, so the differences are visible in one place.
/// </summary>
public abstract class SqlDialect
{
    /// <summary>The next allocation number (also its id).</summary>
    public abstract string NextAllocationSeq { get; }

    /// <summary>The next incident number (also its id).</summary>
    public abstract string NextIncidentSeq { get; }

    /// <summary>Appends an allocation event; its sequence must be gap-free in commit order for watchers.</summary>
    public abstract string InsertAllocationEvent { get; }

    /// <summary>Serializes a unit on its pools, or null where writes are serial anyway.</summary>
    public abstract string? LockPools { get; }

    /// <summary>The repositories' portable SQL as this provider runs it.</summary>
    public virtual string Rewrite(string sql) => sql;
}

/// <summary>SQLite: one writer, so MAX + 1 (and a rowid table's next rowid, the same) is already in commit order.</summary>
public sealed class SqliteDialect : SqlDialect
{
    public static readonly SqliteDialect Instance = new();

    public override string NextAllocationSeq => "SELECT COALESCE(MAX(seq), 0) + 1 FROM allocations";

    public override string NextIncidentSeq => "SELECT COALESCE(MAX(seq), 0) + 1 FROM incidents";

    public override string InsertAllocationEvent => """
        INSERT INTO allocation_events (occurred_at_ms, type, cause, allocation_id, contract_id, tenant_id, pool_id, units, state, preempted_by)
        VALUES (@OccurredAtMs, @Type, @Cause, @AllocationId, @ContractId, @TenantId, @PoolId, @Units, @State, @PreemptedBy)
        """;

    public override string? LockPools => null;
}

/// <summary>
/// PostgreSQL: many writers. Numbers come from sequences; event sequence numbers come from a counter
/// row whose lock is held to commit, so they are handed out in commit order with no gaps (a reader
/// never sees event n+1 committed before event n); pool rows are locked FOR UPDATE.
/// </summary>
public sealed class PostgresDialect : SqlDialect
{
    public static readonly PostgresDialect Instance = new();

    public override string NextAllocationSeq => "SELECT nextval('allocations_seq')";

    public override string NextIncidentSeq => "SELECT nextval('incidents_seq')";

    public override string InsertAllocationEvent => """
        WITH next AS (UPDATE allocation_event_counter SET value = value + 1 WHERE id = 1 RETURNING value)
        INSERT INTO allocation_events (seq, occurred_at_ms, type, cause, allocation_id, contract_id, tenant_id, pool_id, units, state, preempted_by)
        SELECT next.value, @OccurredAtMs, @Type, @Cause, @AllocationId, @ContractId, @TenantId, @PoolId, @Units, @State, @PreemptedBy FROM next
        """;

    public override string? LockPools => "SELECT id FROM pools WHERE id = ANY(@Ids) ORDER BY id FOR UPDATE";

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> Rewritten = new(StringComparer.Ordinal);
    private static readonly System.Text.RegularExpressions.Regex InList = new(@"(\b[\w.]+) IN @(\w+)\b", System.Text.RegularExpressions.RegexOptions.Compiled);

    /// <summary>
    /// Dapper expands <c>x IN @List</c> into one parameter per item for SQLite, but passes a list to
    /// Npgsql as one array parameter, which PostgreSQL reads as <c>x = ANY(@List)</c>.
    /// </summary>
    public override string Rewrite(string sql) => Rewritten.GetOrAdd(sql, s => InList.Replace(s, "$1 = ANY(@$2)"));
}
