using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Procurement.Api.V1;
using Procurement.Server.Auth;
using Procurement.TestSupport;

namespace Procurement.Server.Tests;

/// <summary>
/// April 2026 (30 days, 720 hours) scripted on a fake clock. Expected values are worked out by hand:
///
/// Contract lab-a: H100 pool reserved 10 (burst 10), H200 pool reserved 0 (burst 10); $100,000/month
/// committed; H100 graduated ($2.00 to 5,000 h, then $1.50), H200 volume ($4.00 to 1,000 h, then $3.00);
/// index base 2.00, beta 0.5 → published 2.20 on 20 March gives f = 1 + 0.5 × 0.1 = 1.05 (a value
/// published for 15 April is after the period start and is ignored); bands: reservation utilization
/// [0, 0.5) × 1.10, pool utilization [0, 0.2) × 0.95. lab-b holds 20 H100 units all month.
///
/// Allocations of lab-a: 8 H100 units 1–11 April (240 h) = 1,920 GPU-h guaranteed; 16 H100 units
/// 11–16 April (120 h) = 1,920 GPU-h, 1,200 guaranteed + 720 burst; 5 H200 units 16–21 April = 600 GPU-h burst.
///   H100: 3,840 GPU-h × 2.00 × 1.05 = 8,064.00;  H200: 600 × 4.00 × 1.05 = 2,520.00;  usage 10,584.00
///   reservation utilization 3,120 / 7,200 = 0.4333… → × 1.10; pool utilization
///   (18,240/72,000 × 3,840 + 600/36,000 × 600) / 4,440 = 0.2213… → no band.  adjustment 1,058.40
///   true-up 100,000.00 − 11,642.40 = 88,357.60
/// SLA: T = 10 × 43,200 = 432,000 GPU-min. Outage of 50 of 100 H100 units for 360 min: D = 0.5 × 10 × 360
///   = 1,800. Maintenance announced 24 days ahead: excluded. Degraded: not counted. H200 outage: the
///   contract reserves nothing there, so 0. Uptime 100 × (1 − 1,800/432,000) = 99.58…% → 10% credit:
///   −round(0.10 × 100,000.00) = −10,000.00.  Total 90,000.00.
/// </summary>
public sealed class ScriptedMonthTests : IAsyncLifetime
{
    private static readonly DateTimeOffset April = new(2026, 4, 1, 0, 0, 0, TimeSpan.Zero);
    private ServerHarness _server = null!;
    private Contract _contract = null!;
    private Statement _midMonth = null!;
    private SlaReport _midMonthReport = null!;

    private static Money Usd(long micros) => Fixtures.Usd(micros);

