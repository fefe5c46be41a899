using Grpc.Core;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Procurement.Api.V1;
using Procurement.Domain.Errors;
using Procurement.Server.Hosting;
using Procurement.Storage;
using Procurement.Storage.Sqlite;
using Procurement.TestSupport;

namespace Procurement.Storage.Tests;

/// <summary>
/// When the database refuses a commit (as on a full disk or an I/O error), no unit that would have
/// been committed is acknowledged, none of their writes stays, and nothing the SQLite writer keeps
/// in memory rests on them; the caller is told to retry with the same request id.
/// A commit is made to fail here by a check the database runs only at commit: on SQLite a
/// foreign-key violation deferred to it, on PostgreSQL a deferred constraint trigger that raises.
/// </summary>
public sealed class FailedCommitTests
{
    /// <summary>Leaves the running transaction unable to commit, after the unit that calls it succeeded.</summary>
    private static async Task BreakTheCommitAsync(IStoreSession s)
    {
        var db = ((StoreSession)s).Db;
        if (ServerHarness.OnPostgres)
        {
            using var flag = db.Statement("INSERT INTO test_commit_breaker (x) VALUES (1)");
            await flag.ExecuteAsync();
            return;
        }

        using (var defer = db.Statement("PRAGMA defer_foreign_keys = ON"))
        {
            await defer.ExecuteAsync();
        }

        using var orphan = db.Statement("INSERT INTO pool_capacity_changes (pool_id, effective_at_ms, capacity_units) VALUES ('no-such-pool', 0, 0)");
        await orphan.ExecuteAsync();
    }

    /// <summary>On PostgreSQL, a table whose rows make the commit of their transaction fail.</summary>
    private static async Task CreatePostgresBreakerAsync(string connectionString)
    {
        await using var connection = new Npgsql.NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var create = connection.CreateCommand();
        create.CommandText = PostgresBreakerSql;
        await create.ExecuteNonQueryAsync();
    }

    private const string PostgresBreakerSql = """
        CREATE TABLE test_commit_breaker (x integer);
        CREATE FUNCTION test_refuse_commit() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN RAISE EXCEPTION 'commit refused on purpose'; END $$;
        CREATE CONSTRAINT TRIGGER test_refuse_commit AFTER INSERT ON test_commit_breaker
          DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_refuse_commit();
        """;

    [Fact]
    public async Task AGroupThatCannotCommit_AcknowledgesNoneOfItsUnits_AndKeepsNoneOfTheirWrites()
    {
        await using var writer = await HeldWriter.StartAsync();
        if (writer.Postgres is { } postgres)
        {
            await CreatePostgresBreakerAsync(postgres);
        }

        var good = writer.InsertPool("p1");
        var breaking = writer.Write(BreakTheCommitAsync);
        await writer.ReleaseAsync();

        var goodFailure = await Assert.ThrowsAsync<CommitFailedException>(() => good);
        await Assert.ThrowsAsync<CommitFailedException>(() => breaking);
        if (ServerHarness.OnPostgres)
        {
            Assert.Equal("commit refused on purpose", Assert.IsType<Npgsql.PostgresException>(goodFailure.InnerException).MessageText);
        }
        else
        {
            Assert.Equal(19, Assert.IsType<SqliteException>(goodFailure.InnerException).SqliteErrorCode); // SQLITE_CONSTRAINT
        }

        Assert.False(await writer.HasPool("p1"));

        // The writer goes on: the next group commits, and what it wrote is read back.
        await writer.InsertPool("p1");
        Assert.True(await writer.HasPool("p1"));
    }

    [Fact]
    [Trait("Category", "SqliteOnly")]
    public async Task AGroupTheWriterCannotFinish_AcknowledgesNoneOfItsUnits_AndTheWriterGoesOn()
    {
        await using var writer = await HeldWriter.StartAsync();
        var good = writer.InsertPool("p1");
        // Ends the group's transaction behind the writer's back, opens another and writes in it before
        // failing: the writer's own rollback of the group then finds its transaction already over.
        var rogue = writer.Write(async s =>
        {
            var db = ((StoreSession)s).Db;
            db.Transaction!.Rollback();
            foreach (var sql in (string[])["BEGIN", "INSERT INTO api_keys (id, key_hash, role, created_at_ms) VALUES ('key_rogue', 'h', 'operator', 0)"])
            {
                using var statement = db.Statement(sql);
                await statement.ExecuteAsync();
            }

            throw new InvalidOperationException("a unit that ended its group's transaction");
        });
        var after = writer.InsertPool("p2");
        await writer.ReleaseAsync();

        await Assert.ThrowsAsync<CommitFailedException>(() => good);
        await Assert.ThrowsAsync<InvalidOperationException>(() => rogue);
        await Assert.ThrowsAsync<CommitFailedException>(() => after);
        Assert.False(await writer.HasPool("p1"));
        Assert.False(await writer.HasPool("p2"));
        Assert.Null(await writer.Store.ReadAsync(s => s.ApiKeys.FindByHashAsync("h"), CancellationToken.None));

        // The writer goes on with a transaction of its own.
        await writer.InsertPool("p1");
        Assert.True(await writer.HasPool("p1"));
    }

