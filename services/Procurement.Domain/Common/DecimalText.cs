using System.Globalization;

namespace Procurement.Domain.Common;

/// <summary>
/// Decimal strings of the API ("0.95", "99.9", "-1"): plain digits with an optional sign and point,
/// no exponent, no grouping, at most 28 significant digits. Parsed exactly into <see cref="decimal"/>.
/// </summary>
public static class DecimalText
{
    private const NumberStyles Style = NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint;

    public static bool TryParse(string? text, out decimal value)
    {
        value = 0m;
        if (string.IsNullOrEmpty(text) || text.Length > 40 || char.IsWhiteSpace(text[0]) || char.IsWhiteSpace(text[^1]))
        {
            return false;
        }

        return decimal.TryParse(text, Style, CultureInfo.InvariantCulture, out value);
    }

    /// <summary>The canonical text of a value: invariant culture, no trailing zeros beyond what the value carries.</summary>
    public static string Format(decimal value) => value.ToString(CultureInfo.InvariantCulture);
}
