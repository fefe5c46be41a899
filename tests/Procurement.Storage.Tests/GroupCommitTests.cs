using Microsoft.Data.Sqlite;
using Procurement.Domain.Allocations;
using Procurement.Domain.Errors;
using Procurement.Storage;
using Procurement.Storage.Repositories;
using Procurement.Storage.Sqlite;
using Procurement.TestSupport;

namespace Procurement.Storage.Tests;

/// <summary>
/// A writer (SQLite's, or a PostgreSQL replica's) runs the units waiting in its queue in one transaction and commits them together.
/// A unit that fails leaves no trace, in the file or in what the writer keeps in memory, and the rest of
/// its group commits: a unit refused before it changed anything costs the others nothing; one that
/// failed after changing rows has the group rolled back and the others run again, none of them having
/// been acknowledged.
/// </summary>
public sealed class GroupCommitTests
{
    [Fact]
    public async Task AUnitThatFailsAfterWriting_LeavesNoTrace_AndTheRestOfItsGroupCommits()
    {
        var log = new ListLogger<HeldWriter>();
        await using var writer = await HeldWriter.StartAsync(log);
        var seed = writer.Write(async s =>
        {
            await s.Pools.InsertAsync(HeldWriter.Pool("p1"));
            using var contract = ((StoreSession)s).Db.Statement("""
                INSERT INTO contracts (id, tenant_id, display_name, state, revision, end_ms, created_at_ms, updated_at_ms)
                VALUES ('ctr_1', 'lab', 'c', 'ACTIVE', 1, 9000000, 0, 0)
                """);
            await contract.ExecuteAsync();
        });
        var firstRuns = new List<long>();
        var first = writer.Write(s => AllocateAsync(s, firstRuns));
        var failing = writer.Write(async s =>
        {
            await s.Pools.InsertAsync(HeldWriter.Pool("half"));
            throw new InvalidOperationException("failed after writing");
        });
        var sawHalf = true;
        var lastRuns = new List<long>();
        var last = writer.Write(async s =>
        {
            sawHalf = await s.Pools.GetAsync("half") is not null;
            await AllocateAsync(s, lastRuns);
        });
        await writer.ReleaseAsync();

        Assert.Equal("failed after writing", (await Assert.ThrowsAsync<InvalidOperationException>(() => failing)).Message);
        Assert.True(await seed);
        Assert.True(await first);
        Assert.True(await last);
        // The unit before the failure was rolled back with the group and run again in a new
        // transaction, from what the database holds (on SQLite the sequence number it took the first
        // time is free again; a PostgreSQL sequence never hands one out twice).
        Assert.Equal(2, firstRuns.Count);
        Assert.Equal(ServerHarness.OnPostgres ? firstRuns[0] + 1 : firstRuns[0], firstRuns[1]);
        Assert.Equal([firstRuns[1] + 1], lastRuns);
        Assert.False(sawHalf);
        Assert.False(await writer.HasPool("half"));
        Assert.Equal([Allocation.IdOf(firstRuns[1]), Allocation.IdOf(lastRuns[0])], await writer.Store.ReadAsync(async s =>
            (await s.Allocations.ListAsync(new AllocationFilter(null, null, null, null), 0, 10)).Select(a => a.Id).ToList(), CancellationToken.None));
        // The operator is told why the group was rolled back and how many units ran again.
        var runAgain = Assert.Single(log.Messages(HeldWriter.GroupRunAgainEvent));
        Assert.Equal("Unit 3 of a group failed and it had changed rows, so the group was rolled back; its 3 other units run again in a new transaction", runAgain);
    }

    [Fact]
    public async Task AUnitThatFailsAfterWritingAlone_IsRolledBack_WithoutSayingOthersRunAgain()
    {
        var log = new ListLogger<HeldWriter>();
        await using var writer = await HeldWriter.StartAsync(log);
        var failing = writer.Write(async s =>
        {
            await s.Pools.InsertAsync(HeldWriter.Pool("half"));
            throw new InvalidOperationException("failed after writing");
        });
        await writer.ReleaseAsync();

        await Assert.ThrowsAsync<InvalidOperationException>(() => failing);
        Assert.False(await writer.HasPool("half"));
        Assert.True(await writer.InsertPool("p1"));
        Assert.Empty(log.Messages(HeldWriter.GroupRunAgainEvent));
    }

