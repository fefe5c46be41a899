using Grpc.Core;
using Procurement.Api.V1;
using Procurement.Domain.Common;
using BillingMonth = Procurement.Domain.Common.BillingMonth;
using Procurement.Domain.Errors;
using Procurement.Server.Application;
using Procurement.Server.Auth;
using Procurement.Server.Mapping;
using Procurement.Server.Telemetry;
using Procurement.Storage;
using Procurement.Storage.Repositories;
using Model = Procurement.Domain.Contracts;

namespace Procurement.Server.Services;

/// <summary>ContractService: maps requests, runs the domain through <see cref="Mutations"/>, maps replies.</summary>
public sealed partial class ContractGrpcService(IProcurementStore store, Mutations mutations, TimeProvider time, ReadCache<Contract> contracts, ProcurementMetrics metrics)
    : ContractService.ContractServiceBase
{
    private const int MaxReasonLength = 500;

    public override Task<CreateContractResponse> CreateContract(CreateContractRequest request, ServerCallContext context)
    {
        var violations = ContractOperations.ValidateHeader(request.TenantId, request.DisplayName, requireTenant: true);
        var terms = TermsMapper.ToDomain(request.Terms, "terms.", violations);
        return mutations.RunAsync(context, request, request.RequestId, async m =>
        {
            var contract = await ContractOperations.CreateAsync(m.Session, request.TenantId, request.DisplayName, terms, violations, m.Now);
            return Result(new CreateContractResponse { Contract = contract.ToApi(m.Now) }, contract.Id);
        });
    }

    public override async Task<GetContractResponse> GetContract(GetContractRequest request, ServerCallContext context)
    {
        var principal = context.GetPrincipal();
        var now = time.GetUtcNow();
        // Taken before the read, the commit count vouches for everything the read sees.
        var commits = store.StableCommitCount;
        var contract = contracts.Find(request.ContractId, commits, now);
        if (contract is null)
        {
            var loaded = await store.ReadAsync(s => ContractOperations.LoadVisibleAsync(s, principal, request.ContractId), context.CancellationToken);
            contract = loaded.ToApi(now);
            contracts.Remember(request.ContractId, commits, now, [loaded], contract);
        }
        else if (!principal.CanSeeTenant(contract.TenantId))
        {
            throw DomainErrors.NotFound(Domain.Contracts.Contract.ResourceType, request.ContractId);
        }

        return new GetContractResponse { Contract = contract };
    }

    public override async Task<ListContractsResponse> ListContracts(ListContractsRequest request, ServerCallContext context)
    {
        var principal = context.GetPrincipal();
        var pageSize = Paging.PageSize(request.PageSize);
        if (request.State is < ContractState.Unspecified or > ContractState.Expired)
        {
            throw DomainErrors.Invalid("state", "is not a contract state");
        }

        var filters = $"contracts|{request.TenantId}|{request.State}";
        var after = Paging.DecodeLong(request.PageToken, filters);
        var response = new ListContractsResponse();
        // A customer naming another tenant sees what a tenant with no contracts sees: nothing.
        if (principal.Role == Role.Customer && request.TenantId.Length > 0 && request.TenantId != principal.TenantId)
        {
            return response;
        }

        var tenant = principal.Role == Role.Customer ? principal.TenantId : NullIfEmpty(request.TenantId);
        var state = request.State == ContractState.Unspecified ? (Model.ContractState?)null : (Model.ContractState)(int)request.State;
        var now = time.GetUtcNow();
        var page = await store.ReadAsync(s => s.Contracts.ListAsync(new ContractFilter(tenant, state), now, after, pageSize + 1), context.CancellationToken);
        response.Contracts.AddRange(page.Take(pageSize).Select(p => p.Contract.ToApi(now)));
        if (page.Count > pageSize)
        {
            response.NextPageToken = Paging.Encode(page[pageSize - 1].Seq, filters);
        }

        return response;
    }

    public override Task<UpdateContractResponse> UpdateContract(UpdateContractRequest request, ServerCallContext context)
    {
        var violations = ContractOperations.ValidateHeader("", request.DisplayName, requireTenant: false);
        var terms = TermsMapper.ToDomain(request.Terms, "terms.", violations);
        return mutations.RunAsync(context, request, request.RequestId, async m =>
        {
            var contract = await ContractOperations.LoadVisibleAsync(m.Session, m.Principal, request.ContractId);
            contract.CheckEtag(request.Etag, required: true);
            await ContractOperations.ValidateTermsAsync(m.Session, terms, violations, "terms.");
            var previous = contract.Revision;
            contract.UpdateDraft(request.DisplayName, terms, m.Now);
            await m.Session.Contracts.UpdateAsync(contract, previous);
            return Result(new UpdateContractResponse { Contract = contract.ToApi(m.Now) }, contract.Id);
        });
    }

    public override Task<ActivateContractResponse> ActivateContract(ActivateContractRequest request, ServerCallContext context) =>
        mutations.RunAsync(context, request, request.RequestId, async m =>
        {
            var contract = await ContractOperations.LoadVisibleAsync(m.Session, m.Principal, request.ContractId);
            contract.CheckEtag(request.Etag, required: false);
            await ContractOperations.ActivateAsync(m.Session, contract, m.Now);
            return Result(new ActivateContractResponse { Contract = contract.ToApi(m.Now) }, contract.Id);
        });

    public override Task<SuspendContractResponse> SuspendContract(SuspendContractRequest request, ServerCallContext context)
    {
        ValidateReason(request.Reason);
        return Transition(context, request, request.RequestId, request.ContractId, request.Etag,
            (c, now) => c.Suspend(request.Reason, now), c => new SuspendContractResponse { Contract = c },
            Procurement.Domain.Allocations.AllocationCause.ContractSuspended);
    }

    public override Task<ResumeContractResponse> ResumeContract(ResumeContractRequest request, ServerCallContext context) =>
        Transition(context, request, request.RequestId, request.ContractId, request.Etag,
            (c, now) => c.Resume(now), c => new ResumeContractResponse { Contract = c });

    public override Task<TerminateContractResponse> TerminateContract(TerminateContractRequest request, ServerCallContext context)
    {
        ValidateReason(request.Reason);
        return Transition(context, request, request.RequestId, request.ContractId, request.Etag,
            (c, now) => c.Terminate(request.Reason, now), c => new TerminateContractResponse { Contract = c },
            Procurement.Domain.Allocations.AllocationCause.ContractTerminated);
    }

    public override Task<AmendContractResponse> AmendContract(AmendContractRequest request, ServerCallContext context)
    {
        var violations = new List<FieldViolation>();
        if (request.EffectiveMonth is null || !BillingMonth.IsValid(request.EffectiveMonth.Year, request.EffectiveMonth.Month))
        {
            violations.Add(new("effective_month", "is required: a year 2000..9999 and a month 1..12"));
        }

        var terms = TermsMapper.ToDomain(request.Terms, "terms.", violations);
        return mutations.RunAsync(context, request, request.RequestId, async m =>
        {
            var month = request.EffectiveMonth is { } e && BillingMonth.IsValid(e.Year, e.Month) ? new BillingMonth(e.Year, e.Month) : default;
            if (month != default)
            {
                // A month already folded is folded again on the new terms; no fold runs on the old ones meanwhile.
                await m.Session.LockPoolsAsync(await UsageTotals.PoolsFoldedIntoAsync(m.Session, month));
            }

            var contract = await ContractOperations.LoadVisibleAsync(m.Session, m.Principal, request.ContractId);
            contract.CheckEtag(request.Etag, required: true);
            await ContractOperations.ValidateTermsAsync(m.Session, terms, violations, "terms.");
            var previous = contract.Revision;
            var version = contract.Amend(month, terms, m.Now);
            await CapacityBlocks.EnsureInsideTermAsync(m.Session, contract);
            await ContractOperations.EnsureReservationsFitAsync(m.Session, contract, m.Now, "amend");
            await m.Session.Contracts.UpdateAsync(contract, previous);
            await UsageTotals.RefoldAsync(m.Session, contract, month, m.Now);
            return Result(new AmendContractResponse { Contract = contract.ToApi(m.Now), Version = version.ToApi(contract.Id) }, contract.Id);
        });
    }

    public override async Task<ListContractVersionsResponse> ListContractVersions(ListContractVersionsRequest request, ServerCallContext context)
    {
        var principal = context.GetPrincipal();
        var pageSize = Paging.PageSize(request.PageSize);
        var filters = $"versions|{request.ContractId}";
        var after = Paging.DecodeLong(request.PageToken, filters);
        var contract = await store.ReadAsync(s => ContractOperations.LoadVisibleAsync(s, principal, request.ContractId), context.CancellationToken);
        var page = contract.Versions.Where(v => v.Version > after).Take(pageSize + 1).ToList();
        var response = new ListContractVersionsResponse();
        response.Versions.AddRange(page.Take(pageSize).Select(v => v.ToApi(contract.Id)));
        if (page.Count > pageSize)
        {
            response.NextPageToken = Paging.Encode(page[pageSize - 1].Version, filters);
        }

        return response;
    }

    public override async Task<ListAuditEventsResponse> ListAuditEvents(ListAuditEventsRequest request, ServerCallContext context)
    {
        var pageSize = Paging.PageSize(request.PageSize);
        var filters = $"audit|{request.ResourceType}|{request.ResourceId}";
        var after = Paging.DecodeLong(request.PageToken, filters);
        var page = await store.ReadAsync(
            s => s.Audit.ListAsync(NullIfEmpty(request.ResourceType), NullIfEmpty(request.ResourceId), after, pageSize + 1),
            context.CancellationToken);
        var response = new ListAuditEventsResponse();
        response.Events.AddRange(page.Take(pageSize).Select(e => e.ToApi()));
        if (page.Count > pageSize)
        {
            response.NextPageToken = Paging.Encode(page[pageSize - 1].Sequence, filters);
        }

        return response;
    }

    private Task<TResponse> Transition<TRequest, TResponse>(
        ServerCallContext context, TRequest request, string requestId, string contractId, string etag,
        Action<Model.Contract, DateTimeOffset> change, Func<Contract, TResponse> reply,
        Procurement.Domain.Allocations.AllocationCause? endsAllocations = null)
        where TRequest : Google.Protobuf.IMessage<TRequest>
        where TResponse : Google.Protobuf.IMessage<TResponse>, new() =>
        mutations.RunAsync(context, request, requestId, async m =>
        {
            var contract = await ContractOperations.LoadVisibleAsync(m.Session, m.Principal, contractId);
            contract.CheckEtag(etag, required: false);
            var previous = contract.Revision;
            change(contract, m.Now);
            await m.Session.Contracts.UpdateAsync(contract, previous);
            if (endsAllocations is { } cause)
            {
                // A suspended or terminated contract holds nothing, in the same transaction.
                await AllocationEngine.EndContractAllocationsAsync(m.Session, contract.Id, cause, m.Now);
            }

            return Result(reply(contract.ToApi(m.Now)), contract.Id);
        });

    private static MutationResult<T> Result<T>(T response, string contractId) => new(response, Model.Contract.ResourceType, contractId);

    private static void ValidateReason(string reason)
    {
        if (reason.Length > MaxReasonLength)
        {
            throw DomainErrors.Invalid("reason", $"must be at most {MaxReasonLength} characters");
        }
    }

    private static string? NullIfEmpty(string s) => s.Length == 0 ? null : s;
}
