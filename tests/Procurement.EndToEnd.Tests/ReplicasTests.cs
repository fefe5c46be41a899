using System.Collections.Concurrent;
using Procurement.Api.V1;
using Procurement.Client;
using Xunit.Abstractions;

namespace Procurement.EndToEnd.Tests;

/// <summary>
/// Two server processes on one PostgreSQL database take concurrent requests for the same pool. Runs
/// where PROCUREMENT_TEST_POSTGRES names a cluster (.ci/run starts one); skipped elsewhere.
/// </summary>
public sealed class ReplicasTests(ITestOutputHelper output)
{
    [SkippableFact]
    public async Task TwoReplicas_OnePool_NoOversubscription_EveryAcknowledgedWrite_CompleteEvents()
    {
        var cluster = Environment.GetEnvironmentVariable("PROCUREMENT_TEST_POSTGRES");
        Skip.If(string.IsNullOrEmpty(cluster), "PROCUREMENT_TEST_POSTGRES is not set (no PostgreSQL cluster)");

        var database = "replicas_" + Guid.NewGuid().ToString("N");
        await using (var admin = new Npgsql.NpgsqlConnection(cluster + ";Database=postgres;Pooling=false"))
        {
            await admin.OpenAsync();
            await using var create = admin.CreateCommand();
            create.CommandText = $"CREATE DATABASE {database}";
            await create.ExecuteNonQueryAsync();
        }

        var folder = Directory.CreateTempSubdirectory("procurement-replicas-").FullName;
        var key = "replica-operator-" + Guid.NewGuid().ToString("N");
        var connection = $"{cluster};Database={database}";
        await using var a = await ServerProcess.StartAsync(connection, key, Path.Combine(folder, "a.log"));
        await using var b = await ServerProcess.StartAsync(connection, key, Path.Combine(folder, "b.log"));
        ProcurementClient Client(ServerProcess s) => ProcurementClient.Create(new ProcurementClientOptions { Endpoint = s.Endpoint, ApiKey = key }.With(CrashSafetyTests.Configure));
        using var clientA = Client(a);
        using var clientB = Client(b);
        var (deal, contracts, reserved) = await CrashSafetyTests.SetUpAsync(clientA);

        // A watcher on replica A, started before the load, must see what replica B commits too.
        using var watchStop = new CancellationTokenSource();
        var watched = new ConcurrentQueue<AllocationEvent>();
        var watcher = Task.Run(async () =>
        {
            try
            {
                await foreach (var e in clientA.Allocations.WatchAsync(0, deal.H100, cancellationToken: watchStop.Token))
                {
                    watched.Enqueue(e);
                }
            }
            catch (OperationCanceledException)
            {
            }
        });

        var acknowledged = new ConcurrentDictionary<string, (string Replica, Allocation Allocation)>();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        var writers = Enumerable.Range(0, 16).Select(i => Task.Run(async () =>
        {
            var (client, replica) = i % 2 == 0 ? (clientA, "a") : (clientB, "b");
            var random = new Random(i);
            var mine = new List<string>();
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    if (mine.Count > 0 && random.Next(3) == 0)
                    {
                        var id = mine[random.Next(mine.Count)];
                        mine.Remove(id);
                        await client.Allocations.ReleaseAsync(id);
                        continue;
                    }

                    var response = await client.Allocations.RequestAsync(new RequestAllocationRequest
                    {
                        ContractId = contracts[random.Next(contracts.Count)].ContractId, PoolId = deal.H100, Units = random.Next(1, 80),
                        WaitIfUnavailable = random.Next(4) == 0,
                    });
                    acknowledged[response.Allocation.AllocationId] = (replica, response.Allocation);
                    mine.Add(response.Allocation.AllocationId);
                }
                catch (ProcurementRpcException e) when (e.StatusCode is Grpc.Core.StatusCode.ResourceExhausted or Grpc.Core.StatusCode.FailedPrecondition)
                {
                }
            }
        })).ToList();
        await Task.WhenAll(writers);
        output.WriteLine($"acknowledged: {acknowledged.Values.Count(v => v.Replica == "a")} via A, {acknowledged.Values.Count(v => v.Replica == "b")} via B");
        Assert.True(acknowledged.Values.Count(v => v.Replica == "b") > 20);

        foreach (var (id, (_, allocation)) in acknowledged)
        {
            var stored = await clientB.Allocations.GetAsync(id);
            Assert.Equal((allocation.ContractId, allocation.Units), (stored.ContractId, stored.Units));
        }

        await Invariants.CheckPoolAsync(clientB, deal.H100, 500, reserved);
        var all = await Invariants.AllEventsAsync(clientB, deal.H100);
        Assert.Equal(Enumerable.Range(1, all.Count).Select(i => (long)i), all.Select(e => e.Sequence)); // gap-free across replicas

        // The watcher on A saw every event, including those committed through B, in order, once.
        for (var i = 0; i < 50 && watched.Count < all.Count; i++)
        {
            await Task.Delay(100);
        }

        await watchStop.CancelAsync();
        await watcher;
        Assert.Equal(all.Select(e => e.Sequence), watched.Select(e => e.Sequence));
        Directory.Delete(folder, recursive: true);
    }
}
