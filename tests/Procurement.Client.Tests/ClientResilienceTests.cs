using System.Diagnostics;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;
using Polly.Testing;
using Polly.Timeout;
using Procurement.Api.V1;
using Procurement.Client.Resilience;
using Procurement.Server.Auth;
using Procurement.TestSupport;

namespace Procurement.Client.Tests;

public sealed class ClientResilienceTests : IAsyncLifetime
{
    private readonly FaultInjector _faults = new();
    private ServerHarness _server = null!;

    public async Task InitializeAsync()
    {
        _server = await ServerHarness.StartAsync(configure: s => FaultInjector.Register(s, _faults));
        await Fixtures.CreatePoolsAsync(_server, h100Capacity: 100, h200Capacity: 10);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private ProcurementClient Client(Action<ProcurementClientOptions>? configure = null, string? key = null)
    {
        var options = new ProcurementClientOptions
        {
            Endpoint = new Uri(_server.Address),
            ApiKey = key ?? _server.OperatorKey,
            RetryBaseDelay = TimeSpan.FromMilliseconds(20),
            RetryMaxDelay = TimeSpan.FromMilliseconds(200),
            WatchReconnectMaxDelay = TimeSpan.FromMilliseconds(500),
        };
        configure?.Invoke(options);
        return ProcurementClient.Create(options);
    }

    [Fact]
    public async Task ReplyLostAfterCommit_IsRetried_AndTheChangeHappensExactlyOnce()
    {
        var contract = await Fixtures.CreateActiveContractAsync(_server, "lab-a", Fixtures.H100Terms(_server.Clock.GetUtcNow(), 10, 10));
        using var client = Client();
        _faults.FailAfterCommit("RequestAllocation", 3);

        var response = await client.Allocations.RequestAsync(new RequestAllocationRequest { ContractId = contract.ContractId, PoolId = Fixtures.H100, Units = 4 });

        Assert.Equal(4, _faults.Attempts("RequestAllocation"));
        var all = await client.Allocations.ListAsync(new ListAllocationsRequest { ContractId = contract.ContractId });
        var only = Assert.Single(all.Allocations);
        Assert.Equal(only, response.Allocation); // the caller got the first (committed) response
    }

    [Fact]
    public async Task BlockBookedThroughLostReplies_IsBookedOnce_AndItsCancellationToo()
    {
        var terms = Fixtures.H100Terms(_server.Clock.GetUtcNow(), 10, 10);
        terms.Entitlements[0].MaxBlockUnits = 20;
        terms.BlockRates.Add(new BlockRate { AcceleratorType = "H100-SXM-80GB", UnitPrice = Fixtures.Usd(3_000_000) });
        var contract = await Fixtures.CreateActiveContractAsync(_server, "lab-a", terms);
        using var client = Client();
        var start = ServerHarness.DefaultNow.AddDays(2);
        var request = new BookCapacityBlockRequest
        {
            ContractId = contract.ContractId, PoolId = Fixtures.H100, Units = 20,
            StartTime = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(start), EndTime = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(start.AddHours(5)),
        };
        var dryRun = request.Clone();
        dryRun.DryRun = true;
        var dry = await client.Allocations.BookBlockAsync(dryRun);
        Assert.True(dry.Fits);
        Assert.Equal("", dry.Block.BlockId);

        _faults.FailAfterCommit("BookCapacityBlock", 2);
        var booked = (await client.Allocations.BookBlockAsync(request)).Block;
        Assert.Equal(1 + 3, _faults.Attempts("BookCapacityBlock")); // the dry run, then two lost replies and the answer
        Assert.Equal(booked, Assert.Single((await client.Allocations.ListBlocksAsync(new ListCapacityBlocksRequest { ContractId = contract.ContractId })).Blocks));
        var offerings = await client.Allocations.FindBlockOfferingsAsync(new FindCapacityBlockOfferingsRequest
        {
            ContractId = contract.ContractId, PoolId = Fixtures.H100, Units = 20, DurationHours = 5, EarliestStartTime = request.StartTime, PageSize = 1,
        });
        Assert.Equal(request.EndTime, offerings.Offerings.Single().StartTime);

        _faults.FailAfterCommit("CancelCapacityBlock", 1);
        var cancelled = await client.Allocations.CancelBlockAsync(booked.BlockId, booked.Etag);
        Assert.Equal(CapacityBlockState.Cancelled, cancelled.State);
        Assert.Equal(cancelled, await client.Allocations.GetBlockAsync(booked.BlockId));
    }

    [Fact]
    public async Task ConnectionDroppedMidCall_IsRetried_AndTheChangeHappensExactlyOnce()
    {
        var contract = await Fixtures.CreateActiveContractAsync(_server, "lab-a", Fixtures.H100Terms(_server.Clock.GetUtcNow(), 10, 10));
        using var client = Client();
        _faults.AbortAfterCommit("RequestAllocation", 1);

        var response = await client.Allocations.RequestAsync(new RequestAllocationRequest { ContractId = contract.ContractId, PoolId = Fixtures.H100, Units = 3 });

        Assert.Equal(2, _faults.Attempts("RequestAllocation"));
        var only = Assert.Single((await client.Allocations.ListAsync(new ListAllocationsRequest { ContractId = contract.ContractId })).Allocations);
        Assert.Equal(only, response.Allocation);
    }

    [Fact]
    public async Task Metrics_CountAttemptsAndRetries()
    {
        var counts = new System.Collections.Concurrent.ConcurrentDictionary<string, long>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == ClientMetrics.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) => counts.AddOrUpdate(instrument.Name, value, (_, n) => n + value));
        listener.Start();
        using var client = Client();
        _faults.FailBefore("GetPool", 2);

