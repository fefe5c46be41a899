using System.Globalization;
using Google.Protobuf.WellKnownTypes;
using Procurement.Api.V1;

namespace Procurement.Cli;

public static partial class CliApp
{
    private static async Task<int> AllocationsRequest(CommandContext c)
    {
        var a = c.Args;
        var request = new RequestAllocationRequest
        {
            ContractId = a.Required("contract"), PoolId = a.Required("pool"), Units = a.Long("units"),
            WaitIfUnavailable = a.Has("wait"), DryRun = a.Has("dry-run"),
        };
        if (a.Get("duration") is { } duration)
        {
            request.Duration = Duration.FromTimeSpan(ParseDuration(duration, "duration"));
        }

        if (a.Get("end-time") is { } end)
        {
            request.EndTime = Ts(ParseTime(end, "end-time"));
        }

        var response = await c.Client.Allocations.RequestAsync(request, c.CancellationToken);
        if (c.Out.Json)
        {
            c.Out.Message(response);
            return 0;
        }

        var d = response.Decision;
        c.Out.Line($"{(request.DryRun ? "dry run: would " : "")}{Output.Enum(d.Outcome)}{(d.Reason.Length > 0 ? $" ({d.Reason})" : "")}{(d.Guaranteed ? ", within the reservation" : ", burst")}");
        if (d.Preemptions.Count > 0)
        {
            c.Out.Line($"{(request.DryRun ? "would preempt" : "preempted")}:");
            c.Out.Table(["ALLOCATION", "CONTRACT", "TENANT", "UNITS"],
                d.Preemptions.Select(p => (IReadOnlyList<string>)[p.AllocationId, p.ContractId, p.TenantId, Units(p.Units)]));
        }

        if (response.Allocation is { } allocation)
        {
            c.Out.Line();
            ShowAllocations(c, [allocation]);
        }

        return 0;
    }

    private static async Task<int> AllocationsGet(CommandContext c)
    {
        var id = c.Args.Positional1("ALLOCATION_ID");
        var allocation = await c.Client.Allocations.GetAsync(id, c.CancellationToken);
        if (c.Out.Json)
        {
            c.Out.Message(allocation);
            return 0;
        }

        ShowAllocations(c, [allocation]);
        return 0;
    }

    private static async Task<int> AllocationsList(CommandContext c)
    {
        var request = new ListAllocationsRequest { ContractId = c.Args.Get("contract") ?? "", PoolId = c.Args.Get("pool") ?? "", PageSize = 1000 };
        if (c.Args.Get("state") is { } state)
        {
            request.State = System.Enum.TryParse<AllocationState>(state, ignoreCase: true, out var s) && s != AllocationState.Unspecified
                ? s : throw new UsageException($"--state must be PENDING, ACTIVE, RELEASED, PREEMPTED, EXPIRED or CANCELLED, not '{state}'");
        }

        var all = new ListAllocationsResponse();
        do
        {
            var page = await c.Client.Allocations.ListAsync(request, c.CancellationToken);
            all.Allocations.AddRange(page.Allocations);
            request.PageToken = page.NextPageToken;
        }
        while (request.PageToken.Length > 0);

        if (c.Out.Json)
        {
            c.Out.Message(all);
            return 0;
        }

        ShowAllocations(c, all.Allocations);
        return 0;
    }

    private static async Task<int> AllocationsRelease(CommandContext c)
    {
        var id = c.Args.Positional1("ALLOCATION_ID");
        var allocation = await c.Client.Allocations.ReleaseAsync(id, c.CancellationToken);
        if (c.Out.Json)
        {
            c.Out.Message(allocation);
            return 0;
        }

        ShowAllocations(c, [allocation]);
        return 0;
    }

    private static async Task<int> AllocationsWatch(CommandContext c)
    {
        var after = c.Args.Long("after", 0);
        var count = c.Args.Long("count", long.MaxValue);
        var pool = c.Args.Get("pool") ?? "";
        var contract = c.Args.Get("contract") ?? "";
        if (!c.Out.Json)
        {
            c.Out.Line($"{"SEQ",-8} {"TIME",-20} {"EVENT",-14} {"CAUSE",-24} {"ALLOC/BLOCK",-14} {"CONTRACT",-22} {"POOL",-14} UNITS");
        }

        long seen = 0;
        await foreach (var e in c.Client.Allocations.WatchAsync(after, pool, contract, c.CancellationToken))
        {
            if (c.Out.Json)
            {
                c.Out.Writer.WriteLine(Google.Protobuf.JsonFormatter.Default.Format(e));
            }
            else
            {
                c.Out.Line($"{e.Sequence,-8} {Output.Time(e.Time),-20} {Output.Enum(e.Type),-14} {Output.Enum(e.Cause),-24} {(e.BlockId.Length > 0 ? e.BlockId : e.AllocationId),-14} {e.ContractId,-22} {e.PoolId,-14} {Units(e.Units)}");
            }

            await c.Out.Writer.FlushAsync(c.CancellationToken);
            if (++seen >= count)
            {
                break;
            }
        }

        return 0;
    }

    private static void ShowAllocations(CommandContext c, IEnumerable<Allocation> allocations) =>
        c.Out.Table(["ALLOCATION", "STATE", "CAUSE", "CONTRACT", "POOL", "UNITS", "ADMITTED", "ENDS/ENDED"],
            allocations.Select(x => (IReadOnlyList<string>)[x.AllocationId, Output.Enum(x.State), Output.Enum(x.Cause), x.ContractId, x.PoolId, Units(x.Units),
                Output.Time(x.AdmitTime), x.FinishTime is not null ? Output.Time(x.FinishTime) : Output.Time(x.EndTime)]));

    private static async Task<int> UsageReport(CommandContext c)
    {
        var path = c.Args.Required("file");
        var batch = (int)c.Args.Long("batch", 10_000);
        var samples = UsageFile.Load(path);
        var lastShown = -1;
        var progress = new Progress(sent =>
        {
            if (c.Out.Json || !c.ShowProgress)
            {
                return;
            }

            var percent = (int)(100 * sent / Math.Max(1, samples.Count));
            if (percent != lastShown)
            {
                lastShown = percent;
                c.Err.Write($"\r[{new string('#', percent / 5),-20}] {percent,3}%  {sent:N0}/{samples.Count:N0} samples");
                if (sent == samples.Count)
                {
                    c.Err.WriteLine();
                }
            }
        });
        var report = await c.Client.Allocations.ReportUsageAsync(samples, batch, progress, c.CancellationToken);
        if (c.Out.Json)
        {
            var response = new ReportUsageResponse { Accepted = report.Accepted, Duplicate = report.Duplicate, Rejected = report.Rejected };
            response.Rejections.AddRange(report.Rejections);
            c.Out.Message(response);
        }
        else
        {
            c.Out.Fields(("accepted", report.Accepted.ToString("N0", CultureInfo.InvariantCulture)),
                ("duplicate", report.Duplicate.ToString("N0", CultureInfo.InvariantCulture)), ("rejected", report.Rejected.ToString("N0", CultureInfo.InvariantCulture)));
            if (report.Rejections.Count > 0)
            {
                c.Out.Line();
                c.Out.Table(["SOURCE", "SAMPLE", "REASON", "WHY"], report.Rejections.Select(r => (IReadOnlyList<string>)[r.Source, r.SampleId, r.Reason, r.Message]));
            }
        }

        return 0;
    }

    /// <summary>Reports synchronously (Progress&lt;T&gt; would post to a thread pool and reorder lines).</summary>
    private sealed class Progress(Action<long> report) : IProgress<long>
    {
        public void Report(long value) => report(value);
    }
}
