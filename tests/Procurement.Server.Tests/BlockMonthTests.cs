using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.DependencyInjection;
using Procurement.Api.V1;
using Procurement.Server.Application;
using Procurement.Server.Hosting;
using Procurement.Server.Mapping;
using Procurement.Storage;
using Procurement.TestSupport;

namespace Procurement.Server.Tests;

/// <summary>
/// April 2026 (720 hours) with capacity blocks, on a fake clock. Expected values worked out by hand:
///
/// Contract lab-a in the H100 pool (capacity 10): reserved R0 = 4, burst 2, max_block_units 4; H100
/// at $2.25 a GPU-hour; blocks at $3.00 a GPU-hour with a 24-hour cancellation notice; $10,000 a month
/// committed; no index, no bands.
///   Block B1: 4 units, 2 April 00:00 – 3 April 00:00 (24 h): 4 × 24 × 3.00 = 288.00.
///   Block B2: 2 units on 20 April, cancelled at 19 April 12:00, inside the notice: 2 × 24 × 3.00 = 144.00.
///   Block B3: 2 units on 25 April, cancelled on 10 April, outside the notice: nothing.
/// Allocations: X1 4 units all month; X2 4 units from 2 April 06:00; X3 2 units from 2 April 12:00.
/// At B1's end lab-a holds 10 against R0 + burst = 6: the latest (X3) and then X2 cover the excess
/// of 4; walking back, X3 is not needed, so X2 alone expires at 3 April 00:00.
///   [1 Apr 00:00, 2 Apr 06:00)  30 h  U = 4            guaranteed 120
///   [2 Apr 06:00, 2 Apr 12:00)   6 h  U = 8,  X = 4    guaranteed 24, block 24
///   [2 Apr 12:00, 3 Apr 00:00)  12 h  U = 10, X = 4    guaranteed 48, block 48, burst 24
///   [3 Apr 00:00, 1 May 00:00) 672 h  U = 6            guaranteed 2,688, burst 1,344
///   guaranteed 2,880 + burst 1,368 = 4,248 GPU-h × 2.25 = 9,558.00; block 72 GPU-h (prepaid).
///   blocks 288.00 + 144.00 = 432.00; adjusted usage 9,990.00; true-up 10.00.
/// SLA: an outage of 5 of 10 units, 2 April 20:00–22:00, inside B1 where R_K = 8:
///   D = 0.5 × 8 × 120 = 480 GPU-min; T = 4 × 43,200 + 4 × 1,440 = 178,560 GPU-min;
///   uptime 100 × (1 − 480 / 178,560) = 99.7311…% → 10% credit: −round(0.10 × 10,000.00) = −1,000.00.
///   Total 9,000.00.
/// </summary>
public sealed class BlockMonthTests : IAsyncLifetime
{
    private static readonly DateTimeOffset April = new(2026, 4, 1, 0, 0, 0, TimeSpan.Zero);
    private ServerHarness _server = null!;
    private Contract _contract = null!;
    private CapacityBlock _b1 = null!;
    private CapacityBlock _b2 = null!;
    private string _x2 = "";
    private string _x3 = "";

    private static Timestamp Ts(DateTimeOffset t) => Timestamp.FromDateTimeOffset(t);

    private static DateTimeOffset At(int day, int hour = 0) => April.AddDays(day - 1).AddHours(hour);

