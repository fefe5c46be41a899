using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Procurement.Storage;
using Procurement.Storage.Postgres;
using Procurement.Storage.Sqlite;
using Procurement.TestSupport;

namespace Procurement.Storage.Tests;

/// <summary>
/// A store on a fresh database (a temp SQLite file, or a new PostgreSQL database in the test cluster)
/// whose writer is held in a unit of its own, so that the units queued meanwhile run together as one
/// group once it is let go. Waits are bounded: a writer that stopped fails the test instead of hanging it.
/// </summary>
internal sealed class HeldWriter : IAsyncDisposable
{
    public static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    private readonly string? _path;
    private readonly TaskCompletionSource _gate = new();
    private Task<bool> _held = Task.FromResult(true);

    private HeldWriter(string? path, IProcurementStore store, string? postgres = null)
    {
        _path = path;
        Store = store;
        Postgres = postgres;
    }

    public IProcurementStore Store { get; }

    /// <summary>The PostgreSQL database's connection string, on a PostgreSQL run.</summary>
    public string? Postgres { get; }

    /// <summary>The log event the writer writes when a failed unit has the rest of its group run again.</summary>
    public static int GroupRunAgainEvent => 1005;

    public static async Task<HeldWriter> StartAsync(ILogger? logger = null)
    {
        HeldWriter writer;
        if (ServerHarness.OnPostgres)
        {
            var database = await ServerHarness.CreatePostgresDatabaseAsync();
            var store = new PostgresStore(database, new Forward<PostgresStore>(logger));
            store.Initialize(TimeProvider.System);
            writer = new HeldWriter(null, store, database);
        }
        else
        {
            var path = Path.Combine(Path.GetTempPath(), $"held-writer-{Guid.NewGuid():N}.db");
            var database = new SqliteDatabase(path);
            database.Initialize(TimeProvider.System);
            writer = new HeldWriter(path, new SqliteStore(database, new Forward<SqliteStore>(logger)));
        }

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
        await ((IAsyncDisposable)Store).DisposeAsync();
        if (_path is not null)
        {
            SqliteConnection.ClearAllPools();
            File.Delete(_path);
        }
    }

    /// <summary>Hands a store's log to the test's logger (or to none).</summary>
    private sealed class Forward<T>(ILogger? inner) : ILogger<T>
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => inner?.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => inner?.IsEnabled(logLevel) ?? false;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            inner?.Log(logLevel, eventId, state, exception, formatter);
    }
}
