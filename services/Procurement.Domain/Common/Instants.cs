namespace Procurement.Domain.Common;

/// <summary>The earlier and the later of two instants (periods are clipped with these everywhere).</summary>
public static class Instants
{
    public static DateTimeOffset Max(DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;

    public static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;
}
