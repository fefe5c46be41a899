using System.Globalization;

namespace Procurement.Domain.Common;

/// <summary>
/// Decimal strings of the API ("0.95", "99.9", "-1"): an optional minus sign, digits, and at most one
/// point followed by digits; no plus sign, exponent, grouping, spaces or other characters (a trailing
/// NUL, which .NET's own parser ignores, is refused); at most <see cref="MaxLength"/> characters and a
/// value <see cref="decimal"/> holds exactly. Fields that must not be negative say so in their range.
/// </summary>
public static class DecimalText
{
    public const int MaxLength = 40;

    public static bool TryParse(string? text, out decimal value)
    {
        value = 0m;
        if (!IsWellFormed(text))
        {
            return false;
        }

        return decimal.TryParse(text, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out value);
    }

    private static bool IsWellFormed(string? text)
    {
        if (string.IsNullOrEmpty(text) || text.Length > MaxLength)
        {
            return false;
        }

        var i = text[0] == '-' ? 1 : 0;
        var digitsBefore = 0;
        while (i < text.Length && char.IsAsciiDigit(text[i]))
        {
            i++;
            digitsBefore++;
        }

        if (digitsBefore == 0)
        {
            return false;
        }

        if (i == text.Length)
        {
            return true;
        }

        if (text[i] != '.')
        {
            return false;
        }

        var digitsAfter = 0;
        for (i++; i < text.Length; i++, digitsAfter++)
        {
            if (!char.IsAsciiDigit(text[i]))
            {
                return false;
            }
        }

        return digitsAfter > 0;
    }

    /// <summary>The canonical text of a value: invariant culture, no trailing zeros beyond what the value carries.</summary>
    public static string Format(decimal value) => value.ToString(CultureInfo.InvariantCulture);
}
