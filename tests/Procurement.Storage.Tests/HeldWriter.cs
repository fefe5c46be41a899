using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Procurement.Storage;
using Procurement.Storage.Sqlite;

namespace Procurement.Storage.Tests;

/// <summary>
/// A SQLite store on a temp file whose writer is held in a unit of its own, so that the units queued
/// meanwhile run together as one group once it is let go. Waits are bounded: a writer that stopped
/// fails the test instead of hanging it.
/// </summary>
internal sealed class HeldWriter : IAsyncDisposable
{
    public static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    private readonly string _path;
    private readonly TaskCompletionSource _gate = new();
    private Task<bool> _held = Task.FromResult(true);

    private HeldWriter(string path, SqliteStore store)
    {
        _path = path;
        Store = store;
    }

    public SqliteStore Store { get; }

    public static async Task<HeldWriter> StartAsync(ILogger<SqliteStore>? logger = null)
    {
        var path = Path.Combine(Path.GetTempPath(), $"held-writer-{Guid.NewGuid():N}.db");
        var database = new SqliteDatabase(path);
        database.Initialize(TimeProvider.System);
        var writer = new HeldWriter(path, new SqliteStore(database, logger ?? NullLogger<SqliteStore>.Instance));
        var started = new TaskCompletionSource();
        writer._held = writer.Store.WriteAsync(async _ =>
        {
            started.SetResult();
            await writer._gate.Task;
            return true;
        }, CancellationToken.None);
        await started.Task.WaitAsync(Limit);
        return writer;
    }

    public static Domain.Pools.Pool Pool(string id) => new(id, id, "r", "H100", 10, 1, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch);

    /// <summary>Queues a unit that inserts pool <paramref name="id"/>.</summary>
    public Task<bool> InsertPool(string id) => Write(async s => await s.Pools.InsertAsync(Pool(id)));

    /// <summary>Queues a unit of work.</summary>
    public Task<bool> Write(Func<IStoreSession, Task> unit) => Store.WriteAsync(async s =>
    {
        await unit(s);
        return true;
    }, CancellationToken.None).WaitAsync(Limit);

    /// <summary>Lets the writer go on to the units queued behind it.</summary>
    public async Task ReleaseAsync()
    {
        _gate.SetResult();
        Assert.True(await _held.WaitAsync(Limit));
    }

    public Task<bool> HasPool(string id) => Store.ReadAsync(async s => await s.Pools.GetAsync(id) is not null, CancellationToken.None);

    public async ValueTask DisposeAsync()
    {
        _gate.TrySetResult();
        await Store.DisposeAsync();
        SqliteConnection.ClearAllPools();
        File.Delete(_path);
    }
}
