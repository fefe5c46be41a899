using Procurement.Domain.Common;
using Procurement.Domain.Money;

namespace Procurement.Domain.Tests;

public class CommonTests
{
    [Theory]
    [InlineData("USD", 2)]
    [InlineData("JPY", 0)]
    [InlineData("BHD", 3)]
    [InlineData("EUR", 2)]
    [InlineData("CLF", 4)]
    public void Currency_KnowsMinorUnits(string code, int digits)
    {
        Assert.True(Currency.IsKnown(code));
        Assert.Equal(digits, Currency.MinorUnitDigits(code));
    }

    [Theory]
    [InlineData("0.95", "0.95")]
    [InlineData("99.9", "99.9")]
    [InlineData("-1", "-1")]
    [InlineData("1000000", "1000000")]
    [InlineData("0.90", "0.90")]
    public void DecimalText_ParsesExactlyAndKeepsScale(string text, string formatted)
    {
        Assert.True(DecimalText.TryParse(text, out var value));
        Assert.Equal(formatted, DecimalText.Format(value));
    }

    [Theory]
    [InlineData("")]
    [InlineData(" 1")]
    [InlineData("1e3")]
    [InlineData("1,000")]
    [InlineData("NaN")]
    [InlineData("0x10")]
    [InlineData("1\u0000")]
    [InlineData("1\n")]
    [InlineData("+1")]
    [InlineData(".5")]
    [InlineData("5.")]
    [InlineData("1.2.3")]
    [InlineData("-")]
    [InlineData("Infinity")]
    [InlineData("１")] // a full-width digit
    [InlineData("12345678901234567890123456789012345678901")] // 41 characters
    [InlineData("99999999999999999999999999999")] // beyond decimal
    public void DecimalText_RejectsAnythingButPlainDecimals(string text) => Assert.False(DecimalText.TryParse(text, out _));

    [Theory]
    [InlineData("h100-a", true)]
    [InlineData("a", true)]
    [InlineData("H100", false)]
    [InlineData("1pool", false)]
    [InlineData("", false)]
    public void Identifiers_PoolIds(string id, bool ok) => Assert.Equal(ok, Identifiers.IsPoolId(id));

    [Theory]
    [InlineData("9f1c2b7e-2d4b-4c1a-9a3f-0d6a1c3b5e7f", true)]
    [InlineData("", false)]
    [InlineData("has space", false)]
    public void Identifiers_RequestIds(string id, bool ok) => Assert.Equal(ok, Identifiers.IsRequestId(id));

    [Fact]
    public void BillingMonth_OrdersAndSteps()
    {
        var dec = new BillingMonth(2026, 12);
        Assert.Equal(new BillingMonth(2027, 1), dec.Next);
        Assert.True(dec < dec.Next);
        Assert.Equal(new DateTimeOffset(2027, 1, 1, 0, 0, 0, TimeSpan.Zero), dec.End);
        Assert.Equal("2026-12", dec.ToString());
    }

    [Theory]
    [InlineData("2026-12", true)]
    [InlineData("2000-01", true)]
    [InlineData("2026-13", false)]
    [InlineData("1999-12", false)]
    [InlineData("2026-1", false)]
    [InlineData("2026/12", false)]
    [InlineData("２026-12", false)]
    public void BillingMonth_ParsesWhatItPrints_AndOnlyValidMonths(string text, bool ok)
    {
        Assert.Equal(ok, BillingMonth.TryParse(text, out var month));
        if (ok)
        {
            Assert.Equal(text, month.ToString());
        }
    }
}
