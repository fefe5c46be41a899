using System.Collections.Concurrent;
using System.Diagnostics;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.DependencyInjection;
using Procurement.Api.V1;
using Procurement.Client;
using Xunit.Abstractions;

namespace Procurement.EndToEnd.Tests;

/// <summary>
/// Server processes on one PostgreSQL database take concurrent writes for two pools, are killed, and
/// lose their database for a while. Runs where PROCUREMENT_TEST_POSTGRES names a cluster (.ci/run
/// starts one); skipped elsewhere.
/// </summary>
public sealed class ReplicasTests(ITestOutputHelper output)
{
    private static string? Cluster => Environment.GetEnvironmentVariable("PROCUREMENT_TEST_POSTGRES") is { Length: > 0 } c ? c : null;

    [SkippableFact]
    public async Task ThreeReplicas_TwoPools_EveryWatcherSeesEveryEventOnceInOneOrder_AcrossReconnects()
    {
        Skip.If(Cluster is null, "PROCUREMENT_TEST_POSTGRES is not set (no PostgreSQL cluster)");
        await using var set = await ReplicaSet.StartAsync(3);
        var (deal, contracts, reserved) = await SetUpTwoPoolsAsync(set.Clients[0]);

        // Watchers started before the load: one on A, one on B, and one that moves to the next
        // replica every few hundred milliseconds, resuming from the last position it was given.
        using var watchStop = new CancellationTokenSource();
        var onA = Watch(set.Channels[0], set.Headers, () => 0, watchStop.Token);
        var onB = Watch(set.Channels[1], set.Headers, () => 0, watchStop.Token);
        var hopped = new List<AllocationEvent>();
        var hops = 0;
        var hopper = Task.Run(async () =>
        {
            while (!watchStop.IsCancellationRequested)
            {
                using var leg = CancellationTokenSource.CreateLinkedTokenSource(watchStop.Token);
                leg.CancelAfter(TimeSpan.FromMilliseconds(300));
                var events = await WatchUntilCancelledAsync(set.Channels[hops++ % 3], set.Headers, hopped.Count == 0 ? 0 : hopped[^1].Sequence, leg.Token);
                hopped.AddRange(events);
            }
        });

        var acknowledged = new ConcurrentDictionary<string, Allocation>();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(6));
        var writers = Enumerable.Range(0, 12).Select(i => Task.Run(async () =>
        {
            var client = set.Clients[i % 3];
            var pool = i % 2 == 0 ? deal.H100 : deal.H200;
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
                        ContractId = contracts[random.Next(contracts.Count)].ContractId, PoolId = pool, Units = random.Next(1, 80),
                        WaitIfUnavailable = random.Next(4) == 0,
                    });
                    acknowledged[response.Allocation.AllocationId] = response.Allocation;
                    mine.Add(response.Allocation.AllocationId);
                }
                catch (ProcurementRpcException e) when (e.StatusCode is StatusCode.ResourceExhausted or StatusCode.FailedPrecondition)
                {
                }
            }
        })).ToList();
        await Task.WhenAll(writers);
        output.WriteLine($"acknowledged: {acknowledged.Count} requests over 3 replicas and 2 pools; the hopping watcher reconnected {hops} times");

        foreach (var (id, allocation) in acknowledged)
        {
            var stored = await set.Clients[2].Allocations.GetAsync(id);
            Assert.Equal((allocation.ContractId, allocation.PoolId, allocation.Units), (stored.ContractId, stored.PoolId, stored.Units));
        }

        await Invariants.CheckPoolAsync(set.Clients[2], deal.H100, 500, reserved[deal.H100]);
        await Invariants.CheckPoolAsync(set.Clients[2], deal.H200, 300, reserved[deal.H200]);
        await StatementsMatchTheirHistoryAsync(set, contracts);
        var all = await WatchUntilQuietAsync(set.Channels[2], set.Headers);
        Assert.True(all.Zip(all.Skip(1)).All(p => p.Second.Sequence > p.First.Sequence), "the log's positions increase");
        // Requests and releases are timed after their pool's lock, so in each pool their events' times
        // follow the log (expiries carry the instant they were due, which may be earlier).
        foreach (var pool in all.Where(e => e.Type != AllocationEventType.Expired).GroupBy(e => e.PoolId))
        {
            var late = pool.Zip(pool.Skip(1)).FirstOrDefault(p => p.Second.Time.ToDateTimeOffset() < p.First.Time.ToDateTimeOffset());
            Assert.True(late == default, $"in pool {pool.Key}, event {late.Second?.Sequence} at {late.Second?.Time} follows event {late.First?.Sequence} at {late.First?.Time}");
        }

        Assert.Equal(acknowledged.Count, all.Where(e => e.Type is AllocationEventType.Admitted or AllocationEventType.Queued && acknowledged.ContainsKey(e.AllocationId))
            .Select(e => e.AllocationId).Distinct().Count());

        // Every watcher, whichever replica it was on and however often it moved, saw the same events in the same order, once.
        var expected = all.Select(e => (e.Sequence, e.AllocationId, e.Type)).ToList();
        for (var i = 0; i < 100 && (onA.Events.Count < all.Count || onB.Events.Count < all.Count || hopped.Count < all.Count); i++)
        {
            await Task.Delay(100);
        }

        await watchStop.CancelAsync();
        await Task.WhenAll(onA.Task, onB.Task, hopper);
        Assert.Equal(expected, onA.Events.Select(e => (e.Sequence, e.AllocationId, e.Type)));
        Assert.Equal(expected, onB.Events.Select(e => (e.Sequence, e.AllocationId, e.Type)));
        Assert.Equal(expected, hopped.Select(e => (e.Sequence, e.AllocationId, e.Type)));
    }

    [SkippableFact]
    public async Task AReplicaKilledAtRandomMoments_LosesNoAcknowledgedWrite_WhileTheOtherKeepsServing()
    {
        Skip.If(Cluster is null, "PROCUREMENT_TEST_POSTGRES is not set (no PostgreSQL cluster)");
        await using var set = await ReplicaSet.StartAsync(2);
        var (deal, contracts, reserved) = await SetUpTwoPoolsAsync(set.Clients[0]);

        // The workload's writers spread their calls over both replicas, as a client given a name that
        // resolves to both (a headless Service) does; here a static resolver gives the two addresses.
        var resolver = new ServiceCollection()
            .AddSingleton<Grpc.Net.Client.Balancer.ResolverFactory>(new Grpc.Net.Client.Balancer.StaticResolverFactory(_ =>
                [.. set.Servers.Select(sv => new Grpc.Net.Client.Balancer.BalancerAddress("127.0.0.1", sv.Port))]))
            .BuildServiceProvider();
        var workload = new Workload(() => ProcurementClient.Create(new ProcurementClientOptions
        {
            Endpoint = new Uri("static:///procurement"), ApiKey = set.Key, ConfigureChannel = channel => channel.ServiceProvider = resolver,
        }.With(CrashSafetyTests.Configure)), deal, contracts, seed: 29);
        using var stop = new CancellationTokenSource();
        var writers = workload.RunAsync(stop.Token);

        // One replica dies and comes back, again and again; the other is asked to decide throughout.
        var random = new Random(29);
        var servedWhileDown = 0;
        const int Kills = 12;
        for (var kill = 0; kill < Kills; kill++)
        {
            await Task.Delay(random.Next(150, 700));
            var (victim, survivor) = kill % 2 == 0 ? (0, 1) : (1, 0);
            set.Servers[victim].Kill();
            var allocation = (await set.Clients[survivor].Allocations.RequestAsync(new RequestAllocationRequest
            {
                ContractId = contracts[0].ContractId, PoolId = deal.H200, Units = 1,
            })).Allocation;
            await set.Clients[survivor].Allocations.ReleaseAsync(allocation.AllocationId);
            servedWhileDown++;
            await set.Servers[victim].StartAsync();
        }

        await Task.Delay(500);
        await stop.CancelAsync();
        await writers;
        output.WriteLine($"{Kills} kills: {workload.Requests.Count} requests, {workload.Releases.Count} releases, {workload.Samples.Count} samples, " +
            $"{workload.Amendments.Count} amendments acknowledged; {workload.Unknown} without an answer: " +
            string.Join(", ", workload.UnknownKinds.Select(k => $"{k.Key} × {k.Value}")));
        Assert.Equal(Kills, servedWhileDown);
        Assert.True(workload.Requests.Count > 50, "the writers should have got through many requests");

        await workload.CheckAcknowledgedAsync(set.Clients[0]);
        await Invariants.CheckPoolAsync(set.Clients[1], deal.H100, 500, reserved[deal.H100]);
        await Invariants.CheckPoolAsync(set.Clients[1], deal.H200, 300, reserved[deal.H200]);
    }

    [SkippableFact]
    public async Task PostgresRestartedUnderLoad_CallsAreUnavailableWhileItIsDown_AndTheReplicasRecoverByThemselves()
    {
        Skip.If(Cluster is null, "PROCUREMENT_TEST_POSTGRES is not set (no PostgreSQL cluster)");
        var dataDir = Environment.GetEnvironmentVariable("PROCUREMENT_PG_DIR");
        Skip.If(string.IsNullOrEmpty(dataDir), "PROCUREMENT_PG_DIR is not set (the cluster is not this run's to restart)");
        await using var set = await ReplicaSet.StartAsync(2);
        var (deal, contracts, reserved) = await SetUpTwoPoolsAsync(set.Clients[0]);

        // Callers without retries, so every refusal is seen as the server gave it.
        var failures = new ConcurrentDictionary<string, int>();
        var acknowledged = new ConcurrentDictionary<string, Allocation>();
        using var stop = new CancellationTokenSource();
        var callers = Enumerable.Range(0, 8).Select(i => Task.Run(async () =>
        {
            var stub = new AllocationService.AllocationServiceClient(set.Channels[i % 2]);
            var random = new Random(i);
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    var response = await stub.RequestAllocationAsync(new RequestAllocationRequest
                    {
                        RequestId = Guid.NewGuid().ToString(), ContractId = contracts[random.Next(contracts.Count)].ContractId,
                        PoolId = i % 4 < 2 ? deal.H100 : deal.H200, Units = random.Next(1, 5),
                    }, set.Headers, deadline: TimeProvider.System.GetUtcNow().UtcDateTime.AddSeconds(20));
                    acknowledged[response.Allocation.AllocationId] = response.Allocation;
                    await stub.ReleaseAllocationAsync(new ReleaseAllocationRequest { RequestId = Guid.NewGuid().ToString(), AllocationId = response.Allocation.AllocationId },
                        set.Headers, deadline: TimeProvider.System.GetUtcNow().UtcDateTime.AddSeconds(20));
                }
                catch (RpcException e) when (e.StatusCode is StatusCode.ResourceExhausted or StatusCode.FailedPrecondition)
                {
                }
                catch (RpcException e)
                {
                    failures.AddOrUpdate($"{e.StatusCode}/{Reason(e)}", 1, (_, n) => n + 1);
                    await Task.Delay(20);
                }
            }
        })).ToList();

        await Task.Delay(1000);
        var before = acknowledged.Count;
        var restart = Stopwatch.StartNew();
        await PgCtlAsync(dataDir!, "restart -m fast -w");
        restart.Stop();

        // Back by themselves: each replica decides again, and says it is ready, without being restarted.
        var recovered = Stopwatch.StartNew();
        foreach (var (channel, client) in set.Channels.Zip(set.Clients))
        {
            var health = new Grpc.Health.V1.Health.HealthClient(channel);
            while ((await health.CheckAsync(new Grpc.Health.V1.HealthCheckRequest { Service = "readiness" })).Status != Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving)
            {
                Assert.True(recovered.Elapsed < TimeSpan.FromSeconds(30), "a replica stayed unready after PostgreSQL came back");
                await Task.Delay(100);
            }

            var allocation = (await client.Allocations.RequestAsync(new RequestAllocationRequest { ContractId = contracts[0].ContractId, PoolId = deal.H200, Units = 1 })).Allocation;
            await client.Allocations.ReleaseAsync(allocation.AllocationId);
        }

        await Task.Delay(1000);
        await stop.CancelAsync();
        await Task.WhenAll(callers);
        output.WriteLine($"restart took {restart.Elapsed}; recovered {recovered.Elapsed} after; {before} requests acknowledged before it, {acknowledged.Count} in all; refusals: " +
            string.Join(", ", failures.Select(f => $"{f.Key} × {f.Value}")));

        // While it was down, calls were told to come back (UNAVAILABLE), never that the server broke.
        Assert.True(failures.ContainsKey($"{StatusCode.Unavailable}/STORAGE_UNAVAILABLE"), "no call was refused as STORAGE_UNAVAILABLE");
        Assert.All(failures.Keys, k => Assert.StartsWith($"{StatusCode.Unavailable}/", k));
        Assert.True(acknowledged.Count > before, "the replicas took requests again after the restart");
        foreach (var (id, allocation) in acknowledged)
        {
            var stored = await set.Clients[1].Allocations.GetAsync(id);
            Assert.Equal((allocation.ContractId, allocation.Units), (stored.ContractId, stored.Units));
        }

        await Invariants.CheckPoolAsync(set.Clients[0], deal.H100, 500, reserved[deal.H100]);
        await Invariants.CheckPoolAsync(set.Clients[0], deal.H200, 300, reserved[deal.H200]);
    }

    private static string Reason(RpcException e) => ProcurementRpcException.From(e).Reason ?? "";

    private static async Task PgCtlAsync(string dir, string arguments)
    {
        var bin = Directory.GetDirectories("/usr/lib/postgresql").Order().Last();
        var info = new ProcessStartInfo("su") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "postgres", "-s", "/bin/sh", "-c", $"{bin}/bin/pg_ctl -D {dir}/data {arguments}" })
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info)!;
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"pg_ctl {arguments}: {await process.StandardError.ReadToEndAsync()}");
    }

    /// <summary>
    /// Once every replica has folded past the load (the folders run each second, five seconds behind
    /// now, all at once on one database), each contract's statement as served equals, byte for byte,
    /// the one recomputed from every interval (<c>statements verify</c>).
    /// </summary>
    private async Task StatementsMatchTheirHistoryAsync(ReplicaSet set, IReadOnlyList<Contract> contracts)
    {
        var database = set.Servers[0].DatabasePath;
        var loadEnded = TimeProvider.System.GetUtcNow().ToUnixTimeMilliseconds();
        await using (var connection = new Npgsql.NpgsqlConnection(database))
        {
            await connection.OpenAsync();
            for (var waited = 0; ; waited++)
            {
                await using var marks = new Npgsql.NpgsqlCommand("SELECT COUNT(*) FROM pool_fold_marks WHERE folded_to_ms >= @t", connection);
                marks.Parameters.AddWithValue("t", loadEnded);
                if ((long)(await marks.ExecuteScalarAsync())! == 2)
                {
                    break;
                }

                Assert.True(waited < 300, "both pools are folded within 30 s of the load");
                await Task.Delay(100);
            }
        }

        var month = TimeProvider.System.GetUtcNow().ToString("yyyy-MM", System.Globalization.CultureInfo.InvariantCulture);
        foreach (var contract in contracts)
        {
            var info = new System.Diagnostics.ProcessStartInfo("dotnet")
            {
                ArgumentList = { await ServerProcess.PublishedServerAsync(), "statements", "verify", "--contract", contract.ContractId, "--month", month, "--db", database },
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using var verify = System.Diagnostics.Process.Start(info)!;
            var stdout = verify.StandardOutput.ReadToEndAsync();
            var stderr = verify.StandardError.ReadToEndAsync();
            await verify.WaitForExitAsync();
            output.WriteLine((await stdout).Trim());
            Assert.True(verify.ExitCode == 0, $"statements verify {contract.ContractId}: {await stdout}{await stderr}");
        }
    }

    /// <summary>Two pools (H100 of 500 units, H200 of 300) and three contracts entitled to both.</summary>
    private static async Task<(Deal Deal, List<Contract> Contracts, Dictionary<string, Dictionary<string, long>> Reserved)> SetUpTwoPoolsAsync(ProcurementClient client)
    {
        var deal = new Deal("replicas");
        await client.Allocations.CreatePoolAsync(new CreatePoolRequest { PoolId = deal.H100, DisplayName = "H100", Region = "r", AcceleratorType = "H100-SXM-80GB", CapacityUnits = 500 });
        await client.Allocations.CreatePoolAsync(new CreatePoolRequest { PoolId = deal.H200, DisplayName = "H200", Region = "r", AcceleratorType = "H200-SXM-141GB", CapacityUnits = 300 });
        var now = TimeProvider.System.GetUtcNow();
        var monthStart = new DateTimeOffset(now.Year, now.Month, 1, 0, 0, 0, TimeSpan.Zero);
        var contracts = new List<Contract>();
        var reserved = new Dictionary<string, Dictionary<string, long>> { [deal.H100] = [], [deal.H200] = [] };
        foreach (var (tenant, r, b, priority, preempt) in new[] { ("lab-a", 150L, 250L, 5, true), ("lab-b", 100L, 300L, 1, false), ("lab-c", 0L, 200L, 3, true) })
        {
            var terms = deal.Headline(monthStart);
            terms.Entitlements.Clear();
            terms.Entitlements.Add(new PoolEntitlement { PoolId = deal.H100, ReservedUnits = r, BurstLimitUnits = b });
            terms.Entitlements.Add(new PoolEntitlement { PoolId = deal.H200, ReservedUnits = r / 2, BurstLimitUnits = b });
            terms.PriorityAccess = new PriorityAccess { Priority = priority, PreemptLowerPriorityBurst = preempt };
            var contract = await Deal.ActiveContractAsync(client, tenant, terms);
            contracts.Add(contract);
            reserved[deal.H100][contract.ContractId] = r;
            reserved[deal.H200][contract.ContractId] = r / 2;
        }

        return (deal, contracts, reserved);
    }

    private sealed record Watcher(List<AllocationEvent> Events, Task Task);

    private static Watcher Watch(GrpcChannel channel, Metadata headers, Func<long> after, CancellationToken cancellationToken)
    {
        var events = new List<AllocationEvent>();
        return new Watcher(events, Task.Run(() => WatchUntilCancelledAsync(channel, headers, after(), cancellationToken, events), CancellationToken.None));
    }

    /// <summary>Every event after <paramref name="after"/> the stream gives until cancelled (into <paramref name="into"/> as they come).</summary>
    private static async Task<List<AllocationEvent>> WatchUntilCancelledAsync(GrpcChannel channel, Metadata headers, long after, CancellationToken cancellationToken,
        List<AllocationEvent>? into = null)
    {
        var events = into ?? [];
        var stub = new AllocationService.AllocationServiceClient(channel);
        using var call = stub.WatchAllocations(new WatchAllocationsRequest { AfterSequence = after }, headers, cancellationToken: cancellationToken);
        try
        {
            while (await call.ResponseStream.MoveNext(cancellationToken))
            {
                events.Add(call.ResponseStream.Current.Event);
            }
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled)
        {
        }
        catch (OperationCanceledException)
        {
        }

        return into is null ? events : [];
    }

    /// <summary>Every event from position 0, read until the stream has been quiet for two seconds.</summary>
    private static async Task<List<AllocationEvent>> WatchUntilQuietAsync(GrpcChannel channel, Metadata headers)
    {
        var events = new List<AllocationEvent>();
        var stub = new AllocationService.AllocationServiceClient(channel);
        using var call = stub.WatchAllocations(new WatchAllocationsRequest(), headers);
        while (true)
        {
            using var quiet = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try
            {
                if (!await call.ResponseStream.MoveNext(quiet.Token))
                {
                    break;
                }
            }
            catch (Exception e) when (e is OperationCanceledException || e is RpcException { StatusCode: StatusCode.Cancelled })
            {
                break;
            }

            events.Add(call.ResponseStream.Current.Event);
        }

        return events;
    }

    /// <summary>Replicas on a fresh database of the test cluster, with a client and a channel to each.</summary>
    private sealed class ReplicaSet : IAsyncDisposable
    {
        private readonly string _folder;

        private ReplicaSet(string folder, string key, List<ServerProcess> servers)
        {
            _folder = folder;
            Key = key;
            Servers = servers;
            Headers = new Metadata { { "authorization", $"Bearer {key}" } };
            Clients = [.. servers.Select(s => ProcurementClient.Create(new ProcurementClientOptions { Endpoint = s.Endpoint, ApiKey = key }.With(CrashSafetyTests.Configure)))];
            Channels = [.. servers.Select(s => GrpcChannel.ForAddress(s.Endpoint))];
        }

        public string Key { get; }

        public Metadata Headers { get; }

        public List<ServerProcess> Servers { get; }

        public List<ProcurementClient> Clients { get; }

        public List<GrpcChannel> Channels { get; }

        public static async Task<ReplicaSet> StartAsync(int replicas)
        {
            var database = "replicas_" + Guid.NewGuid().ToString("N");
            await using (var admin = new Npgsql.NpgsqlConnection(Cluster + ";Database=postgres;Pooling=false"))
            {
                await admin.OpenAsync();
                await using var create = admin.CreateCommand();
                create.CommandText = $"CREATE DATABASE {database}";
                await create.ExecuteNonQueryAsync();
            }

            var folder = Directory.CreateTempSubdirectory("procurement-replicas-").FullName;
            var key = "replica-operator-" + Guid.NewGuid().ToString("N");
            var servers = new List<ServerProcess>();
            for (var i = 0; i < replicas; i++)
            {
                servers.Add(await ServerProcess.StartAsync($"{Cluster};Database={database}", key, Path.Combine(folder, $"{(char)('a' + i)}.log")));
            }

            return new ReplicaSet(folder, key, servers);
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var c in Clients)
            {
                c.Dispose();
            }

            foreach (var c in Channels)
            {
                c.Dispose();
            }

            foreach (var s in Servers)
            {
                await s.DisposeAsync();
            }

            Directory.Delete(_folder, recursive: true);
        }
    }
}
