using System.Collections.Frozen;

namespace Procurement.Domain.Money;

/// <summary>ISO 4217 currencies in current use, with the number of digits of their minor unit.</summary>
public static class Currency
{
    private const string ZeroDigit = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF";
    private const string ThreeDigit = "BHD IQD JOD KWD LYD OMR TND";
    private const string FourDigit = "CLF UYW";
    private const string TwoDigit =
        "AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN BZD " +
        "CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL " +
        "GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR " +
        "LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD " +
        "PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC " +
        "SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG";

    private static readonly FrozenDictionary<string, int> MinorDigits = Build();

    /// <summary>True for an upper-case ISO 4217 code in current use.</summary>
    public static bool IsKnown(string? code) => code is not null && MinorDigits.ContainsKey(code);

    /// <summary>Digits of the minor unit: USD 2, JPY 0, BHD 3.</summary>
    public static int MinorUnitDigits(string code) =>
        MinorDigits.TryGetValue(code, out var digits)
            ? digits
            : throw new ArgumentException($"Unknown currency '{code}'.", nameof(code));

    private static FrozenDictionary<string, int> Build()
    {
        var map = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (codes, digits) in new[] { (ZeroDigit, 0), (TwoDigit, 2), (ThreeDigit, 3), (FourDigit, 4) })
        {
            foreach (var code in codes.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                map.Add(code, digits);
            }
        }

        return map.ToFrozenDictionary(StringComparer.Ordinal);
    }
}
