using Dapper;
using Procurement.Domain.Blocks;
using Procurement.Domain.Common;

namespace Procurement.Storage.Repositories;

/// <summary>What a list of blocks is narrowed to; a window keeps the blocks that overlap [From, To).</summary>
public sealed record BlockFilter(string? TenantId, string? ContractId, string? PoolId, BlockState? State, DateTimeOffset? From, DateTimeOffset? To);

public sealed class CapacityBlockRepository(DbScope db)
{
    private const string Columns =
        "seq AS Seq, id AS Id, contract_id AS ContractId, tenant_id AS TenantId, pool_id AS PoolId, units AS Units, start_ms AS StartMs, end_ms AS EndMs, " +
        "rate_micros AS RateMicros, index_factor AS IndexFactor, state AS State, booked_at_ms AS BookedAtMs, cancelled_at_ms AS CancelledAtMs, " +
        "cancellation_charged AS CancellationCharged, revision AS Revision";

    private const string SelectById = $"SELECT {Columns} FROM capacity_blocks WHERE id = @Id";

    // The pool's calendar over [FromMs, ToMs): the blocks that still hold their place there. A window
    // is at most 182 days long, so only starts from that long before FromMs are read.
    private const string SelectPlacedInPool = $"""
        SELECT {Columns} FROM capacity_blocks
        WHERE pool_id = @PoolId AND state IN ('BOOKED', 'ACTIVE')
          AND start_ms > @EarliestStartMs AND start_ms < @ToMs AND end_ms > @FromMs
        ORDER BY start_ms, seq
        """;

    // What admission needs of a pool's blocks at @NowMs in one round trip: the blocks in effect or due
    // (ACTIVE, or BOOKED and starting by now), and the BOOKED ones starting next after now. Three
    // seeks on ix_capacity_blocks_pool_state_start, so a pool's future bookings are never walked.
    internal const string SelectCurrentInPool = $"""
        SELECT {Columns} FROM capacity_blocks WHERE pool_id = @PoolId AND state = 'ACTIVE'
        UNION ALL
        SELECT {Columns} FROM capacity_blocks WHERE pool_id = @PoolId AND state = 'BOOKED' AND start_ms <= @NowMs
        UNION ALL
        SELECT {Columns} FROM capacity_blocks
        WHERE pool_id = @PoolId AND state = 'BOOKED'
          AND start_ms = (SELECT MIN(start_ms) FROM capacity_blocks WHERE pool_id = @PoolId AND state = 'BOOKED' AND start_ms > @NowMs)
        ORDER BY StartMs, Seq
        """;

    private const string SelectPlacedOfContract = $"""
        SELECT {Columns} FROM capacity_blocks
        WHERE contract_id = @ContractId AND state IN ('BOOKED', 'ACTIVE')
        ORDER BY start_ms, seq
        """;

    // Blocks of a contract that a statement of [FromMs, ToMs) bills: windows overlapping it, and
    // blocks cancelled with a charge whose window starts in it.
    private const string SelectBilled = $"""
        SELECT {Columns} FROM capacity_blocks
        WHERE contract_id = @ContractId AND start_ms < @ToMs
          AND ((end_ms > @FromMs AND state <> 'CANCELLED') OR (start_ms >= @FromMs AND state = 'CANCELLED' AND cancellation_charged))
        ORDER BY start_ms, seq
        """;

    // Blocks of a pool whose windows (as they stand: a terminated contract's were shortened) overlap [FromMs, ToMs).
    private const string SelectWindowsInPool = $"""
        SELECT {Columns} FROM capacity_blocks
        WHERE pool_id = @PoolId AND state IN ('BOOKED', 'ACTIVE', 'COMPLETED') AND start_ms < @ToMs AND end_ms > @FromMs
        ORDER BY start_ms, seq
        """;

    // Pools with a block due to start or end at @NowMs (the sweeper's work list).
    private const string SelectPoolsDue = """
        SELECT DISTINCT pool_id FROM capacity_blocks
        WHERE (state = 'BOOKED' AND start_ms <= @NowMs) OR (state = 'ACTIVE' AND end_ms <= @NowMs)
        """;

