using System.Globalization;
using Google.Protobuf;

namespace Procurement.Cli;

/// <summary>Tables for people, protobuf JSON (proto field names, defaults included) for scripts.</summary>
public sealed class Output(TextWriter writer, bool json)
{
    private static readonly JsonFormatter Formatter = new(JsonFormatter.Settings.Default.WithFormatDefaultValues(true).WithPreserveProtoFieldNames(true).WithIndentation());

    public bool Json => json;

    public TextWriter Writer => writer;

    public void Message(IMessage message) => writer.WriteLine(Formatter.Format(message));

    public void Line(string text = "") => writer.WriteLine(text);

    /// <summary>Left-aligned columns sized to their widest cell.</summary>
    public void Table(IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<string>> rows)
    {
        var all = rows.ToList();
        var widths = headers.Select((h, i) => Math.Max(h.Length, all.Count == 0 ? 0 : all.Max(r => r[i].Length))).ToArray();
        writer.WriteLine(Row(headers, widths));
        foreach (var row in all)
        {
            writer.WriteLine(Row(row, widths));
        }

        if (all.Count == 0)
        {
            writer.WriteLine("(none)");
        }
    }

    /// <summary>label: value pairs, aligned.</summary>
    public void Fields(params (string Label, string Value)[] fields)
    {
        var width = fields.Max(f => f.Label.Length);
        foreach (var (label, value) in fields)
        {
            writer.WriteLine($"{(label + ":").PadRight(width + 2)}{value}");
        }
    }

    public static string Money(Procurement.Api.V1.Money? money)
    {
        if (money is null)
        {
            return "";
        }

        // The currency's minor-unit digits (ISO 4217: USD 2, JPY 0, BHD 3, CLF 4), and more where the
        // amount carries them, so a unit price of 2.123456 USD is not shown rounded.
        var minor = Domain.Money.Currency.IsKnown(money.CurrencyCode) ? Domain.Money.Currency.MinorUnitDigits(money.CurrencyCode) : 2;
        var digits = Math.Max(minor, FractionDigits(money.AmountMicros));
        var amount = money.AmountMicros / 1_000_000m;
        return $"{amount.ToString("N" + digits, CultureInfo.InvariantCulture)} {money.CurrencyCode}";
    }

    private static int FractionDigits(long micros)
    {
        var fraction = Math.Abs(micros % 1_000_000);
        var digits = 6;
        while (digits > 0 && fraction % 10 == 0)
        {
            fraction /= 10;
            digits--;
        }

        return digits;
    }

    public static string Time(Google.Protobuf.WellKnownTypes.Timestamp? t) =>
        t is null ? "-" : t.ToDateTimeOffset().ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    public static string Enum<T>(T value) where T : struct, System.Enum
    {
        var name = value.ToString();
        return name == "Unspecified" ? "-" : string.Concat(name.Select((c, i) => i > 0 && char.IsUpper(c) ? "_" + c : c.ToString())).ToUpperInvariant();
    }

    private static string Row(IReadOnlyList<string> cells, int[] widths) =>
        string.Join("  ", cells.Select((c, i) => i == cells.Count - 1 ? c : c.PadRight(widths[i]))).TrimEnd();
}
