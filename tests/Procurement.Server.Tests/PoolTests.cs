using Grpc.Core;
using Procurement.Api.V1;
using Procurement.TestSupport;

namespace Procurement.Server.Tests;

public sealed class PoolTests : IAsyncLifetime
{
    private ServerHarness _server = null!;

    public async Task InitializeAsync() => _server = await ServerHarness.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private AllocationService.AllocationServiceClient Ops => _server.OperatorAllocations;

    [Fact]
    public async Task CreatePool_ThenGet_ReturnsThePool()
    {
        var created = (await Ops.CreatePoolAsync(new CreatePoolRequest
        {
            RequestId = Rpc.NewRequestId(), PoolId = "use1-h100", DisplayName = "H100s", Region = "us-east-1",
            AcceleratorType = "H100-SXM-80GB", CapacityUnits = 100_000,
        })).Pool;
        Assert.Equal(100_000, created.CapacityUnits);
        Assert.Equal(created, (await Ops.GetPoolAsync(new GetPoolRequest { PoolId = "use1-h100" })).Pool);
    }

    [Fact]
    public async Task CreatePool_Twice_IsAlreadyExists()
    {
        await Fixtures.CreatePoolsAsync(_server);
        await Rpc.FailsWith(StatusCode.AlreadyExists, "ALREADY_EXISTS", Ops.CreatePoolAsync(new CreatePoolRequest
        {
            RequestId = Rpc.NewRequestId(), PoolId = Fixtures.H100, DisplayName = "again", Region = "r", AcceleratorType = "A", CapacityUnits = 1,
        }));
    }

    [Fact]
    public async Task CreatePool_BadFields_NamesEachOne()
    {
        var e = await Rpc.FailsWith(StatusCode.InvalidArgument, "INVALID_FIELD", Ops.CreatePoolAsync(new CreatePoolRequest
        {
            RequestId = Rpc.NewRequestId(), PoolId = "Bad Id", DisplayName = "", Region = "", AcceleratorType = "has space", CapacityUnits = -1,
        }));
        Assert.Equal(["pool_id", "display_name", "region", "accelerator_type", "capacity_units"], e.BadFields());
    }

    [Fact]
    public async Task GetPool_Unknown_IsNotFound() =>
        await Rpc.FailsWith(StatusCode.NotFound, "NOT_FOUND", Ops.GetPoolAsync(new GetPoolRequest { PoolId = "nope" }));

    [Fact]
    public async Task UpdatePoolCapacity_AboveReservations_IsAccepted()
    {
        await Fixtures.CreatePoolsAsync(_server);
        await Fixtures.CreateActiveContractAsync(_server); // reserves 600 H100
        var pool = (await Ops.UpdatePoolCapacityAsync(new UpdatePoolCapacityRequest { RequestId = Rpc.NewRequestId(), PoolId = Fixtures.H100, CapacityUnits = 600 })).Pool;
        Assert.Equal(600, pool.CapacityUnits);
        Assert.Equal("2", pool.Etag);
    }

    [Fact]
    public async Task UpdatePoolCapacity_BelowReservations_IsRefusedNamingThePool()
    {
        await Fixtures.CreatePoolsAsync(_server);
        await Fixtures.CreateActiveContractAsync(_server, "lab-a"); // 600 H100
        await Fixtures.CreateActiveContractAsync(_server, "lab-b", Fixtures.Terms(_server.Clock.GetUtcNow(), 100, 10));

        var e = await Rpc.FailsWith(StatusCode.FailedPrecondition, "RESERVATIONS_EXCEED_CAPACITY",
            Ops.UpdatePoolCapacityAsync(new UpdatePoolCapacityRequest { RequestId = Rpc.NewRequestId(), PoolId = Fixtures.H100, CapacityUnits = 699 }));
        Assert.Contains("pool 'h100' has capacity 699 but 700 units would be reserved", e.Status.Detail);
        Assert.Equal(1000, (await Ops.GetPoolAsync(new GetPoolRequest { PoolId = Fixtures.H100 })).Pool.CapacityUnits);
    }

    [Fact]
    public async Task UpdatePoolCapacity_SuspendedContractsStillHoldTheirReservations()
    {
        await Fixtures.CreatePoolsAsync(_server);
        var c = await Fixtures.CreateActiveContractAsync(_server);
        await _server.OperatorContracts.SuspendContractAsync(new SuspendContractRequest { RequestId = Rpc.NewRequestId(), ContractId = c.ContractId });
        await Rpc.FailsWith(StatusCode.FailedPrecondition, "RESERVATIONS_EXCEED_CAPACITY",
            Ops.UpdatePoolCapacityAsync(new UpdatePoolCapacityRequest { RequestId = Rpc.NewRequestId(), PoolId = Fixtures.H100, CapacityUnits = 10 }));
    }

    [Fact]
    public async Task UpdatePoolCapacity_StaleEtag_IsAborted()
    {
        await Fixtures.CreatePoolsAsync(_server);
        var pool = (await Ops.GetPoolAsync(new GetPoolRequest { PoolId = Fixtures.H100 })).Pool;
        await Ops.UpdatePoolCapacityAsync(new UpdatePoolCapacityRequest { RequestId = Rpc.NewRequestId(), PoolId = Fixtures.H100, CapacityUnits = 2000, Etag = pool.Etag });
        await Rpc.FailsWith(StatusCode.Aborted, "ETAG_MISMATCH",
            Ops.UpdatePoolCapacityAsync(new UpdatePoolCapacityRequest { RequestId = Rpc.NewRequestId(), PoolId = Fixtures.H100, CapacityUnits = 3000, Etag = pool.Etag }));
    }

    [Fact]
    public async Task UpdatePoolCapacity_Negative_NamesTheField()
    {
        var e = await Rpc.FailsWith(StatusCode.InvalidArgument, Ops.UpdatePoolCapacityAsync(new UpdatePoolCapacityRequest { RequestId = Rpc.NewRequestId(), PoolId = "x", CapacityUnits = -5 }));
        Assert.Equal(["capacity_units"], e.BadFields());
    }

    [Fact]
    public async Task ListPools_PagesInIdOrder()
    {
        var ids = Enumerable.Range(0, 11).Select(i => $"pool-{i:D2}").ToList();
        foreach (var id in ids.AsEnumerable().Reverse())
        {
            await Ops.CreatePoolAsync(new CreatePoolRequest { RequestId = Rpc.NewRequestId(), PoolId = id, DisplayName = id, Region = "r", AcceleratorType = "A", CapacityUnits = 1 });
        }

        var seen = new List<string>();
        var token = "";
        do
        {
            var page = await Ops.ListPoolsAsync(new ListPoolsRequest { PageSize = 4, PageToken = token });
            seen.AddRange(page.Pools.Select(p => p.PoolId));
            token = page.NextPageToken;
        }
        while (token.Length > 0);

        Assert.Equal(ids, seen);
    }
}