    public async Task InitializeAsync()
    {
        _server = await ServerHarness.StartAsync(April);
        await Fixtures.CreatePoolsAsync(_server, h100Capacity: 10, h200Capacity: 10);
        var terms = Fixtures.H100Terms(April, reserved: 4, burst: 2);
        terms.MonthlyCommitment = Fixtures.Usd(10_000_000_000);
        terms.IndexLinkage = null;
        terms.UtilizationBands.Clear();
        terms.RateCard.Clear();
        terms.RateCard.Add(new RateCardEntry { AcceleratorType = "H100-SXM-80GB", Mode = PricingMode.Graduated, Tiers = { new PriceTier { UnitPrice = Fixtures.Usd(2_250_000) } } });
        terms.Entitlements[0].MaxBlockUnits = 4;
        terms.BlockRates.Add(new BlockRate { AcceleratorType = "H100-SXM-80GB", UnitPrice = Fixtures.Usd(3_000_000) });
        terms.BlockCancellationNotice = Duration.FromTimeSpan(TimeSpan.FromHours(24));
        _contract = await Fixtures.CreateActiveContractAsync(_server, "lab-a", terms);

        _b1 = await BookAsync(4, At(2), At(3));
        _b2 = await BookAsync(2, At(20), At(21));
        var b3 = await BookAsync(2, At(25), At(26));
        await AllocateAsync(4);

        await SetClockAsync(At(2, 6));
        _x2 = await AllocateAsync(4);
        await SetClockAsync(At(2, 12));
        _x3 = await AllocateAsync(2);
        await SetClockAsync(At(2, 20));
        var outage = await Sla.RecordIncidentAsync(new RecordIncidentRequest
        {
            RequestId = Rpc.NewRequestId(), PoolId = Fixtures.H100, Kind = IncidentKind.Outage, StartTime = Ts(At(2, 20)), AffectedUnits = 5,
        });
        await SetClockAsync(At(2, 22));
        await Sla.ResolveIncidentAsync(new ResolveIncidentRequest { RequestId = Rpc.NewRequestId(), IncidentId = outage.Incident.IncidentId, EndTime = Ts(At(2, 22)) });
        await SetClockAsync(At(3).AddMinutes(5));
        await SetClockAsync(At(10));
        await CancelAsync(b3);
        await SetClockAsync(At(19, 12));
        await CancelAsync(_b2);
        await SetClockAsync(At(31, 1));
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private SlaService.SlaServiceClient Sla => new(_server.Invoker(_server.OperatorKey));

    private async Task SetClockAsync(DateTimeOffset t)
    {
        _server.Clock.SetUtcNow(t);
        await _server.Services.GetRequiredService<AllocationSweeper>().SweepOnceAsync(CancellationToken.None);
    }

    private async Task<CapacityBlock> BookAsync(long units, DateTimeOffset start, DateTimeOffset end) =>
        (await _server.OperatorAllocations.BookCapacityBlockAsync(new BookCapacityBlockRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = _contract.ContractId, PoolId = Fixtures.H100, Units = units, StartTime = Ts(start), EndTime = Ts(end),
        })).Block;

    private Task<CancelCapacityBlockResponse> CancelAsync(CapacityBlock b) =>
        _server.OperatorAllocations.CancelCapacityBlockAsync(new CancelCapacityBlockRequest { RequestId = Rpc.NewRequestId(), BlockId = b.BlockId }).ResponseAsync;

