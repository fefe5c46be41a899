using Microsoft.Extensions.Time.Testing;
using Procurement.Api.V1;

namespace Procurement.Client.Tests;

public sealed class RequestIdsTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero));

    [Fact]
    public void AnIdTheCallerChose_IsKept() =>
        Assert.Equal("mine", RequestIds.Ensure(new ReleaseAllocationRequest { RequestId = "mine" }, _time).RequestId);

    [Fact]
    public void AMissingId_IsAVersion7Uuid_SoIdsMadeLaterSortLater()
    {
        var first = RequestIds.Ensure(new ReleaseAllocationRequest(), _time).RequestId;
        _time.Advance(TimeSpan.FromMilliseconds(1));
        var second = RequestIds.Ensure(new ReleaseAllocationRequest(), _time).RequestId;

        Assert.Equal(7, Guid.Parse(first).Version);
        Assert.True(string.CompareOrdinal(first, second) < 0, $"{first} should sort before {second}");
    }

    [Fact]
    public void AMissingId_CarriesTheClientsClock()
    {
        var id = Guid.Parse(RequestIds.Ensure(new ReleaseAllocationRequest(), _time).RequestId);

        // A version 7 UUID's first 48 bits are Unix milliseconds.
        var millis = Convert.ToInt64(id.ToString("N")[..12], 16);
        Assert.Equal(_time.GetUtcNow().ToUnixTimeMilliseconds(), millis);
    }
}
