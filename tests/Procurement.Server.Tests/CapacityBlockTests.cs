using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Procurement.Api.V1;
using Procurement.Server.Auth;
using Procurement.Server.Hosting;
using Procurement.TestSupport;

namespace Procurement.Server.Tests;

/// <summary>Capacity blocks over the API: booking against the calendar, offerings, cancellation, and blocks in admission.</summary>
public sealed class CapacityBlockTests : IAsyncLifetime
{
    private ServerHarness _server = null!;

    // The harness clock starts on a whole hour.
    private DateTimeOffset Now => _server.Clock.GetUtcNow();

    private DateTimeOffset H(int hours) => ServerHarness.DefaultNow.AddHours(hours);

    public async Task InitializeAsync()
    {
        _server = await ServerHarness.StartAsync();
        await Fixtures.CreatePoolsAsync(_server, h100Capacity: 10, h200Capacity: 10);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private AllocationService.AllocationServiceClient Ops => _server.OperatorAllocations;

    /// <summary>H100 terms with a block rate of $3.00/GPU-hour, a 24-hour cancellation notice and <paramref name="maxBlockUnits"/>.</summary>
    private Task<Contract> ContractAsync(string tenant, long reserved, long burst, long maxBlockUnits, int priority = 0)
    {
        var terms = Fixtures.H100Terms(Now, reserved, burst, priority);
        terms.IndexLinkage = null;
        terms.Entitlements[0].MaxBlockUnits = maxBlockUnits;
        terms.BlockRates.Add(new BlockRate { AcceleratorType = "H100-SXM-80GB", UnitPrice = Fixtures.Usd(3_000_000) });
        terms.BlockCancellationNotice = Duration.FromTimeSpan(TimeSpan.FromHours(24));
        return Fixtures.CreateActiveContractAsync(_server, tenant, terms);
    }

    private static BookCapacityBlockRequest Booking(Contract c, long units, DateTimeOffset start, DateTimeOffset end, bool dryRun = false) => new()
    {
        RequestId = Rpc.NewRequestId(), ContractId = c.ContractId, PoolId = Fixtures.H100, Units = units,
        StartTime = Timestamp.FromDateTimeOffset(start), EndTime = Timestamp.FromDateTimeOffset(end), DryRun = dryRun,
    };

    private async Task<CapacityBlock> BookAsync(Contract c, long units, DateTimeOffset start, DateTimeOffset end) =>
        (await Ops.BookCapacityBlockAsync(Booking(c, units, start, end))).Block;

    private Task<RequestAllocationResponse> RequestAsync(Contract c, long units) =>
        Ops.RequestAllocationAsync(new RequestAllocationRequest { RequestId = Rpc.NewRequestId(), ContractId = c.ContractId, PoolId = Fixtures.H100, Units = units }).ResponseAsync;

    private async Task SweepAtAsync(DateTimeOffset t)
    {
        _server.Clock.SetUtcNow(t);
        await _server.Services.GetRequiredService<AllocationSweeper>().SweepOnceAsync(CancellationToken.None);
    }

    [Fact]
    public async Task Book_PricesTheWindowAndDryRunBooksNothing()
    {
        var a = await ContractAsync("lab-a", 4, 2, maxBlockUnits: 4);
        var dry = await Ops.BookCapacityBlockAsync(Booking(a, 4, H(2), H(5), dryRun: true));
        Assert.True(dry.DryRun);
        Assert.True(dry.Fits);
        Assert.Equal("", dry.Block.BlockId);
        // 4 units × 3 hours × $3.00.
        Assert.Equal(36_000_000, dry.Block.Price.AmountMicros);
        Assert.Empty((await Ops.ListCapacityBlocksAsync(new ListCapacityBlocksRequest { ContractId = a.ContractId })).Blocks);

        var block = await BookAsync(a, 4, H(2), H(5));
        Assert.StartsWith("blk_", block.BlockId);
        Assert.Equal(CapacityBlockState.Booked, block.State);
        Assert.Equal("3", block.UnitPrice);
        Assert.Equal("1", block.IndexFactor);
        Assert.Equal(block, (await Ops.GetCapacityBlockAsync(new GetCapacityBlockRequest { BlockId = block.BlockId })).Block);
    }

    [Fact]
    public async Task Book_BadWindow_NamesTheFields()
    {
        var a = await ContractAsync("lab-a", 4, 2, maxBlockUnits: 4);
        var e = await Rpc.FailsWith(StatusCode.InvalidArgument, Ops.BookCapacityBlockAsync(Booking(a, 0, H(2).AddMinutes(30), H(2).AddMinutes(30))));
        Assert.Equal(["end_time", "start_time", "units"], e.BadFields().Order(StringComparer.Ordinal));
        await Rpc.FailsWith(StatusCode.InvalidArgument, Ops.BookCapacityBlockAsync(Booking(a, 1, H(-1), H(1))));
        await Rpc.FailsWith(StatusCode.InvalidArgument, Ops.BookCapacityBlockAsync(Booking(a, 1, H(1), H(1 + (24 * 183)))));
    }

    [Fact]
    public async Task Book_AboveTheEntitlement_IsRefusedWithTheInstant()
    {
        var a = await ContractAsync("lab-a", 2, 2, maxBlockUnits: 4);
        await BookAsync(a, 3, H(2), H(5));
        var e = await Rpc.FailsWith(StatusCode.FailedPrecondition, "BLOCK_ENTITLEMENT_EXCEEDED", Ops.BookCapacityBlockAsync(Booking(a, 2, H(4), H(8))));
        Assert.Equal("2026-03-10T16:00:00Z", e.Metadata()["first_instant"]);
        Assert.Equal("5", e.Metadata()["reserved_units"]);
        Assert.Equal("4", e.Metadata()["limit_units"]);
        // After the first block ends there is room.
        await BookAsync(a, 2, H(5), H(8));
    }

    [Fact]
    public async Task Book_ThatWouldOverbookThePool_NamesTheInstantAndTheVisibleBlocks()
    {
        var a = await ContractAsync("lab-a", 4, 2, maxBlockUnits: 4);
        var c = await ContractAsync("lab-c", 2, 2, maxBlockUnits: 4);
        // Base reservations 6 of 10: a's block of 4 fills the pool from hour 2 to hour 5.
        var first = await BookAsync(a, 4, H(2), H(5));

        var e = await Rpc.FailsWith(StatusCode.FailedPrecondition, "BLOCK_DOES_NOT_FIT", Ops.BookCapacityBlockAsync(Booking(c, 1, H(1), H(3))));
        Assert.Equal("2026-03-10T14:00:00Z", e.Metadata()["first_instant"]);
        Assert.Equal(first.BlockId, e.Metadata()["block_ids"]);

        // The other tenant is told where, not whose.
        var customerC = _server.Allocations(await _server.CreateKeyAsync(Role.Customer, "lab-c"));
        var dry = await customerC.BookCapacityBlockAsync(Booking(c, 1, H(1), H(3), dryRun: true));
        Assert.False(dry.Fits);
        Assert.Equal("BLOCK_DOES_NOT_FIT", dry.MisfitReason);
        Assert.Equal(H(2), dry.MisfitTime.ToDateTimeOffset());
        Assert.Empty(dry.BlocksInTheWay);
        Assert.Equal(11, dry.MisfitReservedUnits);
        Assert.Equal(10, dry.MisfitLimitUnits);
    }

    [Fact]
    public async Task FindOfferings_ReturnsTheEarliestWindowsThatFitAndPagesOn()
    {
        var a = await ContractAsync("lab-a", 4, 2, maxBlockUnits: 4);
        var c = await ContractAsync("lab-c", 2, 2, maxBlockUnits: 4);
        await BookAsync(a, 4, H(2), H(5));

        var request = new FindCapacityBlockOfferingsRequest { ContractId = c.ContractId, PoolId = Fixtures.H100, Units = 1, DurationHours = 2, PageSize = 2 };
        var page = await Ops.FindCapacityBlockOfferingsAsync(request);
        Assert.Equal([H(5), H(6)], page.Offerings.Select(o => o.StartTime.ToDateTimeOffset()));
        Assert.All(page.Offerings, o => Assert.Equal(6_000_000, o.Price.AmountMicros));
        request.PageToken = page.NextPageToken;
        var next = await Ops.FindCapacityBlockOfferingsAsync(request);
        Assert.Equal([H(7), H(8)], next.Offerings.Select(o => o.StartTime.ToDateTimeOffset()));

        // Each offering can be booked as offered.
        await BookAsync(c, 1, page.Offerings[0].StartTime.ToDateTimeOffset(), page.Offerings[0].EndTime.ToDateTimeOffset());
    }

    [Fact]
    public async Task Cancel_OutsideTheNoticeIsFree_InsideItChargesTheWholePrice()
    {
        var a = await ContractAsync("lab-a", 4, 2, maxBlockUnits: 4);
        var far = await BookAsync(a, 2, H(48), H(50));
        var near = await BookAsync(a, 2, H(10), H(12));

        var freeCancel = (await Ops.CancelCapacityBlockAsync(new CancelCapacityBlockRequest { RequestId = Rpc.NewRequestId(), BlockId = far.BlockId, Etag = far.Etag })).Block;
        Assert.Equal(CapacityBlockState.Cancelled, freeCancel.State);
        Assert.Equal(0, freeCancel.CancellationCharge.AmountMicros);
        var charged = (await Ops.CancelCapacityBlockAsync(new CancelCapacityBlockRequest { RequestId = Rpc.NewRequestId(), BlockId = near.BlockId })).Block;
        Assert.Equal(12_000_000, charged.CancellationCharge.AmountMicros);

        // A cancelled block frees its place in the calendar.
        await BookAsync(a, 4, H(10), H(12));
    }

    [Fact]
    public async Task Cancel_AStartedBlock_IsRefused()
    {
        var a = await ContractAsync("lab-a", 4, 2, maxBlockUnits: 4);
        var block = await BookAsync(a, 2, H(1), H(3));
        await SweepAtAsync(H(1));
        await Rpc.FailsWith(StatusCode.FailedPrecondition, "BLOCK_NOT_CANCELLABLE",
            Ops.CancelCapacityBlockAsync(new CancelCapacityBlockRequest { RequestId = Rpc.NewRequestId(), BlockId = block.BlockId }));
    }

    [Fact]
    public async Task ActiveBlock_RaisesTheReservation_AndItsEndTakesBackTheExcess()
    {
        var a = await ContractAsync("lab-a", 4, 2, maxBlockUnits: 4);
        var b = await ContractAsync("lab-b", 2, 6, maxBlockUnits: 0);
        var block = await BookAsync(a, 4, H(2), H(5));
        await RequestAsync(a, 4);
        await RequestAsync(b, 2);
        var borrowed = await RequestAsync(b, 4);
        Assert.Equal(AllocationState.Active, borrowed.Allocation.State);

        // In the block, a's reservation is 8: 4 more units are guaranteed and preempt b's borrowing.
        await SweepAtAsync(H(2));
        Assert.Equal(CapacityBlockState.Active, (await Ops.GetCapacityBlockAsync(new GetCapacityBlockRequest { BlockId = block.BlockId })).Block.State);
        _server.Clock.SetUtcNow(H(3));
        var inBlock = await RequestAsync(a, 4);
        Assert.True(inBlock.Decision.Guaranteed);
        Assert.Equal([borrowed.Allocation.AllocationId], inBlock.Decision.Preemptions.Select(p => p.AllocationId));
        // The pool's status counts the block as admission does: a holds 8 within 4 reserved + 4 in its block.
        var status = await Ops.GetPoolStatusAsync(new GetPoolStatusRequest { PoolId = Fixtures.H100 });
        Assert.Equal(4, status.BlockUnits);
        var standing = status.Contracts.Single(x => x.ContractId == a.ContractId);
        Assert.Equal((4L, 4L, 8L, false), (standing.ReservedUnits, standing.BlockUnits, standing.ActiveUnits, standing.Borrowing));

        // At its end a holds 8 against 4 reserved + 2 burst: the latest allocation (4 units) covers the excess of 2.
        await SweepAtAsync(H(5).AddMinutes(3));
        var ended = (await Ops.GetAllocationAsync(new GetAllocationRequest { AllocationId = inBlock.Allocation.AllocationId })).Allocation;
        Assert.Equal(AllocationState.Expired, ended.State);
        Assert.Equal(AllocationCause.CapacityBlockEnded, ended.Cause);
        Assert.Equal(H(5), ended.FinishTime.ToDateTimeOffset());
        Assert.Equal(CapacityBlockState.Completed, (await Ops.GetCapacityBlockAsync(new GetCapacityBlockRequest { BlockId = block.BlockId })).Block.State);

        var events = new List<AllocationEvent>();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using (var watch = Ops.WatchAllocations(new WatchAllocationsRequest { PoolId = Fixtures.H100 }, cancellationToken: timeout.Token))
        {
            while (await watch.ResponseStream.MoveNext(timeout.Token))
            {
                events.Add(watch.ResponseStream.Current.Event);
                if (events.Count(e => e.BlockId == block.BlockId) == 2)
                {
                    break;
                }
            }
        }

        var blockEvents = events.Where(e => e.BlockId == block.BlockId).ToList();
        Assert.Equal([AllocationEventType.BlockStarted, AllocationEventType.BlockEnded], blockEvents.Select(e => e.Type));
        Assert.Equal([H(2), H(5)], blockEvents.Select(e => e.Time.ToDateTimeOffset()));
        Assert.Equal([CapacityBlockState.Active, CapacityBlockState.Completed], blockEvents.Select(e => e.BlockState));
    }

    [Fact]
    public async Task CapacityCut_ThatWouldOverbookTheCalendar_IsRefusedWithTheInstant()
    {
        var a = await ContractAsync("lab-a", 4, 2, maxBlockUnits: 4);
        var block = await BookAsync(a, 4, H(20), H(22));
        var e = await Rpc.FailsWith(StatusCode.FailedPrecondition, "RESERVATIONS_EXCEED_CAPACITY",
            Ops.UpdatePoolCapacityAsync(new UpdatePoolCapacityRequest { RequestId = Rpc.NewRequestId(), PoolId = Fixtures.H100, CapacityUnits = 7 }));
        Assert.Equal("2026-03-11T08:00:00Z", e.Metadata()["h100.first_instant"]);
        Assert.Equal(block.BlockId, e.Metadata()["h100.block_ids"]);
        await Ops.UpdatePoolCapacityAsync(new UpdatePoolCapacityRequest { RequestId = Rpc.NewRequestId(), PoolId = Fixtures.H100, CapacityUnits = 8 });
    }

    [Fact]
    public async Task Termination_CancelsFutureBlocksFree_AndEndsActiveOnes()
    {
        var a = await ContractAsync("lab-a", 4, 2, maxBlockUnits: 4);
        var running = await BookAsync(a, 2, H(1), H(5));
        var future = await BookAsync(a, 2, H(6), H(8));
        await SweepAtAsync(H(2));
        await _server.OperatorContracts.TerminateContractAsync(new TerminateContractRequest { RequestId = Rpc.NewRequestId(), ContractId = a.ContractId, Etag = (await _server.OperatorContracts.GetContractAsync(new GetContractRequest { ContractId = a.ContractId })).Contract.Etag });
        var ran = (await Ops.GetCapacityBlockAsync(new GetCapacityBlockRequest { BlockId = running.BlockId })).Block;
        Assert.Equal(CapacityBlockState.Completed, ran.State);
        Assert.Equal(H(2), ran.EndTime.ToDateTimeOffset());
        var cancelled = (await Ops.GetCapacityBlockAsync(new GetCapacityBlockRequest { BlockId = future.BlockId })).Block;
        Assert.Equal(CapacityBlockState.Cancelled, cancelled.State);
        Assert.Equal(0, cancelled.CancellationCharge.AmountMicros);
    }

    [Fact]
    public async Task Blocks_OfAnotherTenant_AreNotFound()
    {
        var a = await ContractAsync("lab-a", 4, 2, maxBlockUnits: 4);
        var block = await BookAsync(a, 2, H(1), H(5));
        var customerB = _server.Allocations(await _server.CreateKeyAsync(Role.Customer, "lab-b"));
        await Rpc.FailsWith(StatusCode.NotFound, customerB.GetCapacityBlockAsync(new GetCapacityBlockRequest { BlockId = block.BlockId }));
        Assert.Empty((await customerB.ListCapacityBlocksAsync(new ListCapacityBlocksRequest())).Blocks);
        await Rpc.FailsWith(StatusCode.NotFound, customerB.BookCapacityBlockAsync(Booking(a, 1, H(10), H(11))));
    }

    [Fact]
    public async Task Amendment_EndingTheTermBeforeABlockEnds_IsRefused()
    {
        var a = await ContractAsync("lab-a", 4, 2, maxBlockUnits: 4);
        var block = await BookAsync(a, 2, H(24 * 40), H(24 * 40 + 5));
        var terms = (await _server.OperatorContracts.GetContractAsync(new GetContractRequest { ContractId = a.ContractId })).Contract;
        var amended = terms.Terms.Clone();
        // The term would end on 15 April 2026, before the block on 19 April.
        amended.EndTime = Timestamp.FromDateTimeOffset(new DateTimeOffset(2026, 4, 15, 0, 0, 0, TimeSpan.Zero));
        var e = await Rpc.FailsWith(StatusCode.FailedPrecondition, "BLOCKS_OUTSIDE_TERM", _server.OperatorContracts.AmendContractAsync(new AmendContractRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = a.ContractId, Etag = terms.Etag, Terms = amended, EffectiveMonth = new BillingMonth { Year = 2026, Month = 4 },
        }));
        Assert.Equal(block.BlockId, e.Metadata()["block_ids"]);
    }
}
