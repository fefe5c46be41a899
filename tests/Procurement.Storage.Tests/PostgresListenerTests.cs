using Dapper;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Procurement.Storage.Postgres;
using Procurement.TestSupport;

namespace Procurement.Storage.Tests;

/// <summary>
/// A PostgreSQL store listens for other replicas' commits on a connection of its own. Disposing the
/// store stops that listener whatever it is doing: opening its connection, subscribing, or waiting
/// for a notification. (A cancellation that reached Npgsql's wait just as it began was lost, and a
/// store disposed right after it was made, as the keys command's bad-usage path does, hung CI; each
/// wait is now bounded.) A wait that ends at its bound keeps the subscription.
/// </summary>
public sealed class PostgresListenerTests
{
    [SkippableFact]
    public async Task AStoreDisposedAtAnyPointOfItsListenersStart_Stops()
    {
        Skip.IfNot(ServerHarness.OnPostgres, "PROCUREMENT_TEST_POSTGRES is not set (no PostgreSQL cluster)");
        var connectionString = await ServerHarness.CreatePostgresDatabaseAsync();

        for (var i = 0; i < 400; i++)
        {
            var store = new PostgresStore(connectionString, NullLogger<PostgresStore>.Instance);
            // Spread the dispose over the listener's start, 50 µs apart: before it opens its connection,
            // while it subscribes, as its wait begins, and while it waits.
            var pause = TimeSpan.FromMicroseconds(50 * i);
            var watch = System.Diagnostics.Stopwatch.StartNew();
            while (watch.Elapsed < pause)
            {
                Thread.SpinWait(100);
            }

            var disposed = store.DisposeAsync().AsTask();
            var finished = await Task.WhenAny(disposed, Task.Delay(TimeSpan.FromSeconds(10)));
            Assert.True(finished == disposed, $"Store {i} (disposed {pause.TotalMilliseconds} ms after it was made) did not stop within 10 s.");
            await disposed;
        }
    }

    [SkippableFact]
    public async Task AWaitThatEndsAtItsBound_KeepsTheSubscription()
    {
        Skip.IfNot(ServerHarness.OnPostgres, "PROCUREMENT_TEST_POSTGRES is not set (no PostgreSQL cluster)");
        var connectionString = await ServerHarness.CreatePostgresDatabaseAsync();
        var log = new ListLogger<PostgresStore>();
        await using var store = new PostgresStore(connectionString, log);

        // Long enough for the listener to subscribe and for two of its waits to end at their bound.
        await Task.Delay(PostgresStore.ListenWaitLimit * 2.5);
        var next = store.NextCommit;
        await using (var other = new NpgsqlConnection(connectionString))
        {
            await other.ExecuteAsync("NOTIFY procurement_commits");
        }

        await next.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Empty(log.Messages(1102)); // never reconnected
    }
}
