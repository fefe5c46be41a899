namespace Procurement.Domain.Pools;

/// <summary>A block of identical accelerators. Capacity changes are kept with their time.</summary>
public sealed record Pool(
    string Id,
    string DisplayName,
    string Region,
    string AcceleratorType,
    long CapacityUnits,
    long Revision,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt)
{
    public const string ResourceType = "pool";

    public string Etag => Revision.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
