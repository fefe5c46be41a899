using Procurement.Domain.Money;

namespace Procurement.Domain.Pricing;

/// <summary>Exact money arithmetic: decimals in currency units, rounded only where a statement line is rounded.</summary>
public static class MoneyMath
{
    public const decimal MicrosPerUnit = 1_000_000m;

    public static decimal FromMicros(long micros) => micros / MicrosPerUnit;

    /// <summary>An amount already rounded to a minor unit (at most 4 decimals) is a whole number of micros.</summary>
    public static long ToMicros(decimal amount) => checked((long)(amount * MicrosPerUnit));

    /// <summary>Banker's rounding (half to even) to the currency's minor unit: USD cents, JPY yen, BHD fils.</summary>
    public static decimal RoundToMinorUnit(decimal amount, string currency) =>
        Math.Round(amount, Currency.MinorUnitDigits(currency), MidpointRounding.ToEven);

    /// <summary>The value without trailing zeros, so equal values always print the same.</summary>
    public static decimal Normalize(decimal value) => value / 1.0000000000000000000000000000m;
}
