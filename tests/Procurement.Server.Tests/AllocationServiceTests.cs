using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Procurement.Api.V1;
using Procurement.Server.Auth;
using Procurement.Server.Hosting;
using Procurement.TestSupport;

namespace Procurement.Server.Tests;

public sealed class AllocationServiceTests : IAsyncLifetime
{
    private ServerHarness _server = null!;

    public async Task InitializeAsync()
    {
        _server = await ServerHarness.StartAsync();
        await Fixtures.CreatePoolsAsync(_server, h100Capacity: 10, h200Capacity: 10);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private AllocationService.AllocationServiceClient Ops => _server.OperatorAllocations;

    private Task<Contract> ContractAsync(string tenant, long reserved, long burst, int priority = 0, bool preempt = false) =>
        Fixtures.CreateActiveContractAsync(_server, tenant, Fixtures.H100Terms(_server.Clock.GetUtcNow(), reserved, burst, priority, preempt));

    private async Task<RequestAllocationResponse> RequestAsync(Contract c, long units, bool wait = false, Duration? duration = null, AllocationService.AllocationServiceClient? client = null) =>
        await (client ?? Ops).RequestAllocationAsync(new RequestAllocationRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = c.ContractId, PoolId = Fixtures.H100, Units = units,
            WaitIfUnavailable = wait, Duration = duration,
        });

    private async Task<Allocation> GetAsync(string id) => (await Ops.GetAllocationAsync(new GetAllocationRequest { AllocationId = id })).Allocation;

    [Fact]
    public async Task Request_WithinReservation_IsAdmittedAndGuaranteed()
    {
        var k = await ContractAsync("lab-a", 4, 2);
        var r = await RequestAsync(k, 3);
        Assert.Equal(AllocationState.Active, r.Allocation.State);
        Assert.Equal(AdmissionOutcome.Admit, r.Decision.Outcome);
        Assert.True(r.Decision.Guaranteed);
        Assert.Equal(_server.Clock.GetUtcNow(), r.Allocation.AdmitTime.ToDateTimeOffset());
        Assert.Equal(r.Allocation, await GetAsync(r.Allocation.AllocationId));
    }

