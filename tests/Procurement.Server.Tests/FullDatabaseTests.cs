using Dapper;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Procurement.Storage;
using Procurement.Storage.Sqlite;

namespace Procurement.Server.Tests;

/// <summary>
/// When the SQLite file cannot grow (a full disk, simulated by capping the writer's page count), SQLite
/// rolls back the whole transaction. The unit that needed the room fails as unavailable; the units of
/// its group before it are not acknowledged and keep none of their writes; the units after it run in
/// a new transaction; and the writer goes on.
/// </summary>
[Trait("Category", "SqliteOnly")]
public sealed class FullDatabaseTests
{
    private static Domain.Pools.Pool Pool(string id) => new(id, id, "r", "H100", 10, 1, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch);

    private static async Task RunAsync(IStoreSession s, string sql)
    {
        using var statement = ((StoreSession)s).Db.Statement(sql);
        await statement.ExecuteAsync();
    }

    [Fact]
    public async Task AUnitThatNeedsRoomTheFileCannotGive_FailsAlone_AndTheRestOfItsGroupCommits()
    {
        var path = Path.Combine(Path.GetTempPath(), $"full-{Guid.NewGuid():N}.db");
        try
        {
            var database = new SqliteDatabase(path);
            database.Initialize(TimeProvider.System);
            await using var store = new SqliteStore(database, NullLogger<SqliteStore>.Instance);

            // The writer runs the gate's unit alone and waits in it, so the next three queue and share a group.
            var gate = new TaskCompletionSource();
            var started = new TaskCompletionSource();
            var held = store.WriteAsync(async s =>
            {
                started.SetResult();
                await gate.Task;
                return true;
            }, CancellationToken.None);
            await started.Task;
            var before = store.WriteAsync(async s =>
            {
                await s.Pools.InsertAsync(Pool("p1"));
                return true;
            }, CancellationToken.None);
            var full = store.WriteAsync(async s =>
            {
                var db = ((StoreSession)s).Db;
                var pages = await db.Connection.ExecuteScalarAsync<long>("PRAGMA page_count", transaction: db.Transaction);
                await RunAsync(s, $"PRAGMA max_page_count = {pages + 1}");
                await RunAsync(s, "INSERT INTO idempotency_records (scope, request_id, method, request_hash, response, created_at_ms) VALUES ('k', 'big', '/m', 'h', zeroblob(1000000), 0)");
                return true;
            }, CancellationToken.None);
            var after = store.WriteAsync(async s =>
            {
                await RunAsync(s, "PRAGMA max_page_count = 1073741823");
                await s.Pools.InsertAsync(Pool("p2"));
                return true;
            }, CancellationToken.None);
            gate.SetResult();

            // A writer that stopped would leave these waiting for ever.
            var limit = TimeSpan.FromSeconds(30);
            Assert.True(await held.WaitAsync(limit));
            var lost = await Assert.ThrowsAsync<CommitFailedException>(() => before.WaitAsync(limit));
            Assert.Equal(13, Assert.IsType<SqliteException>(lost.InnerException).SqliteErrorCode); // SQLITE_FULL
            var failure = await Assert.ThrowsAsync<StorageUnavailableException>(() => full.WaitAsync(limit));
            Assert.Equal(13, Assert.IsType<SqliteException>(failure.InnerException).SqliteErrorCode); // SQLITE_FULL
            Assert.True(await after.WaitAsync(limit));

            Assert.Null(await store.ReadAsync(s => s.Pools.GetAsync("p1"), CancellationToken.None));
            Assert.Null(await store.ReadAsync(s => s.Idempotency.FindAsync("k", "big"), CancellationToken.None));
            Assert.NotNull(await store.ReadAsync(s => s.Pools.GetAsync("p2"), CancellationToken.None));

            // The writer goes on: the refused unit's write, tried again, commits.
            await store.WriteAsync(async s =>
            {
                await s.Pools.InsertAsync(Pool("p1"));
                return true;
            }, CancellationToken.None).WaitAsync(limit);
            Assert.NotNull(await store.ReadAsync(s => s.Pools.GetAsync("p1"), CancellationToken.None));
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            File.Delete(path);
        }
    }
}
