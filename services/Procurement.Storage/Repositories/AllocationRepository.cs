using System.Runtime.CompilerServices;
using Dapper;
using Procurement.Domain.Allocations;

namespace Procurement.Storage.Repositories;

public sealed record AllocationFilter(string? TenantId, string? ContractId, string? PoolId, AllocationState? State);

public sealed class AllocationRepository(DbScope db)
{
    private const string Columns =
        "seq AS Seq, id AS Id, contract_id AS ContractId, tenant_id AS TenantId, pool_id AS PoolId, units AS Units, state AS State, " +
        "cause AS Cause, requested_at_ms AS RequestedAtMs, admitted_at_ms AS AdmittedAtMs, ended_at_ms AS EndedAtMs, " +
        "end_time_ms AS EndTimeMs, duration_ms AS DurationMs";

    private const string SeqKey = "allocations";

    private const string SelectById = $"SELECT {Columns} FROM allocations WHERE id = @Id";

    // The open-state term is spelled exactly as the partial indexes' WHERE (migration 0006): SQLite
    // uses a partial index only for a query whose WHERE contains that term as written.
    internal const string SelectByPoolAndState =
        $"SELECT {Columns} FROM allocations WHERE pool_id = @PoolId AND state IN ('PENDING', 'ACTIVE') AND state = @State ORDER BY seq";

    internal const string SelectOpenInPool = $"SELECT {Columns} FROM allocations WHERE pool_id = @PoolId AND state IN ('PENDING', 'ACTIVE') ORDER BY seq";

    internal const string SelectOpenByContract = $"SELECT {Columns} FROM allocations WHERE contract_id = @ContractId AND state IN ('PENDING', 'ACTIVE') ORDER BY seq";

    // Open allocations whose own end time has come, or whose contract's term is over.
    internal const string SelectDuePools = """
        SELECT DISTINCT a.pool_id FROM allocations a
        WHERE a.state IN ('PENDING', 'ACTIVE') AND a.end_time_ms IS NOT NULL AND a.end_time_ms <= @NowMs
        UNION
        SELECT DISTINCT a.pool_id FROM allocations a JOIN contracts c ON c.id = a.contract_id
        WHERE a.state IN ('PENDING', 'ACTIVE') AND c.end_ms <= @NowMs
        """;

    private const string SelectPage = $"""
        SELECT {Columns} FROM allocations
        WHERE seq > @AfterSeq
          AND (@TenantId IS NULL OR tenant_id = @TenantId)
          AND (@ContractId IS NULL OR contract_id = @ContractId)
          AND (@PoolId IS NULL OR pool_id = @PoolId)
          AND (@State IS NULL OR state = @State)
        ORDER BY seq
        LIMIT @Limit
        """;

    private const string Insert = """
        INSERT INTO allocations (seq, id, contract_id, tenant_id, pool_id, units, state, cause, requested_at_ms,
                                 admitted_at_ms, ended_at_ms, end_time_ms, duration_ms)
        VALUES (@Seq, @Id, @ContractId, @TenantId, @PoolId, @Units, @State, @Cause, @RequestedAtMs,
                @AdmittedAtMs, @EndedAtMs, @EndTimeMs, @DurationMs)
        """;

    // A transition sets only the columns it changes: SQLite rewrites an index entry whenever the
    // UPDATE names one of its columns, even to the same value, and the per-contract index on
    // admitted_at_ms would otherwise take a page of its own on every release.
    private const string UpdateAdmitted = """
        UPDATE allocations
        SET state = @State, cause = @Cause, admitted_at_ms = @AdmittedAtMs, end_time_ms = @EndTimeMs
        WHERE id = @Id AND state = @PreviousState
        """;

    private const string UpdateEnded = """
        UPDATE allocations
        SET state = @State, cause = @Cause, ended_at_ms = @EndedAtMs
        WHERE id = @Id AND state = @PreviousState
        """;

    public async Task<long> NextSeqAsync()
    {
        // The single writer assigns every seq, so after one read it counts on (InsertAsync); a failed
        // unit forgets the count and the next one reads it again.
        if (db.Dialect.WriterCountsSequences && db.Cache is { } cache && cache.NextSeqs.TryGet(SeqKey, out var next))
        {
            return next.Value;
        }

        long seq;
        using (var statement = db.Statement(db.Dialect.NextAllocationSeq))
        {
            seq = await statement.ScalarAsync<long>();
        }

        if (db.Dialect.WriterCountsSequences)
        {
            db.Cache?.NextSeqs.Put(SeqKey, new StrongBox<long>(seq));
        }

        return seq;
    }

    public async Task<Allocation?> GetAsync(string id)
    {
        using var statement = db.Statement(SelectById);
        return await statement.Bind("@Id", id).FirstOrDefaultAsync(Read);
    }

