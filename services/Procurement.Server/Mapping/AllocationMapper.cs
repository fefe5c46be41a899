using Google.Protobuf.WellKnownTypes;
using Procurement.Domain.Allocations;
using Procurement.Storage.Repositories;
using V1 = Procurement.Api.V1;

using Procurement.Server.Auth;

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

    /// <summary>
    /// The decision as <paramref name="viewer"/> may see it: an operator sees every victim; a customer
    /// sees its own victims in full and other tenants' only as the units taken (no ids, no names).
    /// </summary>
    public static V1.AdmissionDecision ToApi(this AdmissionDecision d, IReadOnlyDictionary<string, Allocation> victims, Principal viewer)
    {
        var result = new V1.AdmissionDecision
        {
            Outcome = (V1.AdmissionOutcome)(int)d.Outcome,
            Reason = d.Reason ?? "",
            Guaranteed = d.Guaranteed,
        };
        result.Preemptions.AddRange(d.Victims.Select(v => viewer.CanSeeTenant(victims[v.AllocationId].TenantId)
            ? new V1.Preemption { AllocationId = v.AllocationId, ContractId = v.ContractId, TenantId = victims[v.AllocationId].TenantId, Units = v.Units }
            : new V1.Preemption { Units = v.Units }));
        return result;
    }

    /// <summary>An event; <paramref name="showPreemptor"/> is false when the allocation that took the units is another tenant's.</summary>
    public static V1.AllocationEvent ToApi(this AllocationEvent e, bool showPreemptor = true)
    {
        var api = new V1.AllocationEvent
        {
            Sequence = e.Sequence,
            Time = Timestamp.FromDateTimeOffset(e.OccurredAt),
            Type = (V1.AllocationEventType)(int)e.Type,
            ContractId = e.ContractId,
            TenantId = e.TenantId,
            PoolId = e.PoolId,
            Units = e.Units,
        };
        if (e.IsBlockEvent)
        {
            // A block's event names the block; its cause and allocation fields stay empty.
            api.BlockId = e.AllocationId;
            api.BlockState = (V1.CapacityBlockState)(int)e.BlockState!.Value;
        }
        else
        {
            api.Cause = (V1.AllocationCause)(int)e.Cause;
            api.AllocationId = e.AllocationId;
            api.State = (V1.AllocationState)(int)e.State;
            api.PreemptedBy = showPreemptor ? e.PreemptedBy ?? "" : "";
        }

        return api;
    }
}
