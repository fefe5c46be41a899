using System.Globalization;
using Google.Protobuf.WellKnownTypes;
using Procurement.Api.V1;

namespace Procurement.EndToEnd.Tests;

/// <summary>The month so far of the headline deal, through the client library, against a real server.</summary>
public sealed class HeadlineMonthTests
{
    [Fact]
    public async Task HeadlineDeal_PoolsContractPreemptionUsageOutageSlaAndStatement()
    {
        await using var target = await Target.StartAsync();
        using var client = target.Client();
        var deal = new Deal(Guid.NewGuid().ToString("N")[..8]);
        var now = TimeProvider.System.GetUtcNow();
        var monthStart = new DateTimeOffset(now.Year, now.Month, 1, 0, 0, 0, TimeSpan.Zero);

        await deal.CreatePoolsAsync(client);
        await client.Contracts.PublishIndexValueAsync(new PublishIndexValueRequest { IndexName = deal.Index, Value = "2.46", EffectiveTime = Timestamp.FromDateTimeOffset(monthStart.AddDays(-1)) });
        var frontier = await Deal.ActiveContractAsync(client, "frontier-lab", deal.Headline(monthStart));
        var second = await Deal.ActiveContractAsync(client, "second-lab", deal.Second(monthStart));

        // The second lab borrows 20,000 above its reservation; the frontier lab's guaranteed request takes them back.
        var borrowed = (await client.Allocations.RequestAsync(new RequestAllocationRequest { ContractId = second.ContractId, PoolId = deal.H100, Units = 30_000 })).Allocation;
        var dry = await client.Allocations.RequestAsync(new RequestAllocationRequest { ContractId = frontier.ContractId, PoolId = deal.H100, Units = 75_000, DryRun = true });
        Assert.Equal(borrowed.AllocationId, Assert.Single(dry.Decision.Preemptions).AllocationId);
        var mine = await client.Allocations.RequestAsync(new RequestAllocationRequest { ContractId = frontier.ContractId, PoolId = deal.H100, Units = 75_000 });
        Assert.True(mine.Decision.Guaranteed);
        var victim = await client.Allocations.GetAsync(borrowed.AllocationId);
        Assert.Equal((AllocationState.Preempted, AllocationCause.GuaranteedRequest), (victim.State, victim.Cause));

        // A meter reports the first second of the allocation, half busy.
        await Task.Delay(1100);
        var admitted = mine.Allocation.AdmitTime.ToDateTimeOffset();
        var usage = await client.Allocations.ReportUsageAsync([new UsageSample
        {
            Source = "e2e-meter", SampleId = Guid.NewGuid().ToString(), AllocationId = mine.Allocation.AllocationId,
            WindowStart = Timestamp.FromDateTimeOffset(admitted), WindowEnd = Timestamp.FromDateTimeOffset(admitted.AddSeconds(1)), BusyGpuSeconds = 37_500,
        }]);
        Assert.Equal(1, usage.Accepted);

        // An outage of 20,000 of the 100,000 H100s for the first second after the pool was created:
        // D = 0.2 × 80,000 reserved × its minutes.
        var outageStart = (await client.Allocations.GetPoolAsync(deal.H100)).CreateTime.ToDateTimeOffset();
        var outageEnd = outageStart.AddSeconds(1);
        await client.Sla.RecordIncidentAsync(new RecordIncidentRequest
        {
            PoolId = deal.H100, Kind = IncidentKind.Outage, AffectedUnits = 20_000,
            StartTime = Timestamp.FromDateTimeOffset(outageStart), EndTime = Timestamp.FromDateTimeOffset(outageEnd),
        });

        var report = await client.Sla.GetReportAsync(frontier.ContractId, now.Year, now.Month);
        Assert.True(report.Provisional);
        var outageMinutes = (decimal)(outageEnd - outageStart).TotalMilliseconds / 60_000m;
        Assert.Equal(0.2m * 80_000m * outageMinutes, Dec(report.DowntimeGpuMinutes), 10);
        var periodMinutes = (decimal)(report.PeriodEnd.ToDateTimeOffset() - report.PeriodStart.ToDateTimeOffset()).TotalMilliseconds / 60_000m;
        Assert.Equal(110_000m * periodMinutes, Dec(report.ReservedGpuMinutes), 10);
        Assert.Equal(100m * (1m - (Dec(report.DowntimeGpuMinutes) / Dec(report.ReservedGpuMinutes))), Dec(report.UptimePercent), 10);
        Assert.True(Assert.Single(report.Incidents).Counted);

        var statement = await client.Contracts.GetStatementAsync(frontier.ContractId, now.Year, now.Month);
        Assert.True(statement.Provisional);
        Assert.Equal(statement.Total.AmountMicros, statement.Lines.Sum(l => l.Amount.AmountMicros)); // I5
        var h100 = statement.Lines[0].Usage;
        var held = (decimal)(statement.PeriodEnd.ToDateTimeOffset() - admitted).TotalMilliseconds / 3_600_000m;
        Assert.Equal(75_000m * held, Dec(h100.GpuHours), 10);
        Assert.Equal(h100.GpuHours, h100.GuaranteedGpuHours);
        Assert.Equal(("2.46", "1.0125"), (statement.Index.Value, statement.Index.Factor));
        Assert.True(statement.Lines.Single(l => l.Kind == StatementLineKind.CommitmentTrueUp).Amount.AmountMicros > 0);
        Assert.Equal(report.CreditPercent, statement.Lines.Single(l => l.Kind == StatementLineKind.SlaCredit).Credit.CreditPercent);

        var released = await client.Allocations.ReleaseAsync(mine.Allocation.AllocationId);
        Assert.Equal(AllocationState.Released, released.State);
    }

    private static decimal Dec(string s) => decimal.Parse(s, NumberStyles.Number | NumberStyles.AllowExponent, CultureInfo.InvariantCulture);
}
