using Procurement.Domain.Allocations;
using Procurement.Domain.Common;
using Procurement.Domain.Errors;

namespace Procurement.Domain.Contracts;

/// <summary>
/// A contract between the provider and one customer tenant: its lifecycle and its versioned terms.
/// A DRAFT is edited in place; after activation terms change only by amendments that add versions.
/// </summary>
public sealed class Contract
{
    public const string ResourceType = "contract";

    private readonly List<ContractVersion> _versions;
    private bool _shared;
    private StandingMemo? _standing;

    public Contract(
        string id,
        string tenantId,
        string displayName,
        ContractState storedState,
        long revision,
        DateTimeOffset createdAt,
        DateTimeOffset updatedAt,
        DateTimeOffset? activatedAt,
        DateTimeOffset? terminatedAt,
        string? stateReason,
        IEnumerable<ContractVersion> versions)
    {
        Id = id;
        TenantId = tenantId;
        DisplayName = displayName;
        StoredState = storedState;
        Revision = revision;
        CreatedAt = createdAt;
        UpdatedAt = updatedAt;
        ActivatedAt = activatedAt;
        TerminatedAt = terminatedAt;
        StateReason = stateReason;
        _versions = versions.OrderBy(v => v.Version).ToList();
        if (_versions.Count == 0)
        {
            throw new ArgumentException("A contract has at least one version.", nameof(versions));
        }
    }

    public string Id { get; }

    public string TenantId { get; }

    public string DisplayName { get; private set; }

    /// <summary>The state as stored; <see cref="StateAt"/> is what callers see.</summary>
    public ContractState StoredState { get; private set; }

    /// <summary>Increases on every change; the etag is derived from it.</summary>
    public long Revision { get; private set; }

    public DateTimeOffset CreatedAt { get; }

    public DateTimeOffset UpdatedAt { get; private set; }

    public DateTimeOffset? ActivatedAt { get; private set; }

    public DateTimeOffset? TerminatedAt { get; private set; }

    public string? StateReason { get; private set; }

    public IReadOnlyList<ContractVersion> Versions => _versions;

    public string Etag => Revision.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public ContractVersion LatestVersion => _versions[^1];

    /// <summary>The term end: that of the latest version, which is what amendments extend or shorten.</summary>
    public DateTimeOffset TermEnd => LatestVersion.Terms.EndTime;

    public static Contract CreateDraft(string id, string tenantId, string displayName, ContractTerms terms, DateTimeOffset now)
    {
        var contract = new Contract(id, tenantId, displayName, ContractState.Draft, 1, now, now, null, null, null,
            [new ContractVersion(1, terms.StartTime, terms, now)]);
        return contract;
    }

    public ContractState StateAt(DateTimeOffset now) =>
        StoredState is ContractState.Active or ContractState.Suspended && now >= TermEnd
            ? ContractState.Expired
            : StoredState;

    public ContractVersion VersionAt(DateTimeOffset instant) =>
        VersionSchedule.At(_versions, v => v.Version, v => v.EffectiveFrom, instant);

    /// <summary>
    /// What this contract may hold in <paramref name="poolId"/> at <paramref name="now"/>, from the terms
    /// version in effect: admission asks this of every contract in a pool on every decision.
    /// </summary>
    /// <remarks>
    /// A shared copy cannot change, so it keeps its last answer for as long as it holds: until the
    /// next instant a version takes effect, the term starts or the term ends.
    /// </remarks>
    public ContractStanding StandingIn(string poolId, DateTimeOffset now)
    {
        if (_standing is { } kept && kept.PoolId == poolId && kept.From <= now && now < kept.Until)
        {
            return kept.Standing;
        }

        var terms = VersionAt(now).Terms;
        PoolEntitlement? entitlement = null;
        foreach (var e in terms.Entitlements)
        {
            if (e.PoolId == poolId)
            {
                entitlement = e;
                break;
            }
        }

        var canAllocate = StateAt(now) == ContractState.Active && now >= _versions[0].Terms.StartTime;
        var standing = new ContractStanding(Id, terms.PriorityAccess.Priority, terms.PriorityAccess.PreemptLowerPriorityBurst,
            entitlement?.ReservedUnits ?? 0, entitlement?.BurstLimitUnits ?? 0, canAllocate);
        if (_shared)
        {
            var (from, until) = StandingHolds(now);
            _standing = new StandingMemo(poolId, standing, from, until);
        }

        return standing;
    }

    /// <summary>
    /// The span around <paramref name="now"/> in which <see cref="StandingIn"/> gives the same answer
    /// (for every pool): from the last instant a version took effect, the term started or ended, to the next.
    /// </summary>
    public (DateTimeOffset From, DateTimeOffset Until) StandingHolds(DateTimeOffset now)
    {
        var (from, until) = (DateTimeOffset.MinValue, DateTimeOffset.MaxValue);
        foreach (var change in StandingChanges())
        {
            if (change <= now && change > from)
            {
                from = change;
            }
            else if (change > now && change < until)
            {
                until = change;
            }
        }

        return (from, until);
    }

    /// <summary>The instants at which <see cref="StandingIn"/> can change: each version's effective time, the term's start and end.</summary>
    private IEnumerable<DateTimeOffset> StandingChanges()
    {
        foreach (var v in _versions)
        {
            yield return v.EffectiveFrom;
        }

        yield return _versions[0].Terms.StartTime;
        yield return TermEnd;
    }

