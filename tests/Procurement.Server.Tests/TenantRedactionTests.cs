using Google.Protobuf;
using Grpc.Core;
using Procurement.Api.V1;
using Procurement.Server.Auth;
using Procurement.TestSupport;

namespace Procurement.Server.Tests;

/// <summary>
/// A customer learns how many units a preemption took and how many of its own were taken, never whose:
/// no reply or event it receives carries another tenant's id, contract id or allocation id. Operators
/// see everything.
/// </summary>
public sealed class TenantRedactionTests : IAsyncLifetime
{
    private ServerHarness _server = null!;

    public async Task InitializeAsync()
    {
        _server = await ServerHarness.StartAsync();
        await Fixtures.CreatePoolsAsync(_server, h100Capacity: 100, h200Capacity: 10);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private Task<Contract> ContractAsync(string tenant, long reserved, long burst, int priority) =>
        Fixtures.CreateActiveContractAsync(_server, tenant, Fixtures.H100Terms(_server.Clock.GetUtcNow(), reserved, burst, priority));

    private static RequestAllocationRequest Ask(Contract c, long units, bool dryRun = false) => new()
    {
        RequestId = dryRun ? "" : Rpc.NewRequestId(), ContractId = c.ContractId, PoolId = Fixtures.H100, Units = units, DryRun = dryRun,
    };

    [Fact]
    public async Task CustomerReplies_NameOnlyTheirOwnVictims_OperatorsSeeAll()
    {
        // lab-a holds a reservation (70) and also borrows 40 through a second contract; lab-b borrows 60.
        var guaranteed = await ContractAsync("lab-a", 70, 0, priority: 10);
        var borrowingA = await ContractAsync("lab-a", 0, 40, priority: 1);
        var borrowingB = await ContractAsync("lab-b", 0, 60, priority: 1);
        var customerA = _server.Allocations(await _server.CreateKeyAsync(Role.Customer, "lab-a"));
        var customerB = _server.Allocations(await _server.CreateKeyAsync(Role.Customer, "lab-b"));
        var ownVictim = (await customerA.RequestAllocationAsync(Ask(borrowingA, 40))).Allocation;
        var otherVictim = (await customerB.RequestAllocationAsync(Ask(borrowingB, 60))).Allocation;

        // 70 guaranteed units with nothing free take back both borrowers' allocations (same priority,
        // the later one first, then the earlier; neither alone frees enough).
        var dry = await customerA.RequestAllocationAsync(Ask(guaranteed, 70, dryRun: true));
        var operatorDry = await _server.OperatorAllocations.RequestAllocationAsync(Ask(guaranteed, 70, dryRun: true));
        var real = await customerA.RequestAllocationAsync(Ask(guaranteed, 70));

        foreach (var decision in new[] { dry.Decision, real.Decision })
        {
            Assert.Equal(2, decision.Preemptions.Count);
            Assert.Contains(decision.Preemptions, p => p.AllocationId == ownVictim.AllocationId && p.ContractId == borrowingA.ContractId && p.TenantId == "lab-a" && p.Units == 40);
            Assert.Contains(decision.Preemptions, p => p.AllocationId == "" && p.ContractId == "" && p.TenantId == "" && p.Units == 60);
        }

        Assert.Contains(operatorDry.Decision.Preemptions, p => p.AllocationId == otherVictim.AllocationId && p.TenantId == "lab-b" && p.ContractId == borrowingB.ContractId);

        // Everything lab-a's key receives, replies and watch events alike, is free of lab-b's identifiers.
        var foreign = new[] { "lab-b", borrowingB.ContractId, otherVictim.AllocationId };
        IMessage[] received =
        [
            dry, real,
            await customerA.ListAllocationsAsync(new ListAllocationsRequest()),
            await customerA.GetAllocationAsync(new GetAllocationRequest { AllocationId = ownVictim.AllocationId }),
            await _server.Contracts(await _server.CreateKeyAsync(Role.Customer, "lab-a")).ListContractsAsync(new ListContractsRequest()),
            .. await WatchAsync(customerA, 3),
        ];
        foreach (var reply in received)
        {
            var text = JsonFormatter.Default.Format(reply);
            Assert.DoesNotContain(foreign, id => ContainsId(text, id));
        }

        // lab-b's watch says its allocation was preempted, not by whom; lab-a's own victim names its preemptor.
        var bEvents = await WatchAsync(customerB, 2);
        var preempted = Assert.Single(bEvents, e => e.Event.Type == AllocationEventType.Preempted);
        Assert.Equal("", preempted.Event.PreemptedBy);
        Assert.DoesNotContain(bEvents, e => ContainsId(JsonFormatter.Default.Format(e), real.Allocation.AllocationId) || ContainsId(JsonFormatter.Default.Format(e), guaranteed.ContractId));
        var aEvents = await WatchAsync(customerA, 3);
        Assert.Contains(aEvents, e => e.Event.Type == AllocationEventType.Preempted && e.Event.PreemptedBy == real.Allocation.AllocationId);
        var operatorEvents = await WatchAsync(_server.OperatorAllocations, 5);
        Assert.Contains(operatorEvents, e => e.Event.AllocationId == otherVictim.AllocationId && e.Event.PreemptedBy == real.Allocation.AllocationId);
    }

    /// <summary>An id appears in JSON as a whole quoted value ("alc_1" must not match "alc_12").</summary>
    private static bool ContainsId(string json, string id) => json.Contains($"\"{id}\"", StringComparison.Ordinal);

    private static async Task<List<WatchAllocationsResponse>> WatchAsync(AllocationService.AllocationServiceClient client, int count)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var call = client.WatchAllocations(new WatchAllocationsRequest { AfterSequence = 0 }, cancellationToken: cts.Token);
        var events = new List<WatchAllocationsResponse>();
        while (events.Count < count && await call.ResponseStream.MoveNext(cts.Token))
        {
            events.Add(call.ResponseStream.Current);
        }

        return events;
    }
}
