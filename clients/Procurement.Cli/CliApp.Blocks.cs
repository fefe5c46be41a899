using System.Globalization;
using Procurement.Api.V1;

namespace Procurement.Cli;

public static partial class CliApp
{
    private static async Task<int> BlocksFind(CommandContext c)
    {
        var a = c.Args;
        var request = new FindCapacityBlockOfferingsRequest
        {
            ContractId = a.Required("contract"), PoolId = a.Required("pool"), Units = a.Long("units"), DurationHours = a.Long("hours"),
            PageSize = (int)Math.Clamp(a.Long("count", 10), 1, 1000),
        };
        if (a.Get("earliest") is { } earliest)
        {
            request.EarliestStartTime = Ts(ParseTime(earliest, "earliest"));
        }

        if (a.Get("latest") is { } latest)
        {
            request.LatestEndTime = Ts(ParseTime(latest, "latest"));
        }

        var response = await c.Client.Allocations.FindBlockOfferingsAsync(request, c.CancellationToken);
        if (c.Out.Json)
        {
            c.Out.Message(response);
            return 0;
        }

        if (response.Offerings.Count == 0)
        {
            c.Out.Line("no window fits");
            return 0;
        }

        c.Out.Table(["START", "END", "UNITS", "PRICE/GPU-H", "PRICE"],
            response.Offerings.Select(o => (IReadOnlyList<string>)[Output.Time(o.StartTime), Output.Time(o.EndTime), Units(o.Units), o.UnitPrice, Output.Money(o.Price)]));
        return 0;
    }

    private static async Task<int> BlocksBook(CommandContext c)
    {
        var a = c.Args;
        var request = new BookCapacityBlockRequest
        {
            ContractId = a.Required("contract"), PoolId = a.Required("pool"), Units = a.Long("units"),
            StartTime = Ts(ParseTime(a.Required("start"), "start")), EndTime = Ts(ParseTime(a.Required("end"), "end")), DryRun = a.Has("dry-run"),
        };
        var response = await c.Client.Allocations.BookBlockAsync(request, c.CancellationToken);
        if (c.Out.Json)
        {
            c.Out.Message(response);
            return 0;
        }

        if (request.DryRun)
        {
            c.Out.Line(response.Fits
                ? $"dry run: would book, for {Output.Money(response.Block.Price)}"
                : $"dry run: would not fit ({response.MisfitReason}): {Units(response.MisfitReservedUnits)} units reserved at {Output.Time(response.MisfitTime)} against {Units(response.MisfitLimitUnits)}"
                  + (response.BlocksInTheWay.Count > 0 ? $"; blocks there: {string.Join(", ", response.BlocksInTheWay)}" : ""));
            return 0;
        }

        ShowBlocks(c, [response.Block]);
        return 0;
    }

    private static async Task<int> BlocksGet(CommandContext c)
    {
        var block = await c.Client.Allocations.GetBlockAsync(c.Args.Positional1("BLOCK_ID"), c.CancellationToken);
        if (c.Out.Json)
        {
            c.Out.Message(block);
            return 0;
        }

        c.Out.Fields(("block", block.BlockId), ("state", Output.Enum(block.State)), ("contract", block.ContractId), ("pool", block.PoolId),
            ("units", Units(block.Units)), ("window", $"{Output.Time(block.StartTime)} – {Output.Time(block.EndTime)}"),
            ("price/GPU-h", $"{block.UnitPrice} (rate {Output.Money(block.BlockRate)} × index factor {block.IndexFactor})"), ("price", Output.Money(block.Price)),
            ("booked", Output.Time(block.BookTime)), ("cancelled", Output.Time(block.CancelTime)),
            ("cancellation charge", block.CancellationCharge is null ? "-" : Output.Money(block.CancellationCharge)), ("etag", block.Etag));
        return 0;
    }

    private static async Task<int> BlocksList(CommandContext c)
    {
        var request = new ListCapacityBlocksRequest { ContractId = c.Args.Get("contract") ?? "", PoolId = c.Args.Get("pool") ?? "", PageSize = 1000 };
        if (c.Args.Get("state") is { } state)
        {
            request.State = System.Enum.TryParse<CapacityBlockState>(state, ignoreCase: true, out var s) && s != CapacityBlockState.Unspecified
                ? s : throw new UsageException($"--state must be BOOKED, ACTIVE, COMPLETED or CANCELLED, not '{state}'");
        }

        var all = await ListAllBlocksAsync(c, request);
        if (c.Out.Json)
        {
            c.Out.Message(all);
            return 0;
        }

        ShowBlocks(c, all.Blocks);
        return 0;
    }

