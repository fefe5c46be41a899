using Google.Protobuf.WellKnownTypes;
using Procurement.Domain.Allocations;
using Procurement.Storage.Repositories;
using V1 = Procurement.Api.V1;

namespace Procurement.Server.Mapping;

/// <summary>Allocations, decisions and events to API messages. Enum numbers match by design.</summary>
public static class AllocationMapper
{
    public static V1.Allocation ToApi(this Allocation a)
    {
        var result = new V1.Allocation
        {
            AllocationId = a.Id,
            ContractId = a.ContractId,
            TenantId = a.TenantId,
            PoolId = a.PoolId,
            Units = a.Units,
            State = (V1.AllocationState)(int)a.State,
            Cause = (V1.AllocationCause)(int)a.Cause,
            RequestTime = Timestamp.FromDateTimeOffset(a.RequestedAt),
        };
        if (a.AdmittedAt is { } admitted)
        {
            result.AdmitTime = Timestamp.FromDateTimeOffset(admitted);
        }

        if (a.EndedAt is { } ended)
        {
            result.FinishTime = Timestamp.FromDateTimeOffset(ended);
        }

        if (a.EndTime is { } end)
        {
            result.EndTime = Timestamp.FromDateTimeOffset(end);
        }

        return result;
    }

    public static V1.AdmissionDecision ToApi(this AdmissionDecision d, IReadOnlyDictionary<string, Allocation> victims)
    {
        var result = new V1.AdmissionDecision
        {
            Outcome = (V1.AdmissionOutcome)(int)d.Outcome,
            Reason = d.Reason ?? "",
            Guaranteed = d.Guaranteed,
        };
        result.Preemptions.AddRange(d.Victims.Select(v => new V1.Preemption
        {
            AllocationId = v.AllocationId,
            ContractId = v.ContractId,
            TenantId = victims[v.AllocationId].TenantId,
            Units = v.Units,
        }));
        return result;
    }

    public static V1.AllocationEvent ToApi(this AllocationEvent e) => new()
    {
        Sequence = e.Sequence,
        Time = Timestamp.FromDateTimeOffset(e.OccurredAt),
        Type = (V1.AllocationEventType)(int)e.Type,
        Cause = (V1.AllocationCause)(int)e.Cause,
        AllocationId = e.AllocationId,
        ContractId = e.ContractId,
        TenantId = e.TenantId,
        PoolId = e.PoolId,
        Units = e.Units,
        State = (V1.AllocationState)(int)e.State,
        PreemptedBy = e.PreemptedBy ?? "",
    };
}
