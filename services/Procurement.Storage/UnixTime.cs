namespace Procurement.Storage;

/// <summary>Times are stored as integer Unix milliseconds, UTC.</summary>
internal static class UnixTime
{
    public static long ToMs(DateTimeOffset t) => t.ToUnixTimeMilliseconds();

    public static long? ToMs(DateTimeOffset? t) => t?.ToUnixTimeMilliseconds();

    public static DateTimeOffset FromMs(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);

    public static DateTimeOffset? FromMs(long? ms) => ms is { } v ? DateTimeOffset.FromUnixTimeMilliseconds(v) : null;
}