    private static async Task AllocateAsync(IStoreSession s, List<long> runs)
    {
        var seq = await s.Allocations.NextSeqAsync();
        runs.Add(seq);
        await s.Allocations.InsertAsync(new Allocation(seq, Allocation.IdOf(seq), "ctr_1", "lab", "p1", 1,
            AllocationState.Active, AllocationCause.ClientRequest, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch, null, null, null));
    }

    [Fact]
    public async Task AUnitRefusedBeforeWriting_FailsAlone_AndTheRestOfItsGroupRunsOnce()
    {
        await using var writer = await HeldWriter.StartAsync();
        var before = new CountedInsert(writer, "p1");
        // Refused on what it reads, as admission refuses a request: nothing was written to undo.
        var refused = writer.Write(async s =>
        {
            if (await s.Pools.GetAsync("p1") is not null)
            {
                throw DomainErrors.AlreadyExists("pool", "p1");
            }
        });
        var after = writer.InsertPool("p2");
        await writer.ReleaseAsync();

        Assert.Equal(ErrorKind.AlreadyExists, (await Assert.ThrowsAsync<ProcurementException>(() => refused)).Kind);
        Assert.True(await before.Done);
        Assert.True(await after);
        Assert.Equal(1, before.Runs);
        Assert.True(await writer.HasPool("p1"));
        Assert.True(await writer.HasPool("p2"));
    }

    [Fact]
    [Trait("Category", "SqliteOnly")] // On PostgreSQL a failed statement aborts the transaction: the twin below.
    public async Task AStatementThatFails_IsUndoneBySqlite_AndItsUnitFailsAlone()
    {
        await using var writer = await HeldWriter.StartAsync();
        var before = new CountedInsert(writer, "p1");
        // The second row of a two-row insert breaks the key: SQLite undoes the first one itself.
        var failing = writer.Write(async s =>
        {
            using var insert = ((StoreSession)s).Db.Statement("""
                INSERT INTO pools (id, display_name, region, accelerator_type, capacity_units, revision, created_at_ms, updated_at_ms)
                VALUES ('q1', 'q', 'r', 'H100', 10, 1, 0, 0), ('p1', 'p', 'r', 'H100', 10, 1, 0, 0)
                """);
            await insert.ExecuteAsync();
        });
        await writer.ReleaseAsync();

        Assert.Equal(19, (await Assert.ThrowsAsync<SqliteException>(() => failing)).SqliteErrorCode); // SQLITE_CONSTRAINT
        Assert.True(await before.Done);
        Assert.Equal(1, before.Runs);
        Assert.True(await writer.HasPool("p1"));
        Assert.False(await writer.HasPool("q1"));
    }

    [SkippableFact]
    public async Task AStatementThatFails_AbortsAPostgresGroup_AndTheOthersRunAgainAndCommit()
    {
        Skip.IfNot(ServerHarness.OnPostgres, "PROCUREMENT_TEST_POSTGRES is not set (no PostgreSQL cluster)");
        var log = new ListLogger<HeldWriter>();
        await using var writer = await HeldWriter.StartAsync(log);
        var before = new CountedInsert(writer, "p1");
        var failing = writer.Write(async s =>
        {
            using var insert = ((StoreSession)s).Db.Statement("""
                INSERT INTO pools (id, display_name, region, accelerator_type, capacity_units, revision, created_at_ms, updated_at_ms)
                VALUES ('q1', 'q', 'r', 'H100', 10, 1, 0, 0), ('p1', 'p', 'r', 'H100', 10, 1, 0, 0)
                """);
            await insert.ExecuteAsync();
        });
        var after = new CountedInsert(writer, "p2");
        await writer.ReleaseAsync();

        Assert.Equal(Npgsql.PostgresErrorCodes.UniqueViolation, (await Assert.ThrowsAsync<Npgsql.PostgresException>(() => failing)).SqlState);
        Assert.True(await before.Done);
        Assert.True(await after.Done);
        // The unit before ran again in a new transaction; the one after ran only there.
        Assert.Equal(2, before.Runs);
        Assert.Equal(1, after.Runs);
        Assert.True(await writer.HasPool("p1"));
        Assert.True(await writer.HasPool("p2"));
        Assert.False(await writer.HasPool("q1"));
        Assert.Equal("Unit 2 of a group failed and a database error aborted the group's transaction; its 2 other units run again in a new transaction",
            Assert.Single(log.Messages(HeldWriter.GroupRunAgainEvent)));
    }