    public async Task InitializeAsync()
    {
        _server = await ServerHarness.StartAsync(April);
        await Fixtures.CreatePoolsAsync(_server, h100Capacity: 100, h200Capacity: 50);
        var ops = _server.OperatorContracts;
        await ops.PublishIndexValueAsync(new PublishIndexValueRequest { RequestId = Rpc.NewRequestId(), IndexName = "GPU-IDX", Value = "2.20", EffectiveTime = Ts(April.AddDays(-12)) });
        await ops.PublishIndexValueAsync(new PublishIndexValueRequest { RequestId = Rpc.NewRequestId(), IndexName = "GPU-IDX", Value = "3.00", EffectiveTime = Ts(April.AddDays(14)) });

        var terms = Fixtures.Terms(April);
        terms.MonthlyCommitment = Usd(100_000_000_000);
        terms.Entitlements.Clear();
        terms.Entitlements.Add(new PoolEntitlement { PoolId = Fixtures.H100, ReservedUnits = 10, BurstLimitUnits = 10 });
        terms.Entitlements.Add(new PoolEntitlement { PoolId = Fixtures.H200, ReservedUnits = 0, BurstLimitUnits = 10 });
        terms.RateCard.Clear();
        terms.RateCard.Add(new RateCardEntry { AcceleratorType = "H100-SXM-80GB", Mode = PricingMode.Graduated, Tiers = { new PriceTier { UpToGpuHours = "5000", UnitPrice = Usd(2_000_000) }, new PriceTier { UnitPrice = Usd(1_500_000) } } });
        terms.RateCard.Add(new RateCardEntry { AcceleratorType = "H200-SXM-141GB", Mode = PricingMode.Volume, Tiers = { new PriceTier { UpToGpuHours = "1000", UnitPrice = Usd(4_000_000) }, new PriceTier { UnitPrice = Usd(3_000_000) } } });
        terms.IndexLinkage = new IndexLinkage { IndexName = "GPU-IDX", BaseValue = "2.00", PassThrough = "0.5", Floor = "0.9", Cap = "1.25" };
        terms.UtilizationBands.Clear();
        terms.UtilizationBands.Add(new UtilizationBand { Metric = UtilizationMetric.ReservationUtilization, Min = "0", Max = "0.5", Multiplier = "1.10" });
        terms.UtilizationBands.Add(new UtilizationBand { Metric = UtilizationMetric.PoolUtilization, Min = "0", Max = "0.2", Multiplier = "0.95" });
        _contract = await Fixtures.CreateActiveContractAsync(_server, "lab-a", terms);
        var other = await Fixtures.CreateActiveContractAsync(_server, "lab-b", Fixtures.H100Terms(April, 20, 0));

        // 1 April: lab-b takes 20 units for the month; lab-a 8 guaranteed units.
        await AllocateAsync(other.ContractId, Fixtures.H100, 20);
        var first = await AllocateAsync(_contract.ContractId, Fixtures.H100, 8);
        await MaintenanceAnnouncementAsync();

        // A meter reports the first hour of the first allocation half busy: 8 × 3,600 × 0.5 = 14,400 GPU-seconds.
        _server.Clock.SetUtcNow(April.AddHours(2));
        var meter = _server.Allocations(await _server.CreateKeyAsync(Role.Meter));
        using (var call = meter.ReportUsage())
        {
            await call.RequestStream.WriteAsync(new ReportUsageRequest
            {
                Samples = { new UsageSample { Source = "m", SampleId = "1", AllocationId = first, WindowStart = Ts(April), WindowEnd = Ts(April.AddHours(1)), BusyGpuSeconds = 14_400 } },
            });
            await call.RequestStream.CompleteAsync();
            Assert.Equal(1, (await call.ResponseAsync).Accepted);
        }

        await RecordIncidentAsync(Fixtures.H100, IncidentKind.Degraded, April.AddDays(4), April.AddDays(4).AddHours(1), 100);

        // 11 April: release the 8; take 16 (10 guaranteed + 6 burst) until 16 April.
        _server.Clock.SetUtcNow(April.AddDays(10));
        await ReleaseAsync(first);
        var second = await AllocateAsync(_contract.ContractId, Fixtures.H100, 16);

        // 13 April: a provisional look at the month so far.
        _server.Clock.SetUtcNow(April.AddDays(12));
        _midMonth = await StatementAsync();
        _midMonthReport = await ReportAsync();

        // 16 April: release; take 5 H200 units, ending by themselves after 120 hours.
        _server.Clock.SetUtcNow(April.AddDays(15));
        await ReleaseAsync(second);
        await AllocateAsync(_contract.ContractId, Fixtures.H200, 5, TimeSpan.FromHours(120));

        // Incidents: an H200 outage (nothing reserved there), an H100 outage of half the pool for 6 hours.
        await RecordIncidentAsync(Fixtures.H200, IncidentKind.Outage, April.AddDays(17), April.AddDays(17).AddHours(1), 50);
        var outage = await RecordIncidentAsync(Fixtures.H100, IncidentKind.Outage, April.AddDays(19), null, 50);
        _server.Clock.SetUtcNow(April.AddDays(19).AddHours(6));
        await new SlaService.SlaServiceClient(_server.Invoker(_server.OperatorKey)).ResolveIncidentAsync(new ResolveIncidentRequest
        {
            RequestId = Rpc.NewRequestId(), IncidentId = outage, EndTime = Ts(April.AddDays(19).AddHours(6)),
        });

        _server.Clock.SetUtcNow(April.AddMonths(1).AddHours(3));
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task MaintenanceAnnouncementAsync() =>
        await new SlaService.SlaServiceClient(_server.Invoker(_server.OperatorKey)).RecordIncidentAsync(new RecordIncidentRequest
        {
            RequestId = Rpc.NewRequestId(), PoolId = Fixtures.H100, Kind = IncidentKind.Maintenance, StartTime = Ts(April.AddDays(24)),
            EndTime = Ts(April.AddDays(24).AddHours(2)), AffectedUnits = 100, AnnounceTime = Ts(April),
        });

    private async Task<string> RecordIncidentAsync(string pool, IncidentKind kind, DateTimeOffset start, DateTimeOffset? end, long units) =>
        (await new SlaService.SlaServiceClient(_server.Invoker(_server.OperatorKey)).RecordIncidentAsync(new RecordIncidentRequest
        {
            RequestId = Rpc.NewRequestId(), PoolId = pool, Kind = kind, StartTime = Ts(start), EndTime = end is { } e ? Ts(e) : null, AffectedUnits = units,
        })).Incident.IncidentId;

    private async Task<string> AllocateAsync(string contractId, string pool, long units, TimeSpan? duration = null) =>
        (await _server.OperatorAllocations.RequestAllocationAsync(new RequestAllocationRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = contractId, PoolId = pool, Units = units,
            Duration = duration is { } d ? Duration.FromTimeSpan(d) : null,
        })).Allocation.AllocationId;

