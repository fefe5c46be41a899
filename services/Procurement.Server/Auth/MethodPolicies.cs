using Procurement.Api.V1;

namespace Procurement.Server.Auth;

/// <summary>
/// Which roles may call which method. A procurement method missing here is refused for everyone
/// (fail closed); health checks and reflection are open so that generic tools and probes work.
/// </summary>
public static class MethodPolicies
{
    private static readonly Role[] OperatorOnly = [Role.Operator];
    private static readonly Role[] OperatorAndCustomer = [Role.Operator, Role.Customer];
    private static readonly Role[] OperatorAndMeter = [Role.Operator, Role.Meter];
    private static readonly Role[] Everyone = [Role.Operator, Role.Customer, Role.Meter];

    public static readonly IReadOnlyDictionary<string, Role[]> Allowed = new Dictionary<string, Role[]>(StringComparer.Ordinal)
    {
        [Path(ContractService.Descriptor, "CreateContract")] = OperatorOnly,
        [Path(ContractService.Descriptor, "GetContract")] = OperatorAndCustomer,
        [Path(ContractService.Descriptor, "ListContracts")] = OperatorAndCustomer,
        [Path(ContractService.Descriptor, "UpdateContract")] = OperatorOnly,
        [Path(ContractService.Descriptor, "ActivateContract")] = OperatorOnly,
        [Path(ContractService.Descriptor, "SuspendContract")] = OperatorOnly,
        [Path(ContractService.Descriptor, "ResumeContract")] = OperatorOnly,
        [Path(ContractService.Descriptor, "TerminateContract")] = OperatorOnly,
        [Path(ContractService.Descriptor, "AmendContract")] = OperatorOnly,
        [Path(ContractService.Descriptor, "ListContractVersions")] = OperatorAndCustomer,
        [Path(ContractService.Descriptor, "ListAuditEvents")] = OperatorOnly,
        [Path(ContractService.Descriptor, "PublishIndexValue")] = OperatorOnly,
        [Path(ContractService.Descriptor, "ListIndexValues")] = OperatorAndCustomer,
        [Path(ContractService.Descriptor, "GetStatement")] = OperatorAndCustomer,
        [Path(ContractService.Descriptor, "QuoteContract")] = OperatorAndCustomer,
        [Path(SlaService.Descriptor, "RecordIncident")] = OperatorAndMeter,
        [Path(SlaService.Descriptor, "ResolveIncident")] = OperatorAndMeter,
        [Path(SlaService.Descriptor, "ListIncidents")] = OperatorAndMeter,
        [Path(SlaService.Descriptor, "GetSlaReport")] = OperatorAndCustomer,
        [Path(AllocationService.Descriptor, "CreatePool")] = OperatorOnly,
        [Path(AllocationService.Descriptor, "GetPool")] = Everyone,
        [Path(AllocationService.Descriptor, "ListPools")] = Everyone,
        [Path(AllocationService.Descriptor, "UpdatePoolCapacity")] = OperatorOnly,
        [Path(AllocationService.Descriptor, "GetPoolStatus")] = OperatorOnly,
        [Path(AllocationService.Descriptor, "RequestAllocation")] = OperatorAndCustomer,
        [Path(AllocationService.Descriptor, "GetAllocation")] = OperatorAndCustomer,
        [Path(AllocationService.Descriptor, "ListAllocations")] = OperatorAndCustomer,
        [Path(AllocationService.Descriptor, "ReleaseAllocation")] = OperatorAndCustomer,
        [Path(AllocationService.Descriptor, "WatchAllocations")] = OperatorAndCustomer,
        [Path(AllocationService.Descriptor, "ReportUsage")] = OperatorAndMeter,
        [Path(AllocationService.Descriptor, "BookCapacityBlock")] = OperatorAndCustomer,
        [Path(AllocationService.Descriptor, "GetCapacityBlock")] = OperatorAndCustomer,
        [Path(AllocationService.Descriptor, "ListCapacityBlocks")] = OperatorAndCustomer,
        [Path(AllocationService.Descriptor, "CancelCapacityBlock")] = OperatorAndCustomer,
        [Path(AllocationService.Descriptor, "FindCapacityBlockOfferings")] = OperatorAndCustomer,
    };

    public static bool IsAnonymous(string method) =>
        method.StartsWith("/grpc.health.v1.", StringComparison.Ordinal) ||
        method.StartsWith("/grpc.reflection.", StringComparison.Ordinal);

    private static string Path(Google.Protobuf.Reflection.ServiceDescriptor service, string method) =>
        $"/{service.FullName}/{service.FindMethodByName(method)?.Name ?? throw new InvalidOperationException($"{service.FullName} has no method {method}")}";
}
