using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Procurement.Api.V1;
using Procurement.Domain.Common;
using Procurement.Domain.Errors;
using Procurement.Server.Application;
using Procurement.Server.Auth;
using Procurement.Server.ErrorHandling;
using Procurement.Server.Mapping;
using Procurement.Storage;
using Procurement.Storage.Repositories;
using Model = Procurement.Domain.Allocations;

namespace Procurement.Server.Services;

/// <summary>AllocationService, part two: requests, releases, the event stream, usage and pool status.</summary>
public sealed partial class AllocationGrpcService
{
    private const int WatchBatchSize = 500;
    private static readonly TimeSpan WatchPollInterval = TimeSpan.FromSeconds(1);

    /// <summary>How often an open watch looks its key up again: a revoked key's streams end within this.</summary>
    public static readonly TimeSpan WatchKeyCheckInterval = TimeSpan.FromSeconds(1);

    public override async Task<RequestAllocationResponse> RequestAllocation(RequestAllocationRequest request, ServerCallContext context)
    {
        var parsed = Validate(request);
        if (request.DryRun)
        {
            var principal = context.GetPrincipal();
            var now = Mutations.TruncateToMilliseconds(time.GetUtcNow());
            var outcome = await store.SimulateAsync(s => AllocationOperations.RequestAsync(s, principal, parsed, now, dryRun: true), context.CancellationToken);
            return new RequestAllocationResponse { Decision = outcome.Decision.ToApi(outcome.Victims, principal) };
        }

        try
        {
            return await mutations.RunAsync(context, request, request.RequestId, async m =>
            {
                var outcome = await AllocationOperations.RequestAsync(m.Session, m.Principal, parsed, m.Now, dryRun: false, m.Clock);
                var decision = outcome.Decision;
                m.Session.OnCommitted(() => metrics.Decided(decision.Outcome, decision.Reason, decision.Guaranteed));
                var response = new RequestAllocationResponse { Allocation = outcome.Allocation!.ToApi(), Decision = decision.ToApi(outcome.Victims, m.Principal) };
                return new MutationResult<RequestAllocationResponse>(response, Model.Allocation.ResourceType, outcome.Allocation!.Id);
            });
        }
        catch (ProcurementException e) when (e.Reason is Model.AdmissionDecision.CapacityUnavailable or Model.AdmissionDecision.BurstLimitExceeded or Model.AdmissionDecision.ContractNotActive)
        {
            metrics.Decided(Model.AdmissionOutcome.Refuse, e.Reason, guaranteed: false);
            throw;
        }
    }

    public override async Task<GetAllocationResponse> GetAllocation(GetAllocationRequest request, ServerCallContext context)
    {
        var principal = context.GetPrincipal();
        var allocation = await store.ReadAsync(s => AllocationOperations.LoadVisibleAsync(s, principal, request.AllocationId), context.CancellationToken);
        return new GetAllocationResponse { Allocation = allocation.ToApi() };
    }

    public override async Task<ListAllocationsResponse> ListAllocations(ListAllocationsRequest request, ServerCallContext context)
    {
        var principal = context.GetPrincipal();
        var pageSize = Paging.PageSize(request.PageSize);
        if (request.State is < AllocationState.Unspecified or > AllocationState.Cancelled)
        {
            throw DomainErrors.Invalid("state", "is not an allocation state");
        }

        var filters = $"allocations|{request.ContractId}|{request.PoolId}|{request.State}";
        var after = Paging.DecodeLong(request.PageToken, filters);
        var filter = new AllocationFilter(
            principal.Role == Role.Customer ? principal.TenantId : null,
            NullIfEmpty(request.ContractId),
            NullIfEmpty(request.PoolId),
            request.State == AllocationState.Unspecified ? null : (Model.AllocationState)(int)request.State);
        var page = await store.ReadAsync(s => s.Allocations.ListAsync(filter, after, pageSize + 1), context.CancellationToken);
        var response = new ListAllocationsResponse();
        response.Allocations.AddRange(page.Take(pageSize).Select(a => a.ToApi()));
        if (page.Count > pageSize)
        {
            response.NextPageToken = Paging.Encode(page[pageSize - 1].Seq, filters);
        }

        return response;
    }

