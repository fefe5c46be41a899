using Procurement.Api.V1;

namespace Procurement.Client.Tests;

public sealed class RequestIdsTests
{
    [Fact]
    public void AnIdTheCallerChose_IsKept() =>
        Assert.Equal("mine", RequestIds.Ensure(new ReleaseAllocationRequest { RequestId = "mine" }).RequestId);

    [Fact]
    public async Task AMissingId_IsAVersion7Uuid_SoIdsMadeLaterSortLater()
    {
        var first = RequestIds.Ensure(new ReleaseAllocationRequest()).RequestId;
        await Task.Delay(5);
        var second = RequestIds.Ensure(new ReleaseAllocationRequest()).RequestId;

        Assert.Equal(7, Guid.Parse(first).Version);
        Assert.True(string.CompareOrdinal(first, second) < 0, $"{first} should sort before {second}");
    }
}