    [Fact]
    public async Task ACallerThatBlocksOnceAnswered_HoldsUpNeitherTheWriterNorLaterGroups()
    {
        await using var writer = await HeldWriter.StartAsync();
        var blocking = new BlockingCaller(writer.InsertPool("p1"), t => t.IsCompletedSuccessfully);
        await writer.ReleaseAsync();

        // Answered while the first caller still blocks: its group committed and the writer went on.
        Assert.True(await writer.InsertPool("p2"));
        Assert.True(await writer.HasPool("p1"));
        await blocking.LetGoAsync();
    }

    [Fact]
    public async Task ACallerThatBlocksOnItsRefusal_DoesNotHoldUpTheRestOfItsGroup()
    {
        await using var writer = await HeldWriter.StartAsync();
        // The writer finds the refusal in the middle of the group; the caller is told elsewhere.
        var refused = new BlockingCaller(writer.Write(_ => throw DomainErrors.AlreadyExists("pool", "p0")), t => t.IsFaulted);
        var after = writer.InsertPool("p1");
        await writer.ReleaseAsync();

        Assert.True(await after);
        await refused.LetGoAsync();
    }

    [Fact]
    public async Task ACallerThatGaveUpBeforeItsUnitRan_IsToldElsewhere_AndTheWriterGoesOn()
    {
        await using var writer = await HeldWriter.StartAsync();
        using var giveUp = new CancellationTokenSource();
        var ran = false;
        var cancelled = new BlockingCaller(writer.Store.WriteAsync(_ => Task.FromResult(ran = true), giveUp.Token), t => t.IsCanceled);
        giveUp.Cancel();
        var after = writer.InsertPool("p1");
        await writer.ReleaseAsync();

        Assert.True(await after);
        await cancelled.LetGoAsync();
        Assert.False(ran);
    }

    /// <summary>
    /// A caller whose code after its await blocks until let go. It runs where the call's task
    /// completes, as an <c>await</c> continuation does: that must never be the writer.
    /// </summary>
    private sealed class BlockingCaller
    {
        private readonly ManualResetEventSlim _gate = new();
        private readonly Task<bool> _continued;

        public BlockingCaller(Task call, Func<Task, bool> expected) =>
            _continued = call.ContinueWith(t => _gate.Wait(HeldWriter.Limit) && expected(t), TaskContinuationOptions.ExecuteSynchronously);

        /// <summary>Asserts the caller is still blocked, lets it go, and that it saw the outcome expected.</summary>
        public async Task LetGoAsync()
        {
            Assert.False(_continued.IsCompleted);
            _gate.Set();
            Assert.True(await _continued.WaitAsync(HeldWriter.Limit));
            _gate.Dispose();
        }
    }

    /// <summary>A unit that inserts a pool, counting how many times the writer runs it.</summary>
    private sealed class CountedInsert
    {
        public CountedInsert(HeldWriter writer, string poolId) => Done = writer.Write(async s =>
        {
            Runs++;
            await s.Pools.InsertAsync(HeldWriter.Pool(poolId));
        });

        public int Runs { get; private set; }

        public Task<bool> Done { get; }
    }
}
