using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Procurement.Api.V1;
using Procurement.Domain.Common;
using Procurement.Server.Application;
using Procurement.Server.Auth;
using Procurement.Server.Hosting;
using Procurement.Server.Mapping;
using Procurement.Storage;
using Procurement.TestSupport;
using Xunit.Abstractions;

namespace Procurement.Server.Tests;

/// <summary>
/// Statements read per-month totals folded from each pool's timeline plus what is held since the
/// last fold. Seeded random histories — allocations with and without end times, releases, expiries,
/// preemptions by capacity cuts, suspensions, usage samples, amendments in a term's first month and
/// for the next one, terms that start and end inside a month, capacity blocks booked, cancelled,
/// started and ended (whose hours the split counts apart) — are driven through the API on a fake
/// clock, with folds at random moments; after every step each contract's statement of every month so
/// far is the same, to the byte, as the one recomputed from every interval and sample.
/// Set PROCUREMENT_MODEL_SEED to replay one seed; a failure names its seed and step.
/// </summary>
public sealed class StatementTotalsTests(ITestOutputHelper output)
{
    private const int Steps = 120;
    private static readonly DateTimeOffset Start = new(2026, 3, 20, 9, 0, 0, TimeSpan.Zero);

    public static TheoryData<int> Seeds()
    {
        var fromEnvironment = Environment.GetEnvironmentVariable("PROCUREMENT_MODEL_SEED");
        return fromEnvironment is not null ? new TheoryData<int>(int.Parse(fromEnvironment, System.Globalization.CultureInfo.InvariantCulture)) : new TheoryData<int>(1, 2, 3);
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public async Task RandomHistories_FoldedStatementsEqualRecomputedOnes(int seed)
    {
        await using var server = await ServerHarness.StartAsync(Start);
        var run = new Run(server, seed);
        await run.SetUpAsync();
        for (var step = 1; step <= Steps; step++)
        {
            try
            {
                await run.StepAsync();
                await run.CompareAsync();
            }
            catch (Exception ex)
            {
                throw new Xunit.Sdk.XunitException($"seed {seed}, step {step} ({run.LastAction}): {ex.Message}\n{ex}");
            }
        }

        output.WriteLine($"seed {seed}: {run.Allocated} allocations, {run.Folds} folds, {run.Compared} statements compared");
        Assert.True(run.Folds > 10, "the history was folded along the way");
        Assert.True(run.FoldedMonths > 0, "some statements were read from folded totals");
    }

    [Fact]
    public async Task AMonthFoldedToItsEnd_ReadsItsTotalsAlone()
    {
        await using var server = await ServerHarness.StartAsync(Start);
        await Fixtures.CreatePoolsAsync(server, h100Capacity: 100, h200Capacity: 50);
        var contract = await Fixtures.CreateActiveContractAsync(server, "lab-a", Fixtures.H100Terms(Start, reserved: 10, burst: 20));
        var a = (await server.OperatorAllocations.RequestAllocationAsync(new RequestAllocationRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = contract.ContractId, PoolId = Fixtures.H100, Units = 15,
        })).Allocation;
        server.Clock.Advance(TimeSpan.FromDays(20)); // into April, the allocation still held
        await server.Services.GetRequiredService<UsageFolder>().FoldOnceAsync(CancellationToken.None);

        var march = await server.OperatorContracts.GetStatementAsync(new GetStatementRequest { ContractId = contract.ContractId, Month = new Api.V1.BillingMonth { Year = 2026, Month = 3 } });
        // 20 March 09:00 to 1 April: 279 h × 15 units = 4,185 GPU-h, 10 units guaranteed and 5 burst at every instant.
        var usage = march.Statement.Lines.Single(l => l.Usage?.AcceleratorType == "H100-SXM-80GB").Usage;
        Assert.Equal(("4185", "2790", "1395"), (usage.GpuHours, usage.GuaranteedGpuHours, usage.BurstGpuHours));
        var store = server.Services.GetRequiredService<IProcurementStore>();
        Assert.True(await store.ReadAsync(async s => await s.Totals.FoldMarkAsync(Fixtures.H100), CancellationToken.None) > new DateTimeOffset(2026, 4, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds());
        Assert.Equal(a.AllocationId, (await server.OperatorAllocations.GetAllocationAsync(new GetAllocationRequest { AllocationId = a.AllocationId })).Allocation.AllocationId);
    }

    [Fact]
    public async Task AnAmendmentInATermsFirstMonth_FoldsThatMonthAgainOnTheNewTerms()
    {
        await using var server = await ServerHarness.StartAsync(Start);
        await Fixtures.CreatePoolsAsync(server, h100Capacity: 100, h200Capacity: 50);
        var terms = Fixtures.H100Terms(Start, reserved: 10, burst: 20);
        terms.StartTime = Timestamp.FromDateTimeOffset(Start);
        var contract = await Fixtures.CreateActiveContractAsync(server, "lab-a", terms);
        await server.OperatorAllocations.RequestAllocationAsync(new RequestAllocationRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = contract.ContractId, PoolId = Fixtures.H100, Units = 15,
        });
        server.Clock.Advance(TimeSpan.FromDays(2));
        await server.Services.GetRequiredService<UsageFolder>().FoldOnceAsync(CancellationToken.None);

        terms.Entitlements[0].ReservedUnits = 20;
        await server.OperatorContracts.AmendContractAsync(new AmendContractRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = contract.ContractId, Etag = contract.Etag,
            EffectiveMonth = new Api.V1.BillingMonth { Year = 2026, Month = 3 }, Terms = terms,
        });

