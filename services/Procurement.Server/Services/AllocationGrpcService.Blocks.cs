using Grpc.Core;
using Procurement.Api.V1;
using Procurement.Domain.Blocks;
using Procurement.Domain.Errors;
using Procurement.Server.Application;
using Procurement.Server.Auth;
using Procurement.Server.Mapping;
using Procurement.Storage;
using Procurement.Storage.Repositories;
using DomainBlock = Procurement.Domain.Blocks.CapacityBlock;

namespace Procurement.Server.Services;

/// <summary>AllocationService, part three: capacity blocks booked ahead, and the windows that fit.</summary>
public sealed partial class AllocationGrpcService
{
    public override async Task<BookCapacityBlockResponse> BookCapacityBlock(BookCapacityBlockRequest request, ServerCallContext context)
    {
        var v = new List<FieldViolation>();
        if (request.Units <= 0)
        {
            v.Add(new("units", "must be > 0"));
        }

        var start = RequestFields.Time(request.StartTime, "start_time", v, required: true);
        var end = RequestFields.Time(request.EndTime, "end_time", v, required: true);
        var principal = context.GetPrincipal();
        if (request.DryRun)
        {
            var now = Mutations.TruncateToMilliseconds(time.GetUtcNow());
            var booking = Booking(now);
            var outcome = await store.SimulateAsync(s => CapacityBlocks.BookAsync(s, principal, booking, now, dryRun: true), context.CancellationToken);
            var response = new BookCapacityBlockResponse { Block = outcome.Block.ToApi(outcome.CurrencyCode), DryRun = true, Fits = outcome.Misfit is null };
            if (outcome.Misfit is { } misfit)
            {
                response.MisfitReason = misfit.Reason;
                response.MisfitTime = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(misfit.Conflict.At);
                response.BlocksInTheWay.AddRange(misfit.VisibleBlockIds);
                response.MisfitReservedUnits = misfit.Conflict.ReservedUnits;
                response.MisfitLimitUnits = misfit.Conflict.LimitUnits;
            }

            return response;
        }

        return await mutations.RunAsync(context, request, request.RequestId, async m =>
        {
            var outcome = await CapacityBlocks.BookAsync(m.Session, m.Principal, Booking(m.Now), m.Now, dryRun: false);
            return new MutationResult<BookCapacityBlockResponse>(new BookCapacityBlockResponse { Block = outcome.Block.ToApi(outcome.CurrencyCode) },
                DomainBlock.ResourceType, outcome.Block.Id);
        });

        // The window's rules depend on the time of the decision, so they are checked with it.
        BlockBooking Booking(DateTimeOffset now)
        {
            if (start is { } s && end is { } e)
            {
                v.AddRange(BlockCalendar.ValidateWindow(s, e, now));
            }

            DomainErrors.ThrowIfAny(v);
            return new BlockBooking(request.ContractId, request.PoolId, request.Units, start!.Value, end!.Value);
        }
    }

    public override async Task<GetCapacityBlockResponse> GetCapacityBlock(GetCapacityBlockRequest request, ServerCallContext context)
    {
        var principal = context.GetPrincipal();
        var (block, currency) = await store.ReadAsync(async s =>
        {
            var b = await CapacityBlocks.LoadVisibleAsync(s, principal, request.BlockId);
            return (b, await CurrencyOfAsync(s, b.ContractId));
        }, context.CancellationToken);
        return new GetCapacityBlockResponse { Block = block.ToApi(currency) };
    }

