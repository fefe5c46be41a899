using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Procurement.Api.V1;
using Procurement.Server.Auth;
using Procurement.TestSupport;

namespace Procurement.Server.Tests;

public sealed class WatchAndUsageTests : IAsyncLifetime
{
    private ServerHarness _server = null!;
    private Contract _a = null!;
    private Contract _b = null!;

    public async Task InitializeAsync()
    {
        _server = await ServerHarness.StartAsync();
        await Fixtures.CreatePoolsAsync(_server, h100Capacity: 100, h200Capacity: 10);
        _a = await Fixtures.CreateActiveContractAsync(_server, "lab-a", Fixtures.H100Terms(_server.Clock.GetUtcNow(), 10, 90));
        _b = await Fixtures.CreateActiveContractAsync(_server, "lab-b", Fixtures.H100Terms(_server.Clock.GetUtcNow(), 10, 90));
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task<Allocation> AllocateAsync(Contract c, long units) =>
        (await _server.OperatorAllocations.RequestAllocationAsync(new RequestAllocationRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = c.ContractId, PoolId = Fixtures.H100, Units = units,
        })).Allocation;

    private async Task ReleaseAsync(Allocation a) =>
        await _server.OperatorAllocations.ReleaseAllocationAsync(new ReleaseAllocationRequest { RequestId = Rpc.NewRequestId(), AllocationId = a.AllocationId });

    /// <summary>Reads <paramref name="count"/> events from a fresh watch, then disconnects.</summary>
    private static async Task<List<AllocationEvent>> WatchAsync(AllocationService.AllocationServiceClient client, long after, int count, string contractId = "")
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var call = client.WatchAllocations(new WatchAllocationsRequest { AfterSequence = after, ContractId = contractId }, cancellationToken: cts.Token);
        var events = new List<AllocationEvent>();
        while (events.Count < count && await call.ResponseStream.MoveNext(cts.Token))
        {
            events.Add(call.ResponseStream.Current.Event);
        }

