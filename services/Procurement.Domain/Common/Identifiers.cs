using System.Text.RegularExpressions;

namespace Procurement.Domain.Common;

/// <summary>The shapes of the identifiers callers choose.</summary>
public static partial class Identifiers
{
    /// <summary>Pool ids: 1..63 of [a-z0-9-], starting with a letter.</summary>
    public static bool IsPoolId(string? id) => id is not null && PoolIdPattern().IsMatch(id);

    /// <summary>Tenant ids: 1..64 of [a-z0-9-], starting with a letter.</summary>
    public static bool IsTenantId(string? id) => id is not null && TenantIdPattern().IsMatch(id);

    /// <summary>Accelerator types and index names: 1..64 of [A-Za-z0-9._-].</summary>
    public static bool IsToken(string? text) => text is not null && TokenPattern().IsMatch(text);

    /// <summary>Request ids: 1..128 printable ASCII characters, no spaces.</summary>
    public static bool IsRequestId(string? id) => id is not null && RequestIdPattern().IsMatch(id);

    [GeneratedRegex("^[a-z][a-z0-9-]{0,62}$")]
    private static partial Regex PoolIdPattern();

    [GeneratedRegex("^[a-z][a-z0-9-]{0,63}$")]
    private static partial Regex TenantIdPattern();

    [GeneratedRegex("^[A-Za-z0-9._-]{1,64}$")]
    private static partial Regex TokenPattern();

    [GeneratedRegex("^[\\x21-\\x7E]{1,128}$")]
    private static partial Regex RequestIdPattern();
}