    /// <summary>The pool's allocations in <paramref name="state"/>, ordered by seq (a copy the caller may keep).</summary>
    public async Task<IReadOnlyList<Allocation>> InPoolAsync(string poolId, AllocationState state) => [.. await OpenListAsync(poolId, state)];

    /// <summary>Whether the pool has any allocation in <paramref name="state"/> (an open one), without copying the writer's list.</summary>
    public async Task<bool> AnyInPoolAsync(string poolId, AllocationState state) => (await OpenListAsync(poolId, state)).Count > 0;

    /// <summary>The writer's own list of the pool's allocations in an open state (callers must not change it), or a fresh read.</summary>
    private async Task<List<Allocation>> OpenListAsync(string poolId, AllocationState state)
    {
        if (state is not (AllocationState.Active or AllocationState.Pending))
        {
            throw new ArgumentOutOfRangeException(nameof(state), state, "Only the open states are indexed by pool.");
        }

        var key = WriterCache.OpenKey(poolId, state);
        if (db.Cache is { } cache && cache.OpenAllocations.TryGet(key, out var cached))
        {
            return cached;
        }

        var list = (await db.Connection.QueryAsync<Row>(db.Command(SelectByPoolAndState, new { PoolId = poolId, State = Name(state) }))).Select(r => r.ToDomain()).ToList();
        db.Cache?.OpenAllocations.Put(key, list);
        return list;
    }

    /// <summary>The pool's ACTIVE and PENDING allocations, ordered by seq, in one prepared statement (for status reads).</summary>
    public async Task<IReadOnlyList<Allocation>> OpenInPoolAsync(string poolId)
    {
        using var statement = db.Statement(SelectOpenInPool);
        return await statement.Bind("@PoolId", poolId).ListAsync(Read);
    }

    public async Task<IReadOnlyList<Allocation>> OpenOfContractAsync(string contractId) =>
        (await db.Connection.QueryAsync<Row>(db.Command(SelectOpenByContract, new { ContractId = contractId }))).Select(r => r.ToDomain()).ToList();

    /// <summary>Pools with an open allocation that is due to end at <paramref name="now"/>.</summary>
    public async Task<IReadOnlyList<string>> PoolsWithDueAllocationsAsync(DateTimeOffset now) =>
        (await db.Connection.QueryAsync<string>(db.Command(SelectDuePools, new { NowMs = UnixTime.ToMs(now) }))).ToList();

    public async Task<IReadOnlyList<Allocation>> ListAsync(AllocationFilter filter, long afterSeq, int limit) =>
        (await db.Connection.QueryAsync<Row>(db.Command(SelectPage, new
        {
            AfterSeq = afterSeq, filter.TenantId, filter.ContractId, filter.PoolId,
            State = filter.State is { } s ? Name(s) : null, Limit = limit,
        }))).Select(r => r.ToDomain()).ToList();

    public async Task InsertAsync(Allocation a)
    {
        var row = Row.From(a);
        using (var statement = db.Statement(Insert))
        {
            await statement.Bind("@Seq", row.Seq).Bind("@Id", row.Id).Bind("@ContractId", row.ContractId).Bind("@TenantId", row.TenantId)
                .Bind("@PoolId", row.PoolId).Bind("@Units", row.Units).Bind("@State", row.State).Bind("@Cause", row.Cause)
                .Bind("@RequestedAtMs", row.RequestedAtMs).Bind("@AdmittedAtMs", row.AdmittedAtMs).Bind("@EndedAtMs", row.EndedAtMs)
                .Bind("@EndTimeMs", row.EndTimeMs).Bind("@DurationMs", row.DurationMs).ExecuteOneRowAsync(() => new ConcurrentWriteException(Allocation.ResourceType, a.Id));
        }

        Cached(a.PoolId, a.State, list => InsertBySeq(list, a));
        if (db.Cache is { } cache && cache.NextSeqs.TryGet(SeqKey, out var next))
        {
            cache.NextSeqs.MarkChanged(SeqKey);
            next.Value = Math.Max(next.Value, a.Seq + 1);
        }
    }

    /// <summary>
    /// Writes a transition, PENDING to ACTIVE (admission: its time and end time) or to a final state
    /// (its end); fails if the stored state is no longer <paramref name="previousState"/>.
    /// </summary>
    public async Task UpdateAsync(Allocation a, AllocationState previousState)
    {
        var row = Row.From(a);
        var admitted = (previousState, a.State) switch
        {
            (AllocationState.Pending, AllocationState.Active) => true,
            (AllocationState.Pending or AllocationState.Active, _) when a.IsFinal => false,
            _ => throw new ArgumentException($"No transition from {previousState} to {a.State}.", nameof(a)),
        };
        using (var statement = db.Statement(admitted ? UpdateAdmitted : UpdateEnded))
        {
            statement.Bind("@Id", row.Id).Bind("@State", row.State).Bind("@Cause", row.Cause).Bind("@PreviousState", Name(previousState));
            // The state it was read in is part of the match: a row another writer moved on changes nothing, and fails.
            await (admitted
                ? statement.Bind("@AdmittedAtMs", row.AdmittedAtMs).Bind("@EndTimeMs", row.EndTimeMs)
                : statement.Bind("@EndedAtMs", row.EndedAtMs)).ExecuteOneRowAsync(() => new ConcurrentWriteException(Allocation.ResourceType, a.Id));
        }

        Cached(a.PoolId, previousState, list => RemoveBySeq(list, a));
        Cached(a.PoolId, a.State, list => InsertBySeq(list, a));
    }

