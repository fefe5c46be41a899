namespace Procurement.Domain.Sla;

public enum IncidentKind
{
    Outage = 1,
    Degraded = 2,
    Maintenance = 3,
}

/// <summary>An incident in a pool; open until <see cref="End"/> is set.</summary>
public sealed record Incident(
    string Id,
    string PoolId,
    IncidentKind Kind,
    DateTimeOffset Start,
    DateTimeOffset? End,
    long AffectedUnits,
    DateTimeOffset? AnnouncedAt,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt)
{
    public const string ResourceType = "incident";
}
