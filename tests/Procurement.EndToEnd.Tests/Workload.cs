using System.Collections.Concurrent;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Procurement.Api.V1;
using Procurement.Client;

namespace Procurement.EndToEnd.Tests;

/// <summary>
/// Writers that request and release allocations, report usage and amend a contract through the client
/// library, recording every write the server acknowledged (and only those).
/// </summary>
public sealed class Workload(Func<ProcurementClient> client, Deal deal, IReadOnlyList<Contract> contracts, int seed)
{
    public ConcurrentBag<(RequestAllocationRequest Request, RequestAllocationResponse Response)> Requests { get; } = [];

    public ConcurrentBag<Allocation> Releases { get; } = [];

    public ConcurrentBag<UsageSample> Samples { get; } = [];

    public ConcurrentBag<ContractVersion> Amendments { get; } = [];

    public int Unknown;

    public ConcurrentDictionary<string, int> UnknownKinds { get; } = new();

    private void NoAnswer(Exception e)
    {
        Interlocked.Increment(ref Unknown);
        UnknownKinds.AddOrUpdate(e is ProcurementRpcException p ? $"{p.StatusCode}/{p.Reason}" : e.GetType().Name, 1, (_, n) => n + 1);
    }

    public Task RunAsync(CancellationToken stop) =>
        Task.WhenAll([.. Enumerable.Range(0, 4).Select(i => AllocateAsync(seed * 100 + i, stop)), UsageAsync(stop), AmendAsync(stop)]);

    private async Task AllocateAsync(int writerSeed, CancellationToken stop)
    {
        var random = new Random(writerSeed);
        using var c = client();
        var mine = new List<string>();
        while (!stop.IsCancellationRequested)
        {
            try
            {
                if (mine.Count > 0 && random.Next(3) == 0)
                {
                    var id = mine[random.Next(mine.Count)];
                    Releases.Add(await c.Allocations.ReleaseAsync(id, stop));
                    mine.Remove(id);
                    continue;
                }

                var request = new RequestAllocationRequest
                {
                    RequestId = Guid.NewGuid().ToString(), ContractId = contracts[random.Next(contracts.Count)].ContractId, PoolId = deal.H100,
                    Units = random.Next(1, 60), WaitIfUnavailable = random.Next(4) == 0,
                };
                var response = await c.Allocations.RequestAsync(request, stop);
                Requests.Add((request, response));
                mine.Add(response.Allocation.AllocationId);
            }
            catch (ProcurementRpcException e) when (e.StatusCode is Grpc.Core.StatusCode.ResourceExhausted or Grpc.Core.StatusCode.FailedPrecondition)
            {
                // A refusal is an answer; nothing to record.
            }
            catch (Exception e) when (e is OperationCanceledException or ProcurementRpcException)
            {
                NoAnswer(e); // no answer: the write may or may not have happened
            }
        }
    }

    private async Task UsageAsync(CancellationToken stop)
    {
        using var c = client();
        var n = 0;
        while (!stop.IsCancellationRequested)
        {
            var active = Requests.Select(r => r.Response.Allocation).Where(a => a.State == AllocationState.Active).Take(20).ToList();
            var batch = active.Select(a => new UsageSample
            {
                Source = "crash-meter", SampleId = $"s{seed}-{n++}", AllocationId = a.AllocationId,
                WindowStart = a.AdmitTime, WindowEnd = Timestamp.FromDateTimeOffset(a.AdmitTime.ToDateTimeOffset().AddMilliseconds(1)), BusyGpuSeconds = 0,
            }).ToList();
            try
            {
                if (batch.Count > 0)
                {
                    // A sample whose allocation ended within its 1 ms window (preempted at once) is rightly
                    // rejected; only the samples the server stored are acknowledged.
                    var report = await c.Allocations.ReportUsageAsync(batch, cancellationToken: stop);
                    var rejected = report.Rejections.Select(r => r.SampleId).ToHashSet();
                    foreach (var s in batch.Where(s => !rejected.Contains(s.SampleId)))
                    {
                        Samples.Add(s);
                    }
                }

                await Task.Delay(50, stop);
            }
            catch (Exception e) when (e is OperationCanceledException or ProcurementRpcException)
            {
                NoAnswer(e);
            }
        }
    }

    private async Task AmendAsync(CancellationToken stop)
    {
        using var c = client();
        var contract = contracts[0];
        var now = TimeProvider.System.GetUtcNow();
        var next = new DateTimeOffset(now.Year, now.Month, 1, 0, 0, 0, TimeSpan.Zero).AddMonths(1);
        var commitment = 1_000_000_000_000L;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                var current = await c.Contracts.GetAsync(contract.ContractId, stop);
                var terms = current.Terms.Clone();
                terms.MonthlyCommitment.AmountMicros = ++commitment;
                var response = await c.Contracts.AmendAsync(new AmendContractRequest
                {
                    ContractId = contract.ContractId, Etag = current.Etag, EffectiveMonth = new BillingMonth { Year = next.Year, Month = next.Month }, Terms = terms,
                }, stop);
                Amendments.Add(response.Version);
                await Task.Delay(100, stop);
            }
            catch (ProcurementRpcException e) when (e.StatusCode == Grpc.Core.StatusCode.Aborted)
            {
                // The etag moved (an allocation does not touch the contract, so only a retried amendment does).
            }
            catch (Exception e) when (e is OperationCanceledException or ProcurementRpcException)
            {
                NoAnswer(e);
            }
        }
    }

    /// <summary>Every acknowledged write is there, as acknowledged; replaying a request id returns the original reply.</summary>
    public async Task CheckAcknowledgedAsync(ProcurementClient c)
    {
        foreach (var (request, response) in Requests)
        {
            var stored = await c.Allocations.GetAsync(response.Allocation.AllocationId);
            Assert.Equal((response.Allocation.ContractId, response.Allocation.Units, response.Allocation.RequestTime), (stored.ContractId, stored.Units, stored.RequestTime));
            var replay = await c.Allocations.RequestAsync(request);
            Assert.Equal(response.ToByteArray(), replay.ToByteArray());
        }

        foreach (var released in Releases)
        {
            var stored = await c.Allocations.GetAsync(released.AllocationId);
            Assert.True(stored.State is not (AllocationState.Active or AllocationState.Pending), $"{released.AllocationId} was released but is {stored.State}");
            if (released.State == AllocationState.Released)
            {
                Assert.Equal(AllocationState.Released, stored.State);
            }
        }

        if (!Samples.IsEmpty)
        {
            var resent = await c.Allocations.ReportUsageAsync(Samples.ToList());
            Assert.True((0L, (long)Samples.Count, 0L) == (resent.Accepted, resent.Duplicate, resent.Rejected),
                $"resending the acknowledged samples: {resent.Accepted} accepted, {resent.Duplicate} duplicate, {resent.Rejected} rejected: " +
                string.Join("; ", resent.Rejections.Select(r => $"{r.SampleId} {r.Reason} {r.Message}")));
        }

        var versions = (await c.Contracts.ListVersionsAsync(new ListContractVersionsRequest { ContractId = contracts[0].ContractId, PageSize = 1000 })).Versions;
        foreach (var amendment in Amendments)
        {
            Assert.Contains(versions, v => v.Version == amendment.Version && v.Terms.Equals(amendment.Terms));
        }
    }
}
