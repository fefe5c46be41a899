using System.Diagnostics;
using Google.Rpc;
using Grpc.Core;
using Procurement.Api.V1;
using Procurement.Server.Auth;
using Procurement.TestSupport;

namespace Procurement.Server.Tests;

/// <summary>Fair use per API key: one key over its limits is refused with a retry delay; other keys are not held up.</summary>
public sealed class FairUseTests : IAsyncLifetime
{
    private ServerHarness _server = null!;

    public async Task InitializeAsync()
    {
        _server = await ServerHarness.StartAsync(extraArgs:
        [
            "--Procurement:FairUse:Customer:RequestsPerSecond=50", "--Procurement:FairUse:Customer:Burst=20",
            "--Procurement:FairUse:Customer:ConcurrentCalls=4", "--Procurement:FairUse:Customer:WatchStreams=2",
        ]);
        await Fixtures.CreatePoolsAsync(_server);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task AKeyOverItsRate_IsRateLimitedWithRetryInfo_AnotherKeyIsNot()
    {
        var k = await Fixtures.CreateActiveContractAsync(_server, "lab-a");
        var flooding = _server.Contracts(await _server.CreateKeyAsync(Role.Customer, "lab-a"));
        var other = _server.Contracts(await _server.CreateKeyAsync(Role.Customer, "lab-a"));

        RpcException? refused = null;
        for (var i = 0; i < 100 && refused is null; i++)
        {
            try
            {
                await flooding.GetContractAsync(new GetContractRequest { ContractId = k.ContractId });
            }
            catch (RpcException e)
            {
                refused = e;
            }
        }

        Assert.NotNull(refused);
        Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
        Assert.Equal("RATE_LIMITED", refused.Reason());
        var retry = refused.GetRpcStatus()!.GetDetail<RetryInfo>();
        Assert.NotNull(retry);
        Assert.InRange(retry.RetryDelay.ToTimeSpan(), TimeSpan.FromTicks(1), TimeSpan.FromSeconds(1));

        Assert.Equal(k.ContractId, (await other.GetContractAsync(new GetContractRequest { ContractId = k.ContractId })).Contract.ContractId);
    }

    [Fact]
    public async Task AKeyOverItsRate_OverHttpJson_Is429WithRetryInfo()
    {
        var key = await _server.CreateKeyAsync(Role.Customer, "lab-a");
        using var http = new HttpClient { BaseAddress = new Uri(_server.Address) };
        http.DefaultRequestHeaders.Authorization = new("Bearer", key);

        HttpResponseMessage? refused = null;
        for (var i = 0; i < 100 && refused is null; i++)
        {
            var reply = await http.GetAsync("/v1/contracts");
            if (reply.StatusCode != System.Net.HttpStatusCode.OK)
            {
                refused = reply;
            }
        }

        Assert.NotNull(refused);
        Assert.Equal(System.Net.HttpStatusCode.TooManyRequests, refused.StatusCode);
        var status = new Google.Protobuf.JsonParser(Google.Protobuf.JsonParser.Settings.Default.WithTypeRegistry(Procurement.Server.Http.HttpJson.ErrorDetailTypes)).Parse<Google.Rpc.Status>(await refused.Content.ReadAsStringAsync());
        Assert.Equal("RATE_LIMITED", status.GetDetail<ErrorInfo>()?.Reason);
        Assert.NotNull(status.GetDetail<RetryInfo>());
    }

    [Fact]
    public async Task WatchStreams_AreCappedPerKey()
    {
        var customer = _server.Allocations(await _server.CreateKeyAsync(Role.Customer, "lab-a"));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var k = await Fixtures.CreateActiveContractAsync(_server, "lab-a");
        using var first = customer.WatchAllocations(new WatchAllocationsRequest(), cancellationToken: cts.Token);
        using var second = customer.WatchAllocations(new WatchAllocationsRequest(), cancellationToken: cts.Token);
        await _server.OperatorAllocations.RequestAllocationAsync(new RequestAllocationRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = k.ContractId, PoolId = Fixtures.H100, Units = 1,
        });
        Assert.True(await first.ResponseStream.MoveNext(cts.Token)); // both streams are open on the server
        Assert.True(await second.ResponseStream.MoveNext(cts.Token));

        using var third = customer.WatchAllocations(new WatchAllocationsRequest(), cancellationToken: cts.Token);
        var e = await Assert.ThrowsAsync<RpcException>(() => third.ResponseStream.MoveNext(cts.Token));
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.Equal("RATE_LIMITED", e.Reason());
    }

    [Fact]
    public async Task AFloodingKey_DoesNotHoldUpAnotherKeysCalls()
    {
        var k = await Fixtures.CreateActiveContractAsync(_server, "lab-a");
        var flooding = _server.Contracts(await _server.CreateKeyAsync(Role.Customer, "lab-a"));
        var quiet = _server.Contracts(await _server.CreateKeyAsync(Role.Customer, "lab-a"));
        var request = new GetContractRequest { ContractId = k.ContractId };

        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        var refused = 0;
        var flood = Enumerable.Range(0, 16).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    await flooding.GetContractAsync(request);
                }
                catch (RpcException e) when (e.StatusCode == StatusCode.ResourceExhausted)
                {
                    Interlocked.Increment(ref refused);
                }
            }
        })).ToList();

        var latencies = new List<TimeSpan>();
        while (!stop.IsCancellationRequested)
        {
            var watch = Stopwatch.StartNew();
            await quiet.GetContractAsync(request); // never refused: it is within its own limits
            latencies.Add(watch.Elapsed);
            await Task.Delay(25);
        }

        await Task.WhenAll(flood);
        Assert.True(refused > 0, "the flooding key was never limited");
        latencies.Sort();
        var p99 = latencies[(int)Math.Ceiling(latencies.Count * 0.99) - 1];
        // A bound for a shared 2-core test host: the quiet key is answered, not queued behind the flood.
        Assert.True(p99 < TimeSpan.FromSeconds(1), $"p99 {p99.TotalMilliseconds:F0} ms over {latencies.Count} calls");
    }
}
