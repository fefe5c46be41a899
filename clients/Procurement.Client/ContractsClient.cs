using Procurement.Api.V1;
using Procurement.Client.Resilience;

namespace Procurement.Client;

/// <summary>ContractService: contracts, their versions, index values, statements, quotes and the audit log.</summary>
public sealed class ContractsClient(ContractService.ContractServiceClient stub, CallRunner runner)
{
    /// <summary>The generated stub, for what this client does not wrap (no retries or error mapping there).</summary>
    public ContractService.ContractServiceClient Stub => stub;

    public async Task<Contract> CreateAsync(CreateContractRequest request, CancellationToken cancellationToken = default) =>
        (await Mutate(request, o => stub.CreateContractAsync(request, o), cancellationToken)).Contract;

    public async Task<Contract> GetAsync(string contractId, CancellationToken cancellationToken = default) =>
        (await runner.UnaryAsync(CallKind.Read, o => stub.GetContractAsync(new GetContractRequest { ContractId = contractId }, o), cancellationToken)).Contract;

    public Task<ListContractsResponse> ListAsync(ListContractsRequest request, CancellationToken cancellationToken = default) =>
        runner.UnaryAsync(CallKind.Read, o => stub.ListContractsAsync(request, o), cancellationToken);

    /// <summary>Every contract matching the filters, page after page.</summary>
    public async IAsyncEnumerable<Contract> ListAllAsync(ListContractsRequest filter, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var request = filter.Clone();
        do
        {
            var page = await ListAsync(request, cancellationToken);
            foreach (var c in page.Contracts)
            {
                yield return c;
            }

            request.PageToken = page.NextPageToken;
        }
        while (request.PageToken.Length > 0);
    }

    public async Task<Contract> UpdateAsync(UpdateContractRequest request, CancellationToken cancellationToken = default) =>
        (await Mutate(request, o => stub.UpdateContractAsync(request, o), cancellationToken)).Contract;

    public async Task<Contract> ActivateAsync(ActivateContractRequest request, CancellationToken cancellationToken = default) =>
        (await Mutate(request, o => stub.ActivateContractAsync(request, o), cancellationToken)).Contract;

    public async Task<Contract> SuspendAsync(SuspendContractRequest request, CancellationToken cancellationToken = default) =>
        (await Mutate(request, o => stub.SuspendContractAsync(request, o), cancellationToken)).Contract;

    public async Task<Contract> ResumeAsync(ResumeContractRequest request, CancellationToken cancellationToken = default) =>
        (await Mutate(request, o => stub.ResumeContractAsync(request, o), cancellationToken)).Contract;

    public async Task<Contract> TerminateAsync(TerminateContractRequest request, CancellationToken cancellationToken = default) =>
        (await Mutate(request, o => stub.TerminateContractAsync(request, o), cancellationToken)).Contract;

    public Task<AmendContractResponse> AmendAsync(AmendContractRequest request, CancellationToken cancellationToken = default) =>
        Mutate(request, o => stub.AmendContractAsync(request, o), cancellationToken);

    public Task<ListContractVersionsResponse> ListVersionsAsync(ListContractVersionsRequest request, CancellationToken cancellationToken = default) =>
        runner.UnaryAsync(CallKind.Read, o => stub.ListContractVersionsAsync(request, o), cancellationToken);

    public Task<ListAuditEventsResponse> ListAuditEventsAsync(ListAuditEventsRequest request, CancellationToken cancellationToken = default) =>
        runner.UnaryAsync(CallKind.Read, o => stub.ListAuditEventsAsync(request, o), cancellationToken);

    public async Task<IndexValue> PublishIndexValueAsync(PublishIndexValueRequest request, CancellationToken cancellationToken = default) =>
        (await Mutate(request, o => stub.PublishIndexValueAsync(request, o), cancellationToken)).IndexValue;

    public Task<ListIndexValuesResponse> ListIndexValuesAsync(ListIndexValuesRequest request, CancellationToken cancellationToken = default) =>
        runner.UnaryAsync(CallKind.Read, o => stub.ListIndexValuesAsync(request, o), cancellationToken);

    public async Task<Statement> GetStatementAsync(string contractId, int year, int month, CancellationToken cancellationToken = default) =>
        (await runner.UnaryAsync(CallKind.Read, o => stub.GetStatementAsync(new GetStatementRequest
        {
            ContractId = contractId, Month = new BillingMonth { Year = year, Month = month },
        }, o), cancellationToken)).Statement;

    public async Task<Statement> QuoteAsync(QuoteContractRequest request, CancellationToken cancellationToken = default) =>
        (await runner.UnaryAsync(CallKind.Read, o => stub.QuoteContractAsync(request, o), cancellationToken)).Statement;

    private Task<TResponse> Mutate<TRequest, TResponse>(TRequest request, Func<Grpc.Core.CallOptions, Grpc.Core.AsyncUnaryCall<TResponse>> call, CancellationToken ct)
        where TRequest : Google.Protobuf.IMessage
    {
        RequestIds.Ensure(request, runner.Options.TimeProvider);
        return runner.UnaryAsync(CallKind.Mutation, call, ct);
    }
}