    private const string SelectPage = $"""
        SELECT {Columns} FROM capacity_blocks
        WHERE seq > @AfterSeq
          AND (@TenantId IS NULL OR tenant_id = @TenantId)
          AND (@ContractId IS NULL OR contract_id = @ContractId)
          AND (@PoolId IS NULL OR pool_id = @PoolId)
          AND (@State IS NULL OR state = @State)
          AND (@FromMs IS NULL OR end_ms > @FromMs)
          AND (@ToMs IS NULL OR start_ms < @ToMs)
        ORDER BY seq
        LIMIT @Limit
        """;

    private const string Insert = """
        INSERT INTO capacity_blocks (seq, id, contract_id, tenant_id, pool_id, units, start_ms, end_ms, rate_micros, index_factor, state,
                                     booked_at_ms, cancelled_at_ms, cancellation_charged, revision)
        VALUES (@Seq, @Id, @ContractId, @TenantId, @PoolId, @Units, @StartMs, @EndMs, @RateMicros, @IndexFactor, @State,
                @BookedAtMs, @CancelledAtMs, @CancellationCharged, @Revision)
        """;

    private const string Update = """
        UPDATE capacity_blocks
        SET state = @State, end_ms = @EndMs, cancelled_at_ms = @CancelledAtMs, cancellation_charged = @CancellationCharged, revision = @Revision
        WHERE id = @Id AND revision = @PreviousRevision
        """;

    public Task<long> NextSeqAsync() => db.Connection.ExecuteScalarAsync<long>(db.Command(db.Dialect.NextBlockSeq));

    public async Task<CapacityBlock?> GetAsync(string id) =>
        (await db.Connection.QuerySingleOrDefaultAsync<Row>(db.Command(SelectById, new { Id = id })))?.ToDomain();

    /// <summary>BOOKED and ACTIVE blocks of the pool whose windows overlap [from, to), by start.</summary>
    public async Task<IReadOnlyList<CapacityBlock>> PlacedInPoolAsync(string poolId, DateTimeOffset from, DateTimeOffset to) =>
        (await db.Connection.QueryAsync<Row>(db.Command(SelectPlacedInPool, new
        {
            PoolId = poolId, FromMs = UnixTime.ToMs(from), ToMs = UnixTime.ToMs(to), EarliestStartMs = UnixTime.ToMs(from) - MaxWindowMs,
        }))).Select(r => r.ToDomain()).ToList();

    private static readonly long MaxWindowMs = (long)BlockCalendar.MaximumLength.TotalMilliseconds;

    /// <summary>The pool's ACTIVE blocks, its BOOKED ones due to start by <paramref name="now"/>, and the BOOKED ones that start next after it.</summary>
    public async Task<IReadOnlyList<CapacityBlock>> CurrentInPoolAsync(string poolId, DateTimeOffset now) =>
        (await db.Connection.QueryAsync<Row>(db.Command(SelectCurrentInPool, new { PoolId = poolId, NowMs = UnixTime.ToMs(now) }))).Select(r => r.ToDomain()).ToList();

    public async Task<IReadOnlyList<CapacityBlock>> PlacedOfContractAsync(string contractId) =>
        (await db.Connection.QueryAsync<Row>(db.Command(SelectPlacedOfContract, new { ContractId = contractId }))).Select(r => r.ToDomain()).ToList();

    /// <summary>The blocks a statement of [from, to) bills (their windows in it, or a charged cancellation of a window starting in it).</summary>
    public async Task<IReadOnlyList<CapacityBlock>> BilledAsync(string contractId, DateTimeOffset from, DateTimeOffset to) =>
        (await db.Connection.QueryAsync<Row>(db.Command(SelectBilled, new { ContractId = contractId, FromMs = UnixTime.ToMs(from), ToMs = UnixTime.ToMs(to) })))
            .Select(r => r.ToDomain()).ToList();

