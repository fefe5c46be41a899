using Dapper;
using Procurement.Domain.Allocations;

namespace Procurement.Storage.Repositories;

/// <summary>
/// One transition of one allocation, at a position in the log (increasing, with gaps on PostgreSQL;
/// consistent with commit order per pool). A capacity block's event (BLOCK_STARTED, BLOCK_ENDED) has
/// the block's id in <see cref="AllocationId"/> and its state in <see cref="BlockState"/>.
/// </summary>
public sealed record AllocationEvent(
    long Sequence,
    DateTimeOffset OccurredAt,
    AllocationEventType Type,
    AllocationCause Cause,
    string AllocationId,
    string ContractId,
    string TenantId,
    string PoolId,
    long Units,
    AllocationState State,
    string? PreemptedBy,
    Domain.Blocks.BlockState? BlockState = null)
{
    public bool IsBlockEvent => Type is AllocationEventType.BlockStarted or AllocationEventType.BlockEnded;
}

public sealed record AllocationEventFilter(string? TenantId, string? ContractId, string? PoolId);

/// <summary>The allocation event log; <paramref name="appended"/> hears of each event this session appends.</summary>
public sealed class AllocationEventRepository(DbScope db, Action<AllocationEvent>? appended = null)
{
    private const string SelectAfter = """
        SELECT seq AS Sequence, occurred_at_ms AS OccurredAtMs, type AS Type, cause AS Cause, allocation_id AS AllocationId,
               contract_id AS ContractId, tenant_id AS TenantId, pool_id AS PoolId, units AS Units, state AS State, preempted_by AS PreemptedBy
        FROM allocation_events
        WHERE seq > @AfterSeq
          AND (@TenantId IS NULL OR tenant_id = @TenantId)
          AND (@ContractId IS NULL OR contract_id = @ContractId)
          AND (@PoolId IS NULL OR pool_id = @PoolId)
        ORDER BY seq
        LIMIT @Limit
        """;

    private static readonly Dictionary<SqlDialect, (string After, string Last)> Sql = new()
    {
        [SqliteDialect.Instance] = Texts(SqliteDialect.Instance),
        [PostgresDialect.Instance] = Texts(PostgresDialect.Instance),
    };

    /// <summary>Below the provider's horizon where it has one: there, no event can appear behind a reader.</summary>
    private static (string After, string Last) Texts(SqlDialect dialect) => dialect.EventHorizon is { } horizon
        ? (SelectAfter.Replace("ORDER BY seq", $"AND seq < {horizon}\nORDER BY seq", StringComparison.Ordinal), $"SELECT {horizon} - 1")
        : (SelectAfter, "SELECT COALESCE(MAX(seq), 0) FROM allocation_events");

    /// <summary>
    /// A position in the log as this read sees it, such that no event at or below it can appear later:
    /// a watcher that has read to it may move on to it.
    /// </summary>
    public async Task<long> LastSequenceAsync()
    {
        using var statement = db.Statement(Sql[db.Dialect].Last);
        return await statement.ScalarAsync<long>();
    }

    public async Task AppendAsync(AllocationEvent e)
    {
        using var statement = db.Statement(db.Dialect.InsertAllocationEvent);
        if (db.Group?.NextEventPosition(e.PoolId) is { } position)
        {
            statement.Bind("@Seq", position);
        }

        await statement.Bind("@OccurredAtMs", UnixTime.ToMs(e.OccurredAt)).Bind("@Type", EnumNames.ToUpperSnake(e.Type))
            .Bind("@Cause", EnumNames.ToUpperSnake(e.Cause)).Bind("@AllocationId", e.AllocationId).Bind("@ContractId", e.ContractId)
            .Bind("@TenantId", e.TenantId).Bind("@PoolId", e.PoolId).Bind("@Units", e.Units).Bind("@State", e.BlockState is { } blockState ? EnumNames.ToUpperSnake(blockState) : EnumNames.ToUpperSnake(e.State))
            .Bind("@PreemptedBy", e.PreemptedBy).ExecuteOneRowAsync(() => new ConcurrentWriteException("allocation event", e.AllocationId));
        appended?.Invoke(e);
    }

    public async Task<IReadOnlyList<AllocationEvent>> ListAfterAsync(long afterSeq, AllocationEventFilter filter, int limit) =>
        (await db.Connection.QueryAsync<Row>(db.Command(Sql[db.Dialect].After, new
        {
            AfterSeq = afterSeq, filter.TenantId, filter.ContractId, filter.PoolId, Limit = limit,
        }))).Select(r => r.ToDomain()).ToList();

    private sealed class Row
    {
        public long Sequence { get; set; }
        public long OccurredAtMs { get; set; }
        public string Type { get; set; } = "";
        public string Cause { get; set; } = "";
        public string AllocationId { get; set; } = "";
        public string ContractId { get; set; } = "";
        public string TenantId { get; set; } = "";
        public string PoolId { get; set; } = "";
        public long Units { get; set; }
        public string State { get; set; } = "";
        public string? PreemptedBy { get; set; }

        public AllocationEvent ToDomain()
        {
            var type = EnumNames.Parse<AllocationEventType>(Type);
            var isBlock = type is AllocationEventType.BlockStarted or AllocationEventType.BlockEnded;
            return new AllocationEvent(Sequence, UnixTime.FromMs(OccurredAtMs), type, EnumNames.Parse<AllocationCause>(Cause), AllocationId, ContractId, TenantId,
                PoolId, Units, isBlock ? default : EnumNames.Parse<AllocationState>(State), PreemptedBy,
                isBlock ? EnumNames.Parse<Domain.Blocks.BlockState>(State) : null);
        }
    }
}