    private async Task ReleaseAsync(string id) =>
        await _server.OperatorAllocations.ReleaseAllocationAsync(new ReleaseAllocationRequest { RequestId = Rpc.NewRequestId(), AllocationId = id });

    private static Timestamp Ts(DateTimeOffset t) => Timestamp.FromDateTimeOffset(t);

    private static string Dec(decimal d) => Procurement.Server.Mapping.StatementMapper.Dec(d);

    private async Task<Statement> StatementAsync() =>
        (await _server.OperatorContracts.GetStatementAsync(new GetStatementRequest { ContractId = _contract.ContractId, Month = new BillingMonth { Year = 2026, Month = 4 } })).Statement;

    private async Task<SlaReport> ReportAsync() =>
        (await new SlaService.SlaServiceClient(_server.Invoker(_server.OperatorKey)).GetSlaReportAsync(new GetSlaReportRequest
        {
            ContractId = _contract.ContractId, Month = new BillingMonth { Year = 2026, Month = 4 },
        })).Report;

    [Fact]
    public async Task Statement_MatchesTheHandWorkedBill()
    {
        var s = await StatementAsync();
        Assert.False(s.Provisional);
        Assert.Equal(1, s.TermsVersion);
        Assert.Equal(
            [(StatementLineKind.Usage, 8_064_000_000L), (StatementLineKind.Usage, 2_520_000_000L), (StatementLineKind.UtilizationAdjustment, 1_058_400_000L),
             (StatementLineKind.CommitmentTrueUp, 88_357_600_000L), (StatementLineKind.SlaCredit, -10_000_000_000L)],
            s.Lines.Select(l => (l.Kind, l.Amount.AmountMicros)));
        Assert.Equal(90_000_000_000L, s.Total.AmountMicros);
        Assert.Equal(s.Total.AmountMicros, s.Lines.Sum(l => l.Amount.AmountMicros)); // I5

        var h100 = s.Lines[0].Usage;
        Assert.Equal(("3840", "3120", "720", "1.05"), (h100.GpuHours, h100.GuaranteedGpuHours, h100.BurstGpuHours, h100.IndexFactor));
        Assert.Equal("2.1", Assert.Single(h100.Tiers).UnitPrice);
        Assert.Equal(("2.2", "GPU-IDX"), (s.Index.Value, s.Index.IndexName));
        Assert.Equal(new DateTimeOffset(2026, 3, 20, 0, 0, 0, TimeSpan.Zero), s.Index.EffectiveTime.ToDateTimeOffset());
        Assert.Equal(Dec(3120m / 7200m), s.Metrics.ReservationUtilization);
        var band = Assert.Single(s.Lines[2].Adjustment.Bands);
        Assert.Equal((UtilizationMetric.ReservationUtilization, "1.1"), (band.Metric, band.Multiplier));
        Assert.Equal(Dec(((18240m / 72000m * 3840m) + (600m / 36000m * 600m)) / 4440m), s.Metrics.PoolUtilization);
        Assert.Equal(Dec(4m / 4440m), s.Metrics.BusyFraction);
        Assert.Equal(("1", "100000"), (s.Lines[3].TrueUp.TermFraction, s.Lines[3].TrueUp.ProratedCommitment));
        Assert.Equal(("10", "99.99"), (s.Lines[4].Credit.CreditPercent, s.Lines[4].Credit.BelowPercent));
    }