    public override async Task<ListCapacityBlocksResponse> ListCapacityBlocks(ListCapacityBlocksRequest request, ServerCallContext context)
    {
        var principal = context.GetPrincipal();
        var pageSize = Paging.PageSize(request.PageSize);
        var v = new List<FieldViolation>();
        if (request.State is < CapacityBlockState.Unspecified or > CapacityBlockState.Cancelled)
        {
            v.Add(new("state", "is not a capacity block state"));
        }

        var from = RequestFields.Time(request.WindowStart, "window_start", v, required: false);
        var to = RequestFields.Time(request.WindowEnd, "window_end", v, required: false);
        if (from is { } f && to is { } t && t <= f)
        {
            v.Add(new("window_end", "must be after window_start"));
        }

        DomainErrors.ThrowIfAny(v);
        var filters = $"blocks|{request.ContractId}|{request.PoolId}|{request.State}|{request.WindowStart}|{request.WindowEnd}";
        var after = Paging.DecodeLong(request.PageToken, filters);
        var filter = new BlockFilter(principal.Role == Role.Customer ? principal.TenantId : null, NullIfEmpty(request.ContractId), NullIfEmpty(request.PoolId),
            request.State == CapacityBlockState.Unspecified ? null : (BlockState)(int)request.State, from, to);
        var (page, currencies) = await store.ReadAsync(async s =>
        {
            var blocks = await s.Blocks.ListAsync(filter, after, pageSize + 1);
            var contracts = await s.Contracts.GetManyAsync(blocks.Select(b => b.ContractId).Distinct(StringComparer.Ordinal).ToList());
            return (blocks, contracts.ToDictionary(c => c.Id, c => c.LatestVersion.Terms.CurrencyCode, StringComparer.Ordinal));
        }, context.CancellationToken);
        var response = new ListCapacityBlocksResponse();
        response.Blocks.AddRange(page.Take(pageSize).Select(b => b.ToApi(currencies[b.ContractId])));
        if (page.Count > pageSize)
        {
            response.NextPageToken = Paging.Encode(page[pageSize - 1].Seq, filters);
        }

        return response;
    }

    public override Task<CancelCapacityBlockResponse> CancelCapacityBlock(CancelCapacityBlockRequest request, ServerCallContext context) =>
        mutations.RunAsync(context, request, request.RequestId, async m =>
        {
            var (block, currency) = await CapacityBlocks.CancelAsync(m.Session, m.Principal, request.BlockId, request.Etag, m.Now);
            return new MutationResult<CancelCapacityBlockResponse>(new CancelCapacityBlockResponse { Block = block.ToApi(currency) }, DomainBlock.ResourceType, block.Id);
        });

    public override async Task<FindCapacityBlockOfferingsResponse> FindCapacityBlockOfferings(FindCapacityBlockOfferingsRequest request, ServerCallContext context)
    {
        var principal = context.GetPrincipal();
        var v = new List<FieldViolation>();
        if (request.Units <= 0)
        {
            v.Add(new("units", "must be > 0"));
        }

        var maxHours = (long)BlockCalendar.MaximumLength.TotalHours;
        if (request.DurationHours < 1 || request.DurationHours > maxHours)
        {
            v.Add(new("duration_hours", $"must be 1..{maxHours}"));
        }

        var earliest = RequestFields.Time(request.EarliestStartTime, "earliest_start_time", v, required: false);
        var latest = RequestFields.Time(request.LatestEndTime, "latest_end_time", v, required: false);
        if (earliest is { } e && latest is { } l && l <= e)
        {
            v.Add(new("latest_end_time", "must be after earliest_start_time"));
        }

        DomainErrors.ThrowIfAny(v);
        var pageSize = Paging.PageSize(request.PageSize);
        var filters = $"offerings|{request.ContractId}|{request.PoolId}|{request.Units}|{request.DurationHours}|{request.EarliestStartTime}|{request.LatestEndTime}";
        var afterMs = Paging.DecodeLong(request.PageToken, filters);
        DateTimeOffset? after = afterMs > 0 ? DateTimeOffset.FromUnixTimeMilliseconds(afterMs) : null;
        var now = Mutations.TruncateToMilliseconds(time.GetUtcNow());
        var search = new OfferingSearch(request.Units, TimeSpan.FromHours(request.DurationHours), earliest ?? now, latest ?? DateTimeOffset.MaxValue, pageSize + 1);
        var (offerings, currency) = await store.ReadAsync(
            s => CapacityBlocks.FindAsync(s, principal, request.ContractId, request.PoolId, search, after, now), context.CancellationToken);
        var response = new FindCapacityBlockOfferingsResponse();
        response.Offerings.AddRange(offerings.Take(pageSize).Select(o => o.ToApi(currency)));
        if (offerings.Count > pageSize)
        {
            response.NextPageToken = Paging.Encode(offerings[pageSize - 1].Start.ToUnixTimeMilliseconds(), filters);
        }

        return response;
    }

    private static async Task<string> CurrencyOfAsync(IStoreSession s, string contractId) =>
        (await s.Contracts.GetAsync(contractId))?.LatestVersion.Terms.CurrencyCode ?? "";
}