    [Fact]
    public async Task ARequestThatCannotCommit_IsUnavailable_HoldsNoCapacity_AndIsAdmittedWhenRetried()
    {
        var breaker = new CommitBreaker();
        await using var server = await ServerHarness.StartAsync(configure: services => services.AddSingleton<IProcurementStore>(sp =>
            breaker.Wrap(StoreFactory.Create(sp.GetRequiredService<IOptions<ServerOptions>>().Value.Database,
                sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILoggerFactory>()))));
        if (ServerHarness.OnPostgres)
        {
            await CreatePostgresBreakerAsync(server.Database);
        }

        await Fixtures.CreatePoolsAsync(server, h100Capacity: 10, h200Capacity: 10);
        var contract = await Fixtures.CreateActiveContractAsync(server, "lab-a", Fixtures.H100Terms(server.Clock.GetUtcNow(), reserved: 10, burst: 0));
        RequestAllocationRequest Request(long units, string requestId) => new()
        {
            RequestId = requestId, ContractId = contract.ContractId, PoolId = Fixtures.H100, Units = units,
        };
        // Admitted and committed: the writer now keeps the pool's view with these 4 units in it.
        await server.OperatorAllocations.RequestAllocationAsync(Request(4, Rpc.NewRequestId()));

        var requestId = Rpc.NewRequestId();
        breaker.Armed = true;
        await Rpc.FailsWith(StatusCode.Unavailable, ErrorReasons.StorageUnavailable, server.OperatorAllocations.RequestAllocationAsync(Request(6, requestId)));
        breaker.Armed = false;

        var status = await server.OperatorAllocations.GetPoolStatusAsync(new GetPoolStatusRequest { PoolId = Fixtures.H100 });
        Assert.Equal(4, status.ActiveUnits);
        // Had the SQLite writer kept its view of the failed group, the contract would hold 4 + 6 of
        // its 10 reserved units and burst 0, and the retry would be refused.
        var retried = await server.OperatorAllocations.RequestAllocationAsync(Request(6, requestId));
        Assert.Equal(Api.V1.AllocationState.Active, retried.Allocation.State);
        var listed = await server.OperatorAllocations.ListAllocationsAsync(new ListAllocationsRequest { ContractId = contract.ContractId });
        Assert.Equal([4L, 6L], listed.Allocations.Select(a => a.Units).Order());
        Assert.Equal(10, (await server.OperatorAllocations.GetPoolStatusAsync(new GetPoolStatusRequest { PoolId = Fixtures.H100 })).ActiveUnits);
    }

    /// <summary>While armed, every unit of work ends by leaving its group unable to commit.</summary>
    private sealed class CommitBreaker
    {
        public volatile bool Armed;

        public IProcurementStore Wrap(IProcurementStore inner) => new Breaking(inner, this);

        private sealed class Breaking(IProcurementStore inner, CommitBreaker breaker) : IProcurementStore, IAsyncDisposable
        {
            public Task<T> ReadAsync<T>(Func<IStoreSession, Task<T>> read, CancellationToken cancellationToken) => inner.ReadAsync(read, cancellationToken);

            public Task<T> ReadStatementAsync<T>(Func<IStoreSession, Task<T>> read, CancellationToken cancellationToken) => inner.ReadStatementAsync(read, cancellationToken);

            public Task<T> WriteAsync<T>(Func<IStoreSession, Task<T>> unitOfWork, CancellationToken cancellationToken) =>
                inner.WriteAsync(async s =>
                {
                    var result = await unitOfWork(s);
                    if (breaker.Armed)
                    {
                        await BreakTheCommitAsync(s);
                    }

                    return result;
                }, cancellationToken);

            public Task NextCommit => inner.NextCommit;

            public long? StableCommitCount => inner.StableCommitCount;

            public ValueTask DisposeAsync() => inner is IAsyncDisposable d ? d.DisposeAsync() : ValueTask.CompletedTask;
        }
    }
}
