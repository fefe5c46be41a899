using Dapper;
using Microsoft.Data.Sqlite;
using Procurement.Storage;
using Procurement.Storage.Sqlite;

namespace Procurement.Storage.Tests;

/// <summary>
/// When the SQLite file cannot grow (a full disk, simulated by capping the writer's page count), SQLite
/// rolls back the whole transaction. The unit that needed the room fails as unavailable and keeps
/// none of its writes; the other units of its group, before and after it, none of them acknowledged
/// yet, run again in a new transaction and commit; and the writer goes on.
/// </summary>
[Trait("Category", "SqliteOnly")]
public sealed class FullDatabaseTests
{
    private static async Task RunAsync(IStoreSession s, string sql)
    {
        using var statement = ((StoreSession)s).Db.Statement(sql);
        await statement.ExecuteAsync();
    }

    [Fact]
    public async Task AUnitThatNeedsRoomTheFileCannotGive_FailsAlone_AndTheRestOfItsGroupCommits()
    {
        var log = new ListLogger<SqliteStore>();
        await using var writer = await HeldWriter.StartAsync(log);
        var runsBefore = 0;
        var before = writer.Write(async s =>
        {
            runsBefore++;
            await s.Pools.InsertAsync(HeldWriter.Pool("p1"));
        });
        var full = writer.Write(async s =>
        {
            var db = ((StoreSession)s).Db;
            var pages = await db.Connection.ExecuteScalarAsync<long>("PRAGMA page_count", transaction: db.Transaction);
            await RunAsync(s, $"PRAGMA max_page_count = {pages + 1}");
            await RunAsync(s, "INSERT INTO idempotency_records (scope, request_id, method, request_hash, response, created_at_ms) VALUES ('k', 'big', '/m', 'h', zeroblob(1000000), 0)");
        });
        var after = writer.Write(async s =>
        {
            await RunAsync(s, "PRAGMA max_page_count = 1073741823");
            await s.Pools.InsertAsync(HeldWriter.Pool("p2"));
        });
        await writer.ReleaseAsync();

        var failure = await Assert.ThrowsAsync<StorageUnavailableException>(() => full);
        Assert.Equal(13, Assert.IsType<SqliteException>(failure.InnerException).SqliteErrorCode); // SQLITE_FULL
        Assert.True(await before);
        Assert.True(await after);
        Assert.Equal(2, runsBefore); // its first run went with the group SQLite rolled back
        Assert.Equal(
            ["Unit 2 of a group failed and SQLite rolled the group back; its 2 other units run again in a new transaction"],
            log.Messages(1005));

        Assert.True(await writer.HasPool("p1"));
        Assert.Null(await writer.Store.ReadAsync(s => s.Idempotency.FindAsync("k", "big"), CancellationToken.None));
        Assert.True(await writer.HasPool("p2"));

        // The writer goes on: the refused unit's write, tried again, commits.
        await writer.Write(s => s.Idempotency.InsertAsync(new Procurement.Storage.Repositories.IdempotencyRecord("k", "big", "/m", "h", new byte[1000], DateTimeOffset.UnixEpoch)));
        Assert.NotNull(await writer.Store.ReadAsync(s => s.Idempotency.FindAsync("k", "big"), CancellationToken.None));
    }
}
