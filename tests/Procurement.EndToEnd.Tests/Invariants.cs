using Grpc.Core;
using Microsoft.Data.Sqlite;
using Procurement.Api.V1;
using Procurement.Client;

namespace Procurement.EndToEnd.Tests;

/// <summary>I1–I4 and the event log, checked from outside through the API (and the file with SQLite).</summary>
public static class Invariants
{
    /// <summary>Every event from sequence 0, read until the stream has been quiet for two seconds.</summary>
    public static async Task<List<AllocationEvent>> AllEventsAsync(ProcurementClient client, string poolId)
    {
        var events = new List<AllocationEvent>();
        using var call = client.Allocations.Stub.WatchAllocations(new WatchAllocationsRequest { PoolId = poolId });
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
                break;
            }
            catch (OperationCanceledException)
            {
                break;
            }

            events.Add(call.ResponseStream.Current.Event);
        }

        return events;
    }

    public static async Task<List<Allocation>> AllAllocationsAsync(ProcurementClient client, string poolId)
    {
        var all = new List<Allocation>();
        var request = new ListAllocationsRequest { PoolId = poolId, PageSize = 1000 };
        do
        {
            var page = await client.Allocations.ListAsync(request);
            all.AddRange(page.Allocations);
            request.PageToken = page.NextPageToken;
        }
        while (request.PageToken.Length > 0);

        return all;
    }

    /// <summary>
    /// Replays the pool's events from sequence 0 and checks: sequences increasing; never more units held
    /// than capacity (I1); every preempted allocation's contract was borrowing just before (I4); the
    /// replay ends where the allocation table is, allocation by allocation (nothing half-applied).
    /// </summary>
    public static async Task CheckPoolAsync(ProcurementClient client, string poolId, long capacity, IReadOnlyDictionary<string, long> reserved)
    {
        var events = await AllEventsAsync(client, poolId);
        var allocations = await AllAllocationsAsync(client, poolId);
        Assert.True(events.Zip(events.Skip(1)).All(p => p.Second.Sequence > p.First.Sequence), "event sequence not increasing");

        var held = new Dictionary<string, (string Contract, long Units)>();
        var state = new Dictionary<string, AllocationState>();
        // One decision preempts its victims back to back (then admits): borrowing is judged on the
        // holdings before the first of them, as the decision saw them.
        Dictionary<string, long>? decision = null;
        AllocationEvent? previous = null;
        foreach (var e in events)
        {
            if (e.Type == AllocationEventType.Preempted)
            {
                if (previous is not { Type: AllocationEventType.Preempted } p || p.PreemptedBy != e.PreemptedBy)
                {
                    decision = held.Values.GroupBy(h => h.Contract).ToDictionary(g => g.Key, g => g.Sum(h => h.Units));
                }

                Assert.True(decision!.GetValueOrDefault(e.ContractId) > reserved.GetValueOrDefault(e.ContractId),
                    $"I4: event {e.Sequence} preempted {e.AllocationId} of a contract within its reservation");
            }

            previous = e;

            switch (e.Type)
            {
                case AllocationEventType.Admitted:
                    held[e.AllocationId] = (e.ContractId, e.Units);
                    break;
                case AllocationEventType.Released or AllocationEventType.Preempted or AllocationEventType.Expired:
                    Assert.True(held.Remove(e.AllocationId), $"event {e.Sequence}: {e.Type} of {e.AllocationId}, which was not active");
                    break;
            }

            state[e.AllocationId] = e.State;
            Assert.True(held.Values.Sum(h => h.Units) <= capacity, $"I1: oversubscribed at event {e.Sequence}");
        }

        Assert.Equal(allocations.Select(a => a.AllocationId).Order(), state.Keys.Order());
        foreach (var a in allocations)
        {
            Assert.True(state[a.AllocationId] == a.State, $"{a.AllocationId} is {a.State} but its events end in {state[a.AllocationId]}");
        }

        var status = await client.Allocations.GetPoolStatusAsync(poolId);
        Assert.Equal(held.Values.Sum(h => h.Units), status.ActiveUnits);
        Assert.True(status.ActiveUnits <= status.Pool.CapacityUnits, "I1");
        Assert.True(status.ReservedUnits <= status.Pool.CapacityUnits, "I2");
    }

    public static string IntegrityCheck(string databasePath)
    {
        using var connection = new SqliteConnection($"Data Source={databasePath};Mode=ReadOnly;Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA integrity_check";
        return (string)command.ExecuteScalar()!;
    }
}
