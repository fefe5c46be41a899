using Grpc.Core;
using Procurement.Api.V1;
using Procurement.Server.Auth;
using Procurement.Server.Services;
using Procurement.TestSupport;

namespace Procurement.Server.Tests;

/// <summary>A revoked key loses its open streams too, not only its next call.</summary>
public sealed class KeyRevocationTests : IAsyncLifetime
{
    private ServerHarness _server = null!;

    public async Task InitializeAsync()
    {
        _server = await ServerHarness.StartAsync();
        await Fixtures.CreatePoolsAsync(_server);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task RevokingAKey_EndsItsOpenWatch_WithUnauthenticated()
    {
        var k = await Fixtures.CreateActiveContractAsync(_server, "lab-a", Fixtures.H100Terms(_server.Clock.GetUtcNow(), 10, 10));
        var key = await _server.CreateKeyAsync(Role.Customer, "lab-a");
        var customer = _server.Allocations(key);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var watch = customer.WatchAllocations(new WatchAllocationsRequest(), cancellationToken: cts.Token);
        await Request(k);
        Assert.True(await watch.ResponseStream.MoveNext(cts.Token));

        await _server.RevokeKeyAsync(key);
        var revoked = System.Diagnostics.Stopwatch.StartNew();
        // Events keep coming for the tenant; none may reach the revoked key once its check has run.
        var e = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            while (await watch.ResponseStream.MoveNext(cts.Token))
            {
                await Request(k);
            }
        });

        Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
        Assert.Equal("API_KEY_INVALID", e.Reason());
        // Seen within the check interval plus one poll, with room for a loaded test host.
        Assert.True(revoked.Elapsed < AllocationGrpcService.WatchKeyCheckInterval * 2 + TimeSpan.FromSeconds(5));
    }

    private async Task Request(Contract k) => await _server.OperatorAllocations.RequestAllocationAsync(new RequestAllocationRequest
    {
        RequestId = Rpc.NewRequestId(), ContractId = k.ContractId, PoolId = Fixtures.H100, Units = 1,
    });
}