    private async Task<string> AllocateAsync(long units) =>
        (await _server.OperatorAllocations.RequestAllocationAsync(new RequestAllocationRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = _contract.ContractId, PoolId = Fixtures.H100, Units = units,
        })).Allocation.AllocationId;

    private async Task<Api.V1.Statement> AprilAsync() =>
        (await _server.OperatorContracts.GetStatementAsync(new GetStatementRequest { ContractId = _contract.ContractId, Month = new BillingMonth { Year = 2026, Month = 4 } })).Statement;

    [Fact]
    public async Task Statement_SplitsTheBlockHours_AndBillsEachBlockOnItsLine()
    {
        var s = await AprilAsync();
        Assert.False(s.Provisional);
        Assert.Equal(
            [StatementLineKind.Usage, StatementLineKind.UtilizationAdjustment, StatementLineKind.CapacityBlocks, StatementLineKind.CommitmentTrueUp, StatementLineKind.SlaCredit],
            s.Lines.Select(l => l.Kind));
        var usage = s.Lines[0].Usage;
        Assert.Equal(("4248", "2880", "1368", "72"), (usage.GpuHours, usage.GuaranteedGpuHours, usage.BurstGpuHours, usage.BlockGpuHours));
        Assert.Equal(9_558_000_000, s.Lines[0].Amount.AmountMicros);
        Assert.Equal(0, s.Lines[1].Amount.AmountMicros);

        var blocks = s.Lines[2];
        Assert.Equal(432_000_000, blocks.Amount.AmountMicros);
        Assert.Equal([_b1.BlockId, _b2.BlockId], blocks.Blocks.Blocks.Select(b => b.BlockId));
        Assert.Equal(("96", "3", 288_000_000L, false), (blocks.Blocks.Blocks[0].GpuHours, blocks.Blocks.Blocks[0].UnitPrice, blocks.Blocks.Blocks[0].Amount.AmountMicros, blocks.Blocks.Blocks[0].CancellationCharge));
        Assert.Equal(("48", 144_000_000L, true), (blocks.Blocks.Blocks[1].GpuHours, blocks.Blocks.Blocks[1].Amount.AmountMicros, blocks.Blocks.Blocks[1].CancellationCharge));

        Assert.Equal(10_000_000, s.Lines[3].Amount.AmountMicros);
        Assert.Equal("9990", s.Lines[3].TrueUp.AdjustedUsage);
        Assert.Equal(-1_000_000_000, s.Lines[4].Amount.AmountMicros);
        Assert.Equal(9_000_000_000, s.Total.AmountMicros);
        Assert.Equal("72", s.Pools.Single().BlockGpuHours);
    }

    [Fact]
    public async Task BlockEnd_ExpiresTheMinimalSet_AtTheBlocksEnd()
    {
        var x2 = (await _server.OperatorAllocations.GetAllocationAsync(new GetAllocationRequest { AllocationId = _x2 })).Allocation;
        Assert.Equal((AllocationState.Expired, AllocationCause.CapacityBlockEnded, At(3)), (x2.State, x2.Cause, x2.FinishTime.ToDateTimeOffset()));
        var x3 = (await _server.OperatorAllocations.GetAllocationAsync(new GetAllocationRequest { AllocationId = _x3 })).Allocation;
        Assert.Equal(AllocationState.Active, x3.State);
    }

    [Fact]
    public async Task SlaReport_CountsBlockUnitsInTheReservedAndDownMinutes()
    {
        var report = (await Sla.GetSlaReportAsync(new GetSlaReportRequest { ContractId = _contract.ContractId, Month = new BillingMonth { Year = 2026, Month = 4 } })).Report;
        Assert.Equal("178560", report.ReservedGpuMinutes);
        Assert.Equal("480", report.DowntimeGpuMinutes);
        Assert.Equal(StatementMapper.Dec(100m * (1m - (480m / 178_560m))), report.UptimePercent);
        Assert.StartsWith("99.7311827956", report.UptimePercent);
        Assert.Equal("10", report.CreditPercent);
    }

    [Fact]
    public async Task Statement_FromTheTotals_IsTheRecomputedOne()
    {
        var store = _server.Services.GetRequiredService<IProcurementStore>();
        var now = _server.Clock.GetUtcNow();
        var (folded, recomputed) = await store.ReadAsync(async s =>
        {
            var contract = (await s.Contracts.GetAsync(_contract.ContractId))!;
            var period = Billing.Period(contract, new Domain.Common.BillingMonth(2026, 4), now);
            return ((await Billing.StatementAsync(s, period, now)).ToApi(), (await Billing.StatementAsync(s, period, now, recompute: true)).ToApi());
        }, CancellationToken.None);
        Assert.Equal(recomputed.ToByteString(), folded.ToByteString());
        Assert.Equal(recomputed, await AprilAsync());
    }

    [Fact]
    public async Task Quote_WithTheMonthsBlocksProjected_GivesTheStatementsAmounts()
    {
        var statement = await AprilAsync();
        var quote = (await _server.OperatorContracts.QuoteContractAsync(new QuoteContractRequest
        {
            ContractId = _contract.ContractId, Month = new BillingMonth { Year = 2026, Month = 4 },
            Usage = { new ProjectedUsage { AcceleratorType = "H100-SXM-80GB", GpuHours = "4248" } },
            UptimePercent = statement.Lines[4].Credit.UptimePercent,
            Blocks =
            {
                new ProjectedBlock { AcceleratorType = "H100-SXM-80GB", Units = 4, Hours = "24" },
                new ProjectedBlock { AcceleratorType = "H100-SXM-80GB", Units = 2, Hours = "24" },
            },
        })).Statement;
        Assert.Equal(statement.Lines.Select(l => (l.Kind, l.Amount)), quote.Lines.Select(l => (l.Kind, l.Amount)));
        Assert.Equal(9_000_000_000, quote.Total.AmountMicros);
        Assert.Equal(["96", "48"], quote.Lines[2].Blocks.Blocks.Select(b => b.GpuHours));
    }

    [Fact]
    public async Task Quote_BadProjectedBlocks_NameEachField()
    {
        var e = await Rpc.FailsWith(Grpc.Core.StatusCode.InvalidArgument, _server.OperatorContracts.QuoteContractAsync(new QuoteContractRequest
        {
            ContractId = _contract.ContractId, Month = new BillingMonth { Year = 2026, Month = 4 },
            Blocks =
            {
                new ProjectedBlock { AcceleratorType = "H100-SXM-80GB", Units = 0, Hours = "24" },
                new ProjectedBlock { AcceleratorType = "H100-SXM-80GB", Units = 1, Hours = "0" },
            },
        }));
        Assert.Equal(["blocks[0].units", "blocks[1].hours"], e.BadFields().Order(StringComparer.Ordinal));
        // The terms are read once the request itself is well formed.
        var unknown = await Rpc.FailsWith(Grpc.Core.StatusCode.InvalidArgument, _server.OperatorContracts.QuoteContractAsync(new QuoteContractRequest
        {
            ContractId = _contract.ContractId, Month = new BillingMonth { Year = 2026, Month = 4 },
            Blocks = { new ProjectedBlock { AcceleratorType = "TPU-v5", Units = 1, Hours = "1" } },
        }));
        Assert.Equal(["blocks[0].accelerator_type"], unknown.BadFields());
    }
}
