using System.Security.Cryptography;
using Procurement.Domain.Common;
using Procurement.Domain.Contracts;
using Procurement.Domain.Errors;
using Procurement.Domain.Pools;
using Procurement.Server.Auth;
using Procurement.Server.Mapping;
using Procurement.Storage;

namespace Procurement.Server.Application;

/// <summary>The read-decide-write steps of contract mutations, shared by the gRPC service and the demo seed.</summary>
public static class ContractOperations
{
    public static string NewContractId() => "ctr_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));

    /// <summary>A contract the principal may see, or NOT_FOUND — the same answer for another tenant's contract as for none.</summary>
    public static async Task<Contract> LoadVisibleAsync(IStoreSession session, Principal principal, string contractId)
    {
        var contract = string.IsNullOrEmpty(contractId) ? null : await session.Contracts.GetAsync(contractId);
        if (contract is null || !principal.CanSeeTenant(contract.TenantId))
        {
            throw DomainErrors.NotFound(Contract.ResourceType, contractId);
        }

        return contract;
    }

    /// <summary>Runs the domain rules that need the pool catalogue; throws with every bad field, mapping ones included.</summary>
    public static async Task ValidateTermsAsync(IStoreSession session, ContractTerms terms, List<FieldViolation> violations, string prefix)
    {
        var poolIds = terms.Entitlements.Select(e => e.PoolId).Distinct(StringComparer.Ordinal).ToList();
        var pools = (await session.Pools.GetManyAsync(poolIds)).ToDictionary(p => p.Id, p => new PoolFacts(p.Id, p.AcceleratorType), StringComparer.Ordinal);
        TermsMapper.AddDomainViolations(ContractTermsValidator.Validate(terms, pools), prefix, violations);
        DomainErrors.ThrowIfAny(violations);
    }

    /// <summary>
    /// Invariant I2 for a contract about to hold reservations (activation, amendment): in every pool it
    /// is entitled to, its reservations plus everyone else's must fit the capacity.
    /// </summary>
    public static async Task EnsureReservationsFitAsync(IStoreSession session, Contract contract, DateTimeOffset now, string action)
    {
        var ownRows = contract.VersionsApplicableFrom(now)
            .SelectMany(v => v.Terms.Entitlements.Select(e => new EntitlementRow(contract.Id, v.Version, v.EffectiveFrom, e.PoolId, e.ReservedUnits)))
            .ToList();
        var poolIds = ownRows.Where(r => r.ReservedUnits > 0).Select(r => r.PoolId).Distinct(StringComparer.Ordinal).ToList();
        if (poolIds.Count == 0)
        {
            return;
        }

        await session.LockPoolsAsync(poolIds);
        var others = await session.Contracts.GetCountedEntitlementsAsync(poolIds, now, contract.Id);
        var reserved = ReservationLedger.ReservedByPool(others.Concat(ownRows), now);
        var capacity = (await session.Pools.GetManyAsync(poolIds)).ToDictionary(p => p.Id, p => p.CapacityUnits, StringComparer.Ordinal);
        var overbooked = ReservationLedger.FindOverbooked(capacity, reserved.Where(r => poolIds.Contains(r.Key)).ToDictionary());
        if (overbooked.Count > 0)
        {
            throw ReservationLedger.OverbookedError($"{action} contract '{contract.Id}'", overbooked);
        }

        foreach (var pool in poolIds.Order(StringComparer.Ordinal))
        {
            await CapacityBlocks.EnsureCalendarFitsAsync(session, pool, capacity.GetValueOrDefault(pool), reserved.GetValueOrDefault(pool), now, $"{action} contract '{contract.Id}'");
        }
    }

    /// <summary>Creates and stores a DRAFT contract from validated terms.</summary>
    public static async Task<Contract> CreateAsync(IStoreSession session, string tenantId, string displayName, ContractTerms terms, List<FieldViolation> violations, DateTimeOffset now)
    {
        await ValidateTermsAsync(session, terms, violations, "terms.");
        var contract = Contract.CreateDraft(NewContractId(), tenantId, displayName, terms, now);
        await session.Contracts.InsertAsync(contract);
        return contract;
    }

    /// <summary>Activates a DRAFT after checking I2.</summary>
    public static async Task ActivateAsync(IStoreSession session, Contract contract, DateTimeOffset now)
    {
        var previous = contract.Revision;
        contract.Activate(now);
        await EnsureReservationsFitAsync(session, contract, now, "activate");
        await session.Contracts.UpdateAsync(contract, previous);
    }

    public static List<FieldViolation> ValidateHeader(string tenantId, string displayName, bool requireTenant)
    {
        var v = new List<FieldViolation>();
        if (requireTenant && !Identifiers.IsTenantId(tenantId))
        {
            v.Add(new("tenant_id", "must be 1..64 characters of [a-z0-9-], starting with a letter"));
        }

        if (string.IsNullOrWhiteSpace(displayName) || displayName.Length > 200)
        {
            v.Add(new("display_name", "must be 1..200 characters"));
        }

        return v;
    }
}
