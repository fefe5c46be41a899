using Procurement.Domain.Pricing;

namespace Procurement.Domain.Blocks;

/// <summary>BOOKED → ACTIVE → COMPLETED, or BOOKED → CANCELLED.</summary>
public enum BlockState
{
    Booked = 1,
    Active = 2,
    Completed = 3,
    Cancelled = 4,
}

/// <summary>
/// A time-boxed, prepaid addition to one contract's reservation in one pool (docs/design.md,
/// "Capacity blocks"). The price is fixed at booking: the terms' block rate times the index factor
/// then in effect, both recorded on the block.
/// </summary>
public sealed record CapacityBlock(
    long Seq,
    string Id,
    string ContractId,
    string TenantId,
    string PoolId,
    long Units,
    DateTimeOffset StartTime,
    DateTimeOffset EndTime,
    long RateMicros,
    decimal IndexFactor,
    BlockState State,
    DateTimeOffset BookedAt,
    DateTimeOffset? CancelledAt,
    bool CancellationCharged,
    long Revision)
{
    public const string ResourceType = "capacity block";

    public static string IdOf(long seq) => $"blk_{seq}";

    public string Etag => Revision.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Price per GPU-hour in currency units, unrounded.</summary>
    public decimal UnitPrice => MoneyMath.FromMicros(RateMicros) * IndexFactor;

    /// <summary>Whether the block holds its place in the calendar (counts toward reserved(P, t)).</summary>
    public bool IsPlaced => State is BlockState.Booked or BlockState.Active;

    /// <summary>Units × hours of the window inside [from, until): what a statement of that period bills.</summary>
    public decimal GpuHoursWithin(DateTimeOffset from, DateTimeOffset until)
    {
        var start = from > StartTime ? from : StartTime;
        var end = until < EndTime ? until : EndTime;
        return end <= start ? 0m : Units * ((decimal)(end - start).Ticks / TimeSpan.TicksPerHour);
    }

    /// <summary>The whole window's price, unrounded (the block's price; what a cancellation inside the notice costs).</summary>
    public decimal FullAmount => GpuHoursWithin(StartTime, EndTime) * UnitPrice;

    /// <summary>Whether cancelling at <paramref name="now"/> is inside the notice period and so charged in full.</summary>
    public static bool CancellationIsCharged(DateTimeOffset start, TimeSpan notice, DateTimeOffset now) => start - now < notice;
}
