using Grpc.Core;
using Procurement.Api.V1;
using Procurement.Server.Auth;
using Procurement.TestSupport;

namespace Procurement.Client.Tests;

/// <summary>The client waits out a RATE_LIMITED refusal as the server's RetryInfo asks, and retries no other RESOURCE_EXHAUSTED.</summary>
public sealed class RateLimitRetryTests : IAsyncLifetime
{
    private ServerHarness _server = null!;

    public async Task InitializeAsync()
    {
        _server = await ServerHarness.StartAsync(extraArgs: ["--Procurement:FairUse:Customer:RequestsPerSecond=10", "--Procurement:FairUse:Customer:Burst=1"]);
        await Fixtures.CreatePoolsAsync(_server, h100Capacity: 10, h200Capacity: 10);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task RateLimitedCalls_AreRetriedAfterTheServersDelay_AndSucceed()
    {
        var contract = await Fixtures.CreateActiveContractAsync(_server, "lab-a", Fixtures.H100Terms(_server.Clock.GetUtcNow(), 5, 0));
        var key = await _server.CreateKeyAsync(Role.Customer, "lab-a");

        // The raw stub is refused: one call a tenth of a second, and these come back to back.
        var stub = _server.Contracts(key);
        var refused = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            for (var i = 0; i < 10; i++)
            {
                await stub.GetContractAsync(new GetContractRequest { ContractId = contract.ContractId });
            }
        });
        Assert.Equal("RATE_LIMITED", refused.Reason());

        using var client = ProcurementClient.Create(new ProcurementClientOptions { Endpoint = new Uri(_server.Address), ApiKey = key });
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(contract.ContractId, (await client.Contracts.GetAsync(contract.ContractId)).ContractId);
        }
    }

    [Fact]
    public void OnlyRateLimitedRefusals_CarryARetryDelay()
    {
        static RpcException Refusal(string reason, Google.Protobuf.WellKnownTypes.Duration? delay)
        {
            var status = new Google.Rpc.Status { Code = (int)StatusCode.ResourceExhausted, Message = reason };
            status.Details.Add(Google.Protobuf.WellKnownTypes.Any.Pack(new Google.Rpc.ErrorInfo { Reason = reason, Domain = "procurement" }));
            if (delay is not null)
            {
                status.Details.Add(Google.Protobuf.WellKnownTypes.Any.Pack(new Google.Rpc.RetryInfo { RetryDelay = delay }));
            }

            return status.ToRpcException();
        }

        var quarter = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromMilliseconds(250));
        Assert.Equal(TimeSpan.FromMilliseconds(250), Resilience.ProcurementPipelines.RateLimitedRetryDelay(Refusal("RATE_LIMITED", quarter)));
        Assert.Equal(TimeSpan.Zero, Resilience.ProcurementPipelines.RateLimitedRetryDelay(Refusal("RATE_LIMITED", null)));
        Assert.Null(Resilience.ProcurementPipelines.RateLimitedRetryDelay(Refusal("CAPACITY_UNAVAILABLE", quarter)));
        Assert.Null(Resilience.ProcurementPipelines.RateLimitedRetryDelay(new RpcException(new Status(StatusCode.Unavailable, ""))));
    }
}
