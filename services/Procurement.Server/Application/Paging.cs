using System.Security.Cryptography;
using System.Text;
using Procurement.Domain.Errors;

namespace Procurement.Server.Application;

/// <summary>
/// Page sizes and opaque page tokens. A token carries the last key of its page and a fingerprint of
/// the list's filters, so a token replayed with other filters is refused instead of skipping items.
/// Lists are keyset-paged: items created meanwhile are never lost or repeated.
/// </summary>
public static class Paging
{
    public const int DefaultPageSize = 50;
    public const int MaxPageSize = 1000;

    public static int PageSize(int requested) => requested switch
    {
        < 0 => throw DomainErrors.Invalid("page_size", "must be >= 0"),
        0 => DefaultPageSize,
        > MaxPageSize => MaxPageSize,
        _ => requested,
    };

    public static string Encode(string lastKey, string filters) =>
        Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Fingerprint(filters)}|{lastKey}")).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public static string Encode(long lastKey, string filters) => Encode(lastKey.ToString(System.Globalization.CultureInfo.InvariantCulture), filters);

    /// <summary>The last key of the previous page, or null for the first page.</summary>
    public static string? Decode(string token, string filters)
    {
        if (string.IsNullOrEmpty(token))
        {
            return null;
        }

        try
        {
            var padded = token.Replace('-', '+').Replace('_', '/');
            padded += new string('=', (4 - (padded.Length % 4)) % 4);
            var text = Encoding.UTF8.GetString(Convert.FromBase64String(padded));
            var bar = text.IndexOf('|', StringComparison.Ordinal);
            if (bar > 0 && text[..bar] == Fingerprint(filters))
            {
                return text[(bar + 1)..];
            }
        }
        catch (FormatException)
        {
        }

        throw new ProcurementException(ErrorKind.InvalidArgument, ErrorReasons.InvalidPageToken,
            "page_token is not a token returned by this list with these filters.",
            [new FieldViolation("page_token", "is not a token returned by this list with these filters")]);
    }

    public static long DecodeLong(string token, string filters)
    {
        var key = Decode(token, filters);
        return key is null ? 0 : long.TryParse(key, System.Globalization.CultureInfo.InvariantCulture, out var v) ? v
            : throw DomainErrors.Invalid("page_token", "is not a token returned by this list with these filters");
    }

    private static string Fingerprint(string filters) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(filters)))[..16];
}
