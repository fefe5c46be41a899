using System.Collections.Concurrent;
using Grpc.Core;
using Procurement.Api.V1;
using Procurement.TestSupport;
using Xunit.Abstractions;

namespace Procurement.Server.Tests;

public sealed class ConcurrencyTests(ITestOutputHelper output)
{
    private const int Clients = 32;
    private const long Capacity = 50;
    // The run stops once the clients have made this many allocations, however fast the machine is;
    // a server that cannot make them within the cap fails the test.
    private const int Target = 150;
    private static readonly TimeSpan Cap = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task ManyClients_RequestAndRelease_TheLedgerStaysExact()
    {
        await using var server = await ServerHarness.StartAsync();
        await Fixtures.CreatePoolsAsync(server, h100Capacity: Capacity, h200Capacity: 0);
        var contracts = new List<Contract>();
        for (var i = 0; i < 8; i++)
        {
            contracts.Add(await Fixtures.CreateActiveContractAsync(server, $"lab-{i}",
                Fixtures.H100Terms(server.Clock.GetUtcNow(), reserved: 2, burst: 20, priority: i % 3, preempt: i % 2 == 0)));
        }

        var acknowledged = new ConcurrentDictionary<string, Allocation>();
        var refusals = 0;
        // A wall-clock cap; the server itself runs on the fake clock.
        using var stop = new CancellationTokenSource(Cap);
        var clients = Enumerable.Range(0, Clients).Select(async client =>
        {
            var random = new Random(client);
            var ops = server.OperatorAllocations;
            var mine = new List<string>();
            while (!stop.IsCancellationRequested && acknowledged.Count < Target)
            {
                if (mine.Count > 0 && random.Next(2) == 0)
                {
                    var id = mine[random.Next(mine.Count)];
                    mine.Remove(id);
                    await ops.ReleaseAllocationAsync(new ReleaseAllocationRequest { RequestId = Rpc.NewRequestId(), AllocationId = id });
                    continue;
                }

                var contract = contracts[random.Next(contracts.Count)];
                try
                {
                    var response = await ops.RequestAllocationAsync(new RequestAllocationRequest
                    {
                        RequestId = Rpc.NewRequestId(), ContractId = contract.ContractId, PoolId = Fixtures.H100,
                        Units = random.Next(1, 6), WaitIfUnavailable = random.Next(4) == 0,
                    });
                    acknowledged[response.Allocation.AllocationId] = response.Allocation;
                    mine.Add(response.Allocation.AllocationId);
                }
                catch (RpcException e) when (e.StatusCode is StatusCode.ResourceExhausted or StatusCode.FailedPrecondition)
                {
                    Interlocked.Increment(ref refusals);
                }
            }
        }).ToList();
        await Task.WhenAll(clients);

        // Every acknowledged allocation is there, as it was acknowledged.
        foreach (var (id, ack) in acknowledged)
        {
            var stored = (await server.OperatorAllocations.GetAllocationAsync(new GetAllocationRequest { AllocationId = id })).Allocation;
            Assert.Equal((ack.ContractId, ack.Units, ack.RequestTime), (stored.ContractId, stored.Units, stored.RequestTime));
        }

        // Replaying the pool's events from position 0: in increasing positions (consecutive on SQLite's
        // single writer), never oversubscribed, and it ends where the pool is: nothing is missing.
        var events = await ReadAllEventsAsync(server);
        Assert.Equal(events.Select(e => e.Sequence).Distinct().Order(), events.Select(e => e.Sequence));
        if (!ServerHarness.OnPostgres)
        {
            Assert.Equal(Enumerable.Range(1, events.Count).Select(i => (long)i), events.Select(e => e.Sequence));
        }

        var active = new Dictionary<string, long>();
        var pending = new HashSet<string>();
        long peak = 0;
        foreach (var e in events)
        {
            switch (e.Type)
            {
                case AllocationEventType.Queued:
                    pending.Add(e.AllocationId);
                    break;
                case AllocationEventType.Admitted:
                    pending.Remove(e.AllocationId);
                    active.Add(e.AllocationId, e.Units);
                    break;
                case AllocationEventType.Cancelled:
                    Assert.True(pending.Remove(e.AllocationId));
                    break;
                default:
                    Assert.True(active.Remove(e.AllocationId), $"{e.Type} of {e.AllocationId}, which was not active");
                    break;
            }

            var held = active.Values.Sum();
            Assert.True(held <= Capacity, $"oversubscribed at event {e.Sequence}: {held} > {Capacity}");
            peak = Math.Max(peak, held);
        }

        var list = (await server.OperatorAllocations.ListAllocationsAsync(new ListAllocationsRequest { State = AllocationState.Active, PageSize = 1000 })).Allocations;
        Assert.Equal(list.Select(a => a.AllocationId).Order(), active.Keys.Order());
        var queued = (await server.OperatorAllocations.ListAllocationsAsync(new ListAllocationsRequest { State = AllocationState.Pending, PageSize = 1000 })).Allocations;
        Assert.Equal(queued.Select(a => a.AllocationId).Order(), pending.Order());
        Assert.Equal(acknowledged.Count, events.Select(e => e.AllocationId).Distinct().Count());
        output.WriteLine($"{acknowledged.Count} allocations, {refusals} refusals, {events.Count} events, peak {peak}/{Capacity} units");
        Assert.True(acknowledged.Count >= Target, $"the run made {acknowledged.Count} allocations in {Cap}, not {Target}");
    }

    private static async Task<List<AllocationEvent>> ReadAllEventsAsync(ServerHarness server)
    {
        var events = new List<AllocationEvent>();
        using var call = server.OperatorAllocations.WatchAllocations(new WatchAllocationsRequest { PoolId = Fixtures.H100 });
        while (true)
        {
            using var quiet = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try
            {
                if (!await call.ResponseStream.MoveNext(quiet.Token))
                {
                    break;
                }
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled)
            {
                break; // nothing new for two seconds: the history is complete
            }

            events.Add(call.ResponseStream.Current.Event);
        }

        return events;
    }
}
