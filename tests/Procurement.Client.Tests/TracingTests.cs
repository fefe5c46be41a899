using System.Diagnostics;
using OpenTelemetry;
using OpenTelemetry.Trace;
using Procurement.Api.V1;
using Procurement.Client.Resilience;
using Procurement.Storage;
using Procurement.TestSupport;

namespace Procurement.Client.Tests;

/// <summary>One trace from a lab's call through the client's retries to the server's commit.</summary>
public sealed class TracingTests : IAsyncLifetime
{
    private static readonly ActivitySource Test = new("Procurement.Client.Tests");
    private readonly FaultInjector _faults = new();
    private ServerHarness _server = null!;

    public async Task InitializeAsync()
    {
        _server = await ServerHarness.StartAsync(configure: s => FaultInjector.Register(s, _faults));
        await Fixtures.CreatePoolsAsync(_server, h100Capacity: 100, h200Capacity: 10);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task RequestAllocation_TraceShowsTheCall_ItsAttempts_TheServerRpc_TheUnitOfWork_AndTheCommit()
    {
        var contract = await Fixtures.CreateActiveContractAsync(_server, "lab-a", Fixtures.H100Terms(_server.Clock.GetUtcNow(), 10, 10));
        var spans = new List<Activity>();
        using (var tracing = Sdk.CreateTracerProviderBuilder()
            .AddSource(Test.Name, ClientMetrics.MeterName, "Microsoft.AspNetCore", StorageInstruments.ActivitySourceName)
            .SetSampler(new AlwaysOnSampler())
            .AddInMemoryExporter(spans)
            .Build())
        {
            using var client = ProcurementClient.Create(new ProcurementClientOptions
            {
                Endpoint = new Uri(_server.Address), ApiKey = _server.OperatorKey, RetryBaseDelay = TimeSpan.FromMilliseconds(20),
            });
            _faults.FailAfterCommit("RequestAllocation", 1); // the first reply is lost: a second attempt replays it

            using (Test.StartActivity("lab service"))
            {
                await client.Allocations.RequestAsync(new RequestAllocationRequest { ContractId = contract.ContractId, PoolId = Fixtures.H100, Units = 2 });
            }

            tracing.ForceFlush();
        }

        var root = Assert.Single(spans, s => s.Source.Name == Test.Name);
        var trace = spans.Where(s => s.TraceId == root.TraceId).ToList();
        var call = Assert.Single(trace, s => s.OperationName == "procurement.client.call");
        Assert.Equal(root.SpanId, call.ParentSpanId);
        var attempts = trace.Where(s => s.OperationName == "procurement.client.attempt").OrderBy(s => s.StartTimeUtc).ToList();
        Assert.Equal(2, attempts.Count);
        Assert.All(attempts, a => Assert.Equal(call.SpanId, a.ParentSpanId));
        Assert.Equal("/procurement.v1.AllocationService/RequestAllocation", attempts[0].GetTagItem("rpc.method"));

        // Each attempt reached the server as a child span; the first one did the work and committed it.
        var rpcs = trace.Where(s => s.Source.Name == "Microsoft.AspNetCore").ToList();
        Assert.Equal(2, rpcs.Count);
        Assert.All(rpcs, r => Assert.Contains(attempts, a => a.SpanId == r.ParentSpanId));
        var units = trace.Where(s => s.OperationName == "procurement.unit_of_work").ToList();
        Assert.NotEmpty(units);
        Assert.All(units, u => Assert.Contains(rpcs, r => r.SpanId == u.ParentSpanId));
        var commits = trace.Where(s => s.OperationName == "procurement.commit").ToList();
        Assert.NotEmpty(commits);
        Assert.All(commits, c => Assert.Contains(rpcs, r => r.SpanId == c.ParentSpanId));
    }
}