    [Fact]
    public async Task Statement_OfATermStartingMidMonth_ReadsTheIndexAtTheTermsStart()
    {
        // The term starts 20 April, after the value published for 15 April (3.00): f = 1 + 0.5 × 0.5 = 1.25.
        var terms = Fixtures.H100Terms(April, 0, 10);
        terms.StartTime = Ts(April.AddDays(19));
        terms.IndexLinkage = new IndexLinkage { IndexName = "GPU-IDX", BaseValue = "2.00", PassThrough = "0.5", Floor = "0.9", Cap = "1.5" };
        var late = await Fixtures.CreateActiveContractAsync(_server, "lab-c", terms);
        var april = new BillingMonth { Year = 2026, Month = 4 };

        var s = (await _server.OperatorContracts.GetStatementAsync(new GetStatementRequest { ContractId = late.ContractId, Month = april })).Statement;
        Assert.Equal("3", s.Index.Value);
        Assert.Equal(April.AddDays(14), s.Index.EffectiveTime.ToDateTimeOffset());
        Assert.Equal("1.25", s.Lines[0].Usage.IndexFactor);

        var quote = (await _server.OperatorContracts.QuoteContractAsync(new QuoteContractRequest
        {
            ContractId = late.ContractId, Month = april, Usage = { new ProjectedUsage { AcceleratorType = "H100-SXM-80GB", GpuHours = "10" } },
        })).Statement;
        Assert.Equal("3", quote.Index.Value);
    }

    [Fact]
    public async Task SlaReport_MatchesTheHandWorkedUptime()
    {
        var r = await ReportAsync();
        Assert.Equal(("432000", "1800"), (r.ReservedGpuMinutes, r.DowntimeGpuMinutes));
        Assert.Equal(Dec(100m * (1m - (1800m / 432000m))), r.UptimePercent);
        Assert.False(r.TargetMet);
        Assert.Equal(("10", "99.99"), (r.CreditPercent, r.CreditBelowPercent));
        Assert.Equal(("432", "1800", "-1368"), (r.ErrorBudgetMinutes, r.ErrorBudgetUsedMinutes, r.ErrorBudgetLeftMinutes));
        var byKind = r.Incidents.ToDictionary(i => (i.Incident.PoolId, i.Incident.Kind));
        Assert.Equal((true, "1800"), (byKind[(Fixtures.H100, IncidentKind.Outage)].Counted, byKind[(Fixtures.H100, IncidentKind.Outage)].DowntimeGpuMinutes));
        Assert.False(byKind[(Fixtures.H100, IncidentKind.Maintenance)].Counted);
        Assert.Contains("notice", byKind[(Fixtures.H100, IncidentKind.Maintenance)].Explanation);
        Assert.False(byKind[(Fixtures.H100, IncidentKind.Degraded)].Counted);
        Assert.Equal((true, "0"), (byKind[(Fixtures.H200, IncidentKind.Outage)].Counted, byKind[(Fixtures.H200, IncidentKind.Outage)].DowntimeGpuMinutes));
    }

    [Fact]
    public async Task StatementAndReport_AreByteIdentical_AgainAndAfterARestart()
    {
        var statement = (await StatementAsync()).ToByteArray();
        var report = (await ReportAsync()).ToByteArray();
        Assert.Equal(statement, (await StatementAsync()).ToByteArray());
        await _server.RestartAsync();
        Assert.Equal(statement, (await StatementAsync()).ToByteArray());
        Assert.Equal(report, (await ReportAsync()).ToByteArray());
    }

