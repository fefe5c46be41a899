using System.Runtime.CompilerServices;
using Grpc.Core;
using Procurement.Api.V1;
using Procurement.Client.Resilience;

namespace Procurement.Client;

/// <summary>AllocationService: pools, allocations, capacity blocks, the event stream and usage.</summary>
public sealed class AllocationsClient(AllocationService.AllocationServiceClient stub, CallRunner runner)
{
    /// <summary>Samples per message of a usage stream.</summary>
    public const int SamplesPerMessage = 500;

    public AllocationService.AllocationServiceClient Stub => stub;

    public async Task<Pool> CreatePoolAsync(CreatePoolRequest request, CancellationToken cancellationToken = default) =>
        (await Mutate(request, o => stub.CreatePoolAsync(request, o), cancellationToken)).Pool;

    public async Task<Pool> GetPoolAsync(string poolId, CancellationToken cancellationToken = default) =>
        (await runner.UnaryAsync(CallKind.Read, o => stub.GetPoolAsync(new GetPoolRequest { PoolId = poolId }, o), cancellationToken)).Pool;

    public Task<ListPoolsResponse> ListPoolsAsync(ListPoolsRequest request, CancellationToken cancellationToken = default) =>
        runner.UnaryAsync(CallKind.Read, o => stub.ListPoolsAsync(request, o), cancellationToken);

    public async Task<Pool> UpdatePoolCapacityAsync(UpdatePoolCapacityRequest request, CancellationToken cancellationToken = default) =>
        (await Mutate(request, o => stub.UpdatePoolCapacityAsync(request, o), cancellationToken)).Pool;

    public Task<GetPoolStatusResponse> GetPoolStatusAsync(string poolId, CancellationToken cancellationToken = default) =>
        runner.UnaryAsync(CallKind.Read, o => stub.GetPoolStatusAsync(new GetPoolStatusRequest { PoolId = poolId }, o), cancellationToken);

    /// <summary>Requests units. A dry run carries no request id and changes nothing.</summary>
    public Task<RequestAllocationResponse> RequestAsync(RequestAllocationRequest request, CancellationToken cancellationToken = default) =>
        MutateUnlessDryRun(request, request.DryRun, o => stub.RequestAllocationAsync(request, o), cancellationToken);

    public async Task<Allocation> GetAsync(string allocationId, CancellationToken cancellationToken = default) =>
        (await runner.UnaryAsync(CallKind.Read, o => stub.GetAllocationAsync(new GetAllocationRequest { AllocationId = allocationId }, o), cancellationToken)).Allocation;

    public Task<ListAllocationsResponse> ListAsync(ListAllocationsRequest request, CancellationToken cancellationToken = default) =>
        runner.UnaryAsync(CallKind.Read, o => stub.ListAllocationsAsync(request, o), cancellationToken);

    public async Task<Allocation> ReleaseAsync(string allocationId, CancellationToken cancellationToken = default)
    {
        var request = new ReleaseAllocationRequest { AllocationId = allocationId };
        return (await Mutate(request, o => stub.ReleaseAllocationAsync(request, o), cancellationToken)).Allocation;
    }

    /// <summary>Books a capacity block. A dry run carries no request id and books nothing: it prices the block and says whether and where it would not fit.</summary>
    public Task<BookCapacityBlockResponse> BookBlockAsync(BookCapacityBlockRequest request, CancellationToken cancellationToken = default) =>
        MutateUnlessDryRun(request, request.DryRun, o => stub.BookCapacityBlockAsync(request, o), cancellationToken);

    public async Task<CapacityBlock> GetBlockAsync(string blockId, CancellationToken cancellationToken = default) =>
        (await runner.UnaryAsync(CallKind.Read, o => stub.GetCapacityBlockAsync(new GetCapacityBlockRequest { BlockId = blockId }, o), cancellationToken)).Block;

    public Task<ListCapacityBlocksResponse> ListBlocksAsync(ListCapacityBlocksRequest request, CancellationToken cancellationToken = default) =>
        runner.UnaryAsync(CallKind.Read, o => stub.ListCapacityBlocksAsync(request, o), cancellationToken);

    /// <summary>Cancels a BOOKED block; the reply carries the charge (zero outside the notice period).</summary>
    public async Task<CapacityBlock> CancelBlockAsync(string blockId, string etag = "", CancellationToken cancellationToken = default)
    {
        var request = new CancelCapacityBlockRequest { BlockId = blockId, Etag = etag };
        return (await Mutate(request, o => stub.CancelCapacityBlockAsync(request, o), cancellationToken)).Block;
    }

    /// <summary>The earliest windows a block would fit, with prices; books nothing.</summary>
    public Task<FindCapacityBlockOfferingsResponse> FindBlockOfferingsAsync(FindCapacityBlockOfferingsRequest request, CancellationToken cancellationToken = default) =>
        runner.UnaryAsync(CallKind.Read, o => stub.FindCapacityBlockOfferingsAsync(request, o), cancellationToken);

