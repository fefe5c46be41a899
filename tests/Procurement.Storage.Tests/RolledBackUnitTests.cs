using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Procurement.Api.V1;
using Model = Procurement.Domain.Allocations;
using Procurement.Storage;
using Procurement.TestSupport;

namespace Procurement.Storage.Tests;

/// <summary>
/// A unit of work that fails after it changed a pool, a contract or an allocation leaves nothing
/// behind that a later decision could see: not in the database, and not in what the SQLite writer
/// keeps in memory between units.
/// </summary>
public sealed class RolledBackUnitTests : IAsyncLifetime
{
    private ServerHarness _server = null!;

    public async Task InitializeAsync()
    {
        _server = await ServerHarness.StartAsync();
        await Fixtures.CreatePoolsAsync(_server, h100Capacity: 10, h200Capacity: 10);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private IProcurementStore Store => _server.Services.GetRequiredService<IProcurementStore>();

    private Task<Contract> ContractAsync(string tenant) =>
        Fixtures.CreateActiveContractAsync(_server, tenant, Fixtures.H100Terms(_server.Clock.GetUtcNow(), reserved: 10, burst: 0));

    private async Task<RequestAllocationResponse> RequestAsync(Contract c, long units) =>
        await _server.OperatorAllocations.RequestAllocationAsync(new RequestAllocationRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = c.ContractId, PoolId = Fixtures.H100, Units = units,
        });

    private async Task FailAfterAsync(Func<IStoreSession, Task> change)
    {
        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => Store.WriteAsync<bool>(async s =>
        {
            await change(s);
            throw new InvalidOperationException("rolled back on purpose");
        }, CancellationToken.None));
        Assert.Equal("rolled back on purpose", failure.Message);
    }

    [Fact]
    public async Task AnAllocationWrittenByAFailedUnit_DoesNotHoldCapacity()
    {
        var k = await ContractAsync("lab-a");
        var now = Procurement.Server.Application.Mutations.TruncateToMilliseconds(_server.Clock.GetUtcNow());
        await FailAfterAsync(async s =>
        {
            Assert.Empty(await s.Allocations.InPoolAsync(Fixtures.H100, Model.AllocationState.Active));
            var seq = await s.Allocations.NextSeqAsync();
            await s.Allocations.InsertAsync(new Model.Allocation(seq, Model.Allocation.IdOf(seq), k.ContractId, k.TenantId, Fixtures.H100, 10,
                Model.AllocationState.Active, Model.AllocationCause.ClientRequest, now, now, null, null, null));
            Assert.Single(await s.Allocations.InPoolAsync(Fixtures.H100, Model.AllocationState.Active));
        });

        var admitted = await RequestAsync(k, 10);

        Assert.Equal(Api.V1.AllocationState.Active, admitted.Allocation.State);
        var status = await _server.OperatorAllocations.GetPoolStatusAsync(new GetPoolStatusRequest { PoolId = Fixtures.H100 });
        Assert.Equal(10, status.ActiveUnits);
    }

    [Fact]
    [Trait("Category", "SqliteOnly")] // PostgreSQL's sequence never hands a number out twice.
    public async Task ASeqTakenByAFailedUnit_GoesToTheNextAllocation()
    {
        var k = await ContractAsync("lab-a");
        await RequestAsync(k, 1);
        var now = Procurement.Server.Application.Mutations.TruncateToMilliseconds(_server.Clock.GetUtcNow());
        long taken = 0;
        await FailAfterAsync(async s =>
        {
            taken = await s.Allocations.NextSeqAsync();
            await s.Allocations.InsertAsync(new Model.Allocation(taken, Model.Allocation.IdOf(taken), k.ContractId, k.TenantId, Fixtures.H100, 1,
                Model.AllocationState.Active, Model.AllocationCause.ClientRequest, now, now, null, null, null));
            Assert.Equal(taken + 1, await s.Allocations.NextSeqAsync());
        });

        var next = await RequestAsync(k, 1);
        var after = await RequestAsync(k, 1);

        Assert.Equal(Model.Allocation.IdOf(taken), next.Allocation.AllocationId);
        Assert.Equal(Model.Allocation.IdOf(taken + 1), after.Allocation.AllocationId);
    }

    [Fact]
    public async Task AnAllocationEndedByAFailedUnit_StillHoldsItsCapacity()
    {
        var k = await ContractAsync("lab-a");
        var held = await RequestAsync(k, 10);
        await FailAfterAsync(async s =>
        {
            var a = (await s.Allocations.InPoolAsync(Fixtures.H100, Model.AllocationState.Active)).Single();
            await s.Allocations.UpdateAsync(a with { State = Model.AllocationState.Released, EndedAt = a.AdmittedAt }, Model.AllocationState.Active);
            Assert.Empty(await s.Allocations.InPoolAsync(Fixtures.H100, Model.AllocationState.Active));
        });

        // The contract still holds its whole reservation (burst 0), so one more unit is refused.
        var refused = await Assert.ThrowsAsync<RpcException>(() => RequestAsync(k, 1));

        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Equal(Api.V1.AllocationState.Active,
            (await _server.OperatorAllocations.GetAllocationAsync(new GetAllocationRequest { AllocationId = held.Allocation.AllocationId })).Allocation.State);
    }

    [Fact]
    public async Task AContractSuspendedByAFailedUnit_StaysActiveForAdmission()
    {
        var k = await ContractAsync("lab-a");
        var now = Procurement.Server.Application.Mutations.TruncateToMilliseconds(_server.Clock.GetUtcNow());
        await FailAfterAsync(async s =>
        {
            var contract = (await s.Contracts.GetAsync(k.ContractId))!;
            var revision = contract.Revision;
            contract.Suspend("test", now);
            await s.Contracts.UpdateAsync(contract, revision);
            Assert.Equal(Procurement.Domain.Contracts.ContractState.Suspended, (await s.Contracts.GetAsync(k.ContractId))!.StoredState);
        });

        Assert.Equal(Api.V1.AllocationState.Active, (await RequestAsync(k, 1)).Allocation.State);
    }

    [Fact]
    public async Task ACapacityCutByAFailedUnit_DoesNotShrinkThePool()
    {
        var k = await ContractAsync("lab-a");
        var now = Procurement.Server.Application.Mutations.TruncateToMilliseconds(_server.Clock.GetUtcNow());
        await FailAfterAsync(async s =>
        {
            var pool = (await s.Pools.GetAsync(Fixtures.H100))!;
            await s.Pools.UpdateCapacityAsync(pool with { CapacityUnits = 0, Revision = pool.Revision + 1, UpdatedAt = now }, pool.Revision);
            Assert.Equal(0, (await s.Pools.GetAsync(Fixtures.H100))!.CapacityUnits);
        });

        Assert.Equal(Api.V1.AllocationState.Active, (await RequestAsync(k, 10)).Allocation.State);
    }
}
