namespace Procurement.Domain.Common;

/// <summary>A calendar month in UTC: the billing period.</summary>
public readonly record struct BillingMonth(int Year, int Month) : IComparable<BillingMonth>
{
    public DateTimeOffset Start => new(Year, Month, 1, 0, 0, 0, TimeSpan.Zero);

    public DateTimeOffset End => Start.AddMonths(1);

    public BillingMonth Next => Of(End);

    // Up to 9998: a month's end (the next month's start) must stay inside the API's time range.
    public static bool IsValid(int year, int month) => year is >= 2000 and <= 9998 && month is >= 1 and <= 12;

    public static BillingMonth Of(DateTimeOffset instant)
    {
        var utc = instant.ToUniversalTime();
        return new BillingMonth(utc.Year, utc.Month);
    }

    public int CompareTo(BillingMonth other) => (Year, Month).CompareTo((other.Year, other.Month));

    public static bool operator <(BillingMonth a, BillingMonth b) => a.CompareTo(b) < 0;

    public static bool operator >(BillingMonth a, BillingMonth b) => a.CompareTo(b) > 0;

    public static bool operator <=(BillingMonth a, BillingMonth b) => a.CompareTo(b) <= 0;

    public static bool operator >=(BillingMonth a, BillingMonth b) => a.CompareTo(b) >= 0;

    public override string ToString() => $"{Year:D4}-{Month:D2}";

    /// <summary>Reads what <see cref="ToString"/> writes, "YYYY-MM", for a valid month only.</summary>
    public static bool TryParse(string text, out BillingMonth month)
    {
        month = default;
        if (text is not [>= '0' and <= '9', >= '0' and <= '9', >= '0' and <= '9', >= '0' and <= '9', '-', >= '0' and <= '9', >= '0' and <= '9'])
        {
            return false;
        }

        var (year, number) = (int.Parse(text[..4], System.Globalization.CultureInfo.InvariantCulture), int.Parse(text[5..], System.Globalization.CultureInfo.InvariantCulture));
        if (!IsValid(year, number))
        {
            return false;
        }

        month = new BillingMonth(year, number);
        return true;
    }
}
