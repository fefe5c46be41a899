using Grpc.Core;
using Procurement.Api.V1;
using Procurement.Domain.Errors;
using Procurement.Server.Application;
using Procurement.Server.Auth;
using Procurement.Server.Mapping;
using Procurement.Server.Telemetry;
using Procurement.Storage;
using Procurement.Storage.Repositories;
using Model = Procurement.Domain.Sla;

namespace Procurement.Server.Services;

/// <summary>SlaService: incidents, and each contract's monthly SLA report.</summary>
public sealed class SlaGrpcService(IProcurementStore store, Mutations mutations, TimeProvider time, ProcurementMetrics metrics) : SlaService.SlaServiceBase
{
    public override Task<RecordIncidentResponse> RecordIncident(RecordIncidentRequest request, ServerCallContext context)
    {
        var v = new List<FieldViolation>();
        if (request.Kind is < IncidentKind.Outage or > IncidentKind.Maintenance)
        {
            v.Add(new("kind", "must be OUTAGE, DEGRADED or MAINTENANCE"));
        }

        var start = RequestFields.Time(request.StartTime, "start_time", v, required: true);
        var end = RequestFields.Time(request.EndTime, "end_time", v, required: false);
        var announced = RequestFields.Time(request.AnnounceTime, "announce_time", v, required: false);
        if (start is { } s && end is { } e && e <= s)
        {
            v.Add(new("end_time", "must be after start_time"));
        }

        if (announced is not null && request.Kind != IncidentKind.Maintenance)
        {
            v.Add(new("announce_time", "applies to MAINTENANCE only"));
        }
        else if (start is { } s2 && announced is { } a && a > s2)
        {
            v.Add(new("announce_time", "must be at or before start_time"));
        }

        if (request.AffectedUnits < 1)
        {
            v.Add(new("affected_units", "must be >= 1"));
        }

        DomainErrors.ThrowIfAny(v);
        return mutations.RunAsync(context, request, request.RequestId, async m =>
        {
            var pool = await m.Session.Pools.GetAsync(request.PoolId) ?? throw DomainErrors.NotFound(Domain.Pools.Pool.ResourceType, request.PoolId);
            if (start < pool.CreatedAt)
            {
                // Downtime is a fraction of the capacity at the time; before the pool existed there was none.
                throw DomainErrors.Invalid("start_time", $"must not be before the pool was created ({pool.CreatedAt:O})");
            }

            var seq = await m.Session.Incidents.NextSeqAsync();
            var incident = new Model.Incident($"inc_{seq}", request.PoolId, (Model.IncidentKind)(int)request.Kind, start!.Value, end,
                request.AffectedUnits, announced, m.Now, m.Now);
            await m.Session.Incidents.InsertAsync(seq, incident);
            return new MutationResult<RecordIncidentResponse>(new RecordIncidentResponse { Incident = incident.ToApi() }, Model.Incident.ResourceType, incident.Id);
        });
    }

    public override Task<ResolveIncidentResponse> ResolveIncident(ResolveIncidentRequest request, ServerCallContext context)
    {
        var v = new List<FieldViolation>();
        var end = RequestFields.Time(request.EndTime, "end_time", v, required: true);
        DomainErrors.ThrowIfAny(v);
        return mutations.RunAsync(context, request, request.RequestId, async m =>
        {
            var (_, incident) = await m.Session.Incidents.GetAsync(request.IncidentId) ?? throw DomainErrors.NotFound(Model.Incident.ResourceType, request.IncidentId);
            if (incident.End is not null)
            {
                throw DomainErrors.InvalidState($"Incident '{incident.Id}' was already resolved at {incident.End:O}.", "RESOLVED");
            }

            if (end <= incident.Start)
            {
                throw DomainErrors.Invalid("end_time", $"must be after the incident's start ({incident.Start:O})");
            }

            var resolved = incident with { End = end, UpdatedAt = m.Now };
            await m.Session.Incidents.ResolveAsync(resolved);
            return new MutationResult<ResolveIncidentResponse>(new ResolveIncidentResponse { Incident = resolved.ToApi() }, Model.Incident.ResourceType, resolved.Id);
        });
    }

    public override async Task<ListIncidentsResponse> ListIncidents(ListIncidentsRequest request, ServerCallContext context)
    {
        var v = new List<FieldViolation>();
        var from = RequestFields.Time(request.StartTime, "start_time", v, required: false);
        var to = RequestFields.Time(request.EndTime, "end_time", v, required: false);
        var pageSize = Paging.PageSize(request.PageSize);
        DomainErrors.ThrowIfAny(v);
        var filters = $"incidents|{request.PoolId}|{from?.ToUnixTimeMilliseconds()}|{to?.ToUnixTimeMilliseconds()}";
        var token = Paging.Decode(request.PageToken, filters);
        long afterStart = long.MinValue, afterSeq = 0;
        if (token is not null)
        {
            var parts = token.Split(':');
            afterStart = long.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture);
            afterSeq = long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
        }

        var page = await store.ReadAsync(s => s.Incidents.ListAsync(new IncidentFilter(request.PoolId.Length == 0 ? null : request.PoolId, from, to), afterStart, afterSeq, pageSize + 1), context.CancellationToken);
        var response = new ListIncidentsResponse();
        response.Incidents.AddRange(page.Take(pageSize).Select(x => x.Incident.ToApi()));
        if (page.Count > pageSize)
        {
            var last = page[pageSize - 1];
            response.NextPageToken = Paging.Encode($"{last.Incident.Start.ToUnixTimeMilliseconds()}:{last.Seq}", filters);
        }

        return response;
    }

    public override async Task<GetSlaReportResponse> GetSlaReport(GetSlaReportRequest request, ServerCallContext context)
    {
        var principal = context.GetPrincipal();
        var v = new List<FieldViolation>();
        var month = RequestFields.Month(request.Month, "month", v);
        DomainErrors.ThrowIfAny(v);
        var now = Mutations.TruncateToMilliseconds(time.GetUtcNow());
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var report = await store.ReadAsync(async s =>
        {
            var contract = await ContractOperations.LoadVisibleAsync(s, principal, request.ContractId);
            var period = Billing.Period(contract, month, now);
            return (await Billing.SlaAsync(s, period)).ToApi(period);
        }, context.CancellationToken);
        metrics.Computed("sla_report", System.Diagnostics.Stopwatch.GetElapsedTime(started));
        return new GetSlaReportResponse { Report = report };
    }
}