        await client.Allocations.GetPoolAsync(Fixtures.H100);

        // Other tests run in parallel on the same static meter, so these are lower bounds.
        Assert.True(counts.GetValueOrDefault("procurement.client.attempts") >= 3);
        Assert.True(counts.GetValueOrDefault("procurement.client.retries") >= 2);
    }

    [Fact]
    public async Task NonRetryableCodes_AreNotRetried_AndSurfaceWithReasonAndFields()
    {
        using var client = Client();
        var before = _faults.Attempts("CreatePool"); // the fixture created two pools
        var e = await Assert.ThrowsAsync<ProcurementRpcException>(() => client.Allocations.CreatePoolAsync(new CreatePoolRequest { PoolId = "Bad Id" }));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Equal("INVALID_FIELD", e.Reason);
        Assert.Contains(e.FieldErrors, f => f.Field == "pool_id");
        Assert.Equal(before + 1, _faults.Attempts("CreatePool"));

        var contract = await Fixtures.CreateActiveContractAsync(_server, "lab-a", Fixtures.H100Terms(_server.Clock.GetUtcNow(), 1, 0));
        var refused = await Assert.ThrowsAsync<ProcurementRpcException>(() =>
            client.Allocations.RequestAsync(new RequestAllocationRequest { ContractId = contract.ContractId, PoolId = Fixtures.H100, Units = 5 }));
        Assert.Equal((StatusCode.FailedPrecondition, "BURST_LIMIT_EXCEEDED"), (refused.StatusCode, refused.Reason));
        Assert.Equal("1", refused.Metadata["reserved_units"]);
        Assert.Equal(1, _faults.Attempts("RequestAllocation"));
    }

    [Fact]
    public async Task ServerDown_ThenBack_TheCallSucceeds()
    {
        using var client = Client(o =>
        {
            o.MaxRetryAttempts = 20;
            o.RetryBaseDelay = TimeSpan.FromMilliseconds(100);
            o.RetryMaxDelay = TimeSpan.FromMilliseconds(300);
            o.BreakerMinimumThroughput = 100;
        });
        await _server.StopAsync();
        var call = client.Allocations.GetPoolAsync(Fixtures.H100);
        await Task.Delay(700);
        await _server.StartAgainAsync();
        Assert.Equal(100, (await call).CapacityUnits);
    }

    [Fact]
    public async Task ServerDown_RetriesAreBoundedAndSurfaceAsUnavailable()
    {
        using var client = Client(o => o.MaxRetryAttempts = 2);
        await _server.StopAsync();
        var e = await Assert.ThrowsAsync<ProcurementRpcException>(() => client.Allocations.GetPoolAsync(Fixtures.H100));
        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        await _server.StartAgainAsync();
    }

    [Fact]
    public async Task SlowServer_HitsThePerAttemptTimeout_ThenTheRetrySucceeds()
    {
        _faults.DelayMethod = "GetPool";
        _faults.Delay = TimeSpan.FromSeconds(3);
        using var client = Client(o => o.AttemptTimeout = TimeSpan.FromMilliseconds(300));
        var pending = client.Allocations.GetPoolAsync(Fixtures.H100);
        await Task.Delay(100);
        _faults.DelayMethod = null; // the retry finds a fast server
        Assert.Equal(100, (await pending).CapacityUnits);
        Assert.True(_faults.Attempts("GetPool") >= 2);
    }

    [Fact]
    public async Task SlowServer_HitsTheTotalTimeout()
    {
        _faults.DelayMethod = "GetPool";
        _faults.Delay = TimeSpan.FromSeconds(5);
        using var client = Client(o =>
        {
            o.AttemptTimeout = TimeSpan.FromMilliseconds(200);
            o.TotalTimeout = TimeSpan.FromMilliseconds(700);
            o.MaxRetryAttempts = 100;
        });
        var clock = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<ProcurementRpcException>(() => client.Allocations.GetPoolAsync(Fixtures.H100));
        Assert.Equal((StatusCode.DeadlineExceeded, ProcurementRpcException.TimedOut), (e.StatusCode, e.Reason));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4), $"took {clock.Elapsed}");
        Assert.InRange(_faults.Attempts("GetPool"), 2, 10);
    }

    [Fact]
    public async Task CallerCancellation_SurfacesAsCancellation()
    {
        _faults.DelayMethod = "GetPool";
        _faults.Delay = TimeSpan.FromSeconds(5);
        using var client = Client();
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.Allocations.GetPoolAsync(Fixtures.H100, cts.Token));
        Assert.Equal(1, _faults.Attempts("GetPool"));
    }

    [Fact]
    public async Task Breaker_OpensAfterFailures_FailsFast_AndClosesAfterTheBreak()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch);
        using var client = Client(o =>
        {
            o.TimeProvider = time;
            o.MaxRetryAttempts = 0;
            o.BreakerMinimumThroughput = 4;
            o.BreakerFailureRatio = 0.5;
            o.BreakerBreakDuration = TimeSpan.FromSeconds(30);
        });
        _faults.FailBefore("GetPool", 4);
        for (var i = 0; i < 4; i++)
        {
            var e = await Assert.ThrowsAsync<ProcurementRpcException>(() => client.Allocations.GetPoolAsync(Fixtures.H100));
            Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        }

        // Open: the next call fails without reaching the server.
        var open = await Assert.ThrowsAsync<ProcurementRpcException>(() => client.Allocations.GetPoolAsync(Fixtures.H100));
        Assert.Equal(ProcurementRpcException.CircuitOpen, open.Reason);
        Assert.Equal(4, _faults.Attempts("GetPool"));

        // After the break a trial call goes through, succeeds, and closes the circuit.
        time.Advance(TimeSpan.FromSeconds(31));
        Assert.Equal(100, (await client.Allocations.GetPoolAsync(Fixtures.H100)).CapacityUnits);
        Assert.Equal(100, (await client.Allocations.GetPoolAsync(Fixtures.H100)).CapacityUnits);
        Assert.Equal(6, _faults.Attempts("GetPool"));
    }

    [Fact]
    public void Pipeline_IsTotalTimeoutThenRetryThenBreakerThenAttemptTimeout()
    {
        var options = new ProcurementClientOptions { MaxRetryAttempts = 7, AttemptTimeout = TimeSpan.FromSeconds(3), TotalTimeout = TimeSpan.FromSeconds(40) };
        var runner = new CallRunner(options);
        foreach (var pipeline in new[] { runner.Reads, runner.Mutations })
        {
            var strategies = pipeline.GetPipelineDescriptor().Strategies;
            Assert.Equal(
                [ProcurementPipelines.TotalTimeoutName, ProcurementPipelines.RetryName, ProcurementPipelines.BreakerName, ProcurementPipelines.AttemptTimeoutName],
                strategies.Select(s => s.StrategyInstance is not null ? s.Options!.Name : null));
            Assert.Equal(TimeSpan.FromSeconds(40), ((TimeoutStrategyOptions)strategies[0].Options!).Timeout);
            var retry = (RetryStrategyOptions)strategies[1].Options!;
            Assert.Equal((7, DelayBackoffType.Exponential, true), (retry.MaxRetryAttempts, retry.BackoffType, retry.UseJitter));
            var breaker = (CircuitBreakerStrategyOptions)strategies[2].Options!;
            Assert.Equal((ProcurementClientOptions.DefaultBreakerFailureRatio, ProcurementClientOptions.DefaultBreakerMinimumThroughput), (breaker.FailureRatio, breaker.MinimumThroughput));
            Assert.Equal(TimeSpan.FromSeconds(3), ((TimeoutStrategyOptions)strategies[3].Options!).Timeout);
        }
    }

    [Theory]
    [InlineData(StatusCode.Unavailable, true)]
    [InlineData(StatusCode.ResourceExhausted, false)]
    [InlineData(StatusCode.InvalidArgument, false)]
    [InlineData(StatusCode.FailedPrecondition, false)]
    [InlineData(StatusCode.Aborted, false)]
    [InlineData(StatusCode.Internal, false)]
    [InlineData(StatusCode.DeadlineExceeded, false)]
    public void OnlyUnavailableAndAttemptTimeouts_AreRetried(StatusCode code, bool retried)
    {
        Assert.Equal(retried, ProcurementPipelines.IsTransient(new RpcException(new Status(code, ""))));
        Assert.True(ProcurementPipelines.IsTransient(new TimeoutRejectedException()));
        Assert.True(ProcurementPipelines.IsTransient(new RpcException(new Status(StatusCode.Internal, "reset", new HttpRequestException("reset")))));
        Assert.False(ProcurementPipelines.IsTransient(new OperationCanceledException()));
        // A cancellation nobody asked for (the transport cut a call whose server went away) is retried; the caller's is not.
        Assert.True(ProcurementPipelines.IsNoAnswer(new OperationCanceledException(), CancellationToken.None));
        Assert.False(ProcurementPipelines.IsNoAnswer(new OperationCanceledException(), new CancellationToken(canceled: true)));
    }

    [Fact]
    public async Task Watch_SurvivesAServerRestart_WithNoLostAndNoDuplicatedEvent()
    {
        var contract = await Fixtures.CreateActiveContractAsync(_server, "lab-a", Fixtures.H100Terms(_server.Clock.GetUtcNow(), 10, 50));
        using var client = Client();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var seen = new List<AllocationEvent>();
        var done = new TaskCompletionSource();
        var admitted = new List<string>();
        var watcher = Task.Run(async () =>
        {
            await foreach (var e in client.Allocations.WatchAsync(0, cancellationToken: cts.Token))
            {
                seen.Add(e);
                if (seen.Count == 6)
                {
                    done.SetResult();
                    return;
                }
            }
        });

        for (var i = 0; i < 3; i++)
        {
            admitted.Add((await client.Allocations.RequestAsync(new RequestAllocationRequest { ContractId = contract.ContractId, PoolId = Fixtures.H100, Units = 1 })).Allocation.AllocationId);
        }

        var restart = System.Diagnostics.Stopwatch.StartNew();
        await _server.RestartAsync(); // same address, same file
        restart.Stop();
        using var after = Client();
        for (var i = 0; i < 3; i++)
        {
            admitted.Add((await after.Allocations.RequestAsync(new RequestAllocationRequest { ContractId = contract.ContractId, PoolId = Fixtures.H100, Units = 1 })).Allocation.AllocationId);
        }

        try
        {
            await done.Task.WaitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            var fresh = new List<long>();
            using var quick = new CancellationTokenSource(TimeSpan.FromSeconds(3));
            try
            {
                await foreach (var e in after.Allocations.WatchAsync(0, cancellationToken: quick.Token))
                {
                    fresh.Add(e.Sequence);
                }
            }
            catch (OperationCanceledException)
            {
            }

            Assert.Fail($"the watch delivered only {string.Join(",", seen.Select(e => e.Sequence))}; a fresh watch sees {string.Join(",", fresh)}; watcher {watcher.Status}; restart took {restart.Elapsed}");
        }

        await watcher;
        // Each admission once, in order (positions are consecutive on SQLite, increasing on PostgreSQL).
        Assert.Equal(admitted, seen.Select(e => e.AllocationId));
        Assert.Equal(seen.Select(e => e.Sequence).Distinct().Order(), seen.Select(e => e.Sequence));
        if (!ServerHarness.OnPostgres)
        {
            Assert.Equal([1L, 2, 3, 4, 5, 6], seen.Select(e => e.Sequence));
        }
    }

    [Fact]
    public async Task UsageReporter_ResendsABatchThatLostItsReply_WithoutCountingTwice()
    {
        var contract = await Fixtures.CreateActiveContractAsync(_server, "lab-a", Fixtures.H100Terms(_server.Clock.GetUtcNow(), 10, 0));
        using var ops = Client();
        var allocation = (await ops.Allocations.RequestAsync(new RequestAllocationRequest { ContractId = contract.ContractId, PoolId = Fixtures.H100, Units = 2 })).Allocation;
        _server.Clock.Advance(TimeSpan.FromHours(2));
        using var meter = Client(key: await _server.CreateKeyAsync(Role.Meter));
        var start = allocation.AdmitTime.ToDateTimeOffset();
        var samples = Enumerable.Range(0, 120).Select(i => new UsageSample
        {
            Source = "meter-7", SampleId = $"s{i}", AllocationId = allocation.AllocationId,
            WindowStart = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(start.AddMinutes(i)),
            WindowEnd = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(start.AddMinutes(i + 1)),
            BusyGpuSeconds = 60,
        }).ToList();
        _faults.FailAfterCommit("ReportUsage", 1);
        var progress = new List<long>();

        var report = await meter.Allocations.ReportUsageAsync(samples, batchSize: 50, progress: new SyncProgress(progress));

        // The first batch was stored, its reply lost, and sent again: its 50 come back as duplicates.
        Assert.Equal((70L, 50L, 0L), (report.Accepted, report.Duplicate, report.Rejected));
        Assert.Equal([50L, 100, 120], progress);
        Assert.Equal(4, _faults.Attempts("ReportUsage"));
    }

    [Fact]
    public async Task DependencyInjection_RegistersWorkingClients()
    {
        var services = new ServiceCollection();
        services.AddProcurementClient(o =>
        {
            o.Endpoint = new Uri(_server.Address);
            o.ApiKey = _server.OperatorKey;
        });
        await using var provider = services.BuildServiceProvider();
        var pools = await provider.GetRequiredService<AllocationsClient>().ListPoolsAsync(new ListPoolsRequest());
        Assert.Equal(2, pools.Pools.Count);
        var contracts = provider.GetRequiredService<ContractsClient>();
        var e = await Assert.ThrowsAsync<ProcurementRpcException>(() => contracts.GetAsync("ctr_missing"));
        Assert.Equal(StatusCode.NotFound, e.StatusCode);
        var sla = await Assert.ThrowsAsync<ProcurementRpcException>(() => provider.GetRequiredService<SlaClient>().GetReportAsync("ctr_missing", 2026, 1));
        Assert.Equal(StatusCode.NotFound, sla.StatusCode);
    }

    private sealed class SyncProgress(List<long> values) : IProgress<long>
    {
        public void Report(long value) => values.Add(value);
    }
}