    private static async Task<int> BlocksCancel(CommandContext c)
    {
        var block = await c.Client.Allocations.CancelBlockAsync(c.Args.Positional1("BLOCK_ID"), c.Args.Get("etag") ?? "", c.CancellationToken);
        if (c.Out.Json)
        {
            c.Out.Message(block);
            return 0;
        }

        ShowBlocks(c, [block]);
        c.Out.Line($"cancellation charge: {Output.Money(block.CancellationCharge)}");
        return 0;
    }

    /// <summary>
    /// A pool's calendar, a line per day: the peak units reserved that day (base reservations of the
    /// contracts counted now plus the blocks in effect) against the capacity now.
    /// </summary>
    private static async Task<int> BlocksCalendar(CommandContext c)
    {
        var poolId = c.Args.Positional1("POOL_ID");
        var days = (int)Math.Clamp(c.Args.Long("days", 28), 1, 365);
        var status = await c.Client.Allocations.GetPoolStatusAsync(poolId, c.CancellationToken);
        var from = c.Args.Get("from") is { } text ? ParseTime(text, "from") : TimeProvider.System.GetUtcNow();
        var today = DateTimeOffset.FromUnixTimeSeconds(from.ToUnixTimeSeconds() / 86_400 * 86_400);
        var blocks = (await ListAllBlocksAsync(c, new ListCapacityBlocksRequest
        {
            PoolId = poolId, WindowStart = Ts(today), WindowEnd = Ts(today.AddDays(days)), PageSize = 1000,
        })).Blocks.Where(b => b.State is CapacityBlockState.Booked or CapacityBlockState.Active).ToList();
        var rows = Enumerable.Range(0, days).Select(d =>
        {
            var (start, end) = (today.AddDays(d), today.AddDays(d + 1));
            var inDay = blocks.Where(b => b.StartTime.ToDateTimeOffset() < end && b.EndTime.ToDateTimeOffset() > start).ToList();
            // The peak is at the day's start or at a block's start within it.
            var peak = inDay.Select(b => b.StartTime.ToDateTimeOffset()).Where(t => t > start).Append(start)
                .Max(t => inDay.Where(b => b.StartTime.ToDateTimeOffset() <= t && t < b.EndTime.ToDateTimeOffset()).Sum(b => b.Units));
            return (Day: start, Blocks: peak);
        }).ToList();
        if (c.Out.Json)
        {
            var response = new ListCapacityBlocksResponse();
            response.Blocks.AddRange(blocks);
            c.Out.Message(response);
            return 0;
        }

        var capacity = status.Pool.CapacityUnits;
        c.Out.Line($"{poolId}: capacity {Units(capacity)}, base reservations {Units(status.ReservedUnits)}; # reserved, + blocks, . free (peak of each day, UTC)");
        foreach (var (day, blockUnits) in rows)
        {
            var reserved = status.ReservedUnits + blockUnits;
            c.Out.Line($"{day:yyyy-MM-dd}  {Bar(status.ReservedUnits, blockUnits, capacity)}  {Units(reserved)} / {Units(capacity)}{(blockUnits > 0 ? $" (blocks {Units(blockUnits)})" : "")}");
        }

        return 0;

        static string Bar(long baseUnits, long blockUnits, long capacity)
        {
            const int width = 40;
            if (capacity <= 0)
            {
                return new string(' ', width);
            }

            var b = (int)Math.Min(width, baseUnits * width / capacity);
            // Blocks show as at least one mark, so a small block is never invisible.
            var x = blockUnits <= 0 ? 0 : (int)Math.Min(width - b, Math.Max(1, blockUnits * width / capacity));
            return new string('#', b) + new string('+', x) + new string('.', width - b - x);
        }
    }

    private static async Task<ListCapacityBlocksResponse> ListAllBlocksAsync(CommandContext c, ListCapacityBlocksRequest request)
    {
        var all = new ListCapacityBlocksResponse();
        do
        {
            var page = await c.Client.Allocations.ListBlocksAsync(request, c.CancellationToken);
            all.Blocks.AddRange(page.Blocks);
            request.PageToken = page.NextPageToken;
        }
        while (request.PageToken.Length > 0);
        return all;
    }

    private static void ShowBlocks(CommandContext c, IEnumerable<CapacityBlock> blocks) =>
        c.Out.Table(["BLOCK", "STATE", "CONTRACT", "POOL", "UNITS", "START", "END", "PRICE"],
            blocks.Select(b => (IReadOnlyList<string>)[b.BlockId.Length > 0 ? b.BlockId : "-", Output.Enum(b.State), b.ContractId, b.PoolId, Units(b.Units),
                Output.Time(b.StartTime), Output.Time(b.EndTime), Output.Money(b.Price)]));
}