    public override Task<ReleaseAllocationResponse> ReleaseAllocation(ReleaseAllocationRequest request, ServerCallContext context) =>
        mutations.RunAsync(context, request, request.RequestId, async m =>
        {
            var allocation = await AllocationOperations.ReleaseAsync(m.Session, m.Principal, request.AllocationId, m.Now, m.Clock);
            return new MutationResult<ReleaseAllocationResponse>(new ReleaseAllocationResponse { Allocation = allocation.ToApi() }, Model.Allocation.ResourceType, allocation.Id);
        });

    public override async Task WatchAllocations(WatchAllocationsRequest request, IServerStreamWriter<WatchAllocationsResponse> responseStream, ServerCallContext context)
    {
        var principal = context.GetPrincipal();
        if (request.AfterSequence < 0)
        {
            throw DomainErrors.Invalid("after_sequence", "must be >= 0");
        }

        var filter = new AllocationEventFilter(
            principal.Role == Role.Customer ? principal.TenantId : null, NullIfEmpty(request.ContractId), NullIfEmpty(request.PoolId));
        var last = request.AfterSequence;
        // A watch never ends by itself; on shutdown it ends cleanly so clients reconnect (from their last
        // sequence) to another instance instead of holding graceful shutdown open.
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, lifetime.ApplicationStopping);
        var ct = linked.Token;
        var key = AuthInterceptor.BearerKey(context);
        var keyChecked = TimeProvider.System.GetTimestamp();
        try
        {
            while (!ct.IsCancellationRequested)
            {
                if (TimeProvider.System.GetElapsedTime(keyChecked) >= WatchKeyCheckInterval)
                {
                    keyChecked = TimeProvider.System.GetTimestamp();
                    if (await keys.AuthenticateAsync(key, ct) is null)
                    {
                        throw new ProcurementException(ErrorKind.Unauthenticated, ErrorReasons.ApiKeyInvalid, "The API key was revoked; the stream has ended.");
                    }
                }

                // Taken before the read: a commit after the read completes it, so no event waits for the poll.
                var nextCommit = store.NextCommit;
                // The log's end is read first, so even a read without one snapshot lists every event up to it.
                var (logEnd, events, hidden) = await store.ReadAsync(async s =>
                {
                    var logEnd = await s.AllocationEvents.LastSequenceAsync();
                    var events = await s.AllocationEvents.ListAfterAsync(last, filter, WatchBatchSize);
                    return (logEnd, events, await OtherTenantsPreemptorsAsync(s, principal, events));
                }, ct);
                foreach (var e in events)
                {
                    await responseStream.WriteAsync(new WatchAllocationsResponse { Event = e.ToApi(showPreemptor: e.PreemptedBy is null || !hidden.Contains(e.PreemptedBy)) }, ct);
                    last = e.Sequence;
                }

                if (events.Count < WatchBatchSize)
                {
                    // Every event up to that end has been looked at: a filtered watch moves past other
                    // tenants' events instead of reading them again on each commit.
                    last = Math.Max(last, logEnd);
                    // Poll as well, for commits made by other processes on the same database.
                    await Task.WhenAny(nextCommit, Task.Delay(WatchPollInterval, TimeProvider.System, ct)).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (lifetime.ApplicationStopping.IsCancellationRequested && !context.CancellationToken.IsCancellationRequested)
        {
            // Shutting down: end the stream normally.
        }
    }

    /// <summary>A pool's units and every contract's standing in it, as of <paramref name="now"/>; also the contracts read.</summary>
    internal static async Task<(GetPoolStatusResponse Status, IReadOnlyList<Domain.Contracts.Contract> Contracts)> ReadPoolStatusAsync(IStoreSession s, string poolId, DateTimeOffset now)
    {
        // Four statements: the pool, its open allocations, the contracts entitled to it or holding it,
        // and its capacity blocks in effect.
        var pool = await s.Pools.GetAsync(poolId) ?? throw DomainErrors.NotFound(Domain.Pools.Pool.ResourceType, poolId);
        var open = await s.Allocations.OpenInPoolAsync(pool.Id);
        var contracts = await s.Contracts.OfPoolAsync(pool.Id, now);
        var blockUnits = (await s.Blocks.CurrentInPoolAsync(pool.Id, now)).Where(b => b.IsPlaced && b.StartTime <= now && now < b.EndTime)
            .GroupBy(b => b.ContractId, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Sum(b => b.Units), StringComparer.Ordinal);
        var pending = open.Where(a => a.State == Domain.Allocations.AllocationState.Pending).ToList();
        var ledger = new Domain.Allocations.PoolLedger(pool.CapacityUnits,
            open.Where(a => a.State == Domain.Allocations.AllocationState.Active).Select(AllocationEngine.Held),
            contracts.Select(c => c.StandingIn(pool.Id, now)));

        var response = new GetPoolStatusResponse
        {
            Pool = pool.ToApi(),
            ActiveUnits = ledger.Held,
            PendingUnits = pending.Sum(p => p.Units),
            FreeUnits = ledger.Free,
        };
        foreach (var c in contracts.OrderBy(c => c.Id, StringComparer.Ordinal))
        {
            var standing = ledger.Standing(c.Id);
            var state = c.StateAt(now);
            if (state is Domain.Contracts.ContractState.Active or Domain.Contracts.ContractState.Suspended)
            {
                response.ReservedUnits += standing.ReservedUnits;
            }

            var active = ledger.UnitsOf(c.Id);
            // As admission counts them: a contract's blocks in effect add to its reservation.
            var blocks = blockUnits.GetValueOrDefault(c.Id);
            response.BlockUnits += blocks;
            response.Contracts.Add(new ContractPoolStanding
            {
                ContractId = c.Id,
                TenantId = c.TenantId,
                Priority = standing.Priority,
                ReservedUnits = standing.ReservedUnits,
                BurstLimitUnits = standing.BurstLimitUnits,
                ActiveUnits = active,
                PendingUnits = pending.Where(p => p.ContractId == c.Id).Sum(p => p.Units),
                Borrowing = active > standing.ReservedUnits + blocks,
                BlockUnits = blocks,
            });
        }

        return (response, contracts);
    }

    /// <summary>The preempting allocations among <paramref name="events"/> that a customer may not see: another tenant's.</summary>
    private static async Task<HashSet<string>> OtherTenantsPreemptorsAsync(IStoreSession s, Principal principal, IReadOnlyList<Procurement.Storage.Repositories.AllocationEvent> events)
    {
        var hidden = new HashSet<string>(StringComparer.Ordinal);
        if (principal.Role != Role.Customer)
        {
            return hidden;
        }

        foreach (var id in events.Select(e => e.PreemptedBy).OfType<string>().Distinct(StringComparer.Ordinal))
        {
            if (await s.Allocations.GetAsync(id) is not { } preemptor || !principal.CanSeeTenant(preemptor.TenantId))
            {
                hidden.Add(id);
            }
        }

        return hidden;
    }

    public override async Task<GetPoolStatusResponse> GetPoolStatus(GetPoolStatusRequest request, ServerCallContext context)
    {
        var now = Mutations.TruncateToMilliseconds(time.GetUtcNow());
        // A plain read: the units counted are those of the last committed transition (an allocation
        // past its end time counts until the sweeper, or the pool's next decision, ends it). Taken
        // before the read, the commit count vouches for everything the read sees.
        var commits = store.StableCommitCount;
        if (statusCache.Find(request.PoolId, commits, now) is { } unchanged)
        {
            return unchanged;
        }

        var (status, listed) = await store.ReadAsync(s => ReadPoolStatusAsync(s, request.PoolId, now), context.CancellationToken);
        statusCache.Remember(request.PoolId, commits, now, listed, status);
        return status;
    }

    private static AllocationRequest Validate(RequestAllocationRequest request)
    {
        var v = new List<FieldViolation>();
        if (string.IsNullOrEmpty(request.ContractId))
        {
            v.Add(new("contract_id", "is required"));
        }

        if (!Identifiers.IsPoolId(request.PoolId))
        {
            v.Add(new("pool_id", "must be a pool id"));
        }

        if (request.Units < 1)
        {
            v.Add(new("units", "must be >= 1"));
        }

        DateTimeOffset? endTime;
        TimeSpan? duration = null;
        if (request.EndTime is not null && request.Duration is not null)
        {
            v.Add(new("duration", "give end_time or duration, not both"));
        }

        endTime = RequestFields.Time(request.EndTime, "end_time", v, required: false);

        if (request.Duration is not null)
        {
            var d = request.Duration.ToTimeSpan();
            if (d <= TimeSpan.Zero || d.Ticks % TimeSpan.TicksPerMillisecond != 0)
            {
                v.Add(new("duration", "must be > 0 and a whole number of milliseconds"));
            }
            else
            {
                duration = d;
            }
        }

        if (!request.DryRun && !Identifiers.IsRequestId(request.RequestId))
        {
            v.Add(new("request_id", "is required: 1..128 printable ASCII characters, e.g. a UUID generated once per logical request"));
        }

        DomainErrors.ThrowIfAny(v);
        return new AllocationRequest(request.ContractId, request.PoolId, request.Units, endTime, duration, request.WaitIfUnavailable);
    }

    private static string? NullIfEmpty(string s) => s.Length == 0 ? null : s;
}

/// <summary>AllocationService, part three: usage ingestion.</summary>
public sealed partial class AllocationGrpcService
{
    private const int UsageBatchSize = 2000;

    public override async Task<ReportUsageResponse> ReportUsage(IAsyncStreamReader<ReportUsageRequest> requestStream, ServerCallContext context)
    {
        var principal = context.GetPrincipal();
        var tally = new UsageTally();
        var batch = new List<UsageIngestion.Incoming>(UsageBatchSize);
        await foreach (var message in requestStream.ReadAllAsync(context.CancellationToken))
        {
            foreach (var sample in message.Samples)
            {
                batch.Add(Incoming(sample));
                if (batch.Count == UsageBatchSize)
                {
                    await FlushAsync(batch, principal, tally, context.CancellationToken);
                }
            }
        }

        await FlushAsync(batch, principal, tally, context.CancellationToken);
        metrics.Samples(tally.Accepted, tally.Duplicate, tally.Rejected);
        var response = new ReportUsageResponse { Accepted = tally.Accepted, Duplicate = tally.Duplicate, Rejected = tally.Rejected };
        response.Rejections.AddRange(tally.Rejections.Select(r => new Procurement.Api.V1.UsageRejection
        {
            Source = r.Source, SampleId = r.SampleId, Reason = r.Reason, Message = r.Message,
        }));
        return response;
    }

    private async Task FlushAsync(List<UsageIngestion.Incoming> batch, Principal principal, UsageTally tally, CancellationToken ct)
    {
        if (batch.Count == 0)
        {
            return;
        }

        var samples = batch.ToList();
        batch.Clear();
        // Counted into a copy so a failed unit (rolled back) does not leave half a batch in the totals.
        var attempt = new UsageTally();
        await store.WriteAsync(async s =>
        {
            attempt = new UsageTally();
            await UsageIngestion.IngestAsync(s, principal, samples, attempt, Mutations.TruncateToMilliseconds(time.GetUtcNow()));
            return true;
        }, ct);
        tally.Accepted += attempt.Accepted;
        tally.Duplicate += attempt.Duplicate;
        tally.Rejected += attempt.Rejected;
        foreach (var r in attempt.Rejections.Take(UsageTally.MaxRejectionsListed - tally.Rejections.Count))
        {
            tally.Rejections.Add(r);
        }
    }

    /// <summary>A streamed sample that breaks the edge rules (times, strings) is rejected alone, never read past them.</summary>
    private static UsageIngestion.Incoming Incoming(Procurement.Api.V1.UsageSample sample)
    {
        var problem = sample.WindowStart is { } s && !EdgeValidation.IsValid(s) ? $"window_start {EdgeValidation.TimestampRule}"
            : sample.WindowEnd is { } e && !EdgeValidation.IsValid(e) ? $"window_end {EdgeValidation.TimestampRule}"
            : !EdgeValidation.IsValid(sample.Source) ? $"source {EdgeValidation.StringRule}"
            : !EdgeValidation.IsValid(sample.SampleId) ? $"sample_id {EdgeValidation.StringRule}"
            : !EdgeValidation.IsValid(sample.AllocationId) ? $"allocation_id {EdgeValidation.StringRule}"
            : null;
        return problem is null
            ? new(sample.Source, sample.SampleId, sample.AllocationId, sample.WindowStart?.ToDateTimeOffset(), sample.WindowEnd?.ToDateTimeOffset(), sample.BusyGpuSeconds)
            : new(sample.Source, sample.SampleId, sample.AllocationId, null, null, sample.BusyGpuSeconds, problem);
    }
}
