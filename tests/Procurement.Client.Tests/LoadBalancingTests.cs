using Grpc.Net.Client.Balancer;
using Microsoft.Extensions.DependencyInjection;
using Procurement.Api.V1;
using Procurement.TestSupport;

namespace Procurement.Client.Tests;

/// <summary>A client whose address resolves to several replicas spreads its calls over all of them.</summary>
public sealed class LoadBalancingTests
{
    [Fact]
    public async Task AnAddressResolvingToTwoReplicas_GetsCallsOnBoth()
    {
        const string key = "pk_load-balancing-test-operator-key-0123456789";
        await using var a = await ServerHarness.StartAsync(extraArgs: [$"--Procurement:BootstrapOperatorKey={key}"]);
        await using var b = await ServerHarness.StartAsync(extraArgs: [$"--Procurement:BootstrapOperatorKey={key}"]);

        // What a dns:/// name of a headless Service resolves to, given here by a static resolver.
        var resolver = new ServiceCollection()
            .AddSingleton<ResolverFactory>(new StaticResolverFactory(_ =>
                [new BalancerAddress("127.0.0.1", new Uri(a.Address).Port), new BalancerAddress("127.0.0.1", new Uri(b.Address).Port)]))
            .BuildServiceProvider();
        using var client = ProcurementClient.Create(new ProcurementClientOptions
        {
            Endpoint = new Uri("static:///procurement"), ApiKey = key, ConfigureChannel = channel => channel.ServiceProvider = resolver,
        });

        for (var i = 0; i < 20; i++)
        {
            await client.Allocations.CreatePoolAsync(new CreatePoolRequest
            {
                PoolId = $"pool-{i}", DisplayName = "p", Region = "r", AcceleratorType = "H100-SXM-80GB", CapacityUnits = 10,
            });
        }

        var onA = (await a.OperatorAllocations.ListPoolsAsync(new ListPoolsRequest())).Pools.Count;
        var onB = (await b.OperatorAllocations.ListPoolsAsync(new ListPoolsRequest())).Pools.Count;
        Assert.Equal(20, onA + onB);
        Assert.True(onA > 0 && onB > 0, $"calls went {onA} to one replica and {onB} to the other");
    }

    [Fact]
    public void DnsAndStaticEndpoints_AreAccepted_OtherSchemesAreNot()
    {
        using var dns = ProcurementClient.Create(new ProcurementClientOptions { Endpoint = new Uri("dns:///procurement-headless.default.svc.cluster.local:5080") });
        Assert.Throws<ArgumentException>(() => ProcurementClient.Create(new ProcurementClientOptions { Endpoint = new Uri("ftp://procurement:5080") }));
    }
}
