using Google.Protobuf.WellKnownTypes;
using Procurement.Api.V1;
using Procurement.TestSupport;

namespace Procurement.Server.Tests;

/// <summary>
/// A pool's status is always the one a fresh read would give, though the server reuses an answer
/// while nothing has committed: a write, a term's end and an amendment taking effect each show at once.
/// </summary>
public sealed class PoolStatusTests : IAsyncLifetime
{
    private ServerHarness _server = null!;

    public async Task InitializeAsync()
    {
        // An hour before a month's end: the clock moves past term ends and month starts without the
        // request-id janitor (hourly, forgets ids after 7 days) having anything to delete.
        _server = await ServerHarness.StartAsync(new DateTimeOffset(2026, 3, 31, 22, 0, 0, TimeSpan.Zero));
        await Fixtures.CreatePoolsAsync(_server, h100Capacity: 10, h200Capacity: 10);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task<GetPoolStatusResponse> StatusAsync() =>
        await _server.OperatorAllocations.GetPoolStatusAsync(new GetPoolStatusRequest { PoolId = Fixtures.H100 });

    [Fact]
    public async Task AWrite_ShowsInTheNextStatus()
    {
        var k = await Fixtures.CreateActiveContractAsync(_server, "lab-a", Fixtures.H100Terms(_server.Clock.GetUtcNow(), reserved: 4, burst: 2));
        Assert.Equal(0, (await StatusAsync()).ActiveUnits);
        Assert.Equal(0, (await StatusAsync()).ActiveUnits);

        var held = await _server.OperatorAllocations.RequestAllocationAsync(new RequestAllocationRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = k.ContractId, PoolId = Fixtures.H100, Units = 3,
        });
        Assert.Equal(3, (await StatusAsync()).ActiveUnits);

        await _server.OperatorAllocations.ReleaseAllocationAsync(new ReleaseAllocationRequest
        {
            RequestId = Rpc.NewRequestId(), AllocationId = held.Allocation.AllocationId,
        });
        Assert.Equal(0, (await StatusAsync()).ActiveUnits);
    }

    [Fact]
    public async Task ATermThatEnds_StopsCountingThoughNothingWasWritten()
    {
        var terms = Fixtures.H100Terms(_server.Clock.GetUtcNow(), reserved: 4, burst: 0);
        terms.EndTime = Timestamp.FromDateTimeOffset(_server.Clock.GetUtcNow().AddHours(1));
        var k = await Fixtures.CreateActiveContractAsync(_server, "lab-a", terms);
        var before = await StatusAsync();
        Assert.Equal(4, before.ReservedUnits);
        Assert.Contains(before.Contracts, c => c.ContractId == k.ContractId);

        _server.Clock.Advance(TimeSpan.FromHours(2));

        var after = await StatusAsync();
        Assert.Equal(0, after.ReservedUnits);
        Assert.DoesNotContain(after.Contracts, c => c.ContractId == k.ContractId);
    }

    [Fact]
    public async Task AnAmendment_ShowsFromTheMonthItTakesEffect()
    {
        var k = await Fixtures.CreateActiveContractAsync(_server, "lab-a", Fixtures.H100Terms(_server.Clock.GetUtcNow(), reserved: 4, burst: 0));
        await _server.OperatorContracts.AmendContractAsync(new AmendContractRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = k.ContractId, Etag = k.Etag,
            EffectiveMonth = new BillingMonth { Year = 2026, Month = 4 },
            Terms = Fixtures.H100Terms(_server.Clock.GetUtcNow(), reserved: 6, burst: 0),
        });
        Assert.Equal(4, (await StatusAsync()).ReservedUnits);
        Assert.Equal(4, (await StatusAsync()).ReservedUnits);

        _server.Clock.SetUtcNow(new DateTimeOffset(2026, 4, 1, 0, 0, 0, TimeSpan.Zero));

        Assert.Equal(6, (await StatusAsync()).ReservedUnits);
    }
}