        return events;
    }

    [Fact]
    public async Task Watch_DeliversHistoryThenLiveEvents_InSequenceOrder()
    {
        var first = await AllocateAsync(_a, 5);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var call = _server.OperatorAllocations.WatchAllocations(new WatchAllocationsRequest(), cancellationToken: cts.Token);
        Assert.True(await call.ResponseStream.MoveNext(cts.Token));
        Assert.Equal((AllocationEventType.Admitted, first.AllocationId), (call.ResponseStream.Current.Event.Type, call.ResponseStream.Current.Event.AllocationId));

        await ReleaseAsync(first); // live
        Assert.True(await call.ResponseStream.MoveNext(cts.Token));
        var live = call.ResponseStream.Current.Event;
        Assert.Equal(AllocationEventType.Released, live.Type);
        Assert.Equal(AllocationState.Released, live.State);
        Assert.Equal(AllocationCause.ClientRequest, live.Cause);
    }

    [Fact]
    public async Task Watch_ResumedAfterADisconnect_MissesNothingAndRepeatsNothing()
    {
        var seen = new List<AllocationEvent>();
        var held = new List<Allocation>();
        for (var i = 0; i < 3; i++)
        {
            held.Add(await AllocateAsync(_a, 1));
        }

        seen.AddRange(await WatchAsync(_server.OperatorAllocations, 0, 2));
        // While disconnected: more events.
        foreach (var a in held)
        {
            await ReleaseAsync(a);
        }

        seen.AddRange(await WatchAsync(_server.OperatorAllocations, seen[^1].Sequence, 4));
        Assert.Equal(6, seen.Count);
        Assert.Equal(seen.Select(e => e.Sequence).Distinct().Order(), seen.Select(e => e.Sequence));
        Assert.Equal([.. held.Select(a => (a.AllocationId, AllocationEventType.Admitted)), .. held.Select(a => (a.AllocationId, AllocationEventType.Released))],
            seen.Select(e => (e.AllocationId, e.Type)));
        if (!ServerHarness.OnPostgres)
        {
            // One writer numbers events consecutively; PostgreSQL's positions leave gaps between groups.
            Assert.Equal(Enumerable.Range((int)seen[0].Sequence, 6).Select(i => (long)i), seen.Select(e => e.Sequence));
        }
    }

    [Fact]
    public async Task Watch_ResumedAfterAServerRestart_MissesNothingAndRepeatsNothing()
    {
        var a1 = await AllocateAsync(_a, 2);
        var before = await WatchAsync(_server.OperatorAllocations, 0, 1);
        await ReleaseAsync(a1);
        await _server.RestartAsync();
        await AllocateAsync(_b, 3);

        var after = await WatchAsync(_server.OperatorAllocations, before[^1].Sequence, 2);
        Assert.Equal([AllocationEventType.Released, AllocationEventType.Admitted], after.Select(e => e.Type));
        Assert.Equal(a1.AllocationId, after[0].AllocationId);
        Assert.True(before[^1].Sequence < after[0].Sequence && after[0].Sequence < after[1].Sequence);
        if (!ServerHarness.OnPostgres)
        {
            Assert.Equal(before[^1].Sequence + 1, after[0].Sequence);
            Assert.Equal(after[0].Sequence + 1, after[1].Sequence);
        }
    }

    [Fact]
    public async Task Watch_Customer_SeesOnlyItsTenantsEvents()
    {
        await AllocateAsync(_b, 1);
        var mine = await AllocateAsync(_a, 1);
        await AllocateAsync(_b, 1);
        var customer = _server.Allocations(await _server.CreateKeyAsync(Role.Customer, "lab-a"));
        var events = await WatchAsync(customer, 0, 1);
        Assert.Equal(mine.AllocationId, Assert.Single(events).AllocationId);

        // Naming another tenant's contract filters to nothing rather than revealing it.
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
        using var call = customer.WatchAllocations(new WatchAllocationsRequest { ContractId = _b.ContractId }, cancellationToken: cts.Token);
        var e = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(cts.Token));
        Assert.Equal(StatusCode.Cancelled, e.StatusCode);
    }

    [Fact]
    public async Task Watch_Customer_Live_GetsEachOfItsEvents_AmongOtherTenantsEvents_ExactlyOnce()
    {
        var customer = _server.Allocations(await _server.CreateKeyAsync(Role.Customer, "lab-a"));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var call = customer.WatchAllocations(new WatchAllocationsRequest(), cancellationToken: cts.Token);
        var received = new List<AllocationEvent>();
        var reading = Task.Run(async () =>
        {
            while (received.Count < 2 && await call.ResponseStream.MoveNext(cts.Token))
            {
                received.Add(call.ResponseStream.Current.Event);
            }
        });

        // Other tenants' commits wake the watch and move it past their events; its own must still arrive.
        for (var i = 0; i < 5; i++)
        {
            await ReleaseAsync(await AllocateAsync(_b, 1));
        }

        var mine = await AllocateAsync(_a, 2);
        await AllocateAsync(_b, 1);
        await ReleaseAsync(mine);
        await AllocateAsync(_b, 1);
        await reading;

        Assert.Equal([(AllocationEventType.Admitted, mine.AllocationId), (AllocationEventType.Released, mine.AllocationId)],
            received.Select(e => (e.Type, e.AllocationId)));
        Assert.True(received[0].Sequence < received[1].Sequence);
    }

    private UsageSample Sample(Allocation a, string id, int startMinute, int endMinute, long busy, string source = "meter-1") => new()
    {
        Source = source,
        SampleId = id,
        AllocationId = a.AllocationId,
        WindowStart = Timestamp.FromDateTimeOffset(a.AdmitTime.ToDateTimeOffset().AddMinutes(startMinute)),
        WindowEnd = Timestamp.FromDateTimeOffset(a.AdmitTime.ToDateTimeOffset().AddMinutes(endMinute)),
        BusyGpuSeconds = busy,
    };

    private async Task<ReportUsageResponse> ReportAsync(AllocationService.AllocationServiceClient client, params UsageSample[][] messages)
    {
        using var call = client.ReportUsage();
        foreach (var samples in messages)
        {
            var message = new ReportUsageRequest();
            message.Samples.AddRange(samples);
            await call.RequestStream.WriteAsync(message);
        }

        await call.RequestStream.CompleteAsync();
        return await call.ResponseAsync;
    }

    [Fact]
    public async Task ReportUsage_ResentBatch_CountsOnce()
    {
        var a = await AllocateAsync(_a, 4);
        _server.Clock.Advance(TimeSpan.FromHours(1));
        var meter = _server.Allocations(await _server.CreateKeyAsync(Role.Meter));
        var batch = Enumerable.Range(0, 6).Select(i => Sample(a, $"s{i}", i * 10, i * 10 + 10, 4 * 600)).ToArray();

        var first = await ReportAsync(meter, batch[..3], batch[3..]);
        Assert.Equal((6L, 0L, 0L), (first.Accepted, first.Duplicate, first.Rejected));
        var resent = await ReportAsync(meter, batch);
        Assert.Equal((0L, 6L, 0L), (resent.Accepted, resent.Duplicate, resent.Rejected));
    }

    [Fact]
    public async Task ReportUsage_BadSamples_AreRejectedWithReasons_AndGoodOnesKept()
    {
        var a = await AllocateAsync(_a, 2);
        _server.Clock.Advance(TimeSpan.FromHours(1));
        var meter = _server.Allocations(await _server.CreateKeyAsync(Role.Meter));
        var unknown = Sample(a, "unknown", 0, 10, 0);
        unknown.AllocationId = "alc_999999";
        var before = Sample(a, "before", -10, 5, 0);
        var future = Sample(a, "future", 50, 70, 0);
        var tooBusy = Sample(a, "too-busy", 0, 10, 2 * 600 + 1);
        var negative = Sample(a, "negative", 0, 10, -1);
        var backwards = Sample(a, "backwards", 10, 0, 0);
        var good1 = Sample(a, "good-1", 0, 10, 2 * 600);
        var good2 = Sample(a, "good-2", 10, 20, 0);
        await ReportAsync(meter, [good2]);
        var reused = Sample(a, "good-2", 10, 20, 5);

        var r = await ReportAsync(meter, [unknown, good1, before, future], [tooBusy, negative, backwards, reused]);
        Assert.Equal((1L, 0L, 7L), (r.Accepted, r.Duplicate, r.Rejected));
        var reasons = r.Rejections.ToDictionary(x => x.SampleId, x => x.Reason);
        Assert.Equal("UNKNOWN_ALLOCATION", reasons["unknown"]);
        Assert.Equal("WINDOW_OUTSIDE_ALLOCATION", reasons["before"]);
        Assert.Equal("WINDOW_OUTSIDE_ALLOCATION", reasons["future"]);
        Assert.Equal("BUSY_SECONDS_OUT_OF_RANGE", reasons["too-busy"]);
        Assert.Equal("BUSY_SECONDS_OUT_OF_RANGE", reasons["negative"]);
        Assert.Equal("INVALID_SAMPLE", reasons["backwards"]);
        Assert.Equal("SAMPLE_ID_REUSED", reasons["good-2"]);
        Assert.All(r.Rejections, x => Assert.False(string.IsNullOrEmpty(x.Message)));

        // The good sample was kept: resending it is a duplicate.
        var again = await ReportAsync(meter, [good1]);
        Assert.Equal(1, again.Duplicate);
    }

    [Fact]
    public async Task ReportUsage_CustomerKey_IsDenied()
    {
        var customer = _server.Allocations(await _server.CreateKeyAsync(Role.Customer, "lab-a"));
        var e = await Assert.ThrowsAsync<RpcException>(() => ReportAsync(customer));
        Assert.Equal(StatusCode.PermissionDenied, e.StatusCode);
    }
}
