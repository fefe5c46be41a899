using Procurement.Api.V1;
using Procurement.Client;
using Xunit.Abstractions;

namespace Procurement.EndToEnd.Tests;

/// <summary>
/// Writers drive requests, releases, usage and amendments while the server is killed with SIGKILL at
/// seeded random moments and restarted on the same file, over and over. Afterwards every acknowledged
/// write is there, nothing is half-applied, I1–I4 hold and the file passes integrity_check.
/// </summary>
public sealed class CrashSafetyTests(ITestOutputHelper output)
{
    private const int Kills = 20;
    private const int Seed = 20261126;

    internal static void Configure(ProcurementClientOptions o)
    {
        o.MaxRetryAttempts = 1000;
        o.RetryBaseDelay = TimeSpan.FromMilliseconds(50);
        o.RetryMaxDelay = TimeSpan.FromMilliseconds(300);
        o.TotalTimeout = TimeSpan.FromSeconds(90);
        o.AttemptTimeout = TimeSpan.FromSeconds(5);
        o.BreakerMinimumThroughput = int.MaxValue; // kills are expected: keep calling
    }

    internal static async Task<(Deal Deal, List<Contract> Contracts, Dictionary<string, long> Reserved)> SetUpAsync(ProcurementClient client)
    {
        var deal = new Deal("crash");
        await client.Allocations.CreatePoolAsync(new CreatePoolRequest { PoolId = deal.H100, DisplayName = "H100", Region = "r", AcceleratorType = "H100-SXM-80GB", CapacityUnits = 500 });
        await client.Allocations.CreatePoolAsync(new CreatePoolRequest { PoolId = deal.H200, DisplayName = "H200", Region = "r", AcceleratorType = "H200-SXM-141GB", CapacityUnits = 0 });
        var now = TimeProvider.System.GetUtcNow();
        var monthStart = new DateTimeOffset(now.Year, now.Month, 1, 0, 0, 0, TimeSpan.Zero);
        var contracts = new List<Contract>();
        var reserved = new Dictionary<string, long>();
        foreach (var (tenant, r, b, priority, preempt) in new[] { ("lab-a", 150L, 250L, 5, true), ("lab-b", 100L, 300L, 1, false), ("lab-c", 0L, 200L, 3, true) })
        {
            var terms = deal.Headline(monthStart);
            terms.Entitlements.Clear();
            terms.Entitlements.Add(new PoolEntitlement { PoolId = deal.H100, ReservedUnits = r, BurstLimitUnits = b });
            terms.PriorityAccess = new PriorityAccess { Priority = priority, PreemptLowerPriorityBurst = preempt };
            var contract = await Deal.ActiveContractAsync(client, tenant, terms);
            contracts.Add(contract);
            reserved[contract.ContractId] = r;
        }

        return (deal, contracts, reserved);
    }

    [Fact]
    public async Task KilledAtRandom_LosesNoAcknowledgedWrite_AndHalfAppliesNothing()
    {
        var folder = Directory.CreateTempSubdirectory("procurement-crash-").FullName;
        await using var server = await ServerProcess.StartAsync(Path.Combine(folder, "procurement.db"), "crash-operator-" + Guid.NewGuid().ToString("N"));
        ProcurementClient Client() => ProcurementClient.Create(new ProcurementClientOptions { Endpoint = server.Endpoint, ApiKey = server.BootstrapKey }.With(Configure));
        using var client = Client();
        var (deal, contracts, reserved) = await SetUpAsync(client);

        var workload = new Workload(Client, deal, contracts, Seed);
        using var stop = new CancellationTokenSource();
        var writers = workload.RunAsync(stop.Token);
        var random = new Random(Seed);
        for (var kill = 0; kill < Kills; kill++)
        {
            await Task.Delay(random.Next(150, 700));
            server.Kill();
            await server.StartAsync();
        }

        await Task.Delay(500);
        stop.Cancel();
        await writers;
        output.WriteLine($"{Kills} kills: {workload.Requests.Count} requests, {workload.Releases.Count} releases, {workload.Samples.Count} samples, " +
            $"{workload.Amendments.Count} amendments acknowledged; {workload.Unknown} without an answer: " +
            string.Join(", ", workload.UnknownKinds.Select(k => $"{k.Key} × {k.Value}")));
        Assert.True(workload.Requests.Count > 50, "the writers should have got through many requests");

        await workload.CheckAcknowledgedAsync(client);
        await Invariants.CheckPoolAsync(client, deal.H100, 500, reserved);

        Assert.Equal(0, await server.TerminateAsync());
        Assert.Equal("ok", Invariants.IntegrityCheck(server.DatabasePath));
        Directory.Delete(folder, recursive: true);
    }
}

internal static class OptionsExtensions
{
    public static ProcurementClientOptions With(this ProcurementClientOptions o, Action<ProcurementClientOptions> configure)
    {
        configure(o);
        return o;
    }
}
