using Procurement.Api.V1;
using Procurement.Client.Resilience;

namespace Procurement.Client;

/// <summary>SlaService: incidents and SLA reports.</summary>
public sealed class SlaClient(SlaService.SlaServiceClient stub, CallRunner runner)
{
    public SlaService.SlaServiceClient Stub => stub;

    public async Task<Incident> RecordIncidentAsync(RecordIncidentRequest request, CancellationToken cancellationToken = default)
    {
        RequestIds.Ensure(request, runner.Options.TimeProvider);
        return (await runner.UnaryAsync(CallKind.Mutation, o => stub.RecordIncidentAsync(request, o), cancellationToken)).Incident;
    }

    public async Task<Incident> ResolveIncidentAsync(ResolveIncidentRequest request, CancellationToken cancellationToken = default)
    {
        RequestIds.Ensure(request, runner.Options.TimeProvider);
        return (await runner.UnaryAsync(CallKind.Mutation, o => stub.ResolveIncidentAsync(request, o), cancellationToken)).Incident;
    }

    public Task<ListIncidentsResponse> ListIncidentsAsync(ListIncidentsRequest request, CancellationToken cancellationToken = default) =>
        runner.UnaryAsync(CallKind.Read, o => stub.ListIncidentsAsync(request, o), cancellationToken);

    public async Task<SlaReport> GetReportAsync(string contractId, int year, int month, CancellationToken cancellationToken = default) =>
        (await runner.UnaryAsync(CallKind.Read, o => stub.GetSlaReportAsync(new GetSlaReportRequest
        {
            ContractId = contractId, Month = new BillingMonth { Year = year, Month = month },
        }, o), cancellationToken)).Report;
}
