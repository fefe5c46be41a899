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

    /// <summary>The next capacity block number (also its id).</summary>
    public abstract string NextBlockSeq { get; }

    /// <summary>True where the one writer hands out every number, so it may count on from one read instead of asking again.</summary>
    public abstract bool WriterCountsSequences { get; }

    /// <summary>Appends an allocation event at <c>@Seq</c> (where the write group gives positions) or at the log's next number.</summary>
    public abstract string InsertAllocationEvent { get; }

    /// <summary>
    /// An expression for the first position a reader may not read yet (null: every committed event is
    /// final): a position below it can no longer be written, so a reader that has read to it misses nothing.
    /// </summary>
    public abstract string? EventHorizon { get; }

    /// <summary>The repositories' portable SQL as this provider runs it.</summary>
    public virtual string Rewrite(string sql) => sql;
}

/// <summary>SQLite: one writer, so MAX + 1 (and a rowid table's next rowid, the same) is already in commit order.</summary>
public sealed class SqliteDialect : SqlDialect
{
    public static readonly SqliteDialect Instance = new();

    public override string NextAllocationSeq => "SELECT COALESCE(MAX(seq), 0) + 1 FROM allocations";

    public override string NextIncidentSeq => "SELECT COALESCE(MAX(seq), 0) + 1 FROM incidents";

    public override string NextBlockSeq => "SELECT COALESCE(MAX(seq), 0) + 1 FROM capacity_blocks";

    public override bool WriterCountsSequences => true;

    public override string InsertAllocationEvent => """
        INSERT INTO allocation_events (occurred_at_ms, type, cause, allocation_id, contract_id, tenant_id, pool_id, units, state, preempted_by)
        VALUES (@OccurredAtMs, @Type, @Cause, @AllocationId, @ContractId, @TenantId, @PoolId, @Units, @State, @PreemptedBy)
        """;

    public override string? EventHorizon => null;
}

/// <summary>
/// PostgreSQL: many writers. Numbers come from sequences; event positions come from the writing
/// group (<see cref="Postgres.PostgresWriteGroup"/>) and are final below the oldest transaction still running.
/// </summary>
public sealed class PostgresDialect : SqlDialect
{
    public static readonly PostgresDialect Instance = new();

    public override string NextAllocationSeq => "SELECT nextval('allocations_seq')";

    public override string NextIncidentSeq => "SELECT nextval('incidents_seq')";

    public override string NextBlockSeq => "SELECT nextval('capacity_blocks_seq')";

    public override bool WriterCountsSequences => false;

    public override string InsertAllocationEvent => """
        INSERT INTO allocation_events (seq, occurred_at_ms, type, cause, allocation_id, contract_id, tenant_id, pool_id, units, state, preempted_by)
        VALUES (@Seq, @OccurredAtMs, @Type, @Cause, @AllocationId, @ContractId, @TenantId, @PoolId, @Units, @State, @PreemptedBy)
        """;

    // Every transaction below the snapshot's xmin has ended, and a running or later one writes at or
    // above its own id << 20. Taken in the reader's snapshot, so it agrees with the rows it sees.
    public override string? EventHorizon => $"(pg_snapshot_xmin(pg_current_snapshot())::text::bigint << {Postgres.PostgresWriteGroup.OrdinalBits})";

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> Rewritten = new(StringComparer.Ordinal);
    private static readonly System.Text.RegularExpressions.Regex InList = new(@"(\b[\w.]+) IN @(\w+)\b", System.Text.RegularExpressions.RegexOptions.Compiled);

    /// <summary>
    /// Dapper expands <c>x IN @List</c> into one parameter per item for SQLite, but passes a list to
    /// Npgsql as one array parameter, which PostgreSQL reads as <c>x = ANY(@List)</c>.
    /// </summary>
    public override string Rewrite(string sql) => Rewritten.GetOrAdd(sql, s => InList.Replace(s, "$1 = ANY(@$2)"));
}
