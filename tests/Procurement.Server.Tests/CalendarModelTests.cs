using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Procurement.Api.V1;
using Procurement.TestSupport;

namespace Procurement.Server.Tests;

/// <summary>
/// The pool calendar under seeded random histories driven through the API — bookings, cancellations,
/// capacity changes, activations and amendments, with the clock moving so blocks start and end —
/// checked after every step against a brute-force model: the reservations (base and blocks) fit the
/// capacity at every boundary instant from now on, and FindCapacityBlockOfferings returns exactly
/// the earliest whole-hour windows a brute-force search finds, each of which then books.
/// Set PROCUREMENT_MODEL_SEED to replay one seed.
/// </summary>
public sealed class CalendarModelTests
{
    private const int Steps = 150;
    private const long MaxBlockUnits = 40;
    private static readonly DateTimeOffset Start = new(2026, 6, 10, 8, 0, 0, TimeSpan.Zero);

    public static TheoryData<int> Seeds()
    {
        var fromEnvironment = Environment.GetEnvironmentVariable("PROCUREMENT_MODEL_SEED");
        return fromEnvironment is not null ? new TheoryData<int>(int.Parse(fromEnvironment, System.Globalization.CultureInfo.InvariantCulture)) : new TheoryData<int>(1, 2, 3);
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public async Task RandomHistories_KeepTheCalendarWithinCapacity_AndOfferingsMatchABruteForceSearch(int seed)
    {
        await using var server = await ServerHarness.StartAsync(Start);
        await Fixtures.CreatePoolsAsync(server, h100Capacity: 100, h200Capacity: 10);
        var random = new Random(seed);
        // Per contract, its versions' (effective from, H100 reservation).
        var versions = new Dictionary<string, List<(DateTimeOffset From, long Reserved)>>();
        var booked = 0;
        for (var i = 0; i < 3; i++)
        {
            var id = (await Fixtures.CreateActiveContractAsync(server, $"lab-{i}", Terms(server, random.Next(5, 20)))).ContractId;
            versions[id] = [(DateTimeOffset.MinValue, ReservedOf(await GetAsync(server, id)))];
        }

        for (var step = 1; step <= Steps; step++)
        {
            server.Clock.Advance(TimeSpan.FromMinutes(random.Next(0, 12 * 60)));
            var now = server.Clock.GetUtcNow();
            var contracts = versions.Keys.ToList();
            var roll = random.Next(100);
            var action = "";
            try
            {
                if (roll < 55)
                {
                    var start = Hour(now).AddHours(random.Next(1, 120));
                    var request = Booking(contracts[random.Next(contracts.Count)], random.Next(1, 41), start, start.AddHours(random.Next(1, 49)));
                    action = $"book {request.Units} {request.StartTime}–{request.EndTime}";
                    await server.OperatorAllocations.BookCapacityBlockAsync(request);
                    booked++;
                }
                else if (roll < 65)
                {
                    var open = (await ListAsync(server)).Where(b => b.State == CapacityBlockState.Booked).ToList();
                    if (open.Count > 0)
                    {
                        var block = open[random.Next(open.Count)];
                        action = $"cancel {block.BlockId}";
                        await server.OperatorAllocations.CancelCapacityBlockAsync(new CancelCapacityBlockRequest { RequestId = Rpc.NewRequestId(), BlockId = block.BlockId });
                    }
                }
                else if (roll < 80)
                {
                    var capacity = random.Next(30, 140);
                    action = $"capacity {capacity}";
                    await server.OperatorAllocations.UpdatePoolCapacityAsync(new UpdatePoolCapacityRequest { RequestId = Rpc.NewRequestId(), PoolId = Fixtures.H100, CapacityUnits = capacity });
                }
                else if (roll < 88)
                {
                    var reserved = random.Next(0, 30);
                    action = $"activate a contract reserving {reserved}";
                    var draft = await Fixtures.CreateContractAsync(server, $"lab-{versions.Count}", Terms(server, reserved));
                    await server.OperatorContracts.ActivateContractAsync(new ActivateContractRequest { RequestId = Rpc.NewRequestId(), ContractId = draft.ContractId });
                    versions[draft.ContractId] = [(DateTimeOffset.MinValue, reserved)];
                }
                else
                {
                    var id = contracts[random.Next(contracts.Count)];
                    var contract = await GetAsync(server, id);
                    var month = Domain.Common.BillingMonth.Of(now).Next;
                    var terms = contract.Terms.Clone();
                    terms.Entitlements[0].ReservedUnits = random.Next(0, 40);
                    action = $"amend {id} from {month}: reserve {terms.Entitlements[0].ReservedUnits}";
                    await server.OperatorContracts.AmendContractAsync(new AmendContractRequest
                    {
                        RequestId = Rpc.NewRequestId(), ContractId = id, Etag = contract.Etag, Terms = terms,
                        EffectiveMonth = new BillingMonth { Year = month.Year, Month = month.Month },
                    });
                    versions[id].Add((month.Start, terms.Entitlements[0].ReservedUnits));
                }
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.FailedPrecondition)
            {
                // Refused by the calendar or the entitlement: the model below checks nothing was written.
            }

            try
            {
                await CheckAsync(server, versions, random);
            }
            catch (Exception ex)
            {
                throw new Xunit.Sdk.XunitException($"seed {seed}, step {step} ({action}): {ex.Message}\n{ex}");
            }
        }

        Assert.True(booked > 20, $"only {booked} bookings succeeded");
    }

    private static async Task CheckAsync(ServerHarness server, Dictionary<string, List<(DateTimeOffset From, long Reserved)>> versions, Random random)
    {
        var now = server.Clock.GetUtcNow();
        var capacity = (await server.OperatorAllocations.GetPoolAsync(new GetPoolRequest { PoolId = Fixtures.H100 })).Pool.CapacityUnits;
        var placed = (await ListAsync(server)).Where(b => b.State is CapacityBlockState.Booked or CapacityBlockState.Active && End(b) > now).ToList();
        // A contract counts the largest reservation of the versions in effect now or later (I2's rule).
        var baseReserved = versions.Values.Sum(v => Counted(v, now));
        var instants = placed.Select(StartOf).Where(t => t > now).Append(now).Distinct();
        foreach (var t in instants)
        {
            var reserved = baseReserved + placed.Where(b => StartOf(b) <= t && t < End(b)).Sum(b => b.Units);
            Assert.True(reserved <= capacity, $"{reserved} units reserved at {t:O} in a pool of {capacity}");
        }

        // Offerings for a random contract, units and duration over the next five days, against every whole hour.
        var contract = versions.Keys.ElementAt(random.Next(versions.Count));
        var units = random.Next(1, 41);
        var hours = random.Next(1, 25);
        var latest = Hour(now).AddDays(5);
        var found = (await server.OperatorAllocations.FindCapacityBlockOfferingsAsync(new FindCapacityBlockOfferingsRequest
        {
            ContractId = contract, PoolId = Fixtures.H100, Units = units, DurationHours = hours, LatestEndTime = Timestamp.FromDateTimeOffset(latest), PageSize = 5,
        })).Offerings.Select(o => o.StartTime.ToDateTimeOffset()).ToList();
        var expected = new List<DateTimeOffset>();
        for (var s = Hour(now); s.AddHours(hours) <= latest && expected.Count < 5; s = s.AddHours(1))
        {
            if (s > now && Enumerable.Range(0, hours).Select(h => s.AddHours(h)).All(t =>
                    baseReserved + placed.Where(b => StartOf(b) <= t && t < End(b)).Sum(b => b.Units) + units <= capacity
                    && placed.Where(b => b.ContractId == contract && StartOf(b) <= t && t < End(b)).Sum(b => b.Units) + units <= MaxBlockUnits))
            {
                expected.Add(s);
            }
        }

        Assert.Equal(expected, found);
        if (found.Count > 0 && random.Next(3) == 0)
        {
            // What was offered books.
            await server.OperatorAllocations.BookCapacityBlockAsync(Booking(contract, units, found[0], found[0].AddHours(hours)));
        }
    }

    /// <summary>
    /// The largest reservation among the versions in effect now or later; a version is superseded by
    /// a later-made one effective no later than it.
    /// </summary>
    private static long Counted(List<(DateTimeOffset From, long Reserved)> versions, DateTimeOffset now)
    {
        var live = versions.Where((x, i) => !versions.Skip(i + 1).Any(y => y.From <= x.From)).OrderBy(x => x.From).ToList();
        var current = live.Where(x => x.From <= now).Select(x => x.Reserved).DefaultIfEmpty(0).Last();
        return live.Where(x => x.From > now).Select(x => x.Reserved).Append(current).Max();
    }

    private static ContractTerms Terms(ServerHarness server, long reserved)
    {
        var terms = Fixtures.H100Terms(server.Clock.GetUtcNow(), reserved, burst: 10);
        terms.Entitlements[0].MaxBlockUnits = MaxBlockUnits;
        terms.BlockRates.Add(new BlockRate { AcceleratorType = "H100-SXM-80GB", UnitPrice = Fixtures.Usd(3_000_000) });
        return terms;
    }

    private static BookCapacityBlockRequest Booking(string contract, long units, DateTimeOffset start, DateTimeOffset end) => new()
    {
        RequestId = Rpc.NewRequestId(), ContractId = contract, PoolId = Fixtures.H100, Units = units,
        StartTime = Timestamp.FromDateTimeOffset(start), EndTime = Timestamp.FromDateTimeOffset(end),
    };

    private static async Task<Contract> GetAsync(ServerHarness server, string id) =>
        (await server.OperatorContracts.GetContractAsync(new GetContractRequest { ContractId = id })).Contract;

    private static long ReservedOf(Contract c) => c.Terms.Entitlements[0].ReservedUnits;

    private static async Task<List<CapacityBlock>> ListAsync(ServerHarness server)
    {
        var all = new List<CapacityBlock>();
        var request = new ListCapacityBlocksRequest { PoolId = Fixtures.H100, PageSize = 1000 };
        do
        {
            var page = await server.OperatorAllocations.ListCapacityBlocksAsync(request);
            all.AddRange(page.Blocks);
            request.PageToken = page.NextPageToken;
        }
        while (request.PageToken.Length > 0);
        return all;
    }

    private static DateTimeOffset StartOf(CapacityBlock b) => b.StartTime.ToDateTimeOffset();

    private static DateTimeOffset End(CapacityBlock b) => b.EndTime.ToDateTimeOffset();

    private static DateTimeOffset Hour(DateTimeOffset t) => Domain.Blocks.BlockCalendar.CeilToHour(t);
}