    /// <summary>
    /// Every allocation event after <paramref name="afterSequence"/>, each delivered exactly once. When
    /// the stream breaks (server restart, network) it reconnects with backoff from the last sequence
    /// delivered. Ends only by cancellation or an error that retrying cannot fix.
    /// </summary>
    public async IAsyncEnumerable<AllocationEvent> WatchAsync(long afterSequence, string poolId = "", string contractId = "",
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var last = afterSequence;
        var failures = 0;
        var options = runner.Options;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var call = stub.WatchAllocations(new WatchAllocationsRequest { AfterSequence = last, PoolId = poolId, ContractId = contractId },
                new CallOptions(cancellationToken: cancellationToken)); // no deadline: a watch runs for as long as the caller wants
            var connected = false;
            while (true)
            {
                AllocationEvent? next;
                try
                {
                    next = await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false) ? call.ResponseStream.Current.Event : null;
                }
                catch (RpcException e) when (!cancellationToken.IsCancellationRequested && IsReconnectable(e.StatusCode))
                {
                    next = null;
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    // The transport gave up on the call (e.g. the server went away mid-stream), not the caller.
                    next = null;
                }
                catch (RpcException e) when (!cancellationToken.IsCancellationRequested)
                {
                    throw ProcurementRpcException.From(e);
                }

                if (next is null)
                {
                    break; // the stream ended or broke: reconnect from `last`
                }

                connected = true;
                failures = 0;
                if (next.Sequence > last)
                {
                    last = next.Sequence;
                    yield return next;
                }
            }

            // A stream that delivered events was healthy: start the backoff again from the base delay.
            var delay = Backoff(connected ? 0 : failures++, options);
            await Task.Delay(delay, options.TimeProvider, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Sends samples in batches; a batch that gets no answer is sent again whole (the server counts a
    /// sample it already stored as a duplicate, so a resend never counts twice).
    /// </summary>
    public async Task<UsageReport> ReportUsageAsync(IEnumerable<UsageSample> samples, int batchSize = 10_000, IProgress<long>? progress = null,
        CancellationToken cancellationToken = default)
    {
        var total = new UsageReport();
        long sent = 0;
        foreach (var batch in samples.Chunk(batchSize))
        {
            var response = await runner.RunAsync(runner.Mutations, CallKind.Mutation, async token =>
            {
                using var call = stub.ReportUsage(runner.AttemptOptions(token));
                try
                {
                    foreach (var chunk in batch.Chunk(SamplesPerMessage))
                    {
                        var message = new ReportUsageRequest();
                        message.Samples.AddRange(chunk);
                        await call.RequestStream.WriteAsync(message, token).ConfigureAwait(false);
                    }

                    await call.RequestStream.CompleteAsync().ConfigureAwait(false);
                }
                catch (Exception e) when (e is IOException or HttpRequestException or InvalidOperationException && !token.IsCancellationRequested)
                {
                    // The stream broke while sending: no answer, so the batch is sent again (duplicates are counted, not stored).
                    throw new RpcException(new Status(StatusCode.Unavailable, "the usage stream broke while sending", e));
                }

                return await call.ResponseAsync.ConfigureAwait(false);
            }, cancellationToken).ConfigureAwait(false);
            total.Add(response);
            sent += batch.Length;
            progress?.Report(sent);
        }

        return total;
    }

    private static bool IsReconnectable(StatusCode code) =>
        code is StatusCode.Unavailable or StatusCode.Internal or StatusCode.Unknown or StatusCode.DeadlineExceeded or StatusCode.Aborted or StatusCode.Cancelled;

    private static TimeSpan Backoff(int failures, ProcurementClientOptions options)
    {
        var exponential = options.RetryBaseDelay.TotalMilliseconds * Math.Pow(2, Math.Min(failures, 16));
        var capped = Math.Min(exponential, options.WatchReconnectMaxDelay.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(capped * (0.5 + (Random.Shared.NextDouble() / 2))); // jitter: 50–100 %
    }

    /// <summary>A dry run changes nothing, so it is retried as a read and needs no request id.</summary>
    private Task<TResponse> MutateUnlessDryRun<TRequest, TResponse>(TRequest request, bool dryRun, Func<CallOptions, AsyncUnaryCall<TResponse>> call, CancellationToken ct)
        where TRequest : Google.Protobuf.IMessage =>
        dryRun ? runner.UnaryAsync(CallKind.Read, call, ct) : Mutate(request, call, ct);

    private Task<TResponse> Mutate<TRequest, TResponse>(TRequest request, Func<CallOptions, AsyncUnaryCall<TResponse>> call, CancellationToken ct)
        where TRequest : Google.Protobuf.IMessage
    {
        RequestIds.Ensure(request, runner.Options.TimeProvider);
        return runner.UnaryAsync(CallKind.Mutation, call, ct);
    }
}

/// <summary>The totals of a usage report.</summary>
public sealed class UsageReport
{
    public long Accepted { get; private set; }

    public long Duplicate { get; private set; }

    public long Rejected { get; private set; }

    public List<UsageRejection> Rejections { get; } = [];

    internal void Add(ReportUsageResponse r)
    {
        Accepted += r.Accepted;
        Duplicate += r.Duplicate;
        Rejected += r.Rejected;
        Rejections.AddRange(r.Rejections);
    }
}
