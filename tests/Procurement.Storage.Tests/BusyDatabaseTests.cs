using Dapper;
using Grpc.Core;
using Microsoft.Data.Sqlite;
using Procurement.Api.V1;
using Procurement.Domain.Errors;
using Procurement.Server.Hosting;
using Procurement.Storage.Sqlite;
using Procurement.TestSupport;

namespace Procurement.Storage.Tests;

/// <summary>
/// Another process (the keys command, a backup, an operator's sqlite3 shell) may hold the SQLite
/// file's write lock. A write waits for it up to <c>Procurement:SqliteBusyTimeout</c>, then is
/// answered UNAVAILABLE, STORAGE_BUSY, with nothing written; reads go on meanwhile; once the lock is
/// let go, a retry with the same request id is applied once.
/// </summary>
[Trait("Category", "SqliteOnly")]
public sealed class BusyDatabaseTests
{
    [Fact]
    public async Task AWriteLockHeldByAnotherProcess_MakesWritesBusy_NotReads_AndTheRetryIsAppliedOnce()
    {
        await using var server = await ServerHarness.StartAsync(extraArgs: ["--Procurement:SqliteBusyTimeout=00:00:01"]);
        await Fixtures.CreatePoolsAsync(server, h100Capacity: 10, h200Capacity: 10);
        var contract = await Fixtures.CreateActiveContractAsync(server, "lab-a", Fixtures.H100Terms(server.Clock.GetUtcNow(), reserved: 10, burst: 0));
        var request = new RequestAllocationRequest { RequestId = Rpc.NewRequestId(), ContractId = contract.ContractId, PoolId = Fixtures.H100, Units = 4 };

        await using (var other = new SqliteConnection($"Data Source={server.DatabasePath};Pooling=False"))
        {
            await other.OpenAsync();
            await ExecuteAsync(other, "BEGIN IMMEDIATE");

            var busy = await Rpc.FailsWith(StatusCode.Unavailable, ErrorReasons.StorageBusy, server.OperatorAllocations.RequestAllocationAsync(request));
            Assert.Contains("retry with the same request_id", busy.Status.Detail);
            var status = await server.OperatorAllocations.GetPoolStatusAsync(new GetPoolStatusRequest { PoolId = Fixtures.H100 });
            Assert.Equal(0, status.ActiveUnits);

            await ExecuteAsync(other, "ROLLBACK");
        }

        var admitted = await server.OperatorAllocations.RequestAllocationAsync(request);
        Assert.Equal(Api.V1.AllocationState.Active, admitted.Allocation.State);
        var replayed = await server.OperatorAllocations.RequestAllocationAsync(request);
        Assert.Equal(admitted.Allocation.AllocationId, replayed.Allocation.AllocationId);
        var listed = await server.OperatorAllocations.ListAllocationsAsync(new ListAllocationsRequest { ContractId = contract.ContractId });
        Assert.Equal([4L], listed.Allocations.Select(a => a.Units));
    }

    [Fact]
    public void EveryConnectionToTheFile_WaitsForTheLockAsLongAsConfigured()
    {
        var path = Path.Combine(Path.GetTempPath(), $"busy-timeout-{Guid.NewGuid():N}.db");
        try
        {
            var database = new SqliteDatabase(path, TimeSpan.FromSeconds(2));
            Assert.Equal(2, new SqliteConnectionStringBuilder(database.ConnectionString).DefaultTimeout);
            using (var writer = database.Open())
            {
                Assert.Equal(2000L, writer.ExecuteScalar<long>("PRAGMA busy_timeout"));
            }

            using (var reader = database.OpenReader(mapped: false))
            {
                Assert.Equal(2000L, reader.ExecuteScalar<long>("PRAGMA busy_timeout"));
            }

            Assert.Throws<ArgumentOutOfRangeException>(() => new SqliteDatabase(path, TimeSpan.FromMilliseconds(500)));
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            File.Delete(path);
        }
    }

    private static async Task ExecuteAsync(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }
}