    [Fact]
    public async Task MonthInProgress_IsProvisionalUpToNow()
    {
        var s = _midMonth;
        Assert.True(s.Provisional);
        Assert.Equal(April.AddDays(12), s.PeriodEnd.ToDateTimeOffset());
        // 1,920 GPU-h of the first allocation plus 2 days × 24 h × 16 units = 768 of the second.
        Assert.Equal("2688", s.Lines[0].Usage.GpuHours);
        Assert.True(_midMonthReport.Provisional);
        Assert.False((await StatementAsync()).Provisional);
    }

    [Fact]
    public async Task Customer_ReadsOnlyItsOwnStatementsAndReports()
    {
        var mine = _server.Contracts(await _server.CreateKeyAsync(Role.Customer, "lab-a"));
        var theirs = _server.Contracts(await _server.CreateKeyAsync(Role.Customer, "lab-b"));
        var month = new BillingMonth { Year = 2026, Month = 4 };
        Assert.Equal(90_000_000_000L, (await mine.GetStatementAsync(new GetStatementRequest { ContractId = _contract.ContractId, Month = month })).Statement.Total.AmountMicros);
        await Rpc.FailsWith(StatusCode.NotFound, theirs.GetStatementAsync(new GetStatementRequest { ContractId = _contract.ContractId, Month = month }));
        await Rpc.FailsWith(StatusCode.NotFound, new SlaService.SlaServiceClient(_server.Invoker(await _server.CreateKeyAsync(Role.Customer, "lab-b")))
            .GetSlaReportAsync(new GetSlaReportRequest { ContractId = _contract.ContractId, Month = month }));
        await Rpc.FailsWith(StatusCode.NotFound, theirs.QuoteContractAsync(new QuoteContractRequest { ContractId = _contract.ContractId, Month = month }));
    }

    [Fact]
    public async Task Statement_ForAMonthNotBegun_IsRefused()
    {
        var e = await Rpc.FailsWith(StatusCode.FailedPrecondition, "MONTH_NOT_STARTED", _server.OperatorContracts.GetStatementAsync(new GetStatementRequest
        {
            ContractId = _contract.ContractId, Month = new BillingMonth { Year = 2026, Month = 6 },
        }));
        Assert.Equal(["month"], e.BadFields());
    }

    [Fact]
    public async Task Quote_OnTheSameInputs_GivesTheStatementsLines()
    {
        // The April bill's inputs, projected: the same engine gives the same lines.
        var quote = (await _server.OperatorContracts.QuoteContractAsync(new QuoteContractRequest
        {
            ContractId = _contract.ContractId,
            Month = new BillingMonth { Year = 2026, Month = 4 },
            Usage = { new ProjectedUsage { AcceleratorType = "H100-SXM-80GB", GpuHours = "3840" }, new ProjectedUsage { AcceleratorType = "H200-SXM-141GB", GpuHours = "600" } },
            ReservationUtilization = "0.4",
            PoolUtilization = "0.3",
            UptimePercent = "99.5",
        })).Statement;
        Assert.Equal([8_064_000_000L, 2_520_000_000L, 1_058_400_000L, 88_357_600_000L, -10_000_000_000L], quote.Lines.Select(l => l.Amount.AmountMicros));
        Assert.Equal(90_000_000_000L, quote.Total.AmountMicros);
        Assert.Equal("", quote.Lines[0].Usage.GuaranteedGpuHours);
    }

