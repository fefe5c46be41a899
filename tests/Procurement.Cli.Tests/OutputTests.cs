using Procurement.Api.V1;

namespace Procurement.Cli.Tests;

public sealed class OutputTests
{
    [Theory]
    [InlineData("USD", 1_250_000_000_000_000, "1,250,000,000.00 USD")]
    [InlineData("JPY", 1_500_000_000, "1,500 JPY")]
    [InlineData("ISK", 1_000_000, "1 ISK")]
    [InlineData("BHD", 1_500_000, "1.500 BHD")]
    [InlineData("CLF", 2_000_000, "2.0000 CLF")]
    [InlineData("USD", 2_123_456, "2.123456 USD")]
    [InlineData("USD", -10_500_000, "-10.50 USD")]
    public void Money_ShowsTheCurrencysMinorUnitDigits_AndAnyFinerDigitsTheAmountCarries(string currency, long micros, string expected) =>
        Assert.Equal(expected, Output.Money(new Money { CurrencyCode = currency, AmountMicros = micros }));
}
