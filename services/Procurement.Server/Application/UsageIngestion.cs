using Procurement.Domain.Allocations;
using Procurement.Domain.Common;
using Procurement.Server.Auth;
using Procurement.Storage;
using Procurement.Storage.Repositories;

namespace Procurement.Server.Application;

/// <summary>A refused sample and why.</summary>
public sealed record UsageRejection(string Source, string SampleId, string Reason, string Message);

/// <summary>Totals of one report.</summary>
public sealed class UsageTally
{
    public const int MaxRejectionsListed = 1000;

    public long Accepted { get; set; }

    public long Duplicate { get; set; }

    public long Rejected { get; set; }

    public List<UsageRejection> Rejections { get; } = [];

    public void Reject(UsageRejection rejection)
    {
        Rejected++;
        if (Rejections.Count < MaxRejectionsListed)
        {
            Rejections.Add(rejection);
        }
    }
}

/// <summary>
/// Stores a batch of usage samples in one unit of work: each sample is accepted, recognised as a
/// duplicate of one already stored (same source, id and content), or rejected with a reason. The
/// good samples of a batch are kept whatever happens to the bad ones.
/// </summary>
public static class UsageIngestion
{
    public const string UnknownAllocation = "UNKNOWN_ALLOCATION";
    public const string WindowOutsideAllocation = "WINDOW_OUTSIDE_ALLOCATION";
    public const string BusySecondsOutOfRange = "BUSY_SECONDS_OUT_OF_RANGE";
    public const string InvalidSample = "INVALID_SAMPLE";
    public const string SampleIdReused = "SAMPLE_ID_REUSED";

    /// <summary>A sample as received, before any check.</summary>
    /// <summary>A sample as received; <paramref name="EdgeProblem"/> names a field that breaks the API's edge rules (a time, a string).</summary>
    public sealed record Incoming(string Source, string SampleId, string AllocationId, DateTimeOffset? WindowStart, DateTimeOffset? WindowEnd, long BusyGpuSeconds,
        string? EdgeProblem = null);

    public static async Task IngestAsync(IStoreSession s, Principal principal, IReadOnlyList<Incoming> batch, UsageTally tally, DateTimeOffset now)
    {
        var allocations = new Dictionary<string, Allocation?>(StringComparer.Ordinal);
        var valid = new List<UsageSample>(batch.Count);
        var accepted = 0;
        foreach (var sample in batch)
        {
            var problem = CheckShape(sample);
            if (problem is not null)
            {
                tally.Reject(new UsageRejection(sample.Source, sample.SampleId, InvalidSample, problem));
                continue;
            }

            if (!allocations.TryGetValue(sample.AllocationId, out var allocation))
            {
                allocation = await s.Allocations.GetAsync(sample.AllocationId);
                allocations[sample.AllocationId] = allocation;
            }

            if (allocation is null)
            {
                tally.Reject(new UsageRejection(sample.Source, sample.SampleId, UnknownAllocation, $"allocation '{sample.AllocationId}' does not exist"));
                continue;
            }

            var start = sample.WindowStart!.Value;
            var end = sample.WindowEnd!.Value;
            var lifeEnd = allocation.EndedAt ?? now;
            if (allocation.AdmittedAt is not { } admitted)
            {
                tally.Reject(new UsageRejection(sample.Source, sample.SampleId, WindowOutsideAllocation, $"allocation '{allocation.Id}' was never admitted"));
                continue;
            }

            if (start < admitted || end > lifeEnd)
            {
                tally.Reject(new UsageRejection(sample.Source, sample.SampleId, WindowOutsideAllocation,
                    $"the window must lie within the allocation's life, {admitted:O} to {lifeEnd:O}"));
                continue;
            }

            // busy ≤ units × window, compared in milliseconds to stay in integers.
            var windowMs = (end - start).Ticks / TimeSpan.TicksPerMillisecond;
            if (sample.BusyGpuSeconds < 0 || (decimal)sample.BusyGpuSeconds * 1000 > (decimal)allocation.Units * windowMs)
            {
                tally.Reject(new UsageRejection(sample.Source, sample.SampleId, BusySecondsOutOfRange,
                    $"busy_gpu_seconds must be between 0 and units × window = {(decimal)allocation.Units * windowMs / 1000m}"));
                continue;
            }

            valid.Add(new UsageSample(sample.Source, sample.SampleId, sample.AllocationId, allocation.ContractId, allocation.PoolId, start, end, sample.BusyGpuSeconds, now));
        }

        // One prepared insert for the batch; only the samples that were already there are looked at again.
        var stored = await s.Usage.InsertManyAsync(valid);
        await s.Totals.AddBusyAsync(valid.Where((_, i) => stored[i])
            .GroupBy(x => (x.ContractId, x.PoolId, MonthStartMs: BillingMonth.Of(x.WindowStart).Start.ToUnixTimeMilliseconds()))
            .Select(g => new BusyDelta(g.Key.ContractId, g.Key.PoolId, g.Key.MonthStartMs, g.Sum(x => x.BusyGpuSeconds)))
            .ToList());
        for (var i = 0; i < valid.Count; i++)
        {
            if (stored[i])
            {
                tally.Accepted++;
                accepted++;
                continue;
            }

            var sample = valid[i];
            var existing = await s.Usage.FindAsync(sample.Source, sample.SampleId);
            if (existing is not null && existing.AllocationId == sample.AllocationId && existing.WindowStart == sample.WindowStart
                && existing.WindowEnd == sample.WindowEnd && existing.BusyGpuSeconds == sample.BusyGpuSeconds)
            {
                tally.Duplicate++;
            }
            else
            {
                tally.Reject(new UsageRejection(sample.Source, sample.SampleId, SampleIdReused, "a different sample with this source and sample_id is already stored"));
            }
        }

        if (accepted > 0)
        {
            var first = batch[0];
            await s.Audit.AppendAsync(new AuditEvent(0, now, principal.KeyId, principal.RoleName, principal.TenantId,
                "/procurement.v1.AllocationService/ReportUsage", $"{first.Source}/{first.SampleId}+{batch.Count - 1}", "usage_samples", first.Source));
        }
    }

    private static string? CheckShape(Incoming s)
    {
        if (string.IsNullOrEmpty(s.Source) || s.Source.Length > 128)
        {
            return "source must be 1..128 characters";
        }

        if (!Identifiers.IsRequestId(s.SampleId))
        {
            return "sample_id must be 1..128 printable ASCII characters";
        }

        if (s.EdgeProblem is not null)
        {
            return s.EdgeProblem;
        }

        if (s.WindowStart is null || s.WindowEnd is null)
        {
            return "window_start and window_end are required";
        }

        if (s.WindowEnd <= s.WindowStart)
        {
            return "window_end must be after window_start";
        }

        return null;
    }
}
