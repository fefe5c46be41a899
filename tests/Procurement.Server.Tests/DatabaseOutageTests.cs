using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Procurement.Api.V1;
using Procurement.Domain.Errors;
using Procurement.Storage;
using Procurement.Storage.Postgres;
using Procurement.TestSupport;

namespace Procurement.Server.Tests;

/// <summary>
/// When PostgreSQL cannot be reached or drops the server's connections, reads and writes answer
/// UNAVAILABLE (reason STORAGE_UNAVAILABLE), which clients retry, rather than INTERNAL; nothing is
/// written, and a request retried with its request id once the database is back is applied once.
/// </summary>
public sealed class DatabaseOutageTests
{
    [Fact]
    public async Task AStoreThatCannotReachItsDatabase_FailsReadsAndWritesAsUnavailable_WithoutRunningTheUnit()
    {
        // Nothing listens on a port just freed.
        await using var store = new PostgresStore(
            $"Host=127.0.0.1;Port={ServerHarness.FreePort()};Username=nobody;Database=none;Timeout=5", NullLogger<PostgresStore>.Instance);

        var read = await Assert.ThrowsAsync<StorageUnavailableException>(() => store.ReadAsync(s => s.Pools.GetAsync("p1"), CancellationToken.None));
        Assert.IsAssignableFrom<NpgsqlException>(read.InnerException);
        var ran = false;
        await Assert.ThrowsAsync<StorageUnavailableException>(() => store.WriteAsync(_ =>
        {
            ran = true;
            return Task.FromResult(true);
        }, CancellationToken.None));
        Assert.False(ran);
    }

    [SkippableFact]
    public async Task AUnitThatLosesEveryRace_IsUnavailableAfterItsLastAttempt()
    {
        Skip.IfNot(ServerHarness.OnPostgres, "PROCUREMENT_TEST_POSTGRES is not set (no PostgreSQL cluster)");
        await using var server = await ServerHarness.StartAsync();
        var store = server.Services.GetRequiredService<IProcurementStore>();

        var attempts = 0;
        var failure = await Assert.ThrowsAsync<StorageUnavailableException>(() => store.WriteAsync<bool>(_ =>
        {
            attempts++;
            throw new ConcurrentWriteException("pool", "p1");
        }, CancellationToken.None));

        Assert.IsType<ConcurrentWriteException>(failure.InnerException);
        Assert.Equal(PostgresStore.MaxAttempts, attempts);
    }

    [SkippableFact]
    public async Task WhileTheDatabaseRefusesConnections_CallsAreUnavailable_AndARetriedRequestIsAdmittedOnceAfter()
    {
        Skip.IfNot(ServerHarness.OnPostgres, "PROCUREMENT_TEST_POSTGRES is not set (no PostgreSQL cluster)");
        await using var server = await ServerHarness.StartAsync();
        await Fixtures.CreatePoolsAsync(server, h100Capacity: 10, h200Capacity: 10);
        var contract = await Fixtures.CreateActiveContractAsync(server, "lab-a", Fixtures.H100Terms(server.Clock.GetUtcNow(), reserved: 10, burst: 0));
        var request = new RequestAllocationRequest { RequestId = Rpc.NewRequestId(), ContractId = contract.ContractId, PoolId = Fixtures.H100, Units = 4 };

        // The server's open connections are cut, and new ones refused, as in an outage or a restart.
        await AllowConnectionsAsync(server.Database, allow: false);
        try
        {
            await Rpc.FailsWith(StatusCode.Unavailable, ErrorReasons.StorageUnavailable, server.OperatorAllocations.RequestAllocationAsync(request));
            await Rpc.FailsWith(StatusCode.Unavailable, ErrorReasons.StorageUnavailable,
                server.OperatorContracts.GetContractAsync(new GetContractRequest { ContractId = contract.ContractId }));
        }
        finally
        {
            await AllowConnectionsAsync(server.Database, allow: true);
        }

        var admitted = await server.OperatorAllocations.RequestAllocationAsync(request);
        Assert.Equal(Api.V1.AllocationState.Active, admitted.Allocation.State);
        var listed = await server.OperatorAllocations.ListAllocationsAsync(new ListAllocationsRequest { ContractId = contract.ContractId });
        Assert.Equal(admitted.Allocation.AllocationId, Assert.Single(listed.Allocations).AllocationId);
    }

    /// <summary>Opens or closes the database to connections; closing also ends every connection it has.</summary>
    private static async Task AllowConnectionsAsync(string connectionString, bool allow)
    {
        var database = new NpgsqlConnectionStringBuilder(connectionString).Database!;
        await using var admin = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Database = "postgres", Pooling = false }.ToString());
        await admin.OpenAsync();
        await using var command = admin.CreateCommand();
        command.CommandText = allow
            ? $"ALTER DATABASE {database} ALLOW_CONNECTIONS true"
            : $"ALTER DATABASE {database} ALLOW_CONNECTIONS false; SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'";
        await command.ExecuteNonQueryAsync();
    }
}