    /// <summary>Applies a write to the writer's cached list of the pool's allocations in an open state.</summary>
    private void Cached(string poolId, AllocationState state, Action<List<Allocation>> change)
    {
        if (db.Cache is not { } cache || state is not (AllocationState.Active or AllocationState.Pending))
        {
            return;
        }

        var key = WriterCache.OpenKey(poolId, state);
        cache.OpenAllocations.MarkChanged(key);
        cache.InvalidateViews(poolId);
        if (cache.OpenAllocations.TryGet(key, out var list))
        {
            change(list);
        }
    }

    // The lists are ordered by seq, so a change finds its place by binary search however long they are.
    private static void InsertBySeq(List<Allocation> list, Allocation a)
    {
        var i = IndexBySeq(list, a.Seq);
        if (i >= 0)
        {
            list[i] = a;
        }
        else
        {
            list.Insert(~i, a);
        }
    }

    private static void RemoveBySeq(List<Allocation> list, Allocation a)
    {
        var i = IndexBySeq(list, a.Seq);
        if (i >= 0)
        {
            list.RemoveAt(i);
        }
    }

    /// <summary>The index of the allocation with <paramref name="seq"/>, or the complement of where it would go.</summary>
    private static int IndexBySeq(List<Allocation> list, long seq)
    {
        var (lo, hi) = (0, list.Count - 1);
        while (lo <= hi)
        {
            var mid = lo + ((hi - lo) >> 1);
            var c = list[mid].Seq.CompareTo(seq);
            if (c == 0)
            {
                return mid;
            }

            (lo, hi) = c < 0 ? (mid + 1, hi) : (lo, mid - 1);
        }

        return ~lo;
    }

    internal static string Name<T>(T value) where T : struct, Enum => EnumNames.ToUpperSnake(value);

    /// <summary>Maps a row selected with <see cref="Columns"/>, in its order.</summary>
    private static Allocation Read(System.Data.Common.DbDataReader r) => new Row
    {
        Seq = r.GetInt64(0), Id = r.GetString(1), ContractId = r.GetString(2), TenantId = r.GetString(3), PoolId = r.GetString(4),
        Units = r.GetInt64(5), State = r.GetString(6), Cause = r.GetString(7), RequestedAtMs = r.GetInt64(8),
        AdmittedAtMs = NullableInt64(r, 9), EndedAtMs = NullableInt64(r, 10), EndTimeMs = NullableInt64(r, 11), DurationMs = NullableInt64(r, 12),
    }.ToDomain();

    private static long? NullableInt64(System.Data.Common.DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetInt64(i);

    private sealed class Row
    {
        public long Seq { get; set; }
        public string Id { get; set; } = "";
        public string ContractId { get; set; } = "";
        public string TenantId { get; set; } = "";
        public string PoolId { get; set; } = "";
        public long Units { get; set; }
        public string State { get; set; } = "";
        public string Cause { get; set; } = "";
        public long RequestedAtMs { get; set; }
        public long? AdmittedAtMs { get; set; }
        public long? EndedAtMs { get; set; }
        public long? EndTimeMs { get; set; }
        public long? DurationMs { get; set; }

        public static Row From(Allocation a) => new()
        {
            Seq = a.Seq,
            Id = a.Id,
            ContractId = a.ContractId,
            TenantId = a.TenantId,
            PoolId = a.PoolId,
            Units = a.Units,
            State = Name(a.State),
            Cause = Name(a.Cause),
            RequestedAtMs = UnixTime.ToMs(a.RequestedAt),
            AdmittedAtMs = UnixTime.ToMs(a.AdmittedAt),
            EndedAtMs = UnixTime.ToMs(a.EndedAt),
            EndTimeMs = UnixTime.ToMs(a.EndTime),
            DurationMs = a.Duration is { } d ? (long)d.TotalMilliseconds : null,
        };

        public Allocation ToDomain() => new(
            Seq, Id, ContractId, TenantId, PoolId, Units,
            EnumNames.Parse<AllocationState>(State), EnumNames.Parse<AllocationCause>(Cause),
            UnixTime.FromMs(RequestedAtMs), UnixTime.FromMs(AdmittedAtMs), UnixTime.FromMs(EndedAtMs), UnixTime.FromMs(EndTimeMs),
            DurationMs is { } d ? TimeSpan.FromMilliseconds(d) : null);
    }
}