    [Fact]
    public async Task Request_AboveBurstLimit_IsRefusedWithTheNumbers()
    {
        var k = await ContractAsync("lab-a", 4, 2);
        await RequestAsync(k, 5);
        var e = await Rpc.FailsWith(StatusCode.FailedPrecondition, "BURST_LIMIT_EXCEEDED", Ops.RequestAllocationAsync(new RequestAllocationRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = k.ContractId, PoolId = Fixtures.H100, Units = 2,
        }));
        Assert.Equal("5", e.Metadata()["held_units"]);
        Assert.Equal("4", e.Metadata()["reserved_units"]);
        Assert.Equal("2", e.Metadata()["burst_limit_units"]);
    }

    [Fact]
    public async Task Request_SuspendedContract_IsRefused()
    {
        var k = await ContractAsync("lab-a", 4, 2);
        await _server.OperatorContracts.SuspendContractAsync(new SuspendContractRequest { RequestId = Rpc.NewRequestId(), ContractId = k.ContractId });
        await Rpc.FailsWith(StatusCode.FailedPrecondition, "CONTRACT_NOT_ACTIVE", Ops.RequestAllocationAsync(new RequestAllocationRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = k.ContractId, PoolId = Fixtures.H100, Units = 1,
        }));
    }

    [Fact]
    public async Task Request_BadFields_AreNamed()
    {
        var e = await Rpc.FailsWith(StatusCode.InvalidArgument, Ops.RequestAllocationAsync(new RequestAllocationRequest
        {
            RequestId = "", ContractId = "", PoolId = "Bad Pool", Units = 0,
            EndTime = Timestamp.FromDateTimeOffset(_server.Clock.GetUtcNow().AddHours(1)), Duration = Duration.FromTimeSpan(TimeSpan.FromHours(1)),
        }));
        Assert.Equal(["contract_id", "pool_id", "units", "duration", "request_id"], e.BadFields());
    }

    [Fact]
    public async Task Request_GuaranteedOnAFullPool_PreemptsTheBorrowerAndSaysWhom()
    {
        var borrower = await ContractAsync("lab-b", 0, 10);
        var owner = await ContractAsync("lab-a", 6, 0);
        var held = await RequestAsync(borrower, 10);

        var dry = await Ops.RequestAllocationAsync(new RequestAllocationRequest { ContractId = owner.ContractId, PoolId = Fixtures.H100, Units = 6, DryRun = true });
        Assert.Equal(AdmissionOutcome.Admit, dry.Decision.Outcome);
        Assert.Null(dry.Allocation);
        var preemption = Assert.Single(dry.Decision.Preemptions);
        Assert.Equal(held.Allocation.AllocationId, preemption.AllocationId);
        Assert.Equal(borrower.ContractId, preemption.ContractId);
        Assert.Equal("lab-b", preemption.TenantId);
        Assert.Equal(10, preemption.Units);
        Assert.Equal(AllocationState.Active, (await GetAsync(held.Allocation.AllocationId)).State); // the dry run changed nothing

        var real = await RequestAsync(owner, 6);
        Assert.Equal(AllocationState.Active, real.Allocation.State);
        Assert.Equal(dry.Decision, real.Decision);
        var victim = await GetAsync(held.Allocation.AllocationId);
        Assert.Equal(AllocationState.Preempted, victim.State);
        Assert.Equal(AllocationCause.GuaranteedRequest, victim.Cause);
    }

    [Fact]
    public async Task Request_BurstOnAFullPool_QueuesWhenAskedAndIsAdmittedWhenCapacityFrees()
    {
        var a = await ContractAsync("lab-a", 0, 10);
        var b = await ContractAsync("lab-b", 0, 10);
        var first = await RequestAsync(a, 8);

        await Rpc.FailsWith(StatusCode.ResourceExhausted, "CAPACITY_UNAVAILABLE", Ops.RequestAllocationAsync(new RequestAllocationRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = b.ContractId, PoolId = Fixtures.H100, Units = 4,
        }));
        var queued = await RequestAsync(b, 4, wait: true);
        Assert.Equal(AllocationState.Pending, queued.Allocation.State);
        Assert.Equal(AdmissionOutcome.Queue, queued.Decision.Outcome);

        await Ops.ReleaseAllocationAsync(new ReleaseAllocationRequest { RequestId = Rpc.NewRequestId(), AllocationId = first.Allocation.AllocationId });
        var admitted = await GetAsync(queued.Allocation.AllocationId);
        Assert.Equal(AllocationState.Active, admitted.State);
        Assert.Equal(AllocationCause.CapacityFreed, admitted.Cause);
    }

    [Fact]
    public async Task CancellingAPendingRequest_RetriesThePoolsQueue()
    {
        // Pool of 10: G (reserved 6) holds 2, the borrower BO holds 8; Q queues 3 units, then 9.
        var g = await ContractAsync("lab-g", 6, 0);
        var bo = await ContractAsync("lab-bo", 0, 8);
        var q = await ContractAsync("lab-q", 0, 12);
        await RequestAsync(g, 2);
        await RequestAsync(bo, 8);
        var small = await RequestAsync(q, 3, wait: true);
        var large = await RequestAsync(q, 9, wait: true);

        // G's guaranteed 4 preempts BO's 8, leaving 4 free; a preemption is not a release, so Q waits on.
        Assert.Single((await RequestAsync(g, 4)).Decision.Preemptions);
        Assert.Equal(AllocationState.Pending, (await GetAsync(small.Allocation.AllocationId)).State);

        await Ops.ReleaseAllocationAsync(new ReleaseAllocationRequest { RequestId = Rpc.NewRequestId(), AllocationId = large.Allocation.AllocationId });

        var admitted = await GetAsync(small.Allocation.AllocationId);
        Assert.Equal(AllocationState.Active, admitted.State);
        Assert.Equal(AllocationCause.CapacityFreed, admitted.Cause);
    }

    [Fact]
    public async Task Release_PendingRequest_IsCancelled_AndReleaseIsIdempotent()
    {
        var a = await ContractAsync("lab-a", 0, 20);
        await RequestAsync(a, 10);
        var queued = await RequestAsync(a, 1, wait: true);
        Assert.Equal(AllocationState.Pending, queued.Allocation.State);
        var cancelled = (await Ops.ReleaseAllocationAsync(new ReleaseAllocationRequest { RequestId = Rpc.NewRequestId(), AllocationId = queued.Allocation.AllocationId })).Allocation;
        Assert.Equal(AllocationState.Cancelled, cancelled.State);
        var again = (await Ops.ReleaseAllocationAsync(new ReleaseAllocationRequest { RequestId = Rpc.NewRequestId(), AllocationId = queued.Allocation.AllocationId })).Allocation;
        Assert.Equal(cancelled, again);
    }

    [Fact]
    public async Task Request_Replayed_AllocatesOnce()
    {
        var a = await ContractAsync("lab-a", 4, 0);
        var request = new RequestAllocationRequest { RequestId = Rpc.NewRequestId(), ContractId = a.ContractId, PoolId = Fixtures.H100, Units = 4 };
        var first = await Ops.RequestAllocationAsync(request);
        var second = await Ops.RequestAllocationAsync(request);
        Assert.Equal(first, second);
        Assert.Single((await Ops.ListAllocationsAsync(new ListAllocationsRequest { ContractId = a.ContractId })).Allocations);
    }

    [Fact]
    public async Task Allocation_WithDuration_ExpiresWhenTheClockPassesItsEnd()
    {
        var a = await ContractAsync("lab-a", 0, 10);
        var b = await ContractAsync("lab-b", 0, 10);
        var timed = await RequestAsync(a, 10, duration: Duration.FromTimeSpan(TimeSpan.FromHours(2)));
        Assert.Equal(_server.Clock.GetUtcNow().AddHours(2), timed.Allocation.EndTime.ToDateTimeOffset());
        var waiting = await RequestAsync(b, 5, wait: true);

        _server.Clock.Advance(TimeSpan.FromHours(2));
        await _server.Services.GetRequiredService<AllocationSweeper>().SweepOnceAsync(CancellationToken.None);

        var expired = await GetAsync(timed.Allocation.AllocationId);
        Assert.Equal(AllocationState.Expired, expired.State);
        Assert.Equal(AllocationCause.EndTimeReached, expired.Cause);
        Assert.Equal(AllocationState.Active, (await GetAsync(waiting.Allocation.AllocationId)).State);
    }

    [Fact]
    public async Task Release_AfterTheEndTimePassed_ReturnsItExpiredAtItsEnd_NotReleased()
    {
        // The background sweep never comes round here: the release's own sweep has to end it first.
        await using var server = await ServerHarness.StartAsync(extraArgs: ["--Procurement:SweepInterval=49.00:00:00"]);
        await Fixtures.CreatePoolsAsync(server, h100Capacity: 10, h200Capacity: 10);
        var a = await Fixtures.CreateActiveContractAsync(server, "lab-a", Fixtures.H100Terms(server.Clock.GetUtcNow(), 0, 10));
        var timed = (await server.OperatorAllocations.RequestAllocationAsync(new RequestAllocationRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = a.ContractId, PoolId = Fixtures.H100, Units = 10, Duration = Duration.FromTimeSpan(TimeSpan.FromHours(2)),
        })).Allocation;

        server.Clock.Advance(TimeSpan.FromHours(3));
        var released = (await server.OperatorAllocations.ReleaseAllocationAsync(new ReleaseAllocationRequest { RequestId = Rpc.NewRequestId(), AllocationId = timed.AllocationId })).Allocation;

        Assert.Equal((AllocationState.Expired, AllocationCause.EndTimeReached, timed.EndTime), (released.State, released.Cause, released.FinishTime));
        Assert.Equal(released, (await server.OperatorAllocations.GetAllocationAsync(new GetAllocationRequest { AllocationId = timed.AllocationId })).Allocation);
    }

    [Fact]
    public async Task QueuedRequestWithDuration_RunsForItsDurationFromAdmission_AndKeepsItsTimesWhenReleased()
    {
        var a = await ContractAsync("lab-a", 0, 10);
        var b = await ContractAsync("lab-b", 0, 10);
        var blocker = await RequestAsync(a, 10);
        var requestedAt = _server.Clock.GetUtcNow();
        var queued = await RequestAsync(b, 4, wait: true, duration: Duration.FromTimeSpan(TimeSpan.FromHours(2)));
        Assert.Equal(AllocationState.Pending, queued.Allocation.State);

        _server.Clock.Advance(TimeSpan.FromMinutes(10));
        var admittedAt = _server.Clock.GetUtcNow();
        await Ops.ReleaseAllocationAsync(new ReleaseAllocationRequest { RequestId = Rpc.NewRequestId(), AllocationId = blocker.Allocation.AllocationId });
        var admitted = await GetAsync(queued.Allocation.AllocationId);
        Assert.Equal((AllocationState.Active, AllocationCause.CapacityFreed), (admitted.State, admitted.Cause));
        Assert.Equal((requestedAt, admittedAt, admittedAt.AddHours(2)),
            (admitted.RequestTime.ToDateTimeOffset(), admitted.AdmitTime.ToDateTimeOffset(), admitted.EndTime.ToDateTimeOffset()));

        _server.Clock.Advance(TimeSpan.FromMinutes(5));
        await Ops.ReleaseAllocationAsync(new ReleaseAllocationRequest { RequestId = Rpc.NewRequestId(), AllocationId = admitted.AllocationId });
        var released = await GetAsync(admitted.AllocationId);
        Assert.Equal(AllocationState.Released, released.State);
        Assert.Equal((admittedAt, admittedAt.AddHours(2), admittedAt.AddMinutes(5)),
            (released.AdmitTime.ToDateTimeOffset(), released.EndTime.ToDateTimeOffset(), released.FinishTime.ToDateTimeOffset()));
    }

    [Fact]
    public async Task Allocation_PastItsEnd_IsNotCountedEvenBeforeTheSweeperRuns()
    {
        var a = await ContractAsync("lab-a", 0, 10);
        var b = await ContractAsync("lab-b", 0, 10);
        await RequestAsync(a, 10, duration: Duration.FromTimeSpan(TimeSpan.FromMinutes(30)));
        _server.Clock.Advance(TimeSpan.FromMinutes(30));
        var r = await RequestAsync(b, 10);
        Assert.Equal(AllocationState.Active, r.Allocation.State);
    }

    [Fact]
    public async Task SuspendingAContract_ReleasesItsAllocationsAndCancelsItsQueue()
    {
        var a = await ContractAsync("lab-a", 0, 20);
        var held = await RequestAsync(a, 10);
        var queued = await RequestAsync(a, 5, wait: true);
        await _server.OperatorContracts.SuspendContractAsync(new SuspendContractRequest { RequestId = Rpc.NewRequestId(), ContractId = a.ContractId });

        var released = await GetAsync(held.Allocation.AllocationId);
        Assert.Equal(AllocationState.Released, released.State);
        Assert.Equal(AllocationCause.ContractSuspended, released.Cause);
        var cancelled = await GetAsync(queued.Allocation.AllocationId);
        Assert.Equal(AllocationState.Cancelled, cancelled.State);
        Assert.Equal(AllocationCause.ContractSuspended, cancelled.Cause);
    }

    [Fact]
    public async Task ContractExpiry_ExpiresItsAllocations()
    {
        var terms = Fixtures.H100Terms(_server.Clock.GetUtcNow(), 0, 10);
        terms.EndTime = Timestamp.FromDateTimeOffset(new DateTimeOffset(2026, 4, 1, 0, 0, 0, TimeSpan.Zero));
        var a = await Fixtures.CreateActiveContractAsync(_server, "lab-a", terms);
        var held = await RequestAsync(a, 10);
        _server.Clock.SetUtcNow(new DateTimeOffset(2026, 4, 1, 0, 0, 0, TimeSpan.Zero));
        await _server.Services.GetRequiredService<AllocationSweeper>().SweepOnceAsync(CancellationToken.None);
        var expired = await GetAsync(held.Allocation.AllocationId);
        Assert.Equal(AllocationState.Expired, expired.State);
        Assert.Equal(AllocationCause.ContractExpired, expired.Cause);
    }

    // The writer keeps each pool's ledger between decisions; a contract's standing in it must still
    // change at the instants the terms say, with no write to mark them.
    [Fact]
    public async Task ContractWhoseTermHasEnded_IsRefused_ThoughItAskedJustBefore()
    {
        var termEnd = new DateTimeOffset(2026, 4, 1, 0, 0, 0, TimeSpan.Zero);
        var terms = Fixtures.H100Terms(_server.Clock.GetUtcNow(), 0, 5);
        terms.EndTime = Timestamp.FromDateTimeOffset(termEnd);
        var ending = await Fixtures.CreateActiveContractAsync(_server, "lab-a", terms);
        var other = await ContractAsync("lab-b", 0, 5);
        var held = await RequestAsync(ending, 1);
        await Ops.ReleaseAllocationAsync(new ReleaseAllocationRequest { RequestId = Rpc.NewRequestId(), AllocationId = held.Allocation.AllocationId });

        _server.Clock.SetUtcNow(termEnd);
        await RequestAsync(other, 1);
        await Rpc.FailsWith(StatusCode.FailedPrecondition, "CONTRACT_NOT_ACTIVE", Ops.RequestAllocationAsync(new RequestAllocationRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = ending.ContractId, PoolId = Fixtures.H100, Units = 1,
        }));
    }

    [Fact]
    public async Task AmendedBurstLimit_AppliesFromItsMonth_ThoughThePoolWasDecidedJustBefore()
    {
        var k = await ContractAsync("lab-a", 0, 2); // clock: 2026-03-10
        var other = await ContractAsync("lab-b", 0, 2);
        var amended = Fixtures.H100Terms(_server.Clock.GetUtcNow(), 0, 4);
        await _server.OperatorContracts.AmendContractAsync(new AmendContractRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = k.ContractId, Etag = k.Etag,
            EffectiveMonth = new BillingMonth { Year = 2026, Month = 4 }, Terms = amended,
        });
        await RequestAsync(k, 2);
        await Rpc.FailsWith(StatusCode.FailedPrecondition, "BURST_LIMIT_EXCEEDED", Ops.RequestAllocationAsync(new RequestAllocationRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = k.ContractId, PoolId = Fixtures.H100, Units = 1,
        }));
        await RequestAsync(other, 1);

        _server.Clock.SetUtcNow(new DateTimeOffset(2026, 4, 1, 0, 0, 0, TimeSpan.Zero));
        Assert.Equal(AllocationState.Active, (await RequestAsync(k, 2)).Allocation.State);
    }

    [Fact]
    public async Task CapacityCut_PreemptsBorrowersWithCauseCapacityReduced()
    {
        var owner = await ContractAsync("lab-a", 4, 0);
        var borrower = await ContractAsync("lab-b", 0, 10);
        var mine = await RequestAsync(owner, 4);
        var lent = await RequestAsync(borrower, 6);

        await Ops.UpdatePoolCapacityAsync(new UpdatePoolCapacityRequest { RequestId = Rpc.NewRequestId(), PoolId = Fixtures.H100, CapacityUnits = 5 });
        var victim = await GetAsync(lent.Allocation.AllocationId);
        Assert.Equal(AllocationState.Preempted, victim.State);
        Assert.Equal(AllocationCause.CapacityReduced, victim.Cause);
        Assert.Equal(AllocationState.Active, (await GetAsync(mine.Allocation.AllocationId)).State);
    }

    [Fact]
    public async Task CapacityIncrease_AdmitsTheQueue()
    {
        var a = await ContractAsync("lab-a", 0, 20);
        await RequestAsync(a, 10);
        var queued = await RequestAsync(a, 5, wait: true);
        await Ops.UpdatePoolCapacityAsync(new UpdatePoolCapacityRequest { RequestId = Rpc.NewRequestId(), PoolId = Fixtures.H100, CapacityUnits = 15 });
        Assert.Equal(AllocationState.Active, (await GetAsync(queued.Allocation.AllocationId)).State);
    }

    [Fact]
    public async Task GetPoolStatus_ShowsEachContractsStanding()
    {
        var owner = await ContractAsync("lab-a", 4, 2);
        var borrower = await ContractAsync("lab-b", 0, 10);
        await RequestAsync(owner, 2);
        await RequestAsync(borrower, 8);
        await RequestAsync(borrower, 1, wait: true);

        var status = await Ops.GetPoolStatusAsync(new GetPoolStatusRequest { PoolId = Fixtures.H100 });
        Assert.Equal(10, status.Pool.CapacityUnits);
        Assert.Equal(10, status.ActiveUnits);
        Assert.Equal(4, status.ReservedUnits);
        Assert.Equal(1, status.PendingUnits);
        Assert.Equal(0, status.FreeUnits);
        var a = status.Contracts.Single(c => c.ContractId == owner.ContractId);
        Assert.Equal((4L, 2L, 2L, false), (a.ReservedUnits, a.BurstLimitUnits, a.ActiveUnits, a.Borrowing));
        var b = status.Contracts.Single(c => c.ContractId == borrower.ContractId);
        Assert.Equal((8L, 1L, true), (b.ActiveUnits, b.PendingUnits, b.Borrowing));
    }

    [Fact]
    public async Task Customer_RequestsForItsOwnContractsOnly()
    {
        var mine = await ContractAsync("lab-a", 4, 0);
        var theirs = await ContractAsync("lab-b", 4, 0);
        var customer = _server.Allocations(await _server.CreateKeyAsync(Role.Customer, "lab-a"));

        var r = await RequestAsync(mine, 2, client: customer);
        Assert.Equal(AllocationState.Active, r.Allocation.State);
        await Rpc.FailsWith(StatusCode.NotFound, customer.RequestAllocationAsync(new RequestAllocationRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = theirs.ContractId, PoolId = Fixtures.H100, Units = 1,
        }));
        var other = await RequestAsync(theirs, 1);
        await Rpc.FailsWith(StatusCode.NotFound, customer.GetAllocationAsync(new GetAllocationRequest { AllocationId = other.Allocation.AllocationId }));
        await Rpc.FailsWith(StatusCode.NotFound, customer.ReleaseAllocationAsync(new ReleaseAllocationRequest { RequestId = Rpc.NewRequestId(), AllocationId = other.Allocation.AllocationId }));
        Assert.Equal([r.Allocation.AllocationId], (await customer.ListAllocationsAsync(new ListAllocationsRequest())).Allocations.Select(x => x.AllocationId));
    }
}
