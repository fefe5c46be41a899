using Google.Protobuf.WellKnownTypes;
using Procurement.Domain.Contracts;
using Procurement.Domain.Pools;
using Procurement.Server.Auth;
using Procurement.Storage.Repositories;
using V1 = Procurement.Api.V1;

namespace Procurement.Server.Mapping;

/// <summary>Domain objects to API messages.</summary>
public static class ApiMapper
{
    // Terms are immutable once stored, so each is mapped once; the messages are shared by every
    // response that carries them and must not be changed after mapping (serialization only reads).
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<ContractTerms, V1.ContractTerms> MappedTerms = new();

    private static V1.ContractTerms Mapped(ContractTerms terms) => MappedTerms.GetValue(terms, TermsMapper.ToApi);

    public static V1.Contract ToApi(this Contract c, DateTimeOffset now)
    {
        var version = c.StoredState == ContractState.Draft ? c.Versions[0] : c.VersionAt(now);
        var result = new V1.Contract
        {
            ContractId = c.Id,
            TenantId = c.TenantId,
            DisplayName = c.DisplayName,
            State = (V1.ContractState)(int)c.StateAt(now),
            Etag = c.Etag,
            TermsVersion = version.Version,
            Terms = Mapped(version.Terms),
            LatestTermsVersion = c.LatestVersion.Version,
            CreateTime = Timestamp.FromDateTimeOffset(c.CreatedAt),
            UpdateTime = Timestamp.FromDateTimeOffset(c.UpdatedAt),
            StateReason = c.StateReason ?? "",
        };
        if (c.ActivatedAt is { } a)
        {
            result.ActivateTime = Timestamp.FromDateTimeOffset(a);
        }

        if (c.TerminatedAt is { } t)
        {
            result.TerminateTime = Timestamp.FromDateTimeOffset(t);
        }

        return result;
    }

    public static V1.ContractVersion ToApi(this ContractVersion v, string contractId) => new()
    {
        ContractId = contractId,
        Version = v.Version,
        EffectiveTime = Timestamp.FromDateTimeOffset(v.EffectiveFrom),
        Terms = Mapped(v.Terms),
        CreateTime = Timestamp.FromDateTimeOffset(v.CreatedAt),
    };

    public static V1.Pool ToApi(this Pool p) => new()
    {
        PoolId = p.Id,
        DisplayName = p.DisplayName,
        Region = p.Region,
        AcceleratorType = p.AcceleratorType,
        CapacityUnits = p.CapacityUnits,
        Etag = p.Etag,
        CreateTime = Timestamp.FromDateTimeOffset(p.CreatedAt),
        UpdateTime = Timestamp.FromDateTimeOffset(p.UpdatedAt),
    };

    public static V1.AuditEvent ToApi(this AuditEvent e) => new()
    {
        Sequence = e.Sequence,
        Time = Timestamp.FromDateTimeOffset(e.OccurredAt),
        KeyId = e.KeyId,
        Role = RoleNames.TryParse(e.Role, out var role) ? role switch
        {
            Role.Operator => V1.PrincipalRole.Operator,
            Role.Customer => V1.PrincipalRole.Customer,
            _ => V1.PrincipalRole.Meter,
        } : V1.PrincipalRole.Unspecified,
        TenantId = e.TenantId ?? "",
        Method = e.Method,
        RequestId = e.RequestId,
        ResourceType = e.ResourceType,
        ResourceId = e.ResourceId,
    };
}
