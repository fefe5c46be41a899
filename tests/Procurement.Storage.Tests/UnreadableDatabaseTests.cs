using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Procurement.Storage;
using Procurement.Storage.Sqlite;

namespace Procurement.Storage.Tests;

/// <summary>
/// A read that SQLite cannot serve because the file cannot be opened or read (its volume went away, an
/// I/O error) fails as the database being unavailable, as a write does, so clients are told
/// UNAVAILABLE (STORAGE_UNAVAILABLE) and retry, instead of INTERNAL; the store serves reads again once
/// the file can be opened.
/// </summary>
[Trait("Category", "SqliteOnly")]
public sealed class UnreadableDatabaseTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"unreadable-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AReadThatCannotOpenTheFile_IsUnavailable_AndReadsResumeWhenItIsBack(bool statementRead)
    {
        Directory.CreateDirectory(_directory);
        var path = Path.Combine(_directory, "procurement.db");
        var database = new SqliteDatabase(path);
        database.Initialize(TimeProvider.System);
        await using var store = new SqliteStore(database, NullLogger<SqliteStore>.Instance);
        await store.WriteAsync(async s =>
        {
            await s.Pools.InsertAsync(HeldWriter.Pool("p1"));
            return true;
        }, CancellationToken.None);

        // The store has no reader open yet, so the read opens one, while the file is elsewhere (the
        // writer keeps its own handle on it).
        var moved = path + ".moved";
        File.Move(path, moved);
        try
        {
            var failure = await Assert.ThrowsAsync<StorageUnavailableException>(() => Read(store, statementRead));
            Assert.Equal(SQLitePCL.raw.SQLITE_CANTOPEN, Assert.IsType<SqliteException>(failure.InnerException).SqliteErrorCode);
            Assert.False(File.Exists(path)); // a reader never creates an empty database in its place
        }
        finally
        {
            File.Move(moved, path);
        }

        Assert.NotNull(await Read(store, statementRead));
    }

    private static Task<Domain.Pools.Pool?> Read(SqliteStore store, bool statementRead) => statementRead
        ? store.ReadStatementAsync(s => s.Pools.GetAsync("p1"), CancellationToken.None)
        : store.ReadAsync(s => s.Pools.GetAsync("p1"), CancellationToken.None);
}