        // 48 h × 15 units, all inside the new reservation of 20.
        var march = await server.OperatorContracts.GetStatementAsync(new GetStatementRequest { ContractId = contract.ContractId, Month = new Api.V1.BillingMonth { Year = 2026, Month = 3 } });
        var usage = march.Statement.Lines.Single(l => l.Usage?.AcceleratorType == "H100-SXM-80GB").Usage;
        Assert.Equal(("720", "720", "0"), (usage.GpuHours, usage.GuaranteedGpuHours, usage.BurstGpuHours));
    }

    private sealed class Run(ServerHarness server, int seed)
    {
        private readonly Random _random = new(seed);
        private readonly List<string> _open = [];
        private readonly List<string> _contracts = [];
        private readonly List<string> _blocks = [];
        private string _meterKey = "";
        private IReadOnlyDictionary<string, long> _marks = new Dictionary<string, long>();

        public string LastAction { get; private set; } = "";

        public int Allocated { get; private set; }

        public int Folds { get; private set; }

        public int Compared { get; private set; }

        public int FoldedMonths { get; private set; }

        public async Task SetUpAsync()
        {
            await Fixtures.CreatePoolsAsync(server, h100Capacity: 100, h200Capacity: 50);
            // A: its term starts and ends inside a month; B: whole months, reserving in H100 only.
            var a = Fixtures.Terms(Start, h100Reserved: 10, h200Reserved: 5);
            a.StartTime = Timestamp.FromDateTimeOffset(Start);
            a.EndTime = Timestamp.FromDateTimeOffset(new DateTimeOffset(2026, 5, 17, 15, 30, 0, TimeSpan.Zero));
            a.Entitlements[0].BurstLimitUnits = 30;
            a.Entitlements[1].BurstLimitUnits = 20;
            _contracts.Add((await Fixtures.CreateActiveContractAsync(server, "lab-a", a)).ContractId);
            var b = Fixtures.H100Terms(Start, reserved: 20, burst: 40, priority: 5, preempt: true);
            b.Entitlements[0].MaxBlockUnits = 30;
            b.BlockRates.Add(new BlockRate { AcceleratorType = "H100-SXM-80GB", UnitPrice = Fixtures.Usd(2_750_000) });
            b.BlockCancellationNotice = Duration.FromTimeSpan(TimeSpan.FromHours(12));
            _contracts.Add((await Fixtures.CreateActiveContractAsync(server, "lab-b", b)).ContractId);
            _meterKey = await server.CreateKeyAsync(Role.Meter);
        }

        public async Task StepAsync()
        {
            server.Clock.Advance(TimeSpan.FromMinutes(_random.Next(1, 36 * 60)));
            var roll = _random.Next(100);
            try
            {
                if (roll < 40)
                {
                    await RequestAsync();
                }
                else if (roll < 60 && _open.Count > 0)
                {
                    var id = _open[_random.Next(_open.Count)];
                    LastAction = $"release {id}";
                    _open.Remove(id);
                    await server.OperatorAllocations.ReleaseAllocationAsync(new ReleaseAllocationRequest { RequestId = Rpc.NewRequestId(), AllocationId = id });
                }
                else if (roll < 70)
                {
                    var capacity = _random.Next(40, 120);
                    LastAction = $"h100 capacity {capacity}";
                    await server.OperatorAllocations.UpdatePoolCapacityAsync(new UpdatePoolCapacityRequest { RequestId = Rpc.NewRequestId(), PoolId = Fixtures.H100, CapacityUnits = capacity });
                }
                else if (roll < 80 && _open.Count > 0)
                {
                    await ReportUsageAsync();
                }
                else if (roll < 86)
                {
                    await AmendAsync();
                }
                else if (roll < 92)
                {
                    await BookBlockAsync();
                }
                else if (roll < 94 && _blocks.Count > 0)
                {
                    var id = _blocks[_random.Next(_blocks.Count)];
                    LastAction = $"cancel {id}";
                    _blocks.Remove(id);
                    await server.OperatorAllocations.CancelCapacityBlockAsync(new CancelCapacityBlockRequest { RequestId = Rpc.NewRequestId(), BlockId = id });
                }
                else if (roll < 96)
                {
                    var contract = _contracts[1];
                    LastAction = $"suspend and resume {contract}";
                    await server.OperatorContracts.SuspendContractAsync(new SuspendContractRequest { RequestId = Rpc.NewRequestId(), ContractId = contract, Reason = "test" });
                    server.Clock.Advance(TimeSpan.FromMinutes(_random.Next(1, 600)));
                    await server.OperatorContracts.ResumeContractAsync(new ResumeContractRequest { RequestId = Rpc.NewRequestId(), ContractId = contract });
                }
                else
                {
                    LastAction = "fold";
                }
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.ResourceExhausted or StatusCode.FailedPrecondition or StatusCode.InvalidArgument)
            {
                // Refused by the rules (no capacity, a contract that is not active, an amendment too late): part of the history.
            }

            // The server folds on its own timer as the clock moves; more folds land at other moments.
            if (_random.Next(100) < 35)
            {
                await server.Services.GetRequiredService<UsageFolder>().FoldOnceAsync(CancellationToken.None);
            }
        }

        private async Task RequestAsync()
        {
            var contract = _contracts[_random.Next(_contracts.Count)];
            var pool = contract == _contracts[0] && _random.Next(3) == 0 ? Fixtures.H200 : Fixtures.H100;
            var request = new RequestAllocationRequest { RequestId = Rpc.NewRequestId(), ContractId = contract, PoolId = pool, Units = _random.Next(1, 16) };
            if (_random.Next(3) == 0)
            {
                request.Duration = Duration.FromTimeSpan(TimeSpan.FromMinutes(_random.Next(10, 4 * 24 * 60)));
            }

            LastAction = $"request {request.Units} in {pool} for {contract}";
            var response = await server.OperatorAllocations.RequestAllocationAsync(request);
            _open.Add(response.Allocation.AllocationId);
            Allocated++;
        }

        private async Task BookBlockAsync()
        {
            var now = server.Clock.GetUtcNow();
            var start = Domain.Blocks.BlockCalendar.CeilToHour(now.AddTicks(1)).AddHours(_random.Next(0, 72));
            var request = new BookCapacityBlockRequest
            {
                RequestId = Rpc.NewRequestId(), ContractId = _contracts[1], PoolId = Fixtures.H100, Units = _random.Next(1, 21),
                StartTime = Timestamp.FromDateTimeOffset(start), EndTime = Timestamp.FromDateTimeOffset(start.AddHours(_random.Next(1, 49))),
            };
            LastAction = $"book {request.Units} units {request.StartTime} – {request.EndTime}";
            _blocks.Add((await server.OperatorAllocations.BookCapacityBlockAsync(request)).Block.BlockId);
        }

        private async Task ReportUsageAsync()
        {
            var id = _open[_random.Next(_open.Count)];
            var allocation = (await server.OperatorAllocations.GetAllocationAsync(new GetAllocationRequest { AllocationId = id })).Allocation;
            if (allocation.AdmitTime is null)
            {
                return;
            }

            var start = allocation.AdmitTime.ToDateTimeOffset().AddMinutes(_random.Next(0, 60));
            LastAction = $"usage of {id} from {start:O}";
            using var call = server.Allocations(_meterKey).ReportUsage();
            await call.RequestStream.WriteAsync(new ReportUsageRequest
            {
                Samples =
                {
                    new UsageSample
                    {
                        Source = "m", SampleId = Guid.NewGuid().ToString("N"), AllocationId = id, WindowStart = Timestamp.FromDateTimeOffset(start),
                        WindowEnd = Timestamp.FromDateTimeOffset(start.AddMinutes(1)), BusyGpuSeconds = _random.Next(0, 60),
                    },
                },
            });
            await call.RequestStream.CompleteAsync();
            await call.ResponseAsync;
        }

        private async Task AmendAsync()
        {
            var contractId = _contracts[_random.Next(_contracts.Count)];
            var contract = (await server.OperatorContracts.GetContractAsync(new GetContractRequest { ContractId = contractId })).Contract;
            var now = server.Clock.GetUtcNow();
            // The current month (allowed in a term's first month) or the next one.
            var month = _random.Next(2) == 0 ? Domain.Common.BillingMonth.Of(now) : Domain.Common.BillingMonth.Of(now).Next;
            var terms = contract.Terms.Clone();
            terms.Entitlements[0].ReservedUnits = _random.Next(0, 25);
            LastAction = $"amend {contractId} from {month}: H100 reserved {terms.Entitlements[0].ReservedUnits}";
            await server.OperatorContracts.AmendContractAsync(new AmendContractRequest
            {
                RequestId = Rpc.NewRequestId(), ContractId = contractId, Etag = contract.Etag,
                EffectiveMonth = new Api.V1.BillingMonth { Year = month.Year, Month = month.Month }, Terms = terms,
            });
        }

        public async Task CompareAsync()
        {
            var store = server.Services.GetRequiredService<IProcurementStore>();
            var now = Mutations.TruncateToMilliseconds(server.Clock.GetUtcNow());
            var marks = await store.ReadAsync(s => s.Totals.FoldMarksAsync(), CancellationToken.None);
            if (!marks.OrderBy(m => m.Key).SequenceEqual(_marks.OrderBy(m => m.Key)))
            {
                (_marks, Folds) = (marks, Folds + 1);
            }

            foreach (var contractId in _contracts)
            {
                for (var month = Domain.Common.BillingMonth.Of(Start); month.Start <= now; month = month.Next)
                {
                    var (folded, recomputed) = await store.ReadAsync(async s =>
                    {
                        var contract = await s.Contracts.GetAsync(contractId) ?? throw new InvalidOperationException(contractId);
                        var period = Billing.Period(contract, month, now);
                        return ((await Billing.StatementAsync(s, period, now)).ToApi(), (await Billing.StatementAsync(s, period, now, recompute: true)).ToApi());
                    }, CancellationToken.None);
                    if (!folded.ToByteString().Equals(recomputed.ToByteString()))
                    {
                        Assert.Equal(JsonFormatter.Default.Format(recomputed), JsonFormatter.Default.Format(folded));
                    }

                    Compared++;
                    if (marks.Values.Any(m => m > month.Start.ToUnixTimeMilliseconds()))
                    {
                        FoldedMonths++;
                    }
                }
            }
        }
    }
}
