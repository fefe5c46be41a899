using Grpc.Core;
using Procurement.Api.V1;
using Procurement.Domain.Common;
using Procurement.Domain.Errors;
using Procurement.Domain.Pools;
using Procurement.Server.Application;
using Procurement.Server.Auth;
using Procurement.Server.Mapping;
using Procurement.Server.Telemetry;
using Procurement.Storage;
using DomainPool = Procurement.Domain.Pools.Pool;

namespace Procurement.Server.Services;

/// <summary>AllocationService, part one: pools and their capacity.</summary>
public sealed partial class AllocationGrpcService(
    IProcurementStore store, Mutations mutations, TimeProvider time, IHostApplicationLifetime lifetime, ReadCache<GetPoolStatusResponse> statusCache, ApiKeys keys, ProcurementMetrics metrics)
    : AllocationService.AllocationServiceBase
{
    public override Task<CreatePoolResponse> CreatePool(CreatePoolRequest request, ServerCallContext context)
    {
        var v = new List<FieldViolation>();
        if (!Identifiers.IsPoolId(request.PoolId))
        {
            v.Add(new("pool_id", "must be 1..63 characters of [a-z0-9-], starting with a letter"));
        }

        if (string.IsNullOrWhiteSpace(request.DisplayName) || request.DisplayName.Length > 200)
        {
            v.Add(new("display_name", "must be 1..200 characters"));
        }

        if (string.IsNullOrWhiteSpace(request.Region) || request.Region.Length > 64)
        {
            v.Add(new("region", "must be 1..64 characters"));
        }

        if (!Identifiers.IsToken(request.AcceleratorType))
        {
            v.Add(new("accelerator_type", "must be 1..64 characters of [A-Za-z0-9._-], e.g. H100-SXM-80GB"));
        }

        if (request.CapacityUnits < 0)
        {
            v.Add(new("capacity_units", "must be >= 0"));
        }

        DomainErrors.ThrowIfAny(v);
        return mutations.RunAsync(context, request, request.RequestId, async m =>
        {
            if (await m.Session.Pools.GetAsync(request.PoolId) is not null)
            {
                throw DomainErrors.AlreadyExists(DomainPool.ResourceType, request.PoolId);
            }

            var pool = new DomainPool(request.PoolId, request.DisplayName, request.Region, request.AcceleratorType, request.CapacityUnits, 1, m.Now, m.Now);
            await m.Session.Pools.InsertAsync(pool);
            return new MutationResult<CreatePoolResponse>(new CreatePoolResponse { Pool = pool.ToApi() }, DomainPool.ResourceType, pool.Id);
        });
    }

    public override async Task<GetPoolResponse> GetPool(GetPoolRequest request, ServerCallContext context)
    {
        var pool = await store.ReadAsync(s => s.Pools.GetAsync(request.PoolId), context.CancellationToken)
            ?? throw DomainErrors.NotFound(DomainPool.ResourceType, request.PoolId);
        return new GetPoolResponse { Pool = pool.ToApi() };
    }

    public override async Task<ListPoolsResponse> ListPools(ListPoolsRequest request, ServerCallContext context)
    {
        var pageSize = Paging.PageSize(request.PageSize);
        const string filters = "pools";
        var after = Paging.Decode(request.PageToken, filters) ?? "";
        var page = await store.ReadAsync(s => s.Pools.ListAsync(after, pageSize + 1), context.CancellationToken);
        var response = new ListPoolsResponse();
        response.Pools.AddRange(page.Take(pageSize).Select(p => p.ToApi()));
        if (page.Count > pageSize)
        {
            response.NextPageToken = Paging.Encode(page[pageSize - 1].Id, filters);
        }

        return response;
    }

    public override Task<UpdatePoolCapacityResponse> UpdatePoolCapacity(UpdatePoolCapacityRequest request, ServerCallContext context)
    {
        if (request.CapacityUnits < 0)
        {
            throw DomainErrors.Invalid("capacity_units", "must be >= 0");
        }

        return mutations.RunAsync(context, request, request.RequestId, async m =>
        {
            // Timed after the pool is held, as requests are (AllocationOperations).
            if (await m.Session.LockPoolsAsync([request.PoolId]))
            {
                m = m with { Now = Domain.Common.Instants.Max(m.Now, m.Clock()) };
            }

            var pool = await m.Session.Pools.GetAsync(request.PoolId) ?? throw DomainErrors.NotFound(DomainPool.ResourceType, request.PoolId);
            if (request.Etag.Length > 0 && request.Etag != pool.Etag)
            {
                throw DomainErrors.EtagMismatch(DomainPool.ResourceType, pool.Id, request.Etag, pool.Etag);
            }

            if (request.CapacityUnits < pool.CapacityUnits)
            {
                // I2: reservations of ACTIVE and SUSPENDED contracts must still fit.
                var rows = await m.Session.Contracts.GetCountedEntitlementsAsync([pool.Id], m.Now, excludeContractId: "");
                var reserved = ReservationLedger.ReservedByPool(rows, m.Now);
                var overbooked = ReservationLedger.FindOverbooked(new Dictionary<string, long> { [pool.Id] = request.CapacityUnits }, reserved);
                if (overbooked.Count > 0)
                {
                    throw ReservationLedger.OverbookedError($"reduce the capacity of pool '{pool.Id}' to {request.CapacityUnits}", overbooked);
                }

                // ... and so must its capacity blocks, at every instant from now on.
                await CapacityBlocks.EnsureCalendarFitsAsync(m.Session, pool.Id, request.CapacityUnits, reserved.GetValueOrDefault(pool.Id), m.Now,
                    $"reduce the capacity of pool '{pool.Id}' to {request.CapacityUnits}");
            }

            await AllocationEngine.SweepPoolAsync(m.Session, pool.Id, m.Now);
            var updated = pool with { CapacityUnits = request.CapacityUnits, Revision = pool.Revision + 1, UpdatedAt = m.Now };
            await m.Session.Pools.UpdateCapacityAsync(updated, pool.Revision);
            await AllocationEngine.ApplyCapacityChangeAsync(m.Session, pool.Id, pool.CapacityUnits, updated.CapacityUnits, m.Now);
            return new MutationResult<UpdatePoolCapacityResponse>(new UpdatePoolCapacityResponse { Pool = updated.ToApi() }, DomainPool.ResourceType, pool.Id);
        });
    }
}