    private sealed record StandingMemo(string PoolId, ContractStanding Standing, DateTimeOffset From, DateTimeOffset Until);

    /// <summary>Every version that applies at some instant from <paramref name="now"/> on.</summary>
    public IEnumerable<ContractVersion> VersionsApplicableFrom(DateTimeOffset now) =>
        VersionSchedule.ApplicableFrom(_versions, v => v.Version, v => v.EffectiveFrom, now);

    /// <summary>Throws ABORTED when an etag is given (or required) and is not the current one.</summary>
    public void CheckEtag(string? etag, bool required)
    {
        if (string.IsNullOrEmpty(etag))
        {
            if (required)
            {
                throw DomainErrors.Invalid("etag", "is required: pass the etag of the contract as last read");
            }

            return;
        }

        if (etag != Etag)
        {
            throw DomainErrors.EtagMismatch(ResourceType, Id, etag, Etag);
        }
    }

    public void UpdateDraft(string displayName, ContractTerms terms, DateTimeOffset now)
    {
        RequireState(now, "updated", ContractState.Draft);
        DisplayName = displayName;
        _versions[0] = new ContractVersion(1, terms.StartTime, terms, _versions[0].CreatedAt);
        Touch(now);
    }

    public void Activate(DateTimeOffset now)
    {
        RequireState(now, "activated", ContractState.Draft);
        if (TermEnd <= now)
        {
            throw new ProcurementException(ErrorKind.FailedPrecondition, ErrorReasons.TermEnded,
                $"Contract '{Id}' cannot be activated: its term ended at {TermEnd:O}.");
        }

        StoredState = ContractState.Active;
        ActivatedAt = now;
        StateReason = null;
        Touch(now);
    }

    public void Suspend(string? reason, DateTimeOffset now)
    {
        RequireState(now, "suspended", ContractState.Active);
        StoredState = ContractState.Suspended;
        StateReason = string.IsNullOrEmpty(reason) ? null : reason;
        Touch(now);
    }

    public void Resume(DateTimeOffset now)
    {
        RequireState(now, "resumed", ContractState.Suspended);
        StoredState = ContractState.Active;
        StateReason = null;
        Touch(now);
    }

    public void Terminate(string? reason, DateTimeOffset now)
    {
        RequireState(now, "terminated", ContractState.Active, ContractState.Suspended);
        StoredState = ContractState.Terminated;
        TerminatedAt = now;
        StateReason = string.IsNullOrEmpty(reason) ? null : reason;
        Touch(now);
    }

    /// <summary>
    /// Adds a terms version effective from the start of <paramref name="month"/>, which must be a
    /// future month, or the current month while it is the contract's first month (then the version
    /// is effective from the term start). Start time and currency cannot change.
    /// </summary>
    public ContractVersion Amend(BillingMonth month, ContractTerms terms, DateTimeOffset now)
    {
        RequireState(now, "amended", ContractState.Active);
        var original = _versions[0].Terms;
        var violations = new List<FieldViolation>();
        if (terms.StartTime != original.StartTime)
        {
            violations.Add(new("terms.start_time", $"cannot change by amendment (it is {original.StartTime:O})"));
        }

        if (terms.CurrencyCode != original.CurrencyCode)
        {
            violations.Add(new("terms.currency_code", $"cannot change by amendment (it is {original.CurrencyCode})"));
        }

        DomainErrors.ThrowIfAny(violations);

        var current = BillingMonth.Of(now);
        var firstMonth = BillingMonth.Of(original.StartTime);
        var allowedFrom = current == firstMonth || current < firstMonth ? current : current.Next;
        if (month < allowedFrom)
        {
            throw new ProcurementException(ErrorKind.FailedPrecondition, ErrorReasons.AmendmentNotAllowed,
                $"An amendment can take effect from {allowedFrom} at the earliest, not {month}: a month already begun is billed on the terms in effect.",
                [new FieldViolation("effective_month", $"must be {allowedFrom} or later")]);
        }

        var effectiveFrom = month.Start > original.StartTime ? month.Start : original.StartTime;
        if (effectiveFrom >= terms.EndTime)
        {
            throw DomainErrors.Invalid("effective_month", $"must begin before the amended term end ({terms.EndTime:O})");
        }

        var version = new ContractVersion(LatestVersion.Version + 1, effectiveFrom, terms, now);
        _versions.Add(version);
        Touch(now);
        return version;
    }

    /// <summary>
    /// Marks this aggregate as one copy handed to many readers (storage keeps it between decisions):
    /// from then on any change throws, so no reader can alter what the others see.
    /// </summary>
    public Contract Share()
    {
        _shared = true;
        return this;
    }

    private void RequireUnshared()
    {
        if (_shared)
        {
            throw new InvalidOperationException($"Contract '{Id}' is a shared read-only copy; load it for update to change it.");
        }
    }

    private void RequireState(DateTimeOffset now, string pastTense, params ContractState[] allowed)
    {
        RequireUnshared();
        var state = StateAt(now);
        if (!allowed.Contains(state))
        {
            var names = string.Join(" or ", allowed.Select(s => s.ToString().ToUpperInvariant()));
            throw DomainErrors.InvalidState(
                $"Contract '{Id}' is {state.ToString().ToUpperInvariant()}; only a {names} contract can be {pastTense}.",
                state.ToString().ToUpperInvariant());
        }
    }

    private void Touch(DateTimeOffset now)
    {
        Revision++;
        UpdatedAt = now;
    }

}
