using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Procurement.Api.V1;
using Procurement.Server.Hosting;
using Procurement.TestSupport;
using Xunit.Abstractions;

namespace Procurement.Server.Tests;

/// <summary>
/// Seeded random sequences of requests, dry runs, replays, releases, capacity changes, suspensions
/// and clock moves, applied both to the real service (gRPC, real SQLite) and to a small reference
/// model written here from docs/design.md. After every step the open allocations agree and I1–I4 hold.
/// Set PROCUREMENT_MODEL_SEED to replay one seed; a failure names its seed and step.
/// </summary>
public sealed class ModelBasedAdmissionTests(ITestOutputHelper output)
{
    private const int StepsPerSeed = 2000;

    public static TheoryData<int> Seeds()
    {
        var fromEnvironment = Environment.GetEnvironmentVariable("PROCUREMENT_MODEL_SEED");
        return fromEnvironment is not null ? new TheoryData<int>(int.Parse(fromEnvironment, System.Globalization.CultureInfo.InvariantCulture)) : new TheoryData<int>(1, 2);
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public async Task RandomSequences_ServiceAgreesWithTheModel(int seed)
    {
        await using var server = await ServerHarness.StartAsync();
        var run = new Run(server, seed, output);
        await run.SetUpAsync();
        for (var step = 1; step <= StepsPerSeed; step++)
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

        await run.CompareAllAsync();
        output.WriteLine($"seed {seed}: {StepsPerSeed} steps, {run.Model.Allocations.Count} allocations, {run.Preemptions} preemptions, {run.Queued} queued");
    }

    /// <summary>The reference model: admission rules written again, independently of the server's code.</summary>
    private sealed class Model
    {
        public long Capacity;
        public readonly List<ModelContract> Contracts = [];
        public readonly Dictionary<string, ModelAllocation> Allocations = [];
        public long NextSeq = 1;

        public IEnumerable<ModelAllocation> Active => Allocations.Values.Where(a => a.State == AllocationState.Active);

        public IEnumerable<ModelAllocation> Pending => Allocations.Values.Where(a => a.State == AllocationState.Pending);

        public long Held(ModelContract k) => Active.Where(a => a.Contract == k).Sum(a => a.Units);

        public bool Borrowing(ModelContract k) => Held(k) > k.Reserved;

        public long Free => Capacity - Active.Sum(a => a.Units);

        public (AdmissionOutcome Outcome, string Reason, List<ModelAllocation> Victims) Decide(ModelContract k, long n, bool wait)
        {
            if (k.Suspended)
            {
                return (AdmissionOutcome.Refuse, "CONTRACT_NOT_ACTIVE", []);
            }

            var u = Held(k);
            if (u + n > k.Reserved + k.Burst)
            {
                return (AdmissionOutcome.Refuse, "BURST_LIMIT_EXCEEDED", []);
            }

            if (Free >= n)
            {
                return (AdmissionOutcome.Admit, "", []);
            }

            var guaranteed = u + n <= k.Reserved;
            var borrowers = Contracts.Where(Borrowing).ToHashSet();
            var candidates = Active.Where(a => borrowers.Contains(a.Contract) && (guaranteed || (k.Preempt && a.Contract.Priority < k.Priority)))
                .OrderBy(a => a.Contract.Priority).ThenByDescending(a => a.AdmittedAt).ThenByDescending(a => a.Seq).ToList();
            var free = Free;
            var chosen = new List<ModelAllocation>();
            foreach (var a in candidates.TakeWhile(_ => free < n))
            {
                chosen.Add(a);
                free += a.Units;
            }

            if (free < n)
            {
                return (wait ? AdmissionOutcome.Queue : AdmissionOutcome.Refuse, "CAPACITY_UNAVAILABLE", []);
            }

            for (var i = chosen.Count - 1; i >= 0; i--)
            {
                if (free - chosen[i].Units >= n)
                {
                    free -= chosen[i].Units;
                    chosen.RemoveAt(i);
                }
            }

            return (AdmissionOutcome.Admit, "", chosen);
        }

        public void Admit(ModelAllocation a, List<ModelAllocation> victims, DateTimeOffset now)
        {
            foreach (var v in victims)
            {
                v.State = AllocationState.Preempted;
            }

            a.State = AllocationState.Active;
            a.AdmittedAt = now;
            if (a.Duration is { } d)
            {
                a.EndTime = now + d;
            }
        }

        public void RetryPending(DateTimeOffset now)
        {
            foreach (var p in Pending.OrderByDescending(p => p.Contract.Priority).ThenBy(p => p.RequestedAt).ThenBy(p => p.Seq).ToList())
            {
                var (outcome, _, victims) = Decide(p.Contract, p.Units, wait: true);
                if (outcome == AdmissionOutcome.Admit)
                {
                    Admit(p, victims, now);
                }
            }
        }

        public void Sweep(DateTimeOffset now)
        {
            var ended = false;
            foreach (var a in Allocations.Values.Where(a => a.State is AllocationState.Active or AllocationState.Pending && a.EndTime <= now))
            {
                ended = true;
                a.State = a.State == AllocationState.Active ? AllocationState.Expired : AllocationState.Cancelled;
            }

            if (ended)
            {
                RetryPending(now);
            }
        }
    }

    private sealed class ModelContract(int index, long reserved, long burst, int priority, bool preempt)
    {
        public int Index { get; } = index;
        public long Reserved { get; } = reserved;
        public long Burst { get; } = burst;
        public int Priority { get; } = priority;
        public bool Preempt { get; } = preempt;
        public bool Suspended { get; set; }
        public string Id { get; set; } = "";
    }

    private sealed class ModelAllocation
    {
        public long Seq { get; init; }
        public string Id => $"alc_{Seq}";
        public required ModelContract Contract { get; init; }
        public long Units { get; init; }
        public AllocationState State { get; set; }
        public DateTimeOffset RequestedAt { get; init; }
        public DateTimeOffset AdmittedAt { get; set; }
        public TimeSpan? Duration { get; init; }
        public DateTimeOffset? EndTime { get; set; }

        public bool IsFinal() => State is not (AllocationState.Active or AllocationState.Pending);
    }

    private sealed class Run(ServerHarness server, int seed, ITestOutputHelper output)
    {
        private readonly Random _random = new(seed);
        private RequestAllocationRequest? _lastRequest;
        private RequestAllocationResponse? _lastResponse;

        public Model Model { get; } = new();

        public string LastAction { get; private set; } = "";

        public int Preemptions { get; private set; }

        public int Queued { get; private set; }

        private AllocationService.AllocationServiceClient Ops => server.OperatorAllocations;

        private DateTimeOffset Now => server.Clock.GetUtcNow();

        public async Task SetUpAsync()
        {
            Model.Capacity = 20;
            await Ops.CreatePoolAsync(new CreatePoolRequest { RequestId = Rpc.NewRequestId(), PoolId = Fixtures.H100, DisplayName = "p", Region = "r", AcceleratorType = "H100-SXM-80GB", CapacityUnits = 20 });
            await Ops.CreatePoolAsync(new CreatePoolRequest { RequestId = Rpc.NewRequestId(), PoolId = Fixtures.H200, DisplayName = "p", Region = "r", AcceleratorType = "H200-SXM-141GB", CapacityUnits = 0 });
            Model.Contracts.AddRange(
            [
                new ModelContract(0, 6, 14, 1, false),
                new ModelContract(1, 4, 16, 5, true),
                new ModelContract(2, 0, 20, 3, true),
                new ModelContract(3, 2, 14, 3, false),
                new ModelContract(4, 0, 20, 0, false),
            ]);
            foreach (var k in Model.Contracts)
            {
                var c = await Fixtures.CreateActiveContractAsync(server, $"lab-{k.Index}", Fixtures.H100Terms(Now, k.Reserved, k.Burst, k.Priority, k.Preempt));
                k.Id = c.ContractId;
            }

            output.WriteLine($"seed {seed}");
        }

        public async Task StepAsync()
        {
            var roll = _random.Next(100);
            if (roll < 45)
            {
                await RequestAsync(dryRun: false);
            }
            else if (roll < 55)
            {
                await RequestAsync(dryRun: true);
            }
            else if (roll < 58 && _lastRequest is not null)
            {
                await ReplayAsync();
            }
            else if (roll < 80)
            {
                await ReleaseAsync();
            }
            else if (roll < 86)
            {
                await ChangeCapacityAsync();
            }
            else if (roll < 91)
            {
                await ToggleSuspensionAsync();
            }
            else
            {
                await AdvanceClockAsync();
            }
        }

        private async Task RequestAsync(bool dryRun)
        {
            var k = Model.Contracts[_random.Next(Model.Contracts.Count)];
            var units = (long)_random.Next(1, 7);
            var wait = _random.Next(3) == 0;
            TimeSpan? duration = _random.Next(3) == 0 ? TimeSpan.FromMinutes(30 * _random.Next(1, 7)) : null;
            LastAction = $"{(dryRun ? "dry run" : "request")} c{k.Index} {units}u wait={wait} duration={duration}";
            var request = new RequestAllocationRequest
            {
                RequestId = dryRun ? "" : Rpc.NewRequestId(), ContractId = k.Id, PoolId = Fixtures.H100, Units = units,
                WaitIfUnavailable = wait, DryRun = dryRun, Duration = duration is { } d ? Duration.FromTimeSpan(d) : null,
            };

            var guaranteed = !k.Suspended && Model.Held(k) + units <= k.Reserved;
            var heldBefore = Model.Contracts.ToDictionary(c => c.Id, Model.Held);
            var (outcome, reason, victims) = Model.Decide(k, units, wait);
            RequestAllocationResponse response;
            try
            {
                response = await Ops.RequestAllocationAsync(request);
            }
            catch (RpcException e)
            {
                Assert.Equal(AdmissionOutcome.Refuse, outcome);
                Assert.False(dryRun);
                Assert.Equal(reason, e.Reason());
                Assert.Equal(reason == "CAPACITY_UNAVAILABLE" ? StatusCode.ResourceExhausted : StatusCode.FailedPrecondition, e.StatusCode);
                Assert.False(guaranteed && reason == "CAPACITY_UNAVAILABLE", "I3: a guaranteed request was refused for capacity");
                return;
            }

            Assert.Equal(outcome, response.Decision.Outcome);
            Assert.Equal(victims.Select(v => v.Id).Order(), response.Decision.Preemptions.Select(p => p.AllocationId).Order());
            // I4: every victim's contract was borrowing when the decision was made.
            foreach (var p in response.Decision.Preemptions)
            {
                var victimContract = Model.Contracts.Single(c => c.Id == p.ContractId);
                Assert.True(heldBefore[p.ContractId] > victimContract.Reserved, "I4: preempted a contract within its reservation");
            }

            if (guaranteed)
            {
                Assert.Equal(AdmissionOutcome.Admit, response.Decision.Outcome); // I3
            }

            if (dryRun)
            {
                Assert.Null(response.Allocation);
                if (outcome == AdmissionOutcome.Refuse)
                {
                    Assert.Equal(reason, response.Decision.Reason);
                }

                return;
            }

            var a = new ModelAllocation { Seq = Model.NextSeq++, Contract = k, Units = units, RequestedAt = Now, Duration = duration, State = AllocationState.Pending };
            Model.Allocations[a.Id] = a;
            Assert.Equal(a.Id, response.Allocation.AllocationId);
            if (outcome == AdmissionOutcome.Admit)
            {
                Model.Admit(a, victims, Now);
                Preemptions += victims.Count;
            }
            else
            {
                Queued++;
            }

            _lastRequest = request;
            _lastResponse = response;
        }

        private async Task ReplayAsync()
        {
            LastAction = $"replay {_lastRequest!.RequestId}";
            var replay = await Ops.RequestAllocationAsync(_lastRequest);
            Assert.Equal(_lastResponse, replay);
        }

        private async Task ReleaseAsync()
        {
            var candidates = Model.Allocations.Values.Where(a => !a.IsFinal() || _random.Next(20) == 0).ToList();
            if (candidates.Count == 0)
            {
                await RequestAsync(dryRun: false);
                return;
            }

            var a = candidates[_random.Next(candidates.Count)];
            LastAction = $"release {a.Id} ({a.State})";
            var response = await Ops.ReleaseAllocationAsync(new ReleaseAllocationRequest { RequestId = Rpc.NewRequestId(), AllocationId = a.Id });
            var wasOpen = !a.IsFinal();
            if (a.State == AllocationState.Active)
            {
                a.State = AllocationState.Released;
            }
            else if (a.State == AllocationState.Pending)
            {
                a.State = AllocationState.Cancelled;
            }

            Assert.Equal(a.State, response.Allocation.State);
            // Rule 4: a release or a cancellation re-tries the queue; releasing what has ended changes nothing.
            if (wasOpen)
            {
                Model.RetryPending(Now);
            }
        }

        private async Task ChangeCapacityAsync()
        {
            var capacity = (long)_random.Next(8, 31);
            LastAction = $"capacity {Model.Capacity} -> {capacity}";
            var reserved = Model.Contracts.Sum(c => c.Reserved); // every contract is ACTIVE or SUSPENDED
            try
            {
                await Ops.UpdatePoolCapacityAsync(new UpdatePoolCapacityRequest { RequestId = Rpc.NewRequestId(), PoolId = Fixtures.H100, CapacityUnits = capacity });
            }
            catch (RpcException e)
            {
                Assert.True(capacity < reserved, $"capacity {capacity} was refused with {reserved} reserved: {e.Status.Detail}");
                Assert.Equal("RESERVATIONS_EXCEED_CAPACITY", e.Reason());
                return;
            }

            Assert.True(capacity >= reserved, "I2: a capacity cut below the reservations was accepted");
            var previous = Model.Capacity;
            Model.Capacity = capacity;
            if (capacity < previous && Model.Free < 0)
            {
                var borrowers = Model.Contracts.Where(Model.Borrowing).ToHashSet();
                var ordered = Model.Active.Where(a => borrowers.Contains(a.Contract))
                    .OrderBy(a => a.Contract.Priority).ThenByDescending(a => a.AdmittedAt).ThenByDescending(a => a.Seq).ToList();
                var free = Model.Free;
                var chosen = new List<ModelAllocation>();
                foreach (var a in ordered.TakeWhile(_ => free < 0))
                {
                    chosen.Add(a);
                    free += a.Units;
                }

                for (var i = chosen.Count - 1; i >= 0; i--)
                {
                    if (free - chosen[i].Units >= 0)
                    {
                        free -= chosen[i].Units;
                        chosen.RemoveAt(i);
                    }
                }

                foreach (var v in chosen)
                {
                    v.State = AllocationState.Preempted;
                }
            }
            else if (capacity > previous)
            {
                Model.RetryPending(Now);
            }
        }

        private async Task ToggleSuspensionAsync()
        {
            var k = Model.Contracts[_random.Next(Model.Contracts.Count)];
            LastAction = $"{(k.Suspended ? "resume" : "suspend")} c{k.Index}";
            if (k.Suspended)
            {
                await server.OperatorContracts.ResumeContractAsync(new ResumeContractRequest { RequestId = Rpc.NewRequestId(), ContractId = k.Id });
                k.Suspended = false;
                return;
            }

            await server.OperatorContracts.SuspendContractAsync(new SuspendContractRequest { RequestId = Rpc.NewRequestId(), ContractId = k.Id });
            k.Suspended = true;
            var ended = false;
            foreach (var a in Model.Allocations.Values.Where(a => a.Contract == k && !a.IsFinal()))
            {
                ended = true;
                a.State = a.State == AllocationState.Active ? AllocationState.Released : AllocationState.Cancelled;
            }

            if (ended)
            {
                Model.RetryPending(Now);
            }
        }

        private async Task AdvanceClockAsync()
        {
            var minutes = _random.Next(1, 121);
            LastAction = $"advance {minutes} min";
            server.Clock.Advance(TimeSpan.FromMinutes(minutes));
            await server.Services.GetRequiredService<AllocationSweeper>().SweepOnceAsync(CancellationToken.None);
            Model.Sweep(Now);
        }

        public async Task CompareAsync()
        {
            var active = await ListAsync(AllocationState.Active);
            var pending = await ListAsync(AllocationState.Pending);
            Assert.Equal(Model.Active.Select(a => a.Id).Order(), active.Select(a => a.AllocationId).Order());
            Assert.Equal(Model.Pending.Select(a => a.Id).Order(), pending.Select(a => a.AllocationId).Order());
            var status = await Ops.GetPoolStatusAsync(new GetPoolStatusRequest { PoolId = Fixtures.H100 });
            Assert.True(status.ActiveUnits <= status.Pool.CapacityUnits, "I1: active units exceed capacity");
            Assert.True(status.ReservedUnits <= status.Pool.CapacityUnits, "I2: reservations exceed capacity");
            Assert.Equal(Model.Capacity, status.Pool.CapacityUnits);
        }

        public async Task CompareAllAsync()
        {
            var all = new List<Allocation>();
            var token = "";
            do
            {
                var page = await Ops.ListAllocationsAsync(new ListAllocationsRequest { PageSize = 1000, PageToken = token });
                all.AddRange(page.Allocations);
                token = page.NextPageToken;
            }
            while (token.Length > 0);

            Assert.Equal(Model.Allocations.Values.OrderBy(a => a.Seq).Select(a => (a.Id, a.State)), all.Select(a => (a.AllocationId, a.State)));
        }

        private async Task<IReadOnlyList<Allocation>> ListAsync(AllocationState state) =>
            (await Ops.ListAllocationsAsync(new ListAllocationsRequest { State = state, PageSize = 1000 })).Allocations;
    }
}