    /// <summary>The pool's blocks (not cancelled) whose windows overlap [from, to): what the statement's split counts.</summary>
    public async Task<IReadOnlyList<CapacityBlock>> WindowsInPoolAsync(string poolId, DateTimeOffset from, DateTimeOffset to) =>
        (await db.Connection.QueryAsync<Row>(db.Command(SelectWindowsInPool, new { PoolId = poolId, FromMs = UnixTime.ToMs(from), ToMs = UnixTime.ToMs(to) })))
            .Select(r => r.ToDomain()).ToList();

    public async Task<IReadOnlyList<string>> PoolsDueAsync(DateTimeOffset now) =>
        (await db.Connection.QueryAsync<string>(db.Command(SelectPoolsDue, new { NowMs = UnixTime.ToMs(now) }))).ToList();

    public async Task<IReadOnlyList<CapacityBlock>> ListAsync(BlockFilter filter, long afterSeq, int limit) =>
        (await db.Connection.QueryAsync<Row>(db.Command(SelectPage, new
        {
            AfterSeq = afterSeq, filter.TenantId, filter.ContractId, filter.PoolId,
            State = filter.State is { } st ? EnumNames.ToUpperSnake(st) : null,
            FromMs = UnixTime.ToMs(filter.From), ToMs = UnixTime.ToMs(filter.To), Limit = limit,
        }))).Select(r => r.ToDomain()).ToList();

    public Task InsertAsync(CapacityBlock b) => db.Connection.ExecuteAsync(db.Command(Insert, new
    {
        b.Seq, b.Id, b.ContractId, b.TenantId, b.PoolId, b.Units, StartMs = UnixTime.ToMs(b.StartTime), EndMs = UnixTime.ToMs(b.EndTime),
        b.RateMicros, IndexFactor = DecimalText.Format(b.IndexFactor), State = EnumNames.ToUpperSnake(b.State), BookedAtMs = UnixTime.ToMs(b.BookedAt),
        CancelledAtMs = UnixTime.ToMs(b.CancelledAt), b.CancellationCharged, b.Revision,
    }));

    /// <summary>Writes a block's new state (its revision one above <paramref name="previousRevision"/>); a concurrent change fails the unit.</summary>
    public async Task UpdateAsync(CapacityBlock b, long previousRevision)
    {
        var changed = await db.Connection.ExecuteAsync(db.Command(Update, new
        {
            b.Id, State = EnumNames.ToUpperSnake(b.State), EndMs = UnixTime.ToMs(b.EndTime), CancelledAtMs = UnixTime.ToMs(b.CancelledAt),
            b.CancellationCharged, b.Revision, PreviousRevision = previousRevision,
        }));
        if (changed != 1)
        {
            throw new ConcurrentWriteException(CapacityBlock.ResourceType, b.Id);
        }
    }

    private sealed class Row
    {
        public long Seq { get; set; }
        public string Id { get; set; } = "";
        public string ContractId { get; set; } = "";
        public string TenantId { get; set; } = "";
        public string PoolId { get; set; } = "";
        public long Units { get; set; }
        public long StartMs { get; set; }
        public long EndMs { get; set; }
        public long RateMicros { get; set; }
        public string IndexFactor { get; set; } = "";
        public string State { get; set; } = "";
        public long BookedAtMs { get; set; }
        public long? CancelledAtMs { get; set; }
        public bool CancellationCharged { get; set; }
        public long Revision { get; set; }

        public CapacityBlock ToDomain() => new(Seq, Id, ContractId, TenantId, PoolId, Units, UnixTime.FromMs(StartMs), UnixTime.FromMs(EndMs), RateMicros,
            decimal.Parse(IndexFactor, System.Globalization.CultureInfo.InvariantCulture), EnumNames.Parse<BlockState>(State), UnixTime.FromMs(BookedAtMs), UnixTime.FromMs(CancelledAtMs), CancellationCharged, Revision);
    }
}