    [Fact]
    public async Task Quote_InlineTermsAndAGivenIndexValue()
    {
        // Inline terms: Fixtures.Terms (H100 graduated $2.25 to 100,000 h, then $2.00; index base 2.40,
        // beta 0.5, floor 0.90, cap 1.25). Index 1.20 → 1 + 0.5 × (0.5 − 1) = 0.75 → floor 0.90.
        // 1,000 h × 2.25 × 0.9 = 2,025.00; no bands; commitment 1.25B → true-up 1,249,997,975.00.
        var quote = (await _server.OperatorContracts.QuoteContractAsync(new QuoteContractRequest
        {
            Terms = Fixtures.Terms(April),
            Month = new BillingMonth { Year = 2026, Month = 4 },
            Usage = { new ProjectedUsage { AcceleratorType = "H100-SXM-80GB", GpuHours = "1000" } },
            IndexValue = "1.20",
        })).Statement;
        Assert.Equal("0.9", quote.Index.Factor);
        Assert.Equal(2_025_000_000L, quote.Lines[0].Amount.AmountMicros);
        Assert.Equal(1_249_997_975_000_000L, quote.Lines.Single(l => l.Kind == StatementLineKind.CommitmentTrueUp).Amount.AmountMicros);
    }

    [Fact]
    public async Task Quote_BadInputs_NameEachField()
    {
        var e = await Rpc.FailsWith(StatusCode.InvalidArgument, _server.OperatorContracts.QuoteContractAsync(new QuoteContractRequest
        {
            ContractId = _contract.ContractId,
            Usage = { new ProjectedUsage { AcceleratorType = "H100-SXM-80GB", GpuHours = "-1" } },
            ReservationUtilization = "1.5",
            UptimePercent = "abc",
        }));
        Assert.Equal(["month", "reservation_utilization", "uptime_percent", "usage[0].gpu_hours"], e.BadFields());
    }

    [Fact]
    public async Task IndexValues_AreImmutableAndListed()
    {
        var ops = _server.OperatorContracts;
        await Rpc.FailsWith(StatusCode.AlreadyExists, ops.PublishIndexValueAsync(new PublishIndexValueRequest
        {
            RequestId = Rpc.NewRequestId(), IndexName = "GPU-IDX", Value = "9.99", EffectiveTime = Ts(April.AddDays(-12)),
        }));
        var values = await ops.ListIndexValuesAsync(new ListIndexValuesRequest { IndexName = "GPU-IDX" });
        Assert.Equal(["2.20", "3.00"], values.IndexValues.Select(v => v.Value));
    }

    [Fact]
    public async Task Incidents_AreListedAndValidated()
    {
        var sla = new SlaService.SlaServiceClient(_server.Invoker(_server.OperatorKey));
        var all = await sla.ListIncidentsAsync(new ListIncidentsRequest { PoolId = Fixtures.H100 });
        Assert.Equal([IncidentKind.Degraded, IncidentKind.Outage, IncidentKind.Maintenance], all.Incidents.Select(i => i.Kind));
        var window = await sla.ListIncidentsAsync(new ListIncidentsRequest { StartTime = Ts(April.AddDays(17)), EndTime = Ts(April.AddDays(20)) });
        Assert.Equal(2, window.Incidents.Count);

        var e = await Rpc.FailsWith(StatusCode.InvalidArgument, sla.RecordIncidentAsync(new RecordIncidentRequest
        {
            RequestId = Rpc.NewRequestId(), PoolId = Fixtures.H100, Kind = IncidentKind.Outage, StartTime = Ts(April.AddDays(2)),
            EndTime = Ts(April.AddDays(1)), AffectedUnits = 0, AnnounceTime = Ts(April),
        }));
        Assert.Equal(["end_time", "announce_time", "affected_units"], e.BadFields());
        var early = await Rpc.FailsWith(StatusCode.InvalidArgument, sla.RecordIncidentAsync(new RecordIncidentRequest
        {
            RequestId = Rpc.NewRequestId(), PoolId = Fixtures.H100, Kind = IncidentKind.Outage, StartTime = Ts(April.AddDays(-1)), AffectedUnits = 1,
        }));
        Assert.Equal(["start_time"], early.BadFields());
        var resolved = all.Incidents[1].IncidentId;
        await Rpc.FailsWith(StatusCode.FailedPrecondition, sla.ResolveIncidentAsync(new ResolveIncidentRequest
        {
            RequestId = Rpc.NewRequestId(), IncidentId = resolved, EndTime = Ts(April.AddDays(21)),
        }));
    }
}
